//! One server process owned by hab: its own process group, a log file, bounded readiness
//! and kill-on-drop.
//!
//! Every server runs as the leader of a fresh process group, so one signal reaches the
//! whole tree (RabbitMQ's `sh` wrapper, `beam.smp`, `erl_child_setup`, …). hab marks
//! itself a *child subreaper* the first time it spawns a server: a group member whose
//! parent dies is re-parented to hab instead of PID 1, and hab reaps it with
//! `waitpid(-pgid)`. That makes "the group is gone" a fact hab can check when `stop` or
//! `Drop` returns, instead of zombies waiting for an init that may reap late (it does on
//! these machines). Only processes of hab's servers are reaped that way (see
//! [`reap_orphans`]), so other children (tokio or std processes) keep their exit statuses.
//!
//! A process group is not the whole story: Erlang's `erl_child_setup` and its port
//! programs call `setsid`. So a `ManagedProcess` also remembers every descendant it has
//! seen (at readiness and during teardown, by pid *and* start time, so a recycled pid is
//! never mistaken for one), and `stop`/`Drop` wait for those too.
//!
//! Beside it: `ready.rs`, readiness polling ([`wait_ready`] for one process,
//! [`poll_until`] for several, [`poll_ready`] when its timeout means a server not ready),
//! and `procfs.rs`, what `/proc` says about a process
//! ([`proc_state`], and the stat fields teardown reads).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid, getsid};

use super::StackError;

mod procfs;
mod ready;
#[cfg(test)]
mod tests;

use self::procfs::{ProcId, read_stat, scan_proc};
pub use self::procfs::{proc_state, wait_stopped_state};
pub use self::ready::{poll_ready, poll_until, wait_ready};

/// Process-group ids of every live [`ManagedProcess`], for [`kill_all_now`].
static LIVE_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Set once hab has asked the kernel to make it a child subreaper.
static SUBREAPER: OnceLock<()> = OnceLock::new();

/// How long `Drop` waits for a SIGKILLed group to disappear before giving up with a warning.
const KILL_REAP_LIMIT: Duration = Duration::from_secs(5);

/// How much of the end of a log file [`ManagedProcess::log_tail`] reads, in bytes.
const TAIL_READ_BYTES: u64 = 64 * 1024;

fn live_groups() -> MutexGuard<'static, BTreeSet<i32>> {
    LIVE_GROUPS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SIGKILLs every process group hab started and has not torn down yet.
///
/// For the second Ctrl-C, right before `std::process::exit`, when `Drop` will not run.
/// It does not wait or reap: the processes die with the signal.
pub fn kill_all_now() {
    for &pgid in live_groups().iter() {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

/// Process-group ids currently registered as live (sorted), for diagnostics and tests.
pub fn live_process_groups() -> Vec<i32> {
    live_groups().iter().copied().collect()
}

fn become_subreaper() {
    SUBREAPER.get_or_init(|| {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            tracing::warn!(
                "could not become a child subreaper ({e}); orphaned server processes are \
                 left to PID 1 to reap"
            );
        }
    });
}

/// hab's own executable, to start its workers, ceiling consumers and supervisor from: the
/// path it was started from while that file is still the running image, so the children
/// are named `hab` in `ps` and `top`; once the file was unlinked or replaced (cargo
/// relinking it, a package upgrade) the running image itself (`/proc/self/exe`), so a
/// child never runs a different program, or none ("`hab (deleted)` was not found").
pub fn own_executable() -> std::io::Result<PathBuf> {
    let image = Path::new("/proc/self/exe");
    match std::fs::read_link(image) {
        Ok(path) if path.to_string_lossy().ends_with(" (deleted)") => Ok(image.to_path_buf()),
        Ok(path) => Ok(path),
        Err(_) => std::env::current_exe().map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot find hab's own executable: {e}"))
        }),
    }
}

/// Finds `program` the way `execvp` would: a path with a `/` as is, a bare name on `PATH`.
pub fn find_program(program: &OsStr) -> Option<PathBuf> {
    let is_exec = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    let as_path = Path::new(program);
    if as_path.as_os_str().as_encoded_bytes().contains(&b'/') {
        return is_exec(as_path).then(|| as_path.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_exec(candidate))
}

/// A child process in its own process group, with its output appended to a log file.
///
/// Dropping it SIGKILLs the whole group and reaps it before returning, so a panic or an
/// early return never leaves a server running. [`stop`](Self::stop) is the graceful way.
#[derive(Debug)]
pub struct ManagedProcess {
    /// Human name used in errors and logs, e.g. `redis backend`.
    name: String,
    /// Leader pid; equal to the process-group id.
    pid: Pid,
    /// File receiving the process's stdout and stderr.
    log_path: PathBuf,
    /// Further log files the server writes itself (RabbitMQ's node log), shown by `log_tail`.
    extra_logs: Vec<PathBuf>,
    /// The leader's exit status once it has been reaped.
    status: Option<WaitStatus>,
    /// The server's processes seen so far: the group and every descendant, which may have
    /// left the group (Erlang's `erl_child_setup` calls `setsid`). Teardown waits for all.
    tree: BTreeSet<ProcId>,
    /// True once every process of the server is gone and the group is unregistered.
    finished: bool,
    /// hab's clock right after the spawn returned, in unix µs.
    spawned_unix_us: i64,
}

impl ManagedProcess {
    /// Starts `cmd` as the leader of a new process group, stdin from /dev/null and
    /// stdout/stderr appended to `log_path`.
    ///
    /// `package` is the Debian package that provides the program, named in
    /// [`StackError::MissingBinary`] when the program is not installed.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        package: &'static str,
        log_path: &Path,
    ) -> Result<ManagedProcess, StackError> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        if find_program(cmd.get_program()).is_none() {
            return Err(StackError::MissingBinary { program, package });
        }
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StackError::Io {
                what: format!("creating log directory {}", dir.display()),
                source,
            })?;
        }
        let log_err = |source| StackError::Io {
            what: format!("opening log file {}", log_path.display()),
            source,
        };
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(log_err)?;
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        writeln!(
            log,
            "=== hab: starting {name}: {program} {} at {} ===",
            args.join(" "),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
        .map_err(log_err)?;
        let stderr = log.try_clone().map_err(log_err)?;

        become_subreaper();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .process_group(0);
        // Registration happens under the lock so `kill_all_now` never misses a group
        // between spawn and registration.
        let mut groups = live_groups();
        let child = cmd.spawn().map_err(|source| {
            if source.kind() == io::ErrorKind::NotFound {
                StackError::MissingBinary {
                    program: program.clone(),
                    package,
                }
            } else {
                StackError::SpawnFailed {
                    program: program.clone(),
                    source,
                }
            }
        })?;
        let spawned_unix_us = crate::clock::now_unix_us();
        let pid = Pid::from_raw(child.id() as i32);
        groups.insert(pid.as_raw());
        drop(groups);
        // The `Child` handle is dropped on purpose: hab reaps the leader with waitpid on
        // the group (see the module docs); std's `Child` neither kills nor waits on drop.
        drop(child);
        tracing::debug!(%name, pid = pid.as_raw(), %program, "spawned");
        Ok(ManagedProcess {
            name: name.to_string(),
            pid,
            log_path: log_path.to_path_buf(),
            extra_logs: Vec::new(),
            status: None,
            tree: BTreeSet::new(),
            finished: false,
            spawned_unix_us,
        })
    }

    /// hab's clock right after the process was spawned, in unix µs.
    pub fn spawned_unix_us(&self) -> i64 {
        self.spawned_unix_us
    }

    /// The human name given at spawn, used in errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The leader's pid, which is also the process-group id.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The file receiving the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Adds a log file the server writes itself, so [`log_tail`](Self::log_tail) shows it too.
    pub fn add_log_file(&mut self, path: PathBuf) {
        self.extra_logs.push(path);
    }

    /// The last `n` lines of the process's log and of every extra log file that exists,
    /// each extra file under a `--- path ---` header.
    pub fn log_tail(&self, n: usize) -> String {
        let mut out = read_tail(&self.log_path, n);
        for extra in &self.extra_logs {
            if extra.exists() {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&format!("--- {} ---\n", extra.display()));
                out.push_str(&read_tail(extra, n));
            }
        }
        out
    }

    /// Sends `sig` to every process of the group.
    ///
    /// Fails with `ESRCH` once the group is gone (and never signals a recycled id then).
    pub fn signal_group(&self, sig: Signal) -> nix::Result<()> {
        if self.finished {
            return Err(Errno::ESRCH);
        }
        killpg(self.pid, sig)
    }

    /// True while the leader process has not exited. Reaps it when it has.
    pub fn is_running(&mut self) -> bool {
        if self.status.is_some() || self.finished {
            return false;
        }
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => true,
            Ok(status) => {
                self.status = Some(status);
                false
            }
            // ECHILD: already reaped elsewhere; anything else: treat as gone.
            Err(_) => false,
        }
    }

    /// True while the leader process exists and is not a zombie; unlike
    /// [`is_running`](Self::is_running) it reaps nothing, so it needs only `&self`.
    pub fn is_alive(&self) -> bool {
        !self.finished
            && self.status.is_none()
            && read_stat(self.pid.as_raw()).is_some_and(|s| !s.zombie)
    }

    /// How the leader ended, e.g. `exit code 1` or `killed by SIGKILL`; `None` while running.
    pub fn exit_description(&mut self) -> Option<String> {
        if self.is_running() {
            return None;
        }
        Some(match self.status {
            Some(WaitStatus::Exited(_, code)) => format!("exit code {code}"),
            Some(WaitStatus::Signaled(_, sig, _)) => format!("killed by {sig}"),
            Some(other) => format!("{other:?}"),
            None => "exited".to_string(),
        })
    }

    /// Stops the server gracefully: SIGTERM to the group, up to `grace` for the group and
    /// every process it started (also those that left the group, like Erlang's
    /// `erl_child_setup`) to exit, then SIGKILL to all of them. Returns once all are gone
    /// and reaped.
    pub async fn stop(&mut self, grace: Duration) {
        self.terminate();
        self.wait_gone(grace).await;
    }

    /// The first half of [`stop`](Self::stop): SIGTERM to the group (and SIGCONT, since a
    /// paused server would never act on the SIGTERM). Returns at once.
    pub fn terminate(&mut self) {
        if self.finished {
            return;
        }
        self.refresh_tree();
        let _ = self.signal_group(Signal::SIGTERM);
        let _ = self.signal_group(Signal::SIGCONT);
    }

    /// The second half of [`stop`](Self::stop): waits up to `grace` for the group and
    /// everything it started to exit, then SIGKILLs what is left; returns once all are
    /// gone and reaped.
    pub async fn wait_gone(&mut self, grace: Duration) {
        if self.finished {
            return;
        }
        let started = Instant::now();
        while started.elapsed() < grace {
            self.refresh_tree();
            if self.reap() {
                self.finish();
                tracing::debug!(name = %self.name, ms = started.elapsed().as_millis() as u64, "stopped");
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::warn!(
            name = %self.name,
            "did not stop within {} ms of SIGTERM; sending SIGKILL",
            grace.as_millis()
        );
        self.kill_now();
    }

    /// SIGKILLs the group and every process it started, and reaps them, blocking the
    /// thread for the few milliseconds that takes (bounded). This is what `Drop` does.
    pub fn kill_now(&mut self) {
        if self.finished {
            return;
        }
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            self.refresh_tree();
            let _ = killpg(self.pid, Signal::SIGKILL);
            for id in &self.tree {
                if id.is_present() {
                    let _ = kill(Pid::from_raw(id.pid), Signal::SIGKILL);
                }
            }
            if self.reap() {
                break;
            }
            if started.elapsed() > KILL_REAP_LIMIT {
                tracing::warn!(
                    name = %self.name,
                    pgid = self.pid.as_raw(),
                    "processes still present {} s after SIGKILL",
                    KILL_REAP_LIMIT.as_secs()
                );
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
        self.finish();
    }

    /// Adds to `tree` every current member of the group and every descendant of a
    /// process already in it (helpers that made their own session or group included).
    fn refresh_tree(&mut self) {
        let procs = scan_proc();
        let pgid = self.pid.as_raw();
        // Parents are known processes that still exist as themselves (same start time),
        // so a recycled pid never pulls a stranger's children in.
        let mut parents: BTreeSet<i32> = BTreeSet::new();
        for p in &procs {
            if p.pgrp == pgid || self.tree.contains(&p.id) {
                self.tree.insert(p.id);
                parents.insert(p.id.pid);
            }
        }
        // Close over parent links until nothing new turns up.
        loop {
            let mut grew = false;
            for p in &procs {
                if parents.contains(&p.ppid) && !parents.contains(&p.id.pid) {
                    self.tree.insert(p.id);
                    parents.insert(p.id.pid);
                    grew = true;
                }
            }
            if !grew {
                break;
            }
        }
    }

    /// Reaps whatever of the server's processes has exited and is hab's child; true once
    /// no member of the group and no process of `tree` is left at all (not even a zombie).
    fn reap(&mut self) -> bool {
        let group = Pid::from_raw(-self.pid.as_raw());
        loop {
            match waitpid(group, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(status) => {
                    if status.pid() == Some(self.pid) {
                        self.status = Some(status);
                    }
                }
                Err(Errno::EINTR) => {}
                Err(_) => break, // ECHILD: none of the group is hab's child any more.
            }
        }
        // Helpers outside the group were re-parented to hab (the subreaper) when their
        // parent died; these pids descend from the server, so they are not another
        // part of hab's children.
        for id in &self.tree {
            if id.is_present() {
                let _ = waitpid(Pid::from_raw(id.pid), Some(WaitPidFlag::WNOHANG));
            }
        }
        reap_orphans();
        matches!(killpg(self.pid, None), Err(Errno::ESRCH))
            && self.tree.iter().all(|id| !id.is_present())
    }

    fn finish(&mut self) {
        self.finished = true;
        live_groups().remove(&self.pid.as_raw());
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// Reaps zombie children of hab that live in another session than hab.
///
/// As a subreaper hab inherits the orphans of its servers' process trees; the Erlang VM's
/// helpers (`erl_child_setup`, `inet_gethost`, a refused `epmd -daemon`) call `setsid`, so
/// they are in sessions of their own. hab's own direct children stay in hab's session
/// (`process_group` does not change it) and are left to whoever waits for them. A direct
/// child that calls `setsid` itself would be reaped here: spawn none outside this module.
pub fn reap_orphans() {
    if SUBREAPER.get().is_none() {
        return;
    }
    let me = getpid().as_raw();
    let Ok(my_session) = getsid(None) else {
        return;
    };
    for p in scan_proc() {
        if p.zombie && p.ppid == me && p.session != my_session.as_raw() {
            let _ = waitpid(Pid::from_raw(p.id.pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Reads the last `n` lines of the file at `path` (only its last 64 KiB are read); a
/// short note instead when it cannot be read.
pub fn read_tail(path: &Path, n: usize) -> String {
    let read = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        let start = len.saturating_sub(TAIL_READ_BYTES);
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let text = String::from_utf8_lossy(&bytes);
        // A read that starts mid-file starts mid-line: drop that partial line.
        let text = if start > 0 {
            text.split_once('\n')
                .map_or("", |(_, rest)| rest)
                .to_string()
        } else {
            text.into_owned()
        };
        Ok(tail_lines(&text, n))
    };
    read().unwrap_or_else(|e| format!("(could not read {}: {e})\n", path.display()))
}

/// The last `n` lines of `text`, each ending with a newline.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(n);
    lines[from..].iter().map(|l| format!("{l}\n")).collect()
}
