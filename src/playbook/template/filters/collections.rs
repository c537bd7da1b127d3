//! Filters over lists and dicts: `dict2items`/`items2dict`, `combine`, `flatten`, `extract`,
//! the set operations (`union`, `intersect`, `difference`, `symmetric_difference`) and
//! `subelements`.

use super::{defined, from_json_value, invalid, to_json_value, type_name};
use crate::value::Value as Json;
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, Value};

/// Register this file's filters on `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("combine", combine);
    env.add_filter("flatten", flatten);
    env.add_filter("extract", extract);
    env.add_filter("union", union);
    env.add_filter("intersect", intersect);
    env.add_filter("difference", difference);
    env.add_filter("symmetric_difference", symmetric_difference);
    env.add_filter("subelements", subelements);
    env.add_filter("rekey_on_member", rekey_on_member);
}

/// Ansible's `rekey_on_member(key, duplicates='error')`: a list (or dict values) of dicts as a
/// dict keyed by each one's `key`.
fn rekey_on_member(v: Value, key: String, duplicates: Option<String>) -> Result<Value, Error> {
    let items: Vec<Json> = match to_json_value(&v)? {
        Json::Array(a) => a,
        Json::Object(m) => m.into_iter().map(|(_, x)| x).collect(),
        _ => return Err(invalid("Type is not a valid list, set, or dict")),
    };
    let overwrite = match duplicates.as_deref() {
        None | Some("error") => false,
        Some("overwrite") => true,
        Some(other) => {
            return Err(invalid(format!(
                "duplicates parameter to rekey_on_member has unknown value: {other}"
            )))
        }
    };
    let mut out = serde_json::Map::new();
    for item in items {
        let Json::Object(m) = &item else {
            return Err(invalid(format!("List item is not a valid dict: {item}")));
        };
        let Some(k) = m.get(&key) else {
            return Err(invalid(format!("Key {key} was not found")));
        };
        let k = match k {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        if out.contains_key(&k) && !overwrite {
            return Err(invalid(format!(
                "Key {k} is not unique, cannot correctly turn into dict"
            )));
        }
        out.insert(k, item.clone());
    }
    Ok(from_json_value(&Json::Object(out)))
}

/// The `key_name=` / `value_name=` keywords of `dict2items` and `items2dict`.
fn entry_names(kwargs: &Kwargs) -> Result<(String, String), Error> {
    let key_name: Option<String> = kwargs.get("key_name")?;
    let value_name: Option<String> = kwargs.get("value_name")?;
    kwargs.assert_all_used()?;
    Ok((
        key_name.unwrap_or_else(|| "key".into()),
        value_name.unwrap_or_else(|| "value".into()),
    ))
}

/// `filter requires a list, got dict`.
fn requires(filter: &str, what: &str, v: &Value) -> Error {
    invalid(format!("{filter} requires {what}, got {}", type_name(v)))
}

fn dict2items(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (k, val) = entry_names(&kwargs)?;
    let Json::Object(map) = to_json_value(&v)? else {
        return Err(requires("dict2items", "a dictionary", &v));
    };
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
    let (k, val) = entry_names(&kwargs)?;
    let Json::Array(items) = to_json_value(&v)? else {
        return Err(requires("items2dict", "a list", &v));
    };
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
        return Err(requires("flatten", "a list", &v));
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

/// Both operands of a set filter as lists.
fn two_lists(a: &Value, b: &Value, filter: &str) -> Result<(Vec<Json>, Vec<Json>), Error> {
    let list_of = |v: &Value| match to_json_value(v)? {
        Json::Array(items) => Ok(items),
        other => Err(invalid(format!("{filter} requires lists, got {other}"))),
    };
    Ok((list_of(a)?, list_of(b)?))
}

/// The items in first-seen order without repeats, as a list value (Ansible's set filters keep
/// order).
fn unique(items: impl IntoIterator<Item = Json>) -> Value {
    let mut out: Vec<Json> = Vec::new();
    for x in items {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    from_json_value(&Json::Array(out))
}

fn union(a: Value, b: Value) -> Result<Value, Error> {
    let (a, b) = two_lists(&a, &b, "union")?;
    Ok(unique(a.into_iter().chain(b)))
}

fn intersect(a: Value, b: Value) -> Result<Value, Error> {
    let (a, b) = two_lists(&a, &b, "intersect")?;
    Ok(unique(a.into_iter().filter(|x| b.contains(x))))
}

fn difference(a: Value, b: Value) -> Result<Value, Error> {
    let (a, b) = two_lists(&a, &b, "difference")?;
    Ok(unique(a.into_iter().filter(|x| !b.contains(x))))
}

fn symmetric_difference(a: Value, b: Value) -> Result<Value, Error> {
    let (a, b) = two_lists(&a, &b, "symmetric_difference")?;
    let both: Vec<Json> = a.iter().filter(|x| b.contains(x)).cloned().collect();
    let all: Vec<Json> = a.into_iter().chain(b).collect();
    Ok(unique(all.into_iter().filter(|x| !both.contains(x))))
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
