//! The shards' ledgers joined by task id (tasks.csv read back, every shard's side channel
//! replayed over the joined ledger) and their client events.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use uuid::Uuid;

use crate::event::ClientEvent;
use crate::export;
use crate::ledger::{Ledger, Outcome, TaskRecord};
use crate::load::shard::Shard;

use super::MergeError;
use super::shards::ShardRun;

/// What tasks.csv says about a task beyond its record: its executions and outcome
/// (checked once the side channel is replayed), and a hash of the whole row (to tell the
/// same task in two files from two tasks with one id). Small: a merge holds one per task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CsvTask {
    pub(super) row_hash: u64,
    pub(super) workload: usize,
    pub(super) executions: usize,
    pub(super) outcome: Outcome,
}

/// Read a shard's tasks.csv into records (no executions) of the named workloads.
pub(super) fn read_tasks(
    path: &Path,
    names: &HashMap<String, usize>,
) -> Result<Vec<(TaskRecord, CsvTask)>, MergeError> {
    let rows = export::csv::read_tasks(path, names).map_err(inconsistent)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let csv = CsvTask {
                row_hash: r.row_hash,
                workload: r.task.workload,
                executions: r.executions,
                outcome: r.outcome,
            };
            (r.task, csv)
        })
        .collect())
}

/// Read a shard's events.csv (absent: none).
fn read_events(path: &Path) -> Result<Vec<ClientEvent>, MergeError> {
    export::csv::read_events(path).map_err(inconsistent)
}

/// A shard's file that does not read back as written.
fn inconsistent(e: export::csv::CsvReadError) -> MergeError {
    MergeError::Inconsistent {
        path: e.path,
        what: e.what,
    }
}

/// The side-channel files of a shard, sorted.
pub(super) fn side_channel_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("executions"))
        .map(|it| it.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// The joined ledger and client events of the shards.
#[derive(Debug)]
pub(super) struct Joined {
    pub(super) ledger: Ledger,
    /// Each task's shard index (ids name it too; this also covers unsharded ids).
    pub(super) shard_of: HashMap<Uuid, u32>,
    /// Client events per shard index.
    pub(super) events: BTreeMap<u32, Vec<ClientEvent>>,
    pub(super) same_task_twice: u64,
    pub(super) tasks_per_shard: BTreeMap<u32, u64>,
    /// Executions found only in another shard's side channel.
    pub(super) executions_elsewhere: u64,
}

pub(super) fn join(runs: &[ShardRun], names: &[String]) -> Result<Joined> {
    let index: HashMap<String, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let mut ledger = Ledger::new(names.len());
    let mut held: HashMap<Uuid, (usize, CsvTask)> = HashMap::new();
    let mut shard_of = HashMap::new();
    let mut same_task_twice = 0;
    let mut tasks_per_shard = BTreeMap::new();
    for (k, r) in runs.iter().enumerate() {
        let rows = read_tasks(&r.dir.join("tasks.csv"), &index)?;
        tasks_per_shard.insert(r.shard.index, rows.len() as u64);
        for (t, csv) in rows {
            let id_shard = Shard::of_task_id(&t.id);
            if id_shard != Some(r.shard) {
                return Err(MergeError::ForeignTask {
                    dir: r.dir.clone(),
                    id: t.id,
                    id_shard: id_shard.map_or("no shard".into(), |s| format!("shard {s}")),
                    shard: r.shard,
                }
                .into());
            }
            if let Some((j, other)) = held.get(&t.id) {
                if *other == csv {
                    same_task_twice += 1;
                    continue;
                }
                return Err(MergeError::DuplicateTask {
                    id: t.id,
                    a: runs[*j].dir.clone(),
                    b: r.dir.clone(),
                }
                .into());
            }
            shard_of.insert(t.id, r.shard.index);
            held.insert(t.id, (k, csv));
            ledger.insert(t);
        }
    }
    // Every shard's executions over the joined ledger: a shard's workers may have run
    // another shard's tasks (a shared stack and worker set).
    let mut names_interned = Vec::new();
    for r in runs {
        for p in side_channel_files(&r.dir) {
            crate::protocol::side_channel::for_each_in_file(&p, |ev| {
                ledger.merge_event(&ev, &mut names_interned);
            })
            .with_context(|| format!("cannot read side channel {}", p.display()))?;
        }
    }
    ledger.sort_executions();
    // What tasks.csv said must be what the replay says, except for executions found in
    // another shard's side channel (its workers ran the task: a shared worker set), which
    // the shard itself could not see; those may change the outcome (lost → result_lost).
    let mut executions_elsewhere = 0;
    for w in 0..names.len() {
        for t in ledger.tasks(w) {
            let (k, csv) = &held[&t.id];
            let outcome = t.classify().outcome;
            let found = t.executions.len();
            if found > csv.executions {
                executions_elsewhere += (found - csv.executions) as u64;
            } else if found < csv.executions || outcome != csv.outcome {
                return Err(MergeError::Inconsistent {
                    path: runs[*k].dir.join("tasks.csv"),
                    what: format!(
                        "task {} ran {} times ({}) by tasks.csv but {} times ({}) by the side channel in executions/ of the shards; is a shard's executions/ directory missing?",
                        t.id,
                        csv.executions,
                        csv.outcome.as_str(),
                        t.executions.len(),
                        outcome.as_str()
                    ),
                }
                .into());
            }
            debug_assert_eq!(csv.workload, w);
        }
    }
    let mut events = BTreeMap::new();
    for r in runs {
        events.insert(r.shard.index, read_events(&r.dir.join("events.csv"))?);
    }
    Ok(Joined {
        ledger,
        shard_of,
        events,
        same_task_twice,
        tasks_per_shard,
        executions_elsewhere,
    })
}

/// A ledger of the tasks of `shard` only (for failover rows of a local stack per shard).
pub(super) fn ledger_of(joined: &Joined, n: usize, shard: u32) -> Ledger {
    let mut l = Ledger::new(n);
    for w in 0..n {
        for t in joined.ledger.tasks(w) {
            if joined.shard_of.get(&t.id) == Some(&shard) {
                l.insert(t.clone());
            }
        }
    }
    l
}
