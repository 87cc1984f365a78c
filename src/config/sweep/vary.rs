//! Knob values: `--vary KEY=V1,V2,…` read into typed TOML values, and values applied to a
//! topology generically — the topology serialized to a `toml::Value`, the path set, the
//! result deserialized back and validated — so that a sweep accepts exactly what a
//! topology file would, and says why not in the same words.

use serde::Serialize;

use super::knob::{self, Knob, ValueKind};
use crate::config::{Diagnostic, Topology};

/// One value of a knob, as a topology file writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KnobValue {
    /// The value as written back in a topology file: `250ms`, `2`, `quorum`; `absent` for
    /// an optional field that is not set.
    pub text: String,
    /// The TOML value (`None`: the optional field is absent).
    #[serde(skip)]
    pub toml: Option<toml::Value>,
}

impl KnobValue {
    fn of(toml: Option<toml::Value>) -> KnobValue {
        let text = match &toml {
            None => "absent".to_string(),
            Some(toml::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        KnobValue { text, toml }
    }
}

/// A knob with the values a sweep gives it and the topology's own (the reference).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariedKnob {
    /// The knob.
    pub knob: &'static Knob,
    /// Its value in the swept topology: the reference cell's.
    pub current: KnobValue,
    /// The values to measure, in the order given, each written as the topology writes it.
    pub values: Vec<KnobValue>,
}

impl VariedKnob {
    /// The distinct values a cell may take: the given ones, plus the current one if it is
    /// not among them (the reference cell uses it).
    pub fn levels(&self) -> Vec<&KnobValue> {
        let mut out: Vec<&KnobValue> = self.values.iter().collect();
        if !out.contains(&&self.current) {
            out.push(&self.current);
        }
        out
    }

    /// The given values other than the current one (the one-at-a-time cells).
    pub fn others(&self) -> Vec<&KnobValue> {
        self.values.iter().filter(|v| **v != self.current).collect()
    }
}

/// Splits `KEY=V1,V2,…`. Errors say what the flag looks like.
pub fn split_vary(arg: &str) -> Result<(&str, Vec<&str>), String> {
    let Some((key, list)) = arg.split_once('=') else {
        return Err(format!(
            "expected KEY=V1,V2,… (e.g. proxy.fall=1,2,3), got {arg:?}: there is no '='"
        ));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err("the knob's key is missing before '=' (e.g. proxy.fall=1,2,3)".into());
    }
    let values: Vec<&str> = list.split(',').map(str::trim).collect();
    if values.iter().any(|v| v.is_empty()) {
        return Err(format!(
            "{key}: an empty value in {list:?}; give values separated by single commas, \
             e.g. {key}=V1,V2"
        ));
    }
    Ok((key, values))
}

/// Reads `--vary` text as the TOML type the knob takes (durations and words as strings).
pub fn value_from_text(knob: &Knob, text: &str) -> Result<toml::Value, String> {
    match knob.value {
        ValueKind::Duration | ValueKind::Word => Ok(toml::Value::String(text.to_string())),
        ValueKind::Whole => text.parse::<i64>().map(toml::Value::Integer).map_err(|_| {
            format!(
                "{} = {text}: not a whole number; {} takes {}",
                knob.key,
                knob.key,
                knob.value.example()
            )
        }),
        ValueKind::Flag => text.parse::<bool>().map(toml::Value::Boolean).map_err(|_| {
            format!(
                "{} = {text}: not true or false; {} takes {}",
                knob.key,
                knob.key,
                knob.value.example()
            )
        }),
    }
}

/// The topology as a TOML table, with `[clients]` written out even when it is the default
/// (a topology file leaves it out then), so its fields have a current value to vary.
fn to_table(topology: &Topology) -> toml::Table {
    let mut t =
        toml::Table::try_from(topology).expect("a topology always serializes to a TOML table");
    if !t.contains_key("clients") {
        let clients =
            toml::Value::try_from(topology.clients).expect("[clients] serializes to a table");
        t.insert("clients".into(), clients);
    }
    t
}

/// The value at a dotted path of a table (None: absent).
fn get<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let (section, field) = key.split_once('.')?;
    table.get(section)?.as_table()?.get(field)
}

/// The knob's value in `topology` (the reference cell's).
pub fn current(topology: &Topology, knob: &Knob) -> KnobValue {
    KnobValue::of(get(&to_table(topology), knob.key).cloned())
}

/// `topology` with each `(key, value)` set, deserialized and validated; an error lists
/// what the schema or `validate()` said, located by the topology field.
pub fn apply(topology: &Topology, values: &[(&str, &KnobValue)]) -> Result<Topology, String> {
    let mut table = to_table(topology);
    for (key, value) in values {
        let (section, field) = key
            .split_once('.')
            .ok_or_else(|| format!("{key} is not a section.field path"))?;
        let entry = table
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(t) = entry else {
            return Err(format!("{section} is not a table in the topology"));
        };
        match &value.toml {
            Some(v) => t.insert(field.to_string(), v.clone()),
            None => t.remove(field),
        };
    }
    let changed: Topology = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().trim_end().to_string())?;
    let problems = changed.validate();
    if problems.is_empty() {
        Ok(changed)
    } else {
        Err(problems
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// Checks one knob and its values against `topology`: a known key, a knob this topology
/// can vary, values of the right type and range (as `validate()` sees them), no value
/// twice, and at least one value other than the current one. Every problem becomes a
/// diagnostic located at `origin` (e.g. `--vary proxy.fall=0,x`, or
/// `knob[1] ("proxy.fall")` in a sweep file) naming the key, the value and what is
/// allowed.
pub fn resolve(
    topology: &Topology,
    key: &str,
    values: &[toml::Value],
    origin: &str,
) -> Result<VariedKnob, Vec<Diagnostic>> {
    let knob = usable(topology, key, origin)?;
    let mut out = Vec::new();
    let values = values.iter().cloned().map(Ok).collect();
    let resolved = check_values(topology, knob, values, origin, &mut out);
    finish(topology, knob, resolved, origin, out)
}

/// Reads one `--vary KEY=V1,V2,…` against `topology`; diagnostics are located at the flag
/// as given.
pub fn resolve_flag(topology: &Topology, arg: &str) -> Result<VariedKnob, Vec<Diagnostic>> {
    let origin = format!("--vary {arg}");
    let (key, texts) = split_vary(arg).map_err(|m| vec![Diagnostic::new(&origin, m)])?;
    let knob = usable(topology, key, &origin)?;
    let values = texts.iter().map(|t| value_from_text(knob, t)).collect();
    let mut out = Vec::new();
    let resolved = check_values(topology, knob, values, &origin, &mut out);
    finish(topology, knob, resolved, &origin, out)
}

/// The knob named `key`, if it exists and `topology` can vary it.
fn usable(topology: &Topology, key: &str, origin: &str) -> Result<&'static Knob, Vec<Diagnostic>> {
    let Some(knob) = knob::find(key) else {
        return Err(vec![Diagnostic::new(
            origin,
            format!(
                "unknown knob {key:?}; a sweep varies one of: {}",
                knob::keys()
            ),
        )]);
    };
    match knob.unavailable(topology) {
        Some(why) => Err(vec![Diagnostic::new(
            origin,
            format!("{key} cannot be varied: {why}"),
        )]),
        None => Ok(knob),
    }
}

/// Each value applied to `topology` alone, in the order given; the accepted ones as the
/// topology writes them. A value that is already an error (`--vary` text of the wrong
/// type) is reported in its place.
fn check_values(
    topology: &Topology,
    knob: &'static Knob,
    values: Vec<Result<toml::Value, String>>,
    origin: &str,
    out: &mut Vec<Diagnostic>,
) -> Vec<KnobValue> {
    let key = knob.key;
    let mut resolved: Vec<KnobValue> = Vec::new();
    for v in values {
        let given = match v {
            Ok(v) => KnobValue::of(Some(v)),
            Err(m) => {
                out.push(Diagnostic::new(origin, m));
                continue;
            }
        };
        match apply(topology, &[(key, &given)]) {
            Err(why) => {
                // validate() locates the problem at the knob's own path: said once.
                let why = why.strip_prefix(&format!("{key}: ")).unwrap_or(&why);
                out.push(Diagnostic::new(
                    origin,
                    format!("{key} = {}: {why}", given.text),
                ))
            }
            Ok(t) => {
                // Written back as the topology writes it: 0.25s and 250ms are one value.
                let value = current(&t, knob);
                if resolved.contains(&value) {
                    out.push(Diagnostic::new(
                        origin,
                        format!(
                            "{key} = {}: given twice (as {}); list each value once",
                            given.text, value.text
                        ),
                    ));
                } else {
                    resolved.push(value);
                }
            }
        }
    }
    resolved
}

/// The varied knob, or every problem found; a list that is empty or holds only the
/// topology's own value is one.
fn finish(
    topology: &Topology,
    knob: &'static Knob,
    values: Vec<KnobValue>,
    origin: &str,
    mut out: Vec<Diagnostic>,
) -> Result<VariedKnob, Vec<Diagnostic>> {
    let current = current(topology, knob);
    if out.is_empty() && values.iter().all(|v| *v == current) {
        out.push(Diagnostic::new(
            origin,
            format!(
                "{}: {}; give a value other than the topology's own ({}) to compare it with",
                knob.key,
                if values.is_empty() {
                    "no values"
                } else {
                    "only the topology's own value"
                },
                current.text
            ),
        ));
    }
    if out.is_empty() {
        Ok(VariedKnob {
            knob,
            current,
            values,
        })
    } else {
        Err(out)
    }
}
