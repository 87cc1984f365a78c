//! report.html in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `scripts/test.sh`) lays the page out at a reader's window width, and a probe script
//! reports whether anything sticks out of the page outside a scroll box, and which wide
//! tables scroll in theirs. Without Chromium these tests fail with the reason; only
//! `HAB_SKIP_BROWSER=1` skips them (CI never sets it).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::tests::comparison_dir;

/// The browser, or why there is none (`None` when the opt-out is set).
fn chromium() -> Option<PathBuf> {
    if std::env::var_os("HAB_SKIP_BROWSER").is_some_and(|v| v == "1") {
        eprintln!("HAB_SKIP_BROWSER=1: report.html is not checked in a browser");
        return None;
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Ok(out) = Command::new("which").arg(name).output()
            && out.status.success()
        {
            return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        }
    }
    panic!(
        "headless Chromium is needed to check report.html's layout and was not found: \
         `apt-get install chromium` (scripts/test.sh does), or HAB_SKIP_BROWSER=1 to skip"
    );
}

/// Chromium's common flags: headless, as root in a sandboxless container, no GPU, and a
/// profile of its own so parallel tests do not share one.
fn browser(bin: &Path, profile: &Path, width: u32, height: u32) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        "--virtual-time-budget=3000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(format!("--window-size={width},{height}"));
    c
}

/// What the probe saw at one window width.
#[derive(Debug, serde::Deserialize)]
struct Probe {
    /// The page's scroll width and the window's width, CSS px.
    page: f64,
    view: f64,
    /// Scroll boxes whose table is wider than the box (they scroll).
    scrolling: usize,
    /// Scroll boxes in all.
    boxes: usize,
    /// Elements outside any scroll box whose right edge is past the window.
    out: Vec<String>,
}

const PROBE: &str = r#"<script>
window.addEventListener('load', function () {
  var de = document.documentElement;
  var boxes = Array.prototype.slice.call(document.querySelectorAll('div.wide'));
  var out = [];
  Array.prototype.forEach.call(document.body.querySelectorAll('*'), function (el) {
    if (el.parentElement && el.parentElement.closest('div.wide')) return;
    if (el.tagName === 'SCRIPT') return;
    var r = el.getBoundingClientRect();
    if (r.right > de.clientWidth + 1) out.push(el.tagName + ' ' + (el.textContent || '').slice(0, 40));
  });
  document.body.setAttribute('data-probe', JSON.stringify({
    page: de.scrollWidth, view: de.clientWidth,
    scrolling: boxes.filter(function (d) { return d.scrollWidth > d.clientWidth + 1; }).length,
    boxes: boxes.length, out: out.slice(0, 10)
  }));
});
</script>"#;

/// Lay `html` out at `width` px and return what the probe saw.
fn probe(bin: &Path, dir: &Path, html: &str, width: u32) -> Probe {
    let page = dir.join(format!("probe-{width}.html"));
    std::fs::write(&page, html.replace("</body>", &format!("{PROBE}</body>"))).unwrap();
    let out = browser(bin, &dir.join(format!("profile-{width}")), width, 900)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let Some(start) = dom.find("data-probe=\"") else {
        panic!(
            "chromium printed no probe at {width} px (status {}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let rest = &dom[start + "data-probe=\"".len()..];
    let json = rest[..rest.find('"').unwrap()]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("probe {json}: {e}"))
}

#[test]
fn report_html_shows_every_column_at_1300_px_and_scrolls_wide_tables_in_their_own_box() {
    let Some(bin) = chromium() else { return };
    let dir = comparison_dir();
    super::render_dir(dir.path()).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<h2>Verdict</h2>"), "the verdict comes first");
    for width in [1300, 600] {
        let p = probe(&bin, dir.path(), &html, width);
        assert!(p.boxes > 0, "{width} px: no table in a scroll box: {p:?}");
        assert!(
            p.out.is_empty() && p.page <= p.view + 1.0,
            "{width} px: content sticks out of the page outside a scroll box: {p:?}"
        );
        if width == 600 {
            // A window this narrow cannot hold the failover table: it must scroll in its
            // box rather than widen the page (where its last columns would be cut off).
            assert!(p.scrolling > 0, "600 px: no table needed to scroll: {p:?}");
        }
    }
    // A screenshot at 1300 px, as a reader sees it.
    let shot = dir.path().join("report-1300.png");
    let out = browser(&bin, &dir.path().join("profile-shot"), 1300, 2400)
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!(
            "file://{}",
            dir.path().join("report.html").display()
        ))
        .output()
        .expect("run chromium");
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    assert_eq!(width, 1300);
    if let Some(keep) = std::env::var_os("HAB_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}

#[test]
fn without_the_scroll_box_a_wide_table_would_stick_out_the_probe_sees_it() {
    // The check above could pass by accident if the probe saw nothing: strip the scroll
    // boxes and the same page must stick out at 600 px.
    let Some(bin) = chromium() else { return };
    let dir = comparison_dir();
    super::render_dir(dir.path()).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html"))
        .unwrap()
        .replace("<div class=\"wide\">", "<div>");
    let p = probe(&bin, dir.path(), &html, 600);
    assert_eq!(p.boxes, 0);
    assert!(
        !p.out.is_empty() || p.page > p.view + 1.0,
        "a wide table without its box did not stick out: {p:?}"
    );
}
