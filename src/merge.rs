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
//! - **Timeline, tasks.csv, .hgrm, .hlog** are written by the run's own exporters from the
//!   joined ledger: per second, completions are the sum over shards and percentiles those
//!   of the union.
//! - **Failover** rows come from the shard that applied the faults (shard 1) and are
//!   analysed again ([`crate::metrics::failover::rows`]) on the merged ledger: on a stack
//!   the shards shared, over every shard's tasks and client events; with a local stack per
//!   shard, over shard 1's (only its stack was broken).
//!
//! Latency needs no clock agreement between hosts: each task's intended start and result
//! are both timed by the shard that published it. Placing other shards' tasks and events
//! in a fault's window (shared stack), the merged timeline's seconds and the merged wall
//! time rely on the hosts' clocks agreeing (NTP); the report says so.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use uuid::Uuid;

use crate::export::{self, RunData, RunReport, RunStatus};
use crate::ledger::{Ledger, Outcome, TaskRecord};
use crate::load::shard::Shard;
use crate::metrics::{LatencyHistogram, WorkloadMetrics};
use crate::observe::ClientEvent;
use crate::record::StackScope;
use crate::record::names::merged_dir_name;
pub use crate::record::{MergeReport, MergedShard};
pub use crate::report::merged_note as report_note;

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

/// One shard as loaded.
#[derive(Debug)]
struct ShardRun {
    dir: PathBuf,
    report: RunReport,
    shard: Shard,
}

fn load_run(dir: &Path) -> Result<ShardRun, MergeError> {
    let path = dir.join("run.json");
    let text = std::fs::read_to_string(&path).map_err(|e| MergeError::NotARun {
        dir: dir.to_path_buf(),
        why: format!("cannot read run.json: {e}"),
    })?;
    let report: RunReport = serde_json::from_str(&text).map_err(|e| MergeError::NotARun {
        dir: dir.to_path_buf(),
        why: format!("run.json does not parse: {e}"),
    })?;
    let Some(s) = &report.shard else {
        return Err(MergeError::NotAShard {
            dir: dir.to_path_buf(),
        });
    };
    let shard = Shard {
        index: s.index,
        count: s.count,
    };
    Ok(ShardRun {
        dir: dir.to_path_buf(),
        report,
        shard,
    })
}

/// Where two JSON values first differ, as a dotted path under `at`; `None` if equal.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let null = Value::Null;
                first_difference(
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    &format!("{at}.{k}"),
                )
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(at.to_string()),
    }
}

/// Check that the runs are the shards 1..N of one run; returns them ordered by index.
fn check_together(mut runs: Vec<ShardRun>) -> Result<Vec<ShardRun>, MergeError> {
    runs.sort_by_key(|r| r.shard.index);
    let first = &runs[0];
    for r in &runs[1..] {
        let mismatch = |what, field: String| MergeError::Mismatch {
            dir: r.dir.clone(),
            first: first.dir.clone(),
            what,
            field,
        };
        if r.shard.count != first.shard.count {
            return Err(mismatch(
                "shard count",
                format!(
                    "shard.count ({} against {})",
                    r.shard.count, first.shard.count
                ),
            ));
        }
        if let Some(f) = first_difference(&first.report.topology, &r.report.topology, "topology") {
            return Err(mismatch("topology", f));
        }
        if let Some(f) = first_difference(
            &first.report.workload_plan,
            &r.report.workload_plan,
            "workload_plan",
        ) {
            return Err(mismatch("workload plan", f));
        }
        let scope = |r: &ShardRun| r.report.shard.as_ref().map(|s| s.stack);
        if scope(r) != scope(first) {
            return Err(mismatch("stack", "shard.stack".into()));
        }
    }
    for w in runs.windows(2) {
        if w[0].shard.index == w[1].shard.index {
            return Err(MergeError::DuplicateShard {
                index: w[0].shard.index,
                a: w[0].dir.clone(),
                b: w[1].dir.clone(),
            });
        }
    }
    let count = first.shard.count;
    let given: HashSet<u32> = runs.iter().map(|r| r.shard.index).collect();
    let missing: Vec<u32> = (1..=count).filter(|i| !given.contains(i)).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { count, missing });
    }
    Ok(runs)
}

/// What tasks.csv says about a task beyond its record: its executions and outcome
/// (checked once the side channel is replayed), and a hash of the whole row (to tell the
/// same task in two files from two tasks with one id). Small: a merge holds one per task.
#[derive(Debug, Clone, Copy, PartialEq)]
struct CsvTask {
    row_hash: u64,
    workload: usize,
    executions: usize,
    outcome: Outcome,
}

/// Read a shard's tasks.csv into records (no executions) of the named workloads.
fn read_tasks(
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
fn side_channel_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("executions"))
        .map(|it| it.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

/// Add the shards' histogram `stage` of workload `name` (HdrHistogram add).
fn added_histogram(runs: &[ShardRun], name: &str, stage: &str) -> Result<LatencyHistogram> {
    let mut sum = LatencyHistogram::new();
    for r in runs {
        if let Some(w) = r.report.workloads.iter().find(|w| w.name == name)
            && let Some(encoded) = w.histograms.get(stage)
        {
            let h = LatencyHistogram::from_base64(encoded).with_context(|| {
                format!(
                    "{}: run.json histogram {stage} of workload {name}",
                    r.dir.display()
                )
            })?;
            sum.merge(&h);
        }
    }
    Ok(sum)
}

/// The worst of the shards' statuses (failed > interrupted > running > complete).
fn worst_status(statuses: impl Iterator<Item = RunStatus>) -> RunStatus {
    let rank = |s: RunStatus| match s {
        RunStatus::Complete => 0,
        RunStatus::Running => 1,
        RunStatus::Interrupted => 2,
        RunStatus::Failed => 3,
    };
    statuses
        .max_by_key(|s| rank(*s))
        .unwrap_or(RunStatus::Complete)
}

/// The joined ledger and client events of the shards.
#[derive(Debug)]
struct Joined {
    ledger: Ledger,
    /// Each task's shard index (ids name it too; this also covers unsharded ids).
    shard_of: HashMap<Uuid, u32>,
    /// Client events per shard index.
    events: BTreeMap<u32, Vec<ClientEvent>>,
    same_task_twice: u64,
    tasks_per_shard: BTreeMap<u32, u64>,
    /// Executions found only in another shard's side channel.
    executions_elsewhere: u64,
}

fn join(runs: &[ShardRun], names: &[String]) -> Result<Joined> {
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
            crate::ledger::side_channel::for_each_in_file(&p, |ev| {
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
fn ledger_of(joined: &Joined, n: usize, shard: u32) -> Ledger {
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

/// Merge the shard run directories `dirs` into a new run directory under `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<MergeOutcome> {
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
            eprintln!(
                "hab merge: warning: shard {} ({}) is {:?}; the merged run is not complete either",
                r.shard,
                r.dir.display(),
                r.report.status
            );
        }
    }
    if let Some(w) = overlap_warning(&runs) {
        eprintln!("hab merge: warning: {w}");
    }
    let merged = merged_report(&runs)?;
    let (mut report, joined) = merged;
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

/// The merged run.json (timeline computed before writing) and the joined ledger.
fn merged_report(runs: &[ShardRun]) -> Result<(RunReport, Joined)> {
    let first = &runs[0].report;
    let count = runs[0].shard.count;
    let shard_info = first.shard.as_ref().expect("checked: a shard");
    let scope = shard_info.stack;
    let faults_by = shard_info.faults_by;
    let fault_run = runs
        .iter()
        .find(|r| r.shard.index == faults_by)
        .expect("checked: every shard is there");
    // Workloads in plan order: those of the shard that got furthest.
    let names: Vec<String> = runs
        .iter()
        .map(|r| &r.report.workloads)
        .max_by_key(|w| w.len())
        .map(|w| w.iter().map(|w| w.name.clone()).collect())
        .unwrap_or_default();
    let joined = join(runs, &names)?;
    let n = names.len();

    let mut workloads = Vec::with_capacity(n);
    for (i, name) in names.iter().enumerate() {
        let task = runs
            .iter()
            .find_map(|r| r.report.workloads.iter().find(|w| &w.name == name))
            .map(|w| w.task.clone())
            .unwrap_or_default();
        let metrics = WorkloadMetrics::from_tasks(name, &task, joined.ledger.tasks(i));
        let mut report = metrics.report();
        // The shards' histograms added: the union's histogram, checked against the
        // joined ledger.
        for (stage, from_ledger) in metrics.stages.named() {
            let mut added = added_histogram(runs, name, stage)?;
            // Executions the shards could not see (another shard's workers ran them):
            // the stages measured at the worker are the joined ledger's.
            let worker_stage = matches!(stage, "queue_wait" | "service" | "result_delay");
            if worker_stage && joined.executions_elsewhere > 0 && added.len() < from_ledger.len() {
                added = from_ledger.clone();
            }
            if added.len() != from_ledger.len() {
                return Err(MergeError::Inconsistent {
                    path: runs[0].dir.join("run.json"),
                    what: format!(
                        "workload {name}: the shards' run.json {stage} histograms hold {} values, their tasks.csv and executions/ files {}",
                        added.len(),
                        from_ledger.len()
                    ),
                }
                .into());
            }
            report.stages.insert(stage.to_string(), added.stats());
            report
                .histograms
                .insert(stage.to_string(), added.to_base64());
        }
        workloads.push(report);
    }

    // Failover: the faulting shard's faults, analysed again on the merged ledger.
    let fault_shard = fault_run.report.shard.as_ref().expect("a shard");
    let (scoped, in_scope): (Option<Ledger>, Vec<u32>) = match scope {
        StackScope::Shared => (None, runs.iter().map(|r| r.shard.index).collect()),
        StackScope::Local => (Some(ledger_of(&joined, n, faults_by)), vec![faults_by]),
    };
    let ledger = scoped.as_ref().unwrap_or(&joined.ledger);
    let mut client_events: Vec<ClientEvent> = in_scope
        .iter()
        .flat_map(|i| joined.events.get(i).into_iter().flatten().cloned())
        .collect();
    client_events.sort_by_key(|e| e.at_unix_us);
    let vanished: Option<HashSet<Uuid>> = in_scope
        .iter()
        .map(|i| {
            runs.iter()
                .find(|r| r.shard.index == *i)
                .and_then(|r| r.report.shard.as_ref())
                .and_then(|s| s.result_vanished_ids.clone())
        })
        .collect::<Option<Vec<Vec<String>>>>()
        .map(|v| {
            v.iter()
                .flatten()
                .filter_map(|s| Uuid::parse_str(s).ok())
                .collect()
        });
    let present: Option<HashSet<Uuid>> = vanished.map(|gone| {
        (0..n)
            .flat_map(|w| ledger.tasks(w))
            .map(|t| t.id)
            .filter(|id| !gone.contains(id))
            .collect()
    });
    let clients: crate::config::clients::ClientsConfig = first
        .topology
        .get("clients")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let failover = crate::metrics::failover::rows(
        &fault_shard.faults,
        &name_refs,
        ledger,
        &client_events,
        &fault_shard.server_events,
        present.as_ref(),
        &clients,
    );

    let mut workers = fault_run.report.workers.clone();
    workers.count = runs.iter().map(|r| r.report.workers.count).sum();
    workers.restarts = runs.iter().map(|r| r.report.workers.restarts).sum();
    workers.executions = runs.iter().map(|r| r.report.workers.executions).sum();
    workers.progress_results = runs.iter().map(|r| r.report.workers.progress_results).sum();
    workers.rejected = BTreeMap::new();
    workers.refused = BTreeMap::new();
    workers.crashes = Vec::new();
    for r in runs {
        for (k, v) in &r.report.workers.rejected {
            *workers.rejected.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &r.report.workers.refused {
            *workers.refused.entry(k.clone()).or_insert(0) += v;
        }
        workers
            .crashes
            .extend(r.report.workers.crashes.iter().cloned());
    }
    let mut client_counts = BTreeMap::new();
    for e in joined.events.values().flatten() {
        *client_counts
            .entry(e.kind.as_str().to_string())
            .or_insert(0) += 1;
    }
    // A stack per shard: what each held at the end adds up; one shared stack: shard 1's
    // look at it is the look.
    let final_state = match scope {
        StackScope::Shared => fault_run.report.final_state,
        StackScope::Local => runs
            .iter()
            .map(|r| r.report.final_state)
            .collect::<Option<Vec<_>>>()
            .map(|all| crate::record::FinalState {
                queue_ready: all.iter().map(|f| f.queue_ready).sum(),
                queue_consumers: all.iter().map(|f| f.queue_consumers).sum(),
                result_keys: all.iter().map(|f| f.result_keys).sum(),
            }),
    };
    let errors: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            r.report
                .error
                .as_ref()
                .map(|e| format!("shard {}: {e}", r.shard))
        })
        .collect();
    let report = RunReport {
        hab_version: env!("CARGO_PKG_VERSION").to_string(),
        status: worst_status(runs.iter().map(|r| r.report.status)),
        error: (!errors.is_empty()).then(|| errors.join("; ")),
        name: first.name.clone(),
        started_unix_ms: runs
            .iter()
            .map(|r| r.report.started_unix_ms)
            .min()
            .unwrap_or(0),
        finished_unix_ms: runs
            .iter()
            .map(|r| r.report.finished_unix_ms)
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max()),
        topology_file: fault_run.report.topology_file.clone(),
        workload_file: fault_run.report.workload_file.clone(),
        topology: first.topology.clone(),
        workload_plan: first.workload_plan.clone(),
        machine: fault_run.report.machine.clone(),
        versions: fault_run.report.versions.clone(),
        bringup_ms: fault_run.report.bringup_ms,
        bringup_phases_ms: fault_run.report.bringup_phases_ms.clone(),
        workers_ready_ms: runs.iter().filter_map(|r| r.report.workers_ready_ms).max(),
        workers,
        unknown_results: runs.iter().map(|r| r.report.unknown_results).sum(),
        client_events: client_counts,
        workloads,
        failover,
        final_state,
        timeline: Vec::new(),
        calibration: fault_run.report.calibration.clone(),
        idle: fault_run.report.idle.clone(),
        producer: fault_run.report.producer.clone(),
        shard: None,
        // Each shard's observers, as they fared from that shard's host.
        observers: runs
            .iter()
            .flat_map(|r| r.report.observers.clone())
            .collect(),
        merged: Some(MergeReport {
            count,
            faults_by,
            stack: scope,
            shards: runs
                .iter()
                .map(|r| MergedShard {
                    index: r.shard.index,
                    dir: r.dir.display().to_string(),
                    status: r.report.status,
                    started_unix_ms: r.report.started_unix_ms,
                    finished_unix_ms: r.report.finished_unix_ms,
                    tasks: joined
                        .tasks_per_shard
                        .get(&r.shard.index)
                        .copied()
                        .unwrap_or(0),
                    machine: r.report.machine.clone(),
                    clock: r.report.clock.clone(),
                })
                .collect(),
            same_task_twice: joined.same_task_twice,
            executions_from_other_shards: joined.executions_elsewhere,
        }),
        // Every shard's failed reads, its workload named with its shard.
        failed_reads: runs
            .iter()
            .flat_map(|r| {
                r.report
                    .failed_reads
                    .iter()
                    .map(|f| crate::record::FailedRead {
                        workload: format!("{} (shard {})", f.workload, r.shard)
                            .trim_start()
                            .into(),
                        ..f.clone()
                    })
            })
            .collect(),
        // Each shard's processes had their own anchors (and maybe hosts): `merged.shards`.
        clock: None,
        invariants: Vec::new(),
    };
    Ok((report, joined))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{ConfirmState, ResultStatus, SeenVia};
    use crate::metrics::failover::AppliedFault;
    use crate::record::ShardReport;
    use crate::record::{Machine, WorkersReport};

    fn report(index: u32, count: u32) -> RunReport {
        RunReport {
            hab_version: "0".into(),
            status: RunStatus::Complete,
            error: None,
            name: "standalone-smoke".into(),
            started_unix_ms: 1,
            finished_unix_ms: Some(2),
            topology_file: "t.toml".into(),
            workload_file: "w.toml".into(),
            topology: serde_json::json!({"name": "standalone", "broker": {"nodes": 1}}),
            workload_plan: serde_json::json!({"name": "smoke", "workloads": [{"count": 10}]}),
            machine: Machine::default(),
            versions: Default::default(),
            bringup_ms: None,
            bringup_phases_ms: Default::default(),
            workers_ready_ms: None,
            workers: WorkersReport::default(),
            unknown_results: 0,
            client_events: Default::default(),
            workloads: Vec::new(),
            failover: Vec::new(),
            final_state: None,
            timeline: Vec::new(),
            calibration: None,
            idle: None,
            producer: None,
            shard: Some(ShardReport {
                index,
                count,
                faults_by: 1,
                stack: StackScope::Local,
                faults: Vec::new(),
                server_events: Vec::new(),
                result_vanished_ids: None,
            }),
            merged: None,
            failed_reads: Vec::new(),
            clock: None,
            invariants: Vec::new(),
            observers: Vec::new(),
        }
    }

    fn run(index: u32, count: u32) -> ShardRun {
        ShardRun {
            dir: PathBuf::from(format!("r{index}of{count}")),
            report: report(index, count),
            shard: Shard { index, count },
        }
    }

    #[test]
    fn shards_of_one_run_go_together_in_index_order() {
        let runs = check_together(vec![run(3, 3), run(1, 3), run(2, 3)]).unwrap();
        let order: Vec<u32> = runs.iter().map(|r| r.shard.index).collect();
        assert_eq!(order, vec![1, 2, 3]);
    }

    #[test]
    fn refuses_other_topologies_plans_counts_duplicates_and_gaps() {
        let mut other = run(2, 2);
        other.report.topology["broker"]["nodes"] = serde_json::json!(3);
        let e = check_together(vec![run(1, 2), other])
            .unwrap_err()
            .to_string();
        assert!(e.contains("topology differs"), "{e}");
        assert!(e.contains("topology.broker.nodes"), "{e}");

        let mut other = run(2, 2);
        other.report.workload_plan["workloads"][0]["count"] = serde_json::json!(11);
        let e = check_together(vec![run(1, 2), other])
            .unwrap_err()
            .to_string();
        assert!(e.contains("workload plan differs"), "{e}");
        assert!(e.contains("workload_plan.workloads[0].count"), "{e}");

        let e = check_together(vec![run(1, 2), run(2, 3)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("shard count differs"), "{e}");

        let e = check_together(vec![run(1, 2), run(1, 2)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("shard 1 is given twice"), "{e}");

        let e = check_together(vec![run(1, 3), run(3, 3)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("shards [2] of 3 are missing"), "{e}");

        let mut shared = run(2, 2);
        shared.report.shard.as_mut().unwrap().stack = StackScope::Shared;
        let e = check_together(vec![run(1, 2), shared])
            .unwrap_err()
            .to_string();
        assert!(e.contains("stack differs"), "{e}");
    }

    #[test]
    fn shards_that_did_not_overlap_in_time_are_warned_about() {
        let (mut a, mut b) = (run(1, 2), run(2, 2));
        (a.report.started_unix_ms, a.report.finished_unix_ms) = (1_000, Some(60_000));
        (b.report.started_unix_ms, b.report.finished_unix_ms) = (30_000, Some(90_000));
        assert_eq!(overlap_warning(&[a, b]), None);
        let (mut a, mut b) = (run(1, 2), run(2, 2));
        (a.report.started_unix_ms, a.report.finished_unix_ms) = (1_000, Some(60_000));
        (b.report.started_unix_ms, b.report.finished_unix_ms) = (3_600_000, Some(3_660_000));
        let w = overlap_warning(&[a, b]).unwrap();
        assert!(w.contains("did not all run at the same time"), "{w}");
        assert!(w.contains("shard 2/2 ran 60 s from unix 3600"), "{w}");
    }

    #[test]
    fn a_run_without_shard_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = load_run(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a run directory"), "{e}");
        let mut r = report(1, 1);
        r.shard = None;
        std::fs::write(dir.path().join("run.json"), serde_json::to_vec(&r).unwrap()).unwrap();
        let e = load_run(dir.path()).unwrap_err().to_string();
        assert!(e.contains("has no `shard`"), "{e}");
    }

    /// The shards' histograms added hold exactly the union's values: counts, min, max
    /// and every quantile equal to one histogram of all values.
    #[test]
    fn added_histograms_equal_the_histogram_of_the_union() {
        let shard_values: [Vec<i64>; 3] = [
            (0..500).map(|i| 1_000 + i * 37).collect(),
            (0..333).map(|i| 50 + i * i).collect(),
            vec![7, 9_000_000, 123_456],
        ];
        let mut union = LatencyHistogram::new();
        let mut runs = Vec::new();
        for (k, values) in shard_values.iter().enumerate() {
            let mut h = LatencyHistogram::new();
            for &v in values {
                h.record(v);
                union.record(v);
            }
            let mut r = run(k as u32 + 1, 3);
            let mut w = WorkloadMetrics::from_tasks("trivial", "hab.trivial", &[]).report();
            w.histograms.insert("latency".into(), h.to_base64());
            r.report.workloads.push(w);
            runs.push(r);
        }
        let added = added_histogram(&runs, "trivial", "latency").unwrap();
        assert_eq!(added.len(), union.len());
        assert_eq!(added.stats(), union.stats());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(added.quantile_us(q), union.quantile_us(q), "q={q}");
        }
    }

    fn write_shard(dir: &Path, shard: Shard, ids: &[Uuid]) {
        let mut ledger = Ledger::new(1);
        for (k, id) in ids.iter().enumerate() {
            let t0 = 1_800_000_000_000_000 + k as i64 * 1000;
            let mut t = TaskRecord::new(*id, 0, t0);
            t.published_unix_us = Some(t0 + 5);
            t.confirm = ConfirmState::Acked;
            ledger.insert(t);
        }
        let mut r = report(shard.index, shard.count);
        r.workloads =
            vec![WorkloadMetrics::from_tasks("trivial", "hab.trivial", ledger.tasks(0)).report()];
        std::fs::create_dir_all(dir.join("executions")).unwrap();
        export::write_all(
            dir,
            RunData {
                report: &r,
                ledger: &ledger,
                events: &[],
            },
        )
        .unwrap();
    }

    #[test]
    fn task_ids_must_be_disjoint_and_name_their_shard() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 });
        let (d1, d2) = (tmp.path().join("s1"), tmp.path().join("s2"));
        // A task of shard 2 in shard 1's directory.
        write_shard(&d1, a, &[a.task_id(), b.task_id()]);
        write_shard(&d2, b, &[b.task_id()]);
        let runs = vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()];
        let e = join(&runs, &["trivial".into()]).unwrap_err().to_string();
        assert!(
            e.contains("has the id of shard 2/2, not of shard 1/2"),
            "{e}"
        );

        // The same id with different records in two directories.
        let id = a.task_id();
        write_shard(&d1, a, &[id]);
        write_shard(&d2, a, &[a.task_id(), id]);
        let mut runs = vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()];
        runs[1].shard = a;
        let e = join(&runs, &["trivial".into()]).unwrap_err().to_string();
        assert!(e.contains(&format!("task {id} is in")), "{e}");

        // Disjoint ids join to the union, lost tasks and all.
        let ids1 = [a.task_id(), a.task_id()];
        let ids2 = [b.task_id()];
        write_shard(&d1, a, &ids1);
        write_shard(&d2, b, &ids2);
        let runs = vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()];
        let j = join(&runs, &["trivial".into()]).unwrap();
        let got: HashSet<Uuid> = j.ledger.tasks(0).iter().map(|t| t.id).collect();
        let want: HashSet<Uuid> = ids1.iter().chain(&ids2).copied().collect();
        assert_eq!(got, want);
        assert!(
            j.ledger
                .tasks(0)
                .iter()
                .all(|t| t.classify().outcome == Outcome::Lost)
        );
    }

    #[test]
    fn tasks_frozen_at_a_drain_deadline_read_back_as_they_were_written() {
        use crate::ledger::AtDeadline;
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::new(1);
        let at = |purged, read_failed| {
            Some(Box::new(AtDeadline {
                at_unix_us: 5_000,
                purged,
                read_failed,
            }))
        };
        let marks = [at(true, false), at(false, true), None];
        for (k, mark) in marks.iter().enumerate() {
            let mut t = TaskRecord::new(Uuid::new_v4(), 0, 1_000 + k as i64);
            t.published_unix_us = Some(1_100);
            t.confirm = ConfirmState::Acked;
            t.at_deadline = mark.clone();
            // The last task is of a second repetition.
            t.repetition = 1 + k as u32 / 2;
            ledger.insert(t);
        }
        let mut r = report(1, 1);
        r.workloads =
            vec![WorkloadMetrics::from_tasks("w", "hab.trivial", ledger.tasks(0)).report()];
        export::write_all(
            dir.path(),
            RunData {
                report: &r,
                ledger: &ledger,
                events: &[],
            },
        )
        .unwrap();
        let names = HashMap::from([("w".to_string(), 0)]);
        let rows = read_tasks(&dir.path().join("tasks.csv"), &names).unwrap();
        let outcomes: Vec<Outcome> = rows.iter().map(|(_, c)| c.outcome).collect();
        assert_eq!(
            outcomes,
            [Outcome::UnfinishedQueued, Outcome::Lost, Outcome::Lost]
        );
        for ((t, csv), mark) in rows.iter().zip(&marks) {
            assert_eq!(&t.at_deadline, mark);
            assert_eq!(t.classify().outcome, csv.outcome);
        }
        let repetitions: Vec<u32> = rows.iter().map(|(t, _)| t.repetition).collect();
        assert_eq!(repetitions, [1, 1, 2]);
        // A tasks.csv written before deadlines, failure reasons and repetitions were
        // recorded has no such columns.
        let text = std::fs::read_to_string(dir.path().join("tasks.csv")).unwrap();
        let old: String = text
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{}\n", f[..f.len() - 5].join(","))
            })
            .collect();
        std::fs::write(dir.path().join("tasks.csv"), old).unwrap();
        let rows = read_tasks(&dir.path().join("tasks.csv"), &names).unwrap();
        assert!(rows.iter().all(|(t, _)| t.at_deadline.is_none()));
        assert!(rows.iter().all(|(t, _)| t.repetition == 1));
    }

    /// A shard directory with `tasks` (each executed `executions` times, per the side
    /// channel file written beside them) and shard 1's fault.
    fn write_shard_tasks(
        dir: &Path,
        shard: Shard,
        stack: StackScope,
        tasks: &[(i64, Option<i64>, bool)],
        fault_at: i64,
    ) -> Vec<Uuid> {
        use crate::ledger::{SideEvent, SideEventKind, side_channel};
        let mut ledger = Ledger::new(1);
        let mut side = String::from(side_channel::HEADER);
        side.push('\n');
        let mut ids = Vec::new();
        for &(intended, seen, ran_here) in tasks {
            let mut t = TaskRecord::new(shard.task_id(), 0, intended);
            ids.push(t.id);
            t.published_unix_us = Some(intended + 10);
            t.confirmed_unix_us = Some(intended + 20);
            t.confirm = ConfirmState::Acked;
            if let Some(seen) = seen {
                t.result_seen_unix_us = Some(seen);
                t.result_status = Some(ResultStatus::Success);
                t.seen_via = Some(SeenVia::Notification);
            }
            if seen.is_some() && ran_here {
                for (kind, at) in [
                    (SideEventKind::Start, intended + 100),
                    (SideEventKind::Finish { succeeded: true }, intended + 200),
                ] {
                    let ev = SideEvent {
                        kind,
                        unix_us: at,
                        task_id: t.id,
                        worker: "w1".into(),
                        detail: String::new(),
                    };
                    side.push_str(&side_channel::format(&ev));
                }
            }
            ledger.insert(t);
        }
        std::fs::create_dir_all(dir.join("executions")).unwrap();
        std::fs::write(dir.join("executions/w1.csv"), side).unwrap();
        let mut names = Vec::new();
        let events = side_channel::parse_all(
            &std::fs::read_to_string(dir.join("executions/w1.csv")).unwrap(),
        );
        for ev in &events {
            ledger.merge_event(ev, &mut names);
        }
        let mut r = report(shard.index, shard.count);
        r.shard.as_mut().unwrap().stack = stack;
        if shard.applies_faults() {
            r.shard.as_mut().unwrap().faults = vec![AppliedFault {
                workload: 0,
                target: crate::fault::Role::BrokerPrimary,
                resolved: "broker.node[0]".into(),
                kind: crate::fault::FaultKind::Kill,
                repetition: 0,
                fault_at_unix_us: fault_at,
                restored_at_unix_us: Some(fault_at + 1_000_000),
                ready_at_unix_us: None,
                healthy_at_unix_us: Some(fault_at + 2_000_000),
                not_applied: None,
            }];
        }
        r.workloads =
            vec![WorkloadMetrics::from_tasks("rate", "hab.trivial", ledger.tasks(0)).report()];
        export::write_all(
            dir,
            RunData {
                report: &r,
                ledger: &ledger,
                events: &[],
            },
        )
        .unwrap();
        ids
    }

    /// Shard 1's fault is analysed on shard 1's tasks when each shard had its own stack,
    /// and on every shard's tasks when they shared one: shard 2's task lost in the
    /// fault's window counts only in the second case.
    #[test]
    fn failover_rows_follow_the_stack_scope() {
        let s = 1_000_000;
        let t0 = 1_800_000_000 * s;
        let at = t0 + 5 * s;
        let ok = |k: i64| (t0 + k * 100_000, Some(t0 + k * 100_000 + 2_000), true);
        for (stack, lost, tasks) in [(StackScope::Local, 0, 10), (StackScope::Shared, 1, 20)] {
            let tmp = tempfile::tempdir().unwrap();
            let (a, b) = (Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 });
            let (d1, d2) = (tmp.path().join("s1"), tmp.path().join("s2"));
            // Tasks from 0.5 s before the fault to 1.5 s after it, every 0.1 s.
            let mine: Vec<_> = (0..20).filter(|k| k % 2 == 0).map(|k| ok(45 + k)).collect();
            let mut theirs: Vec<_> = (0..20).filter(|k| k % 2 == 1).map(|k| ok(45 + k)).collect();
            theirs[3] = (t0 + 52 * 100_000, None, false);
            let _ = write_shard_tasks(&d1, a, stack, &mine, at);
            let _ = write_shard_tasks(&d2, b, stack, &theirs, at);
            let runs =
                check_together(vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()]).unwrap();
            let (merged, joined) = merged_report(&runs).unwrap();
            assert_eq!(joined.ledger.tasks(0).len(), 20);
            assert_eq!(merged.workloads[0].counts.count, 20);
            assert_eq!(merged.workloads[0].counts.lost, 1);
            assert_eq!(merged.failover.len(), 1, "{stack:?}");
            let row = &merged.failover[0];
            assert_eq!(row.lost, lost, "{stack:?}");
            // The window: intended from 1 s before the fault until healthy (2 s after).
            assert_eq!(row.tasks, tasks, "{stack:?}");
            assert_eq!(merged.merged.as_ref().unwrap().stack, stack);
        }
    }

    /// Shards sharing workers: shard 2's worker ran two tasks of shard 1, which shard 1
    /// saw as ok without an execution and as lost (its own side channel has neither).
    /// The merge replays every side channel: the ok task has its execution (its queue
    /// wait is in the histogram), the other ran (result lost, not lost). Too few
    /// executions is still an error.
    #[test]
    fn executions_in_another_shards_side_channel_count() {
        use crate::ledger::{SideEvent, SideEventKind, side_channel};
        let t0 = 1_800_000_000_000_000;
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (Shard { index: 1, count: 2 }, Shard { index: 2, count: 2 });
        let (d1, d2) = (tmp.path().join("s1"), tmp.path().join("s2"));
        let stack = StackScope::Shared;
        let ids1 = write_shard_tasks(
            &d1,
            a,
            stack,
            &[
                (t0, Some(t0 + 900), true),
                (t0, Some(t0 + 950), false),
                (t0, None, false),
            ],
            t0,
        );
        let _ = write_shard_tasks(&d2, b, stack, &[(t0, Some(t0 + 800), true)], t0);
        let mut other = String::new();
        for (id, kind, at) in [
            (ids1[1], SideEventKind::Start, t0 + 40),
            (ids1[1], SideEventKind::Finish { succeeded: true }, t0 + 45),
            (ids1[2], SideEventKind::Start, t0 + 50),
        ] {
            other.push_str(&side_channel::format(&SideEvent {
                kind,
                unix_us: at,
                task_id: id,
                worker: "w2".into(),
                detail: String::new(),
            }));
        }
        std::fs::write(d2.join("executions/w2.csv"), other).unwrap();
        let runs = check_together(vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()]).unwrap();
        let shard_queue_waits: u64 = runs
            .iter()
            .map(|r| r.report.workloads[0].stages["queue_wait"].count)
            .sum();
        assert_eq!(
            shard_queue_waits, 2,
            "the shards saw two executions of ok tasks"
        );
        let (merged, _) = merged_report(&runs).unwrap();
        let w = &merged.workloads[0];
        assert_eq!(
            (w.counts.ok, w.counts.lost, w.counts.result_lost),
            (3, 0, 1)
        );
        assert_eq!(
            merged.merged.as_ref().unwrap().executions_from_other_shards,
            2
        );
        assert_eq!(w.stages["queue_wait"].count, 3);
        assert_eq!(w.stages["latency"].count, 3);

        // A shard whose executions/ went missing: its tasks.csv says more ran.
        std::fs::remove_dir_all(d1.join("executions")).unwrap();
        let runs = check_together(vec![load_run(&d1).unwrap(), load_run(&d2).unwrap()]).unwrap();
        let e = merged_report(&runs).unwrap_err().to_string();
        assert!(
            e.contains("is a shard's executions/ directory missing?"),
            "{e}"
        );
    }

    #[test]
    fn the_report_note_names_the_clock_dependence() {
        let m = MergeReport {
            count: 2,
            faults_by: 1,
            stack: StackScope::Local,
            shards: Vec::new(),
            same_task_twice: 0,
            executions_from_other_shards: 0,
        };
        let note = crate::report::merged_note(&m);
        assert!(note.contains("Latency is measured on one host per task"));
        assert!(note.contains("hosts' clocks"));
        assert!(note.contains("shard 1 applied the faults to its stack only"));
    }
}
