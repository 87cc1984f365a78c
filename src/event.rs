//! The events hab's observers record, as data every layer above may read: what a client
//! went through ([`ClientEvent`]: errors, reconnections, nacks, republishes,
//! rediscoveries), what an observer saw of the servers ([`ServerEvent`]: Sentinel,
//! HAProxy, queue leader, a paused RabbitMQ node), the sessions HAProxy logged
//! ([`ProxySession`], with the idle timeout that cut one: [`TimeoutSide`]) and the
//! producer's circuit breaker states ([`BreakerState`]). The observers that produce them
//! (`observe`) and the breaker (`producer`) are engines; metrics and charts read these
//! types without importing either.

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

    /// Every kind of client event.
    pub const ALL: [ClientEventKind; 5] = [
        ClientEventKind::Error,
        ClientEventKind::Reconnected,
        ClientEventKind::Nack,
        ClientEventKind::Republish,
        ClientEventKind::Rediscovered,
    ];

    /// The kind named `s` in files (client_events.csv).
    pub fn parse(s: &str) -> Option<ClientEventKind> {
        ClientEventKind::ALL.into_iter().find(|k| k.as_str() == s)
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

    /// Every breaker state, from closed to open.
    pub const ALL: [BreakerState; 3] = [
        BreakerState::Closed,
        BreakerState::HalfOpen,
        BreakerState::Open,
    ];

    /// The state named `s` in files.
    pub fn parse(s: &str) -> Option<BreakerState> {
        BreakerState::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

/// Which of HAProxy's idle timeouts cut a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutSide {
    /// `timeout client` (termination state `c…`).
    Client,
    /// `timeout server` (termination state `s…`).
    Server,
}

/// One ended TCP session, as HAProxy logged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxySession {
    /// When HAProxy logged it, i.e. when the session ended, unix µs.
    pub end_unix_us: i64,
    /// The client's address, `127.0.0.1:59734`.
    pub client: String,
    /// The frontend: `broker` or `backend` (Redis).
    pub frontend: String,
    /// The backend, e.g. `broker_nodes`.
    pub backend: String,
    /// The server the session went to, e.g. `rabbit0` (`<NOSRV>` if none).
    pub server: String,
    /// Total session time `Tt`, ms.
    pub duration_ms: u64,
    /// Bytes sent to the client.
    pub bytes_to_client: u64,
    /// The two-character termination state (`--` = normal close, `cD` = client timeout
    /// during data, `sD` = server timeout during data, `SD` = server closed, …).
    pub termination: String,
}

impl ProxySession {
    /// When the session was accepted, unix µs (end − `Tt`).
    pub fn start_unix_us(&self) -> i64 {
        self.end_unix_us - (self.duration_ms as i64) * 1000
    }

    /// The idle timeout that ended the session, if one did.
    pub fn cut_by_timeout(&self) -> Option<TimeoutSide> {
        match self.termination.chars().next() {
            Some('c') => Some(TimeoutSide::Client),
            Some('s') => Some(TimeoutSide::Server),
            _ => None,
        }
    }
}

/// Asserts that each of `all` is written in files as its serde name, which `as_str`
/// gives, and that `parse` reads that name back as itself.
#[cfg(test)]
#[track_caller]
pub(crate) fn assert_serde_names<T>(
    all: &[T],
    as_str: fn(T) -> &'static str,
    parse: fn(&str) -> Option<T>,
) where
    T: Serialize + PartialEq + std::fmt::Debug + Copy,
{
    for &k in all {
        assert_eq!(serde_json::to_value(k).unwrap(), as_str(k));
        assert_eq!(parse(as_str(k)), Some(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in files are serde's names (run.json), and each reads back as itself.
    #[test]
    fn file_names_are_serde_names_and_parse_back() {
        assert_serde_names(
            &ClientEventKind::ALL,
            ClientEventKind::as_str,
            ClientEventKind::parse,
        );
        assert_serde_names(
            &BreakerState::ALL,
            BreakerState::as_str,
            BreakerState::parse,
        );
        assert_eq!(ClientEventKind::parse("Error"), None);
        assert_eq!(BreakerState::parse("half-open"), None);
    }
}
