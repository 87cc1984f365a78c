//! `hab sweep` against real servers: a tiny sweep (HAProxy `fall` by seamless reload,
//! Sentinel `down-after` by `SENTINEL SET`) on one stack brought up once, every setting
//! read back between cells, and a stall between the two Sentinel thresholds that only the
//! aggressive cells take for a death; and Ctrl-C during a sweep.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{assert_no_procs_left, hab, root};
use serde_json::Value;

/// ha.toml with Sentinel `down-after` at 5 s: the conservative reference cell.
fn topology(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("topologies/ha.toml")).unwrap();
    let text = text.replacen("down_after = \"1s\"", "down_after = \"5s\"", 1);
    assert!(
        text.contains("down_after = \"5s\""),
        "ha.toml changed: {text}"
    );
    let text = text.replacen("name = \"ha\"", "name = \"hasweep\"", 1);
    let p = dir.join("hasweep.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// One cell: a short cost phase and a 3 s SIGSTOP of the Redis master — longer than an
/// aggressive Sentinel's `down-after` (500 ms: +sdown, +odown and a failover follow),
/// shorter than a conservative one's (5 s: the Sentinels never see it down).
fn workload(dir: &Path) -> PathBuf {
    let text = r#"name = "tinysweep"
warmup_tasks = 50
drain_timeout = "20s"

[[workload]]
name = "cost_trivial"
task = { kind = "trivial" }
count = 200
arrival = "burst"

[[workload]]
name = "stall"
task = { kind = "trivial" }
count = 1400
arrival = "rate"
rate_per_s = 200.0
[[workload.fault]]
target = "backend.master"
kind = "pause"
duration = "3s"
at = "1s"
"#;
    let p = dir.join("tinysweep.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn index(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("sweep-index.json")).unwrap()).unwrap()
}

fn sweep_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("sweep-index.json").exists())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn cell_run(sweep: &Path, cell: &Value) -> Value {
    let dir = sweep.join(cell["dir"].as_str().expect("the cell has a run directory"));
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

fn value_of<'a>(cell: &'a Value, key: &str) -> &'a str {
    cell["setting"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|kv| kv[0] == key)
        .and_then(|kv| kv[1].as_str())
        .unwrap()
}

#[test]
fn a_tiny_sweep_reconfigures_one_stack_and_tells_a_stall_from_a_death() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let topo = topology(tmp.path());
    let work = workload(tmp.path());
    let output = hab()
        .args(["sweep", "--topology"])
        .arg(&topo)
        .args(["--workload"])
        .arg(&work)
        .args([
            "--vary",
            "proxy.fall=2,3",
            "--vary",
            "backend.down_after=5s,500ms",
        ])
        .args(["--no-progress", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let dir = sweep_dir(&out);
    let ix = index(&dir);
    assert_eq!(ix["status"], "complete", "{ix:#}");
    // Four cells (the 2 × 2 grid), one bring-up for all of them.
    let cells = ix["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4, "{ix:#}");
    assert_eq!(ix["bring_ups"].as_array().unwrap().len(), 1, "{ix:#}");
    for (i, c) in cells.iter().enumerate() {
        assert_eq!(c["status"], "measured", "{c:#}");
        assert_eq!(c["setting"]["brought_up"], i == 0, "{c:#}");
        // Every setting was read back from the live stack and is what the cell asked for.
        let rb = c["setting"]["read_back"].as_array().unwrap();
        assert!(rb.iter().all(|r| r["matches"] == true), "{c:#}");
        // HAProxy's fall from `show stat`, down-after from each of the 3 Sentinels.
        let fall: Vec<&Value> = rb.iter().filter(|r| r["key"] == "proxy.fall").collect();
        assert_eq!(fall.len(), 1, "{c:#}");
        assert_eq!(fall[0]["found"], value_of(c, "proxy.fall"), "{c:#}");
        let down: Vec<&Value> = rb
            .iter()
            .filter(|r| r["key"] == "backend.down_after")
            .collect();
        assert_eq!(down.len(), 3, "{c:#}");
        let ms = if value_of(c, "backend.down_after") == "500ms" {
            "500"
        } else {
            "5000"
        };
        for d in down {
            assert_eq!(d["found"], format!("down-after-milliseconds {ms}"), "{c:#}");
        }
        // run.json says how its cell was configured.
        let run = cell_run(&dir, c);
        assert_eq!(run["sweep_cell"], c["setting"], "{c:#}");
    }
    // A change of fall went through a reload: a new HAProxy process answers, and the
    // Sentinel knob went through SENTINEL SET without one.
    let pid = |c: &Value| -> String {
        let src = c["setting"]["read_back"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["key"] == "proxy.fall")
            .unwrap()["source"]
            .as_str()
            .unwrap()
            .to_string();
        src.rsplit("pid ")
            .next()
            .unwrap()
            .trim_end_matches(')')
            .to_string()
    };
    for w in cells.windows(2) {
        let applied = w[1]["setting"]["applied"].as_array().unwrap();
        let reloaded = applied.iter().any(|a| a["how"] == "proxy_reload");
        let fall_changed = value_of(&w[0], "proxy.fall") != value_of(&w[1], "proxy.fall");
        assert_eq!(reloaded, fall_changed, "{:#}", w[1]);
        assert_eq!(
            pid(&w[0]) != pid(&w[1]),
            fall_changed,
            "{:#} {:#}",
            w[0],
            w[1]
        );
        let sentinel_set = applied.iter().any(|a| a["how"] == "sentinel_set");
        assert_eq!(
            sentinel_set,
            value_of(&w[0], "backend.down_after") != value_of(&w[1], "backend.down_after"),
            "{:#}",
            w[1]
        );
    }
    // The 3 s stall: a failover for nothing with down-after 500 ms, none with 5 s.
    for c in cells {
        let run = cell_run(&dir, c);
        let stall: Vec<&Value> = run["failover"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["workload"] == "stall")
            .collect();
        assert_eq!(stall.len(), 1, "{run:#}");
        let switched = !stall[0]["sentinel_switch_ms"].is_null();
        let aggressive = value_of(c, "backend.down_after") == "500ms";
        assert_eq!(switched, aggressive, "{:#} {:#}", c["setting"], stall[0]);
        if !aggressive {
            assert!(stall[0]["sentinel_sdown_ms"].is_null(), "{:#}", stall[0]);
        }
    }
    // The baseline's cost phase ran at the start and at the end.
    let baselines = ix["baseline_runs"].as_array().unwrap();
    assert_eq!(baselines.len(), 2);
    assert!(
        baselines.iter().all(|b| b["status"] == "measured"),
        "{ix:#}"
    );
    // The analysis counts the aggressive cells' failovers, and only theirs.
    let analysis: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sweep.json")).unwrap()).unwrap();
    for c in analysis["cells"].as_array().unwrap() {
        let aggressive = c["values"][1] == "500ms";
        assert_eq!(
            c["stall"]["false_failovers"],
            u64::from(aggressive),
            "{:#}",
            c["stall"]
        );
    }
    for f in [
        "sweep.csv",
        "report.md",
        "report.html",
        "charts/sweep-pareto.svg",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    // recommended.toml is a topology hab accepts.
    let check = hab()
        .args(["check", "--topology"])
        .arg(dir.join("recommended.toml"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_no_procs_left(&tmp.path().to_string_lossy(), Duration::from_secs(5));
}

#[test]
fn sigint_during_a_sweep_leaves_no_server_and_keeps_what_it_measured() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let topo = topology(tmp.path());
    let work = workload(tmp.path());
    let mut child = hab()
        .args(["sweep", "--topology"])
        .arg(&topo)
        .args(["--workload"])
        .arg(&work)
        .args([
            "--vary",
            "backend.down_after=5s,500ms",
            "--no-progress",
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until cell 0's run is under way, then Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(180);
    let dir = loop {
        let found = std::fs::read_dir(&out).ok().and_then(|d| {
            d.flatten()
                .map(|e| e.path())
                .find(|p| p.join("cells/00").is_dir() && has_run(&p.join("cells/00")))
        });
        if let Some(d) = found {
            break d;
        }
        assert!(Instant::now() < deadline, "cell 0 never started");
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hab sweep did not exit within 90 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let ix = index(&dir);
    assert_eq!(ix["status"], "interrupted", "{ix:#}");
    let cells = ix["cells"].as_array().unwrap();
    assert_eq!(cells[0]["status"], "interrupted", "{ix:#}");
    assert!(
        cells[1..].iter().all(|c| c["status"] == "planned"),
        "{ix:#}"
    );
    // Cell 0's run directory keeps what it measured.
    let run = cell_run(&dir, &cells[0]);
    assert_eq!(run["status"], "interrupted", "{run:#}");
    assert_eq!(ix["baseline_runs"][0]["status"], "measured", "{ix:#}");
    assert_eq!(ix["baseline_runs"][1]["status"], "planned", "{ix:#}");
    // What was measured is rendered, with the cells not measured said.
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("interrupted"), "{md}");
    assert_no_procs_left(&tmp.path().to_string_lossy(), Duration::from_secs(5));
}

fn has_run(cell: &Path) -> bool {
    std::fs::read_dir(cell)
        .map(|d| d.flatten().any(|e| e.path().join("run.json").exists()))
        .unwrap_or(false)
}
