//! How long a sweep takes, before it runs: each workload of the plan from its own counts,
//! rates and fault schedule; a bring-up from the topology's node counts; a cell as its
//! warm-up, the phases its knobs can affect and the reconfiguration. Where a number cannot
//! come from the files it is one of the named [`ASSUMPTIONS`], printed with the plan.

use serde::Serialize;

use super::knob::{ApplyKind, FaultScope};
use crate::config::{ArrivalKind, TaskSpec, Topology, Workload, WorkloadPlan};

/// A1: trivial tasks per second a burst (and the warm-up) is assumed to run at.
/// `topologies/ha.toml` records 3,300 trivial tasks/s on a 2-core machine even with only
/// 8 deliveries in flight (hab's worker streams 256); the estimate takes under a third of
/// that so that a slower machine still fits.
pub const BURST_TASKS_PER_S: f64 = 1000.0;
/// A2: seconds per workload repetition to drain its last results and write its figures.
pub const WORKLOAD_OVERHEAD_S: f64 = 1.0;
/// A3: seconds for a RabbitMQ node to boot (3.5–4.9 s measured, notes/servers.md).
pub const BROKER_BOOT_S: f64 = 5.0;
/// A3: seconds per node joining the cluster (stop_app, join_cluster, start_app: ~2.1 s).
pub const BROKER_JOIN_S: f64 = 2.1;
/// A3: seconds for the Redis side to be ready (data nodes, replication, Sentinel quorum:
/// ~2.2 s measured).
pub const REDIS_SIDE_S: f64 = 2.2;
/// A4: seconds to restart the workers and reconnect the producer with new client settings.
pub const RECONNECT_S: f64 = 2.0;
/// A5: seconds after a workload with faults stops publishing until its last fault is
/// restored, the stack healthy and its tasks drained (the default sweep on 2 cores: 0–38 s
/// per workload, mean about 10 s; a slow check interval or a paused Redis master is at the
/// long end).
pub const FAULT_TAIL_S: f64 = 10.0;
/// A7: seconds per cell run beyond its workloads: starting the workers, the last look and
/// the run's files (the default sweep on 2 cores: 6–8 s).
pub const RUN_OVERHEAD_S: f64 = 7.0;

/// One assumption of the estimate, as printed with the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assumption {
    /// Its label in the arithmetic (`A1`…).
    pub id: &'static str,
    /// What is assumed and why.
    pub text: String,
}

/// Every assumption the estimate makes.
pub fn assumptions() -> Vec<Assumption> {
    let a = |id, text: String| Assumption { id, text };
    vec![
        a(
            "A1",
            format!(
                "bursts and warm-ups run at {BURST_TASKS_PER_S:.0} trivial tasks/s \
                 (topologies/ha.toml records 3,300/s on 2 cores even with only 8 tasks in flight; \
                 under a third of it leaves room)"
            ),
        ),
        a(
            "A2",
            format!(
                "{WORKLOAD_OVERHEAD_S:.0} s per workload repetition to drain its last results and \
                 write its figures"
            ),
        ),
        a(
            "A3",
            format!(
                "a bring-up takes {BROKER_BOOT_S:.0} s for the RabbitMQ nodes to boot, \
                 {BROKER_JOIN_S} s per node joining the cluster and {REDIS_SIDE_S} s for the \
                 Redis side (measured, notes/servers.md), one after the other"
            ),
        ),
        a(
            "A4",
            format!(
                "reconnecting the clients (workers restarted) takes {RECONNECT_S:.0} s; an HAProxy \
                 reload waits rise × check_interval of the new settings; SENTINEL SET and \
                 CONFIG SET take effect at once"
            ),
        ),
        a(
            "A5",
            format!(
                "a workload with faults takes {FAULT_TAIL_S:.0} s after it stops publishing for \
                 its last fault to be restored, the stack to be healthy and its tasks drained \
                 (measured: 0–38 s, mean about 10 s; no repetition waits for health beyond its \
                 `every`)"
            ),
        ),
        a(
            "A6",
            "the baseline runs the plan's fault-free workloads (the cost phase) at the start \
             and again at the end, each time on a stack of its own"
                .to_string(),
        ),
        a(
            "A7",
            format!(
                "{RUN_OVERHEAD_S:.0} s per run beyond its workloads: starting the workers, the \
                 last look, writing the run's files"
            ),
        ),
    ]
}

/// One workload of the plan, as a sweep cell runs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseEstimate {
    /// The workload's name.
    pub workload: String,
    /// The side its faults hit (absent: no faults — the cost phase, run in every cell).
    pub scope: Option<FaultScope>,
    /// Its faults in words, e.g. `3 × kill of broker.primary every 12s`.
    pub faults: Vec<String>,
    /// For a workload of one repeated fault: its repetitions K and `every` in seconds.
    pub repetitions: Option<(u32, f64)>,
    /// Estimated seconds, all repetitions included.
    pub seconds: f64,
    /// How the seconds were reckoned, e.g. `7200 tasks ÷ 200/s + 1 s (A2)`.
    pub arithmetic: String,
}

impl PhaseEstimate {
    /// Whether a cell whose knobs affect `scope` runs this workload.
    pub fn runs_in(&self, scope: FaultScope) -> bool {
        self.scope
            .is_none_or(|s| scope.covers(s) || s == FaultScope::Both)
    }
}

/// Every workload of `plan`, estimated on `topology`.
pub fn phases(plan: &WorkloadPlan, topology: &Topology) -> Vec<PhaseEstimate> {
    plan.workloads
        .iter()
        .map(|w| phase(plan, w, topology))
        .collect()
}

fn phase(plan: &WorkloadPlan, w: &Workload, topology: &Topology) -> PhaseEstimate {
    let (once, how) = one_run(plan, w, topology);
    let idle = w.idle_before.map_or(0.0, |d| d.as_secs_f64());
    let mut arithmetic = if w.repeat > 1 {
        format!("{} × ({how} + {WORKLOAD_OVERHEAD_S:.0} s A2)", w.repeat)
    } else {
        format!("{how} + {WORKLOAD_OVERHEAD_S:.0} s A2")
    };
    if idle > 0.0 {
        arithmetic.push_str(&format!(" + {idle:.0} s idle before"));
    }
    let tail = if w.faults.is_empty() {
        0.0
    } else {
        arithmetic.push_str(&format!(" + {FAULT_TAIL_S:.0} s A5"));
        FAULT_TAIL_S
    };
    let scope = w
        .faults
        .iter()
        .map(|f| FaultScope::of_role(f.target))
        .reduce(FaultScope::union);
    let faults = w
        .faults
        .iter()
        .map(|f| {
            let length = match (f.duration, f.duration_max) {
                (Some(min), Some(max)) => format!(
                    "{}–{}",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
                (Some(d), None) => humantime::format_duration(d).to_string(),
                _ => String::new(),
            };
            let what = match f.kind {
                crate::fault::FaultKind::Pause if !length.is_empty() => format!("{length} pause"),
                crate::fault::FaultKind::Throttle => format!(
                    "{length} throttle to {} % of a core",
                    f.cpu_percent.unwrap_or_default()
                ),
                _ => f.kind.as_str().to_string(),
            };
            match f.every {
                Some(e) if f.repeat > 1 => format!(
                    "{} × {what} of {} every {}",
                    f.repeat,
                    f.target,
                    humantime::format_duration(e)
                ),
                _ => format!(
                    "{what} of {} at {}",
                    f.target,
                    humantime::format_duration(f.at)
                ),
            }
        })
        .collect();
    let repetitions = match w.faults.as_slice() {
        [f] => f.every.map(|e| (f.repeat, e.as_secs_f64())),
        _ => None,
    };
    PhaseEstimate {
        workload: w.name.clone(),
        scope,
        faults,
        repetitions,
        seconds: f64::from(w.repeat) * (once + WORKLOAD_OVERHEAD_S) + idle + tail,
        arithmetic,
    }
}

/// Seconds of one repetition of `w` before its overhead, and how they were reckoned.
fn one_run(plan: &WorkloadPlan, w: &Workload, topology: &Topology) -> (f64, String) {
    let n = w.count as f64;
    let service = match w.task {
        TaskSpec::Sleep { seconds } => seconds,
        _ => 0.0,
    };
    match (w.arrival, w.rate_per_s) {
        (ArrivalKind::Rate, Some(rate)) => {
            let mut how = format!("{} tasks ÷ {}/s", w.count, rate);
            if service > 0.0 {
                how.push_str(&format!(" + {service} s sleep"));
            }
            (n / rate + service, how)
        }
        _ => match w.task {
            TaskSpec::Trivial => (
                n / BURST_TASKS_PER_S,
                format!("{} tasks ÷ {BURST_TASKS_PER_S:.0}/s A1", w.count),
            ),
            TaskSpec::Sleep { seconds } => {
                let slots =
                    u64::from(topology.workers.count) * u64::from(topology.workers.concurrency());
                let waves = w.count.div_ceil(slots.max(1));
                (
                    waves as f64 * seconds,
                    format!("{waves} waves of {slots} slots × {seconds} s"),
                )
            }
            TaskSpec::WriteZeros { .. } | TaskSpec::Factorial { .. } => {
                let bound = w.drain_timeout.unwrap_or(plan.drain_timeout).as_secs_f64();
                (
                    bound,
                    format!("at most its drain timeout {bound:.0} s (disk or CPU bound)"),
                )
            }
        },
    }
}

/// Seconds to bring `topology`'s stack up (A3); zero for an external stack.
pub fn bring_up_seconds(topology: &Topology) -> f64 {
    if topology.is_external() {
        return 0.0;
    }
    BROKER_BOOT_S
        + BROKER_JOIN_S * f64::from(topology.broker.nodes.saturating_sub(1))
        + REDIS_SIDE_S
}

/// Seconds to change a live stack from one cell's settings to the next (A4), given how
/// the changed knobs are applied and the new cell's topology.
pub fn reconfigure_seconds(kinds: &[ApplyKind], topology: &Topology) -> f64 {
    kinds
        .iter()
        .map(|k| match k {
            ApplyKind::ProxyReload => topology
                .proxy
                .as_ref()
                .map_or(0.0, |p| f64::from(p.rise) * p.check_interval.as_secs_f64()),
            ApplyKind::ReconnectClients => RECONNECT_S,
            ApplyKind::SentinelSet | ApplyKind::RedisConfigSet | ApplyKind::BringUp => 0.0,
        })
        .sum()
}

/// Seconds of the warm-up (A1).
pub fn warm_up_seconds(plan: &WorkloadPlan) -> f64 {
    f64::from(plan.warmup_tasks) / BURST_TASKS_PER_S
}

/// A duration in seconds as `3m 20s` (whole seconds, rounded up).
pub fn format_seconds(s: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(s.max(0.0).ceil() as u64)).to_string()
}
