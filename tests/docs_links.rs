//! Every relative link and image in README.md and `docs/**/*.md` resolves: the file or
//! directory exists (relative to the linking file; a leading `/` is the repository root),
//! and an `#anchor` into a Markdown file (or `#anchor` alone, into the same file) names one
//! of its headings by GitHub's slug rules. Absolute URLs (`http:`, `https:`, `mailto:`)
//! are not checked. Links inside fenced code blocks and inline code are not links.
//!
//! Plain std, no Markdown parser: inline links and images `[text](target)`,
//! `![alt](target)` (an optional `"title"`, `<target>` in angle brackets, balanced
//! parentheses in the target), and reference definitions `[label]: target`. ATX (`# …`)
//! and setext (`…` over `===`/`---`) headings give the anchors.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every `.md` under docs/, sorted, relative to the repository root.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = vec![PathBuf::from("README.md")];
    walk(&root.join("docs"), root, &mut out);
    out
}

/// A link found in a Markdown file: the line its target starts on (1-based) and the
/// target as written (angle brackets and title removed).
#[derive(Debug, PartialEq, Eq)]
struct Link {
    line: usize,
    target: String,
}

/// The fence a line opens or closes: its character and length (``` or ~~~, at least 3).
fn fence_of(line: &str) -> Option<(char, usize)> {
    let t = line.trim_start();
    let c = t.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = t.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// The text with every line inside a fenced code block (fences included) blanked;
/// line numbers are kept.
fn blank_fenced_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<(char, usize)> = None;
    for line in text.split_inclusive('\n') {
        let nl = if line.ends_with('\n') { "\n" } else { "" };
        match (open, fence_of(line)) {
            (None, Some(f)) => {
                open = Some(f);
                out.push_str(nl);
            }
            (Some((c, n)), Some((c2, n2)))
                if c == c2 && n2 >= n && line.trim().chars().all(|x| x == c) =>
            {
                open = None;
                out.push_str(nl);
            }
            (Some(_), _) => out.push_str(nl),
            (None, None) => out.push_str(line),
        }
    }
    out
}

/// Inline code spans, HTML comments and backslash escapes replaced by spaces (newlines
/// kept), on text whose fenced code is already blanked.
fn blank_inline_code(text: &str) -> String {
    let mut c: Vec<char> = text.chars().collect();
    let blank = |c: &mut Vec<char>, from: usize, to: usize| {
        for x in &mut c[from..to] {
            if *x != '\n' {
                *x = ' ';
            }
        }
    };
    let mut i = 0;
    while i < c.len() {
        if c[i] == '`' {
            let n = c[i..].iter().take_while(|&&x| x == '`').count();
            // The closing run: exactly n backticks, before a blank line.
            let mut j = i + n;
            let mut close = None;
            while j < c.len() {
                if c[j] == '\n' && c.get(j + 1) == Some(&'\n') {
                    break;
                }
                if c[j] == '`' {
                    let m = c[j..].iter().take_while(|&&x| x == '`').count();
                    if m == n {
                        close = Some(j + m);
                        break;
                    }
                    j += m;
                } else {
                    j += 1;
                }
            }
            match close {
                Some(end) => {
                    blank(&mut c, i, end);
                    i = end;
                }
                None => i += n,
            }
        } else if c[i] == '\\' && c.get(i + 1).is_some_and(|x| x.is_ascii_punctuation()) {
            blank(&mut c, i, i + 2);
            i += 2;
        } else if c[i..].starts_with(&['<', '!', '-', '-']) {
            let end = (i + 4..c.len())
                .find(|&k| c[k..].starts_with(&['-', '-', '>']))
                .map_or(c.len(), |k| k + 3);
            blank(&mut c, i, end);
            i = end;
        } else {
            i += 1;
        }
    }
    c.into_iter().collect()
}

/// Every inline link, image and reference definition outside code.
fn extract_links(text: &str) -> Vec<Link> {
    let c: Vec<char> = blank_inline_code(&blank_fenced_code(text))
        .chars()
        .collect();
    let line_at = |pos: usize| 1 + c[..pos].iter().filter(|&&x| x == '\n').count();
    let blank_line_at = |k: usize| c[k] == '\n' && c.get(k + 1) == Some(&'\n');
    let mut links = Vec::new();
    for i in 0..c.len() {
        if c[i] != '[' {
            continue;
        }
        // The matching `]`, within one paragraph.
        let mut depth = 0usize;
        let mut close = None;
        for (k, &x) in c.iter().enumerate().skip(i) {
            if blank_line_at(k) {
                break;
            }
            match x {
                '[' => depth += 1,
                ']' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(k);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else { continue };
        match c.get(close + 1) {
            Some('(') => {
                let mut k = close + 2;
                while k < c.len() && c[k].is_whitespace() && !blank_line_at(k) {
                    k += 1;
                }
                let start = k;
                let target: String = if c.get(k) == Some(&'<') {
                    let Some(end) = (k + 1..c.len()).find(|&e| c[e] == '>' || c[e] == '\n') else {
                        continue;
                    };
                    if c[end] != '>' {
                        continue;
                    }
                    c[k + 1..end].iter().collect()
                } else {
                    let mut parens = 0usize;
                    let mut e = k;
                    while e < c.len() && !c[e].is_whitespace() {
                        match c[e] {
                            '(' => parens += 1,
                            ')' if parens == 0 => break,
                            ')' => parens -= 1,
                            _ => {}
                        }
                        e += 1;
                    }
                    c[k..e].iter().collect()
                };
                links.push(Link {
                    line: line_at(start),
                    target,
                });
            }
            Some(':') => {
                // A reference definition: `[label]: target` at the start of a line.
                let line_start = c[..i].iter().rposition(|&x| x == '\n').map_or(0, |p| p + 1);
                let indent = &c[line_start..i];
                if indent.len() > 3 || indent.iter().any(|&x| x != ' ') {
                    continue;
                }
                let rest: String = c[close + 2..].iter().take_while(|&&x| x != '\n').collect();
                if let Some(t) = rest.split_whitespace().next() {
                    let t = t.trim_start_matches('<').trim_end_matches('>');
                    links.push(Link {
                        line: line_at(i),
                        target: t.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    links
}

/// GitHub's anchor for a heading's text: inline Markdown reduced to its text (links to
/// their text, code to its content), lowercased, every character that is not a letter, a
/// digit, `-` or `_` dropped, each space turned into `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let c: Vec<char> = heading.chars().collect();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            // `](url)` of a link or image: keep the text, drop the destination.
            ']' if c.get(i + 1) == Some(&'(') => {
                let mut depth = 0usize;
                let mut k = i + 1;
                while k < c.len() {
                    match c[k] {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                i = k + 1;
            }
            // An HTML tag.
            '<' if c[i + 1..].contains(&'>') => {
                i += c[i..].iter().position(|&x| x == '>').unwrap() + 1;
            }
            x => {
                text.push(x);
                i += 1;
            }
        }
    }
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|x| match x {
            ' ' => Some('-'),
            '-' | '_' => Some(x),
            x if x.is_alphanumeric() => Some(x),
            _ => None,
        })
        .collect()
}

/// The headings' texts, in order: ATX (`## Text ##`) and setext (`Text` over `===` or
/// `---`), outside fenced code.
fn headings(text: &str) -> Vec<String> {
    let text = blank_fenced_code(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if indent > 3 {
            continue;
        }
        let t = line.trim_start_matches(' ');
        let hashes = t.chars().take_while(|&x| x == '#').count();
        if (1..=6).contains(&hashes) && (t.len() == hashes || t[hashes..].starts_with([' ', '\t']))
        {
            let body = t[hashes..].trim();
            // A closing run of `#`, after a space, is not part of the text.
            let body = match body.trim_end_matches('#') {
                b if b.is_empty() || b.ends_with([' ', '\t']) => b.trim_end(),
                _ => body,
            };
            out.push(body.to_string());
            continue;
        }
        let underline = !t.trim_end().is_empty()
            && (t.trim_end().chars().all(|x| x == '=') || t.trim_end().chars().all(|x| x == '-'));
        if underline && n > 0 {
            let prev = lines[n - 1];
            let p = prev.trim();
            let is_paragraph = !p.is_empty()
                && !p.starts_with(['#', '|', '-', '*', '+', '>'])
                && !p.chars().next().is_some_and(|x| x.is_ascii_digit());
            if is_paragraph && prev.len() - prev.trim_start().len() <= 3 {
                out.push(p.to_string());
            }
        }
    }
    out
}

/// The anchors GitHub gives a file's headings: a repeated slug gets `-1`, `-2`, ….
fn anchors(headings: &[String]) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for h in headings {
        let original = slug(h);
        let mut s = original.clone();
        while seen.contains_key(&s) {
            let n = seen.get_mut(&original).map(|n| {
                *n += 1;
                *n
            });
            s = format!("{original}-{}", n.unwrap_or(1));
        }
        seen.insert(s.clone(), 0);
        out.push(s);
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |x: u8| (x as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_absolute_url(target: &str) -> bool {
    let t = target.to_ascii_lowercase();
    ["http:", "https:", "mailto:"]
        .iter()
        .any(|s| t.starts_with(s))
        || t.starts_with("//")
}

/// What is wrong with one link of `file` (relative to `root`), if anything.
fn check_link(root: &Path, file: &Path, target: &str) -> Option<String> {
    if target.is_empty() {
        return Some("empty target".into());
    }
    if is_absolute_url(target) {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let path = path.split('?').next().unwrap_or("");
    let path = percent_decode(path);
    let resolved = if path.is_empty() {
        root.join(file)
    } else if let Some(abs) = path.strip_prefix('/') {
        root.join(abs)
    } else {
        root.join(file).parent().unwrap().join(&path)
    };
    if !resolved.exists() {
        let shown = resolved.strip_prefix(root).unwrap_or(&resolved);
        return Some(format!("no such file or directory: {}", shown.display()));
    }
    let anchor = percent_decode(anchor?);
    if anchor.is_empty() || !resolved.is_file() || resolved.extension().is_none_or(|x| x != "md") {
        return None;
    }
    let text = std::fs::read_to_string(&resolved).ok()?;
    let known = anchors(&headings(&text));
    if known.contains(&anchor) {
        return None;
    }
    let shown = resolved.strip_prefix(root).unwrap_or(&resolved);
    Some(format!(
        "no heading with anchor #{anchor} in {} (its anchors: {})",
        shown.display(),
        known.join(", ")
    ))
}

/// `file:line: [target]: what is wrong`, for every broken link of the given files.
fn broken_links(root: &Path, files: &[PathBuf]) -> (Vec<String>, usize) {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(root.join(file))
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for link in extract_links(&text) {
            if !is_absolute_url(&link.target) {
                checked += 1;
            }
            if let Some(why) = check_link(root, file, &link.target) {
                broken.push(format!(
                    "{}:{}: broken link ({}): {why}",
                    file.display(),
                    link.line,
                    link.target
                ));
            }
        }
    }
    (broken, checked)
}

#[test]
fn every_relative_link_in_readme_and_docs_resolves() {
    let root = repo_root();
    let files = markdown_files(&root);
    assert!(
        files.len() > 1,
        "no Markdown files under docs/: {:?}",
        files
    );
    let (broken, checked) = broken_links(&root, &files);
    assert!(
        broken.is_empty(),
        "{} broken link(s) in README.md and docs/:\n{}",
        broken.len(),
        broken.join("\n")
    );
    // A checker that finds nothing checks nothing: the front page links into docs/.
    assert!(checked >= 20, "only {checked} relative links found");
}

#[test]
fn every_guide_is_linked_from_the_readme_or_the_docs_index() {
    let root = repo_root();
    let mut linked = BTreeSet::new();
    for index in ["README.md", "docs/README.md"] {
        let text = std::fs::read_to_string(root.join(index)).unwrap();
        let dir = root.join(index).parent().unwrap().to_path_buf();
        for link in extract_links(&text) {
            let path = link.target.split('#').next().unwrap_or("");
            if !path.is_empty() && !is_absolute_url(path) {
                if let Ok(p) = dir.join(percent_decode(path)).canonicalize() {
                    linked.insert(p);
                }
            }
        }
    }
    let orphans: Vec<String> = markdown_files(&root)
        .into_iter()
        .filter(|f| f.starts_with("docs"))
        .filter(|f| !linked.contains(&root.join(f).canonicalize().unwrap()))
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        orphans.is_empty(),
        "guides linked from neither README.md nor docs/README.md: {orphans:?}"
    );
}

#[test]
fn slug_follows_githubs_rules() {
    let cases = [
        (
            "Quick start (a fresh Debian 12 machine with Rust)",
            "quick-start-a-fresh-debian-12-machine-with-rust",
        ),
        (
            "hab — what does high availability cost a task queue, and what does it buy?",
            "hab--what-does-high-availability-cost-a-task-queue-and-what-does-it-buy",
        ),
        (
            "RabbitMQ nodes in namespaces (`pause_minority`)",
            "rabbitmq-nodes-in-namespaces-pause_minority",
        ),
        (
            "hab's worker or a real Celery worker",
            "habs-worker-or-a-real-celery-worker",
        ),
        (
            "Broker outage: producer policies",
            "broker-outage-producer-policies",
        ),
        ("Größe & Ärger 2", "größe--ärger-2"),
        ("See [the guide](docs/x.md) now", "see-the-guide-now"),
        ("**Bold** and <em>tags</em>", "bold-and-tags"),
        ("  trailing  ", "trailing"),
    ];
    for (heading, want) in cases {
        assert_eq!(slug(heading), want, "slug of {heading:?}");
    }
}

#[test]
fn repeated_headings_get_numbered_anchors() {
    let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        anchors(&h(&["Intro", "Usage", "Intro", "Intro"])),
        ["intro", "usage", "intro-1", "intro-2"]
    );
    // A heading whose own slug is a numbered one already taken gets numbered itself.
    assert_eq!(anchors(&h(&["A", "A", "A-1"])), ["a", "a-1", "a-1-1"]);
}

#[test]
fn headings_are_atx_and_setext_outside_code() {
    let text = "# Title #\n\nText\n\n```toml\n# not a heading\n```\n\n## Two  \n\nSetext\n===\n\n- item\n---\n#nospace\n    # indented code\n";
    assert_eq!(headings(text), ["Title", "Two", "Setext"]);
}

#[test]
fn extractor_finds_links_and_images_outside_code() {
    let text = "\
see [a](b.md) and ![i](img/x.png \"a title\")
`[code](no.md)` and ``a ` [x](no2.md)`` but [yes](c.md#part)

```sh
echo [fenced](no3.md)
```
  ~~~
  [tilde](no4.md)
  ~~~
[two
lines](d.md) [paren](f(1).md) [angle](<with space.md>) \\[escaped](no5.md)
[![badge](i.png)](e/)
[ref]: docs/r.md
<!-- [comment](no6.md) -->
[not a link] (g.md) [x][label] [#](#here)
";
    let got: Vec<(usize, String)> = extract_links(text)
        .into_iter()
        .map(|l| (l.line, l.target))
        .collect();
    let want: Vec<(usize, String)> = [
        (1, "b.md"),
        (1, "img/x.png"),
        (2, "c.md#part"),
        (11, "d.md"),
        (11, "f(1).md"),
        (11, "with space.md"),
        (12, "e/"),
        (12, "i.png"),
        (13, "docs/r.md"),
        (15, "#here"),
    ]
    .into_iter()
    .map(|(n, t)| (n, t.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn check_link_names_what_is_wrong() {
    let root = repo_root();
    let readme = Path::new("README.md");
    assert_eq!(check_link(&root, readme, "https://example.com/x"), None);
    assert_eq!(
        check_link(&root, readme, "mailto:someone@example.com"),
        None
    );
    assert_eq!(check_link(&root, readme, "docs/"), None);
    assert_eq!(check_link(&root, readme, "docs/README.md"), None);
    let missing = check_link(&root, readme, "docs/no-such-guide.md").unwrap();
    assert!(missing.contains("docs/no-such-guide.md"), "{missing}");
    let anchor = check_link(&root, readme, "#no-such-heading").unwrap();
    assert!(anchor.contains("#no-such-heading"), "{anchor}");
    assert!(
        check_link(
            &root,
            Path::new("docs/shards.md"),
            "../README.md#installing-hab"
        )
        .is_none()
    );
    assert!(check_link(&root, readme, "").is_some());
}

#[test]
fn a_broken_link_is_reported_with_file_and_line() {
    let dir = std::env::temp_dir().join(format!("hab-docs-links-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    std::fs::write(
        dir.join("README.md"),
        "# Top\n\n[ok](docs/g.md#a-heading)\n[gone](docs/missing.md)\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("docs/g.md"),
        "# A heading\n\n[back](../README.md#nope)\n",
    )
    .unwrap();
    let files = markdown_files(&dir);
    let (broken, checked) = broken_links(&dir, &files);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(checked, 3);
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(
        broken[0].starts_with("README.md:4: broken link (docs/missing.md)"),
        "{broken:?}"
    );
    assert!(
        broken[1].starts_with("docs/g.md:3: broken link (../README.md#nope)"),
        "{broken:?}"
    );
}
