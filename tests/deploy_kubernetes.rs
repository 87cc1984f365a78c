//! deploy/kubernetes/ holds manifests Kubernetes accepts: every one validates with
//! kubernetes-validate (`--strict`: unknown fields refused) against the API schemas it
//! ships (no cluster needed), the shard Job is an Indexed Job of N pods with N shards, and
//! the ConfigMap's topology is one hab reads. That the Jobs' commands run is
//! tests/live_shard.rs's part: it runs their scripts against a real stack.
//!
//! kubernetes-validate comes from PyPI into scripts/kubernetes/venv
//! (scripts/kubernetes/setup.sh, run by scripts/test.sh). Missing, the test fails with
//! how to install it, unless HAB_ALLOW_SKIP names `kubernetes-validate` (CI never sets it).

mod common;

use std::path::PathBuf;

use common::*;

/// kubernetes-validate: `HAB_KUBERNETES_VALIDATE`, the venv setup.sh makes, or PATH.
fn validator() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("HAB_KUBERNETES_VALIDATE") {
        let p = PathBuf::from(p);
        return match p.is_file() {
            true => Ok(p),
            false => Err(format!(
                "HAB_KUBERNETES_VALIDATE names {}, which is no file",
                p.display()
            )),
        };
    }
    let venv = root().join("scripts/kubernetes/venv/bin/kubernetes-validate");
    if venv.is_file() {
        return Ok(venv);
    }
    let on_path = std::process::Command::new("kubernetes-validate")
        .arg("--version")
        .output();
    match on_path {
        Ok(o) if o.status.success() => Ok(PathBuf::from("kubernetes-validate")),
        _ => Err(format!(
            "kubernetes-validate is not installed ({} missing, none on PATH); run scripts/kubernetes/setup.sh",
            venv.display()
        )),
    }
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(kube::dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_manifest_validates_strictly() {
    let test = "every_manifest_validates_strictly";
    let tool = validator();
    if skip_unless_allowed("kubernetes-validate", test, tool.clone().err()) {
        return;
    }
    let tool = tool.unwrap();
    let files = manifests();
    for want in [
        "configmap.yaml",
        "pvc.yaml",
        "job-shards.yaml",
        "job-merge.yaml",
        "secret-example.yaml",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(want)),
            "{want} missing in {files:?}"
        );
    }
    let version = std::process::Command::new(&tool)
        .arg("--version")
        .output()
        .unwrap();
    eprintln!(
        "kubernetes-validate {}",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let out = std::process::Command::new(&tool)
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "kubernetes-validate --strict failed:\n{text}"
    );
    // Every file held a resource that passed (an empty file validates as nothing).
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(
            text.lines()
                .any(|l| l.contains(&*name) && l.contains("passed")),
            "{name}: no resource passed:\n{text}"
        );
    }
}

#[test]
fn the_shard_job_runs_n_indexed_pods_of_n_shards_from_one_instant() {
    let job = kube::read("job-shards.yaml");
    assert!(job.contains("completionMode: Indexed"), "{job}");
    let n = kube::number(&job, "completions").expect("completions");
    assert_eq!(kube::number(&job, "parallelism"), Some(n));
    let env = kube::env(&job);
    let get = |k: &str| {
        env.iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {env:?}"))
    };
    assert_eq!(get("SHARDS"), n.to_string());
    hab::load::start::StartAt::parse_rfc3339(&get("START_AT")).unwrap();
    let script = kube::literal_block(&job, "- |");
    assert!(
        script.contains("$((JOB_COMPLETION_INDEX + 1))/$SHARDS"),
        "{script}"
    );
    assert!(script.contains("--start-at \"$START_AT\""), "{script}");
    // The merge Job merges the same N shards of the same run.
    let merge = kube::read("job-merge.yaml");
    let menv = kube::env(&merge);
    for k in ["SHARDS", "RUN", "RESULTS"] {
        let v = menv.iter().find(|(name, _)| name == k).map(|(_, v)| v);
        assert_eq!(v, Some(&get(k)), "{k} differs between the Jobs");
    }
    assert!(kube::literal_block(&merge, "- |").contains("hab merge"));
}

#[test]
fn the_configmap_topology_is_one_hab_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let cm = kube::read("configmap.yaml");
    let topology = tmp.path().join("topology.toml");
    std::fs::write(&topology, kube::literal_block(&cm, "topology.toml: |")).unwrap();
    let job = kube::read("job-shards.yaml");
    let workload = kube::env(&job)
        .into_iter()
        .find(|(k, _)| k == "WORKLOAD")
        .unwrap()
        .1;
    let out = hab()
        .args(["check", "--topology"])
        .arg(&topology)
        .args(["--workload", &workload])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hab check of the ConfigMap's topology failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("topology cluster: ok"), "{stdout}");
}
