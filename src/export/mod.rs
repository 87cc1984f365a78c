//! Exporters: one file per format behind one small trait that renders bytes. Every file is
//! rewritten (atomically: temporary file, then rename) after each workload, so an
//! interrupted or crashed run keeps everything measured so far.

pub mod csv;
pub mod json;
pub mod table;

use std::path::Path;

use anyhow::{Context, Result};

pub use json::{Machine, RunReport, RunStatus, WorkersReport};

use crate::ledger::Ledger;

/// What the exporters render from.
#[derive(Debug, Clone, Copy)]
pub struct RunData<'a> {
    /// The run's report (the content of run.json).
    pub report: &'a RunReport,
    /// Every task of the run.
    pub ledger: &'a Ledger,
    /// What the clients went through, in time order.
    pub events: &'a [crate::observe::ClientEvent],
}

/// One output format.
pub trait Exporter {
    /// File name inside the run directory.
    fn file_name(&self) -> &'static str;
    /// The file's content.
    fn render(&self, data: RunData<'_>) -> Result<Vec<u8>>;
}

/// The exporters of a run directory.
pub fn all() -> Vec<Box<dyn Exporter>> {
    vec![
        Box::new(json::RunJson),
        Box::new(csv::SummaryCsv),
        Box::new(csv::TasksCsv),
        Box::new(csv::EventsCsv),
    ]
}

/// Write `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // Temporary files are private (0600); results are meant to be read and shared.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Render every exporter into `dir`.
pub fn write_all(dir: &Path, data: RunData<'_>) -> Result<()> {
    for e in all() {
        let bytes = e.render(data)?;
        write_atomic(&dir.join(e.file_name()), &bytes)?;
    }
    Ok(())
}
