//! [`StackHandle`]: the stack a run drives, local or external, answering the same
//! questions either way.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Stack, StackDirs, StackError, StackOptions, external, haproxy};
use crate::config::Topology;

/// The stack a run drives: one hab started ([`Stack`]) or one it only talks to
/// ([`external::ExternalStack`]). Run, calibration, observers and the fault injector ask
/// it the same questions either way.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per run, never moved in a loop
pub enum StackHandle {
    /// Servers hab started and owns.
    Local(Stack),
    /// Servers that already run elsewhere.
    External(external::ExternalStack),
}

impl StackHandle {
    /// Starts the topology's servers (local) or checks that its endpoints answer
    /// (external); `dirs.logs` receives the servers' logs or the fault commands' log.
    pub async fn start(topology: &Topology, dirs: &StackDirs) -> Result<StackHandle, StackError> {
        if topology.is_external() {
            external::ExternalStack::connect(topology, &dirs.logs)
                .await
                .map(StackHandle::External)
        } else {
            Stack::start(&StackOptions::from_topology(topology), dirs)
                .await
                .map(StackHandle::Local)
        }
    }

    /// What is being started or reached, for the progress line.
    pub fn describe(topology: &Topology) -> String {
        match &topology.external {
            Some(e) => format!(
                "the external stack {} (broker {}, backend {})",
                topology.name,
                e.broker.as_deref().unwrap_or("node list"),
                e.backend.as_deref().unwrap_or("via Sentinels")
            ),
            None => StackOptions::from_topology(topology).describe(),
        }
    }

    /// The local stack, if hab started it.
    pub fn local(&self) -> Option<&Stack> {
        match self {
            StackHandle::Local(s) => Some(s),
            StackHandle::External(_) => None,
        }
    }

    /// The local stack, mutable (a sweep reconfigures it between cells).
    pub fn local_mut(&mut self) -> Option<&mut Stack> {
        match self {
            StackHandle::Local(s) => Some(s),
            StackHandle::External(_) => None,
        }
    }

    /// The external stack, if hab only talks to it.
    pub fn external(&self) -> Option<&external::ExternalStack> {
        match self {
            StackHandle::Local(_) => None,
            StackHandle::External(s) => Some(s),
        }
    }

    /// Whether hab only talks to this stack.
    pub fn is_external(&self) -> bool {
        matches!(self, StackHandle::External(_))
    }

    /// The server processes running now, by node (none on an external stack: its servers
    /// are not this host's processes).
    pub fn server_pids(&self) -> Vec<(String, i32)> {
        self.local().map(Stack::server_pids).unwrap_or_default()
    }

    /// Time to bring the stack up (local) or to reach it (external), ms.
    pub fn bringup_ms(&self) -> u64 {
        match self {
            StackHandle::Local(s) => s.bringup_ms(),
            StackHandle::External(s) => s.bringup_ms(),
        }
    }

    /// Bring-up phases, ms.
    pub fn bringup_phases_ms(&self) -> &BTreeMap<String, u64> {
        match self {
            StackHandle::Local(s) => s.bringup_phases_ms(),
            StackHandle::External(s) => s.bringup_phases_ms(),
        }
    }

    /// Server versions for run.json.
    pub fn versions(&self) -> &BTreeMap<String, String> {
        match self {
            StackHandle::Local(s) => s.versions(),
            StackHandle::External(s) => s.versions(),
        }
    }

    /// See [`Stack::follow_client_node`].
    pub fn follow_client_node(&mut self, node: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        match self {
            StackHandle::Local(s) => s.follow_client_node(node),
            StackHandle::External(s) => s.follow_client_node(node),
        }
    }

    /// The broker address clients use.
    pub fn client_broker_url(&self, clients: &crate::config::clients::ClientsConfig) -> String {
        match self {
            StackHandle::Local(s) => s.client_broker_url(clients),
            StackHandle::External(s) => s.client_broker_url(clients),
        }
    }

    /// The result backend address clients use.
    pub fn client_backend_url(&self, clients: &crate::config::clients::ClientsConfig) -> String {
        match self {
            StackHandle::Local(s) => s.client_backend_url(clients),
            StackHandle::External(s) => s.client_backend_url(clients),
        }
    }

    /// One AMQP address (setup and calibration connections).
    pub fn broker_url(&self) -> String {
        match self {
            StackHandle::Local(s) => s.broker_url(),
            StackHandle::External(s) => s.broker_url(),
        }
    }

    /// One Redis address (calibration).
    pub fn backend_url(&self) -> String {
        match self {
            StackHandle::Local(s) => s.backend_url(),
            StackHandle::External(s) => s.backend_url(),
        }
    }

    /// HAProxy's stats socket, when there is a proxy hab can watch.
    pub fn proxy_stats(&self) -> Option<haproxy::StatsAddr> {
        match self {
            StackHandle::Local(s) => s
                .proxy()
                .map(|p| haproxy::StatsAddr::Unix(p.stats_socket().to_path_buf())),
            StackHandle::External(s) => s.proxy_stats(),
        }
    }

    /// An external stack's RabbitMQ management API, when its topology lists one: the API
    /// urls, the broker node names and the broker nodes (`broker_node_names`,
    /// `broker_nodes`). `None` for a local stack, whose queue leader is watched with
    /// `rabbitmqctl` after each broker fault instead.
    pub fn management_api(&self) -> Option<(Vec<String>, Vec<String>, Vec<String>)> {
        match self {
            StackHandle::External(e) if !e.management_urls().is_empty() => Some((
                e.management_urls(),
                e.config().broker_node_names.clone(),
                e.config().broker_nodes.clone(),
            )),
            _ => None,
        }
    }

    /// `host:port` of every Sentinel.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        match self {
            StackHandle::Local(s) => s.sentinel_addrs(),
            StackHandle::External(s) => s.sentinel_addrs(),
        }
    }

    /// Polls until the whole stack is healthy, for at most `deadline`.
    pub async fn wait_healthy(&self, deadline: Duration) -> Result<Duration, StackError> {
        match self {
            StackHandle::Local(s) => s.wait_healthy(deadline).await,
            StackHandle::External(s) => s.wait_healthy(deadline).await,
        }
    }

    /// Stops a local stack's servers; an external stack is left as it is.
    pub async fn shutdown(self) {
        match self {
            StackHandle::Local(s) => s.shutdown().await,
            StackHandle::External(_) => {}
        }
    }
}
