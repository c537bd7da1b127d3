//! `[history] url`: where the history lives. `sqlite:///path` (the default: `history.sqlite3` in
//! `state_dir`) or `postgres://user@host:port/db?sslmode=...`.
//!
//! A PostgreSQL password never comes from the URL (knock.toml is not a secret store): it comes
//! from `PGPASSWORD` or the pgpass file (`PGPASSFILE`, else `~/.pgpass`), as with libpq, and the
//! URL shown in logs and errors is the one the operator wrote, which has none.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A validated history location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryUrl {
    Sqlite(PathBuf),
    Postgres(PgUrl),
}

/// A PostgreSQL URL without a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// As written (no password: checked at parse time).
    pub text: String,
}

impl fmt::Display for HistoryUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryUrl::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            HistoryUrl::Postgres(u) => f.write_str(&u.text),
        }
    }
}

impl HistoryUrl {
    /// The default: the SQLite file in `state_dir`.
    pub fn default_for(state_dir: &Path) -> HistoryUrl {
        HistoryUrl::Sqlite(super::db_path(state_dir))
    }

    /// Parses a URL; relative SQLite paths are taken relative to `base`.
    pub fn parse(s: &str, base: &Path) -> Result<HistoryUrl, String> {
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err(
                    "sqlite:// needs a file path (sqlite:///var/lib/knockplay/history.sqlite3)"
                        .into(),
                );
            }
            let p = PathBuf::from(rest);
            return Ok(HistoryUrl::Sqlite(if p.is_absolute() {
                p
            } else {
                base.join(p)
            }));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            let config =
                postgres::Config::from_str(s).map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
            if config.get_password().is_some() {
                return Err("a password in the URL is not accepted: put it in the pgpass file (PGPASSFILE) or PGPASSWORD".into());
            }
            if config.get_user().is_none() {
                return Err("the URL names no user (postgres://USER@host/db)".into());
            }
            return Ok(HistoryUrl::Postgres(PgUrl {
                text: s.to_string(),
            }));
        }
        Err(format!(
            "'{s}': expected sqlite:///path or postgres://user@host:port/db"
        ))
    }
}

/// The password for `user@host:port/db`: `PGPASSWORD`, else the first matching line of the pgpass
/// file (`PGPASSFILE`, else `$HOME/.pgpass`), else none.
pub fn password_for(host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    if let Ok(p) = std::env::var("PGPASSWORD") {
        return Some(p);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let text = std::fs::read_to_string(&file).ok()?;
    pgpass_lookup(&text, host, port, db, user)
}

/// libpq's pgpass format: `host:port:database:user:password`, `*` matches anything, `\:` and
/// `\\` escape; `#` starts a comment line.
pub fn pgpass_lookup(text: &str, host: &str, port: u16, db: &str, user: &str) -> Option<String> {
    let port = port.to_string();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass(line);
        let [h, p, d, u, pw] = fields.as_slice() else {
            continue;
        };
        let hit = |pat: &String, v: &str| pat == "*" || pat == v;
        let host_hit = hit(h, host) || (h == "localhost" && host.starts_with('/'));
        if host_hit && hit(p, &port) && hit(d, db) && hit(u, user) {
            return Some(pw.clone());
        }
    }
    None
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(last)) = (chars.next(), out.last_mut()) {
                    last.push(n);
                }
            }
            ':' if out.len() < 5 => out.push(String::new()),
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_kinds_and_refuses_passwords() {
        let base = Path::new("/etc/knockplay");
        assert_eq!(
            HistoryUrl::parse("sqlite:///var/lib/k/h.db", base),
            Ok(HistoryUrl::Sqlite("/var/lib/k/h.db".into()))
        );
        assert_eq!(
            HistoryUrl::parse("sqlite://h.db", base),
            Ok(HistoryUrl::Sqlite("/etc/knockplay/h.db".into()))
        );
        let u = HistoryUrl::parse("postgres://kp@db.example:5433/knock?sslmode=require", base);
        assert!(matches!(u, Ok(HistoryUrl::Postgres(_))), "{u:?}");
        let e = HistoryUrl::parse("postgres://kp:hunter2@db/knock", base).unwrap_err();
        assert!(e.contains("PGPASSFILE"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        assert!(HistoryUrl::parse("postgres://db/knock", base)
            .unwrap_err()
            .contains("no user"));
        assert!(HistoryUrl::parse("mysql://x", base).is_err());
        assert!(HistoryUrl::parse("postgres://kp@db/k?sslmode=bogus", base).is_err());
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "# comment\nother:5432:*:kp:nope\n*:5433:knock:kp:pa\\:ss\n*:*:*:*:fallback\n";
        assert_eq!(
            pgpass_lookup(text, "db", 5433, "knock", "kp").as_deref(),
            Some("pa:ss")
        );
        assert_eq!(
            pgpass_lookup(text, "db", 5432, "knock", "kp").as_deref(),
            Some("fallback")
        );
        assert_eq!(pgpass_lookup("a:b", "db", 1, "d", "u"), None);
    }
}
