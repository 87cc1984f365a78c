//! One fault on an external stack, by the commands its topology names, and the roles
//! only an outside observer can resolve there (`broker.queue_leader`, from the RabbitMQ
//! management API).

use tokio_util::sync::CancellationToken;

use super::new_record;
use crate::clock::now_unix_us;
use crate::config::FaultSpec;
use crate::fault::{AppliedFault, FaultKind, Role};
use crate::progress::Reporter;
use crate::stack::external::{CommandPhase, ExternalStack, not_applicable};
use crate::stack::{NodeRef, StackError};

/// The node of `stack` that plays `role` now: `broker.queue_leader` from the management
/// API (`external.management`, matched to `external.broker_nodes` by node name), every
/// other role as [`ExternalStack::resolve_role`] finds it.
pub async fn resolve_role(stack: &ExternalStack, role: Role) -> Result<NodeRef, StackError> {
    match role {
        Role::BrokerQueueLeader => queue_leader(stack, role).await.map(NodeRef::Broker),
        _ => stack.resolve_role(role).await,
    }
}

/// The broker node holding the `celery` queue's leader, from the management API.
async fn queue_leader(stack: &ExternalStack, role: Role) -> Result<usize, StackError> {
    let cfg = stack.config();
    if cfg.management.is_empty() {
        return Err(not_applicable(role, crate::stack::external::NO_MANAGEMENT));
    }
    let name = crate::observe::management::queue_leader(&cfg.management)
        .await
        .map_err(|detail| StackError::Control {
            what: "asking the management API for the celery queue's leader".into(),
            detail,
        })?
        .ok_or_else(|| StackError::Control {
            what: "asking the management API for the celery queue's leader".into(),
            detail: "the queue has no leader now".into(),
        })?;
    crate::observe::management::node_index(&name, &cfg.broker_node_names, &cfg.broker_nodes)
        .ok_or_else(|| StackError::Control {
            what: "matching the queue leader to external.broker_nodes".into(),
            detail: format!(
                "{name} is none of them (give external.broker_node_names when the node names' hosts differ from the URLs')"
            ),
        })
}

/// One fault on an external stack, by its commands: apply, wait out `restart_after` /
/// `duration`, revert, poll the node's health command, then wait for the whole stack.
/// A command's time is the `at_unix_us=` it printed, else its start
/// ([`crate::stack::external::command_time`]). Returns the
/// record and, when a command failed or hung, why the run must stop. A cancelled run
/// still reverts: hab does not own this stack and never leaves a node of it broken on
/// purpose.
pub(super) async fn apply(
    stack: &ExternalStack,
    workload: usize,
    spec: &FaultSpec,
    repetition: u32,
    cancel: &CancellationToken,
    reporter: &dyn Reporter,
) -> (AppliedFault, Option<String>) {
    let mut record = new_record(workload, spec, repetition);
    let node = match resolve_role(stack, spec.target).await {
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
        .run_phase(
            CommandPhase::Apply,
            spec.target,
            node,
            spec.kind,
            spec.cpu_percent,
        )
        .await
    {
        Ok(at) => record.fault_at_unix_us = at,
        Err(e) => {
            let why = fail(&mut record, "the apply command failed; the run stops", e);
            return (record, why);
        }
    }
    if let Some(out) = spec.out_for_repetition(repetition) {
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = tokio::time::sleep(out) => {}
        }
        match stack
            .run_phase(
                CommandPhase::Revert,
                spec.target,
                node,
                spec.kind,
                spec.cpu_percent,
            )
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
        if let Err(e) = stack
            .wait_node_healthy(spec.target, node, spec.kind, spec.cpu_percent)
            .await
        {
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
            Err(e) => reporter.line(&format!(
                "hab: external stack not healthy after {node} came back: {e}"
            )),
        }
    }
    (record, None)
}
