//! The Celery protocol v2 task message: JSON body, AMQP properties and header table.
//!
//! [`encode`] produces exactly what a Celery 5.7 client publishes (same body bytes, same
//! properties, every header with the AMQP field type py-amqp gives it). [`decode`] is what
//! hab's worker applies to a delivery; it refuses — with a [`DecodeError`] instead of a
//! crash — the shapes that take a real Celery worker down (no `id` header, a body that is
//! not a 3-element array, no `content_type`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldArray, FieldTable, LongString, ShortString};
use serde_json::{Map, Value};

use super::{py_dict_repr, py_tuple_repr, write_py_json};

/// Content type of every message hab sends and the only one its worker accepts.
pub const CONTENT_TYPE: &str = "application/json";
/// Content encoding of every message hab sends.
pub const CONTENT_ENCODING: &str = "utf-8";

/// The body's third element: Celery's "embed" with no callbacks, errbacks, chain or chord.
const EMBED: &[u8] = br#"{"callbacks": null, "errbacks": null, "chain": null, "chord": null}"#;

/// One task invocation to publish: what Celery's `apply_async` puts on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMessage {
    /// Task id (a UUID v4): the `id`/`root_id` headers, `correlation_id` and result key.
    pub id: String,
    /// Registered task name, e.g. `hab.factorial`.
    pub task: String,
    /// Positional arguments; must be a JSON array (Python's `args` tuple).
    pub args: Value,
    /// Keyword arguments (Python's `kwargs` dict).
    pub kwargs: Map<String, Value>,
    /// The `origin` header, `gen<pid>@<host>` as Celery writes it.
    pub origin: String,
    /// The `reply_to` property: the client's id, one per process as in Celery.
    pub reply_to: String,
}

impl TaskMessage {
    /// A message for `task` with positional `args` (a JSON array), no kwargs, a fresh
    /// UUID v4 id, and this process's origin and reply-to id.
    ///
    /// A non-array `args` is wrapped as a one-element array.
    pub fn new(task: &str, args: Value) -> Self {
        let args = match args {
            Value::Array(_) => args,
            other => Value::Array(vec![other]),
        };
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            task: task.to_owned(),
            args,
            kwargs: Map::new(),
            origin: process_origin().to_owned(),
            reply_to: process_reply_to().to_owned(),
        }
    }
}

/// `gen<pid>@<host>`, computed once per process.
fn process_origin() -> &'static str {
    static ORIGIN: OnceLock<String> = OnceLock::new();
    ORIGIN.get_or_init(|| format!("gen{}@{}", std::process::id(), hostname()))
}

/// The client id used as `reply_to`, fixed for the life of the process (like Celery's
/// `app.thread_oid`).
fn process_reply_to() -> &'static str {
    static REPLY_TO: OnceLock<String> = OnceLock::new();
    REPLY_TO.get_or_init(|| uuid::Uuid::new_v4().to_string())
}

/// The kernel's host name (what Python's `socket.gethostname()` returns).
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Encodes `msg` as Celery 5.7 does: the body bytes and the AMQP properties with the full
/// header table (field types as py-amqp writes them: strings `S`, ints `I`, bools `t`,
/// `None` void, lists `A`, dicts `F`).
///
/// `args` that is not a JSON array is sent as a one-element array. Publish the result to
/// the default exchange `""` with routing key `celery`.
pub fn encode(msg: &TaskMessage) -> (Vec<u8>, BasicProperties) {
    let args: &[Value] = match &msg.args {
        Value::Array(items) => items,
        single => std::slice::from_ref(single),
    };

    let mut body = Vec::with_capacity(96);
    body.push(b'[');
    write_py_json(&mut body, args);
    body.extend_from_slice(b", ");
    write_py_json(&mut body, &msg.kwargs);
    body.extend_from_slice(b", ");
    body.extend_from_slice(EMBED);
    body.push(b']');

    let mut argsrepr = String::with_capacity(16);
    py_tuple_repr(args, &mut argsrepr);
    let mut kwargsrepr = String::with_capacity(2);
    py_dict_repr(&msg.kwargs, &mut kwargsrepr);

    let s = |v: &str| AMQPValue::LongString(LongString::from(v));
    // Sorted by key, so BTreeMap::from builds the tree in one pass.
    let headers = BTreeMap::from([
        (
            ShortString::from("argsrepr"),
            AMQPValue::LongString(argsrepr.into()),
        ),
        (ShortString::from("eta"), AMQPValue::Void),
        (ShortString::from("expires"), AMQPValue::Void),
        (ShortString::from("group"), AMQPValue::Void),
        (ShortString::from("group_index"), AMQPValue::Void),
        (ShortString::from("id"), s(&msg.id)),
        (
            ShortString::from("ignore_result"),
            AMQPValue::Boolean(false),
        ),
        (
            ShortString::from("kwargsrepr"),
            AMQPValue::LongString(kwargsrepr.into()),
        ),
        (ShortString::from("lang"), s("py")),
        (ShortString::from("origin"), s(&msg.origin)),
        (ShortString::from("parent_id"), AMQPValue::Void),
        (
            ShortString::from("replaced_task_nesting"),
            AMQPValue::LongInt(0),
        ),
        (ShortString::from("retries"), AMQPValue::LongInt(0)),
        (ShortString::from("root_id"), s(&msg.id)),
        (ShortString::from("shadow"), AMQPValue::Void),
        (ShortString::from("stamped_headers"), AMQPValue::Void),
        (
            ShortString::from("stamps"),
            AMQPValue::FieldTable(FieldTable::default()),
        ),
        (ShortString::from("task"), s(&msg.task)),
        (
            ShortString::from("timelimit"),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::Void, AMQPValue::Void])),
        ),
    ]);

    let props = BasicProperties::default()
        .with_content_type(ShortString::from(CONTENT_TYPE))
        .with_content_encoding(ShortString::from(CONTENT_ENCODING))
        .with_headers(FieldTable::from(headers))
        .with_delivery_mode(2)
        .with_priority(0)
        .with_correlation_id(ShortString::from(msg.id.as_str()))
        .with_reply_to(ShortString::from(msg.reply_to.as_str()));
    (body, props)
}

/// A task message as hab's worker sees it after [`decode`].
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedTask {
    /// Task id from the `id` header; the result goes to `celery-task-meta-<id>`.
    pub id: String,
    /// Task name from the `task` header.
    pub task: String,
    /// Positional arguments (the body's first element).
    pub args: Vec<Value>,
    /// Keyword arguments (the body's second element).
    pub kwargs: Map<String, Value>,
    /// How Celery asked for it to run: `eta`, `expires`, `ignore_result`, and what hab's
    /// worker does not implement.
    pub options: ExecOptions,
}

/// The execution options of a task message (headers and the body's embed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecOptions {
    /// `eta` header (also what `countdown` becomes): do not run before this time.
    pub eta: Option<chrono::DateTime<chrono::Utc>>,
    /// `expires` header: after this time the task is revoked (`REVOKED`, not run).
    pub expires: Option<chrono::DateTime<chrono::Utc>>,
    /// `ignore_result` header: store no result.
    pub ignore_result: bool,
    /// Celery features the message asks for that hab's worker does not implement
    /// (`callbacks`, `errbacks`, `chain`, `chord`, `timelimit`): such a message is refused
    /// with a `FAILURE` naming them, never run with them silently dropped.
    pub unsupported: Vec<&'static str>,
}

/// Why a delivery is not a task hab's worker can run. The worker rejects it without
/// requeue and keeps running; [`DecodeError::reason`] is the code logged and counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message has no header table (Celery rejects it).
    #[error("message has no headers; a Celery v2 task message carries `task` and `id` headers")]
    NoHeaders,
    /// No usable `id` header (this crashes a real Celery worker).
    #[error("message has no `id` header (or it is empty); the task id is required")]
    MissingId,
    /// No usable `task` header (Celery rejects it).
    #[error("message has no `task` header (or it is empty); the task name is required")]
    MissingTask,
    /// A header that is present but is not a UTF-8 string.
    #[error("header `{0}` is not a UTF-8 string")]
    BadHeader(&'static str),
    /// No `content_type` property (this crashes a real Celery worker).
    #[error("message has no content_type; send `application/json`")]
    MissingContentType,
    /// A content type other than `application/json` (Celery rejects pickle and the like).
    #[error("content type `{0}` is not supported; send `application/json`")]
    UnsupportedContentType(String),
    /// The body is not valid JSON (Celery acks and drops it).
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    /// The body is JSON but not `[args (array), kwargs (object), embed (object)]` (a body
    /// that is not a 3-element array crashes a real Celery worker).
    #[error("body is not a Celery v2 body [args, kwargs, embed]: {0}")]
    BadBody(&'static str),
    /// An `eta` or `expires` header that is not an ISO-8601 time (Celery rejects the
    /// message).
    #[error("header `{0}` is not an ISO-8601 time: {1:?}")]
    BadTime(&'static str, String),
}

impl DecodeError {
    /// A short snake_case code for logs and CSV columns, e.g. `missing_id`.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::NoHeaders => "no_headers",
            DecodeError::MissingId => "missing_id",
            DecodeError::MissingTask => "missing_task",
            DecodeError::BadHeader(_) => "bad_header",
            DecodeError::MissingContentType => "missing_content_type",
            DecodeError::UnsupportedContentType(_) => "unsupported_content_type",
            DecodeError::InvalidJson(_) => "invalid_json",
            DecodeError::BadBody(_) => "bad_body",
            DecodeError::BadTime(..) => "bad_time",
        }
    }
}

/// A string header: `Ok(None)` if absent or empty, accepting LongString and ShortString.
fn header_str(headers: &FieldTable, name: &'static str) -> Result<Option<String>, DecodeError> {
    let s = match headers.inner().get(name) {
        None | Some(AMQPValue::Void) => return Ok(None),
        Some(AMQPValue::LongString(s)) => std::str::from_utf8(s.as_bytes())
            .map_err(|_| DecodeError::BadHeader(name))?
            .to_owned(),
        Some(AMQPValue::ShortString(s)) => s.as_str().to_owned(),
        Some(_) => return Err(DecodeError::BadHeader(name)),
    };
    Ok((!s.is_empty()).then_some(s))
}

/// Decodes a delivery into the task to run, checking in this order: headers, `task`,
/// `id`, content type (`application/json`, parameters such as `; charset=utf-8` allowed),
/// JSON syntax, body shape `[array, object, object]`.
pub fn decode(body: &[u8], props: &BasicProperties) -> Result<DecodedTask, DecodeError> {
    let headers = props.headers().as_ref().ok_or(DecodeError::NoHeaders)?;
    let task = header_str(headers, "task")?.ok_or(DecodeError::MissingTask)?;
    let id = header_str(headers, "id")?.ok_or(DecodeError::MissingId)?;

    let content_type = props
        .content_type()
        .as_ref()
        .ok_or(DecodeError::MissingContentType)?
        .as_str();
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    if !mime.eq_ignore_ascii_case(CONTENT_TYPE) {
        return Err(DecodeError::UnsupportedContentType(content_type.to_owned()));
    }

    let parsed: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::InvalidJson(e.to_string()))?;
    let Value::Array(parts) = parsed else {
        return Err(DecodeError::BadBody("not a JSON array"));
    };
    let [args, kwargs, embed]: [Value; 3] = parts
        .try_into()
        .map_err(|_| DecodeError::BadBody("not exactly 3 elements"))?;
    let Value::Array(args) = args else {
        return Err(DecodeError::BadBody("args is not an array"));
    };
    let Value::Object(kwargs) = kwargs else {
        return Err(DecodeError::BadBody("kwargs is not an object"));
    };
    let Value::Object(embed) = embed else {
        return Err(DecodeError::BadBody("embed is not an object"));
    };
    let options = exec_options(headers, &embed)?;
    Ok(DecodedTask {
        id,
        task,
        args,
        kwargs,
        options,
    })
}

/// The execution options in `headers` and the body's `embed`.
fn exec_options(
    headers: &FieldTable,
    embed: &Map<String, Value>,
) -> Result<ExecOptions, DecodeError> {
    let time = |name: &'static str| -> Result<_, DecodeError> {
        header_str(headers, name)?
            .map(|s| parse_time(&s).ok_or(DecodeError::BadTime(name, s)))
            .transpose()
    };
    let mut unsupported = Vec::new();
    for key in ["callbacks", "errbacks", "chain", "chord"] {
        let used = match embed.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Array(items)) => !items.is_empty(),
            Some(_) => true,
        };
        if used {
            unsupported.push(key);
        }
    }
    let set = |v: &AMQPValue| !matches!(v, AMQPValue::Void);
    if let Some(AMQPValue::FieldArray(limits)) = headers.inner().get("timelimit")
        && limits.as_slice().iter().any(set)
    {
        unsupported.push("timelimit");
    }
    Ok(ExecOptions {
        eta: time("eta")?,
        expires: time("expires")?,
        ignore_result: matches!(
            headers.inner().get("ignore_result"),
            Some(AMQPValue::Boolean(true))
        ),
        unsupported,
    })
}

/// An ISO-8601 time as Celery writes it (`2026-12-07T10:00:00.123456+00:00`); a time
/// without an offset is taken as UTC (Celery's `enable_utc` default).
fn parse_time(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn factorial_msg() -> TaskMessage {
        TaskMessage::new("hab.factorial", json!([100000]))
    }

    #[test]
    fn body_is_byte_for_byte_celery() {
        let (body, _) = encode(&factorial_msg());
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"[[100000], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#
        );
        let mut msg = TaskMessage::new("hab.write_zeros", json!(["/tmp/z", 1000000000u64]));
        msg.kwargs.insert("extra".into(), json!(1.0));
        let (body, _) = encode(&msg);
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"[["/tmp/z", 1000000000], {"extra": 1.0}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#
        );
        let (body, _) = encode(&TaskMessage::new("hab.trivial", json!([])));
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"[[], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#
        );
    }

    #[test]
    fn properties_match_celery() {
        let msg = factorial_msg();
        let (_, props) = encode(&msg);
        assert_eq!(
            props.content_type().as_ref().unwrap().as_str(),
            "application/json"
        );
        assert_eq!(props.content_encoding().as_ref().unwrap().as_str(), "utf-8");
        assert_eq!(*props.delivery_mode(), Some(2));
        assert_eq!(*props.priority(), Some(0));
        assert_eq!(props.correlation_id().as_ref().unwrap().as_str(), msg.id);
        assert_eq!(props.reply_to().as_ref().unwrap().as_str(), msg.reply_to);
        assert!(props.expiration().is_none());
    }

    #[test]
    fn header_table_has_celery_types() {
        let msg = factorial_msg();
        let (_, props) = encode(&msg);
        let headers = props.headers().as_ref().unwrap().inner();
        let ls = |v: &str| AMQPValue::LongString(v.into());
        let expected: Vec<(&str, AMQPValue)> = vec![
            ("lang", ls("py")),
            ("task", ls("hab.factorial")),
            ("id", ls(&msg.id)),
            ("shadow", AMQPValue::Void),
            ("eta", AMQPValue::Void),
            ("expires", AMQPValue::Void),
            ("group", AMQPValue::Void),
            ("group_index", AMQPValue::Void),
            ("retries", AMQPValue::LongInt(0)),
            (
                "timelimit",
                AMQPValue::FieldArray(vec![AMQPValue::Void, AMQPValue::Void].into()),
            ),
            ("root_id", ls(&msg.id)),
            ("parent_id", AMQPValue::Void),
            ("argsrepr", ls("(100000,)")),
            ("kwargsrepr", ls("{}")),
            ("origin", ls(&msg.origin)),
            ("ignore_result", AMQPValue::Boolean(false)),
            ("replaced_task_nesting", AMQPValue::LongInt(0)),
            ("stamped_headers", AMQPValue::Void),
            ("stamps", AMQPValue::FieldTable(FieldTable::default())),
        ];
        assert_eq!(headers.len(), expected.len(), "{headers:?}");
        for (key, value) in expected {
            assert_eq!(headers.get(key), Some(&value), "header {key}");
        }
        let origin = msg.origin.as_str();
        let pid = format!("gen{}@", std::process::id());
        assert!(
            origin.starts_with(&pid) && origin.len() > pid.len(),
            "{origin}"
        );
    }

    #[test]
    fn argsrepr_follows_python() {
        let repr = |args: Value| {
            let (_, props) = encode(&TaskMessage::new("t", args));
            let h = props.headers().clone().unwrap();
            h.inner()
                .get("argsrepr")
                .unwrap()
                .as_long_string()
                .unwrap()
                .to_string()
        };
        assert_eq!(repr(json!([])), "()");
        assert_eq!(repr(json!([10.0])), "(10.0,)");
        assert_eq!(repr(json!([0.5])), "(0.5,)");
        assert_eq!(repr(json!(["/tmp/x", 5])), "('/tmp/x', 5)");
    }

    #[test]
    fn new_fills_ids() {
        let a = TaskMessage::new("hab.trivial", json!([]));
        let b = TaskMessage::new("hab.trivial", json!([]));
        assert_ne!(a.id, b.id);
        assert_eq!(a.reply_to, b.reply_to);
        assert!(uuid::Uuid::parse_str(&a.id).is_ok());
        assert_eq!(TaskMessage::new("t", json!(5)).args, json!([5]));
    }

    #[test]
    fn round_trip() {
        let mut msg = TaskMessage::new("hab.write_zeros", json!(["/tmp/é", 17]));
        msg.kwargs.insert("nbytes".into(), json!(3));
        let (body, props) = encode(&msg);
        let decoded = decode(&body, &props).unwrap();
        assert_eq!(
            decoded,
            DecodedTask {
                id: msg.id.clone(),
                task: msg.task.clone(),
                args: vec![json!("/tmp/é"), json!(17)],
                kwargs: msg.kwargs.clone(),
                options: ExecOptions::default(),
            }
        );
    }

    #[test]
    fn execution_options_are_read_not_ignored() {
        let msg = factorial_msg();
        let (_, props) = encode(&msg);
        let mut headers = props.headers().clone().unwrap();
        let t = |s: &str| AMQPValue::LongString(s.into());
        headers.insert("eta".into(), t("2026-12-07T10:00:02.500000+00:00"));
        headers.insert("expires".into(), t("2026-12-07T10:00:05"));
        headers.insert("ignore_result".into(), AMQPValue::Boolean(true));
        headers.insert(
            "timelimit".into(),
            AMQPValue::FieldArray(vec![AMQPValue::LongInt(10), AMQPValue::Void].into()),
        );
        let props = props.with_headers(headers.clone());
        let body = br#"[[1], {}, {"callbacks": [{"task": "hab.sleep"}], "errbacks": null, "chain": [], "chord": {"task": "x"}}]"#;
        let o = decode(body, &props).unwrap().options;
        assert_eq!(o.eta.unwrap().to_rfc3339(), "2026-12-07T10:00:02.500+00:00");
        assert_eq!(o.expires.unwrap().to_rfc3339(), "2026-12-07T10:00:05+00:00");
        assert!(o.ignore_result);
        assert_eq!(o.unsupported, vec!["callbacks", "chord", "timelimit"]);
        headers.insert("eta".into(), t("tomorrow"));
        let err = decode(body, &props.with_headers(headers)).unwrap_err();
        assert_eq!(err.reason(), "bad_time");
    }

    /// Properties with the given headers (a minimal valid set when `None`).
    fn props_with(headers: Option<FieldTable>, content_type: Option<&str>) -> BasicProperties {
        let mut props = BasicProperties::default();
        if let Some(h) = headers {
            props = props.with_headers(h);
        }
        if let Some(ct) = content_type {
            props = props.with_content_type(ct.into());
        }
        props
    }

    fn table(entries: &[(&str, AMQPValue)]) -> FieldTable {
        let mut t = FieldTable::default();
        for (k, v) in entries {
            t.insert((*k).into(), v.clone());
        }
        t
    }

    const BODY: &[u8] =
        br#"[[1], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#;

    fn good_headers() -> FieldTable {
        table(&[
            ("task", AMQPValue::LongString("hab.sleep".into())),
            ("id", AMQPValue::ShortString("abc".into())),
        ])
    }

    #[test]
    fn minimal_message_decodes_with_short_strings() {
        let d = decode(
            BODY,
            &props_with(Some(good_headers()), Some("application/json")),
        )
        .unwrap();
        assert_eq!((d.id.as_str(), d.task.as_str()), ("abc", "hab.sleep"));
        assert_eq!(d.args, vec![json!(1)]);
        let ct = "application/json; charset=utf-8";
        assert!(decode(BODY, &props_with(Some(good_headers()), Some(ct))).is_ok());
    }

    #[test]
    fn malformed_messages_are_classified() {
        let json = Some("application/json");
        let check = |body: &[u8], props: BasicProperties, want: DecodeError, reason: &str| {
            let err = decode(body, &props).unwrap_err();
            assert_eq!(err, want);
            assert_eq!(err.reason(), reason);
        };
        let sleep = || ("task", AMQPValue::LongString("hab.sleep".into()));
        let cases = [
            (None, json, DecodeError::NoHeaders, "no_headers"),
            (
                Some(table(&[sleep()])),
                json,
                DecodeError::MissingId,
                "missing_id",
            ),
            (
                Some(table(&[sleep(), ("id", AMQPValue::LongString("".into()))])),
                json,
                DecodeError::MissingId,
                "missing_id",
            ),
            (
                Some(table(&[("id", AMQPValue::LongString("abc".into()))])),
                json,
                DecodeError::MissingTask,
                "missing_task",
            ),
            (
                Some(table(&[sleep(), ("id", AMQPValue::LongInt(5))])),
                json,
                DecodeError::BadHeader("id"),
                "bad_header",
            ),
            (
                Some(good_headers()),
                None,
                DecodeError::MissingContentType,
                "missing_content_type",
            ),
            (
                Some(good_headers()),
                Some("application/x-python-serialize"),
                DecodeError::UnsupportedContentType("application/x-python-serialize".into()),
                "unsupported_content_type",
            ),
        ];
        for (headers, content_type, want, reason) in cases {
            check(BODY, props_with(headers, content_type), want, reason);
        }
        let err = decode(b"[[1], {}", &props_with(Some(good_headers()), json)).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidJson(_)), "{err:?}");
        assert_eq!(err.reason(), "invalid_json");

        let bad_bodies: [(&[u8], &str); 6] = [
            (br#"{"args": [1]}"#, "not a JSON array"),
            (br#"[[1], {}]"#, "not exactly 3 elements"),
            (br#"[[1], {}, {}, {}]"#, "not exactly 3 elements"),
            (br#"[1, {}, {}]"#, "args is not an array"),
            (br#"[[1], null, {}]"#, "kwargs is not an object"),
            (br#"[[1], {}, 5]"#, "embed is not an object"),
        ];
        for (body, what) in bad_bodies {
            check(
                body,
                props_with(Some(good_headers()), json),
                DecodeError::BadBody(what),
                "bad_body",
            );
        }
    }
}
