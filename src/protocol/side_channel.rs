//! The side channel's line format: `event,unix_us,task_id,worker,detail`, one event per
//! line, `event` one of `start`, `finish_ok`, `finish_error`, `reject`, `disconnected`,
//! `connected`, `rediscovered`, `store_error`, `refused`, `clock` (a process's clock
//! anchor, written when it opens the file; files written before it have none and read
//! the same). `unix_us` is hab's clock ([`crate::clock`]). Workers append
//! one line per event with a single `write` (flushed per event), so a killed worker loses
//! nothing it reported.
//!
//! It is protocol between hab's worker (which writes it) and the run's ledger (which
//! reads it), so both sides import it from here.

use uuid::Uuid;

/// What kind of side-channel event a worker wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideEventKind {
    /// The worker started executing the task.
    Start,
    /// The worker finished executing the task.
    Finish {
        /// Whether the task returned normally.
        succeeded: bool,
    },
    /// The worker rejected the message without executing it.
    Reject,
    /// The worker lost its broker connection (detail: why).
    Disconnected,
    /// The worker connected to the broker again after losing it.
    Connected,
    /// Storing a result failed (detail: why); the worker retries, then requeues.
    StoreError,
    /// Client-side failover: the worker moved on to another broker node, or the
    /// Sentinels named a new Redis master (detail: which).
    Rediscovered,
    /// The worker settled the message without running it (detail: the rule, e.g.
    /// `factorial_limit`, `worker_lost`, `expired`): it stored a `FAILURE` (or `REVOKED`)
    /// result and acknowledged the message.
    Refused,
    /// The process writing the file from here on anchors its clock so (detail:
    /// [`crate::clock::side_channel_detail`]); written when a process opens the file.
    Clock,
}

/// One line of a worker's execution side channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideEvent {
    /// The event.
    pub kind: SideEventKind,
    /// When, unix µs on hab's clock ([`crate::clock`]; the wall clock in files written
    /// before a `clock` line existed).
    pub unix_us: i64,
    /// The task id (nil for a message without a usable id).
    pub task_id: Uuid,
    /// The worker that wrote it.
    pub worker: String,
    /// Free text: the task name on start, `ok`/`error` on finish, the reason on reject.
    pub detail: String,
}

/// The header line of a side-channel file.
pub const HEADER: &str = "event,unix_us,task_id,worker,detail";

/// One event as a line, newline included. Commas and newlines in free text are replaced.
pub fn format(ev: &SideEvent) -> String {
    let kind = match ev.kind {
        SideEventKind::Start => "start",
        SideEventKind::Finish { succeeded: true } => "finish_ok",
        SideEventKind::Finish { succeeded: false } => "finish_error",
        SideEventKind::Reject => "reject",
        SideEventKind::Disconnected => "disconnected",
        SideEventKind::Connected => "connected",
        SideEventKind::Rediscovered => "rediscovered",
        SideEventKind::StoreError => "store_error",
        SideEventKind::Refused => "refused",
        SideEventKind::Clock => "clock",
    };
    let clean = |s: &str| s.replace([',', '\n', '\r'], " ");
    format!(
        "{kind},{},{},{},{}\n",
        ev.unix_us,
        ev.task_id,
        clean(&ev.worker),
        clean(&ev.detail)
    )
}

/// Parse one line; `None` for the header, a torn last line, or garbage.
pub fn parse(line: &str) -> Option<SideEvent> {
    let mut parts = line.trim_end().splitn(5, ',');
    let kind = match parts.next()? {
        "start" => SideEventKind::Start,
        "finish_ok" => SideEventKind::Finish { succeeded: true },
        "finish_error" => SideEventKind::Finish { succeeded: false },
        "reject" => SideEventKind::Reject,
        "disconnected" => SideEventKind::Disconnected,
        "connected" => SideEventKind::Connected,
        "rediscovered" => SideEventKind::Rediscovered,
        "store_error" => SideEventKind::StoreError,
        "refused" => SideEventKind::Refused,
        "clock" => SideEventKind::Clock,
        _ => return None,
    };
    let unix_us = parts.next()?.parse().ok()?;
    let task_id = Uuid::parse_str(parts.next()?).ok()?;
    let worker = parts.next()?.to_string();
    let detail = parts.next()?.to_string();
    Some(SideEvent {
        kind,
        unix_us,
        task_id,
        worker,
        detail,
    })
}

/// Parse a file line by line without holding it (a million-task run writes two
/// million lines), skipping lines that do not parse and a last line without its
/// newline (torn by a crash mid-write, or still being written).
pub fn for_each_in_file(
    path: &std::path::Path,
    mut f: impl FnMut(SideEvent),
) -> std::io::Result<()> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let mut line = Vec::with_capacity(160);
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 || line.last() != Some(&b'\n') {
            return Ok(());
        }
        if let Some(ev) = std::str::from_utf8(&line).ok().and_then(parse) {
            f(ev);
        }
    }
}

/// Parse a whole file's text, skipping lines that do not parse and a last line without
/// its newline (torn by a crash mid-write, or still being written).
pub fn parse_all(text: &str) -> Vec<SideEvent> {
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete.lines().filter_map(parse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_channel_round_trip_and_torn_lines() {
        let ev = SideEvent {
            kind: SideEventKind::Finish { succeeded: false },
            unix_us: 1_764_000_000_000_000,
            task_id: Uuid::new_v4(),
            worker: "w1".into(),
            detail: "OSError, disk full\n".into(),
        };
        let line = format(&ev);
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let back = parse(&line).unwrap();
        assert_eq!(back.kind, ev.kind);
        assert_eq!(back.task_id, ev.task_id);
        assert_eq!(back.detail, "OSError  disk full");
        assert!(parse(HEADER).is_none());
        let text = format!("{}\n{line}{}", HEADER, &line[..20]);
        assert_eq!(parse_all(&text).len(), 1);
        // A last line cut anywhere, even where it would still parse, is not used.
        let torn = &line[..line.len() - 3];
        assert!(parse(torn).is_some());
        assert_eq!(parse_all(&format!("{line}{torn}")).len(), 1);
        // Streamed from a file: the same lines, the torn last one skipped.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w1.csv");
        std::fs::write(&path, format!("{}\n{line}{line}{torn}", HEADER)).unwrap();
        let mut seen = Vec::new();
        for_each_in_file(&path, |ev| seen.push(ev.task_id)).unwrap();
        assert_eq!(seen, vec![ev.task_id, ev.task_id]);
    }
}
