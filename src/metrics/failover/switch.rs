//! Which tasks a fault answers for (its window reaches back to tasks still in flight) and
//! when tasks flow again after it: the switch time, one definition (DESIGN.md §5).

use crate::ledger::{Outcome, TaskRecord};

/// How long before a fault its window starts: tasks already in flight then are counted.
pub const WINDOW_BEFORE_US: i64 = 1_000_000;
/// If the stack never became healthy again, the window ends this long after the fault.
pub const WINDOW_AFTER_DEFAULT_US: i64 = 30_000_000;

/// `at` as an offset from `fault_at`, ms.
pub(super) fn offset_ms(at: i64, fault_at: i64) -> f64 {
    (at - fault_at) as f64 / 1000.0
}

/// The last moment anything happened to a task: its result seen, else its last
/// execution's end (or start), else its confirmation or publish, else its intended start.
fn last_activity_us(t: &TaskRecord) -> i64 {
    t.result_seen_unix_us
        .or_else(|| {
            t.executions
                .iter()
                .map(|e| e.finished_unix_us.unwrap_or(e.started_unix_us))
                .max()
        })
        .or(t.confirmed_unix_us)
        .or(t.published_unix_us)
        .unwrap_or(t.intended_unix_us)
}

/// A task belongs to a fault's window when it was meant to start before the window ends
/// and had not completed before the window began: tasks arriving during the window and
/// tasks still in flight (queued, running) from before it, as after a burst. A task that
/// never completed (lost, result lost) belongs to the first fault after its last
/// activity: the window that ends after it and whose predecessor (ending at
/// `previous_end`) ended before it — never to every later fault as well.
pub(super) fn in_window(
    t: &TaskRecord,
    w_start: i64,
    w_end: i64,
    previous_end: Option<i64>,
) -> bool {
    if t.intended_unix_us >= w_end {
        return false;
    }
    match t.result_seen_unix_us {
        Some(seen) => seen >= w_start,
        None => {
            let last = last_activity_us(t);
            last < w_end && previous_end.is_none_or(|p| last >= p)
        }
    }
}

/// When tasks flow again after a fault, unix µs: the earliest moment a task published at
/// or after `fault_at` (and before `next_fault_at`, when there is a next fault) was seen
/// completed ok (its result seen). The earliest *completion*, not the completion of the
/// earliest publish: a task published just after the fault onto the dead node and
/// redelivered late must not hide that newer work already flows. `None` when no such task
/// completed.
pub fn flow_again_unix_us(
    tasks: &[TaskRecord],
    fault_at: i64,
    next_fault_at: Option<i64>,
) -> Option<i64> {
    tasks
        .iter()
        .filter(|t| {
            t.published_unix_us
                .is_some_and(|p| p >= fault_at && next_fault_at.is_none_or(|n| p < n))
        })
        .filter(|t| t.classify().outcome == Outcome::Ok)
        .filter_map(|t| t.result_seen_unix_us)
        .min()
}

/// Switch time (DESIGN.md §5), ms: [`flow_again_unix_us`] − `fault_at`. The one definition
/// of "tasks flow again" behind failover.csv `switch_time_ms`, the report's switch column,
/// the anatomy chart's last phase and `hab merge`'s re-analysed rows.
pub fn switch_time_ms(
    tasks: &[TaskRecord],
    fault_at: i64,
    next_fault_at: Option<i64>,
) -> Option<f64> {
    flow_again_unix_us(tasks, fault_at, next_fault_at).map(|s| offset_ms(s, fault_at))
}
