//! The knock.toml file as written: serde structs with spans, unknown keys rejected.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listener: Option<RawListener>,
    pub runner: Option<RawRunner>,
    pub history: Option<RawHistory>,
    #[serde(default)]
    pub door: Vec<Spanned<RawDoor>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub interfaces: Option<Vec<Spanned<String>>>,
    /// Bytes, or a string like `"8MiB"`.
    pub receive_buffer: Option<Spanned<Size>>,
    pub max_attempts: Option<Spanned<i64>>,
    pub history_failed_per_second: Option<Spanned<i64>>,
    /// Days of history kept (0: forever).
    pub history_retention: Option<Spanned<i64>>,
    /// Address of the Prometheus metrics and /healthz endpoint (off when absent).
    pub metrics: Option<Spanned<String>>,
}

/// `[history]`: where the history lives and, when listeners share it, how they coordinate.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHistory {
    pub url: Option<Spanned<String>>,
    pub lease: Option<Spanned<Seconds>>,
    pub listener_id: Option<Spanned<String>>,
    pub spool_rows: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRunner {
    pub max_concurrent_runs: Option<Spanned<i64>>,
    pub queue_limit: Option<Spanned<i64>>,
    pub ssh_wait: Option<Spanned<Seconds>>,
    pub grace_period: Option<Spanned<Seconds>>,
    pub command_timeout: Option<Spanned<Seconds>>,
    pub task_timeout: Option<Spanned<Seconds>>,
    pub host_key_checking: Option<Spanned<String>>,
    pub log_dir: Option<Spanned<String>>,
    pub state_dir: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDoor {
    pub name: Spanned<String>,
    pub sequence: Option<Spanned<Vec<Spanned<PortItem>>>>,
    /// The fleet key file(s) of an SPA door: one, or two during a rotation.
    pub spa_key_file: Option<Spanned<KeyFiles>>,
    pub spa_port: Option<Spanned<i64>>,
    pub spa_window: Option<Spanned<Seconds>>,
    pub seq_timeout: Option<Spanned<Seconds>>,
    pub tcp_flags: Option<Spanned<String>>,
    pub allow: Option<Spanned<Vec<Spanned<String>>>>,
    pub playbook: Option<Spanned<String>>,
    pub inventory_vars: Option<Spanned<toml::Table>>,
    pub groups: Option<Spanned<Vec<String>>>,
    pub user: Option<Spanned<String>>,
    pub private_key: Option<Spanned<String>>,
    pub port: Option<Spanned<i64>>,
    #[serde(rename = "become")]
    pub become_: Option<Spanned<bool>>,
    pub command: Option<Spanned<String>>,
    pub cooldown: Option<Spanned<Seconds>>,
}

/// `spa_key_file = "k"` or `spa_key_file = ["current", "next"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum KeyFiles {
    One(String),
    Several(Vec<String>),
}

/// A port written as `9000`, `"9000"`, `"9000/tcp"` or `"9000/udp"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PortItem {
    Number(i64),
    Text(String),
}

/// Seconds as an integer or a float.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(untagged)]
pub enum Seconds {
    Int(i64),
    Float(f64),
}

impl Seconds {
    pub fn as_f64(self) -> f64 {
        match self {
            Seconds::Int(i) => i as f64,
            Seconds::Float(f) => f,
        }
    }
}

/// A size in bytes (integer) or with a unit (`"8MiB"`, `"512KiB"`, `"16M"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Size {
    Bytes(i64),
    Text(String),
}

impl Size {
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            Size::Bytes(b) if *b > 0 => Ok(*b as u64),
            Size::Bytes(b) => Err(format!("size must be positive, got {b}")),
            Size::Text(t) => {
                let t = t.trim();
                let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
                let (num, unit) = t.split_at(split);
                let n: u64 = num
                    .parse()
                    .map_err(|_| format!("'{t}' is not a size like \"8MiB\""))?;
                let mult = match unit.trim().to_ascii_lowercase().as_str() {
                    "" | "b" => 1,
                    "k" | "kb" | "kib" => 1 << 10,
                    "m" | "mb" | "mib" => 1 << 20,
                    "g" | "gb" | "gib" => 1 << 30,
                    u => return Err(format!("unknown size unit '{u}' (use KiB, MiB or GiB)")),
                };
                n.checked_mul(mult)
                    .filter(|b| *b > 0)
                    .ok_or_else(|| format!("'{t}' is not a usable size"))
            }
        }
    }
}
