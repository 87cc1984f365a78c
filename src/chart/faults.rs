//! The faults of a comparison as the failover charts draw them: the applied repetitions of
//! each fault (workload, target, kind) on every topology ([`fault_groups`]).

use crate::metrics::failover::FailoverRow;
use crate::record::RunSet;

/// What identifies a fault across topologies and repetitions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FaultKey {
    /// Workload it ran in.
    pub workload: String,
    /// Role named in the workload file (`broker.primary`).
    pub target: String,
    /// kill, pause or stop.
    pub kind: String,
}

impl FaultKey {
    fn of(row: &FailoverRow) -> Self {
        FaultKey {
            workload: row.workload.clone(),
            target: row.target.clone(),
            kind: row.kind.clone(),
        }
    }

    /// `broker.primary kill`.
    pub fn short_label(&self) -> String {
        format!("{} {}", self.target, self.kind)
    }
}

/// The applied repetitions of one fault on every topology.
#[derive(Debug, Clone)]
pub struct FaultGroup<'a> {
    /// The fault.
    pub key: FaultKey,
    /// Label for axes: `broker.primary kill`, with the workload added when the same
    /// target and kind ran in several workloads.
    pub label: String,
    /// Per topology (index into `set.topologies`): the rows where the fault applied, every
    /// repetition of every run, in order.
    pub rows: Vec<Vec<&'a FailoverRow>>,
    /// Per topology: how many repetitions did not apply (role absent on that topology).
    pub not_applied: Vec<usize>,
}

/// Group the failover rows of `set` by fault (workload, target, kind), in order of first
/// appearance (baseline first). Faults that applied on no topology are left out.
pub fn fault_groups(set: &RunSet) -> Vec<FaultGroup<'_>> {
    let n = set.topologies.len();
    let mut groups: Vec<FaultGroup<'_>> = Vec::new();
    for (ti, t) in set.topologies.iter().enumerate() {
        for run in &t.runs {
            for row in &run.report.failover {
                let key = FaultKey::of(row);
                let gi = match groups.iter().position(|g| g.key == key) {
                    Some(gi) => gi,
                    None => {
                        groups.push(FaultGroup {
                            label: key.short_label(),
                            key,
                            rows: vec![Vec::new(); n],
                            not_applied: vec![0; n],
                        });
                        groups.len() - 1
                    }
                };
                if row.not_applied.is_empty() {
                    groups[gi].rows[ti].push(row);
                } else {
                    groups[gi].not_applied[ti] += 1;
                }
            }
        }
    }
    groups.retain(|g| g.rows.iter().any(|r| !r.is_empty()));
    // Same target and kind in several workloads: say which workload.
    let shorts: Vec<String> = groups.iter().map(|g| g.key.short_label()).collect();
    for g in &mut groups {
        let short = g.key.short_label();
        if shorts.iter().filter(|s| **s == short).count() > 1 {
            g.label = format!("{short} ({})", g.key.workload);
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    #[test]
    fn faults_group_repetitions_per_topology_and_skip_not_applied() {
        let set = RunSetBuilder::two_topologies_with_faults();
        let groups = fault_groups(&set);
        // Two faults: broker.primary kill (both topologies) and backend.replica kill (ha
        // only; not applied on standalone).
        assert_eq!(groups.len(), 2);
        let g = &groups[0];
        assert_eq!(g.label, "broker.primary kill");
        assert_eq!(g.key.workload, "trivial");
        // Standalone: one run with two repetitions; ha: two runs with two each.
        assert_eq!(g.rows[0].len(), 2);
        assert_eq!(g.rows[1].len(), 4);
        let g = &groups[1];
        assert_eq!(g.label, "backend.replica kill");
        assert_eq!(g.rows[0].len(), 0);
        assert_eq!(g.not_applied[0], 1);
        assert_eq!(g.rows[1].len(), 2);
    }

    #[test]
    fn same_fault_in_two_workloads_is_labelled_with_the_workload() {
        let mut set = RunSetBuilder::two_topologies_with_faults();
        let mut extra = set.topologies[1].runs[0].report.failover[0].clone();
        extra.workload = "sleepy".into();
        set.topologies[1].runs[0].report.failover.push(extra);
        let labels: Vec<String> = fault_groups(&set).into_iter().map(|g| g.label).collect();
        assert_eq!(
            labels,
            [
                "broker.primary kill (trivial)",
                "backend.replica kill",
                "broker.primary kill (sleepy)"
            ]
        );
    }
}
