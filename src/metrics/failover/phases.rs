//! The failover anatomy's phases: when each was first observed, their names, and whether
//! the independent observers saw them in order.

use super::row::FailoverRow;

/// The failover anatomy's phases in their expected order (DESIGN.md §5): detection,
/// promotion, the proxy's new route (under client-side failover the clients' own
/// rediscovery, named `rediscover`), a client reconnected, and the first task through —
/// the switch time, which closes the anatomy.
pub const PHASES: [&str; 5] = ["detect", "promote", "proxy up", "reconnect", "switch"];

/// When each phase of [`PHASES`] was first observed, ms after the fault (`None`: not
/// observed): detect = the earliest of first client error, Sentinel `+sdown` and HAProxy
/// DOWN; promote = Sentinel `+switch-master`, else a new queue leader; proxy up = HAProxy
/// UP (client-side failover: the clients' rediscovery); reconnect; switch = the switch time.
pub fn phase_offsets(row: &FailoverRow) -> [Option<f64>; 5] {
    let earliest = |v: &[Option<f64>]| {
        v.iter()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .reduce(f64::min)
    };
    [
        earliest(&[
            row.first_client_error_ms,
            row.sentinel_sdown_ms,
            row.proxy_down_ms,
        ]),
        row.sentinel_switch_ms.or(row.queue_leader_ms),
        if row.client_side {
            row.client_rediscovered_ms
        } else {
            row.proxy_up_ms
        },
        row.client_reconnected_ms,
        row.switch_time_ms,
    ]
    .map(|v| v.filter(|v| v.is_finite()))
}

/// The name of phase `k` of [`PHASES`] for `row` (`rediscover` for the third under
/// client-side failover).
pub fn phase_name(row: &FailoverRow, k: usize) -> &'static str {
    if k == 2 && row.client_side {
        "rediscover"
    } else {
        PHASES[k]
    }
}

/// Whether a failover row's anatomy phases were observed in order ([`phase_order`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PhaseOrder {
    /// Every observed phase came no earlier than the ones before it and no later than the
    /// switch time.
    pub ordered: bool,
    /// The phases out of order, in [`PHASES`] order, by name ([`phase_name`]).
    pub out_of_order: Vec<&'static str>,
    /// Why, one clause per phase out of order, with the offsets (empty when ordered).
    pub detail: String,
}

/// Whether the anatomy phases of `row` ([`phase_offsets`]) were observed in order: a phase
/// is out of order when an observer saw it after the switch time (tasks already flowed
/// again: e.g. HAProxy UP or Sentinel `+switch-master` seen after the first task
/// completed), or before an earlier phase that was observed (a client reconnected before
/// HAProxy's new route). Observers are independent, so either can happen; the anatomy
/// chart caps its bars at the switch time and marks these, the report names them, and a
/// run's invariants check ("anatomy phases are ordered or flagged") reads this. A fault
/// that was not applied is ordered (nothing to order).
pub fn phase_order(row: &FailoverRow) -> PhaseOrder {
    if !row.not_applied.is_empty() {
        return PhaseOrder {
            ordered: true,
            ..PhaseOrder::default()
        };
    }
    let at = phase_offsets(row);
    let switch = at[4];
    let mut out_of_order = Vec::new();
    let mut why = Vec::new();
    // The latest earlier phase observed so far: (its name, its offset).
    let mut latest: Option<(&'static str, f64)> = None;
    for (k, seen) in at.iter().enumerate().take(4) {
        let Some(t) = *seen else { continue };
        let name = phase_name(row, k);
        let mut reasons = Vec::new();
        if let Some(s) = switch.filter(|&s| t > s) {
            reasons.push(format!("after the switch ({s:.0} ms)"));
        }
        if let Some((earlier, e)) = latest.filter(|&(_, e)| t < e) {
            reasons.push(format!("before {earlier} ({e:.0} ms)"));
        }
        if !reasons.is_empty() {
            out_of_order.push(name);
            why.push(format!("{name} at {t:.0} ms, {}", reasons.join(" and ")));
        }
        if latest.is_none_or(|(_, e)| t > e) {
            latest = Some((name, t));
        }
    }
    PhaseOrder {
        ordered: out_of_order.is_empty(),
        out_of_order,
        detail: why.join("; "),
    }
}
