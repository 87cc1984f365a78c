//! Live test of `hab calibrate` on real RabbitMQ and Redis processes that hab starts
//! itself. Figures are only checked to be measured (> 0), never against wall-clock limits.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn calibrate_standalone_measures_every_figure_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let output = std::process::Command::new(hab_bin())
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
    let c: hab::calibrate::Calibration = serde_json::from_str(&text).unwrap();
    assert_eq!(c.status, hab::export::RunStatus::Complete);
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
    // Disk: whole 8 MiB files, and none left behind.
    assert_eq!(c.figures.disk_write.as_ref().unwrap().count % (8 << 20), 0);
    let scratch = dir.join("scratch");
    assert!(
        !scratch.exists() || scratch.read_dir().unwrap().count() == 0,
        "scratch files left behind"
    );
    // The servers' logs are kept, like a run's.
    assert!(dir.join("logs").read_dir().unwrap().count() >= 2);
    let left = wait_no_procs(&tmp.path().to_string_lossy(), Duration::from_secs(5));
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
