//! The driver the fuzzer controls, and the model it checks the machine against.
//!
//! Every call into the machine is made by one method in [`calls`] (events and
//! commands) or [`timers`] (`handle_timeout`, driver loops). The method first
//! works out with the [`model`] what the call must do: the next phase and, where
//! the rules fix them, the exact actions. [`checks`] then drains every action,
//! checks each one against the model of the current connection and transport,
//! and compares the machine's state, deadline, health and counters with the
//! model. Every action, deadline and state is recorded, so two runs can be
//! compared.

mod calls;
mod checks;
mod model;
mod timers;

use core::borrow::Borrow;

use heartbeat_core::{
    Action, CloseCode, Config, Deadline, HeartbeatMachine, Instant, Payload, State, Stats,
};

use crate::input::{Op, PingBody, Step};
use model::Model;

/// Everything observable from one run, compared across runs for determinism.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Entry {
    Action(Action),
    Deadline(Option<Deadline>),
    State(State),
}

/// A driver plus the model it checks the machine against.
///
/// `C` is how the machine holds its config (by value, or shared by reference).
pub(crate) struct Harness<C: Borrow<Config>> {
    m: HeartbeatMachine<C>,
    cfg: Config,
    /// The driver's clock: may run backwards, the machine's may not.
    clock: Instant,
    model: Model,
    /// Observations after the previous call.
    last_now: Instant,
    last_stats: Stats,
    last_samples: u64,
    last_state: Option<State>,
    /// The payload a `SendPong` may carry during the current call.
    answering: Option<Payload>,
    transcript: Vec<Entry>,
    /// Print every call and its outcome (for triaging a crash).
    trace: bool,
}

impl<C: Borrow<Config>> Harness<C> {
    pub(crate) fn new(config: C, seed: u64) -> Harness<C> {
        let cfg = *config.borrow();
        let m = HeartbeatMachine::new(config, seed);
        Harness {
            cfg,
            clock: Instant::ZERO,
            model: Model::new(),
            last_now: m.now(),
            last_stats: m.stats(),
            last_samples: m.rtt().samples,
            last_state: None,
            answering: None,
            transcript: Vec::new(),
            trace: false,
            m,
        }
    }

    /// Prints every call and its outcome to stderr when `on`.
    pub(crate) fn traced_if(mut self, on: bool) -> Harness<C> {
        self.trace = on;
        self
    }

    /// Runs every step and returns the transcript.
    pub(crate) fn run(mut self, steps: &[Step]) -> Vec<Entry> {
        assert_eq!(self.m.state(), State::Idle);
        assert_eq!(
            self.m.poll_timeout(),
            None,
            "nothing is armed before starting"
        );
        for step in steps {
            self.clock = step.clock.apply(self.clock);
            if self.trace {
                eprintln!("{:?} {:?}", self.clock, step.op);
            }
            self.step(&step.op);
            self.check_health();
        }
        self.transcript
    }

    fn step(&mut self, op: &Op) {
        let now = self.clock;
        match op {
            Op::Connect => self.connect(now),
            Op::Connected => self.connected(now),
            Op::ConnectFailed => self.connect_failed(now),
            Op::RetryAfter(d) => self.retry_after(now, d.0),
            Op::PingSent => self.ping_sent(now),
            Op::CloseSent => self.close_sent(now),
            Op::Frame => self.frame(now),
            Op::PongEcho(back) => {
                // One of our earlier pings, counting back from the latest.
                let payload = match self.model.next_seq {
                    0 => Vec::new(),
                    n => (n - 1 - u64::from(*back) % n).to_be_bytes().to_vec(),
                };
                self.pong(now, &payload);
            }
            Op::Pong(bytes) => self.pong(now, bytes),
            Op::PongSeq(seq) => self.pong(now, &seq.to_be_bytes()),
            Op::Ping(body) => self.ping(now, body),
            Op::PingBurst { count, gap_micros } => {
                let gap = core::time::Duration::from_micros(u64::from(*gap_micros));
                for i in 0..*count {
                    if i > 0 {
                        self.clock = self.clock + gap;
                    }
                    self.ping(self.clock, &PingBody::Bytes(vec![i]));
                }
            }
            Op::PeerClose(code) => self.peer_close(now, *code),
            Op::TransportClosed => self.transport_closed(now),
            Op::ProtocolError => self.protocol_error(now),
            Op::LocalClose(code) => {
                self.local_close(now, CloseCode::new(*code).unwrap_or(CloseCode::NORMAL))
            }
            Op::Timeout => {
                self.timeout(now);
            }
            Op::TimeoutAtDeadline => {
                if let Some(d) = self.m.poll_timeout() {
                    self.clock = d.at;
                }
                self.timeout(self.clock);
            }
            Op::Elapsed(d) => {
                self.elapsed(d.0);
                // A relative-time driver has no clock of its own: follow the machine's.
                self.clock = self.clock.max(self.m.now());
            }
            Op::LocalLag(d) => self.local_lag(now, d.0),
            Op::SetPingInterval(d) => self.set_ping_interval(d.0),
            Op::SetPongTimeout(d) => self.set_pong_timeout(d.0),
            Op::Drive { mode, firings } => self.drive(*mode, *firings),
        }
    }
}
