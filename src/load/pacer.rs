//! Waking the generator at a task's intended start with microsecond precision.
//!
//! tokio's timer wheel has millisecond ticks and rounds every deadline up to the next one,
//! so a rate schedule paced with `tokio::time::sleep_until` publishes each task 0–1 ms
//! late by construction (at 2,000 tasks/s the schedule lag's median was ~1 ms). A
//! `timerfd` on `CLOCK_MONOTONIC` (the clock `std::time::Instant` reads on Linux) fires
//! at the nanosecond deadline the kernel's high-resolution timers allow, and is awaited
//! through tokio's reactor like a socket: no thread, no spinning.

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A one-shot, re-armable precise timer. Deadlines already passed fire at once.
pub struct Pacer {
    fd: AsyncFd<Fd>,
    armed: Option<Instant>,
}

impl Pacer {
    /// A new timer (needs a tokio runtime with I/O enabled).
    pub fn new() -> io::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        // SAFETY: `Fd` owns the timerfd and always returns that same open descriptor; it
        // is closed only when the `AsyncFd` (its only owner) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(fd), tokio::io::Interest::READABLE) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Pacer { fd, armed: None })
    }

    /// Set the deadline (replacing any earlier one).
    pub fn arm(&mut self, deadline: Instant) -> io::Result<()> {
        self.armed = Some(deadline);
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        // Relative to now: Instant's epoch is not exposed, and the few hundred
        // nanoseconds between the subtraction and the syscall are far below what matters.
        self.fd
            .get_ref()
            .0
            .set(
                Expiration::OneShot(TimeSpec::from_duration(left)),
                TimerSetTimeFlags::empty(),
            )
            .map_err(io::Error::from)
    }

    /// Wait until the armed deadline; returns at once if none is armed or it passed.
    /// Cancel-safe: dropping the future and calling again keeps the same deadline.
    pub async fn fired(&mut self) -> io::Result<()> {
        let Some(deadline) = self.armed else {
            return Ok(());
        };
        loop {
            if Instant::now() >= deadline {
                self.armed = None;
                // Consume a pending expiration so the next arm starts clean.
                let _ = self.fd.get_ref().0.wait();
                return Ok(());
            }
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
    }

    /// Sleep until `deadline`.
    pub async fn sleep_until(&mut self, deadline: Instant) -> io::Result<()> {
        self.arm(deadline)?;
        self.fired().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn fires_at_the_deadline_not_before() {
        let mut p = Pacer::new().unwrap();
        for us in [150u64, 700, 1_300, 2_050] {
            let deadline = Instant::now() + Duration::from_micros(us);
            p.sleep_until(deadline).await.unwrap();
            assert!(
                Instant::now() >= deadline,
                "woke before the deadline ({us} µs)"
            );
        }
    }

    #[tokio::test]
    async fn a_past_deadline_fires_at_once_and_rearming_replaces_the_deadline() {
        let mut p = Pacer::new().unwrap();
        let past = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        p.sleep_until(past).await.unwrap();
        // Armed far away, then re-armed close: the close one counts.
        p.arm(Instant::now() + Duration::from_secs(3600)).unwrap();
        let soon = Instant::now() + Duration::from_millis(1);
        p.arm(soon).unwrap();
        tokio::time::timeout(Duration::from_secs(10), p.fired())
            .await
            .expect("re-armed timer fired")
            .unwrap();
        assert!(Instant::now() >= soon);
        // Nothing armed: returns at once.
        tokio::time::timeout(Duration::from_secs(10), p.fired())
            .await
            .expect("unarmed timer returns")
            .unwrap();
    }
}
