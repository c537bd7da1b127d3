//! Ansible's Jinja tests: task results (`is changed`/`failed`/`succeeded`/`skipped`), regex
//! (`match`/`search`/`regex`), `version`, set tests (`subset`, `contains`, `any`, `all`).

use super::filters::{defined, py_str, to_json_value};
use super::regex_cache;
use crate::value::Value as Json;
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};
use std::cmp::Ordering;

/// Register every Ansible test on `env`.
pub fn register(env: &mut Environment<'static>) {
    for name in ["changed", "change"] {
        env.add_test(name, changed);
    }
    for name in ["failed", "failure", "fail"] {
        env.add_test(name, failed);
    }
    for name in ["succeeded", "success", "successful", "succeed"] {
        env.add_test(name, succeeded);
    }
    for name in ["skipped", "skip"] {
        env.add_test(name, skipped);
    }
    env.add_test("unreachable", unreachable);
    env.add_test("match", is_match);
    env.add_test("search", is_search);
    env.add_test("regex", is_regex);
    env.add_test("version", version);
    env.add_test("version_compare", version);
    env.add_test("contains", contains);
    env.add_test("subset", subset);
    env.add_test("superset", superset);
    env.add_test("any", any);
    env.add_test("all", all);
    env.add_test("truthy", |v: &Value| v.is_true());
    env.add_test("falsy", |v: &Value| !v.is_true());
    env.add_test("abs", |v: &Value| {
        v.as_str().is_some_and(|s| s.starts_with('/'))
    });
    env.add_test("exists", |v: &Value| {
        v.as_str().is_some_and(|s| std::path::Path::new(s).exists())
    });
    env.add_test("file", |v: &Value| {
        v.as_str()
            .is_some_and(|s| std::path::Path::new(s).is_file())
    });
    env.add_test("directory", |v: &Value| {
        v.as_str().is_some_and(|s| std::path::Path::new(s).is_dir())
    });
    env.add_test("link", |v: &Value| {
        v.as_str()
            .is_some_and(|s| std::path::Path::new(s).is_symlink())
    });
}

/// A registered task result as a map; anything else is an error like Ansible's.
fn result_map(v: &Value, test: &str) -> Result<serde_json::Map<String, Json>, Error> {
    defined(v)?;
    match to_json_value(v)? {
        Json::Object(m) => Ok(m),
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("the '{test}' test expects a dictionary (a registered result), got {other}"),
        )),
    }
}

fn flag(m: &serde_json::Map<String, Json>, key: &str) -> bool {
    m.get(key)
        .is_some_and(|v| crate::value::as_bool(v).unwrap_or(!v.is_null()))
}

fn changed(v: &Value) -> Result<bool, Error> {
    let m = result_map(v, "changed")?;
    if flag(&m, "changed") {
        return Ok(true);
    }
    // Loop results: changed when any item changed.
    Ok(match m.get("results") {
        Some(Json::Array(items)) => items
            .iter()
            .any(|i| i.as_object().is_some_and(|o| flag(o, "changed"))),
        _ => false,
    })
}

fn failed(v: &Value) -> Result<bool, Error> {
    Ok(flag(&result_map(v, "failed")?, "failed"))
}

fn succeeded(v: &Value) -> Result<bool, Error> {
    Ok(!flag(&result_map(v, "succeeded")?, "failed"))
}

fn skipped(v: &Value) -> Result<bool, Error> {
    Ok(flag(&result_map(v, "skipped")?, "skipped"))
}

fn unreachable(v: &Value) -> Result<bool, Error> {
    Ok(flag(&result_map(v, "unreachable")?, "unreachable"))
}

fn regex_test(v: &Value, pattern: &str, kwargs: &Kwargs, how: &str) -> Result<bool, Error> {
    let i: Option<bool> = kwargs.get("ignorecase")?;
    let m: Option<bool> = kwargs.get("multiline")?;
    kwargs.assert_all_used()?;
    let s = py_str(v)?;
    // Python's re.match is anchored at the start, re.fullmatch at both ends.
    let pattern = match how {
        "match" => format!(r"\A(?:{pattern})"),
        "fullmatch" => format!(r"\A(?:{pattern})\z"),
        _ => pattern.to_string(),
    };
    let re = regex_cache::get(&pattern, i.unwrap_or(false), m.unwrap_or(false))?;
    Ok(re.is_match(&s))
}

fn is_match(v: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    regex_test(v, &pattern, &kwargs, "match")
}

fn is_search(v: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    regex_test(v, &pattern, &kwargs, "search")
}

fn is_regex(v: &Value, pattern: String, kwargs: Kwargs) -> Result<bool, Error> {
    let match_type: Option<String> = kwargs.get("match_type")?;
    let how = match_type.unwrap_or_else(|| "search".into());
    regex_test(v, &pattern, &kwargs, &how)
}

/// Loose version comparison (Python's LooseVersion): numbers compare numerically, other parts
/// as text, numbers sort before text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn parts(s: &str) -> Vec<Result<u64, String>> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut digit = false;
        for c in s.chars() {
            let is_digit = c.is_ascii_digit();
            if c == '.' || c == '-' || c == '_' || c == '+' || c == '~' || c == ':' {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                continue;
            }
            if !cur.is_empty() && is_digit != digit {
                out.push(std::mem::take(&mut cur));
            }
            digit = is_digit;
            cur.push(c);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out.into_iter()
            .map(|p| p.parse::<u64>().map_err(|_| p))
            .collect()
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x, y) {
            (Ok(x), Ok(y)) => x.cmp(y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(x), Err(y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

fn version(v: &Value, other: Value, op: Option<String>, kwargs: Kwargs) -> Result<bool, Error> {
    let _: Option<bool> = kwargs.get("strict")?;
    let _: Option<String> = kwargs.get("version_type")?;
    let op = match op {
        Some(o) => Some(o),
        None => kwargs.get("operator")?,
    };
    kwargs.assert_all_used()?;
    let ord = compare_versions(&py_str(v)?, &py_str(&other)?);
    Ok(match op.as_deref().unwrap_or("eq") {
        "==" | "=" | "eq" => ord == Ordering::Equal,
        "!=" | "<>" | "ne" => ord != Ordering::Equal,
        "<" | "lt" => ord == Ordering::Less,
        "<=" | "le" => ord != Ordering::Greater,
        ">" | "gt" => ord == Ordering::Greater,
        ">=" | "ge" => ord != Ordering::Less,
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("version: invalid operator {other:?}"),
            ))
        }
    })
}

fn items(v: &Value) -> Result<Vec<Json>, Error> {
    match to_json_value(v)? {
        Json::Array(a) => Ok(a),
        Json::Object(m) => Ok(m.keys().map(|k| Json::String(k.clone())).collect()),
        Json::String(s) => Ok(s.chars().map(|c| Json::String(c.to_string())).collect()),
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("expected a list, got {other}"),
        )),
    }
}

fn contains(v: &Value, item: Value) -> Result<bool, Error> {
    if v.kind() == ValueKind::String {
        return Ok(v.as_str().unwrap_or_default().contains(&py_str(&item)?));
    }
    Ok(items(v)?.contains(&to_json_value(&item)?))
}

fn subset(v: &Value, other: Value) -> Result<bool, Error> {
    let (a, b) = (items(v)?, items(&other)?);
    Ok(a.iter().all(|x| b.contains(x)))
}

fn superset(v: &Value, other: Value) -> Result<bool, Error> {
    let (a, b) = (items(v)?, items(&other)?);
    Ok(b.iter().all(|x| a.contains(x)))
}

fn any(v: &Value) -> Result<bool, Error> {
    defined(v)?;
    Ok(v.try_iter()?.any(|x| x.is_true()))
}

fn all(v: &Value) -> Result<bool, Error> {
    defined(v)?;
    Ok(v.try_iter()?.all(|x| x.is_true()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_versions() {
        for (a, b, o) in [
            ("1.2.3", "1.2.3", Ordering::Equal),
            ("1.10", "1.9", Ordering::Greater),
            ("12", "11.5", Ordering::Greater),
            ("2.0", "2.0.1", Ordering::Less),
            ("1.2a", "1.2", Ordering::Greater),
            ("1.2.0-rc1", "1.2.0", Ordering::Greater),
            ("20.04", "22.04", Ordering::Less),
        ] {
            assert_eq!(compare_versions(a, b), o, "{a} vs {b}");
        }
    }
}
