//! `group`: local groups via groupadd/groupmod/groupdel, read with `getent group` in one probe.

use super::sysutil::{bool_or, choice, failed_output, opt_u64, req_str};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Vars;

pub struct Group;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupArgs {
    pub name: String,
    pub present: bool,
    pub gid: Option<u64>,
    pub system: bool,
    pub non_unique: bool,
}

impl GroupArgs {
    pub fn parse(args: &Vars) -> Result<Self, ModuleError> {
        let non_unique = bool_or(args, &["non_unique"], false)?;
        let gid = opt_u64(args, &["gid"])?;
        if non_unique && gid.is_none() {
            return Err(ModuleError::Args(
                "group: non_unique=yes requires parameter 'gid'".into(),
            ));
        }
        Ok(Self {
            name: req_str(args, &["name"])?,
            present: choice(args, &["state"], &["present", "absent"], "present")? == "present",
            gid,
            system: bool_or(args, &["system"], false)?,
            non_unique,
        })
    }
}

/// `getent group NAME` line → gid, when the group exists.
pub fn parse_getent(out: &str, name: &str) -> Option<u64> {
    out.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[0] == name)
            .then(|| f[2].parse().ok())
            .flatten()
    })
}

/// Pure: the command to run (None = nothing to do).
pub fn plan(a: &GroupArgs, current_gid: Option<u64>) -> Option<String> {
    let n = quote(&a.name);
    match (a.present, current_gid) {
        (false, None) => None,
        (false, Some(_)) => Some(format!("groupdel {n}")),
        (true, None) => {
            let mut cmd = String::from("groupadd");
            if let Some(g) = a.gid {
                cmd.push_str(&format!(" -g {g}"));
                if a.non_unique {
                    cmd.push_str(" -o");
                }
            }
            if a.system {
                cmd.push_str(" -r");
            }
            Some(format!("{cmd} {n}"))
        }
        (true, Some(have)) => match a.gid {
            Some(want) if want != have => Some(format!(
                "groupmod -g {want}{} {n}",
                if a.non_unique { " -o" } else { "" }
            )),
            _ => None,
        },
    }
}

const SPEC: Spec = Spec::new(
    "group",
    &[
        Param::raw("name"),
        Param::raw("state"),
        Param::raw("gid"),
        Param::raw("system"),
        Param::raw("non_unique"),
        Param::raw("local"),
        Param::raw("force"),
    ],
);

impl Module for Group {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let args = args.legacy_vars();
        let a = GroupArgs::parse(args)?;
        let out = ctx.run(&format!("getent group {}; true", quote(&a.name)))?;
        let have = parse_getent(&out.stdout_str(), &a.name);
        let mut res = match plan(&a, have) {
            None => ModuleResult::ok(),
            Some(_) if ctx.check_mode => ModuleResult::changed(),
            Some(cmd) => {
                let out = ctx.run(&cmd)?;
                if !out.ok() {
                    return Ok(failed_output(&cmd, &out));
                }
                ModuleResult::changed().with_output(&out)
            }
        };
        res = res
            .set("name", a.name.as_str())
            .set("state", if a.present { "present" } else { "absent" })
            .set("system", a.system);
        if a.present {
            if let Some(g) = a.gid.or(have) {
                res = res.set("gid", g);
            }
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::sysutil::testing::{args, ctx, FakeRemote};
    use serde_json::json;

    fn p(v: serde_json::Value) -> GroupArgs {
        GroupArgs::parse(&args(v)).unwrap()
    }

    #[test]
    fn planner_table() {
        let cases = [
            (json!({"name": "web"}), None, Some("groupadd web")),
            (
                json!({"name": "web", "gid": 2001, "system": true}),
                None,
                Some("groupadd -g 2001 -r web"),
            ),
            (json!({"name": "web", "gid": "2001"}), Some(2001), None),
            (
                json!({"name": "web", "gid": 2002}),
                Some(2001),
                Some("groupmod -g 2002 web"),
            ),
            (json!({"name": "web"}), Some(2001), None),
            (
                json!({"name": "web", "state": "absent"}),
                Some(2001),
                Some("groupdel web"),
            ),
            (json!({"name": "web", "state": "absent"}), None, None),
        ];
        for (a, have, want) in cases {
            assert_eq!(plan(&p(a.clone()), have).as_deref(), want, "{a}");
        }
    }

    #[test]
    fn parses_getent_and_errors() {
        assert_eq!(parse_getent("web:x:2001:alice,bob\n", "web"), Some(2001));
        assert_eq!(parse_getent("", "web"), None);
        assert!(GroupArgs::parse(&args(json!({"gid": 5})))
            .unwrap_err()
            .to_string()
            .contains("'name'"));
        assert!(GroupArgs::parse(&args(json!({"name": "x", "state": "gone"}))).is_err());
    }

    #[test]
    fn run_flow_check_mode_and_apply() {
        let facts = Vars::new();
        let mut r = FakeRemote::new(&[(0, "")]);
        let res = Group
            .execute(
                &args(json!({"name": "web"})),
                &mut ctx(&mut r, &facts, true),
            )
            .unwrap();
        assert!(res.changed);
        assert_eq!(r.commands.len(), 1);
        let mut r = FakeRemote::new(&[(0, ""), (0, "")]);
        let res = Group
            .execute(
                &args(json!({"name": "web"})),
                &mut ctx(&mut r, &facts, false),
            )
            .unwrap();
        assert!(res.changed);
        assert_eq!(r.commands[1], "groupadd web");
        let mut r = FakeRemote::new(&[(0, "web:x:2001:\n")]);
        let res = Group
            .execute(
                &args(json!({"name": "web"})),
                &mut ctx(&mut r, &facts, false),
            )
            .unwrap();
        assert!(!res.changed);
        assert_eq!(res.data["gid"], 2001);
    }
}
