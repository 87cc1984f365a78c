//! Live tests of the HA stack (`topologies/ha.toml`): a 3-node RabbitMQ cluster with a
//! quorum queue, a Redis master + replica + 3 Sentinels, HAProxy in front. One stack
//! serves several checks (bring-up, Redis master kill, broker primary kill) so the file
//! stays well under two minutes on 2 cores; the HA tests take turns (one stack at a time).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    assert_gone, processes_using_epmd_port, processes_writing_into, stack_dirs, stack_pids,
};
use hab::config::QueueKind;
use hab::config::proxy::{BROKER_BACKEND, REDIS_BACKEND};
use hab::fault::Role;
use hab::stack::haproxy::{HaproxyOptions, ServerState};
use hab::stack::{NodeRef, Stack, StackError, StackOptions};
use lapin::options::{BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::sync::Mutex;

/// One HA stack at a time: two 3-node clusters booting at once on 2 cores slow both down.
static SERIAL: Mutex<()> = Mutex::const_new(());

fn ha_options() -> StackOptions {
    options_of("ha.toml")
}

fn options_of(file: &str) -> StackOptions {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(file);
    let topology = hab::config::load_topology(&path).unwrap();
    StackOptions {
        // Generous: other test binaries may boot nodes at the same time.
        broker_startup_timeout: Duration::from_secs(120),
        ..StackOptions::from_topology(&topology)
    }
}

async fn amqp_connect(url: &str) -> Result<Connection, String> {
    tokio::time::timeout(
        Duration::from_secs(3),
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map_err(|e| e.to_string())
}

/// Declares the `celery` queue as `kind`, publishes `tag` with a confirm and reads it back.
async fn amqp_roundtrip(url: &str, kind: QueueKind, tag: &str) -> Result<(), String> {
    let conn = amqp_connect(url).await?;
    let step = std::sync::Mutex::new("declare");
    let set = |s| *step.lock().unwrap() = s;
    let run = async {
        let setup = conn.create_channel().await.map_err(|e| e.to_string())?;
        hab::broker::declare_celery_queue(&setup, kind)
            .await
            .map_err(|e| format!("{e:#}"))?;
        set("publish");
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let confirm = ch
            .basic_publish(
                "".into(),
                "celery".into(),
                BasicPublishOptions::default(),
                tag.as_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        if !confirm.is_ack() {
            return Err(format!("publish of {tag} was nacked"));
        }
        set("get");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let got = ch
                .basic_get("celery".into(), BasicGetOptions { no_ack: true })
                .await
                .map_err(|e| e.to_string())?;
            match got {
                Some(m) if m.delivery.data == tag.as_bytes() => return Ok(()),
                Some(_) => continue, // an older message
                None if Instant::now() > deadline => {
                    return Err(format!("{tag} never came back"));
                }
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    };
    let res = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .unwrap_or_else(|_| Err(format!("roundtrip timed out at {}", step.lock().unwrap())));
    let _ = conn.close(200, "bye".into()).await;
    res
}

/// SET then GET over a fresh connection (bounded), as a client of the frontend would.
async fn redis_write_read(url: &str, value: &str) -> Result<(), String> {
    let run = async {
        let client = redis::Client::open(url).map_err(|e| e.to_string())?;
        let mut con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("SET")
            .arg("hab-ha-live")
            .arg(value)
            .query_async::<()>(&mut con)
            .await
            .map_err(|e| e.to_string())?;
        let got: String = redis::cmd("GET")
            .arg("hab-ha-live")
            .query_async(&mut con)
            .await
            .map_err(|e| e.to_string())?;
        if got == value {
            Ok(())
        } else {
            Err(format!("read {got:?} after writing {value:?}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(1), run)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

fn state<'a>(states: &'a [ServerState], backend: &str, server: &str) -> &'a ServerState {
    states
        .iter()
        .find(|s| s.backend == backend && s.server == server)
        .unwrap_or_else(|| panic!("no {backend}/{server} in {states:?}"))
}

fn ms_since(at_unix_us: i64) -> f64 {
    (hab::clock::now_unix_us() - at_unix_us) as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_stack_serves_fails_over_and_heals() {
    let _turn = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let mut stack = Stack::start(&ha_options(), &dirs).await.unwrap();
    eprintln!(
        "HA bring-up: {} ms, phases {:?}",
        stack.bringup_ms(),
        stack.bringup_phases_ms()
    );
    eprintln!("versions: {:?}", stack.versions());
    assert!(stack.versions().contains_key("haproxy"));
    let proxy = stack.proxy().expect("ha.toml has a proxy");
    assert_eq!(stack.broker_url(), proxy.broker_url());
    assert_eq!(stack.backend_url(), proxy.backend_url());
    assert_eq!(stack.broker_node_urls().len(), 3);
    assert_eq!(stack.backend_node_urls().len(), 2);
    assert_eq!(stack.sentinel_addrs().len(), 3);

    // Through both frontends.
    amqp_roundtrip(&stack.broker_url(), QueueKind::Quorum, "bring-up")
        .await
        .unwrap();
    redis_write_read(&stack.backend_url(), "bring-up")
        .await
        .unwrap();

    // One cluster of 3; the quorum queue on all 3, led from node 0 (the declaring
    // client's node, through HAProxy).
    assert_eq!(stack.broker().running_nodes_on(2).await.unwrap(), 3);
    let q = stack.broker().queue_info().await.unwrap().unwrap();
    eprintln!("queue: {q:?}");
    assert_eq!(q.kind, "quorum");
    assert_eq!(
        (q.members.clone(), q.online.clone()),
        (vec![0, 1, 2], vec![0, 1, 2])
    );
    assert_eq!(
        stack.broker().queue_members_online().await.unwrap(),
        Some((3, 3))
    );
    assert_eq!(stack.broker().queue_leader().await.unwrap(), Some(0));

    // HAProxy: node 0 UP, the others UP backups; only the Redis master UP.
    let states = stack.proxy().unwrap().server_states().await.unwrap();
    let r0 = state(&states, BROKER_BACKEND, "rabbit0");
    assert!(r0.is_up() && !r0.backup, "{r0:?}");
    for s in ["rabbit1", "rabbit2"] {
        let r = state(&states, BROKER_BACKEND, s);
        assert!(r.is_up() && r.backup, "{r:?}");
    }
    assert!(state(&states, REDIS_BACKEND, "redis0").is_up());
    assert_eq!(state(&states, REDIS_BACKEND, "redis1").status, "DOWN");

    // Sentinels agree (health checks it) and every role resolves.
    let healthy = stack.wait_healthy(Duration::from_secs(30)).await.unwrap();
    eprintln!("healthy after bring-up in {} ms", healthy.as_millis());
    assert_eq!(stack.current_backend_master().await.unwrap(), 0);
    for (role, want) in [
        (Role::BrokerPrimary, NodeRef::Broker(0)),
        (Role::BrokerQueueLeader, NodeRef::Broker(0)),
        (Role::BrokerNode(2), NodeRef::Broker(2)),
        (Role::BackendMaster, NodeRef::BackendData(0)),
        (Role::BackendReplica, NodeRef::BackendData(1)),
        (Role::Sentinel(2), NodeRef::Sentinel(2)),
        (Role::Proxy, NodeRef::Proxy),
    ] {
        assert_eq!(stack.resolve_role(role).await.unwrap(), want, "{role}");
    }
    for role in [Role::Sentinel(3), Role::BrokerNode(3), Role::BackendNode(2)] {
        let err = stack.resolve_role(role).await.unwrap_err();
        assert!(
            matches!(err, StackError::NotApplicable { .. }),
            "{role}: {err}"
        );
    }

    // --- Redis master kill: Sentinel promotes the replica, HAProxy follows. ---
    let master = stack.resolve_role(Role::BackendMaster).await.unwrap();
    let old_pid = stack.pids(master).unwrap().server;
    let fault_at = stack.kill_node(master).await.unwrap();
    assert!(!stack.pids(master).unwrap().alive);
    assert_eq!(
        nix::sys::signal::kill(old_pid, None),
        Err(nix::errno::Errno::ESRCH)
    );
    let (mut writable_ms, mut promoted_ms, mut proxy_ms) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while writable_ms.is_none() || promoted_ms.is_none() || proxy_ms.is_none() {
        assert!(
            Instant::now() < deadline,
            "no failover within 30 s: writable {writable_ms:?}, promoted {promoted_ms:?}, \
             proxy {proxy_ms:?}"
        );
        if writable_ms.is_none()
            && redis_write_read(&stack.backend_url(), "after")
                .await
                .is_ok()
        {
            writable_ms = Some(ms_since(fault_at));
        }
        if promoted_ms.is_none() && stack.current_backend_master().await.ok() == Some(1) {
            promoted_ms = Some(ms_since(fault_at));
        }
        if proxy_ms.is_none()
            && let Ok(states) = stack.proxy().unwrap().server_states().await
            && state(&states, REDIS_BACKEND, "redis1").status == "UP"
            && state(&states, REDIS_BACKEND, "redis0").status == "DOWN"
        {
            proxy_ms = Some(ms_since(fault_at));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!(
        "Redis master kill: Sentinel names the replica after {:.0} ms, HAProxy switched after \
         {:.0} ms, writable through HAProxy after {:.0} ms",
        promoted_ms.unwrap(),
        proxy_ms.unwrap(),
        writable_ms.unwrap()
    );
    assert_eq!(
        stack.resolve_role(Role::BackendMaster).await.unwrap(),
        NodeRef::BackendData(1)
    );
    // The old master comes back as a replica of the new one.
    let restarted_at = stack.restart_node(master).await.unwrap();
    assert!(restarted_at > fault_at);
    let healed = stack.wait_healthy(Duration::from_secs(60)).await.unwrap();
    eprintln!(
        "Redis healthy again {} ms after the restart",
        healed.as_millis()
    );
    assert_eq!(stack.current_backend_master().await.unwrap(), 1);
    assert_eq!(
        stack.resolve_role(Role::BackendReplica).await.unwrap(),
        NodeRef::BackendData(0)
    );
    redis_write_read(&stack.backend_url(), "healed")
        .await
        .unwrap();

    // --- Broker primary kill: HAProxy routes new connections to a backup. ---
    let primary = stack.resolve_role(Role::BrokerPrimary).await.unwrap();
    assert_eq!(primary, NodeRef::Broker(0));
    let beam = stack.pids(primary).unwrap().server;
    let fault_at = stack.kill_node(primary).await.unwrap();
    assert_eq!(
        nix::sys::signal::kill(beam, None),
        Err(nix::errno::Errno::ESRCH)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let connected_ms = loop {
        if let Ok(conn) = amqp_connect(&stack.broker_url()).await
            && conn.create_channel().await.is_ok()
        {
            let ms = ms_since(fault_at);
            let _ = conn.close(200, "bye".into()).await;
            break ms;
        }
        assert!(
            Instant::now() < deadline,
            "no AMQP connection through HAProxy"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let roundtrip_ms = loop {
        match amqp_roundtrip(&stack.broker_url(), QueueKind::Quorum, "after-kill").await {
            Ok(()) => break ms_since(fault_at),
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no roundtrip after the kill: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    eprintln!(
        "broker primary kill: new AMQP connection through HAProxy after {connected_ms:.0} ms, \
         quorum-queue publish+get after {roundtrip_ms:.0} ms"
    );
    let routed = stack.resolve_role(Role::BrokerPrimary).await.unwrap();
    assert!(matches!(routed, NodeRef::Broker(1 | 2)), "{routed}");
    let states = stack.proxy().unwrap().server_states().await.unwrap();
    assert_eq!(state(&states, BROKER_BACKEND, "rabbit0").status, "DOWN");
    assert_eq!(stack.broker().running_nodes_on(1).await.unwrap(), 2);
    let leader = stack.broker().queue_leader().await.unwrap();
    assert!(matches!(leader, Some(1 | 2)), "{leader:?}");

    let restart_started = Instant::now();
    stack.restart_node(primary).await.unwrap();
    let healed = stack.wait_healthy(Duration::from_secs(90)).await.unwrap();
    eprintln!(
        "broker node 0 back: accepting AMQP after {} ms, whole stack healthy {} ms later",
        restart_started.elapsed().as_millis() - healed.as_millis(),
        healed.as_millis()
    );
    assert_eq!(stack.broker().running_nodes_on(0).await.unwrap(), 3);
    assert_eq!(
        stack.broker().queue_members_online().await.unwrap(),
        Some((3, 3))
    );
    assert_eq!(
        stack.resolve_role(Role::BrokerPrimary).await.unwrap(),
        NodeRef::Broker(0)
    );
    amqp_roundtrip(&stack.broker_url(), QueueKind::Quorum, "rejoined")
        .await
        .unwrap();

    // --- HAProxy stop and restart: same ports, fresh log. ---
    let logs = dirs.logs.clone();
    let err = stack.restart_node(NodeRef::Proxy).await.unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");
    let old_proxy = stack.pids(NodeRef::Proxy).unwrap();
    stack.stop_node(NodeRef::Proxy).await.unwrap();
    assert!(!stack.pids(NodeRef::Proxy).unwrap().alive);
    assert_gone("stopped haproxy", old_proxy.server.as_raw());
    assert!(
        redis_write_read(&stack.backend_url(), "no proxy")
            .await
            .is_err()
    );
    let before = (stack.broker_url(), stack.backend_url());
    stack.restart_node(NodeRef::Proxy).await.unwrap();
    assert_eq!((stack.broker_url(), stack.backend_url()), before);
    assert!(logs.join("haproxy.restart-1.log").is_file());
    assert_eq!(
        stack.proxy().unwrap().log_path(),
        logs.join("haproxy.restart-1.log")
    );
    redis_write_read(&stack.backend_url(), "proxy back")
        .await
        .unwrap();
    amqp_connect(&stack.broker_url()).await.unwrap();

    // --- A Sentinel killed and restarted with its own config; a paused replica. ---
    stack.kill_node(NodeRef::Sentinel(2)).await.unwrap();
    let err = stack.pause_node(NodeRef::Sentinel(2)).await.unwrap_err();
    assert!(err.to_string().contains("not running"), "{err}");
    stack.restart_node(NodeRef::Sentinel(2)).await.unwrap();
    let replica = stack.resolve_role(Role::BackendReplica).await.unwrap();
    let paused_at = stack.pause_node(replica).await.unwrap();
    let p = stack.pids(replica).unwrap();
    assert!(p.alive);
    assert_eq!(common::stat_fields(p.server.as_raw()).unwrap()[0], "T");
    let resumed_at = stack.resume_node(replica).await.unwrap();
    assert!(resumed_at > paused_at);
    let healed = stack.wait_healthy(Duration::from_secs(60)).await.unwrap();
    eprintln!(
        "healthy {} ms after a Sentinel restart and a replica pause",
        healed.as_millis()
    );

    // --- Graceful shutdown: nothing left. ---
    let pids = stack_pids(&stack);
    let epmd_port = stack.broker().epmd().port();
    let started = Instant::now();
    stack.shutdown().await;
    eprintln!("HA teardown: {} ms", started.elapsed().as_millis());
    for (what, pid) in &pids {
        assert_gone(what, *pid);
    }
    assert_eq!(processes_writing_into(&logs), vec![]);
    assert_eq!(processes_using_epmd_port(epmd_port), Vec::<i32>::new());
    for f in [
        "haproxy.cfg",
        "haproxy.log",
        "sentinel-0.conf",
        "redis-backend-1.log",
        "rabbitmq-2/rabbitmq.conf",
    ] {
        assert!(logs.join(f).is_file(), "{f} missing");
    }
}

/// A proxied standalone (one node, one Redis, HAProxy in front) with a classic queue, as
/// the standalone baseline: roles that need replicas are not applicable, and a killed
/// node (broker or Redis) comes back by restart. (A single-node *quorum* queue does not:
/// after a SIGKILL its member restarts without its Raft state and never elects itself a
/// leader; `wait_healthy` reports that instead of passing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_standalone_restarts_its_only_nodes() {
    let _turn = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let opts = StackOptions {
        proxy: Some(HaproxyOptions::default()),
        broker_startup_timeout: Duration::from_secs(120),
        ..StackOptions::default()
    };
    let mut stack = Stack::start(&opts, &dirs).await.unwrap();
    eprintln!(
        "proxied standalone bring-up: {} ms, phases {:?}",
        stack.bringup_ms(),
        stack.bringup_phases_ms()
    );
    assert_eq!(stack.broker_url(), stack.proxy().unwrap().broker_url());
    amqp_roundtrip(&stack.broker_url(), QueueKind::Classic, "one")
        .await
        .unwrap();
    redis_write_read(&stack.backend_url(), "one").await.unwrap();
    for role in [Role::BackendReplica, Role::Sentinel(0), Role::BrokerNode(1)] {
        let err = stack.resolve_role(role).await.unwrap_err();
        assert!(
            matches!(err, StackError::NotApplicable { .. }),
            "{role}: {err}"
        );
    }
    assert_eq!(
        stack.resolve_role(Role::BrokerPrimary).await.unwrap(),
        NodeRef::Broker(0)
    );
    assert_eq!(
        stack.resolve_role(Role::BackendMaster).await.unwrap(),
        NodeRef::BackendData(0)
    );

    // The only broker node: down means no broker until the restart brings it back with
    // its data (the durable quorum queue is still there).
    let node = stack.resolve_role(Role::BrokerPrimary).await.unwrap();
    stack.kill_node(node).await.unwrap();
    assert!(amqp_connect(&stack.broker_url()).await.is_err());
    let started = Instant::now();
    stack.restart_node(node).await.unwrap();
    stack.wait_healthy(Duration::from_secs(60)).await.unwrap();
    eprintln!(
        "standalone broker node back and healthy after {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(
        stack.broker().queue_members_online().await.unwrap(),
        Some((1, 1))
    );
    amqp_roundtrip(&stack.broker_url(), QueueKind::Classic, "two")
        .await
        .unwrap();

    // The only Redis: restarted as a master (there is no other), empty.
    let master = stack.resolve_role(Role::BackendMaster).await.unwrap();
    stack.kill_node(master).await.unwrap();
    stack.restart_node(master).await.unwrap();
    stack.wait_healthy(Duration::from_secs(30)).await.unwrap();
    redis_write_read(&stack.backend_url(), "two").await.unwrap();

    let pids = stack_pids(&stack);
    stack.shutdown().await;
    for (what, pid) in &pids {
        assert_gone(what, *pid);
    }
    assert_eq!(processes_writing_into(&dirs.logs), vec![]);
}

/// HAProxy starts last; when it cannot start, the broker and Redis that are already up
/// are torn down with the error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_proxy_start_tears_down_everything() {
    let _turn = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let opts = StackOptions {
        proxy: Some(HaproxyOptions {
            program: "hab-no-such-haproxy".into(),
            ..HaproxyOptions::default()
        }),
        broker_startup_timeout: Duration::from_secs(120),
        ..StackOptions::default()
    };
    let err = Stack::start(&opts, &dirs).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StackError::MissingBinary { .. }), "{msg}");
    assert!(msg.contains("haproxy"), "{msg}");
    // Broker and Redis had come up (HAProxy starts after both), and are gone with the
    // failed start.
    let redis_log = std::fs::read_to_string(dirs.logs.join("redis-backend.log")).unwrap();
    assert!(
        redis_log.contains("Ready to accept connections"),
        "{redis_log}"
    );
    assert_eq!(processes_writing_into(&dirs.logs), vec![]);
}

/// The mirrored variant (classic queue + `ha-all` policy), then a drop without shutdown,
/// with a paused broker node and a paused Sentinel: nothing may be left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_ha_stack_and_dropping_it_kills_every_process() {
    let _turn = SERIAL.lock().await;
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let mut stack = Stack::start(&options_of("ha-mirrored.toml"), &dirs)
        .await
        .unwrap();
    eprintln!(
        "mirrored HA bring-up: {} ms, phases {:?}",
        stack.bringup_ms(),
        stack.bringup_phases_ms()
    );
    assert!(stack.bringup_phases_ms().contains_key("broker_policy"));
    let conn = amqp_connect(&stack.broker_url()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    hab::broker::declare_celery_queue(&ch, QueueKind::Mirrored)
        .await
        .unwrap();
    let _ = conn.close(200, "bye".into()).await;
    // The policy mirrors the classic queue to every node; an empty queue syncs at once.
    let deadline = Instant::now() + Duration::from_secs(20);
    let q = loop {
        let q = stack.broker().queue_info().await.unwrap().unwrap();
        if q.online == [0, 1, 2] || Instant::now() > deadline {
            break q;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("mirrored queue: {q:?}");
    assert_eq!(q.kind, "classic");
    assert_eq!(
        (q.leader, q.members.clone(), q.online.clone()),
        (Some(0), vec![0, 1, 2], vec![0, 1, 2])
    );
    stack.wait_healthy(Duration::from_secs(30)).await.unwrap();

    // A paused node and a paused Sentinel must not survive the drop either.
    stack.pause_node(NodeRef::Broker(1)).await.unwrap();
    stack.pause_node(NodeRef::Sentinel(0)).await.unwrap();
    let pids = stack_pids(&stack);
    let epmd_port = stack.broker().epmd().port();
    assert!(processes_writing_into(&dirs.logs).len() >= 10);

    let started = Instant::now();
    drop(stack); // as a panic or an early `?` would
    eprintln!("HA drop teardown: {} ms", started.elapsed().as_millis());
    for (what, pid) in &pids {
        assert_gone(what, *pid);
    }
    assert_eq!(processes_writing_into(&dirs.logs), vec![]);
    assert_eq!(processes_using_epmd_port(epmd_port), Vec::<i32>::new());
}

/// Not a test: measures HA bring-up (with phases) and teardown. Run alone, on an idle
/// machine: `cargo test --test stack_ha_live -- --ignored --nocapture measure_ha_bringup`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly"]
async fn measure_ha_bringup() {
    let _turn = SERIAL.lock().await;
    for _ in 0..3 {
        let tmp = tempfile::tempdir().unwrap();
        let stack = Stack::start(&ha_options(), &stack_dirs(&tmp))
            .await
            .unwrap();
        eprintln!(
            "bring-up {} ms: {:?}",
            stack.bringup_ms(),
            stack.bringup_phases_ms()
        );
        let started = Instant::now();
        stack.shutdown().await;
        eprintln!("teardown {} ms", started.elapsed().as_millis());
    }
}
