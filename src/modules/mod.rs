//! Task modules: one file per module, each a pure planner plus a small apply step.
//!
//! A module receives its arguments already templated (JSON values), probes the target with at most
//! one round trip, plans the shell commands that bring the target to the wanted state (pure,
//! table-tested), and applies them unless in check mode. Adding a module = one file + one line in
//! [`registry`].
//!
//! Control modules that act on the runner itself (`set_fact`, `include_tasks`, `meta`, `debug`,
//! `assert`, `setup`, `wait_for_connection`, ...) are handled by the runner, not here.

use std::path::PathBuf;
use std::time::Duration;

use crate::ssh::{Become, ExecOutput, Remote, SshError};
use crate::value::{Value, Vars};

pub mod apt;
pub mod blockinfile;
pub mod command;
pub mod copy;
pub mod cron;
pub mod file;
pub mod get_url;
pub mod group;
pub mod lineinfile;
pub mod package;
pub mod ping;
pub mod raw;
pub mod script;
pub mod service;
pub mod shell;
pub mod stat;
pub mod sysutil;
pub mod template;
pub mod user;
pub mod util;
pub mod wait_for;

/// Result of a module run: exactly the keys Ansible users read after `register`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModuleResult {
    pub changed: bool,
    pub failed: bool,
    pub msg: Option<String>,
    pub rc: Option<i32>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    /// One entry per file whose content changed (shown with `--diff`).
    pub diff: Vec<FileDiff>,
    /// Module-specific keys (`stat`, `dest`, `path`, `state`, `ansible_facts`, ...).
    pub data: Vars,
}

impl ModuleResult {
    pub fn ok() -> Self {
        Self::default()
    }
    pub fn changed() -> Self {
        Self {
            changed: true,
            ..Self::default()
        }
    }
    pub fn failed(msg: impl Into<String>) -> Self {
        Self {
            failed: true,
            msg: Some(msg.into()),
            ..Self::default()
        }
    }
    /// Record a command's rc/stdout/stderr.
    pub fn with_output(mut self, out: &ExecOutput) -> Self {
        self.rc = Some(out.rc);
        self.stdout = Some(out.stdout_str());
        self.stderr = Some(out.stderr_str());
        self
    }
    pub fn set(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.data.insert(key.to_string(), v.into());
        self
    }
}

/// A before/after pair for one file, rendered as a unified diff by the runner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDiff {
    pub path: String,
    pub before: String,
    pub after: String,
}

/// Errors that are not a "failed" result but a problem with the task itself.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Bad or missing argument: names the parameter.
    #[error("{0}")]
    Args(String),
    /// The host went away mid-task.
    #[error(transparent)]
    Unreachable(#[from] SshError),
    /// A local file (src, template) could not be read.
    #[error("{0}")]
    Local(String),
}

/// Renders templates for modules that need it (`template`, `assert`-like checks).
pub trait Templater {
    /// Render a template source with the task's variables.
    fn render(&self, source: &str, name: &str) -> Result<String, String>;
}

/// Everything a module may use while running on one host.
pub struct ModuleCtx<'a> {
    pub remote: &'a mut dyn Remote,
    pub become_: Option<Become>,
    /// Task `environment:` (exported before the command).
    pub env: Vec<(String, String)>,
    pub check_mode: bool,
    pub diff: bool,
    /// Gathered facts (`ansible_*` names without the prefix stripped), may be empty.
    pub facts: &'a Vars,
    /// Directories searched, in order, for `src` files (role files/, playbook files/, playbook dir).
    pub file_search: Vec<PathBuf>,
    /// Same for templates (role templates/, playbook templates/, playbook dir).
    pub template_search: Vec<PathBuf>,
    pub templater: &'a dyn Templater,
    /// Per-command timeout, if any.
    pub timeout: Option<Duration>,
}

impl ModuleCtx<'_> {
    /// Run a shell command on the target with become and environment applied.
    pub fn run(&mut self, cmd: &str) -> Result<ExecOutput, SshError> {
        self.run_with_stdin(cmd, None)
    }

    /// Same as [`run`](Self::run), feeding `stdin`.
    pub fn run_with_stdin(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        // With become, the script travels on stdin, never in sudo/su arguments (issue 9).
        let w = crate::ssh::become_::wrap_input(cmd, self.become_.as_ref(), &self.env, stdin);
        self.remote
            .exec(&w.command, w.stdin.as_deref(), self.timeout)
    }

    /// Find a local file by name in `search` (absolute paths are used as they are).
    pub fn find_local(search: &[PathBuf], name: &str) -> Option<PathBuf> {
        let p = std::path::Path::new(name);
        if p.is_absolute() {
            return p.exists().then(|| p.to_path_buf());
        }
        search.iter().map(|d| d.join(name)).find(|c| c.exists())
    }

    pub fn quote(s: &str) -> String {
        crate::shell::quote(s)
    }
}

/// A task module.
pub trait Module: Sync {
    /// Canonical short name (`copy`); FQCN `ansible.builtin.copy` is resolved by the registry.
    fn name(&self) -> &'static str;
    /// Accepted parameter names including aliases (used for "unknown parameter, did you mean").
    /// Modules taking free-form text accept `_raw_params`.
    fn params(&self) -> &'static [&'static str];
    /// Run on one host. `args` are templated; booleans may still be strings (use `util::arg_bool`).
    fn run(&self, args: &Vars, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError>;
}

/// Every remote module, by canonical name. One line per module.
pub fn registry() -> &'static [&'static dyn Module] {
    &[
        // modules register here, e.g. &copy::Copy,
        &apt::Apt,
        &package::Package,
        &ping::Ping,
        &command::Command,
        &copy::Copy,
        &shell::Shell,
        &raw::Raw,
        &service::SERVICE,
        &service::SYSTEMD,
        &template::Template,
        &user::User,
        &group::Group,
        &cron::Cron,
        &stat::Stat,
        &file::File,
        &lineinfile::LineInFile,
        &get_url::GetUrl,
        &blockinfile::BlockInFile,
        &wait_for::WaitFor,
        &script::Script,
    ]
}

/// Look a module up by short name or `ansible.builtin.` / `ansible.legacy.` FQCN.
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name);
    registry().iter().copied().find(|m| m.name() == short)
}
