//! A cell's settings on the live stack: applying the knobs that changed from the previous
//! cell (HAProxy reload, `SENTINEL SET`, `CONFIG SET`; client settings need nothing on
//! the stack, the cell's workers and producer start with them) and reading every knob
//! back before the cell is measured.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::config::Topology;
use crate::config::sweep::{ApplyKind, Design, design::Cell};
use crate::record::sweep::{AppliedRecord, ReadBack};
use crate::stack::StackHandle;
use crate::stack::haproxy::{HaproxyOptions, haproxy_config};
use crate::stack::reconfigure::SentinelOption;

/// Applies the knobs of `cell` that changed from the previous cell, in the design's
/// order; HAProxy is reloaded once for all of its knobs.
pub async fn apply(stack: &mut StackHandle, cell: &Cell) -> Result<Vec<AppliedRecord>> {
    let mut out = Vec::new();
    let mut reloaded: Option<u64> = None;
    for a in &cell.applied {
        let value = cell.values[a.knob].text.clone();
        let took = match a.how {
            ApplyKind::ProxyReload => match reloaded {
                Some(ms) => ms,
                None => {
                    let proxy = cell
                        .topology
                        .proxy
                        .as_ref()
                        .context("the cell's topology has no [proxy] to reload")?;
                    let took = local(stack, a.key)?
                        .reload_proxy(&HaproxyOptions::from_config(proxy))
                        .await?;
                    let ms = took.as_millis() as u64;
                    reloaded = Some(ms);
                    ms
                }
            },
            ApplyKind::SentinelSet => {
                let (option, text) = sentinel_option(a.key, &cell.topology)?;
                local(stack, a.key)?
                    .sentinel_set(option, &text)
                    .await?
                    .as_millis() as u64
            }
            ApplyKind::RedisConfigSet => {
                let (directive, text) = redis_directive(a.key, &cell.topology)?;
                local(stack, a.key)?
                    .redis_config_set(directive, &text)
                    .await?
                    .as_millis() as u64
            }
            // The cell's workers and producer connect with the cell's topology.
            ApplyKind::ReconnectClients => 0,
            ApplyKind::BringUp => bail!(
                "{} = {value} needs a new stack, but cell {} shares its group's stack; \
                 this is a bug in the sweep's grouping",
                a.key,
                cell.index
            ),
        };
        out.push(AppliedRecord {
            key: a.key.to_string(),
            value,
            how: a.how,
            took_ms: took,
        });
    }
    Ok(out)
}

fn local<'a>(stack: &'a mut StackHandle, key: &str) -> Result<&'a mut crate::stack::Stack> {
    stack
        .local_mut()
        .with_context(|| format!("{key} cannot be changed on an external stack"))
}

/// The Sentinel option a knob sets, and its value as `SENTINEL SET` takes it.
fn sentinel_option(key: &str, t: &Topology) -> Result<(SentinelOption, String)> {
    Ok(match key {
        "backend.down_after" => (
            SentinelOption::DownAfter,
            t.backend.down_after.as_millis().to_string(),
        ),
        "backend.failover_timeout" => (
            SentinelOption::FailoverTimeout,
            t.backend.failover_timeout.as_millis().to_string(),
        ),
        "backend.sentinel_quorum" => (
            SentinelOption::Quorum,
            t.backend.sentinel_quorum.to_string(),
        ),
        other => bail!("{other} is not a Sentinel setting"),
    })
}

/// The Redis directive a knob sets, and its value as `CONFIG SET` takes it.
fn redis_directive(key: &str, t: &Topology) -> Result<(&'static str, String)> {
    Ok(match key {
        "backend.min_replicas_to_write" => (
            "min-replicas-to-write",
            t.backend.min_replicas_to_write.to_string(),
        ),
        "backend.min_replicas_max_lag" => (
            "min-replicas-max-lag",
            t.backend.min_replicas_max_lag.as_secs().to_string(),
        ),
        other => bail!("{other} is not a Redis setting"),
    })
}

/// Every knob of `design` as the live stack (or a probe client) reports it, against what
/// `cell` asks for.
pub async fn read_back(
    stack: &StackHandle,
    design: &Design,
    cell: &Cell,
    broker_url: &str,
) -> Result<Vec<ReadBack>> {
    let t = &cell.topology;
    let mut out = Vec::new();
    for (i, k) in design.knobs.iter().enumerate() {
        let key = k.knob.key;
        let expected = cell.values[i].text.clone();
        let mut push = |source: String, found: String, matches: bool| {
            out.push(ReadBack {
                key: key.to_string(),
                source,
                expected: expected.clone(),
                found,
                matches,
            })
        };
        match k.knob.apply {
            ApplyKind::ProxyReload => {
                let s = stack.local().context("no local stack")?;
                let proxy = s.proxy().context("the stack has no HAProxy")?;
                let live = s.proxy_live_settings().await?;
                let pid = live.get("pid").map(|l| l.value.clone()).unwrap_or_default();
                let expected_pid = live
                    .get("expected_pid")
                    .map(|l| l.value.clone())
                    .unwrap_or_default();
                let config = s.proxy_config_text().unwrap_or_default();
                let want = haproxy_config(
                    proxy.layout(),
                    &HaproxyOptions::from_config(t.proxy.as_ref().context("no [proxy]")?),
                );
                let config_ok = config == want && pid == expected_pid;
                match key {
                    "proxy.fall" | "proxy.rise" => {
                        let field = key.trim_start_matches("proxy.");
                        let found = live.get(field).map(|l| l.value.clone()).unwrap_or_default();
                        push(
                            format!("haproxy show stat check_{field} (pid {pid})"),
                            found.clone(),
                            found == expected && config_ok,
                        );
                    }
                    _ => push(
                        format!(
                            "haproxy.cfg of the running HAProxy (show info: pid {pid}; HAProxy does not report {key} itself)"
                        ),
                        if config_ok {
                            expected.clone()
                        } else if pid != expected_pid {
                            format!("pid {pid} answers, not the reloaded {expected_pid}")
                        } else {
                            "haproxy.cfg differs from the cell's".into()
                        },
                        config_ok,
                    ),
                }
            }
            ApplyKind::SentinelSet => {
                let s = stack.local().context("no local stack")?;
                let (option, want) = sentinel_option(key, t)?;
                for l in s.sentinel_live(option).await? {
                    let ok = l.value == want;
                    push(
                        l.source,
                        format!("{} {}", option.name(), l.value),
                        ok,
                    );
                }
            }
            ApplyKind::RedisConfigSet => {
                let s = stack.local().context("no local stack")?;
                let (directive, want) = redis_directive(key, t)?;
                for l in s.redis_config_live(directive).await? {
                    let ok = l.value == want;
                    push(l.source, format!("{directive} {}", l.value), ok);
                }
            }
            ApplyKind::ReconnectClients if key == "broker.heartbeat" => {
                let negotiated = probe_heartbeat(broker_url, t.broker.heartbeat).await?;
                let want = t.broker.heartbeat.as_secs();
                push(
                    "a probe AMQP connection with the cell's client settings (negotiated heartbeat)".into(),
                    format!("{negotiated} s"),
                    u64::from(negotiated) == want,
                );
            }
            ApplyKind::ReconnectClients => push(
                "the cell's topology file, given to its workers and producer (a client setting no server reports)".into(),
                expected.clone(),
                true,
            ),
            ApplyKind::BringUp => {
                let found = brought_up_value(stack, key)?;
                let ok = found == expected;
                push("the stack as brought up".into(), found, ok);
            }
        }
    }
    Ok(out)
}

/// What a stack that was brought up has for a bring-up knob.
fn brought_up_value(stack: &StackHandle, key: &str) -> Result<String> {
    let s = stack.local().context("no local stack")?;
    let o = s.options();
    Ok(match key {
        "broker.queue" => format!("{:?}", o.broker_queue).to_lowercase(),
        "broker.nodes" => o.broker_nodes.to_string(),
        "backend.replicas" => o.backend_replicas.to_string(),
        "backend.sentinels" => o.sentinels.as_ref().map_or(0, |s| s.count).to_string(),
        other => bail!("{other} is not a bring-up setting"),
    })
}

/// The heartbeat the broker agrees to with a client asking for `asked` (RabbitMQ takes
/// the smaller of both, 0 meaning none), read from a probe connection.
async fn probe_heartbeat(url: &str, asked: Duration) -> Result<u16> {
    let conn = crate::broker::connect(url, asked, "hab-sweep-probe").await?;
    let negotiated = conn.configuration().heartbeat();
    let _ = conn.close(200, "probe done".into()).await;
    Ok(negotiated)
}
