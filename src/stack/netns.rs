//! Network namespaces for partitions (`network = "namespaces"` in a topology).
//!
//! A [`Network`] gives each server placed in it a network namespace of its own with one
//! address on a private hab-only `/24` (`10.213.<x>.0/24`): a veth pair per namespace,
//! its root end enslaved to a bridge in the root namespace that holds `.1`. Clients,
//! workers and HAProxy stay in the root namespace and reach every server through the
//! bridge. A **partition** ([`Network::cut`]) isolates one member from every other member
//! of its network with blackhole routes on both sides: packets between them are dropped
//! silently, as a broken link does, while the root namespace (clients, HAProxy) still
//! reaches it. [`Network::heal`] removes the routes.
//!
//! A stack with `network = "namespaces"` has up to two networks: one for the Redis side
//! (data nodes, then Sentinels), and one for the RabbitMQ nodes when there are several
//! (a single node has no peer to be cut off from; see [`super::rabbitmq`] for the long
//! node names, the epmd per namespace and the CLI run inside a node's namespace). A cut
//! therefore separates a broker node from the other broker nodes only, and a Redis node or
//! Sentinel from the rest of the Redis side. [`NsPlace::enter_on_spawn`] puts a child in a
//! namespace; [`NsPlace::enter_as_host_on_spawn`] also gives it the namespace's address as
//! its host name (in a UTS namespace of its own), for RabbitMQ's CLI.
//!
//! Names are `hab<pid>-<k>` (the bridge) and `hab<pid>-<k>-<i>` (namespace and root-side
//! veth of member `i`), `<pid>` the owning hab process and `<k>` a per-process counter in
//! base 36, so they are recognisably hab's, unique per run and short enough for the
//! kernel's 15-byte interface names. Dropping a network deletes it; the second Ctrl-C
//! calls [`remove_all_now`]; [`clean_stale`] (run before every new network) removes what a
//! dead hab left behind, and only that: a name whose owner pid is alive is never touched.
//!
//! Addresses: servers in a namespace are reached at their own address, not 127.0.0.1.
//! Ports stay unique within a process ([`super::ports`]), so [`host`] maps a server's
//! port to the address it listens on (127.0.0.1 unless it was placed in a namespace).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};

use super::StackError;

/// First two octets of every hab network: `10.213.<x>.0/24`.
pub const SUBNET_PREFIX: [u8; 2] = [10, 213];
/// Host part of the first member's address (`.10`, `.11`, …); `.1` is the bridge.
pub const FIRST_MEMBER_HOST: u8 = 10;
/// Most members one network holds (data nodes and Sentinels, or broker nodes).
pub const MAX_MEMBERS: usize = 36;
/// The kernel's limit on interface names, in bytes (IFNAMSIZ − 1).
const IFNAME_MAX: usize = 15;

/// Server port → the address it listens on, for servers placed in a namespace.
static HOSTS: Mutex<BTreeMap<u16, Ipv4Addr>> = Mutex::new(BTreeMap::new());
/// Networks of this process not yet deleted: bridge name → member names.
static LIVE: Mutex<BTreeMap<String, Vec<String>>> = Mutex::new(BTreeMap::new());
/// Networks created by this process so far (the `<k>` in names).
static CREATED: AtomicU32 = AtomicU32::new(0);
/// Serializes subnet choice and creation within this process.
static CREATING: Mutex<()> = Mutex::new(());

/// The address the server on `port` listens on: its namespace's address if it was placed
/// in one, else 127.0.0.1.
pub fn host(port: u16) -> Ipv4Addr {
    HOSTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&port)
        .copied()
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

/// Records that the server on `port` listens on `addr` (see [`host`]).
pub fn register_host(port: u16, addr: Ipv4Addr) {
    HOSTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(port, addr);
}

/// Where one server runs: its namespace and its address there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsPlace {
    /// The network namespace (`ip netns` name, under `/run/netns/`).
    pub netns: String,
    /// Its address on the network's bridge.
    pub addr: Ipv4Addr,
}

impl NsPlace {
    /// Makes `cmd` enter this namespace in the child, before `exec`: the program keeps
    /// its own pid (no `ip netns exec` wrapper), so signals and process groups work as
    /// on loopback.
    pub fn enter_on_spawn(&self, cmd: &mut Command) -> Result<(), StackError> {
        use std::os::unix::process::CommandExt;
        let path = format!("/run/netns/{}", self.netns);
        let file = std::fs::File::open(&path).map_err(|source| StackError::Io {
            what: format!("opening network namespace {path}"),
            source,
        })?;
        // SAFETY: the closure runs in the forked child before exec and only calls
        // setns(2) on an fd opened by the parent (async-signal-safe).
        unsafe {
            cmd.pre_exec(move || {
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
        Ok(())
    }

    /// Like [`enter_on_spawn`](Self::enter_on_spawn), and gives the child a UTS namespace
    /// of its own whose host name is this place's address. For RabbitMQ's CLI: it names
    /// itself `rabbitmqcli-…@<host name>`, and the nodes it asks answer it at that name
    /// (`list_queues` gathers rows from every node), so the name must lead to the
    /// namespace it runs in, and the machine's host name (`127.0.0.1` in `/etc/hosts`)
    /// does not.
    pub fn enter_as_host_on_spawn(&self, cmd: &mut Command) -> Result<(), StackError> {
        use std::os::unix::process::CommandExt;
        self.enter_on_spawn(cmd)?;
        let hostname = self.addr.to_string();
        // SAFETY: runs in the forked child before exec (after the setns hook); unshare(2)
        // and sethostname(2) are plain system calls on memory owned by the closure.
        unsafe {
            cmd.pre_exec(move || {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUTS)
                    .map_err(std::io::Error::from)?;
                nix::unistd::sethostname(&hostname).map_err(std::io::Error::from)
            });
        }
        Ok(())
    }
}

/// The name of network `k` of process `pid` (its bridge), or of its member `i`.
pub fn name(pid: u32, k: u32, member: Option<usize>) -> String {
    let k = base36(k % (36 * 36));
    match member {
        None => format!("hab{pid}-{k}"),
        Some(i) => format!("hab{pid}-{k}-{}", base36(i as u32)),
    }
}

fn base36(mut n: u32) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// The owning pid of a hab network name (`hab<pid>-…`); `None` for any other name.
pub fn owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("hab")?;
    let (pid, tail) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || tail.is_empty() {
        return None;
    }
    if !tail
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-')
    {
        return None;
    }
    pid.parse().ok()
}

/// The third octet for a new network: the first `x` from `seed` on (wrapping, 1..=254)
/// whose `10.213.x.0/24` appears in none of `in_use` (text of `ip addr` and `ip route`).
pub fn pick_subnet(in_use: &str, seed: u32) -> Option<u8> {
    (0..254u32).map(|d| ((seed + d) % 254 + 1) as u8).find(|x| {
        let p = format!("{}.{}.{x}.", SUBNET_PREFIX[0], SUBNET_PREFIX[1]);
        !in_use.contains(&p)
    })
}

/// Interfaces other than `mine` with an address on `10.213.x.0/24`, from `ip -4 -o addr
/// show` output (`3: name    inet 10.213.x.1/24 …`).
pub fn subnet_users(addr_show: &str, x: u8, mine: &str) -> Vec<String> {
    let p = format!("inet {}.{}.{x}.", SUBNET_PREFIX[0], SUBNET_PREFIX[1]);
    addr_show
        .lines()
        .filter(|l| l.contains(&p))
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|name| *name != mine)
        .map(str::to_string)
        .collect()
}

/// The address of member `i` on subnet `x`.
pub fn member_addr(x: u8, i: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        SUBNET_PREFIX[0],
        SUBNET_PREFIX[1],
        x,
        FIRST_MEMBER_HOST + i as u8,
    )
}

/// The `ip` commands that cut (`add`) or heal (`del`) member `target` from every other
/// member: a blackhole route to each peer inside the target's namespace, and one to the
/// target inside each peer's.
pub fn route_commands(members: &[NsPlace], target: usize, op: &str) -> Vec<Vec<String>> {
    let t = &members[target];
    let mut out = Vec::new();
    for (j, p) in members.iter().enumerate() {
        if j == target {
            continue;
        }
        for (ns, to) in [(&t.netns, p.addr), (&p.netns, t.addr)] {
            out.push(
                ["-n", ns, "route", op, "blackhole", &format!("{to}/32")]
                    .map(String::from)
                    .to_vec(),
            );
        }
    }
    out
}

/// Runs `ip <args>`; the error names the command and carries its stderr.
fn ip(args: &[&str]) -> Result<String, StackError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => StackError::MissingBinary {
                program: "ip".into(),
                package: "iproute2",
            },
            _ => StackError::SpawnFailed {
                program: "ip".into(),
                source,
            },
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(StackError::Control {
            what: format!("ip {}", args.join(" ")),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Runs `ip <args>` and ignores the outcome (teardown: the thing may be gone already).
fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Why network namespaces cannot be created here, or `None` when they can: needs root,
/// `ip` (iproute2), and a namespace that can really be added (probed).
pub fn unavailable_reason() -> Option<String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        });
    if let Some(uid) = uid
        && uid != "0"
    {
        return Some(format!(
            "network namespaces need root (hab runs with effective uid {uid})"
        ));
    }
    if super::process::find_program("ip".as_ref()).is_none() {
        return Some("`ip` was not found; it comes with the Debian package `iproute2`".into());
    }
    let probe = format!(
        "hab{}-p{}",
        std::process::id(),
        base36(CREATED.fetch_add(1, Ordering::Relaxed) % 1296)
    );
    match ip(&["netns", "add", &probe]) {
        Ok(_) => {
            ip_quiet(&["netns", "del", &probe]);
            None
        }
        Err(e) => Some(format!("`ip netns add` failed: {e}")),
    }
}

/// Whether process `pid` exists (a zombie counts; EPERM means it exists).
fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// Names of every network namespace (`ip netns list`).
fn list_netns() -> Vec<String> {
    ip(&["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Names of every link in the root namespace (`ip -o link show`, `name@peer` cut).
fn list_links() -> Vec<String> {
    ip(&["-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Every hab network namespace and link (bridge, veth) on this machine owned by `pid`.
pub fn owned_by(pid: u32) -> Vec<String> {
    list_netns()
        .into_iter()
        .chain(list_links())
        .filter(|n| owner(n) == Some(pid))
        .collect()
}

/// Removes hab namespaces and links whose owning hab process is dead (a crashed run).
/// Never touches those of a live process (another run, a parallel test). Returns what it
/// removed.
pub fn clean_stale() -> Vec<String> {
    let me = std::process::id();
    let stale = |n: &String| owner(n).is_some_and(|p| p != me && !alive(p));
    let mut removed = Vec::new();
    for ns in list_netns().into_iter().filter(stale) {
        ip_quiet(&["netns", "del", &ns]);
        removed.push(ns);
    }
    // Deleting a namespace deletes its veth pair; what is left are bridges and veths
    // whose namespace was gone already.
    for link in list_links().into_iter().filter(stale) {
        ip_quiet(&["link", "del", &link]);
        removed.push(link);
    }
    if !removed.is_empty() {
        tracing::warn!(
            ?removed,
            "removed network namespaces and links of a dead hab run"
        );
    }
    removed
}

/// Deletes every network this process created and has not deleted yet. For the second
/// Ctrl-C, right before `std::process::exit`, when `Drop` will not run (call it after
/// [`super::process::kill_all_now`]).
pub fn remove_all_now() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(PoisonError::into_inner));
    for (bridge, members) in live {
        delete(&bridge, &members);
    }
}

fn delete(bridge: &str, members: &[String]) {
    for ns in members {
        ip_quiet(&["netns", "del", ns]);
        ip_quiet(&["link", "del", ns]); // the root-side veth, if the namespace was gone
    }
    ip_quiet(&["link", "del", bridge]);
}

/// A hab network: a bridge in the root namespace and one namespace per member, joined by
/// veth pairs. Deleted on drop (drop the servers in it first).
#[derive(Debug)]
pub struct Network {
    /// The bridge's name (also the prefix of every member's name).
    bridge: String,
    /// The bridge's address (`.1`), the root namespace's address on this network.
    gateway: Ipv4Addr,
    /// Each member's namespace and address, in order.
    members: Vec<NsPlace>,
    /// Members currently cut off from the others.
    cut: BTreeSet<usize>,
}

impl Network {
    /// Creates a network with `members` namespaces, after removing stale hab networks
    /// of dead runs. Fails with the reason when namespaces cannot be created.
    pub fn create(members: usize) -> Result<Network, StackError> {
        if members == 0 || members > MAX_MEMBERS {
            return Err(StackError::Unsupported(format!(
                "a hab network holds 1 to {MAX_MEMBERS} servers, asked for {members}"
            )));
        }
        if let Some(why) = unavailable_reason() {
            return Err(StackError::Unsupported(format!(
                "network = \"namespaces\": network namespaces cannot be created here: {why}"
            )));
        }
        clean_stale();
        let _one = CREATING.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = std::process::id();
        let k = CREATED.fetch_add(1, Ordering::Relaxed);
        let bridge = name(pid, k, None);
        let in_use = format!(
            "{}\n{}",
            ip(&["-4", "-o", "addr", "show"])?,
            ip(&["-4", "route", "show", "table", "all"])?
        );
        let x =
            pick_subnet(&in_use, pid.wrapping_mul(31).wrapping_add(k * 7)).ok_or_else(|| {
                StackError::Unsupported("no free 10.213.x.0/24 subnet for a hab network".into())
            })?;
        let gateway = Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], x, 1);
        let places: Vec<NsPlace> = (0..members)
            .map(|i| NsPlace {
                netns: name(pid, k, Some(i)),
                addr: member_addr(x, i),
            })
            .collect();
        debug_assert!(places.iter().all(|p| p.netns.len() <= IFNAME_MAX));
        LIVE.lock().unwrap_or_else(PoisonError::into_inner).insert(
            bridge.clone(),
            places.iter().map(|p| p.netns.clone()).collect(),
        );
        // From here on, dropping `net` deletes whatever was created.
        let net = Network {
            bridge,
            gateway,
            members: places,
            cut: BTreeSet::new(),
        };
        let br = net.bridge.as_str();
        ip(&["link", "add", br, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{gateway}/24"), "dev", br])?;
        // Another process may have picked the same subnet at the same moment.
        let others = subnet_users(&ip(&["-4", "-o", "addr", "show"])?, x, br);
        if !others.is_empty() {
            return Err(StackError::Control {
                what: format!("creating network {br} on {gateway}/24"),
                detail: format!(
                    "the subnet was taken meanwhile by {}; run again",
                    others.join(", ")
                ),
            });
        }
        ip(&["link", "set", br, "up"])?;
        for p in &net.members {
            let ns = p.netns.as_str();
            ip(&["netns", "add", ns])?;
            // The root end is named like the namespace; the inner end is eth0.
            ip(&[
                "link", "add", ns, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ])?;
            ip(&["link", "set", ns, "master", br, "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", p.addr),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        tracing::info!(bridge = %net.bridge, %gateway, members, "network namespaces up");
        Ok(net)
    }

    /// Member `i`'s namespace and address.
    pub fn place(&self, i: usize) -> NsPlace {
        self.members[i].clone()
    }

    /// Every member, in order.
    pub fn members(&self) -> &[NsPlace] {
        &self.members
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The root namespace's address on this network (where clients and HAProxy
    /// connect from).
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    /// The member listening at `addr`.
    pub fn member_at(&self, addr: Ipv4Addr) -> Option<usize> {
        self.members.iter().position(|p| p.addr == addr)
    }

    /// Cuts member `i` off from every other member (both directions, silent drops); the
    /// root namespace still reaches it.
    pub fn cut(&mut self, i: usize) -> Result<(), StackError> {
        if !self.cut.insert(i) {
            return Err(StackError::Control {
                what: format!("partitioning {}", self.members[i].netns),
                detail: "it is cut off already".into(),
            });
        }
        for args in route_commands(&self.members, i, "add") {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            ip(&args)?;
        }
        Ok(())
    }

    /// Joins member `i` to the others again.
    pub fn heal(&mut self, i: usize) -> Result<(), StackError> {
        self.cut.remove(&i);
        let mut first_error = None;
        for args in route_commands(&self.members, i, "del") {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if let Err(e) = ip(&args) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        let names: Vec<String> = self.members.iter().map(|p| p.netns.clone()).collect();
        delete(&self.bridge, &names);
        LIVE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.bridge);
        tracing::info!(bridge = %self.bridge, "network namespaces removed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_interface_names_and_name_their_owner() {
        // pid_max can be 4194304 (7 digits): the longest member name still fits.
        let worst = name(4_194_304, 1295, Some(35));
        assert_eq!(worst, "hab4194304-zz-z");
        assert!(worst.len() <= IFNAME_MAX);
        assert_eq!(name(812, 0, None), "hab812-0");
        assert_eq!(name(812, 37, Some(2)), "hab812-11-2");
        assert_eq!(name(812, 1296, None), "hab812-0", "the counter wraps");
        assert_eq!(owner("hab812-11-2"), Some(812));
        assert_eq!(owner("hab4194304-zz"), Some(4_194_304));
        for other in [
            "habtv2", "hab-1", "hab12", "hab12-", "eth0", "hab12-X", "xhab1-2",
        ] {
            assert_eq!(owner(other), None, "{other}");
        }
    }

    #[test]
    fn subnet_skips_what_is_in_use_and_wraps() {
        let in_use = "inet 10.213.5.1/24 dev hab1-0\n10.213.6.0/24 dev hab2-0 proto kernel";
        assert_eq!(pick_subnet(in_use, 3), Some(4));
        assert_eq!(pick_subnet(in_use, 4), Some(7), "5 and 6 are taken");
        assert_eq!(pick_subnet("", 253), Some(254));
        assert_eq!(pick_subnet("", 254), Some(1), "wraps, never 0 or 255");
        let all: String = (1..=254).map(|x| format!("10.213.{x}.1 ")).collect();
        assert_eq!(pick_subnet(&all, 0), None);
        let show = "1: lo    inet 127.0.0.1/8 scope host lo\n\
                    9: hab1-0    inet 10.213.7.1/24 scope global hab1-0\n\
                    12: hab2-0    inet 10.213.7.1/24 scope global hab2-0\n\
                    13: hab3-0    inet 10.213.70.1/24 scope global hab3-0";
        assert_eq!(subnet_users(show, 7, "hab1-0"), ["hab2-0"]);
        assert_eq!(subnet_users(show, 70, "hab3-0"), Vec::<String>::new());
        assert_eq!(member_addr(7, 0), Ipv4Addr::new(10, 213, 7, 10));
        assert_eq!(member_addr(7, 3), Ipv4Addr::new(10, 213, 7, 13));
    }

    #[test]
    fn a_cut_blackholes_both_directions_between_the_target_and_each_peer() {
        let m: Vec<NsPlace> = (0..3)
            .map(|i| NsPlace {
                netns: format!("n{i}"),
                addr: member_addr(9, i),
            })
            .collect();
        let cmds: Vec<String> = route_commands(&m, 1, "add")
            .iter()
            .map(|c| c.join(" "))
            .collect();
        assert_eq!(
            cmds,
            [
                "-n n1 route add blackhole 10.213.9.10/32",
                "-n n0 route add blackhole 10.213.9.11/32",
                "-n n1 route add blackhole 10.213.9.12/32",
                "-n n2 route add blackhole 10.213.9.11/32",
            ]
        );
        let heal = route_commands(&m, 1, "del");
        assert_eq!(heal.len(), 4);
        assert!(heal.iter().all(|c| c[3] == "del"));
        // Only member addresses: the gateway (.1, clients and HAProxy) is never cut.
        assert!(cmds.iter().all(|c| !c.contains("10.213.9.1/")));
    }

    #[test]
    fn hosts_default_to_loopback() {
        assert_eq!(host(1), Ipv4Addr::LOCALHOST);
        register_host(2, Ipv4Addr::new(10, 213, 1, 10));
        assert_eq!(host(2), Ipv4Addr::new(10, 213, 1, 10));
    }
}
