//! The producer's policies for failed publishes, as pure state machines with the clock
//! passed in (`now: Instant`), so they are unit-tested without sleeping: the circuit
//! breaker ([`Breaker`]) and the retry schedule ([`retry_delays`]). The generator in
//! `run` asks them what to do and records what they did; see
//! [`crate::config::producer`] for what each policy means.

use std::time::{Duration, Instant};

use backon::BackoffBuilder;

use crate::config::{BreakerConfig, RetryConfig};
use crate::event::BreakerState;

/// A state change, as the breaker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state before.
    pub from: BreakerState,
    /// The state after.
    pub to: BreakerState,
    /// When it happened (the `now` of the call that caused it).
    pub at: Instant,
}

/// What the breaker says to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead; report the result with this permit.
    Allowed(Permit),
    /// Refused without an attempt: the breaker is open (or half-open with every probe
    /// taken).
    Refused,
}

/// A call let through; its result is reported with [`Breaker::on_result`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    /// The breaker's epoch when the call was let through: results of calls from an
    /// earlier epoch (admitted before the last state change) are ignored, so a
    /// confirmation that times out late cannot reopen a breaker that closed since.
    epoch: u64,
    /// Whether the call is a half-open probe.
    pub probe: bool,
}

/// A circuit breaker (closed → open after `failure_threshold` consecutive failures;
/// open → half-open after `open_for`; half-open → closed after `half_open_probes`
/// successful probes, → open after a failed one).
#[derive(Debug, Clone)]
pub struct Breaker {
    cfg: BreakerConfig,
    state: BreakerState,
    epoch: u64,
    consecutive_failures: u32,
    opened_at: Option<Instant>,
    probes_admitted: u32,
    probes_succeeded: u32,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(cfg: BreakerConfig) -> Self {
        Breaker {
            cfg,
            state: BreakerState::Closed,
            epoch: 0,
            consecutive_failures: 0,
            opened_at: None,
            probes_admitted: 0,
            probes_succeeded: 0,
        }
    }

    /// The current state (without the open → half-open step that [`admit`](Self::admit)
    /// takes when the open period is over).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    fn go(&mut self, to: BreakerState, now: Instant) -> Transition {
        let from = self.state;
        self.state = to;
        self.epoch += 1;
        self.consecutive_failures = 0;
        self.probes_admitted = 0;
        self.probes_succeeded = 0;
        self.opened_at = (to == BreakerState::Open).then_some(now);
        Transition { from, to, at: now }
    }

    /// May a call go ahead at `now`? Returns the admission and the state change it
    /// caused (open → half-open once the open period is over).
    pub fn admit(&mut self, now: Instant) -> (Admission, Option<Transition>) {
        let mut change = None;
        if self.state == BreakerState::Open
            && self
                .opened_at
                .is_some_and(|at| now.saturating_duration_since(at) >= self.cfg.open_for)
        {
            change = Some(self.go(BreakerState::HalfOpen, now));
        }
        let admission = match self.state {
            BreakerState::Closed => Admission::Allowed(Permit {
                epoch: self.epoch,
                probe: false,
            }),
            BreakerState::Open => Admission::Refused,
            BreakerState::HalfOpen if self.probes_admitted < self.cfg.half_open_probes => {
                self.probes_admitted += 1;
                Admission::Allowed(Permit {
                    epoch: self.epoch,
                    probe: true,
                })
            }
            BreakerState::HalfOpen => Admission::Refused,
        };
        (admission, change)
    }

    /// The result of a call let through with `permit`. Returns the state change it
    /// caused, if any.
    pub fn on_result(&mut self, permit: Permit, ok: bool, now: Instant) -> Option<Transition> {
        if permit.epoch != self.epoch {
            return None;
        }
        match (self.state, ok) {
            (BreakerState::Closed, true) => {
                self.consecutive_failures = 0;
                None
            }
            (BreakerState::Closed, false) => {
                self.consecutive_failures += 1;
                (self.consecutive_failures >= self.cfg.failure_threshold)
                    .then(|| self.go(BreakerState::Open, now))
            }
            (BreakerState::HalfOpen, true) => {
                self.probes_succeeded += 1;
                (self.probes_succeeded >= self.cfg.half_open_probes)
                    .then(|| self.go(BreakerState::Closed, now))
            }
            (BreakerState::HalfOpen, false) => Some(self.go(BreakerState::Open, now)),
            // Nothing is admitted while open.
            (BreakerState::Open, _) => None,
        }
    }
}

/// The delays between the attempts of one task under `policy = "retry"`: `attempts − 1`
/// delays, `base` doubling up to `max`, each plus a random part of up to itself when
/// `jitter` is on (backon's `ExponentialBuilder`). `seed` fixes the jitter (tests).
pub fn retry_delays(cfg: RetryConfig, seed: Option<u64>) -> impl Iterator<Item = Duration> {
    let mut b = backon::ExponentialBuilder::default()
        .with_min_delay(cfg.base)
        .with_max_delay(cfg.max)
        .with_factor(2.0)
        .with_max_times(cfg.attempts.saturating_sub(1) as usize);
    if cfg.jitter {
        b = b.with_jitter();
        if let Some(seed) = seed {
            b = b.with_jitter_seed(seed);
        }
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(threshold: u32, open_ms: u64, probes: u32) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: threshold,
            open_for: Duration::from_millis(open_ms),
            half_open_probes: probes,
        }
    }

    fn permit(b: &mut Breaker, now: Instant) -> Permit {
        match b.admit(now).0 {
            Admission::Allowed(p) => p,
            Admission::Refused => panic!("refused in state {:?}", b.state()),
        }
    }

    #[test]
    fn opens_after_the_threshold_of_consecutive_failures_and_refuses_while_open() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(3, 2000, 1));
        // A success in between resets the count.
        for ok in [false, false, true, false, false] {
            let p = permit(&mut b, t0);
            assert_eq!(b.on_result(p, ok, t0), None);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        let p = permit(&mut b, t0);
        let at = t0 + Duration::from_millis(5);
        let change = b
            .on_result(p, false, at)
            .expect("third failure in a row opens");
        assert_eq!(
            (change.from, change.to, change.at),
            (BreakerState::Closed, BreakerState::Open, at)
        );
        // Refused, without a state change, until the open period is over.
        for ms in [5, 1000, 2004] {
            assert_eq!(
                b.admit(t0 + Duration::from_millis(ms)),
                (Admission::Refused, None),
                "{ms} ms"
            );
        }
    }

    #[test]
    fn half_open_lets_the_probes_through_and_closes_when_they_all_succeed() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(1, 1000, 2));
        let p = permit(&mut b, t0);
        assert!(b.on_result(p, false, t0).is_some());
        let t1 = t0 + Duration::from_millis(1000);
        let (a, change) = b.admit(t1);
        let change = change.expect("open period over");
        assert_eq!(
            (change.from, change.to),
            (BreakerState::Open, BreakerState::HalfOpen)
        );
        let Admission::Allowed(p1) = a else {
            panic!("first probe refused")
        };
        assert!(p1.probe);
        let p2 = permit(&mut b, t1);
        // Two probes in flight: the third call is refused.
        assert_eq!(b.admit(t1).0, Admission::Refused);
        assert_eq!(b.on_result(p1, true, t1), None, "one of two probes");
        let closed = b.on_result(p2, true, t1).expect("both probes succeeded");
        assert_eq!(
            (closed.from, closed.to),
            (BreakerState::HalfOpen, BreakerState::Closed)
        );
        assert!(!permit(&mut b, t1).probe);
    }

    #[test]
    fn a_failed_probe_opens_again_for_a_full_period() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(2, 500, 1));
        for _ in 0..2 {
            let p = permit(&mut b, t0);
            b.on_result(p, false, t0);
        }
        let t1 = t0 + Duration::from_millis(600);
        let p = permit(&mut b, t1);
        let t2 = t1 + Duration::from_millis(300);
        let change = b.on_result(p, false, t2).expect("failed probe");
        assert_eq!(
            (change.from, change.to),
            (BreakerState::HalfOpen, BreakerState::Open)
        );
        // The new period counts from the failed probe.
        assert_eq!(
            b.admit(t2 + Duration::from_millis(499)).0,
            Admission::Refused
        );
        assert!(matches!(
            b.admit(t2 + Duration::from_millis(500)).0,
            Admission::Allowed(Permit { probe: true, .. })
        ));
    }

    #[test]
    fn late_results_of_calls_from_before_a_state_change_are_ignored() {
        let t0 = Instant::now();
        let mut b = Breaker::new(cfg(2, 100, 1));
        // Many calls in flight (pipelined publishes), then their confirmations time out.
        let early: Vec<Permit> = (0..5).map(|_| permit(&mut b, t0)).collect();
        assert!(b.on_result(early[0], false, t0).is_none());
        assert!(b.on_result(early[1], false, t0).is_some(), "opens");
        for p in &early[2..4] {
            assert_eq!(b.on_result(*p, false, t0), None);
        }
        let t1 = t0 + Duration::from_millis(100);
        let probe = permit(&mut b, t1);
        assert!(b.on_result(probe, true, t1).is_some(), "closes");
        // The last early call's late failure must not count against the closed breaker.
        assert_eq!(b.on_result(early[4], false, t1), None);
        let p = permit(&mut b, t1);
        assert_eq!(b.on_result(p, false, t1), None, "one failure since closing");
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn retry_delays_double_from_base_up_to_max_with_attempts_minus_one_delays() {
        let r = RetryConfig {
            attempts: 6,
            base: Duration::from_millis(100),
            max: Duration::from_millis(500),
            jitter: false,
        };
        let d: Vec<u64> = retry_delays(r, None)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(d, [100, 200, 400, 500, 500]);
        let one = RetryConfig { attempts: 1, ..r };
        assert_eq!(
            retry_delays(one, None).count(),
            0,
            "a single attempt: no delay"
        );
    }

    #[test]
    fn jitter_adds_up_to_the_delay_itself_and_varies() {
        let r = RetryConfig {
            attempts: 4,
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: true,
        };
        let plain = [100u128, 200, 400];
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let d: Vec<u128> = retry_delays(r, Some(seed)).map(|d| d.as_millis()).collect();
            assert_eq!(d.len(), 3);
            for (got, base) in d.iter().zip(plain) {
                assert!((base..2 * base + 1).contains(got), "{got} vs {base}");
            }
            seen.insert(d);
        }
        assert!(seen.len() > 1, "jitter changes the delays");
    }
}
