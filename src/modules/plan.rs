//! Planning and applying a change: a module's pure decision ([`Plan`] plus the result keys,
//! [`Outcome`]), [`finish`] which applies it in one round trip unless in check mode, and the
//! messages for failed commands and diff sides.

use super::args::Args;
use super::coerce::Type;
use super::probe::run_script;
use super::{FileDiff, ModuleCtx, ModuleError, ModuleResult};
use crate::ssh::ExecOutput;
use crate::value::Value;

/// What a module decided, purely from its arguments and the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The target already is in the wanted state.
    NoChange,
    /// One shell command (optionally fed `stdin`) brings it there.
    Change {
        script: String,
        stdin: Option<Vec<u8>>,
        diff: Option<FileDiff>,
    },
}

impl Plan {
    pub fn commands(cmds: Vec<String>) -> Plan {
        if cmds.is_empty() {
            Plan::NoChange
        } else {
            Plan::Change {
                script: cmds.join(" && "),
                stdin: None,
                diff: None,
            }
        }
    }
    /// One script, fed `stdin` when given, with no file diff.
    pub fn script(script: String, stdin: Option<Vec<u8>>) -> Plan {
        Plan::Change {
            script,
            stdin,
            diff: None,
        }
    }
    pub fn is_change(&self) -> bool {
        matches!(self, Plan::Change { .. })
    }
}

/// A plan plus the result keys to report (`dest`, `path`, `msg`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub plan: Plan,
    pub result: ModuleResult,
}

impl Outcome {
    pub fn new(plan: Plan) -> Self {
        Self {
            plan,
            result: ModuleResult::ok(),
        }
    }
    pub fn set(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.result.data.insert(key.to_string(), v.into());
        self
    }
    pub fn msg(mut self, msg: impl Into<String>) -> Self {
        self.result.msg = Some(msg.into());
        self
    }
}

/// Apply an outcome: nothing for `NoChange`; report `changed` without touching the target in check
/// mode; otherwise run the script (one round trip). A failing script fails the task with its rc,
/// stdout and stderr. `key=value` lines the script prints for `backup_file` are added to the result.
pub fn finish(ctx: &mut ModuleCtx<'_>, outcome: Outcome) -> Result<ModuleResult, ModuleError> {
    let (mut result, out) = match run_plan(ctx, outcome)? {
        Ran::Nothing(result) => return Ok(result),
        Ran::Script(result, out) => (result, out),
    };
    if !out.ok() {
        let mut r = ModuleResult::failed(failure_msg(&out)).with_output(&out);
        r.data = result.data;
        return Ok(r);
    }
    for line in out.stdout_str().lines() {
        if let Some(b) = line.strip_prefix("backup_file=") {
            result.data.insert("backup_file".into(), Value::from(b));
        }
    }
    Ok(result)
}

/// How [`finish_command`] reports a plan of system commands (apt-get, useradd, systemctl, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Names the command in a failure: "`what` failed (rc=N): stderr" ([`failed_output`]).
    pub what: String,
    /// Keep the command's rc/stdout/stderr in a successful result (users read apt-get's output).
    pub keep_output: bool,
}

impl Report {
    /// A failure names `what`; a success keeps the command's output.
    pub fn command(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            keep_output: true,
        }
    }
    /// A failure names `what`; a success reports no output (the command prints nothing useful).
    pub fn quiet(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            keep_output: false,
        }
    }
}

/// [`finish`] for system modules: the same apply step (nothing, check mode, or one round trip),
/// with a failure reported as [`failed_output`] of `report.what` and, with `keep_output`, the
/// command's output in a successful result. The outcome's result keys are kept either way.
pub fn finish_command(
    ctx: &mut ModuleCtx<'_>,
    outcome: Outcome,
    report: &Report,
) -> Result<ModuleResult, ModuleError> {
    let (result, out) = match run_plan(ctx, outcome)? {
        Ran::Nothing(result) => return Ok(result),
        Ran::Script(result, out) => (result, out),
    };
    if !out.ok() {
        let mut r = failed_output(&report.what, &out);
        r.data = result.data;
        return Ok(r);
    }
    Ok(if report.keep_output {
        result.with_output(&out)
    } else {
        result
    })
}

/// What applying a plan came to.
enum Ran {
    /// Nothing ran: no change, or check mode (then the result says `changed`).
    Nothing(ModuleResult),
    /// The script ran (the result says `changed`); its output decides success.
    Script(ModuleResult, ExecOutput),
}

/// The apply step shared by [`finish`] and [`finish_command`].
fn run_plan(ctx: &mut ModuleCtx<'_>, outcome: Outcome) -> Result<Ran, ModuleError> {
    let Outcome { plan, mut result } = outcome;
    let Plan::Change {
        script,
        stdin,
        diff,
    } = plan
    else {
        return Ok(Ran::Nothing(result));
    };
    result.changed = true;
    if ctx.diff {
        if let Some(d) = diff {
            result.diff.push(d);
        }
    }
    if ctx.check_mode {
        return Ok(Ran::Nothing(result));
    }
    let out = match stdin {
        Some(data) => ctx.run_with_stdin(&script, Some(&data))?,
        None => run_script(ctx, &script)?,
    };
    Ok(Ran::Script(result, out))
}

/// A one-line message for a failed remote command: its stderr (or stdout) trimmed.
pub fn failure_msg(out: &ExecOutput) -> String {
    let err = out.stderr_str();
    let text = if err.trim().is_empty() {
        out.stdout_str()
    } else {
        err
    };
    let text = text.trim();
    if text.is_empty() {
        format!("command failed with rc={}", out.rc)
    } else {
        text.to_string()
    }
}

/// Text for a diff side: the content, or a placeholder for binary data (as Ansible does).
pub fn diff_text(data: &[u8]) -> String {
    if data.contains(&0) {
        "(binary)\n".to_string()
    } else {
        String::from_utf8_lossy(data).into_owned()
    }
}

/// A failed result for a command that exited non-zero: "`what` failed (rc=N): stderr".
pub fn failed_output(what: &str, out: &ExecOutput) -> ModuleResult {
    let err = out.stderr_str();
    let detail = err.trim();
    let msg = if detail.is_empty() {
        format!("{what} failed (rc={})", out.rc)
    } else {
        format!("{what} failed (rc={}): {detail}", out.rc)
    };
    ModuleResult::failed(msg).with_output(out)
}

/// Add the warning for a `mode` given as an octal-looking integer (`mode: 644`) to the result of
/// any module that declares a `mode` parameter.
pub fn warn_decimal_mode(
    args: &Args<'_>,
    mut r: ModuleResult,
) -> Result<ModuleResult, ModuleError> {
    if !args.declares("mode", Type::Mode) {
        return Ok(r);
    }
    if let Some(w) = args.mode_warning("mode")? {
        r.data
            .insert("warnings".into(), Value::Array(vec![Value::from(w)]));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{ctx, out, FakeRemote};
    use super::*;

    #[test]
    fn finish_command_reports_like_a_system_module() {
        let change = || Outcome::new(Plan::commands(vec!["useradd x".into()])).set("name", "x");
        let failed = ExecOutput {
            rc: 9,
            stdout: b"partial\n".to_vec(),
            stderr: b"useradd: exists\n".to_vec(),
        };
        // (check mode, reply, report) -> (changed, failed, msg, rc kept)
        let cases = [
            (
                true,
                None,
                Report::command("useradd"),
                (true, false, None, None),
            ),
            (
                false,
                Some(out(0, "ok\n")),
                Report::command("useradd"),
                (true, false, None, Some(0)),
            ),
            (
                false,
                Some(out(0, "ok\n")),
                Report::quiet("useradd"),
                (true, false, None, None),
            ),
            (
                false,
                Some(failed),
                Report::quiet("useradd x"),
                (
                    false,
                    true,
                    Some("useradd x failed (rc=9): useradd: exists"),
                    Some(9),
                ),
            ),
        ];
        for (check, reply, report, want) in cases {
            let mut r = FakeRemote::new(reply.into_iter().collect());
            let res =
                finish_command(&mut ctx(&mut r, check, false, vec![]), change(), &report).unwrap();
            let got = (res.changed, res.failed, res.msg.as_deref(), res.rc);
            assert_eq!(got, want, "{report:?}");
            assert_eq!(res.data["name"], "x", "the outcome's keys are kept");
            assert_eq!(r.seen.len(), usize::from(!check));
        }
        let mut r = FakeRemote::default();
        let res = finish_command(
            &mut ctx(&mut r, false, false, vec![]),
            Outcome::new(Plan::NoChange),
            &Report::command("x"),
        )
        .unwrap();
        assert!(!res.changed && r.seen.is_empty());
    }

    #[test]
    fn diffs_render_unified() {
        let d = FileDiff {
            path: "/f".into(),
            before: "a\nb\n".into(),
            after: "a\nc\n".into(),
        };
        let u = crate::runner::report::unified_diff(&d);
        assert!(u.contains("--- before: /f"));
        assert!(u.contains("+++ after: /f"));
        assert!(u.contains("-b\n+c\n"));
    }
}
