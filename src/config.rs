//! knock.toml: the listener configuration model (unknown keys rejected) and its validation.
//!
//! `load` parses and validates everything `knockplay listen` needs, collecting every problem
//! with its `file:line:col` so `knockplay check-config` can print them all at once.

mod raw;

use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use crate::knock::flags::TcpFlagRule;
use crate::knock::port::{PortSpec, Proto};
use crate::knock::sequence::{DoorSequence, SequenceTracker};
use crate::knock::wire::{tcp_flags, Knock};
use crate::value::{Value, Vars};
use raw::{PortItem, RawConfig, RawDoor, Seconds};

/// The validated listener configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenConfig {
    /// The file it was read from (reloads read it again).
    pub source: PathBuf,
    pub listener: ListenerSettings,
    pub runner: RunnerSettings,
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

/// What the machine offers: network interfaces and the default-route interface.
#[derive(Debug, Clone, Default)]
pub struct SystemInfo {
    pub interfaces: Vec<String>,
    pub default_interfaces: Vec<String>,
}

impl SystemInfo {
    /// Reads the interfaces (pnet) and the default route (/proc/net/route, /proc/net/ipv6_route).
    pub fn probe() -> Self {
        let interfaces = pnet::datalink::interfaces()
            .into_iter()
            .map(|i| i.name)
            .collect();
        let mut default_interfaces = Vec::new();
        if let Ok(routes) = std::fs::read_to_string("/proc/net/route") {
            for line in routes.lines().skip(1) {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() > 7
                    && f[1] == "00000000"
                    && f[7] == "00000000"
                    && !default_interfaces.contains(&f[0].to_string())
                {
                    default_interfaces.push(f[0].to_string());
                }
            }
        }
        if default_interfaces.is_empty() {
            if let Ok(routes) = std::fs::read_to_string("/proc/net/ipv6_route") {
                for line in routes.lines() {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    if f.len() == 10
                        && f[0].chars().all(|c| c == '0')
                        && f[1] == "00"
                        && f[9] != "lo"
                    {
                        default_interfaces.push(f[9].to_string());
                        break;
                    }
                }
            }
        }
        SystemInfo {
            interfaces,
            default_interfaces,
        }
    }
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
    let invalid = |problems| ConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        invalid(vec![Problem {
            line,
            col,
            message: e.message().trim().to_string(),
        }])
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut v = Validator {
        text,
        problems: Vec::new(),
        base,
    };
    let config = v.config(raw, path, system);
    if v.problems.is_empty() {
        Ok(config)
    } else {
        v.problems.sort_by_key(|p| (p.line, p.col));
        Err(invalid(v.problems))
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

struct Validator<'a> {
    text: &'a str,
    problems: Vec<Problem>,
    base: PathBuf,
}

const DEFAULT_RECEIVE_BUFFER: usize = 8 << 20;

impl Validator<'_> {
    fn problem<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        let (line, col) = line_col(self.text, at.span().start);
        self.problems.push(Problem {
            line,
            col,
            message: message.into(),
        });
    }

    fn int(
        &mut self,
        v: &Option<Spanned<i64>>,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
    ) -> i64 {
        match v {
            None => default,
            Some(s) if range.contains(s.get_ref()) => *s.get_ref(),
            Some(s) => {
                self.problem(
                    s,
                    format!(
                        "{name} = {} out of range ({}-{})",
                        s.get_ref(),
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        }
    }

    fn seconds(
        &mut self,
        v: &Option<Spanned<Seconds>>,
        name: &str,
        max: f64,
        default: f64,
    ) -> Duration {
        let secs = match v {
            None => default,
            Some(s) => {
                let f = s.get_ref().as_f64();
                if f.is_finite() && (0.0..=max).contains(&f) {
                    f
                } else {
                    self.problem(s, format!("{name} = {f} out of range (0-{max} seconds)"));
                    default
                }
            }
        };
        Duration::from_secs_f64(secs)
    }

    fn path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    fn config(&mut self, raw: RawConfig, path: &Path, system: &SystemInfo) -> ListenConfig {
        let listener = self.listener(raw.listener, system);
        let runner = self.runner(raw.runner);
        let mut doors = Vec::new();
        let mut names: HashSet<String> = HashSet::new();
        let mut door_spans = Vec::new();
        for d in raw.door {
            let span = d.span();
            if let Some(door) = self.door(d.into_inner(), &mut names) {
                doors.push(door);
                door_spans.push(span);
            }
        }
        if doors.is_empty() && self.problems.is_empty() {
            self.problems.push(Problem {
                line: 1,
                col: 1,
                message: "no [[door]] defined: the listener would do nothing".into(),
            });
        }
        self.overlaps(&doors, &door_spans);
        ListenConfig {
            source: path.to_path_buf(),
            listener,
            runner,
            doors,
        }
    }

    fn listener(&mut self, raw: Option<raw::RawListener>, system: &SystemInfo) -> ListenerSettings {
        let Some(raw) = raw else {
            return ListenerSettings {
                interfaces: self.default_interfaces(system),
                receive_buffer: DEFAULT_RECEIVE_BUFFER,
                max_attempts: 100_000,
                history_failed_per_second: 20,
            };
        };
        let interfaces = match &raw.interfaces {
            Some(list) if !list.is_empty() => {
                let mut out = Vec::new();
                for i in list {
                    if !system.interfaces.iter().any(|n| n == i.get_ref()) {
                        let known = system.interfaces.join(", ");
                        self.problem(
                            i,
                            format!(
                                "unknown interface '{}' (this machine has: {known})",
                                i.get_ref()
                            ),
                        );
                    } else if !out.contains(i.get_ref()) {
                        out.push(i.get_ref().clone());
                    }
                }
                out
            }
            _ => self.default_interfaces(system),
        };
        let receive_buffer = match &raw.receive_buffer {
            None => DEFAULT_RECEIVE_BUFFER,
            Some(s) => match s.get_ref().bytes() {
                Ok(b) if (64 * 1024..=1 << 30).contains(&b) => b as usize,
                Ok(b) => {
                    self.problem(
                        s,
                        format!("receive_buffer = {b} bytes out of range (64KiB-1GiB)"),
                    );
                    DEFAULT_RECEIVE_BUFFER
                }
                Err(e) => {
                    self.problem(s, format!("receive_buffer: {e}"));
                    DEFAULT_RECEIVE_BUFFER
                }
            },
        };
        ListenerSettings {
            interfaces,
            receive_buffer,
            max_attempts: self.int(&raw.max_attempts, "max_attempts", 1..=10_000_000, 100_000)
                as usize,
            history_failed_per_second: self.int(
                &raw.history_failed_per_second,
                "history_failed_per_second",
                0..=100_000,
                20,
            ) as u32,
        }
    }

    fn default_interfaces(&mut self, system: &SystemInfo) -> Vec<String> {
        if system.default_interfaces.is_empty() {
            self.problems.push(Problem {
                line: 1,
                col: 1,
                message: "no default route to take the interface from: set [listener] interfaces"
                    .into(),
            });
        }
        system.default_interfaces.clone()
    }

    fn runner(&mut self, raw: Option<raw::RawRunner>) -> RunnerSettings {
        let none = raw::RawRunner {
            max_concurrent_runs: None,
            queue_limit: None,
            ssh_wait: None,
            grace_period: None,
            command_timeout: None,
            host_key_checking: None,
            log_dir: None,
            state_dir: None,
        };
        let raw = raw.unwrap_or(none);
        let host_key_checking = match &raw.host_key_checking {
            None => HostKeyChecking::AcceptNew,
            Some(s) => match s.get_ref().as_str() {
                "accept-new" => HostKeyChecking::AcceptNew,
                "strict" | "yes" => HostKeyChecking::Strict,
                "off" | "no" => HostKeyChecking::Off,
                other => {
                    self.problem(
                        s,
                        format!(
                            "host_key_checking = '{other}': expected accept-new, strict or off"
                        ),
                    );
                    HostKeyChecking::AcceptNew
                }
            },
        };
        RunnerSettings {
            max_concurrent_runs: self.int(
                &raw.max_concurrent_runs,
                "max_concurrent_runs",
                1..=1024,
                10,
            ) as usize,
            queue_limit: self.int(&raw.queue_limit, "queue_limit", 0..=1_000_000, 1000) as usize,
            ssh_wait: self.seconds(&raw.ssh_wait, "ssh_wait", 3600.0, 120.0),
            grace_period: self.seconds(&raw.grace_period, "grace_period", 3600.0, 30.0),
            command_timeout: self.seconds(&raw.command_timeout, "command_timeout", 86400.0, 600.0),
            host_key_checking,
            log_dir: raw
                .log_dir
                .map(|p| self.path(p.get_ref()))
                .unwrap_or_else(|| "/var/log/knockplay".into()),
            state_dir: raw
                .state_dir
                .map(|p| self.path(p.get_ref()))
                .unwrap_or_else(|| "/var/lib/knockplay".into()),
        }
    }

    fn door(&mut self, d: RawDoor, names: &mut HashSet<String>) -> Option<Door> {
        let before = self.problems.len();
        let name = d.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.problem(
                &d.name,
                format!("door name '{name}' must be non-empty letters, digits, '-', '_' or '.'"),
            );
        } else if !names.insert(name.clone()) {
            self.problem(&d.name, format!("duplicate door name '{name}'"));
        }

        let mut sequence = Vec::new();
        let items = d.sequence.get_ref();
        if items.is_empty() || items.len() > 32 {
            self.problem(
                &d.sequence,
                format!(
                    "door '{name}': sequence needs 1 to 32 ports, has {}",
                    items.len()
                ),
            );
        }
        for item in items {
            let parsed = match item.get_ref() {
                PortItem::Number(n) => PortSpec::from_number(*n, Proto::Tcp),
                PortItem::Text(t) => t.parse(),
            };
            match parsed {
                Ok(p) => sequence.push(p),
                Err(e) => self.problem(item, format!("door '{name}': {e}")),
            }
        }

        let seq_timeout = self.seconds(&d.seq_timeout, "seq_timeout", 3600.0, 5.0);
        if seq_timeout.is_zero() {
            if let Some(s) = &d.seq_timeout {
                self.problem(s, "seq_timeout must be above 0");
            }
        }
        let tcp_flags = match &d.tcp_flags {
            None => TcpFlagRule::default(),
            Some(s) => s.get_ref().parse().unwrap_or_else(|e| {
                self.problem(s, format!("door '{name}': tcp_flags: {e}"));
                TcpFlagRule::default()
            }),
        };

        let allow = match &d.allow {
            None => {
                self.problem(
                    &d.name,
                    format!("door '{name}' has no allowlist: add allow = [\"10.0.0.0/8\", ...] or, to accept anyone, allow = [\"any\"]"),
                );
                Allow::Nets(Vec::new())
            }
            Some(list) => self.allow(list, &name),
        };

        let action = self.action(&d, &name);
        let cooldown = self.seconds(&d.cooldown, "cooldown", 30.0 * 86400.0, 60.0);

        if self.problems.len() > before {
            return None;
        }
        Some(Door {
            name,
            sequence,
            seq_timeout,
            tcp_flags,
            allow,
            action: action?,
            cooldown,
        })
    }

    fn allow(&mut self, list: &Spanned<Vec<Spanned<String>>>, name: &str) -> Allow {
        if list.get_ref().is_empty() {
            self.problem(list, format!("door '{name}': allow is empty; nobody could open it (use [\"any\"] to allow everyone)"));
            return Allow::Nets(Vec::new());
        }
        let any = list.get_ref().iter().any(|s| s.get_ref() == "any");
        if any {
            if list.get_ref().len() > 1 {
                self.problem(
                    list,
                    format!("door '{name}': \"any\" cannot be combined with other entries"),
                );
            }
            return Allow::Any;
        }
        let mut nets = Vec::new();
        for s in list.get_ref() {
            let t = s.get_ref().trim();
            let net = t
                .parse::<IpNet>()
                .or_else(|_| t.parse::<IpAddr>().map(IpNet::from));
            match net {
                Ok(n) => nets.push(n),
                Err(_) => self.problem(
                    s,
                    format!("door '{name}': '{t}' is not an address or CIDR (like 10.0.0.0/8)"),
                ),
            }
        }
        Allow::Nets(nets)
    }

    fn action(&mut self, d: &RawDoor, name: &str) -> Option<Action> {
        let playbook_only: [(&str, Option<std::ops::Range<usize>>); 6] = [
            (
                "inventory_vars",
                d.inventory_vars.as_ref().map(|s| s.span()),
            ),
            ("groups", d.groups.as_ref().map(|s| s.span())),
            ("user", d.user.as_ref().map(|s| s.span())),
            ("private_key", d.private_key.as_ref().map(|s| s.span())),
            ("port", d.port.as_ref().map(|s| s.span())),
            ("become", d.become_.as_ref().map(|s| s.span())),
        ];
        match (&d.playbook, &d.command) {
            (Some(p), Some(_)) => {
                self.problem(
                    p,
                    format!("door '{name}': set either playbook or command, not both"),
                );
                None
            }
            (None, None) => {
                self.problem(
                    &d.name,
                    format!("door '{name}': needs a playbook (or a knockd-style command)"),
                );
                None
            }
            (None, Some(c)) => {
                for (key, span) in playbook_only {
                    if let Some(span) = span {
                        let (line, col) = line_col(self.text, span.start);
                        self.problems.push(Problem {
                            line,
                            col,
                            message: format!(
                                "door '{name}': {key} only applies to a playbook, not to a command"
                            ),
                        });
                    }
                }
                if c.get_ref().trim().is_empty() {
                    self.problem(c, format!("door '{name}': command is empty"));
                }
                Some(Action::Command(c.get_ref().clone()))
            }
            (Some(p), None) => {
                let playbook = self.path(p.get_ref());
                if !playbook.is_file() {
                    self.problem(
                        p,
                        format!("door '{name}': playbook {} not found", playbook.display()),
                    );
                } else if let Err(e) = crate::playbook::parse::load_playbook(&playbook) {
                    // Found now, not at 3 a.m. when the first host knocks. (Templates are checked
                    // when a run renders them.)
                    self.problem(
                        p,
                        format!("door '{name}': the playbook does not parse: {e}"),
                    );
                }
                let private_key = d.private_key.as_ref().map(|k| {
                    let key = self.path(k.get_ref());
                    if !key.is_file() {
                        self.problem(
                            k,
                            format!("door '{name}': private_key {} not found", key.display()),
                        );
                    }
                    key
                });
                let inventory_vars = match &d.inventory_vars {
                    None => Vars::new(),
                    Some(t) => match serde_json::to_value(t.get_ref()) {
                        Ok(Value::Object(m)) => m,
                        _ => {
                            self.problem(
                                t,
                                format!("door '{name}': inventory_vars must be a table of values"),
                            );
                            Vars::new()
                        }
                    },
                };
                let port = self.int(&d.port, "port", 1..=65535, 22) as u16;
                Some(Action::Playbook(PlaybookAction {
                    playbook,
                    inventory_vars,
                    groups: d
                        .groups
                        .as_ref()
                        .map(|g| g.get_ref().clone())
                        .unwrap_or_default(),
                    user: d
                        .user
                        .as_ref()
                        .map(|u| u.get_ref().clone())
                        .unwrap_or_else(|| "root".into()),
                    private_key,
                    port,
                    become_: d.become_.as_ref().map(|b| *b.get_ref()).unwrap_or(false),
                }))
            }
        }
    }

    /// Two doors overlap when knocking one's exact sequence also opens the other
    /// (identical sequences, prefixes, or a sequence hidden inside another).
    fn overlaps(&mut self, doors: &[Door], spans: &[std::ops::Range<usize>]) {
        for (i, a) in doors.iter().enumerate() {
            for (j, b) in doors.iter().enumerate() {
                if i == j || (j < i && opens(a, b) && opens(b, a)) {
                    continue;
                }
                if opens(a, b) {
                    let (line, col) = line_col(self.text, spans[j].start);
                    self.problems.push(Problem {
                        line,
                        col,
                        message: format!(
                            "door '{}' overlaps door '{}': knocking '{}' ({}) also opens '{}'",
                            b.name,
                            a.name,
                            b.name,
                            b.sequence
                                .iter()
                                .map(|p| p.to_string())
                                .collect::<Vec<_>>()
                                .join(" "),
                            a.name
                        ),
                    });
                }
            }
        }
    }
}

/// Whether knocking `b`'s sequence (as the stock client sends it: SYNs and datagrams) opens `a`.
fn opens(a: &Door, b: &Door) -> bool {
    let mut t = SequenceTracker::new(vec![a.tracker_sequence()], 4);
    let now = std::time::Instant::now();
    let src = IpAddr::from([192, 0, 2, 1]);
    b.sequence.iter().any(|p| {
        let k = Knock {
            source: src,
            destination: src,
            port: p.port,
            proto: p.proto,
            tcp_flags: if p.proto == Proto::Tcp {
                tcp_flags::SYN
            } else {
                0
            },
        };
        t.observe(&k, now).is_some()
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
            crate::history::db_path(&self.runner.state_dir).display(),
        );
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
            out.push_str(&format!(
                "  door {d}: within {}s, from {allow}; runs {action}; cooldown {}s\n",
                d.seq_timeout.as_secs_f64(),
                d.cooldown.as_secs()
            ));
        }
        out
    }
}

impl fmt::Display for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq: Vec<String> = self.sequence.iter().map(|p| p.to_string()).collect();
        write!(f, "{} [{}]", self.name, seq.join(" "))
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
