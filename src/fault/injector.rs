//! Moved to [`crate::inject`] (the injector is an engine above the stack; `fault` keeps
//! the vocabulary). Re-exported here until the callers use the new path.

pub use crate::inject::{HEALTH_TIMEOUT, run_faults, timeline};
