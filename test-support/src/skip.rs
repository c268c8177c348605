//! Whether a lab test can run here, and the printed reason when it cannot.
//!
//! A lab test may skip only when a tool or a privilege is truly absent, and must say
//! so. The reason goes straight to the terminal's stderr (not through the test
//! harness's captured output), so a skipped test is visible in a passing run.
//! Under `CI=true` nothing may skip: CI runs as root and installs the tools, so an
//! absence there is a broken setup and the test fails instead.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::signal;

/// Whether network-namespace lab tests can run: root, `ip` (iproute2), `nft`
/// (nftables), and a namespace can actually be created. Prints
/// `SKIPPED <test>: <reason>` and returns `false` otherwise; panics instead under
/// `CI=true`.
pub fn require_netns(test: &str) -> bool {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    match PROBE.get_or_init(probe_netns) {
        Ok(()) => true,
        Err(why) => skip(test, why),
    }
}

/// Prints `SKIPPED <test>: <why>` to the terminal and returns `false`; panics
/// instead under `CI=true`.
pub fn skip(test: &str, why: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: {why} (CI=true: lab tests must run, not skip)");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    false
}

fn probe_netns() -> Result<(), String> {
    if !signal::is_root() {
        return Err("needs root (network namespaces and nftables)".into());
    }
    for (tool, arg, package) in [("ip", "-V", "iproute2"), ("nft", "--version", "nftables")] {
        let ok = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err(format!("`{tool}` not found (apt-get install -y {package})"));
        }
    }
    let name = format!("hblab-{}-probe", std::process::id());
    let created = Command::new("ip")
        .args(["netns", "add", &name])
        .output()
        .map_err(|e| format!("ip netns add: {e}"))?;
    let _ = Command::new("ip").args(["netns", "del", &name]).status();
    if !created.status.success() {
        return Err(format!(
            "cannot create a network namespace: {}",
            String::from_utf8_lossy(&created.stderr).trim()
        ));
    }
    Ok(())
}
