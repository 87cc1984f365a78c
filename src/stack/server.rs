//! The shell every server hab runs lives in, and what all server kinds answer alike.
//!
//! A [`ServerShell`] owns the server's [`ManagedProcess`] (its process group, killed on
//! drop), the config file hab generated for it, how long a graceful stop may take, and
//! the temporary directory it works in (removed on drop, after the process is gone). The
//! [`Server`] trait gives each kind (Redis data node, Sentinel, HAProxy, RabbitMQ node)
//! the same accessors through its shell, so the node operations of a stack treat them
//! alike.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::Pid;
use tempfile::TempDir;

use super::process::ManagedProcess;

/// A running server's process, config file and working directory; dropping it kills the
/// process group, then removes the directory.
#[derive(Debug)]
pub struct ServerShell {
    /// The server process. Declared before `dir` so it dies before its directory goes.
    process: ManagedProcess,
    /// The config file hab generated for it, in the logs directory.
    config_path: PathBuf,
    /// How long a graceful stop may take before SIGKILL.
    stop_grace: Duration,
    /// Working or state directory, removed on drop; `None` when the server needs none.
    dir: Option<TempDir>,
}

impl ServerShell {
    /// The shell of a server just spawned as `process`, with its generated config at
    /// `config_path` and working directory `dir`.
    pub fn new(
        process: ManagedProcess,
        config_path: PathBuf,
        stop_grace: Duration,
        dir: Option<TempDir>,
    ) -> ServerShell {
        ServerShell {
            process,
            config_path,
            stop_grace,
            dir,
        }
    }

    /// The managed process.
    pub fn process(&mut self) -> &mut ManagedProcess {
        &mut self.process
    }

    /// The managed process, read-only.
    pub fn process_ref(&self) -> &ManagedProcess {
        &self.process
    }

    /// The config file hab generated for the server.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// Its working directory, when it has one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(TempDir::path)
    }

    /// The process of a restart replaces the old one (killed and reaped by then).
    pub fn replace(&mut self, process: ManagedProcess) {
        self.process = process;
    }

    /// A new process takes over while the old one is still finishing (a seamless reload):
    /// the old one is handed back, to be waited for.
    pub fn swap(&mut self, process: ManagedProcess) -> ManagedProcess {
        std::mem::replace(&mut self.process, process)
    }

    /// SIGTERM, the stop grace, then SIGKILL; returns once the group is gone.
    pub async fn stop(&mut self) {
        self.process.stop(self.stop_grace).await;
    }
}

/// A server hab runs, answering through its [`ServerShell`].
pub trait Server {
    /// Its shell.
    fn shell(&self) -> &ServerShell;

    /// Its shell, mutable (signals, restarts).
    fn shell_mut(&mut self) -> &mut ServerShell;

    /// Pid of the process hab spawned (also its process-group id).
    fn pid(&self) -> Pid {
        self.shell().process_ref().pid()
    }

    /// The process a fault signals: the server itself (RabbitMQ: its `beam.smp`).
    fn signal_pid(&self) -> Pid {
        self.pid()
    }

    /// The managed process, for signals and log tails.
    fn process(&mut self) -> &mut ManagedProcess {
        self.shell_mut().process()
    }

    /// The managed process, read-only.
    fn process_ref(&self) -> &ManagedProcess {
        self.shell().process_ref()
    }

    /// The config file hab generated for it (a Sentinel's as Sentinel last rewrote it).
    fn config_path(&self) -> &Path {
        self.shell().config_path()
    }

    /// How long a graceful stop may take before SIGKILL.
    fn stop_grace(&self) -> Duration {
        self.shell().stop_grace
    }

    /// Stops the server gracefully: SIGTERM, the stop grace, then SIGKILL.
    fn stop(&mut self) -> impl Future<Output = ()> + Send
    where
        Self: Sized,
    {
        self.shell_mut().stop()
    }
}
