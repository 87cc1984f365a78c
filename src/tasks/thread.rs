//! Where a task's own work runs: threads named [`TASK_THREAD`], so CPU samplers
//! ([`crate::observe::cpu`]) tell the work being measured from hab's overhead.

use std::sync::OnceLock;

/// The name of every thread that runs a task's own work (factorial, write_zeros): their
/// CPU time is the work being measured, not hab's overhead.
pub const TASK_THREAD: &str = "hab-task";

/// A runtime used only for its blocking pool, every thread of which is named
/// [`TASK_THREAD`] for its whole life (its one worker thread runs nothing and burns no
/// CPU). `None` when it cannot be built: task work then runs on the caller's blocking pool
/// and is counted as overhead, never lost.
fn task_runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(TASK_THREAD)
                .build()
                .map_err(|e| {
                    tracing::warn!(
                        "cannot start the task threads ({e}); task work counts as overhead"
                    )
                })
                .ok()
        })
        .as_ref()
}

/// Runs `work` on a thread named [`TASK_THREAD`] (a blocking pool: CPU and disk work never
/// stalls the async threads).
pub fn spawn_task_work<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> tokio::task::JoinHandle<T> {
    match task_runtime() {
        Some(rt) => rt.spawn_blocking(work),
        None => tokio::task::spawn_blocking(work),
    }
}
