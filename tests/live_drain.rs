//! Live test of the drain deadline (issue 14, item 1): tasks still running or queued when
//! a workload's `drain_timeout` passes are `unfinished`, never `result_lost` or `lost`;
//! what is left of a workload in the queue is taken out before the next one starts; at
//! the end of the run the workers stop consuming before the last read.

mod common;

use common::*;

#[test]
fn tasks_left_at_a_short_drain_deadline_are_unfinished_not_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    // One worker running two tasks at once, prefetching no more than it runs: at the
    // deadline two sleeps run and the rest wait in the queue.
    let topo = write_topology(
        tmp.path(),
        "drain",
        "[workers]\ncount = 1\nconcurrency = 2\nprefetch_multiplier = 1\n",
    );
    let work = write_workload(
        tmp.path(),
        "drainplan",
        r#"warmup_tasks = 0
drain_timeout = "30s"

[[workload]]
name = "sleepy"
task = { kind = "sleep", seconds = 4.0 }
count = 6
arrival = "burst"
drain_timeout = "1s"

[[workload]]
name = "after"
task = { kind = "trivial" }
count = 5
arrival = "burst"

[[workload]]
name = "tail"
task = { kind = "sleep", seconds = 4.0 }
count = 2
arrival = "burst"
drain_timeout = "1s"
"#,
    );
    let output = hab_run(&topo, &work, &out).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "hab run failed:\n{stderr}\n{stdout}"
    );
    let dir = single_run_dir(&out);
    let run = run_json(&dir);
    assert_eq!(run["status"], "complete", "{stderr}");
    let w = |name: &str| {
        run["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap_or_else(|| panic!("no workload {name} in run.json"))
            .clone()
    };
    let n = |w: &serde_json::Value, k: &str| {
        w[k].as_u64()
            .unwrap_or_else(|| panic!("no count {k} in {}: {w}", w["name"]))
    };
    let outcomes = [
        "ok",
        "failed",
        "lost",
        "result_lost",
        "unconfirmed",
        "refused",
        "gave_up",
        "unfinished_running",
        "unfinished_queued",
        "unknown",
    ];
    for name in ["sleepy", "after", "tail"] {
        let w = w(name);
        let sum: u64 = outcomes.iter().map(|k| n(&w, k)).sum();
        assert_eq!(sum, n(&w, "count"), "one outcome per task: {w}");
        for k in ["lost", "result_lost", "unknown", "failed"] {
            assert_eq!(n(&w, k), 0, "{k} in {name}: {w}");
        }
    }

    // sleepy: nothing finished within its 1 s drain; what ran is running, the rest was
    // queued (and taken out of the queue: it never ran).
    let sleepy = w("sleepy");
    assert_eq!(n(&sleepy, "ok"), 0, "{sleepy}");
    let running = n(&sleepy, "unfinished_running");
    let queued = n(&sleepy, "unfinished_queued");
    assert!((1..=2).contains(&running), "{sleepy}");
    assert_eq!(running + queued, 6, "{sleepy}");
    let tasks = csv_rows(&dir.join("tasks.csv"));
    let of = |name: &str| -> Vec<_> { tasks.iter().filter(|t| t["workload"] == name).collect() };
    for t in of("sleepy") {
        match t["outcome"].as_str() {
            "unfinished_running" => {
                let us = |k: &str| t[k].parse::<i64>().unwrap_or_else(|_| panic!("{k}: {t:?}"));
                assert!(us("started_unix_us") <= us("deadline_unix_us"), "{t:?}");
            }
            "unfinished_queued" => {
                // Purged from the queue at the deadline: never ran, during the next
                // workload or after.
                assert_eq!(t["purged"], "true", "{t:?}");
                assert_eq!(t["executions"], "0", "{t:?}");
            }
            o => panic!("sleepy task with outcome {o}: {t:?}"),
        }
    }

    // after: measures its own tasks only, all ok.
    let after = w("after");
    assert_eq!((n(&after, "count"), n(&after, "ok")), (5, 5), "{after}");
    assert_eq!(after["stages"]["latency"]["count"], 5);

    // tail: still running at the end of the run. The workers stop (finishing them) before
    // the last read, and the result they store then is after the deadline: unfinished,
    // not a result the backend lost.
    let tail = w("tail");
    assert_eq!(n(&tail, "ok"), 0, "{tail}");
    assert_eq!(n(&tail, "unfinished_running"), 2, "{tail}");
    for t in of("tail") {
        assert_eq!(t["outcome"], "unfinished_running", "{t:?}");
    }

    // Nothing of the run was left in the queue, and every execution is one of the
    // sleeps that were running or the trivial tasks (the purged sleeps never ran).
    assert_eq!(
        run["final_state"]["queue_ready"], 0,
        "{}",
        run["final_state"]
    );
    assert_eq!(
        run["workers"]["executions"].as_u64().unwrap(),
        running + 5 + 2,
        "{}",
        run["workers"]
    );

    // The files say it too: summary.csv, the terminal and the report.
    let summary = csv_rows(&dir.join("summary.csv"));
    let row = summary.iter().find(|r| r["workload"] == "tail").unwrap();
    assert_eq!(row["unfinished_running"], "2", "{row:?}");
    assert_eq!(row["result_lost"], "0", "{row:?}");
    assert!(row.contains_key("seen_by_read"), "{row:?}");
    assert!(stdout.contains("unfinished"), "terminal:\n{stdout}");
    let report = common::hab().arg("report").arg(&dir).output().unwrap();
    assert!(
        report.status.success(),
        "hab report failed: {}",
        String::from_utf8_lossy(&report.stderr)
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("unfinished"), "report.md:\n{md}");

    assert_no_procs_left(
        &tmp.path().to_string_lossy(),
        std::time::Duration::from_secs(5),
    );
}

/// Issue 14, item 2: the backend dies (and stays down) after the tasks started; their
/// workers finish them but cannot store the results, and the last reads fail. The tasks
/// are `unknown` (recorded in run.json `failed_reads`), never `result_lost`.
#[test]
fn tasks_a_failed_last_read_could_not_settle_are_unknown_not_result_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let topo = write_topology(
        tmp.path(),
        "dark",
        "[workers]\ncount = 1\nconcurrency = 2\nprefetch_multiplier = 1\n",
    );
    let work = write_workload(
        tmp.path(),
        "darkplan",
        r#"warmup_tasks = 0

[[workload]]
name = "dark"
task = { kind = "sleep", seconds = 1.0 }
count = 2
arrival = "burst"
drain_timeout = "3s"

[[workload.fault]]
target = "backend.master"
kind = "kill"
at = "300ms"
"#,
    );
    let output = hab_run(&topo, &work, &out).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let dir = single_run_dir(&out);
    let run = run_json(&dir);
    let w = &run["workloads"][0];
    let n = |k: &str| {
        w[k].as_u64()
            .unwrap_or_else(|| panic!("no count {k}: {w}\n{stderr}"))
    };
    assert_eq!(n("count"), 2, "{w}");
    assert_eq!(n("result_lost"), 0, "{w}\n{stderr}");
    assert_eq!(n("unknown"), 2, "{w}\n{stderr}");
    let reads = run["failed_reads"]
        .as_array()
        .expect("failed_reads in run.json");
    let deadline = reads
        .iter()
        .find(|r| r["read"] == "deadline")
        .unwrap_or_else(|| panic!("no failed deadline read: {reads:?}"));
    assert_eq!(deadline["workload"], "dark");
    assert_eq!(deadline["tasks"], 2);
    assert!(!deadline["error"].as_str().unwrap().is_empty());
    for t in csv_rows(&dir.join("tasks.csv")) {
        assert_eq!(t["outcome"], "unknown", "{t:?}");
        assert_eq!(t["read_failed"], "true", "{t:?}");
    }
    assert!(stdout.contains("failed read"), "terminal:\n{stdout}");
    let report = common::hab().arg("report").arg(&dir).output().unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Failed reads"), "report.md:\n{md}");
    assert_no_procs_left(
        &tmp.path().to_string_lossy(),
        std::time::Duration::from_secs(5),
    );
}
