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
    let left = wait_no_procs(&dir.display().to_string(), Duration::from_secs(10));
    assert!(left.is_empty(), "left behind: {left:?}");
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
