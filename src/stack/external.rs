//! An external stack: servers hab did not start, reached at the addresses of a
//! topology's `[external]`, broken by the shell commands it names.
//!
//! [`ExternalStack`] answers what a run asks of any stack — the addresses clients use,
//! where the observers look (Sentinels, HAProxy's stats), which node plays a role now,
//! how to break and restore it, whether the whole stack is healthy — so the run, the
//! fault injector and the observers do not care whether hab started the servers
//! ([`super::StackHandle`]).
//!
//! - **Roles** resolve from what the servers say: `backend.master` from the Sentinels
//!   (`SENTINEL get-master-addr-by-name`, matched to `backend_nodes` by address),
//!   `broker.primary` from HAProxy's stats (the server it routes to, matched to
//!   `broker_nodes` by address) or, under client-side failover, the node the producer is
//!   on; `broker.queue_leader` from the management API (`external.management`), matched
//!   by node name (without it the role is not applicable: name `broker.node[i]`) — the
//!   fault injector asks that one, the stack knows no observer.
//! - **Fault commands** (`commands.rs`) run through `sh -c` in their own process group, with the
//!   placeholders filled in ([`crate::config::external::expand`]), bounded by
//!   `command_timeout` (the group is killed when it runs over); its time is what it
//!   printed as `at_unix_us=N`, else when it started ([`command_time`]). Each one, its exit
//!   status and its output (credentials masked) go to `logs/external-commands.log`. A
//!   command that fails or hangs is an error that stops the run; the run keeps what it
//!   measured.
//! - **Health**: the broker address accepts an AMQP connection, the Redis address
//!   answers `PING` (with Sentinels: they name a master and it says `role:master`).
//!   After a revert the node's own `health` command is polled first.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod commands;

pub use commands::{CommandOutcome, CommandPhase, command_time, placeholders, run_command};

use super::StackError;
use super::haproxy::StatsAddr;
use super::node::NodeRef;
use crate::clock::now_unix_us;
use crate::config::Topology;
use crate::config::clients::{BackendAccess, BrokerAccess, ClientsConfig};
use crate::config::external::{ExternalConfig, FaultCommands, NodeKind, expand, split_host_port};
use crate::fault::FaultKind;
use crate::fault::Role;

/// A stack hab talks to but did not start.
#[derive(Debug)]
pub struct ExternalStack {
    cfg: ExternalConfig,
    master_name: String,
    clients: ClientsConfig,
    /// `logs/external-commands.log` of the run.
    command_log: PathBuf,
    /// Time until the endpoints first answered, ms.
    bringup_ms: u64,
    phases: std::collections::BTreeMap<String, u64>,
    versions: std::collections::BTreeMap<String, String>,
    /// Client-side failover: the broker node the producer is on.
    client_node: Option<Arc<AtomicUsize>>,
}

/// The kind of node a [`NodeRef`] is.
pub fn node_kind(node: NodeRef) -> NodeKind {
    match node {
        NodeRef::Broker(_) => NodeKind::Broker,
        NodeRef::BackendData(_) => NodeKind::Backend,
        NodeRef::Sentinel(_) => NodeKind::Sentinel,
        NodeRef::Proxy => NodeKind::Proxy,
    }
}

/// Why `broker.queue_leader` is not applicable on an external stack without
/// `external.management`.
pub const NO_MANAGEMENT: &str = "finding the queue leader needs the RabbitMQ management API: list it in external.management, or name the node (broker.node[i])";

/// [`StackError::NotApplicable`] for `role`, with `reason`.
pub fn not_applicable(role: Role, reason: impl Into<String>) -> StackError {
    StackError::NotApplicable {
        role: role.to_string(),
        reason: reason.into(),
    }
}

/// `host:port` of a URL (default port by scheme), for matching and placeholders.
pub fn url_host_port(url: &str) -> Option<(String, u16)> {
    let u = url::Url::parse(url).ok()?;
    let host = u
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = u.port_or_known_default().or(match u.scheme() {
        "amqp" => Some(5672),
        "amqps" => Some(5671),
        "redis" | "rediss" => Some(6379),
        _ => None,
    })?;
    Some((host, port))
}

/// Whether `a` and `b` name the same endpoint: equal, or resolving to a common address.
async fn same_endpoint(a: &(String, u16), b: &(String, u16)) -> bool {
    if a.1 != b.1 {
        return false;
    }
    if a.0.eq_ignore_ascii_case(&b.0) {
        return true;
    }
    let resolve = |h: &(String, u16)| {
        let target = format!("{}:{}", h.0, h.1);
        async move {
            tokio::net::lookup_host(target)
                .await
                .map(|it| it.map(|s| s.ip()).collect::<Vec<_>>())
                .unwrap_or_default()
        }
    };
    let (x, y) = tokio::join!(resolve(a), resolve(b));
    x.iter().any(|ip| y.contains(ip))
}

impl ExternalStack {
    /// Checks that the stack answers (broker and backend addresses) and returns it;
    /// `logs` is the run's logs directory.
    pub async fn connect(topology: &Topology, logs: &Path) -> Result<ExternalStack, StackError> {
        let cfg = topology
            .external
            .clone()
            .ok_or_else(|| StackError::Unsupported("not an external topology".into()))?;
        std::fs::create_dir_all(logs).map_err(|source| StackError::Io {
            what: format!("creating {}", logs.display()),
            source,
        })?;
        let started = Instant::now();
        let mut stack = ExternalStack {
            cfg,
            master_name: topology.backend.master_name.clone(),
            clients: topology.clients,
            command_log: logs.join("external-commands.log"),
            bringup_ms: 0,
            phases: Default::default(),
            versions: Default::default(),
            client_node: None,
        };
        // The endpoints must answer before anything is measured; a wrong address fails
        // here, with what it said.
        stack.health().await.map_err(|detail| StackError::Control {
            what: "reaching the external stack".into(),
            detail,
        })?;
        stack.bringup_ms = started.elapsed().as_millis() as u64;
        stack
            .phases
            .insert("external_reachable".into(), stack.bringup_ms);
        stack.phases.insert("total".into(), stack.bringup_ms);
        if let Ok(v) = stack.redis_version().await {
            stack.versions.insert("redis".into(), v);
        }
        stack.versions.insert("stack".into(), "external".into());
        Ok(stack)
    }

    /// The `[external]` section.
    pub fn config(&self) -> &ExternalConfig {
        &self.cfg
    }

    /// Time until the endpoints first answered, ms.
    pub fn bringup_ms(&self) -> u64 {
        self.bringup_ms
    }

    /// Bring-up phases, ms (`external_reachable`, `total`).
    pub fn bringup_phases_ms(&self) -> &std::collections::BTreeMap<String, u64> {
        &self.phases
    }

    /// What hab could learn of the servers' versions (`redis`; `stack` = `external`).
    pub fn versions(&self) -> &std::collections::BTreeMap<String, String> {
        &self.versions
    }

    /// See [`super::Stack::follow_client_node`].
    pub fn follow_client_node(&mut self, node: Arc<AtomicUsize>) {
        self.client_node = Some(node);
    }

    /// The broker address clients use: `external.broker`, or the node list
    /// (`;`-separated) with `clients.broker = "nodes"` or without `external.broker`.
    pub fn client_broker_url(&self, clients: &ClientsConfig) -> String {
        match (&self.cfg.broker, clients.broker) {
            (Some(url), BrokerAccess::Proxy) => url.clone(),
            _ => self.cfg.broker_nodes.join(";"),
        }
    }

    /// The Redis address clients use: `external.backend`, or the Sentinels
    /// (`sentinel://…?master_name=NAME`) with `clients.backend = "sentinel"` or without
    /// `external.backend`.
    pub fn client_backend_url(&self, clients: &ClientsConfig) -> String {
        match (&self.cfg.backend, clients.backend) {
            (Some(url), BackendAccess::Proxy) => url.clone(),
            _ => crate::client_failover::SentinelAddress {
                sentinels: self.cfg.sentinels.clone(),
                master_name: self.master_name.clone(),
            }
            .to_url(),
        }
    }

    /// The single AMQP address for setup connections: the client address, else node 0.
    pub fn broker_url(&self) -> String {
        self.cfg
            .broker
            .clone()
            .or_else(|| self.cfg.broker_nodes.first().cloned())
            .unwrap_or_default()
    }

    /// The client Redis address (see [`client_backend_url`](Self::client_backend_url)).
    pub fn backend_url(&self) -> String {
        self.client_backend_url(&self.clients)
    }

    /// HAProxy's stats, when the topology names them.
    pub fn proxy_stats(&self) -> Option<StatsAddr> {
        self.cfg.haproxy_stats.as_deref().map(StatsAddr::parse)
    }

    /// `host:port` of every Sentinel.
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.cfg.sentinels.clone()
    }

    /// The management API addresses (empty: no queue-leader observer).
    pub fn management_urls(&self) -> Vec<String> {
        self.cfg.management.clone()
    }

    /// The node that plays `role` now (see the module docs). `broker.queue_leader` is
    /// not resolved here: the management API that knows it is asked by the fault injector.
    pub async fn resolve_role(&self, role: Role) -> Result<NodeRef, StackError> {
        let brokers = self.cfg.broker_nodes.len();
        let data = self.cfg.backend_nodes.len();
        let index = |i: usize, len: usize, what: &str| {
            if i < len {
                Ok(i)
            } else {
                Err(not_applicable(
                    role,
                    format!("this external stack lists {len} {what} (0..{len})"),
                ))
            }
        };
        match role {
            Role::BrokerNode(i) => Ok(NodeRef::Broker(index(i, brokers, "broker_nodes")?)),
            Role::BackendNode(i) => Ok(NodeRef::BackendData(index(i, data, "backend_nodes")?)),
            Role::Sentinel(i) => Ok(NodeRef::Sentinel(index(
                i,
                self.cfg.sentinels.len(),
                "sentinels",
            )?)),
            Role::Proxy => Ok(NodeRef::Proxy),
            // The queue's leader is known to the management API, which the fault injector
            // asks (the stack does not know the observers).
            Role::BrokerQueueLeader => Err(match self.cfg.management.is_empty() {
                true => not_applicable(role, NO_MANAGEMENT),
                false => StackError::Unsupported(
                    "broker.queue_leader of an external stack is resolved through the management API by the fault injector".into(),
                ),
            }),
            Role::BrokerPrimary => self.broker_primary(role).await.map(NodeRef::Broker),
            Role::BackendMaster => self.backend_master(role).await.map(NodeRef::BackendData),
            Role::BackendReplica => {
                let master = self.backend_master(role).await?;
                (0..data)
                    .find(|&i| i != master)
                    .map(NodeRef::BackendData)
                    .ok_or_else(|| {
                        not_applicable(
                            role,
                            "external.backend_nodes lists no node besides the master",
                        )
                    })
            }
        }
    }

    async fn broker_primary(&self, role: Role) -> Result<usize, StackError> {
        if self.cfg.broker_nodes.is_empty() {
            return Err(not_applicable(
                role,
                "external.broker_nodes is empty: hab cannot name the node to break",
            ));
        }
        if let Some(node) = &self.client_node {
            return Ok(node.load(Ordering::Relaxed) % self.cfg.broker_nodes.len());
        }
        let Some(stats) = self.proxy_stats() else {
            if self.cfg.broker_nodes.len() == 1 {
                return Ok(0);
            }
            return Err(not_applicable(
                role,
                "which broker node clients reach is known only from HAProxy's stats: give external.haproxy_stats, or name the node (broker.node[i])",
            ));
        };
        let csv = super::haproxy::stats_command_at(&stats, "show stat")
            .await
            .map_err(|detail| StackError::Control {
                what: "asking HAProxy which broker node it routes to".into(),
                detail,
            })?;
        let states =
            super::haproxy::parse_show_stat(&csv).map_err(|detail| StackError::Control {
                what: "reading HAProxy's stats".into(),
                detail,
            })?;
        let routed = super::haproxy::routed_server(&states, &self.cfg.proxy_broker_backend)
            .ok_or_else(|| StackError::Control {
                what: format!(
                    "finding the server HAProxy backend {:?} routes to",
                    self.cfg.proxy_broker_backend
                ),
                detail: "no server is UP".into(),
            })?;
        let addr =
            server_addr(&csv, &self.cfg.proxy_broker_backend, &routed.server).ok_or_else(|| {
                StackError::Control {
                    what: format!("finding the address of HAProxy server {}", routed.server),
                    detail: "`show stat` has no addr for it".into(),
                }
            })?;
        let addr = split_host_port(&addr).map_err(|detail| StackError::Control {
            what: "reading HAProxy's server address".into(),
            detail,
        })?;
        for (i, url) in self.cfg.broker_nodes.iter().enumerate() {
            if let Some(hp) = url_host_port(url)
                && same_endpoint(&hp, &addr).await
            {
                return Ok(i);
            }
        }
        Err(StackError::Control {
            what: "matching HAProxy's broker server to external.broker_nodes".into(),
            detail: format!("{}:{} is not in the list", addr.0, addr.1),
        })
    }

    async fn backend_master(&self, role: Role) -> Result<usize, StackError> {
        if self.cfg.backend_nodes.is_empty() {
            return Err(not_applicable(
                role,
                "external.backend_nodes is empty: hab cannot name the node to break",
            ));
        }
        if self.cfg.sentinels.is_empty() {
            return Ok(0);
        }
        let (host, port) = self
            .sentinel_master()
            .await
            .map_err(|detail| StackError::Control {
                what: format!("asking the Sentinels for master {:?}", self.master_name),
                detail,
            })?;
        for (i, url) in self.cfg.backend_nodes.iter().enumerate() {
            if let Some(hp) = url_host_port(url)
                && same_endpoint(&hp, &(host.clone(), port)).await
            {
                return Ok(i);
            }
        }
        Err(StackError::Control {
            what: "matching the Sentinels' master to external.backend_nodes".into(),
            detail: format!("{host}:{port} is not in the list"),
        })
    }

    /// The master's address from the first Sentinel that names one.
    async fn sentinel_master(&self) -> Result<(String, u16), String> {
        let mut last = String::from("no Sentinel listed");
        for addr in &self.cfg.sentinels {
            match super::resp::query_at(
                addr,
                &["SENTINEL", "get-master-addr-by-name", &self.master_name],
                crate::credentials::current().sentinel_password.as_deref(),
            )
            .await
            {
                Ok(redis::Value::Array(items)) if items.len() == 2 => {
                    let host = super::resp::text(&items[0]).unwrap_or_default();
                    let port = super::resp::text(&items[1]).and_then(|p| p.parse().ok());
                    if let Some(port) = port {
                        return Ok((host, port));
                    }
                    last = format!("{addr}: unexpected answer {items:?}");
                }
                Ok(redis::Value::Nil) => {
                    last = format!("{addr} does not know master {:?}", self.master_name)
                }
                Ok(other) => last = format!("{addr}: unexpected answer {other:?}"),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn redis_version(&self) -> Result<String, String> {
        let url = match &self.cfg.backend {
            Some(u) => u.clone(),
            None => {
                let (h, p) = self.sentinel_master().await?;
                format!("redis://{h}:{p}/")
            }
        };
        let info = redis_info(&url).await?;
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| v.trim().to_string())
            .ok_or_else(|| "INFO has no redis_version".into())
    }

    /// The endpoint of `node` as (host, port), for placeholders.
    pub fn node_endpoint(&self, node: NodeRef) -> Option<(String, u16)> {
        match node {
            NodeRef::Broker(i) => url_host_port(self.cfg.broker_nodes.get(i)?),
            NodeRef::BackendData(i) => url_host_port(self.cfg.backend_nodes.get(i)?),
            NodeRef::Sentinel(i) => split_host_port(self.cfg.sentinels.get(i)?).ok(),
            NodeRef::Proxy => self
                .cfg
                .broker
                .as_deref()
                .and_then(url_host_port)
                .or_else(|| self.cfg.backend.as_deref().and_then(url_host_port)),
        }
    }

    /// The commands for a fault of `kind` on `node`, or why there are none.
    pub fn commands(&self, node: NodeRef, kind: FaultKind) -> Result<&FaultCommands, String> {
        let nodes = node_kind(node);
        self.cfg.commands_for(nodes, kind).ok_or_else(|| {
            format!(
                "the topology has no [[external.fault]] with nodes = {:?}, kind = {:?}",
                nodes.as_str(),
                kind.as_str()
            )
        })
    }

    /// Runs the `phase` command of a `kind` fault on `node` (resolved from `role`) and
    /// returns the unix µs right after it exited 0. A phase the entry does not have is
    /// `Ok(now)` (nothing to run); a failing or hanging command is an error with its exit
    /// status and output.
    pub async fn run_phase(
        &self,
        phase: CommandPhase,
        role: Role,
        node: NodeRef,
        kind: FaultKind,
        cpu_percent: Option<f64>,
    ) -> Result<i64, StackError> {
        let entry = self.commands(node, kind).map_err(StackError::Unsupported)?;
        let template = match phase {
            CommandPhase::Apply => Some(&entry.apply),
            CommandPhase::Revert => entry.revert.as_ref(),
            CommandPhase::Health => entry.health.as_ref(),
        };
        let Some(template) = template else {
            return Ok(now_unix_us());
        };
        let cmd = expand(
            template,
            &placeholders(role, node, kind, cpu_percent, self.node_endpoint(node)),
        );
        let started_us = now_unix_us();
        let out = run_command(&cmd, self.cfg.command_timeout).await;
        self.log_command(phase, node, &cmd, &out);
        match out {
            CommandOutcome::Exited { code: 0, output } => {
                Ok(command_time(&output, started_us, now_unix_us()))
            }
            other => Err(StackError::Control {
                what: format!("{} command for {node} `{cmd}`", phase.as_str()),
                detail: other.describe(self.cfg.command_timeout),
            }),
        }
    }

    /// Polls the node's `health` command (when its fault entry has one) until it exits 0,
    /// for at most `health_timeout`. A command that hangs past `command_timeout` is an
    /// error; one that exits non-zero is tried again.
    pub async fn wait_node_healthy(
        &self,
        role: Role,
        node: NodeRef,
        kind: FaultKind,
        cpu_percent: Option<f64>,
    ) -> Result<(), StackError> {
        let Ok(entry) = self.commands(node, kind) else {
            return Ok(());
        };
        let Some(template) = &entry.health else {
            return Ok(());
        };
        let cmd = expand(
            template,
            &placeholders(role, node, kind, cpu_percent, self.node_endpoint(node)),
        );
        let started = Instant::now();
        loop {
            let out = run_command(&cmd, self.cfg.command_timeout).await;
            self.log_command(CommandPhase::Health, node, &cmd, &out);
            match out {
                CommandOutcome::Exited { code: 0, .. } => return Ok(()),
                CommandOutcome::Exited { .. } if started.elapsed() < self.cfg.health_timeout => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                other => {
                    return Err(StackError::Control {
                        what: format!("health command for {node} `{cmd}`"),
                        detail: match other {
                            CommandOutcome::Exited { .. } => format!(
                                "still failing after {} s: {}",
                                self.cfg.health_timeout.as_secs(),
                                other.describe(self.cfg.command_timeout)
                            ),
                            _ => other.describe(self.cfg.command_timeout),
                        },
                    });
                }
            }
        }
    }

    fn log_command(&self, phase: CommandPhase, node: NodeRef, cmd: &str, out: &CommandOutcome) {
        let line = format!(
            "{} {} {node} $ {cmd}\n{}\n",
            now_unix_us() / 1000,
            phase.as_str(),
            out.describe(self.cfg.command_timeout)
        );
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.command_log)
        {
            let _ = f.write_all(crate::credentials::mask(&line).as_bytes());
        }
    }

    /// Whether the stack answers: an AMQP connection to the broker address (each node
    /// with client-side failover: any), `PING` on the Redis address (with Sentinels: the
    /// master they name says `role:master`).
    pub async fn health(&self) -> Result<(), String> {
        let broker = async {
            let url = self.client_broker_url(&self.clients);
            let mut last = String::new();
            for u in url.split(';') {
                match tokio::time::timeout(Duration::from_secs(5), amqp_connect(u)).await {
                    Ok(Ok(conn)) => {
                        let _ = conn.close(200, "health check".into()).await;
                        return Ok(());
                    }
                    Ok(Err(e)) => last = format!("{e:#}"),
                    Err(_) => last = format!("no AMQP connection to {u} within 5 s"),
                }
            }
            Err(crate::credentials::mask(&last))
        };
        let backend = async {
            let url = match (&self.cfg.backend, self.clients.backend) {
                (Some(u), BackendAccess::Proxy) => u.clone(),
                _ => {
                    let (h, p) = self.sentinel_master().await?;
                    format!("redis://{h}:{p}/")
                }
            };
            let info = redis_info(&url).await?;
            if !self.cfg.sentinels.is_empty() && !info.lines().any(|l| l.trim() == "role:master") {
                return Err(format!("{url} does not say role:master"));
            }
            Ok(())
        };
        let (b, r) = tokio::join!(broker, backend);
        b.and(r)
    }

    /// Polls [`health`](Self::health) until it passes, for at most `deadline`.
    pub async fn wait_healthy(&self, deadline: Duration) -> Result<Duration, StackError> {
        let started = Instant::now();
        super::process::poll_ready(
            "external stack",
            deadline,
            Duration::from_millis(250),
            || self.health(),
            String::new,
        )
        .await?;
        Ok(started.elapsed())
    }
}

/// One AMQP connection to the broker at `url` as the clients open one (the installed
/// credentials added here only, heartbeat off), named `hab-health` so it shows in
/// RabbitMQ's tools.
async fn amqp_connect(url: &str) -> anyhow::Result<lapin::Connection> {
    use anyhow::Context;
    let full = crate::credentials::amqp_url(url);
    let sep = if full.contains('?') { '&' } else { '?' };
    let props = lapin::ConnectionProperties::default()
        .with_connection_name(lapin::types::LongString::from("hab-health"));
    lapin::Connection::connect(&format!("{full}{sep}heartbeat=0"), props)
        .await
        .with_context(|| format!("cannot connect to the broker at {url}"))
}

/// `INFO` of the Redis server at `url` (credentials added), bounded.
async fn redis_info(url: &str) -> Result<String, String> {
    let run = async {
        let client = redis::Client::open(crate::credentials::redis_url(url))
            .map_err(|e| format!("bad Redis URL {url}: {e}"))?;
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("connect {url}: {e}"))?;
        redis::cmd("INFO")
            .query_async::<String>(&mut con)
            .await
            .map_err(|e| format!("INFO on {url}: {e}"))
    };
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .unwrap_or_else(|_| Err(format!("no answer from {url} within 5 s")))
        .map_err(|e| crate::credentials::mask(&e))
}

/// The `addr` of server `server` in backend `backend` from `show stat` CSV.
pub fn server_addr(csv: &str, backend: &str, server: &str) -> Option<String> {
    let mut lines = csv.lines();
    let header = lines.find(|l| l.starts_with("# "))?;
    let names: Vec<&str> = header[2..].split(',').collect();
    let col = |n: &str| names.iter().position(|x| *x == n);
    let (px, sv, addr) = (col("pxname")?, col("svname")?, col("addr")?);
    lines.find_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        (f.get(px) == Some(&backend) && f.get(sv) == Some(&server))
            .then(|| f.get(addr).map(|a| a.to_string()))
            .flatten()
            .filter(|a| !a.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_come_from_show_stat() {
        let csv = "# pxname,svname,qcur,status,addr\nbroker_nodes,rabbit0,0,UP,127.0.0.1:5673\nbroker_nodes,BACKEND,0,UP,\n";
        assert_eq!(
            server_addr(csv, "broker_nodes", "rabbit0").as_deref(),
            Some("127.0.0.1:5673")
        );
        assert_eq!(server_addr(csv, "broker_nodes", "rabbit1"), None);
    }

    #[test]
    fn url_endpoints_default_their_port_by_scheme() {
        assert_eq!(url_host_port("amqp://h/%2f"), Some(("h".into(), 5672)));
        assert_eq!(
            url_host_port("redis://[::1]:7000/0"),
            Some(("::1".into(), 7000))
        );
    }
}
