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

/// A value and the moment it became ready, unix µs.
pub type Stamped<T> = (T, i64);

/// Wait for `fut` and stamp the moment it resolved (e.g. a publisher confirm), however
/// late the caller gets round to awaiting the returned future: `fut` runs as a task of its
/// own (spawned at once, so this must be called inside a tokio runtime), stamped where it
/// resolves; dropping the returned future aborts it.
pub fn on_arrival<F>(fut: F) -> impl std::future::Future<Output = Stamped<F::Output>> + Send
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
        let v = fut.await;
        (v, now_unix_us())
    }));
    async move {
        match task.await {
            Ok(stamped) => stamped,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Only the runtime shutting down cancels it, and that drops this future too.
                Err(e) => panic!("the arrival wait was cancelled: {e}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A producer busy publishing a burst awaits its confirms only between publishes: a
    /// confirm that arrived meanwhile must carry its arrival time, not the poll's.
    #[tokio::test(flavor = "current_thread")]
    async fn a_value_is_stamped_when_it_arrives_not_when_it_is_awaited() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let stamped = on_arrival(rx);
        let sent = now_unix_us();
        tx.send(7).unwrap();
        // The producer's next publishes: it yields to the runtime at each await …
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        // … and works in between without polling its confirms.
        std::thread::sleep(Duration::from_millis(2));
        let polled = now_unix_us();
        let (v, at) = stamped.await;
        assert_eq!(v.unwrap(), 7);
        assert!(
            sent <= at && at < polled,
            "stamped at {at}: sent at {sent}, awaited at {polled} (stamped when awaited, not on arrival)"
        );
    }

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
