//! Unit tests of the generated config and the stats helpers.

use super::*;

fn layout() -> HaproxyLayout {
    HaproxyLayout {
        broker_port: 50000,
        backend_port: 50001,
        broker_servers: vec![40001, 40002, 40003],
        redis_servers: vec![40011, 40012],
        stats_socket: PathBuf::from("/run/logs/haproxy.sock"),
        stats_tcp_port: 40009,
        state_file: PathBuf::from("/run/logs/haproxy.state"),
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).collect()
}

#[test]
fn broker_backend_has_node0_first_and_the_others_as_backups() {
    let cfg = haproxy_config(&layout(), &HaproxyOptions::default());
    let l = lines(&cfg);
    let observe = "observe layer4 error-limit 1 on-error mark-down";
    let check = "check inter 250ms fall 2 rise 2 on-marked-down shutdown-sessions";
    for want in [
        "frontend broker".to_string(),
        "bind 127.0.0.1:50000".to_string(),
        format!("default_backend {BROKER_BACKEND}"),
        format!("server rabbit0 127.0.0.1:40001 {check} {observe}"),
        format!("server rabbit1 127.0.0.1:40002 {check} {observe} backup"),
        format!("server rabbit2 127.0.0.1:40003 {check} {observe} backup"),
        "option redispatch".into(),
        "retries 3".into(),
        "mode tcp".into(),
    ] {
        assert!(l.contains(&want.as_str()), "missing {want:?} in\n{cfg}");
    }
    assert_eq!(cfg.matches(" backup").count(), 2, "{cfg}");
}

#[test]
fn timeouts_logging_and_stats_socket() {
    let opts = HaproxyOptions {
        check_interval: Duration::from_secs(1),
        fall: 3,
        rise: 5,
        timeout_connect: Duration::from_millis(500),
        timeout_client: Duration::from_secs(5),
        timeout_server: Duration::from_secs(3600),
        observe_layer4: false,
        ..HaproxyOptions::default()
    };
    let cfg = haproxy_config(&layout(), &opts);
    let l = lines(&cfg);
    for want in [
        "log stdout format iso local0 info",
        "stats socket /run/logs/haproxy.sock level admin expose-fd listeners",
        "server-state-file /run/logs/haproxy.state",
        "load-server-state-from-file global",
        "stats socket ipv4@127.0.0.1:40009 level admin",
        "timeout connect 500ms",
        "timeout client 5000ms",
        "timeout server 3600000ms",
        "timeout check 1000ms",
        "server rabbit0 127.0.0.1:40001 check inter 1000ms fall 3 rise 5 on-marked-down shutdown-sessions",
    ] {
        assert!(l.contains(&want), "missing {want:?} in\n{cfg}");
    }
    assert!(!cfg.contains("observe"), "{cfg}");
}

#[test]
fn redis_backend_passes_only_the_master() {
    let cfg = haproxy_config(&layout(), &HaproxyOptions::default());
    let l = lines(&cfg);
    let start = l
        .iter()
        .position(|x| *x == format!("backend {REDIS_BACKEND}"))
        .unwrap();
    let body = &l[start + 1..];
    assert_eq!(
        &body[..7],
        [
            "option tcp-check",
            "tcp-check send PING\\r\\n",
            "tcp-check expect string +PONG",
            "tcp-check send info\\ replication\\r\\n",
            "tcp-check expect string role:master",
            "tcp-check send QUIT\\r\\n",
            "tcp-check expect string +OK",
        ]
    );
    let servers: Vec<_> = body.iter().filter(|x| x.starts_with("server ")).collect();
    assert_eq!(servers.len(), 2);
    assert!(servers[0].starts_with("server redis0 127.0.0.1:40011 check inter 250ms"));
    assert!(servers[1].starts_with("server redis1 127.0.0.1:40012 check"));
    assert!(servers.iter().all(|s| !s.contains("backup")));
    assert!(
        servers
            .iter()
            .all(|s| s.contains("on-marked-down shutdown-sessions"))
    );
    assert!(l.contains(&"frontend backend"));
    assert!(l.contains(&"bind 127.0.0.1:50001"));
    // The check's expect must time out on a replica within one interval.
    assert!(l.contains(&"timeout check 250ms"));
}

/// `show stat` as HAProxy 2.6 prints it (columns shortened to the first 40).
const SHOW_STAT: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,\n\
broker,FRONTEND,,,0,1,262120,1,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,,,,\n\
broker_nodes,rabbit0,0,0,0,1,,1,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,3,3,,1,3,1,,1,,2,0,,1,L4CON,,0,,\n\
broker_nodes,rabbit1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,0,1,0,0,40,0,,1,3,2,,0,,2,0,,0,L4OK,,0,,\n\
broker_nodes,rabbit2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP 1/2,1,0,1,1,0,40,0,,1,3,3,,0,,2,0,,0,* L4CON,,0,,\n\
broker_nodes,BACKEND,0,0,0,1,26212,1,0,0,0,0,,0,0,0,0,UP,1,0,2,,1,40,0,,1,3,0,,1,,1,0,,1,,,,,\n\
backend_nodes,redis0,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN 1/2,1,1,0,0,0,40,0,,1,5,1,,0,,2,0,,0,L7OK,0,0,,\n\
backend_nodes,redis1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,40,0,,1,5,2,,0,,2,0,,0,INI,,,,\n";

#[test]
fn show_stat_csv_is_parsed_by_column_name() {
    let s = parse_show_stat(SHOW_STAT).unwrap();
    assert_eq!(s.len(), 5, "{s:?}");
    assert_eq!(
        s[0],
        ServerState {
            backend: BROKER_BACKEND.into(),
            server: "rabbit0".into(),
            status: "DOWN".into(),
            backup: false,
            check_status: "L4CON".into(),
            last_change_s: Some(3),
        }
    );
    assert!(s[1].backup && s[1].is_up() && s[1].is_settled());
    assert_eq!(s[2].status, "UP 1/2");
    assert_eq!(s[2].check_status, "L4CON");
    assert!(s[2].is_up() && !s[2].is_settled());
    assert!(!s[3].is_up() && !s[3].is_settled()); // DOWN 1/2: recovering, not used yet
    assert!(s[4].is_up() && !s[4].is_settled()); // INI: no check finished yet
    assert_eq!(
        s.iter().map(|x| x.index()).collect::<Vec<_>>(),
        [Some(0), Some(1), Some(2), Some(0), Some(1)]
    );
    assert!(parse_show_stat("garbage").is_err());
    assert!(
        parse_show_stat("# pxname,svname\n")
            .unwrap_err()
            .contains("status")
    );
}

#[test]
fn routing_prefers_an_up_normal_server_then_the_first_up_backup() {
    let mut s = parse_show_stat(SHOW_STAT).unwrap();
    // rabbit0 DOWN: the first UP backup.
    assert_eq!(routed_server(&s, BROKER_BACKEND).unwrap().server, "rabbit1");
    // rabbit1 down too: rabbit2 is still UP (failing, 1/2).
    s[1].status = "DOWN".into();
    assert_eq!(routed_server(&s, BROKER_BACKEND).unwrap().server, "rabbit2");
    // rabbit0 back: it wins over every backup.
    s[0].status = "UP".into();
    s[1].status = "UP".into();
    assert_eq!(routed_server(&s, BROKER_BACKEND).unwrap().server, "rabbit0");
    for x in s.iter_mut() {
        x.status = "DOWN".into();
    }
    assert!(routed_server(&s, BROKER_BACKEND).is_none());
    assert!(routed_server(&s, "nope").is_none());
}

#[test]
fn settled_needs_finished_checks_and_an_up_server_per_backend() {
    let s = parse_show_stat(SHOW_STAT).unwrap();
    assert!(settled(&s).unwrap_err().contains("rabbit2 not settled"));
    let mut s: Vec<ServerState> = s
        .into_iter()
        .map(|mut x| {
            x.status = x.status.split(' ').next().unwrap().into();
            x.check_status = "L7OK".into();
            x
        })
        .collect();
    assert_eq!(settled(&s), Ok(()));
    s[3].status = "DOWN".into();
    s[4].status = "DOWN".into();
    assert_eq!(settled(&s), Err(format!("no server UP in {REDIS_BACKEND}")));
}

#[test]
fn version_comes_from_the_banner() {
    assert_eq!(
        version_from_banner("HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/"),
        Some("2.6.12".into())
    );
    assert_eq!(version_from_banner("nothing"), None);
}

#[test]
fn at_least_regex_matches_exactly_the_numbers_from_n() {
    assert_eq!(at_least_regex(20), "(20|2[1-9]|[3-9][0-9]|[1-9][0-9]{2,})");
    for n in [
        0, 1, 5, 9, 10, 19, 20, 29, 99, 100, 101, 190, 999, 1000, 3600,
    ] {
        let re = regex::Regex::new(&format!("^{}$", at_least_regex(n))).unwrap();
        for v in 0..5000u64 {
            assert_eq!(re.is_match(&v.to_string()), v >= n, "n={n} v={v} {re}");
        }
        // Leading zeros are not how Redis writes numbers, and must not pass below n.
        assert!(!re.is_match("0") || n == 0, "n={n}");
    }
}

#[test]
fn redis_sessions_and_uptime_guard_follow_the_options() {
    let opts = HaproxyOptions {
        backend_shutdown_sessions: false,
        master_min_uptime_s: Some(20),
        ..HaproxyOptions::default()
    };
    let cfg = haproxy_config(&layout(), &opts);
    let l = lines(&cfg);
    let redis: Vec<_> = l.iter().filter(|x| x.starts_with("server redis")).collect();
    assert_eq!(redis.len(), 2);
    assert!(
        redis
            .iter()
            .all(|s| !s.contains("shutdown-sessions") && s.contains("check inter 250ms")),
        "{cfg}"
    );
    // The broker servers keep it.
    assert_eq!(
        l.iter()
            .filter(|x| x.starts_with("server rabbit")
                && x.contains("on-marked-down shutdown-sessions"))
            .count(),
        3
    );
    let start = l
        .iter()
        .position(|x| *x == format!("backend {REDIS_BACKEND}"))
        .unwrap();
    assert_eq!(
        &l[start + 1..start + 10],
        [
            "option tcp-check",
            "tcp-check send PING\\r\\n",
            "tcp-check expect string +PONG",
            "tcp-check send info\\ server\\r\\n",
            "tcp-check expect rstring uptime_in_seconds:(20|2[1-9]|[3-9][0-9]|[1-9][0-9]{2,})[^0-9]",
            "tcp-check send info\\ replication\\r\\n",
            "tcp-check expect string role:master",
            "tcp-check send QUIT\\r\\n",
            "tcp-check expect string +OK",
        ]
    );
    let topo = crate::config::ProxyConfig {
        master_min_uptime: Some(Duration::from_secs(20)),
        ..crate::config::ProxyConfig::default()
    };
    let o = HaproxyOptions::from_config(&topo);
    assert_eq!(o.master_min_uptime_s, Some(20));
    assert!(o.backend_shutdown_sessions);
    assert_eq!(o.startup_timeout, Duration::from_secs(35));
    assert!(!haproxy_config(&layout(), &HaproxyOptions::default()).contains("uptime"));
}

#[test]
fn fail_back_closes_backup_sessions_when_the_primary_returns() {
    let opts = HaproxyOptions {
        fail_back: true,
        ..HaproxyOptions::default()
    };
    let cfg = haproxy_config(&layout(), &opts);
    let primary = cfg.lines().find(|l| l.contains("server rabbit0")).unwrap();
    assert!(
        primary.ends_with("on-marked-up shutdown-backup-sessions"),
        "{primary}"
    );
    assert_eq!(cfg.matches("shutdown-backup-sessions").count(), 1, "{cfg}");
    let off = haproxy_config(&layout(), &HaproxyOptions::default());
    assert!(!off.contains("shutdown-backup-sessions"), "{off}");
}

#[test]
fn a_reload_that_changed_a_servers_state_is_said() {
    let state = |server: &str, status: &str| ServerState {
        backend: "backend_nodes".into(),
        server: server.into(),
        status: status.into(),
        backup: false,
        check_status: "L7OK".into(),
        last_change_s: None,
    };
    let before = [state("redis0", "UP"), state("redis1", "DOWN")];
    assert_eq!(changed_by_reload(&before, &before), None);
    // UP 1/2 is still UP: a check failing, not a transition.
    assert_eq!(
        changed_by_reload(
            &before,
            &[state("redis0", "UP 1/2"), state("redis1", "DOWN")]
        ),
        None
    );
    assert_eq!(
        changed_by_reload(&before, &[state("redis0", "DOWN"), state("redis1", "DOWN")]).unwrap(),
        "backend_nodes/redis0 was UP and is DOWN"
    );
    assert_eq!(
        changed_by_reload(&before, &[state("redis0", "UP")]).unwrap(),
        "backend_nodes/redis1 is gone"
    );
}
