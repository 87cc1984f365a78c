//! Why a worker refused to run a message: the rule, and the `FAILURE` it stores.
//!
//! A refused message is never run; it is acknowledged with a `FAILURE` result whose
//! exception names the rule (and, for a limit, the setting that raises it), and the
//! worker counts it by [`RefusalKind::code`] (side channel `refused` events, run.json
//! `workers.refused`).

use super::TaskFailure;

/// The rule a message broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefusalKind {
    /// A `write_zeros` path outside the scratch directory (absolute elsewhere, or `..`).
    PathOutsideScratch,
    /// A `write_zeros` path through a symbolic link.
    PathThroughSymlink,
    /// A `write_zeros` path that already exists (never truncated).
    FileExists,
    /// `factorial(n)` with n above `workers.limits.max_factorial_n`.
    FactorialLimit,
    /// `write_zeros` of more than `workers.limits.max_write_bytes`.
    WriteLimit,
    /// `write_zeros` of more than the scratch file system has free.
    WriteFreeSpace,
    /// `sleep(seconds)` above `workers.limits.max_sleep`.
    SleepLimit,
    /// A message body above `workers.limits.max_message_bytes`.
    MessageTooLarge,
    /// A Celery feature hab's worker does not implement (callbacks, errbacks, chain,
    /// chord).
    UnsupportedFeature,
    /// The task's worker died `workers.limits.crash_limit` times while running it.
    WorkerLost,
}

impl RefusalKind {
    /// Every kind, in a fixed order.
    pub const ALL: [RefusalKind; 10] = [
        RefusalKind::PathOutsideScratch,
        RefusalKind::PathThroughSymlink,
        RefusalKind::FileExists,
        RefusalKind::FactorialLimit,
        RefusalKind::WriteLimit,
        RefusalKind::WriteFreeSpace,
        RefusalKind::SleepLimit,
        RefusalKind::MessageTooLarge,
        RefusalKind::UnsupportedFeature,
        RefusalKind::WorkerLost,
    ];

    /// The snake_case code in the side channel and run.json.
    pub fn code(self) -> &'static str {
        match self {
            RefusalKind::PathOutsideScratch => "path_outside_scratch",
            RefusalKind::PathThroughSymlink => "path_through_symlink",
            RefusalKind::FileExists => "file_exists",
            RefusalKind::FactorialLimit => "factorial_limit",
            RefusalKind::WriteLimit => "write_limit",
            RefusalKind::WriteFreeSpace => "write_free_space",
            RefusalKind::SleepLimit => "sleep_limit",
            RefusalKind::MessageTooLarge => "message_too_large",
            RefusalKind::UnsupportedFeature => "unsupported_feature",
            RefusalKind::WorkerLost => "worker_lost",
        }
    }

    /// The kind with this code.
    pub fn from_code(code: &str) -> Option<RefusalKind> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The exception class (module, name) a `FAILURE` of this kind carries.
    fn exception(self) -> (&'static str, &'static str) {
        match self {
            RefusalKind::PathOutsideScratch | RefusalKind::PathThroughSymlink => {
                ("builtins", "PermissionError")
            }
            RefusalKind::FileExists => ("builtins", "FileExistsError"),
            RefusalKind::FactorialLimit
            | RefusalKind::WriteLimit
            | RefusalKind::WriteFreeSpace
            | RefusalKind::SleepLimit
            | RefusalKind::MessageTooLarge => ("builtins", "ValueError"),
            RefusalKind::UnsupportedFeature => ("builtins", "NotImplementedError"),
            // As Celery's `task_reject_on_worker_lost = False` path stores it.
            RefusalKind::WorkerLost => ("billiard.exceptions", "WorkerLostError"),
        }
    }
}

/// A refused message: the rule and a message naming it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The rule.
    pub kind: RefusalKind,
    /// What was asked, the rule, and how to change it; ends with `(rule: <code>)`.
    pub message: String,
}

impl Refusal {
    /// A refusal of `kind`; `(rule: <code>)` is appended to `message`.
    pub fn new(kind: RefusalKind, message: impl Into<String>) -> Self {
        Refusal {
            kind,
            message: format!("{} (rule: {})", message.into(), kind.code()),
        }
    }

    /// A limit refusal: `what` exceeded `setting` (its value `limit`).
    pub fn limit(
        kind: RefusalKind,
        what: &str,
        setting: &str,
        limit: impl std::fmt::Display,
    ) -> Self {
        Refusal::new(
            kind,
            format!(
                "{what} exceeds the worker's limit {limit}; raise workers.limits.{setting} in \
                 the topology to allow it"
            ),
        )
    }

    /// The `FAILURE` this refusal stores.
    pub fn to_failure(&self) -> TaskFailure {
        let (module, name) = self.kind.exception();
        let mut f = TaskFailure::new(name, module, &self.message);
        f.refusal = Some(self.kind);
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_has;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for k in RefusalKind::ALL {
            assert_eq!(RefusalKind::from_code(k.code()), Some(k));
        }
        let mut codes: Vec<_> = RefusalKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), RefusalKind::ALL.len());
        assert_eq!(RefusalKind::from_code("nope"), None);
    }

    #[test]
    fn failures_name_the_rule_and_the_setting() {
        let r = Refusal::limit(
            RefusalKind::FactorialLimit,
            "factorial(1000000000)",
            "max_factorial_n",
            10_000_000,
        );
        let f = r.to_failure();
        assert_eq!(f.exc_type, "ValueError");
        assert_eq!(f.refusal, Some(RefusalKind::FactorialLimit));
        assert_has(&f.exc_message, &["workers.limits.max_factorial_n"]);
        assert!(
            f.exc_message.ends_with("(rule: factorial_limit)"),
            "{}",
            f.exc_message
        );
        let lost = Refusal::new(RefusalKind::WorkerLost, "x").to_failure();
        assert_eq!(
            (lost.exc_module.as_str(), lost.exc_type.as_str()),
            ("billiard.exceptions", "WorkerLostError")
        );
    }
}
