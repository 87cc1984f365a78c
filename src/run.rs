//! One run: stack up → workers → warm-up → workloads (publish, drain) → results.
//!
//! Every workload goes through the same path: the generator publishes each task at its
//! intended start (burst or constant rate), a watcher collects results from Redis pub/sub
//! (with reconciliation reads for anything outstanding), the workers report executions
//! through the side channel, and after each workload every output file is rewritten, so an
//! interrupted run keeps what it measured.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::stream::{FuturesUnordered, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lapin::Confirmation;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backend::{self, WatchEvent};
use crate::broker;
use crate::clock::Anchor;
use crate::config::{ArrivalKind, TaskSpec, Topology, WorkerKind, Workload, WorkloadPlan};
use crate::export::{self, Machine, RunData, RunReport, RunStatus, WorkersReport};
use crate::ledger::{ConfirmState, Ledger, SeenVia, SideEventKind, TaskRecord, side_channel};
use crate::load::Schedule;
use crate::metrics::WorkloadMetrics;
use crate::metrics::failover::{self, AppliedFault, FailoverRow};
use crate::observe::{ClientEventKind, EventLog};
use crate::protocol::message::{TaskMessage, encode};
use crate::shard::Shard;
use crate::stack::process::ManagedProcess;
use crate::stack::{StackDirs, StackHandle};

mod deadline;

/// Unconfirmed publishes the generator keeps in flight before waiting for confirms.
const CONFIRM_WINDOW: usize = 2048;
/// Attempts of the last reconciliation read of a workload.
const FINAL_READ_ATTEMPTS: u32 = 5;
/// Tasks outstanding longer than this are checked by reading their result keys.
const RECONCILE_AGE: Duration = Duration::from_secs(2);
/// At most this many (the oldest) are read per periodic reconciliation: with a backlog in
/// the queue every task is outstanding for seconds, and reading them all every 2 s
/// (MGET of hundreds of thousands of keys) took the producer's and Redis's CPU from the
/// run itself. Notifications are the main path; the last reconciliation reads them all.
const RECONCILE_BATCH: usize = 10_000;
/// How long an interrupted workload waits for tasks already published.
const INTERRUPT_DRAIN: Duration = Duration::from_secs(2);
/// How long the end of a run tries to reconnect the producer to read the final queue
/// state (a broker left down on purpose never comes back: without a bound the run
/// would wait for it until Ctrl-C).
const FINAL_STATE_RECONNECT: Duration = Duration::from_secs(30);

/// What to run and where to write it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The topology file (passed to the worker processes too).
    pub topology_path: PathBuf,
    /// The workload file.
    pub workload_path: PathBuf,
    /// Directory in which the run directory is created (`results/` by default).
    pub out_dir: PathBuf,
    /// Show progress bars (stderr is a terminal).
    pub progress: bool,
    /// Measure the stack's raw limits (`hab calibrate`'s figures, windows of this length)
    /// after bring-up and before the workers start; kept in run.json.
    pub calibrate: Option<Duration>,
    /// Run the workload's faults on an external stack (their commands act on servers
    /// hab does not own); without it such a run is refused.
    pub allow_faults: bool,
    /// Run one generator shard of N (`--shard I/N`): 1/N of every workload, task ids that
    /// name the shard, the plan's faults applied by shard 1 only ([`crate::shard`]).
    pub shard: Option<Shard>,
}

/// A finished (or interrupted) run.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// The content of its run.json.
    pub report: RunReport,
}

/// The run directory's name: `<UTC timestamp>-<topology>-<workload plan>`.
pub fn run_dir_name(topology: &str, plan: &str) -> String {
    format!(
        "{}-{topology}-{plan}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// A shard's run directory name: [`run_dir_name`] with `-shard<I>of<N>`.
pub fn shard_dir_name(topology: &str, plan: &str, shard: Option<Shard>) -> String {
    let base = run_dir_name(topology, plan);
    match shard {
        Some(s) => format!("{base}-shard{}of{}", s.index, s.count),
        None => base,
    }
}

/// Celery name and positional arguments of a task of this workload. A `write_zeros`
/// path is a file name, which every worker takes inside its own scratch directory.
pub fn task_call(spec: &TaskSpec, id: &Uuid) -> (&'static str, Value) {
    let args = match spec {
        TaskSpec::Trivial => json!([]),
        TaskSpec::Sleep { seconds } => json!([seconds]),
        TaskSpec::WriteZeros { bytes } => {
            json!([format!("hab-zeros-{id}.bin"), bytes])
        }
        TaskSpec::Factorial { n } => json!([n]),
    };
    (spec.task_name(), args)
}

/// The environment that gives hab's tasks for a real Celery worker
/// (`scripts/celery/hab_tasks.py`) the topology's `[workers.limits]`.
fn celery_limits_env(l: &crate::config::limits::WorkerLimits) -> [(&'static str, String); 4] {
    [
        ("HAB_MAX_FACTORIAL_N", l.max_factorial_n.to_string()),
        ("HAB_MAX_WRITE_BYTES", l.max_write_bytes.to_string()),
        ("HAB_MAX_SLEEP_S", l.max_sleep.as_secs_f64().to_string()),
        ("HAB_MAX_MESSAGE_BYTES", l.max_message_bytes.to_string()),
    ]
}

/// The worker processes of a run, restarted if one dies.
struct Workers {
    topology_path: PathBuf,
    topology: Topology,
    broker_url: String,
    backend_url: String,
    logs: PathBuf,
    executions: PathBuf,
    /// The workers' scratch directory: the only place `hab.write_zeros` creates files.
    scratch: PathBuf,
    procs: Vec<(String, ManagedProcess)>,
    restarts: u64,
}

impl Workers {
    fn spawn_one(&self, name: &str) -> Result<ManagedProcess> {
        if self.topology.workers.kind == WorkerKind::Celery {
            return self.spawn_celery(name);
        }
        let exe = std::env::current_exe().context("cannot find hab's own executable")?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("worker")
            .arg("--topology")
            .arg(&self.topology_path)
            .arg("--broker-url")
            .arg(&self.broker_url)
            .arg("--backend-url")
            .arg(&self.backend_url)
            .arg("--name")
            .arg(name)
            .arg("--executions")
            .arg(self.executions.join(format!("{name}.csv")))
            .arg("--scratch")
            .arg(&self.scratch)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // One clock: the worker stamps its side channel on the run's time line.
            .env(crate::clock::ANCHOR_ENV, crate::clock::anchor().env_value())
            // An external stack's credentials: through the environment, never arguments.
            .envs(crate::credentials::current().child_env());
        Ok(ManagedProcess::spawn(
            &format!("worker {name}"),
            cmd,
            "hab",
            &self.logs.join(format!("worker-{name}.log")),
        )?)
    }

    /// A real Celery worker with hab's four tasks (`scripts/celery/hab_tasks.py`), its
    /// settings from the topology, its executions into the same side channel.
    fn spawn_celery(&self, name: &str) -> Result<ManagedProcess> {
        let w = &self.topology.workers;
        let dir = w
            .celery_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("scripts/celery"));
        let dir = std::path::absolute(&dir)
            .with_context(|| format!("bad workers.celery_dir {}", dir.display()))?;
        let python = dir.join("venv/bin/python");
        if !dir.join("hab_tasks.py").is_file() || !python.is_file() {
            bail!(
                "workers.kind = \"celery\" needs {} and its virtualenv {}: run scripts/celery/setup.sh (or set workers.celery_dir)",
                dir.join("hab_tasks.py").display(),
                python.display()
            );
        }
        let b = &self.topology.broker;
        let mut cmd = std::process::Command::new(&python);
        cmd.current_dir(&dir)
            .args([
                "-m",
                "celery",
                "-A",
                "hab_tasks",
                "worker",
                "--loglevel=INFO",
            ])
            .args([
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ])
            .arg(format!("--concurrency={}", w.concurrency()))
            .arg(format!("--pool={}", w.pool.unwrap_or_default().as_str()))
            .arg(format!("--hostname={name}@hab"))
            .args(["--queues", "celery"])
            .env("PYTHONPATH", &dir)
            .env("PYTHONUNBUFFERED", "1")
            // Celery reads the URLs from the environment (not the command line), so an
            // external stack's credentials can go into them.
            .env(
                "HAB_BROKER_URL",
                self.broker_url
                    .split(';')
                    .map(crate::credentials::amqp_url)
                    .collect::<Vec<_>>()
                    .join(";"),
            )
            .env(
                "HAB_BACKEND_URL",
                if self.backend_url.starts_with("sentinel://") {
                    self.backend_url.clone()
                } else {
                    crate::credentials::redis_url(&self.backend_url)
                },
            )
            .env(
                "HAB_QUEUE_TYPE",
                match b.queue {
                    crate::config::QueueKind::Quorum => "quorum",
                    _ => "classic",
                },
            )
            .env("HAB_QUEUE_DURABLE", if b.durable { "1" } else { "0" })
            .env(
                "HAB_ACKS_LATE",
                if w.acks == crate::config::AckMode::Late {
                    "1"
                } else {
                    "0"
                },
            )
            .env("HAB_PREFETCH_MULTIPLIER", w.prefetch_multiplier.to_string())
            .env(
                "HAB_RESULT_TTL_S",
                self.topology
                    .backend
                    .result_ttl
                    .as_secs()
                    .max(1)
                    .to_string(),
            )
            .env("HAB_HEARTBEAT_S", b.heartbeat.as_secs().to_string())
            .env("HAB_TRACK_STARTED", if w.track_started { "1" } else { "0" })
            .env("HAB_WORKER_NAME", name)
            // One clock: hab_tasks.py stamps with time.monotonic_ns() through the run's
            // anchor.
            .env(crate::clock::ANCHOR_ENV, crate::clock::anchor().env_value())
            .env(
                "HAB_EXECUTIONS",
                self.executions.join(format!("{name}.csv")),
            )
            // The same rules as hab's worker: writes only inside the scratch directory,
            // the same limits per message.
            .env("HAB_SCRATCH", &self.scratch)
            .envs(celery_limits_env(&w.limits));
        Ok(ManagedProcess::spawn(
            &format!("celery worker {name}"),
            cmd,
            "python3",
            &self.logs.join(format!("worker-{name}.log")),
        )?)
    }

    fn start(&mut self, count: u32) -> Result<()> {
        for i in 1..=count {
            let name = format!("w{i}");
            let p = self.spawn_one(&name)?;
            self.procs.push((name, p));
        }
        Ok(())
    }

    /// Fail if a worker died before it was ready (with its log).
    fn check_alive(&mut self) -> Result<()> {
        for (name, p) in &mut self.procs {
            if !p.is_running() {
                bail!(
                    "worker {name} exited during start-up; last lines of {}:\n{}",
                    p.log_path().display(),
                    p.log_tail(20)
                );
            }
        }
        Ok(())
    }

    /// Restart workers that died (a crash, or killed from outside): as a supervisor
    /// (systemd, Kubernetes) would. Each restart is counted.
    fn supervise(&mut self) {
        let mut dead = Vec::new();
        for (i, (name, p)) in self.procs.iter_mut().enumerate() {
            if !p.is_running() {
                tracing::warn!("worker {name} died; restarting it");
                dead.push(i);
            }
        }
        for i in dead {
            self.restarts += 1;
            let base = self.procs[i].0.split('r').next().unwrap_or("w").to_string();
            let name = format!("{base}r{}", self.restarts);
            match self.spawn_one(&name) {
                Ok(p) => self.procs[i] = (name, p),
                Err(e) => tracing::error!("cannot restart worker: {e:#}"),
            }
        }
    }

    async fn stop(&mut self) {
        let stops = self
            .procs
            .iter_mut()
            .map(|(_, p)| p.stop(Duration::from_secs(15)));
        futures_util::future::join_all(stops).await;
    }

    /// Merge every side-channel event written so far, from every worker file, into the
    /// ledger (streamed: the files of a million-task run are never held), and return what
    /// else they said.
    fn merge_side_channel(&self, ledger: &mut Ledger) -> SideChannelSummary {
        let mut summary = SideChannelSummary::default();
        ledger.clear_executions();
        let mut names = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.executions) {
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                // Tasks this worker started and has not finished (by start order).
                let mut running: Vec<(String, Uuid)> = Vec::new();
                let read = side_channel::for_each_in_file(&p, |ev| {
                    ledger.merge_event(&ev, &mut names);
                    match ev.kind {
                        SideEventKind::Start => {
                            summary.executions += 1;
                            running.push((ev.worker.clone(), ev.task_id));
                        }
                        SideEventKind::Finish { .. } => {
                            if let Some(i) = running
                                .iter()
                                .position(|(w, id)| *id == ev.task_id && *w == ev.worker)
                            {
                                running.swap_remove(i);
                            }
                            // A real Celery worker's tasks raise the refusal themselves.
                            if let Some(code) = ev.detail.strip_prefix("refused:") {
                                *summary.refused.entry(code.to_string()).or_insert(0) += 1;
                            }
                        }
                        SideEventKind::Reject => {
                            *summary.rejected.entry(ev.detail).or_insert(0) += 1;
                        }
                        SideEventKind::Refused => {
                            *summary.refused.entry(ev.detail).or_insert(0) += 1;
                        }
                        SideEventKind::Disconnected
                        | SideEventKind::Connected
                        | SideEventKind::Rediscovered
                        | SideEventKind::StoreError => summary.connection_events.push(ev),
                        SideEventKind::Clock => {
                            match crate::clock::parse_side_channel_detail(&ev.detail) {
                                Some((pid, anchor)) => {
                                    summary.clocks.push(crate::clock::ProcessClock {
                                        worker: ev.worker,
                                        pid,
                                        same_time_line: crate::clock::anchor()
                                            .same_time_line(&anchor),
                                        anchor,
                                    })
                                }
                                None => tracing::warn!(
                                    "{}: unreadable clock line {:?}",
                                    p.display(),
                                    ev.detail
                                ),
                            }
                        }
                    }
                });
                if let Err(e) = read {
                    tracing::warn!("cannot read side channel {}: {e}", p.display());
                }
                let mut crashed: Vec<crate::export::WorkerCrash> = Vec::new();
                for (worker, id) in running {
                    match crashed.iter_mut().find(|c| c.worker == worker) {
                        Some(c) => c.task_ids.push(id.to_string()),
                        None => crashed.push(crate::export::WorkerCrash {
                            worker,
                            task_ids: vec![id.to_string()],
                        }),
                    }
                }
                summary.crashes.extend(crashed);
            }
        }
        ledger.sort_executions();
        summary
    }
}

/// What the side channel said besides executions.
#[derive(Debug, Default)]
struct SideChannelSummary {
    /// Execution starts (warm-up included).
    executions: u64,
    /// Rejected messages by reason.
    rejected: std::collections::BTreeMap<String, u64>,
    /// Messages refused by rule (and expired ones), by reason.
    refused: std::collections::BTreeMap<String, u64>,
    /// Tasks a worker was running when it ended.
    crashes: Vec<crate::export::WorkerCrash>,
    /// The workers' connection losses, reconnections and failed result writes.
    connection_events: Vec<crate::ledger::SideEvent>,
    /// Every worker process's clock anchor (one per process that opened a file).
    clocks: Vec<crate::clock::ProcessClock>,
}

/// Shared state between the generator, the result collector and the drain.
struct Live {
    ledger: Mutex<Ledger>,
    /// Signalled whenever results were applied.
    progress: Notify,
    /// Set when the result subscription was re-established: reconcile now.
    resubscribed: AtomicBool,
    /// What the clients went through.
    events: EventLog,
    /// What the server-side observers saw.
    servers: Arc<crate::observe::server::ServerLog>,
    /// Every fault applied so far.
    faults: Arc<Mutex<Vec<AppliedFault>>>,
    /// The task ids whose result key Redis still held at the end (read once, after the
    /// last workload); `None` until then or when the read failed.
    final_result_ids: Mutex<Option<std::collections::HashSet<uuid::Uuid>>>,
    /// Every state change of the producer's circuit breaker (`policy = "breaker"`).
    breaker_transitions: Mutex<Vec<crate::metrics::outage::BreakerTransition>>,
    /// Why the run must stop (a fault command on an external stack failed or hung);
    /// set by the fault injector, which also cancels the run.
    fatal: Arc<Mutex<Option<String>>>,
    /// How each server-side observer fared (run.json `observers`).
    observers: Mutex<Vec<Arc<crate::observe::server::ObserverTally>>>,
    /// The fault injectors spawned so far: teardown waits for them (bounded), so a fault
    /// in progress is restored even when the run stops mid-workload.
    injectors: tokio_util::task::TaskTracker,
    /// Reads whose failure decided outcomes (run.json `failed_reads`).
    failed_reads: Mutex<Vec<crate::export::json::FailedRead>>,
}

/// How long teardown waits for a fault in progress to be restored.
const INJECTOR_WAIT: Duration = Duration::from_secs(300);

/// Run every workload of `plan` on `topology`, writing the run directory.
pub async fn run(
    opts: &RunOptions,
    topology: &Topology,
    plan: &WorkloadPlan,
    cancel: CancellationToken,
) -> Result<RunOutcome> {
    // An external stack: faults allowed and every command defined, credentials loaded
    // (bad input, before any directory exists).
    let credentials = crate::stack::external::prepare(
        &opts.topology_path,
        topology,
        &opts.workload_path,
        plan,
        opts.allow_faults,
    )?;
    crate::credentials::install(credentials);
    if opts.calibrate.is_some() {
        crate::calibrate::refuse_external(topology, &opts.topology_path)?;
    }
    // Absolute: servers run in directories of their own and read their configs from here.
    let out_dir = std::path::absolute(&opts.out_dir)
        .with_context(|| format!("bad output directory {}", opts.out_dir.display()))?;
    let dir = out_dir.join(shard_dir_name(&topology.name, &plan.name, opts.shard));
    let logs = dir.join("logs");
    let executions = dir.join("executions");
    for d in [&dir, &logs, &executions] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let scratch = match &plan.scratch_dir {
        Some(d) => d.clone(),
        None => dir.join("scratch"),
    };
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create scratch directory {}", scratch.display()))?;
    // Workers run in other directories (a Celery worker in its own): an absolute path.
    let scratch = std::path::absolute(&scratch)
        .with_context(|| format!("bad scratch directory {}", scratch.display()))?;

    let report = RunReport {
        hab_version: env!("CARGO_PKG_VERSION").to_string(),
        status: RunStatus::Running,
        error: None,
        name: format!("{}-{}", topology.name, plan.name),
        started_unix_ms: crate::clock::now_unix_us() / 1000,
        finished_unix_ms: None,
        topology_file: opts.topology_path.display().to_string(),
        workload_file: opts.workload_path.display().to_string(),
        topology: serde_json::to_value(topology)?,
        workload_plan: serde_json::to_value(plan)?,
        machine: Machine::current(),
        versions: Default::default(),
        bringup_ms: None,
        bringup_phases_ms: Default::default(),
        workers_ready_ms: None,
        workers: WorkersReport {
            kind: format!("{:?}", topology.workers.kind).to_lowercase(),
            count: topology.workers.count,
            concurrency: topology.workers.concurrency(),
            prefetch: topology.workers.prefetch(),
            acks: format!("{:?}", topology.workers.acks).to_lowercase(),
            ..Default::default()
        },
        unknown_results: 0,
        client_events: Default::default(),
        workloads: Vec::new(),
        failover: Vec::new(),
        final_state: None,
        timeline: Vec::new(),
        calibration: None,
        idle: None,
        producer: None,
        observers: Vec::new(),
        shard: opts.shard.map(|s| crate::shard::ShardReport {
            index: s.index,
            count: s.count,
            faults_by: crate::shard::FAULT_SHARD,
            stack: crate::shard::stack_scope(topology),
            faults: Vec::new(),
            server_events: Vec::new(),
            result_vanished_ids: None,
        }),
        merged: None,
        failed_reads: Vec::new(),
        clock: Some(crate::export::json::ClockReport::new(Vec::new())),
        invariants: Vec::new(),
    };
    if let Some(s) = opts.shard
        && !s.applies_faults()
        && plan.workloads.iter().any(|w| !w.faults.is_empty())
    {
        eprintln!(
            "hab: shard {s}: the plan's faults are applied by shard {} only; this shard drives load",
            crate::shard::FAULT_SHARD
        );
    }
    let n = plan.workloads.len();
    let live = Arc::new(Live {
        ledger: Mutex::new(Ledger::new(n + 1)),
        progress: Notify::new(),
        resubscribed: AtomicBool::new(false),
        events: EventLog::new(),
        servers: Arc::new(crate::observe::server::ServerLog::new()),
        faults: Arc::new(Mutex::new(Vec::new())),
        final_result_ids: Mutex::new(None),
        breaker_transitions: Mutex::new(Vec::new()),
        fatal: Arc::new(Mutex::new(None)),
        observers: Mutex::new(Vec::new()),
        injectors: tokio_util::task::TaskTracker::new(),
        failed_reads: Mutex::new(Vec::new()),
    });
    write_outputs(&dir, &report, &live)?;
    eprintln!("hab: run directory {}", dir.display());

    let mut state = RunState {
        dir: dir.clone(),
        scratch: scratch.clone(),
        report,
        live: live.clone(),
        workers: None,
        progress: opts.progress,
    };
    let mut result = state
        .execute(opts, topology, plan, &logs, &executions, &cancel)
        .await;
    // A failed fault command stopped the run: that is its error, not an interruption.
    let fatal = live.fatal.lock().expect("fatal lock").clone();
    if let Some(why) = &fatal {
        result = Err(anyhow::anyhow!("{why}"));
    }
    // Whatever happened: stop the workers, merge their side channel, classify, write.
    let interrupted = cancel.is_cancelled() && fatal.is_none();
    state.finish(topology, plan, &result, interrupted).await;
    // The stack (if any) was dropped inside execute(): no server outlives this point.
    // Only the run's own scratch directory is removed (if empty), never a user's.
    if plan.scratch_dir.is_none() {
        let _ = std::fs::remove_dir(&scratch);
    }
    match result {
        Ok(()) => Ok(RunOutcome {
            dir,
            report: state.report,
        }),
        Err(e) => Err(e.context(format!("run directory {}", dir.display()))),
    }
}

struct RunState {
    dir: PathBuf,
    scratch: PathBuf,
    report: RunReport,
    live: Arc<Live>,
    workers: Option<Workers>,
    progress: bool,
}

impl RunState {
    async fn execute(
        &mut self,
        opts: &RunOptions,
        topology: &Topology,
        plan: &WorkloadPlan,
        logs: &Path,
        executions: &Path,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let dirs = StackDirs {
            logs: logs.to_path_buf(),
        };
        eprintln!(
            "hab: {} {} …",
            if topology.is_external() {
                "reaching"
            } else {
                "starting"
            },
            StackHandle::describe(topology)
        );
        let stack = tokio::select! {
            s = StackHandle::start(topology, &dirs) => s?,
            _ = cancel.cancelled() => bail!("interrupted while the stack was starting"),
        };
        self.report.bringup_ms = Some(stack.bringup_ms());
        self.report.bringup_phases_ms = stack.bringup_phases_ms().clone();
        self.report.versions = stack.versions().clone();
        eprintln!("hab: stack ready in {} ms", stack.bringup_ms());
        let stack = Arc::new(tokio::sync::Mutex::new(stack));
        let res = self
            .drive(opts, topology, plan, &stack, executions, cancel)
            .await;
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
        // Workers go before the servers they talk to.
        if let Some(w) = self.workers.as_mut() {
            w.stop().await;
        }
        match Arc::try_unwrap(stack) {
            Ok(stack) => stack.into_inner().shutdown().await,
            // A fault task still holds it: dropping kills every server.
            Err(_) => tracing::warn!("stack still shared at teardown; killing its servers"),
        }
        res
    }

    /// The stack's raw limits, measured before the workers start (the broker figure
    /// consumes the queue itself), into run.json and `calibrate.json`; the queue is
    /// purged and the backend flushed afterwards, so the workloads start clean.
    async fn calibrate(
        &mut self,
        opts: &RunOptions,
        topology: &Topology,
        shared_stack: &Arc<tokio::sync::Mutex<StackHandle>>,
        setup: &lapin::Channel,
        window: Duration,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let copts = crate::calibrate::CalibrateOptions {
            topology_path: opts.topology_path.clone(),
            out_dir: self.dir.clone(),
            duration: window,
            disk_bytes: crate::calibrate::DEFAULT_DISK_BYTES,
        };
        let stack = shared_stack.lock().await;
        let mut cal = crate::calibrate::Calibration::start(&copts, topology)?;
        cal.versions = stack.versions().clone();
        cal.bringup_ms = Some(stack.bringup_ms());
        eprintln!(
            "hab: measuring the stack's raw limits ({}s windows) …",
            window.as_secs_f64()
        );
        let res = crate::calibrate::measure(
            &copts,
            topology,
            &stack,
            &self.dir,
            &self.scratch,
            &mut cal,
            cancel,
        )
        .await;
        drop(stack);
        cal.finished_unix_ms = Some(crate::clock::now_unix_us() / 1000);
        cal.status = match &res {
            Ok(()) => RunStatus::Complete,
            Err(_) if cancel.is_cancelled() => RunStatus::Interrupted,
            Err(_) => RunStatus::Failed,
        };
        cal.error = res.as_ref().err().map(|e| format!("{e:#}"));
        self.report.calibration = Some(cal);
        write_outputs(&self.dir, &self.report, &self.live)?;
        res.context("measuring the stack's raw limits (--calibrate)")?;
        let _ = setup
            .queue_purge(
                lapin::types::ShortString::from(broker::CELERY_QUEUE),
                lapin::options::QueuePurgeOptions::default(),
            )
            .await;
        Ok(())
    }

    async fn drive(
        &mut self,
        opts: &RunOptions,
        topology: &Topology,
        plan: &WorkloadPlan,
        shared_stack: &Arc<tokio::sync::Mutex<StackHandle>>,
        executions: &Path,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let (broker_url, backend_url, proxy_socket, sentinel_addrs, management) = {
            let stack = shared_stack.lock().await;
            (
                stack.client_broker_url(&topology.clients),
                stack.client_backend_url(&topology.clients),
                stack.proxy_stats(),
                stack.sentinel_addrs(),
                // A local stack's leader is watched with rabbitmqctl after each broker
                // fault; an external one's over its management API, all the time.
                match &*stack {
                    crate::stack::StackHandle::External(e) if !e.management_urls().is_empty() => {
                        Some((
                            e.management_urls(),
                            e.config().broker_node_names.clone(),
                            e.config().broker_nodes.clone(),
                        ))
                    }
                    _ => None,
                },
            )
        };
        // Independent observers of the servers, for failover anatomy.
        let observe_cancel = cancel.child_token();
        let mut observers = Vec::new();
        let tally = |name: &str, address: String| {
            let t = crate::observe::server::ObserverTally::new(name, address);
            self.live
                .observers
                .lock()
                .expect("observers lock")
                .push(t.clone());
            t
        };
        if let Some(socket) = proxy_socket {
            let t = tally("haproxy stats", socket.to_string());
            observers.push(tokio::spawn(crate::observe::server::watch_proxy(
                socket,
                self.live.servers.clone(),
                t,
                observe_cancel.clone(),
            )));
        }
        if let Some((urls, names, nodes)) = management {
            let t = tally("rabbitmq management", urls.join(" "));
            observers.push(tokio::spawn(
                crate::observe::management::watch_queue_leader(
                    urls,
                    names,
                    nodes,
                    self.live.servers.clone(),
                    t,
                    observe_cancel.clone(),
                ),
            ));
        }
        for addr in sentinel_addrs {
            let t = tally("sentinel", addr.clone());
            observers.push(tokio::spawn(crate::observe::server::watch_sentinel(
                addr,
                self.live.servers.clone(),
                t,
                observe_cancel.clone(),
            )));
        }
        let mut publisher =
            broker::Publisher::connect(&broker_url, &topology.broker, "hab-producer").await?;
        let mut setup = publisher.channel().clone();
        // Client-side failover: `broker.primary` is the node the producer is on.
        if topology.clients.broker == crate::config::clients::BrokerAccess::Nodes {
            shared_stack
                .lock()
                .await
                .follow_client_node(publisher.node_handle());
        }
        // The queue exists now: wait until its replicas are online and it has a leader
        // (and the rest of the stack is healthy) before anything is measured.
        let queue_wait = Instant::now();
        shared_stack
            .lock()
            .await
            .wait_healthy(Duration::from_secs(60))
            .await
            .context("the stack did not become healthy after the task queue was declared")?;
        self.report.bringup_phases_ms.insert(
            "queue_replicas".into(),
            queue_wait.elapsed().as_millis() as u64,
        );
        if let Some(window) = opts.calibrate {
            self.calibrate(opts, topology, shared_stack, &setup, window, cancel)
                .await?;
        }

        // Results first, so nothing published later can be missed.
        let (tx, rx) = mpsc::unbounded_channel();
        let watch_cancel = cancel.child_token();
        let watcher = backend::watch_results(&backend_url, tx, watch_cancel.clone()).await?;
        let collector = tokio::spawn(collect(self.live.clone(), rx));
        let mut reader = backend::reader(&backend_url).await?;
        reader.set_discovery_hook(discovery_hook(self.live.clone(), "results reader"));
        if !topology.backend.keepalive.is_zero() {
            observers.push(tokio::spawn(redis_keepalive(
                reader.clone(),
                topology.backend.keepalive,
                self.live.clone(),
                observe_cancel.clone(),
            )));
        }

        // Workers.
        let started = Instant::now();
        let mut workers = Workers {
            topology_path: opts.topology_path.clone(),
            topology: topology.clone(),
            broker_url: broker_url.clone(),
            backend_url: backend_url.clone(),
            logs: stack_logs(&self.dir),
            executions: executions.to_path_buf(),
            scratch: self.scratch.clone(),
            procs: Vec::new(),
            restarts: 0,
        };
        workers.start(topology.workers.count)?;
        self.workers = Some(workers);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.workers.as_mut().unwrap().check_alive()?;
            let (consumers, _) = match broker::queue_state(&setup, topology.broker.queue).await {
                Ok(state) => state,
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
                    setup = publisher.channel().clone();
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
                    stack_logs(&self.dir).display()
                );
            }
            tokio::select! {
                _ = cancel.cancelled() => bail!("interrupted while the workers were starting"),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        self.report.workers_ready_ms = Some(started.elapsed().as_millis() as u64);

        let anchor = Anchor::now();
        let policy = topology.producer.clone();
        publisher.set_timeouts(policy.publish_timeout, policy.connect_timeout);
        let mut driver = Driver {
            breaker: (policy.policy == crate::config::PolicyKind::Breaker)
                .then(|| crate::producer::Breaker::new(policy.breaker())),
            policy,
            workload: 0,
            publisher,
            reader: &mut reader,
            live: &self.live,
            anchor,
            cancel,
            progress: self.progress,
            workers: self.workers.as_mut().unwrap(),
            retry: Vec::new(),
            fresh_channel: false,
            force_reconnect: false,
            stack: shared_stack.clone(),
            shard: opts.shard,
            queue: topology.broker.queue,
        };

        // Warm-up: trivial tasks through the same path, kept out of every figure.
        if plan.warmup_tasks > 0 {
            let warm = Workload {
                name: "warmup".into(),
                task: TaskSpec::Trivial,
                count: plan.warmup_tasks as u64,
                arrival: ArrivalKind::Burst,
                rate_per_s: None,
                drain_timeout: None,
                idle_before: None,
                repeat: 1,
                faults: Vec::new(),
            };
            driver
                .workload(plan.workloads.len(), 1, &warm, plan.drain_timeout)
                .await?;
        }

        for (i, w) in plan.workloads.iter().enumerate() {
            if cancel.is_cancelled() {
                break;
            }
            if let Some(gap) = w.idle_before {
                // Nothing is published: every client connection sits idle for the gap.
                eprintln!(
                    "hab: idle for {} before workload {}",
                    humantime::format_duration(gap),
                    w.name
                );
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(gap) => {}
                }
                driver.workers.supervise();
            }
            eprintln!(
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
            );
            // `repeat = N`: N repetitions back to back, each drained (to its own drain
            // deadline, what is left of it frozen and taken out of the queue) before the
            // next starts.
            for rep in 1..=w.repeat {
                if rep > 1 {
                    if cancel.is_cancelled() {
                        break;
                    }
                    eprintln!("hab: workload {}: repetition {rep}/{}", w.name, w.repeat);
                }
                driver
                    .workload(i, rep, w, w.drain_timeout.unwrap_or(plan.drain_timeout))
                    .await?;
                // Provisional results after every repetition: a crash keeps them.
                driver.workers.supervise();
                self.report.workloads =
                    metrics_so_far(&self.live, plan, i + 1, Some(driver.workers)).0;
                self.report.failover = failover_rows(&self.live, plan, &topology.clients);
                self.report.producer = producer_report(&self.live, topology, plan);
                self.report.failed_reads =
                    self.live.failed_reads.lock().expect("reads lock").clone();
                self.report.workers.restarts = driver.workers.restarts;
                check_invariants(&mut self.report, &self.live);
                write_outputs(&self.dir, &self.report, &self.live)?;
            }
            if let Some(lag) = self
                .report
                .workloads
                .get(i)
                .and_then(|m| schedule_lag_warning(w, m))
            {
                eprintln!("hab: warning: {lag}");
            }
        }
        // An independent look at the servers before they go: what is left in the queue,
        // and how many result keys exist.
        let mut queue =
            broker::queue_state(driver.publisher.channel(), topology.broker.queue).await;
        if queue.is_err()
            && !cancel.is_cancelled()
            && tokio::time::timeout(FINAL_STATE_RECONNECT, driver.reconnect())
                .await
                .is_ok_and(|r| r.is_ok())
        {
            // The producer's connection died in a fault after its last publish.
            queue = broker::queue_state(driver.publisher.channel(), topology.broker.queue).await;
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
        let faulted = !self.live.faults.lock().expect("faults lock").is_empty()
            || (opts.shard.is_some() && plan.workloads.iter().any(|w| !w.faults.is_empty()));
        if faulted {
            match result_key_ids(driver.reader).await {
                Ok(ids) => *self.live.final_result_ids.lock().expect("ids lock") = Some(ids),
                Err(e) => tracing::warn!("result keys not read at the end: {e:#}"),
            }
        }
        match (queue, keys) {
            (Ok((consumers, ready)), Ok(result_keys)) => {
                self.report.final_state = Some(crate::export::json::FinalState {
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
        watch_cancel.cancel();
        observe_cancel.cancel();
        for o in observers {
            let _ = o.await;
        }
        let _ = watcher.await;
        let _ = collector.await;
        driver.publisher.close().await;
        Ok(())
    }

    async fn finish(
        &mut self,
        topology: &Topology,
        plan: &WorkloadPlan,
        result: &Result<()>,
        interrupted: bool,
    ) {
        let done = self.report.workloads.len().max(
            // Include the workload that was running when the run stopped.
            self.live
                .ledger
                .lock()
                .map(|l| {
                    (0..plan.workloads.len())
                        .filter(|&i| !l.tasks(i).is_empty())
                        .count()
                })
                .unwrap_or(0),
        );
        let (workloads, side) = metrics_so_far(&self.live, plan, done, self.workers.as_ref());
        self.report.workloads = workloads;
        self.report.observers = self
            .live
            .observers
            .lock()
            .map(|o| o.iter().map(|t| t.status()).collect())
            .unwrap_or_default();
        for o in &self.report.observers {
            if let Some(p) = o.problem() {
                eprintln!("hab: warning: {p}");
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
            self.live.events.push(crate::observe::ClientEvent {
                at_unix_us: e.unix_us,
                source: format!("worker {}", e.worker),
                kind,
                detail,
            });
        }
        self.report.failover = failover_rows(&self.live, plan, &topology.clients);
        self.fill_shard_report(plan);
        self.report.producer = producer_report(&self.live, topology, plan);
        self.report.failed_reads = self.live.failed_reads.lock().expect("reads lock").clone();
        self.report.idle = idle_report(&stack_logs(&self.dir), topology, &self.live, plan, done);
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
        self.report.clock = Some(crate::export::json::ClockReport::new(side.clocks));
        if let Some(w) = self.workers.as_ref() {
            self.report.workers.restarts = w.restarts;
        }
        (
            self.report.unknown_results,
            self.report.workers.progress_results,
        ) = self
            .live
            .ledger
            .lock()
            .map(|l| (l.unknown_results(), l.progress_results()))
            .unwrap_or((0, 0));
        self.report.finished_unix_ms = Some(crate::clock::now_unix_us() / 1000);
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
            eprintln!("hab: invariant violated: {}: {}", i.name, i.detail);
        }
        if let Err(e) = write_outputs(&self.dir, &self.report, &self.live) {
            tracing::error!("cannot write results: {e:#}");
        }
    }
}

impl RunState {
    /// A shard's faults, server events and vanished results into run.json, so that
    /// `hab merge` can analyse failover again on the merged ledger.
    fn fill_shard_report(&mut self, plan: &WorkloadPlan) {
        let Some(shard) = self.report.shard.as_mut() else {
            return;
        };
        shard.faults = self.live.faults.lock().expect("faults lock").clone();
        shard.server_events = self.live.servers.snapshot();
        let present = self.live.final_result_ids.lock().expect("ids lock");
        shard.result_vanished_ids = present.as_ref().map(|p| {
            let ledger = self.live.ledger.lock().expect("ledger lock");
            (0..plan.workloads.len())
                .flat_map(|w| ledger.tasks(w))
                .filter(|t| t.classify().outcome == crate::ledger::Outcome::Ok)
                .filter(|t| !p.contains(&t.id))
                .map(|t| t.id.to_string())
                .collect()
        });
    }
}

/// Sentinel discovery events of one of the producer's Redis connections (client-side
/// failover) as client events of `source`.
fn discovery_hook(live: Arc<Live>, source: &'static str) -> crate::client_failover::DiscoveryHook {
    use crate::client_failover::DiscoveryEvent;
    Arc::new(move |at_unix_us, ev| {
        let (kind, detail) = match ev {
            DiscoveryEvent::NewMaster { from, to } => (
                ClientEventKind::Rediscovered,
                format!("Sentinels name master {to} (was {from})"),
            ),
            DiscoveryEvent::Reconnected { addr } => (
                ClientEventKind::Reconnected,
                format!("connected to master {addr}"),
            ),
        };
        live.events.push(crate::observe::ClientEvent {
            at_unix_us,
            source: source.into(),
            kind,
            detail,
        });
    })
}

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
            crate::export::table::fmt_us(lag.p99_us),
            crate::export::table::fmt_us(lag.max_us),
            w.rate_per_s.unwrap_or(0.0)
        )
    })
}

fn stack_logs(dir: &Path) -> PathBuf {
    dir.join("logs")
}

/// Metrics for the first `upto` workloads, with the side channel merged.
fn metrics_so_far(
    live: &Live,
    plan: &WorkloadPlan,
    upto: usize,
    workers: Option<&Workers>,
) -> (
    Vec<crate::metrics::summary::WorkloadReport>,
    SideChannelSummary,
) {
    let mut ledger = live.ledger.lock().expect("ledger lock");
    let side = match workers {
        Some(w) => w.merge_side_channel(&mut ledger),
        None => SideChannelSummary::default(),
    };
    let reports = plan
        .workloads
        .iter()
        .take(upto)
        .enumerate()
        .map(|(i, w)| {
            WorkloadMetrics::from_tasks(&w.name, w.task.task_name(), ledger.tasks(i)).report()
        })
        .collect();
    (reports, side)
}

/// Failover anatomy for every fault applied so far (side channel already merged).
/// The task ids of every `celery-task-meta-<id>` key the backend holds (SCAN).
async fn result_key_ids(
    conn: &mut backend::RedisConn,
) -> Result<std::collections::HashSet<uuid::Uuid>> {
    let mut cursor: u64 = 0;
    let mut ids = std::collections::HashSet::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{}*", backend::RESULT_PREFIX))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .context("scanning result keys")?;
        ids.extend(
            keys.iter().filter_map(|k| {
                uuid::Uuid::parse_str(k.strip_prefix(backend::RESULT_PREFIX)?).ok()
            }),
        );
        if next == 0 {
            return Ok(ids);
        }
        cursor = next;
    }
}

fn failover_rows(
    live: &Live,
    plan: &WorkloadPlan,
    clients: &crate::config::clients::ClientsConfig,
) -> Vec<FailoverRow> {
    let faults = live.faults.lock().expect("faults lock").clone();
    let present = live.final_result_ids.lock().expect("ids lock").clone();
    let client_events = live.events.snapshot();
    let server_events = live.servers.snapshot();
    let ledger = live.ledger.lock().expect("ledger lock");
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
fn producer_report(
    live: &Live,
    topology: &Topology,
    plan: &WorkloadPlan,
) -> Option<crate::metrics::outage::ProducerReport> {
    let policy = topology.producer.policy;
    let faults: Vec<AppliedFault> = live
        .faults
        .lock()
        .expect("faults lock")
        .iter()
        .filter(|f| f.not_applied.is_none() && f.target.to_string().starts_with("broker"))
        .cloned()
        .collect();
    if policy == crate::config::PolicyKind::Block && faults.is_empty() {
        return None;
    }
    let transitions = live
        .breaker_transitions
        .lock()
        .expect("transitions lock")
        .clone();
    let ledger = live.ledger.lock().expect("ledger lock");
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
fn idle_report(
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
    let ledger = live.ledger.lock().expect("ledger lock");
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
fn check_invariants(report: &mut RunReport, live: &Live) {
    let ledger = live.ledger.lock().expect("ledger lock");
    report.invariants = crate::invariants::check(report, Some(&ledger));
}

fn write_outputs(dir: &Path, report: &RunReport, live: &Live) -> Result<()> {
    let events = live.events.snapshot();
    let ledger = live.ledger.lock().expect("ledger lock");
    export::write_all(
        dir,
        RunData {
            report,
            ledger: &ledger,
            events: &events,
        },
    )
}

/// The channel the producer's Redis keepalive publishes on: it matches the result
/// subscription's pattern (so the subscription gets traffic too), and no task has this id
/// (the watcher skips it).
pub const KEEPALIVE_CHANNEL: &str = "celery-task-meta-hab-keepalive";

/// `backend.keepalive` for the producer's Redis connections: a `PUBLISH` on
/// [`KEEPALIVE_CHANNEL`] every `every` through the reader keeps the reader's connection
/// and the result subscription from sitting idle. A failed one is a client error.
async fn redis_keepalive(
    mut conn: backend::RedisConn,
    every: Duration,
    live: Arc<Live>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(KEEPALIVE_CHANNEL)
            .arg("")
            .query_async(&mut conn)
            .await;
        if let Err(e) = sent {
            live.events.record(
                "results",
                ClientEventKind::Error,
                format!("keepalive PUBLISH failed: {e}"),
            );
        }
    }
}

/// Apply result notifications to the ledger as they arrive.
async fn collect(live: Arc<Live>, mut rx: mpsc::UnboundedReceiver<WatchEvent>) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        {
            let mut ledger = live.ledger.lock().expect("ledger lock");
            for ev in batch.drain(..) {
                match ev {
                    WatchEvent::Result(r) => {
                        ledger.result_seen(&r.id, r.at_unix_us, r.status, SeenVia::Notification)
                    }
                    WatchEvent::Progress => ledger.progress_seen(),
                    WatchEvent::Lost => live.events.record(
                        "results",
                        ClientEventKind::Error,
                        "result subscription lost",
                    ),
                    WatchEvent::Resubscribed => {
                        live.events
                            .record("results", ClientEventKind::Reconnected, "resubscribed");
                        live.resubscribed.store(true, Ordering::SeqCst)
                    }
                }
            }
        }
        live.progress.notify_waiters();
    }
}

/// Publishes workloads and waits for them to drain.
struct Driver<'a> {
    publisher: broker::Publisher,
    reader: &'a mut backend::RedisConn,
    live: &'a Live,
    anchor: Anchor,
    cancel: &'a CancellationToken,
    progress: bool,
    workers: &'a mut Workers,
    /// Tasks of the current workload to publish again (nacked or confirmation lost).
    retry: Vec<usize>,
    /// A nack was seen: republish on a fresh channel.
    fresh_channel: bool,
    /// A confirmation was lost: reconnect before the next publish.
    force_reconnect: bool,
    /// The stack, for the fault injector.
    stack: Arc<tokio::sync::Mutex<StackHandle>>,
    /// The topology's `[producer]`: policy and timeouts.
    policy: crate::config::ProducerConfig,
    /// The circuit breaker (`policy = "breaker"`).
    breaker: Option<crate::producer::Breaker>,
    /// The workload being published (for the breaker's transitions).
    workload: usize,
    /// The generator shard this run is (`--shard I/N`); `None` drives the whole load.
    shard: Option<Shard>,
    /// The task queue's kind (to inspect it).
    queue: crate::config::QueueKind,
}

/// A task's confirmation; an error carries the connection generation (the publisher's
/// reconnect count when it was published) and what happened.
type ConfirmResult = Result<Confirmation, (u64, String)>;
/// A task's index, its confirmation, when the confirmation (or its failure) arrived in
/// unix µs, and the breaker's permit of the call (if any).
type ConfirmOutput = (usize, ConfirmResult, i64, Option<crate::producer::Permit>);
type ConfirmFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ConfirmOutput> + Send>>;

const PRODUCER: &str = "producer";

impl Driver<'_> {
    fn progress_bar(&self, w: &Workload, count: u64) -> ProgressBar {
        if !self.progress || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(Some(count), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} done {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        pb.set_prefix(w.name.clone());
        pb
    }

    fn apply_confirm(&mut self, w: usize, (idx, res, arrived_unix_us, permit): ConfirmOutput) {
        if let Some(permit) = permit {
            let ok = matches!(res, Ok(Confirmation::Ack(_) | Confirmation::NotRequested));
            self.breaker_result(permit, ok);
        }
        let mut ledger = self.live.ledger.lock().expect("ledger lock");
        match res {
            Ok(Confirmation::Ack(_)) => ledger.update(w, idx, |t| {
                t.confirm = ConfirmState::Acked;
                t.confirmed_unix_us = Some(arrived_unix_us);
            }),
            Ok(Confirmation::NotRequested) => {
                ledger.update(w, idx, |t| t.confirm = ConfirmState::NotRequested)
            }
            Ok(Confirmation::Nack(_)) => {
                // The broker refused it: publish again, on a fresh channel.
                let id = ledger.update(w, idx, |t| {
                    t.confirm = ConfirmState::Nacked;
                    t.id
                });
                drop(ledger);
                self.live
                    .events
                    .record(PRODUCER, ClientEventKind::Nack, id.to_string());
                self.fresh_channel = true;
                self.retry.push(idx);
            }
            Err((generation, e)) => {
                // The channel died before the broker answered: the producer cannot know
                // whether the task arrived. Publish it again (at-least-once; a duplicate
                // shows up in the ledger).
                drop(ledger);
                self.live.events.record(
                    PRODUCER,
                    ClientEventKind::Error,
                    format!("confirm lost: {e}"),
                );
                // The connection may be dead without lapin knowing: start afresh, unless
                // this confirmation belonged to a connection already replaced.
                if generation == self.publisher.reconnects {
                    self.force_reconnect = true;
                }
                self.retry.push(idx);
            }
        }
    }

    async fn reconnect(&mut self) -> Result<()> {
        let events = &self.live.events;
        // A connection the broker or a proxy closed while the producer was idle is found
        // dead without any call failing: count it as the error it is, never hide it.
        if !self.publisher.is_usable() && events.last_kind(PRODUCER) != Some(ClientEventKind::Error)
        {
            events.record(
                PRODUCER,
                ClientEventKind::Error,
                "connection found closed before the next publish",
            );
        }
        self.publisher
            .reconnect(self.cancel, |e| {
                events.record(PRODUCER, ClientEventKind::Error, format!("{e:#}"))
            })
            .await?;
        // Client-side failover: when the producer moved on to another node.
        for (at_unix_us, detail) in self.publisher.take_switches() {
            events.push(crate::observe::ClientEvent {
                at_unix_us,
                source: PRODUCER.into(),
                kind: ClientEventKind::Rediscovered,
                detail,
            });
        }
        events.record(PRODUCER, ClientEventKind::Reconnected, "");
        Ok(())
    }

    /// Publish task `idx` of workload `w` under the topology's producer policy.
    async fn publish(
        &mut self,
        w: usize,
        idx: usize,
        spec: &Workload,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        let id = self.live.ledger.lock().expect("ledger lock").tasks(w)[idx].id;
        let (name, args) = task_call(&spec.task, &id);
        let mut msg = TaskMessage::new(name, args);
        msg.id = id.to_string();
        let (body, props) = encode(&msg);
        match self.policy.policy {
            crate::config::PolicyKind::Block => {
                self.publish_blocking(w, idx, &body, &props, pending).await
            }
            crate::config::PolicyKind::Retry => {
                self.publish_retrying(w, idx, &body, &props, pending).await
            }
            crate::config::PolicyKind::Breaker => {
                self.publish_breaker(w, idx, &body, &props, pending).await
            }
        }
    }

    /// A confirmation future for a publish handed to the connection, bounded by the
    /// confirm timeout, stamped when the confirmation arrives ([`crate::clock::on_arrival`]),
    /// not when the generator gets round to it between publishes.
    fn confirm_future(
        &self,
        idx: usize,
        confirm: lapin::PublisherConfirm,
        permit: Option<crate::producer::Permit>,
    ) -> ConfirmFuture {
        let generation = self.publisher.reconnects;
        let timeout = self.policy.confirm_timeout;
        let arrival = crate::clock::on_arrival(tokio::time::timeout(timeout, confirm));
        Box::pin(async move {
            let (res, arrived_unix_us) = arrival.await;
            let res = match res {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(e)) => Err((generation, e.to_string())),
                Err(_) => Err((
                    generation,
                    format!(
                        "no confirmation within {}",
                        humantime::format_duration(timeout)
                    ),
                )),
            };
            (idx, res, arrived_unix_us, permit)
        })
    }

    /// `block`: publish, reconnecting as often as needed. Only a cancelled run gives up
    /// (the task is then marked as never published successfully).
    async fn publish_blocking(
        &mut self,
        w: usize,
        idx: usize,
        body: &[u8],
        props: &lapin::BasicProperties,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        loop {
            let stale = std::mem::take(&mut self.force_reconnect);
            if (stale || !self.publisher.is_usable()) && self.reconnect().await.is_err() {
                self.mark_failed(w, idx);
                return;
            }
            match self.publisher.publish(body, props.clone()).await {
                Ok(confirm) => {
                    pending.push(self.confirm_future(idx, confirm, None));
                    return;
                }
                Err(e) => {
                    self.live.events.record(
                        PRODUCER,
                        ClientEventKind::Error,
                        format!("publish failed: {e:#}"),
                    );
                    if self.reconnect().await.is_err() {
                        self.mark_failed(w, idx);
                        return;
                    }
                    self.count_republish(w, idx);
                }
            }
        }
    }

    /// One attempt of the `retry` and `breaker` policies: (re)open the connection if it
    /// is not usable (one bounded attempt), then publish (bounded). Every failure is a
    /// client event.
    async fn attempt(
        &mut self,
        body: &[u8],
        props: &lapin::BasicProperties,
    ) -> Result<lapin::PublisherConfirm> {
        let stale = std::mem::take(&mut self.force_reconnect);
        if stale || !self.publisher.is_usable() {
            let events = &self.live.events;
            if !self.publisher.is_usable()
                && events.last_kind(PRODUCER) != Some(ClientEventKind::Error)
            {
                events.record(
                    PRODUCER,
                    ClientEventKind::Error,
                    "connection found closed before the next publish",
                );
            }
            if let Err(e) = self.publisher.reconnect_once().await {
                // The connection stays unusable: the next attempt reconnects again.
                events.record(PRODUCER, ClientEventKind::Error, format!("{e:#}"));
                return Err(e);
            }
            events.record(PRODUCER, ClientEventKind::Reconnected, "");
        }
        match self.publisher.publish(body, props.clone()).await {
            Ok(c) => Ok(c),
            Err(e) => {
                self.live.events.record(
                    PRODUCER,
                    ClientEventKind::Error,
                    format!("publish failed: {e:#}"),
                );
                // Whatever the channel's state, start from a fresh connection next time.
                self.force_reconnect = true;
                Err(e)
            }
        }
    }

    /// `retry`: up to `producer.retry.attempts` attempts with exponential backoff and
    /// jitter between them; then the task is given up (`gave_up`).
    async fn publish_retrying(
        &mut self,
        w: usize,
        idx: usize,
        body: &[u8],
        props: &lapin::BasicProperties,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        let mut delays = crate::producer::retry_delays(self.policy.retry(), None);
        loop {
            if let Ok(confirm) = self.attempt(body, props).await {
                pending.push(self.confirm_future(idx, confirm, None));
                return;
            }
            let Some(delay) = delays.next() else {
                self.give_up(w, idx, ConfirmState::GaveUp);
                return;
            };
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    self.mark_failed(w, idx);
                    return;
                }
                _ = tokio::time::sleep(delay) => {}
            }
            self.count_republish(w, idx);
        }
    }

    /// `breaker`: refused at once while the breaker is open; otherwise one attempt, whose
    /// failure (or lost confirmation, in `apply_confirm`) counts against the breaker.
    async fn publish_breaker(
        &mut self,
        w: usize,
        idx: usize,
        body: &[u8],
        props: &lapin::BasicProperties,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        let breaker = self.breaker.as_mut().expect("policy breaker has a breaker");
        let (admission, change) = breaker.admit(Instant::now());
        self.record_transition(change);
        let crate::producer::Admission::Allowed(permit) = admission else {
            self.give_up(w, idx, ConfirmState::Refused);
            return;
        };
        match self.attempt(body, props).await {
            Ok(confirm) => pending.push(self.confirm_future(idx, confirm, Some(permit))),
            Err(_) => {
                self.breaker_result(permit, false);
                self.give_up(w, idx, ConfirmState::GaveUp);
            }
        }
    }

    /// Report a call's result to the breaker and record the state change it caused.
    fn breaker_result(&mut self, permit: crate::producer::Permit, ok: bool) {
        if let Some(b) = self.breaker.as_mut() {
            let change = b.on_result(permit, ok, Instant::now());
            self.record_transition(change);
        }
    }

    fn record_transition(&self, change: Option<crate::producer::Transition>) {
        let Some(t) = change else {
            return;
        };
        let at_unix_us = self.anchor.unix_us(t.at);
        eprintln!(
            "hab: producer breaker {} → {}",
            t.from.as_str(),
            t.to.as_str()
        );
        self.live
            .breaker_transitions
            .lock()
            .expect("transitions lock")
            .push(crate::metrics::outage::BreakerTransition {
                at_unix_us,
                workload: self.workload,
                from: t.from,
                to: t.to,
            });
    }

    /// The producer refused task `idx` (breaker open) or gave it up (attempts
    /// exhausted): settled, never to be published again. A task refused before any
    /// publish call has no publish time.
    fn give_up(&self, w: usize, idx: usize, state: ConfirmState) {
        let now = self.anchor.now_unix_us();
        let mut ledger = self.live.ledger.lock().expect("ledger lock");
        ledger.update(w, idx, |t| {
            t.confirm = state;
            t.refused_unix_us = Some(now);
            if state == ConfirmState::Refused && t.republished == 0 {
                t.published_unix_us = None;
            }
        });
    }

    fn mark_failed(&self, w: usize, idx: usize) {
        let mut ledger = self.live.ledger.lock().expect("ledger lock");
        ledger.update(w, idx, |t| t.confirm = ConfirmState::Failed);
    }

    fn count_republish(&self, w: usize, idx: usize) {
        let id = {
            let mut ledger = self.live.ledger.lock().expect("ledger lock");
            ledger.update(w, idx, |t| {
                t.republished += 1;
                t.confirm = ConfirmState::Pending;
                t.id
            })
        };
        self.live
            .events
            .record(PRODUCER, ClientEventKind::Republish, id.to_string());
    }

    /// Publish again every task whose publish was not confirmed.
    async fn flush_retries(
        &mut self,
        w: usize,
        spec: &Workload,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        if self.retry.is_empty() || self.cancel.is_cancelled() {
            return;
        }
        if std::mem::take(&mut self.fresh_channel)
            && self.publisher.is_usable()
            && let Err(e) = self.publisher.fresh_channel().await
        {
            self.live
                .events
                .record(PRODUCER, ClientEventKind::Error, format!("{e:#}"));
        }
        for idx in std::mem::take(&mut self.retry) {
            self.count_republish(w, idx);
            self.publish(w, idx, spec, pending).await;
        }
    }

    /// Publish repetition `repetition` (from 1) of workload `w` on its schedule, then
    /// wait until every task settled or the drain timeout passed.
    async fn workload(
        &mut self,
        w: usize,
        repetition: u32,
        spec: &Workload,
        drain_timeout: Duration,
    ) -> Result<()> {
        let schedule = match spec.arrival {
            ArrivalKind::Burst => Schedule::Burst { count: spec.count },
            ArrivalKind::Rate => Schedule::Rate {
                count: spec.count,
                per_s: spec.rate_per_s.unwrap_or(1.0),
            },
        };
        // A shard publishes its own part of the schedule (the whole of it unsharded).
        let shard = self.shard.unwrap_or(Shard::WHOLE);
        let pb = self.progress_bar(spec, shard.tasks_in(spec.count));
        self.live
            .ledger
            .lock()
            .expect("ledger lock")
            .reserve(w, shard.tasks_in(spec.count) as usize);
        let mut pending: FuturesUnordered<ConfirmFuture> = FuturesUnordered::new();
        self.retry.clear();
        self.workload = w;
        let t0 = Instant::now();
        let injector = (!spec.faults.is_empty() && shard.applies_faults()).then(|| {
            self.live.injectors.spawn(crate::inject::run_faults(
                w,
                spec.faults.clone(),
                t0,
                self.stack.clone(),
                self.live.faults.clone(),
                self.live.servers.clone(),
                self.live.fatal.clone(),
                self.cancel.clone(),
                crate::progress::stderr(),
            ))
        });
        let mut last_check = Instant::now();
        let mut pacer =
            crate::load::pacer::Pacer::new().context("cannot create the pacing timer")?;
        for offset_us in shard.offsets_us(&schedule) {
            let target = t0 + Duration::from_micros(offset_us);
            if target > Instant::now() {
                pacer.arm(target).context("cannot arm the pacing timer")?;
            }
            // Process confirmations while waiting for the next intended start.
            loop {
                if pending.len() >= CONFIRM_WINDOW {
                    tokio::select! {
                        _ = self.cancel.cancelled() => break,
                        Some(out) = pending.next() => self.apply_confirm(w, out),
                    }
                    continue;
                }
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break,
                    Some(out) = pending.next(), if !pending.is_empty() => {
                        self.apply_confirm(w, out);
                    }
                    _ = pacer.fired() => break,
                }
            }
            if self.cancel.is_cancelled() {
                break;
            }
            self.flush_retries(w, spec, &mut pending).await;
            let idx = {
                let mut ledger = self.live.ledger.lock().expect("ledger lock");
                let id = match self.shard {
                    Some(s) => s.task_id(),
                    None => Uuid::new_v4(),
                };
                let mut rec = TaskRecord::new(id, w, self.anchor.unix_us(target));
                rec.repetition = repetition;
                rec.published_unix_us = Some(self.anchor.now_unix_us());
                ledger.insert(rec)
            };
            self.publish(w, idx, spec, &mut pending).await;
            if last_check.elapsed() > Duration::from_millis(200) {
                last_check = Instant::now();
                // A re-established result subscription may have missed results stored
                // meanwhile: read them now, not only in the drain (else a backend
                // failover's switch time would run until the publishing ends).
                if self.live.resubscribed.swap(false, Ordering::SeqCst)
                    && !self.reconcile(Duration::ZERO, RECONCILE_BATCH).await
                {
                    self.live.resubscribed.store(true, Ordering::SeqCst);
                }
                self.workers.supervise();
                pb.set_position(self.published(w).saturating_sub(self.unsettled(w) as u64));
            }
        }
        let drain = if self.cancel.is_cancelled() {
            INTERRUPT_DRAIN
        } else {
            drain_timeout
        };
        let deadline = Instant::now() + drain;
        let mut last_reconcile = Instant::now();
        loop {
            while let Some(Some(out)) = futures_util::FutureExt::now_or_never(pending.next()) {
                self.apply_confirm(w, out);
            }
            self.flush_retries(w, spec, &mut pending).await;
            let unsettled = self.unsettled(w);
            pb.set_position(self.published(w).saturating_sub(unsettled as u64));
            if unsettled == 0 && pending.is_empty() && self.retry.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                // Last chance for anything whose notification was missed; then this
                // workload's outcomes are frozen and what is left of it is taken out of
                // the queue.
                self.at_deadline(w, &spec.name).await;
                break;
            }
            if self.live.resubscribed.swap(false, Ordering::SeqCst)
                || last_reconcile.elapsed() >= RECONCILE_AGE
            {
                self.reconcile(RECONCILE_AGE, RECONCILE_BATCH).await;
                last_reconcile = Instant::now();
                self.workers.supervise();
            }
            let wait = Duration::from_millis(100).min(deadline - now);
            tokio::select! {
                _ = self.live.progress.notified() => {}
                Some(out) = pending.next(), if !pending.is_empty() => {
                    self.apply_confirm(w, out);
                }
                _ = tokio::time::sleep(wait) => {}
                _ = self.cancel.cancelled(), if drain != INTERRUPT_DRAIN => {
                    // Interrupted during the drain: give in-flight tasks a short chance.
                    return Box::pin(self.short_drain(w, &spec.name, &mut pending)).await;
                }
            }
        }
        pb.finish_and_clear();
        if let Some(injector) = injector {
            // Faults planned late in the workload, and the restoring of full health, may
            // outlast the drain: the next workload starts on a healthy stack.
            let _ = injector.await;
        }
        Ok(())
    }

    async fn short_drain(
        &mut self,
        w: usize,
        name: &str,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) -> Result<()> {
        let deadline = Instant::now() + INTERRUPT_DRAIN;
        while Instant::now() < deadline && (self.unsettled(w) > 0 || !pending.is_empty()) {
            tokio::select! {
                Some(out) = pending.next(), if !pending.is_empty() => self.apply_confirm(w, out),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        self.at_deadline(w, name).await;
        Ok(())
    }

    fn unsettled(&self, w: usize) -> usize {
        self.live.ledger.lock().expect("ledger lock").unsettled(w)
    }

    fn published(&self, w: usize) -> u64 {
        self.live.ledger.lock().expect("ledger lock").tasks(w).len() as u64
    }

    /// Read the result keys of (at most `limit` of the oldest) tasks of the workload being
    /// driven outstanding for longer than `age`. Returns false when the read failed (the
    /// reader reconnects on the next call).
    async fn reconcile(&mut self, age: Duration, limit: usize) -> bool {
        let before = self.anchor.now_unix_us() - age.as_micros() as i64;
        let ids = self
            .live
            .ledger
            .lock()
            .expect("ledger lock")
            .outstanding_ids(self.workload, before, limit);
        if ids.is_empty() {
            return true;
        }
        match backend::read_results(self.reader, &ids).await {
            Ok(found) => {
                let mut ledger = self.live.ledger.lock().expect("ledger lock");
                for r in found {
                    ledger.result_seen(&r.id, r.at_unix_us, r.status, SeenVia::Read);
                }
                true
            }
            Err(e) => {
                self.live.events.record(
                    "results",
                    ClientEventKind::Error,
                    format!("reconciliation read failed: {e:#}"),
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_calls_carry_the_seed_arguments() {
        let id = Uuid::nil();
        assert_eq!(
            task_call(&TaskSpec::Trivial, &id),
            ("hab.trivial", json!([]))
        );
        assert_eq!(
            task_call(&TaskSpec::Sleep { seconds: 10.0 }, &id),
            ("hab.sleep", json!([10.0]))
        );
        assert_eq!(
            task_call(&TaskSpec::Factorial { n: 100000 }, &id),
            ("hab.factorial", json!([100000]))
        );
        let (name, args) = task_call(
            &TaskSpec::WriteZeros {
                bytes: 1_000_000_000,
            },
            &id,
        );
        assert_eq!(name, "hab.write_zeros");
        // A name inside the worker's scratch directory, never a path of the producer's.
        assert_eq!(
            args,
            json!([format!("hab-zeros-{id}.bin"), 1_000_000_000u64])
        );
    }

    #[test]
    fn schedule_lag_is_warned_about_only_for_rate_workloads_that_fell_behind() {
        let mut w = Workload {
            name: "r".into(),
            task: TaskSpec::Trivial,
            count: 10,
            arrival: ArrivalKind::Rate,
            rate_per_s: Some(2000.0),
            drain_timeout: None,
            idle_before: None,
            repeat: 1,
            faults: Vec::new(),
        };
        let mut lag = crate::metrics::LatencyHistogram::new();
        lag.record(300);
        let mut m = WorkloadMetrics::from_tasks("r", "hab.trivial", &[]);
        m.stages.schedule_lag = lag.clone();
        assert_eq!(schedule_lag_warning(&w, &m.report()), None);
        lag.record(5_000);
        lag.record(5_000);
        m.stages.schedule_lag = lag;
        let warning = schedule_lag_warning(&w, &m.report()).unwrap();
        assert!(warning.contains("fell behind 2000/s"), "{warning}");
        w.arrival = ArrivalKind::Burst;
        assert_eq!(schedule_lag_warning(&w, &m.report()), None);
    }

    #[test]
    fn run_dir_names_sort_by_time_and_name_the_run() {
        let n = run_dir_name("standalone", "seed");
        assert!(n.ends_with("-standalone-seed"), "{n}");
        assert!(n.starts_with("20"), "{n}");
    }
}
