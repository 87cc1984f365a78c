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
    /// `duration`).
    pub kind: crate::fault::FaultKind,
    /// When the first repetition fires, as an offset from the workload's start.
    #[serde(with = "super::duration")]
    pub at: Duration,
    /// How long a `pause` lasts before SIGCONT, or a `partition` before it heals; only
    /// for those two.
    #[serde(
        default,
        with = "super::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
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

    /// How long the target is out per repetition (pause length or time until restart).
    pub fn out_for(&self) -> Option<Duration> {
        match self.kind {
            crate::fault::FaultKind::Pause | crate::fault::FaultKind::Partition => self.duration,
            crate::fault::FaultKind::Failover => None,
            _ => self.restart_after,
        }
    }

    fn validate_into(&self, at: &str, workload_span: Option<Duration>, out: &mut Vec<Diagnostic>) {
        use crate::fault::FaultKind;
        match (self.kind, self.duration) {
            (FaultKind::Pause, None) => out.push(Diagnostic::new(
                format!("{at}.duration"),
                "required with kind = \"pause\": how long the target stays frozen, e.g. \"5s\"",
            )),
            (FaultKind::Pause, Some(d)) if d.is_zero() => out.push(Diagnostic::new(
                format!("{at}.duration"),
                "must be greater than zero",
            )),
            (FaultKind::Partition, None) => out.push(Diagnostic::new(
                format!("{at}.duration"),
                "required with kind = \"partition\": how long the target is cut off, e.g. \"5s\"",
            )),
            (FaultKind::Partition, Some(d)) if d.is_zero() => out.push(Diagnostic::new(
                format!("{at}.duration"),
                "must be greater than zero",
            )),
            (FaultKind::Kill | FaultKind::Stop, Some(_)) => out.push(Diagnostic::new(
                format!("{at}.duration"),
                "only used with kind = \"pause\"; for kill and stop use restart_after",
            )),
            (FaultKind::Failover, Some(_)) => out.push(Diagnostic::new(
                format!("{at}.duration"),
                "only used with kind = \"pause\"; a failover has no duration (the Sentinels \
                 demote the old master themselves)",
            )),
            _ => {}
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
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::parse_workload_plan;

    /// A plan with one workload whose body lines are `body`.
    fn one(body: &str) -> String {
        format!("name = \"w\"\n\n[[workload]]\nname = \"a\"\n{body}\n")
    }

    /// A one-workload plan (count 1, burst) whose `task` is the given TOML value.
    fn with_task(task: &str) -> String {
        one(&format!("task = {task}\ncount = 1\narrival = \"burst\""))
    }

    /// Parses `text` as `workloads/bad.toml` and returns the error text.
    fn err(text: &str) -> String {
        match parse_workload_plan(text, Path::new("workloads/bad.toml")) {
            Ok(p) => panic!("accepted: {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_has(msg: &str, parts: &[&str]) {
        for p in parts {
            assert!(msg.contains(p), "{p:?} not in:\n{msg}");
        }
    }

    fn ok(text: &str) -> WorkloadPlan {
        parse_workload_plan(text, Path::new("workloads/ok.toml")).unwrap()
    }

    #[test]
    fn defaults_apply_when_optional_fields_are_omitted() {
        let p = ok(&with_task("{ kind = \"trivial\" }"));
        assert_eq!(p.description, "");
        assert_eq!(p.warmup_tasks, 0);
        assert_eq!(p.drain_timeout, Duration::from_secs(60));
        assert_eq!(p.scratch_dir, None);
        assert_eq!(p.workloads[0].rate_per_s, None);
        let p = ok(&format!(
            "scratch_dir = \"/var/tmp\"\n{}",
            with_task("{ kind = \"trivial\" }")
        ));
        assert_eq!(p.scratch_dir.as_deref(), Some(Path::new("/var/tmp")));
    }

    #[test]
    fn every_task_kind_parses_and_has_its_celery_name() {
        let cases = [
            ("{ kind = \"trivial\" }", TaskSpec::Trivial, "hab.trivial"),
            (
                "{ kind = \"sleep\", seconds = 10.0 }",
                TaskSpec::Sleep { seconds: 10.0 },
                "hab.sleep",
            ),
            // An integer is accepted where seconds are expected.
            (
                "{ kind = \"sleep\", seconds = 2 }",
                TaskSpec::Sleep { seconds: 2.0 },
                "hab.sleep",
            ),
            (
                "{ kind = \"write_zeros\", bytes = 1000 }",
                TaskSpec::WriteZeros { bytes: 1000 },
                "hab.write_zeros",
            ),
            (
                "{ kind = \"factorial\", n = 7 }",
                TaskSpec::Factorial { n: 7 },
                "hab.factorial",
            ),
        ];
        for (table, want, name) in cases {
            let p = ok(&with_task(table));
            assert_eq!(p.workloads[0].task, want);
            assert_eq!(want.task_name(), name);
        }
        // The [workload.task] table form works as well as the inline one.
        let p = ok(&one(
            "count = 1\narrival = \"burst\"\n[workload.task]\nkind = \"factorial\"\nn = 3",
        ));
        assert_eq!(p.workloads[0].task, TaskSpec::Factorial { n: 3 });
    }

    #[test]
    fn unknown_fields_are_rejected_at_every_level_including_inside_task() {
        // Inside task, next to a unit variant: serde's internally tagged enums would let this through.
        let e = err(&with_task("{ kind = \"trivial\", extra = 1 }"));
        assert_has(
            &e,
            &[
                "workload file workloads/bad.toml: ",
                "line 5, column 28",
                "unknown field `extra`, expected one of `kind`, `seconds`, `bytes`, `n`",
            ],
        );
        let e = err(&with_task("{ kind = \"sleep\", seconds = 1.0, extra = 1 }"));
        assert_has(&e, &["line 5, column 41", "unknown field `extra`"]);
        let e = err(&one(
            "count = 1\narrival = \"burst\"\n[workload.task]\nkind = \"sleep\"\nseconds = 1\nsecs = 2",
        ));
        assert_has(&e, &["line 10", "unknown field `secs`"]);
        // A field that exists, but for another kind.
        let e = err(&with_task("{ kind = \"trivial\", seconds = 1 }"));
        assert_has(
            &e,
            &[
                "line 5",
                "field `seconds` is not used by kind = \"trivial\" (it takes no other fields)",
            ],
        );
        let e = err(&with_task("{ kind = \"sleep\", seconds = 1, bytes = 1 }"));
        assert_has(
            &e,
            &["field `bytes` is not used by kind = \"sleep\" (it takes only `seconds`)"],
        );
        // In a [[workload]] table and at the top level.
        let e = err(&one(
            "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nrate = 3",
        ));
        assert_has(
            &e,
            &[
                "line 8",
                "unknown field `rate`, expected one of `name`, `task`, `count`, `arrival`, `rate_per_s`",
            ],
        );
        let e = err(&format!(
            "warmup = 3\n{}",
            with_task("{ kind = \"trivial\" }")
        ));
        assert_has(&e, &["line 1", "unknown field `warmup`", "`warmup_tasks`"]);
        let e = err(&format!(
            "{}[[workloads]]\nname = \"x\"\n",
            with_task("{ kind = \"trivial\" }")
        ));
        assert_has(&e, &["unknown field `workloads`", "`workload`"]);
    }

    #[test]
    fn wrong_types_name_the_line_and_the_expected_type() {
        let e = err(&with_task("{ kind = \"sleep\", seconds = \"ten\" }"));
        assert_has(
            &e,
            &[
                "line 5, column 36",
                "invalid type: string \"ten\", expected f64",
            ],
        );
        let e = err(&with_task("{ kind = \"factorial\", n = -5 }"));
        assert_has(&e, &["line 5", "invalid value: integer `-5`, expected u64"]);
        let e = err(&with_task("\"trivial\""));
        assert_has(
            &e,
            &[
                "line 5",
                "expected a task table such as { kind = \"trivial\" } or { kind = \"sleep\", seconds = 10.0 }",
            ],
        );
        let e = err(&one(
            "task = { kind = \"trivial\" }\ncount = \"many\"\narrival = \"burst\"",
        ));
        assert_has(
            &e,
            &["line 6", "invalid type: string \"many\", expected u64"],
        );
        let e = err(&one(
            "task = { kind = \"trivial\" }\ncount = 1\narrival = \"rate\"\nrate_per_s = \"fast\"",
        ));
        assert_has(&e, &["line 8", "expected f64"]);
    }

    #[test]
    fn bad_durations_name_the_field_and_show_the_format() {
        let e = err(&format!(
            "drain_timeout = \"2 fortnights\"\n{}",
            with_task("{ kind = \"trivial\" }")
        ));
        assert_has(
            &e,
            &[
                "workloads/bad.toml",
                "line 1, column 17",
                "drain_timeout = \"2 fortnights\"",
                "(unknown unit \"fortnights\")",
                r#"durations look like "500ms", "10s", "2m""#,
            ],
        );
    }

    #[test]
    fn bad_enum_values_list_the_allowed_values() {
        let e = err(&with_task("{ kind = \"nap\" }"));
        assert_has(
            &e,
            &[
                "line 5",
                "unknown variant `nap`, expected one of `trivial`, `sleep`, `write_zeros`, `factorial`",
            ],
        );
        let e = err(&one(
            "task = { kind = \"trivial\" }\ncount = 1\narrival = \"poisson\"",
        ));
        assert_has(
            &e,
            &[
                "line 7",
                "unknown variant `poisson`, expected `burst` or `rate`",
            ],
        );
    }

    #[test]
    fn missing_required_fields_are_named() {
        let e = err(&with_task("{ seconds = 1 }"));
        assert_has(
            &e,
            &[
                "line 5",
                "missing field `kind`: one of \"trivial\", \"sleep\"",
            ],
        );
        let e = err(&with_task("{ kind = \"sleep\" }"));
        assert_has(
            &e,
            &[
                "line 5",
                "missing field `seconds`: kind = \"sleep\" needs it (how long to sleep, in seconds",
            ],
        );
        let e = err(&with_task("{ kind = \"write_zeros\" }"));
        assert_has(
            &e,
            &["missing field `bytes`: kind = \"write_zeros\" needs it"],
        );
        let e = err(&with_task("{ kind = \"factorial\" }"));
        assert_has(&e, &["missing field `n`: kind = \"factorial\" needs it"]);
        let e = err(&one("task = { kind = \"trivial\" }\ncount = 1"));
        assert_has(&e, &["line 3", "[[workload]]", "missing field `arrival`"]);
        let e = err(&one("count = 1\narrival = \"burst\""));
        assert_has(&e, &["missing field `task`"]);
        let e = err(&with_task("{ kind = \"trivial\" }").replace("name = \"w\"\n", ""));
        assert_has(&e, &["missing field `name`"]);
    }

    /// A valid one-workload plan, edited, then validated; diagnostics as text.
    fn diags(edit: impl FnOnce(&mut WorkloadPlan)) -> Vec<String> {
        let mut p: WorkloadPlan = toml::from_str(&with_task("{ kind = \"trivial\" }")).unwrap();
        edit(&mut p);
        p.validate().iter().map(ToString::to_string).collect()
    }

    fn workload(name: &str, task: TaskSpec) -> Workload {
        Workload {
            name: name.into(),
            task,
            count: 1,
            arrival: ArrivalKind::Burst,
            rate_per_s: None,
            drain_timeout: None,
            idle_before: None,
            repeat: 1,
            faults: Vec::new(),
        }
    }

    #[test]
    fn validation_reports_every_rule_with_its_location() {
        assert_eq!(diags(|_| {}), Vec::<String>::new());
        type Edit = Box<dyn FnOnce(&mut WorkloadPlan)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|p| p.name = String::new()),
                "name: must not be empty",
            ),
            (
                Box::new(|p| p.name = "séed".into()),
                "name: \"séed\" contains 'é'",
            ),
            (
                Box::new(|p| p.warmup_tasks = 1_000_001),
                "warmup_tasks: must be at most 1000000, got 1000001",
            ),
            (
                Box::new(|p| p.drain_timeout = Duration::ZERO),
                "drain_timeout: must be greater than zero",
            ),
            (
                Box::new(|p| p.workloads[0].drain_timeout = Some(Duration::ZERO)),
                "workload[0] (\"a\").drain_timeout: must be greater than zero, e.g. \"30s\" (or absent: the plan's drain_timeout)",
            ),
            (
                Box::new(|p| p.workloads.clear()),
                "workload: at least one [[workload]] table is required",
            ),
            (
                Box::new(|p| p.workloads[0].name = String::new()),
                "workload[0].name: must not be empty",
            ),
            (
                Box::new(|p| p.workloads[0].name = "a b".into()),
                "workload[0] (\"a b\").name: \"a b\" contains ' '",
            ),
            (
                Box::new(|p| p.workloads[0].count = 0),
                "workload[0] (\"a\").count: must be between 1 and 10000000, got 0",
            ),
            (
                Box::new(|p| p.workloads[0].count = 10_000_001),
                "workload[0] (\"a\").count: must be between 1 and 10000000, got 10000001",
            ),
            (
                Box::new(|p| p.workloads[0].arrival = ArrivalKind::Rate),
                "workload[0] (\"a\").rate_per_s: required when arrival = \"rate\" (a positive number of tasks per second)",
            ),
            (
                Box::new(|p| p.workloads[0].rate_per_s = Some(5.0)),
                "workload[0] (\"a\").rate_per_s: only used with arrival = \"rate\"",
            ),
            (
                Box::new(|p| p.workloads[0].task = TaskSpec::Sleep { seconds: -1.0 }),
                "workload[0] (\"a\").task.seconds: must be between 0 and 3600 seconds, got -1",
            ),
            (
                Box::new(|p| p.workloads[0].task = TaskSpec::Sleep { seconds: 3600.5 }),
                "workload[0] (\"a\").task.seconds: must be between 0 and 3600 seconds",
            ),
            (
                Box::new(|p| p.workloads[0].task = TaskSpec::Sleep { seconds: f64::NAN }),
                "workload[0] (\"a\").task.seconds: must be between 0 and 3600 seconds, got NaN",
            ),
            (
                Box::new(|p| p.workloads[0].task = TaskSpec::WriteZeros { bytes: 0 }),
                "workload[0] (\"a\").task.bytes: must be between 1 and 100000000000 bytes, got 0",
            ),
            (
                Box::new(|p| {
                    p.workloads[0].task = TaskSpec::WriteZeros {
                        bytes: 100_000_000_001,
                    }
                }),
                "workload[0] (\"a\").task.bytes: must be between 1 and 100000000000 bytes",
            ),
            (
                Box::new(|p| p.workloads[0].task = TaskSpec::Factorial { n: 10_000_001 }),
                "workload[0] (\"a\").task.n: must be at most 10000000, got 10000001",
            ),
        ];
        for (edit, want) in cases {
            let got = diags(edit);
            assert_eq!(got.len(), 1, "{want}: {got:?}");
            assert!(got[0].starts_with(want), "want {want:?}, got {:?}", got[0]);
        }
    }

    #[test]
    fn repeat_is_between_1_and_100_located_and_defaults_to_one_run() {
        let body = "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"";
        // Absent: one run; present: that many repetitions, back to back.
        assert_eq!(ok(&one(body)).workloads[0].repeat, 1);
        for n in [1, 5, 100] {
            let p = ok(&one(&format!("{body}\nrepeat = {n}")));
            assert_eq!(p.workloads[0].repeat, n);
        }
        for (bad, shown) in [("0", "got 0"), ("101", "got 101")] {
            let e = err(&one(&format!("{body}\nrepeat = {bad}")));
            assert_has(
                &e,
                &[
                    "workload file workloads/bad.toml",
                    "workload[0] (\"a\").repeat: must be between 1 and 100",
                    shown,
                ],
            );
        }
        // Not a number: the line and the key.
        let e = err(&one(&format!("{body}\nrepeat = \"5\"")));
        assert_has(&e, &["line 8", "repeat"]);
    }

    #[test]
    fn a_repeated_workload_with_faults_or_an_idle_gap_is_refused_located() {
        let fault = "[[workload.fault]]\ntarget = \"broker.primary\"\nkind = \"kill\"\nat = \"1s\"\nrestart_after = \"2s\"";
        let body =
            "task = { kind = \"trivial\" }\ncount = 100\narrival = \"rate\"\nrate_per_s = 10.0";
        let e = err(&one(&format!("{body}\nrepeat = 3\n{fault}")));
        assert_has(
            &e,
            &[
                "workload[0] (\"a\").repeat: a workload with faults runs once",
                "the fault's own `repeat`",
            ],
        );
        // Once is fine with faults; the fault's own repeat is not the workload's.
        let p = ok(&one(&format!(
            "{body}\nrepeat = 1\n{fault}\nrepeat = 3\nevery = \"3s\""
        )));
        assert_eq!(
            (p.workloads[0].repeat, p.workloads[0].faults[0].repeat),
            (1, 3)
        );
        let e = err(&one(&format!("{body}\nrepeat = 2\nidle_before = \"5s\"")));
        assert_has(
            &e,
            &["workload[0] (\"a\").repeat: a workload with an idle_before gap runs once"],
        );
    }

    #[test]
    fn idle_before_is_a_bounded_positive_duration_located_on_error() {
        let p = ok(&one(
            "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nidle_before = \"8s\"",
        ));
        assert_eq!(p.workloads[0].idle_before, Some(Duration::from_secs(8)));
        assert_eq!(
            ok(&with_task("{ kind = \"trivial\" }")).workloads[0].idle_before,
            None
        );
        // Not a duration string: the line, the key and what a duration looks like.
        let e = err(&one(
            "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nidle_before = 8",
        ));
        assert_has(
            &e,
            &[
                "workload file workloads/bad.toml",
                "line 8",
                "idle_before",
                "\"10s\"",
            ],
        );
        let e = err(&one(
            "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nidle_before = \"8\"",
        ));
        assert_has(&e, &["line 8", "idle_before", "time unit needed"]);
        for (bad, shown) in [
            (Duration::ZERO, "got 0s"),
            (Duration::from_secs(3601), "got 1h 1s"),
        ] {
            let got = diags(|p| p.workloads[0].idle_before = Some(bad));
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(
                got[0].starts_with(
                    "workload[0] (\"a\").idle_before: must be greater than zero and at most 1h"
                ) && got[0].contains(shown),
                "{got:?}"
            );
        }
        assert_eq!(
            diags(|p| p.workloads[0].idle_before = Some(Duration::from_secs(3600))),
            Vec::<String>::new()
        );
        // The whole error names the file, then the field.
        let e = err(&one(
            "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nidle_before = \"0s\"",
        ));
        assert_has(
            &e,
            &[
                "workload file workloads/bad.toml",
                "workload[0] (\"a\").idle_before: must be greater than zero",
            ],
        );
    }

    #[test]
    fn rate_must_be_finite_positive_and_bounded() {
        for bad in [0.0, -1.0, f64::INFINITY, f64::NAN, 1_000_001.0] {
            let got = diags(|p| {
                p.workloads[0].arrival = ArrivalKind::Rate;
                p.workloads[0].rate_per_s = Some(bad);
            });
            assert_eq!(got.len(), 1, "{bad}: {got:?}");
            assert!(
                got[0].starts_with(
                    "workload[0] (\"a\").rate_per_s: must be a number of tasks per second greater than 0 and at most 1000000"
                ),
                "{got:?}"
            );
        }
        for good in [0.001, 1_000_000.0] {
            let got = diags(|p| {
                p.workloads[0].arrival = ArrivalKind::Rate;
                p.workloads[0].rate_per_s = Some(good);
            });
            assert_eq!(got, Vec::<String>::new());
        }
    }

    #[test]
    fn duplicate_names_point_at_the_first_use_and_all_problems_are_collected() {
        let got = diags(|p| {
            p.workloads
                .push(workload("b", TaskSpec::Sleep { seconds: 0.0 }));
            p.workloads
                .push(workload("a", TaskSpec::Factorial { n: 0 }));
            p.workloads.push(Workload {
                arrival: ArrivalKind::Rate,
                ..workload("c", TaskSpec::Sleep { seconds: 4000.0 })
            });
        });
        assert_eq!(
            got,
            [
                "workload[2] (\"a\").name: duplicate name (also used by workload[0]); each workload needs its own name",
                "workload[3] (\"c\").rate_per_s: required when arrival = \"rate\" (a positive number of tasks per second)",
                "workload[3] (\"c\").task.seconds: must be between 0 and 3600 seconds, got 4000",
            ]
        );
    }

    #[test]
    fn invalid_file_error_names_file_and_location() {
        let text = format!(
            "{}\n[[workload]]\nname = \"r\"\ntask = {{ kind = \"trivial\" }}\ncount = 5\narrival = \"rate\"\n",
            with_task("{ kind = \"trivial\" }")
        );
        assert_eq!(
            err(&text),
            "workload file workloads/bad.toml: workload[1] (\"r\").rate_per_s: required when \
             arrival = \"rate\" (a positive number of tasks per second)"
        );
    }

    /// A rate workload (3000 tasks at 100/s: 30 s of publishing) with one fault table.
    fn with_fault(fault: &str) -> String {
        one(&format!(
            "task = {{ kind = \"trivial\" }}\ncount = 3000\narrival = \"rate\"\nrate_per_s = 100.0\n[[workload.fault]]\n{fault}"
        ))
    }

    #[test]
    fn faults_parse_with_roles_kinds_and_repetitions() {
        let p = ok(&with_fault(
            "target = \"broker.primary\"\nkind = \"kill\"\nat = \"5s\"\nrestart_after = \"3s\"\nrepeat = 3\nevery = \"8s\"",
        ));
        let f = &p.workloads[0].faults[0];
        assert_eq!(f.target, crate::fault::Role::BrokerPrimary);
        assert_eq!(f.kind, crate::fault::FaultKind::Kill);
        assert_eq!(f.planned_at(2), Duration::from_secs(21));
        assert_eq!(f.out_for(), Some(Duration::from_secs(3)));
        let p = ok(&with_fault(
            "target = \"backend.master\"\nkind = \"pause\"\nat = \"2s\"\nduration = \"4s\"",
        ));
        assert_eq!(p.workloads[0].faults[0].repeat, 1);
    }

    #[test]
    fn fault_mistakes_are_located_and_explained() {
        assert_has(
            &err(&with_fault(
                "target = \"broker.leader\"\nkind = \"kill\"\nat = \"5s\"",
            )),
            &["line 10, column 10", "unknown role", "broker.queue_leader"],
        );
        assert_has(
            &err(&with_fault(
                "target = \"proxy\"\nkind = \"explode\"\nat = \"5s\"",
            )),
            &["explode", "kill", "pause", "stop"],
        );
        assert_has(
            &err(&with_fault(
                "target = \"proxy\"\nkind = \"pause\"\nat = \"5s\"",
            )),
            &[
                "workload[0] (\"a\").fault[0].duration",
                "required with kind = \"pause\"",
            ],
        );
        assert_has(
            &err(&with_fault(
                "target = \"proxy\"\nkind = \"kill\"\nat = \"5s\"\nduration = \"1s\"",
            )),
            &["fault[0].duration", "only used with kind = \"pause\""],
        );
        assert_has(
            &err(&with_fault(
                "target = \"proxy\"\nkind = \"kill\"\nat = \"5s\"\nrepeat = 3",
            )),
            &["fault[0].every", "required when repeat > 1"],
        );
        assert_has(
            &err(&with_fault(
                "target = \"proxy\"\nkind = \"kill\"\nat = \"5s\"\nrestart_after = \"10s\"\nrepeat = 2\nevery = \"5s\"",
            )),
            &[
                "fault[0].every",
                "longer than the time the target is out (10s)",
            ],
        );
        // 30 s of publishing: a repetition at 5 + 3 × 10 = 35 s never fires.
        assert_has(
            &err(&with_fault(
                "target = \"proxy\"\nkind = \"kill\"\nat = \"5s\"\nrepeat = 4\nevery = \"10s\"",
            )),
            &["fault[0].at", "planned at 35s", "publishes for only 30s"],
        );
        assert_has(
            &err(&with_fault(
                "target = \"proxy\"\nkind = \"kill\"\nat = \"5s\"\nwhen = 1",
            )),
            &["unknown field `when`"],
        );
    }

    #[test]
    fn partition_needs_a_duration_and_a_redis_target() {
        let p = ok(&with_fault(
            "target = \"backend.master\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"4s\"",
        ));
        let f = &p.workloads[0].faults[0];
        assert_eq!(f.kind, crate::fault::FaultKind::Partition);
        assert_eq!(f.out_for(), Some(Duration::from_secs(4)));
        for target in [
            "backend.replica",
            "backend.node[1]",
            "sentinel[2]",
            "broker.primary",
            "broker.queue_leader",
            "broker.node[2]",
        ] {
            ok(&with_fault(&format!(
                "target = \"{target}\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"4s\""
            )));
        }
        assert_has(
            &err(&with_fault(
                "target = \"backend.master\"\nkind = \"partition\"\nat = \"5s\"",
            )),
            &[
                "workloads/bad.toml",
                "fault[0].duration",
                "required with kind = \"partition\"",
            ],
        );
        assert_has(
            &err(&with_fault(
                "target = \"backend.master\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"0s\"",
            )),
            &["fault[0].duration", "must be greater than zero"],
        );
        assert_has(
            &err(&with_fault(
                "target = \"proxy\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"4s\"",
            )),
            &[
                "fault[0].target",
                "applies to broker nodes",
                "got \"proxy\": HAProxy stays in the root namespace",
            ],
        );
        assert_has(
            &err(&with_fault(
                "target = \"backend.master\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"4s\"\nrestart_after = \"1s\"",
            )),
            &[
                "fault[0].restart_after",
                "the partition heals after `duration`",
            ],
        );
        // Repetitions must not overlap a partition that is still in effect.
        assert_has(
            &err(&with_fault(
                "target = \"backend.master\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"4s\"\nrepeat = 2\nevery = \"3s\"",
            )),
            &[
                "fault[0].every",
                "must be longer than the time the target is out (4s)",
            ],
        );
    }

    #[test]
    fn failover_and_restart_as_parse_and_their_mistakes_are_located() {
        let p = ok(&with_fault(
            "target = \"backend.master\"\nkind = \"failover\"\nat = \"5s\"\nrepeat = 2\nevery = \"12s\"",
        ));
        assert_eq!(
            p.workloads[0].faults[0].kind,
            crate::fault::FaultKind::Failover
        );
        assert_eq!(p.workloads[0].faults[0].out_for(), None);
        let p = ok(&with_fault(
            "target = \"backend.master\"\nkind = \"kill\"\nat = \"5s\"\nrestart_after = \"3s\"\nrestart_as = \"master\"",
        ));
        assert_eq!(
            p.workloads[0].faults[0].restart_as,
            Some(crate::fault::RestartAs::Master)
        );
        assert_has(
            &err(&with_fault(
                "target = \"broker.primary\"\nkind = \"failover\"\nat = \"5s\"",
            )),
            &[
                "workloads/bad.toml",
                "workload[0] (\"a\").fault[0].target",
                "only applies to \"backend.master\", got \"broker.primary\"",
            ],
        );
        assert_has(
            &err(&with_fault(
                "target = \"backend.master\"\nkind = \"failover\"\nat = \"5s\"\nrestart_after = \"1s\"",
            )),
            &[
                "fault[0].restart_after",
                "not used with kind = \"failover\"",
            ],
        );
        assert_has(
            &err(&with_fault(
                "target = \"backend.master\"\nkind = \"failover\"\nat = \"5s\"\nduration = \"1s\"",
            )),
            &["fault[0].duration", "a failover has no duration"],
        );
        assert_has(
            &err(&with_fault(
                "target = \"backend.master\"\nkind = \"kill\"\nat = \"5s\"\nrestart_as = \"master\"",
            )),
            &["fault[0].restart_as", "needs restart_after"],
        );
        assert_has(
            &err(&with_fault(
                "target = \"backend.master\"\nkind = \"pause\"\nat = \"5s\"\nduration = \"1s\"\nrestart_as = \"master\"",
            )),
            &[
                "fault[0].restart_as",
                "only used with kind = \"kill\" or \"stop\"",
            ],
        );
        assert_has(
            &err(&with_fault(
                "target = \"broker.primary\"\nkind = \"kill\"\nat = \"5s\"\nrestart_after = \"1s\"\nrestart_as = \"master\"",
            )),
            &[
                "fault[0].restart_as",
                "only for Redis data nodes",
                "allowed values: \"replica\", \"master\"",
            ],
        );
        assert_has(
            &err(&with_fault(
                "target = \"backend.master\"\nkind = \"kill\"\nat = \"5s\"\nrestart_after = \"1s\"\nrestart_as = \"primary\"",
            )),
            &[
                "line 14",
                "unknown variant `primary`, expected `replica` or `master`",
            ],
        );
        assert_has(
            &err(&with_fault(
                "target = \"backend.master\"\nkind = \"demote\"\nat = \"5s\"",
            )),
            &["demote", "`failover`"],
        );
    }
}
