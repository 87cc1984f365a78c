//! calibrate.json as data (also embedded in run.json as `calibration`): the raw limits of
//! a stack, each piece alone, and where a task path stands against them. Measured by
//! `hab calibrate`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Machine, RunStatus};

/// `count / secs`, 0 for an empty window.
pub fn rate(count: u64, secs: f64) -> f64 {
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Decimal megabytes (10^6 bytes) per second.
pub fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    rate(bytes, secs) / 1e6
}

/// One measured figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Figure {
    /// The figure, in `unit`.
    pub value: f64,
    /// Its unit, e.g. `msg/s`, `MB/s` (10^6 bytes), `ms/call`.
    pub unit: String,
    /// What was counted in the window.
    pub count: u64,
    /// What `count` counts: `messages`, `confirms`, `results`, `bytes`, `calls`.
    pub count_unit: String,
    /// The timed window, seconds (warm-up excluded).
    pub duration_s: f64,
    /// Failed operations in the window (nacks, store errors); 0 on a healthy stack.
    pub errors: u64,
    /// How it was measured, one line.
    pub how: String,
}

/// Every figure of a calibration; `None` = not measured (interrupted, failed, or not
/// applicable: no publish confirms without confirms).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Figures {
    /// Messages published, consumed and acked per second, end to end.
    pub broker_round_trip: Option<Figure>,
    /// Publish confirmations per second (publishes/s when confirms are off).
    pub broker_publish: Option<Figure>,
    /// `ResultStore::store` calls per second (GET + MULTI SETEX PUBLISH EXEC).
    pub redis_result_store: Option<Figure>,
    /// Pipelined `SETEX` + `PUBLISH` pairs per second: the backend's ceiling.
    pub redis_setex_publish: Option<Figure>,
    /// Sequential write throughput with `fdatasync`, MB/s.
    pub disk_write: Option<Figure>,
    /// `factorial_swing(100000)`, median ms per call on one core.
    pub cpu_factorial: Option<Figure>,
    /// The whole task path without task code, tasks per second: Celery messages
    /// published with confirms, consumed by a lean consumer process that stores results
    /// in batches and acks in batches, results seen through `PSUBSCRIBE`.
    pub end_to_end: Option<Figure>,
}

impl Figures {
    /// Every figure with its key, in measuring order (absent ones skipped).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Figure)> {
        [
            ("broker_round_trip", &self.broker_round_trip),
            ("broker_publish", &self.broker_publish),
            ("end_to_end", &self.end_to_end),
            ("redis_result_store", &self.redis_result_store),
            ("redis_setex_publish", &self.redis_setex_publish),
            ("disk_write", &self.disk_write),
            ("cpu_factorial", &self.cpu_factorial),
        ]
        .into_iter()
        .filter_map(|(k, f)| f.as_ref().map(|f| (k, f)))
    }
}

/// The content of calibrate.json; every field defaults, so run.json can embed it as an
/// optional `calibration` later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Calibration {
    /// hab's version.
    pub hab_version: String,
    /// How the calibration ended.
    pub status: RunStatus,
    /// The error that stopped it, if any.
    pub error: Option<String>,
    /// The topology's name.
    pub name: String,
    /// Start, unix ms.
    pub started_unix_ms: i64,
    /// End, unix ms (absent while running).
    pub finished_unix_ms: Option<i64>,
    /// Path of the topology file.
    pub topology_file: String,
    /// The topology as parsed (defaults filled in).
    pub topology: serde_json::Value,
    /// The machine.
    pub machine: Machine,
    /// Server versions (rabbitmq, erlang_otp, redis, haproxy).
    pub versions: BTreeMap<String, String>,
    /// Time to bring the stack up, ms.
    pub bringup_ms: Option<u64>,
    /// `haproxy` when clients went through HAProxy, else `direct`.
    pub path: String,
    /// Requested length of each timed window, seconds.
    pub window_s: f64,
    /// Untimed warm-up before each window, seconds.
    pub warmup_s: f64,
    /// Size of each disk file, bytes.
    pub disk_bytes: u64,
    /// The figures.
    pub figures: Figures,
    /// Every way the broker round trip was driven, with each timed window; the one
    /// `chosen` gave `figures.broker_round_trip` (empty in calibrations from before hab
    /// tried several).
    pub broker_strategies: Vec<StrategyFigure>,
    /// Every strategy of the end-to-end ceiling with its windows (results seen in
    /// `acked`); the chosen one is `end_to_end`.
    pub end_to_end_strategies: Vec<StrategyFigure>,
    /// Length of each broker window, seconds (`run_windows` of the calibrate command).
    pub broker_window_s: f64,
    /// Untimed warm-up before each broker window, seconds.
    pub broker_warmup_s: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            hab_version: String::new(),
            status: RunStatus::Complete,
            error: None,
            name: String::new(),
            started_unix_ms: 0,
            finished_unix_ms: None,
            topology_file: String::new(),
            topology: serde_json::Value::Null,
            machine: Machine::default(),
            versions: BTreeMap::new(),
            bringup_ms: None,
            path: String::new(),
            window_s: 0.0,
            warmup_s: 0.0,
            disk_bytes: 0,
            figures: Figures::default(),
            broker_strategies: Vec::new(),
            end_to_end_strategies: Vec::new(),
            broker_window_s: 0.0,
            broker_warmup_s: 0.0,
        }
    }
}

/// What one timed window counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrokerWindow {
    /// Deliveries acknowledged (consumed end to end).
    pub acked: u64,
    /// Publishes confirmed (handed to the connection when confirms are off).
    pub confirmed: u64,
    /// Publishes nacked by the broker.
    pub nacked: u64,
    /// The window's length, seconds.
    pub secs: f64,
}

impl BrokerWindow {
    /// Round trips per second.
    pub fn round_trip(&self) -> f64 {
        rate(self.acked, self.secs)
    }

    /// Publish confirmations per second.
    pub fn publish(&self) -> f64 {
        rate(self.confirmed, self.secs)
    }
}

/// One strategy as calibrate.json records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StrategyFigure {
    /// The strategy's name.
    pub name: String,
    /// How the strategy drives the broker.
    pub how: String,
    /// Every timed window, in the order measured.
    pub windows: Vec<BrokerWindow>,
    /// Its best window's round trips per second (0 before any window).
    pub msg_per_s: f64,
    /// Its windows pooled: every round trip counted over their total time, per second
    /// (0 before any window). What the strategy sustains, where `msg_per_s` is its peak.
    pub sustained_per_s: f64,
    /// The error that stopped it; a strategy with an error does not compete.
    pub error: Option<String>,
    /// True for the strategy whose best window is the broker round trip.
    pub chosen: bool,
    /// Why it was not run after the first round: too far behind the leader to win.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<String>,
}

impl StrategyFigure {
    /// One more window measured.
    pub fn record(&mut self, w: BrokerWindow) {
        self.windows.push(w);
        self.msg_per_s = best_window(&self.windows, BrokerWindow::round_trip)
            .map_or(0.0, |i| self.windows[i].round_trip());
        self.sustained_per_s = self.pooled().round_trip();
    }

    /// Every window as one: their round trips and confirmations summed over their total
    /// time.
    pub fn pooled(&self) -> BrokerWindow {
        self.windows
            .iter()
            .fold(BrokerWindow::default(), |a, w| BrokerWindow {
                acked: a.acked + w.acked,
                confirmed: a.confirmed + w.confirmed,
                nacked: a.nacked + w.nacked,
                secs: a.secs + w.secs,
            })
    }
}

/// The window with the highest `value`, the earliest of equal ones; `None` for none.
pub fn best_window(
    windows: &[BrokerWindow],
    value: impl Fn(&BrokerWindow) -> f64,
) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, w) in windows.iter().enumerate() {
        let v = value(w);
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map(|(i, _)| i)
}

/// How far a task path may be from its ceiling and still be read as "at the ceiling":
/// 5 %, either way. Above that margin the ceiling is wrong (see [`Standing::Invalid`]).
pub const CEILING_MARGIN: f64 = 0.05;

/// Where a task path stands against its ceiling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Standing {
    /// More than [`CEILING_MARGIN`] below it: this fraction of it.
    Below(f64),
    /// Within [`CEILING_MARGIN`] of it, either side.
    AtCeiling,
    /// More than [`CEILING_MARGIN`] above it: a ceiling is the best the stack does on its
    /// own, so the calibration is invalid (it did not find the stack's best). This many
    /// times the ceiling.
    Invalid(f64),
}

impl Standing {
    /// The standing of a task path at `fraction` of its ceiling.
    pub fn of(fraction: f64) -> Standing {
        if fraction > 1.0 + CEILING_MARGIN {
            Standing::Invalid(fraction)
        } else if fraction >= 1.0 - CEILING_MARGIN {
            Standing::AtCeiling
        } else {
            Standing::Below(fraction)
        }
    }

    /// A table cell: `87 %`, `at the ceiling`, or `calibration invalid` — never a
    /// percentage over 100.
    pub fn cell(self) -> String {
        match self {
            Standing::Below(f) => format!("{:.0} %", f * 100.0),
            Standing::AtCeiling => "at the ceiling".into(),
            Standing::Invalid(_) => "calibration invalid".into(),
        }
    }
}
