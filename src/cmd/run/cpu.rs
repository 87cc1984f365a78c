//! Who was busy during the run: a CPU sampler ([`crate::observe::cpu`]) over the stack's
//! servers, hab's own process (the producer, the result watcher, the observers) and the
//! worker processes, started once the stack is up and stopped before teardown; each
//! workload's share ([`crate::metrics::cpu::WorkloadCpu`]) comes from the samples taken
//! between its start and the end of its drain.
//!
//! On an external stack only this host's processes (hab and its workers) are sampled: the
//! servers run elsewhere. A Celery worker is sampled as its main process (`celery wN`);
//! its prefork children are not followed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::clock::now_unix_us;
use crate::metrics::cpu::WorkloadCpu;
use crate::observe::cpu::{CpuSample, CpuSampler, ticks_per_s};

use super::lifecycle::SharedStack;

/// How often the sampler reads `/proc`.
pub(super) const INTERVAL: Duration = Duration::from_millis(100);
/// The role of hab's own process.
pub(super) const PRODUCER_ROLE: &str = "hab.producer";

/// The run's CPU sampling: the sampler while it runs, its samples once stopped, and the
/// span of each workload.
#[derive(Default)]
pub(super) struct CpuWatch {
    sampler: Mutex<Option<CpuSampler>>,
    stopped: Mutex<Vec<CpuSample>>,
    /// Each workload's first start and latest end (after its drain), unix µs.
    spans: Mutex<BTreeMap<usize, (i64, i64)>>,
    /// The worker processes now, by role.
    workers: Arc<Mutex<Vec<(String, i32)>>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CpuWatch {
    /// Starts sampling hab's process, the workers and the servers of `stack` (read afresh
    /// at every sample, or as last read while a fault holds the stack). A sampler that
    /// cannot start is a warning: the run goes on without CPU figures.
    pub(super) fn start(&self, stack: SharedStack) -> std::io::Result<()> {
        let own = std::process::id() as i32;
        let workers = self.workers.clone();
        let servers = Mutex::new(Vec::new());
        let watch = move || {
            let mut list = vec![(PRODUCER_ROLE.to_string(), own)];
            let mut known = locked(&servers);
            if let Ok(s) = stack.try_lock() {
                *known = s.server_pids();
            }
            list.extend(known.iter().cloned());
            list.extend(locked(&workers).iter().cloned());
            list
        };
        let sampler = CpuSampler::start(INTERVAL, Box::new(watch))?;
        *locked(&self.sampler) = Some(sampler);
        Ok(())
    }

    /// Stops the sampler (a last sample is taken) and keeps its samples.
    pub(super) fn stop(&self) {
        if let Some(s) = locked(&self.sampler).take() {
            *locked(&self.stopped) = s.stop();
        }
    }

    /// The worker processes to sample from now on.
    pub(super) fn set_workers(&self, roles: Vec<(String, i32)>) {
        *locked(&self.workers) = roles;
    }

    /// Workload `i` starts (a repetition after the first keeps the first start).
    pub(super) fn workload_started(&self, i: usize) {
        let now = now_unix_us();
        locked(&self.spans).entry(i).or_insert((now, now));
    }

    /// Workload `i` (or one of its repetitions) is drained.
    pub(super) fn workload_ended(&self, i: usize) {
        let now = now_unix_us();
        locked(&self.spans).entry(i).or_insert((now, now)).1 = now;
    }

    /// Every sample so far.
    pub(super) fn samples(&self) -> Vec<CpuSample> {
        match locked(&self.sampler).as_ref() {
            Some(s) => s.samples(),
            None => locked(&self.stopped).clone(),
        }
    }

    /// Who was busy during workload `i` (`None`: not started, or too short to sample).
    pub(super) fn workload(&self, i: usize, samples: &[CpuSample]) -> Option<WorkloadCpu> {
        let (from, to) = *locked(&self.spans).get(&i)?;
        // A workload still running is measured up to now.
        let to = if to > from { to } else { now_unix_us() };
        WorkloadCpu::of(samples, from, to, ticks_per_s())
    }
}
