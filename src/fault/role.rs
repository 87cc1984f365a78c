//! Roles: what a fault targets, named by what a node does (`broker.primary`,
//! `backend.master`, `sentinel[1]`, …), resolved on the running stack at the moment of
//! the fault (local stack or external).

use std::fmt;
use std::str::FromStr;

/// A node named by what it does, resolved on the running stack when the fault fires
/// (`Stack::resolve_role`). Written as in workload files: `broker.primary`,
/// `broker.queue_leader`, `broker.node[1]`, `backend.master`, `backend.replica`,
/// `backend.node[0]`, `sentinel[2]`, `proxy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The broker node clients reach: the one HAProxy routes new connections to (the UP
    /// non-backup server, else the first UP backup); node 0 without a proxy; under
    /// client-side failover (`clients.broker = "nodes"`) the node the producer is on.
    BrokerPrimary,
    /// The node holding the `celery` queue's leader (quorum) or master (classic).
    BrokerQueueLeader,
    /// Broker node `i` (0-based, in start order).
    BrokerNode(usize),
    /// The Redis master the Sentinels name now (node 0 without Sentinels).
    BackendMaster,
    /// A replica of the current master (the first live one).
    BackendReplica,
    /// Redis data node `i` (0-based; node 0 was the first master).
    BackendNode(usize),
    /// Sentinel `i` (0-based).
    Sentinel(usize),
    /// HAProxy.
    Proxy,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::BrokerPrimary => write!(f, "broker.primary"),
            Role::BrokerQueueLeader => write!(f, "broker.queue_leader"),
            Role::BrokerNode(i) => write!(f, "broker.node[{i}]"),
            Role::BackendMaster => write!(f, "backend.master"),
            Role::BackendReplica => write!(f, "backend.replica"),
            Role::BackendNode(i) => write!(f, "backend.node[{i}]"),
            Role::Sentinel(i) => write!(f, "sentinel[{i}]"),
            Role::Proxy => write!(f, "proxy"),
        }
    }
}

/// The roles as written, for error messages.
pub const ROLE_SYNTAX: &str = "broker.primary, broker.queue_leader, broker.node[i], \
    backend.master, backend.replica, backend.node[i], sentinel[i] or proxy";

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        let indexed = |prefix: &str| -> Option<Result<usize, String>> {
            let rest = s
                .strip_prefix(prefix)?
                .strip_prefix('[')?
                .strip_suffix(']')?;
            Some(
                rest.parse()
                    .map_err(|_| format!("{s:?}: {rest:?} is not a node index (0, 1, …)")),
            )
        };
        Ok(match s {
            "broker.primary" => Role::BrokerPrimary,
            "broker.queue_leader" => Role::BrokerQueueLeader,
            "backend.master" => Role::BackendMaster,
            "backend.replica" => Role::BackendReplica,
            "proxy" => Role::Proxy,
            _ => {
                if let Some(i) = indexed("broker.node") {
                    Role::BrokerNode(i?)
                } else if let Some(i) = indexed("backend.node") {
                    Role::BackendNode(i?)
                } else if let Some(i) = indexed("sentinel") {
                    Role::Sentinel(i?)
                } else {
                    return Err(format!("unknown role {s:?}; roles are {ROLE_SYNTAX}"));
                }
            }
        })
    }
}

impl serde::Serialize for Role {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Role {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print_the_same() {
        for s in [
            "broker.primary",
            "broker.queue_leader",
            "broker.node[2]",
            "backend.master",
            "backend.replica",
            "backend.node[0]",
            "sentinel[1]",
            "proxy",
        ] {
            let role: Role = s.parse().unwrap();
            assert_eq!(role.to_string(), s);
        }
        assert_eq!("sentinel[10]".parse(), Ok(Role::Sentinel(10)));
        let e = "broker.leader".parse::<Role>().unwrap_err();
        assert!(
            e.contains("unknown role \"broker.leader\"") && e.contains("broker.primary"),
            "{e}"
        );
        let e = "broker.node[x]".parse::<Role>().unwrap_err();
        assert!(e.contains("\"x\" is not a node index"), "{e}");
        assert!("sentinel".parse::<Role>().is_err());
        assert!("sentinel[1".parse::<Role>().is_err());
        let r: Role = serde_json::from_str("\"backend.master\"").unwrap();
        assert_eq!(r, Role::BackendMaster);
        assert_eq!(
            serde_json::to_string(&Role::BrokerNode(1)).unwrap(),
            "\"broker.node[1]\""
        );
        assert!(serde_json::from_str::<Role>("\"nope\"").is_err());
    }
}
