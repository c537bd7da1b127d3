//! Requirement strings as Ansible's pip module reads them (`packaging.requirements`): the name,
//! extras, version specifiers, URL and marker; PEP 440 versions and specifier matching, enough to
//! tell whether `pip list --format=freeze` already satisfies a requirement (check mode).

use std::cmp::Ordering;

/// One requirement (`Package` in Ansible's module).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// Canonical name (`Foo_Bar` → `foo-bar`), or the text as given when it does not parse.
    pub package_name: String,
    /// Parsed, or `None` for a URL, path or anything else pip reads itself.
    pub req: Option<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub name: String,
    pub extras: Vec<String>,
    /// `(operator, version)`, whitespace removed.
    pub specs: Vec<(String, String)>,
    pub url: Option<String>,
    pub marker: Option<String>,
}

const OPS: [&str; 8] = ["===", "~=", "==", "!=", "<=", ">=", "<", ">"];

/// `[-_.]+` → `-`, lowercased.
pub fn canonicalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !sep {
                out.push('-');
            }
            sep = true;
        } else {
            out.extend(c.to_lowercase());
            sep = false;
        }
    }
    out
}

fn valid_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `packaging.requirements.Requirement(text)`, or `None` when it does not parse.
pub fn parse_requirement(text: &str) -> Option<Requirement> {
    let (main, marker) = match text.split_once(';') {
        Some((m, k)) => (m, Some(k.trim().to_string()).filter(|k| !k.is_empty())),
        None => (text, None),
    };
    let main = main.trim();
    let end = main
        .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
        .unwrap_or(main.len());
    let name = &main[..end];
    if !valid_name(name) {
        return None;
    }
    let mut rest = main[end..].trim_start();
    let mut extras = Vec::new();
    if let Some(r) = rest.strip_prefix('[') {
        let (inside, after) = r.split_once(']')?;
        for e in inside.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if !valid_name(e) {
                return None;
            }
            extras.push(e.to_string());
        }
        extras.sort();
        extras.dedup();
        rest = after.trim_start();
    }
    let mut specs = Vec::new();
    let mut url = None;
    if let Some(u) = rest.strip_prefix('@') {
        let u = u.trim();
        if u.is_empty() || u.contains(char::is_whitespace) {
            return None;
        }
        url = Some(u.to_string());
    } else {
        let rest = rest.trim();
        let rest = rest
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or(rest);
        for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let op = OPS.iter().find(|o| part.starts_with(**o))?;
            let v: String = part[op.len()..].split_whitespace().collect();
            let ok = if *op == "===" {
                !v.is_empty()
            } else if let Some(prefix) = v.strip_suffix(".*") {
                matches!(*op, "==" | "!=") && Version::parse(prefix).is_some()
            } else {
                Version::parse(&v).is_some()
            };
            if !ok {
                return None;
            }
            specs.push((op.to_string(), v));
        }
    }
    Some(Requirement {
        name: name.to_string(),
        extras,
        specs,
        url,
        marker,
    })
}

impl std::fmt::Display for Requirement {
    /// `str(Requirement)`: specifiers sorted and joined by `,`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.extras.is_empty() {
            write!(f, "[{}]", self.extras.join(","))?;
        }
        let mut specs: Vec<String> = self.specs.iter().map(|(o, v)| format!("{o}{v}")).collect();
        specs.sort();
        write!(f, "{}", specs.join(","))?;
        if let Some(u) = &self.url {
            write!(f, "@ {u}")?;
            if self.marker.is_some() {
                write!(f, " ")?;
            }
        }
        if let Some(m) = &self.marker {
            write!(f, "; {m}")?;
        }
        Ok(())
    }
}

impl Package {
    /// `Package(name, version)`: a version starting with a digit means `==version`.
    pub fn new(name: &str, version: Option<&str>) -> Package {
        let mut text = name.to_string();
        if let Some(v) = version.map(str::trim_start).filter(|v| !v.is_empty()) {
            let sep = if v.starts_with(|c: char| c.is_ascii_digit()) {
                "=="
            } else {
                " "
            };
            text = format!("{text}{sep}{v}");
        }
        match parse_requirement(&text) {
            Some(req) => Package {
                package_name: canonicalize(&req.name),
                req: Some(req),
            },
            None => Package {
                package_name: text,
                req: None,
            },
        }
    }

    pub fn has_version_specifier(&self) -> bool {
        self.req.as_ref().is_some_and(|r| !r.specs.is_empty())
    }

    /// Whether an installed `version` satisfies every specifier (pre-releases allowed).
    pub fn is_satisfied_by(&self, version: &str) -> bool {
        let Some(r) = &self.req else { return false };
        r.specs.iter().all(|(op, v)| spec_contains(op, v, version))
    }

    /// The word passed to pip.
    pub fn word(&self) -> String {
        match &self.req {
            Some(r) => r.to_string(),
            None => self.package_name.clone(),
        }
    }
}

impl std::fmt::Display for Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.word())
    }
}

/// Ansible's `_recover_package_name`: `['django>1.1', '<1.3', 'x']` → `['django>1.1,<1.3', 'x']`.
pub fn recover_package_names(names: &[String]) -> Vec<String> {
    let parts: Vec<&str> = names.iter().flat_map(|n| n.split(',')).collect();
    let is_name = |n: &str| !OPS.iter().any(|o| n.trim_start().starts_with(o));
    let mut out = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut in_brackets = false;
    for p in parts {
        if is_name(p) && !in_brackets && !cur.is_empty() {
            out.push(cur.join(","));
            cur.clear();
        }
        if p.contains('[') {
            in_brackets = true;
        }
        if in_brackets && p.contains(']') {
            in_brackets = false;
        }
        cur.push(p);
    }
    out.push(cur.join(","));
    out
}

/// A PEP 440 version, as a comparable key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    /// (rank: dev-only -1, a 0, b 1, rc 2, final 3; number).
    pre: (i8, u64),
    post: Option<u64>,
    dev: Option<u64>,
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let t = text.trim().to_lowercase();
        let t = t.strip_prefix('v').unwrap_or(&t);
        let t = t.split('+').next()?;
        let (epoch, t) = match t.split_once('!') {
            Some((e, r)) => (e.parse().ok()?, r),
            None => (0, t),
        };
        let mut rel_end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        while rel_end > 0 && t[..rel_end].ends_with('.') {
            rel_end -= 1;
        }
        let release: Vec<u64> = t[..rel_end]
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        let mut rest = &t[rel_end..];
        let num = |s: &str| -> (u64, usize) {
            let s2 = s.trim_start_matches(['.', '-', '_']);
            let skipped = s.len() - s2.len();
            let n = s2.find(|c: char| !c.is_ascii_digit()).unwrap_or(s2.len());
            (s2[..n].parse().unwrap_or(0), skipped + n)
        };
        let mut pre = None;
        let mut post = None;
        let mut dev = None;
        while !rest.is_empty() {
            let r = rest.trim_start_matches(['.', '-', '_']);
            let kinds: [(&str, i8); 9] = [
                ("alpha", 0),
                ("beta", 1),
                ("preview", 2),
                ("pre", 2),
                ("rc", 2),
                ("a", 0),
                ("b", 1),
                ("c", 2),
                ("post", 9),
            ];
            if let Some(d) = r.strip_prefix("dev") {
                let (n, used) = num(d);
                dev = Some(n);
                rest = &d[used..];
            } else if let Some((k, rank)) = kinds.iter().find(|(k, _)| r.starts_with(k)) {
                let (n, used) = num(&r[k.len()..]);
                if *rank == 9 {
                    post = Some(n);
                } else {
                    pre = Some((*rank, n));
                }
                rest = &r[k.len() + used..];
            } else if let Some(d) = r.strip_prefix("r") {
                let (n, used) = num(d);
                post = Some(n);
                rest = &d[used..];
            } else {
                return None;
            }
        }
        let mut release = release;
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        let pre = match (pre, post, dev) {
            (Some(p), _, _) => p,
            (None, None, Some(_)) => (-1, 0),
            _ => (3, 0),
        };
        Some(Version {
            epoch,
            release,
            pre,
            post,
            dev,
        })
    }

    fn key(&self) -> (u64, &[u64], (i8, u64), i128, i128) {
        (
            self.epoch,
            &self.release,
            self.pre,
            self.post.map_or(-1, i128::from),
            self.dev.map_or(i128::MAX, i128::from),
        )
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.key(), other.key());
        a.0.cmp(&b.0)
            .then_with(|| cmp_release(a.1, b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
            .then(a.4.cmp(&b.4))
    }
}

fn cmp_release(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| a.get(i).unwrap_or(&0).cmp(b.get(i).unwrap_or(&0)))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// Whether `installed` matches one specifier (`op` `want`).
pub fn spec_contains(op: &str, want: &str, installed: &str) -> bool {
    if op == "===" {
        return want == installed;
    }
    let Some(have) = Version::parse(installed) else {
        return false;
    };
    if let Some(prefix) = want.strip_suffix(".*") {
        let Some(p) = Version::parse(prefix) else {
            return false;
        };
        let raw: Vec<u64> = prefix.split('.').filter_map(|x| x.parse().ok()).collect();
        let matches = p.epoch == have.epoch
            && (0..raw.len()).all(|i| have.release.get(i).unwrap_or(&0) == &raw[i]);
        return if op == "==" { matches } else { !matches };
    }
    let Some(w) = Version::parse(want) else {
        return false;
    };
    match op {
        "==" => have == w,
        "!=" => have != w,
        ">=" => have >= w,
        "<=" => have <= w,
        ">" => have > w,
        "<" => have < w,
        "~=" => {
            let parts: Vec<&str> = want.split('.').collect();
            if parts.len() < 2 {
                return false;
            }
            let prefix = format!("{}.*", parts[..parts.len() - 1].join("."));
            have >= w && spec_contains("==", &prefix, installed)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_print_as_packaging_does() {
        let cases = [
            ("Foo_Bar >= 1.0, <2", Some("Foo_Bar<2,>=1.0"), "foo-bar"),
            ("x[b,a]==1", Some("x[a,b]==1"), "x"),
            (
                "pkg@ https://h/p.whl ; python_version>'3'",
                Some("pkg@ https://h/p.whl ; python_version>'3'"),
                "pkg",
            ),
            (
                "git+https://h/r.git#egg=x",
                None,
                "git+https://h/r.git#egg=x",
            ),
            ("./local/dir", None, "./local/dir"),
        ];
        for (text, word, name) in cases {
            let p = Package::new(text, None);
            assert_eq!(
                p.req.as_ref().map(|r| r.to_string()).as_deref(),
                word,
                "{text}"
            );
            assert_eq!(p.package_name, name);
        }
        assert_eq!(Package::new("kptoy", Some("1.0")).word(), "kptoy==1.0");
        assert_eq!(Package::new("kptoy", Some(">=1,<3")).word(), "kptoy<3,>=1");
        assert!(!Package::new("kptoy", None).has_version_specifier());
        assert_eq!(
            recover_package_names(&[
                "django>1.11.1".into(),
                "<1.11.3".into(),
                "ipaddress".into(),
                "x[a,b]>1".into()
            ]),
            ["django>1.11.1,<1.11.3", "ipaddress", "x[a,b]>1"]
        );
    }

    #[test]
    fn versions_order_and_match_like_pep_440() {
        let ordered = [
            "1.0.dev1",
            "1.0a1",
            "1.0b2",
            "1.0rc1",
            "1.0",
            "1.0.post1",
            "1.1",
            "2!0.1",
        ];
        for w in ordered.windows(2) {
            assert!(
                Version::parse(w[0]).unwrap() < Version::parse(w[1]).unwrap(),
                "{w:?}"
            );
        }
        assert_eq!(Version::parse("1.0.0"), Version::parse("1"));
        let p = Package::new("x>=1.0,!=1.5,<2", None);
        let table = [
            ("1.0", true),
            ("1.5", false),
            ("1.9.9", true),
            ("2.0", false),
            ("0.9", false),
        ];
        for (v, want) in table {
            assert_eq!(p.is_satisfied_by(v), want, "{v}");
        }
        assert!(Package::new("x==1.*", None).is_satisfied_by("1.7"));
        assert!(!Package::new("x==1.*", None).is_satisfied_by("2.0"));
        assert!(Package::new("x~=1.4", None).is_satisfied_by("1.9"));
        assert!(!Package::new("x~=1.4", None).is_satisfied_by("2.0"));
        assert!(Package::new("x", None).is_satisfied_by("3"));
        assert!(!Package::new("git+https://h/x", None).is_satisfied_by("3"));
    }
}
