//! What `pause_minority` did to a partitioned RabbitMQ node, read from that node's own
//! log after the fault (the node is cut off from its peers, not from its disk): when it
//! found itself in the minority and paused, and when it started its client listener
//! again after the heal. RabbitMQ 3.10 logs, with µs timestamps:
//!
//! ```text
//! 2026-12-04 18:50:39.534508+00:00 [warning] <0.555.0> Cluster minority/secondary status detected - awaiting recovery
//! 2026-12-04 18:50:59.015565+00:00 [info] <0.1547.0> started TCP listener on 10.213.250.10:5672
//! ```
//!
//! (pausing stops the `rabbit` application, which closes the AMQP listener and every
//! client connection; the node keeps running and restarts the application by itself once
//! it sees a majority again).

use crate::event::{ServerEvent, ServerEventKind};

/// The log line of a node that found itself in the minority and paused.
pub const PAUSED_MARKER: &str = "Cluster minority/secondary status detected";

/// The log line of a node whose client listener is open again.
pub const RESUMED_MARKER: &str = "started TCP listener on";

/// The time stamp at the start of a RabbitMQ log line
/// (`2026-12-04 18:50:39.534508+00:00 …`), unix µs.
pub fn line_time_unix_us(line: &str) -> Option<i64> {
    let mut words = line.split_whitespace();
    let stamp = format!("{} {}", words.next()?, words.next()?);
    chrono::DateTime::parse_from_str(&stamp, "%Y-%m-%d %H:%M:%S%.f%:z")
        .ok()
        .map(|t| t.timestamp_micros())
}

/// From a node's log, the first pause at or after `since_unix_us` and the first restart
/// of its listener after that pause, as [`ServerEventKind::BrokerPaused`] and
/// [`ServerEventKind::BrokerResumed`] events with the log's times; `detail` names the
/// node. Nothing when the node never paused.
pub fn pause_events(log: &str, since_unix_us: i64, detail: &str) -> Vec<ServerEvent> {
    let mut out = Vec::new();
    let mut paused = None;
    for line in log.lines() {
        let Some(at) = line_time_unix_us(line) else {
            continue;
        };
        if at < since_unix_us {
            continue;
        }
        match paused {
            None if line.contains(PAUSED_MARKER) => {
                paused = Some(at);
                out.push(ServerEvent {
                    at_unix_us: at,
                    kind: ServerEventKind::BrokerPaused,
                    detail: detail.to_string(),
                });
            }
            Some(_) if line.contains(RESUMED_MARKER) => {
                out.push(ServerEvent {
                    at_unix_us: at,
                    kind: ServerEventKind::BrokerResumed,
                    detail: detail.to_string(),
                });
                break;
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines of a 3.10.8 node partitioned at 18:50:28 and healed at 18:50:58 (captured,
    /// shortened), after its start-up.
    const LOG: &str = "\
2026-12-04 18:49:40.015565+00:00 [info] <0.700.0> started TCP listener on 10.213.250.10:5672
2026-12-04 18:50:39.528952+00:00 [info] <0.555.0> rabbit on node 'rabbit-1@10.213.250.11' down
2026-12-04 18:50:39.534462+00:00 [info] <0.555.0> node 'rabbit-1@10.213.250.11' down: net_tick_timeout
2026-12-04 18:50:39.534508+00:00 [warning] <0.555.0> Cluster minority/secondary status detected - awaiting recovery
  a continuation line without a time stamp
2026-12-04 18:50:39.539987+00:00 [warning] <0.555.0> Cluster minority/secondary status detected - awaiting recovery
2026-12-04 18:50:59.013031+00:00 [info] <0.1459.0> rabbit on node 'rabbit-1@10.213.250.11' up
2026-12-04 18:50:59.015565+00:00 [info] <0.1547.0> started TCP listener on 10.213.250.10:5672
2026-12-04 18:51:30.000000+00:00 [info] <0.1547.0> started TCP listener on 10.213.250.10:5672
";

    #[test]
    fn pause_and_resume_come_from_the_first_lines_after_the_fault() {
        let fault = line_time_unix_us("2026-12-04 18:50:28.000000+00:00").unwrap();
        let ev = pause_events(LOG, fault, "broker.node[0]");
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[0].kind, ServerEventKind::BrokerPaused);
        assert_eq!(ev[0].at_unix_us - fault, 11_534_508);
        assert_eq!(ev[1].kind, ServerEventKind::BrokerResumed);
        assert_eq!(ev[1].at_unix_us - fault, 31_015_565);
        assert_eq!(ev[1].detail, "broker.node[0]");
        // The listener started at boot, before the fault, is not a resume; without a
        // pause after the fault there is nothing.
        let later = line_time_unix_us("2026-12-04 18:51:00.000000+00:00").unwrap();
        assert_eq!(pause_events(LOG, later, "n"), vec![]);
        assert_eq!(pause_events("", fault, "n"), vec![]);
    }

    #[test]
    fn time_stamps_parse_with_their_offset() {
        assert_eq!(
            line_time_unix_us("1970-01-01 00:00:01.000002+00:00 [info] x"),
            Some(1_000_002)
        );
        assert_eq!(
            line_time_unix_us("1970-01-01 01:00:01.5+01:00 [info] x"),
            Some(1_500_000)
        );
        assert_eq!(line_time_unix_us("  a continuation"), None);
        assert_eq!(line_time_unix_us(""), None);
    }
}
