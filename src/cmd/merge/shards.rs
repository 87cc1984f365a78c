//! The shard directories given to `hab merge`: loaded, and checked to be the shards
//! 1..N of one run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::load::shard::Shard;
use crate::record::RunReport;

use super::MergeError;

/// One shard as loaded.
#[derive(Debug)]
pub(super) struct ShardRun {
    pub(super) dir: PathBuf,
    pub(super) report: RunReport,
    pub(super) shard: Shard,
}

pub(super) fn load_run(dir: &Path) -> Result<ShardRun, MergeError> {
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
pub(super) fn check_together(mut runs: Vec<ShardRun>) -> Result<Vec<ShardRun>, MergeError> {
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
