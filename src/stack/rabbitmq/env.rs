//! The environment every node of one broker and every call of RabbitMQ's CLIs for it
//! share (epmd port, HOME with the cookie, CLI distribution ports), and running the CLIs
//! in it.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{CTL_TIMEOUT, RABBITMQCTL};
use crate::stack::StackError;
use crate::stack::netns::NsPlace;

/// Environment shared by every node of one broker and every `rabbitmqctl` call for it.
#[derive(Debug, Clone)]
pub struct ErlangEnv {
    /// `HOME`, holding `.erlang.cookie` (mode 0400).
    pub home: PathBuf,
    /// The private epmd's port (`ERL_EPMD_PORT`).
    pub epmd_port: u16,
    /// First port `rabbitmqctl` may use for its own distribution listener.
    pub ctl_dist_port_min: u16,
    /// Last port `rabbitmqctl` may use for its own distribution listener.
    pub ctl_dist_port_max: u16,
    /// An empty `RABBITMQ_CONF_ENV_FILE`, so /etc/rabbitmq/rabbitmq-env.conf is not read.
    pub conf_env_file: PathBuf,
    /// Erlang long names (`RABBITMQ_USE_LONGNAME=true`): the nodes are named after their
    /// namespace addresses.
    pub longnames: bool,
    /// Node name → the network namespace it runs in; a CLI call for such a node runs
    /// inside that namespace. Empty on loopback.
    pub places: BTreeMap<String, NsPlace>,
}

impl ErlangEnv {
    /// The shared variables, in a stable order.
    pub fn vars(&self) -> Vec<(&'static str, OsString)> {
        let mut vars = vec![
            ("HOME", self.home.clone().into_os_string()),
            ("ERL_EPMD_PORT", self.epmd_port.to_string().into()),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
            (
                "RABBITMQ_CTL_DIST_PORT_MIN",
                self.ctl_dist_port_min.to_string().into(),
            ),
            (
                "RABBITMQ_CTL_DIST_PORT_MAX",
                self.ctl_dist_port_max.to_string().into(),
            ),
            (
                "RABBITMQ_CONF_ENV_FILE",
                self.conf_env_file.clone().into_os_string(),
            ),
        ];
        if self.longnames {
            vars.push(("RABBITMQ_USE_LONGNAME", "true".into()));
        }
        vars
    }

    /// Clears every inherited `RABBITMQ_*`/`ERL_*` variable from `cmd` (a stray
    /// `RABBITMQ_ALLOW_INPUT` kills a node with stdin at /dev/null) and sets the shared ones.
    pub fn apply(&self, cmd: &mut Command) {
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("RABBITMQ_") || k.starts_with("ERL_") {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(self.vars());
    }

    /// A `rabbitmqctl -n <node>` command with this environment, ready for arguments. Run it
    /// with stdin at /dev/null (it reads stdin).
    pub fn rabbitmqctl(&self, nodename: &str) -> Command {
        self.cli(RABBITMQCTL, nodename)
    }

    /// A `<program> -n <node>` command for one of RabbitMQ's CLIs ([`RABBITMQCTL`],
    /// [`RABBITMQ_QUEUES`](super::RABBITMQ_QUEUES)) with this environment.
    pub fn cli(&self, program: &str, nodename: &str) -> Command {
        let mut cmd = Command::new(program);
        self.apply(&mut cmd);
        cmd.args(["-n", nodename]);
        cmd
    }
}

/// Runs `rabbitmqctl -n <nodename> <args>` with `env` (stdin /dev/null, killed after
/// `CTL_TIMEOUT`, 60 s) and returns its stdout; a non-zero exit is an error with stderr.
pub async fn run_ctl(env: &ErlangEnv, nodename: &str, args: &[&str]) -> Result<String, StackError> {
    run_cli(RABBITMQCTL, env, nodename, args).await
}

/// Runs one of RabbitMQ's CLIs as `<program> -n <nodename> <args>`; see [`run_ctl`].
pub async fn run_cli(
    program: &str,
    env: &ErlangEnv,
    nodename: &str,
    args: &[&str],
) -> Result<String, StackError> {
    let mut cmd = env.cli(program, nodename);
    if let Some(place) = env.places.get(nodename) {
        // Inside the node's namespace: its epmd and the node itself are reachable there
        // (from the root namespace there is no epmd, and the CLI would start one); named
        // after that namespace's address, so the other nodes can answer it too.
        place.enter_as_host_on_spawn(&mut cmd)?;
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let name = Path::new(program)
        .file_name()
        .map_or(program.into(), |n| n.to_string_lossy());
    let what = || format!("{name} -n {nodename} {}", args.join(" "));
    let output = match tokio::time::timeout(CTL_TIMEOUT, cmd.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(source)) => {
            return Err(StackError::SpawnFailed {
                program: program.into(),
                source,
            });
        }
        Err(_) => {
            return Err(StackError::Control {
                what: what(),
                detail: format!("no answer within {} s", CTL_TIMEOUT.as_secs()),
            });
        }
    };
    // The CLI's Erlang helpers (erl_child_setup) are orphans of hab now.
    crate::stack::process::reap_orphans();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(StackError::Control {
            what: what(),
            detail: format!("{} {}{}", output.status, stderr.trim(), stdout.trim()),
        })
    }
}

/// Writes a fresh Erlang cookie (mode 0400) into `home`.
pub(super) fn write_cookie(home: &Path) -> Result<(), StackError> {
    let path = home.join(".erlang.cookie");
    let cookie = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(&path)
        .and_then(|mut f| f.write_all(cookie.as_bytes()))
        .map_err(|source| StackError::Io {
            what: format!("writing {}", path.display()),
            source,
        })
}
