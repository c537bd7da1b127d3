//! Ansible's filters that minijinja lacks or spells differently (`bool`, `to_nice_json`,
//! `regex_replace`, `combine`, …). Builtins with Jinja2 semantics (`default`, `join`, `map`, …)
//! are left to minijinja.

use super::pyfmt;
use super::regex_cache;
use crate::value::Value as Json;
use base64::Engine as _;
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};

/// Register every Ansible filter on `env`.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", to_bool);
    env.add_filter("int", int);
    env.add_filter("float", float);
    env.add_filter("string", string);
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_nice_yaml);
    env.add_filter("from_json", from_json);
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("dirname", dirname);
    env.add_filter("basename", basename);
    env.add_filter("splitext", splitext);
    env.add_filter("path_join", path_join);
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", regex_escape);
    env.add_filter("ternary", ternary);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("quote", quote);
    env.add_filter("mandatory", mandatory);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("combine", combine);
    env.add_filter("flatten", flatten);
    env.add_filter("extract", extract);
    env.add_filter("union", union);
    env.add_filter("intersect", intersect);
    env.add_filter("difference", difference);
    env.add_filter("symmetric_difference", symmetric_difference);
    env.add_filter("type_debug", type_debug);
    env.add_filter("hash", hash);
    env.add_filter("random", random);
    env.add_filter("subelements", subelements);
}

/// minijinja value → JSON value (undefined → error).
pub fn to_json_value(v: &Value) -> Result<Json, Error> {
    defined(v)?;
    serde_json::to_value(v).map_err(|e| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot convert value: {e}"),
        )
    })
}

pub fn from_json_value(v: &Json) -> Value {
    Value::from_serialize(v)
}

/// Error for an undefined input (the caller's error naming finds which variable).
pub fn defined(v: &Value) -> Result<(), Error> {
    if v.is_undefined() {
        Err(Error::from(ErrorKind::UndefinedError))
    } else {
        Ok(())
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Python's `str()` of any value.
pub fn py_str(v: &Value) -> Result<String, Error> {
    if let Some(s) = v.as_str() {
        return Ok(s.to_string());
    }
    Ok(pyfmt::py_str(&to_json_value(v)?))
}

/// Ansible's `| bool`: `yes/on/1/true` (any case) and the number 1 are true, everything else
/// false; booleans and none pass through.
fn to_bool(v: Value) -> Result<Value, Error> {
    defined(&v)?;
    Ok(match v.kind() {
        ValueKind::None | ValueKind::Bool => v,
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default().to_ascii_lowercase();
            Value::from(matches!(s.as_str(), "yes" | "on" | "1" | "true"))
        }
        ValueKind::Number => Value::from(f64::try_from(v).is_ok_and(|f| f == 1.0)),
        _ => Value::from(false),
    })
}

/// Jinja2's `int(default=0, base=10)`: strings parsed (`"12"`, `"12.7"` → 12, `"0x1f"` with
/// base 16), anything unparsable gives the default.
fn int(
    v: Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    defined(&v)?;
    let default = match default {
        Some(d) => d,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0)),
    };
    let base = match base {
        Some(b) => b,
        None => kwargs.get::<Option<u32>>("base")?.unwrap_or(10),
    };
    kwargs.assert_all_used()?;
    if !(2..=36).contains(&base) {
        return Err(invalid(format!(
            "int: base must be between 2 and 36, got {base}"
        )));
    }
    Ok(match v.kind() {
        ValueKind::Bool => Value::from(v.is_true() as i64),
        ValueKind::Number => {
            if let Ok(i) = i64::try_from(v.clone()) {
                Value::from(i)
            } else {
                f64::try_from(v)
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| Value::from(f.trunc() as i64))
                    .unwrap_or(default)
            }
        }
        ValueKind::String => {
            let s = v.as_str().unwrap_or_default().trim().replace('_', "");
            let (neg, digits) = match s.strip_prefix('-') {
                Some(d) => (true, d.to_string()),
                None => (false, s.trim_start_matches('+').to_string()),
            };
            let digits = match base {
                16 => digits.trim_start_matches("0x").trim_start_matches("0X"),
                8 => digits.trim_start_matches("0o").trim_start_matches("0O"),
                2 => digits.trim_start_matches("0b").trim_start_matches("0B"),
                _ => digits.as_str(),
            };
            match i64::from_str_radix(digits, base) {
                Ok(i) => Value::from(if neg { -i } else { i }),
                Err(_) if base == 10 => s
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| Value::from(f.trunc() as i64))
                    .unwrap_or(default),
                Err(_) => default,
            }
        }
        _ => default,
    })
}

fn float(v: Value, default: Option<Value>) -> Result<Value, Error> {
    defined(&v)?;
    let default = default.unwrap_or(Value::from(0.0));
    Ok(match v.kind() {
        ValueKind::Bool => Value::from(if v.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(v).map(Value::from).unwrap_or(default),
        ValueKind::String => v
            .as_str()
            .unwrap_or_default()
            .trim()
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or(default),
        _ => default,
    })
}

fn string(v: Value) -> Result<Value, Error> {
    if v.kind() == ValueKind::String {
        return Ok(v);
    }
    Ok(Value::from(py_str(&v)?))
}

fn to_json(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort: Option<bool> = kwargs.get("sort_keys")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    Ok(Value::from(pyfmt::json_dumps(
        &to_json_value(&v)?,
        indent.filter(|&i| i > 0),
        sort.unwrap_or(false),
    )))
}

fn to_nice_json(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort: Option<bool> = kwargs.get("sort_keys")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    Ok(Value::from(pyfmt::json_dumps(
        &to_json_value(&v)?,
        Some(indent.unwrap_or(4)),
        sort.unwrap_or(true),
    )))
}

fn to_yaml(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let flow: Option<Value> = kwargs.get("default_flow_style")?;
    let _: Option<Value> = kwargs.get("width")?;
    let _: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    // default_flow_style: None (default) = flow for leaf collections; False = always block.
    let flow_leaves = flow.is_none_or(|f| f.is_none() || f.is_true());
    Ok(Value::from(pyfmt::yaml_dump(
        &to_json_value(&v)?,
        indent.unwrap_or(2),
        flow_leaves,
    )))
}

fn to_nice_yaml(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let _: Option<Value> = kwargs.get("width")?;
    let _: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    Ok(Value::from(pyfmt::yaml_dump(
        &to_json_value(&v)?,
        indent.unwrap_or(4),
        false,
    )))
}

fn from_json(v: Value) -> Result<Value, Error> {
    let s = py_str(&v)?;
    let parsed: Json =
        serde_json::from_str(&s).map_err(|e| invalid(format!("from_json: invalid JSON: {e}")))?;
    Ok(from_json_value(&parsed))
}

fn from_yaml(v: Value) -> Result<Value, Error> {
    let s = py_str(&v)?;
    let parsed: Json =
        serde_yaml::from_str(&s).map_err(|e| invalid(format!("from_yaml: invalid YAML: {e}")))?;
    Ok(from_json_value(&parsed))
}

/// Python's `os.path.basename`.
pub fn py_basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Python's `os.path.dirname`.
pub fn py_dirname(p: &str) -> &str {
    let head = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    if !head.is_empty() && head.bytes().any(|b| b != b'/') {
        head.trim_end_matches('/')
    } else {
        head
    }
}

fn dirname(v: Value) -> Result<Value, Error> {
    Ok(Value::from(py_dirname(&py_str(&v)?)))
}

fn basename(v: Value) -> Result<Value, Error> {
    Ok(Value::from(py_basename(&py_str(&v)?)))
}

/// Python's `os.path.splitext` → `[root, ext]`.
fn splitext(v: Value) -> Result<Value, Error> {
    let p = py_str(&v)?;
    let base_start = p.rfind('/').map(|i| i + 1).unwrap_or(0);
    let base = &p[base_start..];
    let leading_dots = base.len() - base.trim_start_matches('.').len();
    let (root, ext) = match base.rfind('.') {
        Some(i) if i > leading_dots.saturating_sub(1) && i >= leading_dots => {
            (&p[..base_start + i], &p[base_start + i..])
        }
        _ => (p.as_str(), ""),
    };
    Ok(Value::from(vec![Value::from(root), Value::from(ext)]))
}

/// Python's `os.path.join(*parts)`.
fn path_join(v: Value) -> Result<Value, Error> {
    let parts: Vec<String> = if v.kind() == ValueKind::Seq {
        v.try_iter()?
            .map(|p| py_str(&p))
            .collect::<Result<_, _>>()?
    } else {
        vec![py_str(&v)?]
    };
    let mut out = String::new();
    for p in parts {
        if p.starts_with('/') || out.is_empty() {
            out = p;
        } else {
            if !out.ends_with('/') {
                out.push('/');
            }
            out.push_str(&p);
        }
    }
    Ok(Value::from(out))
}

fn regex_flags(kwargs: &Kwargs) -> Result<(bool, bool), Error> {
    let i: Option<bool> = kwargs.get("ignorecase")?;
    let m: Option<bool> = kwargs.get("multiline")?;
    Ok((i.unwrap_or(false), m.unwrap_or(false)))
}

/// Python `re.sub` replacement syntax (`\1`, `\g<name>`) → regex crate syntax (`${1}`).
fn py_replacement(r: &str) -> String {
    let mut out = String::with_capacity(r.len());
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(&d) = chars.peek() {
                        if !d.is_ascii_digit() || n.len() == 2 {
                            break;
                        }
                        n.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('r') => {
                    chars.next();
                    out.push('\r');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn regex_replace(
    v: Value,
    pattern: Option<String>,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let (i, m) = regex_flags(&kwargs)?;
    let count: Option<usize> = kwargs.get("count")?;
    kwargs.assert_all_used()?;
    let s = py_str(&v)?;
    let re = regex_cache::get(pattern.as_deref().unwrap_or(""), i, m)?;
    let rep = py_replacement(replacement.as_deref().unwrap_or(""));
    let out = match count.unwrap_or(0) {
        0 => re.replace_all(&s, rep.as_str()),
        n => re.replacen(&s, n, rep.as_str()),
    };
    Ok(Value::from(out.into_owned()))
}

fn regex_search(
    v: Value,
    pattern: String,
    groups: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let (i, m) = regex_flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let s = py_str(&v)?;
    let re = regex_cache::get(&pattern, i, m)?;
    let Some(caps) = re.captures(&s) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
    }
    let mut out = Vec::new();
    for g in groups.iter() {
        let m = if let Some(name) = g.strip_prefix("\\g<").and_then(|r| r.strip_suffix('>')) {
            caps.name(name)
        } else if let Some(n) = g.strip_prefix('\\').and_then(|d| d.parse::<usize>().ok()) {
            caps.get(n)
        } else {
            return Err(invalid(format!("regex_search: unknown argument {g:?}")));
        };
        out.push(m.map_or(Value::from(()), |m| Value::from(m.as_str())));
    }
    Ok(Value::from(out))
}

fn regex_findall(v: Value, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    let (i, m) = regex_flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let s = py_str(&v)?;
    let re = regex_cache::get(&pattern, i, m)?;
    let groups = re.captures_len() - 1;
    let out: Vec<Value> = re
        .captures_iter(&s)
        .map(|c| {
            let text = |i: usize| Value::from(c.get(i).map_or("", |m| m.as_str()));
            match groups {
                0 => text(0),
                1 => text(1),
                n => Value::from((1..=n).map(text).collect::<Vec<_>>()),
            }
        })
        .collect();
    Ok(Value::from(out))
}

/// Python's `re.escape` (3.7+).
fn regex_escape(v: Value, _re_type: Option<String>) -> Result<Value, Error> {
    let s = py_str(&v)?;
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(Value::from(out))
}

fn ternary(v: Value, yes: Value, no: Value, none: Option<Value>) -> Result<Value, Error> {
    defined(&v)?;
    Ok(match none {
        Some(n) if v.is_none() && !n.is_none() => n,
        _ if v.is_true() => yes,
        _ => no,
    })
}

fn b64encode(v: Value, _encoding: Option<String>) -> Result<Value, Error> {
    Ok(Value::from(
        base64::engine::general_purpose::STANDARD.encode(py_str(&v)?.as_bytes()),
    ))
}

fn b64decode(v: Value, _encoding: Option<String>) -> Result<Value, Error> {
    let s = py_str(&v)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|e| invalid(format!("b64decode: invalid base64: {e}")))?;
    Ok(Value::from(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Python's `shlex.quote` (what Ansible's `quote` uses): same safe characters as
/// `crate::shell::quote`, but a quote inside is written `'"'"'`, so rendered files match Ansible's
/// byte for byte.
fn quote(v: Value) -> Result<Value, Error> {
    let s = if v.is_none() {
        String::new()
    } else {
        py_str(&v)?
    };
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b));
    if safe {
        return Ok(Value::from(s));
    }
    Ok(Value::from(format!("'{}'", s.replace('\'', "'\"'\"'"))))
}

fn mandatory(v: Value, msg: Option<String>) -> Result<Value, Error> {
    if v.is_undefined() {
        return Err(match msg {
            Some(m) => invalid(m),
            None => Error::new(ErrorKind::UndefinedError, "Mandatory variable not defined."),
        });
    }
    Ok(v)
}

fn dict2items(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name: Option<String> = kwargs.get("key_name")?;
    let value_name: Option<String> = kwargs.get("value_name")?;
    kwargs.assert_all_used()?;
    let j = to_json_value(&v)?;
    let Json::Object(map) = j else {
        return Err(invalid(format!(
            "dict2items requires a dictionary, got {}",
            type_name(&v)
        )));
    };
    let k = key_name.unwrap_or_else(|| "key".into());
    let val = value_name.unwrap_or_else(|| "value".into());
    let items: Vec<Json> = map
        .into_iter()
        .map(|(key, value)| {
            let mut m = serde_json::Map::new();
            m.insert(k.clone(), Json::String(key));
            m.insert(val.clone(), value);
            Json::Object(m)
        })
        .collect();
    Ok(from_json_value(&Json::Array(items)))
}

fn items2dict(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let key_name: Option<String> = kwargs.get("key_name")?;
    let value_name: Option<String> = kwargs.get("value_name")?;
    kwargs.assert_all_used()?;
    let j = to_json_value(&v)?;
    let Json::Array(items) = j else {
        return Err(invalid(format!(
            "items2dict requires a list, got {}",
            type_name(&v)
        )));
    };
    let k = key_name.unwrap_or_else(|| "key".into());
    let val = value_name.unwrap_or_else(|| "value".into());
    let mut out = serde_json::Map::new();
    for item in items {
        let (Some(key), Some(value)) = (item.get(&k), item.get(&val)) else {
            return Err(invalid(format!(
                "items2dict: each item needs '{k}' and '{val}' keys, got {item}"
            )));
        };
        out.insert(crate::value::to_display(key), value.clone());
    }
    Ok(from_json_value(&Json::Object(out)))
}

fn merge(a: &mut Json, b: Json, recursive: bool, list_merge: &str) {
    match (a, b) {
        (Json::Object(am), Json::Object(bm)) => {
            for (k, bv) in bm {
                match am.get_mut(&k) {
                    Some(av) if recursive && (av.is_object() || av.is_array()) => {
                        merge(av, bv, recursive, list_merge)
                    }
                    _ => {
                        am.insert(k, bv);
                    }
                }
            }
        }
        (Json::Array(al), Json::Array(bl)) if recursive => {
            let old = std::mem::take(al);
            *al = match list_merge {
                "keep" => old,
                "append" => old.into_iter().chain(bl).collect(),
                "prepend" => bl.into_iter().chain(old).collect(),
                "append_rp" => old
                    .into_iter()
                    .filter(|x| !bl.contains(x))
                    .chain(bl.iter().cloned())
                    .collect(),
                "prepend_rp" => {
                    let rest: Vec<Json> = old.into_iter().filter(|x| !bl.contains(x)).collect();
                    bl.into_iter().chain(rest).collect()
                }
                _ => bl,
            };
        }
        (a, b) => *a = b,
    }
}

fn combine(v: Value, others: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let recursive: Option<bool> = kwargs.get("recursive")?;
    let list_merge: Option<String> = kwargs.get("list_merge")?;
    kwargs.assert_all_used()?;
    let list_merge = list_merge.unwrap_or_else(|| "replace".into());
    if !matches!(
        list_merge.as_str(),
        "replace" | "keep" | "append" | "prepend" | "append_rp" | "prepend_rp"
    ) {
        return Err(invalid(format!(
            "combine: unknown list_merge {list_merge:?}"
        )));
    }
    // Lists of dicts are flattened like Ansible does: `[a, b] | combine` == `a | combine(b)`.
    let mut dicts = Vec::new();
    for x in std::iter::once(&v).chain(others.iter()) {
        match to_json_value(x)? {
            Json::Array(items) => dicts.extend(items),
            other => dicts.push(other),
        }
    }
    let mut out = Json::Object(serde_json::Map::new());
    for d in dicts {
        if !d.is_object() {
            return Err(invalid(format!("combine: expected dictionaries, got {d}")));
        }
        if recursive.unwrap_or(false) {
            merge(&mut out, d, true, &list_merge);
        } else if let (Json::Object(o), Json::Object(dm)) = (&mut out, d) {
            o.extend(dm);
        }
    }
    Ok(from_json_value(&out))
}

fn flatten_into(out: &mut Vec<Json>, items: Vec<Json>, levels: Option<i64>, skip_nulls: bool) {
    for x in items {
        if skip_nulls && (x.is_null() || x == "None" || x == "null") {
            continue;
        }
        match x {
            Json::Array(inner) if levels.is_none_or(|l| l >= 1) => {
                flatten_into(out, inner, levels.map(|l| l - 1), skip_nulls)
            }
            other => out.push(other),
        }
    }
}

fn flatten(v: Value, levels: Option<i64>, kwargs: Kwargs) -> Result<Value, Error> {
    let skip_nulls: Option<bool> = kwargs.get("skip_nulls")?;
    let levels = match levels {
        Some(l) => Some(l),
        None => kwargs.get("levels")?,
    };
    kwargs.assert_all_used()?;
    let Json::Array(items) = to_json_value(&v)? else {
        return Err(invalid(format!(
            "flatten requires a list, got {}",
            type_name(&v)
        )));
    };
    let mut out = Vec::new();
    flatten_into(&mut out, items, levels, skip_nulls.unwrap_or(true));
    Ok(from_json_value(&Json::Array(out)))
}

fn extract(item: Value, container: Value, morekeys: Option<Value>) -> Result<Value, Error> {
    let mut v = container.get_item(&item)?;
    if let Some(keys) = morekeys {
        let keys: Vec<Value> = if keys.kind() == ValueKind::Seq {
            keys.try_iter()?.collect()
        } else {
            vec![keys]
        };
        for k in keys {
            defined(&v)?;
            v = v.get_item(&k)?;
        }
    }
    defined(&v)?;
    Ok(v)
}

fn list_of(v: &Value, filter: &str) -> Result<Vec<Json>, Error> {
    match to_json_value(v)? {
        Json::Array(a) => Ok(a),
        other => Err(invalid(format!("{filter} requires lists, got {other}"))),
    }
}

fn unique(items: impl IntoIterator<Item = Json>) -> Vec<Json> {
    let mut out: Vec<Json> = Vec::new();
    for x in items {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

fn union(a: Value, b: Value) -> Result<Value, Error> {
    let (a, b) = (list_of(&a, "union")?, list_of(&b, "union")?);
    Ok(from_json_value(&Json::Array(unique(
        a.into_iter().chain(b),
    ))))
}

fn intersect(a: Value, b: Value) -> Result<Value, Error> {
    let (a, b) = (list_of(&a, "intersect")?, list_of(&b, "intersect")?);
    Ok(from_json_value(&Json::Array(unique(
        a.into_iter().filter(|x| b.contains(x)),
    ))))
}

fn difference(a: Value, b: Value) -> Result<Value, Error> {
    let (a, b) = (list_of(&a, "difference")?, list_of(&b, "difference")?);
    Ok(from_json_value(&Json::Array(unique(
        a.into_iter().filter(|x| !b.contains(x)),
    ))))
}

fn symmetric_difference(a: Value, b: Value) -> Result<Value, Error> {
    let (a, b) = (
        list_of(&a, "symmetric_difference")?,
        list_of(&b, "symmetric_difference")?,
    );
    let both: Vec<Json> = a.iter().filter(|x| b.contains(x)).cloned().collect();
    let all = unique(a.into_iter().chain(b));
    Ok(from_json_value(&Json::Array(
        all.into_iter().filter(|x| !both.contains(x)).collect(),
    )))
}

/// Python type name of a value (`type_debug`).
pub fn type_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Undefined => "AnsibleUndefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number => {
            if v.is_integer() {
                "int"
            } else {
                "float"
            }
        }
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

fn type_debug(v: Value) -> Value {
    Value::from(type_name(&v))
}

fn hash(state: &State, v: Value, algo: Option<String>) -> Result<Value, Error> {
    use sha2::Digest;
    let _ = state;
    let s = py_str(&v)?;
    let algo = algo.unwrap_or_else(|| "sha1".into());
    let hex = match algo.as_str() {
        "sha224" => hex::encode(sha2::Sha224::digest(s.as_bytes())),
        "sha256" => hex::encode(sha2::Sha256::digest(s.as_bytes())),
        "sha384" => hex::encode(sha2::Sha384::digest(s.as_bytes())),
        "sha512" => hex::encode(sha2::Sha512::digest(s.as_bytes())),
        other => {
            return Err(invalid(format!(
                "hash: unsupported hash type {other:?} (supported: sha224, sha256, sha384, sha512)"
            )))
        }
    };
    Ok(Value::from(hex))
}

/// `N | random` (0..N), `list | random` (an element); `seed=` makes it repeatable (the numbers
/// differ from Python's, the determinism is the same).
fn random(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    use sha2::Digest;
    let seed: Option<Value> = kwargs.get("seed")?;
    let start: Option<i64> = kwargs.get("start")?;
    let step: Option<i64> = kwargs.get("step")?;
    kwargs.assert_all_used()?;
    defined(&v)?;
    let entropy = match seed {
        Some(s) => py_str(&s)?,
        None => {
            static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            format!("{t}-{n}-{}", std::process::id())
        }
    };
    let digest = sha2::Sha256::digest(entropy.as_bytes());
    let mut word = [0u8; 8];
    word.copy_from_slice(&digest[..8]);
    let r = u64::from_le_bytes(word);
    if let Ok(end) = i64::try_from(v.clone()) {
        let (start, step) = (start.unwrap_or(0), step.unwrap_or(1).max(1));
        if end <= start {
            return Err(invalid(format!("random: empty range [{start}, {end})")));
        }
        let count = ((end - start) + step - 1) / step;
        return Ok(Value::from(start + (r % count as u64) as i64 * step));
    }
    let items: Vec<Value> = v.try_iter()?.collect();
    if items.is_empty() {
        return Err(invalid("random: cannot choose from an empty sequence"));
    }
    Ok(items[(r % items.len() as u64) as usize].clone())
}

/// `users | subelements('keys')` → `[[user, key], …]` (for loops over nested lists).
fn subelements(v: Value, path: String, kwargs: Kwargs) -> Result<Value, Error> {
    let skip_missing: Option<bool> = kwargs.get("skip_missing")?;
    kwargs.assert_all_used()?;
    let items = match to_json_value(&v)? {
        Json::Array(a) => a,
        Json::Object(m) => m.into_iter().map(|(_, v)| v).collect(),
        other => return Err(invalid(format!("subelements requires a list, got {other}"))),
    };
    let mut out = Vec::new();
    for item in items {
        let mut cur = Some(&item);
        for key in path.split('.') {
            cur = cur.and_then(|c| c.get(key));
        }
        match cur {
            Some(Json::Array(subs)) => {
                for sub in subs {
                    out.push(Json::Array(vec![item.clone(), sub.clone()]));
                }
            }
            Some(other) => {
                return Err(invalid(format!(
                    "subelements: the key '{path}' should point to a list, got {other}"
                )))
            }
            None if skip_missing.unwrap_or(false) => {}
            None => {
                return Err(invalid(format!(
                    "subelements: could not find '{path}' key in iterated item {item}"
                )))
            }
        }
    }
    Ok(from_json_value(&Json::Array(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_path_helpers() {
        for (p, dir, base) in [
            ("/etc/nginx/nginx.conf", "/etc/nginx", "nginx.conf"),
            ("/a/b/", "/a/b", ""),
            ("file", "", "file"),
            ("/", "/", ""),
            ("//x", "//", "x"),
            ("a/b", "a", "b"),
        ] {
            assert_eq!(py_dirname(p), dir, "dirname {p}");
            assert_eq!(py_basename(p), base, "basename {p}");
        }
    }

    #[test]
    fn python_replacement_syntax() {
        for (py, rs) in [
            (r"\1-\2", "${1}-${2}"),
            (r"\g<name>x", "${name}x"),
            ("$5", "$$5"),
            (r"a\nb", "a\nb"),
            (r"\\", "\\"),
        ] {
            assert_eq!(py_replacement(py), rs, "{py}");
        }
    }
}
