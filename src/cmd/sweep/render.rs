//! The printed plan of a sweep (`hab sweep --dry-run`): inputs, knobs, design, every cell
//! with its values and how each is applied, and the arithmetic of the duration with the
//! assumptions it rests on.

use std::fmt::Write;

use super::SweepPlan;
use crate::config::sweep::design::{Cell, Design};
use crate::config::sweep::estimate::{self, format_seconds};
use crate::config::sweep::{DesignKind, FaultScope};

/// The plan as text (`dry_run`: and nothing else happens).
pub fn render_text(plan: &SweepPlan, dry_run: bool) -> String {
    let d = &plan.design;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "hab sweep: the plan{}",
        if dry_run {
            " (dry run; nothing is started)"
        } else {
            ""
        }
    );
    let named = |n: &super::Named| format!("{} ({})", n.name, n.file.display());
    let _ = writeln!(s, "  topology  {}", named(&plan.topology));
    let _ = writeln!(s, "  workload  {}", named(&plan.workload));
    let _ = writeln!(s, "  baseline  {}", named(&plan.baseline));
    if let Some(f) = &plan.sweep_file {
        let _ = writeln!(s, "  sweep     {}", f.display());
    }
    if let Some(k) = plan.repetitions {
        let _ = writeln!(s, "  repeats   K = {k} per fault (sweep file)");
    }
    let _ = writeln!(
        s,
        "  budget    {} ({})",
        format_seconds(d.budget_s),
        plan.budget_from
    );

    let _ = writeln!(s, "\nknobs (the topology's value in [brackets]):");
    let width = d.knobs.iter().map(|k| k.knob.key.len()).max().unwrap_or(0);
    for k in &d.knobs {
        let levels: Vec<String> = k
            .levels()
            .iter()
            .map(|v| {
                if **v == k.current {
                    format!("[{}]", v.text)
                } else {
                    v.text.clone()
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "  {:width$}  {:24}  {}; affects {} faults",
            k.knob.key,
            levels.join(" "),
            k.knob.apply.describe(),
            k.knob.scope.as_str()
        );
    }

    design_section(&mut s, d);
    cells_section(&mut s, d);
    arithmetic_section(&mut s, plan);
    s
}

fn design_section(s: &mut String, d: &Design) {
    let grid = format!(
        "the full grid ({} cells) takes ~{}",
        d.grid_cells,
        format_seconds(d.grid_s)
    );
    match d.kind {
        DesignKind::Grid => {
            let _ = writeln!(
                s,
                "\ndesign: full grid: {grid}, within the {} budget",
                format_seconds(d.budget_s)
            );
        }
        DesignKind::OneAtATime => {
            let _ = writeln!(
                s,
                "\ndesign: one knob at a time (reduced): {grid}, over the {} budget",
                format_seconds(d.budget_s)
            );
            let _ = writeln!(
                s,
                "  stage 1: the reference cell (the topology as written), then each knob's other \
                 values with every other knob at the topology's value{}: {} cells, ~{} with the \
                 baseline",
                match d.requested.len() {
                    0 => String::new(),
                    n => format!(", then the {n} cell(s) the sweep file asks for ([[cell]])"),
                },
                d.cells.len(),
                format_seconds(d.planned_s)
            );
            match &d.stage2 {
                Some(t) => {
                    let room = if t.cells == 0 {
                        format!(
                            "no room for one; a budget of ~{} would hold all {}",
                            format_seconds(d.planned_s + t.max_cells as f64 * t.worst_cell_s),
                            t.max_cells
                        )
                    } else {
                        format!(
                            "room for {} of them, at most ~{}",
                            t.cells,
                            format_seconds(t.bound_s)
                        )
                    };
                    let _ = writeln!(
                        s,
                        "  stage 2: a grid on the two knobs that moved the median switch time most in \
                         stage 1 (known only then): at most {} more cells (e.g. {} × {}), each at most \
                         ~{}; stage 1 leaves {} of the budget: {room}",
                        t.max_cells,
                        t.pair.0,
                        t.pair.1,
                        format_seconds(t.worst_cell_s),
                        format_seconds(t.left_s),
                    );
                }
                None => {
                    let _ = writeln!(s, "  stage 2: none (fewer than two knobs to combine)");
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "  estimated total: ~{} of the {} budget",
        format_seconds(d.total_s),
        format_seconds(d.budget_s)
    );
    for (cell, why) in &d.invalid {
        let _ = writeln!(s, "  left out (not a valid topology): {cell}: {why}");
    }
}

fn cells_section(s: &mut String, d: &Design) {
    let _ = writeln!(
        s,
        "\ncells (faults outside a cell's scope are taken from cell 0, the reference):"
    );
    for c in &d.cells {
        let setting: Vec<String> = d
            .knobs
            .iter()
            .zip(&c.values)
            .map(|(k, v)| format!("{}={}", k.knob.key, v.text))
            .collect();
        let _ = writeln!(
            s,
            "  cell {:>2}  group {}  {}{}",
            c.index,
            c.group + 1,
            setting.join(" "),
            if d.requested.contains(&c.index) {
                "  (asked for by [[cell]])"
            } else {
                ""
            }
        );
        let _ = writeln!(s, "           {}", how(c));
        let _ = writeln!(
            s,
            "           measures {} faults: {}; ~{} s",
            c.scope.as_str(),
            c.workloads.join(", "),
            seconds(c.seconds())
        );
    }
}

/// How a cell is reached from the previous one.
fn how(c: &Cell) -> String {
    if c.bring_up_s > 0.0 {
        return format!(
            "bring the stack up ({} s, A3){}",
            seconds(c.bring_up_s),
            if c.index == 0 {
                ""
            } else {
                ": a bring-up knob changed"
            }
        );
    }
    let changes: Vec<String> = c
        .applied
        .iter()
        .map(|a| {
            format!(
                "{} -> {} by {}",
                a.key,
                c.values[a.knob].text,
                a.how.describe()
            )
        })
        .collect();
    if changes.is_empty() {
        "no change from the previous cell".into()
    } else {
        format!(
            "{} (settle {} s, A4)",
            changes.join(", "),
            seconds(c.reconfigure_s)
        )
    }
}

fn seconds(x: f64) -> String {
    format!("{x:.1}")
}

fn arithmetic_section(s: &mut String, plan: &SweepPlan) {
    let d = &plan.design;
    let _ = writeln!(
        s,
        "\nduration arithmetic (seconds; A1–A6 below):\n  per workload of {}:",
        plan.workload.file.display()
    );
    for p in &d.phases {
        let role = match p.scope {
            None => "cost phase, every cell".to_string(),
            Some(FaultScope::Both) => "both sides, every cell".to_string(),
            Some(scope) => format!("{} faults", scope.as_str()),
        };
        let _ = writeln!(s, "    {:22} {role}", p.workload);
        if !p.faults.is_empty() {
            let _ = writeln!(s, "      faults: {}", p.faults.join("; "));
        }
        let _ = writeln!(s, "      {} = {}", p.arithmetic, seconds(p.seconds));
    }
    let _ = writeln!(
        s,
        "  per cell: warm-up {} = {} + the run's own {} (A7) + the workloads in its scope + reconfiguration (A4):",
        warm_up(plan),
        seconds(d.warm_up_s),
        seconds(estimate::RUN_OVERHEAD_S)
    );
    for scope in [FaultScope::Both, FaultScope::Broker, FaultScope::Backend] {
        let runs: Vec<_> = d.phases.iter().filter(|p| p.runs_in(scope)).collect();
        let parts: Vec<String> = [seconds(d.warm_up_s), seconds(estimate::RUN_OVERHEAD_S)]
            .into_iter()
            .chain(runs.iter().map(|p| seconds(p.seconds)))
            .collect();
        let total =
            d.warm_up_s + estimate::RUN_OVERHEAD_S + runs.iter().map(|p| p.seconds).sum::<f64>();
        let _ = writeln!(
            s,
            "    {:15} {} = {}{}",
            format!("{}:", scope.as_str()),
            parts.join(" + "),
            seconds(total),
            fault_form(d, scope)
        );
    }
    let bring_ups: Vec<&Cell> = d.cells.iter().filter(|c| c.bring_up_s > 0.0).collect();
    let _ = writeln!(
        s,
        "  bring-ups: {} × ({}) = {} (A3: {:.0} s + {} s per joining node + {} s Redis side)",
        bring_ups.len(),
        bring_ups
            .iter()
            .map(|c| seconds(c.bring_up_s))
            .collect::<Vec<_>>()
            .join(" + "),
        seconds(bring_ups.iter().map(|c| c.bring_up_s).sum()),
        estimate::BROKER_BOOT_S,
        estimate::BROKER_JOIN_S,
        estimate::REDIS_SIDE_S
    );
    let _ = writeln!(
        s,
        "  baseline {}: 2 × (bring-up + warm-up + the run's own + cost phase) = {} (A6, A7)",
        plan.baseline.name,
        seconds(d.baseline_s)
    );
    let cells_s: f64 = d.cells.iter().map(Cell::seconds).sum();
    let _ = writeln!(
        s,
        "  cells: {} = {}; with the baseline: {} ({})",
        d.cells
            .iter()
            .map(|c| seconds(c.seconds()))
            .collect::<Vec<_>>()
            .join(" + "),
        seconds(cells_s),
        seconds(d.planned_s),
        format_seconds(d.planned_s)
    );
    if let Some(t) = &d.stage2 {
        let _ = writeln!(
            s,
            "  stage 2: {} cell(s) × {} = {}; total {} ({})",
            t.cells,
            seconds(t.worst_cell_s),
            seconds(t.bound_s),
            seconds(d.total_s),
            format_seconds(d.total_s)
        );
    }
    let _ = writeln!(s, "assumptions:");
    for a in &d.assumptions {
        let _ = writeln!(s, "  {}: {}", a.id, a.text);
    }
}

fn warm_up(plan: &SweepPlan) -> String {
    let tasks = (plan.design.warm_up_s * estimate::BURST_TASKS_PER_S).round();
    format!("{tasks:.0} tasks ÷ {:.0}/s A1", estimate::BURST_TASKS_PER_S)
}

/// The form of a cell's fault time: K repetitions × the faults in scope × `every`.
fn fault_form(d: &Design, scope: FaultScope) -> String {
    let repeated: Vec<(u32, f64)> = d
        .phases
        .iter()
        .filter(|p| p.scope.is_some_and(|s| s != FaultScope::Both) && p.runs_in(scope))
        .filter_map(|p| p.repetitions)
        .collect();
    match repeated.as_slice() {
        [] => String::new(),
        [(k, every), rest @ ..] if rest.iter().all(|r| r == &(*k, *every)) => format!(
            "  (of it: {k} repetitions × {} faults × {every:.0} s = {:.0} s of faults)",
            repeated.len(),
            f64::from(*k) * repeated.len() as f64 * every
        ),
        _ => String::new(),
    }
}
