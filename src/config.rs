//! knock.toml: the listener configuration model (unknown keys rejected) and its validation.
//!
//! `load` parses and validates everything `knockplay listen` needs, collecting every problem
//! with its `file:line:col` so `knockplay check-config` can print them all at once.

//!
//! - this file: the validated model, errors, loading
//! - `raw`: the file as written (serde); `validate`: raw → model, every problem with its position
//! - `system`: the machine's interfaces and default route

mod raw;
mod system;
mod validate;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use crate::history::HistorySettings;
use crate::knock::flags::TcpFlagRule;
use crate::knock::port::PortSpec;
use crate::knock::sequence::DoorSequence;
use crate::value::Vars;

pub use system::SystemInfo;

/// The validated listener configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenConfig {
    /// The file it was read from (reloads read it again).
    pub source: PathBuf,
    pub listener: ListenerSettings,
    pub runner: RunnerSettings,
    pub history: HistorySettings,
    pub doors: Vec<Door>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSettings {
    pub interfaces: Vec<String>,
    /// Socket receive buffer per interface, in bytes.
    pub receive_buffer: usize,
    /// The most knock attempts tracked at once (oldest evicted beyond).
    pub max_attempts: usize,
    /// Failed attempts written to the history per second at most (the rest only counted).
    pub history_failed_per_second: u32,
    /// Knocks and runs older than this many days are pruned at start (0: kept forever).
    pub history_retention_days: u32,
    /// Where `/metrics` (Prometheus text format) and `/healthz` are served; `None`: off.
    pub metrics: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerSettings {
    pub max_concurrent_runs: usize,
    pub queue_limit: usize,
    pub ssh_wait: Duration,
    /// On SIGTERM, how long running runs may take to finish.
    pub grace_period: Duration,
    /// The longest a door's `command` may run before it is killed.
    pub command_timeout: Duration,
    /// Default deadline of each task of a playbook run (`timeout:` on a task or block wins);
    /// `None` (written `0`): no limit.
    pub task_timeout: Option<Duration>,
    pub host_key_checking: HostKeyChecking,
    pub log_dir: PathBuf,
    pub state_dir: PathBuf,
}

/// What to do with a host key that is not in knockplay's known_hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyChecking {
    /// Record keys of new hosts; refuse a changed key for a known address (the default).
    AcceptNew,
    /// Only connect to hosts whose key is already known.
    Strict,
    /// No checking (must be written explicitly; logged as a warning).
    Off,
}

impl HostKeyChecking {
    pub fn as_str(self) -> &'static str {
        match self {
            HostKeyChecking::AcceptNew => "accept-new",
            HostKeyChecking::Strict => "strict",
            HostKeyChecking::Off => "off",
        }
    }
}

/// A door: a knock sequence, who may knock it, and what to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Door {
    pub name: String,
    pub sequence: Vec<PortSpec>,
    pub seq_timeout: Duration,
    pub tcp_flags: TcpFlagRule,
    pub allow: Allow,
    pub action: Action,
    /// After a successful run, knocks of the same host on this door are ignored this long.
    pub cooldown: Duration,
    /// An SPA door (then `sequence` is empty): its keys, UDP port and time window.
    pub spa: Option<SpaSettings>,
}

/// What makes a door an SPA door (see `knock::spa`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpaSettings {
    pub key_files: Vec<PathBuf>,
    /// One key, or two during a rotation (packets sealed with either open).
    pub keys: Vec<crate::knock::spa::FleetKey>,
    pub port: u16,
    pub window: Duration,
}

impl Door {
    pub fn tracker_sequence(&self) -> DoorSequence {
        DoorSequence {
            sequence: self.sequence.clone(),
            timeout: self.seq_timeout,
            tcp_flags: self.tcp_flags,
        }
    }
}

/// The sources that may open a door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    /// `allow = ["any"]`, written explicitly.
    Any,
    Nets(Vec<IpNet>),
}

impl Allow {
    pub fn permits(&self, ip: IpAddr) -> bool {
        match self {
            Allow::Any => true,
            Allow::Nets(nets) => nets.iter().any(|n| n.contains(&ip)),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Playbook(PlaybookAction),
    /// A knockd-style shell command; `%IP%` is replaced by the knocking address.
    Command(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlaybookAction {
    /// Absolute (relative paths in knock.toml are resolved against its directory).
    pub playbook: PathBuf,
    pub inventory_vars: Vars,
    pub groups: Vec<String>,
    pub user: String,
    pub private_key: Option<PathBuf>,
    pub port: u16,
    pub become_: bool,
}

/// One problem in knock.toml, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", render(.path, .problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The problems found (empty for read errors).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            ConfigError::Read { .. } => &[],
        }
    }
}

fn render(path: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}:{}:{}: {}", path.display(), p.line, p.col, p.message))
        .collect();
    lines.join("\n")
}

/// Reads and validates knock.toml against this machine.
pub fn load(path: &Path) -> Result<ListenConfig, ConfigError> {
    load_with(path, &SystemInfo::probe())
}

/// Reads and validates knock.toml against the given system view.
pub fn load_with(path: &Path, system: &SystemInfo) -> Result<ListenConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path, system)
}

/// Parses and validates knock.toml text; `path` names it in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path, system: &SystemInfo) -> Result<ListenConfig, ConfigError> {
    validate::parse(text, path, system).map_err(|problems| ConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    })
}

impl ListenConfig {
    /// A human summary for `knockplay check-config`: interfaces, limits and every door.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{}: OK\n  interfaces: {}\n  runs: at most {} at once, {} queued; ssh_wait {}s; host keys {}\n  logs: {}\n  history: {}\n",
            self.source.display(),
            self.listener.interfaces.join(", "),
            self.runner.max_concurrent_runs,
            self.runner.queue_limit,
            self.runner.ssh_wait.as_secs(),
            self.runner.host_key_checking.as_str(),
            self.runner.log_dir.display(),
            self.history.url,
        );
        if let Some(a) = self.listener.metrics {
            out.push_str(&format!(
                "  metrics: http://{a}/metrics, health http://{a}/healthz\n"
            ));
        }
        for d in &self.doors {
            let allow = match &d.allow {
                Allow::Any => "anyone".to_string(),
                Allow::Nets(n) => n
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let action = match &d.action {
                Action::Playbook(p) => format!("playbook {} as {}", p.playbook.display(), p.user),
                Action::Command(c) => format!("command {c}"),
            };
            let timing = match &d.spa {
                Some(spa) => format!(
                    "packets within {}s of now, {} key(s), host keys pinned",
                    spa.window.as_secs(),
                    spa.keys.len()
                ),
                None => format!("within {}s", d.seq_timeout.as_secs_f64()),
            };
            out.push_str(&format!(
                "  door {d}: {timing}, from {allow}; runs {action}; cooldown {}s\n",
                d.cooldown.as_secs()
            ));
        }
        out
    }
}

impl fmt::Display for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(spa) = &self.spa {
            return write!(f, "{} [SPA {}/udp]", self.name, spa.port);
        }
        let seq: Vec<String> = self.sequence.iter().map(|p| p.to_string()).collect();
        write!(f, "{} [{}]", self.name, seq.join(" "))
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
