//! hab as an installed tool: built-in topologies and workloads found from any
//! directory, `hab list`, `hab init`, the external template, completions and the man page.

use assert_cmd::Command;
use predicates::prelude::*;

use super::{common, hab};

/// `hab` started in `dir` (an empty directory: no checkout around).
fn hab_in(dir: &std::path::Path) -> Command {
    let mut c = common::hab();
    c.current_dir(dir);
    Command::from_std(c)
}

#[test]
fn built_in_files_work_from_an_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    hab_in(tmp.path())
        .args(["check", "--topology", "ha", "--workload", "seed"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "topology ha: ok, from builtin:ha.toml",
        ))
        .stdout(predicate::str::contains(
            "workload plan seed: ok (6 workloads), from builtin:seed.toml",
        ));
    // The checkout's spelling works too, and a local topologies/ comes first.
    std::fs::create_dir(tmp.path().join("topologies")).unwrap();
    std::fs::write(
        tmp.path().join("topologies/ha.toml"),
        "name = \"my-ha\"\n[broker]\nnodes = 3\n",
    )
    .unwrap();
    hab_in(tmp.path())
        .args(["check", "--topology", "ha.toml"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "topology my-ha: ok, from topologies/ha.toml",
        ));
    hab_in(tmp.path())
        .args([
            "check",
            "--topology",
            "builtin:ha",
            "--workload",
            "workloads/smoke.toml",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("from builtin:ha.toml"))
        .stdout(predicate::str::contains("from builtin:smoke.toml"));
}

#[test]
fn an_unknown_name_exits_2_with_the_built_ins_and_the_nearest() {
    let tmp = tempfile::tempdir().unwrap();
    hab_in(tmp.path())
        .args(["compare", "--topology", "ha-mirorred"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "topology ha-mirorred not found: no such file here or in topologies/",
        ))
        .stderr(predicate::str::contains("did you mean ha-mirrored?"))
        .stderr(predicate::str::contains(
            "built-in topologies: external-example, ha-celery, ",
        ));
    hab_in(tmp.path())
        .args(["run", "--topology", "ha", "--workload", "sed"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean seed?"));
}

#[test]
fn a_built_in_celery_topology_without_python_for_its_worker_is_refused_before_anything_starts() {
    // Outside a checkout the Celery worker is set up in hab's cache on first use, with
    // python3's venv module; without one the run is refused at once, saying what to install.
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    hab_in(tmp.path())
        .env("XDG_CACHE_HOME", tmp.path().join("cache"))
        .env("PYTHON", "/nonexistent/python3")
        .args(["run", "--topology", "ha-celery", "--out", out.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "topology file builtin:ha-celery.toml: workers.kind: \"celery\" is set up on first use in ",
        ))
        .stderr(predicate::str::contains("/nonexistent/python3 cannot be run"))
        .stderr(predicate::str::contains("apt-get install python3 python3-venv"));
    assert!(!out.exists(), "a refused run wrote {out:?}");
    assert!(
        !tmp.path().join("cache").exists(),
        "a refused run wrote the cache"
    );
    // A given celery_dir without its files is the user's to fix: hab writes nothing there.
    std::fs::create_dir(tmp.path().join("topologies")).unwrap();
    std::fs::write(
        tmp.path().join("topologies/mine.toml"),
        "name = \"mine\"\n[workers]\nkind = \"celery\"\ncelery_dir = \"nowhere\"\n",
    )
    .unwrap();
    hab_in(tmp.path())
        .args(["run", "--topology", "mine", "--out", out.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "workers.kind: \"celery\" needs nowhere/hab_tasks.py and nowhere/venv/bin/python (missing here)",
        ));
    assert!(!tmp.path().join("nowhere").exists());
}

#[test]
fn list_and_init_work_from_an_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    hab_in(tmp.path())
        .arg("list")
        .assert()
        .success()
        .stdout(predicate::str::contains("topologies built into hab"))
        .stdout(predicate::str::contains("  ha-mirrored "))
        .stdout(predicate::str::contains("  seed "));
    // Every file of the checkout's topologies/ and workloads/ is built in and written.
    let files = ["topologies", "workloads"]
        .iter()
        .map(|d| std::fs::read_dir(common::root().join(d)).unwrap().count())
        .sum::<usize>();
    hab_in(tmp.path())
        .args(["init", "mine"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "wrote {files} files to mine/topologies"
        )));
    let ha = tmp.path().join("mine/topologies/ha.toml");
    std::fs::write(&ha, "# mine\n").unwrap();
    hab_in(tmp.path())
        .args(["init", "mine"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "already exists; nothing was written: pass --force",
        ));
    assert_eq!(std::fs::read_to_string(&ha).unwrap(), "# mine\n");
    hab_in(tmp.path())
        .args(["init", "mine", "--force"])
        .assert()
        .success();
    assert_ne!(std::fs::read_to_string(&ha).unwrap(), "# mine\n");
    // The copies are what a bare name finds first there.
    hab_in(&tmp.path().join("mine"))
        .args(["check", "--topology", "ha", "--workload", "seed"])
        .assert()
        .success()
        .stdout(predicate::str::contains("from topologies/ha.toml"))
        .stdout(predicate::str::contains("from workloads/seed.toml"));
}

#[test]
fn the_external_template_is_accepted_by_check_and_dry_run_as_it_stands() {
    hab()
        .args(["check", "--topology", "topologies/external-example.toml"])
        .assert()
        .success();
    // Nothing is contacted: the hosts in the template do not exist.
    let tmp = tempfile::tempdir().unwrap();
    hab_in(tmp.path())
        .args([
            "run",
            "--dry-run",
            "--topology",
            "external-example",
            "--workload",
            "external-smoke",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "apply:  ssh '<host>' 'sudo systemctl kill -s KILL rabbitmq-server",
        ))
        .stdout(predicate::str::contains("health: redis-cli -h '<host>'"));
}

/// The subcommands `hab --help` lists.
fn subcommands() -> Vec<String> {
    let out = hab().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|n| n != "help")
        .collect();
    for n in ["run", "compare", "list", "init", "completions", "man"] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
    names
}

#[test]
fn bash_completion_parses_and_completes_a_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("hab.bash");
    let out = hab().args(["completions", "bash"]).output().unwrap();
    assert!(out.status.success());
    std::fs::write(&script, &out.stdout).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(check.status.success(), "bash -n: {check:?}");
    let complete = |words: &str| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 COMP_LINE=\"{words}\"; COMP_POINT=${{#COMP_LINE}}; \
                 _hab hab \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 echo \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete("hab li").trim(), "list");
    let replies = complete("hab com");
    assert!(
        replies.contains("compare") && replies.contains("completions"),
        "{replies}"
    );
    assert!(complete("hab run --topo").contains("--topology"));
}

#[test]
fn zsh_and_fish_completions_and_the_man_page_name_every_subcommand() {
    let names = subcommands();
    for shell in ["zsh", "fish"] {
        let out = hab().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        for n in &names {
            assert!(script.contains(n.as_str()), "{shell} completion lacks {n}");
        }
    }
    let out = hab().arg("man").output().unwrap();
    assert!(out.status.success());
    let man = String::from_utf8(out.stdout).unwrap();
    assert!(man.contains(".TH hab 1"), "{man}");
    for n in &names {
        assert!(
            man.contains(&format!("hab\\-{n}")),
            "the man page lacks {n}"
        );
    }
    hab()
        .args(["completions", "tcsh"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("[possible values: bash"));
}

#[test]
fn output_into_a_closed_pipe_is_no_error() {
    for args in [&["completions", "bash"][..], &["man"], &["list"]] {
        let mut child = common::hab()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before hab writes (as `hab man | head -1` does).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn sweep_plans_from_an_empty_directory_with_the_built_in_default() {
    let tmp = tempfile::tempdir().unwrap();
    hab_in(tmp.path())
        .args(["sweep", "--topology", "ha", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("sweep     sweeps/default.toml"))
        .stdout(predicate::str::contains("workload  sweep"));
}

#[test]
fn help_says_where_results_and_scratch_files_go() {
    hab()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "results/ under the current directory",
        ))
        .stdout(predicate::str::contains("scratch/"))
        .stdout(predicate::str::contains("$TMPDIR"));
}

/// `cargo install --locked --path <checkout>` into a temporary root, then the installed
/// hab from an empty directory. `--debug` and the build's own target directory let the
/// install reuse what `cargo test` just compiled (a release install is the same source in
/// another profile, and would cost a second full build here).
#[test]
fn cargo_install_gives_a_hab_that_works_from_an_empty_directory() {
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory");
    let root = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO"))
        .args(["install", "--locked", "--offline", "--debug", "--path"])
        .arg(env!("CARGO_MANIFEST_DIR"))
        .arg("--root")
        .arg(root.path())
        .arg("--target-dir")
        .arg(target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = root.path().join("bin/hab");
    assert!(bin.is_file(), "no {}", bin.display());
    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(&bin)
            .current_dir(empty.path())
            .args(args)
            .assert()
            .success()
    };
    run(&["check", "--topology", "ha.toml", "--workload", "seed"])
        .stdout(predicate::str::contains("from builtin:ha.toml"));
    run(&["list"]).stdout(predicate::str::contains("standalone"));
    run(&["--help"]).stdout(predicate::str::contains("Where hab writes"));
    // Nothing was written into the empty directory by checking and listing.
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
}

#[test]
fn doctor_names_what_is_missing_and_the_apt_get_line_that_brings_it() {
    // This machine has everything (scripts/test.sh installed it): doctor passes.
    hab()
        .arg("doctor")
        .assert()
        .success()
        .stdout(predicate::str::contains("ok       redis-server"))
        .stdout(predicate::str::contains("ok       haproxy"));
    // With nothing on PATH, the servers found through PATH are missing: exit 1, and one
    // apt-get line names their Debian packages.
    let empty = tempfile::tempdir().unwrap();
    hab_in(empty.path())
        .env("PATH", empty.path())
        .env_remove("PYTHON")
        .arg("doctor")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("MISSING  redis-server"))
        .stdout(predicate::str::contains("MISSING  haproxy"))
        .stdout(predicate::str::contains(
            "sudo apt-get install -y --no-install-recommends redis-server redis-sentinel haproxy iproute2 python3-venv",
        ))
        .stdout(predicate::str::contains("until the servers marked MISSING are installed"));
}
