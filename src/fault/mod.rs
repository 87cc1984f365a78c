//! Faults: what to break (a role, resolved at the moment of the fault), how (kill, pause,
//! graceful stop, each optionally followed by a restart), when (an offset into a workload)
//! and how often (repetitions, each after full health is restored).
//!
//! Faults live in workload files (DESIGN.md §5b): a topology says what is deployed, a
//! workload what is driven and broken, so one scenario runs on every topology. A role that
//! does not exist on a topology (a replica on the standalone stack) is reported as not
//! applicable, never silently skipped.

pub mod applied;
pub mod role;

use serde::{Deserialize, Serialize};

pub use applied::AppliedFault;
pub use role::{ROLE_SYNTAX, Role};

/// How a fault breaks its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL: a crash. Optionally restarted after `restart_after`.
    Kill,
    /// SIGSTOP for `duration`, then SIGCONT: a frozen node (only heartbeats notice).
    Pause,
    /// A graceful stop (SIGTERM and wait). Optionally restarted after `restart_after`.
    Stop,
    /// `SENTINEL FAILOVER <master>`: the Sentinels promote a replica while the old master
    /// stays alive and is demoted (`+convert-to-slave`) later. Only for `backend.master`
    /// on a stack with Sentinels.
    Failover,
    /// A network partition for `duration`: the target is cut off from its peers (a
    /// broker node from the other broker nodes; a Redis node or Sentinel from the other
    /// Redis nodes and the Sentinels) while clients and HAProxy in the root namespace
    /// still reach it, then healed. Needs a topology with `network = "namespaces"` (and
    /// for broker nodes more than one); not for the proxy.
    Partition,
    /// CPU starvation for `duration`: the target's server process is moved into a cgroup
    /// capped at `cpu_percent` % of one core, then back. It keeps running and its
    /// sockets stay open; it answers late, as on an overloaded host.
    Throttle,
}

/// How a killed or stopped Redis master is brought back (`restart_as` in a fault table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartAs {
    /// As a replica of the master the Sentinels name, after they promoted one (safe; the
    /// default).
    #[default]
    Replica,
    /// With its own config, as a master, at `restart_after` (or, when the Sentinels have
    /// not promoted another node by then, right after they do): it comes back empty and
    /// answers `role:master` beside the promoted node until the Sentinels demote it (the
    /// unsafe restart a naive supervisor does).
    Master,
}

impl RestartAs {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartAs::Replica => "replica",
            RestartAs::Master => "master",
        }
    }
}

impl FaultKind {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Stop => "stop",
            FaultKind::Failover => "failover",
            FaultKind::Partition => "partition",
            FaultKind::Throttle => "throttle",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_file_names() {
        assert_eq!(FaultKind::Pause.as_str(), "pause");
        assert_eq!(FaultKind::Failover.as_str(), "failover");
        assert_eq!(FaultKind::Partition.as_str(), "partition");
        assert_eq!(FaultKind::Throttle.as_str(), "throttle");
        assert_eq!(RestartAs::default(), RestartAs::Replica);
        assert_eq!(RestartAs::Master.as_str(), "master");
    }
}
