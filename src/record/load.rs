//! Run directories read back: what a report or a comparison is made of, the run
//! directories of each topology read from their run.json files. `hab compare` writes runs and then reads them back through this
//! module exactly as `hab report DIR` does, so a re-rendered report equals the first one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::RunReport;
use super::names::{INDEX_FILE, RUN_FILE};
use crate::metrics::LatencyHistogram;

/// One run directory and its run.json.
#[derive(Debug, Clone)]
pub struct LoadedRun {
    /// The run directory.
    pub dir: PathBuf,
    /// Its run.json.
    pub report: RunReport,
}

impl LoadedRun {
    /// Read `dir/run.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(RUN_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let report: RunReport = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a run.json hab can read", path.display()))?;
        Ok(LoadedRun {
            dir: dir.to_path_buf(),
            report,
        })
    }

    /// The topology's name (from the topology embedded in run.json).
    pub fn topology_name(&self) -> String {
        self.report
            .topology
            .get("name")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| self.report.name.clone())
    }
}

/// Every run of one topology (one per repetition), in the order they ran.
#[derive(Debug, Clone)]
pub struct TopologyRuns {
    /// Topology name.
    pub name: String,
    /// Path of its topology file.
    pub file: String,
    /// Its runs.
    pub runs: Vec<LoadedRun>,
}

impl TopologyRuns {
    /// The histogram of `stage` (latency, publish, queue_wait, service, result_delay,
    /// schedule_lag) of workload `workload`, merged over every repetition. `None` if no
    /// run has that workload.
    pub fn merged_histogram(
        &self,
        workload: &str,
        stage: &str,
    ) -> Result<Option<LatencyHistogram>> {
        let mut merged: Option<LatencyHistogram> = None;
        for run in &self.runs {
            let Some(w) = run.report.workloads.iter().find(|w| w.name == workload) else {
                continue;
            };
            let Some(b64) = w.histograms.get(stage) else {
                continue;
            };
            let h = LatencyHistogram::from_base64(b64).with_context(|| {
                format!(
                    "{}: histogram {stage} of workload {workload}",
                    run.dir.join(RUN_FILE).display()
                )
            })?;
            merged.get_or_insert_with(LatencyHistogram::new).merge(&h);
        }
        Ok(merged)
    }

    /// Workload names in plan order (from the first run that has workloads).
    pub fn workload_names(&self) -> Vec<String> {
        self.runs
            .iter()
            .find(|r| !r.report.workloads.is_empty())
            .map(|r| r.report.workloads.iter().map(|w| w.name.clone()).collect())
            .unwrap_or_default()
    }
}

/// The runs of a comparison: the baseline first, then each topology in the order given.
#[derive(Debug, Clone)]
pub struct RunSet {
    /// Name of the baseline topology (the first of `topologies`).
    pub baseline: String,
    /// The topologies, baseline first.
    pub topologies: Vec<TopologyRuns>,
}

impl RunSet {
    /// Read a comparison directory (run directories one level down, `compare.json` for
    /// the order) or a single run directory.
    pub fn load(dir: &Path) -> Result<Self> {
        if dir.join(RUN_FILE).is_file() {
            let run = LoadedRun::load(dir)?;
            let name = run.topology_name();
            return Ok(RunSet {
                baseline: name.clone(),
                topologies: vec![TopologyRuns {
                    name,
                    file: run.report.topology_file.clone(),
                    runs: vec![run],
                }],
            });
        }
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read directory {}", dir.display()))?;
        let mut runs = Vec::new();
        for e in entries {
            let path = e?.path();
            if path.join(RUN_FILE).is_file() {
                runs.push(LoadedRun::load(&path)?);
            }
        }
        if runs.is_empty() {
            bail!(
                "{} holds no run.json (neither a run directory nor a comparison directory)",
                dir.display()
            );
        }
        runs.sort_by_key(|r| r.report.started_unix_ms);
        let order: Vec<String> = match std::fs::read_to_string(dir.join(INDEX_FILE)) {
            Ok(text) => {
                let v: serde_json::Value = serde_json::from_str(&text).with_context(|| {
                    format!("{} is not valid JSON", dir.join(INDEX_FILE).display())
                })?;
                v.get("topologies")
                    .and_then(|t| t.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Err(_) => Vec::new(),
        };
        let mut topologies: Vec<TopologyRuns> = Vec::new();
        for run in runs {
            let name = run.topology_name();
            match topologies.iter_mut().find(|t| t.name == name) {
                Some(t) => t.runs.push(run),
                None => topologies.push(TopologyRuns {
                    name,
                    file: run.report.topology_file.clone(),
                    runs: vec![run],
                }),
            }
        }
        // The recorded order first (baseline first); topologies it does not name keep
        // the order in which they first ran.
        topologies.sort_by_key(|t| {
            order
                .iter()
                .position(|o| *o == t.name)
                .unwrap_or(usize::MAX)
        });
        Ok(RunSet {
            baseline: topologies[0].name.clone(),
            topologies,
        })
    }
}
