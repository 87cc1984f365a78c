//! Every error path of the CLI names the thing and the fix once.

use super::hab;

/// Every `error:` message of `stderr` says each part once: no `: `-separated segment
/// (an OS error, a file name with its problem) twice, and `os error` at most once.
fn assert_said_once(stderr: &str) {
    for line in stderr.lines().filter(|l| l.starts_with("error:")) {
        assert!(line.matches("os error").count() <= 1, "{line}");
        let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(
                p.len() < 6 || !parts[i + 1..].contains(p),
                "`{p}` is said twice in: {line}"
            );
        }
    }
}

#[test]
fn every_error_path_names_the_thing_once() {
    let tmp = tempfile::tempdir().unwrap();
    let bad_field = tmp.path().join("bad-field.toml");
    std::fs::write(&bad_field, "name = \"x\"\n[broker]\nnodez = 3\n").unwrap();
    let unreadable = tmp.path().join("a-directory.toml");
    std::fs::create_dir(&unreadable).unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    // (arguments, what the message must name)
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            vec![
                "check".into(),
                "--topology".into(),
                "nope-topology.toml".into(),
            ],
            "nope-topology.toml".into(),
        ),
        (
            vec![
                "check".into(),
                "--workload".into(),
                "nope-workload.toml".into(),
            ],
            "nope-workload.toml".into(),
        ),
        (
            vec!["check".into(), "--topology".into(), s(&unreadable)],
            s(&unreadable),
        ),
        (
            vec!["check".into(), "--topology".into(), s(&bad_field)],
            "bad-field.toml".into(),
        ),
        (
            vec![
                "compare".into(),
                "--topology".into(),
                "nope-ha.toml".into(),
                "--out".into(),
                s(tmp.path()),
            ],
            "nope-ha.toml".into(),
        ),
        (
            vec![
                "run".into(),
                "--topology".into(),
                "topologies/standalone.toml".into(),
                "--workload".into(),
                "nope-seed.toml".into(),
                "--out".into(),
                s(tmp.path()),
            ],
            "nope-seed.toml".into(),
        ),
        (
            vec!["node".into(), "frobnicate".into()],
            "frobnicate".into(),
        ),
        (
            vec!["report".into(), s(&tmp.path().join("no-such-dir"))],
            "no-such-dir".into(),
        ),
        (
            vec![
                "report".into(),
                s(tmp.path()),
                "--png-scale".into(),
                "9".into(),
            ],
            "9 is not in 1..=4".into(),
        ),
    ];
    for (args, names) in cases {
        let out = hab().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&names),
            "{args:?} does not name {names}: {stderr}"
        );
        assert_eq!(
            stderr.matches(&names).count(),
            1,
            "{args:?} names {names} more than once: {stderr}"
        );
        assert_said_once(&stderr);
    }
}
