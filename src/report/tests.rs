//! Unit tests of the report: its sections, files and rendering of comparison and run
//! directories.

use super::*;
use crate::compare::fixture;
use crate::testing::assert_has;

/// Write the fixture's runs as a comparison directory.
pub(super) fn comparison_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for t in fixture::run_set().topologies {
        for r in t.runs {
            let d = dir
                .path()
                .join(format!("{}-{}", r.report.started_unix_ms, t.name));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("run.json"), serde_json::to_vec(&r.report).unwrap()).unwrap();
        }
    }
    std::fs::write(
        dir.path().join(crate::record::names::INDEX_FILE),
        r#"{"topologies": ["standalone", "ha"]}"#,
    )
    .unwrap();
    dir
}

#[test]
fn repetitions_not_applied_beside_applied_ones_show_in_the_reps_cell() {
    let mut c = Comparison::from_runs(&fixture::run_set()).unwrap();
    let f = c.faults.iter_mut().find(|f| f.applied == 2).unwrap();
    f.unapplied = vec!["SENTINEL FAILOVER was accepted but no replica was promoted".into()];
    let md = doc::markdown(&failover_table(&c));
    assert!(md.contains("| 2 (+1 not applied) |"), "{md}");
}

/// The fixture with both topologies calibrated: the trivial burst (standalone 5,000
/// tasks/s, ha 2,500) against a broker round trip set so that it runs at `fractions`
/// (standalone, ha) of it.
fn calibrated(fractions: (f64, f64)) -> Comparison {
    let mut set = fixture::run_set();
    let plan = serde_json::json!({"name": "fixture", "workload": [
        {"name": "trivial", "task": {"kind": "trivial"}, "arrival": "burst"},
    ]});
    for t in &mut set.topologies {
        let (tp, fraction) = if t.name == "ha" {
            (2_500.0, fractions.1)
        } else {
            (5_000.0, fractions.0)
        };
        for run in &mut t.runs {
            run.report.workload_plan = plan.clone();
            let mut cal = crate::record::Calibration::default();
            cal.figures.broker_round_trip = Some(crate::record::Figure {
                value: tp / fraction,
                unit: "msg/s".into(),
                ..Default::default()
            });
            run.report.calibration = Some(cal);
        }
    }
    Comparison::from_runs(&set).unwrap()
}

#[test]
fn a_task_path_above_its_ceiling_is_a_finding_and_within_5_percent_is_at_the_ceiling() {
    // standalone 16 % above its ceiling (the main job's report: 115 %, 116 %), ha 3 %
    // above it.
    let c = calibrated((1.16, 1.03));
    let md = doc::markdown(&raw_limit_table(&c));
    let terminal = crate::compare::terminal::render(&c);
    for (what, text) in [("report", &md), ("terminal", &terminal)] {
        assert!(!text.contains("116 %"), "{what}: {text}");
        assert!(!text.contains("103 %"), "{what}: {text}");
        assert!(text.contains("at the ceiling"), "{what}: {text}");
        assert!(text.contains("calibration invalid"), "{what}: {text}");
    }
    let invalid: Vec<&String> = c
        .findings
        .caveats
        .iter()
        .filter(|f| f.contains("the calibration is invalid"))
        .collect();
    assert_eq!(invalid.len(), 1, "{:#?}", c.findings);
    assert!(
        invalid[0].contains("standalone") && invalid[0].contains("trivial"),
        "{}",
        invalid[0]
    );
    assert!(invalid[0].contains("16 % above"), "{}", invalid[0]);
    // 3 % below is at the ceiling too; 10 % below is a plain percentage; no finding.
    let c = calibrated((0.97, 0.9));
    let md = doc::markdown(&raw_limit_table(&c));
    assert!(md.contains("at the ceiling") && md.contains("90 %"), "{md}");
    assert!(!md.contains("97 %"), "{md}");
    assert!(
        !c.findings
            .all()
            .any(|f| f.contains("calibration is invalid")),
        "{:#?}",
        c.findings
    );
}

#[test]
fn the_failover_table_names_the_phases_seen_out_of_order() {
    let mut set = fixture::run_set();
    // In one of ha's two runs HAProxy's new route was seen 150 ms after the fault,
    // after the first task had completed (100 ms).
    let row = &mut set.topologies[1].runs[0].report.failover[0];
    assert_eq!(row.switch_time_ms, Some(100.0));
    row.proxy_up_ms = Some(150.0);
    let c = Comparison::from_runs(&set).unwrap();
    let blocks = failover_table(&c);
    let Some(Block::Table { head, rows, .. }) =
        blocks.iter().find(|b| matches!(b, Block::Table { .. }))
    else {
        panic!("no table")
    };
    let order = head
        .iter()
        .position(|h| h == "order")
        .unwrap_or_else(|| panic!("no order column: {head:?}"));
    let cell = |topology: &str, fault: &str| {
        rows.iter()
            .find(|r| r[2] == topology && r[0].starts_with(fault))
            .map(|r| r[order].clone())
            .unwrap()
    };
    // …so the client's reconnection (80 ms) came before it, too.
    assert_eq!(cell("ha", "broker.primary"), "proxy up 1/2, reconnect 1/2");
    assert_eq!(cell("standalone", "broker.primary"), "ordered");
    let md = doc::markdown(&blocks);
    assert_has(
        &md,
        &["order = the anatomy phases an observer saw out of order"],
    );
}

#[test]
fn each_observed_column_says_its_observers_resolution() {
    let c = Comparison::from_runs(&fixture::run_set()).unwrap();
    let md = doc::markdown(&failover_table(&c));
    let proxy = format!("{} ms", crate::observe::server::PROXY_POLL.as_millis());
    // Beside the columns one poller fills…
    assert!(md.contains(&format!("proxy up ({proxy} poll)")), "{md}");
    assert!(md.contains(&format!("2 masters ({proxy} poll)")), "{md}");
    // …and per observer for every anatomy column, the queue leader's pollers included.
    for needle in [
        "Observer resolution".to_string(),
        format!(
            "every {} ms after the previous call returned",
            crate::observe::server::LEADER_POLL.as_millis()
        ),
        format!("every {} ms", crate::observe::management::POLL.as_millis()),
        "stamped when the query that saw the change started".to_string(),
    ] {
        assert!(md.contains(&needle), "{needle} missing: {md}");
    }
}

#[test]
fn negative_intervals_and_clocks_are_reported_per_stage() {
    let mut set = fixture::run_set();
    let run = &mut set.topologies[0].runs[0].report;
    let w = &mut run.workloads[0];
    w.negative_intervals = [("result_delay".to_string(), 3), ("service".to_string(), 0)]
        .into_iter()
        .collect();
    let seen = w.stages["result_delay"].count;
    run.clock = Some(crate::record::ClockReport::new(Vec::new()));
    let md = crate::report::doc::markdown(&clock_section(&set));
    assert!(md.contains("## Clocks and negative intervals"), "{md}");
    assert!(md.contains(&format!("3 of {}", seen + 3)), "{md}");
    assert!(md.contains("not counted"), "{md}");
    assert!(md.contains("0 of them off the run's time line"), "{md}");
    assert_has(&md, &["made before hab stamped every interval"]);
}

#[test]
fn a_comparison_directory_renders_every_report_file() {
    let dir = comparison_dir();
    let c = render_dir(dir.path()).unwrap();
    assert_eq!(c.baseline, "standalone");
    assert_eq!(c.topologies[1].runs.len(), 2);
    for f in [
        "summary.json",
        "report.md",
        "report.html",
        "standalone-trivial.hgrm",
        "ha-trivial.hgrm",
        "ha-broker_kill.hgrm",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let summary: Comparison =
        serde_json::from_slice(&std::fs::read(dir.path().join("summary.json")).unwrap()).unwrap();
    // (Floats may differ in the last bit after a JSON round trip.)
    assert_eq!(summary.findings, c.findings);
    assert_eq!(summary.topologies, c.topologies);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.starts_with("# hab comparison: standalone vs ha — fixture workload"),
        "{md}"
    );
    assert_has(
        &md,
        &["| ha | 2 | 200 | 200 | 2500/s (2000–3000) | 0.50× |"],
    );
    assert!(md.contains("## Findings"));
    assert!(md.contains("| RabbitMQ | 3.10.8 | 3.10.8 |"), "{md}");
    // The merged histogram of ha has both repetitions.
    let hgrm = std::fs::read_to_string(dir.path().join("ha-trivial.hgrm")).unwrap();
    assert!(hgrm.contains("Total count    =          200]"), "{hgrm}");
}

#[test]
fn the_idle_matrix_is_rendered_from_run_json_when_hab_proxy_cut_something() {
    use crate::metrics::idle::{AffectedTasks, IdleReport, IdleSettings, WorkloadAffected};
    let mut late = crate::metrics::LatencyHistogram::new();
    late.record(1_000_000_000);
    let dir = tempfile::tempdir().unwrap();
    for t in fixture::run_set().topologies {
        for (k, mut r) in t.runs.into_iter().enumerate() {
            if t.name == "ha" {
                r.report.idle = Some(IdleReport {
                    settings: IdleSettings {
                        heartbeat_s: 0,
                        keepalive_ms: 0,
                        timeout_client_ms: 5000,
                        timeout_server_ms: 5000,
                    },
                    sessions: 10,
                    cuts: [("broker".to_string(), 2), ("backend".to_string(), 3)].into(),
                    client_errors: [("workers".to_string(), 4)].into(),
                    workloads: vec![WorkloadAffected {
                        workload: "trivial".into(),
                        p50_us: 1_000_000_000,
                        // Run-relative: nothing delayed (its own p50 is huge) …
                        tasks: AffectedTasks {
                            overlapping: 6,
                            affected: 5,
                            duplicated: 5,
                            ..AffectedTasks::default()
                        },
                        // … but against the baseline's p50 one task run once is.
                        at_cut_ok_once_latency: late.to_base64(),
                    }],
                    ..IdleReport::default()
                });
            }
            let d = dir.path().join(format!("{k}-{}", t.name));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("run.json"), serde_json::to_vec(&r.report).unwrap()).unwrap();
        }
    }
    let c = render_dir(dir.path()).unwrap();
    assert_eq!(c.idle.len(), 1, "{:?}", c.idle);
    assert_eq!(c.idle[0].cuts["backend"], 6, "two repetitions summed");
    assert!(c.idle[0].delayed_against_baseline);
    assert_eq!((c.idle[0].tasks.delayed, c.idle[0].tasks.affected), (2, 12));
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("## Idle timeouts through HAProxy"), "{md}");
    assert!(
        md.contains(
            "| ha | 2 | off | off | 5s | 4 | 6 | 8 (workers 8) | 0 | 12 | 12 | 2 | 0 | 0 | 10 |"
        ),
        "{md}"
    );
    assert!(
        c.findings
            .failover
            .iter()
            .any(|f| f.contains("HAProxy cut 10 idle connection(s)")),
        "{:?}",
        c.findings
    );
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("Idle timeouts through HAProxy"));
    assert!(crate::compare::terminal::render(&c).contains("idle timeouts through HAProxy"));
    // Without idle reports (the plain fixture), no section.
    let plain = comparison_dir();
    render_dir(plain.path()).unwrap();
    let md = std::fs::read_to_string(plain.path().join("report.md")).unwrap();
    assert!(!md.contains("Idle timeouts"), "{md}");
}

#[test]
fn report_html_is_well_formed_and_self_contained() {
    let dir = comparison_dir();
    render_dir(dir.path()).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("report.html is not well-formed: {e}"));
    let tables = doc
        .descendants()
        .filter(|n| n.has_tag_name("table"))
        .count();
    assert!(tables >= 3, "{tables} tables");
    // Nothing is fetched from elsewhere: no src/href outside data: URIs.
    for n in doc.descendants() {
        for a in ["src", "href"] {
            if let Some(v) = n.attribute(a) {
                assert!(v.starts_with("data:"), "{a}={v}");
            }
        }
    }
}

#[test]
fn a_single_run_directory_gets_its_report_beside_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let set = fixture::run_set();
    let r = &set.topologies[1].runs[0].report;
    std::fs::write(dir.path().join("run.json"), serde_json::to_vec(r).unwrap()).unwrap();
    let c = render_dir(dir.path()).unwrap();
    assert_eq!(c.topologies.len(), 1);
    assert!(dir.path().join("report.json").is_file());
    assert!(!dir.path().join("summary.json").exists());
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.starts_with("# hab run: ha — fixture workload"), "{md}");
}

#[test]
fn a_directory_without_runs_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = render_dir(dir.path()).unwrap_err();
    assert!(format!("{e:#}").contains("holds no run.json"), "{e:#}");
}
