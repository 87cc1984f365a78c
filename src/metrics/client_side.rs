//! Failover anatomy under client-side failover (topology `[clients]`): which faults the
//! clients route around themselves, and when they rediscovered the new route.

use crate::config::clients::{BackendAccess, BrokerAccess, ClientsConfig};
use crate::event::{ClientEvent, ClientEventKind};
use crate::fault::Role;

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

/// The first time a client rediscovered the route (moved on to another broker node, or
/// was named a new Redis master by the Sentinels) at or after the fault at
/// `fault_at_unix_us` and before the next one at `next`, ms after the fault; `None` when
/// none did. `events` in any order.
pub fn first_rediscovery_ms(
    fault_at_unix_us: i64,
    next: Option<i64>,
    events: &[ClientEvent],
) -> Option<f64> {
    let horizon = next.unwrap_or(i64::MAX);
    events
        .iter()
        .filter(|e| e.kind == ClientEventKind::Rediscovered)
        .filter(|e| e.at_unix_us >= fault_at_unix_us && e.at_unix_us < horizon)
        .map(|e| e.at_unix_us)
        .min()
        .map(|t| (t - fault_at_unix_us) as f64 / 1000.0)
}

/// Test fixture: a producer's reconnection and rediscoveries around a fault at 10 s that
/// the next fault follows at 30 s; the first rediscovery that counts is at 11.25 s.
#[cfg(test)]
pub(crate) fn rediscoveries_around_a_fault() -> [ClientEvent; 5] {
    let ev = |at, kind| ClientEvent {
        at_unix_us: at,
        source: "producer".into(),
        kind,
        detail: String::new(),
    };
    [
        ev(12_500_000, ClientEventKind::Rediscovered),
        ev(9_000_000, ClientEventKind::Rediscovered), // before the fault
        ev(10_400_000, ClientEventKind::Reconnected),
        ev(11_250_000, ClientEventKind::Rediscovered),
        ev(31_000_000, ClientEventKind::Rediscovered), // after the next fault
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let events = rediscoveries_around_a_fault();
        assert_eq!(
            first_rediscovery_ms(10_000_000, Some(30_000_000), &events),
            Some(1250.0)
        );
        // None after the fault.
        assert_eq!(first_rediscovery_ms(32_000_000, None, &events), None);
    }
}
