//! What RabbitMQ's CLIs say about queues, parsed: where the replicas of a queue are
//! (`list_queues`, as JSON and as a table of classic queue pids), the Raft states of a
//! quorum queue's members (`quorum_status`), and the leader as one node knows it.

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

/// The Erlang expression
/// [`RabbitBroker::queue_leader_local`](super::RabbitBroker::queue_leader_local)
/// evaluates on a node: the node of the `celery` queue's leader as that node knows it
/// (quorum: Ra's leader board, else the metadata's leader; classic: the master process's
/// node), or `none`.
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
/// [`RabbitBroker::quorum_status`](super::RabbitBroker::quorum_status)) are not healthy:
/// exactly one leader, every other member a follower.
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
pub(super) fn node_of_pid(pid: &str) -> Option<&str> {
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
