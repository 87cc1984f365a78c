//! The idle-timeout matrix of a comparison: one row per topology through HAProxy — its
//! heartbeat, keepalive and idle timeouts → the connections HAProxy cut (from its own
//! log), the errors and reconnections the clients saw, and the tasks affected (see
//! [`crate::metrics::idle`] for each definition). Shared by the terminal summary, the
//! report and summary.json.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::matrix::Matrix;
use crate::metrics::idle::{AffectedTasks, IdleSettings};
use crate::record::RunSet;

/// One cell of the matrix: a topology (heartbeat × timeout), summed over its repetitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdleRow {
    /// Topology name.
    pub topology: String,
    /// Runs with an idle report.
    pub runs: usize,
    /// Heartbeat, keepalive and timeouts (of the first run).
    pub settings: IdleSettings,
    /// Whether the workload plan has idle gaps (`idle_before`): an idle-timeout study.
    pub idle_gaps: bool,
    /// Sessions HAProxy cut on an idle timeout, per frontend (`broker`, `backend`).
    pub cuts: BTreeMap<String, u64>,
    /// Client errors by client (`producer`, `results`, `workers`).
    pub client_errors: BTreeMap<String, u64>,
    /// Client reconnections by client.
    pub client_reconnections: BTreeMap<String, u64>,
    /// Tasks overlapping a cut, and what happened to them; `delayed` against the
    /// baseline's p50 of each workload (see `delayed_against_baseline`).
    pub tasks: AffectedTasks,
    /// True when every workload's "delayed" was counted against the baseline topology's
    /// p50 of that workload; false when some used the run's own p50 (the baseline lacks
    /// the workload or has no ok task in it).
    #[serde(default)]
    pub delayed_against_baseline: bool,
}

impl IdleRow {
    /// Cuts on both frontends.
    pub fn total_cuts(&self) -> u64 {
        self.cuts.values().sum()
    }

    /// Client errors of every client.
    pub fn total_errors(&self) -> u64 {
        self.client_errors.values().sum()
    }

    /// Reconnections of every client.
    pub fn total_reconnections(&self) -> u64 {
        self.client_reconnections.values().sum()
    }
}

fn add(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_insert(0) += v;
    }
}

/// The matrix rows, in the comparison's topology order (topologies without HAProxy have
/// no row).
pub fn idle_rows(set: &RunSet) -> Vec<IdleRow> {
    let mut out = Vec::new();
    let base_p50 = |workload: &str| {
        set.topologies
            .first()
            .and_then(|b| b.merged_histogram(workload, "latency").ok().flatten())
            .filter(|h| !h.is_empty())
            .map(|h| h.stats().p50_us)
    };
    for t in &set.topologies {
        let reports: Vec<_> = t
            .runs
            .iter()
            .filter_map(|r| r.report.idle.as_ref())
            .collect();
        let Some(first) = reports.first() else {
            continue;
        };
        let idle_gaps = t.runs.iter().any(|r| {
            r.report
                .workload_plan
                .get("workload")
                .and_then(|w| w.as_array())
                .is_some_and(|ws| ws.iter().any(|w| w.get("idle_before").is_some()))
        });
        let mut row = IdleRow {
            topology: t.name.clone(),
            runs: reports.len(),
            settings: first.settings,
            idle_gaps,
            cuts: BTreeMap::new(),
            client_errors: BTreeMap::new(),
            client_reconnections: BTreeMap::new(),
            tasks: AffectedTasks::default(),
            delayed_against_baseline: true,
        };
        for r in &reports {
            add(&mut row.cuts, &r.cuts);
            add(&mut row.client_errors, &r.client_errors);
            add(&mut row.client_reconnections, &r.client_reconnections);
            for w in &r.workloads {
                let mut tasks = w.tasks;
                match base_p50(&w.workload) {
                    // Delayed is disjoint from the other kinds: swap it for the count
                    // against the baseline's p50.
                    Some(p50) => {
                        let delayed = w.delayed_against(p50);
                        tasks.affected = tasks.affected - tasks.delayed + delayed;
                        tasks.delayed = delayed;
                    }
                    None => row.delayed_against_baseline = false,
                }
                row.tasks.add(&tasks);
            }
        }
        out.push(row);
    }
    out
}

fn fmt_setting_ms(ms: u64) -> String {
    if ms == 0 {
        "off".into()
    } else {
        humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
    }
}

/// `5s`, or `5s/1h` when client and server timeouts differ.
fn fmt_timeouts(s: &IdleSettings) -> String {
    if s.timeout_client_ms == s.timeout_server_ms {
        fmt_setting_ms(s.timeout_client_ms)
    } else {
        format!(
            "{}/{}",
            fmt_setting_ms(s.timeout_client_ms),
            fmt_setting_ms(s.timeout_server_ms)
        )
    }
}

/// `7 (results 3, workers 4)`; `0` when empty.
fn fmt_by_client(m: &BTreeMap<String, u64>) -> String {
    let total: u64 = m.values().sum();
    let parts: Vec<String> = m
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if parts.is_empty() {
        total.to_string()
    } else {
        format!("{total} ({})", parts.join(", "))
    }
}

impl Matrix for IdleRow {
    const HEAD: &'static [&'static str] = &[
        "topology",
        "runs",
        "heartbeat",
        "keepalive",
        "timeout",
        "cuts AMQP",
        "cuts Redis",
        "client errors",
        "reconnects",
        "tasks at a cut",
        "affected",
        "delayed",
        "failed",
        "lost",
    ];
    const TEXT: &'static [&'static str] = &["topology", "client errors", "reconnects"];

    /// Some run is an idle-timeout study, or HAProxy cut an idle connection somewhere
    /// (which must never go unreported).
    fn worth_showing(rows: &[Self]) -> bool {
        rows.iter().any(|r| r.idle_gaps || r.total_cuts() > 0)
    }

    fn cells(&self) -> Vec<String> {
        let r = self;
        let s = &r.settings;
        let cut = |f: &str| r.cuts.get(f).copied().unwrap_or(0).to_string();
        vec![
            r.topology.clone(),
            r.runs.to_string(),
            if s.heartbeat_s == 0 {
                "off".into()
            } else {
                format!("{}s", s.heartbeat_s)
            },
            fmt_setting_ms(s.keepalive_ms),
            fmt_timeouts(s),
            cut("broker"),
            cut("backend"),
            fmt_by_client(&r.client_errors),
            fmt_by_client(&r.client_reconnections),
            r.tasks.overlapping.to_string(),
            r.tasks.affected.to_string(),
            r.tasks.delayed.to_string(),
            r.tasks.failed.to_string(),
            r.tasks.lost.to_string(),
            r.tasks.duplicated.to_string(),
        ]
    }

    fn finding(&self) -> String {
        let r = self;
        let s = &r.settings;
        let hb = if s.heartbeat_s == 0 {
            "heartbeat off".to_string()
        } else {
            format!("heartbeat {}s", s.heartbeat_s)
        };
        let setting = format!(
            "{} ({hb}, keepalive {}, HAProxy timeouts {})",
            r.topology,
            fmt_setting_ms(s.keepalive_ms),
            fmt_timeouts(s)
        );
        if r.total_cuts() == 0 {
            return format!(
                "{setting}: HAProxy cut no idle connection; clients saw {} error(s), {} task(s) affected.",
                r.total_errors(),
                r.tasks.affected
            );
        }
        format!(
            "{setting}: HAProxy cut {} idle connection(s) ({} AMQP, {} Redis) over {} run(s); clients saw {} error(s) and reconnected {} time(s); {} task(s) were in flight at a cut, {} affected: {} delayed, {} failed, {} lost (never run or no result by the end of the drain), {} duplicated.",
            r.total_cuts(),
            r.cuts.get("broker").copied().unwrap_or(0),
            r.cuts.get("backend").copied().unwrap_or(0),
            r.runs,
            r.total_errors(),
            r.total_reconnections(),
            r.tasks.overlapping,
            r.tasks.affected,
            r.tasks.delayed,
            r.tasks.failed,
            r.tasks.lost,
            r.tasks.duplicated
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::matrix::{findings, numeric, table, text_table};
    use crate::testing::assert_has;

    fn row(topology: &str, heartbeat_s: u64, timeout_ms: u64, cuts: u64) -> IdleRow {
        IdleRow {
            topology: topology.into(),
            runs: 1,
            settings: IdleSettings {
                heartbeat_s,
                keepalive_ms: heartbeat_s * 1000,
                timeout_client_ms: timeout_ms,
                timeout_server_ms: timeout_ms,
            },
            idle_gaps: true,
            cuts: BTreeMap::from([("broker".into(), cuts), ("backend".into(), 2 * cuts)]),
            client_errors: BTreeMap::from([("results".into(), cuts), ("workers".into(), 0)]),
            client_reconnections: BTreeMap::new(),
            tasks: AffectedTasks {
                overlapping: cuts,
                affected: cuts,
                duplicated: cuts,
                ..AffectedTasks::default()
            },
            delayed_against_baseline: true,
        }
    }

    #[test]
    fn the_table_has_one_row_per_topology_with_settings_and_effects() {
        let rows = vec![row("t1h", 0, 3_600_000, 0), row("hb0", 0, 5000, 3)];
        let (head, body) = table(&rows);
        assert_eq!(head.len(), 15);
        assert_eq!(numeric::<IdleRow>().len(), 15);
        assert_eq!(
            body[1],
            [
                "hb0",
                "1",
                "off",
                "off",
                "5s",
                "3",
                "6",
                "3 (results 3)",
                "0",
                "3",
                "3",
                "0",
                "0",
                "0",
                "3"
            ]
        );
        assert_eq!(body[0][4], "1h");
        let mut r = row("mixed", 2, 5000, 0);
        r.settings.timeout_server_ms = 3_600_000;
        assert_eq!(table(&[r]).1[0][2..5], ["2s", "2s", "5s/1h"]);
        let text = text_table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("topology  runs  heartbeat"), "{text}");
        assert!(lines[2].starts_with("hb0"), "{text}");
    }

    #[test]
    fn findings_say_what_was_cut_and_what_it_did() {
        let rows = vec![row("t1h", 0, 3_600_000, 0), row("hb0", 0, 5000, 3)];
        let f = findings(&rows);
        assert_eq!(f.len(), 2);
        assert!(f[0].contains("t1h (heartbeat off, keepalive off, HAProxy timeouts 1h): HAProxy cut no idle connection"), "{}", f[0]);
        assert_has(&f[1], &["cut 9 idle connection(s) (3 AMQP, 6 Redis)"]);
        assert!(f[1].contains("3 duplicated"), "{}", f[1]);
        // Not an idle study and nothing cut: no findings, no section.
        let mut quiet = row("ha", 5, 3_600_000, 0);
        quiet.idle_gaps = false;
        assert!(!IdleRow::worth_showing(std::slice::from_ref(&quiet)));
        assert!(findings(&[quiet]).is_empty());
    }
}
