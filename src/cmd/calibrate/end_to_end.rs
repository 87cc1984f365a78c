//! The end-to-end ceiling (`end_to_end`, tasks/s): the whole task path without task code,
//! driven as fast as the stack takes it. `hab.trivial` Celery messages are published as
//! the broker round trip's pipelined strategy publishes them (publisher confirms as the
//! topology says); one or two consumer processes (`hab ceiling-consumer`, separate
//! processes as hab's workers are: [`crate::worker::ceiling`]) store each result as
//! Celery's Redis backend does, in batches, and ack in batches; a `PSUBSCRIBE` watcher in
//! this process counts the results seen, which is the figure. The producer keeps at most
//! [`round_trip::BACKLOG`] tasks whose result it has not seen. Each strategy runs
//! [`ROUNDS`] times interleaved, on a purged queue, fresh connections and fresh consumer
//! processes, after an untimed warm-up; the figure is the best window of the best
//! strategy. A trivial burst of hab's set against it says what hab's producer, ledger and
//! worker cost on top of the path itself.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::round_trip::{self, Counters, DRAIN_TIMEOUT, PUBLISHES_IN_FLIGHT, produce_loop};
use super::{Calibration, Figure, Interrupted, endpoint, rate_figure, timed_window};
use crate::backend::{WatchEvent, watch_results};
use crate::broker;
use crate::config::Topology;
use crate::record::calibration::{BrokerWindow, StrategyFigure};
use crate::stack::StackHandle;
use crate::stack::process::ManagedProcess;

/// One way of running the consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strategy {
    /// Its name in calibrate.json.
    pub name: &'static str,
    /// Consumer processes.
    pub consumers: usize,
    /// Each one's prefetch.
    pub prefetch: u16,
    /// Most results stored in one batch.
    pub batch: usize,
    /// Batches being stored at once, per process.
    pub in_flight: usize,
}

/// The strategies tried, simplest first (the first wins a tie).
pub const STRATEGIES: [Strategy; 2] = [
    Strategy {
        name: "one_consumer",
        consumers: 1,
        prefetch: 256,
        batch: 64,
        in_flight: 4,
    },
    Strategy {
        name: "two_consumers",
        consumers: 2,
        prefetch: 256,
        batch: 64,
        in_flight: 4,
    },
];

/// Runs of each strategy.
pub const ROUNDS: u32 = 2;

impl Strategy {
    /// One line: how the strategy runs the path.
    pub fn describe(&self) -> String {
        format!(
            "1 publishing connection ({PUBLISHES_IN_FLIGHT} publishes handed over at once), {} consumer process{} (prefetch {} each; results stored in batches of up to {} — MGET, then MULTI SETEX PUBLISH EXEC — {} batches in flight; one ack with multiple per stored batch), results seen through PSUBSCRIBE, at most {} tasks without a result seen",
            self.consumers,
            if self.consumers == 1 { "" } else { "es" },
            self.prefetch,
            self.batch,
            self.in_flight,
            round_trip::BACKLOG
        )
    }
}

/// Measure the ceiling on a stack that is up, into `cal.end_to_end_strategies`
/// (calibrate.json in `dir` rewritten after each run); returns the figure.
pub async fn measure(
    opts: &super::CalibrateOptions,
    topology: &Topology,
    stack: &StackHandle,
    dir: &Path,
    cal: &mut Calibration,
    cancel: &CancellationToken,
) -> Result<Figure> {
    let (broker_url, backend_url) = (stack.broker_url(), stack.backend_url());
    let (warmup, window) = round_trip::run_windows(opts.duration);
    let setup =
        broker::Publisher::connect(&broker_url, &topology.broker, "hab-calibrate-e2e").await?;
    cal.end_to_end_strategies = STRATEGIES
        .iter()
        .map(|s| StrategyFigure {
            name: s.name.into(),
            how: s.describe(),
            ..StrategyFigure::default()
        })
        .collect();
    let mut stopped = None;
    'rounds: for _ in 0..ROUNDS {
        for (i, s) in STRATEGIES.iter().enumerate() {
            if cal.end_to_end_strategies[i].error.is_some() {
                continue;
            }
            let run = Run {
                s,
                opts,
                topology,
                broker_url: &broker_url,
                backend_url: &backend_url,
                logs: &dir.join("logs"),
                warmup,
                window,
            };
            match run.once(setup.channel(), cancel).await {
                Ok(w) => cal.end_to_end_strategies[i].record(w),
                Err(e) if cancel.is_cancelled() || e.downcast_ref::<Interrupted>().is_some() => {
                    stopped = Some(e);
                    break 'rounds;
                }
                Err(e) => {
                    tracing::warn!("end-to-end strategy {}: {e:#}", s.name);
                    cal.end_to_end_strategies[i].error = Some(format!("{e:#}"));
                }
            }
            super::figures::flush_results(&backend_url).await;
            super::write_json(dir, cal)?;
        }
    }
    setup.close().await;
    if let Some(e) = stopped {
        return Err(e);
    }
    figure(
        &mut cal.end_to_end_strategies,
        (warmup, window),
        &format!(
            "hab.trivial Celery messages ({}), {} queue, via {} and {}",
            if topology.broker.confirms {
                "publisher confirms"
            } else {
                "no confirms"
            },
            format!("{:?}", topology.broker.queue).to_lowercase(),
            endpoint(&broker_url),
            endpoint(&backend_url)
        ),
    )
    .ok_or_else(|| {
        let why: Vec<String> = cal
            .end_to_end_strategies
            .iter()
            .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.name)))
            .collect();
        anyhow::anyhow!(
            "no end-to-end strategy measured anything ({})",
            why.join("; ")
        )
    })
}

/// The figure: what the best strategy sustains over all its windows (their tasks over
/// their total time), the strategy marked `chosen`. Not its best window: the windows of one
/// strategy on one stack spread by ±10 % on a shared 2-core machine, so the peak of four
/// short windows is partly noise, and a run as long as hab's burst could not sustain it.
pub fn figure(
    strategies: &mut [StrategyFigure],
    (warmup, window): (Duration, Duration),
    path: &str,
) -> Option<Figure> {
    for s in strategies.iter_mut() {
        s.chosen = false;
    }
    let winner = round_trip::choose_by(strategies, |s| s.sustained_per_s)?;
    strategies[winner].chosen = true;
    let won = &strategies[winner];
    let w = won.pooled();
    let rounds = strategies
        .iter()
        .map(|s| s.windows.len())
        .max()
        .unwrap_or(0);
    Some(rate_figure(
        w.acked,
        "tasks",
        w.secs,
        "tasks/s",
        w.nacked,
        format!(
            "results seen per second over all windows of the best of {} strategies × {rounds} windows of {:.2} s (each after {:.2} s warm-up, fresh connections and consumer processes, strategies interleaved; its best window {:.0}): {} — {}; {path}",
            strategies.len(),
            window.as_secs_f64(),
            warmup.as_secs_f64(),
            won.msg_per_s,
            won.name,
            won.how
        ),
    ))
}

/// One run of a strategy.
struct Run<'a> {
    s: &'a Strategy,
    opts: &'a super::CalibrateOptions,
    topology: &'a Topology,
    broker_url: &'a str,
    backend_url: &'a str,
    logs: &'a Path,
    warmup: Duration,
    window: Duration,
}

impl Run<'_> {
    /// Purge, start the consumer processes and the watcher, publish through the warm-up
    /// and one timed window, then drain (untimed) and stop everything.
    async fn once(
        &self,
        setup: &lapin::Channel,
        cancel: &CancellationToken,
    ) -> Result<BrokerWindow> {
        round_trip::purge(setup).await?;
        let mut consumers = Vec::new();
        for k in 0..self.s.consumers {
            consumers.push(self.spawn_consumer(k)?);
        }
        let counters = Arc::new(Counters::default());
        let backlog = Arc::new(Semaphore::new(round_trip::BACKLOG));
        let stop = cancel.child_token();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let watcher = watch_results(self.backend_url, tx, stop.clone()).await?;
        let seen = {
            let (counters, backlog) = (counters.clone(), backlog.clone());
            tokio::spawn(async move {
                while let Some(ev) = rx.recv().await {
                    if let WatchEvent::Result(_) = ev {
                        counters.acked.fetch_add(1, Ordering::AcqRel);
                        backlog.add_permits(1);
                    }
                }
            })
        };
        let publisher = broker::Publisher::connect(
            self.broker_url,
            &self.topology.broker,
            "hab-calibrate-e2e-producer",
        )
        .await?;
        let stop_producer = cancel.child_token();
        let producer = tokio::spawn(produce_loop(
            publisher,
            PUBLISHES_IN_FLIGHT,
            counters.clone(),
            backlog,
            stop_producer.clone(),
        ));
        let measured = timed_window(
            &[&counters.acked, &counters.settled, &counters.nacked],
            self.warmup,
            self.window,
            cancel,
        )
        .await;
        stop_producer.cancel();
        let produced = producer.await.context("producer task").and_then(|r| r);
        // Untimed: let the consumers finish what is queued, so the next run starts quiet.
        let published = counters.published.load(Ordering::Acquire);
        let until = Instant::now() + DRAIN_TIMEOUT;
        while counters.acked.load(Ordering::Acquire) < published
            && Instant::now() < until
            && !cancel.is_cancelled()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
        let _ = watcher.await;
        let _ = seen.await;
        let mut logs = String::new();
        for mut c in consumers {
            c.stop(Duration::from_secs(2)).await;
            logs.push_str(&c.log_tail(5));
        }
        let w = measured?;
        produced?;
        if w.deltas[0] == 0 {
            bail!("no result was seen in the window; the consumers' logs end:\n{logs}");
        }
        Ok(BrokerWindow {
            acked: w.deltas[0],
            confirmed: w.deltas[1],
            nacked: w.deltas[2],
            secs: w.secs,
        })
    }

    fn spawn_consumer(&self, k: usize) -> Result<ManagedProcess> {
        let exe = crate::stack::process::own_executable()?;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("ceiling-consumer")
            .arg("--topology")
            .arg(&self.opts.topology_path)
            .args(["--broker-url", self.broker_url])
            .args(["--backend-url", self.backend_url])
            .arg(format!("--prefetch={}", self.s.prefetch))
            .arg(format!("--batch={}", self.s.batch))
            .arg(format!("--in-flight={}", self.s.in_flight))
            .envs(crate::credentials::current().child_env());
        Ok(ManagedProcess::spawn(
            &format!("ceiling consumer {k}"),
            cmd,
            "hab",
            &self
                .logs
                .join(format!("ceiling-consumer-{}-{k}.log", self.s.name)),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(name: &str, seen: &[u64], error: Option<&str>) -> StrategyFigure {
        let mut s = StrategyFigure {
            name: name.into(),
            how: format!("{name} how"),
            error: error.map(String::from),
            ..StrategyFigure::default()
        };
        for &acked in seen {
            s.record(BrokerWindow {
                acked,
                confirmed: acked,
                nacked: 0,
                secs: 1.0,
            });
        }
        s
    }

    #[test]
    fn the_ceiling_is_what_the_best_strategy_sustains_over_its_windows() {
        // one_consumer has the highest single window (9,900) but sustains less than
        // two_consumers: a peak is not a ceiling.
        let mut s = vec![
            strategy("one_consumer", &[8_000, 9_900], None),
            strategy("two_consumers", &[9_500, 9_400], None),
            strategy("broken", &[20_000], Some("refused")),
        ];
        let f = figure(
            &mut s,
            (Duration::from_millis(333), Duration::from_secs(1)),
            "hab.trivial via x",
        )
        .unwrap();
        assert_eq!(
            (f.value, f.unit.as_str(), f.count, f.duration_s),
            (9_450.0, "tasks/s", 18_900, 2.0)
        );
        assert_eq!((s[0].msg_per_s, s[0].sustained_per_s), (9_900.0, 8_950.0));
        assert!(s[1].chosen && !s[0].chosen && !s[2].chosen);
        assert!(
            f.how.starts_with(
                "results seen per second over all windows of the best of 3 strategies × 2 windows of 1.00 s"
            ),
            "{}",
            f.how
        );
        assert!(f.how.contains("its best window 9500)"), "{}", f.how);
        assert!(
            f.how
                .contains("two_consumers — two_consumers how; hab.trivial via x")
        );
        let mut none = vec![strategy("broken", &[], Some("refused"))];
        assert!(figure(&mut none, (Duration::ZERO, Duration::from_secs(1)), "x").is_none());
    }

    #[test]
    fn each_strategy_says_how_it_runs_the_path() {
        assert_eq!(STRATEGIES[0].name, "one_consumer");
        let d = STRATEGIES[1].describe();
        assert!(
            d.contains(
                "2 consumer processes (prefetch 256 each; results stored in batches of up to 64"
            ),
            "{d}"
        );
        assert!(d.contains("results seen through PSUBSCRIBE"), "{d}");
    }
}
