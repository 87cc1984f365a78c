//! Live tests: a worker is safe to point at a shared broker. A real Celery 5.7 client (the
//! project's Celery virtualenv, `tests/common/celery_client.py`) publishes what anyone with
//! the broker's credentials could: paths that lead out of the worker's scratch directory,
//! an existing file, arguments over the limits, `countdown`, a past `expires`, a chain.
//! Each gets the outcome Celery would give or a FAILURE naming the rule; nothing outside
//! the scratch directory (nor any file that was in it) is touched, and the worker keeps
//! serving. The same calls go to hab's worker and to hab's tasks in a real Celery worker.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hab::protocol::side_channel::{self, SideEventKind};
use hab::stack::process::ManagedProcess;
use hab::stack::{Stack, StackDirs, StackOptions};
use serde_json::{Value, json};

/// Runs the real Celery client on `calls` and returns its one answer per call.
fn celery_client(stack: &Stack, calls: Value) -> Vec<Value> {
    let python = common::root().join("scripts/celery/venv/bin/python");
    assert!(
        python.is_file(),
        "run scripts/celery/setup.sh first (scripts/test.sh does)"
    );
    let mut child = Command::new(python)
        .arg(common::root().join("tests/common/celery_client.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input =
        json!({"broker": stack.broker_url(), "backend": stack.backend_url(), "calls": calls});
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.to_string().as_bytes()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "celery client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The worker under test: hab's own, or a real Celery worker with hab's tasks.
enum WorkerKind {
    Hab,
    Celery,
}

struct Fixture {
    _tmp: tempfile::TempDir,
    stack: Stack,
    scratch: PathBuf,
    outside: PathBuf,
    executions: PathBuf,
    worker: ManagedProcess,
}

const LIMITS: &str =
    "[workers]\nconcurrency = 2\n[workers.limits]\nmax_write_bytes = 1000000000000000\n";

async fn fixture(kind: WorkerKind) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = StackDirs::create(tmp.path().join("logs")).unwrap();
    let stack = Stack::start(&StackOptions::default(), &dirs).await.unwrap();
    let scratch = tmp.path().join("scratch");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"keep me").unwrap();
    std::fs::write(scratch.join("existing"), b"was here first").unwrap();
    std::os::unix::fs::symlink(&outside, scratch.join("out")).unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), scratch.join("victim-link")).unwrap();
    let executions = tmp.path().join("w1.csv");
    let log = tmp.path().join("worker.log");
    let worker = match kind {
        WorkerKind::Hab => {
            let topo = common::write_topology(tmp.path(), "trust", LIMITS);
            let mut cmd = common::hab();
            cmd.arg("worker")
                .arg("--topology")
                .arg(&topo)
                .arg("--broker-url")
                .arg(stack.broker_url())
                .arg("--backend-url")
                .arg(stack.backend_url())
                .arg("--executions")
                .arg(&executions)
                .arg("--scratch")
                .arg(&scratch);
            ManagedProcess::spawn("worker w1", cmd, "hab", &log).unwrap()
        }
        WorkerKind::Celery => {
            let dir = common::root().join("scripts/celery");
            let mut cmd = Command::new(dir.join("venv/bin/python"));
            cmd.current_dir(&dir)
                .args([
                    "-m",
                    "celery",
                    "-A",
                    "hab_tasks",
                    "worker",
                    "--loglevel=INFO",
                ])
                .args([
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ])
                .args(["--concurrency=2", "--pool=prefork", "--hostname=w1@hab"])
                .env("PYTHONPATH", &dir)
                .env("HAB_BROKER_URL", stack.broker_url())
                .env("HAB_BACKEND_URL", stack.backend_url())
                .env("HAB_QUEUE_TYPE", "classic")
                .env("HAB_ACKS_LATE", "1")
                .env("HAB_WORKER_NAME", "w1")
                .env("HAB_EXECUTIONS", &executions)
                .env("HAB_SCRATCH", &scratch)
                .env("HAB_MAX_WRITE_BYTES", "1000000000000000");
            ManagedProcess::spawn("celery worker w1", cmd, "python3", &log).unwrap()
        }
    };
    Fixture {
        _tmp: tmp,
        stack,
        scratch,
        outside,
        executions,
        worker,
    }
}

fn free_bytes(dir: &Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(dir).unwrap();
    st.blocks_available() * st.fragment_size()
}

fn assert_refused(answer: &Value, exc_type: &str, rule: &str) {
    assert_eq!(answer["state"], "FAILURE", "{answer}");
    assert_eq!(answer["result"]["exc_type"], exc_type, "{answer}");
    let message = answer["result"]["exc_message"].as_str().unwrap();
    assert!(
        message.ends_with(&format!("(rule: {rule})")),
        "{rule}: {message}"
    );
}

/// The calls of the refusal test, and what each must get.
async fn refusals_hold(kind: WorkerKind) {
    let mut f = fixture(kind).await;
    let scratch = f.scratch.display().to_string();
    let huge = free_bytes(&f.scratch) * 2;
    let calls = json!([
        {"task": "hab.write_zeros", "args": [f.outside.join("victim"), 1]},
        {"task": "hab.write_zeros", "args": [format!("{scratch}/../outside/victim"), 1]},
        {"task": "hab.write_zeros", "args": ["../outside/new", 1]},
        {"task": "hab.write_zeros", "args": ["existing", 1]},
        {"task": "hab.write_zeros", "args": ["out/new", 1]},
        {"task": "hab.write_zeros", "args": ["victim-link", 1]},
        {"task": "hab.write_zeros", "args": ["huge", huge]},
        {"task": "hab.factorial", "args": [1_000_000_000u64]},
        {"task": "hab.sleep", "args": [1_000_000]},
        // And the worker keeps serving, inside its rules.
        {"task": "hab.write_zeros", "args": ["fine.bin", 3_000_000]},
        {"task": "hab.write_zeros", "kwargs": {"path": format!("{scratch}/abs.bin"), "nbytes": 10}},
        {"task": "hab.sleep", "args": [0.05]},
        {"task": "hab.factorial", "args": [100]},
    ]);
    let a = celery_client(&f.stack, calls);
    assert_eq!(a.len(), 13);
    assert_refused(&a[0], "PermissionError", "path_outside_scratch");
    assert_refused(&a[1], "PermissionError", "path_outside_scratch");
    assert_refused(&a[2], "PermissionError", "path_outside_scratch");
    assert_refused(&a[3], "FileExistsError", "file_exists");
    assert_refused(&a[4], "PermissionError", "path_through_symlink");
    assert_refused(&a[5], "PermissionError", "path_through_symlink");
    assert_refused(&a[6], "ValueError", "write_free_space");
    assert_refused(&a[7], "ValueError", "factorial_limit");
    assert!(
        a[7]["result"]["exc_message"]
            .as_str()
            .unwrap()
            .contains("workers.limits.max_factorial_n"),
        "{}",
        a[7]
    );
    assert_refused(&a[8], "ValueError", "sleep_limit");
    assert_eq!(a[9]["state"], "SUCCESS", "{}", a[9]);
    assert_eq!(a[9]["result"], 3_000_000);
    assert_eq!(a[10]["state"], "SUCCESS", "{}", a[10]);
    // Both workers agree: sleep returns None.
    assert_eq!(
        (&a[11]["state"], &a[11]["result"]),
        (&json!("SUCCESS"), &Value::Null)
    );
    assert_eq!(a[12]["result"], 158);

    // Nothing outside was touched, nothing that was inside was either, and the worker
    // left only what was there before.
    assert_eq!(std::fs::read(f.outside.join("victim")).unwrap(), b"keep me");
    let outside: Vec<_> = std::fs::read_dir(&f.outside)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("victim")]);
    assert_eq!(
        std::fs::read(f.scratch.join("existing")).unwrap(),
        b"was here first"
    );
    let mut inside: Vec<_> = std::fs::read_dir(&f.scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    inside.sort();
    assert_eq!(inside, ["existing", "out", "victim-link"]);
    assert!(
        f.worker.is_running(),
        "worker died:\n{}",
        f.worker.log_tail(20)
    );

    // The side channel names each refusal.
    let events = side_channel::parse_all(&std::fs::read_to_string(&f.executions).unwrap());
    let mut rules: Vec<String> = events
        .iter()
        .filter_map(|e| match e.kind {
            SideEventKind::Refused => Some(e.detail.clone()),
            SideEventKind::Finish { succeeded: false } => {
                e.detail.strip_prefix("refused:").map(str::to_string)
            }
            _ => None,
        })
        .collect();
    rules.sort();
    assert_eq!(
        rules,
        [
            "factorial_limit",
            "file_exists",
            "path_outside_scratch",
            "path_outside_scratch",
            "path_outside_scratch",
            "path_through_symlink",
            "path_through_symlink",
            "sleep_limit",
            "write_free_space"
        ]
    );
    f.worker.stop(Duration::from_secs(15)).await;
    f.stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn habs_worker_refuses_what_leaves_its_scratch_directory_or_exceeds_its_limits() {
    refusals_hold(WorkerKind::Hab).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn habs_tasks_in_a_real_celery_worker_refuse_the_same() {
    refusals_hold(WorkerKind::Celery).await;
}

/// `countdown`, a past `expires`, a chain and `ignore_result`-free features, sent by the
/// real Celery client to hab's worker: honoured as Celery honours them, or refused by
/// name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn habs_worker_honours_eta_and_expires_and_refuses_what_it_lacks() {
    let mut f = fixture(WorkerKind::Hab).await;
    let calls = json!([
        {"task": "hab.trivial", "countdown": 2},
        {"task": "hab.trivial", "expires_in": -10},
        {"chain": [["hab.trivial", []], ["hab.sleep", [0.1], "immutable"]], "timeout": 10},
        {"task": "hab.factorial", "args": [20]},
    ]);
    let started = Instant::now();
    let a = celery_client(&f.stack, calls);
    // countdown: run, but not before its eta.
    assert_eq!(a[0]["state"], "SUCCESS", "{}", a[0]);
    let events = side_channel::parse_all(&std::fs::read_to_string(&f.executions).unwrap());
    let start_of = |id: &str| {
        events
            .iter()
            .find(|e| e.kind == SideEventKind::Start && e.task_id.to_string() == id)
            .map(|e| e.unix_us)
    };
    let eta_start = start_of(a[0]["id"].as_str().unwrap()).expect("the countdown task ran");
    let sent = a[0]["sent_unix_us"].as_i64().unwrap();
    assert!(
        eta_start >= sent + 2_000_000,
        "started {} µs after sending, before its countdown of 2 s",
        eta_start - sent
    );
    // expires in the past: REVOKED, never run.
    assert_eq!(a[1]["state"], "REVOKED", "{}", a[1]);
    assert_eq!(start_of(a[1]["id"].as_str().unwrap()), None);
    // A chain: its first task refused by name (the rest never sent), not run with the
    // chain silently dropped.
    assert_refused(&a[2], "NotImplementedError", "unsupported_feature");
    assert!(
        a[2]["result"]["exc_message"]
            .as_str()
            .unwrap()
            .contains("chain"),
        "{}",
        a[2]
    );
    assert_eq!(a[3]["result"], 19);
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.kind == SideEventKind::Refused)
        .map(|e| e.detail.as_str())
        .collect();
    assert_eq!(refused, ["expired", "unsupported_feature"], "{events:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(
        f.worker.is_running(),
        "worker died:\n{}",
        f.worker.log_tail(20)
    );
    f.worker.stop(Duration::from_secs(15)).await;
    f.stack.shutdown().await;
}

/// A task during which its worker is killed twice (SIGKILL each time the side channel
/// shows it starting) is failed with `WorkerLostError` and acknowledged instead of run a
/// third time; `hab run` names the crashes and the task, and every other task is ok.
#[test]
fn a_task_that_kills_its_worker_twice_is_failed_not_run_a_third_time() {
    let tmp = tempfile::tempdir().unwrap();
    let topo = common::write_topology(tmp.path(), "one-slot", "[workers]\nconcurrency = 1\n");
    let work = common::write_workload(
        tmp.path(),
        "poison",
        r#"drain_timeout = "60s"
[[workload]]
name = "poison"
task = { kind = "sleep", seconds = 5.0 }
count = 1
arrival = "burst"

[[workload]]
name = "after"
task = { kind = "trivial" }
count = 50
arrival = "burst"
"#,
    );
    let out = tmp.path().join("out");
    let mut run = common::hab_run(&topo, &work, &out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill whichever worker starts the sleep task, twice.
    let mut killed: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while killed.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the sleep task did not start twice"
        );
        if run.try_wait().unwrap().is_some() {
            let out = run.wait_with_output().unwrap();
            panic!(
                "hab run ended early:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
        let Ok(entries) = std::fs::read_dir(&out) else {
            continue;
        };
        let Some(dir) = entries.flatten().map(|e| e.path()).find(|p| p.is_dir()) else {
            continue;
        };
        let Ok(files) = std::fs::read_dir(dir.join("executions")) else {
            continue;
        };
        for file in files.flatten() {
            let text = std::fs::read_to_string(file.path()).unwrap_or_default();
            for ev in side_channel::parse_all(&text) {
                if ev.kind == SideEventKind::Start
                    && ev.detail == "hab.sleep"
                    && !killed.contains(&ev.worker)
                {
                    let needle = file.path().display().to_string();
                    let procs = common::procs_mentioning(&needle);
                    assert_eq!(procs.len(), 1, "worker {}: {procs:?}", ev.worker);
                    nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(procs[0].0 as i32),
                        nix::sys::signal::Signal::SIGKILL,
                    )
                    .unwrap();
                    killed.push(ev.worker.clone());
                }
            }
        }
    }
    let output = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "hab run failed:\n{stderr}");
    let dir = common::single_run_dir(&out);
    let report = common::run_json(&dir);
    let w = &report["workloads"];
    assert_eq!(w[0]["count"], 1, "{w}");
    assert_eq!(w[0]["failed"], 1, "{w}");
    assert_eq!(w[0]["lost"], 0, "{w}");
    assert_eq!(w[1]["ok"], 50, "{w}");
    let workers = &report["workers"];
    assert_eq!(workers["restarts"], 2, "{workers}");
    assert_eq!(workers["refused"]["worker_lost"], 1, "{workers}");
    // Exactly two executions of the sleep task: it never ran a third time.
    let tasks = std::fs::read_to_string(dir.join("tasks.csv")).unwrap();
    let header: Vec<&str> = tasks.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let poison: Vec<&str> = tasks
        .lines()
        .find(|l| l.split(',').nth(col("workload")) == Some("poison"))
        .expect("the sleep task's row")
        .split(',')
        .collect();
    assert_eq!(poison[col("executions")], "2", "{tasks}");
    assert_eq!(poison[col("outcome")], "failed", "{tasks}");
    assert_eq!(poison[col("failure")], "refused:worker_lost", "{tasks}");
    // run.json names the crashes and the task that was running.
    let id = poison[col("task_id")];
    let crashes = workers["crashes"].as_array().unwrap();
    assert_eq!(crashes.len(), 2, "{workers}");
    for c in crashes {
        assert!(
            killed.contains(&c["worker"].as_str().unwrap().to_string()),
            "{c}"
        );
        assert_eq!(c["task_ids"], json!([id]), "{c}");
    }
    common::assert_no_procs_left(&dir.display().to_string(), Duration::from_secs(10));
}
