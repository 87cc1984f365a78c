//! `anatomy`: what a failover is made of. One horizontal bar per (fault, topology), the
//! medians over repetitions of five consecutive phases after the fault: detect, promote,
//! proxy up (HAProxy's new route, or under client-side failover the clients' own
//! rediscovery), reconnect, switch (tasks flow again: the switch time).
//!
//! Each phase ends at an observer's first sighting (ms after the fault,
//! [`crate::metrics::failover::phase_offsets`]). Observers are independent, so on a given
//! run a later phase can be seen before an earlier one (HAProxy flips before Sentinel's
//! `+switch-master` arrives), after tasks already flow again, or not at all: phase ends are
//! made cumulative (each the maximum of itself and every earlier end) and capped at the
//! switch time, so no segment is negative, a missing phase has zero width and the bar ends
//! at the switch time. The phases out of order
//! ([`crate::metrics::failover::phase_order`]) are named beside the bar, under its timing
//! note, with the number of repetitions, and marked with a black tick where they were seen (the median
//! over those repetitions). Medians are taken per phase end, over repetitions; the median
//! of non-decreasing sequences is non-decreasing, so the segments stay ordered.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    AXIS_PX, LABEL_PX, LegendEntry, NOTE_PX, Plot, SIZE, Swatch, fault_groups, fmt_num, font,
    frame, linear_axis, linear_ticks,
};
use crate::metrics::failover::{self, FailoverRow};
use crate::metrics::stats::median;
use crate::record::RunSet;

/// The phases, in order ([`failover::PHASES`]), with what ends each.
pub const PHASES: [(&str, &str); 5] = [
    (
        failover::PHASES[0],
        "first client error, Sentinel +sdown or HAProxy DOWN",
    ),
    (
        failover::PHASES[1],
        "Sentinel +switch-master or new queue leader",
    ),
    (
        failover::PHASES[2],
        "HAProxy UP; client-side failover: the client's own rediscovery",
    ),
    (failover::PHASES[3], "client reconnected"),
    (
        failover::PHASES[4],
        "a task published after the fault completed: the switch time",
    ),
];

/// What the tick on a bar means (the legend's entry, shown when a bar has one).
pub const OUT_OF_ORDER_LEGEND: &str =
    "out of order: a phase seen after the switch or before an earlier phase (named on the bar)";

/// Viridis at five steps: ordered phases, ordered colours, colour-blind safe.
const PHASE_COLOURS: [RGBColor; 5] = [
    RGBColor(0x44, 0x01, 0x54),
    RGBColor(0x3B, 0x52, 0x8B),
    RGBColor(0x21, 0x91, 0x8C),
    RGBColor(0x5E, 0xC9, 0x62),
    RGBColor(0xFD, 0xE7, 0x25),
];

/// Pixels per bar (the chart grows taller when there are many).
const PX_PER_BAR: u32 = 40;

/// When each phase of `row` ended, ms after the fault: cumulative (never decreasing, never
/// below 0) and, when a task flowed again, never past the switch time; a phase not
/// observed ends where the previous one did.
pub fn phase_ends(row: &FailoverRow) -> [f64; 5] {
    let observed = failover::phase_offsets(row);
    let cap = row
        .switch_time_ms
        .filter(|v| v.is_finite())
        .unwrap_or(f64::INFINITY);
    let mut ends = [0.0; 5];
    let mut prev: f64 = 0.0;
    for (end, seen) in ends.iter_mut().zip(observed) {
        if let Some(v) = seen {
            prev = prev.max(v);
        }
        *end = prev.min(cap);
    }
    ends
}

/// Widths of the phases whose ends are `ends` (non-negative when `ends` is non-decreasing).
pub fn segments(ends: [f64; 5]) -> [f64; 5] {
    let mut out = [0.0; 5];
    let mut prev = 0.0;
    for (o, e) in out.iter_mut().zip(ends) {
        *o = e - prev;
        prev = e;
    }
    out
}

/// Median of each phase end over `rows`; `None` without rows.
pub fn median_ends(rows: &[&FailoverRow]) -> Option<[f64; 5]> {
    if rows.is_empty() {
        return None;
    }
    let all: Vec<[f64; 5]> = rows.iter().map(|r| phase_ends(r)).collect();
    let mut out = [0.0; 5];
    for (k, o) in out.iter_mut().enumerate() {
        let v: Vec<f64> = all.iter().map(|e| e[k]).collect();
        *o = median(v)?;
    }
    Some(out)
}

/// The phase ends of the bar of `rows` (the repetitions of one fault on one topology): the
/// medians over the repetitions after which a task completed, so that the bar ends at the
/// median switch time the report prints; over every repetition when none did (the bar
/// then ends at the last phase seen). `None` without rows.
pub fn bar_ends(rows: &[&FailoverRow]) -> Option<[f64; 5]> {
    let completed: Vec<&FailoverRow> = rows
        .iter()
        .copied()
        .filter(|r| r.switch_time_ms.is_some())
        .collect();
    if completed.is_empty() {
        median_ends(rows)
    } else {
        median_ends(&completed)
    }
}

/// One bar.
#[derive(Debug, Clone)]
struct Bar {
    label: String,
    /// Median phase ends, s.
    ends: [f64; 5],
    reps: usize,
    /// Repetitions where a task completed after the fault.
    completed: usize,
    /// Client-side failover: the switch phase is the clients' rediscovery (no proxy).
    client_side: bool,
    /// Phases seen out of order, in phase order: name, in how many repetitions, and the
    /// median offset they were seen at over those, s.
    out_of_order: Vec<OutOfOrder>,
}

/// A phase seen out of order in some repetitions of a bar.
#[derive(Debug, Clone, PartialEq)]
struct OutOfOrder {
    name: &'static str,
    reps: usize,
    at_s: f64,
}

/// The phases of `rows` seen out of order, in phase order.
fn out_of_order(rows: &[&FailoverRow]) -> Vec<OutOfOrder> {
    let mut out = Vec::new();
    for phase in 0..4 {
        let mut name = None;
        let mut seen = Vec::new();
        for r in rows {
            let n = failover::phase_name(r, phase);
            if failover::phase_order(r).out_of_order.contains(&n)
                && let Some(t) = failover::phase_offsets(r)[phase]
            {
                name.get_or_insert(n);
                seen.push(t / 1000.0);
            }
        }
        if let (Some(name), Some(at_s)) = (name, median(seen.iter().copied())) {
            out.push(OutOfOrder {
                name,
                reps: seen.len(),
                at_s,
            });
        }
    }
    out
}

/// The anatomy of every fault on every topology.
#[derive(Debug, Clone)]
pub struct AnatomyChart {
    bars: Vec<Bar>,
}

/// The chart; `None` when no fault applied anywhere.
pub fn build(set: &RunSet) -> Option<AnatomyChart> {
    let mut bars = Vec::new();
    for g in fault_groups(set) {
        for (t, rows) in g.rows.iter().enumerate() {
            let Some(ends) = bar_ends(rows) else {
                continue;
            };
            bars.push(Bar {
                label: format!("{} · {}", set.topologies[t].name, g.label),
                ends: ends.map(|ms| ms / 1000.0),
                reps: rows.len(),
                completed: rows.iter().filter(|r| r.switch_time_ms.is_some()).count(),
                client_side: rows.iter().any(|r| r.client_side),
                out_of_order: out_of_order(rows),
            });
        }
    }
    (!bars.is_empty()).then_some(AnatomyChart { bars })
}

impl Bar {
    /// What is written at the end of the bar: the switch time and repetitions.
    fn note(&self) -> String {
        let note = self.timing();
        if self.client_side {
            format!("{note}; client-side, proxy switch n/a")
        } else {
            note
        }
    }

    /// What is written under it when phases were seen out of order: which, in how many
    /// repetitions.
    fn order_note(&self) -> Option<String> {
        (!self.out_of_order.is_empty()).then(|| {
            let phases: Vec<String> = self
                .out_of_order
                .iter()
                .map(|o| format!("{} {}/{}", o.name, o.reps, self.reps))
                .collect();
            format!("out of order: {}", phases.join(", "))
        })
    }

    fn timing(&self) -> String {
        let total = self.ends[4];
        if self.completed == 0 {
            format!("no completion (n={})", self.reps)
        } else if self.completed < self.reps {
            format!(
                "{} s (n={}, {} without completion)",
                fmt_num(total),
                self.reps,
                self.reps - self.completed
            )
        } else {
            format!("{} s (n={})", fmt_num(total), self.reps)
        }
    }
}

impl Plot for AnatomyChart {
    fn name(&self) -> String {
        "anatomy".into()
    }

    fn title(&self) -> String {
        "Failover anatomy: phases after the fault (medians)".into()
    }

    fn caption(&self) -> String {
        "Each bar is one fault on one topology, split into consecutive phases after the \
         fault (detect, promote, proxy up, reconnect, switch: a task published after the \
         fault completed), each the median over repetitions in seconds; a phase that was \
         not observed, or that an observer saw before the previous one, has no width, and \
         no phase reaches past the switch time, so the bar ends at the median switch time. \
         A phase seen after the switch time or before an earlier phase is out of order: \
         the bar names it with the number of repetitions, and a black tick marks where it \
         was seen. Proxy up is HAProxy marking the new server UP; under client-side \
         failover there is no proxy switch (marked n/a on the bar) and the phase ends at \
         the clients' own rediscovery (another broker node tried, a new master named by \
         the Sentinels)."
            .into()
    }

    fn size(&self) -> (u32, u32) {
        let h = 220 + PX_PER_BAR * self.bars.len() as u32;
        (SIZE.0, SIZE.1.max(h))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        title: &str,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        let mut legend: Vec<LegendEntry> = PHASES
            .iter()
            .zip(PHASE_COLOURS)
            .map(|((name, until), c)| {
                LegendEntry::new(format!("{name} (→ {until})"), Swatch::Fill(c.into()))
            })
            .collect();
        if self.bars.iter().any(|b| !b.out_of_order.is_empty()) {
            legend.push(LegendEntry::new(
                OUT_OF_ORDER_LEGEND,
                Swatch::Whisker(BLACK),
            ));
        }
        let area = frame(root, title, &legend)?;

        let n = self.bars.len();
        let mut label_w = 0;
        for b in &self.bars {
            label_w = label_w.max(area.estimate_text_size(&b.label, &font(LABEL_PX))?.0);
        }
        let longest = self
            .bars
            .iter()
            .flat_map(|b| std::iter::once(b.ends[4]).chain(b.out_of_order.iter().map(|o| o.at_s)))
            .fold(0.0, f64::max);
        // Room on the right for the notes: the plot is about `plot_w` pixels wide; a note
        // `w` pixels wide after a bar ending at `end` needs x_max ≥ end·plot_w/(plot_w − w).
        let plot_w = (area.dim_in_pixel().0 as f64 - label_w as f64 - 44.0).max(100.0);
        let mut x_max = longest * 1.05;
        for b in &self.bars {
            let mut w = area.estimate_text_size(&b.note(), &font(NOTE_PX))?.0;
            if let Some(o) = b.order_note() {
                w = w.max(area.estimate_text_size(&o, &font(NOTE_PX))?.0);
            }
            let room = (plot_w - 12.0 - w as f64).max(plot_w * 0.25);
            x_max = x_max.max(b.ends[4] * plot_w / room);
        }
        let x_max = if x_max > 0.0 { x_max } else { 1.0 };
        // Bar i is centred at n − i − 0.5 (the first at the top).
        let y_ticks: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            .x_label_area_size(56)
            .y_label_area_size(label_w + 20)
            .build_cartesian_2d(
                linear_axis(0.0, x_max, linear_ticks(x_max)),
                linear_axis(0.0, n as f64, y_ticks),
            )?;
        let bar_label = |y: &f64| {
            let from_top = n as f64 - y.floor() - 1.0;
            if from_top < 0.0 {
                return String::new();
            }
            self.bars
                .get(from_top as usize)
                .map(|b| b.label.clone())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("time after the fault (s)")
            .y_label_formatter(&bar_label)
            .x_label_formatter(&|x| fmt_num(*x))
            .label_style(font(LABEL_PX))
            .axis_desc_style(font(AXIS_PX))
            .draw()?;

        let note = font(NOTE_PX).pos(Pos::new(HPos::Left, VPos::Center));
        let upper = font(NOTE_PX).pos(Pos::new(HPos::Left, VPos::Bottom));
        let lower = font(NOTE_PX).pos(Pos::new(HPos::Left, VPos::Top));
        for (i, b) in self.bars.iter().enumerate() {
            let yc = n as f64 - i as f64 - 0.5;
            let half = if n <= 4 { 0.22 } else { 0.32 };
            let (y0, y1) = (yc - half, yc + half);
            let mut start = 0.0;
            for (k, end) in b.ends.iter().enumerate() {
                if *end > start {
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(start, y0), (*end, y1)],
                        PHASE_COLOURS[k].filled(),
                    )))?;
                }
                start = *end;
            }
            // Where each phase out of order was seen: a tick across the bar.
            for o in &b.out_of_order {
                let tick = BLACK.stroke_width(2);
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(o.at_s, y0 - 0.06), (o.at_s, y1 + 0.06)],
                    tick,
                )))?;
            }
            match b.order_note() {
                None => chart.draw_series(std::iter::once(
                    EmptyElement::at((b.ends[4], yc)) + Text::new(b.note(), (8, 0), note.clone()),
                ))?,
                // Two lines: the timing above the bar's middle, the phases out of order
                // below it.
                Some(order) => chart.draw_series(std::iter::once(
                    EmptyElement::at((b.ends[4], yc))
                        + Text::new(b.note(), (8, -1), upper.clone())
                        + Text::new(order, (8, 1), lower.clone()),
                ))?,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    fn sum(s: [f64; 5]) -> f64 {
        s.iter().sum()
    }

    #[test]
    fn out_of_order_phases_have_zero_width_and_sum_to_the_switch_time() {
        // HAProxy UP at 1,200 ms but the client reconnected at 1,100 ms.
        let r = FailoverRow {
            first_client_error_ms: Some(15.0),
            proxy_down_ms: Some(300.0),
            queue_leader_ms: Some(900.0),
            proxy_up_ms: Some(1200.0),
            client_reconnected_ms: Some(1100.0),
            switch_time_ms: Some(1500.0),
            ..row("w", "broker.primary", "kill", 0, 0)
        };
        assert_eq!(phase_ends(&r), [15.0, 900.0, 1200.0, 1200.0, 1500.0]);
        let s = segments(phase_ends(&r));
        assert_eq!(s, [15.0, 885.0, 300.0, 0.0, 300.0]);
        assert_eq!(sum(s), 1500.0);
    }

    #[test]
    fn missing_phases_have_zero_width() {
        // Only Sentinel's promotion and the first task were seen; the promotion is taken
        // from the earlier of +switch-master and the queue leader.
        let r = FailoverRow {
            sentinel_switch_ms: Some(2000.0),
            queue_leader_ms: Some(2600.0),
            switch_time_ms: Some(2500.0),
            ..row("w", "backend.master", "kill", 0, 0)
        };
        let s = segments(phase_ends(&r));
        assert_eq!(s, [0.0, 2000.0, 0.0, 0.0, 500.0]);
        assert_eq!(sum(s), 2500.0);
        // A promotion seen after the first task: the bar is as long as the last phase seen.
        let r = FailoverRow {
            proxy_down_ms: Some(100.0),
            sentinel_switch_ms: Some(3000.0),
            switch_time_ms: Some(2500.0),
            ..row("w", "backend.master", "kill", 0, 0)
        };
        let s = segments(phase_ends(&r));
        assert!(s.iter().all(|v| *v >= 0.0));
        // The bar stops at the switch time; the late promotion is marked, not drawn.
        assert_eq!(s, [100.0, 2400.0, 0.0, 0.0, 0.0]);
        assert_eq!(sum(s), 2500.0);
        // Nothing seen at all.
        assert_eq!(phase_ends(&row("w", "t", "kill", 0, 0)), [0.0; 5]);
    }

    #[test]
    fn a_bar_ends_at_the_median_switch_time_of_the_repetitions_that_completed() {
        let done = |rep, switch| FailoverRow {
            proxy_down_ms: Some(20.0),
            sentinel_switch_ms: Some(2300.0),
            switch_time_ms: Some(switch),
            ..row("w", "backend.master", "kill", rep, 0)
        };
        let (a, b) = (done(0, 2080.0), done(1, 2966.0));
        // No task completed after this one: its last phase seen is not a switch time.
        let none = FailoverRow {
            switch_time_ms: None,
            ..done(2, 0.0)
        };
        let ends = bar_ends(&[&a, &b, &none]).unwrap();
        // The median of 2,080 and 2,966 ms, as the report's switch column says.
        assert_eq!(ends[4], 2523.0);
        // The promotion (2,300 ms) came after the first repetition's switch time: capped.
        assert_eq!(ends[1], (2080.0 + 2300.0) / 2.0);
        assert_eq!(bar_ends(&[&none]).unwrap()[4], 2300.0);
    }

    #[test]
    fn medians_per_phase_end_stay_ordered() {
        let a = FailoverRow {
            proxy_down_ms: Some(100.0),
            proxy_up_ms: Some(1000.0),
            switch_time_ms: Some(1100.0),
            ..row("w", "t", "kill", 0, 0)
        };
        let b = FailoverRow {
            proxy_down_ms: Some(300.0),
            proxy_up_ms: Some(600.0),
            switch_time_ms: Some(2000.0),
            ..row("w", "t", "kill", 1, 0)
        };
        let c = FailoverRow {
            proxy_down_ms: Some(200.0),
            switch_time_ms: Some(1500.0),
            ..row("w", "t", "kill", 2, 0)
        };
        let ends = median_ends(&[&a, &b, &c]).unwrap();
        assert_eq!(ends, [200.0, 200.0, 600.0, 600.0, 1500.0]);
        assert!(segments(ends).iter().all(|v| *v >= 0.0));
        assert_eq!(sum(segments(ends)), 1500.0);
        assert!(median_ends(&[]).is_none());
    }

    #[test]
    fn one_bar_per_fault_and_topology_where_it_applied() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = build(&set).unwrap();
        let labels: Vec<&str> = c.bars.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "standalone · broker.primary kill",
                "ha · broker.primary kill",
                "ha · backend.replica kill"
            ]
        );
        // ha broker kill: median switch 1.5 s over 4 repetitions.
        assert!((c.bars[1].ends[4] - 1.5).abs() < 1e-9);
        // The fixture's clients reconnect (1.1 s) before HAProxy's new route (1.2 s).
        assert_eq!(c.bars[1].note(), "1.5 s (n=4)");
        assert_eq!(
            c.bars[1].order_note().as_deref(),
            Some("out of order: reconnect 4/4")
        );
        assert_eq!(c.bars[0].order_note(), None);
        assert_eq!(c.bars[2].note(), "no completion (n=2)");
    }

    #[test]
    fn chart_has_title_axis_bars_and_phase_legend() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let c = build(&set).unwrap();
        let svg = c.svg().unwrap();
        assert!(svg.contains("Failover anatomy: phases after the fault (medians)"));
        assert!(svg.contains("time after the fault (s)"));
        assert!(count_text(&svg, "ha · broker.primary kill") > 0);
        for (phase, _) in PHASES {
            assert_eq!(
                svg_texts(&svg)
                    .iter()
                    .filter(|t| t.starts_with(&format!("{phase} (→ ")))
                    .count(),
                1,
                "{phase}"
            );
        }
        // The out-of-order phases are named under the bar, and the legend says what the
        // tick means.
        assert_eq!(count_text(&svg, "out of order: reconnect 4/4"), 1);
        assert_eq!(
            svg_texts(&svg)
                .iter()
                .filter(|t| t.starts_with("out of order: a phase seen after the switch"))
                .count(),
            1,
            "{:?}",
            svg_texts(&svg)
        );
        assert!(c.png().unwrap().starts_with(PNG_SIGNATURE));
        assert!(build(&RunSetBuilder::two_topologies_without_faults()).is_none());
    }
}
