//! The AMQP side: connections, Celery's exchange/queue declarations, publishing with
//! publisher confirms, and the consumer channel a worker reads from.

use std::time::Duration;

use anyhow::{Context, Result};
use lapin::options::{
    BasicConsumeOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::client_failover::{
    AfterLoss, NODE_ATTEMPT_TIMEOUT, NodeRotation, broker_urls, url_host,
};
use crate::config::QueueKind;
use crate::protocol::CELERY_QUEUE;

pub mod leftovers;

/// The AMQP URL with the heartbeat set (lapin reads it from the query string).
pub fn url_with_heartbeat(url: &str, heartbeat: Duration) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}heartbeat={}", heartbeat.as_secs())
}

/// Connect to the broker, naming the connection so it shows in RabbitMQ's tools.
pub async fn connect(url: &str, heartbeat: Duration, name: &str) -> Result<Connection> {
    let props = ConnectionProperties::default().with_connection_name(LongString::from(name));
    // Credentials of an external stack are added here only: `url` (logged, stored) has none.
    Connection::connect(
        &url_with_heartbeat(&crate::credentials::amqp_url(url), heartbeat),
        props,
    )
    .await
    .with_context(|| format!("cannot connect to the broker at {url}"))
}

/// Queue arguments for a queue kind. A Celery worker must be configured with the same
/// arguments (`task_queues` with `queue_arguments`), or its redeclare fails.
pub fn queue_arguments(kind: QueueKind) -> FieldTable {
    let mut args = FieldTable::default();
    if kind == QueueKind::Quorum {
        args.insert(
            ShortString::from("x-queue-type"),
            AMQPValue::LongString(LongString::from("quorum")),
        );
        args.insert(
            ShortString::from("x-delivery-limit"),
            AMQPValue::LongInt(QUORUM_DELIVERY_LIMIT),
        );
    }
    args
}

/// `x-delivery-limit` of a quorum queue: a message returned to the queue this many times
/// (workers that died or lost their connection holding it) is dropped by RabbitMQ, so no
/// poison message loops forever, whichever worker consumes. hab's worker fails a task
/// whose worker died `workers.limits.crash_limit` times long before (with a result); the
/// limit is high enough that broker faults alone (one or two returns of the prefetched
/// messages each) never reach it. A message dropped by it is a `lost` task.
pub const QUORUM_DELIVERY_LIMIT: i32 = 20;

/// Declare what Celery declares: a durable direct exchange `celery`, a durable queue
/// `celery` (with the topology's queue arguments) and the binding between them.
pub async fn declare_celery_queue(channel: &Channel, kind: QueueKind) -> Result<()> {
    declare_queue(channel, kind, true).await
}

/// As [`declare_celery_queue`], with the queue's durability chosen (`false` only for
/// showing what a broker restart loses).
pub async fn declare_queue(channel: &Channel, kind: QueueKind, durable: bool) -> Result<()> {
    channel
        .exchange_declare(
            ShortString::from(CELERY_QUEUE),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("declaring exchange `celery`")?;
    channel
        .queue_declare(
            ShortString::from(CELERY_QUEUE),
            QueueDeclareOptions {
                durable,
                ..Default::default()
            },
            queue_arguments(kind),
        )
        .await
        .context("declaring queue `celery`")?;
    channel
        .queue_bind(
            ShortString::from(CELERY_QUEUE),
            ShortString::from(CELERY_QUEUE),
            ShortString::from(CELERY_QUEUE),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("binding queue `celery`")?;
    Ok(())
}

/// A channel for publishing, with publisher confirms when `confirms` is set.
pub async fn publisher_channel(conn: &Connection, confirms: bool) -> Result<Channel> {
    let channel = conn.create_channel().await.context("opening a channel")?;
    if confirms {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .context("enabling publisher confirms")?;
    }
    Ok(channel)
}

/// Number of consumers currently attached to the `celery` queue, and its ready messages.
pub async fn queue_state(channel: &Channel, kind: QueueKind) -> Result<(u32, u32)> {
    let declare = channel.queue_declare(
        ShortString::from(CELERY_QUEUE),
        QueueDeclareOptions {
            durable: true,
            passive: true,
            ..Default::default()
        },
        queue_arguments(kind),
    );
    // Bounded: a broker that keeps the connection alive (heartbeats) but never answers
    // the declare would hold the caller forever (the end of a run awaits this; RabbitMQ
    // was seen to hang on `list_queues` for a minute after a node restart with a
    // non-durable queue).
    let q = tokio::time::timeout(OPERATION_TIMEOUT, declare)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "inspecting queue `celery`: no answer within {}",
                humantime::format_duration(OPERATION_TIMEOUT)
            )
        })?
        .context("inspecting queue `celery`")?;
    Ok((q.consumer_count(), q.message_count()))
}

/// Start consuming the `celery` queue with at most `prefetch` unacknowledged deliveries.
pub async fn consume(channel: &Channel, prefetch: u16, tag: &str) -> Result<Consumer> {
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .context("setting prefetch")?;
    channel
        .basic_consume(
            ShortString::from(CELERY_QUEUE),
            ShortString::from(tag),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("consuming queue `celery`")
}

/// A producer connection that survives broker failover: when the connection or channel
/// dies it reconnects (bounded backoff, until cancelled) and opens a fresh channel. The
/// caller republishes what was not confirmed; every error and reconnection is reported
/// to the caller, never hidden.
pub struct Publisher {
    /// The broker address's nodes: one (HAProxy or node 0), or every node with
    /// client-side failover (`;`-separated), rotated as kombu does.
    rotation: NodeRotation,
    /// Index (in the rotation) of the node connected to; shared with the stack, which
    /// resolves `broker.primary` to it under client-side failover.
    node: Arc<AtomicUsize>,
    /// Switches to another node not yet reported: (unix µs, detail).
    switches: Vec<(i64, String)>,
    heartbeat: Duration,
    confirms: bool,
    queue: QueueKind,
    durable: bool,
    persistent: bool,
    name: String,
    conn: Connection,
    channel: Channel,
    /// Successful reconnections so far.
    pub reconnects: u64,
    /// Bound of one publish call (`producer.publish_timeout`; [`OPERATION_TIMEOUT`]
    /// unless set).
    publish_timeout: Duration,
    /// Bound of one connection attempt (`producer.connect_timeout`; [`CONNECT_TIMEOUT`]
    /// unless set).
    connect_timeout: Duration,
}

/// Longest wait for one publish to be handed to the connection, or for a new channel.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one connection attempt (TCP, AMQP handshake, queue declaration).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a close-ok.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

impl Publisher {
    /// Connect, declare Celery's queue and open a (confirming) channel.
    pub async fn connect(
        url: &str,
        broker: &crate::config::BrokerConfig,
        name: &str,
    ) -> Result<Self> {
        let (heartbeat, confirms, queue, durable) = (
            broker.heartbeat,
            broker.confirms,
            broker.queue,
            broker.durable,
        );
        let mut rotation = NodeRotation::new(broker_urls(url));
        // With several nodes, try each once (kombu's ensure_connection on start-up).
        let (conn, channel) = loop {
            let open = Self::open(
                rotation.current(),
                heartbeat,
                confirms,
                queue,
                durable,
                name,
            );
            if rotation.len() == 1 {
                break open.await?;
            }
            let err = match tokio::time::timeout(NODE_ATTEMPT_TIMEOUT, open).await {
                Ok(Ok(pair)) => break pair,
                Ok(Err(e)) => e,
                Err(_) => anyhow::anyhow!("no connection within {NODE_ATTEMPT_TIMEOUT:?}"),
            };
            tracing::warn!("broker node {}: {err:#}", url_host(rotation.current()));
            if rotation.failed() {
                return Err(err.context("no broker node of the list accepted a connection"));
            }
        };
        rotation.connected();
        Ok(Publisher {
            node: Arc::new(AtomicUsize::new(rotation.index())),
            switches: Vec::new(),
            rotation,
            heartbeat,
            confirms,
            queue,
            durable,
            persistent: broker.persistent,
            name: name.to_string(),
            conn,
            channel,
            reconnects: 0,
            publish_timeout: OPERATION_TIMEOUT,
            connect_timeout: CONNECT_TIMEOUT,
        })
    }

    /// The index of the broker node the publisher is connected to (0 without
    /// client-side failover), kept up to date across reconnections.
    pub fn node_handle(&self) -> Arc<AtomicUsize> {
        self.node.clone()
    }

    /// Switches to another broker node since the last call (client-side failover):
    /// when the rotation moved on, and to which node.
    pub fn take_switches(&mut self) -> Vec<(i64, String)> {
        std::mem::take(&mut self.switches)
    }

    async fn open(
        url: &str,
        heartbeat: Duration,
        confirms: bool,
        queue: QueueKind,
        durable: bool,
        name: &str,
    ) -> Result<(Connection, Channel)> {
        let conn = connect(url, heartbeat, name).await?;
        let setup = conn.create_channel().await.context("opening a channel")?;
        declare_queue(&setup, queue, durable).await?;
        let _ = setup.close(200, ShortString::from("declared")).await;
        let channel = publisher_channel(&conn, confirms).await?;
        Ok((conn, channel))
    }

    /// [`open`](Self::open) on the rotation's current node, with this publisher's settings.
    fn open_current(&self) -> impl Future<Output = Result<(Connection, Channel)>> + '_ {
        Self::open(
            self.rotation.current(),
            self.heartbeat,
            self.confirms,
            self.queue,
            self.durable,
            &self.name,
        )
    }

    /// What bounds one connection attempt: `producer.connect_timeout`; a node of a list
    /// gets at most Celery's 4 s before the next one is tried.
    fn attempt_timeout(&self) -> Duration {
        if self.rotation.len() > 1 {
            NODE_ATTEMPT_TIMEOUT.min(self.connect_timeout)
        } else {
            self.connect_timeout
        }
    }

    /// Take a new connection and its channel, counted as a reconnection on the rotation's
    /// current node; returns the old connection.
    fn adopt(&mut self, conn: Connection, channel: Channel) -> Connection {
        let old = std::mem::replace(&mut self.conn, conn);
        self.channel = channel;
        self.reconnects += 1;
        self.rotation.connected();
        self.node.store(self.rotation.index(), Ordering::Relaxed);
        old
    }

    /// Bound every publish call by `publish` and every connection attempt by `connect`
    /// (the topology's `[producer]` timeouts).
    pub fn set_timeouts(&mut self, publish: Duration, connect: Duration) {
        self.publish_timeout = publish;
        self.connect_timeout = connect;
    }

    /// The current channel.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// True while the connection and channel are usable.
    pub fn is_usable(&self) -> bool {
        self.conn.status().connected() && self.channel.status().connected()
    }

    /// Publish one message to the `celery` queue through the default exchange (made
    /// transient when the topology says `persistent = false`). Bounded by the publish
    /// timeout ([`OPERATION_TIMEOUT`] unless set): a connection that died without the
    /// client noticing must not stall the producer.
    pub async fn publish(
        &self,
        body: &[u8],
        props: lapin::BasicProperties,
    ) -> Result<lapin::PublisherConfirm> {
        self.handover(body.to_vec(), props).await
    }

    /// [`Publisher::publish`] as a future that owns what it needs (the channel, the
    /// message), so a publisher can hand over the next messages without waiting for this
    /// one's frames to be written: lapin's `basic_publish` resolves only once its I/O
    /// thread has written them, and awaiting each in turn wakes that thread and waits for
    /// it once per message. Several handed over at once are written together. The frames
    /// reach the channel in the order the futures are first polled.
    pub fn handover(
        &self,
        body: Vec<u8>,
        props: lapin::BasicProperties,
    ) -> impl std::future::Future<Output = Result<lapin::PublisherConfirm>> + Send + 'static {
        let props = if self.persistent {
            props
        } else {
            props.with_delivery_mode(1)
        };
        let channel = self.channel.clone();
        let timeout = self.publish_timeout;
        async move {
            let publish = channel.basic_publish(
                ShortString::from(""),
                ShortString::from(CELERY_QUEUE),
                lapin::options::BasicPublishOptions::default(),
                &body,
                props,
            );
            match tokio::time::timeout(timeout, publish).await {
                Ok(r) => Ok(r?),
                Err(_) => anyhow::bail!(
                    "publish not sent within {}",
                    humantime::format_duration(timeout)
                ),
            }
        }
    }

    /// Open a fresh channel on the same connection (after a nack: on a quorum queue a
    /// channel can keep nacking after a leader change; a new channel recovers at once).
    pub async fn fresh_channel(&mut self) -> Result<()> {
        let channel = tokio::time::timeout(
            OPERATION_TIMEOUT,
            publisher_channel(&self.conn, self.confirms),
        )
        .await
        .map_err(|_| anyhow::anyhow!("no new channel within {OPERATION_TIMEOUT:?}"))??;
        let old = std::mem::replace(&mut self.channel, channel);
        let _ = tokio::time::timeout(
            CLOSE_TIMEOUT,
            old.close(200, ShortString::from("fresh channel")),
        )
        .await;
        Ok(())
    }

    /// Drop the connection and connect again, retrying with backoff (50 ms doubling to
    /// 1 s) until it works or `cancel` fires. Each failed attempt is passed to `on_error`.
    /// With several node URLs (client-side failover) the producer moves on to the next
    /// node first, tries each node at once within a cycle of the list (each attempt
    /// bounded by [`NODE_ATTEMPT_TIMEOUT`]) and backs off only after a full cycle, as
    /// kombu does; every move to another node is kept for [`Publisher::take_switches`].
    pub async fn reconnect(
        &mut self,
        cancel: &tokio_util::sync::CancellationToken,
        mut on_error: impl FnMut(&anyhow::Error),
    ) -> Result<()> {
        // Closing a dead connection waits for a close-ok that never comes.
        let _ = tokio::time::timeout(
            CLOSE_TIMEOUT,
            self.conn.close(200, ShortString::from("reconnecting")),
        )
        .await;
        let mut delay = Duration::from_millis(50);
        let rotating = self.rotation.len() > 1;
        let connected_to = self.rotation.index();
        if rotating {
            // kombu's producer: a connection error moves on to the next node.
            self.rotation.lost(AfterLoss::NextNode);
        }
        let attempt_timeout = self.attempt_timeout();
        let mut reported = connected_to;
        loop {
            if rotating && self.rotation.index() != reported {
                reported = self.rotation.index();
                self.switches.push((
                    crate::clock::now_unix_us(),
                    format!("trying broker node {}", url_host(self.rotation.current())),
                ));
            }
            let open = self.open_current();
            // A node still booting may accept TCP and answer nothing: bound each attempt.
            let attempt = tokio::select! {
                _ = cancel.cancelled() => anyhow::bail!("cancelled while reconnecting to the broker"),
                r = tokio::time::timeout(attempt_timeout, open) => r,
            };
            match attempt {
                Ok(Ok((conn, channel))) => {
                    drop(self.adopt(conn, channel));
                    return Ok(());
                }
                Ok(Err(e)) => on_error(&e),
                Err(_) => on_error(&anyhow::anyhow!(
                    "no connection within {}",
                    humantime::format_duration(attempt_timeout)
                )),
            }
            // Within a cycle of the node list the next node is tried at once; after a
            // full cycle (or with one address, after every attempt) the client backs off.
            if rotating && !self.rotation.failed() {
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => anyhow::bail!("cancelled while reconnecting to the broker"),
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// One connection attempt, bounded by the connect timeout: what `retry` and `breaker`
    /// producers do instead of [`reconnect`](Self::reconnect)'s unbounded loop. The old
    /// connection is closed only once a new one is open, in the background: waiting for
    /// the close-ok of a hung broker would add [`CLOSE_TIMEOUT`] to every failed attempt.
    pub async fn reconnect_once(&mut self) -> Result<()> {
        let rotating = self.rotation.len() > 1;
        let timeout = self.attempt_timeout();
        let res = match tokio::time::timeout(timeout, self.open_current()).await {
            Ok(Ok((conn, channel))) => {
                let old = self.adopt(conn, channel);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(
                        CLOSE_TIMEOUT,
                        old.close(200, ShortString::from("reconnected")),
                    )
                    .await;
                });
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(anyhow::anyhow!(
                "no connection within {}",
                humantime::format_duration(timeout)
            )),
        };
        if res.is_err() && rotating {
            // The next attempt goes to the next node of the list (kombu's round-robin).
            self.rotation.failed();
        }
        res
    }

    /// Close the connection (bounded: the connection may be dead).
    pub async fn close(&self) {
        let _ = tokio::time::timeout(
            CLOSE_TIMEOUT,
            self.conn.close(200, ShortString::from("done")),
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_goes_into_the_query_string() {
        assert_eq!(
            url_with_heartbeat("amqp://g:g@127.0.0.1:5/%2f", Duration::from_secs(10)),
            "amqp://g:g@127.0.0.1:5/%2f?heartbeat=10"
        );
        assert_eq!(
            url_with_heartbeat("amqp://h/%2f?frame_max=8192", Duration::ZERO),
            "amqp://h/%2f?frame_max=8192&heartbeat=0"
        );
    }

    #[test]
    fn quorum_queues_carry_their_type() {
        assert!(queue_arguments(QueueKind::Classic).inner().is_empty());
        let q = queue_arguments(QueueKind::Quorum);
        assert_eq!(
            q.inner().get(&ShortString::from("x-queue-type")),
            Some(&AMQPValue::LongString(LongString::from("quorum")))
        );
        assert_eq!(
            q.inner().get(&ShortString::from("x-delivery-limit")),
            Some(&AMQPValue::LongInt(20))
        );
    }
}
