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
//!   by node name (without it the role is not applicable: name `broker.node[i]`).
//! - **Fault commands** run through `sh -c` in their own process group, with the
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

use super::StackError;
use super::haproxy::StatsAddr;
use super::node::{NodeRef, Role};
use crate::clock::now_unix_us;
use crate::config::Topology;
use crate::config::clients::{BackendAccess, BrokerAccess, ClientsConfig};
use crate::config::external::{ExternalConfig, FaultCommands, NodeKind, expand, split_host_port};
use crate::fault::FaultKind;

/// The phase of a fault a command belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandPhase {
    /// Breaks the node.
    Apply,
    /// Brings it back.
    Revert,
    /// Checks it is healthy again.
    Health,
}

impl CommandPhase {
    /// The name used in logs and `--dry-run`.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandPhase::Apply => "apply",
            CommandPhase::Revert => "revert",
            CommandPhase::Health => "health",
        }
    }
}

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

fn not_applicable(role: Role, reason: impl Into<String>) -> StackError {
    StackError::NotApplicable {
        role: role.to_string(),
        reason: reason.into(),
    }
}

/// `host:port` of a URL (default port by scheme), for matching and placeholders.
fn url_host_port(url: &str) -> Option<(String, u16)> {
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

    /// The node that plays `role` now (see the module docs).
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
            Role::BrokerQueueLeader => self.queue_leader(role).await.map(NodeRef::Broker),
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

    async fn queue_leader(&self, role: Role) -> Result<usize, StackError> {
        if self.cfg.management.is_empty() {
            return Err(not_applicable(
                role,
                "finding the queue leader needs the RabbitMQ management API: list it in external.management, or name the node (broker.node[i])",
            ));
        }
        let name = crate::observe::management::queue_leader(&self.cfg.management)
            .await
            .map_err(|detail| StackError::Control {
                what: "asking the management API for the celery queue's leader".into(),
                detail,
            })?
            .ok_or_else(|| StackError::Control {
                what: "asking the management API for the celery queue's leader".into(),
                detail: "the queue has no leader now".into(),
            })?;
        crate::observe::management::node_index(
            &name,
            &self.cfg.broker_node_names,
            &self.cfg.broker_nodes,
        )
        .ok_or_else(|| StackError::Control {
            what: "matching the queue leader to external.broker_nodes".into(),
            detail: format!(
                "{name} is none of them (give external.broker_node_names when the node names' hosts differ from the URLs')"
            ),
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
            match super::redis::query_at(
                addr,
                &["SENTINEL", "get-master-addr-by-name", &self.master_name],
                crate::credentials::current().sentinel_password.as_deref(),
            )
            .await
            {
                Ok(redis::Value::Array(items)) if items.len() == 2 => {
                    let host = super::redis::text(&items[0]).unwrap_or_default();
                    let port = super::redis::text(&items[1]).and_then(|p| p.parse().ok());
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
            &placeholders(role, node, kind, self.node_endpoint(node)),
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
    ) -> Result<(), StackError> {
        let Ok(entry) = self.commands(node, kind) else {
            return Ok(());
        };
        let Some(template) = &entry.health else {
            return Ok(());
        };
        let cmd = expand(
            template,
            &placeholders(role, node, kind, self.node_endpoint(node)),
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
                match tokio::time::timeout(
                    Duration::from_secs(5),
                    crate::broker::connect(u, Duration::ZERO, "hab-health"),
                )
                .await
                {
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
        super::process::poll_until(deadline, Duration::from_millis(250), || self.health())
            .await
            .map(|()| started.elapsed())
            .map_err(|(waited, last_error)| StackError::NotReady {
                service: "external stack".into(),
                waited,
                last_error,
                log_tail: String::new(),
            })
    }
}

/// When a command did its work: the last `at_unix_us=N` it printed (the moment it
/// broke or restored the node, e.g. `hab node`'s answer, or `date +at_unix_us=%s%6N`
/// after the action on the host), kept within the command's own run; else the moment it
/// started. Never its end: a slow command (an ssh round trip, a loaded machine) would
/// put the fault after the first events it caused.
pub fn command_time(output: &str, started_us: i64, ended_us: i64) -> i64 {
    output
        .rsplit("at_unix_us=")
        .next()
        .filter(|_| output.contains("at_unix_us="))
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<i64>().ok()
        })
        .map(|at| at.clamp(started_us, ended_us))
        .unwrap_or(started_us)
}

/// The placeholder values for one command.
pub fn placeholders(
    role: Role,
    node: NodeRef,
    kind: FaultKind,
    endpoint: Option<(String, u16)>,
) -> Vec<(&'static str, String)> {
    let index = match node {
        NodeRef::Broker(i) | NodeRef::BackendData(i) | NodeRef::Sentinel(i) => i.to_string(),
        NodeRef::Proxy => "0".into(),
    };
    let (host, port) = endpoint
        .map(|(h, p)| (h, p.to_string()))
        .unwrap_or_default();
    vec![
        ("role", role.to_string()),
        ("node", node.to_string()),
        ("index", index),
        ("host", host),
        ("port", port),
        ("kind", kind.as_str().to_string()),
    ]
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

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// It exited (by itself) with this code; `output` is stdout and stderr, masked and
    /// cut to the last 4 KiB.
    Exited {
        /// The exit code (128 + signal when a signal ended it).
        code: i32,
        /// What it printed.
        output: String,
    },
    /// It ran past the timeout and its process group was killed.
    TimedOut {
        /// What it printed before.
        output: String,
    },
    /// It could not be started.
    NotStarted(String),
}

impl CommandOutcome {
    /// One line (plus output) for logs and errors.
    pub fn describe(&self, timeout: Duration) -> String {
        let with = |head: String, output: &str| {
            let output = output.trim_end();
            if output.is_empty() {
                head
            } else {
                format!("{head}; output:\n{output}")
            }
        };
        match self {
            CommandOutcome::Exited { code, output } => with(format!("exit status {code}"), output),
            CommandOutcome::TimedOut { output } => with(
                format!(
                    "did not finish within {} (command_timeout); its process group was killed",
                    humantime::format_duration(timeout)
                ),
                output,
            ),
            CommandOutcome::NotStarted(e) => format!("could not start sh: {e}"),
        }
    }
}

/// Runs `cmd` with `sh -c` in its own process group, stdin from /dev/null, stdout and
/// stderr captured; kills the group when it runs past `timeout`.
pub async fn run_command(cmd: &str, timeout: Duration) -> CommandOutcome {
    use std::process::Stdio;
    use tokio::io::AsyncReadExt;
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match c.spawn() {
        Ok(child) => child,
        Err(e) => return CommandOutcome::NotStarted(e.to_string()),
    };
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let collect = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let _ = tokio::join!(stdout.read_to_end(&mut a), stderr.read_to_end(&mut b));
        a.extend_from_slice(&b);
        a
    };
    let both = async { tokio::join!(child.wait(), collect) };
    let finished = tokio::time::timeout(timeout, both).await;
    let tidy = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let cut = text.len().saturating_sub(4096);
        let start = (cut..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        crate::credentials::mask(&text[start..])
    };
    match finished {
        Ok((status, output)) => {
            // Whatever the shell left running in its group goes with it.
            if let Some(pid) = pid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let code = match status {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
                }
                Err(e) => return CommandOutcome::NotStarted(e.to_string()),
            };
            CommandOutcome::Exited {
                code,
                output: tidy(&output),
            }
        }
        Err(_) => {
            if let Some(pid) = pid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            CommandOutcome::TimedOut {
                output: String::new(),
            }
        }
    }
}

/// Checks an external topology against the plan ([`check_plan`]) and loads its
/// credentials (`external.credentials`, relative to the topology file, then the
/// environment). Errors are bad input (exit 2), located in the file they concern. A
/// local topology passes with no credentials.
pub fn prepare(
    topology_path: &Path,
    topology: &Topology,
    workload_path: &Path,
    plan: &crate::config::WorkloadPlan,
    allow_faults: bool,
) -> Result<crate::credentials::Credentials, crate::config::ConfigError> {
    use crate::config::{ConfigError, Diagnostic};
    let Some(cfg) = &topology.external else {
        return Ok(crate::credentials::Credentials::default());
    };
    let diagnostics = check_plan(cfg, plan, allow_faults);
    if !diagnostics.is_empty() {
        return Err(ConfigError::Invalid {
            kind: "workload",
            path: workload_path.to_path_buf(),
            diagnostics,
        });
    }
    let file = cfg.credentials.as_ref().map(|f| {
        topology_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(f)
    });
    crate::credentials::Credentials::load(file.as_deref()).map_err(|message| ConfigError::Invalid {
        kind: "topology",
        path: topology_path.to_path_buf(),
        diagnostics: vec![Diagnostic::new("external.credentials", message)],
    })
}

/// The kind of node a role is, whatever it resolves to.
pub fn role_node_kind(role: Role) -> NodeKind {
    match role {
        Role::BrokerPrimary | Role::BrokerQueueLeader | Role::BrokerNode(_) => NodeKind::Broker,
        Role::BackendMaster | Role::BackendReplica | Role::BackendNode(_) => NodeKind::Backend,
        Role::Sentinel(_) => NodeKind::Sentinel,
        Role::Proxy => NodeKind::Proxy,
    }
}

/// The node a role names without asking any server (`broker.node[1]`, `sentinel[0]`,
/// `proxy`); `None` for roles resolved when the fault fires.
pub fn static_node(role: Role) -> Option<NodeRef> {
    match role {
        Role::BrokerNode(i) => Some(NodeRef::Broker(i)),
        Role::BackendNode(i) => Some(NodeRef::BackendData(i)),
        Role::Sentinel(i) => Some(NodeRef::Sentinel(i)),
        Role::Proxy => Some(NodeRef::Proxy),
        _ => None,
    }
}

/// Before an external run: the workload's faults need `--allow-faults`, and every fault
/// needs its `[[external.fault]]` entry (with a `revert` when the workload brings the
/// node back). Problems are located in the workload file.
pub fn check_plan(
    cfg: &ExternalConfig,
    plan: &crate::config::WorkloadPlan,
    allow_faults: bool,
) -> Vec<crate::config::Diagnostic> {
    use crate::config::Diagnostic;
    let mut out = Vec::new();
    let faults: usize = plan.workloads.iter().map(|w| w.faults.len()).sum();
    if faults > 0 && !allow_faults {
        out.push(Diagnostic::new(
            "faults",
            format!(
                "{faults} fault(s) would run commands against servers hab does not own; pass --allow-faults to run them (and --dry-run first to see every command)"
            ),
        ));
    }
    for (i, w) in plan.workloads.iter().enumerate() {
        for (j, f) in w.faults.iter().enumerate() {
            let at = format!("workload[{i}] ({:?}).faults[{j}]", w.name);
            let nodes = role_node_kind(f.target);
            match cfg.commands_for(nodes, f.kind) {
                None => out.push(Diagnostic::new(
                    &at,
                    format!(
                        "{} {} needs an [[external.fault]] entry with nodes = {:?}, kind = {:?} in the topology",
                        f.kind.as_str(),
                        f.target,
                        nodes.as_str(),
                        f.kind.as_str()
                    ),
                )),
                Some(c) if f.out_for().is_some() && c.revert.is_none() => out.push(Diagnostic::new(
                    &at,
                    format!(
                        "the workload brings {} back, but the [[external.fault]] entry for nodes = {:?}, kind = {:?} has no revert command",
                        f.target,
                        nodes.as_str(),
                        f.kind.as_str()
                    ),
                )),
                Some(_) => {}
            }
            if f.restart_as == Some(crate::fault::RestartAs::Master) {
                out.push(Diagnostic::new(
                    format!("{at}.restart_as"),
                    "an external stack's node comes back however its revert command brings it back; remove restart_as",
                ));
            }
        }
    }
    out
}

/// Every command an external run would run, in order, with the placeholders filled in
/// as far as they are known without asking the servers (`broker.primary` and
/// `backend.master` are resolved when the fault fires).
pub fn dry_run(cfg: &ExternalConfig, plan: &crate::config::WorkloadPlan) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut n = 0;
    for (wi, w) in plan.workloads.iter().enumerate() {
        for (i, k, planned) in crate::fault::injector::timeline(&w.faults) {
            let f = &w.faults[i];
            let nodes = role_node_kind(f.target);
            let _ = writeln!(
                out,
                "workload {wi} ({}) at +{}: {} {} (repetition {k})",
                w.name,
                humantime::format_duration(planned),
                f.kind.as_str(),
                f.target
            );
            let Some(c) = cfg.commands_for(nodes, f.kind) else {
                let _ = writeln!(
                    out,
                    "  (no [[external.fault]] for nodes = {:?}, kind = {:?})",
                    nodes.as_str(),
                    f.kind.as_str()
                );
                continue;
            };
            let values = match static_node(f.target) {
                Some(node) => {
                    let endpoint = match node {
                        NodeRef::Broker(i) => {
                            cfg.broker_nodes.get(i).and_then(|u| url_host_port(u))
                        }
                        NodeRef::BackendData(i) => {
                            cfg.backend_nodes.get(i).and_then(|u| url_host_port(u))
                        }
                        NodeRef::Sentinel(i) => {
                            cfg.sentinels.get(i).and_then(|a| split_host_port(a).ok())
                        }
                        NodeRef::Proxy => cfg.broker.as_deref().and_then(url_host_port),
                    };
                    placeholders(f.target, node, f.kind, endpoint)
                }
                None => vec![
                    ("role", f.target.to_string()),
                    ("kind", f.kind.as_str().to_string()),
                    ("node", format!("<{} when the fault fires>", f.target)),
                    ("index", "<index>".into()),
                    ("host", "<host>".into()),
                    ("port", "<port>".into()),
                ],
            };
            let _ = writeln!(out, "  apply:  {}", expand(&c.apply, &values));
            n += 1;
            if let Some(after) = f.out_for() {
                if let Some(r) = &c.revert {
                    let _ = writeln!(
                        out,
                        "  after {}, revert: {}",
                        humantime::format_duration(after),
                        expand(r, &values)
                    );
                    n += 1;
                }
                if let Some(h) = &c.health {
                    let _ = writeln!(
                        out,
                        "  until it exits 0 (at most {}), health: {}",
                        humantime::format_duration(cfg.health_timeout),
                        expand(h, &values)
                    );
                    n += 1;
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "{n} command(s); each is run with sh -c and killed after {} (command_timeout)",
        humantime::format_duration(cfg.command_timeout)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_command_reports_status_and_output() {
        let out = run_command("echo hello; echo oops >&2; exit 3", Duration::from_secs(10)).await;
        match &out {
            CommandOutcome::Exited { code, output } => {
                assert_eq!(*code, 3);
                assert!(
                    output.contains("hello") && output.contains("oops"),
                    "{output}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            out.describe(Duration::from_secs(1))
                .starts_with("exit status 3; output:")
        );
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let cmd = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let started = Instant::now();
        let out = run_command(&cmd, Duration::from_millis(500)).await;
        assert!(matches!(out, CommandOutcome::TimedOut { .. }), "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(20));
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep was in the group: it is gone (or a zombie being reaped).
        let mut gone = false;
        for _ in 0..50 {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if status.is_empty() || status.contains("State:\tZ") {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone, "the command's child {pid} survived the timeout");
        assert!(
            out.describe(Duration::from_millis(500))
                .contains("command_timeout")
        );
    }

    fn cfg_and_plan() -> (ExternalConfig, crate::config::WorkloadPlan) {
        let cfg: ExternalConfig = toml::from_str(
            r#"
            broker = "amqp://127.0.0.1:5672"
            broker_nodes = ["amqp://10.0.0.1:5672", "amqp://10.0.0.2:5672"]
            backend = "redis://127.0.0.1:6379"
            [[fault]]
            nodes = "broker"
            kind = "kill"
            apply = "ssh {host} sudo systemctl kill -s KILL rabbitmq-server"
            revert = "ssh {host} sudo systemctl start rabbitmq-server"
            health = "ssh {host} sudo rabbitmq-diagnostics -q check_running"
            "#,
        )
        .unwrap();
        let plan = crate::config::parse_workload_plan(
            r#"
            name = "p"
            [[workload]]
            name = "f"
            task = { kind = "trivial" }
            count = 100
            arrival = "rate"
            rate_per_s = 10
            [[workload.fault]]
            target = "broker.node[1]"
            kind = "kill"
            at = "2s"
            restart_after = "3s"
            [[workload.fault]]
            target = "backend.master"
            kind = "kill"
            at = "5s"
            "#,
            std::path::Path::new("w.toml"),
        )
        .unwrap();
        (cfg, plan)
    }

    #[test]
    fn faults_need_the_flag_and_a_command_entry() {
        let (cfg, plan) = cfg_and_plan();
        let p: Vec<String> = check_plan(&cfg, &plan, false)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert!(
            p[0].starts_with("faults: 2 fault(s) would run commands"),
            "{p:?}"
        );
        assert!(
            p[1].contains("faults[1]") && p[1].contains("nodes = \"backend\", kind = \"kill\""),
            "{p:?}"
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(check_plan(&cfg, &plan, true).len(), 1);
    }

    #[test]
    fn dry_run_lists_every_command_in_order_with_what_is_known() {
        let (cfg, plan) = cfg_and_plan();
        let text = dry_run(&cfg, &plan);
        let apply = text
            .find("apply:  ssh 10.0.0.2 sudo systemctl kill")
            .expect(&text);
        let revert = text
            .find("after 3s, revert: ssh 10.0.0.2 sudo systemctl start")
            .expect(&text);
        let health = text
            .find("health: ssh 10.0.0.2 sudo rabbitmq-diagnostics")
            .expect(&text);
        assert!(apply < revert && revert < health, "{text}");
        assert!(
            text.contains("kill backend.master (repetition 0)\n  (no [[external.fault]]"),
            "{text}"
        );
        assert!(text.contains("3 command(s)"), "{text}");
    }

    #[test]
    fn a_command_time_is_what_it_printed_within_its_run_else_its_start() {
        assert_eq!(
            command_time("kill broker.node[0] at_unix_us=1500\n", 1000, 2000),
            1500
        );
        assert_eq!(
            command_time("at_unix_us=1200 then at_unix_us=1700", 1000, 2000),
            1700
        );
        // A remote clock ahead or behind is held to the command's own run.
        assert_eq!(command_time("at_unix_us=9999", 1000, 2000), 2000);
        assert_eq!(command_time("at_unix_us=5", 1000, 2000), 1000);
        assert_eq!(command_time("done", 1000, 2000), 1000);
        assert_eq!(command_time("at_unix_us=", 1000, 2000), 1000);
    }

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
    fn placeholders_name_the_role_the_node_and_its_address() {
        let p = placeholders(
            Role::BackendMaster,
            NodeRef::BackendData(1),
            FaultKind::Kill,
            Some(("10.0.0.2".into(), 6379)),
        );
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("role"), "backend.master");
        assert_eq!(get("node"), "backend.node[1]");
        assert_eq!(get("index"), "1");
        assert_eq!(get("host"), "10.0.0.2");
        assert_eq!(get("port"), "6379");
        assert_eq!(get("kind"), "kill");
        assert_eq!(url_host_port("amqp://h/%2f"), Some(("h".into(), 5672)));
        assert_eq!(
            url_host_port("redis://[::1]:7000/0"),
            Some(("::1".into(), 7000))
        );
    }
}
