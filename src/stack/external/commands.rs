//! The fault commands of an external stack: how one is run (`sh -c` in its own process
//! group, bounded by `command_timeout`), how it ended, when it did its work and the
//! placeholders filled into it.

use std::time::Duration;

use crate::fault::{FaultKind, Role};
use crate::stack::NodeRef;

/// The phase of a fault a command belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandPhase {
    /// Breaks the node.
    Apply,
    /// Brings it back.
    Revert,
    /// Checks it is healthy again.
    Health,
}

impl CommandPhase {
    /// The name used in logs and `--dry-run`.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandPhase::Apply => "apply",
            CommandPhase::Revert => "revert",
            CommandPhase::Health => "health",
        }
    }
}

/// When a command did its work: the last `at_unix_us=N` it printed (the moment it
/// broke or restored the node, e.g. `hab node`'s answer, or `date +at_unix_us=%s%6N`
/// after the action on the host), kept within the command's own run; else the moment it
/// started. Never its end: a slow command (an ssh round trip, a loaded machine) would
/// put the fault after the first events it caused.
pub fn command_time(output: &str, started_us: i64, ended_us: i64) -> i64 {
    output
        .rsplit("at_unix_us=")
        .next()
        .filter(|_| output.contains("at_unix_us="))
        .and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<i64>().ok()
        })
        .map(|at| at.clamp(started_us, ended_us))
        .unwrap_or(started_us)
}

/// The placeholder values for one command.
pub fn placeholders(
    role: Role,
    node: NodeRef,
    kind: FaultKind,
    cpu_percent: Option<f64>,
    endpoint: Option<(String, u16)>,
) -> Vec<(&'static str, String)> {
    let index = match node {
        NodeRef::Broker(i) | NodeRef::BackendData(i) | NodeRef::Sentinel(i) => i.to_string(),
        NodeRef::Proxy => "0".into(),
    };
    let (host, port) = endpoint
        .map(|(h, p)| (h, p.to_string()))
        .unwrap_or_default();
    vec![
        ("role", role.to_string()),
        ("node", node.to_string()),
        ("index", index),
        ("host", host),
        ("port", port),
        ("kind", kind.as_str().to_string()),
        (
            "cpu_percent",
            cpu_percent.map(|p| p.to_string()).unwrap_or_default(),
        ),
    ]
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandOutcome {
    /// It exited (by itself) with this code; `output` is stdout and stderr, masked and
    /// cut to the last 4 KiB.
    Exited {
        /// The exit code (128 + signal when a signal ended it).
        code: i32,
        /// What it printed.
        output: String,
    },
    /// It ran past the timeout and its process group was killed.
    TimedOut {
        /// What it printed before.
        output: String,
    },
    /// It could not be started.
    NotStarted(String),
}

impl CommandOutcome {
    /// One line (plus output) for logs and errors.
    pub fn describe(&self, timeout: Duration) -> String {
        let with = |head: String, output: &str| {
            let output = output.trim_end();
            if output.is_empty() {
                head
            } else {
                format!("{head}; output:\n{output}")
            }
        };
        match self {
            CommandOutcome::Exited { code, output } => with(format!("exit status {code}"), output),
            CommandOutcome::TimedOut { output } => with(
                format!(
                    "did not finish within {} (command_timeout); its process group was killed",
                    humantime::format_duration(timeout)
                ),
                output,
            ),
            CommandOutcome::NotStarted(e) => format!("could not start sh: {e}"),
        }
    }
}

/// Runs `cmd` with `sh -c` in its own process group, stdin from /dev/null, stdout and
/// stderr captured; kills the group when it runs past `timeout`.
pub async fn run_command(cmd: &str, timeout: Duration) -> CommandOutcome {
    use std::process::Stdio;
    use tokio::io::AsyncReadExt;
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match c.spawn() {
        Ok(child) => child,
        Err(e) => return CommandOutcome::NotStarted(e.to_string()),
    };
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let collect = async {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let _ = tokio::join!(stdout.read_to_end(&mut a), stderr.read_to_end(&mut b));
        a.extend_from_slice(&b);
        a
    };
    let both = async { tokio::join!(child.wait(), collect) };
    let finished = tokio::time::timeout(timeout, both).await;
    let tidy = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let cut = text.len().saturating_sub(4096);
        let start = (cut..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        crate::credentials::mask(&text[start..])
    };
    match finished {
        Ok((status, output)) => {
            // Whatever the shell left running in its group goes with it.
            if let Some(pid) = pid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let code = match status {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
                }
                Err(e) => return CommandOutcome::NotStarted(e.to_string()),
            };
            CommandOutcome::Exited {
                code,
                output: tidy(&output),
            }
        }
        Err(_) => {
            if let Some(pid) = pid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            CommandOutcome::TimedOut {
                output: String::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_command_reports_status_and_output() {
        let out = run_command("echo hello; echo oops >&2; exit 3", Duration::from_secs(10)).await;
        match &out {
            CommandOutcome::Exited { code, output } => {
                assert_eq!(*code, 3);
                assert!(
                    output.contains("hello") && output.contains("oops"),
                    "{output}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            out.describe(Duration::from_secs(1))
                .starts_with("exit status 3; output:")
        );
    }

    #[tokio::test]
    async fn a_hanging_command_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("child.pid");
        let cmd = format!("sleep 30 & echo $! > {}; wait", marker.display());
        let started = Instant::now();
        let out = run_command(&cmd, Duration::from_millis(500)).await;
        assert!(matches!(out, CommandOutcome::TimedOut { .. }), "{out:?}");
        assert!(started.elapsed() < Duration::from_secs(20));
        let pid: i32 = std::fs::read_to_string(&marker)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The background sleep was in the group: it is gone (or a zombie being reaped).
        let mut gone = false;
        for _ in 0..50 {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if status.is_empty() || status.contains("State:\tZ") {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone, "the command's child {pid} survived the timeout");
        assert!(
            out.describe(Duration::from_millis(500))
                .contains("command_timeout")
        );
    }

    #[test]
    fn a_command_time_is_what_it_printed_within_its_run_else_its_start() {
        assert_eq!(
            command_time("kill broker.node[0] at_unix_us=1500\n", 1000, 2000),
            1500
        );
        assert_eq!(
            command_time("at_unix_us=1200 then at_unix_us=1700", 1000, 2000),
            1700
        );
        // A remote clock ahead or behind is held to the command's own run.
        assert_eq!(command_time("at_unix_us=9999", 1000, 2000), 2000);
        assert_eq!(command_time("at_unix_us=5", 1000, 2000), 1000);
        assert_eq!(command_time("done", 1000, 2000), 1000);
        assert_eq!(command_time("at_unix_us=", 1000, 2000), 1000);
    }

    #[test]
    fn placeholders_name_the_role_the_node_and_its_address() {
        let p = placeholders(
            Role::BackendMaster,
            NodeRef::BackendData(1),
            FaultKind::Kill,
            None,
            Some(("10.0.0.2".into(), 6379)),
        );
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("role"), "backend.master");
        assert_eq!(get("node"), "backend.node[1]");
        assert_eq!(get("index"), "1");
        assert_eq!(get("host"), "10.0.0.2");
        assert_eq!(get("port"), "6379");
        assert_eq!(get("kind"), "kill");
        assert_eq!(get("cpu_percent"), "");
        let p = placeholders(
            Role::BrokerPrimary,
            NodeRef::Broker(0),
            FaultKind::Throttle,
            Some(2.5),
            None,
        );
        let get = |k: &str| p.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(
            (get("kind"), get("cpu_percent")),
            ("throttle".into(), "2.5".into())
        );
    }
}
