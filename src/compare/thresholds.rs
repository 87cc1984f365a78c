//! Thresholds for CI users: `hab compare` exits 1 when one is crossed, naming what
//! crossed it.

use serde::{Deserialize, Serialize};

use super::findings::fmt_rate;
use super::summary::Comparison;
use crate::metrics::stats::fmt_ms;

/// Limits given on the command line; `None` means not checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Largest allowed p99 latency ratio to the baseline, per workload.
    pub max_p99_ratio: Option<f64>,
    /// Smallest allowed throughput ratio to the baseline, per workload.
    pub min_throughput_ratio: Option<f64>,
    /// Most tasks allowed lost (never executed + result lost + never confirmed), per
    /// topology over every workload.
    pub max_lost: Option<u64>,
    /// Most tasks allowed to run more than once, per topology over every workload.
    pub max_duplicated: Option<u64>,
    /// Longest allowed switch time (the worst repetition of any fault), ms.
    pub max_switch_ms: Option<f64>,
    /// `--strict`: a run that violated one of its invariants crosses this.
    pub strict: bool,
}

/// A threshold crossed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crossed {
    /// The option that was crossed (`max-p99-ratio`, …).
    pub threshold: String,
    /// Topology that crossed it.
    pub topology: String,
    /// Workload or fault concerned (empty for totals).
    pub subject: String,
    /// The measured value.
    pub value: f64,
    /// The limit.
    pub limit: f64,
    /// One sentence.
    pub message: String,
}

impl Thresholds {
    /// True when no threshold is set.
    pub fn is_empty(&self) -> bool {
        *self == Thresholds::default()
    }

    /// Every threshold `c` crosses.
    pub fn check(&self, c: &Comparison) -> Vec<Crossed> {
        let mut out = Vec::new();
        for w in &c.workloads {
            for r in w.rows.iter().filter(|r| r.topology != c.baseline) {
                if let (Some(limit), Some(v)) = (self.max_p99_ratio, r.p99_ratio)
                    && v > limit
                {
                    out.push(Crossed {
                        threshold: "max-p99-ratio".into(),
                        topology: r.topology.clone(),
                        subject: w.name.clone(),
                        value: v,
                        limit,
                        message: format!(
                            "{}: {} p99 is {v:.2}× the baseline's (limit {limit}×)",
                            w.name, r.topology
                        ),
                    });
                }
                if let (Some(limit), Some(v)) = (self.min_throughput_ratio, r.throughput_ratio)
                    && v < limit
                {
                    out.push(Crossed {
                        threshold: "min-throughput-ratio".into(),
                        topology: r.topology.clone(),
                        subject: w.name.clone(),
                        value: v,
                        limit,
                        message: format!(
                            "{}: {} ran {} = {v:.2}× the baseline's throughput (limit {limit}×)",
                            w.name,
                            r.topology,
                            fmt_rate(r.throughput_per_s.median)
                        ),
                    });
                }
            }
        }
        for t in c.topologies.iter().filter(|_| self.strict) {
            if !t.invariants_violated.is_empty() {
                out.push(Crossed {
                    threshold: "strict".into(),
                    topology: t.name.clone(),
                    subject: String::new(),
                    value: t.invariants_violated.len() as f64,
                    limit: 0.0,
                    message: format!(
                        "{}: invariant violated: {}",
                        t.name,
                        t.invariants_violated.join("; ")
                    ),
                });
            }
        }
        for t in &c.topologies {
            let rows = c
                .workloads
                .iter()
                .flat_map(|w| w.rows.iter().filter(|r| r.topology == t.name));
            let (lost, dup) = rows.fold((0, 0), |(l, d), r| (l + r.lost_total(), d + r.duplicated));
            if let Some(limit) = self.max_lost
                && lost > limit
            {
                out.push(Crossed {
                    threshold: "max-lost".into(),
                    topology: t.name.clone(),
                    subject: String::new(),
                    value: lost as f64,
                    limit: limit as f64,
                    message: format!("{}: {lost} tasks lost (limit {limit})", t.name),
                });
            }
            if let Some(limit) = self.max_duplicated
                && dup > limit
            {
                out.push(Crossed {
                    threshold: "max-duplicated".into(),
                    topology: t.name.clone(),
                    subject: String::new(),
                    value: dup as f64,
                    limit: limit as f64,
                    message: format!(
                        "{}: {dup} tasks executed more than once (limit {limit})",
                        t.name
                    ),
                });
            }
        }
        if let Some(limit) = self.max_switch_ms {
            for f in c.faults.iter().filter(|f| f.not_applied.is_none()) {
                let subject = format!("{} {} ({})", f.target, f.kind, f.workload);
                let worst = f.switch_ms.map(|s| s.max);
                let crossed = match worst {
                    Some(v) => v > limit || f.no_completion > 0,
                    None => true,
                };
                if crossed {
                    let message = match worst {
                        Some(v) if f.no_completion == 0 => format!(
                            "{subject} on {}: switch time up to {} (limit {})",
                            f.topology,
                            fmt_ms(v),
                            fmt_ms(limit)
                        ),
                        _ => format!(
                            "{subject} on {}: {} of {} repetitions never completed a task after the fault (limit {})",
                            f.topology,
                            f.no_completion,
                            f.applied,
                            fmt_ms(limit)
                        ),
                    };
                    out.push(Crossed {
                        threshold: "max-switch-time".into(),
                        topology: f.topology.clone(),
                        subject,
                        value: worst.unwrap_or(f64::INFINITY),
                        limit,
                        message,
                    });
                }
            }
        }
        out
    }
}
