//! The knobs a sweep may turn: topology fields by their TOML path, how a cell changes each
//! on a live stack, which faults each can affect, and whether a topology can vary it.

use serde::{Deserialize, Serialize};

use crate::config::Topology;
use crate::config::clients::{BackendAccess, BrokerAccess};
use crate::fault::Role;

/// How a cell changes a knob on a stack that is already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyKind {
    /// Write a new `haproxy.cfg` and reload HAProxy seamlessly (`server-state-file`, so
    /// servers keep their UP/DOWN state); read back with `show servers state`.
    ProxyReload,
    /// `SENTINEL SET <master> <option> <value>` on every Sentinel; read back with
    /// `SENTINEL MASTER`.
    SentinelSet,
    /// `CONFIG SET` on every Redis data node; read back with `CONFIG GET`.
    RedisConfigSet,
    /// Restart the workers and reconnect the producer with the new client settings; read
    /// back from the connection (e.g. the negotiated heartbeat).
    ReconnectClients,
    /// Stop the stack and bring it up anew (queue type, node counts): cells sharing these
    /// values are grouped so that each is brought up once.
    BringUp,
}

impl ApplyKind {
    /// How the change is made, in words for the printed plan.
    pub fn describe(self) -> &'static str {
        match self {
            ApplyKind::ProxyReload => "HAProxy reload",
            ApplyKind::SentinelSet => "SENTINEL SET",
            ApplyKind::RedisConfigSet => "Redis CONFIG SET",
            ApplyKind::ReconnectClients => "reconnect clients",
            ApplyKind::BringUp => "bring the stack up anew",
        }
    }
}

/// Which faults a knob can change the outcome of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultScope {
    /// Faults of broker nodes (`broker.*` targets).
    Broker,
    /// Faults of Redis data nodes and Sentinels (`backend.*`, `sentinel[i]` targets).
    Backend,
    /// Both sides (HAProxy sits in front of both; a fault of the proxy itself).
    Both,
}

impl FaultScope {
    /// The side a fault target belongs to.
    pub fn of_role(role: Role) -> FaultScope {
        match role {
            Role::BrokerPrimary | Role::BrokerQueueLeader | Role::BrokerNode(_) => {
                FaultScope::Broker
            }
            Role::BackendMaster
            | Role::BackendReplica
            | Role::BackendNode(_)
            | Role::Sentinel(_) => FaultScope::Backend,
            Role::Proxy => FaultScope::Both,
        }
    }

    /// The union of two scopes.
    pub fn union(self, other: FaultScope) -> FaultScope {
        if self == other {
            self
        } else {
            FaultScope::Both
        }
    }

    /// Whether a fault of side `other` is within this scope.
    pub fn covers(self, other: FaultScope) -> bool {
        self == FaultScope::Both || self == other
    }

    /// In words: `broker`, `backend` or `broker+backend`.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultScope::Broker => "broker",
            FaultScope::Backend => "backend",
            FaultScope::Both => "broker+backend",
        }
    }
}

/// The TOML type of a knob's values, to read `--vary` text into the right type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// A duration string such as `"250ms"`.
    Duration,
    /// A whole number.
    Whole,
    /// One word of a fixed set (an enum such as `quorum`); serde names the allowed ones.
    Word,
    /// `true` or `false`.
    Flag,
}

impl ValueKind {
    /// What a value looks like, for error messages and the catalogue.
    pub fn example(self) -> &'static str {
        match self {
            ValueKind::Duration => "a duration such as 250ms, 2s",
            ValueKind::Whole => "a whole number",
            ValueKind::Word => "a word",
            ValueKind::Flag => "true or false",
        }
    }
}

/// What a topology needs for a knob to be variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Needs {
    /// Nothing beyond the topology itself.
    Nothing,
    /// A `[proxy]` section (HAProxy).
    Proxy,
    /// Sentinels (`backend.sentinels >= 1`).
    Sentinels,
    /// At least one Redis replica (`backend.replicas >= 1`).
    Replica,
    /// hab's own workers (a Celery worker takes no such setting from hab).
    HabWorkers,
}

/// One topology field a sweep may vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Knob {
    /// The TOML path in a topology file, e.g. `proxy.fall`.
    pub key: &'static str,
    /// The type of its values.
    pub value: ValueKind,
    /// How a cell changes it on a live stack.
    pub apply: ApplyKind,
    /// Which faults it can affect: a cell measures only those.
    pub scope: FaultScope,
    /// What the topology needs for the knob to do anything.
    pub needs: Needs,
}

const fn knob(
    key: &'static str,
    value: ValueKind,
    apply: ApplyKind,
    scope: FaultScope,
    needs: Needs,
) -> Knob {
    Knob {
        key,
        value,
        apply,
        scope,
        needs,
    }
}

use ApplyKind::{BringUp, ProxyReload, ReconnectClients, RedisConfigSet, SentinelSet};
use FaultScope::{Backend, Both, Broker};
use ValueKind::{Duration as Dur, Flag, Whole, Word};

/// Every knob a sweep may vary, by topology path.
#[rustfmt::skip]
pub const KNOBS: &[Knob] = &[
    knob("proxy.check_interval",             Dur,    ProxyReload,       Both,     Needs::Proxy),
    knob("proxy.fall",                       Whole,  ProxyReload,       Both,     Needs::Proxy),
    knob("proxy.rise",                       Whole,  ProxyReload,       Both,     Needs::Proxy),
    knob("proxy.timeout_connect",            Dur,    ProxyReload,       Both,     Needs::Proxy),
    knob("proxy.timeout_client",             Dur,    ProxyReload,       Both,     Needs::Proxy),
    knob("proxy.timeout_server",             Dur,    ProxyReload,       Both,     Needs::Proxy),
    knob("proxy.observe_layer4",             Flag,   ProxyReload,       Both,     Needs::Proxy),
    knob("proxy.fail_back",                  Flag,   ProxyReload,       Broker,   Needs::Proxy),
    knob("proxy.backend_shutdown_sessions",  Flag,   ProxyReload,       Backend,  Needs::Proxy),
    knob("proxy.master_min_uptime",          Dur,    ProxyReload,       Backend,  Needs::Proxy),
    knob("broker.heartbeat",                 Dur,    ReconnectClients,  Broker,   Needs::Nothing),
    knob("broker.queue",                     Word,   BringUp,           Broker,   Needs::Nothing),
    knob("broker.nodes",                     Whole,  BringUp,           Broker,   Needs::Nothing),
    knob("backend.down_after",               Dur,    SentinelSet,       Backend,  Needs::Sentinels),
    knob("backend.failover_timeout",         Dur,    SentinelSet,       Backend,  Needs::Sentinels),
    knob("backend.sentinel_quorum",          Whole,  SentinelSet,       Backend,  Needs::Sentinels),
    knob("backend.min_replicas_to_write",    Whole,  RedisConfigSet,    Backend,  Needs::Replica),
    knob("backend.min_replicas_max_lag",     Dur,    RedisConfigSet,    Backend,  Needs::Replica),
    knob("backend.keepalive",                Dur,    ReconnectClients,  Backend,  Needs::HabWorkers),
    knob("backend.replicas",                 Whole,  BringUp,           Backend,  Needs::Nothing),
    knob("backend.sentinels",                Whole,  BringUp,           Backend,  Needs::Replica),
    knob("clients.broker",                   Word,   ReconnectClients,  Broker,   Needs::Nothing),
    knob("clients.backend",                  Word,   ReconnectClients,  Backend,  Needs::Nothing),
    knob("workers.acks",                     Word,   ReconnectClients,  Broker,   Needs::Nothing),
    knob("workers.prefetch_multiplier",      Whole,  ReconnectClients,  Broker,   Needs::Nothing),
];

/// The knob with this key, if any.
pub fn find(key: &str) -> Option<&'static Knob> {
    KNOBS.iter().find(|k| k.key == key)
}

/// Every key, comma-separated, for error messages.
pub fn keys() -> String {
    KNOBS.iter().map(|k| k.key).collect::<Vec<_>>().join(", ")
}

impl Knob {
    /// Why `topology` cannot vary this knob (None: it can).
    pub fn unavailable(&self, topology: &Topology) -> Option<String> {
        let name = &topology.name;
        if topology.is_external() && self.apply != ReconnectClients {
            return Some(format!(
                "topology {name} is an external stack: hab can only reconnect its own clients \
                 there, not {} (vary a client setting, e.g. broker.heartbeat)",
                self.apply.describe()
            ));
        }
        let b = &topology.backend;
        match self.needs {
            Needs::Nothing => None,
            Needs::Proxy if topology.proxy.is_none() => Some(format!(
                "topology {name} has no [proxy]: there is no HAProxy whose {} could change",
                self.key
            )),
            Needs::Sentinels if b.sentinels == 0 => Some(format!(
                "topology {name} has no Sentinels (backend.sentinels = 0): nothing reads {}",
                self.key
            )),
            Needs::Replica if b.replicas == 0 => Some(format!(
                "topology {name} has no Redis replica (backend.replicas = 0): {} needs one",
                self.key
            )),
            Needs::HabWorkers if topology.workers.kind != crate::config::WorkerKind::Hab => {
                Some(format!(
                    "topology {name} runs Celery workers: only hab's own worker takes {}",
                    self.key
                ))
            }
            _ => self.client_path_unused(topology),
        }
    }

    /// A client setting the clients of this topology never use.
    fn client_path_unused(&self, topology: &Topology) -> Option<String> {
        let c = &topology.clients;
        let proxied = topology.proxy.is_some();
        match self.key {
            // Clients that ask the Sentinels bypass HAProxy for Redis: its Redis-side
            // options change nothing they see.
            "proxy.backend_shutdown_sessions" | "proxy.master_min_uptime"
                if proxied && c.backend == BackendAccess::Sentinel =>
            {
                Some(format!(
                    "topology {} has clients.backend = \"sentinel\": clients do not reach Redis \
                     through HAProxy, so {} changes nothing",
                    topology.name, self.key
                ))
            }
            "proxy.fail_back" if proxied && c.broker == BrokerAccess::Nodes => Some(format!(
                "topology {} has clients.broker = \"nodes\": clients do not reach the broker \
                 through HAProxy, so {} changes nothing",
                topology.name, self.key
            )),
            _ => None,
        }
    }
}
