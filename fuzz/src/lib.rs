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
//! fuzz into a scratch directory to keep the committed corpus small (about 40
//! inputs chosen for coverage). With `HEARTBEAT_FUZZ_TRACE` set, [`run`] prints
//! the config, every step and what each call returned: that is how a crash is
//! read. A crash that reveals a bug is minimised (`cargo +nightly fuzz tmin machine
//! <file>`) and copied into `corpus/machine/`, so the test run keeps it.
//!
//! The input decodes to a configuration (every builder field; zero, huge and
//! inverted durations, NaN and infinite multipliers, unsendable close codes), a
//! jitter seed and up to 200 steps. Each step moves the driver's clock (forward by
//! nanoseconds to centuries, or backwards) and makes one call: every `handle_*`,
//! `close`, `set_ping_interval`, `set_pong_timeout`, pongs echoing our pings or
//! carrying anything, pings of any length, ping bursts, and driver loops that
//! sleep until each deadline with a silent, late or answering peer.
//!
//! What [`run`] checks:
//! - **Config:** `build` fails exactly when a documented rule is broken, and the
//!   error names one of the broken fields and displays as a message.
//! - **Time:** the machine's `now` never runs backwards; a backwards `now` is
//!   counted once in `clock_anomalies`; `poll_timeout().at >= now()`; after
//!   `handle_timeout(t)` the deadline is at or after `t` and strictly after `now()`
//!   (no busy loop), except at `Instant::MAX`; an early `handle_timeout` does
//!   nothing.
//! - **Deadlines:** a ping is due one interval after the last ping or the connect
//!   (or the last inbound frame when idle-only); a pong deadline runs from
//!   `handle_ping_sent` (else emission) and vanishes with any proof of life; a pong
//!   deadline found later than `stall_threshold` sends one fresh probe instead of a
//!   verdict, once per proof of life; otherwise it is `Dead(PongTimeout)` with the
//!   exact wait; a late ping timer sends one ping and counts a missed deadline.
//! - **Output:** at most six actions per drain; `poll_timeout` says `Actions` (at
//!   `now`) exactly while actions are queued; one `Dead`, one `SendClose` and one
//!   `Abort` at most per connection, and exactly one `Dead` once it is over; no ping
//!   or pong after `Dead` or `SendClose`; close codes are sendable.
//! - **Reconnects:** only in the client role, never after a local close or (unless
//!   configured) a permanent close code; attempts count up from 1 and restart only
//!   after a connection proved healthy for `reset_after`; the client finishes on
//!   its own only when `max_attempts` is spent; each delay is within
//!   `max(cap, max_requested_delay)` and at least the server's requested delay.
//! - **Pongs:** a pong for our latest ping matches and samples the RTT from
//!   `handle_ping_sent` (or emission); no ping sequence number is reused and none
//!   matches twice or on another connection.
//! - **Peer events:** pings are answered with their own payload or refused (never
//!   more than twice the budget within one window), an oversized ping or malformed
//!   frame closes with 1002, a flood with 1008 and only after `max_strikes + 1`
//!   windows over budget; a peer's close is answered with its code; ignored calls
//!   are counted and emit nothing.
//! - **Driver loops:** a silent peer is dead within three timer firings (on time or
//!   late); a peer answering every ping within the pong timeout is never declared
//!   dead, even when pings wait behind a slow write; an on-time driver never causes
//!   a missed deadline.
//! - **State:** `Finished` is terminal; the death reason is sticky;
//!   `needs_transport` holds exactly while open or closing; health is
//!   Suspect exactly while a stall was forgiven or the pong is overdue against the
//!   RTT estimate; counters and RTT samples never decrease; the adaptive timeout
//!   stays in its bounds.
//! - **Determinism:** a second machine built from the same config and seed (holding
//!   the config by reference this time) and fed the same steps produces the same
//!   transcript of actions, deadlines and states.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

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
    let settings = input.resolve();
    let violations = settings.violations();
    // `build` must never panic, whatever the fields hold.
    let config = match settings.builder().build() {
        Ok(config) => {
            assert!(
                violations.is_empty(),
                "build accepted a config that breaks {violations:?}: {settings:?}"
            );
            config
        }
        Err(e) => {
            assert!(
                violations.contains(&e.field()),
                "build rejected {} ({e:?}), but only {violations:?} are broken: {settings:?}",
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
