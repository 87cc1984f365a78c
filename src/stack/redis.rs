//! Redis data nodes (`redis-server`) run by hab on loopback ports, and the [`RedisSet`]
//! of a stack: a master, its replicas and the Sentinels watching them.
//!
//! The generated config (`redis-<name>.conf`) and the log (`redis-<name>.log`, which also
//! receives stdout/stderr, where config errors go) live in the run's logs directory; the
//! working directory is a temporary directory removed at teardown. `save ""` and
//! `appendonly no` keep it from writing dumps.
//!
//! A data node that was killed or stopped comes back **as a replica of the current
//! master** (as Sentinel reports it): restarted with its original role, a killed master
//! would come back as an empty second master, and HAProxy would route to both for ~12 s
//! (`notes/servers.md`). A master restarted before the Sentinels have promoted another
//! node waits for that promotion first (up to [`RESTART_WAIT_FOR_FAILOVER`]): restarted
//! earlier it comes back empty, accepts writes, and loses them when the failover demotes
//! it (seen in a live test as `result_lost`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::process::{ManagedProcess, poll_ready, poll_until};
use super::resp::{PingedSpawn, quote, spawn_pinged, text};
use super::resp::{parse_info, query};
use super::sentinel::{self, Sentinel, SentinelOptions};
use super::server::{Server, ServerShell};
use super::{StackDirs, StackError, ports};

/// How long restarting a dead master waits for the Sentinels to promote another node.
pub const RESTART_WAIT_FOR_FAILOVER: Duration = Duration::from_secs(30);

/// Debian package that provides `redis-server`.
const PACKAGE: &str = "redis-server";

/// How long a graceful stop may take before SIGKILL (Redis with `save ""` exits at once).
pub const STOP_GRACE: Duration = Duration::from_secs(3);

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
    /// The network namespace to run in and its address (`network = "namespaces"`);
    /// `None` = 127.0.0.1 in the root namespace.
    pub netns: Option<super::netns::NsPlace>,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            startup_timeout: Duration::from_secs(10),
            port: None,
            replica_of: None,
            extra_directives: Vec::new(),
            program: PathBuf::from("redis-server"),
            netns: None,
        }
    }
}

/// A running `redis-server`, killed (group SIGKILL) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    /// The process, the generated config and the working directory (`dir`, removed
    /// when the server is dropped).
    shell: ServerShell,
    /// Name in file names and errors (`redis-<name>.log`).
    name: String,
    /// Port it listens on, on 127.0.0.1.
    port: u16,
    /// Its log file, in the logs directory.
    log_path: PathBuf,
    /// How it was started (reused by [`RedisServer::restart`]).
    opts: RedisOptions,
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
        if let Some(place) = &opts.netns {
            super::netns::register_host(port, place.addr);
        }
        let data_dir = super::temp_dir(
            &format!("hab-redis-{name}-"),
            "creating a temporary directory for Redis",
        )?;
        let log_path = dirs.logs.join(format!("redis-{name}.log"));
        let config_path = dirs.logs.join(format!("redis-{name}.conf"));
        let process =
            spawn_node(name, port, data_dir.path(), &config_path, &log_path, opts).await?;
        tracing::info!(%name, port, pid = process.pid().as_raw(), "redis ready");
        Ok(RedisServer {
            shell: ServerShell::new(process, config_path, STOP_GRACE, Some(data_dir)),
            name: name.to_string(),
            port,
            log_path,
            opts: opts.clone(),
        })
    }

    /// `CONFIG SET <directive> <value>` on the running node, kept for its restarts (the
    /// directive replaces one of the same name in the config it is started with).
    pub async fn set_directive(&mut self, directive: &str, value: &str) -> Result<(), StackError> {
        let v = super::resp::query(self.port, &["CONFIG", "SET", directive, value])
            .await
            .map_err(|detail| StackError::Control {
                what: format!("CONFIG SET {directive} {value} on redis {}", self.name),
                detail,
            })?;
        if !matches!(v, redis::Value::Okay) && super::resp::text(&v).as_deref() != Some("OK") {
            return Err(StackError::Control {
                what: format!("CONFIG SET {directive} {value} on redis {}", self.name),
                detail: format!("answered {v:?}"),
            });
        }
        let prefix = format!("{directive} ");
        self.opts
            .extra_directives
            .retain(|d| !d.starts_with(&prefix));
        self.opts
            .extra_directives
            .push(format!("{directive} {value}"));
        Ok(())
    }

    /// `CONFIG GET <directive>`: the value the running node uses.
    pub async fn get_directive(&self, directive: &str) -> Result<String, StackError> {
        let v = super::resp::query(self.port, &["CONFIG", "GET", directive])
            .await
            .map_err(|detail| StackError::Control {
                what: format!("CONFIG GET {directive} on redis {}", self.name),
                detail,
            })?;
        match &v {
            redis::Value::Array(items) if items.len() == 2 => super::resp::text(&items[1])
                .ok_or_else(|| StackError::Control {
                    what: format!("CONFIG GET {directive} on redis {}", self.name),
                    detail: format!("answered {v:?}"),
                }),
            redis::Value::Map(pairs) if pairs.len() == 1 => super::resp::text(&pairs[0].1)
                .ok_or_else(|| StackError::Control {
                    what: format!("CONFIG GET {directive} on redis {}", self.name),
                    detail: format!("answered {v:?}"),
                }),
            _ => Err(StackError::Control {
                what: format!("CONFIG GET {directive} on redis {}", self.name),
                detail: format!("answered {v:?}"),
            }),
        }
    }

    /// Starts the node again after a kill or stop, on the same port and working
    /// directory, as a replica of the master on `replica_of` (`None`: as a master), and
    /// waits until it answers `PING`. The config file is rewritten for the new role.
    pub async fn restart(&mut self, replica_of: Option<u16>) -> Result<(), StackError> {
        self.process().kill_now(); // reap whatever is left of the old process
        self.opts.replica_of = replica_of;
        let process = spawn_node(
            &self.name,
            self.port,
            self.shell
                .dir()
                .expect("a Redis node has a working directory"),
            self.shell.config_path(),
            &self.log_path,
            &self.opts,
        )
        .await?;
        self.shell.replace(process);
        tracing::info!(
            name = %self.name,
            port = self.port,
            ?replica_of,
            pid = self.pid().as_raw(),
            "redis restarted"
        );
        Ok(())
    }

    /// Name in file names and errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://<host>:<port>/0` (127.0.0.1, or its address in its network namespace).
    pub fn url(&self) -> String {
        format!("redis://{}:{}/0", super::netns::host(self.port), self.port)
    }
}

impl Server for RedisServer {
    fn shell(&self) -> &ServerShell {
        &self.shell
    }

    fn shell_mut(&mut self) -> &mut ServerShell {
        &mut self.shell
    }
}

/// Writes the node's config for `opts` (role included), starts it and waits for `PING`.
async fn spawn_node(
    name: &str,
    port: u16,
    dir: &Path,
    config_path: &Path,
    log_path: &Path,
    opts: &RedisOptions,
) -> Result<ManagedProcess, StackError> {
    let config = redis_config(port, dir, log_path, opts);
    std::fs::write(config_path, config).map_err(|source| StackError::Io {
        what: format!("writing {}", config_path.display()),
        source,
    })?;
    spawn_pinged(PingedSpawn {
        name: &format!("redis {name}"),
        program: &opts.program,
        package: PACKAGE,
        config: config_path,
        dir,
        log: log_path,
        port,
        netns: opts.netns.as_ref(),
        startup_timeout: opts.startup_timeout,
    })
    .await
}

/// The config file for one node: loopback only, in the foreground, no persistence.
pub fn redis_config(port: u16, dir: &Path, logfile: &Path, opts: &RedisOptions) -> String {
    let mut lines = vec![
        "# generated by hab".to_string(),
        format!("port {port}"),
        format!("bind {}", super::netns::host(port)),
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
        lines.push(format!("replicaof {} {master}", super::netns::host(master)));
    }
    lines.extend(opts.extra_directives.iter().cloned());
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// `INFO replication` of the Redis server on `port`, as key → value.
pub async fn replication_info(
    port: u16,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let v = query(port, &["INFO", "replication"]).await?;
    let t = text(&v).ok_or_else(|| format!("unexpected INFO answer {v:?}"))?;
    Ok(parse_info(&t))
}

/// How the Redis side of a stack is started.
#[derive(Debug, Clone, Default)]
pub struct RedisSetOptions {
    /// Replicas of the master (0 = standalone).
    pub replicas: u32,
    /// Options of every data node (startup timeout, `min-replicas-*` directives, program);
    /// `port` and `replica_of` are set per node.
    pub node: RedisOptions,
    /// Sentinels watching the master; `None` = no Sentinel, no failover.
    pub sentinels: Option<SentinelOptions>,
    /// Network namespaces to run in (`network = "namespaces"`): data node `i` in
    /// `netns[i]`, Sentinel `j` in `netns[replicas + 1 + j]`; empty = all on 127.0.0.1.
    pub netns: Vec<super::netns::NsPlace>,
}

/// The Redis side of a stack: data nodes (node 0 is the master at start, the others its
/// replicas) and the Sentinels watching them. Dropping it kills every process.
#[derive(Debug)]
pub struct RedisSet {
    /// The Sentinels; declared first so they die before the data nodes (no failover
    /// attempts during teardown).
    sentinels: Vec<Sentinel>,
    /// The data nodes, in start order; node 0 was the first master.
    nodes: Vec<RedisServer>,
    /// The name Sentinels monitor the master under (when there are Sentinels).
    master_name: Option<String>,
    /// Bring-up phases and their durations in ms, in order.
    phases: Vec<(String, u64)>,
}

/// The health of a [`RedisSet`], as far as it is healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisHealth {
    /// Index of the master every Sentinel agrees on (node 0 without Sentinels).
    pub master: usize,
}

impl RedisSet {
    /// Starts the master, then its replicas (in parallel) until each reports
    /// `master_link_status:up`, then the Sentinels (in parallel) until each answers
    /// `SENTINEL CKQUORUM` with OK, knows every replica and all agree on the master.
    ///
    /// On failure every process started so far is killed before the error is returned.
    pub async fn start(dirs: &StackDirs, opts: &RedisSetOptions) -> Result<RedisSet, StackError> {
        let started = Instant::now();
        let total = opts.replicas as usize + 1;
        let name = |i: usize| {
            if total == 1 {
                "backend".to_string()
            } else {
                format!("backend-{i}")
            }
        };
        let place = |i: usize| opts.netns.get(i).cloned();
        let master_opts = RedisOptions {
            netns: place(0),
            ..opts.node.clone()
        };
        let master = RedisServer::start(&name(0), dirs, &master_opts).await?;
        let replica_opts = RedisOptions {
            replica_of: Some(master.port()),
            port: None,
            ..opts.node.clone()
        };
        let replicas = futures_util::future::try_join_all((1..total).map(|i| {
            let n = name(i);
            let o = RedisOptions {
                netns: place(i),
                ..replica_opts.clone()
            };
            async move { RedisServer::start(&n, dirs, &o).await }
        }))
        .await?;
        let mut set = RedisSet {
            sentinels: Vec::new(),
            nodes: std::iter::once(master).chain(replicas).collect(),
            master_name: opts.sentinels.as_ref().map(|s| s.master_name.clone()),
            phases: Vec::new(),
        };
        set.wait_health("redis replication", opts.node.startup_timeout)
            .await?;
        let data_ms = started.elapsed().as_millis() as u64;
        set.phases.push(("backend_data".into(), data_ms));
        tracing::info!(ms = data_ms, nodes = total, "redis data nodes ready");

        if let Some(sopts) = &opts.sentinels {
            let started = Instant::now();
            let master_port = set.nodes[0].port();
            set.sentinels =
                futures_util::future::try_join_all((0..sopts.count as usize).map(|i| {
                    let o = SentinelOptions {
                        netns: place(total + i),
                        ..sopts.clone()
                    };
                    async move { Sentinel::start(i, dirs, master_port, &o).await }
                }))
                .await?;
            set.wait_health("redis sentinels", sopts.startup_timeout)
                .await?;
            let ms = started.elapsed().as_millis() as u64;
            set.phases.push(("backend_sentinels".into(), ms));
            tracing::info!(ms, sentinels = sopts.count, "sentinels agree on the master");
        }
        Ok(set)
    }

    /// Polls [`health`](Self::health) until it passes, for at most `deadline`.
    async fn wait_health(&self, service: &str, deadline: Duration) -> Result<(), StackError> {
        poll_ready(
            service,
            deadline,
            Duration::from_millis(50),
            || self.health(),
            || self.log_tails(10),
        )
        .await
        .map(|_| ())
    }

    /// The last `n` lines of every node's and Sentinel's log.
    pub fn log_tails(&self, n: usize) -> String {
        let nodes = self.nodes.iter().map(|s| s.process_ref());
        let sentinels = self.sentinels.iter().map(|s| s.process_ref());
        nodes
            .chain(sentinels)
            .map(|p| format!("--- {} ---\n{}", p.name(), p.log_tail(n)))
            .collect()
    }

    /// The data nodes; node 0 was the master at start.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The data nodes, mutable (for faults and restarts).
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// The Sentinels (empty without Sentinels).
    pub fn sentinels(&self) -> &[Sentinel] {
        &self.sentinels
    }

    /// The Sentinels, mutable (for faults and restarts).
    pub fn sentinels_mut(&mut self) -> &mut [Sentinel] {
        &mut self.sentinels
    }

    /// The name Sentinels monitor the master under; `None` without Sentinels.
    pub fn master_name(&self) -> Option<&str> {
        self.master_name.as_deref()
    }

    /// Bring-up phases (`backend_data`, `backend_sentinels`) and their durations in ms.
    pub fn phases(&self) -> &[(String, u64)] {
        &self.phases
    }

    /// Index of the data node listening on `port`.
    pub fn node_by_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port() == port)
    }

    /// Index of the current master: what the first Sentinel that answers reports
    /// (`SENTINEL get-master-addr-by-name`); node 0 without Sentinels.
    pub async fn current_master(&self) -> Result<usize, StackError> {
        let Some(name) = &self.master_name else {
            return Ok(0);
        };
        let mut errors = Vec::new();
        for s in &self.sentinels {
            match sentinel::master_port(s.port(), name).await {
                Ok(Some(port)) => {
                    return self.node_by_port(port).ok_or_else(|| StackError::Control {
                        what: "finding the Redis master".into(),
                        detail: format!(
                            "Sentinel names 127.0.0.1:{port}, which is no node of this stack"
                        ),
                    });
                }
                Ok(None) => errors.push(format!("sentinel {} does not know {name}", s.port())),
                Err(e) => errors.push(e),
            }
        }
        Err(StackError::Control {
            what: "asking the Sentinels for the Redis master".into(),
            detail: errors.join("; "),
        })
    }

    /// Full health, or why not: every data node answers; without Sentinels node 0 is the
    /// master; with Sentinels, every Sentinel names the same master, answers CKQUORUM
    /// with OK and sees every replica up; the master says `role:master` and every other
    /// node is its replica with `master_link_status:up`.
    pub async fn health(&self) -> Result<RedisHealth, String> {
        let master = match &self.master_name {
            None => 0,
            Some(name) => {
                let mut agreed: Option<u16> = None;
                for s in &self.sentinels {
                    let port = sentinel::master_port(s.port(), name)
                        .await?
                        .ok_or_else(|| format!("sentinel on {} does not know {name}", s.port()))?;
                    match agreed {
                        Some(p) if p != port => {
                            return Err(format!(
                                "Sentinels disagree on the master: 127.0.0.1:{p} and 127.0.0.1:{port}"
                            ));
                        }
                        _ => agreed = Some(port),
                    }
                }
                match agreed {
                    Some(port) => self.node_by_port(port).ok_or_else(|| {
                        format!("Sentinels name 127.0.0.1:{port}, no node of this stack")
                    })?,
                    None => 0, // Sentinels not started yet (bring-up).
                }
            }
        };
        let master_port = self.nodes[master].port();
        let mut infos = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            infos.push(replication_info(node.port()).await?);
        }
        let roles: Vec<&str> = infos
            .iter()
            .map(|info| info.get("role").map(String::as_str).unwrap_or("?"))
            .collect();
        one_master(&roles, master)?;
        for (i, info) in infos.iter().enumerate() {
            if i == master {
                continue;
            }
            if info.get("master_port").map(String::as_str) != Some(&master_port.to_string()) {
                return Err(format!(
                    "node {i} replicates 127.0.0.1:{}, not the master 127.0.0.1:{master_port}",
                    info.get("master_port").map(String::as_str).unwrap_or("?")
                ));
            }
            if info.get("master_link_status").map(String::as_str) != Some("up") {
                return Err(format!(
                    "node {i}: master_link_status:{}",
                    info.get("master_link_status")
                        .map(String::as_str)
                        .unwrap_or("?")
                ));
            }
        }
        if let Some(name) = &self.master_name {
            let replicas = self.nodes.len() - 1;
            for s in &self.sentinels {
                let ok = sentinel::ckquorum(s.port(), name).await?;
                if !ok.starts_with("OK") {
                    return Err(format!("sentinel on {}: CKQUORUM {ok}", s.port()));
                }
                let seen = sentinel::replicas_up(s.port(), name).await?;
                if seen < replicas {
                    return Err(format!(
                        "sentinel on {} sees {seen} of {replicas} replicas up",
                        s.port()
                    ));
                }
            }
        }
        Ok(RedisHealth { master })
    }

    /// Restarts data node `index` after a kill or stop: as a replica of the current
    /// master, or as a master when it is itself the current master (no Sentinel, or no
    /// failover happened). Waits until it answers `PING`, not until it has synced.
    pub async fn restart_node(&mut self, index: usize) -> Result<(), StackError> {
        // While the Sentinels still name the dead node, restarting it (no persistence)
        // would bring back an *empty master* that accepts writes until the failover
        // demotes it and its replica resync wipes them (seen as result_lost). A
        // supervisor that knows the topology waits for the failover first.
        let master = self.wait_for_failover(index).await?;
        let replica_of = (master != index).then(|| self.nodes[master].port());
        self.nodes[index].restart(replica_of).await
    }

    /// The current master; when that is the stopped node `index` and Sentinels can
    /// promote a replica, first waits (up to [`RESTART_WAIT_FOR_FAILOVER`]) until they
    /// name another node.
    async fn wait_for_failover(&self, index: usize) -> Result<usize, StackError> {
        let mut master = self.current_master().await?;
        if master == index && !self.sentinels.is_empty() && self.nodes.len() > 1 {
            let started = std::time::Instant::now();
            while master == index && started.elapsed() < RESTART_WAIT_FOR_FAILOVER {
                tokio::time::sleep(Duration::from_millis(100)).await;
                master = self.current_master().await.unwrap_or(index);
            }
            if master == index {
                tracing::warn!(
                    "the Sentinels still name the stopped node as master after {:?}",
                    RESTART_WAIT_FOR_FAILOVER
                );
            }
        }
        Ok(master)
    }

    /// Restarts data node `index` after a kill or stop with its own config, as a master:
    /// the unsafe restart of a naive supervisor, once the Sentinels promoted another node
    /// (it waits for that promotion first, up to [`RESTART_WAIT_FOR_FAILOVER`], so the
    /// outcome does not hang on whether a loaded machine promoted before `restart_after`:
    /// restarted earlier, the node would simply be the master again and its replica
    /// would resync from it). Without persistence it comes back empty and answers
    /// `role:master` beside the promoted one until the Sentinels demote it
    /// (`+convert-to-slave`), and what was written to it is lost.
    pub async fn restart_node_as_master(&mut self, index: usize) -> Result<(), StackError> {
        self.wait_for_failover(index).await?;
        self.nodes[index].restart(None).await
    }

    /// Asks the Sentinels (the first that accepts) to fail over now (`SENTINEL FAILOVER`):
    /// a replica is promoted while the old master stays alive. Errors without Sentinels.
    pub async fn force_failover(&self) -> Result<(), StackError> {
        let Some(name) = &self.master_name else {
            return Err(StackError::NotApplicable {
                role: "backend.master".into(),
                reason: "a failover needs Sentinels (backend.sentinels >= 1)".into(),
            });
        };
        let mut errors = Vec::new();
        for s in &self.sentinels {
            match sentinel::force_failover(s.port(), name).await {
                Ok(()) => return Ok(()),
                Err(e) => errors.push(e),
            }
        }
        Err(StackError::Control {
            what: format!("SENTINEL FAILOVER {name}"),
            detail: errors.join("; "),
        })
    }

    /// After a `SENTINEL FAILOVER` of node `old`: polls the Sentinels until one names
    /// another node as master (it announced `+switch-master`), for at most `deadline`;
    /// returns that node, or why not (the Sentinels still name `old`, none answered, a
    /// Sentinel in TILT mode). An accepted `SENTINEL FAILOVER` is only a request: the
    /// promotion can fail (no good replica, a frozen one: `-failover-abort-*`) or never
    /// start (TILT).
    pub async fn wait_promotion(&self, old: usize, deadline: Duration) -> Result<usize, String> {
        let Some(name) = &self.master_name else {
            return Err("no Sentinels: nothing promotes a replica".into());
        };
        let probe = || async {
            let mut named = Vec::new();
            for s in &self.sentinels {
                if let Ok(Some(port)) = sentinel::master_port(s.port(), name).await {
                    match self.node_by_port(port) {
                        Some(i) if i != old => return Ok(i),
                        Some(i) => named.push(i),
                        None => {}
                    }
                }
            }
            Err(match named.is_empty() {
                true => "no Sentinel named a master".to_string(),
                false => format!("the Sentinels still name backend.node[{old}]"),
            })
        };
        match poll_until(deadline, Duration::from_millis(100), probe).await {
            Ok(new) => Ok(new),
            Err((waited, last)) => {
                let mut tilted = Vec::new();
                for s in &self.sentinels {
                    if sentinel::in_tilt(s.port()).await == Ok(true) {
                        tilted.push(format!("127.0.0.1:{}", s.port()));
                    }
                }
                let tilt = match tilted.is_empty() {
                    true => String::new(),
                    false => format!(
                        " (Sentinel {} in TILT mode: a starved CPU held its timer up)",
                        tilted.join(", ")
                    ),
                };
                Err(format!(
                    "no promotion within {} ms: {last}{tilt}",
                    waited.as_millis()
                ))
            }
        }
    }

    /// Stops the Sentinels, then every data node (each group in parallel).
    pub async fn stop(&mut self) {
        futures_util::future::join_all(self.sentinels.iter_mut().map(Sentinel::stop)).await;
        futures_util::future::join_all(self.nodes.iter_mut().map(RedisServer::stop)).await;
    }
}

/// Why the data nodes' roles (`role` of `INFO replication`, by node index) are not one
/// master, node `master`, and replicas: two nodes answering `role:master` (a demoted
/// master not converted yet, a restarted empty master) is named as such.
pub fn one_master(roles: &[&str], master: usize) -> Result<(), String> {
    let masters: Vec<usize> = (0..roles.len()).filter(|&i| roles[i] == "master").collect();
    if masters.len() > 1 {
        let list: Vec<String> = masters.iter().map(|i| format!("node {i}")).collect();
        return Err(format!(
            "{} data nodes answer role:master ({}); the Sentinels name node {master}",
            masters.len(),
            list.join(", ")
        ));
    }
    for (i, role) in roles.iter().enumerate() {
        if i == master && *role != "master" {
            return Err(format!("node {i} (the master) reports role:{role}"));
        }
        if i != master && *role != "slave" {
            return Err(format!("node {i} reports role:{role}, expected a replica"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_has;

    #[test]
    fn two_nodes_answering_role_master_are_not_healthy() {
        assert_eq!(one_master(&["master", "slave"], 0), Ok(()));
        assert_eq!(one_master(&["slave", "master", "slave"], 1), Ok(()));
        let e = one_master(&["master", "master"], 1).unwrap_err();
        assert!(
            e.contains("2 data nodes answer role:master (node 0, node 1)")
                && e.contains("the Sentinels name node 1"),
            "{e}"
        );
        let e = one_master(&["slave", "slave"], 1).unwrap_err();
        assert!(e.contains("node 1 (the master) reports role:slave"), "{e}");
        let e = one_master(&["master", "?"], 0).unwrap_err();
        assert_has(&e, &["node 1 reports role:?, expected a replica"]);
    }

    #[test]
    fn master_config_is_loopback_and_ephemeral() {
        let conf = redis_config(
            6400,
            Path::new("/tmp/d"),
            Path::new("/run/logs/redis-backend.log"),
            &RedisOptions::default(),
        );
        crate::testing::assert_has_lines(
            &conf,
            &[
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
            ],
        );
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
}
