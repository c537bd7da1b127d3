//! Command line: clap definitions → validated options → library calls → exit code.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::ansible_cfg;
use crate::inventory::Inventory;
use crate::playbook::model::{Action, Playbook, Task};
use crate::playbook::parse::RoleSearch;
use crate::runner::{self, exit, ReportOptions, RunOptions, SshConnector};
use crate::ssh::known_hosts::HostKeyPolicy;
use crate::value::{Value, Vars};

/// `println!` for command output: when the reader went away (`knockplay history | head`), stop quietly
/// the way other Unix tools do, instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            stdout_gone(e)
        }
    }};
}

/// Exit status after standard output was closed under us: 141 (128 + SIGPIPE), as a shell reports a
/// tool killed by SIGPIPE.
const STDOUT_CLOSED: i32 = 141;

fn stdout_gone(e: std::io::Error) -> ! {
    if e.kind() != std::io::ErrorKind::BrokenPipe {
        eprintln!("ERROR! cannot write to standard output: {e}");
    }
    std::process::exit(STDOUT_CLOSED)
}

const EXIT_CODES: &str = "\
Exit codes (as ansible-playbook):
  0   every host ok
  2   one or more hosts failed
  4   a host was unreachable, or the playbook/inventory could not be parsed
  5   bad command-line options
  99  interrupted";

#[derive(Parser, Debug)]
#[command(
    name = "knockplay",
    version,
    about = "Machines knock, knockplay configures them: Ansible-style playbooks over SSH, triggered by port knocks.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a playbook against inventory hosts (like ansible-playbook).
    #[command(after_help = EXIT_CODES)]
    Run(Box<RunArgs>),
    /// Capture knocks and configure the hosts that knock (see knock.toml).
    Listen(ListenArgs),
    /// Validate a knock.toml and exit.
    CheckConfig(CheckConfigArgs),
    /// Send a knock sequence (same packets as knockd's `knock`), or an SPA packet (--spa).
    Knock(KnockArgs),
    /// Write a new fleet key for SPA doors (32 random bytes, base64, mode 0600).
    Keygen(KeygenArgs),
    /// Show the knock and run history recorded by the listener.
    History(HistoryArgs),
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Playbook file.
    pub playbook: PathBuf,
    /// Inventory: a file (INI or YAML) or a comma-separated host list ('10.0.0.5,'). Repeatable.
    #[arg(short = 'i', long = "inventory")]
    pub inventory: Vec<String>,
    /// Limit to hosts matching this pattern.
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Only run tasks with these tags (comma-separated, repeatable).
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Extra variables: k=v pairs, JSON/YAML text, or @file.yml. Highest precedence.
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// Check mode: report what would change, change nothing.
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show diffs of changed files.
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// How many hosts work at once [default: ansible.cfg's forks, else 50].
    #[arg(short = 'f', long)]
    pub forks: Option<usize>,
    /// Login user when the inventory does not say.
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// Private key file when the inventory does not say.
    #[arg(long = "private-key", alias = "key-file")]
    pub private_key: Option<PathBuf>,
    /// Become (sudo) by default.
    #[arg(short = 'b', long = "become")]
    pub become_: bool,
    #[arg(long = "become-user")]
    pub become_user: Option<String>,
    #[arg(long = "become-method")]
    pub become_method: Option<String>,
    /// Vault password file, or an executable that prints the password. Repeatable.
    #[arg(long = "vault-password-file", alias = "vault-pass-file")]
    pub vault_password_file: Vec<PathBuf>,
    /// Ask for the vault password on the terminal.
    #[arg(short = 'J', long = "ask-vault-pass", alias = "ask-vault-password")]
    pub ask_vault_pass: bool,
    /// Vault identity `label@source` (source: a password file, an executable, or `prompt`).
    /// Repeatable.
    #[arg(long = "vault-id")]
    pub vault_id: Vec<String>,
    /// Parse the playbook and exit.
    #[arg(long)]
    pub syntax_check: bool,
    /// List the hosts each play would run on, and exit.
    #[arg(long)]
    pub list_hosts: bool,
    /// List the tasks of each play, and exit.
    #[arg(long)]
    pub list_tasks: bool,
    /// More output (-v results, -vv, -vvv debug logs).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print a machine-readable JSON report on stdout instead of the usual output.
    #[arg(long)]
    pub json: bool,
    /// No live status line under the output (it is shown only when stdout is a terminal).
    #[arg(long = "no-progress")]
    pub no_progress: bool,
    /// Write one log file per host into this directory.
    #[arg(long = "log-dir")]
    pub log_dir: Option<PathBuf>,
    #[command(flatten)]
    pub ssh: SshArgs,
}

#[derive(Args, Debug, Clone)]
pub struct SshArgs {
    /// Host key checking against knockplay's known_hosts: strict, accept-new or off
    /// [default: accept-new; off when ansible.cfg says host_key_checking = False, with a warning].
    #[arg(long = "host-key-checking")]
    pub host_key_checking: Option<String>,
    /// knockplay's known_hosts file.
    #[arg(long = "known-hosts", env = "KNOCKPLAY_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,
    /// Keep retrying to connect for up to SECS while a host's sshd comes up.
    #[arg(long = "wait-for-ssh", value_name = "SECS", value_parser = seconds_flag())]
    pub wait_for_ssh: Option<u64>,
    /// TCP connect timeout in seconds [default: ansible.cfg's timeout, else 10].
    #[arg(long = "timeout", value_parser = seconds_flag())]
    pub timeout: Option<u64>,
    /// Use private key files that group or others can read (refused by default, as OpenSSH does).
    #[arg(long = "allow-loose-key-permissions")]
    pub allow_loose_key_permissions: bool,
}

/// A flag in seconds: at most [`crate::value::MAX_SECONDS`] (a deadline further out cannot be
/// represented; asking for one is refused as a bad option instead of crashing the run).
fn seconds_flag() -> clap::builder::RangedU64ValueParser {
    clap::value_parser!(u64).range(..=crate::value::MAX_SECONDS)
}

#[derive(Args, Debug)]
pub struct ListenArgs {
    /// Listener configuration.
    #[arg(short = 'c', long = "config", default_value = "knock.toml")]
    pub config: PathBuf,
}

#[derive(Args, Debug)]
pub struct CheckConfigArgs {
    pub config: PathBuf,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// The key file to create (never overwritten).
    pub file: PathBuf,
}

#[derive(Args, Debug)]
pub struct KnockArgs {
    /// Host to knock on.
    pub host: String,
    /// Ports: 9000, 9000/tcp, 53/udp (sequence doors).
    #[arg(required_unless_present = "spa", conflicts_with = "spa")]
    pub ports: Vec<String>,
    /// Send one Single Packet Authorization packet instead of a port sequence.
    #[arg(long)]
    pub spa: bool,
    /// The fleet key file (SPA).
    #[arg(long, requires = "spa", required_if_eq("spa", "true"))]
    pub key: Option<PathBuf>,
    /// The SPA door's name in the listener's knock.toml.
    #[arg(long, requires = "spa", default_value = "boot")]
    pub door: String,
    /// The SPA door's UDP port.
    #[arg(long, requires = "spa", default_value_t = crate::knock::spa::DEFAULT_PORT)]
    pub port: u16,
    /// The address the controller should connect to (behind NAT; used when inside the door's allow).
    #[arg(long, requires = "spa")]
    pub reach: Option<std::net::IpAddr>,
    /// A public host key file to pin (repeatable; default: /etc/ssh/ssh_host_*_key.pub).
    #[arg(long = "host-key", requires = "spa")]
    pub host_keys: Vec<PathBuf>,
    /// Host name or instance id for the listener's history (default: this machine's host name).
    #[arg(long, requires = "spa")]
    pub name: Option<String>,
    /// Delay between knocks in milliseconds.
    #[arg(short = 'd', long = "delay", default_value_t = 0)]
    pub delay: u64,
    /// Re-knock with backoff until /var/lib/knockplay/configured appears (exit 1 after TIMEOUT secs).
    #[arg(long = "until-configured", value_name = "TIMEOUT")]
    pub until_configured: Option<u64>,
    /// Marker file to wait for with --until-configured.
    #[arg(long = "marker", default_value = "/var/lib/knockplay/configured")]
    pub marker: PathBuf,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Listener configuration (for its state_dir).
    #[arg(short = 'c', long = "config", default_value = "knock.toml")]
    pub config: PathBuf,
    /// The listener's state directory (instead of reading it from the config).
    #[arg(long = "state-dir", conflicts_with = "url")]
    pub state_dir: Option<PathBuf>,
    /// The history database: sqlite:///path or postgres://user@host:port/db (password from
    /// PGPASSWORD or the pgpass file), instead of the config's [history] url.
    #[arg(long)]
    pub url: Option<String>,
    /// Only this source address.
    #[arg(long)]
    pub host: Option<String>,
    /// Only the last DURATION (e.g. 10m, 2h, 1d).
    #[arg(long)]
    pub since: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// Parse `-e` values into one map (later wins).
pub fn parse_extra_vars(items: &[String]) -> Result<Vars, String> {
    let mut out = Vars::new();
    for item in items {
        let item = item.trim();
        if let Some(path) = item.strip_prefix('@') {
            let vars = crate::playbook::parse::load_vars_file(std::path::Path::new(path))
                .map_err(|e| format!("-e @{path}: {e}"))?;
            out.extend(vars);
        } else if item.starts_with('{') {
            let v: Value = serde_json::from_str(item)
                .or_else(|_| serde_yaml::from_str(item))
                .map_err(|e| format!("-e {item}: not valid JSON/YAML: {e}"))?;
            match v {
                Value::Object(o) => out.extend(o),
                _ => return Err(format!("-e {item}: must be a mapping")),
            }
        } else {
            let kv =
                crate::playbook::args::parse_kv(item).map_err(|e| format!("-e {item}: {e}"))?;
            if kv.is_empty() {
                return Err(format!("-e {item}: expected key=value, JSON, or @file"));
            }
            out.extend(kv);
        }
    }
    Ok(out)
}

/// The default known_hosts path: `$XDG_STATE_HOME/knockplay/known_hosts` or `~/.local/state/...`.
pub fn default_known_hosts() -> PathBuf {
    if let Some(s) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(s).join("knockplay/known_hosts");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".local/state/knockplay/known_hosts")
}

pub fn connector(ssh: &SshArgs) -> Result<SshConnector, String> {
    let policy: HostKeyPolicy = ssh
        .host_key_checking
        .as_deref()
        .unwrap_or("accept-new")
        .parse()
        .map_err(|e| format!("--host-key-checking: {e}"))?;
    Ok(SshConnector {
        known_hosts: ssh
            .known_hosts
            .clone()
            .unwrap_or_else(crate::ssh::known_hosts::default_path),
        policy,
        connect_timeout: Duration::from_secs(ssh.timeout.unwrap_or(10).max(1)),
        wait_for_ssh: ssh.wait_for_ssh.map(Duration::from_secs),
        command_timeout: None,
        use_agent: true,
        allow_loose_key_permissions: ssh.allow_loose_key_permissions,
        pinned_host_keys: None,
    })
}

/// Load `-i` sources into one inventory.
pub fn load_inventory(sources: &[String]) -> Result<Inventory, String> {
    Inventory::from_sources(sources).map_err(|e| e.to_string())
}

/// Print `ERROR! …` for a step that failed and give the exit code it maps to.
fn fail<T, E: std::fmt::Display>(result: Result<T, E>, code: i32) -> Result<T, i32> {
    result.map_err(|e| {
        eprintln!("ERROR! {e}");
        code
    })
}

/// `knockplay run`.
pub fn run(args: RunArgs, cancel: Arc<AtomicBool>) -> i32 {
    exit_code(try_run(args, cancel))
}

/// ansible.cfg (found as Ansible finds it) and `ANSIBLE_*` fill what the command line left unset.
/// Returns where roles are searched.
fn apply_ansible_cfg(args: &mut RunArgs) -> Result<RoleSearch, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("working directory: {e}"))?;
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cfg = ansible_cfg::load(&|k| std::env::var(k).ok(), &cwd, home.as_deref())
        .map_err(|e| e.to_string())?;
    if args.verbose > 0 {
        let said = match &cfg.path {
            Some(p) => format!("Using {} as config file", p.display()),
            None => "No config file found; using defaults".to_string(),
        };
        // With --json, stdout is the report alone.
        if args.json {
            eprintln!("{said}");
        } else {
            outln!("{said}");
        }
    }
    if args.inventory.is_empty() {
        args.inventory = cfg.inventory.clone();
    }
    args.user = args.user.take().or_else(|| cfg.remote_user.clone());
    args.private_key = args
        .private_key
        .take()
        .or_else(|| cfg.private_key_file.clone());
    args.forks = args.forks.or(cfg.forks);
    args.become_ = args.become_ || cfg.become_ == Some(true);
    args.become_user = args.become_user.take().or_else(|| cfg.become_user.clone());
    args.become_method = args
        .become_method
        .take()
        .or_else(|| cfg.become_method.clone());
    args.ssh.timeout = args.ssh.timeout.or(cfg.timeout);
    if args.ssh.host_key_checking.is_none() && cfg.host_key_checking == Some(false) {
        let from = cfg
            .path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "ANSIBLE_HOST_KEY_CHECKING".into());
        eprintln!(
            "[WARNING]: {from} turns host key checking off: SSH host keys are not checked \
             (--host-key-checking accept-new or strict to check them)"
        );
        args.ssh.host_key_checking = Some("off".into());
    }
    vault_secrets(args, &cfg)?;
    let mut search = cfg.role_search(home.as_deref());
    search.extra_vars = parse_extra_vars(&args.extra_vars)?;
    Ok(search)
}

/// The vault passwords of this run: `--vault-id`s, `--vault-password-file`s, the prompt, else
/// ansible.cfg's `vault_password_file` / `ANSIBLE_VAULT_PASSWORD_FILE`.
fn vault_secrets(args: &RunArgs, cfg: &ansible_cfg::AnsibleCfg) -> Result<(), String> {
    use crate::vault::source;
    let mut secrets = Vec::new();
    for id in &args.vault_id {
        secrets.push(source::from_vault_id(id)?);
    }
    for f in &args.vault_password_file {
        secrets.push(source::read("default", &f.to_string_lossy())?);
    }
    if args.ask_vault_pass {
        secrets.push(source::read("default", "prompt")?);
    }
    if secrets.is_empty() {
        if let Some(f) = &cfg.vault_password_file {
            secrets.push(source::read("default", &f.to_string_lossy())?);
        }
    }
    crate::vault::set_secrets(secrets);
    Ok(())
}

fn try_run(mut args: RunArgs, cancel: Arc<AtomicBool>) -> Result<i32, i32> {
    let search = fail(apply_ansible_cfg(&mut args), exit::BAD_OPTIONS)?;
    let extra = fail(parse_extra_vars(&args.extra_vars), exit::BAD_OPTIONS)?;
    let connector = fail(connector(&args.ssh), exit::BAD_OPTIONS)?;
    if !args.playbook.exists() {
        eprintln!(
            "ERROR! the playbook: {} could not be found",
            args.playbook.display()
        );
        return Err(exit::UNREACHABLE_OR_PARSE);
    }
    let pb = fail(
        crate::playbook::parse::load_playbook_with(&args.playbook, &search),
        exit::UNREACHABLE_OR_PARSE,
    )?;
    for w in crate::playbook::ansible_names::unsupported_tasks(&pb) {
        eprintln!("[WARNING]: {w}; the task fails if it runs");
    }
    let pb_dir = (args.playbook.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    for w in crate::playbook::ansible_names::python_plugins(pb_dir) {
        eprintln!("[WARNING]: {w}");
    }
    if args.syntax_check {
        outln!("\nplaybook: {}", args.playbook.display());
        return Ok(exit::OK);
    }
    let inventory = fail(load_inventory(&args.inventory), exit::UNREACHABLE_OR_PARSE)?;
    if args.list_hosts || args.list_tasks {
        return list(&pb, &inventory, &args);
    }
    let mut report = ReportOptions::for_terminal(args.verbose, args.diff);
    report.human = !args.json;
    report.progress &= !args.no_progress;
    report.log_dir = args.log_dir.clone();
    let opts = RunOptions {
        playbook: args.playbook.clone(),
        inventory,
        limit: args.limit.clone(),
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        extra_vars: extra,
        check: args.check,
        diff: args.diff,
        forks: args.forks.unwrap_or(50).max(1),
        remote_user: args.user.clone(),
        private_key: args.private_key.clone(),
        become_: args.become_,
        become_user: args.become_user.clone(),
        become_method: args.become_method.clone(),
        connector: Arc::new(connector),
        report,
        cancel,
        finish_command: None,
        task_timeout: None,
    };
    Ok(runner::play::run(&pb, opts).exit_code)
}

/// `--list-hosts` / `--list-tasks`: each play's hosts and task names, as ansible-playbook shows them.
fn list(pb: &Playbook, inv: &Inventory, args: &RunArgs) -> Result<i32, i32> {
    outln!("\nplaybook: {}", args.playbook.display());
    for (i, play) in pb.plays.iter().enumerate() {
        outln!(
            "\n  play #{} ({}): {}\tTAGS: [{}]",
            i + 1,
            play.hosts,
            play.name,
            play.tags.join(", ")
        );
        if args.list_hosts {
            let mut hosts = fail(inv.hosts_matching(&play.hosts), exit::UNREACHABLE_OR_PARSE)?;
            if let Some(l) = &args.limit {
                let lim = inv.hosts_matching(l).unwrap_or_default();
                hosts.retain(|h| lim.contains(h));
            }
            outln!("    pattern: ['{}']", play.hosts);
            outln!("    hosts ({}):", hosts.len());
            for h in hosts {
                outln!("      {h}");
            }
        }
        if args.list_tasks {
            outln!("    tasks:");
            for tasks in [&play.pre_tasks, &play.tasks, &play.post_tasks] {
                list_tasks(tasks, &play.tags, args);
            }
        }
    }
    Ok(exit::OK)
}

/// The tasks `--tags`/`--skip-tags` select, with their effective tags (inherited from the
/// play, blocks and role entries, as Ansible shows them); blocks are walked, not listed.
fn list_tasks(tasks: &[Task], inherited: &[String], args: &RunArgs) {
    for t in tasks {
        let mut tags: Vec<String> = inherited.to_vec();
        for tag in &t.tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        match &t.action {
            Action::Block {
                block,
                rescue,
                always,
            } => {
                for part in [block, rescue, always] {
                    list_tasks(part, &tags, args);
                }
            }
            _ if !runner::walk::tags_selected(&args.tags, &args.skip_tags, &tags) => {}
            action => {
                let mut shown = tags.clone();
                shown.sort();
                // An unnamed task is listed by its module alone, also in a role (as Ansible does).
                let label = match (&t.name, action) {
                    (None, Action::Module { name, .. }) => name.clone(),
                    _ => t.display_name(),
                };
                outln!("      {label}\tTAGS: [{}]", shown.join(", "));
            }
        }
    }
}

/// Parse arguments; clap errors become exit code 5 (help/version exit 0).
pub fn parse() -> Result<Cli, i32> {
    match Cli::try_parse() {
        Ok(c) => Ok(c),
        Err(e) => {
            let code = match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::OK
                }
                _ => exit::BAD_OPTIONS,
            };
            let _ = e.print();
            Err(code)
        }
    }
}

/// Run a parsed command; returns the process exit code.
pub fn dispatch(cli: Cli, cancel: Arc<AtomicBool>) -> i32 {
    match cli.command {
        Command::Run(a) => run(*a, cancel),
        Command::Listen(a) => listen(&a, cancel),
        Command::CheckConfig(a) => check_config(&a),
        Command::Knock(a) => knock(&a),
        Command::Keygen(a) => keygen(&a),
        Command::History(a) => history(&a),
    }
}

/// The exit code of a command that stopped early (`Err`) or ran to its end (`Ok`).
fn exit_code(result: Result<i32, i32>) -> i32 {
    match result {
        Ok(code) | Err(code) => code,
    }
}

/// `knockplay check-config`.
fn check_config(a: &CheckConfigArgs) -> i32 {
    exit_code(
        fail(crate::config::load(&a.config), exit::UNREACHABLE_OR_PARSE).map(|cfg| {
            outln!("{}", cfg.describe());
            exit::OK
        }),
    )
}

/// `knockplay listen`: capture knocks and run door playbooks in-process until SIGTERM/SIGINT.
pub fn listen(a: &ListenArgs, cancel: Arc<AtomicBool>) -> i32 {
    exit_code(try_listen(a, cancel))
}

fn try_listen(a: &ListenArgs, cancel: Arc<AtomicBool>) -> Result<i32, i32> {
    let cfg = fail(crate::config::load(&a.config), exit::UNREACHABLE_OR_PARSE)?;
    let control = crate::knock::Control::new();
    fail(
        control
            .install_signal_handlers()
            .map_err(|e| format!("cannot install signal handlers: {e}")),
        1,
    )?;
    let launcher = Arc::new(crate::runner::knocked::RunnerLauncher {
        known_hosts: cfg.runner.state_dir.join("known_hosts"),
        cancel,
    });
    let summary = fail(crate::knock::listen(cfg, launcher, control), 1)?;
    let s = &summary.stats;
    eprintln!(
        "knockplay listen stopped: {} run(s) finished during shutdown, {} recorded as interrupted\n  \
         packets {} (malformed {}, lost in the kernel {}); knocks completed {}, failed {}, \
         attempts evicted at max_attempts {}; accepted {}, coalesced {}, not allowed {}, \
         cooldown {}, queue full {}; runs ok {}, failed {}, interrupted {}; at most {} at once\n  \
         not on record: knocks from implausible sources {}, later ports of refused knocks {}, \
         history rows skipped by the rate limit {} (summarized), dropped with the writer queue full {} \
         (summarized), refused by the database {}",
        summary.shutdown.finished,
        summary.shutdown.interrupted,
        s.packets,
        s.malformed,
        s.kernel_drops,
        s.tracker.detected,
        s.tracker.failed,
        s.tracker.evicted,
        s.trigger.accepted,
        s.trigger.coalesced,
        s.trigger.not_allowed,
        s.trigger.cooldown,
        s.trigger.queue_full,
        s.trigger.runs_ok,
        s.trigger.runs_failed,
        s.trigger.runs_interrupted,
        s.trigger.peak_running,
        s.implausible,
        s.not_allowed_later_ports,
        s.trigger.history_suppressed,
        s.trigger.history_dropped,
        s.trigger.history_errors,
    );
    Ok(exit::OK)
}

/// `knockplay knock HOST PORT...`.
pub fn knock(a: &KnockArgs) -> i32 {
    exit_code(try_knock(a))
}

/// `knockplay keygen FILE`.
pub fn keygen(a: &KeygenArgs) -> i32 {
    match crate::knock::spa::write_new_key_file(&a.file) {
        Ok(_) => {
            eprintln!("wrote a new fleet key to {} (mode 0600)", a.file.display());
            exit::OK
        }
        Err(e) => {
            eprintln!("knockplay: {e}");
            exit::BAD_OPTIONS
        }
    }
}

fn try_knock(a: &KnockArgs) -> Result<i32, i32> {
    if a.spa {
        return try_knock_spa(a);
    }
    let mut ports = Vec::new();
    for p in &a.ports {
        let spec = p
            .parse::<crate::knock::PortSpec>()
            .map_err(|e| format!("port '{p}': {e}"));
        ports.push(fail(spec, exit::BAD_OPTIONS)?);
    }
    let delay = Duration::from_millis(a.delay);
    let Some(secs) = a.until_configured else {
        let sent = crate::knock::client::send_knocks(&a.host, &ports, delay)
            .map_err(|e| format!("knock {}: {e}", a.host));
        fail(sent, 1)?;
        return Ok(exit::OK);
    };
    let mut opts = crate::knock::client::UntilConfigured::new(Duration::from_secs(secs));
    opts.marker = a.marker.clone();
    let n = fail(
        crate::knock::client::knock_until_configured(&a.host, &ports, delay, &opts),
        1,
    )?;
    eprintln!("configured ({} after {n} knock(s))", opts.marker.display());
    Ok(exit::OK)
}

/// `knockplay knock HOST --spa --key FILE ...`: one packet, or packets until configured.
fn try_knock_spa(a: &KnockArgs) -> Result<i32, i32> {
    use crate::knock::client::{default_host_key_files, send_spa, until_configured, SpaRequest};
    let key_file = a.key.clone().unwrap_or_default();
    let key = fail(
        crate::knock::spa::read_key_file(&key_file),
        exit::BAD_OPTIONS,
    )?;
    let host_key_files = if a.host_keys.is_empty() {
        default_host_key_files()
    } else {
        a.host_keys.clone()
    };
    if host_key_files.is_empty() {
        fail::<(), &str>(
            Err(
                "no host keys to pin: /etc/ssh/ssh_host_*_key.pub not found (give --host-key FILE)",
            ),
            exit::BAD_OPTIONS,
        )?;
    }
    let name = a.name.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default()
    });
    let req = SpaRequest {
        key,
        door: a.door.clone(),
        reach: a.reach,
        host_key_files,
        name,
    };
    // Built once up front so a bad key file or host key is an error, not a retry loop.
    fail(req.packet(), exit::BAD_OPTIONS)?;
    let send = || -> std::io::Result<()> {
        let packet = req.packet().map_err(std::io::Error::other)?;
        send_spa(&a.host, a.port, &packet)
    };
    let Some(secs) = a.until_configured else {
        fail(send().map_err(|e| format!("knock {}: {e}", a.host)), 1)?;
        return Ok(exit::OK);
    };
    let mut opts = crate::knock::client::UntilConfigured::new(Duration::from_secs(secs));
    opts.marker = a.marker.clone();
    let n = fail(until_configured(&a.host, &opts, send), 1)?;
    eprintln!(
        "configured ({} after {n} SPA packet(s))",
        opts.marker.display()
    );
    Ok(exit::OK)
}

/// `knockplay history`.
pub fn history(a: &HistoryArgs) -> i32 {
    exit_code(try_history(a))
}

fn try_history(a: &HistoryArgs) -> Result<i32, i32> {
    let url = match (&a.url, &a.state_dir) {
        (Some(u), _) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            let url = crate::history::HistoryUrl::parse(u, &cwd).map_err(|e| format!("--url: {e}"));
            fail(url, exit::BAD_OPTIONS)?
        }
        (None, Some(d)) => crate::history::HistoryUrl::default_for(d),
        (None, None) => {
            let loaded = crate::config::load(&a.config)
                .map_err(|e| format!("{e} (or pass --state-dir or --url)"));
            fail(loaded, exit::UNREACHABLE_OR_PARSE)?.history.url
        }
    };
    let host = match &a.host {
        Some(h) => {
            let ip = h
                .parse()
                .map_err(|_| format!("--host {h}: not an IP address"));
            Some(fail(ip, exit::BAD_OPTIONS)?)
        }
        None => None,
    };
    let since = match &a.since {
        Some(s) => {
            let d = crate::history::parse_since(s).map_err(|e| format!("--since {s}: {e}"));
            Some(fail(d, exit::BAD_OPTIONS)?)
        }
        None => None,
    };
    let q = crate::history::Query { host, since };
    let mut out = std::io::stdout();
    match crate::history::print(&url, &q, a.json, &mut out) {
        Err(crate::history::HistoryError::Output(e)) => stdout_gone(e),
        printed => fail(printed, 1).map(|()| exit::OK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extra_vars_forms() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("x.yml");
        std::fs::write(&f, "from_file: 1\nshared: file\n").unwrap();
        let v = parse_extra_vars(&[
            "a=1 b='two words'".into(),
            r#"{"c": [1, 2], "shared": "json"}"#.into(),
            format!("@{}", f.display()),
        ])
        .unwrap();
        assert_eq!(v["a"], json!("1"));
        assert_eq!(v["b"], json!("two words"));
        assert_eq!(v["c"], json!([1, 2]));
        assert_eq!(v["from_file"], json!(1));
        assert_eq!(v["shared"], json!("file"));
        assert!(parse_extra_vars(&["@/nonexistent.yml".into()]).is_err());
    }

    #[test]
    fn second_flags_are_bounded() {
        let parse = |flag: &str, v: &str| {
            Cli::try_parse_from(["knockplay", "run", "site.yml", flag, v]).map(|c| {
                match c.command {
                    Command::Run(a) => (a.ssh.wait_for_ssh, a.ssh.timeout),
                    _ => unreachable!("parsed as run"),
                }
            })
        };
        let max = crate::value::MAX_SECONDS.to_string();
        assert_eq!(parse("--wait-for-ssh", "30").ok(), Some((Some(30), None)));
        assert_eq!(
            parse("--wait-for-ssh", &max).ok(),
            Some((Some(crate::value::MAX_SECONDS), None))
        );
        assert_eq!(parse("--timeout", "3").ok(), Some((None, Some(3))));
        for (flag, v) in [
            ("--wait-for-ssh", "18446744073709551615"),
            ("--wait-for-ssh", "31622401"),
            ("--timeout", "18446744073709551615"),
        ] {
            let e = parse(flag, v).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{flag} {v}"
            );
            assert!(e.to_string().contains(flag), "{flag} {v}: {e}");
        }
    }
}
