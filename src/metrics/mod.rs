//! Metrics: latency histograms (µs, 3 significant digits) and per-workload summaries
//! computed from the ledger. Histograms are kept whole (serialized into run.json), never
//! only their percentiles, so runs and shards can be merged later.

pub mod client_side;
pub mod cpu;
pub mod failover;
pub mod histogram;
pub mod idle;
pub mod outage;
pub mod stats;
pub mod summary;
pub mod timeline;

pub use histogram::{LatencyHistogram, LatencyStats};
pub use stats::Spread;
pub use summary::{StageHistograms, WorkloadMetrics};
