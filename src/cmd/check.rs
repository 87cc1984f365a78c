//! `hab check`: topology and workload files found ([`crate::config::builtin::resolve`])
//! and validated, nothing started; what was read is named, and a topology this machine
//! cannot run (network namespaces without root) is noted.

use std::fmt::Write as _;
use std::path::Path;

use crate::config::{self, ConfigError, FileKind, NetworkKind};
use crate::progress::Reporter;

/// Check the files given; returns the text for stdout (one `… ok, from …` line each),
/// notes go to `reporter`.
pub fn check(
    topology: Option<&Path>,
    workload: Option<&Path>,
    reporter: &dyn Reporter,
) -> Result<String, ConfigError> {
    let mut out = String::new();
    if let Some(t) = topology {
        let source = config::builtin::resolve(FileKind::Topology, t)?.spec();
        let t = config::load_topology(&source)?;
        let _ = writeln!(out, "topology {}: ok, from {}", t.name, source.display());
        if t.network == NetworkKind::Namespaces {
            match crate::stack::netns::unavailable_reason() {
                None => out.push_str("network namespaces: available\n"),
                Some(why) => reporter.line(&format!(
                    "hab: note: network = \"namespaces\" cannot run here ({why}); \
                     hab run refuses this topology"
                )),
            }
        }
    }
    if let Some(w) = workload {
        let source = config::builtin::resolve(FileKind::Workload, w)?.spec();
        let w = config::load_workload_plan(&source)?;
        let _ = writeln!(
            out,
            "workload plan {}: ok ({} workloads), from {}",
            w.name,
            w.workloads.len(),
            source.display()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_names_what_it_read() {
        let r = crate::progress::Captured::default();
        let text = check(Some("ha".as_ref()), Some("builtin:smoke".as_ref()), &r).unwrap();
        assert!(
            text.contains("topology ha: ok, from ")
                && text.contains("workload plan smoke: ok (5 workloads), from builtin:smoke.toml"),
            "{text}"
        );
        let e = check(Some("no-such-topology".as_ref()), None, &r).unwrap_err();
        assert!(matches!(e, ConfigError::NotFound { .. }), "{e}");
    }
}
