//! The fault injector: applies a workload's faults on their schedule, one at a time,
//! restoring full health before the next repetition, and records each as an
//! [`AppliedFault`] for the failover analysis.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{FaultKind, Role};
use crate::clock::now_unix_us;
use crate::config::FaultSpec;
use crate::metrics::failover::AppliedFault;
use crate::metrics::failover::ServerEventKind;
use crate::observe::server::ServerLog;
use crate::stack::external::{CommandPhase, ExternalStack};
use crate::stack::node::NodeRef;
use crate::stack::{Stack, StackError, StackHandle};

/// How long the injector waits for the stack to be healthy again after a fault.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(120);

/// Every repetition of every fault, as `(fault index, repetition, planned offset)`, in
/// the order they are planned to fire.
pub fn timeline(faults: &[FaultSpec]) -> Vec<(usize, u32, Duration)> {
    let mut t: Vec<_> = faults
        .iter()
        .enumerate()
        .flat_map(|(i, f)| (0..f.repeat).map(move |k| (i, k, f.planned_at(k))))
        .collect();
    t.sort_by_key(|&(i, k, at)| (at, i, k));
    t
}

/// Apply `faults` of workload `workload`, relative to `t0`, until done or cancelled.
/// A repetition whose planned time comes while the previous fault is still being restored
/// fires as soon as the stack is healthy again. On cancel a paused node is resumed first.
///
/// On an external stack a fault command that fails or hangs stops the run: its message
/// goes into `fatal` and `cancel` is cancelled (the run keeps what it measured).
#[allow(clippy::too_many_arguments)]
pub async fn run_faults(
    workload: usize,
    faults: Vec<FaultSpec>,
    t0: Instant,
    stack: Arc<tokio::sync::Mutex<StackHandle>>,
    applied: Arc<Mutex<Vec<AppliedFault>>>,
    servers: Arc<ServerLog>,
    fatal: Arc<Mutex<Option<String>>>,
    cancel: CancellationToken,
) {
    for (i, k, planned) in timeline(&faults) {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until((t0 + planned).into()) => {}
        }
        let spec = &faults[i];
        let mut stack = stack.lock().await;
        let record = match &mut *stack {
            StackHandle::Local(local) => {
                let record = apply_one(local, workload, spec, k, &servers, &cancel).await;
                if spec.kind == FaultKind::Partition && record.not_applied.is_none() {
                    record_pause(local, &record, &servers).await;
                }
                record
            }
            StackHandle::External(ext) => {
                let (record, failure) = apply_external(ext, workload, spec, k, &cancel).await;
                if let Some(why) = failure {
                    eprintln!("hab: {why}");
                    fatal.lock().expect("fatal lock").get_or_insert(why);
                    applied.lock().expect("faults lock").push(record);
                    cancel.cancel();
                    return;
                }
                record
            }
        };
        match &record.not_applied {
            Some(why) => eprintln!(
                "hab: fault {} {} (repetition {k}) not applied: {why}",
                spec.kind.as_str(),
                spec.target
            ),
            None => eprintln!(
                "hab: fault {} {} → {} (repetition {k}){}",
                spec.kind.as_str(),
                spec.target,
                record.resolved,
                match record.healthy_at_unix_us {
                    Some(h) => format!(
                        "; healthy again after {:.1} s",
                        (h - record.fault_at_unix_us) as f64 / 1e6
                    ),
                    None => String::new(),
                }
            ),
        }
        applied.lock().expect("faults lock").push(record);
    }
}

/// The record of one repetition, before anything was done (times filled in as it goes).
fn new_record(workload: usize, spec: &FaultSpec, repetition: u32) -> AppliedFault {
    AppliedFault {
        workload,
        target: spec.target,
        resolved: String::new(),
        kind: spec.kind,
        repetition,
        fault_at_unix_us: now_unix_us(),
        restored_at_unix_us: None,
        ready_at_unix_us: None,
        healthy_at_unix_us: None,
        not_applied: None,
    }
}

async fn apply_one(
    stack: &mut Stack,
    workload: usize,
    spec: &FaultSpec,
    repetition: u32,
    servers: &ServerLog,
    cancel: &CancellationToken,
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
                            eprintln!("hab: stack not healthy after the failover of {node}: {e}");
                        }
                    }
                }
                return record;
            }
        }
    }
    if let Some(out) = spec.out_for() {
        // Even when cancelled, a paused node is resumed and a partition healed (and a
        // killed node left down: teardown follows).
        let sleep = tokio::time::sleep(out);
        tokio::pin!(sleep);
        let cancelled = loop {
            tokio::select! {
                _ = cancel.cancelled() => break true,
                _ = &mut sleep => break false,
                _ = watch_leader(stack, leader_before, avoid, servers), if !leader_done => {
                    leader_done = true;
                }
            }
        };
        if cancelled && !matches!(spec.kind, FaultKind::Pause | FaultKind::Partition) {
            return record;
        }
        let restored = match spec.kind {
            FaultKind::Pause => stack.resume_node(node).await,
            FaultKind::Partition => stack.heal_node(node).await,
            FaultKind::Kill | FaultKind::Stop => match spec.restart_as {
                Some(super::RestartAs::Master) => stack.restart_node_as_master(node).await,
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
                eprintln!("hab: could not bring {node} back: {e}");
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
    let healthy = stack.wait_healthy(HEALTH_TIMEOUT);
    tokio::pin!(healthy);
    let healthy = loop {
        tokio::select! {
            _ = cancel.cancelled() => return record,
            h = &mut healthy => break h,
            _ = watch_leader(stack, leader_before, avoid, servers), if !leader_done => {
                leader_done = true;
            }
        }
    };
    match healthy {
        Ok(_) => record.healthy_at_unix_us = Some(now_unix_us()),
        Err(e) => eprintln!("hab: stack not healthy after {node} came back: {e}"),
    }
    record
}

/// One fault on an external stack, by its commands: apply, wait out `restart_after` /
/// `duration`, revert, poll the node's health command, then wait for the whole stack.
/// A command's time is the `at_unix_us=` it printed, else its start
/// ([`crate::stack::external::command_time`]). Returns the
/// record and, when a command failed or hung, why the run must stop. A cancelled run
/// still reverts: hab does not own this stack and never leaves a node of it broken on
/// purpose.
async fn apply_external(
    stack: &ExternalStack,
    workload: usize,
    spec: &FaultSpec,
    repetition: u32,
    cancel: &CancellationToken,
) -> (AppliedFault, Option<String>) {
    let mut record = new_record(workload, spec, repetition);
    let node = match stack.resolve_role(spec.target).await {
        Ok(n) => n,
        Err(e @ StackError::NotApplicable { .. }) => {
            record.not_applied = Some(format!("not applicable: {e}"));
            return (record, None);
        }
        Err(e) => {
            record.not_applied = Some(format!("could not resolve {}: {e}", spec.target));
            return (record, None);
        }
    };
    record.resolved = node.to_string();
    let fail = |record: &mut AppliedFault, what: &str, e: StackError| {
        let why = crate::credentials::mask(&format!(
            "fault {} {} → {node}: {what}: {e}",
            spec.kind.as_str(),
            spec.target
        ));
        record.not_applied.get_or_insert_with(|| why.clone());
        Some(why)
    };
    match stack
        .run_phase(CommandPhase::Apply, spec.target, node, spec.kind)
        .await
    {
        Ok(at) => record.fault_at_unix_us = at,
        Err(e) => {
            let why = fail(&mut record, "the apply command failed; the run stops", e);
            return (record, why);
        }
    }
    if let Some(out) = spec.out_for() {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = tokio::time::sleep(out) => {}
        }
        match stack
            .run_phase(CommandPhase::Revert, spec.target, node, spec.kind)
            .await
        {
            Ok(at) => record.restored_at_unix_us = Some(at),
            Err(e) => {
                let why = fail(
                    &mut record,
                    "the revert command failed: the node may still be broken; the run stops",
                    e,
                );
                return (record, why);
            }
        }
        if let Err(e) = stack.wait_node_healthy(spec.target, node, spec.kind).await {
            let why = fail(
                &mut record,
                "the node did not become healthy; the run stops",
                e,
            );
            return (record, why);
        }
        record.ready_at_unix_us = Some(now_unix_us());
        if cancel.is_cancelled() {
            return (record, None);
        }
    } else if spec.target != Role::Proxy && spec.kind != FaultKind::Failover {
        // Left down on purpose: the stack cannot become healthy again.
        return (record, None);
    }
    tokio::select! {
        _ = cancel.cancelled() => {}
        h = stack.wait_healthy(stack.config().health_timeout) => match h {
            Ok(_) => record.healthy_at_unix_us = Some(now_unix_us()),
            Err(e) => eprintln!("hab: external stack not healthy after {node} came back: {e}"),
        }
    }
    (record, None)
}

/// After the partition of a broker node: when `pause_minority` paused it and when it
/// resumed, from its log (see [`crate::observe::rabbit_log`]), into the server events.
async fn record_pause(stack: &Stack, record: &AppliedFault, servers: &ServerLog) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(at: u64, repeat: u32, every: u64) -> FaultSpec {
        FaultSpec {
            target: Role::BrokerPrimary,
            kind: FaultKind::Kill,
            at: Duration::from_secs(at),
            duration: None,
            restart_after: Some(Duration::from_secs(1)),
            restart_as: None,
            repeat,
            every: Some(Duration::from_secs(every)),
        }
    }

    #[test]
    fn repetitions_of_several_faults_interleave_in_time_order() {
        let t = timeline(&[spec(5, 3, 20), spec(15, 2, 20)]);
        let at: Vec<_> = t.iter().map(|&(i, k, d)| (i, k, d.as_secs())).collect();
        assert_eq!(
            at,
            vec![(0, 0, 5), (1, 0, 15), (0, 1, 25), (1, 1, 35), (0, 2, 45)]
        );
    }
}
