//! The command line: `hab run`, `hab worker`, `hab check`.
//!
//! Exit codes: 0 success; 1 the run failed; 2 bad usage or bad input files; 130 the run
//! was interrupted (Ctrl-C / SIGTERM) — its results so far are written all the same.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{self, ConfigError};
use crate::export::RunStatus;
use crate::run::{RunOptions, run};
use crate::worker::{WorkerOptions, run_worker};

/// hab: what does high availability cost a task queue, and what does it buy?
#[derive(Debug, Parser)]
#[command(name = "hab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Bring up a topology, drive a workload plan through it, write a run directory.
    Run {
        /// Topology file (what is deployed), e.g. topologies/standalone.toml.
        #[arg(long, value_name = "FILE")]
        topology: PathBuf,
        /// Workload file (what is driven).
        #[arg(long, value_name = "FILE", default_value = "workloads/seed.toml")]
        workload: PathBuf,
        /// Directory in which the run directory is created.
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
        /// Never show progress bars (they only appear when stderr is a terminal).
        #[arg(long)]
        no_progress: bool,
    },
    /// Run one worker process (normally started by `hab run`).
    Worker {
        /// Topology file: queue kind, heartbeat, concurrency, prefetch, acks, result TTL.
        #[arg(long, value_name = "FILE")]
        topology: PathBuf,
        /// AMQP URL of the broker (or the proxy in front of it).
        #[arg(long, value_name = "URL")]
        broker_url: String,
        /// Redis URL of the result backend.
        #[arg(long, value_name = "URL")]
        backend_url: String,
        /// Worker name, unique within a run.
        #[arg(long, default_value = "w1")]
        name: String,
        /// Side-channel file the worker appends its executions to.
        #[arg(long, value_name = "FILE", default_value = "executions.csv")]
        executions: PathBuf,
    },
    /// Validate topology and workload files without starting anything.
    #[command(group(clap::ArgGroup::new("files").required(true).multiple(true).args(["topology", "workload"])))]
    Check {
        /// Topology file.
        #[arg(long, value_name = "FILE")]
        topology: Option<PathBuf>,
        /// Workload file.
        #[arg(long, value_name = "FILE")]
        workload: Option<PathBuf>,
    },
}

/// The exit code for an error: 2 for bad input files, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if e.chain().any(|c| c.downcast_ref::<ConfigError>().is_some()) {
        2
    } else {
        1
    }
}

/// Parse the command line, run the command, print any error; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Worker { .. }));
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit_code(&e)
        }
    }
}

fn init_tracing(worker: bool) {
    // lapin logs every connection loss at ERROR level; hab records each one itself
    // (events.csv, the side channel), so its own lines are kept quiet by default.
    let default = if worker {
        "info,lapin=off"
    } else {
        "warn,lapin=off"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Cancel `token` on the first SIGINT/SIGTERM; on the second, kill every server at once
/// and exit.
fn handle_signals(token: CancellationToken, second_kills: bool) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        if second_kills {
            eprintln!(
                "\nhab: interrupted: stopping and writing results (Ctrl-C again to exit at once)"
            );
        }
        token.cancel();
        tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
        if second_kills {
            eprintln!("hab: exiting at once");
            crate::stack::process::kill_all_now();
            std::process::exit(130);
        }
    });
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Check { topology, workload } => {
            if let Some(t) = topology {
                let t = config::load_topology(&t)?;
                println!("topology {}: ok", t.name);
            }
            if let Some(w) = workload {
                let w = config::load_workload_plan(&w)?;
                println!(
                    "workload plan {}: ok ({} workloads)",
                    w.name,
                    w.workloads.len()
                );
            }
            Ok(0)
        }
        Command::Run {
            topology,
            workload,
            out,
            no_progress,
        } => {
            let topo = config::load_topology(&topology)?;
            let plan = config::load_workload_plan(&workload)?;
            let opts = RunOptions {
                topology_path: topology,
                workload_path: workload,
                out_dir: out,
                progress: !no_progress,
            };
            runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                handle_signals(cancel.clone(), true);
                let outcome = run(&opts, &topo, &plan, cancel).await?;
                println!("{}", crate::export::table::render(&outcome.report));
                if let Some(ms) = outcome.report.bringup_ms {
                    println!("stack bring-up: {ms} ms");
                }
                println!("results: {}", outcome.dir.display());
                Ok(match outcome.report.status {
                    RunStatus::Interrupted => 130,
                    _ => 0,
                })
            })
        }
        Command::Worker {
            topology,
            broker_url,
            backend_url,
            name,
            executions,
        } => {
            let topo = config::load_topology(&topology)?;
            let opts = WorkerOptions {
                name,
                broker_url,
                backend_url,
                queue: topo.broker.queue,
                durable: topo.broker.durable,
                heartbeat: topo.broker.heartbeat,
                concurrency: topo.workers.concurrency(),
                prefetch: topo.workers.prefetch(),
                acks: topo.workers.acks,
                result_ttl: topo.backend.result_ttl,
                executions_file: executions,
                shutdown_grace: Duration::from_secs(10),
            };
            runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                handle_signals(cancel.clone(), false);
                run_worker(opts, cancel).await?;
                Ok(0)
            })
        }
    }
}
