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
    /// The instant the shards were told to start (`--start-at`), unix ms; absent when
    /// they started whenever they got there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at_unix_ms: Option<i64>,
    /// The residual start skew of every workload (repetition) the shards recorded their
    /// starts for: how far apart the shards' schedule origins were. Empty for shards made
    /// before they recorded their starts.
    #[serde(default)]
    pub start_skew: Vec<StartSkew>,
}

/// How far apart the shards started one workload (one repetition), by their hosts'
/// clocks (one host: one clock).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartSkew {
    /// The workload's name.
    pub workload: String,
    /// Which repetition, from 1.
    pub repetition: u32,
    /// Latest − earliest of the shards' schedule origins (t0), ms.
    pub skew_ms: f64,
    /// Latest − earliest of the shards' first publishes, ms (a rate schedule shifts shard
    /// I by (I − 1)/rate on purpose; a burst's is the skew plus publish jitter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_publish_skew_ms: Option<f64>,
    /// The shard that started first.
    pub first_shard: u32,
    /// The shard that started last.
    pub last_shard: u32,
    /// How the shards met before it (`none` when they did not try).
    pub sync: super::SyncKind,
    /// What did not go as planned, one line per shard (late for the instant, barrier timed
    /// out or failed); empty when every shard met the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_met: Vec<String>,
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

/// One line per workload for the terminal and the report: `burst: 1.8 ms (shard 2 last,
/// barrier)`.
pub fn skew_lines(skews: &[StartSkew]) -> Vec<String> {
    skews
        .iter()
        .map(|s| {
            let rep = if s.repetition > 1
                || skews
                    .iter()
                    .any(|o| o.workload == s.workload && o.repetition > 1)
            {
                format!(" (repetition {})", s.repetition)
            } else {
                String::new()
            };
            let how = match s.sync {
                super::SyncKind::None => "no --start-at",
                super::SyncKind::StartAt => "--start-at instant",
                super::SyncKind::Barrier => "barrier",
            };
            let mut line = format!(
                "{}{rep}: {:.1} ms (shard {} first, shard {} last; {how})",
                s.workload, s.skew_ms, s.first_shard, s.last_shard
            );
            for n in &s.not_met {
                line.push_str(&format!("; {n}"));
            }
            line
        })
        .collect()
}
