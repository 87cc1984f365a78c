//! A tiny document model rendered both as Markdown and as self-contained HTML, so the two
//! reports always say the same thing.

use base64::Engine;

/// One block of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading of level 1–3.
    Heading(u8, String),
    /// A paragraph of plain text.
    Para(String),
    /// A bulleted list.
    List(Vec<String>),
    /// A table; `numeric[i]` right-aligns column i.
    Table {
        /// Column titles.
        head: Vec<String>,
        /// Cells.
        rows: Vec<Vec<String>>,
        /// Right-aligned columns.
        numeric: Vec<bool>,
    },
    /// A chart: linked as `charts/<name>.svg` in Markdown, inlined in HTML.
    Chart {
        /// File stem under `charts/`.
        name: String,
        /// Title (alt text).
        title: String,
        /// What it shows.
        caption: String,
        /// The SVG document.
        svg: String,
    },
    /// Preformatted text under a summary line (collapsed in HTML).
    Details {
        /// Summary line.
        summary: String,
        /// Language hint for Markdown (`toml`).
        lang: String,
        /// The text.
        text: String,
    },
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// Render as GitHub-flavoured Markdown (charts as relative links into `charts/`).
pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                out.push_str(&"#".repeat((*level).clamp(1, 6) as usize));
                out.push(' ');
                out.push_str(text);
                out.push_str("\n\n");
            }
            Block::Para(text) => {
                out.push_str(text);
                out.push_str("\n\n");
            }
            Block::List(items) => {
                for i in items {
                    out.push_str("- ");
                    out.push_str(i);
                    out.push('\n');
                }
                out.push('\n');
            }
            Block::Table {
                head,
                rows,
                numeric,
            } => {
                let cells: Vec<String> = head.iter().map(|h| md_cell(h)).collect();
                out.push_str(&format!("| {} |\n", cells.join(" | ")));
                let rule: Vec<&str> = (0..head.len())
                    .map(|i| {
                        if numeric.get(i).copied().unwrap_or(false) {
                            "---:"
                        } else {
                            "---"
                        }
                    })
                    .collect();
                out.push_str(&format!("| {} |\n", rule.join(" | ")));
                for r in rows {
                    let cells: Vec<String> = r.iter().map(|c| md_cell(c)).collect();
                    out.push_str(&format!("| {} |\n", cells.join(" | ")));
                }
                out.push('\n');
            }
            Block::Chart {
                name,
                title,
                caption,
                ..
            } => {
                out.push_str(&format!("![{title}](charts/{name}.svg)\n\n"));
                out.push_str(&format!("*{caption}* (PNG: `charts/{name}.png`)\n\n"));
            }
            Block::Details {
                summary,
                lang,
                text,
            } => {
                out.push_str(&format!(
                    "{summary}\n\n```{lang}\n{}\n```\n\n",
                    text.trim_end()
                ));
            }
        }
    }
    out
}

/// Escape text for HTML (and XML: the output is well-formed XHTML).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:75rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.45}\
div.wide{overflow-x:auto;max-width:100%;margin:0.5rem 0 1.5rem}\
table{border-collapse:collapse;font-size:0.9rem}\
th,td{border:1px solid #ccc;padding:0.25rem 0.5rem}th{background:#f3f3f3}\
td.n{text-align:right;font-variant-numeric:tabular-nums}\
figure{margin:1.5rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}\
figcaption{font-size:0.9rem;color:#555}pre{background:#f7f7f7;padding:0.75rem;overflow-x:auto}\
h2{border-bottom:1px solid #ddd;padding-bottom:0.2rem;margin-top:2.5rem}";

/// Render as one self-contained HTML page (well-formed XHTML; charts inlined as data
/// URIs, no external resource).
pub fn html(title: &str, blocks: &[Block]) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    out.push_str(&format!("<title>{}</title>\n", escape(title)));
    out.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    for b in blocks {
        match b {
            Block::Heading(level, text) => {
                let l = (*level).clamp(1, 6);
                out.push_str(&format!("<h{l}>{}</h{l}>\n", escape(text)));
            }
            Block::Para(text) => out.push_str(&format!("<p>{}</p>\n", escape(text))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", escape(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table {
                head,
                rows,
                numeric,
            } => {
                // A wide table scrolls in its own box: no column is cut off in a narrow window.
                out.push_str("<div class=\"wide\"><table>\n<thead><tr>");
                for h in head {
                    out.push_str(&format!("<th>{}</th>", escape(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for r in rows {
                    out.push_str("<tr>");
                    for (i, c) in r.iter().enumerate() {
                        if numeric.get(i).copied().unwrap_or(false) {
                            out.push_str(&format!("<td class=\"n\">{}</td>", escape(c)));
                        } else {
                            out.push_str(&format!("<td>{}</td>", escape(c)));
                        }
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table></div>\n");
            }
            Block::Chart {
                title,
                caption,
                svg,
                ..
            } => {
                let data = base64::engine::general_purpose::STANDARD.encode(svg.as_bytes());
                out.push_str(&format!(
                    "<figure>\n<img alt=\"{}\" src=\"data:image/svg+xml;base64,{data}\"/>\n<figcaption>{}</figcaption>\n</figure>\n",
                    escape(title),
                    escape(caption)
                ));
            }
            Block::Details { summary, text, .. } => {
                out.push_str(&format!(
                    "<details>\n<summary>{}</summary>\n<pre>{}</pre>\n</details>\n",
                    escape(summary),
                    escape(text.trim_end())
                ));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_has;

    fn sample() -> Vec<Block> {
        vec![
            Block::Heading(1, "A <b> & c".into()),
            Block::Para("x < y".into()),
            Block::List(vec!["one".into(), "two | three".into()]),
            Block::Table {
                head: vec!["name".into(), "n".into()],
                rows: vec![vec!["a|b".into(), "1".into()]],
                numeric: vec![false, true],
            },
            Block::Chart {
                name: "c1".into(),
                title: "T".into(),
                caption: "C".into(),
                svg: "<svg xmlns=\"http://www.w3.org/2000/svg\"/>".into(),
            },
            Block::Details {
                summary: "file".into(),
                lang: "toml".into(),
                text: "a = \"<x>\"\n".into(),
            },
        ]
    }

    #[test]
    fn markdown_escapes_table_pipes_and_links_charts() {
        let md = markdown(&sample());
        assert!(md.starts_with("# A <b> & c\n\n"));
        assert_has(&md, &["| name | n |\n| --- | ---: |\n| a\\|b | 1 |\n"]);
        assert!(md.contains("![T](charts/c1.svg)"));
        assert!(md.contains("```toml\na = \"<x>\"\n```"));
    }

    #[test]
    fn html_escapes_text_and_inlines_charts() {
        let h = html("t & t", &sample());
        assert!(h.contains("<h1>A &lt;b&gt; &amp; c</h1>"));
        assert!(h.contains("<td class=\"n\">1</td>"));
        assert!(h.contains("src=\"data:image/svg+xml;base64,"));
        assert!(h.contains("<pre>a = &quot;&lt;x&gt;&quot;</pre>"));
        assert!(!h.contains("<b>"));
        assert!(!h.contains("http://") || !h.contains("src=\"http"));
    }
}
