//! Run reports built in code for the tests of compare, report and chart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::ledger::OutcomeCounts;
use crate::metrics::LatencyHistogram;
use crate::metrics::failover::FailoverRow;
use crate::metrics::summary::WorkloadReport;
use crate::metrics::timeline::TimelineRow;
use crate::record::{Machine, RunReport, RunStatus};

use crate::record::{LoadedRun, RunSet, TopologyRuns};

/// A workload report whose latencies are `latencies_us` (every task ok); the other stages
/// are a quarter of it.
pub fn workload(name: &str, latencies_us: &[i64], throughput: f64) -> WorkloadReport {
    workload_with_stages(
        name,
        "hab.trivial",
        latencies_us,
        throughput,
        [
            ("latency", 1),
            ("publish", 4),
            ("queue_wait", 4),
            ("service", 4),
            ("result_delay", 4),
            ("schedule_lag", 4),
        ],
    )
}

/// A workload report of `task` whose end-to-end latencies are `latencies_us` (every task
/// ok), each stage of `divisors` recording them divided by its number.
pub fn workload_with_stages(
    name: &str,
    task: &str,
    latencies_us: &[i64],
    throughput: f64,
    divisors: [(&str, i64); 6],
) -> WorkloadReport {
    let mut stages = BTreeMap::new();
    let mut histograms = BTreeMap::new();
    for (stage, div) in divisors {
        let mut s = LatencyHistogram::new();
        for &l in latencies_us {
            s.record(l / div);
        }
        stages.insert(stage.to_string(), s.stats());
        histograms.insert(stage.to_string(), s.to_base64());
    }
    let n = latencies_us.len() as u64;
    WorkloadReport {
        name: name.into(),
        task: task.into(),
        counts: OutcomeCounts {
            count: n,
            ok: n,
            ..Default::default()
        },
        republished: 0,
        seen_by_read: 0,
        wall_s: n as f64 / throughput,
        throughput_per_s: throughput,
        stages,
        histograms,
        negative_intervals: BTreeMap::new(),
        repetitions: Vec::new(),
        throughput_spread: None,
        cpu: None,
    }
}

/// A failover row of `workload` with the given switch time (ms).
pub fn fault(workload: &str, target: &str, rep: u32, switch_ms: Option<f64>) -> FailoverRow {
    FailoverRow {
        workload: workload.into(),
        target: target.into(),
        resolved: format!("{target}[0]"),
        kind: "kill".into(),
        repetition: rep,
        fault_at_unix_ms: 1_800_000_010_000 + rep as i64 * 12_000,
        first_client_error_ms: Some(5.0),
        proxy_down_ms: Some(60.0),
        proxy_up_ms: Some(70.0),
        client_reconnected_ms: Some(80.0),
        restored_ms: Some(5000.0),
        healthy_ms: Some(9000.0),
        switch_time_ms: switch_ms,
        outage_ms: switch_ms.map(|s| s + 10.0),
        duplicated: 1,
        republished: 2,
        tasks: 100,
        ..Default::default()
    }
}

/// A complete run of `topology` with these workloads and failover rows.
pub fn run(
    topology: &str,
    started: i64,
    workloads: Vec<WorkloadReport>,
    failover: Vec<FailoverRow>,
) -> RunReport {
    let timeline = (0..20)
        .map(|s| TimelineRow {
            second: s,
            unix_s: 1_800_000_000 + s,
            workload: workloads
                .first()
                .map(|w| w.name.clone())
                .unwrap_or_default(),
            published: 100,
            ok: if s == 11 { 0 } else { 100 },
            failed: 0,
            client_errors: u64::from(s == 10),
            p50_us: (s != 11).then_some(1_000),
            p99_us: (s != 11).then_some(5_000),
            max_us: (s != 11).then_some(9_000),
            ..Default::default()
        })
        .collect();
    let ok_total = workloads.iter().map(|w| w.counts.ok).sum();
    RunReport {
        hab_version: "0.1.0".into(),
        status: RunStatus::Complete,
        name: format!("{topology}-fixture"),
        started_unix_ms: started,
        finished_unix_ms: Some(started + 60_000),
        topology_file: format!("topologies/{topology}.toml"),
        workload_file: "workloads/fixture.toml".into(),
        topology: serde_json::json!({"name": topology, "proxy": null, "broker": {"nodes": 1}}),
        workload_plan: serde_json::json!({"name": "fixture"}),
        machine: Machine {
            cores: 2,
            memory_bytes: 24 << 30,
            kernel: "6.1".into(),
        },
        versions: [("rabbitmq".to_string(), "3.10.8".to_string())].into(),
        bringup_ms: Some(4500),
        workers_ready_ms: Some(50),
        workloads,
        failover,
        final_state: Some(crate::record::FinalState {
            queue_ready: 0,
            queue_consumers: 1,
            result_keys: ok_total,
        }),
        timeline,
        ..Default::default()
    }
}

/// standalone (1 run) and ha (2 runs): workloads `trivial` and `broker_kill`; ha is
/// slower and has faults that switch in 100 / 300 ms; standalone's switch in 9 s.
pub fn run_set() -> RunSet {
    let lat = |base: i64| -> Vec<i64> { (1..=100).map(|i| base * i).collect() };
    let mut standalone = run(
        "standalone",
        1_000,
        vec![
            workload("trivial", &lat(1_000), 5_000.0),
            workload("broker_kill", &lat(100), 200.0),
        ],
        vec![fault("broker_kill", "broker.primary", 0, Some(9_000.0))],
    );
    // A Redis restart without persistence: the backend kept only 50 of 200 results.
    standalone.final_state.as_mut().unwrap().result_keys = 50;
    let ha = |started, tp: f64, switch| {
        let mut not_applicable = fault("broker_kill", "backend.replica", 0, None);
        not_applicable.not_applied = "the topology has no Redis replica".into();
        run(
            "ha",
            started,
            vec![
                workload("trivial", &lat(2_000), tp),
                workload("broker_kill", &lat(120), 199.0),
            ],
            vec![
                fault("broker_kill", "broker.primary", 0, Some(switch)),
                not_applicable,
            ],
        )
    };
    let loaded = |report: RunReport| LoadedRun {
        dir: PathBuf::from(format!("/tmp/{}-{}", report.name, report.started_unix_ms)),
        report,
    };
    RunSet {
        baseline: "standalone".into(),
        topologies: vec![
            TopologyRuns {
                name: "standalone".into(),
                file: "topologies/standalone.toml".into(),
                runs: vec![loaded(standalone)],
            },
            TopologyRuns {
                name: "ha".into(),
                file: "topologies/ha.toml".into(),
                runs: vec![
                    loaded(ha(2_000, 2_000.0, 100.0)),
                    loaded(ha(3_000, 3_000.0, 300.0)),
                ],
            },
        ],
    }
}
