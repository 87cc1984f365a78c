//! cpu.csv: every CPU sample of a run ([`crate::observe::cpu`]), one row per watched
//! process and one for the machine at each instant, as raw clock ticks; each workload's
//! percentages and busiest process are in run.json (`workloads[].cpu`).

use std::path::Path;

use anyhow::Result;

use crate::observe::cpu::CpuSample;

/// Column names of cpu.csv. `ticks` is user + system CPU time since the process started
/// (for `machine`: busy time of all cores since boot), `task_ticks` the part of a hab
/// process's ticks spent in task threads since sampling began; a role's CPU between two
/// rows is the growth of `ticks` over the elapsed time × `ticks_per_s`, while `pid` stays
/// the same.
pub const CPU_HEADER: [&str; 8] = [
    "at_unix_us",
    "role",
    "pid",
    "ticks",
    "task_ticks",
    "idle_ticks",
    "steal_ticks",
    "ticks_per_s",
];

/// Writes cpu.csv into `dir` (atomically, like every file of a run directory); nothing is
/// written without samples.
pub fn write_file(dir: &Path, samples: &[CpuSample], ticks_per_s: u64) -> Result<()> {
    if samples.is_empty() {
        return Ok(());
    }
    super::write_atomic_with(&dir.join("cpu.csv"), |out| write(samples, ticks_per_s, out))
}

fn write(samples: &[CpuSample], ticks_per_s: u64, out: &mut dyn std::io::Write) -> Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(CPU_HEADER)?;
    let tps = ticks_per_s.to_string();
    for s in samples {
        let at = s.at_unix_us.to_string();
        for (role, r) in &s.roles {
            w.write_record([
                at.as_str(),
                role,
                &r.pid.to_string(),
                &r.ticks.to_string(),
                &r.task_ticks.to_string(),
                "",
                "",
                &tps,
            ])?;
        }
        w.write_record([
            at.as_str(),
            "machine",
            "",
            &s.machine.busy.to_string(),
            "",
            &s.machine.idle.to_string(),
            &s.machine.steal.to_string(),
            &tps,
        ])?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::observe::cpu::{MachineTicks, RoleTicks};

    #[test]
    fn every_process_and_the_machine_get_a_row_per_sample() {
        let sample = |at: i64, ticks: u64| CpuSample {
            at_unix_us: at,
            roles: BTreeMap::from([(
                "broker.node[0]".to_string(),
                RoleTicks {
                    pid: 42,
                    ticks,
                    task_ticks: 0,
                },
            )]),
            machine: MachineTicks {
                busy: 10 * ticks,
                idle: 5,
                steal: 1,
            },
        };
        let dir = tempfile::tempdir().unwrap();
        write_file(dir.path(), &[sample(1, 3), sample(100_001, 13)], 100).unwrap();
        let text = std::fs::read_to_string(dir.path().join("cpu.csv")).unwrap();
        assert_eq!(
            text,
            "at_unix_us,role,pid,ticks,task_ticks,idle_ticks,steal_ticks,ticks_per_s\n\
             1,broker.node[0],42,3,0,,,100\n\
             1,machine,,30,,5,1,100\n\
             100001,broker.node[0],42,13,0,,,100\n\
             100001,machine,,130,,5,1,100\n"
        );
        let empty = tempfile::tempdir().unwrap();
        write_file(empty.path(), &[], 100).unwrap();
        assert!(!empty.path().join("cpu.csv").exists());
    }
}
