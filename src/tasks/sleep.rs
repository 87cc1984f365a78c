//! `hab.sleep(seconds)`: an I/O-bound task that holds a worker slot without using CPU.

use std::time::Duration;

/// Registered task name.
pub const NAME: &str = "hab.sleep";

/// The sleep length for `seconds`, or Python's `ValueError` message when it is negative,
/// not finite or too large.
pub fn duration(seconds: f64) -> Result<Duration, String> {
    if seconds.is_nan() {
        return Err("Invalid value NaN (not a number)".to_owned());
    }
    if seconds < 0.0 {
        return Err("sleep length must be non-negative".to_owned());
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| "sleep length is too large".to_owned())
}

/// The task body: sleeps on the timer wheel, like Python's `time.sleep` (returns `None`).
pub async fn run(duration: Duration) {
    tokio::time::sleep(duration).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0.25), Ok(Duration::from_millis(250)));
        assert_eq!(duration(0.0), Ok(Duration::ZERO));
        assert!(duration(-1.0).is_err());
        assert!(duration(f64::NAN).is_err());
        assert!(duration(f64::INFINITY).is_err());
        assert!(duration(1e300).is_err());
    }
}
