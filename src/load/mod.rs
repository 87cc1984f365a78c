//! Load generation: arrival schedules (pure, clock-free, unit-tested). The generator that
//! publishes tasks at their intended start times lives in `run` (it shares the ledger);
//! [`pacer`] wakes it at each start with microsecond precision.

pub mod pacer;
pub mod schedule;
pub mod shard;
pub mod start;

pub use schedule::Schedule;
