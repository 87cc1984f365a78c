//! The command line's clap types: every subcommand, its options and their help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::cmd::up::NodeAction;

/// Where hab writes, said at the end of `hab --help` (and in the man page).
pub(super) const WHERE_FILES_GO: &str = "\
Where hab writes:
  results/ under the current directory (--out DIR): one directory per run or comparison,
           with run.json, CSV files, HdrHistogram logs, charts and report.md/html.
  Scratch: the files hab.write_zeros writes go in the run directory's scratch/ (or the
           workload's scratch_dir) and are deleted as each task ends; the servers' logs and
           configs go in the run directory's logs/; RabbitMQ, Redis and HAProxy keep their state
           in temporary directories under $TMPDIR (default /tmp), removed when they stop;
           ports are reserved with lock files in $TMPDIR/hab-ports-<uid>/.
Topologies and workloads: a FILE is read as given, then from topologies/ or workloads/
  here, then from the built-ins (`hab list`; `hab init` writes editable copies).";

/// hab: what does high availability cost a task queue, and what does it buy?
#[derive(Debug, Parser)]
#[command(name = "hab", version, about, long_about = None, after_help = WHERE_FILES_GO)]
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
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
        #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "3s", value_parser = super::positive_duration)]
        calibrate: Option<Duration>,
        /// With --calibrate on an external stack: let the calibration purge the `celery`
        /// queue and flush the result database (e.g. a stack `hab up` started that nothing
        /// else uses). Without it that is refused.
        #[arg(long, requires = "calibrate")]
        allow_flush: bool,
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
        #[arg(long, value_name = "I/N", value_parser = super::parse_shard)]
        shard: Option<crate::load::shard::Shard>,
        /// Start the first workload at this instant (RFC 3339 with an offset, e.g.
        /// 2026-12-07T18:00:00Z), after bring-up and warm-up; give every shard the same
        /// one. Later workloads start when every shard has reached them (a barrier on the
        /// stack's Redis). A shard that gets there late starts at once and records it.
        #[arg(long, value_name = "TIME", value_parser = super::parse_start_at, requires = "shard", conflicts_with = "start_in")]
        start_at: Option<crate::load::start::StartAt>,
        /// As --start-at, at the next whole second at least this long from now (e.g.
        /// 30s): only for shards launched together; give shards launched apart one
        /// --start-at.
        #[arg(long, value_name = "DURATION", value_parser = super::parse_start_in, requires = "shard")]
        start_in: Option<crate::load::start::StartAt>,
        /// How long a shard waits at a barrier for the other shards before it starts a
        /// workload anyway (recorded in run.json and warned about); with --start-at or
        /// --start-in.
        #[arg(long, value_name = "DURATION", value_parser = super::positive_duration)]
        barrier_timeout: Option<Duration>,
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
        #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "3s", value_parser = super::positive_duration)]
        calibrate: Option<Duration>,
        /// Run the workload's faults on external stacks too (see `hab run --allow-faults`).
        #[arg(long)]
        allow_faults: bool,
        #[command(flatten)]
        thresholds: ThresholdArgs,
    },
    /// Render charts and reports again from the run.json files of a run or comparison
    /// directory, or from a sweep directory (sweep-index.json), without running anything.
    Report {
        /// A comparison directory (`hab compare`), a run directory (`hab run`) or a sweep
        /// directory (`hab sweep`).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// Print the summary as JSON on stdout (the human summary goes to stderr).
        #[arg(long)]
        json: bool,
        /// The report's title, also drawn before each chart's own (default: the
        /// topologies and the workload file, e.g. "hab comparison: standalone vs ha").
        #[arg(long, value_name = "TEXT")]
        title: Option<String>,
        /// PNG charts at this many pixels per SVG unit: 2 for slides and papers (1 to 4).
        /// The SVGs keep their text as text at any scale.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=crate::chart::MAX_PNG_SCALE as i64))]
        png_scale: u32,
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
        /// broker round trip splits it into three runs of each strategy (strategies under
        /// 85 % of the leader after the first are not run again); the Redis, disk and CPU
        /// figures end early once settled (at least 1 s; their `how` says which).
        #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = super::positive_duration)]
        duration: Duration,
        /// Size of each file the disk figure writes, bytes (deleted right after).
        #[arg(long, value_name = "BYTES", default_value_t = crate::cmd::calibrate::DEFAULT_DISK_BYTES, value_parser = clap::value_parser!(u64).range(1..))]
        disk_bytes: u64,
        /// Print the calibration as JSON on stdout (the table goes to stderr).
        #[arg(long)]
        json: bool,
        /// Calibrate an external stack: the calibration purges its `celery` queue and
        /// flushes its result database (e.g. a stack `hab up` started that nothing else
        /// uses). Without it an external topology is refused.
        #[arg(long)]
        allow_flush: bool,
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
    /// The end-to-end ceiling's consumer (`hab calibrate` starts it): consumes hab.trivial
    /// messages and stores their results in batches, nothing else. Not for direct use.
    #[command(hide = true)]
    CeilingConsumer {
        /// Topology file: queue kind and durability, heartbeat, result TTL.
        #[arg(long, value_name = "FILE")]
        topology: PathBuf,
        #[arg(long, value_name = "URL")]
        broker_url: String,
        #[arg(long, value_name = "URL")]
        backend_url: String,
        #[arg(long, default_value_t = 256)]
        prefetch: u16,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 4)]
        in_flight: usize,
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
        /// For `throttle`: the share of one core the node keeps, in % (above 0, below 100).
        #[arg(long, value_name = "PCT")]
        cpu_percent: Option<f64>,
        /// The directory given to `hab up`.
        #[arg(long, value_name = "DIR", default_value = "results/up")]
        dir: PathBuf,
    },
    /// Which HA settings should I run? The same measurements over several settings of one
    /// topology (`--vary KEY=V1,V2,…` or a sweep file); `--dry-run` prints the plan.
    Sweep(SweepArgs),
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
    /// Check what a run needs on this machine: the servers (with versions), `ip` and root
    /// for network namespaces, Python for the Celery worker; prints the apt-get line for
    /// what is missing. Exits 1 when a server is missing.
    Doctor,
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

/// `hab sweep`'s options (see [`crate::cmd::sweep`]).
#[derive(Debug, clap::Args)]
pub(super) struct SweepArgs {
    /// The topology to sweep: the reference cell, whose values the others vary.
    #[arg(long, value_name = "FILE")]
    pub(super) topology: PathBuf,
    /// A knob and its values, e.g. proxy.fall=1,2,3 (repeat for several knobs; replaces
    /// the sweep file's knob of the same key).
    #[arg(long, value_name = "KEY=V1,V2,…")]
    pub(super) vary: Vec<String>,
    /// Sweep file with knobs, workload, baseline, budget, repetitions (default
    /// sweeps/default.toml when no --vary is given).
    #[arg(long, value_name = "FILE")]
    pub(super) sweep: Option<PathBuf>,
    /// Workload file every cell runs (default: the sweep file's, else workloads/sweep.toml).
    #[arg(long, value_name = "FILE")]
    pub(super) workload: Option<PathBuf>,
    /// Baseline topology for the cost of HA (default: the sweep file's, else
    /// topologies/standalone.toml).
    #[arg(long, value_name = "FILE")]
    pub(super) baseline: Option<PathBuf>,
    /// How long the sweep may take, e.g. 30m (default: the sweep file's, else 30m): a full
    /// grid that fits runs whole, otherwise one knob at a time.
    #[arg(long, value_name = "DURATION", value_parser = super::positive_duration)]
    pub(super) budget: Option<Duration>,
    /// Directory in which the sweep directory is created.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub(super) out: PathBuf,
    /// JSON on stdout: the plan with --dry-run, else the sweep's analysis (sweep.json).
    #[arg(long)]
    pub(super) json: bool,
    /// Print the design, every cell and the duration arithmetic, and exit.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// No progress bars.
    #[arg(long)]
    pub(super) no_progress: bool,
    /// Run the workload's faults on an external stack (its [external] commands act on
    /// servers hab does not own; see `hab run --allow-faults`).
    #[arg(long)]
    pub(super) allow_faults: bool,
}

impl SweepArgs {
    pub(super) fn options(&self) -> crate::cmd::sweep::SweepOptions {
        crate::cmd::sweep::SweepOptions {
            topology: self.topology.clone(),
            vary: self.vary.clone(),
            sweep: self.sweep.clone(),
            workload: self.workload.clone(),
            baseline: self.baseline.clone(),
            budget: self.budget,
            out_dir: self.out.clone(),
            allow_faults: self.allow_faults,
        }
    }
}

/// Thresholds for CI: crossing one makes the command exit 1 and say what crossed it.
#[derive(Debug, clap::Args)]
pub(super) struct ThresholdArgs {
    /// Fail if a topology's p99 latency on any workload exceeds this multiple of the
    /// baseline's (e.g. 1.5).
    #[arg(long, value_name = "RATIO")]
    max_p99_ratio: Option<f64>,
    /// Fail if a topology's throughput on any workload is below this fraction of the
    /// baseline's (e.g. 0.5).
    #[arg(long, value_name = "RATIO")]
    pub(super) min_throughput_ratio: Option<f64>,
    /// Fail if a topology lost more tasks than this over all workloads (never executed,
    /// result lost, or never confirmed).
    #[arg(long, value_name = "N")]
    pub(super) max_lost: Option<u64>,
    /// Fail if a topology ran more tasks than this more than once.
    #[arg(long, value_name = "N")]
    pub(super) max_duplicated: Option<u64>,
    /// Fail if any repetition of any fault took longer than this to switch (e.g. 5s), or
    /// never completed a task after the fault.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(super) max_switch_time: Option<Duration>,
    /// Fail if any run violated one of the invariants it checks of its own figures (one
    /// outcome per task, histogram counts = ok counts, …; run.json `invariants`).
    #[arg(long)]
    pub(super) strict: bool,
}

impl ThresholdArgs {
    pub(super) fn thresholds(&self) -> crate::compare::Thresholds {
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
