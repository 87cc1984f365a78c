//! The plan's workloads in order: warm-up, each workload's repetitions (results rewritten
//! after every one, so a crash keeps them), and the last independent look at the servers.

use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::backend;
use crate::broker;
use crate::config::{ArrivalKind, TaskSpec, Topology, Workload, WorkloadPlan};
use crate::progress::SharedReporter;
use crate::record::RunReport;
use crate::record::{FinalState, WorkloadStart};

use super::analyse::{
    check_invariants, failover_rows, metrics_so_far, producer_report, schedule_lag_warning,
    write_outputs,
};
use super::barrier::{Meeting, Rendezvous};
use super::driver::Driver;
use super::{RunDirs, RunOptions};
use crate::backend::result_key_ids;

/// How long the end of a run tries to reconnect the producer to read the final queue
/// state (a broker left down on purpose never comes back: without a bound the run
/// would wait for it until Ctrl-C).
const FINAL_STATE_RECONNECT: Duration = Duration::from_secs(30);

/// Where the workloads' figures go as they are measured.
pub(super) struct Book<'a> {
    pub(super) report: &'a mut RunReport,
    pub(super) dirs: &'a RunDirs,
    pub(super) reporter: &'a SharedReporter,
    /// The shards' meetings (`--start-at`); `None` when the shard starts whenever it gets
    /// there (or the run is not a shard).
    pub(super) rendezvous: Option<Rendezvous>,
}

impl Book<'_> {
    /// Warm-up: trivial tasks through the same path, kept out of every figure.
    pub(super) async fn warm_up(
        &mut self,
        driver: &mut Driver<'_>,
        plan: &WorkloadPlan,
    ) -> Result<()> {
        if plan.warmup_tasks == 0 {
            return Ok(());
        }
        let warm = Workload::burst("warmup", TaskSpec::Trivial, plan.warmup_tasks as u64);
        driver
            .workload(plan.workloads.len(), 1, &warm, plan.drain_timeout)
            .await
    }

    /// Every workload of the plan, each repetition drained before the next starts.
    pub(super) async fn run_workloads(
        &mut self,
        driver: &mut Driver<'_>,
        opts: &RunOptions,
        topology: &Topology,
        plan: &WorkloadPlan,
        cancel: &CancellationToken,
    ) -> Result<()> {
        for (i, w) in plan.workloads.iter().enumerate() {
            if cancel.is_cancelled() {
                break;
            }
            // The shards meet before the idle gap: each then sits idle for the same gap.
            let mut meeting = Some(self.meet(i, 1, w, opts, cancel).await);
            if cancel.is_cancelled() {
                break;
            }
            if let Some(gap) = w.idle_before {
                // Nothing is published: every client connection sits idle for the gap.
                self.reporter.line(&format!(
                    "hab: idle for {} before workload {}",
                    humantime::format_duration(gap),
                    w.name
                ));
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(gap) => {}
                }
                driver.workers.supervise();
            }
            self.reporter.line(&announce(w, opts));
            driver.live.cpu.workload_started(i);
            // `repeat = N`: N repetitions back to back, each drained (to its own drain
            // deadline, what is left of it frozen and taken out of the queue) before the
            // next starts.
            for rep in 1..=w.repeat {
                if rep > 1 {
                    if cancel.is_cancelled() {
                        break;
                    }
                    self.reporter.line(&format!(
                        "hab: workload {}: repetition {rep}/{}",
                        w.name, w.repeat
                    ));
                    meeting = Some(self.meet(i, rep, w, opts, cancel).await);
                    if cancel.is_cancelled() {
                        break;
                    }
                }
                let done = driver
                    .workload(i, rep, w, w.drain_timeout.unwrap_or(plan.drain_timeout))
                    .await;
                driver.live.cpu.workload_ended(i);
                if let Some(m) = meeting.take() {
                    self.record_start(driver, i, rep, w, m);
                }
                done?;
                self.provisional(driver, topology, plan, i + 1)?;
            }
            if let Some(lag) = self
                .report
                .workloads
                .get(i)
                .and_then(|m| schedule_lag_warning(w, m))
            {
                self.reporter.line(&format!("hab: warning: {lag}"));
            }
            if let Some(busy) = self
                .report
                .workloads
                .get(i)
                .and_then(|m| m.cpu.as_ref()?.summary.as_ref())
            {
                self.reporter
                    .line(&format!("hab: workload {}: {busy}", w.name));
            }
        }
        Ok(())
    }

    /// Meet the other shards before repetition `rep` of workload `i`: the `--start-at`
    /// instant before the first workload, a barrier before the others (nothing without
    /// `--start-at`). A meeting that did not go as planned is warned about.
    async fn meet(
        &mut self,
        i: usize,
        rep: u32,
        w: &Workload,
        opts: &RunOptions,
        cancel: &CancellationToken,
    ) -> Meeting {
        let (Some(r), Some(shard)) = (self.rendezvous.as_mut(), opts.shard) else {
            return Meeting::none();
        };
        let m = if i == 0 && rep == 1 {
            if let Some(s) = opts.start {
                self.reporter.line(&format!(
                    "hab: shard {shard}: waiting for the start instant {} (in {:.1} s)",
                    s.at,
                    (s.at.unix_ms * 1000 - crate::clock::wall_unix_us()) as f64 / 1e6
                ));
            }
            r.wait_for_instant(cancel).await
        } else {
            r.barrier(i, rep, cancel).await
        };
        if let Some(warning) = m.warning(shard, &w.name) {
            self.reporter.line(&format!("hab: warning: {warning}"));
        }
        m
    }

    /// A shard's record of how repetition `rep` of workload `i` started (run.json
    /// `shard.starts`), for the merge's start skew.
    fn record_start(&mut self, driver: &Driver<'_>, i: usize, rep: u32, w: &Workload, m: Meeting) {
        let Some(shard) = self.report.shard.as_mut() else {
            return;
        };
        let first_published_unix_us = driver
            .live
            .ledger()
            .tasks(i)
            .iter()
            .filter(|t| t.repetition == rep)
            .filter_map(|t| t.published_unix_us)
            .min();
        shard.starts.push(WorkloadStart {
            workload: w.name.clone(),
            repetition: rep,
            sync: m.sync,
            outcome: m.outcome,
            waited_ms: m.waited_ms,
            late_ms: m.late_ms,
            arrived: m.arrived,
            error: m.error,
            t0_unix_us: driver.t0_unix_us,
            first_published_unix_us,
        });
    }

    /// Provisional results after every repetition of the first `upto` workloads: a crash
    /// keeps them.
    fn provisional(
        &mut self,
        driver: &mut Driver<'_>,
        topology: &Topology,
        plan: &WorkloadPlan,
        upto: usize,
    ) -> Result<()> {
        driver.workers.supervise();
        let live = driver.live;
        live.cpu.set_workers(driver.workers.roles());
        self.report.workloads = metrics_so_far(live, plan, upto, Some(driver.workers)).0;
        self.report.failover = failover_rows(live, plan, &topology.clients);
        self.report.producer = producer_report(live, topology, plan);
        self.report.failed_reads = live.failed_reads().clone();
        self.report.workers.restarts = driver.workers.restarts;
        check_invariants(self.report, live);
        write_outputs(&self.dirs.root, self.report, live)
    }

    /// An independent look at the servers before they go: what is left in the queue, how
    /// many result keys exist, and (after faults) which results are still there. The
    /// workers stop consuming first.
    pub(super) async fn last_look(
        &mut self,
        driver: &mut Driver<'_>,
        opts: &RunOptions,
        topology: &Topology,
        plan: &WorkloadPlan,
        cancel: &CancellationToken,
    ) {
        let queue_kind = topology.broker.queue;
        let mut queue = broker::queue_state(driver.publisher.channel(), queue_kind).await;
        if queue.is_err()
            && !cancel.is_cancelled()
            && tokio::time::timeout(FINAL_STATE_RECONNECT, driver.reconnect())
                .await
                .is_ok_and(|r| r.is_ok())
        {
            // The producer's connection died in a fault after its last publish.
            queue = broker::queue_state(driver.publisher.channel(), queue_kind).await;
        }
        // Consuming stops before the last read (work finished after a deadline is seen,
        // not taken for a result the backend lost); the watcher runs until after it.
        driver.after_last_workload().await;
        let mut keys = backend::count_result_keys(driver.reader).await;
        if keys.is_err() && !cancel.is_cancelled() {
            // A failover broke the reader after its last read; it reconnects on this call.
            keys = backend::count_result_keys(driver.reader).await;
        }
        // Which results are still there: a result hab saw that is gone now was lost by
        // the backend (a stale master demoted and resynced).
        // (Only after faults: the set holds every task id of the run.)
        // A shard reads them whenever the plan has faults: on a stack the shards share,
        // shard 1's faults can make any shard's results vanish.
        let faulted = !driver.live.faults().is_empty()
            || (opts.shard.is_some() && plan.workloads.iter().any(|w| !w.faults.is_empty()));
        if faulted {
            match result_key_ids(driver.reader).await {
                Ok(ids) => *driver.live.final_result_ids() = Some(ids),
                Err(e) => tracing::warn!("result keys not read at the end: {e:#}"),
            }
        }
        match (queue, keys) {
            (Ok((consumers, ready)), Ok(result_keys)) => {
                self.report.final_state = Some(FinalState {
                    queue_ready: ready as u64,
                    queue_consumers: consumers as u64,
                    result_keys,
                });
            }
            (q, k) => tracing::warn!(
                "final state not read: queue {:?}, keys {:?}",
                q.err().map(|e| format!("{e:#}")),
                k.err().map(|e| format!("{e:#}"))
            ),
        }
    }
}

/// The line that announces a workload: `hab: workload trivial (10000 × hab.trivial, burst)`.
fn announce(w: &Workload, opts: &RunOptions) -> String {
    format!(
        "hab: workload {} ({} × {}, {}{}){}",
        w.name,
        w.count,
        w.task.task_name(),
        match w.arrival {
            ArrivalKind::Burst => "burst".to_string(),
            ArrivalKind::Rate => format!("{}/s", w.rate_per_s.unwrap_or(0.0)),
        },
        match w.repeat {
            1 => String::new(),
            n => format!(", {n} repetitions"),
        },
        match opts.shard {
            Some(s) => format!(": shard {s} publishes {} of them", s.tasks_in(w.count)),
            None => String::new(),
        }
    )
}
