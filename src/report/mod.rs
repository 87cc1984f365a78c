//! The report of a comparison or a single run: summary.json, merged `.hgrm` files,
//! charts, report.md and report.html (self-contained), all rendered from the run.json
//! files of a directory. `hab compare` calls [`render_dir`] when its runs are done;
//! `hab report DIR` calls it again on an existing directory without running anything.

mod cpu;
pub mod doc;
mod failover;
pub mod sweep;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result};

use crate::compare::findings::{
    fmt_rate, fmt_rate_spread, fmt_ratio, fmt_samples, fmt_spread_cell, fmt_us_spread,
};
use crate::compare::summary::Comparison;
use crate::metrics::stats::{fmt_ms, fmt_us};
use crate::record::{RunSet, TopologyRuns};
use doc::Block;
use failover::{failover_table, idle_table, policy_table};

/// The machine-readable summary in a comparison directory (what `--json` prints).
pub const SUMMARY_FILE: &str = "summary.json";

/// Render every report file of `dir` (a comparison directory or a single run directory)
/// from its run.json files; returns the comparison.
pub fn render_dir(dir: &Path) -> Result<Comparison> {
    render_dir_with(dir, &crate::chart::Options::default())
}

/// [`render_dir`] with a title of one's own for the report and its charts, and PNGs at a
/// scale for slides and papers (`hab report DIR --title … --png-scale 2`).
pub fn render_dir_with(dir: &Path, options: &crate::chart::Options) -> Result<Comparison> {
    let set = RunSet::load(dir)?;
    let comparison = Comparison::from_runs(&set)?;
    let single_run = dir.join("run.json").is_file();
    let mut bytes = serde_json::to_vec_pretty(&comparison)?;
    bytes.push(b'\n');
    // A run directory already has its own files; its summary goes beside them.
    let summary_name = if single_run {
        "report.json"
    } else {
        SUMMARY_FILE
    };
    crate::export::write_atomic(&dir.join(summary_name), &bytes)?;
    if !single_run {
        write_merged_hgrm(dir, &set)?;
    }
    let charts = crate::chart::render_all(&set, &dir.join("charts"), options)
        .with_context(|| format!("cannot draw the charts of {}", dir.display()))?;
    let title = options.title.clone().unwrap_or_else(|| title(&comparison));
    let blocks = blocks(&title, &comparison, &set, &charts);
    crate::export::write_atomic(&dir.join("report.md"), doc::markdown(&blocks).as_bytes())?;
    crate::export::write_atomic(
        &dir.join("report.html"),
        doc::html(&title, &blocks).as_bytes(),
    )?;
    Ok(comparison)
}

/// `<topology>-<workload>.hgrm` of the latency merged over the repetitions, in ms.
fn write_merged_hgrm(dir: &Path, set: &RunSet) -> Result<()> {
    for t in &set.topologies {
        for w in t.workload_names() {
            if let Some(h) = t.merged_histogram(&w, "latency")?
                && !h.is_empty()
            {
                let text = crate::export::hgrm::hgrm_text(&h, 1000.0);
                crate::export::write_atomic(
                    &dir.join(format!("{}-{w}.hgrm", t.name)),
                    text.as_bytes(),
                )?;
            }
        }
    }
    Ok(())
}

fn title(c: &Comparison) -> String {
    let names: Vec<&str> = c.topologies.iter().map(|t| t.name.as_str()).collect();
    let plan = Path::new(&c.workload_file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if names.len() == 1 {
        format!("hab run: {} — {plan} workload", names[0])
    } else {
        format!("hab comparison: {} — {plan} workload", names.join(" vs "))
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map(fmt_ms).unwrap_or_else(|| "–".into())
}

/// The parsed topology / workload plan of a run as TOML (nulls dropped: TOML has none).
fn as_toml(v: &serde_json::Value) -> String {
    fn strip(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(strip).collect()),
            v => v.clone(),
        }
    }
    toml::to_string(&strip(v))
        .unwrap_or_else(|_| serde_json::to_string_pretty(v).unwrap_or_default())
}

fn setup(c: &Comparison, set: &RunSet) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Setup".into())];
    let gib = c.machine.memory_bytes as f64 / (1u64 << 30) as f64;
    out.push(Block::Para(format!(
        "hab {} on {} cores, {gib:.0} GiB memory, Linux {}. Every server ran as a local process on loopback, started by hab. Workload file: {}. Latency is measured from each task's intended start (its place in the schedule) to its result seen by the producer, so a stalled stack cannot hide its delay (no coordinated omission).",
        c.hab_version, c.machine.cores, c.machine.kernel, c.workload_file
    )));
    if let Some(t) = &c.timing {
        out.push(Block::Para(t.sentence()));
    }
    // A merged run (`hab merge`): how the load was split and what relies on clocks.
    for m in set
        .topologies
        .iter()
        .flat_map(|t| &t.runs)
        .filter_map(|r| r.report.merged.as_ref())
        .take(1)
    {
        out.push(Block::Para(merged_note(m)));
        let skew = crate::record::merge::skew_lines(&m.start_skew);
        if !skew.is_empty() {
            out.push(Block::Para(format!(
                "Residual start skew per workload: the latest minus the earliest shard's schedule origin{}, by the shards' clocks (one host: one clock; several hosts: as good as their clocks agree). A wall time and throughput over the merged shards include it.",
                match m.start_at_unix_ms {
                    Some(_) => " (the shards were told to start together: `--start-at` for the first workload, a barrier on the stack's Redis before each later one)",
                    None => " (the shards were not told to start together: no `--start-at`)",
                }
            )));
            out.push(Block::List(skew));
        }
    }
    let mut head = vec![String::new()];
    head.extend(c.topologies.iter().map(|t| t.name.clone()));
    let mut rows = vec![];
    let mut row = |label: &str, f: &dyn Fn(&crate::compare::summary::TopologySummary) -> String| {
        let mut r = vec![label.to_string()];
        r.extend(c.topologies.iter().map(f));
        rows.push(r);
    };
    row("topology file", &|t| t.file.clone());
    let keys: BTreeSet<String> = c
        .topologies
        .iter()
        .flat_map(|t| t.versions.keys().cloned())
        .collect();
    for k in &keys {
        let label = match k.as_str() {
            "rabbitmq" => "RabbitMQ",
            "erlang_otp" => "Erlang/OTP",
            "redis" => "Redis",
            "haproxy" => "HAProxy",
            other => other,
        };
        row(label, &|t| {
            t.versions.get(k).cloned().unwrap_or_else(|| "–".into())
        });
    }
    row("runs", &|t| {
        let complete = t
            .statuses
            .iter()
            .filter(|s| **s == crate::record::RunStatus::Complete)
            .count();
        if complete == t.statuses.len() {
            format!("{complete}")
        } else {
            format!("{} ({complete} complete)", t.statuses.len())
        }
    });
    row("bring-up", &|t| fmt_spread_cell(t.bringup_ms.as_ref()));
    row("run directories", &|t| t.runs.join(", "));
    let numeric = vec![false; head.len()];
    out.push(Block::Table {
        head,
        rows,
        numeric,
    });
    for t in &set.topologies {
        if let Some(r) = t.runs.first() {
            out.push(Block::Details {
                summary: format!(
                    "Topology {} as run ({}, defaults filled in)",
                    t.name, t.file
                ),
                lang: "toml".into(),
                text: as_toml(&r.report.topology),
            });
        }
    }
    if let Some(r) = set.topologies.first().and_then(|t| t.runs.first()) {
        out.push(Block::Details {
            summary: format!("Workload plan as run ({})", r.report.workload_file),
            lang: "toml".into(),
            text: as_toml(&r.report.workload_plan),
        });
    }
    out
}

fn workload_tables(c: &Comparison) -> Vec<Block> {
    let mut out = vec![
        Block::Heading(2, "Throughput and latency".into()),
        Block::Para(format!(
            "Per workload, each topology beside the baseline ({}). Runs = runs of the topology (`hab compare --repeat`), ×N when the workload repeats N times back to back within each run (`repeat = N`); every repetition of every run is one sample. Throughput is ok tasks per second from a sample's first intended start to its last result: median (min–max) over the samples, (1 run) when there was only one. Latency percentiles come from the histogram of every ok task of every sample merged; in brackets, the range of the same percentile over the samples (each from its own histogram). Lost = accepted by the broker but never executed; result lost = executed but its result never seen; unconfirmed = never executed and never confirmed by the broker; dup = executed more than once (any outcome); revoked = the result was REVOKED (revoked, or expired before a worker ran it).",
            c.baseline
        )),
    ];
    for w in &c.workloads {
        out.push(Block::Heading(3, format!("{} ({})", w.name, w.task)));
        let head = [
            "topology",
            "runs",
            "tasks",
            "ok",
            "tasks/s",
            "× base",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "p99 × base",
            "lost",
            "result lost",
            "unconfirmed",
            "dup",
            "failed",
            "revoked",
        ];
        let rows = w
            .rows
            .iter()
            .map(|r| {
                let lat = |v: u64| {
                    if r.latency.count == 0 {
                        "–".to_string()
                    } else {
                        fmt_us(v)
                    }
                };
                vec![
                    if r.topology == c.baseline {
                        format!("{} (baseline)", r.topology)
                    } else {
                        r.topology.clone()
                    },
                    fmt_samples(r.repetitions, r.repeat),
                    r.count.to_string(),
                    r.ok.to_string(),
                    fmt_rate_spread(&r.throughput_per_s),
                    fmt_ratio(r.throughput_ratio),
                    match r.latency.count {
                        0 => "–".to_string(),
                        _ => fmt_us_spread(r.latency.p50_us, r.p50_spread_us.as_ref()),
                    },
                    lat(r.latency.p90_us),
                    match r.latency.count {
                        0 => "–".to_string(),
                        _ => fmt_us_spread(r.latency.p99_us, r.p99_spread_us.as_ref()),
                    },
                    lat(r.latency.p999_us),
                    lat(r.latency.max_us),
                    fmt_ratio(r.p99_ratio),
                    r.lost.to_string(),
                    r.result_lost.to_string(),
                    r.unconfirmed.to_string(),
                    r.duplicated.to_string(),
                    r.failed.to_string(),
                    r.revoked.to_string(),
                ]
            })
            .collect();
        let mut numeric = vec![true; head.len()];
        numeric[0] = false;
        out.push(Block::Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows,
            numeric,
        });
        out.extend(repetition_table(w));
    }
    out
}

/// Each repetition of a repeated workload, per topology and run: the samples behind the
/// spreads of its row.
fn repetition_table(w: &crate::compare::summary::WorkloadComparison) -> Vec<Block> {
    let rows: Vec<Vec<String>> = w
        .rows
        .iter()
        .flat_map(|r| {
            r.per_repetition.iter().map(move |p| {
                let lat = |v: Option<u64>| v.map(fmt_us).unwrap_or_else(|| "–".into());
                vec![
                    r.topology.clone(),
                    p.run.to_string(),
                    p.repetition.to_string(),
                    p.count.to_string(),
                    p.ok.to_string(),
                    fmt_rate(p.throughput_per_s),
                    lat(p.p50_us),
                    lat(p.p99_us),
                ]
            })
        })
        .collect();
    if rows.is_empty() {
        return Vec::new();
    }
    let head = [
        "topology",
        "run",
        "repetition",
        "tasks",
        "ok",
        "tasks/s",
        "p50",
        "p99",
    ];
    let mut numeric = vec![true; head.len()];
    numeric[0] = false;
    vec![
        Block::Para(format!(
            "{}: each repetition (`repeat = N`: run back to back, each drained before the next), with its own histogram.",
            w.name
        )),
        Block::Table {
            head: head.iter().map(|s| s.to_string()).collect(),
            rows,
            numeric,
        },
    ]
}

/// How each workload's results were seen and what its drain deadline left: tasks settled
/// by a reconciliation read (their latency is an upper bound), tasks unfinished at the
/// deadline (not losses), tasks of unknown outcome, and every read that failed where its
/// answer decided outcomes.
fn deadline_table(c: &Comparison, set: &RunSet) -> Vec<Block> {
    let mut out = vec![
        Block::Heading(2, "Reads and drain deadlines".into()),
        Block::Para("Seen by read: ok and failed tasks whose result was first seen by a reconciliation read (MGET of the result key) rather than a pub/sub notification; their latency is an upper bound (the read's time). Unfinished: no result by the workload's drain deadline — running (a worker had started it) or queued (not started; taken out of the queue at the deadline, or run later from a worker's prefetch); neither is a loss, and neither is in the lost column. Unknown: a worker finished it by the deadline but the read that could have found its result failed.".into()),
    ];
    let rows: Vec<Vec<String>> = c
        .workloads
        .iter()
        .flat_map(|w| {
            w.rows.iter().map(move |r| {
                vec![
                    w.name.clone(),
                    r.topology.clone(),
                    r.count.to_string(),
                    r.seen_by_read.to_string(),
                    r.unfinished_running.to_string(),
                    r.unfinished_queued.to_string(),
                    r.unknown.to_string(),
                ]
            })
        })
        .collect();
    let head = [
        "workload",
        "topology",
        "tasks",
        "seen by read",
        "unfinished (running)",
        "unfinished (queued)",
        "unknown",
    ];
    let mut numeric = vec![true; head.len()];
    numeric[0] = false;
    numeric[1] = false;
    out.push(Block::Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        rows,
        numeric,
    });
    let failed: Vec<String> = set
        .topologies
        .iter()
        .flat_map(|t| {
            t.runs.iter().flat_map(move |r| {
                r.report.failed_reads.iter().map(move |f| {
                    format!(
                        "{}: the {} read{} failed {} times ({}); {} tasks could not be settled by it (unknown where a worker had finished them)",
                        t.name,
                        f.read.replace('_', " "),
                        if f.workload.is_empty() {
                            String::new()
                        } else {
                            format!(" of workload {}", f.workload)
                        },
                        f.attempts,
                        f.error,
                        f.tasks
                    )
                })
            })
        })
        .collect();
    if !failed.is_empty() {
        out.push(Block::Para("Failed reads:".into()));
        out.push(Block::List(failed));
    }
    out
}

/// The stages measured by two stamps, in the order of a task's life.
const CLOCKED_STAGES: [&str; 4] = ["publish", "queue_wait", "service", "result_delay"];

/// One clock: which anchor each run's processes stamped with, and every stage's negative
/// intervals (counted, never in a histogram).
fn clock_section(set: &RunSet) -> Vec<Block> {
    let mut out = vec![
        Block::Heading(2, "Clocks and negative intervals".into()),
        Block::Para("Every interval on one host is measured on one clock: the system-wide monotonic clock (CLOCK_MONOTONIC), written as unix µs through the run's wall-clock anchor, which hab hands to every worker it starts (hab's own and a real Celery worker alike). A negative interval is then a real ordering, not clock noise: it is counted here and kept out of its stage's histogram, so a stage's count plus its negative count is every interval measured. A real Celery worker writes its finish line after storing the result, so its result delay is often negative. Times read from the servers' own logs (Sentinel, HAProxy, RabbitMQ) are their wall clock: the last line of each run says how far the wall clock moved against hab's clock during it.".into()),
    ];
    let mut rows = Vec::new();
    let mut clocks = Vec::new();
    for t in &set.topologies {
        for (i, r) in t.runs.iter().enumerate() {
            let run = if t.runs.len() > 1 {
                format!("{} #{}", t.name, i + 1)
            } else {
                t.name.clone()
            };
            for w in &r.report.workloads {
                let mut row = vec![w.name.clone(), run.clone()];
                for stage in CLOCKED_STAGES {
                    row.push(match w.negative_intervals.get(stage) {
                        Some(n) => {
                            format!("{n} of {}", n + w.stages.get(stage).map_or(0, |s| s.count))
                        }
                        None => "not counted".into(),
                    });
                }
                rows.push(row);
            }
            clocks.push(match &r.report.clock {
                None => format!(
                    "{run}: made before hab stamped every interval from one clock (worker and result times were the wall clock)"
                ),
                Some(c) => format!(
                    "{run}: {} worker process{} reported {} clock, {} of them off the run's time line; wall clock minus hab's clock at the end: {} µs",
                    c.workers.len(),
                    if c.workers.len() == 1 { "" } else { "es" },
                    if c.workers.len() == 1 { "its" } else { "their" },
                    c.workers_off_time_line,
                    c.wall_minus_clock_us_at_end
                ),
            });
        }
    }
    let mut head = vec!["workload".to_string(), "topology".to_string()];
    head.extend(
        CLOCKED_STAGES
            .iter()
            .map(|s| format!("{} < 0", s.replace('_', " "))),
    );
    let mut numeric = vec![true; head.len()];
    numeric[0] = false;
    numeric[1] = false;
    out.push(Block::Table {
        head,
        rows,
        numeric,
    });
    out.push(Block::List(clocks));
    out
}

/// The task path against the stack's raw limits, for runs made with `--calibrate`.
fn raw_limit_table(c: &Comparison) -> Vec<Block> {
    let rows: Vec<Vec<String>> = c
        .workloads
        .iter()
        .flat_map(|w| {
            w.rows.iter().filter_map(move |r| {
                let l = r.raw_limit.as_ref()?;
                let figure = match l.figure.as_str() {
                    "broker_round_trip" => "broker round trip (same messages, no task work)",
                    "end_to_end" => "end-to-end ceiling (the whole task path, no task work)",
                    "disk_write" => "disk write + fdatasync",
                    "cpu_factorial" => "factorial(100000), one core",
                    other => other,
                };
                Some(vec![
                    w.name.clone(),
                    r.topology.clone(),
                    format!("{:.1}", l.task_path),
                    format!("{:.1}", l.limit),
                    l.unit.clone(),
                    figure.to_string(),
                    l.standing().cell(),
                ])
            })
        })
        .collect();
    if rows.is_empty() {
        return Vec::new();
    }
    vec![
        Block::Heading(2, "Against the raw limits".into()),
        Block::Para(
            "Each stack's raw limits were measured on the same stack just before its workloads (`--calibrate`: hab calibrate's figures, each piece alone). A burst of trivial tasks is set against the end-to-end ceiling: the whole task path without task code, driven by a lean producer and consumer processes (the rest is what hab's producer, ledger and worker cost); in calibrations made before hab measured it, against the broker round trip with the same Celery messages; one write_zeros task's write speed (bytes ÷ median service time) against the disk figure; factorial(100000)'s raw call time against the median service time. A limit is the best the piece did alone (for the broker: the best window of every strategy tried; for the end-to-end ceiling: what its best strategy sustained over all its windows; see `hab calibrate`): within 5 % of it either way reads \"at the ceiling\"; more than 5 % above it means the calibration is invalid (a finding), never a percentage over 100.".into(),
        ),
        Block::Table {
            head: [
                "workload", "topology", "task path", "raw limit", "unit", "limit", "of limit",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            rows,
            numeric: vec![false, false, true, true, false, false, true],
        },
    ]
}

/// What each run checked of its own figures (run.json `invariants`).
fn invariants_table(set: &RunSet) -> Vec<Block> {
    let rows: Vec<Vec<String>> = set
        .topologies
        .iter()
        .flat_map(|t| {
            t.runs.iter().enumerate().flat_map(move |(n, r)| {
                r.report.invariants.iter().map(move |i| {
                    vec![
                        t.name.clone(),
                        (n + 1).to_string(),
                        i.name.clone(),
                        if i.holds { "holds" } else { "VIOLATED" }.to_string(),
                        i.detail.clone(),
                    ]
                })
            })
        })
        .collect();
    let mut out = vec![
        Block::Heading(2, "Invariants".into()),
        Block::Para("Every run checks its own figures after each workload and at the end: one outcome per task summing to the count, each latency histogram holding exactly its ok tasks, every ok task executed (side channel), every stage interval (recounted from the tasks) in its histogram or counted as negative, the backend holding a result key for every ok task unless a Redis-side fault explains the gap, no failover phase seen before its own fault (out-of-order phases flagged), for a calibrated run a trivial burst no more than 5 % above the broker round trip, and where CPU was sampled no workload limited by hab's own overhead. A violated invariant means a figure of that run is wrong (or, for the last, that it measured hab rather than the stack); `--strict` makes `hab run`, `hab compare` and `hab report` exit 1 on one.".into()),
    ];
    if rows.is_empty() {
        out.push(Block::Para(
            "These runs were written before hab checked its invariants.".into(),
        ));
        return out;
    }
    out.push(Block::Table {
        head: ["topology", "run", "invariant", "", "detail"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        rows,
        numeric: vec![false, true, false, false, false],
    });
    out
}

fn blocks(title: &str, c: &Comparison, set: &RunSet, charts: &[crate::chart::Chart]) -> Vec<Block> {
    let mut out = vec![Block::Heading(1, title.to_string())];
    let when = set
        .topologies
        .iter()
        .flat_map(|t: &TopologyRuns| t.runs.iter().map(|r| r.report.started_unix_ms))
        .min()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    out.push(Block::Para(format!(
        "Measured {when}. What does high availability cost (throughput and latency against {}), what does it buy (how fast tasks flow again after a fault, and whether any was lost or ran twice)?",
        c.baseline
    )));
    out.push(Block::Heading(2, "Verdict".into()));
    out.push(Block::List(c.verdict.clone()));
    out.push(Block::Heading(2, "Findings".into()));
    for (heading, lines) in c.findings.groups() {
        if !lines.is_empty() {
            out.push(Block::Heading(3, heading.into()));
            out.push(Block::List(lines.to_vec()));
        }
    }
    out.extend(workload_tables(c));
    out.extend(deadline_table(c, set));
    out.extend(clock_section(set));
    out.extend(raw_limit_table(c));
    out.extend(failover_table(c));
    out.extend(idle_table(c));
    out.extend(policy_table(c));
    out.extend(cpu::busy_table(set));
    if !charts.is_empty() {
        out.push(Block::Heading(2, "Charts".into()));
        for ch in charts {
            out.push(Block::Chart {
                name: ch.name.clone(),
                title: ch.title.clone(),
                caption: ch.caption.clone(),
                svg: ch.svg.clone(),
            });
        }
    }
    out.extend(setup(c, set));
    out.extend(invariants_table(set));
    out.push(Block::Heading(2, "Files".into()));
    out.push(Block::List(vec![
        "run.json in each run directory: everything measured, the source of this report (`hab report DIR` renders it again).".into(),
        "summary.json: the numbers of this report, machine-readable.".into(),
        "<topology>-<workload>.hgrm: latency percentile distributions (ms), HdrHistogram's text format; each run directory also has its own and a <topology>.hlog interval log.".into(),
        "tasks.csv, timeline.csv, failover.csv, events.csv, cpu.csv in each run directory; charts/*.svg and *.png.".into(),
    ]));
    out
}

/// What the report says about a merged run: how it was split, which shard applied the
/// faults, and which figures rely on the hosts' clocks.
pub fn merged_note(m: &crate::record::MergeReport) -> String {
    let hosts = match m.stack {
        crate::record::StackScope::Shared => format!(
            "The shards drove one shared stack; shard {} applied the faults, and the failover rows are analysed on every shard's tasks and client events.",
            m.faults_by
        ),
        crate::record::StackScope::Local => format!(
            "Each shard drove its own local stack; shard {} applied the faults to its stack only, so the failover rows are analysed on shard {}'s tasks and client events (the other shards' stacks were not broken).",
            m.faults_by, m.faults_by
        ),
    };
    format!(
        "This run merges {} generator shards (`hab run --shard I/N`, then `hab merge`): task i of each workload was published by shard i mod {} + 1. {hosts} Latency is measured on one host per task (from the task's intended start to its result seen by the same process that published it), so no cross-host clock comparison enters any latency figure. Aligning the shards in time does rely on the hosts' clocks: the failover rows (tasks of other shards placed in a fault's window), the per-second timeline and the wall time of a workload (first intended start to last result, over shards) are only as good as the clocks' agreement (NTP, typically within milliseconds).",
        m.count, m.count
    )
}

#[cfg(test)]
mod browser_tests;
#[cfg(test)]
mod tests;
