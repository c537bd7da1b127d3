//! `command`: run a program with arguments, no shell interpretation; plus the machinery shared
//! with `shell`, `raw` and `script` (creates/removes guards, check mode, the Ansible result keys).
//!
//! The free-form text is split like Python's `shlex.split` (quotes respected, no expansion
//! besides Ansible's `expand_argument_vars`: `$VAR`, `${VAR}` and a leading `~`), every word is
//! quoted for `sh`, so `command: echo 'a;b' > x` prints `a;b > x` and never redirects.
//!
//! Round trips: one. A `creates`/`removes` guard runs inside the same command (it prints a marker
//! and exits when the command must be skipped); in check mode only the guard runs.

use std::time::SystemTime;

use super::plan::failure_msg;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::{quote, split_words, WordRules};
use crate::timefmt::{python_datetime, python_timedelta};
use crate::value::Value;

pub struct Command;

const SPEC: Spec = Spec::new(
    "command",
    &[
        Param::list("argv"),
        Param::bool("expand_argument_vars").default("true"),
        Param::path("executable").refused("command runs no shell; use the shell module"),
    ],
)
.shared(&[COMMAND_COMMON, STDIN_PARAMS])
.free_form();

/// The parameters of `command`, `shell` and `script`: the command as `cmd` and its guards (read by
/// [`raw_command`] and [`Invocation::new`]).
pub const COMMAND_COMMON: &[Param] = &[
    Param::str("cmd"),
    Param::path("chdir"),
    Param::path("creates"),
    Param::path("removes"),
    Param::bool("warn").refused("removed in Ansible 2.14"),
];

/// What `command` and `shell` feed the command and do with its output ([`Invocation::with_stdin`]).
pub const STDIN_PARAMS: &[Param] = &[
    Param::str("stdin"),
    Param::bool("stdin_add_newline").default("true"),
    Param::bool("strip_empty_ends").default("true"),
];

impl Module for Command {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let words = match (args.list("argv")?, raw_command(args)?) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "only one of 'argv' and the free-form command / 'cmd' may be given".into(),
                ))
            }
            (Some(argv), None) => argv,
            (None, Some(text)) => {
                split_words(&text, WordRules::CommandLine).map_err(ModuleError::Args)?
            }
            (None, None) => return Err(no_command()),
        };
        if words.is_empty() {
            return Err(no_command());
        }
        let line = format!(
            "exec {}",
            argv_to_sh(&words, args.bool("expand_argument_vars")?)
        );
        let display = Value::Array(words.iter().map(|w| Value::from(w.as_str())).collect());
        let inv = Invocation::new(args, line, display)?.with_stdin(args)?;
        execute(ctx, &inv)
    }
}

/// The error for a task without a command.
pub fn no_command() -> ModuleError {
    ModuleError::Args("no command given".into())
}

/// The command text from the free-form text or `cmd` (blank counts as absent).
pub fn raw_command(args: &Args<'_>) -> Result<Option<String>, ModuleError> {
    let raw = args.free_form()?.filter(|s| !s.trim().is_empty());
    let cmd = args.str("cmd")?.filter(|s| !s.trim().is_empty());
    match (raw, cmd) {
        (Some(_), Some(_)) => Err(ModuleError::Args(
            "give the command either free-form or as 'cmd', not both".into(),
        )),
        (r, c) => Ok(r.or(c)),
    }
}

/// Everything needed to run one command the Ansible way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The shell text that runs the command (`exec ...`).
    pub line: String,
    /// The `cmd` result key (a list for `command`, the string for `shell`).
    pub display: Value,
    pub chdir: Option<String>,
    pub creates: Option<String>,
    pub removes: Option<String>,
    pub stdin: Option<Vec<u8>>,
    pub strip_empty_ends: bool,
}

impl Invocation {
    /// `line` with the `chdir`/`creates`/`removes` guards; no stdin, output kept as it is.
    pub fn new(args: &Args<'_>, line: String, display: Value) -> Result<Self, ModuleError> {
        let path = |key: &str| Ok::<_, ModuleError>(args.str(key)?.filter(|s| !s.is_empty()));
        Ok(Self {
            line,
            display,
            chdir: path("chdir")?,
            creates: path("creates")?,
            removes: path("removes")?,
            stdin: None,
            strip_empty_ends: false,
        })
    }

    /// `stdin` (with a final newline unless `stdin_add_newline: false`) and `strip_empty_ends`.
    pub fn with_stdin(self, args: &Args<'_>) -> Result<Self, ModuleError> {
        let add_newline = args.bool("stdin_add_newline")?;
        let stdin = args.str("stdin")?.map(|mut s| {
            if add_newline {
                s.push('\n');
            }
            s.into_bytes()
        });
        Ok(Self {
            stdin,
            strip_empty_ends: args.bool("strip_empty_ends")?,
            ..self
        })
    }
}

/// Printed (and nothing else) when a guard decides not to run the command.
const SKIP_CREATES: &str = "__knockplay_skip_creates__";
const SKIP_REMOVES: &str = "__knockplay_skip_removes__";
const WOULD_RUN: &str = "__knockplay_would_run__";

/// The `cd` + creates/removes guard prefix. Pure.
pub fn guard_script(inv: &Invocation) -> String {
    let mut s = String::new();
    if let Some(dir) = &inv.chdir {
        s.push_str(&format!(
            "cd {q} || {{ echo 'Unable to change directory before execution: '{q} >&2; exit 1; }}; ",
            q = quote(dir)
        ));
    }
    let exists = |pat: &str| {
        format!(
            "kp_m=0; for kp_f in {}; do if [ -e \"$kp_f\" ] || [ -L \"$kp_f\" ]; then kp_m=1; break; fi; done; ",
            glob_word(pat)
        )
    };
    if let Some(c) = &inv.creates {
        s.push_str(&exists(c));
        s.push_str(&format!(
            "if [ $kp_m = 1 ]; then echo {SKIP_CREATES}; exit 0; fi; "
        ));
    }
    if let Some(r) = &inv.removes {
        s.push_str(&exists(r));
        s.push_str(&format!(
            "if [ $kp_m = 0 ]; then echo {SKIP_REMOVES}; exit 0; fi; "
        ));
    }
    s
}

/// The full command: guard then the command line. Pure.
pub fn full_script(inv: &Invocation) -> String {
    format!("{}{}", guard_script(inv), inv.line)
}

/// What the guard said, from the command's stdout.
fn guard_skip(inv: &Invocation, first: &str, check: bool) -> Option<ModuleResult> {
    let (path, exists_word) = if first == SKIP_CREATES {
        (inv.creates.as_deref()?, "exists")
    } else if first == SKIP_REMOVES {
        (inv.removes.as_deref()?, "does not exist")
    } else {
        return None;
    };
    let who = if check { "Would not" } else { "Did not" };
    let mut r = ModuleResult::ok();
    r.rc = Some(0);
    r.msg = Some(format!("{who} run command since '{path}' {exists_word}"));
    r.stdout = Some(format!("skipped, since {path} {exists_word}"));
    r.stderr = Some(String::new());
    Some(r.set("cmd", inv.display.clone()))
}

/// Run an invocation with Ansible's rules: changed unless a guard skipped it; rc != 0 fails;
/// check mode runs only the guard (or reports skipped when there is none).
pub fn execute(ctx: &mut ModuleCtx<'_>, inv: &Invocation) -> Result<ModuleResult, ModuleError> {
    if ctx.check_mode {
        if inv.creates.is_none() && inv.removes.is_none() {
            let mut r = ModuleResult::ok();
            r.msg = Some("Command would have run if not in check mode".into());
            r.rc = Some(0);
            return Ok(r.set("skipped", true).set("cmd", inv.display.clone()));
        }
        let out = ctx.run(&format!("{}echo {WOULD_RUN}", guard_script(inv)))?;
        if let Some(r) = guard_skip(inv, &out.stdout_first_line(), true) {
            return Ok(r);
        }
        if !out.ok() {
            return Ok(ModuleResult::failed(failure_msg(&out)).with_output(&out));
        }
        let mut r = ModuleResult::changed();
        r.rc = Some(0);
        r.msg = Some("Command would have run if not in check mode".into());
        return Ok(r.set("cmd", inv.display.clone()));
    }
    let start = SystemTime::now();
    let out = ctx.run_with_stdin(&full_script(inv), inv.stdin.as_deref())?;
    let end = SystemTime::now();
    if let Some(r) = guard_skip(inv, &out.stdout_first_line(), false) {
        return Ok(r);
    }
    Ok(command_result(inv, out, start, end))
}

/// The result of a command that ran; its output is moved in, not copied. Pure.
pub fn command_result(
    inv: &Invocation,
    mut out: crate::ssh::ExecOutput,
    start: SystemTime,
    end: SystemTime,
) -> ModuleResult {
    let strip = |mut s: String| {
        if inv.strip_empty_ends {
            let keep = s.trim_end_matches(['\r', '\n']).len();
            s.truncate(keep);
        }
        s
    };
    let mut r = ModuleResult::changed();
    r.rc = Some(out.rc);
    r.stdout = Some(strip(out.take_stdout()));
    r.stderr = Some(strip(out.take_stderr()));
    if out.rc != 0 {
        r.failed = true;
        r.msg = Some("non-zero return code".into());
    } else {
        r.msg = Some(String::new());
    }
    let delta = end.duration_since(start).unwrap_or_default();
    r.set("cmd", inv.display.clone())
        .set("start", python_datetime(start))
        .set("end", python_datetime(end))
        .set("delta", python_timedelta(delta))
}

/// A word for `sh` that keeps glob characters (`*?[]`) active and quotes everything else, so
/// `creates: /etc/*.conf` matches like Ansible's glob while spaces stay literal.
pub fn glob_word(pattern: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in pattern.chars() {
        if "*?[]".contains(c) {
            if !run.is_empty() {
                out.push_str(&quote(&run));
                run.clear();
            }
            out.push(c);
        } else {
            run.push(c);
        }
    }
    if !run.is_empty() {
        out.push_str(&quote(&run));
    }
    out
}

/// Quote words for `sh`. With `expand`, `$VAR`/`${VAR}` expand from the target's environment
/// (left as written when unset, like Python's `os.path.expandvars`) and a leading `~` or `~/`
/// becomes `$HOME`; nothing else is interpreted.
pub fn argv_to_sh(words: &[String], expand: bool) -> String {
    words
        .iter()
        .map(|w| if expand { expand_word(w) } else { quote(w) })
        .collect::<Vec<_>>()
        .join(" ")
}

fn expand_word(w: &str) -> String {
    let mut out = String::new();
    let mut lit = String::new();
    let mut rest = w;
    if rest == "~" || rest.starts_with("~/") {
        out.push_str("\"$HOME\"");
        rest = &rest[1..];
    }
    let flush = |lit: &mut String, out: &mut String| {
        if !lit.is_empty() {
            out.push_str(&quote(lit));
            lit.clear();
        }
    };
    let is_name_start = |c: char| c.is_ascii_alphabetic() || c == '_';
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut i = 0;
    let b: Vec<char> = rest.chars().collect();
    while i < b.len() {
        if b[i] == '$' {
            // ${NAME}
            if i + 1 < b.len() && b[i + 1] == '{' {
                if let Some(close) = b[i + 2..].iter().position(|&c| c == '}') {
                    let name: String = b[i + 2..i + 2 + close].iter().collect();
                    if !name.is_empty()
                        && name.chars().next().is_some_and(is_name_start)
                        && name.chars().all(is_name)
                    {
                        flush(&mut lit, &mut out);
                        out.push_str(&format!("\"${{{name}-\\${{{name}\\}}}}\""));
                        i += close + 3;
                        continue;
                    }
                }
            } else if i + 1 < b.len() && is_name_start(b[i + 1]) {
                let mut j = i + 1;
                while j < b.len() && is_name(b[j]) {
                    j += 1;
                }
                let name: String = b[i + 1..j].iter().collect();
                flush(&mut lit, &mut out);
                out.push_str(&format!("\"${{{name}-\\${name}}}\""));
                i = j;
                continue;
            }
        }
        lit.push(b[i]);
        i += 1;
    }
    flush(&mut lit, &mut out);
    if out.is_empty() {
        out.push_str("''");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    fn sh_argv(line: &str) -> Vec<String> {
        // Print each argument on its own line via printf to see what sh passes.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '[%s]' {line}"))
            .env("KP_TEST_VAR", "a  b")
            .env_remove("KP_UNSET_VAR")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split("][")
            .map(String::from)
            .collect()
    }

    #[test]
    fn argv_reaches_the_program_unchanged() {
        let words: Vec<String> = ["a;b", "> x", "$(id)", "`id`", "it's", "", "*"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(sh_argv(&argv_to_sh(&words, false)), words);
        // Expansion keeps the other metacharacters inert too.
        assert_eq!(sh_argv(&argv_to_sh(&words, true)), words);
    }

    #[test]
    fn expands_vars_like_python_expandvars() {
        let words: Vec<String> = [
            "$KP_TEST_VAR",
            "x${KP_TEST_VAR}y",
            "$KP_UNSET_VAR",
            "${KP_UNSET_VAR}",
            "$1",
            "$",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            sh_argv(&argv_to_sh(&words, true)),
            [
                "a  b",
                "xa  by",
                "$KP_UNSET_VAR",
                "${KP_UNSET_VAR}",
                "$1",
                "$"
            ]
        );
        let home = std::env::var("HOME").unwrap();
        assert_eq!(
            sh_argv(&argv_to_sh(&["~/x".to_string(), "a~".to_string()], true)),
            [format!("{home}/x"), "a~".to_string()]
        );
    }

    #[test]
    fn runs_and_reports_like_ansible() {
        let mut r = LocalRemote::default();
        let mut c = ctx(&mut r, false, false, vec![]);
        let res = Command
            .execute(&args(json!({"_raw_params": "printf 'x\\n\\n'"})), &mut c)
            .unwrap();
        assert!(res.changed && !res.failed);
        assert_eq!(res.stdout.as_deref(), Some("x"));
        assert_eq!(res.rc, Some(0));
        assert_eq!(res.data["cmd"], json!(["printf", "x\\n\\n"]));
        let res = Command
            .execute(
                &args(json!({"_raw_params": "sh -c 'echo oops >&2; exit 3'"})),
                &mut c,
            )
            .unwrap();
        assert!(res.failed && res.changed);
        assert_eq!(res.rc, Some(3));
        assert_eq!(res.stderr.as_deref(), Some("oops"));
        assert_eq!(res.msg.as_deref(), Some("non-zero return code"));
        let res = Command
            .execute(&args(json!({"argv": ["cat"], "stdin": "fed"})), &mut c)
            .unwrap();
        assert_eq!(res.stdout.as_deref(), Some("fed"));
        let e = Command.execute(&args(json!({})), &mut c).unwrap_err();
        assert_eq!(e.to_string(), "command: no command given");
    }

    #[test]
    fn creates_and_removes_guard_in_one_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("made it");
        let m = marker.to_str().unwrap();
        let a = args(json!({"_raw_params": format!("touch '{m}'"), "creates": m}));
        let mut r = LocalRemote::default();
        let res = Command
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.changed);
        assert!(marker.exists());
        let res = Command
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(!res.changed && !res.failed);
        assert_eq!(
            res.msg.unwrap(),
            format!("Did not run command since '{m}' exists")
        );
        assert_eq!(res.stdout.unwrap(), format!("skipped, since {m} exists"));
        assert_eq!(r.calls.len(), 2, "one round trip per run");
        // Globs match like Ansible's.
        let g = format!("{}/made*", dir.path().display());
        let a = args(json!({"_raw_params": "false", "creates": g}));
        let res = Command
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(!res.changed && !res.failed);
        // removes: runs only when the path exists.
        let a = args(json!({"_raw_params": format!("rm '{m}'"), "removes": m}));
        assert!(
            Command
                .execute(&a, &mut ctx(&mut r, false, false, vec![]))
                .unwrap()
                .changed
        );
        assert!(!marker.exists());
        let res = Command
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(!res.changed);
        assert!(res.msg.unwrap().contains("does not exist"));
    }

    #[test]
    fn check_mode_never_runs_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("m");
        let m = marker.to_str().unwrap();
        let mut r = LocalRemote::default();
        let a = args(json!({"_raw_params": format!("touch {m}")}));
        let res = Command
            .execute(&a, &mut ctx(&mut r, true, false, vec![]))
            .unwrap();
        assert_eq!(res.data["skipped"], json!(true));
        assert!(!res.changed);
        assert!(r.calls.is_empty());
        let a = args(json!({"_raw_params": format!("touch {m}"), "creates": m}));
        let res = Command
            .execute(&a, &mut ctx(&mut r, true, false, vec![]))
            .unwrap();
        assert!(res.changed);
        assert_eq!(
            res.msg.as_deref(),
            Some("Command would have run if not in check mode")
        );
        assert!(!marker.exists());
        std::fs::write(&marker, "").unwrap();
        let res = Command
            .execute(&a, &mut ctx(&mut r, true, false, vec![]))
            .unwrap();
        assert!(!res.changed);
    }

    #[test]
    fn chdir_applies_to_guards_and_command() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("here"), "").unwrap();
        let d = dir.path().to_str().unwrap();
        let mut r = LocalRemote::default();
        let a = args(json!({"_raw_params": "ls", "chdir": d, "removes": "here"}));
        let res = Command
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert_eq!(res.stdout.as_deref(), Some("here"));
        let a = args(json!({"_raw_params": "ls", "chdir": format!("{d}/nope")}));
        let res = Command
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.failed);
        assert!(res.stderr.unwrap().contains("Unable to change directory"));
    }

    #[test]
    fn glob_words_keep_wildcards() {
        assert_eq!(glob_word("/etc/*.conf"), "/etc/*.conf");
        assert_eq!(glob_word("/my dir/x?"), "'/my dir/x'?");
    }
}
