//! HAProxy's stats socket: where it listens ([`StatsAddr`]), one bounded command on it, and
//! `show stat` parsed into [`ServerState`]s. The stack waits on it and the observers poll
//! it (an observer may import the stack; the stack never imports an observer).

use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long one stats-socket request may take.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);

/// One server line of `show stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerState {
    /// The HAProxy backend: [`crate::config::proxy::BROKER_BACKEND`] or
    /// [`crate::config::proxy::REDIS_BACKEND`].
    pub backend: String,
    /// The server name, e.g. `rabbit1` or `redis0`.
    pub server: String,
    /// HAProxy's status text: `UP`, `DOWN`, `UP 1/2` (failing, still used), `DOWN 1/2`
    /// (recovering, not used yet), `MAINT`, `DRAIN`, `NOLB`, `no check`.
    pub status: String,
    /// A `backup` server (used only when no normal server is UP).
    pub backup: bool,
    /// Result of the last health check, e.g. `L7OK`, `L4CON`, `L7TOUT`; `INI` before the
    /// first check finished (the `* ` HAProxy prefixes while a check runs is removed).
    pub check_status: String,
    /// Seconds since the status last changed (`lastchg`), when HAProxy reports it.
    pub last_change_s: Option<u64>,
}

impl ServerState {
    /// True when HAProxy sends new connections to this server: `UP`, also while it is
    /// failing checks but not yet DOWN (`UP 1/2`).
    pub fn is_up(&self) -> bool {
        self.status == "UP" || self.status.starts_with("UP ")
    }

    /// True when the status is final for now: a check has finished and the server is not
    /// between UP and DOWN.
    pub fn is_settled(&self) -> bool {
        self.check_status != "INI" && !self.status.contains('/')
    }

    /// The node index in the server name (`rabbit2` → 2).
    pub fn index(&self) -> Option<usize> {
        let digits = self
            .server
            .trim_start_matches(|c: char| !c.is_ascii_digit());
        digits.parse().ok()
    }
}

/// Parses `show stat` CSV (header line `# pxname,svname,…`) into server lines; frontend
/// and backend summary lines are left out. Columns are found by name, so added columns in
/// other HAProxy versions do not matter.
pub fn parse_show_stat(csv: &str) -> Result<Vec<ServerState>, String> {
    let mut lines = csv.lines();
    let header = lines
        .find(|l| l.starts_with("# "))
        .ok_or_else(|| format!("no `# pxname,…` header in `show stat` output: {csv:?}"))?;
    let names: Vec<&str> = header[2..].split(',').collect();
    let col = |name: &str| {
        names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| format!("`show stat` has no `{name}` column"))
    };
    let (px, sv, status, bck) = (col("pxname")?, col("svname")?, col("status")?, col("bck")?);
    let check = col("check_status")?;
    let lastchg = col("lastchg").ok();
    let mut out = Vec::new();
    for l in lines {
        if l.trim().is_empty() || l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split(',').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        if matches!(get(sv), "FRONTEND" | "BACKEND") {
            continue;
        }
        out.push(ServerState {
            backend: get(px).to_string(),
            server: get(sv).to_string(),
            status: get(status).to_string(),
            backup: get(bck) == "1",
            check_status: get(check).trim_start_matches("* ").to_string(),
            last_change_s: lastchg.and_then(|i| get(i).parse().ok()),
        });
    }
    Ok(out)
}

/// Where HAProxy's stats socket listens: a Unix socket (hab's own HAProxy) or TCP
/// (`stats socket ipv4@host:port`, an external stack's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsAddr {
    /// A Unix socket path.
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

impl StatsAddr {
    /// `tcp://host:port` → TCP; anything else is a Unix socket path.
    pub fn parse(s: &str) -> StatsAddr {
        match s.strip_prefix("tcp://") {
            Some(addr) => StatsAddr::Tcp(addr.to_string()),
            None => StatsAddr::Unix(PathBuf::from(s)),
        }
    }
}

impl std::fmt::Display for StatsAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatsAddr::Unix(p) => write!(f, "{}", p.display()),
            StatsAddr::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// Sends one command to an HAProxy stats socket (Unix or TCP) and returns the whole
/// answer (one command per connection: HAProxy answers and closes).
pub async fn stats_command_at(addr: &StatsAddr, command: &str) -> Result<String, String> {
    async fn exchange<S: AsyncReadExt + AsyncWriteExt + Unpin>(
        mut stream: S,
        command: &str,
    ) -> Result<String, String> {
        stream
            .write_all(format!("{command}\n").as_bytes())
            .await
            .map_err(|e| format!("send `{command}`: {e}"))?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .await
            .map_err(|e| format!("read the answer to `{command}`: {e}"))?;
        Ok(answer)
    }
    let run = async {
        match addr {
            StatsAddr::Unix(socket) => {
                let stream = UnixStream::connect(socket)
                    .await
                    .map_err(|e| format!("connect {}: {e}", socket.display()))?;
                exchange(stream, command).await
            }
            StatsAddr::Tcp(a) => {
                let stream = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(|e| format!("connect {a}: {e}"))?;
                exchange(stream, command).await
            }
        }
    };
    tokio::time::timeout(STATS_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no answer to `{command}` on {addr} within {} ms",
                STATS_TIMEOUT.as_millis()
            ))
        })
}

/// `show stat` on a Unix or TCP stats socket, parsed: one line per server of every backend.
pub async fn server_states_at(addr: &StatsAddr) -> Result<Vec<ServerState>, String> {
    parse_show_stat(&stats_command_at(addr, "show stat").await?)
}
