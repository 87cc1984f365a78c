//! One fault on a stack hab started, and what the injector observes around it: the task
//! queue's leader moving after a broker fault, a partitioned node's `pause_minority`.

use tokio_util::sync::CancellationToken;

use super::{HEALTH_TIMEOUT, new_record};
use crate::clock::now_unix_us;
use crate::config::FaultSpec;
use crate::event::ServerEventKind;
use crate::fault::{AppliedFault, FaultKind, RestartAs, Role};
use crate::observe::server::ServerLog;
use crate::progress::Reporter;
use crate::stack::{NodeRef, Stack, StackError};

/// One fault on a stack hab started: resolve the role, apply the fault, wait out
/// `restart_after` / `duration` (watching the queue leader move after a broker fault on a
/// cluster), bring the node back and wait for the whole stack to be healthy.
pub(super) async fn apply(
    stack: &mut Stack,
    workload: usize,
    spec: &FaultSpec,
    repetition: u32,
    servers: &ServerLog,
    cancel: &CancellationToken,
    reporter: &dyn Reporter,
) -> AppliedFault {
    let mut record = new_record(workload, spec, repetition);
    let node = match stack.resolve_role(spec.target).await {
        Ok(n) => n,
        Err(e @ StackError::NotApplicable { .. }) => {
            record.not_applied = Some(format!("not applicable: {e}"));
            return record;
        }
        Err(e) => {
            record.not_applied = Some(format!("could not resolve {}: {e}", spec.target));
            return record;
        }
    };
    record.resolved = node.to_string();
    // For a broker fault on a cluster, watch the task queue's leader move.
    let leader_before = match node {
        NodeRef::Broker(_) if stack.broker().nodes().len() > 1 => {
            stack.broker().queue_leader().await.ok().flatten()
        }
        _ => None,
    };
    let mut leader_done = leader_before.is_none();
    // The faulted node is asked last: frozen, partitioned or paused it answers late or
    // with its own stale view.
    let avoid = match node {
        NodeRef::Broker(i) => Some(i),
        _ => None,
    };
    let applied = match spec.kind {
        FaultKind::Kill => stack.kill_node(node).await,
        FaultKind::Pause => stack.pause_node(node).await,
        FaultKind::Stop => stack.stop_node(node).await,
        FaultKind::Failover => stack.failover_node(node).await,
        FaultKind::Partition => stack.partition_node(node).await,
        FaultKind::Throttle => match spec.cpu_percent {
            Some(pct) => stack.throttle_node(node, pct).await,
            None => Err(StackError::Control {
                what: format!("throttling {node}"),
                detail: "the fault has no cpu_percent".into(),
            }),
        },
    };
    match applied {
        Ok(at) => record.fault_at_unix_us = at,
        Err(e @ StackError::NotApplicable { .. }) => {
            record.not_applied = Some(format!("not applicable: {e}"));
            return record;
        }
        Err(e) => {
            record.not_applied = Some(format!("{} failed: {e}", spec.kind.as_str()));
            return record;
        }
    }
    if spec.kind == FaultKind::Failover {
        // A Sentinel accepting SENTINEL FAILOVER is a request, not a promotion: without
        // this check a failover that never happened got a switch time (of the old
        // master, still serving) and was "healthy" at once.
        let promoted = tokio::select! {
            _ = cancel.cancelled() => return record,
            p = stack.wait_promotion(node) => p,
        };
        match promoted {
            Ok(new) => tracing::info!(%node, %new, "promoted"),
            Err(why) => {
                record.not_applied = Some(format!(
                    "SENTINEL FAILOVER was accepted but no replica was promoted: {why}"
                ));
                // The next repetition still starts from a healthy stack.
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    h = stack.wait_healthy(HEALTH_TIMEOUT) => {
                        if let Err(e) = h {
                            reporter.line(&format!(
                                "hab: stack not healthy after the failover of {node}: {e}"
                            ));
                        }
                    }
                }
                return record;
            }
        }
    }
    if let Some(out) = spec.out_for_repetition(repetition) {
        // Even when cancelled, a paused node is resumed and a partition healed (and a
        // killed node left down: teardown follows).
        let cancelled = watching_leader(tokio::time::sleep(out), cancel, &mut leader_done, || {
            watch_leader(stack, leader_before, avoid, servers)
        })
        .await
        .is_none();
        if cancelled
            && !matches!(
                spec.kind,
                FaultKind::Pause | FaultKind::Partition | FaultKind::Throttle
            )
        {
            return record;
        }
        let restored = match spec.kind {
            FaultKind::Pause => stack.resume_node(node).await,
            FaultKind::Partition => stack.heal_node(node).await,
            FaultKind::Throttle => stack.unthrottle_node(node).await,
            FaultKind::Kill | FaultKind::Stop => match spec.restart_as {
                Some(RestartAs::Master) => stack.restart_node_as_master(node).await,
                _ => stack.restart_node(node).await,
            },
            FaultKind::Failover => unreachable!("a failover has no restart"),
        };
        match restored {
            Ok(at) => {
                record.restored_at_unix_us = Some(at);
                // restart_node returns once the node answers its readiness probe.
                record.ready_at_unix_us = Some(now_unix_us());
            }
            Err(e) => {
                reporter.line(&format!("hab: could not bring {node} back: {e}"));
                return record;
            }
        }
        if cancelled {
            return record;
        }
    } else if spec.target != Role::Proxy && spec.kind != FaultKind::Failover {
        // Left down on purpose: the stack cannot become healthy again.
        return record;
    }
    let Some(healthy) = watching_leader(
        stack.wait_healthy(HEALTH_TIMEOUT),
        cancel,
        &mut leader_done,
        || watch_leader(stack, leader_before, avoid, servers),
    )
    .await
    else {
        return record;
    };
    match healthy {
        Ok(_) => record.healthy_at_unix_us = Some(now_unix_us()),
        Err(e) => reporter.line(&format!(
            "hab: stack not healthy after {node} came back: {e}"
        )),
    }
    record
}

/// Awaits `fut` while `watch` (the [`watch_leader`] of the fault) runs beside it, until
/// the leader has moved (`leader_done`); `None` when `cancel` fires first.
async fn watching_leader<T, W: Future<Output = ()>>(
    fut: impl Future<Output = T>,
    cancel: &CancellationToken,
    leader_done: &mut bool,
    mut watch: impl FnMut() -> W,
) -> Option<T> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return None,
            v = &mut fut => return Some(v),
            _ = watch(), if !*leader_done => {
                *leader_done = true;
            }
        }
    }
}

/// After the partition of a broker node: when `pause_minority` paused it and when it
/// resumed, from its log (see [`crate::observe::rabbit_log`]), into the server events.
pub(super) async fn record_pause(stack: &Stack, record: &AppliedFault, servers: &ServerLog) {
    let Ok(Role::BrokerNode(i)) = record.resolved.parse::<Role>() else {
        return;
    };
    let Some(node) = stack.broker().nodes().get(i) else {
        return;
    };
    let path = node.layout().node_log();
    match tokio::fs::read_to_string(&path).await {
        Ok(log) => {
            for ev in crate::observe::rabbit_log::pause_events(
                &log,
                record.fault_at_unix_us,
                &record.resolved,
            ) {
                servers.push(ev);
            }
        }
        Err(e) => tracing::warn!(path = %path.display(), "reading the node's log: {e}"),
    }
}

/// Poll the task queue's leader (through `rabbitmqctl eval`, a node's own view, so
/// about once a second, asking broker node `avoid` last) until it differs from `before`,
/// then record the change ([`crate::observe::server::watch_change`]).
async fn watch_leader(
    stack: &Stack,
    before: Option<usize>,
    avoid: Option<usize>,
    servers: &ServerLog,
) {
    crate::observe::server::watch_change(
        || async {
            stack
                .broker()
                .queue_leader_local(avoid)
                .await
                .ok()
                .flatten()
        },
        before,
        crate::observe::server::LEADER_POLL,
        ServerEventKind::QueueLeaderChanged,
        |now| format!("broker.node[{now}]"),
        servers,
    )
    .await;
}
