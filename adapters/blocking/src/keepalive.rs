//! [`KeepAlive`]: one WebSocket connection whose blocking reads run its heartbeat.

use std::borrow::Borrow;
use std::io::ErrorKind;
use std::net::{Shutdown, TcpStream};

use heartbeat_core::{
    CloseCode, Config, DeathReason, HeartbeatMachine, Instant, PongOutcome, State,
};
use heartbeat_transport::tungstenite::{incoming, incoming_from_error, Limits, WsTransport};
use heartbeat_transport::{drive, feed, seed, Clock, Fed, Incoming, NoTransport, Outcome};
use tungstenite::{Error as WsError, Message, WebSocket};

use crate::connect;
use crate::socket::Socket;
use crate::wait::{is_timeout, socket_timeout, FOREVER, MIN_WAIT};
use crate::Error;

/// An open WebSocket whose blocking reads also run its heartbeat.
///
/// Every wait is the machine's: a read blocks at most until
/// [`poll_timeout`](HeartbeatMachine::poll_timeout), then the machine's
/// [`handle_timeout`](HeartbeatMachine::handle_timeout) decides what is due.
pub struct KeepAlive<C: Borrow<Config> = Config, S: Socket = TcpStream> {
    ws: WebSocket<S>,
    hb: HeartbeatMachine<C>,
    clock: Clock,
    /// The last write hit the write timeout: data waits in tungstenite's buffer.
    blocked: bool,
    /// A ping waits in that buffer; it is reported sent once the buffer drains.
    ping_unflushed: bool,
    /// Our close waits in that buffer; it is reported sent once the buffer drains.
    close_unflushed: bool,
    /// The reason of the machine's one `Dead` for this connection, once it came.
    dead: Option<DeathReason>,
    /// The machine let go of this connection (`Disconnect`): the socket is shut down.
    disconnected: bool,
    /// A read failed: nothing more is read from this socket (after a violation it
    /// is kept, unread, for the close window, so our close frame leaves before
    /// the kernel resets a connection dropped with the peer's bytes unread).
    read_over: bool,
    /// The attempt the machine started (`Connect`) while this connection drained.
    connect: Option<u32>,
}

impl KeepAlive<Config> {
    /// Connects to `url` (`ws://host:port/path`) with `config`.
    ///
    /// The TCP connect and the WebSocket upgrade together are bounded by
    /// [`Config::connect_timeout`]: past it the error is
    /// [`Error::Dead`]`(`[`DeathReason::ConnectFailed`]`)` with
    /// [`ConnectFailure::TimedOut`](heartbeat_core::ConnectFailure::TimedOut). A bad
    /// URL is [`Error::Url`] at once. One attempt only: [`run_client`](crate::run_client)
    /// retries.
    pub fn connect(url: &str, config: Config) -> Result<KeepAlive, Error> {
        KeepAlive::connect_with_limits(url, config, Limits::default())
    }

    /// [`connect`](Self::connect) with `limits` instead of [`Limits::default`]:
    /// the largest message and frame the peer may send (over them: close 1009),
    /// and the outbound buffer that caps what [`send`](KeepAlive::send) takes.
    /// (`max_connections` and `max_handshakes` are a server loop's to enforce;
    /// this adapter has none.) Invalid limits are rejected here.
    pub fn connect_with_limits(
        url: &str,
        config: Config,
        limits: Limits,
    ) -> Result<KeepAlive, Error> {
        let ws_config = limits.validate().map_err(Error::Limits)?.websocket();
        let target = connect::target(url)?;
        let clock = Clock::new();
        let mut hb = HeartbeatMachine::new(config, seed());
        hb.connect(clock.now());
        // The machine's `Connect { attempt: 0 }`; the attempt is ours to run.
        let _ = drive(&mut hb, &mut NoTransport, clock.now());
        match connect::connect(&target, &mut hb, &clock, ws_config) {
            Ok(ws) => Ok(KeepAlive::from_parts(ws, hb, clock)),
            Err(e) => {
                // Its `Disconnect`: the failed attempt's socket is already gone.
                let _ = drive(&mut hb, &mut NoTransport, clock.now());
                Err(e)
            }
        }
    }
}

impl<C: Borrow<Config>> KeepAlive<C, TcpStream> {
    /// Upgrades a TCP stream you accepted (server side) with a fresh machine: the
    /// upgrade is the connection attempt, bounded by [`Config::connect_timeout`]
    /// (a client that connects and never sends its request is dropped then, with
    /// [`Error::Dead`]`(`[`DeathReason::ConnectFailed`]`)`).
    pub fn accept(stream: TcpStream, config: C, seed: u64) -> Result<KeepAlive<C>, Error> {
        KeepAlive::accept_with_limits(stream, config, seed, Limits::default())
    }

    /// [`accept`](Self::accept) with `limits` instead of [`Limits::default`], as
    /// [`KeepAlive::connect_with_limits`] applies them.
    pub fn accept_with_limits(
        stream: TcpStream,
        config: C,
        seed: u64,
        limits: Limits,
    ) -> Result<KeepAlive<C>, Error> {
        let ws_config = limits.validate().map_err(Error::Limits)?.websocket();
        let clock = Clock::new();
        let mut hb = HeartbeatMachine::new(config, seed);
        hb.connect(clock.now());
        let _ = drive(&mut hb, &mut NoTransport, clock.now());
        match connect::accept(stream, &mut hb, &clock, ws_config) {
            Ok(ws) => Ok(KeepAlive::from_parts(ws, hb, clock)),
            Err(e) => {
                let _ = drive(&mut hb, &mut NoTransport, clock.now());
                Err(e)
            }
        }
    }
}

impl<C: Borrow<Config>, S: Socket> KeepAlive<C, S> {
    /// Wraps an open WebSocket (handshake done) with a fresh machine, connected now.
    ///
    /// `ws` may run over any [`Socket`]: a `TcpStream`, or with the `rustls`
    /// feature a rustls `StreamOwned` (`wss://` you opened yourself).
    pub fn new(ws: WebSocket<S>, config: C, seed: u64) -> KeepAlive<C, S> {
        let clock = Clock::new();
        let mut hb = HeartbeatMachine::new(config, seed);
        hb.handle_connected(clock.now());
        KeepAlive::from_parts(ws, hb, clock)
    }

    /// Wraps an open WebSocket with a machine that was already told
    /// `handle_connected` on `clock` (as [`run_client`](crate::run_client) does
    /// across reconnects).
    pub fn from_parts(ws: WebSocket<S>, hb: HeartbeatMachine<C>, clock: Clock) -> KeepAlive<C, S> {
        let _ = ws.get_ref().tcp().set_nodelay(true);
        KeepAlive {
            ws,
            hb,
            clock,
            blocked: false,
            ping_unflushed: false,
            close_unflushed: false,
            dead: None,
            disconnected: false,
            read_over: false,
            connect: None,
        }
    }

    /// Blocks until an application message arrives, running the heartbeat
    /// meanwhile. Returns [`Error::Dead`] as soon as the connection is over; then
    /// [`close`](Self::close) finishes its close handshake (or drop the
    /// `KeepAlive` to let go of the socket at once).
    pub fn read(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(msg) = self.read_until(None)? {
                return Ok(msg);
            }
        }
    }

    /// Like [`read`](Self::read), but returns `Ok(None)` once `deadline` passes
    /// without an application message.
    pub fn read_until(
        &mut self,
        deadline: Option<std::time::Instant>,
    ) -> Result<Option<Message>, Error> {
        let stop = deadline.map(|d| self.clock.from_std(d));
        loop {
            let now = self.clock.now();
            self.flush_pending(now);
            self.pump(now);
            if let Some(reason) = self.dead {
                return Err(Error::Dead(reason));
            }
            if stop.is_some_and(|s| now >= s) {
                return Ok(None);
            }
            if let Some(msg) = self.wait(now, stop) {
                return Ok(Some(msg));
            }
        }
    }

    /// Sends an application message (blocking at most for the pong timeout; longer
    /// and it stays queued and goes out with the next read or send).
    ///
    /// A message larger than the connection's write buffer can ever hold
    /// ([`Limits::max_send`](heartbeat_transport::tungstenite::Limits::max_send))
    /// fails at once with [`Error::TooLarge`]; the connection stays usable.
    pub fn send(&mut self, msg: Message) -> Result<(), Error> {
        if let Some(reason) = self.dead {
            return Err(Error::Dead(reason));
        }
        let max = Limits::max_send_of(self.ws.get_config());
        if msg.len() > max {
            return Err(Error::TooLarge {
                len: msg.len(),
                max,
            });
        }
        let now = self.clock.now();
        self.set_write_timeout();
        match self.ws.write(msg).and_then(|()| self.ws.flush()) {
            Ok(()) => {
                self.blocked = false;
                self.flushed(now);
            }
            Err(WsError::Io(e)) if is_timeout(&e) => self.blocked = true,
            Err(_) => {
                let _ = feed(&mut self.hb, now, Incoming::Ended);
            }
        }
        self.pump(now);
        match self.dead {
            Some(reason) => Err(Error::Dead(reason)),
            None => Ok(()),
        }
    }

    /// Closes with `code` and runs the close handshake until the machine lets go
    /// of the connection (the peer's close, the end of the stream, or the close
    /// timeout). Returns the machine's reason for the end:
    /// [`DeathReason::LocalClose`] for an open connection, or what ended it
    /// earlier. Application messages that arrive meanwhile are dropped.
    pub fn close(&mut self, code: CloseCode) -> DeathReason {
        loop {
            let now = self.clock.now();
            match self.hb.state() {
                State::Finished { reason } => {
                    self.let_go();
                    return reason;
                }
                State::Closing { .. } => self.linger(),
                // Open: close now. Waiting to reconnect: drop what still drains and
                // finish. Connecting or idle: finish.
                _ => {
                    self.hb.close(now, code);
                    self.pump(now);
                }
            }
        }
    }

    /// The heartbeat machine (state, health, RTT, counters).
    pub fn machine(&self) -> &HeartbeatMachine<C> {
        &self.hb
    }

    /// The WebSocket.
    pub fn get_ref(&self) -> &WebSocket<S> {
        &self.ws
    }

    /// Splits into the WebSocket, the machine and its clock.
    pub fn into_parts(self) -> (WebSocket<S>, HeartbeatMachine<C>, Clock) {
        (self.ws, self.hb, self.clock)
    }

    /// Hands the machine back once it is done with this connection, for the next
    /// attempt: a connection still open is given up (reported closed); a dead one
    /// is read until the machine lets go of it, which is never later than the
    /// reconnect deadline. Returns the machine and the attempt it started, if any.
    pub(crate) fn finish(mut self) -> (HeartbeatMachine<C>, Option<u32>) {
        if let State::Open = self.hb.state() {
            let _ = self.ws.get_ref().tcp().shutdown(Shutdown::Both);
            let now = self.clock.now();
            let _ = feed(&mut self.hb, now, Incoming::Ended);
            self.pump(now);
        }
        self.linger();
        (self.hb, self.connect)
    }

    /// Runs the loop until the machine lets go of this connection: a close
    /// handshake in progress, or a dead connection's close draining while a
    /// reconnect waits. Application messages are dropped.
    fn linger(&mut self) {
        while self.holds_transport() {
            let now = self.clock.now();
            self.flush_pending(now);
            self.pump(now);
            if self.holds_transport() {
                let _ = self.wait(now, None);
            }
        }
    }

    /// Whether the machine still uses this connection's socket.
    fn holds_transport(&self) -> bool {
        // While reconnecting, a dead connection's close drains until its `Disconnect`.
        let uses = matches!(
            self.hb.state(),
            State::Open | State::Closing { .. } | State::Reconnecting { .. }
        );
        uses && !self.disconnected
    }

    /// Waits for input at most until the machine's next deadline (or `stop`), then
    /// feeds what came, or expires what is due. Returns an application message.
    fn wait(&mut self, now: Instant, stop: Option<Instant>) -> Option<Message> {
        let wake = [self.hb.poll_timeout().map(|d| d.at), stop]
            .into_iter()
            .flatten()
            .min();
        let wait = wake.map_or(FOREVER, |at| at - now).max(MIN_WAIT);
        if self.disconnected || self.read_over {
            // No socket to read: only time can change anything.
            std::thread::sleep(wait);
            self.expire(wake);
            return None;
        }
        let _ = self
            .ws
            .get_ref()
            .tcp()
            .set_read_timeout(Some(socket_timeout(wait)));
        // A deadline already due is judged after this read, whatever it brings: a
        // peer that keeps sending must not keep the machine from its timers.
        let due = wake.filter(|&at| at <= now);
        match self.ws.read() {
            Ok(msg) => {
                // Evidence first (this frame), then the deadline.
                let msg = self.on_frame(msg);
                if due.is_some() {
                    self.expire(due);
                    self.pump(self.clock.now());
                }
                msg
            }
            Err(WsError::Io(e)) if is_timeout(&e) => {
                // Nothing arrived in time: expire what is due.
                self.expire(wake);
                None
            }
            Err(WsError::Io(e)) if e.kind() == ErrorKind::Interrupted => None,
            Err(e) => {
                let now = self.clock.now();
                let incoming = incoming_from_error(&e);
                let _ = feed(&mut self.hb, now, incoming);
                // Nothing more is read after a read error (a violation leaves
                // tungstenite mid-frame). After a violation the socket is kept for
                // the close window so our close leaves before the socket goes.
                self.read_over = true;
                if !matches!(incoming, Incoming::Violation(_)) {
                    self.hb.handle_transport_closed(now);
                }
                None
            }
        }
    }

    /// Expires what is due, allowing for how late this process's timed waits have
    /// been running (every connection of the process shares the measure), then
    /// records how late this one woke for `due`.
    fn expire(&mut self, due: Option<Instant>) {
        let now = self.clock.now();
        let woke = self.clock.to_std(now);
        self.hb.handle_local_lag(now, LOCAL_LAG.current(woke));
        self.hb.handle_timeout(now);
        if let Some(due) = due.filter(|&d| d <= now) {
            // After the verdict: this wait's own lateness is the stall allowance's.
            LOCAL_LAG.record(self.clock.to_std(due), woke);
        }
    }

    /// Feeds one frame; returns it if it is for the application.
    fn on_frame(&mut self, msg: Message) -> Option<Message> {
        let now = self.clock.now();
        if let Fed::Pong(PongOutcome::Matched { rtt: Some(rtt), .. }) =
            feed(&mut self.hb, now, incoming(&msg))
        {
            // Every connection's round trips feed the process's systemic delay.
            LOCAL_LAG.record_rtt(self.clock.to_std(now), rtt);
        }
        // Execute at once: the machine's pong replaces tungstenite's queued one, and
        // what the frame caused goes out before the application sees it.
        self.pump(now);
        matches!(msg, Message::Text(_) | Message::Binary(_)).then_some(msg)
    }

    /// Executes the machine's actions and records what they mean for this
    /// connection: its death, its end (`Disconnect`), the next attempt.
    fn pump(&mut self, now: Instant) {
        if self.disconnected {
            let out = drive(&mut self.hb, &mut NoTransport, now);
            self.record(out);
        } else {
            self.set_write_timeout();
            let mut t = WsTransport {
                ws: &mut self.ws,
                blocked: &mut self.blocked,
            };
            let out = drive(&mut self.hb, &mut t, self.clock);
            self.record(out);
        }
    }

    /// Acts on what one [`drive`] did (a write error was already reported to the
    /// machine by the executor: its death and `Disconnect` are in `out`).
    fn record<E>(&mut self, out: Outcome<E>) {
        self.ping_unflushed |= out.ping_queued;
        self.close_unflushed |= out.close_queued;
        if let Some(reason) = out.dead {
            self.dead.get_or_insert(reason);
        }
        if out.disconnected {
            self.let_go();
        }
        if let Some(attempt) = out.connect {
            self.connect = Some(attempt);
        }
    }

    /// Retries a write that timed out earlier; reports what was queued once out.
    fn flush_pending(&mut self, now: Instant) {
        if !self.blocked || self.disconnected {
            return;
        }
        let flushed = self.ws.flush();
        // The time the bytes left, read after the write: a pause before it must not
        // backdate the pong timer.
        let now = self.clock.now().max(now);
        match flushed {
            Ok(()) => {
                self.blocked = false;
                self.flushed(now);
            }
            Err(WsError::Io(e)) if is_timeout(&e) => {}
            Err(e) => {
                self.blocked = false;
                self.ping_unflushed = false;
                self.close_unflushed = false;
                let _ = feed(&mut self.hb, now, incoming_from_error(&e));
            }
        }
    }

    /// tungstenite's buffer drained: a ping or close waiting there left now.
    fn flushed(&mut self, now: Instant) {
        if std::mem::take(&mut self.ping_unflushed) {
            self.hb.handle_ping_sent(now);
        }
        if std::mem::take(&mut self.close_unflushed) {
            self.hb.handle_close_sent(now);
        }
    }

    /// The machine is done with the socket: shut it down (it is dropped with the
    /// `KeepAlive`).
    fn let_go(&mut self) {
        if !self.disconnected {
            self.disconnected = true;
            self.blocked = false;
            self.ping_unflushed = false;
            self.close_unflushed = false;
            let _ = self.ws.get_ref().tcp().shutdown(Shutdown::Both);
        }
    }

    /// Writes block at most for the pong timeout; longer and the frame waits.
    fn set_write_timeout(&self) {
        let timeout = self.hb.pong_timeout().max(MIN_WAIT);
        let _ = self.ws.get_ref().tcp().set_write_timeout(Some(timeout));
    }
}

/// How late this process's timed waits run, shared by every connection: a
/// saturated process (more threads than cores, a stopped process) shows up in
/// every machine's verdicts.
static LOCAL_LAG: heartbeat_transport::LagMeter =
    heartbeat_transport::LagMeter::new(std::time::Duration::from_millis(500));
