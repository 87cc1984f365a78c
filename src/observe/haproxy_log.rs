//! HAProxy's own session log, read independently of the clients: every TCP session it
//! proxied, with how it ended. A session whose termination state starts with `c` or `s`
//! was cut by HAProxy's `timeout client` / `timeout server` (e.g. `cD`: client-side
//! timeout during the data phase) — the connections an idle timeout killed, whatever the
//! client library made of it.
//!
//! The generated config logs with `log stdout format iso local0 info` and `option tcplog`
//! (see [`crate::stack::haproxy`]), so each ended session is one line:
//!
//! ```text
//! 2026-12-03T15:46:52.611212+00:00 127.0.0.1:59734 [03/Dec/2026:15:46:51.103] backend backend_nodes/redis0 1/0/1508 33 cD 1/1/0/0/0 0/0
//! ```
//!
//! that is: log time (the session's end, µs), client address, accept date, frontend,
//! backend/server, `Tw/Tc/Tt` (queue, connect, total ms), bytes sent to the client,
//! termination state, connection counts, queue positions. Lines that are not session
//! lines (server state changes, notices) are skipped.

use crate::event::ProxySession;
use std::path::Path;

/// Parses one log line; `None` for anything that is not a `tcplog` session line.
pub fn parse_line(line: &str) -> Option<ProxySession> {
    let t: Vec<&str> = line.split_whitespace().collect();
    let logged = chrono::DateTime::parse_from_rfc3339(t.first()?).ok()?;
    // The accept date `[03/Dec/2026:15:46:51.103]` anchors the fields (a syslog header
    // with host and process may come before the client address).
    let i = t
        .iter()
        .position(|s| s.starts_with('[') && s.ends_with(']') && s.contains('/'))?;
    let client = *t.get(i.checked_sub(1)?)?;
    if i < 2 || !client.contains(':') {
        return None;
    }
    let frontend = t.get(i + 1)?;
    let (backend, server) = t.get(i + 2)?.split_once('/')?;
    let timers: Vec<&str> = t.get(i + 3)?.split('/').collect();
    if timers.len() != 3 {
        return None;
    }
    let duration_ms: u64 = timers[2].trim_start_matches('+').parse().ok()?;
    let bytes_to_client: u64 = t.get(i + 4)?.trim_start_matches('+').parse().ok()?;
    let termination = t.get(i + 5)?;
    if termination.chars().count() != 2 {
        return None;
    }
    Some(ProxySession {
        end_unix_us: logged.timestamp_micros(),
        client: client.to_string(),
        frontend: frontend.to_string(),
        backend: backend.to_string(),
        server: server.to_string(),
        duration_ms,
        bytes_to_client,
        termination: termination.to_string(),
    })
}

/// Every session line of a log, in file order.
pub fn parse_log(text: &str) -> Vec<ProxySession> {
    text.lines().filter_map(parse_line).collect()
}

/// Every session in the HAProxy logs of a run's `logs/` directory (`haproxy.log` and
/// `haproxy.restart-<n>.log`), ordered by end time. Missing files give nothing.
pub fn read_sessions(logs: &Path) -> Vec<ProxySession> {
    let mut paths: Vec<_> = std::fs::read_dir(logs)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("haproxy") && n.ends_with(".log"))
                })
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    let mut sessions: Vec<ProxySession> = paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| parse_log(&text))
        .collect();
    sessions.sort_by_key(|s| s.end_unix_us);
    sessions
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::TimeoutSide;

    /// Lines captured from HAProxy 2.6.12 (`log stdout format iso`, `option tcplog`): a
    /// Redis subscriber idle past `timeout client 1500ms`, one kept busy by messages, an
    /// AMQP connection with heartbeat 0 cut at 5 s (hab's idle-hb0-t5s topology), the
    /// producer's AMQP session closed by the server at the end of a run, and lines that
    /// are not sessions.
    pub(crate) const CAPTURED: &str = "\
2026-12-03T15:46:52.611212+00:00 127.0.0.1:59734 [03/Dec/2026:15:46:51.103] backend backend_nodes/redis0 1/0/1508 33 cD 1/1/0/0/0 0/0
2026-12-03T15:47:01.695989+00:00 127.0.0.1:59738 [03/Dec/2026:15:46:57.207] backend backend_nodes/redis0 1/0/4488 243 -- 1/1/0/0/0 0/0
2026-12-03T15:56:07.371475+00:00 127.0.0.1:57552 [03/Dec/2026:15:56:02.225] broker broker_nodes/rabbit0 1/0/5145 14578 cD 3/2/1/1/0 0/0
2026-12-03T15:58:53.046523+00:00 127.0.0.1:38522 [03/Dec/2026:15:58:21.104] broker broker_nodes/rabbit0 1/0/31943 1401 SD 4/2/1/1/0 0/0
=== hab: starting haproxy: haproxy -db -f /tmp/logs/haproxy.cfg at 2026-12-03T15:58:20.845Z ===
2026-12-03T15:47:03.000001+00:00 Server broker_nodes/rabbit0 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: 0ms. 0 active and 0 backup servers left. 1 sessions active, 0 requeued, 0 remaining in queue.
[NOTICE]   (12345) : haproxy version is 2.6.12-1+deb12u1
";

    #[test]
    fn captured_session_lines_are_parsed_and_timeouts_recognised() {
        let s = parse_log(CAPTURED);
        assert_eq!(s.len(), 4, "{s:?}");
        assert_eq!(
            s[0],
            ProxySession {
                end_unix_us: 1_796_312_812_611_212,
                client: "127.0.0.1:59734".into(),
                frontend: "backend".into(),
                backend: "backend_nodes".into(),
                server: "redis0".into(),
                duration_ms: 1508,
                bytes_to_client: 33,
                termination: "cD".into(),
            }
        );
        assert_eq!(s[0].cut_by_timeout(), Some(TimeoutSide::Client));
        assert_eq!(s[0].start_unix_us(), 1_796_312_811_103_212);
        assert_eq!(s[1].termination, "--");
        assert_eq!(s[1].cut_by_timeout(), None);
        assert_eq!(s[1].duration_ms, 4488);
        assert_eq!(
            (
                s[2].frontend.as_str(),
                s[2].server.as_str(),
                s[2].duration_ms
            ),
            ("broker", "rabbit0", 5145)
        );
        assert_eq!(s[2].cut_by_timeout(), Some(TimeoutSide::Client));
        assert_eq!(s[3].termination, "SD");
        assert_eq!(s[3].cut_by_timeout(), None);
    }

    #[test]
    fn other_termination_states_and_syslog_headers() {
        let line = "2026-12-03T15:50:00.000000+00:00 localhost haproxy[77]: 127.0.0.1:40000 [03/Dec/2026:15:49:55.000] broker broker_nodes/rabbit0 0/0/+5000 +1200 sD 2/1/1/1/0 0/0";
        let s = parse_line(line).unwrap();
        assert_eq!(
            (s.frontend.as_str(), s.server.as_str()),
            ("broker", "rabbit0")
        );
        assert_eq!((s.duration_ms, s.bytes_to_client), (5000, 1200));
        assert_eq!(s.cut_by_timeout(), Some(TimeoutSide::Server));
        for state in ["SD", "CD", "KD", "--", "D-"] {
            let l = line.replace(" sD ", &format!(" {state} "));
            assert_eq!(parse_line(&l).unwrap().cut_by_timeout(), None, "{state}");
        }
        for bad in [
            "",
            "garbage",
            "2026-12-03T15:50:00.000000+00:00 127.0.0.1:1 [x/y] broker",
            "not-a-time 127.0.0.1:1 [03/Dec/2026:15:49:55.000] broker b/s 0/0/1 1 cD 1/1/1/1/0 0/0",
            "2026-12-03T15:50:00.000000+00:00 127.0.0.1:1 [03/Dec/2026:15:49:55.000] broker b/s 0/1 1 cD",
        ] {
            assert_eq!(parse_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sessions_of_every_log_file_are_read_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<&str> = CAPTURED.lines().collect();
        std::fs::write(dir.path().join("haproxy.restart-1.log"), lines[0]).unwrap();
        std::fs::write(dir.path().join("haproxy.log"), lines[1]).unwrap();
        std::fs::write(dir.path().join("redis-0.log"), lines[0]).unwrap();
        let s = read_sessions(dir.path());
        assert_eq!(s.len(), 2);
        assert!(s[0].end_unix_us < s[1].end_unix_us);
        assert!(read_sessions(&dir.path().join("missing")).is_empty());
    }
}
