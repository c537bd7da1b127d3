//! Lookups beyond `env`/`file`/`fileglob`/`first_found`/`varnames` (those live in
//! `functions`): `vars`, `template`, `pipe`, `lines` and `password`. Lookups run on the
//! controller, as in Ansible; `pipe` and `lines` run the playbook author's command with a
//! deadline.

use super::filters::py_str;
use minijinja::value::Kwargs;
use minijinja::{Error, ErrorKind, State, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every variable, unrendered, for the `vars` lookup (the renderer passes it when a template
/// names that lookup), and the names among them that are the author's templates.
pub const ALLVARS: &str = "__knockplay_allvars";
pub const LAZYNAMES: &str = "__knockplay_lazynames";
/// The scope itself, for the `template` lookup (passed when a template names that lookup).
pub const SCOPE: &str = "__knockplay_scope";

/// The variables a template is rendered with, and how deep `template` lookups are nested.
#[derive(Debug)]
pub struct ScopeHandle {
    pub vars: crate::value::Vars,
    pub depth: usize,
}

impl minijinja::value::Object for ScopeHandle {}

/// Most nested `template` lookups (a template that looks itself up stops here).
const MAX_TEMPLATE_DEPTH: usize = 8;

/// How long `pipe`/`lines` commands may run.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);
/// Most output a `pipe`/`lines` command may print.
const MAX_OUTPUT: usize = 16 << 20;

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// The lookup `name`, or `None` when this file does not have it.
pub fn run(
    state: &State,
    name: &str,
    terms: &[String],
    kwargs: &Kwargs,
) -> Option<Result<Vec<Value>, Error>> {
    let short = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    Some(match short {
        "vars" => vars(state, terms, kwargs),
        "pipe" => command_lookup(state, "pipe", terms).map(|outs| {
            outs.into_iter()
                .map(|o| Value::from(o.trim_end()))
                .collect()
        }),
        "lines" => command_lookup(state, "lines", terms).map(|outs| {
            outs.iter()
                .flat_map(|o| o.lines().map(Value::from).collect::<Vec<_>>())
                .collect()
        }),
        "password" => password(state, terms, kwargs),
        "template" => template(state, terms),
        _ => return None,
    })
}

/// `lookup('vars', name, default=...)`: a variable by a computed name, rendered when it is the
/// author's template (one level: what it refers to is taken as it is).
fn vars(state: &State, terms: &[String], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let default: Option<Value> = kwargs.get("default")?;
    let all = state.lookup(ALLVARS).unwrap_or_default();
    let lazy = state.lookup(LAZYNAMES).unwrap_or_default();
    let mut out = Vec::new();
    for t in terms {
        let v = all.get_attr(t).unwrap_or_default();
        if v.is_undefined() {
            match &default {
                Some(d) => out.push(d.clone()),
                None => {
                    return Err(Error::new(
                        ErrorKind::UndefinedError,
                        format!("No variable found with this name: {t}"),
                    ))
                }
            }
            continue;
        }
        let is_lazy = lazy
            .try_iter()
            .map(|mut names| names.any(|n| n.as_str() == Some(t.as_str())))
            .unwrap_or(false);
        match v.as_str() {
            Some(s) if is_lazy && (s.contains("{{") || s.contains("{%")) => {
                out.push(Value::from(state.env().render_str(s, &all)?));
            }
            _ => out.push(v),
        }
    }
    Ok(out)
}

/// `lookup('template', 'x.j2')`: a controller file (role `templates/`, role directory, playbook
/// `templates/`, playbook directory) rendered with the task's variables, as the template module
/// renders.
fn template(state: &State, terms: &[String]) -> Result<Vec<Value>, Error> {
    let handle = state.lookup(SCOPE).unwrap_or_default();
    let Some(scope) = handle.downcast_object_ref::<ScopeHandle>() else {
        return Err(invalid("lookup('template'): no variables to render with"));
    };
    if scope.depth >= MAX_TEMPLATE_DEPTH {
        return Err(invalid(format!(
            "lookup('template'): templates nested more than {MAX_TEMPLATE_DEPTH} deep"
        )));
    }
    let mut out = Vec::new();
    for t in terms {
        let path = template_file(state, t).ok_or_else(|| {
            invalid(format!(
                "the template file {t} could not be found for the lookup"
            ))
        })?;
        let source = std::fs::read_to_string(&path)
            .map_err(|e| invalid(format!("lookup('template'): {}: {e}", path.display())))?;
        let text = super::Templar::new()
            .render_template_nested(
                &source,
                &path.display().to_string(),
                &scope.vars,
                scope.depth + 1,
            )
            .map_err(|e| invalid(e.to_string()))?;
        out.push(Value::from(text));
    }
    Ok(out)
}

fn template_file(state: &State, name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.is_file().then(|| p.to_path_buf());
    }
    let mut candidates = Vec::new();
    for var in ["role_path", "playbook_dir"] {
        if let Some(dir) = state
            .lookup(var)
            .and_then(|v| v.as_str().map(PathBuf::from))
        {
            candidates.push(dir.join("templates").join(p));
            candidates.push(dir.join(p));
        }
    }
    candidates.push(p.to_path_buf());
    candidates.into_iter().find(|c| c.is_file())
}

/// The playbook's directory (Ansible runs `pipe` there).
fn basedir(state: &State) -> PathBuf {
    state
        .lookup("playbook_dir")
        .and_then(|v| v.as_str().map(PathBuf::from))
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Each term run by `sh -c` in the playbook's directory; its output, or an error naming the
/// exit code as Ansible does.
fn command_lookup(state: &State, lookup: &str, terms: &[String]) -> Result<Vec<String>, Error> {
    let dir = basedir(state);
    let mut outs = Vec::new();
    for t in terms {
        let (rc, out) = run_command(t, &dir)
            .map_err(|e| invalid(format!("lookup_plugin.{lookup}({t}): {e}")))?;
        if rc != 0 {
            return Err(invalid(format!(
                "lookup_plugin.{lookup}({t}) returned {rc}"
            )));
        }
        outs.push(out);
    }
    Ok(outs)
}

/// `sh -c cmd` in `dir`, stdout captured (capped), stderr passed through, killed at the deadline.
fn run_command(cmd: &str, dir: &Path) -> Result<(i32, String), String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run sh: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let res = (&mut stdout)
            .take(MAX_OUTPUT as u64 + 1)
            .read_to_end(&mut buf);
        res.map(|_| buf)
    });
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > COMMAND_DEADLINE => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {} s",
                    COMMAND_DEADLINE.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let buf = reader
        .join()
        .map_err(|_| "output reader failed".to_string())?
        .map_err(|e| e.to_string())?;
    if buf.len() > MAX_OUTPUT {
        return Err(format!("printed more than {MAX_OUTPUT} bytes"));
    }
    Ok((
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&buf).into_owned(),
    ))
}

/// The characters of `chars=` names (Python's `string` constants) or literal sets.
fn charset(names: &[String]) -> String {
    let mut out = String::new();
    for n in names {
        out.push_str(match n.as_str() {
            "ascii_letters" => "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "ascii_lowercase" => "abcdefghijklmnopqrstuvwxyz",
            "ascii_uppercase" => "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "digits" => "0123456789",
            "hexdigits" => "0123456789abcdefABCDEF",
            "octdigits" => "01234567",
            "punctuation" => "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
            other => other,
        });
    }
    out
}

/// `lookup('password', 'path length=N chars=...')`: the password stored in `path` on the
/// controller, generated (and stored, mode 0600) the first time; `/dev/null` is never stored.
fn password(state: &State, terms: &[String], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    for t in terms {
        let mut words = t.split_whitespace();
        let path = words
            .next()
            .ok_or_else(|| invalid("password lookup: no path given"))?;
        let mut length: usize = kwargs.get::<Option<usize>>("length")?.unwrap_or(20);
        let mut chars: Vec<String> = match kwargs.get::<Option<Value>>("chars")? {
            Some(v) => v
                .try_iter()
                .map(|i| i.filter_map(|c| py_str(&c).ok()).collect())
                .unwrap_or_else(|_| vec![py_str(&v).unwrap_or_default()]),
            None => vec!["ascii_letters".into(), "digits".into(), ".,:-_".into()],
        };
        for w in words {
            match w.split_once('=') {
                Some(("length", n)) => {
                    length = n
                        .parse()
                        .map_err(|_| invalid(format!("password lookup: bad length {n:?}")))?
                }
                Some(("chars", c)) => chars = c.split(',').map(str::to_string).collect(),
                Some(("encrypt" | "ident" | "seed", _)) => {
                    return Err(invalid(format!(
                        "password lookup: '{w}' is not supported by knockplay"
                    )))
                }
                _ => return Err(invalid(format!("password lookup: unknown parameter {w:?}"))),
            }
        }
        let p = if Path::new(path).is_absolute() {
            PathBuf::from(path)
        } else {
            basedir(state).join(path)
        };
        if path != "/dev/null" {
            if let Ok(text) = std::fs::read_to_string(&p) {
                let first = text.lines().next().unwrap_or("");
                let pw = first.split(" salt=").next().unwrap_or("").to_string();
                out.push(Value::from(pw));
                continue;
            }
        }
        let pool: Vec<char> = charset(&chars).chars().collect();
        if pool.is_empty() || length == 0 || length > 4096 {
            return Err(invalid(
                "password lookup: empty character set or bad length",
            ));
        }
        let mut raw = vec![0u8; length * 2];
        getrandom::getrandom(&mut raw).map_err(|e| invalid(format!("password lookup: {e}")))?;
        let pw: String = raw
            .chunks(2)
            .map(|c| pool[usize::from(u16::from_le_bytes([c[0], c[1]])) % pool.len()])
            .collect();
        if path != "/dev/null" {
            store(&p, &pw)
                .map_err(|e| invalid(format!("password lookup: {}: {e}", p.display())))?;
        }
        out.push(Value::from(pw));
    }
    Ok(out)
}

fn store(p: &Path, pw: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)?;
    f.write_all(format!("{pw}\n").as_bytes())
}
