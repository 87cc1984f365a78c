//! The Kubernetes manifests of deploy/kubernetes/ read as text, so tests run the very
//! commands the Jobs run (their `sh -c` script, with their environment) and check the
//! topology the ConfigMap holds. The manifests are written in one plain style (literal
//! blocks, `- name:` / `value:` pairs) that these readers rely on; kubernetes-validate
//! checks them as Kubernetes reads them (tests/deploy_kubernetes.rs).

use std::path::{Path, PathBuf};

/// deploy/kubernetes/ in the checkout.
pub fn dir() -> PathBuf {
    super::root().join("deploy/kubernetes")
}

/// A manifest's text.
pub fn read(name: &str) -> String {
    let p = dir().join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The YAML literal block (`|`) introduced by the line whose trimmed text is `header`
/// (e.g. `- |` or `topology.toml: |`): the following lines indented deeper, dedented.
pub fn literal_block(text: &str, header: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let at = lines
        .iter()
        .position(|l| l.trim() == header)
        .unwrap_or_else(|| panic!("no line {header:?} in the manifest"));
    let outer = indent(lines[at]);
    let body: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > outer)
        .copied()
        .collect();
    let inner = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent(l))
        .min()
        .unwrap_or(0);
    let mut out: String = body
        .iter()
        .map(|l| if l.len() >= inner { &l[inner..] } else { "" })
        .collect::<Vec<_>>()
        .join("\n");
    out = out.trim_end().to_string();
    out.push('\n');
    out
}

/// The container's environment (`- name: X` then `value: "Y"`), in order.
pub fn env(text: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter_map(|w| {
            let name = w[0].strip_prefix("- name: ")?;
            let value = w[1].strip_prefix("value: ")?;
            Some((name.to_string(), value.trim_matches('"').to_string()))
        })
        .collect()
}

/// The value of `key: N` (first occurrence, e.g. `completions`).
pub fn number(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix(&format!("{key}: "))?
            .trim()
            .parse()
            .ok()
    })
}

/// The Job `file`'s `sh -c` script as a command: the manifest's environment with
/// `overrides` on top, `hab` on PATH being the binary under test, run from `cwd`.
pub fn job_command(file: &str, overrides: &[(&str, &str)], cwd: &Path) -> std::process::Command {
    let text = read(file);
    let script = literal_block(&text, "- |");
    let mut c = std::process::Command::new("/bin/sh");
    c.arg("-c")
        .arg(script)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null());
    for (k, v) in env(&text) {
        c.env(k, v);
    }
    for (k, v) in overrides {
        c.env(k, v);
    }
    let bin = super::hab_bin();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![bin.parent().unwrap().to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    c.env("PATH", std::env::join_paths(dirs).unwrap());
    c
}
