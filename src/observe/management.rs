//! The RabbitMQ management API as an observer: the `celery` queue's leader (quorum) or
//! master (classic) over HTTP, for stacks where hab cannot run `rabbitmqctl` (an
//! external stack; a local one with `broker.management = true` exposes the same API).
//!
//! [`queue_leader`] asks `GET /api/queues/%2F/celery` on each listed address in turn
//! (any node answers for the cluster; a dead one is skipped) and returns the Erlang node
//! name; [`node_index`] maps it to `broker.node[i]` by the listed node names or, without
//! them, by the host part of the name against the node URLs. [`watch_queue_leader`] polls
//! it for the whole run and records every change as a `queue_leader_changed` server
//! event, as the local `rabbitmqctl` observer does after a broker fault.
//!
//! Credentials: `HAB_MANAGEMENT_USER` / `HAB_MANAGEMENT_PASSWORD` (or `[management]` in
//! the credentials file), else the broker's, else RabbitMQ's `guest`/`guest` — the same
//! default an AMQP URL without a user has.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio_util::sync::CancellationToken;

use super::server::{ObserverTally, ServerLog};
use crate::event::ServerEventKind;

/// How often the observer polls.
pub const POLL: Duration = Duration::from_millis(500);
/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The `Authorization` header for the management API.
fn authorization() -> String {
    let c = crate::credentials::current();
    let user = c
        .management_user
        .or(c.broker_user)
        .unwrap_or_else(|| "guest".into());
    let password = c
        .management_password
        .or(c.broker_password)
        .unwrap_or_else(|| "guest".into());
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// One GET of `path` on `base` (`http://host:port`), bounded; the body on 200, `None`
/// on 404 (the queue is not declared yet).
fn get(base: &str, path: &str) -> Result<Option<String>, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut resp = agent
        .get(&url)
        .header("Authorization", &authorization())
        .call()
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let body = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("GET {url}: reading the body: {e}"))?;
    if status == 404 {
        return Ok(None);
    }
    if status != 200 {
        let body: String = body.chars().take(200).collect();
        return Err(format!("GET {url}: HTTP {status}: {body}"));
    }
    Ok(Some(body))
}

/// The node name of the queue's leader (`leader`, quorum) or master (`node`, classic)
/// in a `/api/queues/<vhost>/<name>` answer.
pub fn leader_from_json(body: &str) -> Result<Option<String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON from the management API: {e}"))?;
    Ok(v.get("leader")
        .or_else(|| v.get("node"))
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
        .map(str::to_string))
}

/// The `celery` queue's leader node name from the first address that answers.
pub async fn queue_leader(bases: &[String]) -> Result<Option<String>, String> {
    let bases = bases.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut last = String::from("no management address listed");
        for base in &bases {
            match get(base, "/api/queues/%2F/celery") {
                Ok(Some(body)) => return leader_from_json(&body),
                Ok(None) => return Ok(None),
                Err(e) => last = e,
            }
        }
        Err(crate::credentials::mask(&last))
    })
    .await
    .map_err(|e| format!("management request task: {e}"))?
}

/// The index of node `name` (`rabbit@host`): its position in `names` when given, else
/// the first of `node_urls` whose host is the part after `@`.
pub fn node_index(name: &str, names: &[String], node_urls: &[String]) -> Option<usize> {
    if !names.is_empty() {
        return names.iter().position(|n| n == name);
    }
    let host = name.rsplit_once('@')?.1;
    node_urls.iter().position(|u| {
        url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.eq_ignore_ascii_case(host)))
            .unwrap_or(false)
    })
}

/// Poll the queue's leader until `cancel`, recording each change (the first answer is
/// the starting point, not a change) as `broker.node[i]` (or the node name when it
/// matches no listed node).
pub async fn watch_queue_leader(
    bases: Vec<String>,
    names: Vec<String>,
    node_urls: Vec<String>,
    log: Arc<ServerLog>,
    tally: Arc<ObserverTally>,
    cancel: CancellationToken,
) {
    let mut current: Option<String> = None;
    loop {
        // A change is stamped when the request that saw it was sent, not when its answer
        // came back (see `server::watch_change`).
        let asked_at = crate::clock::now_unix_us();
        match queue_leader(&bases).await {
            Ok(Some(leader)) => {
                tally.reached();
                if current.as_ref().is_some_and(|c| *c != leader) {
                    let detail = match node_index(&leader, &names, &node_urls) {
                        Some(i) => format!("broker.node[{i}]"),
                        None => leader.clone(),
                    };
                    log.push(crate::event::ServerEvent {
                        at_unix_us: asked_at,
                        kind: ServerEventKind::QueueLeaderChanged,
                        detail,
                    });
                }
                current = Some(leader);
            }
            // No queue yet, or no leader elected right now: nothing to compare.
            Ok(None) => tally.reached(),
            Err(e) => tally.failed(&e),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_comes_from_leader_or_node() {
        assert_eq!(
            leader_from_json(
                r#"{"name":"celery","type":"quorum","leader":"rabbit@h2","node":"rabbit@h2"}"#
            )
            .unwrap(),
            Some("rabbit@h2".into())
        );
        assert_eq!(
            leader_from_json(r#"{"name":"celery","type":"classic","node":"rabbit@h1"}"#).unwrap(),
            Some("rabbit@h1".into())
        );
        assert_eq!(leader_from_json(r#"{"name":"celery"}"#).unwrap(), None);
        assert!(leader_from_json("<html>").is_err());
    }

    #[test]
    fn node_names_map_to_indices_by_list_or_host() {
        let urls = vec![
            "amqp://rabbit1:5672/%2f".to_string(),
            "amqp://rabbit2:5672/%2f".to_string(),
        ];
        assert_eq!(node_index("rabbit@rabbit2", &[], &urls), Some(1));
        assert_eq!(node_index("rabbit@elsewhere", &[], &urls), None);
        let names = vec!["a@x".to_string(), "b@y".to_string()];
        assert_eq!(node_index("b@y", &names, &urls), Some(1));
        assert_eq!(node_index("rabbit@rabbit1", &names, &urls), None);
    }
}
