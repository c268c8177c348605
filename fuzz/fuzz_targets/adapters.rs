//! Fuzzes the adapters' input path: a hostile peer's bytes and timings through
//! tungstenite, the frame → event mapping, the JSON heartbeat codec and the shared
//! action executor; every invariant lives in `heartbeat_fuzz::adapters::run`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| heartbeat_fuzz::adapters::run(data));
