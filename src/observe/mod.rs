//! Observations of what the clients went through: errors, reconnections, nacks and
//! republishes, each with its time. Failover anatomy is built from these and from the
//! server-side observers; nothing a client retried is hidden. [`cpu`] samples who was
//! busy: the CPU time of every process of a run and of the machine.

pub mod cpu;
pub mod haproxy_log;
pub mod management;
pub mod rabbit_log;
pub mod server;

use crate::event::{ClientEvent, ClientEventKind};
use std::sync::Mutex;

/// A thread-safe, append-only list of client events.
#[derive(Debug, Default)]
pub struct EventLog {
    events: Mutex<Vec<ClientEvent>>,
}

impl EventLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append an event stamped now.
    pub fn record(&self, source: &str, kind: ClientEventKind, detail: impl Into<String>) {
        let ev = ClientEvent {
            at_unix_us: crate::clock::now_unix_us(),
            source: source.to_string(),
            kind,
            detail: detail.into(),
        };
        self.events.lock().expect("event log lock").push(ev);
    }

    /// Append an event with its own time stamp (e.g. from a worker's side channel).
    pub fn push(&self, ev: ClientEvent) {
        self.events.lock().expect("event log lock").push(ev);
    }

    /// A copy of every event so far, in time order.
    pub fn snapshot(&self) -> Vec<ClientEvent> {
        let mut v = self.events.lock().expect("event log lock").clone();
        v.sort_by_key(|e| e.at_unix_us);
        v
    }

    /// The kind of the latest event recorded for `source`, if any.
    pub fn last_kind(&self, source: &str) -> Option<ClientEventKind> {
        self.events
            .lock()
            .expect("event log lock")
            .iter()
            .rev()
            .find(|e| e.source == source)
            .map(|e| e.kind)
    }

    /// Number of events of `kind`.
    pub fn count(&self, kind: ClientEventKind) -> usize {
        self.events
            .lock()
            .expect("event log lock")
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_kept_in_time_order_and_counted() {
        let log = EventLog::new();
        log.record("producer", ClientEventKind::Error, "connection reset");
        log.record("producer", ClientEventKind::Reconnected, "");
        log.record("producer", ClientEventKind::Republish, "id");
        log.record("producer", ClientEventKind::Republish, "id2");
        let s = log.snapshot();
        assert_eq!(s.len(), 4);
        assert!(s.windows(2).all(|w| w[0].at_unix_us <= w[1].at_unix_us));
        assert_eq!(log.count(ClientEventKind::Republish), 2);
        assert_eq!(log.count(ClientEventKind::Nack), 0);
        assert_eq!(log.last_kind("producer"), Some(ClientEventKind::Republish));
        assert_eq!(log.last_kind("results"), None);
    }
}
