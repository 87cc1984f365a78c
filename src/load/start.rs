//! Shards that start together (`hab run --shard I/N --start-at TIME`): one instant every
//! shard waits for before its first workload, and the names of the barriers the shards
//! meet at before each later workload (kept on the shared stack's Redis, nothing added).
//!
//! Pure: parsing, the instant's arithmetic and the barrier's key names; the waiting is
//! `hab run`'s. The instant is a wall-clock time: shards on one host read one clock,
//! shards on several hosts rely on their clocks agreeing (NTP).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use super::shard::Shard;

/// The instant the shards of one run start their first workload, unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StartAt {
    /// The instant, unix ms.
    pub unix_ms: i64,
}

/// Why a `--start-at` or `--start-in` value is not an instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad {flag} {given:?}: {why}; give {form}")]
pub struct StartParseError {
    /// The flag, `--start-at` or `--start-in`.
    pub flag: &'static str,
    /// The text given.
    pub given: String,
    /// What is wrong with it.
    pub why: String,
    /// The allowed form, with an example.
    pub form: &'static str,
}

const AT_FORM: &str = "an RFC 3339 time with its offset, e.g. 2026-12-07T18:00:00Z";
const IN_FORM: &str = "a duration longer than 0, e.g. 30s or 2m";

impl StartAt {
    /// Parse `--start-at`: an RFC 3339 time with an offset (`Z` or `+01:00`), to the ms.
    pub fn parse_rfc3339(s: &str) -> Result<Self, StartParseError> {
        let t = DateTime::parse_from_rfc3339(s.trim()).map_err(|e| StartParseError {
            flag: "--start-at",
            given: s.to_string(),
            why: e.to_string(),
            form: AT_FORM,
        })?;
        Ok(StartAt {
            unix_ms: t.timestamp_millis(),
        })
    }

    /// Parse `--start-in` (a humantime duration) into the instant it names from
    /// `now_unix_ms`, rounded up to the next whole second: shards launched together (one
    /// script, within a few ms) then name the same instant, hence the same barriers,
    /// unless their launches straddle a second boundary — give shards launched apart one
    /// `--start-at`.
    pub fn parse_in(s: &str, now_unix_ms: i64) -> Result<Self, StartParseError> {
        let err = |why: String| StartParseError {
            flag: "--start-in",
            given: s.to_string(),
            why,
            form: IN_FORM,
        };
        let d = humantime::parse_duration(s.trim()).map_err(|e| err(e.to_string()))?;
        if d.is_zero() {
            return Err(err("must be longer than 0".into()));
        }
        let at = now_unix_ms.saturating_add(d.as_millis().min(i64::MAX as u128) as i64);
        Ok(StartAt {
            unix_ms: (at.saturating_add(999))
                .div_euclid(1000)
                .saturating_mul(1000),
        })
    }

    /// How long from `now_unix_ms` until the instant; `Err(late)` when it has passed
    /// (`late` is how long ago).
    pub fn wait_from(&self, now_unix_us: i64) -> Result<Duration, Duration> {
        let d = self.unix_ms * 1000 - now_unix_us;
        if d >= 0 {
            Ok(Duration::from_micros(d as u64))
        } else {
            Err(Duration::from_micros(d.unsigned_abs()))
        }
    }

    /// The prefix of every barrier key of the run the shards share: the instant, the
    /// shard count and the plan's name, so reruns (another instant) and other plans on one
    /// stack never meet at each other's barriers.
    pub fn run_key(&self, plan: &str, shard: Shard) -> String {
        let plan: String = plan
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("hab:barrier:{}:{}:{}", self.unix_ms, shard.count, plan)
    }
}

impl fmt::Display for StartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::<Utc>::from_timestamp_millis(self.unix_ms) {
            Some(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => write!(f, "unix ms {}", self.unix_ms),
        }
    }
}

/// The keys of one barrier (before workload `workload`, repetition `repetition`): a
/// counter each arriving shard increments, and a list the shard that makes it N fills
/// with one token per waiting shard (they block on it: BLPOP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarrierKeys {
    /// The arrivals counter.
    pub count: String,
    /// The release list.
    pub go: String,
}

impl BarrierKeys {
    /// The keys of the barrier before `workload` (0-based index in the plan) and
    /// `repetition` (from 1) of the run `run_key` names.
    pub fn new(run_key: &str, workload: usize, repetition: u32) -> Self {
        let base = format!("{run_key}:w{workload}:r{repetition}");
        BarrierKeys {
            count: format!("{base}:count"),
            go: format!("{base}:go"),
        }
    }
}

/// The residual start skew of one set of instants (one per shard): latest − earliest,
/// with the shards that were first and last; `None` for fewer than two.
pub fn skew_us(starts: &[(u32, i64)]) -> Option<(i64, u32, u32)> {
    if starts.len() < 2 {
        return None;
    }
    let first = starts.iter().min_by_key(|(i, t)| (*t, *i))?;
    let last = starts.iter().max_by_key(|(i, t)| (*t, *i))?;
    Some((last.1 - first.1, first.0, last.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_with_an_offset_to_the_ms() {
        let a = StartAt::parse_rfc3339("2026-12-07T18:00:00Z").unwrap();
        assert_eq!(a.unix_ms, 1_796_666_400_000);
        assert_eq!(a.to_string(), "2026-12-07T18:00:00.000Z");
        let b = StartAt::parse_rfc3339("2026-12-07T19:00:00.250+01:00").unwrap();
        assert_eq!(b.unix_ms, a.unix_ms + 250);
        for bad in [
            "2026-12-07 18:00",
            "2026-12-07T18:00:00",
            "tomorrow",
            "",
            "30s",
        ] {
            let e = StartAt::parse_rfc3339(bad).unwrap_err().to_string();
            assert!(e.starts_with("bad --start-at"), "{bad}: {e}");
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
            assert!(e.contains("2026-12-07T18:00:00Z"), "{bad}: {e}");
        }
    }

    #[test]
    fn start_in_rounds_up_to_the_next_whole_second() {
        let now = 1_796_666_400_123;
        assert_eq!(
            StartAt::parse_in("30s", now).unwrap().unix_ms,
            1_796_666_431_000
        );
        // Already whole: unchanged.
        assert_eq!(
            StartAt::parse_in("877ms", now).unwrap().unix_ms,
            1_796_666_401_000
        );
        for bad in ["0s", "-3s", "soon", "3"] {
            let e = StartAt::parse_in(bad, now).unwrap_err().to_string();
            assert!(e.starts_with("bad --start-in"), "{bad}: {e}");
            assert!(e.contains("e.g. 30s"), "{bad}: {e}");
        }
    }

    #[test]
    fn waits_until_the_instant_or_says_how_late() {
        let a = StartAt { unix_ms: 10_000 };
        assert_eq!(a.wait_from(9_000_000), Ok(Duration::from_secs(1)));
        assert_eq!(a.wait_from(10_000_000), Ok(Duration::ZERO));
        assert_eq!(a.wait_from(10_250_000), Err(Duration::from_millis(250)));
    }

    #[test]
    fn barrier_keys_name_the_instant_count_plan_workload_and_repetition() {
        let a = StartAt { unix_ms: 42 };
        let run = a.run_key("my plan", Shard { index: 2, count: 3 });
        assert_eq!(run, "hab:barrier:42:3:my_plan");
        // Every shard of the run names the same keys.
        assert_eq!(run, a.run_key("my plan", Shard { index: 1, count: 3 }));
        let k = BarrierKeys::new(&run, 1, 2);
        assert_eq!(k.count, "hab:barrier:42:3:my_plan:w1:r2:count");
        assert_eq!(k.go, "hab:barrier:42:3:my_plan:w1:r2:go");
        assert_ne!(
            run,
            StartAt { unix_ms: 43 }.run_key("my plan", Shard::WHOLE)
        );
    }

    #[test]
    fn skew_is_latest_minus_earliest() {
        assert_eq!(skew_us(&[]), None);
        assert_eq!(skew_us(&[(1, 5)]), None);
        assert_eq!(skew_us(&[(1, 1_000), (2, 1_700)]), Some((700, 1, 2)));
        assert_eq!(
            skew_us(&[(1, 2_000), (2, 1_000), (3, 1_500)]),
            Some((1_000, 2, 1))
        );
        assert_eq!(skew_us(&[(1, 7), (2, 7)]), Some((0, 1, 2)));
    }
}
