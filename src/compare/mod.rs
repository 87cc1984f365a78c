//! `hab compare`: the baseline and each topology run with the same workload plan, one run
//! directory per topology and repetition inside one comparison directory; then the
//! comparison (ratios to the baseline, failover summary), charts and report.

pub mod model;

pub use model::{LoadedRun, RunSet, TopologyRuns};
