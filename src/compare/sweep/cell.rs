//! One cell's figures: its cost against the baseline's start run, each fault workload's
//! switch time and outage over its repetitions, the stall phase's false failovers, and
//! how its setting was read back ([`CellResult`]).

use serde::{Deserialize, Serialize};

use super::load::{LoadedCell, SweepRuns};
use super::{BaselineResult, BaselineRun, COST_WORKLOAD, STALL_WORKLOAD};
use crate::compare::Comparison;
use crate::compare::summary::WorkloadRow;
use crate::metrics::failover::FailoverRow;
use crate::metrics::stats::Spread;
use crate::record::sweep::{CellRecord, CellSetting, CellStatus};
use crate::record::{LoadedRun, RunSet, RunStatus, TopologyRuns};

/// Whose figures a workload's are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The cell measured it.
    Own,
    /// The cell's knobs cannot affect it: the reference cell's figures (cell 0).
    Reference,
}

/// The cost phase of a run: throughput and p99 of trivial tasks in a burst.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostFigures {
    /// ok tasks per second over the repetitions (median, min, max), as `hab compare`.
    pub throughput_per_s: Spread,
    /// p99 end-to-end latency of every ok task of every repetition (merged histogram), µs.
    pub p99_us: Option<u64>,
    /// Tasks lost one way or another (never executed, result lost, never confirmed).
    pub lost: u64,
    /// Tasks executed more than once.
    pub duplicated: u64,
}

/// One fault workload (one fault, K repetitions) of one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultFigures {
    /// The workload's name.
    pub workload: String,
    /// The fault's target role.
    pub target: String,
    /// kill, pause, …
    pub kind: String,
    /// The cell's own figures or the reference cell's.
    pub source: Source,
    /// Repetitions applied.
    pub repetitions: usize,
    /// Why, for each repetition that was not applied (left out of every figure).
    pub not_applied: Vec<String>,
    /// Repetitions after which no task completed within the fault's window (no switch).
    pub no_switch: usize,
    /// Switch time of the repetitions that had one (median, min, max, n), ms.
    pub switch_ms: Option<Spread>,
    /// Median switch time over every applied repetition, a repetition without a switch
    /// counting as the slowest, ms; absent when the median repetition had no switch.
    pub switch_median_ms: Option<f64>,
    /// Outage of the repetitions that had one (median, min, max), ms.
    pub outage_ms: Option<Spread>,
    /// Tasks of the workload accepted and never executed.
    pub lost: u64,
    /// Tasks executed whose result was never seen (vanished).
    pub result_lost: u64,
    /// Tasks never confirmed by the broker.
    pub unconfirmed: u64,
    /// Tasks executed more than once.
    pub duplicated: u64,
    /// Results hab saw that Redis no longer held at the end (over the fault windows).
    pub result_vanished: u64,
}

impl FaultFigures {
    /// The figure ranked for the headline: the median switch time, `f64::INFINITY` when
    /// the median repetition had none.
    pub fn rank_ms(&self) -> f64 {
        self.switch_median_ms.unwrap_or(f64::INFINITY)
    }

    /// Tasks lost one way or another.
    pub fn lost_total(&self) -> u64 {
        self.lost + self.result_lost + self.unconfirmed
    }
}

/// The stall phase of one cell: short pauses no death detection should act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StallFigures {
    /// The cell's own figures or the reference cell's.
    pub source: Source,
    /// Pauses applied.
    pub pauses: usize,
    /// Pauses after which the service moved: the Sentinels switched the master, or
    /// HAProxy marked the paused broker node DOWN ([`moved_service`]).
    pub false_failovers: usize,
    /// Pauses after which HAProxy marked a server DOWN (a paused Redis master included:
    /// an outage of HAProxy's making, not a failover).
    pub proxy_down: usize,
    /// Pauses after which a Sentinel said `+sdown`.
    pub sentinel_sdown: usize,
    /// Pauses after which the Sentinels switched the master (`+switch-master`).
    pub sentinel_switch: usize,
    /// Pauses after which a client reconnected.
    pub client_reconnected: usize,
    /// Tasks of the stall workload accepted and never executed.
    pub lost: u64,
    /// Tasks executed whose result was never seen (vanished).
    pub result_lost: u64,
    /// Tasks never confirmed by the broker.
    pub unconfirmed: u64,
    /// Tasks executed more than once.
    pub duplicated: u64,
    /// Results hab saw that Redis no longer held at the end.
    pub result_vanished: u64,
}

impl StallFigures {
    /// The counts as the report's stall table and sweep.csv list them: stalls, false
    /// failovers, HAProxy DOWN marks, `+sdown`, `+switch-master`, client reconnections,
    /// then tasks lost, run twice and results lost.
    pub fn counts(&self) -> Vec<String> {
        let events = [
            self.pauses,
            self.false_failovers,
            self.proxy_down,
            self.sentinel_sdown,
            self.sentinel_switch,
            self.client_reconnected,
        ];
        let tasks = [self.lost, self.duplicated, self.result_lost];
        events
            .iter()
            .map(ToString::to_string)
            .chain(tasks.iter().map(ToString::to_string))
            .collect()
    }
}

/// The slowest fault of a cell: the headline switch time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    /// The fault workload whose median switch time is the slowest.
    pub workload: String,
    /// Its median switch time, ms; absent when its median repetition had no switch.
    pub switch_ms: Option<f64>,
}

/// Everything the analysis says about one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Position in the run order (0 = the reference cell).
    pub index: usize,
    /// Stage of the design.
    pub stage: u8,
    /// Each knob's value, in the order of the sweep's knobs.
    pub values: Vec<String>,
    /// Keys of the knobs that differ from the reference.
    pub changed: Vec<String>,
    /// Asked for by a sweep file's `[[cell]]`.
    pub requested: bool,
    /// How far the cell got.
    pub status: CellStatus,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// Its run directory, relative to the sweep directory.
    pub dir: Option<String>,
    /// How its run ended (absent: no run.json read).
    pub run_status: Option<RunStatus>,
    /// Why it has no figures, when it has none.
    pub problem: Option<String>,
    /// Measured to the end and read back: only such cells enter the front.
    pub measured: bool,
    /// Its cost phase.
    pub cost: Option<CostFigures>,
    /// Throughput below the baseline's start run, % (positive: HA is slower).
    pub cost_throughput_pct: Option<f64>,
    /// p99 above the baseline's start run, % (positive: HA is slower).
    pub cost_p99_pct: Option<f64>,
    /// Each fault workload, own or the reference's.
    pub faults: Vec<FaultFigures>,
    /// The slowest of the fault workloads' median switch times.
    pub headline: Option<Headline>,
    /// The stall phase.
    pub stall: Option<StallFigures>,
    /// Tasks lost one way or another over every workload's figures (own and reference).
    pub lost_tasks: u64,
    /// Tasks executed more than once over every workload's figures.
    pub duplicated_tasks: u64,
    /// How the cell was configured and read back.
    pub setting: CellSetting,
    /// Settings read back other than asked for, in words: the cell did not measure what
    /// it says.
    pub mismatches: Vec<String>,
}

impl CellResult {
    /// False failovers in the stall phase (absent: not measured).
    pub fn false_failovers(&self) -> Option<usize> {
        self.stall.as_ref().map(|s| s.false_failovers)
    }

    /// The headline switch time ranked: ms, `f64::INFINITY` for none.
    pub fn headline_rank_ms(&self) -> f64 {
        self.headline
            .as_ref()
            .and_then(|h| h.switch_ms)
            .unwrap_or(f64::INFINITY)
    }

    /// The cost ranked: throughput cost %, `f64::INFINITY` for none.
    pub fn cost_rank(&self) -> f64 {
        self.cost_throughput_pct.unwrap_or(f64::INFINITY)
    }

    /// The fault figures of `workload`.
    pub fn fault(&self, workload: &str) -> Option<&FaultFigures> {
        self.faults.iter().find(|f| f.workload == workload)
    }
}

/// `(a / b - 1) × 100`: how much larger `a` is than `b`, in %.
pub fn pct_change(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| (a / b - 1.0) * 100.0)
}

fn topology(name: &str, run: &LoadedRun) -> TopologyRuns {
    TopologyRuns {
        name: name.to_string(),
        file: run.report.topology_file.clone(),
        runs: vec![run.clone()],
    }
}

/// `hab compare`'s comparison of `run` (named `name`) with the baseline's run, if there
/// is one: without it the ratios stay empty (the baseline is named but absent).
fn compare(
    baseline: &str,
    baseline_run: Option<&LoadedRun>,
    name: &str,
    run: &LoadedRun,
) -> anyhow::Result<Comparison> {
    let mut topologies = Vec::new();
    if let Some(r) = baseline_run {
        topologies.push(topology(baseline, r));
    }
    topologies.push(topology(name, run));
    let set = RunSet {
        baseline: baseline.to_string(),
        topologies,
    };
    Comparison::from_runs(&set)
}

fn workload_row<'a>(c: &'a Comparison, workload: &str, topology: &str) -> Option<&'a WorkloadRow> {
    c.workloads
        .iter()
        .find(|w| w.name == workload)?
        .rows
        .iter()
        .find(|r| r.topology == topology)
}

fn cost_of(row: &WorkloadRow) -> CostFigures {
    CostFigures {
        throughput_per_s: row.throughput_per_s,
        p99_us: (row.latency.count > 0).then_some(row.latency.p99_us),
        lost: row.lost_total(),
        duplicated: row.duplicated,
    }
}

fn baseline_run(
    when: &str,
    loaded: &LoadedCell,
    runs: &SweepRuns,
    name: &str,
) -> anyhow::Result<Option<BaselineRun>> {
    let record = runs.index.baseline_runs.iter().find(|b| b.when == when);
    if record.is_none() && loaded.run.is_none() {
        return Ok(None);
    }
    let mut problem = loaded.problem.clone();
    let cost = match &loaded.run {
        Some(run) => {
            let c = compare(name, None, name, run)?;
            let cost = workload_row(&c, COST_WORKLOAD, name).map(cost_of);
            if cost.is_none() {
                problem = Some(format!("its run has no {COST_WORKLOAD} workload"));
            }
            cost
        }
        None => None,
    };
    Ok(Some(BaselineRun {
        when: when.to_string(),
        status: record.map_or(CellStatus::Planned, |r| r.status),
        dir: record.and_then(|r| r.dir.clone()),
        cost,
        problem: problem.or_else(|| record.and_then(|r| r.error.clone())),
    }))
}

/// The baseline's two runs and the drift between them.
pub fn baseline(runs: &SweepRuns) -> anyhow::Result<BaselineResult> {
    let name = &runs.index.baseline_name;
    let start = baseline_run("start", &runs.baseline_start, runs, name)?;
    let end = baseline_run("end", &runs.baseline_end, runs, name)?;
    let (mut drift_throughput_pct, mut drift_p99_pct) = (None, None);
    if let (Some(s), Some(e)) = (&runs.baseline_start.run, &runs.baseline_end.run) {
        let c = compare(name, Some(s), "baseline at the end", e)?;
        if let Some(row) = workload_row(&c, COST_WORKLOAD, "baseline at the end") {
            drift_throughput_pct = row.throughput_ratio.map(|r| (r - 1.0) * 100.0);
            drift_p99_pct = row.p99_ratio.map(|r| (r - 1.0) * 100.0);
        }
    }
    Ok(BaselineResult {
        name: name.clone(),
        start,
        end,
        drift_throughput_pct,
        drift_p99_pct,
    })
}

/// The median of every applied repetition's switch time, one without a switch counting
/// as the slowest; `None` when the median falls on such a repetition.
fn median_counting_none(values: &[Option<f64>]) -> Option<f64> {
    let v: Vec<f64> = values.iter().map(|x| x.unwrap_or(f64::INFINITY)).collect();
    let mut v = v;
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return None;
    }
    let m = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    m.is_finite().then_some(m)
}

/// The figures of one fault workload from its failover rows and its workload row.
fn fault_figures(workload: &str, rows: &[&FailoverRow], row: Option<&WorkloadRow>) -> FaultFigures {
    let applied: Vec<&FailoverRow> = rows
        .iter()
        .copied()
        .filter(|r| r.not_applied.is_empty())
        .collect();
    let sum = |f: &dyn Fn(&FailoverRow) -> u64| -> u64 { applied.iter().map(|r| f(r)).sum() };
    let switches: Vec<Option<f64>> = applied.iter().map(|r| r.switch_time_ms).collect();
    FaultFigures {
        workload: workload.to_string(),
        target: rows.first().map(|r| r.target.clone()).unwrap_or_default(),
        kind: rows.first().map(|r| r.kind.clone()).unwrap_or_default(),
        source: Source::Own,
        repetitions: applied.len(),
        not_applied: rows
            .iter()
            .filter(|r| !r.not_applied.is_empty())
            .map(|r| r.not_applied.clone())
            .collect(),
        no_switch: switches.iter().filter(|s| s.is_none()).count(),
        switch_ms: Spread::of(switches.iter().flatten().copied()),
        switch_median_ms: median_counting_none(&switches),
        outage_ms: Spread::of(applied.iter().filter_map(|r| r.outage_ms)),
        // The whole workload's tasks where its row exists; the fault windows' otherwise.
        lost: row.map_or_else(|| sum(&|r| r.lost), |w| w.lost),
        result_lost: row.map_or_else(|| sum(&|r| r.result_lost), |w| w.result_lost),
        unconfirmed: row.map_or_else(|| sum(&|r| r.unconfirmed), |w| w.unconfirmed),
        duplicated: row.map_or_else(|| sum(&|r| r.duplicated), |w| w.duplicated),
        result_vanished: sum(&|r| r.result_vanished.unwrap_or(0)),
    }
}

/// The stall phase's figures from its failover rows (one per pause).
/// Whether the service moved away from the paused node: the Sentinels switched the
/// master, or HAProxy marked the paused broker node DOWN (its clients go to a backup). A
/// paused Redis master marked DOWN by HAProxy is not a failover: with no other master to
/// route to, its clients wait (an outage, counted in `proxy_down`).
pub fn moved_service(r: &FailoverRow) -> bool {
    let broker = r.target.starts_with("broker") || r.resolved.starts_with("broker");
    r.sentinel_switch_ms.is_some() || (broker && r.proxy_down_ms.is_some())
}

fn stall_figures(rows: &[&FailoverRow], row: Option<&WorkloadRow>) -> StallFigures {
    let applied: Vec<&FailoverRow> = rows
        .iter()
        .copied()
        .filter(|r| r.not_applied.is_empty())
        .collect();
    let count = |f: &dyn Fn(&FailoverRow) -> bool| applied.iter().filter(|r| f(r)).count();
    let sum = |f: &dyn Fn(&FailoverRow) -> u64| -> u64 { applied.iter().map(|r| f(r)).sum() };
    StallFigures {
        source: Source::Own,
        pauses: applied.len(),
        false_failovers: count(&|r| moved_service(r)),
        proxy_down: count(&|r| r.proxy_down_ms.is_some()),
        sentinel_sdown: count(&|r| r.sentinel_sdown_ms.is_some()),
        sentinel_switch: count(&|r| r.sentinel_switch_ms.is_some()),
        client_reconnected: count(&|r| r.client_reconnected_ms.is_some()),
        lost: row.map_or_else(|| sum(&|r| r.lost), |w| w.lost),
        result_lost: row.map_or_else(|| sum(&|r| r.result_lost), |w| w.result_lost),
        unconfirmed: row.map_or_else(|| sum(&|r| r.unconfirmed), |w| w.unconfirmed),
        duplicated: row.map_or_else(|| sum(&|r| r.duplicated), |w| w.duplicated),
        result_vanished: sum(&|r| r.result_vanished.unwrap_or(0)),
    }
}

/// The cell's name in its comparison with the baseline.
fn cell_name(index: usize) -> String {
    format!("cell {index:02}")
}

/// What cell `record` measured itself (its run set against the baseline's start run).
pub fn own_figures(
    record: &CellRecord,
    loaded: &LoadedCell,
    baseline_start: Option<&LoadedRun>,
    baseline_name: &str,
) -> anyhow::Result<CellResult> {
    let mut out = CellResult {
        index: record.index,
        stage: record.stage,
        values: record.values.clone(),
        changed: record.changed.clone(),
        requested: record.requested,
        status: record.status,
        error: record.error.clone(),
        dir: record.dir.clone(),
        run_status: loaded.run.as_ref().map(|r| r.report.status),
        problem: loaded.problem.clone(),
        measured: record.status == CellStatus::Measured && loaded.run.is_some(),
        cost: None,
        cost_throughput_pct: None,
        cost_p99_pct: None,
        faults: Vec::new(),
        headline: None,
        stall: None,
        lost_tasks: 0,
        duplicated_tasks: 0,
        setting: record.setting.clone(),
        mismatches: record
            .setting
            .read_back
            .iter()
            .filter(|r| !r.matches)
            .map(|r| {
                format!(
                    "{}: asked for {}, {} said {}",
                    r.key, r.expected, r.source, r.found
                )
            })
            .collect(),
    };
    let Some(run) = &loaded.run else {
        return Ok(out);
    };
    let name = cell_name(record.index);
    let c = compare(baseline_name, baseline_start, &name, run)?;
    if let Some(row) = workload_row(&c, COST_WORKLOAD, &name) {
        out.cost = Some(cost_of(row));
        out.cost_throughput_pct = row.throughput_ratio.map(|r| (1.0 - r) * 100.0);
        out.cost_p99_pct = row.p99_ratio.map(|r| (r - 1.0) * 100.0);
    }
    let rows_of = |w: &str| -> Vec<&FailoverRow> {
        run.report
            .failover
            .iter()
            .filter(|r| r.workload == w)
            .collect()
    };
    for w in &record.workloads {
        if w == COST_WORKLOAD {
            continue;
        }
        let rows = rows_of(w);
        let row = workload_row(&c, w, &name);
        if w == STALL_WORKLOAD {
            if !rows.is_empty() || row.is_some() {
                out.stall = Some(stall_figures(&rows, row));
            }
        } else if !rows.is_empty() || row.is_some() {
            out.faults.push(fault_figures(w, &rows, row));
        }
    }
    Ok(out)
}

/// The reference cell's figures for the workloads `record` takes from it, marked as such.
pub fn take_from_reference(c: &mut CellResult, record: &CellRecord, reference: &CellResult) {
    for w in &record.from_reference {
        if w == STALL_WORKLOAD {
            c.stall = reference.stall.clone().map(|mut s| {
                s.source = Source::Reference;
                s
            });
        } else if w == COST_WORKLOAD {
            c.cost = reference.cost.clone();
            c.cost_throughput_pct = reference.cost_throughput_pct;
            c.cost_p99_pct = reference.cost_p99_pct;
        } else if let Some(f) = reference.fault(w) {
            c.faults.retain(|x| x.workload != *w);
            let mut f = f.clone();
            f.source = Source::Reference;
            c.faults.push(f);
        }
    }
    // In the reference's order (the plan's).
    let at = |w: &str| {
        reference
            .faults
            .iter()
            .position(|f| f.workload == w)
            .unwrap_or(usize::MAX)
    };
    c.faults.sort_by_key(|f| at(&f.workload));
}

/// The figures derived from the others: the headline switch time and the losses.
pub fn finish(c: &mut CellResult) {
    c.headline = c
        .faults
        .iter()
        .filter(|f| f.repetitions > 0)
        .max_by(|a, b| a.rank_ms().total_cmp(&b.rank_ms()))
        .map(|f| Headline {
            workload: f.workload.clone(),
            switch_ms: f.switch_median_ms,
        });
    let stall = c.stall.as_ref();
    c.lost_tasks = c.faults.iter().map(|f| f.lost_total()).sum::<u64>()
        + stall.map_or(0, |s| s.lost + s.result_lost + s.unconfirmed)
        + c.cost.as_ref().map_or(0, |x| x.lost);
    c.duplicated_tasks = c.faults.iter().map(|f| f.duplicated).sum::<u64>()
        + stall.map_or(0, |s| s.duplicated)
        + c.cost.as_ref().map_or(0, |x| x.duplicated);
}
