//! What the worker does with a delivery, decided before anything runs: a pure function
//! of the message, the time, the limits and how often the task already killed a worker.
//!
//! Every delivery ends in exactly one [`Disposition`]; none of them requeues a message the
//! worker could not handle, so no input makes a message loop (the live worker only hands a
//! message back when it is stopping before the message started). The property tests below
//! throw arbitrary headers, bodies, content types and arguments at it.

use chrono::{DateTime, Utc};
use lapin::BasicProperties;
use uuid::Uuid;

use crate::config::limits::WorkerLimits;
use crate::protocol::message::{DecodedTask, decode};
use crate::tasks::{Refusal, RefusalKind, Task, TaskError, TaskFailure};

/// What to do with a delivery.
#[derive(Debug)]
pub enum Disposition {
    /// Reject without requeue (not a task message hab can name): `reason` is counted.
    Reject {
        /// The task id, when a usable `id` header was there.
        id: Option<Uuid>,
        /// snake_case reason, e.g. `missing_id`.
        reason: &'static str,
    },
    /// Reject and store a `NotRegistered` FAILURE, as Celery does for an unknown name.
    NotRegistered(DecodedTask, String),
    /// Acknowledge with a FAILURE naming the rule, without running.
    Refuse(Box<Refused>),
    /// Acknowledge with a `REVOKED` result: `expires` has passed.
    Revoke(DecodedTask),
    /// Hold until `eta` without a slot, then decide again with [`ready`].
    Hold(DecodedTask, DateTime<Utc>),
    /// Run it.
    Run(DecodedTask, Task),
    /// Run it as a function that raises at once (bad arguments: Celery's `TypeError` /
    /// `ValueError`).
    RunFailing(DecodedTask, TaskFailure),
}

/// A refused message: its id (string, as the result key needs it) and the rule.
#[derive(Debug)]
pub struct Refused {
    /// The task id as sent.
    pub task_id: String,
    /// The id as a UUID (nil if it is not one).
    pub id: Uuid,
    /// The rule it broke.
    pub refusal: Refusal,
    /// Whether the message asked not to store a result.
    pub ignore_result: bool,
}

/// Decides what to do with a delivery. `crashes(id)` says how often a worker died running
/// the task; it is asked only for a redelivered message.
pub fn triage(
    body: &[u8],
    props: &BasicProperties,
    redelivered: bool,
    crashes: impl FnOnce(Uuid) -> u32,
    limits: &WorkerLimits,
    now: DateTime<Utc>,
) -> Disposition {
    if body.len() as u64 > limits.max_message_bytes {
        let refusal = Refusal::limit(
            RefusalKind::MessageTooLarge,
            &format!("a message body of {} bytes", body.len()),
            "max_message_bytes",
            format_args!("of {} bytes", limits.max_message_bytes),
        );
        return match header_id(props) {
            Some((task_id, id)) => Disposition::Refuse(Box::new(Refused {
                task_id,
                id,
                refusal,
                ignore_result: false,
            })),
            None => Disposition::Reject {
                id: None,
                reason: "message_too_large",
            },
        };
    }
    let msg = match decode(body, props) {
        Ok(m) => m,
        Err(e) => {
            return Disposition::Reject {
                id: header_id(props).map(|(_, id)| id),
                reason: e.reason(),
            };
        }
    };
    let id = Uuid::parse_str(&msg.id).unwrap_or(Uuid::nil());
    if redelivered {
        let n = crashes(id);
        if n >= limits.crash_limit {
            let refusal = Refusal::new(
                RefusalKind::WorkerLost,
                format!(
                    "Worker exited prematurely: the task's worker died {n} times while \
                     running it; it is failed instead of run again \
                     (workers.limits.crash_limit = {})",
                    limits.crash_limit
                ),
            );
            return refuse(msg, id, refusal);
        }
    }
    if !msg.options.unsupported.is_empty() {
        let refusal = Refusal::new(
            RefusalKind::UnsupportedFeature,
            format!(
                "{} asks for {}, which hab's worker does not implement; send the task \
                 without them, or use a real Celery worker (workers.kind = \"celery\")",
                msg.task,
                msg.options.unsupported.join(", ")
            ),
        );
        return refuse(msg, id, refusal);
    }
    ready(msg, limits, now)
}

/// The decision for a decoded message once nothing but time can stop it: revoked when
/// expired, held until its eta, else bound and checked against the limits.
pub fn ready(msg: DecodedTask, limits: &WorkerLimits, now: DateTime<Utc>) -> Disposition {
    if msg.options.expires.is_some_and(|t| now > t) {
        return Disposition::Revoke(msg);
    }
    if let Some(eta) = msg.options.eta
        && eta > now
    {
        return Disposition::Hold(msg, eta);
    }
    let id = Uuid::parse_str(&msg.id).unwrap_or(Uuid::nil());
    match Task::from_call(&msg.task, &msg.args, &msg.kwargs) {
        Ok(task) => match task.check(limits) {
            Ok(()) => Disposition::Run(msg, task),
            Err(refusal) => refuse(msg, id, refusal),
        },
        Err(TaskError::NotRegistered(name)) => Disposition::NotRegistered(msg, name),
        Err(e) => Disposition::RunFailing(msg, e.to_failure()),
    }
}

fn refuse(msg: DecodedTask, id: Uuid, refusal: Refusal) -> Disposition {
    Disposition::Refuse(Box::new(Refused {
        ignore_result: msg.options.ignore_result,
        task_id: msg.id,
        id,
        refusal,
    }))
}

/// The `id` header, if it is a UUID (as text and parsed).
fn header_id(props: &BasicProperties) -> Option<(String, Uuid)> {
    let headers = props.headers().as_ref()?;
    let text = match headers.inner().get("id")? {
        lapin::types::AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok()?,
        lapin::types::AMQPValue::ShortString(s) => s.as_str(),
        _ => return None,
    };
    let id = Uuid::parse_str(text).ok()?;
    Some((text.to_owned(), id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::message::{TaskMessage, encode};
    use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn now() -> DateTime<Utc> {
        "2026-12-07T10:00:00Z".parse().unwrap()
    }

    fn run(body: &[u8], props: &BasicProperties) -> Disposition {
        triage(body, props, false, |_| 0, &WorkerLimits::default(), now())
    }

    #[test]
    fn each_rule_has_its_disposition() {
        let (body, props) = encode(&TaskMessage::new("hab.factorial", json!([20])));
        assert!(matches!(
            run(&body, &props),
            Disposition::Run(_, Task::Factorial { n: 20 })
        ));
        let (body, props) = encode(&TaskMessage::new("hab.factorial", json!([1_000_000_000])));
        match run(&body, &props) {
            Disposition::Refuse(r) => assert_eq!(r.refusal.kind, RefusalKind::FactorialLimit),
            other => panic!("{other:?}"),
        }
        let (body, props) = encode(&TaskMessage::new("hab.nope", json!([])));
        assert!(matches!(run(&body, &props), Disposition::NotRegistered(_, n) if n == "hab.nope"));
        let (body, props) = encode(&TaskMessage::new("hab.factorial", json!(["x"])));
        assert!(
            matches!(run(&body, &props), Disposition::RunFailing(_, f) if f.exc_type == "TypeError")
        );
        // Redelivered after two deaths: failed, not run a third time; once is retried.
        let (body, props) = encode(&TaskMessage::new("hab.sleep", json!([1])));
        let limits = WorkerLimits::default();
        match triage(&body, &props, true, |_| 2, &limits, now()) {
            Disposition::Refuse(r) => assert_eq!(r.refusal.kind, RefusalKind::WorkerLost),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            triage(&body, &props, true, |_| 1, &limits, now()),
            Disposition::Run(..)
        ));
        // Not redelivered: the side channel is not even read.
        assert!(matches!(
            triage(&body, &props, false, |_| panic!("read"), &limits, now()),
            Disposition::Run(..)
        ));
        // Too large, with and without an id to store a result under.
        let big = vec![b' '; 5 << 20];
        assert!(
            matches!(run(&big, &props), Disposition::Refuse(r) if r.refusal.kind == RefusalKind::MessageTooLarge)
        );
        assert!(matches!(
            run(&big, &BasicProperties::default()),
            Disposition::Reject {
                id: None,
                reason: "message_too_large"
            }
        ));
    }

    #[test]
    fn eta_and_expires_follow_the_clock() {
        let (body, props) = encode(&TaskMessage::new("hab.trivial", json!([])));
        let mut headers = props.headers().clone().unwrap();
        headers.insert(
            "eta".into(),
            AMQPValue::LongString("2026-12-07T10:00:02+00:00".into()),
        );
        headers.insert(
            "expires".into(),
            AMQPValue::LongString("2026-12-07T10:00:05+00:00".into()),
        );
        let props = props.with_headers(headers);
        let limits = WorkerLimits::default();
        let Disposition::Hold(msg, eta) = triage(&body, &props, false, |_| 0, &limits, now())
        else {
            panic!("held")
        };
        assert_eq!(
            eta,
            "2026-12-07T10:00:02Z".parse::<DateTime<Utc>>().unwrap()
        );
        let later = |s: i64| now() + chrono::Duration::seconds(s);
        assert!(matches!(
            ready(msg.clone(), &limits, later(1)),
            Disposition::Hold(..)
        ));
        assert!(matches!(
            ready(msg.clone(), &limits, later(2)),
            Disposition::Run(..)
        ));
        assert!(matches!(
            ready(msg, &limits, later(6)),
            Disposition::Revoke(_)
        ));
    }

    /// Any JSON value, a few levels deep.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            Just(Value::from("../../etc/passwd")),
            Just(Value::from("/etc/passwd")),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn amqp_value() -> impl Strategy<Value = AMQPValue> {
        prop_oneof![
            ".{0,40}".prop_map(|s: String| AMQPValue::LongString(LongString::from(s))),
            prop::collection::vec(any::<u8>(), 0..40)
                .prop_map(|b| AMQPValue::LongString(LongString::from(b))),
            any::<i32>().prop_map(AMQPValue::LongInt),
            any::<i64>().prop_map(AMQPValue::LongLongInt),
            any::<bool>().prop_map(AMQPValue::Boolean),
            any::<f64>().prop_map(AMQPValue::Double),
            Just(AMQPValue::Void),
            Just(AMQPValue::LongString("2026-12-07T10:00:01+00:00".into())),
            Just(AMQPValue::LongString(
                "00000000-0000-4000-8000-000000000001".into()
            )),
            prop::collection::vec(
                prop_oneof![
                    Just(AMQPValue::Void),
                    any::<i32>().prop_map(AMQPValue::LongInt)
                ],
                0..3
            )
            .prop_map(|v| AMQPValue::FieldArray(v.into())),
        ]
    }

    fn headers() -> impl Strategy<Value = Option<FieldTable>> {
        let key = prop_oneof![
            Just("task".to_string()),
            Just("id".to_string()),
            Just("eta".to_string()),
            Just("expires".to_string()),
            Just("timelimit".to_string()),
            Just("ignore_result".to_string()),
            "[a-z_]{1,8}",
        ];
        let task = prop_oneof![
            Just("hab.trivial"),
            Just("hab.sleep"),
            Just("hab.write_zeros"),
            Just("hab.factorial"),
            Just("hab.nope"),
        ];
        (
            prop::collection::vec((key, amqp_value()), 0..6),
            prop::option::of(task),
            any::<bool>(),
        )
            .prop_map(|(pairs, task, with_id)| {
                let mut t = FieldTable::default();
                if let Some(task) = task {
                    t.insert("task".into(), AMQPValue::LongString(task.into()));
                }
                if with_id {
                    t.insert(
                        "id".into(),
                        AMQPValue::LongString("00000000-0000-4000-8000-0000000000aa".into()),
                    );
                }
                for (k, v) in pairs {
                    t.insert(ShortString::from(k), v);
                }
                Some(t)
            })
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            (json_value(), prop::collection::btree_map("[a-z]{1,6}", json_value(), 0..3), json_value())
                .prop_map(|(args, kwargs, embed)| {
                    serde_json::to_vec(&json!([args, kwargs, embed])).unwrap()
                }),
            (prop::collection::vec(json_value(), 0..3), prop::option::of(json_value())).prop_map(
                |(args, cb)| {
                    serde_json::to_vec(&json!([args, {}, {"callbacks": cb, "errbacks": null, "chain": null, "chord": null}]))
                        .unwrap()
                }
            ),
            json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        ]
    }

    fn content_type() -> impl Strategy<Value = Option<String>> {
        prop::option::of(prop_oneof![
            Just("application/json".to_string()),
            Just("application/json; charset=utf-8".to_string()),
            Just("application/x-python-serialize".to_string()),
            ".{0,20}",
        ])
    }

    /// Cases per property: `PROPTEST_CASES` (scripts/test.sh runs the default; a longer
    /// run: `PROPTEST_CASES=200000 cargo test --release --lib worker::triage`).
    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: std::env::var("PROPTEST_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1024),
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        /// Whatever arrives ends in exactly one disposition, none of which requeues, and
        /// what runs is within the limits.
        #[test]
        fn any_delivery_is_settled_without_a_panic(
            headers in headers(),
            body in body(),
            content_type in content_type(),
            encoding in prop::option::of(".{0,8}"),
            redelivered in any::<bool>(),
            crashes in 0u32..4,
        ) {
            let mut props = BasicProperties::default();
            if let Some(h) = headers { props = props.with_headers(h); }
            if let Some(c) = content_type { props = props.with_content_type(ShortString::from(c)); }
            if let Some(e) = encoding { props = props.with_content_encoding(ShortString::from(e)); }
            let limits = WorkerLimits::default();
            match triage(&body, &props, redelivered, |_| crashes, &limits, now()) {
                Disposition::Reject { reason, .. } => prop_assert!(!reason.is_empty()),
                Disposition::Refuse(r) => {
                    let rule = format!("(rule: {})", r.refusal.kind.code());
                    prop_assert!(r.refusal.message.ends_with(&rule), "{}", r.refusal.message);
                    let f = r.refusal.to_failure();
                    prop_assert!(!f.exc_type.is_empty());
                }
                Disposition::Run(msg, task) => {
                    prop_assert_eq!(task.check(&limits), Ok(()));
                    prop_assert!(msg.options.unsupported.is_empty());
                    prop_assert!(!(redelivered && crashes >= limits.crash_limit));
                }
                Disposition::RunFailing(_, f) => {
                    prop_assert!(["TypeError", "ValueError"].contains(&f.exc_type.as_str()));
                }
                Disposition::Hold(_, eta) => prop_assert!(eta > now()),
                Disposition::Revoke(msg) => prop_assert!(msg.options.expires.unwrap() < now()),
                Disposition::NotRegistered(msg, name) => prop_assert_eq!(msg.task, name),
            }
        }

        /// Binding any arguments to any task never panics, and a bound task either passes
        /// the limits or is refused with one.
        #[test]
        fn any_arguments_bind_or_fail_like_python(
            task in prop_oneof![Just("hab.trivial"), Just("hab.sleep"), Just("hab.write_zeros"), Just("hab.factorial")],
            args in prop::collection::vec(json_value(), 0..3),
            kwargs in prop::collection::btree_map(prop_oneof![Just("n".to_string()), Just("seconds".to_string()), Just("path".to_string()), Just("nbytes".to_string()), "[a-z]{1,4}"], json_value(), 0..3),
        ) {
            let kwargs: serde_json::Map<String, Value> = kwargs.into_iter().collect();
            match Task::from_call(task, &args, &kwargs) {
                Ok(t) => {
                    let _ = t.check(&WorkerLimits::default());
                }
                Err(e) => prop_assert!(!e.to_failure().exc_message.is_empty()),
            }
        }
    }
}
