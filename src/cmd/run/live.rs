//! What the run's tasks share while it runs: the ledger, the clients' and servers' events,
//! the faults applied; and the tasks that feed it (result notifications, keepalive).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::backend::{self, WatchEvent};
use crate::config::Topology;
use crate::fault::AppliedFault;
use crate::ledger::{Ledger, SeenVia};
use crate::metrics::outage::BreakerTransition;
use crate::observe::management::watch_queue_leader;
use crate::observe::server::{ObserverTally, ServerLog, watch_proxy, watch_sentinel};
use crate::record::FailedRead;
use crate::stack::haproxy::StatsAddr;

use super::lifecycle::SharedStack;
use crate::event::ClientEventKind;
use crate::observe::EventLog;

/// Shared state between the generator, the result collector and the drain.
pub(super) struct Live {
    pub(super) ledger: Mutex<Ledger>,
    /// Signalled whenever results were applied.
    pub(super) progress: Notify,
    /// Set when the result subscription was re-established: reconcile now.
    pub(super) resubscribed: AtomicBool,
    /// What the clients went through.
    pub(super) events: EventLog,
    /// What the server-side observers saw.
    pub(super) servers: Arc<ServerLog>,
    /// Every fault applied so far.
    pub(super) faults: Arc<Mutex<Vec<AppliedFault>>>,
    /// The task ids whose result key Redis still held at the end (read once, after the
    /// last workload); `None` until then or when the read failed.
    pub(super) final_result_ids: Mutex<Option<HashSet<Uuid>>>,
    /// Every state change of the producer's circuit breaker (`policy = "breaker"`).
    pub(super) breaker_transitions: Mutex<Vec<BreakerTransition>>,
    /// Why the run must stop (a fault command on an external stack failed or hung);
    /// set by the fault injector, which also cancels the run.
    pub(super) fatal: Arc<Mutex<Option<String>>>,
    /// How each server-side observer fared (run.json `observers`).
    pub(super) observers: Mutex<Vec<Arc<ObserverTally>>>,
    /// The fault injectors spawned so far: teardown waits for them (bounded), so a fault
    /// in progress is restored even when the run stops mid-workload.
    pub(super) injectors: TaskTracker,
    /// Reads whose failure decided outcomes (run.json `failed_reads`).
    pub(super) failed_reads: Mutex<Vec<FailedRead>>,
    /// Who was busy: the CPU sampler and each workload's span.
    pub(super) cpu: super::cpu::CpuWatch,
}

impl Live {
    /// Shared state of a run of `workloads` workloads (the warm-up is one more).
    pub(super) fn new(workloads: usize) -> Self {
        Live {
            ledger: Mutex::new(Ledger::new(workloads + 1)),
            progress: Notify::new(),
            resubscribed: AtomicBool::new(false),
            events: EventLog::new(),
            servers: Arc::new(ServerLog::new()),
            faults: Arc::new(Mutex::new(Vec::new())),
            final_result_ids: Mutex::new(None),
            breaker_transitions: Mutex::new(Vec::new()),
            fatal: Arc::new(Mutex::new(None)),
            observers: Mutex::new(Vec::new()),
            injectors: TaskTracker::new(),
            failed_reads: Mutex::new(Vec::new()),
            cpu: super::cpu::CpuWatch::default(),
        }
    }

    /// The ledger. A lock poisoned by a panicking task still gives its data: the end of a
    /// run writes what was measured whatever happened.
    pub(super) fn ledger(&self) -> MutexGuard<'_, Ledger> {
        locked(&self.ledger)
    }

    /// Every fault applied so far.
    pub(super) fn faults(&self) -> MutexGuard<'_, Vec<AppliedFault>> {
        locked(&self.faults)
    }

    /// The task ids whose result key Redis still held at the end.
    pub(super) fn final_result_ids(&self) -> MutexGuard<'_, Option<HashSet<Uuid>>> {
        locked(&self.final_result_ids)
    }

    /// The breaker's state changes so far.
    pub(super) fn breaker_transitions(&self) -> MutexGuard<'_, Vec<BreakerTransition>> {
        locked(&self.breaker_transitions)
    }

    /// Reads whose failure decided outcomes.
    pub(super) fn failed_reads(&self) -> MutexGuard<'_, Vec<FailedRead>> {
        locked(&self.failed_reads)
    }

    /// How each server-side observer fares.
    pub(super) fn observers(&self) -> MutexGuard<'_, Vec<Arc<ObserverTally>>> {
        locked(&self.observers)
    }

    /// Why the run must stop, if a fault command failed.
    pub(super) fn fatal(&self) -> Option<String> {
        locked(&self.fatal).clone()
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sentinel discovery events of one of the producer's Redis connections (client-side
/// failover) as client events of `source`.
pub(super) fn discovery_hook(
    live: Arc<Live>,
    source: &'static str,
) -> crate::client_failover::DiscoveryHook {
    use crate::client_failover::DiscoveryEvent;
    Arc::new(move |at_unix_us, ev| {
        let (kind, detail) = match ev {
            DiscoveryEvent::NewMaster { from, to } => (
                ClientEventKind::Rediscovered,
                format!("Sentinels name master {to} (was {from})"),
            ),
            DiscoveryEvent::Reconnected { addr } => (
                ClientEventKind::Reconnected,
                format!("connected to master {addr}"),
            ),
        };
        live.events.push(crate::event::ClientEvent {
            at_unix_us,
            source: source.into(),
            kind,
            detail,
        });
    })
}

/// `backend.keepalive` for the producer's Redis connections: a `PUBLISH` on
/// [`backend::KEEPALIVE_CHANNEL`] every `every` through the reader keeps the reader's connection
/// and the result subscription from sitting idle. A failed one is a client error.
pub(super) async fn redis_keepalive(
    mut conn: backend::RedisConn,
    every: Duration,
    live: Arc<Live>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        if let Err(e) = backend::publish_keepalive(&mut conn).await {
            live.events.record(
                "results",
                ClientEventKind::Error,
                format!("keepalive PUBLISH failed: {e}"),
            );
        }
    }
}

/// Apply result notifications to the ledger as they arrive.
pub(super) async fn collect(live: Arc<Live>, mut rx: mpsc::UnboundedReceiver<WatchEvent>) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        {
            let mut ledger = live.ledger();
            for ev in batch.drain(..) {
                match ev {
                    WatchEvent::Result(r) => {
                        ledger.result_seen(&r.id, r.at_unix_us, r.status, SeenVia::Notification)
                    }
                    WatchEvent::Progress => ledger.progress_seen(),
                    WatchEvent::Lost => live.events.record(
                        "results",
                        ClientEventKind::Error,
                        "result subscription lost",
                    ),
                    WatchEvent::Resubscribed => {
                        live.events
                            .record("results", ClientEventKind::Reconnected, "resubscribed");
                        live.resubscribed.store(true, Ordering::SeqCst)
                    }
                }
            }
        }
        live.progress.notify_waiters();
    }
}

/// Where the run's clients connect, and what the observers watch.
pub(super) struct Endpoints {
    pub(super) broker_url: String,
    pub(super) backend_url: String,
    /// HAProxy's stats socket, if the stack has a proxy.
    proxy_stats: Option<StatsAddr>,
    sentinel_addrs: Vec<String>,
    /// An external stack's management API: urls, node names, nodes.
    management: Option<(Vec<String>, Vec<String>, Vec<String>)>,
}

impl Endpoints {
    pub(super) async fn read(stack: &SharedStack, topology: &Topology) -> Self {
        let stack = stack.lock().await;
        Endpoints {
            broker_url: stack.client_broker_url(&topology.clients),
            backend_url: stack.client_backend_url(&topology.clients),
            proxy_stats: stack.proxy_stats(),
            sentinel_addrs: stack.sentinel_addrs(),
            // A local stack's leader is watched with rabbitmqctl after each broker fault;
            // an external one's over its management API, all the time.
            management: stack.management_api(),
        }
    }
}

/// The independent observers of the servers (and the producer's Redis keepalive).
pub(super) struct Observers {
    tasks: Vec<JoinHandle<()>>,
    cancel: CancellationToken,
}

impl Observers {
    /// Start every observer the stack allows, each with its tally in run.json.
    pub(super) fn start(
        live: &Arc<Live>,
        endpoints: &Endpoints,
        cancel: &CancellationToken,
    ) -> Self {
        let cancel = cancel.child_token();
        let mut tasks = Vec::new();
        let tally = |name: &str, address: String| {
            let t = ObserverTally::new(name, address);
            live.observers().push(t.clone());
            t
        };
        if let Some(socket) = endpoints.proxy_stats.clone() {
            let t = tally("haproxy stats", socket.to_string());
            tasks.push(tokio::spawn(watch_proxy(
                socket,
                live.servers.clone(),
                t,
                cancel.clone(),
            )));
        }
        if let Some((urls, names, nodes)) = endpoints.management.clone() {
            let t = tally("rabbitmq management", urls.join(" "));
            tasks.push(tokio::spawn(watch_queue_leader(
                urls,
                names,
                nodes,
                live.servers.clone(),
                t,
                cancel.clone(),
            )));
        }
        for addr in &endpoints.sentinel_addrs {
            let t = tally("sentinel", addr.clone());
            tasks.push(tokio::spawn(watch_sentinel(
                addr.clone(),
                live.servers.clone(),
                t,
                cancel.clone(),
            )));
        }
        Observers { tasks, cancel }
    }

    /// `backend.keepalive`: the producer's Redis connections publish every so often.
    pub(super) fn keepalive(&mut self, live: &Arc<Live>, results: &Results, topology: &Topology) {
        if !topology.backend.keepalive.is_zero() {
            self.tasks.push(tokio::spawn(redis_keepalive(
                results.reader.clone(),
                topology.backend.keepalive,
                live.clone(),
                self.cancel.clone(),
            )));
        }
    }

    pub(super) async fn stop(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// The result watcher (pub/sub), the collector that applies its events to the ledger,
/// and the reader for reconciliation reads.
pub(super) struct Results {
    pub(super) reader: backend::RedisConn,
    watcher: JoinHandle<()>,
    collector: JoinHandle<()>,
    cancel: CancellationToken,
}

impl Results {
    pub(super) async fn start(
        live: &Arc<Live>,
        endpoints: &Endpoints,
        cancel: &CancellationToken,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = cancel.child_token();
        let watcher = backend::watch_results(&endpoints.backend_url, tx, cancel.clone()).await?;
        let collector = tokio::spawn(collect(live.clone(), rx));
        let reader = backend::reader(&endpoints.backend_url).await?;
        reader.set_discovery_hook(discovery_hook(live.clone(), "results reader"));
        Ok(Results {
            reader,
            watcher,
            collector,
            cancel,
        })
    }

    /// Stop watching; every notification received so far is applied.
    pub(super) async fn stop(self) {
        self.cancel.cancel();
        let _ = self.watcher.await;
        let _ = self.collector.await;
    }
}
