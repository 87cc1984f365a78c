use super::*;

#[test]
fn every_client_event_kind_reads_back_as_written() {
    use ClientEventKind::*;
    for k in [Error, Reconnected, Nack, Republish, Rediscovered] {
        assert_eq!(parse_client_kind(k.as_str()), Some(k));
    }
    assert_eq!(parse_client_kind("Error"), None);
    assert_eq!(parse_client_kind(""), None);
}

#[test]
fn every_confirm_state_and_seen_via_reads_back_as_written() {
    for c in ConfirmState::ALL {
        assert_eq!(ConfirmState::parse(c.as_str()), Some(c));
    }
    for v in [None, Some(SeenVia::Notification), Some(SeenVia::Read)] {
        assert_eq!(parse_seen_via(seen_via_str(v)), v);
    }
}

fn read_back_error(file: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    std::fs::write(&path, text).unwrap();
    let workloads = HashMap::from([("smoke".to_string(), 0)]);
    let e = match file {
        "tasks.csv" => read_tasks(&path, &workloads).map(|_| ()),
        _ => read_events(&path).map(|_| ()),
    };
    let e = e.expect_err("the file is bad");
    assert_eq!(e.path, path);
    e.what
}

#[test]
fn a_bad_tasks_or_events_csv_is_refused_naming_the_column_or_the_line() {
    let head = TASKS_REQUIRED.join(",");
    let id = "6f1c2d34-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
    let good = format!("{id},smoke,1,2,3,acked,4,read,1,0,ok");
    assert_eq!(
        read_back_error("tasks.csv", "task_id,workload\n"),
        "no column intended_unix_us; is this a tasks.csv of hab?"
    );
    assert_eq!(
        read_back_error(
            "tasks.csv",
            &format!("{head}\n{good}\nnot-a-uuid,smoke,1,,,acked,,,0,0,lost\n")
        ),
        "line 3: task_id \"not-a-uuid\" is not a UUID"
    );
    assert_eq!(
        read_back_error(
            "tasks.csv",
            &format!("{head}\n{id},other,1,,,acked,,,0,0,lost\n")
        ),
        "line 2: workload \"other\" is not a workload of the run"
    );
    assert_eq!(
        read_back_error(
            "tasks.csv",
            &format!("{head}\n{id},smoke,soon,,,acked,,,0,0,lost\n")
        ),
        "line 2: intended_unix_us \"soon\" is not a number"
    );
    assert_eq!(
        read_back_error(
            "events.csv",
            "at_unix_us,source,kind,detail\n5,producer,error,x\n6,producer,exploded,y\n"
        ),
        "line 3: unknown event kind"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.csv");
    std::fs::write(&path, format!("{head}\n{good}\n")).unwrap();
    let rows = read_tasks(&path, &HashMap::from([("smoke".to_string(), 0)])).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].executions, rows[0].outcome), (1, Outcome::Ok));
    assert_eq!(rows[0].task.result_status, Some(ResultStatus::Success));
}

#[test]
fn timeline_csv_gets_one_cpu_column_per_sampled_process() {
    assert_eq!(cpu_column("broker.node[0]"), "cpu_broker_node0_pct");
    assert_eq!(cpu_column("hab.worker w1"), "cpu_hab_worker_w1_pct");
    let mut report = crate::record::tests_support::empty_report();
    let row = |s: i64| crate::metrics::timeline::TimelineRow {
        second: s,
        unix_s: 100 + s,
        workload: "w".into(),
        ..Default::default()
    };
    report.timeline = vec![row(0), row(1)];
    let per_second = std::collections::BTreeMap::from([(
        101,
        std::collections::BTreeMap::from([
            ("proxy".to_string(), 12.34),
            ("broker.node[0]".to_string(), 98.0),
        ]),
    )]);
    crate::metrics::cpu::annotate_timeline(&mut report.timeline, &per_second);
    let ledger = crate::ledger::Ledger::new(1);
    let mut out = Vec::new();
    TimelineCsv
        .write(
            RunData {
                report: &report,
                ledger: &ledger,
                events: &[],
            },
            &mut out,
        )
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{},cpu_broker_node0_pct,cpu_proxy_pct",
            TIMELINE_HEADER.join(",")
        )
    );
    assert!(
        lines[1].ends_with(",,"),
        "no sample in the first second: {}",
        lines[1]
    );
    assert!(lines[2].ends_with(",98.0,12.3"), "{}", lines[2]);
}
