//! Serde helper for durations written as human strings (`"500ms"`, `"10s"`, `"2m"`, `"1day"`).
//!
//! Wraps `humantime` so that a bad value says what a duration looks like; toml adds the
//! line, column and a snippet naming the key.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// What every duration error ends with, so the fix is in the message.
pub(crate) const DURATION_HINT: &str =
    r#"durations look like "500ms", "10s", "2m", "1h" or "1day"; "0s" is zero"#;

/// Writes a duration the way it is read back, e.g. `"1m 30s"`.
pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// Reads a duration string; any other type or an unparsable string is an error with a hint.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_str(DurationVisitor)
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a duration string ({DURATION_HINT})")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        humantime::parse_duration(v.trim()).map_err(|e| {
            let why = match e {
                // humantime's own text lists every unit spelling; the hint is enough.
                humantime::DurationError::UnknownUnit { unit, .. } if !unit.is_empty() => {
                    format!("unknown unit \"{unit}\"")
                }
                other => other.to_string(),
            };
            E::custom(format_args!(
                "invalid duration \"{v}\" ({why}); {DURATION_HINT}"
            ))
        })
    }
}

/// The same for an optional duration (`#[serde(default, with = "...::option")]`).
pub(crate) mod option {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Writes `Some` as a duration string and `None` as nothing.
    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Reads a present value as a duration string.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}
