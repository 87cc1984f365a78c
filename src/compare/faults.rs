//! Each fault of a comparison (workload + target + kind) on each topology, over its
//! repetitions: switch time and outage with their spread, the median of each phase of the
//! failover (detection, promotion, reconnection, …), and what was lost, duplicated or
//! refused during it ([`FaultSummary`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::metrics::failover::FailoverRow;
use crate::metrics::stats::Spread;
use crate::record::TopologyRuns;

/// One fault (workload + target + kind) on one topology, over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSummary {
    /// Workload the fault ran in.
    pub workload: String,
    /// Role named in the workload file.
    pub target: String,
    /// kill, pause or stop.
    pub kind: String,
    /// Topology name.
    pub topology: String,
    /// Repetitions applied (over every run of the topology).
    pub applied: usize,
    /// Why it did not apply, when it never did (e.g. no replica on standalone).
    pub not_applied: Option<String>,
    /// Why, for each repetition that was not applied while others were (e.g. a
    /// `SENTINEL FAILOVER` that promoted no replica): left out of every figure here.
    #[serde(default)]
    pub unapplied: Vec<String>,
    /// Switch time ([`crate::metrics::failover::switch_time_ms`]: the earliest completion
    /// of a task published at or after the fault and before the next), ms.
    pub switch_ms: Option<Spread>,
    /// Repetitions after which no task completed within the fault's window.
    pub no_completion: usize,
    /// Longest gap between completions around the fault, ms.
    pub outage_ms: Option<Spread>,
    /// Median offset of the first detection (earliest of client error, Sentinel
    /// +sdown, HAProxy DOWN), ms.
    pub detect_ms: Option<f64>,
    /// Median offset of the promotion (Sentinel +switch-master or new queue leader), ms.
    pub promote_ms: Option<f64>,
    /// Median offset of HAProxy marking the new route UP, ms.
    pub proxy_up_ms: Option<f64>,
    /// Median offset of the first client reconnection, ms.
    pub reconnect_ms: Option<f64>,
    /// Median offset of full health, ms.
    pub healthy_ms: Option<f64>,
    /// Median offset of the target's return (restart, SIGCONT, partition healed), ms.
    #[serde(default)]
    pub restored_ms: Option<f64>,
    /// Tasks in the fault windows.
    pub tasks: u64,
    /// Never executed though accepted.
    pub lost: u64,
    /// Executed, result missing.
    pub result_lost: u64,
    /// Never confirmed.
    pub unconfirmed: u64,
    /// Executed more than once.
    pub duplicated: u64,
    /// Published again by the producer.
    pub republished: u64,
    /// Failed.
    pub failed: u64,
    /// Time HAProxy had two Redis masters UP at once, per repetition where it happened, ms.
    #[serde(default)]
    pub two_masters_ms: Option<Spread>,
    /// Repetitions with two Redis masters UP at once.
    #[serde(default)]
    pub two_masters_reps: usize,
    /// `READONLY` store errors (writes to a demoted master), over every repetition.
    #[serde(default)]
    pub readonly_errors: u64,
    /// Tasks that got a `READONLY` store error, over every repetition.
    #[serde(default)]
    pub readonly_tasks: u64,
    /// Longest first-to-last `READONLY` span of a repetition, ms.
    #[serde(default)]
    pub readonly_for_ms: Option<f64>,
    /// Results hab saw that Redis no longer held at the end, over every repetition.
    #[serde(default)]
    pub result_vanished: u64,
    /// Client-side failover on the faulted part's path (topology `[clients]`): no proxy
    /// switch phase; `rediscover_ms` instead.
    #[serde(default)]
    pub client_side: bool,
    /// Client-side failover: median offset of the first rediscovery (another broker
    /// node tried, a new master named by the Sentinels), ms.
    #[serde(default)]
    pub rediscover_ms: Option<f64>,
    /// `NOREPLICAS` store errors (writes refused by `min-replicas-to-write`), over
    /// every repetition.
    #[serde(default)]
    pub noreplicas_errors: u64,
    /// Tasks that got a `NOREPLICAS` store error, over every repetition.
    #[serde(default)]
    pub noreplicas_tasks: u64,
    /// Partition of a broker node: median offset at which `pause_minority` paused it, ms.
    #[serde(default)]
    pub paused_ms: Option<f64>,
    /// Median offset at which the paused node opened its listener again, ms.
    #[serde(default)]
    pub resumed_ms: Option<f64>,
    /// Anatomy phases seen out of order ([`crate::metrics::failover::phase_order`]: after
    /// the switch time, or before an earlier phase), by name, with the number of
    /// repetitions they were out of order in. Empty when every repetition was ordered.
    #[serde(default)]
    pub out_of_order: BTreeMap<String, usize>,
}

impl FaultSummary {
    /// The phases out of order with their repetitions, in the anatomy's order
    /// (`proxy up 1/2, reconnect 2/2`); empty when every repetition was ordered.
    pub fn out_of_order_text(&self) -> String {
        let order = |name: &str| {
            crate::metrics::failover::PHASES
                .iter()
                .position(|p| *p == name)
                .unwrap_or(2) // `rediscover` takes proxy up's place
        };
        let mut phases: Vec<(&String, &usize)> = self.out_of_order.iter().collect();
        phases.sort_by_key(|(name, _)| order(name));
        phases
            .iter()
            .map(|(name, n)| format!("{name} {n}/{}", self.applied))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The earliest of the detection offsets of a failover row, ms.
pub fn detect_ms(r: &FailoverRow) -> Option<f64> {
    [
        r.first_client_error_ms,
        r.sentinel_sdown_ms,
        r.proxy_down_ms,
    ]
    .into_iter()
    .flatten()
    .reduce(f64::min)
}

/// The promotion offset of a failover row (Sentinel's switch or a new queue leader), ms.
pub fn promote_ms(r: &FailoverRow) -> Option<f64> {
    r.sentinel_switch_ms.or(r.queue_leader_ms)
}

fn median_of(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    crate::metrics::stats::median(values.into_iter().flatten())
}

/// The faults of one topology over all its runs, in the order they first fired.
pub(super) fn fault_summaries(t: &TopologyRuns) -> Vec<FaultSummary> {
    // (workload, target, kind) in the order they first fired.
    let mut keys: Vec<(String, String, String)> = Vec::new();
    let rows: Vec<&FailoverRow> = t.runs.iter().flat_map(|r| &r.report.failover).collect();
    for r in &rows {
        let k = (r.workload.clone(), r.target.clone(), r.kind.clone());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(workload, target, kind)| {
            let all: Vec<&FailoverRow> = rows
                .iter()
                .copied()
                .filter(|r| r.workload == workload && r.target == target && r.kind == kind)
                .collect();
            let applied: Vec<&FailoverRow> = all
                .iter()
                .copied()
                .filter(|r| r.not_applied.is_empty())
                .collect();
            let not_applied = (applied.is_empty())
                .then(|| all.first().map(|r| r.not_applied.clone()))
                .flatten();
            let unapplied = match applied.is_empty() {
                true => Vec::new(),
                false => all
                    .iter()
                    .filter(|r| !r.not_applied.is_empty())
                    .map(|r| r.not_applied.clone())
                    .collect(),
            };
            let sum =
                |f: &dyn Fn(&FailoverRow) -> u64| -> u64 { applied.iter().map(|r| f(r)).sum() };
            FaultSummary {
                topology: t.name.clone(),
                applied: applied.len(),
                not_applied,
                unapplied,
                switch_ms: Spread::of(applied.iter().filter_map(|r| r.switch_time_ms)),
                no_completion: applied
                    .iter()
                    .filter(|r| r.switch_time_ms.is_none())
                    .count(),
                outage_ms: Spread::of(applied.iter().filter_map(|r| r.outage_ms)),
                detect_ms: median_of(applied.iter().map(|r| detect_ms(r))),
                promote_ms: median_of(applied.iter().map(|r| promote_ms(r))),
                proxy_up_ms: median_of(applied.iter().map(|r| r.proxy_up_ms)),
                reconnect_ms: median_of(applied.iter().map(|r| r.client_reconnected_ms)),
                healthy_ms: median_of(applied.iter().map(|r| r.healthy_ms)),
                restored_ms: median_of(applied.iter().map(|r| r.restored_ms)),
                tasks: sum(&|r| r.tasks),
                lost: sum(&|r| r.lost),
                result_lost: sum(&|r| r.result_lost),
                unconfirmed: sum(&|r| r.unconfirmed),
                duplicated: sum(&|r| r.duplicated),
                republished: sum(&|r| r.republished),
                failed: sum(&|r| r.failed),
                two_masters_ms: Spread::of(applied.iter().filter_map(|r| r.two_masters_ms)),
                two_masters_reps: applied
                    .iter()
                    .filter(|r| r.two_masters_ms.is_some())
                    .count(),
                readonly_errors: sum(&|r| r.readonly_errors),
                readonly_tasks: sum(&|r| r.readonly_tasks),
                readonly_for_ms: applied
                    .iter()
                    .filter_map(|r| r.readonly_for_ms)
                    .reduce(f64::max),
                result_vanished: sum(&|r| r.result_vanished.unwrap_or(0)),
                client_side: applied.iter().any(|r| r.client_side),
                rediscover_ms: median_of(applied.iter().map(|r| r.client_rediscovered_ms)),
                noreplicas_errors: sum(&|r| r.noreplicas_errors),
                noreplicas_tasks: sum(&|r| r.noreplicas_tasks),
                paused_ms: median_of(applied.iter().map(|r| r.broker_paused_ms)),
                resumed_ms: median_of(applied.iter().map(|r| r.broker_resumed_ms)),
                out_of_order: {
                    let mut phases = BTreeMap::new();
                    for r in &applied {
                        for p in crate::metrics::failover::phase_order(r).out_of_order {
                            *phases.entry(p.to_string()).or_insert(0) += 1;
                        }
                    }
                    phases
                },
                workload,
                target,
                kind,
            }
        })
        .collect()
}
