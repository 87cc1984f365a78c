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
use futures_util::FutureExt;
use futures_util::stream::{FuturesUnordered, StreamExt};
use lapin::Confirmation;
use lapin::options::{BasicAckOptions, QueuePurgeOptions};
use lapin::types::ShortString;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Calibration, Figure, Interrupted, endpoint, rate, rate_figure, timed_window};
use crate::broker;
use crate::config::Topology;
use crate::protocol::message::{TaskMessage, encode};
use crate::stack::StackHandle;

/// Unconfirmed publishes each publisher keeps in flight.
pub const CONFIRM_WINDOW: usize = 512;
/// Fewest messages the producers may be ahead of the consumers (published, not yet
/// acked); a strategy with more prefetch gets twice its total prefetch. Keeps the queue
/// short and the measurement at a steady state instead of a growing backlog.
pub const BACKLOG: usize = 1024;
/// Each consumer's prefetch (unacknowledged deliveries): hab's worker's on two cores.
pub const PREFETCH: u16 = 256;
/// Most deliveries one `basic.ack` with `multiple` settles (half the prefetch, so the
/// broker keeps delivering while an ack is on its way).
pub const ACK_BATCH: usize = 128;
/// `basic.publish` calls a pipelining publisher hands to its connection at once.
pub const PUBLISHES_IN_FLIGHT: usize = 32;
/// Runs of each strategy (each with one timed window); the best window counts.
pub const ROUNDS: u32 = 3;
/// Longest wait for the consumers to take what was published after a window closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// Most deliveries one `basic.ack` settles: 1 = one ack per delivery (no
    /// `multiple`); more = whatever arrived while the previous ack was being sent, up to
    /// this many, settled by one ack with `multiple` (as hab's worker does).
    pub ack_batch: usize,
}

/// The strategies tried, simplest first (the first wins a tie).
pub const STRATEGIES: [Strategy; 4] = [
    Strategy {
        name: "ack_each",
        publishers: 1,
        publishes_in_flight: 1,
        consumers: 1,
        prefetch: PREFETCH,
        ack_batch: 1,
    },
    Strategy {
        name: "ack_multiple",
        publishers: 1,
        publishes_in_flight: 1,
        consumers: 1,
        prefetch: PREFETCH,
        ack_batch: ACK_BATCH,
    },
    Strategy {
        name: "pipelined_publish",
        publishers: 1,
        publishes_in_flight: PUBLISHES_IN_FLIGHT,
        consumers: 1,
        prefetch: PREFETCH,
        ack_batch: ACK_BATCH,
    },
    Strategy {
        name: "two_connections",
        publishers: 2,
        publishes_in_flight: PUBLISHES_IN_FLIGHT,
        consumers: 2,
        prefetch: PREFETCH,
        ack_batch: ACK_BATCH,
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
        let acks = if self.ack_batch == 1 {
            "one ack per delivery".to_string()
        } else {
            format!(
                "acks with multiple (up to {} deliveries each)",
                self.ack_batch
            )
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

/// What one timed window counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrokerWindow {
    /// Deliveries acknowledged (consumed end to end).
    pub acked: u64,
    /// Publishes confirmed (handed to the connection when confirms are off).
    pub confirmed: u64,
    /// Publishes nacked by the broker.
    pub nacked: u64,
    /// The window's length, seconds.
    pub secs: f64,
}

impl BrokerWindow {
    /// Round trips per second.
    pub fn round_trip(&self) -> f64 {
        rate(self.acked, self.secs)
    }

    /// Publish confirmations per second.
    pub fn publish(&self) -> f64 {
        rate(self.confirmed, self.secs)
    }
}

/// One strategy as calibrate.json records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StrategyFigure {
    /// [`Strategy::name`].
    pub name: String,
    /// [`Strategy::describe`].
    pub how: String,
    /// Every timed window, in the order measured.
    pub windows: Vec<BrokerWindow>,
    /// Its best window's round trips per second (0 before any window).
    pub msg_per_s: f64,
    /// The error that stopped it; a strategy with an error does not compete.
    pub error: Option<String>,
    /// True for the strategy whose best window is the broker round trip.
    pub chosen: bool,
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

    /// One more window measured.
    pub fn record(&mut self, w: BrokerWindow) {
        self.windows.push(w);
        self.msg_per_s = best_window(&self.windows, BrokerWindow::round_trip)
            .map_or(0.0, |i| self.windows[i].round_trip());
    }
}

/// The window with the highest `value`, the earliest of equal ones; `None` for none.
pub fn best_window(
    windows: &[BrokerWindow],
    value: impl Fn(&BrokerWindow) -> f64,
) -> Option<usize> {
    if windows.is_empty() { None } else { Some(0) }
}

/// The strategy that wins: the highest best window among those without an error that
/// measured something, the earliest (simplest) of equal ones; `None` when none did.
pub fn choose(strategies: &[StrategyFigure]) -> Option<usize> {
    if strategies.is_empty() { None } else { Some(0) }
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
            "best of {} strategies × {rounds} windows of {:.2} s (each after {:.2} s warm-up, fresh connections, strategies interleaved): {} — {}; {path}",
            strategies.len(),
            window.as_secs_f64(),
            warmup.as_secs_f64(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn w(acked: u64, secs: f64) -> BrokerWindow {
        BrokerWindow {
            acked,
            confirmed: acked + 10,
            nacked: 0,
            secs,
        }
    }

    fn strategy(name: &str, windows: &[BrokerWindow], error: Option<&str>) -> StrategyFigure {
        let mut s = StrategyFigure {
            name: name.into(),
            how: format!("{name} how"),
            error: error.map(String::from),
            ..StrategyFigure::default()
        };
        for &x in windows {
            s.record(x);
        }
        s
    }

    #[test]
    fn the_best_window_is_the_highest_rate_not_the_first_last_or_longest() {
        // 900/s, 1,200/s, then 1,000 messages in 0.8 s = 1,250/s (the most messages is
        // the second window; the highest rate the third).
        let ws = [w(900, 1.0), w(1_200, 1.0), w(1_000, 0.8), w(1_100, 1.0)];
        assert_eq!(best_window(&ws, BrokerWindow::round_trip), Some(2));
        // Equal rates: the earliest.
        assert_eq!(
            best_window(&[w(10, 1.0), w(20, 2.0)], BrokerWindow::round_trip),
            Some(0)
        );
        assert_eq!(best_window(&[], BrokerWindow::round_trip), None);
        // A strategy's figure follows its best window as windows come in.
        let mut s = StrategyFigure::default();
        s.record(w(1_000, 1.0));
        assert_eq!(s.msg_per_s, 1_000.0);
        s.record(w(500, 1.0));
        assert_eq!(s.msg_per_s, 1_000.0);
        s.record(w(3_000, 2.0));
        assert_eq!(s.msg_per_s, 1_500.0);
        assert_eq!(s.windows.len(), 3);
    }

    #[test]
    fn the_fastest_strategy_without_an_error_wins() {
        let ss = [
            strategy("ack_each", &[w(9_000, 1.0), w(9_500, 1.0)], None),
            strategy("ack_multiple", &[w(11_000, 1.0), w(12_000, 1.0)], None),
            // Fastest, but it failed in a later run: it does not compete.
            strategy(
                "pipelined_publish",
                &[w(15_000, 1.0)],
                Some("connection reset"),
            ),
            strategy("two_connections", &[w(11_500, 1.0), w(11_900, 1.0)], None),
        ];
        assert_eq!(choose(&ss), Some(1));
        // Ties go to the simpler (earlier) strategy.
        let tie = [
            strategy("a", &[w(5_000, 1.0)], None),
            strategy("b", &[w(5_000, 1.0)], None),
        ];
        assert_eq!(choose(&tie), Some(0));
        // A strategy that measured nothing (interrupted before its first window, or
        // nothing got through) does not win over one that did.
        let nothing = [
            strategy("a", &[], None),
            strategy("b", &[w(0, 1.0)], None),
            strategy("c", &[w(1, 1.0)], None),
        ];
        assert_eq!(choose(&nothing), Some(2));
        assert_eq!(choose(&nothing[..2]), None);
        assert_eq!(choose(&[strategy("x", &[w(9, 1.0)], Some("boom"))]), None);
        assert_eq!(choose(&[]), None);
    }

    #[test]
    fn the_figures_come_from_the_winner_best_window_and_name_it() {
        let mut ss = vec![
            strategy(
                "ack_each",
                &[w(9_000, 1.0), w(9_500, 1.0), w(9_200, 1.0)],
                None,
            ),
            strategy(
                "ack_multiple",
                &[w(11_000, 1.0), w(12_500, 1.0), w(12_000, 1.0)],
                None,
            ),
            strategy("pipelined_publish", &[w(99_000, 1.0)], Some("boom")),
        ];
        ss[0].chosen = true; // stale: figures() decides again
        let windows = (Duration::from_millis(300), Duration::from_secs(1));
        let (rt, publish) = figures(&mut ss, true, "hab.trivial", windows).unwrap();
        assert_eq!(
            ss.iter().map(|s| s.chosen).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert_eq!((rt.value, rt.count, rt.duration_s), (12_500.0, 12_500, 1.0));
        assert_eq!(rt.unit, "msg/s");
        assert!(
            rt.how.contains("best of 3 strategies × 3 windows"),
            "{}",
            rt.how
        );
        assert!(
            rt.how.contains("ack_multiple — ack_multiple how"),
            "{}",
            rt.how
        );
        // Confirms: the best window of the strategies that competed (not the failed one).
        assert_eq!(publish.value, 12_510.0);
        assert_eq!(publish.unit, "confirms/s");
        assert!(publish.how.ends_with("ack_multiple"), "{}", publish.how);
        let (_, off) = figures(&mut ss, false, "x", windows).unwrap();
        assert_eq!(off.unit, "publishes/s");
        // Nothing measured: no figure, nobody chosen.
        let mut failed = vec![strategy("a", &[w(5, 1.0)], Some("boom"))];
        assert!(figures(&mut failed, true, "x", windows).is_none());
        assert!(!failed[0].chosen);
    }

    #[test]
    fn windows_split_the_duration_over_the_rounds_after_a_bounded_warmup() {
        let (warmup, window) = run_windows(Duration::from_secs(3));
        assert_eq!(window, Duration::from_secs(1));
        assert_eq!(
            warmup,
            Duration::from_millis(333) + Duration::from_nanos(333_333)
        );
        assert_eq!(
            run_windows(Duration::from_millis(300)),
            (Duration::from_millis(200), Duration::from_millis(100))
        );
        assert_eq!(
            run_windows(Duration::from_secs(30)).0,
            Duration::from_millis(500)
        );
    }

    #[test]
    fn every_strategy_has_its_own_name_and_the_first_is_the_old_calibration() {
        let mut names: Vec<_> = STRATEGIES.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), STRATEGIES.len());
        let old = &STRATEGIES[0];
        assert_eq!((old.ack_batch, old.publishers, old.consumers), (1, 1, 1));
        assert!(old.describe().contains("one ack per delivery"));
        assert!(STRATEGIES[1].describe().contains("acks with multiple"));
        assert!(
            STRATEGIES
                .iter()
                .all(|s| s.backlog() >= 2 * usize::from(s.prefetch) * s.consumers)
        );
    }
}
