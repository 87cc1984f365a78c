use std::collections::BTreeMap;

use super::*;
use crate::observe::cpu::{MachineTicks, RoleTicks};

const S: i64 = 1_000_000;
const T0: i64 = 1_800_000_000 * S;

/// A sample at `at` with each role's (pid, ticks, task ticks) and the machine's counters.
fn sample(at: i64, roles: &[(&str, i32, u64, u64)], machine: (u64, u64, u64)) -> CpuSample {
    CpuSample {
        at_unix_us: at,
        roles: roles
            .iter()
            .map(|&(r, pid, ticks, task_ticks)| {
                (
                    r.to_string(),
                    RoleTicks {
                        pid,
                        ticks,
                        task_ticks,
                    },
                )
            })
            .collect(),
        machine: MachineTicks {
            busy: machine.0,
            idle: machine.1,
            steal: machine.2,
        },
    }
}

#[test]
fn a_window_gives_each_roles_share_of_a_core_and_the_machines() {
    // 100 ticks/s: over 2 s the broker grows 190 ticks (95 % of a core), the producer
    // 60 (30 %), the worker 150 of which 140 in task threads.
    let samples = [
        sample(
            T0,
            &[
                ("broker.node[0]", 10, 1000, 0),
                ("hab.producer", 20, 50, 0),
                ("hab.worker w1", 30, 0, 0),
            ],
            (1000, 1000, 0),
        ),
        sample(
            T0 + S,
            &[
                ("broker.node[0]", 10, 1095, 0),
                ("hab.producer", 20, 80, 0),
                ("hab.worker w1", 30, 75, 70),
            ],
            (1150, 1040, 10),
        ),
        sample(
            T0 + 2 * S,
            &[
                ("broker.node[0]", 10, 1190, 0),
                ("hab.producer", 20, 110, 0),
                ("hab.worker w1", 30, 150, 140),
            ],
            (1300, 1080, 20),
        ),
    ];
    let w = window(&samples, T0, T0 + 2 * S, 100);
    assert_eq!(w.seconds, 2.0);
    assert_eq!(w.roles["broker.node[0]"].pct, 95.0);
    assert_eq!(w.roles["hab.producer"].pct, 30.0);
    assert_eq!(w.roles["hab.worker w1"].pct, 75.0);
    assert_eq!(w.roles["hab.worker w1"].task_pct, 70.0);
    assert_eq!(w.roles["hab.worker w1"].overhead_pct(), 5.0);
    // 300 busy, 80 idle, 20 stolen ticks over both cores.
    assert_eq!(w.machine_busy_pct, 75.0);
    assert_eq!(w.machine_steal_pct, 5.0);
    let b = busiest(&w).unwrap();
    assert_eq!(
        (b.role.as_str(), b.pct, b.hab_overhead),
        ("broker.node[0]", 95.0, false)
    );
    assert_eq!(
        busiest_sentence(&w).unwrap(),
        "broker.node[0] at 95 % of a core: it limits this workload; machine 75 % busy, 5 % stolen"
    );
    // Only the samples inside the window count.
    let second = window(&samples, T0 + S, T0 + 2 * S, 100);
    assert_eq!(second.seconds, 1.0);
    assert_eq!(second.roles["hab.producer"].pct, 30.0);
}

#[test]
fn habs_task_work_is_not_overhead_but_its_overhead_is_named() {
    let busy_tasks = [
        sample(
            T0,
            &[("hab.worker w1", 30, 0, 0), ("proxy", 40, 0, 0)],
            (0, 0, 0),
        ),
        sample(
            T0 + S,
            &[("hab.worker w1", 30, 99, 97), ("proxy", 40, 20, 0)],
            (100, 100, 0),
        ),
    ];
    let w = window(&busy_tasks, T0, T0 + S, 100);
    let b = busiest(&w).unwrap();
    // Shorter than a second: figures, no verdict.
    let short = CpuWindow {
        seconds: 0.5,
        ..w.clone()
    };
    assert!(busiest(&short).is_some() && busiest_sentence(&short).is_none());
    assert_eq!(
        (b.role.as_str(), b.pct, b.hab_overhead),
        ("proxy", 20.0, false)
    );
    assert_eq!(
        busiest_sentence(&w).unwrap(),
        "busiest process proxy at 20 % of a core: no process was the limit; tasks' own work (not overhead): hab.worker w1 at 97 % of a core; machine 50 % busy, 0 % stolen"
    );
    assert!(hab_limited(&w).is_none());
    let crowded = CpuWindow {
        machine_busy_pct: 96.0,
        ..w.clone()
    };
    assert!(busiest_sentence(&crowded).unwrap().starts_with(
        "no process at a full core, but the machine's cores were (busiest process proxy at 20 % of a core)"
    ));
    let busy_hab = [
        sample(
            T0,
            &[("hab.producer", 20, 0, 0), ("broker.node[0]", 10, 0, 0)],
            (0, 0, 0),
        ),
        sample(
            T0 + S,
            &[("hab.producer", 20, 98, 0), ("broker.node[0]", 10, 40, 0)],
            (150, 50, 0),
        ),
    ];
    let w = window(&busy_hab, T0, T0 + S, 100);
    let b = busiest(&w).unwrap();
    assert!(b.hab_overhead);
    assert_eq!(
        hab_limited(&w).map(|b| b.role),
        Some("hab.producer".to_string())
    );
    assert!(busiest_sentence(&w).unwrap().starts_with(
        "hab.producer at 98 % of a core in its own overhead (not task work): this workload measured hab rather than the stack"
    ));
}

#[test]
fn a_restarted_or_missing_process_adds_nothing_for_that_interval() {
    let samples = [
        sample(T0, &[("backend.node[0]", 50, 500, 0)], (0, 0, 0)),
        // Killed and restarted: a new pid whose counters start again.
        sample(T0 + S, &[("backend.node[0]", 51, 3, 0)], (0, 0, 0)),
        // Gone for a sample.
        sample(T0 + 2 * S, &[], (0, 0, 0)),
        sample(T0 + 3 * S, &[("backend.node[0]", 51, 40, 0)], (0, 0, 0)),
        sample(T0 + 4 * S, &[("backend.node[0]", 51, 60, 0)], (0, 0, 0)),
    ];
    let w = window(&samples, T0, T0 + 4 * S, 100);
    // Only the last interval counts: 20 ticks over the 4 s window.
    assert_eq!(w.roles["backend.node[0]"].pct, 5.0);
    let per_s = per_second(&samples, 100);
    let s = |k: i64| {
        per_s
            .get(&(T0 / S + k))
            .and_then(|r| r.get("backend.node[0]").copied())
    };
    assert_eq!((s(1), s(2), s(3), s(4)), (None, None, None, Some(20.0)));
}

#[test]
fn per_second_averages_the_intervals_ending_in_each_second() {
    let samples = [
        sample(T0, &[("proxy", 1, 0, 0)], (0, 0, 0)),
        sample(T0 + S / 2, &[("proxy", 1, 10, 0)], (0, 0, 0)),
        sample(T0 + S, &[("proxy", 1, 40, 0)], (0, 0, 0)),
        sample(T0 + 3 * S / 2, &[("proxy", 1, 40, 0)], (0, 0, 0)),
    ];
    let per_s = per_second(&samples, 100);
    let expected: BTreeMap<i64, BTreeMap<String, f64>> = BTreeMap::from([
        // The first interval ends inside second 0 (10 ticks over 0.5 s)…
        (T0 / S, BTreeMap::from([("proxy".to_string(), 20.0)])),
        // …the second at its very end belongs to second 1, with the third.
        (T0 / S + 1, BTreeMap::from([("proxy".to_string(), 30.0)])),
    ]);
    assert_eq!(per_s, expected);
}

#[test]
fn no_samples_no_figures() {
    assert_eq!(window(&[], T0, T0 + S, 100), CpuWindow::default());
    let one = [sample(T0, &[("proxy", 1, 0, 0)], (0, 0, 0))];
    assert_eq!(window(&one, T0, T0 + S, 100), CpuWindow::default());
    assert!(busiest(&CpuWindow::default()).is_none());
    assert!(per_second(&one, 100).is_empty());
}
