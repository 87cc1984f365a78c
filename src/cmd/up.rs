//! `hab up`, `hab down`, `hab node`: a local stack left running for manual work, and
//! driven from outside like a stack hab did not start.
//!
//! `hab up --topology FILE [--dir DIR]` starts a supervisor process (detached, its own
//! session; its output in `DIR/up.log`) that brings the topology's stack up exactly as
//! `hab run` does, then writes into `DIR`:
//! - `stack.json` ([`UpState`]): the supervisor's pid and every endpoint;
//! - `external.toml`: a topology describing this stack as an **external** one, with
//!   `[[external.fault]]` commands that are `hab node …` calls, so `hab run --topology
//!   DIR/external.toml --allow-faults` drives it through the same code path as a cluster
//!   on other hosts (the local stand-in for `ssh host systemctl kill …`);
//! - `logs/`: every server's log and generated config.
//!
//! The parent returns once `stack.json` exists (or prints the end of `up.log` when the
//! supervisor died first). `hab node ACTION ROLE --dir DIR` asks the supervisor, over
//! the Unix socket `DIR/control.sock`, to kill / stop / start / pause / resume /
//! partition / heal / fail over the node playing `ROLE` (resolved by the supervisor at
//! that moment) or to check the stack's health; it exits 0 on success. `hab down --dir
//! DIR` asks the supervisor to stop every server and waits until it has exited. A
//! supervisor that gets SIGTERM or Ctrl-C tears the stack down the same way; a second
//! signal kills every server at once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use crate::config::external::{ExternalConfig, FaultCommands, NodeKind};
use crate::config::{BackendConfig, BrokerConfig, FileKind, Source, Topology};
use crate::fault::{FaultKind, Role};
use crate::progress::Reporter;
use crate::stack::{Stack, StackDirs, StackOptions};

/// The state file in the stack directory.
pub const STATE_FILE: &str = "stack.json";
/// The external topology `hab up` writes for the stack.
pub const EXTERNAL_TOPOLOGY: &str = "external.toml";
/// The supervisor's control socket.
pub const CONTROL_SOCKET: &str = "control.sock";
/// The supervisor's own output.
pub const UP_LOG: &str = "up.log";
/// How long `hab up` waits for the stack.
const UP_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `hab down` waits for the supervisor to exit.
const DOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// What `hab up` left running, as `stack.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpState {
    /// The supervisor process.
    pub pid: u32,
    /// The topology file it was started from.
    pub topology: PathBuf,
    /// The topology's name.
    pub name: String,
    /// When the stack was ready, unix ms.
    pub ready_unix_ms: i64,
    /// The AMQP address clients use (HAProxy or node 0), without credentials.
    pub broker_url: String,
    /// Every broker node's AMQP address.
    pub broker_nodes: Vec<String>,
    /// The Redis address clients use.
    pub backend_url: String,
    /// Every Redis data node.
    pub backend_nodes: Vec<String>,
    /// `host:port` of every Sentinel.
    pub sentinels: Vec<String>,
    /// HAProxy's stats socket, when the topology has a proxy.
    pub haproxy_stats: Option<PathBuf>,
    /// The same stats over TCP (`host:port`), which external.toml names.
    #[serde(default)]
    pub haproxy_stats_tcp: Option<String>,
    /// The management API of every broker node (with `broker.management = true`).
    #[serde(default)]
    pub management: Vec<String>,
    /// Erlang node name of every broker node.
    #[serde(default)]
    pub broker_node_names: Vec<String>,
    /// The external topology describing this stack.
    pub external_topology: PathBuf,
    /// The control socket.
    pub control: PathBuf,
    /// The servers' logs.
    pub logs: PathBuf,
}

/// `url` without user and password (the local stack's `guest:guest` is AMQP's default).
fn without_userinfo(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// The pid in `DIR/stack.json` if that process is alive.
fn live_supervisor(dir: &Path) -> Option<UpState> {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).ok()?;
    let state: UpState = serde_json::from_str(&text).ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.pid as i32), None).is_ok();
    alive.then_some(state)
}

/// `hab up` without `--foreground`: start the supervisor detached and wait until the
/// stack is ready; prints the endpoints.
pub fn up(topology_path: &Path, dir: &Path, reporter: &dyn Reporter) -> Result<i32> {
    let topology = crate::config::load_topology(topology_path)?;
    if topology.is_external() {
        bail!(
            "{} describes an external stack; hab up starts local stacks only",
            topology_path.display()
        );
    }
    let dir = std::path::absolute(dir).with_context(|| format!("bad --dir {}", dir.display()))?;
    // The supervisor gets what was found: an absolute path, or `builtin:NAME`.
    let topology_path = match crate::config::builtin::resolve(FileKind::Topology, topology_path)? {
        Source::File(p) => std::path::absolute(p)?,
        builtin => builtin.spec(),
    };
    if let Some(s) = live_supervisor(&dir) {
        reporter.line(&format!(
            "error: a stack ({}) is already up in {} (supervisor pid {}); run `hab down --dir {}` first",
            s.name,
            dir.display(),
            s.pid,
            dir.display()
        ));
        return Ok(2);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for f in [STATE_FILE, CONTROL_SOCKET, EXTERNAL_TOPOLOGY] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let log_path = dir.join(UP_LOG);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let exe = crate::stack::process::own_executable()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("up")
        .arg("--topology")
        .arg(&topology_path)
        .arg("--dir")
        .arg(&dir)
        .arg("--foreground")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid(2) in the forked child before exec is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().context("cannot start the supervisor")?;
    reporter.line(&format!(
        "hab up: starting {} (supervisor pid {}, log {}) …",
        topology.name,
        child.id(),
        log_path.display()
    ));
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let tail = crate::stack::process::tail_lines(
                &std::fs::read_to_string(&log_path).unwrap_or_default(),
                30,
            );
            reporter.line(&format!(
                "error: the supervisor exited ({status}) before the stack was up; last lines of {}:\n{tail}",
                log_path.display()
            ));
            return Ok(1);
        }
        if let Ok(text) = std::fs::read_to_string(dir.join(STATE_FILE))
            && let Ok(state) = serde_json::from_str::<UpState>(&text)
        {
            print_state(&state, started.elapsed());
            return Ok(0);
        }
        if started.elapsed() > UP_TIMEOUT {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            bail!(
                "the stack was not up after {} s; see {}",
                UP_TIMEOUT.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn print_state(s: &UpState, took: Duration) {
    println!(
        "stack {} up in {:.1} s (supervisor pid {})",
        s.name,
        took.as_secs_f64(),
        s.pid
    );
    println!("broker:   {}", s.broker_url);
    for (i, u) in s.broker_nodes.iter().enumerate() {
        println!("  broker.node[{i}]  {u}");
    }
    println!("backend:  {}", s.backend_url);
    for (i, u) in s.backend_nodes.iter().enumerate() {
        println!("  backend.node[{i}] {u}");
    }
    for (i, a) in s.sentinels.iter().enumerate() {
        println!("  sentinel[{i}]     {a}");
    }
    for (i, m) in s.management.iter().enumerate() {
        println!("  management[{i}]  {m}");
    }
    if let Some(p) = &s.haproxy_stats {
        println!("haproxy stats: {}", p.display());
    }
    if let Some(a) = &s.haproxy_stats_tcp {
        println!("haproxy stats: tcp://{a}");
    }
    println!("logs:     {}", s.logs.display());
    println!("as an external stack: {}", s.external_topology.display());
    let dir = s.control.parent().unwrap_or(Path::new("."));
    println!("stop it:  hab down --dir {}", dir.display());
}

/// The external topology for a stack `hab up` started: the same client settings, the
/// stack's endpoints, and `hab node` fault commands against `dir`.
pub fn external_topology(original: &Topology, state: &UpState, hab: &Path, dir: &Path) -> Topology {
    let node_cmd = |action: &str| {
        format!(
            "{} node --dir {} {action} {{node}}",
            crate::config::external::shell_quote(&hab.display().to_string()),
            crate::config::external::shell_quote(&dir.display().to_string())
        )
    };
    let health = Some(node_cmd("health"));
    let mut faults = Vec::new();
    let mut kinds: Vec<NodeKind> = vec![NodeKind::Broker, NodeKind::Backend];
    if !state.sentinels.is_empty() {
        kinds.push(NodeKind::Sentinel);
    }
    if state.haproxy_stats.is_some() {
        kinds.push(NodeKind::Proxy);
    }
    for nodes in kinds {
        for (kind, apply, revert) in [
            (FaultKind::Kill, "kill", "start"),
            (FaultKind::Stop, "stop", "start"),
            (FaultKind::Pause, "pause", "resume"),
            (
                FaultKind::Throttle,
                "throttle --cpu-percent {cpu_percent}",
                "unthrottle",
            ),
        ] {
            faults.push(FaultCommands {
                nodes,
                kind,
                apply: node_cmd(apply),
                revert: Some(node_cmd(revert)),
                health: health.clone(),
            });
        }
    }
    if !state.sentinels.is_empty() {
        faults.push(FaultCommands {
            nodes: NodeKind::Backend,
            kind: FaultKind::Failover,
            apply: node_cmd("failover"),
            revert: None,
            health: health.clone(),
        });
    }
    let b = &original.broker;
    let r = &original.backend;
    Topology {
        name: format!("{}-external", original.name),
        description: format!(
            "The stack `hab up` started from {} ({}), driven as an external stack.",
            state.topology.display(),
            original.name
        ),
        broker: BrokerConfig {
            queue: b.queue,
            durable: b.durable,
            persistent: b.persistent,
            confirms: b.confirms,
            heartbeat: b.heartbeat,
            ..BrokerConfig::default()
        },
        backend: BackendConfig {
            result_ttl: r.result_ttl,
            master_name: r.master_name.clone(),
            keepalive: r.keepalive,
            ..BackendConfig::default()
        },
        proxy: None,
        workers: original.workers.clone(),
        producer: original.producer.clone(),
        clients: original.clients,
        network: crate::config::NetworkKind::Loopback,
        external: Some(ExternalConfig {
            broker: Some(state.broker_url.clone()),
            broker_nodes: state.broker_nodes.clone(),
            backend: Some(state.backend_url.clone()),
            backend_nodes: state.backend_nodes.clone(),
            sentinels: state.sentinels.clone(),
            // Over TCP, as a HAProxy on another host would be watched.
            haproxy_stats: state
                .haproxy_stats_tcp
                .as_ref()
                .map(|a| format!("tcp://{a}"))
                .or_else(|| {
                    state
                        .haproxy_stats
                        .as_ref()
                        .map(|p| p.display().to_string())
                }),
            broker_node_names: state.broker_node_names.clone(),
            management: state.management.clone(),
            proxy_broker_backend: crate::config::proxy::BROKER_BACKEND.to_string(),
            proxy_redis_backend: crate::config::proxy::REDIS_BACKEND.to_string(),
            credentials: None,
            command_timeout: Duration::from_secs(60),
            health_timeout: Duration::from_secs(120),
            faults,
        }),
    }
}

/// `hab up --foreground`: bring the stack up, write the state files, serve the control
/// socket until `hab down`, SIGTERM or Ctrl-C, then tear everything down.
pub async fn supervise(
    topology_path: &Path,
    dir: &Path,
    cancel: CancellationToken,
    reporter: &dyn Reporter,
) -> Result<()> {
    let topology = crate::config::load_topology(topology_path)?;
    let dir = std::path::absolute(dir)?;
    std::fs::create_dir_all(&dir)?;
    let logs = dir.join("logs");
    let opts = StackOptions::from_topology(&topology);
    reporter.line(&format!("hab up: starting {} …", opts.describe()));
    let dirs = StackDirs { logs: logs.clone() };
    let stack = tokio::select! {
        s = Stack::start(&opts, &dirs) => s?,
        _ = cancel.cancelled() => bail!("interrupted while the stack was starting"),
    };
    // The queue a run declares would otherwise not exist yet; health needs nothing more.
    stack
        .wait_healthy(Duration::from_secs(60))
        .await
        .context("the stack did not become healthy")?;
    let socket_path = dir.join(CONTROL_SOCKET);
    let _ = std::fs::remove_file(&socket_path);
    let listener = tokio::net::UnixListener::bind(&socket_path)
        .with_context(|| format!("binding {}", socket_path.display()))?;
    let state = UpState {
        pid: std::process::id(),
        topology: topology_path.to_path_buf(),
        name: topology.name.clone(),
        ready_unix_ms: crate::clock::now_unix_us() / 1000,
        broker_url: without_userinfo(&stack.broker_url()),
        broker_nodes: stack
            .broker_node_urls()
            .iter()
            .map(|u| without_userinfo(u))
            .collect(),
        backend_url: without_userinfo(&stack.backend_url()),
        backend_nodes: stack
            .backend_node_urls()
            .iter()
            .map(|u| without_userinfo(u))
            .collect(),
        sentinels: stack.sentinel_addrs(),
        haproxy_stats: stack.proxy().map(|p| p.stats_socket().to_path_buf()),
        haproxy_stats_tcp: stack.proxy().map(|p| p.stats_tcp_addr()),
        management: stack.management_urls(),
        broker_node_names: stack.broker_node_names(),
        external_topology: dir.join(EXTERNAL_TOPOLOGY),
        control: socket_path.clone(),
        logs: logs.clone(),
    };
    let hab = std::env::current_exe().context("cannot find hab's own executable")?;
    let ext = external_topology(&topology, &state, &hab, &dir);
    let text = format!(
        "# Written by `hab up` for the stack in {}: run it as an external stack with\n#   hab run --topology {} --workload FILE --allow-faults\n# The fault commands are `hab node` calls against this stack's supervisor.\n{}",
        dir.display(),
        state.external_topology.display(),
        toml::to_string(&ext).context("writing the external topology")?
    );
    write_atomically(&state.external_topology, text.as_bytes())?;
    write_atomically(
        &dir.join(STATE_FILE),
        serde_json::to_string_pretty(&state)?.as_bytes(),
    )?;
    reporter.line(&format!(
        "hab up: ready; control socket {}",
        socket_path.display()
    ));

    let stack = tokio::sync::Mutex::new(stack);
    let down = CancellationToken::new();
    loop {
        let conn = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = down.cancelled() => break,
            c = listener.accept() => c,
        };
        let Ok((conn, _)) = conn else { continue };
        // One request at a time: node operations must not interleave.
        serve(conn, &stack, &down).await;
    }
    reporter.line("hab up: stopping the stack …");
    let _ = std::fs::remove_file(dir.join(STATE_FILE));
    let _ = std::fs::remove_file(&socket_path);
    stack.into_inner().shutdown().await;
    reporter.line("hab up: stack down");
    Ok(())
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// What `hab node` can ask the supervisor to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NodeAction {
    /// SIGKILL the node.
    Kill,
    /// Stop it gracefully.
    Stop,
    /// Start it again.
    Start,
    /// SIGSTOP it.
    Pause,
    /// SIGCONT it.
    Resume,
    /// Cut it off from its peers.
    Partition,
    /// Undo a partition.
    Heal,
    /// Ask Sentinel to fail the master over.
    Failover,
    /// Cap it at --cpu-percent % of one core (a cgroup).
    Throttle,
    /// Lift the cap.
    Unthrottle,
    /// Exit 0 when the whole stack is healthy (no role).
    Health,
}

impl NodeAction {
    /// Every action, in the order `hab node --help` lists them.
    pub const ALL: [NodeAction; 11] = [
        NodeAction::Kill,
        NodeAction::Stop,
        NodeAction::Start,
        NodeAction::Pause,
        NodeAction::Resume,
        NodeAction::Partition,
        NodeAction::Heal,
        NodeAction::Failover,
        NodeAction::Throttle,
        NodeAction::Unthrottle,
        NodeAction::Health,
    ];

    /// The action's word on the command line and on the control socket.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeAction::Kill => "kill",
            NodeAction::Stop => "stop",
            NodeAction::Start => "start",
            NodeAction::Pause => "pause",
            NodeAction::Resume => "resume",
            NodeAction::Partition => "partition",
            NodeAction::Heal => "heal",
            NodeAction::Failover => "failover",
            NodeAction::Throttle => "throttle",
            NodeAction::Unthrottle => "unthrottle",
            NodeAction::Health => "health",
        }
    }

    /// The action a word names, if any.
    pub fn parse(word: &str) -> Option<NodeAction> {
        Self::ALL.into_iter().find(|a| a.as_str() == word)
    }
}

async fn serve(
    conn: tokio::net::UnixStream,
    stack: &tokio::sync::Mutex<Stack>,
    down: &CancellationToken,
) {
    let (read, mut write) = conn.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read);
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    let answer = match handle(line.trim(), stack, down).await {
        Ok(detail) => format!("ok {detail}\n"),
        Err(e) => format!("error {}\n", e.replace('\n', " | ")),
    };
    let _ = write.write_all(answer.as_bytes()).await;
}

async fn handle(
    request: &str,
    stack: &tokio::sync::Mutex<Stack>,
    down: &CancellationToken,
) -> Result<String, String> {
    let mut parts = request.split_whitespace();
    let action = parts.next().unwrap_or_default();
    if action == "down" {
        down.cancel();
        return Ok("stopping".into());
    }
    let Some(verb) = NodeAction::parse(action) else {
        let all: Vec<&str> = NodeAction::ALL.iter().map(|a| a.as_str()).collect();
        return Err(format!(
            "unknown action {action:?}; use one of {}",
            all.join(", ")
        ));
    };
    let mut stack = stack.lock().await;
    if verb == NodeAction::Health {
        return stack.health().await.map(|()| "healthy".into());
    }
    let role: Role = parts
        .next()
        .ok_or_else(|| format!("{action} needs a role, e.g. {action} broker.node[0]"))?
        .parse()?;
    let node = stack.resolve_role(role).await.map_err(|e| e.to_string())?;
    let at = match verb {
        NodeAction::Kill => stack.kill_node(node).await,
        NodeAction::Stop => stack.stop_node(node).await,
        NodeAction::Start => stack.restart_node(node).await,
        NodeAction::Pause => stack.pause_node(node).await,
        NodeAction::Resume => stack.resume_node(node).await,
        NodeAction::Partition => stack.partition_node(node).await,
        NodeAction::Heal => stack.heal_node(node).await,
        NodeAction::Failover => stack.failover_node(node).await,
        NodeAction::Throttle => {
            let pct: f64 = parts
                .next()
                .and_then(|p| p.parse().ok())
                .filter(|p| *p > 0.0 && *p < 100.0)
                .ok_or_else(|| {
                    "throttle needs a share of a core above 0 and below 100, e.g. throttle \
                     broker.node[0] 2"
                        .to_string()
                })?;
            stack.throttle_node(node, pct).await
        }
        NodeAction::Unthrottle => stack.unthrottle_node(node).await,
        NodeAction::Health => unreachable!("answered above"),
    }
    .map_err(|e| e.to_string())?;
    Ok(format!("{action} {node} at_unix_us={at}"))
}

/// `hab node ACTION [ROLE] --dir DIR`: one request to the supervisor; prints its answer.
pub async fn node(
    dir: &Path,
    action: NodeAction,
    role: Option<&str>,
    cpu_percent: Option<f64>,
    reporter: &dyn Reporter,
) -> Result<i32> {
    let action = action.as_str();
    let request = match (role, cpu_percent) {
        (Some(r), Some(p)) => format!("{action} {r} {p}\n"),
        (Some(r), None) => format!("{action} {r}\n"),
        (None, _) => format!("{action}\n"),
    };
    let answer = request_supervisor(dir, &request).await?;
    match answer.strip_prefix("ok ") {
        Some(detail) => {
            println!("{detail}");
            Ok(0)
        }
        None => {
            reporter.line(&format!(
                "error: {}",
                answer.strip_prefix("error ").unwrap_or(&answer)
            ));
            Ok(1)
        }
    }
}

async fn request_supervisor(dir: &Path, request: &str) -> Result<String> {
    let socket = dir.join(CONTROL_SOCKET);
    let mut conn = tokio::net::UnixStream::connect(&socket)
        .await
        .with_context(|| {
            format!(
                "no stack is up in {} (cannot connect to {}); start one with hab up --dir {}",
                dir.display(),
                socket.display(),
                dir.display()
            )
        })?;
    conn.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    // A restart may take a while (a RabbitMQ node boots in seconds); bounded all the same.
    tokio::time::timeout(
        Duration::from_secs(180),
        BufReader::new(conn).read_line(&mut answer),
    )
    .await
    .context("the supervisor did not answer within 180 s")??;
    Ok(answer.trim_end().to_string())
}

/// `hab down --dir DIR`: ask the supervisor to stop the stack and wait until it exited.
pub async fn down(dir: &Path, reporter: &dyn Reporter) -> Result<i32> {
    let Some(state) = live_supervisor(dir) else {
        reporter.line(&format!("hab down: no stack is up in {}", dir.display()));
        let _ = std::fs::remove_file(dir.join(STATE_FILE));
        let _ = std::fs::remove_file(dir.join(CONTROL_SOCKET));
        return Ok(0);
    };
    let pid = nix::unistd::Pid::from_raw(state.pid as i32);
    if request_supervisor(dir, "down\n").await.is_err() {
        // The socket is gone but the process lives: SIGTERM does the same teardown.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    let started = Instant::now();
    while nix::sys::signal::kill(pid, None).is_ok() {
        if started.elapsed() > DOWN_TIMEOUT {
            bail!(
                "the supervisor (pid {}) did not exit within {} s; see {}",
                state.pid,
                DOWN_TIMEOUT.as_secs(),
                dir.join(UP_LOG).display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reporter.line(&format!(
        "hab down: {} stopped in {:.1} s",
        state.name,
        started.elapsed().as_secs_f64()
    ));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_external_topology_of_an_ha_stack_is_valid_and_complete() {
        let original = crate::config::parse_topology(
            &std::fs::read_to_string("topologies/ha.toml").unwrap(),
            Path::new("topologies/ha.toml"),
        )
        .unwrap();
        let state = UpState {
            pid: 1,
            topology: "topologies/ha.toml".into(),
            name: original.name.clone(),
            ready_unix_ms: 0,
            broker_url: "amqp://127.0.0.1:5600/%2f".into(),
            broker_nodes: vec![
                "amqp://127.0.0.1:5601/%2f".into(),
                "amqp://127.0.0.1:5602/%2f".into(),
            ],
            backend_url: "redis://127.0.0.1:6300/".into(),
            backend_nodes: vec![
                "redis://127.0.0.1:6301/".into(),
                "redis://127.0.0.1:6302/".into(),
            ],
            sentinels: vec!["127.0.0.1:26300".into()],
            haproxy_stats: Some("/tmp/x/stats.sock".into()),
            haproxy_stats_tcp: Some("127.0.0.1:9999".into()),
            management: vec!["http://127.0.0.1:15600".into()],
            broker_node_names: vec!["a@localhost".into(), "b@localhost".into()],
            external_topology: "/tmp/x/external.toml".into(),
            control: "/tmp/x/control.sock".into(),
            logs: "/tmp/x/logs".into(),
        };
        let ext = external_topology(
            &original,
            &state,
            Path::new("/opt/hab bin/hab"),
            Path::new("/tmp/x"),
        );
        let text = toml::to_string(&ext).unwrap();
        let back = crate::config::parse_topology(&text, Path::new("external.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(back.is_external());
        assert_eq!(back.broker.queue, original.broker.queue);
        let e = back.external.unwrap();
        let kill = e.commands_for(NodeKind::Broker, FaultKind::Kill).unwrap();
        assert_eq!(
            kill.apply,
            "'/opt/hab bin/hab' node --dir /tmp/x kill {node}"
        );
        assert_eq!(
            kill.revert.as_deref(),
            Some("'/opt/hab bin/hab' node --dir /tmp/x start {node}")
        );
        assert!(
            e.commands_for(NodeKind::Backend, FaultKind::Failover)
                .is_some()
        );
        assert!(e.commands_for(NodeKind::Proxy, FaultKind::Pause).is_some());
        let throttle = e
            .commands_for(NodeKind::Backend, FaultKind::Throttle)
            .unwrap();
        assert_eq!(
            throttle.apply,
            "'/opt/hab bin/hab' node --dir /tmp/x throttle --cpu-percent {cpu_percent} {node}"
        );
        assert_eq!(
            throttle.revert.as_deref(),
            Some("'/opt/hab bin/hab' node --dir /tmp/x unthrottle {node}")
        );
        assert_eq!(e.haproxy_stats.as_deref(), Some("tcp://127.0.0.1:9999"));
    }

    #[test]
    fn credentials_are_stripped_from_the_local_urls() {
        assert_eq!(
            without_userinfo("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
        assert_eq!(
            without_userinfo("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/"
        );
    }
}
