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
/// table, [`RawTaskSpec`], because serde's own internally tagged enums accept unknown fields
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
    }
}
