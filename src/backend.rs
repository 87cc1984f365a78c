//! The Redis side: storing results as Celery's Redis backend does (workers), and watching
//! them arrive (producer) through pub/sub with reconciliation reads, so a missed
//! notification can never turn into a false "lost".

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::client_failover::{DiscoveryHook, SentinelAddress, SentinelConn};
use crate::clock::now_unix_us;
use crate::protocol::result::{ResultRecord, ResultStatus, TaskStatus, result_key};

fn parse_result(
    bytes: &[u8],
) -> Result<crate::protocol::result::ParsedResult, crate::protocol::result::ResultParseError> {
    ResultRecord::parse(bytes)
}

/// Prefix of Celery's result keys and channels.
pub const RESULT_PREFIX: &str = "celery-task-meta-";

/// How long a single Redis command may take before it counts as failed. The redis crate's
/// default (500 ms) is too short for a loaded 2-core machine and would invent errors.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// What storing a result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// The record was written and published.
    Written,
    /// A SUCCESS record was already there (a duplicate execution): left untouched, as
    /// Celery does. The duplicate is invisible in Redis; the side channel counts it.
    KeptExistingSuccess,
}

/// A connection to the result backend: one address (a `redis://` URL, reconnecting by
/// itself) or the master the Sentinels name (a `sentinel://` address, client-side
/// failover: [`crate::client_failover::SentinelConn`]). Cheap to clone; every clone
/// shares the connection.
#[derive(Clone)]
pub enum RedisConn {
    /// One address (HAProxy's frontend or a data node).
    Direct(ConnectionManager),
    /// Whatever node the Sentinels name master.
    Sentinel(SentinelConn),
}

impl RedisConn {
    /// Connect to `url`: `redis://…` directly, `sentinel://…` through the Sentinels. The
    /// first command is sent now, so an unreachable backend fails here.
    pub async fn connect(url: &str) -> Result<Self> {
        if let Some(address) = SentinelAddress::parse(url) {
            let address = address.map_err(|e| anyhow::anyhow!("bad Sentinel address: {e}"))?;
            let mut conn = RedisConn::Sentinel(SentinelConn::new(address, RESPONSE_TIMEOUT)?);
            redis::cmd("PING")
                .query_async::<()>(&mut conn)
                .await
                .with_context(|| format!("cannot reach the Redis master through {url}"))?;
            return Ok(conn);
        }
        let client = redis::Client::open(crate::credentials::redis_url(url))
            .with_context(|| format!("bad Redis URL {url}"))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .with_context(|| format!("cannot connect to the result backend at {url}"))?;
        Ok(RedisConn::Direct(conn))
    }

    /// Report the Sentinel discovery's events (new master, reconnected) to `hook`; a
    /// direct connection has none.
    pub fn set_discovery_hook(&self, hook: DiscoveryHook) {
        if let RedisConn::Sentinel(s) = self {
            s.set_hook(hook);
        }
    }
}

impl redis::aio::ConnectionLike for RedisConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            RedisConn::Direct(c) => c.req_packed_command(cmd),
            RedisConn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            RedisConn::Direct(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Direct(c) => c.get_db(),
            RedisConn::Sentinel(c) => c.get_db(),
        }
    }
}

/// Writes result records the way Celery's Redis backend does.
#[derive(Clone)]
pub struct ResultStore {
    conn: RedisConn,
    ttl_s: u64,
}

impl ResultStore {
    /// Connect (with automatic reconnection, or Sentinel rediscovery for a
    /// `sentinel://` address) to the backend at `url`.
    pub async fn connect(url: &str, ttl: Duration) -> Result<Self> {
        Ok(ResultStore {
            conn: RedisConn::connect(url).await?,
            ttl_s: ttl.as_secs().max(1),
        })
    }

    /// Report Sentinel discovery events (client-side failover) to `hook`.
    pub fn set_discovery_hook(&self, hook: DiscoveryHook) {
        self.conn.set_discovery_hook(hook);
    }

    /// `GET` the key; unless it holds SUCCESS, `MULTI; SETEX key ttl json; PUBLISH key
    /// json; EXEC` (the channel name equals the key).
    pub async fn store(&self, record: &ResultRecord) -> Result<StoreOutcome> {
        let outcomes = self.store_batch(&[record]).await?;
        Ok(outcomes[0])
    }

    /// Store several results in two round trips, with Celery's rule for each: one `MGET`
    /// of their keys, then one `MULTI … EXEC` holding `SETEX key ttl json; PUBLISH key
    /// json` for every record whose key does not already hold SUCCESS (a duplicate
    /// execution leaves the first SUCCESS untouched, as Celery does; so does a second
    /// record of the same task within the batch). A batch of one is exactly Celery's
    /// `GET` then `MULTI; SETEX; PUBLISH; EXEC`. Either every write of the batch is done
    /// or none (one transaction), so a failed batch can simply be stored again.
    pub async fn store_batch(&self, records: &[&ResultRecord]) -> Result<Vec<StoreOutcome>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = records.iter().map(|r| result_key(&r.task_id)).collect();
        let mut conn = self.conn.clone();
        let existing: Vec<Option<Vec<u8>>> = if keys.len() == 1 {
            let one: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&keys[0])
                .query_async(&mut conn)
                .await
                .context("reading the result key")?;
            vec![one]
        } else {
            redis::cmd("MGET")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .context("reading the result keys")?
        };
        let mut outcomes = Vec::with_capacity(records.len());
        let mut written_success: Vec<&str> = Vec::new();
        let mut pipe = redis::pipe();
        pipe.atomic();
        for ((record, key), old) in records.iter().zip(&keys).zip(&existing) {
            let kept = old
                .as_deref()
                .is_some_and(|b| parse_result(b).is_ok_and(|r| r.status == TaskStatus::Success))
                || written_success.contains(&record.task_id.as_str());
            if kept {
                outcomes.push(StoreOutcome::KeptExistingSuccess);
                continue;
            }
            let json = record.to_json();
            pipe.cmd("SETEX")
                .arg(key)
                .arg(self.ttl_s)
                .arg(&json)
                .ignore()
                .cmd("PUBLISH")
                .arg(key)
                .arg(&json)
                .ignore();
            if record.status == TaskStatus::Success {
                written_success.push(&record.task_id);
            }
            outcomes.push(StoreOutcome::Written);
        }
        if outcomes.contains(&StoreOutcome::Written) {
            pipe.query_async::<()>(&mut conn)
                .await
                .context("writing the results")?;
        }
        Ok(outcomes)
    }
}

impl ResultStore {
    /// `PING` on the store's connection: a keepalive (`backend.keepalive`), so a proxy's
    /// idle timeout does not cut it while the worker's tasks run.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .context("keepalive PING")
    }
}

/// A result the producer saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenResult {
    /// The task id.
    pub id: Uuid,
    /// Its final state (never a progress state such as STARTED or RETRY).
    pub status: ResultStatus,
    /// When hab received it, unix µs.
    pub at_unix_us: i64,
}

/// What the result watcher reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEvent {
    /// A final result's notification.
    Result(SeenResult),
    /// A notification of a progress state (STARTED with `task_track_started`, RETRY, a
    /// custom state): the task is not over, so it settles nothing; counted.
    Progress,
    /// The subscription was lost: notifications are missed until it is re-established.
    Lost,
    /// The subscription was lost and re-established: notifications may have been missed,
    /// so outstanding tasks must be reconciled by reading their keys.
    Resubscribed,
}

/// The final state a stored record settles its task with, or `None` while the task is
/// not over. Only Celery's final states (`READY_STATES`: SUCCESS, FAILURE, REVOKED)
/// settle a task; PENDING, STARTED (`task_track_started`), RETRY and custom states are
/// progress, and the record that follows them decides. A value in a result key that is
/// not a result record at all settles the task as failed: the task is over, and what it
/// left cannot be read as a success.
fn final_status(payload: &[u8]) -> Option<ResultStatus> {
    match parse_result(payload) {
        Ok(r) => match r.status {
            TaskStatus::Success => Some(ResultStatus::Success),
            TaskStatus::Failure => Some(ResultStatus::Failure),
            s if s.is_ready() => Some(ResultStatus::Revoked),
            _ => None,
        },
        Err(_) => Some(ResultStatus::Failure),
    }
}

/// Subscribe to every result channel (`PSUBSCRIBE celery-task-meta-*`) and forward
/// notifications until `cancel`. Returns once the first subscription is active, so no
/// result published afterwards can be missed; a lost subscription is re-established
/// (reported as [`WatchEvent::Resubscribed`]).
pub async fn watch_results(
    url: &str,
    tx: mpsc::UnboundedSender<WatchEvent>,
    cancel: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let source = match SentinelAddress::parse(url) {
        Some(address) => PubSubSource::Sentinel(SentinelConn::new(
            address.map_err(|e| anyhow::anyhow!("bad Sentinel address: {e}"))?,
            RESPONSE_TIMEOUT,
        )?),
        None => PubSubSource::Direct(
            redis::Client::open(crate::credentials::redis_url(url))
                .with_context(|| format!("bad Redis URL {url}"))?,
        ),
    };
    let pattern = format!("{RESULT_PREFIX}*");
    let pubsub = tokio::time::timeout(RESPONSE_TIMEOUT, source.open(&pattern))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no answer within {}",
                humantime::format_duration(RESPONSE_TIMEOUT)
            )
        })
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("cannot subscribe to results at {url}"))?;
    let handle = tokio::spawn(async move {
        let (pubsub, mut subscribed_to) = pubsub;
        let mut first = Some(pubsub);
        let mut switches = source.switches();
        loop {
            let mut pubsub = match first.take() {
                Some(p) => p,
                None => {
                    // Re-subscribe with a bounded pause between attempts.
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                    // Bounded, and given up on cancel: a server that accepts the
                    // connection and never answers (frozen, or behind a proxy whose
                    // backend hangs) would otherwise hold the run's teardown, which
                    // awaits this task.
                    let opened = tokio::select! {
                        _ = cancel.cancelled() => return,
                        r = tokio::time::timeout(RESPONSE_TIMEOUT, source.open(&pattern)) => r,
                    };
                    match opened.unwrap_or_else(|_| {
                        Err(redis::RedisError::from((
                            redis::ErrorKind::Io,
                            "no answer to SUBSCRIBE",
                        )))
                    }) {
                        Ok((p, to)) => {
                            subscribed_to = to;
                            if tx.send(WatchEvent::Resubscribed).is_err() {
                                return;
                            }
                            p
                        }
                        Err(e) => {
                            tracing::debug!("result subscription: {e}");
                            continue;
                        }
                    }
                }
            };
            let mut stream = pubsub.on_message();
            loop {
                let msg = tokio::select! {
                    _ = cancel.cancelled() => return,
                    m = stream.next() => m,
                    // Client-side failover: the Sentinels promoted another master; the
                    // subscription on the old one (maybe frozen) hears nothing more.
                    _ = changed(&mut switches) => {
                        if source.switched_to().is_some() && source.switched_to() == subscribed_to {
                            continue; // already on the promoted node
                        }
                        None
                    }
                };
                let Some(msg) = msg else {
                    tracing::debug!("result subscription lost; re-subscribing");
                    if tx.send(WatchEvent::Lost).is_err() {
                        return;
                    }
                    break;
                };
                let at_unix_us = now_unix_us();
                let channel = msg.get_channel_name();
                let Some(id) = channel
                    .strip_prefix(RESULT_PREFIX)
                    .and_then(|s| Uuid::parse_str(s).ok())
                else {
                    continue;
                };
                let ev = match final_status(msg.get_payload_bytes()) {
                    Some(status) => WatchEvent::Result(SeenResult {
                        id,
                        status,
                        at_unix_us,
                    }),
                    None => WatchEvent::Progress,
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
        }
    });
    Ok(handle)
}

/// Where the result watcher subscribes: one address, or the master the Sentinels name.
enum PubSubSource {
    Direct(redis::Client),
    Sentinel(SentinelConn),
}

impl PubSubSource {
    /// Subscribe; with Sentinels, also the master subscribed to.
    async fn open(
        &self,
        pattern: &str,
    ) -> redis::RedisResult<(redis::aio::PubSub, Option<String>)> {
        let (client, master) = match self {
            PubSubSource::Direct(c) => (c.clone(), None),
            PubSubSource::Sentinel(s) => {
                let (c, a) = s.discover().await?;
                (c, Some(a))
            }
        };
        let mut p = client.get_async_pubsub().await?;
        p.psubscribe(pattern).await?;
        Ok((p, master))
    }

    fn switched_to(&self) -> Option<String> {
        match self {
            PubSubSource::Direct(_) => None,
            PubSubSource::Sentinel(s) => s.switched_to(),
        }
    }

    fn switches(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match self {
            PubSubSource::Direct(_) => None,
            PubSubSource::Sentinel(s) => Some(s.switches()),
        }
    }
}

/// Resolves when `rx` sees a new value; never without a receiver (or once its sender is
/// gone).
async fn changed(rx: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    if let Some(r) = rx
        && r.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

/// A connection for reconciliation reads. It reconnects by itself: a failover breaks it,
/// and the reads that follow a failover are the ones that find the results whose
/// notifications were missed while the subscription was down.
pub async fn reader(url: &str) -> Result<RedisConn> {
    RedisConn::connect(url).await
}

/// Read the result keys of `ids` (MGET in chunks) and return those that hold a final
/// state (a key holding STARTED or RETRY leaves its task outstanding).
pub async fn read_results(conn: &mut RedisConn, ids: &[Uuid]) -> Result<Vec<SeenResult>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(1000) {
        let keys: Vec<String> = chunk.iter().map(|id| result_key(&id.to_string())).collect();
        let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(conn)
            .await
            .context("reading result keys")?;
        let at_unix_us = now_unix_us();
        for (id, v) in chunk.iter().zip(values) {
            if let Some(status) = v.as_deref().and_then(final_status) {
                found.push(SeenResult {
                    id: *id,
                    status,
                    at_unix_us,
                });
            }
        }
    }
    Ok(found)
}

/// Count the result keys (`celery-task-meta-*`) with SCAN, never KEYS.
pub async fn count_result_keys(conn: &mut RedisConn) -> Result<u64> {
    let mut n = 0u64;
    scan_result_keys(conn, |keys| n += keys.len() as u64).await?;
    Ok(n)
}

/// The task ids of every result key (`celery-task-meta-<id>`) the backend holds, with
/// SCAN, never KEYS; keys whose suffix is not a task id are left out.
pub async fn result_key_ids(conn: &mut RedisConn) -> Result<HashSet<Uuid>> {
    let mut ids = HashSet::new();
    scan_result_keys(conn, |keys| {
        ids.extend(
            keys.iter()
                .filter_map(|k| Uuid::parse_str(k.strip_prefix(RESULT_PREFIX)?).ok()),
        )
    })
    .await?;
    Ok(ids)
}

/// Walks every key matching `celery-task-meta-*` with SCAN (1000 per step), handing each
/// step's keys to `each`.
async fn scan_result_keys(conn: &mut RedisConn, mut each: impl FnMut(Vec<String>)) -> Result<()> {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{RESULT_PREFIX}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .context("scanning result keys")?;
        each(keys);
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// The channel the producer's Redis keepalive publishes on: it matches the result
/// subscription's pattern (so the subscription gets traffic too), and no task has this id
/// (the watcher skips it).
pub const KEEPALIVE_CHANNEL: &str = "celery-task-meta-hab-keepalive";

/// One Redis keepalive: an empty `PUBLISH` on [`KEEPALIVE_CHANNEL`] through `conn`, so
/// neither that connection nor the result subscription sits idle.
pub async fn publish_keepalive(conn: &mut RedisConn) -> redis::RedisResult<()> {
    redis::cmd("PUBLISH")
        .arg(KEEPALIVE_CHANNEL)
        .arg("")
        .query_async::<i64>(conn)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as a Celery worker stores it (a STARTED record's result is the
    /// worker's pid and host name, as Celery writes it).
    fn record(state: &str, id: &Uuid) -> Vec<u8> {
        let result = match state {
            "SUCCESS" => "42".to_string(),
            "STARTED" => r#"{"pid": 4242, "hostname": "w1@hab"}"#.to_string(),
            "RETRY" => r#"{"exc_type": "Retry", "exc_message": ["Retry in 1s"], "exc_module": "celery.exceptions"}"#.to_string(),
            _ => "null".to_string(),
        };
        format!(
            r#"{{"status": "{state}", "result": {result}, "traceback": null, "children": [], "date_done": null, "task_id": "{id}"}}"#
        )
        .into_bytes()
    }

    #[test]
    fn only_final_states_settle_a_task() {
        // `task_track_started = True` makes a Celery worker store STARTED, a retrying task
        // stores RETRY, a task may set a custom state: none of them ends the task, so
        // the SUCCESS that follows decides its outcome and its latency.
        let id = Uuid::new_v4();
        let settled: Vec<(i64, ResultStatus)> = [
            (2_000, "PENDING"),
            (3_000, "STARTED"),
            (4_000, "RETRY"),
            (5_000, "PROGRESS"),
            (9_000, "SUCCESS"),
        ]
        .into_iter()
        .filter_map(|(at, state)| final_status(&record(state, &id)).map(|s| (at, s)))
        .collect();
        assert_eq!(settled, [(9_000, ResultStatus::Success)]);
    }

    #[test]
    fn final_states_settle_as_what_they_are() {
        let id = Uuid::new_v4();
        let status = |state| final_status(&record(state, &id));
        assert_eq!(status("SUCCESS"), Some(ResultStatus::Success));
        assert_eq!(status("FAILURE"), Some(ResultStatus::Failure));
        // Celery stores REVOKED for a revoked task and for one that expired before it ran:
        // over, but neither a success nor the task's own failure.
        assert_eq!(status("REVOKED"), Some(ResultStatus::Revoked));
        // Not a result record: the task is over and left nothing readable.
        assert_eq!(final_status(b"garbage"), Some(ResultStatus::Failure));
    }
}
