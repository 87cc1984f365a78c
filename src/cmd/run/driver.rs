//! The publisher: each workload's tasks published on schedule (with the producer's policy
//! for failed publishes and the fault injector beside it), then drained.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::stream::{FuturesUnordered, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lapin::Confirmation;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::backend::{self};
use crate::broker;
use crate::clock::Anchor;
use crate::config::{ArrivalKind, TaskSpec, Workload};
use crate::event::ClientEventKind;
use crate::ledger::{ConfirmState, SeenVia, TaskRecord};
use crate::load::Schedule;
use crate::load::shard::Shard;
use crate::protocol::message::{TaskMessage, encode};
use crate::stack::StackHandle;

use crate::progress::SharedReporter;

use super::live::Live;
use super::workers::Workers;

/// Unconfirmed publishes the generator keeps in flight before waiting for confirms.
pub(super) const CONFIRM_WINDOW: usize = 2048;
/// Attempts of the last reconciliation read of a workload.
pub(super) const FINAL_READ_ATTEMPTS: u32 = 5;
/// Tasks outstanding longer than this are checked by reading their result keys.
pub(super) const RECONCILE_AGE: Duration = Duration::from_secs(2);
/// At most this many (the oldest) are read per periodic reconciliation: with a backlog in
/// the queue every task is outstanding for seconds, and reading them all every 2 s
/// (MGET of hundreds of thousands of keys) took the producer's and Redis's CPU from the
/// run itself. Notifications are the main path; the last reconciliation reads them all.
pub(super) const RECONCILE_BATCH: usize = 10_000;
/// How long an interrupted workload waits for tasks already published.
const INTERRUPT_DRAIN: Duration = Duration::from_secs(2);

/// Celery name and positional arguments of a task of this workload. A `write_zeros`
/// path is a file name, which every worker takes inside its own scratch directory.
pub fn task_call(spec: &TaskSpec, id: &Uuid) -> (&'static str, Value) {
    let args = match spec {
        TaskSpec::Trivial => json!([]),
        TaskSpec::Sleep { seconds } => json!([seconds]),
        TaskSpec::WriteZeros { bytes } => {
            json!([format!("hab-zeros-{id}.bin"), bytes])
        }
        TaskSpec::Factorial { n } => json!([n]),
    };
    (spec.task_name(), args)
}

/// Publishes workloads and waits for them to drain.
pub(super) struct Driver<'a> {
    pub(super) publisher: broker::Publisher,
    pub(super) reader: &'a mut backend::RedisConn,
    pub(super) live: &'a Live,
    pub(super) anchor: Anchor,
    pub(super) cancel: &'a CancellationToken,
    pub(super) progress: bool,
    pub(super) workers: &'a mut Workers,
    /// Tasks of the current workload to publish again (nacked or confirmation lost).
    pub(super) retry: Vec<usize>,
    /// A nack was seen: republish on a fresh channel.
    pub(super) fresh_channel: bool,
    /// A confirmation was lost: reconnect before the next publish.
    pub(super) force_reconnect: bool,
    /// The stack, for the fault injector.
    pub(super) stack: Arc<tokio::sync::Mutex<StackHandle>>,
    /// The topology's `[producer]`: policy and timeouts.
    pub(super) policy: crate::config::ProducerConfig,
    /// The circuit breaker (`policy = "breaker"`).
    pub(super) breaker: Option<crate::producer::Breaker>,
    /// The workload being published (for the breaker's transitions).
    pub(super) workload: usize,
    /// The generator shard this run is (`--shard I/N`); `None` drives the whole load.
    pub(super) shard: Option<Shard>,
    /// The task queue's kind (to inspect it).
    pub(super) queue: crate::config::QueueKind,
    /// Where progress lines go.
    pub(super) reporter: SharedReporter,
    /// The schedule origin (t0) of the workload last published, unix µs.
    pub(super) t0_unix_us: i64,
}

/// A task's confirmation; an error carries the connection generation (the publisher's
/// reconnect count when it was published) and what happened.
type ConfirmResult = Result<Confirmation, (u64, String)>;
/// A task's index, its confirmation, when the confirmation (or its failure) arrived in
/// unix µs, and the breaker's permit of the call (if any).
type ConfirmOutput = (usize, ConfirmResult, i64, Option<crate::producer::Permit>);
type ConfirmFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ConfirmOutput> + Send>>;

pub(super) const PRODUCER: &str = "producer";

/// Publish `idx`'s confirmation, bounded by `timeout`, stamped when it arrives
/// ([`crate::clock::on_arrival`], started here, not at the first poll), not when the
/// generator gets round to it; an error carries the connection `generation` it was
/// published on.
fn confirmation(
    idx: usize,
    confirm: lapin::PublisherConfirm,
    generation: u64,
    timeout: Duration,
    permit: Option<crate::producer::Permit>,
) -> impl std::future::Future<Output = ConfirmOutput> + Send + 'static {
    let arrival = crate::clock::on_arrival(tokio::time::timeout(timeout, confirm));
    async move {
        let (res, arrived_unix_us) = arrival.await;
        let res = match res {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err((generation, e.to_string())),
            Err(_) => Err((
                generation,
                format!(
                    "no confirmation within {}",
                    humantime::format_duration(timeout)
                ),
            )),
        };
        (idx, res, arrived_unix_us, permit)
    }
}

impl Driver<'_> {
    pub(super) fn progress_bar(&self, w: &Workload, count: u64) -> ProgressBar {
        if !self.progress || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(Some(count), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} done {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        pb.set_prefix(w.name.clone());
        pb
    }

    pub(super) fn apply_confirm(
        &mut self,
        w: usize,
        (idx, res, arrived_unix_us, permit): ConfirmOutput,
    ) {
        if let Some(permit) = permit {
            let ok = matches!(res, Ok(Confirmation::Ack(_) | Confirmation::NotRequested));
            self.breaker_result(permit, ok);
        }
        let mut ledger = self.live.ledger();
        match res {
            Ok(Confirmation::Ack(_)) => ledger.update(w, idx, |t| {
                t.confirm = ConfirmState::Acked;
                t.confirmed_unix_us = Some(arrived_unix_us);
            }),
            Ok(Confirmation::NotRequested) => {
                ledger.update(w, idx, |t| t.confirm = ConfirmState::NotRequested)
            }
            Ok(Confirmation::Nack(_)) => {
                // The broker refused it: publish again, on a fresh channel.
                let id = ledger.update(w, idx, |t| {
                    t.confirm = ConfirmState::Nacked;
                    t.id
                });
                drop(ledger);
                self.live
                    .events
                    .record(PRODUCER, ClientEventKind::Nack, id.to_string());
                self.fresh_channel = true;
                self.retry.push(idx);
            }
            Err((generation, e)) => {
                // The channel died before the broker answered: the producer cannot know
                // whether the task arrived. Publish it again (at-least-once; a duplicate
                // shows up in the ledger).
                drop(ledger);
                self.live.events.record(
                    PRODUCER,
                    ClientEventKind::Error,
                    format!("confirm lost: {e}"),
                );
                // The connection may be dead without lapin knowing: start afresh, unless
                // this confirmation belonged to a connection already replaced.
                if generation == self.publisher.reconnects {
                    self.force_reconnect = true;
                }
                self.retry.push(idx);
            }
        }
    }

    pub(super) async fn reconnect(&mut self) -> Result<()> {
        let events = &self.live.events;
        // A connection the broker or a proxy closed while the producer was idle is found
        // dead without any call failing: count it as the error it is, never hide it.
        if !self.publisher.is_usable() && events.last_kind(PRODUCER) != Some(ClientEventKind::Error)
        {
            events.record(
                PRODUCER,
                ClientEventKind::Error,
                "connection found closed before the next publish",
            );
        }
        self.publisher
            .reconnect(self.cancel, |e| {
                events.record(PRODUCER, ClientEventKind::Error, format!("{e:#}"))
            })
            .await?;
        // Client-side failover: when the producer moved on to another node.
        for (at_unix_us, detail) in self.publisher.take_switches() {
            events.push(crate::event::ClientEvent {
                at_unix_us,
                source: PRODUCER.into(),
                kind: ClientEventKind::Rediscovered,
                detail,
            });
        }
        events.record(PRODUCER, ClientEventKind::Reconnected, "");
        Ok(())
    }

    /// Publish task `idx` of workload `w` under the topology's producer policy.
    pub(super) async fn publish(
        &mut self,
        w: usize,
        idx: usize,
        spec: &Workload,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        let id = self.live.ledger().tasks(w)[idx].id;
        let (name, args) = task_call(&spec.task, &id);
        let mut msg = TaskMessage::new(name, args);
        msg.id = id.to_string();
        let (body, props) = encode(&msg);
        match self.policy.policy {
            crate::config::PolicyKind::Block
                if self.publisher.is_usable() && !self.force_reconnect =>
            {
                self.hand_over(idx, body, props, pending)
            }
            crate::config::PolicyKind::Block => {
                self.publish_blocking(w, idx, &body, &props, pending).await
            }
            crate::config::PolicyKind::Retry => {
                self.publish_retrying(w, idx, &body, &props, pending).await
            }
            crate::config::PolicyKind::Breaker => {
                self.publish_breaker(w, idx, &body, &props, pending).await
            }
        }
    }

    /// A confirmation future for a publish handed to the connection, bounded by the
    /// confirm timeout, stamped when the confirmation arrives ([`crate::clock::on_arrival`]),
    /// not when the generator gets round to it between publishes.
    pub(super) fn confirm_future(
        &self,
        idx: usize,
        confirm: lapin::PublisherConfirm,
        permit: Option<crate::producer::Permit>,
    ) -> ConfirmFuture {
        Box::pin(confirmation(
            idx,
            confirm,
            self.publisher.reconnects,
            self.policy.confirm_timeout,
            permit,
        ))
    }

    /// `block` on a usable connection: the publish is handed over without waiting for
    /// its frames to be written ([`broker::Publisher::handover`]); the handover and the
    /// confirmation are one future among the pending ones, so the next task is published
    /// at once and lapin's I/O thread writes what piled up together (one at a time, each
    /// publish waited for that thread: the producer, not the stack, set the pace of a
    /// burst). A handover that fails is a confirmation lost, as after a publish that
    /// failed: counted as an error, the connection replaced, the task published again.
    pub(super) fn hand_over(
        &self,
        idx: usize,
        body: Vec<u8>,
        props: lapin::BasicProperties,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        let handover = self.publisher.handover(body, props);
        let generation = self.publisher.reconnects;
        let timeout = self.policy.confirm_timeout;
        pending.push(Box::pin(async move {
            match handover.await {
                Ok(confirm) => confirmation(idx, confirm, generation, timeout, None).await,
                Err(e) => (
                    idx,
                    Err((generation, format!("not handed over: {e:#}"))),
                    crate::clock::now_unix_us(),
                    None,
                ),
            }
        }));
    }

    /// `block`: publish, reconnecting as often as needed. Only a cancelled run gives up
    /// (the task is then marked as never published successfully).
    pub(super) async fn publish_blocking(
        &mut self,
        w: usize,
        idx: usize,
        body: &[u8],
        props: &lapin::BasicProperties,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        loop {
            let stale = std::mem::take(&mut self.force_reconnect);
            if (stale || !self.publisher.is_usable()) && self.reconnect().await.is_err() {
                self.mark_failed(w, idx);
                return;
            }
            match self.publisher.publish(body, props.clone()).await {
                Ok(confirm) => {
                    pending.push(self.confirm_future(idx, confirm, None));
                    return;
                }
                Err(e) => {
                    self.live.events.record(
                        PRODUCER,
                        ClientEventKind::Error,
                        format!("publish failed: {e:#}"),
                    );
                    if self.reconnect().await.is_err() {
                        self.mark_failed(w, idx);
                        return;
                    }
                    self.count_republish(w, idx);
                }
            }
        }
    }

    /// One attempt of the `retry` and `breaker` policies: (re)open the connection if it
    /// is not usable (one bounded attempt), then publish (bounded). Every failure is a
    /// client event.
    pub(super) async fn attempt(
        &mut self,
        body: &[u8],
        props: &lapin::BasicProperties,
    ) -> Result<lapin::PublisherConfirm> {
        let stale = std::mem::take(&mut self.force_reconnect);
        if stale || !self.publisher.is_usable() {
            let events = &self.live.events;
            if !self.publisher.is_usable()
                && events.last_kind(PRODUCER) != Some(ClientEventKind::Error)
            {
                events.record(
                    PRODUCER,
                    ClientEventKind::Error,
                    "connection found closed before the next publish",
                );
            }
            if let Err(e) = self.publisher.reconnect_once().await {
                // The connection stays unusable: the next attempt reconnects again.
                events.record(PRODUCER, ClientEventKind::Error, format!("{e:#}"));
                return Err(e);
            }
            events.record(PRODUCER, ClientEventKind::Reconnected, "");
        }
        match self.publisher.publish(body, props.clone()).await {
            Ok(c) => Ok(c),
            Err(e) => {
                self.live.events.record(
                    PRODUCER,
                    ClientEventKind::Error,
                    format!("publish failed: {e:#}"),
                );
                // Whatever the channel's state, start from a fresh connection next time.
                self.force_reconnect = true;
                Err(e)
            }
        }
    }

    /// `retry`: up to `producer.retry.attempts` attempts with exponential backoff and
    /// jitter between them; then the task is given up (`gave_up`).
    pub(super) async fn publish_retrying(
        &mut self,
        w: usize,
        idx: usize,
        body: &[u8],
        props: &lapin::BasicProperties,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        let mut delays = crate::producer::retry_delays(self.policy.retry(), None);
        loop {
            if let Ok(confirm) = self.attempt(body, props).await {
                pending.push(self.confirm_future(idx, confirm, None));
                return;
            }
            let Some(delay) = delays.next() else {
                self.give_up(w, idx, ConfirmState::GaveUp);
                return;
            };
            tokio::select! {
                _ = self.cancel.cancelled() => {
                    self.mark_failed(w, idx);
                    return;
                }
                _ = tokio::time::sleep(delay) => {}
            }
            self.count_republish(w, idx);
        }
    }

    /// `breaker`: refused at once while the breaker is open; otherwise one attempt, whose
    /// failure (or lost confirmation, in `apply_confirm`) counts against the breaker.
    pub(super) async fn publish_breaker(
        &mut self,
        w: usize,
        idx: usize,
        body: &[u8],
        props: &lapin::BasicProperties,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        let breaker = self.breaker.as_mut().expect("policy breaker has a breaker");
        let (admission, change) = breaker.admit(Instant::now());
        self.record_transition(change);
        let crate::producer::Admission::Allowed(permit) = admission else {
            self.give_up(w, idx, ConfirmState::Refused);
            return;
        };
        match self.attempt(body, props).await {
            Ok(confirm) => pending.push(self.confirm_future(idx, confirm, Some(permit))),
            Err(_) => {
                self.breaker_result(permit, false);
                self.give_up(w, idx, ConfirmState::GaveUp);
            }
        }
    }

    /// Report a call's result to the breaker and record the state change it caused.
    pub(super) fn breaker_result(&mut self, permit: crate::producer::Permit, ok: bool) {
        if let Some(b) = self.breaker.as_mut() {
            let change = b.on_result(permit, ok, Instant::now());
            self.record_transition(change);
        }
    }

    pub(super) fn record_transition(&self, change: Option<crate::producer::Transition>) {
        let Some(t) = change else {
            return;
        };
        let at_unix_us = self.anchor.unix_us(t.at);
        self.reporter.line(&format!(
            "hab: producer breaker {} → {}",
            t.from.as_str(),
            t.to.as_str()
        ));
        self.live
            .breaker_transitions()
            .push(crate::metrics::outage::BreakerTransition {
                at_unix_us,
                workload: self.workload,
                from: t.from,
                to: t.to,
            });
    }

    /// The producer refused task `idx` (breaker open) or gave it up (attempts
    /// exhausted): settled, never to be published again. A task refused before any
    /// publish call has no publish time.
    pub(super) fn give_up(&self, w: usize, idx: usize, state: ConfirmState) {
        let now = self.anchor.now_unix_us();
        let mut ledger = self.live.ledger();
        ledger.update(w, idx, |t| {
            t.confirm = state;
            t.refused_unix_us = Some(now);
            if state == ConfirmState::Refused && t.republished == 0 {
                t.published_unix_us = None;
            }
        });
    }

    pub(super) fn mark_failed(&self, w: usize, idx: usize) {
        let mut ledger = self.live.ledger();
        ledger.update(w, idx, |t| t.confirm = ConfirmState::Failed);
    }

    pub(super) fn count_republish(&self, w: usize, idx: usize) {
        let id = {
            let mut ledger = self.live.ledger();
            ledger.update(w, idx, |t| {
                t.republished += 1;
                t.confirm = ConfirmState::Pending;
                t.id
            })
        };
        self.live
            .events
            .record(PRODUCER, ClientEventKind::Republish, id.to_string());
    }

    /// Publish again every task whose publish was not confirmed.
    pub(super) async fn flush_retries(
        &mut self,
        w: usize,
        spec: &Workload,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) {
        if self.retry.is_empty() || self.cancel.is_cancelled() {
            return;
        }
        if std::mem::take(&mut self.fresh_channel)
            && self.publisher.is_usable()
            && let Err(e) = self.publisher.fresh_channel().await
        {
            self.live
                .events
                .record(PRODUCER, ClientEventKind::Error, format!("{e:#}"));
        }
        for idx in std::mem::take(&mut self.retry) {
            self.count_republish(w, idx);
            self.publish(w, idx, spec, pending).await;
        }
    }

    /// Publish repetition `repetition` (from 1) of workload `w` on its schedule, then
    /// wait until every task settled or the drain timeout passed.
    pub(super) async fn workload(
        &mut self,
        w: usize,
        repetition: u32,
        spec: &Workload,
        drain_timeout: Duration,
    ) -> Result<()> {
        let schedule = match spec.arrival {
            ArrivalKind::Burst => Schedule::Burst { count: spec.count },
            ArrivalKind::Rate => Schedule::Rate {
                count: spec.count,
                per_s: spec.rate_per_s.unwrap_or(1.0),
            },
        };
        // A shard publishes its own part of the schedule (the whole of it unsharded).
        let shard = self.shard.unwrap_or(Shard::WHOLE);
        let pb = self.progress_bar(spec, shard.tasks_in(spec.count));
        self.live
            .ledger()
            .reserve(w, shard.tasks_in(spec.count) as usize);
        let mut pending: FuturesUnordered<ConfirmFuture> = FuturesUnordered::new();
        self.retry.clear();
        self.workload = w;
        let t0 = Instant::now();
        self.t0_unix_us = self.anchor.unix_us(t0);
        let injector = (!spec.faults.is_empty() && shard.applies_faults()).then(|| {
            self.live.injectors.spawn(crate::inject::run_faults(
                w,
                spec.faults.clone(),
                t0,
                self.stack.clone(),
                self.live.faults.clone(),
                self.live.servers.clone(),
                self.live.fatal.clone(),
                self.cancel.clone(),
                self.reporter.clone(),
            ))
        });
        let mut last_check = Instant::now();
        let mut pacer =
            crate::load::pacer::Pacer::new().context("cannot create the pacing timer")?;
        for offset_us in shard.offsets_us(&schedule) {
            let target = t0 + Duration::from_micros(offset_us);
            if target > Instant::now() {
                pacer.arm(target).context("cannot arm the pacing timer")?;
            }
            // Process confirmations while waiting for the next intended start.
            loop {
                if pending.len() >= CONFIRM_WINDOW {
                    tokio::select! {
                        _ = self.cancel.cancelled() => break,
                        Some(out) = pending.next() => self.apply_confirm(w, out),
                    }
                    continue;
                }
                tokio::select! {
                    biased;
                    _ = self.cancel.cancelled() => break,
                    Some(out) = pending.next(), if !pending.is_empty() => {
                        self.apply_confirm(w, out);
                    }
                    _ = pacer.fired() => break,
                }
            }
            if self.cancel.is_cancelled() {
                break;
            }
            self.flush_retries(w, spec, &mut pending).await;
            let idx = {
                let mut ledger = self.live.ledger();
                let id = match self.shard {
                    Some(s) => s.task_id(),
                    None => Uuid::new_v4(),
                };
                let mut rec = TaskRecord::new(id, w, self.anchor.unix_us(target));
                rec.repetition = repetition;
                rec.published_unix_us = Some(self.anchor.now_unix_us());
                ledger.insert(rec)
            };
            self.publish(w, idx, spec, &mut pending).await;
            if last_check.elapsed() > Duration::from_millis(200) {
                last_check = Instant::now();
                // A re-established result subscription may have missed results stored
                // meanwhile: read them now, not only in the drain (else a backend
                // failover's switch time would run until the publishing ends).
                if self.live.resubscribed.swap(false, Ordering::SeqCst)
                    && !self.reconcile(Duration::ZERO, RECONCILE_BATCH).await
                {
                    self.live.resubscribed.store(true, Ordering::SeqCst);
                }
                self.workers.supervise();
                pb.set_position(self.published(w).saturating_sub(self.unsettled(w) as u64));
            }
        }
        let drain = if self.cancel.is_cancelled() {
            INTERRUPT_DRAIN
        } else {
            drain_timeout
        };
        let deadline = Instant::now() + drain;
        let mut last_reconcile = Instant::now();
        loop {
            while let Some(Some(out)) = futures_util::FutureExt::now_or_never(pending.next()) {
                self.apply_confirm(w, out);
            }
            self.flush_retries(w, spec, &mut pending).await;
            let unsettled = self.unsettled(w);
            pb.set_position(self.published(w).saturating_sub(unsettled as u64));
            if unsettled == 0 && pending.is_empty() && self.retry.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                // Last chance for anything whose notification was missed; then this
                // workload's outcomes are frozen and what is left of it is taken out of
                // the queue.
                self.at_deadline(w, &spec.name).await;
                break;
            }
            if self.live.resubscribed.swap(false, Ordering::SeqCst)
                || last_reconcile.elapsed() >= RECONCILE_AGE
            {
                self.reconcile(RECONCILE_AGE, RECONCILE_BATCH).await;
                last_reconcile = Instant::now();
                self.workers.supervise();
            }
            let wait = Duration::from_millis(100).min(deadline - now);
            tokio::select! {
                _ = self.live.progress.notified() => {}
                Some(out) = pending.next(), if !pending.is_empty() => {
                    self.apply_confirm(w, out);
                }
                _ = tokio::time::sleep(wait) => {}
                _ = self.cancel.cancelled(), if drain != INTERRUPT_DRAIN => {
                    // Interrupted during the drain: give in-flight tasks a short chance.
                    return Box::pin(self.short_drain(w, &spec.name, &mut pending)).await;
                }
            }
        }
        pb.finish_and_clear();
        if let Some(injector) = injector {
            // Faults planned late in the workload, and the restoring of full health, may
            // outlast the drain: the next workload starts on a healthy stack.
            let _ = injector.await;
        }
        Ok(())
    }

    pub(super) async fn short_drain(
        &mut self,
        w: usize,
        name: &str,
        pending: &mut FuturesUnordered<ConfirmFuture>,
    ) -> Result<()> {
        let deadline = Instant::now() + INTERRUPT_DRAIN;
        while Instant::now() < deadline && (self.unsettled(w) > 0 || !pending.is_empty()) {
            tokio::select! {
                Some(out) = pending.next(), if !pending.is_empty() => self.apply_confirm(w, out),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        self.at_deadline(w, name).await;
        Ok(())
    }

    pub(super) fn unsettled(&self, w: usize) -> usize {
        self.live.ledger().unsettled(w)
    }

    pub(super) fn published(&self, w: usize) -> u64 {
        self.live.ledger().tasks(w).len() as u64
    }

    /// Read the result keys of (at most `limit` of the oldest) tasks of the workload being
    /// driven outstanding for longer than `age`. Returns false when the read failed (the
    /// reader reconnects on the next call).
    pub(super) async fn reconcile(&mut self, age: Duration, limit: usize) -> bool {
        let before = self.anchor.now_unix_us() - age.as_micros() as i64;
        let ids = self
            .live
            .ledger()
            .outstanding_ids(self.workload, before, limit);
        if ids.is_empty() {
            return true;
        }
        match backend::read_results(self.reader, &ids).await {
            Ok(found) => {
                let mut ledger = self.live.ledger();
                for r in found {
                    ledger.result_seen(&r.id, r.at_unix_us, r.status, SeenVia::Read);
                }
                true
            }
            Err(e) => {
                self.live.events.record(
                    "results",
                    ClientEventKind::Error,
                    format!("reconciliation read failed: {e:#}"),
                );
                false
            }
        }
    }
}
