//! Live tests of external stacks: `hab up` starts a real HA stack and leaves it running;
//! `hab run` then drives it through the `external.toml` `hab up` wrote, with fault
//! commands (`hab node …`) acting on those processes — the local stand-in for
//! `ssh host systemctl kill …` — and `hab down` removes it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

fn hab(args: &[&str]) -> Command {
    let mut c = common::hab();
    c.current_dir(root()).args(args).stdin(Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Tears the stack down even when an assertion fails half-way.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = hab(&["down", "--dir", self.0.to_str().unwrap()]).output();
    }
}

/// The external topology `hab up` wrote, with `edit` applied, saved as `name.toml`.
fn variant(stack: &Path, tmp: &Path, name: &str, edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
    let text = std::fs::read_to_string(stack.join("external.toml")).unwrap();
    let mut t: toml::Table = toml::from_str(&text).unwrap();
    t.insert("name".into(), toml::Value::String(name.into()));
    edit(&mut t);
    let p = tmp.join(format!("{name}.toml"));
    std::fs::write(&p, toml::to_string(&t).unwrap()).unwrap();
    p
}

/// Replace one field of the `[[external.fault]]` entry for `nodes` × `kind`.
fn set_fault_field(t: &mut toml::Table, nodes: &str, kind: &str, field: &str, value: &str) {
    let ext = t.get_mut("external").unwrap().as_table_mut().unwrap();
    let faults = ext.get_mut("fault").unwrap().as_array_mut().unwrap();
    let entry = faults
        .iter_mut()
        .map(|f| f.as_table_mut().unwrap())
        .find(|f| f["nodes"].as_str() == Some(nodes) && f["kind"].as_str() == Some(kind))
        .unwrap();
    entry.insert(field.into(), toml::Value::String(value.into()));
}

const FAULTS: &str = r#"
warmup_tasks = 20
drain_timeout = "30s"
[[workload]]
name = "broker_kill"
task = { kind = "trivial" }
count = 1200
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "broker.primary"
kind = "kill"
at = "1500ms"
restart_after = "2s"
[[workload]]
name = "leader_kill"
task = { kind = "trivial" }
count = 1200
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "broker.queue_leader"
kind = "kill"
at = "1500ms"
restart_after = "2s"
[[workload]]
name = "redis_kill"
task = { kind = "trivial" }
count = 1200
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "backend.master"
kind = "kill"
at = "1500ms"
restart_after = "2s"
"#;

const ONE_KILL: &str = r#"
warmup_tasks = 10
drain_timeout = "20s"
[[workload]]
name = "broker_kill"
task = { kind = "trivial" }
count = 400
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "broker.primary"
kind = "kill"
at = "500ms"
restart_after = "1s"
"#;

#[test]
fn a_stack_hab_up_started_is_measured_as_an_external_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let stack = tmp.path().join("stack");
    // ha.toml with the management plugin on, so the external stack has its HTTP API.
    let ha = std::fs::read_to_string(root().join("topologies/ha.toml")).unwrap();
    assert!(ha.contains("[broker]\n"));
    let ha_mgmt = tmp.path().join("ha-mgmt.toml");
    std::fs::write(
        &ha_mgmt,
        ha.replacen("[broker]\n", "[broker]\nmanagement = true\n", 1),
    )
    .unwrap();
    let up = hab(&[
        "up",
        "--topology",
        ha_mgmt.to_str().unwrap(),
        "--dir",
        stack.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    let _down = Down(stack.clone());
    assert!(up.status.success(), "hab up failed: {}", text(&up));
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(stdout.contains("as an external stack:"), "{stdout}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stack.join("stack.json")).unwrap()).unwrap();
    let supervisor = state["pid"].as_i64().unwrap() as i32;
    let external = stack.join("external.toml");
    // A second hab up on the same directory is refused while the first one runs.
    let again = hab(&[
        "up",
        "--topology",
        ha_mgmt.to_str().unwrap(),
        "--dir",
        stack.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already up"));

    let faults = write_workload(tmp.path(), "ext-faults", FAULTS);

    // Without --allow-faults nothing starts and no run directory is made.
    let out = tmp.path().join("refused");
    let refused = hab_run(&external, &faults, &out).output().unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--allow-faults"));
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());

    // --dry-run lists the commands and touches nothing.
    let dry = hab(&[
        "run",
        "--topology",
        external.to_str().unwrap(),
        "--workload",
        faults.to_str().unwrap(),
        "--dry-run",
    ])
    .output()
    .unwrap();
    assert!(dry.status.success(), "{}", text(&dry));
    let listing = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(listing.matches("  apply:  ").count(), 3, "{listing}");
    assert!(
        listing.contains(" node --dir ") && listing.contains(" kill "),
        "{listing}"
    );

    // The real run: faults applied by commands, credentials from the environment
    // (RabbitMQ's own guest user), everything measured as on a local stack.
    let out = tmp.path().join("results");
    let run = hab_run(&external, &faults, &out)
        .arg("--allow-faults")
        .env("HAB_BROKER_USER", "guest")
        .env("HAB_BROKER_PASSWORD", "guest")
        .output()
        .unwrap();
    assert!(run.status.success(), "external run failed: {}", text(&run));
    let dir = single_run_dir(&out);
    let report = run_json(&dir);
    assert_eq!(report["status"], "complete", "{report:#}");
    let failover = csv_rows(&dir.join("failover.csv"));
    assert_eq!(failover.len(), 3, "{failover:?}");
    for (row, prefix) in failover
        .iter()
        .zip(["broker.node[", "broker.node[", "backend.node["])
    {
        assert!(row["resolved"].starts_with(prefix), "{row:?}");
        assert_eq!(row["not_applied"], "", "{row:?}");
        for k in ["restored_ms", "healthy_ms", "switch_time_ms"] {
            assert!(row[k].parse::<f64>().is_ok(), "{k} missing: {row:?}");
        }
        // An HA stack loses nothing confirmed when a node dies and comes back.
        assert_eq!(row["lost"], "0", "{row:?}");
    }
    // The queue leader was found and its move seen through the management API, the
    // Redis master kill by the Sentinel observer over TCP.
    assert!(
        failover[1]["queue_leader_ms"].parse::<f64>().is_ok(),
        "{:?}",
        failover[1]
    );
    assert!(
        failover[2]["sentinel_switch_ms"].parse::<f64>().is_ok(),
        "{:?}",
        failover[2]
    );
    let management = report["observers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "rabbitmq management")
        .unwrap_or_else(|| panic!("{:#}", report["observers"]));
    assert!(
        management["reached"].as_u64().unwrap() > 0,
        "{management:#}"
    );
    // HAProxy's stats were read over TCP, as on another host.
    let proxy = report["observers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "haproxy stats")
        .unwrap_or_else(|| panic!("{:#}", report["observers"]));
    assert!(
        proxy["address"]
            .as_str()
            .unwrap()
            .starts_with("tcp://127.0.0.1:"),
        "{proxy:#}"
    );
    assert!(proxy["reached"].as_u64().unwrap() > 0, "{proxy:#}");
    assert!(
        failover[0]["proxy_down_ms"].parse::<f64>().is_ok(),
        "{:?}",
        failover[0]
    );
    let tasks = csv_rows(&dir.join("tasks.csv"));
    assert_eq!(
        tasks.iter().filter(|t| t["outcome"] == "ok").count(),
        3600,
        "not every task ok"
    );
    let log = std::fs::read_to_string(dir.join("logs/external-commands.log")).unwrap();
    for phase in [" apply ", " revert ", " health "] {
        assert!(log.matches(phase).count() >= 2, "{phase} missing:\n{log}");
    }
    // The stack is healthy after the run (the faults were reverted).
    let health = hab(&["node", "--dir", stack.to_str().unwrap(), "health"])
        .output()
        .unwrap();
    assert!(health.status.success(), "{}", text(&health));

    // A wrong password fails at once, with the password masked.
    let out = tmp.path().join("badauth");
    let bad = hab_run(&external, &faults, &out)
        .arg("--allow-faults")
        .env("HAB_BROKER_USER", "guest")
        .env("HAB_BROKER_PASSWORD", "not-the-Pa55word")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let all = text(&bad);
    assert!(all.contains("reaching the external stack"), "{all}");
    assert!(
        !all.contains("not-the-Pa55word"),
        "the password leaked: {all}"
    );

    // A fault command that fails stops the run, with its status and output.
    let one = write_workload(tmp.path(), "one-kill", ONE_KILL);
    let failing = variant(&stack, tmp.path(), "ext-failing", |t| {
        set_fault_field(t, "broker", "kill", "apply", "echo boom >&2; exit 7");
    });
    let out = tmp.path().join("failing");
    let run = hab_run(&failing, &one, &out)
        .arg("--allow-faults")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("exit status 7") && stderr.contains("boom"),
        "{stderr}"
    );
    let report = run_json(&single_run_dir(&out));
    assert_eq!(report["status"], "failed", "{report:#}");

    // A command that hangs is killed at command_timeout and stops the run too.
    let marker = tmp.path().join("hang.pid");
    let hanging = variant(&stack, tmp.path(), "ext-hanging", |t| {
        let cmd = format!("echo $$ > {}; sleep 60", marker.display());
        set_fault_field(t, "broker", "kill", "apply", &cmd);
        t.get_mut("external")
            .unwrap()
            .as_table_mut()
            .unwrap()
            .insert("command_timeout".into(), toml::Value::String("1s".into()));
    });
    let out = tmp.path().join("hanging");
    let run = hab_run(&hanging, &one, &out)
        .arg("--allow-faults")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("did not finish within 1s"),
        "{}",
        text(&run)
    );
    let pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_gone("the hanging command", pid);

    // Interrupted while a node is down, the run still brings it back before it exits.
    let long = write_workload(
        tmp.path(),
        "long-kill",
        "warmup_tasks = 10\ndrain_timeout = \"20s\"\n[[workload]]\nname = \"k\"\ntask = { kind = \"trivial\" }\ncount = 6000\narrival = \"rate\"\nrate_per_s = 200.0\n[[workload.fault]]\ntarget = \"broker.node[1]\"\nkind = \"kill\"\nat = \"500ms\"\nrestart_after = \"20s\"\n",
    );
    let out = tmp.path().join("interrupted");
    let child = hab_run(&external, &long, &out)
        .arg("--allow-faults")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let applied = loop {
        let log = std::fs::read_dir(&out)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .and_then(|e| std::fs::read_to_string(e.path().join("logs/external-commands.log")).ok())
            .unwrap_or_default();
        if log.contains(" apply ") {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let interrupted = child.wait_with_output().unwrap();
    assert!(
        applied,
        "the fault was never applied: {}",
        text(&interrupted)
    );
    assert_eq!(
        interrupted.status.code(),
        Some(130),
        "{}",
        text(&interrupted)
    );
    let dir = single_run_dir(&out);
    let log = std::fs::read_to_string(dir.join("logs/external-commands.log")).unwrap();
    assert!(
        log.contains(" revert broker.node[1] "),
        "not reverted:\n{log}"
    );
    let health = hab(&["node", "--dir", stack.to_str().unwrap(), "health"])
        .output()
        .unwrap();
    assert!(health.status.success(), "left broken: {}", text(&health));

    // A real Celery worker serves the external stack as well.
    let celery = variant(&stack, tmp.path(), "ext-celery", |t| {
        let mut w = toml::Table::new();
        w.insert("kind".into(), toml::Value::String("celery".into()));
        w.insert("count".into(), toml::Value::Integer(1));
        w.insert("concurrency".into(), toml::Value::Integer(2));
        w.insert("pool".into(), toml::Value::String("threads".into()));
        t.insert("workers".into(), toml::Value::Table(w));
    });
    let plain = write_workload(
        tmp.path(),
        "plain",
        "[[workload]]\nname = \"t\"\ntask = { kind = \"trivial\" }\ncount = 100\narrival = \"burst\"\n",
    );
    let out = tmp.path().join("celery");
    let run = hab_run(&celery, &plain, &out).output().unwrap();
    assert!(
        run.status.success(),
        "Celery against the external stack: {}",
        text(&run)
    );
    let tasks = csv_rows(&single_run_dir(&out).join("tasks.csv"));
    assert_eq!(tasks.iter().filter(|t| t["outcome"] == "ok").count(), 100);

    // An observer that cannot reach its server is reported, not silently dropped.
    let blind = variant(&stack, tmp.path(), "ext-blind", |t| {
        t.get_mut("external")
            .unwrap()
            .as_table_mut()
            .unwrap()
            .insert(
                "haproxy_stats".into(),
                toml::Value::String("tcp://127.0.0.1:1".into()),
            );
    });
    let out = tmp.path().join("blind");
    let run = hab_run(&blind, &plain, &out).output().unwrap();
    assert!(run.status.success(), "{}", text(&run));
    let dir = single_run_dir(&out);
    let report = run_json(&dir);
    let proxy = report["observers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "haproxy stats")
        .unwrap_or_else(|| panic!("{:#}", report["observers"]));
    assert_eq!(proxy["reached"], 0, "{proxy:#}");
    assert!(proxy["failed"].as_u64().unwrap() > 0, "{proxy:#}");
    let sentinels_reached = report["observers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == "sentinel" && o["reached"].as_u64().unwrap() > 0)
        .count();
    assert_eq!(sentinels_reached, 3, "{:#}", report["observers"]);
    let rendered = hab(&["report", dir.to_str().unwrap()]).output().unwrap();
    assert!(rendered.status.success(), "{}", text(&rendered));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("never reached its server"), "{md}");

    // Two generator shards at once against the one external stack, merged: exactly the
    // union of their tasks, every one ok (each shard's workers serve both shards' tasks).
    let out = tmp.path().join("shards");
    let spawn = |i: &str| {
        hab_run(&external, &plain, &out)
            .args(["--shard", i])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("1/2"), spawn("2/2"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        text(&a),
        text(&b)
    );
    let shard_dirs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(shard_dirs.len(), 2, "{shard_dirs:?}");
    let merged_out = tmp.path().join("merged");
    let mut args = vec![
        "merge".to_string(),
        "--out".into(),
        merged_out.display().to_string(),
    ];
    args.extend(shard_dirs.iter().map(|d| d.display().to_string()));
    let merged = hab(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .output()
        .unwrap();
    assert!(merged.status.success(), "{}", text(&merged));
    let merged_dir = single_run_dir(&merged_out);
    let mut union: Vec<String> = shard_dirs
        .iter()
        .flat_map(|d| csv_rows(&d.join("tasks.csv")))
        .map(|t| t["task_id"].clone())
        .collect();
    union.sort();
    let merged_tasks = csv_rows(&merged_dir.join("tasks.csv"));
    let mut ids: Vec<String> = merged_tasks.iter().map(|t| t["task_id"].clone()).collect();
    ids.sort();
    assert_eq!(ids, union);
    assert_eq!(ids.len(), 100);
    assert_eq!(
        merged_tasks.iter().filter(|t| t["outcome"] == "ok").count(),
        100
    );
    assert_eq!(
        run_json(&merged_dir)["merged"]["stack"],
        "shared",
        "{:#}",
        run_json(&merged_dir)["merged"]
    );

    // hab down: the supervisor and every server are gone.
    let down = hab(&["down", "--dir", stack.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
    assert_gone("the hab up supervisor", supervisor);
    let left = processes_writing_into(&stack);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!stack.join("stack.json").exists());
}
