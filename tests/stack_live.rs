//! Live tests of `hab::stack` against real servers on free loopback ports: a stack serves
//! AMQP and Redis, and whatever way it ends (shutdown, drop, failed start) no process it
//! started is left.

mod common;

use std::time::{Duration, Instant};

use common::{
    assert_gone, processes_using_epmd_port, processes_writing_into, stack_dirs, stack_pids,
};

use hab::stack::redis::{RedisOptions, RedisServer};
use hab::stack::{Stack, StackError, StackOptions};
use lapin::options::{BasicGetOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};

fn options() -> StackOptions {
    StackOptions {
        // Generous: on 2 cores several nodes may boot at once while tests run in parallel.
        broker_startup_timeout: Duration::from_secs(120),
        ..StackOptions::default()
    }
}

async fn exercise(stack: &Stack, tag: &str) {
    let conn = Connection::connect(&stack.broker_url(), ConnectionProperties::default())
        .await
        .expect("AMQP connect");
    let channel = conn.create_channel().await.unwrap();
    let queue = format!("hab-live-{tag}");
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            tag.as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap();
    // A publish is asynchronous; poll briefly until the message is routed.
    let deadline = Instant::now() + Duration::from_secs(5);
    let message = loop {
        let got = channel
            .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap();
        if let Some(m) = got {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "message never arrived in {queue}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(message.delivery.data, tag.as_bytes());
    conn.close(200, "bye".into()).await.unwrap();

    let client = redis::Client::open(stack.backend_url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("SET")
        .arg("hab-live")
        .arg(tag)
        .query_async::<()>(&mut con)
        .await
        .unwrap();
    let value: String = redis::cmd("GET")
        .arg("hab-live")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(value, tag);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stack_serves_amqp_and_redis_and_shutdown_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let stack = Stack::start(&options(), &dirs).await.unwrap();
    eprintln!("bring-up: {} ms", stack.bringup_ms());

    let urls = (stack.broker_url(), stack.backend_url());
    assert!(
        urls.0.starts_with("amqp://guest:guest@127.0.0.1:"),
        "{}",
        urls.0
    );
    assert!(urls.0.ends_with("/%2f"), "{}", urls.0);
    assert!(
        urls.1.starts_with("redis://127.0.0.1:") && urls.1.ends_with("/0"),
        "{}",
        urls.1
    );
    let versions = stack.versions().clone();
    eprintln!("versions: {versions:?}");
    for key in ["rabbitmq", "erlang_otp", "redis"] {
        assert!(versions.contains_key(key), "no {key} in {versions:?}");
    }

    exercise(&stack, "one").await;

    // The node registered with hab's private epmd, not the system one.
    let node = &stack.broker().nodes()[0];
    let short = node.nodename().split('@').next().unwrap().to_string();
    let names = stack.broker().epmd().registered().await.unwrap();
    assert!(names.iter().any(|l| l.contains(&short)), "{names:?}");
    // rabbitmqctl reaches the node with the shared environment (cookie, epmd, CLI ports).
    let mut ctl = stack.broker().env().rabbitmqctl(node.nodename());
    ctl.args(["eval", "length(rabbit_nodes:all_running())."])
        .stdin(std::process::Stdio::null());
    let out = tokio::task::spawn_blocking(move || ctl.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1",
        "rabbitmqctl eval failed: {out:?}"
    );
    let beam = node.beam_pid().as_raw();
    let comm = std::fs::read_to_string(format!("/proc/{beam}/comm")).unwrap();
    assert_eq!(comm.trim(), "beam.smp");
    let state_dir = node.layout().state_dir.clone();
    let epmd_port = stack.broker().epmd().port();
    let pids = stack_pids(&stack);
    let logs = dirs.logs.clone();

    let started = Instant::now();
    stack.shutdown().await;
    eprintln!("teardown: {} ms", started.elapsed().as_millis());

    for (what, pid) in &pids {
        assert_gone(what, *pid);
    }
    assert_eq!(processes_writing_into(&logs), vec![]);
    assert_eq!(processes_using_epmd_port(epmd_port), Vec::<i32>::new());
    assert!(
        !state_dir.exists(),
        "state dir {} not removed",
        state_dir.display()
    );
    // Logs and configs stay for the report.
    assert!(logs.join("redis-backend.log").is_file());
    assert!(logs.join("redis-backend.conf").is_file());
    assert!(logs.join("epmd.log").is_file());
    assert!(logs.join("rabbitmq-0/rabbitmq.conf").is_file());
    let node_log = std::fs::read_to_string(logs.join(format!("rabbitmq-0/{short}@localhost.log")))
        .expect("the node log is where hab expects it");
    assert!(node_log.contains("Starting RabbitMQ"), "{node_log}");
    assert!(
        !logs.join("rabbitmq-0/erl_crash.dump").exists(),
        "graceful stop crashed beam"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stack_kills_every_process() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let stack = Stack::start(&options(), &dirs).await.unwrap();
    let pids = stack_pids(&stack);
    let epmd_port = stack.broker().epmd().port();
    assert!(processes_writing_into(&dirs.logs).len() >= 3);

    let started = Instant::now();
    drop(stack); // as a panic or an early `?` would
    eprintln!("drop teardown: {} ms", started.elapsed().as_millis());

    for (what, pid) in &pids {
        assert_gone(what, *pid);
    }
    assert_eq!(processes_writing_into(&dirs.logs), vec![]);
    assert_eq!(processes_using_epmd_port(epmd_port), Vec::<i32>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stacks_at_once_do_not_collide() {
    let (tmp_a, tmp_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (dirs_a, dirs_b) = (stack_dirs(&tmp_a), stack_dirs(&tmp_b));
    let opts = options();
    let (a, b) = tokio::join!(Stack::start(&opts, &dirs_a), Stack::start(&opts, &dirs_b));
    let (a, b) = (a.unwrap(), b.unwrap());

    let (na, nb) = (&a.broker().nodes()[0], &b.broker().nodes()[0]);
    assert_ne!(na.nodename(), nb.nodename());
    assert_ne!(na.amqp_port(), nb.amqp_port());
    assert_ne!(a.broker().epmd().port(), b.broker().epmd().port());
    assert_ne!(a.backend().nodes()[0].port(), b.backend().nodes()[0].port());
    tokio::join!(exercise(&a, "a"), exercise(&b, "b"));

    let pids: Vec<_> = stack_pids(&a).into_iter().chain(stack_pids(&b)).collect();
    tokio::join!(a.shutdown(), b.shutdown());
    for (what, pid) in &pids {
        assert_gone(what, *pid);
    }
}

#[tokio::test]
async fn redis_with_a_bad_directive_reports_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let opts = RedisOptions {
        extra_directives: vec!["hab-no-such-directive yes".into()],
        ..RedisOptions::default()
    };
    let err = RedisServer::start("bad", &dirs, &opts).await.unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}\n");
    assert!(matches!(err, StackError::Exited { .. }), "{msg}");
    assert!(
        msg.contains("hab-no-such-directive"),
        "no log line in: {msg}"
    );
    assert_eq!(processes_writing_into(&dirs.logs), vec![]);
}

#[tokio::test]
async fn redis_on_a_taken_port_reports_its_log() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let opts = RedisOptions {
        port: Some(squatter.local_addr().unwrap().port()),
        ..RedisOptions::default()
    };
    let err = RedisServer::start("squatted", &dirs, &opts)
        .await
        .unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}\n");
    assert!(
        matches!(err, StackError::Exited { .. } | StackError::NotReady { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("Address already in use"),
        "no log line in: {msg}"
    );
    assert_eq!(processes_writing_into(&dirs.logs), vec![]);
}

#[tokio::test]
async fn missing_server_program_names_the_install_script() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let opts = RedisOptions {
        program: "hab-no-such-redis-server".into(),
        ..RedisOptions::default()
    };
    let err = RedisServer::start("missing", &dirs, &opts)
        .await
        .unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}\n");
    assert!(matches!(err, StackError::MissingBinary { .. }), "{msg}");
    assert!(msg.contains("hab-no-such-redis-server"), "{msg}");
    assert!(msg.contains("redis-server"), "{msg}");
    assert!(msg.contains("scripts/install-servers.sh"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_broker_start_tears_down_the_backend_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    // Redis answers in milliseconds; no RabbitMQ node boots in 1.5 s.
    let opts = StackOptions {
        broker_startup_timeout: Duration::from_millis(1500),
        ..StackOptions::default()
    };
    let err = Stack::start(&opts, &dirs).await.unwrap_err();
    let msg = err.to_string();
    eprintln!("{msg}\n");
    assert!(matches!(err, StackError::NotReady { .. }), "{msg}");
    assert!(msg.contains("rabbitmq hab-"), "{msg}");
    // The tail is what the node had written by then (its start header, or the banner
    // once that has pushed the header out of the last 20 lines): one of its lines.
    let tail = msg
        .split_once("last lines of its log:\n")
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("no log tail in: {msg}"));
    let line = tail
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("---"))
        .unwrap_or_else(|| panic!("an empty log tail in: {msg}"));
    let logs: String = std::fs::read_dir(dirs.logs.join("rabbitmq-0"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        logs.contains(line),
        "{line:?} is not from the node's logs:\n{logs}"
    );
    // Redis had come up, and is gone with the failed start.
    let redis_log = std::fs::read_to_string(dirs.logs.join("redis-backend.log")).unwrap();
    assert!(
        redis_log.contains("Ready to accept connections"),
        "{redis_log}"
    );
    assert_eq!(processes_writing_into(&dirs.logs), vec![]);
}

#[tokio::test]
async fn impossible_options_are_refused_before_anything_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let opts = StackOptions {
        broker_queue: hab::config::QueueKind::Mirrored,
        ..StackOptions::default()
    };
    let err = Stack::start(&opts, &dirs).await.unwrap_err();
    assert!(matches!(err, StackError::Unsupported(_)), "{err}");
    assert!(
        err.to_string()
            .contains("mirrored queue needs broker.nodes >= 2"),
        "{err}"
    );
    assert_eq!(processes_writing_into(&dirs.logs), vec![]);
}

/// Not a test: measures bring-up and teardown. Run alone, on an idle machine:
/// `cargo test --test stack_live -- --ignored --nocapture measure_bringup_and_teardown`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement; run explicitly"]
async fn measure_bringup_and_teardown() {
    let runs = 5;
    let (mut up, mut down, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = stack_dirs(&tmp);
        let stack = Stack::start(&options(), &dirs).await.unwrap();
        up.push(stack.bringup_ms());
        let started = Instant::now();
        if i % 2 == 0 {
            stack.shutdown().await;
            down.push(started.elapsed().as_millis() as u64);
        } else {
            drop(stack);
            dropped.push(started.elapsed().as_millis() as u64);
        }
    }
    let median = |v: &mut Vec<u64>| {
        v.sort();
        v[v.len() / 2]
    };
    eprintln!(
        "bring-up ms {up:?} median {}; graceful shutdown ms {down:?} median {}; drop ms {dropped:?} median {}",
        median(&mut up.clone()),
        median(&mut down.clone()),
        median(&mut dropped.clone())
    );
}

/// The cgroup of `pid` on the CPU controller, as a directory under its mount.
fn cpu_cgroup_dir(pid: i32) -> std::path::PathBuf {
    use hab::stack::cgroup::{Hierarchy, cgroup_of};
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let (root, v1) = match Hierarchy::detect().expect("a CPU controller") {
        Hierarchy::V1(r) => (r, true),
        Hierarchy::V2(r) => (r, false),
    };
    root.join(cgroup_of(&text, v1).unwrap().trim_start_matches('/'))
}

/// `nr_throttled` of a cgroup's cpu.stat: how many periods its quota ran out.
fn nr_throttled(dir: &std::path::Path) -> u64 {
    let stat = std::fs::read_to_string(dir.join("cpu.stat")).unwrap();
    stat.lines()
        .find_map(|l| l.strip_prefix("nr_throttled "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no nr_throttled in {stat}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_server_runs_capped_in_a_cgroup_of_its_own_until_released() {
    if common::skip_unless_allowed(
        "cgroup",
        "a_throttled_server_runs_capped_in_a_cgroup_of_its_own_until_released",
        hab::stack::cgroup::Hierarchy::detect().err(),
    ) {
        return;
    }
    use hab::stack::NodeRef;
    let tmp = tempfile::tempdir().unwrap();
    let dirs = stack_dirs(&tmp);
    let mut stack = Stack::start(&options(), &dirs).await.unwrap();
    let node = NodeRef::BackendData(0);
    let pid = stack.pids(node).unwrap().server.as_raw();
    let own = cpu_cgroup_dir(pid);

    // Unthrottling what is not throttled is an error, not a no-op.
    let e = stack.unthrottle_node(node).await.unwrap_err().to_string();
    assert!(e.contains("it is not throttled"), "{e}");

    stack.throttle_node(node, 10.0).await.unwrap();
    let capped = cpu_cgroup_dir(pid);
    assert_ne!(capped, own);
    assert!(
        capped
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("hab-throttle-"),
        "{}",
        capped.display()
    );
    let e = stack
        .throttle_node(node, 1.0)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("throttled already"), "{e}");
    // Redis still answers, but work that needs CPU runs into the cap (10 ms per 100 ms).
    let client = redis::Client::open(stack.backend_url()).unwrap();
    // Starved, a reply takes longer than the client's default timeout.
    let config =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(60)));
    let mut con = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    let before = nr_throttled(&capped);
    // A Lua loop of some 40 ms of CPU (4 ns an iteration here): several periods' quota.
    let sum: i64 = redis::cmd("EVAL")
        .arg("local x = 0 for i = 1, 10000000 do x = x + 1 end return x")
        .arg(0)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(sum, 10_000_000);
    let after = nr_throttled(&capped);
    assert!(
        after > before,
        "the quota never ran out: {before} → {after}"
    );

    stack.unthrottle_node(node).await.unwrap();
    assert_eq!(cpu_cgroup_dir(pid), own);
    assert!(!capped.exists(), "{} left behind", capped.display());

    // A throttle still in place at shutdown is released, its cgroup removed.
    stack.throttle_node(node, 50.0).await.unwrap();
    let capped = cpu_cgroup_dir(pid);
    stack.shutdown().await;
    assert!(!capped.exists(), "{} left behind", capped.display());
}
