//! summary.csv (one row per topology × workload), tasks.csv (one row per task),
//! events.csv, failover.csv and timeline.csv; and the readers of tasks.csv and events.csv
//! beside their writers ([`read_tasks`], [`read_events`]), for `hab merge`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Deserialize;
use uuid::Uuid;

use super::{Exporter, RunData};
use crate::event::{ClientEvent, ClientEventKind};
use crate::ledger::{ConfirmState, Outcome, SeenVia, TaskRecord};
use crate::protocol::result::ResultStatus;

/// Writes summary.csv: one row per workload (its figures, merged over its repetitions
/// when it has `repeat = N`: `repetition` empty), then, for a repeated workload, one row
/// per repetition (`repetition` = 1..N). Readers after the workloads' figures keep the
/// rows whose `repetition` is empty.
pub struct SummaryCsv;

/// Column names of summary.csv; units are in the names.
pub const SUMMARY_HEADER: [&str; 29] = [
    "topology",
    "workload",
    "task",
    "count",
    "ok",
    "failed",
    "lost",
    "result_lost",
    "duplicated",
    "unconfirmed",
    "wall_s",
    "throughput_per_s",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "max_us",
    "mean_us",
    "refused",
    "gave_up",
    "unfinished_running",
    "unfinished_queued",
    "unknown",
    "seen_by_read",
    "revoked",
    "repetition",
    "repetitions",
    "throughput_min_per_s",
    "throughput_max_per_s",
];

/// One summary.csv row.
struct SummaryRow<'a> {
    topology: &'a str,
    name: &'a str,
    task: &'a str,
    counts: &'a crate::ledger::OutcomeCounts,
    wall_s: f64,
    throughput_per_s: f64,
    latency: crate::metrics::LatencyStats,
    seen_by_read: u64,
    /// Empty for a workload's own row, else the repetition.
    repetition: String,
    repetitions: usize,
    spread: Option<crate::metrics::Spread>,
}

impl SummaryRow<'_> {
    fn cells(&self) -> Vec<String> {
        let l = self.latency;
        // No ok task, no latency: empty cells, never 0 µs.
        let us = |v: u64| {
            if l.count == 0 {
                String::new()
            } else {
                v.to_string()
            }
        };
        let c = self.counts;
        vec![
            self.topology.to_string(),
            self.name.to_string(),
            self.task.to_string(),
            c.count.to_string(),
            c.ok.to_string(),
            c.failed.to_string(),
            c.lost.to_string(),
            c.result_lost.to_string(),
            c.duplicated.to_string(),
            c.unconfirmed.to_string(),
            format!("{:.3}", self.wall_s),
            format!("{:.1}", self.throughput_per_s),
            us(l.p50_us),
            us(l.p90_us),
            us(l.p99_us),
            us(l.p999_us),
            us(l.max_us),
            if l.count == 0 {
                String::new()
            } else {
                format!("{:.1}", l.mean_us)
            },
            c.refused.to_string(),
            c.gave_up.to_string(),
            c.unfinished_running.to_string(),
            c.unfinished_queued.to_string(),
            c.unknown.to_string(),
            self.seen_by_read.to_string(),
            c.revoked.to_string(),
            self.repetition.clone(),
            self.repetitions.to_string(),
            self.spread
                .map(|s| format!("{:.1}", s.min))
                .unwrap_or_default(),
            self.spread
                .map(|s| format!("{:.1}", s.max))
                .unwrap_or_default(),
        ]
    }
}

impl Exporter for SummaryCsv {
    fn file_name(&self) -> &'static str {
        "summary.csv"
    }
    fn write(&self, data: RunData<'_>, out: &mut dyn std::io::Write) -> Result<()> {
        let topology = data
            .report
            .topology
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let mut w = ::csv::Writer::from_writer(out);
        w.write_record(SUMMARY_HEADER)?;
        for r in &data.report.workloads {
            let row = SummaryRow {
                topology,
                name: &r.name,
                task: &r.task,
                counts: &r.counts,
                wall_s: r.wall_s,
                throughput_per_s: r.throughput_per_s,
                latency: r.stages.get("latency").copied().unwrap_or_default(),
                seen_by_read: r.seen_by_read,
                repetition: String::new(),
                repetitions: r.repetitions_run(),
                spread: r.throughput_spread,
            };
            w.write_record(row.cells())?;
            for rep in &r.repetitions {
                let row = SummaryRow {
                    counts: &rep.counts,
                    wall_s: rep.wall_s,
                    throughput_per_s: rep.throughput_per_s,
                    latency: rep.latency,
                    seen_by_read: rep.seen_by_read,
                    repetition: rep.repetition.to_string(),
                    spread: None,
                    ..row
                };
                w.write_record(row.cells())?;
            }
        }
        w.flush()?;
        Ok(())
    }
}

/// Writes tasks.csv.
pub struct TasksCsv;

/// Column names of tasks.csv.
pub const TASKS_HEADER: [&str; 23] = [
    "task_id",
    "workload",
    "task",
    "intended_unix_us",
    "published_unix_us",
    "confirmed_unix_us",
    "confirm",
    "started_unix_us",
    "finished_unix_us",
    "result_seen_unix_us",
    "seen_via",
    "executions",
    "republished",
    "worker",
    "outcome",
    "duplicated",
    "latency_us",
    "refused_unix_us",
    "deadline_unix_us",
    "purged",
    "read_failed",
    "failure",
    "repetition",
];

fn opt(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

impl Exporter for TasksCsv {
    fn file_name(&self) -> &'static str {
        "tasks.csv"
    }
    fn write(&self, data: RunData<'_>, out: &mut dyn std::io::Write) -> Result<()> {
        let mut w = ::csv::Writer::from_writer(out);
        w.write_record(TASKS_HEADER)?;
        for (i, r) in data.report.workloads.iter().enumerate() {
            for t in data.ledger.tasks(i) {
                let c = t.classify();
                let e = t.main_execution();
                let d = t.at_deadline.as_deref();
                w.write_record([
                    t.id.to_string(),
                    r.name.clone(),
                    r.task.clone(),
                    t.intended_unix_us.to_string(),
                    opt(t.published_unix_us),
                    opt(t.confirmed_unix_us),
                    t.confirm.as_str().to_string(),
                    opt(e.map(|e| e.started_unix_us)),
                    opt(e.and_then(|e| e.finished_unix_us)),
                    opt(t.result_seen_unix_us),
                    seen_via_str(t.seen_via).to_string(),
                    t.executions.len().to_string(),
                    t.republished.to_string(),
                    e.map(|e| e.worker.to_string()).unwrap_or_default(),
                    c.outcome.as_str().to_string(),
                    c.duplicated.to_string(),
                    // A result seen after the drain deadline has no latency: the task is
                    // unfinished.
                    opt(t.latency_us().filter(|_| {
                        matches!(
                            c.outcome,
                            crate::ledger::Outcome::Ok | crate::ledger::Outcome::Failed
                        )
                    })),
                    opt(t.refused_unix_us),
                    opt(d.map(|d| d.at_unix_us)),
                    d.map(|d| d.purged.to_string()).unwrap_or_default(),
                    d.map(|d| d.read_failed.to_string()).unwrap_or_default(),
                    // Why the worker failed or refused it (the side channel's word).
                    match c.outcome {
                        crate::ledger::Outcome::Ok => String::new(),
                        _ => data
                            .ledger
                            .failure_of(&t.id)
                            .unwrap_or_default()
                            .to_string(),
                    },
                    // Which repetition of a workload with `repeat = N` (1 otherwise).
                    t.repetition.to_string(),
                ])?;
            }
        }
        w.flush()?;
        Ok(())
    }
}

/// tasks.csv's word for how a result was seen (empty: not seen).
fn seen_via_str(v: Option<SeenVia>) -> &'static str {
    match v {
        Some(SeenVia::Notification) => "notification",
        Some(SeenVia::Read) => "read",
        None => "",
    }
}

/// The inverse of [`seen_via_str`]; anything else is not seen.
fn parse_seen_via(s: &str) -> Option<SeenVia> {
    match s {
        "notification" => Some(SeenVia::Notification),
        "read" => Some(SeenVia::Read),
        _ => None,
    }
}

/// A file that is not what its writer writes: which file, and what is wrong (with the
/// line or column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {what}", path.display())]
pub struct CsvReadError {
    /// The file.
    pub path: PathBuf,
    /// What is wrong.
    pub what: String,
}

/// One row of a CSV file of hab's being read back: its cells by column name and errors
/// that name the file and the line.
struct Row<'r> {
    path: &'r Path,
    /// The line in the file (the header is line 1).
    line: usize,
    record: &'r ::csv::StringRecord,
    headers: &'r ::csv::StringRecord,
}

impl<'r> Row<'r> {
    /// The row's cells, by column name.
    fn cells<C: Deserialize<'r>>(&self) -> Result<C, CsvReadError> {
        self.record
            .deserialize(Some(self.headers))
            .map_err(|e| self.bad(e))
    }

    /// An error at this line.
    fn bad(&self, what: impl std::fmt::Display) -> CsvReadError {
        CsvReadError {
            path: self.path.to_path_buf(),
            what: format!("line {}: {what}", self.line),
        }
    }
}

/// Reads a CSV file of hab's row by row with `parse`, after checking that its header has
/// the `required` columns (`file` names the kind of file in that error).
fn read_rows<T>(
    path: &Path,
    file: &str,
    required: &[&str],
    mut parse: impl FnMut(Row<'_>) -> Result<T, CsvReadError>,
) -> Result<Vec<T>, CsvReadError> {
    let bad = |what: String| CsvReadError {
        path: path.to_path_buf(),
        what,
    };
    let mut r = ::csv::Reader::from_path(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let headers = r
        .headers()
        .map_err(|e| bad(format!("no header: {e}")))?
        .clone();
    if let Some(name) = required
        .iter()
        .find(|name| !headers.iter().any(|h| h == **name))
    {
        return Err(bad(format!("no column {name}; is this a {file} of hab?")));
    }
    let mut out = Vec::new();
    for (line, record) in r.records().enumerate() {
        let line = line + 2;
        let record = record.map_err(|e| bad(format!("line {line}: {e}")))?;
        out.push(parse(Row {
            path,
            line,
            record: &record,
            headers: &headers,
        })?);
    }
    Ok(out)
}

/// The columns of tasks.csv a reader needs; the others may be absent in run directories
/// written by earlier versions of hab.
const TASKS_REQUIRED: [&str; 11] = [
    "task_id",
    "workload",
    "intended_unix_us",
    "published_unix_us",
    "confirmed_unix_us",
    "confirm",
    "result_seen_unix_us",
    "seen_via",
    "executions",
    "republished",
    "outcome",
];

/// The cells of one tasks.csv row that are read back, by column name (an absent
/// column or an empty cell: `None`).
#[derive(Deserialize)]
struct TaskCells<'a> {
    task_id: &'a str,
    workload: &'a str,
    intended_unix_us: &'a str,
    published_unix_us: &'a str,
    confirmed_unix_us: &'a str,
    confirm: &'a str,
    result_seen_unix_us: &'a str,
    seen_via: &'a str,
    executions: &'a str,
    republished: &'a str,
    outcome: &'a str,
    #[serde(default)]
    refused_unix_us: Option<&'a str>,
    /// Absent in run directories written before drain deadlines were recorded.
    #[serde(default)]
    deadline_unix_us: Option<&'a str>,
    #[serde(default)]
    purged: Option<&'a str>,
    #[serde(default)]
    read_failed: Option<&'a str>,
    /// Absent in run directories written before workloads could repeat: repetition 1.
    #[serde(default)]
    repetition: Option<&'a str>,
}

/// One task read back from tasks.csv.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// Its record as far as tasks.csv tells it: no executions (those are in the side
    /// channel), the result state its outcome implies.
    pub task: TaskRecord,
    /// How many times it ran, by tasks.csv.
    pub executions: usize,
    /// Its outcome, by tasks.csv.
    pub outcome: Outcome,
    /// A hash of the whole row as written (tells the same task in two files from two
    /// tasks with one id).
    pub row_hash: u64,
}

/// Read tasks.csv back: one [`TaskRow`] per row, the workload named by each row given by
/// its index in `workloads`.
pub fn read_tasks(
    path: &Path,
    workloads: &HashMap<String, usize>,
) -> Result<Vec<TaskRow>, CsvReadError> {
    read_rows(path, "tasks.csv", &TASKS_REQUIRED, |row| {
        let cells: TaskCells = row.cells()?;
        let int = |v: &str, name: &str| -> Result<Option<i64>, CsvReadError> {
            match v {
                "" => Ok(None),
                v => v
                    .parse()
                    .map(Some)
                    .map_err(|_| row.bad(format!("{name} {v:?} is not a number"))),
            }
        };
        let id = Uuid::parse_str(cells.task_id)
            .map_err(|_| row.bad(format!("task_id {:?} is not a UUID", cells.task_id)))?;
        let workload = *workloads.get(cells.workload).ok_or_else(|| {
            row.bad(format!(
                "workload {:?} is not a workload of the run",
                cells.workload
            ))
        })?;
        let intended = int(cells.intended_unix_us, "intended_unix_us")?
            .ok_or_else(|| row.bad("intended_unix_us is empty"))?;
        let mut t = TaskRecord::new(id, workload, intended);
        t.published_unix_us = int(cells.published_unix_us, "published_unix_us")?;
        t.confirmed_unix_us = int(cells.confirmed_unix_us, "confirmed_unix_us")?;
        t.confirm = ConfirmState::parse(cells.confirm)
            .ok_or_else(|| row.bad(format!("confirm {:?} is unknown", cells.confirm)))?;
        t.result_seen_unix_us = int(cells.result_seen_unix_us, "result_seen_unix_us")?;
        t.seen_via = parse_seen_via(cells.seen_via);
        let outcome = Outcome::parse(cells.outcome)
            .ok_or_else(|| row.bad(format!("outcome {:?} is unknown", cells.outcome)))?;
        // The result record's state is all the classification needs of it.
        t.result_status = match (outcome, t.result_seen_unix_us) {
            (Outcome::Ok, Some(_)) => Some(ResultStatus::Success),
            (Outcome::Failed, Some(_)) => Some(ResultStatus::Failure),
            (Outcome::Revoked, Some(_)) => Some(ResultStatus::Revoked),
            _ => None,
        };
        t.republished = cells
            .republished
            .parse()
            .map_err(|_| row.bad("republished is not a number"))?;
        if let Some(v) = cells.refused_unix_us {
            t.refused_unix_us = int(v, "refused_unix_us")?;
        }
        if let Some(at_unix_us) = cells
            .deadline_unix_us
            .map(|v| int(v, "deadline_unix_us"))
            .transpose()?
            .flatten()
        {
            t.at_deadline = Some(Box::new(crate::ledger::AtDeadline {
                at_unix_us,
                purged: cells.purged == Some("true"),
                read_failed: cells.read_failed == Some("true"),
            }));
        }
        if let Some(v) = cells.repetition {
            t.repetition = v
                .parse()
                .ok()
                .filter(|&r| r >= 1)
                .ok_or_else(|| row.bad(format!("repetition {v:?} is not a number from 1")))?;
        }
        let executions = cells
            .executions
            .parse()
            .map_err(|_| row.bad("executions is not a number"))?;
        let row_hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            row.record.iter().for_each(|f| f.hash(&mut h));
            h.finish()
        };
        Ok(TaskRow {
            task: t,
            executions,
            outcome,
            row_hash,
        })
    })
}

/// Column names of events.csv (the fields of [`ClientEvent`]).
pub const EVENTS_HEADER: [&str; 4] = ["at_unix_us", "source", "kind", "detail"];

/// The inverse of [`ClientEventKind::as_str`] (the kind's serde name, which is the same).
fn parse_client_kind(s: &str) -> Option<ClientEventKind> {
    use serde::de::IntoDeserializer;
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = s.into_deserializer();
    ClientEventKind::deserialize(de).ok()
}

/// The cells of one events.csv row, by column name.
#[derive(Deserialize)]
struct EventCells<'a> {
    at_unix_us: &'a str,
    source: &'a str,
    kind: &'a str,
    detail: &'a str,
}

/// Read events.csv back (an absent file: no events).
pub fn read_events(path: &Path) -> Result<Vec<ClientEvent>, CsvReadError> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    read_rows(path, "events.csv", &[], |row| {
        let cells: EventCells = row.cells()?;
        let at_unix_us = cells
            .at_unix_us
            .parse()
            .map_err(|_| row.bad("at_unix_us is not a number"))?;
        let kind = parse_client_kind(cells.kind).ok_or_else(|| row.bad("unknown event kind"))?;
        Ok(ClientEvent {
            at_unix_us,
            source: cells.source.to_string(),
            kind,
            detail: cells.detail.to_string(),
        })
    })
}

/// Writes events.csv: every client error, reconnection, nack and republish.
pub struct EventsCsv;

impl Exporter for EventsCsv {
    fn file_name(&self) -> &'static str {
        "events.csv"
    }
    fn write(&self, data: RunData<'_>, out: &mut dyn std::io::Write) -> Result<()> {
        let mut w = ::csv::Writer::from_writer(out);
        w.write_record(EVENTS_HEADER)?;
        for e in data.events {
            w.write_record([
                e.at_unix_us.to_string(),
                e.source.clone(),
                e.kind.as_str().to_string(),
                e.detail.clone(),
            ])?;
        }
        w.flush()?;
        Ok(())
    }
}

/// Writes failover.csv: one row per injected fault (anatomy offsets in ms from the fault).
pub struct FailoverCsv;

impl Exporter for FailoverCsv {
    fn file_name(&self) -> &'static str {
        "failover.csv"
    }
    fn write(&self, data: RunData<'_>, out: &mut dyn std::io::Write) -> Result<()> {
        let mut w = ::csv::WriterBuilder::new().from_writer(out);
        if data.report.failover.is_empty() {
            // Header only: serde writes it with the first row.
            w.write_record(FAILOVER_HEADER)?;
        }
        for row in &data.report.failover {
            w.serialize(row)?;
        }
        w.flush()?;
        Ok(())
    }
}

/// Column names of failover.csv (the fields of `FailoverRow`).
pub const FAILOVER_HEADER: [&str; 39] = [
    "workload",
    "target",
    "resolved",
    "kind",
    "repetition",
    "fault_at_unix_ms",
    "first_client_error_ms",
    "sentinel_sdown_ms",
    "sentinel_odown_ms",
    "sentinel_switch_ms",
    "queue_leader_ms",
    "proxy_down_ms",
    "proxy_up_ms",
    "client_reconnected_ms",
    "restored_ms",
    "healthy_ms",
    "switch_time_ms",
    "outage_ms",
    "lost",
    "result_lost",
    "duplicated",
    "unconfirmed",
    "republished",
    "failed",
    "tasks",
    "not_applied",
    "two_masters_ms",
    "two_masters_from_ms",
    "readonly_errors",
    "readonly_tasks",
    "readonly_for_ms",
    "result_vanished",
    "client_side",
    "client_rediscovered_ms",
    "noreplicas_errors",
    "noreplicas_tasks",
    "broker_paused_ms",
    "broker_resumed_ms",
    "revoked",
];

/// Writes timeline.csv: per second of the run, tasks published and completed, client
/// errors, and the latency (p50, p99, max) of the tasks that completed in that second;
/// then tasks the producer refused or gave up, and its circuit breaker's state.
pub struct TimelineCsv;

/// timeline.csv's column of a process's CPU: `cpu_<role>_pct` with the role's dots and
/// spaces as `_` and its brackets dropped (`broker.node[0]` → `cpu_broker_node0_pct`).
pub fn cpu_column(role: &str) -> String {
    let name: String = role
        .chars()
        .filter(|c| !matches!(c, '[' | ']'))
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("cpu_{name}_pct")
}

/// Column names of timeline.csv (then one `cpu_<role>_pct` column per sampled process,
/// percent of one core).
pub const TIMELINE_HEADER: [&str; 12] = [
    "second",
    "unix_s",
    "workload",
    "published",
    "ok",
    "failed",
    "client_errors",
    "p50_us",
    "p99_us",
    "max_us",
    "refused",
    "breaker",
];

impl Exporter for TimelineCsv {
    fn file_name(&self) -> &'static str {
        "timeline.csv"
    }
    fn write(&self, data: RunData<'_>, out: &mut dyn std::io::Write) -> Result<()> {
        let mut w = ::csv::Writer::from_writer(out);
        // Then one column per sampled process, in role order (none in runs written
        // before hab sampled CPU).
        let roles: std::collections::BTreeSet<&String> = data
            .report
            .timeline
            .iter()
            .flat_map(|r| r.cpu_pct.keys())
            .collect();
        w.write_record(
            TIMELINE_HEADER
                .iter()
                .map(|h| h.to_string())
                .chain(roles.iter().map(|r| cpu_column(r))),
        )?;
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        for r in &data.report.timeline {
            let cpu = roles.iter().map(|role| {
                r.cpu_pct
                    .get(*role)
                    .map(|p| format!("{p:.1}"))
                    .unwrap_or_default()
            });
            w.write_record(
                [
                    r.second.to_string(),
                    r.unix_s.to_string(),
                    r.workload.clone(),
                    r.published.to_string(),
                    r.ok.to_string(),
                    r.failed.to_string(),
                    r.client_errors.to_string(),
                    opt(r.p50_us),
                    opt(r.p99_us),
                    opt(r.max_us),
                    r.refused.to_string(),
                    r.breaker.map(|b| b.as_str()).unwrap_or("").to_string(),
                ]
                .into_iter()
                .chain(cpu),
            )?;
        }
        w.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
