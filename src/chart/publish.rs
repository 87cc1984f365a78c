//! Charts for publishing: a title of one's own before each chart's, and PNGs at a scale
//! (2 for slides and papers) rasterised from the chart's SVG with the bundled font, so a
//! scaled PNG has the SVG's exact layout rather than upsampled pixels.

use anyhow::{Context, Result};

use super::FONT;

/// How charts are rendered for publishing: a title before every chart's own, and the
/// scale of the PNGs (2 for slides and papers: twice the pixels, the same layout).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Drawn before each chart's title (`<title> — <chart title>`).
    pub title: Option<String>,
    /// PNG pixels per SVG unit, 1 to [`MAX_PNG_SCALE`].
    pub png_scale: u32,
}

/// The largest PNG scale: 4 × 1200 × 700 is already 4800 × 2800 pixels.
pub const MAX_PNG_SCALE: u32 = 4;

impl Default for Options {
    fn default() -> Self {
        Options {
            title: None,
            png_scale: 1,
        }
    }
}

/// Rasterise an SVG chart at `scale` × its size with the bundled font, so a scaled PNG is
/// the SVG's exact layout with sharper pixels (not an upsampled bitmap).
pub fn png_from_svg(svg: &str, scale: u32) -> Result<Vec<u8>> {
    let mut fonts = resvg::usvg::fontdb::Database::new();
    fonts.load_font_data(FONT.to_vec());
    fonts.set_sans_serif_family("DejaVu Sans");
    let options = resvg::usvg::Options {
        font_family: "DejaVu Sans".into(),
        fontdb: std::sync::Arc::new(fonts),
        ..Default::default()
    };
    let tree = resvg::usvg::Tree::from_str(svg, &options).context("cannot parse a chart's SVG")?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale as f32)
        .context("a chart's size overflows when scaled")?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .context("cannot allocate a chart's pixels")?;
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(scale as f32, scale as f32),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().context("cannot encode a chart as PNG")
}
