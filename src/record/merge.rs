//! What a merged run's run.json says about its shards (`merged`), written by `hab merge`.

use serde::{Deserialize, Serialize};

use super::{ClockReport, Machine, RunStatus, StackScope};

/// What a merged run's run.json says about its shards (`merged`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeReport {
    /// How many shards the load was split into (all of them are merged).
    pub count: u32,
    /// The shard that applied the faults.
    pub faults_by: u32,
    /// Whether the shards shared one stack or each ran their own (decides which tasks the
    /// failover rows are analysed on).
    pub stack: StackScope,
    /// Every shard, by index.
    pub shards: Vec<MergedShard>,
    /// Task ids found in two shards with identical rows, kept once.
    pub same_task_twice: u64,
    /// Executions of a shard's tasks found only in another shard's side channel (the
    /// shards shared workers): the shard's own files could not count them, the merge
    /// does (its queue wait, service and result delay histograms are then the joined
    /// ledger's).
    #[serde(default)]
    pub executions_from_other_shards: u64,
}

/// One shard of a merged run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergedShard {
    /// Which shard, 1-based.
    pub index: u32,
    /// Its run directory, as given to `hab merge`.
    pub dir: String,
    /// How that run ended.
    pub status: RunStatus,
    /// Its start, unix ms (its host's clock).
    pub started_unix_ms: i64,
    /// Its end, unix ms (its host's clock).
    pub finished_unix_ms: Option<i64>,
    /// Tasks in its tasks.csv.
    pub tasks: u64,
    /// The machine it ran on.
    pub machine: Machine,
    /// Its clocks (its own anchor and its workers'): a shard's stamps are on its own
    /// time line, so comparing two shards' times relies on their hosts' wall clocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockReport>,
}
