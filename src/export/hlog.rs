//! `<topology>.hlog`: an HdrHistogram interval log — one compressed V2 histogram of the
//! end-to-end latency (µs) per second of completions and per workload, tagged with the
//! workload's name — readable by HdrHistogram's standard log readers
//! (`HistogramLogProcessor`, the plotter, hdrhistogram's `IntervalLogIterator`).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::RunData;

/// The interval log of a run.
pub fn hlog_bytes(data: RunData<'_>) -> Result<Vec<u8>> {
    let mut first_second = i64::MAX;
    for (i, _) in data.report.workloads.iter().enumerate() {
        if let Some(t) = data
            .ledger
            .tasks(i)
            .iter()
            .min_by_key(|t| t.intended_unix_us)
        {
            first_second = first_second.min(t.intended_unix_us.div_euclid(1_000_000));
        }
    }
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment("[Histogram log format version 1.3]")
        .add_comment(&format!(
            "hab {} run {}: end-to-end latency in microseconds, one interval per second and workload (tag)",
            data.report.hab_version, data.report.name
        ))
        .with_max_value_divisor(1000.0);
    if first_second != i64::MAX {
        builder.with_start_time(UNIX_EPOCH + Duration::from_secs(first_second.max(0) as u64));
    }
    let start: SystemTime = UNIX_EPOCH + Duration::from_secs(first_second.max(0) as u64);
    let mut writer = builder.begin_log_with(&mut out, &mut serializer)?;
    let mut failed = None;
    crate::metrics::timeline::per_second_latency(
        data.ledger,
        data.report.workloads.len(),
        true,
        |second, i, h| {
            if failed.is_some() || h.is_empty() {
                return;
            }
            let name = &data.report.workloads[i].name;
            let Some(tag) = Tag::new(name) else {
                failed = Some(anyhow!("workload name {name:?} is not a valid log tag"));
                return;
            };
            let offset = UNIX_EPOCH + Duration::from_secs(second.max(0) as u64);
            let since_start = offset.duration_since(start).unwrap_or_default();
            if let Err(e) =
                writer.write_histogram(h.inner(), since_start, Duration::from_secs(1), Some(tag))
            {
                failed = Some(anyhow!("writing the interval log: {e:?}"));
            }
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    drop(writer);
    Ok(out)
}

/// Write `<topology>.hlog` into `dir`.
pub fn write_file(dir: &Path, data: RunData<'_>) -> Result<()> {
    let topology = data
        .report
        .topology
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or("run");
    super::write_atomic(&dir.join(format!("{topology}.hlog")), &hlog_bytes(data)?)
}
