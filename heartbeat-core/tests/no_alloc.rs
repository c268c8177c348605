//! The machine allocates nothing, on any path: a counting global allocator watches
//! machines through ping/pong cycles, inbound pings and frames, connect attempts
//! that open, fail or time out, deaths by fault with fast recovery, peer-initiated
//! and local close handshakes.
//!
//! Only the allocations of the measuring thread, inside the measured section, are
//! counted (a thread-local flag and counter), so libtest's own threads can never
//! make the test fail.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use heartbeat_core::{
    Action, CloseCode, Config, DeathReason, HeartbeatMachine, Instant, PongOutcome, State,
};

struct Counting;

thread_local! {
    // Const-initialised `Cell`s without destructors: reading them never allocates,
    // so the allocator may use them.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    // `try_with`: the thread may be tearing down its locals.
    let _ = MEASURING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// How many allocations this thread made while running `f`.
fn allocations_during(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    MEASURING.with(|on| on.set(true));
    f();
    MEASURING.with(|on| on.set(false));
    ALLOCATIONS.with(|n| n.get())
}

#[test]
fn the_counter_sees_this_threads_allocations_and_no_other_threads() {
    assert!(
        allocations_during(|| {
            black_box(Vec::<u8>::with_capacity(64));
        }) >= 1,
        "the counter works"
    );
    let gate = Arc::new(Barrier::new(2));
    let other = {
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            gate.wait();
            for _ in 0..1000 {
                black_box(Vec::<u8>::with_capacity(64));
            }
            gate.wait();
        })
    };
    let n = allocations_during(|| {
        gate.wait(); // the other thread allocates now, while we measure
        gate.wait();
    });
    other.join().expect("the allocating thread ends");
    assert_eq!(n, 0, "another thread's allocations never count");
}

/// What the run went through, so the test proves it exercised every path.
#[derive(Default, Debug)]
struct Seen {
    connects: u64,
    opened: u64,
    connect_failed: u64,
    connect_timed_out: u64,
    pong_timeouts: u64,
    peer_closes: u64,
    transport_closes: u64,
    local_closes: u64,
    disconnects: u64,
    pongs_matched: u64,
}

#[test]
fn the_machine_allocates_nothing_on_any_path() {
    let config = Config::builder()
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(100))
        .close_timeout(Duration::from_millis(50))
        .connect_timeout(Duration::from_millis(200))
        .build()
        .expect("valid");
    let mut seen = Seen::default();
    let n = allocations_during(|| run(config, &mut seen));
    assert_eq!(n, 0, "the machine allocated");
    println!("{seen:?}");
    assert!(seen.pongs_matched > 5_000, "{seen:?}");
    for (name, count) in [
        ("connect", seen.connects),
        ("opened", seen.opened),
        ("connect failed", seen.connect_failed),
        ("connect timed out", seen.connect_timed_out),
        ("pong timeout", seen.pong_timeouts),
        ("peer close", seen.peer_closes),
        ("transport closed", seen.transport_closes),
        ("local close", seen.local_closes),
        ("disconnect", seen.disconnects),
    ] {
        assert!(count > 0, "the run never went through {name}: {seen:?}");
    }
}

/// A scripted life: the driver jumps to every deadline; attempts open, fail or
/// time out in turn; the open connection answers, falls silent, is closed by the
/// peer or loses its transport now and then; every so often the application closes
/// and a fresh machine takes over.
fn run(config: Config, seen: &mut Seen) {
    let mut m = HeartbeatMachine::new(config, 9);
    let mut now = Instant::ZERO;
    m.connect(now);
    let mut silent = false;
    let mut payload = [0u8; 8];
    for step in 0..40_000u64 {
        let polled = poll_all(&mut m, seen, &mut payload);
        if polled.pinged {
            m.handle_ping_sent(now);
        }
        if polled.closing {
            m.handle_close_sent(now);
        }
        if polled.connect {
            seen.connects += 1;
            silent = false;
            match seen.connects % 4 {
                0 => {
                    m.handle_connect_failed(now);
                    seen.connect_failed += 1;
                }
                1 => seen.connect_timed_out += 1, // never answers
                _ => {
                    m.handle_connected(now);
                    seen.opened += 1;
                }
            }
        }
        if m.state() == State::Open && !silent {
            m.handle_frame(now);
            let _ = m.handle_ping(now, b"peer");
            let _ = m.ping_early(now, core::time::Duration::from_millis(50));
            match step % 701 {
                300 => silent = true,
                500 => m.handle_close(now, Some(1001)),
                600 => m.handle_transport_closed(now),
                _ if polled.pinged => {
                    if let PongOutcome::Matched { .. } = m.handle_pong(now, &payload) {
                        seen.pongs_matched += 1;
                    }
                }
                _ => {}
            }
        }
        if step % 5_000 == 4_999 && m.state() == State::Open {
            m.close(now, CloseCode::NORMAL);
            poll_all(&mut m, seen, &mut payload);
            m.handle_close_sent(now);
            m.handle_close(now, Some(1000));
            poll_all(&mut m, seen, &mut payload);
        }
        match m.poll_timeout() {
            Some(deadline) => {
                now = deadline.at;
                m.handle_timeout(now);
            }
            None => {
                // Finished: a fresh machine for the next connection.
                m = HeartbeatMachine::new(config, step);
                m.connect(now);
            }
        }
    }
}

/// What one drain of the actions asks the driver to report back.
struct Polled {
    pinged: bool,
    closing: bool,
    connect: bool,
}

fn poll_all(m: &mut HeartbeatMachine, seen: &mut Seen, payload: &mut [u8; 8]) -> Polled {
    let mut polled = Polled {
        pinged: false,
        closing: false,
        connect: false,
    };
    while let Some(action) = m.poll_action() {
        match action {
            Action::SendPing(p) => {
                payload.copy_from_slice(p.as_slice());
                polled.pinged = true;
            }
            Action::SendClose { .. } => polled.closing = true,
            Action::Connect { .. } => polled.connect = true,
            Action::Disconnect => seen.disconnects += 1,
            Action::Dead(DeathReason::PongTimeout { .. }) => seen.pong_timeouts += 1,
            Action::Dead(DeathReason::PeerClosed { .. }) => seen.peer_closes += 1,
            Action::Dead(DeathReason::TransportClosed) => seen.transport_closes += 1,
            Action::Dead(DeathReason::LocalClose { .. }) => seen.local_closes += 1,
            _ => {}
        }
    }
    polled
}
