//! A sweep: the same measurements over several settings of one topology (`hab sweep`).
//!
//! Vocabulary, not a command: the knobs, the sweep file and the design of the experiment
//! are pure functions of the topology and workload files, and the sweep's record and
//! report (lower than the commands) will need to read the cells and how they were chosen.
//!
//! # Layout
//! - [`knob`]: the catalogue of knobs ([`knob::KNOBS`]): topology path, how a cell applies
//!   it on a live stack, which faults it can affect, what the topology needs.
//! - [`vary`]: `--vary KEY=V1,V2,…` and sweep-file values checked and applied to a topology.
//! - [`estimate`]: how long a cell, a bring-up and the baseline take, from the workload
//!   plan and the topology, with every assumption named.
//! - [`design`]: the cells to measure: a full grid when it fits the budget, otherwise
//!   one-at-a-time around the topology's values and a bounded second stage.
//! - this file: the sweep file (`sweeps/*.toml`) and its checks.

pub mod design;
pub mod estimate;
pub mod knob;
pub mod vary;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::workload::MAX_FAULT_REPEAT;
use crate::config::{ConfigError, Diagnostic, Topology, WorkloadPlan};

pub use design::{Design, DesignError, DesignKind};
pub use knob::{ApplyKind, FaultScope, KNOBS, Knob};
pub use vary::{KnobValue, VariedKnob};

/// The budget of a sweep when neither the command line nor the sweep file gives one.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30 * 60);

/// A sweep file (`sweeps/*.toml`): the plan of a sweep without the topology it runs on.
/// Paths are taken as given (relative to the working directory, as on the command line);
/// the command line's flags override each setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    /// Short identifier; only `[A-Za-z0-9_.-]`.
    pub name: String,
    /// One line for humans.
    #[serde(default)]
    pub description: String,
    /// The workload file every cell runs (absent: `workloads/sweep.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<PathBuf>,
    /// The baseline topology the cost of HA is measured against (absent:
    /// `topologies/standalone.toml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<PathBuf>,
    /// How long the sweep may take (absent: 30 minutes).
    #[serde(
        default,
        with = "crate::config::duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub budget: Option<Duration>,
    /// Repetitions K of each fault of the fault phases (absent: as the workload file says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetitions: Option<u32>,
    /// The knobs and their values (TOML: `[[knob]]` tables).
    #[serde(rename = "knob", default)]
    pub knobs: Vec<KnobSpec>,
    /// Cells measured whatever the design (TOML: `[[cell]]` tables of `"knob.key" =
    /// value`; knobs left out keep the topology's value), e.g. the aggressive corner that
    /// one knob at a time never reaches. Each value must be one of its knob's values.
    #[serde(rename = "cell", default, skip_serializing_if = "Vec::is_empty")]
    pub cells: Vec<toml::Table>,
}

/// One `[[knob]]` of a sweep file: `key = "proxy.fall"`, `values = [1, 2, 3]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnobSpec {
    /// The topology path, e.g. `proxy.check_interval`.
    pub key: String,
    /// The values, typed as in a topology file (`"250ms"`, `2`, `"quorum"`, `true`).
    pub values: Vec<toml::Value>,
}

impl SweepFile {
    /// The checks that need no topology: name, budget, repetitions, at least one knob,
    /// known keys, each key once.
    pub fn validate(&self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        crate::config::check_name(&mut out, "name", &self.name);
        if self.budget.is_some_and(|b| b.is_zero()) {
            out.push(Diagnostic::new(
                "budget",
                r#"must be longer than zero, e.g. "30m""#,
            ));
        }
        if let Some(k) = self.repetitions
            && !(1..=MAX_FAULT_REPEAT).contains(&k)
        {
            out.push(Diagnostic::new(
                "repetitions",
                format!("must be between 1 and {MAX_FAULT_REPEAT}, got {k}"),
            ));
        }
        if self.knobs.is_empty() {
            out.push(Diagnostic::new(
                "knob",
                "at least one [[knob]] table (key and values) is required",
            ));
        }
        for (i, k) in self.knobs.iter().enumerate() {
            if knob::find(&k.key).is_none() {
                out.push(Diagnostic::new(
                    knob_location(i, &k.key, "key"),
                    format!(
                        "unknown knob {:?}; a sweep varies one of: {}",
                        k.key,
                        knob::keys()
                    ),
                ));
            }
            if let Some(first) = self.knobs[..i].iter().position(|o| o.key == k.key) {
                out.push(Diagnostic::new(
                    knob_location(i, &k.key, "key"),
                    format!("also given by knob[{first}]; give each knob once"),
                ));
            }
        }
        for (i, cell) in self.cells.iter().enumerate() {
            if cell.is_empty() {
                out.push(Diagnostic::new(
                    format!("cell[{i}]"),
                    "names no knob; give `\"knob.key\" = value` for one or more knobs",
                ));
            }
            for key in cell.keys() {
                if !self.knobs.iter().any(|k| k.key == *key) {
                    out.push(Diagnostic::new(
                        format!("cell[{i}].{key:?}"),
                        "not a knob of this sweep; a cell sets knobs given by [[knob]] tables",
                    ));
                }
            }
        }
        out
    }

    /// The `[[cell]]` tables as settings of `knobs` (in their order; a knob a cell leaves
    /// out at the topology's value). A value must be one of its knob's values (written as
    /// the topology writes it: `0.25s` is `250ms`), so a cell stays on the sweep's levels.
    pub fn resolve_cells(
        &self,
        topology: &Topology,
        knobs: &[VariedKnob],
    ) -> Result<Vec<Vec<KnobValue>>, Vec<Diagnostic>> {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for (i, cell) in self.cells.iter().enumerate() {
            let mut setting: Vec<KnobValue> = knobs.iter().map(|k| k.current.clone()).collect();
            for (key, value) in cell {
                let at = format!("cell[{i}].{key:?}");
                let Some(j) = knobs.iter().position(|k| k.knob.key == key) else {
                    problems.push(Diagnostic::new(at, "not a knob of this sweep"));
                    continue;
                };
                let given = KnobValue {
                    text: String::new(),
                    toml: Some(value.clone()),
                };
                let canonical = vary::apply(topology, &[(key.as_str(), &given)])
                    .map(|t| vary::current(&t, knobs[j].knob));
                match canonical {
                    Ok(v) if knobs[j].levels().contains(&&v) => setting[j] = v,
                    Ok(v) => problems.push(Diagnostic::new(
                        at,
                        format!(
                            "{} is not one of the knob's values ({}); add it to its values",
                            v.text,
                            knobs[j]
                                .levels()
                                .iter()
                                .map(|l| l.text.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                    Err(why) => problems.push(Diagnostic::new(at, why)),
                }
            }
            out.push(setting);
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// The knobs checked against `topology` (see [`vary::resolve`]), each problem located
    /// in the file as `knob[i] ("key").values`.
    pub fn resolve(&self, topology: &Topology) -> Result<Vec<VariedKnob>, Vec<Diagnostic>> {
        let mut knobs = Vec::new();
        let mut out = Vec::new();
        for (i, k) in self.knobs.iter().enumerate() {
            match vary::resolve(
                topology,
                &k.key,
                &k.values,
                &knob_location(i, &k.key, "values"),
            ) {
                Ok(v) => knobs.push(v),
                Err(mut d) => out.append(&mut d),
            }
        }
        if out.is_empty() { Ok(knobs) } else { Err(out) }
    }
}

fn knob_location(i: usize, key: &str, field: &str) -> String {
    format!("knob[{i}] ({key:?}).{field}")
}

/// The default sweep file's path, as given on the command line and in the checkout.
pub const DEFAULT_SWEEP_FILE: &str = "sweeps/default.toml";

/// The default sweep file, built into the binary: `hab sweep` works outside a checkout.
pub const BUILTIN_DEFAULT: &str = include_str!("../../../sweeps/default.toml");

/// Reads, parses and checks a sweep file (the checks that need no topology). The default
/// path falls back to the built-in copy when there is no such file here.
pub fn load_sweep_file(path: &Path) -> Result<SweepFile, ConfigError> {
    if path == Path::new(DEFAULT_SWEEP_FILE) && !path.exists() {
        return parse_sweep_file(BUILTIN_DEFAULT, Path::new("builtin:sweeps/default.toml"));
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        kind: "sweep",
        path: path.to_path_buf(),
        source,
    })?;
    parse_sweep_file(&text, path)
}

/// Parses and checks sweep TOML already in memory; `path` is only used in errors.
pub fn parse_sweep_file(text: &str, path: &Path) -> Result<SweepFile, ConfigError> {
    let file: SweepFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
        kind: "sweep",
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    let problems = file.validate();
    if problems.is_empty() {
        Ok(file)
    } else {
        Err(ConfigError::Invalid {
            kind: "sweep",
            path: path.to_path_buf(),
            diagnostics: problems,
        })
    }
}

/// `plan` with each fault phase repeated `k` times: every fault of a workload that holds
/// one fault (the fault phases; a workload of several faults is a fixed schedule, such as
/// the stall phase, and is left as written) gets `repeat = k`, and the workload's count
/// grows or shrinks by `every × rate` per repetition so the time after the last one stays
/// as written. The result is validated; problems are located in the workload file.
pub fn with_repetitions(plan: &WorkloadPlan, k: u32) -> Result<WorkloadPlan, Vec<Diagnostic>> {
    let mut out = plan.clone();
    let mut problems = Vec::new();
    for (i, w) in out.workloads.iter_mut().enumerate() {
        let [fault] = w.faults.as_mut_slice() else {
            continue;
        };
        if fault.repeat == k {
            continue;
        }
        let (Some(every), Some(rate)) = (fault.every, w.rate_per_s) else {
            problems.push(Diagnostic::new(
                format!("workload[{i}] ({:?}).fault[0]", w.name),
                format!(
                    "cannot be repeated {k} times: it needs `every` and arrival = \"rate\" so \
                     repetitions can be spaced and the workload lengthened; set repetitions \
                     in the workload file instead"
                ),
            ));
            continue;
        };
        let per_repetition = (every.as_secs_f64() * rate).round() as i64;
        let delta = (i64::from(k) - i64::from(fault.repeat)) * per_repetition;
        w.count = (w.count as i64 + delta).max(1) as u64;
        fault.repeat = k;
    }
    problems.extend(out.validate());
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests;
