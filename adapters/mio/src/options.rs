//! [`Options`]: how a driver is set up.

use heartbeat_core::Config;
use heartbeat_transport::tungstenite::{small_buffers, Limits};
use tungstenite::protocol::WebSocketConfig;

/// Driver settings. [`Options::new`] gives small-buffer defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// The heartbeat of every connection. Its role is set per connection with
    /// [`Config::with_role`]: server for accepted connections (never reconnect),
    /// client for those opened with [`Driver::connect`](crate::Driver::connect)
    /// (reconnect with the configured backoff). `connect_timeout` bounds a client's
    /// TCP connect plus handshake and a server's handshake alike.
    pub config: Config,
    /// What one peer may make this driver hold ([`Limits::default`]); set with
    /// [`limits`](Options::limits), which also sets `websocket`. Accepted
    /// connections past `max_connections`, or while `max_handshakes` server
    /// handshakes are in progress, are refused.
    pub limits: Limits,
    /// tungstenite settings for every connection.
    ///
    /// The default reads at most 512 bytes per `recvfrom` into a buffer of that
    /// size, which is what keeps a connection near 1.5 KiB: heartbeat frames are
    /// 6–14 bytes, and a few hundred bytes of application messages still arrive in
    /// one read. The trade-off is for large messages: tungstenite grows the buffer
    /// to the frame being read (up to `max_frame_size`, 1 MiB) but reads at most
    /// `read_buffer_size` per call, so a 1 MiB message costs about 2,000 reads
    /// (about 0.4 µs each when the data is there) instead of 8 with 128 KiB, and
    /// the buffer keeps the frame's size while the connection lives. For bulk
    /// traffic raise `read_buffer_size` (memory per connection grows by as much).
    ///
    /// `write_buffer_size` (4 KiB) lets frames written together leave in one
    /// `sendto`: the driver always flushes after a batch of writes, so nothing
    /// waits in the buffer. At 0 every frame is written at once (correct, but a
    /// pong and the ping pulled forward to join it take two segments).
    ///
    /// Its message and frame caps close an inbound peer over them with 1009; its
    /// write-buffer cap refuses a larger send with
    /// [`SendError::TooLarge`](crate::SendError::TooLarge).
    pub websocket: WebSocketConfig,
    /// How many readiness events one `poll` returns at most (at least 1). When a
    /// `poll` fills it and a deadline is due, the driver polls again at once before
    /// judging it, so a small value costs system calls, never a false death.
    pub events_capacity: usize,
    /// The listen backlog of [`Driver::listen`](crate::Driver::listen): how many
    /// connections the kernel queues before the loop accepts them. mio and std use
    /// 128, and a burst of more SYNs than that is dropped and retried by the
    /// client a second later (measured: 1,000 connections took 1.1 s to set up
    /// instead of 0.13 s). The kernel caps it at `net.core.somaxconn` (4,096 by
    /// default).
    pub backlog: u32,
    /// Pings pulled forward to share a write with a pong: when the peer's ping
    /// arrives and this connection's own ping is due within
    /// `ping_interval / ping_with_pong` from now, it is sent at once, with the
    /// pong, in one segment (`HeartbeatMachine::ping_early`). Once that happened
    /// the two ends' pings stay in step, so each heartbeat costs each end one
    /// write and one read fewer. A ping only ever goes out early, never late;
    /// the detection bound is unchanged. `None` (or 0): off. Default `Some(8)`.
    pub ping_with_pong: Option<u32>,
}

impl Options {
    /// Replaces the limits, and the tungstenite settings that enforce them
    /// ([`Limits::websocket`], with this driver's 512-byte read buffer and 4 KiB
    /// write batch kept).
    pub fn limits(mut self, limits: Limits) -> Options {
        self.limits = limits;
        self.websocket = limits
            .websocket()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(WRITE_BATCH);
        self
    }

    /// `config` for every connection; [`small_buffers`](crate::small_buffers)
    /// (the default [`Limits`]) with a 512-byte read buffer and a 4 KiB write
    /// batch (see [`websocket`](Self::websocket)); room for 1,024 events per
    /// `poll`; a listen backlog of 4,096; a ping pulled forward to go with a pong
    /// when due within an eighth of the interval.
    pub fn new(config: Config) -> Options {
        Options {
            config,
            limits: Limits::default(),
            websocket: small_buffers()
                .read_buffer_size(READ_BUFFER)
                .write_buffer_size(WRITE_BATCH),
            events_capacity: 1024,
            backlog: 4096,
            ping_with_pong: Some(8),
        }
    }
}

/// The default read buffer: a heartbeat frame is 6–14 bytes.
const READ_BUFFER: usize = 512;
/// The default write batch: frames written in one batch of actions leave together.
const WRITE_BATCH: usize = 4096;
