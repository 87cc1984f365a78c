use std::path::{Path, PathBuf};
use std::time::Duration;

use super::knob::{self, ApplyKind, FaultScope, KNOBS};
use super::vary::{self, KnobValue, resolve_flag, split_vary};
use super::*;
use crate::config::{load_topology, load_workload_plan};
use crate::fault::Role;
use crate::testing::assert_has;

fn shipped(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn ha() -> Topology {
    load_topology(&shipped("topologies/ha.toml")).unwrap()
}

fn standalone() -> Topology {
    load_topology(&shipped("topologies/standalone.toml")).unwrap()
}

/// The diagnostics of a bad `--vary`, as `location: message` lines.
fn errors(t: &Topology, arg: &str) -> Vec<String> {
    resolve_flag(t, arg)
        .unwrap_err()
        .iter()
        .map(|d| d.to_string())
        .collect()
}

fn texts(k: &VariedKnob) -> Vec<&str> {
    k.values.iter().map(|v| v.text.as_str()).collect()
}

#[test]
fn a_vary_flag_splits_into_key_and_values_or_says_what_it_looks_like() {
    assert_eq!(
        split_vary("proxy.fall=1, 2,3").unwrap(),
        ("proxy.fall", vec!["1", "2", "3"])
    );
    assert_has(
        &split_vary("proxy.fall").unwrap_err(),
        &["KEY=V1,V2", "no '='"],
    );
    assert_has(&split_vary("=1,2").unwrap_err(), &["key is missing"]);
    assert_has(
        &split_vary("proxy.fall=1,,2").unwrap_err(),
        &["proxy.fall: an empty value"],
    );
    assert_has(&split_vary("proxy.fall=").unwrap_err(), &["an empty value"]);
}

#[test]
fn values_are_typed_checked_and_written_as_the_topology_writes_them() {
    let t = ha();
    let fall = resolve_flag(&t, "proxy.fall=1,3").unwrap();
    assert_eq!(fall.knob.key, "proxy.fall");
    assert_eq!(fall.knob.apply, ApplyKind::ProxyReload);
    assert_eq!(fall.knob.scope, FaultScope::Both);
    assert_eq!(fall.current.text, "2");
    assert_eq!(texts(&fall), ["1", "3"]);
    // The reference value is added to the levels when it is not listed.
    let levels: Vec<&str> = fall.levels().iter().map(|v| v.text.as_str()).collect();
    assert_eq!(levels, ["1", "3", "2"]);

    let inter = resolve_flag(&t, "proxy.check_interval=0.25s,1s,50ms").unwrap();
    assert_eq!(inter.current.text, "250ms");
    assert_eq!(texts(&inter), ["250ms", "1s", "50ms"]);
    let others: Vec<&str> = inter.others().iter().map(|v| v.text.as_str()).collect();
    assert_eq!(others, ["1s", "50ms"]);

    let queue = resolve_flag(&t, "broker.queue=classic,quorum").unwrap();
    assert_eq!(queue.knob.apply, ApplyKind::BringUp);
    assert_eq!(queue.current.text, "quorum");

    let down = resolve_flag(&t, "backend.down_after=200ms,5s").unwrap();
    assert_eq!(
        (down.knob.apply, down.knob.scope),
        (ApplyKind::SentinelSet, FaultScope::Backend)
    );
    let hb = resolve_flag(&t, "broker.heartbeat=1s").unwrap();
    assert_eq!(
        (hb.knob.apply, hb.knob.scope),
        (ApplyKind::ReconnectClients, FaultScope::Broker)
    );
    let flag = resolve_flag(&t, "proxy.observe_layer4=false").unwrap();
    assert_eq!(texts(&flag), ["false"]);
}

#[test]
fn every_kind_of_bad_vary_names_the_flag_the_key_the_value_and_what_is_allowed() {
    let t = ha();
    let cases: &[(&str, &[&str])] = &[
        (
            "proxy.inter=1,2",
            &[
                "--vary proxy.inter=1,2: unknown knob \"proxy.inter\"",
                "proxy.check_interval",
            ],
        ),
        (
            "proxy.fall=x",
            &[
                "--vary proxy.fall=x: proxy.fall = x: not a whole number; proxy.fall takes a whole number",
            ],
        ),
        (
            "proxy.fall=0",
            &["--vary proxy.fall=0: proxy.fall = 0: must be between 1 and 100, got 0"],
        ),
        (
            "proxy.check_interval=fast",
            &[
                "proxy.check_interval = fast: ",
                "invalid duration \"fast\"",
                "500ms",
            ],
        ),
        (
            "proxy.check_interval=5ms",
            &["proxy.check_interval = 5ms: must be whole milliseconds, at least 10ms, got 5ms"],
        ),
        (
            "broker.queue=fifo",
            &[
                "broker.queue = fifo: ",
                "unknown variant `fifo`",
                "`quorum`",
            ],
        ),
        (
            "broker.heartbeat=900s",
            &["broker.heartbeat = 900s: ", "between 1s and 600s"],
        ),
        (
            "proxy.observe_layer4=yes",
            &["proxy.observe_layer4 = yes: not true or false"],
        ),
        (
            "backend.min_replicas_to_write=2",
            &[
                "backend.min_replicas_to_write = 2: ",
                "must not exceed backend.replicas (1)",
            ],
        ),
        (
            "backend.down_after=1s,1000ms",
            &["backend.down_after = 1000ms: given twice (as 1s)"],
        ),
        (
            "proxy.fall=2",
            &[
                "proxy.fall: only the topology's own value; give a value other than the topology's own (2)",
            ],
        ),
        ("proxy.fall", &["--vary proxy.fall: expected KEY=V1,V2"]),
    ];
    for (arg, wanted) in cases {
        let got = errors(&t, arg).join("\n");
        assert_has(&got, wanted);
        assert!(got.starts_with(&format!("--vary {arg}: ")), "{got}");
    }
    // Every problem of one flag is reported, each located at the flag.
    let both = errors(&t, "proxy.fall=0,x");
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(
        both.iter()
            .all(|e| e.starts_with("--vary proxy.fall=0,x: "))
    );
}

#[test]
fn a_knob_the_topology_cannot_vary_says_why() {
    let s = standalone();
    assert_has(
        &errors(&s, "proxy.fall=1").join(""),
        &["proxy.fall cannot be varied: topology standalone has no [proxy]"],
    );
    assert_has(
        &errors(&s, "backend.down_after=200ms").join(""),
        &["no Sentinels (backend.sentinels = 0)"],
    );
    assert_has(
        &errors(&s, "backend.min_replicas_to_write=1").join(""),
        &["no Redis replica"],
    );
    // The broker heartbeat is a client setting every topology has.
    assert!(resolve_flag(&s, "broker.heartbeat=1s,5s").is_ok());
    // On an external stack hab only reconnects its own clients.
    let ext = crate::config::parse_topology(
        "name = \"ext\"\n[external]\nbroker = \"amqp://10.0.0.1:5672/%2f\"\n\
         backend = \"redis://10.0.0.1:6379/0\"\n",
        Path::new("ext.toml"),
    )
    .unwrap();
    assert!(resolve_flag(&ext, "broker.heartbeat=1s").is_ok());
    assert_has(
        &errors(&ext, "broker.queue=quorum").join(""),
        &[
            "topology ext is an external stack",
            "not bring the stack up anew",
        ],
    );
    // Clients that ask the Sentinels do not go through HAProxy's Redis side.
    let mut cf = ha();
    cf.clients.backend = crate::config::clients::BackendAccess::Sentinel;
    assert_has(
        &errors(&cf, "proxy.master_min_uptime=20s").join(""),
        &["clients.backend = \"sentinel\""],
    );
}

#[test]
fn every_knob_is_a_field_of_the_topology_schema() {
    let mut full = ha();
    full.proxy.as_mut().unwrap().master_min_uptime = Some(Duration::from_secs(20));
    for k in KNOBS {
        let current = vary::current(&full, k);
        assert!(
            current.toml.is_some(),
            "{} is not a field of the serialized topology",
            k.key
        );
        // Setting the topology's own value gives the topology back.
        assert_eq!(
            vary::apply(&full, &[(k.key, &current)]).unwrap(),
            full,
            "{}",
            k.key
        );
        assert_eq!(knob::find(k.key), Some(k));
    }
    assert!(knob::keys().contains("backend.down_after"));
}

#[test]
fn values_are_applied_generically_and_the_rest_of_the_topology_is_kept() {
    let t = ha();
    let v = |s: &str| KnobValue {
        text: s.into(),
        toml: Some(toml::Value::String(s.into())),
    };
    let one = KnobValue {
        text: "1".into(),
        toml: Some(toml::Value::Integer(1)),
    };
    let changed = vary::apply(
        &t,
        &[
            ("proxy.fall", &one),
            ("backend.down_after", &v("200ms")),
            ("proxy.master_min_uptime", &v("20s")),
        ],
    )
    .unwrap();
    let p = changed.proxy.as_ref().unwrap();
    assert_eq!(p.fall, 1);
    assert_eq!(p.master_min_uptime, Some(Duration::from_secs(20)));
    assert_eq!(changed.backend.down_after, Duration::from_millis(200));
    let mut back = changed.clone();
    back.proxy.as_mut().unwrap().fall = 2;
    back.proxy.as_mut().unwrap().master_min_uptime = None;
    back.backend.down_after = Duration::from_secs(1);
    assert_eq!(back, t);
    // An absent value removes an optional field.
    let absent = KnobValue {
        text: "absent".into(),
        toml: None,
    };
    let removed = vary::apply(&changed, &[("proxy.master_min_uptime", &absent)]).unwrap();
    assert_eq!(removed.proxy.unwrap().master_min_uptime, None);
    // A combination validate() refuses is an error naming the field.
    let e = vary::apply(
        &t,
        &[("broker.queue", &v("mirrored")), ("broker.nodes", &one)],
    )
    .unwrap_err();
    assert_has(
        &e,
        &["broker.queue: \"mirrored\" needs broker.nodes >= 2 (got 1)"],
    );
}

#[test]
fn fault_targets_belong_to_a_side() {
    assert_eq!(FaultScope::of_role(Role::BrokerPrimary), FaultScope::Broker);
    assert_eq!(FaultScope::of_role(Role::BrokerNode(2)), FaultScope::Broker);
    assert_eq!(
        FaultScope::of_role(Role::BackendMaster),
        FaultScope::Backend
    );
    assert_eq!(FaultScope::of_role(Role::Sentinel(0)), FaultScope::Backend);
    assert_eq!(FaultScope::of_role(Role::Proxy), FaultScope::Both);
    assert_eq!(
        FaultScope::Broker.union(FaultScope::Backend),
        FaultScope::Both
    );
    assert_eq!(
        FaultScope::Broker.union(FaultScope::Broker),
        FaultScope::Broker
    );
    assert!(FaultScope::Both.covers(FaultScope::Backend));
    assert!(!FaultScope::Broker.covers(FaultScope::Backend));
}

#[test]
fn the_shipped_default_sweep_varies_the_issues_four_knobs_on_ha() {
    let f = load_sweep_file(&shipped("sweeps/default.toml")).unwrap();
    assert_eq!(f.validate(), vec![]);
    assert_eq!(f.budget, Some(Duration::from_secs(37 * 60)));
    assert_eq!(f.repetitions, Some(2));
    assert_eq!(f.workload, Some(PathBuf::from("workloads/sweep.toml")));
    let knobs = f.resolve(&ha()).unwrap();
    let got: Vec<(&str, Vec<&str>, &str)> = knobs
        .iter()
        .map(|k| (k.knob.key, texts(k), k.current.text.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("proxy.check_interval", vec!["50ms", "250ms", "2s"], "250ms"),
            ("proxy.fall", vec!["1", "2", "3"], "2"),
            ("broker.heartbeat", vec!["1s", "5s", "1m"], "5s"),
            ("backend.down_after", vec!["200ms", "1s", "5s"], "1s"),
        ]
    );
    // The default sweep cannot run on a stack without HAProxy or Sentinels, and says so
    // where in the file.
    let e = f.resolve(&standalone()).unwrap_err();
    let lines: Vec<String> = e.iter().map(|d| d.to_string()).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_has(
        &lines.join("\n"),
        &[
            "knob[0] (\"proxy.check_interval\").values: proxy.check_interval cannot be varied",
            "knob[3] (\"backend.down_after\").values: backend.down_after cannot be varied",
        ],
    );
}

#[test]
fn a_bad_sweep_file_is_located() {
    let p = Path::new("sweeps/bad.toml");
    let text = "name = \"bad name\"\nbudget = \"0s\"\nrepetitions = 0\n\
                [[knob]]\nkey = \"proxy.inter\"\nvalues = [1]\n\
                [[knob]]\nkey = \"proxy.fall\"\nvalues = [1]\n\
                [[knob]]\nkey = \"proxy.fall\"\nvalues = [3]\n";
    let e = parse_sweep_file(text, p).unwrap_err().to_string();
    assert_has(
        &e,
        &[
            "sweep file sweeps/bad.toml: 5 problems:",
            "name: \"bad name\" contains ' '",
            "budget: must be longer than zero",
            "repetitions: must be between 1 and 100, got 0",
            "knob[0] (\"proxy.inter\").key: unknown knob \"proxy.inter\"",
            "knob[2] (\"proxy.fall\").key: also given by knob[1]; give each knob once",
        ],
    );
    let e = parse_sweep_file("name = \"x\"\n", p)
        .unwrap_err()
        .to_string();
    assert_has(&e, &["knob: at least one [[knob]] table"]);
    let e = parse_sweep_file("name = \"x\"\nknobs = 1\n", p)
        .unwrap_err()
        .to_string();
    assert_has(&e, &["sweep file sweeps/bad.toml", "unknown field `knobs`"]);
    let e = parse_sweep_file("name = \"x\"\nbudget = \"soon\"\n", p)
        .unwrap_err()
        .to_string();
    assert_has(&e, &["invalid duration \"soon\""]);
    // Values of the wrong type are located at the knob's values.
    let f = parse_sweep_file(
        "name = \"x\"\n[[knob]]\nkey = \"proxy.fall\"\nvalues = [\"one\", 3]\n",
        p,
    )
    .unwrap();
    let e = f.resolve(&ha()).unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].location, "knob[0] (\"proxy.fall\").values");
    assert_has(&e[0].message, &["proxy.fall = one: ", "expected u32"]);
    let missing = load_sweep_file(Path::new("/nonexistent/s.toml")).unwrap_err();
    assert_has(
        &missing.to_string(),
        &["cannot read sweep file /nonexistent/s.toml"],
    );
}

#[test]
fn repetitions_repeat_each_fault_phase_and_lengthen_it_by_every() {
    let plan = load_workload_plan(&shipped("workloads/sweep.toml")).unwrap();
    assert_eq!(with_repetitions(&plan, 3).unwrap(), plan);
    let five = with_repetitions(&plan, 5).unwrap();
    for (w, before) in five.workloads.iter().zip(&plan.workloads) {
        match w.faults.as_slice() {
            // One fault: 2 more repetitions × 20 s × 200/s more tasks.
            [f] => {
                assert_eq!(f.repeat, 5, "{}", w.name);
                assert_eq!(w.count, before.count + 8000, "{}", w.name);
            }
            // The cost phase and the stall phase's fixed schedule stay as written.
            _ => assert_eq!(w, before),
        }
    }
    let one = with_repetitions(&plan, 1).unwrap();
    assert_eq!(one.workloads[1].count, 11600 - 8000);
    // A fault without `every` cannot be spaced.
    let mut lone = plan.clone();
    lone.workloads[1].faults[0].repeat = 1;
    lone.workloads[1].faults[0].every = None;
    let e = with_repetitions(&lone, 3).unwrap_err();
    assert_eq!(
        e[0].location,
        "workload[1] (\"broker_primary_kill\").fault[0]"
    );
    assert_has(
        &e[0].message,
        &["cannot be repeated 3 times", "needs `every`"],
    );
}

#[test]
fn the_sweep_workload_has_a_cost_phase_four_fault_phases_and_a_stall_phase() {
    let plan = load_workload_plan(&shipped("workloads/sweep.toml")).unwrap();
    let phases = estimate::phases(&plan, &ha());
    type Row<'a> = (&'a str, Option<FaultScope>, Option<(u32, f64)>);
    let got: Vec<Row> = phases
        .iter()
        .map(|p| (p.workload.as_str(), p.scope, p.repetitions))
        .collect();
    let k = Some((3, 20.0));
    assert_eq!(
        got,
        vec![
            ("cost_trivial", None, None),
            ("broker_primary_kill", Some(FaultScope::Broker), k),
            ("broker_primary_pause", Some(FaultScope::Broker), k),
            ("backend_master_kill", Some(FaultScope::Backend), k),
            ("backend_master_pause", Some(FaultScope::Backend), k),
            ("stall", Some(FaultScope::Both), None),
        ]
    );
    // The stall phase: pauses all shorter than a node's death is taken for, then CPU
    // starvation of each side.
    let stall = &plan.workloads[5];
    let kinds: Vec<_> = stall.faults.iter().map(|f| f.kind).collect();
    use crate::fault::FaultKind::{Pause, Throttle};
    assert_eq!(kinds, [Pause, Pause, Throttle, Throttle]);
    // Three pauses of each side, their lengths drawn from the seed, all in 200 ms–1.5 s.
    for f in &stall.faults[..2] {
        assert_eq!(f.repeat, 3);
        assert_eq!(f.drawn_ms.len(), 3);
        assert!(
            f.drawn_ms.iter().all(|ms| (200..=1500).contains(ms)),
            "{:?}",
            f.drawn_ms
        );
    }
    assert_ne!(stall.faults[0].drawn_ms, stall.faults[1].drawn_ms);
    for f in &stall.faults {
        let limit = match f.kind {
            Pause => Duration::from_millis(1500),
            _ => Duration::from_secs(2),
        };
        assert!(f.out_for().unwrap() <= limit, "{f:?}");
    }
    assert!(stall.faults[2..].iter().all(|f| f.cpu_percent == Some(2.0)));
}

#[test]
fn cells_a_sweep_file_asks_for_are_settings_on_the_knobs_levels() {
    let p = Path::new("sweeps/c.toml");
    let head = "name = \"c\"\n[[knob]]\nkey = \"proxy.fall\"\nvalues = [1, 3]\n\
                [[knob]]\nkey = \"backend.down_after\"\nvalues = [\"200ms\", \"5s\"]\n";
    let f = parse_sweep_file(&format!("{head}[[cell]]\n\"proxy.fall\" = 1\n\"backend.down_after\" = \"0.2s\"\n[[cell]]\n\"proxy.fall\" = 3\n"), p).unwrap();
    let t = ha();
    let knobs = f.resolve(&t).unwrap();
    let cells = f.resolve_cells(&t, &knobs).unwrap();
    let texts: Vec<Vec<&str>> = cells
        .iter()
        .map(|c| c.iter().map(|v| v.text.as_str()).collect())
        .collect();
    // 0.2s is 200ms; a knob a cell leaves out keeps the topology's value.
    assert_eq!(texts, vec![vec!["1", "200ms"], vec!["3", "1s"]]);

    // A value off the knob's levels, or of the wrong type, is located at the cell.
    let f = parse_sweep_file(
        &format!("{head}[[cell]]\n\"proxy.fall\" = 5\n\"backend.down_after\" = 7\n"),
        p,
    )
    .unwrap();
    let e = f.resolve_cells(&t, &f.resolve(&t).unwrap()).unwrap_err();
    let lines: Vec<String> = e.iter().map(|d| d.to_string()).collect();
    assert_has(
        &lines.join("\n"),
        &[
            "cell[0].\"proxy.fall\": 5 is not one of the knob's values (1, 3, 2); add it to its values",
            "cell[0].\"backend.down_after\": ",
            "expected a duration string",
        ],
    );
    // A cell naming a knob the sweep does not vary, or none, is refused before any topology.
    let e = parse_sweep_file(
        &format!("{head}[[cell]]\n\"proxy.rise\" = 1\n[[cell]]\n"),
        p,
    )
    .unwrap_err()
    .to_string();
    assert_has(
        &e,
        &[
            "cell[0].\"proxy.rise\": not a knob of this sweep",
            "cell[1]: names no knob",
        ],
    );
}

#[test]
fn the_built_in_default_sweep_is_the_checkouts_and_serves_when_it_is_absent() {
    let on_disk = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_SWEEP_FILE),
    )
    .unwrap();
    assert_eq!(BUILTIN_DEFAULT, on_disk);
    // Elsewhere (the tests run in the checkout, so ask through the parser directly).
    let f = parse_sweep_file(BUILTIN_DEFAULT, Path::new("builtin:sweeps/default.toml")).unwrap();
    assert_eq!(f.knobs.len(), 4);
}
