//! One row of failover.csv: what [`super::analyse`] found for one fault.

use serde::{Deserialize, Serialize};

/// One row of failover.csv. Its `Default` is a row with nothing seen yet: no phase, no
/// task counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailoverRow {
    /// Workload name.
    pub workload: String,
    /// The role named in the file.
    pub target: String,
    /// What it resolved to.
    pub resolved: String,
    /// kill, pause or stop.
    pub kind: String,
    /// Repetition number, from 0.
    pub repetition: u32,
    /// When the fault was applied, unix ms.
    pub fault_at_unix_ms: i64,
    /// First client error after the fault, ms.
    pub first_client_error_ms: Option<f64>,
    /// Sentinel `+sdown`, ms.
    pub sentinel_sdown_ms: Option<f64>,
    /// Sentinel `+odown`, ms.
    pub sentinel_odown_ms: Option<f64>,
    /// Sentinel `+switch-master`, ms.
    pub sentinel_switch_ms: Option<f64>,
    /// New queue leader, ms.
    pub queue_leader_ms: Option<f64>,
    /// HAProxy marked a server DOWN, ms.
    pub proxy_down_ms: Option<f64>,
    /// HAProxy marked a server UP (the new route), ms.
    pub proxy_up_ms: Option<f64>,
    /// A client reconnected, ms.
    pub client_reconnected_ms: Option<f64>,
    /// Target brought back (restart / SIGCONT), ms.
    pub restored_ms: Option<f64>,
    /// Stack fully healthy again, ms.
    pub healthy_ms: Option<f64>,
    /// Switch time: the earliest moment a task published at or after the fault (and
    /// before the next fault) was seen completed, − fault time, ms ([`super::switch_time_ms`]).
    /// Empty if none completed.
    pub switch_time_ms: Option<f64>,
    /// Longest gap between successful completions around the fault, ms.
    pub outage_ms: Option<f64>,
    /// Tasks in the fault's window never executed though accepted.
    pub lost: u64,
    /// Tasks in the window executed whose result is missing.
    pub result_lost: u64,
    /// Tasks in the window executed more than once.
    pub duplicated: u64,
    /// Tasks in the window never executed and never confirmed.
    pub unconfirmed: u64,
    /// Tasks in the window the producer published again.
    pub republished: u64,
    /// Tasks in the window that failed.
    pub failed: u64,
    /// Tasks in the window.
    pub tasks: u64,
    /// Why the fault was not applied, if it was not.
    pub not_applied: String,
    /// Time HAProxy had two or more Redis servers UP at once (two masters answering
    /// `role:master`), from the fault until the next fault or full health, ms. Empty if
    /// that never happened.
    #[serde(default)]
    pub two_masters_ms: Option<f64>,
    /// When HAProxy first had two Redis servers UP after the fault, ms.
    #[serde(default)]
    pub two_masters_from_ms: Option<f64>,
    /// Client errors after the fault that were `READONLY` answers (writes to a replica:
    /// a demoted master), counted per attempt.
    #[serde(default)]
    pub readonly_errors: u64,
    /// Tasks whose result store got at least one `READONLY` answer.
    #[serde(default)]
    pub readonly_tasks: u64,
    /// First to last `READONLY` error after the fault, ms (0 for a single one).
    #[serde(default)]
    pub readonly_for_ms: Option<f64>,
    /// Tasks in the window whose result hab saw (ok) but whose result key Redis no
    /// longer held at the end of the run: stored, then lost by the backend (results
    /// written to a stale master that was demoted and resynced). Empty when the keys
    /// could not be read at the end.
    #[serde(default)]
    pub result_vanished: Option<u64>,
    /// Client-side failover (topology `[clients]`) on the faulted part's path: the
    /// clients found the new route themselves, so there is no proxy switch phase
    /// (`proxy_up_ms` does not apply; `client_rediscovered_ms` takes its place).
    #[serde(default)]
    pub client_side: bool,
    /// Client-side failover: first time after the fault a client moved on to another
    /// broker node or was named a new Redis master by the Sentinels, ms. Empty when the
    /// path is proxied (not applicable) or it did not happen.
    #[serde(default)]
    pub client_rediscovered_ms: Option<f64>,
    /// Client errors after the fault that were `NOREPLICAS` answers (a master with
    /// `min-replicas-to-write` that lost its replicas refused the write), per attempt.
    #[serde(default)]
    pub noreplicas_errors: u64,
    /// Tasks whose result store got at least one `NOREPLICAS` answer.
    #[serde(default)]
    pub noreplicas_tasks: u64,
    /// Partition of a RabbitMQ node: when `pause_minority` paused it (it found itself in
    /// the minority and closed its listeners), ms, from its log. Empty when it did not.
    #[serde(default)]
    pub broker_paused_ms: Option<f64>,
    /// When the paused node opened its client listener again after the heal, ms, from
    /// its log.
    #[serde(default)]
    pub broker_resumed_ms: Option<f64>,
    /// Tasks in the window whose result was REVOKED (revoked, or expired before they ran).
    #[serde(default)]
    pub revoked: u64,
}
