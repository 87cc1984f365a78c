//! What `/proc` says about processes: their state letter, and the stat fields teardown
//! needs (pid with start time, parent, group, session, zombie).

use std::time::{Duration, Instant};

use nix::unistd::Pid;

/// A process identity that survives pid reuse: pid plus start time (in clock ticks after
/// boot, `/proc/<pid>/stat` field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ProcId {
    /// The pid.
    pub(super) pid: i32,
    /// Start time in clock ticks after boot.
    pub(super) start_time: u64,
}

impl ProcId {
    /// True while this very process exists (running or zombie).
    pub(super) fn is_present(&self) -> bool {
        read_stat(self.pid).is_some_and(|s| s.id.start_time == self.start_time)
    }
}

/// The state letter of process `pid` from `/proc/<pid>/stat` (`R`, `S`, `T` for stopped,
/// `Z` for zombie, …); `None` when there is no such process.
pub fn proc_state(pid: Pid) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.get(stat.rfind(')')? + 2..)?.chars().next()
}

/// Waits (up to `limit`, polling every millisecond) until process `pid` is stopped
/// (`want_stopped`) or no longer stopped; true when it got there. Signal delivery is
/// asynchronous: a SIGSTOP has taken effect only once the state says `T`.
pub async fn wait_stopped_state(pid: Pid, want_stopped: bool, limit: Duration) -> bool {
    let started = Instant::now();
    loop {
        let stopped = matches!(proc_state(pid), Some('T' | 't'));
        if stopped == want_stopped {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The fields of `/proc/<pid>/stat` that teardown needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProcStat {
    /// Pid and start time.
    pub(super) id: ProcId,
    /// Parent pid.
    pub(super) ppid: i32,
    /// Process group.
    pub(super) pgrp: i32,
    /// Session.
    pub(super) session: i32,
    /// A zombie (exited, not yet reaped).
    pub(super) zombie: bool,
}

/// The stat fields of process `pid`; `None` when there is no such process.
pub(super) fn read_stat(pid: i32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(pid, &stat)
}

/// Parses a `/proc/<pid>/stat` line; the command name may hold spaces and parentheses.
pub(super) fn parse_stat(pid: i32, stat: &str) -> Option<ProcStat> {
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        id: ProcId {
            pid,
            start_time: f.get(19)?.parse().ok()?,
        },
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        session: f.get(3)?.parse().ok()?,
        zombie: f.first()? == &"Z",
    })
}

/// The stat fields of every process in `/proc`.
pub(super) fn scan_proc() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .collect()
}
