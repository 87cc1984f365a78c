//! Live failover tests: faults injected into real stacks, anatomy and loss accounting.

mod common;

use common::*;

fn run_hab(
    topology: &std::path::Path,
    workload: &std::path::Path,
    out: &std::path::Path,
) -> std::process::Output {
    hab_run(topology, workload, out).output().unwrap()
}

fn failover_rows(dir: &std::path::Path) -> Vec<std::collections::BTreeMap<String, String>> {
    common::csv_rows(&dir.join("failover.csv"))
}

fn num(row: &std::collections::BTreeMap<String, String>, k: &str) -> Option<f64> {
    row.get(k).and_then(|v| v.parse().ok())
}

/// The HA stack survives a broker-primary kill, a paused broker primary and a Redis
/// master kill: anatomy is recorded for each, and nothing confirmed is lost.
#[test]
fn ha_failovers_are_measured_and_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let topo = tmp.path().join("ha.toml");
    let ha = std::fs::read_to_string(root().join("topologies/ha.toml")).unwrap();
    // Heartbeats every 2 s: a client on a frozen node notices after two missed ones.
    std::fs::write(
        &topo,
        ha.replace("# concurrency = 2", "concurrency = 2")
            .replace("heartbeat = \"5s\"", "heartbeat = \"2s\""),
    )
    .unwrap();
    let work = write_workload(
        tmp.path(),
        "faults",
        r#"warmup_tasks = 20
drain_timeout = "30s"
[[workload]]
name = "broker_pause"
task = { kind = "trivial" }
count = 2000
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "broker.primary"
kind = "pause"
at = "2s"
duration = "6s"

[[workload]]
name = "broker_kill"
task = { kind = "trivial" }
count = 1600
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "broker.primary"
kind = "kill"
at = "3s"
restart_after = "2s"

[[workload]]
name = "redis_kill"
task = { kind = "trivial" }
count = 1600
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "backend.master"
kind = "kill"
at = "3s"
restart_after = "2s"
"#,
    );
    let output = run_hab(&topo, &work, &out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let dir = single_run_dir(&out);
    let run = run_json(&dir);
    assert!(
        run["bringup_phases_ms"]["broker_cluster"]
            .as_u64()
            .is_some(),
        "{}",
        run["bringup_phases_ms"]
    );
    for w in run["workloads"].as_array().unwrap() {
        assert_eq!(w["ok"], w["count"], "{w}");
        for k in ["lost", "result_lost", "unconfirmed"] {
            assert_eq!(w[k], 0, "{k} in {}", w["name"]);
        }
    }
    let rows = failover_rows(&dir);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        assert_eq!(row["not_applied"], "", "{row:?}");
        assert!(num(row, "switch_time_ms").unwrap() > 0.0, "{row:?}");
        assert!(num(row, "outage_ms").is_some(), "{row:?}");
        assert!(num(row, "healthy_ms").unwrap() > 0.0, "{row:?}");
        assert_eq!(num(row, "lost"), Some(0.0), "{row:?}");
    }
    let (pause, kill, redis) = (&rows[0], &rows[1], &rows[2]);
    // A frozen node keeps its sockets open (HAProxy's TCP check still passes): the clients
    // connected to it notice through missed heartbeats.
    assert_eq!(pause["resolved"], "broker.node[0]");
    assert!(num(pause, "first_client_error_ms").is_some(), "{pause:?}");
    let events = std::fs::read_to_string(dir.join("events.csv")).unwrap();
    assert!(events.to_lowercase().contains("heartbeat"), "{events}");
    // HAProxy saw the killed node go DOWN, and a client saw the error.
    assert!(num(kill, "proxy_down_ms").is_some(), "{kill:?}");
    assert!(num(kill, "first_client_error_ms").is_some(), "{kill:?}");
    // Sentinel promoted the replica; HAProxy moved the Redis frontend to it.
    for k in [
        "sentinel_sdown_ms",
        "sentinel_odown_ms",
        "sentinel_switch_ms",
        "proxy_up_ms",
    ] {
        assert!(num(redis, k).is_some(), "{k} missing: {redis:?}");
    }
    assert!(num(redis, "sentinel_switch_ms") >= num(redis, "sentinel_sdown_ms"));
    // restart_after (2 s) comes before the promotion (~2.2 s): the old master is brought
    // back only once another node is master, or it would return as an empty master and
    // lose the writes it accepted (a CI run showed 76 result_lost before this was fixed).
    // (The restart follows the promotion as a Sentinel reports it; the +switch-master
    // event may reach the observer a little later, hence the 100 ms.)
    assert!(
        num(redis, "restored_ms").unwrap() + 100.0 >= num(redis, "sentinel_switch_ms").unwrap(),
        "{redis:?}"
    );
    assert_no_procs_left(
        &tmp.path().to_string_lossy(),
        std::time::Duration::from_secs(5),
    );
}

/// A deliberately lossy setup: a non-durable queue with transient messages on a single
/// broker that is killed and restarted. hab must report the lost tasks, and the count must
/// match an independent count from the workers' raw execution files.
#[test]
fn lossy_setup_reports_exactly_the_tasks_it_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let topo = tmp.path().join("lossy.toml");
    std::fs::write(
        &topo,
        r#"name = "lossy"
[broker]
queue = "classic"
durable = false
persistent = false
confirms = true
[backend]
[workers]
concurrency = 2
prefetch_multiplier = 1
"#,
    )
    .unwrap();
    let work = write_workload(
        tmp.path(),
        "lossy-work",
        r#"drain_timeout = "8s"
[[workload]]
name = "sleepy"
task = { kind = "sleep", seconds = 0.2 }
count = 60
arrival = "burst"
[[workload.fault]]
target = "broker.primary"
kind = "kill"
at = "1s"
restart_after = "1s"
"#,
    );
    // It once never ended (passed on rerun): bounded, so a hang fails with hab's stderr
    // (SIGINT first: hab says what it was doing). A run takes ~15 s.
    let output = output_within(
        hab_run(&topo, &work, &out),
        tmp.path(),
        std::time::Duration::from_secs(180),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let dir = single_run_dir(&out);
    let run = run_json(&dir);
    let w = &run["workloads"][0];
    let lost = w["lost"].as_u64().unwrap();
    // 60 tasks of 0.2 s on 2 slots take 6 s: most were still queued when the broker died.
    assert!(lost > 0, "expected lost tasks: {w}");
    assert_eq!(
        w["unconfirmed"], 0,
        "the broker confirmed every publish: {w}"
    );

    // Independent count: task ids that never appear in any worker's execution file.
    let mut executed = std::collections::HashSet::new();
    for f in std::fs::read_dir(dir.join("executions")).unwrap().flatten() {
        for line in std::fs::read_to_string(f.path()).unwrap().lines() {
            let cols: Vec<_> = line.split(',').collect();
            if cols[0] == "start" {
                executed.insert(cols[2].to_string());
            }
        }
    }
    let mut r = csv::Reader::from_path(dir.join("tasks.csv")).unwrap();
    let ids: Vec<String> = r.records().map(|r| r.unwrap()[0].to_string()).collect();
    assert_eq!(ids.len(), 60);
    let never_ran = ids.iter().filter(|id| !executed.contains(*id)).count() as u64;
    assert_eq!(
        lost, never_ran,
        "hab's lost count vs the raw execution files"
    );
    assert_eq!(
        w["ok"].as_u64().unwrap()
            + lost
            + w["result_lost"].as_u64().unwrap()
            + w["failed"].as_u64().unwrap(),
        60
    );
    // And the servers' own state before teardown: the lost tasks are not waiting in the
    // queue, and exactly the tasks that succeeded have a result key.
    let fin = &run["final_state"];
    assert_eq!(fin["queue_ready"], 0, "{fin}");
    assert_eq!(fin["result_keys"], w["ok"], "{fin} vs {w}");
    let rows = failover_rows(&dir);
    assert_eq!(rows.len(), 1);
    assert_eq!(num(&rows[0], "lost"), Some(lost as f64), "{:?}", rows[0]);
}
