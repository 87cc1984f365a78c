//! Helpers shared by the CLI and live tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of the built `hab` binary.
pub fn hab_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hab"))
}

/// Write a topology file into `dir` and return its path.
pub fn write_topology(dir: &Path, name: &str, workers_section: &str) -> PathBuf {
    let text = format!(
        r#"name = "{name}"
[broker]
nodes = 1
queue = "classic"
confirms = true
heartbeat = "10s"
startup_timeout = "90s"
[backend]
replicas = 0
startup_timeout = "30s"
{workers_section}
"#
    );
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// Write a workload file into `dir` and return its path.
pub fn write_workload(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, format!("name = \"{name}\"\n{body}")).unwrap();
    p
}

/// Pids of live processes whose command line or environment mentions `needle`.
pub fn procs_mentioning(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let read = |f: &str| std::fs::read(entry.path().join(f)).unwrap_or_default();
        // Zombies have an empty cmdline and are already dead.
        let stat = String::from_utf8_lossy(&read("stat")).to_string();
        if stat.split_whitespace().nth(2) == Some("Z") {
            continue;
        }
        let cmdline = read("cmdline");
        let environ = read("environ");
        let hay = [cmdline.as_slice(), environ.as_slice()].concat();
        if String::from_utf8_lossy(&hay).contains(needle) {
            let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, cmd));
        }
    }
    found
}

/// Wait until no process mentions `needle` (bounded), returning the ones left.
pub fn wait_no_procs(needle: &str, within: Duration) -> Vec<(u32, String)> {
    let deadline = Instant::now() + within;
    loop {
        let left = procs_mentioning(needle);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The only run directory created inside `out`.
pub fn single_run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(
        dirs.len(),
        1,
        "expected one run directory in {out:?}: {dirs:?}"
    );
    dirs[0].clone()
}

/// Parsed run.json of a run directory.
pub fn run_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("run.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}
