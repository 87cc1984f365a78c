//! Measuring a planned sweep: the baseline's cost phase, then every cell on one stack per
//! bring-up group (reconfigured between cells, every setting read back before a cell is
//! measured), then the baseline again (drift). `sweep-index.json` is rewritten after every
//! step, so an interrupted sweep says what it measured; no server outlives the call.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio_util::sync::CancellationToken;

use super::{SweepOptions, SweepPlan, live, stage2};
use crate::cmd::run::{Borrowed, RunOptions, SharedStack, run, run_with};
use crate::config::sweep::design::Cell;
use crate::config::{self, Topology, WorkloadPlan};
use crate::progress::SharedReporter;
use crate::record::RunStatus;
use crate::record::sweep::{
    BaselineRecord, BringUpRecord, CellRecord, CellSetting, CellStatus, KnobRecord,
    SWEEP_INDEX_FILE, SweepIndex, SweepStatus, sweep_dir_name,
};
use crate::stack::{StackDirs, StackHandle};

/// How long a reused stack may take to be healthy again after the previous cell's faults.
const HEALTHY_WITHIN: Duration = Duration::from_secs(90);

/// A finished, interrupted or failed sweep.
#[derive(Debug)]
pub struct SweepRun {
    /// The sweep directory.
    pub dir: PathBuf,
    /// Its index as last written.
    pub index: SweepIndex,
    /// Stopped by Ctrl-C / SIGTERM.
    pub interrupted: bool,
}

/// What every step of the sweep needs.
struct Sweep<'a> {
    dir: PathBuf,
    plan: &'a SweepPlan,
    topology: Topology,
    index: SweepIndex,
    workload: WorkloadPlan,
    progress: bool,
    allow_faults: bool,
    reporter: SharedReporter,
    cancel: CancellationToken,
}

/// Runs the sweep `plan` (from [`super::plan`] on `opts`).
pub async fn execute(
    opts: &SweepOptions,
    plan: &SweepPlan,
    progress: bool,
    reporter: SharedReporter,
    cancel: CancellationToken,
) -> Result<SweepRun> {
    let topology = config::load_topology(&opts.topology)?;
    let mut workload = config::load_workload_plan(&plan.workload.file)?;
    if let Some(k) = plan.repetitions {
        workload = crate::config::sweep::with_repetitions(&workload, k).map_err(|d| {
            anyhow::anyhow!(
                "{}",
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })?;
    }
    let out_dir = std::path::absolute(&opts.out_dir)
        .with_context(|| format!("bad output directory {}", opts.out_dir.display()))?;
    let dir = out_dir.join(sweep_dir_name(&topology.name));
    for d in [
        dir.clone(),
        dir.join("baseline"),
        dir.join("cells"),
        dir.join("plans"),
    ] {
        std::fs::create_dir_all(&d).with_context(|| format!("cannot create {}", d.display()))?;
    }
    let index = first_index(opts, plan, &topology)?;
    let mut sweep = Sweep {
        dir,
        plan,
        topology,
        index,
        workload,
        progress,
        allow_faults: opts.allow_faults,
        reporter,
        cancel,
    };
    sweep.save()?;
    sweep.reporter.line(&format!(
        "hab sweep: sweep directory {}",
        sweep.dir.display()
    ));
    let result = sweep.run_all().await;
    let interrupted = sweep.cancel.is_cancelled();
    sweep.index.finished_unix_ms = Some(crate::clock::now_unix_us() / 1000);
    sweep.index.status = match (&result, interrupted) {
        (_, true) => SweepStatus::Interrupted,
        (Err(_), false) => SweepStatus::Failed,
        (Ok(()), false) if sweep.all_measured() => SweepStatus::Complete,
        (Ok(()), false) => SweepStatus::Failed,
    };
    if let Err(e) = &result {
        sweep.index.error = Some(format!("{e:#}"));
    } else if sweep.index.status == SweepStatus::Failed {
        sweep.index.error = Some("some cells could not be measured (see each cell's error)".into());
    }
    sweep.save()?;
    Ok(SweepRun {
        dir: sweep.dir,
        index: sweep.index,
        interrupted,
    })
}

/// The index before anything runs: the plan and every cell as planned.
fn first_index(opts: &SweepOptions, plan: &SweepPlan, topology: &Topology) -> Result<SweepIndex> {
    let design = &plan.design;
    let source = std::fs::read_to_string(&opts.topology)
        .or_else(|_| toml::to_string(topology))
        .context("cannot read the topology's text")?;
    let all: Vec<String> = design.phases.iter().map(|p| p.workload.clone()).collect();
    let cells = design
        .cells
        .iter()
        .map(|c| cell_record(plan, c, &all, design.requested.contains(&c.index)))
        .collect();
    Ok(SweepIndex {
        hab_version: env!("CARGO_PKG_VERSION").to_string(),
        status: SweepStatus::Running,
        error: None,
        started_unix_ms: crate::clock::now_unix_us() / 1000,
        finished_unix_ms: None,
        topology_file: opts.topology.display().to_string(),
        topology_name: topology.name.clone(),
        topology_source: source,
        workload_file: plan.workload.file.display().to_string(),
        baseline_file: plan.baseline.file.display().to_string(),
        baseline_name: plan.baseline.name.clone(),
        plan: serde_json::to_value(plan)?,
        knobs: design
            .knobs
            .iter()
            .map(|k| KnobRecord {
                key: k.knob.key.to_string(),
                current: k.current.text.clone(),
                values: k.values.iter().map(|v| v.text.clone()).collect(),
                apply: k.knob.apply,
                affects: k.knob.scope,
            })
            .collect(),
        cells,
        baseline_runs: ["start", "end"]
            .iter()
            .map(|w| BaselineRecord {
                when: w.to_string(),
                dir: None,
                status: CellStatus::Planned,
                error: None,
            })
            .collect(),
        bring_ups: Vec::new(),
        stage2: None,
    })
}

/// A cell as the index first has it: planned.
fn cell_record(plan: &SweepPlan, c: &Cell, all: &[String], requested: bool) -> CellRecord {
    CellRecord {
        index: c.index,
        stage: c.stage,
        group: c.group,
        values: c.values.iter().map(|v| v.text.clone()).collect(),
        changed: c
            .changed
            .iter()
            .map(|&k| plan.design.knobs[k].knob.key.to_string())
            .collect(),
        requested,
        scope: c.scope,
        workloads: c.workloads.clone(),
        from_reference: all
            .iter()
            .filter(|w| !c.workloads.contains(w))
            .cloned()
            .collect(),
        setting: CellSetting {
            cell: c.index,
            values: setting_values(plan, c),
            ..Default::default()
        },
        dir: None,
        status: CellStatus::Planned,
        error: None,
    }
}

fn setting_values(plan: &SweepPlan, c: &Cell) -> Vec<(String, String)> {
    plan.design
        .knobs
        .iter()
        .zip(&c.values)
        .map(|(k, v)| (k.knob.key.to_string(), v.text.clone()))
        .collect()
}

impl Sweep<'_> {
    fn save(&self) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(&self.index)?;
        bytes.push(b'\n');
        crate::export::write_atomic(&self.dir.join(SWEEP_INDEX_FILE), &bytes)
    }

    fn all_measured(&self) -> bool {
        self.index
            .cells
            .iter()
            .map(|c| c.status)
            .chain(self.index.baseline_runs.iter().map(|b| b.status))
            .all(|s| s == CellStatus::Measured)
    }

    fn relative(&self, p: &Path) -> String {
        p.strip_prefix(&self.dir).unwrap_or(p).display().to_string()
    }

    /// Baseline, stage 1's cells, stage 2's (when the budget has room), baseline; the
    /// stack of the last group is taken down at the end.
    async fn run_all(&mut self) -> Result<()> {
        self.baseline(0).await?;
        let mut stack: Option<(usize, SharedStack)> = None;
        let cells = self.plan.design.cells.clone();
        self.run_cells(&cells, &mut stack).await?;
        if !self.cancel.is_cancelled() {
            let more = self.stage2()?;
            self.run_cells(&more, &mut stack).await?;
        }
        if let Some((_, s)) = stack.take() {
            shut_down(s).await;
        }
        if !self.cancel.is_cancelled() {
            self.baseline(1).await?;
        }
        Ok(())
    }

    /// Stage 2 of a one-at-a-time design: the grid of the two knobs that moved the
    /// headline switch time most in stage 1, as many cells as the budget's bound allows;
    /// their records join the index. Nothing (and why, in the index) when there is no
    /// stage 2, no room for it, or stage 1 cannot say which knobs moved most.
    fn stage2(&mut self) -> Result<Vec<Cell>> {
        let Some(bound) = &self.plan.design.stage2 else {
            return Ok(Vec::new());
        };
        if bound.cells == 0 {
            self.index.stage2 = Some(format!(
                "not run: stage 1 leaves {:.0} s of the budget, and a stage-2 cell may take {:.0} s",
                bound.left_s, bound.worst_cell_s
            ));
            self.save()?;
            return Ok(Vec::new());
        }
        let max = bound.cells;
        self.save()?;
        let runs = crate::compare::sweep::SweepRuns::load(&self.dir)?;
        let analysis = crate::compare::sweep::analyse(&runs)?;
        let (pair, why) = match stage2::moved_most(&analysis) {
            Ok(p) => p,
            Err(why) => {
                self.index.stage2 = Some(format!("not run: {why}"));
                self.save()?;
                return Ok(Vec::new());
            }
        };
        let cells = crate::config::sweep::design::stage2_cells(
            &self.topology,
            &self.plan.design,
            pair,
            max,
        );
        self.index.stage2 = Some(format!("{} cell(s): {why}", cells.len()));
        self.reporter.line(&format!("hab sweep: stage 2: {why}"));
        let all: Vec<String> = self
            .plan
            .design
            .phases
            .iter()
            .map(|p| p.workload.clone())
            .collect();
        for c in &cells {
            self.index
                .cells
                .push(cell_record(self.plan, c, &all, false));
        }
        self.save()?;
        Ok(cells)
    }

    /// Each of `cells` in turn; a cell that fails is recorded and the next one starts on
    /// a new stack.
    async fn run_cells(
        &mut self,
        cells: &[Cell],
        stack: &mut Option<(usize, SharedStack)>,
    ) -> Result<()> {
        let total = self.index.cells.len();
        for cell in cells {
            if self.cancel.is_cancelled() {
                break;
            }
            self.reporter.line(&format!(
                "hab sweep: cell {}/{total}: {}",
                cell.index + 1,
                setting_values(self.plan, cell)
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            let outcome = self.cell(cell, stack).await;
            match outcome {
                Ok(status) => self.index.cells[cell.index].status = status,
                Err(e) => {
                    // An interrupted or failed run still has its run directory.
                    let run_dir =
                        run_dir_in(&self.dir.join("cells").join(format!("{:02}", cell.index)));
                    let relative = run_dir.map(|d| self.relative(&d));
                    let rec = &mut self.index.cells[cell.index];
                    if rec.dir.is_none() {
                        rec.dir = relative;
                    }
                    rec.status = if self.cancel.is_cancelled() {
                        CellStatus::Interrupted
                    } else {
                        CellStatus::Failed
                    };
                    rec.error = Some(format!("{e:#}"));
                    self.reporter.line(&format!(
                        "hab sweep: cell {} not measured: {e:#}",
                        cell.index
                    ));
                    // Whatever state the stack is in, the next cell starts from a new one.
                    if let Some((_, s)) = stack.take() {
                        shut_down(s).await;
                    }
                }
            }
            self.save()?;
        }
        Ok(())
    }

    /// The baseline's cost phase on a stack of its own (`which`: 0 start, 1 end).
    async fn baseline(&mut self, which: usize) -> Result<()> {
        let plan = self.cost_plan();
        let path = self.dir.join("plans").join("cost.toml");
        write_toml(&path, &plan)?;
        let topology = config::load_topology(&self.plan.baseline.file)?;
        self.reporter.line(&format!(
            "hab sweep: baseline {} ({}): its cost phase",
            topology.name, self.index.baseline_runs[which].when
        ));
        let opts = self.run_options(
            self.plan.baseline.file.clone(),
            path,
            self.dir.join("baseline"),
        );
        let outcome = run(&opts, &topology, &plan, self.cancel.clone()).await;
        let rec_status;
        let mut rec_error = None;
        let mut rec_dir = None;
        match outcome {
            Ok(o) => {
                rec_dir = Some(self.relative(&o.dir));
                rec_status = status_of(o.report.status);
            }
            Err(e) => {
                rec_status = CellStatus::Failed;
                rec_error = Some(format!("{e:#}"));
            }
        }
        let rec = &mut self.index.baseline_runs[which];
        rec.status = rec_status;
        rec.error = rec_error.clone();
        rec.dir = rec_dir;
        self.save()?;
        if let Some(e) = rec_error
            && !self.cancel.is_cancelled()
        {
            bail!("the baseline's cost phase failed: {e}");
        }
        Ok(())
    }

    /// The workloads without faults: the cost phase.
    fn cost_plan(&self) -> WorkloadPlan {
        let cost: Vec<&str> = self
            .plan
            .design
            .phases
            .iter()
            .filter(|p| p.scope.is_none())
            .map(|p| p.workload.as_str())
            .collect();
        self.plan_of(&cost)
    }

    fn plan_of(&self, names: &[&str]) -> WorkloadPlan {
        let mut plan = self.workload.clone();
        plan.workloads.retain(|w| names.contains(&w.name.as_str()));
        plan
    }

    fn run_options(&self, topology: PathBuf, workload: PathBuf, out: PathBuf) -> RunOptions {
        RunOptions {
            topology_path: topology,
            workload_path: workload,
            out_dir: out,
            progress: self.progress,
            calibrate: None,
            allow_flush: false,
            allow_faults: self.allow_faults,
            shard: None,
            start: None,
            reporter: self.reporter.clone(),
        }
    }

    /// One cell: its stack (brought up, or reused and reconfigured), its settings read
    /// back, its run.
    async fn cell(
        &mut self,
        cell: &Cell,
        stack: &mut Option<(usize, SharedStack)>,
    ) -> Result<CellStatus> {
        let cell_dir = self.dir.join("cells").join(format!("{:02}", cell.index));
        std::fs::create_dir_all(&cell_dir)
            .with_context(|| format!("cannot create {}", cell_dir.display()))?;
        let topology_path = cell_dir.join("topology.toml");
        write_toml(&topology_path, &cell.topology)?;
        let names: Vec<&str> = cell.workloads.iter().map(String::as_str).collect();
        let plan = self.plan_of(&names);
        let workload_path = cell_dir.join("workload.toml");
        write_toml(&workload_path, &plan)?;

        let reuse = matches!(stack, Some((g, _)) if *g == cell.group);
        let mut setting = CellSetting {
            cell: cell.index,
            values: setting_values(self.plan, cell),
            brought_up: !reuse,
            ..Default::default()
        };
        if !reuse {
            if let Some((_, s)) = stack.take() {
                shut_down(s).await;
            }
            let logs = self.dir.join("stack").join(format!("group-{}", cell.group));
            let dirs = StackDirs::create(&logs)?;
            self.reporter.line(&format!(
                "hab sweep: starting {} for group {} …",
                StackHandle::describe(&cell.topology),
                cell.group
            ));
            let started = tokio::select! {
                s = StackHandle::start(&cell.topology, &dirs) => s?,
                _ = self.cancel.cancelled() => bail!("interrupted while the stack was starting"),
            };
            self.index.bring_ups.push(BringUpRecord {
                group: cell.group,
                first_cell: cell.index,
                bringup_ms: started.bringup_ms(),
            });
            *stack = Some((cell.group, Arc::new(tokio::sync::Mutex::new(started))));
        }
        let shared = stack
            .as_ref()
            .map(|(_, s)| s.clone())
            .expect("a stack is up");
        {
            let mut s = shared.lock().await;
            if reuse {
                // The previous cell's faults may still be healing.
                s.wait_healthy(HEALTHY_WITHIN)
                    .await
                    .context("the stack did not become healthy after the previous cell")?;
                setting.applied = live::apply(&mut s, cell).await?;
                s.wait_healthy(HEALTHY_WITHIN)
                    .await
                    .context("the stack did not become healthy after reconfiguring it")?;
            }
            let url = s.broker_url();
            setting.read_back = live::read_back(&s, &self.plan.design, cell, &url).await?;
        }
        self.index.cells[cell.index].setting = setting.clone();
        self.save()?;
        let wrong: Vec<String> = setting
            .read_back
            .iter()
            .filter(|r| !r.matches)
            .map(|r| {
                format!(
                    "{}: asked {}, {} says {}",
                    r.key, r.expected, r.source, r.found
                )
            })
            .collect();
        if !wrong.is_empty() {
            bail!(
                "a setting is not in effect, so the cell is not measured: {}",
                wrong.join("; ")
            );
        }
        let applied: Vec<String> = setting
            .applied
            .iter()
            .map(|a| {
                format!(
                    "{} -> {} by {} ({} ms)",
                    a.key,
                    a.value,
                    a.how.describe(),
                    a.took_ms
                )
            })
            .collect();
        self.reporter.line(&format!(
            "hab sweep: cell {}: {}; {} settings read back, all as asked",
            cell.index,
            if reuse {
                if applied.is_empty() {
                    "stack reused unchanged".to_string()
                } else {
                    format!("stack reused: {}", applied.join(", "))
                }
            } else {
                "stack brought up with the cell's settings".to_string()
            },
            setting.read_back.len()
        ));
        let opts = self.run_options(topology_path, workload_path, cell_dir);
        let borrowed = Borrowed {
            stack: shared,
            cell: Some(setting),
        };
        let outcome = run_with(
            &opts,
            &cell.topology,
            &plan,
            Some(borrowed),
            self.cancel.clone(),
        )
        .await?;
        self.index.cells[cell.index].dir = Some(self.relative(&outcome.dir));
        Ok(status_of(outcome.report.status))
    }
}

/// The run directory inside a cell's directory (the one holding a run.json), if any.
fn run_dir_in(cell_dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(cell_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join(crate::record::names::RUN_FILE).is_file())
}

fn status_of(s: RunStatus) -> CellStatus {
    match s {
        RunStatus::Complete => CellStatus::Measured,
        RunStatus::Interrupted => CellStatus::Interrupted,
        RunStatus::Failed | RunStatus::Running => CellStatus::Failed,
    }
}

async fn shut_down(stack: SharedStack) {
    match Arc::try_unwrap(stack) {
        Ok(s) => s.into_inner().shutdown().await,
        // Still shared (a fault task): dropping the last handle kills every server.
        Err(_) => {
            tracing::warn!("sweep stack still shared at teardown; its servers are killed on drop")
        }
    }
}

fn write_toml<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text =
        toml::to_string(value).with_context(|| format!("cannot write {}", path.display()))?;
    crate::export::write_atomic(path, text.as_bytes())
}
