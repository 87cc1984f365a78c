//! Generator shards (`hab run --shard I/N`): one of N load generators, each driving 1/N of
//! every workload, so the load of one plan can be split across processes or hosts and the
//! shards' run directories merged afterwards (`hab merge`).
//!
//! The split is pure arithmetic on the plan, nothing negotiated at run time:
//! - **Tasks.** Task `i` of a workload (0-based, in schedule order) belongs to shard
//!   `i % N + 1`. The shards' tasks are disjoint and their union is the whole workload,
//!   for every count (a shard gets `⌈count / N⌉` or `⌊count / N⌋` of them).
//! - **Schedule.** Each shard keeps the intended offsets of its own tasks from the whole
//!   schedule: a burst is all at t0 on every shard; a rate schedule at `rate` tasks/s
//!   becomes `rate / N` per shard, shard `I` shifted by `(I − 1) / rate`, so the union of
//!   the shards' schedules is the original one (given shards that start together:
//!   `--start-at`, [`crate::load::start`]).
//! - **Task ids.** A shard's ids are UUID version 8 whose first four bytes are `I` and `N`
//!   (16 bits each, big endian): `00020003-…` is a task of shard 2 of 3. Ids of two shards
//!   differ in those bytes, so they are disjoint by construction, and every id says which
//!   shard published it ([`Shard::of_task_id`]). The other 90 bits are random, so ids of
//!   separate runs on one stack do not collide either.
//! - **Faults.** Shard 1 applies every fault of the workload plan; the other shards only
//!   drive load, and their run.json says that the faults belong to shard 1. On a stack the
//!   shards share, one shard breaking it is the fault the plan describes (N shards each
//!   applying it would break it N times). When each shard has its own local stack, only
//!   shard 1's stack is broken, so `hab merge` analyses the failover rows on shard 1's
//!   tasks only ([`crate::record::StackScope`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::load::Schedule;

/// The shard that applies a sharded plan's faults.
pub const FAULT_SHARD: u32 = 1;

/// One shard of N: `index` from 1 to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    /// Which shard, 1-based.
    pub index: u32,
    /// How many shards the load is split into.
    pub count: u32,
}

/// Why `I/N` is not a shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad shard {given:?}: {why}; give I/N with 1 <= I <= N <= {max}, e.g. 1/2")]
pub struct ShardParseError {
    /// The text given.
    pub given: String,
    /// What is wrong with it.
    pub why: String,
    /// The largest N allowed.
    pub max: u32,
}

/// The largest shard count: the count is 16 bits of every task id.
pub const MAX_SHARDS: u32 = u16::MAX as u32;

impl FromStr for Shard {
    type Err = ShardParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why: &str| ShardParseError {
            given: s.to_string(),
            why: why.to_string(),
            max: MAX_SHARDS,
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| err("no '/' between I and N"))?;
        let i: u32 = i
            .trim()
            .parse()
            .map_err(|_| err("I is not a whole number"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| err("N is not a whole number"))?;
        if n == 0 {
            return Err(err("N must be at least 1"));
        }
        if n > MAX_SHARDS {
            return Err(err("N is too large"));
        }
        if i == 0 || i > n {
            return Err(err(&format!("I must be between 1 and {n}")));
        }
        Ok(Shard { index: i, count: n })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The whole load (an unsharded run is shard 1 of 1).
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether task `i` (0-based, schedule order) of a workload belongs to this shard.
    pub fn owns(&self, i: u64) -> bool {
        i % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// How many of a workload's `total` tasks belong to this shard.
    pub fn tasks_in(&self, total: u64) -> u64 {
        let first = u64::from(self.index - 1);
        if total <= first {
            0
        } else {
            (total - first).div_ceil(u64::from(self.count))
        }
    }

    /// The indices (in the whole workload) of this shard's tasks, in schedule order.
    pub fn indices(&self, total: u64) -> impl Iterator<Item = u64> + use<> {
        (u64::from(self.index - 1)..total).step_by(self.count as usize)
    }

    /// The intended offsets (µs from the workload's t0) of this shard's tasks: the whole
    /// schedule's offsets of the tasks it owns.
    pub fn offsets_us(&self, schedule: &Schedule) -> impl Iterator<Item = u64> + use<> {
        let s = *schedule;
        self.indices(s.count()).map(move |i| s.offset_us(i))
    }

    /// Whether this shard applies the workload plan's faults (shard 1 does).
    pub fn applies_faults(&self) -> bool {
        self.index == FAULT_SHARD
    }

    /// A new task id of this shard: UUID version 8, `index` and `count` in its first four
    /// bytes, random elsewhere.
    pub fn task_id(&self) -> Uuid {
        let mut bytes = *Uuid::new_v4().as_bytes();
        bytes[0..2].copy_from_slice(&(self.index as u16).to_be_bytes());
        bytes[2..4].copy_from_slice(&(self.count as u16).to_be_bytes());
        uuid::Builder::from_custom_bytes(bytes).into_uuid()
    }

    /// The shard a task id was made by ([`Shard::task_id`]); `None` for any other id (an
    /// unsharded run's random version 4 ids).
    pub fn of_task_id(id: &Uuid) -> Option<Shard> {
        if id.get_version_num() != 8 {
            return None;
        }
        let b = id.as_bytes();
        let index = u32::from(u16::from_be_bytes([b[0], b[1]]));
        let count = u32::from(u16::from_be_bytes([b[2], b[3]]));
        (index >= 1 && index <= count).then_some(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_i_of_n_and_refuses_anything_else() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("1/1".parse::<Shard>(), Ok(Shard::WHOLE));
        assert_eq!(Shard { index: 2, count: 3 }.to_string(), "2/3");
        for (bad, why) in [
            ("0/2", "I must be between 1 and 2"),
            ("3/2", "I must be between 1 and 2"),
            ("1/0", "N must be at least 1"),
            ("2", "no '/'"),
            ("a/2", "I is not a whole number"),
            ("1/-2", "N is not a whole number"),
            ("1/70000", "N is too large"),
        ] {
            let e = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("give I/N"), "{bad}: {e}");
        }
    }

    /// The union of the shards' tasks is the whole workload, each task in exactly one
    /// shard, and each shard's count is what `tasks_in` says.
    #[test]
    fn shards_partition_every_count() {
        for n in 1..=5u32 {
            for total in [0u64, 1, 2, 3, 4, 5, 7, 11, 13, 97, 100, 1001] {
                let mut seen = vec![0u32; total as usize];
                for i in 1..=n {
                    let s = Shard { index: i, count: n };
                    let mine: Vec<u64> = s.indices(total).collect();
                    assert_eq!(mine.len() as u64, s.tasks_in(total), "{s} of {total}");
                    for &k in &mine {
                        assert!(s.owns(k));
                        seen[k as usize] += 1;
                    }
                }
                assert!(seen.iter().all(|&c| c == 1), "N={n} total={total}");
            }
        }
    }

    fn union_of_offsets(schedule: Schedule, n: u32) -> Vec<u64> {
        let mut all: Vec<u64> = (1..=n)
            .flat_map(|i| Shard { index: i, count: n }.offsets_us(&schedule))
            .collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn union_of_shard_schedules_is_the_whole_schedule() {
        for n in 1..=5 {
            for count in [0, 1, 3, 7, 200, 1001] {
                for schedule in [
                    Schedule::Burst { count },
                    Schedule::Rate {
                        count,
                        per_s: 400.0,
                    },
                    Schedule::Rate { count, per_s: 3.0 },
                ] {
                    let whole: Vec<u64> = schedule.offsets_us().collect();
                    assert_eq!(union_of_offsets(schedule, n), whole, "{schedule:?} N={n}");
                }
            }
        }
    }

    #[test]
    fn a_rate_shard_runs_at_rate_over_n_shifted_by_its_index() {
        let s = Schedule::Rate {
            count: 8,
            per_s: 1000.0,
        };
        let second = Shard { index: 2, count: 4 };
        assert_eq!(
            second.offsets_us(&s).collect::<Vec<_>>(),
            vec![1_000, 5_000],
            "250/s, first at 1 ms"
        );
        // Fewer tasks than shards: the last shards have none.
        let tiny = Schedule::Rate {
            count: 2,
            per_s: 10.0,
        };
        assert_eq!(Shard { index: 3, count: 3 }.offsets_us(&tiny).count(), 0);
    }

    #[test]
    fn task_ids_name_their_shard_and_never_collide_across_shards() {
        let a = Shard { index: 1, count: 2 };
        let b = Shard { index: 2, count: 2 };
        let ia = a.task_id();
        let ib = b.task_id();
        assert!(ia.to_string().starts_with("00010002-"), "{ia}");
        assert!(ib.to_string().starts_with("00020002-"), "{ib}");
        assert_eq!(Shard::of_task_id(&ia), Some(a));
        assert_eq!(Shard::of_task_id(&ib), Some(b));
        assert_ne!(ia.as_bytes()[..4], ib.as_bytes()[..4]);
        // Distinct within a shard too (random bits), and unsharded ids name no shard.
        assert_ne!(a.task_id(), a.task_id());
        assert_eq!(Shard::of_task_id(&Uuid::new_v4()), None);
        // Parses back from its text, as tasks.csv holds it.
        assert_eq!(Uuid::parse_str(&ia.to_string()).unwrap(), ia);
    }

    #[test]
    fn only_shard_one_applies_faults() {
        assert!(Shard { index: 1, count: 3 }.applies_faults());
        assert!(!Shard { index: 2, count: 3 }.applies_faults());
        assert!(Shard::WHOLE.applies_faults());
    }
}
