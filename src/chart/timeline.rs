//! `timeline-<topology>` (and `timeline-<topology>-<k>` for the k-th repetition, k ≥ 2):
//! one run second by second. Completions per second on the left axis, p99 latency of the
//! tasks completed in that second on the right axis; each fault as a vertical line with
//! its switch time and its recovery shaded; workload boundaries as thin grey lines.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    AXIS_PX, GUIDE, LABEL_PX, LegendEntry, NOTE_PX, Plot, Swatch, Ticked, contrast_colour, fit,
    fmt_num, font, frame, linear_axis, linear_ticks, log_axis, slug, topology_colour,
};
use crate::event::BreakerState;
use crate::metrics::failover::FailoverRow;
use crate::metrics::timeline::TimelineRow;
use crate::record::RunSet;

/// The right axis is logarithmic when the largest p99 is more than this many times the
/// smallest.
const LOG_RATIO: f64 = 20.0;

/// Shade of the band from a fault to its switch time.
const SWITCH_BAND: f64 = 0.30;
/// Shade of the band from the switch time to the stack being healthy again.
const RECOVERY_BAND: f64 = 0.08;

/// Height of the breaker strip, as a fraction of the left axis.
const BREAKER_STRIP: f64 = 0.035;
/// Colour of the breaker strip and of the refused line.
const BREAKER_COLOUR: RGBColor = RGBColor(200, 30, 30);

/// One run's timeline.
#[derive(Debug, Clone)]
pub struct TimelineChart {
    topology: String,
    /// Index of the topology in the set (its colour).
    index: usize,
    /// Repetition, from 1.
    k: usize,
    /// Repetitions of this topology.
    of: usize,
    rows: Vec<TimelineRow>,
    faults: Vec<FailoverRow>,
}

/// The timeline of every run that has one: topologies in order, then repetitions.
pub fn build_all(set: &RunSet) -> Vec<TimelineChart> {
    let mut out = Vec::new();
    for (index, t) in set.topologies.iter().enumerate() {
        for (i, run) in t.runs.iter().enumerate() {
            if run.report.timeline.is_empty() {
                continue;
            }
            out.push(TimelineChart {
                topology: t.name.clone(),
                index,
                k: i + 1,
                of: t.runs.len(),
                rows: run.report.timeline.clone(),
                faults: run
                    .report
                    .failover
                    .iter()
                    .filter(|f| f.not_applied.is_empty())
                    .cloned()
                    .collect(),
            });
        }
    }
    out
}

/// A fault placed on the timeline's x axis (seconds since its first row).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultMark {
    /// `kill broker.primary`.
    pub label: String,
    /// The fault, s.
    pub at: f64,
    /// End of the dark band (switch time, or healthy when there is no switch time), s.
    pub switch_end: Option<f64>,
    /// End of the light band (healthy again), s; only after a switch time.
    pub healthy_end: Option<f64>,
}

/// Where `f` goes on a timeline whose first row is at unix second `start_unix_s`.
pub fn fault_mark(f: &FailoverRow, start_unix_s: i64) -> FaultMark {
    let at = (f.fault_at_unix_ms - start_unix_s * 1000) as f64 / 1000.0;
    let s = |ms: Option<f64>| {
        ms.filter(|v| v.is_finite())
            .map(|v| at + v.max(0.0) / 1000.0)
    };
    let (switch_end, healthy_end) = match (s(f.switch_time_ms), s(f.healthy_ms)) {
        (Some(sw), Some(h)) if h > sw => (Some(sw), Some(h)),
        (Some(sw), _) => (Some(sw), None),
        (None, h) => (h, None),
    };
    FaultMark {
        label: format!("{} {}", f.kind, f.target),
        at,
        switch_end,
        healthy_end,
    }
}

/// Where the workload changes: (x in s, name of the workload starting there), the first
/// workload at 0.
pub fn workload_starts(rows: &[TimelineRow]) -> Vec<(f64, String)> {
    let mut out: Vec<(f64, String)> = Vec::new();
    for r in rows {
        if r.workload.is_empty() {
            continue;
        }
        if out.last().is_none_or(|(_, w)| *w != r.workload) {
            out.push((r.second as f64, r.workload.clone()));
        }
    }
    out
}

/// Which faults get a label: the first of each run of consecutive faults with the same
/// label, as `<label> ×N` when the run has N > 1 (a workload that repeats its fault five
/// times gets one label, not five).
pub fn fault_labels(marks: &[FaultMark]) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String, usize)> = Vec::new();
    for (i, m) in marks.iter().enumerate() {
        match out.last_mut() {
            Some((first, _, n)) if marks[*first].label == m.label => *n += 1,
            _ => out.push((i, m.label.clone(), 1)),
        }
    }
    out.into_iter()
        .map(|(i, label, n)| {
            (
                i,
                if n > 1 {
                    format!("{label} ×{n}")
                } else {
                    label
                },
            )
        })
        .collect()
}

impl TimelineChart {
    fn start_unix_s(&self) -> i64 {
        self.rows.first().map(|r| r.unix_s - r.second).unwrap_or(0)
    }

    fn draw_with<DB, R>(
        &self,
        area: &DrawingArea<DB, Shift>,
        p99_axis: Ticked<R>,
        p99_log: bool,
    ) -> anyhow::Result<()>
    where
        DB: DrawingBackend,
        DB::ErrorType: 'static,
        R: Ranged<ValueType = f64>,
        Ticked<R>: Ranged<ValueType = f64, FormatOption = DefaultFormatting>,
    {
        let colour = topology_colour(self.index);
        let p99_colour = contrast_colour(self.index);
        let x_end = self.rows.iter().map(|r| r.second + 1).max().unwrap_or(1) as f64;
        let counts_max = self
            .rows
            .iter()
            .map(|r| r.ok.max(r.failed).max(r.refused))
            .max()
            .unwrap_or(0)
            .max(1) as f64;
        // Room at the top for workload names and fault labels.
        let y_max = counts_max * 1.45;
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(84)
            .right_y_label_area_size(84)
            .build_cartesian_2d(
                linear_axis(0.0, x_end, linear_ticks(x_end)),
                linear_axis(0.0, y_max, linear_ticks(y_max)),
            )?
            .set_secondary_coord(linear_axis(0.0, x_end, Vec::new()), p99_axis);
        chart
            .configure_mesh()
            .x_desc("seconds since the start of the run (s)")
            .y_desc("tasks completed per second")
            .x_label_formatter(&|x| fmt_num(*x))
            .y_label_formatter(&|y| fmt_num(*y))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc(if p99_log {
                "p99 latency of the second (ms, log scale)"
            } else {
                "p99 latency of the second (ms)"
            })
            .y_label_formatter(&|y| fmt_num(*y))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .draw()?;

        // Fault bands under everything else.
        let start = self.start_unix_s();
        let marks: Vec<FaultMark> = self.faults.iter().map(|f| fault_mark(f, start)).collect();
        for m in &marks {
            if let Some(sw) = m.switch_end {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(m.at, 0.0), (sw, y_max)],
                    BLACK.mix(SWITCH_BAND).filled(),
                )))?;
                if let Some(h) = m.healthy_end {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(sw, 0.0), (h, y_max)],
                        BLACK.mix(RECOVERY_BAND).filled(),
                    )))?;
                }
            }
        }

        // The producer's circuit breaker: open seconds as a strip along the bottom, dark
        // while open, light while half-open.
        let strip = y_max * BREAKER_STRIP;
        for r in &self.rows {
            let shade = match r.breaker {
                Some(BreakerState::Open) => BREAKER_COLOUR.mix(0.85),
                Some(BreakerState::HalfOpen) => BREAKER_COLOUR.mix(0.35),
                _ => continue,
            };
            let x = r.second as f64;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x, 0.0), (x + 1.0, strip)],
                shade.filled(),
            )))?;
        }

        // Workload boundaries.
        let starts = workload_starts(&self.rows);
        for (x, _) in starts.iter().filter(|(x, _)| *x > 0.0) {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(*x, 0.0), (*x, y_max)],
                GUIDE.stroke_width(1),
            )))?;
        }

        // Completions: ok as a filled line, failed (if any) in black.
        let centre = |r: &TimelineRow| r.second as f64 + 0.5;
        let ok: Vec<(f64, f64)> = self.rows.iter().map(|r| (centre(r), r.ok as f64)).collect();
        if let (Some(first), Some(last)) = (ok.first(), ok.last()) {
            let mut poly = vec![(first.0, 0.0)];
            poly.extend(ok.iter().copied());
            poly.push((last.0, 0.0));
            chart.draw_series(std::iter::once(Polygon::new(
                poly,
                colour.mix(0.15).filled(),
            )))?;
        }
        chart.draw_series(LineSeries::new(ok, colour.stroke_width(2)))?;
        if self.rows.iter().any(|r| r.failed > 0) {
            chart.draw_series(LineSeries::new(
                self.rows.iter().map(|r| (centre(r), r.failed as f64)),
                BLACK.stroke_width(2),
            ))?;
        }

        // Tasks the producer refused or gave up.
        if self.rows.iter().any(|r| r.refused > 0) {
            chart.draw_series(LineSeries::new(
                self.rows.iter().map(|r| (centre(r), r.refused as f64)),
                BREAKER_COLOUR.stroke_width(2),
            ))?;
        }

        // p99 on the right axis, broken where no task completed.
        let mut segment: Vec<(f64, f64)> = Vec::new();
        let mut segments = Vec::new();
        for r in &self.rows {
            match r.p99_us {
                Some(p) => segment.push((centre(r), (p as f64 / 1000.0).max(0.001))),
                None => {
                    if !segment.is_empty() {
                        segments.push(std::mem::take(&mut segment));
                    }
                }
            }
        }
        if !segment.is_empty() {
            segments.push(segment);
        }
        for s in segments {
            if s.len() == 1 {
                chart.draw_secondary_series(std::iter::once(Circle::new(
                    s[0],
                    2,
                    p99_colour.filled(),
                )))?;
            } else {
                chart.draw_secondary_series(DashedLineSeries::new(
                    s,
                    6,
                    4,
                    p99_colour.stroke_width(2),
                ))?;
            }
        }

        // Fault lines, and labels under the row of workload names.
        for m in &marks {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(m.at, 0.0), (m.at, y_max)],
                BLACK.stroke_width(1),
            )))?;
        }
        let label_style = font(NOTE_PX)
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Left, VPos::Bottom));
        for (i, text) in fault_labels(&marks) {
            chart.draw_series(std::iter::once(
                EmptyElement::at((marks[i].at, y_max))
                    + Text::new(text, (3, 14 + NOTE_PX as i32), label_style.clone()),
            ))?;
        }

        // Workload names on top, on a white ground, cut to the room before the next one.
        let name_style = font(NOTE_PX).pos(Pos::new(HPos::Left, VPos::Top));
        let plot = chart.plotting_area();
        let px_per_s = f64::from(plot.dim_in_pixel().0) / x_end;
        for (k, (x, name)) in starts.iter().enumerate() {
            let next = starts.get(k + 1).map_or(x_end, |s| s.0);
            let room = ((next - x) * px_per_s - 10.0).max(0.0) as u32;
            let text = fit(name, room, |s| {
                plot.estimate_text_size(s, &name_style)
                    .map_or(u32::MAX, |(w, _)| w)
            });
            if text.is_empty() {
                continue;
            }
            let (tw, th) = plot.estimate_text_size(&text, &name_style)?;
            plot.draw(
                &(EmptyElement::at((*x, y_max))
                    + Rectangle::new(
                        [(1, 1), (tw as i32 + 7, th as i32 + 7)],
                        WHITE.mix(0.85).filled(),
                    )
                    + Text::new(text, (4, 4), name_style.clone())),
            )?;
        }
        Ok(())
    }
}

impl Plot for TimelineChart {
    fn name(&self) -> String {
        if self.k <= 1 {
            format!("timeline-{}", slug(&self.topology))
        } else {
            format!("timeline-{}-{}", slug(&self.topology), self.k)
        }
    }

    fn title(&self) -> String {
        if self.of > 1 {
            format!(
                "Timeline: {} (repetition {} of {})",
                self.topology, self.k, self.of
            )
        } else {
            format!("Timeline: {}", self.topology)
        }
    }

    fn caption(&self) -> String {
        format!(
            "The run on {} second by second: tasks completed per second (left axis) and the \
             p99 latency of the tasks completed in that second (right axis, dashed); each \
             fault is a black line, shaded dark until the earliest completion of a task \
             published at or after it (switch time) and light until the stack was healthy again, and thin \
             grey lines separate the workloads.{}",
            self.topology,
            if self.rows.iter().any(|r| r.breaker.is_some()) {
                " The red strip along the bottom is the producer's circuit breaker (dark: \
                 open, refusing every task; light: half-open, probing); the red line counts \
                 the tasks the producer refused or gave up per second."
            } else if self.rows.iter().any(|r| r.refused > 0) {
                " The red line counts the tasks the producer gave up per second."
            } else {
                ""
            }
        )
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let colour = topology_colour(self.index);
        let mut legend = vec![LegendEntry::new(
            "completed ok per second",
            Swatch::Line(colour),
        )];
        if self.rows.iter().any(|r| r.failed > 0) {
            legend.push(LegendEntry::new("failed per second", Swatch::Line(BLACK)));
        }
        legend.push(LegendEntry::new(
            "p99 latency (right axis)",
            Swatch::Dashed(contrast_colour(self.index)),
        ));
        if self.rows.iter().any(|r| r.refused > 0) {
            legend.push(LegendEntry::new(
                "refused or given up per second",
                Swatch::Line(BREAKER_COLOUR),
            ));
        }
        if self
            .rows
            .iter()
            .any(|r| matches!(r.breaker, Some(BreakerState::Open | BreakerState::HalfOpen)))
        {
            legend.push(LegendEntry::new(
                "breaker open (light: half-open)",
                Swatch::Fill(BREAKER_COLOUR.mix(0.85)),
            ));
        }
        if !self.faults.is_empty() {
            legend.push(LegendEntry::new("fault", Swatch::Line(BLACK)));
            legend.push(LegendEntry::new(
                "until first new task completed",
                Swatch::Fill(BLACK.mix(SWITCH_BAND)),
            ));
            legend.push(LegendEntry::new(
                "until healthy again",
                Swatch::Fill(BLACK.mix(RECOVERY_BAND)),
            ));
        }
        let area = frame(root, title, &legend)?;

        let p99: Vec<f64> = self
            .rows
            .iter()
            .filter_map(|r| r.p99_us)
            .map(|p| (p as f64 / 1000.0).max(0.001))
            .collect();
        let lo = p99.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = p99.iter().copied().fold(0.0, f64::max);
        if lo.is_finite() && hi / lo > LOG_RATIO {
            let (lo, hi) = super::log_bounds([lo, hi]).unwrap_or((lo, hi));
            self.draw_with(&area, log_axis(lo, hi), true)
        } else {
            let top = if hi > 0.0 { hi * 1.45 } else { 1.0 };
            self.draw_with(&area, linear_axis(0.0, top, linear_ticks(top)), false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    #[test]
    fn faults_are_placed_relative_to_the_first_row() {
        let f = FailoverRow {
            switch_time_ms: Some(1500.0),
            healthy_ms: Some(9000.0),
            ..row("trivial", "broker.primary", "kill", 0, 10)
        };
        let m = fault_mark(&f, T0_S);
        assert_eq!(m.label, "kill broker.primary");
        assert!((m.at - 10.2).abs() < 1e-9);
        assert_eq!(m.switch_end, Some(m.at + 1.5));
        assert_eq!(m.healthy_end, Some(m.at + 9.0));
        // No switch time: one band, to healthy.
        let f = FailoverRow {
            healthy_ms: Some(3000.0),
            ..row("trivial", "backend.replica", "kill", 0, 40)
        };
        let m = fault_mark(&f, T0_S + 5);
        assert!((m.at - 35.2).abs() < 1e-9);
        assert_eq!((m.switch_end, m.healthy_end), (Some(m.at + 3.0), None));
        // Neither: just the line.
        let m = fault_mark(&row("w", "t", "pause", 0, 1), T0_S);
        assert_eq!((m.switch_end, m.healthy_end), (None, None));
    }

    #[test]
    fn repeated_faults_get_one_label() {
        let mark = |label: &str, at: f64| FaultMark {
            label: label.into(),
            at,
            switch_end: None,
            healthy_end: None,
        };
        let marks = [
            mark("kill broker.primary", 5.0),
            mark("kill broker.primary", 25.0),
            mark("kill broker.primary", 45.0),
            mark("pause broker.primary", 105.0),
            mark("kill broker.primary", 205.0),
        ];
        assert_eq!(
            fault_labels(&marks),
            vec![
                (0, "kill broker.primary ×3".to_string()),
                (3, "pause broker.primary".to_string()),
                (4, "kill broker.primary".to_string()),
            ]
        );
    }

    #[test]
    fn workload_boundaries() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let rows = &set.topologies[0].runs[0].report.timeline;
        assert_eq!(
            workload_starts(rows),
            vec![(0.0, "trivial".to_string()), (30.0, "sleepy".to_string())]
        );
    }

    #[test]
    fn one_chart_per_run_named_by_repetition_without_not_applied_faults() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let charts = build_all(&set);
        let names: Vec<String> = charts.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            ["timeline-standalone", "timeline-ha", "timeline-ha-2"]
        );
        assert_eq!(charts[0].faults.len(), 2, "backend.replica did not apply");
        assert_eq!(charts[1].faults.len(), 3);
        assert_eq!(charts[2].title(), "Timeline: ha (repetition 2 of 2)");
        assert_eq!(charts[0].title(), "Timeline: standalone");
    }

    #[test]
    fn chart_has_title_axes_fault_labels_and_legend() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = &build_all(&set)[1];
        let svg = c.svg().unwrap();
        assert!(svg.contains("Timeline: ha (repetition 1 of 2)"));
        assert!(svg.contains("seconds since the start of the run (s)"));
        assert!(svg.contains("tasks completed per second"));
        assert!(svg.contains("p99 latency of the second (ms)"));
        assert_eq!(count_text(&svg, "kill broker.primary ×2"), 1);
        assert_eq!(count_text(&svg, "kill backend.replica"), 1);
        assert!(count_text(&svg, "sleepy") > 0 && count_text(&svg, "trivial") > 0);
        assert!(count_text(&svg, "completed ok per second") > 0);
        assert!(count_text(&svg, "failed per second") > 0);
        assert!(c.png().unwrap().starts_with(PNG_SIGNATURE));
    }

    #[test]
    fn run_without_timeline_has_no_chart() {
        let mut set = RunSetBuilder::two_topologies_without_faults();
        set.topologies[1].runs[0].report.timeline.clear();
        assert_eq!(build_all(&set).len(), 1);
    }
}
