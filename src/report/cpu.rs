//! The report's "Who was busy" section: per run and workload, the busiest process, its
//! share of a core, the machine's busy and stolen share and what that says (run.json
//! `workloads[].cpu`, sampled every 100 ms).

use super::doc::Block;
use crate::metrics::cpu::{SATURATED_PCT, VERDICT_MIN_S, WorkloadCpu, busiest};
use crate::record::RunSet;

/// What a workload's CPU says, in a table cell.
fn verdict(c: &WorkloadCpu) -> String {
    let Some(b) = busiest(&c.window) else {
        return "–".into();
    };
    if c.window.seconds < VERDICT_MIN_S {
        return "too short to tell".into();
    }
    match (b.hab_overhead, b.pct >= SATURATED_PCT) {
        (true, true) => "hab's overhead: measured hab, not the stack".into(),
        (false, true) => "this process limits the workload".into(),
        _ if c.window.machine_busy_pct >= SATURATED_PCT => "the machine's cores limit".into(),
        _ => "no process at a full core".into(),
    }
}

/// The CPU of hab's task threads (the work measured), summed over hab's processes, in
/// percent of one core; `–` when none ran a task.
fn task_work(c: &WorkloadCpu) -> String {
    let sum: f64 = c.window.roles.values().map(|r| r.task_pct).sum();
    if sum > 0.0 {
        format!("{sum:.0}")
    } else {
        "–".into()
    }
}

/// The section, empty when no run sampled CPU (runs written before hab did).
pub(super) fn busy_table(set: &RunSet) -> Vec<Block> {
    let rows: Vec<Vec<String>> = set
        .topologies
        .iter()
        .flat_map(|t| {
            t.runs.iter().enumerate().flat_map(move |(n, r)| {
                r.report.workloads.iter().filter_map(move |w| {
                    let c = w.cpu.as_ref()?;
                    let b = busiest(&c.window)?;
                    Some(vec![
                        t.name.clone(),
                        (n + 1).to_string(),
                        w.name.clone(),
                        b.role,
                        format!("{:.0}", b.pct),
                        task_work(c),
                        format!("{:.0}", c.window.machine_busy_pct),
                        format!("{:.0}", c.window.machine_steal_pct),
                        format!("{:.1}", c.window.seconds),
                        verdict(c),
                    ])
                })
            })
        })
        .collect();
    if rows.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading(2, "Who was busy".into()),
        Block::Para(format!(
            "CPU sampled every 100 ms from /proc, from each workload's start to the end of its drain: the busiest process and its share of one core (hab's own processes by their overhead only: a worker's threads running factorial or write_zeros are the work measured, shown apart as task work), the machine's busy and stolen share of all its cores, and the seconds sampled. A process at {SATURATED_PCT:.0} % of a core or more limits the workload; when that process is hab's, the workload measured hab rather than the stack (invariant `stack_not_hab_measured`). Windows under {VERDICT_MIN_S:.0} s get no verdict. Every sample is in each run directory's cpu.csv."
        )),
        Block::Table {
            head: [
                "topology",
                "run",
                "workload",
                "busiest",
                "% of a core",
                "machine %",
                "stolen %",
                "s",
                "verdict",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            rows,
            numeric: vec![
                false, true, false, false, true, true, true, true, true, false,
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::cpu::{CpuWindow, RoleCpu};

    fn cpu(seconds: f64, roles: &[(&str, f64, f64)], machine: f64) -> Option<WorkloadCpu> {
        let window = CpuWindow {
            seconds,
            roles: roles
                .iter()
                .map(|&(r, pct, task_pct)| (r.to_string(), RoleCpu { pct, task_pct }))
                .collect(),
            machine_busy_pct: machine,
            machine_steal_pct: 1.0,
        };
        Some(WorkloadCpu {
            window,
            busiest: None,
            summary: None,
        })
    }

    #[test]
    fn each_sampled_workload_gets_its_busiest_process_and_a_verdict() {
        let mut set = crate::compare::fixture::run_set();
        assert!(busy_table(&set).is_empty(), "no run sampled CPU");
        let runs = &mut set.topologies[0].runs[0].report.workloads;
        runs[0].cpu = cpu(
            5.0,
            &[("broker.node[0]", 97.0, 0.0), ("hab.producer", 40.0, 0.0)],
            80.0,
        );
        // The worker's task threads are its work: its overhead (10 %) is what counts.
        runs[1].cpu = cpu(
            4.0,
            &[("hab.worker w1", 99.0, 89.0), ("hab.producer", 95.0, 0.0)],
            99.0,
        );
        let md = super::super::doc::markdown(&busy_table(&set));
        crate::testing::assert_has(
            &md,
            &[
                "## Who was busy",
                "| standalone | 1 | trivial | broker.node[0] | 97 | – | 80 | 1 | 5.0 | this process limits the workload |",
                "| standalone | 1 | broker_kill | hab.producer | 95 | 89 | 99 | 1 | 4.0 | hab's overhead: measured hab, not the stack |",
            ],
        );
        let w = &mut set.topologies[0].runs[0].report.workloads[0];
        w.cpu = cpu(0.5, &[("proxy", 30.0, 0.0)], 95.0);
        assert_eq!(verdict(w.cpu.as_ref().unwrap()), "too short to tell");
        w.cpu = cpu(2.0, &[("proxy", 30.0, 0.0)], 95.0);
        assert_eq!(
            verdict(w.cpu.as_ref().unwrap()),
            "the machine's cores limit"
        );
        w.cpu = cpu(2.0, &[("proxy", 30.0, 0.0)], 50.0);
        assert_eq!(
            verdict(w.cpu.as_ref().unwrap()),
            "no process at a full core"
        );
    }
}
