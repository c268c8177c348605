//! Fuzzes `HeartbeatMachine` with a hostile configuration and a driver that
//! misbehaves; all decoding and every invariant live in `heartbeat_fuzz::run`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| heartbeat_fuzz::run(data));
