//! run.json as data: everything about a run, the source of truth for `hab report`,
//! `hab merge` and `hab compare`. Its writer is the exporter of run.json; the run command
//! assembles it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::summary::WorkloadReport;

/// How a run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still going (files written mid-run say this); where every run.json starts.
    #[default]
    Running,
    /// Every workload ran to the end of its drain.
    Complete,
    /// Stopped by Ctrl-C / SIGTERM; what was measured until then is kept.
    Interrupted,
    /// Stopped by an error (see `error`).
    Failed,
}

/// The machine the run happened on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs available to hab.
    pub cores: usize,
    /// Total memory, bytes.
    pub memory_bytes: u64,
    /// Kernel release (`uname -r`).
    pub kernel: String,
}

impl Machine {
    /// Read the current machine.
    pub fn current() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let memory_bytes = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map(|kb| kb * 1024)
            .unwrap_or(0);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        Machine {
            cores,
            memory_bytes,
            kernel,
        }
    }
}

/// What the workers did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WorkersReport {
    /// Worker kind (`hab`).
    pub kind: String,
    /// Worker processes.
    pub count: u32,
    /// Tasks executed at once per worker.
    pub concurrency: u32,
    /// Unacknowledged deliveries per worker.
    pub prefetch: u16,
    /// `late` or `early`.
    pub acks: String,
    /// Worker processes that died during the run and were restarted.
    pub restarts: u64,
    /// Executions reported through the side channel (warm-up included).
    pub executions: u64,
    /// Messages rejected without execution, by reason.
    pub rejected: BTreeMap<String, u64>,
    /// Result records the workers stored in a state that is not final (STARTED with
    /// Celery's `task_track_started`, RETRY, custom states), as hab was notified of them:
    /// progress, which never settles a task (warm-up included).
    #[serde(default)]
    pub progress_results: u64,
    /// Messages the workers refused by rule (a limit, the scratch directory, an
    /// unsupported Celery feature, a task that kept killing its worker) and `expired`
    /// ones: settled with a `FAILURE` (`REVOKED`) result and acknowledged, never run.
    #[serde(default)]
    pub refused: BTreeMap<String, u64>,
    /// Tasks a worker process was running when it died (no finish in its side channel):
    /// the crashes' suspects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crashes: Vec<WorkerCrash>,
}

/// A worker process that ended while running tasks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerCrash {
    /// The worker's name (`w1`, `w1r1`, …).
    pub worker: String,
    /// The tasks it had started and not finished.
    pub task_ids: Vec<String>,
}

/// The content of run.json. Its `Default` is a run that has just started: no figures yet.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunReport {
    /// hab's version.
    pub hab_version: String,
    /// How the run ended.
    pub status: RunStatus,
    /// The error that stopped the run, if any.
    pub error: Option<String>,
    /// Run name (`<topology>-<workload plan>`).
    pub name: String,
    /// Start of the run, unix ms.
    pub started_unix_ms: i64,
    /// End of the run, unix ms (absent while running).
    pub finished_unix_ms: Option<i64>,
    /// Path of the topology file.
    pub topology_file: String,
    /// Path of the workload file.
    pub workload_file: String,
    /// Where the topology came from: the path read, or `builtin:NAME.toml` for a
    /// topology built into hab (absent in run directories of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_source: Option<String>,
    /// Where the workload plan came from, as `topology_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_source: Option<String>,
    /// The topology as parsed (defaults filled in).
    pub topology: serde_json::Value,
    /// The workload plan as parsed.
    pub workload_plan: serde_json::Value,
    /// The machine.
    pub machine: Machine,
    /// Server versions (rabbitmq, erlang, redis).
    pub versions: BTreeMap<String, String>,
    /// Time to bring the stack up until every server answered its readiness probe, ms.
    pub bringup_ms: Option<u64>,
    /// Bring-up time per phase (servers, cluster join, Sentinels, proxy …), ms.
    #[serde(default)]
    pub bringup_phases_ms: BTreeMap<String, u64>,
    /// Time from starting the workers until all consumed the queue, ms.
    pub workers_ready_ms: Option<u64>,
    /// Worker facts.
    pub workers: WorkersReport,
    /// Results seen for ids that are not in the ledger (warm-up tasks excluded).
    pub unknown_results: u64,
    /// Client events by kind (error, reconnected, nack, republish); each one is in
    /// events.csv with its time.
    #[serde(default)]
    pub client_events: BTreeMap<String, u64>,
    /// Per workload, in plan order.
    pub workloads: Vec<WorkloadReport>,
    /// One row per injected fault (failover anatomy), in the order they fired.
    #[serde(default)]
    pub failover: Vec<crate::metrics::failover::FailoverRow>,
    /// The servers' own state at the end of the run, read before teardown: an
    /// independent check of the ledger.
    #[serde(default)]
    pub final_state: Option<FinalState>,
    /// Per second of the run: published, completed, errors, latency (timeline.csv).
    #[serde(default)]
    pub timeline: Vec<crate::metrics::timeline::TimelineRow>,
    /// The stack's raw limits, measured on the same stack before the workloads
    /// (`--calibrate`), so the report can show the task path as a fraction of them.
    #[serde(default)]
    pub calibration: Option<super::Calibration>,
    /// What HAProxy's idle timeouts did: connections cut (from HAProxy's own log), client
    /// errors, affected tasks. Only for runs through HAProxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle: Option<crate::metrics::idle::IdleReport>,
    /// What the producer's policy (`[producer]`: block, retry, breaker) did around broker
    /// faults, and every circuit-breaker state change. Only for runs with a policy other
    /// than `block` or with a fault on the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<crate::metrics::outage::ProducerReport>,
    /// How each server-side observer (HAProxy stats, Sentinels) fared: one that could
    /// not reach its server is reported, never silently dropped from the anatomy.
    #[serde(default)]
    pub observers: Vec<crate::observe::server::ObserverStatus>,
    /// The generator shard this run was (`hab run --shard I/N`), with what `hab merge`
    /// needs beyond the other files. Only for sharded runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<super::ShardReport>,
    /// The shard runs this run was merged from (`hab merge`). Only for merged runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<super::MergeReport>,
    /// Reconciliation reads that failed where their answer decides outcomes (the last read
    /// at a drain deadline, the read after the workers stopped): the tasks they could not
    /// settle are `unknown`, never `result_lost`. Absent when none failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_reads: Vec<FailedRead>,
    /// Which clock every process of the run stamped with. Absent in runs made before hab
    /// stamped every interval from one monotonic clock (their worker and result times
    /// were the wall clock), and in merged runs (see each shard's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockReport>,
    /// What the run checked of its own figures ([`crate::invariants`]); empty in runs
    /// written before the check existed.
    #[serde(default)]
    pub invariants: Vec<Invariant>,
    /// The sweep cell this run measured (`hab sweep`): its knob values, how the live stack
    /// was configured (brought up, or reused and reconfigured) and what was read back.
    /// Only for runs of a sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_cell: Option<super::sweep::CellSetting>,
}

/// One invariant of a run's figures, checked after every workload and at the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invariant {
    /// Its name (`one_outcome_per_task`, …).
    pub name: String,
    /// Whether it held.
    pub holds: bool,
    /// What was checked, or what broke it.
    pub detail: String,
}

/// The clocks of a run ([`crate::clock`]): every stamp is the monotonic clock written as
/// unix µs through an anchor; stamps through anchors on one time line are comparable
/// exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReport {
    /// The run process's anchor: intended, published, confirmed and result-seen times,
    /// faults and hab's own observers (handed to every worker the run starts).
    pub anchor: crate::clock::ClockAnchor,
    /// Every worker process's anchor, as its side channel's `clock` line says (one per
    /// process that opened a side-channel file; none for files written before that line
    /// existed).
    #[serde(default)]
    pub workers: Vec<crate::clock::ProcessClock>,
    /// Worker processes whose stamps are not on the run's time line (another boot, or a
    /// worker not started by this run): the queue wait and result delay of their tasks
    /// mix two clocks.
    #[serde(default)]
    pub workers_off_time_line: u64,
    /// The wall clock minus hab's clock when the run ended, µs: how far the wall clock
    /// moved against the monotonic one during the run — the error bound of a time read
    /// from a server's own log (Sentinel, HAProxy, RabbitMQ write the wall clock).
    pub wall_minus_clock_us_at_end: i64,
}

impl ClockReport {
    /// The report for this process's anchor and the workers' clocks.
    pub fn new(workers: Vec<crate::clock::ProcessClock>) -> Self {
        ClockReport {
            anchor: crate::clock::anchor().clone(),
            workers_off_time_line: workers.iter().filter(|w| !w.same_time_line).count() as u64,
            workers,
            wall_minus_clock_us_at_end: crate::clock::wall_minus_clock_us(),
        }
    }
}

/// A reconciliation read that failed where its answer decides outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRead {
    /// The workload whose drain deadline it was; empty for the read after the workers
    /// stopped (it covers every workload).
    pub workload: String,
    /// Which read: `deadline` (the last one of a workload) or `after_workers_stopped`.
    pub read: String,
    /// When it was given up, unix ms.
    pub at_unix_ms: i64,
    /// Attempts made (one second apart).
    pub attempts: u32,
    /// The last attempt's error.
    pub error: String,
    /// Tasks whose result it was to read.
    pub tasks: u64,
}

/// What the broker and the backend held when the last workload had drained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalState {
    /// Messages still ready in the `celery` queue (never delivered).
    pub queue_ready: u64,
    /// Consumers on the queue at that moment.
    pub queue_consumers: u64,
    /// `celery-task-meta-*` keys in the result backend (warm-up tasks included).
    pub result_keys: u64,
}

/// Shared scaffolding for unit tests across the crate.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A complete standalone run's record with no workloads, faults or calibration.
    pub(crate) fn empty_report() -> RunReport {
        RunReport {
            hab_version: "0.0.0".into(),
            status: RunStatus::Complete,
            name: "standalone-smoke".into(),
            started_unix_ms: 1,
            finished_unix_ms: Some(2),
            topology_file: "t.toml".into(),
            workload_file: "w.toml".into(),
            topology: serde_json::json!({"name": "standalone"}),
            workload_plan: serde_json::json!({"name": "smoke"}),
            bringup_ms: Some(4000),
            workers_ready_ms: Some(50),
            ..Default::default()
        }
    }
}
