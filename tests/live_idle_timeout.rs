//! Live tests of HAProxy idle timeouts (issue 6, item 1): a proxied standalone stack with
//! short `timeout client`/`timeout server`, long sleeps and an idle gap. With heartbeat
//! and keepalive off HAProxy cuts idle connections (seen in its own log) and the clients
//! count errors; with both below the timeout nothing is cut.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

/// Timeouts of 2 s; tasks sleep 3 s and the burst follows a 3 s idle gap.
const TIMEOUT: &str = "2s";
const TIMEOUT_MS: u64 = 2000;

fn topology(dir: &Path, name: &str, heartbeat: &str, keepalive: &str) -> PathBuf {
    let text = format!(
        r#"name = "{name}"
[broker]
nodes = 1
queue = "classic"
heartbeat = "{heartbeat}"
startup_timeout = "90s"
[backend]
replicas = 0
startup_timeout = "30s"
keepalive = "{keepalive}"
[proxy]
timeout_client = "{TIMEOUT}"
timeout_server = "{TIMEOUT}"
[workers]
count = 1
concurrency = 2
"#
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

fn workload(dir: &Path) -> PathBuf {
    write_workload(
        dir,
        "idle",
        r#"warmup_tasks = 5
drain_timeout = "20s"
[[workload]]
name = "long_sleep"
task = { kind = "sleep", seconds = 3.0 }
count = 2
arrival = "burst"
[[workload]]
name = "after_gap"
idle_before = "3s"
task = { kind = "trivial" }
count = 20
arrival = "burst"
drain_timeout = "10s"
"#,
    )
}

/// Runs hab on `topo` and returns run.json's `idle`, checking no server is left behind.
fn run_idle(tmp: &Path, topo: &Path) -> serde_json::Value {
    let out = tmp.join(format!(
        "results-{}",
        topo.file_stem().unwrap().to_string_lossy()
    ));
    let output = hab_run(topo, &workload(tmp), &out).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let dir = single_run_dir(&out);
    assert_no_procs_left(&dir.to_string_lossy(), Duration::from_secs(10));
    let run = run_json(&dir);
    assert!(
        dir.join("logs/haproxy.log").is_file(),
        "no HAProxy log in {dir:?}"
    );
    run["idle"].clone()
}

fn total(v: &serde_json::Value) -> u64 {
    v.as_object()
        .map(|m| m.values().filter_map(|x| x.as_u64()).sum())
        .unwrap_or(0)
}

#[test]
fn heartbeat_off_and_a_short_timeout_cut_idle_connections_and_clients_see_it() {
    let tmp = tempfile::tempdir().unwrap();
    let idle = run_idle(tmp.path(), &topology(tmp.path(), "idle-hb0", "0s", "0s"));
    let s = &idle["settings"];
    assert_eq!(
        (
            s["heartbeat_s"].as_u64(),
            s["keepalive_ms"].as_u64(),
            s["timeout_client_ms"].as_u64()
        ),
        (Some(0), Some(0), Some(TIMEOUT_MS)),
        "{idle}"
    );
    let cuts = &idle["cuts"];
    assert!(total(cuts) >= 1, "no cut in {idle}");
    // The worker's Redis connection sits idle through every 3 s sleep.
    assert!(cuts["backend"].as_u64().unwrap() >= 1, "{idle}");
    let sessions = idle["cut_sessions"].as_array().unwrap();
    assert_eq!(sessions.len() as u64, total(cuts), "{idle}");
    for c in sessions {
        let t = c["termination"].as_str().unwrap();
        assert!(t.starts_with('c') || t.starts_with('s'), "{c}");
        // A session is cut only after sitting idle for the whole timeout.
        assert!(c["duration_ms"].as_u64().unwrap() >= TIMEOUT_MS, "{c}");
    }
    // The cut is counted on the client side too, never hidden by a silent reconnect.
    assert!(
        total(&idle["client_errors"]) >= 1,
        "no client error counted: {idle}"
    );
    // The sleeping tasks were in flight when the worker's connections were cut.
    let sleep = &idle["workloads"][0];
    assert_eq!(sleep["workload"], "long_sleep");
    assert!(
        sleep["tasks"]["overlapping"].as_u64().unwrap() >= 1,
        "{sleep}"
    );
}

#[test]
fn heartbeat_and_keepalive_below_the_timeout_keep_every_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let idle = run_idle(tmp.path(), &topology(tmp.path(), "idle-hb1", "1s", "500ms"));
    assert_eq!(idle["settings"]["heartbeat_s"], 1, "{idle}");
    assert_eq!(idle["settings"]["keepalive_ms"], 500, "{idle}");
    assert!(idle["sessions"].as_u64().unwrap() >= 1, "{idle}");
    assert_eq!(idle["cuts"]["broker"], 0, "{idle}");
    assert_eq!(idle["cuts"]["backend"], 0, "{idle}");
    assert_eq!(total(&idle["client_errors"]), 0, "{idle}");
    assert_eq!(idle["tasks"]["overlapping"], 0, "{idle}");
    assert_eq!(idle["tasks"]["affected"], 0, "{idle}");
}

#[test]
fn bad_idle_fields_are_refused_naming_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = topology(tmp.path(), "bad-keepalive", "0s", "50ms");
    let work = write_workload(
        tmp.path(),
        "bad-gap",
        "[[workload]]\nname = \"a\"\ntask = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nidle_before = \"0s\"\n",
    );
    let out = common::hab()
        .current_dir(root())
        .arg("check")
        .arg("--topology")
        .arg(&topo)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad-keepalive.toml"), "{stderr}");
    assert!(
        stderr.contains("backend.keepalive: must be \"0s\" (off) or whole milliseconds, at least 100ms, got 50ms"),
        "{stderr}"
    );
    let out = common::hab()
        .current_dir(root())
        .arg("check")
        .arg("--workload")
        .arg(&work)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad-gap.toml"), "{stderr}");
    assert!(
        stderr.contains("workload[0] (\"a\").idle_before: must be greater than zero"),
        "{stderr}"
    );
}
