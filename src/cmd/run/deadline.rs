//! The end of a workload's drain and of the run (DESIGN.md §5, "at the drain deadline"):
//! the last read of a workload, the freeze of its outcomes, what is left of it in the
//! queue, and — once the workers stopped consuming — one more read.
//!
//! At workload k's deadline its outcomes are frozen ([`crate::ledger::AtDeadline`]): a
//! task without a result is `unfinished` (running or queued then), whatever it does
//! later; what is left of k in the queue is taken out (by id) before k+1 starts, so k+1
//! measures only its own tasks. A task of k still running goes on during k+1 and is
//! recorded as k's. At the end of the run the workers stop before the last read.

use std::time::Duration;

use super::driver::{Driver, FINAL_READ_ATTEMPTS, PRODUCER};
use crate::backend;
use crate::event::ClientEventKind;
use crate::ledger::SeenVia;
use crate::record::FailedRead;

/// How long taking what is left in the queue may take.
const TAKE_WITHIN: Duration = Duration::from_secs(30);

impl Driver<'_> {
    /// Workload `w`'s drain ended with tasks outstanding (its deadline passed, or the run
    /// was interrupted): read them one last time, freeze its outcomes, take what is left
    /// of it in the queue.
    pub(super) async fn at_deadline(&mut self, w: usize, name: &str) {
        let ids = self.live.ledger().outstanding_ids(w, i64::MAX, usize::MAX);
        let failed = self.read_with_retries(&ids).await.err();
        let at = self.anchor.now_unix_us();
        let frozen = self.live.ledger().freeze(w, at, failed.is_some());
        if let Some((attempts, error)) = failed {
            tracing::warn!(
                "workload {name}: the last reconciliation read failed {attempts} times ({error}): its {} tasks without a result are unknown where a worker finished them",
                ids.len()
            );
            self.failed_read(name, "deadline", attempts, error, ids.len());
        }
        if frozen == 0 {
            return;
        }
        let purged = self.take_leftovers(name).await;
        tracing::warn!(
            "workload {name}: {frozen} tasks without a result at the drain deadline (unfinished); {purged} of them taken out of the queue"
        );
    }

    /// Take what is left in the queue (bounded) and mark the frozen tasks among it as
    /// purged; returns how many those were.
    async fn take_leftovers(&mut self, name: &str) -> usize {
        let taken = tokio::time::timeout(
            TAKE_WITHIN + Duration::from_secs(5),
            crate::broker::leftovers::take_ready(self.publisher.channel(), self.queue, TAKE_WITHIN),
        )
        .await;
        match taken {
            Ok(Ok(t)) => {
                if t.left > 0 {
                    tracing::warn!(
                        "workload {name}: {} messages were still in the queue after {} s of taking them out",
                        t.left,
                        TAKE_WITHIN.as_secs()
                    );
                }
                let ledger = &mut self.live.ledger();
                ledger.mark_purged(&t.ids)
            }
            Ok(Err(e)) => {
                self.live.events.record(
                    PRODUCER,
                    ClientEventKind::Error,
                    format!("taking what was left in the queue: {e:#}"),
                );
                0
            }
            Err(_) => 0,
        }
    }

    /// After the last workload: the workers stop consuming (and finish what they run),
    /// then one more read of every task frozen without a result, so work finished after
    /// a deadline is never mistaken for a result the backend lost.
    pub(super) async fn after_last_workload(&mut self) {
        self.workers.stop().await;
        let frozen = self.live.ledger().any_frozen();
        if frozen {
            // What the stopped workers had prefetched went back to the queue: tasks frozen
            // as queued, which never ran (not lost).
            self.take_leftovers("(end of the run)").await;
        }
        let ids = self.live.ledger().unseen_after_deadline();
        if ids.is_empty() {
            return;
        }
        if let Err((attempts, error)) = self.read_with_retries(&ids).await {
            tracing::warn!(
                "the read after the workers stopped failed {attempts} times ({error}): {} tasks frozen without a result are unknown where a worker finished them",
                ids.len()
            );
            self.live.ledger().mark_read_failed(&ids);
            self.failed_read("", "after_workers_stopped", attempts, error, ids.len());
        }
    }

    /// Read the results of `ids`, trying again (1 s apart) when the read fails: a failed
    /// last read would leave results that exist unseen. On failure: the attempts made and
    /// the last error.
    async fn read_with_retries(&mut self, ids: &[uuid::Uuid]) -> Result<(), (u32, String)> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut error = String::new();
        for attempt in 1..=FINAL_READ_ATTEMPTS {
            match backend::read_results(self.reader, ids).await {
                Ok(found) => {
                    let mut ledger = self.live.ledger();
                    for r in found {
                        ledger.result_seen(&r.id, r.at_unix_us, r.status, SeenVia::Read);
                    }
                    return Ok(());
                }
                Err(e) => {
                    error = format!("{e:#}");
                    self.live.events.record(
                        "results",
                        ClientEventKind::Error,
                        format!("reconciliation read failed: {error}"),
                    );
                }
            }
            if attempt < FINAL_READ_ATTEMPTS {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Err((FINAL_READ_ATTEMPTS, error))
    }

    fn failed_read(&self, workload: &str, read: &str, attempts: u32, error: String, tasks: usize) {
        self.live.failed_reads().push(FailedRead {
            workload: workload.to_string(),
            read: read.to_string(),
            at_unix_ms: crate::clock::now_unix_us() / 1000,
            attempts,
            error,
            tasks: tasks as u64,
        });
    }
}
