//! The residual start skew of merged shards: per workload (repetition), how far apart the
//! shards' schedule origins were, from what each shard recorded (run.json
//! `shard.starts`). Shards on one host share its clock; across hosts the figure relies
//! on their wall clocks agreeing (hab measures no offset between hosts: each shard's
//! clock is anchored on its own host's wall clock, [`crate::clock`]).

use crate::load::start::skew_us;
#[cfg(test)]
use crate::record::merge::skew_lines;
use crate::record::{StartSkew, SyncKind, SyncOutcome, WorkloadStart};

/// The start skew of every workload (repetition) that at least two shards recorded, in
/// the order the shards ran them.
pub(super) fn start_skew(shards: &[(u32, &[WorkloadStart])]) -> Vec<StartSkew> {
    let mut order: Vec<(String, u32)> = Vec::new();
    for (_, starts) in shards {
        for s in starts.iter() {
            let key = (s.workload.clone(), s.repetition);
            if !order.contains(&key) {
                order.push(key);
            }
        }
    }
    let mut out = Vec::new();
    for (workload, repetition) in order {
        let of: Vec<(u32, &WorkloadStart)> = shards
            .iter()
            .filter_map(|(i, starts)| {
                starts
                    .iter()
                    .find(|s| s.workload == workload && s.repetition == repetition)
                    .map(|s| (*i, s))
            })
            .collect();
        let t0: Vec<(u32, i64)> = of.iter().map(|(i, s)| (*i, s.t0_unix_us)).collect();
        let Some((skew, first_shard, last_shard)) = skew_us(&t0) else {
            continue;
        };
        let published: Vec<(u32, i64)> = of
            .iter()
            .filter_map(|(i, s)| Some((*i, s.first_published_unix_us?)))
            .collect();
        let first_publish_skew_ms = skew_us(&published)
            .filter(|_| published.len() == of.len())
            .map(|(d, _, _)| d as f64 / 1000.0);
        // The strongest meeting any shard tried (they all try the same one).
        let sync = of
            .iter()
            .map(|(_, s)| s.sync)
            .find(|k| *k != SyncKind::None)
            .unwrap_or(SyncKind::None);
        let not_met = of
            .iter()
            .filter_map(|(i, s)| match s.outcome {
                SyncOutcome::Late => Some(format!(
                    "shard {i} was {:.0} ms late for the start instant",
                    s.late_ms.unwrap_or(0.0)
                )),
                SyncOutcome::TimedOut => Some(format!(
                    "shard {i} timed out at the barrier after {:.0} ms ({} of the shards had arrived)",
                    s.waited_ms,
                    s.arrived.map_or("?".into(), |a| a.to_string())
                )),
                SyncOutcome::Failed => Some(format!(
                    "shard {i}: the barrier failed ({})",
                    s.error.as_deref().unwrap_or("unknown error")
                )),
                SyncOutcome::None | SyncOutcome::Met => None,
            })
            .collect();
        out.push(StartSkew {
            workload,
            repetition,
            skew_ms: skew as f64 / 1000.0,
            first_publish_skew_ms,
            first_shard,
            last_shard,
            sync,
            not_met,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(workload: &str, rep: u32, sync: SyncKind, t0: i64) -> WorkloadStart {
        WorkloadStart {
            workload: workload.into(),
            repetition: rep,
            sync,
            outcome: if sync == SyncKind::None {
                SyncOutcome::None
            } else {
                SyncOutcome::Met
            },
            waited_ms: 0.0,
            late_ms: None,
            arrived: None,
            error: None,
            t0_unix_us: t0,
            first_published_unix_us: Some(t0 + 100),
        }
    }

    #[test]
    fn skew_per_workload_is_latest_minus_earliest_origin() {
        let a = vec![
            start("burst", 1, SyncKind::StartAt, 1_000_000),
            start("rate", 1, SyncKind::Barrier, 5_000_000),
        ];
        let mut late = start("rate", 1, SyncKind::Barrier, 5_004_500);
        late.outcome = SyncOutcome::TimedOut;
        late.waited_ms = 2_000.0;
        late.arrived = Some(1);
        let b = vec![start("burst", 1, SyncKind::StartAt, 1_002_000), late];
        let s = start_skew(&[(1, &a), (2, &b)]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].workload, "burst");
        assert_eq!(s[0].skew_ms, 2.0);
        assert_eq!(s[0].first_publish_skew_ms, Some(2.0));
        assert_eq!((s[0].first_shard, s[0].last_shard), (1, 2));
        assert_eq!(s[0].sync, SyncKind::StartAt);
        assert!(s[0].not_met.is_empty());
        assert_eq!(s[1].skew_ms, 4.5);
        assert_eq!(s[1].sync, SyncKind::Barrier);
        assert_eq!(s[1].not_met.len(), 1);
        assert!(
            s[1].not_met[0].contains("shard 2 timed out"),
            "{:?}",
            s[1].not_met
        );
        let lines = skew_lines(&s);
        assert_eq!(
            lines[0],
            "burst: 2.0 ms (shard 1 first, shard 2 last; --start-at instant)"
        );
        assert!(lines[1].contains("timed out"), "{lines:?}");
    }

    #[test]
    fn a_workload_only_one_shard_recorded_has_no_skew() {
        let a = vec![start("burst", 1, SyncKind::None, 10)];
        let b: Vec<WorkloadStart> = Vec::new();
        assert!(start_skew(&[(1, &a), (2, &b)]).is_empty());
        assert!(start_skew(&[]).is_empty());
    }

    #[test]
    fn repetitions_are_measured_apart() {
        let a = vec![
            start("w", 1, SyncKind::StartAt, 0),
            start("w", 2, SyncKind::Barrier, 10_000),
        ];
        let b = vec![
            start("w", 1, SyncKind::StartAt, 300),
            start("w", 2, SyncKind::Barrier, 10_100),
        ];
        let s = start_skew(&[(1, &a), (2, &b)]);
        assert_eq!(
            s.iter().map(|x| x.skew_ms).collect::<Vec<_>>(),
            vec![0.3, 0.1]
        );
        assert!(skew_lines(&s)[1].starts_with("w (repetition 2): 0.1 ms"));
    }
}
