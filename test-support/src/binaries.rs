//! The `heartbeat` command under test, built from this workspace.
//!
//! `env!("CARGO_BIN_EXE_heartbeat")` exists only inside the CLI's own package, so
//! tests elsewhere ask Cargo for the binary: [`heartbeat_cli`] runs
//! `cargo build -p heartbeat-cli --bin heartbeat` once per test process, in the
//! target directory and profile of the running test, and takes the executable's
//! path from Cargo's JSON messages. Under `cargo test --workspace` the binary is
//! already fresh and this costs a fraction of a second; run alone, the lab builds
//! it first, so it never tests a stale binary. `HEARTBEAT_LAB_CLI=/path/to/heartbeat`
//! overrides the lookup (to run the lab against another build).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The path of a freshly built `heartbeat` binary (or `HEARTBEAT_LAB_CLI`).
///
/// # Panics
/// If the build fails (with Cargo's diagnostics in the message).
pub fn heartbeat_cli() -> PathBuf {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match PATH.get_or_init(build_cli) {
        Ok(path) => path.clone(),
        Err(e) => panic!("cannot build the heartbeat CLI: {e}"),
    }
}

fn build_cli() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("HEARTBEAT_LAB_CLI") {
        return Ok(PathBuf::from(path));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace).args([
        "build",
        "-p",
        "heartbeat-cli",
        "--bin",
        "heartbeat",
        "--message-format=json-render-diagnostics",
    ]);
    // The running test is <target>/<profile>/deps/<name>: build into the same place.
    if let Some(profile_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .filter(|deps| deps.ends_with("deps"))
        .and_then(|deps| deps.parent().map(Path::to_path_buf))
    {
        if let Some(target) = profile_dir.parent() {
            cmd.arg("--target-dir").arg(target);
        }
        if profile_dir.ends_with("release") {
            cmd.arg("--release");
        }
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact")
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| "cargo reported no executable for heartbeat-cli".into())
}
