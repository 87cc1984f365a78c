//! Numbers on the charts' axes: number labels ([`fmt_num`]), tick values for linear and log
//! axes, the bounds of a log axis, axes that draw exactly the ticks chosen here, and where
//! the bars of a category go.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// A number with about three significant digits, no trailing zeros, thousands separated
/// (`5,512`, `12.3`, `0.213`).
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        return group_thousands(v.round() as i64);
    }
    let decimals = if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        // Three significant digits below 1.
        (2 - a.log10().floor() as i32).clamp(2, 6) as usize
    };
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Tick values for a log axis over `lo..hi` (both > 0): 1-2-5 steps, or only powers of ten
/// when that would give more than 12 ticks; never fewer than two ticks when `lo < hi`.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let in_range = |mults: &[f64]| {
        let mut out = Vec::new();
        let mut e = lo.log10().floor() as i32 - 1;
        while 10f64.powi(e) <= hi * 1.000_001 {
            for m in mults {
                let v = m * 10f64.powi(e);
                if v >= lo * 0.999_999 && v <= hi * 1.000_001 {
                    out.push(v);
                }
            }
            e += 1;
        }
        out
    };
    let decades = in_range(&[1.0]);
    let fine = in_range(&[1.0, 2.0, 5.0]);
    if fine.len() > 12 && decades.len() >= 2 {
        decades
    } else if fine.len() >= 2 {
        fine
    } else {
        // Less than one 1-2-5 step in range: the two ends.
        vec![lo, hi]
    }
}

/// Ticks for a linear axis from 0 to `hi`: multiples of a 1-2-5 step, at most about eight.
pub fn linear_ticks(hi: f64) -> Vec<f64> {
    if !(hi > 0.0 && hi.is_finite()) {
        return vec![0.0];
    }
    let raw = hi / 8.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|v| *v <= hi * 1.000_001)
        .collect()
}

/// A lower and an upper bound for a log axis showing `values` (positive ones; others are
/// ignored), with some room at both ends. `None` when no value is positive.
pub fn log_bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    let (lo, hi) = (lo / 1.6, hi * 1.6);
    Some((lo, hi.max(lo * 10.0)))
}

/// An f64 axis (linear or log) with the tick values given, not chosen by plotters, and no
/// light grid lines.
pub(crate) struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
}

/// A linear axis over `lo..hi` with ticks at `ticks`.
pub(crate) fn linear_axis(lo: f64, hi: f64, ticks: Vec<f64>) -> Ticked<RangedCoordf64> {
    Ticked {
        inner: (lo..hi).into(),
        ticks,
    }
}

/// A log axis over `lo..hi` (both > 0) with ticks from [`log_ticks`].
pub(crate) fn log_axis(lo: f64, hi: f64) -> Ticked<LogCoord<f64>> {
    Ticked {
        inner: (lo..hi).log_scale().into(),
        ticks: log_ticks(lo, hi),
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> std::ops::Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// Horizontal extent of bar `j` of `n` in category `i` (categories are one unit wide).
pub(crate) fn bar_span(i: usize, j: usize, n: usize, group: f64) -> (f64, f64) {
    let w = group / n as f64;
    let x0 = i as f64 + (1.0 - group) / 2.0 + j as f64 * w;
    (x0 + w * 0.1, x0 + w * 0.9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_grouped() {
        assert_eq!(fmt_num(5512.4), "5,512");
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_num(0.2134), "0.213");
        assert_eq!(fmt_num(0.001234), "0.00123");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(100.0), "100");
    }

    #[test]
    fn log_ticks_use_1_2_5_or_decades() {
        assert_eq!(log_ticks(0.8, 60.0), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        let wide = log_ticks(0.001, 100_000.0);
        assert_eq!(wide.len(), 9);
        assert!((wide[0] - 0.001).abs() < 1e-12 && wide[8] == 100_000.0);
        // Narrower than one step: the ends.
        assert_eq!(log_ticks(2.1, 4.9), vec![2.1, 4.9]);
        assert!(log_ticks(0.0, 1.0).is_empty());
    }

    #[test]
    fn linear_ticks_are_round() {
        assert_eq!(
            linear_ticks(400.0),
            vec![0.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0]
        );
        assert_eq!(
            linear_ticks(7.0),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        );
        let t = linear_ticks(1.3);
        assert_eq!(t.len(), 7);
        assert!((t[6] - 1.2).abs() < 1e-9);
        assert_eq!(linear_ticks(0.0), vec![0.0]);
    }

    #[test]
    fn log_bounds_leave_room_and_ignore_non_positive() {
        let (lo, hi) = log_bounds([0.0, 2.0, 50.0, -1.0]).unwrap();
        assert!(lo < 2.0 && lo > 1.0 && hi > 50.0);
        assert!(log_bounds([0.0]).is_none());
    }

    #[test]
    fn bars_of_a_category_do_not_overlap_and_stay_inside_it() {
        let spans: Vec<(f64, f64)> = (0..3).map(|j| bar_span(2, j, 3, 0.8)).collect();
        assert!(spans[0].0 > 2.0 && spans[2].1 < 3.0);
        assert!(spans[0].1 < spans[1].0 && spans[1].1 < spans[2].0);
    }
}
