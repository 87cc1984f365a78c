//! The merged run.json: the shards' histograms added, counts and failover rows from the
//! joined ledger, statuses, clocks and machines of every shard.

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context, Result};
use uuid::Uuid;

use crate::event::ClientEvent;
use crate::ledger::Ledger;
use crate::metrics::{LatencyHistogram, WorkloadMetrics};
use crate::record::{MergeReport, MergedShard, StackScope};
use crate::record::{RunReport, RunStatus};

use super::MergeError;
use super::join::{Joined, join, ledger_of};
use super::shards::ShardRun;

/// Add the shards' histogram `stage` of workload `name` (HdrHistogram add).
pub(super) fn added_histogram(
    runs: &[ShardRun],
    name: &str,
    stage: &str,
) -> Result<LatencyHistogram> {
    let mut sum = LatencyHistogram::new();
    for r in runs {
        if let Some(w) = r.report.workloads.iter().find(|w| w.name == name)
            && let Some(encoded) = w.histograms.get(stage)
        {
            let h = LatencyHistogram::from_base64(encoded).with_context(|| {
                format!(
                    "{}: run.json histogram {stage} of workload {name}",
                    r.dir.display()
                )
            })?;
            sum.merge(&h);
        }
    }
    Ok(sum)
}

/// The worst of the shards' statuses (failed > interrupted > running > complete).
fn worst_status(statuses: impl Iterator<Item = RunStatus>) -> RunStatus {
    let rank = |s: RunStatus| match s {
        RunStatus::Complete => 0,
        RunStatus::Running => 1,
        RunStatus::Interrupted => 2,
        RunStatus::Failed => 3,
    };
    statuses
        .max_by_key(|s| rank(*s))
        .unwrap_or(RunStatus::Complete)
}

/// The merged run.json (timeline computed before writing) and the joined ledger.
pub(super) fn merged_report(runs: &[ShardRun]) -> Result<(RunReport, Joined)> {
    let first = &runs[0].report;
    let count = runs[0].shard.count;
    let shard_info = first.shard.as_ref().expect("checked: a shard");
    let scope = shard_info.stack;
    let faults_by = shard_info.faults_by;
    let fault_run = runs
        .iter()
        .find(|r| r.shard.index == faults_by)
        .expect("checked: every shard is there");
    // Workloads in plan order: those of the shard that got furthest.
    let names: Vec<String> = runs
        .iter()
        .map(|r| &r.report.workloads)
        .max_by_key(|w| w.len())
        .map(|w| w.iter().map(|w| w.name.clone()).collect())
        .unwrap_or_default();
    let joined = join(runs, &names)?;
    let n = names.len();

    let mut workloads = Vec::with_capacity(n);
    for (i, name) in names.iter().enumerate() {
        let task = runs
            .iter()
            .find_map(|r| r.report.workloads.iter().find(|w| &w.name == name))
            .map(|w| w.task.clone())
            .unwrap_or_default();
        let metrics = WorkloadMetrics::from_tasks(name, &task, joined.ledger.tasks(i));
        let mut report = metrics.report();
        // The shards' histograms added: the union's histogram, checked against the
        // joined ledger.
        for (stage, from_ledger) in metrics.stages.named() {
            let mut added = added_histogram(runs, name, stage)?;
            // Executions the shards could not see (another shard's workers ran them):
            // the stages measured at the worker are the joined ledger's.
            let worker_stage = matches!(stage, "queue_wait" | "service" | "result_delay");
            if worker_stage && joined.executions_elsewhere > 0 && added.len() < from_ledger.len() {
                added = from_ledger.clone();
            }
            if added.len() != from_ledger.len() {
                return Err(MergeError::Inconsistent {
                    path: runs[0].dir.join("run.json"),
                    what: format!(
                        "workload {name}: the shards' run.json {stage} histograms hold {} values, their tasks.csv and executions/ files {}",
                        added.len(),
                        from_ledger.len()
                    ),
                }
                .into());
            }
            report.stages.insert(stage.to_string(), added.stats());
            report
                .histograms
                .insert(stage.to_string(), added.to_base64());
        }
        workloads.push(report);
    }

    // Failover: the faulting shard's faults, analysed again on the merged ledger.
    let fault_shard = fault_run.report.shard.as_ref().expect("a shard");
    let (scoped, in_scope): (Option<Ledger>, Vec<u32>) = match scope {
        StackScope::Shared => (None, runs.iter().map(|r| r.shard.index).collect()),
        StackScope::Local => (Some(ledger_of(&joined, n, faults_by)), vec![faults_by]),
    };
    let ledger = scoped.as_ref().unwrap_or(&joined.ledger);
    let mut client_events: Vec<ClientEvent> = in_scope
        .iter()
        .flat_map(|i| joined.events.get(i).into_iter().flatten().cloned())
        .collect();
    client_events.sort_by_key(|e| e.at_unix_us);
    let vanished: Option<HashSet<Uuid>> = in_scope
        .iter()
        .map(|i| {
            runs.iter()
                .find(|r| r.shard.index == *i)
                .and_then(|r| r.report.shard.as_ref())
                .and_then(|s| s.result_vanished_ids.clone())
        })
        .collect::<Option<Vec<Vec<String>>>>()
        .map(|v| {
            v.iter()
                .flatten()
                .filter_map(|s| Uuid::parse_str(s).ok())
                .collect()
        });
    let present: Option<HashSet<Uuid>> = vanished.map(|gone| {
        (0..n)
            .flat_map(|w| ledger.tasks(w))
            .map(|t| t.id)
            .filter(|id| !gone.contains(id))
            .collect()
    });
    let clients: crate::config::clients::ClientsConfig = first
        .topology
        .get("clients")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let failover = crate::metrics::failover::rows(
        &fault_shard.faults,
        &name_refs,
        ledger,
        &client_events,
        &fault_shard.server_events,
        present.as_ref(),
        &clients,
    );

    let mut workers = fault_run.report.workers.clone();
    workers.count = runs.iter().map(|r| r.report.workers.count).sum();
    workers.restarts = runs.iter().map(|r| r.report.workers.restarts).sum();
    workers.executions = runs.iter().map(|r| r.report.workers.executions).sum();
    workers.progress_results = runs.iter().map(|r| r.report.workers.progress_results).sum();
    workers.rejected = BTreeMap::new();
    workers.refused = BTreeMap::new();
    workers.crashes = Vec::new();
    for r in runs {
        for (k, v) in &r.report.workers.rejected {
            *workers.rejected.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &r.report.workers.refused {
            *workers.refused.entry(k.clone()).or_insert(0) += v;
        }
        workers
            .crashes
            .extend(r.report.workers.crashes.iter().cloned());
    }
    let mut client_counts = BTreeMap::new();
    for e in joined.events.values().flatten() {
        *client_counts
            .entry(e.kind.as_str().to_string())
            .or_insert(0) += 1;
    }
    // A stack per shard: what each held at the end adds up; one shared stack: shard 1's
    // look at it is the look.
    let final_state = match scope {
        StackScope::Shared => fault_run.report.final_state,
        StackScope::Local => runs
            .iter()
            .map(|r| r.report.final_state)
            .collect::<Option<Vec<_>>>()
            .map(|all| crate::record::FinalState {
                queue_ready: all.iter().map(|f| f.queue_ready).sum(),
                queue_consumers: all.iter().map(|f| f.queue_consumers).sum(),
                result_keys: all.iter().map(|f| f.result_keys).sum(),
            }),
    };
    let errors: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            r.report
                .error
                .as_ref()
                .map(|e| format!("shard {}: {e}", r.shard))
        })
        .collect();
    let report = RunReport {
        hab_version: env!("CARGO_PKG_VERSION").to_string(),
        status: worst_status(runs.iter().map(|r| r.report.status)),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
        name: first.name.clone(),
        started_unix_ms: runs
            .iter()
            .map(|r| r.report.started_unix_ms)
            .min()
            .unwrap_or(0),
        finished_unix_ms: runs
            .iter()
            .map(|r| r.report.finished_unix_ms)
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max()),
        topology_file: fault_run.report.topology_file.clone(),
        workload_file: fault_run.report.workload_file.clone(),
        topology_source: fault_run.report.topology_source.clone(),
        workload_source: fault_run.report.workload_source.clone(),
        topology: first.topology.clone(),
        workload_plan: first.workload_plan.clone(),
        machine: fault_run.report.machine.clone(),
        versions: fault_run.report.versions.clone(),
        bringup_ms: fault_run.report.bringup_ms,
        bringup_phases_ms: fault_run.report.bringup_phases_ms.clone(),
        workers_ready_ms: runs.iter().filter_map(|r| r.report.workers_ready_ms).max(),
        workers,
        unknown_results: runs.iter().map(|r| r.report.unknown_results).sum(),
        client_events: client_counts,
        workloads,
        failover,
        final_state,
        timeline: Vec::new(),
        calibration: fault_run.report.calibration.clone(),
        idle: fault_run.report.idle.clone(),
        producer: fault_run.report.producer.clone(),
        shard: None,
        // Each shard's observers, as they fared from that shard's host.
        observers: runs
            .iter()
            .flat_map(|r| r.report.observers.clone())
            .collect(),
        merged: Some(MergeReport {
            count,
            faults_by,
            stack: scope,
            shards: runs
                .iter()
                .map(|r| MergedShard {
                    index: r.shard.index,
                    dir: r.dir.display().to_string(),
                    status: r.report.status,
                    started_unix_ms: r.report.started_unix_ms,
                    finished_unix_ms: r.report.finished_unix_ms,
                    tasks: joined
                        .tasks_per_shard
                        .get(&r.shard.index)
                        .copied()
                        .unwrap_or(0),
                    machine: r.report.machine.clone(),
                    clock: r.report.clock.clone(),
                })
                .collect(),
            same_task_twice: joined.same_task_twice,
            executions_from_other_shards: joined.executions_elsewhere,
            start_at_unix_ms: shard_info.start_at_unix_ms,
            start_skew: super::skew::start_skew(
                &runs
                    .iter()
                    .map(|r| {
                        let starts = r.report.shard.as_ref().map_or(&[][..], |s| &s.starts[..]);
                        (r.shard.index, starts)
                    })
                    .collect::<Vec<_>>(),
            ),
        }),
        // Every shard's failed reads, its workload named with its shard.
        failed_reads: runs
            .iter()
            .flat_map(|r| {
                r.report
                    .failed_reads
                    .iter()
                    .map(|f| crate::record::FailedRead {
                        workload: format!("{} (shard {})", f.workload, r.shard)
                            .trim_start()
                            .into(),
                        ..f.clone()
                    })
            })
            .collect(),
        // Each shard's processes had their own anchors (and maybe hosts): `merged.shards`.
        clock: None,
        invariants: Vec::new(),
        sweep_cell: None,
    };
    Ok((report, joined))
}
