//! One run: stack up → workers → warm-up → workloads (publish, drain) → results.
//!
//! Every workload goes through the same path: the generator publishes each task at its
//! intended start (burst or constant rate), a watcher collects results from Redis pub/sub
//! (with reconciliation reads for anything outstanding), the workers report executions
//! through the side channel, and after each workload every output file is rewritten, so an
//! interrupted run keeps what it measured.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::config::{Topology, WorkloadPlan};
use crate::credentials;
use crate::inject::plan as external;
use crate::load::shard::FAULT_SHARD;
use crate::load::shard::Shard;
use crate::progress::SharedReporter;
use crate::record::RunReport;
use crate::record::names::shard_dir_name;

use analyse::write_outputs;
pub use analyse::{SCHEDULE_LAG_WARN_US, schedule_lag_warning, timeline};
pub use barrier::{DEFAULT_BARRIER_TIMEOUT, StartOptions};
pub use driver::task_call;
use lifecycle::RunState;
pub use lifecycle::SharedStack;
use live::Live;

mod analyse;
mod barrier;
mod cpu;
mod deadline;
mod driver;
mod lifecycle;
mod live;
#[cfg(test)]
mod tests;
mod workers;
mod workloads;

/// What to run and where to write it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The topology file (passed to the worker processes too): a path, or
    /// `builtin:NAME.toml` for a built-in ([`crate::config::builtin::resolve`]).
    pub topology_path: PathBuf,
    /// The workload file, as `topology_path`.
    pub workload_path: PathBuf,
    /// Directory in which the run directory is created (`results/` by default).
    pub out_dir: PathBuf,
    /// Show progress bars (stderr is a terminal).
    pub progress: bool,
    /// Measure the stack's raw limits (`hab calibrate`'s figures, windows of this length)
    /// after bring-up and before the workers start; kept in run.json.
    pub calibrate: Option<Duration>,
    /// Let `calibrate` purge the queue and flush the result database of an external
    /// stack (refused without it).
    pub allow_flush: bool,
    /// Run the workload's faults on an external stack (their commands act on servers
    /// hab does not own); without it such a run is refused.
    pub allow_faults: bool,
    /// Run one generator shard of N (`--shard I/N`): 1/N of every workload, task ids that
    /// name the shard, the plan's faults applied by shard 1 only ([`crate::load::shard`]).
    pub shard: Option<Shard>,
    /// Start with the other shards (`--start-at`, `--start-in`): the first workload at
    /// the instant, later ones after a barrier on the backend ([`StartOptions`]). Only with
    /// `shard`.
    pub start: Option<StartOptions>,
    /// Where progress lines go (`hab: stack ready in … ms`, warnings).
    pub reporter: SharedReporter,
}

/// A finished (or interrupted) run.
#[derive(Debug)]
pub struct RunOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// The content of its run.json.
    pub report: RunReport,
}

/// A stack the caller brought up and keeps (`hab sweep`: one stack for many cells): the
/// run uses it as it finds it and leaves it running.
#[derive(Debug, Clone)]
pub struct Borrowed {
    /// The stack.
    pub stack: SharedStack,
    /// What run.json says of how it was configured (`sweep_cell`).
    pub cell: Option<crate::record::sweep::CellSetting>,
}

/// Run every workload of `plan` on `topology`, writing the run directory.
pub async fn run(
    opts: &RunOptions,
    topology: &Topology,
    plan: &WorkloadPlan,
    cancel: CancellationToken,
) -> Result<RunOutcome> {
    run_with(opts, topology, plan, None, cancel).await
}

/// [`run`] on a stack that is already up (`borrowed`), or on one of its own (`None`).
/// A borrowed stack is neither brought up nor taken down: `topology` must be what it
/// runs (the caller reconfigures it first), and run.json has no bring-up figures.
pub async fn run_with(
    opts: &RunOptions,
    topology: &Topology,
    plan: &WorkloadPlan,
    borrowed: Option<Borrowed>,
    cancel: CancellationToken,
) -> Result<RunOutcome> {
    // Bad input is refused before any directory exists.
    refuse_bad_input(opts, topology, plan)?;
    let dirs = RunDirs::create(opts, topology, plan)?;
    let mut report = analyse::first_report(opts, topology, plan)?;
    report.sweep_cell = borrowed.as_ref().and_then(|b| b.cell.clone());
    if let Some(note) = shard_note(opts.shard, plan) {
        opts.reporter.line(&note);
    }
    let live = Arc::new(Live::new(plan.workloads.len()));
    write_outputs(&dirs.root, &report, &live)?;
    opts.reporter
        .line(&format!("hab: run directory {}", dirs.root.display()));

    let mut state = RunState::new(dirs, report, live.clone(), opts);
    let mut result = state
        .execute(opts, topology, plan, borrowed.map(|b| b.stack), &cancel)
        .await;
    // A failed fault command stopped the run: that is its error, not an interruption.
    let fatal = live.fatal();
    if let Some(why) = &fatal {
        result = Err(anyhow::anyhow!("{why}"));
    }
    // Whatever happened: stop the workers, merge their side channel, classify, write.
    let interrupted = cancel.is_cancelled() && fatal.is_none();
    state.finish(topology, plan, &result, interrupted).await;
    // The stack (if any) was dropped inside execute(): no server outlives this point.
    state.dirs.remove_own_scratch(plan);
    let dir = state.dirs.root.clone();
    match result {
        Ok(()) => Ok(RunOutcome {
            dir,
            report: state.report,
        }),
        Err(e) => Err(e.context(format!("run directory {}", dir.display()))),
    }
}

/// What must be refused before anything starts: an external stack without its commands,
/// faults not allowed, or credentials missing (which are installed here), and
/// `--calibrate` on an external stack.
fn refuse_bad_input(opts: &RunOptions, topology: &Topology, plan: &WorkloadPlan) -> Result<()> {
    let credentials = external::prepare(
        &opts.topology_path,
        topology,
        &opts.workload_path,
        plan,
        opts.allow_faults,
    )?;
    credentials::install(credentials);
    if opts.calibrate.is_some() {
        crate::cmd::calibrate::refuse_external(topology, &opts.topology_path, opts.allow_flush)?;
    }
    Ok(())
}

/// A shard that drives load only says so when the plan has faults.
fn shard_note(shard: Option<Shard>, plan: &WorkloadPlan) -> Option<String> {
    let s = shard?;
    (!s.applies_faults() && plan.workloads.iter().any(|w| !w.faults.is_empty())).then(|| {
        format!(
            "hab: shard {s}: the plan's faults are applied by shard {} only; this shard drives load",
            FAULT_SHARD
        )
    })
}

/// The run directory and the directories inside it (all absolute: servers and workers
/// run in directories of their own and read their configs from here).
#[derive(Debug, Clone)]
pub(super) struct RunDirs {
    /// The run directory.
    pub(super) root: PathBuf,
    /// Server and worker logs.
    pub(super) logs: PathBuf,
    /// The workers' side channel, one file per worker process.
    pub(super) executions: PathBuf,
    /// The workers' scratch directory: the only place `hab.write_zeros` creates files
    /// (the workload's `scratch_dir`, or `scratch/` in the run directory).
    pub(super) scratch: PathBuf,
}

impl RunDirs {
    fn create(opts: &RunOptions, topology: &Topology, plan: &WorkloadPlan) -> Result<Self> {
        let out_dir = std::path::absolute(&opts.out_dir)
            .with_context(|| format!("bad output directory {}", opts.out_dir.display()))?;
        let root = out_dir.join(shard_dir_name(&topology.name, &plan.name, opts.shard));
        let logs = root.join("logs");
        let executions = root.join("executions");
        for d in [&root, &logs, &executions] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        let scratch = match &plan.scratch_dir {
            Some(d) => d.clone(),
            None => root.join("scratch"),
        };
        std::fs::create_dir_all(&scratch)
            .with_context(|| format!("cannot create scratch directory {}", scratch.display()))?;
        let scratch = std::path::absolute(&scratch)
            .with_context(|| format!("bad scratch directory {}", scratch.display()))?;
        Ok(Self {
            root,
            logs,
            executions,
            scratch,
        })
    }

    /// Only the run's own scratch directory is removed (if empty), never a user's.
    fn remove_own_scratch(&self, plan: &WorkloadPlan) {
        if plan.scratch_dir.is_none() {
            let _ = std::fs::remove_dir(&self.scratch);
        }
    }
}
