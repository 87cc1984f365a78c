//! hab's worker: consume → execute → store result → ack.
//!
//! A worker reads Celery protocol v2 messages from the `celery` queue, runs at most
//! `concurrency` tasks at once (CPU and disk work on blocking threads), stores each result
//! as Celery's Redis backend does and acknowledges the message after the result is stored
//! (at-least-once; `acks = "early"` acks on start, as Celery does by default). Result
//! writes and acks are pipelined: an execution slot is released as soon as the task
//! function returns, so a slow Redis round trip never idles a slot, and finished tasks
//! are settled in batches — whatever finished while the previous batch was being stored:
//! one `MGET` and one `MULTI … EXEC` for the batch's results (Celery's rule for each, see
//! [`ResultStore::store_batch`]), then one `basic.ack` with `multiple` for the run of
//! finished deliveries ([`acks::AckTracker`]). Under load that is a few frames and round
//! trips per hundred tasks instead of four per task; a lone task is stored and acked
//! exactly as Celery does.
//!
//! A message is untrusted input (on an external stack anyone with the broker's credentials
//! can publish): before anything runs, the worker refuses — with a `FAILURE` naming the
//! rule, the message acknowledged and counted — a body over `workers.limits`, arguments
//! over the limits ([`crate::tasks::Task::check`]), a `write_zeros` path outside its
//! scratch directory ([`crate::tasks::scratch`]), Celery features it does not implement
//! (callbacks, errbacks, chain, chord, time limits), and a task whose worker already died
//! `crash_limit` times while running it ([`crashes`]). It honours `eta`/`countdown` (held
//! without a slot, the prefetch raised meanwhile, as Celery does), `expires` (`REVOKED`,
//! not run) and `ignore_result`.
//!
//! Every execution is also appended to a side channel (a file in the run directory, one
//! line per event, written before the ack) that does not pass through RabbitMQ or Redis, so
//! the ledger can tell a task the broker lost from one whose result went missing.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions, BasicRejectOptions};
use lapin::types::ShortString;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::backend::ResultStore;
use crate::broker;
use crate::client_failover::{
    AfterLoss, DiscoveryEvent, NODE_ATTEMPT_TIMEOUT, NodeRotation, broker_urls, url_host,
};
use crate::clock::now_unix_us;
use crate::config::limits::WorkerLimits;
use crate::config::{AckMode, QueueKind};
use crate::protocol::side_channel::{self, SideEvent, SideEventKind};

use crate::protocol::result::ResultRecord;
use crate::tasks::scratch::Scratch;

pub mod acks;
pub mod ceiling;
pub mod crashes;
mod settle;
pub mod triage;

use acks::AckTracker;
use crashes::CrashIndex;
use settle::settle;
use triage::{Disposition, triage};

/// Everything a worker process needs to know.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Worker name, unique within a run (`w1`, `w2`, …); also the consumer tag.
    pub name: String,
    /// AMQP URL of the broker (or of the proxy in front of it).
    pub broker_url: String,
    /// Redis URL of the result backend.
    pub backend_url: String,
    /// The queue kind, so the worker declares the queue exactly as the producer does.
    pub queue: QueueKind,
    /// Whether the queue is durable (declared the same way as the producer does).
    pub durable: bool,
    /// AMQP heartbeat.
    pub heartbeat: Duration,
    /// Redis keepalive interval (`backend.keepalive`); zero = off.
    pub keepalive: Duration,
    /// Tasks executed at once.
    pub concurrency: u32,
    /// Unacknowledged deliveries the broker may push to this worker.
    pub prefetch: u16,
    /// When to acknowledge a message.
    pub acks: AckMode,
    /// TTL of result keys.
    pub result_ttl: Duration,
    /// Side-channel file this worker appends its executions to.
    pub executions_file: PathBuf,
    /// The only directory `hab.write_zeros` may create files in.
    pub scratch: PathBuf,
    /// How much one message may ask for, and the crash limit of a poison message.
    pub limits: WorkerLimits,
    /// How long to let running tasks finish after a stop request.
    pub shutdown_grace: Duration,
}

/// Counters a worker logs when it stops.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Tasks executed (started).
    pub executed: AtomicU64,
    /// Messages rejected without execution (malformed or unknown task).
    pub rejected: AtomicU64,
    /// Results not written because a SUCCESS was already stored (duplicate executions).
    pub kept_existing: AtomicU64,
    /// Result writes that failed (the message was returned to the queue).
    pub store_errors: AtomicU64,
    /// Messages refused by rule or expired (settled with a FAILURE or REVOKED result).
    pub refused: AtomicU64,
    /// `basic.ack` frames sent with `multiple` (each settles a run of deliveries).
    pub multiple_acks: AtomicU64,
    /// `basic.ack` frames sent for one delivery each.
    pub single_acks: AtomicU64,
}

/// The append-only side channel. Each event is one `write` on an `O_APPEND` file: lines
/// are atomic and reach the kernel before the message is acknowledged, so even a SIGKILL
/// loses nothing that was reported. The worker holds an exclusive `flock` on the file for
/// as long as it lives, so other workers can tell its file from a dead worker's
/// ([`crashes`]).
#[derive(Debug)]
pub struct SideChannel {
    file: nix::fcntl::Flock<File>,
    worker: String,
    /// The file's length when this process opened it.
    opened_at: u64,
}

impl SideChannel {
    /// Open (create) the file for appending, lock it, and write the header if it is new.
    pub fn open(path: &Path, worker: &str) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open side channel {}", path.display()))?;
        let mut file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| {
            anyhow::anyhow!(
                "side channel {} is locked by another live worker ({e}); give each \
                     worker its own --executions file",
                path.display()
            )
        })?;
        let opened_at = file.metadata()?.len();
        if opened_at == 0 {
            file.write_all(format!("{}\n", side_channel::HEADER).as_bytes())?;
        }
        let side = SideChannel {
            file,
            worker: worker.to_string(),
            opened_at,
        };
        // Which clock this process's lines are stamped with (the run's, when it started
        // this worker), so the run can tell which intervals share one time line.
        side.record(
            SideEventKind::Clock,
            Uuid::nil(),
            &crate::clock::side_channel_detail(std::process::id(), crate::clock::anchor()),
        );
        Ok(side)
    }

    /// Append one event, stamped with hab's clock ([`crate::clock::now_unix_us`]: the
    /// monotonic clock through the process's anchor).
    pub fn record(&self, kind: SideEventKind, task_id: Uuid, detail: &str) {
        let line = side_channel::format(&SideEvent {
            kind,
            unix_us: now_unix_us(),
            task_id,
            worker: self.worker.clone(),
            detail: detail.to_string(),
        });
        if let Err(e) = (&*self.file).write_all(line.as_bytes()) {
            tracing::error!("side channel write failed: {e}");
        }
    }
}

struct Shared {
    opts: WorkerOptions,
    store: ResultStore,
    side: SideChannel,
    scratch: Arc<Scratch>,
    /// Unfinished starts of dead workers, read when a redelivered message arrives.
    crashes: std::sync::Mutex<CrashIndex>,
    /// The worker's stop: ends the wait of a message held for its `eta`.
    stop: CancellationToken,
    slots: Arc<Semaphore>,
    stats: WorkerStats,
    /// Finished tasks on their way to the settler.
    finished: mpsc::UnboundedSender<Finished>,
}

/// One broker connection's consumer channel: its outstanding deliveries. Delivery tags
/// are per channel, so every reconnection starts a new session.
struct Session {
    acks: std::sync::Mutex<AckTracker<lapin::Acker>>,
    /// Held while a batch's acks are planned and handed to the connection: batches are
    /// stored concurrently, and a later batch's `multiple` ack must never reach the
    /// broker before an earlier batch's single ack of a lower tag (the broker would see
    /// that tag acked twice, an unknown delivery tag, and close the channel).
    ack_order: tokio::sync::Mutex<()>,
    channel: lapin::Channel,
    /// Messages held for their `eta`: the prefetch is raised by this many, as Celery
    /// does, so held messages never starve the slots.
    held: std::sync::Mutex<u16>,
}

impl Session {
    fn new(channel: lapin::Channel) -> Self {
        Session {
            acks: Default::default(),
            ack_order: tokio::sync::Mutex::new(()),
            channel,
            held: std::sync::Mutex::new(0),
        }
    }

    /// One more (`true`) or one fewer message held for its eta: the prefetch follows.
    async fn hold(&self, prefetch: u16, more: bool) {
        let count = {
            let mut held = self.held.lock().expect("held count");
            *held = if more {
                held.saturating_add(1)
            } else {
                held.saturating_sub(1)
            };
            prefetch.saturating_add(*held)
        };
        if let Err(e) = self
            .channel
            .basic_qos(count, lapin::options::BasicQosOptions::default())
            .await
        {
            tracing::warn!("raising the prefetch for a held message failed: {e}");
        }
    }

    fn received(&self, d: &Delivery) {
        self.acks
            .lock()
            .expect("ack tracker")
            .received(d.delivery_tag, d.acker.clone());
    }

    /// The delivery was settled by a frame already sent (reject, nack, early ack).
    fn settled(&self, tag: u64) {
        self.acks.lock().expect("ack tracker").settled(tag);
    }
}

/// A task whose function returned: its result is to be stored, then its message acked.
struct Finished {
    session: Arc<Session>,
    tag: u64,
    acker: lapin::Acker,
    /// The result to store; `None` for a message with `ignore_result` (acked only).
    record: Option<ResultRecord>,
}

/// How long a worker keeps trying to reach the broker before giving up, at start-up and
/// after losing its connection.
pub const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// Run a worker until `cancel` fires (then finish running tasks within the grace period).
/// A lost broker connection is re-established (backoff 50 ms doubling to 1 s, for up to
/// [`RECONNECT_FOR`]); each loss and reconnection goes into the side channel. With several
/// broker URLs (client-side failover) the worker starts again from the first node, as a
/// Celery worker does, and moves on to the next at once after each failed attempt (bounded
/// by [`NODE_ATTEMPT_TIMEOUT`]), backing off only after a full cycle of the list.
pub async fn run_worker(opts: WorkerOptions, cancel: CancellationToken) -> Result<()> {
    let scratch = Scratch::open(&opts.scratch).with_context(
        || "the worker needs a scratch directory for hab.write_zeros (--scratch DIR)",
    )?;
    let side = SideChannel::open(&opts.executions_file, &opts.name)?;
    let crashes = CrashIndex::new(&opts.executions_file, side.opened_at);
    let store = ResultStore::connect(&opts.backend_url, opts.result_ttl).await?;
    let (finished_tx, finished_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        slots: Arc::new(Semaphore::new(opts.concurrency.max(1) as usize)),
        opts,
        store,
        side,
        scratch: Arc::new(scratch),
        crashes: std::sync::Mutex::new(crashes),
        stop: cancel.clone(),
        stats: WorkerStats::default(),
        finished: finished_tx,
    });
    // Client-side failover of the result backend: the Sentinels' answers go into the
    // side channel (a new master is a rediscovery, connecting to it a reconnection).
    let weak = Arc::downgrade(&shared);
    shared
        .store
        .set_discovery_hook(Arc::new(move |_at, ev: DiscoveryEvent| {
            let Some(s) = weak.upgrade() else { return };
            match ev {
                DiscoveryEvent::NewMaster { from, to } => s.side.record(
                    SideEventKind::Rediscovered,
                    Uuid::nil(),
                    &format!("result backend: Sentinels name master {to} (was {from})"),
                ),
                DiscoveryEvent::Reconnected { addr } => s.side.record(
                    SideEventKind::Connected,
                    Uuid::nil(),
                    &format!("result backend: connected to master {addr}"),
                ),
            }
        }));
    if !shared.opts.keepalive.is_zero() {
        tokio::spawn(keepalive(shared.clone(), cancel.clone()));
    }
    let tracker = TaskTracker::new();
    let settling = TaskTracker::new();
    let settle_stop = CancellationToken::new();
    let mut settler = tokio::spawn(settle(
        shared.clone(),
        finished_rx,
        settling.clone(),
        settle_stop.clone(),
    ));
    let mut connected_once = false;
    let mut result = Ok(());
    let mut delay = Duration::from_millis(50);
    let mut down_since = std::time::Instant::now();
    // Client-side failover: several broker nodes, rotated as a Celery worker does.
    let mut rotation = NodeRotation::new(broker_urls(&shared.opts.broker_url));
    let rotating = rotation.len() > 1;
    let mut last_node: Option<usize> = None;
    while !cancel.is_cancelled() {
        if rotating && last_node.is_some_and(|n| n != rotation.index()) {
            last_node = Some(rotation.index());
            shared.side.record(
                SideEventKind::Rediscovered,
                Uuid::nil(),
                &format!("trying broker node {}", url_host(rotation.current())),
            );
        }
        let session = if rotating {
            match tokio::time::timeout(
                NODE_ATTEMPT_TIMEOUT,
                open_session(&shared, rotation.current()),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!(
                    "no connection to {} within {NODE_ATTEMPT_TIMEOUT:?}",
                    url_host(rotation.current())
                )),
            }
        } else {
            open_session(&shared, rotation.current()).await
        };
        let (conn, channel, consumer) = match session {
            Ok(s) => {
                rotation.connected();
                s
            }
            Err(e) => {
                if down_since.elapsed() > RECONNECT_FOR {
                    result = Err(e.context(format!(
                        "no broker connection for {}",
                        humantime::format_duration(RECONNECT_FOR)
                    )));
                    break;
                }
                tracing::warn!("broker connection failed: {e:#}");
                // Within a cycle of the node list the next node is tried at once.
                if rotating && !rotation.failed() {
                    continue;
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        delay = Duration::from_millis(50);
        if connected_once {
            shared
                .side
                .record(SideEventKind::Connected, Uuid::nil(), "reconnected");
        }
        connected_once = true;
        tracing::info!(
            worker = %shared.opts.name,
            concurrency = shared.opts.concurrency,
            prefetch = shared.opts.prefetch,
            "consuming queue `celery`"
        );
        let session = Arc::new(Session::new(channel.clone()));
        let lost = consume(&shared, &session, &tracker, consumer, &cancel).await;
        let _ = channel
            .basic_cancel(
                ShortString::from(shared.opts.name.as_str()),
                BasicCancelOptions::default(),
            )
            .await;
        if cancel.is_cancelled() {
            tracker.close();
            let grace = tokio::time::Instant::now() + shared.opts.shutdown_grace;
            if tokio::time::timeout_at(grace, tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    "tasks still running after the shutdown grace; leaving them to redelivery"
                );
            }
            // Every finished task is in the settler's queue now: store and ack them.
            settle_stop.cancel();
            let _ = tokio::time::timeout_at(grace, &mut settler).await;
            let _ = conn.close(200, ShortString::from("worker stopping")).await;
            break;
        }
        let why = lost.map(|e| format!("{e:#}")).unwrap_or_default();
        tracing::warn!("lost the broker: {why}; reconnecting");
        shared
            .side
            .record(SideEventKind::Disconnected, Uuid::nil(), &why);
        let _ = conn.close(200, ShortString::from("reconnecting")).await;
        down_since = std::time::Instant::now();
        // A Celery worker builds a fresh connection from the URL list: the first node.
        last_node = Some(rotation.index());
        rotation.lost(AfterLoss::FirstNode);
    }
    settle_stop.cancel();
    settler.abort();
    let st = &shared.stats;
    tracing::info!(
        executed = st.executed.load(Ordering::Relaxed),
        rejected = st.rejected.load(Ordering::Relaxed),
        kept_existing = st.kept_existing.load(Ordering::Relaxed),
        store_errors = st.store_errors.load(Ordering::Relaxed),
        refused = st.refused.load(Ordering::Relaxed),
        multiple_acks = st.multiple_acks.load(Ordering::Relaxed),
        single_acks = st.single_acks.load(Ordering::Relaxed),
        "worker stopped"
    );
    result
}

/// PING the result connection every `keepalive` until `cancel`; a failed PING is a store
/// error in the side channel (the connection was lost, whatever reconnected it).
async fn keepalive(s: Arc<Shared>, cancel: CancellationToken) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(s.opts.keepalive) => {}
        }
        if let Err(e) = s.store.ping().await {
            s.side
                .record(SideEventKind::StoreError, Uuid::nil(), &format!("{e:#}"));
        }
    }
}

async fn open_session(
    s: &Shared,
    url: &str,
) -> Result<(lapin::Connection, lapin::Channel, lapin::Consumer)> {
    let conn = broker::connect(
        url,
        s.opts.heartbeat,
        &format!("hab-worker-{}", s.opts.name),
    )
    .await?;
    let channel = conn.create_channel().await.context("opening a channel")?;
    broker::declare_queue(&channel, s.opts.queue, s.opts.durable).await?;
    let consumer = broker::consume(&channel, s.opts.prefetch, &s.opts.name).await?;
    Ok((conn, channel, consumer))
}

/// Hand deliveries to execution slots until `cancel` (returns `None`) or the broker
/// connection ends (returns why).
async fn consume(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    tracker: &TaskTracker,
    mut consumer: lapin::Consumer,
    cancel: &CancellationToken,
) -> Option<anyhow::Error> {
    loop {
        let delivery = tokio::select! {
            _ = cancel.cancelled() => return None,
            d = consumer.next() => d,
        };
        match delivery {
            Some(Ok(d)) => {
                session.received(&d);
                // Wait for a free execution slot before taking the next delivery.
                let permit = tokio::select! {
                    _ = cancel.cancelled() => {
                        // Not started: hand it back now rather than at channel close.
                        requeue(session, &d.acker, d.delivery_tag).await;
                        return None;
                    }
                    p = shared.slots.clone().acquire_owned() => p.expect("semaphore closed"),
                };
                let s = shared.clone();
                let session = session.clone();
                tracker.spawn(async move { handle(s, session, d, permit).await });
            }
            Some(Err(e)) => return Some(anyhow::Error::new(e).context("consumer failed")),
            None => return Some(anyhow::anyhow!("the broker ended the consumer")),
        }
    }
}

/// Hands delivery `tag` back to the queue (a requeueing nack: it runs again) and marks it
/// settled.
async fn requeue(session: &Session, acker: &lapin::Acker, tag: u64) {
    let _ = acker
        .nack(BasicNackOptions {
            requeue: true,
            ..Default::default()
        })
        .await;
    session.settled(tag);
}

async fn reject(session: &Session, d: &Delivery) {
    if let Err(e) = d.acker.reject(BasicRejectOptions { requeue: false }).await {
        tracing::warn!("reject failed: {e}");
    }
    session.settled(d.delivery_tag);
}

async fn handle(
    s: Arc<Shared>,
    session: Arc<Session>,
    d: Delivery,
    mut permit: tokio::sync::OwnedSemaphorePermit,
) {
    let crashes = |id| match s.crashes.lock().expect("crash index").crashes_of(id) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("cannot read the side channel for crashes of task {id}: {e}");
            0
        }
    };
    let mut next = triage(
        &d.data,
        &d.properties,
        d.redelivered,
        crashes,
        &s.opts.limits,
        chrono::Utc::now(),
    );
    let (msg, task) = loop {
        match next {
            Disposition::Reject { id, reason } => {
                // What would crash a Celery worker (no id, bad body, no content type) or
                // make it drop the message: reject without requeue and keep running.
                tracing::warn!("rejecting a malformed message: {reason}");
                s.side
                    .record(SideEventKind::Reject, id.unwrap_or(Uuid::nil()), reason);
                s.stats.rejected.fetch_add(1, Ordering::Relaxed);
                reject(&session, &d).await;
                return;
            }
            Disposition::NotRegistered(msg, name) => {
                // As Celery: a FAILURE result with NotRegistered, and the message rejected.
                tracing::warn!("rejecting unregistered task {name:?}");
                let id = Uuid::parse_str(&msg.id).unwrap_or(Uuid::nil());
                s.side.record(SideEventKind::Reject, id, "not_registered");
                s.stats.rejected.fetch_add(1, Ordering::Relaxed);
                let rec = ResultRecord::not_registered(&msg.id, &name);
                if let Err(e) = s.store.store(&rec).await {
                    tracing::warn!("storing NotRegistered result failed: {e:#}");
                }
                reject(&session, &d).await;
                return;
            }
            Disposition::Refuse(r) => {
                let rec = failure_record(&r.task_id, &r.refusal.to_failure());
                let rec = (!r.ignore_result).then_some(rec);
                refuse(&s, session, d, permit, r.id, r.refusal.kind.code(), rec).await;
                return;
            }
            Disposition::Revoke(msg) => {
                let id = Uuid::parse_str(&msg.id).unwrap_or(Uuid::nil());
                let rec = ResultRecord::revoked(&msg.id, "expired");
                let rec = (!msg.options.ignore_result).then_some(rec);
                refuse(&s, session, d, permit, id, "expired", rec).await;
                return;
            }
            Disposition::Hold(msg, eta) => {
                // Held without a slot, as Celery's timer holds it; the prefetch is raised
                // meanwhile so held messages never starve the slots.
                drop(permit);
                session.hold(s.opts.prefetch, true).await;
                let wait = (eta - chrono::Utc::now()).to_std().unwrap_or_default();
                let woke = tokio::select! {
                    _ = s.stop.cancelled() => false,
                    _ = tokio::time::sleep(wait) => true,
                };
                if !woke {
                    // Not started: hand it back now.
                    requeue(&session, &d.acker, d.delivery_tag).await;
                    session.hold(s.opts.prefetch, false).await;
                    return;
                }
                permit = s
                    .slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore closed");
                session.hold(s.opts.prefetch, false).await;
                // The eta may be reached a little early by the timer: never run before it.
                next = triage::ready(msg, &s.opts.limits, chrono::Utc::now().max(eta));
            }
            Disposition::Run(msg, task) => break (msg, Ok(task)),
            // Bad arguments: Celery runs the function and it raises TypeError/ValueError.
            Disposition::RunFailing(msg, failure) => break (msg, Err(failure)),
        }
    };
    let id = Uuid::parse_str(&msg.id).unwrap_or(Uuid::nil());
    if s.opts.acks == AckMode::Early {
        if let Err(e) = d.acker.ack(BasicAckOptions::default()).await {
            tracing::warn!("ack failed: {e}");
        }
        session.settled(d.delivery_tag);
    }
    s.stats.executed.fetch_add(1, Ordering::Relaxed);
    s.side.record(SideEventKind::Start, id, &msg.task);
    let record = match task {
        Ok(task) => match task.execute(&s.scratch).await {
            Ok(value) => {
                s.side
                    .record(SideEventKind::Finish { succeeded: true }, id, "ok");
                ResultRecord::success(&msg.id, value)
            }
            Err(f) => failed(&s, id, &msg.id, &f),
        },
        Err(f) => failed(&s, id, &msg.id, &f),
    };
    // The slot is free as soon as the task function returned.
    drop(permit);
    let _ = s.finished.send(Finished {
        session,
        tag: d.delivery_tag,
        acker: d.acker,
        record: (!msg.options.ignore_result).then_some(record),
    });
}

/// Settles a message without running it: the side channel says why (`reason`), the
/// result (if any) is stored and the message acknowledged like a finished task's.
async fn refuse(
    s: &Shared,
    session: Arc<Session>,
    d: Delivery,
    permit: tokio::sync::OwnedSemaphorePermit,
    id: Uuid,
    reason: &str,
    record: Option<ResultRecord>,
) {
    tracing::warn!(task = %id, reason, "refusing a message");
    s.side.record(SideEventKind::Refused, id, reason);
    s.stats.refused.fetch_add(1, Ordering::Relaxed);
    if s.opts.acks == AckMode::Early {
        if let Err(e) = d.acker.ack(BasicAckOptions::default()).await {
            tracing::warn!("ack failed: {e}");
        }
        session.settled(d.delivery_tag);
    }
    drop(permit);
    let _ = s.finished.send(Finished {
        session,
        tag: d.delivery_tag,
        acker: d.acker,
        record,
    });
}

fn failure_record(task_id: &str, f: &crate::tasks::TaskFailure) -> ResultRecord {
    ResultRecord::failure(
        task_id,
        &f.exc_type,
        &f.exc_module,
        &f.exc_message,
        Some(f.traceback()),
    )
}

fn failed(s: &Shared, id: Uuid, task_id: &str, f: &crate::tasks::TaskFailure) -> ResultRecord {
    let detail = match f.refusal {
        Some(kind) => format!("refused:{}", kind.code()),
        None => f.exc_type.clone(),
    };
    s.side
        .record(SideEventKind::Finish { succeeded: false }, id, &detail);
    failure_record(task_id, f)
}
