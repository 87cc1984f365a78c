//! Roles, node references and the node operations fault injection uses.
//!
//! A fault names its target by **role** ([`Role`], written like `broker.primary` or
//! `sentinel[1]`), so one scenario runs on every topology. [`Stack::resolve_role`] turns a
//! role into a concrete [`NodeRef`] *at that moment* (the broker node HAProxy routes to
//! now, the master the Sentinels name now); a role the topology does not have is
//! [`StackError::NotApplicable`]. The operations then act on the `NodeRef`:
//!
//! | operation | effect | returns |
//! |---|---|---|
//! | [`Stack::kill_node`] | SIGKILL the server process (RabbitMQ: `beam.smp`), then the rest of its process tree | unix µs right after the SIGKILL |
//! | [`Stack::pause_node`] / [`Stack::resume_node`] | SIGSTOP / SIGCONT the server process | unix µs right after the signal |
//! | [`Stack::throttle_node`] / [`Stack::unthrottle_node`] | move the server process into a cgroup capped at a share of one core / back | unix µs right after the move |
//! | [`Stack::stop_node`] | SIGTERM, wait for a clean exit (SIGKILL after a grace period) | unix µs right after the SIGTERM |
//! | [`Stack::restart_node`] | start a killed or stopped node again: same name, ports and data (RabbitMQ rejoins its cluster by itself; Redis as a replica of the current master; Sentinel with its own config; HAProxy with its config and a fresh log) and wait until it answers | unix µs right after the spawn |
//! | [`Stack::restart_node_as_master`] | start a killed or stopped Redis data node again with its own config, as an empty master, without waiting for the Sentinels (the unsafe restart) | unix µs right after the spawn |
//! | [`Stack::failover_node`] | `SENTINEL FAILOVER` of the Redis master: a replica is promoted, the old master stays alive until the Sentinels demote it | unix µs right after a Sentinel accepted |
//! | [`Stack::wait_promotion`] | after a failover: wait (bounded) until a Sentinel names another master | the promoted node, or why none was |
//! | [`Stack::wait_healthy`] | poll until the whole stack is healthy again (see [`Stack::health`]) | how long it took |
//!
//! Operations take `&mut Stack`; observers that must keep polling meanwhile use what does
//! not borrow the stack: the HAProxy stats socket path with [`super::haproxy::server_states`],
//! the Sentinel ports with [`super::sentinel`]'s queries, [`super::rabbitmq::run_ctl`] with a
//! clone of the broker's [`super::rabbitmq::ErlangEnv`].

use std::fmt;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::haproxy::{self, ServerState};
use super::process::{ManagedProcess, poll_ready, wait_stopped_state};
use super::server::Server;
use super::{Stack, StackError};
use crate::clock::now_unix_us;
use crate::config::proxy::{BROKER_BACKEND, REDIS_BACKEND};
use crate::fault::Role;
/// How long pause/resume wait for the signal to take effect.
const SIGNAL_SETTLE: Duration = Duration::from_secs(1);

/// How much longer than the Sentinels' `failover-timeout` a forced failover may take to
/// promote a replica before hab reports that it did not (after a `SENTINEL FAILOVER` on
/// an idle stack, `+switch-master` comes within ~1–3 s; a Sentinel aborts a promotion
/// not done within `failover-timeout`).
pub const PROMOTION_GRACE: Duration = Duration::from_secs(10);

/// One concrete server of a stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeRef {
    /// RabbitMQ node `i`.
    Broker(usize),
    /// Redis data node `i`.
    BackendData(usize),
    /// Sentinel `i`.
    Sentinel(usize),
    /// HAProxy.
    Proxy,
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeRef::Broker(i) => write!(f, "broker.node[{i}]"),
            NodeRef::BackendData(i) => write!(f, "backend.node[{i}]"),
            NodeRef::Sentinel(i) => write!(f, "sentinel[{i}]"),
            NodeRef::Proxy => write!(f, "proxy"),
        }
    }
}

/// The processes of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePids {
    /// The process faults signal: `beam.smp` for RabbitMQ, else the server itself.
    pub server: Pid,
    /// The process group (its leader: RabbitMQ's `sh` wrapper, else the server).
    pub group: Pid,
    /// Whether the group leader is alive now (a paused node is alive).
    pub alive: bool,
}

/// The broker node HAProxy routes new connections to, from `show stat`: the UP
/// non-backup server, else the first UP backup.
pub fn broker_primary_from(states: &[ServerState]) -> Option<usize> {
    haproxy::routed_server(states, BROKER_BACKEND)?.index()
}

/// The replica to pick for `backend.replica`: the first live node other than the
/// master, else the first node other than the master.
pub fn pick_replica(master: usize, alive: &[bool]) -> Option<usize> {
    let others = || (0..alive.len()).filter(|&i| i != master);
    others().find(|&i| alive[i]).or_else(|| others().next())
}

/// Why HAProxy's view does not match a healthy stack with Redis master `master`: every
/// server settled, every broker node UP, and in the Redis backend exactly the master UP.
pub fn proxy_health(states: &[ServerState], master: usize) -> Result<(), String> {
    haproxy::settled(states)?;
    if let Some(s) = states
        .iter()
        .find(|s| s.backend == BROKER_BACKEND && !s.is_up())
    {
        return Err(format!("HAProxy has {} {}", s.server, s.status));
    }
    for s in states.iter().filter(|s| s.backend == REDIS_BACKEND) {
        let is_master = s.index() == Some(master);
        if s.is_up() != is_master {
            return Err(format!(
                "HAProxy has {} {} while the master is redis{master}",
                s.server, s.status
            ));
        }
    }
    Ok(())
}

/// The index of Redis data node `node`, or [`StackError::NotApplicable`] saying `reason`
/// for any other node.
fn backend_data(node: NodeRef, reason: &str) -> Result<usize, StackError> {
    match node {
        NodeRef::BackendData(i) => Ok(i),
        _ => Err(not_applicable(node, reason)),
    }
}

fn not_applicable(role: impl std::fmt::Display, reason: impl Into<String>) -> StackError {
    StackError::NotApplicable {
        role: role.to_string(),
        reason: reason.into(),
    }
}

fn in_range(role: Role, i: usize, len: usize, what: &str) -> Result<usize, StackError> {
    if i < len {
        Ok(i)
    } else {
        Err(not_applicable(
            role,
            format!("this stack has {len} {what} (0..{len})"),
        ))
    }
}

impl Stack {
    /// The node that plays `role` right now, or [`StackError::NotApplicable`] when this
    /// topology has no such role (a replica on a standalone backend, `sentinel[3]` with 3
    /// Sentinels, `proxy` without a proxy). Other errors mean the role exists but could
    /// not be resolved now (no queue declared yet, no broker node UP in HAProxy, no
    /// Sentinel answering).
    pub async fn resolve_role(&self, role: Role) -> Result<NodeRef, StackError> {
        let brokers = self.broker.nodes().len();
        let data = self.backend.nodes().len();
        match role {
            Role::BrokerPrimary => match &self.proxy {
                _ if self.client_node.is_some() => Ok(NodeRef::Broker(
                    self.client_node
                        .as_ref()
                        .map_or(0, |n| n.load(std::sync::atomic::Ordering::Relaxed))
                        .min(brokers.saturating_sub(1)),
                )),
                None => Ok(NodeRef::Broker(0)),
                Some(p) => {
                    let states = p.server_states().await?;
                    broker_primary_from(&states)
                        .map(NodeRef::Broker)
                        .ok_or_else(|| StackError::Control {
                            what: format!("resolving {role}"),
                            detail: "HAProxy has no broker node UP".into(),
                        })
                }
            },
            Role::BrokerQueueLeader => match self.broker.queue_leader().await? {
                Some(i) => Ok(NodeRef::Broker(i)),
                None => Err(StackError::Control {
                    what: format!("resolving {role}"),
                    detail: "the celery queue does not exist yet or has no leader".into(),
                }),
            },
            Role::BrokerNode(i) => Ok(NodeRef::Broker(in_range(role, i, brokers, "broker nodes")?)),
            Role::BackendMaster => Ok(NodeRef::BackendData(self.backend.current_master().await?)),
            Role::BackendReplica => {
                if data < 2 {
                    return Err(not_applicable(role, "the backend has no replica"));
                }
                let master = self.backend.current_master().await?;
                let alive: Vec<bool> = self
                    .backend
                    .nodes()
                    .iter()
                    .map(|n| n.process_ref().is_alive())
                    .collect();
                Ok(NodeRef::BackendData(
                    pick_replica(master, &alive).expect("two or more data nodes"),
                ))
            }
            Role::BackendNode(i) => Ok(NodeRef::BackendData(in_range(
                role,
                i,
                data,
                "Redis data nodes",
            )?)),
            Role::Sentinel(i) => Ok(NodeRef::Sentinel(in_range(
                role,
                i,
                self.backend.sentinels().len(),
                "Sentinels",
            )?)),
            Role::Proxy => match self.proxy {
                Some(_) => Ok(NodeRef::Proxy),
                None => Err(not_applicable(role, "the topology has no [proxy]")),
            },
        }
    }

    /// Checks that `node` exists on this stack.
    fn check_node(&self, node: NodeRef) -> Result<(), StackError> {
        let (len, what) = match node {
            NodeRef::Broker(i) => (self.broker.nodes().len().checked_sub(i), "broker nodes"),
            NodeRef::BackendData(i) => (
                self.backend.nodes().len().checked_sub(i),
                "Redis data nodes",
            ),
            NodeRef::Sentinel(i) => (self.backend.sentinels().len().checked_sub(i), "Sentinels"),
            NodeRef::Proxy => (Some(usize::from(self.proxy.is_some())), "proxies"),
        };
        match len {
            Some(n) if n > 0 => Ok(()),
            _ => Err(not_applicable(
                node,
                format!("this stack has no such {what}"),
            )),
        }
    }

    /// The server `node` names.
    fn server(&self, node: NodeRef) -> Result<&dyn Server, StackError> {
        self.check_node(node)?;
        Ok(match node {
            NodeRef::Broker(i) => &self.broker.nodes()[i],
            NodeRef::BackendData(i) => &self.backend.nodes()[i],
            NodeRef::Sentinel(i) => &self.backend.sentinels()[i],
            NodeRef::Proxy => self.proxy.as_ref().expect("checked"),
        })
    }

    /// The server `node` names, mutable.
    fn server_mut(&mut self, node: NodeRef) -> Result<&mut dyn Server, StackError> {
        self.check_node(node)?;
        Ok(match node {
            NodeRef::Broker(i) => &mut self.broker.nodes_mut()[i],
            NodeRef::BackendData(i) => &mut self.backend.nodes_mut()[i],
            NodeRef::Sentinel(i) => &mut self.backend.sentinels_mut()[i],
            NodeRef::Proxy => self.proxy.as_mut().expect("checked"),
        })
    }

    /// The processes of `node`.
    pub fn pids(&self, node: NodeRef) -> Result<NodePids, StackError> {
        let s = self.server(node)?;
        let p = s.process_ref();
        Ok(NodePids {
            server: s.signal_pid(),
            group: p.pid(),
            alive: p.is_alive(),
        })
    }

    /// The server process of every node that is running now, named by node
    /// (`broker.node[0]`, `sentinel[1]`, `proxy`): what a CPU sampler watches (a restarted
    /// node shows its new pid).
    pub fn server_pids(&self) -> Vec<(String, i32)> {
        let nodes = (0..self.broker.nodes().len())
            .map(NodeRef::Broker)
            .chain((0..self.backend.nodes().len()).map(NodeRef::BackendData))
            .chain((0..self.backend.sentinels().len()).map(NodeRef::Sentinel))
            .chain(self.proxy.is_some().then_some(NodeRef::Proxy));
        nodes
            .filter_map(|n| {
                let p = self.pids(n).ok()?;
                p.alive.then(|| (n.to_string(), p.server.as_raw()))
            })
            .collect()
    }

    /// The managed process of `node`, the pid faults signal and its stop grace.
    fn process_of(
        &mut self,
        node: NodeRef,
    ) -> Result<(&mut ManagedProcess, Pid, Duration), StackError> {
        let s = self.server_mut(node)?;
        let (pid, grace) = (s.signal_pid(), s.stop_grace());
        Ok((s.process(), pid, grace))
    }

    /// Sends `sig` to the server process of a live `node`; returns unix µs right after.
    fn signal_node(
        &mut self,
        node: NodeRef,
        sig: Signal,
    ) -> Result<(&mut ManagedProcess, i64), StackError> {
        let (p, server, _) = self.process_of(node)?;
        if !p.is_alive() {
            return Err(StackError::Control {
                what: format!("sending {sig} to {node}"),
                detail: "it is not running".into(),
            });
        }
        kill(server, sig).map_err(|e| StackError::Control {
            what: format!("sending {sig} to {node} (pid {server})"),
            detail: e.to_string(),
        })?;
        let at = now_unix_us();
        Ok((p, at))
    }

    /// Crashes `node`: SIGKILL to its server process (RabbitMQ: `beam.smp`), then SIGKILL
    /// to whatever is left of its process tree (the wrapper, Erlang helpers), reaped
    /// before returning. Returns the unix µs right after the first SIGKILL.
    pub async fn kill_node(&mut self, node: NodeRef) -> Result<i64, StackError> {
        let (p, at) = self.signal_node(node, Signal::SIGKILL)?;
        p.kill_now();
        tracing::info!(%node, at_unix_us = at, "killed");
        Ok(at)
    }

    /// Freezes `node`: SIGSTOP to its server process (RabbitMQ: `beam.smp`); its sockets
    /// stay open and unanswered. Returns once the process is in the stopped state (signal
    /// delivery is asynchronous), with the unix µs right after the signal.
    pub async fn pause_node(&mut self, node: NodeRef) -> Result<i64, StackError> {
        let (_, at) = self.signal_node(node, Signal::SIGSTOP)?;
        let server = self.pids(node)?.server;
        if !wait_stopped_state(server, true, SIGNAL_SETTLE).await {
            tracing::warn!(%node, "not in the stopped state {} ms after SIGSTOP", SIGNAL_SETTLE.as_millis());
        }
        tracing::info!(%node, at_unix_us = at, "paused");
        Ok(at)
    }

    /// Thaws a paused `node`: SIGCONT to its server process. Returns the unix µs right
    /// after the signal.
    pub async fn resume_node(&mut self, node: NodeRef) -> Result<i64, StackError> {
        let (_, at) = self.signal_node(node, Signal::SIGCONT)?;
        let server = self.pids(node)?.server;
        wait_stopped_state(server, false, SIGNAL_SETTLE).await;
        tracing::info!(%node, at_unix_us = at, "resumed");
        Ok(at)
    }

    /// Starves `node` of CPU: its server process is moved into a cgroup capped at
    /// `cpu_percent` % of one core ([`super::cgroup`]) until [`Stack::unthrottle_node`].
    /// Returns the unix µs right after the move.
    pub async fn throttle_node(
        &mut self,
        node: NodeRef,
        cpu_percent: f64,
    ) -> Result<i64, StackError> {
        let (p, server, _) = self.process_of(node)?;
        let what = format!("throttling {node} to {cpu_percent} % of a core");
        if !p.is_alive() {
            return Err(StackError::Control {
                what,
                detail: "it is not running".into(),
            });
        }
        if self.throttles.contains_key(&node) {
            return Err(StackError::Control {
                what,
                detail: "it is throttled already".into(),
            });
        }
        let t = super::cgroup::Throttle::apply(server.as_raw(), &node.to_string(), cpu_percent)
            .map_err(|detail| StackError::Control { what, detail })?;
        let at = now_unix_us();
        self.throttles.insert(node, t);
        tracing::info!(%node, at_unix_us = at, cpu_percent, "throttled");
        Ok(at)
    }

    /// Ends the throttle of `node`: its server process goes back to its own cgroup.
    /// Returns the unix µs right after.
    pub async fn unthrottle_node(&mut self, node: NodeRef) -> Result<i64, StackError> {
        let what = format!("ending the CPU throttle of {node}");
        let mut t = self
            .throttles
            .remove(&node)
            .ok_or_else(|| StackError::Control {
                what: what.clone(),
                detail: "it is not throttled".into(),
            })?;
        t.release()
            .map_err(|detail| StackError::Control { what, detail })?;
        let at = now_unix_us();
        tracing::info!(%node, at_unix_us = at, "unthrottled");
        Ok(at)
    }

    /// Stops `node` gracefully: SIGTERM to its process group, then waits for it to exit
    /// (SIGKILL after the server kind's grace period). Returns the unix µs right after
    /// the SIGTERM.
    pub async fn stop_node(&mut self, node: NodeRef) -> Result<i64, StackError> {
        let (p, _, grace) = self.process_of(node)?;
        if !p.is_alive() {
            return Err(StackError::Control {
                what: format!("stopping {node}"),
                detail: "it is not running".into(),
            });
        }
        p.terminate();
        let at = now_unix_us();
        p.wait_gone(grace).await;
        tracing::info!(%node, at_unix_us = at, "stopped");
        Ok(at)
    }

    /// Starts a killed or stopped `node` again with the same name, ports and data, and
    /// waits until it answers (RabbitMQ: accepts AMQP; it rejoins its cluster by itself
    /// within seconds — [`wait_healthy`](Self::wait_healthy) waits for that). A Redis data
    /// node comes back as a replica of the current master (a master only if it still is
    /// the master); a Sentinel with its own rewritten config; HAProxy with its config and
    /// a fresh log file. Returns the unix µs right after the spawn.
    pub async fn restart_node(&mut self, node: NodeRef) -> Result<i64, StackError> {
        let (p, _, _) = self.process_of(node)?;
        if p.is_alive() {
            return Err(StackError::Control {
                what: format!("restarting {node}"),
                detail: "it is still running (resume a paused node; kill or stop it first)".into(),
            });
        }
        match node {
            NodeRef::Broker(i) => self.broker.restart_node(i).await?,
            NodeRef::BackendData(i) => self.backend.restart_node(i).await?,
            NodeRef::Sentinel(i) => self.backend.sentinels_mut()[i].restart().await?,
            NodeRef::Proxy => self.proxy.as_mut().expect("checked").start_again().await?,
        }
        let (p, _, _) = self.process_of(node)?;
        let at = p.spawned_unix_us();
        tracing::info!(%node, at_unix_us = at, "restarted");
        Ok(at)
    }

    /// Restarts a killed or stopped Redis data `node` with its own config, as a master,
    /// without waiting for the Sentinels' promotion (see
    /// [`RedisSet::restart_node_as_master`](super::redis::RedisSet::restart_node_as_master)).
    /// Returns the unix µs right after the spawn.
    pub async fn restart_node_as_master(&mut self, node: NodeRef) -> Result<i64, StackError> {
        let i = backend_data(node, "restart_as = \"master\" is only for Redis data nodes")?;
        let (p, _, _) = self.process_of(node)?;
        if p.is_alive() {
            return Err(StackError::Control {
                what: format!("restarting {node}"),
                detail: "it is still running; kill or stop it first".into(),
            });
        }
        self.backend.restart_node_as_master(i).await?;
        let (p, _, _) = self.process_of(node)?;
        let at = p.spawned_unix_us();
        tracing::info!(%node, at_unix_us = at, "restarted as master");
        Ok(at)
    }

    /// The network `node` is a member of and its index there, for a partition: Redis
    /// data node `i` is member `i` and Sentinel `j` member `replicas + 1 + j` of the
    /// Redis side's network (see [`super::redis::RedisSetOptions`]); broker node `i` is
    /// member `i` of the broker nodes' network.
    fn network_member(
        &mut self,
        node: NodeRef,
    ) -> Result<(&mut super::netns::Network, usize), StackError> {
        let data = self.backend.nodes().len();
        let (net, member) = match node {
            NodeRef::BackendData(i) => (self.network.as_mut(), i),
            NodeRef::Sentinel(j) => (self.network.as_mut(), data + j),
            NodeRef::Broker(i) => {
                if self.network.is_none() && self.broker_network.is_none() {
                    return Err(not_applicable(
                        node,
                        "a partition needs a topology with network = \"namespaces\"",
                    ));
                }
                (self.broker_network.as_mut(), i)
            }
            NodeRef::Proxy => {
                return Err(not_applicable(
                    node,
                    "HAProxy runs in the root namespace with the clients; partition a broker \
                     node, a Redis data node or a Sentinel",
                ));
            }
        };
        match net {
            Some(net) if member < net.members().len() => Ok((net, member)),
            Some(_) => Err(not_applicable(node, "no such member of its network")),
            None if matches!(node, NodeRef::Broker(_)) => Err(not_applicable(
                node,
                "a single RabbitMQ node has no peer to be cut off from; broker nodes run in \
                 network namespaces with broker.nodes >= 2",
            )),
            None => Err(not_applicable(
                node,
                "a partition needs a topology with network = \"namespaces\"",
            )),
        }
    }

    /// Partitions `node` (a broker node, Redis data node or Sentinel in a network
    /// namespace): cuts it off from the other members of its network (the other broker
    /// nodes; the other Redis nodes and Sentinels); clients and HAProxy in the root
    /// namespace still reach it. Returns the unix µs right after the cut.
    pub async fn partition_node(&mut self, node: NodeRef) -> Result<i64, StackError> {
        let (net, member) = self.network_member(node)?;
        net.cut(member)?;
        let at = now_unix_us();
        tracing::info!(%node, at_unix_us = at, "partitioned");
        Ok(at)
    }

    /// Heals the partition of `node`. Returns the unix µs right after.
    pub async fn heal_node(&mut self, node: NodeRef) -> Result<i64, StackError> {
        let (net, member) = self.network_member(node)?;
        net.heal(member)?;
        let at = now_unix_us();
        tracing::info!(%node, at_unix_us = at, "partition healed");
        Ok(at)
    }

    /// Forces a Sentinel failover of the Redis master `node` (`SENTINEL FAILOVER`): a
    /// replica is promoted while `node` stays alive, answering `role:master` until the
    /// Sentinels demote it. Returns the unix µs right after a Sentinel accepted.
    pub async fn failover_node(&mut self, node: NodeRef) -> Result<i64, StackError> {
        let i = backend_data(node, "a failover applies to the Redis master only")?;
        if self.backend.sentinels().is_empty() || self.backend.nodes().len() < 2 {
            return Err(not_applicable(
                node,
                "a failover needs Sentinels and a replica",
            ));
        }
        let master = self.backend.current_master().await?;
        if master != i {
            return Err(StackError::Control {
                what: format!("failing over {node}"),
                detail: format!("it is not the master (the Sentinels name backend.node[{master}])"),
            });
        }
        self.backend.force_failover().await?;
        let at = now_unix_us();
        tracing::info!(%node, at_unix_us = at, "failover requested");
        Ok(at)
    }

    /// After [`failover_node`](Self::failover_node) of `node`: waits until a Sentinel
    /// names another data node as master, for at most the Sentinels' `failover-timeout`
    /// plus [`PROMOTION_GRACE`] (a promotion not done by then was aborted or never
    /// started). Returns the promoted node, or why there was none.
    pub async fn wait_promotion(&self, node: NodeRef) -> Result<NodeRef, String> {
        let NodeRef::BackendData(old) = node else {
            return Err(format!("{node} is no Redis data node"));
        };
        let deadline = self
            .opts
            .sentinels
            .as_ref()
            .map_or(Duration::ZERO, |s| s.failover_timeout)
            + PROMOTION_GRACE;
        self.backend
            .wait_promotion(old, deadline)
            .await
            .map(NodeRef::BackendData)
    }

    /// Full health, or the first reason it is not: every broker node running in one
    /// cluster and, once the `celery` queue exists, all its replicas online with a
    /// leader; every Redis data node up, exactly one of them answering `role:master`
    /// (the one every Sentinel names, with CKQUORUM OK), every other node its linked
    /// replica; HAProxy (if any) with every server settled, every broker node UP and
    /// exactly the Redis master UP.
    ///
    /// The broker is checked first (`rabbitmqctl`, seconds under load), then the Redis
    /// side and HAProxy, each only once the part before passed: a pass means the Redis
    /// side was healthy when this returns, not when the broker check began (run side by
    /// side, a Redis snapshot seconds old made the stack "healthy" while a demoted
    /// master still answered `role:master`). The price: a pass can come up to one broker
    /// check (~1–3 s under load) after the Redis side became healthy.
    pub async fn health(&self) -> Result<(), String> {
        self.broker.health().await?;
        let redis = self.backend.health().await?;
        if let Some(p) = &self.proxy {
            let states = haproxy::server_states(p.stats_socket()).await?;
            proxy_health(&states, redis.master)?;
        }
        Ok(())
    }

    /// Polls [`health`](Self::health) until it passes, for at most `deadline`; returns how
    /// long that took, or [`StackError::NotReady`] with the last reason.
    pub async fn wait_healthy(&self, deadline: Duration) -> Result<Duration, StackError> {
        let started = Instant::now();
        poll_ready(
            "stack",
            deadline,
            Duration::from_millis(100),
            || self.health(),
            String::new,
        )
        .await?;
        Ok(started.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(backend: &str, server: &str, status: &str, backup: bool) -> ServerState {
        ServerState {
            backend: backend.into(),
            server: server.into(),
            status: status.into(),
            backup,
            check_status: "L4OK".into(),
            last_change_s: None,
        }
    }

    fn healthy() -> Vec<ServerState> {
        vec![
            state(BROKER_BACKEND, "rabbit0", "UP", false),
            state(BROKER_BACKEND, "rabbit1", "UP", true),
            state(BROKER_BACKEND, "rabbit2", "UP", true),
            state(REDIS_BACKEND, "redis0", "UP", false),
            state(REDIS_BACKEND, "redis1", "DOWN", false),
        ]
    }

    #[test]
    fn broker_primary_is_where_haproxy_routes() {
        let mut s = healthy();
        assert_eq!(broker_primary_from(&s), Some(0));
        s[0].status = "DOWN".into();
        assert_eq!(broker_primary_from(&s), Some(1));
        s[1].status = "MAINT".into();
        assert_eq!(broker_primary_from(&s), Some(2));
        s[2].status = "DOWN".into();
        assert_eq!(broker_primary_from(&s), None);
        // Only the broker backend counts.
        assert_eq!(broker_primary_from(&s[3..]), None);
    }

    #[test]
    fn replica_pick_prefers_a_live_non_master() {
        assert_eq!(pick_replica(0, &[true, true]), Some(1));
        assert_eq!(pick_replica(1, &[true, true]), Some(0));
        assert_eq!(pick_replica(0, &[true, false, true]), Some(2));
        assert_eq!(pick_replica(0, &[true, false, false]), Some(1));
        assert_eq!(pick_replica(0, &[true]), None);
    }

    #[test]
    fn proxy_health_wants_every_broker_up_and_only_the_master() {
        let mut s = healthy();
        assert_eq!(proxy_health(&s, 0), Ok(()));
        let e = proxy_health(&s, 1).unwrap_err();
        assert!(e.contains("redis0 UP while the master is redis1"), "{e}");
        s[3].status = "DOWN".into();
        s[4].status = "UP".into();
        assert_eq!(proxy_health(&s, 1), Ok(()));
        s[1].status = "DOWN".into();
        assert!(proxy_health(&s, 1).unwrap_err().contains("rabbit1 DOWN"));
        s[1].status = "DOWN 1/2".into();
        assert!(proxy_health(&s, 1).unwrap_err().contains("not settled"));
    }
}
