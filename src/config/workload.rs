//! The workload file: what is driven through the stack (tasks, counts, arrival).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Diagnostic;
use super::check_name;

/// Most tasks one workload may publish; keeps the per-task ledger within memory.
pub const MAX_COUNT: u64 = 10_000_000;
/// Highest `rate_per_s` accepted, in tasks per second.
pub const MAX_RATE_PER_S: f64 = 1_000_000.0;
/// Longest `sleep` task, in seconds.
pub const MAX_SLEEP_S: f64 = 3600.0;
/// Largest `write_zeros` file, in bytes (100 GB).
pub const MAX_WRITE_BYTES: u64 = 100_000_000_000;
/// Largest `factorial` argument.
pub const MAX_FACTORIAL_N: u64 = 10_000_000;
/// Most warm-up tasks.
pub const MAX_WARMUP_TASKS: u32 = 1_000_000;
/// Longest idle gap before a workload (`idle_before`).
pub const MAX_IDLE_BEFORE: Duration = Duration::from_secs(3600);
/// Most repetitions of one workload within a run (`repeat`).
pub const MAX_REPEAT: u32 = 100;

fn is_one_run(n: &u32) -> bool {
    *n == 1
}

/// A sequence of workloads run one after another: one workload file, e.g. `workloads/seed.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadPlan {
    /// Short identifier, used in run directory names; only `[A-Za-z0-9_.-]`.
    pub name: String,
    /// One line for humans, copied into reports; empty if omitted.
    #[serde(default)]
    pub description: String,
    /// Trivial tasks run (and not measured) before the first workload, to warm connections.
    #[serde(default)]
    pub warmup_tasks: u32,
    /// After a workload's last publish, how long to wait for its results before counting
    /// the missing ones as lost.
    #[serde(default = "default_drain_timeout", with = "super::duration")]
    pub drain_timeout: Duration,
    /// Where `write_zeros` files go; `None` means the run directory's `scratch/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_dir: Option<PathBuf>,
    /// The seed of fault lengths drawn at random (`duration_max`; absent:
    /// [`draw::DEFAULT_SEED`]): the same file and seed give the same lengths on every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The workloads, in the order they run (TOML: `[[workload]]` tables).
    #[serde(rename = "workload", default)]
    pub workloads: Vec<Workload>,
}

/// One measured batch of identical tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Identifier within the plan, used in reports; unique, only `[A-Za-z0-9_.-]`.
    pub name: String,
    /// The task every message of this workload carries.
    pub task: TaskSpec,
    /// Number of tasks published.
    pub count: u64,
    /// When each task is published.
    pub arrival: ArrivalKind,
    /// Publish rate in tasks per second; required with `arrival = "rate"`, else forbidden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<f64>,
    /// This workload's own drain timeout (absent: the plan's `drain_timeout`).
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub drain_timeout: Option<Duration>,
    /// An idle gap before this workload: after the previous workload drained, hab
    /// publishes nothing for this long, so every client connection sits idle (what an
    /// HAProxy `timeout client`/`timeout server` shorter than the gap cuts). The
    /// workload's clock (`at` of its faults, intended starts) begins after the gap.
    /// Absent: no gap.
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_before: Option<Duration>,
    /// How many times the workload runs, back to back within the run (1 to
    /// [`MAX_REPEAT`]; absent: once). Each repetition publishes `count` tasks on its own
    /// schedule and drains (to its drain deadline) before the next starts; each has its
    /// own histograms and throughput, and the workload's figures are their merge
    /// (percentiles from the merged histograms, throughput as median, min and max). Only
    /// without faults and `idle_before`: a fault's own `repeat` repeats the fault.
    #[serde(default = "default_repeat", skip_serializing_if = "is_one_run")]
    pub repeat: u32,
    /// Faults injected while this workload runs (TOML: `[[workload.fault]]`).
    #[serde(default, rename = "fault", skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultSpec>,
}

/// A fault injected while a workload runs:
/// `[[workload.fault]] target = "broker.primary", kind = "kill", at = "5s", restart_after = "5s", repeat = 5, every = "20s"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What to break, by role, resolved when the fault fires (e.g. `broker.primary`).
    pub target: crate::fault::Role,
    /// How: `kill` (SIGKILL), `pause` (SIGSTOP for `duration`), `stop` (graceful),
    /// `failover` (SENTINEL FAILOVER), `partition` (cut off from its peers for
    /// `duration`), `throttle` (capped at `cpu_percent` % of a core for `duration`).
    pub kind: crate::fault::FaultKind,
    /// When the first repetition fires, as an offset from the workload's start.
    #[serde(with = "super::duration")]
    pub at: Duration,
    /// How long a `pause` lasts before SIGCONT, a `partition` before it heals, a
    /// `throttle` before the cap is lifted; only for those three.
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
    /// With `duration`: each repetition lasts a length drawn uniformly between `duration`
    /// and this (whole milliseconds), from the plan's `seed`.
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration_max: Option<Duration>,
    /// The lengths drawn for each repetition, ms (filled in when the plan is loaded, never
    /// read from a file; kept in run.json).
    #[serde(default, skip_deserializing, skip_serializing_if = "Vec::is_empty")]
    pub drawn_ms: Vec<u64>,
    /// For `throttle`: the share of one core the target gets meanwhile, in % (e.g. 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// For `kill` and `stop`: bring the node back after this long (absent: it stays down).
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub restart_after: Option<Duration>,
    /// For a Redis data node that is killed or stopped: how it comes back (absent:
    /// `replica`, the safe restart; `master`: with its own config, the stale master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_as: Option<crate::fault::RestartAs>,
    /// How many times the fault is applied; each repetition waits for full health first.
    #[serde(default = "default_repeat")]
    pub repeat: u32,
    /// Time between the starts of repetitions (required when `repeat` > 1). A repetition
    /// whose time comes before the stack is healthy again waits for it.
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub every: Option<Duration>,
}

/// Most repetitions of one fault.
pub const MAX_FAULT_REPEAT: u32 = 100;

fn default_repeat() -> u32 {
    1
}

impl FaultSpec {
    /// The planned offset of repetition `k` (0-based) from the workload's start.
    pub fn planned_at(&self, k: u32) -> Duration {
        self.at + self.every.unwrap_or_default() * k
    }

    /// How long the target is out per repetition at most (pause length or time until
    /// restart; with `duration_max`, that).
    pub fn out_for(&self) -> Option<Duration> {
        match self.kind {
            crate::fault::FaultKind::Pause
            | crate::fault::FaultKind::Partition
            | crate::fault::FaultKind::Throttle => self.duration_max.or(self.duration),
            crate::fault::FaultKind::Failover => None,
            _ => self.restart_after,
        }
    }

    /// How long the target is out in repetition `k` (0-based): the length drawn for it,
    /// else [`FaultSpec::out_for`].
    pub fn out_for_repetition(&self, k: u32) -> Option<Duration> {
        match self.drawn_ms.get(k as usize) {
            Some(ms) => Some(Duration::from_millis(*ms)),
            None => self.out_for(),
        }
    }

    /// `duration` given to a kind that has none.
    fn duration_not_used(&self, at: &str, out: &mut Vec<Diagnostic>) {
        use crate::fault::FaultKind;
        let why = match self.kind {
            FaultKind::Failover => {
                "only used with kind = \"pause\"; a failover has no duration (the Sentinels \
                 demote the old master themselves)"
            }
            _ => "only used with kind = \"pause\"; for kill and stop use restart_after",
        };
        out.push(Diagnostic::new(format!("{at}.duration"), why));
    }

    fn validate_into(&self, at: &str, workload_span: Option<Duration>, out: &mut Vec<Diagnostic>) {
        use crate::fault::FaultKind;
        draw::validate(self, at, out);
        // What `duration` means for the kinds that need one.
        let meaning = match self.kind {
            FaultKind::Pause => Some("how long the target stays frozen, e.g. \"5s\""),
            FaultKind::Partition => Some("how long the target is cut off, e.g. \"5s\""),
            FaultKind::Throttle => Some("how long the target is starved, e.g. \"2s\""),
            FaultKind::Kill | FaultKind::Stop | FaultKind::Failover => None,
        };
        match (meaning, self.duration) {
            (Some(what), None) => out.push(Diagnostic::new(
                format!("{at}.duration"),
                format!("required with kind = \"{}\": {what}", self.kind.as_str()),
            )),
            (Some(_), Some(d)) if d.is_zero() => out.push(Diagnostic::new(
                format!("{at}.duration"),
                "must be greater than zero",
            )),
            (Some(_), Some(_)) | (None, None) => {}
            (None, Some(_)) => self.duration_not_used(at, out),
        }
        if self.kind == FaultKind::Failover {
            if self.target != crate::fault::Role::BackendMaster {
                out.push(Diagnostic::new(
                    format!("{at}.target"),
                    format!(
                        "kind = \"failover\" (SENTINEL FAILOVER) only applies to \
                         \"backend.master\", got \"{}\"",
                        self.target
                    ),
                ));
            }
            if self.restart_after.is_some() {
                out.push(Diagnostic::new(
                    format!("{at}.restart_after"),
                    "not used with kind = \"failover\": the old master stays alive and is \
                     demoted by the Sentinels; remove it",
                ));
            }
        }
        if let Some(how) = self.restart_as {
            use crate::fault::Role;
            if !matches!(self.kind, FaultKind::Kill | FaultKind::Stop) {
                out.push(Diagnostic::new(
                    format!("{at}.restart_as"),
                    format!(
                        "only used with kind = \"kill\" or \"stop\" (how the node comes back), \
                         got kind = \"{}\"",
                        self.kind.as_str()
                    ),
                ));
            } else if self.restart_after.is_none() {
                out.push(Diagnostic::new(
                    format!("{at}.restart_as"),
                    format!(
                        "restart_as = \"{}\" needs restart_after: when to bring the node back",
                        how.as_str()
                    ),
                ));
            }
            if !matches!(self.target, Role::BackendMaster | Role::BackendNode(_)) {
                out.push(Diagnostic::new(
                    format!("{at}.restart_as"),
                    format!(
                        "only for Redis data nodes (\"backend.master\" or \"backend.node[i]\"), \
                         got target = \"{}\"; allowed values: \"replica\", \"master\"",
                        self.target
                    ),
                ));
            }
        }
        if self.kind == FaultKind::Partition {
            use crate::fault::Role;
            if self.target == Role::Proxy {
                out.push(Diagnostic::new(
                    format!("{at}.target"),
                    "kind = \"partition\" applies to broker nodes (\"broker.primary\", \
                     \"broker.queue_leader\", \"broker.node[i]\"), Redis data nodes \
                     (\"backend.master\", \"backend.replica\", \"backend.node[i]\") and \
                     Sentinels (\"sentinel[i]\"), got \"proxy\": HAProxy stays in the root \
                     namespace with the clients",
                ));
            }
            if self.restart_after.is_some() {
                out.push(Diagnostic::new(
                    format!("{at}.restart_after"),
                    "not used with kind = \"partition\": the target keeps running and the \
                     partition heals after `duration`",
                ));
            }
        }
        match (self.kind, self.cpu_percent) {
            (FaultKind::Throttle, None) => out.push(Diagnostic::new(
                format!("{at}.cpu_percent"),
                "required with kind = \"throttle\": the share of one core the target keeps, \
                 in %, e.g. 5",
            )),
            (FaultKind::Throttle, Some(p)) if !(p > 0.0 && p < 100.0) => out.push(Diagnostic::new(
                format!("{at}.cpu_percent"),
                format!("must be above 0 and below 100 (% of one core), got {p}"),
            )),
            (FaultKind::Throttle, Some(_)) => {}
            (_, Some(_)) => out.push(Diagnostic::new(
                format!("{at}.cpu_percent"),
                format!(
                    "only used with kind = \"throttle\", got kind = \"{}\"",
                    self.kind.as_str()
                ),
            )),
            (_, None) => {}
        }
        if self.kind == FaultKind::Throttle && self.restart_after.is_some() {
            out.push(Diagnostic::new(
                format!("{at}.restart_after"),
                "not used with kind = \"throttle\": the target keeps running and gets its CPU \
                 back after `duration`",
            ));
        }
        if self.kind == FaultKind::Pause && self.restart_after.is_some() {
            out.push(Diagnostic::new(
                format!("{at}.restart_after"),
                "only used with kind = \"kill\" or \"stop\"; a paused target resumes after `duration`",
            ));
        }
        if !(1..=MAX_FAULT_REPEAT).contains(&self.repeat) {
            out.push(Diagnostic::new(
                format!("{at}.repeat"),
                format!(
                    "must be between 1 and {MAX_FAULT_REPEAT}, got {}",
                    self.repeat
                ),
            ));
        }
        match self.every {
            None if self.repeat > 1 => out.push(Diagnostic::new(
                format!("{at}.every"),
                "required when repeat > 1: the time between repetitions, e.g. \"20s\"",
            )),
            Some(e) if self.out_for().is_some_and(|o| e <= o) => out.push(Diagnostic::new(
                format!("{at}.every"),
                format!(
                    "must be longer than the time the target is out ({}), or repetitions overlap",
                    humantime::format_duration(self.out_for().unwrap_or_default())
                ),
            )),
            _ => {}
        }
        if let Some(span) = workload_span {
            let last = self.planned_at(self.repeat.saturating_sub(1));
            if last >= span {
                out.push(Diagnostic::new(
                    format!("{at}.at"),
                    format!(
                        "the last repetition is planned at {} but the workload publishes for only {}; \
                         raise count or lower at/every/repeat",
                        humantime::format_duration(last),
                        humantime::format_duration(span)
                    ),
                ));
            }
        }
    }
}

/// When the tasks of a workload are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrivalKind {
    /// All at t0, as fast as the producer can publish.
    Burst,
    /// Task i at t0 + i / rate_per_s (open loop: a slow stack does not slow the schedule).
    Rate,
}

/// A task and its arguments (TOML: `task = { kind = "sleep", seconds = 10.0 }`).
///
/// Serialized internally tagged (`kind` next to the arguments). Deserialized through a flat
/// table (`RawTaskSpec`), because serde's own internally tagged enums accept unknown fields
/// next to a unit variant (`{ kind = "trivial", extra = 1 }` would pass) and lose the
/// position of a bad field inside the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "RawTaskSpec")]
pub enum TaskSpec {
    /// Returns at once: measures the queue itself.
    Trivial,
    /// Sleeps without using CPU: measures slot occupancy.
    Sleep {
        /// Sleep length, in seconds.
        seconds: f64,
    },
    /// Writes a file of zeros and fsyncs it: measures disk-bound tasks.
    WriteZeros {
        /// File size, in bytes.
        bytes: u64,
    },
    /// Computes n! with big integers: measures CPU-bound tasks.
    Factorial {
        /// The argument n.
        n: u64,
    },
}

impl TaskSpec {
    /// The Celery task name in the message header, e.g. `"hab.sleep"`.
    pub fn task_name(&self) -> &'static str {
        match self {
            TaskSpec::Trivial => "hab.trivial",
            TaskSpec::Sleep { .. } => "hab.sleep",
            TaskSpec::WriteZeros { .. } => "hab.write_zeros",
            TaskSpec::Factorial { .. } => "hab.factorial",
        }
    }
}

/// The `task` table as written: `kind` plus every argument any kind takes, unknown keys
/// rejected with their position; [`TaskSpec::try_from`] then checks them against `kind`.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = r#"a task table such as { kind = "trivial" } or { kind = "sleep", seconds = 10.0 }"#
)]
struct RawTaskSpec {
    kind: Option<TaskKind>,
    seconds: Option<f64>,
    bytes: Option<u64>,
    n: Option<u64>,
}

/// The `kind` key of a task table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TaskKind {
    Trivial,
    Sleep,
    WriteZeros,
    Factorial,
}

impl TaskKind {
    fn as_str(self) -> &'static str {
        match self {
            TaskKind::Trivial => "trivial",
            TaskKind::Sleep => "sleep",
            TaskKind::WriteZeros => "write_zeros",
            TaskKind::Factorial => "factorial",
        }
    }

    /// The argument this kind takes, with a description for error messages.
    fn argument(self) -> Option<(&'static str, &'static str)> {
        match self {
            TaskKind::Trivial => None,
            TaskKind::Sleep => Some(("seconds", "how long to sleep, in seconds, e.g. 10.0")),
            TaskKind::WriteZeros => Some(("bytes", "file size in bytes, e.g. 1000000000")),
            TaskKind::Factorial => Some(("n", "the argument of n!, e.g. 100000")),
        }
    }
}

impl TryFrom<RawTaskSpec> for TaskSpec {
    type Error = String;

    fn try_from(raw: RawTaskSpec) -> Result<Self, String> {
        let kind = raw.kind.ok_or(
            "missing field `kind`: one of \"trivial\", \"sleep\", \"write_zeros\", \"factorial\"",
        )?;
        let given = [
            ("seconds", raw.seconds.is_some()),
            ("bytes", raw.bytes.is_some()),
            ("n", raw.n.is_some()),
        ];
        let wanted = kind.argument();
        if let Some((extra, _)) = given
            .iter()
            .find(|(field, present)| *present && Some(*field) != wanted.map(|w| w.0))
        {
            let takes = match wanted {
                None => "no other fields".to_string(),
                Some((field, _)) => format!("only `{field}`"),
            };
            return Err(format!(
                "field `{extra}` is not used by kind = \"{}\" (it takes {takes})",
                kind.as_str()
            ));
        }
        let missing = || match wanted {
            Some((field, what)) => format!(
                "missing field `{field}`: kind = \"{}\" needs it ({what})",
                kind.as_str()
            ),
            None => String::new(),
        };
        Ok(match kind {
            TaskKind::Trivial => TaskSpec::Trivial,
            TaskKind::Sleep => TaskSpec::Sleep {
                seconds: raw.seconds.ok_or_else(missing)?,
            },
            TaskKind::WriteZeros => TaskSpec::WriteZeros {
                bytes: raw.bytes.ok_or_else(missing)?,
            },
            TaskKind::Factorial => TaskSpec::Factorial {
                n: raw.n.ok_or_else(missing)?,
            },
        })
    }
}

fn default_drain_timeout() -> Duration {
    Duration::from_secs(60)
}

impl WorkloadPlan {
    /// Checks every cross-field and range rule and returns all problems (empty = valid).
    pub fn validate(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        check_name(&mut out, "name", &self.name);
        if self.warmup_tasks > MAX_WARMUP_TASKS {
            out.push(Diagnostic::new(
                "warmup_tasks",
                format!(
                    "must be at most {MAX_WARMUP_TASKS}, got {}",
                    self.warmup_tasks
                ),
            ));
        }
        if self.drain_timeout.is_zero() {
            out.push(Diagnostic::new(
                "drain_timeout",
                r#"must be greater than zero, e.g. "120s""#,
            ));
        }
        if self.workloads.is_empty() {
            out.push(Diagnostic::new(
                "workload",
                "at least one [[workload]] table is required",
            ));
        }
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, w) in self.workloads.iter().enumerate() {
            let at = if w.name.is_empty() {
                format!("workload[{i}]")
            } else {
                format!("workload[{i}] ({:?})", w.name)
            };
            check_name(&mut out, &format!("{at}.name"), &w.name);
            if !w.name.is_empty() {
                if let Some(first) = seen.get(w.name.as_str()) {
                    out.push(Diagnostic::new(
                        format!("{at}.name"),
                        format!(
                            "duplicate name (also used by workload[{first}]); each workload needs its own name"
                        ),
                    ));
                } else {
                    seen.insert(&w.name, i);
                }
            }
            w.validate_into(&at, &mut out);
        }
        out
    }
}

impl Workload {
    /// `count` tasks of `task` published at once, each repetition once, no faults (the
    /// warm-up's shape; tests start from it).
    pub fn burst(name: &str, task: TaskSpec, count: u64) -> Workload {
        Workload {
            name: name.into(),
            task,
            count,
            arrival: ArrivalKind::Burst,
            rate_per_s: None,
            drain_timeout: None,
            idle_before: None,
            repeat: 1,
            faults: Vec::new(),
        }
    }

    /// Pushes this workload's problems, located under `at` (e.g. `workload[1] ("sleep")`).
    fn validate_into(&self, at: &str, out: &mut Vec<Diagnostic>) {
        if let Some(gap) = self.idle_before
            && (gap.is_zero() || gap > MAX_IDLE_BEFORE)
        {
            out.push(Diagnostic::new(
                format!("{at}.idle_before"),
                format!(
                    "must be greater than zero and at most {}, got {} (or absent: no idle gap)",
                    humantime::format_duration(MAX_IDLE_BEFORE),
                    humantime::format_duration(gap)
                ),
            ));
        }
        if self.drain_timeout.is_some_and(|d| d.is_zero()) {
            out.push(Diagnostic::new(
                format!("{at}.drain_timeout"),
                r#"must be greater than zero, e.g. "30s" (or absent: the plan's drain_timeout)"#,
            ));
        }
        if !(1..=MAX_REPEAT).contains(&self.repeat) {
            out.push(Diagnostic::new(
                format!("{at}.repeat"),
                format!(
                    "must be between 1 and {MAX_REPEAT}, got {} (or absent: one run)",
                    self.repeat
                ),
            ));
        } else if self.repeat > 1 && !self.faults.is_empty() {
            // Each repetition would need its own fault schedule and failover rows, and a
            // fault's recovery would spill into the next repetition's figures.
            out.push(Diagnostic::new(
                format!("{at}.repeat"),
                format!(
                    "a workload with faults runs once, got {}; remove repeat (the fault's own `repeat` and `every` repeat the fault within the workload)",
                    self.repeat
                ),
            ));
        } else if self.repeat > 1 && self.idle_before.is_some() {
            out.push(Diagnostic::new(
                format!("{at}.repeat"),
                format!(
                    "a workload with an idle_before gap runs once, got {}; the idle matrix counts one gap per workload (remove repeat, or the gap)",
                    self.repeat
                ),
            ));
        }
        if !(1..=MAX_COUNT).contains(&self.count) {
            out.push(Diagnostic::new(
                format!("{at}.count"),
                format!("must be between 1 and {MAX_COUNT}, got {}", self.count),
            ));
        }
        match (self.arrival, self.rate_per_s) {
            (ArrivalKind::Rate, None) => out.push(Diagnostic::new(
                format!("{at}.rate_per_s"),
                "required when arrival = \"rate\" (a positive number of tasks per second)",
            )),
            (ArrivalKind::Rate, Some(r)) if !(r.is_finite() && r > 0.0 && r <= MAX_RATE_PER_S) => {
                out.push(Diagnostic::new(
                    format!("{at}.rate_per_s"),
                    format!(
                        "must be a number of tasks per second greater than 0 and at most {MAX_RATE_PER_S}, got {r}"
                    ),
                ))
            }
            (ArrivalKind::Burst, Some(_)) => out.push(Diagnostic::new(
                format!("{at}.rate_per_s"),
                "only used with arrival = \"rate\"; remove it or set arrival = \"rate\"",
            )),
            _ => {}
        }
        match self.task {
            TaskSpec::Trivial => {}
            TaskSpec::Sleep { seconds } => {
                if !(seconds.is_finite() && (0.0..=MAX_SLEEP_S).contains(&seconds)) {
                    out.push(Diagnostic::new(
                        format!("{at}.task.seconds"),
                        format!("must be between 0 and {MAX_SLEEP_S} seconds, got {seconds}"),
                    ));
                }
            }
            TaskSpec::WriteZeros { bytes } => {
                if !(1..=MAX_WRITE_BYTES).contains(&bytes) {
                    out.push(Diagnostic::new(
                        format!("{at}.task.bytes"),
                        format!("must be between 1 and {MAX_WRITE_BYTES} bytes, got {bytes}"),
                    ));
                }
            }
            TaskSpec::Factorial { n } => {
                if n > MAX_FACTORIAL_N {
                    out.push(Diagnostic::new(
                        format!("{at}.task.n"),
                        format!("must be at most {MAX_FACTORIAL_N}, got {n}"),
                    ));
                }
            }
        }
        // How long publishing lasts: faults must fall inside it. A burst publishes at once,
        // so its faults can only hit the drain; no bound is checked then.
        let span = match (self.arrival, self.rate_per_s) {
            (ArrivalKind::Rate, Some(r)) if r.is_finite() && r > 0.0 => {
                Some(Duration::from_secs_f64(self.count as f64 / r))
            }
            _ => None,
        };
        for (j, f) in self.faults.iter().enumerate() {
            f.validate_into(&format!("{at}.fault[{j}]"), span, out);
        }
    }
}

#[cfg(test)]
mod tests;

pub mod draw;
