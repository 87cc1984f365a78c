//! `hab.trivial()`: returns 42 at once; measures the queue, not the work.

use serde_json::Value;

/// Registered task name.
pub const NAME: &str = "hab.trivial";

/// The task body: the constant 42, computed inline (no thread hop).
pub fn run() -> Value {
    Value::from(42)
}
