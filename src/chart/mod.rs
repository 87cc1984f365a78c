//! Charts of a comparison, as SVG (for the HTML report) and PNG (to paste into documents).
//!
//! Every chart is built from a [`RunSet`] into a value implementing [`Plot`], which draws on
//! any plotters backend; [`render_all`] writes every chart that has data. Charts carry their
//! own title, axis labels with units and a legend strip under the plot, so a PNG pasted on
//! its own still says what it shows.
//!
//! Text is drawn with a bundled DejaVu Sans (plotters' `ab_glyph` font backend), never with
//! system fonts: charts render the same on a machine without fontconfig.
//!
//! Colours: one fixed colour per topology, in the order of [`RunSet::topologies`] (baseline
//! first), from the Okabe–Ito palette, which stays distinguishable with the common forms of
//! colour blindness.

pub mod anatomy;
pub mod latency;
pub mod stages;
pub mod switch_times;
pub mod throughput;
pub mod timeline;

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, RGBAColor};

use crate::metrics::failover::FailoverRow;
use crate::record::RunSet;

/// A rendered chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// File stem, e.g. `latency-trivial` (the files are `<name>.svg` and `<name>.png`).
    pub name: String,
    /// The chart's title (also drawn at its top).
    pub title: String,
    /// One sentence: what the chart shows and how to read it.
    pub caption: String,
    /// The SVG document.
    pub svg: String,
}

/// Default chart size in pixels (PNG; the SVG has the same user units).
pub const SIZE: (u32, u32) = (1200, 700);

/// A chart ready to be drawn on any backend.
pub trait Plot {
    /// File stem.
    fn name(&self) -> String;
    /// Title drawn at the top of the chart.
    fn title(&self) -> String;
    /// One sentence saying what the chart shows and how to read it.
    fn caption(&self) -> String;
    /// Size in pixels.
    fn size(&self) -> (u32, u32) {
        SIZE
    }
    /// Draw the whole chart (title, plot, legend) on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;

    /// The chart as an SVG document.
    fn svg(&self) -> Result<String> {
        ensure_font()?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size()).into_drawing_area();
            self.draw(&root)
                .with_context(|| format!("cannot draw chart {}", self.name()))?;
            root.present()?;
        }
        Ok(svg)
    }

    /// The chart as PNG bytes.
    fn png(&self) -> Result<Vec<u8>> {
        ensure_font()?;
        let (w, h) = self.size();
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(&root)
                .with_context(|| format!("cannot draw chart {}", self.name()))?;
            root.present()?;
        }
        let mut png = Vec::new();
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut png),
            &rgb,
            w,
            h,
            image::ColorType::Rgb8,
        )
        .with_context(|| format!("cannot encode chart {} as PNG", self.name()))?;
        Ok(png)
    }

    /// The chart with its SVG rendered.
    fn chart(&self) -> Result<Chart> {
        Ok(Chart {
            name: self.name(),
            title: self.title(),
            caption: self.caption(),
            svg: self.svg()?,
        })
    }
}

/// Render every chart of `set` into `charts_dir` as `<name>.svg` and `<name>.png` (creating
/// the directory) and return them in report order: latency of each workload, stages of
/// each workload, throughput, timeline of each run, switch times, failover anatomy.
/// Charts without data (no faults: no failover charts) are left out.
pub fn render_all(set: &RunSet, charts_dir: &Path) -> Result<Vec<Chart>> {
    std::fs::create_dir_all(charts_dir)
        .with_context(|| format!("cannot create {}", charts_dir.display()))?;
    let mut out = Writer {
        dir: charts_dir,
        charts: Vec::new(),
    };
    for p in latency::build_all(set)? {
        out.write(&p)?;
    }
    for p in stages::build_all(set)? {
        out.write(&p)?;
    }
    if let Some(p) = throughput::build(set) {
        out.write(&p)?;
    }
    for p in timeline::build_all(set) {
        out.write(&p)?;
    }
    if let Some(p) = switch_times::build(set) {
        out.write(&p)?;
    }
    if let Some(p) = anatomy::build(set) {
        out.write(&p)?;
    }
    Ok(out.charts)
}

/// Writes charts into a directory, keeping their names unique.
struct Writer<'a> {
    dir: &'a Path,
    charts: Vec<Chart>,
}

impl Writer<'_> {
    /// Render `p` and write its two files. Two names that became equal once made file-safe
    /// (workloads `a b` and `a-b`) get a suffix rather than overwrite each other.
    fn write(&mut self, p: &impl Plot) -> Result<()> {
        let mut chart = p.chart()?;
        let png = p.png()?;
        let stem = chart.name.clone();
        let mut k = 2;
        while self.charts.iter().any(|c| c.name == chart.name) {
            chart.name = format!("{stem}~{k}");
            k += 1;
        }
        crate::export::write_atomic(
            &self.dir.join(format!("{}.svg", chart.name)),
            chart.svg.as_bytes(),
        )?;
        crate::export::write_atomic(&self.dir.join(format!("{}.png", chart.name)), &png)?;
        self.charts.push(chart);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Font

/// DejaVu Sans, bundled (licence: assets/fonts/LICENSE-DejaVu.txt).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The font family every chart uses; registered from [`FONT`].
pub(crate) const FAMILY: &str = "sans-serif";

/// Register the bundled font as `sans-serif` (once per process); every chart calls this
/// before drawing.
pub fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the bundled DejaVuSans.ttf is not a valid font".to_string())
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

/// The chart font at `size` pixels.
pub(crate) fn font(size: u32) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&BLACK)
}

/// Title size. (plotters sizes are in "pixels per line": the em is 1/1.24 of them.)
const TITLE_PX: u32 = 30;
/// Tick label and legend size.
pub(crate) const LABEL_PX: u32 = 19;
/// Axis description size.
pub(crate) const AXIS_PX: u32 = 20;
/// Annotation size (values next to bars, fault labels).
pub(crate) const NOTE_PX: u32 = 17;

// ---------------------------------------------------------------------------------------
// Colours

/// Okabe–Ito, reordered so that the first colours contrast most on white (yellow last).
const OKABE_ITO: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0xF0, 0xE4, 0x42), // yellow
];

/// The colour of the `i`-th topology of a set (baseline = 0); the same in every chart.
pub fn topology_colour(i: usize) -> RGBColor {
    OKABE_ITO[i % OKABE_ITO.len()]
}

/// A colour that stands apart from topology `i`'s colour (for a second quantity drawn in
/// a one-topology chart).
pub(crate) fn contrast_colour(i: usize) -> RGBColor {
    let own = topology_colour(i);
    [OKABE_ITO[4], OKABE_ITO[1], OKABE_ITO[0]]
        .into_iter()
        .find(|c| *c != own)
        .unwrap_or(BLACK)
}

/// Grey used for guides (baseline lines, workload boundaries).
pub(crate) const GUIDE: RGBColor = RGBColor(0x90, 0x90, 0x90);

// ---------------------------------------------------------------------------------------
// Layout: title, plot area, legend strip

/// What a legend entry's swatch looks like.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Swatch {
    /// A filled box.
    Fill(RGBAColor),
    /// A lightly filled box with a solid outline (the "hollow" of a bar).
    Hollow(RGBColor),
    /// A line.
    Line(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A vertical whisker with caps.
    Whisker(RGBColor),
}

/// One entry of a legend.
#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub swatch: Swatch,
}

impl LegendEntry {
    pub(crate) fn new(label: impl Into<String>, swatch: Swatch) -> Self {
        LegendEntry {
            label: label.into(),
            swatch,
        }
    }
}

const SWATCH_W: i32 = 30;
const SWATCH_H: i32 = 14;
const LEGEND_ROW: i32 = 26;
const LEGEND_GAP: i32 = 28;

/// Fill the background, draw the title and, under the plot, the legend (wrapped in rows,
/// centred); return the area left for the plot.
pub(crate) fn frame<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    legend: &[LegendEntry],
) -> Result<DrawingArea<DB, Shift>>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let body = root.margin(8, 4, 8, 16).titled(title, font(TITLE_PX))?;
    let (w, h) = body.dim_in_pixel();
    let style = font(LABEL_PX);
    // Lay entries out in rows no wider than the area.
    let mut rows: Vec<Vec<(&LegendEntry, i32)>> = Vec::new();
    let mut row_w = 0;
    for e in legend {
        let (tw, _) = body.estimate_text_size(&e.label, &style)?;
        let ew = SWATCH_W + 6 + tw as i32;
        if rows.is_empty() || row_w + LEGEND_GAP + ew > w as i32 {
            rows.push(Vec::new());
            row_w = 0;
        } else {
            row_w += LEGEND_GAP;
        }
        row_w += ew;
        if let Some(r) = rows.last_mut() {
            r.push((e, ew));
        }
    }
    let legend_h = rows.len() as i32 * LEGEND_ROW + if rows.is_empty() { 0 } else { 8 };
    let (plot, strip) = body.split_vertically(h as i32 - legend_h);
    for (i, row) in rows.iter().enumerate() {
        let total: i32 =
            row.iter().map(|(_, ew)| ew).sum::<i32>() + LEGEND_GAP * (row.len() as i32 - 1);
        let mut x = (w as i32 - total) / 2;
        let y = 8 + i as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        for (e, ew) in row {
            draw_swatch(&strip, e.swatch, x, y)?;
            strip.draw(&Text::new(
                e.label.clone(),
                (x + SWATCH_W + 6, y),
                style.pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            x += ew + LEGEND_GAP;
        }
    }
    Ok(plot)
}

/// Draw a swatch whose left edge is at `x`, centred vertically on `y`.
fn draw_swatch<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    swatch: Swatch,
    x: i32,
    y: i32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (x0, x1, y0, y1) = (x, x + SWATCH_W, y - SWATCH_H / 2, y + SWATCH_H / 2);
    match swatch {
        Swatch::Fill(c) => {
            area.draw(&Rectangle::new([(x0, y0), (x1, y1)], c.filled()))?;
        }
        Swatch::Hollow(c) => {
            area.draw(&Rectangle::new([(x0, y0), (x1, y1)], c.mix(0.2).filled()))?;
            area.draw(&Rectangle::new([(x0, y0), (x1, y1)], c.stroke_width(2)))?;
        }
        Swatch::Line(c) => {
            area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(3)))?;
        }
        Swatch::Dashed(c) => {
            for k in 0..3 {
                let a = x0 + k * 12;
                area.draw(&PathElement::new(
                    vec![(a, y), ((a + 7).min(x1), y)],
                    c.stroke_width(3),
                ))?;
            }
        }
        Swatch::Whisker(c) => {
            let m = (x0 + x1) / 2;
            let s = c.stroke_width(2);
            area.draw(&PathElement::new(vec![(m, y0 - 2), (m, y1 + 2)], s))?;
            area.draw(&PathElement::new(vec![(m - 6, y0 - 2), (m + 6, y0 - 2)], s))?;
            area.draw(&PathElement::new(vec![(m - 6, y1 + 2), (m + 6, y1 + 2)], s))?;
        }
    }
    Ok(())
}

/// Height of the area under a categorical x axis: room for three lines of labels and the
/// axis description.
pub(crate) const CATEGORY_LABEL_AREA: u32 = 30 + 3 * LABEL_PX + AXIS_PX;

/// Draw the labels of a categorical x axis (category `i` centred at `i + 0.5`) under the
/// plot, each wrapped to the width of its category; `y` is the bottom of the y axis.
/// (plotters' own tick labels are one line each, and long ones collide.)
pub(crate) fn draw_category_labels<DB, X, Y>(
    chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    labels: &[String],
    y: f64,
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    if labels.is_empty() {
        return Ok(());
    }
    let area = chart.plotting_area();
    let (w, _) = area.dim_in_pixel();
    let max_px = (f64::from(w) / labels.len() as f64 * 0.94) as u32;
    let style = font(LABEL_PX).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, label) in labels.iter().enumerate() {
        let lines = wrap(label, max_px, |s| {
            area.estimate_text_size(s, &style).map_or(0, |(w, _)| w)
        });
        for (k, line) in lines.into_iter().enumerate() {
            area.draw(
                &(EmptyElement::at((i as f64 + 0.5, y))
                    + Text::new(line, (0, 10 + k as i32 * LABEL_PX as i32), style.clone())),
            )?;
        }
    }
    Ok(())
}

/// Split `text` into lines no wider than `max_px` as `measure` says, breaking after a
/// space, `.`, `_`, `-` or before `(`; a piece that cannot be broken stays whole.
pub fn wrap(text: &str, max_px: u32, measure: impl Fn(&str) -> u32) -> Vec<String> {
    // Pieces that end at a break opportunity.
    let mut pieces: Vec<String> = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c == '(' && !cur.trim().is_empty() {
            pieces.push(std::mem::take(&mut cur));
        }
        cur.push(c);
        if matches!(c, ' ' | '.' | '_' | '-') {
            pieces.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        pieces.push(cur);
    }
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for p in pieces {
        let candidate = format!("{line}{p}");
        if !line.is_empty() && measure(candidate.trim_end()) > max_px {
            lines.push(line.trim_end().to_string());
            line = p;
        } else {
            line = candidate;
        }
    }
    if !line.trim().is_empty() {
        lines.push(line.trim_end().to_string());
    }
    lines
}

/// `text`, shortened with an ellipsis to fit `max_px` as `measure` says (empty if not even
/// the ellipsis fits).
pub fn fit(text: &str, max_px: u32, measure: impl Fn(&str) -> u32) -> String {
    if measure(text) <= max_px {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for n in (0..chars.len()).rev() {
        let s: String = chars[..n].iter().collect::<String>() + "…";
        if measure(&s) <= max_px {
            return if n == 0 { String::new() } else { s };
        }
    }
    String::new()
}

// ---------------------------------------------------------------------------------------
// Numbers

/// A number with about three significant digits, no trailing zeros, thousands separated
/// (`5,512`, `12.3`, `0.213`).
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        return group_thousands(v.round() as i64);
    }
    let decimals = if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        // Three significant digits below 1.
        (2 - a.log10().floor() as i32).clamp(2, 6) as usize
    };
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn group_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Tick values for a log axis over `lo..hi` (both > 0): 1-2-5 steps, or only powers of ten
/// when that would give more than 12 ticks; never fewer than two ticks when `lo < hi`.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return Vec::new();
    }
    let in_range = |mults: &[f64]| {
        let mut out = Vec::new();
        let mut e = lo.log10().floor() as i32 - 1;
        while 10f64.powi(e) <= hi * 1.000_001 {
            for m in mults {
                let v = m * 10f64.powi(e);
                if v >= lo * 0.999_999 && v <= hi * 1.000_001 {
                    out.push(v);
                }
            }
            e += 1;
        }
        out
    };
    let decades = in_range(&[1.0]);
    let fine = in_range(&[1.0, 2.0, 5.0]);
    if fine.len() > 12 && decades.len() >= 2 {
        decades
    } else if fine.len() >= 2 {
        fine
    } else {
        // Less than one 1-2-5 step in range: the two ends.
        vec![lo, hi]
    }
}

/// Ticks for a linear axis from 0 to `hi`: multiples of a 1-2-5 step, at most about eight.
pub fn linear_ticks(hi: f64) -> Vec<f64> {
    if !(hi > 0.0 && hi.is_finite()) {
        return vec![0.0];
    }
    let raw = hi / 8.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|v| *v <= hi * 1.000_001)
        .collect()
}

/// A lower and an upper bound for a log axis showing `values` (positive ones; others are
/// ignored), with some room at both ends. `None` when no value is positive.
pub fn log_bounds(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    let (lo, hi) = (lo / 1.6, hi * 1.6);
    Some((lo, hi.max(lo * 10.0)))
}

/// An f64 axis (linear or log) with the tick values given, not chosen by plotters, and no
/// light grid lines.
pub(crate) struct Ticked<R> {
    inner: R,
    ticks: Vec<f64>,
}

/// A linear axis over `lo..hi` with ticks at `ticks`.
pub(crate) fn linear_axis(lo: f64, hi: f64, ticks: Vec<f64>) -> Ticked<RangedCoordf64> {
    Ticked {
        inner: (lo..hi).into(),
        ticks,
    }
}

/// A log axis over `lo..hi` (both > 0) with ticks from [`log_ticks`].
pub(crate) fn log_axis(lo: f64, hi: f64) -> Ticked<LogCoord<f64>> {
    Ticked {
        inner: (lo..hi).log_scale().into(),
        ticks: log_ticks(lo, hi),
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> std::ops::Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// Horizontal extent of bar `j` of `n` in category `i` (categories are one unit wide).
pub(crate) fn bar_span(i: usize, j: usize, n: usize, group: f64) -> (f64, f64) {
    let w = group / n as f64;
    let x0 = i as f64 + (1.0 - group) / 2.0 + j as f64 * w;
    (x0 + w * 0.1, x0 + w * 0.9)
}

/// A name usable in a file name: letters, digits, `.`, `_`, `-`; anything else becomes `-`.
pub fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() { "unnamed".into() } else { s }
}

/// Workload names of the set, in plan order: the baseline's, then any other topology's
/// that the baseline does not have.
pub fn workloads(set: &RunSet) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in &set.topologies {
        for w in t.workload_names() {
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Faults

/// What identifies a fault across topologies and repetitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FaultKey {
    /// Workload it ran in.
    pub workload: String,
    /// Role named in the workload file (`broker.primary`).
    pub target: String,
    /// kill, pause or stop.
    pub kind: String,
}

impl FaultKey {
    fn of(row: &FailoverRow) -> Self {
        FaultKey {
            workload: row.workload.clone(),
            target: row.target.clone(),
            kind: row.kind.clone(),
        }
    }

    /// `broker.primary kill`.
    pub fn short_label(&self) -> String {
        format!("{} {}", self.target, self.kind)
    }
}

/// The applied repetitions of one fault on every topology.
#[derive(Debug, Clone)]
pub struct FaultGroup<'a> {
    /// The fault.
    pub key: FaultKey,
    /// Label for axes: `broker.primary kill`, with the workload added when the same
    /// target and kind ran in several workloads.
    pub label: String,
    /// Per topology (index into `set.topologies`): the rows where the fault applied, every
    /// repetition of every run, in order.
    pub rows: Vec<Vec<&'a FailoverRow>>,
    /// Per topology: how many repetitions did not apply (role absent on that topology).
    pub not_applied: Vec<usize>,
}

/// Group the failover rows of `set` by fault (workload, target, kind), in order of first
/// appearance (baseline first). Faults that applied on no topology are left out.
pub fn fault_groups(set: &RunSet) -> Vec<FaultGroup<'_>> {
    let n = set.topologies.len();
    let mut groups: Vec<FaultGroup<'_>> = Vec::new();
    for (ti, t) in set.topologies.iter().enumerate() {
        for run in &t.runs {
            for row in &run.report.failover {
                let key = FaultKey::of(row);
                let gi = match groups.iter().position(|g| g.key == key) {
                    Some(gi) => gi,
                    None => {
                        groups.push(FaultGroup {
                            label: key.short_label(),
                            key,
                            rows: vec![Vec::new(); n],
                            not_applied: vec![0; n],
                        });
                        groups.len() - 1
                    }
                };
                if row.not_applied.is_empty() {
                    groups[gi].rows[ti].push(row);
                } else {
                    groups[gi].not_applied[ti] += 1;
                }
            }
        }
    }
    groups.retain(|g| g.rows.iter().any(|r| !r.is_empty()));
    // Same target and kind in several workloads: say which workload.
    let shorts: Vec<String> = groups.iter().map(|g| g.key.short_label()).collect();
    for g in &mut groups {
        let short = g.key.short_label();
        if shorts.iter().filter(|s| **s == short).count() > 1 {
            g.label = format!("{short} ({})", g.key.workload);
        }
    }
    groups
}

#[cfg(test)]
pub(crate) mod fixture;

#[cfg(test)]
mod tests {
    use super::fixture::*;
    use super::*;

    #[test]
    fn numbers_are_short_and_grouped() {
        assert_eq!(fmt_num(5512.4), "5,512");
        assert_eq!(fmt_num(1_234_567.0), "1,234,567");
        assert_eq!(fmt_num(12.34), "12.3");
        assert_eq!(fmt_num(1.5), "1.5");
        assert_eq!(fmt_num(0.2134), "0.213");
        assert_eq!(fmt_num(0.001234), "0.00123");
        assert_eq!(fmt_num(0.0), "0");
        assert_eq!(fmt_num(100.0), "100");
    }

    #[test]
    fn log_ticks_use_1_2_5_or_decades() {
        assert_eq!(log_ticks(0.8, 60.0), vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0]);
        let wide = log_ticks(0.001, 100_000.0);
        assert_eq!(wide.len(), 9);
        assert!((wide[0] - 0.001).abs() < 1e-12 && wide[8] == 100_000.0);
        // Narrower than one step: the ends.
        assert_eq!(log_ticks(2.1, 4.9), vec![2.1, 4.9]);
        assert!(log_ticks(0.0, 1.0).is_empty());
    }

    #[test]
    fn linear_ticks_are_round() {
        assert_eq!(
            linear_ticks(400.0),
            vec![0.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0]
        );
        assert_eq!(
            linear_ticks(7.0),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
        );
        let t = linear_ticks(1.3);
        assert_eq!(t.len(), 7);
        assert!((t[6] - 1.2).abs() < 1e-9);
        assert_eq!(linear_ticks(0.0), vec![0.0]);
    }

    #[test]
    fn log_bounds_leave_room_and_ignore_non_positive() {
        let (lo, hi) = log_bounds([0.0, 2.0, 50.0, -1.0]).unwrap();
        assert!(lo < 2.0 && lo > 1.0 && hi > 50.0);
        assert!(log_bounds([0.0]).is_none());
    }

    #[test]
    fn bars_of_a_category_do_not_overlap_and_stay_inside_it() {
        let spans: Vec<(f64, f64)> = (0..3).map(|j| bar_span(2, j, 3, 0.8)).collect();
        assert!(spans[0].0 > 2.0 && spans[2].1 < 3.0);
        assert!(spans[0].1 < spans[1].0 && spans[1].1 < spans[2].0);
    }

    #[test]
    fn labels_wrap_at_break_opportunities() {
        let m = |s: &str| s.chars().count() as u32 * 10;
        assert_eq!(wrap("broker.primary kill", 200, m), ["broker.primary kill"]);
        assert_eq!(
            wrap("broker.queue_leader kill", 200, m),
            ["broker.queue_leader", "kill"]
        );
        assert_eq!(
            wrap("broker_queue_leader_kill", 130, m),
            ["broker_queue_", "leader_kill"]
        );
        assert_eq!(
            wrap("broker.primary kill (trivial)", 200, m),
            ["broker.primary kill", "(trivial)"]
        );
        assert_eq!(wrap("unbreakable", 30, m), ["unbreakable"]);
        assert!(wrap("", 30, m).is_empty());
    }

    #[test]
    fn fit_shortens_with_an_ellipsis() {
        let m = |s: &str| s.chars().count() as u32 * 10;
        assert_eq!(fit("trivial", 100, m), "trivial");
        assert_eq!(fit("broker_primary_kill", 60, m), "broke…");
        assert_eq!(fit("broker", 5, m), "");
    }

    #[test]
    fn slugs_are_file_names() {
        assert_eq!(slug("ha mirrored/2"), "ha-mirrored-2");
        assert_eq!(slug("broker_primary.kill-1"), "broker_primary.kill-1");
    }

    #[test]
    fn faults_group_repetitions_per_topology_and_skip_not_applied() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let groups = fault_groups(&set);
        // Two faults: broker.primary kill (both topologies) and backend.replica kill (ha
        // only; not applied on standalone).
        assert_eq!(groups.len(), 2);
        let g = &groups[0];
        assert_eq!(g.label, "broker.primary kill");
        assert_eq!(g.key.workload, "trivial");
        // Standalone: one run with two repetitions; ha: two runs with two each.
        assert_eq!(g.rows[0].len(), 2);
        assert_eq!(g.rows[1].len(), 4);
        let g = &groups[1];
        assert_eq!(g.label, "backend.replica kill");
        assert_eq!(g.rows[0].len(), 0);
        assert_eq!(g.not_applied[0], 1);
        assert_eq!(g.rows[1].len(), 2);
    }

    #[test]
    fn same_fault_in_two_workloads_is_labelled_with_the_workload() {
        let mut set = RunSetBuilder::two_topologies_with_faults();
        let mut extra = set.topologies[1].runs[0].report.failover[0].clone();
        extra.workload = "sleepy".into();
        set.topologies[1].runs[0].report.failover.push(extra);
        let labels: Vec<String> = fault_groups(&set).into_iter().map(|g| g.label).collect();
        assert_eq!(
            labels,
            [
                "broker.primary kill (trivial)",
                "backend.replica kill",
                "broker.primary kill (sleepy)"
            ]
        );
    }

    #[test]
    fn workloads_keep_plan_order() {
        let set = RunSetBuilder::two_topologies_with_faults();
        assert_eq!(workloads(&set), ["trivial", "sleepy"]);
    }

    #[test]
    fn render_all_writes_every_chart_in_report_order() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let dir = tempfile::tempdir().unwrap();
        let charts_dir = dir.path().join("charts");
        let charts = render_all(&set, &charts_dir).unwrap();
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "latency-trivial",
                "latency-sleepy",
                "stages-trivial",
                "stages-sleepy",
                "throughput",
                "timeline-standalone",
                "timeline-ha",
                "timeline-ha-2",
                "switch-times",
                "anatomy",
            ]
        );
        let mut files: Vec<String> = std::fs::read_dir(&charts_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let mut expected: Vec<String> = names
            .iter()
            .flat_map(|n| [format!("{n}.png"), format!("{n}.svg")])
            .collect();
        expected.sort();
        assert_eq!(files, expected);
        for c in &charts {
            assert!(c.svg.starts_with("<svg"), "{}", c.name);
            assert!(c.svg.contains(&c.title), "{}", c.name);
            assert!(!c.caption.is_empty());
            let png = std::fs::read(charts_dir.join(format!("{}.png", c.name))).unwrap();
            assert!(png.starts_with(PNG_SIGNATURE), "{}", c.name);
            let svg = std::fs::read_to_string(charts_dir.join(format!("{}.svg", c.name))).unwrap();
            assert_eq!(svg, c.svg);
        }
    }

    #[test]
    fn render_all_without_faults_writes_no_failover_charts() {
        let set = RunSetBuilder::two_topologies_without_faults();
        let dir = tempfile::tempdir().unwrap();
        let charts = render_all(&set, dir.path()).unwrap();
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "latency-trivial",
                "stages-trivial",
                "throughput",
                "timeline-standalone",
                "timeline-ha",
            ]
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 10);
    }

    /// Writes the fixture's charts where `HAB_CHART_DUMP` says, to look at them:
    /// `HAB_CHART_DUMP=/tmp/charts cargo test --lib dump_fixture_charts -- --ignored`.
    #[test]
    #[ignore = "writes files for a human to look at"]
    fn dump_fixture_charts() {
        let dir = std::env::var("HAB_CHART_DUMP").unwrap_or_else(|_| "/tmp/hab-charts".into());
        let dir = Path::new(&dir);
        render_all(&RunSetBuilder::two_topologies_with_faults(), dir).unwrap();
        render_all(
            &RunSetBuilder::two_topologies_without_faults(),
            &dir.join("no-faults"),
        )
        .unwrap();
        render_all(&RunSetBuilder::failover_plan(), &dir.join("failover-plan")).unwrap();
    }

    #[test]
    fn names_that_collide_once_made_file_safe_get_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = RunSetBuilder::two_topologies_without_faults();
        set.topologies[1].name = "standalone?".into();
        set.topologies[0].name = "standalone!".into();
        let charts = render_all(&set, dir.path()).unwrap();
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            &names[3..],
            ["timeline-standalone-", "timeline-standalone-~2"]
        );
        assert!(dir.path().join("timeline-standalone-~2.png").is_file());
    }

    #[test]
    fn topology_colours_are_fixed_and_distinct() {
        let c: Vec<RGBColor> = (0..8).map(topology_colour).collect();
        for i in 0..8 {
            for j in 0..i {
                assert_ne!(c[i], c[j]);
            }
        }
        assert_eq!(topology_colour(8), topology_colour(0));
        for i in 0..8 {
            assert_ne!(contrast_colour(i), topology_colour(i));
        }
    }
}
