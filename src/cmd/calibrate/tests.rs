//! Unit tests of the calibration's options, record and table.

use super::*;
use std::collections::BTreeMap;

#[test]
fn rates() {
    assert_eq!(rate(300, 3.0), 100.0);
    assert_eq!(rate(5, 0.0), 0.0);
    assert_eq!(mb_per_s(256 << 20, 2.0), 134.217728);
}

#[test]
fn endpoints_lose_scheme_credentials_and_path() {
    assert_eq!(
        endpoint("amqp://guest:guest@127.0.0.1:5672/%2f"),
        "127.0.0.1:5672"
    );
    assert_eq!(
        endpoint("amqp://127.0.0.1:5672/%2f?heartbeat=5"),
        "127.0.0.1:5672"
    );
    assert_eq!(endpoint("redis://127.0.0.1:6379"), "127.0.0.1:6379");
    assert_eq!(endpoint("redis://127.0.0.1:6379/0"), "127.0.0.1:6379");
    assert_eq!(endpoint("127.0.0.1:1"), "127.0.0.1:1");
}

#[test]
fn warmup_is_a_third_of_the_window_bounded() {
    let o = |d| CalibrateOptions {
        topology_path: "t.toml".into(),
        out_dir: "results".into(),
        duration: d,
        disk_bytes: 1,
        allow_flush: false,
        reporter: std::sync::Arc::new(crate::progress::Silent),
    };
    assert_eq!(
        o(Duration::from_secs(3)).warmup(),
        Duration::from_millis(500)
    );
    assert_eq!(
        o(Duration::from_secs(30)).warmup(),
        Duration::from_millis(500)
    );
    assert_eq!(
        o(Duration::from_millis(100)).warmup(),
        Duration::from_millis(200)
    );
    assert_eq!(
        o(Duration::from_millis(900)).warmup(),
        Duration::from_millis(300)
    );
}

fn sample() -> Calibration {
    let f = |v: f64, unit: &str| Figure {
        value: v,
        unit: unit.into(),
        count: 1234,
        count_unit: "messages".into(),
        duration_s: 3.0,
        errors: 0,
        how: "x".into(),
    };
    Calibration {
        hab_version: "0.1.0".into(),
        name: "standalone".into(),
        path: "direct".into(),
        window_s: 3.0,
        warmup_s: 1.0,
        disk_bytes: 1 << 20,
        versions: BTreeMap::from([("redis".into(), "7.0.15".into())]),
        topology: serde_json::json!({"name": "standalone"}),
        figures: Figures {
            broker_round_trip: Some(f(12345.6, "msg/s")),
            broker_publish: Some(f(13000.0, "confirms/s")),
            redis_result_store: Some(f(20000.0, "results/s")),
            redis_setex_publish: Some(f(150000.0, "results/s")),
            disk_write: Some(f(512.25, "MB/s")),
            cpu_factorial: Some(f(21.734, "ms/call")),
            end_to_end: Some(f(9000.0, "tasks/s")),
        },
        ..Calibration::default()
    }
}

#[test]
fn json_round_trip_and_defaults() {
    let mut c = sample();
    let text = serde_json::to_string_pretty(&c).unwrap();
    let back: Calibration = serde_json::from_str(&text).unwrap();
    assert_eq!(back, c);
    // With the broker strategies (older files have none: they parse as empty).
    c.broker_strategies = vec![crate::record::calibration::StrategyFigure::new(
        &round_trip::STRATEGIES[1],
    )];
    c.broker_strategies[0].record(crate::record::calibration::BrokerWindow {
        acked: 5,
        confirmed: 6,
        nacked: 0,
        secs: 0.5,
    });
    c.broker_strategies[0].chosen = true;
    let with = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<Calibration>(&with).unwrap(), c);
    assert!(with.contains(r#""windows":[{"acked":5,"confirmed":6,"nacked":0,"secs":0.5}]"#));
    // Embeddable: an empty object (or one from an older hab) still parses.
    let empty: Calibration = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, Calibration::default());
    let partial: Calibration = serde_json::from_str(
        r#"{"name":"x","figures":{"disk_write":{"value":1.5,"unit":"MB/s"}},"future":1}"#,
    )
    .unwrap();
    assert_eq!(partial.figures.disk_write.as_ref().unwrap().value, 1.5);
    assert!(partial.broker_strategies.is_empty());
    assert!(partial.figures.broker_round_trip.is_none());
    assert_eq!(partial.figures.iter().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["figures"]["cpu_factorial"]["unit"], "ms/call");
    assert_eq!(v["status"], "complete");
}

#[test]
fn table_lists_every_figure() {
    let t = render_table(&sample());
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 9, "{t}");
    assert!(lines[0].contains("standalone") && lines[0].contains("direct"));
    assert!(t.contains("broker round trip"));
    assert!(
        t.contains("end-to-end (no task)") && t.contains("9000 tasks/s"),
        "{t}"
    );
    assert!(!t.contains('?'), "every figure has its label: {t}");
    assert!(t.contains("12346"), "{t}");
    assert!(t.contains("512"), "{t}");
    assert!(t.contains("21.7 "), "{t}");
    assert!(t.contains("cpu factorial(100000)"));
    // The strategies tried, each with its windows, the winner starred.
    let mut c = sample();
    c.broker_window_s = 1.0;
    c.broker_warmup_s = 0.33;
    c.broker_strategies = round_trip::STRATEGIES[..2]
        .iter()
        .map(crate::record::calibration::StrategyFigure::new)
        .collect();
    for (i, acked) in [(0, 9_000), (0, 9_500), (1, 12_000)] {
        c.broker_strategies[i].record(crate::record::calibration::BrokerWindow {
            acked,
            secs: 1.0,
            ..Default::default()
        });
    }
    c.broker_strategies[1].chosen = true;
    let t = render_table(&c);
    assert!(t.contains("per 1.00 s window after 0.33 s warm-up"), "{t}");
    assert!(t.contains("  ack_each"), "{t}");
    assert!(t.contains("9500   windows: 9000 9500"), "{t}");
    assert!(t.contains("* ack_multiple"), "{t}");
    let mut c = sample();
    c.figures = Figures::default();
    c.error = Some("interrupted".into());
    let t = render_table(&c);
    assert!(t.contains("(nothing measured)") && t.contains("stopped: interrupted"));
}
