//! The real Celery worker outside a checkout: on first use, `hab run` and `hab compare`
//! write the built-in `hab_tasks.py` and `requirements.txt` into hab's cache directory
//! ([`crate::config::celery`]) and make its virtualenv there (`python3 -m venv`, then
//! `pip install -r requirements.txt`), before anything starts. Two hab processes setting
//! up the same directory take turns (an exclusive lock on `<dir>.lock`); a failed set-up
//! leaves no half-made virtualenv and says what pip said.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::config::celery::{self, Place};
use crate::config::topology::Topology;

/// Make sure `topology`'s Celery worker files are ready; returns their directory (`None`
/// for hab's own workers). Sets up hab's cache on first use; never writes anywhere else.
pub fn prepare(
    topology: &Topology,
    reporter: &dyn crate::progress::Reporter,
) -> Result<Option<std::path::PathBuf>> {
    let Some(place) = celery::locate(topology) else {
        return Ok(None);
    };
    if place.ready() {
        return Ok(Some(place.dir().to_path_buf()));
    }
    let Place::Cache(dir) = &place else {
        bail!(
            "the Celery worker needs {}: run scripts/celery/setup.sh (or leave workers.celery_dir unset)",
            place.missing_text()
        );
    };
    set_up(dir, reporter)?;
    Ok(Some(dir.clone()))
}

/// Write the built-in files into `dir` and make its virtualenv, under a lock.
fn set_up(dir: &Path, reporter: &dyn crate::progress::Reporter) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let lock_path = dir.with_extension("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .with_context(|| format!("cannot lock {}", lock_path.display()))?;
    let place = Place::Cache(dir.to_path_buf());
    // Another hab may have finished while this one waited.
    if place.ready() {
        return Ok(());
    }
    reporter.line(&format!(
        "hab: setting up the Celery worker in {} (first use: python3 -m venv, pip install {})",
        dir.display(),
        celery::REQUIREMENTS.trim()
    ));
    for (name, text) in [
        ("hab_tasks.py", celery::TASKS_PY),
        ("requirements.txt", celery::REQUIREMENTS),
    ] {
        crate::export::write_atomic(&dir.join(name), text.as_bytes())?;
    }
    let venv = dir.join("venv");
    let _ = std::fs::remove_dir_all(&venv);
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let steps: [(&str, Command); 2] = [
        ("python3 -m venv", {
            let mut c = Command::new(&py);
            c.args(["-m", "venv"]).arg(&venv);
            c
        }),
        ("pip install", {
            let mut c = Command::new(venv.join("bin/python"));
            c.args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(dir.join("requirements.txt"));
            c
        }),
    ];
    for (what, mut cmd) in steps {
        let out = cmd
            .output()
            .with_context(|| format!("cannot run {what} for the Celery worker ({py})"))?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&venv);
            let text = String::from_utf8_lossy(&out.stderr);
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            bail!(
                "setting up the Celery worker in {} failed at {what} ({}):\n{}",
                dir.display(),
                out.status,
                tail.join("\n")
            );
        }
    }
    if !place.ready() {
        bail!(
            "setting up the Celery worker in {}: {} is still missing",
            dir.display(),
            place.python().display()
        );
    }
    reporter.line(&format!(
        "hab: the Celery worker is ready in {}",
        dir.display()
    ));
    Ok(())
}
