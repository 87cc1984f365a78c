//! Faults: what to break (a role, resolved at the moment of the fault), how (kill, pause,
//! graceful stop, each optionally followed by a restart), when (an offset into a workload)
//! and how often (repetitions, each after full health is restored).
//!
//! Faults live in workload files (DESIGN.md §5b): a topology says what is deployed, a
//! workload what is driven and broken, so one scenario runs on every topology. A role that
//! does not exist on a topology (a replica on the standalone stack) is reported as not
//! applicable, never silently skipped.

pub mod injector;

use serde::{Deserialize, Serialize};

/// What a fault targets, by role (`broker.primary`, `backend.master`, `sentinel[1]`, …);
/// defined beside the stack that resolves it.
pub use crate::stack::node::{ROLE_SYNTAX, Role};

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
}

impl FaultKind {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Stop => "stop",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_file_names() {
        assert_eq!(FaultKind::Pause.as_str(), "pause");
    }
}
