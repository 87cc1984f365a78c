//! Failover anatomy under client-side failover (topology `[clients]`): which faults the
//! clients route around themselves, and when they rediscovered the new route.

use crate::config::clients::{BackendAccess, BrokerAccess, ClientsConfig};
use crate::event::{ClientEvent, ClientEventKind};
use crate::fault::Role;
use crate::metrics::failover::FailoverRow;

/// Whether the clients route around a fault of `target` themselves: a broker part with
/// `clients.broker = "nodes"`, a Redis part or a Sentinel with `clients.backend =
/// "sentinel"`.
pub fn routes_around(clients: &ClientsConfig, target: Role) -> bool {
    match target {
        Role::BrokerPrimary | Role::BrokerQueueLeader | Role::BrokerNode(_) => {
            clients.broker == BrokerAccess::Nodes
        }
        Role::BackendMaster | Role::BackendReplica | Role::BackendNode(_) | Role::Sentinel(_) => {
            clients.backend == BackendAccess::Sentinel
        }
        Role::Proxy => false,
    }
}

/// Mark `row` (a fault of `target` at `fault_at_unix_us`, the next fault at `next`) as
/// client-side when the clients route around it, with the first rediscovery after the
/// fault from the client events (any order).
pub fn apply(
    row: &mut FailoverRow,
    clients: &ClientsConfig,
    target: Role,
    fault_at_unix_us: i64,
    next: Option<i64>,
    events: &[ClientEvent],
) {
    row.client_side = routes_around(clients, target);
    if !row.client_side {
        return;
    }
    let horizon = next.unwrap_or(i64::MAX);
    row.client_rediscovered_ms = events
        .iter()
        .filter(|e| e.kind == ClientEventKind::Rediscovered)
        .filter(|e| e.at_unix_us >= fault_at_unix_us && e.at_unix_us < horizon)
        .map(|e| e.at_unix_us)
        .min()
        .map(|t| (t - fault_at_unix_us) as f64 / 1000.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: i64, kind: ClientEventKind) -> ClientEvent {
        ClientEvent {
            at_unix_us: at,
            source: "producer".into(),
            kind,
            detail: String::new(),
        }
    }

    fn row() -> FailoverRow {
        crate::metrics::failover::analyse(
            &crate::metrics::failover::AppliedFault {
                workload: 0,
                target: Role::BrokerPrimary,
                resolved: "broker.node[0]".into(),
                kind: crate::fault::FaultKind::Kill,
                repetition: 0,
                fault_at_unix_us: 10_000_000,
                restored_at_unix_us: None,
                ready_at_unix_us: None,
                healthy_at_unix_us: None,
                not_applied: None,
            },
            "w",
            None,
            None,
            &[],
            &[],
            &[],
            None,
        )
    }

    #[test]
    fn which_faults_the_clients_route_around() {
        let nodes = ClientsConfig {
            broker: BrokerAccess::Nodes,
            backend: BackendAccess::Proxy,
        };
        assert!(routes_around(&nodes, Role::BrokerPrimary));
        assert!(routes_around(&nodes, Role::BrokerQueueLeader));
        assert!(!routes_around(&nodes, Role::BackendMaster));
        let sentinel = ClientsConfig {
            broker: BrokerAccess::Proxy,
            backend: BackendAccess::Sentinel,
        };
        assert!(routes_around(&sentinel, Role::BackendMaster));
        assert!(routes_around(&sentinel, Role::Sentinel(1)));
        assert!(!routes_around(&sentinel, Role::BrokerNode(0)));
        assert!(!routes_around(
            &ClientsConfig::default(),
            Role::BrokerPrimary
        ));
        assert!(!routes_around(&sentinel, Role::Proxy));
    }

    #[test]
    fn the_first_rediscovery_after_the_fault_and_before_the_next_counts() {
        let clients = ClientsConfig {
            broker: BrokerAccess::Nodes,
            backend: BackendAccess::Sentinel,
        };
        let events = [
            ev(12_500_000, ClientEventKind::Rediscovered),
            ev(9_000_000, ClientEventKind::Rediscovered), // before the fault
            ev(10_400_000, ClientEventKind::Reconnected),
            ev(11_250_000, ClientEventKind::Rediscovered),
            ev(31_000_000, ClientEventKind::Rediscovered), // after the next fault
        ];
        let mut r = row();
        apply(
            &mut r,
            &clients,
            Role::BrokerPrimary,
            10_000_000,
            Some(30_000_000),
            &events,
        );
        assert!(r.client_side);
        assert_eq!(r.client_rediscovered_ms, Some(1250.0));
        // Proxied: not applicable, nothing filled in.
        let mut r = row();
        apply(
            &mut r,
            &ClientsConfig::default(),
            Role::BrokerPrimary,
            10_000_000,
            None,
            &events,
        );
        assert!(!r.client_side);
        assert_eq!(r.client_rediscovered_ms, None);
        // Client-side without a rediscovery (the clients were not on the faulted node).
        let mut r = row();
        apply(
            &mut r,
            &clients,
            Role::BackendMaster,
            32_000_000,
            None,
            &events,
        );
        assert!(r.client_side);
        assert_eq!(r.client_rediscovered_ms, None);
    }
}
