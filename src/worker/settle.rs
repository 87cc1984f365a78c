//! Settling finished tasks: their results stored in batches (one `MGET`, one
//! `MULTI … EXEC`), then their messages acknowledged in batch order (one `multiple` ack for
//! the run of finished deliveries at the low end, single acks for the others).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use lapin::options::BasicAckOptions;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use super::{Finished, Session, Shared};
use crate::config::AckMode;
use crate::protocol::result::ResultRecord;
use crate::protocol::side_channel::SideEventKind;

/// Finished tasks settled together at most (one `MGET`, one transaction, one ack).
const SETTLE_BATCH: usize = 256;
/// Batches being stored at once: while one waits for Redis, the next one fills.
const SETTLE_IN_FLIGHT: usize = 4;

/// Store and acknowledge finished tasks in batches until `stop`, then settle what is
/// still queued and wait for every batch in flight.
pub(super) async fn settle(
    s: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Finished>,
    batches: TaskTracker,
    stop: CancellationToken,
) {
    let in_flight = Arc::new(Semaphore::new(SETTLE_IN_FLIGHT));
    loop {
        // Wait for a free batch slot first, so finished tasks pile up into one batch
        // while Redis is busy with the previous ones.
        let permit = in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore closed");
        let mut batch = Vec::with_capacity(SETTLE_BATCH);
        // On stop: whatever is still queued is the last batch.
        let last = tokio::select! {
            n = rx.recv_many(&mut batch, SETTLE_BATCH) => n == 0,
            _ = stop.cancelled() => {
                while let Ok(f) = rx.try_recv() {
                    batch.push(f);
                }
                true
            }
        };
        if !batch.is_empty() {
            let s = s.clone();
            batches.spawn(async move {
                settle_batch(&s, batch).await;
                drop(permit);
            });
        }
        if last {
            break;
        }
    }
    batches.close();
    batches.wait().await;
}

/// Store a batch's results (retrying, 50 ms doubling, 5 attempts), then acknowledge
/// them; a batch that cannot be stored is handed back to the broker (late acks).
async fn settle_batch(s: &Shared, batch: Vec<Finished>) {
    let records: Vec<&ResultRecord> = batch.iter().filter_map(|f| f.record.as_ref()).collect();
    if records.is_empty() {
        if s.opts.acks == AckMode::Late {
            ack_finished(s, &batch).await;
        }
        return;
    }
    let mut delay = Duration::from_millis(50);
    for attempt in 1..=5 {
        match s.store.store_batch(&records).await {
            Ok(outcomes) => {
                let kept = outcomes
                    .iter()
                    .filter(|o| **o == crate::backend::StoreOutcome::KeptExistingSuccess)
                    .count();
                s.stats
                    .kept_existing
                    .fetch_add(kept as u64, Ordering::Relaxed);
                if s.opts.acks == AckMode::Late {
                    ack_finished(s, &batch).await;
                }
                return;
            }
            Err(e) => {
                tracing::warn!(
                    "storing {} results failed (attempt {attempt}): {e:#}",
                    records.len()
                );
                let detail = format!("attempt {attempt}: {e:#}");
                for r in &records {
                    let id = Uuid::parse_str(&r.task_id).unwrap_or(Uuid::nil());
                    s.side.record(SideEventKind::StoreError, id, &detail);
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    s.stats
        .store_errors
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    if s.opts.acks == AckMode::Late {
        // The results could not be stored: give the messages back so they run again
        // (at-least-once), rather than acknowledging tasks with no result.
        for f in &batch {
            super::requeue(&f.session, &f.acker, f.tag).await;
        }
    }
}

/// Acknowledge a stored batch: per session, one `multiple` ack for the run of finished
/// deliveries at the low end and single acks for the others.
async fn ack_finished(s: &Shared, batch: &[Finished]) {
    let mut sessions: Vec<&Arc<Session>> = Vec::new();
    for f in batch {
        if !sessions.iter().any(|s| Arc::ptr_eq(s, &f.session)) {
            sessions.push(&f.session);
        }
    }
    for session in sessions {
        let _in_order = session.ack_order.lock().await;
        let tags = batch
            .iter()
            .filter(|f| Arc::ptr_eq(&f.session, session))
            .map(|f| f.tag);
        let plan = session.acks.lock().expect("ack tracker").finished(tags);
        let mut sends = Vec::with_capacity(plan.frames());
        if let Some((_, acker, multiple)) = &plan.multiple {
            sends.push((acker, *multiple));
        }
        for (_, acker) in &plan.singles {
            sends.push((acker, false));
        }
        let multiple = sends.iter().filter(|(_, m)| *m).count() as u64;
        s.stats.multiple_acks.fetch_add(multiple, Ordering::Relaxed);
        s.stats
            .single_acks
            .fetch_add(sends.len() as u64 - multiple, Ordering::Relaxed);
        let acks = sends.into_iter().map(|(acker, multiple)| async move {
            if let Err(e) = acker.ack(BasicAckOptions { multiple }).await {
                tracing::warn!("ack failed: {e}");
            }
        });
        futures_util::future::join_all(acks).await;
    }
}
