//! Unit tests of the broker round trip's strategies, windows and choice.

use super::*;
use crate::testing::assert_has;

fn w(acked: u64, secs: f64) -> BrokerWindow {
    BrokerWindow {
        acked,
        confirmed: acked + 10,
        nacked: 0,
        secs,
    }
}

fn strategy(name: &str, windows: &[BrokerWindow], error: Option<&str>) -> StrategyFigure {
    let mut s = StrategyFigure {
        name: name.into(),
        how: format!("{name} how"),
        error: error.map(String::from),
        ..StrategyFigure::default()
    };
    for &x in windows {
        s.record(x);
    }
    s
}

#[test]
fn the_best_window_is_the_highest_rate_not_the_first_last_or_longest() {
    // 900/s, 1,200/s, then 1,000 messages in 0.8 s = 1,250/s (the most messages is
    // the second window; the highest rate the third).
    let ws = [w(900, 1.0), w(1_200, 1.0), w(1_000, 0.8), w(1_100, 1.0)];
    assert_eq!(best_window(&ws, BrokerWindow::round_trip), Some(2));
    // Equal rates: the earliest.
    assert_eq!(
        best_window(&[w(10, 1.0), w(20, 2.0)], BrokerWindow::round_trip),
        Some(0)
    );
    assert_eq!(best_window(&[], BrokerWindow::round_trip), None);
    // A strategy's figure follows its best window as windows come in.
    let mut s = StrategyFigure::default();
    s.record(w(1_000, 1.0));
    assert_eq!(s.msg_per_s, 1_000.0);
    s.record(w(500, 1.0));
    assert_eq!(s.msg_per_s, 1_000.0);
    s.record(w(3_000, 2.0));
    assert_eq!(s.msg_per_s, 1_500.0);
    assert_eq!(s.windows.len(), 3);
}

#[test]
fn the_fastest_strategy_without_an_error_wins() {
    let ss = [
        strategy("ack_each", &[w(9_000, 1.0), w(9_500, 1.0)], None),
        strategy("ack_multiple", &[w(11_000, 1.0), w(12_000, 1.0)], None),
        // Fastest, but it failed in a later run: it does not compete.
        strategy(
            "pipelined_publish",
            &[w(15_000, 1.0)],
            Some("connection reset"),
        ),
        strategy("two_connections", &[w(11_500, 1.0), w(11_900, 1.0)], None),
    ];
    assert_eq!(choose(&ss), Some(1));
    // Ties go to the simpler (earlier) strategy.
    let tie = [
        strategy("a", &[w(5_000, 1.0)], None),
        strategy("b", &[w(5_000, 1.0)], None),
    ];
    assert_eq!(choose(&tie), Some(0));
    // A strategy that measured nothing (interrupted before its first window, or
    // nothing got through) does not win over one that did.
    let nothing = [
        strategy("a", &[], None),
        strategy("b", &[w(0, 1.0)], None),
        strategy("c", &[w(1, 1.0)], None),
    ];
    assert_eq!(choose(&nothing), Some(2));
    assert_eq!(choose(&nothing[..2]), None);
    assert_eq!(choose(&[strategy("x", &[w(9, 1.0)], Some("boom"))]), None);
    assert_eq!(choose(&[]), None);
}

#[test]
fn the_figures_come_from_the_winner_best_window_and_name_it() {
    let mut ss = vec![
        strategy(
            "ack_each",
            &[w(9_000, 1.0), w(9_500, 1.0), w(9_200, 1.0)],
            None,
        ),
        strategy(
            "ack_multiple",
            &[w(11_000, 1.0), w(12_500, 1.0), w(12_000, 1.0)],
            None,
        ),
        strategy("pipelined_publish", &[w(99_000, 1.0)], Some("boom")),
    ];
    ss[0].chosen = true; // stale: figures() decides again
    let windows = (Duration::from_millis(300), Duration::from_secs(1));
    let (rt, publish) = figures(&mut ss, true, "hab.trivial", windows).unwrap();
    assert_eq!(
        ss.iter().map(|s| s.chosen).collect::<Vec<_>>(),
        [false, true, false]
    );
    assert_eq!((rt.value, rt.count, rt.duration_s), (12_500.0, 12_500, 1.0));
    assert_eq!(rt.unit, "msg/s");
    assert_has(&rt.how, &["best of 3 strategies × 3 windows"]);
    assert_has(&rt.how, &["ack_multiple — ack_multiple how"]);
    // Confirms: the best window of the strategies that competed (not the failed one).
    assert_eq!(publish.value, 12_510.0);
    assert_eq!(publish.unit, "confirms/s");
    assert!(publish.how.ends_with("ack_multiple"), "{}", publish.how);
    let (_, off) = figures(&mut ss, false, "x", windows).unwrap();
    assert_eq!(off.unit, "publishes/s");
    // Nothing measured: no figure, nobody chosen.
    let mut failed = vec![strategy("a", &[w(5, 1.0)], Some("boom"))];
    assert!(figures(&mut failed, true, "x", windows).is_none());
    assert!(!failed[0].chosen);
}

#[test]
fn windows_split_the_duration_over_the_rounds_after_a_bounded_warmup() {
    let (warmup, window) = run_windows(Duration::from_secs(3));
    assert_eq!(window, Duration::from_secs(1));
    assert_eq!(
        warmup,
        Duration::from_millis(333) + Duration::from_nanos(333_333)
    );
    assert_eq!(
        run_windows(Duration::from_millis(300)),
        (Duration::from_millis(200), Duration::from_millis(100))
    );
    assert_eq!(
        run_windows(Duration::from_secs(30)).0,
        Duration::from_millis(500)
    );
}

#[test]
fn every_strategy_has_its_own_name_and_the_first_is_the_old_calibration() {
    let mut names: Vec<_> = STRATEGIES.iter().map(|s| s.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), STRATEGIES.len());
    let old = &STRATEGIES[0];
    assert!(!old.ack_multiple);
    assert_eq!((old.publishers, old.consumers), (1, 1));
    assert!(old.describe().contains("one ack per delivery"));
    assert!(STRATEGIES[1].describe().contains("acks with multiple"));
    assert!(
        STRATEGIES
            .iter()
            .all(|s| s.backlog() >= 2 * usize::from(s.prefetch) * s.consumers)
    );
}

#[test]
fn strategies_far_behind_after_the_first_round_are_dropped_and_say_why() {
    let mut s = vec![
        strategy("slow", &[w(8_000, 1.0)], None),
        strategy("close", &[w(9_000, 1.0)], None),
        strategy("leader", &[w(10_000, 1.0)], None),
        strategy("broken", &[], Some("refused")),
    ];
    drop_laggards(&mut s);
    let d = s[0].dropped.as_deref().unwrap();
    assert!(
        d.contains("8000 msg/s, 80 % of leader's 10000 (under 85 %)"),
        "{d}"
    );
    assert_eq!(s[1].dropped, None, "within 85 % it runs on");
    assert_eq!(s[2].dropped, None);
    assert_eq!(s[3].dropped, None, "an error is its own reason");
    // A dropped strategy still competes with what it measured, and the figure says so.
    let (rt, _) = figures(
        &mut s,
        true,
        "path",
        (Duration::from_millis(333), Duration::from_secs(1)),
    )
    .unwrap();
    assert!(s[2].chosen);
    assert!(
        rt.how
            .contains("; 1 under 85 % of the leader after the first window not run again"),
        "{}",
        rt.how
    );
}
