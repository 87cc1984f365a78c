//! Readiness: polling a probe until it succeeds, bounded by a deadline; for one process
//! ([`wait_ready`], which also notices the process exiting) or several ([`poll_until`]).

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use super::{ManagedProcess, reap_orphans};
use crate::stack::StackError;

/// Polls `probe` every `interval` (clamped to 25–250 ms) until it succeeds, for at most
/// `deadline`, and returns its value.
///
/// Fails with [`StackError::Exited`] as soon as the process exits, and with
/// [`StackError::NotReady`] when the deadline passes; both carry the last 20 log lines.
/// Each probe is itself bounded by the time left.
pub async fn wait_ready<T, E, F, Fut>(
    process: &mut ManagedProcess,
    deadline: Duration,
    interval: Duration,
    mut probe: F,
) -> Result<T, StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let interval = interval.clamp(Duration::from_millis(25), Duration::from_millis(250));
    let started = Instant::now();
    let mut last_error = String::from(NO_PROBE_FINISHED);
    loop {
        if let Some(status) = process.exit_description() {
            return Err(exited(process, status));
        }
        let remaining = deadline.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Err(StackError::NotReady {
                service: process.name().to_string(),
                waited: started.elapsed(),
                last_error,
                log_tail: process.log_tail(20),
            });
        }
        match tokio::time::timeout(remaining, probe()).await {
            Ok(Ok(value)) => {
                // Something answered; make sure it was our process and not a squatter.
                if let Some(status) = process.exit_description() {
                    return Err(exited(process, status));
                }
                // Start-up helpers that already exited (RabbitMQ's epmd starter VM) are
                // zombies of hab now; do not keep them until teardown.
                reap_orphans();
                process.refresh_tree();
                return Ok(value);
            }
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = cut_by_deadline(&last_error),
        }
        let remaining = deadline.saturating_sub(started.elapsed());
        tokio::time::sleep(interval.min(remaining)).await;
    }
}

/// The last failure once a probe was cut by the deadline: the failure of the last probe
/// that finished (it says why, the cut one cannot), with the cut noted.
fn cut_by_deadline(last_error: &str) -> String {
    const CUT: &str = "probe did not finish before the deadline";
    if last_error == NO_PROBE_FINISHED || last_error == CUT {
        CUT.to_string()
    } else if last_error.ends_with(CUT_NOTE) {
        last_error.to_string()
    } else {
        format!("{last_error}{CUT_NOTE}")
    }
}

/// What a failed wait says before any probe finished.
const NO_PROBE_FINISHED: &str = "no probe finished";
/// Appended to the last failure when the next probe was cut by the deadline.
const CUT_NOTE: &str = " (the next probe did not finish before the deadline)";

/// Polls `probe` every `interval` until it succeeds, for at most `deadline`, and returns
/// its value; on timeout returns how long it waited and the last failure. For readiness
/// that belongs to several processes at once (a cluster, a replica set).
pub async fn poll_until<T, E, F, Fut>(
    deadline: Duration,
    interval: Duration,
    mut probe: F,
) -> Result<T, (Duration, String)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    let started = Instant::now();
    let mut last_error = String::from(NO_PROBE_FINISHED);
    loop {
        let remaining = deadline.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Err((started.elapsed(), last_error));
        }
        match tokio::time::timeout(remaining, probe()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = cut_by_deadline(&last_error),
        }
        let remaining = deadline.saturating_sub(started.elapsed());
        tokio::time::sleep(interval.min(remaining)).await;
    }
}

/// [`poll_until`] for the readiness of `service`: its timeout is [`StackError::NotReady`]
/// with the last failure and `log_tail()` (called only then).
pub async fn poll_ready<T, E, F, Fut>(
    service: &str,
    deadline: Duration,
    interval: Duration,
    probe: F,
    log_tail: impl FnOnce() -> String,
) -> Result<T, StackError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display,
{
    poll_until(deadline, interval, probe)
        .await
        .map_err(|(waited, last_error)| StackError::NotReady {
            service: service.to_string(),
            waited,
            last_error,
            log_tail: log_tail(),
        })
}

/// The error of a process that exited while it was awaited.
fn exited(process: &ManagedProcess, status: String) -> StackError {
    StackError::Exited {
        service: process.name().to_string(),
        status,
        log_tail: process.log_tail(20),
    }
}
