//! Time stamps. Everything hab writes is in unix microseconds so producer, workers and
//! observers (separate processes on one machine) share one time line.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The current time in unix µs.
pub fn now_unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A monotonic clock expressed in unix µs: an `Instant` paired with the wall clock at one
/// moment. Intervals measured with it cannot go backwards when the wall clock is stepped.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    instant: Instant,
    unix_us: i64,
}

impl Anchor {
    /// Pair the monotonic clock with the wall clock now.
    pub fn now() -> Self {
        Anchor {
            instant: Instant::now(),
            unix_us: now_unix_us(),
        }
    }

    /// The unix µs time of an instant.
    pub fn unix_us(&self, at: Instant) -> i64 {
        if at >= self.instant {
            self.unix_us + at.duration_since(self.instant).as_micros() as i64
        } else {
            self.unix_us - self.instant.duration_since(at).as_micros() as i64
        }
    }

    /// The unix µs time now, from the monotonic clock.
    pub fn now_unix_us(&self) -> i64 {
        self.unix_us(Instant::now())
    }

    /// The instant at which the monotonic clock reads `unix_us`.
    pub fn instant_at(&self, unix_us: i64) -> Instant {
        let d = unix_us - self.unix_us;
        if d >= 0 {
            self.instant + std::time::Duration::from_micros(d as u64)
        } else {
            self.instant - std::time::Duration::from_micros((-d) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn anchor_round_trips_instants() {
        let a = Anchor::now();
        let later = Instant::now() + Duration::from_millis(1500);
        let us = a.unix_us(later);
        assert!(us - a.unix_us >= 1_500_000);
        let back = a.instant_at(us);
        let diff = if back > later {
            back - later
        } else {
            later - back
        };
        assert!(diff < Duration::from_micros(2));
    }
}
