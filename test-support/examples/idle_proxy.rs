//! Runs an [`IdleProxy`] until killed, for trying `heartbeat probe` by hand:
//! `cargo run -p heartbeat-test-support --example idle_proxy -- UPSTREAM MILLIS silent|rst|fin`
//! prints the address to probe.

use std::time::Duration;

use heartbeat_test_support::{IdleMode, IdleProxy};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [upstream, millis, mode] = args.as_slice() else {
        eprintln!("usage: idle_proxy UPSTREAM_ADDR IDLE_MILLIS silent|rst|fin");
        std::process::exit(2);
    };
    let (Ok(upstream), Ok(millis)) = (upstream.parse(), millis.parse()) else {
        eprintln!("idle_proxy: expected an address and a number of milliseconds");
        std::process::exit(2);
    };
    let mode = match mode.as_str() {
        "rst" => IdleMode::Rst,
        "fin" => IdleMode::Fin,
        _ => IdleMode::Silent,
    };
    let proxy = match IdleProxy::start(upstream, Duration::from_millis(millis), mode) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("idle_proxy: {e}");
            std::process::exit(1);
        }
    };
    println!("ws://{}/", proxy.addr());
    loop {
        std::thread::park();
    }
}
