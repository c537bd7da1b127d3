//! knockplay's own known_hosts file and the host-key policy (strict, accept-new, off).
//!
//! The file uses OpenSSH's format (`host key-type base64`, `[host]:port` when the port is not 22), so
//! `ssh-keygen -F`/`-R -f FILE` work on it. Parsing and lookup are pure; [`check`] does the I/O under
//! an exclusive `flock` so that many threads or processes accepting new hosts at once neither lose nor
//! duplicate lines.

use std::collections::HashSet;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use sha2::{Digest, Sha256};

use super::SshError;

/// What to do with a host key that is not (or not as offered) in the known_hosts file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Only hosts already in the file are accepted.
    Strict,
    /// Unknown hosts are added (with a warning); a changed key is refused.
    #[default]
    AcceptNew,
    /// Nothing is verified (a warning is logged once per host); the file is not written.
    Off,
}

impl FromStr for HostKeyPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "strict" | "yes" => Ok(HostKeyPolicy::Strict),
            "accept-new" | "accept_new" => Ok(HostKeyPolicy::AcceptNew),
            "off" | "no" => Ok(HostKeyPolicy::Off),
            _ => Err(format!(
                "invalid host key checking {s:?}: expected strict, accept-new or off"
            )),
        }
    }
}

impl fmt::Display for HostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostKeyPolicy::Strict => "strict",
            HostKeyPolicy::AcceptNew => "accept-new",
            HostKeyPolicy::Off => "off",
        })
    }
}

/// `$XDG_STATE_HOME/knockplay/known_hosts`, else `~/.local/state/knockplay/known_hosts`.
pub fn default_path() -> PathBuf {
    let env_dir = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(state) = env_dir("XDG_STATE_HOME") {
        return PathBuf::from(state).join("knockplay/known_hosts");
    }
    match env_dir("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/knockplay/known_hosts"),
        None => PathBuf::from("/var/lib/knockplay/known_hosts"),
    }
}

/// The host field for `host`/`port`: `host` for port 22, `[host]:port` otherwise (OpenSSH rules).
pub fn host_pattern(host: &str, port: u16) -> String {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// A public host key as offered by a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// Algorithm name from the key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …).
    pub key_type: String,
    /// The key blob, base64 as written in known_hosts.
    pub base64: String,
}

impl HostKey {
    /// Build from the SSH wire-format key blob (it starts with the algorithm name).
    pub fn from_blob(blob: &[u8]) -> Result<HostKey, String> {
        let len = blob
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or("host key blob too short")?;
        let name = blob.get(4..4 + len).ok_or("host key blob truncated")?;
        let key_type = std::str::from_utf8(name)
            .ok()
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or("host key blob has an invalid algorithm name")?;
        Ok(HostKey {
            key_type: key_type.to_string(),
            base64: base64::engine::general_purpose::STANDARD.encode(blob),
        })
    }

    /// OpenSSH-style fingerprint: `SHA256:<unpadded base64>`.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.base64)
    }

    /// `ssh-ed25519 SHA256:…` for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.key_type, self.fingerprint())
    }
}

fn fingerprint_of(b64: &str) -> String {
    match base64::engine::general_purpose::STANDARD.decode(b64) {
        Ok(blob) => format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(&blob))
        ),
        Err(_) => "(undecodable key)".to_string(),
    }
}

/// One usable line of a known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Host patterns of the line (comma-separated in the file), lower-cased.
    pub hosts: Vec<String>,
    pub key_type: String,
    pub base64: String,
    /// 1-based line number, for messages.
    pub line: usize,
}

impl Entry {
    fn describe(&self) -> String {
        format!(
            "{} {} (line {})",
            self.key_type,
            fingerprint_of(&self.base64),
            self.line
        )
    }
}

/// Parse known_hosts text. Comments, blank lines, marker lines (`@cert-authority`, `@revoked`) and
/// hashed host names (`|1|…`, never written by knockplay) are skipped; malformed lines are ignored
/// like OpenSSH does.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
                return None;
            }
            let mut e = entry(line.split_whitespace(), i + 1)?;
            e.hosts.retain(|h| !h.starts_with('|'));
            Some(e)
        })
        .collect()
}

/// `hosts key-type base64 [comment]` from a line's fields.
fn entry<'a>(mut fields: impl Iterator<Item = &'a str>, line: usize) -> Option<Entry> {
    let hosts = fields.next()?;
    let key_type = fields.next()?;
    let b64 = fields.next()?;
    Some(Entry {
        hosts: hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        key_type: key_type.to_string(),
        base64: b64.to_string(),
        line,
    })
}

/// A marker line: `@revoked` or `@cert-authority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// The key on the line must never be accepted, for the hosts on the line.
    Revoked,
    /// The key on the line signs host certificates for the hosts on the line.
    CertAuthority,
}

/// The marker lines of a known_hosts file, with their entries (host patterns keep wildcards).
pub fn parse_markers(text: &str) -> Vec<(Marker, Entry)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let mut fields = line.split_whitespace();
            let marker = match fields.next()? {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                _ => return None,
            };
            Some((marker, entry(fields, i + 1)?))
        })
        .collect()
}

/// OpenSSH host-pattern matching for marker lines: `*` and `?` wildcards, `!pattern` excludes.
fn hosts_match(patterns: &[String], host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let mut matched = false;
    for p in patterns {
        if let Some(negated) = p.strip_prefix('!') {
            if glob(negated.as_bytes(), host.as_bytes()) {
                return false;
            }
        } else if glob(p.as_bytes(), host.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// `*` (any run) and `?` (one byte) wildcard match, iterative with backtracking to the last star.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Why marker lines forbid `key` for `pattern`, if they do: a `@revoked` key is refused whatever the
/// policy; a host covered by `@cert-authority` expects a host certificate, which knockplay cannot
/// verify, so unless the offered key is also recorded as a plain entry it is refused with a clear
/// message instead of being trusted (or added) as if the line were not there.
pub fn marker_refusal(
    markers: &[(Marker, Entry)],
    plain: &[Entry],
    pattern: &str,
    key: &HostKey,
    policy: HostKeyPolicy,
) -> Option<String> {
    let bare_host = bare_host(pattern);
    let covers = |e: &Entry| hosts_match(&e.hosts, pattern) || hosts_match(&e.hosts, bare_host);
    let revoked = markers.iter().find(|(m, e)| {
        *m == Marker::Revoked && e.key_type == key.key_type && e.base64 == key.base64 && covers(e)
    });
    if let Some((_, e)) = revoked {
        return Some(format!(
            "line {}: the host key offered ({}) is marked @revoked; refusing to connect",
            e.line,
            key.describe()
        ));
    }
    if policy == HostKeyPolicy::Off || lookup(plain, pattern, key) == Lookup::Match {
        return None;
    }
    markers
        .iter()
        .find(|(m, e)| *m == Marker::CertAuthority && covers(e))
        .map(|(_, e)| {
            format!(
                "line {}: @cert-authority covers this host, but knockplay does not verify host \
                 certificates; record the host's plain key instead (ssh-keyscan) or remove the line",
                e.line
            )
        })
}

/// `[host]:port` → `host`; anything else unchanged.
fn bare_host(pattern: &str) -> &str {
    pattern
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("]:"))
        .map_or(pattern, |(h, _)| h)
}

/// The result of looking a host key up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The offered key is recorded for this host.
    Match,
    /// Nothing is recorded for this host.
    New,
    /// Other keys are recorded for this host (described for the error message).
    Changed { expected: String },
}

/// Look `key` up for `pattern` (from [`host_pattern`]). A host whose recorded keys are all of other
/// types counts as changed: accepting a new key type would let an attacker bypass the check by
/// offering a type we have not seen. (The session prefers recorded types during key exchange, so a
/// legitimate server is asked for the key we know.)
pub fn lookup(entries: &[Entry], pattern: &str, key: &HostKey) -> Lookup {
    let pattern = pattern.to_ascii_lowercase();
    let mine: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.hosts.contains(&pattern))
        .collect();
    if mine
        .iter()
        .any(|e| e.key_type == key.key_type && e.base64 == key.base64)
    {
        Lookup::Match
    } else if mine.is_empty() {
        Lookup::New
    } else {
        Lookup::Changed {
            expected: mine
                .iter()
                .map(|e| e.describe())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Key types recorded for `pattern`, in file order, without duplicates.
pub fn known_types(entries: &[Entry], pattern: &str) -> Vec<String> {
    let pattern = pattern.to_ascii_lowercase();
    let mut out: Vec<String> = Vec::new();
    for e in entries.iter().filter(|e| e.hosts.contains(&pattern)) {
        if !out.contains(&e.key_type) {
            out.push(e.key_type.clone());
        }
    }
    out
}

/// The line appended for a newly accepted host (with trailing newline).
pub fn entry_line(pattern: &str, key: &HostKey) -> String {
    format!("{pattern} {} {}\n", key.key_type, key.base64)
}

/// How a host key check ended when the connection may go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The key was already recorded.
    Known,
    /// The key was new and has been recorded (accept-new).
    Added,
    /// Host key checking is off; the key was not verified.
    Unverified,
}

/// Check `key` offered by `host`:`port` against the file at `path` under `policy`. Appends new hosts
/// under accept-new; a changed key is an error unless the policy is `Off`.
pub fn check(
    path: &Path,
    host: &str,
    port: u16,
    key: &HostKey,
    policy: HostKeyPolicy,
) -> Result<Checked, SshError> {
    let pattern = host_pattern(host, port);
    let addr = display_addr(host, port);
    let file_err = |reason: String| SshError::KnownHosts {
        path: path.display().to_string(),
        reason,
    };
    // Marker lines are honoured under every policy (a revoked key is never accepted).
    if let Ok(Some(text)) = read_shared(path) {
        if let Some(reason) =
            marker_refusal(&parse_markers(&text), &parse(&text), &pattern, key, policy)
        {
            let err = file_err(reason);
            tracing::error!("{err}");
            return Err(err);
        }
    }
    match policy {
        HostKeyPolicy::Off => {
            // Read for a louder warning when the key differs; a missing/unreadable file is fine here.
            let changed = read_shared(path)
                .ok()
                .flatten()
                .map(|text| lookup(&parse(&text), &pattern, key));
            warn_off_once(&addr, key, path, changed);
            Ok(Checked::Unverified)
        }
        HostKeyPolicy::Strict => {
            let text = read_shared(path).map_err(file_err)?.unwrap_or_default();
            verdict(&parse(&text), &pattern, key, &addr, path, policy)
        }
        HostKeyPolicy::AcceptNew => {
            let mut file = open_locked_for_append(path).map_err(file_err)?;
            let mut text = String::new();
            file.read_to_string(&mut text)
                .map_err(|e| file_err(format!("cannot read: {e}")))?;
            let result = verdict(&parse(&text), &pattern, key, &addr, path, policy)?;
            if result == Checked::Added {
                let mut line = String::new();
                if !text.is_empty() && !text.ends_with('\n') {
                    line.push('\n');
                }
                line.push_str(&entry_line(&pattern, key));
                file.write_all(line.as_bytes())
                    .and_then(|()| file.flush())
                    .map_err(|e| file_err(format!("cannot append: {e}")))?;
                tracing::warn!(
                    "permanently added host key of {addr} ({}) to {}",
                    key.describe(),
                    path.display()
                );
            }
            Ok(result)
        }
    }
}

/// Records `key` as the only key of `host`:`port` (a key proven by an authenticated knock):
/// lines for that address are dropped, the new one appended, under the file lock.
pub fn replace(path: &Path, host: &str, port: u16, key: &HostKey) -> Result<(), SshError> {
    let pattern = host_pattern(host, port);
    let file_err = |reason: String| SshError::KnownHosts {
        path: path.display().to_string(),
        reason,
    };
    let mut file = open_locked_for_append(path).map_err(file_err)?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| file_err(format!("cannot read: {e}")))?;
    let wanted = entry_line(&pattern, key);
    let mut kept = String::new();
    let mut present = false;
    for line in text.lines() {
        let hosts = line.split_whitespace().next().unwrap_or("");
        let for_this = !line.starts_with('#')
            && !line.starts_with('@')
            && hosts.split(',').any(|h| h.eq_ignore_ascii_case(&pattern));
        if for_this {
            if format!("{line}\n") == wanted {
                present = true;
                kept.push_str(line);
                kept.push('\n');
            }
            continue;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    if present && kept == text {
        return Ok(());
    }
    if !present {
        kept.push_str(&wanted);
        tracing::info!(
            "recorded the host key of {} ({}) proven by its knock in {}",
            display_addr(host, port),
            key.describe(),
            path.display()
        );
    }
    // Still under the lock: the file opened for appending is emptied and written again.
    file.set_len(0)
        .and_then(|()| file.write_all(kept.as_bytes()))
        .and_then(|()| file.flush())
        .map_err(|e| file_err(format!("cannot write: {e}")))
}

/// The pure decision for `Strict`/`AcceptNew` (`Added` means "append now").
fn verdict(
    entries: &[Entry],
    pattern: &str,
    key: &HostKey,
    addr: &str,
    path: &Path,
    policy: HostKeyPolicy,
) -> Result<Checked, SshError> {
    match lookup(entries, pattern, key) {
        Lookup::Match => Ok(Checked::Known),
        Lookup::New if policy == HostKeyPolicy::AcceptNew => Ok(Checked::Added),
        Lookup::New => Err(SshError::HostKeyUnknown {
            addr: addr.to_string(),
            known_hosts: path.display().to_string(),
        }),
        Lookup::Changed { expected } => {
            let err = SshError::HostKeyChanged {
                addr: addr.to_string(),
                known_hosts: path.display().to_string(),
                expected,
                offered: key.describe(),
                host_pattern: pattern.to_string(),
            };
            tracing::error!("{err}");
            Err(err)
        }
    }
}

/// Key types recorded for `host`:`port` in the file at `path` (empty when the file is missing or
/// unreadable: the check after the handshake reports file problems).
pub fn known_types_in_file(path: &Path, host: &str, port: u16) -> Vec<String> {
    match read_shared(path) {
        Ok(Some(text)) => known_types(&parse(&text), &host_pattern(host, port)),
        _ => Vec::new(),
    }
}

/// `host:port`, `[v6]:port`, for messages.
pub fn display_addr(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn warn_off_once(addr: &str, key: &HostKey, path: &Path, seen: Option<Lookup>) {
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let first = WARNED
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .map(|mut set| set.insert(addr.to_string()))
        .unwrap_or(true);
    if !first {
        return;
    }
    match seen {
        Some(Lookup::Changed { expected }) => tracing::warn!(
            "HOST KEY CHANGED for {addr}: {} has {expected}, host offered {}; connecting anyway \
             because host key checking is off",
            path.display(),
            key.describe()
        ),
        _ => tracing::warn!(
            "host key checking is off: not verifying {addr} (offered {})",
            key.describe()
        ),
    }
}

/// Read the file under a shared lock; `None` when it does not exist.
fn read_shared(path: &Path) -> Result<Option<String>, String> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    lock(&file, libc::LOCK_SH)?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| format!("cannot read: {e}"))?;
    Ok(Some(text))
}

/// Open (creating the file and its directory) for reading and appending, exclusively locked until
/// the returned file is dropped.
fn open_locked_for_append(path: &Path) -> Result<File, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Private: which hosts this controller manages is nobody else's business.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open for appending: {e}"))?;
    lock(&file, libc::LOCK_EX)?;
    Ok(file)
}

fn lock(file: &File, how: libc::c_int) -> Result<(), String> {
    loop {
        // SAFETY: flock on a valid, open descriptor owned by `file`.
        let rc = unsafe { libc::flock(file.as_raw_fd(), how) };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("cannot lock: {err}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, body: &[u8]) -> HostKey {
        let mut blob = (kind.len() as u32).to_be_bytes().to_vec();
        blob.extend_from_slice(kind.as_bytes());
        blob.extend_from_slice(body);
        HostKey::from_blob(&blob).unwrap()
    }

    #[test]
    fn policy_parses_and_displays() {
        for (s, p) in [
            ("strict", HostKeyPolicy::Strict),
            ("accept-new", HostKeyPolicy::AcceptNew),
            ("OFF", HostKeyPolicy::Off),
        ] {
            assert_eq!(s.parse::<HostKeyPolicy>().unwrap(), p);
            assert_eq!(p.to_string().parse::<HostKeyPolicy>().unwrap(), p);
        }
        let err = "sometimes".parse::<HostKeyPolicy>().unwrap_err();
        assert!(err.contains("strict, accept-new or off"), "{err}");
        assert_eq!(HostKeyPolicy::default(), HostKeyPolicy::AcceptNew);
    }

    #[test]
    fn host_patterns_follow_openssh() {
        assert_eq!(host_pattern("10.0.0.5", 22), "10.0.0.5");
        assert_eq!(host_pattern("Web1.Example", 2222), "[web1.example]:2222");
        assert_eq!(host_pattern("::1", 22), "::1");
        assert_eq!(host_pattern("::1", 2200), "[::1]:2200");
        assert_eq!(display_addr("::1", 2200), "[::1]:2200");
        assert_eq!(display_addr("h", 22), "h:22");
    }

    #[test]
    fn key_blob_and_fingerprint() {
        let k = key("ssh-ed25519", &[0, 0, 0, 2, 7, 9]);
        assert_eq!(k.key_type, "ssh-ed25519");
        assert!(k.fingerprint().starts_with("SHA256:"));
        assert!(!k.fingerprint().ends_with('='));
        assert!(HostKey::from_blob(&[0, 0]).is_err());
        assert!(HostKey::from_blob(&[0, 0, 0, 9, b'a']).is_err());
        assert!(HostKey::from_blob(&[0, 0, 0, 0]).is_err());
    }

    #[test]
    fn parse_skips_noise_and_keeps_line_numbers() {
        let text = "# comment\n\n@cert-authority *.x ssh-rsa AAAA\n\
                    a.example,10.0.0.1 ssh-ed25519 AAAAb comment here\n\
                    |1|salt=|hash= ssh-rsa AAAAc\nbroken-line\n[h]:2222 ssh-rsa AAAAd\n";
        let e = parse(text);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].hosts, vec!["a.example", "10.0.0.1"]);
        assert_eq!(e[0].line, 4);
        assert!(e[1].hosts.is_empty());
        assert_eq!(e[2].hosts, vec!["[h]:2222"]);
        assert_eq!(e[2].line, 7);
    }

    #[test]
    fn revoked_keys_are_refused_under_every_policy() {
        let good = key("ssh-ed25519", b"good");
        let bad = key("ssh-ed25519", b"bad");
        let text = format!(
            "# known\n@revoked * {} {}\n{}{}",
            bad.key_type,
            bad.base64,
            entry_line("10.0.0.1", &bad),
            entry_line("10.0.0.1", &good),
        );
        let (markers, plain) = (parse_markers(&text), parse(&text));
        for policy in [
            HostKeyPolicy::Strict,
            HostKeyPolicy::AcceptNew,
            HostKeyPolicy::Off,
        ] {
            for host in ["10.0.0.1", "[10.0.0.9]:2222"] {
                let why = marker_refusal(&markers, &plain, host, &bad, policy).unwrap();
                assert!(why.contains("line 2") && why.contains("@revoked"), "{why}");
            }
            assert_eq!(
                marker_refusal(&markers, &plain, "10.0.0.1", &good, policy),
                None
            );
        }
        // Host patterns on the marker line apply, with negation.
        let text = format!(
            "@revoked 10.0.0.*,!10.0.0.7 {} {}\n",
            bad.key_type, bad.base64
        );
        let markers = parse_markers(&text);
        let p = HostKeyPolicy::AcceptNew;
        assert!(marker_refusal(&markers, &[], "10.0.0.5", &bad, p).is_some());
        assert!(marker_refusal(&markers, &[], "10.0.0.7", &bad, p).is_none());
        assert!(marker_refusal(&markers, &[], "10.0.1.5", &bad, p).is_none());
    }

    #[test]
    fn cert_authority_hosts_are_refused_clearly_unless_the_plain_key_is_known() {
        let ca = key("ssh-ed25519", b"ca");
        let host_key = key("ssh-ed25519", b"host");
        let text = format!(
            "@cert-authority *.example.net,10.1.* {} {}\n",
            ca.key_type, ca.base64
        );
        let markers = parse_markers(&text);
        let p = HostKeyPolicy::AcceptNew;
        let why = marker_refusal(&markers, &[], "web.example.net", &host_key, p).unwrap();
        assert!(
            why.contains("@cert-authority") && why.contains("line 1"),
            "{why}"
        );
        assert!(marker_refusal(&markers, &[], "[10.1.2.3]:2222", &host_key, p).is_some());
        assert!(marker_refusal(&markers, &[], "10.2.2.3", &host_key, p).is_none());
        let plain = parse(&entry_line("web.example.net", &host_key));
        assert!(marker_refusal(&markers, &plain, "web.example.net", &host_key, p).is_none());
        assert!(marker_refusal(
            &markers,
            &[],
            "web.example.net",
            &host_key,
            HostKeyPolicy::Off
        )
        .is_none());
    }

    #[test]
    fn check_refuses_a_revoked_key_and_creates_private_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/known_hosts");
        let k = key("ssh-ed25519", b"one");
        assert_eq!(
            check(&path, "10.0.0.1", 22, &k, HostKeyPolicy::AcceptNew).unwrap(),
            Checked::Added
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("@revoked * {} {}\n", k.key_type, k.base64));
        std::fs::write(&path, text).unwrap();
        for policy in [
            HostKeyPolicy::Strict,
            HostKeyPolicy::AcceptNew,
            HostKeyPolicy::Off,
        ] {
            let err = check(&path, "10.0.0.1", 22, &k, policy).unwrap_err();
            assert!(err.to_string().contains("@revoked"), "{err}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"10.0.*.1", b"10.0.200.1"));
        assert!(!glob(b"10.0.*.1", b"10.0.200.2"));
        assert!(glob(b"h?st", b"host"));
        assert!(glob(b"*a*b*", b"xxaxxbxx"));
        assert!(!glob(b"*a*b", b"xxbxxa"));
        assert!(glob(b"", b""));
        assert!(!glob(b"", b"x"));
    }

    #[test]
    fn lookup_match_new_changed() {
        let k1 = key("ssh-ed25519", b"one");
        let k2 = key("ssh-ed25519", b"two");
        let rsa = key("ssh-rsa", b"three");
        let text = format!(
            "{}{}",
            entry_line("10.0.0.1", &k1),
            entry_line("[10.0.0.1]:2222", &k2)
        );
        let entries = parse(&text);
        assert_eq!(lookup(&entries, "10.0.0.1", &k1), Lookup::Match);
        assert_eq!(lookup(&entries, "[10.0.0.1]:2222", &k2), Lookup::Match);
        assert_eq!(lookup(&entries, "10.0.0.2", &k1), Lookup::New);
        match lookup(&entries, "10.0.0.1", &k2) {
            Lookup::Changed { expected } => {
                assert!(expected.contains(&k1.fingerprint()), "{expected}");
                assert!(expected.contains("line 1"), "{expected}");
            }
            other => panic!("{other:?}"),
        }
        // A different key type for a known host is not silently accepted.
        assert!(matches!(
            lookup(&entries, "10.0.0.1", &rsa),
            Lookup::Changed { .. }
        ));
        assert_eq!(known_types(&entries, "10.0.0.1"), vec!["ssh-ed25519"]);
        assert!(known_types(&entries, "10.0.0.9").is_empty());
    }

    #[test]
    fn check_accept_new_then_changed_then_strict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/known_hosts");
        let k1 = key("ssh-ed25519", b"one");
        let k2 = key("ssh-ed25519", b"two");
        let p = HostKeyPolicy::AcceptNew;

        assert!(matches!(
            check(&path, "10.1.1.1", 22, &k1, HostKeyPolicy::Strict),
            Err(SshError::HostKeyUnknown { .. })
        ));
        assert!(!path.exists(), "strict must not create the file");
        assert_eq!(
            check(&path, "10.1.1.1", 22, &k1, p).unwrap(),
            Checked::Added
        );
        assert_eq!(
            check(&path, "10.1.1.1", 22, &k1, p).unwrap(),
            Checked::Known
        );
        assert_eq!(
            check(&path, "10.1.1.1", 2222, &k2, p).unwrap(),
            Checked::Added
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!(
                "10.1.1.1 ssh-ed25519 {}\n[10.1.1.1]:2222 ssh-ed25519 {}\n",
                k1.base64, k2.base64
            )
        );
        let err = check(&path, "10.1.1.1", 22, &k2, p).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SshError::HostKeyChanged { .. }));
        assert!(msg.contains("HOST KEY CHANGED for 10.1.1.1:22"), "{msg}");
        assert!(msg.contains("ssh-keygen -R '10.1.1.1' -f "), "{msg}");
        assert!(
            msg.contains(&k1.fingerprint()) && msg.contains(&k2.fingerprint()),
            "{msg}"
        );
        assert_eq!(
            check(&path, "10.1.1.1", 22, &k1, HostKeyPolicy::Strict).unwrap(),
            Checked::Known
        );
        assert!(matches!(
            check(&path, "10.1.1.1", 22, &k2, HostKeyPolicy::Strict),
            Err(SshError::HostKeyChanged { .. })
        ));
        // Off never fails and never writes.
        assert_eq!(
            check(&path, "10.1.1.1", 22, &k2, HostKeyPolicy::Off).unwrap(),
            Checked::Unverified
        );
        assert_eq!(
            check(&path, "10.9.9.9", 22, &k2, HostKeyPolicy::Off).unwrap(),
            Checked::Unverified
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert_eq!(
            known_types_in_file(&path, "10.1.1.1", 2222),
            vec!["ssh-ed25519"]
        );
    }

    #[test]
    fn append_after_line_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let k1 = key("ssh-ed25519", b"one");
        std::fs::write(&path, "# hand edited, no newline").unwrap();
        check(&path, "h", 22, &k1, HostKeyPolicy::AcceptNew).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(parse(&text).len(), 1);
        assert!(text.ends_with(&entry_line("h", &k1)));
        assert!(text.starts_with("# hand edited, no newline\n"));
    }

    #[test]
    fn concurrent_accept_new_writes_each_host_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let threads: Vec<_> = (0..16)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for h in 0..20 {
                        // Every thread offers the same key per host, starting at another host.
                        let i = (h + t) % 20;
                        let k = key("ssh-ed25519", format!("key-{i}").as_bytes());
                        let host = format!("10.2.0.{i}");
                        let r = check(&path, &host, 22, &k, HostKeyPolicy::AcceptNew).unwrap();
                        assert_ne!(r, Checked::Unverified);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let entries = parse(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(entries.len(), 20);
        let hosts: HashSet<_> = entries.iter().map(|e| e.hosts[0].clone()).collect();
        assert_eq!(hosts.len(), 20);
    }

    #[test]
    fn unreadable_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be.
        let path = dir.path().join("known_hosts");
        std::fs::create_dir(&path).unwrap();
        let k = key("ssh-ed25519", b"x");
        let err = check(&path, "h", 22, &k, HostKeyPolicy::AcceptNew).unwrap_err();
        assert!(matches!(err, SshError::KnownHosts { .. }), "{err:?}");
        assert!(err.to_string().contains("known_hosts"), "{err}");
    }

    #[test]
    fn default_path_is_under_state_dir() {
        let p = default_path();
        assert!(p.ends_with("knockplay/known_hosts"), "{}", p.display());
    }
}
