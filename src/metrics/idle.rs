//! Idle timeouts through HAProxy: which connections HAProxy cut because they sat idle
//! longer than its `timeout client` / `timeout server`, what the clients saw, and which
//! tasks were affected. One [`IdleReport`] per run through HAProxy (run.json `idle`); a
//! comparison lays them out as a matrix (heartbeat × timeout → cuts, errors, tasks).
//!
//! Definitions (also in docs/scenarios/idle-timeouts.md):
//! - A **cut** is a session HAProxy's own log ended with a termination state starting with
//!   `c` (client-side timeout) or `s` (server-side timeout), e.g. `cD`/`sD`; its time is
//!   the log line's (the session's end). Counted per frontend: `broker` (AMQP) and
//!   `backend` (Redis).
//! - **Client errors** and **reconnections** are the client events of the run (producer,
//!   result watcher, workers through the side channel), by client.
//! - A task **overlaps** a cut when the cut falls inside its lifetime: from its intended
//!   start to the moment its result was seen (to the end of the run if never seen).
//! - An overlapping task is **affected** when it was **delayed** (ok, executed once,
//!   latency above [`DELAY_FACTOR`] × a reference p50: in run.json its own workload's p50
//!   in this run, in a comparison the baseline topology's p50 of the same workload),
//!   **failed** (FAILURE result), **lost** (never executed, result lost or never
//!   confirmed) or **duplicated** (executed more than once). Delayed and lost exclude each
//!   other and every other kind; `affected` counts a failed and duplicated task once.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{ClientEvent, ClientEventKind, ProxySession};
use crate::ledger::{Outcome, TaskRecord};
use crate::metrics::LatencyHistogram;

/// An ok task is *delayed* when its latency exceeds this many times its workload's p50.
pub const DELAY_FACTOR: f64 = 2.0;

/// What the topology set that decides whether idle connections are cut.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleSettings {
    /// AMQP heartbeat of producer and workers, seconds (0 = off).
    pub heartbeat_s: u64,
    /// Redis keepalive of hab's clients, ms (0 = off).
    pub keepalive_ms: u64,
    /// HAProxy `timeout client`, ms.
    pub timeout_client_ms: u64,
    /// HAProxy `timeout server`, ms.
    pub timeout_server_ms: u64,
}

/// Task counts for idle-timeout effects (see the module docs for each definition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedTasks {
    /// Tasks whose lifetime contains at least one cut.
    pub overlapping: u64,
    /// Overlapping tasks that were delayed, failed, lost or duplicated (each once).
    pub affected: u64,
    /// Overlapping ok tasks executed once with latency above [`DELAY_FACTOR`] × the
    /// reference p50.
    pub delayed: u64,
    /// Overlapping tasks with a FAILURE result.
    pub failed: u64,
    /// Overlapping tasks never executed, whose result is missing, or never confirmed.
    pub lost: u64,
    /// Overlapping tasks executed more than once.
    pub duplicated: u64,
}

impl AffectedTasks {
    /// Adds another count (repetitions, workloads).
    pub fn add(&mut self, o: &AffectedTasks) {
        self.overlapping += o.overlapping;
        self.affected += o.affected;
        self.delayed += o.delayed;
        self.failed += o.failed;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
    }
}

/// One session HAProxy cut on an idle timeout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleCut {
    /// When HAProxy cut it, unix µs.
    pub at_unix_us: i64,
    /// `broker` or `backend`.
    pub frontend: String,
    /// The server behind, e.g. `rabbit0`.
    pub server: String,
    /// The client's address (which client it was is not HAProxy's to know).
    pub client: String,
    /// How long the session had lasted, ms.
    pub duration_ms: u64,
    /// HAProxy's termination state, e.g. `cD`.
    pub termination: String,
}

/// Idle-timeout effects in one workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadAffected {
    /// Workload name.
    pub workload: String,
    /// Its p50 latency over ok tasks, µs (the reference for "delayed" in this run).
    pub p50_us: u64,
    /// Its tasks.
    pub tasks: AffectedTasks,
    /// Latencies of its overlapping ok tasks executed once (the candidates for
    /// "delayed"), HdrHistogram V2 base64, so a comparison can count them against the
    /// baseline's p50. Empty when there are none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub at_cut_ok_once_latency: String,
}

impl WorkloadAffected {
    /// How many of the overlapping ok tasks executed once took longer than
    /// [`DELAY_FACTOR`] × `p50_us`: "delayed" against another reference (the baseline's).
    pub fn delayed_against(&self, p50_us: u64) -> u64 {
        if self.at_cut_ok_once_latency.is_empty() {
            return 0;
        }
        let Ok(h) = LatencyHistogram::from_base64(&self.at_cut_ok_once_latency) else {
            return 0;
        };
        let limit = (DELAY_FACTOR * p50_us as f64) as u64;
        h.inner()
            .iter_recorded()
            .filter(|v| v.value_iterated_to() > limit)
            .map(|v| v.count_at_value())
            .sum()
    }
}

/// run.json `idle`: what HAProxy's idle timeouts did in one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleReport {
    /// The settings of the run.
    pub settings: IdleSettings,
    /// Sessions HAProxy logged (every ended connection, cut or not).
    pub sessions: u64,
    /// Cuts per frontend (`broker`, `backend`); both keys always present.
    pub cuts: BTreeMap<String, u64>,
    /// Every cut, in time order.
    pub cut_sessions: Vec<IdleCut>,
    /// Client errors by client (`producer`, `results`, `workers`).
    pub client_errors: BTreeMap<String, u64>,
    /// Client reconnections by client.
    pub client_reconnections: BTreeMap<String, u64>,
    /// Tasks, over every workload.
    pub tasks: AffectedTasks,
    /// Per workload, in plan order.
    pub workloads: Vec<WorkloadAffected>,
}

impl IdleReport {
    /// Cuts over both frontends.
    pub fn total_cuts(&self) -> u64 {
        self.cuts.values().sum()
    }

    /// Client errors over every client.
    pub fn total_client_errors(&self) -> u64 {
        self.client_errors.values().sum()
    }
}

/// The client a client event belongs to, as the matrix groups them: `producer`,
/// `results`, `workers` (every worker process).
pub fn client_group(source: &str) -> String {
    if source.starts_with("worker") {
        "workers".to_string()
    } else {
        source.to_string()
    }
}

fn p50(tasks: &[TaskRecord]) -> Option<i64> {
    let mut l: Vec<i64> = tasks
        .iter()
        .filter(|t| t.classify().outcome == Outcome::Ok)
        .filter_map(|t| t.latency_us())
        .collect();
    if l.is_empty() {
        return None;
    }
    l.sort_unstable();
    Some(l[(l.len() - 1) / 2])
}

/// Counts the tasks of one workload against the cut times (sorted); also returns the
/// workload's p50 (µs) and the latencies of its overlapping ok tasks executed once.
pub fn affected_tasks(
    tasks: &[TaskRecord],
    cuts_unix_us: &[i64],
) -> (AffectedTasks, u64, LatencyHistogram) {
    let median = p50(tasks);
    let mut a = AffectedTasks::default();
    let mut once = LatencyHistogram::new();
    for t in tasks {
        let end = t.result_seen_unix_us.unwrap_or(i64::MAX);
        let first = cuts_unix_us.partition_point(|&c| c < t.intended_unix_us);
        if first >= cuts_unix_us.len() || cuts_unix_us[first] > end {
            continue;
        }
        a.overlapping += 1;
        let c = t.classify();
        let ok_once = c.outcome == Outcome::Ok && !c.duplicated;
        if ok_once && let Some(l) = t.latency_us() {
            once.record(l);
        }
        let delayed = ok_once
            && median.is_some_and(|m| {
                t.latency_us()
                    .is_some_and(|l| l as f64 > DELAY_FACTOR * m as f64)
            });
        let failed = c.outcome == Outcome::Failed;
        let lost = matches!(
            c.outcome,
            Outcome::Lost | Outcome::ResultLost | Outcome::Unconfirmed
        );
        a.delayed += u64::from(delayed);
        a.failed += u64::from(failed);
        a.lost += u64::from(lost);
        a.duplicated += u64::from(c.duplicated);
        a.affected += u64::from(delayed || failed || lost || c.duplicated);
    }
    (a, median.unwrap_or(0).max(0) as u64, once)
}

/// The idle report of a run: `sessions` from HAProxy's log, `events` every client event,
/// `workloads` each workload's name and tasks (side channel merged), in plan order.
pub fn analyse(
    settings: IdleSettings,
    sessions: &[ProxySession],
    events: &[ClientEvent],
    workloads: &[(&str, &[TaskRecord])],
) -> IdleReport {
    let mut cuts: BTreeMap<String, u64> = ["broker", "backend"]
        .iter()
        .map(|f| (f.to_string(), 0))
        .collect();
    let mut cut_sessions: Vec<IdleCut> = sessions
        .iter()
        .filter(|s| s.cut_by_timeout().is_some())
        .map(|s| IdleCut {
            at_unix_us: s.end_unix_us,
            frontend: s.frontend.clone(),
            server: s.server.clone(),
            client: s.client.clone(),
            duration_ms: s.duration_ms,
            termination: s.termination.clone(),
        })
        .collect();
    cut_sessions.sort_by_key(|c| c.at_unix_us);
    for c in &cut_sessions {
        *cuts.entry(c.frontend.clone()).or_insert(0) += 1;
    }
    let mut client_errors = BTreeMap::new();
    let mut client_reconnections = BTreeMap::new();
    for e in events {
        let map = match e.kind {
            ClientEventKind::Error => &mut client_errors,
            ClientEventKind::Reconnected => &mut client_reconnections,
            _ => continue,
        };
        *map.entry(client_group(&e.source)).or_insert(0u64) += 1;
    }
    let times: Vec<i64> = cut_sessions.iter().map(|c| c.at_unix_us).collect();
    let mut total = AffectedTasks::default();
    let per: Vec<WorkloadAffected> = workloads
        .iter()
        .map(|(name, tasks)| {
            let (tasks, p50_us, once) = affected_tasks(tasks, &times);
            total.add(&tasks);
            WorkloadAffected {
                workload: name.to_string(),
                p50_us,
                tasks,
                at_cut_ok_once_latency: if once.is_empty() {
                    String::new()
                } else {
                    once.to_base64()
                },
            }
        })
        .collect();
    IdleReport {
        settings,
        sessions: sessions.len() as u64,
        cuts,
        cut_sessions,
        client_errors,
        client_reconnections,
        tasks: total,
        workloads: per,
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::ledger::{ConfirmState, Execution};
    use crate::protocol::result::ResultStatus;

    const S: i64 = 1_000_000;

    fn task(intended_s: i64, latency_s: Option<i64>, executions: usize) -> TaskRecord {
        let mut t = TaskRecord::new(Uuid::new_v4(), 0, intended_s * S);
        t.confirm = ConfirmState::Acked;
        if let Some(l) = latency_s {
            t.result_seen_unix_us = Some((intended_s + l) * S);
            t.result_status = Some(ResultStatus::Success);
        }
        for k in 0..executions {
            t.executions.push(Execution {
                worker: "w1".into(),
                started_unix_us: intended_s * S + k as i64,
                finished_unix_us: None,
                succeeded: None,
            });
        }
        t
    }

    #[test]
    fn tasks_overlapping_a_cut_are_classified_by_what_happened_to_them() {
        let tasks = vec![
            task(0, Some(3), 1),  // before the cut, ends at 3 s: not overlapping
            task(4, Some(3), 1),  // overlaps the cut at 5 s, normal latency: not affected
            task(4, Some(10), 2), // overlaps, late (10 > 2 × 3) but duplicated: duplicated
            task(4, Some(9), 1),  // overlaps, late and run once: delayed
            task(4, None, 0),     // overlaps, never executed: lost
            task(6, Some(3), 1),  // after the cut: not overlapping
        ];
        let (a, p50_us, once) = affected_tasks(&tasks, &[5 * S]);
        assert_eq!(p50_us, 3 * S as u64);
        assert_eq!(
            a,
            AffectedTasks {
                overlapping: 4,
                affected: 3,
                delayed: 1,
                failed: 0,
                lost: 1,
                duplicated: 1,
            }
        );
        // The ok tasks run once at the cut (3 s and 9 s), against another reference p50.
        assert_eq!(once.len(), 2);
        let w = WorkloadAffected {
            at_cut_ok_once_latency: once.to_base64(),
            ..WorkloadAffected::default()
        };
        assert_eq!(w.delayed_against(3 * S as u64), 1);
        assert_eq!(w.delayed_against(S as u64), 2);
        assert_eq!(w.delayed_against(10 * S as u64), 0);
        assert_eq!(WorkloadAffected::default().delayed_against(1), 0);
        // No cut, nothing overlaps; a cut exactly at the result counts.
        assert_eq!(affected_tasks(&tasks, &[]).0, AffectedTasks::default());
        assert_eq!(affected_tasks(&tasks, &[3 * S]).0.overlapping, 1);
    }

    /// One session as HAProxy's log gives it (`observe::haproxy_log` parses the lines).
    fn session(
        end_unix_us: i64,
        frontend: &str,
        server: &str,
        duration_ms: u64,
        termination: &str,
    ) -> ProxySession {
        ProxySession {
            end_unix_us,
            client: "127.0.0.1:59734".into(),
            frontend: frontend.into(),
            backend: format!("{frontend}_nodes"),
            server: server.into(),
            duration_ms,
            bytes_to_client: 33,
            termination: termination.into(),
        }
    }

    #[test]
    fn cuts_come_from_the_proxy_log_and_errors_from_client_events() {
        // The sessions of `observe::haproxy_log`'s captured log: a Redis subscriber cut
        // by `timeout client`, one kept busy, an AMQP connection cut, one the server closed.
        let sessions = [
            session(1_796_312_812_611_212, "backend", "redis0", 1508, "cD"),
            session(1_796_312_821_695_989, "backend", "redis0", 4488, "--"),
            session(1_796_313_367_371_475, "broker", "rabbit0", 5145, "cD"),
            session(1_796_313_533_046_523, "broker", "rabbit0", 31943, "SD"),
        ];
        let ev = |source: &str, kind| ClientEvent {
            at_unix_us: 0,
            source: source.into(),
            kind,
            detail: String::new(),
        };
        let events = [
            ev("producer", ClientEventKind::Reconnected),
            ev("results", ClientEventKind::Error),
            ev("worker w1", ClientEventKind::Error),
            ev("worker w1r1", ClientEventKind::Error),
            ev("producer", ClientEventKind::Republish),
        ];
        let r = analyse(IdleSettings::default(), &sessions, &events, &[]);
        assert_eq!(r.sessions, 4);
        assert_eq!(
            r.cuts,
            BTreeMap::from([("backend".to_string(), 1), ("broker".to_string(), 1)])
        );
        assert_eq!(r.total_cuts(), 2);
        assert_eq!(r.cut_sessions[0].termination, "cD");
        assert_eq!(r.cut_sessions[0].duration_ms, 1508);
        assert_eq!(
            r.client_errors,
            BTreeMap::from([("results".to_string(), 1), ("workers".to_string(), 2)])
        );
        assert_eq!(r.total_client_errors(), 3);
        assert_eq!(
            r.client_reconnections,
            BTreeMap::from([("producer".to_string(), 1)])
        );
    }
}
