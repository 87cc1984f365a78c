//! Live test of the producer's circuit breaker (issue 6, item 2): a standalone stack whose
//! only broker node is paused (SIGSTOP: a black hole, calls hang until their timeouts)
//! for 4 s mid-run. The breaker opens, refuses tasks at once while the broker is away
//! (fail fast), probes, and closes again once it is back; every scheduled task has exactly
//! one outcome in the ledger. A pause rather than a kill: RabbitMQ's boot after a restart
//! took 4–20 s on a loaded 2-core machine, a SIGCONT is immediate, so the recovery always
//! falls inside the short schedule. Plus the checks of the shipped outage files and of bad
//! `[producer]` values (no servers).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const COUNT: u64 = 400;

fn breaker_topology(dir: &Path) -> PathBuf {
    let text = r#"name = "outage-breaker-test"
[broker]
nodes = 1
queue = "classic"
heartbeat = "10s"
startup_timeout = "90s"
[backend]
replicas = 0
startup_timeout = "30s"
[workers]
count = 1
concurrency = 2
[producer]
policy = "breaker"
connect_timeout = "1s"
publish_timeout = "1s"
confirm_timeout = "1s"
[producer.breaker]
failure_threshold = 3
open_for = "500ms"
half_open_probes = 1
"#;
    let p = dir.join("outage-breaker-test.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn workload(dir: &Path) -> PathBuf {
    write_workload(
        dir,
        "outage",
        &format!(
            r#"warmup_tasks = 5
drain_timeout = "40s"
[[workload]]
name = "outage_pause"
task = {{ kind = "trivial" }}
count = {COUNT}
arrival = "rate"
rate_per_s = 40.0
[[workload.fault]]
target = "broker.primary"
kind = "pause"
at = "2s"
duration = "4s"
"#
        ),
    )
}

#[test]
fn the_breaker_refuses_while_the_broker_hangs_recovers_after_and_loses_nothing_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let output = hab_run(&breaker_topology(tmp.path()), &workload(tmp.path()), &out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let dir = single_run_dir(&out);
    assert_no_procs_left(&dir.to_string_lossy(), Duration::from_secs(10));
    let run = run_json(&dir);

    // Every scheduled task has exactly one outcome; none is silently missing.
    let w = &run["workloads"][0];
    let n = |k: &str| {
        w[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {w}"))
    };
    assert_eq!(n("count"), COUNT, "{w}");
    assert_eq!(
        n("ok")
            + n("failed")
            + n("lost")
            + n("result_lost")
            + n("unconfirmed")
            + n("refused")
            + n("gave_up"),
        COUNT,
        "{w}"
    );
    assert!(n("refused") >= 1, "the open breaker refused nothing: {w}");
    // A paused broker keeps what it confirmed.
    assert_eq!(n("lost"), 0, "{w}");
    assert!(n("ok") >= COUNT / 2, "{w}");
    let tasks = std::fs::read_to_string(dir.join("tasks.csv")).unwrap();
    assert_eq!(tasks.lines().count() as u64, COUNT + 1);
    let head: Vec<&str> = tasks.lines().next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (published, outcome, refused_at) = (
        col("published_unix_us"),
        col("outcome"),
        col("refused_unix_us"),
    );
    let refused_rows: Vec<Vec<&str>> = tasks
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[outcome] == "refused")
        .collect();
    assert_eq!(refused_rows.len() as u64, n("refused"));
    for r in &refused_rows {
        assert!(!r[refused_at].is_empty(), "{r:?}");
        assert!(
            r[col("republished")] != "0" || r[published].is_empty(),
            "a task refused before any publish has no publish time: {r:?}"
        );
    }

    // The breaker's state changes: it opened after the fault and closed again.
    let p = &run["producer"];
    assert_eq!(p["policy"], "breaker", "{p}");
    let transitions = p["transitions"].as_array().unwrap();
    let states: Vec<(&str, &str)> = transitions
        .iter()
        .map(|t| (t["from"].as_str().unwrap(), t["to"].as_str().unwrap()))
        .collect();
    assert_eq!(states.first(), Some(&("closed", "open")), "{states:?}");
    assert_eq!(states.last(), Some(&("half_open", "closed")), "{states:?}");
    assert!(
        states.contains(&("open", "half_open")),
        "no probe: {states:?}"
    );
    let row = &p["outages"][0];
    let fault_ms = row["fault_at_unix_ms"].as_i64().unwrap();
    let opened_us = transitions[0]["at_unix_us"].as_i64().unwrap();
    assert!(
        opened_us >= fault_ms * 1000,
        "opened before the fault: {row}"
    );
    let fail_fast = row["first_refused_ms"].as_f64().unwrap();
    let back = row["restored_ms"].as_f64().unwrap();
    assert!(
        fail_fast < back,
        "the first refusal ({fail_fast} ms) came only after the broker was back ({back} ms): {row}"
    );
    assert!(row["resume_publish_ms"].as_f64().is_some(), "{row}");
    assert!(row["resume_complete_ms"].as_f64().is_some(), "{row}");
    assert_eq!(row["refused"].as_u64().unwrap(), n("refused"), "{row}");
    // Tasks after the breaker closed went through again.
    let closed_us = transitions.last().unwrap()["at_unix_us"].as_i64().unwrap();
    let intended = col("intended_unix_us");
    let ok_after = tasks
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[outcome] == "ok" && r[intended].parse::<i64>().unwrap() > closed_us)
        .count();
    assert!(ok_after >= 1, "nothing completed after the breaker closed");

    // The timeline carries the breaker's state and the refusals.
    let timeline = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    let th: Vec<&str> = timeline.lines().next().unwrap().split(',').collect();
    let (b, rf) = (
        th.iter().position(|h| *h == "breaker").unwrap(),
        th.iter().position(|h| *h == "refused").unwrap(),
    );
    let rows: Vec<Vec<&str>> = timeline
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.iter().any(|r| r[b] == "open"), "{timeline}");
    assert!(rows.iter().all(|r| !r[b].is_empty()), "{timeline}");
    let refused_per_s: u64 = rows.iter().map(|r| r[rf].parse::<u64>().unwrap()).sum();
    assert!(refused_per_s >= n("refused") + n("gave_up"), "{timeline}");
}

#[test]
fn the_shipped_outage_files_check_and_bad_producer_values_are_refused_by_field() {
    for t in ["block", "retry", "breaker"] {
        let out = common::hab()
            .current_dir(root())
            .args(["check", "--topology"])
            .arg(format!("topologies/outage-{t}.toml"))
            .args(["--workload", "workloads/broker-outage.toml"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{t}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad-producer.toml");
    std::fs::write(
        &p,
        "name = \"bad-producer\"\n[broker]\n[backend]\n[producer]\npolicy = \"retry\"\n[producer.retry]\nattempts = 0\n[producer.breaker]\nopen_for = \"0s\"\n",
    )
    .unwrap();
    let out = common::hab()
        .current_dir(root())
        .args(["check", "--topology"])
        .arg(&p)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad-producer.toml"), "{stderr}");
    assert!(
        stderr.contains("producer.retry.attempts: must be between 1 and 20"),
        "{stderr}"
    );
    assert!(
        stderr.contains("producer.breaker: only used with policy = \"breaker\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("producer.breaker.open_for: must be between 10ms and 10m, got 0s"),
        "{stderr}"
    );
    std::fs::write(
        &p,
        "name = \"bad-producer\"\n[broker]\n[backend]\n[producer]\npolicy = \"circuit\"\n",
    )
    .unwrap();
    let out = common::hab()
        .current_dir(root())
        .args(["check", "--topology"])
        .arg(&p)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("circuit") && stderr.contains("breaker"),
        "{stderr}"
    );
}
