//! Live test: a real Celery worker (scripts/celery/, made by its setup.sh, which
//! scripts/test.sh runs) serves hab's tasks on the standalone stack, and reports its
//! executions through hab's side channel.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn a_real_celery_worker_serves_the_smoke_workloads() {
    assert!(
        root().join("scripts/celery/venv/bin/python").is_file(),
        "run scripts/celery/setup.sh first (scripts/test.sh does)"
    );
    let out = tempfile::tempdir().unwrap();
    let topo = root().join("topologies/standalone-celery.toml");
    let work = root().join("workloads/smoke.toml");
    let status = hab_run(&topo, &work, out.path()).status().unwrap();
    assert!(status.success());
    let dir = single_run_dir(out.path());
    assert_no_procs_left(&dir.display().to_string(), Duration::from_secs(10));
    let report = run_json(&dir);
    assert_eq!(report["status"], "complete");
    assert_eq!(report["workers"]["kind"], "celery");
    let mut total = 0;
    for w in report["workloads"].as_array().unwrap() {
        assert_eq!(w["ok"], w["count"], "{w}");
        assert_eq!(w["lost"], 0, "{w}");
        assert_eq!(w["result_lost"], 0, "{w}");
        total += w["count"].as_u64().unwrap();
    }
    // Every execution came through the side channel, one per task (warm-up included),
    // and the Celery result backend holds one key per task.
    let warmup = report["workload_plan"]["warmup_tasks"].as_u64().unwrap();
    assert_eq!(report["workers"]["executions"], total + warmup);
    assert_eq!(report["final_state"]["result_keys"], total + warmup);
    assert_eq!(report["final_state"]["queue_ready"], 0);
    let tasks = std::fs::read_to_string(dir.join("tasks.csv")).unwrap();
    // Service time comes from the Celery worker's own start/finish events.
    assert!(
        tasks.lines().skip(1).all(|l| l.contains(",w1,ok,false,")),
        "{tasks}"
    );
    let log = std::fs::read_to_string(dir.join("logs/worker-w1.log")).unwrap();
    assert!(log.contains("celery@") || log.contains("w1@hab"), "{log}");
    assert!(log.contains("Task hab.factorial["), "{log}");
}

/// Issue 14 item 3: a Celery worker with `task_track_started = True` stores STARTED when
/// each task starts, then its final state. STARTED is progress: the tasks must come out
/// ok, with the SUCCESS record's sighting as their end-to-end latency (before the fix
/// every task was `failed`, its "latency" the moment it started).
#[test]
fn started_records_are_progress_not_failures() {
    assert!(
        root().join("scripts/celery/venv/bin/python").is_file(),
        "run scripts/celery/setup.sh first (scripts/test.sh does)"
    );
    let out = tempfile::tempdir().unwrap();
    let topo = write_topology(
        out.path(),
        "celery-track-started",
        "[workers]\nkind = \"celery\"\ncount = 1\nconcurrency = 2\nacks = \"late\"\ntrack_started = true\n",
    );
    const SLEEP_S: f64 = 0.3;
    let work = write_workload(
        out.path(),
        "track-started",
        &format!(
            "warmup_tasks = 5\ndrain_timeout = \"60s\"\n\
             [[workload]]\nname = \"trivial\"\ntask = {{ kind = \"trivial\" }}\ncount = 50\narrival = \"burst\"\n\
             [[workload]]\nname = \"sleep\"\ntask = {{ kind = \"sleep\", seconds = {SLEEP_S} }}\ncount = 6\narrival = \"burst\"\n"
        ),
    );
    let results = out.path().join("results");
    let output = hab_run(&topo, &work, &results).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = single_run_dir(&results);
    assert_no_procs_left(&dir.display().to_string(), Duration::from_secs(10));
    let report = run_json(&dir);
    assert_eq!(report["status"], "complete");
    assert_eq!(report["workers"]["kind"], "celery");
    let mut total = 0;
    for w in report["workloads"].as_array().unwrap() {
        assert_eq!(w["ok"], w["count"], "{w}");
        assert_eq!(w["failed"], 0, "{w}");
        total += w["count"].as_u64().unwrap();
    }
    // The setting took effect: hab was notified of a STARTED record for every task it
    // published (warm-up included) and let none of them settle a task.
    let warmup = report["workload_plan"]["warmup_tasks"].as_u64().unwrap();
    let progress = report["workers"]["progress_results"].as_u64().unwrap();
    assert!(progress >= total + warmup, "{progress} progress records");
    // End to end: a sleep task's result cannot be seen before its sleep ended, while its
    // STARTED record is written as it begins.
    let rows = csv_rows(&dir.join("tasks.csv"));
    let sleeps: Vec<_> = rows.iter().filter(|r| r["workload"] == "sleep").collect();
    assert_eq!(sleeps.len(), 6);
    for r in sleeps {
        let num = |k: &str| r[k].parse::<i64>().unwrap_or_else(|_| panic!("{k}: {r:?}"));
        assert_eq!(r["outcome"], "ok", "{r:?}");
        assert!(
            num("result_seen_unix_us") - num("started_unix_us") >= (SLEEP_S * 1e6) as i64,
            "the result was seen before the task slept {SLEEP_S} s: {r:?}"
        );
        assert!(
            num("latency_us") >= (SLEEP_S * 1e6) as i64,
            "latency shorter than the task: {r:?}"
        );
    }
}

/// Issue 18 item 8: outside a checkout, the first Celery run sets the worker up in hab's
/// cache (`$XDG_CACHE_HOME/hab/celery-…`: the built-in hab_tasks.py, a virtualenv with the
/// pinned Celery from PyPI) and the run is served by it.
#[test]
fn outside_a_checkout_the_celery_worker_is_set_up_in_the_cache_and_serves_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("out");
    let mut cmd = hab();
    cmd.current_dir(tmp.path())
        .env("XDG_CACHE_HOME", &cache)
        .args([
            "run",
            "--topology",
            "standalone-celery",
            "--workload",
            "smoke",
            "--no-progress",
        ])
        .arg("--out")
        .arg(&out);
    // pip's own download cache stays where it was (pip follows XDG_CACHE_HOME too).
    if let Some(home) = std::env::var_os("HOME") {
        cmd.env(
            "PIP_CACHE_DIR",
            std::path::Path::new(&home).join(".cache/pip"),
        );
    }
    let o = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let set_up = cache.join("hab");
    assert!(
        stderr.contains(&format!(
            "setting up the Celery worker in {}/celery-",
            set_up.display()
        )),
        "{stderr}"
    );
    let dir = std::fs::read_dir(&set_up)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("the cache's Celery directory");
    assert!(dir.join("venv/bin/python").is_file());
    assert_eq!(
        std::fs::read_to_string(dir.join("hab_tasks.py")).unwrap(),
        std::fs::read_to_string(root().join("scripts/celery/hab_tasks.py")).unwrap()
    );
    let run = single_run_dir(&out);
    assert_no_procs_left(&run.display().to_string(), Duration::from_secs(10));
    let report = run_json(&run);
    assert_eq!(report["status"], "complete");
    assert_eq!(report["workers"]["kind"], "celery");
    for w in report["workloads"].as_array().unwrap() {
        assert_eq!(w["ok"], w["count"], "{w}");
    }
}
