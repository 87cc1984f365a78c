//! Arrival schedules: when each task of a workload is *intended* to start, as an offset
//! from the workload's t0. Latency is measured from these intended times, never from the
//! moment the publish happened, so a slow producer cannot hide queueing (no coordinated
//! omission).

/// An arrival schedule for `count` tasks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schedule {
    /// Every task intended at t0 (the seed study's method: measures makespan/throughput).
    Burst {
        /// Number of tasks.
        count: u64,
    },
    /// Task i intended at t0 + i / rate (open loop: measures latency at a given load).
    Rate {
        /// Number of tasks.
        count: u64,
        /// Tasks per second.
        per_s: f64,
    },
}

impl Schedule {
    /// Number of tasks in the schedule.
    pub fn count(&self) -> u64 {
        match *self {
            Schedule::Burst { count } | Schedule::Rate { count, .. } => count,
        }
    }

    /// Intended offset of task `i` from t0, in µs.
    pub fn offset_us(&self, i: u64) -> u64 {
        match *self {
            Schedule::Burst { .. } => 0,
            // Computed from i each time (not accumulated) so rounding never drifts.
            Schedule::Rate { per_s, .. } => ((i as f64) * 1e6 / per_s).round() as u64,
        }
    }

    /// Offset of the last task in µs: how long publishing is planned to take.
    pub fn span_us(&self) -> u64 {
        match self.count() {
            0 => 0,
            n => self.offset_us(n - 1),
        }
    }

    /// The intended offsets of all tasks, in order.
    pub fn offsets_us(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.count()).map(|i| self.offset_us(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_all_at_zero() {
        let s = Schedule::Burst { count: 5 };
        assert_eq!(s.offsets_us().collect::<Vec<_>>(), vec![0; 5]);
        assert_eq!(s.span_us(), 0);
    }

    #[test]
    fn rate_spaces_tasks_evenly() {
        let s = Schedule::Rate {
            count: 4,
            per_s: 2000.0,
        };
        assert_eq!(s.offsets_us().collect::<Vec<_>>(), vec![0, 500, 1000, 1500]);
        assert_eq!(s.span_us(), 1500);
    }

    #[test]
    fn rate_does_not_drift_over_a_million_tasks() {
        let s = Schedule::Rate {
            count: 1_000_000,
            per_s: 3.0,
        };
        // 999,999 / 3 s exactly = 333,333 s.
        assert_eq!(s.offset_us(999_999), 333_333_000_000);
        let mut prev = 0;
        for (i, o) in s.offsets_us().enumerate().take(10_000) {
            assert!(o >= prev, "non-monotonic at {i}");
            prev = o;
        }
    }

    #[test]
    fn non_integer_intervals_round_to_nearest_us() {
        let s = Schedule::Rate {
            count: 4,
            per_s: 3.0,
        };
        assert_eq!(
            s.offsets_us().collect::<Vec<_>>(),
            vec![0, 333_333, 666_667, 1_000_000]
        );
    }

    #[test]
    fn empty_schedule() {
        let s = Schedule::Burst { count: 0 };
        assert_eq!(s.span_us(), 0);
        assert_eq!(s.offsets_us().count(), 0);
    }
}
