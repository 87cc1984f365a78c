//! The broker: a private epmd (one per node in network namespaces) and the RabbitMQ nodes
//! registered with it, clustered when there are several; where the `celery` queue's
//! replicas and leader are, and whether the whole is healthy.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::env::write_cookie;
use super::{
    CTL_DIST_PORTS, ErlangEnv, LOCAL_LEADER_EVAL, MIRROR_POLICY, MIRROR_POLICY_DEFINITION,
    MIRROR_POLICY_PATTERN, QueueInfo, RABBITMQ_QUEUES, RabbitNode, RabbitOptions, node_name,
    parse_classic_pids, parse_list_queues, parse_node_atom, parse_quorum_status, quorum_healthy,
    run_cli, run_ctl,
};
use crate::stack::epmd::Epmd;
use crate::stack::netns::NsPlace;
use crate::stack::process::poll_ready;
use crate::stack::server::Server;
use crate::stack::{StackDirs, StackError, ports};

/// Counts brokers started by this process, so node names never repeat within it.
static BROKER_SEQ: AtomicU32 = AtomicU32::new(0);

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
        let home =
            crate::stack::temp_dir("hab-erlang-home-", "creating a temporary HOME for Erlang")?;
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
        poll_ready(
            "rabbitmq cluster",
            deadline,
            Duration::from_millis(100),
            || async {
                match self.running_nodes_on(0).await {
                    Ok(n) if n == want => Ok(()),
                    Ok(n) => Err(format!("{n} of {want} nodes running")),
                    Err(e) => Err(e.to_string()),
                }
            },
            || self.log_tails(10),
        )
        .await
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
        self.first_answer(avoid, "listing queues", |node| self.queue_info_on(node))
            .await
    }

    /// The answer of the first node that gives one, asked in
    /// [`asking_order`](Self::asking_order); when none does, the last node's error
    /// ([`StackError::Control`] about `what` when no node is running).
    async fn first_answer<T, Fut>(
        &self,
        avoid: Option<usize>,
        what: &str,
        mut ask: impl FnMut(usize) -> Fut,
    ) -> Result<T, StackError>
    where
        Fut: Future<Output = Result<T, StackError>>,
    {
        let mut last_error = StackError::Control {
            what: what.into(),
            detail: "no RabbitMQ node is running".into(),
        };
        for node in self.asking_order(avoid) {
            match ask(node).await {
                Ok(answer) => return Ok(answer),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// The nodes whose process is alive, first one first, with node `avoid` (when alive)
    /// moved to the end: the order to ask them in.
    fn asking_order(&self, avoid: Option<usize>) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].process_ref().is_alive() && Some(i) != avoid)
            .collect();
        order.extend(
            avoid.filter(|&i| i < self.nodes.len() && self.nodes[i].process_ref().is_alive()),
        );
        order
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
        self.first_answer(avoid, "asking for the queue leader", |node| async move {
            let out = self.ctl(node, &["eval", LOCAL_LEADER_EVAL]).await?;
            Ok(parse_node_atom(&out).and_then(|n| self.node_by_name(&n)))
        })
        .await
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
