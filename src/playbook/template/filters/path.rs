//! Python's `os.path` as filters: `basename`, `dirname`, `splitext`, `path_join`.

use super::py_str;
use minijinja::value::ValueKind;
use minijinja::{Environment, Error, Value};

/// Register this file's filters on `env`.
pub(super) fn register(env: &mut Environment<'static>) {
    env.add_filter("dirname", dirname);
    env.add_filter("basename", basename);
    env.add_filter("splitext", splitext);
    env.add_filter("path_join", path_join);
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
