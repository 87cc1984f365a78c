//! The report of a sweep directory (`hab sweep`, `hab report SWEEP_DIR`): `sweep.csv`,
//! `sweep.json`, `recommended.toml`, the charts, `report.md` and `report.html`, all from
//! `sweep-index.json` and the run.json of every cell and baseline run. The report leads
//! with the answer (the recommended setting and why), then the Pareto front, every cell,
//! the baseline and its drift, and how each cell was configured and read back.

mod csv;

use std::path::Path;

use anyhow::{Context, Result};

use super::doc::{self, Block};
use crate::compare::sweep::cell::{CellResult, FaultFigures};
use crate::compare::sweep::pareto::{cost_text, headline_text, pct, signed_pct};
use crate::compare::sweep::{
    BaselineRun, Source, SweepAnalysis, SweepRuns, analyse, recommend::recommended_toml,
};
use crate::metrics::stats::{fmt_ms, fmt_us};
use crate::record::sweep::{CellStatus, SweepStatus};

pub use csv::sweep_csv;

/// The analysis of a sweep directory, machine-readable.
pub const SWEEP_JSON: &str = "sweep.json";
/// One row per cell.
pub const SWEEP_CSV: &str = "sweep.csv";
/// The swept topology with the recommended values.
pub const RECOMMENDED_TOML: &str = "recommended.toml";

/// Renders every report file of the sweep directory `dir`; returns the analysis.
pub fn render_sweep_dir(dir: &Path) -> Result<SweepAnalysis> {
    render_sweep_dir_with(dir, &crate::chart::Options::default())
}

/// [`render_sweep_dir`] with a title of one's own and PNGs at a scale.
pub fn render_sweep_dir_with(dir: &Path, options: &crate::chart::Options) -> Result<SweepAnalysis> {
    let runs = SweepRuns::load(dir)?;
    let a = analyse(&runs)?;
    let mut json = serde_json::to_vec_pretty(&a)?;
    json.push(b'\n');
    crate::export::write_atomic(&dir.join(SWEEP_JSON), &json)?;
    crate::export::write_atomic(&dir.join(SWEEP_CSV), &sweep_csv(&a)?)?;
    let toml = recommended_toml(&a, &runs.index.topology_source)?;
    crate::export::write_atomic(&dir.join(RECOMMENDED_TOML), toml.as_bytes())?;
    let charts = crate::chart::sweep::render_all(&a, &dir.join("charts"), options)
        .with_context(|| format!("cannot draw the charts of {}", dir.display()))?;
    let title = options.title.clone().unwrap_or_else(|| {
        format!(
            "hab sweep: {} — {} cells against {}",
            a.topology_name,
            a.cells.len(),
            a.baseline_name
        )
    });
    let blocks = blocks(&title, &a, &charts);
    crate::export::write_atomic(&dir.join("report.md"), doc::markdown(&blocks).as_bytes())?;
    crate::export::write_atomic(
        &dir.join("report.html"),
        doc::html(&title, &blocks).as_bytes(),
    )?;
    Ok(a)
}

/// The lines `hab report SWEEP_DIR` prints: the answer and where the files are.
pub fn terminal(a: &SweepAnalysis, dir: &Path) -> String {
    let mut out = String::new();
    if let Some(b) = banner(a) {
        out.push_str(&format!("{b}\n"));
    }
    match &a.recommendation {
        Some(r) => {
            for line in &r.reasons {
                out.push_str(&format!("{line}\n"));
            }
        }
        None => out.push_str("No cell was measured: nothing to recommend.\n"),
    }
    out.push_str(&format!(
        "report: {}\nrecommended topology: {}\n",
        dir.join("report.html").display(),
        dir.join(RECOMMENDED_TOML).display()
    ));
    out
}

fn status_word(s: CellStatus) -> &'static str {
    match s {
        CellStatus::Planned => "planned",
        CellStatus::Measured => "measured",
        CellStatus::Interrupted => "interrupted",
        CellStatus::Failed => "failed",
    }
}

/// The banner of a sweep that did not measure every cell, or whose settings read back
/// otherwise than asked.
fn banner(a: &SweepAnalysis) -> Option<String> {
    let mut parts = Vec::new();
    let how = match a.status {
        SweepStatus::Complete => None,
        SweepStatus::Running => Some("is still running (or stopped without saying so)"),
        SweepStatus::Interrupted => Some("was interrupted"),
        SweepStatus::Failed => Some("failed"),
    };
    if let Some(how) = how {
        parts.push(format!(
            "This sweep {how}{}.",
            a.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    if !a.not_measured.is_empty() {
        let cells: Vec<String> = a
            .not_measured
            .iter()
            .filter_map(|i| a.cell(*i))
            .map(|c| {
                let why = c
                    .error
                    .as_ref()
                    .or(c.problem.as_ref())
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                format!("cell {} ({}{why})", c.index, status_word(c.status))
            })
            .collect();
        parts.push(format!(
            "Not measured, so not on the front and not recommendable: {}.",
            cells.join("; ")
        ));
    }
    let mismatched: Vec<String> = a
        .cells
        .iter()
        .filter(|c| !c.mismatches.is_empty())
        .map(|c| format!("cell {}: {}", c.index, c.mismatches.join("; ")))
        .collect();
    if !mismatched.is_empty() {
        parts.push(format!(
            "SETTINGS READ BACK OTHERWISE THAN ASKED — these cells may not have measured what they say: {}.",
            mismatched.join(" | ")
        ));
    }
    (!parts.is_empty()).then(|| format!("WARNING: {}", parts.join(" ")))
}

fn setting(a: &SweepAnalysis, c: &CellResult) -> String {
    a.setting_text(c)
}

fn ff_cell(c: &CellResult) -> String {
    c.stall.as_ref().map_or_else(
        || "–".to_string(),
        |s| {
            let mark = match s.source {
                Source::Reference => " (ref)",
                Source::Own => "",
            };
            format!("{} of {}{mark}", s.false_failovers, s.pauses)
        },
    )
}

fn opt_pct(v: Option<f64>, signed: bool) -> String {
    match (v, signed) {
        (None, _) => "–".into(),
        (Some(p), true) => signed_pct(p),
        (Some(p), false) => pct(p),
    }
}

/// A fault's switch time as a cell: `1.20s (1.00s–1.40s)`, a repetition without a switch
/// shown as `none` and counted, `(ref)` for the reference's figures.
pub fn switch_cell(f: &FaultFigures) -> String {
    let mut s = match (f.switch_median_ms, f.switch_ms) {
        (_, None) if f.repetitions == 0 => "not run".to_string(),
        (_, None) => format!("no switch in {} of {}", f.no_switch, f.repetitions),
        (median, Some(sp)) => {
            let m = median.map_or_else(|| "no switch".to_string(), fmt_ms);
            let max = if f.no_switch > 0 {
                "none".to_string()
            } else {
                fmt_ms(sp.max)
            };
            let mut s = if f.repetitions > 1 {
                format!("{m} ({}–{max})", fmt_ms(sp.min))
            } else {
                m
            };
            if f.no_switch > 0 {
                s.push_str(&format!(", {} of {} no switch", f.no_switch, f.repetitions));
            }
            s
        }
    };
    if f.source == Source::Reference {
        s.push_str(" (ref)");
    }
    s
}

/// Columns of words, whatever their place.
const TEXT_COLUMNS: [&str; 3] = ["directory", "problem", "not applied"];

fn table(head: &[&str], rows: Vec<Vec<String>>, text_cols: usize) -> Block {
    let numeric = head
        .iter()
        .enumerate()
        .map(|(i, h)| i >= text_cols && !TEXT_COLUMNS.contains(h))
        .collect();
    Block::Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        rows,
        numeric,
    }
}

fn answer(a: &SweepAnalysis) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Recommendation".into())];
    match &a.recommendation {
        None => out.push(Block::Para(
            "No cell was measured, so there is nothing to recommend; recommended.toml is the topology unchanged.".into(),
        )),
        Some(r) => {
            out.push(Block::List(r.reasons.clone()));
            out.push(Block::Para(format!(
                "{RECOMMENDED_TOML} in this directory is {} {}.",
                a.topology_file,
                if r.is_reference {
                    "unchanged (with a header comment saying why)"
                } else {
                    "with the recommended values, each changed line commented with what it bought; its comments and layout are kept"
                }
            )));
        }
    }
    out.push(Block::Para(format!(
        "How to read it: a cell's headline switch time is the slowest of its fault workloads' median switch times (switch time: from the fault until the first task published at or after it completed; a repetition with no switch counts as the slowest). A false failover is a stall of the stall phase — a pause shorter than a node's death, or a few seconds of CPU starvation — after which the service moved: the Sentinels switched the Redis master, or HAProxy marked the stalled broker node DOWN and sent its clients to another node (HAProxy marking a paused Redis master DOWN is counted apart: with no other master to route to, it is an outage, not a failover). The cost of HA is the cost phase's throughput below {}'s at the start of the sweep (p99 beside it), as `hab compare` computes it. The Pareto front holds the cells no other cell beats on headline switch time, false failovers and harmed tasks (lost or run twice) at once (cost breaks ties; a cell that harmed more tasks never beats one that harmed fewer). The recommendation is the front's cell without lost tasks, then with zero false failovers (or the fewest), then the fewest tasks run twice, then the fastest headline, then the cheapest.",
        a.baseline_name
    )));
    if let Some(s2) = &a.stage2 {
        out.push(Block::Para(format!(
            "Stage 2 (a grid on the two knobs that moved the headline most in stage 1): {s2}."
        )));
    }
    out
}

fn front(a: &SweepAnalysis) -> Vec<Block> {
    let rows = a
        .front
        .iter()
        .filter_map(|i| a.cell(*i))
        .map(|c| {
            let rec = a.recommendation.as_ref().map(|r| r.cell) == Some(c.index);
            vec![
                format!("{}{}", c.index, if rec { " (recommended)" } else { "" }),
                setting(a, c),
                headline_text(c),
                ff_cell(c),
                cost_text(c),
                match c.lost_tasks {
                    0 => "0".into(),
                    n => format!("{n} LOST"),
                },
                c.duplicated_tasks.to_string(),
            ]
        })
        .collect();
    vec![
        Block::Heading(2, "Pareto front".into()),
        table(
            &[
                "cell",
                "setting",
                "headline switch (slowest fault)",
                "false failovers",
                "HA cost",
                "lost tasks",
                "duplicated",
            ],
            rows,
            5,
        ),
    ]
}

fn all_cells(a: &SweepAnalysis) -> Vec<Block> {
    let mut head: Vec<String> = vec!["cell".into(), "status".into()];
    head.extend(a.knobs.iter().map(|k| k.key.clone()));
    head.extend(
        ["headline", "false failovers", "cost", "p99"]
            .iter()
            .map(|s| s.to_string()),
    );
    head.extend(a.fault_workloads.iter().map(|w| format!("{w} switch")));
    head.extend(
        ["lost", "dup", "result lost", "read back"]
            .iter()
            .map(|s| s.to_string()),
    );
    let rows: Vec<Vec<String>> = a
        .cells
        .iter()
        .map(|c| {
            let mut flags = Vec::new();
            if a.front.contains(&c.index) {
                flags.push("front");
            }
            if a.recommendation.as_ref().map(|r| r.cell) == Some(c.index) {
                flags.push("recommended");
            }
            let mut r = vec![
                if flags.is_empty() {
                    c.index.to_string()
                } else {
                    format!("{} ({})", c.index, flags.join(", "))
                },
                status_word(c.status).to_string(),
            ];
            r.extend(c.values.iter().cloned());
            r.push(headline_text(c));
            r.push(ff_cell(c));
            r.push(opt_pct(c.cost_throughput_pct, false));
            r.push(opt_pct(c.cost_p99_pct, true));
            for w in &a.fault_workloads {
                r.push(c.fault(w).map_or_else(|| "–".to_string(), switch_cell));
            }
            let result_lost: u64 = c.faults.iter().map(|f| f.result_lost).sum::<u64>()
                + c.stall.as_ref().map_or(0, |s| s.result_lost);
            r.push(c.lost_tasks.to_string());
            r.push(c.duplicated_tasks.to_string());
            r.push(result_lost.to_string());
            r.push(if c.mismatches.is_empty() {
                if c.setting.read_back.is_empty() {
                    "–".into()
                } else {
                    "as asked".into()
                }
            } else {
                format!("MISMATCH: {}", c.mismatches.join("; "))
            });
            r
        })
        .collect();
    let mut numeric = vec![true; head.len()];
    for n in numeric.iter_mut().take(2 + a.knobs.len()) {
        *n = false;
    }
    vec![
        Block::Heading(2, "Every cell".into()),
        Block::Para("Cost is the throughput below the baseline's start run and p99 the change of p99 against it. Each fault's switch time is median (fastest–slowest) over its repetitions; \"none\" as the slowest and \"k of n no switch\" say repetitions after which no task completed in the fault's window; (ref) marks figures taken from the reference cell (cell 0), because the cell's knobs cannot affect that fault. Lost counts tasks never executed, results lost and publishes never confirmed over every workload; result lost is the part whose result was never seen (vanished).".into()),
        Block::Table {
            head,
            rows,
            numeric,
        },
    ]
}

fn faults(a: &SweepAnalysis) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Faults per cell".into())];
    for w in &a.fault_workloads {
        out.push(Block::Heading(3, w.clone()));
        let rows = a
            .cells
            .iter()
            .filter_map(|c| Some((c, c.fault(w)?)))
            .map(|(c, f)| {
                let outage = |v: Option<f64>| v.map_or_else(|| "–".to_string(), fmt_ms);
                vec![
                    c.index.to_string(),
                    match f.source {
                        Source::Own => "own".into(),
                        Source::Reference => "reference cell's".into(),
                    },
                    format!("{} {}", f.target, f.kind),
                    f.repetitions.to_string(),
                    switch_cell(f),
                    f.no_switch.to_string(),
                    outage(f.outage_ms.map(|s| s.median)),
                    outage(f.outage_ms.map(|s| s.max)),
                    f.lost.to_string(),
                    f.duplicated.to_string(),
                    f.result_lost.to_string(),
                    f.result_vanished.to_string(),
                    f.not_applied.join("; "),
                ]
            })
            .collect();
        out.push(table(
            &[
                "cell",
                "figures",
                "fault",
                "repetitions",
                "switch median (min–max)",
                "no switch",
                "outage median",
                "outage max",
                "lost",
                "dup",
                "result lost",
                "gone from Redis",
                "not applied",
            ],
            rows,
            3,
        ));
    }
    let rows = a
        .cells
        .iter()
        .filter_map(|c| Some((c, c.stall.as_ref()?)))
        .map(|(c, s)| {
            let mut row = vec![
                c.index.to_string(),
                match s.source {
                    Source::Own => "own".into(),
                    Source::Reference => "reference cell's".into(),
                },
            ];
            row.extend(s.counts());
            row
        })
        .collect();
    out.push(Block::Heading(3, "Stall phase (false failovers)".into()));
    out.push(Block::Para("Per cell, the stall phase's stalls (`pauses` counts them all: pauses shorter than a death and CPU throttles, as the workload file sets them; workloads/sweep.toml pauses each side three times for 200 ms to 1.5 s, lengths drawn from its seed, then caps each at 2 % of a core for 2 s) and how many of them HAProxy or the Sentinels acted on: a false failover is a stall after which the service moved (the Sentinels switched the master, or HAProxy marked the stalled broker node DOWN); HAProxy DOWN marks of any server, +sdown (a Sentinel thought the master down) and client reconnections are counted apart.".into()));
    out.push(table(
        &[
            "cell",
            "figures",
            "pauses",
            "false failovers",
            "HAProxy DOWN",
            "Sentinel +sdown",
            "+switch-master",
            "client reconnected",
            "lost",
            "dup",
            "result lost",
        ],
        rows,
        2,
    ));
    out
}

fn baseline_row(r: &BaselineRun) -> Vec<String> {
    vec![
        r.when.clone(),
        status_word(r.status).to_string(),
        r.cost.as_ref().map_or_else(
            || "–".to_string(),
            |c| format!("{:.0}/s", c.throughput_per_s.median),
        ),
        r.cost
            .as_ref()
            .and_then(|c| c.p99_us)
            .map_or_else(|| "–".to_string(), fmt_us),
        r.dir.clone().unwrap_or_else(|| "–".into()),
        r.problem.clone().unwrap_or_default(),
    ]
}

fn baseline(a: &SweepAnalysis) -> Vec<Block> {
    let b = &a.baseline;
    let rows = [&b.start, &b.end]
        .into_iter()
        .flatten()
        .map(baseline_row)
        .collect();
    let drift = match (b.drift_throughput_pct, b.drift_p99_pct) {
        (Some(t), p) => format!(
            "Drift over the sweep: the baseline ran {} throughput at the end than at the start{}. Every cell's cost is against the start run; a drift of a few % is the noise floor of the cost column.",
            if t < 0.0 {
                format!("{} less", pct(-t))
            } else {
                format!("{} more", pct(t))
            },
            p.map(|p| format!(", p99 {}", signed_pct(p)))
                .unwrap_or_default()
        ),
        (None, _) => {
            "Drift over the sweep: not known (the baseline's start or end run is missing).".into()
        }
    };
    vec![
        Block::Heading(2, format!("Baseline ({}) and its drift", b.name)),
        table(
            &["run", "status", "throughput", "p99", "directory", "problem"],
            rows,
            2,
        ),
        Block::Para(drift),
    ]
}

fn configured(a: &SweepAnalysis) -> Vec<Block> {
    let mut out = vec![
        Block::Heading(2, "How each cell was configured and read back".into()),
        Block::Para("Each change made to the live stack before a cell, and every setting read back from the servers and clients before measuring. A read-back that differs from what was asked is a MISMATCH: that cell did not measure the setting it names.".into()),
    ];
    let mut rows = Vec::new();
    for c in &a.cells {
        let applied: Vec<String> = c
            .setting
            .applied
            .iter()
            .map(|x| {
                format!(
                    "{} = {} ({}, {} ms)",
                    x.key,
                    x.value,
                    x.how.describe(),
                    x.took_ms
                )
            })
            .collect();
        let how = if c.setting.brought_up {
            "brought up for it".to_string()
        } else if applied.is_empty() {
            "stack reused unchanged".to_string()
        } else {
            applied.join("; ")
        };
        if c.setting.read_back.is_empty() {
            rows.push(vec![
                c.index.to_string(),
                how.clone(),
                "–".into(),
                "–".into(),
                "–".into(),
                "nothing read back".into(),
            ]);
        }
        for (k, r) in c.setting.read_back.iter().enumerate() {
            rows.push(vec![
                if k == 0 {
                    c.index.to_string()
                } else {
                    String::new()
                },
                if k == 0 { how.clone() } else { String::new() },
                r.key.clone(),
                r.expected.clone(),
                format!("{} ({})", r.found, r.source),
                if r.matches { "ok" } else { "MISMATCH" }.into(),
            ]);
        }
    }
    out.push(table(
        &["cell", "applied", "knob", "asked", "read back", ""],
        rows,
        6,
    ));
    out
}

fn directories(a: &SweepAnalysis) -> Vec<Block> {
    let items = a
        .cells
        .iter()
        .map(|c| match &c.dir {
            Some(d) => format!(
                "cell {}: {d} ({}; `hab report {d}` renders its own report)",
                c.index,
                status_word(c.status)
            ),
            None => format!(
                "cell {}: no run directory ({})",
                c.index,
                status_word(c.status)
            ),
        })
        .collect();
    vec![
        Block::Heading(2, "Run directories".into()),
        Block::List(items),
        Block::Heading(2, "Files".into()),
        Block::List(vec![
            "sweep-index.json: the plan, every cell's setting, how it was applied and read back (written by hab sweep).".into(),
            "sweep.json: this analysis, machine-readable; sweep.csv: one row per cell.".into(),
            format!("{RECOMMENDED_TOML}: the swept topology with the recommended values."),
            "charts/sweep-*.svg and .png.".into(),
        ]),
    ]
}

fn blocks(title: &str, a: &SweepAnalysis, charts: &[crate::chart::Chart]) -> Vec<Block> {
    let mut out = vec![Block::Heading(1, title.to_string())];
    if let Some(b) = banner(a) {
        out.push(Block::Para(b));
    }
    let knobs: Vec<String> = a
        .knobs
        .iter()
        .map(|k| {
            format!(
                "{} = {} (the topology's: {}; {})",
                k.key,
                k.values.join(", "),
                k.current,
                k.apply.describe()
            )
        })
        .collect();
    out.push(Block::Para(format!(
        "Which HA settings of {} ({}) should be used? {} cells of the workload {} on one reconfigured stack, each cost against {}. Knobs:",
        a.topology_name,
        a.topology_file,
        a.cells.len(),
        a.workload_file,
        a.baseline_name
    )));
    out.push(Block::List(knobs));
    out.extend(answer(a));
    out.extend(front(a));
    for ch in charts {
        out.push(Block::Chart {
            name: ch.name.clone(),
            title: ch.title.clone(),
            caption: ch.caption.clone(),
            svg: ch.svg.clone(),
        });
    }
    out.extend(all_cells(a));
    out.extend(faults(a));
    out.extend(baseline(a));
    out.extend(configured(a));
    out.extend(directories(a));
    out
}

#[cfg(test)]
mod tests;
