//! End-to-end round trip on a real standalone stack that the bench starts and stops
//! itself (RabbitMQ + Redis on loopback, `topologies/standalone.toml`): publish a Celery
//! message with publisher confirms → hab's worker (in this process) executes `hab.trivial`
//! and stores the result as Celery's Redis backend does → the producer sees the result
//! through pub/sub.
//!
//! - `roundtrip/one_task`: latency of a single task, nothing else in flight.
//! - `roundtrip/batch/1000`: 1,000 tasks published with a window of unconfirmed publishes,
//!   until every result is seen (throughput: elements per second).
//! - `roundtrip/ceiling/1000`: the same 1,000 tasks on a second stack whose consumer is
//!   the end-to-end ceiling's ([`hab::worker::ceiling`]: results stored in batches, acks
//!   in batches, nothing else) instead of hab's worker: the path's own ceiling in this
//!   process, so `batch/1000 ÷ ceiling/1000` is what hab's worker adds to it.
//!
//! Needs the servers installed (`scripts/install-servers.sh`). Start-up (≈5 s) happens
//! once, outside the timed part. `cargo test --benches` runs each case once.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use hab::backend::{WatchEvent, watch_results};
use hab::broker::Publisher;
use hab::protocol::{TaskMessage, encode};
use hab::stack::{Stack, StackDirs, StackOptions};
use hab::worker::ceiling::CeilingOptions;
use hab::worker::{WorkerOptions, run_worker};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long one batch may take before the bench gives up (a broken stack, not a slow one).
const BATCH_TIMEOUT: Duration = Duration::from_secs(120);

struct Bench {
    rt: tokio::runtime::Runtime,
    stack: Option<Stack>,
    publisher: Publisher,
    results: mpsc::UnboundedReceiver<WatchEvent>,
    cancel: CancellationToken,
    worker: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

/// Which consumer serves the bench's queue.
#[derive(Clone, Copy)]
enum Consumer {
    /// hab's worker.
    Hab,
    /// The end-to-end ceiling's lean consumer.
    Ceiling,
}

impl Bench {
    fn start(consumer: Consumer) -> Bench {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let topo = hab::config::load_topology(&root.join("topologies/standalone.toml"))
            .expect("topologies/standalone.toml");
        let dir = tempfile::tempdir().expect("temp dir");
        let cancel = CancellationToken::new();
        let (stack, publisher, results, worker) = rt.block_on(async {
            let dirs = StackDirs::create(dir.path().join("logs")).expect("logs dir");
            let stack = Stack::start(&StackOptions::from_topology(&topo), &dirs)
                .await
                .expect("the standalone stack starts (scripts/install-servers.sh?)");
            let opts = WorkerOptions {
                name: "bench".into(),
                broker_url: stack.broker_url(),
                backend_url: stack.backend_url(),
                queue: topo.broker.queue,
                durable: topo.broker.durable,
                heartbeat: topo.broker.heartbeat,
                keepalive: topo.backend.keepalive,
                concurrency: topo.workers.concurrency(),
                prefetch: topo.workers.prefetch(),
                acks: topo.workers.acks,
                result_ttl: topo.backend.result_ttl,
                executions_file: dir.path().join("executions.csv"),
                scratch: dir.path().to_path_buf(),
                limits: topo.workers.limits.clone(),
                shutdown_grace: Duration::from_secs(5),
            };
            let publisher = Publisher::connect(&stack.broker_url(), &topo.broker, "bench")
                .await
                .expect("producer connects");
            let (tx, rx) = mpsc::unbounded_channel();
            watch_results(&stack.backend_url(), tx, cancel.clone())
                .await
                .expect("result subscription");
            let worker = match consumer {
                Consumer::Hab => tokio::spawn(run_worker(opts, cancel.clone())),
                Consumer::Ceiling => {
                    let lean = CeilingOptions {
                        broker_url: stack.broker_url(),
                        backend_url: stack.backend_url(),
                        queue: topo.broker.queue,
                        durable: topo.broker.durable,
                        heartbeat: topo.broker.heartbeat,
                        prefetch: 256,
                        batch: 64,
                        in_flight: 4,
                        ttl: topo.backend.result_ttl,
                    };
                    let cancel = cancel.clone();
                    tokio::spawn(async move {
                        hab::worker::ceiling::run(&lean, cancel).await.map(|_| ())
                    })
                }
            };
            (stack, publisher, rx, worker)
        });
        Bench {
            rt,
            stack: Some(stack),
            publisher,
            results,
            cancel,
            worker: Some(worker),
            _dir: dir,
        }
    }

    /// Publish `n` trivial tasks (up to 1,024 unconfirmed at once) and wait until the
    /// result of each one was seen.
    fn round_trip(&mut self, n: usize) {
        let Bench {
            rt,
            publisher,
            results,
            ..
        } = self;
        rt.block_on(async {
            let work = async {
                let mut outstanding = HashSet::with_capacity(n);
                let mut confirms = FuturesUnordered::new();
                for _ in 0..n {
                    let id = uuid::Uuid::new_v4();
                    let mut msg = TaskMessage::new("hab.trivial", json!([]));
                    msg.id = id.to_string();
                    let (body, props) = encode(&msg);
                    outstanding.insert(id);
                    if confirms.len() >= 1024 {
                        let _ = confirms.next().await;
                    }
                    confirms.push(publisher.publish(&body, props).await.expect("publish"));
                }
                while let Some(c) = confirms.next().await {
                    c.expect("broker confirmation");
                }
                while !outstanding.is_empty() {
                    match results.recv().await.expect("result watcher running") {
                        WatchEvent::Result(r) => {
                            outstanding.remove(&r.id);
                        }
                        other => panic!("result subscription disturbed: {other:?}"),
                    }
                }
            };
            tokio::time::timeout(BATCH_TIMEOUT, work)
                .await
                .expect("a batch completes");
        });
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.cancel.cancel();
        let worker = self.worker.take();
        let stack = self.stack.take();
        self.rt.block_on(async {
            if let Some(w) = worker {
                let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
            }
            self.publisher.close().await;
            if let Some(s) = stack {
                s.shutdown().await;
            }
        });
    }
}

fn bench_roundtrip(c: &mut Criterion) {
    let mut bench = Bench::start(Consumer::Hab);
    // Warm-up outside the measurement: connections, queue, worker's first deliveries.
    bench.round_trip(200);
    let mut group = c.benchmark_group("roundtrip");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("one_task", |b| b.iter(|| bench.round_trip(1)));
    group.throughput(Throughput::Elements(1000));
    group.bench_function("batch/1000", |b| b.iter(|| bench.round_trip(1000)));
    drop(bench);
    let mut ceiling = Bench::start(Consumer::Ceiling);
    ceiling.round_trip(200);
    group.bench_function("ceiling/1000", |b| b.iter(|| ceiling.round_trip(1000)));
    group.finish();
}

criterion_group!(benches, bench_roundtrip);
criterion_main!(benches);
