//! Who was busy: CPU time of the run's processes and of the machine, sampled from `/proc`.
//!
//! Every interval (100 ms in a run) a sampler thread reads, for each watched process, its
//! utime + stime (`/proc/<pid>/stat`) and those of each of its threads
//! (`/proc/<pid>/task/<tid>/stat`), and the machine's counters
//! (`/proc/stat`: busy, idle, steal). Processes are named by role and asked for afresh
//! at every sample, so a server restarted by a fault is followed under its new pid; the
//! interval in which a role's pid changed is not counted (its counters restarted).
//!
//! The figures are clock ticks (`sysconf(_SC_CLK_TCK)`, 100 per second on Linux): CPU
//! percentages come from differences of samples. A task's own work runs on threads named
//! [`TASK_THREAD`] for their whole life ([`crate::tasks::thread`]), so every tick of
//! theirs is task work, however short the task; a thread's growth between two samples
//! counts as task work when it had that name at either sample (a thread renamed between
//! samples is still told right to within one interval).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::tasks::thread::TASK_THREAD;

/// utime + stime of one process or thread, and its name (`comm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcTimes {
    /// The command name (`comm`, at most 15 bytes; a thread's own name).
    pub comm: String,
    /// User + system CPU time, clock ticks.
    pub ticks: u64,
}

/// Parses the text of `/proc/<pid>/stat` (or a thread's): the name is between the first
/// `(` and the last `)` (it may hold spaces and parentheses), utime and stime are the
/// 14th and 15th fields.
pub fn parse_stat(text: &str) -> Option<ProcTimes> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // After the name: field 3 (state) is the first.
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some(ProcTimes {
        comm,
        ticks: utime + stime,
    })
}

/// CPU times of process `pid` (all its threads together).
pub fn process_times(pid: i32) -> io::Result<ProcTimes> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: unexpected format"),
        )
    })
}

/// CPU times of each thread of `pid`, by thread id (threads that ended between listing
/// and reading are left out).
pub fn thread_times(pid: i32) -> BTreeMap<i32, ProcTimes> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some(t) = parse_stat(&text) {
            out.insert(tid, t);
        }
    }
    out
}

/// The machine's CPU counters from `/proc/stat`'s `cpu` line, clock ticks summed over
/// every core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineTicks {
    /// user + nice + system + irq + softirq.
    pub busy: u64,
    /// idle + iowait.
    pub idle: u64,
    /// Time a hypervisor gave this machine's CPUs to someone else (a noisy neighbour).
    pub steal: u64,
}

/// Parses `/proc/stat`'s first line (`cpu  user nice system idle iowait irq softirq steal …`).
pub fn parse_machine(text: &str) -> Option<MachineTicks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    if v.len() < 4 {
        return None;
    }
    Some(MachineTicks {
        busy: at(0) + at(1) + at(2) + at(5) + at(6),
        idle: at(3) + at(4),
        steal: at(7),
    })
}

/// The machine's counters now.
pub fn machine_ticks() -> io::Result<MachineTicks> {
    let text = std::fs::read_to_string("/proc/stat")?;
    parse_machine(&text)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "/proc/stat: no cpu line"))
}

/// Clock ticks per second of the figures in `/proc` (`sysconf(_SC_CLK_TCK)`).
pub fn ticks_per_s() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// One watched process at one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleTicks {
    /// Its pid then (a change between samples: the process was restarted).
    pub pid: i32,
    /// User + system ticks of the whole process.
    pub ticks: u64,
    /// Of those, the ticks its threads spent running tasks since sampling began: a
    /// thread's growth between two samples counts as task work when it was named
    /// [`TASK_THREAD`] at either sample.
    pub task_ticks: u64,
}

/// Everything read at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSample {
    /// When, unix µs.
    pub at_unix_us: i64,
    /// Each watched process that was alive, by role (`broker.node[0]`, `hab.producer`, …).
    pub roles: BTreeMap<String, RoleTicks>,
    /// The machine's counters.
    pub machine: MachineTicks,
}

/// The processes to watch now, by role; asked again at every sample.
pub type Watch = Box<dyn Fn() -> Vec<(String, i32)> + Send>;

/// What a sampler remembers between samples: each process's threads' last ticks and the
/// task ticks attributed so far.
#[derive(Debug, Default)]
pub struct Sampling {
    /// Each process's threads at the last sample: ticks, and whether it was running a task.
    threads: BTreeMap<i32, BTreeMap<i32, (u64, bool)>>,
    task_ticks: BTreeMap<i32, u64>,
}

impl Sampling {
    /// Reads one sample of the processes `watch` names (a process that is gone is left
    /// out).
    pub fn sample(&mut self, watch: &[(String, i32)]) -> CpuSample {
        let mut roles = BTreeMap::new();
        for (role, pid) in watch {
            let Ok(p) = process_times(*pid) else {
                continue;
            };
            let now = thread_times(*pid);
            let known = self.threads.contains_key(pid);
            let last = self.threads.entry(*pid).or_default();
            let task = self.task_ticks.entry(*pid).or_insert(0);
            for (tid, t) in &now {
                let is_task = t.comm == TASK_THREAD;
                // The first look at a process is its baseline; a thread that appears
                // later counts from zero. A thread that ran a task at either end of the
                // interval spent it on the task: only blocking-pool threads take the
                // name, and they burn no CPU while idle, so a task that started or ended
                // within the interval is not counted as overhead.
                let (grew, was_task) = match last.get(tid) {
                    Some(&(before, was_task)) => (t.ticks.saturating_sub(before), was_task),
                    None if known => (t.ticks, false),
                    None => (0, false),
                };
                if is_task || was_task {
                    *task += grew;
                }
            }
            *last = now
                .into_iter()
                .map(|(tid, t)| (tid, (t.ticks, t.comm == TASK_THREAD)))
                .collect();
            roles.insert(
                role.clone(),
                RoleTicks {
                    pid: *pid,
                    ticks: p.ticks,
                    task_ticks: *task,
                },
            );
        }
        CpuSample {
            at_unix_us: crate::clock::now_unix_us(),
            roles,
            machine: machine_ticks().unwrap_or_default(),
        }
    }
}

/// A thread that samples every `interval` until stopped; the samples so far can be read
/// at any time (an interrupted run writes what it measured).
pub struct CpuSampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<CpuSample>>>,
    thread: JoinHandle<()>,
}

impl CpuSampler {
    /// Starts sampling the processes `watch` names, at once and then every `interval`.
    pub fn start(interval: Duration, watch: Watch) -> io::Result<CpuSampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (flag, store) = (stop.clone(), samples.clone());
        let thread = std::thread::Builder::new()
            .name("hab-cpu".into())
            .spawn(move || {
                let mut sampling = Sampling::default();
                let mut next = std::time::Instant::now();
                loop {
                    let s = sampling.sample(&watch());
                    store.lock().unwrap_or_else(PoisonError::into_inner).push(s);
                    if flag.load(Ordering::Relaxed) {
                        return;
                    }
                    next += interval;
                    // Late (a stalled machine): the next sample is taken at once, and the
                    // schedule restarts from there rather than catching up in a burst.
                    match next.checked_duration_since(std::time::Instant::now()) {
                        Some(wait) => std::thread::park_timeout(wait),
                        None => next = std::time::Instant::now(),
                    }
                }
            })?;
        Ok(CpuSampler {
            stop,
            samples,
            thread,
        })
    }

    /// Every sample so far, in time order.
    pub fn samples(&self) -> Vec<CpuSample> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Takes a last sample and returns every sample, in time order.
    pub fn stop(self) -> Vec<CpuSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let _ = self.thread.join();
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

#[cfg(test)]
mod tests;
