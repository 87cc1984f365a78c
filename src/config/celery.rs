//! Where a real Celery worker's files are: hab's four tasks as a Celery app
//! (`hab_tasks.py`, built into the binary) and a Python virtualenv with Celery.
//!
//! In order: `workers.celery_dir` when the topology sets it; `scripts/celery/` in the
//! current directory when it is set up (a checkout after `scripts/celery/setup.sh`); else a
//! directory of hab's own cache (`$XDG_CACHE_HOME/hab/`, default `~/.cache/hab/`), named by
//! a hash of the built-in files, which `hab run` and `hab compare` create on first use
//! (`cmd::celery_env`). Finding the place writes nothing.

use std::path::{Path, PathBuf};

use super::topology::{Topology, WorkerKind};

/// hab's tasks as a Celery app, as `scripts/celery/hab_tasks.py` has them.
pub const TASKS_PY: &str = include_str!("../../scripts/celery/hab_tasks.py");
/// The pinned Celery the virtualenv gets, as `scripts/celery/requirements.txt` has it.
pub const REQUIREMENTS: &str = include_str!("../../scripts/celery/requirements.txt");
/// The checkout's directory, relative to the current directory.
pub const CHECKOUT_DIR: &str = "scripts/celery";

/// Where a Celery topology's worker files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// `workers.celery_dir`: the user's; hab never writes there.
    Given(PathBuf),
    /// `scripts/celery/` of a checkout, set up.
    Checkout(PathBuf),
    /// hab's cache, created on first use from the built-in files.
    Cache(PathBuf),
}

impl Place {
    /// The directory.
    pub fn dir(&self) -> &Path {
        match self {
            Place::Given(d) | Place::Checkout(d) | Place::Cache(d) => d,
        }
    }

    /// The virtualenv's Python.
    pub fn python(&self) -> PathBuf {
        self.dir().join("venv/bin/python")
    }

    /// Whether the tasks and the virtualenv are there.
    pub fn ready(&self) -> bool {
        self.dir().join("hab_tasks.py").is_file() && self.python().is_file()
    }

    /// The files that are missing.
    pub fn missing(&self) -> Vec<PathBuf> {
        [self.dir().join("hab_tasks.py"), self.python()]
            .into_iter()
            .filter(|p| !p.is_file())
            .collect()
    }

    /// The missing files for an error message: `a and b`.
    pub fn missing_text(&self) -> String {
        let missing: Vec<String> = self
            .missing()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        missing.join(" and ")
    }
}

/// The Celery worker's place for `topology`; `None` when its workers are hab's own.
pub fn locate(topology: &Topology) -> Option<Place> {
    if topology.workers.kind != WorkerKind::Celery {
        return None;
    }
    if let Some(d) = &topology.workers.celery_dir {
        return Some(Place::Given(d.clone()));
    }
    let checkout = Place::Checkout(PathBuf::from(CHECKOUT_DIR));
    if checkout.ready() {
        return Some(checkout);
    }
    Some(Place::Cache(cache_root().join(format!(
        "celery-{:016x}",
        fnv1a(&[TASKS_PY, REQUIREMENTS])
    ))))
}

/// hab's cache directory: `$XDG_CACHE_HOME/hab` (an absolute path), else `~/.cache/hab`,
/// else `hab-cache` in the temporary directory.
pub fn cache_root() -> PathBuf {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let home = || {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|h| h.join(".cache"))
    };
    match xdg.or_else(home) {
        Some(d) => d.join("hab"),
        None => std::env::temp_dir().join("hab-cache"),
    }
}

/// FNV-1a over the parts: a stable name for a version of the built-in files.
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(kind: &str) -> Topology {
        toml::from_str(&format!("name = \"t\"\n[workers]\nkind = \"{kind}\"\n")).unwrap()
    }

    fn celery(dir: Option<&str>) -> Topology {
        let mut t = topology("celery");
        t.workers.celery_dir = dir.map(PathBuf::from);
        t
    }

    #[test]
    fn hab_workers_need_no_place_and_a_given_directory_is_the_users() {
        assert_eq!(locate(&topology("hab")), None);
        let p = locate(&celery(Some("/opt/celery"))).unwrap();
        assert_eq!(p, Place::Given("/opt/celery".into()));
        assert!(!p.ready());
        assert_eq!(
            p.missing(),
            [
                PathBuf::from("/opt/celery/hab_tasks.py"),
                PathBuf::from("/opt/celery/venv/bin/python")
            ]
        );
    }

    #[test]
    fn the_built_in_files_are_the_checkouts_and_name_their_cache_directory() {
        assert!(TASKS_PY.contains("def factorial"), "hab_tasks.py built in");
        assert!(REQUIREMENTS.contains("celery"));
        let a = fnv1a(&["a", "bc"]);
        assert_ne!(a, fnv1a(&["ab", "c"]), "parts are separated");
        assert_eq!(a, fnv1a(&["a", "bc"]));
        // Outside a checkout (the unit tests run in the crate's root, which has
        // scripts/celery/; only its venv decides), the place is either.
        match locate(&celery(None)).unwrap() {
            Place::Checkout(d) => assert_eq!(d, PathBuf::from(CHECKOUT_DIR)),
            Place::Cache(d) => {
                assert!(d.starts_with(cache_root()), "{d:?}");
                assert!(
                    d.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("celery-")
                );
            }
            p => panic!("{p:?}"),
        }
    }
}
