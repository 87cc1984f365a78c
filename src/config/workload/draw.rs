//! Fault lengths drawn at random from a seeded range: a fault with `duration = "200ms"`
//! and `duration_max = "1500ms"` lasts, in each repetition, a whole number of
//! milliseconds drawn uniformly from that range. The draw is a pure function of the plan's
//! `seed`, the workload's and the fault's places in the file and the repetition, so the
//! same file gives the same schedule on every run (every cell of a sweep runs the same
//! stalls) and changing the seed changes all of it. The lengths are drawn when the plan is
//! loaded and kept in run.json (`drawn_ms`).

use std::time::Duration;

use super::{Diagnostic, FaultSpec, WorkloadPlan};
use crate::fault::FaultKind;

/// The seed of a plan that names none.
pub const DEFAULT_SEED: u64 = 1;

/// SplitMix64 (Steele, Lea, Flood 2014): one well-mixed 64-bit value from `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The length of repetition `k` of fault `fault` of workload `workload`, ms, uniform in
/// `[min_ms, max_ms]`.
pub fn draw_ms(seed: u64, workload: usize, fault: usize, k: u32, min_ms: u64, max_ms: u64) -> u64 {
    let key = mix(mix(mix(seed) ^ workload as u64) ^ fault as u64) ^ u64::from(k);
    let span = max_ms.saturating_sub(min_ms) + 1;
    min_ms + mix(key) % span
}

impl WorkloadPlan {
    /// Fill in `drawn_ms` of every fault with a `duration_max` (validated plans only).
    pub fn draw_fault_lengths(&mut self) {
        let seed = self.seed.unwrap_or(DEFAULT_SEED);
        for (w, workload) in self.workloads.iter_mut().enumerate() {
            for (f, fault) in workload.faults.iter_mut().enumerate() {
                fault.drawn_ms = match (fault.duration, fault.duration_max) {
                    (Some(min), Some(max)) => (0..fault.repeat)
                        .map(|k| draw_ms(seed, w, f, k, ms(min), ms(max)))
                        .collect(),
                    _ => Vec::new(),
                };
            }
        }
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// `duration_max`'s own rules, located under `at`.
pub(super) fn validate(f: &FaultSpec, at: &str, out: &mut Vec<Diagnostic>) {
    let Some(max) = f.duration_max else {
        return;
    };
    let field = format!("{at}.duration_max");
    if !matches!(
        f.kind,
        FaultKind::Pause | FaultKind::Partition | FaultKind::Throttle
    ) {
        out.push(Diagnostic::new(
            field,
            format!(
                "only used with kind = \"pause\", \"partition\" or \"throttle\" (a length drawn \
                 between duration and it), got kind = \"{}\"",
                f.kind.as_str()
            ),
        ));
        return;
    }
    match f.duration {
        None => out.push(Diagnostic::new(
            field,
            "needs duration: the shortest length to draw from, e.g. duration = \"200ms\"",
        )),
        Some(min) if max <= min => out.push(Diagnostic::new(
            field,
            format!(
                "must be longer than duration ({}), got {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        )),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_workload_plan;

    fn plan(seed: &str, fault: &str) -> Result<WorkloadPlan, crate::config::ConfigError> {
        parse_workload_plan(
            &format!(
                "name = \"d\"\n{seed}\n[[workload]]\nname = \"w\"\ntask = {{ kind = \"trivial\" }}\n\
                 count = 4000\narrival = \"rate\"\nrate_per_s = 200.0\n[[workload.fault]]\n{fault}\n"
            ),
            "workloads/drawn.toml".as_ref(),
        )
    }

    const PAUSES: &str = "target = \"backend.master\"\nkind = \"pause\"\nat = \"1s\"\nduration = \"200ms\"\nduration_max = \"1500ms\"\nrepeat = 5\nevery = \"3s\"";

    #[test]
    fn lengths_are_drawn_in_the_range_once_per_repetition_and_the_seed_fixes_them() {
        let a = plan("", PAUSES).unwrap();
        let f = &a.workloads[0].faults[0];
        assert_eq!(f.drawn_ms.len(), 5);
        assert!(
            f.drawn_ms.iter().all(|ms| (200..=1500).contains(ms)),
            "{:?}",
            f.drawn_ms
        );
        // Not one length five times.
        assert!(
            f.drawn_ms.iter().any(|ms| *ms != f.drawn_ms[0]),
            "{:?}",
            f.drawn_ms
        );
        assert_eq!(f.out_for(), Some(Duration::from_millis(1500)));
        assert_eq!(
            f.out_for_repetition(2),
            Some(Duration::from_millis(f.drawn_ms[2]))
        );
        // The same file: the same lengths; the default seed written out: the same too.
        assert_eq!(
            plan("", PAUSES).unwrap().workloads[0].faults[0].drawn_ms,
            f.drawn_ms
        );
        assert_eq!(
            plan("seed = 1", PAUSES).unwrap().workloads[0].faults[0].drawn_ms,
            f.drawn_ms
        );
        // Another seed: other lengths.
        let b = plan("seed = 7", PAUSES).unwrap();
        assert_ne!(b.workloads[0].faults[0].drawn_ms, f.drawn_ms);
        assert_eq!(b.seed, Some(7));
        // In run.json the lengths are kept; a file cannot set them.
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json["workload"][0]["fault"][0]["drawn_ms"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
        let e = plan("", &format!("{PAUSES}\ndrawn_ms = [1, 2]"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("drawn_ms"), "{e}");
    }

    #[test]
    fn without_a_range_the_length_is_the_duration() {
        let p = plan(
            "",
            "target = \"backend.master\"\nkind = \"pause\"\nat = \"1s\"\nduration = \"800ms\"",
        )
        .unwrap();
        let f = &p.workloads[0].faults[0];
        assert!(f.drawn_ms.is_empty());
        assert_eq!(f.out_for_repetition(0), Some(Duration::from_millis(800)));
    }

    #[test]
    fn draws_cover_the_range_evenly() {
        // 10,000 draws over 10 buckets of 100 ms: each within 15 % of its share.
        let mut buckets = [0u32; 10];
        for k in 0..10_000 {
            let ms = draw_ms(42, 3, 1, k, 0, 999);
            buckets[(ms / 100) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|b| (850..=1150).contains(b)),
            "{buckets:?}"
        );
        assert_eq!(draw_ms(1, 0, 0, 0, 500, 500), 500);
    }

    #[test]
    fn a_range_is_refused_where_it_means_nothing_or_is_empty() {
        let e = plan(
            "",
            "target = \"broker.primary\"\nkind = \"kill\"\nat = \"1s\"\nduration_max = \"2s\"",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("fault[0].duration_max") && e.contains("only used with kind = \"pause\""),
            "{e}"
        );
        let e = plan("", "target = \"broker.primary\"\nkind = \"pause\"\nat = \"1s\"\nduration = \"2s\"\nduration_max = \"1s\"").unwrap_err().to_string();
        assert!(
            e.contains("must be longer than duration (2s), got 1s"),
            "{e}"
        );
        // Repetitions must be further apart than the longest length.
        let e = plan("", "target = \"broker.primary\"\nkind = \"pause\"\nat = \"1s\"\nduration = \"200ms\"\nduration_max = \"4s\"\nrepeat = 2\nevery = \"3s\"").unwrap_err().to_string();
        assert!(e.contains("fault[0].every") && e.contains("(4s)"), "{e}");
    }
}
