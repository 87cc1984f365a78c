//! The topologies and workloads built into the binary, and how a `--topology`,
//! `--baseline` or `--workload` value finds its file, so that an installed hab works from
//! any directory.
//!
//! Every file of the repository's `topologies/` and `workloads/` is embedded
//! ([`TOPOLOGIES`], [`WORKLOADS`]; a unit test fails if one is missing or stale). A value
//! is resolved ([`resolve`]), in order:
//! 1. `builtin:NAME` names a built-in explicitly (what hab passes its own worker
//!    processes, and what run.json records as the source of a built-in);
//! 2. the path as given, if it exists;
//! 3. `topologies/NAME` (or `workloads/NAME`) under the current directory, with or
//!    without `.toml`;
//! 4. the built-in of that name, with or without `.toml` (`ha`, `ha.toml`,
//!    `topologies/ha.toml`).
//!
//! Otherwise [`ConfigError::NotFound`] lists the built-ins and the nearest name.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// One file shipped in the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    /// Its file name in the repository, e.g. `ha.toml`.
    pub file: &'static str,
    /// Its content.
    pub text: &'static str,
}

impl Builtin {
    /// The name without `.toml`, e.g. `ha`.
    pub fn name(&self) -> &'static str {
        self.file.strip_suffix(".toml").unwrap_or(self.file)
    }
}

macro_rules! embed {
    ($dir:literal: $($file:literal),* $(,)?) => {
        &[$(Builtin {
            file: $file,
            text: include_str!(concat!("../../", $dir, "/", $file)),
        }),*]
    };
}

/// Every file of `topologies/`, in name order.
pub const TOPOLOGIES: &[Builtin] = embed!("topologies":
    "external-example.toml",
    "ha-celery.toml",
    "ha-client-failover-celery.toml",
    "ha-client-failover.toml",
    "ha-keep-sessions.toml",
    "ha-mirrored.toml",
    "ha-netns-minreplicas.toml",
    "ha-netns.toml",
    "ha-uptime-guard.toml",
    "ha.toml",
    "idle-hb0-t1h.toml",
    "idle-hb0-t5s-early.toml",
    "idle-hb0-t5s.toml",
    "idle-hb2-t5s.toml",
    "outage-block.toml",
    "outage-breaker.toml",
    "outage-retry.toml",
    "standalone-celery.toml",
    "standalone.toml",
);

/// Every file of `workloads/`, in name order.
pub const WORKLOADS: &[Builtin] = embed!("workloads":
    "broker-outage.toml",
    "broker-partition.toml",
    "external-smoke.toml",
    "failover.toml",
    "idle-timeout.toml",
    "million.toml",
    "partition.toml",
    "seed.toml",
    "smoke.toml",
    "stale-master.toml",
    "sweep.toml",
    "throughput.toml",
);

/// The prefix that names a built-in explicitly: `builtin:ha.toml`.
pub const BUILTIN_PREFIX: &str = "builtin:";

/// Which kind of file a value names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A topology (`--topology`, `--baseline`).
    Topology,
    /// A workload plan (`--workload`).
    Workload,
}

impl FileKind {
    /// `"topology"` or `"workload"`, as in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Topology => "topology",
            FileKind::Workload => "workload",
        }
    }

    /// The directory such files live in: `topologies` or `workloads`.
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Topology => "topologies",
            FileKind::Workload => "workloads",
        }
    }

    /// The built-ins of this kind.
    pub fn builtins(self) -> &'static [Builtin] {
        match self {
            FileKind::Topology => TOPOLOGIES,
            FileKind::Workload => WORKLOADS,
        }
    }

    /// The built-in called `name` (`ha`, `ha.toml`), if any.
    pub fn builtin(self, name: &str) -> Option<&'static Builtin> {
        self.builtins()
            .iter()
            .find(|b| b.file == name || b.name() == name)
    }
}

/// Where a topology or workload came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file on disk (the path as given, or found under `topologies/`/`workloads/`).
    File(PathBuf),
    /// A file built into hab.
    Builtin(&'static Builtin),
}

impl Source {
    /// What names this source unambiguously to hab (its worker processes get it): the
    /// path, or `builtin:ha.toml`.
    pub fn spec(&self) -> PathBuf {
        PathBuf::from(self.label())
    }

    /// The same as text, for the terminal and run.json (`topology_source`).
    pub fn label(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Builtin(b) => format!("{BUILTIN_PREFIX}{}", b.file),
        }
    }

    /// The content.
    pub fn text(&self, kind: FileKind) -> Result<Cow<'static, str>, ConfigError> {
        match self {
            Source::Builtin(b) => Ok(Cow::Borrowed(b.text)),
            Source::File(path) => std::fs::read_to_string(path)
                .map(Cow::Owned)
                .map_err(|source| ConfigError::Read {
                    kind: kind.as_str(),
                    path: path.clone(),
                    source,
                }),
        }
    }
}

/// The file name run.json records for a source spec: the path, or a built-in's file name
/// (`ha.toml`; `*_source` says it was the built-in).
pub fn recorded_file(spec: &Path) -> String {
    let s = spec.display().to_string();
    match s.strip_prefix(BUILTIN_PREFIX) {
        Some(file) => file.to_string(),
        None => s,
    }
}

/// Find the file a `--topology`/`--workload` value names (see the module docs for the
/// order), relative to the current directory.
pub fn resolve(kind: FileKind, given: &Path) -> Result<Source, ConfigError> {
    resolve_in(kind, given, Path::new(""))
}

/// [`resolve`] with relative paths taken in `base` (the returned path stays relative).
fn resolve_in(kind: FileKind, given: &Path, base: &Path) -> Result<Source, ConfigError> {
    let exists = |p: &Path| base.join(p).symlink_metadata().is_ok();
    let text = given.to_string_lossy();
    if let Some(name) = text.strip_prefix(BUILTIN_PREFIX) {
        return kind
            .builtin(name)
            .map(Source::Builtin)
            .ok_or_else(|| not_found(kind, given, None));
    }
    if exists(given) {
        return Ok(Source::File(given.to_path_buf()));
    }
    let mut searched = None;
    if given.is_relative() && given.parent() != Some(Path::new(kind.dir())) {
        let under = Path::new(kind.dir()).join(given);
        let mut candidates = vec![under.clone()];
        if given.extension().is_none() {
            candidates.push(under.with_extension("toml"));
        }
        for c in candidates {
            if exists(&c) {
                return Ok(Source::File(c));
            }
            searched = Some(kind.dir());
        }
    }
    // `ha`, `ha.toml`, or `topologies/ha.toml` (a checkout's path, from elsewhere).
    let parent = given.parent().unwrap_or(Path::new(""));
    if (parent.as_os_str().is_empty() || parent == Path::new(kind.dir()))
        && let Some(b) = given
            .file_name()
            .and_then(|f| kind.builtin(&f.to_string_lossy()))
    {
        return Ok(Source::Builtin(b));
    }
    Err(not_found(kind, given, searched))
}

fn not_found(kind: FileKind, given: &Path, searched: Option<&'static str>) -> ConfigError {
    let name = given
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = name.strip_prefix(BUILTIN_PREFIX).unwrap_or(&name);
    ConfigError::NotFound {
        kind: kind.as_str(),
        path: given.to_path_buf(),
        searched,
        builtins: kind.builtins().iter().map(Builtin::name).collect(),
        nearest: nearest(kind, name),
    }
}

/// The built-in whose name is closest to `name`, if any is close.
fn nearest(kind: FileKind, name: &str) -> Option<&'static str> {
    let stem = name.strip_suffix(".toml").unwrap_or(name);
    kind.builtins()
        .iter()
        .map(|b| {
            (
                strsim::normalized_damerau_levenshtein(stem, b.name()),
                b.name(),
            )
        })
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests;
