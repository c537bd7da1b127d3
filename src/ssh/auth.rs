//! Authentication: ssh-agent identities and key files in OpenSSH's order, with an error that lists
//! everything tried and why it failed; checks of key files (encrypted, readable by others).

use std::path::{Path, PathBuf};

use ssh2::Session;

use super::options::ConnectOptions;
use super::ssh2_errors::{describe, is_key_file_unusable, is_key_rejected, is_timeout};
use super::SshError;

/// Where identities come from.
#[derive(Clone, Copy)]
enum Source {
    KeyFiles,
    Agent,
}

/// Try agent identities and key files; the error lists everything that was tried and why it failed.
pub fn authenticate(session: &Session, opts: &ConnectOptions) -> Result<(), SshError> {
    let mut tried: Vec<String> = Vec::new();
    // Explicit keys first (so agent keys do not exhaust MaxAuthTries); defaults after the agent,
    // like OpenSSH.
    let order = if opts.private_keys.is_empty() {
        [Source::Agent, Source::KeyFiles]
    } else {
        [Source::KeyFiles, Source::Agent]
    };
    for source in order {
        let accepted = match source {
            Source::KeyFiles => try_key_files(session, opts, &mut tried)?,
            Source::Agent => opts.use_agent && try_agent(session, opts, &mut tried)?,
        };
        if accepted {
            return Ok(());
        }
    }
    if tried.is_empty() {
        tried.push(nothing_to_try(opts));
    }
    Err(SshError::Auth {
        user: opts.user.clone(),
        addr: opts.addr(),
        reason: format!("tried {}", tried.join("; ")),
    })
}

/// The "tried" entry when there was no key file and no agent.
fn nothing_to_try(opts: &ConnectOptions) -> String {
    let looked: Vec<String> = opts
        .key_candidates()
        .iter()
        .map(|k| k.display().to_string())
        .collect();
    format!(
        "nothing: no key file found (looked for {}) and no ssh-agent; pass --private-key",
        if looked.is_empty() {
            "none: HOME is not set".to_string()
        } else {
            looked.join(", ")
        }
    )
}

/// libssh2 timed out (blocking mode): the connect timeout, not a rejected identity.
fn auth_timeout(opts: &ConnectOptions, e: &ssh2::Error) -> Option<SshError> {
    is_timeout(e).then(|| SshError::ConnectTimeout {
        addr: opts.addr(),
        secs: opts.connect_timeout.as_secs().max(1),
    })
}

fn try_key_files(
    session: &Session,
    opts: &ConnectOptions,
    tried: &mut Vec<String>,
) -> Result<bool, SshError> {
    let explicit = !opts.private_keys.is_empty();
    for key in opts.key_candidates() {
        let shown = key.display();
        if !key.is_file() {
            // Missing default keys are normal; missing configured keys are worth saying.
            if explicit {
                tried.push(format!("key {shown} (not found)"));
            }
            continue;
        }
        if let Some(mode) = readable_by_others(&key) {
            if !opts.allow_loose_key_permissions {
                tried.push(format!(
                    "key {shown} (refused: readable by group or others, mode {mode:04o}; \
                     `chmod 600` it, or pass --allow-loose-key-permissions)"
                ));
                continue;
            }
            warn_if_readable_by_others(&key);
        }
        match session.userauth_pubkey_file(&opts.user, None, &key, None) {
            Ok(()) if session.authenticated() => return Ok(true),
            Ok(()) => tried.push(format!("key {shown} (not accepted)")),
            Err(e) => {
                if let Some(t) = auth_timeout(opts, &e) {
                    return Err(t);
                }
                tried.push(format!("key {shown} ({})", key_failure(&key, &e)));
            }
        }
    }
    Ok(false)
}

/// Why a key file did not log in.
fn key_failure(key: &Path, e: &ssh2::Error) -> String {
    if key_file_is_encrypted(key) {
        "encrypted; load it into ssh-agent".to_string()
    } else if is_key_rejected(e) {
        "rejected".into()
    } else if is_key_file_unusable(e) {
        format!("unusable: {}", e.message())
    } else {
        describe(e)
    }
}

fn try_agent(
    session: &Session,
    opts: &ConnectOptions,
    tried: &mut Vec<String>,
) -> Result<bool, SshError> {
    let socket = match &opts.agent_socket {
        Some(p) => p.clone(),
        None => match std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
            Some(s) => PathBuf::from(s),
            // No agent configured: nothing to try, nothing worth reporting.
            None => return Ok(false),
        },
    };
    let mut agent = match session.agent() {
        Ok(a) => a,
        Err(e) => {
            tried.push(format!("ssh-agent ({})", e.message()));
            return Ok(false);
        }
    };
    if let Err(e) = agent
        .set_identity_path(&socket)
        .and_then(|()| agent.connect())
        .and_then(|()| agent.list_identities())
    {
        tried.push(format!(
            "ssh-agent at {} (unavailable: {})",
            socket.display(),
            e.message()
        ));
        return Ok(false);
    }
    let identities = agent.identities().unwrap_or_default();
    let mut rejected = 0;
    for id in &identities {
        match agent.userauth(&opts.user, id) {
            Ok(()) if session.authenticated() => {
                let _ = agent.disconnect();
                return Ok(true);
            }
            Err(e) => {
                if let Some(t) = auth_timeout(opts, &e) {
                    return Err(t);
                }
                rejected += 1;
            }
            Ok(()) => rejected += 1,
        }
    }
    let _ = agent.disconnect();
    tried.push(format!(
        "ssh-agent ({} of {} identities rejected)",
        rejected,
        identities.len()
    ));
    Ok(false)
}

/// Warns once per key file that group or others can read, when the operator allowed such keys:
/// anyone who can read it can log in where it is accepted.
fn warn_if_readable_by_others(path: &Path) {
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    let Some(mode) = readable_by_others(path) else {
        return;
    };
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if warned.iter().any(|p| p == path) {
        return;
    }
    warned.push(path.to_path_buf());
    tracing::warn!(
        "private key {} is readable by group or others (mode {mode:04o}): anyone who can read it can \
         log in with it; `chmod 600 {}` (OpenSSH refuses such keys)",
        path.display(),
        path.display()
    );
}

/// The permission bits of `path` when group or others have any access to it.
fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

/// True for PEM keys with `ENCRYPTED` and OpenSSH keys whose cipher is not `none`.
fn key_file_is_encrypted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    if text.contains("ENCRYPTED") {
        return true;
    }
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    use base64::Engine;
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(body.trim()) else {
        return false;
    };
    openssh_key_cipher(&raw).is_some_and(|c| c != b"none")
}

/// The cipher name of an `openssh-key-v1` blob.
fn openssh_key_cipher(raw: &[u8]) -> Option<&[u8]> {
    let rest = raw.strip_prefix(b"openssh-key-v1\0")?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    rest.get(4..4 + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_encrypted_openssh_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mk = |cipher: &str| {
            let mut raw = b"openssh-key-v1\0".to_vec();
            raw.extend_from_slice(&(cipher.len() as u32).to_be_bytes());
            raw.extend_from_slice(cipher.as_bytes());
            use base64::Engine;
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        };
        let enc = dir.path().join("enc");
        let plain = dir.path().join("plain");
        let pem = dir.path().join("pem");
        std::fs::write(&enc, mk("aes256-ctr")).unwrap();
        std::fs::write(&plain, mk("none")).unwrap();
        std::fs::write(&pem, "Proc-Type: 4,ENCRYPTED\n").unwrap();
        assert!(key_file_is_encrypted(&enc));
        assert!(!key_file_is_encrypted(&plain));
        assert!(key_file_is_encrypted(&pem));
        assert!(!key_file_is_encrypted(&dir.path().join("missing")));
    }

    #[test]
    fn keys_open_to_others_are_noticed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        std::fs::write(&key, b"k").unwrap();
        for (mode, open) in [
            (0o600, None),
            (0o400, None),
            (0o644, Some(0o644)),
            (0o640, Some(0o640)),
        ] {
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(readable_by_others(&key), open, "{mode:o}");
        }
        assert_eq!(readable_by_others(&dir.path().join("missing")), None);
    }

    #[test]
    fn a_failed_key_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        std::fs::write(&key, b"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n").unwrap();
        let err =
            |code: i32, msg: &'static str| ssh2::Error::new(ssh2::ErrorCode::Session(code), msg);
        for (e, want) in [
            (err(-18, "m"), "rejected"),
            (err(-19, "m"), "rejected"),
            (err(-16, "bad file"), "unusable: bad file"),
            (err(-13, "m"), "connection lost (m)"),
            (err(-48, "other"), "other"),
        ] {
            assert_eq!(key_failure(&key, &e), want);
        }
        std::fs::write(&key, b"Proc-Type: 4,ENCRYPTED\n").unwrap();
        assert_eq!(
            key_failure(&key, &err(-18, "m")),
            "encrypted; load it into ssh-agent"
        );
    }
}
