//! The parts of OpenSSH's client configuration (`~/.ssh/config`, or the file `-F` names) and of
//! `ansible_ssh_common_args`/`ansible_ssh_extra_args` that decide where a connection goes:
//! `HostName`, `User`, `Port`, `IdentityFile`, `ProxyJump` (and the `ssh -W %h:%p` form of
//! `ProxyCommand`). As in OpenSSH, the first value found for a keyword wins, command-line options
//! come before the file, and `Host` patterns take `*`, `?` and `!`. Pure: the file's text comes in.

use std::path::{Path, PathBuf};

/// What the configuration says for one host; `None`: not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    pub host_name: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    pub identity_files: Vec<PathBuf>,
    /// `[user@]host[:port]`, the first hop only.
    pub proxy_jump: Option<String>,
    /// `-F FILE` from the arguments.
    pub config_file: Option<PathBuf>,
}

impl HostSettings {
    /// Fills what is still unset from `key value` (first value wins).
    fn set(&mut self, key: &str, value: &str, home: Option<&Path>) -> Result<(), String> {
        let value = value.trim().trim_matches('"');
        match key.to_ascii_lowercase().as_str() {
            "hostname" => {
                self.host_name.get_or_insert_with(|| value.to_string());
            }
            "user" => {
                self.user.get_or_insert_with(|| value.to_string());
            }
            "port" if self.port.is_none() => {
                self.port = Some(value.parse().map_err(|_| format!("bad Port '{value}'"))?);
            }
            "identityfile" => self.identity_files.push(expand(value, home)),
            "proxyjump" if self.proxy_jump.is_none() && !value.eq_ignore_ascii_case("none") => {
                let first = value.split(',').next().unwrap_or(value).trim();
                self.proxy_jump = Some(first.to_string());
            }
            "proxycommand" if self.proxy_jump.is_none() => {
                self.proxy_jump = Some(jump_of_proxy_command(value)?);
            }
            _ => {}
        }
        Ok(())
    }
}

fn expand(p: &str, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

/// `ssh [opts] -W %h:%p [user@]bastion` is a jump through `bastion`; other proxy commands are not
/// supported (knockplay runs no local programs to connect).
fn jump_of_proxy_command(cmd: &str) -> Result<String, String> {
    let words = crate::shell::split_words(cmd, crate::shell::WordRules::CommandLine)?;
    let unsupported = || {
        format!("ProxyCommand '{cmd}' is not supported by knockplay (use ProxyJump, or ssh -W %h:%p HOST)")
    };
    if words.first().map(String::as_str) != Some("ssh") || !words.iter().any(|w| w == "-W") {
        return Err(unsupported());
    }
    let mut user = None;
    let mut port = None;
    let mut host = None;
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        match w.as_str() {
            "-W" | "-o" | "-i" | "-F" => {
                let v = it.next().ok_or_else(unsupported)?;
                if w == "-o" {
                    if let Some((k, v)) = v.split_once('=') {
                        match k.to_ascii_lowercase().as_str() {
                            "user" => user = Some(v.to_string()),
                            "port" => port = Some(v.to_string()),
                            _ => {}
                        }
                    }
                }
            }
            "-l" => user = it.next().cloned(),
            "-p" => port = it.next().cloned(),
            w if w.starts_with('-') => {}
            w => host = Some(w.to_string()),
        }
    }
    let host = host.ok_or_else(unsupported)?;
    let mut out = match user {
        Some(u) if !host.contains('@') => format!("{u}@{host}"),
        _ => host,
    };
    if let Some(p) = port {
        out.push(':');
        out.push_str(&p);
    }
    Ok(out)
}

/// Whether a `Host` line's patterns select `host` (a negated match excludes it).
fn host_line_matches(patterns: &str, host: &str) -> bool {
    let mut hit = false;
    for p in patterns.split_whitespace() {
        if let Some(neg) = p.strip_prefix('!') {
            if crate::shell::glob_match(neg, host) {
                return false;
            }
        } else if crate::shell::glob_match(p, host) {
            hit = true;
        }
    }
    hit
}

/// Applies the file's text for `host` over `s` (values already set win). `Match` blocks and
/// `Include` are skipped.
pub fn apply_file(
    s: &mut HostSettings,
    text: &str,
    host: &str,
    home: Option<&Path>,
) -> Result<(), String> {
    let mut active = true;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k,
                v.trim_start_matches(|c: char| c.is_whitespace() || c == '='),
            ),
            None => (line, ""),
        };
        match key.to_ascii_lowercase().as_str() {
            "host" => active = host_line_matches(value, host),
            "match" => active = false,
            _ if active => s
                .set(key, value, home)
                .map_err(|e| format!("line {}: {e}", i + 1))?,
            _ => {}
        }
    }
    Ok(())
}

/// Applies ssh command-line arguments (`ansible_ssh_common_args`, `ansible_ssh_extra_args`):
/// `-o Key=Value`, `-J`, `-p`, `-i`, `-l`, `-F`. Options that only concern OpenSSH's own
/// behaviour (known hosts files, multiplexing) are ignored.
pub fn apply_args(s: &mut HostSettings, args: &str, home: Option<&Path>) -> Result<(), String> {
    let words = crate::shell::split_words(args, crate::shell::WordRules::CommandLine)?;
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let mut take = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("ssh argument {name} needs a value"))
        };
        match w.as_str() {
            "-o" => {
                let kv = take("-o")?;
                let (k, v) = kv
                    .split_once('=')
                    .or_else(|| kv.split_once(' '))
                    .ok_or_else(|| format!("ssh option '{kv}' is not Key=Value"))?;
                s.set(k, v, home)?;
            }
            "-J" => s.set("proxyjump", &take("-J")?, home)?,
            "-p" => s.set("port", &take("-p")?, home)?,
            "-i" => s.set("identityfile", &take("-i")?, home)?,
            "-l" => s.set("user", &take("-l")?, home)?,
            "-F" => s.config_file = Some(expand(&take("-F")?, home)),
            w if w.starts_with("-o") && w.len() > 2 => {
                let kv = &w[2..];
                if let Some((k, v)) = kv.split_once('=') {
                    s.set(k, v, home)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// `[user@]host[:port]` of a jump.
pub fn split_jump(spec: &str) -> (Option<String>, String, Option<u16>) {
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (user, h.to_string(), Some(port)),
            Err(_) => (user, rest.to_string(), None),
        },
        _ => (user, rest.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# bastions
Host bastion
    HostName 203.0.113.5
    User jump
    Port 2222

Host *.internal !db.internal
    ProxyJump bastion
    User deploy
    IdentityFile ~/.ssh/internal_ed25519

Host *
    User fallback
    Port 22
";

    #[test]
    fn first_value_wins_and_patterns_select() {
        let home = Path::new("/home/u");
        let mut s = HostSettings::default();
        apply_file(&mut s, FILE, "web.internal", Some(home)).unwrap();
        assert_eq!(s.proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(s.user.as_deref(), Some("deploy"));
        assert_eq!(s.port, Some(22));
        assert_eq!(
            s.identity_files,
            [PathBuf::from("/home/u/.ssh/internal_ed25519")]
        );
        let mut db = HostSettings::default();
        apply_file(&mut db, FILE, "db.internal", Some(home)).unwrap();
        assert_eq!(
            (db.proxy_jump, db.user.as_deref()),
            (None, Some("fallback"))
        );
        let mut b = HostSettings::default();
        apply_file(&mut b, FILE, "bastion", None).unwrap();
        assert_eq!(
            (b.host_name.as_deref(), b.user.as_deref(), b.port),
            (Some("203.0.113.5"), Some("jump"), Some(2222))
        );
    }

    #[test]
    fn command_line_options_come_first() {
        let mut s = HostSettings::default();
        apply_args(
            &mut s,
            "-o ProxyJump=ops@gw:2200 -o StrictHostKeyChecking=no -p 2022 -i /k -F /etc/kp_ssh",
            None,
        )
        .unwrap();
        apply_file(&mut s, FILE, "web.internal", None).unwrap();
        assert_eq!(s.proxy_jump.as_deref(), Some("ops@gw:2200"));
        assert_eq!(s.port, Some(2022));
        assert_eq!(s.identity_files[0], PathBuf::from("/k"));
        assert_eq!(s.config_file, Some(PathBuf::from("/etc/kp_ssh")));
        assert_eq!(
            split_jump("ops@gw:2200"),
            (Some("ops".into()), "gw".into(), Some(2200))
        );
        assert_eq!(split_jump("gw"), (None, "gw".into(), None));
        let mut p = HostSettings::default();
        apply_args(
            &mut p,
            r#"-o ProxyCommand="ssh -W %h:%p -q admin@bastion -p 2200""#,
            None,
        )
        .unwrap();
        assert_eq!(p.proxy_jump.as_deref(), Some("admin@bastion:2200"));
        let mut bad = HostSettings::default();
        assert!(apply_args(&mut bad, "-o ProxyCommand='nc %h %p'", None)
            .unwrap_err()
            .contains("not supported"));
    }
}
