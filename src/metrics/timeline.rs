//! The run's timeline: per second, tasks published and completed, client errors, and the
//! latency of the tasks completed in that second. Kept in run.json (so `hab report` can
//! draw it again) and written as timeline.csv.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::LatencyHistogram;
use crate::event::{ClientEvent, ClientEventKind};
use crate::ledger::{Ledger, Outcome};

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    pub breaker: Option<crate::event::BreakerState>,
    /// CPU of each sampled process in this second, percent of one core, by role
    /// (`broker.node[0]`, `hab.producer`, …; absent in runs written before hab sampled
    /// CPU).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub cpu_pct: std::collections::BTreeMap<String, f64>,
}

#[derive(Default)]
struct Second {
    workload: Option<usize>,
    published: u64,
    ok: u64,
    failed: u64,
    errors: u64,
    refused: u64,
    latency: Option<super::LatencyStats>,
}

/// The end-to-end latency of the ok tasks, per second in which their result was seen
/// (and per workload when `by_workload`; otherwise the workload passed is the first one
/// seen in that second), in time order. The histograms are built one at a time in one
/// reused histogram: one kept for every second of a long run costs ~180 KB each (40 MB
/// over a million-task run); sorting the tasks by second costs 8 bytes per task.
pub fn per_second_latency(
    ledger: &Ledger,
    workloads: usize,
    by_workload: bool,
    mut f: impl FnMut(i64, usize, &LatencyHistogram),
) {
    let seen = |t: &&crate::ledger::TaskRecord| {
        t.result_seen_unix_us.is_some() && t.classify().outcome == Outcome::Ok
    };
    // Counted first: a vector grown by doubling would briefly hold 1.5× its size.
    let n = (0..workloads)
        .map(|w| ledger.tasks(w).iter().filter(seen).count())
        .sum();
    let mut order: Vec<(u32, u32)> = Vec::with_capacity(n);
    for w in 0..workloads {
        for (i, t) in ledger.tasks(w).iter().enumerate() {
            if seen(&t) {
                order.push((w as u32, i as u32));
            }
        }
    }
    let task = |&(w, i): &(u32, u32)| &ledger.tasks(w as usize)[i as usize];
    let second = |t: &crate::ledger::TaskRecord| {
        t.result_seen_unix_us
            .expect("only tasks with a result")
            .div_euclid(1_000_000)
    };
    let key = |e: &(u32, u32)| {
        let s = second(task(e));
        (s, if by_workload { e.0 } else { 0 })
    };
    order.sort_unstable_by_key(key);
    let mut h = LatencyHistogram::new();
    let mut i = 0;
    while i < order.len() {
        let k = key(&order[i]);
        let w = order[i].0 as usize;
        h.clear();
        while i < order.len() && key(&order[i]) == k {
            if let Some(l) = task(&order[i]).latency_us() {
                h.record(l);
            }
            i += 1;
        }
        f(k.0, w, &h);
    }
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
                Outcome::Ok => s.ok += 1,
                Outcome::Failed => s.failed += 1,
                _ => {}
            }
            s.workload.get_or_insert(i);
        }
    }
    per_second_latency(ledger, workloads.len(), false, |sec, _, h| {
        if !h.is_empty() {
            seconds.entry(sec).or_default().latency = Some(h.stats());
        }
    });
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
        let lat = |v: fn(&super::LatencyStats) -> u64| s.latency.as_ref().map(v);
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
            p50_us: lat(|st| st.p50_us),
            p99_us: lat(|st| st.p99_us),
            max_us: lat(|st| st.max_us),
            refused: s.refused,
            ..Default::default()
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{ConfirmState, Execution, SeenVia, TaskRecord};
    use crate::protocol::result::ResultStatus;
    use uuid::Uuid;

    const S: i64 = 1_000_000;

    fn ok(w: usize, intended: i64, seen: i64) -> TaskRecord {
        let mut t = TaskRecord::new(Uuid::new_v4(), w, intended);
        t.published_unix_us = Some(intended);
        t.confirm = ConfirmState::Acked;
        t.executions.push(Execution {
            worker: "w1".into(),
            started_unix_us: intended,
            finished_unix_us: Some(seen),
            succeeded: Some(true),
        });
        t.result_seen_unix_us = Some(seen);
        t.result_status = Some(ResultStatus::Success);
        t.seen_via = Some(SeenVia::Notification);
        t
    }

    #[test]
    fn per_second_latency_groups_by_second_and_workload_in_time_order() {
        let t0 = 1_800_000_000 * S;
        let mut l = Ledger::new(2);
        // Results seen out of order across seconds 2, 0, 2, 0 (workload 0) and 0 (workload 1);
        // a task without a result and a failed one are not counted.
        l.insert(ok(0, t0, t0 + 2 * S + 10));
        l.insert(ok(0, t0, t0 + 300));
        l.insert(ok(0, t0, t0 + 2 * S + 500));
        l.insert(ok(0, t0, t0 + 100));
        l.insert(TaskRecord::new(Uuid::new_v4(), 0, t0));
        let mut failed = ok(0, t0, t0 + 50);
        failed.result_status = Some(ResultStatus::Failure);
        failed.executions[0].succeeded = Some(false);
        l.insert(failed);
        l.insert(ok(1, t0, t0 + 7_000));
        let mut groups = Vec::new();
        per_second_latency(&l, 2, true, |s, w, h| {
            groups.push((s - t0 / S, w, h.len(), h.stats().max_us))
        });
        assert_eq!(
            groups,
            vec![
                (0, 0, 2, 300),
                (0, 1, 1, h_max(7_000)),
                (2, 0, 2, h_max(2 * S + 500)),
            ]
        );
        let mut merged = Vec::new();
        per_second_latency(&l, 2, false, |s, _, h| merged.push((s - t0 / S, h.len())));
        assert_eq!(merged, vec![(0, 3), (2, 2)]);
        // Only the workloads asked for.
        let mut first = 0;
        per_second_latency(&l, 1, false, |_, _, h| first += h.len());
        assert_eq!(first, 4);
    }

    /// The value a 3-digit histogram reports as the maximum of `v`.
    fn h_max(v: i64) -> u64 {
        let mut h = LatencyHistogram::new();
        h.record(v);
        h.stats().max_us
    }
}
