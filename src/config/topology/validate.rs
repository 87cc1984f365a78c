//! `Topology::validate`: the cross-field and range rules of a topology file, every
//! problem reported with its location (the `[clients]` section's included).

use std::time::Duration;

use super::{BackendConfig, BrokerConfig, NetworkKind, QueueKind, Topology, WorkerKind};
use crate::config::Diagnostic;
use crate::config::check_name;
use crate::config::clients::{BackendAccess, BrokerAccess};

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

        validate_clients(self, &mut out);

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
}

/// Checks the `[clients]` section against the rest of the topology.
fn validate_clients(t: &Topology, out: &mut Vec<Diagnostic>) {
    let c = &t.clients;
    if let Some(e) = &t.external {
        if c.broker == BrokerAccess::Nodes && e.broker_nodes.is_empty() {
            out.push(Diagnostic::new(
                "clients.broker",
                "\"nodes\" needs the node addresses: list them in external.broker_nodes",
            ));
        }
        if c.broker == BrokerAccess::Proxy && e.broker.is_none() && !e.broker_nodes.is_empty() {
            out.push(Diagnostic::new(
                "clients.broker",
                "external.broker is not set, so clients can only use external.broker_nodes: set clients.broker = \"nodes\" (or give external.broker)",
            ));
        }
        if c.backend == BackendAccess::Sentinel && e.sentinels.is_empty() {
            out.push(Diagnostic::new(
                "clients.backend",
                "\"sentinel\" needs the Sentinels: list them in external.sentinels",
            ));
        }
        if c.backend == BackendAccess::Proxy && e.backend.is_none() && !e.sentinels.is_empty() {
            out.push(Diagnostic::new(
                "clients.backend",
                "external.backend is not set, so clients can only ask the Sentinels: set clients.backend = \"sentinel\" (or give external.backend)",
            ));
        }
        return;
    }
    if c.broker == BrokerAccess::Nodes && t.broker.nodes < 2 {
        out.push(Diagnostic::new(
            "clients.broker",
            format!(
                "\"nodes\" needs broker.nodes >= 2 to fail over to (got {}); use \"proxy\"",
                t.broker.nodes
            ),
        ));
    }
    if c.backend == BackendAccess::Sentinel && t.backend.sentinels == 0 {
        out.push(Diagnostic::new(
            "clients.backend",
            "\"sentinel\" needs backend.sentinels >= 1 (and a replica) to ask for the master; \
             use \"proxy\"",
        ));
    }
}
