//! Everything about a simulation except the machine and its faults: the peer, how
//! the connection starts, our transport's write delay, and the step budget.

use core::time::Duration;

use crate::link::Link;

/// How the scripted peer behaves while it is running.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Peer {
    /// Time the peer takes to answer a ping.
    pub answer_delay: Duration,
    /// The peer sends a data frame this often (`None`: never).
    pub data_every: Option<Duration>,
    /// The peer pings this often (`None`: never).
    pub ping_every: Option<Duration>,
}

impl Default for Peer {
    fn default() -> Self {
        Peer {
            answer_delay: Duration::ZERO,
            data_every: None,
            ping_every: None,
        }
    }
}

/// How the first connection comes about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Start {
    /// The driver calls [`connect`](heartbeat_core::HeartbeatMachine::connect) at
    /// time zero and carries out the [`Action::Connect`](heartbeat_core::Action::Connect)
    /// it gets, like a client dialling or a server upgrading an accepted socket.
    #[default]
    Connect,
    /// The connection is already open at time zero: the driver only reports
    /// [`handle_connected`](heartbeat_core::HeartbeatMachine::handle_connected).
    Open,
}

/// Everything about a simulation except the machine.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SimConfig {
    /// The network.
    pub link: Link,
    /// The peer.
    pub peer: Peer,
    /// How the first connection comes about.
    pub start: Start,
    /// How long our transport takes to write a ping or a close frame before the
    /// driver reports it sent.
    pub write_delay: Duration,
    /// Seed of the link's randomness (jitter, loss).
    pub seed: u64,
    /// Upper bound on steps per [`Sim::run_until`](crate::Sim::run_until) call.
    pub max_steps: u64,
    /// The driver pulls its own ping forward to go out with the pong it owes
    /// (as heartbeat-mio does): after a ping from the peer, it calls
    /// [`ping_early`](heartbeat_core::HeartbeatMachine::ping_early) with this
    /// window. `None`: never.
    pub ping_with_pong: Option<Duration>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            link: Link::default(),
            peer: Peer::default(),
            start: Start::Connect,
            write_delay: Duration::ZERO,
            seed: 0,
            max_steps: 1_000_000,
            ping_with_pong: None,
        }
    }
}
