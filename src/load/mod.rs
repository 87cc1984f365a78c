//! Load generation: arrival schedules (pure, clock-free, unit-tested). The generator that
//! publishes tasks at their intended start times lives in `run` (it shares the ledger).

pub mod schedule;

pub use schedule::Schedule;
