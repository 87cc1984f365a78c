//! `recommended.toml`: the swept topology's own text with each knob set to the
//! recommended cell's value, edited in place (`toml_edit`) so every comment and the layout
//! survive. A changed line says what the change bought in a comment of its own; a comment
//! the line had is kept on the line above it. When the recommended cell is the reference,
//! the text is unchanged under a header comment saying so.

use anyhow::{Context, Result, anyhow, bail};
use toml_edit::{DocumentMut, Item};

use super::SweepAnalysis;
use super::cell::CellResult;
use super::pareto::pct;
use crate::config::sweep::knob;
use crate::config::sweep::vary::value_from_text;
use crate::metrics::stats::fmt_ms;

/// A value written by a topology file for an optional field that is not set.
const ABSENT: &str = "absent";

/// A knob value as TOML (`"250ms"`, `2`, `true`); `None` for [`ABSENT`].
fn typed(key: &str, text: &str) -> Result<Option<toml::Value>> {
    if text == ABSENT {
        return Ok(None);
    }
    let k = knob::find(key).ok_or_else(|| anyhow!("{key} is not a knob hab knows"))?;
    value_from_text(k, text).map(Some).map_err(|e| anyhow!(e))
}

fn edit_value(v: &toml::Value) -> Result<toml_edit::Value> {
    Ok(match v {
        toml::Value::String(s) => s.as_str().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Float(f) => (*f).into(),
        other => bail!("a knob value is a string, a number or true/false, not {other}"),
    })
}

/// `"250ms"` as a topology file writes it, `not set` for an absent one.
fn shown(key: &str, text: &str) -> String {
    match typed(key, text) {
        Ok(Some(v)) => v.to_string(),
        Ok(None) => "not set".into(),
        Err(_) => text.to_string(),
    }
}

/// What the recommended cell bought against the reference, for the changed lines.
fn bought(best: &CellResult, reference: Option<&CellResult>) -> String {
    let h = |c: Option<&CellResult>| {
        c.and_then(|c| c.headline.as_ref()).map_or_else(
            || "–".to_string(),
            |h| h.switch_ms.map_or_else(|| "no switch".into(), fmt_ms),
        )
    };
    let ff = |c: Option<&CellResult>| {
        c.and_then(|c| c.false_failovers())
            .map_or_else(|| "–".to_string(), |n| n.to_string())
    };
    let cost = |c: Option<&CellResult>| {
        c.and_then(|c| c.cost_throughput_pct)
            .map_or_else(|| "–".to_string(), pct)
    };
    format!(
        "median switch {} → {}, false failovers {} → {}, cost {} → {}",
        h(reference),
        h(Some(best)),
        ff(reference),
        ff(Some(best)),
        cost(reference),
        cost(Some(best))
    )
}

/// `source` (the swept topology's text) with the recommended cell's values of `a`. The
/// reference, or no recommendation at all, gives `source` under a header comment.
pub fn recommended_toml(a: &SweepAnalysis, source: &str) -> Result<String> {
    let best = a
        .recommendation
        .as_ref()
        .and_then(|r| a.cell(r.cell))
        .filter(|c| c.index != 0);
    let Some(best) = best else {
        let why = match &a.recommendation {
            Some(_) => {
                "the reference cell (this topology as written) was the best setting measured"
            }
            None => "no cell was measured, so there is nothing to recommend",
        };
        return Ok(format!(
            "# hab sweep of {}: {why}; this file is the topology unchanged.\n{source}",
            a.topology_file
        ));
    };
    let mut doc: DocumentMut = source
        .parse()
        .with_context(|| format!("the topology text of {} is not TOML", a.topology_file))?;
    let note = bought(best, a.reference());
    for (k, value) in a.knobs.iter().zip(&best.values) {
        if *value == k.current {
            continue;
        }
        let (section, field) = k
            .key
            .split_once('.')
            .ok_or_else(|| anyhow!("{} is not a section.field path", k.key))?;
        let comment = format!(" # hab sweep: was {}; {note}", shown(&k.key, &k.current));
        let table = doc
            .entry(section)
            .or_insert_with(toml_edit::table)
            .as_table_like_mut()
            .ok_or_else(|| anyhow!("{section} is not a table in {}", a.topology_file))?;
        let Some(new) = typed(&k.key, value)? else {
            // The recommended value is the field left out: its line goes.
            table.remove(field);
            continue;
        };
        let mut new = edit_value(&new)?;
        match table.get_key_value_mut(field) {
            Some((mut key, item)) => {
                let old = item
                    .as_value()
                    .map(|v| v.decor().clone())
                    .unwrap_or_default();
                let own = old
                    .suffix()
                    .and_then(|s| s.as_str())
                    .map(str::trim)
                    .filter(|s| s.starts_with('#'))
                    .map(str::to_string);
                if let Some(own) = own {
                    // The line's own comment moves above it, indented as the key.
                    let prefix = key
                        .leaf_decor()
                        .prefix()
                        .and_then(|p| p.as_str())
                        .unwrap_or("")
                        .to_string();
                    let indent: String = prefix
                        .rsplit('\n')
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take_while(|c| c.is_whitespace())
                        .collect();
                    key.leaf_decor_mut()
                        .set_prefix(format!("{prefix}{own}\n{indent}"));
                }
                new.decor_mut().set_prefix(
                    old.prefix()
                        .and_then(|p| p.as_str())
                        .unwrap_or(" ")
                        .to_string(),
                );
                new.decor_mut().set_suffix(comment);
                *item = Item::Value(new);
            }
            None => {
                new.decor_mut().set_prefix(" ");
                new.decor_mut().set_suffix(comment);
                table.insert(field, Item::Value(new));
            }
        }
    }
    Ok(doc.to_string())
}
