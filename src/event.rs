//! The events hab's observers record, as data every layer above may read: what a client
//! went through ([`ClientEvent`]: errors, reconnections, nacks, republishes,
//! rediscoveries), what an observer saw of the servers ([`ServerEvent`]: Sentinel,
//! HAProxy, queue leader, a paused RabbitMQ node) and the producer's circuit breaker
//! states ([`BreakerState`]). The observers that produce them (`observe`) and the breaker
//! (`producer`) are engines; metrics and charts read these types without importing
//! either.

use serde::{Deserialize, Serialize};

/// What happened to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientEventKind {
    /// An operation failed (publish, confirm, connection, read).
    Error,
    /// The client connected again after an error.
    Reconnected,
    /// The broker refused a publish (basic.nack).
    Nack,
    /// A task was published again because its first publish was not confirmed.
    Republish,
    /// Client-side failover: the client moved on to another broker node, or the
    /// Sentinels named it a new Redis master.
    Rediscovered,
}

impl ClientEventKind {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientEventKind::Error => "error",
            ClientEventKind::Reconnected => "reconnected",
            ClientEventKind::Nack => "nack",
            ClientEventKind::Republish => "republish",
            ClientEventKind::Rediscovered => "rediscovered",
        }
    }
}

/// One client event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientEvent {
    /// When, unix µs.
    pub at_unix_us: i64,
    /// Which client: `producer`, `results` (the result watcher), `worker w1`, …
    pub source: String,
    /// What happened.
    pub kind: ClientEventKind,
    /// The error text or other detail.
    pub detail: String,
}

/// A server-side event seen by an observer (HAProxy, Sentinel, RabbitMQ).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEvent {
    /// When the observer saw it, unix µs.
    pub at_unix_us: i64,
    /// What it is.
    pub kind: ServerEventKind,
    /// Detail: the server, the new master address, the new leader.
    pub detail: String,
}

/// Kinds of server-side events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerEventKind {
    /// A Sentinel reported `+sdown` for the master (subjectively down).
    SentinelSdown,
    /// A Sentinel reported `+odown` (objectively down: the quorum agrees).
    SentinelOdown,
    /// A Sentinel reported `+switch-master` (a replica was promoted).
    SentinelSwitchMaster,
    /// The task queue's leader moved to another node.
    QueueLeaderChanged,
    /// HAProxy marked a server DOWN.
    ProxyDown,
    /// HAProxy marked a server UP.
    ProxyUp,
    /// The number of Redis servers HAProxy has UP changed (the detail is the new number);
    /// also recorded at the observer's first poll. Two or more means two masters.
    ProxyRedisUp,
    /// A partitioned RabbitMQ node found itself in the minority and paused
    /// (`pause_minority`: listeners and client connections closed), from its log.
    BrokerPaused,
    /// A paused RabbitMQ node started its client listener again (it saw a majority after
    /// the heal), from its log.
    BrokerResumed,
}

/// The breaker's state, ordered by how little it lets through (closed < half-open < open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through; consecutive failures are counted.
    Closed,
    /// A few probe calls go through; their results decide between closed and open.
    HalfOpen,
    /// Every call is refused at once (fail fast) until the open period ends.
    Open,
}

impl BreakerState {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}
