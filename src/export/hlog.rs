//! `<topology>.hlog`: an HdrHistogram interval log — one compressed V2 histogram of the
//! end-to-end latency (µs) per second of completions and per workload, tagged with the
//! workload's name — readable by HdrHistogram's standard log readers
//! (`HistogramLogProcessor`, the plotter, hdrhistogram's `IntervalLogIterator`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Result, anyhow};
use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};

use super::RunData;
use crate::ledger::Outcome;

/// The interval log of a run.
pub fn hlog_bytes(data: RunData<'_>) -> Result<Vec<u8>> {
    // (second, workload index) → latencies of the ok tasks whose result was seen then.
    let mut intervals: BTreeMap<(i64, usize), Histogram<u64>> = BTreeMap::new();
    let mut first_second = i64::MAX;
    for (i, _) in data.report.workloads.iter().enumerate() {
        for t in data.ledger.tasks(i) {
            first_second = first_second.min(t.intended_unix_us.div_euclid(1_000_000));
            let (Some(seen), Some(latency)) = (t.result_seen_unix_us, t.latency_us()) else {
                continue;
            };
            if t.classify().outcome != Outcome::Ok || latency < 0 {
                continue;
            }
            let h = intervals
                .entry((seen.div_euclid(1_000_000), i))
                .or_insert_with(|| {
                    let mut h = Histogram::new(3).expect("3 significant digits");
                    h.auto(true);
                    h
                });
            h.record(latency as u64).expect("auto-resizing histogram");
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
    for ((second, i), h) in &intervals {
        let name = &data.report.workloads[*i].name;
        let tag = Tag::new(name)
            .ok_or_else(|| anyhow!("workload name {name:?} is not a valid log tag"))?;
        let offset = UNIX_EPOCH + Duration::from_secs(*second as u64);
        let since_start = offset.duration_since(start).unwrap_or_default();
        writer
            .write_histogram(h, since_start, Duration::from_secs(1), Some(tag))
            .map_err(|e| anyhow!("writing the interval log: {e:?}"))?;
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
