//! The broker round trip: the Celery messages hab sends (`hab.trivial`, [`TaskMessage`] +
//! [`encode`]) published with the topology's confirms, consumed and acknowledged, with
//! nothing else in the path — driven several ways ([`STRATEGIES`]), keeping the best.
//!
//! A ceiling has to be the best the broker does for that path, or a task path runs
//! "above" it: the first calibration acked every delivery on its own while hab's worker
//! acks in batches, and hab's trivial burst ran at 115 % of it. So every strategy runs
//! [`ROUNDS`] times, the strategies interleaved (a noisy moment on a shared machine then
//! costs each strategy one window, not one strategy all of its windows), each run on
//! fresh connections with an untimed warm-up and one timed window ([`run_windows`]). A
//! strategy's figure is its best window ([`best_window`]); the broker round trip is the
//! best strategy's ([`choose`]). calibrate.json keeps every strategy with every window,
//! and which one won ([`StrategyFigure`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::stream::{FuturesUnordered, StreamExt};
use lapin::Confirmation;
use lapin::options::{BasicAckOptions, QueuePurgeOptions};
use lapin::types::ShortString;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Calibration, Figure, Interrupted, endpoint, rate_figure, timed_window};
use crate::broker;
use crate::config::Topology;
use crate::protocol::message::{TaskMessage, encode};
pub use crate::record::calibration::{BrokerWindow, StrategyFigure, best_window};
use crate::stack::StackHandle;

/// Unconfirmed publishes each publisher keeps in flight.
pub const CONFIRM_WINDOW: usize = 512;
/// Fewest messages the producers may be ahead of the consumers (published, not yet
/// acked); a strategy with more prefetch gets twice its total prefetch. Keeps the queue
/// short and the measurement at a steady state instead of a growing backlog.
pub const BACKLOG: usize = 1024;
/// Each consumer's prefetch (unacknowledged deliveries): hab's worker's on two cores.
pub const PREFETCH: u16 = 256;
/// `basic.publish` calls a pipelining publisher hands to its connection at once.
pub const PUBLISHES_IN_FLIGHT: usize = 32;
/// Runs of each strategy (each with one timed window); the best window counts.
pub const ROUNDS: u32 = 3;
/// After the first round, a strategy whose window was under this share of the leader's
/// is not run again: two more windows would not make it win (a window's spread on a
/// quiet machine is a few percent), and they cost a third of calibration's time.
pub const LAGGARD: f64 = 0.85;
/// Longest wait for the consumers to take what was published after a window closed.
pub(super) const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// One way of driving the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy {
    /// Its name in calibrate.json and the table.
    pub name: &'static str,
    /// Publishing connections, one (confirming) channel each.
    pub publishers: usize,
    /// `basic.publish` calls each publisher hands to its connection at once (1 = each
    /// waits until the previous one was handed over; confirms are awaited apart, up to
    /// [`CONFIRM_WINDOW`] of them).
    pub publishes_in_flight: usize,
    /// Consuming connections, one channel and consumer each.
    pub consumers: usize,
    /// Each consumer's prefetch.
    pub prefetch: u16,
    /// False: one `basic.ack` per delivery, several in flight at once. True: one ack in
    /// flight at a time, with `multiple`, settling every delivery that arrived while the
    /// previous one was being sent (hab's worker acks in batches too). Only one: lapin
    /// sends each ack from a task of its own, so two acks in flight can overtake each
    /// other, and a `multiple` ack overtaken by a lower one makes that one an unknown
    /// delivery tag, which closes the channel.
    pub ack_multiple: bool,
}

/// The strategies tried, simplest first (the first wins a tie).
pub const STRATEGIES: [Strategy; 4] = [
    Strategy {
        name: "ack_each",
        publishers: 1,
        publishes_in_flight: 1,
        consumers: 1,
        prefetch: PREFETCH,
        ack_multiple: false,
    },
    Strategy {
        name: "ack_multiple",
        publishers: 1,
        publishes_in_flight: 1,
        consumers: 1,
        prefetch: PREFETCH,
        ack_multiple: true,
    },
    Strategy {
        name: "pipelined_publish",
        publishers: 1,
        publishes_in_flight: PUBLISHES_IN_FLIGHT,
        consumers: 1,
        prefetch: PREFETCH,
        ack_multiple: true,
    },
    Strategy {
        name: "two_connections",
        publishers: 2,
        publishes_in_flight: PUBLISHES_IN_FLIGHT,
        consumers: 2,
        prefetch: PREFETCH,
        ack_multiple: true,
    },
];

impl Strategy {
    /// Most messages published and not yet acked, over all publishers.
    pub fn backlog(&self) -> usize {
        BACKLOG.max(2 * usize::from(self.prefetch) * self.consumers)
    }

    /// One line: how the strategy drives the broker.
    pub fn describe(&self) -> String {
        let plural = |n: usize, what: &str| {
            if n == 1 {
                format!("1 {what}")
            } else {
                format!("{n} {what}s")
            }
        };
        let publishing = if self.publishes_in_flight == 1 {
            "one publish handed over at a time".to_string()
        } else {
            format!("{} publishes handed over at once", self.publishes_in_flight)
        };
        let acks = if self.ack_multiple {
            "acks with multiple, one at a time, each for whatever arrived meanwhile"
        } else {
            "one ack per delivery"
        };
        format!(
            "{} ({publishing}, up to {CONFIRM_WINDOW} unconfirmed each), {} (prefetch {} each), {acks}, at most {} ahead",
            plural(self.publishers, "publishing connection"),
            plural(self.consumers, "consuming connection"),
            self.prefetch,
            self.backlog()
        )
    }
}

/// The untimed warm-up and the timed window of each run, for calibration windows of
/// `duration`: the window is `duration / ROUNDS` (so a strategy is timed for `duration`
/// in all), the warm-up a third of it, between 200 and 500 ms.
pub fn run_windows(duration: Duration) -> (Duration, Duration) {
    let window = duration / ROUNDS;
    let warmup = (window / 3).clamp(Duration::from_millis(200), Duration::from_millis(500));
    (warmup, window)
}

/// After the first round: mark the strategies under [`LAGGARD`] of the leader `dropped`,
/// saying by how much; they are not run again and keep competing with what they measured.
pub fn drop_laggards(strategies: &mut [StrategyFigure]) {
    let Some(leader) = choose(strategies) else {
        return;
    };
    let (name, best) = (
        strategies[leader].name.clone(),
        strategies[leader].msg_per_s,
    );
    for s in strategies.iter_mut() {
        if s.error.is_none() && s.msg_per_s < LAGGARD * best {
            s.dropped = Some(format!(
                "not run after the first round: {:.0} msg/s, {:.0} % of {name}'s {best:.0} (under {:.0} %)",
                s.msg_per_s,
                s.msg_per_s / best * 100.0,
                LAGGARD * 100.0
            ));
        }
    }
}

impl StrategyFigure {
    /// A strategy not run yet.
    pub fn new(s: &Strategy) -> Self {
        StrategyFigure {
            name: s.name.into(),
            how: s.describe(),
            ..StrategyFigure::default()
        }
    }
}

/// The strategy that wins: the highest best window among those without an error that
/// measured something, the earliest (simplest) of equal ones; `None` when none did.
pub fn choose(strategies: &[StrategyFigure]) -> Option<usize> {
    choose_by(strategies, |s| s.msg_per_s)
}

/// The strategy with the highest `score` among those without an error that scored above
/// 0, the earliest (simplest) of equal ones; `None` when none did.
pub fn choose_by(
    strategies: &[StrategyFigure],
    score: impl Fn(&StrategyFigure) -> f64,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, s) in strategies.iter().enumerate() {
        let v = score(s);
        if s.error.is_some() || v <= 0.0 {
            continue;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// Which way a task message is published, for the `how` lines.
fn mode(confirms: bool) -> &'static str {
    if confirms {
        "publisher confirms"
    } else {
        "no confirms"
    }
}

/// The broker's two figures from the strategies tried, marking the winner `chosen`: the
/// round trip is the winner's best window; the publish figure is the best window for
/// confirmations over every strategy that competed. `None` when no strategy measured
/// anything. `path` says what was measured (messages, queue, endpoint).
pub fn figures(
    strategies: &mut [StrategyFigure],
    confirms: bool,
    path: &str,
    windows: (Duration, Duration),
) -> Option<(Figure, Figure)> {
    for s in strategies.iter_mut() {
        s.chosen = false;
    }
    let winner = choose(strategies)?;
    strategies[winner].chosen = true;
    let (warmup, window) = windows;
    let rounds = strategies
        .iter()
        .map(|s| s.windows.len())
        .max()
        .unwrap_or(0);
    let won = &strategies[winner];
    let w = won.windows[best_window(&won.windows, BrokerWindow::round_trip)?];
    let round_trip = rate_figure(
        w.acked,
        "messages",
        w.secs,
        "msg/s",
        w.nacked,
        format!(
            "best of {} strategies × {rounds} windows of {:.2} s (each after {:.2} s warm-up, fresh connections, strategies interleaved{}): {} — {}; {path}",
            strategies.len(),
            window.as_secs_f64(),
            warmup.as_secs_f64(),
            match strategies.iter().filter(|s| s.dropped.is_some()).count() {
                0 => String::new(),
                n => format!(
                    "; {n} under {:.0} % of the leader after the first window not run again",
                    LAGGARD * 100.0
                ),
            },
            won.name,
            won.how,
        ),
    );
    let (s, p) = strategies
        .iter()
        .filter(|s| s.error.is_none())
        .filter_map(|s| {
            Some((
                s,
                s.windows[best_window(&s.windows, BrokerWindow::publish)?],
            ))
        })
        .fold(
            None::<(&StrategyFigure, BrokerWindow)>,
            |best, (s, w)| match best {
                Some((_, b)) if b.publish() >= w.publish() => best,
                _ => Some((s, w)),
            },
        )?;
    let publish = if confirms {
        rate_figure(
            p.confirmed,
            "confirms",
            p.secs,
            "confirms/s",
            p.nacked,
            format!(
                "publisher confirms (ack) received, best window of every strategy: {}",
                s.name
            ),
        )
    } else {
        rate_figure(
            p.confirmed,
            "messages",
            p.secs,
            "publishes/s",
            0,
            format!(
                "publishes handed to the connection (confirms off), best window of every strategy: {}",
                s.name
            ),
        )
    };
    Some((round_trip, publish))
}

/// Measure the broker round trip on a stack that is up: every strategy [`ROUNDS`] times,
/// interleaved, into `cal.broker_strategies` (calibrate.json in `dir` rewritten after
/// each run, so an interrupted calibration keeps what it measured); returns the round
/// trip and publish figures ([`figures`]). A strategy whose run fails is recorded with
/// its error and not run again; the figures fail only when no strategy measured anything.
pub async fn measure(
    opts: &super::CalibrateOptions,
    topology: &Topology,
    stack: &StackHandle,
    url: &str,
    dir: &Path,
    cal: &mut Calibration,
    cancel: &CancellationToken,
) -> Result<(Figure, Figure)> {
    let b = &topology.broker;
    let (warmup, window) = run_windows(opts.duration);
    // Declares the queue as a run does (kind, durability); its channel purges the queue
    // before each run.
    let setup = broker::Publisher::connect(url, b, "hab-calibrate-setup").await?;
    // As in a run: the queue exists now; wait for its replicas and leader.
    tokio::select! {
        r = stack.wait_healthy(Duration::from_secs(60)) => {
            if let Err(e) = r {
                setup.close().await;
                return Err(anyhow::Error::new(e)
                    .context("the stack did not become healthy after the task queue was declared"));
            }
        }
        _ = cancel.cancelled() => {
            setup.close().await;
            return Err(Interrupted.into());
        }
    }
    cal.broker_window_s = window.as_secs_f64();
    cal.broker_warmup_s = warmup.as_secs_f64();
    cal.broker_strategies = STRATEGIES.iter().map(StrategyFigure::new).collect();
    let mut stopped = None;
    'rounds: for round in 0..ROUNDS {
        if round == 1 {
            drop_laggards(&mut cal.broker_strategies);
        }
        for (i, s) in STRATEGIES.iter().enumerate() {
            let st = &cal.broker_strategies[i];
            if st.error.is_some() || st.dropped.is_some() {
                continue;
            }
            match run_once(s, topology, url, setup.channel(), warmup, window, cancel).await {
                Ok(w) => cal.broker_strategies[i].record(w),
                Err(e) if cancel.is_cancelled() || e.downcast_ref::<Interrupted>().is_some() => {
                    stopped = Some(e);
                    break 'rounds;
                }
                Err(e) => {
                    tracing::warn!("broker strategy {}: {e:#}", s.name);
                    cal.broker_strategies[i].error = Some(format!("{e:#}"));
                }
            }
            super::write_json(dir, cal)?;
        }
    }
    setup.close().await;
    if let Some(e) = stopped {
        return Err(e);
    }
    let path = format!(
        "hab.trivial Celery messages ({}), {} queue, via {}",
        mode(b.confirms),
        format!("{:?}", b.queue).to_lowercase(),
        endpoint(url)
    );
    match figures(
        &mut cal.broker_strategies,
        b.confirms,
        &path,
        (warmup, window),
    ) {
        Some(f) => Ok(f),
        None => {
            let errors: Vec<String> = cal
                .broker_strategies
                .iter()
                .map(|s| {
                    format!(
                        "{}: {}",
                        s.name,
                        s.error.as_deref().unwrap_or("nothing measured")
                    )
                })
                .collect();
            bail!(
                "no broker strategy measured a round trip ({})",
                errors.join("; ")
            )
        }
    }
}

/// Shared counters of one run.
#[derive(Default)]
pub(super) struct Counters {
    /// Deliveries consumed and acked (the end-to-end ceiling: results seen).
    pub(super) acked: AtomicU64,
    /// Publishes settled: confirmed (with confirms) or handed over (without).
    pub(super) settled: AtomicU64,
    /// Publishes nacked by the broker.
    pub(super) nacked: AtomicU64,
    /// Publishes sent.
    pub(super) published: AtomicU64,
}

/// The connections of one run.
struct Opened {
    publishers: Vec<broker::Publisher>,
    consumers: Vec<lapin::Consumer>,
    conns: Vec<lapin::Connection>,
}

impl Opened {
    async fn open(s: &Strategy, topology: &Topology, url: &str) -> Result<Opened> {
        let b = &topology.broker;
        let mut o = Opened {
            publishers: Vec::new(),
            consumers: Vec::new(),
            conns: Vec::new(),
        };
        let res = async {
            for i in 0..s.publishers {
                let name = format!("hab-calibrate-{}-producer-{i}", s.name);
                o.publishers
                    .push(broker::Publisher::connect(url, b, &name).await?);
            }
            for i in 0..s.consumers {
                let name = format!("hab-calibrate-{}-consumer-{i}", s.name);
                let conn = broker::connect(url, b.heartbeat, &name).await?;
                let channel = conn.create_channel().await.context("opening a channel");
                o.conns.push(conn);
                let channel = channel?;
                broker::declare_queue(&channel, b.queue, b.durable).await?;
                let tag = format!("hab-calibrate-{i}");
                o.consumers
                    .push(broker::consume(&channel, s.prefetch, &tag).await?);
            }
            anyhow::Ok(())
        }
        .await;
        match res {
            Ok(()) => Ok(o),
            Err(e) => {
                o.close().await;
                Err(e)
            }
        }
    }

    async fn close(self) {
        for p in &self.publishers {
            p.close().await;
        }
        close_all(self.conns).await;
    }
}

/// Close consumer connections (bounded: a connection may be dead).
pub(super) async fn close_all(conns: Vec<lapin::Connection>) {
    for conn in conns {
        let _ = tokio::time::timeout(
            broker::CLOSE_TIMEOUT,
            conn.close(200, ShortString::from("done")),
        )
        .await;
    }
}

/// One run of `s` on an empty queue and fresh connections: warm-up, one timed window,
/// then (untimed) the consumers take what is still queued and everything is closed.
async fn run_once(
    s: &Strategy,
    topology: &Topology,
    url: &str,
    setup: &lapin::Channel,
    warmup: Duration,
    window: Duration,
    cancel: &CancellationToken,
) -> Result<BrokerWindow> {
    // What an earlier run left (its drain timed out) must not be counted in this one.
    purge(setup).await?;
    let Opened {
        publishers,
        consumers,
        conns,
    } = Opened::open(s, topology, url).await?;
    let counters = Arc::new(Counters::default());
    let backlog = Arc::new(Semaphore::new(s.backlog()));
    let stop_producers = cancel.child_token();
    let stop_consumers = cancel.child_token();
    let consumer_tasks: Vec<_> = consumers
        .into_iter()
        .map(|c| {
            tokio::spawn(consume_loop(
                c,
                s.ack_multiple,
                counters.clone(),
                backlog.clone(),
                stop_consumers.clone(),
            ))
        })
        .collect();
    let producer_tasks: Vec<_> = publishers
        .into_iter()
        .map(|p| {
            tokio::spawn(produce_loop(
                p,
                s.publishes_in_flight,
                counters.clone(),
                backlog.clone(),
                stop_producers.clone(),
            ))
        })
        .collect();

    let measured = timed_window(
        &[&counters.acked, &counters.settled, &counters.nacked],
        warmup,
        window,
        cancel,
    )
    .await;
    stop_producers.cancel();
    let mut failed: Option<anyhow::Error> = None;
    for t in producer_tasks {
        if let Err(e) = t.await.context("producer task").and_then(|r| r) {
            failed.get_or_insert(e);
        }
    }
    // Let the consumers take what is still queued (untimed), so the next run starts on a
    // quiet broker.
    let published = counters.published.load(Ordering::Acquire);
    let drain_until = Instant::now() + DRAIN_TIMEOUT;
    while counters.acked.load(Ordering::Acquire) < published
        && Instant::now() < drain_until
        && !cancel.is_cancelled()
        && !consumer_tasks.iter().all(|t| t.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_consumers.cancel();
    for t in consumer_tasks {
        if let Err(e) = t.await.context("consumer task").and_then(|r| r) {
            failed.get_or_insert(e);
        }
    }
    close_all(conns).await;
    let w = measured?;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(BrokerWindow {
        acked: w.deltas[0],
        confirmed: w.deltas[1],
        nacked: w.deltas[2],
        secs: w.secs,
    })
}

/// Empty the `celery` queue (bounded: the broker may not answer).
pub(super) async fn purge(setup: &lapin::Channel) -> Result<()> {
    tokio::time::timeout(
        broker::OPERATION_TIMEOUT,
        setup.queue_purge(
            ShortString::from(crate::protocol::CELERY_QUEUE),
            QueuePurgeOptions::default(),
        ),
    )
    .await
    .context("purging queue `celery`: no answer")?
    .context("purging queue `celery`")?;
    Ok(())
}

/// Publish one `hab.trivial` message, as hab's producer encodes it.
async fn publish_one(publisher: &broker::Publisher) -> Result<lapin::PublisherConfirm> {
    let msg = TaskMessage::new(crate::tasks::trivial::NAME, serde_json::json!([]));
    let (body, props) = encode(&msg);
    publisher.publish(&body, props).await
}

pub(super) async fn produce_loop(
    publisher: broker::Publisher,
    in_flight: usize,
    counters: Arc<Counters>,
    backlog: Arc<Semaphore>,
    stop: CancellationToken,
) -> Result<()> {
    // Publishes being handed to the connection, and confirms awaited.
    let mut sending = FuturesUnordered::new();
    let mut pending: FuturesUnordered<lapin::PublisherConfirm> = FuturesUnordered::new();
    let settle = |r: Result<Confirmation, lapin::Error>| -> Result<()> {
        match r.context("waiting for a publish confirm")? {
            Confirmation::Nack(_) => counters.nacked.fetch_add(1, Ordering::AcqRel),
            _ => counters.settled.fetch_add(1, Ordering::AcqRel),
        };
        Ok(())
    };
    let result = loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break Ok(()),
            Some(r) = pending.next(), if !pending.is_empty() => {
                if let Err(e) = settle(r) {
                    break Err(e);
                }
            }
            Some(r) = sending.next(), if !sending.is_empty() => match r as Result<lapin::PublisherConfirm> {
                Ok(confirm) => {
                    counters.published.fetch_add(1, Ordering::AcqRel);
                    pending.push(confirm);
                }
                Err(e) => break Err(e.context("publishing")),
            },
            permit = backlog.acquire(),
                if sending.len() < in_flight && sending.len() + pending.len() < CONFIRM_WINDOW =>
            {
                permit.expect("semaphore never closed").forget();
                sending.push(publish_one(&publisher));
            }
        }
    };
    // Hand over and settle what is in flight (untimed, bounded) before closing.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while let Some(r) = sending.next().await {
            match r {
                Ok(confirm) => {
                    counters.published.fetch_add(1, Ordering::AcqRel);
                    pending.push(confirm);
                }
                Err(_) => break,
            }
        }
        while let Some(r) = pending.next().await {
            if settle(r).is_err() {
                break;
            }
        }
    })
    .await;
    drop(sending);
    publisher.close().await;
    result
}

async fn consume_loop(
    mut consumer: lapin::Consumer,
    ack_multiple: bool,
    counters: Arc<Counters>,
    backlog: Arc<Semaphore>,
    stop: CancellationToken,
) -> Result<()> {
    // Acks are not awaited one after another: several are in flight at once, so the loop
    // never waits for the connection's I/O between two deliveries; with `ack_multiple`
    // one at a time ([`Strategy::ack_multiple`]), and the deliveries that arrive while it
    // is on its way wait for the next, which settles every earlier tag of the channel.
    let mut acks = FuturesUnordered::new();
    // The latest delivery not yet acked, and how many are not yet acked up to it.
    let mut unacked: Option<(lapin::message::Delivery, u64)> = None;
    loop {
        let may_ack = !ack_multiple || acks.is_empty();
        if let Some((d, n)) = unacked.take_if(|_| may_ack) {
            acks.push(async move {
                d.acker
                    .ack(BasicAckOptions { multiple: n > 1 })
                    .await
                    .map(|_| n)
            });
        }
        tokio::select! {
            biased;
            _ = stop.cancelled() => return Ok(()),
            Some(r) = acks.next(), if !acks.is_empty() => {
                let n = r.context("acking deliveries")?;
                counters.acked.fetch_add(n, Ordering::AcqRel);
                backlog.add_permits(n as usize);
            }
            d = consumer.next() => match d {
                Some(Ok(d)) => {
                    let n = unacked.take().map_or(0, |(_, n)| n) + 1;
                    unacked = Some((d, n));
                }
                Some(Err(e)) => return Err(anyhow::Error::new(e).context("consumer failed")),
                None => bail!("the broker ended the consumer"),
            },
        }
    }
}

#[cfg(test)]
mod tests;
