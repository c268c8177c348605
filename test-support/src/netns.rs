//! Two network namespaces joined by a veth pair, and silent blackholes between them.
//!
//! [`NetnsPair::new`] creates namespaces `hblab-<pid>-<n>-a` and `...-b` with one
//! veth pair created inside them (nothing appears in the root namespace), addresses
//! [`ADDR_A`] and [`ADDR_B`] that exist only inside the pair, and loopback up. Every
//! pair is isolated, so tests running in parallel reuse the same addresses. Dropping
//! the pair (also while a test panics) kills whatever still runs inside it and
//! deletes both namespaces, which removes the veth pair and every nftables rule
//! with them. Pairs left behind by a killed test run are swept by the next run.
//!
//! [`NetnsPair::blackhole`] is the half-open fault heartbeats exist for (recipe in
//! `shared/FAULTS.md`): an nftables rule in the *receiving* namespace's prerouting
//! hook drops every packet from the other side. Both ends stay ESTABLISHED, no RST
//! is sent, the sender retransmits into the void; removing the rule heals the flow.
//!
//! Needs root, `ip` (iproute2) and `nft` (nftables): check with
//! [`require_netns`](crate::skip::require_netns) first.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::Instant;

use crate::signal;

/// The address of side A inside every pair.
pub const ADDR_A: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 1);
/// The address of side B inside every pair.
pub const ADDR_B: Ipv4Addr = Ipv4Addr::new(10, 250, 0, 2);

/// One end of a [`NetnsPair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The first namespace (address [`ADDR_A`]).
    A,
    /// The second namespace (address [`ADDR_B`]).
    B,
}

impl Side {
    /// The other end.
    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }
}

/// Two network namespaces joined by a veth pair; deleted on drop.
pub struct NetnsPair {
    names: [String; 2],
}

impl NetnsPair {
    /// Creates the pair (a few tens of milliseconds). On failure, whatever was
    /// created is removed again.
    pub fn new() -> io::Result<NetnsPair> {
        static SWEEP: Once = Once::new();
        SWEEP.call_once(sweep_stale);
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let base = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let pair = NetnsPair {
            names: [format!("{base}-a"), format!("{base}-b")],
        };
        let [a, b] = &pair.names;
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        ip(&[
            "-n", a, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", b,
        ])?;
        ip(&[
            "-n",
            a,
            "addr",
            "add",
            &format!("{ADDR_A}/24"),
            "dev",
            "veth-a",
        ])?;
        ip(&[
            "-n",
            b,
            "addr",
            "add",
            &format!("{ADDR_B}/24"),
            "dev",
            "veth-b",
        ])?;
        for (ns, dev) in [(a, "veth-a"), (b, "veth-b"), (a, "lo"), (b, "lo")] {
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        Ok(pair)
    }

    /// The namespace name of `side`.
    pub fn name(&self, side: Side) -> &str {
        &self.names[side.index()]
    }

    /// The address of `side` (reachable from the other side only).
    pub fn addr(&self, side: Side) -> Ipv4Addr {
        match side {
            Side::A => ADDR_A,
            Side::B => ADDR_B,
        }
    }

    /// A command that runs `program` inside `side`'s namespace (`ip netns exec`,
    /// which execs `program` in place: the child's pid is the program's pid, so it
    /// can be stopped and resumed directly).
    pub fn command(&self, side: Side, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.name(side)]).arg(program);
        cmd
    }

    /// Runs `args` inside `side`'s namespace to completion; returns its stdout.
    pub fn run(&self, side: Side, args: &[&str]) -> io::Result<String> {
        let (program, rest) = args
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
        let mut cmd = self.command(side, program);
        cmd.args(rest);
        output(cmd, None)
    }

    /// Installs a silent blackhole: `receiving`'s namespace drops every packet from
    /// the other side in its prerouting hook. Removed by [`Blackhole::heal`] or on drop.
    pub fn blackhole(&self, receiving: Side) -> io::Result<Blackhole<'_>> {
        let from = self.addr(receiving.other());
        let script = format!(
            "table inet {TABLE} {{\n  chain pre {{\n    type filter hook prerouting priority -300; policy accept;\n    ip saddr {from} counter drop\n  }}\n}}\n"
        );
        let requested = Instant::now();
        let mut cmd = self.command(receiving, "nft");
        cmd.args(["-f", "-"]);
        output(cmd, Some(&script))?;
        Ok(Blackhole {
            pair: self,
            side: receiving,
            requested,
            installed: Instant::now(),
            healed: false,
        })
    }

    /// Both directions at once (B drops A's packets, then A drops B's): the cable is
    /// cut, silently. `requested` of the result is before the first rule,
    /// `installed` after the second.
    pub fn partition(&self) -> io::Result<Partition<'_>> {
        let into_b = self.blackhole(Side::B)?;
        let into_a = self.blackhole(Side::A)?;
        Ok(Partition {
            requested: into_b.requested,
            installed: into_a.installed,
            rules: [into_b, into_a],
        })
    }

    /// Pids of the processes running inside `side`'s namespace.
    pub fn pids(&self, side: Side) -> Vec<u32> {
        pids_in(self.name(side))
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        for name in &self.names {
            remove(name);
        }
    }
}

/// An nftables drop rule in one namespace; removed on drop.
pub struct Blackhole<'a> {
    pair: &'a NetnsPair,
    side: Side,
    /// Just before the rule was requested (the fault began no earlier).
    pub requested: Instant,
    /// Just after `nft` returned (the fault had begun).
    pub installed: Instant,
    healed: bool,
}

impl Blackhole<'_> {
    /// Packets dropped so far by this rule (the rule's nftables counter).
    pub fn dropped_packets(&self) -> io::Result<u64> {
        let listing = self
            .pair
            .run(self.side, &["nft", "list", "table", "inet", TABLE])?;
        let count = listing
            .split_whitespace()
            .skip_while(|w| *w != "packets")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no counter in {listing:?}")))?;
        Ok(count)
    }

    /// Removes the rule: the flow heals (TCP retransmits what was dropped).
    pub fn heal(mut self) -> io::Result<()> {
        self.healed = true;
        self.pair
            .run(self.side, &["nft", "delete", "table", "inet", TABLE])
            .map(drop)
    }
}

impl Drop for Blackhole<'_> {
    fn drop(&mut self) {
        if !self.healed {
            let _ = self
                .pair
                .run(self.side, &["nft", "delete", "table", "inet", TABLE]);
        }
    }
}

/// A blackhole in both directions ([`NetnsPair::partition`]); removed on drop.
pub struct Partition<'a> {
    /// Just before the first rule was requested.
    pub requested: Instant,
    /// Just after the second rule was installed.
    pub installed: Instant,
    /// The two rules: into B, into A.
    pub rules: [Blackhole<'a>; 2],
}

impl Partition<'_> {
    /// Packets dropped so far, both directions.
    pub fn dropped_packets(&self) -> io::Result<u64> {
        Ok(self.rules[0].dropped_packets()? + self.rules[1].dropped_packets()?)
    }

    /// Removes both rules.
    pub fn heal(self) -> io::Result<()> {
        let [a, b] = self.rules;
        a.heal()?;
        b.heal()
    }
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> io::Result<String> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    output(cmd, None)
}

/// Runs `cmd` (with `stdin` written to it if given); its stdout, or an error with
/// the command and its stderr.
fn output(mut cmd: Command, stdin: Option<&str>) -> io::Result<String> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("{cmd:?}: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kills what runs in namespace `name`, then deletes it (best effort).
fn remove(name: &str) {
    for pid in pids_in(name) {
        let _ = signal::resume(pid);
        let _ = signal::kill(pid);
    }
    let _ = ip(&["netns", "del", name]);
}

fn pids_in(name: &str) -> Vec<u32> {
    ip(&["netns", "pids", name])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Deletes namespaces left by lab runs whose process is gone (a killed test run
/// cannot run its destructors).
fn sweep_stale() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let owner: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if owner.is_some_and(|pid| {
            pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        }) {
            remove(name);
        }
    }
}

const PREFIX: &str = "hblab-";
const TABLE: &str = "hblab_drop";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::JsonProc;
    use crate::skip::require_netns;
    use std::time::Duration;

    /// A TCP connect from B to A's port 5000 (exit status 0: connected in 1 s).
    fn connects(pair: &NetnsPair) -> bool {
        let script =
            format!("import socket; socket.create_connection(('{ADDR_A}', 5000), timeout=1)");
        pair.command(Side::B, "python3")
            .args(["-c", &script])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    #[test]
    fn a_blackhole_silently_drops_until_healed_and_drop_removes_everything() {
        if !require_netns("a_blackhole_silently_drops_until_healed_and_drop_removes_everything") {
            return;
        }
        let pair = NetnsPair::new().unwrap();
        let names = [pair.name(Side::A).to_owned(), pair.name(Side::B).to_owned()];
        let listen = format!(
            "import socket, time\ns = socket.socket(); s.bind(('{ADDR_A}', 5000)); s.listen()\nprint('{{\"event\":\"ready\"}}', flush=True)\ntime.sleep(60)"
        );
        let mut cmd = pair.command(Side::A, "python3");
        cmd.args(["-u", "-c", &listen]);
        let mut server = JsonProc::spawn("listener", cmd).unwrap();
        server
            .wait_for("ready", Duration::from_secs(10), |e| e.is("ready"))
            .unwrap();
        assert!(pair.pids(Side::A).contains(&server.pid()));
        // The address exists only inside the pair.
        assert!(!Command::new("ip")
            .args(["-o", "addr"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains(&ADDR_A.to_string()))
            .unwrap());
        assert!(connects(&pair));

        let hole = pair.blackhole(Side::A).unwrap();
        assert!(!connects(&pair), "the SYN must vanish: a timeout, no RST");
        assert!(hole.dropped_packets().unwrap() >= 1);
        hole.heal().unwrap();
        assert!(connects(&pair));

        let partition = pair.partition().unwrap();
        assert!(!connects(&pair));
        drop(partition);
        assert!(connects(&pair));

        std::mem::forget(server); // the pair's drop must kill it
        drop(pair);
        let left = ip(&["netns", "list"]).unwrap();
        for name in names {
            assert!(!left.contains(&name), "{name} still exists: {left}");
        }
    }
}
