//! Where an SSH connection really goes: the host's `ansible_ssh_common_args` /
//! `ansible_ssh_extra_args`, then the OpenSSH client configuration (`-F FILE` from those
//! arguments, else `~/.ssh/config`), applied to a host's connection options as `ssh` would:
//! `HostName`, `User` and `Port` where the inventory did not set them, `IdentityFile` where no
//! key was given, and `ProxyJump` (or `ProxyCommand ssh -W %h:%p`) for a jump host, whose own
//! settings come from the same file.

use std::path::PathBuf;

use crate::ssh::config::{apply_args, apply_file, split_jump, HostSettings};
use crate::ssh::ConnectOptions;

/// The jump host of a route.
struct Jump {
    user: Option<String>,
    host: String,
    port: Option<u16>,
    settings: HostSettings,
}

/// What the configuration adds to a host's connection.
pub struct Route {
    settings: HostSettings,
    jump: Option<Jump>,
    user_set: bool,
    port_set: bool,
    key_set: bool,
}

/// How a host's connection was given: its address or alias, its ssh arguments, and whether the
/// inventory or command line set user, port and key (the configuration fills only the rest).
pub struct Given<'a> {
    pub addr: &'a str,
    pub ssh_args: Option<&'a str>,
    pub user_set: bool,
    pub port_set: bool,
    pub key_set: bool,
}

/// Reads the configuration that applies to `host`.
pub fn route(host: Given<'_>) -> Result<Route, String> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let home = home.as_deref();
    let mut s = HostSettings::default();
    if let Some(a) = host.ssh_args {
        apply_args(&mut s, a, home).map_err(|e| format!("ansible_ssh_common_args: {e}"))?;
    }
    let text = match &s.config_file {
        Some(f) => Some(
            std::fs::read_to_string(f).map_err(|e| format!("ssh config {}: {e}", f.display()))?,
        ),
        None => home
            .map(|h| h.join(".ssh/config"))
            .and_then(|p| std::fs::read_to_string(p).ok()),
    };
    let file_name = s
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from("~/.ssh/config"));
    let read = |s: &mut HostSettings, name: &str| -> Result<(), String> {
        match &text {
            Some(t) => {
                apply_file(s, t, name, home).map_err(|e| format!("{}: {e}", file_name.display()))
            }
            None => Ok(()),
        }
    };
    read(&mut s, host.addr)?;
    let jump = match s.proxy_jump.clone() {
        None => None,
        Some(spec) => {
            let (user, jhost, port) = split_jump(&spec);
            let mut js = HostSettings::default();
            read(&mut js, &jhost)?;
            Some(Jump {
                user,
                host: jhost,
                port,
                settings: js,
            })
        }
    };
    Ok(Route {
        settings: s,
        jump,
        user_set: host.user_set,
        port_set: host.port_set,
        key_set: host.key_set,
    })
}

impl Route {
    /// `o` as the configuration routes it.
    pub fn apply(self, mut o: ConnectOptions) -> ConnectOptions {
        let s = self.settings;
        if let Some(h) = s.host_name {
            o.host = h.replace("%h", &o.host);
        }
        if !self.port_set {
            if let Some(p) = s.port {
                o.port = p;
            }
        }
        if !self.user_set {
            if let Some(u) = s.user {
                o.user = u;
            }
        }
        if !self.key_set && !s.identity_files.is_empty() {
            o.private_keys = s.identity_files;
        }
        if let Some(j) = self.jump {
            // The jump host is checked against the same known_hosts, with the same policy; the
            // keys an authenticated knock pinned belong to the target only.
            let mut jo = o.clone();
            jo.pinned_host_keys = None;
            jo.jump = None;
            jo.name = format!("{} (jump host)", j.host);
            jo.port = j.port.or(j.settings.port).unwrap_or(22);
            jo.user = j.user.or(j.settings.user).unwrap_or_else(|| o.user.clone());
            if !j.settings.identity_files.is_empty() {
                jo.private_keys = j.settings.identity_files;
            }
            jo.host = j.settings.host_name.unwrap_or(j.host);
            o.jump = Some(Box::new(jo));
        }
        o
    }
}
