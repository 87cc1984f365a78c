//! Client-side failover (topology `[clients]`, issue 6 item 3): the clients find the live
//! broker node and the Redis master themselves instead of going through HAProxy.
//!
//! - Broker: the address is a list of node URLs separated by `;` (Celery's multi-broker
//!   URL, `amqp://a;amqp://b`). [`NodeRotation`] is kombu's `round-robin` failover
//!   strategy: a failed connection attempt moves on to the next node at once; only after
//!   a full cycle of failures does the client wait its backoff. After losing an
//!   established connection a *worker* starts again from the first node (Celery's
//!   consumer builds a fresh `Connection` from the URL list), a *producer* moves on to
//!   the next one (kombu's `ensure` calls `maybe_switch_next`).
//! - Backend: the address is `sentinel://h:p;sentinel://h:p?master_name=NAME`
//!   ([`SentinelAddress`]). [`SentinelConn`] asks the Sentinels for the master (redis-rs
//!   `SentinelClient`, which verifies it with `ROLE`), keeps one multiplexed connection
//!   to it and drops it on any error (a `READONLY` answer from a demoted master, a reset,
//!   a timeout), so the next command asks the Sentinels again — what redis-py's
//!   `SentinelConnectionPool` (Celery's `sentinel://` backend) does. `SentinelClient`
//!   does not reconnect by itself; this wrapper is what does. It also subscribes to a
//!   Sentinel's `+switch-master` (as Jedis' `JedisSentinelPool` does): a promotion
//!   drops the connection and fails the commands waiting on the old master at once,
//!   so a frozen (SIGSTOPped) master costs the promotion time, not a response timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisFuture, RedisResult, Value};
use tokio::sync::watch;

/// Separator between the node URLs of a client-side failover broker address.
pub const NODE_SEPARATOR: char = ';';

/// Longest wait for one connection attempt to one broker node in a rotation (Celery's
/// `broker_connection_timeout`, 4 s): a frozen node accepts TCP and answers nothing, and
/// the next node must get its turn.
pub const NODE_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// Longest wait for the Sentinels' answer plus the connection to the master.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The node URLs of a broker address (one URL, or several separated by `;`).
pub fn broker_urls(address: &str) -> Vec<String> {
    address
        .split(NODE_SEPARATOR)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The `host:port` of an AMQP URL, for messages and event details.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest)
}

/// What a client does after losing an established broker connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterLoss {
    /// Start again from the first node (a Celery worker).
    FirstNode,
    /// Move on to the next node (a kombu producer).
    NextNode,
}

/// kombu's `round-robin` failover over a list of broker nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRotation {
    urls: Vec<String>,
    current: usize,
    /// Failed attempts since the last success or loss.
    failures: usize,
}

impl NodeRotation {
    /// A rotation over `urls` (at least one), starting at the first.
    pub fn new(urls: Vec<String>) -> Self {
        assert!(!urls.is_empty(), "a rotation needs at least one node");
        NodeRotation {
            urls,
            current: 0,
            failures: 0,
        }
    }

    /// The URL to try now.
    pub fn current(&self) -> &str {
        &self.urls[self.current]
    }

    /// Index of the node to try now (0-based, in the list's order = broker node order).
    pub fn index(&self) -> usize {
        self.current
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Always false: a rotation has at least one node.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// An attempt on the current node failed: switch to the next. Returns true when that
    /// completed a cycle (every node failed once since the last success): the caller
    /// then sleeps its backoff; within a cycle the next node is tried at once (kombu's
    /// `completes_cycle`).
    pub fn failed(&mut self) -> bool {
        self.failures += 1;
        self.current = (self.current + 1) % self.urls.len();
        self.failures % self.urls.len() == 0
    }

    /// An attempt succeeded.
    pub fn connected(&mut self) {
        self.failures = 0;
    }

    /// An established connection was lost: where the next attempt goes.
    pub fn lost(&mut self, after: AfterLoss) {
        self.failures = 0;
        self.current = match after {
            AfterLoss::FirstNode => 0,
            AfterLoss::NextNode => (self.current + 1) % self.urls.len(),
        };
    }
}

/// A `sentinel://` result backend address: the Sentinels and the master's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelAddress {
    /// `host:port` of each Sentinel.
    pub sentinels: Vec<String>,
    /// The name the Sentinels know the master by.
    pub master_name: String,
}

impl SentinelAddress {
    /// The address as one string: `sentinel://h:p;sentinel://h:p?master_name=NAME`.
    pub fn to_url(&self) -> String {
        let list: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("sentinel://{s}"))
            .collect();
        format!("{}?master_name={}", list.join(";"), self.master_name)
    }

    /// Parse a `sentinel://` address; `None` when `url` is not one (a plain `redis://`).
    pub fn parse(url: &str) -> Option<Result<SentinelAddress, String>> {
        if !url.starts_with("sentinel://") {
            return None;
        }
        let mut sentinels = Vec::new();
        let mut master_name = None;
        for part in url.split(NODE_SEPARATOR) {
            let Some(rest) = part.trim().strip_prefix("sentinel://") else {
                return Some(Err(format!(
                    "{part:?} in {url:?} does not start with sentinel://"
                )));
            };
            let (host, query) = rest.split_once('?').unwrap_or((rest, ""));
            let host = host.trim_end_matches('/');
            if host.is_empty() || !host.contains(':') {
                return Some(Err(format!("{part:?} in {url:?} has no host:port")));
            }
            sentinels.push(host.to_string());
            for kv in query.split('&').filter(|kv| !kv.is_empty()) {
                match kv.split_once('=') {
                    Some(("master_name", v)) if !v.is_empty() => master_name = Some(v.to_string()),
                    _ => return Some(Err(format!("unknown parameter {kv:?} in {url:?}"))),
                }
            }
        }
        Some(match master_name {
            Some(master_name) => Ok(SentinelAddress {
                sentinels,
                master_name,
            }),
            None => Err(format!("{url:?} names no master (?master_name=NAME)")),
        })
    }
}

/// What a [`SentinelConn`] reports to its owner (for the side channel or the event log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// The Sentinels named a master other than the one the client used.
    NewMaster {
        /// The previous master's `host:port`.
        from: String,
        /// The new one.
        to: String,
    },
    /// Connected again (to the master the Sentinels named) after dropping a connection.
    Reconnected {
        /// The master's `host:port`.
        addr: String,
    },
}

/// Receives [`DiscoveryEvent`]s, with their time (unix µs).
pub type DiscoveryHook = Arc<dyn Fn(i64, DiscoveryEvent) + Send + Sync>;

struct Inner {
    address: SentinelAddress,
    sentinel: tokio::sync::Mutex<SentinelClient>,
    /// The master in use and the connection to it; `None` after an error.
    current: Mutex<Option<(String, MultiplexedConnection)>>,
    /// The last master used (kept across drops, to tell a new master from a reconnect).
    last_master: Mutex<Option<String>>,
    /// Bumped on every `+switch-master` for this master: commands waiting on another
    /// node fail at once.
    switched: watch::Sender<u64>,
    /// The new master (`host:port`) named by the last `+switch-master`.
    switched_to: Mutex<Option<String>>,
    hook: Mutex<Option<DiscoveryHook>>,
    config: AsyncConnectionConfig,
}

/// A Redis connection to whatever node the Sentinels name master, rediscovered after
/// every error and every `+switch-master` (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct SentinelConn {
    inner: Arc<Inner>,
}

impl SentinelConn {
    /// Build from an address; connects lazily (the first command asks the Sentinels) and
    /// starts the `+switch-master` subscription, which ends with the last clone.
    pub fn new(address: SentinelAddress, response_timeout: Duration) -> RedisResult<Self> {
        let urls: Vec<String> = address.sentinels.iter().map(|s| sentinel_url(s)).collect();
        // An external stack's Redis password goes to the data nodes the Sentinels name.
        let creds = crate::credentials::current();
        let node_info =
            (creds.backend_password.is_some() || creds.backend_user.is_some()).then(|| {
                let mut info = redis::RedisConnectionInfo::default();
                if let Some(u) = &creds.backend_user {
                    info = info.set_username(u);
                }
                if let Some(p) = &creds.backend_password {
                    info = info.set_password(p);
                }
                redis::sentinel::SentinelNodeConnectionInfo::default()
                    .set_redis_connection_info(info)
            });
        let client = SentinelClient::build(
            urls,
            address.master_name.clone(),
            node_info,
            SentinelServerType::Master,
        )?;
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(response_timeout))
            .set_connection_timeout(Some(DISCOVERY_TIMEOUT));
        let inner = Arc::new(Inner {
            address,
            sentinel: tokio::sync::Mutex::new(client),
            current: Mutex::new(None),
            last_master: Mutex::new(None),
            switched: watch::channel(0).0,
            switched_to: Mutex::new(None),
            hook: Mutex::new(None),
            config,
        });
        tokio::spawn(watch_switch_master(Arc::downgrade(&inner)));
        Ok(SentinelConn { inner })
    }

    /// Report discovery events to `hook` from now on.
    pub fn set_hook(&self, hook: DiscoveryHook) {
        *self.inner.hook.lock().expect("hook lock") = Some(hook);
    }

    /// The master in use now (`host:port`), if connected.
    pub fn master(&self) -> Option<String> {
        self.inner
            .current
            .lock()
            .expect("current lock")
            .as_ref()
            .map(|(a, _)| a.clone())
    }

    /// Drop the connection: the next command asks the Sentinels again.
    pub fn invalidate(&self) {
        self.inner.current.lock().expect("current lock").take();
    }

    /// A receiver that changes on every `+switch-master` of this master.
    pub fn switches(&self) -> watch::Receiver<u64> {
        self.inner.switched.subscribe()
    }

    /// The new master (`host:port`) the last `+switch-master` named, if any yet.
    pub fn switched_to(&self) -> Option<String> {
        self.inner
            .switched_to
            .lock()
            .expect("switched lock")
            .clone()
    }

    fn report(&self, ev: DiscoveryEvent) {
        let hook = self.inner.hook.lock().expect("hook lock").clone();
        if let Some(h) = hook {
            h(crate::clock::now_unix_us(), ev);
        }
    }

    /// Ask the Sentinels for the master; a client for it and its `host:port`. Reports a
    /// new master (different from the last one used).
    pub async fn discover(&self) -> RedisResult<(redis::Client, String)> {
        let started = std::time::Instant::now();
        let r = self.discover_inner().await;
        tracing::debug!(
            took_ms = started.elapsed().as_millis() as u64,
            result = ?r.as_ref().map(|(_, a)| a),
            "asked the Sentinels for the master"
        );
        r
    }

    async fn discover_inner(&self) -> RedisResult<(redis::Client, String)> {
        let mut sentinel = self.inner.sentinel.lock().await;
        let client =
            match tokio::time::timeout(DISCOVERY_TIMEOUT, sentinel.async_get_client()).await {
                Ok(r) => r?,
                Err(_) => return Err(timeout_error("asking the Sentinels for the master")),
            };
        drop(sentinel);
        let addr = client.get_connection_info().addr().to_string();
        let previous = self
            .inner
            .last_master
            .lock()
            .expect("last lock")
            .replace(addr.clone());
        if let Some(from) = previous
            && from != addr
        {
            self.report(DiscoveryEvent::NewMaster {
                from,
                to: addr.clone(),
            });
        }
        Ok((client, addr))
    }

    /// The master's `host:port` and the connection to it, discovering it (and
    /// connecting) when there is none.
    async fn connection(&self) -> RedisResult<(String, MultiplexedConnection)> {
        if let Some((a, c)) = self.inner.current.lock().expect("current lock").as_ref() {
            return Ok((a.clone(), c.clone()));
        }
        let reconnect = self.inner.last_master.lock().expect("last lock").is_some();
        let (client, addr) = self.discover().await?;
        let conn = client
            .get_multiplexed_async_connection_with_config(&self.inner.config)
            .await?;
        let mut current = self.inner.current.lock().expect("current lock");
        if let Some((a, c)) = current.as_ref() {
            // Another caller connected meanwhile: use one connection.
            return Ok((a.clone(), c.clone()));
        }
        *current = Some((addr.clone(), conn.clone()));
        drop(current);
        if reconnect {
            self.report(DiscoveryEvent::Reconnected { addr: addr.clone() });
        }
        Ok((addr, conn))
    }

    /// Run `op` on the master's connection; any error drops the connection. A
    /// `+switch-master` while it waits fails it at once.
    async fn run<T>(
        &self,
        op: impl AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<T>,
    ) -> RedisResult<T> {
        let mut switched = self.inner.switched.subscribe();
        let (addr, mut conn) = self.connection().await?;
        let op = op(&mut conn);
        tokio::pin!(op);
        let result = loop {
            tokio::select! {
                r = &mut op => break r,
                c = switched.changed() => {
                    // A promotion of the node in use (discovered just before the
                    // announcement) is no reason to give up on it.
                    if c.is_ok() && self.switched_to().as_deref() == Some(addr.as_str()) {
                        continue;
                    }
                    break Err(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "the Sentinels promoted another master (+switch-master) while waiting",
                    )));
                }
            }
        };
        if let Err(e) = &result {
            tracing::debug!("Redis master connection dropped: {e}");
            self.invalidate();
        }
        result
    }
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move { self.run(async |c| c.req_packed_command(cmd).await).await })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.run(async |c| c.req_packed_commands(pipeline, offset, count).await)
                .await
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// The new master (`host:port`) of a `+switch-master` message about `master`
/// (`<master name> <old ip> <old port> <new ip> <new port>`).
pub fn switch_master_target(payload: &str, master: &str) -> Option<String> {
    let parts: Vec<&str> = payload.split_whitespace().collect();
    match parts.as_slice() {
        [name, _, _, ip, port] if *name == master => Some(format!("{ip}:{port}")),
        _ => None,
    }
}

fn timeout_error(what: &str) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "timed out",
        format!("{what} took longer than {DISCOVERY_TIMEOUT:?}"),
    ))
}

/// Follow `+switch-master` on the Sentinels (the first that answers; another after a
/// loss) until the connection's last clone is gone.
async fn watch_switch_master(inner: std::sync::Weak<Inner>) {
    let mut next = 0usize;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let sentinels = strong.address.sentinels.clone();
        let master = strong.address.master_name.clone();
        drop(strong);
        let url = sentinel_url(&sentinels[next % sentinels.len()]);
        next += 1;
        let sub = async {
            let client = redis::Client::open(url.as_str())?;
            let mut p = client.get_async_pubsub().await?;
            p.subscribe("+switch-master").await?;
            Ok::<_, redis::RedisError>(p)
        };
        let pubsub = tokio::time::timeout(DISCOVERY_TIMEOUT, sub).await;
        let Ok(Ok(mut pubsub)) = pubsub else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut stream = pubsub.on_message();
        loop {
            // Check now and then whether the connection is still wanted.
            let msg = tokio::time::timeout(Duration::from_secs(1), stream.next()).await;
            let Some(strong) = inner.upgrade() else {
                return;
            };
            match msg {
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(m)) => {
                    // `<master name> <old ip> <old port> <new ip> <new port>`
                    let payload: String = m.get_payload().unwrap_or_default();
                    if let Some(to) = switch_master_target(&payload, &master) {
                        tracing::debug!("+switch-master {payload}");
                        *strong.switched_to.lock().expect("switched lock") = Some(to.clone());
                        let mut current = strong.current.lock().expect("current lock");
                        if current.as_ref().is_some_and(|(a, _)| *a != to) {
                            current.take();
                        }
                        drop(current);
                        strong.switched.send_modify(|g| *g += 1);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `redis://host:port` of a Sentinel, with an external stack's Sentinel password.
fn sentinel_url(addr: &str) -> String {
    crate::credentials::Credentials {
        backend_password: crate::credentials::current().sentinel_password,
        ..Default::default()
    }
    .redis_url(&format!("redis://{addr}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("amqp://h:{i}/%2f")).collect()
    }

    #[test]
    fn a_broker_address_splits_into_its_nodes() {
        assert_eq!(broker_urls("amqp://a:1/%2f"), ["amqp://a:1/%2f"]);
        assert_eq!(
            broker_urls("amqp://a:1/%2f; amqp://b:2/%2f;"),
            ["amqp://a:1/%2f", "amqp://b:2/%2f"]
        );
        assert_eq!(
            url_host("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "127.0.0.1:5672"
        );
        assert_eq!(
            url_host("amqp://127.0.0.1:5/%2f?heartbeat=5"),
            "127.0.0.1:5"
        );
    }

    #[test]
    fn failed_attempts_go_round_robin_and_wait_only_after_a_full_cycle() {
        let mut r = NodeRotation::new(urls(3));
        assert_eq!(r.index(), 0);
        // Node 0 dead: 1 and 2 are tried at once; the third failure completes the cycle.
        assert!(!r.failed());
        assert_eq!(r.index(), 1);
        assert!(!r.failed());
        assert_eq!(r.index(), 2);
        assert!(r.failed());
        assert_eq!(r.index(), 0);
        // The next cycle again waits only at its end.
        assert!(!r.failed());
        assert!(!r.failed());
        assert!(r.failed());
        // A success resets the cycle: the count starts again from the connected node.
        r.failed();
        assert_eq!(r.index(), 1);
        r.connected();
        assert!(!r.failed());
        assert!(!r.failed());
        assert!(r.failed());
        assert_eq!(r.current(), "amqp://h:1/%2f");
    }

    #[test]
    fn after_a_loss_a_worker_starts_over_and_a_producer_moves_on() {
        let mut worker = NodeRotation::new(urls(3));
        worker.failed();
        worker.connected();
        assert_eq!(worker.index(), 1);
        worker.lost(AfterLoss::FirstNode);
        assert_eq!(worker.index(), 0);
        // Node 0 still dead: one failed attempt, then node 1 at once (no wait).
        assert!(!worker.failed());
        assert_eq!(worker.index(), 1);

        let mut producer = NodeRotation::new(urls(3));
        producer.lost(AfterLoss::NextNode);
        assert_eq!(producer.index(), 1);
        producer.lost(AfterLoss::NextNode);
        producer.lost(AfterLoss::NextNode);
        assert_eq!(producer.index(), 0);
        // A single node: every failure completes a cycle (always back off).
        let mut one = NodeRotation::new(urls(1));
        assert!(one.failed());
        assert!(one.failed());
        assert_eq!(one.index(), 0);
    }

    #[test]
    fn switch_master_messages_name_the_new_master_of_ours_only() {
        assert_eq!(
            switch_master_target("hab 127.0.0.1 6379 127.0.0.1 6380", "hab").as_deref(),
            Some("127.0.0.1:6380")
        );
        assert_eq!(switch_master_target("other 1 2 3 4", "hab"), None);
        assert_eq!(switch_master_target("hab 127.0.0.1 6379", "hab"), None);
    }

    #[test]
    fn sentinel_addresses_round_trip_and_bad_ones_say_why() {
        let a = SentinelAddress {
            sentinels: vec!["127.0.0.1:26379".into(), "127.0.0.1:26380".into()],
            master_name: "hab".into(),
        };
        let url = a.to_url();
        assert_eq!(
            url,
            "sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380?master_name=hab"
        );
        assert_eq!(SentinelAddress::parse(&url), Some(Ok(a)));
        assert_eq!(SentinelAddress::parse("redis://127.0.0.1:6379"), None);
        let err = |u: &str| SentinelAddress::parse(u).unwrap().unwrap_err();
        assert!(err("sentinel://h:1").contains("names no master"));
        assert!(err("sentinel://h:1;redis://h:2?master_name=x").contains("does not start with"));
        assert!(err("sentinel://h?master_name=x").contains("no host:port"));
        assert!(err("sentinel://h:1?db=2").contains("unknown parameter"));
    }
}
