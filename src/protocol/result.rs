//! Celery's Redis result backend record, `celery-task-meta-<id>`.
//!
//! [`ResultRecord::to_json`] writes the bytes a Celery 5.7 worker stores (fields in
//! Celery's order, Python's `json.dumps` spacing); [`ResultRecord::parse`] reads only what
//! a result watcher needs from a record written by hab or by Celery.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::write_py_json;

/// Prefix of every result key (and of the Pub/Sub channel Celery publishes it on).
pub const RESULT_KEY_PREFIX: &str = "celery-task-meta-";

/// Seconds a result key lives (Celery's `result_expires` default, one day).
pub const RESULT_TTL_SECS: u64 = 86_400;

/// The Redis key (and Pub/Sub channel) of a task's result: `celery-task-meta-<id>`.
pub fn result_key(task_id: &str) -> String {
    let mut key = String::with_capacity(RESULT_KEY_PREFIX.len() + task_id.len());
    key.push_str(RESULT_KEY_PREFIX);
    key.push_str(task_id);
    key
}

/// A task's state as stored in the result backend.
///
/// hab writes only the two final states. When parsing, any other Celery state (`PENDING`,
/// `STARTED`, `RETRY`, `REVOKED`, custom states) is kept verbatim as [`TaskStatus::Other`]
/// rather than rejected, so a watcher can report it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// `SUCCESS`: the task returned; `result` is its return value.
    Success,
    /// `FAILURE`: the task raised; `result` describes the exception.
    Failure,
    /// Any other state name, as stored.
    Other(String),
}

impl TaskStatus {
    /// The state name Celery stores: `SUCCESS`, `FAILURE`, or the other state verbatim.
    pub fn as_str(&self) -> &str {
        match self {
            TaskStatus::Success => "SUCCESS",
            TaskStatus::Failure => "FAILURE",
            TaskStatus::Other(s) => s,
        }
    }

    /// The status for a stored state name (never fails; see [`TaskStatus::Other`]).
    pub fn from_name(name: &str) -> Self {
        match name {
            "SUCCESS" => TaskStatus::Success,
            "FAILURE" => TaskStatus::Failure,
            other => TaskStatus::Other(other.to_owned()),
        }
    }

    /// Whether this is a final state (Celery's `READY_STATES`: success, failure, revoked).
    pub fn is_ready(&self) -> bool {
        match self {
            TaskStatus::Success | TaskStatus::Failure => true,
            TaskStatus::Other(s) => s == "REVOKED",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TaskStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TaskStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(TaskStatus::from_name(&name))
    }
}

/// How the result record said the task ended: one of Celery's final states (progress
/// states such as STARTED or RETRY never settle a task).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// `SUCCESS`.
    Success,
    /// `FAILURE` (or a value in the result key that is not a result record).
    Failure,
    /// `REVOKED`: Celery revoked the task, or it expired before a worker ran it.
    Revoked,
}

/// One result record, as a Celery worker stores it in Redis.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRecord {
    /// Final state of the task.
    pub status: TaskStatus,
    /// The return value (success) or `{"exc_type", "exc_message": [...], "exc_module"}`
    /// (failure).
    pub result: Value,
    /// The formatted Python traceback of a failure; `None` for success (and for
    /// `NotRegistered`, which Celery stores without one).
    pub traceback: Option<String>,
    /// Subtasks started by the task (always empty for hab's tasks).
    pub children: Vec<Value>,
    /// Completion time, Python's `datetime.isoformat()` of an aware UTC datetime:
    /// `2026-11-25T11:28:44.099067+00:00`.
    pub date_done: String,
    /// The task id (the part of the key after `celery-task-meta-`).
    pub task_id: String,
}

impl ResultRecord {
    /// A `SUCCESS` record for `task_id` returning `value`, dated now.
    pub fn success(task_id: &str, value: Value) -> Self {
        Self {
            status: TaskStatus::Success,
            result: value,
            traceback: None,
            children: Vec::new(),
            date_done: date_done_now(),
            task_id: task_id.to_owned(),
        }
    }

    /// A `FAILURE` record for `task_id` whose task raised `exc_module.exc_type(exc_message)`,
    /// dated now. `exc_message` becomes the one-element list of the exception's args.
    pub fn failure(
        task_id: &str,
        exc_type: &str,
        exc_module: &str,
        exc_message: &str,
        traceback: Option<String>,
    ) -> Self {
        let mut result = Map::new();
        result.insert("exc_type".to_owned(), Value::from(exc_type));
        result.insert(
            "exc_message".to_owned(),
            Value::Array(vec![Value::from(exc_message)]),
        );
        result.insert("exc_module".to_owned(), Value::from(exc_module));
        Self {
            status: TaskStatus::Failure,
            result: Value::Object(result),
            traceback,
            children: Vec::new(),
            date_done: date_done_now(),
            task_id: task_id.to_owned(),
        }
    }

    /// The `FAILURE` record a Celery worker stores for a task name it does not know:
    /// `celery.exceptions.NotRegistered`, no traceback.
    ///
    /// Celery stores `NotRegistered(name)` and serializes the exception's *args*, so the
    /// message is the bare name, `["hab.nope"]`; only `str(exc)` (a `KeyError`) would
    /// quote it as `'hab.nope'`.
    pub fn not_registered(task_id: &str, task_name: &str) -> Self {
        Self::failure(
            task_id,
            "NotRegistered",
            "celery.exceptions",
            task_name,
            None,
        )
    }

    /// The `REVOKED` record Celery's worker stores for a task it discards without running
    /// (`mark_as_revoked`): `celery.exceptions.TaskRevokedError(reason)`, no traceback;
    /// `reason` is `expired` for a task past its `expires`.
    pub fn revoked(task_id: &str, reason: &str) -> Self {
        let mut r = Self::failure(
            task_id,
            "TaskRevokedError",
            "celery.exceptions",
            reason,
            None,
        );
        r.status = TaskStatus::from_name("REVOKED");
        r
    }

    /// The record as Celery stores it: `{"status": …, "result": …, "traceback": …,
    /// "children": […], "date_done": …, "task_id": …}` with `json.dumps` spacing and
    /// escaping. In an exception `result`, `exc_type`, `exc_message`, `exc_module` come
    /// first in that (Celery's) order; other object keys are sorted.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(160 + self.traceback.as_ref().map_or(0, String::len));
        out.extend_from_slice(b"{\"status\": ");
        write_py_json(&mut out, self.status.as_str());
        out.extend_from_slice(b", \"result\": ");
        write_result_value(&mut out, &self.result);
        out.extend_from_slice(b", \"traceback\": ");
        write_py_json(&mut out, &self.traceback);
        out.extend_from_slice(b", \"children\": ");
        write_py_json(&mut out, &self.children);
        out.extend_from_slice(b", \"date_done\": ");
        write_py_json(&mut out, &self.date_done);
        out.extend_from_slice(b", \"task_id\": ");
        write_py_json(&mut out, &self.task_id);
        out.push(b'}');
        String::from_utf8(out).expect("JSON output is ASCII")
    }

    /// Reads the status, task id and (for an exception result) `exc_type` of a stored
    /// record, skipping everything else without building it.
    pub fn parse(json: &[u8]) -> Result<ParsedResult, ResultParseError> {
        let raw: RawRecord<'_> =
            serde_json::from_slice(json).map_err(|e| ResultParseError(e.to_string()))?;
        Ok(ParsedResult {
            status: TaskStatus::from_name(&raw.status),
            task_id: raw.task_id.into_owned(),
            exc_type: raw.result.0,
        })
    }
}

/// Writes `result`, putting the exception keys of a failure in Celery's order.
fn write_result_value(out: &mut Vec<u8>, result: &Value) {
    const EXC_KEYS: [&str; 3] = ["exc_type", "exc_message", "exc_module"];
    let Value::Object(map) = result else {
        return write_py_json(out, result);
    };
    if !map.contains_key("exc_type") {
        return write_py_json(out, result);
    }
    out.push(b'{');
    let ordered = EXC_KEYS
        .iter()
        .filter_map(|k| map.get_key_value(*k))
        .chain(map.iter().filter(|(k, _)| !EXC_KEYS.contains(&k.as_str())));
    for (i, (k, v)) in ordered.enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_py_json(out, k);
        out.extend_from_slice(b": ");
        write_py_json(out, v);
    }
    out.push(b'}');
}

/// Now, formatted as Python's `datetime.now(timezone.utc).isoformat()`.
pub fn date_done_now() -> String {
    format_date_done(Utc::now())
}

/// `time` formatted as Python's `isoformat()` of an aware UTC datetime: microseconds, or
/// none at all when they are zero (as Python does), then `+00:00`.
pub fn format_date_done(time: DateTime<Utc>) -> String {
    if time.nanosecond() / 1_000 == 0 {
        time.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        time.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}

/// What a result watcher needs from a stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedResult {
    /// The stored state.
    pub status: TaskStatus,
    /// The task id the record is for.
    pub task_id: String,
    /// `result.exc_type` when the result is an exception (e.g. `NotRegistered`,
    /// `TypeError`); `None` otherwise.
    pub exc_type: Option<String>,
}

/// A stored value that is not a result record (not JSON, or no `status`/`task_id`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Celery result record: {0}")]
pub struct ResultParseError(pub String);

impl ResultParseError {
    /// A short snake_case code for logs and CSV columns.
    pub fn reason(&self) -> &'static str {
        "bad_result_record"
    }
}

/// The fields of a record the watcher reads; all others are skipped.
#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    task_id: Cow<'a, str>,
    #[serde(default)]
    result: ExcTypePeek,
}

/// `exc_type` of an object result; any other result is skipped.
#[derive(Default)]
struct ExcTypePeek(Option<String>);

impl<'de> Deserialize<'de> for ExcTypePeek {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PeekVisitor;

        impl<'de> Visitor<'de> for PeekVisitor {
            type Value = ExcTypePeek;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExcTypePeek, A::Error> {
                let mut exc_type = None;
                while let Some(IsExcType(is_exc_type)) = map.next_key()? {
                    if is_exc_type {
                        exc_type = match map.next_value::<Value>()? {
                            Value::String(s) => Some(s),
                            _ => None,
                        };
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(ExcTypePeek(exc_type))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ExcTypePeek, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ExcTypePeek(None))
            }

            fn visit_bool<E>(self, _: bool) -> Result<ExcTypePeek, E> {
                Ok(ExcTypePeek(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<ExcTypePeek, E> {
                Ok(ExcTypePeek(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<ExcTypePeek, E> {
                Ok(ExcTypePeek(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<ExcTypePeek, E> {
                Ok(ExcTypePeek(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<ExcTypePeek, E> {
                Ok(ExcTypePeek(None))
            }
            fn visit_unit<E>(self) -> Result<ExcTypePeek, E> {
                Ok(ExcTypePeek(None))
            }
            fn visit_none<E>(self) -> Result<ExcTypePeek, E> {
                Ok(ExcTypePeek(None))
            }
        }

        deserializer.deserialize_any(PeekVisitor)
    }
}

/// A map key, reduced to "is it `exc_type`?" without allocating it.
struct IsExcType(bool);

impl<'de> Deserialize<'de> for IsExcType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl Visitor<'_> for KeyVisitor {
            type Value = IsExcType;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }

            fn visit_str<E>(self, key: &str) -> Result<IsExcType, E> {
                Ok(IsExcType(key == "exc_type"))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    const ID: &str = "3ddba7c4-5d3e-4d0f-9b53-0a2f0e8f6a11";

    #[test]
    fn key() {
        assert_eq!(result_key(ID), format!("celery-task-meta-{ID}"));
    }

    #[test]
    fn success_is_byte_for_byte_celery() {
        let mut rec = ResultRecord::success(ID, json!(42));
        rec.date_done = "2026-11-25T11:28:44.099067+00:00".to_owned();
        assert_eq!(
            rec.to_json(),
            format!(
                r#"{{"status": "SUCCESS", "result": 42, "traceback": null, "children": [], "date_done": "2026-11-25T11:28:44.099067+00:00", "task_id": "{ID}"}}"#
            )
        );
        let mut rec = ResultRecord::success(ID, Value::Null);
        rec.date_done = "2026-11-25T11:28:44.099067+00:00".to_owned();
        assert!(rec.to_json().contains(r#""result": null, "traceback""#));
    }

    #[test]
    fn failure_keeps_celery_key_order() {
        let mut rec = ResultRecord::failure(
            ID,
            "TypeError",
            "builtins",
            "factorial() missing 1 required positional argument: 'n'",
            Some("Traceback (most recent call last):\n  ...\nTypeError: é".to_owned()),
        );
        rec.date_done = "2026-11-25T11:28:44+00:00".to_owned();
        assert_eq!(
            rec.to_json(),
            format!(
                r#"{{"status": "FAILURE", "result": {{"exc_type": "TypeError", "exc_message": ["factorial() missing 1 required positional argument: 'n'"], "exc_module": "builtins"}}, "traceback": "Traceback (most recent call last):\n  ...\nTypeError: \u00e9", "children": [], "date_done": "2026-11-25T11:28:44+00:00", "task_id": "{ID}"}}"#
            )
        );
    }

    #[test]
    fn not_registered_matches_celery() {
        let rec = ResultRecord::not_registered(ID, "hab.nope");
        assert_eq!(rec.status, TaskStatus::Failure);
        assert_eq!(rec.traceback, None);
        assert_eq!(
            rec.result,
            json!({"exc_type": "NotRegistered", "exc_message": ["hab.nope"], "exc_module": "celery.exceptions"})
        );
        let parsed = ResultRecord::parse(rec.to_json().as_bytes()).unwrap();
        assert_eq!(parsed.exc_type.as_deref(), Some("NotRegistered"));
    }

    #[test]
    fn date_done_is_python_isoformat() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 11, 28, 44).unwrap();
        assert_eq!(format_date_done(t), "2026-11-25T11:28:44+00:00");
        let t = t + chrono::Duration::microseconds(99_067);
        assert_eq!(format_date_done(t), "2026-11-25T11:28:44.099067+00:00");
        let now = date_done_now();
        assert!(now.ends_with("+00:00") && now.len() >= 25, "{now}");
    }

    #[test]
    fn parse_success_and_failure() {
        let rec = ResultRecord::success(ID, json!({"exc_type": 1, "n": [1, 2]}));
        // A success value that merely looks like an exception does not break parsing.
        let p = ResultRecord::parse(rec.to_json().as_bytes()).unwrap();
        assert_eq!((p.status, p.exc_type), (TaskStatus::Success, None));

        let json = format!(
            r#"{{"status": "FAILURE", "result": {{"exc_type": "OSError", "exc_message": ["[Errno 28] No space left on device"], "exc_module": "builtins"}}, "traceback": "Traceback ...", "children": [], "date_done": "2026-11-25T11:28:44.099067+00:00", "task_id": "{ID}"}}"#
        );
        let parsed = ResultRecord::parse(json.as_bytes()).unwrap();
        assert_eq!(
            parsed,
            ParsedResult {
                status: TaskStatus::Failure,
                task_id: ID.to_owned(),
                exc_type: Some("OSError".to_owned()),
            }
        );
        let ok = ResultRecord::success(ID, json!(456574));
        let parsed = ResultRecord::parse(ok.to_json().as_bytes()).unwrap();
        assert_eq!(
            (parsed.status, parsed.exc_type),
            (TaskStatus::Success, None)
        );
        assert_eq!(parsed.task_id, ID);
    }

    #[test]
    fn parse_other_states_and_garbage() {
        let p = ResultRecord::parse(br#"{"status": "REVOKED", "result": null, "task_id": "x"}"#)
            .unwrap();
        assert_eq!(p.status, TaskStatus::Other("REVOKED".to_owned()));
        assert!(p.status.is_ready());
        assert!(!TaskStatus::Other("STARTED".into()).is_ready());
        assert!(ResultRecord::parse(b"not json").is_err());
        assert!(ResultRecord::parse(br#"{"status": "SUCCESS"}"#).is_err());
        assert!(ResultRecord::parse(br#"[1, 2]"#).is_err());
    }

    #[test]
    fn status_serde() {
        assert_eq!(
            serde_json::to_string(&TaskStatus::Success).unwrap(),
            r#""SUCCESS""#
        );
        assert_eq!(
            serde_json::to_string(&TaskStatus::Failure).unwrap(),
            r#""FAILURE""#
        );
        let s: TaskStatus = serde_json::from_str(r#""RETRY""#).unwrap();
        assert_eq!(s, TaskStatus::Other("RETRY".into()));
    }
}
