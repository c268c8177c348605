//! Python websockets 17 as the reference peer: the script below runs under
//! `python3`, with the library's own keepalive and no compression (the Rust sides
//! do not compress either).

use std::process::{Command, Stdio};

use crate::args::{fmt_secs, RoleArgs, Which};

/// The server and client script (same stdin/stdout protocol as the Rust children).
const SCRIPT: &str = include_str!("python_role.py");

/// Whether `python3 -c 'import websockets'` works; `Err` says why not.
pub fn available() -> Result<String, String> {
    let out = Command::new("python3")
        .args(["-c", "import websockets; print(websockets.__version__)"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("python3 not runnable: {e}"))?;
    if !out.status.success() {
        return Err("websockets not installed".into());
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !version.starts_with("17.") {
        eprintln!("python: websockets {version}, the script was written for 17.x");
    }
    Ok(version)
}

/// The `python3` command that runs the child `args` describes.
pub fn command(args: &RoleArgs) -> Command {
    let which = match args.which {
        Which::Server => "server",
        _ => "client",
    };
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(SCRIPT).args([
        which.to_owned(),
        args.conns.to_string(),
        fmt_secs(args.interval),
        fmt_secs(args.timeout),
        args.addrs.to_string(),
        args.port.to_string(),
        args.lifetime.to_string(),
        fmt_secs(args.ramp),
    ]);
    cmd
}
