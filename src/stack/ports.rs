//! Free loopback ports, never the same one twice — within a process or between hab processes.
//!
//! Two traps shaped this module. A port found by binding `127.0.0.1:0` comes from the
//! kernel's ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), the same range
//! every outgoing connection takes its local port from: between the moment hab drops its
//! probe socket and the moment RabbitMQ binds the port, any client connection on the
//! machine may take it, and the server dies with `eaddrinuse`. And two hab processes (two
//! tests of one suite run side by side) each keep their own list of ports handed out.
//!
//! So ports are drawn at random from *below* the ephemeral range (where the kernel never
//! hands out a local port on its own), must bind on 127.0.0.1 at that moment, and are
//! reserved for the life of the process with an exclusive `flock` on a file named after the
//! port in a per-user directory under the temporary directory. A lock dies with its
//! process, so a crash leaves no stale reservation; the empty files stay (one per port
//! ever used, at most a few thousand) because deleting a lock file races with its next
//! user.

use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use nix::fcntl::{Flock, FlockArg};

/// The reservation of every port this process has handed out (the locks are held until
/// the process exits).
static HANDED_OUT: Mutex<Vec<Flock<File>>> = Mutex::new(Vec::new());

/// How many candidate ranges to try before giving up.
const ATTEMPTS: usize = 500;

/// The lowest port hab draws from: above the registered ports most services listen on.
const LOWEST: u16 = 10_000;

/// The kernel's ephemeral range when `/proc` cannot tell (Linux's default).
const DEFAULT_EPHEMERAL: RangeInclusive<u16> = 32_768..=60_999;

fn bind_loopback(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
}

/// A TCP port on 127.0.0.1 that was free a moment ago, outside the kernel's ephemeral
/// range, and that no hab process running now has handed out.
pub fn free_port() -> io::Result<u16> {
    free_port_range(1)
}

/// The first of `len` consecutive TCP ports on 127.0.0.1 with the guarantees of
/// [`free_port`] (e.g. for `RABBITMQ_CTL_DIST_PORT_MIN/MAX`).
pub fn free_port_range(len: u16) -> io::Result<u16> {
    assert!(len >= 1, "a port range holds at least one port");
    let pool = pool(ephemeral_range());
    let dir = reservation_dir()?;
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let mut random = RandomState::new().build_hasher();
    let span = u32::from(*pool.end() - *pool.start()) + 1;
    for attempt in 0..ATTEMPTS {
        random.write_usize(attempt);
        let offset = (random.finish() % u64::from(span)) as u16;
        let base = *pool.start() + offset;
        let Some(last) = base.checked_add(len - 1).filter(|last| last <= pool.end()) else {
            continue;
        };
        if let Some(locks) = reserve(&dir, base..=last)? {
            handed_out.extend(locks);
            return Ok(base);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!(
            "no {len} consecutive free loopback ports found in {ATTEMPTS} attempts in {}..={}",
            pool.start(),
            pool.end()
        ),
    ))
}

/// Locks and probes every port of `ports`; `None` when one is taken (by a hab process or
/// by anything listening or connected on it).
fn reserve(
    dir: &std::path::Path,
    ports: RangeInclusive<u16>,
) -> io::Result<Option<Vec<Flock<File>>>> {
    let mut locks = Vec::new();
    for port in ports {
        let path = dir.join(port.to_string());
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => locks.push(lock),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(None),
            Err((_, errno)) => {
                return Err(io::Error::other(format!(
                    "{}: flock: {errno}",
                    path.display()
                )));
            }
        }
        if bind_loopback(port).is_err() {
            return Ok(None);
        }
    }
    Ok(Some(locks))
}

/// The ports hab draws from: below the ephemeral range, or above it when the range starts
/// too low to leave room (a machine tuned with a wide ephemeral range).
fn pool(ephemeral: RangeInclusive<u16>) -> RangeInclusive<u16> {
    const ROOM: u16 = 2_000;
    if *ephemeral.start() >= LOWEST + ROOM {
        LOWEST..=*ephemeral.start() - 1
    } else if *ephemeral.end() <= u16::MAX - ROOM {
        *ephemeral.end() + 1..=u16::MAX
    } else {
        // No room outside the ephemeral range: draw from all of it and rely on the probe.
        1_024..=u16::MAX
    }
}

/// `/proc/sys/net/ipv4/ip_local_port_range`, or Linux's default when unreadable.
fn ephemeral_range() -> RangeInclusive<u16> {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| parse_range(&text))
        .unwrap_or(DEFAULT_EPHEMERAL)
}

fn parse_range(text: &str) -> Option<RangeInclusive<u16>> {
    let mut fields = text.split_whitespace().map(str::parse::<u16>);
    let (low, high) = (fields.next()?.ok()?, fields.next()?.ok()?);
    (low <= high).then_some(low..=high)
}

/// `$TMPDIR/hab-ports-<uid>`, created on first use.
fn reservation_dir() -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hab-ports-{}", nix::unistd::getuid()));
    fs::create_dir_all(&dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice() {
        let ports: Vec<u16> = (0..300).map(|_| free_port().unwrap()).collect();
        let unique: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|&p| p != 0));
    }

    #[test]
    fn ports_stay_out_of_the_ephemeral_range() {
        let ephemeral = ephemeral_range();
        for _ in 0..50 {
            let port = free_port().unwrap();
            assert!(!ephemeral.contains(&port), "{port} is in {ephemeral:?}");
        }
    }

    #[test]
    fn ranges_are_consecutive_free_and_disjoint() {
        let a = free_port_range(4).unwrap();
        let b = free_port_range(4).unwrap();
        assert!(a + 4 <= b || b + 4 <= a, "ranges overlap: {a} and {b}");
        for p in a..a + 4 {
            bind_loopback(p).expect("every port of the range is free");
        }
        let single = free_port().unwrap();
        assert!(!(a..a + 4).contains(&single) && !(b..b + 4).contains(&single));
    }

    #[test]
    fn a_handed_out_port_is_locked_against_other_processes() {
        // flock locks belong to an open file description, so a second open of the same
        // file conflicts exactly as another hab process's open would.
        let port = free_port().unwrap();
        let path = reservation_dir().unwrap().join(port.to_string());
        let file = File::open(&path).unwrap();
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Err((_, errno)) => assert_eq!(errno, nix::errno::Errno::EWOULDBLOCK),
            Ok(_) => panic!("port {port} was handed out but its lock is free"),
        }
    }

    #[test]
    fn the_pool_avoids_the_ephemeral_range_wherever_it_lies() {
        assert_eq!(pool(32_768..=60_999), 10_000..=32_767);
        assert_eq!(pool(1_024..=40_000), 40_001..=65_535);
        assert_eq!(pool(1_024..=65_535), 1_024..=65_535);
        assert_eq!(parse_range("32768\t60999\n"), Some(32_768..=60_999));
        assert_eq!(parse_range("9 1"), None);
        assert_eq!(parse_range(""), None);
    }
}
