//! `ping`: proves the host runs commands; returns `ping: pong` (or `data`) in one round trip.

use super::plan::failed_output;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};

pub struct Ping;

const SPEC: Spec = Spec::new("ping", &[Param::str("data").default("pong")]);

impl Module for Ping {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let data = args.str("data")?.unwrap_or_else(|| "pong".to_string());
        if data == "crash" {
            // Ansible's ping raises on data=crash, to test failure handling.
            return Ok(ModuleResult::failed("boom"));
        }
        let out = ctx.run("echo pong")?;
        if !out.ok() || out.stdout_str().trim() != "pong" {
            return Ok(failed_output("ping", &out));
        }
        Ok(ModuleResult::ok().set("ping", data))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{args, ctx, out, FakeRemote};
    use super::*;
    use crate::value::Vars;
    use serde_json::json;

    #[test]
    fn pong_and_custom_data() {
        let mut r = FakeRemote::new(vec![out(0, "pong\n"), out(0, "pong\n")]);
        let res = Ping
            .execute(&Vars::new(), &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(!res.changed && !res.failed);
        assert_eq!(res.data["ping"], "pong");
        let res = Ping
            .execute(
                &args(json!({"data": "hi"})),
                &mut ctx(&mut r, true, false, vec![]),
            )
            .unwrap();
        assert_eq!(res.data["ping"], "hi");
        assert_eq!(r.seen.len(), 2);
    }

    #[test]
    fn broken_shell_fails() {
        let mut r = FakeRemote::new(vec![out(127, "")]);
        let res = Ping
            .execute(&Vars::new(), &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.failed);
        assert_eq!(res.rc, Some(127));
    }
}
