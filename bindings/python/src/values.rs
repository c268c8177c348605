//! The small frozen objects the machine hands to Python: actions, outcomes, the
//! state with its reason, deadlines, RTT figures and counters.
//!
//! Each mirrors one `Copy` value of heartbeat-core and owns its data, so holding one
//! never pins the machine. Enumerations (health, timer kind, ping outcome) are
//! Python enum-like classes whose members compare by identity and equality.

// `__match_args__` is the name Python pattern matching looks up.
#![allow(non_upper_case_globals)]

use heartbeat_core::{
    Action, ConnectFailure, Deadline, DeathReason, Health, PingOutcome, PongOutcome, ProtocolError,
    RttStats, State, Stats, TimerKind,
};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::seconds::{at, secs};

/// Adds every value class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SendPing>()?;
    m.add_class::<SendPong>()?;
    m.add_class::<Dead>()?;
    m.add_class::<SendClose>()?;
    m.add_class::<Disconnect>()?;
    m.add_class::<Connect>()?;
    m.add_class::<PyDeathReason>()?;
    m.add_class::<PyPongOutcome>()?;
    m.add_class::<PyPingOutcome>()?;
    m.add_class::<PyHealth>()?;
    m.add_class::<PyTimerKind>()?;
    m.add_class::<PyDeadline>()?;
    m.add_class::<PyState>()?;
    m.add_class::<Rtt>()?;
    m.add_class::<PyStats>()?;
    Ok(())
}

// ----- actions ---------------------------------------------------------------------

/// Send a ping with `payload`, then call `Machine.handle_ping_sent(now)` once the
/// transport took it: the pong timer starts then.
#[pyclass(frozen, eq, module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct SendPing {
    payload: Vec<u8>,
}

/// Send a pong echoing the peer's ping `payload`.
#[pyclass(frozen, eq, module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct SendPong {
    payload: Vec<u8>,
}

/// Tell the application, now, that the connection is over and why (`reason`).
/// Emitted once per connection that opened, before the close handshake runs.
#[pyclass(frozen, eq, module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct Dead {
    reason: PyDeathReason,
}

/// Send a close frame with `code` and `reason`; call `Machine.handle_close_sent(now)`
/// once it is flushed and keep reading until the machine says `Disconnect`.
#[pyclass(frozen, eq, module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct SendClose {
    code: u16,
    reason: &'static str,
}

/// Drop the transport (or the connection attempt): the machine is done with it.
#[pyclass(frozen, eq, module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct Disconnect;

/// Start a connection attempt (`attempt` 0 first, then the retry count), then call
/// `Machine.handle_connected(now)` or `Machine.handle_connect_failed(now)`.
#[pyclass(frozen, eq, module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct Connect {
    attempt: u32,
}

#[pymethods]
impl SendPing {
    #[classattr]
    const __match_args__: (&'static str,) = ("payload",);
    /// The ping's payload (the machine's 8-byte sequence number).
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.payload)
    }
    fn __repr__(&self) -> String {
        format!("SendPing(payload={})", bytes_repr(&self.payload))
    }
}

#[pymethods]
impl SendPong {
    #[classattr]
    const __match_args__: (&'static str,) = ("payload",);
    /// The payload to echo.
    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.payload)
    }
    fn __repr__(&self) -> String {
        format!("SendPong(payload={})", bytes_repr(&self.payload))
    }
}

#[pymethods]
impl Dead {
    #[classattr]
    const __match_args__: (&'static str,) = ("reason",);
    /// Why the connection is over.
    #[getter]
    fn reason(&self) -> PyDeathReason {
        self.reason.clone()
    }
    fn __repr__(&self) -> String {
        format!("Dead(reason={})", self.reason.__repr__())
    }
}

#[pymethods]
impl SendClose {
    #[classattr]
    const __match_args__: (&'static str, &'static str) = ("code", "reason");
    /// The close code (never 1005, 1006 or 1015).
    #[getter]
    fn code(&self) -> u16 {
        self.code
    }
    /// A short reason for the close frame.
    #[getter]
    fn reason(&self) -> &'static str {
        self.reason
    }
    fn __repr__(&self) -> String {
        format!("SendClose(code={}, reason={:?})", self.code, self.reason)
    }
}

#[pymethods]
impl Disconnect {
    fn __repr__(&self) -> &'static str {
        "Disconnect()"
    }
}

#[pymethods]
impl Connect {
    #[classattr]
    const __match_args__: (&'static str,) = ("attempt",);
    /// 0 for the first connection, then the consecutive retry since the last
    /// connection that proved healthy.
    #[getter]
    fn attempt(&self) -> u32 {
        self.attempt
    }
    fn __repr__(&self) -> String {
        format!("Connect(attempt={})", self.attempt)
    }
}

/// The Python object for one core action.
pub(crate) fn action(py: Python<'_>, a: Action) -> PyResult<Py<PyAny>> {
    Ok(match a {
        Action::SendPing(p) => Py::new(
            py,
            SendPing {
                payload: p.as_slice().to_vec(),
            },
        )?
        .into_any(),
        Action::SendPong(p) => Py::new(
            py,
            SendPong {
                payload: p.as_slice().to_vec(),
            },
        )?
        .into_any(),
        Action::Dead(r) => Py::new(py, Dead { reason: r.into() })?.into_any(),
        Action::SendClose { code, reason } => Py::new(
            py,
            SendClose {
                code: code.get(),
                reason,
            },
        )?
        .into_any(),
        Action::Disconnect => Py::new(py, Disconnect)?.into_any(),
        Action::Connect { attempt } => Py::new(py, Connect { attempt })?.into_any(),
        // `Action` is non-exhaustive: a newer core's action is surfaced, not lost.
        other => Py::new(
            py,
            Unknown {
                debug: format!("{other:?}"),
            },
        )?
        .into_any(),
    })
}

/// An action this binding does not know yet (a newer heartbeat-core); its `repr`
/// is the core's debug text.
#[pyclass(frozen, module = "heartbeat")]
pub(crate) struct Unknown {
    debug: String,
}

#[pymethods]
impl Unknown {
    fn __repr__(&self) -> String {
        format!("UnknownAction({})", self.debug)
    }
}

// ----- why a connection ended ------------------------------------------------------

/// Why a connection (or a connection attempt) is over.
///
/// `kind` is one of "pong_timeout", "peer_closed", "transport_closed",
/// "protocol_error", "ping_flood", "local_close", "connect_failed"; `waited`,
/// `code` and `detail` are set where the kind has them. `str()` is a sentence.
#[pyclass(frozen, eq, name = "DeathReason", module = "heartbeat")]
#[derive(Clone, PartialEq)]
pub(crate) struct PyDeathReason {
    kind: &'static str,
    waited: Option<f64>,
    code: Option<u16>,
    detail: Option<&'static str>,
    fault: bool,
    text: String,
}

impl From<DeathReason> for PyDeathReason {
    fn from(r: DeathReason) -> Self {
        let (kind, waited, code, detail) = match r {
            DeathReason::PongTimeout { waited } => ("pong_timeout", Some(secs(waited)), None, None),
            DeathReason::PeerClosed { code } => ("peer_closed", None, code, None),
            DeathReason::TransportClosed => ("transport_closed", None, None, None),
            DeathReason::ProtocolError(e) => {
                ("protocol_error", None, None, Some(protocol_detail(e)))
            }
            DeathReason::PingFlood => ("ping_flood", None, None, None),
            DeathReason::LocalClose { code } => ("local_close", None, Some(code), None),
            DeathReason::ConnectFailed(ConnectFailure::TimedOut { waited }) => (
                "connect_failed",
                Some(secs(waited)),
                None,
                Some("timed_out"),
            ),
            DeathReason::ConnectFailed(_) => ("connect_failed", None, None, Some("error")),
            _ => ("other", None, None, None),
        };
        PyDeathReason {
            kind,
            waited,
            code,
            detail,
            fault: r.is_fault(),
            text: r.to_string(),
        }
    }
}

fn protocol_detail(e: ProtocolError) -> &'static str {
    match e {
        ProtocolError::ControlFrameTooLong { .. } => "control_frame_too_long",
        ProtocolError::InvalidCloseCode { .. } => "invalid_close_code",
        _ => "malformed",
    }
}

#[pymethods]
impl PyDeathReason {
    /// What ended the connection (see the class docstring for the values).
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }
    /// Seconds waited: for the pong since the ping was sent, or for the attempt.
    #[getter]
    fn waited(&self) -> Option<f64> {
        self.waited
    }
    /// The close code: the peer's ("peer_closed") or ours ("local_close").
    #[getter]
    fn code(&self) -> Option<u16> {
        self.code
    }
    /// A finer cause: for "protocol_error" "control_frame_too_long",
    /// "invalid_close_code" or "malformed"; for "connect_failed" "timed_out" or "error".
    #[getter]
    fn detail(&self) -> Option<&'static str> {
        self.detail
    }
    /// Whether the peer or the network is at fault (False for a clean close by
    /// either side, or a close the application asked for).
    #[getter]
    fn is_fault(&self) -> bool {
        self.fault
    }
    fn __str__(&self) -> String {
        self.text.clone()
    }
    pub(crate) fn __repr__(&self) -> String {
        format!("DeathReason({:?}: {})", self.kind, self.text)
    }
}

// ----- outcomes --------------------------------------------------------------------

/// What `Machine.handle_pong` made of a pong: `kind` is "matched" (it answered our
/// ping `seq`; `rtt` in seconds when it answered the latest one), "stale" (an
/// already acknowledged ping `seq`) or "unsolicited" (no ping of ours).
#[pyclass(frozen, eq, name = "PongOutcome", module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct PyPongOutcome {
    kind: &'static str,
    seq: Option<u64>,
    rtt: Option<f64>,
}

impl From<PongOutcome> for PyPongOutcome {
    fn from(o: PongOutcome) -> Self {
        match o {
            PongOutcome::Matched { seq, rtt } => PyPongOutcome {
                kind: "matched",
                seq: Some(seq),
                rtt: rtt.map(secs),
            },
            PongOutcome::Stale { seq } => PyPongOutcome {
                kind: "stale",
                seq: Some(seq),
                rtt: None,
            },
            _ => PyPongOutcome {
                kind: "unsolicited",
                seq: None,
                rtt: None,
            },
        }
    }
}

#[pymethods]
impl PyPongOutcome {
    /// "matched", "stale" or "unsolicited".
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind
    }
    /// The sequence number the pong carried (matched or stale).
    #[getter]
    fn seq(&self) -> Option<u64> {
        self.seq
    }
    /// The round trip in seconds (matched, latest ping only).
    #[getter]
    fn rtt(&self) -> Option<f64> {
        self.rtt
    }
    /// Whether the pong answered one of our pings.
    #[getter]
    fn matched(&self) -> bool {
        self.kind == "matched"
    }
    fn __repr__(&self) -> String {
        format!(
            "PongOutcome(kind={:?}, seq={}, rtt={})",
            self.kind,
            opt(self.seq),
            opt(self.rtt)
        )
    }
}

/// What `Machine.handle_ping` made of a ping.
#[pyclass(frozen, eq, eq_int, hash, name = "PingOutcome", module = "heartbeat")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PyPingOutcome {
    /// A pong is queued (`SendPong`).
    #[pyo3(name = "ANSWERED")]
    Answered,
    /// Over the ping budget: not answered, counted.
    #[pyo3(name = "REFUSED")]
    Refused,
    /// The ping ended the connection (too long, or the last straw of a flood).
    #[pyo3(name = "VIOLATION")]
    Violation,
    /// No connection is open; nothing to do.
    #[pyo3(name = "IGNORED")]
    Ignored,
}

impl From<PingOutcome> for PyPingOutcome {
    fn from(o: PingOutcome) -> Self {
        match o {
            PingOutcome::Answered => PyPingOutcome::Answered,
            PingOutcome::Refused => PyPingOutcome::Refused,
            PingOutcome::Violation => PyPingOutcome::Violation,
            _ => PyPingOutcome::Ignored,
        }
    }
}

/// A graded view of the peer's liveness.
#[pyclass(frozen, eq, eq_int, hash, name = "Health", module = "heartbeat")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PyHealth {
    /// Liveness proven recently enough; nothing overdue.
    #[pyo3(name = "HEALTHY")]
    Healthy,
    /// Not proven: connecting, a pong later than the RTT estimate predicts, or a
    /// local stall forced a fresh probe. Not a verdict.
    #[pyo3(name = "SUSPECT")]
    Suspect,
    /// The connection is over.
    #[pyo3(name = "DEAD")]
    Dead,
}

impl From<Health> for PyHealth {
    fn from(h: Health) -> Self {
        match h {
            Health::Healthy => PyHealth::Healthy,
            Health::Suspect => PyHealth::Suspect,
            _ => PyHealth::Dead,
        }
    }
}

/// Why the machine wants to be woken.
#[pyclass(frozen, eq, eq_int, hash, name = "TimerKind", module = "heartbeat")]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PyTimerKind {
    /// Actions are queued: poll them now.
    #[pyo3(name = "ACTIONS")]
    Actions,
    /// The next ping is due.
    #[pyo3(name = "PING")]
    Ping,
    /// The outstanding ping's pong is due: take in what the transport holds first.
    #[pyo3(name = "PONG_TIMEOUT")]
    PongTimeout,
    /// The close handshake must have finished.
    #[pyo3(name = "CLOSE_TIMEOUT")]
    CloseTimeout,
    /// The connection attempt must have finished.
    #[pyo3(name = "CONNECT")]
    Connect,
    /// The backoff delay is over: the next attempt starts.
    #[pyo3(name = "RECONNECT")]
    Reconnect,
}

impl From<TimerKind> for PyTimerKind {
    fn from(k: TimerKind) -> Self {
        match k {
            TimerKind::Actions => PyTimerKind::Actions,
            TimerKind::Ping => PyTimerKind::Ping,
            TimerKind::PongTimeout => PyTimerKind::PongTimeout,
            TimerKind::CloseTimeout => PyTimerKind::CloseTimeout,
            TimerKind::Connect => PyTimerKind::Connect,
            _ => PyTimerKind::Reconnect,
        }
    }
}

/// When to call `Machine.handle_timeout` next (`at`, seconds on the caller's
/// clock), and why (`kind`).
#[pyclass(frozen, eq, name = "Deadline", module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct PyDeadline {
    at: f64,
    kind: PyTimerKind,
}

impl From<Deadline> for PyDeadline {
    fn from(d: Deadline) -> Self {
        PyDeadline {
            at: at(d.at),
            kind: d.kind.into(),
        }
    }
}

#[pymethods]
impl PyDeadline {
    #[classattr]
    const __match_args__: (&'static str, &'static str) = ("at", "kind");
    /// The time to wake, in seconds on the caller's clock.
    #[getter]
    fn at(&self) -> f64 {
        self.at
    }
    /// Why.
    #[getter]
    fn kind(&self) -> PyTimerKind {
        self.kind
    }
    fn __repr__(&self) -> String {
        format!(
            "Deadline(at={}, kind=TimerKind.{})",
            self.at,
            timer_name(self.kind)
        )
    }
}

fn timer_name(k: PyTimerKind) -> &'static str {
    match k {
        PyTimerKind::Actions => "ACTIONS",
        PyTimerKind::Ping => "PING",
        PyTimerKind::PongTimeout => "PONG_TIMEOUT",
        PyTimerKind::CloseTimeout => "CLOSE_TIMEOUT",
        PyTimerKind::Connect => "CONNECT",
        PyTimerKind::Reconnect => "RECONNECT",
    }
}

// ----- state, RTT, counters --------------------------------------------------------

/// Where the machine stands: `name` is "idle", "connecting", "open", "closing",
/// "reconnecting" or "finished"; every state after a connection ended carries its
/// `reason`; "connecting" and "reconnecting" carry the `attempt`, "reconnecting"
/// also when the next attempt starts (`at`).
#[pyclass(frozen, eq, name = "State", module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct PyState {
    name: &'static str,
    reason: Option<PyDeathReason>,
    attempt: Option<u32>,
    at: Option<f64>,
}

impl From<State> for PyState {
    fn from(s: State) -> Self {
        let (name, attempt, at_) = match s {
            State::Idle => ("idle", None, None),
            State::Connecting { attempt } => ("connecting", Some(attempt), None),
            State::Open => ("open", None, None),
            State::Closing { .. } => ("closing", None, None),
            State::Reconnecting { at: t, attempt, .. } => {
                ("reconnecting", Some(attempt), Some(at(t)))
            }
            State::Finished { .. } => ("finished", None, None),
            _ => ("other", None, None),
        };
        PyState {
            name,
            reason: s.reason().map(Into::into),
            attempt,
            at: at_,
        }
    }
}

#[pymethods]
impl PyState {
    /// The state's name.
    #[getter]
    fn name(&self) -> &'static str {
        self.name
    }
    /// Why the last connection ended (every state after a death).
    #[getter]
    fn reason(&self) -> Option<PyDeathReason> {
        self.reason.clone()
    }
    /// The attempt number (connecting, reconnecting).
    #[getter]
    fn attempt(&self) -> Option<u32> {
        self.attempt
    }
    /// When the next attempt starts (reconnecting), in seconds on the caller's clock.
    #[getter]
    fn at(&self) -> Option<f64> {
        self.at
    }
    pub(crate) fn __repr__(&self) -> String {
        let mut s = format!("State({:?}", self.name);
        if let Some(r) = &self.reason {
            s += &format!(", reason={}", r.__repr__());
        }
        if let Some(a) = self.attempt {
            s += &format!(", attempt={a}");
        }
        if let Some(t) = self.at {
            s += &format!(", at={t}");
        }
        s + ")"
    }
}

/// Round-trip figures from matched pongs, in seconds (None before the first sample):
/// `last`, `min`, `smoothed` (RFC 6298 SRTT), `variance` (RTTVAR) and `samples`.
#[pyclass(frozen, eq, module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct Rtt {
    #[pyo3(get)]
    last: Option<f64>,
    #[pyo3(get)]
    min: Option<f64>,
    #[pyo3(get)]
    smoothed: Option<f64>,
    #[pyo3(get)]
    variance: Option<f64>,
    #[pyo3(get)]
    samples: u64,
}

impl From<RttStats> for Rtt {
    fn from(r: RttStats) -> Self {
        Rtt {
            last: r.last.map(secs),
            min: r.min.map(secs),
            smoothed: r.smoothed.map(secs),
            variance: r.variance.map(secs),
            samples: r.samples,
        }
    }
}

#[pymethods]
impl Rtt {
    fn __repr__(&self) -> String {
        format!(
            "Rtt(last={}, min={}, smoothed={}, variance={}, samples={})",
            opt(self.last),
            opt(self.min),
            opt(self.smoothed),
            opt(self.variance),
            self.samples
        )
    }
}

/// Counters of everything that happened on a machine, across its connections.
/// `as_dict()` gives them all by name, for export.
#[pyclass(frozen, eq, name = "Stats", module = "heartbeat")]
#[derive(PartialEq)]
pub(crate) struct PyStats(Stats);

impl From<Stats> for PyStats {
    fn from(s: Stats) -> Self {
        PyStats(s)
    }
}

impl PyStats {
    fn fields(&self) -> [(&'static str, u64); 16] {
        let s = &self.0;
        [
            ("pings_sent", s.pings_sent),
            ("pongs_matched", s.pongs_matched),
            ("unsolicited_pongs", s.unsolicited_pongs),
            ("pings_received", s.pings_received),
            ("pongs_sent", s.pongs_sent),
            ("pings_refused", s.pings_refused),
            ("missed_deadlines", s.missed_deadlines),
            ("pong_timeouts", s.pong_timeouts),
            ("close_timeouts", s.close_timeouts),
            ("connects", s.connects),
            ("connect_failures", s.connect_failures),
            ("connect_timeouts", s.connect_timeouts),
            ("lag_extensions", s.lag_extensions),
            ("reconnects", s.reconnects),
            ("clock_anomalies", s.clock_anomalies),
            ("ignored_calls", s.ignored_calls),
        ]
    }
}

#[pymethods]
impl PyStats {
    /// Pings the machine asked the driver to send.
    #[getter]
    fn pings_sent(&self) -> u64 {
        self.0.pings_sent
    }
    /// Pongs that answered one of our pings.
    #[getter]
    fn pongs_matched(&self) -> u64 {
        self.0.pongs_matched
    }
    /// Pongs that matched no outstanding ping; ignored.
    #[getter]
    fn unsolicited_pongs(&self) -> u64 {
        self.0.unsolicited_pongs
    }
    /// Pings received from the peer.
    #[getter]
    fn pings_received(&self) -> u64 {
        self.0.pings_received
    }
    /// Pongs the machine asked the driver to send.
    #[getter]
    fn pongs_sent(&self) -> u64 {
        self.0.pongs_sent
    }
    /// Pings not answered because they exceeded the ping budget.
    #[getter]
    fn pings_refused(&self) -> u64 {
        self.0.pings_refused
    }
    /// Timers that fired later than the stall allowance (a local stall).
    #[getter]
    fn missed_deadlines(&self) -> u64 {
        self.0.missed_deadlines
    }
    /// Pong timeouts that declared a peer dead.
    #[getter]
    fn pong_timeouts(&self) -> u64 {
        self.0.pong_timeouts
    }
    /// Close handshakes cut short.
    #[getter]
    fn close_timeouts(&self) -> u64 {
        self.0.close_timeouts
    }
    /// Connections opened.
    #[getter]
    fn connects(&self) -> u64 {
        self.0.connects
    }
    /// Connection attempts that failed.
    #[getter]
    fn connect_failures(&self) -> u64 {
        self.0.connect_failures
    }
    /// Connection attempts abandoned after `connect_timeout`.
    #[getter]
    fn connect_timeouts(&self) -> u64 {
        self.0.connect_timeouts
    }
    /// Reports of local lag that moved a pong deadline later.
    #[getter]
    fn lag_extensions(&self) -> u64 {
        self.0.lag_extensions
    }
    /// Reconnects scheduled.
    #[getter]
    fn reconnects(&self) -> u64 {
        self.0.reconnects
    }
    /// Times `now` went backwards and was clamped.
    #[getter]
    fn clock_anomalies(&self) -> u64 {
        self.0.clock_anomalies
    }
    /// Calls that made no sense in the current state (caller misuse), ignored.
    #[getter]
    fn ignored_calls(&self) -> u64 {
        self.0.ignored_calls
    }
    /// Every counter by name.
    fn as_dict(&self) -> std::collections::HashMap<&'static str, u64> {
        self.fields().into_iter().collect()
    }
    fn __repr__(&self) -> String {
        let body: Vec<String> = self
            .fields()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("Stats({})", body.join(", "))
    }
}

fn bytes_repr(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("\\x{x:02x}")).collect();
    format!("b'{hex}'")
}

/// `None` or the value, as Python prints an optional.
pub(crate) fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "None".to_owned(), |v| v.to_string())
}
