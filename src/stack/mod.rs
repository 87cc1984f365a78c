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
//! - `options.rs`: [`StackDirs`] (where a stack writes) and [`StackOptions`] (what it
//!   brings up, from a topology, checked before anything starts).
//! - `handle.rs`: [`StackHandle`].
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

pub mod cgroup;
pub mod epmd;
pub mod external;
mod handle;
pub mod haproxy;
pub mod netns;
pub mod node;
mod options;
pub mod ports;
pub mod process;
pub mod rabbitmq;
pub mod reconfigure;
pub mod redis;
pub mod resp;
pub mod sentinel;
pub mod server;

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

pub use self::handle::StackHandle;
use self::haproxy::Haproxy;
pub use self::node::{NodePids, NodeRef};
pub use self::options::{StackDirs, StackOptions};
pub use self::process::kill_all_now;
use self::rabbitmq::{RabbitBroker, RabbitOptions};
use self::redis::{RedisOptions, RedisSet, RedisSetOptions};
pub use self::server::{Server, ServerShell};
use crate::config::QueueKind;

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
    /// Servers held in a capped cgroup by a `throttle` fault, by node; released before
    /// the servers stop (declared first of what follows them).
    throttles: BTreeMap<NodeRef, cgroup::Throttle>,
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
            throttles: BTreeMap::new(),
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
        // A throttled server stops at full speed.
        self.throttles.clear();
        if let Some(p) = self.proxy.as_mut() {
            p.stop().await;
        }
        tokio::join!(self.broker.stop(), self.backend.stop());
        tracing::info!(ms = started.elapsed().as_millis() as u64, "stack down");
    }
}

/// A network of `members` namespaces, created off the async threads.
async fn create_network(members: usize) -> Result<netns::Network, StackError> {
    tokio::task::spawn_blocking(move || netns::Network::create(members))
        .await
        .map_err(|e| StackError::Unsupported(format!("creating namespaces: {e}")))?
}

/// A new temporary directory named `prefix…` (removed when dropped), or
/// [`StackError::Io`] saying `what` hab was creating.
pub(crate) fn temp_dir(prefix: &str, what: &str) -> Result<tempfile::TempDir, StackError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|source| StackError::Io {
            what: what.into(),
            source,
        })
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
pub fn installed_otp_version() -> Option<String> {
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
}
