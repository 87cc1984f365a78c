use super::*;

#[test]
fn stat_lines_are_read_whatever_the_name_holds() {
    // Fields 14 and 15 (utime, stime) are 11 and 12 after the name.
    let line = "4242 (beam.smp) S 1 4242 4242 0 -1 4194560 3000 0 0 0 1500 250 0 0 20 0 30 0 1 0 0";
    assert_eq!(
        parse_stat(line),
        Some(ProcTimes {
            comm: "beam.smp".into(),
            ticks: 1750
        })
    );
    // A name with spaces and a closing parenthesis of its own.
    let odd = "7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0";
    assert_eq!(
        parse_stat(odd),
        Some(ProcTimes {
            comm: "a b) c)".into(),
            ticks: 10
        })
    );
    assert_eq!(parse_stat("7 (short) R 1 2"), None);
    assert_eq!(parse_stat("no name here"), None);
}

#[test]
fn the_machine_line_splits_busy_idle_and_steal() {
    let text = "cpu  100 5 50 1000 20 3 2 7 0 0\ncpu0 50 2 25 500 10 1 1 3 0 0\nintr 1\n";
    assert_eq!(
        parse_machine(text),
        Some(MachineTicks {
            busy: 100 + 5 + 50 + 3 + 2,
            idle: 1000 + 20,
            steal: 7
        })
    );
    assert_eq!(parse_machine("cpu0 1 2 3 4\n"), None);
    assert_eq!(parse_machine("cpu  1 x 3 4\n"), None);
}

#[test]
fn this_process_and_the_machine_can_be_read() {
    let pid = std::process::id() as i32;
    let me = process_times(pid).unwrap();
    assert!(!me.comm.is_empty());
    let threads = thread_times(pid);
    assert!(
        threads.contains_key(&pid),
        "the main thread's tid is the pid"
    );
    let m = machine_ticks().unwrap();
    assert!(m.busy + m.idle > 0);
    assert!(ticks_per_s() >= 1);
    assert!(process_times(i32::MAX).is_err());
}

/// Renames the calling thread.
fn rename(name: &str) {
    nix::sys::prctl::set_name(&std::ffi::CString::new(name).unwrap()).unwrap();
}

#[test]
fn a_task_threads_cpu_counts_as_task_work_and_its_name_comes_back() {
    let pid = std::process::id() as i32;
    let watch = [("me".to_string(), pid)];
    let mut sampling = Sampling::default();
    let baseline = sampling.sample(&watch);
    let (busy_tx, busy_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::Builder::new()
        .name("cpu-test".into())
        .spawn(move || {
            {
                rename(TASK_THREAD);
                // Burn CPU until the kernel has counted some under the task name.
                let mut x = 0u64;
                let start = std::time::Instant::now();
                while start.elapsed() < Duration::from_secs(10)
                    && !thread_times(pid)
                        .values()
                        .any(|t| t.comm == TASK_THREAD && t.ticks > 0)
                {
                    for _ in 0..100_000 {
                        x = x.wrapping_mul(31).wrapping_add(1);
                    }
                }
                std::hint::black_box(x);
                busy_tx.send(()).unwrap();
                // Keep the name while the test samples.
                done_rx.recv().unwrap();
            }
            rename("cpu-test");
            // The task is over, but the interval it ended in is still the task's: burn
            // until the kernel counts more, under the old name.
            let me = nix::unistd::gettid().as_raw();
            let before = thread_times(pid)[&me].ticks;
            let mut x = 0u64;
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(10)
                && thread_times(pid)[&me].ticks == before
            {
                for _ in 0..100_000 {
                    x = x.wrapping_mul(31).wrapping_add(1);
                }
            }
            std::hint::black_box(x);
            busy_tx.send(()).unwrap();
            done_rx.recv().unwrap();
            nix::sys::prctl::get_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .unwrap();
    busy_rx.recv().unwrap();
    let during = sampling.sample(&watch);
    done_tx.send(()).unwrap();
    busy_rx.recv().unwrap();
    let ended = sampling.sample(&watch);
    // A third sample: the thread's name was not the task's at either end of this interval.
    let after = sampling.sample(&watch);
    done_tx.send(()).unwrap();
    let restored = worker.join().unwrap();
    assert!(
        ended.roles["me"].task_ticks > during.roles["me"].task_ticks,
        "the end of a task within an interval was counted as overhead"
    );
    assert_eq!(after.roles["me"].task_ticks, ended.roles["me"].task_ticks);
    assert_eq!(baseline.roles["me"].task_ticks, 0);
    let task = during.roles["me"].task_ticks;
    assert!(
        task > 0,
        "the task thread's CPU was not counted as task work"
    );
    assert!(task <= during.roles["me"].ticks - baseline.roles["me"].ticks + 1);
    assert_eq!(restored, "cpu-test");
}

#[test]
fn the_sampler_follows_a_busy_child_and_leaves_out_a_process_that_is_gone() {
    // A real busy process and a sleeping one, watched by role.
    let mut busy = std::process::Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap();
    let mut idle = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let (b, i) = (busy.id() as i32, idle.id() as i32);
    let sampler = CpuSampler::start(
        Duration::from_millis(20),
        Box::new(move || {
            vec![
                ("busy".to_string(), b),
                ("idle".to_string(), i),
                ("gone".to_string(), i32::MAX),
            ]
        }),
    )
    .unwrap();
    // Enough wall time for the busy loop to collect ticks even on a loaded machine.
    std::thread::sleep(Duration::from_millis(600));
    let samples = sampler.stop();
    let _ = busy.kill();
    let _ = idle.kill();
    let _ = busy.wait();
    let _ = idle.wait();
    assert!(samples.len() >= 3, "{} samples", samples.len());
    assert!(
        samples
            .windows(2)
            .all(|w| w[0].at_unix_us <= w[1].at_unix_us)
    );
    let (first, last) = (&samples[0], samples.last().unwrap());
    assert!(last.roles.values().all(|r| r.pid != i32::MAX));
    assert_eq!(last.roles["busy"].pid, b);
    let grew = |role: &str| last.roles[role].ticks - first.roles[role].ticks;
    assert!(grew("busy") > 0, "the busy loop collected no CPU time");
    assert!(
        grew("busy") > grew("idle"),
        "busy {} ticks, idle {} ticks",
        grew("busy"),
        grew("idle")
    );
    assert!(last.machine.busy > first.machine.busy);
}
