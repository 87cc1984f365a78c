//! Live tests of `hab run` on real RabbitMQ and Redis processes that hab starts itself.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Wait until some file under `dir/executions` holds at least `n` start events.
fn wait_for_starts(dir_parent: &std::path::Path, n: usize, within: Duration) -> std::path::PathBuf {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(entries) = std::fs::read_dir(dir_parent) {
            for run in entries.flatten() {
                let ex = run.path().join("executions");
                let starts: usize = std::fs::read_dir(&ex)
                    .map(|es| {
                        es.flatten()
                            .map(|f| {
                                std::fs::read_to_string(f.path())
                                    .unwrap_or_default()
                                    .lines()
                                    .filter(|l| l.starts_with("start,"))
                                    .count()
                            })
                            .sum()
                    })
                    .unwrap_or(0);
                if starts >= n {
                    return run.path();
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {n} task starts within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hab did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn smoke_workload_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    // A relative --out, as scripts/demo.sh uses: servers run in other directories.
    let output = hab_run(
        &root().join("topologies/standalone.toml"),
        &root().join("workloads/smoke.toml"),
        std::path::Path::new("results"),
    )
    .current_dir(tmp.path())
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "hab run failed:\n{stderr}\n{stdout}"
    );
    assert!(
        stdout.contains("trivial"),
        "terminal table missing:\n{stdout}"
    );

    let dir = single_run_dir(&out);
    let run = run_json(&dir);
    assert_eq!(run["status"], "complete");
    // The run checked its own figures, and every invariant held.
    let invariants = run["invariants"].as_array().unwrap();
    let names: Vec<&str> = invariants
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "one_outcome_per_task",
            "latency_count_equals_ok",
            "ok_tasks_were_executed",
            "no_interval_unaccounted",
            "backend_keys_cover_ok"
        ]
    );
    assert!(
        invariants.iter().all(|i| i["holds"] == true),
        "{invariants:?}"
    );
    assert!(run["bringup_ms"].as_u64().unwrap() > 0);
    assert!(
        run["versions"]["rabbitmq"].as_str().is_some(),
        "{}",
        run["versions"]
    );
    let workloads = run["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 5);
    let mut total = 0;
    for w in workloads {
        let count = w["count"].as_u64().unwrap();
        total += count;
        assert!(count > 0);
        assert_eq!(w["ok"], count, "not every task ok: {w}");
        for k in ["failed", "lost", "result_lost", "duplicated", "unconfirmed"] {
            assert_eq!(w[k], 0, "{k} in {}", w["name"]);
        }
        assert!(w["throughput_per_s"].as_f64().unwrap() > 0.0);
        assert_eq!(w["stages"]["latency"]["count"], count);
        // Latency is measured from the intended start: never below the service time.
        assert!(
            w["stages"]["latency"]["min_us"].as_u64().unwrap()
                >= w["stages"]["service"]["min_us"].as_u64().unwrap()
        );
    }
    // Who was busy: the rate workload (0.5 s by its schedule, sampled every 100 ms) has
    // the broker, Redis, hab's own process and its worker, with shares of a core.
    let rate = workloads
        .iter()
        .find(|w| w["name"] == "trivial_rate")
        .unwrap();
    let roles = rate["cpu"]["roles"]
        .as_object()
        .unwrap_or_else(|| panic!("{rate}"));
    for role in [
        "broker.node[0]",
        "backend.node[0]",
        "hab.producer",
        "hab.worker w1",
    ] {
        let pct = roles[role]["pct"]
            .as_f64()
            .unwrap_or_else(|| panic!("{role}: {rate}"));
        assert!(pct.is_finite() && pct >= 0.0, "{role}: {pct}");
    }
    assert!(rate["cpu"]["seconds"].as_f64().unwrap() > 0.0);
    let cpu_csv = std::fs::read_to_string(dir.join("cpu.csv")).unwrap();
    assert!(cpu_csv.starts_with("at_unix_us,role,pid,ticks,"));
    assert!(cpu_csv.lines().any(|l| l.contains(",machine,")));
    assert!(cpu_csv.lines().any(|l| l.contains(",hab.worker w1,")));
    let timeline_head = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    let timeline_head = timeline_head.lines().next().unwrap();
    for column in [
        "cpu_broker_node0_pct",
        "cpu_hab_producer_pct",
        "cpu_hab_worker_w1_pct",
    ] {
        assert!(
            timeline_head.contains(column),
            "{column} not in {timeline_head}"
        );
    }
    // sleep(0.2): every execution takes at least 200 ms.
    let sleep = workloads.iter().find(|w| w["name"] == "sleep").unwrap();
    assert!(sleep["stages"]["service"]["min_us"].as_u64().unwrap() >= 200_000);
    // The servers agree: nothing left in the queue, one result key per task (warm-up too).
    assert_eq!(run["final_state"]["queue_ready"], 0);
    assert_eq!(
        run["final_state"]["result_keys"].as_u64().unwrap(),
        total + 20
    );
    // The warm-up is not in the figures, but its executions are in the side channel.
    assert_eq!(run["workers"]["executions"].as_u64().unwrap(), total + 20);

    let tasks = std::fs::read_to_string(dir.join("tasks.csv")).unwrap();
    assert_eq!(tasks.lines().count() as u64, total + 1);
    assert!(tasks.lines().skip(1).all(|l| l.contains(",ok,false,")));
    let summary = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    assert!(summary.starts_with("topology,workload,task,count,ok,failed,lost,result_lost,duplicated,unconfirmed,wall_s,throughput_per_s,p50_us"));
    assert_eq!(summary.lines().count(), 6);
    assert!(dir.join("logs").read_dir().unwrap().count() >= 3);
    for w in workloads {
        let hgrm = std::fs::read_to_string(
            dir.join(format!("standalone-{}.hgrm", w["name"].as_str().unwrap())),
        )
        .unwrap();
        assert!(
            hgrm.contains(&format!(
                "Total count    = {:>12}",
                w["count"].as_u64().unwrap()
            )),
            "{hgrm}"
        );
    }
    let hlog = std::fs::read(dir.join("standalone.hlog")).unwrap();
    let mut in_log = 0;
    for entry in hdrhistogram::serialization::interval_log::IntervalLogIterator::new(&hlog) {
        if let Ok(hdrhistogram::serialization::interval_log::LogEntry::Interval(h)) = entry {
            let bytes = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                h.encoded_histogram(),
            )
            .unwrap();
            let hist: hdrhistogram::Histogram<u64> =
                hdrhistogram::serialization::Deserializer::new()
                    .deserialize(&mut bytes.as_slice())
                    .unwrap();
            in_log += hist.len();
        }
    }
    assert_eq!(
        in_log, total,
        "every ok task's latency is in the interval log"
    );
    let timeline = std::fs::read_to_string(dir.join("timeline.csv")).unwrap();
    let ok_per_second: u64 = timeline
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(4).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(ok_per_second, total, "{timeline}");
    // write_zeros deleted its files.
    assert!(!dir.join("scratch").exists() || dir.join("scratch").read_dir().unwrap().count() == 0);
    assert_no_procs_left(&tmp.path().to_string_lossy(), Duration::from_secs(5));

    // The report lists the invariants; --strict fails on a violated one (here: the
    // run.json of this run with one marked violated), and names it.
    let report = |strict: bool| {
        let mut c = common::hab();
        c.arg("report").arg(&dir);
        if strict {
            c.arg("--strict");
        }
        c.output().unwrap()
    };
    let out = report(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("## Invariants") && md.contains("latency_count_equals_ok"),
        "{md}"
    );
    let mut broken = run.clone();
    broken["invariants"][1]["holds"] = serde_json::json!(false);
    broken["invariants"][1]["detail"] = serde_json::json!("workload trivial: off by one");
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_vec_pretty(&broken).unwrap(),
    )
    .unwrap();
    let out = report(false);
    assert!(out.status.success());
    let out = report(true);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("latency_count_equals_ok") && stderr.contains("off by one"),
        "{stderr}"
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(
        md.contains("VIOLATED") && md.contains("invariant latency_count_equals_ok violated"),
        "{md}"
    );
}

#[test]
fn a_workload_with_repeat_3_runs_three_times_back_to_back_and_reports_its_spread() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let workload = write_workload(
        tmp.path(),
        "repeat",
        "drain_timeout = \"60s\"\n\n[[workload]]\nname = \"trivial\"\ntask = { kind = \"trivial\" }\ncount = 20\narrival = \"burst\"\nrepeat = 3\n\n[[workload]]\nname = \"once\"\ntask = { kind = \"trivial\" }\ncount = 5\narrival = \"burst\"\n",
    );
    let output = output_within(
        hab_run(&root().join("topologies/standalone.toml"), &workload, &out),
        tmp.path(),
        Duration::from_secs(240),
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "hab run failed:\n{stderr}\n{stdout}"
    );
    // The terminal table says the spread of the repeated workload.
    assert!(
        stdout.contains("trivial: 3 repetitions; tasks/s median"),
        "{stdout}"
    );
    assert!(
        stderr.contains("hab: workload trivial: repetition 3/3"),
        "{stderr}"
    );

    let dir = single_run_dir(&out);
    let run = run_json(&dir);
    assert_eq!(run["status"], "complete");
    let w = &run["workloads"][0];
    assert_eq!(
        (w["name"].as_str(), w["count"].as_u64(), w["ok"].as_u64()),
        (Some("trivial"), Some(60), Some(60))
    );
    // Percentiles from the merged histogram: every ok task of every repetition.
    assert_eq!(w["stages"]["latency"]["count"], 60);
    let reps = w["repetitions"].as_array().expect("run.json repetitions");
    assert_eq!(reps.len(), 3, "{w}");
    let mut throughputs = Vec::new();
    for (k, r) in reps.iter().enumerate() {
        assert_eq!(r["repetition"], k as u64 + 1);
        assert_eq!(
            (r["count"].as_u64(), r["ok"].as_u64()),
            (Some(20), Some(20)),
            "{r}"
        );
        assert_eq!(r["latency"]["count"], 20);
        let tp = r["throughput_per_s"].as_f64().unwrap();
        assert!(tp > 0.0, "{r}");
        throughputs.push(tp);
    }
    throughputs.sort_by(f64::total_cmp);
    let spread = &w["throughput_spread"];
    assert_eq!(spread["n"], 3);
    assert_eq!(spread["min"].as_f64().unwrap(), throughputs[0]);
    assert_eq!(spread["max"].as_f64().unwrap(), throughputs[2]);
    assert_eq!(spread["median"].as_f64().unwrap(), throughputs[1]);
    assert_eq!(w["throughput_per_s"], spread["median"]);
    // The workload run once has neither.
    let once = &run["workloads"][1];
    assert!(
        once.get("repetitions").is_none() && once.get("throughput_spread").is_none(),
        "{once}"
    );

    // tasks.csv: 20 tasks per repetition, and each repetition drained before the next
    // started (its first intended start is after the previous one's last result).
    let tasks = csv_rows(&dir.join("tasks.csv"));
    let of = |rep: &str| -> Vec<&std::collections::BTreeMap<String, String>> {
        tasks
            .iter()
            .filter(|t| t["workload"] == "trivial" && t["repetition"] == rep)
            .collect()
    };
    let num =
        |t: &std::collections::BTreeMap<String, String>, c: &str| t[c].parse::<i64>().unwrap();
    for (a, b) in [("1", "2"), ("2", "3")] {
        assert_eq!((of(a).len(), of(b).len()), (20, 20));
        let last_seen = of(a)
            .iter()
            .map(|t| num(t, "result_seen_unix_us"))
            .max()
            .unwrap();
        let next_start = of(b)
            .iter()
            .map(|t| num(t, "intended_unix_us"))
            .min()
            .unwrap();
        assert!(
            next_start > last_seen,
            "repetition {b} started before {a} drained"
        );
    }
    assert!(
        tasks
            .iter()
            .filter(|t| t["workload"] == "once")
            .all(|t| t["repetition"] == "1")
    );

    // summary.csv: the merged row with its spread, then one row per repetition.
    let summary = csv_rows(&dir.join("summary.csv"));
    let trivial: Vec<_> = summary
        .iter()
        .filter(|r| r["workload"] == "trivial")
        .collect();
    assert_eq!(trivial.len(), 4, "{summary:?}");
    assert_eq!(
        (
            trivial[0]["repetition"].as_str(),
            trivial[0]["repetitions"].as_str(),
            trivial[0]["count"].as_str()
        ),
        ("", "3", "60")
    );
    assert_eq!(
        trivial[0]["throughput_min_per_s"],
        format!("{:.1}", throughputs[0])
    );
    assert_eq!(
        trivial[0]["throughput_max_per_s"],
        format!("{:.1}", throughputs[2])
    );
    for (k, r) in trivial[1..].iter().enumerate() {
        assert_eq!(r["repetition"], (k + 1).to_string());
        assert_eq!(r["count"], "20");
        assert!(!r["p50_us"].is_empty());
    }
    let once: Vec<_> = summary.iter().filter(|r| r["workload"] == "once").collect();
    assert_eq!(once.len(), 1);
    assert_eq!(
        (
            once[0]["repetitions"].as_str(),
            once[0]["throughput_min_per_s"].as_str()
        ),
        ("1", "")
    );

    // report.md: the spread in the cells, the single run said, each repetition listed.
    let report = common::hab().arg("report").arg(&dir).output().unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let row = md
        .lines()
        .skip_while(|l| !l.starts_with("### trivial"))
        .find(|l| l.starts_with("| standalone"))
        .unwrap();
    assert!(
        row.starts_with("| standalone (baseline) | 1×3 | 60 | 60 | "),
        "{row}"
    );
    let fmt = |v: f64| {
        if v >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    assert!(
        row.contains(&format!(
            "({}–{})",
            fmt(throughputs[0]),
            fmt(throughputs[2])
        )),
        "{row}"
    );
    let once_row = md
        .lines()
        .skip_while(|l| !l.starts_with("### once"))
        .find(|l| l.starts_with("| standalone"))
        .unwrap();
    assert!(once_row.contains("/s (1 run)"), "{once_row}");
    for k in 1..=3 {
        assert!(
            md.contains(&format!("| standalone | 1 | {k} | 20 | 20 |")),
            "{md}"
        );
    }
    assert_no_procs_left(&tmp.path().to_string_lossy(), Duration::from_secs(5));
}

#[test]
fn sigint_stops_the_run_writes_results_and_leaves_no_server() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let topo = write_topology(tmp.path(), "int", "[workers]\nconcurrency = 2\n");
    let work = write_workload(
        tmp.path(),
        "longsleep",
        "drain_timeout = \"60s\"\n[[workload]]\nname = \"sleep\"\ntask = { kind = \"sleep\", seconds = 0.5 }\ncount = 40\narrival = \"burst\"\n",
    );
    let mut child = hab_run(&topo, &work, &out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dir = wait_for_starts(&out, 2, Duration::from_secs(120));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(60));
    assert_eq!(status.code(), Some(130));
    let run = run_json(&dir);
    assert_eq!(run["status"], "interrupted");
    let w = &run["workloads"][0];
    // The first Ctrl-C stops publishing: a fast worker may have started two tasks before
    // the producer published all 40. Every task published is in the ledger, each with
    // exactly one outcome: a task still running or queued when the short drain of an
    // interrupted run ended is unfinished, not lost.
    let n = |k: &str| w[k].as_u64().unwrap();
    let count = n("count");
    assert!((2..=40).contains(&count), "{w}");
    assert_eq!(
        n("ok")
            + n("failed")
            + n("lost")
            + n("result_lost")
            + n("unconfirmed")
            + n("unfinished_running")
            + n("unfinished_queued")
            + n("unknown"),
        count,
        "{w}"
    );
    assert_eq!(n("result_lost") + n("lost"), 0, "{w}");
    assert!(n("ok") < 40, "the run should have been cut short: {w}");
    assert!(dir.join("tasks.csv").exists());
    assert_no_procs_left(&tmp.path().to_string_lossy(), Duration::from_secs(5));
}

#[test]
fn killed_worker_tasks_are_redelivered_never_lost() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let topo = write_topology(
        tmp.path(),
        "kill",
        "[workers]\ncount = 1\nconcurrency = 2\n",
    );
    let work = write_workload(
        tmp.path(),
        "sleeps",
        "drain_timeout = \"60s\"\n[[workload]]\nname = \"sleep\"\ntask = { kind = \"sleep\", seconds = 1.0 }\ncount = 8\narrival = \"burst\"\n",
    );
    let mut child = hab_run(&topo, &work, &out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dir = wait_for_starts(&out, 2, Duration::from_secs(120));
    let dir_s = dir.to_string_lossy().to_string();
    let worker: Vec<_> = procs_mentioning(&dir_s)
        .into_iter()
        .filter(|(_, cmd)| cmd.contains(" worker ") && cmd.contains("--name w1"))
        .collect();
    assert_eq!(worker.len(), 1, "worker process not found: {worker:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker[0].0 as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = wait_exit(&mut child, Duration::from_secs(120));
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    let run = run_json(&dir);
    assert!(
        run["workers"]["restarts"].as_u64().unwrap() >= 1,
        "{}",
        run["workers"]
    );
    let w = &run["workloads"][0];
    assert_eq!(w["lost"], 0, "{w}");
    assert_eq!(w["ok"], 8, "{w}");
    // The two tasks sleeping on the killed worker ran again on its replacement.
    assert!(w["duplicated"].as_u64().unwrap() >= 1, "{w}");
    assert_no_procs_left(&tmp.path().to_string_lossy(), Duration::from_secs(5));
}

#[test]
fn celery_defaults_no_confirms_and_early_acks_still_account_for_every_task() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let topo = tmp.path().join("celery-defaults.toml");
    std::fs::write(
        &topo,
        "name = \"celery-defaults\"\n[broker]\nconfirms = false\n[backend]\n[workers]\nacks = \"early\"\nconcurrency = 2\n",
    )
    .unwrap();
    let work = write_workload(
        tmp.path(),
        "few",
        "[[workload]]\nname = \"trivial\"\ntask = { kind = \"trivial\" }\ncount = 100\narrival = \"rate\"\nrate_per_s = 500.0\n",
    );
    let output = hab_run(&topo, &work, &out).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = single_run_dir(&out);
    let run = run_json(&dir);
    assert_eq!(run["workers"]["acks"], "early");
    let w = &run["workloads"][0];
    assert_eq!(w["ok"], 100, "{w}");
    // Without confirms there is no publish stage to measure.
    assert_eq!(w["stages"]["publish"]["count"], 0, "{w}");
    let tasks = std::fs::read_to_string(dir.join("tasks.csv")).unwrap();
    assert!(
        tasks.lines().skip(1).all(|l| l.contains(",not_requested,")),
        "{tasks}"
    );
}
