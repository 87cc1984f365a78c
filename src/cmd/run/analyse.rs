//! The run's figures from what it recorded: metrics so far, failover rows, the producer's
//! and HAProxy's reports, invariants; and the run directory's files.

use std::path::Path;

use anyhow::Result;

use crate::clock::now_unix_us;
use crate::config::builtin::recorded_file;
use crate::config::{ArrivalKind, Topology, Workload, WorkloadPlan};
use crate::event::{ClientEvent, ClientEventKind};
use crate::export::{self, RunData};
use crate::fault::AppliedFault;
use crate::ledger::{Ledger, Outcome, TaskRecord};
use crate::metrics::WorkloadMetrics;
use crate::metrics::failover::{self, FailoverRow};
use crate::metrics::timeline::TimelineRow;
use crate::protocol::side_channel::SideEventKind;
use crate::record::ClockReport;
use crate::record::{Machine, RunReport, RunStatus, WorkersReport};

use super::RunOptions;
use super::lifecycle::RunState;
use super::live::Live;
use super::workers::{SideChannelSummary, Workers};

/// Schedule lag above which a rate workload is reported as not kept up with, µs.
pub const SCHEDULE_LAG_WARN_US: u64 = 1_000;

/// A warning when the generator fell behind a rate schedule (p99 lag above 1 ms). Latency
/// still counts from the intended start, so it stays honest; the warning says the offered
/// load was not what the file asked for.
pub fn schedule_lag_warning(
    w: &Workload,
    report: &crate::metrics::summary::WorkloadReport,
) -> Option<String> {
    if w.arrival != ArrivalKind::Rate {
        return None;
    }
    let lag = report.stages.get("schedule_lag")?;
    (lag.p99_us > SCHEDULE_LAG_WARN_US).then(|| {
        format!(
            "workload {}: schedule lag p99 {} (max {}): the generator fell behind {}/s; \
             latencies still count from the intended start",
            w.name,
            crate::metrics::stats::fmt_us(lag.p99_us),
            crate::metrics::stats::fmt_us(lag.max_us),
            w.rate_per_s.unwrap_or(0.0)
        )
    })
}

/// Metrics for the first `upto` workloads, with the side channel merged.
pub(super) fn metrics_so_far(
    live: &Live,
    plan: &WorkloadPlan,
    upto: usize,
    workers: Option<&Workers>,
) -> (
    Vec<crate::metrics::summary::WorkloadReport>,
    SideChannelSummary,
) {
    let mut ledger = live.ledger();
    let side = match workers {
        Some(w) => w.merge_side_channel(&mut ledger),
        None => SideChannelSummary::default(),
    };
    let samples = live.cpu.samples();
    let reports = plan
        .workloads
        .iter()
        .take(upto)
        .enumerate()
        .map(|(i, w)| {
            let mut r =
                WorkloadMetrics::from_tasks(&w.name, w.task.task_name(), ledger.tasks(i)).report();
            r.cpu = live.cpu.workload(i, &samples);
            r
        })
        .collect();
    (reports, side)
}

pub(super) fn failover_rows(
    live: &Live,
    plan: &WorkloadPlan,
    clients: &crate::config::clients::ClientsConfig,
) -> Vec<FailoverRow> {
    let faults = live.faults().clone();
    let present = live.final_result_ids().clone();
    let client_events = live.events.snapshot();
    let server_events = live.servers.snapshot();
    let ledger = live.ledger();
    let names: Vec<&str> = plan.workloads.iter().map(|w| w.name.as_str()).collect();
    failover::rows(
        &faults,
        &names,
        &ledger,
        &client_events,
        &server_events,
        present.as_ref(),
        clients,
    )
}

/// What the producer's policy did around every broker fault (side channel already
/// merged), with the breaker's state changes; `None` for a `block` producer on a run
/// without broker faults (nothing to say, and run.json stays as it was).
pub(super) fn producer_report(
    live: &Live,
    topology: &Topology,
    plan: &WorkloadPlan,
) -> Option<crate::metrics::outage::ProducerReport> {
    let policy = topology.producer.policy;
    let faults: Vec<AppliedFault> = live
        .faults()
        .iter()
        .filter(|f| f.not_applied.is_none() && f.target.to_string().starts_with("broker"))
        .cloned()
        .collect();
    if policy == crate::config::PolicyKind::Block && faults.is_empty() {
        return None;
    }
    let transitions = live.breaker_transitions().clone();
    let ledger = live.ledger();
    let outages = faults
        .iter()
        .enumerate()
        .map(|(k, f)| {
            let next = faults[k + 1..]
                .iter()
                .find(|g| g.workload == f.workload)
                .map(|g| g.fault_at_unix_us);
            let name = plan
                .workloads
                .get(f.workload)
                .map(|w| w.name.as_str())
                .unwrap_or("");
            crate::metrics::outage::analyse(
                f,
                name,
                policy.as_str(),
                next,
                ledger.tasks(f.workload),
                &transitions,
            )
        })
        .collect();
    Some(crate::metrics::outage::ProducerReport {
        policy: policy.as_str().to_string(),
        transitions,
        outages,
    })
}

/// What HAProxy's idle timeouts did, for a run through HAProxy: its session log (read
/// from `logs`, independent of the clients) against every client event and the tasks of
/// the first `upto` workloads (side channel already merged).
pub(super) fn idle_report(
    logs: &Path,
    topology: &Topology,
    live: &Live,
    plan: &WorkloadPlan,
    upto: usize,
) -> Option<crate::metrics::idle::IdleReport> {
    let proxy = topology.proxy.as_ref()?;
    let settings = crate::metrics::idle::IdleSettings {
        heartbeat_s: topology.broker.heartbeat.as_secs(),
        keepalive_ms: topology.backend.keepalive.as_millis() as u64,
        timeout_client_ms: proxy.timeout_client.as_millis() as u64,
        timeout_server_ms: proxy.timeout_server.as_millis() as u64,
    };
    let sessions = crate::observe::haproxy_log::read_sessions(logs);
    let events = live.events.snapshot();
    let ledger = live.ledger();
    let workloads: Vec<(&str, &[TaskRecord])> = plan
        .workloads
        .iter()
        .take(upto)
        .enumerate()
        .map(|(i, w)| (w.name.as_str(), ledger.tasks(i)))
        .collect();
    Some(crate::metrics::idle::analyse(
        settings, &sessions, &events, &workloads,
    ))
}

/// Check the run's invariants on what it has measured so far ([`crate::invariants`]).
pub(super) fn check_invariants(report: &mut RunReport, live: &Live) {
    let ledger = live.ledger();
    report.invariants = crate::invariants::check(report, Some(&ledger));
}

/// The run's per-second timeline (run.json `timeline`, timeline.csv) from its ledger and
/// client events, with the producer's breaker states when it has them.
pub fn timeline(report: &RunReport, ledger: &Ledger, events: &[ClientEvent]) -> Vec<TimelineRow> {
    let names: Vec<String> = report.workloads.iter().map(|w| w.name.clone()).collect();
    let mut rows = crate::metrics::timeline::compute(&names, ledger, events);
    if let Some(p) = &report.producer {
        crate::metrics::outage::annotate_timeline(&mut rows, p);
    }
    rows
}

/// Write every file of the run directory from `report` and what the run recorded so far,
/// with the timeline computed now.
pub(super) fn write_outputs(dir: &Path, report: &RunReport, live: &Live) -> Result<()> {
    let events = live.events.snapshot();
    let ledger = live.ledger();
    let mut report = report.clone();
    report.timeline = timeline(&report, &ledger, &events);
    let samples = live.cpu.samples();
    let tps = crate::observe::cpu::ticks_per_s();
    crate::metrics::cpu::annotate_timeline(
        &mut report.timeline,
        &crate::metrics::cpu::per_second(&samples, tps),
    );
    export::write_all(
        dir,
        RunData {
            report: &report,
            ledger: &ledger,
            events: &events,
        },
    )?;
    export::cpu::write_file(dir, &live.cpu.samples(), crate::observe::cpu::ticks_per_s())
}

/// run.json as it is written before the stack starts: what was asked, on what machine.
pub(super) fn first_report(
    opts: &RunOptions,
    topology: &Topology,
    plan: &WorkloadPlan,
) -> Result<RunReport> {
    Ok(RunReport {
        hab_version: env!("CARGO_PKG_VERSION").to_string(),
        name: format!("{}-{}", topology.name, plan.name),
        started_unix_ms: crate::clock::now_unix_us() / 1000,
        topology_file: recorded_file(&opts.topology_path),
        workload_file: recorded_file(&opts.workload_path),
        topology_source: Some(opts.topology_path.display().to_string()),
        workload_source: Some(opts.workload_path.display().to_string()),
        topology: serde_json::to_value(topology)?,
        workload_plan: serde_json::to_value(plan)?,
        machine: Machine::current(),
        workers: WorkersReport {
            kind: format!("{:?}", topology.workers.kind).to_lowercase(),
            count: topology.workers.count,
            concurrency: topology.workers.concurrency(),
            prefetch: topology.workers.prefetch(),
            acks: format!("{:?}", topology.workers.acks).to_lowercase(),
            ..Default::default()
        },
        shard: opts.shard.map(|s| crate::record::ShardReport {
            index: s.index,
            count: s.count,
            faults_by: crate::load::shard::FAULT_SHARD,
            stack: crate::record::stack_scope(topology),
            faults: Vec::new(),
            server_events: Vec::new(),
            result_vanished_ids: None,
            start_at_unix_ms: opts.start.map(|s| s.at.unix_ms),
            starts: Vec::new(),
        }),
        clock: Some(ClockReport::new(Vec::new())),
        ..Default::default()
    })
}

impl RunState {
    /// Whatever happened: stop the workers' side channel into the ledger, classify, fill
    /// run.json and write every file.
    pub(super) async fn finish(
        &mut self,
        topology: &Topology,
        plan: &WorkloadPlan,
        result: &Result<()>,
        interrupted: bool,
    ) {
        let done = self.report.workloads.len().max(
            // Include the workload that was running when the run stopped.
            {
                let l = self.live.ledger();
                (0..plan.workloads.len())
                    .filter(|&i| !l.tasks(i).is_empty())
                    .count()
            },
        );
        let (workloads, side) = metrics_so_far(&self.live, plan, done, self.workers.as_ref());
        self.report.workloads = workloads;
        self.report.observers = self.live.observers().iter().map(|t| t.status()).collect();
        for o in &self.report.observers {
            if let Some(p) = o.problem() {
                self.reporter.line(&format!("hab: warning: {p}"));
            }
        }
        // Worker connection losses and reconnections are client events too.
        for e in &side.connection_events {
            let kind = match e.kind {
                SideEventKind::Disconnected | SideEventKind::StoreError => ClientEventKind::Error,
                SideEventKind::Connected => ClientEventKind::Reconnected,
                SideEventKind::Rediscovered => ClientEventKind::Rediscovered,
                _ => continue,
            };
            // A store error names its task, so the READONLY answers can be told per task.
            let detail = match e.kind {
                SideEventKind::StoreError => format!("task {}: {}", e.task_id, e.detail),
                _ => e.detail.clone(),
            };
            self.live.events.push(ClientEvent {
                at_unix_us: e.unix_us,
                source: format!("worker {}", e.worker),
                kind,
                detail,
            });
        }
        self.report.failover = failover_rows(&self.live, plan, &topology.clients);
        self.fill_shard_report(plan);
        self.report.producer = producer_report(&self.live, topology, plan);
        self.report.failed_reads = self.live.failed_reads().clone();
        self.report.idle = idle_report(&self.dirs.logs, topology, &self.live, plan, done);
        self.report.client_events = self.live.events.snapshot().iter().fold(
            std::collections::BTreeMap::new(),
            |mut m, e| {
                *m.entry(e.kind.as_str().to_string()).or_insert(0) += 1;
                m
            },
        );
        self.report.workers.executions = side.executions;
        self.report.workers.rejected = side.rejected;
        self.report.workers.refused = side.refused;
        self.report.workers.crashes = side.crashes;
        self.report.clock = Some(ClockReport::new(side.clocks));
        if let Some(w) = self.workers.as_ref() {
            self.report.workers.restarts = w.restarts;
        }
        (
            self.report.unknown_results,
            self.report.workers.progress_results,
        ) = {
            let l = self.live.ledger();
            (l.unknown_results(), l.progress_results())
        };
        self.report.finished_unix_ms = Some(now_unix_us() / 1000);
        self.report.status = match (result, interrupted) {
            (_, true) => RunStatus::Interrupted,
            (Ok(()), false) => RunStatus::Complete,
            (Err(_), false) => RunStatus::Failed,
        };
        if let Err(e) = result {
            self.report.error = Some(format!("{e:#}"));
        }
        check_invariants(&mut self.report, &self.live);
        for i in self.report.invariants.iter().filter(|i| !i.holds) {
            self.reporter.line(&format!(
                "hab: invariant violated: {}: {}",
                i.name, i.detail
            ));
        }
        if let Err(e) = write_outputs(&self.dirs.root, &self.report, &self.live) {
            tracing::error!("cannot write results: {e:#}");
        }
    }

    /// A shard's faults, server events and vanished results into run.json, so that
    /// `hab merge` can analyse failover again on the merged ledger.
    pub(super) fn fill_shard_report(&mut self, plan: &WorkloadPlan) {
        let Some(shard) = self.report.shard.as_mut() else {
            return;
        };
        shard.faults = self.live.faults().clone();
        shard.server_events = self.live.servers.snapshot();
        let present = self.live.final_result_ids();
        shard.result_vanished_ids = present.as_ref().map(|p| {
            let ledger = self.live.ledger();
            (0..plan.workloads.len())
                .flat_map(|w| ledger.tasks(w))
                .filter(|t| t.classify().outcome == Outcome::Ok)
                .filter(|t| !p.contains(&t.id))
                .map(|t| t.id.to_string())
                .collect()
        });
    }
}
