//! The report's sections on what the faults did: the failover table with the resolution
//! of the observers behind its columns, the idle-timeout matrix and the producer-policy
//! matrix.

use super::doc::Block;
use super::opt_ms;
use crate::compare::findings::fmt_spread_cell;
use crate::compare::matrix::{self, Matrix};
use crate::compare::summary::Comparison;

/// The failover table: per fault and topology, the phases of the failover and what the
/// fault cost, then how finely each observer sees time.
pub(super) fn failover_table(c: &Comparison) -> Vec<Block> {
    if c.faults.is_empty() {
        return vec![
            Block::Heading(2, "Failover".into()),
            Block::Para("No fault was injected in these runs.".into()),
        ];
    }
    let mut out = vec![
        Block::Heading(2, "Failover".into()),
        Block::Para("Per fault and topology, over its repetitions. All times are offsets from the moment the fault was applied: detect = first of client error, Sentinel +sdown, HAProxy DOWN; promote = Sentinel +switch-master or a new queue leader; proxy up = HAProxy routes to the new server (n/a under client-side failover, where no proxy is on the clients' path); rediscover = client-side failover only: a client moved on to another broker node or the Sentinels named it a new master (n/a when the clients go through one address); reconnect = a client reconnected; switch = the earliest moment a task published at or after the fault (and before the next fault) was seen completed (median, min–max); outage = the longest gap between successful completions around the fault; restored = the target came back (restarted, resumed, or its partition healed). Losses count the tasks in the faults' windows: lost = accepted but never executed, result lost = executed but its result never seen, unconfirmed = never executed and never confirmed. 2 masters = how long HAProxy had two Redis servers passing its role:master check at once (a stale master); READONLY = store errors answered READONLY (writes to a demoted master); vanished = after a Redis-side fault, results hab saw that Redis no longer held at the end (a demoted master resynced, or a restart without persistence; – for broker faults); NOREPLICAS = store errors answered NOREPLICAS (writes refused by min-replicas-to-write); paused → resumed = partition of a broker node: when pause_minority paused the cut-off node and when it opened its listener again, from its log (– when it never paused); order = the anatomy phases an observer saw out of order — after the switch time (tasks already flowed again) or before an earlier phase (detect, promote, proxy up or rediscover, reconnect) — with the repetitions they were out of order in, \"ordered\" when none was (the anatomy chart stops its bars at the switch time and marks them).".into()),
    ];
    let proxy_poll = format!("{} ms poll", crate::observe::server::PROXY_POLL.as_millis());
    let proxy_up_head = format!("proxy up ({proxy_poll})");
    let two_masters_head = format!("2 masters ({proxy_poll})");
    let head: [&str; 25] = [
        "fault",
        "workload",
        "topology",
        "reps",
        "detect",
        "promote",
        &proxy_up_head,
        "rediscover",
        "reconnect",
        "switch",
        "outage",
        "restored",
        "healthy",
        "tasks",
        "lost",
        "result lost",
        "unconfirmed",
        "dup",
        "republished",
        &two_masters_head,
        "READONLY",
        "vanished",
        "NOREPLICAS",
        "paused → resumed",
        "order",
    ];
    let rows = c
        .faults
        .iter()
        .map(|f| {
            let mut r = vec![
                format!("{} {}", f.target, f.kind),
                f.workload.clone(),
                f.topology.clone(),
            ];
            if let Some(reason) = &f.not_applied {
                r.push("0".into());
                r.push(format!("not applicable: {reason}"));
                r.extend(std::iter::repeat_n(String::new(), head.len() - r.len()));
                return r;
            }
            let mut switch = fmt_spread_cell(f.switch_ms.as_ref());
            if f.no_completion > 0 {
                switch.push_str(&format!(" ({} without completion)", f.no_completion));
            }
            r.extend([
                match f.unapplied.len() {
                    0 => f.applied.to_string(),
                    n => format!("{} (+{n} not applied)", f.applied),
                },
                opt_ms(f.detect_ms),
                opt_ms(f.promote_ms),
                if f.client_side {
                    "n/a (client-side)".into()
                } else {
                    opt_ms(f.proxy_up_ms)
                },
                if f.client_side {
                    opt_ms(f.rediscover_ms)
                } else {
                    "n/a".into()
                },
                opt_ms(f.reconnect_ms),
                switch,
                fmt_spread_cell(f.outage_ms.as_ref()),
                opt_ms(f.restored_ms),
                opt_ms(f.healthy_ms),
                f.tasks.to_string(),
                f.lost.to_string(),
                f.result_lost.to_string(),
                f.unconfirmed.to_string(),
                f.duplicated.to_string(),
                f.republished.to_string(),
                fmt_spread_cell(f.two_masters_ms.as_ref()),
                f.readonly_errors.to_string(),
                f.result_vanished.to_string(),
                f.noreplicas_errors.to_string(),
                match f.paused_ms {
                    Some(_) => format!("{} → {}", opt_ms(f.paused_ms), opt_ms(f.resumed_ms)),
                    None => "–".into(),
                },
                match f.out_of_order_text() {
                    t if t.is_empty() => "ordered".into(),
                    t => t,
                },
            ]);
            r
        })
        .collect();
    let mut numeric = vec![true; head.len()];
    numeric[..3].fill(false);
    numeric[head.len() - 1] = false;
    out.push(Block::Table {
        head: head.iter().map(|s| s.to_string()).collect(),
        rows,
        numeric,
    });
    out.extend(observer_resolution());
    out
}

/// How finely each observer behind the failover columns sees time: its poll interval,
/// or "pushed" for one that is told as things happen.
fn observer_resolution() -> Vec<Block> {
    use crate::observe::{management, server};
    let ms = |d: std::time::Duration| d.as_millis();
    let rows = [
        [
            "detect (client error), reconnect, rediscover",
            "the producer, the result watcher and the workers",
            "as they happen",
            "when the client saw it",
        ],
        [
            "detect (+sdown), promote (+switch-master)",
            "the Sentinels' event channels (Pub/Sub)",
            "pushed: ~1 ms",
            "on arrival",
        ],
        [
            "detect (DOWN), proxy up, 2 masters",
            "HAProxy's stats socket",
            &format!("polled every {} ms", ms(server::PROXY_POLL)),
            "when the poll answered",
        ],
        [
            "promote (queue leader), local stack",
            "`rabbitmqctl eval` on a live node, from the fault until the leader moved",
            &format!(
                "one call (each `rabbitmqctl` run boots an Erlang VM: up to seconds on a loaded machine), then again every {} ms after the previous call returned",
                ms(server::LEADER_POLL)
            ),
            "stamped when the query that saw the change started",
        ],
        [
            "promote (queue leader), external stack or management API",
            "RabbitMQ's management API (`GET /api/queues/%2F/celery`)",
            &format!("polled every {} ms, for the whole run", ms(management::POLL)),
            "stamped when the query that saw the change started",
        ],
        [
            "paused → resumed",
            "the RabbitMQ node's own log",
            "its log line's time stamp (µs)",
            "as logged",
        ],
        [
            "switch, outage",
            "the ledger (results seen)",
            "a notification as it arrives; a reconciliation read is an upper bound",
            "when hab saw the result",
        ],
    ]
    .into_iter()
    .map(|r| r.iter().map(|c| c.to_string()).collect())
    .collect();
    vec![
        Block::Heading(3, "Observer resolution".into()),
        Block::Para("A phase is seen no sooner than its observer looks: a polled observer can place an event up to one interval late (a queue-leader query up to one call plus its pause), a pushed one within milliseconds. The anatomy's offsets are as fine as the observer behind each column.".into()),
        Block::Table {
            head: ["columns", "observer", "resolution", "time stamp"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            rows,
            numeric: vec![false; 4],
        },
    ]
}

/// The idle-timeout matrix (heartbeat × timeout → cuts, errors, affected tasks), when a
/// run studied idle timeouts or HAProxy cut an idle connection.
pub(super) fn idle_table(c: &Comparison) -> Vec<Block> {
    if !crate::compare::idle::IdleRow::worth_showing(&c.idle) {
        return Vec::new();
    }
    matrix_section(
        "Idle timeouts through HAProxy",
        "One row per topology (summed over its repetitions): the AMQP heartbeat, hab's Redis keepalive and HAProxy's timeout client/server, then what they did. Cuts are the sessions HAProxy's own log ended on an idle timeout (termination state c… or s…, e.g. cD), on the AMQP (broker) and Redis (backend) frontends. Client errors and reconnects are what the producer, the result watcher and the workers reported. Tasks at a cut were in flight (intended start → result seen) when a cut happened; affected counts those delayed (ok, run once, latency above 2 × the baseline's p50 of the same workload), failed, lost (never run, result missing or never confirmed by the end of the drain) or duplicated (run more than once), each task once.".into(),
        matrix::table(&c.idle),
        matrix::numeric::<crate::compare::idle::IdleRow>(),
    )
}

/// The producer-policy matrix (policy → fail fast, refused, delayed, lost, resume), when
/// a producer is not `block` or gave a task up.
pub(super) fn policy_table(c: &Comparison) -> Vec<Block> {
    if !crate::compare::outage::PolicyRow::worth_showing(&c.policies) {
        return Vec::new();
    }
    matrix_section(
        "Producer policies around broker faults",
        format!(
            "One row per topology and workload with a broker fault: the producer's policy (`[producer]` in the topology: block = retry until handed over, retry = bounded attempts with backoff and jitter, breaker = circuit breaker), then what it did. {} Breaker state changes are in run.json `producer.transitions` and on each timeline (red strip).",
            crate::compare::outage::LEGEND
        ),
        matrix::table(&c.policies),
        matrix::numeric::<crate::compare::outage::PolicyRow>(),
    )
}

/// A matrix of the comparison as a section: its heading, what its columns mean, the table.
fn matrix_section(
    heading: &str,
    about: String,
    (head, rows): (Vec<String>, Vec<Vec<String>>),
    numeric: Vec<bool>,
) -> Vec<Block> {
    vec![
        Block::Heading(2, heading.into()),
        Block::Para(about),
        Block::Table {
            head,
            rows,
            numeric,
        },
    ]
}
