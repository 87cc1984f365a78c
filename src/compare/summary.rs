//! The comparison: per workload, each topology beside the baseline (throughput and
//! latency with their ratios, what was lost or duplicated); per fault, switch time and
//! outage over the repetitions; and the findings in plain words. This is what the
//! terminal summary, `--json`, summary.json and the report show.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::metrics::LatencyStats;
use crate::metrics::stats::Spread;
use crate::record::Standing;
use crate::record::{Machine, RunStatus};
use crate::record::{RunSet, TopologyRuns};

use super::faults::{FaultSummary, fault_summaries};

/// One topology's result on one workload, over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadRow {
    /// Topology name.
    pub topology: String,
    /// Runs that contributed (`hab compare --repeat`).
    pub repetitions: usize,
    /// Repetitions of the workload within each run (its `repeat`; the most any run
    /// made): every throughput and latency sample is one repetition of one run, so the
    /// spreads below are over runs × repetitions.
    #[serde(default = "one")]
    pub repeat: usize,
    /// Tasks, summed over repetitions.
    pub count: u64,
    /// ok tasks.
    pub ok: u64,
    /// Tasks the worker reported failed.
    pub failed: u64,
    /// Tasks whose result was REVOKED (revoked, or expired before they ran).
    #[serde(default)]
    pub revoked: u64,
    /// Accepted by the broker, never executed.
    pub lost: u64,
    /// Executed, result never readable.
    pub result_lost: u64,
    /// Never confirmed by the broker (the producer knew).
    pub unconfirmed: u64,
    /// Executed more than once.
    pub duplicated: u64,
    /// Published more than once by the producer.
    pub republished: u64,
    /// No result by the drain deadline, started by a worker by then (not lost).
    #[serde(default)]
    pub unfinished_running: u64,
    /// No result by the drain deadline, not started by then (not lost).
    #[serde(default)]
    pub unfinished_queued: u64,
    /// Finished by the drain deadline, result unknown: the read failed.
    #[serde(default)]
    pub unknown: u64,
    /// ok and failed tasks settled by a reconciliation read rather than a notification
    /// (their latency is an upper bound).
    #[serde(default)]
    pub seen_by_read: u64,
    /// ok tasks per second: median, min and max over every repetition of every run
    /// (`n` = 1: a single run).
    pub throughput_per_s: Spread,
    /// Median throughput ÷ the baseline's median throughput.
    pub throughput_ratio: Option<f64>,
    /// End-to-end latency of every ok task of every repetition (merged histogram), µs.
    pub latency: LatencyStats,
    /// The p50 of each repetition of each run, from its own histogram (median, min,
    /// max over those with an ok task), µs; `latency.p50_us` is the merged one.
    #[serde(default)]
    pub p50_spread_us: Option<Spread>,
    /// The p99 of each repetition of each run, µs.
    #[serde(default)]
    pub p99_spread_us: Option<Spread>,
    /// Each repetition of each run, when the workload repeats within a run (empty
    /// otherwise: the runs are the samples).
    #[serde(default)]
    pub per_repetition: Vec<RepetitionRow>,
    /// The busiest process of the workload's first sampled run in one sentence (run.json
    /// `workloads[].cpu.summary`): which process limited it, or that hab did.
    #[serde(default)]
    pub busiest: Option<String>,
    /// p50 ÷ the baseline's p50.
    pub p50_ratio: Option<f64>,
    /// p99 ÷ the baseline's p99.
    pub p99_ratio: Option<f64>,
    /// Median of each stage (publish, queue_wait, service, result_delay, schedule_lag)
    /// from the merged histograms, µs.
    pub stage_p50_us: BTreeMap<String, u64>,
    /// p99 of each stage, µs.
    pub stage_p99_us: BTreeMap<String, u64>,
    /// The task path set against the stack's raw limit for this kind of task, when the
    /// runs measured it (`--calibrate`).
    #[serde(default)]
    pub raw_limit: Option<RawLimit>,
}

fn one() -> usize {
    1
}

/// One repetition of a repeated workload in one run (report.md's per-repetition table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepetitionRow {
    /// Which run of the topology, from 1.
    pub run: usize,
    /// Which repetition within the run, from 1.
    pub repetition: u32,
    /// Its tasks.
    pub count: u64,
    /// Its ok tasks.
    pub ok: u64,
    /// Its ok tasks per second.
    pub throughput_per_s: f64,
    /// Its end-to-end latency (absent: no ok task), µs.
    pub p50_us: Option<u64>,
    /// Its p99, µs.
    pub p99_us: Option<u64>,
}

/// A workload's task path against one of the stack's raw limits (`hab calibrate`'s
/// figures, measured on the same stack before the workloads):
/// - trivial tasks in a burst: tasks/s end to end against the broker round trip with the
///   same messages (msg/s) — what the worker, the backend and the producer cost;
/// - `write_zeros`: one task's write speed (bytes ÷ median service time) against the disk
///   figure (MB/s), both writing 1 MiB chunks then `fdatasync`;
/// - `factorial(100000)`: the raw call time (ms) against the median service time.
///
/// `fraction` is always "how close to the limit": 1.0 = at it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawLimit {
    /// The calibration figure (`broker_round_trip`, `disk_write`, `cpu_factorial`).
    pub figure: String,
    /// The task path's figure, in `unit`.
    pub task_path: f64,
    /// The raw limit, in `unit` (median over the runs that measured it).
    pub limit: f64,
    /// Unit of both.
    pub unit: String,
    /// task_path ÷ limit for rates, limit ÷ task_path for times.
    pub fraction: f64,
}

impl RawLimit {
    /// Where the task path stands against this limit.
    pub fn standing(&self) -> Standing {
        Standing::of(self.fraction)
    }
}

/// A finding for every task path more than [`crate::record::CEILING_MARGIN`] above its ceiling.
pub fn ceiling_findings(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    for w in &c.workloads {
        for r in &w.rows {
            let Some(l) = &r.raw_limit else { continue };
            if let Standing::Invalid(f) = l.standing() {
                out.push(format!(
                    "{} on {}: the calibration is invalid: the task path ({:.1} {}) ran {:.0} % above its ceiling {} ({:.1}), which is meant to be the best the stack does on its own; the ceiling was measured too low (recalibrate, with longer windows on a quiet machine), so no fraction of it is shown.",
                    w.name,
                    r.topology,
                    l.task_path,
                    l.unit,
                    (f - 1.0) * 100.0,
                    l.figure,
                    l.limit
                ));
            }
        }
    }
    out
}

/// The raw limit a workload is set against, if its runs were calibrated.
fn raw_limit(t: &TopologyRuns, workload: &str, row: &WorkloadRow) -> Option<RawLimit> {
    let figure_median = |pick: &dyn Fn(&crate::record::Figures) -> Option<f64>| {
        Spread::of(
            t.runs
                .iter()
                .filter_map(|r| r.report.calibration.as_ref())
                .filter_map(|c| pick(&c.figures)),
        )
        .map(|s| s.median)
    };
    // The workload as planned (task and arrival), from the first run; run.json keeps
    // the plan as parsed, so its list is `workload`, as in `[[workload]]`.
    let planned = t
        .runs
        .first()?
        .report
        .workload_plan
        .get("workload")?
        .as_array()?;
    let w = planned
        .iter()
        .find(|w| w.get("name").and_then(|n| n.as_str()) == Some(workload))?;
    let task = w.get("task")?;
    let kind = task.get("kind")?.as_str()?;
    let burst = w.get("arrival").and_then(|a| a.as_str()) == Some("burst");
    let service_us = row.stage_p50_us.get("service").copied().filter(|s| *s > 0);
    let (figure, task_path, limit, unit, rate) = match kind {
        // The end-to-end ceiling (the whole task path without task code) where the runs
        // measured it; the broker round trip alone in calibrations made before it.
        "trivial" if burst && row.ok > 0 => {
            match figure_median(&|f| f.end_to_end.as_ref().map(|x| x.value)) {
                Some(limit) => (
                    "end_to_end",
                    row.throughput_per_s.median,
                    limit,
                    "tasks/s",
                    true,
                ),
                None => (
                    "broker_round_trip",
                    row.throughput_per_s.median,
                    figure_median(&|f| f.broker_round_trip.as_ref().map(|x| x.value))?,
                    "tasks/s vs msg/s",
                    true,
                ),
            }
        }
        "write_zeros" => {
            let bytes = task.get("bytes")?.as_f64()?;
            (
                "disk_write",
                bytes / service_us? as f64, // bytes per µs = MB/s
                figure_median(&|f| f.disk_write.as_ref().map(|x| x.value))?,
                "MB/s",
                true,
            )
        }
        "factorial" if task.get("n")?.as_u64()? == 100_000 => (
            "cpu_factorial",
            service_us? as f64 / 1000.0,
            figure_median(&|f| f.cpu_factorial.as_ref().map(|x| x.value))?,
            "ms/call",
            false,
        ),
        _ => return None,
    };
    let fraction = if rate {
        ratio(task_path, limit)?
    } else {
        ratio(limit, task_path)?
    };
    Some(RawLimit {
        figure: figure.into(),
        task_path,
        limit,
        unit: unit.into(),
        fraction,
    })
}

/// A topology's outcomes summed over every workload of a comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Tasks.
    pub count: u64,
    /// Never executed, result lost, or never confirmed.
    pub lost: u64,
    /// Executed more than once.
    pub duplicated: u64,
    /// Failed.
    pub failed: u64,
    /// REVOKED results.
    pub revoked: u64,
}

impl Comparison {
    /// The outcomes of topology `name` summed over every workload.
    pub fn totals(&self, name: &str) -> Totals {
        let mut t = Totals::default();
        for r in self
            .workloads
            .iter()
            .flat_map(|w| w.rows.iter().filter(|r| r.topology == name))
        {
            t.count += r.count;
            t.lost += r.lost_total();
            t.duplicated += r.duplicated;
            t.failed += r.failed;
            t.revoked += r.revoked;
        }
        t
    }
}

impl WorkloadRow {
    /// Tasks lost one way or another: never executed, result gone, or never confirmed.
    pub fn lost_total(&self) -> u64 {
        self.lost + self.result_lost + self.unconfirmed
    }
}

/// One workload across topologies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadComparison {
    /// Workload name.
    pub name: String,
    /// Celery task name.
    pub task: String,
    /// Baseline first.
    pub rows: Vec<WorkloadRow>,
}

/// One topology of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologySummary {
    /// Topology name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// Its run directories, in the order they ran.
    pub runs: Vec<String>,
    /// How each run ended (complete, interrupted, failed).
    pub statuses: Vec<RunStatus>,
    /// Bring-up time over the runs, ms.
    pub bringup_ms: Option<Spread>,
    /// Server versions (from the first run).
    pub versions: BTreeMap<String, String>,
    /// Results written over the runs (ok + failed tasks, warm-up included) whose key the
    /// backend still held at the end (`final_state`), and how many were written; runs
    /// without a final state are left out. Fewer keys than results: the backend lost
    /// stored results even if hab saw them as they were published.
    #[serde(default)]
    pub result_keys: Option<(u64, u64)>,
    /// Invariants its runs recorded as violated (`name: detail`), over the runs.
    #[serde(default)]
    pub invariants_violated: Vec<String>,
}

/// (keys held at the end, results written) of a run, when its final state was read.
fn result_keys(r: &crate::record::RunReport) -> Option<(u64, u64)> {
    let fs = r.final_state?;
    let warmup = r
        .workload_plan
        .get("warmup_tasks")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    let written: u64 = r
        .workloads
        .iter()
        .map(|w| w.counts.ok + w.counts.failed)
        .sum::<u64>()
        + warmup;
    Some((fs.result_keys, written))
}

/// Everything the comparison says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// hab's version that ran the first run.
    pub hab_version: String,
    /// Baseline topology name.
    pub baseline: String,
    /// Workload file of the runs (of the first run).
    pub workload_file: String,
    /// The machine (of the first run).
    pub machine: Machine,
    /// The topologies, baseline first.
    pub topologies: Vec<TopologySummary>,
    /// Per workload, in plan order.
    pub workloads: Vec<WorkloadComparison>,
    /// Per fault and topology.
    pub faults: Vec<FaultSummary>,
    /// The idle-timeout matrix: one row per topology through HAProxy.
    #[serde(default)]
    pub idle: Vec<super::idle::IdleRow>,
    /// The producer-policy matrix (block / retry / breaker around broker faults): one row
    /// per topology and fault workload.
    #[serde(default)]
    pub policies: Vec<super::outage::PolicyRow>,
    /// The answer in three to five lines: what HA costs per workload, what it buys per
    /// fault, what was lost, and how sure the figures are.
    #[serde(default)]
    pub verdict: Vec<String>,
    /// Plain-language findings with numbers, grouped.
    pub findings: super::findings::Findings,
    /// Where the time went: bring-up, calibration, the workloads' own time, overhead.
    #[serde(default)]
    pub timing: Option<super::timing::Timing>,
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

fn workload_row(t: &TopologyRuns, workload: &str) -> Result<Option<WorkloadRow>> {
    let reports: Vec<_> = t
        .runs
        .iter()
        .filter_map(|r| r.report.workloads.iter().find(|w| w.name == workload))
        .collect();
    if reports.is_empty() {
        return Ok(None);
    }
    let sum = |f: &dyn Fn(&crate::metrics::summary::WorkloadReport) -> u64| -> u64 {
        reports.iter().map(|w| f(w)).sum()
    };
    let latency = t
        .merged_histogram(workload, "latency")?
        .map(|h| h.stats())
        .unwrap_or_default();
    let mut stage_p50_us = BTreeMap::new();
    let mut stage_p99_us = BTreeMap::new();
    for stage in [
        "publish",
        "queue_wait",
        "service",
        "result_delay",
        "schedule_lag",
    ] {
        if let Some(h) = t.merged_histogram(workload, stage)?
            && !h.is_empty()
        {
            stage_p50_us.insert(stage.to_string(), h.quantile_us(0.5));
            stage_p99_us.insert(stage.to_string(), h.quantile_us(0.99));
        }
    }
    Ok(Some(WorkloadRow {
        busiest: reports
            .iter()
            .find_map(|w| w.cpu.as_ref().and_then(|c| c.summary.clone())),
        topology: t.name.clone(),
        repetitions: reports.len(),
        count: sum(&|w| w.counts.count),
        ok: sum(&|w| w.counts.ok),
        failed: sum(&|w| w.counts.failed),
        revoked: sum(&|w| w.counts.revoked),
        lost: sum(&|w| w.counts.lost),
        result_lost: sum(&|w| w.counts.result_lost),
        unconfirmed: sum(&|w| w.counts.unconfirmed),
        duplicated: sum(&|w| w.counts.duplicated),
        republished: sum(&|w| w.republished),
        unfinished_running: sum(&|w| w.counts.unfinished_running),
        unfinished_queued: sum(&|w| w.counts.unfinished_queued),
        unknown: sum(&|w| w.counts.unknown),
        seen_by_read: sum(&|w| w.seen_by_read),
        repeat: reports
            .iter()
            .map(|w| w.repetitions_run())
            .max()
            .unwrap_or(1),
        throughput_per_s: Spread::of(reports.iter().flat_map(|w| w.throughput_samples()))
            .unwrap_or(Spread {
                median: 0.0,
                min: 0.0,
                max: 0.0,
                n: 0,
            }),
        throughput_ratio: None,
        latency,
        p50_spread_us: Spread::of(
            reports
                .iter()
                .flat_map(|w| w.latency_samples())
                .map(|l| l.p50_us as f64),
        ),
        p99_spread_us: Spread::of(
            reports
                .iter()
                .flat_map(|w| w.latency_samples())
                .map(|l| l.p99_us as f64),
        ),
        per_repetition: t
            .runs
            .iter()
            .enumerate()
            .filter_map(|(k, r)| {
                Some((
                    k + 1,
                    r.report.workloads.iter().find(|w| w.name == workload)?,
                ))
            })
            .flat_map(|(run, w)| {
                w.repetitions.iter().map(move |rep| {
                    let lat = |v: u64| (rep.latency.count > 0).then_some(v);
                    RepetitionRow {
                        run,
                        repetition: rep.repetition,
                        count: rep.counts.count,
                        ok: rep.counts.ok,
                        throughput_per_s: rep.throughput_per_s,
                        p50_us: lat(rep.latency.p50_us),
                        p99_us: lat(rep.latency.p99_us),
                    }
                })
            })
            .collect(),
        p50_ratio: None,
        p99_ratio: None,
        stage_p50_us,
        stage_p99_us,
        raw_limit: None,
    })
    .map(|mut row| {
        row.raw_limit = raw_limit(t, workload, &row);
        row
    }))
}

impl Comparison {
    /// Compute the comparison of `set`.
    pub fn from_runs(set: &RunSet) -> Result<Comparison> {
        let first = set.topologies.first().and_then(|t| t.runs.first());
        let mut topologies = Vec::new();
        for t in &set.topologies {
            topologies.push(TopologySummary {
                name: t.name.clone(),
                file: t.file.clone(),
                runs: t
                    .runs
                    .iter()
                    .map(|r| {
                        r.dir
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_else(|| r.dir.display().to_string())
                    })
                    .collect(),
                statuses: t.runs.iter().map(|r| r.report.status).collect(),
                bringup_ms: Spread::of(
                    t.runs
                        .iter()
                        .filter_map(|r| r.report.bringup_ms.map(|v| v as f64)),
                ),
                versions: t
                    .runs
                    .first()
                    .map(|r| r.report.versions.clone())
                    .unwrap_or_default(),
                result_keys: t
                    .runs
                    .iter()
                    .filter_map(|r| result_keys(&r.report))
                    .reduce(|a, b| (a.0 + b.0, a.1 + b.1)),
                invariants_violated: t
                    .runs
                    .iter()
                    .flat_map(|r| r.report.invariants.iter().filter(|i| !i.holds))
                    .map(|i| format!("{}: {}", i.name, i.detail))
                    .collect(),
            });
        }
        // Workloads in the order of the first topology that has them, then any others.
        let mut names: Vec<String> = Vec::new();
        for t in &set.topologies {
            for n in t.workload_names() {
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
        let mut workloads = Vec::new();
        for name in names {
            let mut rows = Vec::new();
            let mut task = String::new();
            for t in &set.topologies {
                if task.is_empty()
                    && let Some(w) = t
                        .runs
                        .iter()
                        .flat_map(|r| &r.report.workloads)
                        .find(|w| w.name == name)
                {
                    task.clone_from(&w.task);
                }
                if let Some(row) = workload_row(t, &name)? {
                    rows.push(row);
                }
            }
            if let Some(base) = rows.iter().find(|r| r.topology == set.baseline).cloned() {
                for r in &mut rows {
                    r.throughput_ratio =
                        ratio(r.throughput_per_s.median, base.throughput_per_s.median);
                    if r.latency.count > 0 && base.latency.count > 0 {
                        r.p50_ratio = ratio(r.latency.p50_us as f64, base.latency.p50_us as f64);
                        r.p99_ratio = ratio(r.latency.p99_us as f64, base.latency.p99_us as f64);
                    }
                }
            }
            workloads.push(WorkloadComparison { name, task, rows });
        }
        let faults = set.topologies.iter().flat_map(fault_summaries).collect();
        let mut c = Comparison {
            hab_version: first
                .map(|r| r.report.hab_version.clone())
                .unwrap_or_default(),
            baseline: set.baseline.clone(),
            workload_file: first
                .map(|r| r.report.workload_file.clone())
                .unwrap_or_default(),
            machine: first.map(|r| r.report.machine.clone()).unwrap_or_default(),
            topologies,
            workloads,
            faults,
            idle: super::idle::idle_rows(set),
            policies: super::outage::policy_rows(set),
            verdict: Vec::new(),
            findings: Default::default(),
            timing: super::timing::Timing::of(set),
        };
        c.findings = super::findings::findings(&c);
        c.findings.caveats.extend(ceiling_findings(&c));
        // An observer that missed its server is said in so many words: its anatomy
        // columns are empty for that reason, not because nothing happened.
        for t in &set.topologies {
            for r in &t.runs {
                for p in r.report.observers.iter().filter_map(|o| o.problem()) {
                    c.findings.caveats.push(format!("{}: {p}.", t.name));
                }
                c.findings
                    .losses
                    .extend(super::findings::worker_findings(&t.name, &r.report.workers));
                for i in r.report.invariants.iter().filter(|i| !i.holds) {
                    c.findings.caveats.push(format!(
                        "{}: invariant {} violated — {}. A figure of this run is wrong or a definition drifted: read its numbers with care.",
                        t.name, i.name, i.detail
                    ));
                }
            }
        }
        c.verdict = super::verdict::verdict(&c);
        Ok(c)
    }

    /// Whether every run of the comparison held all its invariants (`--strict`).
    pub fn invariants_hold(&self) -> bool {
        self.topologies
            .iter()
            .all(|t| t.invariants_violated.is_empty())
    }

    /// The baseline's row and the other rows of a workload.
    pub fn baseline_row<'a>(&self, w: &'a WorkloadComparison) -> Option<&'a WorkloadRow> {
        w.rows.iter().find(|r| r.topology == self.baseline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(value: f64) -> Option<crate::record::Figure> {
        Some(crate::record::Figure {
            value,
            ..Default::default()
        })
    }

    #[test]
    fn calibrated_runs_set_bursts_writes_and_factorials_against_the_raw_limits() {
        let mut set = crate::compare::fixture::run_set();
        let plan = serde_json::json!({"name": "fixture", "workload": [
            {"name": "trivial", "task": {"kind": "trivial"}, "arrival": "burst"},
            {"name": "broker_kill", "task": {"kind": "trivial"}, "arrival": "rate"},
        ]});
        for (k, run) in set.topologies[1].runs.iter_mut().enumerate() {
            run.report.workload_plan = plan.clone();
            let mut cal = crate::record::Calibration::default();
            // Medians over the runs: 10,000 and 14,000 -> 12,000.
            cal.figures.broker_round_trip = figure(10_000.0 + 4_000.0 * k as f64);
            run.report.calibration = Some(cal);
        }
        set.topologies[0].runs[0].report.workload_plan = plan;
        let c = Comparison::from_runs(&set).unwrap();
        let trivial = &c.workloads[0];
        let ha = trivial.rows.iter().find(|r| r.topology == "ha").unwrap();
        let l = ha.raw_limit.as_ref().expect("ha was calibrated");
        assert_eq!(l.figure, "broker_round_trip");
        assert_eq!(l.limit, 12_000.0);
        // ha's throughput median over its runs is 2,500 tasks/s.
        assert!((l.fraction - 2_500.0 / 12_000.0).abs() < 1e-9, "{l:?}");
        // Not calibrated: nothing claimed.
        let standalone = trivial
            .rows
            .iter()
            .find(|r| r.topology == "standalone")
            .unwrap();
        assert!(standalone.raw_limit.is_none());
        // A rate workload's throughput is the offered rate: no fraction of a limit.
        let rate = c.workloads[1]
            .rows
            .iter()
            .find(|r| r.topology == "ha")
            .unwrap();
        assert!(rate.raw_limit.is_none());
        // With the end-to-end ceiling measured, the burst is set against it instead.
        let mut e2e = set.clone();
        for run in &mut e2e.topologies[1].runs {
            run.report.calibration.as_mut().unwrap().figures.end_to_end = figure(5_000.0);
        }
        let c2 = Comparison::from_runs(&e2e).unwrap();
        let l = c2.workloads[0]
            .rows
            .iter()
            .find(|r| r.topology == "ha")
            .unwrap();
        let l = l.raw_limit.as_ref().unwrap();
        assert_eq!(
            (l.figure.as_str(), l.limit, l.unit.as_str()),
            ("end_to_end", 5_000.0, "tasks/s")
        );
        assert!((l.fraction - 0.5).abs() < 1e-9, "{l:?}");

        // Times are set the other way round: raw call time ÷ service time.
        let row = WorkloadRow {
            stage_p50_us: [("service".to_string(), 25_000u64)].into(),
            ..ha.clone()
        };
        let mut t = set.topologies[1].clone();
        for run in &mut t.runs {
            run.report.workload_plan = serde_json::json!({"workload": [
                {"name": "f", "task": {"kind": "factorial", "n": 100000}, "arrival": "burst"},
                {"name": "z", "task": {"kind": "write_zeros", "bytes": 50_000_000u64}, "arrival": "burst"},
            ]});
            let cal = run.report.calibration.as_mut().unwrap();
            cal.figures.cpu_factorial = figure(20.0);
            cal.figures.disk_write = figure(4_000.0);
        }
        let f = raw_limit(&t, "f", &row).unwrap();
        assert_eq!(
            (f.figure.as_str(), f.task_path, f.limit),
            ("cpu_factorial", 25.0, 20.0)
        );
        assert!((f.fraction - 0.8).abs() < 1e-9);
        // 50 MB in 25 ms = 2,000 MB/s against 4,000 MB/s.
        let z = raw_limit(&t, "z", &row).unwrap();
        assert_eq!((z.figure.as_str(), z.task_path), ("disk_write", 2_000.0));
        assert!((z.fraction - 0.5).abs() < 1e-9);
    }
}
