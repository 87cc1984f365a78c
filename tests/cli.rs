//! CLI tests: help, validation and bad input (nothing is started).

mod common;

use assert_cmd::Command;
use predicates::prelude::*;

fn hab() -> Command {
    let mut c = Command::new(common::hab_bin());
    c.current_dir(common::root());
    c
}

#[test]
fn help_lists_the_commands() {
    hab()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("run"))
        .stdout(predicate::str::contains("worker"))
        .stdout(predicate::str::contains("check"))
        .stdout(predicate::str::contains("compare"))
        .stdout(predicate::str::contains("report"))
        .stdout(predicate::str::contains("calibrate"));
    hab()
        .args(["run", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--topology"))
        .stdout(predicate::str::contains("--workload"));
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    hab().arg("frobnicate").assert().code(2);
}

#[test]
fn check_without_files_is_a_usage_error() {
    hab()
        .arg("check")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--topology"));
}

#[test]
fn shipped_files_check_clean() {
    for w in ["workloads/seed.toml", "workloads/smoke.toml"] {
        hab()
            .args([
                "check",
                "--topology",
                "topologies/standalone.toml",
                "--workload",
                w,
            ])
            .assert()
            .success()
            .stdout(predicate::str::contains("ok"));
    }
}

#[test]
fn stale_master_files_check_clean_and_their_mistakes_are_located() {
    for t in [
        "topologies/ha.toml",
        "topologies/ha-keep-sessions.toml",
        "topologies/ha-uptime-guard.toml",
    ] {
        hab()
            .args([
                "check",
                "--topology",
                t,
                "--workload",
                "workloads/stale-master.toml",
            ])
            .assert()
            .success()
            .stdout(predicate::str::contains(
                "workload plan stale-master: ok (2 workloads)",
            ));
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.toml");
    std::fs::write(
        &p,
        "name = \"w\"\n[[workload]]\nname = \"a\"\ntask = { kind = \"trivial\" }\ncount = 3000\n\
         arrival = \"rate\"\nrate_per_s = 100.0\n[[workload.fault]]\ntarget = \"proxy\"\n\
         kind = \"failover\"\nat = \"5s\"\n",
    )
    .unwrap();
    hab()
        .args(["check", "--workload"])
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("w.toml"))
        .stderr(predicate::str::contains(
            "workload[0] (\"a\").fault[0].target: kind = \"failover\" (SENTINEL FAILOVER) only applies to \"backend.master\", got \"proxy\"",
        ));
    let t = dir.path().join("t.toml");
    std::fs::write(
        &t,
        "name = \"t\"\n[broker]\n[backend]\n[proxy]\nmaster_min_uptime = \"500ms\"\n",
    )
    .unwrap();
    hab()
        .args(["check", "--topology"])
        .arg(&t)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("t.toml"))
        .stderr(predicate::str::contains(
            "proxy.master_min_uptime: must be whole seconds between 1s and 1h",
        ));
}

#[test]
fn unknown_field_exits_2_naming_file_field_and_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "name = \"x\"\n[broker]\nnodes = 1\nqueues = \"classic\"\n[backend]\n",
    )
    .unwrap();
    hab()
        .args(["check", "--topology"])
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml"))
        .stderr(predicate::str::contains("queues"))
        .stderr(predicate::str::contains("line 4"))
        .stderr(predicate::str::contains("queue"));
}

#[test]
fn bad_duration_exits_2_saying_what_durations_look_like() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.toml");
    std::fs::write(
        &p,
        "name = \"x\"\n[broker]\nheartbeat = \"10 parsecs\"\n[backend]\n",
    )
    .unwrap();
    hab()
        .args(["check", "--topology"])
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("t.toml"))
        .stderr(predicate::str::contains("heartbeat"))
        .stderr(predicate::str::contains("10s"));
}

#[test]
fn cross_field_problems_are_all_reported_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.toml");
    std::fs::write(
        &p,
        r#"name = "w"
[[workload]]
name = "fast"
task = { kind = "trivial" }
count = 10
arrival = "rate"

[[workload]]
name = "slow"
task = { kind = "sleep", seconds = 5000.0 }
count = 1
arrival = "burst"
"#,
    )
    .unwrap();
    hab()
        .args(["check", "--workload"])
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("w.toml"))
        .stderr(predicate::str::contains(
            "workload[0] (\"fast\").rate_per_s",
        ))
        .stderr(predicate::str::contains(
            "workload[1] (\"slow\").task.seconds",
        ));
}

#[test]
fn missing_file_exits_2() {
    hab()
        .args(["check", "--topology", "topologies/nope.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("topologies/nope.toml"));
}

#[test]
fn run_with_a_bad_workload_starts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.toml");
    std::fs::write(&p, "name = \"w\"\nfoo = 1\n").unwrap();
    let out = dir.path().join("out");
    hab()
        .args([
            "run",
            "--topology",
            "topologies/standalone.toml",
            "--workload",
        ])
        .arg(&p)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("foo"));
    assert!(
        !out.exists(),
        "no run directory for a run that never started"
    );
}

#[test]
fn compare_with_a_bad_topology_starts_nothing_and_names_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"bad\"\n[broker]\nqueue = \"stream\"\n[backend]\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    hab()
        .args([
            "compare",
            "--workload",
            "workloads/smoke.toml",
            "--topology",
        ])
        .arg(&bad)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.toml"))
        .stderr(predicate::str::contains("queue"))
        .stderr(predicate::str::contains("quorum"));
    assert!(
        !out.exists(),
        "no comparison directory for a comparison that never started"
    );
}

#[test]
fn compare_refuses_two_topologies_with_one_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    hab()
        .args([
            "compare",
            "--topology",
            "topologies/standalone.toml",
            "--workload",
            "workloads/smoke.toml",
            "--out",
        ])
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("given twice"));
    assert!(!out.exists());
}

#[test]
fn compare_needs_a_topology_and_a_positive_repeat() {
    hab().arg("compare").assert().code(2);
    hab()
        .args([
            "compare",
            "--topology",
            "topologies/ha.toml",
            "--repeat",
            "0",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("repeat"));
}

#[test]
fn report_of_a_missing_or_empty_directory_is_a_clear_error() {
    hab()
        .args(["report", "/nonexistent/hab-results"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a directory"));
    let dir = tempfile::tempdir().unwrap();
    hab()
        .arg("report")
        .arg(dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("holds no run.json"));
}

#[test]
fn calibrate_with_a_bad_topology_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken-calibrate.toml");
    std::fs::write(&p, "name = \"x\"\n[broker]\nnodez = 1\n[backend]\n").unwrap();
    let out = dir.path().join("results");
    hab()
        .args(["calibrate", "--topology"])
        .arg(&p)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("broken-calibrate.toml"))
        .stderr(predicate::str::contains("nodez"));
    // Nothing was started or written.
    assert!(!out.exists());
    // A missing file too.
    hab()
        .args(["calibrate", "--topology", "no/such/topology.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no/such/topology.toml"));
}

#[test]
fn calibrate_refuses_a_zero_window_or_disk_size() {
    for args in [
        ["--duration", "0s"],
        ["--disk-bytes", "0"],
        ["--duration", "soon"],
    ] {
        hab()
            .args(["calibrate", "--topology", "topologies/standalone.toml"])
            .args(args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(args[0]));
    }
    hab()
        .args(["calibrate", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--disk-bytes"))
        .stdout(predicate::str::contains("--duration"));
}

#[test]
fn client_failover_topology_checks_clean_and_bad_combinations_are_located() {
    hab()
        .args([
            "check",
            "--topology",
            "topologies/ha-client-failover.toml",
            "--workload",
            "workloads/failover.toml",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("topology ha-client-failover: ok"));
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.toml");
    std::fs::write(
        &p,
        "name = \"t\"\n[broker]\nnodes = 1\n[backend]\n[clients]\nbroker = \"nodes\"\nbackend = \"sentinel\"\n",
    )
    .unwrap();
    hab()
        .args(["check", "--topology"])
        .arg(&p)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("t.toml"))
        .stderr(predicate::str::contains(
            "clients.broker: \"nodes\" needs broker.nodes >= 2",
        ))
        .stderr(predicate::str::contains(
            "clients.backend: \"sentinel\" needs backend.sentinels >= 1",
        ));
}

#[test]
fn broker_partition_files_check_clean_and_their_mistakes_are_located() {
    for t in ["topologies/ha.toml", "topologies/ha-netns.toml"] {
        hab()
            .args([
                "check",
                "--topology",
                t,
                "--workload",
                "workloads/broker-partition.toml",
            ])
            .assert()
            .success()
            .stdout(predicate::str::contains(
                "workload plan broker-partition: ok (2 workloads)",
            ));
    }
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.toml");
    std::fs::write(
        &t,
        "name = \"t\"\n[broker]\nnodes = 3\nnet_ticktime = \"1500ms\"\n[backend]\n",
    )
    .unwrap();
    hab()
        .args(["check", "--topology"])
        .arg(&t)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("t.toml"))
        .stderr(predicate::str::contains(
            "broker.net_ticktime: must be whole seconds between 2s and 600s (Erlang's net_ticktime; absent = 60s), got 1s 500ms",
        ));
    let w = dir.path().join("w.toml");
    std::fs::write(
        &w,
        "name = \"w\"\n[[workload]]\nname = \"a\"\ntask = { kind = \"trivial\" }\ncount = 300\n\
         arrival = \"rate\"\nrate_per_s = 100.0\n[[workload.fault]]\ntarget = \"proxy\"\n\
         kind = \"partition\"\nat = \"1s\"\nduration = \"2s\"\n",
    )
    .unwrap();
    hab()
        .args(["check", "--workload"])
        .arg(&w)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("w.toml"))
        .stderr(predicate::str::contains(
            "workload[0] (\"a\").fault[0].target: kind = \"partition\" applies to broker nodes",
        ));
}
