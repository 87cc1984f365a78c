//! Where a comparison's time went: per run, bring-up, calibration, the workloads' own time
//! (each workload from its first intended start to its last result, drained, over its
//! repetitions) and the rest (warm-up, reading the final state, stopping the stack); over
//! the comparison, the overhead — wall time less the workloads' own — as a share of the
//! workloads' time. The floor of a comparison is its workloads' own time; the overhead is
//! what hab adds to it.

use serde::{Deserialize, Serialize};

use crate::record::RunSet;

/// One run's time, seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTiming {
    /// Topology name.
    pub topology: String,
    /// From the run's start to its end (run.json `started_unix_ms` → `finished_unix_ms`).
    pub wall_s: f64,
    /// Bringing the stack up.
    pub bringup_s: f64,
    /// Measuring the raw limits (`--calibrate`), 0 without.
    pub calibration_s: f64,
    /// The workloads' own time: the sum of their wall times.
    pub workloads_s: f64,
    /// The rest: warm-up, workers, final state, the gaps between workloads.
    pub other_s: f64,
}

/// A comparison's time, seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Every run, in the order they started.
    pub runs: Vec<RunTiming>,
    /// From the first run's start to the last run's end (stopping each stack and starting
    /// the next included; rendering the report after the last run is not).
    pub wall_s: f64,
    /// The workloads' own time over every run.
    pub workloads_s: f64,
    /// `wall_s − workloads_s`.
    pub overhead_s: f64,
    /// The overhead as a share of the workloads' own time, %.
    pub overhead_pct: f64,
}

impl Timing {
    /// The timing of every finished run of `set`; `None` when no run finished.
    pub fn of(set: &RunSet) -> Option<Timing> {
        let mut runs: Vec<(i64, i64, RunTiming)> = Vec::new();
        for t in &set.topologies {
            for r in &t.runs {
                let r = &r.report;
                let Some(finished) = r.finished_unix_ms else {
                    continue;
                };
                let wall_s = (finished - r.started_unix_ms).max(0) as f64 / 1000.0;
                let bringup_s = r.bringup_ms.unwrap_or(0) as f64 / 1000.0;
                let calibration_s = r
                    .calibration
                    .as_ref()
                    .and_then(|c| Some((c.finished_unix_ms? - c.started_unix_ms).max(0)))
                    .unwrap_or(0) as f64
                    / 1000.0;
                let workloads_s: f64 = r.workloads.iter().map(|w| w.wall_s).sum();
                runs.push((
                    r.started_unix_ms,
                    finished,
                    RunTiming {
                        topology: t.name.clone(),
                        wall_s,
                        bringup_s,
                        calibration_s,
                        workloads_s,
                        other_s: (wall_s - bringup_s - calibration_s - workloads_s).max(0.0),
                    },
                ));
            }
        }
        runs.sort_by_key(|(start, _, _)| *start);
        let first = runs.first()?.0;
        let last = runs.iter().map(|(_, end, _)| *end).max()?;
        let wall_s = (last - first).max(0) as f64 / 1000.0;
        let workloads_s: f64 = runs.iter().map(|(_, _, r)| r.workloads_s).sum();
        let overhead_s = (wall_s - workloads_s).max(0.0);
        Some(Timing {
            runs: runs.into_iter().map(|(_, _, r)| r).collect(),
            wall_s,
            workloads_s,
            overhead_s,
            overhead_pct: if workloads_s > 0.0 {
                overhead_s / workloads_s * 100.0
            } else {
                0.0
            },
        })
    }

    /// One sentence for the terminal and the report.
    pub fn sentence(&self) -> String {
        let sum = |f: fn(&RunTiming) -> f64| self.runs.iter().map(f).sum::<f64>();
        let between = self.wall_s - sum(|r| r.wall_s);
        format!(
            "Time: {:.0} s from the first run's start to the last run's end: the workloads' own time {:.0} s, hab's overhead {:.0} s ({:.0} % of the workloads' time: bring-up {:.1} s, calibration {:.1} s, warm-up, drains and final state {:.1} s, between runs {:.1} s).",
            self.wall_s,
            self.workloads_s,
            self.overhead_s,
            self.overhead_pct,
            sum(|r| r.bringup_s),
            sum(|r| r.calibration_s),
            sum(|r| r.other_s),
            between.max(0.0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_is_wall_less_the_workloads_own_time_split_by_phase() {
        let mut set = crate::compare::fixture::run_set();
        let mut start = 1_000_000;
        for t in &mut set.topologies {
            for r in &mut t.runs {
                let r = &mut r.report;
                r.started_unix_ms = start;
                r.finished_unix_ms = Some(start + 20_000);
                r.bringup_ms = Some(2_000);
                for w in &mut r.workloads {
                    w.wall_s = 0.0;
                }
                r.workloads[0].wall_s = 15.0;
                // 1 s between one run's end and the next one's start.
                start += 21_000;
            }
        }
        let n = set.topologies.iter().map(|t| t.runs.len()).sum::<usize>();
        let t = Timing::of(&set).unwrap();
        assert_eq!(t.runs.len(), n);
        assert_eq!(t.runs[0].other_s, 3.0);
        assert_eq!(t.wall_s, 21.0 * n as f64 - 1.0);
        assert_eq!(t.workloads_s, 15.0 * n as f64);
        assert!((t.overhead_pct - t.overhead_s / t.workloads_s * 100.0).abs() < 1e-9);
        let s = t.sentence();
        assert!(
            s.contains("bring-up 2.0 s") || s.contains(&format!("bring-up {}.0 s", 2 * n)),
            "{s}"
        );
        assert!(s.contains(&format!("between runs {}.0 s", n - 1)), "{s}");
        // A run that did not finish is left out; none finished: no timing.
        for t in &mut set.topologies {
            for r in &mut t.runs {
                r.report.finished_unix_ms = None;
            }
        }
        assert_eq!(Timing::of(&set), None);
    }
}
