//! The topology file: what is deployed (broker nodes, result backend, workers).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Diagnostic;
use super::check_name;

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
    /// `kind = "celery"`; default `scripts/celery`, relative to the working directory).
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

/// Pushes a diagnostic if `value` is outside `lo..=hi`.
fn check_range(out: &mut Vec<Diagnostic>, location: &str, value: u32, lo: u32, hi: u32) {
    if !(lo..=hi).contains(&value) {
        out.push(Diagnostic::new(
            location,
            format!("must be between {lo} and {hi}, got {value}"),
        ));
    }
}

/// Pushes a diagnostic if a timeout is zero.
fn check_positive(out: &mut Vec<Diagnostic>, location: &str, value: Duration) {
    if value.is_zero() {
        out.push(Diagnostic::new(
            location,
            r#"must be greater than zero, e.g. "30s""#,
        ));
    }
}

/// Pushes a diagnostic unless `value` is a positive whole number of milliseconds (what
/// Sentinel and HAProxy accept).
fn check_whole_ms(out: &mut Vec<Diagnostic>, location: &str, value: Duration) {
    if value < Duration::from_millis(1) || value.subsec_nanos() % 1_000_000 != 0 {
        out.push(Diagnostic::new(
            location,
            format!(
                "must be whole milliseconds, at least 1ms, got {}",
                humantime::format_duration(value)
            ),
        ));
    }
}

impl Topology {
    /// Checks every cross-field and range rule and returns all problems (empty = valid).
    pub fn validate(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        check_name(&mut out, "name", &self.name);

        let b = &self.broker;
        check_range(&mut out, "broker.nodes", b.nodes, 1, 9);
        if b.queue == QueueKind::Quorum && !b.durable {
            out.push(Diagnostic::new(
                "broker.durable",
                "quorum queues are always durable; use queue = \"classic\" for a non-durable queue",
            ));
        }
        if b.queue == QueueKind::Mirrored && b.nodes < 2 {
            out.push(Diagnostic::new(
                "broker.queue",
                format!(
                    "\"mirrored\" needs broker.nodes >= 2 (got {}); use \"classic\" for a single node",
                    b.nodes
                ),
            ));
        }
        let hb = b.heartbeat;
        if !hb.is_zero() && !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&hb) {
            out.push(Diagnostic::new(
                "broker.heartbeat",
                format!(
                    "must be \"0s\" (disabled) or between 1s and 600s, got {}",
                    humantime::format_duration(hb)
                ),
            ));
        }
        check_positive(&mut out, "broker.startup_timeout", b.startup_timeout);
        if let Some(t) = b.net_ticktime
            && (t < Duration::from_secs(2) || t > Duration::from_secs(600) || t.subsec_nanos() != 0)
        {
            out.push(Diagnostic::new(
                "broker.net_ticktime",
                format!(
                    "must be whole seconds between 2s and 600s (Erlang's net_ticktime; \
                     absent = 60s), got {}",
                    humantime::format_duration(t)
                ),
            ));
        }
        self.producer.validate(&mut out);

        let r = &self.backend;
        if r.replicas > 5 {
            out.push(Diagnostic::new(
                "backend.replicas",
                format!("must be between 0 and 5, got {}", r.replicas),
            ));
        }
        if !r.keepalive.is_zero() {
            if r.keepalive < Duration::from_millis(100)
                || r.keepalive.subsec_nanos() % 1_000_000 != 0
            {
                out.push(Diagnostic::new(
                    "backend.keepalive",
                    format!(
                        "must be \"0s\" (off) or whole milliseconds, at least 100ms, got {}",
                        humantime::format_duration(r.keepalive)
                    ),
                ));
            }
            if self.workers.kind == WorkerKind::Celery {
                out.push(Diagnostic::new(
                    "backend.keepalive",
                    "only hab's own worker sends Redis keepalives; set it to \"0s\" with workers.kind = \"celery\"",
                ));
            }
        }
        if r.result_ttl < Duration::from_secs(1) {
            out.push(Diagnostic::new(
                "backend.result_ttl",
                format!(
                    "must be at least 1s (Redis expiries are whole seconds), got {}",
                    humantime::format_duration(r.result_ttl)
                ),
            ));
        }
        check_positive(&mut out, "backend.startup_timeout", r.startup_timeout);
        if r.sentinels > 7 {
            out.push(Diagnostic::new(
                "backend.sentinels",
                format!("must be between 0 and 7, got {}", r.sentinels),
            ));
        }
        if r.sentinels > 0 && r.replicas == 0 {
            out.push(Diagnostic::new(
                "backend.sentinels",
                format!(
                    "{} Sentinel(s) need a replica to promote; set backend.replicas >= 1 \
                     (or sentinels = 0)",
                    r.sentinels
                ),
            ));
        }
        if r.sentinels > 0 && !(1..=r.sentinels).contains(&r.sentinel_quorum) {
            out.push(Diagnostic::new(
                "backend.sentinel_quorum",
                format!(
                    "must be between 1 and backend.sentinels ({}), got {}",
                    r.sentinels, r.sentinel_quorum
                ),
            ));
        }
        check_whole_ms(&mut out, "backend.down_after", r.down_after);
        check_whole_ms(&mut out, "backend.failover_timeout", r.failover_timeout);
        if r.min_replicas_to_write > r.replicas {
            out.push(Diagnostic::new(
                "backend.min_replicas_to_write",
                format!(
                    "must not exceed backend.replicas ({}), got {}; a master could never write",
                    r.replicas, r.min_replicas_to_write
                ),
            ));
        }
        let lag = r.min_replicas_max_lag;
        if lag < Duration::from_secs(1) || lag.subsec_nanos() != 0 {
            out.push(Diagnostic::new(
                "backend.min_replicas_max_lag",
                format!(
                    "must be whole seconds, at least 1s (Redis counts replica lag in seconds), \
                     got {}",
                    humantime::format_duration(lag)
                ),
            ));
        }
        if r.master_name.is_empty()
            || !r
                .master_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            out.push(Diagnostic::new(
                "backend.master_name",
                format!(
                    "{:?} is not a usable Sentinel master name; use only letters, digits, \
                     '_', '.' or '-'",
                    r.master_name
                ),
            ));
        }

        if let Some(p) = &self.proxy {
            if p.check_interval < Duration::from_millis(10)
                || p.check_interval.subsec_nanos() % 1_000_000 != 0
            {
                out.push(Diagnostic::new(
                    "proxy.check_interval",
                    format!(
                        "must be whole milliseconds, at least 10ms, got {}",
                        humantime::format_duration(p.check_interval)
                    ),
                ));
            }
            check_range(&mut out, "proxy.fall", p.fall, 1, 100);
            check_range(&mut out, "proxy.rise", p.rise, 1, 100);
            check_whole_ms(&mut out, "proxy.timeout_connect", p.timeout_connect);
            check_whole_ms(&mut out, "proxy.timeout_client", p.timeout_client);
            check_whole_ms(&mut out, "proxy.timeout_server", p.timeout_server);
            if let Some(u) = p.master_min_uptime
                && (u < Duration::from_secs(1)
                    || u > Duration::from_secs(3600)
                    || u.subsec_nanos() != 0)
            {
                out.push(Diagnostic::new(
                    "proxy.master_min_uptime",
                    format!(
                        "must be whole seconds between 1s and 1h (Redis reports uptime_in_seconds), got {}",
                        humantime::format_duration(u)
                    ),
                ));
            }
        }

        super::clients::validate(self, &mut out);

        let w = &self.workers;
        check_range(&mut out, "workers.count", w.count, 1, 64);
        if let Some(c) = w.concurrency {
            check_range(&mut out, "workers.concurrency", c, 1, 1024);
        }
        check_range(
            &mut out,
            "workers.prefetch_multiplier",
            w.prefetch_multiplier,
            1,
            1000,
        );
        w.limits.validate("workers.limits", &mut out);
        if w.kind == WorkerKind::Hab {
            for (field, set) in [
                ("workers.pool", w.pool.is_some()),
                ("workers.celery_dir", w.celery_dir.is_some()),
            ] {
                if set {
                    out.push(Diagnostic::new(
                        field,
                        "only applies to kind = \"celery\" (hab's own worker has no pool)",
                    ));
                }
            }
            if w.track_started {
                out.push(Diagnostic::new(
                    "workers.track_started",
                    "only applies to kind = \"celery\" (hab's own worker stores final states only)",
                ));
            }
        }
        if let Some(e) = &self.external {
            e.validate(&mut out);
            self.validate_external_exclusions(&mut out);
        }
        out
    }

    /// What a local stack can be told but an external one cannot: hab does not start its
    /// servers, so node counts, start-up settings, HAProxy and namespaces are not its to
    /// choose.
    fn validate_external_exclusions(&self, out: &mut Vec<Diagnostic>) {
        const WHY: &str = "an external stack is not started by hab";
        if self.proxy.is_some() {
            out.push(Diagnostic::new(
                "proxy",
                format!("{WHY}: remove [proxy] (its HAProxy is yours; give its stats in external.haproxy_stats)"),
            ));
        }
        if self.network != NetworkKind::Loopback {
            out.push(Diagnostic::new(
                "network",
                format!("{WHY}: remove network (only local stacks are placed in namespaces)"),
            ));
        }
        let b = BrokerConfig::default();
        let r = BackendConfig::default();
        for (field, differs, instead) in [
            (
                "broker.nodes",
                self.broker.nodes != b.nodes,
                "external.broker_nodes",
            ),
            (
                "broker.startup_timeout",
                self.broker.startup_timeout != b.startup_timeout,
                "nothing: hab does not start it",
            ),
            (
                "broker.net_ticktime",
                self.broker.net_ticktime != b.net_ticktime,
                "your RabbitMQ configuration",
            ),
            (
                "broker.management",
                self.broker.management != b.management,
                "external.management (the addresses of your management API)",
            ),
            (
                "backend.replicas",
                self.backend.replicas != r.replicas,
                "external.backend_nodes",
            ),
            (
                "backend.sentinels",
                self.backend.sentinels != r.sentinels,
                "external.sentinels",
            ),
            (
                "backend.sentinel_quorum",
                self.backend.sentinel_quorum != r.sentinel_quorum,
                "your Sentinels' own configuration",
            ),
            (
                "backend.down_after",
                self.backend.down_after != r.down_after,
                "your Sentinels' own configuration",
            ),
            (
                "backend.failover_timeout",
                self.backend.failover_timeout != r.failover_timeout,
                "your Sentinels' own configuration",
            ),
            (
                "backend.min_replicas_to_write",
                self.backend.min_replicas_to_write != r.min_replicas_to_write,
                "your Redis configuration",
            ),
            (
                "backend.startup_timeout",
                self.backend.startup_timeout != r.startup_timeout,
                "nothing: hab does not start it",
            ),
        ] {
            if differs {
                out.push(Diagnostic::new(
                    field,
                    format!("{WHY}; this comes from {instead}"),
                ));
            }
        }
    }

    /// Whether hab talks to an existing stack instead of starting one.
    pub fn is_external(&self) -> bool {
        self.external.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{ConfigError, parse_topology};

    const MINIMAL: &str = "name = \"t\"\n[broker]\nnodes = 1\n[backend]\n";

    /// Parses `text` as `topologies/bad.toml` and returns the error text.
    fn err(text: &str) -> String {
        match parse_topology(text, Path::new("topologies/bad.toml")) {
            Ok(t) => panic!("accepted: {t:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_has(msg: &str, parts: &[&str]) {
        for p in parts {
            assert!(msg.contains(p), "{p:?} not in:\n{msg}");
        }
    }

    /// The diagnostics for MINIMAL with `edit` applied.
    fn diags(edit: impl FnOnce(&mut Topology)) -> Vec<String> {
        let mut t: Topology = toml::from_str(MINIMAL).unwrap();
        edit(&mut t);
        t.validate().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn keepalive_is_off_or_at_least_100ms_and_only_for_habs_worker() {
        let t = parse_topology(
            &format!("{MINIMAL}keepalive = \"2s\"\n"),
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(t.backend.keepalive, Duration::from_secs(2));
        let e = parse_topology(
            &format!("{MINIMAL}keepalive = 2\n"),
            Path::new("topologies/bad.toml"),
        )
        .unwrap_err()
        .to_string();
        assert_has(
            &e,
            &["topologies/bad.toml", "line 5", "keepalive", "\"10s\""],
        );
        for (bad, want) in [
            (Duration::from_millis(50), "got 50ms"),
            (Duration::from_micros(150_500), "got 150ms 500us"),
        ] {
            let got = diags(|t| t.backend.keepalive = bad);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(
                got[0].starts_with(
                    "backend.keepalive: must be \"0s\" (off) or whole milliseconds, at least 100ms"
                ) && got[0].contains(want),
                "{got:?}"
            );
        }
        let got = diags(|t| {
            t.backend.keepalive = Duration::from_secs(1);
            t.workers.kind = WorkerKind::Celery;
        });
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].contains("only hab's own worker sends Redis keepalives"),
            "{got:?}"
        );
        assert_eq!(
            diags(|t| t.backend.keepalive = Duration::from_millis(100)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn network_is_loopback_unless_namespaces_are_asked_for() {
        let t = parse_topology(MINIMAL, Path::new("t.toml")).unwrap();
        assert_eq!(t.network, NetworkKind::Loopback);
        assert!(
            !toml::to_string(&t).unwrap().contains("network"),
            "the default stays out of serialized topologies"
        );
        let t = parse_topology(
            &format!("network = \"namespaces\"\n{MINIMAL}"),
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(t.network, NetworkKind::Namespaces);
        assert!(
            toml::to_string(&t)
                .unwrap()
                .contains("network = \"namespaces\"")
        );
        assert_has(
            &err(&format!("network = \"netns\"\n{MINIMAL}")),
            &[
                "topologies/bad.toml",
                "line 1",
                "unknown variant `netns`, expected `loopback` or `namespaces`",
            ],
        );
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
        for f in ["ha-netns.toml", "ha-netns-minreplicas.toml"] {
            let t = crate::config::load_topology(&root.join(f)).unwrap();
            assert_eq!(t.network, NetworkKind::Namespaces, "{f}");
        }
    }

    #[test]
    fn defaults_apply_when_optional_fields_and_sections_are_omitted() {
        let t = parse_topology(MINIMAL, Path::new("t.toml")).unwrap();
        assert_eq!(t.description, "");
        assert_eq!(
            t.broker,
            BrokerConfig {
                nodes: 1,
                queue: QueueKind::Classic,
                durable: true,
                persistent: true,
                confirms: true,
                heartbeat: Duration::from_secs(10),
                startup_timeout: Duration::from_secs(60),
                net_ticktime: None,
                management: false,
            }
        );
        assert_eq!(
            t.backend,
            BackendConfig {
                replicas: 0,
                result_ttl: Duration::from_secs(86_400),
                startup_timeout: Duration::from_secs(20),
                sentinels: 0,
                sentinel_quorum: 2,
                down_after: Duration::from_secs(1),
                failover_timeout: Duration::from_secs(5),
                min_replicas_to_write: 0,
                min_replicas_max_lag: Duration::from_secs(2),
                master_name: "hab".into(),
                keepalive: Duration::ZERO,
            }
        );
        assert_eq!(t.proxy, None);
        assert_eq!(
            t.workers,
            WorkersConfig {
                kind: WorkerKind::Hab,
                count: 1,
                concurrency: None,
                prefetch_multiplier: 4,
                acks: AckMode::Late,
                pool: None,
                celery_dir: None,
                track_started: false,
                limits: Default::default(),
            }
        );
        // A [workers] section with only some fields keeps the other defaults.
        let t = parse_topology(
            &format!("{MINIMAL}[workers]\ncount = 3\n"),
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(t.workers.count, 3);
        assert_eq!(t.workers.prefetch_multiplier, 4);
        assert_eq!(t.workers.acks, AckMode::Late);
    }

    #[test]
    fn concurrency_defaults_to_cpu_count_and_prefetch_saturates() {
        let cpus = std::thread::available_parallelism().unwrap().get() as u32;
        let mut w = WorkersConfig::default();
        assert_eq!(w.concurrency(), cpus);
        assert_eq!(u32::from(w.prefetch()), (cpus * 4).min(65_535));
        w.concurrency = Some(2);
        w.prefetch_multiplier = 3;
        assert_eq!((w.concurrency(), w.prefetch()), (2, 6));
        w.concurrency = Some(1024);
        w.prefetch_multiplier = 1000;
        assert_eq!(w.prefetch(), u16::MAX);
    }

    #[test]
    fn unknown_fields_are_rejected_at_every_level() {
        let e = err(&format!("bogus = 1\n{MINIMAL}"));
        assert_has(
            &e,
            &[
                "topology file topologies/bad.toml: ",
                "line 1, column 1",
                "unknown field `bogus`, expected one of `name`, `description`, `broker`, `backend`, `proxy`, `workers`",
            ],
        );
        let e = err("name = \"t\"\n[broker]\nnodes = 1\nnode = 2\n[backend]\n");
        assert_has(&e, &["line 4", "unknown field `node`", "`nodes`, `queue`"]);
        let e = err(&format!("{MINIMAL}ttl = \"1s\"\n"));
        assert_has(&e, &["line 5", "unknown field `ttl`", "`result_ttl`"]);
        let e = err(&format!("{MINIMAL}[workers]\nprefetch = 1\n"));
        assert_has(
            &e,
            &[
                "line 6",
                "unknown field `prefetch`",
                "`prefetch_multiplier`",
            ],
        );
        let e = err(&format!("{MINIMAL}[proxy]\nport = 1\n"));
        assert_has(
            &e,
            &["line 6", "unknown field `port`", "`check_interval`, `fall`"],
        );
        let e = err(&format!("{MINIMAL}sentinel = 3\n"));
        assert_has(&e, &["line 5", "unknown field `sentinel`", "`sentinels`"]);
    }

    #[test]
    fn wrong_types_name_the_line_and_the_expected_type() {
        let e = err("name = \"t\"\n[broker]\nnodes = \"one\"\n[backend]\n");
        assert_has(
            &e,
            &[
                "line 3, column 9",
                "nodes = \"one\"",
                "invalid type: string \"one\", expected u32",
            ],
        );
        let e = err("name = \"t\"\n[broker]\nnodes = -1\n[backend]\n");
        assert_has(&e, &["line 3", "invalid value: integer `-1`, expected u32"]);
        let e = err("name = \"t\"\n[broker]\nnodes = 1\nconfirms = \"yes\"\n[backend]\n");
        assert_has(&e, &["line 4", "expected a boolean"]);
        let e = err("name = \"t\"\n[broker]\nnodes = 1\nheartbeat = 10\n[backend]\n");
        assert_has(
            &e,
            &[
                "line 4",
                "heartbeat = 10",
                "expected a duration string",
                r#""500ms", "10s", "2m""#,
            ],
        );
    }

    #[test]
    fn bad_durations_name_the_field_and_show_the_format() {
        let e = err("name = \"t\"\n[broker]\nnodes = 1\nheartbeat = \"10 parsecs\"\n[backend]\n");
        assert_has(
            &e,
            &[
                "topologies/bad.toml",
                "line 4, column 13",
                "heartbeat = \"10 parsecs\"",
                r#"invalid duration "10 parsecs" (unknown unit "parsecs")"#,
                r#"durations look like "500ms", "10s", "2m""#,
            ],
        );
        let e = err(&format!("{MINIMAL}result_ttl = \"86400\"\n"));
        assert_has(
            &e,
            &[
                "line 5",
                "result_ttl = \"86400\"",
                "time unit needed",
                "\"10s\"",
            ],
        );
        let e = err(&format!("{MINIMAL}startup_timeout = \"\"\n"));
        assert_has(&e, &["line 5", "startup_timeout", "empty", "\"10s\""]);
    }

    #[test]
    fn bad_enum_values_list_the_allowed_values() {
        let e = err("name = \"t\"\n[broker]\nnodes = 1\nqueue = \"stream\"\n[backend]\n");
        assert_has(
            &e,
            &[
                "line 4",
                "unknown variant `stream`, expected one of `classic`, `quorum`, `mirrored`",
            ],
        );
        let e = err(&format!("{MINIMAL}[workers]\nacks = \"sometimes\"\n"));
        assert_has(
            &e,
            &[
                "line 6",
                "unknown variant `sometimes`, expected `late` or `early`",
            ],
        );
        let e = err(&format!("{MINIMAL}[workers]\nkind = \"dramatiq\"\n"));
        assert_has(
            &e,
            &[
                "line 6",
                "unknown variant `dramatiq`, expected `hab` or `celery`",
            ],
        );
        let e = err(&format!(
            "{MINIMAL}[workers]\nkind = \"celery\"\npool = \"gevent\"\n"
        ));
        assert_has(
            &e,
            &["line 7", "expected one of `prefork`, `threads`, `solo`"],
        );
    }

    #[test]
    fn missing_required_fields_are_named() {
        assert_has(
            &err("[broker]\nnodes = 1\n[backend]\n"),
            &["line 1", "missing field `name`"],
        );
        // [broker] and [backend] may be left out (an external stack's nodes are listed in
        // [external]); a local one then is the standalone default.
        let t = parse_topology("name = \"t\"\n", Path::new("t.toml")).unwrap();
        assert_eq!((t.broker.nodes, t.backend.replicas), (1, 0));
        // Everything inside [broker] has a default (nodes = 1): an empty table is fine.
        assert_eq!(
            parse_topology("name = \"t\"\n[broker]\n[backend]\n", Path::new("t.toml"))
                .unwrap()
                .broker
                .nodes,
            1
        );
    }

    #[test]
    fn validation_reports_every_range_rule_with_its_location() {
        assert_eq!(diags(|_| {}), Vec::<String>::new());
        type Edit = Box<dyn FnOnce(&mut Topology)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|t| t.name = String::new()),
                "name: must not be empty",
            ),
            (
                Box::new(|t| t.name = "a/b".into()),
                "name: \"a/b\" contains '/'; use only letters",
            ),
            (
                Box::new(|t| t.broker.nodes = 0),
                "broker.nodes: must be between 1 and 9, got 0",
            ),
            (
                Box::new(|t| t.broker.nodes = 10),
                "broker.nodes: must be between 1 and 9, got 10",
            ),
            (
                Box::new(|t| t.broker.queue = QueueKind::Mirrored),
                "broker.queue: \"mirrored\" needs broker.nodes >= 2 (got 1)",
            ),
            (
                Box::new(|t| t.broker.heartbeat = Duration::from_millis(500)),
                "broker.heartbeat: must be \"0s\" (disabled) or between 1s and 600s, got 500ms",
            ),
            (
                Box::new(|t| t.broker.heartbeat = Duration::from_secs(601)),
                "broker.heartbeat: must be \"0s\" (disabled) or between 1s and 600s, got 10m 1s",
            ),
            (
                Box::new(|t| t.broker.net_ticktime = Some(Duration::from_secs(1))),
                "broker.net_ticktime: must be whole seconds between 2s and 600s (Erlang's net_ticktime; absent = 60s), got 1s",
            ),
            (
                Box::new(|t| t.broker.net_ticktime = Some(Duration::from_millis(2500))),
                "broker.net_ticktime: must be whole seconds between 2s and 600s",
            ),
            (
                Box::new(|t| t.broker.startup_timeout = Duration::ZERO),
                "broker.startup_timeout: must be greater than zero",
            ),
            (
                Box::new(|t| t.backend.replicas = 6),
                "backend.replicas: must be between 0 and 5, got 6",
            ),
            (
                Box::new(|t| t.backend.result_ttl = Duration::from_millis(999)),
                "backend.result_ttl: must be at least 1s",
            ),
            (
                Box::new(|t| t.backend.startup_timeout = Duration::ZERO),
                "backend.startup_timeout: must be greater than zero",
            ),
            (
                Box::new(|t| t.workers.count = 0),
                "workers.count: must be between 1 and 64, got 0",
            ),
            (
                Box::new(|t| t.workers.count = 65),
                "workers.count: must be between 1 and 64, got 65",
            ),
            (
                Box::new(|t| t.workers.concurrency = Some(0)),
                "workers.concurrency: must be between 1 and 1024, got 0",
            ),
            (
                Box::new(|t| t.workers.concurrency = Some(1025)),
                "workers.concurrency: must be between 1 and 1024, got 1025",
            ),
            (
                Box::new(|t| t.workers.prefetch_multiplier = 0),
                "workers.prefetch_multiplier: must be between 1 and 1000, got 0",
            ),
            (
                Box::new(|t| t.workers.prefetch_multiplier = 1001),
                "workers.prefetch_multiplier: must be between 1 and 1000, got 1001",
            ),
            (
                Box::new(|t| t.workers.track_started = true),
                "workers.track_started: only applies to kind = \"celery\" (hab's own worker stores final states only)",
            ),
            (
                Box::new(|t| t.workers.pool = Some(CeleryPool::Solo)),
                "workers.pool: only applies to kind = \"celery\" (hab's own worker has no pool)",
            ),
        ];
        for (edit, want) in cases {
            let got = diags(edit);
            assert_eq!(got.len(), 1, "{want}: {got:?}");
            assert!(got[0].starts_with(want), "want {want:?}, got {:?}", got[0]);
        }
    }

    #[test]
    fn validation_accepts_the_edges_of_each_range() {
        let ok = diags(|t| {
            t.name = "ha-3.quorum_v2".into();
            t.broker.nodes = 9;
            t.broker.queue = QueueKind::Mirrored;
            t.broker.heartbeat = Duration::ZERO;
            t.backend.replicas = 5;
            t.backend.result_ttl = Duration::from_secs(1);
            t.workers.count = 64;
            t.workers.concurrency = Some(1024);
            t.workers.prefetch_multiplier = 1000;
        });
        assert_eq!(ok, Vec::<String>::new());
        assert_eq!(
            diags(|t| t.broker.heartbeat = Duration::from_secs(600)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn an_empty_proxy_section_takes_every_default() {
        let t = parse_topology(&format!("{MINIMAL}[proxy]\n"), Path::new("t.toml")).unwrap();
        let p = t.proxy.unwrap();
        assert_eq!(p, ProxyConfig::default());
        assert_eq!(p.check_interval, Duration::from_millis(250));
        assert_eq!((p.fall, p.rise), (2, 2));
        assert_eq!(p.timeout_connect, Duration::from_millis(100));
        assert_eq!(p.timeout_client, Duration::from_secs(3600));
        assert_eq!(p.timeout_server, Duration::from_secs(3600));
        assert!(p.observe_layer4);
        // A proxied standalone (one node, no replica) is allowed.
        assert_eq!(t.broker.nodes, 1);
        assert_eq!(t.backend.replicas, 0);
    }

    #[test]
    fn validation_of_the_ha_fields_names_each_location() {
        type Edit = Box<dyn FnOnce(&mut Topology)>;
        let with_proxy = |t: &mut Topology| t.proxy = Some(ProxyConfig::default());
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|t| t.backend.sentinels = 3),
                "backend.sentinels: 3 Sentinel(s) need a replica to promote; set backend.replicas >= 1",
            ),
            (
                Box::new(|t| {
                    t.backend.replicas = 1;
                    t.backend.sentinels = 8;
                }),
                "backend.sentinels: must be between 0 and 7, got 8",
            ),
            (
                Box::new(|t| {
                    t.backend.replicas = 1;
                    t.backend.sentinels = 3;
                    t.backend.sentinel_quorum = 4;
                }),
                "backend.sentinel_quorum: must be between 1 and backend.sentinels (3), got 4",
            ),
            (
                Box::new(|t| {
                    t.backend.replicas = 1;
                    t.backend.sentinels = 3;
                    t.backend.sentinel_quorum = 0;
                }),
                "backend.sentinel_quorum: must be between 1 and backend.sentinels (3), got 0",
            ),
            (
                Box::new(|t| t.backend.down_after = Duration::ZERO),
                "backend.down_after: must be whole milliseconds, at least 1ms, got 0s",
            ),
            (
                Box::new(|t| t.backend.failover_timeout = Duration::from_micros(1500)),
                "backend.failover_timeout: must be whole milliseconds, at least 1ms, got 1ms 500us",
            ),
            (
                Box::new(|t| t.backend.min_replicas_to_write = 1),
                "backend.min_replicas_to_write: must not exceed backend.replicas (0), got 1",
            ),
            (
                Box::new(|t| t.backend.min_replicas_max_lag = Duration::from_millis(1500)),
                "backend.min_replicas_max_lag: must be whole seconds, at least 1s",
            ),
            (
                Box::new(|t| t.backend.min_replicas_max_lag = Duration::ZERO),
                "backend.min_replicas_max_lag: must be whole seconds, at least 1s",
            ),
            (
                Box::new(|t| t.backend.master_name = "my master".into()),
                "backend.master_name: \"my master\" is not a usable Sentinel master name",
            ),
            (
                Box::new(|t| t.backend.master_name = String::new()),
                "backend.master_name: \"\" is not a usable Sentinel master name",
            ),
            (
                Box::new(move |t| {
                    with_proxy(t);
                    t.proxy.as_mut().unwrap().check_interval = Duration::from_millis(5);
                }),
                "proxy.check_interval: must be whole milliseconds, at least 10ms, got 5ms",
            ),
            (
                Box::new(move |t| {
                    with_proxy(t);
                    t.proxy.as_mut().unwrap().fall = 0;
                }),
                "proxy.fall: must be between 1 and 100, got 0",
            ),
            (
                Box::new(move |t| {
                    with_proxy(t);
                    t.proxy.as_mut().unwrap().rise = 101;
                }),
                "proxy.rise: must be between 1 and 100, got 101",
            ),
            (
                Box::new(move |t| {
                    with_proxy(t);
                    t.proxy.as_mut().unwrap().timeout_connect = Duration::ZERO;
                }),
                "proxy.timeout_connect: must be whole milliseconds, at least 1ms, got 0s",
            ),
            (
                Box::new(move |t| {
                    with_proxy(t);
                    t.proxy.as_mut().unwrap().timeout_client = Duration::ZERO;
                }),
                "proxy.timeout_client: must be whole milliseconds",
            ),
            (
                Box::new(move |t| {
                    with_proxy(t);
                    t.proxy.as_mut().unwrap().timeout_server = Duration::from_nanos(1);
                }),
                "proxy.timeout_server: must be whole milliseconds",
            ),
            (
                Box::new(move |t| {
                    with_proxy(t);
                    t.proxy.as_mut().unwrap().master_min_uptime = Some(Duration::from_millis(1500));
                }),
                "proxy.master_min_uptime: must be whole seconds between 1s and 1h (Redis reports uptime_in_seconds), got 1s 500ms",
            ),
        ];
        for (edit, want) in cases {
            let got = diags(edit);
            assert_eq!(got.len(), 1, "{want}: {got:?}");
            assert!(got[0].starts_with(want), "want {want:?}, got {:?}", got[0]);
        }
        // Sentinels off: the quorum is not looked at. With replicas, everything fits.
        assert_eq!(
            diags(|t| t.backend.sentinel_quorum = 9),
            Vec::<String>::new()
        );
        let ok = diags(|t| {
            t.broker.nodes = 3;
            t.backend.replicas = 2;
            t.backend.sentinels = 3;
            t.backend.sentinel_quorum = 3;
            t.backend.min_replicas_to_write = 2;
            t.backend.min_replicas_max_lag = Duration::from_secs(10);
            t.backend.master_name = "my-master_1.x".into();
            t.proxy = Some(ProxyConfig {
                check_interval: Duration::from_millis(10),
                fall: 1,
                rise: 100,
                ..ProxyConfig::default()
            });
        });
        assert_eq!(ok, Vec::<String>::new());
    }

    #[test]
    fn shipped_topologies_parse_and_validate() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
        let standalone = crate::config::load_topology(&root.join("standalone.toml")).unwrap();
        assert_eq!(standalone.proxy, None);
        assert_eq!(standalone.backend.sentinels, 0);
        let ha = crate::config::load_topology(&root.join("ha.toml")).unwrap();
        assert_eq!(ha.broker.nodes, 3);
        assert_eq!(ha.broker.queue, QueueKind::Quorum);
        assert_eq!(ha.broker.heartbeat, Duration::from_secs(5));
        assert_eq!(
            (
                ha.backend.replicas,
                ha.backend.sentinels,
                ha.backend.sentinel_quorum
            ),
            (1, 3, 2)
        );
        assert_eq!(
            ha.proxy,
            Some(ProxyConfig {
                fail_back: true,
                ..ProxyConfig::default()
            })
        );
        let guard = crate::config::load_topology(&root.join("ha-uptime-guard.toml")).unwrap();
        assert_eq!(
            guard.proxy.as_ref().and_then(|p| p.master_min_uptime),
            Some(Duration::from_secs(20))
        );
        let keep = crate::config::load_topology(&root.join("ha-keep-sessions.toml")).unwrap();
        assert_eq!(
            keep.proxy.as_ref().map(|p| p.backend_shutdown_sessions),
            Some(false)
        );
        let mirrored = crate::config::load_topology(&root.join("ha-mirrored.toml")).unwrap();
        assert_eq!(mirrored.proxy, ha.proxy);
        assert_eq!(mirrored.broker.queue, QueueKind::Mirrored);
        assert_eq!(mirrored.broker.nodes, 3);
    }

    #[test]
    fn shipped_idle_topologies_differ_only_in_heartbeat_keepalive_timeouts_and_acks() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
        let load = |f: &str| crate::config::load_topology(&root.join(f)).unwrap();
        let s5 = Duration::from_secs(5);
        let cases = [
            ("idle-hb0-t5s.toml", 0, 0, s5, AckMode::Late),
            ("idle-hb2-t5s.toml", 2, 2, s5, AckMode::Late),
            (
                "idle-hb0-t1h.toml",
                0,
                0,
                Duration::from_secs(3600),
                AckMode::Late,
            ),
            ("idle-hb0-t5s-early.toml", 0, 0, s5, AckMode::Early),
        ];
        for (file, hb, ka, timeout, acks) in cases {
            let t = load(file);
            assert_eq!(format!("{}.toml", t.name), file);
            assert_eq!((t.broker.nodes, t.backend.replicas), (1, 0), "{file}");
            assert_eq!(t.broker.heartbeat, Duration::from_secs(hb), "{file}");
            assert_eq!(t.backend.keepalive, Duration::from_secs(ka), "{file}");
            let p = t.proxy.as_ref().expect("behind HAProxy");
            assert_eq!(
                (p.timeout_client, p.timeout_server),
                (timeout, timeout),
                "{file}"
            );
            assert_eq!(t.workers.acks, acks, "{file}");
            assert_eq!(t.workers.concurrency, Some(2), "{file}");
        }
        let plan = crate::config::load_workload_plan(&root.join("../workloads/idle-timeout.toml"))
            .unwrap();
        let gaps: Vec<_> = plan.workloads.iter().map(|w| w.idle_before).collect();
        assert_eq!(
            gaps,
            [
                None,
                Some(Duration::from_secs(8)),
                Some(Duration::from_secs(8))
            ]
        );
        // The sleeps and the gaps are longer than the 5 s timeouts.
        assert_eq!(
            plan.workloads[0].task,
            crate::config::TaskSpec::Sleep { seconds: 7.0 }
        );
    }

    #[test]
    fn invalid_file_error_names_file_and_every_problem() {
        let text = "name = \"t\"\n[broker]\nnodes = 1\nqueue = \"mirrored\"\nheartbeat = \"0.5s\"\n[backend]\n";
        let e = parse_topology(text, Path::new("topologies/bad.toml")).unwrap_err();
        let ConfigError::Invalid {
            kind, diagnostics, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(*kind, "topology");
        let locations: Vec<_> = diagnostics.iter().map(|d| d.location.as_str()).collect();
        assert_eq!(locations, ["broker.queue", "broker.heartbeat"]);
        assert_has(
            &e.to_string(),
            &[
                "topology file topologies/bad.toml: 2 problems:\n  broker.queue: ",
                "\n  broker.heartbeat: ",
            ],
        );
    }

    #[test]
    fn quorum_queues_cannot_be_made_non_durable() {
        let t = parse_topology(
            "name = \"t\"\n[broker]\nqueue = \"quorum\"\ndurable = false\n[backend]\n",
            Path::new("t.toml"),
        );
        let e = t.unwrap_err().to_string();
        assert!(
            e.contains("broker.durable") && e.contains("always durable"),
            "{e}"
        );
    }
}
