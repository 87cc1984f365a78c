//! Per-workload metrics computed from the ledger.

use serde::{Deserialize, Serialize};

use super::Spread;
use super::histogram::{LatencyHistogram, LatencyStats};
use crate::ledger::{Outcome, OutcomeCounts, TaskRecord};

/// Histograms of each stage of a task's life, µs.
#[derive(Debug, Clone, Default)]
pub struct StageHistograms {
    /// End to end: result seen − intended start (ok tasks).
    pub latency: LatencyHistogram,
    /// Publish call → broker confirmation.
    pub publish: LatencyHistogram,
    /// Published → a worker started it (queue wait).
    pub queue_wait: LatencyHistogram,
    /// Started → finished on the worker (service time).
    pub service: LatencyHistogram,
    /// Finished on the worker → result seen by the producer.
    pub result_delay: LatencyHistogram,
    /// Actual publish − intended start (schedule lag of the generator).
    pub schedule_lag: LatencyHistogram,
}

impl StageHistograms {
    /// The stages with their names, in a stable order.
    pub fn named(&self) -> [(&'static str, &LatencyHistogram); 6] {
        [
            ("latency", &self.latency),
            ("publish", &self.publish),
            ("queue_wait", &self.queue_wait),
            ("service", &self.service),
            ("result_delay", &self.result_delay),
            ("schedule_lag", &self.schedule_lag),
        ]
    }

    /// Per stage, the intervals that came out negative (an end stamped before its start):
    /// counted here, never recorded in the histogram, never dropped silently. Every stage
    /// is listed, zeros included.
    pub fn negative_intervals(&self) -> std::collections::BTreeMap<String, u64> {
        self.named()
            .iter()
            .map(|(n, h)| (n.to_string(), h.negative()))
            .collect()
    }
}

/// Everything measured for one workload.
#[derive(Debug, Clone)]
pub struct WorkloadMetrics {
    /// Workload name from the workload file.
    pub name: String,
    /// Celery task name.
    pub task: String,
    /// Outcome counts.
    pub counts: OutcomeCounts,
    /// First intended start → last result seen, in seconds (the makespan for a burst).
    pub wall_s: f64,
    /// ok tasks per second of `wall_s`.
    pub throughput_per_s: f64,
    /// Tasks published more than once by the producer.
    pub republished: u64,
    /// `ok` and `failed` tasks whose result was first seen by a reconciliation read rather
    /// than a notification: their latency is an upper bound (the read's time).
    pub seen_by_read: u64,
    /// Stage histograms.
    pub stages: StageHistograms,
    /// A repeated workload's repetitions, in order (empty when it ran once): the fields
    /// above are then their merge (see [`WorkloadReport::repetitions`]).
    pub repetitions: Vec<RepetitionReport>,
}

/// One repetition of a workload with `repeat = N` (run.json `repetitions[]`): measured
/// like a workload of its own, from its first intended start to its last result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepetitionReport {
    /// Which repetition, from 1.
    pub repetition: u32,
    /// Its outcome counts (flattened, as in the workload's object).
    #[serde(flatten)]
    pub counts: OutcomeCounts,
    /// Its ok and failed tasks settled by a reconciliation read.
    #[serde(default)]
    pub seen_by_read: u64,
    /// Its first intended start → its last result seen, seconds.
    pub wall_s: f64,
    /// Its ok tasks per second of `wall_s`.
    pub throughput_per_s: f64,
    /// End-to-end latency of its ok tasks, from its own histogram, µs.
    pub latency: LatencyStats,
}

/// The serializable view of a [`WorkloadMetrics`] (run.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadReport {
    /// Workload name.
    pub name: String,
    /// Celery task name.
    pub task: String,
    /// Outcome counts (flattened: `count`, `ok`, `failed`, `lost`, `result_lost`,
    /// `duplicated`, `unconfirmed` at the top level of the JSON object).
    #[serde(flatten)]
    pub counts: OutcomeCounts,
    /// Tasks the producer had to publish again (not confirmed the first time).
    #[serde(default)]
    pub republished: u64,
    /// `ok` and `failed` tasks whose result was first seen by a reconciliation read, not a
    /// notification (their latency is an upper bound).
    #[serde(default)]
    pub seen_by_read: u64,
    /// First intended start → last result seen, seconds.
    pub wall_s: f64,
    /// ok tasks per second.
    pub throughput_per_s: f64,
    /// Stats per stage (latency, publish, queue_wait, service, result_delay, schedule_lag).
    pub stages: std::collections::BTreeMap<String, LatencyStats>,
    /// Each stage's full histogram, compressed HdrHistogram V2, base64 (mergeable).
    pub histograms: std::collections::BTreeMap<String, String>,
    /// Per stage, intervals that came out negative and are therefore not in its
    /// histogram: with every stamp of a host on one clock they are real orderings (a
    /// Celery worker writes its finish line after storing the result, so its
    /// `result_delay` is often negative), not clock errors. A stage's histogram count plus
    /// its negative count is every interval measured. Empty in runs made before they were
    /// counted.
    #[serde(default)]
    pub negative_intervals: std::collections::BTreeMap<String, u64>,
    /// A workload with `repeat = N` ran N times back to back: each repetition's counts,
    /// wall time, throughput and latency, in order (absent for a workload run once, and
    /// in run.json files written before repetitions existed). The fields above are then
    /// the repetitions merged: counts summed, stages and histograms from every ok task of
    /// every repetition, `wall_s` the sum of their wall times and `throughput_per_s` the
    /// median of their throughputs (`throughput_spread` has min and max).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repetitions: Vec<RepetitionReport>,
    /// Throughput over the repetitions, ok tasks/s (median, min, max, n); absent for a
    /// workload run once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput_spread: Option<Spread>,
    /// Who was busy while it ran: each process's CPU and the busiest (absent in runs
    /// written before hab sampled CPU, on merged runs and when nothing was sampled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<super::cpu::WorkloadCpu>,
}

impl WorkloadReport {
    /// How many times the workload ran in this run (1 without repetitions).
    pub fn repetitions_run(&self) -> usize {
        self.repetitions.len().max(1)
    }

    /// Throughput of each repetition, or the workload's own when it ran once, ok tasks/s.
    pub fn throughput_samples(&self) -> Vec<f64> {
        match self.repetitions.is_empty() {
            true => vec![self.throughput_per_s],
            false => self
                .repetitions
                .iter()
                .map(|r| r.throughput_per_s)
                .collect(),
        }
    }

    /// End-to-end latency of each repetition, or the workload's own when it ran once
    /// (each with at least one ok task).
    pub fn latency_samples(&self) -> Vec<LatencyStats> {
        let all = match self.repetitions.is_empty() {
            true => vec![self.stages.get("latency").copied().unwrap_or_default()],
            false => self.repetitions.iter().map(|r| r.latency).collect(),
        };
        all.into_iter().filter(|l| l.count > 0).collect()
    }
}

impl WorkloadMetrics {
    /// Compute metrics from a workload's classified tasks. Tasks of more than one
    /// repetition (`TaskRecord::repetition`) are measured per repetition too, and the
    /// workload's wall time and throughput are then those of its repetitions (summed,
    /// median); counts and histograms cover every task either way.
    pub fn from_tasks(name: &str, task: &str, tasks: &[TaskRecord]) -> Self {
        let all = Measured::of(tasks.iter());
        let mut reps: std::collections::BTreeMap<u32, Vec<&TaskRecord>> = Default::default();
        for t in tasks {
            reps.entry(t.repetition).or_default().push(t);
        }
        let mut m = WorkloadMetrics {
            name: name.to_string(),
            task: task.to_string(),
            counts: all.counts,
            wall_s: all.wall_s,
            throughput_per_s: all.throughput_per_s,
            republished: all.republished,
            seen_by_read: all.seen_by_read,
            stages: all.stages,
            repetitions: Vec::new(),
        };
        if reps.len() > 1 {
            m.repetitions = reps
                .into_iter()
                .map(|(repetition, tasks)| {
                    let r = Measured::of(tasks.into_iter());
                    RepetitionReport {
                        repetition,
                        counts: r.counts,
                        seen_by_read: r.seen_by_read,
                        wall_s: r.wall_s,
                        throughput_per_s: r.throughput_per_s,
                        latency: r.stages.latency.stats(),
                    }
                })
                .collect();
            m.wall_s = m.repetitions.iter().map(|r| r.wall_s).sum();
            m.throughput_per_s = m.throughput_spread().map(|s| s.median).unwrap_or_default();
        }
        m
    }

    /// Throughput over the repetitions; `None` for a workload run once.
    pub fn throughput_spread(&self) -> Option<Spread> {
        match self.repetitions.len() {
            0 | 1 => None,
            _ => Spread::of(self.repetitions.iter().map(|r| r.throughput_per_s)),
        }
    }

    /// The serializable report.
    pub fn report(&self) -> WorkloadReport {
        let c = self.counts;
        WorkloadReport {
            name: self.name.clone(),
            task: self.task.clone(),
            counts: c,
            republished: self.republished,
            seen_by_read: self.seen_by_read,
            wall_s: self.wall_s,
            throughput_per_s: self.throughput_per_s,
            stages: self
                .stages
                .named()
                .iter()
                .map(|(n, h)| (n.to_string(), h.stats()))
                .collect(),
            histograms: self
                .stages
                .named()
                .iter()
                .map(|(n, h)| (n.to_string(), h.to_base64()))
                .collect(),
            negative_intervals: self.stages.negative_intervals(),
            repetitions: self.repetitions.clone(),
            throughput_spread: self.throughput_spread(),
            cpu: None,
        }
    }
}

/// What one set of tasks (a workload, or one repetition of it) measured.
struct Measured {
    counts: OutcomeCounts,
    stages: StageHistograms,
    wall_s: f64,
    throughput_per_s: f64,
    republished: u64,
    seen_by_read: u64,
}

impl Measured {
    fn of<'a>(tasks: impl Iterator<Item = &'a TaskRecord>) -> Measured {
        let mut counts = OutcomeCounts::default();
        let mut stages = StageHistograms::default();
        let mut first_intended = i64::MAX;
        let mut last_seen = i64::MIN;
        let mut republished = 0;
        let mut seen_by_read = 0;
        for t in tasks {
            if t.republished > 0 {
                republished += 1;
            }
            let c = t.classify();
            counts.add(c);
            first_intended = first_intended.min(t.intended_unix_us);
            if let Some(p) = t.published_unix_us {
                stages.schedule_lag.record(p - t.intended_unix_us);
                if let Some(c) = t.confirmed_unix_us {
                    stages.publish.record(c - p);
                }
            }
            // A result seen after its workload's drain deadline (the task is unfinished)
            // is not part of the workload's wall time.
            if matches!(c.outcome, Outcome::Ok | Outcome::Failed) {
                if let Some(seen) = t.result_seen_unix_us {
                    last_seen = last_seen.max(seen);
                }
                if t.seen_via == Some(crate::ledger::SeenVia::Read) {
                    seen_by_read += 1;
                }
            }
            if c.outcome != Outcome::Ok {
                continue;
            }
            if let Some(l) = t.latency_us() {
                stages.latency.record(l);
            }
            if let Some(e) = t.main_execution() {
                if let Some(p) = t.published_unix_us {
                    stages.queue_wait.record(e.started_unix_us - p);
                }
                if let Some(f) = e.finished_unix_us {
                    stages.service.record(f - e.started_unix_us);
                    if let Some(seen) = t.result_seen_unix_us {
                        stages.result_delay.record(seen - f);
                    }
                }
            }
        }
        let wall_s = if last_seen > first_intended && first_intended != i64::MAX {
            (last_seen - first_intended) as f64 / 1e6
        } else {
            0.0
        };
        let throughput_per_s = if wall_s > 0.0 {
            counts.ok as f64 / wall_s
        } else {
            0.0
        };
        Measured {
            counts,
            stages,
            wall_s,
            throughput_per_s,
            republished,
            seen_by_read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{ConfirmState, Execution};
    use crate::protocol::result::ResultStatus;
    use uuid::Uuid;

    fn ok_task(intended: i64, started: i64, finished: i64, seen: i64) -> TaskRecord {
        let mut t = TaskRecord::new(Uuid::new_v4(), 0, intended);
        t.published_unix_us = Some(intended + 10);
        t.confirmed_unix_us = Some(intended + 30);
        t.confirm = ConfirmState::Acked;
        t.executions.push(Execution {
            worker: "w1".into(),
            started_unix_us: started,
            finished_unix_us: Some(finished),
            succeeded: Some(true),
        });
        t.result_seen_unix_us = Some(seen);
        t.result_status = Some(ResultStatus::Success);
        t
    }

    #[test]
    fn stages_and_throughput() {
        let t0 = 1_000_000_000;
        let tasks = vec![
            ok_task(t0, t0 + 110, t0 + 210, t0 + 1_000),
            ok_task(t0, t0 + 510, t0 + 610, t0 + 2_000_000),
        ];
        let m = WorkloadMetrics::from_tasks("trivial", "hab.trivial", &tasks);
        assert_eq!(m.counts.ok, 2);
        assert!((m.wall_s - 2.0).abs() < 1e-9);
        assert!((m.throughput_per_s - 1.0).abs() < 1e-9);
        let s = m.stages.latency.stats();
        assert_eq!(s.min_us, 1_000);
        assert!(s.max_us >= 1_999_000);
        assert_eq!(m.stages.publish.stats().max_us, 20);
        assert_eq!(m.stages.queue_wait.stats().min_us, 100);
        assert_eq!(m.stages.service.stats().max_us, 100);
        assert_eq!(m.stages.schedule_lag.stats().max_us, 10);
        let r = m.report();
        assert_eq!(r.stages["latency"].count, 2);
        assert_eq!(r.histograms.len(), 6);
    }

    /// A real Celery worker writes its finish line after storing the result: the producer
    /// can see the result first. That negative result delay is counted, not dropped.
    #[test]
    fn negative_intervals_are_counted_per_stage_in_the_report() {
        let t0 = 1_000_000_000;
        let tasks = vec![
            ok_task(t0, t0 + 110, t0 + 210, t0 + 1_000),
            // Finished (as the worker stamped it) 40 µs after the result was seen.
            ok_task(t0, t0 + 510, t0 + 1_040, t0 + 1_000),
        ];
        let r = WorkloadMetrics::from_tasks("trivial", "hab.trivial", &tasks).report();
        assert_eq!(r.negative_intervals["result_delay"], 1);
        for stage in [
            "publish",
            "queue_wait",
            "service",
            "latency",
            "schedule_lag",
        ] {
            assert_eq!(r.negative_intervals[stage], 0, "{stage}");
        }
        assert_eq!(
            r.stages["result_delay"].count + r.negative_intervals["result_delay"],
            r.counts.ok
        );
        let back: WorkloadReport =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back.negative_intervals, r.negative_intervals);
    }

    #[test]
    fn lost_tasks_count_but_add_no_latency() {
        let t0 = 5_000_000;
        let mut lost = TaskRecord::new(Uuid::new_v4(), 0, t0);
        lost.published_unix_us = Some(t0);
        lost.confirm = ConfirmState::Acked;
        let tasks = vec![ok_task(t0, t0 + 1, t0 + 2, t0 + 500_000), lost];
        let m = WorkloadMetrics::from_tasks("x", "hab.trivial", &tasks);
        assert_eq!(m.counts.count, 2);
        assert_eq!(m.counts.lost, 1);
        assert_eq!(m.stages.latency.len(), 1);
        assert!((m.throughput_per_s - 2.0).abs() < 1e-9);
    }

    #[test]
    fn repetitions_merge_their_histograms_and_spread_their_throughputs() {
        // Three repetitions of three ok tasks each, back to back; repetition k's
        // latencies are m ms and 2m ms (m = 10^(k-1)), and k s for its last task.
        let mut tasks = Vec::new();
        for k in 1..=3i64 {
            let t0 = 100_000_000 * k;
            let m = 10i64.pow(k as u32 - 1);
            for (j, l_ms) in [m, 2 * m, 0].into_iter().enumerate() {
                let mut t = ok_task(t0, t0 + 1, t0 + 2, t0 + l_ms * 1_000);
                if j == 2 {
                    t.result_seen_unix_us = Some(t0 + k * 1_000_000);
                }
                t.repetition = k as u32;
                tasks.push(t);
            }
        }
        let m = WorkloadMetrics::from_tasks("trivial", "hab.trivial", &tasks);
        assert_eq!(m.repetitions.len(), 3);
        for (i, r) in m.repetitions.iter().enumerate() {
            let k = i as u32 + 1;
            assert_eq!((r.repetition, r.counts.count, r.counts.ok), (k, 3, 3));
            assert_eq!(r.latency.count, 3);
            assert!((r.wall_s - f64::from(k)).abs() < 1e-9, "{r:?}");
            assert!((r.throughput_per_s - 3.0 / f64::from(k)).abs() < 1e-9);
        }
        // Percentiles from the merged histogram of all nine tasks: its median is the
        // 5th of 1, 2, 10, 20, 100, 200, 1000, 2000, 3000 ms (100 ms), not the median of
        // the repetitions' medians (20 ms) nor their mean (74 ms); its max is 3 s.
        let mut merged = LatencyHistogram::new();
        for t in &tasks {
            merged.record(t.latency_us().unwrap());
        }
        let s = m.stages.latency.stats();
        assert_eq!(s, merged.stats());
        assert_eq!(s.count, 9);
        assert!((99_900..=100_100).contains(&s.p50_us), "{s:?}");
        let medians: Vec<u64> = m.repetitions.iter().map(|r| r.latency.p50_us).collect();
        // (3 significant digits: within 0.1 %.)
        assert!((19_980..=20_020).contains(&medians[1]), "{medians:?}");
        assert!(s.max_us >= 2_999_000, "{s:?}");
        assert_eq!(m.counts.ok, 9);
        // Throughput: median of 3, 1.5 and 1 tasks/s, with min and max; wall time summed.
        let spread = m.throughput_spread().unwrap();
        assert_eq!(
            (spread.median, spread.min, spread.max, spread.n),
            (1.5, 1.0, 3.0, 3)
        );
        assert_eq!(m.throughput_per_s, 1.5);
        assert!((m.wall_s - 6.0).abs() < 1e-9);
        // run.json carries both, and reads back.
        let r = m.report();
        assert_eq!(r.throughput_spread, Some(spread));
        assert_eq!(r.throughput_samples(), vec![3.0, 1.5, 1.0]);
        let back: WorkloadReport =
            serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back.repetitions, r.repetitions);
        assert_eq!(back.repetitions[1].counts.ok, 3);
        // A workload run once has neither.
        let once = WorkloadMetrics::from_tasks("t", "hab.trivial", &tasks[..3]);
        assert!(once.repetitions.is_empty() && once.throughput_spread().is_none());
        let json = serde_json::to_value(once.report()).unwrap();
        assert!(json.get("repetitions").is_none() && json.get("throughput_spread").is_none());
    }

    #[test]
    fn a_run_json_written_before_repetitions_reads_as_one_run() {
        let mut json = serde_json::to_value(
            WorkloadMetrics::from_tasks("t", "hab.trivial", &[ok_task(0, 1, 2, 5_000)]).report(),
        )
        .unwrap();
        json.as_object_mut().unwrap().remove("repetitions");
        let r: WorkloadReport = serde_json::from_value(json).unwrap();
        assert_eq!(r.repetitions_run(), 1);
        assert_eq!(r.throughput_samples(), vec![r.throughput_per_s]);
        assert_eq!(r.latency_samples().len(), 1);
    }

    #[test]
    fn nothing_seen_means_zero_throughput() {
        let m = WorkloadMetrics::from_tasks("x", "hab.trivial", &[]);
        assert_eq!(m.wall_s, 0.0);
        assert_eq!(m.throughput_per_s, 0.0);
    }
}
