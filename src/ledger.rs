//! The ledger: one record per task, from its intended start to its result, and the
//! classification of every task into an outcome (DESIGN.md §5).
//!
//! The producer fills in what it knows (intended, published, confirmed, result seen); the
//! workers' side channel (files in the run directory, independent of RabbitMQ and Redis)
//! fills in every execution. Only then is a task classified, so a task that never ran is
//! told apart from one whose result went missing.

use crate::protocol::result::ResultStatus;
use crate::protocol::side_channel::{SideEvent, SideEventKind};
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod deadline;
pub use deadline::AtDeadline;

/// What the broker said about a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfirmState {
    /// Published, confirmation not (yet) received.
    Pending,
    /// The broker confirmed the message (it is stored).
    Acked,
    /// The broker refused the message (basic.nack).
    Nacked,
    /// The publish call itself failed (connection or channel error).
    Failed,
    /// Publisher confirms are off: the producer cannot know.
    NotRequested,
    /// Never attempted: the producer's circuit breaker was open (`policy = "breaker"`).
    Refused,
    /// Attempted and given up: every attempt the producer's policy allows failed
    /// (`policy = "retry"`, or the breaker's one attempt).
    GaveUp,
}

impl ConfirmState {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmState::Pending => "pending",
            ConfirmState::Acked => "acked",
            ConfirmState::Nacked => "nacked",
            ConfirmState::Failed => "failed",
            ConfirmState::NotRequested => "not_requested",
            ConfirmState::Refused => "refused",
            ConfirmState::GaveUp => "gave_up",
        }
    }

    /// Every confirm state.
    pub const ALL: [ConfirmState; 7] = [
        ConfirmState::Pending,
        ConfirmState::Acked,
        ConfirmState::Nacked,
        ConfirmState::Failed,
        ConfirmState::NotRequested,
        ConfirmState::Refused,
        ConfirmState::GaveUp,
    ];

    /// The confirm state named `s` in files (tasks.csv).
    pub fn parse(s: &str) -> Option<ConfirmState> {
        ConfirmState::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// How a task was seen to finish by the producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeenVia {
    /// A Redis pub/sub notification.
    Notification,
    /// A reconciliation read of the result key (the notification was missed or late).
    Read,
}

impl SeenVia {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            SeenVia::Notification => "notification",
            SeenVia::Read => "read",
        }
    }

    /// Both ways a result is seen.
    pub const ALL: [SeenVia; 2] = [SeenVia::Notification, SeenVia::Read];

    /// The way named `s` in files (tasks.csv).
    pub fn parse(s: &str) -> Option<SeenVia> {
        SeenVia::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One execution of a task by a worker, as reported through the side channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// Name of the worker process that ran it (shared by every execution of that worker:
    /// a million-task run holds a million executions).
    pub worker: std::sync::Arc<str>,
    /// When the worker started executing, unix µs.
    pub started_unix_us: i64,
    /// When it finished, unix µs; `None` if the worker died before finishing.
    pub finished_unix_us: Option<i64>,
    /// Whether the task function returned normally (`None` while unfinished).
    pub succeeded: Option<bool>,
}

/// Everything known about one task.
#[derive(Debug, Clone)]
pub struct TaskRecord {
    /// The Celery task id.
    pub id: Uuid,
    /// Index of the workload in the plan.
    pub workload: usize,
    /// Which repetition of its workload the task belongs to, from 1 (a workload with
    /// `repeat = N` runs N times back to back in the same ledger slot; 1 otherwise).
    pub repetition: u32,
    /// When the schedule intended the task to start, unix µs (latency is measured from here).
    pub intended_unix_us: i64,
    /// When the publish call was made, unix µs.
    pub published_unix_us: Option<i64>,
    /// When the broker's confirmation arrived, unix µs.
    pub confirmed_unix_us: Option<i64>,
    /// The broker's answer to the publish.
    pub confirm: ConfirmState,
    /// When the producer saw the final result, unix µs.
    pub result_seen_unix_us: Option<i64>,
    /// The final state in the result record.
    pub result_status: Option<ResultStatus>,
    /// Whether the result was seen by notification or by a reconciliation read.
    pub seen_via: Option<SeenVia>,
    /// Every execution the workers reported, in start order.
    pub executions: Vec<Execution>,
    /// Times the producer published this task again because the broker did not confirm
    /// it (nack, lost confirmation, publish error).
    pub republished: u32,
    /// When the producer refused the task or gave it up (`confirm` is `refused` or
    /// `gave_up`), unix µs.
    pub refused_unix_us: Option<i64>,
    /// What the task was at its workload's drain deadline, for a task without a result by
    /// then (boxed: only such tasks pay for it). `None`: settled before, or no deadline
    /// passed (the workload drained).
    pub at_deadline: Option<Box<AtDeadline>>,
}

impl TaskRecord {
    /// A task scheduled at `intended_unix_us`, not yet published.
    pub fn new(id: Uuid, workload: usize, intended_unix_us: i64) -> Self {
        TaskRecord {
            id,
            workload,
            repetition: 1,
            intended_unix_us,
            published_unix_us: None,
            confirmed_unix_us: None,
            confirm: ConfirmState::Pending,
            result_seen_unix_us: None,
            result_status: None,
            seen_via: None,
            executions: Vec::new(),
            republished: 0,
            refused_unix_us: None,
            at_deadline: None,
        }
    }

    /// True once the producer has nothing more to wait for: a result was seen, or the
    /// publish is known to have failed.
    pub fn settled(&self) -> bool {
        self.result_seen_unix_us.is_some()
            || matches!(
                self.confirm,
                ConfirmState::Nacked
                    | ConfirmState::Failed
                    | ConfirmState::Refused
                    | ConfirmState::GaveUp
            )
    }

    /// True while its workload's drain still waits for it: not settled, and not frozen
    /// at a drain deadline (a frozen task's outcome is decided; a later repetition of
    /// its workload must not wait or read for it).
    fn waiting(&self) -> bool {
        !self.settled() && self.at_deadline.is_none()
    }

    /// End-to-end latency in µs: result seen − intended start.
    pub fn latency_us(&self) -> Option<i64> {
        self.result_seen_unix_us.map(|s| s - self.intended_unix_us)
    }

    /// The execution whose work the result reflects: the first one that finished, else the
    /// first one started.
    pub fn main_execution(&self) -> Option<&Execution> {
        self.executions
            .iter()
            .filter(|e| e.finished_unix_us.is_some())
            .min_by_key(|e| e.finished_unix_us)
            .or_else(|| self.executions.first())
    }

    /// Classify the task. Call after the drain, with the side channel merged. A task
    /// without a result at its workload's drain deadline is classified as it was then
    /// ([`AtDeadline`]); any other by what was seen.
    pub fn classify(&self) -> Classification {
        let outcome = match &self.at_deadline {
            Some(d) => d.outcome(self),
            None => {
                let executed = !self.executions.is_empty();
                match (self.result_status, executed) {
                    (Some(ResultStatus::Success), _) => Outcome::Ok,
                    (Some(ResultStatus::Failure), _) => Outcome::Failed,
                    (Some(ResultStatus::Revoked), _) => Outcome::Revoked,
                    (None, true) => Outcome::ResultLost,
                    (None, false) => self.never_executed(),
                }
            }
        };
        Classification {
            outcome,
            duplicated: self.executions.len() > 1,
        }
    }

    /// The outcome of a task no worker ran, by what the broker said of its publish.
    fn never_executed(&self) -> Outcome {
        match self.confirm {
            ConfirmState::Nacked | ConfirmState::Failed | ConfirmState::Pending => {
                Outcome::Unconfirmed
            }
            ConfirmState::Refused => Outcome::Refused,
            ConfirmState::GaveUp => Outcome::GaveUp,
            ConfirmState::Acked | ConfirmState::NotRequested => Outcome::Lost,
        }
    }
}

/// The primary outcome of a task. Exactly one per task; `ok + failed + revoked + lost +
/// result_lost + unconfirmed + refused + gave_up + unfinished_running + unfinished_queued +
/// unknown` = tasks scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A SUCCESS result was seen.
    Ok,
    /// A FAILURE result was seen (the task raised).
    Failed,
    /// Confirmed by the broker (or confirms off) but never executed by any worker, and not
    /// in the queue at its workload's drain deadline.
    Lost,
    /// Executed by a worker (finished by the drain deadline), but no result could be read.
    ResultLost,
    /// Never executed, and the broker never confirmed the publish: the producer knew it
    /// might not have arrived (nacked, publish error, or no confirmation at all).
    Unconfirmed,
    /// Never published: the producer's circuit breaker refused it without an attempt
    /// (fail fast). Not a loss the stack caused: the caller was told at once.
    Refused,
    /// Never executed, and the producer gave it up after the attempts its policy allows
    /// (retry exhausted, or the breaker's one attempt failed): the caller was told.
    GaveUp,
    /// A REVOKED result was seen: Celery revoked the task, or it expired before it ran.
    /// Over, but neither ok nor failed.
    Revoked,
    /// No result by its workload's drain deadline, and a worker had started it by then
    /// (still running, or finished with its result not yet seen): the deadline was too
    /// short, not a loss.
    UnfinishedRunning,
    /// No worker had started it by its workload's drain deadline: it was still in the
    /// queue (taken out then) or in a worker's prefetch (it ran later). Not a loss.
    UnfinishedQueued,
    /// A worker finished it by the drain deadline, but the read that could have found its
    /// result failed: whether the result exists is unknown (never `result_lost`).
    Unknown,
}

impl Outcome {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Lost => "lost",
            Outcome::ResultLost => "result_lost",
            Outcome::Unconfirmed => "unconfirmed",
            Outcome::Refused => "refused",
            Outcome::GaveUp => "gave_up",
            Outcome::Revoked => "revoked",
            Outcome::UnfinishedRunning => "unfinished_running",
            Outcome::UnfinishedQueued => "unfinished_queued",
            Outcome::Unknown => "unknown",
        }
    }

    /// Every outcome, in the order of the files' columns.
    pub const ALL: [Outcome; 11] = [
        Outcome::Ok,
        Outcome::Failed,
        Outcome::Lost,
        Outcome::ResultLost,
        Outcome::Unconfirmed,
        Outcome::Refused,
        Outcome::GaveUp,
        Outcome::UnfinishedRunning,
        Outcome::UnfinishedQueued,
        Outcome::Unknown,
        Outcome::Revoked,
    ];

    /// The outcome named `s` in files (tasks.csv).
    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The outcome of a task plus whether it ran more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// The primary outcome.
    pub outcome: Outcome,
    /// Executed more than once (started twice or more), whatever the outcome.
    pub duplicated: bool,
}

/// Counts of outcomes over a set of tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Tasks published (or attempted).
    pub count: u64,
    /// SUCCESS results.
    pub ok: u64,
    /// FAILURE results.
    pub failed: u64,
    /// Never executed although accepted by the broker.
    pub lost: u64,
    /// Executed, result missing.
    pub result_lost: u64,
    /// Executed more than once.
    pub duplicated: u64,
    /// Never executed and never confirmed.
    pub unconfirmed: u64,
    /// Refused by the producer's open circuit breaker (never published).
    #[serde(default)]
    pub refused: u64,
    /// Given up by the producer after its policy's attempts failed.
    #[serde(default)]
    pub gave_up: u64,
    /// REVOKED results (revoked, or expired before a worker ran them).
    #[serde(default)]
    pub revoked: u64,
    /// No result by the drain deadline, started by a worker by then.
    #[serde(default)]
    pub unfinished_running: u64,
    /// No result by the drain deadline, not started by then (queued).
    #[serde(default)]
    pub unfinished_queued: u64,
    /// Finished by the drain deadline, result unknown: the read failed.
    #[serde(default)]
    pub unknown: u64,
}

impl OutcomeCounts {
    /// Tasks without a result by their drain deadline (running or queued then).
    pub fn unfinished(&self) -> u64 {
        self.unfinished_running + self.unfinished_queued
    }

    /// Add one classified task.
    pub fn add(&mut self, c: Classification) {
        self.count += 1;
        match c.outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Lost => self.lost += 1,
            Outcome::ResultLost => self.result_lost += 1,
            Outcome::Unconfirmed => self.unconfirmed += 1,
            Outcome::Refused => self.refused += 1,
            Outcome::GaveUp => self.gave_up += 1,
            Outcome::Revoked => self.revoked += 1,
            Outcome::UnfinishedRunning => self.unfinished_running += 1,
            Outcome::UnfinishedQueued => self.unfinished_queued += 1,
            Outcome::Unknown => self.unknown += 1,
        }
        if c.duplicated {
            self.duplicated += 1;
        }
    }
}

/// Where a task lives in the ledger.
#[derive(Debug, Clone, Copy)]
struct Slot {
    workload: u32,
    index: u32,
}

/// Task id → where the task lives. A run tracks a million tasks and more, so the index is
/// keyed by the low 64 bits of the id (16-byte entries instead of 32): random v4 ids share
/// those bits with probability ~1e-7 in a million, and an id whose low bits are taken
/// goes to `overflow`, keyed by the whole id. A lookup checks the id of the task it finds.
#[derive(Debug, Default)]
struct IdIndex {
    by_low: HashMap<u64, Slot>,
    overflow: HashMap<Uuid, Slot>,
}

fn low_bits(id: &Uuid) -> u64 {
    id.as_u64_pair().1
}

impl IdIndex {
    fn insert(&mut self, id: Uuid, slot: Slot, workloads: &[Vec<TaskRecord>]) {
        use std::collections::hash_map::Entry;
        match self.by_low.entry(low_bits(&id)) {
            Entry::Vacant(v) => {
                v.insert(slot);
            }
            Entry::Occupied(mut o) => {
                let held = *o.get();
                if workloads[held.workload as usize][held.index as usize].id == id {
                    o.insert(slot);
                } else {
                    self.overflow.insert(id, slot);
                }
            }
        }
    }

    fn get(&self, id: &Uuid, workloads: &[Vec<TaskRecord>]) -> Option<Slot> {
        if let Some(&slot) = self.by_low.get(&low_bits(id))
            && workloads[slot.workload as usize][slot.index as usize].id == *id
        {
            return Some(slot);
        }
        self.overflow.get(id).copied()
    }

    fn reserve(&mut self, n: usize) {
        self.by_low.reserve(n);
    }
}

/// All tasks of a run, by workload, with an index by task id.
#[derive(Debug, Default)]
pub struct Ledger {
    workloads: Vec<Vec<TaskRecord>>,
    by_id: IdIndex,
    unknown_results: u64,
    progress_results: u64,
    /// Tasks not yet settled, per workload: kept as tasks change, so the drain loop's
    /// question costs nothing however many tasks the run tracks.
    unsettled: Vec<usize>,
    /// Why a worker failed or refused a task, from the side channel (`TypeError`,
    /// `refused:factorial_limit`, `refused:worker_lost`, `not_registered`, …): only tasks
    /// that have one pay for it.
    failures: HashMap<Uuid, Box<str>>,
}

impl Ledger {
    /// An empty ledger for `n` workloads.
    pub fn new(n: usize) -> Self {
        Ledger {
            workloads: (0..n).map(|_| Vec::new()).collect(),
            by_id: IdIndex::default(),
            unknown_results: 0,
            progress_results: 0,
            unsettled: vec![0; n],
            failures: HashMap::new(),
        }
    }

    /// Why a worker failed or refused `id` (the side channel's last word on it), if it did.
    pub fn failure_of(&self, id: &Uuid) -> Option<&str> {
        self.failures.get(id).map(|s| &**s)
    }

    /// Add a task; returns its index within its workload.
    pub fn insert(&mut self, record: TaskRecord) -> usize {
        let w = record.workload;
        let list = &mut self.workloads[w];
        let index = list.len();
        let slot = Slot {
            workload: u32::try_from(w).expect("fewer than 2^32 workloads"),
            index: u32::try_from(index).expect("fewer than 2^32 tasks per workload"),
        };
        let id = record.id;
        if record.waiting() {
            self.unsettled[w] += 1;
        }
        list.push(record);
        self.by_id.insert(id, slot, &self.workloads);
        index
    }

    /// The tasks of workload `w`.
    pub fn tasks(&self, w: usize) -> &[TaskRecord] {
        &self.workloads[w]
    }

    /// Change task `index` of workload `w` (the unsettled count follows).
    pub fn update<R>(&mut self, w: usize, index: usize, f: impl FnOnce(&mut TaskRecord) -> R) -> R {
        let t = &mut self.workloads[w][index];
        let before = t.waiting();
        let r = f(t);
        let after = t.waiting();
        match (before, after) {
            (true, false) => self.unsettled[w] -= 1,
            (false, true) => self.unsettled[w] += 1,
            _ => {}
        }
        r
    }

    /// Record that the result of `id` was seen. The earliest sighting wins (a read can
    /// overtake an earlier-stamped notification still on its way to the ledger); results
    /// of tasks that are not in the ledger (warm-up, other runs) are counted and ignored.
    pub fn result_seen(&mut self, id: &Uuid, at_unix_us: i64, status: ResultStatus, via: SeenVia) {
        let Some(slot) = self.by_id.get(id, &self.workloads) else {
            self.unknown_results += 1;
            return;
        };
        self.update(slot.workload as usize, slot.index as usize, |t| {
            if t.result_seen_unix_us.is_none_or(|seen| at_unix_us < seen) {
                t.result_seen_unix_us = Some(at_unix_us);
                t.result_status = Some(status);
                t.seen_via = Some(via);
            }
        });
    }

    /// Results seen for task ids that are not in this ledger.
    pub fn unknown_results(&self) -> u64 {
        self.unknown_results
    }

    /// Count a result record in a progress state (STARTED, RETRY …): it settles nothing.
    pub fn progress_seen(&mut self) {
        self.progress_results += 1;
    }

    /// Result records seen in a progress state.
    pub fn progress_results(&self) -> u64 {
        self.progress_results
    }

    /// Number of tasks of workload `w` its drain still waits for: not settled, and not
    /// frozen at a drain deadline.
    pub fn unsettled(&self, w: usize) -> usize {
        self.unsettled[w]
    }

    /// Ids of published tasks of workload `w` with no result seen yet, published before
    /// `before_unix_us`, oldest first, at most `limit`. Only the workload being driven is
    /// read: an earlier one is settled (drained, or frozen at its deadline), and its
    /// unresolved tasks must not take the current workload's place in a bounded read.
    /// Tasks frozen at a deadline are left out too (an earlier repetition's, in the same
    /// slot): the read after the workers stopped looks for them.
    pub fn outstanding_ids(&self, w: usize, before_unix_us: i64, limit: usize) -> Vec<Uuid> {
        self.workloads[w]
            .iter()
            .filter(|t| {
                t.result_seen_unix_us.is_none()
                    && t.at_deadline.is_none()
                    && t.published_unix_us.is_some_and(|p| p < before_unix_us)
                    && !matches!(t.confirm, ConfirmState::Failed)
            })
            .map(|t| t.id)
            .take(limit)
            .collect()
    }

    /// Forget every merged execution (before merging the side channel again).
    pub fn clear_executions(&mut self) {
        self.failures.clear();
        for list in &mut self.workloads {
            for t in list.iter_mut() {
                t.executions.clear();
            }
        }
    }

    /// Merge one side-channel event, pairing a finish with its worker's open start of the
    /// same task. `names` interns worker names. Returns true if it was an execution
    /// start of a task of this ledger (events of unknown ids, i.e. warm-up, are ignored).
    pub fn merge_event(&mut self, ev: &SideEvent, names: &mut Vec<std::sync::Arc<str>>) -> bool {
        let Some(slot) = self.by_id.get(&ev.task_id, &self.workloads) else {
            return false;
        };
        let t = &mut self.workloads[slot.workload as usize][slot.index as usize];
        match ev.kind {
            SideEventKind::Start => {
                let worker = match names.iter().find(|n| ***n == *ev.worker) {
                    Some(n) => n.clone(),
                    None => {
                        let n: std::sync::Arc<str> = ev.worker.as_str().into();
                        names.push(n.clone());
                        n
                    }
                };
                // Almost every task runs once: room for exactly one execution (a first
                // push would reserve four, 192 bytes per task of a million-task run).
                if t.executions.capacity() == 0 {
                    t.executions.reserve_exact(1);
                }
                t.executions.push(Execution {
                    worker,
                    started_unix_us: ev.unix_us,
                    finished_unix_us: None,
                    succeeded: None,
                });
                true
            }
            SideEventKind::Finish { succeeded } => {
                if !succeeded {
                    self.failures.insert(ev.task_id, ev.detail.as_str().into());
                }
                if let Some(e) = t
                    .executions
                    .iter_mut()
                    .find(|e| *e.worker == *ev.worker && e.finished_unix_us.is_none())
                {
                    e.finished_unix_us = Some(ev.unix_us);
                    e.succeeded = Some(succeeded);
                }
                false
            }
            SideEventKind::Refused => {
                self.failures
                    .insert(ev.task_id, format!("refused:{}", ev.detail).into());
                false
            }
            SideEventKind::Reject => {
                self.failures.insert(ev.task_id, ev.detail.as_str().into());
                false
            }
            SideEventKind::Disconnected
            | SideEventKind::Connected
            | SideEventKind::Rediscovered
            | SideEventKind::StoreError
            | SideEventKind::Clock => false,
        }
    }

    /// Put every task's executions in start order (after merging).
    pub fn sort_executions(&mut self) {
        for list in &mut self.workloads {
            for t in list.iter_mut() {
                t.executions.sort_by_key(|e| e.started_unix_us);
            }
        }
    }

    /// Reserve room for `n` more tasks of workload `w` (its count is known before it
    /// starts): the lists then never grow by doubling, which briefly holds two copies.
    pub fn reserve(&mut self, w: usize, n: usize) {
        self.workloads[w].reserve_exact(n);
        self.by_id.reserve(n);
    }

    /// Merge executions reported by the workers (replacing any merged before).
    /// Executions of unknown ids are ignored (warm-up tasks); returns how many were merged.
    pub fn merge_executions(&mut self, events: &[SideEvent]) -> usize {
        self.clear_executions();
        let mut names = Vec::new();
        let merged = events
            .iter()
            .filter(|ev| self.merge_event(ev, &mut names))
            .count();
        self.sort_executions();
        merged
    }
}

#[cfg(test)]
mod tests;
