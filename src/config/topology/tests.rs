use std::path::Path;

use super::*;
use crate::config::{ConfigError, parse_topology};
use crate::testing::assert_has;

const MINIMAL: &str = "name = \"t\"\n[broker]\nnodes = 1\n[backend]\n";

/// Parses `text` as `topologies/bad.toml` and returns the error text.
fn err(text: &str) -> String {
    match parse_topology(text, Path::new("topologies/bad.toml")) {
        Ok(t) => panic!("accepted: {t:?}"),
        Err(e) => e.to_string(),
    }
}

/// The diagnostics for MINIMAL with `edit` applied.
fn diags(edit: impl FnOnce(&mut Topology)) -> Vec<String> {
    let mut t: Topology = toml::from_str(MINIMAL).unwrap();
    edit(&mut t);
    t.validate().iter().map(ToString::to_string).collect()
}

#[test]
fn keepalive_is_off_or_at_least_100ms_and_only_for_habs_worker() {
    let t = parse_topology(
        &format!("{MINIMAL}keepalive = \"2s\"\n"),
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(t.backend.keepalive, Duration::from_secs(2));
    let e = parse_topology(
        &format!("{MINIMAL}keepalive = 2\n"),
        Path::new("topologies/bad.toml"),
    )
    .unwrap_err()
    .to_string();
    assert_has(
        &e,
        &["topologies/bad.toml", "line 5", "keepalive", "\"10s\""],
    );
    for (bad, want) in [
        (Duration::from_millis(50), "got 50ms"),
        (Duration::from_micros(150_500), "got 150ms 500us"),
    ] {
        let got = diags(|t| t.backend.keepalive = bad);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with(
                "backend.keepalive: must be \"0s\" (off) or whole milliseconds, at least 100ms"
            ) && got[0].contains(want),
            "{got:?}"
        );
    }
    let got = diags(|t| {
        t.backend.keepalive = Duration::from_secs(1);
        t.workers.kind = WorkerKind::Celery;
    });
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("only hab's own worker sends Redis keepalives"),
        "{got:?}"
    );
    assert_eq!(
        diags(|t| t.backend.keepalive = Duration::from_millis(100)),
        Vec::<String>::new()
    );
}

#[test]
fn network_is_loopback_unless_namespaces_are_asked_for() {
    let t = parse_topology(MINIMAL, Path::new("t.toml")).unwrap();
    assert_eq!(t.network, NetworkKind::Loopback);
    assert!(
        !toml::to_string(&t).unwrap().contains("network"),
        "the default stays out of serialized topologies"
    );
    let t = parse_topology(
        &format!("network = \"namespaces\"\n{MINIMAL}"),
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(t.network, NetworkKind::Namespaces);
    assert!(
        toml::to_string(&t)
            .unwrap()
            .contains("network = \"namespaces\"")
    );
    assert_has(
        &err(&format!("network = \"netns\"\n{MINIMAL}")),
        &[
            "topologies/bad.toml",
            "line 1",
            "unknown variant `netns`, expected `loopback` or `namespaces`",
        ],
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    for f in ["ha-netns.toml", "ha-netns-minreplicas.toml"] {
        let t = crate::config::load_topology(&root.join(f)).unwrap();
        assert_eq!(t.network, NetworkKind::Namespaces, "{f}");
    }
}

#[test]
fn defaults_apply_when_optional_fields_and_sections_are_omitted() {
    let t = parse_topology(MINIMAL, Path::new("t.toml")).unwrap();
    assert_eq!(t.description, "");
    assert_eq!(
        t.broker,
        BrokerConfig {
            nodes: 1,
            queue: QueueKind::Classic,
            durable: true,
            persistent: true,
            confirms: true,
            heartbeat: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(60),
            net_ticktime: None,
            management: false,
        }
    );
    assert_eq!(
        t.backend,
        BackendConfig {
            replicas: 0,
            result_ttl: Duration::from_secs(86_400),
            startup_timeout: Duration::from_secs(20),
            sentinels: 0,
            sentinel_quorum: 2,
            down_after: Duration::from_secs(1),
            failover_timeout: Duration::from_secs(5),
            min_replicas_to_write: 0,
            min_replicas_max_lag: Duration::from_secs(2),
            master_name: "hab".into(),
            keepalive: Duration::ZERO,
        }
    );
    assert_eq!(t.proxy, None);
    assert_eq!(
        t.workers,
        WorkersConfig {
            kind: WorkerKind::Hab,
            count: 1,
            concurrency: None,
            prefetch_multiplier: 4,
            acks: AckMode::Late,
            pool: None,
            celery_dir: None,
            track_started: false,
            limits: Default::default(),
        }
    );
    // A [workers] section with only some fields keeps the other defaults.
    let t = parse_topology(
        &format!("{MINIMAL}[workers]\ncount = 3\n"),
        Path::new("t.toml"),
    )
    .unwrap();
    assert_eq!(t.workers.count, 3);
    assert_eq!(t.workers.prefetch_multiplier, 4);
    assert_eq!(t.workers.acks, AckMode::Late);
}

#[test]
fn concurrency_defaults_to_cpu_count_and_prefetch_saturates() {
    let cpus = std::thread::available_parallelism().unwrap().get() as u32;
    let mut w = WorkersConfig::default();
    assert_eq!(w.concurrency(), cpus);
    assert_eq!(u32::from(w.prefetch()), (cpus * 4).min(65_535));
    w.concurrency = Some(2);
    w.prefetch_multiplier = 3;
    assert_eq!((w.concurrency(), w.prefetch()), (2, 6));
    w.concurrency = Some(1024);
    w.prefetch_multiplier = 1000;
    assert_eq!(w.prefetch(), u16::MAX);
}

#[test]
fn unknown_fields_are_rejected_at_every_level() {
    let e = err(&format!("bogus = 1\n{MINIMAL}"));
    assert_has(
        &e,
        &[
            "topology file topologies/bad.toml: ",
            "line 1, column 1",
            "unknown field `bogus`, expected one of `name`, `description`, `broker`, `backend`, `proxy`, `workers`",
        ],
    );
    let e = err("name = \"t\"\n[broker]\nnodes = 1\nnode = 2\n[backend]\n");
    assert_has(&e, &["line 4", "unknown field `node`", "`nodes`, `queue`"]);
    let e = err(&format!("{MINIMAL}ttl = \"1s\"\n"));
    assert_has(&e, &["line 5", "unknown field `ttl`", "`result_ttl`"]);
    let e = err(&format!("{MINIMAL}[workers]\nprefetch = 1\n"));
    assert_has(
        &e,
        &[
            "line 6",
            "unknown field `prefetch`",
            "`prefetch_multiplier`",
        ],
    );
    let e = err(&format!("{MINIMAL}[proxy]\nport = 1\n"));
    assert_has(
        &e,
        &["line 6", "unknown field `port`", "`check_interval`, `fall`"],
    );
    let e = err(&format!("{MINIMAL}sentinel = 3\n"));
    assert_has(&e, &["line 5", "unknown field `sentinel`", "`sentinels`"]);
}

#[test]
fn wrong_types_name_the_line_and_the_expected_type() {
    let e = err("name = \"t\"\n[broker]\nnodes = \"one\"\n[backend]\n");
    assert_has(
        &e,
        &[
            "line 3, column 9",
            "nodes = \"one\"",
            "invalid type: string \"one\", expected u32",
        ],
    );
    let e = err("name = \"t\"\n[broker]\nnodes = -1\n[backend]\n");
    assert_has(&e, &["line 3", "invalid value: integer `-1`, expected u32"]);
    let e = err("name = \"t\"\n[broker]\nnodes = 1\nconfirms = \"yes\"\n[backend]\n");
    assert_has(&e, &["line 4", "expected a boolean"]);
    let e = err("name = \"t\"\n[broker]\nnodes = 1\nheartbeat = 10\n[backend]\n");
    assert_has(
        &e,
        &[
            "line 4",
            "heartbeat = 10",
            "expected a duration string",
            r#""500ms", "10s", "2m""#,
        ],
    );
}

#[test]
fn bad_durations_name_the_field_and_show_the_format() {
    let e = err("name = \"t\"\n[broker]\nnodes = 1\nheartbeat = \"10 parsecs\"\n[backend]\n");
    assert_has(
        &e,
        &[
            "topologies/bad.toml",
            "line 4, column 13",
            "heartbeat = \"10 parsecs\"",
            r#"invalid duration "10 parsecs" (unknown unit "parsecs")"#,
            r#"durations look like "500ms", "10s", "2m""#,
        ],
    );
    let e = err(&format!("{MINIMAL}result_ttl = \"86400\"\n"));
    assert_has(
        &e,
        &[
            "line 5",
            "result_ttl = \"86400\"",
            "time unit needed",
            "\"10s\"",
        ],
    );
    let e = err(&format!("{MINIMAL}startup_timeout = \"\"\n"));
    assert_has(&e, &["line 5", "startup_timeout", "empty", "\"10s\""]);
}

#[test]
fn bad_enum_values_list_the_allowed_values() {
    let e = err("name = \"t\"\n[broker]\nnodes = 1\nqueue = \"stream\"\n[backend]\n");
    assert_has(
        &e,
        &[
            "line 4",
            "unknown variant `stream`, expected one of `classic`, `quorum`, `mirrored`",
        ],
    );
    let e = err(&format!("{MINIMAL}[workers]\nacks = \"sometimes\"\n"));
    assert_has(
        &e,
        &[
            "line 6",
            "unknown variant `sometimes`, expected `late` or `early`",
        ],
    );
    let e = err(&format!("{MINIMAL}[workers]\nkind = \"dramatiq\"\n"));
    assert_has(
        &e,
        &[
            "line 6",
            "unknown variant `dramatiq`, expected `hab` or `celery`",
        ],
    );
    let e = err(&format!(
        "{MINIMAL}[workers]\nkind = \"celery\"\npool = \"gevent\"\n"
    ));
    assert_has(
        &e,
        &["line 7", "expected one of `prefork`, `threads`, `solo`"],
    );
}

#[test]
fn missing_required_fields_are_named() {
    assert_has(
        &err("[broker]\nnodes = 1\n[backend]\n"),
        &["line 1", "missing field `name`"],
    );
    // [broker] and [backend] may be left out (an external stack's nodes are listed in
    // [external]); a local one then is the standalone default.
    let t = parse_topology("name = \"t\"\n", Path::new("t.toml")).unwrap();
    assert_eq!((t.broker.nodes, t.backend.replicas), (1, 0));
    // Everything inside [broker] has a default (nodes = 1): an empty table is fine.
    assert_eq!(
        parse_topology("name = \"t\"\n[broker]\n[backend]\n", Path::new("t.toml"))
            .unwrap()
            .broker
            .nodes,
        1
    );
}

#[test]
fn validation_reports_every_range_rule_with_its_location() {
    assert_eq!(diags(|_| {}), Vec::<String>::new());
    type Edit = Box<dyn FnOnce(&mut Topology)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|t| t.name = String::new()),
            "name: must not be empty",
        ),
        (
            Box::new(|t| t.name = "a/b".into()),
            "name: \"a/b\" contains '/'; use only letters",
        ),
        (
            Box::new(|t| t.broker.nodes = 0),
            "broker.nodes: must be between 1 and 9, got 0",
        ),
        (
            Box::new(|t| t.broker.nodes = 10),
            "broker.nodes: must be between 1 and 9, got 10",
        ),
        (
            Box::new(|t| t.broker.queue = QueueKind::Mirrored),
            "broker.queue: \"mirrored\" needs broker.nodes >= 2 (got 1)",
        ),
        (
            Box::new(|t| t.broker.heartbeat = Duration::from_millis(500)),
            "broker.heartbeat: must be \"0s\" (disabled) or between 1s and 600s, got 500ms",
        ),
        (
            Box::new(|t| t.broker.heartbeat = Duration::from_secs(601)),
            "broker.heartbeat: must be \"0s\" (disabled) or between 1s and 600s, got 10m 1s",
        ),
        (
            Box::new(|t| t.broker.net_ticktime = Some(Duration::from_secs(1))),
            "broker.net_ticktime: must be whole seconds between 2s and 600s (Erlang's net_ticktime; absent = 60s), got 1s",
        ),
        (
            Box::new(|t| t.broker.net_ticktime = Some(Duration::from_millis(2500))),
            "broker.net_ticktime: must be whole seconds between 2s and 600s",
        ),
        (
            Box::new(|t| t.broker.startup_timeout = Duration::ZERO),
            "broker.startup_timeout: must be greater than zero",
        ),
        (
            Box::new(|t| t.backend.replicas = 6),
            "backend.replicas: must be between 0 and 5, got 6",
        ),
        (
            Box::new(|t| t.backend.result_ttl = Duration::from_millis(999)),
            "backend.result_ttl: must be at least 1s",
        ),
        (
            Box::new(|t| t.backend.startup_timeout = Duration::ZERO),
            "backend.startup_timeout: must be greater than zero",
        ),
        (
            Box::new(|t| t.workers.count = 0),
            "workers.count: must be between 1 and 64, got 0",
        ),
        (
            Box::new(|t| t.workers.count = 65),
            "workers.count: must be between 1 and 64, got 65",
        ),
        (
            Box::new(|t| t.workers.concurrency = Some(0)),
            "workers.concurrency: must be between 1 and 1024, got 0",
        ),
        (
            Box::new(|t| t.workers.concurrency = Some(1025)),
            "workers.concurrency: must be between 1 and 1024, got 1025",
        ),
        (
            Box::new(|t| t.workers.prefetch_multiplier = 0),
            "workers.prefetch_multiplier: must be between 1 and 1000, got 0",
        ),
        (
            Box::new(|t| t.workers.prefetch_multiplier = 1001),
            "workers.prefetch_multiplier: must be between 1 and 1000, got 1001",
        ),
        (
            Box::new(|t| t.workers.track_started = true),
            "workers.track_started: only applies to kind = \"celery\" (hab's own worker stores final states only)",
        ),
        (
            Box::new(|t| t.workers.pool = Some(CeleryPool::Solo)),
            "workers.pool: only applies to kind = \"celery\" (hab's own worker has no pool)",
        ),
    ];
    for (edit, want) in cases {
        let got = diags(edit);
        assert_eq!(got.len(), 1, "{want}: {got:?}");
        assert!(got[0].starts_with(want), "want {want:?}, got {:?}", got[0]);
    }
}

#[test]
fn validation_accepts_the_edges_of_each_range() {
    let ok = diags(|t| {
        t.name = "ha-3.quorum_v2".into();
        t.broker.nodes = 9;
        t.broker.queue = QueueKind::Mirrored;
        t.broker.heartbeat = Duration::ZERO;
        t.backend.replicas = 5;
        t.backend.result_ttl = Duration::from_secs(1);
        t.workers.count = 64;
        t.workers.concurrency = Some(1024);
        t.workers.prefetch_multiplier = 1000;
    });
    assert_eq!(ok, Vec::<String>::new());
    assert_eq!(
        diags(|t| t.broker.heartbeat = Duration::from_secs(600)),
        Vec::<String>::new()
    );
}

#[test]
fn an_empty_proxy_section_takes_every_default() {
    let t = parse_topology(&format!("{MINIMAL}[proxy]\n"), Path::new("t.toml")).unwrap();
    let p = t.proxy.unwrap();
    assert_eq!(p, ProxyConfig::default());
    assert_eq!(p.check_interval, Duration::from_millis(250));
    assert_eq!((p.fall, p.rise), (2, 2));
    assert_eq!(p.timeout_connect, Duration::from_millis(100));
    assert_eq!(p.timeout_client, Duration::from_secs(3600));
    assert_eq!(p.timeout_server, Duration::from_secs(3600));
    assert!(p.observe_layer4);
    // A proxied standalone (one node, no replica) is allowed.
    assert_eq!(t.broker.nodes, 1);
    assert_eq!(t.backend.replicas, 0);
}

#[test]
fn validation_of_the_ha_fields_names_each_location() {
    type Edit = Box<dyn FnOnce(&mut Topology)>;
    let with_proxy = |t: &mut Topology| t.proxy = Some(ProxyConfig::default());
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|t| t.backend.sentinels = 3),
            "backend.sentinels: 3 Sentinel(s) need a replica to promote; set backend.replicas >= 1",
        ),
        (
            Box::new(|t| {
                t.backend.replicas = 1;
                t.backend.sentinels = 8;
            }),
            "backend.sentinels: must be between 0 and 7, got 8",
        ),
        (
            Box::new(|t| {
                t.backend.replicas = 1;
                t.backend.sentinels = 3;
                t.backend.sentinel_quorum = 4;
            }),
            "backend.sentinel_quorum: must be between 1 and backend.sentinels (3), got 4",
        ),
        (
            Box::new(|t| {
                t.backend.replicas = 1;
                t.backend.sentinels = 3;
                t.backend.sentinel_quorum = 0;
            }),
            "backend.sentinel_quorum: must be between 1 and backend.sentinels (3), got 0",
        ),
        (
            Box::new(|t| t.backend.down_after = Duration::ZERO),
            "backend.down_after: must be whole milliseconds, at least 1ms, got 0s",
        ),
        (
            Box::new(|t| t.backend.failover_timeout = Duration::from_micros(1500)),
            "backend.failover_timeout: must be whole milliseconds, at least 1ms, got 1ms 500us",
        ),
        (
            Box::new(|t| t.backend.min_replicas_to_write = 1),
            "backend.min_replicas_to_write: must not exceed backend.replicas (0), got 1",
        ),
        (
            Box::new(|t| t.backend.min_replicas_max_lag = Duration::from_millis(1500)),
            "backend.min_replicas_max_lag: must be whole seconds, at least 1s",
        ),
        (
            Box::new(|t| t.backend.min_replicas_max_lag = Duration::ZERO),
            "backend.min_replicas_max_lag: must be whole seconds, at least 1s",
        ),
        (
            Box::new(|t| t.backend.master_name = "my master".into()),
            "backend.master_name: \"my master\" is not a usable Sentinel master name",
        ),
        (
            Box::new(|t| t.backend.master_name = String::new()),
            "backend.master_name: \"\" is not a usable Sentinel master name",
        ),
        (
            Box::new(move |t| {
                with_proxy(t);
                t.proxy.as_mut().unwrap().check_interval = Duration::from_millis(5);
            }),
            "proxy.check_interval: must be whole milliseconds, at least 10ms, got 5ms",
        ),
        (
            Box::new(move |t| {
                with_proxy(t);
                t.proxy.as_mut().unwrap().fall = 0;
            }),
            "proxy.fall: must be between 1 and 100, got 0",
        ),
        (
            Box::new(move |t| {
                with_proxy(t);
                t.proxy.as_mut().unwrap().rise = 101;
            }),
            "proxy.rise: must be between 1 and 100, got 101",
        ),
        (
            Box::new(move |t| {
                with_proxy(t);
                t.proxy.as_mut().unwrap().timeout_connect = Duration::ZERO;
            }),
            "proxy.timeout_connect: must be whole milliseconds, at least 1ms, got 0s",
        ),
        (
            Box::new(move |t| {
                with_proxy(t);
                t.proxy.as_mut().unwrap().timeout_client = Duration::ZERO;
            }),
            "proxy.timeout_client: must be whole milliseconds",
        ),
        (
            Box::new(move |t| {
                with_proxy(t);
                t.proxy.as_mut().unwrap().timeout_server = Duration::from_nanos(1);
            }),
            "proxy.timeout_server: must be whole milliseconds",
        ),
        (
            Box::new(move |t| {
                with_proxy(t);
                t.proxy.as_mut().unwrap().master_min_uptime = Some(Duration::from_millis(1500));
            }),
            "proxy.master_min_uptime: must be whole seconds between 1s and 1h (Redis reports uptime_in_seconds), got 1s 500ms",
        ),
    ];
    for (edit, want) in cases {
        let got = diags(edit);
        assert_eq!(got.len(), 1, "{want}: {got:?}");
        assert!(got[0].starts_with(want), "want {want:?}, got {:?}", got[0]);
    }
    // Sentinels off: the quorum is not looked at. With replicas, everything fits.
    assert_eq!(
        diags(|t| t.backend.sentinel_quorum = 9),
        Vec::<String>::new()
    );
    let ok = diags(|t| {
        t.broker.nodes = 3;
        t.backend.replicas = 2;
        t.backend.sentinels = 3;
        t.backend.sentinel_quorum = 3;
        t.backend.min_replicas_to_write = 2;
        t.backend.min_replicas_max_lag = Duration::from_secs(10);
        t.backend.master_name = "my-master_1.x".into();
        t.proxy = Some(ProxyConfig {
            check_interval: Duration::from_millis(10),
            fall: 1,
            rise: 100,
            ..ProxyConfig::default()
        });
    });
    assert_eq!(ok, Vec::<String>::new());
}

#[test]
fn shipped_topologies_parse_and_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let standalone = crate::config::load_topology(&root.join("standalone.toml")).unwrap();
    assert_eq!(standalone.proxy, None);
    assert_eq!(standalone.backend.sentinels, 0);
    let ha = crate::config::load_topology(&root.join("ha.toml")).unwrap();
    assert_eq!(ha.broker.nodes, 3);
    assert_eq!(ha.broker.queue, QueueKind::Quorum);
    assert_eq!(ha.broker.heartbeat, Duration::from_secs(5));
    assert_eq!(
        (
            ha.backend.replicas,
            ha.backend.sentinels,
            ha.backend.sentinel_quorum
        ),
        (1, 3, 2)
    );
    assert_eq!(
        ha.proxy,
        Some(ProxyConfig {
            fail_back: true,
            ..ProxyConfig::default()
        })
    );
    let guard = crate::config::load_topology(&root.join("ha-uptime-guard.toml")).unwrap();
    assert_eq!(
        guard.proxy.as_ref().and_then(|p| p.master_min_uptime),
        Some(Duration::from_secs(20))
    );
    let keep = crate::config::load_topology(&root.join("ha-keep-sessions.toml")).unwrap();
    assert_eq!(
        keep.proxy.as_ref().map(|p| p.backend_shutdown_sessions),
        Some(false)
    );
    let mirrored = crate::config::load_topology(&root.join("ha-mirrored.toml")).unwrap();
    assert_eq!(mirrored.proxy, ha.proxy);
    assert_eq!(mirrored.broker.queue, QueueKind::Mirrored);
    assert_eq!(mirrored.broker.nodes, 3);
}

#[test]
fn shipped_idle_topologies_differ_only_in_heartbeat_keepalive_timeouts_and_acks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let load = |f: &str| crate::config::load_topology(&root.join(f)).unwrap();
    let s5 = Duration::from_secs(5);
    let cases = [
        ("idle-hb0-t5s.toml", 0, 0, s5, AckMode::Late),
        ("idle-hb2-t5s.toml", 2, 2, s5, AckMode::Late),
        (
            "idle-hb0-t1h.toml",
            0,
            0,
            Duration::from_secs(3600),
            AckMode::Late,
        ),
        ("idle-hb0-t5s-early.toml", 0, 0, s5, AckMode::Early),
    ];
    for (file, hb, ka, timeout, acks) in cases {
        let t = load(file);
        assert_eq!(format!("{}.toml", t.name), file);
        assert_eq!((t.broker.nodes, t.backend.replicas), (1, 0), "{file}");
        assert_eq!(t.broker.heartbeat, Duration::from_secs(hb), "{file}");
        assert_eq!(t.backend.keepalive, Duration::from_secs(ka), "{file}");
        let p = t.proxy.as_ref().expect("behind HAProxy");
        assert_eq!(
            (p.timeout_client, p.timeout_server),
            (timeout, timeout),
            "{file}"
        );
        assert_eq!(t.workers.acks, acks, "{file}");
        assert_eq!(t.workers.concurrency, Some(2), "{file}");
    }
    let plan =
        crate::config::load_workload_plan(&root.join("../workloads/idle-timeout.toml")).unwrap();
    let gaps: Vec<_> = plan.workloads.iter().map(|w| w.idle_before).collect();
    assert_eq!(
        gaps,
        [
            None,
            Some(Duration::from_secs(8)),
            Some(Duration::from_secs(8))
        ]
    );
    // The sleeps and the gaps are longer than the 5 s timeouts.
    assert_eq!(
        plan.workloads[0].task,
        crate::config::TaskSpec::Sleep { seconds: 7.0 }
    );
}

#[test]
fn invalid_file_error_names_file_and_every_problem() {
    let text = "name = \"t\"\n[broker]\nnodes = 1\nqueue = \"mirrored\"\nheartbeat = \"0.5s\"\n[backend]\n";
    let e = parse_topology(text, Path::new("topologies/bad.toml")).unwrap_err();
    let ConfigError::Invalid {
        kind, diagnostics, ..
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(*kind, "topology");
    let locations: Vec<_> = diagnostics.iter().map(|d| d.location.as_str()).collect();
    assert_eq!(locations, ["broker.queue", "broker.heartbeat"]);
    assert_has(
        &e.to_string(),
        &[
            "topology file topologies/bad.toml: 2 problems:\n  broker.queue: ",
            "\n  broker.heartbeat: ",
        ],
    );
}

#[test]
fn quorum_queues_cannot_be_made_non_durable() {
    let t = parse_topology(
        "name = \"t\"\n[broker]\nqueue = \"quorum\"\ndurable = false\n[backend]\n",
        Path::new("t.toml"),
    );
    let e = t.unwrap_err().to_string();
    assert!(
        e.contains("broker.durable") && e.contains("always durable"),
        "{e}"
    );
}
