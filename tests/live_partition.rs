//! Live tests of network partitions (issue 6): the Redis master cut off from its replica
//! and the Sentinels in network namespaces (`network = "namespaces"`, a `partition`
//! fault), with and without `min-replicas-to-write`, through `hab run`; the RabbitMQ
//! queue leader cut off from the other broker nodes (`pause_minority`); and the cleanup
//! of hab's namespaces (after a run, after SIGINT, stale ones of a dead run).
//!
//! Where network namespaces cannot be created (not root, no `ip`, `ip netns add` fails)
//! every test fails with the reason, unless `HAB_ALLOW_SKIP=netns` asks to skip them
//! (CI never sets it).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use hab::stack::netns;

type Row = std::collections::BTreeMap<String, String>;

/// True when namespaces cannot be made here and `HAB_ALLOW_SKIP=netns` allows skipping
/// `test`; without the opt-out the test fails with the reason.
fn skipped(test: &str) -> bool {
    skip_unless_allowed("netns", test, netns::unavailable_reason())
}

/// Issue 14 item 14: where namespaces cannot be made, a partition test must fail with the
/// reason — green only when `HAB_ALLOW_SKIP=netns` says a skip is wanted (CI never sets
/// it). Runs one of this binary's own tests as a process without root (uid 65534 through
/// `setpriv` when this one is root), once without and once with the opt-out.
#[test]
fn without_namespaces_a_partition_test_fails_unless_skipping_is_allowed() {
    let me = std::env::current_exe().unwrap();
    let child = |allow: Option<&str>| {
        // /proc/self belongs to this process's effective user.
        let root =
            std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
        let mut c = std::process::Command::new(if root {
            "setpriv".as_ref()
        } else {
            me.as_os_str()
        });
        if root {
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&me);
        }
        c.args([
            "--exact",
            "sigint_during_a_partition_leaves_no_namespace_behind",
            "--test-threads",
            "1",
            "--nocapture",
        ])
        .env_remove("HAB_ALLOW_SKIP");
        if let Some(a) = allow {
            c.env("HAB_ALLOW_SKIP", a);
        }
        let out = c.output().expect("run the test binary without root");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("1 passed") || text.contains("1 failed"),
            "{text}"
        );
        (out.status.success(), text)
    };
    let (passed, text) = child(None);
    assert!(
        !passed,
        "a test that cannot run passed without HAB_ALLOW_SKIP: {text}"
    );
    assert!(text.contains("root"), "the reason is missing: {text}");
    assert!(
        text.contains("HAB_ALLOW_SKIP=netns"),
        "the opt-out is not named: {text}"
    );
    let (passed, text) = child(Some("netns"));
    assert!(
        passed,
        "HAB_ALLOW_SKIP=netns did not allow the skip: {text}"
    );
    assert!(text.contains("skipped"), "{text}");
}

fn failover_rows(dir: &Path) -> Vec<Row> {
    common::csv_rows(&dir.join("failover.csv"))
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

/// Runs the workload `text` on `topo`; returns its one failover row (a partition that
/// was applied), after checking that the run left no server and none of its namespaces
/// or links behind.
fn run_workload(tmp: &Path, topo: &Path, text: &str) -> Row {
    let out = tmp.join("results");
    let work = write_workload(tmp, "partition", text);
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
    assert_no_procs_left(&tmp.to_string_lossy(), Duration::from_secs(10));
    let rows = failover_rows(&single_run_dir(&out));
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = rows.into_iter().next().unwrap();
    assert_eq!(row["kind"], "partition");
    assert_eq!(row["not_applied"], "", "{row:?}");
    row
}

/// Runs the Redis partition workload on `topo`; returns its one failover row.
fn run(tmp: &Path, topo: &Path) -> Row {
    let row = run_workload(tmp, topo, PARTITION);
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
    sigint_during_the_partition(tmp.path(), &topo, PARTITION);
}

/// The same with the broker nodes in namespaces and their queue leader cut off: its
/// epmds, nodes and CLI calls (in namespaces of their own) are gone too.
#[test]
fn sigint_during_a_broker_partition_leaves_no_namespace_behind() {
    if skipped("sigint_during_a_broker_partition_leaves_no_namespace_behind") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let topo = broker_topology(tmp.path());
    sigint_during_the_partition(tmp.path(), &topo, BROKER_PARTITION);
}

/// Runs `text` on `topo`, sends one SIGINT once a partition shows up as blackhole routes
/// in one of the run's namespaces, and checks that no namespace, link or process of the
/// run is left.
fn sigint_during_the_partition(tmp: &Path, topo: &Path, text: &str) {
    let work = write_workload(tmp, "partition", text);
    let mut child = hab_run(topo, &work, &tmp.join("results"))
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
    // Its servers (epmds too, whose command lines name no run directory).
    let servers = children_of(pid);
    assert!(
        !servers.is_empty(),
        "no server running during the partition"
    );
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
    assert_no_procs_left(&tmp.to_string_lossy(), Duration::from_secs(10));
    let alive: Vec<&(u32, String)> = servers
        .iter()
        .filter(|(p, _)| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .is_ok_and(|s| s.split_whitespace().nth(2) != Some("Z"))
        })
        .collect();
    assert!(
        alive.is_empty(),
        "servers left behind after SIGINT: {alive:?}"
    );
}

/// The live child processes of `pid` (pid, command line), from /proc.
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // `pid (comm) state ppid …`; comm may hold spaces, so split after the last ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) == Some(pid) {
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            out.push((child, String::from_utf8_lossy(&cmd).replace('\0', " ")));
        }
    }
    out
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

/// ha-netns.toml (3 RabbitMQ nodes in namespaces, quorum queue) with `net_ticktime` at
/// 5 s, so the partitioned node pauses 5–6.25 s after the cut.
fn broker_topology(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("topologies/ha-netns.toml")).unwrap();
    let text: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("net_ticktime = ") {
                "net_ticktime = \"5s\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(text.iter().any(|l| l == "net_ticktime = \"5s\""));
    let p = dir.join("ha-netns-broker.toml");
    std::fs::write(&p, text.join("\n")).unwrap();
    p
}

/// 100 tasks/s for 22 s; the quorum queue's leader cut off from the other broker nodes
/// 3 s in, for 14 s: longer than net_ticktime and its 25 % slack, and than the majority's
/// election (8.5–9 s after the cut in two runs).
const BROKER_PARTITION: &str = r#"
warmup_tasks = 20
drain_timeout = "40s"
[[workload]]
name = "broker_partition"
task = { kind = "trivial" }
count = 2200
arrival = "rate"
rate_per_s = 100.0
[[workload.fault]]
target = "broker.queue_leader"
kind = "partition"
at = "3s"
duration = "14s"
"#;

/// The queue leader's node partitioned: the majority elects a new leader, pause_minority
/// pauses the cut-off node before the heal and it starts again after it, no task is
/// lost, and the stack is fully healthy again (every node back in one cluster, the
/// quorum queue with all replicas online).
#[test]
fn broker_partition_moves_the_leader_and_pauses_the_minority_without_loss() {
    if skipped("broker_partition_moves_the_leader_and_pauses_the_minority_without_loss") {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let row = run_workload(tmp.path(), &broker_topology(tmp.path()), BROKER_PARTITION);
    eprintln!("broker partition: {row:?}");
    assert!(row["resolved"].starts_with("broker.node["), "{row:?}");
    let restored = num(&row, "restored_ms");
    assert!(restored >= 14_000.0, "healed before its duration: {row:?}");
    // The two nodes of the majority elected a new leader.
    assert!(num(&row, "queue_leader_ms") > 0.0, "{row:?}");
    // pause_minority: paused after net_ticktime, before the heal; resumed after it.
    let paused = num(&row, "broker_paused_ms");
    assert!(paused >= 4_000.0 && paused < restored, "{row:?}");
    assert!(num(&row, "broker_resumed_ms") > restored, "{row:?}");
    // HAProxy saw the paused node's listener go (it was the clients' node).
    assert!(num(&row, "proxy_down_ms") >= 0.0, "{row:?}");
    assert!(num(&row, "healthy_ms") > restored, "{row:?}");
    assert_eq!(num(&row, "lost"), 0.0, "{row:?}");
    assert_eq!(num(&row, "unconfirmed"), 0.0, "{row:?}");
    assert!(num(&row, "switch_time_ms") > 0.0, "{row:?}");
}
