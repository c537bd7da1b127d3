//! Helpers for the system modules (apt, service, user, cron, ...): argument getters with clear
//! errors, sectioned probe output, running a command and turning failure into a result.

use indexmap::IndexMap;

use super::{ModuleCtx, ModuleError, ModuleResult};
use crate::ssh::ExecOutput;
use crate::value::{as_bool, Value, Vars};

/// First non-null value among `names` (a parameter and its aliases).
pub fn get<'a>(args: &'a Vars, names: &[&str]) -> Option<(&'a str, &'a Value)> {
    names.iter().find_map(|n| {
        args.get_key_value(*n)
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.as_str(), v))
    })
}

fn bad(param: &str, want: &str, got: &Value) -> ModuleError {
    ModuleError::Args(format!("parameter '{param}' must be {want}, got {got}"))
}

/// A scalar parameter as a string (numbers and booleans are rendered).
pub fn opt_str(args: &Vars, names: &[&str]) -> Result<Option<String>, ModuleError> {
    match get(args, names) {
        None => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s.clone())),
        Some((_, Value::Number(n))) => Ok(Some(n.to_string())),
        Some((_, Value::Bool(b))) => Ok(Some(if *b { "True" } else { "False" }.to_string())),
        Some((k, v)) => Err(bad(k, "a string", v)),
    }
}

/// A required scalar parameter.
pub fn req_str(args: &Vars, names: &[&str]) -> Result<String, ModuleError> {
    opt_str(args, names)?
        .ok_or_else(|| ModuleError::Args(format!("missing required parameter '{}'", names[0])))
}

/// A boolean parameter (`yes/no/true/false/on/off/1/0`).
pub fn opt_bool(args: &Vars, names: &[&str]) -> Result<Option<bool>, ModuleError> {
    match get(args, names) {
        None => Ok(None),
        Some((k, v)) => as_bool(v)
            .map(Some)
            .ok_or_else(|| bad(k, "a boolean (yes/no/true/false)", v)),
    }
}

pub fn bool_or(args: &Vars, names: &[&str], default: bool) -> Result<bool, ModuleError> {
    Ok(opt_bool(args, names)?.unwrap_or(default))
}

/// A non-negative integer parameter (numbers or numeric strings).
pub fn opt_u64(args: &Vars, names: &[&str]) -> Result<Option<u64>, ModuleError> {
    match get(args, names) {
        None => Ok(None),
        Some((k, v)) => {
            let n = match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            };
            n.map(Some)
                .ok_or_else(|| bad(k, "a non-negative integer", v))
        }
    }
}

/// A list parameter: a YAML list of scalars or a comma-separated string.
pub fn opt_list(args: &Vars, names: &[&str]) -> Result<Option<Vec<String>>, ModuleError> {
    let Some((k, v)) = get(args, names) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    match v {
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) => out.extend(split_commas(s)),
                    Value::Number(n) => out.push(n.to_string()),
                    other => return Err(bad(k, "a list of strings", other)),
                }
            }
        }
        Value::String(s) => out.extend(split_commas(s)),
        Value::Number(n) => out.push(n.to_string()),
        other => return Err(bad(k, "a list or a comma-separated string", other)),
    }
    Ok(Some(out))
}

fn split_commas(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
}

/// A string parameter restricted to `choices` (first one listed in `names` is reported).
pub fn choice(
    args: &Vars,
    names: &[&str],
    choices: &[&str],
    default: &str,
) -> Result<String, ModuleError> {
    match opt_str(args, names)? {
        None => Ok(default.to_string()),
        Some(s) if choices.contains(&s.as_str()) => Ok(s),
        Some(s) => Err(ModuleError::Args(format!(
            "parameter '{}' must be one of: {}; got '{s}'",
            get(args, names).map(|(k, _)| k).unwrap_or(names[0]),
            choices.join(", ")
        ))),
    }
}

/// Reject parameters a module knows about but knockplay does not implement, instead of ignoring them.
pub fn reject_unsupported(args: &Vars, names: &[&str], module: &str) -> Result<(), ModuleError> {
    match get(args, names) {
        Some((k, _)) => Err(ModuleError::Args(format!(
            "{module}: parameter '{k}' is not supported by knockplay"
        ))),
        None => Ok(()),
    }
}

/// Header line of a probe section; see [`sections`].
pub fn section(name: &str) -> String {
    format!("printf '\\n@@KP:{name}\\n'")
}

/// Split probe output printed with [`section`] headers into name → exact content.
pub fn sections(out: &str) -> IndexMap<String, String> {
    let mut map = IndexMap::new();
    let mut parts = out.split("\n@@KP:");
    parts.next();
    for part in parts {
        let (name, body) = part.split_once('\n').unwrap_or((part, ""));
        // The '\n' that starts each header was consumed by the split: bodies are exact.
        map.insert(name.to_string(), body.to_string());
    }
    map
}

/// Run a command; a non-zero rc becomes a failed result carrying rc/stdout/stderr.
pub fn run_checked(
    ctx: &mut ModuleCtx<'_>,
    cmd: &str,
    stdin: Option<&[u8]>,
    what: &str,
) -> Result<Result<ExecOutput, ModuleResult>, ModuleError> {
    let out = ctx.run_with_stdin(cmd, stdin)?;
    if out.ok() {
        Ok(Ok(out))
    } else {
        Ok(Err(failed_output(what, &out)))
    }
}

/// A failed result for a command that exited non-zero.
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

/// A list of strings as a JSON value.
pub fn str_list(items: &[String]) -> Value {
    Value::Array(items.iter().cloned().map(Value::String).collect())
}

#[cfg(test)]
pub mod testing {
    //! A scripted fake target for module run-flow tests.
    use std::collections::VecDeque;
    use std::time::Duration;

    use crate::modules::{ModuleCtx, Templater};
    use crate::ssh::{ExecOutput, Remote, SshError};
    use crate::value::Vars;

    /// Answers commands in order from a queue and records every command it ran.
    #[derive(Default)]
    pub struct FakeRemote {
        pub replies: VecDeque<ExecOutput>,
        pub commands: Vec<String>,
        pub stdins: Vec<Option<Vec<u8>>>,
    }

    impl FakeRemote {
        pub fn new(replies: &[(i32, &str)]) -> Self {
            Self {
                replies: replies
                    .iter()
                    .map(|(rc, out)| ExecOutput {
                        rc: *rc,
                        stdout: out.as_bytes().to_vec(),
                        stderr: Vec::new(),
                    })
                    .collect(),
                ..Self::default()
            }
        }
    }

    impl Remote for FakeRemote {
        fn exec(
            &mut self,
            cmd: &str,
            stdin: Option<&[u8]>,
            _timeout: Option<Duration>,
        ) -> Result<ExecOutput, SshError> {
            self.commands.push(cmd.to_string());
            self.stdins.push(stdin.map(<[u8]>::to_vec));
            Ok(self.replies.pop_front().unwrap_or_else(|| ExecOutput {
                rc: 99,
                stdout: Vec::new(),
                stderr: b"fake: no reply scripted".to_vec(),
            }))
        }
        fn name(&self) -> &str {
            "fake"
        }
    }

    pub struct NoTemplates;
    impl Templater for NoTemplates {
        fn render(&self, source: &str, _name: &str) -> Result<String, String> {
            Ok(source.to_string())
        }
    }

    pub fn ctx<'a>(remote: &'a mut dyn Remote, facts: &'a Vars, check: bool) -> ModuleCtx<'a> {
        ModuleCtx {
            remote,
            become_: None,
            env: Vec::new(),
            check_mode: check,
            diff: false,
            facts,
            file_search: Vec::new(),
            template_search: Vec::new(),
            templater: &NoTemplates,
            timeout: None,
        }
    }

    /// Parse `{...}` JSON into module args.
    pub fn args(json: serde_json::Value) -> Vars {
        match json {
            serde_json::Value::Object(m) => m,
            _ => panic!("args must be an object"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a(v: serde_json::Value) -> Vars {
        testing::args(v)
    }

    #[test]
    fn lists_accept_yaml_lists_and_comma_strings() {
        let args = a(json!({"name": "a, b,c", "pkg": ["x", "y,z", 3]}));
        assert_eq!(
            opt_list(&args, &["name"]).unwrap().unwrap(),
            ["a", "b", "c"]
        );
        assert_eq!(
            opt_list(&args, &["pkg"]).unwrap().unwrap(),
            ["x", "y", "z", "3"]
        );
        assert!(opt_list(&a(json!({"name": {"k": 1}})), &["name"]).is_err());
    }

    #[test]
    fn errors_name_the_parameter() {
        let args = a(json!({"state": "sideways", "purge": "maybe", "uid": "-1"}));
        let e = choice(&args, &["state"], &["present", "absent"], "present").unwrap_err();
        assert!(e.to_string().contains("'state'") && e.to_string().contains("sideways"));
        let e = opt_bool(&args, &["purge"]).unwrap_err();
        assert!(e.to_string().contains("'purge'"), "{e}");
        let e = opt_u64(&args, &["uid"]).unwrap_err();
        assert!(e.to_string().contains("'uid'"), "{e}");
        let e = req_str(&args, &["name", "pkg"]).unwrap_err();
        assert!(e.to_string().contains("'name'"), "{e}");
    }

    #[test]
    fn aliases_and_nulls() {
        let args = a(json!({"name": null, "pkg": "vim", "update_cache": "yes"}));
        assert_eq!(opt_str(&args, &["name", "pkg"]).unwrap().unwrap(), "vim");
        assert!(bool_or(&args, &["update_cache"], false).unwrap());
        assert!(!bool_or(&args, &["purge"], false).unwrap());
    }

    #[test]
    fn sections_keep_exact_bytes() {
        let script = format!(
            "{}; printf 'a\\nb'; {}; printf 'c\\n'; {}; true",
            section("one"),
            section("two"),
            section("three")
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        let s = sections(&String::from_utf8(out.stdout).unwrap());
        assert_eq!(s["one"], "a\nb");
        assert_eq!(s["two"], "c\n");
        assert_eq!(s["three"], "");
    }
}
