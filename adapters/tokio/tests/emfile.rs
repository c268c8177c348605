//! Out of file descriptors, [`Acceptor`] neither spins nor stalls: `accept`
//! failing with `EMFILE` is retried after 10–100 ms, and connections waiting in
//! the backlog are taken as descriptors free up, without a new one arriving.
//!
//! Alone in its own test binary: it lowers the process's `RLIMIT_NOFILE`.

use std::time::Duration;

use heartbeat_test_support::fds::{limit_open_files, open_files, CpuMeter};
use heartbeat_tokio::Acceptor;
use tokio::net::TcpListener;
use tokio::time::timeout;

/// Connections waiting in the backlog.
const WAITING: usize = 100;
/// Descriptors left free once the limit is lowered.
const ROOM: usize = 20;

#[test]
fn out_of_descriptors_the_acceptor_backs_off_and_resumes_by_itself() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = Acceptor::new(listener);
        let waiting: Vec<std::net::TcpStream> = (0..WAITING)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let mut meter = CpuMeter::new().unwrap();
        limit_open_files((open_files().unwrap() + ROOM) as u64).unwrap();

        // Hold what is accepted until no descriptor is left.
        let mut held = Vec::new();
        while let Ok(accepted) = timeout(Duration::from_millis(200), acceptor.accept()).await {
            held.push(accepted.unwrap().0);
        }
        assert!(
            acceptor.exhausted(),
            "out of descriptors after {}",
            held.len()
        );
        assert!(held.len() < WAITING, "{} accepted", held.len());

        // 300 ms of exhaustion: an accept loop that retries at once spins a core.
        let cpu = meter.seconds().unwrap();
        assert!(timeout(Duration::from_millis(300), acceptor.accept())
            .await
            .is_err());
        let used = meter.seconds().unwrap() - cpu;
        eprintln!("{used:.2} CPU seconds in 300 ms of EMFILE");
        assert!(used < 0.1, "{used:.2} CPU seconds in 300 ms of EMFILE");

        // Free the descriptors: the backlog is taken with no new connection to
        // wake the listener (each accepted socket is dropped at once).
        let mut taken = held.len();
        held.clear();
        while taken < WAITING {
            let accepted = timeout(Duration::from_secs(5), acceptor.accept())
                .await
                .expect("the backlog is taken once descriptors are free");
            drop(accepted.unwrap());
            taken += 1;
        }
        assert!(!acceptor.exhausted());
        drop(waiting);
    });
}
