//! The core stays pure: no clock, no randomness, no I/O, no std, no unsafe.
//! Fails if any of them appears under `heartbeat-core/src`.

use std::fs;
use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "Instant::now",
    "SystemTime",
    "UNIX_EPOCH",
    "std::",
    "extern crate alloc",
    "alloc::",
    "rand::",
    "getrandom",
    "thread_rng",
    "OsRng",
    "std::io",
    "std::net",
    "unsafe ",
];

#[test]
fn core_sources_read_no_clock_no_rng_and_do_no_io() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut checked = 0;
    for entry in fs::read_dir(&src).expect("src exists") {
        let path = entry.expect("readable").path();
        let text = fs::read_to_string(&path).expect("utf-8 source");
        // `#[cfg(test)] mod tests` may use std for formatting; production code may not.
        let production = text.split("#[cfg(test)]").next().unwrap_or("");
        for word in FORBIDDEN {
            for (n, line) in production.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                assert!(
                    !code.contains(word),
                    "{}:{}: `{word}` in heartbeat-core: {line}",
                    path.display(),
                    n + 1
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 5, "checked {checked} files");
    let lib = fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    for attr in [
        "#![no_std]",
        "#![forbid(unsafe_code)]",
        "#![warn(missing_docs)]",
    ] {
        assert!(lib.contains(attr), "lib.rs lacks {attr}");
    }
}

#[test]
fn core_has_no_dependencies_but_optional_no_std_serde() {
    let manifest = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("manifest");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .unwrap_or("");
    for line in deps.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The one exception: serde's derive for the opt-in `serde` feature, without
        // std (no clock, no RNG, no allocation).
        let serde_opt_in = line.starts_with("serde = ")
            && line.contains("default-features = false")
            && line.contains("optional = true");
        assert!(
            serde_opt_in,
            "heartbeat-core must stay dependency-free (no clock or RNG crates): {line}"
        );
    }
}
