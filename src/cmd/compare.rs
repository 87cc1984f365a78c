//! `hab compare`: the baseline and each topology run with the same workload plan, one run
//! directory per topology and repetition inside one comparison directory; then the
//! comparison (ratios to the baseline, failover summary), charts and report.
//!
//! Repetitions are interleaved (baseline, ha, baseline, ha, …) so that a slow drift of the
//! machine does not favour one topology. The report is rendered from the run.json files
//! on disk by the same code as `hab report DIR`, also when the comparison was interrupted
//! or a run failed: what was measured is kept and shown as such. The analysis itself is
//! [`crate::compare`]; this module runs the topologies and renders at the end.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::cmd::run::{RunOptions, run};
use crate::compare::Comparison;
use crate::config::{self, ConfigError, Diagnostic, Topology, WorkloadPlan};
use crate::progress::SharedReporter;
use crate::record::RunStatus;
use crate::record::names::{INDEX_FILE, compare_dir_name};

/// What to compare.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// The baseline topology file.
    pub baseline: PathBuf,
    /// The other topology files.
    pub topologies: Vec<PathBuf>,
    /// The workload file every topology runs.
    pub workload: PathBuf,
    /// Runs per topology.
    pub repeat: u32,
    /// Directory in which the comparison directory is created.
    pub out_dir: PathBuf,
    /// Show progress bars.
    pub progress: bool,
    /// Measure each stack's raw limits before its workloads (window length).
    pub calibrate: Option<std::time::Duration>,
    /// Run the workload's faults on external stacks too (see `hab run --allow-faults`).
    pub allow_faults: bool,
    /// Where progress lines go (each run's too).
    pub reporter: SharedReporter,
}

/// The index of a comparison directory (`compare.json`): the order of the topologies
/// (baseline first) and how the comparison was asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareIndex {
    /// Topology names, baseline first.
    pub topologies: Vec<String>,
    /// Their files, in the same order.
    pub topology_files: Vec<String>,
    /// The workload file.
    pub workload_file: String,
    /// Runs per topology asked for.
    pub repeat: u32,
    /// Unix ms when the comparison started.
    pub started_unix_ms: i64,
}

/// A finished, interrupted or failed comparison.
#[derive(Debug)]
pub struct CompareOutcome {
    /// The comparison directory.
    pub dir: PathBuf,
    /// The comparison of what ran (absent if not a single run produced a run.json).
    pub comparison: Option<Comparison>,
    /// Stopped by Ctrl-C / SIGTERM.
    pub interrupted: bool,
    /// The error that stopped a run, if any.
    pub error: Option<anyhow::Error>,
}

/// Load and check every file before anything starts: the topologies (baseline first)
/// and the workload plan. Topology names must differ: they name the run directories,
/// the rows of the tables and the lines of the charts.
pub fn load_inputs(opts: &CompareOptions) -> Result<(Vec<(PathBuf, Topology)>, WorkloadPlan)> {
    let plan = config::load_workload_plan(&opts.workload)?;
    let mut topologies: Vec<(PathBuf, Topology)> = Vec::new();
    for path in std::iter::once(&opts.baseline).chain(&opts.topologies) {
        let t = config::load_topology(path)?;
        if let Some((other, _)) = topologies.iter().find(|(_, o)| o.name == t.name) {
            let why = if other == path {
                "this file is given twice (the baseline is always run; pass other topologies with --topology)".to_string()
            } else {
                format!(
                    "is also the name of {}; topologies in one comparison need distinct names",
                    other.display()
                )
            };
            return Err(ConfigError::Invalid {
                kind: "topology",
                path: path.clone(),
                diagnostics: vec![Diagnostic::new("name", format!("\"{}\" {why}", t.name))],
            }
            .into());
        }
        crate::inject::plan::prepare(path, &t, &opts.workload, &plan, opts.allow_faults)?;
        config::missing_files(&t, path)?;
        super::celery_env::prepare(&t, opts.reporter.as_ref())?;
        topologies.push((path.clone(), t));
    }
    if opts.repeat == 0 {
        anyhow::bail!("--repeat must be at least 1");
    }
    Ok((topologies, plan))
}

/// Run the comparison and render its report.
pub async fn compare(opts: &CompareOptions, cancel: CancellationToken) -> Result<CompareOutcome> {
    let (topologies, plan) = load_inputs(opts)?;
    let out_dir = std::path::absolute(&opts.out_dir)
        .with_context(|| format!("bad output directory {}", opts.out_dir.display()))?;
    let dir = out_dir.join(compare_dir_name(&plan.name));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let index = CompareIndex {
        topologies: topologies.iter().map(|(_, t)| t.name.clone()).collect(),
        topology_files: topologies
            .iter()
            .map(|(p, _)| p.display().to_string())
            .collect(),
        workload_file: opts.workload.display().to_string(),
        repeat: opts.repeat,
        started_unix_ms: crate::clock::now_unix_us() / 1000,
    };
    let mut bytes = serde_json::to_vec_pretty(&index)?;
    bytes.push(b'\n');
    crate::export::write_atomic(&dir.join(INDEX_FILE), &bytes)?;

    let total = topologies.len() * opts.repeat as usize;
    let mut done = 0;
    let mut interrupted = false;
    let mut error = None;
    'runs: for rep in 1..=opts.repeat {
        for (path, topo) in &topologies {
            if cancel.is_cancelled() {
                interrupted = true;
                break 'runs;
            }
            done += 1;
            opts.reporter.line(&format!(
                "hab compare: run {done}/{total}: {} (repetition {rep}/{}) with {}",
                topo.name,
                opts.repeat,
                opts.workload.display()
            ));
            let run_opts = RunOptions {
                topology_path: path.clone(),
                workload_path: opts.workload.clone(),
                out_dir: dir.clone(),
                progress: opts.progress,
                calibrate: opts.calibrate,
                allow_flush: false,
                allow_faults: opts.allow_faults,
                shard: None,
                start: None,
                reporter: opts.reporter.clone(),
            };
            match run(&run_opts, topo, &plan, cancel.clone()).await {
                Ok(outcome) => {
                    opts.reporter
                        .line(&crate::export::table::render(&outcome.report));
                    if outcome.report.status == RunStatus::Interrupted {
                        interrupted = true;
                        break 'runs;
                    }
                }
                Err(e) => {
                    error = Some(e.context(format!("run of topology {}", topo.name)));
                    break 'runs;
                }
            }
        }
    }
    let comparison = match crate::report::render_dir(&dir) {
        Ok(c) => Some(c),
        Err(e) if error.is_some() || interrupted => {
            opts.reporter
                .line(&format!("hab compare: no report: {e:#}"));
            None
        }
        Err(e) => return Err(e),
    };
    Ok(CompareOutcome {
        dir,
        comparison,
        interrupted,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_topology_names_are_refused_before_anything_runs() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().join("w.toml");
        std::fs::write(
            &w,
            "name = \"w\"\n[[workload]]\nname = \"t\"\ntask = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\n",
        )
        .unwrap();
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        std::fs::write(&a, "name = \"same\"\n[broker]\n[backend]\n").unwrap();
        std::fs::write(&b, "name = \"same\"\n[broker]\n[backend]\n").unwrap();
        let opts = |topologies: Vec<PathBuf>| CompareOptions {
            baseline: a.clone(),
            topologies,
            workload: w.clone(),
            repeat: 1,
            out_dir: dir.path().into(),
            progress: false,
            calibrate: None,
            allow_faults: false,
            reporter: std::sync::Arc::new(crate::progress::Silent),
        };
        let e = load_inputs(&opts(vec![b.clone()])).unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("b.toml") && msg.contains("name") && msg.contains("a.toml"),
            "{msg}"
        );
        // A configuration error: `hab` exits 2 on it (tests/cli.rs checks the exit code).
        assert!(
            e.chain().any(|c| c.downcast_ref::<ConfigError>().is_some()),
            "{e:#}"
        );
        let e = load_inputs(&opts(vec![a.clone()])).unwrap_err();
        assert!(format!("{e:#}").contains("given twice"), "{e:#}");
    }
}
