//! The run's life: stack up → observers → producer → (calibration) → results watcher →
//! workers → warm-up and workloads → last look → teardown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio_util::sync::CancellationToken;

use crate::broker::{self, Publisher};
use crate::clock::{Anchor, now_unix_us};
use crate::cmd::calibrate::{self, CalibrateOptions, Calibration};
use crate::config::clients::BrokerAccess;
use crate::config::{PolicyKind, Topology, WorkloadPlan};
use crate::event::ClientEventKind;
use crate::producer::Breaker;
use crate::progress::SharedReporter;
use crate::record::{RunReport, RunStatus};
use crate::stack::{StackDirs, StackHandle};

use super::analyse::write_outputs;
use super::barrier::Rendezvous;
use super::driver::{Driver, PRODUCER};
use super::live::{Endpoints, Live, Observers, Results};
use super::workers::Workers;
use super::{RunDirs, RunOptions, workloads};

/// How long teardown waits for a fault in progress to be restored.
const INJECTOR_WAIT: Duration = Duration::from_secs(300);
/// How long the workers have to start consuming.
const WORKERS_READY_WITHIN: Duration = Duration::from_secs(60);

/// One run while it runs: its directories, its run.json so far, what its tasks share.
pub(super) struct RunState {
    pub(super) dirs: RunDirs,
    pub(super) report: RunReport,
    pub(super) live: Arc<Live>,
    pub(super) workers: Option<Workers>,
    /// Show progress bars.
    pub(super) progress: bool,
    pub(super) reporter: SharedReporter,
}

/// The stack as the run's tasks share it (the fault injector takes it in turns).
pub type SharedStack = Arc<tokio::sync::Mutex<StackHandle>>;

impl RunState {
    pub(super) fn new(
        dirs: RunDirs,
        report: RunReport,
        live: Arc<Live>,
        opts: &RunOptions,
    ) -> Self {
        RunState {
            dirs,
            report,
            live,
            workers: None,
            progress: opts.progress,
            reporter: opts.reporter.clone(),
        }
    }

    /// Bring the stack up (or take the borrowed one), drive the workloads, take
    /// everything down (workers before the servers they talk to). No server of the run's
    /// own outlives this call; a borrowed stack is left running.
    pub(super) async fn execute(
        &mut self,
        opts: &RunOptions,
        topology: &Topology,
        plan: &WorkloadPlan,
        borrowed: Option<SharedStack>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let own = borrowed.is_none();
        let stack = match borrowed {
            Some(stack) => {
                self.report.versions = stack.lock().await.versions().clone();
                self.reporter.line(&format!(
                    "hab: using the running {}",
                    StackHandle::describe(topology)
                ));
                stack
            }
            None => self.start_stack(topology, cancel).await?,
        };
        if let Err(e) = self.live.cpu.start(stack.clone()) {
            self.reporter.line(&format!(
                "hab: warning: cannot sample CPU ({e}); the run goes on without CPU figures"
            ));
        }
        let res = self.drive(opts, topology, plan, &stack, cancel).await;
        // The sampler holds the stack: it stops before the stack is taken down.
        self.live.cpu.stop();
        // A fault still in progress (the run stopped or failed mid-workload) finishes
        // first: a paused node is resumed, an external stack's fault reverted.
        self.live.injectors.close();
        if tokio::time::timeout(INJECTOR_WAIT, self.live.injectors.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "a fault was still being restored after {} s; going on with teardown",
                INJECTOR_WAIT.as_secs()
            );
        }
        if let Some(w) = self.workers.as_mut() {
            w.stop().await;
        }
        if !own {
            return res;
        }
        match Arc::try_unwrap(stack) {
            Ok(stack) => stack.into_inner().shutdown().await,
            // A fault task still holds it: dropping kills every server.
            Err(_) => tracing::warn!("stack still shared at teardown; killing its servers"),
        }
        res
    }

    /// Brings the run's own stack up, recording the bring-up in run.json.
    async fn start_stack(
        &mut self,
        topology: &Topology,
        cancel: &CancellationToken,
    ) -> Result<SharedStack> {
        let dirs = StackDirs {
            logs: self.dirs.logs.clone(),
        };
        let verb = if topology.is_external() {
            "reaching"
        } else {
            "starting"
        };
        self.reporter.line(&format!(
            "hab: {verb} {} …",
            StackHandle::describe(topology)
        ));
        let stack = tokio::select! {
            s = StackHandle::start(topology, &dirs) => s?,
            _ = cancel.cancelled() => bail!("interrupted while the stack was starting"),
        };
        self.report.bringup_ms = Some(stack.bringup_ms());
        self.report.bringup_phases_ms = stack.bringup_phases_ms().clone();
        self.report.versions = stack.versions().clone();
        self.reporter
            .line(&format!("hab: stack ready in {} ms", stack.bringup_ms()));
        Ok(Arc::new(tokio::sync::Mutex::new(stack)))
    }

    /// Everything between bring-up and teardown.
    async fn drive(
        &mut self,
        opts: &RunOptions,
        topology: &Topology,
        plan: &WorkloadPlan,
        stack: &SharedStack,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let endpoints = Endpoints::read(stack, topology).await;
        // Independent observers of the servers, for failover anatomy.
        let mut observers = Observers::start(&self.live, &endpoints, cancel);
        let mut publisher = self.connect_producer(topology, stack, &endpoints).await?;
        if let Some(window) = opts.calibrate {
            self.calibrate(opts, topology, stack, publisher.channel(), window, cancel)
                .await?;
        }
        // Results first, so nothing published later can be missed.
        let mut results = Results::start(&self.live, &endpoints, cancel).await?;
        observers.keepalive(&self.live, &results, topology);
        self.start_workers(opts, topology, &endpoints, &mut publisher, cancel)
            .await?;

        let policy = topology.producer.clone();
        publisher.set_timeouts(policy.publish_timeout, policy.connect_timeout);
        let mut driver = Driver {
            breaker: (policy.policy == PolicyKind::Breaker).then(|| Breaker::new(policy.breaker())),
            policy,
            workload: 0,
            publisher,
            reader: &mut results.reader,
            live: &self.live,
            anchor: Anchor::now(),
            cancel,
            progress: self.progress,
            workers: self.workers.as_mut().expect("workers started"),
            retry: Vec::new(),
            fresh_channel: false,
            force_reconnect: false,
            stack: stack.clone(),
            shard: opts.shard,
            queue: topology.broker.queue,
            reporter: self.reporter.clone(),
            t0_unix_us: 0,
        };
        // Barriers need the stack the shards share: with a local stack per shard only the
        // first workload waits (for the instant).
        let shared = topology
            .is_external()
            .then_some(endpoints.backend_url.as_str());
        let rendezvous = opts.shard.zip(opts.start).map(|(shard, start)| {
            if shared.is_none() && shard.count > 1 {
                self.reporter.line(&format!(
                    "hab: shard {shard} runs its own local stack: only its first workload waits for the start instant; later workloads have no barrier (that needs a stack the shards share, [external])"
                ));
            }
            Rendezvous::new(start, shard, &plan.name, shared)
        });
        let mut book = workloads::Book {
            report: &mut self.report,
            dirs: &self.dirs,
            reporter: &self.reporter,
            rendezvous,
        };
        book.warm_up(&mut driver, plan).await?;
        book.run_workloads(&mut driver, opts, topology, plan, cancel)
            .await?;
        book.last_look(&mut driver, opts, topology, plan, cancel)
            .await;
        let publisher = driver.publisher;
        results.stop().await;
        observers.stop().await;
        publisher.close().await;
        Ok(())
    }

    /// The producer's connection, which declares the task queue; then the stack must be
    /// healthy with the queue's replicas online before anything is measured.
    async fn connect_producer(
        &mut self,
        topology: &Topology,
        stack: &SharedStack,
        endpoints: &Endpoints,
    ) -> Result<Publisher> {
        let publisher =
            Publisher::connect(&endpoints.broker_url, &topology.broker, "hab-producer").await?;
        // Client-side failover: `broker.primary` is the node the producer is on.
        if topology.clients.broker == BrokerAccess::Nodes {
            stack
                .lock()
                .await
                .follow_client_node(publisher.node_handle());
        }
        let queue_wait = Instant::now();
        stack
            .lock()
            .await
            .wait_healthy(Duration::from_secs(60))
            .await
            .context("the stack did not become healthy after the task queue was declared")?;
        self.report.bringup_phases_ms.insert(
            "queue_replicas".into(),
            queue_wait.elapsed().as_millis() as u64,
        );
        Ok(publisher)
    }

    /// Start the workers and wait until every one consumes the task queue.
    async fn start_workers(
        &mut self,
        opts: &RunOptions,
        topology: &Topology,
        endpoints: &Endpoints,
        publisher: &mut Publisher,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let started = Instant::now();
        let mut workers = Workers::new(opts, topology, endpoints, &self.dirs);
        workers.start(topology.workers.count)?;
        self.live.cpu.set_workers(workers.roles());
        let workers = self.workers.insert(workers);
        let deadline = Instant::now() + WORKERS_READY_WITHIN;
        loop {
            workers.check_alive()?;
            let consumers =
                match broker::queue_state(publisher.channel(), topology.broker.queue).await {
                    Ok((consumers, _)) => consumers,
                    // Idle while the stack settled and the workers started, the producer's
                    // connection can be cut (heartbeat off behind a proxy with a short idle
                    // timeout): count it, reconnect, go on.
                    Err(e) if !publisher.is_usable() => {
                        let events = &self.live.events;
                        events.record(PRODUCER, ClientEventKind::Error, format!("{e:#}"));
                        publisher
                            .reconnect(cancel, |e| {
                                events.record(PRODUCER, ClientEventKind::Error, format!("{e:#}"))
                            })
                            .await?;
                        events.record(PRODUCER, ClientEventKind::Reconnected, "");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            if consumers >= topology.workers.count {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "only {consumers} of {} workers consumed the queue after 60 s; see {}",
                    topology.workers.count,
                    self.dirs.logs.display()
                );
            }
            tokio::select! {
                _ = cancel.cancelled() => bail!("interrupted while the workers were starting"),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        self.report.workers_ready_ms = Some(started.elapsed().as_millis() as u64);
        Ok(())
    }

    /// The stack's raw limits, measured before the workers start (the broker figure
    /// consumes the queue itself), into run.json and `calibrate.json`; the queue is
    /// purged and the backend flushed afterwards, so the workloads start clean.
    async fn calibrate(
        &mut self,
        opts: &RunOptions,
        topology: &Topology,
        shared_stack: &SharedStack,
        setup: &lapin::Channel,
        window: Duration,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let copts = CalibrateOptions {
            topology_path: opts.topology_path.clone(),
            out_dir: self.dirs.root.clone(),
            duration: window,
            disk_bytes: calibrate::DEFAULT_DISK_BYTES,
            allow_flush: opts.allow_flush,
            reporter: self.reporter.clone(),
        };
        let stack = shared_stack.lock().await;
        let mut cal = Calibration::start(&copts, topology)?;
        cal.versions = stack.versions().clone();
        cal.bringup_ms = Some(stack.bringup_ms());
        self.reporter.line(&format!(
            "hab: measuring the stack's raw limits ({}s windows) …",
            window.as_secs_f64()
        ));
        let res = calibrate::measure(
            &copts,
            topology,
            &stack,
            &self.dirs.root,
            &self.dirs.scratch,
            &mut cal,
            cancel,
        )
        .await;
        drop(stack);
        cal.finished_unix_ms = Some(now_unix_us() / 1000);
        cal.status = match &res {
            Ok(()) => RunStatus::Complete,
            Err(_) if cancel.is_cancelled() => RunStatus::Interrupted,
            Err(_) => RunStatus::Failed,
        };
        cal.error = res.as_ref().err().map(|e| format!("{e:#}"));
        // calibrate.json ends as run.json's `calibration` does (it was left `running`).
        calibrate::write_json(&self.dirs.root, &cal)?;
        self.report.calibration = Some(cal);
        write_outputs(&self.dirs.root, &self.report, &self.live)?;
        res.context("measuring the stack's raw limits (--calibrate)")?;
        let _ = setup
            .queue_purge(
                lapin::types::ShortString::from(crate::protocol::CELERY_QUEUE),
                lapin::options::QueuePurgeOptions::default(),
            )
            .await;
        Ok(())
    }
}
