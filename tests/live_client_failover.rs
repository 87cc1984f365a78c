//! Live test of client-side failover (issue 6 item 3, `topologies/ha-client-failover.toml`):
//! no HAProxy; the producer and the worker rotate through the broker node list and ask
//! the Sentinels for the Redis master. The broker node the clients are on and then the
//! Redis master are killed; the clients must move on to another node and to the promoted
//! master by themselves, the failover rows must carry the client-side phases (and no
//! proxy switch), and no acknowledged task may be lost.

mod common;

use std::path::Path;

use common::*;

type Row = std::collections::BTreeMap<String, String>;

fn num(row: &Row, k: &str) -> Option<f64> {
    row.get(k).and_then(|v| v.parse().ok())
}

/// `port` from a generated config file's `key` line (`listeners.tcp.default = h:p`,
/// `port p`).
fn config_port(path: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in {}", path.display()));
    line.rsplit([':', ' ']).next().unwrap().trim().to_string()
}

const WORKLOADS: &str = r#"
warmup_tasks = 20
drain_timeout = "20s"

[[workload]]
name = "broker_primary_kill"
task = { kind = "trivial" }
count = 2400
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "broker.primary"
kind = "kill"
at = "2s"
restart_after = "3s"

[[workload]]
name = "backend_master_kill"
task = { kind = "trivial" }
count = 2400
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "backend.master"
kind = "kill"
at = "2s"
restart_after = "3s"
"#;

#[test]
fn clients_fail_over_to_another_broker_node_and_the_new_master_by_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = root().join("topologies/ha-client-failover.toml");
    let work = write_workload(tmp.path(), "clientfo", WORKLOADS);
    let out = tmp.path().join("results");
    let output = hab_run(&topo, &work, &out).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("HAProxy"),
        "no HAProxy on this topology: {stderr}"
    );
    let dir = single_run_dir(&out);
    let run = run_json(&dir);
    let rows = csv_rows(&dir.join("failover.csv"));
    let events = csv_rows(&dir.join("events.csv"));
    assert_eq!(rows.len(), 2, "{rows:?}");

    // No acknowledged task is lost: every task ran and its result was seen.
    for w in run["workloads"].as_array().unwrap() {
        assert_eq!(w["ok"], w["count"], "{}", w["name"]);
        assert_eq!(w["lost"], 0, "{}", w["name"]);
        assert_eq!(w["result_lost"], 0, "{}", w["name"]);
    }

    // Broker: the clients were on node 0 (first in the list); it was killed; both the
    // producer and the worker moved on to another node by themselves and reconnected.
    let broker = &rows[0];
    assert_eq!(broker["resolved"], "broker.node[0]", "{broker:?}");
    assert_eq!(broker["not_applied"], "", "{broker:?}");
    assert_eq!(broker["client_side"], "true", "{broker:?}");
    assert_eq!(broker["proxy_up_ms"], "", "no proxy switch: {broker:?}");
    let rediscovered = num(broker, "client_rediscovered_ms").expect("rediscovery");
    let reconnected = num(broker, "client_reconnected_ms").expect("reconnection");
    let switch = num(broker, "switch_time_ms").expect("a task completed after the fault");
    assert!(rediscovered >= 0.0 && rediscovered <= switch, "{broker:?}");
    assert!(reconnected <= switch, "{broker:?}");
    let node0 = config_port(&dir.join("logs/rabbitmq-0/rabbitmq.conf"), "listeners.tcp");
    let fault_us = broker["fault_at_unix_ms"].parse::<i64>().unwrap() * 1000;
    for source in ["producer", "worker w1"] {
        let moved: Vec<&Row> = events
            .iter()
            .filter(|e| e["source"] == source && e["kind"] == "rediscovered")
            .filter(|e| e["at_unix_us"].parse::<i64>().unwrap() >= fault_us)
            .filter(|e| e["detail"].starts_with("trying broker node"))
            .collect();
        let first = moved
            .first()
            .unwrap_or_else(|| panic!("{source} did not rotate: {events:?}"));
        assert!(
            !first["detail"].ends_with(&format!(":{node0}")),
            "{source} rotated to the killed node: {first:?}"
        );
    }

    // Backend: the Sentinels promoted the replica; the clients asked them again and
    // were named the new master, after the master went subjectively down.
    let backend = &rows[1];
    assert_eq!(backend["resolved"], "backend.node[0]", "{backend:?}");
    assert_eq!(backend["client_side"], "true", "{backend:?}");
    assert_eq!(backend["proxy_up_ms"], "", "{backend:?}");
    let sdown = num(backend, "sentinel_sdown_ms").expect("+sdown");
    let found = num(backend, "client_rediscovered_ms").expect("new master found");
    assert!(found > sdown, "a new master before +sdown? {backend:?}");
    assert!(num(backend, "switch_time_ms").is_some(), "{backend:?}");
    let old = config_port(&dir.join("logs/redis-backend-0.conf"), "port");
    let new = config_port(&dir.join("logs/redis-backend-1.conf"), "port");
    let named: Vec<&Row> = events
        .iter()
        .filter(|e| e["kind"] == "rediscovered" && e["detail"].contains("Sentinels name master"))
        .collect();
    assert!(
        named.iter().any(|e| e["source"] == "worker w1"),
        "the worker's result store was not rediscovered: {named:?}"
    );
    for e in &named {
        assert!(
            e["detail"].contains(&format!("master 127.0.0.1:{new} (was 127.0.0.1:{old})")),
            "{e:?}"
        );
    }

    assert_no_procs_left(
        &tmp.path().to_string_lossy(),
        std::time::Duration::from_secs(10),
    );
}
