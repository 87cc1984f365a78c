//! What a shard's run.json says about the shard (`shard`), with what `hab merge` needs to
//! analyse failover again on the merged ledger. The split itself is [`crate::load::shard`]'s.

use serde::{Deserialize, Serialize};

use crate::event::ServerEvent;
use crate::fault::AppliedFault;

/// Whether the shards of a run drove one stack or each its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StackScope {
    /// Each shard started its own local stack: only shard 1's stack had the faults, so
    /// failover rows are analysed on shard 1's tasks and client events.
    #[default]
    Local,
    /// The shards drove one stack (an external stack every shard points at): shard 1's
    /// faults hit every shard's tasks, so failover rows are analysed on all of them.
    Shared,
}

/// What a shard's run.json says about the shard (`shard` in run.json), with what
/// `hab merge` needs to analyse failover again on the merged ledger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardReport {
    /// Which shard, 1-based.
    pub index: u32,
    /// How many shards the load was split into.
    pub count: u32,
    /// The shard that applies the plan's faults (always 1); the others record here that
    /// the plan's faults belong to it.
    pub faults_by: u32,
    /// Whether the shards share one stack or each run their own.
    pub stack: StackScope,
    /// Every fault this shard applied, as applied (empty on shards other than 1).
    #[serde(default)]
    pub faults: Vec<AppliedFault>,
    /// Every event this shard's server-side observers saw (Sentinel, HAProxy).
    #[serde(default)]
    pub server_events: Vec<ServerEvent>,
    /// Tasks of this shard whose result hab saw but whose result key the backend no
    /// longer held at the end (read only for plans with faults), as UUID text; `None`
    /// when not read.
    #[serde(default)]
    pub result_vanished_ids: Option<Vec<String>>,
    /// The instant the shards were told to start their first workload (`--start-at`,
    /// `--start-in`), unix ms; absent when each shard started whenever it got there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at_unix_ms: Option<i64>,
    /// How each workload (each repetition) of this shard started: its schedule's origin
    /// and how the shard met the others first. `hab merge` measures the residual start
    /// skew from these. Empty in runs made before it was recorded.
    #[serde(default)]
    pub starts: Vec<WorkloadStart>,
}

/// How a shard met the other shards before a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// Nothing: no `--start-at`, the shard started when it got there.
    None,
    /// The first workload: the shard waited for the `--start-at` instant.
    StartAt,
    /// A later workload: the shards met at a barrier on the shared stack's Redis.
    Barrier,
}

/// What came of the meeting before a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// Nothing to meet (no `--start-at`).
    None,
    /// The instant came (or every shard arrived at the barrier) and the shard started.
    Met,
    /// The instant had passed when the shard got there: it started at once, `late_ms`
    /// after it.
    Late,
    /// Not every shard arrived within the barrier timeout: the shard started anyway.
    TimedOut,
    /// The barrier could not be kept (Redis unreachable or failing): the shard started
    /// at once; `error` says why.
    Failed,
}

/// One workload's (one repetition's) start on one shard (run.json `shard.starts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadStart {
    /// The workload's name.
    pub workload: String,
    /// Which repetition, from 1.
    pub repetition: u32,
    /// How the shard met the others.
    pub sync: SyncKind,
    /// What came of it.
    pub outcome: SyncOutcome,
    /// How long the shard waited (for the instant, or at the barrier), ms.
    pub waited_ms: f64,
    /// How late the shard got to the `--start-at` instant, ms (outcome `late`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<f64>,
    /// Shards at the barrier when this one left it (N when met; fewer on a timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrived: Option<u64>,
    /// Why the barrier failed (outcome `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The schedule's origin (t0: the first task's intended start on an unsharded run),
    /// unix µs on this shard's clock: the instant the shards are meant to share.
    pub t0_unix_us: i64,
    /// When this shard published its first task of the repetition, unix µs (absent when
    /// it published none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_published_unix_us: Option<i64>,
}

/// The scope of a topology's stack for sharded runs: an external stack (`[external]`)
/// is the one every shard drives, so shard 1's faults concern every shard's tasks; a
/// local one is each shard's own.
pub fn stack_scope(topology: &crate::config::Topology) -> StackScope {
    if topology.is_external() {
        StackScope::Shared
    } else {
        StackScope::Local
    }
}
