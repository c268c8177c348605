//! `heartbeat connect`: websocat/wscat with a real heartbeat. stdin lines become
//! text messages, the peer's messages go to stdout, heartbeat status to stderr.

use std::io::{BufRead, Write};
use std::time::Duration;

use heartbeat_core::{CloseCode, Config, DeathReason};
use heartbeat_tokio::tungstenite::Message;
use heartbeat_tokio::{Event, JsonCodec, KeepAlive, Options, Receiver, Sender};
use serde_json::json;
use tokio::sync::mpsc;

use crate::args::{show, ConnectArgs};
use crate::output::{ms, Out, Tone};
use crate::ping::dead_fields;
use crate::report::{describe_connect_error, describe_death};
use crate::Exit;

/// Runs the session until stdin ends (then lingers and closes), Ctrl-C, or the
/// connection ends (without `--reconnect`). Returns the documented exit code.
pub async fn run(args: ConnectArgs, config: Config, out: Out) -> Exit {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut options = Options::new(config).observe(move |e: &Event| {
        let _ = events_tx.send(e.clone());
    });
    if args.app_json {
        options = options.codec(JsonCodec);
    }
    let mut connections = match args.connect.connect(&args.url, options) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let (conns_tx, mut conns) = mpsc::channel::<KeepAlive>(1);
    tokio::spawn(async move {
        while let Some(conn) = connections.next().await {
            if conns_tx.send(conn).await.is_err() {
                return;
            }
        }
    });
    let lines = stdin_lines();
    tokio::pin!(lines);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);

    let mut link: Option<(Sender, Receiver)> = None;
    let mut session = Session::default();
    let who = "connect";
    let exit = loop {
        let linger = async {
            match (session.stdin_done, session.last_activity) {
                (true, Some(at)) => tokio::time::sleep_until(at + args.linger).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut interrupted => break close(link, &mut conns, config).await.unwrap_or(session.stopped()),
            _ = linger, if link.is_some() => break close(link, &mut conns, config).await.unwrap_or(session.stopped()),
            conn = conns.recv() => match conn {
                Some(conn) => {
                    link = Some(conn.split());
                    session.touch();
                }
                // The machine finished (a permanent close, or attempts spent).
                None => break session.end.unwrap_or(Exit::ConnectionEnded),
            },
            msg = recv(&mut link) => match msg {
                Ok(msg) => {
                    session.touch();
                    print_message(msg);
                }
                // The verdict comes with its event; the next connection, if any, later.
                Err(_) => link = None,
            },
            line = lines.recv(), if link.is_some() && !session.stdin_done => match line {
                Some(line) => {
                    if let Some((tx, _)) = &link {
                        // A failure is the connection's end, reported by its event.
                        let _ = tx.send(Message::Text(line.into())).await;
                    }
                    session.touch();
                }
                None => {
                    session.stdin_done = true;
                    session.touch();
                }
            },
            event = events.recv() => {
                let Some(event) = event else { break Exit::ConnectionEnded };
                if let Some(exit) = session.event(&event, &args, &config, &out, who) {
                    break exit;
                }
            }
        }
    };
    // What happened meanwhile (our close going out) is reported too.
    while let Ok(event) = events.try_recv() {
        let _ = session.event(&event, &args, &config, &out, who);
    }
    exit
}

/// What the loop tracks besides the connection.
#[derive(Default)]
struct Session {
    /// stdin ended: linger, then close.
    stdin_done: bool,
    /// The last message in or out (or connect): the linger runs from here.
    last_activity: Option<tokio::time::Instant>,
    /// How the session ends when the connections end, if already known.
    end: Option<Exit>,
    /// Pongs received, over every connection.
    pongs: u64,
}

impl Session {
    /// How a session we ended (stdin, Ctrl-C) exits, as ping(8) would: 1 if the
    /// peer never answered a ping, else 0.
    fn stopped(&self) -> Exit {
        if self.pongs == 0 {
            Exit::Unresponsive
        } else {
            Exit::Ok
        }
    }

    fn touch(&mut self) {
        self.last_activity = Some(tokio::time::Instant::now());
    }

    /// Reports `event` on stderr; `Some(exit)` when it ends the session.
    fn event(
        &mut self,
        event: &Event,
        args: &ConnectArgs,
        config: &Config,
        out: &Out,
        who: &str,
    ) -> Option<Exit> {
        match event {
            Event::Connected { attempt } => out.event(
                "connected",
                who,
                json!({ "url": args.url, "attempt": attempt }),
                Tone::Good,
                &format!(
                    "connected to {} (heartbeat every {}, timeout {})",
                    args.url,
                    show(config.ping_interval()),
                    show(config.pong_timeout())
                ),
            ),
            Event::PingSent { seq } => {
                out.event("ping", who, json!({ "seq": seq }), Tone::Plain, "")
            }
            Event::Pong { seq, rtt } => {
                self.pongs += 1;
                out.event(
                    "pong",
                    who,
                    json!({ "seq": seq, "rtt_ms": ms(*rtt) }),
                    Tone::Plain,
                    "",
                );
            }
            Event::Dead { reason, .. } => {
                out.event(
                    "dead",
                    who,
                    dead_fields(reason),
                    if reason.is_fault() {
                        Tone::Bad
                    } else {
                        Tone::Plain
                    },
                    &describe_death(reason),
                );
                let exit = match reason {
                    DeathReason::PongTimeout { .. } => Exit::Unresponsive,
                    r if !r.is_fault() => Exit::Ok,
                    _ => Exit::ConnectionEnded,
                };
                self.end = Some(exit);
                if !args.reconnect {
                    return Some(exit);
                }
            }
            Event::Closed { code } => out.event(
                "closed",
                who,
                json!({ "code": code }),
                Tone::Plain,
                &format!("closed with {code}"),
            ),
            // Without --reconnect the session ends instead.
            Event::Reconnecting { after, attempt } if args.reconnect => out.event(
                "reconnecting",
                who,
                json!({ "delay_ms": ms(*after), "attempt": attempt }),
                Tone::Plain,
                &format!("reconnecting in {} (attempt {attempt})", show(*after)),
            ),
            Event::ConnectFailed { error } => {
                let cause = describe_connect_error(error);
                if !args.reconnect && !out.is_json() {
                    eprintln!("heartbeat: cannot connect to {}: {cause}", args.url);
                } else {
                    out.event(
                        "connect_failed",
                        who,
                        json!({ "error": cause }),
                        Tone::Bad,
                        &format!("cannot connect: {cause}"),
                    );
                }
                if !args.reconnect {
                    return Some(Exit::ConnectionEnded);
                }
            }
            _ => {}
        }
        None
    }
}

/// The next message of the current connection; never while there is none.
async fn recv(link: &mut Option<(Sender, Receiver)>) -> Result<Message, heartbeat_tokio::Error> {
    match link {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Closes with 1000 and waits (at most the close timeout) for the handshake to end
/// and the client to finish; `None`: ended as asked.
async fn close(
    link: Option<(Sender, Receiver)>,
    conns: &mut mpsc::Receiver<KeepAlive>,
    config: Config,
) -> Option<Exit> {
    let (tx, _rx) = link?;
    if tx.close(CloseCode::NORMAL).await.is_err() {
        return None;
    }
    let wait = config.close_timeout() + Duration::from_millis(100);
    let _ = tokio::time::timeout(wait, conns.recv()).await;
    None
}

/// Writes a received message to stdout: text as a line, binary as its bytes.
fn print_message(msg: Message) {
    let mut stdout = std::io::stdout().lock();
    let result = match msg {
        Message::Text(text) => writeln!(stdout, "{}", text.as_str()),
        Message::Binary(bytes) => stdout.write_all(&bytes),
        _ => Ok(()),
    };
    // A closed stdout (`| head`) must not crash the session.
    let _ = result.and_then(|()| stdout.flush());
}

/// stdin's lines, read by a thread of their own (a blocking read must not hold a
/// runtime worker, and the process must not wait for it at exit); the channel ends
/// at EOF or a read error.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    rx
}
