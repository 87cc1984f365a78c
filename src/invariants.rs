//! A run that checks itself: invariants every run's figures must satisfy, checked where
//! both the ledger and the run record are at hand (after every workload, at the end of a
//! run, after a merge), recorded in run.json (`invariants`) and reported when violated.
//!
//! An invariant that fails says a figure hab wrote is wrong (or a definition drifted):
//! the next defect of that kind is caught by hab, not by a reader. `--strict` makes
//! `hab run` / `hab compare` exit 1 on any violation.

use crate::ledger::{Ledger, Outcome};
use crate::record::Invariant;
use crate::record::RunReport;

/// Names of the invariants, as they appear in run.json.
pub mod names {
    /// Every task has exactly one outcome and the outcomes sum to the count.
    pub const ONE_OUTCOME: &str = "one_outcome_per_task";
    /// Each workload's latency histogram holds exactly its ok tasks.
    pub const HISTOGRAM_COUNT: &str = "latency_count_equals_ok";
    /// Every ok task was executed at least once (side channel).
    pub const OK_EXECUTED: &str = "ok_tasks_were_executed";
    /// The backend holds at least as many result keys as tasks were ok, unless a
    /// Redis-side fault explains the gap.
    pub const BACKEND_KEYS: &str = "backend_keys_cover_ok";
    /// Every failover phase was observed at or after its fault, and phases out of order
    /// are flagged (the report's `order` column, the anatomy chart's marks).
    pub const ANATOMY: &str = "anatomy_ordered_or_flagged";
    /// A trivial burst runs no more than 5 % above the broker round trip calibrated on
    /// the same stack (a ceiling is the best the stack does; above it, the calibration
    /// is wrong).
    pub const CEILING: &str = "task_path_within_ceiling";
    /// Every interval of every stage is in its histogram or counted as negative: none
    /// dropped silently.
    pub const NEGATIVE: &str = "no_interval_unaccounted";
    /// No workload measured hab rather than the stack: none had one of hab's processes
    /// as its busiest, at 90 % of a core or more in its own overhead (CPU sampled).
    pub const STACK_MEASURED: &str = "stack_not_hab_measured";
}

/// Checks the invariants of `report` (its workloads as written so far) against `ledger`
/// (the tasks behind them; `None` when only the record is at hand: the checks that need
/// tasks are then left out).
pub fn check(report: &RunReport, ledger: Option<&Ledger>) -> Vec<Invariant> {
    let mut out = vec![one_outcome(report), histogram_count(report)];
    if let Some(l) = ledger {
        out.push(ok_executed(report, l));
        out.push(intervals_accounted(report, l));
    }
    if let Some(i) = backend_keys(report) {
        out.push(i);
    }
    if let Some(i) = anatomy(report) {
        out.push(i);
    }
    if let Some(i) = ceiling(report) {
        out.push(i);
    }
    if let Some(i) = stack_measured(report) {
        out.push(i);
    }
    out
}

/// Present when some workload's CPU was sampled long enough for a verdict.
fn stack_measured(report: &RunReport) -> Option<Invariant> {
    use crate::metrics::cpu::{VERDICT_MIN_S, hab_limited};
    let judged: Vec<_> = report
        .workloads
        .iter()
        .filter_map(|w| Some((w, w.cpu.as_ref()?)))
        .filter(|(_, c)| c.window.seconds >= VERDICT_MIN_S)
        .collect();
    if judged.is_empty() {
        return None;
    }
    let problems = judged
        .iter()
        .filter_map(|(w, c)| {
            let b = hab_limited(&c.window)?;
            Some(format!(
                "workload {}: {} at {:.0} % of a core in hab's own overhead: it measured hab rather than the stack",
                w.name, b.role, b.pct
            ))
        })
        .collect();
    Some(invariant(
        names::STACK_MEASURED,
        problems,
        format!(
            "{} workload(s) sampled for 1 s or more: none was limited by hab's own overhead",
            judged.len()
        ),
    ))
}

/// Whether every invariant in `list` holds.
pub fn all_hold(list: &[Invariant]) -> bool {
    list.iter().all(|i| i.holds)
}

fn invariant(name: &str, problems: Vec<String>, ok_detail: String) -> Invariant {
    Invariant {
        name: name.to_string(),
        holds: problems.is_empty(),
        detail: if problems.is_empty() {
            ok_detail
        } else {
            problems.join("; ")
        },
    }
}

fn one_outcome(report: &RunReport) -> Invariant {
    let mut problems = Vec::new();
    let mut total = 0;
    for w in &report.workloads {
        let c = &w.counts;
        let sum = c.ok
            + c.failed
            + c.lost
            + c.result_lost
            + c.unconfirmed
            + c.refused
            + c.gave_up
            + c.revoked
            + c.unfinished_running
            + c.unfinished_queued
            + c.unknown;
        total += c.count;
        if sum != c.count {
            problems.push(format!(
                "workload {}: the outcomes sum to {sum}, not its {} tasks",
                w.name, c.count
            ));
        }
    }
    invariant(
        names::ONE_OUTCOME,
        problems,
        format!("{total} tasks, one outcome each"),
    )
}

fn histogram_count(report: &RunReport) -> Invariant {
    let mut problems = Vec::new();
    for w in &report.workloads {
        let count = w.stages.get("latency").map_or(0, |s| s.count);
        if count != w.counts.ok {
            problems.push(format!(
                "workload {}: the latency histogram holds {count} tasks, {} were ok",
                w.name, w.counts.ok
            ));
        }
    }
    invariant(
        names::HISTOGRAM_COUNT,
        problems,
        "every latency histogram holds exactly its workload's ok tasks".into(),
    )
}

fn ok_executed(report: &RunReport, ledger: &Ledger) -> Invariant {
    let mut problems = Vec::new();
    for (i, w) in report.workloads.iter().enumerate() {
        let never = ledger
            .tasks(i)
            .iter()
            .filter(|t| t.classify().outcome == Outcome::Ok && t.executions.is_empty())
            .count();
        if never > 0 {
            problems.push(format!(
                "workload {}: {never} ok tasks have no execution in the side channel",
                w.name
            ));
        }
    }
    invariant(
        names::OK_EXECUTED,
        problems,
        "every ok task has an execution in the side channel".into(),
    )
}

/// Recounts each stage's intervals from the tasks, independently of the metrics code,
/// and checks that histogram count + negative count covers every one of them.
fn intervals_accounted(report: &RunReport, ledger: &Ledger) -> Invariant {
    let mut problems = Vec::new();
    let mut negative_total = 0;
    for (i, w) in report.workloads.iter().enumerate() {
        let mut expected: std::collections::BTreeMap<&str, u64> = Default::default();
        for t in ledger.tasks(i) {
            let mut count = |stage| *expected.entry(stage).or_insert(0) += 1;
            if t.published_unix_us.is_some() {
                count("schedule_lag");
                if t.confirmed_unix_us.is_some() {
                    count("publish");
                }
            }
            if t.classify().outcome != Outcome::Ok {
                continue;
            }
            if t.latency_us().is_some() {
                count("latency");
            }
            if let Some(e) = t.main_execution() {
                if t.published_unix_us.is_some() {
                    count("queue_wait");
                }
                if e.finished_unix_us.is_some() {
                    count("service");
                    if t.result_seen_unix_us.is_some() {
                        count("result_delay");
                    }
                }
            }
        }
        for (stage, n) in expected {
            let in_histogram = w.stages.get(stage).map_or(0, |s| s.count);
            let negative = w.negative_intervals.get(stage).copied().unwrap_or(0);
            negative_total += negative;
            if in_histogram + negative != n {
                problems.push(format!(
                    "workload {}: stage {stage} has {n} intervals, {in_histogram} in its histogram and {negative} counted negative",
                    w.name
                ));
            }
        }
    }
    invariant(
        names::NEGATIVE,
        problems,
        format!(
            "every interval is in its stage's histogram or counted as negative ({negative_total} negative)"
        ),
    )
}

fn backend_keys(report: &RunReport) -> Option<Invariant> {
    let fs = report.final_state?;
    let ok: u64 = report.workloads.iter().map(|w| w.counts.ok).sum();
    if fs.result_keys >= ok {
        return Some(invariant(
            names::BACKEND_KEYS,
            Vec::new(),
            format!("{} result keys for {ok} ok tasks", fs.result_keys),
        ));
    }
    let redis_faults: Vec<&str> = report
        .failover
        .iter()
        .filter(|f| f.not_applied.is_empty() && f.target.starts_with("backend"))
        .map(|f| f.target.as_str())
        .collect();
    if !redis_faults.is_empty() {
        return Some(invariant(
            names::BACKEND_KEYS,
            Vec::new(),
            format!(
                "{} result keys for {ok} ok tasks: the gap is explained by Redis-side faults ({})",
                fs.result_keys,
                redis_faults.join(", ")
            ),
        ));
    }
    Some(invariant(
        names::BACKEND_KEYS,
        vec![format!(
            "the backend held {} result keys at the end but {ok} tasks were ok, and no Redis-side fault explains it (a result TTL shorter than the run, or results removed behind hab's back)",
            fs.result_keys
        )],
        String::new(),
    ))
}

/// A phase seen before its own fault cannot be: the clocks disagree (or an event was
/// attributed to the wrong fault). Out-of-order phases are normal (HAProxy sees a promoted
/// Redis replica before Sentinel announces it) and only need to be flagged, which
/// [`crate::metrics::failover::phase_order`] does for the report and the chart.
fn anatomy(report: &RunReport) -> Option<Invariant> {
    use crate::metrics::failover::{PHASES, phase_offsets, phase_order};
    let applied: Vec<_> = report
        .failover
        .iter()
        .filter(|f| f.not_applied.is_empty())
        .collect();
    if applied.is_empty() {
        return None;
    }
    let mut problems = Vec::new();
    let mut flagged = 0;
    for f in &applied {
        for (name, at) in PHASES.iter().zip(phase_offsets(f)) {
            if let Some(at) = at.filter(|v| *v < 0.0) {
                problems.push(format!(
                    "{} {} (repetition {}): {name} seen {at:.1} ms before the fault",
                    f.target, f.kind, f.repetition
                ));
            }
        }
        if !phase_order(f).ordered {
            flagged += 1;
        }
    }
    Some(invariant(
        names::ANATOMY,
        problems,
        format!(
            "{} faults: every phase at or after its fault; {flagged} with phases out of order, flagged in the report",
            applied.len()
        ),
    ))
}

/// The trivial bursts of a calibrated run against `broker_round_trip`
/// ([`crate::record::Standing`]: within 5 % is "at the ceiling", more is a
/// calibration that missed the stack's best). The disk and CPU figures are not checked
/// here: the CPU figure is a median, not a best, so a quieter moment in a task would
/// flag it without anything being wrong.
fn ceiling(report: &RunReport) -> Option<Invariant> {
    use crate::record::{CEILING_MARGIN, Standing};
    let limit = report
        .calibration
        .as_ref()?
        .figures
        .broker_round_trip
        .as_ref()?
        .value;
    let planned = report.workload_plan.get("workload")?.as_array()?;
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    for w in &report.workloads {
        let Some(p) = planned
            .iter()
            .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(w.name.as_str()))
        else {
            continue;
        };
        let trivial = p.pointer("/task/kind").and_then(|k| k.as_str()) == Some("trivial");
        let burst = p.get("arrival").and_then(|a| a.as_str()) == Some("burst");
        if !trivial || !burst || w.counts.ok == 0 || limit <= 0.0 {
            continue;
        }
        let fraction = w.throughput_per_s / limit;
        checked.push(format!("{} at {:.0} %", w.name, fraction * 100.0));
        if let Standing::Invalid(f) = Standing::of(fraction) {
            problems.push(format!(
                "workload {} ran {:.0} tasks/s, {:.0} % above the calibrated broker round trip ({:.0} msg/s; the margin is {:.0} %): the calibration missed the stack's best",
                w.name,
                w.throughput_per_s,
                (f - 1.0) * 100.0,
                limit,
                CEILING_MARGIN * 100.0
            ));
        }
    }
    if checked.is_empty() {
        return None;
    }
    Some(invariant(
        names::CEILING,
        problems,
        format!(
            "trivial bursts against the broker round trip ({limit:.0} msg/s): {}",
            checked.join(", ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{ConfirmState, Execution, TaskRecord};
    use crate::metrics::summary::WorkloadMetrics;
    use crate::protocol::result::ResultStatus;
    use crate::record::FinalState;
    use uuid::Uuid;

    fn ok_task(executed: bool) -> TaskRecord {
        let mut t = TaskRecord::new(Uuid::new_v4(), 0, 1_000);
        t.published_unix_us = Some(1_100);
        t.confirm = ConfirmState::Acked;
        t.result_seen_unix_us = Some(5_000);
        t.result_status = Some(ResultStatus::Success);
        if executed {
            t.executions.push(Execution {
                worker: "w1".into(),
                started_unix_us: 2_000,
                finished_unix_us: Some(3_000),
                succeeded: Some(true),
            });
        }
        t
    }

    fn report_of(ledger: &Ledger) -> RunReport {
        let mut r = crate::record::tests_support::empty_report();
        r.workloads =
            vec![WorkloadMetrics::from_tasks("w", "hab.trivial", ledger.tasks(0)).report()];
        r
    }

    fn get<'a>(list: &'a [Invariant], name: &str) -> &'a Invariant {
        list.iter().find(|i| i.name == name).expect(name)
    }

    #[test]
    fn a_sound_run_holds_every_invariant() {
        let mut l = Ledger::new(1);
        l.insert(ok_task(true));
        l.insert(ok_task(true));
        let mut r = report_of(&l);
        r.final_state = Some(FinalState {
            queue_ready: 0,
            queue_consumers: 0,
            result_keys: 2,
        });
        let list = check(&r, Some(&l));
        assert_eq!(list.len(), 5);
        assert!(all_hold(&list), "{list:?}");
    }

    #[test]
    fn each_violation_is_named() {
        let mut l = Ledger::new(1);
        l.insert(ok_task(false)); // ok without an execution
        l.insert(ok_task(true));
        let mut r = report_of(&l);
        r.final_state = Some(FinalState {
            queue_ready: 0,
            queue_consumers: 0,
            result_keys: 1,
        });
        // A miscounted workload and a histogram missing a task.
        r.workloads[0].counts.lost += 1;
        if let Some(s) = r.workloads[0].stages.get_mut("latency") {
            s.count -= 1;
        }
        let list = check(&r, Some(&l));
        assert!(!all_hold(&list));
        let one = get(&list, names::ONE_OUTCOME);
        assert!(
            !one.holds && one.detail.contains("sum to 3, not its 2"),
            "{one:?}"
        );
        let h = get(&list, names::HISTOGRAM_COUNT);
        assert!(
            !h.holds && h.detail.contains("holds 1 tasks, 2 were ok"),
            "{h:?}"
        );
        let e = get(&list, names::OK_EXECUTED);
        assert!(
            !e.holds && e.detail.contains("1 ok tasks have no execution"),
            "{e:?}"
        );
        let k = get(&list, names::BACKEND_KEYS);
        assert!(!k.holds && k.detail.contains("held 1 result keys"), "{k:?}");
    }

    #[test]
    fn a_workload_limited_by_habs_overhead_did_not_measure_the_stack() {
        use crate::metrics::cpu::{CpuWindow, RoleCpu, WorkloadCpu};
        let mut l = Ledger::new(1);
        l.insert(ok_task(true));
        let mut r = report_of(&l);
        // No CPU figures (an old run): the invariant is absent.
        assert!(
            check(&r, Some(&l))
                .iter()
                .all(|i| i.name != names::STACK_MEASURED)
        );
        let cpu = |seconds: f64, producer: f64, broker: f64| {
            let window = CpuWindow {
                seconds,
                roles: [
                    (
                        "hab.producer".to_string(),
                        RoleCpu {
                            pct: producer,
                            task_pct: 0.0,
                        },
                    ),
                    (
                        "broker.node[0]".to_string(),
                        RoleCpu {
                            pct: broker,
                            task_pct: 0.0,
                        },
                    ),
                ]
                .into(),
                ..Default::default()
            };
            Some(WorkloadCpu {
                window,
                busiest: None,
                summary: None,
            })
        };
        r.workloads[0].cpu = cpu(3.0, 60.0, 99.0);
        let held = check(&r, Some(&l));
        assert!(get(&held, names::STACK_MEASURED).holds);
        r.workloads[0].cpu = cpu(3.0, 97.0, 40.0);
        let broken = check(&r, Some(&l));
        let i = get(&broken, names::STACK_MEASURED);
        assert!(!i.holds);
        assert_eq!(
            i.detail,
            "workload w: hab.producer at 97 % of a core in hab's own overhead: it measured hab rather than the stack"
        );
        // Too short to judge: no verdict either way.
        r.workloads[0].cpu = cpu(0.4, 97.0, 40.0);
        assert!(
            check(&r, Some(&l))
                .iter()
                .all(|i| i.name != names::STACK_MEASURED)
        );
    }

    #[test]
    fn a_task_path_above_its_ceiling_breaks_the_calibration() {
        let mut l = Ledger::new(1);
        l.insert(ok_task(true));
        let mut r = report_of(&l);
        r.workload_plan = serde_json::json!({"workload": [
            {"name": "w", "task": {"kind": "trivial"}, "arrival": "burst", "count": 1}
        ]});
        r.workloads[0].throughput_per_s = 1_100.0;
        let mut cal = crate::record::Calibration::default();
        cal.figures.broker_round_trip = Some(crate::record::Figure {
            value: 1_000.0,
            ..Default::default()
        });
        r.calibration = Some(cal);
        let c = check(&r, Some(&l));
        let c = get(&c, names::CEILING);
        assert!(!c.holds && c.detail.contains("10 % above"), "{c:?}");
        // Within 5 %: at the ceiling, holds.
        r.workloads[0].throughput_per_s = 1_040.0;
        let c = check(&r, Some(&l));
        assert!(get(&c, names::CEILING).holds);
        // A rate workload is not set against a burst ceiling.
        r.workload_plan["workload"][0]["arrival"] = "rate".into();
        r.workloads[0].throughput_per_s = 5_000.0;
        assert!(check(&r, Some(&l)).iter().all(|i| i.name != names::CEILING));
    }

    #[test]
    fn a_redis_side_fault_explains_missing_keys() {
        let mut l = Ledger::new(1);
        l.insert(ok_task(true));
        let mut r = report_of(&l);
        r.final_state = Some(FinalState {
            queue_ready: 0,
            queue_consumers: 0,
            result_keys: 0,
        });
        let mut row = crate::metrics::failover::analyse(
            &crate::fault::AppliedFault::kill(
                crate::fault::Role::BackendMaster,
                "backend.node[0]",
                1_000,
            ),
            "w",
            None,
            None,
            &[],
            &[],
            &[],
            None,
        );
        row.target = "backend.master".into();
        r.failover.push(row);
        let k = check(&r, Some(&l));
        let a = get(&k, names::ANATOMY);
        assert!(a.holds && a.detail.starts_with("1 faults"), "{a:?}");
        let k = get(&k, names::BACKEND_KEYS);
        assert!(k.holds && k.detail.contains("backend.master"), "{k:?}");
        // A phase seen before its fault: the clocks disagree.
        r.failover[0].proxy_down_ms = Some(-12.5);
        let list = check(&r, Some(&l));
        let a = get(&list, names::ANATOMY);
        assert!(
            !a.holds && a.detail.contains("detect seen -12.5 ms before the fault"),
            "{a:?}"
        );
        // Without a ledger only the record's checks run; without a final state, no key
        // check; without faults, no anatomy check.
        r.final_state = None;
        r.failover.clear();
        let list = check(&r, None);
        assert_eq!(list.len(), 2);
    }
}
