//! Unit tests of the managed process, readiness polling, `/proc` parsing and log tails.

use super::procfs::parse_stat;
use super::*;
use crate::testing::assert_has;

#[tokio::test]
async fn a_probe_cut_by_the_deadline_keeps_the_last_reason() {
    // First probe fails at once with a reason; the second outlasts the deadline.
    let mut calls = 0;
    let err = poll_until(
        Duration::from_millis(300),
        Duration::from_millis(10),
        || {
            calls += 1;
            let first = calls == 1;
            async move {
                if first {
                    Err::<(), _>("the Sentinels still name node 0".to_string())
                } else {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Err("never".to_string())
                }
            }
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.1,
        "the Sentinels still name node 0 (the next probe did not finish before the deadline)"
    );
    // No probe finished at all: say so.
    let err = poll_until(
        Duration::from_millis(100),
        Duration::from_millis(10),
        || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<(), String>(())
        },
    )
    .await
    .unwrap_err();
    assert_eq!(err.1, "probe did not finish before the deadline");
}

#[test]
fn tail_lines_keeps_the_last_n() {
    assert_eq!(tail_lines("a\nb\nc\n", 2), "b\nc\n");
    assert_eq!(tail_lines("a\nb\nc", 2), "b\nc\n");
    assert_eq!(tail_lines("a\n", 5), "a\n");
    assert_eq!(tail_lines("", 3), "");
    assert_eq!(tail_lines("a\nb\n", 0), "");
}

#[test]
fn read_tail_of_a_large_file_drops_the_partial_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.log");
    let mut text = String::new();
    for i in 0..20_000 {
        text.push_str(&format!("line {i}\n"));
    }
    std::fs::write(&path, &text).unwrap();
    assert_eq!(read_tail(&path, 2), "line 19998\nline 19999\n");
    let all = read_tail(&path, usize::MAX);
    assert!(all.lines().all(|l| l.starts_with("line ")));
}

#[test]
fn stat_lines_parse_even_with_odd_command_names() {
    let line = "4242 (a b) c)) Z 1 4200 4100 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 \
                987654 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
    let s = parse_stat(4242, line).unwrap();
    assert_eq!(
        s.id,
        ProcId {
            pid: 4242,
            start_time: 987654
        }
    );
    assert_eq!((s.ppid, s.pgrp, s.session, s.zombie), (1, 4200, 4100, true));
    let me = read_stat(std::process::id() as i32).unwrap();
    assert!(!me.zombie);
    assert!(me.id.is_present());
    assert!(matches!(
        proc_state(Pid::from_raw(me.id.pid)),
        Some('R' | 'S')
    ));
    assert_eq!(proc_state(Pid::from_raw(i32::MAX)), None);
    assert!(
        !ProcId {
            start_time: me.id.start_time + 1,
            ..me.id
        }
        .is_present()
    );
}

#[test]
fn read_tail_of_a_missing_file_says_so() {
    let tail = read_tail(Path::new("/nonexistent/hab.log"), 5);
    assert_has(&tail, &["could not read /nonexistent/hab.log"]);
}

#[test]
fn find_program_looks_on_path_and_at_paths() {
    assert!(find_program(OsStr::new("sh")).is_some());
    assert!(find_program(OsStr::new("/bin/sh")).is_some());
    assert!(find_program(OsStr::new("hab-no-such-program")).is_none());
    assert!(find_program(OsStr::new("/nonexistent/sh")).is_none());
}

#[tokio::test]
async fn missing_program_names_the_install_script() {
    let dir = tempfile::tempdir().unwrap();
    let err = ManagedProcess::spawn(
        "ghost",
        Command::new("hab-no-such-server"),
        "redis-server",
        &dir.path().join("ghost.log"),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StackError::MissingBinary { .. }), "{msg}");
    assert!(msg.contains("scripts/install-servers.sh"), "{msg}");
    assert!(msg.contains("redis-server"), "{msg}");
}

/// Waits up to `deadline` for `p` to pass a probe that always fails saying `why`: the
/// error and its text.
async fn never_ready(
    p: &mut ManagedProcess,
    deadline: Duration,
    why: &'static str,
) -> (StackError, String) {
    let err = wait_ready(p, deadline, Duration::from_millis(25), || async {
        Err::<(), _>(why)
    })
    .await
    .unwrap_err();
    let msg = err.to_string();
    (err, msg)
}

#[tokio::test]
async fn stop_drop_and_readiness_on_a_shell_group() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("sh.log");
    // A leader with a background child in the same group, like RabbitMQ's wrapper.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo hello; sleep 30 & wait"]);
    let mut p = ManagedProcess::spawn("sleeper", cmd, "dash", &log).unwrap();
    let pgid = p.pid().as_raw();
    assert!(live_process_groups().contains(&pgid));
    assert!(p.is_running());

    let (err, msg) = never_ready(&mut p, Duration::from_millis(200), "not yet").await;
    assert!(matches!(err, StackError::NotReady { .. }), "{msg}");
    assert!(msg.contains("hello"), "log tail missing: {msg}");
    assert!(msg.contains("not yet"), "{msg}");

    let started = Instant::now();
    p.stop(Duration::from_secs(5)).await;
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH));
    assert!(!live_process_groups().contains(&pgid));
    assert!(!p.is_running());

    // Drop of a running group: everything gone when drop returns.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "trap '' TERM; sleep 30 & wait"]);
    let p = ManagedProcess::spawn("stubborn", cmd, "dash", &log).unwrap();
    let pgid = p.pid().as_raw();
    drop(p);
    assert_eq!(killpg(Pid::from_raw(pgid), None), Err(Errno::ESRCH));
    assert!(!live_process_groups().contains(&pgid));
}

/// Pids of live processes whose command line is exactly `cmdline` (NUL-separated).
fn pids_with_cmdline(cmdline: &str) -> Vec<i32> {
    scan_proc()
        .into_iter()
        .filter(|p| !p.zombie)
        .filter(|p| {
            std::fs::read(format!("/proc/{}/cmdline", p.id.pid))
                .is_ok_and(|c| c == cmdline.as_bytes())
        })
        .map(|p| p.id.pid)
        .collect()
}

#[tokio::test]
async fn helpers_that_leave_the_group_are_torn_down_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("escape.log");
    for (graceful, secs) in [(true, "31.25"), (false, "31.5")] {
        // `setsid` puts the helper in a session (and group) of its own, as Erlang's
        // erl_child_setup does; it ignores SIGTERM on top.
        let script = format!("setsid sh -c 'trap \"\" TERM; exec sleep {secs}' & wait");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]);
        let mut p = ManagedProcess::spawn("escaper", cmd, "dash", &log).unwrap();
        let needle = format!("sleep\0{secs}\0");
        let deadline = Instant::now() + Duration::from_secs(5);
        let helper = loop {
            if let Some(&pid) = pids_with_cmdline(&needle).first() {
                break pid;
            }
            assert!(Instant::now() < deadline, "helper never started");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_ne!(
            read_stat(helper).unwrap().pgrp,
            p.pid().as_raw(),
            "helper should have left the group"
        );
        if graceful {
            p.stop(Duration::from_millis(300)).await;
        } else {
            drop(p);
        }
        assert_eq!(
            kill(Pid::from_raw(helper), None),
            Err(Errno::ESRCH),
            "graceful={graceful}"
        );
    }
}

#[tokio::test]
async fn early_exit_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("fail.log");
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo 'bad directive on line 3' >&2; exit 3"]);
    let mut p = ManagedProcess::spawn("failing", cmd, "dash", &log).unwrap();
    let (err, msg) = never_ready(&mut p, Duration::from_secs(10), "refused").await;
    assert!(matches!(err, StackError::Exited { .. }), "{msg}");
    assert!(msg.contains("exit code 3"), "{msg}");
    assert!(msg.contains("bad directive on line 3"), "{msg}");
}

#[test]
fn own_executable_is_the_running_image_even_once_its_file_is_replaced() {
    // While the file is there: the path it was started from (children named after it).
    assert_eq!(
        super::own_executable().unwrap(),
        std::env::current_exe().unwrap()
    );
    // Once it is gone: a copy of this test binary runs the ignored test below, its file
    // is deleted while it waits, and what it then starts from own_executable must still
    // be itself.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy");
    let out = dir.path().join("out");
    std::fs::copy(std::env::current_exe().unwrap(), &copy).unwrap();
    let mut child = Command::new(&copy)
        .args([
            "--test-threads",
            "1",
            "--exact",
            "--ignored",
            "stack::process::tests::starts_itself_once_its_file_is_deleted",
        ])
        .env("HAB_TEST_OWN_EXE_FILE", &copy)
        .env("HAB_TEST_OWN_EXE_OUT", &out)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    std::fs::remove_file(&copy).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the copy never ended");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "the copy's test failed");
    let report = std::fs::read_to_string(&out).unwrap();
    assert_eq!(report, "/proc/self/exe\nlisted itself\n");
}

/// Run only by the test above (`--ignored`, in a copy of this binary that the test
/// deletes): waits for its file to go, then starts its own executable.
#[test]
#[ignore = "started by own_executable_is_the_running_image_even_once_its_file_is_replaced"]
fn starts_itself_once_its_file_is_deleted() {
    let file = std::env::var_os("HAB_TEST_OWN_EXE_FILE").expect("run by the test above");
    let out = std::env::var_os("HAB_TEST_OWN_EXE_OUT").expect("run by the test above");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&file).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the file was never deleted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let own = super::own_executable().unwrap();
    let listed = Command::new(&own)
        .args([
            "--list",
            "--exact",
            "stack::process::tests::starts_itself_once_its_file_is_deleted",
        ])
        .output()
        .unwrap();
    let listed = listed.status.success()
        && String::from_utf8_lossy(&listed.stdout)
            .contains("starts_itself_once_its_file_is_deleted");
    let report = format!(
        "{}\n{}\n",
        own.display(),
        if listed {
            "listed itself"
        } else {
            "did not start"
        }
    );
    std::fs::write(out, report).unwrap();
}
