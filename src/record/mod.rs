//! The run record (layer 4): the run directory as data. What `hab run` assembles and the
//! exporters write, what `hab report`, `hab compare` and `hab merge` read back: run.json
//! ([`RunReport`] and its parts), the calibration it may embed ([`Calibration`]), what a
//! shard or a merged run says about itself ([`ShardReport`], [`MergeReport`]), the names
//! of directories and files with the one timestamp format ([`names`]), and run
//! directories loaded back ([`RunSet`]).
//!
//! It imports the vocabulary, the data types of the engines it records (ledger counts,
//! observers' statuses) and metrics; never the stack, the clients, the worker, the
//! presentation or a command.

pub mod calibration;
pub mod load;
pub mod merge;
pub mod names;
pub mod report;
pub mod shard;
pub mod sweep;

pub use calibration::{CEILING_MARGIN, Calibration, Figure, Figures, Standing};
pub use load::{LoadedRun, RunSet, TopologyRuns};
pub use merge::{MergeReport, MergedShard, StartSkew};
pub use report::{
    ClockReport, FailedRead, FinalState, Invariant, Machine, RunReport, RunStatus, WorkerCrash,
    WorkersReport,
};
pub use shard::{ShardReport, StackScope, SyncKind, SyncOutcome, WorkloadStart, stack_scope};

#[cfg(test)]
pub(crate) use report::tests_support;
