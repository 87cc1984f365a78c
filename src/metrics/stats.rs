//! The one statistics module: the median and the spread (median, min, max) of repeated
//! figures, and the one formatting of durations, shared by metrics, analysis, charts and
//! reports.
//!
//! # Non-finite and empty input (one decision for every caller)
//! Non-finite values (NaN, +inf, −inf) are dropped before anything is computed, and no
//! value left means `None`: a median or spread is never NaN, never infinite and never a
//! made-up 0. A caller that printed 0 for "nothing measured" keeps printing it, by
//! `unwrap_or(0.0)` at the caller (the CPU figure of `hab calibrate`).
//!
//! Before this module (issue 15) the chart's median and spread dropped only NaN (±inf
//! counted as values), and calibrate's median kept every value and returned 0.0 when
//! empty. No file hab writes changes: the figures charts and analysis take their medians
//! of come from run.json, whose numbers are finite (JSON cannot hold NaN or infinity), and
//! calibrate's CPU figure is the median of timed calls (finite, never empty).

use serde::{Deserialize, Serialize};

/// The finite values of `values`, sorted.
fn finite_sorted(values: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// The median of sorted, non-empty `v` (the mean of the two middle values for an even
/// count).
fn median_sorted(v: &[f64]) -> f64 {
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median of the finite `values` (the mean of the two middle values for an even
/// count); `None` when there is none.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let v = finite_sorted(values);
    (!v.is_empty()).then(|| median_sorted(&v))
}

/// Median, minimum and maximum of some values (one per run or repetition): the spread of
/// a figure over repeated measurements (runs of `hab compare --repeat`, repetitions of a
/// workload with `repeat = N`, or both).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of values.
    pub n: usize,
}

impl Spread {
    /// The spread of the finite `values`; `None` when there is none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let v = finite_sorted(values);
        let n = v.len();
        (n > 0).then(|| Spread {
            median: median_sorted(&v),
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

/// A duration in µs as a short human string: `850µs`, `12.3ms`, `4.56s`.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us}µs")
    } else if us < 1_000_000 {
        format!("{:.1}ms", us as f64 / 1e3)
    } else {
        format!("{:.2}s", us as f64 / 1e6)
    }
}

/// A duration in ms as a short human string (as [`fmt_us`], with a sign when negative).
/// NaN reads `0µs` and the infinities saturate (callers pass finite values).
pub fn fmt_ms(ms: f64) -> String {
    if ms < 0.0 {
        format!("-{}", fmt_us((-ms * 1000.0).round() as u64))
    } else {
        fmt_us((ms * 1000.0).round() as u64)
    }
}

/// A duration in ms as a table cell: whole milliseconds (`1234`), `–` for none.
pub fn fmt_ms_cell(ms: Option<f64>) -> String {
    match ms {
        Some(v) => format!("{v:.0}"),
        None => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAN: f64 = f64::NAN;
    const INF: f64 = f64::INFINITY;
    const NEG_INF: f64 = f64::NEG_INFINITY;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([]), None);
    }

    /// The pinned behaviour of the four medians before this module, and where it changed.
    #[test]
    fn median_drops_non_finite_values() {
        // NaN: dropped, as the chart's and the spread's medians did. Calibrate's kept it
        // (sorted above +inf): [NaN, 1, 2] gave 2.0, [NaN] gave NaN.
        assert_eq!(median([NAN, 5.0]), Some(5.0));
        assert_eq!(median([NAN, 1.0, 2.0]), Some(1.5));
        assert_eq!(median([NAN]), None);
        // ±inf: dropped, as the spread's median did. The chart's and calibrate's kept
        // them: [inf, 1, 2] gave 2.0, [inf, inf, 1] inf, [-inf, 1] -inf.
        assert_eq!(median([INF, 1.0, 2.0]), Some(1.5));
        assert_eq!(median([INF, INF, 1.0]), Some(1.0));
        assert_eq!(median([NEG_INF, 1.0]), Some(1.0));
        // Empty: None, as the chart's did; calibrate's gave 0.0 (its caller keeps that).
        assert_eq!(median([INF, NAN]), None);
    }

    #[test]
    fn spread_takes_the_middle_and_the_ends() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        let s = Spread::of([5.0, 1.0, 9.0, 3.0]).unwrap();
        assert_eq!(
            s,
            Spread {
                median: 4.0,
                min: 1.0,
                max: 9.0,
                n: 4
            }
        );
        assert!(Spread::of([]).is_none());
    }

    /// The pinned behaviour of the two spreads before this module, and where it changed.
    #[test]
    fn spread_drops_non_finite_values() {
        // As metrics::Spread did; the chart's kept ±inf: [NaN, -inf, 1, inf] gave
        // (1, -inf, inf, n = 3).
        let s = Spread::of([NAN, NEG_INF, 1.0, INF, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 2));
        assert_eq!(Spread::of([NAN, NEG_INF, 1.0, INF]).unwrap().n, 1);
        assert!(Spread::of([NAN, INF]).is_none());
        assert!(Spread::of([NAN]).is_none());
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(fmt_us(850), "850µs");
        assert_eq!(fmt_us(12_340), "12.3ms");
        assert_eq!(fmt_us(4_560_000), "4.56s");
        assert_eq!(fmt_ms(0.5), "500µs");
        assert_eq!(fmt_ms(109.0), "109.0ms");
        assert_eq!(fmt_ms(2340.0), "2.34s");
        assert_eq!(fmt_ms(-2340.0), "-2.34s");
        assert_eq!(fmt_ms_cell(None), "–");
        assert_eq!(fmt_ms_cell(Some(1234.4)), "1234");
    }

    /// Unchanged from before this module: formatting takes what it is given.
    #[test]
    fn durations_of_non_finite_values_as_before() {
        assert_eq!(fmt_ms(NAN), "0µs");
        assert_eq!(fmt_ms(INF), "18446744073709.55s");
        assert_eq!(fmt_ms(NEG_INF), "-18446744073709.55s");
        assert_eq!(fmt_ms_cell(Some(NAN)), "NaN");
        assert_eq!(fmt_ms_cell(Some(INF)), "inf");
    }
}
