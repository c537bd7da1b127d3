//! The `with_<lookup>` loops beyond lists and dicts, as Ansible's lookup plugins build their
//! items: `with_nested` (every combination), `with_together` (zipped, padded with null),
//! `with_indexed_items` (`[index, item]`), `with_sequence` (`start=1 end=5 format=web%02d`),
//! `with_subelements` (`[parent, child]` for each child list) and `with_fileglob` (controller
//! files matching a pattern). Pure except `fileglob`, which lists directories.

use std::path::{Path, PathBuf};

use crate::value::{to_display, Value};

/// The items of lookup `name` over its rendered terms `v`. `dirs`: where relative `fileglob`
/// patterns are searched (the role's and playbook's `files/`, the playbook's directory).
pub fn items(name: &str, v: Value, dirs: &[PathBuf]) -> Result<Vec<Value>, String> {
    match name {
        "nested" => nested(lists(v, name)?),
        "together" => Ok(together(lists(v, name)?)),
        "indexed_items" => Ok(flat(v)
            .into_iter()
            .enumerate()
            .map(|(i, x)| Value::Array(vec![Value::from(i), x]))
            .collect()),
        "sequence" => sequence(&v),
        "subelements" => subelements(v),
        "fileglob" => fileglob(&v, dirs),
        "file" => files(&v, dirs),
        other => Err(format!("with_{other} is not supported by knockplay")),
    }
}

/// A list of lists (each term a list; a scalar term is a one-item list).
fn lists(v: Value, name: &str) -> Result<Vec<Vec<Value>>, String> {
    match v {
        Value::Array(terms) => Ok(terms
            .into_iter()
            .map(|t| match t {
                Value::Array(a) => a,
                other => vec![other],
            })
            .collect()),
        other => Err(format!(
            "with_{name} expects a list of lists, got {}",
            to_display(&other)
        )),
    }
}

fn flat(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a
            .into_iter()
            .flat_map(|i| match i {
                Value::Array(inner) => inner,
                other => vec![other],
            })
            .collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Most combinations `with_nested` builds.
const MAX_ITEMS: usize = 100_000;

fn nested(lists: Vec<Vec<Value>>) -> Result<Vec<Value>, String> {
    let mut out: Vec<Vec<Value>> = vec![Vec::new()];
    for l in lists {
        if out.len().saturating_mul(l.len()) > MAX_ITEMS {
            return Err(format!("with_nested: more than {MAX_ITEMS} combinations"));
        }
        out = out
            .into_iter()
            .flat_map(|prefix| {
                l.iter().map(move |x| {
                    let mut p = prefix.clone();
                    p.push(x.clone());
                    p
                })
            })
            .collect();
    }
    Ok(out.into_iter().map(Value::Array).collect())
}

fn together(lists: Vec<Vec<Value>>) -> Vec<Value> {
    let n = lists.iter().map(Vec::len).max().unwrap_or(0);
    (0..n)
        .map(|i| {
            Value::Array(
                lists
                    .iter()
                    .map(|l| l.get(i).cloned().unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect()
}

/// `start=1 end=10 stride=2 format=x%02d` (or `count=`), as a string or a mapping.
fn sequence(v: &Value) -> Result<Vec<Value>, String> {
    let mut start = 1i64;
    let mut end: Option<i64> = None;
    let mut count: Option<i64> = None;
    let mut stride = 1i64;
    let mut format = "%d".to_string();
    let mut set = |k: &str, val: &str| -> Result<(), String> {
        let num = || {
            let t = val.trim();
            let parsed = if let Some(h) = t.strip_prefix("0x") {
                i64::from_str_radix(h, 16)
            } else {
                t.parse()
            };
            parsed.map_err(|_| format!("with_sequence: {k}={val} is not a number"))
        };
        match k {
            "start" => start = num()?,
            "end" => end = Some(num()?),
            "count" => count = Some(num()?),
            "stride" => stride = num()?,
            "format" => format = val.to_string(),
            other => return Err(format!("with_sequence: unknown option {other}")),
        }
        Ok(())
    };
    let terms: Vec<Value> = match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    for t in terms {
        match t {
            Value::Object(m) => {
                for (k, val) in m {
                    set(&k, &to_display(&val))?;
                }
            }
            other => {
                let text = to_display(&other);
                let mut words = text.split_whitespace().peekable();
                // Shortcut form: `[start-]end[/stride][:format]`.
                if words.peek().is_some_and(|w| !w.contains('=')) {
                    let w = words.next().unwrap_or_default();
                    let (range, fmt) = w.split_once(':').map_or((w, None), |(a, b)| (a, Some(b)));
                    let (range, st) = range
                        .split_once('/')
                        .map_or((range, None), |(a, b)| (a, Some(b)));
                    match range.split_once('-') {
                        Some((a, b)) => {
                            set("start", a)?;
                            set("end", b)?;
                        }
                        None => set("end", range)?,
                    }
                    if let Some(s) = st {
                        set("stride", s)?;
                    }
                    if let Some(f) = fmt {
                        set("format", f)?;
                    }
                }
                for w in words {
                    let (k, val) = w
                        .split_once('=')
                        .ok_or_else(|| format!("with_sequence: bad term '{w}'"))?;
                    set(k, val)?;
                }
            }
        }
    }
    let end = match (end, count) {
        (Some(_), Some(_)) => return Err("with_sequence: can't specify both count and end".into()),
        (Some(e), None) => e,
        (None, Some(c)) => start + (c - 1) * stride,
        (None, None) => return Err("with_sequence: must specify count or end".into()),
    };
    if stride == 0 {
        return Ok(Vec::new());
    }
    let n = ((end - start) / stride + 1).max(0) as usize;
    if n > MAX_ITEMS {
        return Err(format!("with_sequence: more than {MAX_ITEMS} items"));
    }
    Ok((0..n)
        .map(|i| Value::String(printf_int(&format, start + i as i64 * stride)))
        .collect())
}

/// `%d`, `%02d`, `%x`, `%o` in `fmt` with `n`.
fn printf_int(fmt: &str, n: i64) -> String {
    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '-' {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let zero = spec.starts_with('0');
        let width: usize = spec.trim_start_matches(['0', '-']).parse().unwrap_or(0);
        let body = match chars.next() {
            Some('x') => format!("{n:x}"),
            Some('X') => format!("{n:X}"),
            Some('o') => format!("{n:o}"),
            Some('%') => "%".into(),
            _ => n.to_string(),
        };
        if zero {
            out.push_str(&format!("{body:0>width$}"));
        } else {
            out.push_str(&format!("{body:>width$}"));
        }
    }
    out
}

/// `[list_of_dicts, "key"]` (a third term `{skip_missing: true}` allowed).
fn subelements(v: Value) -> Result<Vec<Value>, String> {
    let Value::Array(terms) = v else {
        return Err("with_subelements expects [list, 'key']".into());
    };
    let parents = match terms.first() {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Object(m)) => m.values().cloned().collect(),
        _ => return Err("with_subelements: the first term must be a list".into()),
    };
    let key = terms
        .get(1)
        .map(to_display)
        .ok_or("with_subelements: the second term must name a key")?;
    let skip_missing = terms
        .get(2)
        .and_then(|f| f.get("skip_missing"))
        .and_then(crate::value::as_bool)
        .unwrap_or(false);
    let mut out = Vec::new();
    for p in parents {
        let mut node = Some(&p);
        for part in key.split('.') {
            node = node.and_then(|n| n.get(part));
        }
        match node {
            Some(Value::Array(children)) => {
                for c in children {
                    out.push(Value::Array(vec![p.clone(), c.clone()]));
                }
            }
            None if skip_missing => {}
            None => {
                return Err(format!(
                    "could not find '{key}' key in iterated item '{}'",
                    to_display(&p)
                ))
            }
            Some(other) => {
                return Err(format!(
                    "the key {key} should point to a list, got '{}'",
                    to_display(other)
                ))
            }
        }
    }
    Ok(out)
}

/// `with_file`: each controller file's contents (vault files decrypted), trailing whitespace
/// dropped as the `file` lookup does.
fn files(v: &Value, dirs: &[PathBuf]) -> Result<Vec<Value>, String> {
    flat(v.clone())
        .iter()
        .map(to_display)
        .map(|name| {
            let p = Path::new(&name);
            let found = if p.is_absolute() {
                Some(p.to_path_buf())
            } else {
                dirs.iter().map(|d| d.join(p)).find(|c| c.is_file())
            };
            let path = found.ok_or_else(|| format!("could not locate file in lookup: {name}"))?;
            let bytes = crate::vault::read_file(&path)?;
            Ok(Value::String(
                String::from_utf8_lossy(&bytes).trim_end().to_string(),
            ))
        })
        .collect()
}

fn fileglob(v: &Value, dirs: &[PathBuf]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for pattern in flat(v.clone()).iter().map(to_display) {
        let p = Path::new(&pattern);
        let (dir_part, name_pat) = match (p.parent(), p.file_name()) {
            (Some(d), Some(n)) => (d.to_path_buf(), n.to_string_lossy().into_owned()),
            _ => continue,
        };
        let bases: Vec<PathBuf> = if p.is_absolute() {
            vec![dir_part]
        } else {
            dirs.iter().map(|d| d.join(&dir_part)).collect()
        };
        // The first directory that exists holds the matches (as Ansible's search does).
        let Some(base) = bases.into_iter().find(|b| b.is_dir()) else {
            continue;
        };
        let mut found: Vec<String> = std::fs::read_dir(&base)
            .map_err(|e| format!("with_fileglob: {}: {e}", base.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter(|e| crate::shell::glob_match(&name_pat, &e.file_name().to_string_lossy()))
            .map(|e| e.path().display().to_string())
            .collect();
        found.sort();
        out.extend(found.into_iter().map(Value::String));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookups_build_ansibles_items() {
        let none: &[PathBuf] = &[];
        assert_eq!(
            items("nested", json!([["a", "b"], [1, 2]]), none).unwrap(),
            vec![
                json!(["a", 1]),
                json!(["a", 2]),
                json!(["b", 1]),
                json!(["b", 2])
            ]
        );
        assert_eq!(
            items("together", json!([["a", "b"], [1]]), none).unwrap(),
            vec![json!(["a", 1]), json!(["b", null])]
        );
        assert_eq!(
            items("indexed_items", json!(["a", ["b"]]), none).unwrap(),
            vec![json!([0, "a"]), json!([1, "b"])]
        );
        assert_eq!(
            items("sequence", json!("start=1 end=3 format=web%02d"), none).unwrap(),
            vec![json!("web01"), json!("web02"), json!("web03")]
        );
        assert_eq!(
            items("sequence", json!("4"), none).unwrap(),
            vec![json!("1"), json!("2"), json!("3"), json!("4")]
        );
        assert_eq!(
            items(
                "sequence",
                json!({"start": 0, "count": 3, "stride": 2}),
                none
            )
            .unwrap(),
            vec![json!("0"), json!("2"), json!("4")]
        );
        let users =
            json!([[{"name": "a", "keys": ["k1", "k2"]}, {"name": "b", "keys": []}], "keys"]);
        let got = items("subelements", users, none).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1][1], json!("k2"));
        assert!(items("subelements", json!([[{"name": "c"}], "keys"]), none)
            .unwrap_err()
            .contains("could not find 'keys'"));
        let big = Value::Array(vec![json!(1); 1000]);
        assert!(items("nested", Value::Array(vec![big.clone(), big]), none)
            .unwrap_err()
            .contains("more than 100000 combinations"));
    }

    #[test]
    fn fileglob_lists_matching_controller_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("files/conf.d")).unwrap();
        for f in ["a.conf", "b.conf", "c.txt"] {
            std::fs::write(d.path().join("files/conf.d").join(f), "").unwrap();
        }
        let got = items(
            "fileglob",
            json!(["conf.d/*.conf"]),
            &[d.path().join("files")],
        )
        .unwrap();
        let names: Vec<String> = got
            .iter()
            .map(|v| {
                Path::new(&to_display(v))
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["a.conf", "b.conf"]);
        std::fs::write(d.path().join("files/key.pub"), "ssh-ed25519 AAAA me\n").unwrap();
        let got = items("file", json!(["key.pub"]), &[d.path().join("files")]).unwrap();
        assert_eq!(got, vec![json!("ssh-ed25519 AAAA me")]);
        assert!(items("file", json!(["nope"]), &[d.path().join("files")])
            .unwrap_err()
            .contains("could not locate file in lookup: nope"));
    }
}
