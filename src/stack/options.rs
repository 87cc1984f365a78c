//! What a stack is asked for: where it writes its files ([`StackDirs`]) and what to bring
//! up ([`StackOptions`], from a topology or by hand), checked before anything starts.

use std::path::PathBuf;
use std::time::Duration;

use super::StackError;
use super::haproxy::HaproxyOptions;
use super::sentinel::SentinelOptions;
use crate::config::{QueueKind, Topology};

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
    pub(super) fn redis_directives(&self) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

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
