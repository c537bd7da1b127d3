//! How the runner reaches a host: connection parameters from inventory and flags, and the
//! [`Connector`] that turns them into a live [`Remote`] (real SSH, or a fake in unit tests).

use std::path::PathBuf;
use std::time::Duration;

use crate::ssh::known_hosts::HostKeyPolicy;
use crate::ssh::{ConnectOptions, HostSession, LocalShell, Remote, SshError};
use crate::value::{to_display, Vars, MAX_SECONDS};

/// Where and as whom to connect to one inventory host.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostConn {
    /// Inventory name.
    pub name: String,
    /// Address to connect to (`ansible_host`, else the name).
    pub addr: String,
    pub port: u16,
    pub user: String,
    pub private_key: Option<PathBuf>,
    /// How commands reach the host.
    pub transport: Transport,
    /// The user and port came from the inventory or the command line (else ssh config may set
    /// them).
    pub user_set: bool,
    pub port_set: bool,
    /// `ansible_ssh_common_args` and `ansible_ssh_extra_args`.
    pub ssh_args: Option<String>,
}

/// `ansible_connection` / the `connection` keyword.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Ssh,
    /// The controller itself (`local`).
    Local,
    /// A connection plugin knockplay does not have (`docker`, `winrm`, ...): the host is
    /// unreachable with a message saying so, never reached over SSH instead.
    Unsupported(String),
}

impl Transport {
    pub fn parse(name: &str) -> Transport {
        match name.trim() {
            "ssh"
            | "smart"
            | "paramiko"
            | "paramiko_ssh"
            | "ansible.builtin.ssh"
            | "ansible.builtin.paramiko_ssh" => Transport::Ssh,
            "local" | "ansible.builtin.local" => Transport::Local,
            other => Transport::Unsupported(other.to_string()),
        }
    }

    /// The transport a host's variables ask for. `implicit_local`: the host is Ansible's
    /// implicit localhost (named `localhost` but not in the inventory).
    pub fn of_vars(vars: &Vars, implicit_local: bool) -> Transport {
        match vars.get("ansible_connection").map(to_display) {
            Some(c) if !c.is_empty() => Transport::parse(&c),
            _ if implicit_local => Transport::Local,
            _ => Transport::Ssh,
        }
    }
}

impl HostConn {
    /// Read `ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file` (and the
    /// legacy `ansible_ssh_*` names) from a host's variables; flags fill what is missing.
    pub fn from_vars(
        name: &str,
        vars: &Vars,
        default_user: Option<&str>,
        default_key: Option<&PathBuf>,
    ) -> HostConn {
        let get = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| vars.get(*k).map(to_display))
                .filter(|s| !s.is_empty())
        };
        let port = get(&["ansible_port", "ansible_ssh_port"]).and_then(|p| p.parse().ok());
        let user =
            get(&["ansible_user", "ansible_ssh_user"]).or_else(|| default_user.map(str::to_string));
        let ssh_args: Vec<String> = ["ansible_ssh_common_args", "ansible_ssh_extra_args"]
            .iter()
            .filter_map(|k| get(&[k]))
            .collect();
        HostConn {
            name: name.to_string(),
            addr: get(&["ansible_host", "ansible_ssh_host"]).unwrap_or_else(|| name.to_string()),
            port: port.unwrap_or(22),
            port_set: port.is_some(),
            user_set: user.is_some(),
            ssh_args: (!ssh_args.is_empty()).then(|| ssh_args.join(" ")),
            user: user
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "root".into()),
            private_key: get(&["ansible_ssh_private_key_file", "ansible_private_key_file"])
                .map(PathBuf::from)
                .or_else(|| default_key.cloned()),
            transport: Transport::of_vars(vars, false),
        }
    }
}

/// Opens sessions to hosts.
pub trait Connector: Send + Sync {
    fn connect(&self, host: &HostConn) -> Result<Box<dyn Remote + Send>, SshError>;
}

/// Real SSH with knockplay's own known_hosts.
#[derive(Debug, Clone)]
pub struct SshConnector {
    pub known_hosts: PathBuf,
    pub policy: HostKeyPolicy,
    pub connect_timeout: Duration,
    /// Keep retrying until sshd answers, for hosts that just booted.
    pub wait_for_ssh: Option<Duration>,
    pub command_timeout: Option<Duration>,
    pub use_agent: bool,
    /// Use private keys that group or others can read (`--allow-loose-key-permissions`).
    pub allow_loose_key_permissions: bool,
    /// Host keys an authenticated knock carried: only these are accepted.
    pub pinned_host_keys: Option<Vec<[u8; 32]>>,
}

impl SshConnector {
    /// Refuse waits too long for a deadline to be computed (the SSH layer adds them to `now`):
    /// flags are bounded already, this covers every other way options are built.
    fn check_waits(&self, host: &HostConn) -> Result<(), SshError> {
        let waits = [
            ("connect timeout", Some(self.connect_timeout)),
            ("wait for ssh", self.wait_for_ssh),
            ("command timeout", self.command_timeout),
        ];
        for (what, wait) in waits {
            if wait.is_some_and(|w| w.as_secs() > MAX_SECONDS) {
                return Err(SshError::Session {
                    addr: host.addr.clone(),
                    reason: format!("the {what} is longer than {MAX_SECONDS} seconds"),
                });
            }
        }
        Ok(())
    }
}

impl Connector for SshConnector {
    fn connect(&self, host: &HostConn) -> Result<Box<dyn Remote + Send>, SshError> {
        self.check_waits(host)?;
        match &host.transport {
            Transport::Ssh => {}
            Transport::Local => {
                return Ok(Box::new(LocalShell::new(&host.name, self.command_timeout)));
            }
            Transport::Unsupported(name) => {
                return Err(SshError::Session {
                    addr: host.addr.clone(),
                    reason: format!(
                        "connection '{name}' is not supported by knockplay (ssh and local are)"
                    ),
                })
            }
        }
        let mut o = ConnectOptions::new(host.addr.as_str(), host.user.as_str());
        o.name = host.name.clone();
        o.port = host.port;
        if let Some(k) = &host.private_key {
            o.private_keys = vec![k.clone()];
        }
        let given = super::sshroute::Given {
            addr: &host.addr,
            ssh_args: host.ssh_args.as_deref(),
            user_set: host.user_set,
            port_set: host.port_set,
            key_set: host.private_key.is_some(),
        };
        let routed = super::sshroute::route(given).map_err(|reason| SshError::Session {
            addr: host.addr.clone(),
            reason,
        })?;
        o.use_agent = self.use_agent;
        o.connect_timeout = self.connect_timeout;
        o.wait_for_ssh = self.wait_for_ssh;
        o.known_hosts = self.known_hosts.clone();
        o.host_key_policy = self.policy;
        o.command_timeout = self.command_timeout;
        o.allow_loose_key_permissions = self.allow_loose_key_permissions;
        o.pinned_host_keys = self.pinned_host_keys.clone();
        let o = routed.apply(o);
        let s = HostSession::connect(&o)?;
        Ok(Box::new(s))
    }
}

/// One host's session slot: opened on first use, kept for the whole run (one session per host),
/// dropped when the host becomes unreachable or a task asks for a fresh connection.
pub struct HostLink {
    pub conn: HostConn,
    session: Option<Box<dyn Remote + Send>>,
}

impl HostLink {
    /// A slot with no session yet.
    pub fn new(conn: HostConn) -> HostLink {
        HostLink {
            conn,
            session: None,
        }
    }

    /// The live session, connecting first when there is none.
    pub fn open(
        &mut self,
        connector: &dyn Connector,
    ) -> Result<&mut (dyn Remote + Send), SshError> {
        let session = match self.session.take() {
            Some(s) => s,
            None => connector.connect(&self.conn)?,
        };
        Ok(self.session.insert(session).as_mut())
    }

    /// Drop the session and connect again (`wait_for_connection`).
    pub fn reopen(
        &mut self,
        connector: &dyn Connector,
    ) -> Result<&mut (dyn Remote + Send), SshError> {
        self.close();
        self.open(connector)
    }

    /// Switches how the host is reached (a play's `connection:`); a session over the old
    /// transport is dropped.
    pub fn set_transport(&mut self, t: Transport) {
        if self.conn.transport != t {
            self.conn.transport = t;
            self.session = None;
        }
    }

    /// Sets the port (a play's `port:`); a session to the old one is dropped.
    pub fn set_port(&mut self, port: u16) {
        self.conn.port_set = true;
        if self.conn.port != port {
            self.conn.port = port;
            self.session = None;
        }
    }

    /// Forget the session (the host went away, or `meta: reset_connection`).
    pub fn close(&mut self) {
        self.session = None;
    }

    /// The session if one is open; never connects (the finish command runs only over a session
    /// the run already has).
    pub fn current(&mut self) -> Option<&mut (dyn Remote + Send)> {
        self.session
            .as_deref_mut()
            .map(|s| s as &mut (dyn Remote + Send))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_too_long_for_a_deadline_are_refused_before_connecting() {
        let host = HostConn::from_vars("h", &Vars::new(), Some("root"), None);
        let s = Duration::from_secs;
        let connector = |wait: Option<Duration>, command: Option<Duration>| SshConnector {
            known_hosts: PathBuf::from("/nonexistent/known_hosts"),
            policy: HostKeyPolicy::Strict,
            connect_timeout: s(10),
            wait_for_ssh: wait,
            command_timeout: command,
            use_agent: false,
            allow_loose_key_permissions: false,
            pinned_host_keys: None,
        };
        let cases = [
            (None, None, true),
            (Some(s(MAX_SECONDS)), Some(s(60)), true),
            (Some(s(u64::MAX)), None, false),
            (None, Some(s(MAX_SECONDS + 1)), false),
        ];
        for (wait, command, ok) in cases {
            let got = connector(wait, command).check_waits(&host);
            assert_eq!(got.is_ok(), ok, "{wait:?} {command:?}: {got:?}");
        }
    }
}
