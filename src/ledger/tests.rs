use super::*;
use crate::event::assert_serde_names;

fn rec() -> TaskRecord {
    let mut t = TaskRecord::new(Uuid::new_v4(), 0, 1_000);
    t.published_unix_us = Some(1_010);
    t
}

fn exec(worker: &str, start: i64, finish: Option<i64>) -> Execution {
    Execution {
        worker: worker.into(),
        started_unix_us: start,
        finished_unix_us: finish,
        succeeded: finish.map(|_| true),
    }
}

/// A ledger of one workload holding one task ([`rec`]), and that task's id.
fn ledger_of_one() -> (Ledger, Uuid) {
    let mut l = Ledger::new(1);
    let t = rec();
    let id = t.id;
    l.insert(t);
    (l, id)
}

/// A side-channel event of `worker` about task `task_id`.
fn side(kind: SideEventKind, unix_us: i64, task_id: Uuid, worker: &str, detail: &str) -> SideEvent {
    SideEvent {
        kind,
        unix_us,
        task_id,
        worker: worker.into(),
        detail: detail.into(),
    }
}

#[test]
fn ok_when_success_seen() {
    let mut t = rec();
    t.confirm = ConfirmState::Acked;
    t.executions.push(exec("w1", 1_100, Some(1_200)));
    t.result_seen_unix_us = Some(1_300);
    t.result_status = Some(ResultStatus::Success);
    assert_eq!(
        t.classify(),
        Classification {
            outcome: Outcome::Ok,
            duplicated: false
        }
    );
    assert_eq!(t.latency_us(), Some(300));
}

#[test]
fn the_first_final_result_seen_settles_the_task() {
    // The Redis client passes on only final states (SUCCESS, FAILURE, REVOKED): the
    // earliest one seen is the task's result and its time the latency's end.
    let id = Uuid::new_v4();
    let mut ledger = Ledger::new(1);
    ledger.insert(TaskRecord::new(id, 0, 1_000));
    ledger.result_seen(&id, 9_000, ResultStatus::Success, SeenVia::Notification);
    let t = &ledger.tasks(0)[0];
    assert_eq!(t.classify().outcome, Outcome::Ok);
    assert_eq!(t.latency_us(), Some(8_000));
    // REVOKED (a revoked task, or one that expired before it ran) is over, but
    // neither a success nor the task's own failure.
    let id = Uuid::new_v4();
    let mut ledger = Ledger::new(1);
    ledger.insert(TaskRecord::new(id, 0, 1_000));
    ledger.result_seen(&id, 2_000, ResultStatus::Revoked, SeenVia::Read);
    assert_eq!(ledger.tasks(0)[0].classify().outcome, Outcome::Revoked);
}

#[test]
fn failure_result_is_failed() {
    let mut t = rec();
    t.confirm = ConfirmState::Acked;
    t.executions.push(exec("w1", 1_100, Some(1_200)));
    t.result_seen_unix_us = Some(1_300);
    t.result_status = Some(ResultStatus::Failure);
    assert_eq!(t.classify().outcome, Outcome::Failed);
}

#[test]
fn confirmed_never_executed_is_lost() {
    let mut t = rec();
    t.confirm = ConfirmState::Acked;
    assert_eq!(t.classify().outcome, Outcome::Lost);
    t.confirm = ConfirmState::NotRequested;
    assert_eq!(t.classify().outcome, Outcome::Lost);
}

#[test]
fn unconfirmed_never_executed() {
    for c in [
        ConfirmState::Nacked,
        ConfirmState::Failed,
        ConfirmState::Pending,
    ] {
        let mut t = rec();
        t.confirm = c;
        assert_eq!(t.classify().outcome, Outcome::Unconfirmed, "{c:?}");
    }
}

#[test]
fn refused_and_given_up_tasks_are_their_own_outcomes_and_settled() {
    for (c, o) in [
        (ConfirmState::Refused, Outcome::Refused),
        (ConfirmState::GaveUp, Outcome::GaveUp),
    ] {
        let mut t = rec();
        t.confirm = c;
        assert!(t.settled(), "{c:?}: the producer waits for nothing");
        assert_eq!(t.classify().outcome, o);
        assert_eq!(c.as_str(), o.as_str());
        // A copy that reached the broker anyway and ran: its result decides.
        t.executions.push(exec("w1", 1_100, Some(1_200)));
        assert_eq!(t.classify().outcome, Outcome::ResultLost);
        t.result_status = Some(ResultStatus::Success);
        assert_eq!(t.classify().outcome, Outcome::Ok);
    }
    let mut c = OutcomeCounts::default();
    for o in [Outcome::Refused, Outcome::GaveUp, Outcome::Refused] {
        c.add(Classification {
            outcome: o,
            duplicated: false,
        });
    }
    assert_eq!((c.count, c.refused, c.gave_up, c.unconfirmed), (3, 2, 1, 0));
}

#[test]
fn executed_without_result_is_result_lost() {
    let mut t = rec();
    t.confirm = ConfirmState::Acked;
    t.executions.push(exec("w1", 1_100, Some(1_200)));
    assert_eq!(t.classify().outcome, Outcome::ResultLost);
    // Even when the publish was never confirmed: it ran, so it arrived.
    t.confirm = ConfirmState::Pending;
    assert_eq!(t.classify().outcome, Outcome::ResultLost);
}

#[test]
fn two_executions_are_duplicated_whatever_the_outcome() {
    let mut t = rec();
    t.confirm = ConfirmState::Acked;
    t.executions.push(exec("w1", 1_100, None));
    t.executions.push(exec("w2", 1_500, Some(1_600)));
    assert_eq!(
        t.classify(),
        Classification {
            outcome: Outcome::ResultLost,
            duplicated: true
        }
    );
    t.result_status = Some(ResultStatus::Success);
    t.result_seen_unix_us = Some(1_700);
    assert_eq!(
        t.classify(),
        Classification {
            outcome: Outcome::Ok,
            duplicated: true
        }
    );
    assert_eq!(&*t.main_execution().unwrap().worker, "w2");
}

#[test]
fn counts_add_up() {
    let mut c = OutcomeCounts::default();
    for o in [
        Outcome::Ok,
        Outcome::Ok,
        Outcome::Lost,
        Outcome::Unconfirmed,
    ] {
        c.add(Classification {
            outcome: o,
            duplicated: o == Outcome::Ok,
        });
    }
    assert_eq!(c.count, 4);
    assert_eq!(c.ok, 2);
    assert_eq!(c.lost, 1);
    assert_eq!(c.unconfirmed, 1);
    assert_eq!(c.duplicated, 2);
    assert_eq!(
        c.ok + c.failed + c.lost + c.result_lost + c.unconfirmed,
        c.count
    );
}

#[test]
fn first_result_sighting_wins_and_unknown_ids_are_counted() {
    let (mut l, id) = ledger_of_one();
    l.result_seen(&id, 5, ResultStatus::Success, SeenVia::Read);
    l.result_seen(&id, 9, ResultStatus::Failure, SeenVia::Notification);
    let t = &l.tasks(0)[0];
    assert_eq!(t.result_seen_unix_us, Some(5));
    assert_eq!(t.result_status, Some(ResultStatus::Success));
    l.result_seen(&Uuid::new_v4(), 5, ResultStatus::Success, SeenVia::Read);
    assert_eq!(l.unknown_results(), 1);
}

#[test]
fn ids_sharing_their_low_bits_are_told_apart() {
    // Three ids with the same low 64 bits (the index's key), in two workloads, and a
    // fourth that shares them but is not in the ledger.
    let ids: Vec<Uuid> = (1..=4).map(|hi| Uuid::from_u64_pair(hi, 0xabc)).collect();
    let mut l = Ledger::new(2);
    l.insert(TaskRecord::new(ids[0], 0, 1_000));
    l.insert(TaskRecord::new(ids[1], 1, 1_000));
    l.insert(TaskRecord::new(ids[2], 0, 1_000));
    for (i, id) in ids[..3].iter().enumerate() {
        l.result_seen(id, 10 + i as i64, ResultStatus::Success, SeenVia::Read);
    }
    l.result_seen(&ids[3], 99, ResultStatus::Success, SeenVia::Read);
    assert_eq!(l.tasks(0)[0].result_seen_unix_us, Some(10));
    assert_eq!(l.tasks(1)[0].result_seen_unix_us, Some(11));
    assert_eq!(l.tasks(0)[1].result_seen_unix_us, Some(12));
    assert_eq!(l.unknown_results(), 1);
    let start = |id: Uuid| side(SideEventKind::Start, 500, id, "w1", "");
    assert!(l.merge_event(&start(ids[2]), &mut Vec::new()));
    assert!(!l.merge_event(&start(ids[3]), &mut Vec::new()));
    assert_eq!(l.tasks(0)[1].executions.len(), 1);
    assert!(l.tasks(0)[0].executions.is_empty());
}

#[test]
fn the_unsettled_count_follows_results_nacks_and_republishes() {
    let mut l = Ledger::new(2);
    let ids: Vec<Uuid> = (0..4)
        .map(|_| {
            let t = rec();
            let id = t.id;
            l.insert(t);
            id
        })
        .collect();
    let mut other = rec();
    other.workload = 1;
    l.insert(other);
    assert_eq!((l.unsettled(0), l.unsettled(1)), (4, 1));
    l.result_seen(&ids[0], 5, ResultStatus::Success, SeenVia::Notification);
    l.result_seen(&ids[0], 6, ResultStatus::Success, SeenVia::Read); // seen twice
    assert_eq!(l.unsettled(0), 3);
    // Nacked settles it; republishing makes it pending again.
    l.update(0, 1, |t| t.confirm = ConfirmState::Nacked);
    assert_eq!(l.unsettled(0), 2);
    l.update(0, 1, |t| t.confirm = ConfirmState::Pending);
    assert_eq!(l.unsettled(0), 3);
    l.update(0, 2, |t| t.confirm = ConfirmState::Failed);
    l.result_seen(&ids[3], 7, ResultStatus::Failure, SeenVia::Read);
    assert_eq!(l.unsettled(0), 1);
    // The count always equals a scan of the records.
    let scan = l.tasks(0).iter().filter(|t| t.waiting()).count();
    assert_eq!(l.unsettled(0), scan);
    assert_eq!(l.unsettled(1), 1);
}

#[test]
fn merge_pairs_start_and_finish_per_worker() {
    let (mut l, id) = ledger_of_one();
    let ev = |kind, at, w: &str| side(kind, at, id, w, "");
    let events = vec![
        ev(SideEventKind::Start, 10, "w1"),
        ev(SideEventKind::Start, 30, "w2"),
        ev(SideEventKind::Finish { succeeded: true }, 40, "w2"),
        ev(SideEventKind::Reject, 50, "w2"),
    ];
    assert_eq!(l.merge_executions(&events), 2);
    // Merging again replaces rather than appends.
    assert_eq!(l.merge_executions(&events), 2);
    let t = &l.tasks(0)[0];
    assert_eq!(t.executions.len(), 2);
    assert_eq!(t.executions[0].finished_unix_us, None);
    assert_eq!(t.executions[1].finished_unix_us, Some(40));
    assert!(t.classify().duplicated);
}

#[test]
fn outstanding_excludes_seen_and_unpublished() {
    let mut l = Ledger::new(1);
    let mut a = rec();
    a.result_seen_unix_us = Some(2_000);
    let b = rec();
    let mut c = TaskRecord::new(Uuid::new_v4(), 0, 1_000);
    c.published_unix_us = None;
    let bid = b.id;
    l.insert(a);
    l.insert(b);
    l.insert(c);
    assert_eq!(l.outstanding_ids(0, 5_000, usize::MAX), vec![bid]);
    assert!(l.outstanding_ids(0, 5_000, 0).is_empty());
    assert!(l.outstanding_ids(0, 1_000, usize::MAX).is_empty());
}

#[test]
fn an_earlier_workloads_unresolved_tasks_do_not_starve_the_current_ones_reads() {
    // Workload 0 left more unresolved tasks than one bounded read takes; workload 1
    // (being driven) has three outstanding: a read of at most 5 must cover them.
    let mut l = Ledger::new(2);
    for _ in 0..8 {
        l.insert(rec());
    }
    let current: Vec<Uuid> = (0..3)
        .map(|_| {
            let mut t = rec();
            t.workload = 1;
            t.published_unix_us = Some(2_000);
            let id = t.id;
            l.insert(t);
            id
        })
        .collect();
    assert_eq!(l.outstanding_ids(1, 5_000, 5), current);
    assert_eq!(l.outstanding_ids(0, 5_000, 5).len(), 5);
}

#[test]
fn the_earliest_sighting_wins_even_when_it_reaches_the_ledger_last() {
    // A reconciliation read (stamped 9) overtook a notification stamped 5 that was
    // still queued for the ledger.
    let (mut l, id) = ledger_of_one();
    l.result_seen(&id, 9, ResultStatus::Success, SeenVia::Read);
    l.result_seen(&id, 5, ResultStatus::Success, SeenVia::Notification);
    let t = &l.tasks(0)[0];
    assert_eq!(t.result_seen_unix_us, Some(5));
    assert_eq!(t.seen_via, Some(SeenVia::Notification));
    assert_eq!(l.unsettled(0), 0);
}

#[test]
fn the_side_channel_says_why_a_task_failed() {
    let mut l = Ledger::new(1);
    let (a, b, c, d) = (rec(), rec(), rec(), rec());
    let ids = [a.id, b.id, c.id, d.id];
    for t in [a, b, c, d] {
        l.insert(t);
    }
    let ev = |kind, id, detail: &str| side(kind, 1, id, "w1", detail);
    let mut names = Vec::new();
    for e in [
        ev(SideEventKind::Start, ids[0], "hab.factorial"),
        ev(
            SideEventKind::Finish { succeeded: false },
            ids[0],
            "TypeError",
        ),
        ev(SideEventKind::Refused, ids[1], "worker_lost"),
        ev(SideEventKind::Reject, ids[2], "not_registered"),
        ev(SideEventKind::Start, ids[3], "hab.trivial"),
        ev(SideEventKind::Finish { succeeded: true }, ids[3], "ok"),
    ] {
        l.merge_event(&e, &mut names);
    }
    assert_eq!(l.failure_of(&ids[0]), Some("TypeError"));
    assert_eq!(l.failure_of(&ids[1]), Some("refused:worker_lost"));
    assert_eq!(l.failure_of(&ids[2]), Some("not_registered"));
    assert_eq!(l.failure_of(&ids[3]), None);
    l.clear_executions();
    assert_eq!(l.failure_of(&ids[0]), None);
}

#[test]
fn confirm_states_and_ways_seen_parse_from_their_names_which_are_serdes() {
    assert_serde_names(
        &ConfirmState::ALL,
        ConfirmState::as_str,
        ConfirmState::parse,
    );
    assert_serde_names(&SeenVia::ALL, SeenVia::as_str, SeenVia::parse);
    assert_eq!(ConfirmState::parse("not-requested"), None);
    assert_eq!(SeenVia::parse(""), None);
}

#[test]
fn outcomes_parse_from_their_names() {
    assert_serde_names(&Outcome::ALL, Outcome::as_str, Outcome::parse);
    assert_eq!(Outcome::parse("unfinished"), None);
    let mut c = OutcomeCounts::default();
    for o in Outcome::ALL {
        c.add(Classification {
            outcome: o,
            duplicated: false,
        });
    }
    assert_eq!(c.count, Outcome::ALL.len() as u64);
    assert_eq!((c.unfinished(), c.unknown), (2, 1));
}

#[test]
fn executions_share_their_worker_name_and_merging_again_replaces() {
    let (mut l, id) = ledger_of_one();
    let ev = |kind, us, worker: &str| side(kind, us, id, worker, "");
    let events = vec![
        ev(SideEventKind::Start, 20, "w1"),
        ev(SideEventKind::Start, 10, "w1"),
        ev(SideEventKind::Finish { succeeded: true }, 30, "w1"),
    ];
    assert_eq!(l.merge_executions(&events), 2);
    let ex = &l.tasks(0)[0].executions;
    assert_eq!(ex.len(), 2);
    assert!(std::sync::Arc::ptr_eq(&ex[0].worker, &ex[1].worker));
    assert_eq!(ex[0].started_unix_us, 10);
    // Merging the same events again gives the same executions, not twice as many.
    assert_eq!(l.merge_executions(&events), 2);
    assert_eq!(l.tasks(0)[0].executions.len(), 2);
}
