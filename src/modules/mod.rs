//! Task modules: one file per module, each a pure planner plus a small apply step.
//!
//! A module declares its parameters once ([`Spec`] of [`Param`]s: type, default, required,
//! aliases, choices); the playbook parser checks tasks against that declaration and the module
//! reads every value through [`Args`], which coerces it the way Ansible does and refuses names the
//! declaration lacks. It then probes the target with at most one round trip, plans the shell
//! commands that bring the target to the wanted state (pure, table-tested), and applies them
//! unless in check mode. The helpers, split by job:
//!
//! - [`params`], [`coerce`], [`args`]: declarations, Ansible's type coercion, reading arguments;
//! - [`probe`]: the one-round-trip file probe and `@@KP:` sections;
//! - [`plan`]: [`plan::Plan`]/[`plan::Outcome`], [`plan::finish`] (and [`plan::finish_command`]
//!   for system commands: apt-get, useradd, systemctl), failure messages;
//! - [`write`](mod@write): wanted attributes and the atomic write script; [`mode`]: file modes;
//! - [`textfile`]: the read-edit-write flow of `lineinfile`, `blockinfile`, `replace` and `ini_file`;
//! - `testing`: one scripted fake remote, a local-shell remote, context and argument builders.
//!
//! Adding a module is one file plus one line in [`registry`] (and its `pub mod` line):
//!
//! ```no_run
//! use knockplay::modules::plan::{finish, Outcome, Plan};
//! use knockplay::modules::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
//!
//! /// `hostname`: set the host name (one probe round trip, one change when it differs).
//! pub struct Hostname;
//!
//! const SPEC: Spec = Spec::new("hostname", &[Param::str("name").required()]);
//!
//! impl Module for Hostname {
//!     fn spec(&self) -> &'static Spec {
//!         &SPEC
//!     }
//!     fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
//!         let name = args.req_str("name")?;
//!         let current = ctx.run("hostname")?.stdout_str();
//!         let plan = if current.trim() == name {
//!             Plan::NoChange
//!         } else {
//!             Plan::commands(vec![format!("hostname {}", ModuleCtx::quote(&name))])
//!         };
//!         finish(ctx, Outcome::new(plan).set("name", name.as_str()))
//!     }
//! }
//! ```
//!
//! Control modules, which act on the run itself (`set_fact`, `include_tasks`, `meta`, `debug`,
//! `assert`, `setup`, `wait_for_connection`, ...), are declared in [`control_specs`] and executed
//! by the runner.

use std::path::PathBuf;
use std::time::Duration;

use crate::ssh::{Become, ExecOutput, Remote, SshError};
use crate::value::{Value, Vars};

pub mod apt;
pub mod apt_key;
pub mod apt_repository;
pub mod args;
pub mod authorized_key;
pub mod blockinfile;
pub mod coerce;
pub mod command;
pub mod control_specs;
pub mod copy;
pub mod cron;
pub mod deb822_repository;
pub mod dnf;
pub mod fetch;
pub mod file;
pub mod find;
pub mod get_url;
pub mod getent;
pub mod git;
pub mod group;
pub mod hostname;
pub mod ini_file;
pub mod lineinfile;
pub mod mode;
pub mod mount;
pub mod package;
pub mod params;
pub mod ping;
pub mod pip;
pub mod plan;
pub mod probe;
pub mod raw;
pub mod replace;
pub mod rpm_key;
pub mod rpmver;
pub mod safepath;
pub mod script;
pub mod service;
pub mod shell;
pub mod slurp;
pub mod stat;
pub mod sysctl;
pub mod template;
#[cfg(test)]
pub mod testing;
pub mod textfile;
pub mod unarchive;
pub mod uri;
pub mod user;
pub mod wait_for;
pub mod write;
pub mod yum_repository;

#[cfg(test)]
mod registry_tests;

pub use args::Args;
pub use params::{Param, Spec};

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

impl ModuleError {
    /// The error with its message prefixed by `module` (once: the declaration's messages about
    /// refused or pinned parameters already name it).
    pub fn in_module(self, module: &str) -> Self {
        let prefix = |msg: String| {
            if msg.starts_with(&format!("{module}: ")) {
                msg
            } else {
                format!("{module}: {msg}")
            }
        };
        match self {
            ModuleError::Args(m) => ModuleError::Args(prefix(m)),
            ModuleError::Local(m) => ModuleError::Local(prefix(m)),
            other => other,
        }
    }
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
    /// The host's `inventory_hostname` (`fetch` files its downloads under it).
    pub inventory_hostname: &'a str,
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
    /// The parameter declaration; its `module` is the canonical short name (`copy`), the FQCN
    /// `ansible.builtin.copy` is resolved by the registry.
    fn spec(&self) -> &'static Spec;
    /// Run on one host, reading the (templated) arguments through `args`.
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError>;

    fn name(&self) -> &'static str {
        self.spec().module
    }

    /// The entry point for the runner and for tests: check `args` against the declaration, run,
    /// warn about `mode: 644`, and prefix every argument or local error with the module name
    /// (here, once).
    fn execute(&self, args: &Vars, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let spec = self.spec();
        Args::new(spec, args)
            .and_then(|a| {
                let result = self.run(&a, ctx)?;
                plan::warn_decimal_mode(&a, result)
            })
            .map_err(|e| e.in_module(spec.module))
    }
}

/// Every remote module, by canonical name. One line per module.
pub fn registry() -> &'static [&'static dyn Module] {
    &[
        // modules register here, e.g. &copy::Copy,
        &apt::Apt,
        &apt_repository::AptRepository,
        &apt_key::AptKey,
        &deb822_repository::Deb822Repository,
        &dnf::Dnf,
        &dnf::Yum,
        &yum_repository::YumRepository,
        &rpm_key::RpmKey,
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
        &find::Find,
        &unarchive::Unarchive,
        &file::File,
        &lineinfile::LineInFile,
        &get_url::GetUrl,
        &blockinfile::BlockInFile,
        &replace::Replace,
        &wait_for::WaitFor,
        &script::Script,
        &ini_file::IniFile,
        &slurp::Slurp,
        &uri::Uri,
        &pip::Pip,
        &git::Git,
        &getent::Getent,
        &sysctl::Sysctl,
        &hostname::Hostname,
        &fetch::Fetch,
        &authorized_key::AuthorizedKey,
        &mount::Mount,
    ]
}

/// The community.general modules knockplay implements, by short name: `community.general.X`
/// is looked up as `X`, and no other module of that collection.
pub const COMMUNITY_GENERAL: &[&str] = &["ini_file"];

/// The ansible.posix modules knockplay implements, by short name: `ansible.posix.X` is looked up
/// as `X`, and no other module of that collection.
pub const ANSIBLE_POSIX: &[&str] = &["authorized_key", "sysctl", "mount"];

/// Look a module up by short name or `ansible.builtin.` / `ansible.legacy.` FQCN (and
/// `community.general.` / `ansible.posix.` for the names in [`COMMUNITY_GENERAL`] and
/// [`ANSIBLE_POSIX`]).
pub fn lookup(name: &str) -> Option<&'static dyn Module> {
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .or_else(|| {
            name.strip_prefix("community.general.")
                .filter(|s| COMMUNITY_GENERAL.contains(s))
        })
        .or_else(|| {
            name.strip_prefix("ansible.posix.")
                .filter(|s| ANSIBLE_POSIX.contains(s))
        })
        .unwrap_or(name);
    // ansible-core's aliases of a module.
    let short = match short {
        "systemd_service" => "systemd",
        other => other,
    };
    registry().iter().copied().find(|m| m.name() == short)
}
