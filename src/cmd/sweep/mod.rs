//! `hab sweep`: the same measurements over several settings of one topology. The plan —
//! knobs and values from `--vary` and a sweep file, checked against the topology; the
//! design and its duration from the workload plan ([`crate::config::sweep`]) — is printed
//! first (`--dry-run` stops there); then [`execute`] measures the baseline and every cell
//! on one stack per bring-up group, reconfigured between cells ([`live`]), and the sweep
//! directory is rendered.

mod execute;
mod live;
mod render;
mod stage2;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::config::sweep::{
    self, DEFAULT_BUDGET, Design, SweepFile, VariedKnob, design::Inputs, vary,
};
use crate::config::{self, ConfigError, Diagnostic};

pub use execute::{SweepRun, execute};
pub use render::render_text;

/// The sweep file used when neither `--sweep` nor `--vary` is given (built in when absent).
pub use crate::config::sweep::DEFAULT_SWEEP_FILE;
/// The workload file when neither `--workload` nor the sweep file names one.
pub const DEFAULT_WORKLOAD: &str = "workloads/sweep.toml";
/// The baseline when neither `--baseline` nor the sweep file names one.
pub const DEFAULT_BASELINE: &str = "topologies/standalone.toml";

/// What the command line asked for; absent options fall back to the sweep file, then to
/// the defaults above.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// The topology to sweep.
    pub topology: PathBuf,
    /// `--vary KEY=V1,V2,…`, as given.
    pub vary: Vec<String>,
    /// `--sweep FILE`.
    pub sweep: Option<PathBuf>,
    /// `--workload FILE`.
    pub workload: Option<PathBuf>,
    /// `--baseline FILE`.
    pub baseline: Option<PathBuf>,
    /// `--budget`.
    pub budget: Option<Duration>,
    /// `--out`: where the sweep directory is created.
    pub out_dir: PathBuf,
    /// `--allow-faults`: run the faults of an external stack's cells.
    pub allow_faults: bool,
}

/// Bad `--vary` flags or a budget no design fits (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// One or more `--vary` flags are wrong; every problem is listed.
    #[error("hab sweep: {}", list(.0))]
    BadVary(Vec<Diagnostic>),
    /// No design fits the budget.
    #[error("hab sweep: {problem} ({from})")]
    OverBudget {
        /// Why.
        problem: sweep::DesignError,
        /// Where the budget came from: `--budget`, a sweep file, or the default.
        from: String,
    },
}

fn list(d: &[Diagnostic]) -> String {
    match d {
        [one] => one.to_string(),
        many => {
            let lines: Vec<String> = many.iter().map(|d| format!("\n  {d}")).collect();
            format!("{} problems:{}", many.len(), lines.concat())
        }
    }
}

/// Whether an error is bad input (exit 2): a config file, a flag or the budget.
pub fn is_bad_input(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<ConfigError>().is_some() || c.downcast_ref::<SweepError>().is_some()
    })
}

/// Renders the sweep directory (analysis, `recommended.toml`, charts, report) and returns
/// what the terminal shows: the answer (or, with `json`, the analysis). When even that
/// fails (nothing was measured), the cells as the index has them, and why there is no
/// report.
pub fn render(run: &SweepRun, json: bool) -> String {
    match crate::report::sweep::render_sweep_dir(&run.dir) {
        Ok(a) if json => serde_json::to_string_pretty(&a).unwrap_or_default() + "\n",
        Ok(a) => crate::report::sweep::terminal(&a, &run.dir),
        Err(e) => format!("{}hab sweep: no report: {e:#}\n", summarise(run)),
    }
}

/// The terminal's account of a sweep from its index alone: every cell with its setting,
/// how its stack was configured and how far it got.
pub fn summarise(run: &SweepRun) -> String {
    use std::fmt::Write;
    let ix = &run.index;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "hab sweep: {} cells, status {:?}",
        ix.cells.len(),
        ix.status
    );
    for b in &ix.baseline_runs {
        let _ = writeln!(
            out,
            "  baseline ({}): {:?}{}",
            b.when,
            b.status,
            b.dir
                .as_deref()
                .map(|d| format!(" — {d}"))
                .unwrap_or_default()
        );
    }
    for c in &ix.cells {
        let values: Vec<String> = c
            .setting
            .values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let how = if c.status == crate::record::sweep::CellStatus::Planned {
            String::new()
        } else if c.setting.brought_up {
            " (stack brought up)".to_string()
        } else {
            format!(" (stack reused, {} change(s))", c.setting.applied.len())
        };
        let _ = writeln!(
            out,
            "  cell {:2}: {:?}{how}: {}{}",
            c.index,
            c.status,
            values.join(" "),
            c.error
                .as_deref()
                .map(|e| format!("\n           {e}"))
                .unwrap_or_default()
        );
    }
    out
}

/// A file the plan read, with the name inside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Named {
    /// The `name` inside the file.
    pub name: String,
    /// The file as given.
    pub file: PathBuf,
}

/// A planned sweep: its inputs and its design.
#[derive(Debug, Serialize)]
pub struct SweepPlan {
    /// The swept topology.
    pub topology: Named,
    /// The workload plan every cell runs.
    pub workload: Named,
    /// The baseline topology.
    pub baseline: Named,
    /// The sweep file the knobs (or settings) came from, if any.
    pub sweep_file: Option<PathBuf>,
    /// Where the budget came from.
    pub budget_from: String,
    /// The repetitions K a sweep file set (absent: as the workload file says).
    pub repetitions: Option<u32>,
    /// The design: cells and duration.
    pub design: Design,
}

/// Loads and checks every input and designs the sweep; nothing is started.
pub fn plan(opts: &SweepOptions) -> Result<SweepPlan> {
    let topology = config::load_topology(&opts.topology)?;
    let sweep_path = match (&opts.sweep, opts.vary.is_empty()) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(PathBuf::from(DEFAULT_SWEEP_FILE)),
        (None, false) => None,
    };
    let file = sweep_path
        .as_deref()
        .map(sweep::load_sweep_file)
        .transpose()?;
    let knobs = knobs(&topology, file.as_ref(), sweep_path.as_deref(), &opts.vary)?;
    let extra = match (&file, &sweep_path) {
        (Some(f), Some(p)) => {
            f.resolve_cells(&topology, &knobs)
                .map_err(|diagnostics| ConfigError::Invalid {
                    kind: "sweep",
                    path: p.clone(),
                    diagnostics,
                })?
        }
        _ => Vec::new(),
    };

    let setting = |flag: &Option<PathBuf>, from_file: Option<&PathBuf>, default: &str| {
        flag.clone()
            .or_else(|| from_file.cloned())
            .unwrap_or_else(|| PathBuf::from(default))
    };
    let workload_path = setting(
        &opts.workload,
        file.as_ref().and_then(|f| f.workload.as_ref()),
        DEFAULT_WORKLOAD,
    );
    let baseline_path = setting(
        &opts.baseline,
        file.as_ref().and_then(|f| f.baseline.as_ref()),
        DEFAULT_BASELINE,
    );
    let baseline = config::load_topology(&baseline_path)?;
    let mut workload = config::load_workload_plan(&workload_path)?;
    let repetitions = file.as_ref().and_then(|f| f.repetitions);
    if let Some(k) = repetitions {
        workload =
            sweep::with_repetitions(&workload, k).map_err(|diagnostics| ConfigError::Invalid {
                kind: "workload",
                path: workload_path.clone(),
                diagnostics,
            })?;
    }
    let (budget, budget_from) = match (opts.budget, file.as_ref().and_then(|f| f.budget)) {
        (Some(b), _) => (b, "--budget".to_string()),
        (None, Some(b)) => (
            b,
            format!(
                "budget in {}",
                sweep_path.as_deref().unwrap_or(Path::new("")).display()
            ),
        ),
        (None, None) => (DEFAULT_BUDGET, "the default budget".to_string()),
    };
    let design = sweep::design::design(Inputs {
        topology: &topology,
        knobs,
        plan: &workload,
        baseline: &baseline,
        budget_s: budget.as_secs_f64(),
        extra,
    })
    .map_err(|problem| SweepError::OverBudget {
        problem,
        from: budget_from.clone(),
    })?;
    Ok(SweepPlan {
        topology: Named {
            name: topology.name.clone(),
            file: opts.topology.clone(),
        },
        workload: Named {
            name: workload.name.clone(),
            file: workload_path,
        },
        baseline: Named {
            name: baseline.name.clone(),
            file: baseline_path,
        },
        sweep_file: sweep_path,
        budget_from,
        repetitions,
        design,
    })
}

/// The knobs: the sweep file's (checked against the topology, located in the file), each
/// `--vary` replacing the file's knob of the same key or adding one.
fn knobs(
    topology: &config::Topology,
    file: Option<&SweepFile>,
    path: Option<&Path>,
    vary: &[String],
) -> Result<Vec<VariedKnob>> {
    let mut knobs = match (file, path) {
        (Some(f), Some(p)) => f
            .resolve(topology)
            .map_err(|diagnostics| ConfigError::Invalid {
                kind: "sweep",
                path: p.to_path_buf(),
                diagnostics,
            })?,
        _ => Vec::new(),
    };
    let mut problems = Vec::new();
    let mut from_flags: Vec<&str> = Vec::new();
    for arg in vary {
        match vary::resolve_flag(topology, arg) {
            Err(mut d) => problems.append(&mut d),
            Ok(k) if from_flags.contains(&k.knob.key) => problems.push(Diagnostic::new(
                format!("--vary {arg}"),
                format!(
                    "{} is varied by another --vary too; give each knob once",
                    k.knob.key
                ),
            )),
            Ok(k) => {
                from_flags.push(k.knob.key);
                match knobs.iter_mut().find(|o| o.knob.key == k.knob.key) {
                    Some(o) => *o = k,
                    None => knobs.push(k),
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(knobs)
    } else {
        Err(SweepError::BadVary(problems).into())
    }
}

#[cfg(test)]
mod tests;
