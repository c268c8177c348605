//! Measures how late `epoll_wait` (through `mio::Poll::poll`) wakes for a timeout,
//! asked naively and the way the driver asks (0.2 % short, then the remainder).
//!
//! `cargo run --release -p heartbeat-mio --example timer_error [SECONDS...]`
//! (default waits: 0.1 0.3 1 5 20 s; the 20 s one takes 40 s in total).

use std::time::Duration;

fn main() -> std::io::Result<()> {
    let args: Vec<f64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let waits = if args.is_empty() {
        vec![0.1, 0.3, 1.0, 5.0, 20.0]
    } else {
        args
    };
    println!("{:>8}  {:>14}  {:>14}", "wait", "naive late", "driver late");
    for secs in waits {
        let wait = Duration::from_secs_f64(secs);
        let naive = heartbeat_mio::measure_poll_lateness(wait, true)?;
        let driver = heartbeat_mio::measure_poll_lateness(wait, false)?;
        println!("{:>7.1}s  {:>14?}  {:>14?}", secs, naive, driver);
    }
    Ok(())
}
