//! A sweep directory read back: its index and the run.json of every cell and of both
//! baseline runs. A run that is missing or unreadable is kept as a problem in words, not
//! an error: an interrupted sweep is rendered with what it measured.

use std::path::{Path, PathBuf};

use crate::record::LoadedRun;
use crate::record::sweep::{CellStatus, SweepIndex};

/// One cell's (or baseline run's) run directory, read back if it could be.
#[derive(Debug, Clone, Default)]
pub struct LoadedCell {
    /// The run, when its run.json was read.
    pub run: Option<LoadedRun>,
    /// Why there is no run (no directory yet, unreadable run.json).
    pub problem: Option<String>,
}

impl LoadedCell {
    /// A cell with its run.
    pub fn of(run: LoadedRun) -> LoadedCell {
        LoadedCell {
            run: Some(run),
            problem: None,
        }
    }

    /// A cell without a run, for `why`.
    pub fn missing(why: impl Into<String>) -> LoadedCell {
        LoadedCell {
            run: None,
            problem: Some(why.into()),
        }
    }

    /// Reads `sweep_dir/rel/run.json` when the index names a directory; `status` says
    /// why there is none otherwise.
    fn load(sweep_dir: &Path, rel: Option<&str>, status: CellStatus) -> LoadedCell {
        let Some(rel) = rel else {
            return LoadedCell::missing(match status {
                CellStatus::Planned => "not reached (planned)",
                CellStatus::Interrupted => "interrupted before its run directory existed",
                CellStatus::Failed => "failed before its run directory existed",
                CellStatus::Measured => "measured, but the index names no run directory",
            });
        };
        match LoadedRun::load(&sweep_dir.join(rel)) {
            Ok(run) => LoadedCell::of(run),
            Err(e) => LoadedCell::missing(format!("{e:#}")),
        }
    }
}

/// A sweep directory read back.
#[derive(Debug, Clone)]
pub struct SweepRuns {
    /// The sweep directory.
    pub dir: PathBuf,
    /// `sweep-index.json`.
    pub index: SweepIndex,
    /// Each cell of `index.cells`, in the same order.
    pub cells: Vec<LoadedCell>,
    /// The baseline's run at the start (every cell's cost is against it).
    pub baseline_start: LoadedCell,
    /// The baseline's run at the end (drift).
    pub baseline_end: LoadedCell,
}

impl SweepRuns {
    /// Reads the index of `dir` and every run it names.
    pub fn load(dir: &Path) -> anyhow::Result<SweepRuns> {
        let index = SweepIndex::read(dir)?;
        let cells = index
            .cells
            .iter()
            .map(|c| LoadedCell::load(dir, c.dir.as_deref(), c.status))
            .collect();
        let baseline = |when: &str| match index.baseline_runs.iter().find(|b| b.when == when) {
            Some(b) => LoadedCell::load(dir, b.dir.as_deref(), b.status),
            None => LoadedCell::missing(format!("the index has no baseline run at the {when}")),
        };
        let (baseline_start, baseline_end) = (baseline("start"), baseline("end"));
        Ok(SweepRuns {
            dir: dir.to_path_buf(),
            index,
            cells,
            baseline_start,
            baseline_end,
        })
    }
}
