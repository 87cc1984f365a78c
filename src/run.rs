//! Moved to [`crate::cmd::run`]; this path stays until every caller uses the new one.

pub use crate::cmd::run::{
    KEEPALIVE_CHANNEL, RunOptions, RunOutcome, SCHEDULE_LAG_WARN_US, run, run_dir_name,
    schedule_lag_warning, shard_dir_name, task_call,
};
