//! Failover anatomy: for each applied fault, when each independent observer saw each
//! phase, as offsets from the moment the fault was applied (DESIGN.md §5), the switch time,
//! the outage, and what happened to the tasks around it.

mod phases;
mod redis_writes;
mod row;
mod switch;
#[cfg(test)]
mod tests;

pub use phases::{PHASES, PhaseOrder, phase_name, phase_offsets, phase_order};
pub use redis_writes::{
    TWO_MASTERS_HORIZON_US, error_task, is_noreplicas, is_readonly, two_masters,
};
use redis_writes::{errors_of_kind, tasks_named};
pub use row::FailoverRow;
pub use switch::{WINDOW_AFTER_DEFAULT_US, WINDOW_BEFORE_US, flow_again_unix_us, switch_time_ms};
use switch::{in_window, offset_ms};

use crate::config::clients::ClientsConfig;
use crate::event::{ClientEvent, ClientEventKind};
use crate::event::{ServerEvent, ServerEventKind};
use crate::fault::AppliedFault;
use crate::fault::Role;
use crate::ledger::{Outcome, TaskRecord};
use crate::metrics::client_side;

/// Whether a fault on `target` acts on the Redis side (data nodes or Sentinels).
fn redis_side(target: Role) -> bool {
    matches!(
        target,
        Role::BackendMaster | Role::BackendReplica | Role::BackendNode(_) | Role::Sentinel(_)
    )
}

/// The window of tasks attributed to a fault: intended start from 1 s before the fault
/// until the stack is healthy again (or 30 s), cut at the next fault's window.
pub fn window(f: &AppliedFault, next_fault_at: Option<i64>) -> (i64, i64) {
    let start = f.fault_at_unix_us - WINDOW_BEFORE_US;
    let mut end = f
        .healthy_at_unix_us
        .unwrap_or(f.fault_at_unix_us + WINDOW_AFTER_DEFAULT_US)
        .max(f.fault_at_unix_us);
    if let Some(n) = next_fault_at {
        end = end.min(n - WINDOW_BEFORE_US);
    }
    (start, end)
}

/// HAProxy's `backend/server` name of a resolved node (`broker.node[1]` →
/// `broker_nodes/rabbit1`, `backend.node[0]` → `backend_nodes/redis0`); `None` for
/// anything HAProxy does not route to.
pub fn proxy_server_of(resolved: &str) -> Option<String> {
    let index = |prefix: &str| {
        resolved
            .strip_prefix(prefix)?
            .strip_suffix(']')?
            .parse::<usize>()
            .ok()
    };
    use crate::config::proxy::{
        BROKER_BACKEND, BROKER_SERVER_PREFIX, REDIS_BACKEND, REDIS_SERVER_PREFIX,
    };
    if let Some(i) = index("broker.node[") {
        Some(format!("{BROKER_BACKEND}/{BROKER_SERVER_PREFIX}{i}"))
    } else {
        index("backend.node[").map(|i| format!("{REDIS_BACKEND}/{REDIS_SERVER_PREFIX}{i}"))
    }
}

/// Compute one failover row. `tasks` are the workload's tasks (classified with the side
/// channel merged); events and server events cover the whole run. `previous_end` is the
/// end of the previous fault's window in the same workload, if any.
#[allow(clippy::too_many_arguments)]
pub fn analyse(
    f: &AppliedFault,
    workload: &str,
    next_fault_at: Option<i64>,
    previous_end: Option<i64>,
    tasks: &[TaskRecord],
    client_events: &[ClientEvent],
    server_events: &[ServerEvent],
    present: Option<&std::collections::HashSet<uuid::Uuid>>,
) -> FailoverRow {
    let at = f.fault_at_unix_us;
    let (w_start, w_end) = window(f, next_fault_at);
    let horizon = next_fault_at.unwrap_or(i64::MAX);
    let first_client = |kind: ClientEventKind| {
        client_events
            .iter()
            .filter(|e| e.kind == kind && e.at_unix_us >= at && e.at_unix_us < horizon)
            .map(|e| offset_ms(e.at_unix_us, at))
            .next()
    };
    let first_server_where = |kind: ServerEventKind, keep: &dyn Fn(&ServerEvent) -> bool| {
        server_events
            .iter()
            .filter(|e| e.kind == kind && e.at_unix_us >= at && e.at_unix_us < horizon)
            .filter(|e| keep(e))
            .map(|e| offset_ms(e.at_unix_us, at))
            .next()
    };
    let first_server = |kind: ServerEventKind| first_server_where(kind, &|_| true);
    // The proxy's view of the faulted node: it going DOWN is the detection; the switch
    // is another server coming UP (a promoted Redis replica). The faulted node coming
    // back UP after its restart is not a switch.
    let faulted = proxy_server_of(&f.resolved);
    let is_faulted = |e: &ServerEvent| faulted.as_deref().is_none_or(|s| e.detail == s);
    let is_other = |e: &ServerEvent| faulted.as_deref().is_none_or(|s| e.detail != s);

    // Switch time ([`switch_time_ms`]). None for a fault that did not take effect (a
    // failover that promoted nobody): the old master serving on is no switch.
    let switch_time_ms = f
        .not_applied
        .is_none()
        .then(|| switch_time_ms(tasks, at, next_fault_at))
        .flatten();

    // Outage: the longest gap between consecutive successful completions from the last
    // one before the fault (however long before: a stall before the fault is part of the
    // gap) through the window, counting the gap that spans the fault.
    let mut done: Vec<i64> = tasks
        .iter()
        .filter(|t| t.classify().outcome == Outcome::Ok)
        .filter_map(|t| t.result_seen_unix_us)
        .filter(|&s| s <= w_end.max(at) + WINDOW_AFTER_DEFAULT_US)
        .collect();
    done.sort_unstable();
    let before = done.iter().rev().find(|&&s| s < at).copied();
    let after: Vec<i64> = done.iter().copied().filter(|&s| s >= at).collect();
    let outage_ms = match (before, after.first()) {
        _ if f.not_applied.is_some() => None,
        (Some(b), Some(&a)) => {
            let mut gap = a - b;
            for pair in after.windows(2) {
                if pair[0] > w_end {
                    break;
                }
                gap = gap.max(pair[1] - pair[0]);
            }
            Some(gap as f64 / 1000.0)
        }
        _ => None,
    };

    let mut row = FailoverRow {
        workload: workload.to_string(),
        target: f.target.to_string(),
        resolved: f.resolved.clone(),
        kind: f.kind.as_str().to_string(),
        repetition: f.repetition,
        fault_at_unix_ms: at / 1000,
        first_client_error_ms: first_client(ClientEventKind::Error),
        sentinel_sdown_ms: first_server(ServerEventKind::SentinelSdown),
        sentinel_odown_ms: first_server(ServerEventKind::SentinelOdown),
        sentinel_switch_ms: first_server(ServerEventKind::SentinelSwitchMaster),
        queue_leader_ms: first_server(ServerEventKind::QueueLeaderChanged),
        proxy_down_ms: first_server_where(ServerEventKind::ProxyDown, &is_faulted),
        proxy_up_ms: first_server_where(ServerEventKind::ProxyUp, &is_other),
        client_reconnected_ms: first_client(ClientEventKind::Reconnected),
        restored_ms: f.restored_at_unix_us.map(|r| offset_ms(r, at)),
        healthy_ms: f.healthy_at_unix_us.map(|h| offset_ms(h, at)),
        switch_time_ms,
        outage_ms,
        lost: 0,
        result_lost: 0,
        duplicated: 0,
        unconfirmed: 0,
        republished: 0,
        failed: 0,
        tasks: 0,
        not_applied: f.not_applied.clone().unwrap_or_default(),
        two_masters_ms: None,
        two_masters_from_ms: None,
        readonly_errors: 0,
        readonly_tasks: 0,
        readonly_for_ms: None,
        // Only a fault on the Redis side can make a stored result vanish (a demoted
        // master's resync, a restart without persistence); a broker fault's tasks whose
        // results a later Redis fault wiped are not its doing.
        result_vanished: present.filter(|_| redis_side(f.target)).map(|_| 0),
        client_side: false,
        client_rediscovered_ms: None,
        noreplicas_errors: 0,
        noreplicas_tasks: 0,
        broker_paused_ms: first_server(ServerEventKind::BrokerPaused),
        broker_resumed_ms: first_server(ServerEventKind::BrokerResumed),
        revoked: 0,
    };
    // Vanished results: every task seen ok, meant to start from the window's start until
    // the next fault's window (results stored after "healthy" were still lost when a
    // demoted master resynced later), whose key is gone at the end.
    if let (Some(p), Some(v)) = (present, row.result_vanished.as_mut()) {
        let until = next_fault_at.map_or(i64::MAX, |n| n - WINDOW_BEFORE_US);
        *v = tasks
            .iter()
            .filter(|t| t.intended_unix_us >= w_start && t.intended_unix_us < until)
            .filter(|t| t.classify().outcome == Outcome::Ok && !p.contains(&t.id))
            .count() as u64;
    }
    // Two masters: until the next fault (at most TWO_MASTERS_HORIZON_US). Not cut at
    // full health: a demoted master was seen answering role:master (and accepting
    // writes) after the stack's health check had passed.
    if let Some((ms, from)) =
        two_masters(server_events, at, horizon.min(at + TWO_MASTERS_HORIZON_US))
    {
        row.two_masters_ms = Some(ms);
        row.two_masters_from_ms = Some(from);
    }
    let readonly = errors_of_kind(client_events, at, horizon, is_readonly);
    row.readonly_errors = readonly.len() as u64;
    row.readonly_tasks = tasks_named(&readonly);
    if let (Some(a), Some(b)) = (readonly.first(), readonly.last()) {
        row.readonly_for_ms = Some((b.at_unix_us - a.at_unix_us) as f64 / 1000.0);
    }
    let refused = errors_of_kind(client_events, at, horizon, is_noreplicas);
    row.noreplicas_errors = refused.len() as u64;
    row.noreplicas_tasks = tasks_named(&refused);
    for t in tasks
        .iter()
        .filter(|t| in_window(t, w_start, w_end, previous_end))
    {
        let c = t.classify();
        row.tasks += 1;
        match c.outcome {
            Outcome::Lost => row.lost += 1,
            Outcome::ResultLost => row.result_lost += 1,
            Outcome::Unconfirmed => row.unconfirmed += 1,
            Outcome::Failed => row.failed += 1,
            Outcome::Revoked => row.revoked += 1,
            // The producer's policy refused or gave it up: not a loss of the stack (see
            // run.json `producer`, metrics::outage).
            Outcome::Ok | Outcome::Refused | Outcome::GaveUp => {}
            // Not finished by its workload's drain deadline, or its result unknown (a read
            // failed): not a loss either (run.json workload counts).
            Outcome::UnfinishedRunning | Outcome::UnfinishedQueued | Outcome::Unknown => {}
        }
        if c.duplicated {
            row.duplicated += 1;
        }
        if t.republished > 0 {
            row.republished += 1;
        }
    }
    row
}

/// Failover rows for every fault of a run, in the order they fired: each fault analysed
/// ([`analyse`]) on its workload's tasks in `ledger` (side channel merged), with the
/// client-side failover columns (`apply_client_side`). `names` are the
/// plan's workload names; `present` the task ids whose result key the backend still held
/// at the end, if read. `hab run` calls this as the run goes, `hab merge` on the merged
/// ledger.
#[allow(clippy::too_many_arguments)]
pub fn rows(
    faults: &[AppliedFault],
    names: &[&str],
    ledger: &crate::ledger::Ledger,
    client_events: &[ClientEvent],
    server_events: &[ServerEvent],
    present: Option<&std::collections::HashSet<uuid::Uuid>>,
    clients: &ClientsConfig,
) -> Vec<FailoverRow> {
    faults
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let next = faults[k + 1..]
                .iter()
                .find(|g| g.not_applied.is_none())
                .map(|g| g.fault_at_unix_us);
            let name = names.get(f.workload).copied().unwrap_or("");
            // The end of the previous applied fault's window in the same workload.
            let previous_end = faults[..k]
                .iter()
                .rev()
                .find(|g| g.not_applied.is_none() && g.workload == f.workload)
                .map(|g| window(g, Some(f.fault_at_unix_us)).1);
            let mut row = analyse(
                f,
                name,
                next,
                previous_end,
                ledger.tasks(f.workload),
                client_events,
                server_events,
                present,
            );
            apply_client_side(
                &mut row,
                clients,
                f.target,
                f.fault_at_unix_us,
                next,
                client_events,
            );
            row
        })
        .collect()
}

/// Mark `row` (a fault of `target` at `fault_at_unix_us`, the next fault at `next`) as
/// client-side when the clients route around it ([`client_side::routes_around`]), with
/// the first rediscovery after the fault from the client events (any order).
fn apply_client_side(
    row: &mut FailoverRow,
    clients: &ClientsConfig,
    target: Role,
    fault_at_unix_us: i64,
    next: Option<i64>,
    events: &[ClientEvent],
) {
    row.client_side = client_side::routes_around(clients, target);
    if !row.client_side {
        return;
    }
    row.client_rediscovered_ms = client_side::first_rediscovery_ms(fault_at_unix_us, next, events);
}
