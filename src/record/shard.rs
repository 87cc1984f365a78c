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
