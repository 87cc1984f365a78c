//! Live tests of network partitions (issue 6): the Redis master cut off from its replica
//! and the Sentinels in network namespaces (`network = "namespaces"`, a `partition`
//! fault), with and without `min-replicas-to-write`, through `hab run`; and the cleanup
//! of hab's namespaces (after a run, after SIGINT, stale ones of a dead run).
//!
//! Every test is skipped, with the reason printed, where network namespaces cannot be
//! created (not root, no `ip`).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use hab::stack::netns;

type Row = HashMap<String, String>;

/// Why these tests cannot run here, printed when they are skipped.
fn skipped(test: &str) -> bool {
    match netns::unavailable_reason() {
        None => false,
        Some(why) => {
            eprintln!("{test}: skipped: {why}");
            true
        }
    }
}

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

fn num(row: &Row, k: &str) -> f64 {
    row[k]
        .parse()
        .unwrap_or_else(|_| panic!("{k} is not a number: {row:?}"))
}

/// A shipped topology with one RabbitMQ node (the broker is not what is partitioned; a
/// 3-node cluster only makes bring-up slower).
fn topology(dir: &Path, file: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("topologies").join(file)).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("nodes = 3") {
                "nodes = 1".to_string()
            } else if l.starts_with("queue = \"quorum\"") {
                "queue = \"classic\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    let p = dir.join(file);
    std::fs::write(&p, text.join("\n")).unwrap();
    p
}

/// 200 tasks/s for 12 s; the master cut off 2 s in, for 6 s. Unguarded, it is demoted
/// ~10 s after the heal, after publishing ended: every result stored after the cut is
/// lost (~2,000 here, 1,996–1,999 in four runs); guarded, about what `min-replicas-max-lag`
/// (2 s) and the retries let through (431–747 in four runs).
const PARTITION: &str = r#"
warmup_tasks = 20
drain_timeout = "40s"
[[workload]]
name = "partition"
task = { kind = "trivial" }
count = 2400
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "backend.master"
kind = "partition"
at = "2s"
duration = "6s"
"#;

/// The scenarios each run a whole HA stack; on 2 cores two at once starve the Sentinels.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs the partition workload on `topo`; returns its one failover row, after checking
/// that the run left no server and none of its namespaces or links behind.
fn run(tmp: &Path, topo: &Path) -> Row {
    let out = tmp.join("results");
    let work = write_workload(tmp, "partition", PARTITION);
    let child = hab_run(topo, &work, &out)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        netns::owned_by(pid),
        Vec::<String>::new(),
        "namespaces or links of the run left behind"
    );
    let left = wait_no_procs(&tmp.to_string_lossy(), Duration::from_secs(10));
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let rows = failover_rows(&single_run_dir(&out));
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = rows.into_iter().next().unwrap();
    assert_eq!(row["kind"], "partition");
    assert_eq!(row["not_applied"], "", "{row:?}");
    // Cut, then healed `duration` later (as offsets from the cut).
    assert!(num(&row, "restored_ms") >= 6000.0, "{row:?}");
    // The Sentinels on the majority side saw the master go and promoted the replica.
    assert!(num(&row, "sentinel_switch_ms") > 0.0, "{row:?}");
    row
}

/// Results acknowledged by the partitioned master and gone after it was demoted:
/// executed but never seen (`result_lost`) or seen and no longer in Redis at the end
/// (`result_vanished`; hab's producer sat on the minority side too).
fn acknowledged_then_gone(row: &Row) -> f64 {
    num(row, "result_lost") + num(row, "result_vanished")
}

/// Without a guard the partitioned master keeps acknowledging writes, which its resync
/// throws away; with `min-replicas-to-write 1` it refuses them (NOREPLICAS) after
/// `min-replicas-max-lag`, so far fewer acknowledged results are lost.
#[test]
fn partition_loses_acknowledged_results_unless_min_replicas_refuses_them() {
    if skipped("partition_loses_acknowledged_results_unless_min_replicas_refuses_them") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let plain = run(tmp.path(), &topology(tmp.path(), "ha-netns.toml"));
    let tmp2 = tempfile::tempdir().unwrap();
    let guarded = run(
        tmp2.path(),
        &topology(tmp2.path(), "ha-netns-minreplicas.toml"),
    );
    let (gone, gone_guarded) = (
        acknowledged_then_gone(&plain),
        acknowledged_then_gone(&guarded),
    );
    eprintln!(
        "no guard: {gone} acknowledged then gone (result_lost {}, result_vanished {}); \
         min-replicas: {gone_guarded} gone, {} NOREPLICAS on {} tasks",
        plain["result_lost"],
        plain["result_vanished"],
        guarded["noreplicas_errors"],
        guarded["noreplicas_tasks"]
    );
    assert!(gone > 0.0, "nothing lost without a guard: {plain:?}");
    assert_eq!(num(&plain, "noreplicas_errors"), 0.0, "{plain:?}");
    assert!(
        num(&guarded, "noreplicas_errors") > 0.0 && num(&guarded, "noreplicas_tasks") > 0.0,
        "no refused write with min-replicas-to-write: {guarded:?}"
    );
    assert!(
        gone_guarded * 2.0 < gone,
        "min-replicas-to-write did not cut the loss to less than half: {gone_guarded} vs {gone}"
    );
}

/// The run's namespaces exist while it runs and are gone after one Ctrl-C in the middle
/// of the partition.
#[test]
fn sigint_during_a_partition_leaves_no_namespace_behind() {
    if skipped("sigint_during_a_partition_leaves_no_namespace_behind") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let topo = topology(tmp.path(), "ha-netns.toml");
    let work = write_workload(tmp.path(), "partition", PARTITION);
    let mut child = hab_run(&topo, &work, &tmp.path().join("results"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the partition is in effect: blackhole routes in one of its namespaces.
    let started = Instant::now();
    let cut = loop {
        let blackholed = netns::owned_by(pid).iter().any(|ns| {
            std::process::Command::new("ip")
                .args(["-n", ns, "route", "show", "type", "blackhole"])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty())
        });
        if blackholed || started.elapsed() > Duration::from_secs(180) {
            break blackholed;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("hab exited before the partition: {status}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(cut, "the partition never showed up as blackhole routes");
    eprintln!("hab after SIGINT: {status}");
    assert_eq!(
        netns::owned_by(pid),
        Vec::<String>::new(),
        "namespaces or links left behind after SIGINT"
    );
    let left = wait_no_procs(&tmp.path().to_string_lossy(), Duration::from_secs(10));
    assert!(left.is_empty(), "processes left behind: {left:?}");
}

/// What a dead hab left behind is removed at the next start; what a live one owns is not.
#[test]
fn stale_namespaces_of_dead_runs_are_removed_and_live_ones_kept() {
    if skipped("stale_namespaces_of_dead_runs_are_removed_and_live_ones_kept") {
        return;
    }
    // A pid that is dead now (a reaped child) and one that is alive (a sleeping child).
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let mut live = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let live_pid = live.id();
    let ip = |args: &[&str]| {
        let s = std::process::Command::new("ip")
            .args(args)
            .status()
            .unwrap();
        assert!(s.success(), "ip {args:?}");
    };
    let dead_ns = netns::name(dead_pid, 0, Some(0));
    let dead_bridge = netns::name(dead_pid, 1, None);
    let live_ns = netns::name(live_pid, 0, Some(0));
    ip(&["netns", "add", &dead_ns]);
    ip(&["link", "add", &dead_bridge, "type", "bridge"]);
    ip(&["netns", "add", &live_ns]);
    let removed = netns::clean_stale();
    let after_dead = netns::owned_by(dead_pid);
    let after_live = netns::owned_by(live_pid);
    // Clean up what is ours before asserting.
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &live_ns])
        .status();
    let _ = live.kill();
    let _ = live.wait();
    // Gone (removed by this call, or by another network's creation running in parallel:
    // every `Network::create` cleans up first).
    assert_eq!(after_dead, Vec::<String>::new(), "removed: {removed:?}");
    assert_eq!(
        after_live,
        vec![live_ns],
        "a live run's namespace was touched"
    );
    assert!(!removed.iter().any(|n| netns::owner(n) == Some(live_pid)));
}

/// Blackhole routes in the namespace `ns` (`ip -n ns route show type blackhole`).
fn blackholes(ns: &str) -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["-n", ns, "route", "show", "type", "blackhole"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

/// A network without servers: a cut blackholes the target's peers on both sides and
/// nothing else, a heal removes exactly that, and `remove_all_now` (the second Ctrl-C)
/// deletes every namespace and link of this process.
#[test]
fn a_cut_and_heal_change_only_routes_between_members_and_remove_all_now_cleans_up() {
    if skipped("a_cut_and_heal_change_only_routes_between_members_and_remove_all_now_cleans_up") {
        return;
    }
    let me = std::process::id();
    let mut net = netns::Network::create(3).unwrap();
    let m: Vec<netns::NsPlace> = net.members().to_vec();
    assert!(m.iter().all(|p| netns::owner(&p.netns) == Some(me)));
    assert_eq!(netns::owner(net.bridge()), Some(me));
    assert_eq!(
        net.gateway().octets()[..3],
        m[0].addr.octets()[..3],
        "one /24"
    );
    net.cut(1).unwrap();
    assert!(
        net.cut(1).is_err(),
        "a second cut of the same member is refused"
    );
    let mut inside = blackholes(&m[1].netns);
    inside.sort();
    let mut want = vec![
        format!("blackhole {}", m[0].addr),
        format!("blackhole {}", m[2].addr),
    ];
    want.sort();
    assert_eq!(inside, want);
    assert_eq!(
        blackholes(&m[0].netns),
        [format!("blackhole {}", m[1].addr)]
    );
    assert_eq!(
        blackholes(&m[2].netns),
        [format!("blackhole {}", m[1].addr)]
    );
    net.heal(1).unwrap();
    for p in &m {
        assert_eq!(blackholes(&p.netns), Vec::<String>::new(), "{}", p.netns);
    }
    let ours = netns::owned_by(me);
    assert!(ours.contains(&m[0].netns) && ours.contains(&net.bridge().to_string()));
    netns::remove_all_now();
    assert_eq!(netns::owned_by(me), Vec::<String>::new());
    drop(net); // deleting what is gone already is quiet
}
