//! How to reach one host: [`ConnectOptions`] (address, user, keys, agent, timeouts, keepalive,
//! host-key policy, output cap, command shell on or off) and the key files that will be tried.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::known_hosts::{self, HostKeyPolicy};

/// Default [`ConnectOptions::output_cap`]: 64 MiB, far above what a task prints and far below what
/// would strain the controller.
pub const DEFAULT_OUTPUT_CAP: usize = 64 << 20;

/// Connection parameters for one host.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Label for logs and [`Remote::name`](super::Remote::name) (inventory hostname); defaults to `host`.
    pub name: String,
    /// Address or DNS name to connect to.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key files to try, in order. Empty: `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
    pub private_keys: Vec<PathBuf>,
    /// Also try the identities of a running ssh-agent.
    pub use_agent: bool,
    /// The agent's socket; `None`: `$SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
    /// Bound for one TCP connect and for the SSH handshake + authentication.
    pub connect_timeout: Duration,
    /// Keep retrying (with backoff) while the host refuses, times out or drops the banner, for up to
    /// this long: a host that just booted.
    pub wait_for_ssh: Option<Duration>,
    /// Interval of SSH keepalives (and TCP keepalive probes); zero disables them.
    pub keepalive: Duration,
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    /// Default per-command timeout when `exec` is given none (or zero).
    pub command_timeout: Option<Duration>,
    /// Most bytes of output (stdout and stderr together) one command may return; past it the command
    /// fails with [`SshError::OutputTooLarge`](super::SshError::OutputTooLarge) and the rest is not
    /// read. Default [`DEFAULT_OUTPUT_CAP`].
    pub output_cap: usize,
    /// Run commands without stdin in one long-lived `/bin/sh` per session (see `CommandShell`);
    /// `false` gives every command its own channel. Default: on, unless the environment variable
    /// `KNOCKPLAY_EXEC_PER_COMMAND=1` is set.
    pub command_shell: bool,
    /// Use private key files that group or others can read (with a warning). Default `false`: such
    /// a key is refused, as OpenSSH does, because anyone who can read it can log in where it works.
    pub allow_loose_key_permissions: bool,
    /// Accept exactly these host keys (SHA256 of the key blob), whatever known_hosts says: the
    /// keys an authenticated knock carried. The accepted key then replaces the address's entries
    /// in known_hosts.
    pub pinned_host_keys: Option<Vec<[u8; 32]>>,
    /// Reach the host through this one (`ProxyJump`): an SSH session to it (its host key
    /// checked, authenticated) carries the connection over a direct-tcpip channel.
    pub jump: Option<Box<ConnectOptions>>,
}

impl ConnectOptions {
    /// Defaults: port 22, default keys + agent, 10 s connect timeout, no waiting, 15 s keepalive,
    /// knockplay's default known_hosts, accept-new, no command timeout, 64 MiB of output.
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> ConnectOptions {
        let host = host.into();
        ConnectOptions {
            name: host.clone(),
            host,
            port: 22,
            user: user.into(),
            private_keys: Vec::new(),
            use_agent: true,
            agent_socket: None,
            connect_timeout: Duration::from_secs(10),
            wait_for_ssh: None,
            keepalive: Duration::from_secs(15),
            known_hosts: known_hosts::default_path(),
            host_key_policy: HostKeyPolicy::AcceptNew,
            command_timeout: None,
            output_cap: DEFAULT_OUTPUT_CAP,
            command_shell: !shell_disabled_by_env(),
            allow_loose_key_permissions: false,
            pinned_host_keys: None,
            jump: None,
        }
    }

    /// `host:port` (`[v6]:port`) for messages.
    pub fn addr(&self) -> String {
        known_hosts::display_addr(&self.host, self.port)
    }

    /// The key files that will be tried: the configured ones, else the default `~/.ssh/id_*`.
    pub fn key_candidates(&self) -> Vec<PathBuf> {
        if !self.private_keys.is_empty() {
            return self.private_keys.clone();
        }
        let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
            return Vec::new();
        };
        ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|k| Path::new(&home).join(".ssh").join(k))
            .collect()
    }
}

/// `KNOCKPLAY_EXEC_PER_COMMAND=1`: one exec channel per command, as before the command shell.
fn shell_disabled_by_env() -> bool {
    std::env::var_os("KNOCKPLAY_EXEC_PER_COMMAND").is_some_and(|v| !v.is_empty() && v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let o = ConnectOptions::new("10.0.0.5", "deploy");
        assert_eq!(o.port, 22);
        assert_eq!(o.name, "10.0.0.5");
        assert_eq!(o.addr(), "10.0.0.5:22");
        assert_eq!(o.host_key_policy, HostKeyPolicy::AcceptNew);
        assert!(o.use_agent);
        let keys = o.key_candidates();
        if std::env::var_os("HOME").is_some() {
            assert_eq!(keys.len(), 3);
            assert!(keys[0].ends_with(".ssh/id_ed25519"));
            assert!(keys[2].ends_with(".ssh/id_rsa"));
        }
        let mut o = o;
        o.private_keys = vec![PathBuf::from("/k")];
        assert_eq!(o.key_candidates(), vec![PathBuf::from("/k")]);
        let v6 = ConnectOptions::new("::1", "u");
        assert_eq!(v6.addr(), "[::1]:22");
    }
}
