//! Windows that end once their figure has settled: the Redis, disk and CPU figures are
//! measured for at least [`MIN_WINDOW`] and at most the calibration's duration, and stop
//! as soon as their last few samples agree (Redis: rates of 250 ms slices; disk: files;
//! CPU: the median of the calls, against the median of their first half). A figure that
//! never settles is measured for the whole duration, and its `how` says which it was.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::{Window, sleep_or_cancel};

/// The shortest window a settling figure is measured for (the whole duration when that is
/// shorter): a moment of quiet is not a settled figure.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);
/// A Redis window's slices.
pub const SLICE: Duration = Duration::from_millis(250);
/// How many of the last samples must agree.
pub const LAST: usize = 4;

/// Whether the last `k` samples lie within `tolerance` (a fraction) of their mean.
pub fn settled(samples: &[f64], k: usize, tolerance: f64) -> bool {
    if samples.len() < k || k == 0 {
        return false;
    }
    let last = &samples[samples.len() - k..];
    let mean = last.iter().sum::<f64>() / k as f64;
    mean > 0.0 && last.iter().all(|s| (s - mean).abs() <= tolerance * mean)
}

/// How a settling window ended, for a figure's `how`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settle {
    /// Seconds measured.
    pub secs: f64,
    /// The most it could have been measured for.
    pub of: Duration,
    /// Whether it ended because the figure settled.
    pub early: bool,
    /// The rule it was held to, e.g. "the last 4 slices of 250 ms within ±5 %".
    pub rule: &'static str,
}

impl Settle {
    /// `; settled after 1.25 s of 3.00 s (the last 4 … within ±5 %)`, or that it did not.
    pub fn describe(&self) -> String {
        if self.early {
            format!(
                "; settled after {:.2} s of {:.2} s ({})",
                self.secs,
                self.of.as_secs_f64(),
                self.rule
            )
        } else {
            format!(
                "; measured for the whole {:.2} s (not settled earlier: {})",
                self.of.as_secs_f64(),
                self.rule
            )
        }
    }
}

/// The shortest window for a calibration of `duration`.
pub fn min_window(duration: Duration) -> Duration {
    MIN_WINDOW.min(duration)
}

/// After `warmup`, time a window on `counters` that ends when the rate of `counters[0]`
/// in its last [`LAST`] slices of [`SLICE`] agree within 10 %, no sooner than
/// [`min_window`] and no later than `duration`.
pub(crate) async fn settling_window(
    counters: &[&AtomicU64],
    warmup: Duration,
    duration: Duration,
    cancel: &CancellationToken,
) -> Result<(Window, Settle)> {
    const RULE: &str = "the rates of the last 4 slices of 250 ms within ±10 % of their mean";
    sleep_or_cancel(warmup, cancel).await?;
    let read = || -> Vec<u64> { counters.iter().map(|c| c.load(Ordering::Acquire)).collect() };
    let before = read();
    let t0 = Instant::now();
    let mut rates = Vec::new();
    let mut last = (before[0], t0);
    let early = loop {
        let left = duration.saturating_sub(t0.elapsed());
        if left.is_zero() {
            break false;
        }
        sleep_or_cancel(SLICE.min(left), cancel).await?;
        let (now, at) = (counters[0].load(Ordering::Acquire), Instant::now());
        let secs = at.duration_since(last.1).as_secs_f64();
        if secs > 0.0 {
            rates.push((now - last.0) as f64 / secs);
        }
        last = (now, at);
        if t0.elapsed() >= min_window(duration) && settled(&rates, LAST, 0.10) {
            break true;
        }
    };
    let after = read();
    let secs = t0.elapsed().as_secs_f64();
    Ok((
        Window {
            deltas: after.iter().zip(&before).map(|(a, b)| a - b).collect(),
            secs,
        },
        Settle {
            secs,
            of: duration,
            early,
            rule: RULE,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_samples_must_agree_and_there_must_be_enough() {
        assert!(!settled(&[100.0, 100.0, 100.0], 4, 0.05), "too few");
        assert!(settled(&[10.0, 100.0, 102.0, 98.0, 101.0], 4, 0.05));
        assert!(!settled(&[100.0, 102.0, 98.0, 120.0], 4, 0.05));
        assert!(!settled(&[0.0, 0.0, 0.0, 0.0], 4, 0.05), "nothing measured");
        assert_eq!(
            min_window(Duration::from_millis(300)),
            Duration::from_millis(300)
        );
        assert_eq!(min_window(Duration::from_secs(3)), MIN_WINDOW);
    }

    #[tokio::test]
    async fn a_steady_counter_ends_the_window_early_and_an_idle_one_runs_it_out() {
        use std::sync::Arc;
        let steady = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The counter is the time itself (µs since the start), kept current by a busy
        // thread: a steady rate whatever the scheduler does to a sleeping task.
        let feeder = {
            let (c, stop) = (steady.clone(), stop.clone());
            std::thread::spawn(move || {
                let t0 = Instant::now();
                while !stop.load(Ordering::Acquire) {
                    c.store(t0.elapsed().as_micros() as u64, Ordering::Release);
                    std::hint::spin_loop();
                }
            })
        };
        let cancel = CancellationToken::new();
        let (w, s) = settling_window(&[&steady], Duration::ZERO, Duration::from_secs(10), &cancel)
            .await
            .unwrap();
        stop.store(true, Ordering::Release);
        feeder.join().unwrap();
        // It may take longer than the minimum on a busy machine, never the whole 10 s of
        // a steady feed (the test fails if the rule never lets a window end early).
        assert!(s.early, "{s:?}");
        assert!(s.secs >= 1.0 && s.secs < 10.0, "{s:?}");
        assert!(w.deltas[0] > 0);
        assert!(
            s.describe().starts_with("; settled after "),
            "{}",
            s.describe()
        );
        // Nothing moves: never settled (a zero rate is no figure), the whole window.
        let idle = AtomicU64::new(0);
        let (_, s) = settling_window(
            &[&idle],
            Duration::ZERO,
            Duration::from_millis(600),
            &cancel,
        )
        .await
        .unwrap();
        assert!(!s.early);
        assert!(
            s.describe().contains("measured for the whole 0.60 s"),
            "{}",
            s.describe()
        );
    }
}
