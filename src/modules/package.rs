//! `package`: the generic package module; dispatches on the `ansible_pkg_mgr` fact (apt, or dnf
//! for dnf/yum/dnf5 hosts).
//! As in Ansible, options it does not declare go to the backend (`update_cache`,
//! `allow_downgrade`, ...), which accepts or refuses them: a task meant for another backend (an
//! `enablerepo` under `when: ansible_os_family == 'RedHat'`) parses, and fails only if it runs.

use super::apt::{run_packages, STATES};
use super::dnf;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::value::Value;

pub struct Package;

const SPEC: Spec = Spec::new(
    "package",
    &[
        Param::list("name").required().word(),
        // Handed to the backend, so the backend's (apt's) states.
        Param::str("state").choices(STATES).default("present"),
        Param::str("use").default("auto"),
    ],
)
.any_params();

/// Which manager to use: `use:` if given and not `auto`, else the gathered fact, else a probe.
fn manager(args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<String, ModuleError> {
    if let Some(u) = args.str("use")?.filter(|u| u != "auto") {
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
    let out = ctx.run(
        "if command -v apt-get >/dev/null 2>&1; then echo apt; \
         elif command -v dnf >/dev/null 2>&1; then echo dnf; else echo unknown; fi",
    )?;
    Ok(out.stdout_str().trim().to_string())
}

impl Module for Package {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let names = args.list("name")?.unwrap_or_default();
        let state = args.choice("state")?.unwrap_or_default();
        let mut backend = crate::value::Vars::new();
        for (k, v) in args.free_names()? {
            backend.insert(k.clone(), v.clone());
        }
        match manager(args, ctx)?.as_str() {
            "apt" => run_packages(names, state, backend, ctx),
            "dnf" | "yum" | "dnf4" | "yum4" | "dnf5" => {
                dnf::run_packages(names, state, backend, ctx)
            }
            other => Ok(ModuleResult::failed(format!(
                "package: package manager '{other}' is not supported by knockplay (supported: apt, dnf)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{args, ctx, ctx_with_facts, out, FakeRemote};
    use super::*;
    use serde_json::json;

    #[test]
    fn dispatches_to_apt_from_facts() {
        let facts = args(json!({"ansible_pkg_mgr": "apt"}));
        let probe = "\n@@KP:stamp\n1 2\n@@KP:status\nvim install ok installed 9\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, probe)]);
        let mut c = ctx_with_facts(&mut r, &facts, false);
        let res = Package
            .execute(&args(json!({"name": "vim"})), &mut c)
            .unwrap();
        assert!(!res.changed && !res.failed, "{res:?}");
        assert!(r.seen[0].0.contains("dpkg-query"));
    }

    #[test]
    fn backend_options_pass_through_and_apt_refuses_what_it_lacks() {
        let facts = args(json!({"ansible_pkg_mgr": "apt"}));
        let probe = "\n@@KP:stamp\n1 2\n@@KP:status\nvim install ok installed 9\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, probe)]);
        let mut c = ctx_with_facts(&mut r, &facts, false);
        Package
            .execute(&args(json!({"name": "vim", "update_cache": true})), &mut c)
            .unwrap();
        assert!(
            r.seen[0].0.contains("apt-get") && r.seen[0].0.contains("update"),
            "{}",
            r.seen[0].0
        );
        let mut r = FakeRemote::new(vec![]);
        let mut c = ctx_with_facts(&mut r, &facts, false);
        let e = Package
            .execute(&args(json!({"name": "git", "enablerepo": "epel"})), &mut c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("enablerepo"), "{e}");
        assert!(r.seen.is_empty());
    }

    #[test]
    fn probes_without_facts_and_rejects_other_managers() {
        let mut r = FakeRemote::new(vec![out(0, "unknown\n")]);
        let res = Package
            .execute(
                &args(json!({"name": "vim"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.failed && res.msg.unwrap().contains("'unknown'"));
        let facts = args(json!({"ansible_facts": {"pkg_mgr": "zypper"}}));
        let mut r = FakeRemote::new(vec![]);
        let mut c = ctx_with_facts(&mut r, &facts, false);
        let res = Package
            .execute(&args(json!({"name": "vim"})), &mut c)
            .unwrap();
        assert!(res.failed && res.msg.unwrap().contains("zypper"));
        assert!(r.seen.is_empty());
    }

    #[test]
    fn dispatches_to_dnf_with_its_options() {
        let facts = args(json!({"ansible_pkg_mgr": "dnf"}));
        let probe = "\n@@KP:root\n0\n@@KP:q0\nvim 0:9-1 x86_64\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, probe)]);
        let mut c = ctx_with_facts(&mut r, &facts, false);
        let res = Package
            .execute(&args(json!({"name": "vim", "enablerepo": "epel"})), &mut c)
            .unwrap();
        assert!(!res.changed && !res.failed, "{res:?}");
        assert!(r.seen[0].0.contains("--enablerepo=epel"), "{}", r.seen[0].0);
        // `use: dnf` without facts; apt's options are refused by dnf.
        let mut r = FakeRemote::new(vec![]);
        let e = Package
            .execute(
                &args(json!({"name": "vim", "use": "dnf", "purge": true})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("purge"), "{e}");
    }

    #[test]
    fn argument_errors_name_the_package_module() {
        let mut r = FakeRemote::new(vec![]);
        let run = |r: &mut FakeRemote, a: serde_json::Value| {
            Package
                .execute(&args(a), &mut ctx(r, false, false, vec![]))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            run(&mut r, json!({"state": "present"})),
            "package: missing required parameter 'name'"
        );
        assert!(run(&mut r, json!({"name": "a", "state": "gone"}))
            .starts_with("package: parameter 'state' must be one of: present,"));
        let mut r = FakeRemote::new(vec![]);
        let facts = args(json!({"ansible_pkg_mgr": "apt"}));
        let mut c = ctx_with_facts(&mut r, &facts, false);
        let e = Package
            .execute(&args(json!({"name": "a=1=2"})), &mut c)
            .unwrap_err();
        assert_eq!(e.to_string(), "package: invalid package spec: a=1=2");
    }
}
