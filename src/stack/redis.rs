//! A Redis data node (`redis-server`) run by hab on a loopback port.
//!
//! The generated config (`redis-<name>.conf`) and the log (`redis-<name>.log`, which also
//! receives stdout/stderr, where config errors go) live in the run's logs directory; the
//! working directory is a temporary directory removed at teardown. `save ""` and
//! `appendonly no` keep it from writing dumps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::unistd::Pid;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::process::{ManagedProcess, wait_ready};
use super::{StackDirs, StackError, ports};

/// Debian package that provides `redis-server`.
const PACKAGE: &str = "redis-server";

/// How long a graceful stop may take before SIGKILL (Redis with `save ""` exits at once).
const STOP_GRACE: Duration = Duration::from_secs(3);

/// How a Redis node is started.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// How long to wait for the first `PING` answer before giving up.
    pub startup_timeout: Duration,
    /// Port to listen on; a free port when `None`. A fixed port serves restarts.
    pub port: Option<u16>,
    /// Port of a master on 127.0.0.1 to replicate (`replicaof`); `None` for a master.
    pub replica_of: Option<u16>,
    /// Extra config lines appended verbatim after the generated ones (tuning, tests).
    pub extra_directives: Vec<String>,
    /// The server program: a name looked up on `PATH` or a path.
    pub program: PathBuf,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            startup_timeout: Duration::from_secs(10),
            port: None,
            replica_of: None,
            extra_directives: Vec::new(),
            program: PathBuf::from("redis-server"),
        }
    }
}

/// A running `redis-server`, killed (group SIGKILL) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    /// The server process. Declared before `_data_dir` so it dies before its dir goes.
    process: ManagedProcess,
    /// Port it listens on, on 127.0.0.1.
    port: u16,
    /// Generated config file, in the logs directory.
    config_path: PathBuf,
    /// Working directory (`dir`), removed when the server is dropped.
    _data_dir: TempDir,
}

impl RedisServer {
    /// Writes the config, starts `redis-server` and waits until it answers `PING`.
    ///
    /// `name` tells nodes apart in file names and errors (`redis-<name>.log`).
    pub async fn start(
        name: &str,
        dirs: &StackDirs,
        opts: &RedisOptions,
    ) -> Result<RedisServer, StackError> {
        let port = match opts.port {
            Some(port) => port,
            None => ports::free_port().map_err(|source| StackError::Io {
                what: "finding a free port for Redis".into(),
                source,
            })?,
        };
        let data_dir = tempfile::Builder::new()
            .prefix(&format!("hab-redis-{name}-"))
            .tempdir()
            .map_err(|source| StackError::Io {
                what: "creating a temporary directory for Redis".into(),
                source,
            })?;
        let log_path = dirs.logs.join(format!("redis-{name}.log"));
        let config_path = dirs.logs.join(format!("redis-{name}.conf"));
        let config = redis_config(port, data_dir.path(), &log_path, opts);
        std::fs::write(&config_path, config).map_err(|source| StackError::Io {
            what: format!("writing {}", config_path.display()),
            source,
        })?;

        let mut cmd = Command::new(&opts.program);
        cmd.arg(&config_path).current_dir(data_dir.path());
        let mut process = ManagedProcess::spawn(&format!("redis {name}"), cmd, PACKAGE, &log_path)?;
        wait_ready(
            &mut process,
            opts.startup_timeout,
            Duration::from_millis(25),
            || ping(port),
        )
        .await?;
        tracing::info!(%name, port, pid = process.pid().as_raw(), "redis ready");
        Ok(RedisServer {
            process,
            port,
            config_path,
            _data_dir: data_dir,
        })
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Pid of the `redis-server` process (also its process-group id).
    pub fn pid(&self) -> Pid {
        self.process.pid()
    }

    /// The generated config file.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The managed process, for signals and log tails.
    pub fn process(&mut self) -> &mut ManagedProcess {
        &mut self.process
    }

    /// Stops the server: SIGTERM, a few seconds' grace, then SIGKILL.
    pub async fn stop(&mut self) {
        self.process.stop(STOP_GRACE).await;
    }
}

/// The config file for one node: loopback only, in the foreground, no persistence.
pub fn redis_config(port: u16, dir: &Path, logfile: &Path, opts: &RedisOptions) -> String {
    let mut lines = vec![
        "# generated by hab".to_string(),
        format!("port {port}"),
        "bind 127.0.0.1".to_string(),
        "protected-mode no".to_string(),
        "daemonize no".to_string(),
        "save \"\"".to_string(),
        "appendonly no".to_string(),
        "repl-diskless-sync yes".to_string(),
        "repl-diskless-sync-delay 0".to_string(),
        format!("logfile {}", quote(logfile)),
        format!("dir {}", quote(dir)),
    ];
    if let Some(master) = opts.replica_of {
        lines.push(format!("replicaof 127.0.0.1 {master}"));
    }
    lines.extend(opts.extra_directives.iter().cloned());
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// A path as a Redis config argument (double-quoted, backslashes and quotes escaped).
fn quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One raw `PING` on a fresh connection; Ok when the answer is `+PONG`.
pub async fn ping(port: u16) -> Result<(), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect 127.0.0.1:{port}: {e}"))?;
    stream
        .write_all(b"PING\r\n")
        .await
        .map_err(|e| format!("send PING: {e}"))?;
    let mut buf = [0u8; 128];
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n") {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("read PING answer: {e}"))?;
        if n == 0 {
            return Err("connection closed before the PING answer".into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    if got.starts_with(b"+PONG") {
        Ok(())
    } else {
        Err(format!(
            "PING answered {:?}",
            String::from_utf8_lossy(&got).trim_end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_config_is_loopback_and_ephemeral() {
        let conf = redis_config(
            6400,
            Path::new("/tmp/d"),
            Path::new("/run/logs/redis-backend.log"),
            &RedisOptions::default(),
        );
        for line in [
            "port 6400",
            "bind 127.0.0.1",
            "daemonize no",
            "save \"\"",
            "appendonly no",
            "repl-diskless-sync yes",
            "repl-diskless-sync-delay 0",
            "protected-mode no",
            "logfile \"/run/logs/redis-backend.log\"",
            "dir \"/tmp/d\"",
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "missing {line:?} in\n{conf}"
            );
        }
        assert!(!conf.contains("replicaof"));
        assert!(conf.ends_with('\n'));
    }

    #[test]
    fn replica_and_extra_directives_come_last() {
        let opts = RedisOptions {
            replica_of: Some(6400),
            extra_directives: vec!["min-replicas-to-write 1".into()],
            ..RedisOptions::default()
        };
        let conf = redis_config(6401, Path::new("/d"), Path::new("/l"), &opts);
        let lines: Vec<&str> = conf.lines().collect();
        assert_eq!(lines[lines.len() - 2], "replicaof 127.0.0.1 6400");
        assert_eq!(lines[lines.len() - 1], "min-replicas-to-write 1");
    }

    #[test]
    fn paths_are_quoted() {
        assert_eq!(quote(Path::new("/a b/\"c\"")), "\"/a b/\\\"c\\\"\"");
    }
}
