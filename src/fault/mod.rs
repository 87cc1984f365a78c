//! Faults: what to break (a role, resolved at the moment of the fault), how (kill, pause,
//! graceful stop, each optionally followed by a restart), when (an offset into a workload)
//! and how often (repetitions, each after full health is restored).
//!
//! Faults live in workload files (DESIGN.md §5b): a topology says what is deployed, a
//! workload what is driven and broken, so one scenario runs on every topology. A role that
//! does not exist on a topology (a replica on the standalone stack) is reported as not
//! applicable, never silently skipped.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A part of the stack named by what it does, resolved when the fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The broker node clients reach: the one HAProxy routes to (node 0 without a proxy).
    BrokerPrimary,
    /// The node leading the task queue (quorum queue leader / mirrored queue master).
    BrokerQueueLeader,
    /// Broker node `i` (0-based).
    BrokerNode(usize),
    /// The current Redis master (asked of the Sentinels).
    BackendMaster,
    /// A replica of the current Redis master.
    BackendReplica,
    /// Sentinel `i` (0-based).
    Sentinel(usize),
    /// The HAProxy process.
    Proxy,
}

/// The role names a file may use, for error messages.
pub const ROLE_NAMES: &str = "broker.primary, broker.queue_leader, broker.node[i], \
     backend.master, backend.replica, sentinel[i], proxy";

fn indexed(s: &str, prefix: &str) -> Option<Result<usize, String>> {
    let rest = s.strip_prefix(prefix)?.strip_prefix('[')?;
    let inner = rest.strip_suffix(']')?;
    Some(
        inner.parse::<usize>().map_err(|_| {
            format!("{prefix}[{inner}]: the index must be a number, e.g. {prefix}[1]")
        }),
    )
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "broker.primary" => return Ok(Role::BrokerPrimary),
            "broker.queue_leader" => return Ok(Role::BrokerQueueLeader),
            "backend.master" => return Ok(Role::BackendMaster),
            "backend.replica" => return Ok(Role::BackendReplica),
            "proxy" => return Ok(Role::Proxy),
            _ => {}
        }
        if let Some(i) = indexed(s, "broker.node") {
            return i.map(Role::BrokerNode);
        }
        if let Some(i) = indexed(s, "sentinel") {
            return i.map(Role::Sentinel);
        }
        Err(format!("unknown target \"{s}\"; targets are {ROLE_NAMES}"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::BrokerPrimary => f.write_str("broker.primary"),
            Role::BrokerQueueLeader => f.write_str("broker.queue_leader"),
            Role::BrokerNode(i) => write!(f, "broker.node[{i}]"),
            Role::BackendMaster => f.write_str("backend.master"),
            Role::BackendReplica => f.write_str("backend.replica"),
            Role::Sentinel(i) => write!(f, "sentinel[{i}]"),
            Role::Proxy => f.write_str("proxy"),
        }
    }
}

impl Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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
    fn roles_parse_and_print_back() {
        for s in [
            "broker.primary",
            "broker.queue_leader",
            "broker.node[2]",
            "backend.master",
            "backend.replica",
            "sentinel[0]",
            "proxy",
        ] {
            let r: Role = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
        }
        assert_eq!("broker.node[1]".parse::<Role>(), Ok(Role::BrokerNode(1)));
    }

    #[test]
    fn bad_roles_say_what_is_allowed() {
        let e = "broker.leader".parse::<Role>().unwrap_err();
        assert!(
            e.contains("broker.queue_leader") && e.contains("sentinel[i]"),
            "{e}"
        );
        let e = "broker.node[x]".parse::<Role>().unwrap_err();
        assert!(e.contains("must be a number"), "{e}");
        assert!("sentinel".parse::<Role>().is_err());
    }
}
