//! run.json: everything about a run, the source of truth for later reports. The data is
//! [`crate::record`]'s; this file writes it.

use anyhow::Result;

use super::{Exporter, RunData};

/// Writes run.json.
pub struct RunJson;

impl Exporter for RunJson {
    fn file_name(&self) -> &'static str {
        "run.json"
    }
    fn write(&self, data: RunData<'_>, out: &mut dyn std::io::Write) -> Result<()> {
        serde_json::to_writer_pretty(&mut *out, data.report)?;
        out.write_all(b"\n")?;
        Ok(())
    }
}
