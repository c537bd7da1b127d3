//! `package`: the generic package module; dispatches on the `ansible_pkg_mgr` fact (apt only).

use super::apt::{run_parsed, AptArgs};
use super::sysutil::{get, opt_str};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::value::{Value, Vars};

pub struct Package;

/// Which manager to use: `use:` if given and not `auto`, else the gathered fact, else a probe.
fn manager(args: &Vars, ctx: &mut ModuleCtx<'_>) -> Result<String, ModuleError> {
    if let Some(u) = opt_str(args, &["use"])?.filter(|u| u != "auto") {
        return Ok(u);
    }
    let fact = ctx
        .facts
        .get("ansible_pkg_mgr")
        .or_else(|| {
            ctx.facts
                .get("ansible_facts")
                .and_then(|f| f.get("pkg_mgr"))
        })
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(f) = fact {
        return Ok(f);
    }
    // Facts not gathered: one cheap probe.
    let out = ctx.run("command -v apt-get >/dev/null 2>&1 && echo apt || echo unknown")?;
    Ok(out.stdout_str().trim().to_string())
}

const SPEC: Spec = Spec::new(
    "package",
    &[Param::raw("name"), Param::raw("state"), Param::raw("use")],
);

impl Module for Package {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let args = args.legacy_vars();
        if get(args, &["name"]).is_none() {
            return Err(ModuleError::Args(
                "missing required parameter 'name'".into(),
            ));
        }
        match manager(args, ctx)?.as_str() {
            "apt" => {
                let mut apt_args = Vars::new();
                for k in ["name", "state"] {
                    if let Some(v) = args.get(k) {
                        apt_args.insert(k.to_string(), v.clone());
                    }
                }
                run_parsed(&AptArgs::parse(&apt_args)?, ctx)
            }
            other => Ok(ModuleResult::failed(format!(
                "package: package manager '{other}' is not supported by knockplay (supported: apt)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::sysutil::testing::{args, ctx, FakeRemote};
    use serde_json::json;

    #[test]
    fn dispatches_to_apt_from_facts() {
        let facts = args(json!({"ansible_pkg_mgr": "apt"}));
        let probe = "\n@@KP:stamp\n1 2\n@@KP:status\nvim install ok installed 9\n@@KP:end\n";
        let mut r = FakeRemote::new(&[(0, probe)]);
        let res = Package
            .execute(
                &args(json!({"name": "vim"})),
                &mut ctx(&mut r, &facts, false),
            )
            .unwrap();
        assert!(!res.changed && !res.failed, "{res:?}");
        assert!(r.commands[0].contains("dpkg-query"));
    }

    #[test]
    fn probes_without_facts_and_rejects_other_managers() {
        let facts = Vars::new();
        let mut r = FakeRemote::new(&[(0, "unknown\n")]);
        let res = Package
            .execute(
                &args(json!({"name": "vim"})),
                &mut ctx(&mut r, &facts, false),
            )
            .unwrap();
        assert!(res.failed && res.msg.unwrap().contains("'unknown'"));
        let facts = args(json!({"ansible_facts": {"pkg_mgr": "dnf"}}));
        let mut r = FakeRemote::new(&[]);
        let res = Package
            .execute(
                &args(json!({"name": "vim"})),
                &mut ctx(&mut r, &facts, false),
            )
            .unwrap();
        assert!(res.failed && res.msg.unwrap().contains("dnf"));
        assert!(r.commands.is_empty());
    }
}
