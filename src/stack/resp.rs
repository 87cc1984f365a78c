//! What hab says to Redis servers and Sentinels (RESP), shared by [`super::redis`] and
//! [`super::sentinel`]: the raw readiness `PING`, one bounded command on a fresh
//! connection ([`query`] on a local port, [`query_at`] on any address), replies as text,
//! `INFO` parsing, path quoting for their config files, and starting either program until
//! it answers `PING` ([`spawn_pinged`]).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use redis::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::StackError;
use super::netns::NsPlace;
use super::process::{ManagedProcess, wait_ready};

/// How long one query to a Redis server or Sentinel may take (a paused server never
/// answers; a live one answers in microseconds).
pub const QUERY_TIMEOUT: Duration = Duration::from_millis(1000);

/// How [`spawn_pinged`] starts a `redis-server` or `redis-sentinel`.
#[derive(Debug, Clone, Copy)]
pub struct PingedSpawn<'a> {
    /// Name in errors and the log (`redis backend`, `sentinel 0`).
    pub name: &'a str,
    /// The program: a name looked up on `PATH` or a path.
    pub program: &'a Path,
    /// The Debian package that provides it.
    pub package: &'static str,
    /// Its config file, the one argument.
    pub config: &'a Path,
    /// Working directory.
    pub dir: &'a Path,
    /// The log file receiving stdout and stderr.
    pub log: &'a Path,
    /// The port it answers `PING` on.
    pub port: u16,
    /// The network namespace to run in; `None` = the root namespace.
    pub netns: Option<&'a NsPlace>,
    /// How long it may take to answer `PING`.
    pub startup_timeout: Duration,
}

/// Starts `program config` in `dir` (in its network namespace when it has one) and waits
/// until it answers `PING`, polled every 25 ms.
pub async fn spawn_pinged(s: PingedSpawn<'_>) -> Result<ManagedProcess, StackError> {
    let mut cmd = Command::new(s.program);
    cmd.arg(s.config).current_dir(s.dir);
    if let Some(place) = s.netns {
        place.enter_on_spawn(&mut cmd)?;
    }
    let mut process = ManagedProcess::spawn(s.name, cmd, s.package, s.log)?;
    wait_ready(
        &mut process,
        s.startup_timeout,
        Duration::from_millis(25),
        || ping(s.port),
    )
    .await?;
    Ok(process)
}

/// A path as a Redis or Sentinel config argument (double-quoted, backslashes and quotes
/// escaped).
pub fn quote(path: &Path) -> String {
    let s = path.to_string_lossy();
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One raw `PING` on a fresh connection; Ok when the answer is `+PONG`.
pub async fn ping(port: u16) -> Result<(), String> {
    let host = super::netns::host(port);
    let mut stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
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

/// Sends one command to the Redis server or Sentinel at `host:port` over a fresh
/// connection (authenticating with `password` when given), bounded by [`QUERY_TIMEOUT`];
/// errors have the installed credentials masked.
pub async fn query_at(addr: &str, args: &[&str], password: Option<&str>) -> Result<Value, String> {
    let url = match password {
        Some(p) => crate::credentials::Credentials {
            backend_password: Some(p.to_string()),
            ..Default::default()
        }
        .redis_url(&format!("redis://{addr}/")),
        None => format!("redis://{addr}/"),
    };
    command(url, addr, args)
        .await
        .map_err(|e| crate::credentials::mask(&e))
}

/// One command to the Redis server (or Sentinel) on `port` of this machine (or of its
/// network namespace, see [`super::netns::host`]), bounded by [`QUERY_TIMEOUT`].
pub async fn query(port: u16, args: &[&str]) -> Result<Value, String> {
    let host = super::netns::host(port);
    command(
        format!("redis://{host}:{port}/"),
        &format!("{host}:{port}"),
        args,
    )
    .await
}

/// `args` on a fresh connection to `url`, bounded by [`QUERY_TIMEOUT`]; errors name the
/// server as `shown`.
async fn command(url: String, shown: &str, args: &[&str]) -> Result<Value, String> {
    let run = async {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("connect {shown}: {e}"))?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async::<Value>(&mut con)
            .await
            .map_err(|e| format!("{} on {shown}: {e}", args.join(" ")))
    };
    tokio::time::timeout(QUERY_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "{} on {shown}: no answer within {} ms",
                args.join(" "),
                QUERY_TIMEOUT.as_millis()
            ))
        })
}

/// A reply as text (status, bulk string, or verbatim string).
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::SimpleString(s) => Some(s.clone()),
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// `key:value` lines of an `INFO` answer; comments and blank lines skipped.
pub fn parse_info(info: &str) -> std::collections::BTreeMap<String, String> {
    info.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_lines_are_parsed() {
        let info =
            "# Replication\r\nrole:slave\r\nmaster_port:6400\r\nmaster_link_status:up\r\n\r\n";
        let i = parse_info(info);
        assert_eq!(i["role"], "slave");
        assert_eq!(i["master_link_status"], "up");
        assert_eq!(i["master_port"], "6400");
        assert_eq!(i.len(), 3);
    }

    #[test]
    fn paths_are_quoted() {
        assert_eq!(quote(Path::new("/a b/\"c\"")), "\"/a b/\\\"c\\\"\"");
    }

    #[test]
    fn replies_read_as_text() {
        assert_eq!(text(&Value::Int(3)).as_deref(), Some("3"));
        assert_eq!(
            text(&Value::BulkString(b"ok".to_vec())).as_deref(),
            Some("ok")
        );
        assert_eq!(text(&Value::Nil), None);
    }
}
