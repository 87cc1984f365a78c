//! Celery protocol v2 messages and Redis result-backend records, byte-compatible with
//! Celery 5.7 / kombu 5.7 (see `notes/celery-wire.md`).
//!
//! # Layout
//! - [`message`]: the task message (AMQP body + properties + header table): [`encode`] for
//!   the load generator, [`decode`] for hab's worker, with a [`DecodeError`] per malformed
//!   shape (including the three that crash a real Celery worker).
//! - [`result`]: the `celery-task-meta-<id>` record: [`ResultRecord`] for the worker,
//!   [`ResultRecord::parse`] for the result watcher.
//! - [`side_channel`]: the workers' execution side channel (one line per start, finish,
//!   reject, …, in files of the run directory), written by hab's worker, read into the
//!   ledger.
//! - This file: what both share — Python's `json.dumps` output (`", "` and `": "`
//!   separators, `ensure_ascii`, float `repr`) and Python's `repr` of JSON values (for the
//!   `argsrepr`/`kwargsrepr` headers).
//!
//! Python's `dict` keeps insertion order; `serde_json::Map` (without `preserve_order`) is
//! sorted by key. Objects hab builds itself are written in Celery's order by hand; user
//! `kwargs` come out sorted, which Celery accepts like any other order.

pub mod message;
pub mod result;
pub mod side_channel;

pub use message::{DecodeError, DecodedTask, TaskMessage, decode, encode};
pub use result::{ParsedResult, ResultParseError, ResultRecord, TaskStatus, result_key};

use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::io;

/// Celery's default queue, exchange and routing key.
pub const CELERY_QUEUE: &str = "celery";

/// A `serde_json` formatter that writes what Python's `json.dumps` writes with its
/// defaults (which kombu uses): `", "` between items, `": "` after keys, every character
/// outside printable ASCII escaped as `\uXXXX` (`ensure_ascii=True`), floats as `repr`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PyFormatter;

/// Python's item separator `", "`, written before every array item and object key but
/// the first.
fn item_separator<W: ?Sized + io::Write>(writer: &mut W, first: bool) -> io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

impl serde_json::ser::Formatter for PyFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item_separator(writer, first)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        item_separator(writer, first)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        let mut s = String::with_capacity(24);
        py_float_repr(value, true, &mut s);
        writer.write_all(s.as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // serde_json has already escaped `"`, `\` and control characters; what is left to do
        // for ensure_ascii is DEL and everything beyond ASCII.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (c as u32) < 0x7f {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Appends `value` as Python's `json.dumps` would write it.
pub(crate) fn write_py_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let mut ser = serde_json::Serializer::with_formatter(out, PyFormatter);
    value
        .serialize(&mut ser)
        .expect("serializing JSON into memory cannot fail");
}

/// Appends Python's `repr(value)` (or, in JSON mode, `json.dumps(value)`) of a float.
///
/// Python prints the shortest digits that round-trip (as Rust does), in fixed notation with
/// at least one decimal when the decimal exponent is in `-5..16`, else as `1.5e+16`/`1e-05`.
pub(crate) fn py_float_repr(value: f64, json: bool, out: &mut String) {
    if value.is_nan() {
        out.push_str(if json { "NaN" } else { "nan" });
        return;
    }
    if value.is_infinite() {
        if value < 0.0 {
            out.push('-');
        }
        out.push_str(if json { "Infinity" } else { "inf" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e-7", "1e16", "0e0".
    let mut sci = String::with_capacity(24);
    write!(sci, "{value:e}").expect("formatting into a String cannot fail");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let (lead, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if negative {
        out.push('-');
    }
    // Position of the decimal point relative to the digit string `lead frac`.
    let decpt = exp + 1;
    if decpt <= -4 || decpt > 16 {
        out.push_str(lead);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        write!(out, "e{sign}{:02}", exp.unsigned_abs()).expect("formatting into a String");
    } else if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
        out.push_str(lead);
        out.push_str(frac);
    } else {
        let digits = [lead, frac].concat();
        let decpt = decpt as usize; // 1..=16
        if decpt >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', decpt - digits.len()));
            out.push_str(".0");
        } else {
            out.push_str(&digits[..decpt]);
            out.push('.');
            out.push_str(&digits[decpt..]);
        }
    }
}

/// Appends Python's `repr()` of a string: single quotes unless the string contains `'`
/// and no `"`; `\\`, `\n`, `\r`, `\t` and the chosen quote escaped; other ASCII control
/// characters, DEL and the non-printable Latin-1 characters as `\xNN`; everything else
/// kept as is (Python would also escape non-printable characters beyond Latin-1, such as
/// U+200B; hab's own arguments never contain them).
pub(crate) fn py_str_repr(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                write!(out, "\\x{:02x}", c as u32).expect("formatting into a String");
            }
            // Python also escapes non-printable non-ASCII (e.g. U+0080..U+009F, U+00AD).
            c if ('\u{80}'..='\u{a0}').contains(&c) || c == '\u{ad}' => {
                write!(out, "\\x{:02x}", c as u32).expect("formatting into a String");
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

/// Appends Python's `repr()` of the value JSON decodes to (`None`, `True`, `[1, 'a']`,
/// `{'k': 1.0}`).
pub(crate) fn py_value_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                write!(out, "{i}").expect("formatting into a String");
            } else if let Some(u) = n.as_u64() {
                write!(out, "{u}").expect("formatting into a String");
            } else if let Some(f) = n.as_f64() {
                py_float_repr(f, false, out);
            }
        }
        Value::String(s) => py_str_repr(s, out),
        Value::Array(items) => {
            out.push('[');
            py_items_repr(items, out);
            out.push(']');
        }
        Value::Object(map) => py_dict_repr(map, out),
    }
}

/// Appends the items of a sequence separated by `", "`.
fn py_items_repr(items: &[Value], out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        py_value_repr(item, out);
    }
}

/// Appends Python's `repr()` of `tuple(items)`: `()`, `(1,)`, `(1, 2)`.
pub(crate) fn py_tuple_repr(items: &[Value], out: &mut String) {
    out.push('(');
    py_items_repr(items, out);
    if items.len() == 1 {
        out.push(',');
    }
    out.push(')');
}

/// Appends Python's `repr()` of a dict: `{}`, `{'n': 5}`.
pub(crate) fn py_dict_repr(map: &serde_json::Map<String, Value>, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        py_str_repr(k, out);
        out.push_str(": ");
        py_value_repr(v, out);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn float(v: f64, json: bool) -> String {
        let mut s = String::new();
        py_float_repr(v, json, &mut s);
        s
    }

    #[test]
    fn floats_follow_python_repr() {
        // Expected values are Python 3's repr().
        let cases = [
            (10.0, "10.0"),
            (0.5, "0.5"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000015, "1.5e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345678901234568e17, "1.2345678901234568e+17"),
            (123456.789, "123456.789"),
            (-2.5e-300, "-2.5e-300"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (f64::INFINITY, "inf"),
        ];
        for (v, want) in cases {
            assert_eq!(float(v, false), want, "repr({v:e})");
        }
        assert_eq!(float(f64::NEG_INFINITY, true), "-Infinity");
        assert_eq!(float(f64::NAN, true), "NaN");
    }

    #[test]
    fn json_matches_python_dumps() {
        let mut out = Vec::new();
        write_py_json(
            &mut out,
            &json!({"a": [1, 2.0, "é\u{7f}😀", null, true], "b": {}, "c": "q\"\\\n\u{1}"}),
        );
        // json.dumps({"a": [1, 2.0, "é\x7f😀", None, True], "b": {}, "c": "q\"\\\n\x01"})
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a": [1, 2.0, "\u00e9\u007f\ud83d\ude00", null, true], "b": {}, "c": "q\"\\\n\u0001"}"#
        );
    }

    #[test]
    fn repr_matches_python() {
        let mut s = String::new();
        py_tuple_repr(&[], &mut s);
        assert_eq!(s, "()");
        s.clear();
        py_tuple_repr(&[json!(100000)], &mut s);
        assert_eq!(s, "(100000,)");
        s.clear();
        py_tuple_repr(&[json!(10.0)], &mut s);
        assert_eq!(s, "(10.0,)");
        s.clear();
        py_tuple_repr(&[json!("/tmp/x"), json!(1000000000u64)], &mut s);
        assert_eq!(s, "('/tmp/x', 1000000000)");
        s.clear();
        py_tuple_repr(
            &[
                json!([null, true, false, -3]),
                json!({"k": "it's"}),
                json!("a\"b'c\\\t\u{1}"),
            ],
            &mut s,
        );
        assert_eq!(
            s,
            r#"([None, True, False, -3], {'k': "it's"}, 'a"b\'c\\\t\x01')"#
        );
        s.clear();
        py_dict_repr(&serde_json::Map::new(), &mut s);
        assert_eq!(s, "{}");
    }
}
