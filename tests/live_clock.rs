//! Live tests of issue 14 item 8 (one clock): every interval on one host is stamped from
//! the monotonic clock through the run's anchor, which hab hands to the workers it starts
//! (its own and a real Celery worker), and a negative interval is counted per stage in
//! run.json, never dropped.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

const STAGES: [&str; 4] = ["publish", "queue_wait", "service", "result_delay"];

/// Run `workers_section` on the standalone stack with a burst of `count` trivial tasks;
/// the run directory, its run.json and its tasks.csv rows.
fn run_burst(
    out: &std::path::Path,
    name: &str,
    workers_section: &str,
    count: u32,
) -> (
    std::path::PathBuf,
    serde_json::Value,
    Vec<BTreeMap<String, String>>,
) {
    let topo = write_topology(out, name, workers_section);
    let work = write_workload(
        out,
        "clock-burst",
        &format!(
            "warmup_tasks = 5\ndrain_timeout = \"60s\"\n\
             [[workload]]\nname = \"trivial\"\ntask = {{ kind = \"trivial\" }}\ncount = {count}\narrival = \"burst\"\n"
        ),
    );
    let results = out.join("results");
    let output = hab_run(&topo, &work, &results).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = single_run_dir(&results);
    assert_no_procs_left(&dir.display().to_string(), Duration::from_secs(10));
    let report = run_json(&dir);
    assert_eq!(report["status"], "complete");
    let rows = csv_rows(&dir.join("tasks.csv"));
    (dir, report, rows)
}

/// Every worker process reported its clock, and it is the run's: the same anchor, handed
/// down (not read by the worker itself), on the same boot.
fn assert_workers_on_the_runs_clock(report: &serde_json::Value, processes_at_least: usize) {
    let clock = &report["clock"];
    assert!(clock.is_object(), "run.json has no clock section");
    let anchor = &clock["anchor"];
    assert!(!anchor["boot_id"].as_str().unwrap().is_empty(), "{clock}");
    let workers = clock["workers"].as_array().unwrap();
    assert!(
        workers.len() >= processes_at_least,
        "{} worker clocks: {clock}",
        workers.len()
    );
    for w in workers {
        assert_eq!(w["same_time_line"], true, "{w}");
        assert_eq!(w["anchor"]["inherited"], true, "{w}");
        for k in ["unix_us", "mono_us", "boot_id"] {
            assert_eq!(w["anchor"][k], anchor[k], "{k}: {w} vs {anchor}");
        }
    }
    assert_eq!(clock["workers_off_time_line"], 0, "{clock}");
}

/// The negative intervals of `stage` recomputed from tasks.csv's ok rows, and how many
/// intervals there were.
fn negatives_in_csv(rows: &[BTreeMap<String, String>], stage: &str) -> (u64, u64) {
    let (from, to) = match stage {
        "publish" => ("published_unix_us", "confirmed_unix_us"),
        "queue_wait" => ("published_unix_us", "started_unix_us"),
        "service" => ("started_unix_us", "finished_unix_us"),
        "result_delay" => ("finished_unix_us", "result_seen_unix_us"),
        _ => unreachable!(),
    };
    let (mut negative, mut all) = (0, 0);
    for r in rows.iter().filter(|r| r["outcome"] == "ok") {
        let (Ok(a), Ok(b)) = (r[from].parse::<i64>(), r[to].parse::<i64>()) else {
            continue;
        };
        all += 1;
        if b < a {
            negative += 1;
        }
    }
    (negative, all)
}

/// run.json's negative count of every stage is tasks.csv's, and the stage's histogram
/// count plus its negative count is every interval measured: nothing dropped.
fn assert_negatives_accounted(report: &serde_json::Value, rows: &[BTreeMap<String, String>]) {
    let w = &report["workloads"][0];
    for stage in STAGES {
        let negative = w["negative_intervals"][stage]
            .as_u64()
            .unwrap_or_else(|| panic!("no negative count for {stage}: {w}"));
        let recorded = w["stages"][stage]["count"].as_u64().unwrap();
        let (csv_negative, csv_all) = negatives_in_csv(rows, stage);
        assert_eq!(negative, csv_negative, "{stage}: {w}");
        assert_eq!(recorded + negative, csv_all, "{stage}: {w}");
    }
}

/// A real Celery worker writes its finish line after it stored the result: hab often sees
/// the result first, a negative result delay. Before one clock and the per-stage counts
/// those intervals vanished from the histogram without a trace.
#[test]
fn a_celery_workers_negative_result_delays_are_counted_not_dropped() {
    assert!(
        root().join("scripts/celery/venv/bin/python").is_file(),
        "run scripts/celery/setup.sh first (scripts/test.sh does)"
    );
    let out = tempfile::tempdir().unwrap();
    const COUNT: u32 = 300;
    let (_, report, rows) = run_burst(
        out.path(),
        "celery-clock",
        "[workers]\nkind = \"celery\"\ncount = 1\nconcurrency = 2\n",
        COUNT,
    );
    let w = &report["workloads"][0];
    assert_eq!(w["ok"], COUNT, "{w}");
    // Each prefork child that ran a task opened the side channel and said its clock.
    assert_workers_on_the_runs_clock(&report, 1);
    assert_negatives_accounted(&report, &rows);
    let negative = w["negative_intervals"]["result_delay"].as_u64().unwrap();
    assert!(
        negative > 0,
        "no Celery finish line came after its result was seen: {w}"
    );
}

/// hab's own worker writes its finish line before it stores the result, and every stamp
/// is on the run's clock: no stage of any task runs backwards.
#[test]
fn a_hab_worker_stamps_every_stage_on_the_runs_clock() {
    let out = tempfile::tempdir().unwrap();
    const COUNT: u32 = 300;
    let (dir, report, rows) = run_burst(
        out.path(),
        "hab-clock",
        "[workers]\ncount = 2\nconcurrency = 4\n",
        COUNT,
    );
    assert_eq!(report["workloads"][0]["ok"], COUNT);
    assert_workers_on_the_runs_clock(&report, 2);
    assert_negatives_accounted(&report, &rows);
    for stage in STAGES {
        assert_eq!(
            report["workloads"][0]["negative_intervals"][stage], 0,
            "{stage}"
        );
    }
    // Each worker's file says which clock its lines use, right after the header.
    for f in std::fs::read_dir(dir.join("executions")).unwrap().flatten() {
        let text = std::fs::read_to_string(f.path()).unwrap();
        let second = text.lines().nth(1).unwrap_or_default();
        assert!(
            second.starts_with("clock,"),
            "{}: {second}",
            f.path().display()
        );
        assert!(second.contains(" inherited=1"), "{second}");
    }
}
