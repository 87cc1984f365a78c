//! `sweep.csv`: one row per cell of a sweep, every figure of the analysis in its own
//! column (units in the headers), measured or not.

use anyhow::Result;

use crate::compare::sweep::cell::CellResult;
use crate::compare::sweep::{Source, SweepAnalysis};

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_default()
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_default()
}

fn status(s: impl serde::Serialize) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The header of `sweep.csv` for analysis `a`.
pub fn header(a: &SweepAnalysis) -> Vec<String> {
    let mut h: Vec<String> = ["cell", "stage", "status", "run_status"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    h.extend(a.knobs.iter().map(|k| k.key.clone()));
    h.extend(
        [
            "on_front",
            "recommended",
            "headline_workload",
            "headline_switch_ms",
            "false_failovers",
            "cost_throughput_pct",
            "cost_p99_pct",
            "throughput_per_s",
            "p99_us",
            "lost_tasks",
            "duplicated_tasks",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    for w in &a.fault_workloads {
        for col in [
            "source",
            "repetitions",
            "no_switch",
            "switch_median_ms",
            "switch_min_ms",
            "switch_max_ms",
            "outage_median_ms",
            "outage_max_ms",
            "lost",
            "duplicated",
            "result_lost",
            "result_vanished",
        ] {
            h.push(format!("{w}.{col}"));
        }
    }
    for col in [
        "source",
        "pauses",
        "false_failovers",
        "proxy_down",
        "sentinel_sdown",
        "sentinel_switch",
        "client_reconnected",
        "lost",
        "duplicated",
        "result_lost",
        "result_vanished",
    ] {
        h.push(format!("stall.{col}"));
    }
    h.extend(
        ["read_back_mismatches", "dir", "problem"]
            .iter()
            .map(|s| s.to_string()),
    );
    h
}

fn source(s: Source) -> String {
    match s {
        Source::Own => "own",
        Source::Reference => "reference",
    }
    .into()
}

/// One row of `sweep.csv`.
pub fn row(a: &SweepAnalysis, c: &CellResult) -> Vec<String> {
    let mut r = vec![
        c.index.to_string(),
        c.stage.to_string(),
        status(c.status),
        c.run_status.map(status).unwrap_or_default(),
    ];
    r.extend(c.values.iter().cloned());
    r.extend([
        a.front.contains(&c.index).to_string(),
        (a.recommendation.as_ref().map(|x| x.cell) == Some(c.index)).to_string(),
        opt(c.headline.as_ref().map(|h| h.workload.clone())),
        ms(c.headline.as_ref().and_then(|h| h.switch_ms)),
        opt(c.false_failovers()),
        pct(c.cost_throughput_pct),
        pct(c.cost_p99_pct),
        c.cost
            .as_ref()
            .map(|x| format!("{:.1}", x.throughput_per_s.median))
            .unwrap_or_default(),
        opt(c.cost.as_ref().and_then(|x| x.p99_us)),
        c.lost_tasks.to_string(),
        c.duplicated_tasks.to_string(),
    ]);
    for w in &a.fault_workloads {
        match c.fault(w) {
            None => r.extend(std::iter::repeat_n(String::new(), 12)),
            Some(f) => r.extend([
                source(f.source),
                f.repetitions.to_string(),
                f.no_switch.to_string(),
                ms(f.switch_median_ms),
                ms(f.switch_ms.map(|s| s.min)),
                // The slowest is no switch at all when a repetition had none.
                ms(f.switch_ms.filter(|_| f.no_switch == 0).map(|s| s.max)),
                ms(f.outage_ms.map(|s| s.median)),
                ms(f.outage_ms.map(|s| s.max)),
                f.lost.to_string(),
                f.duplicated.to_string(),
                f.result_lost.to_string(),
                f.result_vanished.to_string(),
            ]),
        }
    }
    match &c.stall {
        None => r.extend(std::iter::repeat_n(String::new(), 11)),
        Some(s) => {
            r.push(source(s.source));
            r.extend(s.counts());
            r.push(s.result_vanished.to_string());
        }
    }
    r.extend([
        c.mismatches.join("; "),
        c.dir.clone().unwrap_or_default(),
        c.problem
            .clone()
            .or_else(|| c.error.clone())
            .unwrap_or_default(),
    ]);
    r
}

/// `sweep.csv` of `a`.
pub fn sweep_csv(a: &SweepAnalysis) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header(a))?;
    for c in &a.cells {
        w.write_record(row(a, c))?;
    }
    Ok(w.into_inner()?)
}
