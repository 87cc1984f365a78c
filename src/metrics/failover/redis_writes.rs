//! Where writes went around a Redis-side fault: refused (`READONLY` from a demoted
//! master, `NOREPLICAS` from a master that lost its replicas) or accepted by two masters
//! at once behind HAProxy.

use super::switch::offset_ms;
use crate::event::{ClientEvent, ClientEventKind, ServerEvent, ServerEventKind};

/// Whether a client error's text is a Redis `NOREPLICAS` answer (a write refused by
/// `min-replicas-to-write`).
pub fn is_noreplicas(detail: &str) -> bool {
    let d = detail.to_ascii_lowercase();
    d.contains("noreplicas") || d.contains("not enough good replicas")
}

/// Whether a client error's text is a Redis `READONLY` answer.
pub fn is_readonly(detail: &str) -> bool {
    // redis-rs prints the kind (`ReadOnly: You can't write against a read only replica.`,
    // inside `Transaction aborted: …` for MULTI/EXEC); Redis itself says `READONLY`.
    let d = detail.to_ascii_lowercase();
    d.contains("readonly") || d.contains("read only replica")
}

/// The task id a worker's store error names (`task <uuid>: …`), if any.
pub fn error_task(detail: &str) -> Option<&str> {
    let rest = detail.strip_prefix("task ")?;
    rest.split_once(':').map(|(id, _)| id)
}

/// The client errors within `[from, to)` whose text `is_kind` recognises (such as
/// [`is_readonly`]), in the events' order.
pub(super) fn errors_of_kind(
    events: &[ClientEvent],
    from: i64,
    to: i64,
    is_kind: fn(&str) -> bool,
) -> Vec<&ClientEvent> {
    events
        .iter()
        .filter(|e| e.kind == ClientEventKind::Error && e.at_unix_us >= from && e.at_unix_us < to)
        .filter(|e| is_kind(&e.detail))
        .collect()
}

/// How many distinct tasks these errors name ([`error_task`]).
pub(super) fn tasks_named(errors: &[&ClientEvent]) -> u64 {
    errors
        .iter()
        .filter_map(|e| error_task(&e.detail))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64
}

/// From HAProxy's count of UP Redis servers ([`ServerEventKind::ProxyRedisUp`] events,
/// any order), the time within `[from, to)` with two or more UP, in ms, and the offset
/// from `from` at which that first happened; `None` when it never did. A window still
/// open when the observer stopped ends there (a lower bound).
pub fn two_masters(events: &[ServerEvent], from: i64, to: i64) -> Option<(f64, f64)> {
    let mut counts: Vec<(i64, usize)> = events
        .iter()
        .filter(|e| e.kind == ServerEventKind::ProxyRedisUp)
        // Anything but a number (the observer stopping) ends an open window.
        .map(|e| (e.at_unix_us, e.detail.trim().parse().unwrap_or(0)))
        .collect();
    counts.sort_by_key(|&(t, _)| t);
    let mut total = 0i64;
    let mut first = None;
    for (i, &(t, n)) in counts.iter().enumerate() {
        if n < 2 {
            continue;
        }
        let end = counts.get(i + 1).map_or(to, |&(next, _)| next);
        let (a, b) = (t.max(from), end.min(to));
        if b > a {
            total += b - a;
            first.get_or_insert(a);
        }
    }
    first.map(|f| (total as f64 / 1000.0, offset_ms(f, from)))
}

/// The longest a two-masters window is followed after a fault when no fault follows, µs.
pub const TWO_MASTERS_HORIZON_US: i64 = 120_000_000;
