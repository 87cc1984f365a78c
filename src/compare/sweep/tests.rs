use std::path::Path;

use super::fixture::{CellSpec, sweep};
use super::*;
use crate::config::parse_topology;
use crate::config::sweep::vary::{self, KnobValue};
use crate::record::sweep::CellStatus;

fn five() -> Vec<CellSpec> {
    fixture::five()
}

fn analysed(specs: &[CellSpec]) -> SweepAnalysis {
    analyse(&sweep(specs)).unwrap()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn cost_is_against_the_baselines_start_run_and_drift_is_its_end_against_its_start() {
    let a = analysed(&five());
    let c0 = a.reference().unwrap();
    // 4,400 against 5,000 tasks/s: 12 % less throughput.
    assert!(close(c0.cost_throughput_pct.unwrap(), 12.0, 1e-9), "{c0:?}");
    assert_eq!(c0.cost.as_ref().unwrap().throughput_per_s.median, 4_400.0);
    // Latencies 1.2× the baseline's: p99 about +20 % (histogram precision).
    let p99 = c0.cost_p99_pct.unwrap();
    assert!(close(p99, 20.0, 1.0), "{p99}");
    // The baseline ran 4,750 tasks/s at the end: drift −5 %, p99 unchanged.
    assert!(close(a.baseline.drift_throughput_pct.unwrap(), -5.0, 1e-9));
    assert!(close(a.baseline.drift_p99_pct.unwrap(), 0.0, 1e-9));
    let start = a.baseline.start.as_ref().unwrap();
    assert_eq!(
        start.cost.as_ref().unwrap().throughput_per_s.median,
        5_000.0
    );
    assert_eq!(start.dir.as_deref(), Some("baseline/start"));
}

#[test]
fn each_fault_has_its_switch_spread_and_the_headline_is_the_slowest_median() {
    let a = analysed(&five());
    let c0 = a.reference().unwrap();
    assert_eq!(
        a.fault_workloads,
        ["broker_primary_kill", "backend_master_kill"]
    );
    let f = c0.fault("backend_master_kill").unwrap();
    let s = f.switch_ms.unwrap();
    assert_eq!(
        (s.median, s.min, s.max, s.n),
        (2_400.0, 2_300.0, 2_500.0, 3)
    );
    assert_eq!((f.repetitions, f.no_switch), (3, 0));
    assert_eq!(f.switch_median_ms, Some(2_400.0));
    assert_eq!(f.outage_ms.unwrap().max, 2_510.0);
    assert_eq!(
        (f.target.as_str(), f.kind.as_str()),
        ("backend.master", "kill")
    );
    let h = c0.headline.as_ref().unwrap();
    assert_eq!(
        (h.workload.as_str(), h.switch_ms),
        ("backend_master_kill", Some(2_400.0))
    );
    // Cell 1 is faster on the broker, not on the headline.
    let c1 = a.cell(1).unwrap();
    assert_eq!(c1.headline.as_ref().unwrap().switch_ms, Some(2_300.0));
    // Lost and duplicated are the whole workload's counts (the rows say 1 a window).
    assert_eq!(f.duplicated, 0);
}

#[test]
fn a_repetition_without_a_switch_counts_as_the_slowest_and_is_shown() {
    let mut specs = five();
    specs[1].switch[0] = vec![Some(1_000.0), Some(1_200.0), None];
    specs[2].switch[0] = vec![Some(1_000.0), None, None];
    let a = analysed(&specs);
    let f = a.cell(1).unwrap().fault("broker_primary_kill").unwrap();
    assert_eq!((f.repetitions, f.no_switch), (3, 1));
    assert_eq!(f.switch_median_ms, Some(1_200.0));
    assert_eq!(f.switch_ms.unwrap().n, 2);
    let c2 = a.cell(2).unwrap();
    let f = c2.fault("broker_primary_kill").unwrap();
    assert_eq!((f.no_switch, f.switch_median_ms), (2, None));
    // No switch in the median repetition: the slowest possible headline.
    let h = c2.headline.as_ref().unwrap();
    assert_eq!(
        (h.workload.as_str(), h.switch_ms),
        ("broker_primary_kill", None)
    );
    assert_eq!(c2.headline_rank_ms(), f64::INFINITY);
    assert_eq!(pareto::headline_text(c2), "no switch (broker_primary_kill)");
}

#[test]
fn stall_pauses_that_made_haproxy_or_sentinel_act_are_false_failovers() {
    let mut specs = five();
    // Pause 0: HAProxy DOWN; pause 1: Sentinel switch (+sdown too); pause 2: both.
    specs[1].stall = vec![
        (true, false),
        (false, true),
        (true, true),
        (false, false),
        (false, false),
        (false, false),
    ];
    let a = analysed(&specs);
    let s = a.cell(1).unwrap().stall.as_ref().unwrap();
    assert_eq!(s.pauses, 6);
    assert_eq!(s.false_failovers, 3);
    assert_eq!(
        (
            s.proxy_down,
            s.sentinel_sdown,
            s.sentinel_switch,
            s.client_reconnected
        ),
        (2, 2, 2, 3)
    );
    assert_eq!(s.source, Source::Own);
    assert_eq!(a.reference().unwrap().false_failovers(), Some(0));
}

#[test]
fn the_front_minimises_headline_and_false_failovers_and_the_recommendation_rides_out_stalls() {
    let a = analysed(&five());
    // Cell 1 (2.3 s, 2) is beaten by cell 3 (0.9 s… 1.5 s headline, 0); cell 2 and the
    // reference by cell 3 too.
    assert_eq!(a.front, [3, 4]);
    let r = a.recommendation.as_ref().unwrap();
    assert_eq!((r.cell, r.is_reference), (3, false));
    let text = r.reasons.join("\n");
    crate::testing::assert_has(
        &text,
        &[
            "Recommended: cell 3 (backend.down_after = 200ms). Headline switch time 1.50s (broker_primary_kill)",
            "0 false failovers in 6 stall pauses",
            "HA costs 13 % less throughput",
            "holds cells 3, 4; 1 of 2 rode out every stall pause",
            "headline switch 2.40s → 1.50s, false failovers 0 → 0, cost 12 % → 13 % less throughput",
            "backend_master_kill 2.40s → 900.0ms",
        ],
    );
}

#[test]
fn ties_go_to_the_cheaper_cell_then_the_lower_index() {
    let mut specs = five();
    // Cell 2 now equals cell 3 on switch times and false failovers, and is cheaper.
    specs[2] = CellSpec::new(["2s", "200ms"], 1_500.0, 900.0, 0, 4_450.0);
    let a = analysed(&specs);
    assert_eq!(a.front, [2, 4], "the dearer twin is dominated");
    assert_eq!(a.recommendation.as_ref().unwrap().cell, 2);
    // Exactly equal: both stay on the front and the lower index wins.
    specs[2].throughput = 4_350.0;
    let a = analysed(&specs);
    assert_eq!(a.front, [2, 3, 4]);
    assert_eq!(a.recommendation.as_ref().unwrap().cell, 2);
}

#[test]
fn a_paused_redis_master_marked_down_by_haproxy_is_an_outage_not_a_failover() {
    use crate::metrics::failover::FailoverRow;
    let row = |target: &str, down: bool, switch: bool| FailoverRow {
        workload: super::STALL_WORKLOAD.into(),
        target: target.into(),
        kind: "pause".into(),
        proxy_down_ms: down.then_some(700.0),
        sentinel_switch_ms: switch.then_some(2_200.0),
        ..Default::default()
    };
    // No other master to route to: clients wait, nothing moved.
    assert!(!super::cell::moved_service(&row(
        "backend.master",
        true,
        false
    )));
    // The Sentinels promoted the replica: a failover.
    assert!(super::cell::moved_service(&row(
        "backend.master",
        true,
        true
    )));
    // The broker's clients were sent to a backup node: a failover.
    assert!(super::cell::moved_service(&row(
        "broker.primary",
        true,
        false
    )));
    assert!(!super::cell::moved_service(&row(
        "broker.primary",
        false,
        false
    )));
}

#[test]
fn without_a_cell_free_of_false_failovers_the_fewest_win() {
    let mut specs = five();
    for (i, s) in specs.iter_mut().enumerate() {
        s.stall = (0..6).map(|k| (k <= i, false)).collect();
    }
    // False failovers 1, 2, 3, 4, 5: cell 0 has the fewest.
    let a = analysed(&specs);
    let r = a.recommendation.as_ref().unwrap();
    assert_eq!(r.cell, 0);
    assert!(r.is_reference);
    let text = r.reasons.join("\n");
    crate::testing::assert_has(
        &text,
        &[
            "none rode out every stall pause, so the fewest false failovers (1) decide",
            "already the best setting measured",
        ],
    );
}

#[test]
fn a_cell_that_duplicated_tasks_never_pushes_one_that_did_not_off_the_front() {
    let mut specs = five();
    // The reference (2.4 s, no false failover) is beaten by cell 3 (1.5 s, none) unless
    // cell 3 ran tasks twice.
    let a = analysed(&specs);
    assert!(!a.front.contains(&0), "{:?}", a.front);
    specs[3].duplicated = 40;
    let a = analysed(&specs);
    assert!(
        a.front.contains(&0) && a.front.contains(&3),
        "{:?}",
        a.front
    );
    // Both without false failovers and lost tasks: the fewer tasks run twice wins.
    assert_eq!(a.recommendation.as_ref().unwrap().cell, 0);
}

#[test]
fn a_cell_that_lost_tasks_is_flagged_and_never_pushes_a_lossless_one_off_the_front() {
    let mut specs = five();
    // The short down-after lost tasks: the reference (no loss) stays on the front.
    specs[3].lost = 7;
    let a = analysed(&specs);
    assert_eq!(a.cell(3).unwrap().lost_tasks, 7);
    assert_eq!(a.front, [0, 1, 3, 4]);
    let r = a.recommendation.as_ref().unwrap();
    assert_eq!(r.cell, 0, "zero false failovers, then no losses");
    // Every cell without false failovers lost tasks: none of them pushes another off the
    // front (each harmed a different number of tasks), and a cell that kept every task
    // comes first, even with false failovers.
    specs[0].lost = 2;
    specs[2].lost = 1;
    let a = analysed(&specs);
    assert_eq!(a.front, [0, 1, 2, 3, 4]);
    assert_eq!(a.recommendation.as_ref().unwrap().cell, 1);
    // Every cell lost tasks: the fewest false failovers, then the fastest headline, and
    // the losses said.
    specs[1].lost = 3;
    specs[4].lost = 5;
    let a = analysed(&specs);
    let r = a.recommendation.as_ref().unwrap();
    assert_eq!(r.cell, 3);
    crate::testing::assert_has(
        &r.reasons.join("\n"),
        &["It lost 7 tasks", "lost tasks 2 → 7"],
    );
}

#[test]
fn cells_not_measured_are_listed_and_left_out_of_the_front() {
    let mut specs = five();
    specs[3].status = CellStatus::Failed;
    specs[4].status = CellStatus::Planned;
    let a = analysed(&specs);
    assert_eq!(a.not_measured, [3, 4]);
    assert_eq!(a.status, crate::record::sweep::SweepStatus::Interrupted);
    let c3 = a.cell(3).unwrap();
    assert!(!c3.measured && c3.cost.is_none() && c3.faults.is_empty());
    assert_eq!(c3.error.as_deref(), Some("HAProxy reload failed"));
    assert_eq!(a.front, [0, 1]);
    assert_eq!(a.recommendation.as_ref().unwrap().cell, 0);
    // Nothing measured at all: no recommendation, and recommended.toml says why.
    let mut none = five();
    for s in &mut none {
        s.status = CellStatus::Planned;
    }
    let a = analysed(&none);
    assert!(a.front.is_empty() && a.recommendation.is_none());
    let text = recommend::recommended_toml(&a, fixture::TOPOLOGY).unwrap();
    assert!(text.starts_with("# hab sweep of topologies/ha.toml: no cell was measured"));
}

#[test]
fn workloads_taken_from_the_reference_are_its_figures_marked() {
    let mut specs = five();
    specs[1].from_reference = vec!["backend_master_kill"];
    let a = analysed(&specs);
    let c1 = a.cell(1).unwrap();
    let f = c1.fault("backend_master_kill").unwrap();
    assert_eq!(f.source, Source::Reference);
    let r = a.reference().unwrap().fault("backend_master_kill").unwrap();
    assert_eq!(f.switch_ms, r.switch_ms);
    // In plan order, and its own broker figures stay its own.
    let names: Vec<&str> = c1.faults.iter().map(|f| f.workload.as_str()).collect();
    assert_eq!(names, ["broker_primary_kill", "backend_master_kill"]);
    assert_eq!(c1.fault("broker_primary_kill").unwrap().source, Source::Own);
}

#[test]
fn a_setting_read_back_otherwise_is_a_mismatch() {
    let mut runs = sweep(&five());
    let rb = &mut runs.index.cells[1].setting.read_back[0];
    rb.found = "inter 250".into();
    rb.matches = false;
    let a = analyse(&runs).unwrap();
    assert_eq!(
        a.cell(1).unwrap().mismatches,
        ["proxy.check_interval: asked for 50ms, haproxy show servers state said inter 250"]
    );
    assert!(a.cell(0).unwrap().mismatches.is_empty());
}

/// The source's lines that do not mention `fields` all appear in `out`, in order.
fn other_lines_survive(source: &str, out: &str, fields: &[&str]) {
    let mut rest = out.lines();
    for line in source.lines() {
        if fields.iter().any(|f| line.trim_start().starts_with(f)) {
            continue;
        }
        assert!(
            rest.any(|l| l == line),
            "line {line:?} is missing or out of order in:\n{out}"
        );
    }
}

fn with_values(pairs: &[(&str, &str)]) -> crate::config::Topology {
    let source = parse_topology(fixture::TOPOLOGY, Path::new("ha.toml")).unwrap();
    let values: Vec<(&str, KnobValue)> = pairs
        .iter()
        .map(|(k, v)| {
            let knob = crate::config::sweep::knob::find(k).unwrap();
            let toml = vary::value_from_text(knob, v).unwrap();
            (
                *k,
                KnobValue {
                    text: v.to_string(),
                    toml: Some(toml),
                },
            )
        })
        .collect();
    let refs: Vec<(&str, &KnobValue)> = values.iter().map(|(k, v)| (*k, v)).collect();
    vary::apply(&source, &refs).unwrap()
}

#[test]
fn recommended_toml_changes_only_the_swept_keys_and_says_what_each_bought() {
    let a = analysed(&five());
    let text = recommend::recommended_toml(&a, fixture::TOPOLOGY).unwrap();
    let parsed = parse_topology(&text, Path::new("recommended.toml")).unwrap();
    assert_eq!(parsed, with_values(&[("backend.down_after", "200ms")]));
    crate::testing::assert_has(
        &text,
        &[
            "down_after = \"200ms\" # hab sweep: was \"1s\"; median switch 2.40s → 1.50s, false failovers 0 → 0, cost 12 % → 13 %\n",
            // The line's own comment, kept above it.
            "# down-after-milliseconds: +sdown 0.6–1.1 s",
        ],
    );
    other_lines_survive(fixture::TOPOLOGY, &text, &["down_after"]);
    // The aggressive corner changes both knobs (check_interval's own comment kept).
    let mut specs = five();
    specs[4].stall = vec![(false, false); 6];
    let a = analysed(&specs);
    assert_eq!(a.recommendation.as_ref().unwrap().cell, 4);
    let text = recommend::recommended_toml(&a, fixture::TOPOLOGY).unwrap();
    let parsed = parse_topology(&text, Path::new("recommended.toml")).unwrap();
    assert_eq!(
        parsed,
        with_values(&[
            ("proxy.check_interval", "50ms"),
            ("backend.down_after", "200ms")
        ])
    );
    assert!(text.contains("check_interval = \"50ms\" # hab sweep: was \"250ms\""));
    assert!(text.contains("# HAProxy `inter`: Redis writes succeed again"));
    other_lines_survive(fixture::TOPOLOGY, &text, &["down_after", "check_interval"]);
}

#[test]
fn recommended_toml_is_the_topology_unchanged_when_the_reference_wins() {
    let mut specs = five();
    specs.truncate(3);
    let a = analysed(&specs);
    assert!(a.recommendation.as_ref().unwrap().is_reference);
    let text = recommend::recommended_toml(&a, fixture::TOPOLOGY).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    assert_eq!(
        header,
        "# hab sweep of topologies/ha.toml: the reference cell (this topology as written) was the best setting measured; this file is the topology unchanged."
    );
    assert_eq!(rest, fixture::TOPOLOGY);
    parse_topology(&text, Path::new("recommended.toml")).unwrap();
}

#[test]
fn a_knob_the_source_leaves_out_is_added_to_its_table() {
    let mut runs = sweep(&five());
    // `proxy.master_min_uptime` is commented out in ha.toml: absent.
    runs.index.knobs[0] = crate::record::sweep::KnobRecord {
        key: "proxy.master_min_uptime".into(),
        current: "absent".into(),
        values: vec!["20s".into()],
        apply: crate::config::sweep::ApplyKind::ProxyReload,
        affects: crate::config::sweep::FaultScope::Backend,
    };
    for c in &mut runs.index.cells {
        c.values[0] = if c.index == 3 { "20s" } else { "absent" }.into();
    }
    let a = analyse(&runs).unwrap();
    assert_eq!(a.recommendation.as_ref().unwrap().cell, 3);
    let text = recommend::recommended_toml(&a, fixture::TOPOLOGY).unwrap();
    let parsed = parse_topology(&text, Path::new("recommended.toml")).unwrap();
    assert_eq!(
        parsed,
        with_values(&[
            ("proxy.master_min_uptime", "20s"),
            ("backend.down_after", "200ms")
        ])
    );
    assert!(
        text.contains("master_min_uptime = \"20s\" # hab sweep: was not set;"),
        "{text}"
    );
}

#[test]
fn without_the_baselines_start_run_costs_are_unknown_and_said_so() {
    let mut runs = sweep(&five());
    runs.baseline_start =
        super::LoadedCell::missing("interrupted before its run directory existed");
    runs.index.baseline_runs[0].status = CellStatus::Interrupted;
    runs.index.baseline_runs[0].dir = None;
    let a = analyse(&runs).unwrap();
    let start = a.baseline.start.as_ref().unwrap();
    assert!(start.cost.is_none());
    assert_eq!(
        start.problem.as_deref(),
        Some("interrupted before its run directory existed")
    );
    assert_eq!(a.baseline.drift_throughput_pct, None);
    let c0 = a.reference().unwrap();
    assert_eq!((c0.cost_throughput_pct, c0.cost_p99_pct), (None, None));
    // The cell's own throughput is still there; the recommendation does not need a cost.
    assert_eq!(c0.cost.as_ref().unwrap().throughput_per_s.median, 4_400.0);
    assert_eq!(pareto::cost_text(c0), "cost not measured");
    assert_eq!(a.recommendation.as_ref().unwrap().cell, 3);
}

#[test]
fn a_stall_phase_taken_from_the_reference_is_marked() {
    let mut specs = five();
    specs[2].from_reference = vec![STALL_WORKLOAD];
    specs[2].stall = vec![(true, true); 6];
    let a = analysed(&specs);
    let s = a.cell(2).unwrap().stall.as_ref().unwrap();
    assert_eq!(s.source, Source::Reference);
    assert_eq!(s.false_failovers, 0, "the reference's, not the spec's");
}

#[test]
fn a_reference_cell_not_measured_is_said_not_compared_with() {
    let mut specs = five();
    specs[0].status = CellStatus::Failed;
    let a = analysed(&specs);
    assert_eq!(a.not_measured, [0]);
    let r = a.recommendation.as_ref().unwrap();
    assert_eq!(r.cell, 3);
    crate::testing::assert_has(
        &r.reasons.join("\n"),
        &["The reference cell 0 (the topology as written) was not measured"],
    );
}
