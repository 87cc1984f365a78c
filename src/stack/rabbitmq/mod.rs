//! RabbitMQ 3.10 nodes run by hab as plain processes on loopback ports.
//!
//! A [`RabbitBroker`] is a private [`Epmd`](super::epmd::Epmd) plus its [`RabbitNode`]s,
//! which share an [`ErlangEnv`] (epmd port, HOME with the cookie, CLI distribution
//! ports). Each node is
//! `/usr/lib/rabbitmq/bin/rabbitmq-server` (never the `/usr/sbin` wrapper, which `su`s to
//! the rabbitmq user) in its own process group: the `sh` wrapper and its `beam.smp`.
//! Generated config and logs go to `<logs>/rabbitmq-<i>/`; Mnesia and other state to a
//! temporary directory removed at teardown. See `notes/servers.md` for the why of each
//! variable.
//!
//! Several nodes form a cluster: they boot in parallel, then nodes 1..n each run
//! `stop_app`, `join_cluster <node 0>`, `start_app` (explicit joins: ~9.3 s for 3 nodes,
//! peer discovery took 17.4 s). A killed or stopped node is restarted with the same name,
//! ports and Mnesia directory and rejoins by itself. Every `rabbitmqctl` call runs with
//! stdin at /dev/null through `tokio::process`, never blocking an async thread.
//!
//! **In network namespaces** (a topology with `network = "namespaces"` and more than one
//! broker node; [`RabbitOptions::netns`]) each node runs in a namespace of its own (see
//! [`super::netns`]) and listens for AMQP and Erlang distribution on that namespace's
//! address. Its name is an Erlang long name with that address as host part,
//! `hab-<pid>-<broker>-<i>@10.213.x.y` (`RABBITMQ_USE_LONGNAME=true`), so no host name
//! has to resolve anywhere (`/etc/hosts` is shared by every namespace); each namespace
//! has its own [`Epmd`](super::epmd::Epmd) on the same port number, and every
//! `rabbitmqctl` call for a node runs inside that node's namespace (entered on spawn),
//! where it reaches the node even while a partition cuts it off from its peers. A partition then shows
//! `cluster_partition_handling = pause_minority` at work: the cut-off node notices it
//! is alone after `net_ticktime` ([`RabbitOptions::net_ticktime`], Erlang's default
//! 60 s), stops its listeners and waits; after the heal it restarts by itself. On
//! loopback, node names stay `…@localhost` (short names) with one shared epmd.
//!
//! # Layout
//! - `node.rs`: one node: its files, ports and environment, starting and restarting it,
//!   the AMQP readiness probe, versions from its log.
//! - `broker.rs`: the [`RabbitBroker`]: epmd(s), the nodes, clustering, the mirroring
//!   policy, queue placement and health.
//! - `env.rs`: the [`ErlangEnv`] shared by the nodes and RabbitMQ's CLIs, and running the
//!   CLIs in it.
//! - `queues.rs`: what the CLIs say about queues ([`QueueInfo`], `list_queues`,
//!   `quorum_status`), parsed.

use std::path::PathBuf;
use std::time::Duration;

use super::netns::NsPlace;

mod broker;
mod env;
mod node;
mod queues;
#[cfg(test)]
mod tests;

pub use broker::RabbitBroker;
pub use env::{ErlangEnv, run_cli, run_ctl};
pub use node::{
    NodeLayout, RabbitNode, advanced_config, amqp_url, node_name, rabbitmq_conf, versions_from_log,
};
pub use queues::{
    LOCAL_LEADER_EVAL, ListedQueue, QueueInfo, parse_classic_pids, parse_list_queues,
    parse_node_atom, parse_quorum_status, quorum_healthy,
};

/// Debian package that provides RabbitMQ.
const PACKAGE: &str = "rabbitmq-server";

/// The server start script, called directly.
pub const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// The CLI, called directly, with the same [`ErlangEnv`] as the nodes.
pub const RABBITMQCTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// The queue CLI (`quorum_status`), called directly, with the same [`ErlangEnv`].
pub const RABBITMQ_QUEUES: &str = "/usr/lib/rabbitmq/bin/rabbitmq-queues";

/// How long a node may take to shut down after SIGTERM before it is SIGKILLed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How many ports `rabbitmqctl` may choose its own distribution port from.
/// (Each call takes one for its lifetime, so this bounds concurrent calls.)
const CTL_DIST_PORTS: u16 = 8;

/// How long one `rabbitmqctl` call may take (a join waits for Mnesia on the seed node).
const CTL_TIMEOUT: Duration = Duration::from_secs(60);

/// The name of the mirroring policy set for `queue = "mirrored"`.
pub const MIRROR_POLICY: &str = "ha-all";

/// The mirroring policy's definition: every node, synchronised automatically.
pub const MIRROR_POLICY_DEFINITION: &str = r#"{"ha-mode":"all","ha-sync-mode":"automatic"}"#;

/// The queue pattern the mirroring policy applies to (the Celery task queue).
pub const MIRROR_POLICY_PATTERN: &str = "^celery$";

/// How a broker is started.
#[derive(Debug, Clone)]
pub struct RabbitOptions {
    /// Number of nodes; more than one form a cluster.
    pub nodes: u32,
    /// Set the [`MIRROR_POLICY`] (classic queue mirrored to every node) once clustered.
    pub mirror_policy: bool,
    /// How long a node may take from spawn to accepting an AMQP connection; also bounds
    /// the cluster joins.
    pub startup_timeout: Duration,
    /// The server start script.
    pub program: PathBuf,
    /// Network namespaces to run in: node `i` in `netns[i]` (then every node needs one),
    /// with a long name on that address and an epmd of its own; empty = every node on
    /// 127.0.0.1 with short names (`…@localhost`) and one shared epmd.
    pub netns: Vec<NsPlace>,
    /// Erlang `net_ticktime` on every node (whole seconds); `None` = Erlang's 60 s.
    pub net_ticktime: Option<Duration>,
    /// Enable the management plugin (HTTP API on a free port of the node's address).
    pub management: bool,
}

impl Default for RabbitOptions {
    fn default() -> Self {
        RabbitOptions {
            nodes: 1,
            mirror_policy: false,
            startup_timeout: Duration::from_secs(60),
            program: PathBuf::from(RABBITMQ_SERVER),
            netns: Vec::new(),
            net_ticktime: None,
            management: false,
        }
    }
}
