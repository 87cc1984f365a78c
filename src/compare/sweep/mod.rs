//! A sweep's analysis (`hab sweep`, `hab report SWEEP_DIR`): pure functions of a sweep
//! directory read back ([`SweepRuns`]): per cell, the cost of HA against the baseline, each
//! fault's switch time over its repetitions, the false failovers of the stall phase
//! ([`CellResult`]); the Pareto front of the cells and the recommended one with its
//! reasons in words ([`pareto`]); and `recommended.toml`, the swept topology's text with
//! the recommended values ([`recommend`]).
//!
//! Every figure reuses `hab compare`'s definitions: each cell is compared with the
//! baseline's first cost run by [`crate::compare::Comparison::from_runs`] (throughput: the
//! median over the repetitions; p99: the merged latency histogram), and switch time and
//! outage are the failover rows' own.
//!
//! # Layout
//! - this file: the analysis as data ([`SweepAnalysis`]) and [`analyse`];
//! - [`load`]: the sweep directory read back ([`SweepRuns`]);
//! - [`cell`]: one cell's figures ([`CellResult`]);
//! - [`pareto`]: the front, the recommendation and its reasons;
//! - [`recommend`]: writes `recommended.toml`.

pub mod cell;
pub mod load;
pub mod pareto;
pub mod recommend;

use serde::{Deserialize, Serialize};

use crate::record::sweep::{CellStatus, KnobRecord, SweepStatus};

pub use cell::{CellResult, CostFigures, FaultFigures, Source, StallFigures};
pub use load::{LoadedCell, SweepRuns};
pub use pareto::Recommendation;

/// The cost phase of `workloads/sweep.toml`: trivial tasks in a burst, no fault.
pub const COST_WORKLOAD: &str = "cost_trivial";

/// The stall phase of `workloads/sweep.toml`: short pauses of both sides that a node's
/// death detection should ride out.
pub const STALL_WORKLOAD: &str = "stall";

/// The whole analysis of a sweep directory (`sweep.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepAnalysis {
    /// The swept topology's name.
    pub topology_name: String,
    /// Its file, as given to `hab sweep`.
    pub topology_file: String,
    /// The baseline topology's name.
    pub baseline_name: String,
    /// The workload file every cell ran.
    pub workload_file: String,
    /// How far the sweep got.
    pub status: SweepStatus,
    /// What stopped it, if anything did.
    pub error: Option<String>,
    /// The varied knobs, in the order of every cell's values.
    pub knobs: Vec<KnobRecord>,
    /// The baseline's cost phase at the start and the end of the sweep.
    pub baseline: BaselineResult,
    /// Every cell of the plan, measured or not, in run order (cell 0 is the reference).
    pub cells: Vec<CellResult>,
    /// The fault workloads (one fault, K repetitions) of the plan, in plan order.
    pub fault_workloads: Vec<String>,
    /// Cells on the Pareto front (headline switch time and false failovers, cost for
    /// ties), by index.
    pub front: Vec<usize>,
    /// The recommended cell and why (absent when no cell was measured).
    pub recommendation: Option<Recommendation>,
    /// Cells not measured (planned, interrupted, failed, or no run.json to read).
    pub not_measured: Vec<usize>,
    /// Stage 2 of a one-at-a-time design: the pair it gridded and why, or why it did not
    /// run.
    #[serde(default)]
    pub stage2: Option<String>,
}

/// One run of the baseline's cost phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRun {
    /// `start` or `end`.
    pub when: String,
    /// How far it got.
    pub status: CellStatus,
    /// Its run directory, relative to the sweep directory.
    pub dir: Option<String>,
    /// Its cost figures (absent: not measured, or its run.json could not be read).
    pub cost: Option<CostFigures>,
    /// Why there are no figures, when there are none.
    pub problem: Option<String>,
}

/// The baseline: what every cell's cost is measured against (its start run) and how far
/// the machine drifted over the sweep (its end run against its start run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineResult {
    /// The baseline's name.
    pub name: String,
    /// The start run: every cell's cost is against it.
    pub start: Option<BaselineRun>,
    /// The end run.
    pub end: Option<BaselineRun>,
    /// Throughput of the end run against the start run, % (negative: slower at the end).
    pub drift_throughput_pct: Option<f64>,
    /// p99 of the end run against the start run, % (positive: slower at the end).
    pub drift_p99_pct: Option<f64>,
}

impl SweepAnalysis {
    /// The cell of index `i`.
    pub fn cell(&self, i: usize) -> Option<&CellResult> {
        self.cells.iter().find(|c| c.index == i)
    }

    /// The reference cell (cell 0: the topology as written).
    pub fn reference(&self) -> Option<&CellResult> {
        self.cell(0)
    }

    /// `proxy.fall = 1, broker.heartbeat = 1s` for the knobs of cell `c` that differ from
    /// the reference; `the topology as written` for none.
    pub fn setting_text(&self, c: &CellResult) -> String {
        let parts: Vec<String> = self
            .knobs
            .iter()
            .zip(&c.values)
            .filter(|(k, v)| k.current != **v)
            .map(|(k, v)| format!("{} = {v}", k.key))
            .collect();
        if parts.is_empty() {
            "the topology as written".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Analyses a sweep directory read back: every cell's figures, the front and the
/// recommendation.
pub fn analyse(runs: &SweepRuns) -> anyhow::Result<SweepAnalysis> {
    let index = &runs.index;
    let baseline = cell::baseline(runs)?;
    let start_run = runs.baseline_start.run.as_ref();
    let mut cells: Vec<CellResult> = Vec::new();
    for (record, loaded) in index.cells.iter().zip(&runs.cells) {
        cells.push(cell::own_figures(
            record,
            loaded,
            start_run,
            &index.baseline_name,
        )?);
    }
    // Workloads a cell's knobs cannot affect: the reference cell's figures, marked.
    let reference = cells.iter().find(|c| c.index == 0).cloned();
    for (c, record) in cells.iter_mut().zip(&index.cells) {
        if let Some(r) = &reference
            && c.index != 0
        {
            cell::take_from_reference(c, record, r);
        }
        cell::finish(c);
    }
    let fault_workloads = fault_workloads(index, &cells);
    let front = pareto::front(&cells);
    let not_measured = cells
        .iter()
        .filter(|c| !c.measured)
        .map(|c| c.index)
        .collect();
    let mut analysis = SweepAnalysis {
        topology_name: index.topology_name.clone(),
        topology_file: index.topology_file.clone(),
        baseline_name: index.baseline_name.clone(),
        workload_file: index.workload_file.clone(),
        status: index.status,
        error: index.error.clone(),
        knobs: index.knobs.clone(),
        baseline,
        cells,
        fault_workloads,
        front,
        recommendation: None,
        not_measured,
        stage2: index.stage2.clone(),
    };
    analysis.recommendation = pareto::recommend(&analysis);
    Ok(analysis)
}

/// The fault workloads of the plan in plan order: every workload a cell runs or takes
/// from the reference, other than the cost and stall phases.
fn fault_workloads(index: &crate::record::sweep::SweepIndex, cells: &[CellResult]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let names = index
        .cells
        .iter()
        .flat_map(|c| c.workloads.iter().chain(&c.from_reference))
        .chain(
            cells
                .iter()
                .flat_map(|c| c.faults.iter().map(|f| &f.workload)),
        );
    for n in names {
        if n != COST_WORKLOAD && n != STALL_WORKLOAD && !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

#[cfg(test)]
pub mod fixture;
#[cfg(test)]
mod tests;
