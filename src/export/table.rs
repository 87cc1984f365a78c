//! The short table printed on the terminal at the end of a run.

use crate::metrics::stats::fmt_us;
use std::fmt::Write;

use crate::record::RunReport;

/// What the loss columns of [`render`] and the latency dashes mean, printed under it.
pub const LEGEND: &str = "lost = accepted by the broker, never executed; res_lost = executed, result never seen; unconf = never executed, publish never confirmed; dup = executed more than once (any outcome); p50/p99/max = end-to-end latency of the ok tasks, – = no ok task";

/// Below the table: per workload, the tasks left at the drain deadline (unfinished, not
/// in `lost`) or of unknown outcome, the results seen by a read rather than a
/// notification, and every failed read that decided outcomes.
fn deadline_lines(report: &RunReport) -> String {
    let mut out = String::new();
    for w in &report.workloads {
        let c = &w.counts;
        if c.unfinished() + c.unknown > 0 {
            let _ = writeln!(
                out,
                "{}: {} unfinished at the drain deadline ({} running, {} queued; not lost: the deadline was too short), {} unknown (a read failed)",
                w.name,
                c.unfinished(),
                c.unfinished_running,
                c.unfinished_queued,
                c.unknown
            );
        }
    }
    let by_read: Vec<String> = report
        .workloads
        .iter()
        .filter(|w| w.seen_by_read > 0)
        .map(|w| format!("{} {}", w.name, w.seen_by_read))
        .collect();
    if !by_read.is_empty() {
        let _ = writeln!(
            out,
            "results seen by a read, not a notification (latency an upper bound): {}",
            by_read.join(", ")
        );
    }
    for f in &report.failed_reads {
        let _ = writeln!(
            out,
            "failed read ({}{}): {} attempts, {} tasks; {}",
            f.read,
            if f.workload.is_empty() {
                String::new()
            } else {
                format!(", workload {}", f.workload)
            },
            f.attempts,
            f.tasks,
            f.error
        );
    }
    out
}

/// Below the table: for each repeated workload, its throughput and latency spread over
/// the repetitions (the table's figures are the repetitions merged: counts summed,
/// tasks/s the median, p50/p99/max from the merged histogram, wall the sum); or, when no
/// workload repeated, that every figure is a single run.
fn repetition_lines(report: &RunReport) -> String {
    let mut out = String::new();
    for w in report
        .workloads
        .iter()
        .filter(|w| !w.repetitions.is_empty())
    {
        let Some(t) = w.throughput_spread else {
            continue;
        };
        let range = |f: &dyn Fn(&crate::metrics::LatencyStats) -> u64| {
            let v: Vec<u64> = w.latency_samples().iter().map(f).collect();
            match (v.iter().min(), v.iter().max()) {
                (Some(a), Some(b)) => format!("{}–{}", fmt_us(*a), fmt_us(*b)),
                _ => "–".into(),
            }
        };
        let _ = writeln!(
            out,
            "{}: {} repetitions; tasks/s median {:.1} (min {:.1}, max {:.1}); per repetition p50 {}, p99 {}",
            w.name,
            w.repetitions.len(),
            t.median,
            t.min,
            t.max,
            range(&|l| l.p50_us),
            range(&|l| l.p99_us)
        );
    }
    if !report.workloads.is_empty() && report.workloads.iter().all(|w| w.repetitions.is_empty()) {
        let _ = writeln!(
            out,
            "each workload ran once: single figures, no spread (repeat = N in the workload file runs it N times back to back)"
        );
    } else if !out.is_empty() {
        let _ = writeln!(
            out,
            "reps > 1: counts summed, tasks/s the median, p50/p99/max from the merged histogram, wall the sum of the repetitions"
        );
    }
    out
}

/// The per-workload table, then [`LEGEND`] and the lines below it.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<14} {:<16} {:>4} {:>7} {:>7} {:>6} {:>6} {:>8} {:>6} {:>5} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "workload",
        "task",
        "reps",
        "count",
        "ok",
        "failed",
        "lost",
        "res_lost",
        "unconf",
        "dup",
        "wall",
        "tasks/s",
        "p50",
        "p99",
        "max"
    );
    for w in &report.workloads {
        let l = w.stages.get("latency").copied().unwrap_or_default();
        let lat = |v: u64| {
            if l.count == 0 {
                "–".to_string()
            } else {
                fmt_us(v)
            }
        };
        let _ = writeln!(
            out,
            "{:<14} {:<16} {:>4} {:>7} {:>7} {:>6} {:>6} {:>8} {:>6} {:>5} {:>9} {:>10.1} {:>9} {:>9} {:>9}",
            w.name,
            w.task,
            w.repetitions_run(),
            w.counts.count,
            w.counts.ok,
            w.counts.failed,
            w.counts.lost,
            w.counts.result_lost,
            w.counts.unconfirmed,
            w.counts.duplicated,
            format!("{:.2}s", w.wall_s),
            w.throughput_per_s,
            lat(l.p50_us),
            lat(l.p99_us),
            lat(l.max_us)
        );
    }
    let _ = writeln!(out, "{LEGEND}");
    out.push_str(&repetition_lines(report));
    let revoked: u64 = report.workloads.iter().map(|w| w.counts.revoked).sum();
    if revoked > 0 {
        let _ = writeln!(
            out,
            "revoked: {revoked} task(s) ended REVOKED (revoked, or expired before a worker ran them): neither ok nor failed (run.json `revoked`)"
        );
    }
    out.push_str(&deadline_lines(report));
    if let Some(idle) = report.idle.as_ref().filter(|i| i.total_cuts() > 0) {
        let _ = writeln!(
            out,
            "idle timeouts: HAProxy cut {} connection(s) ({} AMQP, {} Redis); clients saw {} error(s); {} task(s) in flight at a cut, {} affected (run.json `idle`)",
            idle.total_cuts(),
            idle.cuts.get("broker").copied().unwrap_or(0),
            idle.cuts.get("backend").copied().unwrap_or(0),
            idle.total_client_errors(),
            idle.tasks.overlapping,
            idle.tasks.affected
        );
    }
    if let Some(p) = &report.producer {
        let (refused, gave_up): (u64, u64) = report
            .workloads
            .iter()
            .map(|w| (w.counts.refused, w.counts.gave_up))
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
        let _ = writeln!(
            out,
            "producer ({}): {refused} task(s) refused by the breaker, {gave_up} given up, {} breaker state change(s) (run.json `producer`)",
            p.policy,
            p.transitions.len()
        );
    }
    out
}
