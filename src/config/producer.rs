//! The `[producer]` section of a topology: what the producer does when a publish fails
//! (issue 6 item 2, `workloads/broker-outage.toml`).
//!
//! Three policies, the ones users pick between in front of a broker that may go away:
//! - `block` (the default, hab's behaviour before this section existed): a publish does
//!   not return until the task is handed to a working connection. Every attempt is
//!   bounded (`connect_timeout`, `publish_timeout`); failed attempts are retried without
//!   limit (reconnect backoff 50 ms doubling to 1 s) until the broker answers or the run
//!   is cancelled. Nothing is refused; everything behind the blocked task waits (delayed).
//! - `retry`: at most `retry.attempts` attempts per task, exponential backoff with jitter
//!   between them (`backon`); a task whose attempts all failed is given up (`gave_up`).
//! - `breaker`: a circuit breaker (Fowler; pybreaker, as in the seed PR): one attempt per
//!   task while *closed*; `breaker.failure_threshold` consecutive failed calls open it;
//!   while *open* every task is refused at once without touching the network
//!   (`refused`: fail fast); after `breaker.open_for` it goes *half-open* and lets
//!   `breaker.half_open_probes` calls through: all succeed → closed, one fails → open again.
//!
//! A call fails when the connection cannot be (re)opened within `connect_timeout`, the
//! publish is not handed to the connection within `publish_timeout`, or the broker's
//! confirmation does not come within `confirm_timeout` (or is a nack). A call succeeds
//! when the broker confirms it (with confirms off: when the publish was handed over).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Diagnostic;

/// How the producer handles a broker that does not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerConfig {
    /// `block` (default), `retry` or `breaker`.
    #[serde(default)]
    pub policy: PolicyKind,
    /// Longest wait for one connection attempt (TCP, AMQP handshake, queue declaration):
    /// a paused broker accepts TCP and answers nothing. Default 10s.
    #[serde(default = "default_connect_timeout", with = "super::duration")]
    pub connect_timeout: Duration,
    /// Longest wait for one publish to be handed to the connection. Default 5s.
    #[serde(default = "default_publish_timeout", with = "super::duration")]
    pub publish_timeout: Duration,
    /// Longest wait for the broker's confirmation of a publish; a publish not confirmed by
    /// then is taken as failed (and published again under `block`). Default 15s: a quorum
    /// queue electing a leader delays confirmations by seconds.
    #[serde(default = "default_confirm_timeout", with = "super::duration")]
    pub confirm_timeout: Duration,
    /// Parameters of `policy = "retry"` (defaults when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// Parameters of `policy = "breaker"` (defaults when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<BreakerConfig>,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            policy: PolicyKind::Block,
            connect_timeout: default_connect_timeout(),
            publish_timeout: default_publish_timeout(),
            confirm_timeout: default_confirm_timeout(),
            retry: None,
            breaker: None,
        }
    }
}

/// The producer's policy for failed publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyKind {
    /// Retry without limit until the task is handed over (hab's behaviour before).
    #[default]
    Block,
    /// Bounded attempts with exponential backoff and jitter, then give the task up.
    Retry,
    /// A circuit breaker: fail fast while open.
    Breaker,
}

impl PolicyKind {
    /// The name used in files.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Block => "block",
            PolicyKind::Retry => "retry",
            PolicyKind::Breaker => "breaker",
        }
    }
}

/// `[producer.retry]`: bounded retries with exponential backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per task, the first one included (1–20). Default 4 (Celery's
    /// `retry_policy` has `max_retries = 3`).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Delay before the second attempt; doubles for each further one. Default 100ms.
    #[serde(default = "default_base", with = "super::duration")]
    pub base: Duration,
    /// Longest delay between two attempts. Default 1s.
    #[serde(default = "default_max", with = "super::duration")]
    pub max: Duration,
    /// Add a random delay of up to the current delay (backon's jitter), so that many
    /// producers do not retry in step. Default true.
    #[serde(default = "default_true")]
    pub jitter: bool,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            attempts: default_attempts(),
            base: default_base(),
            max: default_max(),
            jitter: true,
        }
    }
}

/// `[producer.breaker]`: the circuit breaker's parameters (pybreaker's `fail_max` and
/// `reset_timeout`, plus the number of half-open probes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open the breaker (1–1000). Default 3.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// How long the breaker stays open (refusing every task) before it lets probes
    /// through. Default 2s.
    #[serde(default = "default_open_for", with = "super::duration")]
    pub open_for: Duration,
    /// Calls let through while half-open; all must succeed to close the breaker, one
    /// failure opens it again (1–100). Default 1.
    #[serde(default = "default_probes")]
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_threshold: default_failure_threshold(),
            open_for: default_open_for(),
            half_open_probes: default_probes(),
        }
    }
}

impl ProducerConfig {
    /// The retry parameters (defaults when the table is absent).
    pub fn retry(&self) -> RetryConfig {
        self.retry.unwrap_or_default()
    }

    /// The breaker parameters (defaults when the table is absent).
    pub fn breaker(&self) -> BreakerConfig {
        self.breaker.unwrap_or_default()
    }

    /// Range and cross-field checks, pushed onto `out` with `producer.*` locations.
    pub fn validate(&self, out: &mut Vec<Diagnostic>) {
        let bounded = |out: &mut Vec<Diagnostic>, field: &str, v: Duration, lo_ms: u64| {
            let lo = Duration::from_millis(lo_ms);
            let hi = Duration::from_secs(600);
            if !(lo..=hi).contains(&v) {
                out.push(Diagnostic::new(
                    format!("producer.{field}"),
                    format!(
                        "must be between {} and 10m, got {}",
                        humantime::format_duration(lo),
                        humantime::format_duration(v)
                    ),
                ));
            }
        };
        bounded(out, "connect_timeout", self.connect_timeout, 10);
        bounded(out, "publish_timeout", self.publish_timeout, 10);
        bounded(out, "confirm_timeout", self.confirm_timeout, 10);
        // A policy's own table with another policy.
        for (present, policy) in [
            (self.retry.is_some(), PolicyKind::Retry),
            (self.breaker.is_some(), PolicyKind::Breaker),
        ] {
            if present && self.policy != policy {
                out.push(Diagnostic::new(
                    format!("producer.{}", policy.as_str()),
                    format!(
                        "only used with policy = \"{}\" (policy is \"{}\"); remove the table or change the policy",
                        policy.as_str(),
                        self.policy.as_str()
                    ),
                ));
            }
        }
        if let Some(r) = &self.retry {
            if !(1..=20).contains(&r.attempts) {
                out.push(Diagnostic::new(
                    "producer.retry.attempts",
                    format!(
                        "must be between 1 and 20 (the first attempt included), got {}",
                        r.attempts
                    ),
                ));
            }
            bounded(out, "retry.base", r.base, 1);
            bounded(out, "retry.max", r.max, 1);
            if r.max < r.base {
                out.push(Diagnostic::new(
                    "producer.retry.max",
                    format!(
                        "must be at least producer.retry.base ({}), got {}",
                        humantime::format_duration(r.base),
                        humantime::format_duration(r.max)
                    ),
                ));
            }
        }
        if let Some(b) = &self.breaker {
            if !(1..=1000).contains(&b.failure_threshold) {
                out.push(Diagnostic::new(
                    "producer.breaker.failure_threshold",
                    format!("must be between 1 and 1000, got {}", b.failure_threshold),
                ));
            }
            bounded(out, "breaker.open_for", b.open_for, 10);
            if !(1..=100).contains(&b.half_open_probes) {
                out.push(Diagnostic::new(
                    "producer.breaker.half_open_probes",
                    format!("must be between 1 and 100, got {}", b.half_open_probes),
                ));
            }
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_publish_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_confirm_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_attempts() -> u32 {
    4
}
fn default_base() -> Duration {
    Duration::from_millis(100)
}
fn default_max() -> Duration {
    Duration::from_secs(1)
}
fn default_failure_threshold() -> u32 {
    3
}
fn default_open_for() -> Duration {
    Duration::from_secs(2)
}
fn default_probes() -> u32 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ProducerConfig, toml::de::Error> {
        toml::from_str(text)
    }

    fn problems(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        parse(text).expect("parses").validate(&mut out);
        out.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn an_empty_section_is_todays_behaviour() {
        let p = parse("").unwrap();
        assert_eq!(p, ProducerConfig::default());
        assert_eq!(p.policy, PolicyKind::Block);
        assert_eq!(p.connect_timeout, Duration::from_secs(10));
        assert_eq!(p.publish_timeout, Duration::from_secs(5));
        assert_eq!(p.confirm_timeout, Duration::from_secs(15));
        assert!(problems("").is_empty());
    }

    #[test]
    fn policies_and_their_tables_parse() {
        let p = parse(
            "policy = \"breaker\"\nconfirm_timeout = \"2s\"\n[breaker]\nfailure_threshold = 5\nopen_for = \"3s\"\nhalf_open_probes = 2\n",
        )
        .unwrap();
        assert_eq!(p.policy, PolicyKind::Breaker);
        assert_eq!(
            p.breaker(),
            BreakerConfig {
                failure_threshold: 5,
                open_for: Duration::from_secs(3),
                half_open_probes: 2
            }
        );
        let p = parse("policy = \"retry\"\n[retry]\nattempts = 2\njitter = false\n").unwrap();
        assert_eq!(p.retry().attempts, 2);
        assert!(!p.retry().jitter);
        assert_eq!(p.retry().base, Duration::from_millis(100));
        // Defaults when the table is absent.
        assert_eq!(parse("policy = \"retry\"").unwrap().retry().attempts, 4);
    }

    #[test]
    fn unknown_policies_and_fields_are_refused_by_name() {
        let e = parse("policy = \"hope\"").unwrap_err().to_string();
        assert!(e.contains("hope") && e.contains("block"), "{e}");
        let e = parse("policy = \"retry\"\n[retry]\ntries = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tries") && e.contains("attempts"), "{e}");
    }

    #[test]
    fn bad_values_name_the_field_and_what_is_allowed() {
        let p =
            problems("policy = \"retry\"\n[retry]\nattempts = 0\nbase = \"2s\"\nmax = \"1s\"\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].starts_with("producer.retry.attempts: must be between 1 and 20"),
            "{p:?}"
        );
        assert!(
            p[1].starts_with("producer.retry.max: must be at least producer.retry.base (2s)"),
            "{p:?}"
        );
        let p = problems(
            "policy = \"breaker\"\nconnect_timeout = \"0s\"\n[breaker]\nfailure_threshold = 0\nopen_for = \"1h\"\nhalf_open_probes = 0\n",
        );
        assert_eq!(
            p,
            [
                "producer.connect_timeout: must be between 10ms and 10m, got 0s",
                "producer.breaker.failure_threshold: must be between 1 and 1000, got 0",
                "producer.breaker.open_for: must be between 10ms and 10m, got 1h",
                "producer.breaker.half_open_probes: must be between 1 and 100, got 0",
            ]
        );
    }

    #[test]
    fn a_table_for_another_policy_is_an_error_not_ignored() {
        let p = problems("[breaker]\nfailure_threshold = 3\n");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with(
                "producer.breaker: only used with policy = \"breaker\" (policy is \"block\")"
            ),
            "{p:?}"
        );
        let p = problems("policy = \"breaker\"\n[retry]\n");
        assert!(
            p[0].starts_with("producer.retry: only used with policy = \"retry\""),
            "{p:?}"
        );
    }
}
