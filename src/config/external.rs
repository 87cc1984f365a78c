//! `[external]` in a topology: a stack hab did not start and does not own.
//!
//! The section lists the addresses of servers that already run — the AMQP address clients
//! use (a proxy and/or the node list), the Redis address(es), the Sentinels, HAProxy's
//! stats — and, per kind of node, the shell commands that apply and revert a fault on it
//! and check its health. Everything else in a run (workers, load, ledger, metrics,
//! reports) is the same code path as for a local stack (DESIGN.md §8).
//!
//! ```toml
//! [external]
//! broker = "amqp://haproxy.example:5672/%2f"          # what clients use
//! broker_nodes = ["amqp://rabbit1:5672/%2f", "amqp://rabbit2:5672/%2f"]
//! backend = "redis://haproxy.example:6379/0"
//! backend_nodes = ["redis://redis1:6379/0", "redis://redis2:6379/0"]
//! sentinels = ["sentinel1:26379", "sentinel2:26379", "sentinel3:26379"]
//! haproxy_stats = "/run/haproxy/admin.sock"          # or "tcp://host:9999"
//! credentials = "creds.toml"                          # optional, see crate::credentials
//!
//! [[external.fault]]
//! nodes = "broker"                                    # broker | backend | sentinel | proxy
//! kind = "kill"                                       # the workload fault kind it serves
//! apply = "ssh {host} sudo systemctl kill -s KILL rabbitmq-server"
//! revert = "ssh {host} sudo systemctl start rabbitmq-server"
//! health = "ssh {host} sudo rabbitmq-diagnostics -q check_running"
//! ```
//!
//! Credentials never live here: a URL with a password is refused (see
//! [`crate::credentials`] for the environment variables and the credentials file).
//! Placeholders in commands: `{role}` (as the workload wrote it, e.g. `broker.primary`),
//! `{node}` (what it resolved to, e.g. `broker.node[1]`), `{index}`, `{host}`, `{port}`,
//! `{kind}` (the fault kind), `{cpu_percent}` (a throttle's share of a core; empty for
//! other kinds). Each is replaced by a shell-quoted value.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Diagnostic;
use crate::fault::FaultKind;

/// `[external]`: the endpoints of an existing stack and how to break it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalConfig {
    /// AMQP URL clients use (a proxy in front of the nodes, or one node). Absent: clients
    /// use `broker_nodes` as a failover list (as with `clients.broker = "nodes"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    /// AMQP URL of every broker node, in a fixed order (`broker.node[i]` is entry `i`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broker_nodes: Vec<String>,
    /// Redis URL clients use for results (a proxy in front of the data nodes, or the
    /// master). Absent: clients ask the Sentinels (as with `clients.backend = "sentinel"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Redis URL of every data node (`backend.node[i]` is entry `i`); with Sentinels the
    /// master and replicas are found among them by address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_nodes: Vec<String>,
    /// `host:port` of every Sentinel (`sentinel[i]` is entry `i`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sentinels: Vec<String>,
    /// Erlang node name of every broker node, in `broker_nodes` order (e.g.
    /// `rabbit@rabbit1`), to match the management API's answers to `broker.node[i]`;
    /// absent: by the host part of the name against the node URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broker_node_names: Vec<String>,
    /// The RabbitMQ management API (`http://host:15672`), one or more (any node answers
    /// for the cluster; a dead one is skipped): observes the queue leader and resolves
    /// `broker.queue_leader`. Absent: neither.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub management: Vec<String>,
    /// HAProxy's stats: a Unix socket path (`stats socket … level admin`) or
    /// `tcp://host:port` (`stats socket ipv4@host:port`). Absent: no proxy observer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub haproxy_stats: Option<String>,
    /// Names of the HAProxy backends in front of the broker and the data nodes, for the
    /// proxy observer and `broker.primary` (default `broker` and `backend`, hab's own).
    #[serde(default = "default_proxy_broker_backend")]
    pub proxy_broker_backend: String,
    /// See [`ExternalConfig::proxy_broker_backend`].
    #[serde(default = "default_proxy_redis_backend")]
    pub proxy_redis_backend: String,
    /// A TOML file with credentials (relative to the topology file); see
    /// [`crate::credentials`]. Environment variables take precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<PathBuf>,
    /// How long one fault command (apply, revert, one health check) may run before it is
    /// killed and the run stops.
    #[serde(default = "default_command_timeout", with = "super::duration")]
    pub command_timeout: Duration,
    /// How long hab waits for a node's health command (and the stack's endpoints) to
    /// pass after a fault was reverted before it gives up on the repetition.
    #[serde(default = "default_health_timeout", with = "super::duration")]
    pub health_timeout: Duration,
    /// Fault commands, one entry per kind of node and fault kind.
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultCommands>,
}

fn default_proxy_broker_backend() -> String {
    super::proxy::BROKER_BACKEND.to_string()
}

fn default_proxy_redis_backend() -> String {
    super::proxy::REDIS_BACKEND.to_string()
}

fn default_command_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_health_timeout() -> Duration {
    Duration::from_secs(120)
}

/// Which kind of node a fault command acts on (`nodes` in `[[external.fault]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A RabbitMQ node (`broker.primary`, `broker.queue_leader`, `broker.node[i]`).
    Broker,
    /// A Redis data node (`backend.master`, `backend.replica`, `backend.node[i]`).
    Backend,
    /// A Sentinel (`sentinel[i]`).
    Sentinel,
    /// The proxy (`proxy`).
    Proxy,
}

impl NodeKind {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Broker => "broker",
            NodeKind::Backend => "backend",
            NodeKind::Sentinel => "sentinel",
            NodeKind::Proxy => "proxy",
        }
    }
}

/// One `[[external.fault]]`: how to apply a kind of fault to a kind of node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultCommands {
    /// The kind of node the commands act on.
    pub nodes: NodeKind,
    /// The workload fault kind they implement (`kill`, `stop`, `pause`, `failover`,
    /// `partition`): hab times them like a local fault of that kind.
    pub kind: FaultKind,
    /// Applies the fault (run through `sh -c`); the fault's time is taken right after it
    /// exits 0.
    pub apply: String,
    /// Reverts it after the workload's `restart_after` / `duration` (restart, resume,
    /// heal). Needed when a workload brings the node back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<String>,
    /// Exits 0 when the node is healthy again; polled after the revert (and before the
    /// next repetition) until it passes or `health_timeout` ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

/// The placeholders a fault command may use.
pub const PLACEHOLDERS: &[&str] = &[
    "role",
    "node",
    "index",
    "host",
    "port",
    "kind",
    "cpu_percent",
];

impl ExternalConfig {
    /// The commands for `kind` on a node of kind `nodes`, if the topology has them.
    pub fn commands_for(&self, nodes: NodeKind, kind: FaultKind) -> Option<&FaultCommands> {
        self.faults
            .iter()
            .find(|f| f.nodes == nodes && f.kind == kind)
    }

    /// The problems of this section, located under `external.`.
    pub fn validate(&self, out: &mut Vec<Diagnostic>) {
        if self.broker.is_none() && self.broker_nodes.is_empty() {
            out.push(Diagnostic::new(
                "external.broker",
                "an external stack needs the AMQP address clients use: external.broker (a proxy or one node) and/or external.broker_nodes",
            ));
        }
        if self.backend.is_none() && self.sentinels.is_empty() {
            out.push(Diagnostic::new(
                "external.backend",
                "an external stack needs the Redis address clients use: external.backend (a proxy or the master) or external.sentinels",
            ));
        }
        if let Some(url) = &self.broker {
            check_url(out, "external.broker", url, &["amqp", "amqps"]);
        }
        for (i, url) in self.broker_nodes.iter().enumerate() {
            check_url(
                out,
                &format!("external.broker_nodes[{i}]"),
                url,
                &["amqp", "amqps"],
            );
        }
        if let Some(url) = &self.backend {
            check_url(out, "external.backend", url, &["redis", "rediss"]);
        }
        for (i, url) in self.backend_nodes.iter().enumerate() {
            check_url(
                out,
                &format!("external.backend_nodes[{i}]"),
                url,
                &["redis", "rediss"],
            );
        }
        for (i, url) in self.management.iter().enumerate() {
            check_url(out, &format!("external.management[{i}]"), url, &["http"]);
        }
        if !self.broker_node_names.is_empty()
            && self.broker_node_names.len() != self.broker_nodes.len()
        {
            out.push(Diagnostic::new(
                "external.broker_node_names",
                format!(
                    "lists {} names for {} broker_nodes; give one per node, in the same order",
                    self.broker_node_names.len(),
                    self.broker_nodes.len()
                ),
            ));
        }
        for (i, addr) in self.sentinels.iter().enumerate() {
            if let Err(why) = split_host_port(addr) {
                out.push(Diagnostic::new(format!("external.sentinels[{i}]"), why));
            }
        }
        if let Some(stats) = &self.haproxy_stats {
            if let Some(rest) = stats.strip_prefix("tcp://") {
                if let Err(why) = split_host_port(rest) {
                    out.push(Diagnostic::new("external.haproxy_stats", why));
                }
            } else if stats.contains("://") {
                out.push(Diagnostic::new(
                    "external.haproxy_stats",
                    format!("{stats:?}: give a Unix socket path or tcp://host:port"),
                ));
            }
        }
        if self.command_timeout.is_zero() {
            out.push(Diagnostic::new(
                "external.command_timeout",
                "must be longer than 0s",
            ));
        }
        if self.health_timeout.is_zero() {
            out.push(Diagnostic::new(
                "external.health_timeout",
                "must be longer than 0s",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, f) in self.faults.iter().enumerate() {
            let at = format!("external.fault[{i}]");
            if !seen.insert((f.nodes.as_str(), f.kind.as_str())) {
                out.push(Diagnostic::new(
                    &at,
                    format!(
                        "a second entry for nodes = {:?}, kind = {:?}; keep one",
                        f.nodes.as_str(),
                        f.kind.as_str()
                    ),
                ));
            }
            for (field, cmd) in [
                ("apply", Some(&f.apply)),
                ("revert", f.revert.as_ref()),
                ("health", f.health.as_ref()),
            ] {
                let Some(cmd) = cmd else { continue };
                if cmd.trim().is_empty() {
                    out.push(Diagnostic::new(
                        format!("{at}.{field}"),
                        "must not be empty",
                    ));
                }
                if let Err(why) = check_placeholders(cmd) {
                    out.push(Diagnostic::new(format!("{at}.{field}"), why));
                }
            }
            let count = match f.nodes {
                NodeKind::Broker => self.broker_nodes.len(),
                NodeKind::Backend => self.backend_nodes.len(),
                NodeKind::Sentinel => self.sentinels.len(),
                NodeKind::Proxy => 1,
            };
            if count == 0 {
                out.push(Diagnostic::new(
                    format!("{at}.nodes"),
                    format!(
                        "faults on {} nodes need their addresses: list them in external.{}",
                        f.nodes.as_str(),
                        match f.nodes {
                            NodeKind::Broker => "broker_nodes",
                            NodeKind::Backend => "backend_nodes",
                            _ => "sentinels",
                        }
                    ),
                ));
            }
        }
    }
}

/// A URL with one of `schemes`, a host, and no password (credentials live elsewhere).
fn check_url(out: &mut Vec<Diagnostic>, at: &str, url: &str, schemes: &[&str]) {
    let parsed = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            out.push(Diagnostic::new(
                at,
                format!(
                    "{url:?} is not a URL ({e}); e.g. {}://host:port",
                    schemes[0]
                ),
            ));
            return;
        }
    };
    if !schemes.contains(&parsed.scheme()) {
        out.push(Diagnostic::new(
            at,
            format!(
                "scheme {:?} is not allowed here; use {}",
                parsed.scheme(),
                schemes.join(" or ")
            ),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        out.push(Diagnostic::new(at, "the URL has no host"));
    }
    if parsed.password().is_some() {
        out.push(Diagnostic::new(
            at,
            "the URL holds a password; credentials never go into a topology file: use the environment variables or external.credentials (see docs/measuring-your-own-cluster.md)",
        ));
    }
}

/// `host:port` → (host, port), with a message saying what is wrong otherwise.
pub fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| format!("{addr:?} is not host:port"))?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{addr:?}: the port must be 1 to 65535"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{addr:?} has no host"));
    }
    Ok((host.to_string(), port))
}

/// Every `{name}` in `cmd` must be a known placeholder (`{{` and `}}` are literal braces).
fn check_placeholders(cmd: &str) -> Result<(), String> {
    for name in placeholder_names(cmd)? {
        if !PLACEHOLDERS.contains(&name.as_str()) {
            return Err(format!(
                "unknown placeholder {{{name}}}; use {} (or {{{{ }}}} for a literal brace)",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

fn placeholder_names(cmd: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut chars = cmd.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(format!("unclosed placeholder {{{name}")),
                    }
                }
                names.push(name);
            }
            '}' => return Err("a lone '}'; write }} for a literal brace".into()),
            _ => {}
        }
    }
    Ok(names)
}

/// `cmd` with every placeholder replaced by its shell-quoted value from `values`
/// (validated commands only name known placeholders; an unknown one is left empty).
pub fn expand(cmd: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(cmd.len());
    let mut chars = cmd.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                if let Some((_, v)) = values.iter().find(|(k, _)| *k == name) {
                    out.push_str(&shell_quote(v));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `v` as one shell word: unchanged when it is only safe characters, else single-quoted.
pub fn shell_quote(v: &str) -> String {
    if !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.,:/@%+=".contains(c))
    {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_has;

    fn minimal() -> ExternalConfig {
        toml::from_str(
            r#"
            broker = "amqp://127.0.0.1:5672/%2f"
            backend = "redis://127.0.0.1:6379/0"
            "#,
        )
        .unwrap()
    }

    fn problems(e: &ExternalConfig) -> Vec<String> {
        let mut out = Vec::new();
        e.validate(&mut out);
        out.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn a_minimal_section_is_valid_with_defaults() {
        let e = minimal();
        assert!(problems(&e).is_empty(), "{:?}", problems(&e));
        assert_eq!(e.command_timeout, Duration::from_secs(60));
        assert_eq!(e.proxy_broker_backend, crate::config::proxy::BROKER_BACKEND);
    }

    #[test]
    fn a_password_in_a_url_is_refused_and_named() {
        let mut e = minimal();
        e.backend_nodes = vec!["redis://:s3cret@10.0.0.2:6379/0".into()];
        let p = problems(&e);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("external.backend_nodes[0]: the URL holds a password"));
        assert!(
            !p[0].contains("s3cret"),
            "the message repeats the password: {}",
            p[0]
        );
    }

    #[test]
    fn missing_endpoints_wrong_schemes_and_bad_addresses_are_located() {
        let e: ExternalConfig = toml::from_str(
            r#"
            broker_nodes = ["redis://x:1"]
            sentinels = ["nohost", "h:0"]
            haproxy_stats = "http://h:1/stats"
            "#,
        )
        .unwrap();
        let p = problems(&e).join("\n");
        assert!(p.contains("external.broker_nodes[0]: scheme \"redis\" is not allowed"));
        assert!(p.contains("external.sentinels[0]: \"nohost\" is not host:port"));
        assert!(p.contains("external.sentinels[1]: \"h:0\": the port must be 1 to 65535"));
        assert!(p.contains("external.haproxy_stats"));
        let none: ExternalConfig = toml::from_str("").unwrap();
        let p = problems(&none).join("\n");
        assert_has(
            &p,
            &["external.broker: an external stack needs the AMQP address"],
        );
        assert_has(
            &p,
            &["external.backend: an external stack needs the Redis address"],
        );
    }

    #[test]
    fn fault_commands_are_checked_for_placeholders_duplicates_and_addresses() {
        let e: ExternalConfig = toml::from_str(
            r#"
            broker = "amqp://127.0.0.1:5672"
            backend = "redis://127.0.0.1:6379"
            [[fault]]
            nodes = "broker"
            kind = "kill"
            apply = "kill {pid}"
            [[fault]]
            nodes = "broker"
            kind = "kill"
            apply = "echo {host"
            "#,
        )
        .unwrap();
        let p = problems(&e).join("\n");
        assert_has(&p, &["external.fault[0].apply: unknown placeholder {pid}"]);
        assert!(p.contains("external.fault[1]: a second entry"), "{p}");
        assert_has(&p, &["external.fault[1].apply: unclosed placeholder"]);
        assert_has(
            &p,
            &["external.fault[0].nodes: faults on broker nodes need their addresses"],
        );
    }

    #[test]
    fn management_addresses_and_node_names_are_checked() {
        let mut e = minimal();
        e.broker_nodes = vec!["amqp://r1:5672".into(), "amqp://r2:5672".into()];
        e.broker_node_names = vec!["rabbit@r1".into()];
        e.management = vec![
            "https://r1:15671".into(),
            "http://guest:guest@r2:15672".into(),
        ];
        let p = problems(&e).join("\n");
        assert_has(
            &p,
            &["external.management[0]: scheme \"https\" is not allowed here; use http"],
        );
        assert_has(&p, &["external.management[1]: the URL holds a password"]);
        assert_has(
            &p,
            &["external.broker_node_names: lists 1 names for 2 broker_nodes"],
        );
    }

    #[test]
    fn an_unknown_node_kind_or_fault_kind_is_a_parse_error() {
        let r: Result<ExternalConfig, _> = toml::from_str(
            "broker = \"amqp://h:1\"\n[[fault]]\nnodes = \"rabbit\"\nkind = \"kill\"\napply = \"x\"\n",
        );
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("broker") && msg.contains("sentinel"), "{msg}");
    }

    #[test]
    fn expansion_quotes_values_and_keeps_literal_braces() {
        let cmd = "ssh {host} 'kill -9 $(cat /run/x.pid)' # {{node}} {node} {index}";
        let out = expand(
            cmd,
            &[
                ("host", "10.0.0.1".into()),
                ("node", "broker.node[1]".into()),
                ("index", "1".into()),
            ],
        );
        assert_eq!(
            out,
            "ssh 10.0.0.1 'kill -9 $(cat /run/x.pid)' # {node} 'broker.node[1]' 1"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
