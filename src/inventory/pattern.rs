//! Host patterns (Ansible's syntax): `all`, `*`, group or host names, globs `web*`, regexes
//! `~web\d+`, subscripts `web[0]`/`web[1:3]`, unions `a:b`/`a,b`, intersections `a:&b`,
//! exclusions `a:!b`.

use regex::Regex;

/// `[i]` → (i, None); `[a:b]` → (a, Some(b)), both inclusive like Ansible.
pub type Subscript = (i64, Option<i64>);

/// One term of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub op: Op,
    pub name: String,
    pub subscript: Option<Subscript>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Union,
    Intersect,
    Exclude,
}

/// Split a pattern into terms: on `,` when present, else on `:` outside brackets.
pub fn split(pattern: &str) -> Result<Vec<Term>, String> {
    let raw: Vec<String> = if pattern.contains(',') {
        pattern.split(',').map(|s| s.trim().to_string()).collect()
    } else if pattern.trim().parse::<std::net::Ipv6Addr>().is_ok() {
        vec![pattern.trim().to_string()]
    } else {
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut depth = 0i32;
        for c in pattern.chars() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
            if c == ':' && depth == 0 {
                parts.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        parts.push(cur);
        parts.into_iter().map(|s| s.trim().to_string()).collect()
    };
    let mut terms = Vec::new();
    for r in raw.into_iter().filter(|s| !s.is_empty()) {
        let (op, rest) = if let Some(r) = r.strip_prefix('!') {
            (Op::Exclude, r)
        } else if let Some(r) = r.strip_prefix('&') {
            (Op::Intersect, r)
        } else {
            (Op::Union, r.as_str())
        };
        if rest.is_empty() {
            return Err(format!("empty term after '{}'", &r[..1]));
        }
        let (name, subscript) = split_subscript(rest)?;
        terms.push(Term {
            op,
            name,
            subscript,
        });
    }
    if terms.is_empty() {
        return Err("empty pattern".into());
    }
    Ok(terms)
}

/// `web[0]`, `web[-1]`, `web[1:3]`, `web[:2]`, `web[2:]` (not for `~regex` terms).
fn split_subscript(term: &str) -> Result<(String, Option<Subscript>), String> {
    if term.starts_with('~') || !term.ends_with(']') {
        return Ok((term.to_string(), None));
    }
    static RE: std::sync::OnceLock<Result<Regex, String>> = std::sync::OnceLock::new();
    let re = RE
        .get_or_init(|| {
            Regex::new(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)?\s*:\s*([0-9]+)?)\]$")
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)?;
    let Some(c) = re.captures(term) else {
        return Ok((term.to_string(), None));
    };
    let name = c[1].to_string();
    let num = |i: usize| c.get(i).and_then(|m| m.as_str().parse::<i64>().ok());
    if let Some(idx) = num(2) {
        return Ok((name, Some((idx, None))));
    }
    Ok((
        name,
        Some((num(3).unwrap_or(0), Some(num(4).unwrap_or(-1)))),
    ))
}

/// Apply a subscript like Ansible (`[a:b]` inclusive, `-1` = last).
pub fn apply_subscript(hosts: Vec<String>, sub: Option<Subscript>) -> Vec<String> {
    let Some((start, end)) = sub else {
        return hosts;
    };
    let len = hosts.len() as i64;
    let norm = |i: i64| if i < 0 { len + i } else { i };
    match end {
        None => {
            let i = norm(start);
            if (0..len).contains(&i) {
                vec![hosts[i as usize].clone()]
            } else {
                Vec::new()
            }
        }
        Some(e) => {
            let s = norm(start).clamp(0, len);
            let e = if e == -1 { len - 1 } else { norm(e) }.min(len - 1);
            if e < s {
                return Vec::new();
            }
            hosts[s as usize..=e as usize].to_vec()
        }
    }
}

/// A name matcher: fnmatch-style glob (full match) or `~regex` (matched at the start).
pub enum Matcher {
    Exact(String),
    Regex(Regex),
}

/// Compiled term regexes, by term (patterns repeat across plays and runs).
fn cached_regex(
    term: &str,
    build: impl FnOnce() -> Result<Regex, String>,
) -> Result<Regex, String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(re) = cache.lock().ok().and_then(|c| c.get(term).cloned()) {
        return Ok(re);
    }
    let re = build()?;
    if let Ok(mut c) = cache.lock() {
        if c.len() > 1024 {
            c.clear();
        }
        c.insert(term.to_string(), re.clone());
    }
    Ok(re)
}

impl Matcher {
    pub fn new(name: &str) -> Result<Matcher, String> {
        if let Some(re) = name.strip_prefix('~') {
            return cached_regex(name, || {
                Regex::new(&format!("^(?:{re})"))
                    .map_err(|e| format!("invalid regular expression: {e}"))
            })
            .map(Matcher::Regex);
        }
        if !name.contains(['*', '?', '[']) {
            return Ok(Matcher::Exact(name.to_string()));
        }
        cached_regex(name, || {
            Regex::new(&glob_to_regex(name)).map_err(|e| format!("invalid glob: {e}"))
        })
        .map(Matcher::Regex)
    }

    pub fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::Exact(n) => n == s,
            Matcher::Regex(r) => r.is_match(s),
        }
    }

    /// Whether host names should be searched even when groups matched (Ansible: regex/glob or a
    /// name with a dot).
    pub fn is_special(name: &str) -> bool {
        name.starts_with('~') || name.contains(['.', '?', '*', '['])
    }
}

/// Python's `fnmatch.translate`: `*`, `?`, `[seq]`, `[!seq]`; anchored at both ends.
pub fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("^(?s:");
    let chars: Vec<char> = glob.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str("\\[");
                } else {
                    let mut class: String = chars[i..j].iter().collect();
                    i = j + 1;
                    class = class.replace('\\', "\\\\");
                    if let Some(rest) = class.strip_prefix('!') {
                        class = format!("^{rest}");
                    } else if class.starts_with('^') {
                        class = format!("\\{class}");
                    }
                    out.push('[');
                    out.push_str(&class);
                    out.push(']');
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
    }
    out.push_str(")$");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(op: Op, name: &str, subscript: Option<Subscript>) -> Term {
        Term {
            op,
            name: name.to_string(),
            subscript,
        }
    }

    #[test]
    fn splits_terms() {
        use Op::*;
        let cases: Vec<(&str, Vec<Term>)> = vec![
            ("all", vec![t(Union, "all", None)]),
            ("web:db", vec![t(Union, "web", None), t(Union, "db", None)]),
            ("web,db", vec![t(Union, "web", None), t(Union, "db", None)]),
            (
                "web:&staging",
                vec![t(Union, "web", None), t(Intersect, "staging", None)],
            ),
            (
                "web:!phoenix",
                vec![t(Union, "web", None), t(Exclude, "phoenix", None)],
            ),
            (
                "webservers:dbservers:&staging:!phoenix",
                vec![
                    t(Union, "webservers", None),
                    t(Union, "dbservers", None),
                    t(Intersect, "staging", None),
                    t(Exclude, "phoenix", None),
                ],
            ),
            ("web[0]", vec![t(Union, "web", Some((0, None)))]),
            ("web[-1]", vec![t(Union, "web", Some((-1, None)))]),
            ("web[0:2]", vec![t(Union, "web", Some((0, Some(2))))]),
            ("web[1:]", vec![t(Union, "web", Some((1, Some(-1))))]),
            (
                "web[0:1]:db",
                vec![t(Union, "web", Some((0, Some(1)))), t(Union, "db", None)],
            ),
            ("web[1-3]", vec![t(Union, "web[1-3]", None)]),
            ("~web\\d+", vec![t(Union, "~web\\d+", None)]),
            ("*.example.com", vec![t(Union, "*.example.com", None)]),
            ("10.0.0.5", vec![t(Union, "10.0.0.5", None)]),
            ("fe80::1", vec![t(Union, "fe80::1", None)]),
            (
                " web , !db ",
                vec![t(Union, "web", None), t(Exclude, "db", None)],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(split(input).unwrap(), want, "{input}");
        }
        assert!(split("").is_err());
        assert!(split("web:!").is_err());
    }

    #[test]
    fn globs_like_fnmatch() {
        let cases = [
            ("web*", "web1", true),
            ("web*", "db1", false),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "a.example.org", false),
            ("web?", "web1", true),
            ("web?", "web10", false),
            ("web[12]", "web2", true),
            ("web[!12]", "web3", true),
            ("web[!12]", "web1", false),
            ("a.b", "axb", false),
        ];
        for (glob, s, want) in cases {
            assert_eq!(
                Matcher::new(glob).unwrap().matches(s),
                want,
                "{glob} vs {s}"
            );
        }
        assert!(Matcher::new("~web[0-9]+").unwrap().matches("web12x"));
        assert!(!Matcher::new("~web[0-9]+").unwrap().matches("xweb12"));
        assert!(Matcher::new("~(unclosed").is_err());
    }

    #[test]
    fn subscripts_like_ansible() {
        let hosts: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let cases: Vec<(Option<Subscript>, Vec<&str>)> = vec![
            (None, vec!["a", "b", "c", "d"]),
            (Some((0, None)), vec!["a"]),
            (Some((-1, None)), vec!["d"]),
            (Some((9, None)), vec![]),
            (Some((0, Some(1))), vec!["a", "b"]),
            (Some((1, Some(-1))), vec!["b", "c", "d"]),
            (Some((2, Some(9))), vec!["c", "d"]),
        ];
        for (sub, want) in cases {
            assert_eq!(apply_subscript(hosts.clone(), sub), want, "{sub:?}");
        }
    }
}
