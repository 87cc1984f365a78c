//! Which two knobs stage 2 grids: the two that moved the headline switch time most in
//! stage 1.

use crate::compare::sweep::SweepAnalysis;

/// The pair of knobs (indices, in knob order) whose one-at-a-time cells moved the
/// headline switch time most, and the arithmetic in words. A knob's effect is the range
/// (slowest − fastest) of the headline over the reference cell and the measured cells
/// that change only that knob; a headline without a switch counts as slower than any.
/// An error says why no pair can be chosen (fewer than two knobs with two measured
/// headlines).
pub fn moved_most(a: &SweepAnalysis) -> Result<((usize, usize), String), String> {
    let reference = a
        .reference()
        .filter(|c| c.measured)
        .ok_or("the reference cell was not measured")?;
    let mut effects: Vec<(usize, f64)> = Vec::new();
    for (i, k) in a.knobs.iter().enumerate() {
        let mut headlines = vec![reference.headline_rank_ms()];
        headlines.extend(
            a.cells
                .iter()
                .filter(|c| c.measured && c.stage == 1 && c.changed == [k.key.clone()])
                .map(|c| c.headline_rank_ms()),
        );
        if headlines.len() < 2 {
            continue;
        }
        let max = headlines.iter().copied().fold(f64::MIN, f64::max);
        let min = headlines.iter().copied().fold(f64::MAX, f64::min);
        effects.push((i, max - min));
    }
    if effects.len() < 2 {
        return Err(format!(
            "stage 1 measured the headline switch time of {} knob(s) against the reference; \
             two are needed to choose a pair",
            effects.len()
        ));
    }
    // Largest effect first; ties in knob order (a stable sort).
    effects.sort_by(|x, y| y.1.total_cmp(&x.1));
    let text = |ms: f64| {
        if ms.is_finite() {
            format!("{:.2} s", ms / 1000.0)
        } else {
            "from a switch to none".to_string()
        }
    };
    let ((i, ei), (j, ej)) = (effects[0], effects[1]);
    let why = format!(
        "{} and {} moved the headline switch time most in stage 1 ({} and {}; the others: {})",
        a.knobs[i].key,
        a.knobs[j].key,
        text(ei),
        text(ej),
        effects[2..]
            .iter()
            .map(|(k, e)| format!("{} {}", a.knobs[*k].key, text(*e)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(((i.min(j), i.max(j)), why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::sweep::{analyse, fixture};

    #[test]
    fn the_pair_is_the_two_knobs_whose_lone_changes_moved_the_headline_most() {
        // Headlines: reference 2.4 s; check_interval 50ms 2.3 s, 2s 3.0 s (range 0.7 s);
        // down_after 200ms 1.5 s (range 0.9 s); the corner changes both and is left out.
        let a = analyse(&fixture::sweep(&fixture::five())).unwrap();
        let ((i, j), why) = moved_most(&a).unwrap();
        assert_eq!((i, j), (0, 1));
        assert!(
            why.starts_with(&format!(
                "{} and {} moved the headline switch time most in stage 1 (0.90 s and 0.70 s",
                a.knobs[1].key, a.knobs[0].key
            )),
            "{why}"
        );
    }

    #[test]
    fn no_pair_without_two_knobs_measured_against_the_reference() {
        let mut specs = fixture::five();
        specs.truncate(2);
        let a = analyse(&fixture::sweep(&specs)).unwrap();
        let e = moved_most(&a).unwrap_err();
        assert!(e.contains("1 knob(s)"), "{e}");
        let mut specs = fixture::five();
        specs[0].status = crate::record::sweep::CellStatus::Failed;
        let a = analyse(&fixture::sweep(&specs)).unwrap();
        assert_eq!(
            moved_most(&a).unwrap_err(),
            "the reference cell was not measured"
        );
    }
}
