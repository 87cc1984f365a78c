//! Topology and workload files: strict serde types, loading, and `validate()`.
//!
//! A *topology* file (`topologies/*.toml`) says what is deployed: broker nodes, result
//! backend, workers. A *workload* file (`workloads/*.toml`) says what is driven through it.
//! Both are parsed strictly (unknown fields are errors, durations are strings such as
//! `"10s"`), then checked by `validate()`, which reports every problem with its location.
//!
//! # Layout
//! - [`topology`]: [`Topology`] and its sections.
//! - [`workload`]: [`WorkloadPlan`], [`Workload`], [`TaskSpec`].
//! - [`error`]: [`ConfigError`] (load failures) and [`Diagnostic`] (one validation problem).

mod duration;
pub mod error;
pub mod topology;
pub mod workload;

use std::path::Path;

use serde::de::DeserializeOwned;

pub use error::{ConfigError, Diagnostic};
pub use topology::{
    AckMode, BackendConfig, BrokerConfig, QueueKind, Topology, WorkerKind, WorkersConfig,
};
pub use workload::{ArrivalKind, TaskSpec, Workload, WorkloadPlan};

/// Reads, parses and validates a topology file.
pub fn load_topology(path: &Path) -> Result<Topology, ConfigError> {
    let text = read(path, "topology")?;
    parse_topology(&text, path)
}

/// Reads, parses and validates a workload file.
pub fn load_workload_plan(path: &Path) -> Result<WorkloadPlan, ConfigError> {
    let text = read(path, "workload")?;
    parse_workload_plan(&text, path)
}

/// Parses and validates topology TOML already in memory; `path` is only used in errors.
pub fn parse_topology(text: &str, path: &Path) -> Result<Topology, ConfigError> {
    let topology: Topology = parse(text, path, "topology")?;
    finish(topology.validate(), path, "topology")?;
    Ok(topology)
}

/// Parses and validates workload TOML already in memory; `path` is only used in errors.
pub fn parse_workload_plan(text: &str, path: &Path) -> Result<WorkloadPlan, ConfigError> {
    let plan: WorkloadPlan = parse(text, path, "workload")?;
    finish(plan.validate(), path, "workload")?;
    Ok(plan)
}

fn read(path: &Path, kind: &'static str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        kind,
        path: path.to_path_buf(),
        source,
    })
}

fn parse<T: DeserializeOwned>(
    text: &str,
    path: &Path,
    kind: &'static str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        kind,
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

fn finish(
    diagnostics: Vec<Diagnostic>,
    path: &Path,
    kind: &'static str,
) -> Result<(), ConfigError> {
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            kind,
            path: path.to_path_buf(),
            diagnostics,
        })
    }
}

/// Pushes a diagnostic unless `name` is non-empty and only `[A-Za-z0-9_.-]`
/// (names become parts of directory and file names).
fn check_name(out: &mut Vec<Diagnostic>, location: &str, name: &str) {
    if name.is_empty() {
        out.push(Diagnostic::new(
            location,
            "must not be empty; use letters, digits, '_', '.' or '-'",
        ));
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        out.push(Diagnostic::new(
            location,
            format!(
                "{name:?} contains {bad:?}; use only letters, digits, '_', '.' or '-' (it becomes part of a directory name)"
            ),
        ));
    }
}
