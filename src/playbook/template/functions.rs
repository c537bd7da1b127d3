//! Global functions (`lookup`/`query`/`q` for `env` and `file`) and the Python methods Ansible
//! templates call on values (`s.split(',')`, `d.items()`, `x.startswith('a')`, …).

use super::filters::{defined, py_str};
use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, Value};
use std::path::{Path, PathBuf};

/// Variables the `file` lookup reads to resolve relative paths; the renderer always passes them.
pub const LOOKUP_VARS: &[&str] = &["role_path", "playbook_dir"];

pub fn register(env: &mut Environment<'static>) {
    env.add_function("lookup", lookup);
    env.add_function("query", query);
    env.add_function("q", query);
    env.add_function("dict", dict);
    env.add_function(VAULT_LOCKED, vault_locked);
    env.set_unknown_method_callback(call_method);
}

/// What a `!vault` value read without any vault secret becomes: a template that fails when
/// (and only when) the value is used, as Ansible decrypts only on use.
pub const VAULT_LOCKED: &str = "__knockplay_vault_locked";

fn vault_locked(at: String) -> Result<Value, Error> {
    Err(invalid(format!(
        "Attempting to decrypt but no vault secrets found: the !vault value at {at} \
         (give --vault-password-file, --ask-vault-pass or --vault-id)"
    )))
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

fn run_lookup(
    state: &State,
    name: &str,
    terms_in: &[Value],
    kwargs: &Kwargs,
) -> Result<Vec<Value>, Error> {
    if matches!(name, "first_found" | "ansible.builtin.first_found") {
        return first_found(state, terms_raw(terms_in));
    }
    let terms: Vec<String> = terms_raw(terms_in)
        .iter()
        .map(py_str)
        .collect::<Result<_, _>>()?;
    match name {
        "env" | "ansible.builtin.env" => {
            let default: Option<String> = kwargs.get("default")?;
            Ok(terms
                .iter()
                .map(|t| {
                    Value::from(
                        std::env::var(t)
                            .ok()
                            .or_else(|| default.clone())
                            .unwrap_or_default(),
                    )
                })
                .collect())
        }
        "file" | "ansible.builtin.file" => {
            let rstrip: Option<bool> = kwargs.get("rstrip")?;
            let lstrip: Option<bool> = kwargs.get("lstrip")?;
            let mut out = Vec::new();
            for t in &terms {
                let path = find_file(state, t)
                    .ok_or_else(|| invalid(format!("could not locate file in lookup: {t}")))?;
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| invalid(format!("lookup('file'): {}: {e}", path.display())))?;
                let mut s = text.as_str();
                if rstrip.unwrap_or(true) {
                    s = s.trim_end();
                }
                if lstrip.unwrap_or(false) {
                    s = s.trim_start();
                }
                out.push(Value::from(s));
            }
            Ok(out)
        }
        "varnames" | "ansible.builtin.varnames" => varnames(state, &terms),
        "fileglob" | "ansible.builtin.fileglob" => Ok(fileglob(state, &terms)),
        other => super::lookups::run(state, other, &terms, kwargs).unwrap_or_else(|| {
            Err(invalid(format!(
                "lookup plugin '{other}' is not supported by knockplay (supported: env, file, \
                 fileglob, first_found, varnames, vars, template, pipe, lines, password)"
            )))
        }),
    }
}

/// The raw terms (first_found takes mappings as well as names).
fn terms_raw(terms: &[Value]) -> Vec<Value> {
    terms
        .iter()
        .flat_map(|t| {
            if t.kind() == ValueKind::Seq {
                t.try_iter()
                    .map(|i| i.collect::<Vec<_>>())
                    .unwrap_or_default()
            } else {
                vec![t.clone()]
            }
        })
        .collect()
}

/// The context variable that lists every variable's name for `varnames` (put there by the
/// renderer when a template calls a lookup).
pub const VARNAMES: &str = "__knockplay_varnames";

/// `varnames`: the names of the variables whose names match one of the regexes (from their
/// start, as Python's `re.match`), in definition order.
fn varnames(state: &State, terms: &[String]) -> Result<Vec<Value>, Error> {
    let mut res = Vec::new();
    for t in terms {
        let re = regex::Regex::new(&format!("^(?:{t})"))
            .map_err(|e| invalid(format!("lookup('varnames'): invalid regex {t:?}: {e}")))?;
        res.push(re);
    }
    let all = state.lookup(VARNAMES).unwrap_or_default();
    let names: Vec<Value> = all
        .try_iter()
        .map(|i| i.collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|n| {
            n.as_str()
                .is_some_and(|s| res.iter().any(|re| re.is_match(s)))
        })
        .collect();
    Ok(names)
}

/// `first_found`: the first file that exists among names (or `{files, paths, skip}` mappings),
/// searched like the `file` lookup. None found: an error, or nothing with `skip: true`.
fn first_found(state: &State, terms: Vec<Value>) -> Result<Vec<Value>, Error> {
    let mut skip = false;
    let mut candidates: Vec<String> = Vec::new();
    for t in terms {
        if t.kind() == ValueKind::Map {
            let list = |k: &str| -> Vec<String> {
                match t.get_attr(k) {
                    Ok(v) if v.kind() == ValueKind::Seq => v
                        .try_iter()
                        .map(|i| i.filter_map(|x| py_str(&x).ok()).collect())
                        .unwrap_or_default(),
                    Ok(v) if !v.is_undefined() && !v.is_none() => py_str(&v)
                        .map(|s| s.split([',', ';']).map(|p| p.trim().to_string()).collect())
                        .unwrap_or_default(),
                    _ => Vec::new(),
                }
            };
            let files = list("files");
            let paths = list("paths");
            skip |= t.get_attr("skip").map(|v| v.is_true()).unwrap_or(false);
            if paths.is_empty() {
                candidates.extend(files);
            } else {
                for p in &paths {
                    candidates.extend(files.iter().map(|f| format!("{p}/{f}")));
                }
            }
        } else {
            candidates.push(py_str(&t)?);
        }
    }
    for c in &candidates {
        if let Some(p) = find_file(state, c) {
            return Ok(vec![Value::from(p.display().to_string())]);
        }
    }
    if skip {
        return Ok(Vec::new());
    }
    Err(invalid("No file was found when using first_found."))
}

/// `fileglob`: controller files matching each pattern (in the file lookup's directories).
fn fileglob(state: &State, terms: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for t in terms {
        let p = Path::new(t);
        let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
            continue;
        };
        let dir_text = dir.to_string_lossy();
        let base = if dir_text.is_empty() {
            Some(PathBuf::from("."))
        } else {
            find_dir(state, &dir_text)
        };
        let Some(base) = base else { continue };
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        let pattern = name.to_string_lossy();
        let mut found: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter(|e| crate::shell::glob_match(&pattern, &e.file_name().to_string_lossy()))
            .map(|e| e.path().display().to_string())
            .collect();
        found.sort();
        out.extend(found.into_iter().map(Value::from));
    }
    out
}

/// A directory, searched as [`find_file`] searches files.
fn find_dir(state: &State, name: &str) -> Option<PathBuf> {
    find_path(state, name, Path::is_dir)
}

/// Relative paths are searched like Ansible: role `files/`, role dir, playbook `files/`,
/// playbook dir, then the current directory.
fn find_file(state: &State, name: &str) -> Option<PathBuf> {
    find_path(state, name, Path::is_file)
}

/// The first of the lookup directories' candidates for `name` that `wanted` accepts.
fn find_path(state: &State, name: &str, wanted: fn(&Path) -> bool) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.is_absolute() {
        return wanted(p).then(|| p.to_path_buf());
    }
    let mut candidates = Vec::new();
    for var in LOOKUP_VARS {
        if let Some(dir) = state
            .lookup(var)
            .and_then(|v| v.as_str().map(PathBuf::from))
        {
            candidates.push(dir.join("files").join(p));
            candidates.push(dir.join(p));
        }
    }
    candidates.push(p.to_path_buf());
    candidates.into_iter().find(|c| wanted(c))
}

fn lookup(state: &State, name: String, terms: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let wantlist: Option<bool> = kwargs.get("wantlist")?;
    let results = run_lookup(state, &name, &terms, &kwargs)?;
    kwargs.assert_all_used()?;
    if wantlist.unwrap_or(false) {
        return Ok(Value::from(results));
    }
    Ok(match results.len() {
        1 => results.into_iter().next().unwrap_or_default(),
        _ => Value::from(
            results
                .iter()
                .map(py_str)
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
        ),
    })
}

fn query(state: &State, name: String, terms: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let _: Option<bool> = kwargs.get("wantlist")?;
    let results = run_lookup(state, &name, &terms, &kwargs)?;
    kwargs.assert_all_used()?;
    Ok(Value::from(results))
}

/// Python's `dict()`: a mapping, a list of pairs (`dict(keys | zip(values))`), and keywords.
fn dict(value: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let mut out: Vec<(Value, Value)> = Vec::new();
    match value {
        None => {}
        Some(v) if v.is_undefined() || v.is_none() => {}
        Some(v) if v.kind() == ValueKind::Map => {
            for k in v.try_iter()? {
                let item = v.get_item(&k)?;
                out.push((k, item));
            }
        }
        Some(v) => {
            for pair in v.try_iter()? {
                let items: Vec<Value> = pair.try_iter()?.collect();
                let [k, item] = <[Value; 2]>::try_from(items).map_err(|items| {
                    invalid(format!(
                        "dict(): each element must be a (key, value) pair, got {} item(s)",
                        items.len()
                    ))
                })?;
                out.push((k, item));
            }
        }
    }
    for key in kwargs.args() {
        let v: Value = kwargs.get(key)?;
        out.push((Value::from(key), v));
    }
    // Later keys win, first position kept (Python dict semantics).
    let mut map: indexmap::IndexMap<Value, Value> = indexmap::IndexMap::new();
    for (k, v) in out {
        map.insert(k, v);
    }
    Ok(Value::from_iter(map))
}

fn arg_str(args: &[Value], i: usize) -> Result<Option<String>, Error> {
    match args.get(i) {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => py_str(v).map(Some),
    }
}

fn arg_count(args: &[Value], max: usize, method: &str) -> Result<(), Error> {
    if args.len() > max {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            format!("{method}() takes at most {max} arguments"),
        ));
    }
    Ok(())
}

/// Python `str.split`/`rsplit` semantics (no separator: split on runs of whitespace).
fn py_split(s: &str, sep: Option<&str>, maxsplit: i64, from_right: bool) -> Result<Value, Error> {
    let parts: Vec<String> = match sep {
        Some("") => return Err(invalid("empty separator")),
        Some(sep) => {
            if maxsplit < 0 {
                s.split(sep).map(String::from).collect()
            } else if from_right {
                let mut v: Vec<String> = s
                    .rsplitn(maxsplit as usize + 1, sep)
                    .map(String::from)
                    .collect();
                v.reverse();
                v
            } else {
                s.splitn(maxsplit as usize + 1, sep)
                    .map(String::from)
                    .collect()
            }
        }
        None => {
            let words: Vec<&str> = s.split_whitespace().collect();
            if maxsplit < 0 || words.len() <= maxsplit as usize + 1 {
                words.into_iter().map(String::from).collect()
            } else if from_right {
                let keep = maxsplit as usize;
                let split_at = words.len() - keep;
                // The untouched left part keeps its inner whitespace.
                let mut rest = s.trim_end();
                for _ in 0..keep {
                    if let Some(i) = rest.rfind(char::is_whitespace) {
                        rest = rest[..i].trim_end();
                    }
                }
                let mut v = vec![rest.trim_start().to_string()];
                v.extend(words[split_at..].iter().map(|w| w.to_string()));
                v
            } else {
                let mut v: Vec<String> = Vec::new();
                let mut rest = s.trim_start();
                for _ in 0..maxsplit {
                    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                    v.push(rest[..end].to_string());
                    rest = rest[end..].trim_start();
                }
                v.push(rest.to_string());
                v
            }
        }
    };
    Ok(Value::from(parts))
}

fn starts_or_ends(s: &str, arg: Option<&Value>, ends: bool) -> Result<Value, Error> {
    let arg = arg.ok_or_else(|| Error::from(ErrorKind::MissingArgument))?;
    let candidates: Vec<String> = if arg.kind() == ValueKind::Seq {
        arg.try_iter()?
            .map(|v| py_str(&v))
            .collect::<Result<_, _>>()?
    } else {
        vec![py_str(arg)?]
    };
    Ok(Value::from(candidates.iter().any(|c| {
        if ends {
            s.ends_with(c.as_str())
        } else {
            s.starts_with(c.as_str())
        }
    })))
}

fn string_method(s: &str, name: &str, args: &[Value]) -> Result<Value, Error> {
    let strip_chars = |args: &[Value]| -> Result<Option<Vec<char>>, Error> {
        Ok(arg_str(args, 0)?.map(|c| c.chars().collect()))
    };
    Ok(match name {
        "lower" => Value::from(s.to_lowercase()),
        "upper" => Value::from(s.to_uppercase()),
        "strip" => match strip_chars(args)? {
            Some(c) => Value::from(s.trim_matches(&c[..])),
            None => Value::from(s.trim()),
        },
        "lstrip" => match strip_chars(args)? {
            Some(c) => Value::from(s.trim_start_matches(&c[..])),
            None => Value::from(s.trim_start()),
        },
        "rstrip" => match strip_chars(args)? {
            Some(c) => Value::from(s.trim_end_matches(&c[..])),
            None => Value::from(s.trim_end()),
        },
        "split" | "rsplit" => {
            arg_count(args, 2, name)?;
            let max = match args.get(1) {
                Some(v) => i64::try_from(v.clone())?,
                None => -1,
            };
            py_split(s, arg_str(args, 0)?.as_deref(), max, name == "rsplit")?
        }
        "splitlines" => Value::from(s.lines().map(String::from).collect::<Vec<_>>()),
        "startswith" => starts_or_ends(s, args.first(), false)?,
        "endswith" => starts_or_ends(s, args.first(), true)?,
        "replace" => {
            let from = arg_str(args, 0)?.ok_or_else(|| Error::from(ErrorKind::MissingArgument))?;
            let to = arg_str(args, 1)?.ok_or_else(|| Error::from(ErrorKind::MissingArgument))?;
            match args.get(2) {
                Some(n) => Value::from(s.replacen(&from, &to, usize::try_from(n.clone())?)),
                None => Value::from(s.replace(&from, &to)),
            }
        }
        "find" => {
            let sub = arg_str(args, 0)?.unwrap_or_default();
            Value::from(s.find(&sub).map_or(-1, |i| s[..i].chars().count() as i64))
        }
        "count" => Value::from(s.matches(&arg_str(args, 0)?.unwrap_or_default()).count()),
        "join" => {
            let items = args
                .first()
                .ok_or_else(|| Error::from(ErrorKind::MissingArgument))?;
            let parts: Vec<String> = items
                .try_iter()?
                .map(|v| py_str(&v))
                .collect::<Result<_, _>>()?;
            Value::from(parts.join(s))
        }
        "title" | "capitalize" => {
            let mut out = String::with_capacity(s.len());
            let mut start = true;
            for c in s.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.extend(c.to_lowercase());
                }
                start = if name == "title" {
                    !c.is_alphanumeric()
                } else {
                    false
                };
            }
            Value::from(out)
        }
        "isdigit" => Value::from(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit())),
        "isalpha" => Value::from(!s.is_empty() && s.chars().all(char::is_alphabetic)),
        "isalnum" => Value::from(!s.is_empty() && s.chars().all(char::is_alphanumeric)),
        "isspace" => Value::from(!s.is_empty() && s.chars().all(char::is_whitespace)),
        "islower" => {
            Value::from(s.chars().any(char::is_lowercase) && !s.chars().any(char::is_uppercase))
        }
        "isupper" => {
            Value::from(s.chars().any(char::is_uppercase) && !s.chars().any(char::is_lowercase))
        }
        "zfill" => {
            let width = args
                .first()
                .map(|w| usize::try_from(w.clone()))
                .transpose()?
                .unwrap_or(0);
            let len = s.chars().count();
            if len >= width {
                Value::from(s)
            } else {
                let (sign, digits) = match s.chars().next() {
                    Some(c @ ('-' | '+')) => (c.to_string(), &s[1..]),
                    _ => (String::new(), s),
                };
                Value::from(format!("{sign}{}{digits}", "0".repeat(width - len)))
            }
        }
        "format" => Value::from(py_format(s, args)?),
        _ => return Err(Error::from(ErrorKind::UnknownMethod)),
    })
}

/// `'{}-{}'.format(a, b)` / `'{0}'` / `'{name}'` (kwargs): plain fields, no format specs.
fn py_format(s: &str, args: &[Value]) -> Result<String, Error> {
    let (positional, kwargs): (Vec<&Value>, Vec<&Value>) =
        args.iter().partition(|a| !a.is_kwargs());
    let mut out = String::new();
    let mut auto = 0usize;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let field: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let field = field.split(':').next().unwrap_or_default();
                let v = if field.is_empty() {
                    auto += 1;
                    positional.get(auto - 1).map(|v| (*v).clone())
                } else if let Ok(i) = field.parse::<usize>() {
                    positional.get(i).map(|v| (*v).clone())
                } else {
                    kwargs
                        .first()
                        .and_then(|k| k.get_attr(field).ok())
                        .filter(|v| !v.is_undefined())
                };
                let v =
                    v.ok_or_else(|| invalid(format!("format: no value for field {{{field}}}")))?;
                out.push_str(&py_str(&v)?);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

fn call_method(state: &State, value: &Value, name: &str, args: &[Value]) -> Result<Value, Error> {
    defined(value)?;
    match value.kind() {
        ValueKind::String => string_method(value.as_str().unwrap_or_default(), name, args),
        ValueKind::Map => match name {
            "keys" => Ok(Value::from(value.try_iter()?.collect::<Vec<_>>())),
            "values" => {
                let vals: Vec<Value> = value
                    .try_iter()?
                    .map(|k| value.get_item(&k))
                    .collect::<Result<_, _>>()?;
                Ok(Value::from(vals))
            }
            "items" => state.apply_filter("items", std::slice::from_ref(value)),
            "get" => {
                let key = args
                    .first()
                    .ok_or_else(|| Error::from(ErrorKind::MissingArgument))?;
                let v = value.get_item(key)?;
                Ok(if v.is_undefined() {
                    args.get(1).cloned().unwrap_or(Value::from(()))
                } else {
                    v
                })
            }
            "copy" => Ok(value.clone()),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        },
        ValueKind::Seq => match name {
            "index" => {
                let needle = args
                    .first()
                    .ok_or_else(|| Error::from(ErrorKind::MissingArgument))?;
                value
                    .try_iter()?
                    .position(|x| &x == needle)
                    .map(Value::from)
                    .ok_or_else(|| invalid(format!("{needle} is not in list")))
            }
            "count" => {
                let needle = args
                    .first()
                    .ok_or_else(|| Error::from(ErrorKind::MissingArgument))?;
                Ok(Value::from(
                    value.try_iter()?.filter(|x| x == needle).count(),
                ))
            }
            "copy" => Ok(value.clone()),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        },
        _ => Err(Error::from(ErrorKind::UnknownMethod)),
    }
}
