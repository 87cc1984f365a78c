//! `hab.write_zeros(path, nbytes)`: a disk-bound task that writes `nbytes` zero bytes,
//! forces them to disk, and deletes the file.
//!
//! The worker's entry point is [`write_zeros_in`]: the file is created new inside the
//! worker's scratch directory ([`super::scratch`]) and only that file is deleted.
//! [`write_zeros`] and [`write_zeros_timed`] take a path hab chose itself (calibration,
//! benches) and never overwrite an existing file either.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::TaskFailure;
use super::scratch::Scratch;

/// Registered task name.
pub const NAME: &str = "hab.write_zeros";

/// Size of each `write`, in bytes (1 MiB).
pub const CHUNK_BYTES: usize = 1 << 20;

/// The one zeroed buffer every write comes from (in `.bss`: costs no memory until read).
static ZEROS: [u8; CHUNK_BYTES] = [0; CHUNK_BYTES];

/// The task as the worker runs it: `requested` resolved inside `scratch` (refused with the
/// rule it breaks otherwise), `nbytes` within the scratch file system's free space, the
/// file created new, written, `fdatasync`ed and deleted on every path. Blocking.
pub fn write_zeros_in(
    scratch: &Scratch,
    requested: &Path,
    nbytes: u64,
) -> Result<u64, TaskFailure> {
    scratch.components(requested).map_err(|r| r.to_failure())?;
    let _claim = scratch.reserve(nbytes).map_err(|r| r.to_failure())?;
    let created = scratch.create_new(requested).map_err(|e| match e {
        Err(refusal) => refusal.to_failure(),
        Ok(io) => TaskFailure::from_io(&io, requested),
    })?;
    let filled = fill(&created.file, nbytes, |_| Ok(()));
    let removed = created.remove();
    let written = filled.map_err(|e| TaskFailure::from_io(&e, requested))?;
    removed.map_err(|e| TaskFailure::from_io(&e, requested))?;
    Ok(written)
}

/// Creates `path` (which must not exist), writes `nbytes` zero bytes in 1 MiB chunks,
/// `fdatasync`s, and deletes the file. Returns the bytes written.
///
/// Blocking: call it from `spawn_blocking`. The file is deleted on every path, failures
/// included, so a run never leaves gigabytes behind. An existing file at `path` is an
/// error (`AlreadyExists`) and is left untouched.
pub fn write_zeros(path: &Path, nbytes: u64) -> io::Result<u64> {
    write_zeros_with(path, nbytes, |_| Ok(())).map(|(written, _)| written)
}

/// [`write_zeros`], also returning how long creating the file, the writes and the
/// `fdatasync` took (the delete that follows is not included): the same code path,
/// timed, for `hab calibrate`.
pub fn write_zeros_timed(path: &Path, nbytes: u64) -> io::Result<(u64, Duration)> {
    write_zeros_with(path, nbytes, |_| Ok(()))
}

/// [`write_zeros`] with `after_chunk(bytes_written_so_far)` called after each chunk; an
/// error from it aborts the write like an I/O error would (tests use it to look at the
/// file and to fail midway).
fn write_zeros_with(
    path: &Path,
    nbytes: u64,
    after_chunk: impl FnMut(u64) -> io::Result<()>,
) -> io::Result<(u64, Duration)> {
    let started = Instant::now();
    let file = File::create_new(path)?;
    let guard = RemoveOnDrop(Some(path));
    let written = fill(&file, nbytes, after_chunk)?;
    let took = started.elapsed();
    drop(file);
    guard.disarm();
    fs::remove_file(path)?;
    Ok((written, took))
}

/// Writes `nbytes` zeros to `file` in 1 MiB chunks and `fdatasync`s it.
fn fill(
    file: &File,
    nbytes: u64,
    mut after_chunk: impl FnMut(u64) -> io::Result<()>,
) -> io::Result<u64> {
    let mut w = file;
    let mut written = 0u64;
    while written < nbytes {
        let len = usize::try_from(nbytes - written).map_or(CHUNK_BYTES, |n| n.min(CHUNK_BYTES));
        w.write_all(&ZEROS[..len])?;
        written += len as u64;
        after_chunk(written)?;
    }
    file.sync_data()?;
    Ok(written)
}

/// Deletes the file at the path when dropped, unless disarmed (best effort: the error
/// being returned matters more than a failed clean-up).
struct RemoveOnDrop<'a>(Option<&'a Path>);

impl RemoveOnDrop<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_all_bytes_then_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zeros");
        let nbytes = 3 * (1 << 20) + 17;
        let mut seen = Vec::new();
        let (written, _) = write_zeros_with(&path, nbytes, |so_far| {
            let meta = fs::metadata(&path)?;
            seen.push((so_far, meta.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(written, nbytes);
        let mib = 1u64 << 20;
        assert_eq!(
            seen,
            vec![
                (mib, mib),
                (2 * mib, 2 * mib),
                (3 * mib, 3 * mib),
                (nbytes, nbytes)
            ]
        );
        assert!(!path.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn content_is_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zeros");
        let mut content = Vec::new();
        write_zeros_with(&path, 5000, |_| {
            content = fs::read(&path)?;
            Ok(())
        })
        .unwrap();
        assert_eq!(content, vec![0u8; 5000]);
        assert!(!path.exists());
    }

    #[test]
    fn zero_bytes_and_no_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zeros");
        fs::write(&path, b"old content").unwrap();
        let err = write_zeros(&path, 10).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"old content");
        fs::remove_file(&path).unwrap();
        assert_eq!(write_zeros(&path, 0).unwrap(), 0);
        assert!(!path.exists());
        assert_eq!(write_zeros(&path, 10).unwrap(), 10);
        assert!(!path.exists());
        let (n, took) = write_zeros_timed(&path, 3 << 20).unwrap();
        assert_eq!(n, 3 << 20);
        assert!(took > Duration::ZERO);
        assert!(!path.exists());
    }

    #[test]
    fn failure_midway_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("zeros");
        let err = write_zeros_with(&path, 10 << 20, |so_far| {
            if so_far >= 2 << 20 {
                Err(io::Error::from_raw_os_error(28)) // ENOSPC
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28));
        assert!(!path.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn in_scratch_writes_then_deletes_and_refuses_by_rule() {
        use crate::tasks::refusal::RefusalKind;
        let dir = tempfile::tempdir().unwrap();
        let scratch = Scratch::open(dir.path()).unwrap();
        assert_eq!(
            write_zeros_in(&scratch, Path::new("z.bin"), 3 * (1 << 20) + 5).unwrap(),
            3 * (1 << 20) + 5
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        fs::write(dir.path().join("kept"), b"x").unwrap();
        let f = write_zeros_in(&scratch, Path::new("kept"), 10).unwrap_err();
        assert_eq!(f.refusal, Some(RefusalKind::FileExists));
        assert_eq!(f.exc_type, "FileExistsError");
        assert_eq!(fs::read(dir.path().join("kept")).unwrap(), b"x");
        let f = write_zeros_in(&scratch, Path::new("/etc/hostname"), 10).unwrap_err();
        assert_eq!(f.refusal, Some(RefusalKind::PathOutsideScratch));
        let f = write_zeros_in(&scratch, Path::new("z"), u64::MAX).unwrap_err();
        assert_eq!(f.refusal, Some(RefusalKind::WriteFreeSpace));
        assert!(!dir.path().join("z").exists());
        // A plain I/O error keeps Python's exception: a missing subdirectory.
        let f = write_zeros_in(&scratch, Path::new("no/z"), 10).unwrap_err();
        assert_eq!(
            (f.exc_type.as_str(), f.refusal),
            ("FileNotFoundError", None)
        );
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/zeros");
        let err = write_zeros(&path, 1000).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!path.exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
