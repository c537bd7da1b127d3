//! Python's `os.path` as filters: `basename`, `dirname`, `splitext`, `path_join`, and the ones
//! that look at the controller (as in Ansible, filters run there): `expanduser`, `expandvars`,
//! `realpath`, `relpath`.

use super::py_str;
use minijinja::value::ValueKind;
use minijinja::{Environment, Error, Value};

/// Register this file's filters on `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("dirname", dirname);
    env.add_filter("basename", basename);
    env.add_filter("splitext", splitext);
    env.add_filter("path_join", path_join);
    env.add_filter("expanduser", expanduser);
    env.add_filter("expandvars", expandvars);
    env.add_filter("realpath", realpath);
    env.add_filter("relpath", relpath);
    env.add_filter("normpath", |v: Value| -> Result<Value, Error> {
        Ok(Value::from(normpath(&py_str(&v)?)))
    });
    env.add_filter("commonpath", commonpath);
    env.add_filter("fileglob", fileglob);
    env.add_filter("win_basename", |v: Value| -> Result<Value, Error> {
        let p = py_str(&v)?;
        let (_, rest) = win_split(&p);
        Ok(Value::from(rest.rsplit(['\\', '/']).next().unwrap_or("")))
    });
    env.add_filter("win_dirname", |v: Value| -> Result<Value, Error> {
        let p = py_str(&v)?;
        let (drive, rest) = win_split(&p);
        let dir = match rest.rfind(['\\', '/']) {
            Some(i) => rest[..=i].trim_end_matches(['\\', '/']),
            None => "",
        };
        let dir = if dir.is_empty() && rest.starts_with(['\\', '/']) {
            &rest[..1]
        } else {
            dir
        };
        Ok(Value::from(format!("{drive}{dir}")))
    });
    env.add_filter("win_splitdrive", |v: Value| -> Result<Value, Error> {
        let p = py_str(&v)?;
        let (drive, rest) = win_split(&p);
        Ok(Value::from(vec![Value::from(drive), Value::from(rest)]))
    });
}

/// Python's `ntpath.splitdrive` for drive letters (`C:`): the drive and the rest.
fn win_split(p: &str) -> (&str, &str) {
    let b = p.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        (&p[..2], &p[2..])
    } else {
        ("", p)
    }
}

/// Python's `os.path.commonpath` of a list of paths.
fn commonpath(v: Value) -> Result<Value, Error> {
    let paths: Vec<String> = v
        .try_iter()?
        .map(|p| py_str(&p))
        .collect::<Result<_, _>>()?;
    let Some(first) = paths.first() else {
        return Err(super::invalid("commonpath() arg is an empty sequence"));
    };
    let abs = first.starts_with('/');
    if paths.iter().any(|p| p.starts_with('/') != abs) {
        return Err(super::invalid("Can't mix absolute and relative paths"));
    }
    let split = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect()
    };
    let mut common = split(first);
    for p in &paths[1..] {
        let parts = split(p);
        let n = common
            .iter()
            .zip(&parts)
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(n);
    }
    let joined = common.join("/");
    Ok(Value::from(if abs { format!("/{joined}") } else { joined }))
}

/// The `fileglob` filter: controller files matching a pattern (sorted), as the lookup.
fn fileglob(v: Value) -> Result<Value, Error> {
    let pattern = py_str(&v)?;
    let p = std::path::Path::new(&pattern);
    let (dir, name) = match (p.parent(), p.file_name()) {
        (Some(d), Some(n)) => (d.to_path_buf(), n.to_string_lossy().into_owned()),
        _ => return Ok(Value::from(Vec::<Value>::new())),
    };
    let dir = if dir.as_os_str().is_empty() {
        std::path::PathBuf::from(".")
    } else {
        dir
    };
    let mut found: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_file())
                .filter(|e| crate::shell::glob_match(&name, &e.file_name().to_string_lossy()))
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    Ok(Value::from(found))
}

/// `~` and `~/x` with the controller's `$HOME` (`~user` stays as written).
fn expanduser(v: Value) -> Result<Value, Error> {
    let p = py_str(&v)?;
    let home = std::env::var("HOME").unwrap_or_default();
    Ok(Value::from(match p.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
        _ => p,
    }))
}

/// `$NAME` and `${NAME}` from the controller's environment; unknown names stay as written.
fn expandvars(v: Value) -> Result<Value, Error> {
    let p = py_str(&v)?;
    let re = regex::Regex::new(r"\$(\w+|\{[^}]*\})").map_err(|e| super::invalid(e.to_string()))?;
    Ok(Value::from(
        re.replace_all(&p, |c: &regex::Captures| {
            let name = c[1].trim_start_matches('{').trim_end_matches('}');
            std::env::var(name).unwrap_or_else(|_| c[0].to_string())
        })
        .into_owned(),
    ))
}

/// Python's `os.path.normpath` of an absolute or relative path (no file system access).
fn normpath(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if abs => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// `os.path.realpath` on the controller: links resolved where the path exists.
fn realpath(v: Value) -> Result<Value, Error> {
    let p = py_str(&v)?;
    let out = match std::fs::canonicalize(&p) {
        Ok(c) => c.display().to_string(),
        Err(_) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            normpath(&cwd.join(&p).display().to_string())
        }
    };
    Ok(Value::from(out))
}

/// `os.path.relpath(path, start)` (start: the current directory).
fn relpath(v: Value, start: Option<String>) -> Result<Value, Error> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let abs = |p: &str| normpath(&cwd.join(p).display().to_string());
    let (p, s) = (abs(&py_str(&v)?), abs(start.as_deref().unwrap_or(".")));
    let a: Vec<&str> = p.split('/').filter(|x| !x.is_empty()).collect();
    let b: Vec<&str> = s.split('/').filter(|x| !x.is_empty()).collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out: Vec<&str> = vec![".."; b.len() - common];
    out.extend(&a[common..]);
    Ok(Value::from(if out.is_empty() {
        ".".to_string()
    } else {
        out.join("/")
    }))
}

/// Python's `os.path.basename`.
fn py_basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Python's `os.path.dirname`.
fn py_dirname(p: &str) -> &str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_path_filters() {
        let mut env = minijinja::Environment::new();
        register(&mut env);
        let r = |t: &str| env.render_str(t, ()).unwrap();
        assert_eq!(r("{{ '/a/b/c' | relpath('/a/x') }}"), "../b/c");
        assert_eq!(r("{{ '/a/b' | relpath('/a/b') }}"), ".");
        assert_eq!(
            r("{{ '/nonexistent/./x/../y' | realpath }}"),
            "/nonexistent/y"
        );
        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(r("{{ '~/x' | expanduser }}"), format!("{home}/x"));
        assert_eq!(r("{{ '~other/x' | expanduser }}"), "~other/x");
        assert_eq!(
            r("{{ '$HOME/${HOME}/$KP_NO_SUCH_VAR' | expandvars }}"),
            format!("{home}/{home}/$KP_NO_SUCH_VAR")
        );
        assert_eq!(normpath("a/../../b"), "../b");
        assert_eq!(r("{{ '/a/./b//c/../d' | normpath }}"), "/a/b/d");
        assert_eq!(
            r("{{ ['/usr/lib', '/usr/local/lib'] | commonpath }}"),
            "/usr"
        );
        assert_eq!(
            r("{{ 'C:\\\\Users\\\\x\\\\f.txt' | win_basename }}"),
            "f.txt"
        );
        assert_eq!(
            r("{{ 'C:\\\\Users\\\\x\\\\f.txt' | win_dirname }}"),
            "C:\\Users\\x"
        );
        assert_eq!(r("{{ 'C:\\\\x' | win_splitdrive | join('|') }}"), "C:|\\x");
    }

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
}
