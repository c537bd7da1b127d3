//! `raw`: send the text as-is to the target's login shell (or `executable -c`), nothing else. Always
//! changed; rc != 0 fails; skipped in check mode (as in Ansible).

use super::command::{command_result, no_command, Invocation};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;

pub struct Raw;

const SPEC: Spec = Spec::new("raw", &[Param::path("executable")]).free_form();

impl Module for Raw {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let text = args
            .free_form()?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(no_command)?;
        if ctx.check_mode {
            let mut r = ModuleResult::ok();
            r.msg = Some("skipped, running in check mode".into());
            return Ok(r.set("skipped", true));
        }
        let line = match args.str("executable")?.filter(|s| !s.is_empty()) {
            Some(exe) => format!("exec {} -c {}", quote(&exe), quote(&text)),
            // Through the login shell, as Ansible's raw does (sshd sets $SHELL; commands otherwise run
            // in the session's /bin/sh). With become, the become shell (/bin/sh) runs it, as in Ansible.
            None if ctx.become_.is_none() => {
                format!("exec \"${{SHELL:-/bin/sh}}\" -c {}", quote(&text))
            }
            None => text.clone(),
        };
        let inv = Invocation {
            line,
            display: Value::from(text),
            chdir: None,
            creates: None,
            removes: None,
            stdin: None,
            strip_empty_ends: false,
        };
        let start = std::time::SystemTime::now();
        let out = ctx.run(&inv.line)?;
        let mut r = command_result(&inv, out, start, std::time::SystemTime::now());
        for k in ["cmd", "start", "end", "delta"] {
            r.data.remove(k);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn sends_text_verbatim() {
        let mut r = FakeRemote::new(vec![out(0, "hi\n")]);
        let res = Raw
            .execute(
                &args(json!({"_raw_params": "echo hi; ls | wc"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.changed);
        assert_eq!(res.stdout.as_deref(), Some("hi\n"));
        assert_eq!(
            r.seen[0].0,
            "exec \"${SHELL:-/bin/sh}\" -c 'echo hi; ls | wc'"
        );
    }

    #[test]
    fn fails_on_nonzero_and_skips_in_check_mode() {
        let mut r = LocalRemote::default();
        let res = Raw
            .execute(
                &args(json!({"_raw_params": "exit 2"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.failed);
        assert_eq!(res.rc, Some(2));
        let res = Raw
            .execute(
                &args(json!({"_raw_params": "exit 2"})),
                &mut ctx(&mut r, true, false, vec![]),
            )
            .unwrap();
        assert_eq!(res.data["skipped"], json!(true));
        assert_eq!(r.calls.len(), 1);
    }
}
