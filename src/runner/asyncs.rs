//! `async` and `poll`. With `poll` above zero (Ansible's default is 15) the task runs as usual
//! and `async` is its deadline: past it the task fails as Ansible's does. With `poll: 0` a
//! `command` or `shell` task starts in the background (`nohup`, detached from the session, all
//! output to /dev/null) and the task reports `started`, with the job's process id as
//! `ansible_job_id`; other modules cannot be fired and forgotten and say so.

use std::time::Duration;

use serde_json::json;

use super::result::Outcome;
use crate::modules::ModuleResult;
use crate::shell::{quote, split_words, WordRules};
use crate::ssh::Remote;
use crate::value::{count_of, to_display, Value, Vars};

/// A task's `async`/`poll`, rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncSpec {
    pub limit: Duration,
    pub poll: u64,
}

/// `async`/`poll` of a task (`None`: not async). `render` templates a keyword's value.
pub fn resolve(
    async_: Option<&Value>,
    poll: Option<&Value>,
    render: impl Fn(&Value) -> Result<Value, String>,
) -> Result<Option<AsyncSpec>, String> {
    let Some(a) = async_ else { return Ok(None) };
    let number = |what: &str, v: &Value| -> Result<u64, String> {
        let r = render(v)?;
        count_of(&r)
            .map(u64::from)
            .map_err(|e| format!("{what}: {e} (got {})", to_display(&r)))
    };
    let secs = number("async", a)?;
    let poll = match poll {
        Some(p) => number("poll", p)?,
        None => 15,
    };
    Ok(Some(AsyncSpec {
        limit: Duration::from_secs(secs),
        poll,
    }))
}

/// The command that starts a `command`/`shell` task in the background and prints the job's
/// process id. Pure.
pub fn detached_command(module: &str, args: &Vars) -> Result<String, String> {
    let supported = [
        "_raw_params",
        "cmd",
        "argv",
        "chdir",
        "_uses_shell",
        "executable",
    ];
    if let Some(k) = args.keys().find(|k| !supported.contains(&k.as_str())) {
        return Err(format!(
            "async with poll: 0 does not support the '{k}' option of {module} in knockplay"
        ));
    }
    let raw = args
        .get("_raw_params")
        .or_else(|| args.get("cmd"))
        .map(to_display);
    let inner = match (module, raw, args.get("argv")) {
        ("shell", Some(text), _) => {
            let sh = args
                .get("executable")
                .map(to_display)
                .unwrap_or_else(|| "/bin/sh".into());
            format!("exec {} -c {}", quote(&sh), quote(&text))
        }
        ("command", Some(text), _) => {
            let words = split_words(&text, WordRules::CommandLine)?;
            format!(
                "exec {}",
                words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
            )
        }
        ("command", None, Some(Value::Array(argv))) => format!(
            "exec {}",
            argv.iter()
                .map(|w| quote(&to_display(w)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        (m, _, _) if m != "command" && m != "shell" => {
            return Err(format!(
                "async with poll: 0 runs only command and shell tasks in knockplay, not {m}"
            ))
        }
        _ => return Err(format!("{module}: no command given")),
    };
    let inner = match args.get("chdir").map(to_display) {
        Some(dir) => format!("cd {} && {inner}", quote(&dir)),
        None => inner,
    };
    Ok(format!(
        "nohup /bin/sh -c {} </dev/null >/dev/null 2>&1 &\necho $!",
        quote(&inner)
    ))
}

/// The result of a job started in the background.
pub fn started_result(pid: &str) -> Value {
    json!({
        "changed": true,
        "started": 1,
        "finished": 0,
        "ansible_job_id": pid.trim(),
    })
}

/// `poll: 0`: start the command in the background on the host and report it started.
pub fn fire_and_forget(
    remote: &mut (dyn Remote + Send),
    module: &str,
    args: &Vars,
    become_: Option<&crate::ssh::Become>,
    env: &[(String, String)],
    check_mode: bool,
) -> Result<Outcome, String> {
    let cmd = detached_command(module, args)?;
    if check_mode {
        let mut r = ModuleResult::ok();
        r.msg = Some("check mode: the background job was not started".into());
        return Ok(Outcome::of(r));
    }
    let wrapped = crate::ssh::become_::wrap(&cmd, become_, env);
    let out = remote
        .exec(&wrapped, None, Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.rc != 0 || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "could not start the background job (rc {}): {}",
            out.rc,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut r = ModuleResult::changed();
    if let Value::Object(m) = started_result(&pid) {
        r.data = m;
    }
    Ok(Outcome::of(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: serde_json::Value) -> Vars {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn specs_and_detached_commands() {
        let id = |v: &Value| Ok(v.clone());
        assert_eq!(resolve(None, None, id), Ok(None));
        assert_eq!(
            resolve(Some(&json!(30)), None, id),
            Ok(Some(AsyncSpec {
                limit: Duration::from_secs(30),
                poll: 15
            }))
        );
        assert!(resolve(Some(&json!("soon")), None, id)
            .unwrap_err()
            .starts_with("async:"));
        let c = detached_command(
            "command",
            &vars(json!({"_raw_params": "sleep 'a b'", "chdir": "/tmp"})),
        )
        .unwrap();
        assert_eq!(
            c,
            "nohup /bin/sh -c 'cd /tmp && exec sleep '\\''a b'\\''' </dev/null >/dev/null 2>&1 &\necho $!"
        );
        let s =
            detached_command("shell", &vars(json!({"_raw_params": "echo $HOME > /x"}))).unwrap();
        assert!(s.starts_with("nohup /bin/sh -c 'exec /bin/sh -c '"), "{s}");
        assert!(detached_command("copy", &vars(json!({"_raw_params": "x"})))
            .unwrap_err()
            .contains("only command and shell"));
        assert!(detached_command(
            "command",
            &vars(json!({"_raw_params": "x", "creates": "/y"}))
        )
        .unwrap_err()
        .contains("'creates'"));
    }
}
