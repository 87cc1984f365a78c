//! `hab list` and `hab init`: the topologies and workloads built into hab, described, and
//! written out as editable copies.
//!
//! `hab list` shows each built-in's one-line description (its `description`) and what it
//! sets up or drives, read from the parsed file; a file of the same name under
//! `topologies/` or `workloads/` in the current directory is marked, since it is what a
//! bare name finds first ([`crate::config::builtin::resolve`]). `hab init DIR` writes every
//! built-in to `DIR/topologies/` and `DIR/workloads/`, refusing to overwrite a file that
//! exists unless forced.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::builtin::{Builtin, FileKind};
use crate::config::{NetworkKind, QueueKind, Topology, WorkerKind, WorkloadPlan};

/// The text of `hab list`; `cwd` is where a local `topologies/NAME` would shadow a
/// built-in.
pub fn list(cwd: &Path) -> String {
    let mut out = String::new();
    for kind in [FileKind::Topology, FileKind::Workload] {
        let _ = writeln!(
            out,
            "{} built into hab (--{} NAME; `hab init` writes editable copies):",
            kind.dir(),
            kind.as_str()
        );
        let width = kind
            .builtins()
            .iter()
            .map(|b| b.name().len())
            .max()
            .unwrap_or(0);
        for b in kind.builtins() {
            let (description, shape) = describe(kind, b);
            let _ = writeln!(out, "  {:width$}  {description}", b.name());
            let _ = writeln!(out, "  {:width$}  {shape}", "");
            let local = Path::new(kind.dir()).join(b.file);
            if cwd.join(&local).exists() {
                let _ = writeln!(
                    out,
                    "  {:width$}  (here {} is used instead; builtin:{} names this one)",
                    "",
                    local.display(),
                    b.file
                );
            }
        }
        out.push('\n');
    }
    out.push_str(
        "A value that is not a built-in name is a path: --topology my/ha.toml. \
         Under topologies/ or workloads/ here, a bare name finds your file first.\n",
    );
    out
}

/// A built-in's description and what it sets up or drives.
fn describe(kind: FileKind, b: &Builtin) -> (String, String) {
    let path = PathBuf::from(format!("builtin:{}", b.file));
    match kind {
        FileKind::Topology => match crate::config::parse_topology(b.text, &path) {
            Ok(t) => (t.description.clone(), topology_shape(&t)),
            Err(e) => (String::new(), format!("does not load: {e}")),
        },
        FileKind::Workload => match crate::config::parse_workload_plan(b.text, &path) {
            Ok(p) => (p.description.clone(), plan_shape(&p)),
            Err(e) => (String::new(), format!("does not load: {e}")),
        },
    }
}

/// What a topology deploys, in one line: `broker 3 nodes (quorum) · Redis master + 1
/// replica, 3 Sentinels · HAProxy · hab workers ×2`.
fn topology_shape(t: &Topology) -> String {
    let mut parts = Vec::new();
    if let Some(e) = &t.external {
        parts.push(format!(
            "external stack: {} broker node(s), {} Redis node(s), {} Sentinel(s), {} fault command(s)",
            e.broker_nodes.len(),
            e.backend_nodes.len(),
            e.sentinels.len(),
            e.faults.len()
        ));
    } else {
        let queue = match t.broker.queue {
            QueueKind::Classic => "classic queue",
            QueueKind::Quorum => "quorum queue",
            QueueKind::Mirrored => "mirrored classic queue",
        };
        let nodes = t.broker.nodes;
        parts.push(format!(
            "RabbitMQ {nodes} node{}, {queue}",
            if nodes == 1 { "" } else { "s" }
        ));
        let b = &t.backend;
        parts.push(match (b.replicas, b.sentinels) {
            (0, 0) => "Redis alone".to_string(),
            (r, 0) => format!("Redis master + {r} replica(s)"),
            (r, s) => format!("Redis master + {r} replica(s), {s} Sentinels"),
        });
        if t.proxy.is_some() {
            parts.push("HAProxy".into());
        }
    }
    parts.push(format!(
        "{} worker(s) ×{}",
        match t.workers.kind {
            WorkerKind::Hab => "hab",
            WorkerKind::Celery => "Celery (needs python3-venv: set up on first use)",
        },
        t.workers.count
    ));
    if t.network == NetworkKind::Namespaces {
        parts.push("network namespaces: needs root and `ip`".into());
    }
    parts.join(" · ")
}

/// What a plan drives, in one line: its workloads' tasks and counts, and its faults.
fn plan_shape(p: &WorkloadPlan) -> String {
    let workloads: Vec<String> = p
        .workloads
        .iter()
        .map(|w| {
            let task = w.task.task_name().trim_start_matches("hab.");
            let mut s = if w.name == task {
                format!("{task} ×{}", w.count)
            } else {
                format!("{} ({task} ×{})", w.name, w.count)
            };
            if let Some(r) = w.rate_per_s {
                let _ = write!(s, " at {r}/s");
            }
            s
        })
        .collect();
    let faults: Vec<String> = p
        .workloads
        .iter()
        .flat_map(|w| &w.faults)
        .map(|f| format!("{} {}", f.kind.as_str(), f.target))
        .collect();
    let mut s = format!(
        "{} workload(s): {}",
        p.workloads.len(),
        workloads.join(", ")
    );
    if faults.is_empty() {
        s.push_str("; no faults");
    } else {
        let _ = write!(s, "; faults: {}", faults.join(", "));
    }
    s
}

/// What `hab init` did.
#[derive(Debug, Default)]
pub struct InitOutcome {
    /// The files written.
    pub written: Vec<PathBuf>,
    /// Files that exist and were left alone (nothing is written then, unless forced).
    pub existing: Vec<PathBuf>,
}

impl InitOutcome {
    /// Why nothing was written (files exist and `--force` was not given), naming the
    /// first file.
    pub fn refusal(&self) -> Option<String> {
        let [first, rest @ ..] = &self.existing[..] else {
            return None;
        };
        if !self.written.is_empty() {
            return None;
        }
        let more = match rest.len() {
            0 => String::new(),
            n => format!(" (and {n} more of hab's files)"),
        };
        Some(format!(
            "{}{more} already exists; nothing was written: pass --force to overwrite, or give another DIR",
            first.display()
        ))
    }

    /// What was written and what to do next.
    pub fn summary(&self, dir: &Path) -> String {
        let topologies = dir.join("topologies");
        format!(
            "wrote {} files to {} and {}
next: edit a copy, then `hab check --topology {}`; your own cluster: {}
",
            self.written.len(),
            topologies.display(),
            dir.join("workloads").display(),
            topologies.join("ha.toml").display(),
            topologies.join("external-example.toml").display()
        )
    }
}

/// Write every built-in into `dir/topologies/` and `dir/workloads/`. If one of those
/// files exists and `force` is false, nothing is written and the existing files are
/// returned in `existing`.
pub fn init(dir: &Path, force: bool) -> Result<InitOutcome> {
    let files: Vec<(PathBuf, &str)> = [FileKind::Topology, FileKind::Workload]
        .into_iter()
        .flat_map(|k| {
            k.builtins()
                .iter()
                .map(move |b| (dir.join(k.dir()).join(b.file), b.text))
        })
        .collect();
    let existing: Vec<PathBuf> = files
        .iter()
        .filter(|(p, _)| p.symlink_metadata().is_ok())
        .map(|(p, _)| p.clone())
        .collect();
    if !existing.is_empty() && !force {
        return Ok(InitOutcome {
            written: Vec::new(),
            existing,
        });
    }
    let mut written = Vec::new();
    for (path, text) in files {
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(InitOutcome { written, existing })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_has;

    #[test]
    fn list_describes_every_built_in_and_what_it_sets_up() {
        let tmp = tempfile::tempdir().unwrap();
        let text = list(tmp.path());
        for b in crate::config::builtin::TOPOLOGIES
            .iter()
            .chain(crate::config::builtin::WORKLOADS)
        {
            assert!(
                text.contains(&format!("  {} ", b.name())),
                "{}: {text}",
                b.file
            );
        }
        assert!(!text.contains("does not load"), "{text}");
        assert_has(
            &text,
            &[
                "topologies built into hab (--topology NAME;",
                "RabbitMQ 3 nodes, quorum queue · Redis master + 1 replica(s), 3 Sentinels · HAProxy · hab worker(s)",
                "RabbitMQ 1 node, classic queue · Redis alone · hab worker(s)",
                "network namespaces: needs root and `ip`",
                "Celery (needs python3-venv: set up on first use)",
                "external stack: 3 broker node(s), 2 Redis node(s), 3 Sentinel(s), 2 fault command(s)",
                "workloads built into hab (--workload NAME;",
                "faults: kill broker.primary, kill backend.master",
            ],
        );
        assert!(!text.contains("is used instead"), "{text}");
        std::fs::create_dir(tmp.path().join("workloads")).unwrap();
        std::fs::write(tmp.path().join("workloads/seed.toml"), "").unwrap();
        assert_has(
            &list(tmp.path()),
            &["(here workloads/seed.toml is used instead; builtin:seed.toml names this one)"],
        );
    }

    #[test]
    fn init_writes_every_built_in_and_overwrites_only_when_forced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mine");
        let done = init(&dir, false).unwrap();
        let all =
            crate::config::builtin::TOPOLOGIES.len() + crate::config::builtin::WORKLOADS.len();
        assert_eq!(done.written.len(), all);
        let ha = dir.join("topologies/ha.toml");
        assert_eq!(
            std::fs::read_to_string(&ha).unwrap(),
            FileKind::Topology.builtin("ha").unwrap().text
        );
        assert!(dir.join("workloads/seed.toml").is_file());
        assert!(dir.join("topologies/external-example.toml").is_file());
        // An edited copy is never overwritten silently: nothing is written, it is named.
        std::fs::write(&ha, "edited").unwrap();
        std::fs::remove_file(dir.join("workloads/seed.toml")).unwrap();
        let again = init(&dir, false).unwrap();
        assert!(again.written.is_empty());
        let why = again.refusal().unwrap();
        assert!(
            why.contains("already exists; nothing was written: pass --force"),
            "{why}"
        );
        assert!(again.existing.contains(&ha));
        assert!(!dir.join("workloads/seed.toml").exists());
        assert_eq!(std::fs::read_to_string(&ha).unwrap(), "edited");
        let forced = init(&dir, true).unwrap();
        assert_eq!(forced.written.len(), all);
        assert_ne!(std::fs::read_to_string(&ha).unwrap(), "edited");
    }
}
