//! `getent`: one database of the name service switch (`passwd`, `group`, `hosts`, `services`,
//! ...) read with the target's `getent`, returned as the fact `getent_<database>` shaped exactly as
//! Ansible's module shapes it: each line split (on `:` for the colon databases, on whitespace or
//! `split` otherwise), keyed by its first field, with repeated keys gathering their records in a
//! list. Read-only, also in check mode; the runner merges the fact into the host's facts.

use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::{Value, Vars};

pub struct Getent;

const SPEC: Spec = Spec::new(
    "getent",
    &[
        Param::str("database").required(),
        Param::str("key"),
        Param::str("service"),
        Param::str("split"),
        Param::bool("fail_key").default("true"),
    ],
);

/// The databases whose records are split on `:` when `split` is not given.
const COLON: &[&str] = &["passwd", "shadow", "group", "gshadow"];

/// The `getent` command line. Pure.
pub fn command(database: &str, key: Option<&str>, service: Option<&str>) -> String {
    let mut cmd = format!("getent {}", quote(database));
    if let Some(k) = key {
        cmd.push(' ');
        cmd.push_str(&quote(k));
    }
    if let Some(s) = service {
        cmd.push_str(&format!(" -s {}", quote(s)));
    }
    cmd
}

/// Python's `str.split(sep)`: on `sep`, or on runs of whitespace (ends dropped) without one.
fn py_split(line: &str, sep: Option<&str>) -> Vec<String> {
    match sep {
        Some(s) if !s.is_empty() => line.split(s).map(str::to_string).collect(),
        _ => line.split_whitespace().map(str::to_string).collect(),
    }
}

/// The `getent_<database>` value for `getent`'s output. Pure.
pub fn records(out: &str, split: Option<&str>) -> Vars {
    let mut db = Vars::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    // Python's `splitlines` also breaks on `\r` (and a few other separators, rare in getent).
    for line in out.split(['\n', '\r']).filter(|l| !l.is_empty()) {
        let record = py_split(line, split);
        // An all-whitespace line splits into nothing: Python would fail on `record[0]`.
        let Some((first, rest)) = record.split_first() else {
            continue;
        };
        let rest = Value::Array(rest.iter().map(|s| Value::from(s.as_str())).collect());
        match seen.get_mut(first) {
            Some(n) => {
                if *n == 1 {
                    let old = db.remove(first).unwrap_or(Value::Null);
                    db.insert(first.clone(), Value::Array(vec![old]));
                }
                if let Some(Value::Array(list)) = db.get_mut(first) {
                    list.push(rest);
                }
                *n += 1;
            }
            None => {
                db.insert(first.clone(), rest);
                seen.insert(first.clone(), 1);
            }
        }
    }
    db
}

/// The result for `getent`'s exit status and output: Ansible's messages per status. Pure.
pub fn result(
    database: &str,
    key: Option<&str>,
    split: Option<&str>,
    fail_key: bool,
    rc: i32,
    out: &str,
) -> ModuleResult {
    let facts = |db: Vars| {
        let mut f = Vars::new();
        f.insert(format!("getent_{database}"), Value::Object(db));
        Value::Object(f)
    };
    let msg = match rc {
        0 => return ModuleResult::ok().set("ansible_facts", facts(records(out, split))),
        1 => "Missing arguments, or database unknown.",
        2 => {
            let msg = "One or more supplied key could not be found in the database.";
            if !fail_key {
                let mut db = Vars::new();
                // Python's `results[dbtree][None]` serialises as the key "null".
                db.insert(key.unwrap_or("null").to_string(), Value::Null);
                let mut r = ModuleResult::ok().set("ansible_facts", facts(db));
                r.msg = Some(msg.into());
                return r;
            }
            msg
        }
        3 => "Enumeration not supported on this database.",
        _ => "Unexpected failure!",
    };
    ModuleResult::failed(msg)
}

impl Module for Getent {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let database = args.req_str("database")?;
        let key = args.str("key")?;
        let service = args.str("service")?;
        let split = args
            .str("split")?
            .or_else(|| COLON.contains(&database.as_str()).then(|| ":".to_string()));
        let out = ctx.run(&command(&database, key.as_deref(), service.as_deref()))?;
        if out.rc == 127 {
            return Ok(
                ModuleResult::failed("Failed to find required executable \"getent\"")
                    .with_output(&out),
            );
        }
        Ok(result(
            &database,
            key.as_deref(),
            split.as_deref(),
            args.bool("fail_key")?,
            out.rc,
            &out.stdout_str(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_shaped_like_ansible() {
        let out = "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/bin:/usr/sbin/nologin\n";
        assert_eq!(
            Value::Object(records(out, Some(":"))),
            json!({"root": ["x", "0", "0", "root", "/root", "/bin/bash"],
                   "bin": ["x", "1", "1", "", "/bin", "/usr/sbin/nologin"]})
        );
        // Whitespace split; a repeated key gathers its records in a list.
        let hosts = "127.0.0.1       localhost\n::1  localhost ip6-localhost\n127.0.0.1 other\n";
        assert_eq!(
            Value::Object(records(hosts, None)),
            json!({"127.0.0.1": [["localhost"], ["other"]],
                   "::1": ["localhost", "ip6-localhost"]})
        );
        assert_eq!(
            Value::Object(records("a,b\na,c\na,d\n", Some(","))),
            json!({"a": [["b"], ["c"], ["d"]]})
        );
    }

    #[test]
    fn exit_statuses_give_ansibles_messages() {
        let cases = [
            (1, true, true, "Missing arguments, or database unknown."),
            (2, true, true, "One or more supplied key could not be found"),
            (
                2,
                false,
                false,
                "One or more supplied key could not be found",
            ),
            (3, true, true, "Enumeration not supported on this database."),
            (9, true, true, "Unexpected failure!"),
        ];
        for (rc, fail_key, failed, msg) in cases {
            let r = result("passwd", Some("nobody2"), Some(":"), fail_key, rc, "");
            assert_eq!(r.failed, failed, "{rc}");
            assert!(r.msg.as_deref().unwrap().starts_with(msg), "{rc}");
            if !failed {
                assert_eq!(
                    r.data["ansible_facts"],
                    json!({"getent_passwd": {"nobody2": null}})
                );
            }
        }
    }

    #[test]
    fn runs_one_command() {
        let mut r = FakeRemote::scripted(&[(0, "kp:x:9:\n")]);
        let res = Getent
            .execute(
                &args(json!({"database": "group", "key": "kp", "service": "files"})),
                &mut ctx(&mut r, true, false, vec![]),
            )
            .unwrap();
        assert_eq!(r.commands(), vec!["getent group kp -s files"]);
        assert_eq!(
            res.data["ansible_facts"],
            json!({"getent_group": {"kp": ["x", "9", ""]}})
        );
        assert!(!res.changed);
    }
}
