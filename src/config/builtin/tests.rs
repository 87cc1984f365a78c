use std::path::{Path, PathBuf};

use super::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_shipped_file_is_built_in_and_every_built_in_is_shipped() {
    for kind in [FileKind::Topology, FileKind::Workload] {
        let dir = repo().join(kind.dir());
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = kind.builtins().iter().map(|b| b.file.into()).collect();
        assert_eq!(
            embedded,
            on_disk,
            "src/config/builtin.rs must embed exactly the files of {}/, in name order",
            kind.dir()
        );
        for b in kind.builtins() {
            assert_eq!(b.text, std::fs::read_to_string(dir.join(b.file)).unwrap());
        }
    }
}

#[test]
fn every_built_in_parses_and_says_what_it_is() {
    for b in TOPOLOGIES {
        let t = crate::config::parse_topology(b.text, Path::new(b.file)).unwrap();
        assert_eq!(
            t.name,
            b.name(),
            "{}: name differs from the file name",
            b.file
        );
        // `hab list` shows it.
        assert!(!t.description.is_empty(), "{} has no description", b.file);
    }
    for b in WORKLOADS {
        let p = crate::config::parse_workload_plan(b.text, Path::new(b.file)).unwrap();
        assert!(!p.description.is_empty(), "{} has no description", b.file);
    }
}

#[test]
fn a_value_resolves_as_path_then_under_the_kind_directory_then_built_in() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    let t = FileKind::Topology;
    let builtin = |name: &str| Source::Builtin(t.builtin(name).unwrap());
    // Nothing on disk: the built-in, with or without .toml, or by its checkout path.
    for v in [
        "ha",
        "ha.toml",
        "topologies/ha.toml",
        "builtin:ha.toml",
        "builtin:ha",
    ] {
        assert_eq!(
            resolve_in(t, Path::new(v), base).unwrap(),
            builtin("ha"),
            "{v}"
        );
    }
    assert_eq!(builtin("ha").label(), "builtin:ha.toml");
    // topologies/NAME under the current directory comes before the built-in.
    std::fs::create_dir(base.join("topologies")).unwrap();
    std::fs::write(base.join("topologies/ha.toml"), "x").unwrap();
    for v in ["ha", "ha.toml", "topologies/ha.toml"] {
        assert_eq!(
            resolve_in(t, Path::new(v), base).unwrap(),
            Source::File("topologies/ha.toml".into()),
            "{v}"
        );
    }
    // The path as given comes first; `builtin:` always means the built-in.
    std::fs::write(base.join("ha.toml"), "y").unwrap();
    assert_eq!(
        resolve_in(t, Path::new("ha.toml"), base).unwrap(),
        Source::File("ha.toml".into())
    );
    assert_eq!(
        resolve_in(t, Path::new("builtin:ha.toml"), base).unwrap(),
        builtin("ha")
    );
    // Workloads have their own directory and built-ins.
    assert_eq!(
        resolve_in(FileKind::Workload, Path::new("seed"), base).unwrap(),
        Source::Builtin(FileKind::Workload.builtin("seed.toml").unwrap())
    );
    // A directory elsewhere is never a built-in.
    assert!(resolve_in(t, Path::new("/elsewhere/ha.toml"), base).is_err());
    assert_eq!(recorded_file(Path::new("builtin:ha.toml")), "ha.toml");
    assert_eq!(recorded_file(Path::new("my/ha.toml")), "my/ha.toml");
}

#[test]
fn not_found_lists_the_built_ins_and_the_nearest_name() {
    let tmp = tempfile::tempdir().unwrap();
    let e = resolve_in(FileKind::Topology, Path::new("ha-mirorred"), tmp.path()).unwrap_err();
    let msg = e.to_string();
    crate::testing::assert_has(
        &msg,
        &[
            "topology ha-mirorred not found: no such file here or in topologies/, and no built-in topology of that name",
            "did you mean ha-mirrored?",
            "built-in topologies: external-example, ha-celery, ",
            "standalone; `hab list` describes them",
        ],
    );
    let e = resolve_in(FileKind::Workload, Path::new("builtin:sed"), tmp.path()).unwrap_err();
    crate::testing::assert_has(
        &e.to_string(),
        &["did you mean seed?", "built-in workloads: "],
    );
    let e = resolve_in(FileKind::Workload, Path::new("zzzzzzzz"), tmp.path()).unwrap_err();
    assert!(!e.to_string().contains("did you mean"), "{e}");
}
