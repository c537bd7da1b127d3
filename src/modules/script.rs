//! `script`: transfer a local script and run it on the target, in one round trip: the bytes
//! stream over stdin into a private temp file, which is made executable, run (with `executable`
//! if given, arguments as written) and removed. `creates`/`removes` guard it in the same command.

use super::command::{execute, raw_command, split_words, Invocation, COMMAND_COMMON};
use super::copy::not_found;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;

pub struct Script;

const SPEC: Spec = Spec::new(
    "script",
    &[
        Param::path("executable"),
        Param::bool("decrypt").only("false"),
    ],
)
.shared(&[COMMAND_COMMON])
.free_form();

impl Module for Script {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let text = raw_command(args)?.ok_or_else(|| ModuleError::Args("no script given".into()))?;
        let (name, rest) = split_script(&text).map_err(ModuleError::Args)?;
        let path = ModuleCtx::find_local(&ctx.file_search, &name)
            .ok_or_else(|| not_found(&name, &ctx.file_search))?;
        let data = std::fs::read(&path)
            .map_err(|e| ModuleError::Local(format!("cannot read {}: {e}", path.display())))?;
        let executable = args.str("executable")?.filter(|s| !s.is_empty());
        let mut inv = Invocation::new(
            args,
            run_line(executable.as_deref(), &rest),
            Value::from(text.clone()),
        )?;
        inv.stdin = Some(data);
        if ctx.check_mode && inv.creates.is_none() && inv.removes.is_none() {
            let mut r = ModuleResult::ok();
            r.msg = Some("This module does not support check mode.".into());
            return Ok(r.set("skipped", true));
        }
        execute(ctx, &inv)
    }
}

/// The script name (first shell word) and the raw argument text after it.
pub fn split_script(text: &str) -> Result<(String, String), String> {
    let words = split_words(text.trim())?;
    let first = words.first().cloned().ok_or("no script given")?;
    // The arguments stay as written (Ansible passes them to the shell); only the first word,
    // which may be quoted, is removed.
    let trimmed = text.trim_start();
    let rest = match trimmed.find(char::is_whitespace) {
        Some(_) if trimmed.starts_with(['\'', '"']) => {
            let q = trimmed.as_bytes()[0] as char;
            match trimmed[1..].find(q) {
                Some(end) => trimmed[end + 2..].trim().to_string(),
                None => String::new(),
            }
        }
        Some(i) => trimmed[i..].trim().to_string(),
        None => String::new(),
    };
    Ok((first, rest))
}

/// Receive the script on stdin into a temp file, run it, remove it, keep its exit status. Pure.
pub fn run_line(executable: Option<&str>, rest: &str) -> String {
    let exe = executable
        .map(|e| format!("{} ", quote(e)))
        .unwrap_or_default();
    format!(
        "kp_t=$(mktemp \"${{TMPDIR:-/tmp}}/knockplay-script.XXXXXX\") || exit 1; \
         if ! {{ cat > \"$kp_t\" && chmod 700 \"$kp_t\"; }}; then rm -f -- \"$kp_t\"; exit 1; fi; \
         {exe}\"$kp_t\" {rest} </dev/null; kp_rc=$?; rm -f -- \"$kp_t\"; exit $kp_rc"
    )
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_name_from_raw_arguments() {
        assert_eq!(
            split_script("setup.sh --name 'a b' $HOME").unwrap(),
            ("setup.sh".into(), "--name 'a b' $HOME".into())
        );
        assert_eq!(
            split_script("'my script.sh' x").unwrap(),
            ("my script.sh".into(), "x".into())
        );
        assert_eq!(
            split_script("only.sh").unwrap(),
            ("only.sh".into(), "".into())
        );
    }

    #[test]
    fn runs_a_local_script_on_the_target() {
        let local = tempfile::tempdir().unwrap();
        std::fs::write(
            local.path().join("hello.sh"),
            "#!/bin/sh\necho \"args: $1 $2\"\necho err >&2\nexit 0\n",
        )
        .unwrap();
        let out = tempfile::tempdir().unwrap();
        let marker = out.path().join("done");
        let search = vec![local.path().to_path_buf()];
        let mut r = LocalRemote::default();
        let a = args(
            json!({"_raw_params": "hello.sh 'one two' three", "creates": marker.to_str().unwrap()}),
        );
        let res = Script
            .execute(&a, &mut ctx(&mut r, false, false, search.clone()))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(res.stdout.as_deref(), Some("args: one two three\n"));
        assert_eq!(res.stderr.as_deref(), Some("err\n"));
        assert_eq!(r.calls.len(), 1);
        std::fs::write(&marker, "").unwrap();
        let res = Script
            .execute(&a, &mut ctx(&mut r, false, false, search.clone()))
            .unwrap();
        assert!(!res.changed);
        // The temp copy is gone.
        let leftovers = std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("knockplay-script.")
                    && std::fs::read(e.path())
                        .is_ok_and(|d| d.starts_with(b"#!/bin/sh\necho \"args"))
            })
            .count();
        assert_eq!(leftovers, 0);
        // Failing script: rc and output kept.
        std::fs::write(
            local.path().join("fail.sh"),
            "#!/bin/sh\necho no >&2\nexit 7\n",
        )
        .unwrap();
        let res = Script
            .execute(
                &args(json!({"_raw_params": "fail.sh"})),
                &mut ctx(&mut r, false, false, search.clone()),
            )
            .unwrap();
        assert!(res.failed);
        assert_eq!(res.rc, Some(7));
        // executable.
        std::fs::write(local.path().join("noexec.txt"), "echo via sh").unwrap();
        let res = Script
            .execute(
                &args(json!({"_raw_params": "noexec.txt", "executable": "/bin/sh"})),
                &mut ctx(&mut r, false, false, search.clone()),
            )
            .unwrap();
        assert_eq!(res.stdout.as_deref(), Some("via sh\n"));
        // Check mode without guards: skipped, nothing sent.
        let n = r.calls.len();
        let res = Script
            .execute(
                &args(json!({"_raw_params": "hello.sh"})),
                &mut ctx(&mut r, true, false, search),
            )
            .unwrap();
        assert_eq!(res.data["skipped"], json!(true));
        assert_eq!(r.calls.len(), n);
    }

    #[test]
    fn missing_script_is_a_clear_error() {
        let mut r = FakeRemote::default();
        let e = Script
            .execute(
                &args(json!({"_raw_params": "nope.sh"})),
                &mut ctx(&mut r, false, false, vec!["/pb/files".into()]),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("Could not find or access 'nope.sh'"), "{e}");
    }
}
