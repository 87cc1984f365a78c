//! The findings of a comparison in plain words, each with its numbers: what HA costs
//! (throughput and latency against the baseline), what it buys (switch time and outage
//! of each fault), and whether anything was lost or ran twice.

use serde::{Deserialize, Serialize};

use super::faults::FaultSummary;
use super::summary::Comparison;
use crate::metrics::stats::{Spread, fmt_ms, fmt_us};

/// The findings of a comparison, grouped as the report shows them after its verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    /// What HA costs: throughput and latency of each workload against the baseline.
    pub cost: Vec<String>,
    /// What HA buys: each fault on each topology, the idle-timeout and policy matrices.
    pub failover: Vec<String>,
    /// Tasks lost, run twice, refused, and results the backend lost.
    pub losses: Vec<String>,
    /// How sure: figures measured once, wide spreads, invalid calibrations, observers
    /// that missed their server, invariants violated.
    pub caveats: Vec<String>,
}

impl Findings {
    /// The groups with their headings, in the report's order.
    pub fn groups(&self) -> [(&'static str, &[String]); 4] {
        [
            ("What HA costs", &self.cost),
            ("What HA buys: faults and failover", &self.failover),
            ("Lost, duplicated, refused", &self.losses),
            ("Caveats: how sure", &self.caveats),
        ]
    }

    /// Every finding, group by group.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.cost
            .iter()
            .chain(&self.failover)
            .chain(&self.losses)
            .chain(&self.caveats)
    }

    /// Every finding, one a line.
    pub fn text(&self) -> String {
        self.all()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `median (min–max)` of a spread of ms, or just the value when there is one.
pub fn fmt_spread_ms(s: &Spread) -> String {
    if s.n > 1 && s.min != s.max {
        format!(
            "{} ({}–{}, n={})",
            fmt_ms(s.median),
            fmt_ms(s.min),
            fmt_ms(s.max),
            s.n
        )
    } else {
        fmt_ms(s.median)
    }
}

/// A table cell for a spread of ms: `median (min–max)`, just the median for one value,
/// `–` when there is none.
pub fn fmt_spread_cell(s: Option<&Spread>) -> String {
    match s {
        None => "–".into(),
        Some(s) if s.n > 1 => format!("{} ({}–{})", fmt_ms(s.median), fmt_ms(s.min), fmt_ms(s.max)),
        Some(s) => fmt_ms(s.median),
    }
}

/// A ratio to the baseline as `0.42×`, `–` when there is none.
pub fn fmt_ratio(r: Option<f64>) -> String {
    r.map(|r| format!("{r:.2}×")).unwrap_or_else(|| "–".into())
}

/// Tasks per second with a precision that suits the magnitude.
pub fn fmt_rate(r: f64) -> String {
    format!("{}/s", fmt_rate_number(r))
}

fn fmt_rate_number(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 1.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

/// Throughput with its spread over runs × repetitions: `2500/s (2000–3000)`, or
/// `2500/s (1 run)` when it was measured once.
pub fn fmt_rate_spread(s: &Spread) -> String {
    if s.n > 1 {
        format!(
            "{} ({}–{})",
            fmt_rate(s.median),
            fmt_rate_number(s.min),
            fmt_rate_number(s.max)
        )
    } else {
        format!("{} (1 run)", fmt_rate(s.median))
    }
}

/// A latency from the merged histogram with the range of the same percentile over the
/// repetitions (runs × repetitions), µs: `12.3ms (11.0ms–14.0ms)`; just the value when
/// there was one sample.
pub fn fmt_us_spread(merged_us: u64, s: Option<&Spread>) -> String {
    match s {
        Some(s) if s.n > 1 => format!(
            "{} ({}–{})",
            fmt_us(merged_us),
            fmt_us(s.min.round() as u64),
            fmt_us(s.max.round() as u64)
        ),
        _ => fmt_us(merged_us),
    }
}

/// The samples of a figure in words: `3 runs`, `5 repetitions`, `2 runs × 5 repetitions`.
fn samples(runs: usize, repeat: usize) -> String {
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match (runs, repeat) {
        (r, 0 | 1) => plural(r, "run"),
        (1, p) => plural(p, "repetition"),
        (r, p) => format!("{} × {}", plural(r, "run"), plural(p, "repetition")),
    }
}

/// `runs` or `runs×repetitions` (a workload with `repeat` > 1).
pub fn fmt_samples(runs: usize, repeat: usize) -> String {
    match repeat {
        0 | 1 => runs.to_string(),
        r => format!("{runs}×{r}"),
    }
}

fn percent_change(ratio: f64) -> String {
    let p = (ratio - 1.0) * 100.0;
    if p.abs() < 0.5 {
        "the same".to_string()
    } else if p < 0.0 {
        format!("{:.0}% less", -p)
    } else {
        format!("{p:.0}% more")
    }
}

fn losses(tasks: u64, lost: u64, result_lost: u64, unconfirmed: u64, dup: u64) -> String {
    let mut parts = Vec::new();
    if lost + result_lost + unconfirmed == 0 {
        parts.push("0 tasks lost".to_string());
    } else {
        if lost > 0 {
            parts.push(format!("{lost} tasks lost (accepted, never executed)"));
        }
        if result_lost > 0 {
            parts.push(format!("{result_lost} results lost"));
        }
        if unconfirmed > 0 {
            parts.push(format!("{unconfirmed} publishes never confirmed"));
        }
    }
    if dup > 0 {
        parts.push(format!("{dup} executed twice"));
    }
    format!("{} of {tasks} tasks in its window", parts.join(", "))
}

fn fault_sentence(f: &FaultSummary) -> String {
    let what = format!("{} {} ({})", f.target, f.kind, f.workload);
    if let Some(reason) = &f.not_applied {
        return format!("{what} on {}: not applicable — {reason}.", f.topology);
    }
    let switch = match &f.switch_ms {
        Some(s) => format!("tasks flowed again after {}", fmt_spread_ms(s)),
        None => "no task published after the fault (before the next) completed".to_string(),
    };
    let outage = f
        .outage_ms
        .as_ref()
        .map(|o| format!(", longest gap between completions {}", fmt_ms(o.max)))
        .unwrap_or_default();
    let missing = if f.no_completion > 0 && f.switch_ms.is_some() {
        format!(
            " ({} of {} repetitions never recovered within the window)",
            f.no_completion, f.applied
        )
    } else {
        String::new()
    };
    format!(
        "{what} on {}: {switch}{missing}{outage}{}; {}{}.",
        f.topology,
        stale_master(f),
        losses(f.tasks, f.lost, f.result_lost, f.unconfirmed, f.duplicated),
        unapplied(f)
    )
}

/// The repetitions of a fault that were not applied while others were, with the first
/// reason: `; 1 more repetition not applied (SENTINEL FAILOVER was accepted but …)`.
fn unapplied(f: &FaultSummary) -> String {
    match f.unapplied.first() {
        None => String::new(),
        Some(why) => format!(
            "; {} more repetition{} not applied and left out of these figures ({why})",
            f.unapplied.len(),
            if f.unapplied.len() == 1 { "" } else { "s" }
        ),
    }
}

/// What a stale Redis master did around a fault: HAProxy routing to two masters, and
/// writes answered `READONLY` by a demoted one; empty when neither happened.
fn stale_master(f: &FaultSummary) -> String {
    let mut s = String::new();
    if let Some(t) = &f.two_masters_ms {
        s.push_str(&format!(
            "; HAProxy had two Redis masters UP for {} ({} of {} repetitions)",
            fmt_spread_ms(t),
            f.two_masters_reps,
            f.applied
        ));
    }
    if f.readonly_errors > 0 {
        s.push_str(&format!(
            "; {} READONLY store errors on {} tasks{}",
            f.readonly_errors,
            f.readonly_tasks,
            f.readonly_for_ms
                .map(|ms| format!(" over {}", fmt_ms(ms)))
                .unwrap_or_default()
        ));
    }
    if f.result_vanished > 0 {
        s.push_str(&format!(
            "; {} results hab saw were gone from Redis at the end (lost by the backend after they were stored: a demoted master's resync, or a restart without persistence)",
            f.result_vanished
        ));
    }
    if f.noreplicas_errors > 0 {
        s.push_str(&format!(
            "; {} writes refused with NOREPLICAS on {} tasks (min-replicas-to-write)",
            f.noreplicas_errors, f.noreplicas_tasks
        ));
    }
    s
}

/// The findings of `c`, grouped, most important first in each group.
pub fn findings(c: &Comparison) -> Findings {
    let mut f = Findings::default();
    // The cost: each workload on each topology against the baseline. A workload with a
    // fault shows what the fault did to it: its rows go with the faults.
    let faulted = |w: &str| c.faults.iter().any(|f| f.workload == w);
    for w in &c.workloads {
        let out = if faulted(&w.name) {
            &mut f.failover
        } else {
            &mut f.cost
        };
        let Some(base) = c.baseline_row(w) else {
            continue;
        };
        for r in w.rows.iter().filter(|r| r.topology != c.baseline) {
            let Some(tr) = r.throughput_ratio else {
                continue;
            };
            let mut s = format!(
                "{} ({}): {} ran {} vs {} on {} ({} throughput)",
                w.name,
                w.task,
                r.topology,
                fmt_rate(r.throughput_per_s.median),
                fmt_rate(base.throughput_per_s.median),
                c.baseline,
                percent_change(tr),
            );
            if r.latency.count > 0 && base.latency.count > 0 {
                let d = r.latency.p99_us as f64 - base.latency.p99_us as f64;
                s.push_str(&format!(
                    "; p99 latency {} vs {} ({}{})",
                    fmt_us(r.latency.p99_us),
                    fmt_us(base.latency.p99_us),
                    if d >= 0.0 { "+" } else { "−" },
                    fmt_ms(d.abs() / 1000.0)
                ));
            }
            s.push('.');
            out.push(s);
        }
    }
    // How sure: a figure measured once (one run, no repetitions) shows no spread at all.
    let mut once: Vec<&str> = Vec::new();
    for w in &c.workloads {
        if w.rows.iter().any(|r| r.throughput_per_s.n <= 1) && !once.contains(&w.name.as_str()) {
            once.push(&w.name);
        }
    }
    let out = &mut f.caveats;
    if !once.is_empty() {
        out.push(format!(
            "{} measured once (one run, no repetitions), so {} figures carry no spread: short workloads (a few tasks, well under a second) vary by tens of percent between identical runs on a busy machine. Rerun with --repeat 3 or more, or give the workload repeat = 3 or more, and read the min–max before trusting a difference of that size.",
            once.join(", "),
            if once.len() == 1 { "its" } else { "their" }
        ));
    }
    for w in &c.workloads {
        for r in &w.rows {
            let t = r.throughput_per_s;
            // Only spreads wide enough to matter when reading a ratio.
            if t.n > 1 && t.median > 0.0 && (t.max - t.min) / 2.0 / t.median >= 0.1 {
                out.push(format!(
                    "{} on {}: throughput {}–{} over {} (±{:.0}% around the median).",
                    w.name,
                    r.topology,
                    fmt_rate(t.min),
                    fmt_rate(t.max),
                    samples(r.repetitions, r.repeat),
                    (t.max - t.min) / 2.0 / t.median * 100.0
                ));
            }
        }
    }
    // The benefit: each fault on each topology.
    let out = &mut f.failover;
    for fault in &c.faults {
        out.push(fault_sentence(fault));
    }
    out.extend(super::matrix::findings(&c.idle));
    out.extend(super::matrix::findings(&c.policies));
    let out = &mut f.losses;
    // Anything lost or duplicated, per topology, over every workload.
    for t in &c.topologies {
        let super::summary::Totals {
            count,
            lost,
            duplicated: dup,
            failed,
            revoked,
        } = c.totals(&t.name);
        let mut s = if lost == 0 {
            format!("{}: no task lost out of {count}", t.name)
        } else {
            format!("{}: {lost} of {count} tasks lost", t.name)
        };
        s.push_str(&format!(", {dup} executed more than once"));
        if failed > 0 {
            s.push_str(&format!(", {failed} failed"));
        }
        if revoked > 0 {
            s.push_str(&format!(
                ", {revoked} revoked (REVOKED results: revoked, or expired before a worker ran them)"
            ));
        }
        let incomplete = t
            .statuses
            .iter()
            .filter(|s| **s != crate::record::RunStatus::Complete)
            .count();
        if incomplete > 0 {
            s.push_str(&format!(
                " ({incomplete} of {} runs did not complete: their numbers cover only what ran)",
                t.statuses.len()
            ));
        }
        s.push('.');
        out.push(s);
        if let Some((keys, written)) = t.result_keys
            && keys < written
        {
            out.push(format!(
                "{}: at the end the result backend held {keys} of the {written} results written (warm-up included): {} stored results were lost by the backend itself (e.g. a Redis restart without persistence). hab saw them as they were published, but a client reading results afterwards would not find them.",
                t.name,
                written - keys
            ));
        }
    }
    f
}

/// What the workers of one run refused, and the tasks a dying worker was running.
pub fn worker_findings(topology: &str, w: &crate::record::WorkersReport) -> Vec<String> {
    let mut out = Vec::new();
    let refused: u64 = w.refused.values().sum();
    if refused > 0 {
        let by: Vec<String> = w.refused.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push(format!(
            "{topology}: the workers settled {refused} message(s) without running them ({}): each got a FAILURE naming the rule (REVOKED when expired) and was acknowledged; workers.limits raises the limits.",
            by.join(", ")
        ));
    }
    for c in &w.crashes {
        let shown: Vec<&str> = c.task_ids.iter().take(3).map(String::as_str).collect();
        let more = c.task_ids.len().saturating_sub(shown.len());
        out.push(format!(
            "{topology}: worker {} ended while running task(s) {}{}: a crash, a kill, or a stop past the shutdown grace; a task that kills its worker workers.limits.crash_limit times is failed (WorkerLostError).",
            c.worker,
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_has;

    #[test]
    fn worker_refusals_and_crashes_are_said() {
        let mut w = crate::record::WorkersReport::default();
        assert!(worker_findings("ha", &w).is_empty());
        w.refused.insert("factorial_limit".into(), 2);
        w.refused.insert("expired".into(), 1);
        w.crashes.push(crate::record::WorkerCrash {
            worker: "w1".into(),
            task_ids: (0..5).map(|i| format!("id{i}")).collect(),
        });
        let f = worker_findings("ha", &w);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].starts_with("ha: the workers settled 3 message(s) without running them (expired 1, factorial_limit 2)"), "{}", f[0]);
        assert_has(
            &f[1],
            &["worker w1 ended while running task(s) id0, id1, id2 and 2 more"],
        );
    }

    #[test]
    fn durations_and_rates_read_naturally() {
        // fmt_ms is metrics::stats's, tested there.
        assert_eq!(fmt_rate(5543.2), "5543/s");
        assert_eq!(fmt_rate(54.3), "54.3/s");
        assert_eq!(fmt_rate(0.166), "0.17/s");
        assert_eq!(percent_change(0.37), "63% less");
        assert_eq!(percent_change(1.2), "20% more");
        assert_eq!(percent_change(1.001), "the same");
        let s = Spread::of([100.0, 539.0, 109.0]).unwrap();
        assert_eq!(fmt_spread_ms(&s), "109.0ms (100.0ms–539.0ms, n=3)");
    }
}
