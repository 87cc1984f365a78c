//! `hab calibrate`: the raw limits of a stack on this machine, so a run's task path can be
//! read as a fraction of what the pieces can do on their own.
//!
//! The topology's stack comes up exactly as for `hab run` ([`StackHandle::start`]), then four
//! figures are measured one after another, each over a timed window of about
//! `--duration` that starts only after an untimed warm-up (connections, declarations,
//! first allocations and JIT-like effects stay out of the window):
//!
//! 1. **broker** ([`round_trip`]): publish + consume + ack of the Celery messages hab
//!    sends (`hab.trivial`, [`TaskMessage`](crate::protocol::message::TaskMessage) +
//!    [`encode`](crate::protocol::message::encode)), through the URL workers use (HAProxy
//!    when there is one), publisher confirms as the topology says — driven several ways
//!    ([`round_trip::STRATEGIES`]: acks one by one or with `multiple`, publishes handed
//!    over one at a time or pipelined, one or two connections each way), each
//!    [`round_trip::ROUNDS`] times, interleaved, each run on fresh connections with its
//!    own warm-up and a window of `--duration / ROUNDS`. The round trip is the best
//!    window of the best strategy (a ceiling is the best the broker does for that path);
//!    the publish figure is the best window for confirmations. Every strategy, window
//!    and the winner are kept (`broker_strategies`).
//! 2. **redis**: what hab's worker does per result, [`ResultStore::store`](crate::backend::ResultStore::store) (`GET`, then
//!    `MULTI SETEX PUBLISH EXEC`), with [`STORE_IN_FLIGHT`] stores in flight over one
//!    multiplexed connection; and, as the ceiling, plain pipelined `SETEX` + `PUBLISH`.
//! 3. **disk**: files of `--disk-bytes` written as `hab.write_zeros` writes them (1 MiB
//!    chunks, `fdatasync` at the end) into the run directory's `scratch/`, each deleted
//!    right after (also on error).
//! 4. **cpu**: `factorial_swing(100000)` on one core, median milliseconds per call.
//!
//! The run directory `<UTC ts>-<topology>-calibrate/` gets `calibrate.json` (a
//! [`Calibration`], rewritten after each figure so an interrupted calibration keeps what
//! it measured) and `logs/` with the servers' logs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use tokio_util::sync::CancellationToken;

use crate::config::Topology;
use crate::progress::SharedReporter;
pub use crate::record::calibration::{Calibration, Figure, Figures, mb_per_s, rate};
use crate::record::names::calibrate_dir_name;
use crate::record::{Machine, RunStatus};
use crate::stack::{StackDirs, StackHandle};

pub mod end_to_end;
mod figures;
pub mod round_trip;
pub mod settle;
mod table;

use figures::{cpu_figure, disk_figure, flush_results, redis_pipeline_figure, redis_store_figure};
pub use table::render_table;

/// `ResultStore::store` calls in flight at once.
pub const STORE_IN_FLIGHT: usize = 64;
/// `SETEX` + `PUBLISH` pairs per pipeline, and pipelines in flight, for the Redis ceiling.
pub const PIPELINE_DEPTH: usize = 64;
/// Pipelines in flight for the Redis ceiling.
pub const PIPELINES_IN_FLIGHT: usize = 4;
/// The factorial argument of the CPU figure (what the seed workload runs).
pub const FACTORIAL_N: u64 = 100_000;
/// Fewest factorial calls timed, however long they take.
pub const MIN_CPU_CALLS: u64 = 3;
/// Default size of each disk file: 256 MiB.
pub const DEFAULT_DISK_BYTES: u64 = 256 << 20;
/// File name of the result in the run directory.
pub use crate::record::names::CALIBRATE_FILE as FILE_NAME;

/// What to calibrate and where to write it.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// The topology file (recorded in calibrate.json).
    pub topology_path: PathBuf,
    /// Directory in which the run directory is created.
    pub out_dir: PathBuf,
    /// Length of each timed window (the broker's: see [`round_trip::run_windows`]).
    pub duration: Duration,
    /// Size of each file of the disk figure.
    pub disk_bytes: u64,
    /// Calibrate an external stack too (its queue purged, its result database flushed).
    pub allow_flush: bool,
    /// Where progress lines go.
    pub reporter: SharedReporter,
}

impl CalibrateOptions {
    /// The untimed warm-up before each window: a third of the window, between 200 and
    /// 500 ms (connections open and the first round trips done; the settling windows
    /// ([`settle`]) then wait out any start-up drift themselves).
    pub fn warmup(&self) -> Duration {
        (self.duration / 3).clamp(Duration::from_millis(200), Duration::from_millis(500))
    }
}

impl Calibration {
    /// A calibration of `topology` starting now (status `running`, no figures yet).
    pub fn start(opts: &CalibrateOptions, topology: &Topology) -> Result<Self> {
        Ok(Calibration {
            hab_version: env!("CARGO_PKG_VERSION").to_string(),
            status: RunStatus::Running,
            name: topology.name.clone(),
            started_unix_ms: crate::clock::now_unix_us() / 1000,
            topology_file: opts.topology_path.display().to_string(),
            topology: serde_json::to_value(topology)?,
            machine: Machine::current(),
            path: if topology.proxy.is_some() {
                "haproxy"
            } else {
                "direct"
            }
            .into(),
            window_s: opts.duration.as_secs_f64(),
            warmup_s: opts.warmup().as_secs_f64(),
            disk_bytes: opts.disk_bytes,
            ..Calibration::default()
        })
    }
}

/// A finished (or stopped) calibration.
#[derive(Debug)]
pub struct CalibrateOutcome {
    /// The run directory.
    pub dir: PathBuf,
    /// The content of its calibrate.json.
    pub calibration: Calibration,
}

/// The calibration was interrupted (Ctrl-C / SIGTERM).
#[derive(Debug, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// `host:port` of a URL, without scheme, credentials or path (for the `how` lines).
pub fn endpoint(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// A figure counting `count` operations in a window of `secs`, as a rate per second.
pub(crate) fn rate_figure(
    count: u64,
    count_unit: &str,
    secs: f64,
    unit: &str,
    errors: u64,
    how: String,
) -> Figure {
    Figure {
        value: rate(count, secs),
        unit: unit.into(),
        count,
        count_unit: count_unit.into(),
        duration_s: secs,
        errors,
        how,
    }
}

pub(crate) fn write_json(dir: &Path, c: &Calibration) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(c)?;
    bytes.push(b'\n');
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
}

/// Calibrate `topology`: bring its stack up, measure every figure, tear the stack down,
/// write the run directory. An interrupted calibration returns `Ok` with status
/// `interrupted` and the figures measured so far; a failed one returns the error (after
/// writing calibrate.json with it).
pub async fn calibrate(
    opts: &CalibrateOptions,
    topology: &Topology,
    cancel: CancellationToken,
) -> Result<CalibrateOutcome> {
    if opts.duration.is_zero() {
        bail!("the calibration window must be longer than 0 s");
    }
    if opts.disk_bytes == 0 {
        bail!("--disk-bytes must be at least 1");
    }
    refuse_external(topology, &opts.topology_path, opts.allow_flush)?;
    let out_dir = std::path::absolute(&opts.out_dir)
        .with_context(|| format!("bad output directory {}", opts.out_dir.display()))?;
    let dir = out_dir.join(calibrate_dir_name(&topology.name));
    let logs = dir.join("logs");
    let scratch = dir.join("scratch");
    for d in [&dir, &logs, &scratch] {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let mut cal = Calibration::start(opts, topology)?;
    write_json(&dir, &cal)?;
    opts.reporter
        .line(&format!("hab: run directory {}", dir.display()));

    let result = with_stack(opts, topology, &dir, &logs, &scratch, &mut cal, &cancel).await;
    // The stack is down here, whatever happened.
    let _ = std::fs::remove_dir(&scratch);
    cal.finished_unix_ms = Some(crate::clock::now_unix_us() / 1000);
    let interrupted = cancel.is_cancelled()
        || result
            .as_ref()
            .err()
            .is_some_and(|e| e.downcast_ref::<Interrupted>().is_some());
    match result {
        Ok(()) => cal.status = RunStatus::Complete,
        Err(_) if interrupted => {
            cal.status = RunStatus::Interrupted;
            cal.error = Some("interrupted".into());
        }
        Err(ref e) => {
            cal.status = RunStatus::Failed;
            cal.error = Some(format!("{e:#}"));
        }
    }
    write_json(&dir, &cal)?;
    match result {
        Err(e) if !interrupted => Err(e.context(format!("run directory {}", dir.display()))),
        _ => Ok(CalibrateOutcome {
            dir,
            calibration: cal,
        }),
    }
}

/// Calibration empties what it measures (`FLUSHDB` of the result database, a purge of
/// the `celery` queue): on a stack hab does not own only with `--allow-flush`.
pub fn refuse_external(
    topology: &Topology,
    path: &Path,
    allow_flush: bool,
) -> Result<(), crate::config::ConfigError> {
    if topology.is_external() && !allow_flush {
        return Err(crate::config::ConfigError::Invalid {
            kind: "topology",
            path: path.to_path_buf(),
            diagnostics: vec![crate::config::Diagnostic::new(
                "external",
                "calibration flushes the Redis database (FLUSHDB) and purges the celery queue it measures: hab does not do that to a stack it did not start; calibrate a local topology instead, or pass --allow-flush if nothing else uses this stack (e.g. one `hab up` started)",
            )],
        });
    }
    Ok(())
}

/// Bring the stack up as `hab run` does, measure, and stop it (on every path).
async fn with_stack(
    opts: &CalibrateOptions,
    topology: &Topology,
    dir: &Path,
    logs: &Path,
    scratch: &Path,
    cal: &mut Calibration,
    cancel: &CancellationToken,
) -> Result<()> {
    let dirs = StackDirs {
        logs: logs.to_path_buf(),
    };
    opts.reporter.line(&format!(
        "hab: starting {} …",
        StackHandle::describe(topology)
    ));
    let stack = tokio::select! {
        s = StackHandle::start(topology, &dirs) => s?,
        _ = cancel.cancelled() => return Err(Interrupted.into()),
    };
    cal.bringup_ms = Some(stack.bringup_ms());
    cal.versions = stack.versions().clone();
    opts.reporter
        .line(&format!("hab: stack ready in {} ms", stack.bringup_ms()));
    let res = measure(opts, topology, &stack, dir, scratch, cal, cancel).await;
    stack.shutdown().await;
    res
}

/// Sleep for `d`, or fail with [`Interrupted`].
async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> Result<()> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancel.cancelled() => Err(Interrupted.into()),
    }
}

/// Counters read at the start and end of a timed window.
pub(crate) struct Window {
    pub(crate) deltas: Vec<u64>,
    pub(crate) secs: f64,
}

/// Let the load run for the warm-up, then time a window of `duration` and return how much
/// each counter moved in it.
pub(crate) async fn timed_window(
    counters: &[&AtomicU64],
    warmup: Duration,
    duration: Duration,
    cancel: &CancellationToken,
) -> Result<Window> {
    sleep_or_cancel(warmup, cancel).await?;
    let before: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Acquire)).collect();
    let t0 = Instant::now();
    sleep_or_cancel(duration, cancel).await?;
    let after: Vec<u64> = counters.iter().map(|c| c.load(Ordering::Acquire)).collect();
    let secs = t0.elapsed().as_secs_f64();
    Ok(Window {
        deltas: after.iter().zip(&before).map(|(a, b)| a - b).collect(),
        secs,
    })
}

/// Measure every figure on a stack that is up, writing `calibrate.json` into `dir` after
/// each one. Used by `hab calibrate` and by `hab run --calibrate` (before its workers
/// start: the broker figure consumes the `celery` queue itself). Result keys it wrote are
/// deleted again.
pub async fn measure(
    opts: &CalibrateOptions,
    topology: &Topology,
    stack: &StackHandle,
    dir: &Path,
    scratch: &Path,
    cal: &mut Calibration,
    cancel: &CancellationToken,
) -> Result<()> {
    let broker_url = stack.broker_url();
    let backend_url = stack.backend_url();

    opts.reporter.line(&format!(
        "hab: broker round trip ({} strategies × {} windows) …",
        round_trip::STRATEGIES.len(),
        round_trip::ROUNDS
    ));
    let (round_trip, publish) =
        round_trip::measure(opts, topology, stack, &broker_url, dir, cal, cancel)
            .await
            .context("broker round trip")?;
    cal.figures.broker_round_trip = Some(round_trip);
    cal.figures.broker_publish = Some(publish);
    write_json(dir, cal)?;

    opts.reporter.line(&format!(
        "hab: end-to-end ceiling ({} strategies × {} windows, consumers in their own processes) …",
        end_to_end::STRATEGIES.len(),
        end_to_end::ROUNDS
    ));
    let e2e = end_to_end::measure(opts, topology, stack, dir, cal, cancel)
        .await
        .context("end-to-end ceiling")?;
    cal.figures.end_to_end = Some(e2e);
    write_json(dir, cal)?;

    opts.reporter.line("hab: redis result writes …");
    let store = redis_store_figure(opts, topology, &backend_url, cancel)
        .await
        .context("redis result store")?;
    cal.figures.redis_result_store = Some(store);
    write_json(dir, cal)?;
    flush_results(&backend_url).await;
    let ceiling = redis_pipeline_figure(opts, topology, &backend_url, cancel)
        .await
        .context("redis SETEX+PUBLISH")?;
    cal.figures.redis_setex_publish = Some(ceiling);
    write_json(dir, cal)?;
    flush_results(&backend_url).await;

    opts.reporter.line("hab: disk …");
    let disk = disk_figure(opts, scratch, cancel).await.context("disk")?;
    cal.figures.disk_write = Some(disk);
    write_json(dir, cal)?;

    opts.reporter.line("hab: cpu …");
    let cpu = cpu_figure(opts, cancel).await.context("cpu")?;
    cal.figures.cpu_factorial = Some(cpu);
    write_json(dir, cal)?;
    Ok(())
}

#[cfg(test)]
mod tests;
