//! Sweep directories built in code for the tests of the sweep's analysis, chart and
//! report: two knobs (`proxy.check_interval`, `backend.down_after`), two fault workloads
//! and a stall phase, the baseline at 5,000 tasks/s.

use std::path::Path;

use super::load::{LoadedCell, SweepRuns};
use super::{COST_WORKLOAD, STALL_WORKLOAD};
use crate::compare::fixture::{fault, run, workload};
use crate::config::sweep::{ApplyKind, FaultScope};
use crate::metrics::failover::FailoverRow;
use crate::record::sweep::{
    AppliedRecord, BaselineRecord, CellRecord, CellSetting, CellStatus, KnobRecord, ReadBack,
    SweepIndex, SweepStatus,
};
use crate::record::{LoadedRun, RunReport};

/// The fault workloads of the fixture, with their targets.
pub const FAULTS: [(&str, &str); 2] = [
    ("broker_primary_kill", "broker.primary"),
    ("backend_master_kill", "backend.master"),
];

/// The topology the fixture sweeps (an abridged `topologies/ha.toml`).
pub const TOPOLOGY: &str = include_str!("../../../topologies/ha.toml");

/// One cell to build.
#[derive(Debug, Clone)]
pub struct CellSpec {
    /// `proxy.check_interval` and `backend.down_after`.
    pub values: [&'static str; 2],
    /// Switch time of each repetition of each fault workload (in [`FAULTS`] order), ms.
    pub switch: [Vec<Option<f64>>; 2],
    /// Per stall pause: HAProxy marked a server DOWN, the Sentinels switched master.
    pub stall: Vec<(bool, bool)>,
    /// Throughput of the cost phase, tasks/s.
    pub throughput: f64,
    /// Tasks lost in the first fault workload.
    pub lost: u64,
    /// Tasks run twice in the first fault workload.
    pub duplicated: u64,
    /// How far it got.
    pub status: CellStatus,
    /// Workloads taken from the reference cell.
    pub from_reference: Vec<&'static str>,
}

impl CellSpec {
    /// A measured cell: both faults switching in `a` and `b` ms (three repetitions,
    /// ±100 ms), six stall pauses of which the first `ff` made HAProxy mark a server DOWN,
    /// the cost phase at `throughput`.
    pub fn new(values: [&'static str; 2], a: f64, b: f64, ff: usize, throughput: f64) -> Self {
        let reps = |m: f64| vec![Some(m - 100.0), Some(m), Some(m + 100.0)];
        CellSpec {
            values,
            switch: [reps(a), reps(b)],
            stall: (0..6).map(|i| (i < ff, false)).collect(),
            throughput,
            lost: 0,
            duplicated: 0,
            status: CellStatus::Measured,
            from_reference: Vec::new(),
        }
    }
}

/// Reference (2.4 s headline, no false failover), a faster HAProxy check that fails over
/// under the stall phase, a slower one, a shorter down-after that beats the reference on
/// every count, and the aggressive corner (fastest, 4 false failovers).
pub fn five() -> Vec<CellSpec> {
    vec![
        CellSpec::new(["250ms", "1s"], 1_500.0, 2_400.0, 0, 4_400.0),
        CellSpec::new(["50ms", "1s"], 500.0, 2_300.0, 2, 4_300.0),
        CellSpec::new(["2s", "1s"], 3_000.0, 2_500.0, 0, 4_450.0),
        CellSpec::new(["250ms", "200ms"], 1_500.0, 900.0, 0, 4_350.0),
        CellSpec::new(["50ms", "200ms"], 500.0, 800.0, 4, 4_200.0),
    ]
}

/// The knobs of the fixture.
pub fn knobs() -> Vec<KnobRecord> {
    vec![
        KnobRecord {
            key: "proxy.check_interval".into(),
            current: "250ms".into(),
            values: vec!["50ms".into(), "250ms".into(), "2s".into()],
            apply: ApplyKind::ProxyReload,
            affects: FaultScope::Both,
        },
        KnobRecord {
            key: "backend.down_after".into(),
            current: "1s".into(),
            values: vec!["200ms".into(), "1s".into(), "5s".into()],
            apply: ApplyKind::SentinelSet,
            affects: FaultScope::Backend,
        },
    ]
}

fn latencies(base_us: i64) -> Vec<i64> {
    (1..=100).map(|i| base_us * i).collect()
}

/// A stall pause: `down` HAProxy marked the paused node DOWN, `switch` the Sentinels
/// switched the master. A pause with `down` alone pauses the broker (HAProxy sends its
/// clients to another node: a false failover); the others alternate between the sides.
fn stall_row(i: usize, (down, switch): (bool, bool)) -> FailoverRow {
    FailoverRow {
        workload: STALL_WORKLOAD.into(),
        target: if (down && !switch) || i % 2 == 1 {
            "broker.primary"
        } else {
            "backend.master"
        }
        .into(),
        kind: "pause".into(),
        repetition: 0,
        fault_at_unix_ms: 1_800_000_100_000 + i as i64 * 4_000,
        proxy_down_ms: down.then_some(400.0),
        sentinel_sdown_ms: switch.then_some(250.0),
        sentinel_switch_ms: switch.then_some(900.0),
        client_reconnected_ms: (down || switch).then_some(1_000.0),
        switch_time_ms: Some(300.0),
        outage_ms: Some(320.0),
        tasks: 800,
        ..Default::default()
    }
}

/// The run.json of a cell as `spec` says (the workloads it runs: all but those taken from
/// the reference).
pub fn cell_report(spec: &CellSpec, started: i64) -> RunReport {
    let runs = |w: &str| !spec.from_reference.contains(&w);
    let mut workloads = Vec::new();
    let mut rows = Vec::new();
    if runs(COST_WORKLOAD) {
        workloads.push(workload(COST_WORKLOAD, &latencies(1_200), spec.throughput));
    }
    for (k, (name, target)) in FAULTS.iter().enumerate() {
        if !runs(name) {
            continue;
        }
        let mut w = workload(name, &latencies(120), 199.0);
        if k == 0 {
            w.counts.lost = spec.lost;
            w.counts.duplicated = spec.duplicated;
        }
        workloads.push(w);
        for (rep, s) in spec.switch[k].iter().enumerate() {
            rows.push(fault(name, target, rep as u32, *s));
        }
    }
    if runs(STALL_WORKLOAD) {
        workloads.push(workload(STALL_WORKLOAD, &latencies(110), 199.0));
        rows.extend(spec.stall.iter().enumerate().map(|(i, s)| stall_row(i, *s)));
    }
    run("ha", started, workloads, rows)
}

/// The baseline's cost run at `throughput` (p99 ≈ 99 ms).
pub fn baseline_report(throughput: f64, started: i64) -> RunReport {
    run(
        "standalone",
        started,
        vec![workload(COST_WORKLOAD, &latencies(1_000), throughput)],
        Vec::new(),
    )
}

fn loaded(dir: &str, report: RunReport) -> LoadedCell {
    LoadedCell::of(LoadedRun {
        dir: Path::new("/tmp/sweep-fixture").join(dir),
        report,
    })
}

/// The cell's run directory, relative to the sweep directory.
fn cell_dir(i: usize) -> String {
    format!("cells/{i:02}/20260101T000000Z-ha")
}

/// A sweep of `specs` (cell 0 first: the reference), the baseline at 5,000 tasks/s at the
/// start and 4,750 at the end.
pub fn sweep(specs: &[CellSpec]) -> SweepRuns {
    let knobs = knobs();
    let all: Vec<String> = std::iter::once(COST_WORKLOAD)
        .chain(FAULTS.iter().map(|f| f.0))
        .chain([STALL_WORKLOAD])
        .map(str::to_string)
        .collect();
    let mut cells = Vec::new();
    let mut loaded_cells = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let values: Vec<String> = spec.values.iter().map(|v| v.to_string()).collect();
        let changed = knobs
            .iter()
            .zip(&values)
            .filter(|(k, v)| k.current != **v)
            .map(|(k, _)| k.key.clone())
            .collect();
        let has_dir = matches!(spec.status, CellStatus::Measured | CellStatus::Interrupted);
        cells.push(CellRecord {
            index: i,
            stage: 1,
            group: 0,
            values: values.clone(),
            changed,
            requested: false,
            scope: FaultScope::Both,
            workloads: all
                .iter()
                .filter(|w| !spec.from_reference.contains(&w.as_str()))
                .cloned()
                .collect(),
            from_reference: spec.from_reference.iter().map(|w| w.to_string()).collect(),
            setting: CellSetting {
                cell: i,
                values: knobs
                    .iter()
                    .zip(&values)
                    .map(|(k, v)| (k.key.clone(), v.clone()))
                    .collect(),
                brought_up: i == 0,
                applied: match i {
                    0 => Vec::new(),
                    _ => vec![AppliedRecord {
                        key: knobs[0].key.clone(),
                        value: values[0].clone(),
                        how: ApplyKind::ProxyReload,
                        took_ms: 120,
                    }],
                },
                read_back: knobs
                    .iter()
                    .zip(&values)
                    .map(|(k, v)| ReadBack {
                        key: k.key.clone(),
                        source: "haproxy show servers state".into(),
                        expected: v.clone(),
                        found: v.clone(),
                        matches: true,
                    })
                    .collect(),
            },
            dir: has_dir.then(|| cell_dir(i)),
            status: spec.status,
            error: (spec.status == CellStatus::Failed).then(|| "HAProxy reload failed".into()),
        });
        loaded_cells.push(match spec.status {
            CellStatus::Planned | CellStatus::Failed => {
                LoadedCell::missing("not reached (planned)")
            }
            _ => loaded(&cell_dir(i), cell_report(spec, 10_000 + i as i64)),
        });
    }
    let index = SweepIndex {
        hab_version: "0.1.0".into(),
        status: if specs.iter().all(|s| s.status == CellStatus::Measured) {
            SweepStatus::Complete
        } else {
            SweepStatus::Interrupted
        },
        error: None,
        started_unix_ms: 1_800_000_000_000,
        finished_unix_ms: Some(1_800_000_900_000),
        topology_file: "topologies/ha.toml".into(),
        topology_name: "ha".into(),
        topology_source: TOPOLOGY.into(),
        workload_file: "workloads/sweep.toml".into(),
        baseline_file: "topologies/standalone.toml".into(),
        baseline_name: "standalone".into(),
        plan: serde_json::json!({}),
        knobs,
        cells,
        baseline_runs: ["start", "end"]
            .iter()
            .map(|w| BaselineRecord {
                when: w.to_string(),
                dir: Some(format!("baseline/{w}")),
                status: CellStatus::Measured,
                error: None,
            })
            .collect(),
        bring_ups: Vec::new(),
        stage2: None,
    };
    SweepRuns {
        dir: "/tmp/sweep-fixture".into(),
        index,
        cells: loaded_cells,
        baseline_start: loaded("baseline/start", baseline_report(5_000.0, 1_000)),
        baseline_end: loaded("baseline/end", baseline_report(4_750.0, 900_000)),
    }
}

/// Writes `runs` as a sweep directory under `dir`: the index and every run.json.
pub fn write(runs: &SweepRuns, dir: &Path) {
    let put = |rel: &str, report: &RunReport| {
        let d = dir.join(rel);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("run.json"),
            serde_json::to_vec_pretty(report).unwrap(),
        )
        .unwrap();
    };
    for (c, l) in runs.index.cells.iter().zip(&runs.cells) {
        if let (Some(rel), Some(run)) = (&c.dir, &l.run) {
            put(rel, &run.report);
        }
    }
    for (b, l) in runs
        .index
        .baseline_runs
        .iter()
        .zip([&runs.baseline_start, &runs.baseline_end])
    {
        if let (Some(rel), Some(run)) = (&b.dir, &l.run) {
            put(rel, &run.report);
        }
    }
    std::fs::write(
        dir.join(crate::record::sweep::SWEEP_INDEX_FILE),
        serde_json::to_vec_pretty(&runs.index).unwrap(),
    )
    .unwrap();
}
