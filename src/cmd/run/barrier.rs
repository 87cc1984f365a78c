//! Shards that start together ([`crate::load::start`]): before the first workload every
//! shard waits for the `--start-at` instant; before each later workload (and repetition)
//! the shards meet at a barrier kept on the shared stack's Redis (the result backend, as
//! the run reaches it: directly, through HAProxy or through the Sentinels), so no
//! coordination service is added.
//!
//! A barrier: each arriving shard `INCR`s the counter; the one that makes it N pushes N − 1
//! tokens onto the release list and goes on, the others `BLPOP` a token (in steps of at
//! most a second, under the client's response timeout). Both keys expire. Not every shard
//! arriving within `--barrier-timeout` is an outcome (`timed_out`, with how many had
//! arrived) and a warning, never a hang; a barrier Redis cannot keep (an error) is
//! `failed`, and the shard goes on at once.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::backend::RedisConn;
use crate::load::shard::Shard;
use crate::load::start::{BarrierKeys, StartAt};
use crate::record::{SyncKind, SyncOutcome};

/// The default `--barrier-timeout`.
pub const DEFAULT_BARRIER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the barrier keys outlive the timeout (a shard arriving later still finds
/// the counter, and nothing is left behind for long).
const KEY_MARGIN: Duration = Duration::from_secs(60);
/// The longest single BLPOP: well under the Redis client's response timeout.
const BLPOP_STEP: Duration = Duration::from_secs(1);

/// What `--start-at` asks of a shard.
#[derive(Debug, Clone, Copy)]
pub struct StartOptions {
    /// The instant of the first workload.
    pub at: StartAt,
    /// How long a shard waits at a barrier for the others.
    pub barrier_timeout: Duration,
}

/// What came of one meeting.
#[derive(Debug, Clone)]
pub(super) struct Meeting {
    pub(super) sync: SyncKind,
    pub(super) outcome: SyncOutcome,
    pub(super) waited_ms: f64,
    pub(super) late_ms: Option<f64>,
    pub(super) arrived: Option<u64>,
    pub(super) error: Option<String>,
}

impl Meeting {
    /// No meeting: a shard without `--start-at`.
    pub(super) fn none() -> Self {
        Meeting {
            sync: SyncKind::None,
            outcome: SyncOutcome::None,
            waited_ms: 0.0,
            late_ms: None,
            arrived: None,
            error: None,
        }
    }

    /// The warning a meeting that did not go as planned deserves.
    pub(super) fn warning(&self, shard: Shard, workload: &str) -> Option<String> {
        match self.outcome {
            SyncOutcome::Late => Some(format!(
                "shard {shard} reached the --start-at instant {:.0} ms late (bring-up and warm-up took longer); workload {workload} started at once, and the merge's start skew shows it",
                self.late_ms.unwrap_or(0.0)
            )),
            SyncOutcome::TimedOut => Some(format!(
                "shard {shard}: only {} of {} shards reached the barrier before workload {workload} within {:.0} s; started anyway (run.json shard.starts)",
                self.arrived.unwrap_or(0),
                shard.count,
                self.waited_ms / 1000.0
            )),
            SyncOutcome::Failed => Some(format!(
                "shard {shard}: the barrier before workload {workload} failed ({}); started at once",
                self.error.as_deref().unwrap_or("unknown error")
            )),
            SyncOutcome::None | SyncOutcome::Met => None,
        }
    }
}

/// The shards' meetings of one run: the instant, and the barriers on the backend.
pub(super) struct Rendezvous {
    start: StartOptions,
    shard: Shard,
    run_key: String,
    /// The backend the shards share; `None` with a local stack per shard (no barriers).
    backend_url: Option<String>,
    /// The barrier's own connection (a BLPOP holds a connection), opened at the first
    /// barrier.
    conn: Option<RedisConn>,
}

impl Rendezvous {
    pub(super) fn new(
        start: StartOptions,
        shard: Shard,
        plan: &str,
        backend_url: Option<&str>,
    ) -> Self {
        Rendezvous {
            start,
            shard,
            run_key: start.at.run_key(plan, shard),
            backend_url: backend_url.map(str::to_string),
            conn: None,
        }
    }

    /// Wait for the `--start-at` instant (by the wall clock, which every shard on a host
    /// shares). Past it: at once, late.
    pub(super) async fn wait_for_instant(&self, cancel: &CancellationToken) -> Meeting {
        let began = Instant::now();
        let (outcome, late_ms) = match self.start.at.wait_from(crate::clock::wall_unix_us()) {
            Ok(d) => {
                tokio::select! {
                    _ = cancel.cancelled() => {}
                    _ = sleep_precisely(began + d) => {}
                }
                (SyncOutcome::Met, None)
            }
            Err(late) => (SyncOutcome::Late, Some(late.as_secs_f64() * 1000.0)),
        };
        Meeting {
            sync: SyncKind::StartAt,
            outcome,
            waited_ms: began.elapsed().as_secs_f64() * 1000.0,
            late_ms,
            arrived: None,
            error: None,
        }
    }

    /// Meet the other shards before workload `workload`, repetition `repetition`.
    pub(super) async fn barrier(
        &mut self,
        workload: usize,
        repetition: u32,
        cancel: &CancellationToken,
    ) -> Meeting {
        if self.backend_url.is_none() {
            return Meeting::none();
        }
        let began = Instant::now();
        let mut m = Meeting {
            sync: SyncKind::Barrier,
            outcome: SyncOutcome::Met,
            waited_ms: 0.0,
            late_ms: None,
            arrived: None,
            error: None,
        };
        let keys = BarrierKeys::new(&self.run_key, workload, repetition);
        let deadline = began + self.start.barrier_timeout;
        let res = tokio::select! {
            r = self.meet(&keys, deadline) => r,
            _ = cancel.cancelled() => Err(anyhow::anyhow!("interrupted at the barrier")),
        };
        match res {
            Ok((true, arrived)) => m.arrived = Some(arrived),
            Ok((false, arrived)) => {
                m.outcome = SyncOutcome::TimedOut;
                m.arrived = Some(arrived);
            }
            Err(e) => {
                m.outcome = SyncOutcome::Failed;
                m.error = Some(format!("{e:#}"));
            }
        }
        m.waited_ms = began.elapsed().as_secs_f64() * 1000.0;
        m
    }

    /// INCR, then release or wait; `(met, arrived)`.
    async fn meet(&mut self, keys: &BarrierKeys, deadline: Instant) -> anyhow::Result<(bool, u64)> {
        use anyhow::Context;
        if self.conn.is_none() {
            let url = self.backend_url.as_deref().unwrap_or_default();
            let conn = RedisConn::connect(url)
                .await
                .context("cannot reach the result backend for the barrier")?;
            self.conn = Some(conn);
        }
        let conn = self.conn.as_mut().expect("connected");
        let n = u64::from(self.shard.count);
        let ttl = (self.start.barrier_timeout + KEY_MARGIN).as_secs();
        let (arrived,): (u64,) = redis::pipe()
            .atomic()
            .incr(&keys.count, 1)
            .expire(&keys.count, ttl as i64)
            .ignore()
            .query_async(conn)
            .await
            .context("INCR of the barrier counter")?;
        if arrived >= n {
            if n > 1 {
                let tokens: Vec<u8> = vec![1; (n - 1) as usize];
                redis::pipe()
                    .atomic()
                    .rpush(&keys.go, tokens)
                    .ignore()
                    .expire(&keys.go, ttl as i64)
                    .ignore()
                    .query_async::<()>(conn)
                    .await
                    .context("releasing the other shards")?;
            }
            return Ok((true, arrived));
        }
        let mut last_error = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let step = left.min(BLPOP_STEP).as_secs_f64().max(0.01);
            match redis::cmd("BLPOP")
                .arg(&keys.go)
                .arg(step)
                .query_async::<Option<(String, String)>>(conn)
                .await
            {
                Ok(Some(_)) => return Ok((true, n)),
                Ok(None) => {}
                Err(e) => {
                    // A failover in progress: keep trying until the deadline.
                    last_error = Some(e);
                    tokio::time::sleep(Duration::from_millis(100).min(left)).await;
                }
            }
        }
        match redis::cmd("GET")
            .arg(&keys.count)
            .query_async::<Option<u64>>(conn)
            .await
        {
            Ok(a) => Ok((false, a.unwrap_or(arrived))),
            Err(e) => Err(anyhow::Error::new(e).context(format!(
                "the barrier timed out and its counter cannot be read{}",
                last_error
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ))),
        }
    }
}

/// Sleep until `deadline` on the pacer's µs timer (tokio's timer rounds to the ms), or
/// tokio's when the pacer cannot be made.
async fn sleep_precisely(deadline: Instant) {
    if let Ok(mut p) = crate::load::pacer::Pacer::new()
        && p.sleep_until(deadline).await.is_ok()
    {
        return;
    }
    tokio::time::sleep_until(deadline.into()).await
}
