//! `.hgrm`: HdrHistogram's percentile distribution text (as `outputPercentileDistribution`
//! writes it), one file per topology × workload, values in milliseconds — the format the
//! HdrHistogram plotter and most tools read.

use std::fmt::Write;
use std::path::Path;

use anyhow::Result;

use crate::metrics::LatencyHistogram;
use crate::record::RunReport;

/// Percentile ticks per half distance to 100 %, as HdrHistogram's default output.
pub const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The percentile distribution of `hist` (recorded in µs), values divided by `scale`
/// (1000.0 for milliseconds).
pub fn hgrm_text(hist: &LatencyHistogram, scale: f64) -> String {
    let h = hist.inner();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !h.is_empty() {
        let mut total = 0u64;
        for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = h.highest_equivalent(v.value_iterated_to()) as f64 / scale;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (h.mean() / scale, h.stdev() / scale, h.max() as f64 / scale)
    };
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        h.distinct_values()
    );
    out
}

/// Write `<topology>-<workload>.hgrm` for every workload of the run (end-to-end latency,
/// milliseconds).
pub fn write_files(dir: &Path, report: &RunReport) -> Result<()> {
    let topology = report
        .topology
        .get("name")
        .and_then(|v| v.as_str())
        .unwrap_or("run");
    for w in &report.workloads {
        let Some(encoded) = w.histograms.get("latency") else {
            continue;
        };
        let hist = LatencyHistogram::from_base64(encoded)?;
        let path = dir.join(format!("{topology}-{}.hgrm", w.name));
        super::write_atomic(&path, hgrm_text(&hist, 1000.0).as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_has;

    #[test]
    fn distribution_of_a_known_histogram() {
        let mut h = LatencyHistogram::new();
        for v in 1..=1000 {
            h.record(v * 1000); // 1..1000 ms, in µs
        }
        let text = hgrm_text(&h, 1000.0);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(
            lines[0],
            "       Value     Percentile TotalCount 1/(1-Percentile)"
        );
        assert_eq!(lines[1], "");
        // The first line is the smallest value at percentile 0; the last reaches 100 %.
        assert!(
            lines[2].starts_with("       1.000 0.000000000000          1           1.00"),
            "{}",
            lines[2]
        );
        let last = lines.iter().rev().find(|l| !l.starts_with('#')).unwrap();
        assert!(last.contains(" 1.000000000000       1000"), "{last}");
        let median = lines
            .iter()
            .find(|l| l.contains(" 0.500000000000 "))
            .expect("a 50 % line");
        let v: f64 = median.split_whitespace().next().unwrap().parse().unwrap();
        assert!((v - 500.0).abs() <= 0.5, "{median}");
        assert_has(
            &text,
            &["#[Max     =     1000.447, Total count    =         1000]"],
        );
        assert!(text.contains("#[Mean    ="), "{text}");
    }

    #[test]
    fn empty_histogram_has_header_and_footer_only() {
        let text = hgrm_text(&LatencyHistogram::new(), 1000.0);
        assert!(text.contains("Total count    =            0"), "{text}");
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 2);
    }
}
