//! `hab doctor`: whether this machine has what a run needs — the servers hab starts
//! (RabbitMQ, Redis, Redis Sentinel, HAProxy) with their versions, `ip` and root for the
//! network-namespace topologies, Python with `venv` for the Celery worker — and exactly
//! what to install for what is missing (Debian's package names, the `apt-get` line of
//! `scripts/install-servers.sh`). Exits 1 when a server is missing, 0 otherwise: what
//! only some topologies need is said, not failed on.

use std::process::{Command, Stdio};

use crate::stack::rabbitmq::RABBITMQ_SERVER;

/// One thing a run may need.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What it is, e.g. `redis-server`.
    pub name: &'static str,
    /// Who needs it: `every run`, or the topologies that do.
    pub needed_by: &'static str,
    /// Found, with its version or what was seen; `None`: missing.
    pub found: Option<String>,
    /// The Debian package that brings it (`None`: not a package, e.g. root).
    pub package: Option<&'static str>,
    /// Whether every run needs it (a missing one fails `hab doctor`).
    pub required: bool,
    /// What to do when it is missing and no package brings it.
    pub hint: &'static str,
}

/// The output of a command's stdout (or stderr when stdout is empty), when it ran.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&text).trim().to_string())
}

/// The installed version of a Debian package.
fn package_version(package: &str) -> Option<String> {
    output("dpkg-query", &["-W", "-f", "${Version}", package]).filter(|v| !v.is_empty())
}

/// `7.0.15` from `redis-server --version`'s banner.
fn redis_banner_version(program: &str) -> Option<String> {
    let banner = output(program, &["--version"])?;
    let rest = &banner[banner.find("v=")? + 2..];
    Some(rest.chars().take_while(|c| !c.is_whitespace()).collect())
}

/// Every check, in the order printed.
pub fn checks() -> Vec<Check> {
    let rabbit = std::path::Path::new(RABBITMQ_SERVER).is_file().then(|| {
        let v = package_version("rabbitmq-server").unwrap_or_else(|| "version unknown".into());
        let otp = crate::stack::installed_otp_version()
            .map(|o| format!(", Erlang/OTP {o}"))
            .unwrap_or_default();
        format!("{v}{otp}")
    });
    let is_root = nix::unistd::Uid::effective().is_root();
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let python_found = output(
        &python,
        &[
            "-c",
            "import venv, ensurepip, sys; print(sys.version.split()[0])",
        ],
    )
    .map(|v| format!("{python} {v} with venv"));
    vec![
        Check {
            name: "rabbitmq-server",
            needed_by: "every run",
            found: rabbit,
            package: Some("rabbitmq-server"),
            required: true,
            hint: "",
        },
        Check {
            name: "redis-server",
            needed_by: "every run",
            found: redis_banner_version("redis-server"),
            package: Some("redis-server"),
            required: true,
            hint: "",
        },
        Check {
            name: "redis-sentinel",
            needed_by: "every run (topologies with Sentinels)",
            found: redis_banner_version("redis-sentinel"),
            package: Some("redis-sentinel"),
            required: true,
            hint: "",
        },
        Check {
            name: "haproxy",
            needed_by: "every run (topologies with a proxy)",
            found: output("haproxy", &["-v"])
                .and_then(|b| crate::stack::haproxy::version_from_banner(&b)),
            package: Some("haproxy"),
            required: true,
            hint: "",
        },
        Check {
            name: "ip",
            needed_by: "ha-netns* (network namespaces)",
            found: output("ip", &["-V"]),
            package: Some("iproute2"),
            required: false,
            hint: "",
        },
        Check {
            name: "root",
            needed_by: "ha-netns* (network namespaces)",
            found: is_root.then(|| "running as root".to_string()),
            package: None,
            required: false,
            hint: "run as root (e.g. sudo hab …) for the ha-netns* topologies",
        },
        Check {
            name: "cgroup cpu",
            needed_by: "throttle faults (workloads/sweep.toml's stall phase)",
            found: cpu_controller(),
            package: None,
            required: false,
            hint: "the throttle fault needs a writable CPU controller: cgroup v1's \
                   /sys/fs/cgroup/cpu or cgroup v2 with \"cpu\" in cgroup.controllers, as root",
        },
        Check {
            name: "python3 + venv",
            needed_by: "*-celery (a real Celery worker, set up on first use)",
            found: python_found,
            package: Some("python3-venv"),
            required: false,
            hint: "",
        },
    ]
}

/// The CPU controller a throttle fault would use, if this process may write to it.
fn cpu_controller() -> Option<String> {
    use crate::stack::cgroup::Hierarchy;
    let (what, root) = match Hierarchy::detect().ok()? {
        Hierarchy::V1(r) => ("cgroup v1", r),
        Hierarchy::V2(r) => ("cgroup v2", r),
    };
    let writable = nix::unistd::access(&root, nix::unistd::AccessFlags::W_OK).is_ok();
    writable.then(|| format!("{what} at {}", root.display()))
}

/// The `apt-get` line for the missing packages, as `scripts/install-servers.sh` runs it.
pub fn apt_line(checks: &[Check]) -> Option<String> {
    let packages: Vec<&str> = checks
        .iter()
        .filter(|c| c.found.is_none())
        .filter_map(|c| c.package)
        .collect();
    (!packages.is_empty()).then(|| {
        format!(
            "sudo apt-get update && sudo apt-get install -y --no-install-recommends {}",
            packages.join(" ")
        )
    })
}

/// The report, and whether every required check passed.
pub fn render(checks: &[Check]) -> (String, bool) {
    let mut out = String::new();
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in checks {
        let (mark, what) = match &c.found {
            Some(v) => ("ok     ", v.clone()),
            None if c.required => ("MISSING", format!("needed by {}", c.needed_by)),
            None => ("missing", format!("needed by {}", c.needed_by)),
        };
        out.push_str(&format!("{mark}  {:width$}  {what}\n", c.name));
    }
    let ok = checks.iter().all(|c| !c.required || c.found.is_some());
    if let Some(line) = apt_line(checks) {
        out.push_str(&format!(
            "\nTo install what is missing (Debian; scripts/install-servers.sh in a checkout does the servers):\n  {line}\n"
        ));
    }
    for c in checks
        .iter()
        .filter(|c| c.found.is_none() && c.package.is_none())
    {
        out.push_str(&format!("{}: {}\n", c.name, c.hint));
    }
    let all = checks.iter().all(|c| c.found.is_some());
    out.push_str(if all {
        "\nhab can run every built-in topology here.\n"
    } else if ok {
        "\nhab can run every built-in topology here except those that need what is missing.\n"
    } else {
        "\nhab cannot start its stacks here until the servers marked MISSING are installed.\n"
    });
    (out, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &'static str, found: Option<&str>, required: bool) -> Check {
        Check {
            name,
            needed_by: "every run",
            found: found.map(String::from),
            package: Some(name),
            required,
            hint: "",
        }
    }

    #[test]
    fn a_missing_server_fails_and_names_its_package_in_one_apt_line() {
        let checks = [
            check("redis-server", Some("7.0.15"), true),
            check("haproxy", None, true),
            check("iproute2", None, false),
        ];
        let (text, ok) = render(&checks);
        assert!(!ok);
        assert!(text.contains("MISSING  haproxy"), "{text}");
        assert!(text.contains("missing  iproute2"), "{text}");
        assert!(
            text.contains(
                "sudo apt-get update && sudo apt-get install -y --no-install-recommends haproxy iproute2"
            ),
            "{text}"
        );
    }

    #[test]
    fn only_optional_things_missing_still_passes_and_root_gets_a_hint() {
        let mut root = check("root", None, false);
        root.package = None;
        root.hint = "run as root";
        let checks = [check("redis-server", Some("7.0.15"), true), root];
        let (text, ok) = render(&checks);
        assert!(ok, "{text}");
        assert!(apt_line(&checks).is_none());
        assert!(text.contains("root: run as root"), "{text}");
    }

    #[test]
    fn this_machine_is_checked_for_every_part() {
        let names: Vec<&str> = checks().iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "rabbitmq-server",
                "redis-server",
                "redis-sentinel",
                "haproxy",
                "ip",
                "root",
                "cgroup cpu",
                "python3 + venv"
            ]
        );
    }
}
