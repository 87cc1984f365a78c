use std::collections::{HashMap, HashSet};

use super::figures::added_histogram;
use super::join::{join, read_tasks};
use super::*;
use crate::fault::AppliedFault;
use crate::ledger::{ConfirmState, Ledger, Outcome, SeenVia, TaskRecord};
use crate::metrics::{LatencyHistogram, WorkloadMetrics};
use crate::protocol::result::ResultStatus;
use crate::record::ShardReport;
use crate::testing::assert_has;

use crate::record::{MergeReport, StackScope};

/// Writes a shard's run directory as `hab run` would (no client events).
fn write_run(dir: &Path, report: &RunReport, ledger: &Ledger) {
    export::write_all(
        dir,
        RunData {
            report,
            ledger,
            events: &[],
        },
    )
    .unwrap();
}

fn report(index: u32, count: u32) -> RunReport {
    RunReport {
        topology: serde_json::json!({"name": "standalone", "broker": {"nodes": 1}}),
        workload_plan: serde_json::json!({"name": "smoke", "workloads": [{"count": 10}]}),
        shard: Some(ShardReport {
            index,
            count,
            faults_by: 1,
            stack: StackScope::Local,
            faults: Vec::new(),
            server_events: Vec::new(),
            result_vanished_ids: None,
            start_at_unix_ms: None,
            starts: Vec::new(),
        }),
        ..crate::record::tests_support::empty_report()
    }
}

fn run(index: u32, count: u32) -> ShardRun {
    ShardRun {
        dir: PathBuf::from(format!("r{index}of{count}")),
        report: report(index, count),
        shard: Shard { index, count },
    }
}

#[test]
fn shards_of_one_run_go_together_in_index_order() {
    let runs = check_together(vec![run(3, 3), run(1, 3), run(2, 3)]).unwrap();
    let order: Vec<u32> = runs.iter().map(|r| r.shard.index).collect();
    assert_eq!(order, vec![1, 2, 3]);
}

#[test]
fn refuses_other_topologies_plans_counts_duplicates_and_gaps() {
    let mut other = run(2, 2);
    other.report.topology["broker"]["nodes"] = serde_json::json!(3);
    let e = check_together(vec![run(1, 2), other])
        .unwrap_err()
        .to_string();
    assert!(e.contains("topology differs"), "{e}");
    assert!(e.contains("topology.broker.nodes"), "{e}");

    let mut other = run(2, 2);
    other.report.workload_plan["workloads"][0]["count"] = serde_json::json!(11);
    let e = check_together(vec![run(1, 2), other])
        .unwrap_err()
        .to_string();
    assert!(e.contains("workload plan differs"), "{e}");
    assert!(e.contains("workload_plan.workloads[0].count"), "{e}");

    let e = check_together(vec![run(1, 2), run(2, 3)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("shard count differs"), "{e}");

    let e = check_together(vec![run(1, 2), run(1, 2)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("shard 1 is given twice"), "{e}");

    let e = check_together(vec![run(1, 3), run(3, 3)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("shards [2] of 3 are missing"), "{e}");

    let mut shared = run(2, 2);
    shared.report.shard.as_mut().unwrap().stack = StackScope::Shared;
    let e = check_together(vec![run(1, 2), shared])
        .unwrap_err()
        .to_string();
    assert!(e.contains("stack differs"), "{e}");
}

#[test]
fn shards_that_did_not_overlap_in_time_are_warned_about() {
    let (mut a, mut b) = (run(1, 2), run(2, 2));
    (a.report.started_unix_ms, a.report.finished_unix_ms) = (1_000, Some(60_000));
    (b.report.started_unix_ms, b.report.finished_unix_ms) = (30_000, Some(90_000));
    assert_eq!(overlap_warning(&[a, b]), None);
    let (mut a, mut b) = (run(1, 2), run(2, 2));
    (a.report.started_unix_ms, a.report.finished_unix_ms) = (1_000, Some(60_000));
    (b.report.started_unix_ms, b.report.finished_unix_ms) = (3_600_000, Some(3_660_000));
    let w = overlap_warning(&[a, b]).unwrap();
    assert!(w.contains("did not all run at the same time"), "{w}");
    assert!(w.contains("shard 2/2 ran 60 s from unix 3600"), "{w}");
}

#[test]
fn a_run_without_shard_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = load_run(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a run directory"), "{e}");
    let mut r = report(1, 1);
    r.shard = None;
    std::fs::write(dir.path().join("run.json"), serde_json::to_vec(&r).unwrap()).unwrap();
    let e = load_run(dir.path()).unwrap_err().to_string();
    assert!(e.contains("has no `shard`"), "{e}");
}

/// The shards' histograms added hold exactly the union's values: counts, min, max
/// and every quantile equal to one histogram of all values.
#[test]
fn added_histograms_equal_the_histogram_of_the_union() {
    let shard_values: [Vec<i64>; 3] = [
        (0..500).map(|i| 1_000 + i * 37).collect(),
        (0..333).map(|i| 50 + i * i).collect(),
        vec![7, 9_000_000, 123_456],
    ];
    let mut union = LatencyHistogram::new();
    let mut runs = Vec::new();
    for (k, values) in shard_values.iter().enumerate() {
        let mut h = LatencyHistogram::new();
        for &v in values {
            h.record(v);
            union.record(v);
        }
        let mut r = run(k as u32 + 1, 3);
        let mut w = WorkloadMetrics::from_tasks("trivial", "hab.trivial", &[]).report();
        w.histograms.insert("latency".into(), h.to_base64());
        r.report.workloads.push(w);
        runs.push(r);
    }
    let added = added_histogram(&runs, "trivial", "latency").unwrap();
    assert_eq!(added.len(), union.len());
    assert_eq!(added.stats(), union.stats());
    for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(added.quantile_us(q), union.quantile_us(q), "q={q}");
    }
}

fn write_shard(dir: &Path, shard: Shard, ids: &[Uuid]) {
    let mut ledger = Ledger::new(1);
    for (k, id) in ids.iter().enumerate() {
        let t0 = 1_800_000_000_000_000 + k as i64 * 1000;
        let mut t = TaskRecord::new(*id, 0, t0);
        t.published_unix_us = Some(t0 + 5);
        t.confirm = ConfirmState::Acked;
        ledger.insert(t);
    }
    let mut r = report(shard.index, shard.count);
    r.workloads =
        vec![WorkloadMetrics::from_tasks("trivial", "hab.trivial", ledger.tasks(0)).report()];
    std::fs::create_dir_all(dir.join("executions")).unwrap();
    write_run(dir, &r, &ledger);
}

#[test]
fn task_ids_must_be_disjoint_and_name_their_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 });
    let (d1, d2) = (tmp.path().join("s1"), tmp.path().join("s2"));
    // A task of shard 2 in shard 1's directory.
    write_shard(&d1, a, &[a.task_id(), b.task_id()]);
    write_shard(&d2, b, &[b.task_id()]);
    let runs = vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()];
    let e = join(&runs, &["trivial".into()]).unwrap_err().to_string();
    assert_has(&e, &["has the id of shard 2/2, not of shard 1/2"]);

    // The same id with different records in two directories.
    let id = a.task_id();
    write_shard(&d1, a, &[id]);
    write_shard(&d2, a, &[a.task_id(), id]);
    let mut runs = vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()];
    runs[1].shard = a;
    let e = join(&runs, &["trivial".into()]).unwrap_err().to_string();
    assert!(e.contains(&format!("task {id} is in")), "{e}");

    // Disjoint ids join to the union, lost tasks and all.
    let ids1 = [a.task_id(), a.task_id()];
    let ids2 = [b.task_id()];
    write_shard(&d1, a, &ids1);
    write_shard(&d2, b, &ids2);
    let runs = vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()];
    let j = join(&runs, &["trivial".into()]).unwrap();
    let got: HashSet<Uuid> = j.ledger.tasks(0).iter().map(|t| t.id).collect();
    let want: HashSet<Uuid> = ids1.iter().chain(&ids2).copied().collect();
    assert_eq!(got, want);
    assert!(
        j.ledger
            .tasks(0)
            .iter()
            .all(|t| t.classify().outcome == Outcome::Lost)
    );
}

#[test]
fn tasks_frozen_at_a_drain_deadline_read_back_as_they_were_written() {
    use crate::ledger::AtDeadline;
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::new(1);
    let at = |purged, read_failed| {
        Some(Box::new(AtDeadline {
            at_unix_us: 5_000,
            purged,
            read_failed,
        }))
    };
    let marks = [at(true, false), at(false, true), None];
    for (k, mark) in marks.iter().enumerate() {
        let mut t = TaskRecord::new(Uuid::new_v4(), 0, 1_000 + k as i64);
        t.published_unix_us = Some(1_100);
        t.confirm = ConfirmState::Acked;
        t.at_deadline = mark.clone();
        // The last task is of a second repetition.
        t.repetition = 1 + k as u32 / 2;
        ledger.insert(t);
    }
    let mut r = report(1, 1);
    r.workloads = vec![WorkloadMetrics::from_tasks("w", "hab.trivial", ledger.tasks(0)).report()];
    export::write_all(
        dir.path(),
        RunData {
            report: &r,
            ledger: &ledger,
            events: &[],
        },
    )
    .unwrap();
    let names = HashMap::from([("w".to_string(), 0)]);
    let rows = read_tasks(&dir.path().join("tasks.csv"), &names).unwrap();
    let outcomes: Vec<Outcome> = rows.iter().map(|(_, c)| c.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::UnfinishedQueued, Outcome::Lost, Outcome::Lost]
    );
    for ((t, csv), mark) in rows.iter().zip(&marks) {
        assert_eq!(&t.at_deadline, mark);
        assert_eq!(t.classify().outcome, csv.outcome);
    }
    let repetitions: Vec<u32> = rows.iter().map(|(t, _)| t.repetition).collect();
    assert_eq!(repetitions, [1, 1, 2]);
    // A tasks.csv written before deadlines, failure reasons and repetitions were
    // recorded has no such columns.
    let text = std::fs::read_to_string(dir.path().join("tasks.csv")).unwrap();
    let old: String = text
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            format!("{}\n", f[..f.len() - 5].join(","))
        })
        .collect();
    std::fs::write(dir.path().join("tasks.csv"), old).unwrap();
    let rows = read_tasks(&dir.path().join("tasks.csv"), &names).unwrap();
    assert!(rows.iter().all(|(t, _)| t.at_deadline.is_none()));
    assert!(rows.iter().all(|(t, _)| t.repetition == 1));
}

/// A shard directory with `tasks` (each executed `executions` times, per the side
/// channel file written beside them) and shard 1's fault.
fn write_shard_tasks(
    dir: &Path,
    shard: Shard,
    stack: StackScope,
    tasks: &[(i64, Option<i64>, bool)],
    fault_at: i64,
) -> Vec<Uuid> {
    use crate::protocol::side_channel::{self, SideEvent, SideEventKind};
    let mut ledger = Ledger::new(1);
    let mut side = String::from(side_channel::HEADER);
    side.push('\n');
    let mut ids = Vec::new();
    for &(intended, seen, ran_here) in tasks {
        let mut t = TaskRecord::new(shard.task_id(), 0, intended);
        ids.push(t.id);
        t.published_unix_us = Some(intended + 10);
        t.confirmed_unix_us = Some(intended + 20);
        t.confirm = ConfirmState::Acked;
        if let Some(seen) = seen {
            t.result_seen_unix_us = Some(seen);
            t.result_status = Some(ResultStatus::Success);
            t.seen_via = Some(SeenVia::Notification);
        }
        if seen.is_some() && ran_here {
            for (kind, at) in [
                (SideEventKind::Start, intended + 100),
                (SideEventKind::Finish { succeeded: true }, intended + 200),
            ] {
                let ev = SideEvent {
                    kind,
                    unix_us: at,
                    task_id: t.id,
                    worker: "w1".into(),
                    detail: String::new(),
                };
                side.push_str(&side_channel::format(&ev));
            }
        }
        ledger.insert(t);
    }
    std::fs::create_dir_all(dir.join("executions")).unwrap();
    std::fs::write(dir.join("executions/w1.csv"), side).unwrap();
    let mut names = Vec::new();
    let events =
        side_channel::parse_all(&std::fs::read_to_string(dir.join("executions/w1.csv")).unwrap());
    for ev in &events {
        ledger.merge_event(ev, &mut names);
    }
    let mut r = report(shard.index, shard.count);
    r.shard.as_mut().unwrap().stack = stack;
    if shard.applies_faults() {
        r.shard.as_mut().unwrap().faults = vec![AppliedFault::broker_kill(
            fault_at,
            fault_at + 1_000_000,
            None,
            fault_at + 2_000_000,
        )];
    }
    r.workloads =
        vec![WorkloadMetrics::from_tasks("rate", "hab.trivial", ledger.tasks(0)).report()];
    write_run(dir, &r, &ledger);
    ids
}

/// Shard 1's fault is analysed on shard 1's tasks when each shard had its own stack,
/// and on every shard's tasks when they shared one: shard 2's task lost in the
/// fault's window counts only in the second case.
#[test]
fn failover_rows_follow_the_stack_scope() {
    let s = 1_000_000;
    let t0 = 1_800_000_000 * s;
    let at = t0 + 5 * s;
    let ok = |k: i64| (t0 + k * 100_000, Some(t0 + k * 100_000 + 2_000), true);
    for (stack, lost, tasks) in [(StackScope::Local, 0, 10), (StackScope::Shared, 1, 20)] {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 });
        let (d1, d2) = (tmp.path().join("s1"), tmp.path().join("s2"));
        // Tasks from 0.5 s before the fault to 1.5 s after it, every 0.1 s.
        let mine: Vec<_> = (0..20).filter(|k| k % 2 == 0).map(|k| ok(45 + k)).collect();
        let mut theirs: Vec<_> = (0..20).filter(|k| k % 2 == 1).map(|k| ok(45 + k)).collect();
        theirs[3] = (t0 + 52 * 100_000, None, false);
        let _ = write_shard_tasks(&d1, a, stack, &mine, at);
        let _ = write_shard_tasks(&d2, b, stack, &theirs, at);
        let runs = check_together(vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()]).unwrap();
        let (merged, joined) = merged_report(&runs).unwrap();
        assert_eq!(joined.ledger.tasks(0).len(), 20);
        assert_eq!(merged.workloads[0].counts.count, 20);
        assert_eq!(merged.workloads[0].counts.lost, 1);
        assert_eq!(merged.failover.len(), 1, "{stack:?}");
        let row = &merged.failover[0];
        assert_eq!(row.lost, lost, "{stack:?}");
        // The window: intended from 1 s before the fault until healthy (2 s after).
        assert_eq!(row.tasks, tasks, "{stack:?}");
        assert_eq!(merged.merged.as_ref().unwrap().stack, stack);
    }
}

/// Shards sharing workers: shard 2's worker ran two tasks of shard 1, which shard 1
/// saw as ok without an execution and as lost (its own side channel has neither).
/// The merge replays every side channel: the ok task has its execution (its queue
/// wait is in the histogram), the other ran (result lost, not lost). Too few
/// executions is still an error.
#[test]
fn executions_in_another_shards_side_channel_count() {
    use crate::protocol::side_channel::{self, SideEvent, SideEventKind};
    let t0 = 1_800_000_000_000_000;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 });
    let (d1, d2) = (tmp.path().join("s1"), tmp.path().join("s2"));
    let stack = StackScope::Shared;
    let ids1 = write_shard_tasks(
        &d1,
        a,
        stack,
        &[
            (t0, Some(t0 + 900), true),
            (t0, Some(t0 + 950), false),
            (t0, None, false),
        ],
        t0,
    );
    let _ = write_shard_tasks(&d2, b, stack, &[(t0, Some(t0 + 800), true)], t0);
    let mut other = String::new();
    for (id, kind, at) in [
        (ids1[1], SideEventKind::Start, t0 + 40),
        (ids1[1], SideEventKind::Finish { succeeded: true }, t0 + 45),
        (ids1[2], SideEventKind::Start, t0 + 50),
    ] {
        other.push_str(&side_channel::format(&SideEvent {
            kind,
            unix_us: at,
            task_id: id,
            worker: "w2".into(),
            detail: String::new(),
        }));
    }
    std::fs::write(d2.join("executions/w2.csv"), other).unwrap();
    let runs = check_together(vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()]).unwrap();
    let shard_queue_waits: u64 = runs
        .iter()
        .map(|r| r.report.workloads[0].stages["queue_wait"].count)
        .sum();
    assert_eq!(
        shard_queue_waits, 2,
        "the shards saw two executions of ok tasks"
    );
    let (merged, _) = merged_report(&runs).unwrap();
    let w = &merged.workloads[0];
    assert_eq!(
        (w.counts.ok, w.counts.lost, w.counts.result_lost),
        (3, 0, 1)
    );
    assert_eq!(
        merged.merged.as_ref().unwrap().executions_from_other_shards,
        2
    );
    assert_eq!(w.stages["queue_wait"].count, 3);
    assert_eq!(w.stages["latency"].count, 3);

    // A shard whose executions/ went missing: its tasks.csv says more ran.
    std::fs::remove_dir_all(d1.join("executions")).unwrap();
    let runs = check_together(vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()]).unwrap();
    let e = merged_report(&runs).unwrap_err().to_string();
    assert_has(&e, &["is a shard's executions/ directory missing?"]);
}

#[test]
fn the_report_note_names_the_clock_dependence() {
    let m = MergeReport {
        count: 2,
        faults_by: 1,
        stack: StackScope::Local,
        shards: Vec::new(),
        same_task_twice: 0,
        executions_from_other_shards: 0,
        start_at_unix_ms: None,
        start_skew: Vec::new(),
    };
    let note = crate::report::merged_note(&m);
    assert!(note.contains("Latency is measured on one host per task"));
    assert!(note.contains("hosts' clocks"));
    assert!(note.contains("shard 1 applied the faults to its stack only"));
}

/// Warnings about the shards go to the reporter given, with the text `hab merge` prints.
#[test]
fn a_shard_not_complete_is_reported_through_the_reporter() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 });
    let (d1, d2) = (tmp.path().join("s1"), tmp.path().join("s2"));
    write_shard(&d1, a, &[a.task_id()]);
    write_shard(&d2, b, &[b.task_id()]);
    let path = d2.join("run.json");
    let mut r: RunReport = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    r.status = RunStatus::Interrupted;
    std::fs::write(&path, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    let captured = crate::progress::Captured::default();
    let outcome = merge(&[d1, d2.clone()], &tmp.path().join("out"), &captured).unwrap();
    assert_eq!(outcome.report.status, RunStatus::Interrupted);
    assert_eq!(
        captured.lines(),
        vec![format!(
            "hab merge: warning: shard 2/2 ({}) is Interrupted; the merged run is not complete either",
            d2.display()
        )]
    );
}

/// The shards' starts (run.json `shard.starts`) become the merged run's start skew, and a
/// shard that did not meet the others is warned about.
#[test]
fn the_merge_measures_the_start_skew_and_warns_of_a_missed_meeting() {
    use crate::record::{SyncKind, SyncOutcome, WorkloadStart};
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 });
    let (d1, d2) = (tmp.path().join("s1"), tmp.path().join("s2"));
    write_shard(&d1, a, &[a.task_id()]);
    write_shard(&d2, b, &[b.task_id()]);
    for (d, t0, outcome) in [
        (&d1, 1_800_000_000_000_000, SyncOutcome::Met),
        (&d2, 1_800_000_000_250_000, SyncOutcome::Late),
    ] {
        let path = d.join("run.json");
        let mut r: RunReport = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let s = r.shard.as_mut().unwrap();
        s.start_at_unix_ms = Some(1_800_000_000_000);
        s.starts = vec![WorkloadStart {
            workload: "trivial".into(),
            repetition: 1,
            sync: SyncKind::StartAt,
            outcome,
            waited_ms: 0.0,
            late_ms: (outcome == SyncOutcome::Late).then_some(250.0),
            arrived: None,
            error: None,
            t0_unix_us: t0,
            first_published_unix_us: Some(t0 + 5),
        }];
        std::fs::write(&path, serde_json::to_vec_pretty(&r).unwrap()).unwrap();
    }
    let captured = crate::progress::Captured::default();
    let outcome = merge(&[d1, d2], &tmp.path().join("out"), &captured).unwrap();
    let m = outcome.report.merged.unwrap();
    assert_eq!(m.start_at_unix_ms, Some(1_800_000_000_000));
    assert_eq!(m.start_skew.len(), 1);
    assert_eq!(m.start_skew[0].skew_ms, 250.0);
    assert_eq!(
        (m.start_skew[0].first_shard, m.start_skew[0].last_shard),
        (1, 2)
    );
    assert_eq!(
        captured.lines(),
        vec![
            "hab merge: warning: workload trivial did not start together: shard 2 was 250 ms late for the start instant; its start skew is 250.0 ms"
                .to_string()
        ]
    );
    let md = std::fs::read_to_string(outcome.dir.join("report.md")).unwrap();
    assert_has(
        &md,
        &["Residual start skew per workload", "- trivial: 250.0 ms"],
    );
}
