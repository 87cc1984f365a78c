//! Local orchestration: the servers of a stack as real processes on 127.0.0.1.
//!
//! Each server is a value that owns its process group ([`process::ManagedProcess`]), its
//! log file in the run's `logs/` directory and its temporary state; dropping it kills the
//! group, so a panic or an early return leaves nothing behind. For the second Ctrl-C, when
//! no destructor runs, [`process::kill_all_now`] kills every live group.
//!
//! - [`process`]: the managed process, readiness polling, the live-group registry.
//! - [`ports`]: free loopback ports, never the same twice in one process.
//! - [`redis`]: a `redis-server` data node.
//! - [`epmd`]: the private Erlang port mapper the RabbitMQ nodes register with.
//! - [`rabbitmq`]: RabbitMQ nodes and the broker (epmd + nodes).
//!
//! [`Stack`] puts them together for a topology: today one RabbitMQ node and one Redis
//! master, started in parallel.

pub mod epmd;
pub mod ports;
pub mod process;
pub mod rabbitmq;
pub mod redis;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use self::process::kill_all_now;
use self::rabbitmq::{RabbitBroker, RabbitOptions};
use self::redis::{RedisOptions, RedisServer};

/// Why a stack (or one of its servers) could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The server program is not installed.
    #[error(
        "`{program}` was not found; it comes with the Debian package `{package}`: \
         run scripts/install-servers.sh"
    )]
    MissingBinary {
        /// The program hab tried to run.
        program: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// The program exists but could not be started.
    #[error("could not start `{program}`: {source}")]
    SpawnFailed {
        /// The program hab tried to run.
        program: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// A file, directory or port needed for a server could not be had.
    #[error("{what}: {source}")]
    Io {
        /// What hab was doing, naming the file.
        what: String,
        /// What the operating system said.
        source: io::Error,
    },
    /// A server kept running but did not answer its readiness probe in time.
    #[error(
        "{service} was not ready after {} ms (last probe: {last_error}); last lines of its \
         log:\n{log_tail}",
        waited.as_millis()
    )]
    NotReady {
        /// The server, e.g. `redis backend`.
        service: String,
        /// How long hab waited.
        waited: Duration,
        /// The last probe failure.
        last_error: String,
        /// The last 20 lines of its log(s).
        log_tail: String,
    },
    /// A server exited while starting.
    #[error("{service} exited during start-up ({status}); last lines of its log:\n{log_tail}")]
    Exited {
        /// The server, e.g. `redis backend`.
        service: String,
        /// How it ended, e.g. `exit code 1`.
        status: String,
        /// The last 20 lines of its log(s).
        log_tail: String,
    },
    /// The topology asks for something this version cannot start yet.
    #[error("{0}")]
    Unsupported(String),
}

/// Where a stack writes its files.
#[derive(Debug, Clone)]
pub struct StackDirs {
    /// The run directory's `logs/`: every server's log and generated config. One
    /// `StackDirs` per stack: file names are per server, not per stack.
    pub logs: PathBuf,
}

impl StackDirs {
    /// Uses `logs` (creating it and its parents) for the stack's logs and configs.
    pub fn create(logs: impl Into<PathBuf>) -> Result<StackDirs, StackError> {
        let logs: PathBuf = logs.into();
        // Absolute, since servers run with other working directories.
        let logs = std::path::absolute(&logs).map_err(|source| StackError::Io {
            what: format!("resolving the logs directory {}", logs.display()),
            source,
        })?;
        std::fs::create_dir_all(&logs).map_err(|source| StackError::Io {
            what: format!("creating the logs directory {}", logs.display()),
            source,
        })?;
        Ok(StackDirs { logs })
    }
}

/// What to bring up.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// RabbitMQ nodes (only 1 is supported for now).
    pub broker_nodes: u32,
    /// Redis replicas behind the master (only 0 is supported for now).
    pub backend_replicas: u32,
    /// How long a RabbitMQ node may take to accept AMQP connections.
    pub broker_startup_timeout: Duration,
    /// How long a Redis node may take to answer `PING`.
    pub backend_startup_timeout: Duration,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            broker_nodes: 1,
            backend_replicas: 0,
            broker_startup_timeout: Duration::from_secs(60),
            backend_startup_timeout: Duration::from_secs(10),
        }
    }
}

impl StackOptions {
    /// Rejects what cannot be started yet, naming the setting.
    pub fn validate(&self) -> Result<(), StackError> {
        if self.broker_nodes != 1 {
            return Err(StackError::Unsupported(format!(
                "clustered brokers come with the HA topology; broker.nodes must be 1 for now \
                 (got {})",
                self.broker_nodes
            )));
        }
        if self.backend_replicas != 0 {
            return Err(StackError::Unsupported(format!(
                "Redis replicas come with the HA topology; backend.replicas must be 0 for now \
                 (got {})",
                self.backend_replicas
            )));
        }
        Ok(())
    }
}

/// A running broker and result backend. Dropping it kills every server.
#[derive(Debug)]
pub struct Stack {
    /// RabbitMQ nodes and their epmd.
    broker: RabbitBroker,
    /// The Redis result backend (master).
    backend: RedisServer,
    /// Wall time of [`Stack::start`], in milliseconds.
    bringup_ms: u64,
    /// Server versions for run.json (`rabbitmq`, `erlang_otp`, `redis`).
    versions: BTreeMap<String, String>,
}

impl Stack {
    /// Starts Redis and RabbitMQ in parallel and returns once both answer.
    ///
    /// If either fails, the other is torn down before the error is returned.
    pub async fn start(opts: &StackOptions, dirs: &StackDirs) -> Result<Stack, StackError> {
        opts.validate()?;
        let started = Instant::now();
        let dirs = StackDirs::create(&dirs.logs)?;
        let redis_opts = RedisOptions {
            startup_timeout: opts.backend_startup_timeout,
            ..RedisOptions::default()
        };
        let rabbit_opts = RabbitOptions {
            nodes: opts.broker_nodes,
            startup_timeout: opts.broker_startup_timeout,
            ..RabbitOptions::default()
        };
        // When one future fails, try_join drops the other, and with it the processes it
        // had started (ManagedProcess kills its group on drop).
        let (backend, broker) = tokio::try_join!(
            RedisServer::start("backend", &dirs, &redis_opts),
            RabbitBroker::start(&dirs, &rabbit_opts),
        )?;
        let bringup_ms = started.elapsed().as_millis() as u64;
        let node_log = broker.nodes()[0].layout().node_log();
        let versions = tokio::task::spawn_blocking(move || collect_versions(&node_log))
            .await
            .unwrap_or_default();
        tracing::info!(bringup_ms, "stack up");
        Ok(Stack {
            broker,
            backend,
            bringup_ms,
            versions,
        })
    }

    /// AMQP URL of the broker (its first node).
    pub fn broker_url(&self) -> String {
        self.broker.amqp_url()
    }

    /// Redis URL of the result backend.
    pub fn backend_url(&self) -> String {
        self.backend.url()
    }

    /// Wall time of [`Stack::start`], in milliseconds.
    pub fn bringup_ms(&self) -> u64 {
        self.bringup_ms
    }

    /// Server versions: `rabbitmq`, `erlang_otp`, `redis` (keys missing when unknown).
    pub fn versions(&self) -> &BTreeMap<String, String> {
        &self.versions
    }

    /// The broker (nodes, epmd, rabbitmqctl environment).
    pub fn broker(&self) -> &RabbitBroker {
        &self.broker
    }

    /// The broker, mutable (for faults).
    pub fn broker_mut(&mut self) -> &mut RabbitBroker {
        &mut self.broker
    }

    /// The result backend.
    pub fn backend(&self) -> &RedisServer {
        &self.backend
    }

    /// The result backend, mutable (for faults).
    pub fn backend_mut(&mut self) -> &mut RedisServer {
        &mut self.backend
    }

    /// Stops every server gracefully (broker nodes and Redis in parallel, epmd last) and
    /// returns once all are gone.
    pub async fn shutdown(mut self) {
        let started = Instant::now();
        tokio::join!(self.broker.stop(), self.backend.stop());
        tracing::info!(ms = started.elapsed().as_millis() as u64, "stack down");
    }
}

/// Versions for run.json: RabbitMQ and Erlang from the node's start line (Erlang falls
/// back to the installed OTP_VERSION file), Redis from `redis-server --version`.
fn collect_versions(node_log: &Path) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    let log = std::fs::read_to_string(node_log).unwrap_or_default();
    let (rabbit, erlang) = rabbitmq::versions_from_log(&log);
    let erlang = erlang.or_else(installed_otp_version);
    if let Some(v) = rabbit {
        versions.insert("rabbitmq".to_string(), v);
    }
    if let Some(v) = erlang {
        versions.insert("erlang_otp".to_string(), v);
    }
    let redis = std::process::Command::new("redis-server")
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .and_then(|out| redis_version(&String::from_utf8_lossy(&out.stdout)));
    if let Some(v) = redis {
        versions.insert("redis".to_string(), v);
    }
    versions
}

/// The full OTP version of the installed Erlang (`/usr/lib/erlang/releases/*/OTP_VERSION`).
fn installed_otp_version() -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir("/usr/lib/erlang/releases")
        .ok()?
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("OTP_VERSION")).ok())
        .map(|v| v.trim().to_string())
        .collect();
    found.sort();
    found.pop()
}

/// `7.0.15` from `Redis server v=7.0.15 sha=… malloc=…`.
fn redis_version(banner: &str) -> Option<String> {
    let rest = &banner[banner.find("v=")? + 2..];
    let v: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_version_from_banner() {
        assert_eq!(
            redis_version("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64"),
            Some("7.0.15".into())
        );
        assert_eq!(redis_version("garbage"), None);
    }

    #[test]
    fn only_single_node_standalone_is_supported() {
        let ok = StackOptions::default();
        assert!(ok.validate().is_ok());
        let err = StackOptions {
            broker_nodes: 3,
            ..ok.clone()
        }
        .validate()
        .unwrap_err();
        assert!(matches!(err, StackError::Unsupported(_)));
        assert!(
            err.to_string().contains("broker.nodes must be 1 for now"),
            "{err}"
        );
        let err = StackOptions {
            backend_replicas: 1,
            ..ok
        }
        .validate()
        .unwrap_err();
        assert!(
            err.to_string().contains("backend.replicas must be 0"),
            "{err}"
        );
    }
}
