//! Time stamps: one clock per host.
//!
//! Every time stamp hab takes is the system-wide monotonic clock (`CLOCK_MONOTONIC`: what
//! `Instant` reads, and Python's `time.monotonic_ns()`, on Linux) written as unix µs
//! through one wall-clock anchor per process: `unix_us = anchor.unix_us + (monotonic −
//! anchor.mono_us)`. Two stamps taken on one host are therefore a monotonic interval,
//! whichever processes took them — untouched by wall-clock steps or NTP slewing — as long
//! as the processes share the anchor: `hab run` hands its own to every worker it starts
//! (hab's and Celery's) in [`ANCHOR_ENV`]; a process started any other way (or on another
//! boot of the host) anchors itself when it first reads the clock. Files keep their
//! `*_unix_us` columns (anchor + monotonic offset, so tasks.csv and `hab merge` read them
//! as before), and run.json records every process's anchor (`clock`), so a reader can
//! tell which stamps share a time line. Across hosts (shards, an external stack's own
//! processes) the anchors are each host's wall clock: only there does NTP matter.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The environment variable through which a process hands its anchor to the processes it
/// starts: `<unix_us>:<mono_us>:<boot_id>`.
pub const ANCHOR_ENV: &str = "HAB_CLOCK_ANCHOR";

/// The wall clock now, unix µs (only for anchors and for comparing with other clocks).
pub fn wall_unix_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The system-wide monotonic clock (`CLOCK_MONOTONIC`), µs since an unspecified start
/// (the boot): comparable between processes of one boot of one host.
pub fn monotonic_us() -> i64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .expect("CLOCK_MONOTONIC is always available on Linux");
    t.tv_sec() * 1_000_000 + t.tv_nsec() / 1_000
}

/// The kernel's id of the current boot (`/proc/sys/kernel/random/boot_id`): monotonic
/// stamps are comparable only between processes with the same one. Empty when unknown.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// One process's pairing of the wall clock with the monotonic clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockAnchor {
    /// The wall clock at the anchor, unix µs.
    pub unix_us: i64,
    /// The monotonic clock at the same moment, µs.
    pub mono_us: i64,
    /// The boot the monotonic clock belongs to (empty when unknown).
    pub boot_id: String,
    /// Whether the process took it from its parent ([`ANCHOR_ENV`]) rather than reading
    /// the wall clock itself.
    pub inherited: bool,
}

impl ClockAnchor {
    /// Anchor on the wall clock now.
    pub fn take() -> Self {
        let mono_us = monotonic_us();
        ClockAnchor {
            unix_us: wall_unix_us(),
            mono_us,
            boot_id: boot_id(),
            inherited: false,
        }
    }

    /// The anchor handed down in [`ANCHOR_ENV`], if it is valid on this boot.
    pub fn from_env_value(value: &str, current_boot: &str) -> Option<Self> {
        let mut parts = value.trim().splitn(3, ':');
        let unix_us = parts.next()?.parse().ok()?;
        let mono_us = parts.next()?.parse().ok()?;
        let boot_id = parts.next()?.to_string();
        (!boot_id.is_empty() && boot_id == current_boot).then_some(ClockAnchor {
            unix_us,
            mono_us,
            boot_id,
            inherited: true,
        })
    }

    /// The value of [`ANCHOR_ENV`] for a child process.
    pub fn env_value(&self) -> String {
        format!("{}:{}:{}", self.unix_us, self.mono_us, self.boot_id)
    }

    /// The unix µs time of a monotonic reading.
    pub fn unix_us_at(&self, mono_us: i64) -> i64 {
        self.unix_us + (mono_us - self.mono_us)
    }

    /// Whether stamps taken with `other` lie on the same time line as this anchor's: the
    /// same boot and the same offset between the wall and the monotonic clock.
    pub fn same_time_line(&self, other: &ClockAnchor) -> bool {
        !self.boot_id.is_empty()
            && self.boot_id == other.boot_id
            && self.unix_us - self.mono_us == other.unix_us - other.mono_us
    }
}

/// This process's anchor, taken (or inherited) when the clock is first read.
pub fn anchor() -> &'static ClockAnchor {
    static ANCHOR: OnceLock<ClockAnchor> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        std::env::var(ANCHOR_ENV)
            .ok()
            .and_then(|v| ClockAnchor::from_env_value(&v, &boot_id()))
            .unwrap_or_else(ClockAnchor::take)
    })
}

/// The current time in unix µs: the monotonic clock through this process's anchor.
pub fn now_unix_us() -> i64 {
    let a = anchor();
    a.unix_us_at(monotonic_us())
}

/// The wall clock minus hab's clock now, µs: how far the wall clock has moved from the
/// anchored monotonic clock since the anchor (NTP slewing or steps) — the error of a
/// time stamp read from another program's log (wall clock) against hab's.
pub fn wall_minus_clock_us() -> i64 {
    let hab = now_unix_us();
    wall_unix_us() - hab
}

/// hab's clock as `Instant`s (the pacer's timers): an `Instant` paired with
/// [`now_unix_us`] at one moment. On Linux `Instant` reads the same `CLOCK_MONOTONIC`, so
/// its stamps lie on the process's time line and cannot go backwards when the wall clock
/// is stepped.
#[derive(Debug, Clone, Copy)]
pub struct Anchor {
    instant: Instant,
    unix_us: i64,
}

impl Anchor {
    /// Pair an `Instant` (the same monotonic clock) with hab's clock now.
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

/// A worker process's anchor, as its side channel reports it (run.json `clock.workers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessClock {
    /// The worker's name.
    pub worker: String,
    /// Its process id.
    pub pid: u32,
    /// Its anchor.
    pub anchor: ClockAnchor,
    /// Whether its stamps lie on the run's time line (see [`ClockAnchor::same_time_line`]).
    pub same_time_line: bool,
}

/// The detail of a side channel's `clock` line: `pid=<pid> unix_us=<µs> mono_us=<µs>
/// boot_id=<id> inherited=<0|1>`.
pub fn side_channel_detail(pid: u32, a: &ClockAnchor) -> String {
    format!(
        "pid={pid} unix_us={} mono_us={} boot_id={} inherited={}",
        a.unix_us,
        a.mono_us,
        a.boot_id,
        u8::from(a.inherited)
    )
}

/// Parse [`side_channel_detail`]: the process id and its anchor.
pub fn parse_side_channel_detail(detail: &str) -> Option<(u32, ClockAnchor)> {
    let mut pid = None;
    let (mut unix_us, mut mono_us, mut boot, mut inherited) = (None, None, String::new(), false);
    for field in detail.split_whitespace() {
        match field.split_once('=')? {
            ("pid", v) => pid = v.parse().ok(),
            ("unix_us", v) => unix_us = v.parse().ok(),
            ("mono_us", v) => mono_us = v.parse().ok(),
            ("boot_id", v) => boot = v.to_string(),
            ("inherited", v) => inherited = v == "1",
            _ => {}
        }
    }
    Some((
        pid?,
        ClockAnchor {
            unix_us: unix_us?,
            mono_us: mono_us?,
            boot_id: boot,
            inherited,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_anchor_handed_down_is_kept_only_on_the_same_boot() {
        let a = ClockAnchor {
            unix_us: 1_700_000_000_000_000,
            mono_us: 5_000_000,
            boot_id: "b1".into(),
            inherited: false,
        };
        let child = ClockAnchor::from_env_value(&a.env_value(), "b1").unwrap();
        assert!(child.inherited);
        assert!(a.same_time_line(&child));
        assert_eq!(child.unix_us_at(6_000_000), a.unix_us + 1_000_000);
        assert!(ClockAnchor::from_env_value(&a.env_value(), "b2").is_none());
        assert!(ClockAnchor::from_env_value("garbage", "b1").is_none());
        // Anchored later, after the wall clock moved by 3 ms against the monotonic one.
        let later = ClockAnchor {
            unix_us: a.unix_us + 10_003_000,
            mono_us: a.mono_us + 10_000_000,
            ..a.clone()
        };
        assert!(!a.same_time_line(&later));
    }

    #[test]
    fn the_side_channel_detail_round_trips() {
        let a = ClockAnchor::take();
        let d = side_channel_detail(42, &a);
        assert!(!d.contains(','));
        assert_eq!(parse_side_channel_detail(&d), Some((42, a)));
        assert_eq!(parse_side_channel_detail("pid=1"), None);
    }

    #[test]
    fn hab_time_is_the_monotonic_clock_through_the_anchor() {
        let a = anchor();
        let mono = monotonic_us();
        let now = now_unix_us();
        let mono_after = monotonic_us();
        assert!(a.unix_us_at(mono) <= now && now <= a.unix_us_at(mono_after));
    }

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
