//! The producer-policy matrix of a comparison (issue 6 item 2): one row per topology and
//! broker-fault workload — the producer's policy → how soon it failed fast, the tasks it
//! refused, gave up, delayed, lost or ran twice, and how soon it resumed once the broker
//! was back (see [`crate::metrics::outage`] for each definition). Counts are summed over
//! the repetitions, times are medians. Shared by the terminal summary, the report and
//! summary.json.

use serde::{Deserialize, Serialize};

use super::matrix::Matrix;
use crate::metrics::outage::OutageRow;
use crate::metrics::stats::{fmt_ms_cell, median};
use crate::record::RunSet;

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRow {
    /// Topology name.
    pub topology: String,
    /// `block`, `retry` or `breaker`.
    pub policy: String,
    /// The workload with the broker fault.
    pub workload: String,
    /// `kill broker.primary`.
    pub fault: String,
    /// Faults summed (runs × repetitions).
    pub faults: usize,
    /// Median of fault → first task refused or given up, ms (`None`: never failed).
    pub fail_fast_ms: Option<f64>,
    /// Median of fault → breaker open, ms.
    pub breaker_open_ms: Option<f64>,
    /// Median of fault → broker back and answering, ms.
    pub restored_ms: Option<f64>,
    /// Median of broker back → first publish confirmed, ms.
    pub resume_publish_ms: Option<f64>,
    /// Median of broker back → first task completed end to end, ms.
    pub resume_complete_ms: Option<f64>,
    /// Tasks in the fault windows.
    pub tasks: u64,
    /// Refused by the open breaker.
    pub refused: u64,
    /// Given up after the policy's attempts.
    pub gave_up: u64,
    /// Completed, later than 1 s after their intended start.
    pub delayed: u64,
    /// Accepted by the broker, never executed (in runs written before hab counted them
    /// apart: all three kinds).
    pub lost: u64,
    /// Executed, result never seen; `None` when a run written before hab counted it
    /// apart contributed.
    #[serde(default)]
    pub result_lost: Option<u64>,
    /// Never executed, publish never confirmed; `None` as for `result_lost`.
    #[serde(default)]
    pub unconfirmed: Option<u64>,
    /// Run more than once.
    pub duplicated: u64,
}

fn median_of(rows: &[&OutageRow], f: impl Fn(&OutageRow) -> Option<f64>) -> Option<f64> {
    median(rows.iter().filter_map(|r| f(r)))
}

/// The matrix rows: topologies in the comparison's order, then workloads in the order
/// their faults fired. Topologies whose runs have no `producer` report have no row.
pub fn policy_rows(set: &RunSet) -> Vec<PolicyRow> {
    let mut out = Vec::new();
    for t in &set.topologies {
        let outages: Vec<&OutageRow> = t
            .runs
            .iter()
            .filter_map(|r| r.report.producer.as_ref())
            .flat_map(|p| &p.outages)
            .collect();
        let mut keys: Vec<(&str, String)> = Vec::new();
        for o in &outages {
            let key = (o.workload.as_str(), format!("{} {}", o.kind, o.target));
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for (workload, fault) in keys {
            let rows: Vec<&OutageRow> = outages
                .iter()
                .copied()
                .filter(|o| o.workload == workload && format!("{} {}", o.kind, o.target) == fault)
                .collect();
            let sum = |f: fn(&OutageRow) -> u64| rows.iter().map(|r| f(r)).sum::<u64>();
            let sum_apart =
                |f: fn(&OutageRow) -> Option<u64>| rows.iter().map(|r| f(r)).sum::<Option<u64>>();
            out.push(PolicyRow {
                topology: t.name.clone(),
                policy: rows[0].policy.clone(),
                workload: workload.to_string(),
                fault,
                faults: rows.len(),
                fail_fast_ms: median_of(&rows, OutageRow::first_failure_ms),
                breaker_open_ms: median_of(&rows, |r| r.breaker_open_ms),
                restored_ms: median_of(&rows, |r| r.ready_ms.or(r.restored_ms)),
                resume_publish_ms: median_of(&rows, |r| r.resume_publish_ms),
                resume_complete_ms: median_of(&rows, |r| r.resume_complete_ms),
                tasks: sum(|r| r.tasks),
                refused: sum(|r| r.refused),
                gave_up: sum(|r| r.gave_up),
                delayed: sum(|r| r.delayed),
                lost: sum(|r| r.lost),
                result_lost: sum_apart(|r| r.result_lost),
                unconfirmed: sum_apart(|r| r.unconfirmed),
                duplicated: sum(|r| r.duplicated),
            });
        }
    }
    out
}

fn fmt_count(v: Option<u64>) -> String {
    v.map_or_else(|| "–".into(), |v| v.to_string())
}

/// What the columns mean, in one paragraph (terminal and report).
pub const LEGEND: &str = "fail fast = fault → first task refused (breaker open) or given up (attempts exhausted), – = never; open = fault → breaker open; back = fault → broker back and answering (a restarted node accepts AMQP after its boot; SIGCONT); resume publish / e2e = broker back → first publish confirmed / first task confirmed after it completed end to end; refused = never published (breaker open); gave up = attempts exhausted; delayed = completed > 1 s after the intended start; lost = accepted by the broker, never executed; result lost = executed, result never seen; unconfirmed = never executed, publish never confirmed (– = a run written before hab counted these apart: its lost holds all three); dup = run more than once. Counts summed over repetitions, times are medians.";

impl Matrix for PolicyRow {
    const HEAD: &'static [&'static str] = &[
        "topology",
        "policy",
        "workload",
        "fault",
        "faults",
        "fail fast ms",
        "open ms",
        "back ms",
        "resume publish ms",
        "resume e2e ms",
        "tasks",
        "refused",
        "gave up",
        "delayed",
        "lost",
        "result lost",
        "unconfirmed",
    ];
    const TEXT: &'static [&'static str] = &["topology", "policy", "workload", "fault"];

    /// Some producer is not `block`, or gave a task up.
    fn worth_showing(rows: &[Self]) -> bool {
        rows.iter()
            .any(|r| r.policy != "block" || r.refused + r.gave_up > 0)
    }

    fn cells(&self) -> Vec<String> {
        let r = self;
        vec![
            r.topology.clone(),
            r.policy.clone(),
            r.workload.clone(),
            r.fault.clone(),
            r.faults.to_string(),
            fmt_ms_cell(r.fail_fast_ms),
            fmt_ms_cell(r.breaker_open_ms),
            fmt_ms_cell(r.restored_ms),
            fmt_ms_cell(r.resume_publish_ms),
            fmt_ms_cell(r.resume_complete_ms),
            r.tasks.to_string(),
            r.refused.to_string(),
            r.gave_up.to_string(),
            r.delayed.to_string(),
            r.lost.to_string(),
            fmt_count(r.result_lost),
            fmt_count(r.unconfirmed),
            r.duplicated.to_string(),
        ]
    }

    fn finding(&self) -> String {
        let r = self;
        let fail = match r.fail_fast_ms {
            Some(ms) => format!("told callers \"no\" {ms:.0} ms after the fault"),
            None => "never failed a caller (it waited)".to_string(),
        };
        let resume = match (r.resume_publish_ms, r.resume_complete_ms) {
            (Some(p), Some(e)) => format!(
                "published again {p:.0} ms after the broker was back, first task through {e:.0} ms after"
            ),
            (Some(p), None) => format!("published again {p:.0} ms after the broker was back"),
            _ => "no publish confirmed after the broker was back".to_string(),
        };
        let lost = match (r.result_lost, r.unconfirmed) {
            (Some(rl), Some(u)) => {
                format!("{} lost, {rl} results lost, {u} never confirmed", r.lost)
            }
            _ => format!(
                "{} lost (never executed, result lost or never confirmed)",
                r.lost
            ),
        };
        format!(
            "{} (producer policy {}) on {} ({}): {fail}; {resume}; of {} task(s), {} refused, {} given up, {} delayed over 1 s, {lost}, {} duplicated.",
            r.topology,
            r.policy,
            r.workload,
            r.fault,
            r.tasks,
            r.refused,
            r.gave_up,
            r.delayed,
            r.duplicated
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::matrix::{findings, numeric, table, text_table};
    use crate::testing::assert_has;

    fn row(topology: &str, policy: &str, fail_fast: Option<f64>, refused: u64) -> PolicyRow {
        PolicyRow {
            topology: topology.into(),
            policy: policy.into(),
            workload: "outage_kill".into(),
            fault: "kill broker.primary".into(),
            faults: 1,
            fail_fast_ms: fail_fast,
            breaker_open_ms: fail_fast,
            restored_ms: Some(4000.0),
            resume_publish_ms: Some(4100.4),
            resume_complete_ms: None,
            tasks: 1000,
            refused,
            gave_up: 3,
            delayed: 10,
            lost: 0,
            result_lost: Some(0),
            unconfirmed: Some(0),
            duplicated: 1,
        }
    }

    #[test]
    fn the_table_has_one_row_per_topology_and_fault_with_policy_and_effects() {
        let rows = vec![
            row("outage-block", "block", None, 0),
            row("outage-breaker", "breaker", Some(12.3), 640),
        ];
        let (head, body) = table(&rows);
        assert_eq!(head.len(), 18);
        assert_eq!(numeric::<PolicyRow>().len(), 18);
        assert_eq!(
            body[1],
            [
                "outage-breaker",
                "breaker",
                "outage_kill",
                "kill broker.primary",
                "1",
                "12",
                "12",
                "4000",
                "4100",
                "–",
                "1000",
                "640",
                "3",
                "10",
                "0",
                "0",
                "0",
                "1"
            ]
        );
        assert_eq!(body[0][5], "–", "block never fails fast");
        let text = text_table(&rows);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.starts_with("topology"), "{text}");
    }

    #[test]
    fn the_table_shows_lost_result_lost_and_unconfirmed_apart() {
        let mut json = serde_json::to_value(row("outage-retry", "retry", Some(5.0), 0)).unwrap();
        json["lost"] = 1.into();
        json["result_lost"] = 2.into();
        json["unconfirmed"] = 3.into();
        let r: PolicyRow = serde_json::from_value(json).unwrap();
        let (head, body) = table(std::slice::from_ref(&r));
        let cell = |name: &str| {
            let i = head
                .iter()
                .position(|h| h == name)
                .unwrap_or_else(|| panic!("no {name} column: {head:?}"));
            body[0][i].clone()
        };
        assert_eq!(
            (cell("lost"), cell("result lost"), cell("unconfirmed")),
            ("1".into(), "2".into(), "3".into())
        );
        assert!(LEGEND.contains("lost = accepted by the broker, never executed"));
        let f = findings(std::slice::from_ref(&r));
        assert_has(&f[0], &["1 lost, 2 results lost, 3 never confirmed"]);
        // A run written before hab counted them apart: its lost holds all three.
        let mut old = serde_json::to_value(&r).unwrap();
        old.as_object_mut().unwrap().remove("result_lost");
        old.as_object_mut().unwrap().remove("unconfirmed");
        let old: PolicyRow = serde_json::from_value(old).unwrap();
        let (_, body) = table(std::slice::from_ref(&old));
        assert_eq!(body[0][15..17], ["–", "–"]);
    }

    #[test]
    fn findings_say_how_soon_each_policy_failed_and_resumed() {
        let rows = vec![
            row("outage-block", "block", None, 0),
            row("outage-breaker", "breaker", Some(12.3), 640),
        ];
        let f = findings(&rows);
        assert!(f[0].contains("never failed a caller"), "{}", f[0]);
        assert_has(&f[1], &["told callers \"no\" 12 ms after the fault"]);
        assert!(f[1].contains("640 refused, 3 given up"), "{}", f[1]);
        // Only block producers that never gave up: nothing to show.
        let mut quiet = row("standalone", "block", None, 0);
        quiet.gave_up = 0;
        assert!(!PolicyRow::worth_showing(std::slice::from_ref(&quiet)));
        assert!(findings(&[quiet]).is_empty());
    }
}
