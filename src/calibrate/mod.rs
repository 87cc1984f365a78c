//! `hab calibrate`: the raw limits of a stack on this machine, so a run's task path can be
//! read as a fraction of what the pieces can do on their own.
//!
//! The topology's stack comes up exactly as for `hab run` ([`Stack::start`]), then four
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
//! 2. **redis**: what hab's worker does per result, [`ResultStore::store`] (`GET`, then
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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backend::ResultStore;
use crate::config::Topology;
use crate::metrics::stats::median;
use crate::protocol::result::{ResultRecord, result_key};
pub use crate::record::calibration::{Calibration, Figure, Figures, mb_per_s, rate};
use crate::record::names::calibrate_dir_name;
use crate::record::{Machine, RunStatus};
use crate::stack::{StackDirs, StackHandle};

pub mod round_trip;

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
}

impl CalibrateOptions {
    /// The untimed warm-up before each window: a third of the window, between 200 ms
    /// and 1 s.
    pub fn warmup(&self) -> Duration {
        (self.duration / 3).clamp(Duration::from_millis(200), Duration::from_secs(1))
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

fn label(key: &str) -> &'static str {
    match key {
        "broker_round_trip" => "broker round trip",
        "broker_publish" => "broker publish",
        "redis_result_store" => "redis result store",
        "redis_setex_publish" => "redis SETEX+PUBLISH",
        "disk_write" => "disk write+fdatasync",
        "cpu_factorial" => "cpu factorial(100000)",
        _ => "?",
    }
}

/// A figure's value with sensible precision.
fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The terminal table: one line per figure.
pub fn render_table(c: &Calibration) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "calibration of {} ({}; {:.1} s windows after {:.1} s warm-up)",
        c.name,
        if c.path.is_empty() { "-" } else { &c.path },
        c.window_s,
        c.warmup_s
    );
    let _ = writeln!(
        s,
        "{:<24} {:>12} {:<11} {:>12} {:<9} {:>7}",
        "figure", "value", "unit", "count", "", "errors"
    );
    let mut any = false;
    for (key, f) in c.figures.iter() {
        any = true;
        let _ = writeln!(
            s,
            "{:<24} {:>12} {:<11} {:>12} {:<9} {:>7}",
            label(key),
            format_value(f.value),
            f.unit,
            f.count,
            f.count_unit,
            f.errors
        );
    }
    if !any {
        let _ = writeln!(s, "(nothing measured)");
    }
    if !c.broker_strategies.is_empty() {
        let _ = writeln!(
            s,
            "broker round trip by strategy (msg/s per {:.2} s window after {:.2} s warm-up; * = the figure above):",
            c.broker_window_s, c.broker_warmup_s
        );
        for st in &c.broker_strategies {
            let windows: Vec<String> = st
                .windows
                .iter()
                .map(|w| format_value(w.round_trip()))
                .collect();
            let _ = writeln!(
                s,
                "{} {:<22} {:>12}   windows: {}{}",
                if st.chosen { "*" } else { " " },
                st.name,
                format_value(st.msg_per_s),
                if windows.is_empty() {
                    "-".to_string()
                } else {
                    windows.join(" ")
                },
                st.error
                    .as_ref()
                    .map(|e| format!("; failed: {e}"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(e) = &c.error {
        let _ = writeln!(s, "stopped: {e}");
    }
    s.truncate(s.trim_end().len());
    s
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
    refuse_external(topology, &opts.topology_path)?;
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
    eprintln!("hab: run directory {}", dir.display());

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
/// the `celery` queue): never on a stack hab does not own.
pub fn refuse_external(topology: &Topology, path: &Path) -> Result<(), crate::config::ConfigError> {
    if topology.is_external() {
        return Err(crate::config::ConfigError::Invalid {
            kind: "topology",
            path: path.to_path_buf(),
            diagnostics: vec![crate::config::Diagnostic::new(
                "external",
                "calibration flushes the Redis database (FLUSHDB) and purges the celery queue it measures: hab does not do that to a stack it did not start; calibrate a local topology instead",
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
    eprintln!("hab: starting {} …", StackHandle::describe(topology));
    let stack = tokio::select! {
        s = StackHandle::start(topology, &dirs) => s?,
        _ = cancel.cancelled() => return Err(Interrupted.into()),
    };
    cal.bringup_ms = Some(stack.bringup_ms());
    cal.versions = stack.versions().clone();
    eprintln!("hab: stack ready in {} ms", stack.bringup_ms());
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

    eprintln!(
        "hab: broker round trip ({} strategies × {} windows) …",
        round_trip::STRATEGIES.len(),
        round_trip::ROUNDS
    );
    let (round_trip, publish) =
        round_trip::measure(opts, topology, stack, &broker_url, dir, cal, cancel)
            .await
            .context("broker round trip")?;
    cal.figures.broker_round_trip = Some(round_trip);
    cal.figures.broker_publish = Some(publish);
    write_json(dir, cal)?;

    eprintln!("hab: redis result writes …");
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

    eprintln!("hab: disk …");
    let disk = disk_figure(opts, scratch, cancel).await.context("disk")?;
    cal.figures.disk_write = Some(disk);
    write_json(dir, cal)?;

    eprintln!("hab: cpu …");
    let cpu = cpu_figure(opts, cancel).await.context("cpu")?;
    cal.figures.cpu_factorial = Some(cpu);
    write_json(dir, cal)?;
    Ok(())
}

/// Drop the result keys a Redis figure wrote (untimed), so the next figure starts on an
/// empty backend and a long window does not leave it holding millions of keys.
async fn flush_results(url: &str) {
    let flushed = async {
        let mut conn = crate::backend::reader(url).await?;
        redis::cmd("FLUSHDB")
            .query_async::<()>(&mut conn)
            .await
            .context("FLUSHDB")
    };
    if let Err(e) = flushed.await {
        tracing::warn!("could not flush the calibration's result keys: {e:#}");
    }
}

/// A success record as hab's worker stores for `hab.trivial`.
fn trivial_record() -> ResultRecord {
    ResultRecord::success(&Uuid::new_v4().to_string(), crate::tasks::trivial::run())
}

async fn redis_store_figure(
    opts: &CalibrateOptions,
    topology: &Topology,
    url: &str,
    cancel: &CancellationToken,
) -> Result<Figure> {
    let store = ResultStore::connect(url, topology.backend.result_ttl).await?;
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = cancel.child_token();
    let mut tasks = Vec::new();
    for _ in 0..STORE_IN_FLIGHT {
        let (store, done, errors, stop) =
            (store.clone(), done.clone(), errors.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                let record = trivial_record();
                match store.store(&record).await {
                    Ok(_) => done.fetch_add(1, Ordering::AcqRel),
                    Err(e) => {
                        tracing::debug!("store failed: {e:#}");
                        errors.fetch_add(1, Ordering::AcqRel)
                    }
                };
            }
        }));
    }
    let window = timed_window(&[&done, &errors], opts.warmup(), opts.duration, cancel).await;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let window = window?;
    Ok(rate_figure(
        window.deltas[0],
        "results",
        window.secs,
        "results/s",
        window.deltas[1],
        format!(
            "ResultStore::store (GET, MULTI SETEX PUBLISH EXEC) of hab.trivial records, \
             {STORE_IN_FLIGHT} in flight on one multiplexed connection, via {}",
            endpoint(url)
        ),
    ))
}

async fn redis_pipeline_figure(
    opts: &CalibrateOptions,
    topology: &Topology,
    url: &str,
    cancel: &CancellationToken,
) -> Result<Figure> {
    let conn = crate::backend::reader(url).await?;
    let ttl = topology.backend.result_ttl.as_secs().max(1);
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = cancel.child_token();
    let mut tasks = Vec::new();
    for _ in 0..PIPELINES_IN_FLIGHT {
        let (mut conn, done, errors, stop) =
            (conn.clone(), done.clone(), errors.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.is_cancelled() {
                let mut pipe = redis::pipe();
                for _ in 0..PIPELINE_DEPTH {
                    let record = trivial_record();
                    let key = result_key(&record.task_id);
                    let json = record.to_json();
                    pipe.cmd("SETEX")
                        .arg(&key)
                        .arg(ttl)
                        .arg(&json)
                        .ignore()
                        .cmd("PUBLISH")
                        .arg(&key)
                        .arg(&json)
                        .ignore();
                }
                match pipe.query_async::<()>(&mut conn).await {
                    Ok(()) => done.fetch_add(PIPELINE_DEPTH as u64, Ordering::AcqRel),
                    Err(e) => {
                        tracing::debug!("pipeline failed: {e}");
                        errors.fetch_add(PIPELINE_DEPTH as u64, Ordering::AcqRel)
                    }
                };
            }
        }));
    }
    let window = timed_window(&[&done, &errors], opts.warmup(), opts.duration, cancel).await;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let window = window?;
    Ok(rate_figure(
        window.deltas[0],
        "results",
        window.secs,
        "results/s",
        window.deltas[1],
        format!(
            "SETEX + PUBLISH pairs, {PIPELINE_DEPTH} per pipeline (not MULTI), \
             {PIPELINES_IN_FLIGHT} pipelines in flight, via {}",
            endpoint(url)
        ),
    ))
}

async fn disk_figure(
    opts: &CalibrateOptions,
    scratch: &Path,
    cancel: &CancellationToken,
) -> Result<Figure> {
    let scratch = scratch.to_path_buf();
    let (bytes, size, duration) = (opts.disk_bytes, opts.disk_bytes, opts.duration);
    let warmup_bytes = size.min(8 << 20);
    let cancel = cancel.clone();
    let (written, secs, files) = tokio::task::spawn_blocking(move || -> Result<_> {
        let path = scratch.join(format!("hab-calibrate-{}.bin", Uuid::new_v4()));
        // Warm-up: a small file through the same path, untimed.
        crate::tasks::write_zeros::write_zeros(&path, warmup_bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        let (mut written, mut took, mut files) = (0u64, Duration::ZERO, 0u64);
        // Whole files until the window is used up (at least one).
        while files == 0 || took < duration {
            if cancel.is_cancelled() {
                return Err(Interrupted.into());
            }
            let (n, t) = crate::tasks::write_zeros::write_zeros_timed(&path, bytes)
                .with_context(|| format!("writing {}", path.display()))?;
            written += n;
            took += t;
            files += 1;
        }
        Ok((written, took.as_secs_f64(), files))
    })
    .await
    .context("disk task")??;
    Ok(Figure {
        value: mb_per_s(written, secs),
        unit: "MB/s".into(),
        count: written,
        count_unit: "bytes".into(),
        duration_s: secs,
        errors: 0,
        how: format!(
            "{files} file(s) of {size} bytes, 1 MiB writes then fdatasync (as hab.write_zeros), \
             each deleted after; MB = 10^6 bytes"
        ),
    })
}

async fn cpu_figure(opts: &CalibrateOptions, cancel: &CancellationToken) -> Result<Figure> {
    let duration = opts.duration;
    let cancel = cancel.clone();
    let (times_ms, total) = tokio::task::spawn_blocking(move || -> Result<_> {
        // Warm-up: one untimed call.
        std::hint::black_box(crate::tasks::factorial::factorial_swing(FACTORIAL_N));
        let mut times = Vec::new();
        let started = Instant::now();
        while (times.len() as u64) < MIN_CPU_CALLS || started.elapsed() < duration {
            if cancel.is_cancelled() {
                return Err(Interrupted.into());
            }
            let t = Instant::now();
            std::hint::black_box(crate::tasks::factorial::factorial_swing(
                std::hint::black_box(FACTORIAL_N),
            ));
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok((times, started.elapsed().as_secs_f64()))
    })
    .await
    .context("cpu task")??;
    Ok(Figure {
        value: median(times_ms.iter().copied()).unwrap_or(0.0),
        unit: "ms/call".into(),
        count: times_ms.len() as u64,
        count_unit: "calls".into(),
        duration_s: total,
        errors: 0,
        how: format!(
            "factorial_swing({FACTORIAL_N}) on one thread, median of the calls (min {:.2} ms, \
             max {:.2} ms)",
            times_ms.iter().copied().fold(f64::INFINITY, f64::min),
            times_ms.iter().copied().fold(0.0, f64::max)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn rates() {
        assert_eq!(rate(300, 3.0), 100.0);
        assert_eq!(rate(5, 0.0), 0.0);
        assert_eq!(mb_per_s(256 << 20, 2.0), 134.217728);
    }

    #[test]
    fn endpoints_lose_scheme_credentials_and_path() {
        assert_eq!(
            endpoint("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "127.0.0.1:5672"
        );
        assert_eq!(
            endpoint("amqp://127.0.0.1:5672/%2f?heartbeat=5"),
            "127.0.0.1:5672"
        );
        assert_eq!(endpoint("redis://127.0.0.1:6379"), "127.0.0.1:6379");
        assert_eq!(endpoint("redis://127.0.0.1:6379/0"), "127.0.0.1:6379");
        assert_eq!(endpoint("127.0.0.1:1"), "127.0.0.1:1");
    }

    #[test]
    fn warmup_is_a_third_of_the_window_bounded() {
        let o = |d| CalibrateOptions {
            topology_path: "t.toml".into(),
            out_dir: "results".into(),
            duration: d,
            disk_bytes: 1,
        };
        assert_eq!(o(Duration::from_secs(3)).warmup(), Duration::from_secs(1));
        assert_eq!(o(Duration::from_secs(30)).warmup(), Duration::from_secs(1));
        assert_eq!(
            o(Duration::from_millis(100)).warmup(),
            Duration::from_millis(200)
        );
        assert_eq!(
            o(Duration::from_millis(1500)).warmup(),
            Duration::from_millis(500)
        );
    }

    fn sample() -> Calibration {
        let f = |v: f64, unit: &str| Figure {
            value: v,
            unit: unit.into(),
            count: 1234,
            count_unit: "messages".into(),
            duration_s: 3.0,
            errors: 0,
            how: "x".into(),
        };
        Calibration {
            hab_version: "0.1.0".into(),
            name: "standalone".into(),
            path: "direct".into(),
            window_s: 3.0,
            warmup_s: 1.0,
            disk_bytes: 1 << 20,
            versions: BTreeMap::from([("redis".into(), "7.0.15".into())]),
            topology: serde_json::json!({"name": "standalone"}),
            figures: Figures {
                broker_round_trip: Some(f(12345.6, "msg/s")),
                broker_publish: Some(f(13000.0, "confirms/s")),
                redis_result_store: Some(f(20000.0, "results/s")),
                redis_setex_publish: Some(f(150000.0, "results/s")),
                disk_write: Some(f(512.25, "MB/s")),
                cpu_factorial: Some(f(21.734, "ms/call")),
            },
            ..Calibration::default()
        }
    }

    #[test]
    fn json_round_trip_and_defaults() {
        let mut c = sample();
        let text = serde_json::to_string_pretty(&c).unwrap();
        let back: Calibration = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c);
        // With the broker strategies (older files have none: they parse as empty).
        c.broker_strategies = vec![round_trip::StrategyFigure::new(&round_trip::STRATEGIES[1])];
        c.broker_strategies[0].record(round_trip::BrokerWindow {
            acked: 5,
            confirmed: 6,
            nacked: 0,
            secs: 0.5,
        });
        c.broker_strategies[0].chosen = true;
        let with = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Calibration>(&with).unwrap(), c);
        assert!(with.contains(r#""windows":[{"acked":5,"confirmed":6,"nacked":0,"secs":0.5}]"#));
        // Embeddable: an empty object (or one from an older hab) still parses.
        let empty: Calibration = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, Calibration::default());
        let partial: Calibration = serde_json::from_str(
            r#"{"name":"x","figures":{"disk_write":{"value":1.5,"unit":"MB/s"}},"future":1}"#,
        )
        .unwrap();
        assert_eq!(partial.figures.disk_write.as_ref().unwrap().value, 1.5);
        assert!(partial.broker_strategies.is_empty());
        assert!(partial.figures.broker_round_trip.is_none());
        assert_eq!(partial.figures.iter().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["figures"]["cpu_factorial"]["unit"], "ms/call");
        assert_eq!(v["status"], "complete");
    }

    #[test]
    fn table_lists_every_figure() {
        let t = render_table(&sample());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 8, "{t}");
        assert!(lines[0].contains("standalone") && lines[0].contains("direct"));
        assert!(t.contains("broker round trip"));
        assert!(t.contains("12346"), "{t}");
        assert!(t.contains("512"), "{t}");
        assert!(t.contains("21.7 "), "{t}");
        assert!(t.contains("cpu factorial(100000)"));
        // The strategies tried, each with its windows, the winner starred.
        let mut c = sample();
        c.broker_window_s = 1.0;
        c.broker_warmup_s = 0.33;
        c.broker_strategies = round_trip::STRATEGIES[..2]
            .iter()
            .map(round_trip::StrategyFigure::new)
            .collect();
        for (i, acked) in [(0, 9_000), (0, 9_500), (1, 12_000)] {
            c.broker_strategies[i].record(round_trip::BrokerWindow {
                acked,
                secs: 1.0,
                ..Default::default()
            });
        }
        c.broker_strategies[1].chosen = true;
        let t = render_table(&c);
        assert!(t.contains("per 1.00 s window after 0.33 s warm-up"), "{t}");
        assert!(t.contains("  ack_each"), "{t}");
        assert!(t.contains("9500   windows: 9000 9500"), "{t}");
        assert!(t.contains("* ack_multiple"), "{t}");
        let mut c = sample();
        c.figures = Figures::default();
        c.error = Some("interrupted".into());
        let t = render_table(&c);
        assert!(t.contains("(nothing measured)") && t.contains("stopped: interrupted"));
    }
}
