//! The figures other than the broker's ([`super::round_trip`]): Redis result writes as
//! hab's worker does them and their pipelined ceiling, disk writes as `hab.write_zeros`
//! does them, and the CPU time of one factorial; each over a timed window after a warm-up.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::settle::{LAST, Settle, min_window, settled, settling_window};
use super::{
    CalibrateOptions, FACTORIAL_N, Figure, Interrupted, MIN_CPU_CALLS, PIPELINE_DEPTH,
    PIPELINES_IN_FLIGHT, STORE_IN_FLIGHT, endpoint, rate_figure,
};
use crate::backend::ResultStore;
use crate::config::Topology;
use crate::metrics::stats::median;
use crate::protocol::result::{ResultRecord, result_key};
use crate::record::calibration::mb_per_s;

/// Drop the result keys a Redis figure wrote (untimed), so the next figure starts on an
/// empty backend and a long window does not leave it holding millions of keys.
pub(super) async fn flush_results(url: &str) {
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

pub(super) async fn redis_store_figure(
    opts: &CalibrateOptions,
    topology: &Topology,
    url: &str,
    cancel: &CancellationToken,
) -> Result<Figure> {
    let store = ResultStore::connect(url, topology.backend.result_ttl).await?;
    let how = format!(
        "ResultStore::store (GET, MULTI SETEX PUBLISH EXEC) of hab.trivial records, \
         {STORE_IN_FLIGHT} in flight on one multiplexed connection, via {}",
        endpoint(url)
    );
    results_window(opts, cancel, STORE_IN_FLIGHT, how, |stop, done, errors| {
        let store = store.clone();
        async move {
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
        }
    })
    .await
}

pub(super) async fn redis_pipeline_figure(
    opts: &CalibrateOptions,
    topology: &Topology,
    url: &str,
    cancel: &CancellationToken,
) -> Result<Figure> {
    let conn = crate::backend::reader(url).await?;
    let ttl = topology.backend.result_ttl.as_secs().max(1);
    let how = format!(
        "SETEX + PUBLISH pairs, {PIPELINE_DEPTH} per pipeline (not MULTI), \
         {PIPELINES_IN_FLIGHT} pipelines in flight, via {}",
        endpoint(url)
    );
    results_window(
        opts,
        cancel,
        PIPELINES_IN_FLIGHT,
        how,
        |stop, done, errors| {
            let mut conn = conn.clone();
            async move {
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
            }
        },
    )
    .await
}

/// Run `in_flight` writers of results (each made by `writer` from the stop token and the
/// counters of results written and failed) through the warm-up and one timed window; the
/// rate of results written in the window, with `how` they were written.
async fn results_window<F, Fut>(
    opts: &CalibrateOptions,
    cancel: &CancellationToken,
    in_flight: usize,
    how: String,
    writer: F,
) -> Result<Figure>
where
    F: Fn(CancellationToken, Arc<AtomicU64>, Arc<AtomicU64>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = cancel.child_token();
    let tasks: Vec<_> = (0..in_flight)
        .map(|_| tokio::spawn(writer(stop.clone(), done.clone(), errors.clone())))
        .collect();
    let window = settling_window(&[&done, &errors], opts.warmup(), opts.duration, cancel).await;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    let (window, settle) = window?;
    Ok(rate_figure(
        window.deltas[0],
        "results",
        window.secs,
        "results/s",
        window.deltas[1],
        format!("{how}{}", settle.describe()),
    ))
}

pub(super) async fn disk_figure(
    opts: &CalibrateOptions,
    scratch: &Path,
    cancel: &CancellationToken,
) -> Result<Figure> {
    let scratch = scratch.to_path_buf();
    let (bytes, size, duration) = (opts.disk_bytes, opts.disk_bytes, opts.duration);
    let warmup_bytes = size.min(8 << 20);
    let cancel = cancel.clone();
    let (written, secs, files, settle) = tokio::task::spawn_blocking(move || -> Result<_> {
        let path = scratch.join(format!("hab-calibrate-{}.bin", Uuid::new_v4()));
        // Warm-up: a small file through the same path, untimed.
        crate::tasks::write_zeros::write_zeros(&path, warmup_bytes)
            .with_context(|| format!("writing {}", path.display()))?;
        let (mut written, mut took, mut files) = (0u64, Duration::ZERO, 0u64);
        let mut rates = Vec::new();
        // Whole files until the window is used up (at least one), or until the rates of
        // the last files agree once the shortest window is past.
        let early = loop {
            if files > 0 && took >= duration {
                break false;
            }
            if took >= min_window(duration) && settled(&rates, 3, 0.10) {
                break true;
            }
            if cancel.is_cancelled() {
                return Err(Interrupted.into());
            }
            let (n, t) = crate::tasks::write_zeros::write_zeros_timed(&path, bytes)
                .with_context(|| format!("writing {}", path.display()))?;
            written += n;
            took += t;
            files += 1;
            rates.push(n as f64 / t.as_secs_f64().max(1e-9));
        };
        let settle = Settle {
            secs: took.as_secs_f64(),
            of: duration,
            early,
            rule: "the rates of the last 3 files within ±10 % of their mean",
        };
        Ok((written, took.as_secs_f64(), files, settle))
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
             each deleted after; MB = 10^6 bytes{}",
            settle.describe()
        ),
    })
}

pub(super) async fn cpu_figure(
    opts: &CalibrateOptions,
    cancel: &CancellationToken,
) -> Result<Figure> {
    let duration = opts.duration;
    let cancel = cancel.clone();
    let (times_ms, total, settle) = tokio::task::spawn_blocking(move || -> Result<_> {
        // Warm-up: one untimed call.
        std::hint::black_box(crate::tasks::factorial::factorial_swing(FACTORIAL_N));
        let mut times: Vec<f64> = Vec::new();
        let started = Instant::now();
        let mut early = false;
        while (times.len() as u64) < MIN_CPU_CALLS || started.elapsed() < duration {
            // Settled: past the shortest window, with enough calls, the median of all the
            // calls within 2 % of the median of their first half.
            if started.elapsed() >= min_window(duration) && times.len() >= 5 * LAST {
                let all = median(times.iter().copied()).unwrap_or(0.0);
                let half = median(times[..times.len() / 2].iter().copied()).unwrap_or(0.0);
                if all > 0.0 && (all - half).abs() <= 0.02 * all {
                    early = true;
                    break;
                }
            }
            if cancel.is_cancelled() {
                return Err(Interrupted.into());
            }
            let t = Instant::now();
            std::hint::black_box(crate::tasks::factorial::factorial_swing(
                std::hint::black_box(FACTORIAL_N),
            ));
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let secs = started.elapsed().as_secs_f64();
        let settle = Settle {
            secs,
            of: duration,
            early,
            rule: "at least 20 calls, the median of all within 2 % of the median of the first half",
        };
        Ok((times, secs, settle))
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
             max {:.2} ms){}",
            times_ms.iter().copied().fold(f64::INFINITY, f64::min),
            times_ms.iter().copied().fold(0.0, f64::max),
            settle.describe()
        ),
    })
}
