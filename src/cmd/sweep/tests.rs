use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::config::sweep::DesignKind;
use crate::testing::assert_has;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Options with every path taken from the repository root (tests do not run there).
fn opts(vary: &[&str]) -> SweepOptions {
    SweepOptions {
        topology: root().join("topologies/ha.toml"),
        vary: vary.iter().map(|s| s.to_string()).collect(),
        workload: Some(root().join(DEFAULT_WORKLOAD)),
        baseline: Some(root().join(DEFAULT_BASELINE)),
        ..SweepOptions::default()
    }
}

fn with_file(vary: &[&str]) -> SweepOptions {
    SweepOptions {
        sweep: Some(root().join(DEFAULT_SWEEP_FILE)),
        ..opts(vary)
    }
}

#[test]
fn the_default_sweep_on_ha_is_one_knob_at_a_time_and_the_aggressive_corner_within_its_budget() {
    let p = plan(&with_file(&[])).unwrap();
    let d = &p.design;
    assert_eq!(d.kind, DesignKind::OneAtATime);
    assert_eq!(d.cells.len(), 10);
    assert_eq!(d.requested, [9]);
    let corner: Vec<&str> = d.cells[9].values.iter().map(|v| v.text.as_str()).collect();
    assert_eq!(corner, ["50ms", "1", "1s", "200ms"]);
    // Stage 1 leaves less than a cell of the budget: stage 2 is planned but gets none.
    assert_eq!(d.stage2.as_ref().unwrap().cells, 0);
    assert!(
        d.planned_s <= 37.0 * 60.0 && d.total_s <= 37.0 * 60.0,
        "{}",
        d.total_s
    );
    assert_eq!(p.repetitions, Some(2));
    assert_eq!(p.topology.name, "ha");
    assert_eq!(p.workload.name, "sweep");
    assert_eq!(p.baseline.name, "standalone");
    assert_has(&p.budget_from, &["budget in ", "sweeps/default.toml"]);
    let text = render_text(&p, true);
    assert_has(
        &text,
        &[
            "design: one knob at a time (reduced): the full grid (81 cells)",
            "proxy.check_interval  50ms [250ms] 2s",
            "HAProxy reload; affects broker+backend faults",
            "SENTINEL SET; affects backend faults",
            "cell  1  group 1  proxy.check_interval=50ms proxy.fall=2",
            "proxy.check_interval -> 50ms by HAProxy reload (settle 0.1 s, A4)",
            "2 repetitions × 4 faults × 20 s = 160 s of faults",
            "broker+backend: 0.2 + 7.0 + 9.0 + 49.0 + 49.0 + 49.0 + 49.0 + 38.0 = 250.2",
            "A1: bursts and warm-ups run at 1000 trivial tasks/s",
            "stage 2: a grid on the two knobs",
            "stage 1 leaves 39s of the budget: no room for one; a budget of ~53m 27s would hold all 4",
            "then the 1 cell(s) the sweep file asks for ([[cell]]): 10 cells",
            "backend.down_after=200ms  (asked for by [[cell]])",
        ],
    );
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["design"]["kind"], "one_at_a_time");
    assert_eq!(json["topology"]["name"], "ha");
    assert_eq!(json["design"]["cells"][1]["values"][0]["text"], "50ms");
    assert_eq!(json["design"]["knobs"][3]["knob"]["apply"], "sentinel_set");
    let applied = &json["design"]["cells"][8]["applied"][0];
    assert_eq!(applied["key"], "backend.down_after");
    assert_eq!(applied["how"], "sentinel_set");
}

#[test]
fn vary_replaces_the_files_knob_of_the_same_key_and_flags_override_the_file() {
    let mut o = with_file(&["proxy.fall=1,3", "proxy.rise=1"]);
    o.budget = Some(Duration::from_secs(3 * 3600));
    let p = plan(&o).unwrap();
    let keys: Vec<&str> = p.design.knobs.iter().map(|k| k.knob.key).collect();
    assert_eq!(
        keys,
        [
            "proxy.check_interval",
            "proxy.fall",
            "broker.heartbeat",
            "backend.down_after",
            "proxy.rise"
        ]
    );
    assert_eq!(p.design.knobs[1].values.len(), 2);
    assert_eq!(p.budget_from, "--budget");
    assert_has(
        &render_text(&p, true),
        &["budget    3h (--budget)", ": room for 4 of them, at most ~"],
    );
    // Without a sweep file --vary alone is the plan, with the defaults.
    let alone = plan(&opts(&["proxy.fall=1,3"])).unwrap();
    assert_eq!(alone.design.knobs.len(), 1);
    assert_eq!(alone.sweep_file, None);
    assert_eq!(alone.budget_from, "the default budget");
    assert_eq!(alone.design.kind, DesignKind::Grid);
}

#[test]
fn bad_input_is_an_error_of_its_own_kind_naming_the_flag_or_the_file() {
    let e = plan(&opts(&["proxy.fall=0,x", "proxy.inter=1"])).unwrap_err();
    assert!(is_bad_input(&e));
    assert_has(
        &format!("{e:#}"),
        &[
            // In the order given.
            "hab sweep: 3 problems:\n  \
             --vary proxy.fall=0,x: proxy.fall = 0: must be between 1 and 100, got 0\n  \
             --vary proxy.fall=0,x: proxy.fall = x: not a whole number",
            "--vary proxy.inter=1: unknown knob \"proxy.inter\"",
        ],
    );
    let e = plan(&opts(&["proxy.fall=1", "proxy.fall=3"])).unwrap_err();
    assert_has(&e.to_string(), &["varied by another --vary too"]);
    // The default file's knobs on a topology without HAProxy: located in the file.
    let mut o = with_file(&[]);
    o.topology = root().join("topologies/standalone.toml");
    let e = plan(&o).unwrap_err();
    assert!(is_bad_input(&e));
    assert_has(
        &e.to_string(),
        &["sweep file ", "knob[0] (\"proxy.check_interval\").values"],
    );
    // A budget no design fits names where it came from.
    let mut o = opts(&["proxy.fall=1,3"]);
    o.budget = Some(Duration::from_secs(60));
    let e = plan(&o).unwrap_err();
    assert!(is_bad_input(&e));
    assert_has(
        &e.to_string(),
        &["the budget of 1m is too short", "(--budget)"],
    );
    // Said once, not again as a cause.
    assert_eq!(format!("{e:#}").matches("too short").count(), 1);
    // A missing topology is a config error, too.
    let mut o = opts(&["proxy.fall=1"]);
    o.topology = PathBuf::from("/nonexistent/t.toml");
    assert!(is_bad_input(&plan(&o).unwrap_err()));
    assert!(!is_bad_input(&anyhow::anyhow!("something else")));
}
