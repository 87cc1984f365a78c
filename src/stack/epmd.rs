//! A private Erlang port mapper (`epmd`) for hab's RabbitMQ nodes.
//!
//! The default epmd port 4369 is shared by every Erlang node on the machine, and a node
//! that finds no epmd starts `epmd -daemon`, which detaches and outlives everything. hab
//! therefore starts its own epmd first, in the foreground (no `-daemon`, so it stays in
//! its process group and dies with hab), on a free loopback port that the nodes and
//! `rabbitmqctl` reach through `ERL_EPMD_PORT`.
//!
//! Broker nodes in network namespaces (see [`super::netns`]) each have an epmd of their
//! own, started in the node's namespace on the node's address (and that namespace's
//! loopback), all on the same port number: a node looks a peer up at the peer's host
//! address on `ERL_EPMD_PORT`, so a partition cuts the lookups as well as the
//! distribution links.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use std::net::Ipv4Addr;

use super::netns::NsPlace;
use super::process::{ManagedProcess, find_program, wait_ready};
use super::{StackDirs, StackError, ports};

/// Debian package that provides `epmd`.
const PACKAGE: &str = "erlang-base";

/// How long epmd may take to answer its first request.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running private epmd, killed (group SIGKILL) when dropped.
#[derive(Debug)]
pub struct Epmd {
    /// The epmd process.
    process: ManagedProcess,
    /// Port it listens on (the nodes' `ERL_EPMD_PORT`).
    port: u16,
    /// Address it listens on besides loopback: 127.0.0.1, or its namespace's address.
    addr: Ipv4Addr,
}

/// The epmd program: `epmd` on `PATH`, else the one inside the Erlang runtime
/// (`/usr/lib/erlang/erts-*/bin/epmd`); plain `epmd` when neither exists, so the spawn
/// reports it missing.
pub fn epmd_program() -> PathBuf {
    if let Some(path) = find_program(&OsString::from("epmd")) {
        return path;
    }
    let mut bundled: Vec<PathBuf> = std::fs::read_dir("/usr/lib/erlang")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("erts-"))
        .map(|e| e.path().join("bin/epmd"))
        .filter(|p| p.is_file())
        .collect();
    bundled.sort();
    bundled.pop().unwrap_or_else(|| PathBuf::from("epmd"))
}

impl Epmd {
    /// Starts `epmd -port <free> -address 127.0.0.1` in the foreground, logging to
    /// `<logs>/<log_name>.log`, and waits until it answers a names request.
    pub async fn start(dirs: &StackDirs, log_name: &str) -> Result<Epmd, StackError> {
        let port = ports::free_port().map_err(|source| StackError::Io {
            what: "finding a free port for epmd".into(),
            source,
        })?;
        Epmd::start_at(dirs, log_name, port, None).await
    }

    /// Starts `epmd -port <port>` in the foreground: in `place`'s namespace on its address
    /// (epmd adds loopback by itself) when given, else on 127.0.0.1; logs to
    /// `<logs>/<log_name>.log` and waits until it answers a names request (from the root
    /// namespace, over the bridge).
    pub async fn start_at(
        dirs: &StackDirs,
        log_name: &str,
        port: u16,
        place: Option<&NsPlace>,
    ) -> Result<Epmd, StackError> {
        let addr = place.map_or(Ipv4Addr::LOCALHOST, |p| p.addr);
        let mut cmd = Command::new(epmd_program());
        cmd.args(["-port", &port.to_string(), "-address", &addr.to_string()])
            .env_remove("ERL_EPMD_PORT")
            .env_remove("ERL_EPMD_ADDRESS");
        if let Some(place) = place {
            place.enter_on_spawn(&mut cmd)?;
        }
        let log = dirs.logs.join(format!("{log_name}.log"));
        let mut process = ManagedProcess::spawn("epmd", cmd, PACKAGE, &log)?;
        wait_ready(
            &mut process,
            STARTUP_TIMEOUT,
            Duration::from_millis(25),
            || names(addr, port),
        )
        .await?;
        tracing::debug!(port, %addr, pid = process.pid().as_raw(), "epmd ready");
        Ok(Epmd {
            process,
            port,
            addr,
        })
    }

    /// Port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Pid of the epmd process.
    pub fn pid(&self) -> Pid {
        self.process.pid()
    }

    /// Node names registered with it, as epmd reports them (`name hab-1-0 at port 40123`).
    pub async fn registered(&self) -> Result<Vec<String>, String> {
        names(self.addr, self.port).await
    }

    /// Address it listens on besides loopback (127.0.0.1, or its namespace's address).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Stops it (SIGTERM, then SIGKILL after a short grace). Call after the nodes are down.
    pub async fn stop(&mut self) {
        self.process.stop(Duration::from_secs(2)).await;
    }
}

/// Sends an epmd `NAMES_REQ` to `addr:port` and returns the registered nodes; Ok only
/// when the answer comes from an epmd on `port`.
async fn names(addr: Ipv4Addr, port: u16) -> Result<Vec<String>, String> {
    let mut stream = TcpStream::connect((addr, port))
        .await
        .map_err(|e| format!("connect {addr}:{port}: {e}"))?;
    // Length 1 (big-endian u16), then NAMES_REQ = 110.
    stream
        .write_all(&[0, 1, 110])
        .await
        .map_err(|e| format!("send NAMES_REQ: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("read NAMES answer: {e}"))?;
    if answer.len() < 4
        || u32::from_be_bytes([answer[0], answer[1], answer[2], answer[3]]) != u32::from(port)
    {
        return Err(format!("port {port} did not answer like epmd: {answer:?}"));
    }
    Ok(String::from_utf8_lossy(&answer[4..])
        .lines()
        .map(str::to_string)
        .collect())
}
