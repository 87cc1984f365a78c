//! Helpers shared by the CLI and live tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

pub mod kube;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The environment variable that lets a live test skip instead of failing when this
/// machine cannot run it: a comma-separated list of what may be missing (`netns`). CI
/// never sets it, so nothing is skipped silently there.
pub const ALLOW_SKIP: &str = "HAB_ALLOW_SKIP";

/// Whether `test` must be skipped because `what` is unavailable here (`unavailable` says
/// why). Panics with the reason — a failure — unless [`ALLOW_SKIP`] names `what`; then it
/// prints the reason and returns true.
pub fn skip_unless_allowed(what: &str, test: &str, unavailable: Option<String>) -> bool {
    let Some(why) = unavailable else {
        return false;
    };
    let allowed = std::env::var(ALLOW_SKIP).unwrap_or_default();
    if allowed.split(',').any(|a| a.trim() == what) {
        eprintln!("{test}: skipped ({ALLOW_SKIP} names {what}): {why}");
        return true;
    }
    panic!(
        "{test} cannot run here: {why}. Fix that, or set {ALLOW_SKIP}={what} to skip it instead (CI never does)"
    );
}

/// Path of the built `hab` binary.
pub fn hab_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hab"))
}

/// `hab` from the repository root with stdin closed: the one way tests start hab (add the
/// subcommand and its arguments).
pub fn hab() -> std::process::Command {
    let mut c = std::process::Command::new(hab_bin());
    c.current_dir(root()).stdin(std::process::Stdio::null());
    c
}

/// The logs directory of a stack started by a test, inside `tmp`.
pub fn stack_dirs(tmp: &tempfile::TempDir) -> hab::stack::StackDirs {
    hab::stack::StackDirs::create(tmp.path().join("run").join("logs")).unwrap()
}

/// Every pid of a stack worth checking after teardown, with a label: each server, its
/// process group and the group's members, the broker's Erlang VM and its shell wrapper,
/// and epmd: the one way tests list a stack's processes.
pub fn stack_pids(stack: &hab::stack::Stack) -> Vec<(String, i32)> {
    use hab::stack::NodeRef;
    let mut pids = vec![("epmd".to_string(), stack.broker().epmd().pid().as_raw())];
    let mut nodes = Vec::new();
    for (i, node) in stack.broker().nodes().iter().enumerate() {
        nodes.push(NodeRef::Broker(i));
        pids.push((format!("broker {i} beam.smp"), node.beam_pid().as_raw()));
        pids.push((
            format!("broker {i} sh wrapper"),
            node.wrapper_pid().as_raw(),
        ));
    }
    for i in 0..stack.backend().nodes().len() {
        nodes.push(NodeRef::BackendData(i));
    }
    for i in 0..stack.backend().sentinels().len() {
        nodes.push(NodeRef::Sentinel(i));
    }
    if stack.proxy().is_some() {
        nodes.push(NodeRef::Proxy);
    }
    for node in nodes {
        let p = stack.pids(node).unwrap();
        pids.push((format!("{node} server"), p.server.as_raw()));
        pids.push((format!("{node} group leader"), p.group.as_raw()));
        for member in group_members(p.group.as_raw()) {
            pids.push((format!("{node} group member"), member));
        }
    }
    pids
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

/// Fails, naming them, if processes that mention `needle` (a run's temporary directory)
/// are still there after `within`: hab leaves no server behind.
pub fn assert_no_procs_left(needle: &str, within: Duration) {
    let left = wait_no_procs(needle, within);
    assert!(left.is_empty(), "processes left behind: {left:?}");
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

/// `/proc/<pid>/stat` fields after the command name: state, ppid, pgrp, …
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    Some(after_comm.split_whitespace().map(str::to_string).collect())
}

pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Every live process in process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|&pid| stat_fields(pid).is_some_and(|f| f[2] == pgid.to_string()))
        .collect()
}

/// Processes whose stdout or stderr is a file under `dir`: every server a stack starts
/// writes there, and so would anything it left behind. (Zombies have no fds: the
/// per-pid ESRCH checks cover those.)
pub fn processes_writing_into(dir: &Path) -> Vec<(i32, String)> {
    all_pids()
        .into_iter()
        .filter(|&pid| {
            [1, 2].iter().any(|fd| {
                std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                    .is_ok_and(|target| target.starts_with(dir))
            })
        })
        .map(|pid| {
            let cmd = std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ");
            (pid, cmd)
        })
        .collect()
}

/// Processes whose environment names this epmd port: the node, its helpers, and any
/// `epmd -daemon` it might have started behind hab's back.
pub fn processes_using_epmd_port(port: u16) -> Vec<i32> {
    let needle = format!("ERL_EPMD_PORT={port}\0");
    all_pids()
        .into_iter()
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .collect()
}

pub fn assert_gone(what: &str, pid: i32) {
    assert_eq!(
        kill(Pid::from_raw(pid), None),
        Err(Errno::ESRCH),
        "{what} (pid {pid}) still exists: {:?}",
        stat_fields(pid)
    );
}

/// `hab run --topology T --workload W --out O --no-progress` from the repository root,
/// stdin closed.
pub fn hab_run(topology: &Path, workload: &Path, out: &Path) -> std::process::Command {
    let mut c = hab();
    c.arg("run")
        .arg("--topology")
        .arg(topology)
        .arg("--workload")
        .arg(workload)
        .arg("--out")
        .arg(out)
        .arg("--no-progress");
    c
}

/// The rows of a CSV file (tasks.csv, failover.csv, …) as header → value maps.
pub fn csv_rows(path: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Runs `cmd` (stdout and stderr to files in `dir`) for at most `deadline`. A command
/// still running then gets SIGINT (hab stops gracefully and says what it was doing),
/// then SIGKILL 30 s later, and the test fails with its stderr: a hang becomes a failure
/// that names where it hung instead of a test that never ends.
pub fn output_within(
    mut cmd: std::process::Command,
    dir: &Path,
    deadline: Duration,
) -> std::process::Output {
    use nix::sys::signal::Signal;
    let (out_path, err_path) = (dir.join("cmd.stdout"), dir.join("cmd.stderr"));
    cmd.stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().unwrap();
    let pid = Pid::from_raw(child.id() as i32);
    let started = Instant::now();
    let mut interrupted_at = None;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        match interrupted_at {
            None if started.elapsed() > deadline => {
                let _ = kill(pid, Signal::SIGINT);
                interrupted_at = Some(Instant::now());
            }
            Some(at) if at.elapsed() > Duration::from_secs(30) => {
                let _ = kill(pid, Signal::SIGKILL);
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read(&err_path).unwrap_or_default();
    assert!(
        interrupted_at.is_none(),
        "still running after {} s; interrupted ({status}). stderr:\n{}",
        deadline.as_secs(),
        String::from_utf8_lossy(&stderr)
    );
    std::process::Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr,
    }
}
