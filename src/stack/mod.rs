//! Local orchestration: the servers of a stack as real processes on 127.0.0.1.
//!
//! Each server is a value that owns its process group ([`process::ManagedProcess`]), its
//! log file in the run's `logs/` directory and its temporary state; dropping it kills the
//! group, so a panic or an early return leaves nothing behind. For the second Ctrl-C, when
//! no destructor runs, [`process::kill_all_now`] kills every live group.
//!
//! - [`process`]: the managed process, readiness polling, the live-group registry.
//! - [`server`]: the shell every server lives in (process, config file, working
//!   directory) and the [`Server`] trait all kinds answer alike.
//! - [`ports`]: free loopback ports, never the same twice in one process.
//! - [`redis`]: `redis-server` data nodes and the [`redis::RedisSet`] (master, replicas,
//!   Sentinels).
//! - [`sentinel`]: `redis-sentinel` processes and the Sentinel queries.
//! - [`resp`]: what hab says to Redis servers and Sentinels (PING, bounded queries,
//!   INFO), shared by both.
//! - [`epmd`]: the private Erlang port mapper the RabbitMQ nodes register with.
//! - [`rabbitmq`]: RabbitMQ nodes and the broker (epmd + nodes, clustered when several).
//! - [`haproxy`]: HAProxy in front of broker and backend, and its stats socket.
//! - [`netns`]: network namespaces for the Redis side and the broker nodes (`network =
//!   "namespaces"`) and the partitions cut between them.
//! - [`node`]: roles (`broker.primary`, `backend.master`, …), node references and the
//!   node operations fault injection uses (kill, pause, stop, restart, wait healthy).
//! - [`external`]: a stack hab did not start (`[external]` in a topology): its
//!   endpoints, role resolution from what its servers say, fault commands.
//!
//! [`StackHandle`] is what a run drives: a local [`Stack`] or an
//! [`external::ExternalStack`], with the same questions answered by both.
//!
//! [`Stack`] puts them together for a topology: the RabbitMQ broker (one node or a
//! cluster) and the Redis set start in parallel, then HAProxy when the topology has a
//! `[proxy]`. Clients use [`Stack::broker_url`] and [`Stack::backend_url`]: the HAProxy
//! frontends when there is a proxy, else broker node 0 and the first Redis master; with
//! client-side failover (`[clients]`) [`Stack::client_broker_url`] (every node's URL) and
//! [`Stack::client_backend_url`] (the Sentinels).

pub mod epmd;
pub mod external;
pub mod haproxy;
pub mod netns;
pub mod node;
pub mod ports;
pub mod process;
pub mod rabbitmq;
pub mod redis;
pub mod resp;
pub mod sentinel;
pub mod server;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use self::haproxy::{Haproxy, HaproxyOptions};
pub use self::node::{NodePids, NodeRef, Role};
pub use self::process::kill_all_now;
use self::rabbitmq::{RabbitBroker, RabbitOptions};
use self::redis::{RedisOptions, RedisSet, RedisSetOptions};
use self::sentinel::SentinelOptions;
pub use self::server::{Server, ServerShell};
use crate::config::{QueueKind, Topology};

/// Why a stack (or one of its servers) could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The server program is not installed.
    #[error(
        "`{program}` was not found; it comes with the Debian package `{package}`: \
         run scripts/install-servers.sh"
    )]
    MissingBinary {
        /// The program hab tried to run.
        program: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// The program exists but could not be started.
    #[error("could not start `{program}`: {source}")]
    SpawnFailed {
        /// The program hab tried to run.
        program: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// A file, directory or port needed for a server could not be had.
    #[error("{what}: {source}")]
    Io {
        /// What hab was doing, naming the file.
        what: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// A server kept running but did not answer its readiness probe in time.
    #[error(
        "{service} was not ready after {} ms (last probe: {last_error}); last lines of its \
         log:\n{log_tail}",
        waited.as_millis()
    )]
    NotReady {
        /// The server, e.g. `redis backend`.
        service: String,
        /// How long hab waited.
        waited: Duration,
        /// The last probe failure.
        last_error: String,
        /// The last 20 lines of its log(s).
        log_tail: String,
    },
    /// A server exited while starting.
    #[error("{service} exited during start-up ({status}); last lines of its log:\n{log_tail}")]
    Exited {
        /// The server, e.g. `redis backend`.
        service: String,
        /// How it ended, e.g. `exit code 1`.
        status: String,
        /// The last 20 lines of its log(s).
        log_tail: String,
    },
    /// The topology asks for something this version cannot start.
    #[error("{0}")]
    Unsupported(String),
    /// A control or status command to a running server failed (rabbitmqctl, a Sentinel
    /// query, the HAProxy stats socket).
    #[error("{what}: {detail}")]
    Control {
        /// What hab was doing, e.g. `rabbitmqctl -n … join_cluster …`.
        what: String,
        /// What went wrong (the command's stderr, a timeout, …).
        detail: String,
    },
    /// A role names something this topology does not have (a replica on a standalone
    /// stack, `sentinel[5]` with 3 Sentinels): a fault on it is "not applicable".
    #[error("{role} is not applicable on this stack: {reason}")]
    NotApplicable {
        /// The role as written, e.g. `backend.replica`.
        role: String,
        /// Why it does not exist here.
        reason: String,
    },
}

/// Where a stack writes its files.
#[derive(Debug, Clone)]
pub struct StackDirs {
    /// The run directory's `logs/`: every server's log and generated config. One
    /// `StackDirs` per stack: file names are per server, not per stack.
    pub logs: PathBuf,
}

impl StackDirs {
    /// Uses `logs` (creating it and its parents) for the stack's logs and configs.
    pub fn create(logs: impl Into<PathBuf>) -> Result<StackDirs, StackError> {
        let logs: PathBuf = logs.into();
        // Absolute, since servers run with other working directories.
        let logs = std::path::absolute(&logs).map_err(|source| StackError::Io {
            what: format!("resolving the logs directory {}", logs.display()),
            source,
        })?;
        std::fs::create_dir_all(&logs).map_err(|source| StackError::Io {
            what: format!("creating the logs directory {}", logs.display()),
            source,
        })?;
        Ok(StackDirs { logs })
    }
}

/// What to bring up. [`StackOptions::default`] is the standalone stack; build the rest
/// from a topology with [`StackOptions::from_topology`].
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// RabbitMQ nodes; more than one form a cluster.
    pub broker_nodes: u32,
    /// The task queue's type; `Mirrored` sets the `ha-all` policy on the cluster.
    pub broker_queue: QueueKind,
    /// Redis replicas behind the master.
    pub backend_replicas: u32,
    /// How long a RabbitMQ node may take to accept AMQP connections (also bounds the
    /// cluster joins).
    pub broker_startup_timeout: Duration,
    /// How long a Redis node or Sentinel may take to answer, and the Redis set to settle.
    pub backend_startup_timeout: Duration,
    /// Sentinels watching the master; `None` = no Sentinel.
    pub sentinels: Option<SentinelOptions>,
    /// Redis `min-replicas-to-write` on every data node (0 = off).
    pub min_replicas_to_write: u32,
    /// Redis `min-replicas-max-lag` (whole seconds), used with `min_replicas_to_write`.
    pub min_replicas_max_lag: Duration,
    /// HAProxy in front of both; `None` = clients connect to the servers directly.
    pub proxy: Option<HaproxyOptions>,
    /// Redis data nodes and Sentinels each in a network namespace of their own
    /// (`network = "namespaces"`), so a partition can cut them apart.
    pub backend_namespaces: bool,
    /// RabbitMQ nodes each in a network namespace of their own, on a network of their
    /// own (`network = "namespaces"` with more than one broker node: a single node has
    /// no peer to be cut off from).
    pub broker_namespaces: bool,
    /// Erlang `net_ticktime` of the broker nodes; `None` = Erlang's 60 s.
    pub broker_net_ticktime: Option<Duration>,
    /// The management plugin on every broker node (`broker.management`).
    pub broker_management: bool,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            broker_nodes: 1,
            broker_queue: QueueKind::Classic,
            backend_replicas: 0,
            broker_startup_timeout: Duration::from_secs(60),
            backend_startup_timeout: Duration::from_secs(10),
            sentinels: None,
            min_replicas_to_write: 0,
            min_replicas_max_lag: Duration::from_secs(2),
            proxy: None,
            backend_namespaces: false,
            broker_namespaces: false,
            broker_net_ticktime: None,
            broker_management: false,
        }
    }
}

impl StackOptions {
    /// What will be started, for the line printed before bring-up:
    /// `1 RabbitMQ node(s), 1 Redis node(s)` (`, 3 Sentinels`, `, HAProxy`).
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} RabbitMQ node(s), {} Redis node(s)",
            self.broker_nodes,
            self.backend_replicas + 1
        );
        if let Some(sen) = &self.sentinels {
            s.push_str(&format!(", {} Sentinels", sen.count));
        }
        if self.proxy.is_some() {
            s.push_str(", HAProxy");
        }
        match (self.broker_namespaces, self.backend_namespaces) {
            (true, true) => s.push_str(" (RabbitMQ nodes and Redis side in network namespaces)"),
            (true, false) => s.push_str(" (RabbitMQ nodes in network namespaces)"),
            (false, true) => s.push_str(" (Redis side in network namespaces)"),
            (false, false) => {}
        }
        s
    }

    /// What a (validated) topology asks for.
    pub fn from_topology(t: &Topology) -> StackOptions {
        let b = &t.backend;
        StackOptions {
            broker_nodes: t.broker.nodes,
            broker_queue: t.broker.queue,
            backend_replicas: b.replicas,
            broker_startup_timeout: t.broker.startup_timeout,
            backend_startup_timeout: b.startup_timeout,
            sentinels: (b.sentinels > 0).then(|| SentinelOptions {
                count: b.sentinels,
                quorum: b.sentinel_quorum,
                down_after: b.down_after,
                failover_timeout: b.failover_timeout,
                master_name: b.master_name.clone(),
                startup_timeout: b.startup_timeout,
                ..SentinelOptions::default()
            }),
            min_replicas_to_write: b.min_replicas_to_write,
            min_replicas_max_lag: b.min_replicas_max_lag,
            proxy: t.proxy.as_ref().map(HaproxyOptions::from_config),
            backend_namespaces: t.network == crate::config::NetworkKind::Namespaces,
            broker_namespaces: t.network == crate::config::NetworkKind::Namespaces
                && t.broker.nodes > 1,
            broker_net_ticktime: t.broker.net_ticktime,
            broker_management: t.broker.management,
        }
    }

    /// Rejects combinations that cannot be started, naming the setting (the topology's
    /// `validate()` reports the same with locations; this guards hand-built options).
    pub fn validate(&self) -> Result<(), StackError> {
        if self.broker_nodes == 0 {
            return Err(StackError::Unsupported(
                "broker.nodes must be at least 1".into(),
            ));
        }
        if self.broker_queue == QueueKind::Mirrored && self.broker_nodes < 2 {
            return Err(StackError::Unsupported(format!(
                "a mirrored queue needs broker.nodes >= 2 (got {})",
                self.broker_nodes
            )));
        }
        if let Some(s) = &self.sentinels {
            if self.backend_replicas == 0 {
                return Err(StackError::Unsupported(
                    "Sentinels need a replica to promote; set backend.replicas >= 1".into(),
                ));
            }
            if s.count == 0 || !(1..=s.count).contains(&s.quorum) {
                return Err(StackError::Unsupported(format!(
                    "backend.sentinel_quorum must be between 1 and backend.sentinels ({}), got {}",
                    s.count, s.quorum
                )));
            }
        }
        if self.min_replicas_to_write > self.backend_replicas {
            return Err(StackError::Unsupported(format!(
                "backend.min_replicas_to_write ({}) exceeds backend.replicas ({})",
                self.min_replicas_to_write, self.backend_replicas
            )));
        }
        Ok(())
    }

    /// Config lines every Redis data node gets on top of the generated ones.
    fn redis_directives(&self) -> Vec<String> {
        if self.min_replicas_to_write == 0 {
            return Vec::new();
        }
        vec![
            format!("min-replicas-to-write {}", self.min_replicas_to_write),
            format!(
                "min-replicas-max-lag {}",
                self.min_replicas_max_lag.as_secs().max(1)
            ),
        ]
    }
}

/// A running broker and result backend, with HAProxy in front when the topology has one.
/// Dropping it kills every server.
#[derive(Debug)]
pub struct Stack {
    /// HAProxy; declared first so it goes first on drop.
    proxy: Option<Haproxy>,
    /// RabbitMQ nodes and their epmd.
    broker: RabbitBroker,
    /// The Redis data nodes and Sentinels.
    backend: RedisSet,
    /// What was asked for.
    opts: StackOptions,
    /// Wall time of [`Stack::start`], in milliseconds.
    bringup_ms: u64,
    /// Bring-up phases and their durations, in milliseconds.
    bringup_phases_ms: BTreeMap<String, u64>,
    /// Server versions for run.json (`rabbitmq`, `erlang_otp`, `redis`, `haproxy`).
    versions: BTreeMap<String, String>,
    /// Client-side failover: the broker node the producer is connected to, which
    /// `broker.primary` resolves to (see [`Stack::follow_client_node`]).
    client_node: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
    /// The network namespaces of the Redis side (`network = "namespaces"`); declared
    /// after the servers so they are gone before it is deleted.
    network: Option<netns::Network>,
    /// The network namespaces of the broker nodes (`network = "namespaces"`, more than
    /// one node), a network of its own: a broker partition cuts a node off from the
    /// other broker nodes only. Declared last, like `network`.
    broker_network: Option<netns::Network>,
}

impl Stack {
    /// Starts the broker (nodes, then the cluster joins) and the Redis set (master,
    /// replicas, Sentinels) in parallel, then HAProxy in front of both when asked, and
    /// returns once everything answers.
    ///
    /// If any part fails, everything started so far is torn down before the error is
    /// returned.
    pub async fn start(opts: &StackOptions, dirs: &StackDirs) -> Result<Stack, StackError> {
        opts.validate()?;
        let started = Instant::now();
        let dirs = StackDirs::create(&dirs.logs)?;
        let network = match opts.backend_namespaces {
            false => None,
            true => {
                let members = opts.backend_replicas as usize
                    + 1
                    + opts.sentinels.as_ref().map_or(0, |s| s.count as usize);
                Some(create_network(members).await?)
            }
        };
        let broker_network = match opts.broker_namespaces {
            false => None,
            true => Some(create_network(opts.broker_nodes as usize).await?),
        };
        let redis_opts = RedisSetOptions {
            replicas: opts.backend_replicas,
            node: RedisOptions {
                startup_timeout: opts.backend_startup_timeout,
                extra_directives: opts.redis_directives(),
                ..RedisOptions::default()
            },
            sentinels: opts.sentinels.clone(),
            netns: network
                .as_ref()
                .map(|n| n.members().to_vec())
                .unwrap_or_default(),
        };
        let rabbit_opts = RabbitOptions {
            nodes: opts.broker_nodes,
            mirror_policy: opts.broker_queue == QueueKind::Mirrored,
            startup_timeout: opts.broker_startup_timeout,
            netns: broker_network
                .as_ref()
                .map(|n| n.members().to_vec())
                .unwrap_or_default(),
            net_ticktime: opts.broker_net_ticktime,
            management: opts.broker_management,
            ..RabbitOptions::default()
        };
        // When one future fails, try_join drops the other, and with it the processes it
        // had started (ManagedProcess kills its group on drop).
        let (backend, broker) = tokio::try_join!(
            RedisSet::start(&dirs, &redis_opts),
            RabbitBroker::start(&dirs, &rabbit_opts),
        )?;
        let mut phases: BTreeMap<String, u64> = broker
            .phases()
            .iter()
            .chain(backend.phases())
            .cloned()
            .collect();
        let proxy = match &opts.proxy {
            None => None,
            Some(popts) => {
                let t = Instant::now();
                let broker_ports: Vec<u16> = broker.nodes().iter().map(|n| n.amqp_port()).collect();
                let redis_ports: Vec<u16> = backend.nodes().iter().map(|n| n.port()).collect();
                let proxy = Haproxy::start(&dirs, &broker_ports, &redis_ports, popts).await?;
                phases.insert("proxy".into(), t.elapsed().as_millis() as u64);
                Some(proxy)
            }
        };
        let bringup_ms = started.elapsed().as_millis() as u64;
        phases.insert("total".into(), bringup_ms);
        let node_log = broker.nodes()[0].layout().node_log();
        let with_proxy = proxy.is_some();
        let versions = tokio::task::spawn_blocking(move || collect_versions(&node_log, with_proxy))
            .await
            .unwrap_or_default();
        tracing::info!(bringup_ms, ?phases, "stack up");
        Ok(Stack {
            proxy,
            broker,
            backend,
            opts: opts.clone(),
            bringup_ms,
            bringup_phases_ms: phases,
            versions,
            client_node: None,
            network,
            broker_network,
        })
    }

    /// Client-side failover: resolve `broker.primary` to the broker node whose index
    /// `node` holds (the producer's), not to the node HAProxy routes to.
    pub fn follow_client_node(&mut self, node: std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        self.client_node = Some(node);
    }

    /// The broker address clients use: [`broker_url`](Self::broker_url), or with
    /// `clients.broker = "nodes"` every node's URL, `;`-separated (Celery's failover
    /// URL list), node 0 first.
    pub fn client_broker_url(&self, clients: &crate::config::clients::ClientsConfig) -> String {
        match clients.broker {
            crate::config::clients::BrokerAccess::Proxy => self.broker_url(),
            crate::config::clients::BrokerAccess::Nodes => self.broker_node_urls().join(";"),
        }
    }

    /// The result backend address clients use: [`backend_url`](Self::backend_url), or
    /// with `clients.backend = "sentinel"` the Sentinels and the master's name
    /// (`sentinel://h:p;…?master_name=NAME`).
    pub fn client_backend_url(&self, clients: &crate::config::clients::ClientsConfig) -> String {
        match clients.backend {
            crate::config::clients::BackendAccess::Proxy => self.backend_url(),
            crate::config::clients::BackendAccess::Sentinel => {
                crate::client_failover::SentinelAddress {
                    sentinels: self
                        .backend
                        .sentinels()
                        .iter()
                        .map(|s| format!("127.0.0.1:{}", s.port()))
                        .collect(),
                    master_name: self
                        .opts
                        .sentinels
                        .as_ref()
                        .map(|s| s.master_name.clone())
                        .unwrap_or_else(|| "hab".into()),
                }
                .to_url()
            }
        }
    }

    /// AMQP URL clients use: the HAProxy `broker` frontend, else broker node 0.
    pub fn broker_url(&self) -> String {
        match &self.proxy {
            Some(p) => p.broker_url(),
            None => self.broker.amqp_url(),
        }
    }

    /// Redis URL clients use: the HAProxy `backend` frontend, else data node 0 (the
    /// master at start; after a failover without a proxy ask
    /// [`current_backend_master`](Self::current_backend_master)).
    pub fn backend_url(&self) -> String {
        match &self.proxy {
            Some(p) => p.backend_url(),
            None => self.backend.nodes()[0].url(),
        }
    }

    /// AMQP URL of every broker node, node 0 first (for observers and client-side
    /// failover).
    pub fn broker_node_urls(&self) -> Vec<String> {
        self.broker.nodes().iter().map(|n| n.amqp_url()).collect()
    }

    /// The management API of every broker node (empty unless `broker.management`).
    pub fn management_urls(&self) -> Vec<String> {
        self.broker
            .nodes()
            .iter()
            .filter_map(|n| n.management_url())
            .collect()
    }

    /// Erlang node name of every broker node, node 0 first.
    pub fn broker_node_names(&self) -> Vec<String> {
        self.broker
            .nodes()
            .iter()
            .map(|n| n.nodename().to_string())
            .collect()
    }

    /// Redis URL of every data node, node 0 first.
    pub fn backend_node_urls(&self) -> Vec<String> {
        self.backend.nodes().iter().map(|n| n.url()).collect()
    }

    /// `<host>:<port>` of every Sentinel (empty without Sentinels; the host is
    /// 127.0.0.1 or its network namespace's address).
    pub fn sentinel_addrs(&self) -> Vec<String> {
        self.backend
            .sentinels()
            .iter()
            .map(|s| format!("{}:{}", netns::host(s.port()), s.port()))
            .collect()
    }

    /// Wall time of [`Stack::start`], in milliseconds.
    pub fn bringup_ms(&self) -> u64 {
        self.bringup_ms
    }

    /// Bring-up phases in milliseconds: `broker_nodes` (epmd and nodes booted in
    /// parallel), `broker_cluster` (joins), `broker_policy` (mirrored only),
    /// `backend_data` (master and replicas linked), `backend_sentinels`, `proxy`, and
    /// `total` (= [`bringup_ms`](Self::bringup_ms)). Broker and backend phases overlap.
    pub fn bringup_phases_ms(&self) -> &BTreeMap<String, u64> {
        &self.bringup_phases_ms
    }

    /// Server versions: `rabbitmq`, `erlang_otp`, `redis`, `haproxy` (keys missing when
    /// unknown or not deployed).
    pub fn versions(&self) -> &BTreeMap<String, String> {
        &self.versions
    }

    /// What the stack was started with.
    pub fn options(&self) -> &StackOptions {
        &self.opts
    }

    /// The broker (nodes, epmd, rabbitmqctl environment).
    pub fn broker(&self) -> &RabbitBroker {
        &self.broker
    }

    /// The broker, mutable (for faults).
    pub fn broker_mut(&mut self) -> &mut RabbitBroker {
        &mut self.broker
    }

    /// The result backend: data nodes and Sentinels.
    pub fn backend(&self) -> &RedisSet {
        &self.backend
    }

    /// The result backend, mutable (for faults).
    pub fn backend_mut(&mut self) -> &mut RedisSet {
        &mut self.backend
    }

    /// HAProxy, when the topology has a `[proxy]`.
    pub fn proxy(&self) -> Option<&Haproxy> {
        self.proxy.as_ref()
    }

    /// HAProxy, mutable (for faults).
    pub fn proxy_mut(&mut self) -> Option<&mut Haproxy> {
        self.proxy.as_mut()
    }

    /// The network namespaces of the Redis side, when the topology asked for them.
    pub fn network(&self) -> Option<&netns::Network> {
        self.network.as_ref()
    }

    /// The network namespaces, mutable (for partitions).
    pub fn network_mut(&mut self) -> Option<&mut netns::Network> {
        self.network.as_mut()
    }

    /// The network namespaces of the broker nodes, when they run in namespaces.
    pub fn broker_network(&self) -> Option<&netns::Network> {
        self.broker_network.as_ref()
    }

    /// The broker nodes' network namespaces, mutable (for partitions).
    pub fn broker_network_mut(&mut self) -> Option<&mut netns::Network> {
        self.broker_network.as_mut()
    }

    /// Index of the current Redis master (from the Sentinels; node 0 without them).
    pub async fn current_backend_master(&self) -> Result<usize, StackError> {
        self.backend.current_master().await
    }

    /// Stops every server gracefully (HAProxy first, then broker nodes and Redis in
    /// parallel, epmd last) and returns once all are gone.
    pub async fn shutdown(mut self) {
        let started = Instant::now();
        if let Some(p) = self.proxy.as_mut() {
            p.stop().await;
        }
        tokio::join!(self.broker.stop(), self.backend.stop());
        tracing::info!(ms = started.elapsed().as_millis() as u64, "stack down");
    }
}

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

/// A network of `members` namespaces, created off the async threads.
async fn create_network(members: usize) -> Result<netns::Network, StackError> {
    tokio::task::spawn_blocking(move || netns::Network::create(members))
        .await
        .map_err(|e| StackError::Unsupported(format!("creating namespaces: {e}")))?
}

/// Versions for run.json: RabbitMQ and Erlang from the node's start line (Erlang falls
/// back to the installed OTP_VERSION file), Redis from `redis-server --version`, HAProxy
/// from `haproxy -v` when it is deployed.
fn collect_versions(node_log: &Path, with_proxy: bool) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    let log = std::fs::read_to_string(node_log).unwrap_or_default();
    let (rabbit, erlang) = rabbitmq::versions_from_log(&log);
    let erlang = erlang.or_else(installed_otp_version);
    if let Some(v) = rabbit {
        versions.insert("rabbitmq".to_string(), v);
    }
    if let Some(v) = erlang {
        versions.insert("erlang_otp".to_string(), v);
    }
    let redis = std::process::Command::new("redis-server")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .and_then(|out| redis_version(&String::from_utf8_lossy(&out.stdout)));
    if let Some(v) = redis {
        versions.insert("redis".to_string(), v);
    }
    if with_proxy {
        let haproxy = std::process::Command::new("haproxy")
            .arg("-v")
            .stdin(std::process::Stdio::null())
            .output()
            .ok()
            .and_then(|out| haproxy::version_from_banner(&String::from_utf8_lossy(&out.stdout)));
        if let Some(v) = haproxy {
            versions.insert("haproxy".to_string(), v);
        }
    }
    versions
}

/// The full OTP version of the installed Erlang (`/usr/lib/erlang/releases/*/OTP_VERSION`).
fn installed_otp_version() -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir("/usr/lib/erlang/releases")
        .ok()?
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("OTP_VERSION")).ok())
        .map(|v| v.trim().to_string())
        .collect();
    found.sort();
    found.pop()
}

/// `7.0.15` from `Redis server v=7.0.15 sha=… malloc=…`.
fn redis_version(banner: &str) -> Option<String> {
    let rest = &banner[banner.find("v=")? + 2..];
    let v: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_version_from_banner() {
        assert_eq!(
            redis_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64"),
            Some("7.0.15".into())
        );
        assert_eq!(redis_version("garbage"), None);
    }

    #[test]
    fn options_follow_the_topology() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
        let standalone = crate::config::load_topology(&root.join("standalone.toml")).unwrap();
        let o = StackOptions::from_topology(&standalone);
        assert_eq!((o.broker_nodes, o.backend_replicas), (1, 0));
        assert!(o.sentinels.is_none() && o.proxy.is_none());
        assert!(o.redis_directives().is_empty());
        assert!(o.validate().is_ok());
        assert_eq!(o.describe(), "1 RabbitMQ node(s), 1 Redis node(s)");

        let mut ha = crate::config::load_topology(&root.join("ha.toml")).unwrap();
        let o = StackOptions::from_topology(&ha);
        assert_eq!((o.broker_nodes, o.backend_replicas), (3, 1));
        assert_eq!(o.broker_queue, QueueKind::Quorum);
        let s = o.sentinels.as_ref().unwrap();
        assert_eq!((s.count, s.quorum, s.master_name.as_str()), (3, 2, "hab"));
        assert_eq!(s.down_after, Duration::from_secs(1));
        assert_eq!(s.failover_timeout, Duration::from_secs(5));
        let p = o.proxy.as_ref().unwrap();
        assert_eq!(p.check_interval, Duration::from_millis(250));
        assert_eq!(p.timeout_connect, Duration::from_millis(100));
        assert!(p.observe_layer4);
        assert!(o.validate().is_ok());
        assert_eq!(
            o.describe(),
            "3 RabbitMQ node(s), 2 Redis node(s), 3 Sentinels, HAProxy"
        );

        ha.backend.min_replicas_to_write = 1;
        ha.backend.min_replicas_max_lag = Duration::from_secs(3);
        let o = StackOptions::from_topology(&ha);
        assert_eq!(
            o.redis_directives(),
            ["min-replicas-to-write 1", "min-replicas-max-lag 3"]
        );
    }

    #[test]
    fn impossible_options_are_refused() {
        let ok = StackOptions::default();
        assert!(ok.validate().is_ok());
        let cases = [
            (
                StackOptions {
                    broker_nodes: 0,
                    ..ok.clone()
                },
                "broker.nodes must be at least 1",
            ),
            (
                StackOptions {
                    broker_queue: QueueKind::Mirrored,
                    ..ok.clone()
                },
                "mirrored queue needs broker.nodes >= 2",
            ),
            (
                StackOptions {
                    sentinels: Some(SentinelOptions::default()),
                    ..ok.clone()
                },
                "Sentinels need a replica",
            ),
            (
                StackOptions {
                    backend_replicas: 1,
                    sentinels: Some(SentinelOptions {
                        quorum: 4,
                        ..SentinelOptions::default()
                    }),
                    ..ok.clone()
                },
                "sentinel_quorum must be between 1 and backend.sentinels (3), got 4",
            ),
            (
                StackOptions {
                    min_replicas_to_write: 1,
                    ..ok.clone()
                },
                "min_replicas_to_write (1) exceeds backend.replicas (0)",
            ),
        ];
        for (opts, want) in cases {
            let err = opts.validate().unwrap_err();
            assert!(matches!(err, StackError::Unsupported(_)), "{err}");
            assert!(err.to_string().contains(want), "{err}");
        }
    }
}
