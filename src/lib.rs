//! hab: what does high availability cost a task queue, and what does it buy?
//!
//! hab brings up a task-queue stack (RabbitMQ broker + Redis result backend) as real local
//! server processes, drives Celery protocol v2 tasks through it, follows every task in a
//! ledger and reports latency histograms, throughput and every task lost or run twice.
//!
//! # Layers
//! Seven layers, bottom to top; each module imports only from its own layer and those below
//! it, and `tests/layers.rs` fails on any import that goes up, crosses a forbidden pair or
//! closes a circle (DESIGN.md §2).
//! ```text
//! 7 face          cli
//! 6 commands      cmd (run, compare, calibrate, merge, up, sweep, check, catalog)
//! 5 presentation  export, compare, chart, report
//! 4 record        record, invariants
//! 3 metrics       metrics
//! 2 engines       stack, broker, backend, client_failover, producer, tasks, worker, load,
//!                 ledger, observe, inject
//! 1 vocabulary    config, protocol, fault, event, clock, credentials, progress, (testing)
//! ```
//! Never: config → stack; metrics → stack or the clients; record and presentation → stack,
//! the clients, worker or commands; worker and tasks → ledger, load or metrics; the clients
//! → stack or ledger; stack → inject, observe or commands; anything → cli; only cli → cmd.
//!
//! # Modules
//! Vocabulary (what the rest speaks):
//! - [`config`]: topology and workload files: strict serde types, `validate()`, located
//!   diagnostics, HAProxy's backend and server names ([`config::proxy`]).
//! - [`protocol`]: Celery protocol v2 messages, result records and states, the workers'
//!   side-channel format.
//! - [`fault`]: what to break ([`fault::Role`]), how ([`fault::FaultKind`]), and a fault
//!   as applied ([`fault::AppliedFault`]).
//! - [`event`]: what the clients and the server observers saw ([`event::ClientEvent`],
//!   [`event::ServerEvent`]), the producer's breaker states, HAProxy sessions.
//! - [`clock`]: the run's one monotonic clock and its anchor to Unix time.
//! - [`credentials`]: credentials of an external stack (environment or file), masked in
//!   output.
//! - [`progress`]: the [`progress::Reporter`] through which commands show progress.
//! - `testing` (unit tests only): assertions the unit tests share.
//!
//! Engines (what runs):
//! - [`stack`]: local orchestration of real servers, each a [`stack::process::ManagedProcess`]
//!   in one shared shell; network namespaces; an external stack's endpoints.
//! - [`broker`]: the AMQP client (publish with confirms, consume).
//! - [`backend`]: the Redis client (store results, watch results, SCAN result keys).
//! - [`client_failover`]: client-side failover (`[clients]`): the broker node rotation
//!   (kombu's round-robin) and the Redis master asked of the Sentinels.
//! - [`producer`]: the producer's policies for failed publishes (retry schedule, circuit
//!   breaker), pure state machines; their effects in [`metrics::outage`].
//! - [`tasks`]: the four task kinds; CPU and disk work runs off the async threads.
//! - [`worker`]: consume → execute → store result → ack, with an execution side channel.
//! - [`load`]: arrival schedules (pure), the pacer and generator shards.
//! - [`ledger`]: the per-task record and its classification.
//! - [`observe`]: independent observers of the servers (HAProxy's stats socket and session
//!   log, Sentinel events, the queue leader, a partitioned RabbitMQ node's log) and the CPU
//!   time of every process (`/proc`).
//! - [`inject`]: the fault injector and the plan of a workload's faults (timeline, checks,
//!   dry run).
//!
//! Metrics:
//! - [`metrics`]: histograms, per-workload summaries, timeline, failover anatomy, outage
//!   and idle-timeout effects, and the one median/spread ([`metrics::stats`]).
//!
//! Record (the run directory as data):
//! - [`record`]: run.json's [`record::RunReport`], calibration, shard and merge records,
//!   directory names with the one timestamp format, run directories read back.
//! - [`invariants`]: what every run checks of its own figures (run.json `invariants`).
//!
//! Presentation (rendered from record and metrics only):
//! - [`export`]: run.json, summary.csv, tasks.csv, events.csv, cpu.csv, HdrHistogram logs,
//!   the terminal table; the readers of what it writes sit beside the writers.
//! - [`compare`]: the analysis of a comparison: summary, findings, thresholds.
//! - [`chart`]: the charts of a comparison (SVG and PNG, bundled font).
//! - [`report`]: the publishable report (Markdown and HTML).
//!
//! Commands and face:
//! - [`cmd`]: one module per subcommand: [`cmd::run`] (stack up → workers → workloads →
//!   drain → results), [`cmd::compare`], [`cmd::calibrate`] (the raw limits of a stack),
//!   [`cmd::merge`] (shard run directories → one), [`cmd::up`] (`hab up`/`node`/`down`),
//!   [`cmd::sweep`] (the plan of a settings sweep), [`cmd::check`], [`cmd::catalog`]
//!   (`hab list`/`init`).
//! - [`cli`]: the command line (clap types and dispatch for `hab run`, `compare`, `report`,
//!   `merge`, `calibrate`, `sweep`, `check`, `list`, `init`, `completions`, `man`,
//!   `worker`, `up`, `node`, `down`).
//!
//! Data flow of a run: `config` → `stack` (endpoints) → `load` publishes through `broker` →
//! `worker` executes and stores through `backend` → the result watcher and the workers'
//! side channel feed the `ledger` → `metrics` → `record` → `export`/`report`.
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
pub mod metrics;
pub mod observe;
pub mod producer;
pub mod progress;
pub mod protocol;
pub mod record;
pub mod report;
pub mod stack;
pub mod tasks;
#[cfg(test)]
mod testing;
pub mod worker;
