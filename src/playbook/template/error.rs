//! Template errors: the [`TemplateError`] kinds, where they happened (` in "…"` / ` in FILE line
//! N`), and which variable an undefined-value error is about.

use super::scan::{is_guarded, word_position};
use super::{Failed, RESULT_VAR};
use crate::value::{Value, Vars};
use minijinja::{Environment, Error, ErrorKind};

/// A template that could not be rendered. The runner adds file:line, task and host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// An undefined variable or attribute (`'foo' is undefined`, `'foo.bar' is undefined`).
    #[error("'{name}' is undefined{at}")]
    Undefined { name: String, at: String },
    /// The template text is not valid Jinja.
    #[error("template syntax error: {message}{at}")]
    Syntax { message: String, at: String },
    /// A filter, test or operation failed.
    #[error("template error: {message}{at}")]
    Render { message: String, at: String },
    /// Variables refer to each other in a loop.
    #[error("recursive loop detected in template string: variable '{name}' refers to itself")]
    Recursion { name: String },
}

impl TemplateError {
    /// The undefined variable's name, if that is the problem.
    pub fn undefined_name(&self) -> Option<&str> {
        match self {
            TemplateError::Undefined { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// Find which variable was undefined: the first one (in source order) that is missing
/// from `vars` or whose attribute path stops at a mapping without the key.
pub(super) fn undefined_error(
    env: &Environment<'static>,
    err: &Error,
    source: &str,
    name: Option<&str>,
    vars: &Vars,
    failed: &Failed,
) -> TemplateError {
    let at = location(source, name, err.line());
    let nested = env
        .get_template(source)
        .map(|t| t.undeclared_variables(true))
        .unwrap_or_default();
    let mut candidates: Vec<String> = nested.into_iter().collect();
    // Source order, but names guarded by `| default(…)` or `is defined` come last: they are
    // allowed to be undefined, so the culprit is usually another one.
    candidates.sort_by_key(|n| {
        let root = n.split('.').next().unwrap_or_default();
        (
            is_guarded(source, n),
            word_position(source, root),
            n.clone(),
        )
    });
    let is_global = |n: &str| env.globals().any(|(g, _)| g == n);
    for cand in &candidates {
        let mut parts = cand.split('.');
        let root = parts.next().unwrap_or_default();
        if let Some((_, e)) = failed.iter().find(|(f, _)| f == root) {
            return e.clone();
        }
        if root == RESULT_VAR || is_global(root) {
            continue;
        }
        let Some(mut cur) = vars.get(root) else {
            return TemplateError::Undefined {
                name: root.to_string(),
                at,
            };
        };
        let mut path = root.to_string();
        for p in parts {
            let Value::Object(m) = cur else { break };
            match m.get(p) {
                Some(next) => {
                    cur = next;
                    path.push('.');
                    path.push_str(p);
                }
                None if matches!(p, "items" | "keys" | "values" | "get" | "copy") => break,
                None => {
                    return TemplateError::Undefined {
                        name: format!("{path}.{p}"),
                        at,
                    }
                }
            }
        }
    }
    if let Some((_, e)) = failed.iter().next() {
        return e.clone();
    }
    let detail = err.detail().unwrap_or("undefined value");
    TemplateError::Render {
        message: format!("{detail} (an undefined attribute or loop variable)"),
        at,
    }
}

/// ` in "…snippet…"` or ` in NAME line N`.
pub(super) fn location(source: &str, name: Option<&str>, line: Option<usize>) -> String {
    let snippet = |s: &str| {
        let s = s.trim();
        if s.chars().count() > 200 {
            let cut: String = s.chars().take(200).collect();
            format!("{cut}…")
        } else {
            s.to_string()
        }
    };
    match (name, line) {
        (Some(n), Some(l)) if source.contains('\n') && !source.starts_with("{% set ") => {
            format!(" in {n} line {l}")
        }
        (Some(n), _) => format!(" in \"{}\"", snippet(n)),
        (None, Some(l)) if source.contains('\n') => {
            let text = source.lines().nth(l.saturating_sub(1)).unwrap_or_default();
            format!(" in \"{}\" (line {l} of the template)", snippet(text))
        }
        (None, _) => format!(" in \"{}\"", snippet(source)),
    }
}

pub(super) fn convert_error(
    err: &Error,
    source: &str,
    at_text: &str,
    name: Option<&str>,
) -> TemplateError {
    let mut message = err
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| err.kind().to_string());
    // Keep the cause chain (e.g. a regex compile error).
    let mut src = std::error::Error::source(err);
    while let Some(s) = src {
        message.push_str(&format!(": {s}"));
        src = s.source();
    }
    let at = if name.is_some() {
        location(source, name, err.line())
    } else {
        location(at_text, None, err.line())
    };
    match err.kind() {
        ErrorKind::SyntaxError => TemplateError::Syntax { message, at },
        ErrorKind::UnknownFilter
        | ErrorKind::UnknownTest
        | ErrorKind::UnknownFunction
        | ErrorKind::UnknownMethod => TemplateError::Render {
            message: format!("{}: {message}", err.kind()),
            at,
        },
        _ => TemplateError::Render { message, at },
    }
}
