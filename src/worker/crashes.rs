//! Which tasks killed their worker: the side channel's unfinished starts of dead workers.
//!
//! A task that crashes its worker (or gets it killed) comes back: acks are late, so the
//! broker redelivers the message to the next worker, which would crash again — a poison
//! message that stops a whole run. Every worker holds an exclusive `flock` on its side
//! channel file while it lives, so another worker can tell a dead writer's file from a
//! live one's. When a delivery arrives with the `redelivered` flag, [`CrashIndex`] reads
//! what the side channel files of the directory gained since its last look and counts the
//! task's starts that never finished in files whose writer is gone (and in the part of
//! this worker's own file written before it opened it: an earlier process of the same
//! name). A task running on a live worker whose broker connection dropped is not a crash.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use uuid::Uuid;

use crate::protocol::side_channel::{self, SideEventKind};

/// The unfinished starts in the side channel files of one directory.
#[derive(Debug)]
pub struct CrashIndex {
    /// The directory of side channel files (one per worker process).
    dir: PathBuf,
    /// This worker's own file, and its length when this process opened it.
    own: PathBuf,
    own_opened_at: u64,
    files: HashMap<PathBuf, FileState>,
}

#[derive(Debug, Default)]
struct FileState {
    /// Not a hab worker's side channel (no header line, e.g. another CSV in the directory
    /// or a Celery worker's file, which holds no lock): never read.
    foreign: bool,
    /// Bytes of the file already read (complete lines only).
    offset: u64,
    /// Starts without a finish, per task, by the file's writer(s).
    unfinished: HashMap<Uuid, u32>,
    /// For this worker's own file: the unfinished starts written before it opened it.
    earlier: HashMap<Uuid, u32>,
}

impl CrashIndex {
    /// An index of the side channel files beside `own` (this worker's file, whose length
    /// was `own_opened_at` bytes when the worker opened it).
    pub fn new(own: &Path, own_opened_at: u64) -> Self {
        CrashIndex {
            dir: own
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            own: own.to_path_buf(),
            own_opened_at,
            files: HashMap::new(),
        }
    }

    /// How many times a worker died while running `id`: its unfinished starts in the files
    /// of dead workers.
    pub fn crashes_of(&mut self, id: Uuid) -> io::Result<u32> {
        let dead = self.refresh()?;
        let mut crashes = 0;
        for (path, state) in &self.files {
            if *path == self.own {
                crashes += state.earlier.get(&id).copied().unwrap_or(0);
            } else if dead.contains(path) {
                crashes += state.unfinished.get(&id).copied().unwrap_or(0);
            }
        }
        Ok(crashes)
    }

    /// Reads what the side channel files of dead workers gained since the last look (and
    /// the part of this worker's own file an earlier process wrote); returns the dead
    /// workers' files. A live worker's file is not read at all: its unfinished starts are
    /// tasks it is running, and after a broker failover every message comes back
    /// redelivered, so reading live files on each would stall the worker on a big run.
    fn refresh(&mut self) -> io::Result<Vec<PathBuf>> {
        let mut dead = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "csv") {
                continue;
            }
            let split = if path == self.own {
                Some(self.own_opened_at)
            } else if writer_alive(&path)? {
                continue;
            } else {
                None
            };
            let state = self.files.entry(path.clone()).or_default();
            read_new(&path, state, split)?;
            if split.is_none() {
                dead.push(path);
            }
        }
        Ok(dead)
    }
}

/// Whether a live process still holds the lock of this side channel file.
fn writer_alive(path: &Path) -> io::Result<bool> {
    let file = File::open(path)?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_unlocked_on_drop) => Ok(false),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, e)) => Err(e.into()),
    }
}

/// Applies the complete lines after `state.offset`; lines before `split` (this worker's
/// own file) count as an earlier process's.
fn read_new(path: &Path, state: &mut FileState, split: Option<u64>) -> io::Result<()> {
    if state.foreign {
        return Ok(());
    }
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(state.offset))?;
    let mut r = io::BufReader::new(file);
    let mut line = Vec::with_capacity(160);
    if state.offset == 0 {
        let n = r.read_until(b'\n', &mut line)?;
        if line.last() != Some(&b'\n') {
            return Ok(()); // not even a whole header yet
        }
        if line.trim_ascii_end() != side_channel::HEADER.as_bytes() {
            state.foreign = true;
            return Ok(());
        }
        state.offset = n as u64;
    }
    loop {
        if split.is_some_and(|split| state.offset >= split) {
            return Ok(()); // this worker's own lines: it is alive
        }
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            return Ok(());
        }
        let at = state.offset;
        state.offset += n as u64;
        let Some(ev) = std::str::from_utf8(&line)
            .ok()
            .and_then(side_channel::parse)
        else {
            continue;
        };
        let map = match split {
            Some(split) if at < split => &mut state.earlier,
            Some(_) => continue, // this process's own tasks: it is alive
            None => &mut state.unfinished,
        };
        match ev.kind {
            SideEventKind::Start => *map.entry(ev.task_id).or_insert(0) += 1,
            SideEventKind::Finish { .. } => {
                if let Some(n) = map.get_mut(&ev.task_id) {
                    *n -= 1;
                    if *n == 0 {
                        map.remove(&ev.task_id);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::side_channel::SideEvent;
    use std::io::Write;

    fn line(kind: SideEventKind, id: Uuid, worker: &str) -> String {
        side_channel::format(&SideEvent {
            kind,
            unix_us: 1,
            task_id: id,
            worker: worker.into(),
            detail: String::new(),
        })
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    /// Starts a worker's side-channel file at `path` with its header line.
    fn append_header(path: &Path) {
        append(path, &format!("{}\n", side_channel::HEADER));
    }

    #[test]
    fn counts_unfinished_starts_of_dead_writers_only() {
        let dir = tempfile::tempdir().unwrap();
        let (poison, fine, running) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        // w1 and w1r1 died while running `poison`; `fine` finished.
        for w in ["w1", "w1r1"] {
            let p = dir.path().join(format!("{w}.csv"));
            append_header(&p);
            append(&p, &line(SideEventKind::Start, fine, w));
            append(
                &p,
                &line(SideEventKind::Finish { succeeded: true }, fine, w),
            );
            append(&p, &line(SideEventKind::Start, poison, w));
        }
        // w2 is alive (holds its lock) and runs `running`.
        let live = dir.path().join("w2.csv");
        append_header(&live);
        append(&live, &line(SideEventKind::Start, running, "w2"));
        let _lock = Flock::lock(File::open(&live).unwrap(), FlockArg::LockExclusive).unwrap();
        // This worker (w3) opened its file just now.
        let own = dir.path().join("w3.csv");
        append_header(&own);
        append(&own, &line(SideEventKind::Start, running, "w3"));
        let mut idx = CrashIndex::new(&own, std::fs::metadata(&own).unwrap().len() - 1);
        assert_eq!(idx.crashes_of(poison).unwrap(), 2);
        assert_eq!(idx.crashes_of(fine).unwrap(), 0);
        // Neither w2's running task nor this worker's own.
        let mut idx2 = CrashIndex::new(&own, 0);
        assert_eq!(idx2.crashes_of(running).unwrap(), 0);
        // An earlier process under this worker's own name that died running it counts.
        let mut idx3 = CrashIndex::new(&own, std::fs::metadata(&own).unwrap().len());
        assert_eq!(idx3.crashes_of(running).unwrap(), 1);
        // Another CSV, or a Celery worker's file (no header, no lock), is never read.
        append(
            &dir.path().join("other.csv"),
            &line(SideEventKind::Start, poison, "celery"),
        );
        assert_eq!(idx.crashes_of(poison).unwrap(), 2);
        // New lines are read incrementally: `poison` finishes in a third file.
        let w4 = dir.path().join("w4.csv");
        append_header(&w4);
        append(&w4, &line(SideEventKind::Start, poison, "w4"));
        assert_eq!(idx.crashes_of(poison).unwrap(), 3);
        append(
            &w4,
            &line(SideEventKind::Finish { succeeded: true }, poison, "w4"),
        );
        assert_eq!(idx.crashes_of(poison).unwrap(), 2);
        // A torn last line is not read until it is complete.
        let torn = line(SideEventKind::Start, poison, "w5");
        let w5 = dir.path().join("w5.csv");
        append_header(&w5);
        append(&w5, &torn[..torn.len() - 1]);
        assert_eq!(idx.crashes_of(poison).unwrap(), 2);
        append(&w5, "\n");
        assert_eq!(idx.crashes_of(poison).unwrap(), 3);
    }
}
