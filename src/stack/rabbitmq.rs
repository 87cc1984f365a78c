//! RabbitMQ 3.10 nodes run by hab as plain processes on loopback ports.
//!
//! A [`RabbitBroker`] is a private [`Epmd`] plus its [`RabbitNode`]s, which share an
//! [`ErlangEnv`] (epmd port, HOME with the cookie, CLI distribution ports). Each node is
//! `/usr/lib/rabbitmq/bin/rabbitmq-server` (never the `/usr/sbin` wrapper, which `su`s to
//! the rabbitmq user) in its own process group: the `sh` wrapper and its `beam.smp`.
//! Generated config and logs go to `<logs>/rabbitmq-<i>/`; Mnesia and other state to a
//! temporary directory removed at teardown. See `notes/servers.md` for the why of each
//! variable.
//!
//! Several nodes form a cluster: they boot in parallel, then nodes 1..n each run
//! `stop_app`, `join_cluster <node 0>`, `start_app` (explicit joins: ~9.3 s for 3 nodes,
//! peer discovery took 17.4 s). A killed or stopped node is restarted with the same name,
//! ports and Mnesia directory and rejoins by itself. Every `rabbitmqctl` call runs with
//! stdin at /dev/null through `tokio::process`, never blocking an async thread.
//!
//! **In network namespaces** (a topology with `network = "namespaces"` and more than one
//! broker node; [`RabbitOptions::netns`]) each node runs in a namespace of its own (see
//! [`super::netns`]) and listens for AMQP and Erlang distribution on that namespace's
//! address. Its name is an Erlang long name with that address as host part,
//! `hab-<pid>-<broker>-<i>@10.213.x.y` (`RABBITMQ_USE_LONGNAME=true`), so no host name
//! has to resolve anywhere (`/etc/hosts` is shared by every namespace); each namespace
//! has its own [`Epmd`] on the same port number, and every `rabbitmqctl` call for a
//! node runs inside that node's namespace (entered on spawn), where it reaches the node
//! even while a partition cuts it off from its peers. A partition then shows
//! `cluster_partition_handling = pause_minority` at work: the cut-off node notices it
//! is alone after `net_ticktime` ([`RabbitOptions::net_ticktime`], Erlang's default
//! 60 s), stops its listeners and waits; after the heal it restarts by itself. On
//! loopback, node names stay `…@localhost` (short names) with one shared epmd.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use lapin::{Connection, ConnectionProperties};
use nix::unistd::{Pid, getpgid};
use tempfile::TempDir;

use super::epmd::Epmd;
use super::netns::{self, NsPlace};
use super::process::{ManagedProcess, poll_until, wait_ready};
use super::server::{Server, ServerShell};
use super::{StackDirs, StackError, ports};

/// Debian package that provides RabbitMQ.
const PACKAGE: &str = "rabbitmq-server";

/// The server start script, called directly.
pub const RABBITMQ_SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";

/// The CLI, called directly, with the same [`ErlangEnv`] as the nodes.
pub const RABBITMQCTL: &str = "/usr/lib/rabbitmq/bin/rabbitmqctl";

/// The queue CLI (`quorum_status`), called directly, with the same [`ErlangEnv`].
pub const RABBITMQ_QUEUES: &str = "/usr/lib/rabbitmq/bin/rabbitmq-queues";

/// How long a node may take to shut down after SIGTERM before it is SIGKILLed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// How many ports `rabbitmqctl` may choose its own distribution port from.
/// (Each call takes one for its lifetime, so this bounds concurrent calls.)
const CTL_DIST_PORTS: u16 = 8;

/// How long one `rabbitmqctl` call may take (a join waits for Mnesia on the seed node).
const CTL_TIMEOUT: Duration = Duration::from_secs(60);

/// The name of the mirroring policy set for `queue = "mirrored"`.
pub const MIRROR_POLICY: &str = "ha-all";

/// The mirroring policy's definition: every node, synchronised automatically.
pub const MIRROR_POLICY_DEFINITION: &str = r#"{"ha-mode":"all","ha-sync-mode":"automatic"}"#;

/// The queue pattern the mirroring policy applies to (the Celery task queue).
pub const MIRROR_POLICY_PATTERN: &str = "^celery$";

/// Counts brokers started by this process, so node names never repeat within it.
static BROKER_SEQ: AtomicU32 = AtomicU32::new(0);

/// How a broker is started.
#[derive(Debug, Clone)]
pub struct RabbitOptions {
    /// Number of nodes; more than one form a cluster.
    pub nodes: u32,
    /// Set the [`MIRROR_POLICY`] (classic queue mirrored to every node) once clustered.
    pub mirror_policy: bool,
    /// How long a node may take from spawn to accepting an AMQP connection; also bounds
    /// the cluster joins.
    pub startup_timeout: Duration,
    /// The server start script.
    pub program: PathBuf,
    /// Network namespaces to run in: node `i` in `netns[i]` (then every node needs one),
    /// with a long name on that address and an epmd of its own; empty = every node on
    /// 127.0.0.1 with short names (`…@localhost`) and one shared epmd.
    pub netns: Vec<NsPlace>,
    /// Erlang `net_ticktime` on every node (whole seconds); `None` = Erlang's 60 s.
    pub net_ticktime: Option<Duration>,
    /// Enable the management plugin (HTTP API on a free port of the node's address).
    pub management: bool,
}

impl Default for RabbitOptions {
    fn default() -> Self {
        RabbitOptions {
            nodes: 1,
            mirror_policy: false,
            startup_timeout: Duration::from_secs(60),
            program: PathBuf::from(RABBITMQ_SERVER),
            netns: Vec::new(),
            net_ticktime: None,
            management: false,
        }
    }
}

/// The name of node `index` of broker `broker` of process `pid` listening on `host`: a
/// short name `hab-<pid>-<broker>-<index>@localhost` on loopback, else a long name with
/// the address as host part (`…@10.213.5.12`), which needs no name resolution.
pub fn node_name(pid: u32, broker: u32, index: u32, host: Ipv4Addr) -> String {
    if host.is_loopback() {
        format!("hab-{pid}-{broker}-{index}@localhost")
    } else {
        format!("hab-{pid}-{broker}-{index}@{host}")
    }
}

/// Environment shared by every node of one broker and every `rabbitmqctl` call for it.
#[derive(Debug, Clone)]
pub struct ErlangEnv {
    /// `HOME`, holding `.erlang.cookie` (mode 0400).
    pub home: PathBuf,
    /// The private epmd's port (`ERL_EPMD_PORT`).
    pub epmd_port: u16,
    /// First port `rabbitmqctl` may use for its own distribution listener.
    pub ctl_dist_port_min: u16,
    /// Last port `rabbitmqctl` may use for its own distribution listener.
    pub ctl_dist_port_max: u16,
    /// An empty `RABBITMQ_CONF_ENV_FILE`, so /etc/rabbitmq/rabbitmq-env.conf is not read.
    pub conf_env_file: PathBuf,
    /// Erlang long names (`RABBITMQ_USE_LONGNAME=true`): the nodes are named after their
    /// namespace addresses.
    pub longnames: bool,
    /// Node name → the network namespace it runs in; a CLI call for such a node runs
    /// inside that namespace. Empty on loopback.
    pub places: BTreeMap<String, NsPlace>,
}

impl ErlangEnv {
    /// The shared variables, in a stable order.
    pub fn vars(&self) -> Vec<(&'static str, OsString)> {
        let mut vars = vec![
            ("HOME", self.home.clone().into_os_string()),
            ("ERL_EPMD_PORT", self.epmd_port.to_string().into()),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
            (
                "RABBITMQ_CTL_DIST_PORT_MIN",
                self.ctl_dist_port_min.to_string().into(),
            ),
            (
                "RABBITMQ_CTL_DIST_PORT_MAX",
                self.ctl_dist_port_max.to_string().into(),
            ),
            (
                "RABBITMQ_CONF_ENV_FILE",
                self.conf_env_file.clone().into_os_string(),
            ),
        ];
        if self.longnames {
            vars.push(("RABBITMQ_USE_LONGNAME", "true".into()));
        }
        vars
    }

    /// Clears every inherited `RABBITMQ_*`/`ERL_*` variable from `cmd` (a stray
    /// `RABBITMQ_ALLOW_INPUT` kills a node with stdin at /dev/null) and sets the shared ones.
    pub fn apply(&self, cmd: &mut Command) {
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("RABBITMQ_") || k.starts_with("ERL_") {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(self.vars());
    }

    /// A `rabbitmqctl -n <node>` command with this environment, ready for arguments. Run it
    /// with stdin at /dev/null (it reads stdin).
    pub fn rabbitmqctl(&self, nodename: &str) -> Command {
        self.cli(RABBITMQCTL, nodename)
    }

    /// A `<program> -n <node>` command for one of RabbitMQ's CLIs ([`RABBITMQCTL`],
    /// [`RABBITMQ_QUEUES`]) with this environment.
    pub fn cli(&self, program: &str, nodename: &str) -> Command {
        let mut cmd = Command::new(program);
        self.apply(&mut cmd);
        cmd.args(["-n", nodename]);
        cmd
    }
}

/// Where one node's files go, and its ports.
#[derive(Debug, Clone)]
pub struct NodeLayout {
    /// Full node name, `hab-<pid>-<broker>-<i>@localhost` (see [`node_name`]).
    pub nodename: String,
    /// AMQP port on [`host`](Self::host).
    pub amqp_port: u16,
    /// Erlang distribution port on [`host`](Self::host).
    pub dist_port: u16,
    /// The network namespace the node runs in; `None` = the root namespace, 127.0.0.1.
    pub netns: Option<NsPlace>,
    /// Port of the management API on [`host`](Self::host), when the plugin is enabled.
    pub management_port: Option<u16>,
    /// Generated config and the node's logs (in the run's logs directory).
    pub config_dir: PathBuf,
    /// Mnesia, feature flags, pid file (temporary).
    pub state_dir: PathBuf,
}

impl NodeLayout {
    /// The address the node listens on: 127.0.0.1, or its namespace's address.
    pub fn host(&self) -> Ipv4Addr {
        self.netns.as_ref().map_or(Ipv4Addr::LOCALHOST, |p| p.addr)
    }

    /// `rabbitmq.conf`.
    pub fn config_file(&self) -> PathBuf {
        self.config_dir.join("rabbitmq.conf")
    }

    /// The node's own log file (`RABBITMQ_LOG_BASE/<nodename>.log`).
    pub fn node_log(&self) -> PathBuf {
        self.config_dir.join(format!("{}.log", self.nodename))
    }

    /// The wrapper's stdout/stderr.
    pub fn stdout_log(&self) -> PathBuf {
        self.config_dir.join("stdout.log")
    }

    /// File the node writes its `beam.smp` pid to.
    pub fn pid_file(&self) -> PathBuf {
        self.state_dir.join("beam.pid")
    }

    /// The node-specific variables, in a stable order (the shared ones come from
    /// [`ErlangEnv::vars`]). Never contains `RABBITMQ_ALLOW_INPUT`.
    pub fn vars(&self) -> Vec<(&'static str, OsString)> {
        let path = |p: PathBuf| p.into_os_string();
        let host = self.host();
        let [a, b, c, d] = host.octets();
        vec![
            ("RABBITMQ_NODENAME", self.nodename.clone().into()),
            ("RABBITMQ_NODE_IP_ADDRESS", host.to_string().into()),
            ("RABBITMQ_NODE_PORT", self.amqp_port.to_string().into()),
            ("RABBITMQ_DIST_PORT", self.dist_port.to_string().into()),
            ("RABBITMQ_MNESIA_BASE", path(self.state_dir.join("mnesia"))),
            (
                "RABBITMQ_MNESIA_DIR",
                path(self.state_dir.join("mnesia").join(&self.nodename)),
            ),
            ("RABBITMQ_LOG_BASE", path(self.config_dir.clone())),
            ("RABBITMQ_PID_FILE", path(self.pid_file())),
            ("RABBITMQ_CONFIG_FILE", path(self.config_file())),
            (
                "RABBITMQ_ADVANCED_CONFIG_FILE",
                path(self.config_dir.join("advanced.config")),
            ),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                path(self.config_dir.join("enabled_plugins")),
            ),
            (
                "RABBITMQ_FEATURE_FLAGS_FILE",
                path(self.state_dir.join("feature_flags")),
            ),
            ("RABBITMQ_SCHEDULER_BIND_TYPE", "u".into()),
            (
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                format!("-kernel inet_dist_use_interface {{{a},{b},{c},{d}}}").into(),
            ),
            (
                "ERL_CRASH_DUMP",
                path(self.config_dir.join("erl_crash.dump")),
            ),
        ]
    }
}

/// `rabbitmq.conf` for one node: AMQP on `host` only (127.0.0.1, or its namespace's
/// address), guest allowed from anywhere (`loopback_users = none`: HAProxy connects from
/// the bridge in namespaces), pause_minority, logs to its file only.
pub fn rabbitmq_conf(host: Ipv4Addr, amqp_port: u16) -> String {
    format!(
        "# generated by hab\n\
         listeners.tcp.default = {host}:{amqp_port}\n\
         loopback_users = none\n\
         cluster_partition_handling = pause_minority\n\
         log.console = false\n\
         log.file.level = info\n"
    )
}

/// `advanced.config` for one node: empty, or the kernel's `net_ticktime` in whole seconds.
pub fn advanced_config(net_ticktime: Option<Duration>) -> String {
    match net_ticktime {
        None => "[].\n".to_string(),
        Some(t) => format!(
            "[{{kernel, [{{net_ticktime, {}}}]}}].\n",
            t.as_secs().max(1)
        ),
    }
}

/// One RabbitMQ node: the `rabbitmq-server` wrapper and its `beam.smp`, in one group.
#[derive(Debug)]
pub struct RabbitNode {
    /// The wrapper process (group leader), the generated `rabbitmq.conf` and the Mnesia
    /// and other state (removed on drop, after the node is gone).
    shell: ServerShell,
    /// Its files and ports.
    layout: NodeLayout,
    /// The `beam.smp` pid from the pid file, checked to be in this node's group.
    beam_pid: Pid,
    /// How it was started (reused by [`RabbitNode::restart`]).
    opts: RabbitOptions,
}

impl RabbitNode {
    /// Writes the node's config, starts it and waits until it accepts an AMQP connection
    /// (polled every 100 ms within `opts.startup_timeout`).
    ///
    /// `index` numbers the node within its broker (`broker` numbers the broker within
    /// this process); both go into the node name.
    pub async fn start(
        broker: u32,
        index: u32,
        env: &ErlangEnv,
        dirs: &StackDirs,
        opts: &RabbitOptions,
    ) -> Result<RabbitNode, StackError> {
        let io_err = |what: String| move |source| StackError::Io { what, source };
        let amqp_port = ports::free_port().map_err(io_err("finding a free AMQP port".into()))?;
        let dist_port =
            ports::free_port().map_err(io_err("finding a free distribution port".into()))?;
        let state = tempfile::Builder::new()
            .prefix("hab-rabbitmq-")
            .tempdir()
            .map_err(io_err("creating a temporary directory for RabbitMQ".into()))?;
        let place = opts.netns.get(index as usize).cloned();
        let host = place.as_ref().map_or(Ipv4Addr::LOCALHOST, |p| p.addr);
        if place.is_some() {
            netns::register_host(amqp_port, host);
        }
        let management_port = match opts.management {
            false => None,
            true => {
                Some(ports::free_port().map_err(io_err("finding a free management port".into()))?)
            }
        };
        let layout = NodeLayout {
            nodename: node_name(std::process::id(), broker, index, host),
            amqp_port,
            dist_port,
            netns: place,
            management_port,
            config_dir: dirs.logs.join(format!("rabbitmq-{index}")),
            state_dir: state.path().to_path_buf(),
        };
        write_node_files(&layout, opts)?;
        let (process, beam_pid) = spawn_node(&layout, env, opts).await?;
        tracing::info!(
            node = %layout.nodename,
            amqp_port,
            beam_pid = beam_pid.as_raw(),
            "rabbitmq ready"
        );
        Ok(RabbitNode {
            shell: ServerShell::new(process, layout.config_file(), STOP_GRACE, Some(state)),
            layout,
            beam_pid,
            opts: opts.clone(),
        })
    }

    /// Starts the node again after a kill or stop, with the same name, ports and Mnesia
    /// directory (so it rejoins its cluster by itself), and waits until it accepts an
    /// AMQP connection.
    pub async fn restart(&mut self, env: &ErlangEnv) -> Result<(), StackError> {
        self.process().kill_now(); // reap whatever is left of the old group
        let _ = std::fs::remove_file(self.layout.pid_file());
        let (process, beam_pid) = spawn_node(&self.layout, env, &self.opts).await?;
        self.shell.replace(process);
        self.beam_pid = beam_pid;
        tracing::info!(
            node = %self.layout.nodename,
            beam_pid = beam_pid.as_raw(),
            "rabbitmq restarted"
        );
        Ok(())
    }

    /// Full node name, e.g. `hab-4242-0-0@localhost`.
    pub fn nodename(&self) -> &str {
        &self.layout.nodename
    }

    /// AMQP port on its [`NodeLayout::host`].
    pub fn amqp_port(&self) -> u16 {
        self.layout.amqp_port
    }

    /// `amqp://guest:guest@<host>:<port>/%2f`.
    pub fn amqp_url(&self) -> String {
        amqp_url(self.layout.amqp_port)
    }

    /// `http://<host>:<port>` of its management API, when the plugin is enabled.
    pub fn management_url(&self) -> Option<String> {
        self.layout
            .management_port
            .map(|p| format!("http://{}:{p}", self.layout.host()))
    }

    /// Pid of the `rabbitmq-server` `sh` wrapper (also the process-group id).
    pub fn wrapper_pid(&self) -> Pid {
        self.pid()
    }

    /// Pid of the node's `beam.smp` (the process a crash or pause fault targets), as
    /// written to its pid file and checked to belong to this node's process group.
    pub fn beam_pid(&self) -> Pid {
        self.beam_pid
    }

    /// Its files and ports.
    pub fn layout(&self) -> &NodeLayout {
        &self.layout
    }
}

impl Server for RabbitNode {
    fn shell(&self) -> &ServerShell {
        &self.shell
    }

    fn shell_mut(&mut self) -> &mut ServerShell {
        &mut self.shell
    }

    /// Its `beam.smp` ([`beam_pid`](RabbitNode::beam_pid)); a SIGTERM to the group
    /// (the wrapper forwards it) stops it cleanly.
    fn signal_pid(&self) -> Pid {
        self.beam_pid
    }
}

/// Spawns `rabbitmq-server` for `layout` and waits until it accepts an AMQP connection
/// (polled every 100 ms within `opts.startup_timeout`); returns the process and the
/// `beam.smp` pid.
async fn spawn_node(
    layout: &NodeLayout,
    env: &ErlangEnv,
    opts: &RabbitOptions,
) -> Result<(ManagedProcess, Pid), StackError> {
    let mut cmd = Command::new(&opts.program);
    env.apply(&mut cmd);
    cmd.envs(layout.vars()).current_dir(&layout.state_dir);
    if let Some(place) = &layout.netns {
        place.enter_on_spawn(&mut cmd)?;
    }
    let service = format!("rabbitmq {}", layout.nodename);
    let mut process = ManagedProcess::spawn(&service, cmd, PACKAGE, &layout.stdout_log())?;
    process.add_log_file(layout.node_log());
    let url = amqp_url(layout.amqp_port);
    wait_ready(
        &mut process,
        opts.startup_timeout,
        Duration::from_millis(100),
        || amqp_probe(&url),
    )
    .await?;
    let beam_pid = read_beam_pid(&layout.pid_file(), process.pid())?;
    Ok((process, beam_pid))
}

fn write_node_files(layout: &NodeLayout, opts: &RabbitOptions) -> Result<(), StackError> {
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|source| StackError::Io {
            what: format!("writing {}", path.display()),
            source,
        })
    };
    std::fs::create_dir_all(&layout.config_dir).map_err(|source| StackError::Io {
        what: format!("creating {}", layout.config_dir.display()),
        source,
    })?;
    let mut conf = rabbitmq_conf(layout.host(), layout.amqp_port);
    if let Some(port) = layout.management_port {
        conf.push_str(&format!(
            "management.tcp.ip = {}\nmanagement.tcp.port = {port}\n",
            layout.host()
        ));
    }
    write(layout.config_file(), &conf)?;
    write(
        layout.config_dir.join("advanced.config"),
        &advanced_config(opts.net_ticktime),
    )?;
    write(
        layout.config_dir.join("enabled_plugins"),
        match layout.management_port {
            Some(_) => "[rabbitmq_management].\n",
            None => "[].\n",
        },
    )?;
    Ok(())
}

/// `amqp://guest:guest@<host>:<port>/%2f` (the default vhost); the host is 127.0.0.1, or
/// the namespace address of a node placed in one ([`netns::host`]).
pub fn amqp_url(port: u16) -> String {
    format!("amqp://guest:guest@{}:{port}/%2f", netns::host(port))
}

/// How long one AMQP readiness probe may take: a handshake with a node that is still
/// booting can stall, and one stalled attempt must not use up the whole startup timeout.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// One AMQP connection attempt (bounded by [`PROBE_TIMEOUT`]), closed again at once.
async fn amqp_probe(url: &str) -> Result<(), String> {
    let attempt = async {
        let conn = Connection::connect(url, ConnectionProperties::default())
            .await
            .map_err(|e| e.to_string())?;
        // A failed close does not make the node less ready.
        let _ = conn.close(200, "hab readiness probe".into()).await;
        Ok(())
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "AMQP handshake did not finish within {} s",
                PROBE_TIMEOUT.as_secs()
            ))
        })
}

/// Reads the beam pid from `pid_file` and checks it belongs to process group `pgid`, so a
/// stale file or a recycled pid is never taken for the node.
fn read_beam_pid(pid_file: &Path, pgid: Pid) -> Result<Pid, StackError> {
    let text = std::fs::read_to_string(pid_file).map_err(|source| StackError::Io {
        what: format!("reading the RabbitMQ pid file {}", pid_file.display()),
        source,
    })?;
    let pid = text
        .trim()
        .parse::<i32>()
        .map(Pid::from_raw)
        .map_err(|e| StackError::Io {
            what: format!("pid file {} holds {:?}", pid_file.display(), text.trim()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
    match getpgid(Some(pid)) {
        Ok(group) if group == pgid => Ok(pid),
        other => Err(StackError::Io {
            what: format!(
                "pid {pid} from {} is not in the node's process group {pgid} ({other:?})",
                pid_file.display()
            ),
            source: std::io::Error::other("stale pid file"),
        }),
    }
}

/// A private epmd (one per node in network namespaces) and the RabbitMQ nodes
/// registered with it, clustered when there are several.
#[derive(Debug)]
pub struct RabbitBroker {
    /// The nodes. Declared before `epmds` so that on drop the nodes die first.
    nodes: Vec<RabbitNode>,
    /// The private epmd (loopback), or one per node in its namespace (node `i`'s at `i`),
    /// stopped after all nodes.
    epmds: Vec<Epmd>,
    /// Environment for the nodes and for `rabbitmqctl`.
    env: ErlangEnv,
    /// Bring-up phases and their durations in ms, in order.
    phases: Vec<(String, u64)>,
    /// Holds HOME with the cookie; removed last.
    _home: TempDir,
}

/// Where the replicas of one queue are, from `rabbitmqctl list_queues`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueInfo {
    /// The queue name.
    pub name: String,
    /// `quorum`, `classic`, `stream`, as RabbitMQ reports it.
    pub kind: String,
    /// Index of the node holding the leader (quorum) or master (classic), when known.
    pub leader: Option<usize>,
    /// Indices of the nodes holding a replica (quorum members; classic: master and
    /// mirrors).
    pub members: Vec<usize>,
    /// Indices of the members that are online (classic: master and synchronised mirrors).
    pub online: Vec<usize>,
}

impl RabbitBroker {
    /// Starts a private epmd (one per namespace when [`RabbitOptions::netns`] places the
    /// nodes), then the nodes in parallel; with several nodes, joins nodes
    /// 1..n to node 0 one after the other and waits until node 0 sees all of them
    /// running; sets the mirroring policy when asked.
    ///
    /// On failure every process started so far is killed before the error is returned.
    pub async fn start(dirs: &StackDirs, opts: &RabbitOptions) -> Result<RabbitBroker, StackError> {
        if opts.nodes == 0 {
            return Err(StackError::Unsupported(
                "broker.nodes must be at least 1".into(),
            ));
        }
        if !opts.netns.is_empty() && opts.netns.len() != opts.nodes as usize {
            return Err(StackError::Unsupported(format!(
                "{} network namespaces for {} RabbitMQ nodes; each node needs one",
                opts.netns.len(),
                opts.nodes
            )));
        }
        let started = Instant::now();
        let broker = BROKER_SEQ.fetch_add(1, Ordering::Relaxed);
        let home = tempfile::Builder::new()
            .prefix("hab-erlang-home-")
            .tempdir()
            .map_err(|source| StackError::Io {
                what: "creating a temporary HOME for Erlang".into(),
                source,
            })?;
        write_cookie(home.path())?;
        let conf_env_file = dirs.logs.join("rabbitmq-env.conf");
        std::fs::write(&conf_env_file, "").map_err(|source| StackError::Io {
            what: format!("writing {}", conf_env_file.display()),
            source,
        })?;
        let ctl_base = ports::free_port_range(CTL_DIST_PORTS).map_err(|source| StackError::Io {
            what: "finding free ports for rabbitmqctl".into(),
            source,
        })?;
        let epmds = if opts.netns.is_empty() {
            vec![Epmd::start(dirs, "epmd").await?]
        } else {
            // The same port in every namespace: a node looks a peer up at the peer's
            // address on ERL_EPMD_PORT.
            let port = ports::free_port().map_err(|source| StackError::Io {
                what: "finding a free port for epmd".into(),
                source,
            })?;
            futures_util::future::try_join_all(opts.netns.iter().enumerate().map(|(i, p)| {
                let name = format!("epmd-{i}");
                async move { Epmd::start_at(dirs, &name, port, Some(p)).await }
            }))
            .await?
        };
        let places: BTreeMap<String, NsPlace> = opts
            .netns
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    node_name(std::process::id(), broker, i as u32, p.addr),
                    p.clone(),
                )
            })
            .collect();
        let env = ErlangEnv {
            home: home.path().to_path_buf(),
            epmd_port: epmds[0].port(),
            ctl_dist_port_min: ctl_base,
            ctl_dist_port_max: ctl_base + CTL_DIST_PORTS - 1,
            conf_env_file,
            longnames: !places.is_empty(),
            places,
        };
        let nodes = futures_util::future::try_join_all(
            (0..opts.nodes).map(|i| RabbitNode::start(broker, i, &env, dirs, opts)),
        )
        .await?;
        let boot_ms = started.elapsed().as_millis() as u64;
        tracing::info!(ms = boot_ms, nodes = opts.nodes, "rabbitmq nodes booted");
        let mut b = RabbitBroker {
            nodes,
            epmds,
            env,
            phases: vec![("broker_nodes".into(), boot_ms)],
            _home: home,
        };
        if b.nodes.len() > 1 {
            let started = Instant::now();
            b.form_cluster(opts.startup_timeout).await?;
            let ms = started.elapsed().as_millis() as u64;
            tracing::info!(ms, "rabbitmq cluster formed");
            b.phases.push(("broker_cluster".into(), ms));
        }
        if opts.mirror_policy {
            let started = Instant::now();
            b.ctl(
                0,
                &[
                    "set_policy",
                    "--apply-to",
                    "queues",
                    MIRROR_POLICY,
                    MIRROR_POLICY_PATTERN,
                    MIRROR_POLICY_DEFINITION,
                ],
            )
            .await?;
            b.phases
                .push(("broker_policy".into(), started.elapsed().as_millis() as u64));
        }
        Ok(b)
    }

    /// Joins nodes 1..n to node 0 (`stop_app`, `join_cluster`, `start_app`), then waits
    /// until node 0 reports every node running.
    async fn form_cluster(&self, deadline: Duration) -> Result<(), StackError> {
        let seed = self.nodes[0].nodename().to_string();
        for i in 1..self.nodes.len() {
            self.ctl(i, &["stop_app"]).await?;
            self.ctl(i, &["join_cluster", &seed]).await?;
            self.ctl(i, &["start_app"]).await?;
        }
        let want = self.nodes.len();
        poll_until(deadline, Duration::from_millis(100), || async {
            match self.running_nodes_on(0).await {
                Ok(n) if n == want => Ok(()),
                Ok(n) => Err(format!("{n} of {want} nodes running")),
                Err(e) => Err(e.to_string()),
            }
        })
        .await
        .map_err(|(waited, last_error)| StackError::NotReady {
            service: "rabbitmq cluster".into(),
            waited,
            last_error,
            log_tail: self.log_tails(10),
        })
    }

    /// The last `n` lines of every node's logs.
    pub fn log_tails(&self, n: usize) -> String {
        self.nodes
            .iter()
            .map(|node| {
                format!(
                    "--- {} ---\n{}",
                    node.nodename(),
                    node.process_ref().log_tail(n)
                )
            })
            .collect()
    }

    /// Runs `rabbitmqctl -n <node index> <args>` (stdin /dev/null, bounded by a minute)
    /// and returns its stdout; a non-zero exit is an error carrying stderr.
    pub async fn ctl(&self, node: usize, args: &[&str]) -> Result<String, StackError> {
        run_ctl(&self.env, self.nodes[node].nodename(), args).await
    }

    /// The live Raft state of every member of the `celery` quorum queue
    /// (`rabbitmq-queues quorum_status`), asked of node `node`: `(node index, state)` with
    /// states such as `leader`, `follower`, `candidate`, `noproc`.
    ///
    /// Unlike `list_queues`, whose leader and members come from the metadata store, this
    /// asks the Raft members themselves: a member that came back without its Raft state
    /// (term 0, no leader ever elected) shows here and nowhere else.
    pub async fn quorum_status(
        &self,
        node: usize,
    ) -> Result<Vec<(Option<usize>, String)>, StackError> {
        let out = run_cli(
            RABBITMQ_QUEUES,
            &self.env,
            self.nodes[node].nodename(),
            &[
                "quorum_status",
                crate::protocol::CELERY_QUEUE,
                "--formatter",
                "json",
            ],
        )
        .await?;
        let members = parse_quorum_status(&out).map_err(|detail| StackError::Control {
            what: "parsing `rabbitmq-queues quorum_status`".into(),
            detail,
        })?;
        Ok(members
            .into_iter()
            .map(|(name, state)| (self.node_by_name(&name), state))
            .collect())
    }

    /// `length(rabbit_nodes:all_running())` as node `node` sees it.
    pub async fn running_nodes_on(&self, node: usize) -> Result<usize, StackError> {
        let out = self
            .ctl(node, &["eval", "length(rabbit_nodes:all_running())."])
            .await?;
        out.trim().parse().map_err(|_| StackError::Control {
            what: "counting running RabbitMQ nodes".into(),
            detail: format!("rabbitmqctl eval printed {out:?}"),
        })
    }

    /// Index of the first node whose process is alive (the one to ask about the cluster).
    pub fn first_alive(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.process_ref().is_alive())
    }

    /// Index of the node named `nodename`.
    pub fn node_by_name(&self, nodename: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.nodename() == nodename)
    }

    /// The `celery` queue's placement (see [`QueueInfo`]), asked of the first live node
    /// that answers; `None` while no such queue exists.
    pub async fn queue_info(&self) -> Result<Option<QueueInfo>, StackError> {
        self.queue_info_avoiding(None).await
    }

    /// [`queue_info`](Self::queue_info), asking node `avoid` last: the node a fault was
    /// applied to may be frozen (no answer until the CLI's timeout), partitioned (its own,
    /// stale view) or paused by `pause_minority` (no queues listed).
    pub async fn queue_info_avoiding(
        &self,
        avoid: Option<usize>,
    ) -> Result<Option<QueueInfo>, StackError> {
        let mut order: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].process_ref().is_alive() && Some(i) != avoid)
            .collect();
        order.extend(
            avoid.filter(|&i| i < self.nodes.len() && self.nodes[i].process_ref().is_alive()),
        );
        let mut last_error = StackError::Control {
            what: "listing queues".into(),
            detail: "no RabbitMQ node is running".into(),
        };
        for node in order {
            match self.queue_info_on(node).await {
                Ok(q) => return Ok(q),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The `celery` queue's placement as node `node` reports it.
    async fn queue_info_on(&self, node: usize) -> Result<Option<QueueInfo>, StackError> {
        let out = self
            .ctl(
                node,
                &[
                    "-q",
                    "list_queues",
                    "name",
                    "type",
                    "leader",
                    "members",
                    "online",
                    // No `pid` here: for a quorum queue without a leader it blocks.
                    "--formatter",
                    "json",
                ],
            )
            .await?;
        let parse_err = |detail| StackError::Control {
            what: "parsing `rabbitmqctl list_queues`".into(),
            detail,
        };
        let queues = parse_list_queues(&out).map_err(parse_err)?;
        let Some(mut q) = queues
            .into_iter()
            .find(|q| q.name == crate::protocol::CELERY_QUEUE)
        else {
            return Ok(None);
        };
        if q.members.is_empty() {
            // A classic queue: its placement is in its pids, which the JSON formatter
            // prints as `#PID<1.2.3>`, without the node name; the table formatter keeps it.
            let table = self
                .ctl(
                    node,
                    &[
                        "-q",
                        "list_queues",
                        "name",
                        "pid",
                        "slave_pids",
                        "synchronised_slave_pids",
                    ],
                )
                .await?;
            let pids = parse_classic_pids(&table).map_err(parse_err)?;
            if let Some(row) = pids.into_iter().find(|r| r.name == q.name) {
                q.pid = row.pid;
                q.slave_pids = row.slave_pids;
                q.synchronised_slave_pids = row.synchronised_slave_pids;
            }
        }
        Ok(Some(q.resolve(|name| self.node_by_name(name))))
    }

    /// The `celery` queue's replicas: `(members, online)`; `None` while no such queue
    /// exists.
    pub async fn queue_members_online(&self) -> Result<Option<(usize, usize)>, StackError> {
        Ok(self
            .queue_info()
            .await?
            .map(|q| (q.members.len(), q.online.len())))
    }

    /// Index of the node holding the `celery` queue's leader (quorum) or master
    /// (classic); `None` while there is no such queue or no leader.
    pub async fn queue_leader(&self) -> Result<Option<usize>, StackError> {
        Ok(self.queue_info().await?.and_then(|q| q.leader))
    }

    /// The `celery` queue's leader as one node knows it locally, asking the live nodes in
    /// order with node `avoid` last, the first answer wins; `None` while there is no such
    /// queue. Unlike [`queue_leader`](Self::queue_leader) (`list_queues`, which gathers
    /// rows from every node and waits for a cut-off one until the CLI gives up), this
    /// reads only the asked node's own state ([`LOCAL_LEADER_EVAL`]): Ra's leader board
    /// for a quorum queue (updated as soon as a majority elected a leader), the master's
    /// node for a classic queue. For the failover observer.
    pub async fn queue_leader_local(
        &self,
        avoid: Option<usize>,
    ) -> Result<Option<usize>, StackError> {
        let mut order: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].process_ref().is_alive() && Some(i) != avoid)
            .collect();
        order.extend(
            avoid.filter(|&i| i < self.nodes.len() && self.nodes[i].process_ref().is_alive()),
        );
        let mut last_error = StackError::Control {
            what: "asking for the queue leader".into(),
            detail: "no RabbitMQ node is running".into(),
        };
        for node in order {
            match self.ctl(node, &["eval", LOCAL_LEADER_EVAL]).await {
                Ok(out) => {
                    return Ok(parse_node_atom(&out).and_then(|n| self.node_by_name(&n)));
                }
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Full health, or why not: every node process alive, the first live node sees all
    /// of them running, and when the `celery` queue exists every replica is online (and
    /// a quorum queue has a leader).
    pub async fn health(&self) -> Result<(), String> {
        if let Some(dead) = self.nodes.iter().find(|n| !n.process_ref().is_alive()) {
            return Err(format!("{} is not running", dead.nodename()));
        }
        let want = self.nodes.len();
        let running = self.running_nodes_on(0).await.map_err(|e| e.to_string())?;
        if running != want {
            return Err(format!("{running} of {want} RabbitMQ nodes running"));
        }
        // A single node has no queue replicas to wait for (and `list_queues` right after a
        // restart with a non-durable queue was seen to hang for a minute).
        if want == 1 {
            return Ok(());
        }
        if let Some(q) = self.queue_info().await.map_err(|e| e.to_string())? {
            if q.online.len() < q.members.len() || q.members.is_empty() {
                return Err(format!(
                    "queue {}: {} of {} replicas online",
                    q.name,
                    q.online.len(),
                    q.members.len()
                ));
            }
            if q.leader.is_none() {
                return Err(format!("queue {} has no leader", q.name));
            }
            if q.kind == "quorum" {
                let status = self.quorum_status(0).await.map_err(|e| e.to_string())?;
                quorum_healthy(&status).map_err(|why| format!("quorum queue {}: {why}", q.name))?;
            }
        }
        Ok(())
    }

    /// Bring-up phases (`broker_nodes`, `broker_cluster`, `broker_policy`) in ms.
    pub fn phases(&self) -> &[(String, u64)] {
        &self.phases
    }

    /// Restarts node `index` after a kill or stop (same name, ports, Mnesia directory);
    /// it rejoins the cluster by itself. Returns once it accepts AMQP connections.
    pub async fn restart_node(&mut self, index: usize) -> Result<(), StackError> {
        let env = self.env.clone();
        self.nodes[index].restart(&env).await
    }

    /// The nodes, first one first.
    pub fn nodes(&self) -> &[RabbitNode] {
        &self.nodes
    }

    /// The nodes, mutable (for faults and restarts).
    pub fn nodes_mut(&mut self) -> &mut [RabbitNode] {
        &mut self.nodes
    }

    /// The private epmd (node 0's in network namespaces).
    pub fn epmd(&self) -> &Epmd {
        &self.epmds[0]
    }

    /// Every epmd: one on loopback, or one per node in its namespace (node `i`'s at `i`).
    pub fn epmds(&self) -> &[Epmd] {
        &self.epmds
    }

    /// The environment for `rabbitmqctl` calls against these nodes.
    pub fn env(&self) -> &ErlangEnv {
        &self.env
    }

    /// The first node's AMQP URL.
    pub fn amqp_url(&self) -> String {
        self.nodes[0].amqp_url()
    }

    /// Stops every node (in parallel), then the epmds.
    pub async fn stop(&mut self) {
        futures_util::future::join_all(self.nodes.iter_mut().map(RabbitNode::stop)).await;
        futures_util::future::join_all(self.epmds.iter_mut().map(Epmd::stop)).await;
    }
}

/// The Erlang expression [`RabbitBroker::queue_leader_local`] evaluates on a node: the
/// node of the `celery` queue's leader as that node knows it (quorum: Ra's leader board,
/// else the metadata's leader; classic: the master process's node), or `none`.
pub const LOCAL_LEADER_EVAL: &str = "case rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, <<\"celery\">>)) of \
     {ok, Q} -> case amqqueue:get_pid(Q) of \
       {RaName, N} -> case ra_leaderboard:lookup_leader(RaName) of {_, L} -> L; _ -> N end; \
       P when is_pid(P) -> node(P); \
       _ -> none end; \
     _ -> none end.";

/// A node name printed by `rabbitmqctl eval` (`'hab-1-0-2@10.213.5.12'`, quoted or
/// not); `None` for `none`, `undefined` or anything without an `@`.
pub fn parse_node_atom(out: &str) -> Option<String> {
    let s = out.trim().trim_matches('\'');
    s.contains('@').then(|| s.to_string())
}

/// Why the Raft states of a quorum queue's members (from
/// [`RabbitBroker::quorum_status`]) are not healthy: exactly one leader, every other
/// member a follower.
pub fn quorum_healthy(members: &[(Option<usize>, String)]) -> Result<(), String> {
    let describe = || {
        members
            .iter()
            .map(|(i, s)| match i {
                Some(i) => format!("node {i} {s}"),
                None => format!("? {s}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let leaders = members.iter().filter(|(_, s)| s == "leader").count();
    if members.is_empty()
        || leaders != 1
        || members
            .iter()
            .any(|(_, s)| s != "leader" && s != "follower")
    {
        return Err(format!("Raft states: {}", describe()));
    }
    Ok(())
}

/// `(node name, Raft state)` of each member from `rabbitmq-queues quorum_status <queue>
/// --formatter json`.
pub fn parse_quorum_status(out: &str) -> Result<Vec<(String, String)>, String> {
    let start = out
        .find('[')
        .ok_or_else(|| format!("no JSON array in {out:?}"))?;
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(out[start..].trim()).map_err(|e| format!("{e} in {out:?}"))?;
    Ok(rows
        .iter()
        .map(|r| {
            let field = |k: &str| {
                r.get(k)
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .unwrap_or_default()
            };
            (field("Node Name"), field("Raft State"))
        })
        .collect())
}

/// Runs `rabbitmqctl -n <nodename> <args>` with `env` (stdin /dev/null, killed after
/// [`CTL_TIMEOUT`]) and returns its stdout; a non-zero exit is an error with stderr.
pub async fn run_ctl(env: &ErlangEnv, nodename: &str, args: &[&str]) -> Result<String, StackError> {
    run_cli(RABBITMQCTL, env, nodename, args).await
}

/// Runs one of RabbitMQ's CLIs as `<program> -n <nodename> <args>`; see [`run_ctl`].
pub async fn run_cli(
    program: &str,
    env: &ErlangEnv,
    nodename: &str,
    args: &[&str],
) -> Result<String, StackError> {
    let mut cmd = env.cli(program, nodename);
    if let Some(place) = env.places.get(nodename) {
        // Inside the node's namespace: its epmd and the node itself are reachable there
        // (from the root namespace there is no epmd, and the CLI would start one); named
        // after that namespace's address, so the other nodes can answer it too.
        place.enter_as_host_on_spawn(&mut cmd)?;
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let name = Path::new(program)
        .file_name()
        .map_or(program.into(), |n| n.to_string_lossy());
    let what = || format!("{name} -n {nodename} {}", args.join(" "));
    let output = match tokio::time::timeout(CTL_TIMEOUT, cmd.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(source)) => {
            return Err(StackError::SpawnFailed {
                program: program.into(),
                source,
            });
        }
        Err(_) => {
            return Err(StackError::Control {
                what: what(),
                detail: format!("no answer within {} s", CTL_TIMEOUT.as_secs()),
            });
        }
    };
    // The CLI's Erlang helpers (erl_child_setup) are orphans of hab now.
    super::process::reap_orphans();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(StackError::Control {
            what: what(),
            detail: format!("{} {}{}", output.status, stderr.trim(), stdout.trim()),
        })
    }
}

/// One queue of `list_queues … --formatter json`, node names not yet mapped to indices.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ListedQueue {
    /// Queue name.
    pub name: String,
    /// Queue type.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Leader node name (quorum queues; classic queues report their master's node).
    #[serde(default, deserialize_with = "lenient_string")]
    pub leader: String,
    /// Member node names (quorum queues).
    #[serde(default, deserialize_with = "lenient_list")]
    pub members: Vec<String>,
    /// Online member node names (quorum queues).
    #[serde(default, deserialize_with = "lenient_list")]
    pub online: Vec<String>,
    /// The classic queue's master process, e.g. `<hab-1-0-0@localhost.1652.0>`.
    #[serde(default, deserialize_with = "lenient_string")]
    pub pid: String,
    /// The classic queue's mirror processes.
    #[serde(default, deserialize_with = "lenient_list")]
    pub slave_pids: Vec<String>,
    /// The classic queue's synchronised mirror processes.
    #[serde(default, deserialize_with = "lenient_list")]
    pub synchronised_slave_pids: Vec<String>,
}

/// A string, or `""` for anything else (RabbitMQ prints `""` or `[]` for "none").
fn lenient_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// A list of strings, or empty for anything else (`""` when the item does not apply).
fn lenient_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = <serde_json::Value as serde::Deserialize>::deserialize(d)?;
    Ok(v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Parses the table (tab-separated, header first) of `rabbitmqctl -q list_queues name pid
/// slave_pids synchronised_slave_pids` into queues with only those fields set; pid lists
/// print as `[<node.1.2.3>, <node.4.5.6>]`.
pub fn parse_classic_pids(table: &str) -> Result<Vec<ListedQueue>, String> {
    let mut lines = table.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| format!("no header in {table:?}"))?
        .split('\t')
        .map(str::trim)
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .ok_or_else(|| format!("no `{name}` column in {table:?}"))
    };
    let (name, pid) = (col("name")?, col("pid")?);
    let (slaves, synced) = (col("slave_pids")?, col("synchronised_slave_pids")?);
    let pids = |field: &str| -> Vec<String> {
        field
            .split('<')
            .skip(1)
            .filter_map(|p| p.split_once('>'))
            .map(|(inner, _)| format!("<{inner}>"))
            .collect()
    };
    Ok(lines
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("").trim();
            ListedQueue {
                name: get(name).to_string(),
                kind: String::new(),
                leader: String::new(),
                members: Vec::new(),
                online: Vec::new(),
                pid: get(pid).to_string(),
                slave_pids: pids(get(slaves)),
                synchronised_slave_pids: pids(get(synced)),
            }
        })
        .collect())
}

/// `hab-1-0-0@localhost` from an Erlang pid printed as
/// `<hab-1-0-0@localhost.1795613547.1652.0>` (node, then three numbers), also when the
/// host part is an address (`<hab-1-0-0@10.213.5.10.1795613547.1652.0>`); older prints
/// with fewer numbers after a host name (`<n@localhost.1652.0>`) end at the host.
fn node_of_pid(pid: &str) -> Option<&str> {
    let inner = pid.strip_prefix('<')?.strip_suffix('>')?;
    let at = inner.find('@')?;
    let fields: Vec<&str> = inner[at + 1..].split('.').collect();
    let numeric = |f: &&str| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit());
    if fields.len() > 3 && fields[fields.len() - 3..].iter().all(numeric) {
        let tail: usize = fields[fields.len() - 3..].iter().map(|f| f.len() + 1).sum();
        return Some(&inner[..inner.len() - tail]);
    }
    let dot = inner[at..].find('.').map(|d| at + d)?;
    Some(&inner[..dot])
}

impl ListedQueue {
    /// Maps node names to indices with `index_of`: quorum queues from
    /// leader/members/online; classic queues from their master and mirror pids (members =
    /// master + mirrors, online = master + synchronised mirrors).
    pub fn resolve(&self, index_of: impl Fn(&str) -> Option<usize>) -> QueueInfo {
        let indices = |names: &[String]| -> Vec<usize> {
            let mut v: Vec<usize> = names.iter().filter_map(|n| index_of(n)).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        if !self.members.is_empty() {
            return QueueInfo {
                name: self.name.clone(),
                kind: self.kind.clone(),
                leader: index_of(&self.leader),
                members: indices(&self.members),
                online: indices(&self.online),
            };
        }
        let master = node_of_pid(&self.pid).map(str::to_string);
        let nodes_of = |pids: &[String]| -> Vec<String> {
            master
                .iter()
                .cloned()
                .chain(
                    pids.iter()
                        .filter_map(|p| node_of_pid(p).map(str::to_string)),
                )
                .collect()
        };
        QueueInfo {
            name: self.name.clone(),
            kind: self.kind.clone(),
            leader: master
                .as_deref()
                .and_then(&index_of)
                .or_else(|| index_of(&self.leader)),
            members: indices(&nodes_of(&self.slave_pids)),
            online: indices(&nodes_of(&self.synchronised_slave_pids)),
        }
    }
}

/// Parses `rabbitmqctl -q list_queues … --formatter json` (a JSON array; anything printed
/// before the `[` is skipped).
pub fn parse_list_queues(out: &str) -> Result<Vec<ListedQueue>, String> {
    let start = out
        .find('[')
        .ok_or_else(|| format!("no JSON array in {out:?}"))?;
    serde_json::from_str(out[start..].trim()).map_err(|e| format!("{e} in {out:?}"))
}

fn write_cookie(home: &Path) -> Result<(), StackError> {
    let path = home.join(".erlang.cookie");
    let cookie = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&path)
        .and_then(|mut f| f.write_all(cookie.as_bytes()))
        .map_err(|source| StackError::Io {
            what: format!("writing {}", path.display()),
            source,
        })
}

/// RabbitMQ and Erlang versions from a node's log line
/// `Starting RabbitMQ 3.10.8 on Erlang 25.2.3 [jit]`: `(rabbitmq, erlang)`.
pub fn versions_from_log(log: &str) -> (Option<String>, Option<String>) {
    let word_after = |marker: &str| {
        log.lines().find_map(|line| {
            let rest = &line[line.find(marker)? + marker.len()..];
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            (!word.is_empty() && word.starts_with(|c: char| c.is_ascii_digit())).then_some(word)
        })
    };
    (word_after("RabbitMQ "), word_after(" on Erlang "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> NodeLayout {
        NodeLayout {
            nodename: "hab-1-0-0@localhost".into(),
            amqp_port: 40001,
            dist_port: 40002,
            netns: None,
            management_port: None,
            config_dir: PathBuf::from("/run/logs/rabbitmq-0"),
            state_dir: PathBuf::from("/tmp/state"),
        }
    }

    #[test]
    fn config_listens_on_loopback_only() {
        let conf = rabbitmq_conf(Ipv4Addr::LOCALHOST, 40001);
        for line in [
            "listeners.tcp.default = 127.0.0.1:40001",
            "loopback_users = none",
            "cluster_partition_handling = pause_minority",
            "log.console = false",
            "log.file.level = info",
        ] {
            assert!(
                conf.lines().any(|l| l == line),
                "missing {line:?} in\n{conf}"
            );
        }
    }

    #[test]
    fn node_env_is_complete_and_never_allows_input() {
        let vars = layout().vars();
        let get = |k: &str| {
            vars.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("RABBITMQ_NODENAME").unwrap(), "hab-1-0-0@localhost");
        assert_eq!(get("RABBITMQ_NODE_IP_ADDRESS").unwrap(), "127.0.0.1");
        assert_eq!(get("RABBITMQ_NODE_PORT").unwrap(), "40001");
        assert_eq!(get("RABBITMQ_DIST_PORT").unwrap(), "40002");
        assert_eq!(get("RABBITMQ_SCHEDULER_BIND_TYPE").unwrap(), "u");
        assert_eq!(
            get("RABBITMQ_MNESIA_DIR").unwrap(),
            "/tmp/state/mnesia/hab-1-0-0@localhost"
        );
        assert_eq!(get("RABBITMQ_LOG_BASE").unwrap(), "/run/logs/rabbitmq-0");
        assert!(
            get("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS")
                .unwrap()
                .contains("{127,0,0,1}")
        );
        for key in [
            "RABBITMQ_MNESIA_BASE",
            "RABBITMQ_PID_FILE",
            "RABBITMQ_CONFIG_FILE",
            "RABBITMQ_ADVANCED_CONFIG_FILE",
            "RABBITMQ_ENABLED_PLUGINS_FILE",
            "RABBITMQ_FEATURE_FLAGS_FILE",
        ] {
            assert!(get(key).is_some(), "{key} missing");
        }
        assert!(get("RABBITMQ_ALLOW_INPUT").is_none());
        assert_eq!(
            layout().node_log(),
            Path::new("/run/logs/rabbitmq-0/hab-1-0-0@localhost.log")
        );
    }

    #[test]
    fn shared_env_replaces_inherited_erlang_variables() {
        let env = ErlangEnv {
            home: PathBuf::from("/tmp/home"),
            epmd_port: 41000,
            ctl_dist_port_min: 41001,
            ctl_dist_port_max: 41004,
            conf_env_file: PathBuf::from("/run/logs/rabbitmq-env.conf"),
            longnames: false,
            places: BTreeMap::new(),
        };
        let cmd = env.rabbitmqctl("hab-1-0-0@localhost");
        let envs: Vec<(String, Option<String>)> = cmd
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        let set = |k: &str| {
            envs.iter()
                .find(|(key, _)| key == k)
                .and_then(|(_, v)| v.clone())
        };
        assert_eq!(set("ERL_EPMD_PORT").as_deref(), Some("41000"));
        assert_eq!(set("ERL_EPMD_ADDRESS").as_deref(), Some("127.0.0.1"));
        assert_eq!(set("HOME").as_deref(), Some("/tmp/home"));
        assert_eq!(set("RABBITMQ_CTL_DIST_PORT_MAX").as_deref(), Some("41004"));
        assert_eq!(
            set("RABBITMQ_USE_LONGNAME"),
            None,
            "short names on loopback"
        );
        let long = ErlangEnv {
            longnames: true,
            ..env.clone()
        };
        assert!(
            long.vars()
                .iter()
                .any(|(k, v)| *k == "RABBITMQ_USE_LONGNAME" && v == "true")
        );
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["-n", "hab-1-0-0@localhost"]);
    }

    /// `list_queues … --formatter json` on 3.10.8 for a quorum and a mirrored classic
    /// queue (captured).
    const LIST_QUEUES_JSON: &str = "[\n\
{\"name\":\"celery\",\"type\":\"quorum\",\"leader\":\"n-1@localhost\",\"members\":[\"n-0@localhost\",\"n-1@localhost\",\"n-2@localhost\"],\"online\":[\"n-1@localhost\",\"n-2@localhost\"],\"pid\":\"#PID<10987.1142.0>\",\"slave_pids\":\"\",\"synchronised_slave_pids\":\"\"},\n\
{\"name\":\"mirrored\",\"type\":\"classic\",\"leader\":\"\",\"members\":\"\",\"online\":\"\",\"pid\":\"#PID<10987.1142.0>\",\"slave_pids\":[\"#PID<12767.1381.0>\",\"#PID<12768.1550.0>\"],\"synchronised_slave_pids\":[\"#PID<12767.1381.0>\"]}\n\
]\n";

    /// The table formatter's view of the mirrored queue (captured, node names shortened).
    const LIST_QUEUES_TABLE: &str = "name\tpid\tslave_pids\tsynchronised_slave_pids\n\
mirrored\t<n-0@localhost.1795613547.1142.0>\t[<n-2@localhost.1795613547.1381.0>, <n-1@localhost.1795613547.1550.0>]\t[<n-2@localhost.1795613547.1381.0>]\n\
plain\t<n-1@localhost.1795613547.99.0>\t\t\n";

    fn index_of(name: &str) -> Option<usize> {
        ["n-0@localhost", "n-1@localhost", "n-2@localhost"]
            .iter()
            .position(|n| *n == name)
    }

    #[test]
    fn quorum_queue_placement_comes_from_json() {
        let qs =
            parse_list_queues(&format!("Timeout: 60.0 seconds ...\n{LIST_QUEUES_JSON}")).unwrap();
        assert_eq!(qs.len(), 2);
        let q = qs[0].resolve(index_of);
        assert_eq!(
            q,
            QueueInfo {
                name: "celery".into(),
                kind: "quorum".into(),
                leader: Some(1),
                members: vec![0, 1, 2],
                online: vec![1, 2],
            }
        );
        // The JSON pids of a classic queue carry no node name.
        assert_eq!(node_of_pid(&qs[1].pid), None);
        assert!(parse_list_queues("no json").is_err());
        assert_eq!(parse_list_queues("[]\n").unwrap(), vec![]);
    }

    #[test]
    fn classic_queue_placement_comes_from_the_table() {
        let rows = parse_classic_pids(LIST_QUEUES_TABLE).unwrap();
        assert_eq!(rows.len(), 2);
        let q = rows[0].resolve(index_of);
        assert_eq!(q.leader, Some(0));
        assert_eq!(q.members, [0, 1, 2]);
        assert_eq!(q.online, [0, 2]); // n-1 not synchronised yet
        let plain = rows[1].resolve(index_of);
        assert_eq!(
            (plain.leader, plain.members, plain.online),
            (Some(1), vec![1], vec![1])
        );
        assert_eq!(
            node_of_pid("<n-0@localhost.1795613547.1142.0>"),
            Some("n-0@localhost")
        );
        assert_eq!(node_of_pid("<n-0@localhost.1142.0>"), Some("n-0@localhost"));
        assert_eq!(
            node_of_pid("<hab-1-0-2@10.213.5.12.1795613547.1142.0>"),
            Some("hab-1-0-2@10.213.5.12")
        );
        assert_eq!(node_of_pid("<no-at.1.2.3>"), None);
        assert!(parse_classic_pids("").is_err());
    }

    #[test]
    fn quorum_status_needs_one_leader_and_followers() {
        // Captured from 3.10.8: a healthy single member, then the same member after a
        // SIGKILL and restart (it lost its Raft state and never elects itself).
        let healthy = "[\n{\"Node Name\":\"n-0@localhost\",\"Raft State\":\"leader\",\"Log Index\":2,\"Commit Index\":2,\"Snapshot Index\":\"undefined\",\"Term\":1,\"Machine Version\":2}\n]\n";
        let stuck = "[\n{\"Node Name\":\"n-0@localhost\",\"Raft State\":\"follower\",\"Log Index\":0,\"Commit Index\":0,\"Snapshot Index\":\"undefined\",\"Term\":0,\"Machine Version\":2}\n]\n";
        let parsed = parse_quorum_status(healthy).unwrap();
        assert_eq!(
            parsed,
            [("n-0@localhost".to_string(), "leader".to_string())]
        );
        let with_index = |out: &str| -> Vec<(Option<usize>, String)> {
            parse_quorum_status(out)
                .unwrap()
                .into_iter()
                .map(|(n, s)| (index_of(&n), s))
                .collect()
        };
        assert_eq!(quorum_healthy(&with_index(healthy)), Ok(()));
        assert_eq!(
            quorum_healthy(&with_index(stuck)),
            Err("Raft states: node 0 follower".into())
        );
        let three = |a: &str, b: &str, c: &str| {
            vec![
                (Some(0), a.to_string()),
                (Some(1), b.to_string()),
                (Some(2), c.to_string()),
            ]
        };
        assert!(quorum_healthy(&three("follower", "leader", "follower")).is_ok());
        assert!(quorum_healthy(&three("noproc", "leader", "follower")).is_err());
        assert!(quorum_healthy(&three("leader", "leader", "follower")).is_err());
        assert!(quorum_healthy(&[]).is_err());
        assert!(parse_quorum_status("Error: not found").is_err());
    }

    #[test]
    fn node_names_are_short_on_loopback_and_long_on_an_address() {
        assert_eq!(
            node_name(42, 0, 1, Ipv4Addr::LOCALHOST),
            "hab-42-0-1@localhost"
        );
        assert_eq!(
            node_name(42, 3, 2, Ipv4Addr::new(10, 213, 5, 12)),
            "hab-42-3-2@10.213.5.12"
        );
        assert_eq!(
            parse_node_atom("'hab-42-3-2@10.213.5.12'\n"),
            Some("hab-42-3-2@10.213.5.12".into())
        );
        assert_eq!(
            parse_node_atom("hab@localhost"),
            Some("hab@localhost".into())
        );
        assert_eq!(parse_node_atom("none\n"), None);
        assert_eq!(parse_node_atom(""), None);
    }

    #[test]
    fn a_node_in_a_namespace_listens_on_its_address_with_a_long_name() {
        let mut l = layout();
        l.netns = Some(NsPlace {
            netns: "hab1-0-0".into(),
            addr: Ipv4Addr::new(10, 213, 5, 10),
        });
        l.nodename = node_name(1, 0, 0, l.host());
        let vars = l.vars();
        let get = |k: &str| {
            vars.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(get("RABBITMQ_NODENAME").unwrap(), "hab-1-0-0@10.213.5.10");
        assert_eq!(get("RABBITMQ_NODE_IP_ADDRESS").unwrap(), "10.213.5.10");
        assert_eq!(
            get("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS").unwrap(),
            "-kernel inet_dist_use_interface {10,213,5,10}"
        );
        let conf = rabbitmq_conf(l.host(), 40001);
        assert!(
            conf.lines()
                .any(|x| x == "listeners.tcp.default = 10.213.5.10:40001"),
            "{conf}"
        );
        assert_eq!(advanced_config(None), "[].\n");
        assert_eq!(
            advanced_config(Some(Duration::from_secs(10))),
            "[{kernel, [{net_ticktime, 10}]}].\n"
        );
    }

    #[test]
    fn versions_come_from_the_start_line() {
        let log = "2024-01-01 00:00:00.000 [info] <0.229.0> \n\
                   2024-01-01 00:00:00.001 [info] <0.229.0> Starting RabbitMQ 3.10.8 on Erlang 25.2.3 [jit]\n";
        assert_eq!(
            versions_from_log(log),
            (Some("3.10.8".into()), Some("25.2.3".into()))
        );
        assert_eq!(versions_from_log("nothing here"), (None, None));
    }
}
