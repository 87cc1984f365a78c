//! The worker processes of a run (hab's own or real Celery workers), restarted if one
//! dies, and what their side channel said.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use uuid::Uuid;

use crate::config::{Topology, WorkerKind};
use crate::ledger::Ledger;
use crate::protocol::side_channel::{self, SideEventKind};
use crate::stack::process::ManagedProcess;

use super::live::Endpoints;
use super::{RunDirs, RunOptions};

/// The environment that gives hab's tasks for a real Celery worker
/// (`scripts/celery/hab_tasks.py`) the topology's `[workers.limits]`.
pub(super) fn celery_limits_env(
    l: &crate::config::limits::WorkerLimits,
) -> [(&'static str, String); 4] {
    [
        ("HAB_MAX_FACTORIAL_N", l.max_factorial_n.to_string()),
        ("HAB_MAX_WRITE_BYTES", l.max_write_bytes.to_string()),
        ("HAB_MAX_SLEEP_S", l.max_sleep.as_secs_f64().to_string()),
        ("HAB_MAX_MESSAGE_BYTES", l.max_message_bytes.to_string()),
    ]
}

/// The worker processes of a run, restarted if one dies.
pub(super) struct Workers {
    pub(super) topology_path: PathBuf,
    pub(super) topology: Topology,
    pub(super) broker_url: String,
    pub(super) backend_url: String,
    pub(super) logs: PathBuf,
    pub(super) executions: PathBuf,
    /// The workers' scratch directory: the only place `hab.write_zeros` creates files.
    pub(super) scratch: PathBuf,
    pub(super) procs: Vec<(String, ManagedProcess)>,
    pub(super) restarts: u64,
}

impl Workers {
    /// No worker yet: [`Workers::start`] starts them.
    pub(super) fn new(
        opts: &RunOptions,
        topology: &Topology,
        endpoints: &Endpoints,
        dirs: &RunDirs,
    ) -> Self {
        Workers {
            topology_path: opts.topology_path.clone(),
            topology: topology.clone(),
            broker_url: endpoints.broker_url.clone(),
            backend_url: endpoints.backend_url.clone(),
            logs: dirs.logs.clone(),
            executions: dirs.executions.clone(),
            scratch: dirs.scratch.clone(),
            procs: Vec::new(),
            restarts: 0,
        }
    }

    pub(super) fn spawn_one(&self, name: &str) -> Result<ManagedProcess> {
        if self.topology.workers.kind == WorkerKind::Celery {
            return self.spawn_celery(name);
        }
        let exe = crate::stack::process::own_executable()?;
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
    pub(super) fn spawn_celery(&self, name: &str) -> Result<ManagedProcess> {
        let w = &self.topology.workers;
        let Some(place) = crate::config::celery::locate(&self.topology) else {
            bail!("workers.kind is not \"celery\"");
        };
        if !place.ready() {
            bail!(
                "the Celery worker needs {} (hab run and hab compare set it up before anything starts; run scripts/celery/setup.sh, or leave workers.celery_dir unset)",
                place.missing_text()
            );
        }
        let dir = std::path::absolute(place.dir())
            .with_context(|| format!("bad Celery directory {}", place.dir().display()))?;
        let python = dir.join("venv/bin/python");
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

    pub(super) fn start(&mut self, count: u32) -> Result<()> {
        for i in 1..=count {
            let name = format!("w{i}");
            let p = self.spawn_one(&name)?;
            self.procs.push((name, p));
        }
        Ok(())
    }

    /// The worker processes by role, for the CPU sampler: `hab.worker w1` (hab's own
    /// worker, whose overhead is hab's) or `celery w1`.
    pub(super) fn roles(&self) -> Vec<(String, i32)> {
        let kind = match self.topology.workers.kind {
            WorkerKind::Celery => "celery",
            _ => "hab.worker",
        };
        self.procs
            .iter()
            .map(|(name, p)| (format!("{kind} {name}"), p.pid().as_raw()))
            .collect()
    }

    /// Fail if a worker died before it was ready (with its log).
    pub(super) fn check_alive(&mut self) -> Result<()> {
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
    pub(super) fn supervise(&mut self) {
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

    pub(super) async fn stop(&mut self) {
        let stops = self
            .procs
            .iter_mut()
            .map(|(_, p)| p.stop(Duration::from_secs(15)));
        futures_util::future::join_all(stops).await;
    }

    /// Merge every side-channel event written so far, from every worker file, into the
    /// ledger (streamed: the files of a million-task run are never held), and return what
    /// else they said.
    pub(super) fn merge_side_channel(&self, ledger: &mut Ledger) -> SideChannelSummary {
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
                let mut crashed: Vec<crate::record::WorkerCrash> = Vec::new();
                for (worker, id) in running {
                    match crashed.iter_mut().find(|c| c.worker == worker) {
                        Some(c) => c.task_ids.push(id.to_string()),
                        None => crashed.push(crate::record::WorkerCrash {
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
pub(super) struct SideChannelSummary {
    /// Execution starts (warm-up included).
    pub(super) executions: u64,
    /// Rejected messages by reason.
    pub(super) rejected: std::collections::BTreeMap<String, u64>,
    /// Messages refused by rule (and expired ones), by reason.
    pub(super) refused: std::collections::BTreeMap<String, u64>,
    /// Tasks a worker was running when it ended.
    pub(super) crashes: Vec<crate::record::WorkerCrash>,
    /// The workers' connection losses, reconnections and failed result writes.
    pub(super) connection_events: Vec<crate::protocol::side_channel::SideEvent>,
    /// Every worker process's clock anchor (one per process that opened a file).
    pub(super) clocks: Vec<crate::clock::ProcessClock>,
}
