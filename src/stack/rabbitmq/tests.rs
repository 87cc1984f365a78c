//! Unit tests of the RabbitMQ node config, environment and CLI output parsing.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::queues::node_of_pid;
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
    crate::testing::assert_has_lines(
        &conf,
        &[
            "listeners.tcp.default = 127.0.0.1:40001",
            "loopback_users = none",
            "cluster_partition_handling = pause_minority",
            "log.console = false",
            "log.file.level = info",
        ],
    );
}

/// The value of variable `k` among a node's environment `vars`.
fn var(vars: &[(&str, std::ffi::OsString)], k: &str) -> Option<String> {
    vars.iter()
        .find(|(key, _)| *key == k)
        .map(|(_, v)| v.to_string_lossy().into_owned())
}

#[test]
fn node_env_is_complete_and_never_allows_input() {
    let vars = layout().vars();
    let get = |k: &str| var(&vars, k);
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
    let qs = parse_list_queues(&format!("Timeout: 60.0 seconds ...\n{LIST_QUEUES_JSON}")).unwrap();
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
    let get = |k: &str| var(&vars, k);
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
