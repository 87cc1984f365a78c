//! Independent observers of server-side events, for failover anatomy: HAProxy's view of
//! its servers (stats socket, polled every 50 ms) and the Sentinels' event channels
//! (`+sdown`, `+odown`, `+switch-master`). They run for the whole run, apart from the
//! clients under test, and never borrow the stack.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::clock::now_unix_us;
use crate::event::{ServerEvent, ServerEventKind};

/// How often HAProxy's server states are polled.
pub const PROXY_POLL: Duration = Duration::from_millis(50);

/// How one observer fared: how often it reached its server and the last failure, so
/// an unreachable observer is reported (run.json `observers`, the report) instead of
/// silently leaving its anatomy columns empty.
#[derive(Debug, Default)]
pub struct ObserverTally {
    /// What it watches, e.g. `haproxy stats` or `sentinel`.
    pub name: String,
    /// Where (socket path, `tcp://…`, `host:port`).
    pub address: String,
    ok: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// An observer's tally as run.json keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObserverStatus {
    /// What it watches.
    pub name: String,
    /// Where.
    pub address: String,
    /// Polls (HAProxy) or subscriptions (Sentinel) that reached the server.
    pub reached: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// The last failure, credentials masked.
    pub last_error: Option<String>,
}

impl ObserverTally {
    /// A tally for the observer `name` of `address`.
    pub fn new(name: &str, address: impl Into<String>) -> std::sync::Arc<Self> {
        std::sync::Arc::new(ObserverTally {
            name: name.to_string(),
            address: address.into(),
            ..Default::default()
        })
    }

    /// The server answered.
    pub fn reached(&self) {
        self.ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// It did not, because of `error`.
    pub fn failed(&self, error: &str) {
        self.failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(crate::credentials::mask(error));
    }

    /// What run.json keeps.
    pub fn status(&self) -> ObserverStatus {
        ObserverStatus {
            name: self.name.clone(),
            address: self.address.clone(),
            reached: self.ok.load(std::sync::atomic::Ordering::Relaxed),
            failed: self.failed.load(std::sync::atomic::Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

impl ObserverStatus {
    /// A sentence for the report when the observer missed anything, else `None`.
    pub fn problem(&self) -> Option<String> {
        if self.failed == 0 {
            return None;
        }
        let last = self.last_error.as_deref().unwrap_or("no detail");
        Some(if self.reached == 0 {
            format!(
                "the {} observer ({}) never reached its server ({} attempts; last: {last}): its anatomy columns are empty because of that, not because nothing happened",
                self.name, self.address, self.failed
            )
        } else {
            format!(
                "the {} observer ({}) failed {} of {} attempts (last: {last}): events in those gaps are missing from the anatomy",
                self.name,
                self.address,
                self.failed,
                self.failed + self.reached
            )
        })
    }
}

/// A thread-safe, append-only list of server events.
#[derive(Debug, Default)]
pub struct ServerLog {
    events: Mutex<Vec<ServerEvent>>,
}

impl ServerLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append an event seen now.
    pub fn record(&self, kind: ServerEventKind, detail: impl Into<String>) {
        self.push(ServerEvent {
            at_unix_us: now_unix_us(),
            kind,
            detail: detail.into(),
        });
    }

    /// Append an event with its own time.
    pub fn push(&self, ev: ServerEvent) {
        self.events.lock().expect("server log lock").push(ev);
    }

    /// Every event so far, in time order.
    pub fn snapshot(&self) -> Vec<ServerEvent> {
        let mut v = self.events.lock().expect("server log lock").clone();
        v.sort_by_key(|e| e.at_unix_us);
        v
    }
}

/// How often the task queue's leader is asked for after a broker fault (through
/// `rabbitmqctl eval`, a node's own view): a pause this long between calls, so the
/// observer's resolution is one call's duration plus this.
pub const LEADER_POLL: Duration = Duration::from_millis(200);

/// Ask `query` every `pause` (after each answer) until it answers something other than
/// `before`, then record that answer as `kind` (`detail` names it) and return it. The
/// event is stamped when the query that saw the change *started*: the change happened
/// before that query answered, and a stamp at its return would add the query's own
/// duration (a `rabbitmqctl` call takes about a second) to the phase. Failed queries
/// (`None`) are asked again.
pub async fn watch_change<T, F, Fut>(
    mut query: F,
    before: Option<T>,
    pause: Duration,
    kind: ServerEventKind,
    detail: impl Fn(&T) -> String,
    log: &ServerLog,
) -> T
where
    T: PartialEq,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    loop {
        let asked_at = now_unix_us();
        if let Some(now) = query().await
            && Some(&now) != before.as_ref()
        {
            log.push(ServerEvent {
                at_unix_us: asked_at,
                kind,
                detail: detail(&now),
            });
            return now;
        }
        tokio::time::sleep(pause).await;
    }
}

/// Turn two consecutive HAProxy snapshots into DOWN/UP transitions. `prev` maps
/// `backend/server` to whether it was up; servers seen for the first time produce nothing.
pub fn proxy_transitions(
    prev: &mut HashMap<String, bool>,
    states: &[crate::stack::haproxy::ServerState],
) -> Vec<(ServerEventKind, String)> {
    let mut out = Vec::new();
    for s in states {
        let key = format!("{}/{}", s.backend, s.server);
        let up = s.is_up();
        if let Some(&was) = prev.get(&key)
            && was != up
        {
            let kind = if up {
                ServerEventKind::ProxyUp
            } else {
                ServerEventKind::ProxyDown
            };
            out.push((kind, key.clone()));
        }
        prev.insert(key, up);
    }
    out
}

/// Servers of HAProxy's Redis backend that are UP (including `UP 1/2`: still used).
pub fn redis_up_count(states: &[crate::stack::haproxy::ServerState]) -> usize {
    states
        .iter()
        .filter(|s| s.backend == crate::config::proxy::REDIS_BACKEND && s.is_up())
        .count()
}

/// Poll HAProxy's stats socket until `cancel`, recording every server going DOWN or UP.
pub async fn watch_proxy(
    socket: crate::stack::haproxy::StatsAddr,
    log: std::sync::Arc<ServerLog>,
    tally: std::sync::Arc<ObserverTally>,
    cancel: CancellationToken,
) {
    let mut prev = HashMap::new();
    let mut redis_up = None;
    loop {
        let polled = crate::stack::haproxy::server_states_at(&socket).await;
        match &polled {
            Ok(_) => tally.reached(),
            Err(e) => tally.failed(e),
        }
        if let Ok(states) = polled {
            for (kind, detail) in proxy_transitions(&mut prev, &states) {
                log.record(kind, detail);
            }
            // How many Redis servers pass the master check: two or more is two masters.
            let n = redis_up_count(&states);
            if redis_up != Some(n) {
                log.record(ServerEventKind::ProxyRedisUp, n.to_string());
                redis_up = Some(n);
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                // Nothing is known after this: a two-masters window still open ends here.
                log.record(ServerEventKind::ProxyRedisUp, OBSERVER_STOPPED);
                return;
            }
            _ = tokio::time::sleep(PROXY_POLL) => {}
        }
    }
}

/// Detail of the last [`ServerEventKind::ProxyRedisUp`] event, when the observer stops.
pub const OBSERVER_STOPPED: &str = "observer stopped";

/// Map a Sentinel event channel and payload to an anatomy event. Only events about the
/// master count (`+sdown master hab 127.0.0.1 6380`), not about replicas or Sentinels.
pub fn sentinel_event(channel: &str, payload: &str) -> Option<ServerEventKind> {
    let about_master = payload.starts_with("master ");
    match channel {
        "+sdown" if about_master => Some(ServerEventKind::SentinelSdown),
        "+odown" if about_master => Some(ServerEventKind::SentinelOdown),
        "+switch-master" => Some(ServerEventKind::SentinelSwitchMaster),
        _ => None,
    }
}

/// Subscribe to every event channel of the Sentinel at `addr` (`host:port`) until
/// `cancel`, re-subscribing when the Sentinel goes away and comes back.
pub async fn watch_sentinel(
    addr: String,
    log: std::sync::Arc<ServerLog>,
    tally: std::sync::Arc<ObserverTally>,
    cancel: CancellationToken,
) {
    let password = crate::credentials::current().sentinel_password;
    let url = crate::credentials::Credentials {
        backend_password: password,
        ..Default::default()
    }
    .redis_url(&format!("redis://{addr}/"));
    let client = match redis::Client::open(url) {
        Ok(c) => c,
        Err(e) => {
            tally.failed(&e.to_string());
            return;
        }
    };
    loop {
        let subscribed = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.psubscribe("*").await?;
            Ok::<_, redis::RedisError>(pubsub)
        }
        .await;
        match &subscribed {
            Ok(_) => tally.reached(),
            Err(e) => tally.failed(&format!("subscribing to {addr}: {e}")),
        }
        if let Ok(mut pubsub) = subscribed {
            let mut stream = pubsub.on_message();
            loop {
                let msg = tokio::select! {
                    _ = cancel.cancelled() => return,
                    m = stream.next() => m,
                };
                let Some(msg) = msg else { break };
                let payload: String = msg.get_payload().unwrap_or_default();
                if let Some(kind) = sentinel_event(msg.get_channel_name(), &payload) {
                    log.record(kind, format!("sentinel:{addr} {payload}"));
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_polled_change_is_stamped_when_the_query_that_saw_it_started() {
        let log = ServerLog::new();
        let started = std::sync::Mutex::new(Vec::new());
        let answers = std::sync::Mutex::new(vec![Some(2), None, Some(1)]);
        let query = || {
            started.lock().unwrap().push(now_unix_us());
            let answer = answers.lock().unwrap().pop().unwrap();
            async move {
                // A slow query, as a rabbitmqctl call is.
                tokio::time::sleep(Duration::from_millis(30)).await;
                answer
            }
        };
        let now = watch_change(
            query,
            Some(1),
            Duration::from_millis(1),
            ServerEventKind::QueueLeaderChanged,
            |n| format!("broker.node[{n}]"),
            &log,
        )
        .await;
        let returned = now_unix_us();
        assert_eq!(now, 2);
        let events = log.snapshot();
        let started = started.lock().unwrap();
        assert_eq!((events.len(), started.len()), (1, 3), "{events:?}");
        assert_eq!(events[0].detail, "broker.node[2]");
        assert_eq!(events[0].kind, ServerEventKind::QueueLeaderChanged);
        // Not when the answer came back: when the third query (the one that saw the
        // new leader) started.
        assert!(events[0].at_unix_us <= started[2], "{events:?} {started:?}");
        assert!(events[0].at_unix_us >= started[1], "{events:?} {started:?}");
        assert!(events[0].at_unix_us < returned);
    }
    use crate::stack::haproxy::ServerState;

    fn state(server: &str, status: &str) -> ServerState {
        ServerState {
            backend: "broker".into(),
            server: server.into(),
            status: status.into(),
            backup: server != "rabbit0",
            check_status: "L4OK".into(),
            last_change_s: None,
        }
    }

    #[test]
    fn an_observer_that_missed_its_server_says_so() {
        let t = ObserverTally::new("haproxy stats", "tcp://127.0.0.1:1");
        assert_eq!(
            t.status().problem(),
            None,
            "nothing tried yet is no problem"
        );
        t.failed("connect 127.0.0.1:1: refused");
        let s = t.status();
        assert_eq!((s.reached, s.failed), (0, 1));
        let p = s.problem().unwrap();
        assert!(p.contains("never reached") && p.contains("refused"), "{p}");
        t.reached();
        t.reached();
        let p = t.status().problem().unwrap();
        assert!(p.contains("failed 1 of 3 attempts"), "{p}");
    }

    #[test]
    fn transitions_only_on_change_and_not_on_first_sight() {
        let mut prev = HashMap::new();
        assert!(
            proxy_transitions(&mut prev, &[state("rabbit0", "UP"), state("rabbit1", "UP")])
                .is_empty()
        );
        // Failing but still used (UP 1/2) is not a transition.
        assert!(proxy_transitions(&mut prev, &[state("rabbit0", "UP 1/2")]).is_empty());
        assert_eq!(
            proxy_transitions(
                &mut prev,
                &[state("rabbit0", "DOWN"), state("rabbit1", "UP")]
            ),
            vec![(ServerEventKind::ProxyDown, "broker/rabbit0".to_string())]
        );
        assert_eq!(
            proxy_transitions(&mut prev, &[state("rabbit0", "UP")]),
            vec![(ServerEventKind::ProxyUp, "broker/rabbit0".to_string())]
        );
    }

    #[test]
    fn only_master_events_count() {
        assert_eq!(
            sentinel_event("+sdown", "master hab 127.0.0.1 6380"),
            Some(ServerEventKind::SentinelSdown)
        );
        assert_eq!(
            sentinel_event(
                "+sdown",
                "slave 127.0.0.1:6381 127.0.0.1 6381 @ hab 127.0.0.1 6380"
            ),
            None
        );
        assert_eq!(
            sentinel_event("+odown", "master hab 127.0.0.1 6380 #quorum 2/2"),
            Some(ServerEventKind::SentinelOdown)
        );
        assert_eq!(
            sentinel_event("+switch-master", "hab 127.0.0.1 6380 127.0.0.1 6381"),
            Some(ServerEventKind::SentinelSwitchMaster)
        );
        assert_eq!(sentinel_event("+vote-for-leader", "x"), None);
    }
}
