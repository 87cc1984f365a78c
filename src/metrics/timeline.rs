//! The run's timeline: per second, tasks published and completed, client errors, and the
//! latency of the tasks completed in that second. Kept in run.json (so `hab report` can
//! draw it again) and written as timeline.csv.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::LatencyHistogram;
use crate::ledger::{Ledger, Outcome};
use crate::observe::{ClientEvent, ClientEventKind};

/// One second of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    /// Seconds since the first second of the timeline.
    pub second: i64,
    /// Unix time of this second.
    pub unix_s: i64,
    /// The workload running then (the last one that published or completed a task).
    pub workload: String,
    /// Tasks published in this second.
    pub published: u64,
    /// Tasks whose successful result was seen in this second.
    pub ok: u64,
    /// Tasks whose failure was seen in this second.
    pub failed: u64,
    /// Client errors in this second (producer, workers, result watcher).
    pub client_errors: u64,
    /// Latency of the ok tasks of this second, µs (absent when none completed).
    pub p50_us: Option<u64>,
    /// p99 of the same, µs.
    pub p99_us: Option<u64>,
    /// Maximum of the same, µs.
    pub max_us: Option<u64>,
    /// Tasks the producer refused (breaker open) or gave up (attempts exhausted) in this
    /// second.
    #[serde(default)]
    pub refused: u64,
    /// The producer's circuit-breaker state during this second, the worst one if it
    /// changed (open > half-open > closed); absent unless `policy = "breaker"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<crate::producer::BreakerState>,
}

#[derive(Default)]
struct Second {
    workload: Option<usize>,
    published: u64,
    ok: u64,
    failed: u64,
    errors: u64,
    refused: u64,
    latency: LatencyHistogram,
}

/// Build the timeline of `workloads` (names in ledger order) from the ledger and the
/// client events. Seconds without any activity between the first and the last are kept
/// (as zeros): a gap is what an outage looks like.
pub fn compute(workloads: &[String], ledger: &Ledger, events: &[ClientEvent]) -> Vec<TimelineRow> {
    let mut seconds: BTreeMap<i64, Second> = BTreeMap::new();
    for (i, _) in workloads.iter().enumerate() {
        for t in ledger.tasks(i) {
            if let Some(p) = t.published_unix_us {
                let s = seconds.entry(p.div_euclid(1_000_000)).or_default();
                s.published += 1;
                s.workload = Some(i);
            }
            if let Some(r) = t.refused_unix_us {
                let s = seconds.entry(r.div_euclid(1_000_000)).or_default();
                s.refused += 1;
                s.workload.get_or_insert(i);
            }
            let Some(seen) = t.result_seen_unix_us else {
                continue;
            };
            let s = seconds.entry(seen.div_euclid(1_000_000)).or_default();
            match t.classify().outcome {
                Outcome::Ok => {
                    s.ok += 1;
                    if let Some(l) = t.latency_us() {
                        s.latency.record(l);
                    }
                }
                Outcome::Failed => s.failed += 1,
                _ => {}
            }
            s.workload.get_or_insert(i);
        }
    }
    for e in events {
        if e.kind == ClientEventKind::Error {
            seconds
                .entry(e.at_unix_us.div_euclid(1_000_000))
                .or_default()
                .errors += 1;
        }
    }
    let (Some(&first), Some(&last)) = (seconds.keys().next(), seconds.keys().next_back()) else {
        return Vec::new();
    };
    let mut rows = Vec::with_capacity((last - first + 1) as usize);
    let mut current: Option<usize> = None;
    let empty = Second::default();
    for sec in first..=last {
        let s = seconds.get(&sec).unwrap_or(&empty);
        if s.workload.is_some() {
            current = s.workload;
        }
        let st = s.latency.stats();
        let lat = |v: u64| (st.count > 0).then_some(v);
        rows.push(TimelineRow {
            second: sec - first,
            unix_s: sec,
            workload: current
                .and_then(|i| workloads.get(i))
                .cloned()
                .unwrap_or_default(),
            published: s.published,
            ok: s.ok,
            failed: s.failed,
            client_errors: s.errors,
            p50_us: lat(st.p50_us),
            p99_us: lat(st.p99_us),
            max_us: lat(st.max_us),
            refused: s.refused,
            breaker: None,
        });
    }
    rows
}
