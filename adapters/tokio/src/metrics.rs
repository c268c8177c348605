//! Prometheus metrics for a service's connections (feature `metrics`): live
//! connections, deaths by reason, pings, pongs, an RTT histogram, reconnects,
//! failed connects and the local lag, as `prometheus-client` metrics.
//!
//! [`Metrics`] is fed by an observer, so it counts exactly what
//! [`Options::observe`](crate::Options::observe) reports:
//!
//! ```
//! use heartbeat_core::Config;
//! use heartbeat_tokio::{metrics::Metrics, Options};
//! use prometheus_client::registry::Registry;
//!
//! let metrics = Metrics::new();
//! let mut registry = Registry::default();
//! metrics.register(&mut registry);
//! let options = Options::new(Config::default()).observe_conn(metrics.observer());
//! // ... serve `prometheus_client::encoding::text::encode(&mut text, &registry)`.
//! # let _ = options;
//! ```

use core::time::Duration;
use std::sync::atomic::AtomicU64;

use heartbeat_core::DeathReason;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::event::{ConnInfo, Event};

/// The heartbeat metrics of every connection observed; cheap to clone (each
/// metric is shared).
#[derive(Clone, Debug)]
pub struct Metrics {
    connections: Gauge,
    deaths: Family<Reason, Counter>,
    pings: Counter,
    pongs: Counter,
    rtt: Histogram,
    reconnects: Counter,
    connect_failures: Counter,
    local_lag: Gauge<f64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// All metrics at zero; RTT buckets from 100 µs to about 26 s, doubling.
    pub fn new() -> Metrics {
        Metrics {
            connections: Gauge::default(),
            deaths: Family::default(),
            pings: Counter::default(),
            pongs: Counter::default(),
            rtt: Histogram::new(exponential_buckets(0.0001, 2.0, 19)),
            reconnects: Counter::default(),
            connect_failures: Counter::default(),
            local_lag: Gauge::default(),
        }
    }

    /// Registers every metric in `registry`, named `heartbeat_*`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("heartbeat");
        r.register(
            "connections",
            "Connections open now",
            self.connections.clone(),
        );
        r.register(
            "deaths",
            "Connections ended, by the machine's reason",
            self.deaths.clone(),
        );
        r.register("pings_sent", "Pings sent", self.pings.clone());
        r.register("pongs", "Pongs answering our pings", self.pongs.clone());
        r.register_with_unit(
            "rtt",
            "Round-trip time of matched pongs",
            Unit::Seconds,
            self.rtt.clone(),
        );
        r.register(
            "reconnects",
            "Reconnect attempts scheduled",
            self.reconnects.clone(),
        );
        r.register(
            "connect_failures",
            "Connection attempts that failed",
            self.connect_failures.clone(),
        );
        r.register_with_unit(
            "local_lag",
            "How late this process's timers ran lately (pong deadlines are extended by it)",
            Unit::Seconds,
            self.local_lag.clone(),
        );
    }

    /// Counts one event.
    pub fn record(&self, event: &Event) {
        match event {
            Event::Connected { .. } => {
                self.connections.inc();
            }
            Event::PingSent { .. } => {
                self.pings.inc();
            }
            Event::Pong { rtt, .. } => {
                self.pongs.inc();
                self.rtt.observe(rtt.as_secs_f64());
            }
            Event::Dead { reason, .. } => {
                self.connections.dec();
                self.deaths
                    .get_or_create(&Reason {
                        reason: reason_label(reason).to_owned(),
                    })
                    .inc();
            }
            Event::Reconnecting { .. } => {
                self.reconnects.inc();
            }
            Event::ConnectFailed { .. } => {
                self.connect_failures.inc();
            }
            Event::Closed { .. } => {}
        }
    }

    /// An observer for [`Options::observe_conn`](crate::Options::observe_conn)
    /// that records every event here.
    pub fn observer(&self) -> impl Fn(&ConnInfo, &Event) + Send + Sync + 'static {
        let metrics = self.clone();
        move |_, e| metrics.record(e)
    }

    /// Sets the local-lag gauge, e.g. to
    /// [`Options::local_lag`](crate::Options::local_lag) just before a scrape.
    pub fn set_local_lag(&self, lag: Duration) {
        self.local_lag.set(lag.as_secs_f64());
    }
}

/// The `reason` label of `heartbeat_deaths_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

/// One word per death reason, as `heartbeat ping --json` prints it.
pub fn reason_label(reason: &DeathReason) -> &'static str {
    match reason {
        DeathReason::PongTimeout { .. } => "pong_timeout",
        DeathReason::PeerClosed { .. } => "peer_closed",
        DeathReason::TransportClosed => "transport_closed",
        DeathReason::ProtocolError(_) => "protocol_error",
        DeathReason::PingFlood => "ping_flood",
        DeathReason::LocalClose { .. } => "local_close",
        DeathReason::ConnectFailed(_) => "connect_failed",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn events_move_the_counters_a_registry_encodes() {
        let metrics = Metrics::new();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        for e in [
            Event::Connected { attempt: 0 },
            Event::PingSent { seq: 0 },
            Event::Pong {
                seq: 0,
                rtt: Duration::from_millis(3),
            },
            Event::Dead {
                reason: DeathReason::PongTimeout {
                    waited: Duration::from_secs(1),
                },
                local_lag: Duration::ZERO,
            },
            Event::Reconnecting {
                after: Duration::from_secs(1),
                attempt: 1,
            },
        ] {
            metrics.record(&e);
        }
        metrics.set_local_lag(Duration::from_millis(5));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            "heartbeat_connections 0",
            "heartbeat_deaths_total{reason=\"pong_timeout\"} 1",
            "heartbeat_pings_sent_total 1",
            "heartbeat_pongs_total 1",
            "heartbeat_rtt_seconds_count 1",
            "heartbeat_reconnects_total 1",
            "heartbeat_local_lag_seconds 0.005",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
