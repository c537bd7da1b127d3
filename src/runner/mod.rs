//! The runner: inventory + playbook + vars → per-host task execution.
//!
//! - `play`     plays, host batches (`serial`), a pool of `--forks` threads, linear lockstep or free
//! - `host`     one host's run of a play: its state, the play's shared context, its session
//! - `walk`     the task tree on one host: blocks/rescue/always, tags, includes, handlers
//! - `task`     one leaf task: when, module run, until, changed_when/failed_when, register, notify
//! - `loops`    loop items, loop_control, first_found, one line per item, the loop's summary
//! - `keywords` a task's keywords on one host, templated and resolved once
//! - `result`   result shaping: registered values, skip/censor values, diffs, outcomes
//! - `scope`    a task's variables on one host (magic variables over `vars`)
//! - `control`  modules that act on the run itself (`set_fact`, `debug`, `assert`, `meta`, ...),
//!   returning what they change as an effect
//! - `vars`     variable precedence
//! - `report`   Ansible-style output, per-host logs, JSON report, PLAY RECAP
//! - `connect`  how hosts are reached (real SSH, or a fake in tests)
//! - `knocked`  the runner as the knock listener's launcher (marker, per-run log)
//! - `deadline` a task's `timeout` as a deadline: what is left of it, and the failure it ends in
//! - `escape`   target text made safe for the terminal (control characters escaped)
//!
//! One SSH session per host lives for the whole run. It moves with the host's state from worker
//! to worker between steps and is used by one thread at a time (libssh2 sessions are not
//! thread-safe, so a session is never shared).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::counters::RunCounts;
use crate::inventory::Inventory;
use crate::value::Vars;

mod argspec;
mod asyncs;
pub mod connect;
pub mod control;
mod deadline;
mod defaults;
mod delegate;
mod escape;
pub mod host;
pub mod keywords;
pub mod knocked;
mod loops;
mod once;
pub mod play;
pub mod progress;
pub mod report;
pub mod result;
mod scope;
mod sshroute;
pub mod task;
mod throttle;
pub mod vars;
pub mod walk;
mod with_lookups;

#[cfg(test)]
pub mod tests;

pub use connect::{Connector, HostConn, SshConnector};
pub use report::{ReportOptions, Reporter};

/// Exit codes, as ansible-playbook's.
pub mod exit {
    pub const OK: i32 = 0;
    /// A host failed.
    pub const HOST_FAILED: i32 = 2;
    /// A host was unreachable, or the playbook/inventory could not be parsed.
    pub const UNREACHABLE_OR_PARSE: i32 = 4;
    /// Bad command-line options.
    pub const BAD_OPTIONS: i32 = 5;
    /// Interrupted (SIGINT/SIGTERM).
    pub const INTERRUPTED: i32 = 99;
}

/// Everything a run needs. Built by the CLI from flags, or by the knock listener for one host.
pub struct RunOptions {
    pub playbook: PathBuf,
    pub inventory: Inventory,
    pub limit: Option<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub extra_vars: Vars,
    pub check: bool,
    pub diff: bool,
    pub forks: usize,
    /// `-u`: login user when the inventory does not say.
    pub remote_user: Option<String>,
    /// `--private-key`.
    pub private_key: Option<PathBuf>,
    /// `-b` and friends: defaults when the playbook does not say.
    pub become_: bool,
    pub become_user: Option<String>,
    pub become_method: Option<String>,
    pub connector: Arc<dyn Connector>,
    pub report: ReportOptions,
    /// Set to stop the run between tasks (SIGINT / listener shutdown).
    pub cancel: Arc<AtomicBool>,
    /// Run this shell command (as root) on every host that finished without failure, over the
    /// run's own session (the listener writes its "configured" marker this way).
    pub finish_command: Option<String>,
    /// How long a task may take when it sets no `timeout:` itself (`None`: no limit). The
    /// listener's default deadline, so a target cannot hold a run forever.
    pub task_timeout: Option<std::time::Duration>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub stats: BTreeMap<String, RunCounts>,
    pub exit_code: i32,
    pub interrupted: bool,
}

impl RunReport {
    /// Sum of all hosts' counters.
    pub fn totals(&self) -> RunCounts {
        RunCounts::total(self.stats.values())
    }
}

/// A playbook or inventory problem found before anything ran.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Parse(#[from] crate::playbook::parse::ParseError),
    #[error("{0}")]
    Setup(String),
}

/// Parse the playbook and run it. Parse errors come back as `Err` (exit code 4).
pub fn run_playbook(opts: RunOptions) -> Result<RunReport, RunError> {
    let search = crate::ansible_cfg::role_search_beside(&opts.playbook)
        .map_err(|e| RunError::Setup(e.to_string()))?;
    let pb = crate::playbook::parse::load_playbook_with(&opts.playbook, &search)?;
    Ok(play::run(&pb, opts))
}
