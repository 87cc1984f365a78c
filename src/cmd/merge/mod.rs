//! `hab merge DIR…`: the run directories of the shards of one run (`hab run --shard I/N`,
//! [`crate::load::shard`]) combined into one run directory with the layout of a single run, so
//! `hab report` works on it.
//!
//! - **Belonging together.** Every directory must be a shard of the same N, with the same
//!   topology and workload plan as parsed (run.json `topology`, `workload_plan`), the same
//!   stack scope, and each index 1..N exactly once. A missing shard is refused, not
//!   warned about: the merged run would not be the plan's workload, and its counts and
//!   throughput would be silently short.
//! - **Ledger.** Every shard's tasks.csv is joined by task id; the execution side channel
//!   of every shard (`executions/`) is replayed over the joined ledger, so a task run by
//!   another shard's worker (shards sharing workers) is still counted once per execution.
//!   A task id in two shards is an error unless both rows are identical (the same task);
//!   a task whose id names another shard than its directory is an error too.
//! - **Histograms** are the HdrHistogram sums of the shards' (run.json), never averaged
//!   percentiles; they are checked against the joined ledger's counts.
//! - **Timeline** is computed from the joined ledger as a run computes its own
//!   ([`crate::cmd::run::timeline`]): per second, completions are the sum over shards and
//!   percentiles those of the union. **tasks.csv, .hgrm, .hlog** are written by the run's
//!   own exporters from the joined ledger.
//! - **Failover** rows come from the shard that applied the faults (shard 1) and are
//!   analysed again ([`crate::metrics::failover::rows`]) on the merged ledger: on a stack
//!   the shards shared, over every shard's tasks and client events; with a local stack per
//!   shard, over shard 1's (only its stack was broken).
//!
//! - **Start skew** per workload (repetition): latest − earliest of the shards' schedule
//!   origins, from each shard's run.json `shard.starts` (`merged.start_skew`, the report,
//!   the terminal); shards told one `--start-at` keep it to the wake-up jitter of their
//!   processes ([`crate::load::start`]).
//!
//! Latency needs no clock agreement between hosts: each task's intended start and result
//! are both timed by the shard that published it. Placing other shards' tasks and events
//! in a fault's window (shared stack), the merged timeline's seconds and the merged wall
//! time rely on the hosts' clocks agreeing (NTP); the report says so.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use uuid::Uuid;

use crate::event::ClientEvent;
use crate::export::{self, RunData};
use crate::load::shard::Shard;
use crate::progress::Reporter;
use crate::record::names::merged_dir_name;
use crate::record::{RunReport, RunStatus};

use figures::merged_report;
use join::side_channel_files;
use shards::{ShardRun, check_together, load_run};

mod figures;
mod join;
mod shards;
mod skew;
#[cfg(test)]
mod tests;

/// Why shard directories cannot be merged; the CLI maps it to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No readable run.json.
    #[error("{}: not a run directory ({why}); give the directories `hab run --shard I/N` created", dir.display())]
    NotARun {
        /// The directory.
        dir: PathBuf,
        /// What was wrong.
        why: String,
    },
    /// A run directory of a run without `--shard`.
    #[error("{}: run.json has no `shard`: it is not a run of `hab run --shard I/N`", dir.display())]
    NotAShard {
        /// The directory.
        dir: PathBuf,
    },
    /// Two directories of different runs.
    #[error("{}: {what} differs from {} (first difference at {field}); shards of one run need the same topology, workload plan and shard count", dir.display(), first.display())]
    Mismatch {
        /// The directory that does not match.
        dir: PathBuf,
        /// The first directory, the reference.
        first: PathBuf,
        /// What differs: `topology`, `workload plan`, `shard count`, `stack`.
        what: &'static str,
        /// Where, e.g. `topology.broker.nodes`.
        field: String,
    },
    /// One index given twice.
    #[error("shard {index} is given twice: {} and {}; give each shard 1..N once", a.display(), b.display())]
    DuplicateShard {
        /// The index.
        index: u32,
        /// One directory.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
    /// Not every shard given.
    #[error(
        "shards {missing:?} of {count} are missing; merge needs every shard 1..{count} (a partial merge would not be the plan's workload)"
    )]
    Missing {
        /// How many shards there are.
        count: u32,
        /// The indices not given.
        missing: Vec<u32>,
    },
    /// The same task id in two shards with different rows.
    #[error("task {id} is in {} and in {} with different records; task ids of different shards must be disjoint", a.display(), b.display())]
    DuplicateTask {
        /// The task id.
        id: Uuid,
        /// One directory.
        a: PathBuf,
        /// The other.
        b: PathBuf,
    },
    /// A task whose id names another shard.
    #[error("{}: task {id} has the id of {id_shard}, not of shard {shard}", dir.display())]
    ForeignTask {
        /// The directory.
        dir: PathBuf,
        /// The task id.
        id: Uuid,
        /// What the id says (`shard 2/2` or `no shard`).
        id_shard: String,
        /// The directory's shard.
        shard: Shard,
    },
    /// A file of a shard that does not say what the rest says.
    #[error("{}: {what}", path.display())]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line or task.
        what: String,
    },
}

/// A finished merge.
#[derive(Debug)]
pub struct MergeOutcome {
    /// The merged run directory.
    pub dir: PathBuf,
    /// Its run.json.
    pub report: RunReport,
}

/// Merge the shard run directories `dirs` into a new run directory under `out`; warnings
/// (a shard not complete, shards that did not overlap in time) go to `reporter`.
pub fn merge(dirs: &[PathBuf], out: &Path, reporter: &dyn Reporter) -> Result<MergeOutcome> {
    let runs = dirs
        .iter()
        .map(|d| load_run(d))
        .collect::<Result<Vec<_>, _>>()?;
    if runs.is_empty() {
        anyhow::bail!("no shard directories given");
    }
    let runs = check_together(runs)?;
    for r in &runs {
        if r.report.status != RunStatus::Complete {
            reporter.line(&format!(
                "hab merge: warning: shard {} ({}) is {:?}; the merged run is not complete either",
                r.shard,
                r.dir.display(),
                r.report.status
            ));
        }
    }
    let instants: std::collections::BTreeSet<Option<i64>> = runs
        .iter()
        .map(|r| r.report.shard.as_ref().and_then(|s| s.start_at_unix_ms))
        .collect();
    if instants.len() > 1 {
        reporter.line(
            "hab merge: warning: the shards were not all given the same --start-at instant; the start skew shows how far apart they started",
        );
    }
    if let Some(w) = overlap_warning(&runs) {
        reporter.line(&format!("hab merge: warning: {w}"));
    }
    let merged = merged_report(&runs)?;
    let (mut report, joined) = merged;
    for s in report.merged.iter().flat_map(|m| &m.start_skew) {
        for n in &s.not_met {
            reporter.line(&format!(
                "hab merge: warning: workload {} did not start together: {n}; its start skew is {:.1} ms",
                s.workload, s.skew_ms
            ));
        }
    }
    // The merged figures check themselves as a run's do.
    report.invariants = crate::invariants::check(&report, Some(&joined.ledger));
    let topology = report
        .topology
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or("run")
        .to_string();
    let plan = report
        .workload_plan
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or("plan")
        .to_string();
    let out = std::path::absolute(out)
        .with_context(|| format!("bad output directory {}", out.display()))?;
    let dir = out.join(merged_dir_name(&topology, &plan, runs[0].shard.count));
    let executions = dir.join("executions");
    std::fs::create_dir_all(&executions)
        .with_context(|| format!("cannot create {}", executions.display()))?;
    // The side channel goes along (as shard<I>-<file>), so the directory is complete.
    for r in &runs {
        for p in side_channel_files(&r.dir) {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            let to = executions.join(format!("shard{}-{name}", r.shard.index));
            std::fs::copy(&p, &to)
                .with_context(|| format!("cannot copy {} to {}", p.display(), to.display()))?;
        }
    }
    let mut events: Vec<ClientEvent> = joined.events.values().flatten().cloned().collect();
    events.sort_by_key(|e| e.at_unix_us);
    // The timeline is the merged ledger's, computed as a run computes its own.
    report.timeline = crate::cmd::run::timeline(&report, &joined.ledger, &events);
    export::write_all(
        &dir,
        RunData {
            report: &report,
            ledger: &joined.ledger,
            events: &events,
        },
    )?;
    let report: RunReport = serde_json::from_slice(
        &std::fs::read(dir.join("run.json")).context("cannot read the merged run.json")?,
    )?;
    crate::report::render_dir(&dir)
        .with_context(|| format!("cannot render the report of {}", dir.display()))?;
    Ok(MergeOutcome { dir, report })
}

/// A warning when some shards did not run at the same time as the others (by their
/// hosts' clocks): shards of one run normally overlap; the merged timeline and wall times
/// then span the gap.
fn overlap_warning(runs: &[ShardRun]) -> Option<String> {
    let span = |r: &ShardRun| {
        (
            r.report.started_unix_ms,
            r.report
                .finished_unix_ms
                .unwrap_or(r.report.started_unix_ms),
        )
    };
    let latest_start = runs.iter().map(|r| span(r).0).max()?;
    let earliest_end = runs.iter().map(|r| span(r).1).min()?;
    (latest_start > earliest_end).then(|| {
        let list: Vec<String> = runs
            .iter()
            .map(|r| {
                let (a, b) = span(r);
                format!("shard {} ran {:.0} s from unix {}", r.shard, (b - a) as f64 / 1000.0, a / 1000)
            })
            .collect();
        format!(
            "the shards did not all run at the same time ({}); the merged timeline and wall times span the gap",
            list.join(", ")
        )
    })
}
