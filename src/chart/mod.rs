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
mod faults;
pub mod latency;
mod publish;
mod scale;
pub mod stages;
pub mod sweep;
pub mod switch_times;
pub mod throughput;
pub mod timeline;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::cartesian::Cartesian2d;
use plotters::coord::ranged1d::DefaultFormatting;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, RGBAColor};

use crate::record::RunSet;

pub use faults::{FaultGroup, FaultKey, fault_groups};
pub use publish::{MAX_PNG_SCALE, Options, png_from_svg};
pub(crate) use scale::{Ticked, bar_span, linear_axis, log_axis};
pub use scale::{fmt_num, linear_ticks, log_bounds, log_ticks};

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
    /// Draw the whole chart (`title`, plot, legend) on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>, title: &str) -> Result<()>
    where
        DB::ErrorType: 'static;

    /// The title drawn with `options`: the chart's own, after the report's title if one
    /// was given.
    fn full_title(&self, options: &Options) -> String {
        match &options.title {
            Some(t) => format!("{t} — {}", self.title()),
            None => self.title(),
        }
    }

    /// The chart as an SVG document.
    fn svg(&self) -> Result<String> {
        self.svg_titled(&self.title())
    }

    /// The chart as an SVG document, titled `title`. Text stays text: searchable and
    /// editable.
    fn svg_titled(&self, title: &str) -> Result<String> {
        ensure_font()?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.size()).into_drawing_area();
            self.draw(&root, title)
                .with_context(|| format!("cannot draw chart {}", self.name()))?;
            root.present()?;
        }
        Ok(svg)
    }

    /// The chart as PNG bytes at its own size.
    fn png(&self) -> Result<Vec<u8>> {
        self.png_titled(&self.title())
    }

    /// The chart as PNG bytes at its own size, titled `title`.
    fn png_titled(&self, title: &str) -> Result<Vec<u8>> {
        ensure_font()?;
        let (w, h) = self.size();
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(&root, title)
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
        self.chart_with(&Options::default())
    }

    /// The chart with its SVG rendered with `options`' title.
    fn chart_with(&self, options: &Options) -> Result<Chart> {
        let title = self.full_title(options);
        Ok(Chart {
            name: self.name(),
            svg: self.svg_titled(&title)?,
            title,
            caption: self.caption(),
        })
    }
}

/// Render every chart of `set` into `charts_dir` as `<name>.svg` and `<name>.png` (creating
/// the directory) and return them in report order: latency of each workload, stages of
/// each workload, throughput, timeline of each run, switch times, failover anatomy.
/// Charts without data (no faults: no failover charts) are left out.
pub fn render_all(set: &RunSet, charts_dir: &Path, options: &Options) -> Result<Vec<Chart>> {
    std::fs::create_dir_all(charts_dir)
        .with_context(|| format!("cannot create {}", charts_dir.display()))?;
    let mut out = Writer {
        dir: charts_dir,
        options,
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
    options: &'a Options,
    charts: Vec<Chart>,
}

impl Writer<'_> {
    /// Render `p` and write its two files. Two names that became equal once made file-safe
    /// (workloads `a b` and `a-b`) get a suffix rather than overwrite each other.
    fn write(&mut self, p: &impl Plot) -> Result<()> {
        let mut chart = p.chart_with(self.options)?;
        let png = match self.options.png_scale {
            1 => p.png_titled(&chart.title)?,
            scale => png_from_svg(&chart.svg, scale)
                .with_context(|| format!("cannot render chart {} at {scale}×", chart.name))?,
        };
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

/// One legend entry per topology (`(name, colour index)`), a filled swatch in its colour.
pub(crate) fn topology_legend(topologies: &[(String, usize)]) -> Vec<LegendEntry> {
    topologies
        .iter()
        .map(|(name, i)| LegendEntry::new(name.clone(), Swatch::Fill(topology_colour(*i).into())))
        .collect()
}

/// A min–max whisker at `x` from `lo` to `hi`, its caps `cap` wide on each side.
pub(crate) fn whisker(x: f64, cap: f64, lo: f64, hi: f64) -> [PathElement<(f64, f64)>; 3] {
    let st = BLACK.stroke_width(2);
    [
        PathElement::new(vec![(x, lo), (x, hi)], st),
        PathElement::new(vec![(x - cap, lo), (x + cap, lo)], st),
        PathElement::new(vec![(x - cap, hi), (x + cap, hi)], st),
    ]
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

/// A chart of categories side by side on x (category `i` from `i` to `i + 1`, labelled
/// under the axis by [`draw_category_labels`] at height `label_y`) over the y axis given,
/// its mesh drawn with the axis descriptions and y labels formatted by `y_fmt`.
pub(crate) fn category_chart<'a, DB, Y>(
    area: &'a DrawingArea<DB, Shift>,
    labels: &[String],
    y: Y,
    label_y: f64,
    (x_desc, y_desc): (&str, &str),
    y_fmt: &dyn Fn(&f64) -> String,
) -> Result<ChartContext<'a, DB, Cartesian2d<Ticked<RangedCoordf64>, Y>>>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64, FormatOption = DefaultFormatting>,
{
    let n = labels.len();
    let x_ticks: Vec<f64> = (0..n).map(|i| i as f64 + 0.5).collect();
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .x_label_area_size(CATEGORY_LABEL_AREA)
        .y_label_area_size(84)
        .build_cartesian_2d(linear_axis(0.0, n as f64, x_ticks), y)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(y_fmt)
        .label_style(font(LABEL_PX))
        .axis_desc_style(font(AXIS_PX))
        .draw()?;
    draw_category_labels(&chart, labels, label_y)?;
    Ok(chart)
}

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
// Names

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

/// The charts `build` makes of each workload of `set` (none for some), in plan order.
pub(crate) fn per_workload<C>(
    set: &RunSet,
    build: impl Fn(&RunSet, &str) -> Result<Option<C>>,
) -> Result<Vec<C>> {
    let mut out = Vec::new();
    for w in workloads(set) {
        out.extend(build(set, &w)?);
    }
    Ok(out)
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

#[cfg(test)]
pub(crate) mod fixture;

#[cfg(test)]
mod tests {
    use super::fixture::*;
    use super::*;

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
    fn workloads_keep_plan_order() {
        let set = RunSetBuilder::two_topologies_with_faults();
        assert_eq!(workloads(&set), ["trivial", "sleepy"]);
    }

    #[test]
    fn render_all_writes_every_chart_in_report_order() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let dir = tempfile::tempdir().unwrap();
        let charts_dir = dir.path().join("charts");
        let charts = render_all(&set, &charts_dir, &Options::default()).unwrap();
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

    /// The width and height a PNG's IHDR chunk gives.
    fn png_size(png: &[u8]) -> (u32, u32) {
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (be(&png[16..20]), be(&png[20..24]))
    }

    #[test]
    fn a_title_and_a_png_scale_for_publishing_keep_the_svg_text_as_text() {
        let set = RunSetBuilder::two_topologies_without_faults();
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            title: Some("Q3 <HA> study".into()),
            png_scale: 2,
        };
        let charts = render_all(&set, dir.path(), &options).unwrap();
        let plain = tempfile::tempdir().unwrap();
        render_all(&set, plain.path(), &Options::default()).unwrap();
        for c in &charts {
            assert!(c.title.starts_with("Q3 <HA> study — "), "{}", c.title);
            // Text stays text (escaped), not paths: searchable and editable.
            assert!(c.svg.contains("Q3 &lt;HA&gt; study"), "{}", c.name);
            let png = std::fs::read(dir.path().join(format!("{}.png", c.name))).unwrap();
            let one = std::fs::read(plain.path().join(format!("{}.png", c.name))).unwrap();
            let (w, h) = png_size(&one);
            assert_eq!(png_size(&png), (2 * w, 2 * h), "{}", c.name);
        }
    }

    #[test]
    fn render_all_without_faults_writes_no_failover_charts() {
        let set = RunSetBuilder::two_topologies_without_faults();
        let dir = tempfile::tempdir().unwrap();
        let charts = render_all(&set, dir.path(), &Options::default()).unwrap();
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
        render_all(
            &RunSetBuilder::two_topologies_with_faults(),
            dir,
            &Options::default(),
        )
        .unwrap();
        render_all(
            &RunSetBuilder::two_topologies_without_faults(),
            &dir.join("no-faults"),
            &Options::default(),
        )
        .unwrap();
        render_all(
            &RunSetBuilder::failover_plan(),
            &dir.join("failover-plan"),
            &Options::default(),
        )
        .unwrap();
    }

    #[test]
    fn names_that_collide_once_made_file_safe_get_a_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let mut set = RunSetBuilder::two_topologies_without_faults();
        set.topologies[1].name = "standalone?".into();
        set.topologies[0].name = "standalone!".into();
        let charts = render_all(&set, dir.path(), &Options::default()).unwrap();
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
