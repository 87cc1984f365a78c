//! `switch-times`: per fault and per topology, the median switch time (fault → the first
//! task published after it completed) as a filled bar and the median outage (longest gap
//! between completions) as a hollow bar beside it, both with min–max whiskers over the
//! repetitions and the number of repetitions above.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    FaultGroup, LegendEntry, NOTE_PX, Plot, Swatch, bar_span, category_chart, fault_groups,
    fmt_num, font, frame, linear_axis, linear_ticks, topology_colour, topology_legend, whisker,
};
use crate::metrics::stats::Spread;
use crate::record::RunSet;

/// Switch times and outages of every fault on every topology.
#[derive(Debug, Clone)]
pub struct SwitchTimesChart {
    /// (name, index in the set).
    topologies: Vec<(String, usize)>,
    faults: Vec<FaultCell>,
}

/// One fault: a cell per topology.
#[derive(Debug, Clone)]
struct FaultCell {
    label: String,
    cells: Vec<Cell>,
}

/// One fault on one topology, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cell {
    /// Repetitions where the fault applied.
    pub reps: usize,
    /// Repetitions where it did not (role absent on this topology).
    pub not_applied: usize,
    /// Switch time over the repetitions that had one, s.
    pub switch: Option<Spread>,
    /// Outage over the repetitions that had one, s.
    pub outage: Option<Spread>,
}

impl Cell {
    /// The cell of topology `t` in `g`.
    pub fn of(g: &FaultGroup<'_>, t: usize) -> Cell {
        let rows = &g.rows[t];
        let s = |f: fn(&crate::metrics::failover::FailoverRow) -> Option<f64>| {
            let v: Vec<f64> = rows
                .iter()
                .filter_map(|r| f(r))
                .map(|ms| ms / 1000.0)
                .collect();
            Spread::of(v)
        };
        Cell {
            reps: rows.len(),
            not_applied: g.not_applied[t],
            switch: s(|r| r.switch_time_ms),
            outage: s(|r| r.outage_ms),
        }
    }

    /// `n=5`, or `n=4/5` when only 4 of 5 repetitions saw a task complete after the fault.
    pub fn n_label(&self) -> String {
        let done = self.switch.map_or(0, |s| s.n);
        if done == self.reps {
            format!("n={}", self.reps)
        } else {
            format!("n={done}/{}", self.reps)
        }
    }
}

/// The chart; `None` when no fault applied anywhere.
pub fn build(set: &RunSet) -> Option<SwitchTimesChart> {
    let groups = fault_groups(set);
    if groups.is_empty() {
        return None;
    }
    let faults = groups
        .iter()
        .map(|g| FaultCell {
            label: g.label.clone(),
            cells: (0..set.topologies.len()).map(|t| Cell::of(g, t)).collect(),
        })
        .collect();
    Some(SwitchTimesChart {
        topologies: set
            .topologies
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("{}{}", t.name, route_note(t)), i))
            .collect(),
        faults,
    })
}

/// How the clients of a topology's runs reached the faulted parts, for the legend:
/// client-side failover (`[clients]`), through HAProxy, or neither (nothing said).
pub fn route_note(t: &crate::record::TopologyRuns) -> &'static str {
    let reports = || t.runs.iter().map(|r| &r.report);
    if reports().any(|r| r.failover.iter().any(|f| f.client_side)) {
        " (client-side failover)"
    } else if reports().any(|r| r.topology.get("proxy").is_some_and(|p| !p.is_null())) {
        " (through HAProxy)"
    } else {
        ""
    }
}

impl Plot for SwitchTimesChart {
    fn name(&self) -> String {
        "switch-times".into()
    }

    fn title(&self) -> String {
        "Failover: switch time and outage per fault".into()
    }

    fn caption(&self) -> String {
        "For each fault and topology, the filled bar is the median switch time (from the \
         fault until the earliest completion of a task published at or after it, before \
         the next fault) and the hollow bar the \
         median outage (longest gap between two completions around the fault), in seconds, \
         with whiskers from the best to the worst repetition; n=k/m means only k of m \
         repetitions saw a task complete, and \"no completion\" that none did."
            .into()
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let grey = RGBColor(0x60, 0x60, 0x60);
        let mut legend = topology_legend(&self.topologies);
        legend.push(LegendEntry::new(
            "filled: switch time",
            Swatch::Fill(grey.into()),
        ));
        legend.push(LegendEntry::new("hollow: outage", Swatch::Hollow(grey)));
        legend.push(LegendEntry::new(
            "min–max over repetitions",
            Swatch::Whisker(BLACK),
        ));
        let area = frame(root, title, &legend)?;

        let top = self
            .faults
            .iter()
            .flat_map(|f| f.cells.iter())
            .flat_map(|c| [c.switch, c.outage])
            .flatten()
            .map(|s| s.max)
            .fold(0.0, f64::max);
        let y_max = if top > 0.0 { top * 1.2 } else { 1.0 };
        let labels: Vec<String> = self.faults.iter().map(|f| f.label.clone()).collect();
        let mut chart = category_chart(
            &area,
            &labels,
            linear_axis(0.0, y_max, linear_ticks(y_max)),
            0.0,
            ("fault (target and kind)", "time after the fault (s)"),
            &|y| fmt_num(*y),
        )?;

        let k = self.topologies.len();
        let above = font(NOTE_PX).pos(Pos::new(HPos::Center, VPos::Bottom));
        let upright = font(NOTE_PX)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (i, f) in self.faults.iter().enumerate() {
            for (j, (_, ti)) in self.topologies.iter().enumerate() {
                let c = f.cells[j];
                let colour = topology_colour(*ti);
                let (x0, x1) = bar_span(i, j, k, 0.84);
                let xm = (x0 + x1) / 2.0;
                if c.reps == 0 {
                    if c.not_applied > 0 {
                        chart.draw_series(std::iter::once(
                            EmptyElement::at((xm, 0.0))
                                + Text::new(
                                    "not applied",
                                    (0, -6),
                                    upright.clone().color(&RGBColor(0x70, 0x70, 0x70)),
                                ),
                        ))?;
                    }
                    continue;
                }
                let halves = [(x0, xm, c.switch, true), (xm, x1, c.outage, false)];
                let mut label_at: f64 = 0.0;
                for (a, b, spread, filled) in halves {
                    let Some(s) = spread else { continue };
                    let (a, b) = (a + (b - a) * 0.06, b - (b - a) * 0.06);
                    if filled {
                        chart.draw_series(std::iter::once(Rectangle::new(
                            [(a, 0.0), (b, s.median)],
                            colour.filled(),
                        )))?;
                    } else {
                        chart.draw_series([
                            Rectangle::new([(a, 0.0), (b, s.median)], colour.mix(0.2).filled()),
                            Rectangle::new([(a, 0.0), (b, s.median)], colour.stroke_width(2)),
                        ])?;
                    }
                    if s.n > 1 {
                        let m = (a + b) / 2.0;
                        let cap = (b - a) / 4.0;
                        chart.draw_series(whisker(m, cap, s.min, s.max))?;
                    }
                    label_at = label_at.max(s.max);
                }
                if c.switch.is_none() {
                    chart.draw_series(std::iter::once(
                        EmptyElement::at(((x0 + xm) / 2.0, 0.0))
                            + Text::new("no completion", (0, -6), upright.clone()),
                    ))?;
                }
                chart.draw_series(std::iter::once(
                    EmptyElement::at((xm, label_at))
                        + Text::new(c.n_label(), (0, -4), above.clone()),
                ))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    #[test]
    fn the_legend_says_which_topology_failed_over_client_side() {
        let mut set = RunSetBuilder::two_topologies_with_faults();
        // Neither has [proxy] in the fixture, nor client-side rows: nothing is said.
        let c = build(&set).unwrap();
        assert!(
            c.topologies.iter().all(|(n, _)| !n.contains('(')),
            "{:?}",
            c.topologies
        );
        for r in &mut set.topologies[1].runs {
            for f in &mut r.report.failover {
                f.client_side = true;
            }
        }
        set.topologies[0].runs[0].report.topology =
            serde_json::json!({"proxy": {"check_interval": "250ms"}});
        let c = build(&set).unwrap();
        assert!(
            c.topologies[0].0.ends_with(" (through HAProxy)"),
            "{:?}",
            c.topologies
        );
        assert!(
            c.topologies[1].0.ends_with(" (client-side failover)"),
            "{:?}",
            c.topologies
        );
    }

    #[test]
    fn cells_have_medians_in_seconds_over_repetitions() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = build(&set).unwrap();
        assert_eq!(c.faults.len(), 2);
        let kill = &c.faults[0];
        assert_eq!(kill.label, "broker.primary kill");
        let standalone = kill.cells[0];
        assert_eq!(standalone.reps, 2);
        assert_eq!(standalone.switch.unwrap().median, 5.6);
        // ha: switch 1,500 ms ± 100 and ± 200 over two runs.
        let ha = kill.cells[1].switch.unwrap();
        assert_eq!(ha.n, 4);
        for (got, want) in [(ha.median, 1.5), (ha.min, 1.3), (ha.max, 1.7)] {
            assert!((got - want).abs() < 1e-9, "{ha:?}");
        }
        assert_eq!(kill.cells[1].n_label(), "n=4");
    }

    #[test]
    fn faults_without_any_completion_are_kept_and_labelled() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = build(&set).unwrap();
        let replica = &c.faults[1];
        assert_eq!(replica.label, "backend.replica kill");
        assert_eq!(replica.cells[0].reps, 0);
        assert_eq!(replica.cells[0].not_applied, 1);
        assert_eq!(replica.cells[1].reps, 2);
        assert!(replica.cells[1].switch.is_none());
        assert_eq!(replica.cells[1].n_label(), "n=0/2");
        let svg = c.svg().unwrap();
        assert_eq!(count_text(&svg, "no completion"), 1);
        assert_eq!(count_text(&svg, "not applied"), 1);
    }

    #[test]
    fn chart_has_title_axes_and_a_legend_entry_per_topology() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = build(&set).unwrap();
        let svg = c.svg().unwrap();
        assert!(svg.contains("Failover: switch time and outage per fault"));
        assert!(svg.contains("time after the fault (s)"));
        assert!(count_text(&svg, "broker.primary kill") > 0);
        assert!(count_text(&svg, "n=2") > 0 && count_text(&svg, "n=4") > 0);
        assert_eq!(count_text(&svg, "standalone"), 1);
        assert_eq!(count_text(&svg, "ha"), 1);
        assert!(c.png().unwrap().starts_with(PNG_SIGNATURE));
    }

    #[test]
    fn no_faults_no_chart() {
        assert!(build(&RunSetBuilder::two_topologies_without_faults()).is_none());
    }
}
