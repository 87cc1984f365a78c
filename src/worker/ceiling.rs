//! The end-to-end ceiling's consumer: the task path with nothing of a worker but the path.
//! It consumes `hab.trivial` messages, stores each result as Celery's Redis backend does
//! (in batches: one `MGET` and one `MULTI SETEX PUBLISH EXEC` per batch,
//! [`ResultStore::store_batch`]), several batches in flight on one multiplexed connection,
//! and acks each stored batch with one `basic.ack` (`multiple`), one ack in flight at a
//! time — and nothing else: no triage, no limits, no side channel, no task threads.
//! `hab calibrate` runs it as a separate process (`hab ceiling-consumer`), as the worker
//! is one, and the `roundtrip/ceiling` bench in-process; what hab's worker adds to the
//! path is the difference to it.

use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;
use tokio_util::sync::CancellationToken;

use crate::backend::ResultStore;
use crate::config::topology::QueueKind;
use crate::protocol::result::ResultRecord;

/// What the ceiling consumer connects to and how hard it drives.
#[derive(Debug, Clone)]
pub struct CeilingOptions {
    /// AMQP URL.
    pub broker_url: String,
    /// Redis URL (or a Sentinel address, as the worker takes it).
    pub backend_url: String,
    /// The `celery` queue's kind and durability, declared as a run declares it.
    pub queue: QueueKind,
    /// Durable queue.
    pub durable: bool,
    /// AMQP heartbeat.
    pub heartbeat: Duration,
    /// Unacked deliveries.
    pub prefetch: u16,
    /// Most results stored in one batch.
    pub batch: usize,
    /// Batches being stored at once.
    pub in_flight: usize,
    /// The result keys' TTL.
    pub ttl: Duration,
}

/// The result hab's worker stores for one `hab.trivial` delivery.
fn record(d: &Delivery) -> Result<ResultRecord> {
    let task = crate::protocol::decode(&d.data, &d.properties)
        .map_err(|e| anyhow::anyhow!("not a Celery task message: {e}"))?;
    Ok(ResultRecord::success(
        &task.id,
        crate::tasks::trivial::run(),
    ))
}

/// Consume until `cancel`; returns how many results were stored and acked.
pub async fn run(opts: &CeilingOptions, cancel: CancellationToken) -> Result<u64> {
    let conn = crate::broker::connect(&opts.broker_url, opts.heartbeat, "hab-ceiling").await?;
    let channel = conn.create_channel().await.context("opening a channel")?;
    crate::broker::declare_queue(&channel, opts.queue, opts.durable).await?;
    let mut consumer = crate::broker::consume(&channel, opts.prefetch, "hab-ceiling").await?;
    let store = ResultStore::connect(&opts.backend_url, opts.ttl).await?;
    let mut stores = FuturesOrdered::new();
    let mut acks = FuturesOrdered::new();
    // The last delivery of the stored batches not yet acked, and how many they hold.
    let mut unacked: Option<(Delivery, u64)> = None;
    let mut done = 0u64;
    let result = loop {
        if acks.is_empty()
            && let Some((d, n)) = unacked.take()
        {
            acks.push_back(async move {
                d.acker
                    .ack(BasicAckOptions { multiple: n > 1 })
                    .await
                    .map(|_| n)
            });
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break Ok(done),
            Some(r) = acks.next(), if !acks.is_empty() => match r {
                Ok(n) => done += n,
                Err(e) => break Err(anyhow::Error::new(e).context("acking")),
            },
            Some(r) = stores.next(), if !stores.is_empty() => match r {
                Ok((last, n)) => {
                    let before = unacked.take().map_or(0, |(_, k)| k);
                    unacked = Some((last, before + n));
                }
                Err(e) => break Err(e),
            },
            d = consumer.next(), if stores.len() < opts.in_flight => {
                let first = match d {
                    Some(Ok(d)) => d,
                    Some(Err(e)) => break Err(anyhow::Error::new(e).context("consumer failed")),
                    None => break Err(anyhow::anyhow!("the broker ended the consumer")),
                };
                // Whatever else already arrived joins the batch.
                let mut batch = vec![first];
                while batch.len() < opts.batch {
                    match consumer.next().now_or_never() {
                        Some(Some(Ok(d))) => batch.push(d),
                        _ => break,
                    }
                }
                let records = match batch.iter().map(record).collect::<Result<Vec<_>>>() {
                    Ok(r) => r,
                    Err(e) => break Err(e),
                };
                let store = store.clone();
                let n = batch.len() as u64;
                let last = batch.pop().expect("a batch has its first delivery");
                stores.push_back(async move {
                    let refs: Vec<&ResultRecord> = records.iter().collect();
                    store
                        .store_batch(&refs)
                        .await
                        .map(|_| (last, n))
                        .context("storing results")
                });
            }
        }
    };
    let _ = tokio::time::timeout(
        crate::broker::CLOSE_TIMEOUT,
        conn.close(200, lapin::types::ShortString::from("done")),
    )
    .await;
    result
}
