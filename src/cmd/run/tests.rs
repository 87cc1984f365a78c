use serde_json::json;
use uuid::Uuid;

use super::{schedule_lag_warning, task_call};
use crate::config::{ArrivalKind, TaskSpec, Workload};
use crate::metrics::WorkloadMetrics;

#[test]
fn task_calls_carry_the_seed_arguments() {
    let id = Uuid::nil();
    assert_eq!(
        task_call(&TaskSpec::Trivial, &id),
        ("hab.trivial", json!([]))
    );
    assert_eq!(
        task_call(&TaskSpec::Sleep { seconds: 10.0 }, &id),
        ("hab.sleep", json!([10.0]))
    );
    assert_eq!(
        task_call(&TaskSpec::Factorial { n: 100000 }, &id),
        ("hab.factorial", json!([100000]))
    );
    let (name, args) = task_call(
        &TaskSpec::WriteZeros {
            bytes: 1_000_000_000,
        },
        &id,
    );
    assert_eq!(name, "hab.write_zeros");
    // A name inside the worker's scratch directory, never a path of the producer's.
    assert_eq!(
        args,
        json!([format!("hab-zeros-{id}.bin"), 1_000_000_000u64])
    );
}

#[test]
fn schedule_lag_is_warned_about_only_for_rate_workloads_that_fell_behind() {
    let mut w = Workload {
        arrival: ArrivalKind::Rate,
        rate_per_s: Some(2000.0),
        ..Workload::burst("r", TaskSpec::Trivial, 10)
    };
    let mut lag = crate::metrics::LatencyHistogram::new();
    lag.record(300);
    let mut m = WorkloadMetrics::from_tasks("r", "hab.trivial", &[]);
    m.stages.schedule_lag = lag.clone();
    assert_eq!(schedule_lag_warning(&w, &m.report()), None);
    lag.record(5_000);
    lag.record(5_000);
    m.stages.schedule_lag = lag;
    let warning = schedule_lag_warning(&w, &m.report()).unwrap();
    assert!(warning.contains("fell behind 2000/s"), "{warning}");
    w.arrival = ArrivalKind::Burst;
    assert_eq!(schedule_lag_warning(&w, &m.report()), None);
}

#[test]
fn run_json_says_where_topology_and_workload_came_from() {
    use std::sync::Arc;
    let t = crate::config::load_topology("builtin:standalone.toml".as_ref()).unwrap();
    let plan = crate::config::load_workload_plan("builtin:smoke.toml".as_ref()).unwrap();
    let opts = super::RunOptions {
        topology_path: "builtin:standalone.toml".into(),
        workload_path: "my/smoke.toml".into(),
        out_dir: "results".into(),
        progress: false,
        calibrate: None,
        allow_flush: false,
        allow_faults: false,
        shard: None,
        start: None,
        reporter: Arc::new(crate::progress::Silent),
    };
    let r = super::analyse::first_report(&opts, &t, &plan).unwrap();
    assert_eq!(r.topology_file, "standalone.toml");
    assert_eq!(
        r.topology_source.as_deref(),
        Some("builtin:standalone.toml")
    );
    assert_eq!(r.workload_file, "my/smoke.toml");
    assert_eq!(r.workload_source.as_deref(), Some("my/smoke.toml"));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["topology_source"], "builtin:standalone.toml");
    // run.json of older versions has no source: it still loads, and says nothing.
    let mut old = json.clone();
    let o = old.as_object_mut().unwrap();
    o.remove("topology_source");
    o.remove("workload_source");
    let back: crate::record::RunReport = serde_json::from_value(old.clone()).unwrap();
    assert_eq!(back.topology_source, None);
    assert_eq!(serde_json::to_value(&back).unwrap(), old);
}
