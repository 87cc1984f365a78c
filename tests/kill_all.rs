//! `kill_all_now` (the second Ctrl-C) kills every live server group. In a test binary of
//! its own, since it kills every group of the process.

use std::process::Command;
use std::time::{Duration, Instant};

use hab::stack::process::{ManagedProcess, live_process_groups};
use nix::errno::Errno;
use nix::sys::signal::killpg;

#[test]
fn kill_all_now_kills_every_live_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut procs: Vec<ManagedProcess> = (0..2)
        .map(|i| {
            let mut cmd = Command::new("sh");
            // Ignores SIGTERM: only SIGKILL ends it.
            cmd.args(["-c", "trap '' TERM; sleep 30 & wait"]);
            ManagedProcess::spawn(
                &format!("sleeper {i}"),
                cmd,
                "dash",
                &dir.path().join("s.log"),
            )
            .unwrap()
        })
        .collect();
    let groups: Vec<i32> = procs.iter().map(|p| p.pid().as_raw()).collect();
    assert_eq!(live_process_groups(), groups);

    hab::stack::kill_all_now();

    let deadline = Instant::now() + Duration::from_secs(5);
    while procs.iter_mut().any(|p| p.is_running()) {
        assert!(
            Instant::now() < deadline,
            "kill_all_now left a leader running"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(procs); // reaps what is left and unregisters
    for g in groups {
        assert_eq!(
            killpg(nix::unistd::Pid::from_raw(g), None),
            Err(Errno::ESRCH)
        );
    }
    assert!(live_process_groups().is_empty());
}
