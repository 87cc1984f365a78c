use super::*;
use crate::config::clients::{BackendAccess, BrokerAccess};
use crate::fault::FaultKind;
use crate::ledger::{ConfirmState, Execution};
use crate::protocol::result::ResultStatus;
use crate::testing::assert_has;
use uuid::Uuid;

const S: i64 = 1_000_000;
const T0: i64 = 1_800_000_000 * S;

fn task(intended: i64, seen: Option<i64>, executions: usize) -> TaskRecord {
    let mut t = TaskRecord::new(Uuid::new_v4(), 0, intended);
    t.published_unix_us = Some(intended + 10);
    t.confirm = ConfirmState::Acked;
    for k in 0..executions {
        t.executions.push(Execution {
            worker: "w1".into(),
            started_unix_us: intended + 100 + k as i64,
            finished_unix_us: Some(intended + 200 + k as i64),
            succeeded: Some(true),
        });
    }
    if let Some(s) = seen {
        t.result_seen_unix_us = Some(s);
        t.result_status = Some(ResultStatus::Success);
    }
    t
}

fn fault(at: i64) -> AppliedFault {
    AppliedFault::broker_kill(at, at + 5 * S, None, at + 8 * S)
}

#[test]
fn anatomy_switch_time_outage_and_losses() {
    let at = T0 + 10 * S;
    // One task every 100 ms; results take 2 ms, except during a 1.5 s outage after
    // the fault, when tasks wait and complete at at + 1.5 s.
    let mut tasks = Vec::new();
    for i in 0..200 {
        let intended = T0 + i * 100_000;
        let seen = if intended >= at && intended < at + 1_500_000 {
            at + 1_500_000 + (intended - at) / 100
        } else {
            intended + 2_000
        };
        tasks.push(task(intended, Some(seen), 1));
    }
    // One task lost right at the fault, one duplicated, one republished.
    tasks.push(task(at - 50_000, None, 0));
    tasks.push(task(at + 1, Some(at + 1_600_000), 2));
    tasks.last_mut().unwrap().republished = 1;

    let events = vec![
        ClientEvent {
            at_unix_us: at - S,
            source: "producer".into(),
            kind: ClientEventKind::Error,
            detail: "before the fault: ignored".into(),
        },
        ClientEvent {
            at_unix_us: at + 20_000,
            source: "producer".into(),
            kind: ClientEventKind::Error,
            detail: "connection reset".into(),
        },
        ClientEvent {
            at_unix_us: at + 900_000,
            source: "producer".into(),
            kind: ClientEventKind::Reconnected,
            detail: String::new(),
        },
    ];
    let server = vec![
        ServerEvent {
            at_unix_us: at + 250_000,
            kind: ServerEventKind::ProxyDown,
            detail: "broker_nodes/rabbit0".into(),
        },
        ServerEvent {
            at_unix_us: at + 300_000,
            kind: ServerEventKind::ProxyUp,
            detail: "broker_nodes/rabbit1".into(),
        },
    ];
    let row = analyse(
        &fault(at),
        "failover",
        None,
        None,
        &tasks,
        &events,
        &server,
        None,
    );
    assert_eq!(row.first_client_error_ms, Some(20.0));
    assert_eq!(row.proxy_down_ms, Some(250.0));
    assert_eq!(row.proxy_up_ms, Some(300.0));
    assert_eq!(row.client_reconnected_ms, Some(900.0));
    assert_eq!(row.sentinel_switch_ms, None);
    assert_eq!(row.restored_ms, Some(5000.0));
    // The first task published after the fault is the one intended at the fault
    // (published 10 µs later); it completed at at + 1.5 s.
    assert_eq!(row.switch_time_ms, Some(1500.0));
    // Last completion before the fault: intended at - 100 ms, seen at - 98 ms; the next
    // one at at + 1.5 s.
    assert_eq!(row.outage_ms, Some(1598.0));
    assert_eq!(row.lost, 1);
    assert_eq!(row.duplicated, 1);
    assert_eq!(row.republished, 1);
    // Window: at - 1 s .. at + 8 s (healthy): 90 regular tasks + 2 extra.
    assert_eq!(row.tasks, 92);
}

#[test]
fn switch_time_is_the_earliest_completion_not_the_earliest_publish() {
    let at = T0 + 10 * S;
    // Published just after the fault onto the dead node, redelivered and completed at
    // +4 s; tasks published later completed from +1.2 s on: new work flowed at +1.2 s.
    let mut stuck = task(at, Some(at + 4 * S), 2);
    stuck.executions[0].finished_unix_us = None;
    let tasks = vec![
        task(at - S, Some(at - S + 2_000), 1),
        stuck,
        task(at + 500_000, Some(at + 1_300_000), 1),
        task(at + 600_000, Some(at + 1_200_000), 1),
        task(at + 700_000, Some(at + 1_250_000), 1),
    ];
    let row = analyse(&fault(at), "w", None, None, &tasks, &[], &[], None);
    assert_eq!(row.switch_time_ms, Some(1200.0));
    assert_eq!(
        switch_time_ms(&tasks, at, None),
        row.switch_time_ms,
        "the row's figure is the one definition's"
    );
}

#[test]
fn a_task_published_after_the_next_fault_does_not_count_for_this_one() {
    let at = T0 + 10 * S;
    let next = at + 2 * S;
    // Nothing published in [fault, next fault) completed; a task published after the
    // next fault did, soon after it.
    let tasks = vec![
        task(at - S, Some(at - S + 2_000), 1),
        task(at + 100_000, None, 0),
        task(next + 500_000, Some(next + 600_000), 1),
    ];
    let row = analyse(&fault(at), "w", Some(next), None, &tasks, &[], &[], None);
    assert_eq!(row.switch_time_ms, None, "{row:?}");
    // One published before the next fault completing later than the one published
    // after it: the earlier fault's switch time is the former.
    let mut more = tasks.clone();
    more.push(task(at + 1_900_000, Some(next + 900_000), 1));
    let row = analyse(&fault(at), "w", Some(next), None, &more, &[], &[], None);
    assert_eq!(row.switch_time_ms, Some(2900.0));
}

#[test]
fn a_fault_that_did_not_take_effect_has_no_switch_time() {
    let at = T0 + 5 * S;
    let tasks = vec![
        task(at - S, Some(at - S + 1000), 1),
        task(at + 10, Some(at + 2_000), 1),
    ];
    let mut f = fault(at);
    assert_eq!(
        analyse(&f, "w", None, None, &tasks, &[], &[], None).switch_time_ms,
        Some(2.0)
    );
    f.kind = FaultKind::Failover;
    f.not_applied = Some("SENTINEL FAILOVER was accepted but no replica was promoted".into());
    let row = analyse(&f, "w", None, None, &tasks, &[], &[], None);
    assert_eq!((row.switch_time_ms, row.outage_ms), (None, None));
    assert!(row.not_applied.contains("no replica was promoted"));
}

#[test]
fn nothing_completed_after_the_fault_means_no_switch_time() {
    let at = T0 + 5 * S;
    let tasks = vec![task(T0, Some(T0 + 1000), 1), task(at + 10, None, 0)];
    let row = analyse(&fault(at), "w", None, None, &tasks, &[], &[], None);
    assert_eq!(row.switch_time_ms, None);
    assert_eq!(row.outage_ms, None);
    assert_eq!(row.lost, 1);
}

#[test]
fn windows_stop_before_the_next_fault() {
    let f = fault(T0);
    assert_eq!(window(&f, None), (T0 - S, T0 + 8 * S));
    assert_eq!(window(&f, Some(T0 + 5 * S)), (T0 - S, T0 + 4 * S));
    let mut never = fault(T0);
    never.healthy_at_unix_us = None;
    assert_eq!(window(&never, None).1, T0 + 30 * S);
}

#[test]
fn events_of_the_next_fault_are_not_attributed_to_this_one() {
    let at = T0;
    let events = vec![ClientEvent {
        at_unix_us: at + 20 * S,
        source: "producer".into(),
        kind: ClientEventKind::Error,
        detail: String::new(),
    }];
    let row = analyse(
        &fault(at),
        "w",
        Some(at + 10 * S),
        None,
        &[],
        &events,
        &[],
        None,
    );
    assert_eq!(row.first_client_error_ms, None);
}

#[test]
fn tasks_still_queued_from_a_burst_belong_to_the_window() {
    let at = T0 + 10 * S;
    // A burst at T0: one finished long before the fault, one still queued and lost.
    let done = task(T0, Some(T0 + 1000), 1);
    let queued = task(T0, None, 0);
    let row = analyse(&fault(at), "w", None, None, &[done, queued], &[], &[], None);
    assert_eq!(row.tasks, 1);
    assert_eq!(row.lost, 1);
}

#[test]
fn outage_reaches_back_to_the_last_completion_before_the_fault() {
    let at = T0 + 10 * S;
    // Nothing completed in the second before the fault: the gap starts earlier.
    let tasks = vec![
        task(T0, Some(at - 3 * S), 1),
        task(at + 10, Some(at + S / 2), 1),
    ];
    let row = analyse(&fault(at), "w", None, None, &tasks, &[], &[], None);
    assert_eq!(row.outage_ms, Some(3500.0));
}

#[test]
fn a_task_that_never_completed_counts_for_one_fault_only() {
    // Three faults 12 s apart; a task executed just after the first whose result
    // was lost, and a task queued before the first and never executed.
    let faults: Vec<AppliedFault> = (0..3).map(|k| fault(T0 + k * 12 * S)).collect();
    let mut result_lost = task(T0 - 500_000, None, 1);
    result_lost.executions[0].finished_unix_us = Some(T0 + 5_000);
    let queued = task(T0 - 3 * S, None, 0);
    let tasks = [result_lost, queued];
    let mut previous_end = None;
    let mut rows = Vec::new();
    for (k, f) in faults.iter().enumerate() {
        let next = faults.get(k + 1).map(|g| g.fault_at_unix_us);
        rows.push(analyse(f, "w", next, previous_end, &tasks, &[], &[], None));
        previous_end = Some(window(f, next).1);
    }
    let per_fault: Vec<(u64, u64)> = rows.iter().map(|r| (r.lost, r.result_lost)).collect();
    assert_eq!(per_fault, [(1, 1), (0, 0), (0, 0)]);
}

fn observed(
    detect: Option<f64>,
    promote: Option<f64>,
    proxy_up: Option<f64>,
    reconnect: Option<f64>,
    switch: Option<f64>,
) -> FailoverRow {
    let mut row = analyse(&fault(T0), "w", None, None, &[], &[], &[], None);
    row.first_client_error_ms = detect;
    row.sentinel_switch_ms = promote;
    row.proxy_up_ms = proxy_up;
    row.client_reconnected_ms = reconnect;
    row.switch_time_ms = switch;
    row
}

#[test]
fn phases_in_order_are_ordered_and_missing_ones_do_not_matter() {
    let row = observed(Some(10.0), Some(900.0), Some(1200.0), None, Some(1500.0));
    assert_eq!(
        phase_offsets(&row),
        [Some(10.0), Some(900.0), Some(1200.0), None, Some(1500.0)]
    );
    let o = phase_order(&row);
    assert!(o.ordered, "{o:?}");
    assert!(o.out_of_order.is_empty() && o.detail.is_empty(), "{o:?}");
    assert!(phase_order(&observed(None, None, None, None, None)).ordered);
}

#[test]
fn a_phase_seen_after_the_switch_time_is_out_of_order() {
    // Sentinel's +switch-master arrived after the first task had completed.
    let row = observed(Some(300.0), Some(3000.0), None, None, Some(2500.0));
    let o = phase_order(&row);
    assert!(!o.ordered);
    assert_eq!(o.out_of_order, ["promote"]);
    assert!(o.detail.contains("promote at 3000 ms"), "{}", o.detail);
    assert_has(&o.detail, &["after the switch (2500 ms)"]);
}

#[test]
fn a_phase_seen_before_an_earlier_one_is_out_of_order() {
    // The client reconnected (1,100 ms) before HAProxy's new route (1,200 ms), and the
    // promotion (900 ms) came before the detection (950 ms).
    let row = observed(
        Some(950.0),
        Some(900.0),
        Some(1200.0),
        Some(1100.0),
        Some(1500.0),
    );
    let o = phase_order(&row);
    assert!(!o.ordered);
    assert_eq!(o.out_of_order, ["promote", "reconnect"]);
    assert!(
        o.detail
            .contains("reconnect at 1100 ms, before proxy up (1200 ms)"),
        "{}",
        o.detail
    );
    // Under client-side failover the third phase is the clients' rediscovery.
    let mut cs = observed(Some(10.0), None, None, None, Some(500.0));
    cs.client_side = true;
    cs.proxy_up_ms = Some(100.0); // not on the clients' path: not a phase
    cs.client_rediscovered_ms = Some(800.0);
    assert_eq!(phase_order(&cs).out_of_order, ["rediscover"]);
}

#[test]
fn the_faulted_node_coming_back_up_is_not_the_proxy_switch() {
    assert_eq!(
        proxy_server_of("broker.node[0]").as_deref(),
        Some("broker_nodes/rabbit0")
    );
    assert_eq!(
        proxy_server_of("backend.node[12]").as_deref(),
        Some("backend_nodes/redis12")
    );
    assert_eq!(proxy_server_of("sentinel[0]"), None);
    let at = T0;
    let ev = |ms: i64, kind, detail: &str| ServerEvent {
        at_unix_us: at + ms * 1000,
        kind,
        detail: detail.into(),
    };
    let server = [
        ev(300, ServerEventKind::ProxyDown, "broker_nodes/rabbit0"),
        ev(10_300, ServerEventKind::ProxyUp, "broker_nodes/rabbit0"),
    ];
    let row = analyse(&fault(at), "w", None, None, &[], &[], &server, None);
    assert_eq!(row.proxy_down_ms, Some(300.0));
    assert_eq!(
        row.proxy_up_ms, None,
        "the restarted node is not a new route"
    );
    let mut redis = fault(at);
    redis.resolved = "backend.node[0]".into();
    let server = [
        ev(400, ServerEventKind::ProxyDown, "backend_nodes/redis0"),
        ev(1_900, ServerEventKind::ProxyUp, "backend_nodes/redis1"),
    ];
    let row = analyse(&redis, "w", None, None, &[], &[], &server, None);
    assert_eq!(
        (row.proxy_down_ms, row.proxy_up_ms),
        (Some(400.0), Some(1900.0))
    );
}

fn redis_up(at: i64, n: usize) -> ServerEvent {
    ServerEvent {
        at_unix_us: at,
        kind: ServerEventKind::ProxyRedisUp,
        detail: n.to_string(),
    }
}

#[test]
fn two_masters_is_the_time_with_two_redis_servers_up_inside_the_window() {
    let ev = vec![
        redis_up(T0, 1),
        redis_up(T0 + 3 * S, 2),
        redis_up(T0 + 4 * S, 1),
        redis_up(T0 + 6 * S, 2),
        redis_up(T0 + 6 * S + 500_000, 1),
        ServerEvent {
            at_unix_us: T0 + 5 * S,
            kind: ServerEventKind::ProxyUp,
            detail: "backend_nodes/redis1".into(),
        },
    ];
    assert_eq!(two_masters(&ev, T0, T0 + 20 * S), Some((1500.0, 3000.0)));
    // Cut by the window: half of the first interval, none of the second.
    assert_eq!(
        two_masters(&ev, T0 + 3 * S + 500_000, T0 + 6 * S),
        Some((500.0, 0.0))
    );
    assert_eq!(two_masters(&ev, T0 + 7 * S, T0 + 20 * S), None);
    // Still two at the end: counted to the window's end, or to the observer's stop.
    let mut open = vec![redis_up(T0, 1), redis_up(T0 + S, 2)];
    assert_eq!(two_masters(&open, T0, T0 + 3 * S), Some((2000.0, 1000.0)));
    open.push(ServerEvent {
        at_unix_us: T0 + 2 * S,
        kind: ServerEventKind::ProxyRedisUp,
        detail: crate::observe::server::OBSERVER_STOPPED.into(),
    });
    assert_eq!(two_masters(&open, T0, T0 + 3 * S), Some((1000.0, 1000.0)));
    assert_eq!(two_masters(&[], T0, T0 + S), None);
}

/// A `kind` fault of the Redis master (`backend.node[0]`) at `at`.
fn master_fault(at: i64, kind: FaultKind) -> AppliedFault {
    AppliedFault {
        target: Role::BackendMaster,
        resolved: "backend.node[0]".into(),
        kind,
        ..fault(at)
    }
}

/// An error worker `w1` reported at `t`.
fn worker_error(t: i64, detail: &str) -> ClientEvent {
    ClientEvent {
        at_unix_us: t,
        source: "worker w1".into(),
        kind: ClientEventKind::Error,
        detail: detail.into(),
    }
}

#[test]
fn noreplicas_errors_are_counted_per_attempt_and_per_task_after_the_fault() {
    let at = T0 + 10 * S;
    let f = master_fault(at, FaultKind::Partition);
    let err = worker_error;
    // As redis-rs words a refused MULTI/EXEC (captured from a partition run).
    let nr = r#"Transaction aborted: [(Index 0  error: "NOREPLICAS": Not enough good replicas to write.)]"#;
    assert!(is_noreplicas(nr) && !is_readonly(nr));
    let events = vec![
        err(
            at - S,
            &format!("task a: attempt 1: writing the results: {nr}"),
        ),
        err(
            at + S,
            &format!("task b: attempt 1: writing the results: {nr}"),
        ),
        err(
            at + 2 * S,
            &format!("task b: attempt 2: writing the results: {nr}"),
        ),
        err(
            at + 2 * S,
            &format!("task c: attempt 1: writing the results: {nr}"),
        ),
        err(at + 3 * S, "task d: attempt 1: connection refused"),
    ];
    let row = analyse(&f, "w", None, None, &[], &events, &[], None);
    assert_eq!((row.noreplicas_errors, row.noreplicas_tasks), (3, 2));
    assert_eq!(row.readonly_errors, 0);
    assert_eq!(row.kind, "partition");
}

#[test]
fn readonly_errors_are_counted_per_attempt_and_per_task_after_the_fault() {
    let at = T0 + 10 * S;
    let mut f = master_fault(at, FaultKind::Failover);
    f.restored_at_unix_us = None;
    let err = worker_error;
    let ro = "Transaction aborted: [(Index 0  error: ReadOnly: You can't write against a read only replica.";
    let events = vec![
        err(
            at - S,
            &format!("task a: attempt 1: writing the result: {ro}"),
        ),
        err(
            at + S,
            &format!("task b: attempt 1: writing the result: {ro}"),
        ),
        err(
            at + S + 50_000,
            &format!("task b: attempt 2: writing the result: {ro}"),
        ),
        err(at + 2 * S, "task c: attempt 1: connection reset"),
        err(
            at + 3 * S,
            &format!("task c: attempt 2: writing the result: {ro}"),
        ),
    ];
    let ev = vec![
        redis_up(at - 5 * S, 1),
        redis_up(at + 2 * S, 2),
        redis_up(at + 12 * S, 1),
    ];
    let row = analyse(&f, "w", None, None, &[], &events, &ev, None);
    assert_eq!((row.readonly_errors, row.readonly_tasks), (3, 2));
    assert_eq!(row.readonly_for_ms, Some(2000.0));
    // Full health (+8 s here) does not end it: only HAProxy's own count does.
    assert_eq!(
        (row.two_masters_ms, row.two_masters_from_ms),
        (Some(10000.0), Some(2000.0))
    );
    assert_eq!(row.result_vanished, None);
    assert_eq!(error_task("task b: attempt 1: x"), Some("b"));
    assert_eq!(error_task("connection reset"), None);
    assert!(is_readonly(
        "READONLY You can't write against a read only replica."
    ));
    assert!(!is_readonly("EXECABORT") && !is_readonly("broken pipe"));
}

#[test]
fn results_seen_but_gone_at_the_end_have_vanished() {
    let at = T0 + 10 * S;
    let tasks: Vec<TaskRecord> = (0..10)
        .map(|i| task(at + i * 100_000, Some(at + i * 100_000 + 2_000), 1))
        .collect();
    let present: std::collections::HashSet<Uuid> = tasks[..7].iter().map(|t| t.id).collect();
    // A broker fault did not make them vanish (a later Redis fault did): not counted.
    let broker = analyse(
        &fault(at),
        "w",
        None,
        None,
        &tasks,
        &[],
        &[],
        Some(&present),
    );
    assert_eq!(broker.result_vanished, None);
    let redis = AppliedFault {
        target: Role::BackendMaster,
        ..fault(at)
    };
    let row = analyse(&redis, "w", None, None, &tasks, &[], &[], Some(&present));
    assert_eq!(row.result_vanished, Some(3));
    // Also after full health (+8 s), until the next fault's window.
    let mut later = tasks.clone();
    later.push(task(at + 9 * S, Some(at + 9 * S + 2_000), 1));
    later.push(task(at + 20 * S, Some(at + 20 * S + 2_000), 1));
    let row2 = analyse(
        &redis,
        "w",
        Some(at + 15 * S),
        None,
        &later,
        &[],
        &[],
        Some(&present),
    );
    assert_eq!(row2.result_vanished, Some(4));
    // Not counted as lost by the ledger: hab did see them.
    assert_eq!((row.lost, row.result_lost), (0, 0));
}

fn client_side_row() -> FailoverRow {
    analyse(
        &AppliedFault::kill(Role::BrokerPrimary, "broker.node[0]", 10_000_000),
        "w",
        None,
        None,
        &[],
        &[],
        &[],
        None,
    )
}

#[test]
fn client_side_columns_take_the_first_rediscovery_after_the_fault_and_before_the_next() {
    let clients = ClientsConfig {
        broker: BrokerAccess::Nodes,
        backend: BackendAccess::Sentinel,
    };
    let events = client_side::rediscoveries_around_a_fault();
    let mut r = client_side_row();
    apply_client_side(
        &mut r,
        &clients,
        Role::BrokerPrimary,
        10_000_000,
        Some(30_000_000),
        &events,
    );
    assert!(r.client_side);
    assert_eq!(r.client_rediscovered_ms, Some(1250.0));
    // Proxied: not applicable, nothing filled in.
    let mut r = client_side_row();
    apply_client_side(
        &mut r,
        &ClientsConfig::default(),
        Role::BrokerPrimary,
        10_000_000,
        None,
        &events,
    );
    assert!(!r.client_side);
    assert_eq!(r.client_rediscovered_ms, None);
    // Client-side without a rediscovery (the clients were not on the faulted node).
    let mut r = client_side_row();
    apply_client_side(
        &mut r,
        &clients,
        Role::BackendMaster,
        32_000_000,
        None,
        &events,
    );
    assert!(r.client_side);
    assert_eq!(r.client_rediscovered_ms, None);
}
