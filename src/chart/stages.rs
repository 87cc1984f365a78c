//! `stages-<workload>`: where the time goes. For each stage of a task's life (publish,
//! queue wait, service, result delay, and end to end) and each topology, a bar whose solid
//! part reaches the median (p50) and whose light part continues to p99, on a log axis in ms.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    LegendEntry, Plot, Swatch, bar_span, category_chart, frame, log_axis, log_bounds, slug,
    topology_colour, topology_legend,
};
use crate::record::RunSet;

/// The stages shown, in a task's order (histogram name, axis label).
pub const STAGES: [(&str, &str); 5] = [
    ("publish", "publish (to confirm)"),
    ("queue_wait", "queue wait"),
    ("service", "service"),
    ("result_delay", "result delay"),
    ("latency", "end to end"),
];

/// p50 and p99 of one stage on one topology, ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct P50P99 {
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// The per-stage comparison of one workload.
#[derive(Debug, Clone)]
pub struct StagesChart {
    workload: String,
    /// (name, index in the set) of the topologies shown.
    topologies: Vec<(String, usize)>,
    /// Axis labels of the stages shown.
    stages: Vec<&'static str>,
    /// `[stage][topology]`.
    values: Vec<Vec<Option<P50P99>>>,
}

/// The chart of `workload`; `None` when no topology has any stage histogram for it.
pub fn build(set: &RunSet, workload: &str) -> Result<Option<StagesChart>> {
    let mut stages = Vec::new();
    let mut values = Vec::new();
    for (stage, label) in STAGES {
        let mut row = Vec::new();
        for t in &set.topologies {
            let h = t.merged_histogram(workload, stage)?;
            row.push(h.filter(|h| !h.is_empty()).map(|h| P50P99 {
                p50_ms: h.quantile_us(0.5) as f64 / 1000.0,
                p99_ms: h.quantile_us(0.99) as f64 / 1000.0,
            }));
        }
        if row.iter().any(Option::is_some) {
            stages.push(label);
            values.push(row);
        }
    }
    if stages.is_empty() {
        return Ok(None);
    }
    // Keep the topologies that have something, and only their columns.
    let keep: Vec<usize> = (0..set.topologies.len())
        .filter(|&t| values.iter().any(|row| row[t].is_some()))
        .collect();
    let values = values
        .into_iter()
        .map(|row| keep.iter().map(|&t| row[t]).collect())
        .collect();
    Ok(Some(StagesChart {
        workload: workload.to_string(),
        topologies: keep
            .iter()
            .map(|&t| (set.topologies[t].name.clone(), t))
            .collect(),
        stages,
        values,
    }))
}

/// The charts of every workload of `set`, in plan order.
pub fn build_all(set: &RunSet) -> Result<Vec<StagesChart>> {
    super::per_workload(set, build)
}

impl Plot for StagesChart {
    fn name(&self) -> String {
        format!("stages-{}", slug(&self.workload))
    }

    fn title(&self) -> String {
        format!("Latency by stage, p50 and p99: {}", self.workload)
    }

    fn caption(&self) -> String {
        format!(
            "Time spent in each stage of a task of workload {} (publish until the broker \
             confirms, waiting in the queue, running on the worker, result back to the \
             producer, and end to end), repetitions merged: the solid part of each bar reaches \
             the median (p50) and the light part continues to p99, on a log scale in ms.",
            self.workload
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, title: &str) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let grey = RGBColor(0x60, 0x60, 0x60);
        let mut legend = topology_legend(&self.topologies);
        legend.push(LegendEntry::new(
            "solid: p50 (median)",
            Swatch::Fill(grey.into()),
        ));
        legend.push(LegendEntry::new("light: p50 to p99", Swatch::Hollow(grey)));
        let area = frame(root, title, &legend)?;

        let all = self
            .values
            .iter()
            .flatten()
            .flatten()
            .flat_map(|v| [v.p50_ms, v.p99_ms]);
        let (lo, hi) = log_bounds(all).unwrap_or((0.001, 1.0));
        let labels: Vec<String> = self.stages.iter().map(|s| s.to_string()).collect();
        let mut chart = category_chart(
            &area,
            &labels,
            log_axis(lo, hi),
            lo,
            ("stage", "time (ms, log scale)"),
            &|y| super::fmt_num(*y),
        )?;
        let k = self.topologies.len();
        for (j, (_, ti)) in self.topologies.iter().enumerate() {
            let colour = topology_colour(*ti);
            for (i, row) in self.values.iter().enumerate() {
                let Some(v) = row[j] else { continue };
                let (x0, x1) = bar_span(i, j, k, 0.8);
                let p50 = v.p50_ms.max(lo);
                let p99 = v.p99_ms.max(p50);
                chart.draw_series([
                    Rectangle::new([(x0, lo), (x1, p50)], colour.filled()),
                    Rectangle::new([(x0, p50), (x1, p99)], colour.mix(0.25).filled()),
                    Rectangle::new([(x0, p50), (x1, p99)], colour.stroke_width(2)),
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
    fn p50_and_p99_of_each_stage_in_ms() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = build(&set, "trivial").unwrap().unwrap();
        assert_eq!(
            c.stages,
            [
                "publish (to confirm)",
                "queue wait",
                "service",
                "result delay",
                "end to end"
            ]
        );
        // standalone end to end: 1..=10,000 µs.
        let e2e = c.values[4][0].unwrap();
        assert!((e2e.p50_ms - 5.0).abs() < 0.01, "{e2e:?}");
        assert!((e2e.p99_ms - 9.9).abs() < 0.01, "{e2e:?}");
        // ha queue wait: (3 µs × 1..=10,000) / 2.
        let qw = c.values[1][1].unwrap();
        assert!((qw.p50_ms - 7.5).abs() < 0.01, "{qw:?}");
    }

    #[test]
    fn chart_has_title_axes_and_a_legend_entry_per_topology() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = build(&set, "sleepy").unwrap().unwrap();
        assert_eq!(c.name(), "stages-sleepy");
        let svg = c.svg().unwrap();
        assert!(svg.contains("Latency by stage, p50 and p99: sleepy"));
        assert!(svg.contains("time (ms, log scale)"));
        assert!(count_text(&svg, "queue wait") > 0);
        assert_eq!(count_text(&svg, "standalone"), 1);
        assert_eq!(count_text(&svg, "ha"), 1);
        assert!(count_text(&svg, "light: p50 to p99") > 0);
        assert!(c.png().unwrap().starts_with(PNG_SIGNATURE));
    }

    #[test]
    fn workload_without_histograms_has_no_chart() {
        let set = RunSetBuilder::two_topologies_with_faults();
        assert!(build(&set, "nope").unwrap().is_none());
    }
}
