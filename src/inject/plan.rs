//! A workload's faults as a plan, before anything runs: the order they fire in
//! ([`timeline`]), whether an external topology can run them ([`check_plan`],
//! [`prepare`]) and every command an external run would run (`--dry-run`, [`dry_run`]).

use std::path::Path;
use std::time::Duration;

use crate::config::external::{ExternalConfig, NodeKind, expand, split_host_port};
use crate::config::{FaultSpec, Topology};
use crate::fault::{RestartAs, Role};
use crate::stack::NodeRef;
use crate::stack::external::{placeholders, url_host_port};

/// Every repetition of every fault, as `(fault index, repetition, planned offset)`, in
/// the order they are planned to fire.
pub fn timeline(faults: &[FaultSpec]) -> Vec<(usize, u32, Duration)> {
    let mut t: Vec<_> = faults
        .iter()
        .enumerate()
        .flat_map(|(i, f)| (0..f.repeat).map(move |k| (i, k, f.planned_at(k))))
        .collect();
    t.sort_by_key(|&(i, k, at)| (at, i, k));
    t
}

/// Checks an external topology against the plan ([`check_plan`]) and loads its
/// credentials (`external.credentials`, relative to the topology file, then the
/// environment). Errors are bad input (exit 2), located in the file they concern. A
/// local topology passes with no credentials.
pub fn prepare(
    topology_path: &Path,
    topology: &Topology,
    workload_path: &Path,
    plan: &crate::config::WorkloadPlan,
    allow_faults: bool,
) -> Result<crate::credentials::Credentials, crate::config::ConfigError> {
    use crate::config::{ConfigError, Diagnostic};
    let Some(cfg) = &topology.external else {
        return Ok(crate::credentials::Credentials::default());
    };
    let diagnostics = check_plan(cfg, plan, allow_faults);
    if !diagnostics.is_empty() {
        return Err(ConfigError::Invalid {
            kind: "workload",
            path: workload_path.to_path_buf(),
            diagnostics,
        });
    }
    let file = cfg.credentials.as_ref().map(|f| {
        topology_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(f)
    });
    crate::credentials::Credentials::load(file.as_deref()).map_err(|message| ConfigError::Invalid {
        kind: "topology",
        path: topology_path.to_path_buf(),
        diagnostics: vec![Diagnostic::new("external.credentials", message)],
    })
}

/// The kind of node a role is, whatever it resolves to.
pub fn role_node_kind(role: Role) -> NodeKind {
    match role {
        Role::BrokerPrimary | Role::BrokerQueueLeader | Role::BrokerNode(_) => NodeKind::Broker,
        Role::BackendMaster | Role::BackendReplica | Role::BackendNode(_) => NodeKind::Backend,
        Role::Sentinel(_) => NodeKind::Sentinel,
        Role::Proxy => NodeKind::Proxy,
    }
}

/// The node a role names without asking any server (`broker.node[1]`, `sentinel[0]`,
/// `proxy`); `None` for roles resolved when the fault fires.
pub fn static_node(role: Role) -> Option<NodeRef> {
    match role {
        Role::BrokerNode(i) => Some(NodeRef::Broker(i)),
        Role::BackendNode(i) => Some(NodeRef::BackendData(i)),
        Role::Sentinel(i) => Some(NodeRef::Sentinel(i)),
        Role::Proxy => Some(NodeRef::Proxy),
        _ => None,
    }
}

/// Before an external run: the workload's faults need `--allow-faults`, and every fault
/// needs its `[[external.fault]]` entry (with a `revert` when the workload brings the
/// node back). Problems are located in the workload file.
pub fn check_plan(
    cfg: &ExternalConfig,
    plan: &crate::config::WorkloadPlan,
    allow_faults: bool,
) -> Vec<crate::config::Diagnostic> {
    use crate::config::Diagnostic;
    let mut out = Vec::new();
    let faults: usize = plan.workloads.iter().map(|w| w.faults.len()).sum();
    if faults > 0 && !allow_faults {
        out.push(Diagnostic::new(
            "faults",
            format!(
                "{faults} fault(s) would run commands against servers hab does not own; pass --allow-faults to run them (and --dry-run first to see every command)"
            ),
        ));
    }
    for (i, w) in plan.workloads.iter().enumerate() {
        for (j, f) in w.faults.iter().enumerate() {
            let at = format!("workload[{i}] ({:?}).faults[{j}]", w.name);
            let nodes = role_node_kind(f.target);
            match cfg.commands_for(nodes, f.kind) {
                None => out.push(Diagnostic::new(
                    &at,
                    format!(
                        "{} {} needs an [[external.fault]] entry with nodes = {:?}, kind = {:?} in the topology",
                        f.kind.as_str(),
                        f.target,
                        nodes.as_str(),
                        f.kind.as_str()
                    ),
                )),
                Some(c) if f.out_for().is_some() && c.revert.is_none() => out.push(Diagnostic::new(
                    &at,
                    format!(
                        "the workload brings {} back, but the [[external.fault]] entry for nodes = {:?}, kind = {:?} has no revert command",
                        f.target,
                        nodes.as_str(),
                        f.kind.as_str()
                    ),
                )),
                Some(_) => {}
            }
            if f.restart_as == Some(RestartAs::Master) {
                out.push(Diagnostic::new(
                    format!("{at}.restart_as"),
                    "an external stack's node comes back however its revert command brings it back; remove restart_as",
                ));
            }
        }
    }
    out
}

/// Every command an external run would run, in order, with the placeholders filled in
/// as far as they are known without asking the servers (`broker.primary` and
/// `backend.master` are resolved when the fault fires).
pub fn dry_run(cfg: &ExternalConfig, plan: &crate::config::WorkloadPlan) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut n = 0;
    for (wi, w) in plan.workloads.iter().enumerate() {
        for (i, k, planned) in timeline(&w.faults) {
            let f = &w.faults[i];
            let nodes = role_node_kind(f.target);
            let _ = writeln!(
                out,
                "workload {wi} ({}) at +{}: {} {} (repetition {k})",
                w.name,
                humantime::format_duration(planned),
                f.kind.as_str(),
                f.target
            );
            let Some(c) = cfg.commands_for(nodes, f.kind) else {
                let _ = writeln!(
                    out,
                    "  (no [[external.fault]] for nodes = {:?}, kind = {:?})",
                    nodes.as_str(),
                    f.kind.as_str()
                );
                continue;
            };
            let values = match static_node(f.target) {
                Some(node) => {
                    let endpoint = match node {
                        NodeRef::Broker(i) => {
                            cfg.broker_nodes.get(i).and_then(|u| url_host_port(u))
                        }
                        NodeRef::BackendData(i) => {
                            cfg.backend_nodes.get(i).and_then(|u| url_host_port(u))
                        }
                        NodeRef::Sentinel(i) => {
                            cfg.sentinels.get(i).and_then(|a| split_host_port(a).ok())
                        }
                        NodeRef::Proxy => cfg.broker.as_deref().and_then(url_host_port),
                    };
                    placeholders(f.target, node, f.kind, f.cpu_percent, endpoint)
                }
                None => vec![
                    ("role", f.target.to_string()),
                    ("kind", f.kind.as_str().to_string()),
                    ("node", format!("<{} when the fault fires>", f.target)),
                    ("index", "<index>".into()),
                    ("host", "<host>".into()),
                    ("port", "<port>".into()),
                    (
                        "cpu_percent",
                        f.cpu_percent.map(|p| p.to_string()).unwrap_or_default(),
                    ),
                ],
            };
            let _ = writeln!(out, "  apply:  {}", expand(&c.apply, &values));
            n += 1;
            if let Some(after) = f.out_for_repetition(k) {
                if let Some(r) = &c.revert {
                    let _ = writeln!(
                        out,
                        "  after {}, revert: {}",
                        humantime::format_duration(after),
                        expand(r, &values)
                    );
                    n += 1;
                }
                if let Some(h) = &c.health {
                    let _ = writeln!(
                        out,
                        "  until it exits 0 (at most {}), health: {}",
                        humantime::format_duration(cfg.health_timeout),
                        expand(h, &values)
                    );
                    n += 1;
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "{n} command(s); each is run with sh -c and killed after {} (command_timeout)",
        humantime::format_duration(cfg.command_timeout)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultKind;
    use crate::testing::assert_has;

    fn spec(at: u64, repeat: u32, every: u64) -> FaultSpec {
        FaultSpec {
            target: Role::BrokerPrimary,
            kind: FaultKind::Kill,
            at: Duration::from_secs(at),
            duration: None,
            restart_after: Some(Duration::from_secs(1)),
            restart_as: None,
            cpu_percent: None,
            duration_max: None,
            drawn_ms: Vec::new(),
            repeat,
            every: Some(Duration::from_secs(every)),
        }
    }

    #[test]
    fn repetitions_of_several_faults_interleave_in_time_order() {
        let t = timeline(&[spec(5, 3, 20), spec(15, 2, 20)]);
        let at: Vec<_> = t.iter().map(|&(i, k, d)| (i, k, d.as_secs())).collect();
        assert_eq!(
            at,
            vec![(0, 0, 5), (1, 0, 15), (0, 1, 25), (1, 1, 35), (0, 2, 45)]
        );
    }

    fn cfg_and_plan() -> (ExternalConfig, crate::config::WorkloadPlan) {
        let cfg: ExternalConfig = toml::from_str(
            r#"
            broker = "amqp://127.0.0.1:5672"
            broker_nodes = ["amqp://10.0.0.1:5672", "amqp://10.0.0.2:5672"]
            backend = "redis://127.0.0.1:6379"
            [[fault]]
            nodes = "broker"
            kind = "kill"
            apply = "ssh {host} sudo systemctl kill -s KILL rabbitmq-server"
            revert = "ssh {host} sudo systemctl start rabbitmq-server"
            health = "ssh {host} sudo rabbitmq-diagnostics -q check_running"
            "#,
        )
        .unwrap();
        let plan = crate::config::parse_workload_plan(
            r#"
            name = "p"
            [[workload]]
            name = "f"
            task = { kind = "trivial" }
            count = 100
            arrival = "rate"
            rate_per_s = 10
            [[workload.fault]]
            target = "broker.node[1]"
            kind = "kill"
            at = "2s"
            restart_after = "3s"
            [[workload.fault]]
            target = "backend.master"
            kind = "kill"
            at = "5s"
            "#,
            std::path::Path::new("w.toml"),
        )
        .unwrap();
        (cfg, plan)
    }

    #[test]
    fn faults_need_the_flag_and_a_command_entry() {
        let (cfg, plan) = cfg_and_plan();
        let p: Vec<String> = check_plan(&cfg, &plan, false)
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert!(
            p[0].starts_with("faults: 2 fault(s) would run commands"),
            "{p:?}"
        );
        assert!(
            p[1].contains("faults[1]") && p[1].contains("nodes = \"backend\", kind = \"kill\""),
            "{p:?}"
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(check_plan(&cfg, &plan, true).len(), 1);
    }

    #[test]
    fn dry_run_lists_every_command_in_order_with_what_is_known() {
        let (cfg, plan) = cfg_and_plan();
        let text = dry_run(&cfg, &plan);
        let apply = text
            .find("apply:  ssh 10.0.0.2 sudo systemctl kill")
            .expect(&text);
        let revert = text
            .find("after 3s, revert: ssh 10.0.0.2 sudo systemctl start")
            .expect(&text);
        let health = text
            .find("health: ssh 10.0.0.2 sudo rabbitmq-diagnostics")
            .expect(&text);
        assert!(apply < revert && revert < health, "{text}");
        assert_has(
            &text,
            &["kill backend.master (repetition 0)\n  (no [[external.fault]]"],
        );
        assert!(text.contains("3 command(s)"), "{text}");
    }
}
