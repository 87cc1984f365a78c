//! `latency-<workload>`: the percentile spectrum of end-to-end latency, HdrHistogram
//! style. x is the percentile on a "1/(1−q)" log scale (0%, 90%, 99%, 99.9% … equally
//! spaced), y the latency in ms on a log scale; one line per topology, from the `latency`
//! histogram merged over its repetitions.

use anyhow::Result;
use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    AXIS_PX, LABEL_PX, LegendEntry, Plot, Swatch, fmt_num, font, frame, linear_axis, log_axis,
    log_bounds, slug, topology_colour,
};
use crate::record::RunSet;

/// Spacing of the sampled points on the x axis, in nines.
const STEP: f64 = 0.02;

/// The percentile spectrum of one workload.
#[derive(Debug, Clone)]
pub struct LatencyChart {
    workload: String,
    lines: Vec<Line>,
}

#[derive(Debug, Clone)]
struct Line {
    topology: String,
    /// Index of the topology in the set (its colour).
    index: usize,
    count: u64,
    /// (nines, ms).
    points: Vec<(f64, f64)>,
}

/// The chart of `workload`; `None` when no topology has latencies for it.
pub fn build(set: &RunSet, workload: &str) -> Result<Option<LatencyChart>> {
    let mut lines = Vec::new();
    for (index, t) in set.topologies.iter().enumerate() {
        let Some(h) = t.merged_histogram(workload, "latency")? else {
            continue;
        };
        if h.is_empty() {
            continue;
        }
        lines.push(Line {
            topology: t.name.clone(),
            index,
            count: h.len(),
            points: spectrum(h.inner()),
        });
    }
    Ok((!lines.is_empty()).then(|| LatencyChart {
        workload: workload.to_string(),
        lines,
    }))
}

/// The charts of every workload of `set`, in plan order.
pub fn build_all(set: &RunSet) -> Result<Vec<LatencyChart>> {
    super::per_workload(set, build)
}

/// Position of quantile `q` on the x axis: the number of nines, −log10(1 − q)
/// (0.9 → 1, 0.99 → 2, 0.999 → 3).
pub fn nines(q: f64) -> f64 {
    -(1.0 - q).log10()
}

/// Tick label of `k` nines: 0%, 90%, 99%, 99.9%, 99.99% …
pub fn nines_label(k: u32) -> String {
    match k {
        0 => "0%".into(),
        1 => "90%".into(),
        k => format!(
            "99{}%",
            if k > 2 {
                format!(".{}", "9".repeat(k as usize - 2))
            } else {
                String::new()
            }
        ),
    }
}

/// Points (nines, latency in ms) of a histogram's percentile spectrum, every 0.02 nines
/// from the 0th percentile up to 1 − 1/n (x = log10 n, as far as n values resolve), the
/// last point being the maximum. Empty for an empty histogram.
pub fn spectrum(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let n = h.len();
    if n == 0 {
        return Vec::new();
    }
    let x_max = (n as f64).log10();
    let mut points = Vec::new();
    let mut i = 0u32;
    loop {
        let x = f64::from(i) * STEP;
        if x >= x_max - STEP / 2.0 {
            break;
        }
        let q = 1.0 - 10f64.powf(-x);
        points.push((x, h.value_at_quantile(q) as f64 / 1000.0));
        i += 1;
    }
    points.push((x_max, h.max() as f64 / 1000.0));
    points
}

impl LatencyChart {
    /// The x axis end, in nines: as far as the data reaches, at least 90%.
    fn x_max(&self) -> f64 {
        self.lines
            .iter()
            .filter_map(|l| l.points.last().map(|p| p.0))
            .fold(1.0, f64::max)
    }
}

impl Plot for LatencyChart {
    fn name(&self) -> String {
        format!("latency-{}", slug(&self.workload))
    }

    fn title(&self) -> String {
        format!("End-to-end latency by percentile: {}", self.workload)
    }

    fn caption(&self) -> String {
        format!(
            "End-to-end latency (result seen minus intended start) of workload {} at each \
             percentile, repetitions merged, one line per topology: the x axis stretches the \
             tail (90%, 99%, 99.9% …) so a line further up on the right means a worse tail, and \
             each line ends at its maximum (dot).",
            self.workload
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, title: &str) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let legend: Vec<LegendEntry> = self
            .lines
            .iter()
            .map(|l| {
                LegendEntry::new(
                    format!("{} (n={})", l.topology, l.count),
                    Swatch::Line(topology_colour(l.index)),
                )
            })
            .collect();
        let area = frame(root, title, &legend)?;
        let x_max = self.x_max();
        let x_ticks: Vec<f64> = (0..=x_max.floor() as u32).map(f64::from).collect();
        let (lo, hi) = log_bounds(self.lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)))
            .unwrap_or((0.001, 1.0));
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(84)
            .build_cartesian_2d(linear_axis(0.0, x_max + 0.05, x_ticks), log_axis(lo, hi))?;
        chart
            .configure_mesh()
            .x_desc("percentile (scale stretches the tail: 1/(1−q))")
            .y_desc("latency (ms, log scale)")
            .x_label_formatter(&|x| nines_label(x.round().max(0.0) as u32))
            .y_label_formatter(&|y| fmt_num(*y))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .light_line_style(WHITE)
            .draw()?;
        for l in &self.lines {
            let colour = topology_colour(l.index);
            let points: Vec<(f64, f64)> = l.points.iter().map(|&(x, y)| (x, y.max(lo))).collect();
            chart.draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(3),
            ))?;
            if let Some(&last) = points.last() {
                chart.draw_series(std::iter::once(Circle::new(last, 5, colour.filled())))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;
    use crate::metrics::LatencyHistogram;

    #[test]
    fn nines_put_percentiles_at_integers() {
        assert!((nines(0.9) - 1.0).abs() < 1e-9);
        assert!((nines(0.999) - 3.0).abs() < 1e-9);
        assert_eq!(nines(0.0), 0.0);
    }

    #[test]
    fn nines_labels() {
        let labels: Vec<String> = (0..6).map(nines_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }

    #[test]
    fn spectrum_of_a_uniform_distribution() {
        let mut h = LatencyHistogram::new();
        for v in 1..=10_000 {
            h.record(v);
        }
        let p = spectrum(h.inner());
        // From 0 to 4 nines (n = 10,000), every 0.02.
        assert_eq!(p.len(), 201);
        assert_eq!(p[0].0, 0.0);
        assert!((p[0].1 - 0.001).abs() < 1e-9);
        let at = |x: f64| p.iter().find(|q| (q.0 - x).abs() < 1e-9).unwrap().1;
        assert!((at(1.0) - 9.0).abs() < 0.01, "p90 = {}", at(1.0));
        assert!((at(2.0) - 9.9).abs() < 0.01, "p99 = {}", at(2.0));
        // Ends at the maximum.
        let last = *p.last().unwrap();
        assert!((last.0 - 4.0).abs() < 1e-9);
        assert!((last.1 - 10.0).abs() < 0.01);
        for w in p.windows(2) {
            assert!(w[1].0 > w[0].0 && w[1].1 >= w[0].1, "{w:?}");
        }
    }

    #[test]
    fn spectrum_of_one_value_and_of_nothing() {
        let mut h = LatencyHistogram::new();
        h.record(5_000);
        let p = spectrum(h.inner());
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, 0.0);
        assert!((p[0].1 - 5.0).abs() < 0.01, "{p:?}");
        assert!(spectrum(LatencyHistogram::new().inner()).is_empty());
    }

    #[test]
    fn chart_has_title_axes_and_a_legend_entry_per_topology() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = build(&set, "trivial").unwrap().unwrap();
        assert_eq!(c.name(), "latency-trivial");
        let svg = c.svg().unwrap();
        assert!(svg.contains("End-to-end latency by percentile: trivial"));
        assert!(svg.contains("latency (ms, log scale)"));
        assert!(svg.contains("percentile"));
        assert!(
            count_text(&svg, "99.99%") > 0,
            "ticks reach 99.99% for n=10000"
        );
        assert!(count_text(&svg, "99.999%") == 0);
        // ha has two repetitions of 10,000 merged.
        assert_eq!(count_text(&svg, "standalone (n=10000)"), 1);
        assert_eq!(count_text(&svg, "ha (n=20000)"), 1);
        assert!(c.png().unwrap().starts_with(PNG_SIGNATURE));
    }

    #[test]
    fn unknown_workload_has_no_chart() {
        let set = RunSetBuilder::two_topologies_with_faults();
        assert!(build(&set, "nope").unwrap().is_none());
    }
}
