//! Changing a running stack's settings without bringing it up again (`hab sweep`), and
//! reading the live settings back: HAProxy reloaded seamlessly with new options,
//! `SENTINEL SET` on every Sentinel, `CONFIG SET` on every Redis data node.
//!
//! Each change is kept for later restarts of the server it changed: HAProxy's config file
//! is rewritten, a Sentinel rewrites its own config file on `SENTINEL SET`, a Redis node's
//! start-up directives are replaced.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::haproxy::{self, HaproxyOptions};
use super::sentinel;
use super::{Stack, StackError};

/// One live setting as a server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSetting {
    /// Where it was read, e.g. `sentinel 127.0.0.1:26379 SENTINEL MASTER`.
    pub source: String,
    /// The value in the server's own unit, e.g. `1000` (milliseconds).
    pub value: String,
}

/// A Sentinel option `SENTINEL SET` changes and `SENTINEL MASTER` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentinelOption {
    /// `down-after-milliseconds`.
    DownAfter,
    /// `failover-timeout` (milliseconds).
    FailoverTimeout,
    /// `quorum`.
    Quorum,
}

impl SentinelOption {
    /// Its name in `SENTINEL SET` and `SENTINEL MASTER`.
    pub fn name(self) -> &'static str {
        match self {
            SentinelOption::DownAfter => "down-after-milliseconds",
            SentinelOption::FailoverTimeout => "failover-timeout",
            SentinelOption::Quorum => "quorum",
        }
    }
}

impl Stack {
    /// Reloads HAProxy with `opts` (see [`haproxy::Haproxy::reload`]); returns how long it
    /// took until HAProxy was settled again.
    pub async fn reload_proxy(&mut self, opts: &HaproxyOptions) -> Result<Duration, StackError> {
        let started = Instant::now();
        let proxy = self.proxy.as_mut().ok_or_else(|| StackError::Control {
            what: "reloading HAProxy".into(),
            detail: "this stack has no HAProxy".into(),
        })?;
        proxy.reload(opts).await?;
        self.opts.proxy = Some(proxy.options().clone());
        Ok(started.elapsed())
    }

    /// What the running HAProxy reports of its checks: `rise` and `fall` of every server
    /// (`show stat`: `check_rise`, `check_fall`), and the pid answering the stats socket
    /// (`show info`), which must be the process started with the current config. HAProxy
    /// reports neither `inter` nor its timeouts; those are as the config file it was
    /// started with says ([`Stack::proxy_config_text`]).
    pub async fn proxy_live_settings(&self) -> Result<BTreeMap<String, LiveSetting>, StackError> {
        let proxy = self.proxy.as_ref().ok_or_else(|| StackError::Control {
            what: "reading HAProxy's settings".into(),
            detail: "this stack has no HAProxy".into(),
        })?;
        let control = |detail: String| StackError::Control {
            what: "reading HAProxy's settings".into(),
            detail,
        };
        let stat = haproxy::stats_command(proxy.stats_socket(), "show stat")
            .await
            .map_err(control)?;
        let info = haproxy::stats_command(proxy.stats_socket(), "show info")
            .await
            .map_err(control)?;
        let mut out = BTreeMap::new();
        for (field, value) in check_settings(&stat).map_err(control)? {
            out.insert(
                field.clone(),
                LiveSetting {
                    source: "haproxy show stat".into(),
                    value,
                },
            );
        }
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("Pid: "))
            .map(str::trim)
            .ok_or_else(|| control(format!("no Pid in show info: {info:?}")))?;
        out.insert(
            "pid".into(),
            LiveSetting {
                source: "haproxy show info".into(),
                value: pid.to_string(),
            },
        );
        out.insert(
            "expected_pid".into(),
            LiveSetting {
                source: "hab".into(),
                value: super::server::Server::pid(proxy).as_raw().to_string(),
            },
        );
        Ok(out)
    }

    /// The config file the running HAProxy was started with (or reloaded to).
    pub fn proxy_config_text(&self) -> Option<String> {
        let proxy = self.proxy.as_ref()?;
        std::fs::read_to_string(super::server::Server::shell(proxy).config_path()).ok()
    }

    /// `SENTINEL SET <master> <option> <value>` on every Sentinel (all must accept).
    pub async fn sentinel_set(
        &mut self,
        option: SentinelOption,
        value: &str,
    ) -> Result<Duration, StackError> {
        let started = Instant::now();
        let name = self.sentinel_master_name("SENTINEL SET")?;
        for port in self.sentinel_ports() {
            let v = super::resp::query(port, &["SENTINEL", "SET", &name, option.name(), value])
                .await
                .map_err(|detail| StackError::Control {
                    what: format!(
                        "SENTINEL SET {name} {} {value} on the Sentinel at port {port}",
                        option.name()
                    ),
                    detail,
                })?;
            let ok = matches!(v, redis::Value::Okay)
                || super::resp::text(&v).is_some_and(|t| t.eq_ignore_ascii_case("OK"));
            if !ok {
                return Err(StackError::Control {
                    what: format!(
                        "SENTINEL SET {name} {} {value} on the Sentinel at port {port}",
                        option.name()
                    ),
                    detail: format!("answered {v:?}"),
                });
            }
        }
        if let Some(s) = self.opts.sentinels.as_mut() {
            match option {
                SentinelOption::DownAfter => {
                    if let Ok(ms) = value.parse() {
                        s.down_after = Duration::from_millis(ms);
                    }
                }
                SentinelOption::FailoverTimeout => {
                    if let Ok(ms) = value.parse() {
                        s.failover_timeout = Duration::from_millis(ms);
                    }
                }
                SentinelOption::Quorum => {
                    if let Ok(q) = value.parse() {
                        s.quorum = q;
                    }
                }
            }
        }
        Ok(started.elapsed())
    }

    /// `option` as every Sentinel reports it (`SENTINEL MASTER`), one entry per Sentinel.
    pub async fn sentinel_live(
        &self,
        option: SentinelOption,
    ) -> Result<Vec<LiveSetting>, StackError> {
        let name = self.sentinel_master_name("SENTINEL MASTER")?;
        let mut out = Vec::new();
        for port in self.sentinel_ports() {
            let fields = sentinel::master_fields(port, &name)
                .await
                .map_err(|detail| StackError::Control {
                    what: format!("SENTINEL MASTER {name} on the Sentinel at port {port}"),
                    detail,
                })?;
            let value = fields
                .get(option.name())
                .cloned()
                .ok_or_else(|| StackError::Control {
                    what: format!("SENTINEL MASTER {name} on the Sentinel at port {port}"),
                    detail: format!("no field {}", option.name()),
                })?;
            out.push(LiveSetting {
                source: format!("sentinel port {port} SENTINEL MASTER"),
                value,
            });
        }
        Ok(out)
    }

    /// `CONFIG SET <directive> <value>` on every Redis data node, kept for restarts.
    pub async fn redis_config_set(
        &mut self,
        directive: &str,
        value: &str,
    ) -> Result<Duration, StackError> {
        let started = Instant::now();
        for node in self.backend.nodes_mut() {
            node.set_directive(directive, value).await?;
        }
        Ok(started.elapsed())
    }

    /// `directive` as every Redis data node reports it (`CONFIG GET`).
    pub async fn redis_config_live(&self, directive: &str) -> Result<Vec<LiveSetting>, StackError> {
        let mut out = Vec::new();
        for node in self.backend.nodes() {
            out.push(LiveSetting {
                source: format!("redis {} CONFIG GET", node.name()),
                value: node.get_directive(directive).await?,
            });
        }
        Ok(out)
    }

    fn sentinel_ports(&self) -> Vec<u16> {
        self.backend.sentinels().iter().map(|s| s.port()).collect()
    }

    fn sentinel_master_name(&self, what: &str) -> Result<String, StackError> {
        self.backend
            .master_name()
            .map(str::to_string)
            .ok_or_else(|| StackError::Control {
                what: what.into(),
                detail: "this stack has no Sentinels".into(),
            })
    }
}

/// `check_rise` and `check_fall` from `show stat` CSV: the same on every server (hab
/// writes one `check` line for all), else an error naming the one that differs.
pub fn check_settings(show_stat: &str) -> Result<Vec<(String, String)>, String> {
    let mut lines = show_stat.lines();
    let header = lines
        .next()
        .ok_or("empty show stat")?
        .trim_start_matches("# ");
    let cols: Vec<&str> = header.split(',').collect();
    let col = |name: &str| {
        cols.iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("show stat has no {name} column"))
    };
    let (sv, rise, fall) = (col("svname")?, col("check_rise")?, col("check_fall")?);
    let mut seen: Option<(String, String, String)> = None;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let (Some(name), Some(r), Some(fa)) = (f.get(sv), f.get(rise), f.get(fall)) else {
            continue;
        };
        if r.is_empty() || *name == "FRONTEND" || *name == "BACKEND" {
            continue;
        }
        match &seen {
            None => seen = Some((name.to_string(), r.to_string(), fa.to_string())),
            Some((first, r0, f0)) if r0 != r || f0 != fa => {
                return Err(format!(
                    "servers disagree: {first} has rise {r0} fall {f0}, {name} has rise {r} fall {fa}"
                ));
            }
            Some(_) => {}
        }
    }
    let (_, r, f) = seen.ok_or("show stat lists no checked server")?;
    Ok(vec![("rise".into(), r), ("fall".into(), f)])
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "# pxname,svname,status,check_rise,check_fall\n\
                        be,FRONTEND,OPEN,,\n\
                        r,r0,UP,2,3\n\
                        r,r1,DOWN,2,3\n\
                        r,BACKEND,UP,,\n";

    #[test]
    fn rise_and_fall_are_read_from_show_stat() {
        assert_eq!(
            check_settings(STAT).unwrap(),
            vec![
                ("rise".to_string(), "2".to_string()),
                ("fall".to_string(), "3".to_string())
            ]
        );
    }

    #[test]
    fn servers_that_disagree_or_no_server_are_errors() {
        let e = check_settings(&STAT.replace("r,r1,DOWN,2,3", "r,r1,DOWN,2,1")).unwrap_err();
        assert!(e.contains("r0") && e.contains("r1"), "{e}");
        let e =
            check_settings("# pxname,svname,status,check_rise,check_fall\nbe,FRONTEND,OPEN,,\n")
                .unwrap_err();
        assert!(e.contains("no checked server"), "{e}");
        assert!(
            check_settings("# pxname,status\n")
                .unwrap_err()
                .contains("svname")
        );
    }
}
