//! Python's `re` as filters: `regex_replace` (with `\1` / `\g<name>` replacements),
//! `regex_search`, `regex_findall`, `regex_escape`.

use super::{invalid, py_str};
use crate::playbook::template::regex_cache;
use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, Value};

/// Register this file's filters on `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", regex_escape);
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

#[cfg(test)]
mod tests {
    use super::*;

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
