//! What is left of a workload in the queue at its drain deadline: taken out (consumed
//! without acknowledgement, so it never runs) and named by task id, before the next
//! workload starts.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use lapin::Channel;
use lapin::options::{BasicCancelOptions, BasicConsumeOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use uuid::Uuid;

use super::queue_state;
use crate::config::QueueKind;
use crate::protocol::CELERY_QUEUE;

/// The consumer tag of the taking (in the broker's consumer list while it runs).
const TAG: &str = "hab-deadline";
/// Quiet this long, the queue is asked whether anything is left.
const QUIET: Duration = Duration::from_millis(200);

/// Messages taken out of the queue.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Task ids of the messages taken.
    pub ids: Vec<Uuid>,
    /// Messages taken without a usable `id` header.
    pub without_id: u64,
    /// Messages still ready when `within` ran out (not taken).
    pub left: u32,
}

/// Take every message ready in the `celery` queue, at most for `within`: consume without
/// acknowledgements until the queue says it has none ready. Workers still consuming keep
/// what they already prefetched; they may take some of the rest meanwhile (those run and
/// are recorded as run after the deadline).
pub async fn take_ready(channel: &Channel, kind: QueueKind, within: Duration) -> Result<Taken> {
    let mut taken = Taken::default();
    let (_, ready) = queue_state(channel, kind).await?;
    if ready == 0 {
        return Ok(taken);
    }
    let started = Instant::now();
    let mut consumer = channel
        .basic_consume(
            ShortString::from(CELERY_QUEUE),
            ShortString::from(TAG),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("consuming queue `celery` to take what is left")?;
    let note = |taken: &mut Taken, d: &lapin::message::Delivery| match header_id(d) {
        Some(id) => taken.ids.push(id),
        None => taken.without_id += 1,
    };
    loop {
        match tokio::time::timeout(QUIET, consumer.next()).await {
            Ok(Some(Ok(d))) => note(&mut taken, &d),
            Ok(Some(Err(e))) => return Err(anyhow::Error::new(e).context("taking what is left")),
            Ok(None) => break,
            Err(_) => {
                let (_, ready) = queue_state(channel, kind).await?;
                if ready == 0 || started.elapsed() > within {
                    taken.left = ready;
                    break;
                }
            }
        }
    }
    channel
        .basic_cancel(ShortString::from(TAG), BasicCancelOptions::default())
        .await
        .context("ending the taking consumer")?;
    // Deliveries already on their way when the consumer was cancelled.
    while let Ok(Some(Ok(d))) = tokio::time::timeout(QUIET, consumer.next()).await {
        note(&mut taken, &d);
    }
    Ok(taken)
}

/// The `id` header of a task message.
fn header_id(d: &lapin::message::Delivery) -> Option<Uuid> {
    let headers = d.properties.headers().as_ref()?;
    match headers.inner().get(&ShortString::from("id"))? {
        AMQPValue::LongString(s) => Uuid::try_parse_ascii(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Uuid::parse_str(s.as_str()).ok(),
        _ => None,
    }
}
