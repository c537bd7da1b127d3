//! Ansible's filters that minijinja lacks or spells differently (`bool`, `to_nice_json`,
//! `regex_replace`, `combine`, …). Builtins with Jinja2 semantics (`default`, `join`, `map`, …)
//! are left to minijinja.
//!
//! - this file: registration, value conversion shared by all filters, and the scalar filters
//!   (`bool`, `int`, `float`, `string`, `ternary`, `mandatory`, `type_debug`, `random`)
//! - `encode`: JSON/YAML text, base64, `quote`, `hash`
//! - `path`: Python's `os.path`
//! - `re`: Python's `re`
//! - `collections`: lists and dicts
//! - `math`: numbers and combinatorics (`log`, `product`, `zip`, `human_readable`, ...)
//! - `time`: `to_datetime`, `strftime`
//! - `query`: `json_query` (JMESPath)
//!
//! Ansible's fully qualified names (`ansible.builtin.to_json`, `community.general.json_query`)
//! reach the same filters: the template loader drops the prefix (see `template::strip_fqcn`).

mod collections;
mod encode;
mod math;
mod path;
mod query;
mod re;
mod time;

use super::pyfmt;
use crate::value::Value as Json;
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

/// Register every Ansible filter on `env`.
pub fn register(env: &mut Environment<'static>) {
    env.add_filter("bool", to_bool);
    env.add_filter("int", int);
    env.add_filter("float", float);
    env.add_filter("string", string);
    env.add_filter("ternary", ternary);
    env.add_filter("mandatory", mandatory);
    env.add_filter("type_debug", type_debug);
    env.add_filter("random", random);
    encode::register(env);
    path::register(env);
    re::register(env);
    collections::register(env);
    math::register(env);
    time::register(env);
    query::register(env);
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

fn ternary(v: Value, yes: Value, no: Value, none: Option<Value>) -> Result<Value, Error> {
    defined(&v)?;
    Ok(match none {
        Some(n) if v.is_none() && !n.is_none() => n,
        _ if v.is_true() => yes,
        _ => no,
    })
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
