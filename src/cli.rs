//! The command line: `hab run`, `hab compare`, `hab report`, `hab merge`, `hab calibrate`,
//! `hab worker`, `hab up`, `hab down`, `hab node`, `hab check`.
//!
//! Exit codes: 0 success; 1 the run failed or a threshold was crossed; 2 bad usage or bad
//! input files; 130 the run was interrupted (Ctrl-C / SIGTERM) — its results so far are
//! written all the same.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::cmd::run::{RunOptions, run};
use crate::cmd::up::NodeAction;
use crate::config::{self, ConfigError, FileKind};
use crate::record::RunStatus;
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
        /// Topology file (what is deployed), e.g. topologies/standalone.toml, or a name:
        /// FILE is looked up as given, then under topologies/ (workloads/) here, then
        /// among the built-ins (`hab list`), with or without .toml.
        #[arg(long, value_name = "FILE")]
        topology: PathBuf,
        /// Workload file (what is driven); a name such as `seed` is found as --topology is.
        #[arg(long, value_name = "FILE", default_value = "seed")]
        workload: PathBuf,
        /// Directory in which the run directory is created.
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
        /// Never show progress bars (they only appear when stderr is a terminal).
        #[arg(long)]
        no_progress: bool,
        /// Measure the stack's raw limits first (as `hab calibrate`, windows of this
        /// length, e.g. 3s), so the report shows the task path as a fraction of them.
        #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "3s", value_parser = positive_duration)]
        calibrate: Option<Duration>,
        /// On an external stack (a topology with [external]), run the workload's faults:
        /// their commands act on servers hab does not own. Without it such a run is
        /// refused.
        #[arg(long)]
        allow_faults: bool,
        /// Print every command an external run's faults would run, in order, and exit
        /// without starting or contacting anything.
        #[arg(long)]
        dry_run: bool,
        /// Run generator shard I of N (e.g. 1/2): 1/N of every workload (task i belongs to
        /// shard i % N + 1), task ids that name the shard; shard 1 applies the plan's
        /// faults. Combine the shards' run directories with `hab merge`.
        #[arg(long, value_name = "I/N", value_parser = parse_shard)]
        shard: Option<crate::load::shard::Shard>,
        /// Exit 1 if the run violated one of the invariants it checks of its own figures
        /// (run.json `invariants`; they are checked and reported either way).
        #[arg(long)]
        strict: bool,
    },
    /// Combine the run directories of the shards of one run (`hab run --shard I/N`) into
    /// one run directory: histograms added, ledgers joined by task id, failover analysed
    /// again on the merged ledger, report rendered.
    Merge {
        /// The shards' run directories, one per shard 1..N (any order).
        #[arg(value_name = "DIR", required = true)]
        dirs: Vec<PathBuf>,
        /// Directory in which the merged run directory is created.
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
    },
    /// Run the baseline and each topology with the same workload plan; write one
    /// comparison directory with every run, charts and the report.
    Compare {
        /// Topology to compare with the baseline (repeat the option for several): a file,
        /// or a name looked up under topologies/ here, then among the built-ins
        /// (`hab list`), e.g. `ha`.
        #[arg(long = "topology", value_name = "FILE", required = true)]
        topologies: Vec<PathBuf>,
        /// The baseline topology (found as --topology is).
        #[arg(long, value_name = "FILE", default_value = "standalone")]
        baseline: PathBuf,
        /// Workload file every topology runs (found as --topology is).
        #[arg(long, value_name = "FILE", default_value = "seed")]
        workload: PathBuf,
        /// Runs per topology (interleaved: baseline, other, baseline, other, …).
        #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        repeat: u32,
        /// Directory in which the comparison directory is created.
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
        /// Never show progress bars (they only appear when stderr is a terminal).
        #[arg(long)]
        no_progress: bool,
        /// Print the summary as JSON on stdout (the human summary goes to stderr).
        #[arg(long)]
        json: bool,
        /// Measure each stack's raw limits before its workloads (as `hab calibrate`,
        /// windows of this length, e.g. 3s); the report sets the task path against them.
        #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "3s", value_parser = positive_duration)]
        calibrate: Option<Duration>,
        /// Run the workload's faults on external stacks too (see `hab run --allow-faults`).
        #[arg(long)]
        allow_faults: bool,
        #[command(flatten)]
        thresholds: ThresholdArgs,
    },
    /// Render charts and reports again from the run.json files of a run or comparison
    /// directory, without running anything.
    Report {
        /// A comparison directory (from `hab compare`) or a run directory (from `hab run`).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Print the summary as JSON on stdout (the human summary goes to stderr).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        thresholds: ThresholdArgs,
    },
    /// Measure the raw limits of a topology's stack on this machine: broker round trip,
    /// Redis result writes, disk writes with fdatasync, factorial CPU time.
    Calibrate {
        /// Topology file (what is deployed), e.g. topologies/standalone.toml.
        #[arg(long, value_name = "FILE")]
        topology: PathBuf,
        /// Directory in which the run directory is created.
        #[arg(long, value_name = "DIR", default_value = "results")]
        out: PathBuf,
        /// Length of each timed window (after an untimed warm-up), e.g. 3s, 500ms; the
        /// broker round trip splits it into three runs of each strategy.
        #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = positive_duration)]
        duration: Duration,
        /// Size of each file the disk figure writes, bytes (deleted right after).
        #[arg(long, value_name = "BYTES", default_value_t = crate::cmd::calibrate::DEFAULT_DISK_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
        disk_bytes: u64,
        /// Print the calibration as JSON on stdout (the table goes to stderr).
        #[arg(long)]
        json: bool,
    },
    /// Run one worker process (normally started by `hab run`).
    Worker {
        /// Topology file: queue kind, heartbeat, concurrency, prefetch, acks, result TTL.
        #[arg(long, value_name = "FILE")]
        topology: PathBuf,
        /// AMQP URL of the broker (or the proxy in front of it); several separated by `;`
        /// for client-side failover (rotated on failure, as Celery does).
        #[arg(long, value_name = "URL")]
        broker_url: String,
        /// Redis URL of the result backend, or `sentinel://h:p;sentinel://h:p?master_name=NAME`
        /// to ask the Sentinels for the master (client-side failover).
        #[arg(long, value_name = "URL")]
        backend_url: String,
        /// Worker name, unique within a run.
        #[arg(long, default_value = "w1")]
        name: String,
        /// Side-channel file the worker appends its executions to.
        #[arg(long, value_name = "FILE", default_value = "executions.csv")]
        executions: PathBuf,
        /// The only directory `hab.write_zeros` may create files in (paths in messages are
        /// taken inside it; anything that leads out is refused). Default: `scratch/`
        /// beside the executions file, created if missing.
        #[arg(long, value_name = "DIR")]
        scratch: Option<PathBuf>,
    },
    /// Bring a local topology's stack up and leave it running (a detached supervisor),
    /// with DIR/external.toml describing it as an external stack; see `hab down`.
    Up {
        /// Topology file (a local one).
        #[arg(long, value_name = "FILE")]
        topology: PathBuf,
        /// Directory for the stack's state, logs and control socket.
        #[arg(long, value_name = "DIR", default_value = "results/up")]
        dir: PathBuf,
        /// Stay in the foreground as the supervisor (until SIGTERM / Ctrl-C / hab down).
        #[arg(long)]
        foreground: bool,
    },
    /// Stop the stack `hab up` left running in DIR and wait until it is gone.
    Down {
        /// The directory given to `hab up`.
        #[arg(long, value_name = "DIR", default_value = "results/up")]
        dir: PathBuf,
    },
    /// Act on a node of the stack `hab up` left running (the fault commands of its
    /// external.toml): kill, stop, start, pause, resume, partition, heal, failover, or
    /// health (exit 0 when the whole stack is healthy).
    Node {
        /// What to do.
        #[arg(value_name = "ACTION", value_enum)]
        action: NodeAction,
        /// The node, by role (`broker.node[1]`, `backend.master`, …), resolved by the
        /// supervisor now; not needed for `health`.
        #[arg(value_name = "ROLE")]
        role: Option<String>,
        /// The directory given to `hab up`.
        #[arg(long, value_name = "DIR", default_value = "results/up")]
        dir: PathBuf,
    },
    /// List the topologies and workloads built into hab: what each is, and what it sets
    /// up or drives.
    List,
    /// Write editable copies of the built-in topologies and workloads to DIR/topologies/
    /// and DIR/workloads/, with topologies/external-example.toml, a template for
    /// measuring your own cluster.
    Init {
        /// Where to write them.
        #[arg(value_name = "DIR", default_value = ".")]
        dir: PathBuf,
        /// Overwrite files that exist (without it, nothing is written if one does).
        #[arg(long)]
        force: bool,
    },
    /// Print a completion script for SHELL on stdout, e.g. `hab completions bash >
    /// ~/.local/share/bash-completion/completions/hab`, zsh: `_hab` in a directory of
    /// $fpath, fish: ~/.config/fish/completions/hab.fish.
    Completions {
        /// The shell.
        #[arg(value_name = "SHELL", value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print hab's man page (roff) on stdout, e.g. `hab man > hab.1 && man ./hab.1`.
    Man,
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

/// Thresholds for CI: crossing one makes the command exit 1 and say what crossed it.
#[derive(Debug, clap::Args)]
struct ThresholdArgs {
    /// Fail if a topology's p99 latency on any workload exceeds this multiple of the
    /// baseline's (e.g. 1.5).
    #[arg(long, value_name = "RATIO")]
    max_p99_ratio: Option<f64>,
    /// Fail if a topology's throughput on any workload is below this fraction of the
    /// baseline's (e.g. 0.5).
    #[arg(long, value_name = "RATIO")]
    min_throughput_ratio: Option<f64>,
    /// Fail if a topology lost more tasks than this over all workloads (never executed,
    /// result lost, or never confirmed).
    #[arg(long, value_name = "N")]
    max_lost: Option<u64>,
    /// Fail if a topology ran more tasks than this more than once.
    #[arg(long, value_name = "N")]
    max_duplicated: Option<u64>,
    /// Fail if any repetition of any fault took longer than this to switch (e.g. 5s), or
    /// never completed a task after the fault.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    max_switch_time: Option<Duration>,
    /// Fail if any run violated one of the invariants it checks of its own figures (one
    /// outcome per task, histogram counts = ok counts, …; run.json `invariants`).
    #[arg(long)]
    strict: bool,
}

impl ThresholdArgs {
    fn thresholds(&self) -> crate::compare::Thresholds {
        crate::compare::Thresholds {
            max_p99_ratio: self.max_p99_ratio,
            min_throughput_ratio: self.min_throughput_ratio,
            max_lost: self.max_lost,
            max_duplicated: self.max_duplicated,
            max_switch_ms: self.max_switch_time.map(|d| d.as_secs_f64() * 1000.0),
            strict: self.strict,
        }
    }
}

/// Print the summary (JSON on stdout, or the table), check the thresholds; returns
/// whether all held.
fn summarise(
    dir: &std::path::Path,
    c: &crate::compare::Comparison,
    complete: bool,
    t: &crate::compare::Thresholds,
    json: bool,
) -> Result<bool> {
    let crossed = t.check(c);
    let table = crate::compare::terminal::render(c);
    if json {
        eprintln!("{table}");
        let s = crate::compare::JsonSummary {
            dir,
            complete,
            comparison: c,
            thresholds: t,
            crossed: &crossed,
        };
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        println!("{table}");
        for f in &c.findings {
            println!("- {f}");
        }
        println!();
        println!("report: {}", dir.join("report.html").display());
    }
    for x in &crossed {
        eprintln!("threshold crossed: {}", x.message);
    }
    Ok(crossed.is_empty())
}

/// What a `--topology`/`--workload` value names, as hab passes it on: the path that
/// exists, or `builtin:NAME` ([`config::builtin::resolve`]).
fn resolve(kind: FileKind, given: &std::path::Path) -> Result<PathBuf> {
    Ok(config::builtin::resolve(kind, given)?.spec())
}

/// Write `bytes` to stdout; a reader that closed the pipe early (`| head`) is no error.
fn write_stdout(bytes: &[u8]) -> Result<i32> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}

/// A duration longer than zero (`3s`, `500ms`).
fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(d)
}

/// `I/N` for `--shard`.
fn parse_shard(s: &str) -> Result<crate::load::shard::Shard, String> {
    s.parse()
        .map_err(|e: crate::load::shard::ShardParseError| e.to_string())
}

/// The exit code for an error: 2 for bad input files (or shard directories that do not
/// belong together), 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if e.chain().any(|c| {
        c.downcast_ref::<ConfigError>().is_some()
            || c.downcast_ref::<crate::cmd::merge::MergeError>().is_some()
    }) {
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
            eprintln!("error: {}", error_message(&e));
            exit_code(&e)
        }
    }
}

/// An error and its causes on one line (`outer: inner: os error`), each said once: a
/// cause whose text an outer message already holds (an error type that both prints its
/// source and returns it from `source()`, as some libraries' do) is not repeated.
pub fn error_message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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
/// The worker's runtime: one thread. Its work is I/O (lapin's own I/O thread, one Redis
/// connection) with CPU and disk tasks on blocking threads; on a 2-core machine shared
/// with the servers, a second scheduler thread only adds cross-thread wake-ups.
fn worker_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

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
            crate::stack::netns::remove_all_now();
            std::process::exit(130);
        }
    });
}

fn dispatch(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "hab", &mut out);
            write_stdout(&out)
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut out)?;
            write_stdout(&out)
        }
        Command::List => write_stdout(crate::cmd::catalog::list(".".as_ref()).as_bytes()),
        Command::Init { dir, force } => {
            let done = crate::cmd::catalog::init(&dir, force)?;
            if let Some(why) = done.refusal() {
                eprintln!("error: {why}");
                return Ok(2);
            }
            print!("{}", done.summary(&dir));
            Ok(0)
        }
        Command::Check { topology, workload } => {
            let r = crate::progress::Stderr;
            let text = crate::cmd::check::check(topology.as_deref(), workload.as_deref(), &r)?;
            write_stdout(text.as_bytes())
        }
        Command::Run {
            topology,
            workload,
            out,
            no_progress,
            calibrate,
            allow_faults,
            dry_run,
            shard,
            strict,
        } => {
            let topology = resolve(FileKind::Topology, &topology)?;
            let workload = resolve(FileKind::Workload, &workload)?;
            let topo = config::load_topology(&topology)?;
            let plan = config::load_workload_plan(&workload)?;
            eprintln!(
                "hab: topology {}, workload {}",
                topology.display(),
                workload.display()
            );
            if dry_run {
                let Some(e) = &topo.external else {
                    eprintln!(
                        "error: --dry-run lists the fault commands of an external stack; {} has no [external] (a local stack's faults are signals hab sends its own processes)",
                        topology.display()
                    );
                    return Ok(2);
                };
                print!("{}", crate::inject::plan::dry_run(e, &plan));
                return Ok(0);
            }
            config::missing_files(&topo, &topology)?;
            let opts = RunOptions {
                topology_path: topology,
                workload_path: workload,
                out_dir: out,
                progress: !no_progress,
                calibrate,
                allow_faults,
                shard,
                reporter: crate::progress::stderr(),
            };
            runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                handle_signals(cancel.clone(), true);
                let outcome = run(&opts, &topo, &plan, cancel).await?;
                println!("{}", crate::export::table::render(&outcome.report));
                for f in
                    crate::compare::findings::worker_findings(&topo.name, &outcome.report.workers)
                {
                    println!("- {f}");
                }
                if let Some(ms) = outcome.report.bringup_ms {
                    println!("stack bring-up: {ms} ms");
                }
                println!("results: {}", outcome.dir.display());
                let violated = !crate::invariants::all_hold(&outcome.report.invariants);
                Ok(match outcome.report.status {
                    RunStatus::Interrupted => 130,
                    _ if strict && violated => {
                        eprintln!("hab: --strict: an invariant was violated (see above)");
                        1
                    }
                    _ => 0,
                })
            })
        }
        Command::Compare {
            topologies,
            baseline,
            workload,
            repeat,
            out,
            no_progress,
            json,
            calibrate,
            allow_faults,
            thresholds,
        } => {
            let baseline = resolve(FileKind::Topology, &baseline)?;
            let topologies = topologies
                .iter()
                .map(|t| resolve(FileKind::Topology, t))
                .collect::<Result<Vec<_>>>()?;
            let workload = resolve(FileKind::Workload, &workload)?;
            let all: Vec<_> = std::iter::once(&baseline).chain(&topologies).collect();
            let all: Vec<_> = all.iter().map(|p| p.display().to_string()).collect();
            eprintln!(
                "hab: topologies {} (baseline first), workload {}",
                all.join(", "),
                workload.display()
            );
            let opts = crate::cmd::compare::CompareOptions {
                allow_faults,
                baseline,
                topologies,
                workload,
                repeat,
                out_dir: out,
                progress: !no_progress,
                calibrate,
                reporter: crate::progress::stderr(),
            };
            // Every file is checked before anything starts (exit 2 on bad input).
            crate::cmd::compare::load_inputs(&opts)?;
            let t = thresholds.thresholds();
            runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                handle_signals(cancel.clone(), true);
                let started = std::time::Instant::now();
                let outcome = crate::cmd::compare::compare(&opts, cancel).await?;
                let complete = !outcome.interrupted && outcome.error.is_none();
                let held = match &outcome.comparison {
                    Some(c) => summarise(&outcome.dir, c, complete, &t, json)?,
                    None => true,
                };
                eprintln!(
                    "hab compare: {} in {:.0} s: {}",
                    if complete { "done" } else { "stopped" },
                    started.elapsed().as_secs_f64(),
                    outcome.dir.display()
                );
                if let Some(e) = outcome.error {
                    return Err(e);
                }
                Ok(if outcome.interrupted {
                    130
                } else if held {
                    0
                } else {
                    1
                })
            })
        }
        Command::Report {
            dir,
            json,
            thresholds,
        } => {
            if !dir.is_dir() {
                eprintln!(
                    "error: {} is not a directory (give a run directory from `hab run` or a comparison directory from `hab compare`)",
                    dir.display()
                );
                return Ok(2);
            }
            let c = crate::report::render_dir(&dir)?;
            let complete = c
                .topologies
                .iter()
                .all(|t| t.statuses.iter().all(|s| *s == RunStatus::Complete));
            let held = summarise(&dir, &c, complete, &thresholds.thresholds(), json)?;
            Ok(if held { 0 } else { 1 })
        }
        Command::Merge { dirs, out } => {
            let outcome = crate::cmd::merge::merge(&dirs, &out, &crate::progress::Stderr)?;
            println!("{}", crate::export::table::render(&outcome.report));
            println!("results: {}", outcome.dir.display());
            Ok(0)
        }
        Command::Calibrate {
            topology,
            out,
            duration,
            disk_bytes,
            json,
        } => {
            let topology = resolve(FileKind::Topology, &topology)?;
            let topo = config::load_topology(&topology)?;
            let opts = crate::cmd::calibrate::CalibrateOptions {
                topology_path: topology,
                out_dir: out,
                duration,
                disk_bytes,
                reporter: crate::progress::stderr(),
            };
            runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                handle_signals(cancel.clone(), true);
                let outcome = crate::cmd::calibrate::calibrate(&opts, &topo, cancel).await?;
                let c = &outcome.calibration;
                let table = crate::cmd::calibrate::render_table(c);
                if json {
                    eprintln!("{table}");
                    println!("{}", serde_json::to_string_pretty(c)?);
                    eprintln!("results: {}", outcome.dir.display());
                } else {
                    println!("{table}");
                    if let Some(ms) = c.bringup_ms {
                        println!("stack bring-up: {ms} ms");
                    }
                    println!("results: {}", outcome.dir.display());
                }
                Ok(match c.status {
                    RunStatus::Interrupted => 130,
                    _ => 0,
                })
            })
        }
        Command::Up {
            topology,
            dir,
            foreground,
        } => {
            if !foreground {
                return crate::cmd::up::up(&topology, &dir, &*crate::progress::stderr());
            }
            runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                handle_signals(cancel.clone(), true);
                crate::cmd::up::supervise(&topology, &dir, cancel, &*crate::progress::stderr())
                    .await?;
                Ok(0)
            })
        }
        Command::Down { dir } => {
            runtime()?.block_on(crate::cmd::up::down(&dir, &*crate::progress::stderr()))
        }
        Command::Node { action, role, dir } => {
            if action != NodeAction::Health && role.is_none() {
                eprintln!(
                    "error: `hab node {}` needs a ROLE, e.g. broker.node[0]",
                    action.as_str()
                );
                return Ok(2);
            }
            if let Some(r) = &role
                && let Err(e) = r.parse::<crate::fault::Role>()
            {
                eprintln!("error: {e}");
                return Ok(2);
            }
            runtime()?.block_on(crate::cmd::up::node(
                &dir,
                action,
                role.as_deref(),
                &*crate::progress::stderr(),
            ))
        }
        Command::Worker {
            topology,
            broker_url,
            backend_url,
            name,
            executions,
            scratch,
        } => {
            let topo = config::load_topology(&topology)?;
            let scratch = match scratch {
                Some(dir) => dir,
                None => {
                    let dir = executions
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(std::path::Path::new("."))
                        .join("scratch");
                    std::fs::create_dir_all(&dir).with_context(|| {
                        format!("cannot create the scratch directory {}", dir.display())
                    })?;
                    dir
                }
            };
            let opts = WorkerOptions {
                name,
                broker_url,
                backend_url,
                queue: topo.broker.queue,
                durable: topo.broker.durable,
                heartbeat: topo.broker.heartbeat,
                keepalive: topo.backend.keepalive,
                concurrency: topo.workers.concurrency(),
                prefetch: topo.workers.prefetch(),
                acks: topo.workers.acks,
                result_ttl: topo.backend.result_ttl,
                executions_file: executions,
                scratch,
                limits: topo.workers.limits.clone(),
                shutdown_grace: Duration::from_secs(10),
            };
            worker_runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                handle_signals(cancel.clone(), false);
                run_worker(opts, cancel).await?;
                Ok(0)
            })
        }
    }
}

#[cfg(test)]
mod tests;
