//! The topology file: what is deployed (broker nodes, result backend, workers).

use std::time::Duration;

use serde::{Deserialize, Serialize};

mod validate;

/// A deployed stack: one topology file, e.g. `topologies/standalone.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Short identifier, used in run directory names; only `[A-Za-z0-9_.-]`.
    pub name: String,
    /// One line for humans, copied into reports; empty if omitted.
    #[serde(default)]
    pub description: String,
    /// The RabbitMQ side (optional for an external stack: the queue kind and client
    /// settings then come from here, the nodes from `[external]`).
    #[serde(default)]
    pub broker: BrokerConfig,
    /// The Redis result backend (optional for an external stack, as `broker`).
    #[serde(default)]
    pub backend: BackendConfig,
    /// HAProxy in front of broker and backend; absent = clients connect straight to broker
    /// node 0 and the Redis master.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
    /// The worker processes; the whole section is optional.
    #[serde(default)]
    pub workers: WorkersConfig,
    /// What the producer does when a publish fails (`block`, `retry`, `breaker`); the
    /// whole section is optional and defaults to `block`.
    #[serde(default)]
    pub producer: super::producer::ProducerConfig,
    /// How the clients reach the stack: one address (the default) or client-side
    /// failover (broker node list, Sentinel discovery); see [`super::clients`].
    #[serde(default, skip_serializing_if = "is_default_clients")]
    pub clients: super::clients::ClientsConfig,
    /// Where the servers listen: `"loopback"` (the default: everything on 127.0.0.1) or
    /// `"namespaces"`: every Redis data node and Sentinel, and every RabbitMQ node when
    /// there are more than one, in a network namespace of its own, on hab-only private
    /// subnets joined by bridges (one for the Redis side, one for the broker nodes), so a
    /// `partition` fault can cut one off from its peers. HAProxy, the producer and the
    /// workers stay in the root namespace. Needs root and `ip` (iproute2).
    #[serde(default, skip_serializing_if = "NetworkKind::is_loopback")]
    pub network: NetworkKind,
    /// An existing stack hab talks to instead of starting one (see
    /// [`super::external`]); absent = hab starts the servers itself (a local stack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<super::external::ExternalConfig>,
}

fn is_default_clients(c: &super::clients::ClientsConfig) -> bool {
    *c == super::clients::ClientsConfig::default()
}

/// Where a topology's servers listen (`network` in a topology file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkKind {
    /// Every server on 127.0.0.1 in the root network namespace.
    #[default]
    Loopback,
    /// Redis data nodes and Sentinels each in a network namespace of their own, and the
    /// RabbitMQ nodes too when there are more than one.
    Namespaces,
}

impl NetworkKind {
    /// Whether this is the default (kept out of serialized topologies).
    pub fn is_loopback(&self) -> bool {
        *self == NetworkKind::Loopback
    }
}

/// The RabbitMQ broker: how many nodes and how messages are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Number of RabbitMQ nodes; 1 (the default) is standalone, more form a cluster.
    #[serde(default = "default_nodes")]
    pub nodes: u32,
    /// Queue type of the task queue; decides how messages survive a node loss.
    #[serde(default)]
    pub queue: QueueKind,
    /// Whether the task queue survives a broker restart (Celery: durable). `false` only to
    /// show what is lost without it; quorum queues are always durable.
    #[serde(default = "default_true")]
    pub durable: bool,
    /// Whether task messages are persistent (delivery mode 2, Celery's default). `false`
    /// only to show what a broker crash loses without it.
    #[serde(default = "default_true")]
    pub persistent: bool,
    /// Whether the producer waits for publisher confirms (Celery's default is off).
    #[serde(default = "default_true")]
    pub confirms: bool,
    /// AMQP heartbeat interval for producer and workers; zero disables heartbeats.
    #[serde(default = "default_heartbeat", with = "super::duration")]
    pub heartbeat: Duration,
    /// How long one node may take to accept connections before the run fails.
    #[serde(default = "default_broker_startup_timeout", with = "super::duration")]
    pub startup_timeout: Duration,
    /// Erlang's `net_ticktime` on every node (whole seconds; absent = Erlang's 60 s): a
    /// peer that sends nothing for this long is taken for down. It decides when a
    /// partitioned node notices it is alone and `pause_minority` pauses it (within 1 to
    /// 1.25 times this after the cut); the quorum queue's Raft members notice sooner on
    /// their own.
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub net_ticktime: Option<Duration>,
    /// Enable RabbitMQ's management plugin on every node (its HTTP API on a free port of
    /// the node's address), so the queue leader can be read over HTTP as on an external
    /// stack (`hab up` lists the addresses in its external.toml). Off by default: the
    /// plugin adds seconds to each node's boot.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub management: bool,
}

/// RabbitMQ queue type of the task queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    /// A classic queue on one node: lost with that node.
    #[default]
    Classic,
    /// A Raft-replicated quorum queue: survives a minority of nodes failing.
    Quorum,
    /// A classic queue mirrored by policy (needs at least 2 nodes).
    Mirrored,
}

/// The Redis result backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Number of Redis replicas next to the primary; 0 is standalone.
    #[serde(default)]
    pub replicas: u32,
    /// Expiry of each `celery-task-meta-<id>` key (Celery's default is one day).
    #[serde(default = "default_result_ttl", with = "super::duration")]
    pub result_ttl: Duration,
    /// How long one Redis server may take to answer `PING` before the run fails.
    #[serde(default = "default_backend_startup_timeout", with = "super::duration")]
    pub startup_timeout: Duration,
    /// Number of Redis Sentinels watching the master; 0 (the default) = no Sentinel, no
    /// automatic failover. Needs `replicas >= 1`.
    #[serde(default)]
    pub sentinels: u32,
    /// Sentinels that must agree the master is down before a failover starts.
    #[serde(default = "default_sentinel_quorum")]
    pub sentinel_quorum: u32,
    /// Sentinel `down-after-milliseconds`: how long the master may be silent before a
    /// Sentinel considers it down; drives the outage almost one for one.
    #[serde(default = "default_down_after", with = "super::duration")]
    pub down_after: Duration,
    /// Sentinel `failover-timeout`: how long one failover attempt may take before another
    /// may be tried.
    #[serde(default = "default_failover_timeout", with = "super::duration")]
    pub failover_timeout: Duration,
    /// Redis `min-replicas-to-write`: a master refuses writes unless this many replicas
    /// are connected and not lagging; 0 (the default) disables the check.
    #[serde(default)]
    pub min_replicas_to_write: u32,
    /// Redis `min-replicas-max-lag`: how stale (whole seconds) a replica may be and still
    /// count for `min_replicas_to_write`.
    #[serde(default = "default_min_replicas_max_lag", with = "super::duration")]
    pub min_replicas_max_lag: Duration,
    /// The name Sentinels know the master by (`sentinel monitor <name> …`).
    #[serde(default = "default_master_name")]
    pub master_name: String,
    /// Redis keepalive: hab's clients (the workers' result connection, the producer's
    /// reader and result subscription) send traffic on their Redis connections at this
    /// interval, so a proxy's idle timeout longer than it never cuts them — what AMQP
    /// heartbeats do for the broker. `"0s"` (the default) = off: like redis-py and
    /// Celery's Redis backend, a connection is silent while idle.
    #[serde(default, with = "super::duration")]
    pub keepalive: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            nodes: default_nodes(),
            queue: QueueKind::default(),
            durable: true,
            persistent: true,
            confirms: true,
            heartbeat: default_heartbeat(),
            startup_timeout: default_broker_startup_timeout(),
            net_ticktime: None,
            management: false,
        }
    }
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            replicas: 0,
            result_ttl: default_result_ttl(),
            startup_timeout: default_backend_startup_timeout(),
            sentinels: 0,
            sentinel_quorum: default_sentinel_quorum(),
            down_after: default_down_after(),
            failover_timeout: default_failover_timeout(),
            min_replicas_to_write: 0,
            min_replicas_max_lag: default_min_replicas_max_lag(),
            master_name: default_master_name(),
            keepalive: Duration::ZERO,
        }
    }
}

/// HAProxy in TCP mode in front of the broker nodes and the Redis data nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Health-check interval (`inter`) for every server.
    #[serde(default = "default_check_interval", with = "super::duration")]
    pub check_interval: Duration,
    /// Consecutive failed checks before a server is marked DOWN.
    #[serde(default = "default_fall_rise")]
    pub fall: u32,
    /// Consecutive passed checks before a server is marked UP again.
    #[serde(default = "default_fall_rise")]
    pub rise: u32,
    /// `timeout connect`: also the turn-around of a connection retry to a dead server,
    /// which dominates broker failover.
    #[serde(default = "default_timeout_connect", with = "super::duration")]
    pub timeout_connect: Duration,
    /// `timeout client`: an idle client-side connection is cut after this long.
    #[serde(default = "default_idle_timeout", with = "super::duration")]
    pub timeout_client: Duration,
    /// `timeout server`: an idle server-side connection is cut after this long.
    #[serde(default = "default_idle_timeout", with = "super::duration")]
    pub timeout_server: Duration,
    /// `observe layer4 error-limit 1 on-error mark-down`: a failed connection to a server
    /// marks it DOWN at once instead of waiting for `fall` checks.
    #[serde(default = "default_true")]
    pub observe_layer4: bool,
    /// `on-marked-up shutdown-backup-sessions` on the primary broker server: when the
    /// primary is UP again, HAProxy closes the sessions on the backups so clients come
    /// back to it (fail back). Off, clients stay on the backup they failed over to.
    #[serde(default)]
    pub fail_back: bool,
    /// `on-marked-down shutdown-sessions` on the Redis servers: when a data node fails its
    /// check (a demoted master no longer says `role:master`), HAProxy closes the client
    /// sessions on it, so clients reconnect to the new master. Off, those sessions stay on
    /// the demoted node and every write gets `READONLY`.
    #[serde(default = "default_true")]
    pub backend_shutdown_sessions: bool,
    /// A guard in the Redis check against a restarted old master: besides `role:master`,
    /// require `uptime_in_seconds` of at least this (whole seconds; absent = no guard). A
    /// master killed and restarted with its own config comes back empty and answers
    /// `role:master` until the Sentinels demote it (`+convert-to-slave`, ~10 s after
    /// they promoted a replica); while its uptime is below the guard HAProxy never routes
    /// to it. The promoted replica has been running all along and passes at once. The
    /// price: a data node that just (re)started is not used for this long, at bring-up
    /// too.
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub master_min_uptime: Option<Duration>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            check_interval: default_check_interval(),
            fall: default_fall_rise(),
            rise: default_fall_rise(),
            timeout_connect: default_timeout_connect(),
            timeout_client: default_idle_timeout(),
            timeout_server: default_idle_timeout(),
            observe_layer4: true,
            fail_back: false,
            backend_shutdown_sessions: true,
            master_min_uptime: None,
        }
    }
}

/// The worker processes that consume tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkersConfig {
    /// Which worker implementation runs the tasks.
    #[serde(default)]
    pub kind: WorkerKind,
    /// Number of worker processes.
    #[serde(default = "default_worker_count")]
    pub count: u32,
    /// Tasks executed at once per worker; `None` means the CPU count, as Celery does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// Unacked deliveries per worker = concurrency × this (Celery's default is 4).
    #[serde(default = "default_prefetch_multiplier")]
    pub prefetch_multiplier: u32,
    /// When a worker acknowledges a delivery; decides at-least-once vs at-most-once.
    #[serde(default)]
    pub acks: AckMode,
    /// Celery's execution pool (only with `kind = "celery"`; default prefork).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<CeleryPool>,
    /// Directory with `hab_tasks.py` and the `venv/` made by its `setup.sh` (only with
    /// `kind = "celery"`). Default: `scripts/celery` in the working directory when it is
    /// set up, else hab's cache, created on first use ([`super::celery`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub celery_dir: Option<std::path::PathBuf>,
    /// Celery's `task_track_started`: the worker stores a STARTED record when a task
    /// starts (only with `kind = "celery"`; default false, as Celery). Progress, not a
    /// result: hab waits for the final state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub track_started: bool,
    /// How much work one message may ask for (`[workers.limits]`), and when a task that
    /// keeps killing its worker is failed instead of run again.
    #[serde(default)]
    pub limits: super::limits::WorkerLimits,
}

/// Celery's execution pools hab can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CeleryPool {
    /// Child processes (Celery's default).
    #[default]
    Prefork,
    /// Threads in the worker process.
    Threads,
    /// One task at a time in the worker process.
    Solo,
}

impl CeleryPool {
    /// The name Celery's `--pool` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            CeleryPool::Prefork => "prefork",
            CeleryPool::Threads => "threads",
            CeleryPool::Solo => "solo",
        }
    }
}

/// Which worker implementation runs the tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    /// hab's own worker (`hab worker`), speaking Celery protocol v2.
    #[default]
    Hab,
    /// A real Celery worker (`scripts/celery/`: run its `setup.sh` first) with hab's four
    /// tasks, reporting its executions through the same side channel.
    Celery,
}

/// When a worker acknowledges a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckMode {
    /// Ack after the result is stored: a crash redelivers the task (at-least-once).
    #[default]
    Late,
    /// Ack when execution starts, Celery's default: a crash loses the task (at-most-once).
    Early,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            kind: WorkerKind::default(),
            count: default_worker_count(),
            concurrency: None,
            prefetch_multiplier: default_prefetch_multiplier(),
            acks: AckMode::default(),
            pool: None,
            celery_dir: None,
            track_started: false,
            limits: Default::default(),
        }
    }
}

impl WorkersConfig {
    /// Tasks executed at once per worker: the configured value, else the CPU count.
    pub fn concurrency(&self) -> u32 {
        self.concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1)
        })
    }

    /// AMQP prefetch count per worker channel: concurrency × multiplier, capped at 65535.
    pub fn prefetch(&self) -> u16 {
        let wanted = u64::from(self.concurrency()) * u64::from(self.prefetch_multiplier);
        u16::try_from(wanted).unwrap_or(u16::MAX)
    }
}

fn default_nodes() -> u32 {
    1
}

fn default_true() -> bool {
    true
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(10)
}
fn default_broker_startup_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_backend_startup_timeout() -> Duration {
    Duration::from_secs(20)
}
fn default_result_ttl() -> Duration {
    Duration::from_secs(86_400)
}
fn default_sentinel_quorum() -> u32 {
    2
}
fn default_down_after() -> Duration {
    Duration::from_secs(1)
}
fn default_failover_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_min_replicas_max_lag() -> Duration {
    Duration::from_secs(2)
}
fn default_master_name() -> String {
    "hab".to_string()
}
fn default_check_interval() -> Duration {
    Duration::from_millis(250)
}
fn default_fall_rise() -> u32 {
    2
}
fn default_timeout_connect() -> Duration {
    Duration::from_millis(100)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(3600)
}
fn default_worker_count() -> u32 {
    1
}
fn default_prefetch_multiplier() -> u32 {
    4
}

impl Topology {
    /// Whether hab talks to an existing stack instead of starting one.
    pub fn is_external(&self) -> bool {
        self.external.is_some()
    }
}

#[cfg(test)]
mod tests;
