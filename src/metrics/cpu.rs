//! Who was busy, from the samples of [`crate::observe::cpu`]: each role's CPU in percent
//! of one core over a window (a workload) and per second (timeline.csv), the machine's
//! busy and stolen share, and the busiest process — with hab's task work (threads named
//! [`TASK_THREAD`](crate::observe::cpu::TASK_THREAD)) told apart from hab's overhead, so
//! a workload in which hab itself was the limit says so.
//!
//! A role's CPU over a window is the sum of its growth between consecutive samples inside
//! the window, over the window's length; an interval in which the role's pid changed (a
//! restarted server) or in which it was absent adds nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::observe::cpu::CpuSample;

/// Roles of hab's own processes start with this (`hab.producer`, `hab.worker w1`); every
/// other role is a server of the stack.
pub const HAB_ROLE_PREFIX: &str = "hab.";

/// One role's CPU over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleCpu {
    /// Mean CPU, percent of one core (200 = two cores busy).
    pub pct: f64,
    /// Of it, the part spent running tasks' own work (hab's task threads); 0 for servers.
    pub task_pct: f64,
}

impl RoleCpu {
    /// What the role spent on anything but tasks' own work.
    pub fn overhead_pct(&self) -> f64 {
        (self.pct - self.task_pct).max(0.0)
    }
}

/// Every role's CPU and the machine's over one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuWindow {
    /// The window's length covered by samples, seconds.
    pub seconds: f64,
    /// Each role seen in the window.
    pub roles: BTreeMap<String, RoleCpu>,
    /// The machine's busy share, percent of all its cores.
    pub machine_busy_pct: f64,
    /// The share a hypervisor gave to someone else (steal), percent of all cores.
    pub machine_steal_pct: f64,
}

/// Who was busy during one workload (run.json `workloads[].cpu`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadCpu {
    /// Each role's and the machine's CPU from the workload's start to the end of its drain.
    #[serde(flatten)]
    pub window: CpuWindow,
    /// Its busiest process.
    pub busiest: Option<Busiest>,
    /// The same in one sentence ([`busiest_sentence`]).
    pub summary: Option<String>,
}

impl WorkloadCpu {
    /// Who was busy between `from_us` and `to_us`; `None` without two samples in it.
    pub fn of(samples: &[CpuSample], from_us: i64, to_us: i64, ticks_per_s: u64) -> Option<Self> {
        let window = window(samples, from_us, to_us, ticks_per_s);
        (window.seconds > 0.0).then(|| WorkloadCpu {
            busiest: busiest(&window),
            summary: busiest_sentence(&window),
            window,
        })
    }
}

/// Whether window `w` measured hab rather than the stack: long enough for a verdict, and
/// its busiest process is one of hab's, at or above [`SATURATED_PCT`] of a core in its own
/// overhead.
pub fn hab_limited(w: &CpuWindow) -> Option<Busiest> {
    let b = busiest(w)?;
    (w.seconds >= VERDICT_MIN_S && b.hab_overhead && b.pct >= SATURATED_PCT).then_some(b)
}

/// The busiest process of a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Busiest {
    /// Its role.
    pub role: String,
    /// Its CPU, percent of one core (for hab's processes: overhead only).
    pub pct: f64,
    /// It is one of hab's own processes, busy with something else than tasks' work: the
    /// workload measured hab rather than the stack.
    pub hab_overhead: bool,
}

/// Each role's and the machine's CPU between `from_us` and `to_us` (unix µs), from
/// samples in time order; `ticks_per_s` from [`crate::observe::cpu::ticks_per_s`].
pub fn window(samples: &[CpuSample], from_us: i64, to_us: i64, ticks_per_s: u64) -> CpuWindow {
    let inside: Vec<&CpuSample> = samples
        .iter()
        .filter(|s| s.at_unix_us >= from_us && s.at_unix_us <= to_us)
        .collect();
    let (Some(first), Some(last)) = (inside.first(), inside.last()) else {
        return CpuWindow::default();
    };
    let seconds = (last.at_unix_us - first.at_unix_us) as f64 / 1e6;
    if seconds <= 0.0 {
        return CpuWindow::default();
    }
    let mut ticks: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for pair in inside.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        for (role, now) in &b.roles {
            let Some(before) = a.roles.get(role).filter(|r| r.pid == now.pid) else {
                ticks.entry(role.clone()).or_default();
                continue;
            };
            let t = ticks.entry(role.clone()).or_default();
            t.0 += now.ticks.saturating_sub(before.ticks);
            t.1 += now.task_ticks.saturating_sub(before.task_ticks);
        }
    }
    let pct = |t: u64| t as f64 / ticks_per_s as f64 / seconds * 100.0;
    let roles = ticks
        .into_iter()
        .map(|(role, (all, task))| {
            (
                role,
                RoleCpu {
                    pct: pct(all),
                    task_pct: pct(task.min(all)),
                },
            )
        })
        .collect();
    let busy = last.machine.busy.saturating_sub(first.machine.busy) as f64;
    let idle = last.machine.idle.saturating_sub(first.machine.idle) as f64;
    let steal = last.machine.steal.saturating_sub(first.machine.steal) as f64;
    let total = busy + idle + steal;
    let share = |v: f64| if total > 0.0 { v / total * 100.0 } else { 0.0 };
    CpuWindow {
        seconds,
        roles,
        machine_busy_pct: share(busy),
        machine_steal_pct: share(steal),
    }
}

/// Each role's CPU (percent of one core) in each whole second (unix s) the samples cover:
/// the growth of the intervals that end in that second over their length.
pub fn per_second(samples: &[CpuSample], ticks_per_s: u64) -> BTreeMap<i64, BTreeMap<String, f64>> {
    let mut acc: BTreeMap<i64, BTreeMap<String, (u64, f64)>> = BTreeMap::new();
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let dt = (b.at_unix_us - a.at_unix_us) as f64 / 1e6;
        if dt <= 0.0 {
            continue;
        }
        let second = b.at_unix_us.div_euclid(1_000_000);
        for (role, now) in &b.roles {
            if let Some(before) = a.roles.get(role).filter(|r| r.pid == now.pid) {
                let e = acc
                    .entry(second)
                    .or_default()
                    .entry(role.clone())
                    .or_default();
                e.0 += now.ticks.saturating_sub(before.ticks);
                e.1 += dt;
            }
        }
    }
    acc.into_iter()
        .map(|(s, roles)| {
            let roles = roles
                .into_iter()
                .map(|(role, (t, dt))| (role, t as f64 / ticks_per_s as f64 / dt * 100.0))
                .collect();
            (s, roles)
        })
        .collect()
}

/// Sets each timeline second's CPU per role (percent of one core) from `per_second`.
pub fn annotate_timeline(
    rows: &mut [super::timeline::TimelineRow],
    per_second: &BTreeMap<i64, BTreeMap<String, f64>>,
) {
    for r in rows {
        if let Some(cpu) = per_second.get(&r.unix_s) {
            r.cpu_pct = cpu.clone();
        }
    }
}

/// The busiest process of a window: servers by their CPU, hab's processes by their
/// overhead (tasks' own work is what a workload measures). `None` without samples.
pub fn busiest(w: &CpuWindow) -> Option<Busiest> {
    w.roles
        .iter()
        .map(|(role, c)| {
            let hab = role.starts_with(HAB_ROLE_PREFIX);
            Busiest {
                role: role.clone(),
                pct: if hab { c.overhead_pct() } else { c.pct },
                hab_overhead: hab,
            }
        })
        .max_by(|a, b| a.pct.total_cmp(&b.pct))
}

/// A process at or above this share of one core is taken as the limit of a workload.
pub const SATURATED_PCT: f64 = 90.0;

/// Windows shorter than this get figures but no verdict: at 100 ms samples and 10 ms
/// ticks, a shorter window's shares move by tens of percent with one tick.
pub const VERDICT_MIN_S: f64 = 1.0;

/// One sentence on who was busy in window `w`: the busiest process, whether it limited
/// the workload (at or above [`SATURATED_PCT`] of a core) and whether that was hab's
/// overhead rather than the stack, then the machine's busy and stolen share. `None` for a
/// window shorter than [`VERDICT_MIN_S`] or without samples.
pub fn busiest_sentence(w: &CpuWindow) -> Option<String> {
    if w.seconds < VERDICT_MIN_S {
        return None;
    }
    let b = busiest(w)?;
    let who = match (b.hab_overhead, b.pct >= SATURATED_PCT) {
        (true, true) => format!(
            "{} at {:.0} % of a core in its own overhead (not task work): this workload measured hab rather than the stack",
            b.role, b.pct
        ),
        (false, true) => format!(
            "{} at {:.0} % of a core: it limits this workload",
            b.role, b.pct
        ),
        (_, false) if w.machine_busy_pct >= SATURATED_PCT => format!(
            "no process at a full core, but the machine's cores were (busiest process {} at {:.0} % of a core)",
            b.role, b.pct
        ),
        (_, false) => format!(
            "busiest process {} at {:.0} % of a core: no process was the limit",
            b.role, b.pct
        ),
    };
    // The work measured is not overhead, but a reader should see it beside the busiest.
    let work = w
        .roles
        .iter()
        .filter(|(_, c)| c.task_pct >= 1.0 && c.task_pct >= b.pct)
        .max_by(|a, b| a.1.task_pct.total_cmp(&b.1.task_pct))
        .map(|(role, c)| {
            format!(
                "; tasks' own work (not overhead): {role} at {:.0} % of a core",
                c.task_pct
            )
        })
        .unwrap_or_default();
    Some(format!(
        "{who}{work}; machine {:.0} % busy, {:.0} % stolen",
        w.machine_busy_pct, w.machine_steal_pct
    ))
}

#[cfg(test)]
mod tests;
