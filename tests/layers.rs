//! The layers of `src/` hold (DESIGN.md §2): every `crate::` path in a file may only reach
//! its own layer or one below, never a forbidden pair, and no two top-level modules import
//! each other, however indirectly. Also: no file in `src/` over 800 lines, and `src/lib.rs`
//! names every module in its layout.
//!
//! A top-level module is `src/X.rs` or `src/X/`. The checker reads the source as text
//! (comments and string literals removed), so it sees `use` lines and inline paths alike.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Bottom to top. A module imports only from its own layer or below.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "vocabulary",
        &[
            "config",
            "protocol",
            "fault",
            "event",
            "clock",
            "credentials",
            "progress",
            // Assertions shared by the unit tests (`#[cfg(test)]`).
            "testing",
        ],
    ),
    (
        "engines",
        &[
            "stack",
            "broker",
            "backend",
            "client_failover",
            "producer",
            "tasks",
            "worker",
            "load",
            "ledger",
            "observe",
            "inject",
        ],
    ),
    ("metrics", &["metrics"]),
    ("record", &["record", "invariants"]),
    ("presentation", &["export", "compare", "chart", "report"]),
    (
        "commands",
        // Every module under `cmd/` counts as `cmd`.
        &["cmd"],
    ),
    ("cli", &["cli"]),
];

const CLIENTS: &[&str] = &["broker", "backend", "client_failover", "producer"];
const COMMANDS: &[&str] = &["cmd"];

/// Pairs that the layer order alone allows but the design forbids: `(from, to, why)`.
fn forbidden() -> Vec<(&'static str, &'static str, &'static str)> {
    let mut f = vec![
        (
            "worker",
            "ledger",
            "the worker reports through the protocol's side channel",
        ),
        (
            "worker",
            "load",
            "the worker does not know the load generator",
        ),
        ("tasks", "ledger", "tasks are pure work"),
        ("tasks", "load", "tasks are pure work"),
        (
            "stack",
            "inject",
            "the stack is driven by the injector, not the other way",
        ),
        ("stack", "observe", "observers watch the stack from outside"),
    ];
    for c in CLIENTS {
        f.push((
            c,
            "stack",
            "the clients know endpoints, not how servers run",
        ));
        f.push((c, "ledger", "the clients do not keep the run's books"));
    }
    for up in [
        "record",
        "invariants",
        "export",
        "compare",
        "chart",
        "report",
    ] {
        for c in CLIENTS {
            f.push((
                up,
                c,
                "the record and its presentation never touch the clients",
            ));
        }
        f.push((
            up,
            "stack",
            "the record and its presentation never touch the stack",
        ));
        f.push((
            up,
            "worker",
            "the record and its presentation never touch the worker",
        ));
    }
    f.push((
        "metrics",
        "stack",
        "metrics are computed from records, not servers",
    ));
    for c in CLIENTS {
        f.push((c, "metrics", "the clients do not compute metrics"));
        f.push((
            "metrics",
            c,
            "metrics are computed from records, not clients",
        ));
    }
    f
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

/// The source without comments, string and char literals (their contents become spaces).
fn strip(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == b'r' && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) && !ident_byte(b, i)
        {
            // raw string r"…" or r#"…"#
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"'
                    && b[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == b'#')
                        .count()
                        == hashes
                {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == b'\'' {
            // a char literal ('x', '\n', '\u{..}') or a lifetime ('a)
            let rest = &src[i + 1..];
            let lit_len = if rest.starts_with('\\') {
                rest.find('\'').map(|e| e + 2)
            } else {
                let mut ch = rest.chars();
                match (ch.next(), ch.next()) {
                    (Some(x), Some('\'')) => Some(x.len_utf8() + 2),
                    _ => None,
                }
            };
            match lit_len {
                Some(n) => {
                    out.push_str("' '");
                    i += n;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let ch = src[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_byte(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first segments named after `crate::` in a path or a `use` tree: `crate::a::b` → a,
/// `crate::{a::x, b}` → a, b.
fn first_segments(after: &str) -> Vec<String> {
    let after = after.trim_start();
    if let Some(inner) = after.strip_prefix('{') {
        let mut depth = 1;
        let mut end = inner.len();
        for (k, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let body = &inner[..end];
        let mut names = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for (k, ch) in body.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    names.push(ident_at(body[start..k].trim()).to_string());
                    start = k + 1;
                }
                _ => {}
            }
        }
        names.push(ident_at(body[start..].trim()).to_string());
        names.retain(|n| !n.is_empty() && n != "self");
        names
    } else {
        let n = ident_at(after);
        if n.is_empty() {
            vec![]
        } else {
            vec![n.to_string()]
        }
    }
}

/// The top-level modules a file's text reaches through `crate::` (and `super::` chains that
/// climb to the crate root), with the line of each.
fn imports(module_path: &[String], src: &str) -> Vec<(String, usize)> {
    let text = strip(src);
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let line_of = |pos: usize| text[..pos].matches('\n').count() + 1;
    let mut at = 0;
    while let Some(k) = text[at..].find("crate::") {
        let pos = at + k;
        at = pos + 7;
        if ident_byte(bytes, pos) {
            continue; // e.g. `hab_crate::`
        }
        for name in first_segments(&text[pos + 7..]) {
            found.push((name, line_of(pos)));
        }
    }
    // `super::super::x` from a file deep enough to climb to the crate root.
    let mut at = 0;
    while let Some(k) = text[at..].find("super::") {
        let pos = at + k;
        if ident_byte(bytes, pos) {
            at = pos + 7;
            continue;
        }
        let mut n = 0;
        let mut p = pos;
        while text[p..].starts_with("super::") {
            n += 1;
            p += 7;
        }
        at = p;
        // Inline modules (`mod tests { … }`) add a level the file path does not show, so only
        // a chain naming a top-level module counts.
        if n >= module_path.len() {
            for name in first_segments(&text[p..]) {
                if layer_of(&name).is_some() {
                    found.push((name, line_of(pos)));
                }
            }
        }
    }
    found
}

/// A file's module path: `src/stack/redis.rs` → [stack, redis]; `src/stack/mod.rs` → [stack].
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs").to_string();
    if stem != "mod" {
        parts.push(stem);
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// One import that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Violation {
    from: String,
    to: String,
    file: String,
    line: usize,
    why: String,
}

/// Every top-level module edge `from -> to` with where it occurs.
type Edges = BTreeMap<(String, String), Vec<(String, usize)>>;

fn edges_of(files: &[(String, Vec<String>, String)]) -> Edges {
    let mut edges = Edges::new();
    for (name, path, src) in files {
        let Some(from) = path.first() else { continue };
        for (to, line) in imports(path, src) {
            if &to != from {
                edges
                    .entry((from.clone(), to))
                    .or_default()
                    .push((name.clone(), line));
            }
        }
    }
    edges
}

fn violations(edges: &Edges) -> Vec<Violation> {
    let forbidden = forbidden();
    let mut out = Vec::new();
    for ((from, to), places) in edges {
        let why = if to == "cli" {
            Some("nothing imports the cli".to_string())
        } else if COMMANDS.contains(&to.as_str())
            && from != "cli"
            && !COMMANDS.contains(&from.as_str())
        {
            Some("only the cli imports commands".to_string())
        } else if let Some((_, _, why)) = forbidden.iter().find(|(f, t, _)| f == from && t == to) {
            Some(why.to_string())
        } else {
            match (layer_of(from), layer_of(to)) {
                (Some(a), Some(b)) if b > a => Some(format!(
                    "{} ({}) imports {} ({}), a layer above",
                    from, LAYERS[a].0, to, LAYERS[b].0
                )),
                (None, _) => Some(format!("module {from} is in no layer: add it to LAYERS")),
                (_, None) if !is_external_crate(to) => {
                    Some(format!("module {to} is in no layer: add it to LAYERS"))
                }
                _ => None,
            }
        };
        if let Some(why) = why {
            for (file, line) in places {
                out.push(Violation {
                    from: from.clone(),
                    to: to.clone(),
                    file: file.clone(),
                    line: *line,
                    why: why.clone(),
                });
            }
        }
    }
    out
}

/// Names after `crate::` that are items of the crate root, not modules.
fn is_external_crate(name: &str) -> bool {
    matches!(name, "self")
}

/// Strongly connected groups of two or more top-level modules (import circles).
fn circles(edges: &Edges) -> Vec<Vec<String>> {
    let mut adj: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        adj.entry(from).or_default().insert(to);
        adj.entry(to).or_default();
    }
    // Reachability closure is fine at this size (a few dozen modules).
    let nodes: Vec<&str> = adj.keys().copied().collect();
    let reach = |start: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            for &m in &adj[n] {
                if seen.insert(m) {
                    stack.push(m);
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<&str>> = nodes.iter().map(|&n| (n, reach(n))).collect();
    let mut done = BTreeSet::new();
    let mut groups = Vec::new();
    for &n in &nodes {
        if done.contains(n) {
            continue;
        }
        let group: Vec<String> = nodes
            .iter()
            .filter(|&&m| m == n || (reaches[n].contains(m) && reaches[m].contains(n)))
            .map(|m| m.to_string())
            .collect();
        for m in &group {
            done.insert(m.clone());
        }
        if group.len() > 1 {
            groups.push(group);
        }
        done.insert(n.to_string());
    }
    groups
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn read_src() -> Vec<(String, Vec<String>, String)> {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|f| {
            !matches!(
                f.file_name().and_then(|n| n.to_str()),
                Some("lib.rs" | "main.rs")
            ) || f.parent() != Some(&src)
        })
        .map(|f| {
            let name = f.strip_prefix(&src).unwrap().display().to_string();
            let path = module_path(&src, &f);
            let text = std::fs::read_to_string(&f).unwrap();
            (name, path, text)
        })
        .collect()
}

#[test]
fn every_import_stays_in_its_layer() {
    let edges = edges_of(&read_src());
    let found = violations(&edges);
    let report: Vec<String> = found
        .iter()
        .map(|v| {
            format!(
                "src/{}:{}: {} -> {}: {}",
                v.file, v.line, v.from, v.to, v.why
            )
        })
        .collect();
    assert!(
        report.is_empty(),
        "layer rules broken (DESIGN.md §2):\n{}",
        report.join("\n")
    );
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let edges = edges_of(&read_src());
    let groups = circles(&edges);
    let explain: Vec<String> = groups
        .iter()
        .map(|g| {
            let inner: Vec<String> = edges
                .iter()
                .filter(|((a, b), _)| g.contains(a) && g.contains(b))
                .map(|((a, b), places)| {
                    format!("  {a} -> {b} (src/{}:{})", places[0].0, places[0].1)
                })
                .collect();
            format!("circle {g:?}:\n{}", inner.join("\n"))
        })
        .collect();
    assert!(groups.is_empty(), "{}", explain.join("\n"));
}

#[test]
fn no_file_in_src_over_800_lines() {
    let long: Vec<String> = read_src()
        .iter()
        .map(|(name, _, text)| (name, text.lines().count()))
        .filter(|(_, n)| *n > 800)
        .map(|(name, n)| format!("src/{name}: {n} lines"))
        .collect();
    assert!(
        long.is_empty(),
        "split these along a real seam (tests may go to a sibling file):\n{}",
        long.join("\n")
    );
}

#[test]
fn lib_rs_names_every_module_and_every_module_has_a_layer() {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).unwrap();
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("mod "))
        })
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(!declared.is_empty());
    let mut missing = Vec::new();
    for m in &declared {
        // A link, or plain code for a module compiled only for tests (rustdoc cannot link it).
        if !lib.contains(&format!("`{m}`")) {
            missing.push(format!("{m}: not named in lib.rs's layout"));
        }
        if layer_of(m).is_none() {
            missing.push(format!("{m}: in no layer of tests/layers.rs"));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

// The checker itself: each rule fails when a breaking import is added.

fn check(files: &[(&str, &str)]) -> (Vec<Violation>, Vec<Vec<String>>) {
    let src = Path::new("/x/src");
    let files: Vec<(String, Vec<String>, String)> = files
        .iter()
        .map(|(name, text)| {
            (
                name.to_string(),
                module_path(src, &src.join(name)),
                text.to_string(),
            )
        })
        .collect();
    let edges = edges_of(&files);
    (violations(&edges), circles(&edges))
}

#[test]
fn checker_finds_an_upward_import() {
    let (v, _) = check(&[("config/topology.rs", "use crate::stack::node::Role;\n")]);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        (v[0].from.as_str(), v[0].to.as_str(), v[0].line),
        ("config", "stack", 1)
    );
    assert!(v[0].why.contains("a layer above"), "{v:?}");
}

#[test]
fn checker_reads_use_trees_inline_paths_and_super_chains() {
    let (v, _) = check(&[(
        "metrics/failover/rows.rs",
        "//! crate::stack in a comment is not an import\n\
         use crate::{clock::now, export::{csv, json}};\n\
         fn f() { let s = \"crate::cli\"; crate::report::render(); }\n\
         use super::super::super::cmd::run;\n",
    )]);
    let pairs: BTreeSet<_> = v.iter().map(|v| (v.to.as_str(), v.line)).collect();
    assert_eq!(
        pairs,
        BTreeSet::from([("export", 2), ("report", 3), ("cmd", 4)]),
        "{v:?}"
    );
}

#[test]
fn checker_finds_forbidden_pairs_within_a_layer() {
    let (v, _) = check(&[
        ("worker/mod.rs", "use crate::ledger::SideChannel;"),
        ("backend.rs", "use crate::stack::Stack;"),
        ("chart/mod.rs", "use crate::producer::BreakerState;"),
        ("compare/mod.rs", "use crate::cmd::run::run;"),
        ("cmd/run/mod.rs", "use crate::cli::Args;"),
    ]);
    let pairs: BTreeSet<_> = v.iter().map(|v| (v.from.as_str(), v.to.as_str())).collect();
    assert_eq!(
        pairs,
        BTreeSet::from([
            ("worker", "ledger"),
            ("backend", "stack"),
            ("chart", "producer"),
            ("compare", "cmd"),
            ("cmd", "cli"),
        ])
    );
}

#[test]
fn checker_finds_a_circle_and_an_unknown_module() {
    let (v, circles) = check(&[
        ("stack/mod.rs", "use crate::broker::x;"),
        ("broker.rs", "use crate::stack::y;"),
        ("newthing.rs", "use crate::clock::z;"),
    ]);
    assert_eq!(
        circles,
        vec![vec!["broker".to_string(), "stack".to_string()]]
    );
    assert!(
        v.iter()
            .any(|v| v.from == "newthing" && v.why.contains("no layer")),
        "{v:?}"
    );
}
