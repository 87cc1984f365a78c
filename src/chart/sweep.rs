//! Charts of a sweep (`hab sweep`, `hab report SWEEP_DIR`):
//! - `sweep-pareto`: every measured cell by its false failovers in the stall phase (x) and
//!   its headline switch time (y), coloured by the cost of HA, labelled with its index; the
//!   Pareto front joined, the recommended cell ringed;
//! - `sweep-knob-<key>`: for each knob, the cells that change only that knob from the
//!   reference (and the reference): headline switch time, false failovers and cost against
//!   the knob's values, in three panels.

use std::path::Path;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    AXIS_PX, Chart, LABEL_PX, LegendEntry, NOTE_PX, Options, Plot, Swatch, fmt_num, font, frame,
    linear_axis, linear_ticks, png_from_svg, slug, topology_colour,
};
use crate::compare::sweep::SweepAnalysis;
use crate::compare::sweep::cell::CellResult;

/// Colour of the cheapest cell (Okabe–Ito blue).
const CHEAP: RGBColor = RGBColor(0x00, 0x72, 0xB2);
/// Colour of the dearest cell (Okabe–Ito vermillion).
const DEAR: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
/// Colour of a cell without a cost.
const NO_COST: RGBColor = RGBColor(0x90, 0x90, 0x90);

/// One measured cell on the Pareto chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// The cell's index.
    pub cell: usize,
    /// False failovers in the stall phase.
    pub false_failovers: usize,
    /// Headline switch time, s (absent: its slowest fault had no switch).
    pub switch_s: Option<f64>,
    /// HA cost: throughput below the baseline, %.
    pub cost_pct: Option<f64>,
    /// Tasks lost.
    pub lost: u64,
    /// On the Pareto front.
    pub on_front: bool,
}

/// The Pareto chart.
#[derive(Debug, Clone)]
pub struct ParetoChart {
    points: Vec<Point>,
    recommended: Option<usize>,
    baseline: String,
}

/// The Pareto chart of `a`; `None` when no measured cell has a stall phase.
pub fn pareto(a: &SweepAnalysis) -> Option<ParetoChart> {
    let points: Vec<Point> = a
        .cells
        .iter()
        .filter(|c| c.measured)
        .filter_map(|c| {
            Some(Point {
                cell: c.index,
                false_failovers: c.false_failovers()?,
                switch_s: c
                    .headline
                    .as_ref()
                    .and_then(|h| h.switch_ms)
                    .map(|ms| ms / 1000.0),
                cost_pct: c.cost_throughput_pct,
                lost: c.lost_tasks,
                on_front: a.front.contains(&c.index),
            })
        })
        .collect();
    (!points.is_empty()).then(|| ParetoChart {
        points,
        recommended: a.recommendation.as_ref().map(|r| r.cell),
        baseline: a.baseline_name.clone(),
    })
}

impl ParetoChart {
    /// The points drawn.
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    fn cost_range(&self) -> Option<(f64, f64)> {
        let costs = self.points.iter().filter_map(|p| p.cost_pct);
        let lo = costs.clone().reduce(f64::min)?;
        Some((lo, costs.reduce(f64::max)?))
    }

    fn colour(&self, cost: Option<f64>) -> RGBColor {
        match (cost, self.cost_range()) {
            (Some(c), Some((lo, hi))) => {
                let t = if hi > lo { (c - lo) / (hi - lo) } else { 0.0 };
                let mix = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t) as u8;
                RGBColor(
                    mix(CHEAP.0, DEAR.0),
                    mix(CHEAP.1, DEAR.1),
                    mix(CHEAP.2, DEAR.2),
                )
            }
            _ => NO_COST,
        }
    }
}

impl Plot for ParetoChart {
    fn name(&self) -> String {
        "sweep-pareto".into()
    }

    fn title(&self) -> String {
        "Sweep: headline switch time against false failovers".into()
    }

    fn caption(&self) -> String {
        format!(
            "Each measured cell of the sweep, labelled with its index: x is the number of \
             stalls (short pauses, CPU throttles) after which the service moved — Sentinel \
             switched the master or HAProxy marked the stalled broker node DOWN (false failovers), y the headline switch time (the slowest fault \
             workload's median switch time, s); the colour is the cost of HA (throughput \
             below {}, from blue for the cheapest to red for the dearest). The line joins \
             the Pareto front (no other cell is as fast with as few false failovers), the \
             large ring marks the recommended cell; \"lost\" flags cells that lost tasks and \
             \"no switch\" cells whose slowest fault never switched in its median repetition.",
            self.baseline
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, title: &str) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let mut legend = Vec::new();
        match self.cost_range() {
            Some((lo, hi)) => {
                legend.push(LegendEntry::new(
                    format!("cheapest: {} % below {}", fmt_num(lo), self.baseline),
                    Swatch::Fill(CHEAP.into()),
                ));
                legend.push(LegendEntry::new(
                    format!("dearest: {} %", fmt_num(hi)),
                    Swatch::Fill(DEAR.into()),
                ));
            }
            None => legend.push(LegendEntry::new(
                "cost not measured",
                Swatch::Fill(NO_COST.into()),
            )),
        }
        legend.push(LegendEntry::new("Pareto front", Swatch::Line(BLACK)));
        legend.push(LegendEntry::new("recommended", Swatch::Hollow(BLACK)));
        let area = frame(root, title, &legend)?;

        let x_max = self
            .points
            .iter()
            .map(|p| p.false_failovers)
            .max()
            .unwrap_or(0) as f64;
        let top = self
            .points
            .iter()
            .filter_map(|p| p.switch_s)
            .fold(0.0, f64::max);
        let y_max = if top > 0.0 { top * 1.3 } else { 1.0 };
        // A cell whose slowest fault never switched sits at the top.
        let no_switch_y = y_max * 0.95;
        let y = |p: &Point| p.switch_s.unwrap_or(no_switch_y);
        let x_ticks: Vec<f64> = (0..=x_max as usize).map(|i| i as f64).collect();
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(84)
            .build_cartesian_2d(
                linear_axis(-0.5, x_max + 0.5, x_ticks),
                linear_axis(0.0, y_max, linear_ticks(y_max)),
            )?;
        chart
            .configure_mesh()
            .x_desc("false failovers in the stall phase (stalls HAProxy or Sentinel acted on)")
            .y_desc("headline switch time (s)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .draw()?;

        let mut front: Vec<&Point> = self.points.iter().filter(|p| p.on_front).collect();
        front.sort_by(|a, b| {
            a.false_failovers
                .cmp(&b.false_failovers)
                .then(y(a).total_cmp(&y(b)))
        });
        if front.len() > 1 {
            chart.draw_series(std::iter::once(PathElement::new(
                front
                    .iter()
                    .map(|p| (p.false_failovers as f64, y(p)))
                    .collect::<Vec<_>>(),
                BLACK.stroke_width(2),
            )))?;
        }
        let label = font(NOTE_PX).pos(Pos::new(HPos::Left, VPos::Bottom));
        for (k, p) in self.points.iter().enumerate() {
            let at = (p.false_failovers as f64, y(p));
            // Cells at the same place: their labels one under the other.
            let twins = self.points[..k]
                .iter()
                .filter(|q| q.false_failovers == p.false_failovers && y(q) == y(p))
                .count() as i32;
            chart.draw_series(std::iter::once(Circle::new(
                at,
                9,
                self.colour(p.cost_pct).filled(),
            )))?;
            if p.on_front {
                chart.draw_series(std::iter::once(Circle::new(at, 10, BLACK.stroke_width(2))))?;
            }
            let mut text = format!("{}", p.cell);
            if p.switch_s.is_none() {
                text.push_str(" no switch");
            }
            if p.lost > 0 {
                text.push_str(&format!(" lost {}", p.lost));
            }
            if self.recommended == Some(p.cell) {
                chart.draw_series(std::iter::once(Circle::new(at, 17, BLACK.stroke_width(3))))?;
                text.push_str(" recommended");
            }
            chart.draw_series(std::iter::once(
                EmptyElement::at(at)
                    + Text::new(text, (12, -10 + twins * NOTE_PX as i32), label.clone()),
            ))?;
        }
        Ok(())
    }
}

/// One cell on a knob's chart.
#[derive(Debug, Clone, PartialEq)]
pub struct KnobPoint {
    /// Position of its value among the knob's values.
    pub at: usize,
    /// The cell's index.
    pub cell: usize,
    /// Headline switch time, s.
    pub switch_s: Option<f64>,
    /// False failovers.
    pub false_failovers: Option<usize>,
    /// HA cost: throughput below the baseline, %.
    pub cost_pct: Option<f64>,
}

/// One knob's sensitivity chart.
#[derive(Debug, Clone)]
pub struct KnobChart {
    /// The knob's key.
    pub key: String,
    /// Its values in the order swept (the reference's included), the reference's marked.
    pub labels: Vec<String>,
    /// The cells that change only this knob from the reference, and the reference.
    pub points: Vec<KnobPoint>,
}

/// One chart per knob with at least two cells that differ only in it (the reference
/// included).
pub fn knob_charts(a: &SweepAnalysis) -> Vec<KnobChart> {
    let mut out = Vec::new();
    for (i, k) in a.knobs.iter().enumerate() {
        let mut values: Vec<String> = k.values.clone();
        if !values.contains(&k.current) {
            values.push(k.current.clone());
        }
        let only = |c: &CellResult| {
            c.measured
                && a.knobs
                    .iter()
                    .zip(&c.values)
                    .enumerate()
                    .all(|(j, (o, v))| j == i || o.current == *v)
        };
        let mut points: Vec<KnobPoint> = Vec::new();
        for c in a.cells.iter().filter(|c| only(c)) {
            let Some(at) = c
                .values
                .get(i)
                .and_then(|v| values.iter().position(|x| x == v))
            else {
                continue;
            };
            if points.iter().any(|p| p.at == at) {
                continue;
            }
            points.push(KnobPoint {
                at,
                cell: c.index,
                switch_s: c
                    .headline
                    .as_ref()
                    .and_then(|h| h.switch_ms)
                    .map(|ms| ms / 1000.0),
                false_failovers: c.false_failovers(),
                cost_pct: c.cost_throughput_pct,
            });
        }
        if points.len() < 2 {
            continue;
        }
        points.sort_by_key(|p| p.at);
        let labels = values
            .iter()
            .map(|v| {
                if *v == k.current {
                    format!("{v} (reference)")
                } else {
                    v.clone()
                }
            })
            .collect();
        out.push(KnobChart {
            key: k.key.clone(),
            labels,
            points,
        });
    }
    out
}

type Pick = fn(&KnobPoint) -> Option<f64>;

/// One panel of a knob chart: its axis description, the figure, its colour, its label.
type Panel = (&'static str, Pick, RGBColor, fn(f64) -> String);

impl Plot for KnobChart {
    fn name(&self) -> String {
        format!("sweep-knob-{}", slug(&self.key))
    }

    fn title(&self) -> String {
        format!("Sweep: what {} changes", self.key)
    }

    fn caption(&self) -> String {
        format!(
            "The cells that change only {} from the reference (the topology as written), \
             and the reference: headline switch time (the slowest fault workload's median, \
             s; \"no switch\" where its median repetition had none), false failovers in the \
             stall phase, and the cost of HA (throughput below the baseline, %), against the \
             knob's values; each point is labelled with its figure and its cell.",
            self.key
        )
    }

    fn size(&self) -> (u32, u32) {
        (1200, 960)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, title: &str) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let panels: [Panel; 3] = [
            (
                "headline switch (s)",
                |p| p.switch_s,
                topology_colour(0),
                |v| format!("{} s", fmt_num(v)),
            ),
            (
                "false failovers",
                |p| p.false_failovers.map(|n| n as f64),
                topology_colour(1),
                |v| format!("{v:.0}"),
            ),
            (
                "HA cost (% less throughput)",
                |p| p.cost_pct,
                topology_colour(2),
                |v| format!("{} %", fmt_num(v)),
            ),
        ];
        let legend: Vec<LegendEntry> = panels
            .iter()
            .map(|(name, _, colour, _)| LegendEntry::new(*name, Swatch::Line(*colour)))
            .collect();
        let area = frame(root, title, &legend)?;
        let n = self.labels.len() as f64;
        let ticks: Vec<f64> = (0..self.labels.len()).map(|i| i as f64 + 0.5).collect();
        let note = font(NOTE_PX).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (panel, (desc, pick, colour, fmt)) in area.split_evenly((3, 1)).iter().zip(panels) {
            let values: Vec<f64> = self.points.iter().filter_map(pick).collect();
            let hi = values.iter().copied().fold(0.0, f64::max);
            let lo = values.iter().copied().fold(0.0, f64::min);
            let hi = if hi > 0.0 { hi * 1.35 } else { 1.0 };
            let mut ticks_y = linear_ticks(hi);
            if desc == "false failovers" {
                ticks_y.retain(|t| t.fract() == 0.0);
            }
            if lo < 0.0 {
                ticks_y.insert(0, lo);
            }
            let mut chart = ChartBuilder::on(panel)
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(84)
                .build_cartesian_2d(
                    linear_axis(0.0, n, ticks.clone()),
                    linear_axis(lo * 1.2, hi, ticks_y),
                )?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .y_desc(desc)
                .x_label_formatter(&|x| {
                    self.labels
                        .get(x.floor().max(0.0) as usize)
                        .cloned()
                        .unwrap_or_default()
                })
                .y_label_formatter(&|v| fmt_num(*v))
                .label_style(font(LABEL_PX))
                .axis_desc_style(font(AXIS_PX))
                .draw()?;
            let line: Vec<(f64, f64)> = self
                .points
                .iter()
                .filter_map(|p| Some((p.at as f64 + 0.5, pick(p)?)))
                .collect();
            chart.draw_series(std::iter::once(PathElement::new(
                line.clone(),
                colour.stroke_width(3),
            )))?;
            for p in &self.points {
                let x = p.at as f64 + 0.5;
                let (y, text) = match pick(p) {
                    Some(v) => (v, format!("{} (cell {})", fmt(v), p.cell)),
                    None => (hi * 0.9, format!("no switch (cell {})", p.cell)),
                };
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x, y)) + Circle::new((0, 0), 7, colour.filled()),
                ))?;
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x, y)) + Text::new(text, (0, -10), note.clone()),
                ))?;
            }
        }
        Ok(())
    }
}

/// Renders the sweep's charts into `charts_dir` as `<name>.svg` and `<name>.png`: the
/// Pareto chart, then one per knob.
pub fn render_all(a: &SweepAnalysis, charts_dir: &Path, options: &Options) -> Result<Vec<Chart>> {
    std::fs::create_dir_all(charts_dir)
        .with_context(|| format!("cannot create {}", charts_dir.display()))?;
    let mut out = Vec::new();
    if let Some(p) = pareto(a) {
        out.push(write(&p, charts_dir, options)?);
    }
    for p in knob_charts(a) {
        out.push(write(&p, charts_dir, options)?);
    }
    Ok(out)
}

fn write(p: &impl Plot, dir: &Path, options: &Options) -> Result<Chart> {
    let chart = p.chart_with(options)?;
    let png = match options.png_scale {
        1 => p.png_titled(&chart.title)?,
        scale => png_from_svg(&chart.svg, scale)
            .with_context(|| format!("cannot render chart {} at {scale}×", chart.name))?,
    };
    crate::export::write_atomic(
        &dir.join(format!("{}.svg", chart.name)),
        chart.svg.as_bytes(),
    )?;
    crate::export::write_atomic(&dir.join(format!("{}.png", chart.name)), &png)?;
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{PNG_SIGNATURE, count_text};
    use super::*;
    use crate::compare::sweep::{analyse, fixture};

    fn analysis() -> SweepAnalysis {
        analyse(&fixture::sweep(&fixture::five())).unwrap()
    }

    #[test]
    fn the_pareto_chart_has_every_measured_cell_the_front_and_the_recommendation() {
        let a = analysis();
        let c = pareto(&a).unwrap();
        let cells: Vec<(usize, usize, bool)> = c
            .points()
            .iter()
            .map(|p| (p.cell, p.false_failovers, p.on_front))
            .collect();
        assert_eq!(
            cells,
            [
                (0, 0, false),
                (1, 2, false),
                (2, 0, false),
                (3, 0, true),
                (4, 4, true)
            ]
        );
        assert_eq!(c.points()[3].switch_s, Some(1.5));
        let svg = c.svg().unwrap();
        assert!(svg.contains("Sweep: headline switch time against false failovers"));
        assert!(count_text(&svg, "3 recommended") > 0, "{svg}");
        assert!(count_text(&svg, "headline switch time (s)") > 0);
        assert!(c.png().unwrap().starts_with(PNG_SIGNATURE));
    }

    #[test]
    fn a_knob_chart_holds_the_cells_that_change_only_that_knob() {
        let a = analysis();
        let charts = knob_charts(&a);
        let keys: Vec<&str> = charts.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["proxy.check_interval", "backend.down_after"]);
        let interval = &charts[0];
        assert_eq!(interval.labels, ["50ms", "250ms (reference)", "2s"]);
        let cells: Vec<(usize, usize)> = interval.points.iter().map(|p| (p.at, p.cell)).collect();
        assert_eq!(cells, [(0, 1), (1, 0), (2, 2)]);
        assert_eq!(interval.points[0].false_failovers, Some(2));
        let svg = interval.svg().unwrap();
        assert!(count_text(&svg, "2 (cell 1)") > 0, "{svg}");
        assert!(count_text(&svg, "250ms (reference)") > 0);
        assert_eq!(interval.name(), "sweep-knob-proxy.check_interval");
    }

    #[test]
    fn render_all_writes_svg_and_png_of_each_chart() {
        let a = analysis();
        let dir = tempfile::tempdir().unwrap();
        let charts = render_all(&a, dir.path(), &Options::default()).unwrap();
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "sweep-pareto",
                "sweep-knob-proxy.check_interval",
                "sweep-knob-backend.down_after"
            ]
        );
        for n in names {
            assert!(dir.path().join(format!("{n}.svg")).is_file());
            let png = std::fs::read(dir.path().join(format!("{n}.png"))).unwrap();
            assert!(png.starts_with(PNG_SIGNATURE));
        }
    }
}
/// Writes the fixture's sweep charts to /tmp/sweep-charts, to look at them:
/// `cargo test --lib dump_sweep_charts -- --ignored`.
#[cfg(test)]
mod dump {
    #[test]
    #[ignore = "writes files for a human to look at"]
    fn dump_sweep_charts() {
        let a = crate::compare::sweep::analyse(&crate::compare::sweep::fixture::sweep(
            &crate::compare::sweep::fixture::five(),
        ))
        .unwrap();
        super::render_all(
            &a,
            std::path::Path::new("/tmp/sweep-charts"),
            &Default::default(),
        )
        .unwrap();
    }
}
