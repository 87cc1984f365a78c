//! What the producer's policy did around a broker outage (issue 6 item 2,
//! `workloads/broker-outage.toml`): per broker fault, how soon the producer failed fast,
//! the tasks it refused, gave up, delayed, lost or ran twice, and how soon it resumed
//! once the broker was back; plus every circuit-breaker state change with its time.
//! Kept in run.json `producer`; the breaker's state also goes on the timeline.
//!
//! Definitions (all offsets in ms):
//! - `first_refused_ms` / `first_gave_up_ms`: fault → the first task refused by the open
//!   breaker / given up after its attempts (`refused_unix_us` in tasks.csv). `block`
//!   never fails: both stay empty.
//! - `restored_ms`: fault → the broker brought back (restart spawned, or SIGCONT).
//! - `ready_ms`: fault → the broker back, answering again (a restarted node once it
//!   accepts AMQP, after its boot; a resumed one at once). "Back" below is this moment
//!   (or `restored_ms` when it is unknown), so the resume times are the policy's own.
//! - `resume_publish_ms`: broker back → the first publish confirmed after it.
//! - `resume_complete_ms`: broker back → the first result seen after it of a task
//!   confirmed after it (the first task that went through end to end).
//! - `delayed`: tasks completed ok whose latency (from the intended start, so no
//!   coordinated omission) exceeds [`DELAYED_US`].
//! - tasks are those of the fault's workload intended from 1 s before the fault until 1 s
//!   before the next fault of the workload, plus earlier ones the producer was still busy
//!   with after the fault (published, refused or completed after it: a producer behind its
//!   schedule).

use serde::{Deserialize, Serialize};

use crate::event::BreakerState;
use crate::fault::AppliedFault;
use crate::ledger::{ConfirmState, Outcome, TaskRecord};

/// A completed task is `delayed` when its latency exceeds this, µs (1 s: a trivial task
/// takes about a millisecond end to end on an idle stack).
pub const DELAYED_US: i64 = 1_000_000;
/// Tasks intended this long before a fault count towards it, µs.
const WINDOW_BEFORE_US: i64 = 1_000_000;

/// One state change of the producer's circuit breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerTransition {
    /// When it happened, unix µs.
    pub at_unix_us: i64,
    /// Index of the workload running then.
    pub workload: usize,
    /// State before.
    pub from: BreakerState,
    /// State after.
    pub to: BreakerState,
}

/// run.json `producer`: the policy and what it did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProducerReport {
    /// `block`, `retry` or `breaker`.
    pub policy: String,
    /// Every breaker state change, in order (empty unless `policy = "breaker"`).
    #[serde(default)]
    pub transitions: Vec<BreakerTransition>,
    /// One row per applied fault on the broker.
    #[serde(default)]
    pub outages: Vec<OutageRow>,
}

/// What happened around one broker fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutageRow {
    /// Workload name.
    pub workload: String,
    /// The role named in the file.
    pub target: String,
    /// kill, pause or stop.
    pub kind: String,
    /// Repetition number, from 0.
    pub repetition: u32,
    /// The producer's policy.
    pub policy: String,
    /// When the fault was applied, unix ms.
    pub fault_at_unix_ms: i64,
    /// Fault → broker brought back (restart spawned, SIGCONT), ms.
    pub restored_ms: Option<f64>,
    /// Fault → broker answering again (restarted node accepting AMQP, resumed node), ms.
    #[serde(default)]
    pub ready_ms: Option<f64>,
    /// Fault → first task refused by the open breaker, ms.
    pub first_refused_ms: Option<f64>,
    /// Fault → first task given up after its attempts, ms.
    pub first_gave_up_ms: Option<f64>,
    /// Fault → the breaker opened (first closed → open after the fault), ms.
    pub breaker_open_ms: Option<f64>,
    /// Broker back → the breaker closed again, ms.
    pub breaker_closed_ms: Option<f64>,
    /// Broker back → first publish confirmed, ms.
    pub resume_publish_ms: Option<f64>,
    /// Broker back → first result seen of a task confirmed after the return, ms.
    pub resume_complete_ms: Option<f64>,
    /// Tasks in the window.
    pub tasks: u64,
    /// Completed ok.
    pub ok: u64,
    /// Refused by the open breaker (never published).
    pub refused: u64,
    /// Given up after the policy's attempts.
    pub gave_up: u64,
    /// Completed ok later than [`DELAYED_US`] after their intended start.
    pub delayed: u64,
    /// Accepted by the broker (or confirms off), never executed. (In a run written before
    /// hab counted them apart, `result_lost` and `unconfirmed` are absent and this holds
    /// all three.)
    pub lost: u64,
    /// Executed, result never seen. `None`: a run written before hab counted it apart.
    #[serde(default)]
    pub result_lost: Option<u64>,
    /// Never executed, publish never confirmed. `None`: a run written before hab counted
    /// it apart.
    #[serde(default)]
    pub unconfirmed: Option<u64>,
    /// Executed more than once.
    pub duplicated: u64,
}

impl OutageRow {
    /// The earlier of the first refusal and the first give-up, ms from the fault: how
    /// soon a caller heard "no".
    pub fn first_failure_ms(&self) -> Option<f64> {
        match (self.first_refused_ms, self.first_gave_up_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn ms(at: i64, from: i64) -> f64 {
    (at - from) as f64 / 1000.0
}

/// The row of fault `f` of workload `name`, from that workload's `tasks` (side channel
/// merged) and the run's breaker `transitions`. `next_fault_at` is the next applied fault
/// of the same workload, unix µs.
pub fn analyse(
    f: &AppliedFault,
    name: &str,
    policy: &str,
    next_fault_at: Option<i64>,
    tasks: &[TaskRecord],
    transitions: &[BreakerTransition],
) -> OutageRow {
    let at = f.fault_at_unix_us;
    let start = at - WINDOW_BEFORE_US;
    let end = next_fault_at.map_or(i64::MAX, |n| n - WINDOW_BEFORE_US);
    let mut row = OutageRow {
        workload: name.to_string(),
        target: f.target.to_string(),
        kind: f.kind.as_str().to_string(),
        repetition: f.repetition,
        policy: policy.to_string(),
        fault_at_unix_ms: at / 1000,
        restored_ms: f.restored_at_unix_us.map(|r| ms(r, at)),
        ready_ms: f.ready_at_unix_us.map(|r| ms(r, at)),
        result_lost: Some(0),
        unconfirmed: Some(0),
        ..OutageRow::default()
    };
    let back = f.ready_at_unix_us.or(f.restored_at_unix_us);
    let mut first_refused = None::<i64>;
    let mut first_gave_up = None::<i64>;
    let mut first_confirm = None::<i64>;
    let mut first_complete = None::<i64>;
    // A producer that fell behind its schedule publishes (or refuses) tasks meant for
    // before the window during the outage: those count too.
    let active_after_fault = |t: &TaskRecord| {
        // (Not the confirmation time: a blocked producer records it late.)
        [
            t.published_unix_us,
            t.result_seen_unix_us,
            t.refused_unix_us,
        ]
        .into_iter()
        .flatten()
        .any(|x| x >= at)
    };
    for t in tasks.iter().filter(|t| {
        t.intended_unix_us < end && (t.intended_unix_us >= start || active_after_fault(t))
    }) {
        let c = t.classify();
        row.tasks += 1;
        match c.outcome {
            Outcome::Ok => {
                row.ok += 1;
                if t.latency_us().is_some_and(|l| l > DELAYED_US) {
                    row.delayed += 1;
                }
            }
            Outcome::Refused => row.refused += 1,
            Outcome::GaveUp => row.gave_up += 1,
            Outcome::Lost => row.lost += 1,
            Outcome::ResultLost => *row.result_lost.get_or_insert(0) += 1,
            Outcome::Unconfirmed => *row.unconfirmed.get_or_insert(0) += 1,
            // Not finished by the drain deadline, or result unknown: not lost.
            Outcome::Failed
            | Outcome::Revoked
            | Outcome::UnfinishedRunning
            | Outcome::UnfinishedQueued
            | Outcome::Unknown => {}
        }
        row.duplicated += u64::from(c.duplicated);
        if let Some(r) = t.refused_unix_us.filter(|&r| r >= at) {
            let first = match t.confirm {
                ConfirmState::Refused => &mut first_refused,
                _ => &mut first_gave_up,
            };
            *first = Some(first.map_or(r, |x| x.min(r)));
        }
        // A confirmation is recorded when the producer gets to it, which can be long after
        // it arrived (a blocked producer): a task whose result was seen before the return
        // went through before the outage, whatever its confirmation time says.
        if let (Some(back), Some(conf)) = (back, t.confirmed_unix_us)
            && conf >= back
            && t.result_seen_unix_us.is_none_or(|s| s >= back)
        {
            first_confirm = Some(first_confirm.map_or(conf, |x| x.min(conf)));
            if let Some(seen) = t.result_seen_unix_us {
                first_complete = Some(first_complete.map_or(seen, |x| x.min(seen)));
            }
        }
    }
    row.first_refused_ms = first_refused.map(|r| ms(r, at));
    row.first_gave_up_ms = first_gave_up.map(|r| ms(r, at));
    if let Some(back) = back {
        row.resume_publish_ms = first_confirm.map(|c| ms(c, back));
        row.resume_complete_ms = first_complete.map(|c| ms(c, back));
    }
    let after = |t: &&BreakerTransition| t.at_unix_us >= at && t.at_unix_us < end;
    row.breaker_open_ms = transitions
        .iter()
        .filter(after)
        .find(|t| t.to == BreakerState::Open)
        .map(|t| ms(t.at_unix_us, at));
    if let Some(back) = back {
        row.breaker_closed_ms = transitions
            .iter()
            .filter(after)
            .find(|t| t.to == BreakerState::Closed && t.at_unix_us >= back)
            .map(|t| ms(t.at_unix_us, back));
    }
    row
}

/// The breaker's worst state during each unix second `[from_s, from_s + n)`: open beats
/// half-open beats closed (the breaker starts closed). `transitions` in time order.
pub fn state_per_second(
    transitions: &[BreakerTransition],
    from_s: i64,
    n: usize,
) -> Vec<BreakerState> {
    let mut out = Vec::with_capacity(n);
    let mut state = BreakerState::Closed;
    let mut k = 0;
    for i in 0..n as i64 {
        let sec = from_s + i;
        let (lo, hi) = (sec * 1_000_000, (sec + 1) * 1_000_000);
        // Changes before this second only set where it starts.
        while k < transitions.len() && transitions[k].at_unix_us < lo {
            state = transitions[k].to;
            k += 1;
        }
        let mut worst = state;
        while k < transitions.len() && transitions[k].at_unix_us < hi {
            state = transitions[k].to;
            worst = worst.max(state);
            k += 1;
        }
        out.push(worst);
    }
    out
}

/// Put the breaker's state of each second on the timeline (`policy = "breaker"` only).
pub fn annotate_timeline(rows: &mut [super::timeline::TimelineRow], p: &ProducerReport) {
    if p.policy != crate::config::PolicyKind::Breaker.as_str() {
        return;
    }
    let Some(first) = rows.first().map(|r| r.unix_s) else {
        return;
    };
    let states = state_per_second(&p.transitions, first, rows.len());
    for (r, s) in rows.iter_mut().zip(states) {
        r.breaker = Some(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::result::ResultStatus;
    use uuid::Uuid;

    const T0: i64 = 1_700_000_000_000_000;

    fn fault() -> AppliedFault {
        AppliedFault::broker_kill(T0, T0 + 3_000_000, Some(T0 + 4_000_000), T0 + 9_000_000)
    }

    fn task(intended: i64) -> TaskRecord {
        let mut t = TaskRecord::new(Uuid::new_v4(), 0, intended);
        t.published_unix_us = Some(intended);
        t
    }

    fn done(intended: i64, confirmed: i64, seen: i64) -> TaskRecord {
        let mut t = task(intended);
        t.confirm = ConfirmState::Acked;
        t.confirmed_unix_us = Some(confirmed);
        t.result_seen_unix_us = Some(seen);
        t.result_status = Some(ResultStatus::Success);
        t.executions.push(crate::ledger::Execution {
            worker: "w1".into(),
            started_unix_us: seen - 100,
            finished_unix_us: Some(seen - 50),
            succeeded: Some(true),
        });
        t
    }

    fn refused(intended: i64, state: ConfirmState) -> TaskRecord {
        let mut t = task(intended);
        t.confirm = state;
        t.refused_unix_us = Some(intended.max(T0) + 10_000);
        t
    }

    fn tr(at: i64, from: BreakerState, to: BreakerState) -> BreakerTransition {
        BreakerTransition {
            at_unix_us: at,
            workload: 0,
            from,
            to,
        }
    }

    #[test]
    fn an_outage_row_counts_lost_result_lost_and_unconfirmed_apart() {
        let lost = {
            let mut t = task(T0 + 100_000);
            t.confirm = ConfirmState::Acked;
            t
        };
        let result_lost = {
            let mut t = done(T0 + 200_000, T0 + 200_500, T0 + 300_000);
            (t.result_seen_unix_us, t.result_status) = (None, None);
            t
        };
        let unconfirmed = task(T0 + 300_000); // confirmation still pending, never run
        let tasks = [
            lost,
            result_lost.clone(),
            result_lost,
            unconfirmed.clone(),
            unconfirmed.clone(),
            unconfirmed,
        ];
        let r = analyse(&fault(), "outage", "retry", None, &tasks, &[]);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (&json["lost"], &json["result_lost"], &json["unconfirmed"]),
            (
                &serde_json::json!(1),
                &serde_json::json!(2),
                &serde_json::json!(3)
            ),
            "{json}"
        );
    }

    #[test]
    fn an_outage_row_counts_each_kind_of_task_and_times_the_recovery() {
        let tasks = vec![
            // Before the window: not counted.
            done(T0 - 5_000_000, T0 - 4_999_000, T0 - 4_998_000),
            // Meant for before the window, but the producer, behind its schedule, gave it
            // up after the fault: counted.
            refused(T0 - 1_900_000, ConfirmState::GaveUp),
            // In flight at the fault, done late: delayed.
            done(T0 - 500_000, T0 + 6_000_000, T0 + 6_100_000),
            refused(T0 + 300_000, ConfirmState::GaveUp),
            refused(T0 + 800_000, ConfirmState::Refused),
            refused(T0 + 900_000, ConfirmState::Refused),
            {
                let mut t = task(T0 + 1_000_000);
                t.confirm = ConfirmState::Acked;
                t.confirmed_unix_us = Some(T0 + 1_000_500);
                t // confirmed, never executed: lost
            },
            // First publish after the return (4 s) confirmed at 4.5 s, done at 4.6 s.
            done(T0 + 4_400_000, T0 + 4_500_000, T0 + 4_600_000),
            done(T0 + 4_450_000, T0 + 4_700_000, T0 + 4_550_000),
            // Its confirmation recorded after the return, its result seen before: not a
            // resume.
            done(T0 - 200_000, T0 + 4_200_000, T0 + 100_000),
        ];
        let transitions = vec![
            tr(T0 + 310_000, BreakerState::Closed, BreakerState::Open),
            tr(T0 + 2_310_000, BreakerState::Open, BreakerState::HalfOpen),
            tr(T0 + 2_400_000, BreakerState::HalfOpen, BreakerState::Open),
            tr(T0 + 4_400_000, BreakerState::Open, BreakerState::HalfOpen),
            tr(T0 + 4_500_000, BreakerState::HalfOpen, BreakerState::Closed),
        ];
        let r = analyse(&fault(), "outage", "breaker", None, &tasks, &transitions);
        assert_eq!(
            (r.tasks, r.ok, r.refused, r.gave_up, r.lost, r.delayed),
            (9, 4, 2, 2, 1, 1)
        );
        assert_eq!(r.first_gave_up_ms, Some(10.0));
        assert_eq!(r.first_refused_ms, Some(810.0));
        assert_eq!(r.first_failure_ms(), Some(10.0));
        assert_eq!((r.restored_ms, r.ready_ms), (Some(3000.0), Some(4000.0)));
        assert_eq!(r.breaker_open_ms, Some(310.0));
        assert_eq!(r.breaker_closed_ms, Some(500.0));
        assert_eq!(r.resume_publish_ms, Some(500.0));
        assert_eq!(r.resume_complete_ms, Some(550.0), "the earliest result");
        // A next fault cuts the window 1 s before it.
        let r = analyse(
            &fault(),
            "outage",
            "breaker",
            Some(T0 + 1_500_000),
            &tasks,
            &[],
        );
        assert_eq!((r.tasks, r.gave_up, r.refused), (4, 2, 0));
        // The task in flight at the fault, confirmed 2 s after the return, is still in.
        assert_eq!(
            (r.resume_publish_ms, r.breaker_open_ms),
            (Some(2000.0), None)
        );
    }

    #[test]
    fn block_never_fails_fast() {
        let tasks = vec![done(T0 + 100_000, T0 + 5_000_000, T0 + 5_100_000)];
        let r = analyse(&fault(), "outage", "block", None, &tasks, &[]);
        assert_eq!((r.first_failure_ms(), r.delayed, r.refused), (None, 1, 0));
        assert_eq!(r.resume_publish_ms, Some(1000.0));
    }

    #[test]
    fn the_worst_state_of_each_second_is_kept() {
        let s = 1_700_000_000;
        let at = |ms: i64| s * 1_000_000 + ms * 1000;
        let t = vec![
            tr(at(1200), BreakerState::Closed, BreakerState::Open),
            tr(at(3100), BreakerState::Open, BreakerState::HalfOpen),
            tr(at(3200), BreakerState::HalfOpen, BreakerState::Closed),
        ];
        use BreakerState::*;
        assert_eq!(
            state_per_second(&t, s, 5),
            [Closed, Open, Open, Open, Closed]
        );
        assert_eq!(state_per_second(&[], s, 2), [Closed, Closed]);
        // Changes before the first second only set the starting state.
        assert_eq!(state_per_second(&t, s + 2, 2), [Open, Open]);
    }
}
