//! Topology and workload files: strict serde types, loading, and `validate()`.
//!
//! A *topology* file (`topologies/*.toml`) says what is deployed: broker nodes, result
//! backend, workers. A *workload* file (`workloads/*.toml`) says what is driven through it.
//! Both are parsed strictly (unknown fields are errors, durations are strings such as
//! `"10s"`), then checked by `validate()`, which reports every problem with its location.
//!
//! # Layout
//! - [`topology`]: [`Topology`] and its sections.
//! - [`workload`]: [`WorkloadPlan`], [`Workload`], [`TaskSpec`].
//! - [`producer`]: [`ProducerConfig`], the producer's policy for failed publishes.
//! - [`clients`]: [`clients::ClientsConfig`], how clients reach the stack (client-side failover).
//! - [`external`]: [`external::ExternalConfig`], an existing stack hab talks to (endpoints,
//!   fault commands).
//! - [`limits`]: [`limits::WorkerLimits`], how much work one message may ask of a worker.
//! - [`sweep`]: the knobs a sweep varies, sweep files (`sweeps/*.toml`) and the design of
//!   a sweep's cells with its estimated duration.
//! - [`builtin`]: the topologies and workloads built into the binary, and how a
//!   `--topology`/`--workload` value finds its file ([`builtin::resolve`]).
//! - [`celery`]: where a real Celery worker's files are (a given directory, the checkout's
//!   `scripts/celery/`, or hab's cache, created on first use from built-in files).
//! - [`error`]: [`ConfigError`] (load failures) and [`Diagnostic`] (one validation problem).

pub mod builtin;
pub mod celery;
pub mod clients;
mod duration;
pub mod error;
pub mod external;
pub mod limits;
pub mod producer;
pub mod proxy;
pub mod sweep;
pub mod topology;
pub mod workload;

use std::path::Path;

use serde::de::DeserializeOwned;

pub use builtin::{FileKind, Source};
pub use error::{ConfigError, Diagnostic};
pub use producer::{BreakerConfig, PolicyKind, ProducerConfig, RetryConfig};
pub use topology::{
    AckMode, BackendConfig, BrokerConfig, NetworkKind, ProxyConfig, QueueKind, Topology,
    WorkerKind, WorkersConfig,
};
pub use workload::{ArrivalKind, FaultSpec, TaskSpec, Workload, WorkloadPlan};

/// Finds ([`builtin::resolve`]: a path, `topologies/NAME` or a built-in), reads, parses
/// and validates a topology; errors name what was read (`builtin:ha.toml` for a
/// built-in).
pub fn load_topology(path: &Path) -> Result<Topology, ConfigError> {
    let source = builtin::resolve(FileKind::Topology, path)?;
    let text = source.text(FileKind::Topology)?;
    parse_topology(&text, &source.spec())
}

/// Finds ([`builtin::resolve`]), reads, parses and validates a workload file, and checks
/// that its `scratch_dir` (if set) is a directory hab can create files in.
pub fn load_workload_plan(path: &Path) -> Result<WorkloadPlan, ConfigError> {
    let source = builtin::resolve(FileKind::Workload, path)?;
    let text = source.text(FileKind::Workload)?;
    let plan = parse_workload_plan(&text, &source.spec())?;
    if let Some(dir) = &plan.scratch_dir {
        finish(scratch_dir_diagnostics(dir), &source.spec(), "workload")?;
    }
    Ok(plan)
}

/// What a Celery topology's worker needs and cannot have, before anything starts: a
/// `workers.celery_dir` without its files, or — when hab's cache is to be set up on first
/// use — no `python3` with the `venv` module to set it up with.
pub fn missing_files(topology: &Topology, path: &Path) -> Result<(), ConfigError> {
    let problem = match celery::locate(topology) {
        None => return Ok(()),
        Some(p) if p.ready() => return Ok(()),
        Some(p @ celery::Place::Given(_)) | Some(p @ celery::Place::Checkout(_)) => format!(
            "\"celery\" needs {} (missing here); run scripts/celery/setup.sh in that directory's checkout, or leave workers.celery_dir unset and hab sets the worker up in its cache",
            p.missing_text()
        ),
        Some(celery::Place::Cache(dir)) => match python_with_venv() {
            Ok(()) => return Ok(()),
            Err(why) => format!(
                "\"celery\" is set up on first use in {} with python3's venv module, and {why}: install it (apt-get install python3 python3-venv), or set workers.celery_dir to a directory made by scripts/celery/setup.sh",
                dir.display()
            ),
        },
    };
    finish(
        vec![Diagnostic::new("workers.kind", problem)],
        path,
        "topology",
    )
}

/// Whether `python3` (or `$PYTHON`) runs and has the `venv` and `ensurepip` modules.
fn python_with_venv() -> Result<(), String> {
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    match std::process::Command::new(&py)
        .args(["-c", "import venv, ensurepip"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(_) => Err(format!("{py} has no venv/ensurepip module")),
        Err(e) => Err(format!("{py} cannot be run ({e})")),
    }
}

/// Why `dir` cannot be a scratch directory: not an existing directory, or no new file can
/// be created in it (tried with a temporary file, removed at once).
pub fn scratch_dir_diagnostics(dir: &Path) -> Vec<Diagnostic> {
    let problem = match std::fs::metadata(dir) {
        Err(e) => Some(format!(
            "{} cannot be used: {e}; give an existing directory hab can write in",
            dir.display()
        )),
        Ok(m) if !m.is_dir() => Some(format!("{} is not a directory", dir.display())),
        Ok(_) => tempfile::Builder::new()
            .prefix(".hab-scratch-check")
            .tempfile_in(dir)
            .err()
            .map(|e| {
                format!(
                    "no file can be created in {}: {e}; give a directory hab can write in",
                    dir.display()
                )
            }),
    };
    problem
        .map(|p| vec![Diagnostic::new("scratch_dir", p)])
        .unwrap_or_default()
}

/// Parses and validates topology TOML already in memory; `path` is only used in errors.
pub fn parse_topology(text: &str, path: &Path) -> Result<Topology, ConfigError> {
    let topology: Topology = parse(text, path, "topology")?;
    finish(topology.validate(), path, "topology")?;
    Ok(topology)
}

/// Parses and validates workload TOML already in memory; `path` is only used in errors.
pub fn parse_workload_plan(text: &str, path: &Path) -> Result<WorkloadPlan, ConfigError> {
    let mut plan: WorkloadPlan = parse(text, path, "workload")?;
    finish(plan.validate(), path, "workload")?;
    plan.draw_fault_lengths();
    Ok(plan)
}

fn parse<T: DeserializeOwned>(
    text: &str,
    path: &Path,
    kind: &'static str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        kind,
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })
}

fn finish(
    diagnostics: Vec<Diagnostic>,
    path: &Path,
    kind: &'static str,
) -> Result<(), ConfigError> {
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            kind,
            path: path.to_path_buf(),
            diagnostics,
        })
    }
}

/// Pushes a diagnostic unless `name` is non-empty and only `[A-Za-z0-9_.-]`
/// (names become parts of directory and file names).
fn check_name(out: &mut Vec<Diagnostic>, location: &str, name: &str) {
    if name.is_empty() {
        out.push(Diagnostic::new(
            location,
            "must not be empty; use letters, digits, '_', '.' or '-'",
        ));
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        out.push(Diagnostic::new(
            location,
            format!(
                "{name:?} contains {bad:?}; use only letters, digits, '_', '.' or '-' (it becomes part of a directory name)"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::testing::assert_has;

    fn shipped(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    #[test]
    fn shipped_standalone_topology_is_valid() {
        let t = load_topology(&shipped("topologies/standalone.toml")).unwrap();
        assert_eq!(t.validate(), vec![]);
        assert_eq!(t.name, "standalone");
        assert_eq!(t.broker.nodes, 1);
        assert_eq!(t.broker.queue, QueueKind::Classic);
        assert!(t.broker.confirms);
        assert_eq!(t.broker.heartbeat, Duration::from_secs(10));
        assert_eq!(t.broker.startup_timeout, Duration::from_secs(60));
        assert_eq!(t.backend.replicas, 0);
        assert_eq!(t.backend.result_ttl, Duration::from_secs(86_400));
        assert_eq!(t.backend.startup_timeout, Duration::from_secs(20));
        // hab's worker streams (prefetch 256 with concurrency 2); otherwise Celery's defaults.
        assert_eq!(
            t.workers,
            WorkersConfig {
                prefetch_multiplier: 128,
                ..WorkersConfig::default()
            }
        );
    }

    #[test]
    fn a_scratch_dir_must_be_a_writable_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(scratch_dir_diagnostics(dir.path()), vec![]);
        // Nothing left behind by the check.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        for bad in [Path::new("/proc/self"), &file, &dir.path().join("missing")] {
            let d = scratch_dir_diagnostics(bad);
            assert_eq!(d.len(), 1, "{bad:?}");
            assert_eq!(d[0].location, "scratch_dir");
        }
        let plan = dir.path().join("w.toml");
        std::fs::write(
            &plan,
            "name = \"w\"\nscratch_dir = \"/proc/self\"\n[[workload]]\nname = \"t\"\ntask = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\n",
        )
        .unwrap();
        let err = load_workload_plan(&plan).unwrap_err().to_string();
        assert!(
            err.contains("scratch_dir") && err.contains("/proc/self"),
            "{err}"
        );
    }

    #[test]
    fn shipped_seed_plan_repeats_its_cheap_workloads_five_times() {
        let p = load_workload_plan(&shipped("workloads/seed.toml")).unwrap();
        let repeats: Vec<(&str, u32)> = p
            .workloads
            .iter()
            .map(|w| (w.name.as_str(), w.repeat))
            .collect();
        assert_eq!(
            repeats,
            vec![
                ("trivial", 5),
                ("sleep", 1),
                ("write_zeros", 1),
                ("factorial", 5),
                ("broker_kill", 1),
                ("backend_kill", 1),
            ]
        );
    }

    #[test]
    fn shipped_seed_plan_has_the_four_seed_workloads_at_full_size_then_failover() {
        let p = load_workload_plan(&shipped("workloads/seed.toml")).unwrap();
        assert_eq!(p.validate(), vec![]);
        assert_eq!(p.name, "seed");
        assert_eq!(p.warmup_tasks, 200);
        assert_eq!(p.drain_timeout, Duration::from_secs(600));
        assert_eq!(p.scratch_dir, None);
        let got: Vec<_> = p
            .workloads
            .iter()
            .map(|w| {
                (
                    w.name.as_str(),
                    w.task.clone(),
                    w.count,
                    w.arrival,
                    w.rate_per_s,
                )
            })
            .collect();
        let burst = ArrivalKind::Burst;
        assert_eq!(
            got,
            vec![
                ("trivial", TaskSpec::Trivial, 10_000, burst, None),
                ("sleep", TaskSpec::Sleep { seconds: 10.0 }, 5, burst, None),
                (
                    "write_zeros",
                    TaskSpec::WriteZeros {
                        bytes: 1_000_000_000
                    },
                    10,
                    burst,
                    None
                ),
                (
                    "factorial",
                    TaskSpec::Factorial { n: 100_000 },
                    10,
                    burst,
                    None
                ),
                // The failover phase: constant rate while the broker primary, then the
                // Redis master, is killed and restarted three times.
                (
                    "broker_kill",
                    TaskSpec::Trivial,
                    8_000,
                    ArrivalKind::Rate,
                    Some(200.0)
                ),
                (
                    "backend_kill",
                    TaskSpec::Trivial,
                    8_000,
                    ArrivalKind::Rate,
                    Some(200.0)
                ),
            ]
        );
    }

    #[test]
    fn shipped_smoke_plan_is_tiny_and_exercises_rate_arrival() {
        let p = load_workload_plan(&shipped("workloads/smoke.toml")).unwrap();
        assert_eq!(p.validate(), vec![]);
        assert_eq!(p.warmup_tasks, 20);
        assert_eq!(p.drain_timeout, Duration::from_secs(30));
        let tasks: Vec<_> = p
            .workloads
            .iter()
            .map(|w| (w.task.clone(), w.count))
            .collect();
        assert_eq!(
            tasks,
            vec![
                (TaskSpec::Trivial, 200),
                (TaskSpec::Sleep { seconds: 0.2 }, 3),
                (TaskSpec::WriteZeros { bytes: 1 << 20 }, 3),
                (TaskSpec::Factorial { n: 2000 }, 3),
                (TaskSpec::Trivial, 200),
            ]
        );
        let rate = &p.workloads[4];
        assert_eq!(rate.arrival, ArrivalKind::Rate);
        assert_eq!(rate.rate_per_s, Some(400.0));
    }

    #[test]
    fn missing_file_error_names_kind_and_path() {
        let e = load_topology(Path::new("/nonexistent/ha.toml")).unwrap_err();
        assert!(matches!(e, ConfigError::NotFound { .. }));
        let msg = e.to_string();
        assert!(
            msg.starts_with(
                "topology /nonexistent/ha.toml not found: no such file, and no built-in"
            ),
            "{msg}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = load_topology(dir.path()).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
        let name = dir.path().display();
        assert_eq!(e.to_string(), format!("cannot read topology file {name}"));
        // The OS error is the source, said once by whoever prints the chain.
        let source = std::error::Error::source(&e).expect("the OS error is the source");
        assert!(source.to_string().contains("os error 21"), "{source}");
        let e = load_workload_plan(dir.path()).unwrap_err();
        assert_eq!(e.to_string(), format!("cannot read workload file {name}"));
    }

    #[test]
    fn invalid_error_lists_one_diagnostic_inline_and_several_one_per_line() {
        let one = ConfigError::Invalid {
            kind: "workload",
            path: PathBuf::from("workloads/x.toml"),
            diagnostics: vec![Diagnostic::new("workload[2].rate_per_s", "required")],
        };
        assert_eq!(
            one.to_string(),
            "workload file workloads/x.toml: workload[2].rate_per_s: required"
        );
        let text = "name = \"bad name\"\n[broker]\nnodes = 0\n[backend]\nreplicas = 9\n";
        let e = parse_topology(text, Path::new("topologies/x.toml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "topology file topologies/x.toml: 3 problems:\n  \
             name: \"bad name\" contains ' '; use only letters, digits, '_', '.' or '-' \
             (it becomes part of a directory name)\n  \
             broker.nodes: must be between 1 and 9, got 0\n  \
             backend.replicas: must be between 0 and 5, got 9"
        );
    }

    #[test]
    fn configs_round_trip_through_json_and_toml() {
        let t = load_topology(&shipped("topologies/standalone.toml")).unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert!(json.contains(r#""heartbeat":"10s""#), "{json}");
        assert!(json.contains(r#""result_ttl":"1day""#), "{json}");
        assert_eq!(serde_json::from_str::<Topology>(&json).unwrap(), t);
        assert_eq!(
            toml::from_str::<Topology>(&toml::to_string(&t).unwrap()).unwrap(),
            t
        );

        let p = load_workload_plan(&shipped("workloads/smoke.toml")).unwrap();
        let json = serde_json::to_string(&p).unwrap();
        assert_has(&json, &[r#""task":{"kind":"sleep","seconds":0.2}"#]);
        assert!(json.contains(r#""workload":["#), "{json}");
        assert_eq!(serde_json::from_str::<WorkloadPlan>(&json).unwrap(), p);
        let toml_text = toml::to_string(&p).unwrap();
        assert_eq!(toml::from_str::<WorkloadPlan>(&toml_text).unwrap(), p);
    }
}
