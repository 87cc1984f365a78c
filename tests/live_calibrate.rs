//! Live test of `hab calibrate` on real RabbitMQ and Redis processes that hab starts
//! itself. Figures are only checked to be measured (> 0) and the broker round trip to be
//! the best of what was tried, never against wall-clock limits.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn calibrate_standalone_measures_every_figure_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let output = common::hab()
        .current_dir(root())
        .args([
            "calibrate",
            "--topology",
            "topologies/standalone.toml",
            "--duration",
            "1s",
            "--disk-bytes",
            "8388608",
            "--json",
            "--out",
        ])
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "hab calibrate failed:\n{stderr}\n{stdout}"
    );
    let printed: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}"));
    // The table goes to stderr with --json.
    assert!(stderr.contains("broker round trip"), "{stderr}");

    let dir = single_run_dir(&out);
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.ends_with("-standalone-calibrate"), "{name}");
    let text = std::fs::read_to_string(dir.join("calibrate.json")).unwrap();
    let written: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(printed, written);
    let c: hab::record::Calibration = serde_json::from_str(&text).unwrap();
    assert_eq!(c.status, hab::record::RunStatus::Complete);
    assert_eq!(c.name, "standalone");
    assert_eq!(c.path, "direct");
    assert_eq!(c.disk_bytes, 8 << 20);
    assert!(c.versions.contains_key("rabbitmq"), "{:?}", c.versions);
    assert!(c.versions.contains_key("redis"), "{:?}", c.versions);
    assert_eq!(c.topology["broker"]["queue"], "classic");
    assert!(c.machine.cores > 0);
    let keys = [
        "broker_round_trip",
        "broker_publish",
        "end_to_end",
        "redis_result_store",
        "redis_setex_publish",
        "disk_write",
        "cpu_factorial",
    ];
    let figures: Vec<_> = c.figures.iter().collect();
    assert_eq!(
        figures.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        keys,
        "{text}"
    );
    for (key, f) in figures {
        assert!(f.value > 0.0, "{key}: {f:?}");
        assert!(f.count > 0, "{key}: {f:?}");
        assert!(f.duration_s > 0.0, "{key}: {f:?}");
        assert!(!f.unit.is_empty(), "{key}: {f:?}");
        assert_eq!(f.errors, 0, "{key}: {f:?}");
    }
    // The broker round trip: every strategy tried, each in every round, and the figure
    // is the best window of them all.
    assert_every_strategy_tried_and_the_best_kept(&c);
    for s in &hab::cmd::calibrate::round_trip::STRATEGIES {
        assert!(stderr.contains(s.name), "{}: {stderr}", s.name);
    }
    // The end-to-end ceiling: every strategy ran in every round in consumer processes of
    // its own (their logs kept), and the figure is what the best one sustains.
    use hab::cmd::calibrate::end_to_end;
    let e2e = c
        .figures
        .end_to_end
        .as_ref()
        .expect("the end-to-end ceiling");
    assert_eq!(c.end_to_end_strategies.len(), end_to_end::STRATEGIES.len());
    for s in &c.end_to_end_strategies {
        assert_eq!(s.error, None, "{s:?}");
        assert_eq!(s.windows.len(), end_to_end::ROUNDS as usize, "{s:?}");
        assert!(s.windows.iter().all(|w| w.acked > 0), "{s:?}");
    }
    // The ceiling is what the best strategy sustains over its windows, never above any
    // strategy's best single window.
    let best = c
        .end_to_end_strategies
        .iter()
        .map(|s| s.sustained_per_s)
        .fold(0.0, f64::max);
    assert!((e2e.value - best).abs() <= 1e-6 * best, "{e2e:?}");
    for s in &c.end_to_end_strategies {
        assert!(
            s.sustained_per_s > 0.0 && s.sustained_per_s <= s.msg_per_s * (1.0 + 1e-9),
            "{s:?}"
        );
    }
    assert!(
        dir.join("logs").read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("ceiling-consumer-")),
        "the ceiling consumers' logs are kept"
    );
    // Disk: whole 8 MiB files, and none left behind.
    assert_eq!(c.figures.disk_write.as_ref().unwrap().count % (8 << 20), 0);
    let scratch = dir.join("scratch");
    assert!(
        !scratch.exists() || scratch.read_dir().unwrap().count() == 0,
        "scratch files left behind"
    );
    // The servers' logs are kept, like a run's.
    assert!(dir.join("logs").read_dir().unwrap().count() >= 2);
    assert_no_procs_left(&tmp.path().to_string_lossy(), Duration::from_secs(5));
}

/// calibrate.json lists every strategy of `STRATEGIES` with a window from each round and
/// no error, exactly one is chosen, and the broker round trip is its best window — the
/// highest of every window of every strategy.
fn assert_every_strategy_tried_and_the_best_kept(c: &hab::record::Calibration) {
    // The same figure, up to the last bits a JSON round trip may change.
    let same = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(b.abs());
    use hab::cmd::calibrate::round_trip::{BrokerWindow, ROUNDS, STRATEGIES};
    let tried: Vec<&str> = c
        .broker_strategies
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    let planned: Vec<&str> = STRATEGIES.iter().map(|s| s.name).collect();
    assert_eq!(tried, planned, "{:#?}", c.broker_strategies);
    assert!(c.broker_window_s > 0.0 && c.broker_warmup_s > 0.0, "{c:?}");
    for s in &c.broker_strategies {
        assert_eq!(s.error, None, "{}", s.name);
        // A strategy far behind the leader after the first round says so and stops there.
        match &s.dropped {
            Some(why) => {
                assert_eq!(s.windows.len(), 1, "{s:?}");
                assert!(why.contains("not run after the first round"), "{s:?}");
            }
            None => assert_eq!(s.windows.len(), ROUNDS as usize, "{s:?}"),
        }
        assert!(!s.how.is_empty(), "{s:?}");
        for w in &s.windows {
            assert!(w.secs > 0.0, "{s:?}");
            assert_eq!(w.nacked, 0, "{s:?}");
        }
        // Something went through (not in every short window: on a loaded machine the
        // broker can stall for one, and RabbitMQ sends confirms in bursts).
        assert!(s.windows.iter().any(|w| w.acked > 0), "{s:?}");
        assert!(s.windows.iter().any(|w| w.confirmed > 0), "{s:?}");
        let best = s
            .windows
            .iter()
            .map(BrokerWindow::round_trip)
            .fold(0.0, f64::max);
        assert!(same(s.msg_per_s, best), "{s:?}");
    }
    let chosen: Vec<_> = c.broker_strategies.iter().filter(|s| s.chosen).collect();
    assert_eq!(chosen.len(), 1, "{:#?}", c.broker_strategies);
    let best = c
        .broker_strategies
        .iter()
        .map(|s| s.msg_per_s)
        .fold(0.0, f64::max);
    assert!(
        same(chosen[0].msg_per_s, best),
        "{:#?}",
        c.broker_strategies
    );
    let rt = c.figures.broker_round_trip.as_ref().expect("round trip");
    assert!(same(rt.value, best), "{rt:?}");
    assert!(rt.how.contains(&chosen[0].name), "{}", rt.how);
    // The publish figure is the best window for confirmations, whichever strategy.
    let publish = c.figures.broker_publish.as_ref().expect("publish");
    let best_publish = c
        .broker_strategies
        .iter()
        .flat_map(|s| s.windows.iter().map(BrokerWindow::publish))
        .fold(0.0, f64::max);
    assert!(same(publish.value, best_publish), "{publish:?}");
}

#[test]
fn sigint_keeps_what_was_measured_and_stops_every_server() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let mut child = common::hab()
        .current_dir(root())
        .args([
            "calibrate",
            "--topology",
            "topologies/standalone.toml",
            "--duration",
            "2s",
            "--disk-bytes",
            "8388608",
            "--out",
        ])
        .arg(&out)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the broker figures are written, then interrupt (during the Redis ones).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let dir = loop {
        let found = std::fs::read_dir(&out).ok().and_then(|mut es| {
            let dir = es.next()?.ok()?.path();
            let text = std::fs::read_to_string(dir.join("calibrate.json")).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            v["figures"]["broker_round_trip"].is_object().then_some(dir)
        });
        if let Some(d) = found {
            break d;
        }
        if let Some(s) = child.try_wait().unwrap() {
            panic!("hab calibrate ended early: {s}");
        }
        assert!(std::time::Instant::now() < deadline, "no broker figure");
        std::thread::sleep(Duration::from_millis(50));
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let c: hab::record::Calibration =
        serde_json::from_str(&std::fs::read_to_string(dir.join("calibrate.json")).unwrap())
            .unwrap();
    assert_eq!(c.status, hab::record::RunStatus::Interrupted);
    assert!(c.figures.broker_round_trip.is_some());
    assert!(c.figures.cpu_factorial.is_none());
    assert!(c.finished_unix_ms.is_some());
    assert_no_procs_left(&tmp.path().to_string_lossy(), Duration::from_secs(5));
}

#[test]
fn run_with_calibrate_keeps_the_raw_limits_and_the_report_sets_the_task_path_against_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let output = hab_run(
        &root().join("topologies/standalone.toml"),
        &root().join("workloads/smoke.toml"),
        &out,
    )
    // Broker windows of 200 ms (a third of it per strategy run).
    .args(["--calibrate", "600ms"])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "hab run failed:\n{stderr}");
    let dir = single_run_dir(&out);
    let report: hab::record::RunReport =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let c = report
        .calibration
        .as_ref()
        .expect("calibration in run.json");
    assert_eq!(c.status, hab::record::RunStatus::Complete);
    assert_eq!(c.window_s, 0.6);
    assert_eq!(c.broker_window_s, 0.2);
    for (key, f) in c.figures.iter() {
        assert!(f.value > 0.0, "{key}: {f:?}");
    }
    // run.json records every broker strategy tried and which one won.
    assert_every_strategy_tried_and_the_best_kept(c);
    assert!(dir.join("calibrate.json").is_file());
    // The calibration's own messages and result keys are gone before the workloads: no
    // result of an unknown task, the queue empty, one key per task of the run.
    assert_eq!(report.unknown_results, 0);
    let fs = report.final_state.expect("final state");
    assert_eq!(fs.queue_ready, 0);
    let written: u64 = report
        .workloads
        .iter()
        .map(|w| w.counts.ok + w.counts.failed)
        .sum::<u64>()
        + 20; // smoke's warm-up
    assert_eq!(fs.result_keys, written);
    for w in &report.workloads {
        assert_eq!(w.counts.ok, w.counts.count, "{}", w.name);
    }
    // The report renders the raw limits from run.json alone.
    let rendered = common::hab()
        .current_dir(root())
        .arg("report")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("Against the raw limits"), "{md}");
    // The trivial burst is set against the end-to-end ceiling measured on the same stack.
    assert!(
        md.contains("end-to-end ceiling (the whole task path"),
        "{md}"
    );
    assert_no_procs_left(&tmp.path().to_string_lossy(), Duration::from_secs(5));
}
