//! Test doubles for modules: one scripted remote ([`FakeRemote`]), a remote that runs commands
//! with the local `sh` ([`LocalRemote`]: real shell and coreutils, no network), a trivial
//! templater, and builders for contexts and arguments.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use super::{Args, ModuleCtx, ModuleError, Spec, Templater};
use crate::ssh::{ExecOutput, Remote, SshError};
use crate::value::Vars;

/// Answers commands from a script of responses, recording every command it got.
#[derive(Default)]
pub struct FakeRemote {
    pub responses: VecDeque<ExecOutput>,
    pub seen: Vec<(String, Option<Vec<u8>>)>,
}

impl FakeRemote {
    pub fn new(responses: Vec<ExecOutput>) -> Self {
        Self {
            responses: responses.into(),
            seen: Vec::new(),
        }
    }

    /// Replies given as `(rc, stdout)` pairs.
    pub fn scripted(replies: &[(i32, &str)]) -> Self {
        Self::new(
            replies
                .iter()
                .map(|(rc, stdout)| out(*rc, stdout))
                .collect(),
        )
    }

    /// The commands run so far, in order.
    pub fn commands(&self) -> Vec<&str> {
        self.seen.iter().map(|(c, _)| c.as_str()).collect()
    }
}

impl Remote for FakeRemote {
    fn exec(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        _timeout: Option<Duration>,
    ) -> Result<ExecOutput, SshError> {
        self.seen.push((cmd.to_string(), stdin.map(|s| s.to_vec())));
        self.responses.pop_front().ok_or(SshError::Session {
            addr: "fake".into(),
            reason: format!("no scripted response for: {cmd}"),
        })
    }
    fn name(&self) -> &str {
        "fake"
    }
}

/// Runs every command with the local `/bin/sh` (counts round trips).
#[derive(Default)]
pub struct LocalRemote {
    pub calls: Vec<String>,
}

impl Remote for LocalRemote {
    fn exec(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        _timeout: Option<Duration>,
    ) -> Result<ExecOutput, SshError> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        self.calls.push(cmd.to_string());
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| SshError::Session {
                addr: "local".into(),
                reason: e.to_string(),
            })?;
        let mut pipe = child.stdin.take();
        let data = stdin.map(|s| s.to_vec()).unwrap_or_default();
        let writer = std::thread::spawn(move || {
            if let Some(p) = pipe.as_mut() {
                let _ = p.write_all(&data);
            }
        });
        let out = child.wait_with_output().map_err(|e| SshError::Session {
            addr: "local".into(),
            reason: e.to_string(),
        })?;
        let _ = writer.join();
        Ok(ExecOutput {
            rc: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
    fn name(&self) -> &str {
        "local"
    }
}

/// Replaces `{{ name }}` with the template name, enough to see rendering happened.
pub struct FakeTemplater;
impl Templater for FakeTemplater {
    fn render(&self, source: &str, name: &str) -> Result<String, String> {
        if source.contains("{{ fail }}") {
            return Err(format!("'fail' is undefined in {name}"));
        }
        Ok(source.replace("{{ name }}", name))
    }
}

pub static NO_FACTS: std::sync::LazyLock<Vars> = std::sync::LazyLock::new(Vars::new);

/// A context over `remote` with the given search dirs.
pub fn ctx<'a>(
    remote: &'a mut dyn Remote,
    check: bool,
    diff: bool,
    search: Vec<PathBuf>,
) -> ModuleCtx<'a> {
    ModuleCtx {
        remote,
        become_: None,
        env: Vec::new(),
        check_mode: check,
        diff,
        facts: &NO_FACTS,
        inventory_hostname: "testhost",
        file_search: search.clone(),
        template_search: search,
        templater: &FakeTemplater,
        timeout: None,
    }
}

/// [`ctx`] with gathered facts (for modules that read them, like `apt` and `service`).
pub fn ctx_with_facts<'a>(
    remote: &'a mut dyn Remote,
    facts: &'a Vars,
    check: bool,
) -> ModuleCtx<'a> {
    ModuleCtx {
        facts,
        ..ctx(remote, check, false, Vec::new())
    }
}

pub fn out(rc: i32, stdout: &str) -> ExecOutput {
    ExecOutput {
        rc,
        stdout: stdout.as_bytes().to_vec(),
        stderr: Vec::new(),
    }
}

/// Build args from JSON.
pub fn args(v: serde_json::Value) -> Vars {
    match v {
        serde_json::Value::Object(m) => m,
        _ => panic!("args must be an object"),
    }
}

/// Check `json` against `spec` and parse it with `parse` (a module's `…Args::from_args`), errors
/// prefixed with the module name as [`Module::execute`](super::Module::execute) does.
pub fn parse_with<T>(
    spec: &'static Spec,
    json: serde_json::Value,
    parse: impl FnOnce(&Args<'_>) -> Result<T, ModuleError>,
) -> Result<T, ModuleError> {
    let vars = args(json);
    Args::new(spec, &vars)
        .and_then(|a| parse(&a))
        .map_err(|e| e.in_module(spec.module))
}

/// Run `script` with the local `/bin/sh`, fed `stdin` when given.
pub fn sh(script: &str, stdin: Option<&[u8]>) -> ExecOutput {
    let mut local = LocalRemote::default();
    match local.exec(script, stdin, None) {
        Ok(out) => out,
        Err(e) => panic!("local sh: {e}"),
    }
}
