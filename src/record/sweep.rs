//! A sweep directory as data (`hab sweep`): its index, `sweep-index.json`, which the
//! command rewrites after every step (so an interrupted sweep says how far it got), and
//! what a cell's run.json says about how the cell was configured ([`CellSetting`]).
//!
//! Layout of a sweep directory:
//! - `sweep-index.json` ([`SweepIndex`]): the plan, every cell's setting, how it was
//!   applied to the live stack and read back, and where its run directory is;
//! - `baseline/<run dir>/`: the baseline's cost phase, at the start and at the end;
//! - `cells/NN/<run dir>/`: cell NN's ordinary run directory (`hab report` works on it);
//! - what the analysis writes from these: `sweep.csv`, `sweep.json`, `recommended.toml`,
//!   `report.md`, `report.html`, `charts/`.

use serde::{Deserialize, Serialize};

use crate::config::sweep::{ApplyKind, FaultScope};

/// The index of a sweep directory.
pub const SWEEP_INDEX_FILE: &str = "sweep-index.json";

/// A sweep directory's name: `<UTC timestamp>-sweep-<topology>`.
pub fn sweep_dir_name(topology: &str) -> String {
    format!("{}-sweep-{topology}", super::names::timestamp_now())
}

/// How far a sweep got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepStatus {
    /// Still going (where every index starts).
    #[default]
    Running,
    /// Every planned cell and both baselines ran.
    Complete,
    /// Stopped by Ctrl-C / SIGTERM; what was measured is kept.
    Interrupted,
    /// Stopped by an error (see `error`).
    Failed,
}

/// How far one cell (or baseline run) got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellStatus {
    /// Not reached yet.
    #[default]
    Planned,
    /// Its run ran to the end (its run.json may still record lost tasks: that is a result).
    Measured,
    /// Stopped by Ctrl-C / SIGTERM while it ran.
    Interrupted,
    /// Its configuration, its read-back or its run failed (see `error`).
    Failed,
}

/// `sweep-index.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepIndex {
    /// hab's version.
    pub hab_version: String,
    /// How far the sweep got.
    pub status: SweepStatus,
    /// The error that stopped it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Start, unix ms.
    pub started_unix_ms: i64,
    /// End, unix ms (absent while running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_unix_ms: Option<i64>,
    /// The swept topology's file, as given.
    pub topology_file: String,
    /// Its name.
    pub topology_name: String,
    /// Its text: `recommended.toml` is this text with the recommended cell's values.
    pub topology_source: String,
    /// The workload file every cell runs.
    pub workload_file: String,
    /// The baseline topology's file.
    pub baseline_file: String,
    /// The baseline's name.
    pub baseline_name: String,
    /// The whole plan as `hab sweep --dry-run --json` prints it (design, estimates,
    /// assumptions).
    pub plan: serde_json::Value,
    /// The varied knobs, in the order of every cell's `values`.
    pub knobs: Vec<KnobRecord>,
    /// The cells, in the order they run (cell 0 is the reference: the topology as written).
    pub cells: Vec<CellRecord>,
    /// The baseline's cost-phase runs: at the start and at the end (drift).
    pub baseline_runs: Vec<BaselineRecord>,
    /// Each bring-up of the swept topology (one per group of cells).
    pub bring_ups: Vec<BringUpRecord>,
    /// Stage 2 of a one-at-a-time design: which pair of knobs it gridded and why, or why
    /// it did not run (absent: the design has no stage 2, or the sweep stopped before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage2: Option<String>,
}

/// One varied knob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnobRecord {
    /// Its topology path, e.g. `proxy.fall`.
    pub key: String,
    /// The topology's own value (the reference cell's), as a topology file writes it.
    pub current: String,
    /// The values swept.
    pub values: Vec<String>,
    /// How a cell changes it on the live stack.
    pub apply: ApplyKind,
    /// Which faults it can affect.
    pub affects: FaultScope,
}

/// One cell: its setting, how it was applied, where its run is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellRecord {
    /// Position in the run order (0 = the reference cell).
    pub index: usize,
    /// Stage of the design (1, or 2 for the grid on the two knobs that moved most).
    pub stage: u8,
    /// Bring-up group: cells of a group share one stack.
    pub group: usize,
    /// The value of each knob, in the order of [`SweepIndex::knobs`].
    pub values: Vec<String>,
    /// Keys of the knobs whose value differs from the reference cell's.
    pub changed: Vec<String>,
    /// Asked for by a sweep file's `[[cell]]`.
    #[serde(default)]
    pub requested: bool,
    /// The faults this cell measures.
    pub scope: FaultScope,
    /// The workloads this cell runs.
    pub workloads: Vec<String>,
    /// Workloads of the plan this cell does not run: its knobs cannot affect them, so
    /// their figures are the reference cell's.
    pub from_reference: Vec<String>,
    /// How the cell was configured on the live stack and what was read back.
    pub setting: CellSetting,
    /// The cell's run directory, relative to the sweep directory (absent until it exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// How far it got.
    pub status: CellStatus,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a cell's stack was configured: kept in the sweep index and in the cell's run.json
/// (`sweep_cell`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CellSetting {
    /// The cell's index in its sweep.
    pub cell: usize,
    /// `key = value` of every varied knob.
    pub values: Vec<(String, String)>,
    /// The stack was brought up for this cell (the first of its group); otherwise it was
    /// reused from the previous cell and reconfigured as `applied` says.
    pub brought_up: bool,
    /// Each change made to the live stack before the cell, in order.
    pub applied: Vec<AppliedRecord>,
    /// Every live setting read back before measuring (also for knobs not changed).
    pub read_back: Vec<ReadBack>,
}

/// One change made to the live stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedRecord {
    /// The knob's key.
    pub key: String,
    /// The new value.
    pub value: String,
    /// How.
    pub how: ApplyKind,
    /// How long the change took, ms (for a reload: until HAProxy was settled again).
    pub took_ms: u64,
}

/// One live setting read back from a server or a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadBack {
    /// The knob's key.
    pub key: String,
    /// Where it was read: `haproxy show servers state`, `sentinel 127.0.0.1:26379
    /// SENTINEL MASTER`, `producer connection`.
    pub source: String,
    /// What the cell asked for, as a topology file writes it.
    pub expected: String,
    /// What the server said, in its own unit (`250` ms, `down-after-milliseconds 1000`).
    pub found: String,
    /// Whether `found` is `expected`.
    pub matches: bool,
}

/// One run of the baseline's cost phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineRecord {
    /// `start` or `end`.
    pub when: String,
    /// The run directory, relative to the sweep directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<String>,
    /// How far it got.
    pub status: CellStatus,
    /// Why it failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One bring-up of the swept topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BringUpRecord {
    /// The group of cells it served.
    pub group: usize,
    /// The first cell of the group.
    pub first_cell: usize,
    /// Bring-up, ms.
    pub bringup_ms: u64,
}

impl SweepIndex {
    /// Reads `sweep-index.json` from a sweep directory.
    pub fn read(dir: &std::path::Path) -> anyhow::Result<SweepIndex> {
        use anyhow::Context;
        let path = dir.join(SWEEP_INDEX_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a sweep index", path.display()))
    }
}
