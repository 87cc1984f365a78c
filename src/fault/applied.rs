//! A fault as it was applied: the injector writes one per repetition, the failover
//! analysis and run.json read them.

use serde::{Deserialize, Serialize};

use super::{FaultKind, Role};

/// A fault as it was applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedFault {
    /// Index of the workload it ran in.
    pub workload: usize,
    /// The role named in the file.
    pub target: Role,
    /// What the role resolved to when the fault fired, e.g. `broker.node[0]`.
    pub resolved: String,
    /// How it was broken.
    pub kind: FaultKind,
    /// Repetition number, from 0.
    pub repetition: u32,
    /// When the fault was applied (signal delivered / stop returned), unix µs.
    pub fault_at_unix_us: i64,
    /// When the target was brought back (restart or SIGCONT returned), unix µs.
    pub restored_at_unix_us: Option<i64>,
    /// When the target answered again after it was brought back (a restarted node once
    /// its readiness probe passed, e.g. RabbitMQ accepting AMQP; a resumed one at once),
    /// unix µs.
    #[serde(default)]
    pub ready_at_unix_us: Option<i64>,
    /// When the whole stack was healthy again, unix µs.
    pub healthy_at_unix_us: Option<i64>,
    /// Why the fault was not applied (role absent on this topology, or an error).
    pub not_applied: Option<String>,
}

#[cfg(test)]
impl AppliedFault {
    /// Test fixture: `target` (resolved to `resolved`) killed at `at` in workload 0,
    /// repetition 0, never brought back.
    pub(crate) fn kill(target: Role, resolved: &str, at: i64) -> Self {
        AppliedFault {
            workload: 0,
            target,
            resolved: resolved.into(),
            kind: FaultKind::Kill,
            repetition: 0,
            fault_at_unix_us: at,
            restored_at_unix_us: None,
            ready_at_unix_us: None,
            healthy_at_unix_us: None,
            not_applied: None,
        }
    }

    /// Test fixture: `broker.primary` (resolved to `broker.node[0]`) killed at `at`,
    /// brought back at `restored`, answering at `ready`, the stack healthy at `healthy`.
    pub(crate) fn broker_kill(at: i64, restored: i64, ready: Option<i64>, healthy: i64) -> Self {
        AppliedFault {
            restored_at_unix_us: Some(restored),
            ready_at_unix_us: ready,
            healthy_at_unix_us: Some(healthy),
            ..Self::kill(Role::BrokerPrimary, "broker.node[0]", at)
        }
    }
}
