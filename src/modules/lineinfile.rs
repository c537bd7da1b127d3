//! `lineinfile`: ensure a line is present (replacing a regexp match, inserting after/before an
//! anchor) or absent. The edit is a pure function over the file content with Ansible's exact
//! rules ([`present`], [`absent`]); the content is read in the probe round trip and written back
//! atomically in one more round trip only when it changed (the read-edit-write flow is
//! [`TextFile`], shared with `blockinfile`).

use regex::bytes::{Captures, Regex};

use super::args::Args;
use super::plan::{finish, Outcome, Plan};
use super::probe::FileState;
use super::textfile::{compile, split_lines, TextFile, TEXT_FILE_COMMON};
use super::write::FILE_COMMON;
use super::{Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};

pub struct LineInFile;

const SPEC: Spec = Spec::new(
    "lineinfile",
    &[
        Param::str("regexp").aliases(&["regex"]),
        Param::str("search_string"),
        Param::str("line").aliases(&["value"]),
        Param::bool("backrefs").default("false"),
        Param::bool("firstmatch").default("false"),
    ],
)
.shared(&[TEXT_FILE_COMMON, FILE_COMMON]);

impl Module for LineInFile {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let la = LineArgs::from_args(args)?;
        let tf = TextFile::from_args(args)?;
        let st = match tf.probe(ctx)? {
            Ok(st) => st,
            Err(r) => return Ok(r),
        };
        match plan(&la, &tf, &st) {
            Ok(o) => finish(ctx, o),
            Err(msg) => Ok(ModuleResult::failed(msg)),
        }
    }
}

/// Where to insert a line when nothing matched.
#[derive(Debug, Clone)]
pub enum Anchor {
    Bof,
    Eof,
    Re(Regex),
}

/// Validated `lineinfile` arguments (the edit part).
#[derive(Debug, Clone)]
pub struct LineArgs {
    pub regexp: Option<Regex>,
    pub search_string: Option<String>,
    pub line: Option<String>,
    pub present: bool,
    pub insertafter: Option<Anchor>,
    pub insertbefore: Option<Anchor>,
    pub backrefs: bool,
    pub firstmatch: bool,
}

impl LineArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        args.exclusive("insertbefore", "insertafter")?;
        args.exclusive("regexp", "search_string")?;
        args.exclusive("backrefs", "search_string")?;
        let regexp = args.str("regexp")?;
        let present = args.choice("state")?.as_deref() != Some("absent");
        let line = args.str("line")?;
        let search_string = args.str("search_string")?;
        let backrefs = args.bool("backrefs")?;
        let bad = |msg: &str| Err(ModuleError::Args(msg.to_string()));
        if present {
            if backrefs && regexp.is_none() {
                return bad("regexp is required with backrefs=true");
            }
            if line.is_none() {
                return bad("line is required with state=present");
            }
        } else if regexp.is_none() && search_string.is_none() && line.is_none() {
            return bad("one of line, search_string, or regexp is required with state=absent");
        }
        let anchor = |key: &str| -> Result<Option<Anchor>, ModuleError> {
            Ok(match args.str(key)? {
                None => None,
                Some(s) if s == "BOF" => Some(Anchor::Bof),
                Some(s) if s == "EOF" => Some(Anchor::Eof),
                Some(s) => Some(Anchor::Re(compile(key, &s)?)),
            })
        };
        Ok(Self {
            regexp: regexp.map(|r| compile("regexp", &r)).transpose()?,
            search_string,
            line,
            present,
            insertafter: anchor("insertafter")?,
            insertbefore: anchor("insertbefore")?,
            backrefs,
            firstmatch: args.bool("firstmatch")?,
        })
    }
}

/// Result of a pure edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub content: Vec<u8>,
    pub changed: bool,
    pub msg: String,
    /// Lines removed (state=absent).
    pub found: Option<usize>,
}

/// The line without its final `\n`: Python's `$` matches before a final newline, Rust's does not.
fn for_search(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\n").unwrap_or(l)
}

fn rstrip_crlf(l: &[u8]) -> &[u8] {
    let mut end = l.len();
    while end > 0 && (l[end - 1] == b'\n' || l[end - 1] == b'\r') {
        end -= 1;
    }
    &l[..end]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Python's `match.expand(template)`: `\1`, `\g<1>`, `\g<name>`, `\n`, `\t`, `\\`.
pub fn expand(template: &[u8], caps: &Captures<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    let group = |out: &mut Vec<u8>, g: Option<regex::bytes::Match<'_>>| {
        if let Some(g) = g {
            out.extend_from_slice(g.as_bytes());
        }
    };
    while i < template.len() {
        let c = template[i];
        if c != b'\\' || i + 1 >= template.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let n = template[i + 1];
        match n {
            b'0'..=b'9' => {
                let mut j = i + 1;
                let mut num = 0usize;
                while j < template.len() && j < i + 3 && template[j].is_ascii_digit() {
                    num = num * 10 + (template[j] - b'0') as usize;
                    j += 1;
                }
                group(&mut out, caps.get(num));
                i = j;
            }
            b'g' if template.get(i + 2) == Some(&b'<') => {
                if let Some(close) = template[i + 3..].iter().position(|&b| b == b'>') {
                    let name = String::from_utf8_lossy(&template[i + 3..i + 3 + close]);
                    let g = match name.parse::<usize>() {
                        Ok(num) => caps.get(num),
                        Err(_) => caps.name(&name),
                    };
                    group(&mut out, g);
                    i += 4 + close;
                } else {
                    out.extend_from_slice(b"\\g");
                    i += 2;
                }
            }
            b'n' => {
                out.push(b'\n');
                i += 2;
            }
            b't' => {
                out.push(b'\t');
                i += 2;
            }
            b'r' => {
                out.push(b'\r');
                i += 2;
            }
            b'\\' => {
                out.push(b'\\');
                i += 2;
            }
            _ => {
                out.push(b'\\');
                out.push(n);
                i += 2;
            }
        }
    }
    out
}

/// Ensure the line is present, with Ansible's `lineinfile` semantics. Pure.
pub fn present(content: &[u8], a: &LineArgs) -> Edit {
    let mut lines = split_lines(content);
    let line = a.line.as_deref().unwrap_or("").as_bytes().to_vec();
    let bre_ins = match (&a.insertafter, &a.insertbefore) {
        (Some(Anchor::Re(r)), _) => Some(r),
        (_, Some(Anchor::Re(r))) => Some(r),
        _ => None,
    };
    let mut index0: Option<usize> = None;
    let mut index1: Option<usize> = None;
    let mut matched = false;
    if let Some(re) = &a.regexp {
        for (i, l) in lines.iter().enumerate() {
            if re.is_match(for_search(l)) {
                index0 = Some(i);
                matched = true;
                if a.firstmatch {
                    break;
                }
            }
        }
    }
    if let Some(ss) = &a.search_string {
        for (i, l) in lines.iter().enumerate() {
            if contains(l, ss.as_bytes()) {
                index0 = Some(i);
                matched = true;
                if a.firstmatch {
                    break;
                }
            }
        }
    }
    if !matched {
        for (i, l) in lines.iter().enumerate() {
            if line.as_slice() == rstrip_crlf(l) {
                index0 = Some(i);
            } else if bre_ins.is_some_and(|r| r.is_match(for_search(l))) {
                if a.insertafter.is_some() {
                    index1 = Some(i + 1);
                    if a.firstmatch {
                        break;
                    }
                }
                if a.insertbefore.is_some() {
                    index1 = Some(i);
                    if a.firstmatch {
                        break;
                    }
                }
            }
        }
    }
    let mut with_nl = line.clone();
    with_nl.push(b'\n');
    let ends_open = |lines: &Vec<Vec<u8>>| {
        lines
            .last()
            .is_some_and(|l| !matches!(l.last(), Some(b'\n' | b'\r')))
    };
    let (changed, msg) = if let Some(i0) = index0 {
        let mut new_line = match (&a.regexp, a.backrefs && matched) {
            (Some(re), true) => match re.captures(for_search(&lines[i0])) {
                Some(caps) => expand(&line, &caps),
                None => line.clone(),
            },
            _ => line.clone(),
        };
        if !new_line.ends_with(b"\n") {
            new_line.push(b'\n');
        }
        if lines[i0] != new_line {
            lines[i0] = new_line;
            (true, "line replaced")
        } else {
            (false, "")
        }
    } else if a.backrefs {
        // Nothing matched: without the match there is nothing to fill the backrefs with.
        (false, "")
    } else if matches!(a.insertbefore, Some(Anchor::Bof))
        || matches!(a.insertafter, Some(Anchor::Bof))
    {
        lines.insert(0, with_nl);
        (true, "line added")
    } else if matches!(a.insertafter, Some(Anchor::Eof)) || index1.is_none() {
        if ends_open(&lines) {
            lines.push(b"\n".to_vec());
        }
        lines.push(with_nl);
        (true, "line added")
    } else if let (Some(_), Some(i1)) = (&a.insertafter, index1) {
        if lines.len() == i1 {
            if rstrip_crlf(&lines[i1 - 1]) != line.as_slice() {
                lines.push(with_nl);
                (true, "line added")
            } else {
                (false, "")
            }
        } else if line.as_slice() != rstrip_crlf(&lines[i1]) {
            lines.insert(i1, with_nl);
            (true, "line added")
        } else {
            (false, "")
        }
    } else {
        let i1 = index1.unwrap_or(0);
        lines.insert(i1, with_nl);
        (true, "line added")
    };
    Edit {
        content: lines.concat(),
        changed,
        msg: msg.to_string(),
        found: None,
    }
}

/// Remove every matching line, with Ansible's `lineinfile state=absent` semantics. Pure.
pub fn absent(content: &[u8], a: &LineArgs) -> Edit {
    let line = a.line.as_deref().unwrap_or("").as_bytes();
    let mut found = 0;
    let kept: Vec<Vec<u8>> = split_lines(content)
        .into_iter()
        .filter(|l| {
            let hit = if let Some(re) = &a.regexp {
                re.is_match(for_search(l))
            } else if let Some(ss) = &a.search_string {
                contains(l, ss.as_bytes())
            } else {
                line == rstrip_crlf(l)
            };
            if hit {
                found += 1;
            }
            !hit
        })
        .collect();
    Edit {
        content: kept.concat(),
        changed: found > 0,
        msg: if found > 0 {
            format!("{found} line(s) removed")
        } else {
            String::new()
        },
        found: Some(found),
    }
}

/// Plan a `lineinfile` task from the probed file. Pure.
pub fn plan(la: &LineArgs, tf: &TextFile, st: &FileState) -> Result<Outcome, String> {
    let current = tf.current(st)?;
    let Some(current) = current else {
        if !la.present {
            return Ok(Outcome::new(Plan::NoChange)
                .msg("file not present")
                .set("found", 0)
                .set("backup", ""));
        }
        if !tf.create {
            return Err(format!("Destination {} does not exist !", tf.path));
        }
        let edit = present(b"", la);
        return Ok(tf.outcome(st, None, edit.content, edit.msg));
    };
    let edit = if la.present {
        present(&current, la)
    } else {
        absent(&current, la)
    };
    let found = edit.found;
    let o = tf.outcome(
        st,
        Some(&current),
        if edit.changed {
            edit.content
        } else {
            current.clone()
        },
        edit.msg,
    );
    Ok(match found {
        Some(n) => o.set("found", n),
        None => o,
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    fn la(v: serde_json::Value) -> LineArgs {
        parse_with(&SPEC, v, LineArgs::from_args).unwrap()
    }

    /// (args, before, after, changed, msg)
    fn check(cases: &[(serde_json::Value, &str, &str, bool, &str)]) {
        for (a, before, after, changed, msg) in cases {
            let a2 = la(a.clone());
            let e = if a2.present {
                present(before.as_bytes(), &a2)
            } else {
                absent(before.as_bytes(), &a2)
            };
            let got = String::from_utf8(e.content.clone()).unwrap();
            let got = if e.changed { got } else { before.to_string() };
            assert_eq!(got, *after, "content for {a} on {before:?}");
            assert_eq!(e.changed, *changed, "changed for {a} on {before:?}");
            assert_eq!(e.msg, *msg, "msg for {a} on {before:?}");
            // Applying the same edit again never changes anything (idempotence).
            if *changed {
                let again = if a2.present {
                    present(after.as_bytes(), &a2)
                } else {
                    absent(after.as_bytes(), &a2)
                };
                // (backrefs patterns may legitimately match their own output.)
                if !a2.backrefs {
                    assert!(!again.changed, "second run changed for {a}");
                }
            }
        }
    }

    #[test]
    fn present_follows_ansible() {
        check(&[
            // Appends at EOF by default.
            (
                json!({"path": "f", "line": "c"}),
                "a\nb\n",
                "a\nb\nc\n",
                true,
                "line added",
            ),
            // Already there: nothing.
            (
                json!({"path": "f", "line": "b"}),
                "a\nb\n",
                "a\nb\n",
                false,
                "",
            ),
            // Missing final newline gets one before the added line.
            (
                json!({"path": "f", "line": "c"}),
                "a\nb",
                "a\nb\nc\n",
                true,
                "line added",
            ),
            // Empty file.
            (
                json!({"path": "f", "line": "x"}),
                "",
                "x\n",
                true,
                "line added",
            ),
            // regexp replaces the last match.
            (
                json!({"path": "f", "regexp": "^Port ", "line": "Port 2222"}),
                "Port 22\nX\nPort 23\n",
                "Port 22\nX\nPort 2222\n",
                true,
                "line replaced",
            ),
            // firstmatch replaces the first.
            (
                json!({"path": "f", "regexp": "^Port ", "line": "Port 2222", "firstmatch": true}),
                "Port 22\nX\nPort 23\n",
                "Port 2222\nX\nPort 23\n",
                true,
                "line replaced",
            ),
            // regexp with no match appends.
            (
                json!({"path": "f", "regexp": "^Port ", "line": "Port 2222"}),
                "X\n",
                "X\nPort 2222\n",
                true,
                "line added",
            ),
            // regexp $ matches before the newline, like Python.
            (
                json!({"path": "f", "regexp": "^SELINUX=.*$", "line": "SELINUX=disabled"}),
                "SELINUX=enforcing\n",
                "SELINUX=disabled\n",
                true,
                "line replaced",
            ),
            // insertafter a regex (last match).
            (
                json!({"path": "f", "line": "new", "insertafter": "^a"}),
                "a1\nb\na2\nc\n",
                "a1\nb\na2\nnew\nc\n",
                true,
                "line added",
            ),
            // insertafter with firstmatch.
            (
                json!({"path": "f", "line": "new", "insertafter": "^a", "firstmatch": true}),
                "a1\nb\na2\nc\n",
                "a1\nnew\nb\na2\nc\n",
                true,
                "line added",
            ),
            // insertafter matching the last line appends.
            (
                json!({"path": "f", "line": "new", "insertafter": "^c"}),
                "a\nc\n",
                "a\nc\nnew\n",
                true,
                "line added",
            ),
            // insertafter that does not match appends at EOF.
            (
                json!({"path": "f", "line": "new", "insertafter": "^zzz"}),
                "a\n",
                "a\nnew\n",
                true,
                "line added",
            ),
            // insertbefore a regex.
            (
                json!({"path": "f", "line": "new", "insertbefore": "^c"}),
                "a\nc\n",
                "a\nnew\nc\n",
                true,
                "line added",
            ),
            // insertbefore BOF.
            (
                json!({"path": "f", "line": "#!/bin/sh", "insertbefore": "BOF"}),
                "echo\n",
                "#!/bin/sh\necho\n",
                true,
                "line added",
            ),
            // insertafter BOF inserts at the top too.
            (
                json!({"path": "f", "line": "top", "insertafter": "BOF"}),
                "x\n",
                "top\nx\n",
                true,
                "line added",
            ),
            // The line exists elsewhere: no insertion even with an anchor.
            (
                json!({"path": "f", "line": "b", "insertafter": "^a"}),
                "a\nc\nb\n",
                "a\nc\nb\n",
                false,
                "",
            ),
            // regexp given, line already exists exactly (regexp not matching): nothing.
            (
                json!({"path": "f", "regexp": "^nomatch", "line": "b"}),
                "a\nb\n",
                "a\nb\n",
                false,
                "",
            ),
            // backrefs fill groups.
            (
                json!({"path": "f", "regexp": "^(\\w+)=(.*)$", "line": "\\1=new # was \\2", "backrefs": true}),
                "key=old\n",
                "key=new # was old\n",
                true,
                "line replaced",
            ),
            // backrefs without a match leaves the file alone.
            (
                json!({"path": "f", "regexp": "^nomatch(.*)", "line": "\\1", "backrefs": true}),
                "a\n",
                "a\n",
                false,
                "",
            ),
            // Named groups and \g<1>.
            (
                json!({"path": "f", "regexp": "^(?P<k>\\w+) (\\d+)", "line": "\\g<k>:\\g<2>", "backrefs": true}),
                "port 80\n",
                "port:80\n",
                true,
                "line replaced",
            ),
            // search_string is a plain substring.
            (
                json!({"path": "f", "search_string": "a.b", "line": "X"}),
                "aXb\na.b=1\n",
                "aXb\nX\n",
                true,
                "line replaced",
            ),
            // A CRLF line equal to `line` is found, then rewritten with "\n" (as Ansible does).
            (
                json!({"path": "f", "line": "b"}),
                "a\r\nb\r\n",
                "a\r\nb\n",
                true,
                "line replaced",
            ),
        ]);
    }

    #[test]
    fn absent_follows_ansible() {
        check(&[
            (
                json!({"path": "f", "state": "absent", "regexp": "^#"}),
                "#a\nb\n#c\n",
                "b\n",
                true,
                "2 line(s) removed",
            ),
            (
                json!({"path": "f", "state": "absent", "line": "b"}),
                "a\nb\nb \n",
                "a\nb \n",
                true,
                "1 line(s) removed",
            ),
            (
                json!({"path": "f", "state": "absent", "search_string": "x"}),
                "a\n",
                "a\n",
                false,
                "",
            ),
        ]);
    }

    #[test]
    fn argument_errors_name_the_problem() {
        let err = |v: serde_json::Value| {
            parse_with(&SPEC, v, LineArgs::from_args)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(json!({"path": "f"})),
            "lineinfile: line is required with state=present"
        );
        assert_eq!(
            err(json!({"path": "f", "backrefs": true, "line": "x"})),
            "lineinfile: regexp is required with backrefs=true"
        );
        assert!(err(json!({"path": "f", "state": "absent"})).contains("one of line"));
        assert!(
            err(json!({"path": "f", "line": "x", "insertafter": "a", "insertbefore": "b"}))
                .contains("mutually exclusive")
        );
        assert!(
            err(json!({"path": "f", "line": "x", "regexp": "(unclosed"}))
                .contains("parameter 'regexp' is not a valid regular expression")
        );
    }

    #[test]
    fn edits_a_real_file_with_one_probe_and_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sshd_config");
        std::fs::write(&f, "Port 22\nPermitRootLogin yes\n").unwrap();
        let p = f.to_str().unwrap();
        let a = args(
            json!({"path": p, "regexp": "^PermitRootLogin", "line": "PermitRootLogin no", "backup": true}),
        );
        let mut r = LocalRemote::default();
        // Check mode: diff, no write.
        let res = LineInFile
            .execute(&a, &mut ctx(&mut r, true, true, vec![]))
            .unwrap();
        assert!(res.changed);
        assert_eq!(res.diff[0].after, "Port 22\nPermitRootLogin no\n");
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "Port 22\nPermitRootLogin yes\n"
        );
        let res = LineInFile
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(res.msg.as_deref(), Some("line replaced"));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "Port 22\nPermitRootLogin no\n"
        );
        assert!(res.data.contains_key("backup_file"));
        let n = r.calls.len();
        let res = LineInFile
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(!res.changed, "{res:?}");
        assert_eq!(r.calls.len(), n + 1, "idempotent run is one round trip");
    }

    #[test]
    fn missing_files_and_create() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/new.conf");
        let p = f.to_str().unwrap();
        let mut r = LocalRemote::default();
        let res = LineInFile
            .execute(
                &args(json!({"path": p, "line": "x"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.failed);
        assert_eq!(
            res.msg.unwrap(),
            format!("Destination {p} does not exist !")
        );
        let res = LineInFile
            .execute(
                &args(json!({"path": p, "line": "x", "create": true, "mode": "0600"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "x\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let res = LineInFile
            .execute(
                &args(json!({"path": p, "state": "absent", "line": "nope"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(!res.changed);
        let res = LineInFile
            .execute(
                &args(json!({"path": dir.path().to_str().unwrap(), "line": "x"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.failed && res.msg.unwrap().contains("is a directory"));
    }

    #[test]
    fn edits_through_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("real");
        std::fs::write(&f, "a\n").unwrap();
        let l = dir.path().join("link");
        std::os::unix::fs::symlink(&f, &l).unwrap();
        let mut r = LocalRemote::default();
        let res = LineInFile
            .execute(
                &args(json!({"path": l.to_str().unwrap(), "line": "b"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert!(std::fs::symlink_metadata(&l)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "a\nb\n");
    }
}
