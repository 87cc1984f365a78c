//! The design of a sweep: which cells to measure, in which order, and how long it takes.
//!
//! - **Grid**: every combination of each knob's values and the topology's own (so the
//!   reference cell, the topology as written, is one), when its estimate fits the budget.
//! - **One-at-a-time** otherwise (stage 1): the reference cell, then each knob's other
//!   values with every other knob at the topology's value, then the cells a sweep file
//!   asks for whatever the design (`[[cell]]`, e.g. the aggressive corner). Stage 2, after stage 1 is
//!   measured, is a grid on the two knobs that moved the median switch time most; which
//!   two is only known then, so the plan bounds it: the most cells any pair could add, the
//!   dearest such cell, and how many fit in what stage 1 leaves of the budget.
//!
//! A cell measures the cost phase, the stall phase and only the fault phases its changed
//! knobs can affect (the reference cell measures all; the others are taken from it).
//! Cells are grouped by the values of their bring-up knobs so that each such stack is
//! brought up once.

use serde::Serialize;

use super::estimate::{self, Assumption, PhaseEstimate};
use super::knob::{ApplyKind, FaultScope};
use super::vary::{self, KnobValue, VariedKnob};
use crate::config::{Topology, WorkloadPlan};

/// Which design a sweep uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DesignKind {
    /// Every combination of the values.
    Grid,
    /// One knob at a time around the topology's values, then a grid on two knobs.
    OneAtATime,
}

/// One cell: a setting of every varied knob.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Position in the order the cells run (0 = the reference cell).
    pub index: usize,
    /// Which stage (1; the grid has only one).
    pub stage: u8,
    /// The bring-up group (0-based): cells of one group share one stack.
    pub group: usize,
    /// The value of each varied knob, in the order of the design's knobs.
    pub values: Vec<KnobValue>,
    /// Indices of the knobs whose value differs from the reference cell's.
    pub changed: Vec<usize>,
    /// The faults this cell measures (the reference cell: all).
    pub scope: FaultScope,
    /// Knobs changed from the previous cell and how: what the stack goes through before
    /// the cell is measured (empty when the cell brings a stack up).
    pub applied: Vec<Applied>,
    /// The workloads this cell runs, by name.
    pub workloads: Vec<String>,
    /// Estimated seconds of the bring-up this cell starts (0 unless it opens a group).
    pub bring_up_s: f64,
    /// Estimated seconds to reconfigure the live stack from the previous cell (A4).
    pub reconfigure_s: f64,
    /// Estimated seconds of the cell's warm-up and workloads.
    pub measure_s: f64,
    /// The cell's topology: the swept one with this cell's values.
    #[serde(skip)]
    pub topology: Topology,
}

impl Cell {
    /// All of the cell's estimated seconds.
    pub fn seconds(&self) -> f64 {
        self.bring_up_s + self.reconfigure_s + self.measure_s
    }
}

/// One knob changed on the live stack before a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// Index of the knob in the design's knobs.
    pub knob: usize,
    /// Its key, e.g. `proxy.fall`.
    pub key: &'static str,
    /// How it is changed.
    pub how: ApplyKind,
}

/// The bound of stage 2 of a one-at-a-time design.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage2 {
    /// The most cells any pair of knobs adds (its grid minus the cells stage 1 measured).
    pub max_cells: usize,
    /// The pair that adds them.
    pub pair: (String, String),
    /// The dearest cell any pair can add, in seconds.
    pub worst_cell_s: f64,
    /// Seconds of the budget stage 1 leaves.
    pub left_s: f64,
    /// How many stage-2 cells run: as many as fit in `left_s` at `worst_cell_s`, at most
    /// the pair's.
    pub cells: usize,
    /// The bound of stage 2: `cells × worst_cell_s`.
    pub bound_s: f64,
}

/// A sweep's plan: the cells and the arithmetic of its duration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Design {
    /// Grid or one-at-a-time.
    pub kind: DesignKind,
    /// The varied knobs, with their values.
    pub knobs: Vec<VariedKnob>,
    /// The cells to measure now, in order (stage 1 of one-at-a-time).
    pub cells: Vec<Cell>,
    /// How many cells the full grid has and its estimated seconds.
    pub grid_cells: usize,
    /// Estimated seconds of the full grid (baseline included).
    pub grid_s: f64,
    /// Indices of the cells a sweep file's `[[cell]]` tables asked for.
    pub requested: Vec<usize>,
    /// Combinations left out because they are not a valid topology: `(cell, why)`.
    pub invalid: Vec<(String, String)>,
    /// Stage 2's bound (one-at-a-time with at least two knobs).
    pub stage2: Option<Stage2>,
    /// The workloads of the plan, estimated.
    pub phases: Vec<PhaseEstimate>,
    /// Seconds of the warm-up every run starts with (A1).
    pub warm_up_s: f64,
    /// Seconds of the baseline: bring-up, warm-up and cost phase, at start and end (A6).
    pub baseline_s: f64,
    /// Seconds of the cells of [`Design::cells`] plus the baseline.
    pub planned_s: f64,
    /// `planned_s` plus stage 2's bound.
    pub total_s: f64,
    /// The budget, in seconds.
    pub budget_s: f64,
    /// What the estimate assumes.
    pub assumptions: Vec<Assumption>,
}

/// Why no design fits.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DesignError {
    /// Even one-at-a-time is longer than the budget.
    #[error(
        "the budget of {budget} is too short: even one knob at a time ({cells} cells) takes ~{needed}; \
         raise the budget to at least {needed} or give fewer values"
    )]
    OverBudget {
        /// The budget, formatted.
        budget: String,
        /// Stage 1's estimate, formatted.
        needed: String,
        /// Stage 1's cells.
        cells: usize,
    },
}

/// Inputs of a design.
pub struct Inputs<'a> {
    /// The swept topology (the reference cell).
    pub topology: &'a Topology,
    /// The knobs and their values.
    pub knobs: Vec<VariedKnob>,
    /// The workload plan every cell runs.
    pub plan: &'a WorkloadPlan,
    /// The baseline topology.
    pub baseline: &'a Topology,
    /// The budget, in seconds.
    pub budget_s: f64,
    /// Cells measured whatever the design (a sweep file's `[[cell]]` tables): settings of
    /// `knobs`, in their order.
    pub extra: Vec<Vec<KnobValue>>,
}

/// Chooses the design: the full grid if its estimate fits the budget, else one at a time.
pub fn design(inputs: Inputs<'_>) -> Result<Design, DesignError> {
    let Inputs {
        topology,
        knobs,
        plan,
        baseline,
        budget_s,
        extra,
    } = inputs;
    let phases = estimate::phases(plan, topology);
    let warm_up_s = estimate::warm_up_seconds(plan);
    let cost_s: f64 = phases
        .iter()
        .filter(|p| p.scope.is_none())
        .map(|p| p.seconds)
        .sum();
    let baseline_s = 2.0
        * (estimate::bring_up_seconds(baseline) + warm_up_s + estimate::RUN_OVERHEAD_S + cost_s);
    let reference: Vec<KnobValue> = knobs.iter().map(|k| k.current.clone()).collect();
    let ctx = Ctx {
        topology,
        knobs: &knobs,
        phases: &phases,
        warm_up_s,
    };

    let mut invalid = Vec::new();
    let grid = ctx.cells(grid_settings(&knobs, &reference), 1, &mut invalid);
    let grid_s = baseline_s + grid.iter().map(Cell::seconds).sum::<f64>();
    let mut out = Design {
        kind: DesignKind::Grid,
        grid_cells: grid.len(),
        grid_s,
        requested: requested(&grid, &extra),
        cells: grid,
        invalid,
        stage2: None,
        phases: phases.clone(),
        warm_up_s,
        baseline_s,
        planned_s: grid_s,
        total_s: grid_s,
        budget_s,
        assumptions: estimate::assumptions(),
        knobs: knobs.clone(),
    };
    if grid_s <= budget_s {
        return Ok(out);
    }

    let mut invalid = Vec::new();
    let mut settings = one_at_a_time(&knobs, &reference);
    for e in &extra {
        if !settings.contains(e) {
            settings.push(e.clone());
        }
    }
    let stage1 = ctx.cells(settings, 1, &mut invalid);
    let planned_s = baseline_s + stage1.iter().map(Cell::seconds).sum::<f64>();
    if planned_s > budget_s {
        return Err(DesignError::OverBudget {
            budget: estimate::format_seconds(budget_s),
            needed: estimate::format_seconds(planned_s),
            cells: stage1.len(),
        });
    }
    let stage2 = ctx.stage2(&reference, budget_s - planned_s);
    out.kind = DesignKind::OneAtATime;
    out.requested = requested(&stage1, &extra);
    out.cells = stage1;
    out.invalid = invalid;
    out.planned_s = planned_s;
    out.total_s = planned_s + stage2.as_ref().map_or(0.0, |s| s.bound_s);
    out.stage2 = stage2;
    Ok(out)
}

/// Stage 2 of a one-at-a-time design, once stage 1 has said which two knobs moved the
/// switch time most: the grid of knobs `a` and `b` at values other than the topology's
/// (the other knobs at the topology's), as cells that run after `design`'s stage-1 cells —
/// indexed after them, on the last cell's stack when the bring-up knobs allow it, each
/// reconfigured from the cell before — at most `max` of them. `topology` is the swept one.
pub fn stage2_cells(
    topology: &Topology,
    design: &Design,
    (a, b): (usize, usize),
    max: usize,
) -> Vec<Cell> {
    let ctx = Ctx {
        topology,
        knobs: &design.knobs,
        phases: &design.phases,
        warm_up_s: design.warm_up_s,
    };
    let reference: Vec<KnobValue> = design.knobs.iter().map(|k| k.current.clone()).collect();
    let (ka, kb) = (&design.knobs[a], &design.knobs[b]);
    let mut settings = Vec::new();
    for va in ka.others() {
        for vb in kb.others() {
            let mut s = reference.clone();
            s[a] = va.clone();
            s[b] = vb.clone();
            if !design.cells.iter().any(|c| c.values == s) {
                settings.push(s);
            }
        }
    }
    let mut ignored = Vec::new();
    let mut cells = ctx.cells(settings, 2, &mut ignored);
    cells.truncate(max);
    let Some(last) = design.cells.last() else {
        return cells;
    };
    let groups = design.cells.iter().map(|c| c.group).max().unwrap_or(0) + 1;
    let mut previous = last.clone();
    for (i, c) in cells.iter_mut().enumerate() {
        c.index = last.index + 1 + i;
        let same_stack = ctx.bring_up_key(&c.values) == ctx.bring_up_key(&previous.values);
        c.group = if same_stack {
            previous.group
        } else {
            groups + i
        };
        c.applied = if same_stack {
            (0..design.knobs.len())
                .filter(|&k| previous.values[k] != c.values[k])
                .map(|k| Applied {
                    knob: k,
                    key: design.knobs[k].knob.key,
                    how: design.knobs[k].knob.apply,
                })
                .collect()
        } else {
            Vec::new()
        };
        c.bring_up_s = if same_stack {
            0.0
        } else {
            estimate::bring_up_seconds(&c.topology)
        };
        previous = c.clone();
    }
    cells
}

/// The indices of the cells whose setting is one of `extra`.
fn requested(cells: &[Cell], extra: &[Vec<KnobValue>]) -> Vec<usize> {
    cells
        .iter()
        .filter(|c| extra.contains(&c.values))
        .map(|c| c.index)
        .collect()
}

/// Every combination of each knob's levels (its values and the topology's own), the
/// reference first.
fn grid_settings(knobs: &[VariedKnob], reference: &[KnobValue]) -> Vec<Vec<KnobValue>> {
    let mut out: Vec<Vec<KnobValue>> = vec![Vec::new()];
    for k in knobs {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                k.levels().into_iter().map(move |v| {
                    let mut p = prefix.clone();
                    p.push(v.clone());
                    p
                })
            })
            .collect();
    }
    out.retain(|s| s != reference);
    out.insert(0, reference.to_vec());
    out
}

/// The reference, then each knob's other values with every other knob at the reference.
fn one_at_a_time(knobs: &[VariedKnob], reference: &[KnobValue]) -> Vec<Vec<KnobValue>> {
    let mut out = vec![reference.to_vec()];
    for (i, k) in knobs.iter().enumerate() {
        for v in k.others() {
            let mut s = reference.to_vec();
            s[i] = v.clone();
            out.push(s);
        }
    }
    out
}

/// What every cell's estimate needs.
struct Ctx<'a> {
    topology: &'a Topology,
    knobs: &'a [VariedKnob],
    phases: &'a [PhaseEstimate],
    warm_up_s: f64,
}

impl Ctx<'_> {
    /// The values of the bring-up knobs in a setting: cells that share them share a stack.
    fn bring_up_key(&self, values: &[KnobValue]) -> Vec<KnobValue> {
        self.knobs
            .iter()
            .zip(values)
            .filter(|(k, _)| k.knob.apply == ApplyKind::BringUp)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The settings as cells: invalid combinations left out (into `invalid`), grouped by
    /// bring-up values (the reference's group first, then in order of appearance), each
    /// estimated.
    fn cells(
        &self,
        settings: Vec<Vec<KnobValue>>,
        stage: u8,
        invalid: &mut Vec<(String, String)>,
    ) -> Vec<Cell> {
        let mut valid = Vec::new();
        for values in settings {
            let pairs: Vec<(&str, &KnobValue)> = self
                .knobs
                .iter()
                .zip(&values)
                .map(|(k, v)| (k.knob.key, v))
                .collect();
            match vary::apply(self.topology, &pairs) {
                Ok(t) => valid.push((values, t)),
                Err(why) => invalid.push((self.label(&values), why)),
            }
        }
        let mut keys: Vec<Vec<KnobValue>> = Vec::new();
        for (v, _) in &valid {
            let key = self.bring_up_key(v);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        // A stable sort: within a group the order given is kept.
        valid.sort_by_key(|(v, _)| keys.iter().position(|k| *k == self.bring_up_key(v)));
        let mut out: Vec<Cell> = Vec::new();
        for (index, (values, topology)) in valid.into_iter().enumerate() {
            let group = keys
                .iter()
                .position(|k| *k == self.bring_up_key(&values))
                .unwrap_or(0);
            let previous = out.last();
            let opens_group = previous.is_none_or(|p| p.group != group);
            let applied: Vec<Applied> = match previous {
                Some(p) if !opens_group => (0..self.knobs.len())
                    .filter(|&i| p.values[i] != values[i])
                    .map(|i| Applied {
                        knob: i,
                        key: self.knobs[i].knob.key,
                        how: self.knobs[i].knob.apply,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let mut kinds: Vec<ApplyKind> = applied.iter().map(|a| a.how).collect();
            kinds.sort();
            kinds.dedup();
            let changed: Vec<usize> = (0..self.knobs.len())
                .filter(|&i| values[i] != self.knobs[i].current)
                .collect();
            let scope = changed
                .iter()
                .map(|&i| self.knobs[i].knob.scope)
                .reduce(FaultScope::union)
                .unwrap_or(FaultScope::Both);
            let runs: Vec<&PhaseEstimate> =
                self.phases.iter().filter(|p| p.runs_in(scope)).collect();
            out.push(Cell {
                index,
                stage,
                group,
                changed,
                scope,
                applied,
                workloads: runs.iter().map(|p| p.workload.clone()).collect(),
                bring_up_s: if opens_group {
                    estimate::bring_up_seconds(&topology)
                } else {
                    0.0
                },
                reconfigure_s: estimate::reconfigure_seconds(&kinds, &topology),
                measure_s: self.warm_up_s
                    + estimate::RUN_OVERHEAD_S
                    + runs.iter().map(|p| p.seconds).sum::<f64>(),
                values,
                topology,
            });
        }
        out
    }

    /// `key=value` of each knob changed from the reference, or `reference`.
    fn label(&self, values: &[KnobValue]) -> String {
        let parts: Vec<String> = self
            .knobs
            .iter()
            .zip(values)
            .filter(|(k, v)| k.current != **v)
            .map(|(k, v)| format!("{}={}", k.knob.key, v.text))
            .collect();
        if parts.is_empty() {
            "reference".into()
        } else {
            parts.join(" ")
        }
    }

    /// Stage 2's bound: over every pair of knobs, the cells its grid adds to stage 1 and
    /// the dearest of them (a cell of a bring-up knob counted with its bring-up).
    fn stage2(&self, reference: &[KnobValue], left_s: f64) -> Option<Stage2> {
        let mut best: Option<Stage2> = None;
        let mut worst_cell_s: f64 = 0.0;
        for a in 0..self.knobs.len() {
            for b in a + 1..self.knobs.len() {
                let (ka, kb) = (&self.knobs[a], &self.knobs[b]);
                let mut settings = Vec::new();
                for va in ka.levels() {
                    for vb in kb.levels() {
                        if *va != ka.current && *vb != kb.current {
                            let mut s = reference.to_vec();
                            s[a] = va.clone();
                            s[b] = vb.clone();
                            settings.push(s);
                        }
                    }
                }
                let mut ignored = Vec::new();
                let cells = self.cells(settings, 2, &mut ignored);
                for c in &cells {
                    // Every stage-2 cell counted as if it opened a group of its own when a
                    // bring-up knob is in the pair; reconfiguration always counted.
                    let bring_up = if ka.knob.apply == ApplyKind::BringUp
                        || kb.knob.apply == ApplyKind::BringUp
                    {
                        estimate::bring_up_seconds(&c.topology)
                    } else {
                        0.0
                    };
                    let mut kinds = vec![ka.knob.apply, kb.knob.apply];
                    kinds.dedup();
                    let s =
                        bring_up + estimate::reconfigure_seconds(&kinds, &c.topology) + c.measure_s;
                    worst_cell_s = worst_cell_s.max(s);
                }
                if best.as_ref().is_none_or(|s| cells.len() > s.max_cells) {
                    best = Some(Stage2 {
                        max_cells: cells.len(),
                        pair: (ka.knob.key.to_string(), kb.knob.key.to_string()),
                        worst_cell_s: 0.0,
                        left_s,
                        cells: 0,
                        bound_s: 0.0,
                    });
                }
            }
        }
        let mut s = best.filter(|s| s.max_cells > 0)?;
        s.worst_cell_s = worst_cell_s;
        let fit = if worst_cell_s > 0.0 {
            (left_s / worst_cell_s).floor().max(0.0) as usize
        } else {
            s.max_cells
        };
        s.cells = fit.min(s.max_cells);
        s.bound_s = s.cells as f64 * worst_cell_s;
        Some(s)
    }
}

#[cfg(test)]
mod tests;
