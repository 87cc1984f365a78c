//! Exporters: one file per format behind one small trait that renders bytes. Every file is
//! rewritten (atomically: temporary file, then rename) after each workload, so an
//! interrupted or crashed run keeps everything measured so far. cpu.csv ([`cpu`]) is
//! written beside them from the run's CPU samples.

pub mod cpu;
pub mod csv;
pub mod hgrm;
pub mod hlog;
pub mod json;
pub mod table;

use std::path::Path;

use anyhow::{Context, Result};

// The old paths of run.json's types (now the record's), for callers not moved yet.

use crate::ledger::Ledger;
use crate::record::RunReport;

/// What the exporters render from.
#[derive(Debug, Clone, Copy)]
pub struct RunData<'a> {
    /// The run's report (the content of run.json).
    pub report: &'a RunReport,
    /// Every task of the run.
    pub ledger: &'a Ledger,
    /// What the clients went through, in time order.
    pub events: &'a [crate::event::ClientEvent],
}

/// One output format.
pub trait Exporter {
    /// File name inside the run directory.
    fn file_name(&self) -> &'static str;
    /// Write the file's content (streamed: tasks.csv of a million-task run is hundreds
    /// of megabytes, which must not be held in memory).
    fn write(&self, data: RunData<'_>, out: &mut dyn std::io::Write) -> Result<()>;
    /// The file's content as bytes.
    fn render(&self, data: RunData<'_>) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.write(data, &mut bytes)?;
        Ok(bytes)
    }
}

/// The exporters of a run directory.
pub fn all() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::RunJson),
        Box::new(csv::SummaryCsv),
        Box::new(csv::TasksCsv),
        Box::new(csv::EventsCsv),
        Box::new(csv::FailoverCsv),
        Box::new(csv::TimelineCsv),
    ]
}

/// Write `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |out| Ok(out.write_all(bytes)?))
}

/// As [`write_atomic`], with the content streamed by `fill` through a buffer.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn std::io::Write) -> Result<()>,
) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        fill(&mut out).with_context(|| format!("cannot write {}", path.display()))?;
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Temporary files are private (0600); results are meant to be read and shared.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Render every exporter into `dir`, and the `.hgrm` file of each workload. The report is
/// written as given: its figures (the timeline included) are the caller's.
pub fn write_all(dir: &Path, data: RunData<'_>) -> Result<()> {
    for e in all() {
        write_atomic_with(&dir.join(e.file_name()), |out| e.write(data, out))?;
    }
    hgrm::write_files(dir, data.report)?;
    hlog::write_file(dir, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ClientEvent, ClientEventKind};
    use crate::ledger::{ConfirmState, Execution, SeenVia, TaskRecord};
    use crate::metrics::WorkloadMetrics;
    use crate::protocol::result::ResultStatus;
    use crate::testing::assert_has;
    use uuid::Uuid;

    fn fixture() -> (RunReport, Ledger, Vec<ClientEvent>) {
        let mut ledger = Ledger::new(1);
        let t0 = 1_800_000_000_000_000;
        let mut ok = TaskRecord::new(Uuid::from_u128(1), 0, t0);
        ok.published_unix_us = Some(t0 + 5);
        ok.confirmed_unix_us = Some(t0 + 50);
        ok.confirm = ConfirmState::Acked;
        ok.executions.push(Execution {
            worker: "w1".into(),
            started_unix_us: t0 + 100,
            finished_unix_us: Some(t0 + 200),
            succeeded: Some(true),
        });
        ok.result_seen_unix_us = Some(t0 + 1_000);
        ok.result_status = Some(ResultStatus::Success);
        ok.seen_via = Some(SeenVia::Read);
        ok.republished = 1;
        let mut lost = TaskRecord::new(Uuid::from_u128(2), 0, t0);
        lost.published_unix_us = Some(t0 + 6);
        lost.confirm = ConfirmState::Acked;
        ledger.insert(ok);
        ledger.insert(lost);
        let metrics = WorkloadMetrics::from_tasks("trivial", "hab.trivial", ledger.tasks(0));
        let mut report = crate::record::tests_support::empty_report();
        report.workloads = vec![metrics.report()];
        let events = vec![ClientEvent {
            at_unix_us: t0 + 7,
            source: "producer".into(),
            kind: ClientEventKind::Republish,
            detail: "a, \"quoted\" detail".into(),
        }];
        (report, ledger, events)
    }

    fn render(name: &str) -> String {
        let (report, ledger, events) = fixture();
        let data = RunData {
            report: &report,
            ledger: &ledger,
            events: &events,
        };
        // The timeline as a run computes it before writing.
        let mut report = report.clone();
        let names: Vec<String> = report.workloads.iter().map(|w| w.name.clone()).collect();
        report.timeline = crate::metrics::timeline::compute(&names, &ledger, &events);
        let data = RunData {
            report: &report,
            ..data
        };
        let e = all().into_iter().find(|e| e.file_name() == name).unwrap();
        String::from_utf8(e.render(data).unwrap()).unwrap()
    }

    #[test]
    fn summary_csv_has_one_row_per_workload_with_counts_and_latency() {
        let text = render("summary.csv");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], csv::SUMMARY_HEADER.join(","));
        assert!(
            lines[1].starts_with("standalone,trivial,hab.trivial,2,1,0,1,0,0,0,0.001,"),
            "{}",
            lines[1]
        );
        // p50 of the single ok latency (1000 µs).
        assert_has(lines[1], &[",1000,1000,1000,1000,1000,1000.0"]);
    }

    #[test]
    fn a_repeated_workload_has_its_merged_row_then_one_row_per_repetition() {
        // The fixture's two tasks again as repetition 2, a second later (both ok there).
        let (mut report, mut ledger, events) = fixture();
        for k in 0..2 {
            let mut t = ledger.tasks(0)[k].clone();
            t.id = Uuid::from_u128(10 + k as u128);
            t.repetition = 2;
            t.intended_unix_us += 1_000_000;
            t.result_seen_unix_us = Some(t.intended_unix_us + 500 * (k as i64 + 1));
            t.result_status = Some(ResultStatus::Success);
            ledger.insert(t);
        }
        report.workloads =
            vec![WorkloadMetrics::from_tasks("trivial", "hab.trivial", ledger.tasks(0)).report()];
        let data = RunData {
            report: &report,
            ledger: &ledger,
            events: &events,
        };
        let text = String::from_utf8(csv::SummaryCsv.render(data).unwrap()).unwrap();
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 4, "header, merged row, two repetitions: {text}");
        let cell = |row: usize, name: &str| {
            let i = csv::SUMMARY_HEADER.iter().position(|h| *h == name).unwrap();
            rows[row][i]
        };
        // Merged: every task, throughput the median of 1,000/s (1 ok in 1 ms) and
        // 2,000/s (2 ok in 1 ms), min and max beside it.
        assert_eq!(
            (
                cell(1, "repetition"),
                cell(1, "repetitions"),
                cell(1, "count"),
                cell(1, "ok")
            ),
            ("", "2", "4", "3")
        );
        assert_eq!(cell(1, "throughput_per_s"), "1500.0");
        assert_eq!(
            (
                cell(1, "throughput_min_per_s"),
                cell(1, "throughput_max_per_s")
            ),
            ("1000.0", "2000.0")
        );
        assert_eq!(cell(1, "max_us"), "1000");
        // Each repetition: its own counts, throughput and latency, no spread.
        assert_eq!(
            (
                cell(2, "repetition"),
                cell(2, "count"),
                cell(2, "ok"),
                cell(2, "throughput_per_s")
            ),
            ("1", "2", "1", "1000.0")
        );
        assert_eq!(
            (
                cell(3, "repetition"),
                cell(3, "ok"),
                cell(3, "p50_us"),
                cell(3, "throughput_min_per_s")
            ),
            ("2", "2", "500", "")
        );
        // tasks.csv says which repetition each task was.
        let tasks = String::from_utf8(csv::TasksCsv.render(data).unwrap()).unwrap();
        let reps: Vec<&str> = tasks
            .lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap())
            .collect();
        assert_eq!(reps, ["1", "1", "2", "2"]);
        // A workload run once: one row, one repetition, no spread.
        let text = render("summary.csv");
        let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(row[row.len() - 4..], ["", "1", "", ""]);
    }

    /// The fixture with its one workload made of its lost task only: no ok task, so no
    /// latency at all.
    fn no_ok_fixture() -> RunReport {
        let (mut report, ledger, _) = fixture();
        report.workloads = vec![
            WorkloadMetrics::from_tasks("trivial", "hab.trivial", &ledger.tasks(0)[1..]).report(),
        ];
        report
    }

    #[test]
    fn a_workload_without_ok_tasks_has_empty_latency_cells() {
        let report = no_ok_fixture();
        let (_, ledger, events) = fixture();
        let data = RunData {
            report: &report,
            ledger: &ledger,
            events: &events,
        };
        let text = String::from_utf8(csv::SummaryCsv.render(data).unwrap()).unwrap();
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        let cell = |name: &str| {
            let i = csv::SUMMARY_HEADER.iter().position(|h| *h == name).unwrap();
            rows[1][i]
        };
        assert_eq!(cell("ok"), "0");
        for name in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us"] {
            assert_eq!(cell(name), "", "{name} of no ok task: {text}");
        }
        // The terminal table says "–" where there is nothing to show, never 0 µs.
        let table = table::render(&report);
        let row = table.lines().nth(1).unwrap();
        assert!(!row.contains("0µs"), "{table}");
        assert_eq!(row.matches('–').count(), 3, "p50, p99 and max: {table}");
    }

    #[test]
    fn the_terminal_table_shows_each_kind_of_loss_apart() {
        let (mut report, _, _) = fixture();
        let c = &mut report.workloads[0].counts;
        (
            c.count,
            c.ok,
            c.lost,
            c.result_lost,
            c.unconfirmed,
            c.revoked,
        ) = (20, 4, 3, 4, 7, 2);
        let table = table::render(&report);
        let mut lines = table.lines();
        let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let cell = |name: &str| {
            let i = head
                .iter()
                .position(|h| *h == name)
                .unwrap_or_else(|| panic!("no {name} column: {table}"));
            row[i]
        };
        assert_eq!(
            (cell("lost"), cell("res_lost"), cell("unconf")),
            ("3", "4", "7"),
            "{table}"
        );
        // Every column is explained under the table.
        assert_has(&table, &["lost = accepted by the broker, never executed"]);
        assert!(table.contains("res_lost = "), "{table}");
        assert!(table.contains("unconf = "), "{table}");
        // REVOKED tasks are neither ok nor failed, and said so.
        assert_has(&table, &["revoked: 2 task(s) ended REVOKED"]);
    }

    #[test]
    fn tasks_csv_has_one_row_per_task() {
        let text = render("tasks.csv");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], csv::TASKS_HEADER.join(","));
        assert!(lines[1].starts_with("00000000-0000-0000-0000-000000000001,trivial,"));
        assert!(
            lines[1].ends_with(",read,1,1,w1,ok,false,1000,,,,,,1"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].ends_with(",,0,0,,lost,false,,,,,,,1"),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn failover_csv_header_matches_its_rows() {
        assert_eq!(
            render("failover.csv").trim_end(),
            csv::FAILOVER_HEADER.join(",")
        );
        let (mut report, ledger, events) = fixture();
        let f = crate::fault::AppliedFault {
            workload: 0,
            target: crate::fault::Role::BrokerPrimary,
            resolved: "broker.node[0]".into(),
            kind: crate::fault::FaultKind::Kill,
            repetition: 0,
            fault_at_unix_us: 1_800_000_000_000_000,
            restored_at_unix_us: None,
            ready_at_unix_us: None,
            healthy_at_unix_us: None,
            not_applied: None,
        };
        report.failover = vec![crate::metrics::failover::analyse(
            &f,
            "trivial",
            None,
            None,
            ledger.tasks(0),
            &[],
            &[],
            None,
        )];
        let data = RunData {
            report: &report,
            ledger: &ledger,
            events: &events,
        };
        let text = String::from_utf8(csv::FailoverCsv.render(data).unwrap()).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], csv::FAILOVER_HEADER.join(","));
        assert!(
            lines[1].starts_with("trivial,broker.primary,broker.node[0],kill,0,1800000000000,"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn timeline_has_a_row_per_second_with_completions_and_errors() {
        let text = render("timeline.csv");
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], csv::TIMELINE_HEADER.join(","));
        // Both tasks were published and the ok one completed within the same second;
        // the republish event is not an error.
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[1], "0,1800000000,trivial,2,1,0,0,1000,1000,1000,0,");
    }

    #[test]
    fn hlog_decodes_back_to_the_recorded_latencies() {
        use hdrhistogram::serialization::Deserializer;
        use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
        let (report, ledger, events) = fixture();
        let data = RunData {
            report: &report,
            ledger: &ledger,
            events: &events,
        };
        let bytes = hlog::hlog_bytes(data).unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("#[StartTime: 1800000000.000"), "{text}");
        let mut histograms = 0;
        let mut total = 0;
        for entry in IntervalLogIterator::new(&bytes) {
            if let Ok(LogEntry::Interval(h)) = entry {
                histograms += 1;
                assert_eq!(h.tag().map(|t| t.as_str()), Some("trivial"));
                let decoded = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    h.encoded_histogram(),
                )
                .unwrap();
                let hist: hdrhistogram::Histogram<u64> = Deserializer::new()
                    .deserialize(&mut decoded.as_slice())
                    .unwrap();
                total += hist.len();
                assert_eq!(hist.max(), hist.highest_equivalent(1000));
            }
        }
        // One ok task (latency 1000 µs) in one second.
        assert_eq!((histograms, total), (1, 1));
    }

    #[test]
    fn events_csv_quotes_free_text() {
        let text = render("events.csv");
        assert_eq!(
            text.lines().nth(1).unwrap(),
            "1800000000000007,producer,republish,\"a, \"\"quoted\"\" detail\""
        );
    }

    /// What tasks.csv and events.csv write, their readers read back.
    #[test]
    fn tasks_and_events_csv_read_back_as_written() {
        let (report, ledger, events) = fixture();
        let dir = tempfile::tempdir().unwrap();
        let data = RunData {
            report: &report,
            ledger: &ledger,
            events: &events,
        };
        write_all(dir.path(), data).unwrap();
        let names = std::collections::HashMap::from([("trivial".to_string(), 0)]);
        let rows = csv::read_tasks(&dir.path().join("tasks.csv"), &names).unwrap();
        assert_eq!(rows.len(), 2);
        for (row, t) in rows.iter().zip(ledger.tasks(0)) {
            let c = t.classify();
            assert_eq!(
                (row.outcome, row.executions, row.task.republished),
                (c.outcome, t.executions.len(), t.republished)
            );
            let r = &row.task;
            assert_eq!(
                (r.id, r.workload, r.repetition, r.intended_unix_us),
                (t.id, t.workload, t.repetition, t.intended_unix_us)
            );
            assert_eq!(
                (r.published_unix_us, r.confirmed_unix_us, r.confirm),
                (t.published_unix_us, t.confirmed_unix_us, t.confirm)
            );
            assert_eq!(
                (r.result_seen_unix_us, r.seen_via, r.result_status),
                (t.result_seen_unix_us, t.seen_via, t.result_status)
            );
        }
        assert_ne!(rows[0].row_hash, rows[1].row_hash);
        let back = csv::read_events(&dir.path().join("events.csv")).unwrap();
        assert_eq!(back, events);
        assert_eq!(
            csv::read_events(&dir.path().join("absent.csv")).unwrap(),
            vec![]
        );
        let e = csv::read_tasks(&dir.path().join("events.csv"), &names).unwrap_err();
        assert!(e.to_string().contains("no column task_id"), "{e}");
    }

    #[test]
    fn run_json_round_trips_with_mergeable_histograms() {
        let text = render("run.json");
        let back: RunReport = serde_json::from_str(&text).unwrap();
        assert_eq!(back.status, crate::record::RunStatus::Complete);
        let w = &back.workloads[0];
        assert_eq!(
            (w.counts.count, w.counts.ok, w.counts.lost, w.republished),
            (2, 1, 1, 1)
        );
        let h = crate::metrics::LatencyHistogram::from_base64(&w.histograms["latency"]).unwrap();
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn write_atomic_replaces_and_leaves_readable_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.csv");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
