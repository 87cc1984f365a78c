use std::path::Path;

use super::*;
use crate::config::parse_workload_plan;
use crate::testing::assert_has;

/// A plan with one workload whose body lines are `body`.
fn one(body: &str) -> String {
    format!("name = \"w\"\n\n[[workload]]\nname = \"a\"\n{body}\n")
}

/// A one-workload plan (count 1, burst) whose `task` is the given TOML value.
fn with_task(task: &str) -> String {
    one(&format!("task = {task}\ncount = 1\narrival = \"burst\""))
}

/// Parses `text` as `workloads/bad.toml` and returns the error text.
fn err(text: &str) -> String {
    match parse_workload_plan(text, Path::new("workloads/bad.toml")) {
        Ok(p) => panic!("accepted: {p:?}"),
        Err(e) => e.to_string(),
    }
}

fn ok(text: &str) -> WorkloadPlan {
    parse_workload_plan(text, Path::new("workloads/ok.toml")).unwrap()
}

#[test]
fn defaults_apply_when_optional_fields_are_omitted() {
    let p = ok(&with_task("{ kind = \"trivial\" }"));
    assert_eq!(p.description, "");
    assert_eq!(p.warmup_tasks, 0);
    assert_eq!(p.drain_timeout, Duration::from_secs(60));
    assert_eq!(p.scratch_dir, None);
    assert_eq!(p.workloads[0].rate_per_s, None);
    let p = ok(&format!(
        "scratch_dir = \"/var/tmp\"\n{}",
        with_task("{ kind = \"trivial\" }")
    ));
    assert_eq!(p.scratch_dir.as_deref(), Some(Path::new("/var/tmp")));
}

#[test]
fn every_task_kind_parses_and_has_its_celery_name() {
    let cases = [
        ("{ kind = \"trivial\" }", TaskSpec::Trivial, "hab.trivial"),
        (
            "{ kind = \"sleep\", seconds = 10.0 }",
            TaskSpec::Sleep { seconds: 10.0 },
            "hab.sleep",
        ),
        // An integer is accepted where seconds are expected.
        (
            "{ kind = \"sleep\", seconds = 2 }",
            TaskSpec::Sleep { seconds: 2.0 },
            "hab.sleep",
        ),
        (
            "{ kind = \"write_zeros\", bytes = 1000 }",
            TaskSpec::WriteZeros { bytes: 1000 },
            "hab.write_zeros",
        ),
        (
            "{ kind = \"factorial\", n = 7 }",
            TaskSpec::Factorial { n: 7 },
            "hab.factorial",
        ),
    ];
    for (table, want, name) in cases {
        let p = ok(&with_task(table));
        assert_eq!(p.workloads[0].task, want);
        assert_eq!(want.task_name(), name);
    }
    // The [workload.task] table form works as well as the inline one.
    let p = ok(&one(
        "count = 1\narrival = \"burst\"\n[workload.task]\nkind = \"factorial\"\nn = 3",
    ));
    assert_eq!(p.workloads[0].task, TaskSpec::Factorial { n: 3 });
}

#[test]
fn unknown_fields_are_rejected_at_every_level_including_inside_task() {
    // Inside task, next to a unit variant: serde's internally tagged enums would let this through.
    let e = err(&with_task("{ kind = \"trivial\", extra = 1 }"));
    assert_has(
        &e,
        &[
            "workload file workloads/bad.toml: ",
            "line 5, column 28",
            "unknown field `extra`, expected one of `kind`, `seconds`, `bytes`, `n`",
        ],
    );
    let e = err(&with_task("{ kind = \"sleep\", seconds = 1.0, extra = 1 }"));
    assert_has(&e, &["line 5, column 41", "unknown field `extra`"]);
    let e = err(&one(
        "count = 1\narrival = \"burst\"\n[workload.task]\nkind = \"sleep\"\nseconds = 1\nsecs = 2",
    ));
    assert_has(&e, &["line 10", "unknown field `secs`"]);
    // A field that exists, but for another kind.
    let e = err(&with_task("{ kind = \"trivial\", seconds = 1 }"));
    assert_has(
        &e,
        &[
            "line 5",
            "field `seconds` is not used by kind = \"trivial\" (it takes no other fields)",
        ],
    );
    let e = err(&with_task("{ kind = \"sleep\", seconds = 1, bytes = 1 }"));
    assert_has(
        &e,
        &["field `bytes` is not used by kind = \"sleep\" (it takes only `seconds`)"],
    );
    // In a [[workload]] table and at the top level.
    let e = err(&one(
        "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nrate = 3",
    ));
    assert_has(
        &e,
        &[
            "line 8",
            "unknown field `rate`, expected one of `name`, `task`, `count`, `arrival`, `rate_per_s`",
        ],
    );
    let e = err(&format!(
        "warmup = 3\n{}",
        with_task("{ kind = \"trivial\" }")
    ));
    assert_has(&e, &["line 1", "unknown field `warmup`", "`warmup_tasks`"]);
    let e = err(&format!(
        "{}[[workloads]]\nname = \"x\"\n",
        with_task("{ kind = \"trivial\" }")
    ));
    assert_has(&e, &["unknown field `workloads`", "`workload`"]);
}

#[test]
fn wrong_types_name_the_line_and_the_expected_type() {
    let e = err(&with_task("{ kind = \"sleep\", seconds = \"ten\" }"));
    assert_has(
        &e,
        &[
            "line 5, column 36",
            "invalid type: string \"ten\", expected f64",
        ],
    );
    let e = err(&with_task("{ kind = \"factorial\", n = -5 }"));
    assert_has(&e, &["line 5", "invalid value: integer `-5`, expected u64"]);
    let e = err(&with_task("\"trivial\""));
    assert_has(
        &e,
        &[
            "line 5",
            "expected a task table such as { kind = \"trivial\" } or { kind = \"sleep\", seconds = 10.0 }",
        ],
    );
    let e = err(&one(
        "task = { kind = \"trivial\" }\ncount = \"many\"\narrival = \"burst\"",
    ));
    assert_has(
        &e,
        &["line 6", "invalid type: string \"many\", expected u64"],
    );
    let e = err(&one(
        "task = { kind = \"trivial\" }\ncount = 1\narrival = \"rate\"\nrate_per_s = \"fast\"",
    ));
    assert_has(&e, &["line 8", "expected f64"]);
}

#[test]
fn bad_durations_name_the_field_and_show_the_format() {
    let e = err(&format!(
        "drain_timeout = \"2 fortnights\"\n{}",
        with_task("{ kind = \"trivial\" }")
    ));
    assert_has(
        &e,
        &[
            "workloads/bad.toml",
            "line 1, column 17",
            "drain_timeout = \"2 fortnights\"",
            "(unknown unit \"fortnights\")",
            r#"durations look like "500ms", "10s", "2m""#,
        ],
    );
}

#[test]
fn bad_enum_values_list_the_allowed_values() {
    let e = err(&with_task("{ kind = \"nap\" }"));
    assert_has(
        &e,
        &[
            "line 5",
            "unknown variant `nap`, expected one of `trivial`, `sleep`, `write_zeros`, `factorial`",
        ],
    );
    let e = err(&one(
        "task = { kind = \"trivial\" }\ncount = 1\narrival = \"poisson\"",
    ));
    assert_has(
        &e,
        &[
            "line 7",
            "unknown variant `poisson`, expected `burst` or `rate`",
        ],
    );
}

#[test]
fn missing_required_fields_are_named() {
    let e = err(&with_task("{ seconds = 1 }"));
    assert_has(
        &e,
        &[
            "line 5",
            "missing field `kind`: one of \"trivial\", \"sleep\"",
        ],
    );
    let e = err(&with_task("{ kind = \"sleep\" }"));
    assert_has(
        &e,
        &[
            "line 5",
            "missing field `seconds`: kind = \"sleep\" needs it (how long to sleep, in seconds",
        ],
    );
    let e = err(&with_task("{ kind = \"write_zeros\" }"));
    assert_has(
        &e,
        &["missing field `bytes`: kind = \"write_zeros\" needs it"],
    );
    let e = err(&with_task("{ kind = \"factorial\" }"));
    assert_has(&e, &["missing field `n`: kind = \"factorial\" needs it"]);
    let e = err(&one("task = { kind = \"trivial\" }\ncount = 1"));
    assert_has(&e, &["line 3", "[[workload]]", "missing field `arrival`"]);
    let e = err(&one("count = 1\narrival = \"burst\""));
    assert_has(&e, &["missing field `task`"]);
    let e = err(&with_task("{ kind = \"trivial\" }").replace("name = \"w\"\n", ""));
    assert_has(&e, &["missing field `name`"]);
}

/// A valid one-workload plan, edited, then validated; diagnostics as text.
fn diags(edit: impl FnOnce(&mut WorkloadPlan)) -> Vec<String> {
    let mut p: WorkloadPlan = toml::from_str(&with_task("{ kind = \"trivial\" }")).unwrap();
    edit(&mut p);
    p.validate().iter().map(ToString::to_string).collect()
}

fn workload(name: &str, task: TaskSpec) -> Workload {
    Workload::burst(name, task, 1)
}

#[test]
fn validation_reports_every_rule_with_its_location() {
    assert_eq!(diags(|_| {}), Vec::<String>::new());
    type Edit = Box<dyn FnOnce(&mut WorkloadPlan)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|p| p.name = String::new()),
            "name: must not be empty",
        ),
        (
            Box::new(|p| p.name = "séed".into()),
            "name: \"séed\" contains 'é'",
        ),
        (
            Box::new(|p| p.warmup_tasks = 1_000_001),
            "warmup_tasks: must be at most 1000000, got 1000001",
        ),
        (
            Box::new(|p| p.drain_timeout = Duration::ZERO),
            "drain_timeout: must be greater than zero",
        ),
        (
            Box::new(|p| p.workloads[0].drain_timeout = Some(Duration::ZERO)),
            "workload[0] (\"a\").drain_timeout: must be greater than zero, e.g. \"30s\" (or absent: the plan's drain_timeout)",
        ),
        (
            Box::new(|p| p.workloads.clear()),
            "workload: at least one [[workload]] table is required",
        ),
        (
            Box::new(|p| p.workloads[0].name = String::new()),
            "workload[0].name: must not be empty",
        ),
        (
            Box::new(|p| p.workloads[0].name = "a b".into()),
            "workload[0] (\"a b\").name: \"a b\" contains ' '",
        ),
        (
            Box::new(|p| p.workloads[0].count = 0),
            "workload[0] (\"a\").count: must be between 1 and 10000000, got 0",
        ),
        (
            Box::new(|p| p.workloads[0].count = 10_000_001),
            "workload[0] (\"a\").count: must be between 1 and 10000000, got 10000001",
        ),
        (
            Box::new(|p| p.workloads[0].arrival = ArrivalKind::Rate),
            "workload[0] (\"a\").rate_per_s: required when arrival = \"rate\" (a positive number of tasks per second)",
        ),
        (
            Box::new(|p| p.workloads[0].rate_per_s = Some(5.0)),
            "workload[0] (\"a\").rate_per_s: only used with arrival = \"rate\"",
        ),
        (
            Box::new(|p| p.workloads[0].task = TaskSpec::Sleep { seconds: -1.0 }),
            "workload[0] (\"a\").task.seconds: must be between 0 and 3600 seconds, got -1",
        ),
        (
            Box::new(|p| p.workloads[0].task = TaskSpec::Sleep { seconds: 3600.5 }),
            "workload[0] (\"a\").task.seconds: must be between 0 and 3600 seconds",
        ),
        (
            Box::new(|p| p.workloads[0].task = TaskSpec::Sleep { seconds: f64::NAN }),
            "workload[0] (\"a\").task.seconds: must be between 0 and 3600 seconds, got NaN",
        ),
        (
            Box::new(|p| p.workloads[0].task = TaskSpec::WriteZeros { bytes: 0 }),
            "workload[0] (\"a\").task.bytes: must be between 1 and 100000000000 bytes, got 0",
        ),
        (
            Box::new(|p| {
                p.workloads[0].task = TaskSpec::WriteZeros {
                    bytes: 100_000_000_001,
                }
            }),
            "workload[0] (\"a\").task.bytes: must be between 1 and 100000000000 bytes",
        ),
        (
            Box::new(|p| p.workloads[0].task = TaskSpec::Factorial { n: 10_000_001 }),
            "workload[0] (\"a\").task.n: must be at most 10000000, got 10000001",
        ),
    ];
    for (edit, want) in cases {
        let got = diags(edit);
        assert_eq!(got.len(), 1, "{want}: {got:?}");
        assert!(got[0].starts_with(want), "want {want:?}, got {:?}", got[0]);
    }
}

#[test]
fn repeat_is_between_1_and_100_located_and_defaults_to_one_run() {
    let body = "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"";
    // Absent: one run; present: that many repetitions, back to back.
    assert_eq!(ok(&one(body)).workloads[0].repeat, 1);
    for n in [1, 5, 100] {
        let p = ok(&one(&format!("{body}\nrepeat = {n}")));
        assert_eq!(p.workloads[0].repeat, n);
    }
    for (bad, shown) in [("0", "got 0"), ("101", "got 101")] {
        let e = err(&one(&format!("{body}\nrepeat = {bad}")));
        assert_has(
            &e,
            &[
                "workload file workloads/bad.toml",
                "workload[0] (\"a\").repeat: must be between 1 and 100",
                shown,
            ],
        );
    }
    // Not a number: the line and the key.
    let e = err(&one(&format!("{body}\nrepeat = \"5\"")));
    assert_has(&e, &["line 8", "repeat"]);
}

#[test]
fn a_repeated_workload_with_faults_or_an_idle_gap_is_refused_located() {
    let fault = "[[workload.fault]]\ntarget = \"broker.primary\"\nkind = \"kill\"\nat = \"1s\"\nrestart_after = \"2s\"";
    let body = "task = { kind = \"trivial\" }\ncount = 100\narrival = \"rate\"\nrate_per_s = 10.0";
    let e = err(&one(&format!("{body}\nrepeat = 3\n{fault}")));
    assert_has(
        &e,
        &[
            "workload[0] (\"a\").repeat: a workload with faults runs once",
            "the fault's own `repeat`",
        ],
    );
    // Once is fine with faults; the fault's own repeat is not the workload's.
    let p = ok(&one(&format!(
        "{body}\nrepeat = 1\n{fault}\nrepeat = 3\nevery = \"3s\""
    )));
    assert_eq!(
        (p.workloads[0].repeat, p.workloads[0].faults[0].repeat),
        (1, 3)
    );
    let e = err(&one(&format!("{body}\nrepeat = 2\nidle_before = \"5s\"")));
    assert_has(
        &e,
        &["workload[0] (\"a\").repeat: a workload with an idle_before gap runs once"],
    );
}

#[test]
fn idle_before_is_a_bounded_positive_duration_located_on_error() {
    let p = ok(&one(
        "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nidle_before = \"8s\"",
    ));
    assert_eq!(p.workloads[0].idle_before, Some(Duration::from_secs(8)));
    assert_eq!(
        ok(&with_task("{ kind = \"trivial\" }")).workloads[0].idle_before,
        None
    );
    // Not a duration string: the line, the key and what a duration looks like.
    let e = err(&one(
        "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nidle_before = 8",
    ));
    assert_has(
        &e,
        &[
            "workload file workloads/bad.toml",
            "line 8",
            "idle_before",
            "\"10s\"",
        ],
    );
    let e = err(&one(
        "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nidle_before = \"8\"",
    ));
    assert_has(&e, &["line 8", "idle_before", "time unit needed"]);
    for (bad, shown) in [
        (Duration::ZERO, "got 0s"),
        (Duration::from_secs(3601), "got 1h 1s"),
    ] {
        let got = diags(|p| p.workloads[0].idle_before = Some(bad));
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].starts_with(
                "workload[0] (\"a\").idle_before: must be greater than zero and at most 1h"
            ) && got[0].contains(shown),
            "{got:?}"
        );
    }
    assert_eq!(
        diags(|p| p.workloads[0].idle_before = Some(Duration::from_secs(3600))),
        Vec::<String>::new()
    );
    // The whole error names the file, then the field.
    let e = err(&one(
        "task = { kind = \"trivial\" }\ncount = 1\narrival = \"burst\"\nidle_before = \"0s\"",
    ));
    assert_has(
        &e,
        &[
            "workload file workloads/bad.toml",
            "workload[0] (\"a\").idle_before: must be greater than zero",
        ],
    );
}

#[test]
fn rate_must_be_finite_positive_and_bounded() {
    for bad in [0.0, -1.0, f64::INFINITY, f64::NAN, 1_000_001.0] {
        let got = diags(|p| {
            p.workloads[0].arrival = ArrivalKind::Rate;
            p.workloads[0].rate_per_s = Some(bad);
        });
        assert_eq!(got.len(), 1, "{bad}: {got:?}");
        assert!(
            got[0].starts_with(
                "workload[0] (\"a\").rate_per_s: must be a number of tasks per second greater than 0 and at most 1000000"
            ),
            "{got:?}"
        );
    }
    for good in [0.001, 1_000_000.0] {
        let got = diags(|p| {
            p.workloads[0].arrival = ArrivalKind::Rate;
            p.workloads[0].rate_per_s = Some(good);
        });
        assert_eq!(got, Vec::<String>::new());
    }
}

#[test]
fn duplicate_names_point_at_the_first_use_and_all_problems_are_collected() {
    let got = diags(|p| {
        p.workloads
            .push(workload("b", TaskSpec::Sleep { seconds: 0.0 }));
        p.workloads
            .push(workload("a", TaskSpec::Factorial { n: 0 }));
        p.workloads.push(Workload {
            arrival: ArrivalKind::Rate,
            ..workload("c", TaskSpec::Sleep { seconds: 4000.0 })
        });
    });
    assert_eq!(
        got,
        [
            "workload[2] (\"a\").name: duplicate name (also used by workload[0]); each workload needs its own name",
            "workload[3] (\"c\").rate_per_s: required when arrival = \"rate\" (a positive number of tasks per second)",
            "workload[3] (\"c\").task.seconds: must be between 0 and 3600 seconds, got 4000",
        ]
    );
}

#[test]
fn invalid_file_error_names_file_and_location() {
    let text = format!(
        "{}\n[[workload]]\nname = \"r\"\ntask = {{ kind = \"trivial\" }}\ncount = 5\narrival = \"rate\"\n",
        with_task("{ kind = \"trivial\" }")
    );
    assert_eq!(
        err(&text),
        "workload file workloads/bad.toml: workload[1] (\"r\").rate_per_s: required when \
         arrival = \"rate\" (a positive number of tasks per second)"
    );
}

/// A rate workload (3000 tasks at 100/s: 30 s of publishing) with one fault table.
fn with_fault(fault: &str) -> String {
    one(&format!(
        "task = {{ kind = \"trivial\" }}\ncount = 3000\narrival = \"rate\"\nrate_per_s = 100.0\n[[workload.fault]]\n{fault}"
    ))
}

#[test]
fn faults_parse_with_roles_kinds_and_repetitions() {
    let p = ok(&with_fault(
        "target = \"broker.primary\"\nkind = \"kill\"\nat = \"5s\"\nrestart_after = \"3s\"\nrepeat = 3\nevery = \"8s\"",
    ));
    let f = &p.workloads[0].faults[0];
    assert_eq!(f.target, crate::fault::Role::BrokerPrimary);
    assert_eq!(f.kind, crate::fault::FaultKind::Kill);
    assert_eq!(f.planned_at(2), Duration::from_secs(21));
    assert_eq!(f.out_for(), Some(Duration::from_secs(3)));
    let p = ok(&with_fault(
        "target = \"backend.master\"\nkind = \"pause\"\nat = \"2s\"\nduration = \"4s\"",
    ));
    assert_eq!(p.workloads[0].faults[0].repeat, 1);
}

#[test]
fn fault_mistakes_are_located_and_explained() {
    assert_has(
        &err(&with_fault(
            "target = \"broker.leader\"\nkind = \"kill\"\nat = \"5s\"",
        )),
        &["line 10, column 10", "unknown role", "broker.queue_leader"],
    );
    assert_has(
        &err(&with_fault(
            "target = \"proxy\"\nkind = \"explode\"\nat = \"5s\"",
        )),
        &["explode", "kill", "pause", "stop"],
    );
    assert_has(
        &err(&with_fault(
            "target = \"proxy\"\nkind = \"pause\"\nat = \"5s\"",
        )),
        &[
            "workload[0] (\"a\").fault[0].duration",
            "required with kind = \"pause\"",
        ],
    );
    assert_has(
        &err(&with_fault(
            "target = \"proxy\"\nkind = \"kill\"\nat = \"5s\"\nduration = \"1s\"",
        )),
        &["fault[0].duration", "only used with kind = \"pause\""],
    );
    assert_has(
        &err(&with_fault(
            "target = \"proxy\"\nkind = \"kill\"\nat = \"5s\"\nrepeat = 3",
        )),
        &["fault[0].every", "required when repeat > 1"],
    );
    assert_has(
        &err(&with_fault(
            "target = \"proxy\"\nkind = \"kill\"\nat = \"5s\"\nrestart_after = \"10s\"\nrepeat = 2\nevery = \"5s\"",
        )),
        &[
            "fault[0].every",
            "longer than the time the target is out (10s)",
        ],
    );
    // 30 s of publishing: a repetition at 5 + 3 × 10 = 35 s never fires.
    assert_has(
        &err(&with_fault(
            "target = \"proxy\"\nkind = \"kill\"\nat = \"5s\"\nrepeat = 4\nevery = \"10s\"",
        )),
        &["fault[0].at", "planned at 35s", "publishes for only 30s"],
    );
    assert_has(
        &err(&with_fault(
            "target = \"proxy\"\nkind = \"kill\"\nat = \"5s\"\nwhen = 1",
        )),
        &["unknown field `when`"],
    );
}

#[test]
fn partition_needs_a_duration_and_a_redis_target() {
    let p = ok(&with_fault(
        "target = \"backend.master\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"4s\"",
    ));
    let f = &p.workloads[0].faults[0];
    assert_eq!(f.kind, crate::fault::FaultKind::Partition);
    assert_eq!(f.out_for(), Some(Duration::from_secs(4)));
    for target in [
        "backend.replica",
        "backend.node[1]",
        "sentinel[2]",
        "broker.primary",
        "broker.queue_leader",
        "broker.node[2]",
    ] {
        ok(&with_fault(&format!(
            "target = \"{target}\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"4s\""
        )));
    }
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"partition\"\nat = \"5s\"",
        )),
        &[
            "workloads/bad.toml",
            "fault[0].duration",
            "required with kind = \"partition\"",
        ],
    );
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"0s\"",
        )),
        &["fault[0].duration", "must be greater than zero"],
    );
    assert_has(
        &err(&with_fault(
            "target = \"proxy\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"4s\"",
        )),
        &[
            "fault[0].target",
            "applies to broker nodes",
            "got \"proxy\": HAProxy stays in the root namespace",
        ],
    );
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"4s\"\nrestart_after = \"1s\"",
        )),
        &[
            "fault[0].restart_after",
            "the partition heals after `duration`",
        ],
    );
    // Repetitions must not overlap a partition that is still in effect.
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"partition\"\nat = \"5s\"\nduration = \"4s\"\nrepeat = 2\nevery = \"3s\"",
        )),
        &[
            "fault[0].every",
            "must be longer than the time the target is out (4s)",
        ],
    );
}

#[test]
fn throttle_needs_a_duration_and_a_share_of_a_core_and_nothing_else_takes_one() {
    let p = ok(&with_fault(
        "target = \"broker.primary\"\nkind = \"throttle\"\nat = \"5s\"\nduration = \"2s\"\ncpu_percent = 2",
    ));
    let f = &p.workloads[0].faults[0];
    assert_eq!(f.kind, crate::fault::FaultKind::Throttle);
    assert_eq!(
        (f.out_for(), f.cpu_percent),
        (Some(Duration::from_secs(2)), Some(2.0))
    );
    assert_has(
        &err(&with_fault(
            "target = \"broker.primary\"\nkind = \"throttle\"\nat = \"5s\"\ncpu_percent = 2",
        )),
        &[
            "workloads/bad.toml",
            "fault[0].duration",
            "required with kind = \"throttle\"",
        ],
    );
    assert_has(
        &err(&with_fault(
            "target = \"broker.primary\"\nkind = \"throttle\"\nat = \"5s\"\nduration = \"2s\"",
        )),
        &["fault[0].cpu_percent", "required with kind = \"throttle\""],
    );
    for bad in ["0", "100", "-3", "250.5"] {
        assert_has(
            &err(&with_fault(&format!(
                "target = \"backend.master\"\nkind = \"throttle\"\nat = \"5s\"\nduration = \"2s\"\ncpu_percent = {bad}"
            ))),
            &["fault[0].cpu_percent", "must be above 0 and below 100"],
        );
    }
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"pause\"\nat = \"5s\"\nduration = \"2s\"\ncpu_percent = 5",
        )),
        &[
            "fault[0].cpu_percent",
            "only used with kind = \"throttle\", got kind = \"pause\"",
        ],
    );
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"throttle\"\nat = \"5s\"\nduration = \"2s\"\ncpu_percent = 5\nrestart_after = \"1s\"",
        )),
        &[
            "fault[0].restart_after",
            "gets its CPU back after `duration`",
        ],
    );
}

#[test]
fn failover_and_restart_as_parse_and_their_mistakes_are_located() {
    let p = ok(&with_fault(
        "target = \"backend.master\"\nkind = \"failover\"\nat = \"5s\"\nrepeat = 2\nevery = \"12s\"",
    ));
    assert_eq!(
        p.workloads[0].faults[0].kind,
        crate::fault::FaultKind::Failover
    );
    assert_eq!(p.workloads[0].faults[0].out_for(), None);
    let p = ok(&with_fault(
        "target = \"backend.master\"\nkind = \"kill\"\nat = \"5s\"\nrestart_after = \"3s\"\nrestart_as = \"master\"",
    ));
    assert_eq!(
        p.workloads[0].faults[0].restart_as,
        Some(crate::fault::RestartAs::Master)
    );
    assert_has(
        &err(&with_fault(
            "target = \"broker.primary\"\nkind = \"failover\"\nat = \"5s\"",
        )),
        &[
            "workloads/bad.toml",
            "workload[0] (\"a\").fault[0].target",
            "only applies to \"backend.master\", got \"broker.primary\"",
        ],
    );
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"failover\"\nat = \"5s\"\nrestart_after = \"1s\"",
        )),
        &[
            "fault[0].restart_after",
            "not used with kind = \"failover\"",
        ],
    );
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"failover\"\nat = \"5s\"\nduration = \"1s\"",
        )),
        &["fault[0].duration", "a failover has no duration"],
    );
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"kill\"\nat = \"5s\"\nrestart_as = \"master\"",
        )),
        &["fault[0].restart_as", "needs restart_after"],
    );
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"pause\"\nat = \"5s\"\nduration = \"1s\"\nrestart_as = \"master\"",
        )),
        &[
            "fault[0].restart_as",
            "only used with kind = \"kill\" or \"stop\"",
        ],
    );
    assert_has(
        &err(&with_fault(
            "target = \"broker.primary\"\nkind = \"kill\"\nat = \"5s\"\nrestart_after = \"1s\"\nrestart_as = \"master\"",
        )),
        &[
            "fault[0].restart_as",
            "only for Redis data nodes",
            "allowed values: \"replica\", \"master\"",
        ],
    );
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"kill\"\nat = \"5s\"\nrestart_after = \"1s\"\nrestart_as = \"primary\"",
        )),
        &[
            "line 14",
            "unknown variant `primary`, expected `replica` or `master`",
        ],
    );
    assert_has(
        &err(&with_fault(
            "target = \"backend.master\"\nkind = \"demote\"\nat = \"5s\"",
        )),
        &["demote", "`failover`"],
    );
}
