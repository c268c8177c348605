//! `heartbeat.Machine`: the sans-IO machine, times in float seconds.
//!
//! Every method forwards to one `HeartbeatMachine` call. Input order never raises:
//! the core turns misuse into counters and sticky states. The only exception a
//! method raises for a value is `ValueError`: a time that no monotonic clock gives
//! (NaN, negative, infinite), a close code that cannot be on the wire, or a runtime
//! interval outside the configured bounds.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use heartbeat_core::{CloseCode, HeartbeatMachine, Instant};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::config::{config_error, from_core, PyConfig};
use crate::numbers::{Int, Real};
use crate::seconds::{at, duration, instant, secs, span};
use crate::values::{
    action, PyDeadline, PyDeathReason, PyHealth, PyPingOutcome, PyPongOutcome, PyState, PyStats,
    Rtt,
};

/// The heartbeat of one logical connection (and, as a client, of its successors
/// after reconnects). See the stub for the driving contract.
#[pyclass(name = "Machine", module = "heartbeat")]
pub(crate) struct PyMachine {
    hb: HeartbeatMachine<heartbeat_core::Config>,
    config: PyConfig,
}

#[pymethods]
impl PyMachine {
    /// A machine with nothing started (state "idle"). `seed` drives reconnect
    /// jitter; None picks a random one per machine. A seed outside 0 to 2**64 - 1
    /// is `ValueError`.
    #[new]
    #[pyo3(signature = (config = None, seed = None))]
    fn new(config: Option<PyRef<'_, PyConfig>>, seed: Option<Int>) -> PyResult<PyMachine> {
        let config = config.map(|c| c.clone()).unwrap_or(PyConfig {
            inner: heartbeat_core::Config::default(),
        });
        let seed = match seed {
            Some(s) => s.fit::<u64>().ok_or_else(|| {
                PyValueError::new_err(format!(
                    "seed = {} is not a seed; it must lie within 0 to {}",
                    s.shown(),
                    u64::MAX
                ))
            })?,
            None => random_seed(),
        };
        Ok(PyMachine {
            hb: HeartbeatMachine::new(config.inner, seed),
            config,
        })
    }

    // ----- commands ----------------------------------------------------------------

    /// Starts the first connection attempt (queues `Connect(attempt=0)`).
    fn connect(&mut self, now: Real) -> PyResult<()> {
        self.hb.connect(t(&now)?);
        Ok(())
    }

    /// The application wants to end: close with `code` and never reconnect.
    #[pyo3(signature = (now, code = Int::of(1000)), text_signature = "($self, now, code=1000)")]
    fn close(&mut self, now: Real, code: Int) -> PyResult<()> {
        let now = t(&now)?;
        let code = code.fit::<u16>().and_then(CloseCode::new).ok_or_else(|| {
            PyValueError::new_err(format!(
                "code = {} cannot be sent in a close frame; it must lie within 1000 to 1003, \
                 1007 to 1014 or 3000 to 4999",
                code.shown()
            ))
        })?;
        self.hb.close(now, code);
        Ok(())
    }

    // ----- events: the connection ---------------------------------------------------

    /// The transport is up (handshake done): starts the ping schedule.
    fn handle_connected(&mut self, now: Real) -> PyResult<()> {
        self.hb.handle_connected(t(&now)?);
        Ok(())
    }

    /// The connection attempt failed: a client schedules the next one with backoff.
    fn handle_connect_failed(&mut self, now: Real) -> PyResult<()> {
        self.hb.handle_connect_failed(t(&now)?);
        Ok(())
    }

    /// The server asked for `delay` seconds before the next attempt (Retry-After).
    fn handle_retry_after(&mut self, now: Real, delay: Real) -> PyResult<()> {
        let now = t(&now)?;
        self.hb.handle_retry_after(now, duration("delay", &delay)?);
        Ok(())
    }

    /// The last `SendPing` was handed to the transport: the pong timer starts now.
    fn handle_ping_sent(&mut self, now: Real) -> PyResult<()> {
        self.hb.handle_ping_sent(t(&now)?);
        Ok(())
    }

    /// The close frame of the last `SendClose` was flushed.
    fn handle_close_sent(&mut self, now: Real) -> PyResult<()> {
        self.hb.handle_close_sent(t(&now)?);
        Ok(())
    }

    /// An inbound data frame (or application message) arrived: proof of life under
    /// liveness "any".
    fn handle_frame(&mut self, now: Real) -> PyResult<()> {
        self.hb.handle_frame(t(&now)?);
        Ok(())
    }

    /// A pong arrived with `payload`; returns what it meant.
    fn handle_pong(&mut self, now: Real, payload: &[u8]) -> PyResult<PyPongOutcome> {
        Ok(self.hb.handle_pong(t(&now)?, payload).into())
    }

    /// A ping arrived with `payload`; returns what it meant (a pong is queued unless
    /// over budget; over 125 bytes or a repeated flood ends the connection).
    fn handle_ping(&mut self, now: Real, payload: &[u8]) -> PyResult<PyPingOutcome> {
        Ok(self.hb.handle_ping(t(&now)?, payload).into())
    }

    /// The peer sent a close frame with `code` (None: the frame had no code). A code
    /// outside 0-65535 cannot be in a frame: `ValueError`.
    #[pyo3(signature = (now, code = None))]
    fn handle_close(&mut self, now: Real, code: Option<Int>) -> PyResult<()> {
        let now = t(&now)?;
        let code = match code {
            Some(c) => Some(c.fit::<u16>().ok_or_else(|| {
                PyValueError::new_err(format!(
                    "code = {} is not a close code; it must lie within 0 to 65535",
                    c.shown()
                ))
            })?),
            None => None,
        };
        self.hb.handle_close(now, code);
        Ok(())
    }

    /// The transport ended (EOF, reset, error).
    fn handle_transport_closed(&mut self, now: Real) -> PyResult<()> {
        self.hb.handle_transport_closed(t(&now)?);
        Ok(())
    }

    /// The driver saw a malformed frame: the connection is closed with 1002.
    fn handle_protocol_error(&mut self, now: Real) -> PyResult<()> {
        self.hb.handle_protocol_error(t(&now)?);
        Ok(())
    }

    // ----- events: time -------------------------------------------------------------

    /// Time has reached `now`: fire what is due. Early or repeated calls are harmless.
    /// Take in everything the transport already holds before calling it.
    fn handle_timeout(&mut self, now: Real) -> PyResult<()> {
        self.hb.handle_timeout(t(&now)?);
        Ok(())
    }

    /// The driver measured its own lateness (`lag` seconds): pong deadlines are
    /// extended by it, up to `Config.max_local_lag`.
    fn handle_local_lag(&mut self, now: Real, lag: Real) -> PyResult<()> {
        let now = t(&now)?;
        self.hb.handle_local_lag(now, duration("lag", &lag)?);
        Ok(())
    }

    /// Changes the ping interval (seconds) on a live machine, within `interval_bounds`.
    fn set_ping_interval(&mut self, interval: Real) -> PyResult<()> {
        let d = span("ping_interval", &interval).map_err(|m| config_error("ping_interval", m))?;
        self.hb.set_ping_interval(d).map_err(from_core)
    }

    /// Changes the fixed pong timeout (seconds), within `timeout_bounds`.
    fn set_pong_timeout(&mut self, timeout: Real) -> PyResult<()> {
        let d = span("pong_timeout", &timeout).map_err(|m| config_error("pong_timeout", m))?;
        self.hb.set_pong_timeout(d).map_err(from_core)
    }

    // ----- actions and deadlines out -----------------------------------------------

    /// The next action to execute, or None when all are drained.
    fn poll_action(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.hb.poll_action().map(|a| action(py, a)).transpose()
    }

    /// Every queued action, in order (drains the queue).
    fn poll_actions<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let list = PyList::empty(py);
        while let Some(a) = self.hb.poll_action() {
            list.append(action(py, a)?)?;
        }
        Ok(list)
    }

    /// When to call `handle_timeout` next and why, or None when nothing is armed.
    fn poll_timeout(&self) -> Option<PyDeadline> {
        self.hb.poll_timeout().map(Into::into)
    }

    /// The next deadline's time alone (seconds), or None: the cheap form of
    /// `poll_timeout().at` for a driver's sleep.
    #[getter]
    fn next_deadline(&self) -> Option<f64> {
        self.hb.poll_timeout().map(|d| at(d.at))
    }

    // ----- queries ------------------------------------------------------------------

    /// Where the machine stands, with the reason on every state after a death.
    #[getter]
    fn state(&self) -> PyState {
        self.hb.state().into()
    }
    /// Healthy, suspect or dead, as of the last `now` seen.
    #[getter]
    fn health(&self) -> PyHealth {
        self.hb.health().into()
    }
    /// RTT figures from matched pongs.
    #[getter]
    fn rtt(&self) -> Rtt {
        self.hb.rtt().into()
    }
    /// Counters.
    #[getter]
    fn stats(&self) -> PyStats {
        self.hb.stats().into()
    }
    /// The latest `now` the machine has seen.
    #[getter]
    fn now(&self) -> f64 {
        at(self.hb.now())
    }
    /// The configuration it was built with.
    #[getter]
    fn config(&self) -> PyConfig {
        self.config.clone()
    }
    /// The ping interval in force, in seconds.
    #[getter]
    fn ping_interval(&self) -> f64 {
        secs(self.hb.ping_interval())
    }
    /// The pong timeout in force (adaptive once it has a sample), in seconds.
    #[getter]
    fn pong_timeout(&self) -> f64 {
        secs(self.hb.pong_timeout())
    }
    /// The local lag in force, in seconds (capped at `max_local_lag`).
    #[getter]
    fn local_lag(&self) -> f64 {
        secs(self.hb.local_lag())
    }
    /// The last proof of life on the current connection (None unless open).
    #[getter]
    fn last_proof_of_life(&self) -> Option<f64> {
        self.hb.last_proof_of_life().map(at)
    }
    /// Why the last connection ended, if it did (the state's reason).
    #[getter]
    fn reason(&self) -> Option<PyDeathReason> {
        self.hb.state().reason().map(Into::into)
    }

    fn __repr__(&self) -> String {
        format!(
            "Machine(state={}, now={})",
            self.state().__repr__(),
            self.now()
        )
    }
}

/// A time from the caller's clock.
fn t(now: &Real) -> PyResult<Instant> {
    instant("now", now)
}

/// 64 random bits from the standard library's per-process hash keys: enough to
/// spread reconnecting clients, and no dependency.
fn random_seed() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}
