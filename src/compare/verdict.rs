//! The verdict a report opens with, in three to five lines with their numbers: what each
//! topology costs against the baseline on each workload, what it buys per fault (how soon
//! tasks flow again), what was lost, ran twice or vanished, and how sure the figures are.
//! The grouped findings below it give the detail.

use std::collections::BTreeSet;

use super::summary::{Comparison, WorkloadRow};
use crate::metrics::stats::{Spread, fmt_ms};

/// The verdict of `c`, one line a point.
pub fn verdict(c: &Comparison) -> Vec<String> {
    let fault_workloads: BTreeSet<&str> = c.faults.iter().map(|f| f.workload.as_str()).collect();
    let mut out = cost(c, &fault_workloads);
    out.extend(buys(c));
    out.push(lost(c));
    out.push(sure(c, &fault_workloads));
    out
}

/// Whether two figures measured over several samples overlap in their min–max: a
/// difference between them is then within run-to-run noise.
fn overlaps(a: &Spread, b: &Spread) -> bool {
    a.n > 1 && b.n > 1 && a.min <= b.max && b.min <= a.max
}

fn change(row: &WorkloadRow, base: &WorkloadRow) -> Option<String> {
    let ratio = row.throughput_ratio?;
    let p = (ratio - 1.0) * 100.0;
    let mut s = if p.abs() < 0.5 {
        "same throughput".to_string()
    } else if p < 0.0 {
        format!("{:.0}% less throughput", -p)
    } else {
        format!("{p:.0}% more throughput")
    };
    if row.latency.count > 0 && base.latency.count > 0 {
        let d = (row.latency.p99_us as f64 - base.latency.p99_us as f64) / 1000.0;
        if d.abs() < 0.05 {
            s.push_str(", same p99");
        } else {
            s.push_str(&format!(
                ", p99 {}{}",
                if d >= 0.0 { "+" } else { "−" },
                fmt_ms(d.abs())
            ));
        }
    }
    let (r, b) = (&row.throughput_per_s, &base.throughput_per_s);
    if r.n <= 1 || b.n <= 1 {
        s.push_str(" (measured once)");
    } else if overlaps(r, b) {
        s.push_str(" (within run-to-run spread)");
    }
    Some(s)
}

/// One line per topology other than the baseline: the workloads without a fault.
fn cost(c: &Comparison, fault_workloads: &BTreeSet<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for t in c.topologies.iter().filter(|t| t.name != c.baseline) {
        let items: Vec<String> = c
            .workloads
            .iter()
            .filter(|w| !fault_workloads.contains(w.name.as_str()))
            .filter_map(|w| {
                let base = c.baseline_row(w)?;
                let row = w.rows.iter().find(|r| r.topology == t.name)?;
                Some(format!("{} {}", w.name, change(row, base)?))
            })
            .collect();
        if !items.is_empty() {
            out.push(format!(
                "What {} costs against {}: {}.",
                t.name,
                c.baseline,
                items.join("; ")
            ));
        }
    }
    out
}

/// One line for every fault: how soon tasks flowed again on each topology (median).
fn buys(c: &Comparison) -> Option<String> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for f in &c.faults {
        let k = (f.target.as_str(), f.kind.as_str());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let items: Vec<String> = keys
        .iter()
        .map(|&(target, kind)| {
            let faults: Vec<_> = c
                .faults
                .iter()
                .filter(|f| f.target == target && f.kind == kind)
                .collect();
            let base = faults
                .iter()
                .find(|f| f.topology == c.baseline)
                .and_then(|f| f.switch_ms.map(|s| s.median));
            let parts: Vec<String> = faults
                .iter()
                .map(|f| {
                    if f.not_applied.is_some() {
                        return format!("{} not applicable", f.topology);
                    }
                    let Some(s) = f.switch_ms else {
                        return format!("{} never within its window", f.topology);
                    };
                    let sooner = match base {
                        Some(b)
                            if f.topology != c.baseline
                                && s.median > 0.0
                                && b / s.median >= 1.5 =>
                        {
                            format!(" ({:.0}× sooner)", b / s.median)
                        }
                        _ => String::new(),
                    };
                    format!("{} {}{sooner}", f.topology, fmt_ms(s.median))
                })
                .collect();
            format!("{target} {kind} — {}", parts.join(", "))
        })
        .collect();
    (!items.is_empty()).then(|| {
        format!(
            "What each fault does (median time until tasks flow again): {}.",
            items.join("; ")
        )
    })
}

/// One line: per topology, tasks lost, run twice, failed, and results that vanished.
fn lost(c: &Comparison) -> String {
    let parts: Vec<String> = c
        .topologies
        .iter()
        .map(|t| {
            let super::summary::Totals {
                count,
                lost,
                duplicated: dup,
                failed,
                ..
            } = c.totals(&t.name);
            let mut s = format!("{} {lost} of {count} tasks lost, {dup} ran twice", t.name);
            if failed > 0 {
                s.push_str(&format!(", {failed} failed"));
            }
            if let Some((keys, written)) = t.result_keys
                && keys < written
            {
                s.push_str(&format!(
                    ", {} stored results vanished from the backend afterwards",
                    written - keys
                ));
            }
            s
        })
        .collect();
    format!("Lost: {}.", parts.join("; "))
}

/// One line: runs, which workloads have a spread and how wide, which were measured once,
/// how often each fault was repeated, and whether every invariant held.
fn sure(c: &Comparison, fault_workloads: &BTreeSet<&str>) -> String {
    let mut parts = Vec::new();
    let runs: BTreeSet<usize> = c.topologies.iter().map(|t| t.statuses.len()).collect();
    let runs: Vec<String> = runs.iter().map(usize::to_string).collect();
    parts.push(format!(
        "{} run{} per topology",
        runs.join(" or "),
        if runs.len() == 1 && runs[0] == "1" {
            ""
        } else {
            "s"
        }
    ));
    let (mut spread, mut once) = (Vec::new(), Vec::new());
    let mut widest: f64 = 0.0;
    let mut samples = BTreeSet::new();
    for w in c
        .workloads
        .iter()
        .filter(|w| !fault_workloads.contains(w.name.as_str()))
    {
        if w.rows.iter().all(|r| r.throughput_per_s.n > 1) {
            spread.push(w.name.as_str());
            for r in &w.rows {
                let t = r.throughput_per_s;
                samples.insert(t.n);
                if t.median > 0.0 {
                    widest = widest.max((t.max - t.min) / 2.0 / t.median * 100.0);
                }
            }
        } else {
            once.push(w.name.as_str());
        }
    }
    if !spread.is_empty() {
        let n: Vec<String> = samples.iter().map(usize::to_string).collect();
        parts.push(format!(
            "{} over {} samples each, throughput within ±{widest:.0}% of the median",
            spread.join(", "),
            n.join(" or ")
        ));
    }
    if !once.is_empty() {
        parts.push(format!(
            "{} measured once, with no spread to judge a difference by",
            once.join(", ")
        ));
    }
    let reps: BTreeSet<usize> = c
        .faults
        .iter()
        .filter(|f| f.not_applied.is_none())
        .map(|f| f.applied)
        .collect();
    if !reps.is_empty() {
        let reps: Vec<String> = reps.iter().map(usize::to_string).collect();
        parts.push(format!("each fault applied {} times", reps.join(" or ")));
    }
    let incomplete: usize = c
        .topologies
        .iter()
        .flat_map(|t| &t.statuses)
        .filter(|s| **s != crate::record::RunStatus::Complete)
        .count();
    if incomplete > 0 {
        parts.push(format!(
            "{incomplete} run(s) did not complete: their figures cover only what ran"
        ));
    }
    let violated: usize = c
        .topologies
        .iter()
        .map(|t| t.invariants_violated.len())
        .sum();
    parts.push(if violated == 0 {
        "every invariant held".to_string()
    } else {
        format!("{violated} invariant(s) violated: read the caveats before any figure")
    });
    format!("How sure: {}.", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::fixture;
    use crate::testing::assert_has;

    #[test]
    fn the_verdict_says_cost_benefit_losses_and_certainty_in_at_most_five_lines() {
        let c = Comparison::from_runs(&fixture::run_set()).unwrap();
        let v = &c.verdict;
        assert!((3..=5).contains(&v.len()), "{v:#?}");
        let text = v.join("\n");
        assert_has(
            &text,
            &["What ha costs against standalone: trivial 50% less throughput"],
        );
        assert_has(
            &text,
            &["What each fault does (median time until tasks flow again): broker.primary kill — "],
        );
        assert_has(&text, &["ha 200.0ms"]);
        assert_has(
            &text,
            &["Lost: standalone 0 of ", "ha 0 of 400 tasks lost, "],
        );
        assert_has(&text, &["How sure: ", "every invariant held"]);
    }

    #[test]
    fn a_difference_inside_both_spreads_is_called_noise_and_one_sample_is_called_once() {
        let a = Spread::of([10.0, 12.0, 14.0]).unwrap();
        let b = Spread::of([13.0, 15.0, 17.0]).unwrap();
        let far = Spread::of([20.0, 21.0, 22.0]).unwrap();
        let one = Spread::of([13.0]).unwrap();
        assert!(overlaps(&a, &b));
        assert!(!overlaps(&a, &far));
        assert!(!overlaps(&a, &one), "one sample has no spread to overlap");
    }
}
