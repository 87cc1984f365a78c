//! The names of the directories and files hab writes, with the one timestamp format they
//! start with: `<UTC timestamp>-<what>`, so a listing sorts by time.

use crate::load::shard::Shard;

/// The format of the UTC timestamp that starts every directory name
/// (`20261207T041320.646Z`: sortable, no characters a shell or a file system minds).
pub const TIMESTAMP_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

/// The current UTC time as [`TIMESTAMP_FORMAT`] writes it.
pub fn timestamp_now() -> String {
    chrono::Utc::now().format(TIMESTAMP_FORMAT).to_string()
}

/// A run directory's name: `<UTC timestamp>-<topology>-<plan>`.
pub fn run_dir_name(topology: &str, plan: &str) -> String {
    format!("{}-{topology}-{plan}", timestamp_now())
}

/// A shard's run directory name: [`run_dir_name`] with `-shard<I>of<N>`.
pub fn shard_dir_name(topology: &str, plan: &str, shard: Option<Shard>) -> String {
    let base = run_dir_name(topology, plan);
    match shard {
        Some(s) => format!("{base}-shard{}of{}", s.index, s.count),
        None => base,
    }
}

/// A calibration's directory name: `<UTC timestamp>-<topology>-calibrate`.
pub fn calibrate_dir_name(topology: &str) -> String {
    run_dir_name(topology, "calibrate")
}

/// The merged run directory's name: `<UTC timestamp>-<topology>-<plan>-merged<N>`.
pub fn merged_dir_name(topology: &str, plan: &str, count: u32) -> String {
    format!("{}-merged{count}", run_dir_name(topology, plan))
}

/// A comparison directory's name: `<UTC timestamp>-compare-<plan>`.
pub fn compare_dir_name(plan: &str) -> String {
    format!("{}-compare-{plan}", timestamp_now())
}

/// The run record of a run directory.
pub const RUN_FILE: &str = "run.json";

/// The record of a calibration directory (`hab calibrate`).
pub const CALIBRATE_FILE: &str = "calibrate.json";

/// The file `hab compare` writes into a comparison directory to remember the order of its
/// topologies and which one is the baseline (run.json files hold everything else).
pub const INDEX_FILE: &str = "compare.json";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_names_sort_by_time_and_name_the_run() {
        let n = run_dir_name("standalone", "seed");
        assert!(n.ends_with("-standalone-seed"), "{n}");
        assert!(n.starts_with("20"), "{n}");
        assert_eq!(n.find('-'), Some("20261207T041320.646Z".len()), "{n}");
        assert!(n[..20].ends_with('Z'), "{n}");
    }

    #[test]
    fn derived_names_keep_the_run_name_and_add_their_part() {
        let s = Shard { index: 2, count: 3 };
        assert!(shard_dir_name("t", "p", Some(s)).ends_with("-t-p-shard2of3"));
        assert!(shard_dir_name("t", "p", None).ends_with("-t-p"));
        assert!(merged_dir_name("t", "p", 3).ends_with("-t-p-merged3"));
        assert!(calibrate_dir_name("t").ends_with("-t-calibrate"));
        assert!(compare_dir_name("p").ends_with("-compare-p"));
    }
}
