//! `shell`: run a command line through `/bin/sh -c` (or `executable`), with pipes, redirects
//! and expansion. Shares creates/removes/chdir/check-mode handling with `command`.

use super::command::{execute, no_command, raw_command, Invocation, COMMAND_COMMON, STDIN_PARAMS};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;

pub struct Shell;

const SPEC: Spec = Spec::new("shell", &[Param::path("executable")])
    .shared(&[COMMAND_COMMON, STDIN_PARAMS])
    .free_form();

impl Module for Shell {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let text = raw_command(args)?.ok_or_else(no_command)?;
        let executable = args.str("executable")?.filter(|s| !s.is_empty());
        let line = shell_line(executable.as_deref(), &text);
        let inv = Invocation::new(args, line, Value::from(text))?.with_stdin(args)?;
        execute(ctx, &inv)
    }
}

/// `exec /bin/sh -c '<text>'`, or the given `executable`. Pure.
pub fn shell_line(executable: Option<&str>, text: &str) -> String {
    let exe = executable.unwrap_or("/bin/sh");
    format!("exec {} -c {}", quote(exe), quote(text))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn interprets_shell_syntax() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let mut r = LocalRemote::default();
        let mut c = ctx(&mut r, false, false, vec![]);
        let res = Shell
            .execute(
                &args(json!({"_raw_params": "echo one two | wc -w > out; cat out", "chdir": d})),
                &mut c,
            )
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(res.stdout.as_deref(), Some("2"));
        assert_eq!(
            res.data["cmd"],
            json!("echo one two | wc -w > out; cat out")
        );
        let res = Shell
            .execute(&args(json!({"cmd": "exit 4"})), &mut c)
            .unwrap();
        assert!(res.failed);
        assert_eq!(res.rc, Some(4));
    }

    #[test]
    fn executable_and_creates() {
        let dir = tempfile::tempdir().unwrap();
        let m = dir.path().join("x");
        let a = args(json!({
            "_raw_params": format!("echo $0 > {}", m.display()),
            "executable": "/bin/bash",
            "creates": m.to_str().unwrap(),
        }));
        let mut r = LocalRemote::default();
        if !std::path::Path::new("/bin/bash").exists() {
            return;
        }
        assert!(
            Shell
                .execute(&a, &mut ctx(&mut r, false, false, vec![]))
                .unwrap()
                .changed
        );
        assert_eq!(std::fs::read_to_string(&m).unwrap(), "/bin/bash\n");
        assert!(
            !Shell
                .execute(&a, &mut ctx(&mut r, false, false, vec![]))
                .unwrap()
                .changed
        );
    }

    #[test]
    fn line_quotes_the_text_once() {
        assert_eq!(
            shell_line(None, "echo 'hi' $HOME"),
            "exec /bin/sh -c 'echo '\\''hi'\\'' $HOME'"
        );
    }
}
