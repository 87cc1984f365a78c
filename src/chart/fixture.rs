//! Test fixtures: run sets built in code (no servers, no files).

use std::path::PathBuf;

use crate::metrics::failover::FailoverRow;
use crate::metrics::timeline::TimelineRow;
use crate::record::RunReport;
use crate::record::{LoadedRun, RunSet, TopologyRuns};

/// The first bytes of every PNG file.
pub(crate) const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The text of every `<text>` element of an SVG, trimmed, in document order.
pub(crate) fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_string())
        })
        .collect()
}

/// How many `<text>` elements of `svg` say exactly `text`.
pub(crate) fn count_text(svg: &str, text: &str) -> usize {
    svg_texts(svg).iter().filter(|t| *t == text).count()
}

/// Unix second the fixture timelines start at.
pub(crate) const T0_S: i64 = 1_800_000_000;

/// Builds one run.json.
pub(crate) struct RunBuilder {
    report: RunReport,
}

impl RunBuilder {
    pub(crate) fn new(topology: &str) -> Self {
        RunBuilder {
            report: RunReport {
                name: format!("{topology}-fixture"),
                started_unix_ms: T0_S * 1000,
                finished_unix_ms: None,
                topology_file: format!("topologies/{topology}.toml"),
                workload_file: "workloads/fixture.toml".into(),
                topology: serde_json::json!({ "name": topology }),
                workload_plan: serde_json::json!({ "name": "fixture" }),
                bringup_ms: None,
                workers_ready_ms: None,
                ..crate::record::tests_support::empty_report()
            },
        }
    }

    /// A workload whose end-to-end latencies are `latencies_us`; the other stages are
    /// fixed fractions of it (publish 1/10, queue wait 1/2, service 1/4, result delay 1/8).
    pub(crate) fn workload(mut self, name: &str, latencies_us: &[i64], throughput: f64) -> Self {
        self.report
            .workloads
            .push(crate::compare::fixture::workload_with_stages(
                name,
                &format!("hab.{name}"),
                latencies_us,
                throughput,
                [
                    ("latency", 1),
                    ("publish", 10),
                    ("queue_wait", 2),
                    ("service", 4),
                    ("result_delay", 8),
                    ("schedule_lag", 100),
                ],
            ));
        self
    }

    pub(crate) fn fault(mut self, row: FailoverRow) -> Self {
        self.report.failover.push(row);
        self
    }

    /// A timeline of `seconds` seconds at `ok` completions per second, workload `first`
    /// then `second` from the middle on; nothing completes in the two seconds after each
    /// fault already added, and one task fails in the second after it.
    pub(crate) fn timeline(mut self, seconds: i64, ok: u64, first: &str, second: &str) -> Self {
        let fault_s: Vec<i64> = self
            .report
            .failover
            .iter()
            .map(|f| f.fault_at_unix_ms.div_euclid(1000) - T0_S)
            .collect();
        self.report.timeline = (0..seconds)
            .map(|s| {
                let down = fault_s.iter().any(|&f| s > f && s <= f + 2);
                let ok = if down { 0 } else { ok };
                let p99 = (ok > 0).then_some(2_000 + 1_000 * (s as u64 % 3));
                TimelineRow {
                    second: s,
                    unix_s: T0_S + s,
                    workload: if s < seconds / 2 { first } else { second }.into(),
                    published: 300,
                    ok,
                    failed: u64::from(fault_s.iter().any(|&f| s == f + 1)),
                    client_errors: u64::from(down),
                    p50_us: p99.map(|p| p / 4),
                    p99_us: p99,
                    max_us: p99.map(|p| p * 2),
                    ..Default::default()
                }
            })
            .collect();
        self
    }

    pub(crate) fn build(self, k: usize) -> LoadedRun {
        LoadedRun {
            dir: PathBuf::from(format!("/nonexistent/{}-{k}", self.report.name)),
            report: self.report,
        }
    }
}

/// A failover row with every phase absent.
pub(crate) fn row(
    workload: &str,
    target: &str,
    kind: &str,
    repetition: u32,
    at_s: i64,
) -> FailoverRow {
    FailoverRow {
        workload: workload.into(),
        target: target.into(),
        resolved: format!("{target}[0]"),
        kind: kind.into(),
        repetition,
        fault_at_unix_ms: (T0_S + at_s) * 1000 + 200,
        ..Default::default()
    }
}

/// A standalone broker kill: the broker comes back after its restart.
fn standalone_kill(rep: u32, at_s: i64, jitter: f64) -> FailoverRow {
    FailoverRow {
        first_client_error_ms: Some(10.0),
        proxy_down_ms: Some(2000.0),
        proxy_up_ms: Some(5200.0 + jitter),
        client_reconnected_ms: Some(5400.0 + jitter),
        restored_ms: Some(5000.0),
        healthy_ms: Some(8000.0 + jitter),
        switch_time_ms: Some(5600.0 + jitter),
        outage_ms: Some(5700.0 + jitter),
        lost: 3,
        ..row("trivial", "broker.primary", "kill", rep, at_s)
    }
}

/// An HA broker kill: the queue leader moves; the client reconnects before HAProxy marks
/// the new route UP (out of order).
fn ha_kill(rep: u32, at_s: i64, jitter: f64) -> FailoverRow {
    FailoverRow {
        first_client_error_ms: Some(15.0),
        proxy_down_ms: Some(300.0),
        queue_leader_ms: Some(900.0 + jitter),
        proxy_up_ms: Some(1200.0 + jitter),
        client_reconnected_ms: Some(1100.0 + jitter),
        restored_ms: Some(5000.0),
        healthy_ms: Some(9000.0),
        switch_time_ms: Some(1500.0 + jitter),
        outage_ms: Some(1600.0 + jitter),
        ..row("trivial", "broker.primary", "kill", rep, at_s)
    }
}

/// A backend replica kill on HA: nothing observed, no task completed after it.
fn ha_replica_kill(at_s: i64) -> FailoverRow {
    FailoverRow {
        healthy_ms: Some(3000.0),
        ..row("trivial", "backend.replica", "kill", 0, at_s)
    }
}

fn latencies(n: i64, scale: i64) -> Vec<i64> {
    (1..=n).map(|i| i * scale).collect()
}

/// Builders of whole run sets.
pub(crate) struct RunSetBuilder;

impl RunSetBuilder {
    /// standalone (one run) and ha (two runs); workloads trivial and sleepy; broker.primary
    /// kill twice per run, backend.replica kill once per run (not applied on standalone).
    pub(crate) fn two_topologies_with_faults() -> RunSet {
        let mut replica_na = row("trivial", "backend.replica", "kill", 0, 40);
        replica_na.not_applied = "no backend.replica on this topology".into();
        let standalone = RunBuilder::new("standalone")
            .workload("trivial", &latencies(10_000, 1), 5_500.0)
            .workload("sleepy", &latencies(100, 1_000), 0.2)
            .fault(standalone_kill(0, 10, 0.0))
            .fault(standalone_kill(1, 30, 0.0))
            .fault(replica_na)
            .timeline(60, 300, "trivial", "sleepy")
            .build(0);
        let ha = |k: usize, throughput: f64, jitter: f64| {
            RunBuilder::new("ha")
                .workload("trivial", &latencies(10_000, 3), throughput)
                .workload("sleepy", &latencies(100, 1_100), 0.19)
                .fault(ha_kill(0, 10, jitter))
                .fault(ha_kill(1, 30, -jitter))
                .fault(ha_replica_kill(40))
                .timeline(60, 300, "trivial", "sleepy")
                .build(k)
        };
        RunSet {
            baseline: "standalone".into(),
            topologies: vec![
                TopologyRuns {
                    name: "standalone".into(),
                    file: "topologies/standalone.toml".into(),
                    runs: vec![standalone],
                },
                TopologyRuns {
                    name: "ha".into(),
                    file: "topologies/ha.toml".into(),
                    runs: vec![ha(0, 2_300.0, 100.0), ha(1, 2_500.0, 200.0)],
                },
            ],
        }
    }

    /// standalone and ha, one run each, workload trivial only, no faults.
    pub(crate) fn two_topologies_without_faults() -> RunSet {
        let run = |t: &str, scale: i64, throughput: f64| TopologyRuns {
            name: t.into(),
            file: format!("topologies/{t}.toml"),
            runs: vec![
                RunBuilder::new(t)
                    .workload("trivial", &latencies(2_000, scale), throughput)
                    .timeline(20, 200, "trivial", "trivial")
                    .build(0),
            ],
        };
        RunSet {
            baseline: "standalone".into(),
            topologies: vec![run("standalone", 1, 5_500.0), run("ha", 2, 2_300.0)],
        }
    }
}

/// Deterministic pseudo-random numbers in (0, 1) (a linear congruential generator).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

impl RunSetBuilder {
    /// A run set the size of `workloads/failover.toml` on three topologies: six workloads
    /// of 100 s with five faults each, long-tailed latencies, 600 s timelines. For looking
    /// at the charts (`dump_fixture_charts`).
    pub(crate) fn failover_plan() -> RunSet {
        let faults = [
            ("broker_primary_kill", "broker.primary", "kill"),
            ("broker_primary_pause", "broker.primary", "pause"),
            ("broker_primary_stop", "broker.primary", "stop"),
            ("broker_queue_leader_kill", "broker.queue_leader", "kill"),
            ("backend_master_kill", "backend.master", "kill"),
            ("backend_master_pause", "backend.master", "pause"),
        ];
        let topology = |name: &str, slow: f64, seed: u64| {
            let mut rng = Lcg(seed);
            let mut b = RunBuilder::new(name);
            let mut timeline = Vec::new();
            for (wi, (w, target, kind)) in faults.iter().enumerate() {
                let lat: Vec<i64> = (0..29_000)
                    .map(|_| (slow * 1_500.0 * (1.0 - rng.next().ln()).powi(3)) as i64)
                    .collect();
                b = b.workload(w, &lat, 290.0 / slow.sqrt());
                let standalone = name == "standalone";
                let applies = !(standalone && *target == "broker.queue_leader");
                for r in 0..5 {
                    let at_s = wi as i64 * 100 + 5 + 20 * r;
                    let j = rng.next();
                    let mut f = row(w, target, kind, r as u32, at_s);
                    if !applies {
                        f.not_applied = "role absent".into();
                    } else if standalone {
                        f.first_client_error_ms = Some(5.0 + 10.0 * j);
                        f.proxy_down_ms = Some(2_000.0 + 500.0 * j);
                        f.proxy_up_ms = Some(5_300.0 + 400.0 * j);
                        f.client_reconnected_ms = Some(5_500.0 + 400.0 * j);
                        f.switch_time_ms =
                            (*kind != "pause" || r < 4).then_some(5_800.0 + 600.0 * j);
                        f.outage_ms = f.switch_time_ms.map(|s| s + 100.0);
                        f.healthy_ms = Some(9_000.0);
                    } else {
                        f.first_client_error_ms = Some(10.0 + 30.0 * j);
                        f.sentinel_sdown_ms =
                            target.starts_with("backend").then_some(5_000.0 + 200.0 * j);
                        f.sentinel_switch_ms =
                            target.starts_with("backend").then_some(5_900.0 + 300.0 * j);
                        f.queue_leader_ms =
                            target.starts_with("broker").then_some(400.0 + 800.0 * j);
                        f.proxy_down_ms = Some(1_500.0 + 300.0 * j);
                        f.proxy_up_ms = Some(1_900.0 + 900.0 * j);
                        f.client_reconnected_ms = Some(1_700.0 + 1_500.0 * j);
                        f.switch_time_ms = Some(
                            2_300.0
                                + 1_200.0 * j
                                + if target.starts_with("backend") {
                                    4_500.0
                                } else {
                                    0.0
                                },
                        );
                        f.outage_ms = f.switch_time_ms.map(|s| s + 300.0);
                        f.healthy_ms = Some(12_000.0 + 3_000.0 * j);
                    }
                    b = b.fault(f);
                }
                for s in 0..100 {
                    let sec = wi as i64 * 100 + s;
                    let since_fault = (s - 5).rem_euclid(20);
                    let down =
                        applies && (1..=if standalone { 6 } else { 3 }).contains(&since_fault);
                    let ok = if down { 0 } else { 300 };
                    let p99 = (!down).then(|| {
                        let spike = if applies && since_fault <= 8 {
                            800_000.0
                        } else {
                            0.0
                        };
                        (slow * 4_000.0 * (1.0 + rng.next()) + spike) as u64
                    });
                    timeline.push(TimelineRow {
                        second: sec,
                        unix_s: T0_S + sec,
                        workload: w.to_string(),
                        published: 300,
                        ok,
                        failed: u64::from(applies && since_fault == 7),
                        client_errors: u64::from(down),
                        p50_us: p99.map(|p| p / 3),
                        p99_us: p99,
                        max_us: p99,
                        ..Default::default()
                    });
                }
            }
            let mut run = b.build(0);
            run.report.timeline = timeline;
            TopologyRuns {
                name: name.into(),
                file: format!("topologies/{name}.toml"),
                runs: vec![run],
            }
        };
        RunSet {
            baseline: "standalone".into(),
            topologies: vec![
                topology("standalone", 1.0, 1),
                topology("ha", 2.2, 2),
                topology("ha-mirrored", 2.9, 3),
            ],
        }
    }
}
