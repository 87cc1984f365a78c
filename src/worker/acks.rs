//! Which acknowledgements to send, so that one `basic.ack` with `multiple` settles a run
//! of finished deliveries instead of one frame per message.
//!
//! A delivery is *outstanding* from its arrival until an ack, nack or reject for it was
//! sent. When deliveries finish, the contiguous run of finished ones at the low end of the
//! outstanding tags is acknowledged with one `multiple` ack up to its highest tag; a
//! finished delivery behind one still running (a long task ahead of it) is acknowledged
//! on its own at once, so a slow task never holds the prefetch window full of finished
//! messages. No tag is ever acknowledged twice (the broker closes the channel for an
//! unknown tag), and a `multiple` ack never covers a delivery that has not finished.

use std::collections::BTreeMap;

/// What to send after some deliveries finished.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AckPlan<T> {
    /// One ack with `multiple = true` for this delivery (settles every outstanding tag
    /// up to and including it), or with `multiple = false` when it is the only one.
    pub multiple: Option<(u64, T, bool)>,
    /// Deliveries to acknowledge one by one (`multiple = false`).
    pub singles: Vec<(u64, T)>,
}

impl<T> AckPlan<T> {
    /// Number of frames this plan sends.
    pub fn frames(&self) -> usize {
        self.singles.len() + usize::from(self.multiple.is_some())
    }
}

#[derive(Debug)]
struct Entry<T> {
    handle: T,
    finished: bool,
}

/// Outstanding deliveries of one channel, by delivery tag. `T` is what is needed to send
/// the acknowledgement (lapin's `Acker`).
#[derive(Debug)]
pub struct AckTracker<T> {
    outstanding: BTreeMap<u64, Entry<T>>,
}

impl<T> Default for AckTracker<T> {
    fn default() -> Self {
        Self {
            outstanding: BTreeMap::new(),
        }
    }
}

impl<T> AckTracker<T> {
    /// A delivery arrived (tags arrive in increasing order on a channel).
    pub fn received(&mut self, tag: u64, handle: T) {
        self.outstanding.insert(
            tag,
            Entry {
                handle,
                finished: false,
            },
        );
    }

    /// The delivery was settled another way (nack, reject, early ack), and that frame was
    /// sent: it no longer blocks a `multiple` ack.
    pub fn settled(&mut self, tag: u64) -> Option<T> {
        self.outstanding.remove(&tag).map(|e| e.handle)
    }

    /// Outstanding deliveries.
    pub fn len(&self) -> usize {
        self.outstanding.len()
    }

    /// True when nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.outstanding.is_empty()
    }

    /// These deliveries finished (their results are stored): what to acknowledge now.
    /// Every finished delivery is in the plan, exactly once; unknown tags are ignored.
    pub fn finished(&mut self, tags: impl IntoIterator<Item = u64>) -> AckPlan<T> {
        let mut any = false;
        for tag in tags {
            if let Some(e) = self.outstanding.get_mut(&tag) {
                e.finished = true;
                any = true;
            }
        }
        let mut plan = AckPlan {
            multiple: None,
            singles: Vec::new(),
        };
        if !any {
            return plan;
        }
        // The finished run at the low end: one multiple ack up to its last tag.
        let mut run = 0usize;
        let mut last = None;
        while let Some(entry) = self.outstanding.first_entry() {
            if !entry.get().finished {
                break;
            }
            let (tag, e) = entry.remove_entry();
            run += 1;
            last = Some((tag, e.handle));
        }
        if let Some((tag, handle)) = last {
            plan.multiple = Some((tag, handle, run > 1));
        }
        // Finished deliveries behind one still running: one by one, now.
        let behind: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, e)| e.finished)
            .map(|(t, _)| *t)
            .collect();
        for tag in behind {
            if let Some(e) = self.outstanding.remove(&tag) {
                plan.singles.push((tag, e.handle));
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(tags: std::ops::RangeInclusive<u64>) -> AckTracker<u64> {
        let mut t = AckTracker::default();
        for tag in tags {
            t.received(tag, tag * 10);
        }
        t
    }

    fn singles(p: &AckPlan<u64>) -> Vec<u64> {
        p.singles.iter().map(|(t, _)| *t).collect()
    }

    #[test]
    fn a_finished_run_at_the_low_end_is_one_multiple_ack() {
        let mut t = tracker(1..=5);
        let p = t.finished([3, 1, 2]);
        assert_eq!(p.multiple, Some((3, 30, true)));
        assert!(p.singles.is_empty());
        assert_eq!(t.len(), 2);
        // The rest later, one at a time: a lone delivery is a plain ack.
        let p = t.finished([4]);
        assert_eq!(p.multiple, Some((4, 40, false)));
        assert_eq!(p.frames(), 1);
    }

    #[test]
    fn finished_deliveries_behind_a_running_one_are_acked_one_by_one_at_once() {
        // Tag 1 is a long task; 2..=4 finish: they must not wait for it.
        let mut t = tracker(1..=4);
        let p = t.finished([2, 3, 4]);
        assert_eq!(p.multiple, None);
        assert_eq!(singles(&p), vec![2, 3, 4]);
        assert_eq!(t.len(), 1);
        // When 1 finishes it is acked alone: 2..=4 are not outstanding any more.
        let p = t.finished([1]);
        assert_eq!(p.multiple, Some((1, 10, false)));
        assert!(t.is_empty());
    }

    #[test]
    fn a_multiple_ack_never_covers_an_unfinished_delivery() {
        let mut t = tracker(1..=6);
        let p = t.finished([1, 2, 4, 6]);
        assert_eq!(p.multiple, Some((2, 20, true)));
        assert_eq!(singles(&p), vec![4, 6]);
        // 3 and 5 are still outstanding.
        assert_eq!(t.len(), 2);
        let p = t.finished([5]);
        assert_eq!(p.multiple, None);
        assert_eq!(singles(&p), vec![5]);
    }

    #[test]
    fn settled_deliveries_do_not_block_the_run_and_are_never_acked() {
        let mut t = tracker(1..=4);
        assert_eq!(t.settled(2), Some(20)); // rejected (malformed)
        let p = t.finished([1, 3, 4]);
        assert_eq!(p.multiple, Some((4, 40, true)));
        assert_eq!(p.frames(), 1);
        assert!(t.is_empty());
    }

    #[test]
    fn every_finished_delivery_is_settled_exactly_once() {
        // Random-ish completion orders: the union of all plans is exactly the tags.
        for seed in 1..50u64 {
            let n = 40;
            let mut t = tracker(1..=n);
            let mut order: Vec<u64> = (1..=n).collect();
            let mut x = seed;
            for i in (1..order.len()).rev() {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                order.swap(i, (x >> 33) as usize % (i + 1));
            }
            let mut acked: Vec<u64> = Vec::new();
            let mut finished: Vec<u64> = Vec::new();
            let mut covered_upto = 0u64;
            for chunk in order.chunks(3) {
                finished.extend_from_slice(chunk);
                let p = t.finished(chunk.iter().copied());
                if let Some((tag, _, multiple)) = p.multiple {
                    if multiple {
                        // Everything below `tag` not yet acked is covered: all finished.
                        for k in covered_upto + 1..=tag {
                            if !acked.contains(&k) {
                                assert!(finished.contains(&k), "tag {k} acked unfinished");
                                acked.push(k);
                            }
                        }
                    } else {
                        acked.push(tag);
                    }
                    covered_upto = covered_upto.max(tag);
                }
                for (tag, _) in p.singles {
                    assert!(!acked.contains(&tag), "tag {tag} acked twice (seed {seed})");
                    acked.push(tag);
                }
            }
            acked.sort_unstable();
            assert_eq!(acked, (1..=n).collect::<Vec<_>>(), "seed {seed}");
            assert!(t.is_empty());
        }
    }

    #[test]
    fn unknown_tags_are_ignored() {
        let mut t = tracker(1..=2);
        let p = t.finished([7]);
        assert_eq!(p.frames(), 0);
        assert_eq!(t.len(), 2);
    }
}
