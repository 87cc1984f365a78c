//! The command line: `hab run`, `hab compare`, `hab report`, `hab merge`, `hab calibrate`,
//! `hab sweep`, `hab worker`, `hab up`, `hab down`, `hab node`, `hab check`, `hab list`,
//! `hab init`, `hab completions`, `hab man`; the clap types are in `args`.
//!
//! Exit codes: 0 success; 1 the run failed or a threshold was crossed; 2 bad usage or bad
//! input files; 130 the run was interrupted (Ctrl-C / SIGTERM) — its results so far are
//! written all the same.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser};
use tokio_util::sync::CancellationToken;

use crate::cmd::run::{RunOptions, run};
use crate::cmd::up::NodeAction;
use crate::config::{self, ConfigError, FileKind};
use crate::record::RunStatus;
use crate::worker::{WorkerOptions, run_worker};

use args::{Cli, Command};

mod args;

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
        println!("Verdict:");
        for v in &c.verdict {
            println!("- {v}");
        }
        for (heading, lines) in c.findings.groups() {
            if !lines.is_empty() {
                println!("\n{heading}:");
                for f in lines {
                    println!("- {f}");
                }
            }
        }
        if let Some(t) = &c.timing {
            println!("\n{}", t.sentence());
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

/// An RFC 3339 instant for `--start-at`.
fn parse_start_at(s: &str) -> Result<crate::load::start::StartAt, String> {
    crate::load::start::StartAt::parse_rfc3339(s).map_err(|e| e.to_string())
}

/// A duration from now for `--start-in`, as the instant it names.
fn parse_start_in(s: &str) -> Result<crate::load::start::StartAt, String> {
    let now_unix_ms = crate::clock::wall_unix_us() / 1000;
    crate::load::start::StartAt::parse_in(s, now_unix_ms).map_err(|e| e.to_string())
}

/// The exit code for an error: 2 for bad input files, flags or shard directories that do
/// not belong together, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if e.chain().any(|c| {
        c.downcast_ref::<ConfigError>().is_some()
            || c.downcast_ref::<crate::cmd::merge::MergeError>().is_some()
            || c.downcast_ref::<crate::cmd::sweep::SweepError>().is_some()
    }) {
        2
    } else {
        1
    }
}

/// `hab sweep` without `--dry-run`: the plan, then every cell; exit 130 when
/// interrupted, 1 when a cell or the baseline could not be measured.
fn sweep(a: &args::SweepArgs, plan: &crate::cmd::sweep::SweepPlan) -> Result<i32> {
    eprint!("{}", crate::cmd::sweep::render_text(plan, false));
    let opts = a.options();
    runtime()?.block_on(async {
        let cancel = CancellationToken::new();
        handle_signals(cancel.clone(), true);
        let started = std::time::Instant::now();
        let run = crate::cmd::sweep::execute(
            &opts,
            plan,
            !a.no_progress && std::io::stderr().is_terminal(),
            crate::progress::stderr(),
            cancel,
        )
        .await?;
        let rendered = crate::cmd::sweep::render(&run, a.json);
        eprintln!(
            "hab sweep: {} in {:.0} s: {}",
            if run.interrupted { "stopped" } else { "done" },
            started.elapsed().as_secs_f64(),
            run.dir.display()
        );
        write_stdout(rendered.as_bytes())?;
        Ok(if run.interrupted {
            130
        } else if run.index.status == crate::record::sweep::SweepStatus::Complete {
            0
        } else {
            1
        })
    })
}

/// Parse the command line, run the command, print any error; returns the exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_tracing(matches!(
        cli.command,
        Command::Worker { .. } | Command::CeilingConsumer { .. }
    ));
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
    // (events.csv, the side channel), so its own lines are kept quiet by default. usvg
    // (charts at --png-scale) warns of each zero-width bar it skips: nothing is lost.
    let default = if worker {
        "info,lapin=off"
    } else {
        "warn,lapin=off,usvg=error"
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
        Command::Sweep(a) => {
            let plan = crate::cmd::sweep::plan(&a.options())?;
            if !a.dry_run {
                return sweep(&a, &plan);
            }
            let text = if a.json {
                serde_json::to_string_pretty(&plan)? + "\n"
            } else {
                crate::cmd::sweep::render_text(&plan, true)
            };
            write_stdout(text.as_bytes())
        }
        Command::Doctor => {
            let (text, ok) = crate::cmd::doctor::render(&crate::cmd::doctor::checks());
            write_stdout(text.as_bytes())?;
            Ok(if ok { 0 } else { 1 })
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
            allow_flush,
            allow_faults,
            dry_run,
            shard,
            start_at,
            start_in,
            barrier_timeout,
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
            let start = start_at.or(start_in);
            if barrier_timeout.is_some() && start.is_none() {
                eprintln!(
                    "error: --barrier-timeout bounds the barriers of shards started together; give --start-at TIME (or --start-in DURATION) too"
                );
                return Ok(2);
            }
            let start = start.map(|at| crate::cmd::run::StartOptions {
                at,
                barrier_timeout: barrier_timeout
                    .unwrap_or(crate::cmd::run::DEFAULT_BARRIER_TIMEOUT),
            });
            if let Some(s) = &start {
                eprintln!(
                    "hab: the shards start at {} (give every shard --start-at {})",
                    s.at, s.at
                );
            }
            crate::cmd::celery_env::prepare(&topo, crate::progress::stderr().as_ref())?;
            let opts = RunOptions {
                topology_path: topology,
                workload_path: workload,
                out_dir: out,
                progress: !no_progress,
                calibrate,
                allow_flush,
                allow_faults,
                shard,
                start,
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
            title,
            png_scale,
            thresholds,
        } => {
            if !dir.is_dir() {
                eprintln!(
                    "error: {} is not a directory (give a run directory from `hab run`, a comparison directory from `hab compare` or a sweep directory from `hab sweep`)",
                    dir.display()
                );
                return Ok(2);
            }
            let options = crate::chart::Options { title, png_scale };
            if dir.join(crate::record::sweep::SWEEP_INDEX_FILE).is_file() {
                // A sweep directory: its own analysis and report (thresholds do not apply).
                let a = crate::report::sweep::render_sweep_dir_with(&dir, &options)?;
                match json {
                    true => println!("{}", serde_json::to_string_pretty(&a)?),
                    false => print!("{}", crate::report::sweep::terminal(&a, &dir)),
                }
                return Ok(0);
            }
            let c = crate::report::render_dir_with(&dir, &options)?;
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
            if let Some(m) = &outcome.report.merged {
                let lines = crate::record::merge::skew_lines(&m.start_skew);
                if !lines.is_empty() {
                    println!("start skew (latest − earliest shard start, per workload):");
                    for l in lines {
                        println!("  {l}");
                    }
                }
            }
            println!("results: {}", outcome.dir.display());
            Ok(0)
        }
        Command::Calibrate {
            topology,
            out,
            duration,
            disk_bytes,
            json,
            allow_flush,
        } => {
            let topology = resolve(FileKind::Topology, &topology)?;
            let topo = config::load_topology(&topology)?;
            let opts = crate::cmd::calibrate::CalibrateOptions {
                topology_path: topology,
                out_dir: out,
                duration,
                disk_bytes,
                allow_flush,
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
        Command::Node {
            action,
            role,
            cpu_percent,
            dir,
        } => {
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
            match (action, cpu_percent) {
                (NodeAction::Throttle, None) => {
                    eprintln!("error: `hab node throttle` needs --cpu-percent PCT, e.g. 2");
                    return Ok(2);
                }
                (NodeAction::Throttle, Some(p)) if !(p > 0.0 && p < 100.0) => {
                    eprintln!("error: --cpu-percent must be above 0 and below 100, got {p}");
                    return Ok(2);
                }
                (NodeAction::Throttle, Some(_)) | (_, None) => {}
                (_, Some(_)) => {
                    eprintln!(
                        "error: --cpu-percent is only for `hab node throttle`, not `{}`",
                        action.as_str()
                    );
                    return Ok(2);
                }
            }
            runtime()?.block_on(crate::cmd::up::node(
                &dir,
                action,
                role.as_deref(),
                cpu_percent,
                &*crate::progress::stderr(),
            ))
        }
        Command::CeilingConsumer {
            topology,
            broker_url,
            backend_url,
            prefetch,
            batch,
            in_flight,
        } => {
            let topo = config::load_topology(&topology)?;
            let opts = crate::worker::ceiling::CeilingOptions {
                broker_url,
                backend_url,
                queue: topo.broker.queue,
                durable: topo.broker.durable,
                heartbeat: topo.broker.heartbeat,
                prefetch,
                batch: batch.max(1),
                in_flight: in_flight.max(1),
                ttl: topo.backend.result_ttl,
            };
            worker_runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                handle_signals(cancel.clone(), false);
                let n = crate::worker::ceiling::run(&opts, cancel).await?;
                tracing::info!(results = n, "ceiling consumer stopped");
                Ok(0)
            })
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
