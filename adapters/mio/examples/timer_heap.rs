//! The cost of the driver's one timer heap at 1,000 to 1,000,000 connections: the
//! average time to re-file a connection's deadline (a push) and to wake a due
//! connection (a pop), in steady state (each popped deadline re-filed one interval
//! later), deadlines spread over the interval as connections opened over time
//! would be.
//!
//! `cargo run --release -p heartbeat-mio --example timer_heap [N...]`
//! (default: 1000 20000 1000000).

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if args.is_empty() {
        vec![1_000, 20_000, 1_000_000]
    } else {
        args
    };
    println!("{:>10}  {:>10}  {:>10}", "entries", "push ns", "pop ns");
    for n in sizes {
        let (push, pop) = heartbeat_mio::measure_timer_heap(n);
        println!("{n:>10}  {push:>10.0}  {pop:>10.0}");
    }
}
