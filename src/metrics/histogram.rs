//! A latency histogram in microseconds with 3 significant digits.

use anyhow::{Context, Result};
use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Percentiles and moments of a histogram, all in µs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Number of values recorded.
    pub count: u64,
    /// Smallest value, µs.
    pub min_us: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// 99.9th percentile, µs.
    pub p999_us: u64,
    /// Largest value, µs.
    pub max_us: u64,
    /// Arithmetic mean, µs.
    pub mean_us: f64,
}

/// A histogram of durations in µs (1 µs to any length, auto-resizing), 3 significant digits.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    hist: Histogram<u64>,
    /// Values that could not be recorded (negative durations), reported per stage.
    negative: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        let mut hist = Histogram::new(3).expect("3 significant digits is valid");
        hist.auto(true);
        LatencyHistogram { hist, negative: 0 }
    }

    /// Record one duration in µs. Negative values (an end stamped before its start: with
    /// every stamp on one clock, a real ordering such as a Celery worker's finish line
    /// written after its result was seen) are counted apart ([`negative`](Self::negative)),
    /// not recorded.
    pub fn record(&mut self, us: i64) {
        if us < 0 {
            self.negative += 1;
            return;
        }
        self.hist
            .record(us as u64)
            .expect("auto-resizing histogram accepts any value");
    }

    /// Empty the histogram, keeping its size (to reuse it for the next interval).
    pub fn clear(&mut self) {
        self.hist.reset();
        self.negative = 0;
    }

    /// Number of negative durations that were skipped.
    pub fn negative(&self) -> u64 {
        self.negative
    }

    /// Number of values recorded.
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// Add another histogram's values.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        self.hist
            .add(&other.hist)
            .expect("auto-resizing histogram accepts any value");
        self.negative += other.negative;
    }

    /// The value at quantile `q` (0..=1), µs.
    pub fn quantile_us(&self, q: f64) -> u64 {
        self.hist.value_at_quantile(q)
    }

    /// Percentiles and moments.
    pub fn stats(&self) -> LatencyStats {
        if self.hist.is_empty() {
            return LatencyStats::default();
        }
        LatencyStats {
            count: self.hist.len(),
            min_us: self.hist.min(),
            p50_us: self.hist.value_at_quantile(0.50),
            p90_us: self.hist.value_at_quantile(0.90),
            p99_us: self.hist.value_at_quantile(0.99),
            p999_us: self.hist.value_at_quantile(0.999),
            max_us: self.hist.max(),
            mean_us: self.hist.mean(),
        }
    }

    /// The underlying HdrHistogram.
    pub fn inner(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// Compressed V2 encoding (what HdrHistogram's log readers expect), base64.
    pub fn to_base64(&self) -> String {
        let mut bytes = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.hist, &mut bytes)
            .expect("serializing to memory cannot fail");
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// Decode what [`to_base64`](Self::to_base64) wrote.
    pub fn from_base64(s: &str) -> Result<Self> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .context("histogram is not valid base64")?;
        let mut hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .context("histogram is not a valid HdrHistogram V2 encoding")?;
        hist.auto(true);
        Ok(LatencyHistogram { hist, negative: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = LatencyHistogram::new();
        for v in 1..=1000 {
            h.record(v);
        }
        let s = h.stats();
        assert_eq!(s.count, 1000);
        assert_eq!(s.min_us, 1);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p90_us, 900);
        assert_eq!(s.p99_us, 990);
        assert_eq!(s.p999_us, 999);
        assert_eq!(s.max_us, 1000);
        assert!((s.mean_us - 500.5).abs() < 0.5);
    }

    #[test]
    fn three_significant_digits_over_a_wide_range() {
        let mut h = LatencyHistogram::new();
        h.record(123_456_789);
        let m = h.stats().max_us as f64;
        assert!((m - 123_456_789.0).abs() / 123_456_789.0 < 1e-3);
    }

    #[test]
    fn negative_values_are_counted_not_recorded() {
        let mut h = LatencyHistogram::new();
        h.record(-5);
        h.record(5);
        assert_eq!(h.len(), 1);
        assert_eq!(h.negative(), 1);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record(10);
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.len(), 2);
        assert!(a.stats().max_us >= 999_000);
    }

    #[test]
    fn base64_round_trip_keeps_every_count() {
        let mut h = LatencyHistogram::new();
        for v in [1, 7, 7, 300, 45_000, 9_000_000] {
            h.record(v);
        }
        let back = LatencyHistogram::from_base64(&h.to_base64()).unwrap();
        assert_eq!(back.inner(), h.inner());
        assert!(LatencyHistogram::from_base64("not base64!").is_err());
    }

    #[test]
    fn empty_stats_are_zero() {
        assert_eq!(LatencyHistogram::new().stats(), LatencyStats::default());
    }
}
