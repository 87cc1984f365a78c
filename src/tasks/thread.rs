//! The name of a thread while it runs a task's own work, so CPU samplers
//! ([`crate::observe::cpu`]) tell the work being measured from hab's overhead.

/// The name a thread of hab's takes while it runs a task's own work (factorial,
/// write_zeros): that CPU time is the work being measured, not hab's overhead.
pub const TASK_THREAD: &str = "hab-task";

/// Names the calling thread `name` (Linux `comm`, at most 15 bytes) until the guard is
/// dropped, when its previous name comes back: a blocking-pool thread running a task
/// calls it with [`TASK_THREAD`].
pub struct ThreadName {
    previous: Option<std::ffi::CString>,
}

impl ThreadName {
    /// Renames the calling thread; a failure leaves the name as it was (the CPU of the
    /// task is then counted as hab's overhead, never lost).
    pub fn set(name: &str) -> ThreadName {
        let previous = nix::sys::prctl::get_name().ok();
        if let Ok(c) = std::ffi::CString::new(name) {
            let _ = nix::sys::prctl::set_name(&c);
        }
        ThreadName { previous }
    }
}

impl Drop for ThreadName {
    fn drop(&mut self) {
        if let Some(p) = &self.previous {
            let _ = nix::sys::prctl::set_name(p);
        }
    }
}
