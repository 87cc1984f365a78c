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
    /// The RabbitMQ side.
    pub broker: BrokerConfig,
    /// The Redis result backend.
    pub backend: BackendConfig,
    /// The worker processes; the whole section is optional.
    #[serde(default)]
    pub workers: WorkersConfig,
}

/// The RabbitMQ broker: how many nodes and how messages are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Number of RabbitMQ nodes; 1 is standalone, more form a cluster.
    pub nodes: u32,
    /// Queue type of the task queue; decides how messages survive a node loss.
    #[serde(default)]
    pub queue: QueueKind,
    /// Whether the producer waits for publisher confirms (Celery's default is off).
    #[serde(default = "default_true")]
    pub confirms: bool,
    /// AMQP heartbeat interval for producer and workers; zero disables heartbeats.
    #[serde(default = "default_heartbeat", with = "super::duration")]
    pub heartbeat: Duration,
    /// How long one node may take to accept connections before the run fails.
    #[serde(default = "default_broker_startup_timeout", with = "super::duration")]
    pub startup_timeout: Duration,
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
}

/// Which worker implementation runs the tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerKind {
    /// hab's own worker (`hab worker`), speaking Celery protocol v2.
    #[default]
    Hab,
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

impl Topology {
    /// Checks every cross-field and range rule and returns all problems (empty = valid).
    pub fn validate(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        check_name(&mut out, "name", &self.name);

        let b = &self.broker;
        check_range(&mut out, "broker.nodes", b.nodes, 1, 9);
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

        let r = &self.backend;
        if r.replicas > 5 {
            out.push(Diagnostic::new(
                "backend.replicas",
                format!("must be between 0 and 5, got {}", r.replicas),
            ));
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
        out
    }
}
