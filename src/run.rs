//! Moved to [`crate::cmd::run`]; this path stays until every caller uses the new one.

pub use crate::cmd::run::{
    RunOptions, RunOutcome, SCHEDULE_LAG_WARN_US, run, schedule_lag_warning, task_call,
};
