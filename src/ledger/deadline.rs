//! The drain deadline: a workload's outcomes are frozen when its drain timeout passes.
//!
//! A task without a result by then gets an [`AtDeadline`] mark; its outcome is decided by
//! what was true at that moment (time stamps against the mark's), whatever happens later
//! (the next workload reuses the workers, and the end of the run stops them): a result
//! seen after the deadline does not make it `ok`, and work that finished after it never
//! makes it `result_lost`.

use uuid::Uuid;

use super::{Ledger, Outcome, TaskRecord};
use crate::protocol::result::ResultStatus;

/// What a task was at its workload's drain deadline (kept only for a task without a
/// result by then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtDeadline {
    /// When the workload's outcomes were frozen, after its last reconciliation read, unix
    /// µs: what happened at or before it counts.
    pub at_unix_us: i64,
    /// The task's message was still in the queue then and was taken out: it never ran.
    pub purged: bool,
    /// A read that could have found its result failed (the deadline's last read, or the
    /// one after the workers stopped): whether the result exists is unknown.
    pub read_failed: bool,
}

impl AtDeadline {
    /// The outcome of `t` as of the deadline:
    /// - a result seen by the deadline decides (`ok`, `failed`, `revoked`);
    /// - a worker finished it by then and no result was ever seen: `result_lost`, or
    ///   `unknown` when a read failed;
    /// - a worker had started it by then: `unfinished_running`;
    /// - taken out of the queue, or started only after the deadline (it was in a worker's
    ///   prefetch): `unfinished_queued`;
    /// - otherwise no worker ever ran it: as without a deadline (`lost`, `unconfirmed`, …).
    pub fn outcome(&self, t: &TaskRecord) -> Outcome {
        let by = self.at_unix_us;
        if let (Some(seen), Some(status)) = (t.result_seen_unix_us, t.result_status)
            && seen <= by
        {
            return match status {
                ResultStatus::Success => Outcome::Ok,
                ResultStatus::Failure => Outcome::Failed,
                ResultStatus::Revoked => Outcome::Revoked,
            };
        }
        let finished = t
            .executions
            .iter()
            .any(|e| e.finished_unix_us.is_some_and(|f| f <= by));
        if finished && t.result_seen_unix_us.is_none() {
            return match self.read_failed {
                true => Outcome::Unknown,
                false => Outcome::ResultLost,
            };
        }
        if t.executions.iter().any(|e| e.started_unix_us <= by) {
            return Outcome::UnfinishedRunning;
        }
        if self.purged || !t.executions.is_empty() {
            return Outcome::UnfinishedQueued;
        }
        t.never_executed()
    }
}

impl Ledger {
    /// Freeze workload `w` at `at_unix_us`: every task without a result seen by then is
    /// marked ([`AtDeadline`]), with `read_failed` when the deadline's last read failed.
    /// Returns how many were marked.
    pub fn freeze(&mut self, w: usize, at_unix_us: i64, read_failed: bool) -> usize {
        let mut marked = 0;
        for t in self.workloads[w]
            .iter_mut()
            .filter(|t| t.result_seen_unix_us.is_none() && t.at_deadline.is_none())
        {
            // Decided now: the drain (this repetition's or a later one's) no longer
            // waits for it.
            if t.waiting() {
                self.unsettled[w] -= 1;
            }
            t.at_deadline = Some(Box::new(AtDeadline {
                at_unix_us,
                purged: false,
                read_failed,
            }));
            marked += 1;
        }
        marked
    }

    /// Mark the tasks of `ids` taken out of the queue at a deadline; returns how many were
    /// tasks frozen without a result (ids of other tasks, or unknown, are not counted).
    pub fn mark_purged(&mut self, ids: &[Uuid]) -> usize {
        let mut n = 0;
        for id in ids {
            if let Some(slot) = self.by_id.get(id, &self.workloads)
                && let Some(d) =
                    &mut self.workloads[slot.workload as usize][slot.index as usize].at_deadline
            {
                d.purged = true;
                n += 1;
            }
        }
        n
    }

    /// True when some task of any workload was frozen without a result.
    pub fn any_frozen(&self) -> bool {
        self.workloads
            .iter()
            .flatten()
            .any(|t| t.at_deadline.is_some())
    }

    /// Tasks frozen without a result and never seen since (purged ones excepted: they
    /// never ran), every workload: what the read after the workers stopped looks for.
    pub fn unseen_after_deadline(&self) -> Vec<Uuid> {
        self.workloads
            .iter()
            .flatten()
            .filter(|t| {
                t.result_seen_unix_us.is_none() && t.at_deadline.as_ref().is_some_and(|d| !d.purged)
            })
            .map(|t| t.id)
            .collect()
    }

    /// The read for `ids` failed: a task among them that a worker finished by its
    /// deadline is `unknown`, not `result_lost`.
    pub fn mark_read_failed(&mut self, ids: &[Uuid]) {
        for id in ids {
            if let Some(slot) = self.by_id.get(id, &self.workloads)
                && let Some(d) =
                    &mut self.workloads[slot.workload as usize][slot.index as usize].at_deadline
            {
                d.read_failed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ConfirmState, Execution, SeenVia};
    use super::*;

    const D: i64 = 10_000;

    fn task() -> TaskRecord {
        let mut t = TaskRecord::new(Uuid::new_v4(), 0, 1_000);
        t.published_unix_us = Some(1_010);
        t.confirm = ConfirmState::Acked;
        t
    }

    fn exec(start: i64, finish: Option<i64>) -> Execution {
        Execution {
            worker: "w1".into(),
            started_unix_us: start,
            finished_unix_us: finish,
            succeeded: finish.map(|_| true),
        }
    }

    fn frozen(t: TaskRecord, read_failed: bool) -> (Ledger, Uuid) {
        let mut l = Ledger::new(1);
        let id = t.id;
        l.insert(t);
        l.freeze(0, D, read_failed);
        (l, id)
    }

    fn outcome(l: &Ledger) -> Outcome {
        l.tasks(0)[0].classify().outcome
    }

    #[test]
    fn a_repetition_after_a_frozen_one_waits_and_reads_only_for_its_own_tasks() {
        // A repeated workload's repetitions share its ledger slot: the first left a task
        // without a result at its deadline (frozen), then the second published one.
        let (mut l, first) = frozen(task(), false);
        let second = task();
        let second_id = second.id;
        l.insert(second);
        // The drain of the second waits for its own task only, and its bounded reads
        // are not taken by the first's, whose outcome is decided.
        assert_eq!(l.unsettled(0), 1);
        assert_eq!(l.outstanding_ids(0, i64::MAX, usize::MAX), vec![second_id]);
        // A late result of the frozen task changes nothing the second waits for.
        l.result_seen(&first, D + 5, ResultStatus::Success, SeenVia::Notification);
        assert_eq!(l.unsettled(0), 1);
        l.result_seen(
            &second_id,
            D + 6,
            ResultStatus::Success,
            SeenVia::Notification,
        );
        assert_eq!(l.unsettled(0), 0);
        // Freezing again (the second's deadline) marks nothing twice.
        assert_eq!(l.freeze(0, D + 10, false), 0);
        assert_eq!(l.unsettled(0), 0);
        // The read after the workers stopped still looks for the frozen one if unseen.
        let (mut l, first) = frozen(task(), false);
        l.insert(task());
        assert!(l.unseen_after_deadline().contains(&first));
    }

    #[test]
    fn work_finished_after_the_deadline_is_unfinished_never_result_lost() {
        // Started before the deadline, finished and stored after it (the workers kept
        // going, or were stopped gracefully): its result is seen late.
        let mut t = task();
        t.executions.push(exec(5_000, Some(D + 2_000)));
        let (mut l, id) = frozen(t, false);
        assert_eq!(outcome(&l), Outcome::UnfinishedRunning);
        l.result_seen(&id, D + 2_500, ResultStatus::Success, SeenVia::Notification);
        assert_eq!(outcome(&l), Outcome::UnfinishedRunning);
        // Never seen at all: still unfinished (it was running at the deadline).
        let mut t = task();
        t.executions.push(exec(5_000, Some(D + 2_000)));
        assert_eq!(outcome(&frozen(t, false).0), Outcome::UnfinishedRunning);
    }

    #[test]
    fn queued_at_the_deadline_is_unfinished_whether_purged_or_run_later() {
        let (mut l, id) = frozen(task(), false);
        // Nothing known: the broker accepted it and no worker ever ran it.
        assert_eq!(outcome(&l), Outcome::Lost);
        l.mark_purged(&[id]);
        assert_eq!(outcome(&l), Outcome::UnfinishedQueued);
        // In a worker's prefetch: it ran during the next workload.
        let mut t = task();
        t.executions.push(exec(D + 1, Some(D + 100)));
        assert_eq!(outcome(&frozen(t, false).0), Outcome::UnfinishedQueued);
        // Never confirmed and never ran: as without a deadline.
        let mut t = task();
        t.confirm = ConfirmState::Pending;
        assert_eq!(outcome(&frozen(t, false).0), Outcome::Unconfirmed);
    }

    #[test]
    fn a_result_seen_by_the_deadline_decides_even_when_applied_after_the_freeze() {
        let mut t = task();
        t.executions.push(exec(2_000, Some(3_000)));
        let (mut l, id) = frozen(t, false);
        // The notification was stamped before the freeze, and reached the ledger after.
        l.result_seen(&id, D - 1, ResultStatus::Success, SeenVia::Notification);
        assert_eq!(outcome(&l), Outcome::Ok);
        assert_eq!(l.tasks(0)[0].latency_us(), Some(D - 1 - 1_000));
    }

    #[test]
    fn finished_without_a_result_is_result_lost_unless_a_read_failed() {
        let mut t = task();
        t.executions.push(exec(2_000, Some(3_000)));
        let (l, _) = frozen(t.clone(), false);
        assert_eq!(outcome(&l), Outcome::ResultLost);
        let (l, _) = frozen(t.clone(), true);
        assert_eq!(outcome(&l), Outcome::Unknown);
        // Or the read after the workers stopped failed.
        let (mut l, id) = frozen(t, false);
        assert_eq!(l.unseen_after_deadline(), vec![id]);
        l.mark_read_failed(&[id]);
        assert_eq!(outcome(&l), Outcome::Unknown);
        // A failed read says nothing about a task that was still running or never ran.
        let mut t = task();
        t.executions.push(exec(2_000, None));
        assert_eq!(outcome(&frozen(t, true).0), Outcome::UnfinishedRunning);
        assert_eq!(outcome(&frozen(task(), true).0), Outcome::Lost);
    }

    #[test]
    fn only_tasks_without_a_result_are_marked_and_purged_ones_are_not_read_again() {
        let mut l = Ledger::new(2);
        let mut seen = task();
        seen.result_seen_unix_us = Some(5_000);
        seen.result_status = Some(ResultStatus::Success);
        let (a, b) = (task(), task());
        let (ida, idb) = (a.id, b.id);
        let mut other = task();
        other.workload = 1;
        let other_id = other.id;
        for t in [seen, a, b, other] {
            l.insert(t);
        }
        assert_eq!(l.freeze(0, D, false), 2);
        assert_eq!(l.freeze(0, D + 5, false), 0, "frozen once");
        assert_eq!(l.mark_purged(&[idb, other_id, Uuid::new_v4()]), 1);
        assert_eq!(l.unseen_after_deadline(), vec![ida]);
        assert!(l.tasks(0)[0].at_deadline.is_none());
        assert!(l.tasks(1)[0].at_deadline.is_none());
        assert_eq!(l.tasks(0)[0].classify().outcome, Outcome::Ok);
    }
}
