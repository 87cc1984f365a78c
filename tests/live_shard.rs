//! Live tests of split load: two generator shards (`hab run --shard 1/2` and `2/2`, each
//! with its own local stack, at the same time), merged with `hab merge`: the merged run
//! holds exactly the union of the shards' tasks, histograms equal to the union of the
//! shards', the failover row of the fault shard 1 applied, and `hab report` renders it.
//! And two shards on one shared stack (`hab up`), started by the very script of the
//! Kubernetes Job in deploy/kubernetes/ with one `--start-at`: the merge reports the
//! residual start skew of every workload, far below that of shards started apart.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use hab::metrics::LatencyHistogram;

const BURST: u64 = 101;
const RATE: u64 = 301;

fn workload(dir: &Path) -> PathBuf {
    // Odd counts: the shards get 51/50 and 151/150 tasks.
    write_workload(
        dir,
        "shards",
        &format!(
            r#"warmup_tasks = 10
drain_timeout = "30s"
[[workload]]
name = "burst"
task = {{ kind = "trivial" }}
count = {BURST}
arrival = "burst"

[[workload]]
name = "broker_kill"
task = {{ kind = "trivial" }}
count = {RATE}
arrival = "rate"
rate_per_s = 100.0
[[workload.fault]]
target = "broker.primary"
kind = "kill"
at = "1s"
restart_after = "1s"
"#
        ),
    )
}

/// The `results: DIR` line of a hab command's stdout.
fn results_dir(out: &std::process::Output) -> PathBuf {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .unwrap_or_else(|| {
            panic!(
                "no results line:\n{stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    PathBuf::from(line.trim())
}

fn task_ids(dir: &Path) -> Vec<String> {
    csv_rows(&dir.join("tasks.csv"))
        .into_iter()
        .map(|r| r["task_id"].clone())
        .collect()
}

fn histogram(run: &serde_json::Value, workload: &str, stage: &str) -> LatencyHistogram {
    let w = run["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == workload)
        .unwrap_or_else(|| panic!("no workload {workload}"));
    LatencyHistogram::from_base64(w["histograms"][stage].as_str().unwrap()).unwrap()
}

fn hab(args: &[&std::ffi::OsStr]) -> std::process::Output {
    common::hab()
        .current_dir(root())
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn two_shards_merge_into_the_union_of_their_tasks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let topo = write_topology(tmp.path(), "local", "[workers]\nconcurrency = 2\n");
    let work = workload(tmp.path());

    // Both shards at once, each with its own stack.
    let shards: Vec<std::process::Child> = ["1/2", "2/2"]
        .iter()
        .map(|s| {
            hab_run(&topo, &work, &out)
                .args(["--shard", s])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<std::process::Output> = shards
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert!(
            o.status.success(),
            "shard failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let dirs: Vec<PathBuf> = outputs.iter().map(results_dir).collect();
    assert!(
        dirs[0].to_string_lossy().ends_with("-shard1of2"),
        "{dirs:?}"
    );
    assert!(
        dirs[1].to_string_lossy().ends_with("-shard2of2"),
        "{dirs:?}"
    );
    let runs: Vec<serde_json::Value> = dirs.iter().map(|d| run_json(d)).collect();

    // The split: 51 + 50 and 151 + 150, ids naming their shard.
    let counts = |run: &serde_json::Value| -> Vec<u64> {
        run["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["count"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(counts(&runs[0]), vec![51, 151]);
    assert_eq!(counts(&runs[1]), vec![50, 150]);
    for (k, d) in dirs.iter().enumerate() {
        let prefix = format!("000{}0002-", k + 1);
        for id in task_ids(d) {
            assert!(id.starts_with(&prefix), "{id} in shard {}", k + 1);
        }
    }
    // Shard 1 applied the fault, shard 2 only drove load and says whose the faults are.
    assert_eq!(runs[0]["shard"]["faults"].as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["failover"].as_array().unwrap().len(), 1);
    assert_eq!(runs[1]["shard"]["faults"].as_array().unwrap().len(), 0);
    assert_eq!(runs[1]["shard"]["faults_by"], 1);
    assert_eq!(runs[1]["failover"].as_array().unwrap().len(), 0);

    // Merge (arguments in either order).
    let merged_out = tmp.path().join("merged");
    let m = hab(&[
        "merge".as_ref(),
        dirs[1].as_os_str(),
        dirs[0].as_os_str(),
        "--out".as_ref(),
        merged_out.as_os_str(),
    ]);
    assert!(
        m.status.success(),
        "merge failed:\n{}",
        String::from_utf8_lossy(&m.stderr)
    );
    let merged = results_dir(&m);
    let mrun = run_json(&merged);
    assert_eq!(mrun["merged"]["count"], 2);
    assert_eq!(counts(&mrun), vec![BURST, RATE]);

    // Exactly the union of the shards' tasks.
    let union: BTreeSet<String> = dirs.iter().flat_map(|d| task_ids(d)).collect();
    let merged_ids = task_ids(&merged);
    assert_eq!(merged_ids.len() as u64, BURST + RATE);
    assert_eq!(union.len() as u64, BURST + RATE);
    assert_eq!(merged_ids.into_iter().collect::<BTreeSet<_>>(), union);

    // Histograms: the merged one equals the union of the shards' histograms.
    for w in ["burst", "broker_kill"] {
        for stage in ["latency", "queue_wait", "service", "publish"] {
            let mut union = LatencyHistogram::new();
            for r in &runs {
                union.merge(&histogram(r, w, stage));
            }
            let got = histogram(&mrun, w, stage);
            assert_eq!(got.len(), union.len(), "{w} {stage}");
            assert_eq!(got.stats(), union.stats(), "{w} {stage}");
            for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
                assert_eq!(
                    got.quantile_us(q),
                    union.quantile_us(q),
                    "{w} {stage} q={q}"
                );
            }
        }
    }
    let ok: u64 = mrun["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["ok"].as_u64().unwrap())
        .sum();
    let shard_ok: u64 = runs
        .iter()
        .flat_map(|r| r["workloads"].as_array().unwrap())
        .map(|w| w["ok"].as_u64().unwrap())
        .sum();
    assert_eq!(ok, shard_ok);

    // The failover row survives: shard 1's fault, analysed again on shard 1's tasks
    // (each shard had its own stack), so the same figures as shard 1's own row.
    let rows = csv_rows(&merged.join("failover.csv"));
    let shard_rows = csv_rows(&dirs[0].join("failover.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows, shard_rows);
    assert_eq!(rows[0]["target"], "broker.primary");
    assert!(
        !rows[0]["switch_time_ms"].is_empty(),
        "no task completed after the fault: {rows:?}"
    );

    // Timeline: per second, completions add up to the shards'.
    let completions = |d: &Path| -> u64 {
        csv_rows(&d.join("timeline.csv"))
            .iter()
            .map(|r| r["ok"].parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(
        completions(&merged),
        completions(&dirs[0]) + completions(&dirs[1])
    );

    // The layout of a run directory, and a report that says how latency was measured.
    for f in [
        "run.json",
        "summary.csv",
        "tasks.csv",
        "timeline.csv",
        "failover.csv",
        "events.csv",
        "local.hlog",
        "local-burst.hgrm",
        "report.md",
        "report.html",
    ] {
        assert!(merged.join(f).is_file(), "{f} missing in {merged:?}");
    }
    let r = hab(&["report".as_ref(), merged.as_os_str()]);
    assert!(
        r.status.success(),
        "report failed:\n{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let md = std::fs::read_to_string(merged.join("report.md")).unwrap();
    assert!(
        md.contains("Latency is measured on one host per task"),
        "{md}"
    );
    assert!(md.contains("hosts' clocks"), "{md}");

    // One unsharded run of the same workload: not equal in latency (other stacks, other
    // moment), but the same workloads and counts as the merged run.
    let whole_out = tmp.path().join("whole");
    let whole = hab_run(&topo, &work, &whole_out).output().unwrap();
    assert!(
        whole.status.success(),
        "unsharded run failed:\n{}",
        String::from_utf8_lossy(&whole.stderr)
    );
    let wrun = run_json(&results_dir(&whole));
    assert!(wrun.get("shard").is_none(), "an unsharded run has no shard");
    assert_eq!(counts(&wrun), counts(&mrun));
    // Its ids are random version 4 UUIDs naming no shard.
    for id in task_ids(&results_dir(&whole)) {
        assert_eq!(id.as_bytes()[14], b'4', "{id}");
    }

    // Refusals: a missing shard, a shard given twice, a run that is not a shard.
    let lone = hab(&["merge".as_ref(), dirs[0].as_os_str()]);
    assert_eq!(lone.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&lone.stderr).contains("shards [2] of 2 are missing"),
        "{}",
        String::from_utf8_lossy(&lone.stderr)
    );
    let twice = hab(&["merge".as_ref(), dirs[0].as_os_str(), dirs[0].as_os_str()]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("given twice"));
    let not_shard = hab(&["merge".as_ref(), dirs[0].as_os_str(), merged.as_os_str()]);
    assert_eq!(not_shard.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&not_shard.stderr).contains("has no `shard`"));

    assert_no_procs_left(&tmp.path().to_string_lossy(), Duration::from_secs(5));
}

/// Tears a `hab up` stack down even when an assertion fails half-way.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = hab(&["down".as_ref(), "--dir".as_ref(), self.0.as_os_str()]);
    }
}

/// The residual start skew per workload `hab merge` wrote (run.json `merged.start_skew`).
fn start_skew_ms(merged: &Path) -> Vec<(String, f64, String)> {
    run_json(merged)["merged"]["start_skew"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["workload"].as_str().unwrap().to_string(),
                s["skew_ms"].as_f64().unwrap(),
                s["sync"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Merge the shard directories, checking it succeeded; returns the merged directory and
/// stdout.
fn merge_into(dirs: &[PathBuf], out: &Path) -> (PathBuf, String) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["merge".as_ref()];
    args.extend(dirs.iter().map(|d| d.as_os_str()));
    args.extend(["--out".as_ref(), out.as_os_str()]);
    let m = hab(&args);
    assert!(
        m.status.success(),
        "merge failed:\n{}",
        String::from_utf8_lossy(&m.stderr)
    );
    (
        results_dir(&m),
        String::from_utf8_lossy(&m.stdout).into_owned(),
    )
}

fn wait_all(children: Vec<std::process::Child>) -> Vec<std::process::Output> {
    let outputs: Vec<std::process::Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for o in &outputs {
        assert!(
            o.status.success(),
            "shard failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    outputs
}

/// How far apart the two shards of each pair are launched: what the shards without
/// `--start-at` carry into every workload, and what `--start-at` must absorb.
const LAUNCH_APART: Duration = Duration::from_secs(2);

#[test]
fn shards_of_the_job_manifest_start_together_on_one_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let stack = tmp.path().join("stack");
    let up = hab(&[
        "up".as_ref(),
        "--topology".as_ref(),
        "standalone".as_ref(),
        "--dir".as_ref(),
        stack.as_os_str(),
    ]);
    let _down = Down(stack.clone());
    assert!(
        up.status.success(),
        "hab up failed:\n{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let topology = stack.join("external.toml");
    let work = write_workload(
        tmp.path(),
        "together",
        r#"warmup_tasks = 10
drain_timeout = "30s"
[[workload]]
name = "burst"
task = { kind = "trivial" }
count = 60
arrival = "burst"

[[workload]]
name = "sleep"
task = { kind = "sleep", seconds = 0.3 }
count = 3
arrival = "burst"

[[workload]]
name = "rate"
task = { kind = "trivial" }
count = 60
arrival = "rate"
rate_per_s = 200.0
"#,
    );
    let names = ["burst", "sleep", "rate"];

    // Without --start-at, launched LAUNCH_APART apart: every workload starts about that
    // far apart on the two shards.
    let apart_out = tmp.path().join("apart");
    let mut children = Vec::new();
    for s in ["1/2", "2/2"] {
        if !children.is_empty() {
            std::thread::sleep(LAUNCH_APART);
        }
        children.push(
            hab_run(&topology, &work, &apart_out)
                .args(["--shard", s])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let dirs: Vec<PathBuf> = wait_all(children).iter().map(results_dir).collect();
    let (merged, _) = merge_into(&dirs, &tmp.path().join("apart-merged"));
    let apart = start_skew_ms(&merged);
    assert_eq!(
        apart.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        names,
        "{apart:?}"
    );
    for (w, skew, sync) in &apart {
        assert_eq!(sync, "none", "{w}");
        // Launched 2 s apart; bring-up and drains differ a little between the shards.
        assert!(
            *skew > 1_000.0,
            "{w}: {skew} ms without --start-at: {apart:?}"
        );
    }

    // The Job's own script (deploy/kubernetes/job-shards.yaml) with its environment, the
    // pod index and the instant set as Kubernetes and the README would, launched as far
    // apart: the first workload waits for the instant, the others meet at the barrier on
    // the stack's Redis.
    let start_at = chrono::Utc::now() + chrono::Duration::seconds(15);
    let start_at = start_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let results = tmp.path().join("volume");
    let mut children = Vec::new();
    for index in ["0", "1"] {
        if !children.is_empty() {
            std::thread::sleep(LAUNCH_APART);
        }
        let overrides = [
            ("JOB_COMPLETION_INDEX", index),
            ("START_AT", start_at.as_str()),
            ("TOPOLOGY", topology.to_str().unwrap()),
            ("WORKLOAD", work.to_str().unwrap()),
            ("RESULTS", results.to_str().unwrap()),
        ];
        children.push(
            common::kube::job_command("job-shards.yaml", &overrides, &root())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let outputs = wait_all(children);
    let dirs: Vec<PathBuf> = outputs.iter().map(results_dir).collect();
    for (k, d) in dirs.iter().enumerate() {
        let run = run_json(d);
        assert_eq!(run["shard"]["index"], k as u64 + 1, "{d:?}");
        let starts = run["shard"]["starts"].as_array().unwrap();
        assert_eq!(starts.len(), names.len(), "{starts:?}");
        assert_eq!(starts[0]["sync"], "start_at", "{starts:?}");
        for s in &starts[1..] {
            assert_eq!(s["sync"], "barrier", "{s}");
            assert_eq!(s["outcome"], "met", "{s}");
            assert_eq!(s["arrived"], 2, "{s}");
        }
        assert_eq!(
            starts[0]["outcome"],
            "met",
            "shard {} was late: {starts:?}",
            k + 1
        );
    }
    // The merge Job's script, on the same volume.
    let m = common::kube::job_command(
        "job-merge.yaml",
        &[("RESULTS", results.to_str().unwrap())],
        &root(),
    )
    .output()
    .unwrap();
    assert!(
        m.status.success(),
        "the merge Job's script failed:\n{}",
        String::from_utf8_lossy(&m.stderr)
    );
    let merged = results_dir(&m);
    let stdout = String::from_utf8_lossy(&m.stdout);
    assert!(stdout.contains("start skew"), "{stdout}");
    let together = start_skew_ms(&merged);
    eprintln!("start skew without --start-at: {apart:?}\nwith --start-at: {together:?}");
    assert_eq!(
        together.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        names,
        "{together:?}"
    );
    // One host, one clock: the skew is the wake-up jitter of two processes (a few ms
    // here). The bound is generous (a loaded 2-core machine can stall a process for
    // hundreds of ms); against the ~2 s of the shards started apart it is the point.
    for (k, (w, skew, sync)) in together.iter().enumerate() {
        assert_eq!(sync, if k == 0 { "start_at" } else { "barrier" }, "{w}");
        assert!(
            *skew < 1_000.0,
            "{w}: {skew} ms with --start-at: {together:?}"
        );
        assert!(
            *skew < apart[k].1 / 2.0,
            "{w}: {together:?} against {apart:?}"
        );
    }
    let md = std::fs::read_to_string(merged.join("report.md")).unwrap();
    assert!(md.contains("Residual start skew per workload"), "{md}");

    // One shard of two alone, told an instant already past and a short barrier timeout:
    // it starts at once (late, recorded), waits out each barrier (timed out, recorded),
    // and the run completes.
    let past = (chrono::Utc::now() - chrono::Duration::seconds(5))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let alone = hab_run(&topology, &work, &tmp.path().join("alone"))
        .args([
            "--shard",
            "1/2",
            "--start-at",
            &past,
            "--barrier-timeout",
            "1s",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&alone.stderr);
    assert!(alone.status.success(), "{stderr}");
    assert!(stderr.contains("ms late"), "{stderr}");
    assert!(
        stderr.contains("only 1 of 2 shards reached the barrier before workload sleep"),
        "{stderr}"
    );
    let run = run_json(&results_dir(&alone));
    let starts = run["shard"]["starts"].as_array().unwrap();
    assert_eq!(starts[0]["outcome"], "late", "{starts:?}");
    assert!(
        starts[0]["late_ms"].as_f64().unwrap() >= 5_000.0,
        "{starts:?}"
    );
    for s in &starts[1..] {
        assert_eq!(s["outcome"], "timed_out", "{s}");
        assert_eq!(s["arrived"], 1, "{s}");
        let waited = s["waited_ms"].as_f64().unwrap();
        assert!((1_000.0..10_000.0).contains(&waited), "{s}");
    }
    assert_eq!(run["status"], "complete");
}
