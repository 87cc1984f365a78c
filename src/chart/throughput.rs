//! `throughput`: one group per workload, one bar per topology, each bar the median over
//! repetitions of the workload's throughput divided by the baseline's median (so the
//! baseline is 1× whatever the workload's scale: workloads differ by orders of magnitude),
//! whiskers min–max over repetitions, the ratio and the absolute rate printed above.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    GUIDE, LegendEntry, NOTE_PX, Plot, Swatch, bar_span, category_chart, fmt_num, font, frame,
    linear_axis, linear_ticks, topology_colour, topology_legend, whisker,
};
use crate::metrics::stats::Spread;
use crate::record::RunSet;

/// Throughput of every topology on every workload, relative to the baseline.
#[derive(Debug, Clone)]
pub struct ThroughputChart {
    baseline: String,
    /// (name, index in the set).
    topologies: Vec<(String, usize)>,
    groups: Vec<Group>,
}

/// One workload.
#[derive(Debug, Clone)]
struct Group {
    workload: String,
    /// What the bars are divided by: the baseline's median, or (no baseline data) the
    /// highest median of the group.
    reference: f64,
    /// Whether `reference` is the baseline's.
    vs_baseline: bool,
    /// Per topology (same order as `topologies`): tasks/s over repetitions.
    bars: Vec<Option<Spread>>,
}

/// The throughput chart; `None` when no run has a workload.
pub fn build(set: &RunSet) -> Option<ThroughputChart> {
    let mut groups = Vec::new();
    for w in super::workloads(set) {
        let bars: Vec<Option<Spread>> = set
            .topologies
            .iter()
            .map(|t| {
                let v: Vec<f64> = t
                    .runs
                    .iter()
                    .filter_map(|r| r.report.workloads.iter().find(|x| x.name == w))
                    // Every repetition of every run is a sample (`repeat = N`).
                    .flat_map(|x| x.throughput_samples())
                    .collect();
                Spread::of(v)
            })
            .collect();
        let baseline = bars.first().copied().flatten().map(|s| s.median);
        let (reference, vs_baseline) = match baseline {
            Some(b) if b > 0.0 => (b, true),
            _ => (
                bars.iter().flatten().map(|s| s.median).fold(0.0, f64::max),
                false,
            ),
        };
        groups.push(Group {
            workload: w,
            reference,
            vs_baseline,
            bars,
        });
    }
    if groups.is_empty() {
        return None;
    }
    Some(ThroughputChart {
        baseline: set.baseline.clone(),
        topologies: set
            .topologies
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect(),
        groups,
    })
}

/// `0.42×`: a ratio to the baseline, two decimals (no decimals from 100× up).
pub fn ratio_label(r: f64) -> String {
    if !r.is_finite() {
        "–".into()
    } else if r >= 100.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

/// `5,512/s`, `0.2/s`.
pub fn rate_label(per_s: f64) -> String {
    format!("{}/s", fmt_num(per_s))
}

impl Group {
    fn ratio(&self, v: f64) -> f64 {
        if self.reference > 0.0 {
            v / self.reference
        } else {
            0.0
        }
    }
}

impl Plot for ThroughputChart {
    fn name(&self) -> String {
        "throughput".into()
    }

    fn title(&self) -> String {
        format!("Throughput relative to {}", self.baseline)
    }

    fn caption(&self) -> String {
        format!(
            "Throughput (ok tasks per second) of each workload, median over repetitions, \
             divided by the baseline {}'s median so every workload reads on the same scale \
             (1× = as fast as the baseline; workloads differ by orders of magnitude): the \
             ratio and the absolute rate are printed above each bar, and whiskers span the \
             slowest to the fastest repetition.",
            self.baseline
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
        let mut legend = topology_legend(&self.topologies);
        legend.push(LegendEntry::new(
            "min–max over repetitions",
            Swatch::Whisker(BLACK),
        ));
        let area = frame(root, title, &legend)?;

        let top = self
            .groups
            .iter()
            .flat_map(|g| g.bars.iter().flatten().map(|s| g.ratio(s.max)))
            .fold(1.0, f64::max);
        // Room above the bars for two lines of labels.
        let y_max = top * 1.25;
        let n = self.groups.len();
        let labels: Vec<String> = self
            .groups
            .iter()
            .map(|g| {
                if g.vs_baseline {
                    g.workload.clone()
                } else {
                    format!("{} (no baseline: relative to fastest)", g.workload)
                }
            })
            .collect();
        let mut chart = category_chart(
            &area,
            &labels,
            linear_axis(0.0, y_max, linear_ticks(y_max)),
            0.0,
            (
                "workload",
                &format!("throughput relative to {} (×)", self.baseline),
            ),
            &|y| format!("{}×", fmt_num(*y)),
        )?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 1.0), (n as f64, 1.0)],
            GUIDE.stroke_width(1),
        )))?;

        let k = self.topologies.len();
        let note = font(NOTE_PX).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (i, g) in self.groups.iter().enumerate() {
            for (j, (_, ti)) in self.topologies.iter().enumerate() {
                let Some(s) = g.bars[j] else { continue };
                let (x0, x1) = bar_span(i, j, k, 0.8);
                let xm = (x0 + x1) / 2.0;
                let colour = topology_colour(*ti);
                let r = g.ratio(s.median);
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, r)],
                    colour.filled(),
                )))?;
                let mut label_at = r;
                if s.n > 1 {
                    let (lo, hi) = (g.ratio(s.min), g.ratio(s.max));
                    let cap = (x1 - x0) / 4.0;
                    chart.draw_series(whisker(xm, cap, lo, hi))?;
                    label_at = label_at.max(hi);
                }
                chart.draw_series([
                    EmptyElement::at((xm, label_at))
                        + Text::new(rate_label(s.median), (0, -4), note.clone()),
                    EmptyElement::at((xm, label_at))
                        + Text::new(ratio_label(r), (0, -6 - NOTE_PX as i32), note.clone()),
                ])?;
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
    fn labels() {
        assert_eq!(ratio_label(0.4183), "0.42×");
        assert_eq!(ratio_label(1.0), "1.00×");
        assert_eq!(ratio_label(250.4), "250×");
        assert_eq!(rate_label(5512.3), "5,512/s");
        assert_eq!(rate_label(0.2), "0.2/s");
    }

    #[test]
    fn medians_over_repetitions_relative_to_the_baseline() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = build(&set).unwrap();
        let g = &c.groups[0];
        assert_eq!(g.workload, "trivial");
        assert!(g.vs_baseline);
        assert_eq!(g.reference, 5_500.0);
        let ha = g.bars[1].unwrap();
        assert_eq!(
            (ha.median, ha.min, ha.max, ha.n),
            (2_400.0, 2_300.0, 2_500.0, 2)
        );
        assert!((g.ratio(ha.median) - 2_400.0 / 5_500.0).abs() < 1e-12);
    }

    #[test]
    fn without_baseline_data_bars_are_relative_to_the_fastest() {
        let mut set = RunSetBuilder::two_topologies_with_faults();
        set.topologies[0].runs[0]
            .report
            .workloads
            .retain(|w| w.name != "sleepy");
        let c = build(&set).unwrap();
        let g = &c.groups[1];
        assert_eq!(g.workload, "sleepy");
        assert!(!g.vs_baseline);
        assert_eq!(g.reference, 0.19);
        assert!(g.bars[0].is_none());
    }

    #[test]
    fn chart_has_title_axes_ratios_and_a_legend_entry_per_topology() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = build(&set).unwrap();
        let svg = c.svg().unwrap();
        assert!(svg.contains("Throughput relative to standalone"));
        assert!(svg.contains("throughput relative to standalone (×)"));
        assert!(count_text(&svg, "0.44×") > 0, "ha trivial: 2,400 / 5,500");
        assert!(count_text(&svg, "2,400/s") > 0);
        assert!(count_text(&svg, "0.2/s") > 0);
        assert_eq!(count_text(&svg, "standalone"), 1);
        assert_eq!(count_text(&svg, "ha"), 1);
        assert!(c.png().unwrap().starts_with(PNG_SIGNATURE));
    }
}
