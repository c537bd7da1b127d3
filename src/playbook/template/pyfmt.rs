//! Python-compatible text forms of values: `str()`/`repr()`, `json.dumps`, PyYAML's `dump`.
//!
//! Ansible renders values with Python's rules (`True`, `['a', 'b']`, `{"a": 1}` with `", "`
//! separators); matching them keeps files written by knockplay byte-identical to Ansible's.

use crate::value::Value;
use std::fmt::Write as _;

/// Python's `str(v)`: strings bare, `True`/`False`/`None`, containers as `repr`.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr(v)` for JSON-shaped values.
pub fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, v);
    out
}

fn write_repr(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => out.push_str(&py_number(n)),
        Value::String(s) => write_str_repr(out, s),
        Value::Array(items) => write_joined(out, ('[', ']'), items, write_repr),
        Value::Object(map) => write_joined(out, ('{', '}'), map, |out, (k, item)| {
            write_str_repr(out, k);
            out.push_str(": ");
            write_repr(out, item);
        }),
    }
}

/// `[a, b]` / `{k: v, …}`: items between brackets, separated by `, ` (Python's repr and YAML's
/// flow style both write collections this way).
fn write_joined<T>(
    out: &mut String,
    (open, close): (char, char),
    items: impl IntoIterator<Item = T>,
    mut write_item: impl FnMut(&mut String, T),
) {
    out.push(open);
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_item(out, item);
    }
    out.push(close);
}

fn write_str_repr(out: &mut String, s: &str) {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(q);
}

/// A number the way Python prints it (`1`, `1.0`, `1e+16`, `0.1`).
pub fn py_number(n: &serde_json::Number) -> String {
    if n.is_f64() {
        n.as_f64().map(py_float).unwrap_or_else(|| n.to_string())
    } else {
        n.to_string()
    }
}

/// Python's `repr(float)`.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Rust: "1e16" / "1.5e-7"; Python: "1e+16" / "1.5e-07".
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mant}e{sign}{digits:0>2}");
    }
    if f == f.trunc() {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// Python's `json.dumps(v, indent=…, sort_keys=…)` with `ensure_ascii=True`.
/// Without indent the separators are `", "` and `": "`; with indent `","` and `": "`.
pub fn json_dumps(v: &Value, indent: Option<usize>, sort_keys: bool) -> String {
    let mut out = String::new();
    write_json(&mut out, v, indent, sort_keys, 0);
    out
}

fn write_json(out: &mut String, v: &Value, indent: Option<usize>, sort: bool, level: usize) {
    let newline = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.extend(std::iter::repeat_n(' ', n * level));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&match n.as_f64() {
            Some(f) if n.is_f64() && f.is_nan() => "NaN".to_string(),
            Some(f) if n.is_f64() && f.is_infinite() => {
                if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
            }
            _ => py_number(n),
        }),
        Value::String(s) => write_json_str(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_json(out, item, indent, sort, level + 1);
            }
            newline(out, level);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if sort {
                entries.sort_by(|a, b| a.0.cmp(b.0));
            }
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(item_sep);
                }
                newline(out, level + 1);
                write_json_str(out, k);
                out.push_str(": ");
                write_json(out, item, indent, sort, level + 1);
            }
            newline(out, level);
            out.push('}');
        }
    }
}

/// A double-quoted string with the escapes JSON and YAML share; `other` writes every other
/// character (the two formats escape different ones).
fn write_quoted(out: &mut String, s: &str, mut other: impl FnMut(&mut String, char)) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => other(out, c),
        }
    }
    out.push('"');
}

/// Python's `json.dumps` string (`ensure_ascii`: non-ASCII as `\uXXXX` UTF-16 units).
fn write_json_str(out: &mut String, s: &str) {
    write_quoted(out, s, |out, c| match c {
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
        c => out.push(c),
    });
}

/// PyYAML's `yaml.dump` as Ansible calls it: keys sorted, `indent` spaces per level, sequences in
/// mappings not indented (`-   item` with indent 4). `flow_leaves` = PyYAML's
/// `default_flow_style=None` (collections holding only scalars are written `[a, b]` / `{a: 1}`).
pub fn yaml_dump(v: &Value, indent: usize, flow_leaves: bool) -> String {
    let mut out = String::new();
    let indent = indent.clamp(2, 9);
    match v {
        Value::Array(a) if is_block(v, flow_leaves) => {
            write_block_seq(&mut out, a, 0, indent, flow_leaves)
        }
        Value::Object(m) if is_block(v, flow_leaves) => {
            write_block_map(&mut out, m, 0, indent, flow_leaves)
        }
        Value::Array(_) | Value::Object(_) => {
            write_flow(&mut out, v);
            out.push('\n');
        }
        // PyYAML adds a `...` document end after a lone scalar; Ansible's output has none.
        scalar => {
            out.push_str(&yaml_scalar(scalar, false));
            out.push('\n');
        }
    }
    out
}

/// A non-empty collection written in block style (not `[]`/`{}`/flow).
fn is_block(v: &Value, flow_leaves: bool) -> bool {
    let non_empty = match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        _ => false,
    };
    non_empty && !(flow_leaves && all_scalars(v))
}

fn all_scalars(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.iter().all(|x| !x.is_array() && !x.is_object()),
        Value::Object(m) => m.values().all(|x| !x.is_array() && !x.is_object()),
        _ => true,
    }
}

fn sorted(m: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut e: Vec<_> = m.iter().collect();
    e.sort_by(|a, b| a.0.cmp(b.0));
    e
}

/// Write `value` after a `key:` or `-` indicator; `col` is the column of nested content.
fn write_node(out: &mut String, v: &Value, col: usize, indent: usize, flow_leaves: bool) {
    let empty = matches!(v, Value::Array(a) if a.is_empty())
        || matches!(v, Value::Object(m) if m.is_empty());
    if empty || !(v.is_array() || v.is_object()) || (flow_leaves && all_scalars(v)) {
        if v.is_array() || v.is_object() {
            write_flow(out, v);
        } else {
            out.push_str(&yaml_scalar(v, false));
        }
        out.push('\n');
        return;
    }
    match v {
        Value::Array(a) => write_block_seq(out, a, col, indent, flow_leaves),
        Value::Object(m) => write_block_map(out, m, col, indent, flow_leaves),
        _ => {}
    }
}

fn write_block_map(
    out: &mut String,
    m: &serde_json::Map<String, Value>,
    col: usize,
    indent: usize,
    flow_leaves: bool,
) {
    // The first key continues the current line (after `-   `) when the line is not empty.
    let mut first = !out.is_empty() && !out.ends_with('\n');
    for (k, v) in sorted(m) {
        if !first {
            out.extend(std::iter::repeat_n(' ', col));
        }
        first = false;
        out.push_str(&yaml_scalar(&Value::String(k.clone()), false));
        out.push(':');
        if is_block(v, flow_leaves) {
            out.push('\n');
            // Sequences inside mappings are not indented (PyYAML's indentless sequences).
            let child = if v.is_array() { col } else { col + indent };
            write_node(out, v, child, indent, flow_leaves);
        } else {
            out.push(' ');
            write_node(out, v, col + indent, indent, flow_leaves);
        }
    }
}

fn write_block_seq(out: &mut String, a: &[Value], col: usize, indent: usize, flow_leaves: bool) {
    let mut first = !out.is_empty() && !out.ends_with('\n');
    for v in a {
        if !first {
            out.extend(std::iter::repeat_n(' ', col));
        }
        first = false;
        // PyYAML: `- scalar`, but a nested block collection starts at the indent column.
        if is_block(v, flow_leaves) {
            out.push('-');
            out.extend(std::iter::repeat_n(' ', indent - 1));
        } else {
            out.push_str("- ");
        }
        write_node(out, v, col + indent, indent, flow_leaves);
    }
}

fn write_flow(out: &mut String, v: &Value) {
    match v {
        Value::Array(a) => write_joined(out, ('[', ']'), a, write_flow),
        Value::Object(m) => write_joined(out, ('{', '}'), sorted(m), |out, (k, x)| {
            out.push_str(&yaml_scalar(&Value::String(k.clone()), true));
            out.push_str(": ");
            write_flow(out, x);
        }),
        scalar => out.push_str(&yaml_scalar(scalar, true)),
    }
}

/// A scalar in YAML: plain when it reads back as the same string, otherwise quoted.
fn yaml_scalar(v: &Value, in_flow: bool) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Number(n) => py_number(n),
        Value::String(s) => {
            if plain_ok(s, in_flow) {
                s.clone()
            } else if s.chars().any(|c| c.is_control()) {
                // Double quotes carry escapes (PyYAML folds these differently; same data).
                let mut o = String::new();
                write_yaml_double_quoted(&mut o, s);
                o
            } else {
                format!("'{}'", s.replace('\'', "''"))
            }
        }
        other => other.to_string(),
    }
}

/// PyYAML's double-quoted scalar: Unicode kept, control characters as `\xXX`.
fn write_yaml_double_quoted(out: &mut String, s: &str) {
    write_quoted(out, s, |out, c| {
        if c.is_control() {
            let _ = write!(out, "\\x{:02X}", c as u32);
        } else {
            out.push(c);
        }
    });
}

fn plain_ok(s: &str, in_flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    let second = s.chars().nth(1);
    if "-?:".contains(first) {
        // `-x` is plain; `?x`/`:x` only outside flow collections; `- x`/`? x` never.
        if second.is_none_or(|c| c == ' ') || (in_flow && first != '-') {
            return false;
        }
    } else if ",[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.chars().any(|c| c.is_control()) {
        return false;
    }
    if in_flow && s.contains([',', '[', ']', '{', '}', ':']) {
        return false;
    }
    !looks_typed(s)
}

/// Strings PyYAML's YAML 1.1 resolver would read as something else (bool, null, int, float,
/// timestamp, merge/value keys): those must be quoted.
fn looks_typed(s: &str) -> bool {
    use std::sync::OnceLock;
    static RE: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(concat!(
            r"^(?:",
            r"yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
            r"|~|null|Null|NULL",
            r"|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+",
            r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
            r"|[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?",
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
            r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?.*",
            r"|<<|=",
            r")$"
        ))
        .ok()
    });
    re.as_ref().is_none_or(|re| re.is_match(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_str_and_repr() {
        let cases = [
            (json!("x"), "x", "'x'"),
            (json!(true), "True", "True"),
            (json!(null), "None", "None"),
            (json!(3), "3", "3"),
            (json!(2.0), "2.0", "2.0"),
            (json!(0.5), "0.5", "0.5"),
            (json!(1e20), "1e+20", "1e+20"),
            (json!(["a", 1, false]), "['a', 1, False]", "['a', 1, False]"),
            (
                json!({"k": "v", "n": null}),
                "{'k': 'v', 'n': None}",
                "{'k': 'v', 'n': None}",
            ),
            (json!(["it's"]), "[\"it's\"]", "[\"it's\"]"),
            (json!(["a\nb"]), "['a\\nb']", "['a\\nb']"),
        ];
        for (v, s, r) in cases {
            assert_eq!(py_str(&v), s, "{v}");
            if !v.is_string() {
                assert_eq!(py_repr(&v), r, "{v}");
            }
        }
    }

    #[test]
    fn json_like_python() {
        let v = json!({"b": [1, 2.5, "é"], "a": {"x": null, "y": true}, "e": {}, "l": []});
        assert_eq!(
            json_dumps(&v, None, false),
            r#"{"b": [1, 2.5, "\u00e9"], "a": {"x": null, "y": true}, "e": {}, "l": []}"#
        );
        assert_eq!(
            json_dumps(&v, Some(4), true),
            "{\n    \"a\": {\n        \"x\": null,\n        \"y\": true\n    },\n    \"b\": [\n        1,\n        2.5,\n        \"\\u00e9\"\n    ],\n    \"e\": {},\n    \"l\": []\n}"
        );
        assert_eq!(json_dumps(&json!("a\"b\\\n"), None, false), r#""a\"b\\\n""#);
        assert_eq!(json_dumps(&json!("😀"), None, false), r#""\ud83d\ude00""#);
    }

    #[test]
    fn yaml_like_pyyaml() {
        let cases = [
            (json!({"a": 1, "b": "x"}), 2, true, "{a: 1, b: x}\n"),
            (json!({"b": [1, 2], "a": "x"}), 2, true, "a: x\nb: [1, 2]\n"),
            (json!({"a": 1, "b": "x"}), 4, false, "a: 1\nb: x\n"),
            (json!({"l": ["x", "y"]}), 4, false, "l:\n- x\n- y\n"),
            (
                json!({"l": [{"k": 1, "j": 2}]}),
                4,
                false,
                "l:\n-   j: 2\n    k: 1\n",
            ),
            (
                json!({"m": {"k": {"z": 1}}}),
                4,
                false,
                "m:\n    k:\n        z: 1\n",
            ),
            (json!({"l": ["x"]}), 2, false, "l:\n- x\n"),
            (json!(["a", ["b", "c"]]), 2, false, "- a\n- - b\n  - c\n"),
            (
                json!({"s": "yes", "t": "1.5", "u": "a: b", "v": "", "w": "it's"}),
                2,
                false,
                "s: 'yes'\nt: '1.5'\nu: 'a: b'\nv: ''\nw: it's\n",
            ),
            (json!({"e": {}, "f": []}), 2, false, "e: {}\nf: []\n"),
            (json!("abc"), 2, true, "abc\n"),
            // Shapes checked against PyYAML 6 (yaml.dump, indent=4, default_flow_style=False).
            (json!({"a": [{"x": 1, "y": [3, 4]}]}), 4, false, "a:\n-   x: 1\n    y:\n    - 3\n    - 4\n"),
            (json!([[1, 2], [3]]), 4, false, "-   - 1\n    - 2\n-   - 3\n"),
            (json!({"a": {"b": [{"c": 1}]}}), 4, false, "a:\n    b:\n    -   c: 1\n"),
            (json!([[{"a": 1}]]), 4, false, "-   -   a: 1\n"),
            (json!({"a": [{"x": 1, "y": [3, 4]}]}), 2, true, "a:\n- x: 1\n  y: [3, 4]\n"),
            (json!([{"a": 1}]), 2, true, "- {a: 1}\n"),
            (json!({"e": "1e3", "o": "0o17", "h": "0x1F", "d": ".5", "y": "y", "Y": "Y", "t": "~",
                    "c": "a:b", "q": "?x", "dq": "say \"hi\"", "n": "null", "oct": "0644", "TR": "tRue"}), 2, false,
             "TR: tRue\nY: Y\nc: a:b\nd: '.5'\ndq: say \"hi\"\ne: 1e3\nh: '0x1F'\nn: 'null'\no: 0o17\noct: '0644'\nq: ?x\nt: '~'\ny: y\n"),
            (json!({"c": "a:b", "q": "?x", "m": "-x"}), 2, true, "{c: 'a:b', m: -x, q: '?x'}\n"),
            (json!({"multi": "a\nb"}), 2, false, "multi: \"a\\nb\"\n"),
            (
                json!({"date": "2024-01-02", "p": "/etc/x", "dash": "-x"}),
                2,
                false,
                "dash: -x\ndate: '2024-01-02'\np: /etc/x\n",
            ),
        ];
        for (v, indent, flow, want) in cases {
            assert_eq!(yaml_dump(&v, indent, flow), want, "{v}");
        }
    }

    #[test]
    fn yaml_output_reads_back_as_the_same_data() {
        let v =
            json!({"a": ["x", {"b": "no", "c": [1, 2, {"d": "it's: here"}]}], "e": "#x", "f": "~"});
        for (indent, flow) in [(2, true), (4, false), (2, false)] {
            let text = yaml_dump(&v, indent, flow);
            let back: Value = serde_yaml::from_str(&text).unwrap();
            assert_eq!(back, v, "{text}");
        }
    }
}
