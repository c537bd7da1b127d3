//! Connection settings (address, port, user, key, become, connection type) read from a host's
//! merged variables, including the legacy `ansible_ssh_*` names.

use crate::value::{as_bool, Value, Vars};

/// Connection settings read from a host's merged variables.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectionVars {
    /// Address to connect to (`ansible_host`, else the inventory name).
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub private_key_file: Option<String>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub become_method: Option<String>,
    /// `ansible_connection` (`ssh`, `local`, …) when set.
    pub connection: Option<String>,
}

impl ConnectionVars {
    /// Read `ansible_host`/`ansible_ssh_host`, `ansible_port`/`ansible_ssh_port`,
    /// `ansible_user`/`ansible_ssh_user`, `ansible_ssh_private_key_file`/
    /// `ansible_private_key_file`, `ansible_become`, `ansible_become_user`,
    /// `ansible_become_method`, `ansible_connection` (values already templated). A bad port is
    /// an error.
    pub fn from_vars(inventory_hostname: &str, vars: &Vars) -> Result<Self, String> {
        let text = |keys: &[&str]| {
            keys.iter().find_map(|k| match vars.get(*k) {
                Some(Value::Null) | None => None,
                Some(v) => Some(crate::value::to_display(v)),
            })
        };
        let port = match ["ansible_port", "ansible_ssh_port"]
            .iter()
            .find_map(|k| vars.get(*k).filter(|v| !v.is_null()))
        {
            None => None,
            Some(v) => {
                let s = crate::value::to_display(v);
                Some(
                    s.trim()
                        .parse::<u16>()
                        .ok()
                        .filter(|&p| p > 0)
                        .ok_or_else(|| {
                            format!("invalid ansible_port '{s}' for host {inventory_hostname}")
                        })?,
                )
            }
        };
        Ok(ConnectionVars {
            address: text(&["ansible_host", "ansible_ssh_host"])
                .unwrap_or_else(|| inventory_hostname.to_string()),
            port,
            user: text(&["ansible_user", "ansible_ssh_user"]),
            private_key_file: text(&["ansible_ssh_private_key_file", "ansible_private_key_file"]),
            become_: vars.get("ansible_become").and_then(as_bool),
            become_user: text(&["ansible_become_user"]),
            become_method: text(&["ansible_become_method"]),
            connection: text(&["ansible_connection"]),
        })
    }
}
