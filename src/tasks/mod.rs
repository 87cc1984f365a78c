//! The four task kinds hab's worker runs, under the names the Python seed registers.
//!
//! # Layout
//! - [`trivial`]: `hab.trivial()` → `42`.
//! - [`sleep`]: `hab.sleep(seconds)` → `null` (a timer, no CPU).
//! - [`write_zeros`](mod@write_zeros): `hab.write_zeros(path, nbytes)` → bytes written (disk, blocking pool).
//! - [`factorial`]: `hab.factorial(n)` → digits of `n!` (CPU, blocking pool); also the
//!   pure kernels the benches measure.
//! - [`scratch`]: the worker's scratch directory, the only place `write_zeros` creates files.
//! - [`refusal`]: the rules a message can break ([`Refusal`]) and the `FAILURE` each stores.
//! - [`thread`]: the threads task work runs on, named [`thread::TASK_THREAD`].
//! - This file: [`Task`] (binding a call's `args`/`kwargs` like Python would, with Python's
//!   `TypeError`/`ValueError` messages), [`Task::check`] (the worker's limits) and
//!   [`Task::execute`].
//!
//! CPU and disk work always runs on tokio's blocking pool: on 2 cores, a runtime thread
//! busy for 20 ms is a stalled AMQP heartbeat and a skewed latency for every other task.

pub mod factorial;
pub mod refusal;
pub mod scratch;
pub mod sleep;
pub mod thread;
pub mod trivial;
pub mod write_zeros;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::config::limits::WorkerLimits;
pub use refusal::{Refusal, RefusalKind};
use scratch::Scratch;

pub use factorial::{factorial_digits, factorial_naive, factorial_swing, factorial_tree};
pub use write_zeros::write_zeros;

/// Every task name hab's worker registers.
pub const TASK_NAMES: [&str; 4] = [
    trivial::NAME,
    sleep::NAME,
    write_zeros::NAME,
    factorial::NAME,
];

/// A task call, bound and validated, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// `hab.trivial()`: returns 42.
    Trivial,
    /// `hab.sleep(seconds)`: sleeps, returns `null`.
    Sleep {
        /// Sleep length in seconds (finite, non-negative).
        seconds: f64,
    },
    /// `hab.write_zeros(path, nbytes)`: writes, syncs and deletes a file of zeros.
    WriteZeros {
        /// File to create, inside the worker's scratch directory (never an existing file;
        /// always deleted afterwards).
        path: PathBuf,
        /// Number of zero bytes to write.
        nbytes: u64,
    },
    /// `hab.factorial(n)`: returns the number of decimal digits of `n!`.
    Factorial {
        /// The argument of the factorial.
        n: u64,
    },
}

/// Why a call cannot become a [`Task`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// No task has this name (Celery: reject and store `NotRegistered`).
    #[error(
        "task `{0}` is not registered; hab registers hab.trivial, hab.sleep, hab.write_zeros \
         and hab.factorial"
    )]
    NotRegistered(String),
    /// Wrong number, names or types of arguments (Python raises `TypeError`).
    #[error("{task}: {message}")]
    BadArguments {
        /// The task name.
        task: String,
        /// Python's `TypeError` message, e.g. `factorial() missing 1 required positional
        /// argument: 'n'`.
        message: String,
    },
    /// Arguments of the right type with an unusable value, e.g. a negative `n` (Python
    /// raises `ValueError`).
    #[error("{task}: {message}")]
    InvalidValue {
        /// The task name.
        task: String,
        /// Python's `ValueError` message, e.g. `factorial() not defined for negative values`.
        message: String,
    },
}

impl TaskError {
    /// The exception a Python worker would record for this error.
    pub fn to_failure(&self) -> TaskFailure {
        match self {
            TaskError::NotRegistered(name) => {
                TaskFailure::new("NotRegistered", "celery.exceptions", name)
            }
            TaskError::BadArguments { message, .. } => {
                TaskFailure::new("TypeError", "builtins", message)
            }
            TaskError::InvalidValue { message, .. } => {
                TaskFailure::new("ValueError", "builtins", message)
            }
        }
    }

    /// A short snake_case code for logs and CSV columns.
    pub fn reason(&self) -> &'static str {
        match self {
            TaskError::NotRegistered(_) => "not_registered",
            TaskError::BadArguments { .. } => "bad_arguments",
            TaskError::InvalidValue { .. } => "invalid_value",
        }
    }
}

/// A task that ran and raised: the exception as Celery stores it in a `FAILURE` record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{exc_module}.{exc_type}: {exc_message}")]
pub struct TaskFailure {
    /// Exception class name, e.g. `OSError`, `FileNotFoundError`, `TypeError`.
    pub exc_type: String,
    /// Module of the exception class, e.g. `builtins`.
    pub exc_module: String,
    /// The exception's message (its single argument).
    pub exc_message: String,
    /// The worker's rule this failure enforces, when the task was refused rather than run.
    pub refusal: Option<RefusalKind>,
}

impl TaskFailure {
    /// A failure from its three parts.
    pub fn new(exc_type: &str, exc_module: &str, exc_message: &str) -> Self {
        Self {
            exc_type: exc_type.to_owned(),
            exc_module: exc_module.to_owned(),
            exc_message: exc_message.to_owned(),
            refusal: None,
        }
    }

    /// The `OSError` Python would raise for `err` on `path`: the errno subclass
    /// (`FileNotFoundError`, `PermissionError`, …) and `[Errno 2] No such file or
    /// directory: '/x'` (the file name only for errors about the path itself).
    pub fn from_io(err: &std::io::Error, path: &std::path::Path) -> Self {
        use nix::errno::Errno;
        let Some(code) = err.raw_os_error() else {
            return Self::new("OSError", "builtins", &err.to_string());
        };
        let errno = Errno::from_raw(code);
        let (exc_type, names_path) = match errno {
            Errno::ENOENT => ("FileNotFoundError", true),
            Errno::EACCES | Errno::EPERM => ("PermissionError", true),
            Errno::EISDIR => ("IsADirectoryError", true),
            Errno::ENOTDIR => ("NotADirectoryError", true),
            Errno::EEXIST => ("FileExistsError", true),
            Errno::EINTR => ("InterruptedError", false),
            Errno::ENAMETOOLONG | Errno::EROFS | Errno::ELOOP => ("OSError", true),
            _ => ("OSError", false),
        };
        let mut message = format!("[Errno {code}] {}", errno.desc());
        if names_path {
            message.push_str(": ");
            crate::protocol::py_str_repr(&path.to_string_lossy(), &mut message);
        }
        Self::new(exc_type, "builtins", &message)
    }

    /// A traceback text in Python's shape (hab has no Python frames to show), for the
    /// `traceback` field of a `FAILURE` record.
    pub fn traceback(&self) -> String {
        let qualified = if self.exc_module == "builtins" {
            self.exc_type.clone()
        } else {
            format!("{}.{}", self.exc_module, self.exc_type)
        };
        format!(
            "Traceback (most recent call last):\n  File \"<hab worker>\", in <task>\n{qualified}: {}\n",
            self.exc_message
        )
    }
}

impl Task {
    /// Binds a call like Python would bind `fn(*args, **kwargs)` for the task's signature
    /// (each argument positionally or by name), then checks types and values.
    pub fn from_call(
        name: &str,
        args: &[Value],
        kwargs: &Map<String, Value>,
    ) -> Result<Task, TaskError> {
        match name {
            trivial::NAME => {
                bind(name, [], args, kwargs)?;
                Ok(Task::Trivial)
            }
            sleep::NAME => {
                let [seconds] = bind(name, ["seconds"], args, kwargs)?;
                let seconds = match seconds {
                    Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
                    other => return Err(not_an_integer(name, other)),
                };
                sleep::duration(seconds).map_err(|message| invalid_value(name, message))?;
                Ok(Task::Sleep { seconds })
            }
            write_zeros::NAME => {
                let [path, nbytes] = bind(name, ["path", "nbytes"], args, kwargs)?;
                let Value::String(path) = path else {
                    return Err(bad_arguments(
                        name,
                        format!(
                            "expected str, bytes or os.PathLike object, not {}",
                            py_type(path)
                        ),
                    ));
                };
                let nbytes = non_negative_int(name, nbytes, "negative count")?;
                Ok(Task::WriteZeros {
                    path: PathBuf::from(path),
                    nbytes,
                })
            }
            factorial::NAME => {
                let [n] = bind(name, ["n"], args, kwargs)?;
                let n = non_negative_int(name, n, "factorial() not defined for negative values")?;
                Ok(Task::Factorial { n })
            }
            _ => Err(TaskError::NotRegistered(name.to_owned())),
        }
    }

    /// The registered name of this task.
    pub fn name(&self) -> &'static str {
        match self {
            Task::Trivial => trivial::NAME,
            Task::Sleep { .. } => sleep::NAME,
            Task::WriteZeros { .. } => write_zeros::NAME,
            Task::Factorial { .. } => factorial::NAME,
        }
    }

    /// Whether the call is within the worker's `limits` (the scratch file system's free
    /// space is checked when the write starts).
    pub fn check(&self, limits: &WorkerLimits) -> Result<(), Refusal> {
        match self {
            Task::Trivial => Ok(()),
            Task::Sleep { seconds } if *seconds > limits.max_sleep.as_secs_f64() => {
                Err(Refusal::limit(
                    RefusalKind::SleepLimit,
                    &format!("sleep({seconds})"),
                    "max_sleep",
                    format_args!("of {}", humantime::format_duration(limits.max_sleep)),
                ))
            }
            Task::Sleep { .. } => Ok(()),
            Task::WriteZeros { nbytes, .. } if *nbytes > limits.max_write_bytes => {
                Err(Refusal::limit(
                    RefusalKind::WriteLimit,
                    &format!("write_zeros of {nbytes} bytes"),
                    "max_write_bytes",
                    format_args!("of {} bytes", limits.max_write_bytes),
                ))
            }
            Task::WriteZeros { .. } => Ok(()),
            Task::Factorial { n } if *n > limits.max_factorial_n => Err(Refusal::limit(
                RefusalKind::FactorialLimit,
                &format!("factorial({n})"),
                "max_factorial_n",
                format_args!("n <= {}", limits.max_factorial_n),
            )),
            Task::Factorial { .. } => Ok(()),
        }
    }

    /// Runs the task and returns its result value: `42`, `null`, bytes written, or the
    /// digit count. Trivial runs inline, sleep on the timer, write_zeros (inside
    /// `scratch`) and factorial on tokio's blocking pool.
    pub async fn execute(self, scratch: &Arc<Scratch>) -> Result<Value, TaskFailure> {
        match self {
            Task::Trivial => Ok(trivial::run()),
            Task::Sleep { seconds } => {
                let duration = sleep::duration(seconds)
                    .map_err(|message| TaskFailure::new("ValueError", "builtins", &message))?;
                sleep::run(duration).await;
                Ok(Value::Null)
            }
            Task::WriteZeros { path, nbytes } => {
                let scratch = scratch.clone();
                let written =
                    blocking(move || write_zeros::write_zeros_in(&scratch, &path, nbytes)).await?;
                Ok(Value::from(written))
            }
            Task::Factorial { n } => {
                let digits = blocking(move || Ok(factorial::factorial_digits(n))).await?;
                Ok(Value::from(digits))
            }
        }
    }
}

/// Runs `work` on a task thread ([`thread::spawn_task_work`]); a panic becomes a
/// `RuntimeError` failure.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TaskFailure> + Send + 'static,
) -> Result<T, TaskFailure> {
    match thread::spawn_task_work(work).await {
        Ok(result) => result,
        Err(join) => Err(TaskFailure::new(
            "RuntimeError",
            "builtins",
            &format!("hab worker: task did not complete: {join}"),
        )),
    }
}

/// The function name Python would put in its messages: `hab.factorial` → `factorial`.
fn func_name(task: &str) -> &str {
    task.rsplit('.').next().unwrap_or(task)
}

/// Binds `args` and `kwargs` to the parameters `params` (all required, positional or
/// keyword), with Python's `TypeError` messages.
fn bind<'a, const N: usize>(
    task: &str,
    params: [&str; N],
    args: &'a [Value],
    kwargs: &'a Map<String, Value>,
) -> Result<[&'a Value; N], TaskError> {
    let func = func_name(task);
    if args.len() > N {
        let plural = if N == 1 { "" } else { "s" };
        let verb = if args.len() == 1 { "was" } else { "were" };
        return Err(bad_arguments(
            task,
            format!(
                "{func}() takes {N} positional argument{plural} but {} {verb} given",
                args.len()
            ),
        ));
    }
    for key in kwargs.keys() {
        match params.iter().position(|p| p == key) {
            None => {
                return Err(bad_arguments(
                    task,
                    format!("{func}() got an unexpected keyword argument '{key}'"),
                ));
            }
            Some(i) if i < args.len() => {
                return Err(bad_arguments(
                    task,
                    format!("{func}() got multiple values for argument '{key}'"),
                ));
            }
            Some(_) => {}
        }
    }
    static ABSENT: Value = Value::Null;
    let mut missing = Vec::new();
    let bound: [&Value; N] = std::array::from_fn(|i| {
        args.get(i)
            .or_else(|| kwargs.get(params[i]))
            .unwrap_or_else(|| {
                missing.push(params[i]);
                &ABSENT
            })
    });
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|m| format!("'{m}'")).collect();
        let list = match names.as_slice() {
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
            [] => String::new(),
        };
        let plural = if missing.len() == 1 { "" } else { "s" };
        return Err(bad_arguments(
            task,
            format!(
                "{func}() missing {} required positional argument{plural}: {list}",
                missing.len()
            ),
        ));
    }
    Ok(bound)
}

/// A non-negative integer argument: a JSON float or other type is Python's `TypeError`,
/// a negative integer the `ValueError` `negative_message`.
fn non_negative_int(task: &str, value: &Value, negative_message: &str) -> Result<u64, TaskError> {
    match value {
        Value::Number(n) if n.is_u64() => Ok(n.as_u64().unwrap_or(0)),
        Value::Number(n) if n.is_i64() => Err(invalid_value(task, negative_message.to_owned())),
        other => Err(not_an_integer(task, other)),
    }
}

/// Python's `TypeError` for a value used where an integer is needed.
fn not_an_integer(task: &str, value: &Value) -> TaskError {
    bad_arguments(
        task,
        format!(
            "'{}' object cannot be interpreted as an integer",
            py_type(value)
        ),
    )
}

fn bad_arguments(task: &str, message: String) -> TaskError {
    TaskError::BadArguments {
        task: task.to_owned(),
        message,
    }
}

fn invalid_value(task: &str, message: String) -> TaskError {
    TaskError::InvalidValue {
        task: task.to_owned(),
        message,
    }
}

/// The Python type name of what `value` decodes to.
fn py_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_has;
    use serde_json::json;

    fn call(name: &str, args: Value, kwargs: Value) -> Result<Task, TaskError> {
        let Value::Array(args) = args else { panic!() };
        let Value::Object(kwargs) = kwargs else {
            panic!()
        };
        Task::from_call(name, &args, &kwargs)
    }

    fn type_error(name: &str, args: Value, kwargs: Value) -> String {
        match call(name, args, kwargs) {
            Err(TaskError::BadArguments { task, message }) => {
                assert_eq!(task, name);
                message
            }
            other => panic!("expected BadArguments, got {other:?}"),
        }
    }

    #[test]
    fn binds_positional_and_keyword() {
        let wz = Task::WriteZeros {
            path: PathBuf::from("/tmp/z"),
            nbytes: 1_000_000_000,
        };
        let cases = [
            ("hab.trivial", json!([]), json!({}), Task::Trivial),
            (
                "hab.sleep",
                json!([1]),
                json!({}),
                Task::Sleep { seconds: 1.0 },
            ),
            (
                "hab.sleep",
                json!([]),
                json!({"seconds": 0.5}),
                Task::Sleep { seconds: 0.5 },
            ),
            (
                "hab.write_zeros",
                json!(["/tmp/z", 1_000_000_000u64]),
                json!({}),
                wz.clone(),
            ),
            (
                "hab.write_zeros",
                json!(["/tmp/z"]),
                json!({"nbytes": 1_000_000_000u64}),
                wz.clone(),
            ),
            (
                "hab.write_zeros",
                json!([]),
                json!({"nbytes": 1_000_000_000u64, "path": "/tmp/z"}),
                wz,
            ),
            (
                "hab.factorial",
                json!([100000]),
                json!({}),
                Task::Factorial { n: 100000 },
            ),
            (
                "hab.factorial",
                json!([]),
                json!({"n": 0}),
                Task::Factorial { n: 0 },
            ),
        ];
        for (name, args, kwargs, want) in cases {
            let case = format!("{name}({args}, {kwargs})");
            assert_eq!(call(name, args, kwargs), Ok(want), "{case}");
        }
        assert_eq!(Task::Factorial { n: 1 }.name(), "hab.factorial");
    }

    #[test]
    fn unknown_name() {
        let err = call("hab.nope", json!([]), json!({})).unwrap_err();
        assert_eq!(err, TaskError::NotRegistered("hab.nope".into()));
        assert_eq!(err.reason(), "not_registered");
        let failure = err.to_failure();
        assert_eq!(
            (failure.exc_type.as_str(), failure.exc_module.as_str()),
            ("NotRegistered", "celery.exceptions")
        );
    }

    #[test]
    fn arity_errors_read_like_python() {
        assert_eq!(
            type_error("hab.trivial", json!([1]), json!({})),
            "trivial() takes 0 positional arguments but 1 was given"
        );
        assert_eq!(
            type_error("hab.factorial", json!([1, 2]), json!({})),
            "factorial() takes 1 positional argument but 2 were given"
        );
        assert_eq!(
            type_error("hab.factorial", json!([]), json!({})),
            "factorial() missing 1 required positional argument: 'n'"
        );
        assert_eq!(
            type_error("hab.write_zeros", json!([]), json!({})),
            "write_zeros() missing 2 required positional arguments: 'path' and 'nbytes'"
        );
        assert_eq!(
            type_error("hab.factorial", json!([5]), json!({"n": 5})),
            "factorial() got multiple values for argument 'n'"
        );
        assert_eq!(
            type_error("hab.sleep", json!([]), json!({"secs": 1})),
            "sleep() got an unexpected keyword argument 'secs'"
        );
        let err = call("hab.trivial", json!([1]), json!({})).unwrap_err();
        assert_eq!(err.to_failure().exc_type, "TypeError");
        assert_eq!(err.reason(), "bad_arguments");
    }

    #[test]
    fn type_and_value_errors() {
        assert_eq!(
            type_error("hab.factorial", json!([10.0]), json!({})),
            "'float' object cannot be interpreted as an integer"
        );
        assert_eq!(
            type_error("hab.factorial", json!(["10"]), json!({})),
            "'str' object cannot be interpreted as an integer"
        );
        assert_eq!(
            type_error("hab.sleep", json!([null]), json!({})),
            "'NoneType' object cannot be interpreted as an integer"
        );
        assert_eq!(
            type_error("hab.write_zeros", json!([5, 5]), json!({})),
            "expected str, bytes or os.PathLike object, not int"
        );
        assert_eq!(
            type_error("hab.write_zeros", json!(["/tmp/z", 1.5]), json!({})),
            "'float' object cannot be interpreted as an integer"
        );
        let err = call("hab.factorial", json!([-1]), json!({})).unwrap_err();
        assert!(matches!(err, TaskError::InvalidValue { .. }), "{err:?}");
        assert_eq!(err.to_failure().exc_type, "ValueError");
        assert!(matches!(
            call("hab.sleep", json!([-0.5]), json!({})),
            Err(TaskError::InvalidValue { .. })
        ));
        assert!(matches!(
            call("hab.write_zeros", json!(["/tmp/z", -1]), json!({})),
            Err(TaskError::InvalidValue { .. })
        ));
    }

    #[test]
    fn io_failures_read_like_python() {
        let path = std::path::Path::new("/nonexistent/zeros");
        let f = TaskFailure::from_io(&std::io::Error::from_raw_os_error(2), path);
        assert_eq!(
            f,
            TaskFailure::new(
                "FileNotFoundError",
                "builtins",
                "[Errno 2] No such file or directory: '/nonexistent/zeros'"
            )
        );
        let f = TaskFailure::from_io(&std::io::Error::from_raw_os_error(28), path);
        assert_eq!(
            f,
            TaskFailure::new("OSError", "builtins", "[Errno 28] No space left on device")
        );
        assert!(
            f.traceback()
                .ends_with("\nOSError: [Errno 28] No space left on device\n")
        );
    }

    #[test]
    fn limits_refuse_with_the_setting_named() {
        let limits = WorkerLimits::default();
        let refused = |t: Task| t.check(&limits).unwrap_err();
        let r = refused(Task::Factorial { n: 1_000_000_000 });
        assert_eq!(r.kind, RefusalKind::FactorialLimit);
        assert_has(&r.message, &["workers.limits.max_factorial_n"]);
        assert!(
            r.message.starts_with("factorial(1000000000) exceeds"),
            "{}",
            r.message
        );
        let r = refused(Task::Sleep { seconds: 1e6 });
        assert_eq!(r.kind, RefusalKind::SleepLimit);
        assert!(r.message.contains("of 1h"), "{}", r.message);
        let r = refused(Task::WriteZeros {
            path: "z".into(),
            nbytes: 100_000_000_001,
        });
        assert_eq!(r.kind, RefusalKind::WriteLimit);
        assert_eq!(r.to_failure().exc_type, "ValueError");
        // The workload files' own maxima pass.
        for t in [
            Task::Trivial,
            Task::Sleep { seconds: 3600.0 },
            Task::Factorial { n: 10_000_000 },
            Task::WriteZeros {
                path: "z".into(),
                nbytes: 100_000_000_000,
            },
        ] {
            assert_eq!(t.check(&limits), Ok(()));
        }
        let tight = WorkerLimits {
            max_factorial_n: 10,
            ..WorkerLimits::default()
        };
        assert!(Task::Factorial { n: 11 }.check(&tight).is_err());
        assert!(Task::Factorial { n: 10 }.check(&tight).is_ok());
    }

    #[tokio::test]
    async fn blocking_work_runs_on_a_thread_named_for_tasks() {
        let name = || nix::sys::prctl::get_name().unwrap().into_string().unwrap();
        let during = blocking(move || Ok(name())).await.unwrap();
        assert_eq!(during, thread::TASK_THREAD);
        // The caller's own threads keep their names.
        assert_ne!(name(), thread::TASK_THREAD);
        let failure = blocking::<()>(|| panic!("boom")).await.unwrap_err();
        assert_eq!(failure.exc_type, "RuntimeError");
    }

    #[tokio::test]
    async fn execute_returns_celery_values() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Arc::new(Scratch::open(dir.path()).unwrap());
        let scratch = &scratch;
        assert_eq!(Task::Trivial.execute(scratch).await, Ok(json!(42)));
        assert_eq!(
            Task::Sleep { seconds: 0.01 }.execute(scratch).await,
            Ok(Value::Null)
        );
        assert_eq!(
            Task::Factorial { n: 100 }.execute(scratch).await,
            Ok(json!(158))
        );
        let path = dir.path().join("zeros");
        let task = Task::WriteZeros {
            path: path.clone(),
            nbytes: 3_000_017,
        };
        assert_eq!(task.execute(scratch).await, Ok(json!(3_000_017)));
        assert!(!path.exists());
        let task = Task::WriteZeros {
            path: dir.path().join("missing/zeros"),
            nbytes: 10,
        };
        let failure = task.execute(scratch).await.unwrap_err();
        assert_eq!(failure.exc_type, "FileNotFoundError");
        assert_eq!(
            Task::Sleep { seconds: -1.0 }
                .execute(scratch)
                .await
                .unwrap_err()
                .exc_type,
            "ValueError"
        );
    }
}
