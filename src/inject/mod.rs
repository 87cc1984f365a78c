//! The fault injector: applies a workload's faults on their schedule, one at a time,
//! restoring full health before the next repetition, and records each as an
//! [`AppliedFault`] for the failover analysis.
//!
//! - [`plan`]: what a workload's faults will do before anything runs: their
//!   [`timeline`], the checks of an external topology against them
//!   ([`plan::check_plan`], [`plan::prepare`]) and `--dry-run` ([`plan::dry_run`]).
//! - `local`: one fault on a stack hab started (signals, restarts, partitions), with the
//!   queue-leader and `pause_minority` observations around it.
//! - `external`: one fault on an external stack, by the commands its topology names.
//!
//! The injector sits above the stack (it drives [`crate::stack`] and records what the
//! observers of [`crate::observe`] see); the stack knows nothing of it.

mod external;
mod local;
pub mod plan;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clock::now_unix_us;
use crate::config::FaultSpec;
use crate::fault::{AppliedFault, FaultKind};
use crate::observe::server::ServerLog;
use crate::progress::SharedReporter;
use crate::stack::StackHandle;

pub use plan::timeline;

/// How long the injector waits for the stack to be healthy again after a fault.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(120);

/// Apply `faults` of workload `workload`, relative to `t0`, until done or cancelled.
/// A repetition whose planned time comes while the previous fault is still being restored
/// fires as soon as the stack is healthy again. On cancel a paused node is resumed first.
/// What happens to each fault is reported through `reporter` (`hab: fault …`).
///
/// On an external stack a fault command that fails or hangs stops the run: its message
/// goes into `fatal` and `cancel` is cancelled (the run keeps what it measured).
#[allow(clippy::too_many_arguments)]
pub async fn run_faults(
    workload: usize,
    faults: Vec<FaultSpec>,
    t0: Instant,
    stack: Arc<tokio::sync::Mutex<StackHandle>>,
    applied: Arc<Mutex<Vec<AppliedFault>>>,
    servers: Arc<ServerLog>,
    fatal: Arc<Mutex<Option<String>>>,
    cancel: CancellationToken,
    reporter: SharedReporter,
) {
    for (i, k, planned) in timeline(&faults) {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until((t0 + planned).into()) => {}
        }
        let spec = &faults[i];
        let mut stack = stack.lock().await;
        let record = match &mut *stack {
            StackHandle::Local(local) => {
                let record =
                    local::apply(local, workload, spec, k, &servers, &cancel, &*reporter).await;
                if spec.kind == FaultKind::Partition && record.not_applied.is_none() {
                    local::record_pause(local, &record, &servers).await;
                }
                record
            }
            StackHandle::External(ext) => {
                let (record, failure) =
                    external::apply(ext, workload, spec, k, &cancel, &*reporter).await;
                if let Some(why) = failure {
                    reporter.line(&format!("hab: {why}"));
                    fatal.lock().expect("fatal lock").get_or_insert(why);
                    applied.lock().expect("faults lock").push(record);
                    cancel.cancel();
                    return;
                }
                record
            }
        };
        match &record.not_applied {
            Some(why) => reporter.line(&format!(
                "hab: fault {} {} (repetition {k}) not applied: {why}",
                spec.kind.as_str(),
                spec.target
            )),
            None => reporter.line(&format!(
                "hab: fault {} {} → {} (repetition {k}){}",
                spec.kind.as_str(),
                spec.target,
                record.resolved,
                match record.healthy_at_unix_us {
                    Some(h) => format!(
                        "; healthy again after {:.1} s",
                        (h - record.fault_at_unix_us) as f64 / 1e6
                    ),
                    None => String::new(),
                }
            )),
        }
        applied.lock().expect("faults lock").push(record);
    }
}

/// The record of one repetition, before anything was done (times filled in as it goes).
fn new_record(workload: usize, spec: &FaultSpec, repetition: u32) -> AppliedFault {
    AppliedFault {
        workload,
        target: spec.target,
        resolved: String::new(),
        kind: spec.kind,
        repetition,
        fault_at_unix_us: now_unix_us(),
        restored_at_unix_us: None,
        ready_at_unix_us: None,
        healthy_at_unix_us: None,
        not_applied: None,
    }
}
