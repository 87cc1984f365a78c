//! The terminal table of a calibration: one line per figure, then the broker round trip
//! of every strategy with its windows (what `hab calibrate` prints).

use std::fmt::Write as _;

use crate::record::Calibration;

fn label(key: &str) -> &'static str {
    match key {
        "broker_round_trip" => "broker round trip",
        "broker_publish" => "broker publish",
        "redis_result_store" => "redis result store",
        "redis_setex_publish" => "redis SETEX+PUBLISH",
        "disk_write" => "disk write+fdatasync",
        "cpu_factorial" => "cpu factorial(100000)",
        _ => "?",
    }
}

/// A figure's value with sensible precision.
fn format_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The terminal table: one line per figure.
pub fn render_table(c: &Calibration) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "calibration of {} ({}; {:.1} s windows after {:.1} s warm-up)",
        c.name,
        if c.path.is_empty() { "-" } else { &c.path },
        c.window_s,
        c.warmup_s
    );
    let _ = writeln!(
        s,
        "{:<24} {:>12} {:<11} {:>12} {:<9} {:>7}",
        "figure", "value", "unit", "count", "", "errors"
    );
    let mut any = false;
    for (key, f) in c.figures.iter() {
        any = true;
        let _ = writeln!(
            s,
            "{:<24} {:>12} {:<11} {:>12} {:<9} {:>7}",
            label(key),
            format_value(f.value),
            f.unit,
            f.count,
            f.count_unit,
            f.errors
        );
    }
    if !any {
        let _ = writeln!(s, "(nothing measured)");
    }
    if !c.broker_strategies.is_empty() {
        let _ = writeln!(
            s,
            "broker round trip by strategy (msg/s per {:.2} s window after {:.2} s warm-up; * = the figure above):",
            c.broker_window_s, c.broker_warmup_s
        );
        for st in &c.broker_strategies {
            let windows: Vec<String> = st
                .windows
                .iter()
                .map(|w| format_value(w.round_trip()))
                .collect();
            let _ = writeln!(
                s,
                "{} {:<22} {:>12}   windows: {}{}",
                if st.chosen { "*" } else { " " },
                st.name,
                format_value(st.msg_per_s),
                if windows.is_empty() {
                    "-".to_string()
                } else {
                    windows.join(" ")
                },
                st.error
                    .as_ref()
                    .map(|e| format!("; failed: {e}"))
                    .or_else(|| st.dropped.as_ref().map(|d| format!("; {d}")))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(e) = &c.error {
        let _ = writeln!(s, "stopped: {e}");
    }
    s.truncate(s.trim_end().len());
    s
}
