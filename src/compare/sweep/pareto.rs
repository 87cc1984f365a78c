//! The Pareto front of a sweep's cells and the recommended cell, with its reasons in
//! words and numbers.
//!
//! The front minimises two figures: the headline switch time (the slowest fault
//! workload's median switch time: what HA buys) and the false failovers of the stall phase
//! (what it risks), and the tasks it harmed (lost or run twice: what it costs in
//! correctness). A cell is on the front when no other measured cell is at least as good on
//! all three and better on one; between cells equal on all three, the cheaper (HA cost:
//! the cost phase's throughput below the baseline) wins. A cell that harmed more tasks
//! never dominates one that harmed fewer.
//!
//! The recommendation is the front's cell without lost tasks (if none, the fewest count
//! as the next criteria decide), then zero false failovers (if none has zero, the fewest),
//! then the fewest tasks run twice, then the lowest headline switch time, then the lowest
//! cost, then the lowest index (the reference cell wins an exact tie).

use serde::{Deserialize, Serialize};

use super::SweepAnalysis;
use super::cell::CellResult;
use crate::metrics::stats::fmt_ms;

/// The recommended cell and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The recommended cell's index.
    pub cell: usize,
    /// Whether it is the reference cell (the topology as written).
    pub is_reference: bool,
    /// The reasons, one sentence each, with numbers.
    pub reasons: Vec<String>,
}

/// The false failovers ranked: unmeasured counts as the most.
fn ff_rank(c: &CellResult) -> usize {
    c.false_failovers().unwrap_or(usize::MAX)
}

/// Tasks a cell harmed: lost one way or another, or run more than once.
pub fn harm(c: &CellResult) -> u64 {
    c.lost_tasks + c.duplicated_tasks
}

/// Whether `a` dominates `b`: at least as good on headline switch time, false failovers
/// and harmed tasks ([`harm`]: lost or run twice) and better on one, or equal on all
/// three and cheaper. A cell that harmed more tasks never dominates one that harmed
/// fewer: a faster switch bought with lost or duplicated tasks does not push a setting
/// that kept them off the front.
pub fn dominates(a: &CellResult, b: &CellResult) -> bool {
    let (sa, sb) = (a.headline_rank_ms(), b.headline_rank_ms());
    let (fa, fb) = (ff_rank(a), ff_rank(b));
    let (ha, hb) = (harm(a), harm(b));
    if sa <= sb && fa <= fb && ha <= hb {
        sa < sb || fa < fb || ha < hb || a.cost_rank() < b.cost_rank()
    } else {
        false
    }
}

/// The measured cells no other measured cell dominates, by index.
pub fn front(cells: &[CellResult]) -> Vec<usize> {
    let measured: Vec<&CellResult> = cells.iter().filter(|c| c.measured).collect();
    measured
        .iter()
        .filter(|b| !measured.iter().any(|a| dominates(a, b)))
        .map(|c| c.index)
        .collect()
}

/// The order of preference among the front: no lost tasks, zero (or fewest) false
/// failovers, fewest tasks run twice, lowest headline switch time, lowest cost, lowest
/// index.
fn preference(c: &CellResult) -> (bool, usize, u64, f64, f64, usize) {
    (
        c.lost_tasks > 0,
        ff_rank(c),
        c.duplicated_tasks,
        c.headline_rank_ms(),
        c.cost_rank(),
        c.index,
    )
}

/// The recommended cell of `a`'s front, with its reasons; `None` when no cell was
/// measured.
pub fn recommend(a: &SweepAnalysis) -> Option<Recommendation> {
    let front: Vec<&CellResult> = a.front.iter().filter_map(|i| a.cell(*i)).collect();
    let best = front.iter().copied().min_by(|x, y| {
        let (p, q) = (preference(x), preference(y));
        p.0.cmp(&q.0)
            .then(p.1.cmp(&q.1))
            .then(p.2.cmp(&q.2))
            .then(p.3.total_cmp(&q.3))
            .then(p.4.total_cmp(&q.4))
            .then(p.5.cmp(&q.5))
    })?;
    let mut reasons = vec![headline_sentence(a, best)];
    reasons.push(why_sentence(&front, best));
    match a.reference() {
        Some(r) if !r.measured => reasons.push(
            "The reference cell 0 (the topology as written) was not measured, so nothing is set against it.".into(),
        ),
        Some(r) if r.index != best.index => reasons.push(against_reference(a, best, r)),
        Some(_) => reasons.push(
            "The reference cell (the topology as written) is already the best setting measured: recommended.toml is the topology unchanged.".into(),
        ),
        None => {}
    }
    if best.lost_tasks > 0 {
        reasons.push(format!(
            "It lost {} task{} (never executed, result lost or never confirmed): no cell as good on false failovers kept every task.",
            best.lost_tasks,
            plural(best.lost_tasks as usize)
        ));
    }
    if !best.mismatches.is_empty() {
        reasons.push(format!(
            "Careful: its settings read back differently from what was asked ({}), so it may not have measured what it says.",
            best.mismatches.join("; ")
        ));
    }
    Some(Recommendation {
        cell: best.index,
        is_reference: best.index == 0,
        reasons,
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A headline switch time in words: `2.40s (backend_master_kill)`, or `no switch`.
pub fn headline_text(c: &CellResult) -> String {
    match &c.headline {
        None => "–".into(),
        Some(h) => match h.switch_ms {
            Some(ms) => format!("{} ({})", fmt_ms(ms), h.workload),
            None => format!("no switch ({})", h.workload),
        },
    }
}

/// A cost in words: `12 % less throughput, p99 +30 %` against the baseline.
pub fn cost_text(c: &CellResult) -> String {
    match c.cost_throughput_pct {
        None => "cost not measured".into(),
        Some(t) => {
            let mut s = format!("{} less throughput", pct(t));
            if let Some(p) = c.cost_p99_pct {
                s.push_str(&format!(", p99 {}", signed_pct(p)));
            }
            s
        }
    }
}

/// `12 %` (whole percent; one decimal under 10).
pub fn pct(p: f64) -> String {
    if p.abs() < 10.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.0} %")
    }
}

/// `+12 %` / `−3.0 %`.
pub fn signed_pct(p: f64) -> String {
    if p < 0.0 {
        format!("−{}", pct(-p))
    } else {
        format!("+{}", pct(p))
    }
}

fn ff_text(c: &CellResult) -> String {
    match &c.stall {
        None => "false failovers not measured".into(),
        Some(s) => format!(
            "{} false failover{} in {} stall pause{}",
            s.false_failovers,
            plural(s.false_failovers),
            s.pauses,
            plural(s.pauses)
        ),
    }
}

fn headline_sentence(a: &SweepAnalysis, c: &CellResult) -> String {
    format!(
        "Recommended: cell {} ({}). Headline switch time {} — the slowest of its fault workloads' median switch times; {}; HA costs {} against {}.",
        c.index,
        a.setting_text(c),
        headline_text(c),
        ff_text(c),
        cost_text(c),
        a.baseline_name
    )
}

fn why_sentence(front: &[&CellResult], best: &CellResult) -> String {
    let zero = front
        .iter()
        .filter(|c| c.false_failovers() == Some(0))
        .count();
    let cells: Vec<String> = front.iter().map(|c| c.index.to_string()).collect();
    let mut s = format!(
        "The Pareto front (fastest headline switch, fewest false failovers, fewest tasks lost or run twice) holds cell{} {}; ",
        plural(front.len()),
        cells.join(", ")
    );
    if zero > 0 {
        s.push_str(&format!(
            "{zero} of {} rode out every stall pause (zero false failovers)",
            front.len()
        ));
    } else {
        s.push_str(&format!(
            "none rode out every stall pause, so the fewest false failovers ({}) decide",
            ff_rank(best)
        ));
    }
    let peers: Vec<&&CellResult> = front
        .iter()
        .filter(|c| ff_rank(c) == ff_rank(best))
        .collect();
    if peers.len() > 1 {
        let no_loss = peers.iter().filter(|c| c.lost_tasks == 0).count();
        if no_loss > 0 && no_loss < peers.len() {
            s.push_str(", of these the ones without lost tasks come first");
        }
        let same_switch = peers
            .iter()
            .filter(|c| {
                (c.lost_tasks > 0) == (best.lost_tasks > 0)
                    && c.headline_rank_ms() == best.headline_rank_ms()
            })
            .count();
        if same_switch > 1 {
            s.push_str(
                ", and of those with the same headline switch time the cheaper (then the lower cell index)",
            );
        } else {
            s.push_str(", and of those the lowest headline switch time");
        }
    }
    s.push_str(&format!(": cell {}.", best.index));
    s
}

/// `2.40s → 0.90s`.
fn arrow_ms(from: Option<f64>, to: Option<f64>) -> String {
    let t = |v: Option<f64>| v.map_or_else(|| "no switch".to_string(), fmt_ms);
    format!("{} → {}", t(from), t(to))
}

fn against_reference(a: &SweepAnalysis, best: &CellResult, r: &CellResult) -> String {
    let h = |c: &CellResult| c.headline.as_ref().and_then(|h| h.switch_ms);
    let ff = |c: &CellResult| {
        c.false_failovers()
            .map_or_else(|| "–".to_string(), |n| n.to_string())
    };
    let cost = |c: &CellResult| c.cost_throughput_pct.map_or_else(|| "–".to_string(), pct);
    let mut s = format!(
        "Against the reference cell 0 (the topology as written) it buys: headline switch {}, false failovers {} → {}, cost {} → {} less throughput",
        arrow_ms(h(r), h(best)),
        ff(r),
        ff(best),
        cost(r),
        cost(best)
    );
    let per_fault: Vec<String> = a
        .fault_workloads
        .iter()
        .filter_map(|w| {
            let (x, y) = (r.fault(w)?, best.fault(w)?);
            let mark = match y.source {
                super::Source::Reference => " (the reference's figures)",
                super::Source::Own => "",
            };
            Some(format!(
                "{w} {}{mark}",
                arrow_ms(x.switch_median_ms, y.switch_median_ms)
            ))
        })
        .collect();
    if !per_fault.is_empty() {
        s.push_str(&format!(
            "; median switch per fault: {}",
            per_fault.join(", ")
        ));
    }
    if best.lost_tasks != r.lost_tasks {
        s.push_str(&format!(
            "; lost tasks {} → {}",
            r.lost_tasks, best.lost_tasks
        ));
    }
    s.push('.');
    s
}
