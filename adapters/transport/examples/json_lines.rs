//! Heartbeats as newline-delimited JSON over a plain TCP stream: a complete adapter.
//!
//! Wire protocol, one JSON object per line:
//! - `{"type":"ping","seq":7}` is answered with `{"type":"pong","seq":7}` (`seq` is
//!   optional: a ping without it gets a pong without it);
//! - `{"type":"close","code":1011}` ends the connection;
//! - every other line is application data.
//!
//! Run `cargo run -p heartbeat-transport --example json_lines` for a demo on
//! loopback: a live peer stays up, a peer that stops answering is declared dead
//! within the configured bound. `json_lines serve 127.0.0.1:7000` and
//! `json_lines connect 127.0.0.1:7000` run one end each.

use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use heartbeat_core::{CloseCode, Config, DeathReason, HeartbeatMachine, Instant, Role, Stats};
use heartbeat_transport::{drive, feed, Clock, Handover, Incoming, Transport};

/// The write half of the connection: what the machine's actions look like on the wire.
pub struct JsonLines(pub TcpStream);

impl Transport for JsonLines {
    type Error = io::Error;
    fn send_ping(&mut self, payload: &[u8]) -> io::Result<Handover> {
        writeln!(self.0, r#"{{"type":"ping"{}}}"#, seq_field(payload))?;
        Ok(Handover::Taken) // the blocking write returned: the kernel has the bytes
    }
    fn send_pong(&mut self, payload: &[u8]) -> io::Result<()> {
        writeln!(self.0, r#"{{"type":"pong"{}}}"#, seq_field(payload))
    }
    fn send_close(&mut self, code: CloseCode, _reason: &str) -> io::Result<Handover> {
        writeln!(self.0, r#"{{"type":"close","code":{code}}}"#)?;
        Ok(Handover::Taken)
    }
    fn disconnect(&mut self) {
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

/// How a connection ended.
#[derive(Debug)]
pub struct Report {
    /// Why it ended.
    pub reason: DeathReason,
    /// When (on this run's clock), and the machine's counters.
    pub at: Duration,
    /// The machine's counters.
    pub stats: Stats,
}

/// Runs the heartbeat on `stream` (already open) until the machine lets go of it,
/// passing every application line to `on_line`. The whole driver: clock, input
/// first, then timers.
pub fn run(stream: TcpStream, config: Config, mut on_line: impl FnMut(&str)) -> io::Result<Report> {
    let clock = Clock::new();
    let mut hb = HeartbeatMachine::new(config, heartbeat_transport::seed());
    let mut tx = JsonLines(stream.try_clone()?);
    let mut rx = BufReader::new(stream);
    let (mut line, mut died_at) = (String::new(), None);
    hb.handle_connected(clock.now()); // the stream is open: no connect attempt
    loop {
        let outcome = drive(&mut hb, &mut tx, clock.now());
        if outcome.dead.is_some() {
            died_at = Some(clock.now()); // tell the application here
        }
        if outcome.disconnected {
            break; // the close handshake is over (or was cut short): let go
        }
        // Block in the read at most until the machine's next deadline (>= 1 ms).
        let wait = hb
            .poll_timeout()
            .map_or(Duration::from_secs(3600), |d| clock.until(d.at));
        rx.get_ref()
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        match rx.read_line(&mut line) {
            Ok(0) => {
                feed(&mut hb, clock.now(), Incoming::Ended);
            }
            Ok(_) if line.ends_with('\n') => {
                on_message(&mut hb, clock.now(), line.trim_end(), &mut on_line);
                line.clear();
            }
            Ok(_) => {} // a last line without '\n': the next read reports the end
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                hb.handle_timeout(clock.now()) // nothing arrived: the deadline is due
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                feed(&mut hb, clock.now(), Incoming::Ended);
            }
        }
    }
    // Every state after a connection ended carries the reason of its one `Dead`.
    let reason = hb
        .state()
        .reason()
        .ok_or_else(|| io::Error::other("not ended"))?;
    Ok(Report {
        reason,
        at: died_at.unwrap_or(clock.now()).as_duration(),
        stats: hb.stats(),
    })
}

/// Feeds one received line to the machine.
fn on_message(hb: &mut HeartbeatMachine, now: Instant, line: &str, on_line: &mut impl FnMut(&str)) {
    let value: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
    let seq = value["seq"].as_u64().map(u64::to_be_bytes);
    let payload: &[u8] = seq.as_ref().map_or(&[], |s| &s[..]);
    match value["type"].as_str() {
        Some("ping") => feed(hb, now, Incoming::Ping(payload)),
        Some("pong") => feed(hb, now, Incoming::Pong(payload)),
        Some("close") => {
            let code = value["code"].as_u64().and_then(|c| u16::try_from(c).ok());
            feed(hb, now, Incoming::Close(code))
        }
        _ => {
            on_line(line);
            feed(hb, now, Incoming::Data)
        }
    };
}

/// `,"seq":N` for an 8-byte payload (our pings), nothing for an empty one.
fn seq_field(payload: &[u8]) -> String {
    match <[u8; 8]>::try_from(payload) {
        Ok(seq) => format!(r#","seq":{}"#, u64::from_be_bytes(seq)),
        Err(_) => String::new(),
    }
}

/// The configuration the demo uses: a verdict within 400 ms of silence.
pub fn demo_config(role: Role) -> Config {
    Config::builder()
        .role(role)
        .ping_interval(Duration::from_millis(200))
        .pong_timeout(Duration::from_millis(200))
        .close_timeout(Duration::from_millis(200))
        .build()
        .expect("a valid configuration")
}

#[allow(dead_code)] // the tests include this file as a module and use `run` only
fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["serve", addr] => {
            let listener = TcpListener::bind(addr)?;
            for stream in listener.incoming() {
                let stream = stream?;
                std::thread::spawn(move || {
                    let report = run(stream, demo_config(Role::Server), |l| println!("< {l}"));
                    println!("connection over: {report:?}");
                });
            }
            Ok(())
        }
        ["connect", addr] => {
            let report = run(TcpStream::connect(addr)?, demo_config(Role::Server), |l| {
                println!("< {l}")
            })?;
            println!("connection over: {report:?}");
            Ok(())
        }
        [] => demo(),
        _ => {
            eprintln!("usage: json_lines [serve ADDR | connect ADDR]");
            Ok(())
        }
    }
}

/// Two loopback connections: one to a live peer, one to a peer that stops answering.
#[allow(dead_code)]
fn demo() -> io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    // The live peer runs the same driver; it is shut down after 1 s.
    let live = TcpStream::connect(addr)?;
    let live_handle = live.try_clone()?;
    let peer = std::thread::spawn(move || run(live, demo_config(Role::Server), |_| {}));
    let (ours, _) = listener.accept()?;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        let _ = live_handle.shutdown(Shutdown::Both);
    });
    println!(
        "live peer: {:?}",
        run(ours, demo_config(Role::Server), |_| {})?
    );
    let _ = (peer.join(), killer.join());
    // The silent peer reads everything and never answers (a hung process).
    let _silent = TcpStream::connect(addr)?;
    let (ours, _) = listener.accept()?;
    let report = run(ours, demo_config(Role::Server), |_| {})?;
    println!(
        "silent peer: {:?} after {:?} (bound {:?})",
        report.reason,
        report.at,
        demo_config(Role::Server).detection_bound(Duration::ZERO)
    );
    Ok(())
}
