//! HAProxy in TCP mode in front of the broker nodes and the Redis data nodes.
//!
//! One `haproxy -db -f <logs>/haproxy.cfg` child with two frontends on free loopback ports:
//!
//! - `broker` → backend [`BROKER_BACKEND`]: one server per RabbitMQ node (`rabbit<i>`),
//!   every node but node 0 a `backup`, so all clients share one node (where the quorum
//!   queue leader is placed) until it fails.
//! - `backend` → backend [`REDIS_BACKEND`]: every Redis data node (`redis<i>`) as a normal
//!   server; a tcp-check (`PING`, `info replication` → `role:master`, `QUIT`) lets only
//!   the master pass, so a Sentinel failover moves the traffic without client help.
//!
//! An admin stats socket (`<logs>/haproxy.sock`) answers `show stat`, parsed into
//! [`ServerState`]s by [`server_states`]. HAProxy logs to stdout (ISO timestamps with µs),
//! which goes to `<logs>/haproxy.log`; every restart gets a fresh log file. See
//! `notes/servers.md` for the measured effect of each setting.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::unistd::Pid;

use super::process::{ManagedProcess, wait_ready};
use super::server::{Server, ServerShell};
use super::{StackDirs, StackError, ports};
use crate::config::ProxyConfig;

/// Debian package that provides `haproxy`.
const PACKAGE: &str = "haproxy";

pub mod stats;

pub use stats::{ServerState, StatsAddr, parse_show_stat, server_states_at, stats_command_at};

use crate::config::proxy::{
    BROKER_BACKEND, BROKER_SERVER_PREFIX, REDIS_BACKEND, REDIS_SERVER_PREFIX,
};

/// How long a graceful stop may take before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// Longest stats socket path HAProxy accepts: the kernel allows 107 bytes (`sun_path` is
/// 108 with the NUL), but HAProxy 2.6 keeps room for its `.<pid>.tmp` suffix and refuses
/// paths over 97 ("socket path … too long (max 97)", seen with a comparison directory
/// nested in a temporary directory).
const MAX_SOCKET_PATH: usize = 97;

/// How HAProxy is configured and started.
#[derive(Debug, Clone)]
pub struct HaproxyOptions {
    /// Health-check interval (`inter`) for every server.
    pub check_interval: Duration,
    /// Consecutive failed checks before a server is marked DOWN.
    pub fall: u32,
    /// Consecutive passed checks before a server is marked UP.
    pub rise: u32,
    /// `timeout connect`, also the retry turn-around against a dead server.
    pub timeout_connect: Duration,
    /// `timeout client`: idle client-side connections are cut after this long.
    pub timeout_client: Duration,
    /// `timeout server`: idle server-side connections are cut after this long.
    pub timeout_server: Duration,
    /// Add `observe layer4 error-limit 1 on-error mark-down` to every server.
    pub observe_layer4: bool,
    /// Add `on-marked-up shutdown-backup-sessions` to the primary broker server.
    pub fail_back: bool,
    /// Add `on-marked-down shutdown-sessions` to the Redis servers (the broker servers
    /// always have it).
    pub backend_shutdown_sessions: bool,
    /// The Redis check also requires `uptime_in_seconds` of at least this many seconds.
    pub master_min_uptime_s: Option<u64>,
    /// How long HAProxy may take until every backend has a settled UP server.
    pub startup_timeout: Duration,
    /// The program: a name looked up on `PATH` or a path.
    pub program: PathBuf,
}

impl Default for HaproxyOptions {
    fn default() -> Self {
        HaproxyOptions::from_config(&ProxyConfig::default())
    }
}

impl HaproxyOptions {
    /// The options a topology's `[proxy]` section asks for.
    pub fn from_config(c: &ProxyConfig) -> HaproxyOptions {
        HaproxyOptions {
            check_interval: c.check_interval,
            fall: c.fall,
            rise: c.rise,
            timeout_connect: c.timeout_connect,
            timeout_client: c.timeout_client,
            timeout_server: c.timeout_server,
            observe_layer4: c.observe_layer4,
            fail_back: c.fail_back,
            backend_shutdown_sessions: c.backend_shutdown_sessions,
            master_min_uptime_s: c.master_min_uptime.map(|d| d.as_secs()),
            // With an uptime guard the first master only passes once it has been up that
            // long.
            startup_timeout: Duration::from_secs(15) + c.master_min_uptime.unwrap_or_default(),
            program: PathBuf::from("haproxy"),
        }
    }
}

/// Ports and paths one HAProxy instance is generated for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyLayout {
    /// Port of the `broker` frontend on 127.0.0.1.
    pub broker_port: u16,
    /// Port of the `backend` (Redis) frontend on 127.0.0.1.
    pub backend_port: u16,
    /// AMQP ports of the RabbitMQ nodes, node 0 first (the only non-backup server).
    pub broker_servers: Vec<u16>,
    /// Ports of the Redis data nodes.
    pub redis_servers: Vec<u16>,
    /// The admin stats socket.
    pub stats_socket: PathBuf,
    /// The same stats over TCP on 127.0.0.1 (`stats socket ipv4@…`), as an external
    /// stack's HAProxy would offer them; `hab up` hands this one out.
    pub stats_tcp_port: u16,
    /// The server-state file (`server-state-file`): written from `show servers state`
    /// just before a [reload](Haproxy::reload), read by the new process so every server
    /// keeps its UP/DOWN state across it.
    pub state_file: PathBuf,
}

/// The config lines of frontend `name` on 127.0.0.1:`port` in front of `backend`, up to
/// that backend's opening line.
fn frontend_lines(name: &str, port: u16, backend: &str) -> [String; 5] {
    [
        format!("frontend {name}"),
        format!("    bind 127.0.0.1:{port}"),
        format!("    default_backend {backend}"),
        String::new(),
        format!("backend {backend}"),
    ]
}

/// A duration as HAProxy reads it, in milliseconds (`250ms`).
fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// The whole `haproxy.cfg` for `layout`.
pub fn haproxy_config(layout: &HaproxyLayout, opts: &HaproxyOptions) -> String {
    let check = format!(
        "check inter {} fall {} rise {} on-marked-down shutdown-sessions",
        ms(opts.check_interval),
        opts.fall,
        opts.rise
    );
    let redis_check = if opts.backend_shutdown_sessions {
        check.clone()
    } else {
        format!(
            "check inter {} fall {} rise {}",
            ms(opts.check_interval),
            opts.fall,
            opts.rise
        )
    };
    let observe = if opts.observe_layer4 {
        " observe layer4 error-limit 1 on-error mark-down"
    } else {
        ""
    };
    let mut c = String::new();
    let mut line = |s: &str| {
        c.push_str(s);
        c.push('\n');
    };
    line("# generated by hab");
    line("global");
    line("    log stdout format iso local0 info");
    // `expose-fd listeners`: a reload's new process takes the listening sockets over
    // (`-x`), so no connection attempt is refused while it starts.
    line(&format!(
        "    stats socket {} level admin expose-fd listeners",
        layout.stats_socket.display()
    ));
    line(&format!(
        "    stats socket ipv4@127.0.0.1:{} level admin",
        layout.stats_tcp_port
    ));
    line(&format!(
        "    server-state-file {}",
        layout.state_file.display()
    ));
    line("");
    line("defaults");
    line("    load-server-state-from-file global");
    line("    mode tcp");
    line("    log global");
    line("    option tcplog");
    line("    option redispatch");
    line("    retries 3");
    line(&format!("    timeout connect {}", ms(opts.timeout_connect)));
    line(&format!("    timeout client {}", ms(opts.timeout_client)));
    line(&format!("    timeout server {}", ms(opts.timeout_server)));
    // A replica fails the Redis check by never saying role:master: bound that wait.
    line(&format!("    timeout check {}", ms(opts.check_interval)));
    line("");
    for l in frontend_lines("broker", layout.broker_port, BROKER_BACKEND) {
        line(&l);
    }
    for (i, port) in layout.broker_servers.iter().enumerate() {
        let backup = match (i, opts.fail_back) {
            (0, true) => " on-marked-up shutdown-backup-sessions",
            (0, false) => "",
            _ => " backup",
        };
        line(&format!(
            "    server {BROKER_SERVER_PREFIX}{i} {}:{port} {check}{observe}{backup}",
            super::netns::host(*port)
        ));
    }
    line("");
    for l in frontend_lines("backend", layout.backend_port, REDIS_BACKEND) {
        line(&l);
    }
    line("    option tcp-check");
    line("    tcp-check send PING\\r\\n");
    line("    tcp-check expect string +PONG");
    if let Some(min) = opts.master_min_uptime_s {
        // A node that just (re)started is not trusted as master yet.
        line("    tcp-check send info\\ server\\r\\n");
        line(&format!(
            "    tcp-check expect rstring uptime_in_seconds:{}[^0-9]",
            at_least_regex(min)
        ));
    }
    line("    tcp-check send info\\ replication\\r\\n");
    line("    tcp-check expect string role:master");
    line("    tcp-check send QUIT\\r\\n");
    line("    tcp-check expect string +OK");
    for (i, port) in layout.redis_servers.iter().enumerate() {
        line(&format!(
            "    server {REDIS_SERVER_PREFIX}{i} {}:{port} {redis_check}{observe}",
            super::netns::host(*port)
        ));
    }
    c
}

/// A regular expression (PCRE or POSIX ERE) matching exactly the decimal numbers `>= n`
/// written without leading zeros, in parentheses: `at_least_regex(20)` is
/// `(2[0-9]|[3-9][0-9]|[1-9][0-9]{2,})`. Follow it with a non-digit to anchor the end.
pub fn at_least_regex(n: u64) -> String {
    let digits: Vec<u8> = n.to_string().bytes().map(|b| b - b'0').collect();
    let k = digits.len();
    let mut alts = Vec::new();
    // Same length: n itself, or n's first i digits, a larger digit, then anything.
    let exact: String = digits.iter().map(|d| d.to_string()).collect();
    alts.push(exact);
    for i in (0..k).rev() {
        let lowest = if i == 0 { 1 } else { 0 };
        let above = (digits[i] + 1).max(lowest);
        if above > 9 {
            continue;
        }
        let prefix: String = digits[..i].iter().map(|d| d.to_string()).collect();
        let set = if above == 9 {
            "9".to_string()
        } else {
            format!("[{above}-9]")
        };
        let rest = match k - i - 1 {
            0 => String::new(),
            1 => "[0-9]".to_string(),
            r => format!("[0-9]{{{r}}}"),
        };
        alts.push(format!("{prefix}{set}{rest}"));
    }
    // Longer numbers.
    alts.push(format!("[1-9][0-9]{{{k},}}"));
    format!("({})", alts.join("|"))
}

/// The server of `backend` that HAProxy sends new connections to: the first UP
/// non-backup server, else the first UP backup (HAProxy's default without
/// `option allbackups`); `None` when no server is UP.
pub fn routed_server<'a>(states: &'a [ServerState], backend: &str) -> Option<&'a ServerState> {
    let up = || states.iter().filter(|s| s.backend == backend && s.is_up());
    up().find(|s| !s.backup).or_else(|| up().find(|s| s.backup))
}

/// Why HAProxy's view is not settled yet: some backend has no UP server, or a server has
/// not finished its first check or is between UP and DOWN. `Ok` when every backend that
/// appears has a settled UP server and every server is settled.
pub fn settled(states: &[ServerState]) -> Result<(), String> {
    if let Some(s) = states.iter().find(|s| !s.is_settled()) {
        return Err(format!(
            "{}/{} not settled ({}, check {})",
            s.backend, s.server, s.status, s.check_status
        ));
    }
    let mut backends: Vec<&str> = states.iter().map(|s| s.backend.as_str()).collect();
    backends.dedup();
    for b in backends {
        if routed_server(states, b).is_none() {
            return Err(format!("no server UP in {b}"));
        }
    }
    Ok(())
}

/// Sends one command to an HAProxy stats socket and returns the whole answer (one command
/// per connection: HAProxy answers and closes).
pub async fn stats_command(socket: &Path, command: &str) -> Result<String, String> {
    stats_command_at(&StatsAddr::Unix(socket.to_path_buf()), command).await
}

/// `show stat` on the stats socket, parsed: one line per server of every backend.
pub async fn server_states(socket: &Path) -> Result<Vec<ServerState>, String> {
    parse_show_stat(&stats_command(socket, "show stat").await?)
}

/// A running HAProxy, killed (group SIGKILL) when dropped.
#[derive(Debug)]
pub struct Haproxy {
    /// The haproxy process (leader of its own group), the generated config (in the logs
    /// directory) and, when the logs path is too long for a socket, the directory holding
    /// the stats socket.
    shell: ServerShell,
    /// Ports and the stats socket.
    layout: HaproxyLayout,
    /// The logs directory (restart log files go there too).
    logs: PathBuf,
    /// How it was started (startup timeout, program).
    opts: HaproxyOptions,
    /// Starts so far, 1 after [`Haproxy::start`]; names the log file of each restart.
    starts: u32,
    /// Reloads so far; names the log file of each reload.
    reloads: u32,
}

impl Haproxy {
    /// Writes `<logs>/haproxy.cfg` for the given broker and Redis ports, starts HAProxy
    /// and waits until every backend has a settled UP server (see [`settled`]).
    pub async fn start(
        dirs: &StackDirs,
        broker_servers: &[u16],
        redis_servers: &[u16],
        opts: &HaproxyOptions,
    ) -> Result<Haproxy, StackError> {
        let port = || {
            ports::free_port().map_err(|source| StackError::Io {
                what: "finding a free port for HAProxy".into(),
                source,
            })
        };
        let (broker_port, backend_port, stats_tcp_port) = (port()?, port()?, port()?);
        let mut stats_socket = dirs.logs.join("haproxy.sock");
        let mut socket_dir = None;
        if stats_socket.as_os_str().len() > MAX_SOCKET_PATH {
            let dir = super::temp_dir(
                "hab-haproxy-",
                "creating a directory for the HAProxy stats socket",
            )?;
            stats_socket = dir.path().join("haproxy.sock");
            socket_dir = Some(dir);
        }
        let layout = HaproxyLayout {
            broker_port,
            backend_port,
            broker_servers: broker_servers.to_vec(),
            redis_servers: redis_servers.to_vec(),
            stats_socket,
            stats_tcp_port,
            state_file: dirs.logs.join("haproxy.state"),
        };
        // An empty state file at the first start: nothing to load, and no warning that
        // it is missing.
        std::fs::write(&layout.state_file, "").map_err(|source| StackError::Io {
            what: format!("writing {}", layout.state_file.display()),
            source,
        })?;
        let config_path = dirs.logs.join("haproxy.cfg");
        std::fs::write(&config_path, haproxy_config(&layout, opts)).map_err(|source| {
            StackError::Io {
                what: format!("writing {}", config_path.display()),
                source,
            }
        })?;
        let process = spawn(&config_path, &dirs.logs.join("haproxy.log"), opts, None)?;
        let mut proxy = Haproxy {
            shell: ServerShell::new(process, config_path, STOP_GRACE, socket_dir),
            layout,
            logs: dirs.logs.clone(),
            opts: opts.clone(),
            starts: 1,
            reloads: 0,
        };
        proxy.wait_settled().await?;
        tracing::info!(
            broker_port,
            backend_port,
            pid = proxy.pid().as_raw(),
            "haproxy ready"
        );
        Ok(proxy)
    }

    /// Waits until `show stat` reports every server settled and an UP server in each
    /// backend, within the startup timeout.
    async fn wait_settled(&mut self) -> Result<(), StackError> {
        let socket = self.layout.stats_socket.clone();
        let interval = self.opts.check_interval.min(Duration::from_millis(100));
        wait_ready(
            self.shell.process(),
            self.opts.startup_timeout,
            interval,
            || async { settled(&server_states(&socket).await?) },
        )
        .await
    }

    /// Starts HAProxy again after a kill ([`Stack::kill_node`](super::Stack::kill_node)) or
    /// a [`stop`](Self::stop), with the same config and ports and a fresh log file
    /// (`haproxy.restart-<n>.log`), and waits until it is settled as at the first start.
    pub async fn start_again(&mut self) -> Result<(), StackError> {
        if self.process().is_running() {
            return Err(StackError::Control {
                what: "restarting HAProxy".into(),
                detail: "it is still running; kill or stop it first".into(),
            });
        }
        self.process().kill_now(); // reap whatever is left of the old group
        self.starts += 1;
        let log = self
            .logs
            .join(format!("haproxy.restart-{}.log", self.starts - 1));
        let process = spawn(self.shell.config_path(), &log, &self.opts, None)?;
        self.shell.replace(process);
        self.wait_settled().await?;
        tracing::info!(pid = self.pid().as_raw(), "haproxy restarted");
        Ok(())
    }

    /// Reloads HAProxy with new options, seamlessly: the servers' states are saved
    /// (`show servers state` into the [state file](HaproxyLayout::state_file)), the config
    /// is rewritten, and a new process (`-x`, `-sf`) takes the listening sockets over and
    /// loads the saved states, so no server changes UP/DOWN because of the reload and no
    /// connection attempt is refused. Waits until the new process is settled and the old
    /// one has finished (killed after [`STOP_GRACE`]); the new process logs to
    /// `haproxy.reload-<n>.log`. Returns the new process's pid.
    pub async fn reload(&mut self, opts: &HaproxyOptions) -> Result<Pid, StackError> {
        let control = |detail: String| StackError::Control {
            what: "reloading HAProxy".into(),
            detail,
        };
        let old = self.pid();
        let before = server_states(&self.layout.stats_socket)
            .await
            .map_err(control)?;
        let states = stats_command(&self.layout.stats_socket, "show servers state")
            .await
            .map_err(control)?;
        let io = |what: String| {
            move |source| StackError::Io {
                what: what.clone(),
                source,
            }
        };
        let state_file = self.layout.state_file.clone();
        std::fs::write(&state_file, states)
            .map_err(io(format!("writing {}", state_file.display())))?;
        let config = self.shell.config_path().to_path_buf();
        std::fs::write(&config, haproxy_config(&self.layout, opts))
            .map_err(io(format!("writing {}", config.display())))?;
        self.opts = HaproxyOptions {
            program: self.opts.program.clone(),
            ..opts.clone()
        };
        self.reloads += 1;
        let log = self
            .logs
            .join(format!("haproxy.reload-{}.log", self.reloads));
        let process = spawn(
            &config,
            &log,
            &self.opts,
            Some((&self.layout.stats_socket, old)),
        )?;
        let mut previous = self.shell.swap(process);
        // The old process stops listening at once and exits when its sessions end.
        previous.wait_gone(STOP_GRACE).await;
        self.wait_settled().await?;
        let after = server_states(&self.layout.stats_socket)
            .await
            .map_err(control)?;
        if let Some(changed) = changed_by_reload(&before, &after) {
            return Err(control(format!(
                "the reload changed a server's state, which the saved states should prevent: {changed}"
            )));
        }
        tracing::info!(
            old = old.as_raw(),
            new = self.pid().as_raw(),
            "haproxy reloaded"
        );
        Ok(self.pid())
    }

    /// The options it runs with (after a reload: the reload's).
    pub fn options(&self) -> &HaproxyOptions {
        &self.opts
    }

    /// Port of the `broker` frontend on 127.0.0.1.
    pub fn broker_port(&self) -> u16 {
        self.layout.broker_port
    }

    /// Port of the `backend` (Redis) frontend on 127.0.0.1.
    pub fn backend_port(&self) -> u16 {
        self.layout.backend_port
    }

    /// `amqp://guest:guest@127.0.0.1:<broker frontend>/%2f`.
    pub fn broker_url(&self) -> String {
        super::rabbitmq::amqp_url(self.layout.broker_port)
    }

    /// `redis://127.0.0.1:<backend frontend>/0`.
    pub fn backend_url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.layout.backend_port)
    }

    /// The admin stats socket (for observers: [`server_states`], [`stats_command`]).
    pub fn stats_socket(&self) -> &Path {
        &self.layout.stats_socket
    }

    /// `host:port` of the same stats over TCP.
    pub fn stats_tcp_addr(&self) -> String {
        format!("127.0.0.1:{}", self.layout.stats_tcp_port)
    }

    /// The ports and paths it was generated for.
    pub fn layout(&self) -> &HaproxyLayout {
        &self.layout
    }

    /// The current log file (a fresh one per start).
    pub fn log_path(&self) -> &Path {
        self.process_ref().log_path()
    }

    /// `show stat`, parsed: one [`ServerState`] per server of both backends.
    pub async fn server_states(&self) -> Result<Vec<ServerState>, StackError> {
        server_states(&self.layout.stats_socket)
            .await
            .map_err(|detail| StackError::Control {
                what: "asking HAProxy for its server states".into(),
                detail,
            })
    }
}

impl Server for Haproxy {
    fn shell(&self) -> &ServerShell {
        &self.shell
    }

    fn shell_mut(&mut self) -> &mut ServerShell {
        &mut self.shell
    }

    /// Stops HAProxy gracefully: SIGTERM, a few seconds' grace, then SIGKILL; removes the
    /// stats socket file it leaves behind.
    async fn stop(&mut self) {
        self.shell.stop().await;
        let _ = std::fs::remove_file(&self.layout.stats_socket);
    }
}

/// A server that is UP on one side of a reload and not on the other (or is missing),
/// in words; `None` when the reload kept every server's state.
pub fn changed_by_reload(before: &[ServerState], after: &[ServerState]) -> Option<String> {
    let mut out = Vec::new();
    for b in before {
        match after
            .iter()
            .find(|a| a.backend == b.backend && a.server == b.server)
        {
            Some(a) if a.is_up() == b.is_up() => {}
            Some(a) => out.push(format!(
                "{}/{} was {} and is {}",
                b.backend, b.server, b.status, a.status
            )),
            None => out.push(format!("{}/{} is gone", b.backend, b.server)),
        }
    }
    (!out.is_empty()).then(|| out.join("; "))
}

/// Starts `haproxy -db -f <config>`; for a reload, with `-x <stats socket> -sf <old pid>`:
/// the new process takes the old one's listening sockets, then tells it to finish.
fn spawn(
    config: &Path,
    log: &Path,
    opts: &HaproxyOptions,
    takeover: Option<(&Path, Pid)>,
) -> Result<ManagedProcess, StackError> {
    let mut cmd = Command::new(&opts.program);
    cmd.arg("-db").arg("-f").arg(config);
    if let Some((socket, old)) = takeover {
        cmd.arg("-x")
            .arg(socket)
            .arg("-sf")
            .arg(old.as_raw().to_string());
    }
    ManagedProcess::spawn("haproxy", cmd, PACKAGE, log)
}

/// `2.6.12` from `HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/`.
pub fn version_from_banner(banner: &str) -> Option<String> {
    let rest = &banner[banner.find("version ")? + "version ".len()..];
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests;
