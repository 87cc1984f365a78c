//! `[workers.limits]`: how much work one message may ask of a worker.
//!
//! hab's worker (and hab's tasks for a real Celery worker) take their arguments from
//! whatever is on the queue, and on an external stack anyone with the broker's credentials
//! can publish there. Each limit bounds what one message can cost; a message over a limit
//! gets a `FAILURE` (`ValueError`, naming the limit and the setting that raises it), is
//! acknowledged and counted, and the worker keeps serving. The defaults are what workload
//! files may ask for, so no workload hab accepts is refused.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Diagnostic;
use super::workload::{MAX_FACTORIAL_N, MAX_SLEEP_S, MAX_WRITE_BYTES};

/// Default largest message body, in bytes (4 MiB: hab's own messages are ~200 bytes).
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 4 << 20;
/// Default number of worker deaths during one task after which it is failed instead of run
/// again.
pub const DEFAULT_CRASH_LIMIT: u32 = 2;

/// Limits on the work one message may ask for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerLimits {
    /// Largest `n` of `hab.factorial(n)` (memory and CPU grow with n log n).
    #[serde(default = "default_max_factorial_n")]
    pub max_factorial_n: u64,
    /// Largest `nbytes` of `hab.write_zeros(path, nbytes)`; a write must also fit in the
    /// free space of the scratch file system.
    #[serde(default = "default_max_write_bytes")]
    pub max_write_bytes: u64,
    /// Longest `hab.sleep(seconds)`.
    #[serde(default = "default_max_sleep", with = "humantime_serde")]
    pub max_sleep: Duration,
    /// Largest message body the worker decodes.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: u64,
    /// A task whose worker died this many times while running it (a redelivered message
    /// with that many unfinished starts in the side channel) is failed with
    /// `WorkerLostError` and acknowledged instead of run again: one poison message cannot
    /// stop a run.
    #[serde(default = "default_crash_limit")]
    pub crash_limit: u32,
}

fn default_max_factorial_n() -> u64 {
    MAX_FACTORIAL_N
}
fn default_max_write_bytes() -> u64 {
    MAX_WRITE_BYTES
}
fn default_max_sleep() -> Duration {
    Duration::from_secs_f64(MAX_SLEEP_S)
}
fn default_max_message_bytes() -> u64 {
    DEFAULT_MAX_MESSAGE_BYTES
}
fn default_crash_limit() -> u32 {
    DEFAULT_CRASH_LIMIT
}

impl Default for WorkerLimits {
    fn default() -> Self {
        Self {
            max_factorial_n: default_max_factorial_n(),
            max_write_bytes: default_max_write_bytes(),
            max_sleep: default_max_sleep(),
            max_message_bytes: default_max_message_bytes(),
            crash_limit: default_crash_limit(),
        }
    }
}

impl WorkerLimits {
    /// Cross-field checks, located under `at` (e.g. `workers.limits`).
    pub fn validate(&self, at: &str, out: &mut Vec<Diagnostic>) {
        let mut zero = |field: &str, is_zero: bool| {
            if is_zero {
                out.push(Diagnostic::new(
                    format!("{at}.{field}"),
                    "must be greater than 0: it would refuse every task of its kind",
                ));
            }
        };
        zero("max_factorial_n", self.max_factorial_n == 0);
        zero("max_write_bytes", self.max_write_bytes == 0);
        zero("max_sleep", self.max_sleep.is_zero());
        zero("crash_limit", self.crash_limit == 0);
        if self.max_message_bytes < 1024 || self.max_message_bytes > 128 << 20 {
            out.push(Diagnostic::new(
                format!("{at}.max_message_bytes"),
                format!(
                    "must be between 1024 and 134217728 (128 MiB, RabbitMQ's own largest \
                     message), got {}",
                    self.max_message_bytes
                ),
            ));
        }
    }
}
