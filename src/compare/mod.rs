//! `hab compare`'s analysis, pure functions of the run directories read back
//! ([`crate::record::RunSet`]) and their metrics: the comparison with ratios to the baseline
//! ([`summary`]) and each fault over its repetitions ([`faults`]), what it found in words ([`findings`]), the limits a comparison may be held
//! to ([`thresholds`]), idle-timeout and producer-outage tables ([`idle`], [`outage`], built
//! alike by [`matrix`]) and the
//! terminal summary ([`terminal`]). Running the topologies is [`crate::cmd::compare`].

pub mod faults;
pub mod findings;
pub mod idle;
pub mod matrix;
pub mod outage;
pub mod summary;
pub mod sweep;
pub mod terminal;
pub mod thresholds;
pub mod timing;
pub mod verdict;

use std::path::Path;

use serde::Serialize;

pub use summary::Comparison;
pub use thresholds::{Crossed, Thresholds};

/// Summary printed by `--json`: the comparison and the thresholds crossed.
#[derive(Debug, Serialize)]
pub struct JsonSummary<'a> {
    /// The comparison directory.
    pub dir: &'a Path,
    /// Whether every run completed.
    pub complete: bool,
    /// The comparison.
    pub comparison: &'a Comparison,
    /// The thresholds asked for.
    pub thresholds: &'a Thresholds,
    /// The thresholds crossed (empty: all held).
    pub crossed: &'a [Crossed],
}

#[cfg(test)]
pub mod fixture;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_has;

    #[test]
    fn ratios_are_to_the_baseline_medians_and_merged_histograms() {
        let c = Comparison::from_runs(&fixture::run_set()).unwrap();
        assert_eq!(c.baseline, "standalone");
        let trivial = &c.workloads[0];
        assert_eq!(trivial.name, "trivial");
        let base = &trivial.rows[0];
        let ha = &trivial.rows[1];
        assert_eq!(
            (base.topology.as_str(), ha.topology.as_str()),
            ("standalone", "ha")
        );
        assert_eq!(base.throughput_ratio, Some(1.0));
        // ha: median of 2,000 and 3,000 = 2,500 → 0.5 of 5,000.
        assert_eq!(ha.throughput_per_s.median, 2_500.0);
        assert_eq!(ha.throughput_ratio, Some(0.5));
        assert_eq!(ha.repetitions, 2);
        assert_eq!(ha.count, 200);
        // Two runs of 1..100 × 2 ms merged: p99 ≈ 198 ms vs 99 ms → 2×.
        let p99 = ha.p99_ratio.unwrap();
        assert!((p99 - 2.0).abs() < 0.01, "{p99}");
        assert_eq!(ha.latency.count, 200);
        assert!(ha.stage_p50_us.contains_key("queue_wait"));
    }

    #[test]
    fn repetitions_within_runs_compose_with_runs_into_one_spread() {
        // ha's two runs each ran trivial three times: throughputs 1,000/2,000/3,000 and
        // 4,000/5,000/6,000 tasks/s, the repetition's p50 = its throughput in µs.
        let mut set = fixture::run_set();
        for (k, run) in set.topologies[1].runs.iter_mut().enumerate() {
            let w = &mut run.report.workloads[0];
            assert_eq!(w.name, "trivial");
            w.repetitions = (1..=3)
                .map(|rep| {
                    let tp = 1_000.0 * (3 * k as u32 + rep) as f64;
                    crate::metrics::summary::RepetitionReport {
                        repetition: rep,
                        counts: crate::ledger::OutcomeCounts {
                            count: 10,
                            ok: 10,
                            ..Default::default()
                        },
                        seen_by_read: 0,
                        wall_s: 10.0 / tp,
                        throughput_per_s: tp,
                        latency: crate::metrics::LatencyStats {
                            count: 10,
                            p50_us: tp as u64,
                            p99_us: 2 * tp as u64,
                            ..Default::default()
                        },
                    }
                })
                .collect();
        }
        let c = Comparison::from_runs(&set).unwrap();
        let rows = &c.workloads[0].rows;
        let ha = rows.iter().find(|r| r.topology == "ha").unwrap();
        assert_eq!((ha.repetitions, ha.repeat), (2, 3));
        let t = ha.throughput_per_s;
        assert_eq!(
            (t.median, t.min, t.max, t.n),
            (3_500.0, 1_000.0, 6_000.0, 6)
        );
        let p50 = ha.p50_spread_us.unwrap();
        assert_eq!(
            (p50.median, p50.min, p50.max, p50.n),
            (3_500.0, 1_000.0, 6_000.0, 6)
        );
        assert_eq!(ha.p99_spread_us.unwrap().max, 12_000.0);
        let reps: Vec<(usize, u32)> = ha
            .per_repetition
            .iter()
            .map(|r| (r.run, r.repetition))
            .collect();
        assert_eq!(reps, [(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]);
        // The baseline ran once, without repetitions (a run.json of before): one sample,
        // its own p50.
        let base = rows.iter().find(|r| r.topology == "standalone").unwrap();
        assert_eq!((base.repeat, base.throughput_per_s.n), (1, 1));
        assert_eq!(base.p50_spread_us.unwrap().n, 1);
        assert!(base.per_repetition.is_empty());
        // Ratios are to medians over runs × repetitions.
        assert_eq!(
            ha.throughput_ratio,
            Some(3_500.0 / base.throughput_per_s.median)
        );
    }

    #[test]
    fn faults_are_summarised_per_topology_with_spread_and_not_applicable() {
        let c = Comparison::from_runs(&fixture::run_set()).unwrap();
        assert_eq!(c.faults.len(), 3, "{:#?}", c.faults);
        let ha_kill = c
            .faults
            .iter()
            .find(|f| f.topology == "ha" && f.target == "broker.primary")
            .unwrap();
        assert_eq!(ha_kill.applied, 2);
        let s = ha_kill.switch_ms.unwrap();
        assert_eq!((s.median, s.min, s.max), (200.0, 100.0, 300.0));
        assert_eq!(ha_kill.duplicated, 2);
        assert_eq!(ha_kill.detect_ms, Some(5.0));
        let replica = c
            .faults
            .iter()
            .find(|f| f.target == "backend.replica")
            .unwrap();
        assert_eq!(replica.applied, 0);
        assert_eq!(
            replica.not_applied.as_deref(),
            Some("the topology has no Redis replica")
        );
        let text = c.findings.text();
        assert!(
            text.contains(
                "trivial (hab.trivial): ha ran 2500/s vs 5000/s on standalone (50% less throughput)"
            ),
            "{text}"
        );
        assert!(text.contains("broker.primary kill (broker_kill) on ha: tasks flowed again after 200.0ms (100.0ms–300.0ms, n=2)"), "{text}");
        assert_has(
            &text,
            &["not applicable — the topology has no Redis replica"],
        );
        assert_has(
            &text,
            &["ha: no task lost out of 400, 0 executed more than once."],
        );
        assert!(
            !text.contains("two Redis masters") && !text.contains("READONLY"),
            "{text}"
        );
    }

    #[test]
    fn stale_master_figures_reach_the_summary_the_findings_and_the_report() {
        let mut set = fixture::run_set();
        for (k, run) in set.topologies[1].runs.iter_mut().enumerate() {
            let row = &mut run.report.failover[0];
            row.two_masters_ms = Some(9_000.0 + 1_000.0 * k as f64);
            row.two_masters_from_ms = Some(3_000.0);
            row.readonly_errors = 10;
            row.readonly_tasks = 2;
            row.readonly_for_ms = Some(1_500.0 + k as f64);
            row.result_vanished = Some(7);
        }
        let c = Comparison::from_runs(&set).unwrap();
        let f = c
            .faults
            .iter()
            .find(|f| f.topology == "ha" && f.target == "broker.primary")
            .unwrap();
        assert_eq!(f.two_masters_reps, 2);
        assert_eq!(f.two_masters_ms.unwrap().max, 10_000.0);
        assert_eq!((f.readonly_errors, f.readonly_tasks), (20, 4));
        assert_eq!(f.readonly_for_ms, Some(1_501.0));
        let text = c.findings.text();
        assert_has(
            &text,
            &[
                "HAProxy had two Redis masters UP for 9.50s (9.00s–10.00s, n=2) (2 of 2 repetitions); 20 READONLY store errors on 4 tasks over 1.50s; 14 results hab saw were gone from Redis at the end",
            ],
        );
        // summary.json written before these fields existed still reads.
        let mut v = serde_json::to_value(f).unwrap();
        for k in [
            "two_masters_ms",
            "two_masters_reps",
            "readonly_errors",
            "readonly_tasks",
            "readonly_for_ms",
        ] {
            v.as_object_mut().unwrap().remove(k);
        }
        let old: faults::FaultSummary = serde_json::from_value(v).unwrap();
        assert_eq!((old.readonly_errors, old.two_masters_ms), (0, None));
    }

    #[test]
    fn a_repetition_not_applied_beside_applied_ones_is_named_not_averaged() {
        let mut set = fixture::run_set();
        let run = &mut set.topologies[1].runs[0].report;
        let mut failed = fixture::fault("broker_kill", "broker.primary", 1, Some(50.0));
        failed.kind = "failover".into();
        failed.target = "backend.master".into();
        failed.not_applied = "SENTINEL FAILOVER was accepted but no replica was promoted: \
                              no promotion within 15000 ms"
            .into();
        let mut promoted = fixture::fault("broker_kill", "backend.master", 0, Some(2_000.0));
        promoted.kind = "failover".into();
        run.failover.push(promoted);
        run.failover.push(failed);
        let c = Comparison::from_runs(&set).unwrap();
        let f = c
            .faults
            .iter()
            .find(|f| f.topology == "ha" && f.kind == "failover")
            .unwrap();
        // The one without a promotion is left out of the switch time, and named.
        assert_eq!((f.applied, f.not_applied.as_deref()), (1, None));
        assert_eq!(f.switch_ms.unwrap().max, 2_000.0);
        assert_eq!(f.unapplied.len(), 1);
        let text = c.findings.text();
        assert_has(
            &text,
            &[
                "; 1 more repetition not applied and left out of these figures (SENTINEL FAILOVER was accepted but no replica was promoted",
            ],
        );
        // summary.json written before the field existed still reads.
        let mut v = serde_json::to_value(f).unwrap();
        v.as_object_mut().unwrap().remove("unapplied");
        let old: faults::FaultSummary = serde_json::from_value(v).unwrap();
        assert!(old.unapplied.is_empty());
    }

    #[test]
    fn thresholds_name_what_crossed_them() {
        let c = Comparison::from_runs(&fixture::run_set()).unwrap();
        assert!(Thresholds::default().check(&c).is_empty());
        let t = Thresholds {
            max_p99_ratio: Some(1.5),
            min_throughput_ratio: Some(0.6),
            max_lost: Some(0),
            max_duplicated: None,
            max_switch_ms: Some(1_000.0),
            strict: true,
        };
        let crossed = t.check(&c);
        let names: Vec<_> = crossed
            .iter()
            .map(|x| {
                (
                    x.threshold.as_str(),
                    x.topology.as_str(),
                    x.subject.as_str(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("max-p99-ratio", "ha", "trivial"),
                ("min-throughput-ratio", "ha", "trivial"),
                (
                    "max-switch-time",
                    "standalone",
                    "broker.primary kill (broker_kill)"
                ),
            ]
        );
        assert!(
            crossed[0]
                .message
                .contains("trivial: ha p99 is 2.00× the baseline's (limit 1.5×)")
        );
        // The same limits loosened hold.
        let loose = Thresholds {
            max_p99_ratio: Some(3.0),
            min_throughput_ratio: Some(0.4),
            max_switch_ms: Some(10_000.0),
            ..t
        };
        assert!(loose.check(&c).is_empty(), "{:?}", loose.check(&c));
        // --strict: a run whose invariants failed crosses it, named.
        let mut bad = c.clone();
        bad.topologies[1]
            .invariants_violated
            .push("latency_count_equals_ok: workload trivial: …".into());
        let crossed = loose.check(&bad);
        assert_eq!(crossed.len(), 1, "{crossed:?}");
        assert_eq!(
            (crossed[0].threshold.as_str(), crossed[0].topology.as_str()),
            ("strict", "ha")
        );
        assert!(crossed[0].message.contains("latency_count_equals_ok"));
        let lenient = Thresholds {
            strict: false,
            ..loose
        };
        assert!(lenient.check(&bad).is_empty());
    }

    #[test]
    fn terminal_summary_has_a_row_per_topology_and_fault() {
        let c = Comparison::from_runs(&fixture::run_set()).unwrap();
        let text = terminal::render(&c);
        assert!(text.contains("trivial (hab.trivial)"), "{text}");
        let ha_row = text
            .lines()
            .find(|l| l.trim_start().starts_with("ha ") && l.contains("2500/s"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            ha_row.contains("0.50×") && ha_row.contains("2.00×"),
            "{ha_row}"
        );
        assert!(text.contains("standalone*"), "{text}");
        assert!(text.contains("200.0ms (100.0ms–300.0ms)"), "{text}");
        assert_has(
            &text,
            &["not applicable: the topology has no Redis replica"],
        );
        assert!(!text.contains("who was busy"), "no CPU sampled: no section");
        // A run that sampled CPU names each workload's busiest process.
        let mut set = fixture::run_set();
        let w = &mut set.topologies[1].runs[0].report.workloads[0];
        w.cpu = Some(crate::metrics::cpu::WorkloadCpu {
            window: Default::default(),
            busiest: None,
            summary: Some(
                "broker.node[0] at 98 % of a core: the broker limits this workload".into(),
            ),
        });
        let text = terminal::render(&Comparison::from_runs(&set).unwrap());
        assert_has(
            &text,
            &[
                "who was busy (each workload's busiest process, sampled every 100 ms):",
                "  trivial on ha: broker.node[0] at 98 % of a core: the broker limits this workload",
            ],
        );
    }
}
