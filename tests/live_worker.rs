//! Live test of `hab worker` against bad input: malformed messages published raw must be
//! rejected and counted, and the worker must keep serving good ones.

mod common;

use std::time::{Duration, Instant};

use hab::protocol::message::{TaskMessage, encode};
use hab::protocol::result::{ResultRecord, TaskStatus, result_key};
use hab::stack::process::ManagedProcess;
use hab::stack::{Stack, StackDirs, StackOptions};
use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;

fn headers(pairs: &[(&str, &str)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (k, v) in pairs {
        t.insert(
            ShortString::from(*k),
            AMQPValue::LongString(LongString::from(*v)),
        );
    }
    t
}

async fn result_of(
    conn: &mut redis::aio::MultiplexedConnection,
    id: &str,
    within: Duration,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + within;
    loop {
        let v: Option<Vec<u8>> = redis::cmd("GET")
            .arg(result_key(id))
            .query_async(conn)
            .await
            .unwrap();
        if v.is_some() || Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_rejected_counted_and_the_worker_keeps_running() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = StackDirs::create(tmp.path().join("logs")).unwrap();
    let stack = Stack::start(&StackOptions::default(), &dirs).await.unwrap();
    let topo = common::write_topology(tmp.path(), "w", "[workers]\nconcurrency = 2\n");
    let executions = tmp.path().join("w1.csv");

    // The worker declares the queue; start it first and wait until it consumes.
    let mut cmd = common::hab();
    cmd.arg("worker")
        .arg("--topology")
        .arg(&topo)
        .arg("--broker-url")
        .arg(stack.broker_url())
        .arg("--backend-url")
        .arg(stack.backend_url())
        .arg("--name")
        .arg("w1")
        .arg("--executions")
        .arg(&executions);
    let mut worker =
        ManagedProcess::spawn("worker w1", cmd, "hab", &tmp.path().join("worker.log")).unwrap();

    let conn = Connection::connect(&stack.broker_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    // (A passive declare of a missing queue would close the channel: declare it.)
    hab::broker::declare_celery_queue(&ch, hab::config::QueueKind::Classic)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (consumers, _) = hab::broker::queue_state(&ch, hab::config::QueueKind::Classic)
            .await
            .unwrap();
        if consumers == 1 {
            break;
        }
        assert!(worker.is_running(), "worker died:\n{}", worker.log_tail(20));
        assert!(Instant::now() < deadline, "worker never consumed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let json_props = || {
        BasicProperties::default()
            .with_content_type(ShortString::from("application/json"))
            .with_content_encoding(ShortString::from("utf-8"))
    };
    let good_body =
        br#"[[], {}, {"callbacks": null, "errbacks": null, "chain": null, "chord": null}]"#;
    let id = |n: u8| format!("00000000-0000-4000-8000-0000000000{n:02}");
    let bad: Vec<(&[u8], BasicProperties)> = vec![
        // No headers at all.
        (good_body, json_props()),
        // No id header (crashes a real Celery worker).
        (
            good_body,
            json_props().with_headers(headers(&[("task", "hab.trivial")])),
        ),
        // Body not a 3-element array (crashes a real Celery worker).
        (
            b"[[], {}]",
            json_props().with_headers(headers(&[("task", "hab.trivial"), ("id", &id(3))])),
        ),
        // No content type (crashes a real Celery worker).
        (
            good_body,
            BasicProperties::default()
                .with_headers(headers(&[("task", "hab.trivial"), ("id", &id(4))])),
        ),
        // Not JSON.
        (
            b"{not json",
            json_props().with_headers(headers(&[("task", "hab.trivial"), ("id", &id(5))])),
        ),
    ];
    for (body, props) in bad {
        ch.basic_publish(
            ShortString::from(""),
            ShortString::from("celery"),
            BasicPublishOptions::default(),
            body,
            props,
        )
        .await
        .unwrap();
    }
    // A well-formed message for a task nobody registered.
    let unknown = TaskMessage::new("hab.nope", json!([]));
    let good = TaskMessage::new("hab.factorial", json!([20]));
    for m in [&unknown, &good] {
        let (body, props) = encode(m);
        ch.basic_publish(
            ShortString::from(""),
            ShortString::from("celery"),
            BasicPublishOptions::default(),
            &body,
            props,
        )
        .await
        .unwrap();
    }

    let client = redis::Client::open(stack.backend_url()).unwrap();
    let mut r = client.get_multiplexed_async_connection().await.unwrap();
    let res = result_of(&mut r, &good.id, Duration::from_secs(30))
        .await
        .expect("the good task after the bad ones was never served");
    let parsed = ResultRecord::parse(&res).unwrap();
    assert_eq!(parsed.status, TaskStatus::Success);
    let v: serde_json::Value = serde_json::from_slice(&res).unwrap();
    assert_eq!(v["result"], 19, "20! has 19 digits");

    let nr = result_of(&mut r, &unknown.id, Duration::from_secs(5))
        .await
        .expect("an unknown task gets a FAILURE result");
    let nr = ResultRecord::parse(&nr).unwrap();
    assert_eq!(nr.status, TaskStatus::Failure);
    assert_eq!(nr.exc_type.as_deref(), Some("NotRegistered"));

    assert!(worker.is_running(), "worker died:\n{}", worker.log_tail(20));
    // Nothing was requeued: the queue is empty.
    let (_, ready) = hab::broker::queue_state(&ch, hab::config::QueueKind::Classic)
        .await
        .unwrap();
    assert_eq!(ready, 0);

    let text = std::fs::read_to_string(&executions).unwrap();
    let events = hab::protocol::side_channel::parse_all(&text);
    let mut reasons: Vec<_> = events
        .iter()
        .filter(|e| e.kind == hab::protocol::side_channel::SideEventKind::Reject)
        .map(|e| e.detail.as_str())
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "bad_body",
            "invalid_json",
            "missing_content_type",
            "missing_id",
            "no_headers",
            "not_registered"
        ]
    );
    // Rejections of messages with a readable id carry it.
    assert!(
        events
            .iter()
            .any(|e| e.detail == "bad_body" && e.task_id.to_string() == id(3))
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == hab::protocol::side_channel::SideEventKind::Start)
            .count(),
        1
    );

    worker.stop(Duration::from_secs(10)).await;
    stack.shutdown().await;
}
