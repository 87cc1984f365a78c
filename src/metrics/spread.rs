//! The spread of a figure over repeated measurements (runs of `hab compare --repeat`,
//! repetitions of a workload with `repeat = N`, or both): median, min and max.

use serde::{Deserialize, Serialize};

/// Median, minimum and maximum of some values (one per run or repetition).
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
    /// The spread of `values`; `None` when there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_the_middle_and_the_ends() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        let s = Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Spread::of([]).is_none());
        assert_eq!(Spread::of([f64::NAN, 5.0]).unwrap().n, 1);
    }

    /// Pins today's behaviour on non-finite and empty input (issue 15, before one module).
    #[test]
    fn pinned_spread_on_nan_inf_and_empty() {
        // Every non-finite value dropped.
        let s = Spread::of([f64::NAN, f64::NEG_INFINITY, 1.0, f64::INFINITY, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 2));
        assert!(Spread::of([f64::NAN, f64::INFINITY]).is_none());
    }
}
