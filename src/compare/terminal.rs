//! The terminal summary of a comparison: per workload, each topology's throughput and
//! latency with the ratio to the baseline and what was lost; then the failover table.

use std::fmt::Write;

use super::findings::{fmt_rate_spread, fmt_ratio, fmt_samples, fmt_spread_cell};
use super::matrix::Matrix;
use super::summary::Comparison;
use crate::metrics::stats::fmt_us;

/// The whole summary.
pub fn render(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:>5} {:>7} {:>7} {:>22} {:>7} {:>9} {:>9} {:>7} {:>9} {:>6} {:>5}",
        "workload / topology",
        "runs",
        "count",
        "ok",
        "tasks/s",
        "ratio",
        "p50",
        "p99",
        "p99 ×",
        "max",
        "lost",
        "dup"
    );
    for w in &c.workloads {
        let _ = writeln!(out, "{} ({})", w.name, w.task);
        for r in &w.rows {
            let marker = if r.topology == c.baseline { "*" } else { " " };
            let lat = |v: u64| {
                if r.latency.count == 0 {
                    "–".to_string()
                } else {
                    fmt_us(v)
                }
            };
            let _ = writeln!(
                out,
                "  {:<22} {:>5} {:>7} {:>7} {:>22} {:>7} {:>9} {:>9} {:>7} {:>9} {:>6} {:>5}",
                format!("{}{marker}", r.topology),
                fmt_samples(r.repetitions, r.repeat),
                r.count,
                r.ok,
                fmt_rate_spread(&r.throughput_per_s),
                fmt_ratio(r.throughput_ratio),
                lat(r.latency.p50_us),
                lat(r.latency.p99_us),
                fmt_ratio(r.p99_ratio),
                lat(r.latency.max_us),
                r.lost_total(),
                r.duplicated
            );
        }
    }
    let _ = writeln!(
        out,
        "* baseline; runs = runs of the topology, ×N when the workload repeats N times within each run; tasks/s = median (min–max) over runs × repetitions, (1 run) = measured once; p50/p99/max from the histogram of every repetition merged (report.md gives each percentile's range over the repetitions); ratios are to the baseline's median throughput and p99; lost = never executed + result lost + never confirmed"
    );
    let limits: Vec<String> = c
        .workloads
        .iter()
        .flat_map(|w| {
            w.rows.iter().filter_map(move |r| {
                let l = r.raw_limit.as_ref()?;
                Some(format!(
                    "  {:<20} {:<18} {:>10.1} of {:>10.1} {:<16} {:>6} ({})",
                    w.name,
                    r.topology,
                    l.task_path,
                    l.limit,
                    l.unit,
                    l.standing().cell(),
                    l.figure
                ))
            })
        })
        .collect();
    if !limits.is_empty() {
        let _ = writeln!(out, "\nagainst the raw limits (--calibrate):");
        for l in limits {
            let _ = writeln!(out, "{l}");
        }
    }
    if !c.faults.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<32} {:<14} {:>4} {:>26} {:>26} {:>6} {:>5} {:>6}",
            "fault (workload)",
            "topology",
            "reps",
            "switch median (min–max)",
            "outage median (min–max)",
            "lost",
            "dup",
            "tasks"
        );
        for f in &c.faults {
            let name = format!("{} {} ({})", f.target, f.kind, f.workload);
            if let Some(reason) = &f.not_applied {
                let _ = writeln!(
                    out,
                    "{:<32} {:<14} not applicable: {reason}",
                    name, f.topology
                );
                continue;
            }
            let mut switch = fmt_spread_cell(f.switch_ms.as_ref());
            if f.no_completion > 0 {
                switch.push_str(&format!(" +{} none", f.no_completion));
            }
            let _ = writeln!(
                out,
                "{:<32} {:<14} {:>4} {:>26} {:>26} {:>6} {:>5} {:>6}",
                name,
                f.topology,
                f.applied,
                switch,
                fmt_spread_cell(f.outage_ms.as_ref()),
                f.lost + f.result_lost + f.unconfirmed,
                f.duplicated,
                f.tasks
            );
        }
        let _ = writeln!(
            out,
            "switch = fault → earliest completion of a task published at or after it (before the next fault); outage = longest gap between completions; lost = never executed + result lost + never confirmed (report.md shows them apart)"
        );
    }
    if super::idle::IdleRow::worth_showing(&c.idle) {
        let _ = writeln!(out);
        let _ = writeln!(out, "idle timeouts through HAProxy (heartbeat × timeout):");
        out.push_str(&super::matrix::text_table(&c.idle));
        let _ = writeln!(
            out,
            "cuts = sessions HAProxy's log ended on an idle timeout; tasks at a cut = in flight when one happened; affected = of those, delayed (run once, > 2 × the baseline's p50), failed, lost or duplicated; lost = never executed + result lost + never confirmed"
        );
    }
    if super::outage::PolicyRow::worth_showing(&c.policies) {
        let _ = writeln!(out);
        let _ = writeln!(out, "producer policies around broker faults:");
        out.push_str(&super::matrix::text_table(&c.policies));
        let _ = writeln!(out, "{}", super::outage::LEGEND);
    }
    let busy: Vec<String> = c
        .workloads
        .iter()
        .flat_map(|w| {
            w.rows.iter().filter_map(move |r| {
                r.busiest
                    .as_ref()
                    .map(|b| format!("  {} on {}: {b}", w.name, r.topology))
            })
        })
        .collect();
    if !busy.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "who was busy (each workload's busiest process, sampled every 100 ms):"
        );
        for b in busy {
            let _ = writeln!(out, "{b}");
        }
    }
    out
}

/// `head` and `body` as aligned text columns (two spaces apart), numbers right-aligned
/// where `numeric` says so: the terminal form of the scenario matrices.
pub fn aligned(head: &[String], body: &[Vec<String>], numeric: &[bool]) -> String {
    let width: Vec<usize> = (0..head.len())
        .map(|i| {
            body.iter()
                .map(|r| r[i].chars().count())
                .chain(std::iter::once(head[i].chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if numeric[i] {
                    format!("{c:>w$}", w = width[i])
                } else {
                    format!("{c:<w$}", w = width[i])
                }
            })
            .collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    let mut out = line(head);
    for r in body {
        out.push_str(&line(r));
    }
    out
}
