//! Live tests of stale Redis masters (issue 6): a killed master restarted with its own
//! config (`restart_as = "master"`) and a live master demoted by a Sentinel failover
//! (`kind = "failover"`), through `hab run`, with and without the HAProxy options that
//! guard against them (`backend_shutdown_sessions`, `master_min_uptime`).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;

type Row = HashMap<String, String>;

fn failover_rows(dir: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(dir.join("failover.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn num(row: &Row, k: &str) -> Option<f64> {
    row.get(k).and_then(|v| v.parse().ok())
}

/// A shipped topology with two workers of two slots each (more client connections for
/// HAProxy to spread over the servers it has UP).
fn topology(dir: &Path, file: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("topologies").join(file)).unwrap();
    let p = dir.join(file);
    std::fs::write(
        &p,
        text.replace("# concurrency = 2", "concurrency = 2")
            .replace("count = 1               # worker processes", "count = 2"),
    )
    .unwrap();
    p
}

const RESTART_AS_MASTER: &str = r#"
[[workload]]
name = "restart_as_master"
task = { kind = "trivial" }
count = 4000
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "backend.master"
kind = "kill"
at = "2s"
restart_after = "3s"
restart_as = "master"
"#;

const FAILOVER: &str = r#"
[[workload]]
name = "failover"
task = { kind = "trivial" }
count = 6000
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "backend.master"
kind = "failover"
at = "2s"
repeat = 2
every = "14s"
"#;

/// The two scenarios each run a whole HA stack; on 2 cores two at once starve the
/// Sentinels (TILT, failovers that do not complete), so they take turns.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(tmp: &Path, topo: &Path, workloads: &str) -> (PathBuf, Vec<Row>, serde_json::Value) {
    let out = tmp.join("results");
    let work = write_workload(
        tmp,
        "stale",
        &format!("warmup_tasks = 20\ndrain_timeout = \"20s\"\n{workloads}"),
    );
    let output = hab_run(topo, &work, &out).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let dir = single_run_dir(&out);
    let rows = failover_rows(&dir);
    let run = run_json(&dir);
    let left = wait_no_procs(&tmp.to_string_lossy(), std::time::Duration::from_secs(10));
    assert!(left.is_empty(), "processes left behind: {left:?}");
    (dir, rows, run)
}

/// Without a guard, HAProxy routes to the restarted empty master and to the promoted
/// replica at once; without `shutdown-sessions`, writes through a session that stayed on
/// the demoted master are answered READONLY.
#[test]
#[ignore = "flaky on a loaded 2-core machine: a SENTINEL FAILOVER the Sentinel accepted did \
            not always complete (no +switch-master); run with `cargo test -- --ignored`"]
fn stale_masters_without_guards_show_two_masters_and_readonly_errors() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let topo = topology(tmp.path(), "ha-keep-sessions.toml");
    let (dir, rows, run) = run(tmp.path(), &topo, &format!("{RESTART_AS_MASTER}{FAILOVER}"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    // The second failover may find the publishing over (a loaded machine slows the
    // Sentinels); the first of each kind must have been applied.
    assert_eq!(rows[0]["not_applied"], "", "{:?}", rows[0]);
    assert_eq!(rows[1]["not_applied"], "", "{:?}", rows[1]);
    let restart = &rows[0];
    assert_eq!(restart["kind"], "kill");
    // The empty master came back 3 s after the kill and passed role:master while the
    // promoted replica did too.
    assert!(
        num(restart, "two_masters_ms").unwrap() > 0.0,
        "no two-master window: {restart:?}"
    );
    assert!(num(restart, "two_masters_from_ms").unwrap() >= 0.0);
    // Results written to it are lost when the Sentinels demote it: seen as result_lost
    // when the producer was on the other master, else gone from Redis at the end. Which
    // clients land on it depends on when they reconnect, so this is reported, not
    // asserted.
    let written: u64 = run["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["ok"].as_u64().unwrap() + w["failed"].as_u64().unwrap())
        .sum::<u64>()
        + 20;
    eprintln!(
        "restart_as_master: two masters {} ms, result_lost {}, result_vanished {}, result keys {} of {written} written",
        restart["two_masters_ms"],
        restart["result_lost"],
        restart["result_vanished"],
        run["final_state"]["result_keys"]
    );
    assert!(
        restart["result_vanished"].parse::<u64>().is_ok(),
        "{restart:?}"
    );
    // The forced failover: the old master stays master until the Sentinels demote it,
    // then clients that reconnect to it through HAProxy get READONLY.
    let (f1, f2) = (&rows[1], &rows[2]);
    assert_eq!(
        (f1["kind"].as_str(), f2["kind"].as_str()),
        ("failover", "failover")
    );
    assert!(num(f1, "sentinel_switch_ms").is_some(), "{f1:?}");
    let sum = |k: &str| num(f1, k).unwrap_or(0.0) + num(f2, k).unwrap_or(0.0);
    assert!(
        sum("readonly_errors") > 0.0,
        "no READONLY error: {f1:?} {f2:?}"
    );
    assert!(sum("readonly_tasks") > 0.0, "{f1:?} {f2:?}");
    let events = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    assert!(
        events.contains("read only replica"),
        "READONLY errors are in events.csv with their task: {events}"
    );
}

/// With `master_min_uptime`, the restarted empty master never passes HAProxy's check
/// before the Sentinels demote it: no two-master window, nothing lost.
#[test]
fn uptime_guard_keeps_the_restarted_master_out() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let topo = topology(tmp.path(), "ha-uptime-guard.toml");
    let (_dir, rows, run) = run(tmp.path(), &topo, RESTART_AS_MASTER);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["not_applied"], "", "{row:?}");
    assert!(num(row, "restored_ms").is_some(), "{row:?}");
    assert_eq!(
        row["two_masters_ms"], "",
        "two masters with the guard: {row:?}"
    );
    assert!(num(row, "switch_time_ms").is_some(), "{row:?}");
    let w = &run["workloads"][0];
    assert_eq!(w["ok"], w["count"], "{w}");
    assert_eq!(w["result_lost"], 0, "{w}");
    assert_eq!(row["result_lost"], "0", "{row:?}");
    assert_eq!(row["result_vanished"], "0", "{row:?}");
    // Every result written (warm-up included) is still in Redis at the end.
    let written = w["ok"].as_u64().unwrap() + 20;
    assert_eq!(
        run["final_state"]["result_keys"], written,
        "{}",
        run["final_state"]
    );
}
