//! The `[clients]` section of a topology: how the producer and hab's workers reach the
//! stack — through one address (HAProxy, or node 0 without a proxy), or by client-side
//! failover: the list of broker nodes, rotated on failure as Celery's multi-broker URLs
//! are, and the Redis master asked of the Sentinels (issue 6, item 3). The section is checked
//! against the rest of the topology by `Topology::validate`.

use serde::{Deserialize, Serialize};

/// How the clients (producer, result watcher, workers) reach the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsConfig {
    /// How clients reach the broker.
    #[serde(default)]
    pub broker: BrokerAccess,
    /// How clients reach the result backend.
    #[serde(default)]
    pub backend: BackendAccess,
}

/// How clients reach the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrokerAccess {
    /// One address: HAProxy's AMQP frontend with `[proxy]`, else broker node 0 (the
    /// default). The proxy finds the live node; the client only reconnects.
    #[default]
    Proxy,
    /// Every broker node's address; a client rotates through them on failure
    /// (kombu's `round-robin` failover strategy, as Celery does with
    /// `broker_url = "amqp://a;amqp://b"`). Needs `broker.nodes >= 2`.
    Nodes,
}

/// How clients reach the result backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendAccess {
    /// One address: HAProxy's Redis frontend with `[proxy]`, else data node 0 (the
    /// default).
    #[default]
    Proxy,
    /// Ask the Sentinels for the master (`SENTINEL get-master-addr-by-name`, then `ROLE`
    /// on it) and ask again after an error or a `READONLY` answer, as Celery's
    /// `sentinel://` result backend does. Needs `backend.sentinels >= 1`.
    Sentinel,
}

impl ClientsConfig {
    /// True when the clients find the live broker node or the Redis master themselves.
    pub fn client_side(&self) -> bool {
        self.broker == BrokerAccess::Nodes || self.backend == BackendAccess::Sentinel
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::parse_topology;

    const HA: &str = "name = \"t\"\n[broker]\nnodes = 3\n[backend]\nreplicas = 1\nsentinels = 3\n";

    fn diags(text: &str) -> Vec<String> {
        match parse_topology(text, Path::new("topologies/bad.toml")) {
            Ok(_) => Vec::new(),
            Err(crate::config::ConfigError::Invalid { diagnostics, .. }) => diagnostics
                .iter()
                .map(|d| format!("{}: {}", d.location, d.message))
                .collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn default_is_one_address_for_both() {
        let t = parse_topology(HA, Path::new("t.toml")).unwrap();
        assert_eq!(t.clients, super::ClientsConfig::default());
        assert!(!t.clients.client_side());
    }

    #[test]
    fn client_side_failover_on_an_ha_stack_is_valid() {
        let t = parse_topology(
            &format!("{HA}[clients]\nbroker = \"nodes\"\nbackend = \"sentinel\"\n"),
            Path::new("t.toml"),
        )
        .unwrap();
        assert!(t.clients.client_side());
        assert_eq!(t.clients.broker, super::BrokerAccess::Nodes);
        assert_eq!(t.clients.backend, super::BackendAccess::Sentinel);
    }

    #[test]
    fn the_shipped_client_failover_topology_is_ha_without_the_proxy() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
        let ha = crate::config::load_topology(&root.join("ha.toml")).unwrap();
        let cf = crate::config::load_topology(&root.join("ha-client-failover.toml")).unwrap();
        assert_eq!(cf.name, "ha-client-failover");
        assert_eq!(cf.broker, ha.broker);
        assert_eq!(cf.backend, ha.backend);
        assert_eq!(cf.workers, ha.workers);
        assert_eq!(cf.proxy, None);
        assert_eq!(
            cf.clients,
            super::ClientsConfig {
                broker: super::BrokerAccess::Nodes,
                backend: super::BackendAccess::Sentinel,
            }
        );
        assert_eq!(ha.clients, super::ClientsConfig::default());
    }

    #[test]
    fn bad_combinations_name_the_field_and_what_is_needed() {
        let one_node = "name = \"t\"\n[broker]\nnodes = 1\n[backend]\n[clients]\nbroker = \"nodes\"\nbackend = \"sentinel\"\n";
        assert_eq!(
            diags(one_node),
            [
                "clients.broker: \"nodes\" needs broker.nodes >= 2 to fail over to (got 1); use \"proxy\"",
                "clients.backend: \"sentinel\" needs backend.sentinels >= 1 (and a replica) to ask for the master; use \"proxy\"",
            ]
        );
        // A real Celery worker takes the same addresses (kombu's failover URL list,
        // Celery's sentinel:// backend).
        let celery = format!(
            "{HA}[clients]\nbroker = \"nodes\"\nbackend = \"sentinel\"\n[workers]\nkind = \"celery\"\n"
        );
        assert_eq!(diags(&celery), Vec::<String>::new());
        // Unknown values and fields are refused by serde, naming what is allowed.
        let e = diags(&format!("{HA}[clients]\nbroker = \"haproxy\"\n"));
        assert!(
            e[0].contains("unknown variant `haproxy`, expected `proxy` or `nodes`"),
            "{e:?}"
        );
        let e = diags(&format!("{HA}[clients]\nbackend = \"direct\"\n"));
        assert!(e[0].contains("expected `proxy` or `sentinel`"), "{e:?}");
        let e = diags(&format!("{HA}[clients]\nrotate = true\n"));
        assert!(e[0].contains("unknown field `rotate`"), "{e:?}");
    }
}
