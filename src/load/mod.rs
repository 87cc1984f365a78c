//! Load generation: arrival schedules (pure, clock-free, unit-tested) and the generator
//! that publishes tasks at their intended start times.

pub mod generator;
pub mod schedule;

pub use schedule::Schedule;
