//! `group`: local groups via groupadd/groupmod/groupdel, read with `getent group` in one probe.

use super::plan::{finish_command, Outcome, Plan, Report};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

pub struct Group;

const SPEC: Spec = Spec::new(
    "group",
    &[
        Param::str("name").required().word(),
        Param::str("state")
            .choices(&["present", "absent"])
            .default("present"),
        Param::int("gid"),
        Param::bool("system").default("false"),
        Param::bool("non_unique").default("false"),
        // knockplay edits /etc/group with the shadow tools and never forces groupdel.
        Param::bool("local").only("false"),
        Param::bool("force").only("false"),
    ],
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupArgs {
    pub name: String,
    pub present: bool,
    pub gid: Option<u64>,
    pub system: bool,
    pub non_unique: bool,
}

impl GroupArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let non_unique = args.bool("non_unique")?;
        let gid = args.uint("gid")?;
        if non_unique && gid.is_none() {
            return Err(ModuleError::Args(
                "non_unique=yes requires parameter 'gid'".into(),
            ));
        }
        Ok(Self {
            name: args.req_str("name")?,
            present: args.choice("state")?.as_deref() != Some("absent"),
            gid,
            system: args.bool("system")?,
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

impl Module for Group {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let a = GroupArgs::from_args(args)?;
        let out = ctx.run(&format!("getent group {}; true", quote(&a.name)))?;
        let have = parse_getent(&out.stdout_str(), &a.name);
        let cmd = plan(&a, have);
        // A failure names the command itself.
        let report = Report::command(cmd.clone().unwrap_or_default());
        let outcome = Outcome::new(Plan::commands(cmd.into_iter().collect()));
        let res = finish_command(ctx, outcome, &report)?;
        if res.failed {
            return Ok(res);
        }
        let mut res = res
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
    use super::super::testing::{args, ctx, out, parse_with, FakeRemote};
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<GroupArgs, ModuleError> {
        parse_with(&SPEC, v, GroupArgs::from_args)
    }

    fn p(v: serde_json::Value) -> GroupArgs {
        parse(v).unwrap()
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
        assert!(parse(json!({"gid": 5}))
            .unwrap_err()
            .to_string()
            .contains("'name'"));
        assert!(parse(json!({"name": "x", "state": "gone"})).is_err());
        assert_eq!(
            parse(json!({"name": "x", "non_unique": true}))
                .unwrap_err()
                .to_string(),
            "group: non_unique=yes requires parameter 'gid'"
        );
        // Parameters knockplay does not implement are refused, not ignored.
        assert!(parse(json!({"name": "x", "local": false})).is_ok());
        assert!(parse(json!({"name": "x", "force": true}))
            .unwrap_err()
            .to_string()
            .contains("only force=false"));
    }

    #[test]
    fn run_flow_check_mode_and_apply() {
        let mut r = FakeRemote::new(vec![out(0, "")]);
        let res = Group
            .execute(
                &args(json!({"name": "web"})),
                &mut ctx(&mut r, true, false, vec![]),
            )
            .unwrap();
        assert!(res.changed);
        assert_eq!(r.seen.len(), 1);
        let mut r = FakeRemote::new(vec![out(0, ""), out(0, "")]);
        let res = Group
            .execute(
                &args(json!({"name": "web"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.changed);
        assert_eq!(r.seen[1].0, "groupadd web");
        let mut r = FakeRemote::new(vec![out(0, "web:x:2001:\n")]);
        let res = Group
            .execute(
                &args(json!({"name": "web"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(!res.changed);
        assert_eq!(res.data["gid"], 2001);
    }

    #[test]
    fn a_failed_command_is_named_in_the_message() {
        let mut r = FakeRemote::new(vec![
            out(0, ""),
            crate::ssh::ExecOutput {
                rc: 4,
                stdout: Vec::new(),
                stderr: b"groupadd: GID '7' already exists\n".to_vec(),
            },
        ]);
        let res = Group
            .execute(
                &args(json!({"name": "web", "gid": 7})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.failed);
        assert_eq!(
            res.msg.as_deref(),
            Some("groupadd -g 7 web failed (rc=4): groupadd: GID '7' already exists")
        );
        assert_eq!(res.rc, Some(4));
        assert!(res.data.is_empty(), "{res:?}");
    }
}
