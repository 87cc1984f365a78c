//! Live test of `hab compare` (standalone baseline vs the shipped HA topology, smoke
//! workload, real servers) and of `hab report` re-rendering its directory.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

fn only_subdir_with(out: &Path, suffix: &str) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && p.to_string_lossy().ends_with(suffix))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn compare_writes_runs_charts_report_and_json_and_report_rerenders_it() {
    let out = tempfile::tempdir().unwrap();
    let output = common::hab()
        .current_dir(root())
        .args([
            "compare",
            "--topology",
            "topologies/ha.toml",
            "--workload",
            "workloads/smoke.toml",
            "--no-progress",
            "--json",
            // Impossible to meet: HA never has 0.0001× the baseline's p99.
            "--max-p99-ratio",
            "0.0001",
            "--max-lost",
            "0",
            "--out",
        ])
        .arg(out.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A crossed threshold: exit 1, naming what crossed it.
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("threshold crossed: trivial: ha p99 is"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("threshold crossed: standalone"),
        "{stderr}"
    );
    // Every server is gone.
    let cmp = only_subdir_with(out.path(), "-compare-smoke");
    assert_no_procs_left(&cmp.display().to_string(), Duration::from_secs(10));

    // --json: stdout is one JSON document, nothing else.
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(json["complete"], true);
    assert_eq!(json["comparison"]["baseline"], "standalone");
    let crossed = json["crossed"].as_array().unwrap();
    assert!(!crossed.is_empty());
    assert!(
        crossed
            .iter()
            .all(|c| c["threshold"] == "max-p99-ratio" && c["topology"] == "ha")
    );
    let workloads = json["comparison"]["workloads"].as_array().unwrap();
    let names: Vec<&str> = workloads
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "trivial",
            "sleep",
            "write_zeros",
            "factorial",
            "trivial_rate"
        ]
    );
    for w in workloads {
        let rows = w["rows"].as_array().unwrap();
        let topos: Vec<&str> = rows
            .iter()
            .map(|r| r["topology"].as_str().unwrap())
            .collect();
        assert_eq!(topos, ["standalone", "ha"], "{w}");
        for r in rows {
            assert_eq!(r["ok"], r["count"], "{r}");
            assert_eq!(r["lost"], 0, "{r}");
        }
        assert_eq!(rows[0]["throughput_ratio"], 1.0);
    }

    // One run directory per topology, each complete with its own files.
    for topo in ["standalone", "ha"] {
        let run = only_subdir_with(&cmp, &format!("-{topo}-smoke"));
        let report = run_json(&run);
        assert_eq!(report["status"], "complete", "{topo}");
        assert!(!report["timeline"].as_array().unwrap().is_empty());
        for f in [
            "run.json",
            "summary.csv",
            "tasks.csv",
            "timeline.csv",
            "failover.csv",
            "events.csv",
        ] {
            assert!(run.join(f).is_file(), "{topo}: {f}");
        }
        assert!(run.join(format!("{topo}.hlog")).is_file());
        for w in &names {
            assert!(
                run.join(format!("{topo}-{w}.hgrm")).is_file(),
                "{topo}-{w}.hgrm"
            );
            // The comparison directory has the merged distributions too.
            assert!(cmp.join(format!("{topo}-{w}.hgrm")).is_file());
        }
    }
    // Charts (SVG and PNG), the report in both forms, the index and the summary.
    let mut expected: Vec<String> = vec![
        "throughput".into(),
        "timeline-standalone".into(),
        "timeline-ha".into(),
    ];
    for w in &names {
        expected.push(format!("latency-{w}"));
        expected.push(format!("stages-{w}"));
    }
    for c in &expected {
        let svg = std::fs::read_to_string(cmp.join("charts").join(format!("{c}.svg")))
            .unwrap_or_else(|e| panic!("{c}.svg: {e}"));
        assert!(svg.contains("<svg"), "{c}");
        let png = std::fs::read(cmp.join("charts").join(format!("{c}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{c}.png");
    }
    for f in ["compare.json", "summary.json", "report.md", "report.html"] {
        assert!(cmp.join(f).is_file(), "{f}");
    }
    let md = std::fs::read_to_string(cmp.join("report.md")).unwrap();
    assert!(
        md.starts_with("# hab comparison: standalone vs ha — smoke workload"),
        "{md}"
    );
    for needle in [
        "## Findings",
        "## Throughput and latency",
        "## Failover",
        "## Setup",
        "RabbitMQ",
        "Redis",
        "HAProxy",
        "![End-to-end latency by percentile: trivial](charts/latency-trivial.svg)",
    ] {
        assert!(md.contains(needle), "report.md lacks {needle:?}");
    }
    let html = std::fs::read_to_string(cmp.join("report.html")).unwrap();
    let doc = roxmltree::Document::parse_with_options(
        &html,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("report.html is not well-formed: {e}"));
    let inlined = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("img")
                && n.attribute("src")
                    .is_some_and(|s| s.starts_with("data:image/svg+xml;base64,"))
        })
        .count();
    assert_eq!(inlined, expected.len(), "every chart inlined");

    // `hab report` renders everything again from run.json, starting nothing.
    let summary_before = std::fs::read_to_string(cmp.join("summary.json")).unwrap();
    std::fs::remove_dir_all(cmp.join("charts")).unwrap();
    std::fs::remove_file(cmp.join("report.html")).unwrap();
    std::fs::remove_file(cmp.join("report.md")).unwrap();
    let rerun = common::hab().arg("report").arg(&cmp).output().unwrap();
    let stdout = String::from_utf8_lossy(&rerun.stdout);
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    assert!(stdout.contains("trivial (hab.trivial)"), "{stdout}");
    assert!(stdout.contains("report: "), "{stdout}");
    assert_eq!(std::fs::read_to_string(cmp.join("report.md")).unwrap(), md);
    assert!(cmp.join("report.html").is_file());
    assert!(cmp.join("charts/latency-trivial.png").is_file());
    assert_eq!(
        std::fs::read_to_string(cmp.join("summary.json")).unwrap(),
        summary_before
    );
    assert!(procs_mentioning(&cmp.display().to_string()).is_empty());
}
