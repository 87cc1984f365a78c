//! Failover anatomy: for each applied fault, when each independent observer saw each
//! phase, as offsets from the moment the fault was applied (DESIGN.md §5), the switch time,
//! the outage, and what happened to the tasks around it.

use serde::{Deserialize, Serialize};

use crate::fault::Role;
use crate::ledger::{Outcome, TaskRecord};
use crate::observe::{ClientEvent, ClientEventKind};

/// A fault as it was applied; defined with the fault vocabulary.
pub use crate::fault::AppliedFault;

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

/// One row of failover.csv.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverRow {
    /// Workload name.
    pub workload: String,
    /// The role named in the file.
    pub target: String,
    /// What it resolved to.
    pub resolved: String,
    /// kill, pause or stop.
    pub kind: String,
    /// Repetition number, from 0.
    pub repetition: u32,
    /// When the fault was applied, unix ms.
    pub fault_at_unix_ms: i64,
    /// First client error after the fault, ms.
    pub first_client_error_ms: Option<f64>,
    /// Sentinel `+sdown`, ms.
    pub sentinel_sdown_ms: Option<f64>,
    /// Sentinel `+odown`, ms.
    pub sentinel_odown_ms: Option<f64>,
    /// Sentinel `+switch-master`, ms.
    pub sentinel_switch_ms: Option<f64>,
    /// New queue leader, ms.
    pub queue_leader_ms: Option<f64>,
    /// HAProxy marked a server DOWN, ms.
    pub proxy_down_ms: Option<f64>,
    /// HAProxy marked a server UP (the new route), ms.
    pub proxy_up_ms: Option<f64>,
    /// A client reconnected, ms.
    pub client_reconnected_ms: Option<f64>,
    /// Target brought back (restart / SIGCONT), ms.
    pub restored_ms: Option<f64>,
    /// Stack fully healthy again, ms.
    pub healthy_ms: Option<f64>,
    /// Switch time: the earliest moment a task published at or after the fault (and
    /// before the next fault) was seen completed, − fault time, ms ([`switch_time_ms`]).
    /// Empty if none completed.
    pub switch_time_ms: Option<f64>,
    /// Longest gap between successful completions around the fault, ms.
    pub outage_ms: Option<f64>,
    /// Tasks in the fault's window never executed though accepted.
    pub lost: u64,
    /// Tasks in the window executed whose result is missing.
    pub result_lost: u64,
    /// Tasks in the window executed more than once.
    pub duplicated: u64,
    /// Tasks in the window never executed and never confirmed.
    pub unconfirmed: u64,
    /// Tasks in the window the producer published again.
    pub republished: u64,
    /// Tasks in the window that failed.
    pub failed: u64,
    /// Tasks in the window.
    pub tasks: u64,
    /// Why the fault was not applied, if it was not.
    pub not_applied: String,
    /// Time HAProxy had two or more Redis servers UP at once (two masters answering
    /// `role:master`), from the fault until the next fault or full health, ms. Empty if
    /// that never happened.
    #[serde(default)]
    pub two_masters_ms: Option<f64>,
    /// When HAProxy first had two Redis servers UP after the fault, ms.
    #[serde(default)]
    pub two_masters_from_ms: Option<f64>,
    /// Client errors after the fault that were `READONLY` answers (writes to a replica:
    /// a demoted master), counted per attempt.
    #[serde(default)]
    pub readonly_errors: u64,
    /// Tasks whose result store got at least one `READONLY` answer.
    #[serde(default)]
    pub readonly_tasks: u64,
    /// First to last `READONLY` error after the fault, ms (0 for a single one).
    #[serde(default)]
    pub readonly_for_ms: Option<f64>,
    /// Tasks in the window whose result hab saw (ok) but whose result key Redis no
    /// longer held at the end of the run: stored, then lost by the backend (results
    /// written to a stale master that was demoted and resynced). Empty when the keys
    /// could not be read at the end.
    #[serde(default)]
    pub result_vanished: Option<u64>,
    /// Client-side failover (topology `[clients]`) on the faulted part's path: the
    /// clients found the new route themselves, so there is no proxy switch phase
    /// (`proxy_up_ms` does not apply; `client_rediscovered_ms` takes its place).
    #[serde(default)]
    pub client_side: bool,
    /// Client-side failover: first time after the fault a client moved on to another
    /// broker node or was named a new Redis master by the Sentinels, ms. Empty when the
    /// path is proxied (not applicable) or it did not happen.
    #[serde(default)]
    pub client_rediscovered_ms: Option<f64>,
    /// Client errors after the fault that were `NOREPLICAS` answers (a master with
    /// `min-replicas-to-write` that lost its replicas refused the write), per attempt.
    #[serde(default)]
    pub noreplicas_errors: u64,
    /// Tasks whose result store got at least one `NOREPLICAS` answer.
    #[serde(default)]
    pub noreplicas_tasks: u64,
    /// Partition of a RabbitMQ node: when `pause_minority` paused it (it found itself in
    /// the minority and closed its listeners), ms, from its log. Empty when it did not.
    #[serde(default)]
    pub broker_paused_ms: Option<f64>,
    /// When the paused node opened its client listener again after the heal, ms, from
    /// its log.
    #[serde(default)]
    pub broker_resumed_ms: Option<f64>,
    /// Tasks in the window whose result was REVOKED (revoked, or expired before they ran).
    #[serde(default)]
    pub revoked: u64,
}

/// Whether a fault on `target` acts on the Redis side (data nodes or Sentinels).
fn redis_side(target: Role) -> bool {
    matches!(
        target,
        Role::BackendMaster | Role::BackendReplica | Role::BackendNode(_) | Role::Sentinel(_)
    )
}

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

/// How long before a fault its window starts: tasks already in flight then are counted.
pub const WINDOW_BEFORE_US: i64 = 1_000_000;
/// If the stack never became healthy again, the window ends this long after the fault.
pub const WINDOW_AFTER_DEFAULT_US: i64 = 30_000_000;

fn offset_ms(at: i64, fault_at: i64) -> f64 {
    (at - fault_at) as f64 / 1000.0
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

/// The last moment anything happened to a task: its result seen, else its last
/// execution's end (or start), else its confirmation or publish, else its intended start.
fn last_activity_us(t: &TaskRecord) -> i64 {
    t.result_seen_unix_us
        .or_else(|| {
            t.executions
                .iter()
                .map(|e| e.finished_unix_us.unwrap_or(e.started_unix_us))
                .max()
        })
        .or(t.confirmed_unix_us)
        .or(t.published_unix_us)
        .unwrap_or(t.intended_unix_us)
}

/// A task belongs to a fault's window when it was meant to start before the window ends
/// and had not completed before the window began: tasks arriving during the window and
/// tasks still in flight (queued, running) from before it, as after a burst. A task that
/// never completed (lost, result lost) belongs to the first fault after its last
/// activity: the window that ends after it and whose predecessor (ending at
/// `previous_end`) ended before it — never to every later fault as well.
fn in_window(t: &TaskRecord, w_start: i64, w_end: i64, previous_end: Option<i64>) -> bool {
    if t.intended_unix_us >= w_end {
        return false;
    }
    match t.result_seen_unix_us {
        Some(seen) => seen >= w_start,
        None => {
            let last = last_activity_us(t);
            last < w_end && previous_end.is_none_or(|p| last >= p)
        }
    }
}

/// When tasks flow again after a fault, unix µs: the earliest moment a task published at
/// or after `fault_at` (and before `next_fault_at`, when there is a next fault) was seen
/// completed ok (its result seen). The earliest *completion*, not the completion of the
/// earliest publish: a task published just after the fault onto the dead node and
/// redelivered late must not hide that newer work already flows. `None` when no such task
/// completed.
pub fn flow_again_unix_us(
    tasks: &[TaskRecord],
    fault_at: i64,
    next_fault_at: Option<i64>,
) -> Option<i64> {
    tasks
        .iter()
        .filter(|t| {
            t.published_unix_us
                .is_some_and(|p| p >= fault_at && next_fault_at.is_none_or(|n| p < n))
        })
        .filter(|t| t.classify().outcome == Outcome::Ok)
        .filter_map(|t| t.result_seen_unix_us)
        .min()
}

/// Switch time (DESIGN.md §5), ms: [`flow_again_unix_us`] − `fault_at`. The one definition
/// of "tasks flow again" behind failover.csv `switch_time_ms`, the report's switch column,
/// the anatomy chart's last phase and `hab merge`'s re-analysed rows.
pub fn switch_time_ms(
    tasks: &[TaskRecord],
    fault_at: i64,
    next_fault_at: Option<i64>,
) -> Option<f64> {
    flow_again_unix_us(tasks, fault_at, next_fault_at).map(|s| offset_ms(s, fault_at))
}

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
    let readonly: Vec<&ClientEvent> = client_events
        .iter()
        .filter(|e| {
            e.kind == ClientEventKind::Error && e.at_unix_us >= at && e.at_unix_us < horizon
        })
        .filter(|e| is_readonly(&e.detail))
        .collect();
    row.readonly_errors = readonly.len() as u64;
    row.readonly_tasks = readonly
        .iter()
        .filter_map(|e| error_task(&e.detail))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    if let (Some(a), Some(b)) = (readonly.first(), readonly.last()) {
        row.readonly_for_ms = Some((b.at_unix_us - a.at_unix_us) as f64 / 1000.0);
    }
    let refused: Vec<&ClientEvent> = client_events
        .iter()
        .filter(|e| {
            e.kind == ClientEventKind::Error && e.at_unix_us >= at && e.at_unix_us < horizon
        })
        .filter(|e| is_noreplicas(&e.detail))
        .collect();
    row.noreplicas_errors = refused.len() as u64;
    row.noreplicas_tasks = refused
        .iter()
        .filter_map(|e| error_task(&e.detail))
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
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
/// client-side failover columns ([`crate::metrics::client_side::apply`]). `names` are the
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
    clients: &crate::config::clients::ClientsConfig,
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
            crate::metrics::client_side::apply(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultKind;
    use crate::ledger::{ConfirmState, Execution, ResultStatus};
    use uuid::Uuid;

    const S: i64 = 1_000_000;
    const T0: i64 = 1_800_000_000 * S;

    fn task(intended: i64, seen: Option<i64>, executions: usize) -> TaskRecord {
        let mut t = TaskRecord::new(Uuid::new_v4(), 0, intended);
        t.published_unix_us = Some(intended + 10);
        t.confirm = ConfirmState::Acked;
        for k in 0..executions {
            t.executions.push(Execution {
                worker: "w1".into(),
                started_unix_us: intended + 100 + k as i64,
                finished_unix_us: Some(intended + 200 + k as i64),
                succeeded: Some(true),
            });
        }
        if let Some(s) = seen {
            t.result_seen_unix_us = Some(s);
            t.result_status = Some(ResultStatus::Success);
        }
        t
    }

    fn fault(at: i64) -> AppliedFault {
        AppliedFault {
            workload: 0,
            target: Role::BrokerPrimary,
            resolved: "broker.node[0]".into(),
            kind: FaultKind::Kill,
            repetition: 0,
            fault_at_unix_us: at,
            restored_at_unix_us: Some(at + 5 * S),
            ready_at_unix_us: None,
            healthy_at_unix_us: Some(at + 8 * S),
            not_applied: None,
        }
    }

    #[test]
    fn anatomy_switch_time_outage_and_losses() {
        let at = T0 + 10 * S;
        // One task every 100 ms; results take 2 ms, except during a 1.5 s outage after
        // the fault, when tasks wait and complete at at + 1.5 s.
        let mut tasks = Vec::new();
        for i in 0..200 {
            let intended = T0 + i * 100_000;
            let seen = if intended >= at && intended < at + 1_500_000 {
                at + 1_500_000 + (intended - at) / 100
            } else {
                intended + 2_000
            };
            tasks.push(task(intended, Some(seen), 1));
        }
        // One task lost right at the fault, one duplicated, one republished.
        tasks.push(task(at - 50_000, None, 0));
        tasks.push(task(at + 1, Some(at + 1_600_000), 2));
        tasks.last_mut().unwrap().republished = 1;

        let events = vec![
            ClientEvent {
                at_unix_us: at - S,
                source: "producer".into(),
                kind: ClientEventKind::Error,
                detail: "before the fault: ignored".into(),
            },
            ClientEvent {
                at_unix_us: at + 20_000,
                source: "producer".into(),
                kind: ClientEventKind::Error,
                detail: "connection reset".into(),
            },
            ClientEvent {
                at_unix_us: at + 900_000,
                source: "producer".into(),
                kind: ClientEventKind::Reconnected,
                detail: String::new(),
            },
        ];
        let server = vec![
            ServerEvent {
                at_unix_us: at + 250_000,
                kind: ServerEventKind::ProxyDown,
                detail: "broker_nodes/rabbit0".into(),
            },
            ServerEvent {
                at_unix_us: at + 300_000,
                kind: ServerEventKind::ProxyUp,
                detail: "broker_nodes/rabbit1".into(),
            },
        ];
        let row = analyse(
            &fault(at),
            "failover",
            None,
            None,
            &tasks,
            &events,
            &server,
            None,
        );
        assert_eq!(row.first_client_error_ms, Some(20.0));
        assert_eq!(row.proxy_down_ms, Some(250.0));
        assert_eq!(row.proxy_up_ms, Some(300.0));
        assert_eq!(row.client_reconnected_ms, Some(900.0));
        assert_eq!(row.sentinel_switch_ms, None);
        assert_eq!(row.restored_ms, Some(5000.0));
        // The first task published after the fault is the one intended at the fault
        // (published 10 µs later); it completed at at + 1.5 s.
        assert_eq!(row.switch_time_ms, Some(1500.0));
        // Last completion before the fault: intended at - 100 ms, seen at - 98 ms; the next
        // one at at + 1.5 s.
        assert_eq!(row.outage_ms, Some(1598.0));
        assert_eq!(row.lost, 1);
        assert_eq!(row.duplicated, 1);
        assert_eq!(row.republished, 1);
        // Window: at - 1 s .. at + 8 s (healthy): 90 regular tasks + 2 extra.
        assert_eq!(row.tasks, 92);
    }

    #[test]
    fn switch_time_is_the_earliest_completion_not_the_earliest_publish() {
        let at = T0 + 10 * S;
        // Published just after the fault onto the dead node, redelivered and completed at
        // +4 s; tasks published later completed from +1.2 s on: new work flowed at +1.2 s.
        let mut stuck = task(at, Some(at + 4 * S), 2);
        stuck.executions[0].finished_unix_us = None;
        let tasks = vec![
            task(at - S, Some(at - S + 2_000), 1),
            stuck,
            task(at + 500_000, Some(at + 1_300_000), 1),
            task(at + 600_000, Some(at + 1_200_000), 1),
            task(at + 700_000, Some(at + 1_250_000), 1),
        ];
        let row = analyse(&fault(at), "w", None, None, &tasks, &[], &[], None);
        assert_eq!(row.switch_time_ms, Some(1200.0));
        assert_eq!(
            switch_time_ms(&tasks, at, None),
            row.switch_time_ms,
            "the row's figure is the one definition's"
        );
    }

    #[test]
    fn a_task_published_after_the_next_fault_does_not_count_for_this_one() {
        let at = T0 + 10 * S;
        let next = at + 2 * S;
        // Nothing published in [fault, next fault) completed; a task published after the
        // next fault did, soon after it.
        let tasks = vec![
            task(at - S, Some(at - S + 2_000), 1),
            task(at + 100_000, None, 0),
            task(next + 500_000, Some(next + 600_000), 1),
        ];
        let row = analyse(&fault(at), "w", Some(next), None, &tasks, &[], &[], None);
        assert_eq!(row.switch_time_ms, None, "{row:?}");
        // One published before the next fault completing later than the one published
        // after it: the earlier fault's switch time is the former.
        let mut more = tasks.clone();
        more.push(task(at + 1_900_000, Some(next + 900_000), 1));
        let row = analyse(&fault(at), "w", Some(next), None, &more, &[], &[], None);
        assert_eq!(row.switch_time_ms, Some(2900.0));
    }

    #[test]
    fn a_fault_that_did_not_take_effect_has_no_switch_time() {
        let at = T0 + 5 * S;
        let tasks = vec![
            task(at - S, Some(at - S + 1000), 1),
            task(at + 10, Some(at + 2_000), 1),
        ];
        let mut f = fault(at);
        assert_eq!(
            analyse(&f, "w", None, None, &tasks, &[], &[], None).switch_time_ms,
            Some(2.0)
        );
        f.kind = FaultKind::Failover;
        f.not_applied = Some("SENTINEL FAILOVER was accepted but no replica was promoted".into());
        let row = analyse(&f, "w", None, None, &tasks, &[], &[], None);
        assert_eq!((row.switch_time_ms, row.outage_ms), (None, None));
        assert!(row.not_applied.contains("no replica was promoted"));
    }

    #[test]
    fn nothing_completed_after_the_fault_means_no_switch_time() {
        let at = T0 + 5 * S;
        let tasks = vec![task(T0, Some(T0 + 1000), 1), task(at + 10, None, 0)];
        let row = analyse(&fault(at), "w", None, None, &tasks, &[], &[], None);
        assert_eq!(row.switch_time_ms, None);
        assert_eq!(row.outage_ms, None);
        assert_eq!(row.lost, 1);
    }

    #[test]
    fn windows_stop_before_the_next_fault() {
        let f = fault(T0);
        assert_eq!(window(&f, None), (T0 - S, T0 + 8 * S));
        assert_eq!(window(&f, Some(T0 + 5 * S)), (T0 - S, T0 + 4 * S));
        let mut never = fault(T0);
        never.healthy_at_unix_us = None;
        assert_eq!(window(&never, None).1, T0 + 30 * S);
    }

    #[test]
    fn events_of_the_next_fault_are_not_attributed_to_this_one() {
        let at = T0;
        let events = vec![ClientEvent {
            at_unix_us: at + 20 * S,
            source: "producer".into(),
            kind: ClientEventKind::Error,
            detail: String::new(),
        }];
        let row = analyse(
            &fault(at),
            "w",
            Some(at + 10 * S),
            None,
            &[],
            &events,
            &[],
            None,
        );
        assert_eq!(row.first_client_error_ms, None);
    }

    #[test]
    fn tasks_still_queued_from_a_burst_belong_to_the_window() {
        let at = T0 + 10 * S;
        // A burst at T0: one finished long before the fault, one still queued and lost.
        let done = task(T0, Some(T0 + 1000), 1);
        let queued = task(T0, None, 0);
        let row = analyse(&fault(at), "w", None, None, &[done, queued], &[], &[], None);
        assert_eq!(row.tasks, 1);
        assert_eq!(row.lost, 1);
    }

    #[test]
    fn outage_reaches_back_to_the_last_completion_before_the_fault() {
        let at = T0 + 10 * S;
        // Nothing completed in the second before the fault: the gap starts earlier.
        let tasks = vec![
            task(T0, Some(at - 3 * S), 1),
            task(at + 10, Some(at + S / 2), 1),
        ];
        let row = analyse(&fault(at), "w", None, None, &tasks, &[], &[], None);
        assert_eq!(row.outage_ms, Some(3500.0));
    }

    #[test]
    fn a_task_that_never_completed_counts_for_one_fault_only() {
        // Three faults 12 s apart; a task executed just after the first whose result
        // was lost, and a task queued before the first and never executed.
        let faults: Vec<AppliedFault> = (0..3).map(|k| fault(T0 + k * 12 * S)).collect();
        let mut result_lost = task(T0 - 500_000, None, 1);
        result_lost.executions[0].finished_unix_us = Some(T0 + 5_000);
        let queued = task(T0 - 3 * S, None, 0);
        let tasks = [result_lost, queued];
        let mut previous_end = None;
        let mut rows = Vec::new();
        for (k, f) in faults.iter().enumerate() {
            let next = faults.get(k + 1).map(|g| g.fault_at_unix_us);
            rows.push(analyse(f, "w", next, previous_end, &tasks, &[], &[], None));
            previous_end = Some(window(f, next).1);
        }
        let per_fault: Vec<(u64, u64)> = rows.iter().map(|r| (r.lost, r.result_lost)).collect();
        assert_eq!(per_fault, [(1, 1), (0, 0), (0, 0)]);
    }

    fn observed(
        detect: Option<f64>,
        promote: Option<f64>,
        proxy_up: Option<f64>,
        reconnect: Option<f64>,
        switch: Option<f64>,
    ) -> FailoverRow {
        let mut row = analyse(&fault(T0), "w", None, None, &[], &[], &[], None);
        row.first_client_error_ms = detect;
        row.sentinel_switch_ms = promote;
        row.proxy_up_ms = proxy_up;
        row.client_reconnected_ms = reconnect;
        row.switch_time_ms = switch;
        row
    }

    #[test]
    fn phases_in_order_are_ordered_and_missing_ones_do_not_matter() {
        let row = observed(Some(10.0), Some(900.0), Some(1200.0), None, Some(1500.0));
        assert_eq!(
            phase_offsets(&row),
            [Some(10.0), Some(900.0), Some(1200.0), None, Some(1500.0)]
        );
        let o = phase_order(&row);
        assert!(o.ordered, "{o:?}");
        assert!(o.out_of_order.is_empty() && o.detail.is_empty(), "{o:?}");
        assert!(phase_order(&observed(None, None, None, None, None)).ordered);
    }

    #[test]
    fn a_phase_seen_after_the_switch_time_is_out_of_order() {
        // Sentinel's +switch-master arrived after the first task had completed.
        let row = observed(Some(300.0), Some(3000.0), None, None, Some(2500.0));
        let o = phase_order(&row);
        assert!(!o.ordered);
        assert_eq!(o.out_of_order, ["promote"]);
        assert!(o.detail.contains("promote at 3000 ms"), "{}", o.detail);
        assert!(
            o.detail.contains("after the switch (2500 ms)"),
            "{}",
            o.detail
        );
    }

    #[test]
    fn a_phase_seen_before_an_earlier_one_is_out_of_order() {
        // The client reconnected (1,100 ms) before HAProxy's new route (1,200 ms), and the
        // promotion (900 ms) came before the detection (950 ms).
        let row = observed(
            Some(950.0),
            Some(900.0),
            Some(1200.0),
            Some(1100.0),
            Some(1500.0),
        );
        let o = phase_order(&row);
        assert!(!o.ordered);
        assert_eq!(o.out_of_order, ["promote", "reconnect"]);
        assert!(
            o.detail
                .contains("reconnect at 1100 ms, before proxy up (1200 ms)"),
            "{}",
            o.detail
        );
        // Under client-side failover the third phase is the clients' rediscovery.
        let mut cs = observed(Some(10.0), None, None, None, Some(500.0));
        cs.client_side = true;
        cs.proxy_up_ms = Some(100.0); // not on the clients' path: not a phase
        cs.client_rediscovered_ms = Some(800.0);
        assert_eq!(phase_order(&cs).out_of_order, ["rediscover"]);
    }

    #[test]
    fn the_faulted_node_coming_back_up_is_not_the_proxy_switch() {
        assert_eq!(
            proxy_server_of("broker.node[0]").as_deref(),
            Some("broker_nodes/rabbit0")
        );
        assert_eq!(
            proxy_server_of("backend.node[12]").as_deref(),
            Some("backend_nodes/redis12")
        );
        assert_eq!(proxy_server_of("sentinel[0]"), None);
        let at = T0;
        let ev = |ms: i64, kind, detail: &str| ServerEvent {
            at_unix_us: at + ms * 1000,
            kind,
            detail: detail.into(),
        };
        let server = [
            ev(300, ServerEventKind::ProxyDown, "broker_nodes/rabbit0"),
            ev(10_300, ServerEventKind::ProxyUp, "broker_nodes/rabbit0"),
        ];
        let row = analyse(&fault(at), "w", None, None, &[], &[], &server, None);
        assert_eq!(row.proxy_down_ms, Some(300.0));
        assert_eq!(
            row.proxy_up_ms, None,
            "the restarted node is not a new route"
        );
        let mut redis = fault(at);
        redis.resolved = "backend.node[0]".into();
        let server = [
            ev(400, ServerEventKind::ProxyDown, "backend_nodes/redis0"),
            ev(1_900, ServerEventKind::ProxyUp, "backend_nodes/redis1"),
        ];
        let row = analyse(&redis, "w", None, None, &[], &[], &server, None);
        assert_eq!(
            (row.proxy_down_ms, row.proxy_up_ms),
            (Some(400.0), Some(1900.0))
        );
    }

    fn redis_up(at: i64, n: usize) -> ServerEvent {
        ServerEvent {
            at_unix_us: at,
            kind: ServerEventKind::ProxyRedisUp,
            detail: n.to_string(),
        }
    }

    #[test]
    fn two_masters_is_the_time_with_two_redis_servers_up_inside_the_window() {
        let ev = vec![
            redis_up(T0, 1),
            redis_up(T0 + 3 * S, 2),
            redis_up(T0 + 4 * S, 1),
            redis_up(T0 + 6 * S, 2),
            redis_up(T0 + 6 * S + 500_000, 1),
            ServerEvent {
                at_unix_us: T0 + 5 * S,
                kind: ServerEventKind::ProxyUp,
                detail: "backend_nodes/redis1".into(),
            },
        ];
        assert_eq!(two_masters(&ev, T0, T0 + 20 * S), Some((1500.0, 3000.0)));
        // Cut by the window: half of the first interval, none of the second.
        assert_eq!(
            two_masters(&ev, T0 + 3 * S + 500_000, T0 + 6 * S),
            Some((500.0, 0.0))
        );
        assert_eq!(two_masters(&ev, T0 + 7 * S, T0 + 20 * S), None);
        // Still two at the end: counted to the window's end, or to the observer's stop.
        let mut open = vec![redis_up(T0, 1), redis_up(T0 + S, 2)];
        assert_eq!(two_masters(&open, T0, T0 + 3 * S), Some((2000.0, 1000.0)));
        open.push(ServerEvent {
            at_unix_us: T0 + 2 * S,
            kind: ServerEventKind::ProxyRedisUp,
            detail: crate::observe::server::OBSERVER_STOPPED.into(),
        });
        assert_eq!(two_masters(&open, T0, T0 + 3 * S), Some((1000.0, 1000.0)));
        assert_eq!(two_masters(&[], T0, T0 + S), None);
    }

    #[test]
    fn noreplicas_errors_are_counted_per_attempt_and_per_task_after_the_fault() {
        let at = T0 + 10 * S;
        let mut f = fault(at);
        f.target = Role::BackendMaster;
        f.resolved = "backend.node[0]".into();
        f.kind = FaultKind::Partition;
        let err = |t: i64, detail: &str| ClientEvent {
            at_unix_us: t,
            source: "worker w1".into(),
            kind: ClientEventKind::Error,
            detail: detail.into(),
        };
        // As redis-rs words a refused MULTI/EXEC (captured from a partition run).
        let nr = r#"Transaction aborted: [(Index 0  error: "NOREPLICAS": Not enough good replicas to write.)]"#;
        assert!(is_noreplicas(nr) && !is_readonly(nr));
        let events = vec![
            err(
                at - S,
                &format!("task a: attempt 1: writing the results: {nr}"),
            ),
            err(
                at + S,
                &format!("task b: attempt 1: writing the results: {nr}"),
            ),
            err(
                at + 2 * S,
                &format!("task b: attempt 2: writing the results: {nr}"),
            ),
            err(
                at + 2 * S,
                &format!("task c: attempt 1: writing the results: {nr}"),
            ),
            err(at + 3 * S, "task d: attempt 1: connection refused"),
        ];
        let row = analyse(&f, "w", None, None, &[], &events, &[], None);
        assert_eq!((row.noreplicas_errors, row.noreplicas_tasks), (3, 2));
        assert_eq!(row.readonly_errors, 0);
        assert_eq!(row.kind, "partition");
    }

    #[test]
    fn readonly_errors_are_counted_per_attempt_and_per_task_after_the_fault() {
        let at = T0 + 10 * S;
        let mut f = fault(at);
        f.target = Role::BackendMaster;
        f.resolved = "backend.node[0]".into();
        f.kind = FaultKind::Failover;
        f.restored_at_unix_us = None;
        let err = |t: i64, detail: &str| ClientEvent {
            at_unix_us: t,
            source: "worker w1".into(),
            kind: ClientEventKind::Error,
            detail: detail.into(),
        };
        let ro = "Transaction aborted: [(Index 0  error: ReadOnly: You can't write against a read only replica.";
        let events = vec![
            err(
                at - S,
                &format!("task a: attempt 1: writing the result: {ro}"),
            ),
            err(
                at + S,
                &format!("task b: attempt 1: writing the result: {ro}"),
            ),
            err(
                at + S + 50_000,
                &format!("task b: attempt 2: writing the result: {ro}"),
            ),
            err(at + 2 * S, "task c: attempt 1: connection reset"),
            err(
                at + 3 * S,
                &format!("task c: attempt 2: writing the result: {ro}"),
            ),
        ];
        let ev = vec![
            redis_up(at - 5 * S, 1),
            redis_up(at + 2 * S, 2),
            redis_up(at + 12 * S, 1),
        ];
        let row = analyse(&f, "w", None, None, &[], &events, &ev, None);
        assert_eq!((row.readonly_errors, row.readonly_tasks), (3, 2));
        assert_eq!(row.readonly_for_ms, Some(2000.0));
        // Full health (+8 s here) does not end it: only HAProxy's own count does.
        assert_eq!(
            (row.two_masters_ms, row.two_masters_from_ms),
            (Some(10000.0), Some(2000.0))
        );
        assert_eq!(row.result_vanished, None);
        assert_eq!(error_task("task b: attempt 1: x"), Some("b"));
        assert_eq!(error_task("connection reset"), None);
        assert!(is_readonly(
            "READONLY You can't write against a read only replica."
        ));
        assert!(!is_readonly("EXECABORT") && !is_readonly("broken pipe"));
    }

    #[test]
    fn results_seen_but_gone_at_the_end_have_vanished() {
        let at = T0 + 10 * S;
        let tasks: Vec<TaskRecord> = (0..10)
            .map(|i| task(at + i * 100_000, Some(at + i * 100_000 + 2_000), 1))
            .collect();
        let present: std::collections::HashSet<Uuid> = tasks[..7].iter().map(|t| t.id).collect();
        // A broker fault did not make them vanish (a later Redis fault did): not counted.
        let broker = analyse(
            &fault(at),
            "w",
            None,
            None,
            &tasks,
            &[],
            &[],
            Some(&present),
        );
        assert_eq!(broker.result_vanished, None);
        let redis = AppliedFault {
            target: Role::BackendMaster,
            ..fault(at)
        };
        let row = analyse(&redis, "w", None, None, &tasks, &[], &[], Some(&present));
        assert_eq!(row.result_vanished, Some(3));
        // Also after full health (+8 s), until the next fault's window.
        let mut later = tasks.clone();
        later.push(task(at + 9 * S, Some(at + 9 * S + 2_000), 1));
        later.push(task(at + 20 * S, Some(at + 20 * S + 2_000), 1));
        let row2 = analyse(
            &redis,
            "w",
            Some(at + 15 * S),
            None,
            &later,
            &[],
            &[],
            Some(&present),
        );
        assert_eq!(row2.result_vanished, Some(4));
        // Not counted as lost by the ledger: hab did see them.
        assert_eq!((row.lost, row.result_lost), (0, 0));
    }
}
