//! The fuzz model of `heartbeat-core`: decode a configuration and a driver's
//! operations from raw bytes, drive a [`HeartbeatMachine`] with them, and panic on
//! the first broken invariant.
//!
//! Plain stable Rust, so the same model serves the cargo-fuzz target
//! (`fuzz_targets/machine.rs`, nightly) and the corpus replay in the ordinary test
//! run (`tests/tests/fuzz_corpus.rs` in the workspace).
//!
//! ```text
//! cd fuzz
//! cargo +nightly fuzz run machine -- -max_total_time=600   # grows corpus/machine
//! cargo +nightly fuzz run machine /tmp/hb corpus/machine  # new inputs go to /tmp/hb
//! HEARTBEAT_FUZZ_TRACE=1 cargo +nightly fuzz run machine artifacts/machine/crash-…
//! cargo test -p heartbeat-tests --test fuzz_corpus         # replay (stable, workspace)
//! ```
//! libFuzzer writes new inputs into the first corpus directory it is given, so
//! fuzz into a scratch directory to keep the committed corpus small (about a
//! hundred short inputs that together cover every edge the fuzzer has reached;
//! rebuild it with `cargo +nightly fuzz cmin machine` when the input format
//! changes). With `HEARTBEAT_FUZZ_TRACE` set, [`run`] prints the config, every
//! step and what each call returned: that is how a crash is read. A crash that
//! reveals a bug is minimised (`cargo +nightly fuzz tmin machine <file>`) and
//! copied into `corpus/machine/`, so the test run keeps it.
//!
//! The input decodes to a configuration (builder calls with zero, huge and
//! inverted durations, NaN and infinite multipliers, any close code), a jitter
//! seed and up to 200 steps. Each step moves the driver's clock (forward by
//! nanoseconds to centuries, or backwards) and makes one call: `connect`, every
//! `handle_*` (connected, connect failed, retry-after, ping and close sent,
//! frames, pongs echoing our pings or carrying anything, pings of any length, ping
//! bursts, closes, the end of the stream, protocol errors, local lag), `close`,
//! `set_ping_interval`, `set_pong_timeout`, and driver loops that sleep until each
//! deadline and carry out what comes out, with a silent, late or answering peer.
//!
//! The model (`harness::model`) holds where the machine must stand (its phase,
//! with the timestamps its deadlines run from), the current connection and
//! whether a transport is held. Each call predicts the next phase and, where the
//! rules fix them, the exact actions; then every invariant is checked:
//! - **Config:** `build` fails exactly when a documented rule is broken, and the
//!   error names one of the broken fields and displays as a message;
//!   `CloseCode::new` accepts exactly the sendable codes.
//! - **Time:** the machine's `now` never runs backwards; a backwards `now` is
//!   counted once in `clock_anomalies`; `poll_timeout().at >= now()`; after
//!   `handle_timeout(t)` the deadline is at or after `t` and strictly after `now()`
//!   (no busy loop), except at `Instant::MAX` and for a reconnect whose jittered
//!   delay was zero; an early `handle_timeout` does nothing.
//! - **Deadlines:** exactly the model's: a connect timeout after each `Connect`;
//!   a ping one interval after the last ping or the connect (or the last inbound
//!   frame when idle-only); a pong deadline from `handle_ping_sent` (else
//!   emission) plus the capped local lag, gone with any proof of life; a close
//!   window after each close; the backoff, or the draining close's end if sooner.
//!   A pong deadline found later than the stall allowance (`min(stall_threshold,
//!   pong_timeout / 4)`) sends one fresh probe, once per proof of life; otherwise
//!   it is `Dead(PongTimeout)` with the exact wait; a late ping timer sends one
//!   ping and counts a missed deadline; the timer counters move exactly.
//! - **Life of a connection:** every call emits exactly the actions the model
//!   expects; every transport (a `Connect`, or `handle_connected` from `Idle`) ends
//!   with exactly one `Disconnect`, before the next `Connect`; one `Dead` per
//!   connection that opened, at the verdict, and every later state carries its
//!   reason; a failed attempt has no `Dead`; a client's fault death is
//!   `Reconnecting` at once while its close drains (until the peer's close, the end
//!   of the stream, the close timeout or the next attempt); a clean close keeps its
//!   handshake; no ping or pong after `Dead`; close codes are sendable.
//! - **Reconnects:** only in the client role, never after a local close or (unless
//!   configured) a permanent close code; attempts count up from 1 and restart only
//!   after a connection proved healthy for `reset_after`; the client finishes on
//!   its own only when `max_attempts` is spent; each delay is within
//!   `max(cap, requested)` and at least the server's requested delay.
//! - **Outcomes:** each `PongOutcome` is the one the model predicts (a match for
//!   an unacknowledged ping of this connection, with the RTT from
//!   `handle_ping_sent` or emission for the latest; stale for an older ping of
//!   ours; unsolicited otherwise) and moves the counters accordingly; ping
//!   sequence numbers count up and are never reused. Each `PingOutcome` matches
//!   the actions: answered with the ping's own payload, refused (never more than
//!   twice the budget within one window), or a violation (1002 for an oversized
//!   ping, 1008 for a flood, only after `max_strikes + 1` windows over budget);
//!   ignored, and not counted as misuse, while a close is in flight.
//! - **Driver loops:** a silent peer is dead within three timer firings (on time or
//!   late); a peer answering every ping within the pong timeout is never declared
//!   dead, even when pings wait behind a slow write; an on-time driver never causes
//!   a missed deadline.
//! - **State:** the state is the model's; `Finished` is terminal; ignored calls
//!   are counted and emit nothing; health is Suspect exactly while connecting, a
//!   stall was forgiven or the pong is overdue against the RTT estimate; local lag
//!   is capped and a report that moves an armed deadline later is counted;
//!   counters and RTT samples never decrease; the adaptive timeout stays in its
//!   bounds.
//! - **Determinism:** a second machine built from the same config and seed (holding
//!   the config by reference this time) and fed the same steps produces the same
//!   transcript of actions, deadlines and states.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod adapters;
mod harness;
mod input;

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use heartbeat_core::HeartbeatMachine;

use crate::harness::Harness;
use crate::input::ConfigInput;

/// Decodes `data` into a configuration, a seed and up to 200 operations, runs them
/// twice on fresh machines, and panics if any invariant breaks.
///
/// Any byte string is a valid input: decoding never fails, it only runs out.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(input) = ConfigInput::arbitrary(&mut u) else {
        return;
    };
    input.check_dead_close_code();
    let violations = input.violations();
    // `build` must never panic, whatever the fields hold.
    let config = match input.builder().build() {
        Ok(config) => {
            assert!(
                violations.is_empty(),
                "build accepted a config that breaks {violations:?}: {input:?}"
            );
            config
        }
        Err(e) => {
            assert!(
                violations.contains(&e.field()),
                "build rejected {} ({e:?}), but only {violations:?} are broken: {input:?}",
                e.field()
            );
            assert!(!e.to_string().is_empty(), "empty message for {e:?}");
            assert!(!e.field().to_string().is_empty());
            return;
        }
    };
    assert_eq!(*HeartbeatMachine::new(config, 0).config(), config);
    let seed = u64::arbitrary(&mut u).unwrap_or_default();
    let steps = input::steps(&mut u);

    if trace_enabled() {
        eprintln!("{config:?}\nseed {seed}, {} steps", steps.len());
    }
    let first = Harness::new(config, seed)
        .traced_if(trace_enabled())
        .run(&steps);
    // The second machine shares its config by reference, as a driver of many
    // connections would: how the config is held must not change a thing.
    let second = Harness::new(&config, seed).run(&steps);
    assert!(
        first == second,
        "same config, seed and inputs gave different transcripts:\n{first:?}\n{second:?}"
    );
}

/// Whether `HEARTBEAT_FUZZ_TRACE` is set: then [`run`] prints every call and its
/// outcome, which is how a crash found by the fuzzer is read.
fn trace_enabled() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("HEARTBEAT_FUZZ_TRACE").is_some())
}
