//! `replace`: every match of a regular expression in a file replaced, optionally only between
//! `after` and `before`. The edit is the pure [`edit`] (Ansible's rules: `^`/`$` match at line
//! ends, the section between `after` and `before` spans lines, Python's `\1`/`\g<name>` in the
//! replacement); reading and writing go through [`TextFile`].

use regex::Regex;

use super::args::Args;
use super::plan::finish;
use super::textfile::TextFile;
use super::write::{validate_arg, Attrs, FILE_COMMON};
use super::{Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};

pub struct Replace;

const SPEC: Spec = Spec::new(
    "replace",
    &[
        Param::path("path")
            .required()
            .aliases(&["dest", "destfile", "name"]),
        Param::str("regexp").required(),
        Param::str("replace").default(""),
        Param::str("after"),
        Param::str("before"),
        Param::bool("backup").default("false"),
        Param::str("validate"),
        Param::str("encoding").only("utf-8"),
    ],
)
.shared(&[FILE_COMMON]);

/// What [`edit`] made of the file.
#[derive(Debug, PartialEq, Eq)]
pub struct Edited {
    pub text: String,
    /// How many matches were replaced (0: unchanged).
    pub count: usize,
    pub msg: String,
}

/// Python's replacement template (`\1`, `\g<1>`, `\g<name>`, `\n`, `\t`, `\\`) in the regex
/// crate's syntax (`${1}`, `${name}`, a literal `$` as `$$`).
fn replacement(py: &str) -> String {
    let mut out = String::new();
    let mut chars = py.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = d.to_string();
                    if let Some(&e) = chars.peek().filter(|e| e.is_ascii_digit()) {
                        n.push(e);
                        chars.next();
                    }
                    out.push_str(&format!("${{{n}}}"));
                }
                Some('g') if chars.peek() == Some(&'<') => {
                    chars.next();
                    let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
                    out.push_str(&format!("${{{name}}}"));
                }
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('\\') => out.push('\\'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            other => out.push(other),
        }
    }
    out
}

/// Replaces `regexp` by `replace` in `contents` (between `after` and `before` when given).
pub fn edit(
    contents: &str,
    regexp: &str,
    replace: &str,
    after: Option<&str>,
    before: Option<&str>,
) -> Result<Edited, String> {
    let section_pattern = match (after, before) {
        (Some(a), Some(b)) => Some(format!("{a}(?P<subsection>.*?){b}")),
        (Some(a), None) => Some(format!("{a}(?P<subsection>.*)")),
        (None, Some(b)) => Some(format!("(?P<subsection>.*){b}")),
        (None, None) => None,
    };
    let (start, end) = match &section_pattern {
        None => (0, contents.len()),
        Some(p) => {
            let re = Regex::new(&format!("(?s){p}"))
                .map_err(|e| format!("Unable to process replace due to error: {e}"))?;
            match re.captures(contents).and_then(|c| c.name("subsection")) {
                Some(m) => (m.start(), m.end()),
                None => {
                    return Ok(Edited {
                        text: contents.to_string(),
                        count: 0,
                        msg: format!(
                            "Pattern for before/after params did not match the given file: {p}"
                        ),
                    })
                }
            }
        }
    };
    let re = Regex::new(&format!("(?m){regexp}"))
        .map_err(|e| format!("Unable to process replace due to error: {e}"))?;
    let section = &contents[start..end];
    let count = re.find_iter(section).count();
    let replaced = re.replace_all(section, replacement(replace).as_str());
    if count == 0 || replaced == section {
        return Ok(Edited {
            text: contents.to_string(),
            count: 0,
            msg: String::new(),
        });
    }
    Ok(Edited {
        text: format!("{}{replaced}{}", &contents[..start], &contents[end..]),
        count,
        msg: format!("{count} replacements made"),
    })
}

impl Module for Replace {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let tf = TextFile {
            module: args.module(),
            path: args.req_str("path")?,
            create: false,
            backup: args.bool("backup")?,
            attrs: Attrs::from_args_without_preserve(args)?,
            validate: validate_arg(args)?,
        };
        let regexp = args.req_str("regexp")?;
        let replace = args.str("replace")?.unwrap_or_default();
        let (after, before) = (args.str("after")?, args.str("before")?);
        let st = match tf.probe(ctx)? {
            Ok(st) => st,
            Err(r) => return Ok(r),
        };
        let current = match tf.current(&st) {
            Ok(Some(c)) => c,
            Ok(None) => {
                let mut r = ModuleResult::failed(format!("Path {} does not exist !", tf.path));
                r.rc = Some(257);
                return Ok(r);
            }
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        let Ok(text) = String::from_utf8(current.clone()) else {
            return Ok(ModuleResult::failed(format!(
                "{} is not UTF-8 text",
                tf.path
            )));
        };
        let e = match edit(
            &text,
            &regexp,
            &replace,
            after.as_deref(),
            before.as_deref(),
        ) {
            Ok(e) => e,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        finish(
            ctx,
            tf.outcome(&st, Some(&current), e.text.into_bytes(), e.msg),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_like_pythons_re_subn() {
        let t = "port=80\nhost=a\nport=8080\n";
        let e = edit(t, r"^port=(\d+)$", r"port=\g<1>0", None, None).unwrap();
        assert_eq!(e.text, "port=800\nhost=a\nport=80800\n");
        assert_eq!((e.count, e.msg.as_str()), (2, "2 replacements made"));
        let e = edit(t, r"^port=(\d+)", r"p=\1 $x", Some("host"), None).unwrap();
        assert_eq!(e.text, "port=80\nhost=a\np=8080 $x\n");
        let none = edit(t, "nomatch", "x", None, None).unwrap();
        assert_eq!((none.count, none.text.as_str()), (0, t));
        let miss = edit(t, "port", "x", Some("zzz"), None).unwrap();
        assert_eq!(
            miss.msg,
            "Pattern for before/after params did not match the given file: zzz(?P<subsection>.*)"
        );
        assert!(edit(t, "(", "x", None, None)
            .unwrap_err()
            .starts_with("Unable to process replace due to error"));
    }
}
