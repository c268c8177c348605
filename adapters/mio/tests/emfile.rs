//! Out of file descriptors, the driver neither spins nor stalls: `accept` failing
//! with `EMFILE` is retried on a timer (10–100 ms), and connections waiting in the
//! backlog are taken as descriptors free up, without a new connection arriving.
//!
//! Alone in its own test binary: it lowers the process's `RLIMIT_NOFILE`.

use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use heartbeat_core::Config;
use heartbeat_mio::{Driver, DriverStats, Handler, Options};
use heartbeat_test_support::fds::{limit_open_files, open_files, CpuMeter};

struct Quiet;
impl Handler for Quiet {}

const WAITING: usize = 100;
const ROOM: usize = 20;

#[test]
fn out_of_descriptors_the_driver_backs_off_and_resumes_accepting_by_itself() {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (stats_tx, stats_rx) = mpsc::channel::<DriverStats>();
    thread::spawn(move || {
        // Each half-open handshake holds its descriptor for 300 ms.
        let config = Config::builder()
            .connect_timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        let mut driver = Driver::new(Options::new(config), Quiet).unwrap();
        let addr = driver.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        addr_tx.send(addr).unwrap();
        go_rx.recv().unwrap();
        loop {
            driver.run_for(Duration::from_millis(20)).unwrap();
            if stats_tx.send(driver.stats()).is_err() {
                return;
            }
        }
    });
    let addr = addr_rx.recv().unwrap();
    // 100 connections that never send a byte wait in the backlog; then room for
    // only 20 more descriptors.
    let idle: Vec<TcpStream> = (0..WAITING)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let mut meter = CpuMeter::new().unwrap();
    limit_open_files((open_files().unwrap() + ROOM) as u64).unwrap();
    go_tx.send(()).unwrap();

    let latest = |rx: &mpsc::Receiver<DriverStats>| {
        let mut s = rx.recv().unwrap();
        while let Ok(next) = rx.try_recv() {
            s = next;
        }
        s
    };
    thread::sleep(Duration::from_millis(100));
    let before = latest(&stats_rx);
    assert!(before.accept_exhaustions >= 1, "{before:?}");
    assert!(before.accepted < WAITING as u64, "{before:?}");
    // 250 ms of exhaustion (before the first handshakes time out at 300 ms): a
    // retry loop would spin a whole core.
    let cpu = meter.seconds().unwrap();
    thread::sleep(Duration::from_millis(250));
    let used = meter.seconds().unwrap() - cpu;
    let during = latest(&stats_rx);
    eprintln!(
        "{used:.2} CPU seconds in 250 ms of EMFILE, {} accept errors",
        during.accept_errors
    );
    assert!(
        used < 0.1,
        "{used:.2} CPU seconds in 250 ms of EMFILE: {during:?}"
    );
    assert!(
        during.accept_errors < 60,
        "retried at most every 10 ms: {during:?}"
    );
    // As the half-open handshakes time out and free their descriptors, the
    // backlog is taken, with no new connection to wake the listener.
    let end = Instant::now() + Duration::from_secs(15);
    let mut stats = latest(&stats_rx);
    while stats.accepted < WAITING as u64 && Instant::now() < end {
        stats = latest(&stats_rx);
    }
    assert_eq!(stats.accepted, WAITING as u64, "{stats:?}");
    drop(idle);
}
