use std::path::{Path, PathBuf};

use super::*;
use crate::config::sweep::estimate::{self, BURST_TASKS_PER_S};
use crate::config::sweep::vary::resolve_flag;
use crate::config::{load_topology, load_workload_plan};
use crate::testing::assert_has;

fn shipped(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

struct Fixture {
    ha: Topology,
    standalone: Topology,
    plan: WorkloadPlan,
}

fn fixture() -> Fixture {
    Fixture {
        ha: load_topology(&shipped("topologies/ha.toml")).unwrap(),
        standalone: load_topology(&shipped("topologies/standalone.toml")).unwrap(),
        plan: load_workload_plan(&shipped("workloads/sweep.toml")).unwrap(),
    }
}

impl Fixture {
    fn design(&self, vary: &[&str], budget_s: f64) -> Result<Design, DesignError> {
        let knobs = vary
            .iter()
            .map(|a| resolve_flag(&self.ha, a).unwrap())
            .collect();
        design(Inputs {
            topology: &self.ha,
            knobs,
            plan: &self.plan,
            baseline: &self.standalone,
            budget_s,
            extra: Vec::new(),
        })
    }
}

#[track_caller]
fn near(got: f64, want: f64) {
    assert!((got - want).abs() < 1e-6, "got {got}, want {want}");
}

/// A cell's values as `key=value` text, in knob order.
fn setting(d: &Design, c: &Cell) -> String {
    d.knobs
        .iter()
        .zip(&c.values)
        .map(|(k, v)| format!("{}={}", k.knob.key, v.text))
        .collect::<Vec<_>>()
        .join(" ")
}

// The shipped workloads/sweep.toml, estimated (all from the file but A1/A2):
const WARM_UP: f64 = 0.2; // 200 tasks ÷ 1000/s
const COST: f64 = 9.0; // 3 × (2000 ÷ 1000/s + 1 s)
const FAULT: f64 = 69.0; // 11600 ÷ 200/s + 1 s + 10 s (A5), each of four
const STALL: f64 = 38.0; // 5400 ÷ 200/s + 1 s + 10 s (A5)
const RUN: f64 = 7.0; // A7, per run
const BOTH: f64 = WARM_UP + RUN + COST + 4.0 * FAULT + STALL; // 330.2
const ONE_SIDE: f64 = WARM_UP + RUN + COST + 2.0 * FAULT + STALL; // 192.2
const HA_UP: f64 = 5.0 + 2.0 * 2.1 + 2.2; // three broker nodes
const BASELINE: f64 = 2.0 * (5.0 + 2.2 + WARM_UP + RUN + COST);

#[test]
fn each_workload_is_estimated_from_its_own_counts_rates_and_repetitions() {
    let f = fixture();
    let phases = estimate::phases(&f.plan, &f.ha);
    let secs: Vec<f64> = phases.iter().map(|p| p.seconds).collect();
    for (got, want) in secs.iter().zip([COST, FAULT, FAULT, FAULT, FAULT, STALL]) {
        near(*got, want);
    }
    assert_eq!(
        phases[0].arithmetic,
        "3 × (2000 tasks ÷ 1000/s A1 + 1 s A2)"
    );
    assert_eq!(
        phases[1].arithmetic,
        "11600 tasks ÷ 200/s + 1 s A2 + 10 s A5"
    );
    assert_eq!(phases[1].faults, ["3 × kill of broker.primary every 20s"]);
    assert_eq!(
        phases[4].faults,
        ["3 × 5s pause of backend.master every 20s"]
    );
    assert_eq!(
        phases[5].faults[0],
        "3 × 200ms–1s 500ms pause of backend.master every 6s"
    );
    assert_eq!(
        phases[5].faults[2],
        "2s throttle to 2 % of a core of backend.master at 20s"
    );
    near(
        estimate::warm_up_seconds(&f.plan),
        200.0 / BURST_TASKS_PER_S,
    );
    near(estimate::bring_up_seconds(&f.ha), HA_UP);
    near(estimate::bring_up_seconds(&f.standalone), 7.2);
    // An HAProxy reload waits rise × check_interval; reconnecting clients A4.
    near(
        estimate::reconfigure_seconds(&[ApplyKind::ProxyReload], &f.ha),
        0.5,
    );
    near(
        estimate::reconfigure_seconds(
            &[ApplyKind::ReconnectClients, ApplyKind::SentinelSet],
            &f.ha,
        ),
        estimate::RECONNECT_S,
    );
    assert_eq!(estimate::format_seconds(1435.6), "23m 56s");
}

#[test]
fn a_sleep_burst_takes_waves_of_the_workers_slots() {
    let f = fixture();
    let mut t = f.ha.clone();
    t.workers.count = 1;
    t.workers.concurrency = Some(2);
    let seed = load_workload_plan(&shipped("workloads/seed.toml")).unwrap();
    let sleep = estimate::phases(&seed, &t)
        .into_iter()
        .find(|p| p.workload == "sleep")
        .unwrap();
    // 5 tasks of 10 s on 2 slots: 3 waves.
    near(sleep.seconds, 31.0);
    assert_eq!(sleep.arithmetic, "3 waves of 2 slots × 10 s + 1 s A2");
    // Disk- and CPU-bound bursts are bounded by their drain timeout.
    let w = estimate::phases(&seed, &t)
        .into_iter()
        .find(|p| p.workload == "write_zeros")
        .unwrap();
    near(w.seconds, 601.0);
}

#[test]
fn a_grid_that_fits_the_budget_runs_whole_with_its_arithmetic() {
    let f = fixture();
    let d = f.design(&["proxy.fall=1,3"], 3600.0).unwrap();
    assert_eq!(d.kind, DesignKind::Grid);
    assert_eq!(d.cells.len(), 3);
    assert_eq!(d.grid_cells, 3);
    let c0 = &d.cells[0];
    assert_eq!(setting(&d, c0), "proxy.fall=2");
    assert!(c0.changed.is_empty());
    assert_eq!(c0.scope, FaultScope::Both);
    near(c0.bring_up_s, HA_UP);
    near(c0.measure_s, BOTH);
    let c1 = &d.cells[1];
    assert_eq!(setting(&d, c1), "proxy.fall=1");
    assert_eq!(
        c1.applied,
        vec![Applied {
            knob: 0,
            key: "proxy.fall",
            how: ApplyKind::ProxyReload
        }]
    );
    near(c1.bring_up_s, 0.0);
    near(c1.reconfigure_s, 0.5); // rise 2 × 250ms
    assert_eq!(c1.topology.proxy.as_ref().unwrap().fall, 1);
    near(d.baseline_s, BASELINE);
    let want = BASELINE + (HA_UP + BOTH) + 2.0 * (0.5 + BOTH);
    near(d.grid_s, want);
    near(d.planned_s, want);
    near(d.total_s, want);
    assert_eq!(d.stage2, None);
    // The same sweep with a budget a second shorter than its only design: refused.
    let e = f.design(&["proxy.fall=1,3"], want - 1.0).unwrap_err();
    assert_has(
        &e.to_string(),
        &[
            "the budget of 17m 29s is too short",
            "(3 cells) takes ~17m 30s",
            "raise the budget to at least 17m 30s",
        ],
    );
}

#[test]
fn over_budget_the_grid_becomes_one_knob_at_a_time_with_a_bounded_second_stage() {
    let f = fixture();
    let vary = [
        "proxy.check_interval=50ms,250ms,2s",
        "proxy.fall=1,2,3",
        "broker.heartbeat=1s,5s,60s",
        "backend.down_after=200ms,1s,5s",
    ];
    let d = f.design(&vary, 2850.0).unwrap();
    assert_eq!(d.kind, DesignKind::OneAtATime);
    assert_eq!(d.grid_cells, 81);
    assert!(d.grid_s > 4.0 * 3600.0, "{}", d.grid_s);
    let got: Vec<(String, FaultScope, f64)> = d
        .cells
        .iter()
        .map(|c| {
            let changed: Vec<String> = c
                .changed
                .iter()
                .map(|&i| format!("{}={}", d.knobs[i].knob.key, c.values[i].text))
                .collect();
            (changed.join(" "), c.scope, c.seconds())
        })
        .collect();
    let both = FaultScope::Both;
    let want: Vec<(&str, FaultScope, f64)> = vec![
        ("", both, HA_UP + BOTH),
        ("proxy.check_interval=50ms", both, 0.1 + BOTH),
        // From 50ms to 2s: the reload waits rise × the new 2s.
        ("proxy.check_interval=2s", both, 4.0 + BOTH),
        ("proxy.fall=1", both, 0.5 + BOTH),
        ("proxy.fall=3", both, 0.5 + BOTH),
        // fall back to 2 (reload) and the heartbeat (reconnect): only broker faults.
        ("broker.heartbeat=1s", FaultScope::Broker, 2.5 + ONE_SIDE),
        ("broker.heartbeat=1m", FaultScope::Broker, 2.0 + ONE_SIDE),
        (
            "backend.down_after=200ms",
            FaultScope::Backend,
            2.0 + ONE_SIDE,
        ),
        ("backend.down_after=5s", FaultScope::Backend, ONE_SIDE),
    ];
    assert_eq!(got.len(), want.len());
    for ((g, gs, gt), (w, ws, wt)) in got.iter().zip(&want) {
        assert_eq!((g.as_str(), *gs), (*w, *ws));
        near(*gt, *wt);
    }
    // The Sentinel cell measures the backend faults only, and the stall phase.
    assert_eq!(
        d.cells[7].workloads,
        [
            "cost_trivial",
            "backend_master_kill",
            "backend_master_pause",
            "stall"
        ]
    );
    assert_eq!(d.cells[7].applied.len(), 2);
    let stage1: f64 = want.iter().map(|w| w.2).sum::<f64>() + BASELINE;
    near(d.planned_s, stage1);
    assert!(stage1 < 2850.0 && d.cells.len() >= 8);
    // Stage 2: any pair adds 3 × 3 − 5 = 4 cells; the dearest is check_interval 2s with a
    // heartbeat change (reload 4 s + reconnect 2 s, both sides).
    let s2 = d.stage2.as_ref().unwrap();
    assert_eq!(s2.max_cells, 4);
    assert_eq!(
        s2.pair,
        ("proxy.check_interval".into(), "proxy.fall".into())
    );
    near(s2.worst_cell_s, 6.0 + BOTH);
    near(s2.left_s, 2850.0 - stage1);
    assert_eq!(s2.cells, 1);
    near(d.total_s, stage1 + 6.0 + BOTH);
    // With a larger budget all four fit; with a far larger one the grid itself.
    let roomy = f.design(&vary, 3900.0).unwrap();
    assert_eq!(roomy.stage2.as_ref().unwrap().cells, 4);
    let huge = f.design(&vary, 24.0 * 3600.0).unwrap();
    assert_eq!((huge.kind, huge.cells.len()), (DesignKind::Grid, 81));
    // A budget below stage 1: no design.
    assert!(matches!(
        f.design(&vary, stage1 - 1.0),
        Err(DesignError::OverBudget { cells: 9, .. })
    ));
}

#[test]
fn bring_up_knobs_group_cells_so_each_stack_is_brought_up_once() {
    let f = fixture();
    let d = f
        .design(&["broker.queue=classic,quorum", "proxy.fall=1,3"], 3600.0)
        .unwrap();
    assert_eq!(d.kind, DesignKind::Grid);
    let got: Vec<(String, usize, bool)> = d
        .cells
        .iter()
        .map(|c| (setting(&d, c), c.group, c.bring_up_s > 0.0))
        .collect();
    let want = [
        ("broker.queue=quorum proxy.fall=2", 0, true),
        ("broker.queue=quorum proxy.fall=1", 0, false),
        ("broker.queue=quorum proxy.fall=3", 0, false),
        ("broker.queue=classic proxy.fall=1", 1, true),
        ("broker.queue=classic proxy.fall=3", 1, false),
        ("broker.queue=classic proxy.fall=2", 1, false),
    ];
    let want: Vec<(String, usize, bool)> = want
        .iter()
        .map(|(s, g, b)| (s.to_string(), *g, *b))
        .collect();
    assert_eq!(got, want);
    // A cell that opens a group is brought up, not reconfigured.
    assert!(d.cells[3].applied.is_empty());
    assert_eq!(
        d.cells[3].topology.broker.queue,
        crate::config::QueueKind::Classic
    );
    assert_eq!(
        d.cells[4].applied,
        vec![Applied {
            knob: 1,
            key: "proxy.fall",
            how: ApplyKind::ProxyReload
        }]
    );
    // The classic cells changed a broker knob: they measure broker faults only.
    assert_eq!(d.cells[5].scope, FaultScope::Broker);
}

#[test]
fn combinations_that_are_not_a_valid_topology_are_left_out_and_said() {
    let f = fixture();
    let d = f
        .design(&["backend.sentinels=0", "clients.backend=sentinel"], 3600.0)
        .unwrap();
    assert_eq!(d.cells.len(), 3);
    assert_eq!(d.invalid.len(), 1);
    let (cell, why) = &d.invalid[0];
    assert_eq!(cell, "backend.sentinels=0 clients.backend=sentinel");
    assert_has(why, &["clients.backend", "needs backend.sentinels >= 1"]);
}

#[test]
fn one_knob_has_no_second_stage() {
    let f = fixture();
    let d = f
        .design(
            &["backend.down_after=200ms,500ms,2s,5s,10s,20s,30s"],
            1800.0,
        )
        .unwrap();
    // Seven values on one knob: the grid is one at a time already; the cells measure
    // the backend faults only.
    assert_eq!(d.cells.len(), 8);
    assert!(d.cells[1..].iter().all(|c| c.scope == FaultScope::Backend));
    assert_eq!(d.stage2, None);
}

#[test]
fn requested_cells_join_stage_one_once_and_are_marked() {
    let f = fixture();
    let vary = ["proxy.fall=1,3", "backend.down_after=200ms,5s"];
    let knobs: Vec<VariedKnob> = vary
        .iter()
        .map(|a| resolve_flag(&f.ha, a).unwrap())
        .collect();
    let corner = vec![knobs[0].values[0].clone(), knobs[1].values[0].clone()];
    let one_knob = vec![knobs[0].values[0].clone(), knobs[1].current.clone()];
    let inputs = |budget_s| Inputs {
        topology: &f.ha,
        knobs: knobs.clone(),
        plan: &f.plan,
        baseline: &f.standalone,
        budget_s,
        extra: vec![corner.clone(), one_knob.clone()],
    };
    // Over the grid's budget: five one-at-a-time cells and the corner (the other asked
    // for cell is one of them already).
    let d = design(inputs(1800.0)).unwrap();
    assert_eq!(d.kind, DesignKind::OneAtATime);
    assert_eq!(d.cells.len(), 6);
    assert_eq!(d.cells[5].values, corner);
    assert_eq!(d.cells[5].changed, [0, 1]);
    assert_eq!(d.requested, [1, 5]);
    // The grid holds them anyway.
    let g = design(inputs(3600.0)).unwrap();
    assert_eq!((g.kind, g.cells.len()), (DesignKind::Grid, 9));
    assert_eq!(g.requested.len(), 2);
}

#[test]
fn stage_two_is_the_grid_of_the_chosen_pair_run_after_stage_one_on_its_stack() {
    let f = fixture();
    let vary = [
        "proxy.check_interval=50ms,250ms,2s",
        "proxy.fall=1,2,3",
        "broker.heartbeat=1s,5s,60s",
        "backend.down_after=200ms,1s,5s",
    ];
    let d = f.design(&vary, 2850.0).unwrap();
    let last = d.cells.last().unwrap().clone();
    // check_interval × down_after, each at values other than the topology's: 2 × 2.
    let cells = stage2_cells(&f.ha, &d, (0, 3), 10);
    let got: Vec<String> = cells.iter().map(|c| setting(&d, c)).collect();
    assert_eq!(
        got,
        [
            "proxy.check_interval=50ms proxy.fall=2 broker.heartbeat=5s backend.down_after=200ms",
            "proxy.check_interval=50ms proxy.fall=2 broker.heartbeat=5s backend.down_after=5s",
            "proxy.check_interval=2s proxy.fall=2 broker.heartbeat=5s backend.down_after=200ms",
            "proxy.check_interval=2s proxy.fall=2 broker.heartbeat=5s backend.down_after=5s",
        ]
    );
    for (i, c) in cells.iter().enumerate() {
        assert_eq!(c.index, last.index + 1 + i);
        assert_eq!(c.stage, 2);
        // No bring-up knob: the stage-1 stack goes on, reconfigured from the cell before.
        assert_eq!(c.group, last.group);
        assert_eq!(c.bring_up_s, 0.0);
        assert_eq!(c.scope, FaultScope::Both);
    }
    // From stage 1's last cell (down_after=5s) to the first stage-2 cell: the proxy reload
    // and SENTINEL SET.
    let first: Vec<(&str, ApplyKind)> = cells[0].applied.iter().map(|a| (a.key, a.how)).collect();
    assert_eq!(
        first,
        [
            ("proxy.check_interval", ApplyKind::ProxyReload),
            ("backend.down_after", ApplyKind::SentinelSet)
        ]
    );
    let second: Vec<&str> = cells[1].applied.iter().map(|a| a.key).collect();
    assert_eq!(second, ["backend.down_after"]);
    // At most `max`; a cell stage 1 already measured is not measured again.
    assert_eq!(stage2_cells(&f.ha, &d, (0, 3), 1).len(), 1);
    assert!(
        cells
            .iter()
            .all(|c| !d.cells.iter().any(|s| s.values == c.values))
    );
}
