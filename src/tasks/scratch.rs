//! The worker's scratch directory: the only place `hab.write_zeros` may create a file.
//!
//! A message can name any path, and hab's worker often runs as root, so a path is never
//! opened as given. [`Scratch::create_new`] resolves it against the directory's open file
//! descriptor one component at a time (`openat` with `O_NOFOLLOW` on every directory, the
//! file itself with `O_CREAT | O_EXCL | O_NOFOLLOW`):
//! - a relative path is taken inside the directory; an absolute one must name a place
//!   inside it (compared with the directory's canonical path);
//! - `..` is refused, and so is every symbolic link on the way (one swapped in between a
//!   check and the open cannot redirect the write: there is no separate check);
//! - an existing file is never truncated or reused (`O_EXCL`);
//! - [`ScratchFile::remove`] deletes the name only while it still is the file this worker
//!   created (same device and inode), so the worker deletes nothing it did not create.
//!
//! Writes also respect the free space of the scratch file system: [`Scratch::reserve`]
//! refuses a write larger than what is free minus what the writes in flight have claimed.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use nix::fcntl::{OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::refusal::{Refusal, RefusalKind};

/// An open scratch directory.
#[derive(Debug)]
pub struct Scratch {
    /// The directory's canonical path (absolute paths in messages are compared with it).
    root: PathBuf,
    /// The directory itself: every file is created relative to this descriptor.
    dir: OwnedFd,
    /// Bytes claimed by writes in flight ([`Scratch::reserve`]).
    reserved: Mutex<u64>,
}

/// A file this worker created in its scratch directory (open for writing).
#[derive(Debug)]
pub struct ScratchFile {
    /// The file, open for writing.
    pub file: File,
    /// The directory holding it, and its name there: where [`ScratchFile::remove`] unlinks.
    parent: OwnedFd,
    name: OsString,
    /// Identity of the created file: only this file is ever unlinked.
    dev: u64,
    ino: u64,
}

/// Free space claimed by one write; given back when dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    scratch: &'a Scratch,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut r = self.scratch.reserved.lock().expect("scratch reservations");
        *r = r.saturating_sub(self.bytes);
    }
}

impl Scratch {
    /// Opens `path`, which must be an existing directory the worker can write in.
    pub fn open(path: &Path) -> io::Result<Scratch> {
        let root = std::fs::canonicalize(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("scratch directory {}: {e}", path.display()),
            )
        })?;
        let dir = nix::fcntl::open(
            &root,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("scratch directory {}: {e}", root.display()),
            )
        })?;
        Ok(Scratch {
            root,
            dir,
            reserved: Mutex::new(0),
        })
    }

    /// The directory's canonical path.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Bytes free for an unprivileged writer on the scratch file system right now.
    pub fn free_bytes(&self) -> io::Result<u64> {
        let st = nix::sys::statvfs::fstatvfs(self.dir.as_fd())?;
        Ok(st.blocks_available() * st.fragment_size())
    }

    /// Claims `bytes` of free space for one write: refused when more than what is free
    /// minus what other writes in flight claimed.
    pub fn reserve(&self, bytes: u64) -> Result<Reservation<'_>, Refusal> {
        let free = self.free_bytes().map_err(|e| {
            Refusal::new(
                RefusalKind::WriteFreeSpace,
                format!(
                    "cannot read the free space of the scratch directory {}: {e}",
                    self.root.display()
                ),
            )
        })?;
        let mut reserved = self.reserved.lock().expect("scratch reservations");
        let left = free.saturating_sub(*reserved);
        if bytes > left {
            return Err(Refusal::new(
                RefusalKind::WriteFreeSpace,
                format!(
                    "write_zeros of {bytes} bytes exceeds the free space of the scratch \
                     directory {} ({left} bytes free{})",
                    self.root.display(),
                    if *reserved > 0 {
                        format!(" after {} bytes claimed by writes in progress", *reserved)
                    } else {
                        String::new()
                    }
                ),
            ));
        }
        *reserved += bytes;
        Ok(Reservation {
            scratch: self,
            bytes,
        })
    }

    /// The components of `requested` below the scratch directory, or why it is refused
    /// (lexical rules only; symbolic links are refused while opening).
    pub fn components(&self, requested: &Path) -> Result<Vec<OsString>, Refusal> {
        let outside = |why: &str| {
            Refusal::new(
                RefusalKind::PathOutsideScratch,
                format!(
                    "path {} {why}; hab's worker writes only inside its scratch directory {}",
                    quote(requested),
                    self.root.display()
                ),
            )
        };
        let rest = if requested.is_absolute() {
            requested
                .strip_prefix(&self.root)
                .map_err(|_| outside("is outside the scratch directory"))?
        } else {
            requested
        };
        let mut parts = Vec::new();
        for c in rest.components() {
            match c {
                Component::Normal(name) => parts.push(name.to_os_string()),
                Component::CurDir => {}
                Component::ParentDir => return Err(outside("contains `..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(outside("is outside the scratch directory"));
                }
            }
        }
        if parts.is_empty() {
            return Err(outside("names no file"));
        }
        Ok(parts)
    }

    /// Creates a new file at `requested` inside the scratch directory (see the module
    /// documentation for the rules). I/O errors other than the rules' come back as
    /// `Err(Ok(io::Error))`.
    pub fn create_new(&self, requested: &Path) -> Result<ScratchFile, Result<io::Error, Refusal>> {
        let parts = self.components(requested).map_err(Err)?;
        let (name, dirs) = parts.split_last().expect("at least one component");
        let mut parent: Option<OwnedFd> = None;
        for d in dirs {
            let at = parent.as_ref().map_or(self.dir.as_fd(), |p| p.as_fd());
            let next = openat(
                at,
                d.as_os_str(),
                OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| self.open_error(e, at, d, requested))?;
            parent = Some(next);
        }
        let parent = match parent {
            Some(p) => p,
            None => self.dir.try_clone().map_err(Ok)?,
        };
        let fd = openat(
            parent.as_fd(),
            name.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map_err(|e| self.open_error(e, parent.as_fd(), name, requested))?;
        let st: FileStat = fstat(fd.as_fd()).map_err(|e| Ok(e.into()))?;
        Ok(ScratchFile {
            file: File::from(fd),
            parent,
            name: name.clone(),
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// Turns a failed `openat` of `name` in `at` into the rule it broke, if any.
    fn open_error(
        &self,
        e: nix::errno::Errno,
        at: std::os::fd::BorrowedFd<'_>,
        name: &OsString,
        requested: &Path,
    ) -> Result<io::Error, Refusal> {
        use nix::errno::Errno;
        let is_link = || {
            fstatat(
                at,
                name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
            .unwrap_or(false)
        };
        match e {
            Errno::ELOOP | Errno::ENOTDIR | Errno::EEXIST if is_link() => Err(Refusal::new(
                RefusalKind::PathThroughSymlink,
                format!(
                    "path {} goes through the symbolic link {}; hab's worker follows no \
                     link inside its scratch directory {}",
                    quote(requested),
                    quote(Path::new(name)),
                    self.root.display()
                ),
            )),
            Errno::EEXIST => Err(Refusal::new(
                RefusalKind::FileExists,
                format!(
                    "path {} already exists; hab's worker creates new files only and never \
                     truncates or deletes a file it did not create",
                    quote(requested)
                ),
            )),
            other => Ok(other.into()),
        }
    }
}

impl ScratchFile {
    /// Deletes the file, but only while its name still refers to the file created here.
    pub fn remove(&self) -> io::Result<()> {
        let st = fstatat(
            self.parent.as_fd(),
            self.name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if st.st_dev != self.dev || st.st_ino != self.ino {
            return Err(io::Error::other(format!(
                "{} was replaced while the task ran; left in place",
                quote(Path::new(&self.name))
            )));
        }
        unlinkat(
            self.parent.as_fd(),
            self.name.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        )?;
        Ok(())
    }
}

/// A path in Python's repr quotes, as the task's messages show paths.
fn quote(p: &Path) -> String {
    let mut s = String::new();
    crate::protocol::py_str_repr(&String::from_utf8_lossy(p.as_os_str().as_bytes()), &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn kind(r: Result<ScratchFile, Result<io::Error, Refusal>>) -> RefusalKind {
        match r {
            Err(Err(refusal)) => refusal.kind,
            Err(Ok(e)) => panic!("expected a refusal, got the I/O error {e}"),
            Ok(f) => panic!("expected a refusal, created {:?}", f.name),
        }
    }

    #[test]
    fn creates_relative_and_absolute_paths_inside() {
        let dir = tempfile::tempdir().unwrap();
        let s = Scratch::open(dir.path()).unwrap();
        let f = s.create_new(Path::new("a.bin")).unwrap();
        assert!(dir.path().join("a.bin").is_file());
        f.remove().unwrap();
        assert!(!dir.path().join("a.bin").exists());
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let abs = s.path().join("sub/./b.bin");
        let f = s.create_new(&abs).unwrap();
        assert!(dir.path().join("sub/b.bin").is_file());
        f.remove().unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("sub")).unwrap().count(),
            0
        );
    }

    #[test]
    fn refuses_paths_that_leave() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let s = Scratch::open(dir.path()).unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        assert_eq!(kind(s.create_new(&victim)), RefusalKind::PathOutsideScratch);
        assert_eq!(
            kind(s.create_new(Path::new("../x"))),
            RefusalKind::PathOutsideScratch
        );
        assert_eq!(
            kind(s.create_new(&s.path().join("sub/../../x"))),
            RefusalKind::PathOutsideScratch
        );
        assert_eq!(
            kind(s.create_new(Path::new("."))),
            RefusalKind::PathOutsideScratch
        );
        assert_eq!(
            kind(s.create_new(Path::new("/"))),
            RefusalKind::PathOutsideScratch
        );
        // A symbolic link to a directory outside, and one to a file outside.
        symlink(outside.path(), dir.path().join("out")).unwrap();
        assert_eq!(
            kind(s.create_new(Path::new("out/new"))),
            RefusalKind::PathThroughSymlink
        );
        assert!(!outside.path().join("new").exists());
        symlink(&victim, dir.path().join("link")).unwrap();
        assert_eq!(
            kind(s.create_new(Path::new("link"))),
            RefusalKind::PathThroughSymlink
        );
        // A dangling link is not followed either (O_CREAT would create its target).
        symlink(outside.path().join("made"), dir.path().join("dangling")).unwrap();
        assert_eq!(
            kind(s.create_new(Path::new("dangling"))),
            RefusalKind::PathThroughSymlink
        );
        assert!(!outside.path().join("made").exists());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    }

    #[test]
    fn never_touches_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let s = Scratch::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("mine"), b"data").unwrap();
        let r = s.create_new(Path::new("mine"));
        assert_eq!(kind(r), RefusalKind::FileExists);
        assert_eq!(std::fs::read(dir.path().join("mine")).unwrap(), b"data");
    }

    #[test]
    fn removes_only_the_file_it_created() {
        let dir = tempfile::tempdir().unwrap();
        let s = Scratch::open(dir.path()).unwrap();
        let f = s.create_new(Path::new("f")).unwrap();
        // Someone replaces the file under the same name while the task runs.
        std::fs::remove_file(dir.path().join("f")).unwrap();
        std::fs::write(dir.path().join("f"), b"other").unwrap();
        assert!(f.remove().is_err());
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"other");
    }

    #[test]
    fn reservations_count_writes_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let s = Scratch::open(dir.path()).unwrap();
        let free = s.free_bytes().unwrap();
        assert!(free > 0);
        let err = s.reserve(free + 1).unwrap_err();
        assert_eq!(err.kind, RefusalKind::WriteFreeSpace);
        let half = free / 2 + 1;
        let first = s.reserve(half).unwrap();
        assert_eq!(
            s.reserve(half).unwrap_err().kind,
            RefusalKind::WriteFreeSpace
        );
        drop(first);
        // Free space moves with the rest of the machine: only ask for a little now.
        s.reserve(1).unwrap();
    }

    #[test]
    fn a_scratch_directory_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Scratch::open(&dir.path().join("missing")).is_err());
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(Scratch::open(&file).is_err());
    }
}
