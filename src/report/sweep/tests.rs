use super::*;
use crate::compare::sweep::fixture::{self, five};
use crate::testing::assert_has;

fn written(specs: &[fixture::CellSpec]) -> (tempfile::TempDir, SweepAnalysis) {
    let dir = tempfile::tempdir().unwrap();
    fixture::write(&fixture::sweep(specs), dir.path());
    let a = render_sweep_dir(dir.path()).unwrap();
    (dir, a)
}

#[test]
fn render_sweep_dir_writes_every_file_and_leads_with_the_answer() {
    let (dir, a) = written(&five());
    let d = dir.path();
    for f in [
        "sweep.csv",
        "sweep.json",
        "recommended.toml",
        "report.md",
        "report.html",
        "charts/sweep-pareto.svg",
        "charts/sweep-pareto.png",
        "charts/sweep-knob-proxy.check_interval.png",
        "charts/sweep-knob-backend.down_after.svg",
    ] {
        assert!(d.join(f).is_file(), "{f} missing");
    }
    assert_eq!(a.recommendation.as_ref().unwrap().cell, 3);
    // sweep.json is the analysis.
    let json: SweepAnalysis =
        serde_json::from_str(&std::fs::read_to_string(d.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(json, a);
    // recommended.toml is a topology hab reads.
    let toml = std::fs::read_to_string(d.join("recommended.toml")).unwrap();
    crate::config::parse_topology(&toml, Path::new("recommended.toml")).unwrap();
    assert!(toml.contains("down_after = \"200ms\" # hab sweep: was \"1s\""));
    // The report: the answer first, then the front, every cell, the baseline, settings.
    let md = std::fs::read_to_string(d.join("report.md")).unwrap();
    assert!(
        md.starts_with("# hab sweep: ha — 5 cells against standalone\n"),
        "{md}"
    );
    let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s:?} not in:\n{md}"));
    assert!(at("## Recommendation") < at("## Pareto front"));
    assert!(at("## Pareto front") < at("## Every cell"));
    assert!(at("## Every cell") < at("## Baseline (standalone) and its drift"));
    assert!(at("## Baseline") < at("## How each cell was configured and read back"));
    assert_has(
        &md,
        &[
            "- Recommended: cell 3 (backend.down_after = 200ms). Headline switch time 1.50s (broker_primary_kill) — the slowest of its fault workloads' median switch times",
            "| 3 (recommended) | backend.down_after = 200ms | 1.50s (broker_primary_kill) | 0 of 6 | 13 % less throughput, p99 +",
            "the baseline ran 5.0 % less throughput at the end than at the start",
            "cell 3: cells/03/20260101T000000Z-ha (measured; `hab report cells/03/20260101T000000Z-ha` renders its own report)",
            "| 1.50s (1.40s–1.60s) |",
            "![Sweep: headline switch time against false failovers](charts/sweep-pareto.svg)",
        ],
    );
    assert!(!md.contains("WARNING"), "a complete sweep has no banner");
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(html.contains("<h2>Recommendation</h2>"));
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("report.html is not well-formed: {e}"));
    let images: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("src"))
        .collect();
    assert_eq!(
        images.len(),
        3,
        "the Pareto chart and one per knob, inlined"
    );
    assert!(
        images
            .iter()
            .all(|s| s.starts_with("data:image/svg+xml;base64,"))
    );
    // sweep.csv: a header and a row per cell, knob values and every fault's figures.
    let csv = std::fs::read_to_string(d.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 6);
    assert!(lines[0].starts_with(
        "cell,stage,status,run_status,proxy.check_interval,backend.down_after,on_front,recommended,headline_workload,headline_switch_ms,false_failovers,cost_throughput_pct,cost_p99_pct"
    ));
    assert!(lines[0].contains(",broker_primary_kill.switch_median_ms,"));
    assert!(lines[0].contains(",stall.false_failovers,"));
    assert!(lines[4].starts_with(
        "3,1,measured,complete,250ms,200ms,true,true,broker_primary_kill,1500.0,0,13.00,"
    ));
    // The terminal lines: the answer and the files.
    let t = terminal(&a, d);
    assert!(t.starts_with("Recommended: cell 3"), "{t}");
    assert!(t.contains("recommended.toml"));
}

#[test]
fn an_interrupted_sweep_says_which_cells_were_not_measured() {
    let mut specs = five();
    specs[3].status = CellStatus::Failed;
    specs[4].status = CellStatus::Planned;
    let (dir, a) = written(&specs);
    assert_eq!(a.not_measured, [3, 4]);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert_has(
        &md,
        &[
            "WARNING: This sweep was interrupted. Not measured, so not on the front and not recommendable: cell 3 (failed: HAProxy reload failed); cell 4 (planned: not reached (planned)).",
            "cell 4: no run directory (planned)",
        ],
    );
    let csv = std::fs::read_to_string(dir.path().join("sweep.csv")).unwrap();
    assert!(
        csv.lines()
            .nth(5)
            .unwrap()
            .starts_with("4,1,planned,,50ms,200ms,false,false,,")
    );
}

#[test]
fn a_setting_read_back_otherwise_is_shown_loudly() {
    let mut runs = fixture::sweep(&five());
    let rb = &mut runs.index.cells[2].setting.read_back[0];
    rb.found = "inter 250".into();
    rb.matches = false;
    let dir = tempfile::tempdir().unwrap();
    fixture::write(&runs, dir.path());
    render_sweep_dir(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert_has(
        &md,
        &[
            "SETTINGS READ BACK OTHERWISE THAN ASKED — these cells may not have measured what they say: cell 2: proxy.check_interval: asked for 2s, haproxy show servers state said inter 250.",
            "| MISMATCH: proxy.check_interval: asked for 2s",
            "| proxy.check_interval | 2s | inter 250 (haproxy show servers state) | MISMATCH |",
        ],
    );
}

#[test]
fn switch_cells_show_repetitions_without_a_switch() {
    let a = crate::compare::sweep::analyse(&{
        let mut specs = five();
        specs[1].switch[0] = vec![Some(1_000.0), Some(1_200.0), None];
        specs[2].switch[0] = vec![None, None, None];
        fixture::sweep(&specs)
    })
    .unwrap();
    let f = |c: usize| switch_cell(a.cell(c).unwrap().fault("broker_primary_kill").unwrap());
    assert_eq!(f(0), "1.50s (1.40s–1.60s)");
    assert_eq!(f(1), "1.20s (1.00s–none), 1 of 3 no switch");
    assert_eq!(f(2), "no switch in 3 of 3");
}

#[test]
#[ignore = "writes a sweep directory for a human to look at"]
fn dump_sweep_report() {
    let mut specs = five();
    specs[4].status = CellStatus::Interrupted;
    let d = Path::new("/tmp/sweep-report");
    let _ = std::fs::remove_dir_all(d);
    std::fs::create_dir_all(d).unwrap();
    fixture::write(&fixture::sweep(&specs), d);
    render_sweep_dir(d).unwrap();
}
