//! The steady state allocates nothing: a counting global allocator watches a
//! machine through many ping/pong cycles, inbound pings, frames, a death and
//! reconnects.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use heartbeat_core::{Action, Config, HeartbeatMachine, Instant};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn steady_state_allocates_nothing() {
    let config = Config::builder()
        .ping_interval(Duration::from_millis(100))
        .pong_timeout(Duration::from_millis(100))
        .build()
        .expect("valid");
    let mut m = HeartbeatMachine::new(config, 9);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut now = Instant::ZERO;
    m.handle_connected(now);
    for cycle in 0..10_000u64 {
        now = now + Duration::from_millis(100);
        m.handle_timeout(now);
        let mut payload = [0u8; 8];
        while let Some(action) = m.poll_action() {
            if let Action::SendPing(p) = action {
                payload.copy_from_slice(p.as_slice());
            }
        }
        m.handle_ping_sent(now);
        m.handle_frame(now);
        m.handle_ping(now, b"peer");
        let _ = m.poll_action();
        if cycle % 1000 == 999 {
            // A death and a reconnect now and then.
            m.handle_transport_closed(now);
            while m.poll_action().is_some() {}
            m.handle_connected(now);
        } else {
            m.handle_pong(now + Duration::from_millis(5), &payload);
        }
        let _ = m.poll_timeout();
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "the machine allocated");
    assert!(m.stats().pongs_matched > 9_000);
}
