//! Free loopback ports, never the same one twice within a process.
//!
//! A port is found by binding `127.0.0.1:0` and dropping the socket, so another program
//! could still take it before the server binds it; the process-wide set at least keeps two
//! servers started by one hab (or two stacks in one test binary) from being given the same
//! port.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

/// Every port this process has handed out.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How many times to ask the kernel before giving up.
const ATTEMPTS: usize = 200;

fn bind_loopback(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port))
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that this process has not
/// handed out before.
pub fn free_port() -> io::Result<u16> {
    free_port_range(1)
}

/// The first of `len` consecutive TCP ports on 127.0.0.1 that were all free a moment ago
/// and none of which this process has handed out before (e.g. for
/// `RABBITMQ_CTL_DIST_PORT_MIN/MAX`).
pub fn free_port_range(len: u16) -> io::Result<u16> {
    assert!(len >= 1, "a port range holds at least one port");
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    for _ in 0..ATTEMPTS {
        let first = bind_loopback(0)?;
        let base = first.local_addr()?.port();
        let Some(last) = base.checked_add(len - 1) else {
            continue;
        };
        if (base..=last).any(|p| handed_out.contains(&p)) {
            continue;
        }
        // Hold every socket of the range until all are known to be free.
        let rest: io::Result<Vec<TcpListener>> = (base + 1..=last).map(bind_loopback).collect();
        if rest.is_ok() {
            handed_out.extend(base..=last);
            return Ok(base);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!("no {len} consecutive free loopback ports found in {ATTEMPTS} attempts"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice() {
        let ports: Vec<u16> = (0..300).map(|_| free_port().unwrap()).collect();
        let unique: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        assert!(ports.iter().all(|&p| p != 0));
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
}
