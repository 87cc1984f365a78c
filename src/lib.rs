//! hab: what does high availability cost a task queue, and what does it buy?
//!
//! hab brings up a task-queue stack (RabbitMQ broker + Redis result backend) as real local
//! server processes, drives Celery protocol v2 tasks through it, follows every task in a
//! ledger and reports latency histograms, throughput and every task lost or run twice.
//!
//! # Layout
//! - [`cli`]: the command line (`hab run`, `hab worker`, `hab check`).
//! - [`config`]: topology and workload files: strict serde types and `validate()`.
//! - [`credentials`]: credentials of an external stack (environment or file), masked in output.
//! - [`stack`]: local orchestration; each server is a [`stack::process::ManagedProcess`].
//! - [`protocol`]: Celery protocol v2 messages and result-backend records.
//! - [`broker`]: the AMQP client (publish with confirms, consume).
//! - [`producer`]: the producer's policies for failed publishes (retry schedule, circuit
//!   breaker), pure state machines; their effects in [`metrics::outage`].
//! - [`backend`]: the Redis client (store results, watch results).
//! - [`client_failover`]: client-side failover (`[clients]`): the broker node rotation
//!   (kombu's round-robin) and the Redis master asked of the Sentinels.
//! - [`tasks`]: the four task kinds; CPU and disk work runs off the async threads.
//! - [`worker`]: consume → execute → store result → ack, with an execution side channel.
//! - [`load`]: arrival schedules (pure) and the load generator.
//!   [`load::shard`]: generator shards (`hab run --shard I/N`): the split of every
//!   workload, task ids that name their shard, which shard applies the faults.
//! - [`fault`]: fault roles and kinds (what to break, how, when).
//! - [`event`]: what clients and server observers saw (client and server events), the
//!   producer's breaker states: the vocabulary of observers and metrics.
//! - [`inject`]: the fault injector and the plan of a workload's faults.
//! - [`ledger`]: the per-task record and its classification.
//! - [`metrics`]: histograms, per-workload summaries, failover anatomy and idle-timeout
//!   effects ([`metrics::idle`]).
//! - [`observe`]: what the clients went through (errors, reconnections, republishes), and
//!   independent observers of the servers (HAProxy's stats socket and session log,
//!   Sentinel events, a partitioned RabbitMQ node's log for `pause_minority`).
//! - [`record`]: the run directory as data: run.json ([`record::RunReport`]), calibration,
//!   shard and merge records, directory names with the one timestamp format, run
//!   directories loaded back ([`record::RunSet`]).
//! - [`export`]: run.json, summary.csv, tasks.csv, terminal table.
//! - [`chart`]: the charts of a comparison (SVG and PNG, bundled font).
//! - [`run`]: one run: stack up → workers → workloads → drain → results.
//! - [`invariants`]: what every run checks of its own figures (run.json `invariants`).
//! - [`merge`]: `hab merge`: shard run directories → one run directory (histograms added,
//!   ledgers joined by task id, failover analysed again on the merged ledger).
//! - [`clock`]: the run's one monotonic clock and its anchor to Unix time.
//! - [`progress`]: the [`progress::Reporter`] through which commands show progress.
//! - [`cmd`]: the commands (orchestration of one subcommand each); [`cmd::up`]: `hab up`/`hab node`/`hab down`.
//!   [`cmd::compare`]: `hab compare` (runs every topology, renders at the end);
//!   [`cmd::calibrate`]: the raw limits of a stack (broker, Redis, disk, CPU) on this machine.
//! - [`compare`]: `hab compare`'s analysis: summary, findings, thresholds.
//! - [`report`]: the publishable report (Markdown and HTML) of a comparison.
//!
//! Data flow: `config` → `stack` (endpoints) → `load` publishes through `broker` →
//! `worker` executes and stores through `backend` → the result watcher and the workers'
//! side channel feed the `ledger` → `metrics` → `export`.
#![warn(missing_docs)]

pub mod backend;
pub mod broker;
pub mod chart;
pub mod cli;
pub mod client_failover;
pub mod clock;
pub mod cmd;
pub mod compare;
pub mod config;
pub mod credentials;
pub mod event;
pub mod export;
pub mod fault;
pub mod inject;
pub mod invariants;
pub mod ledger;
pub mod load;
pub mod merge;
pub mod metrics;
pub mod observe;
pub mod producer;
pub mod progress;
pub mod protocol;
pub mod record;
pub mod report;
pub mod run;
pub mod stack;
pub mod tasks;
pub mod worker;
