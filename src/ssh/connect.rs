//! Opening a connection: TCP connect with a timeout and keepalive, the SSH handshake with a
//! host-key algorithm preference, the host-key check, authentication, and the `--wait-for-ssh`
//! retries with backoff. Hands back a non-blocking [`Transport`].

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::io::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use ssh2::{MethodType, Session};

use super::auth::authenticate;
use super::known_hosts::{self, HostKey};
use super::options::ConnectOptions;
use super::ssh2_errors::{describe, is_timeout};
use super::transport::Transport;
use super::SshError;

/// First retry delay of `wait_for_ssh`; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Connect, verify the host key and authenticate, waiting for sshd if `wait_for_ssh` is set.
pub fn connect(opts: &ConnectOptions) -> Result<Transport, SshError> {
    let start = Instant::now();
    let deadline = opts.wait_for_ssh.map(|w| start + w);
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let attempt_deadline = deadline.map(|d| d.max(Instant::now() + Duration::from_secs(1)));
        let err = match connect_once(opts, attempt_deadline) {
            Ok(link) => {
                if attempts > 1 {
                    tracing::info!(
                        "{}: sshd answered after {:.1}s ({attempts} attempts)",
                        opts.addr(),
                        start.elapsed().as_secs_f64()
                    );
                }
                return Ok(link);
            }
            Err(e) => e,
        };
        let Some(deadline) = deadline.filter(|_| retryable(&err)) else {
            return Err(err);
        };
        let now = Instant::now();
        if now >= deadline {
            tracing::warn!(
                "{}: gave up waiting for sshd after {:.0}s ({attempts} attempts): {err}",
                opts.addr(),
                start.elapsed().as_secs_f64()
            );
            return Err(err);
        }
        tracing::debug!("{}: waiting for sshd: {err}", opts.addr());
        std::thread::sleep(backoff.min(deadline - now));
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Errors that mean "sshd is not (yet) answering": worth retrying while waiting for a booting host.
/// Authentication and host-key failures are final.
fn retryable(e: &SshError) -> bool {
    matches!(
        e,
        SshError::Refused { .. }
            | SshError::ConnectTimeout { .. }
            | SshError::Network { .. }
            | SshError::Session { .. }
    )
}

/// One connection attempt.
fn connect_once(opts: &ConnectOptions, deadline: Option<Instant>) -> Result<Transport, SshError> {
    let step_timeout = match deadline {
        Some(d) => opts
            .connect_timeout
            .min(d.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(500)),
        None => opts.connect_timeout,
    };
    let (session, socket) = open_session(opts, step_timeout)?;
    if !opts.keepalive.is_zero() {
        session.set_keepalive(
            true,
            u32::try_from(opts.keepalive.as_secs().max(1)).unwrap_or(u32::MAX),
        );
    }
    session.set_blocking(false);
    Ok(Transport::new(session, socket, opts))
}

/// A blocking session to `opts`'s host, its host key checked and authenticated, directly or
/// through its jump host, and a clone of its socket for polling.
pub(super) fn open_session(
    opts: &ConnectOptions,
    step_timeout: Duration,
) -> Result<(Session, OwnedFd), SshError> {
    let addr = opts.addr();
    let session_error = |reason: String| SshError::Session {
        addr: addr.clone(),
        reason,
    };
    let clone_failed = |e: std::io::Error| SshError::Network {
        addr: addr.clone(),
        reason: format!("cannot clone socket: {e}"),
    };
    let mut session =
        Session::new().map_err(|e| session_error(format!("cannot create ssh session: {e}")))?;
    let socket = match &opts.jump {
        Some(jump) => {
            let (jump_session, jump_socket) = open_session(jump, step_timeout)?;
            let stream =
                super::jump::through(jump_session, jump_socket, jump, &opts.host, opts.port)?;
            let socket = OwnedFd::from(stream.try_clone().map_err(clone_failed)?);
            session.set_tcp_stream(stream);
            socket
        }
        None => {
            let tcp = tcp_connect(opts, step_timeout)?;
            let socket = OwnedFd::from(tcp.try_clone().map_err(clone_failed)?);
            let _ = tcp.set_nodelay(true);
            if !opts.keepalive.is_zero() {
                set_tcp_keepalive(tcp.as_raw_fd(), opts.keepalive);
            }
            session.set_tcp_stream(tcp);
            socket
        }
    };
    session.set_blocking(true);
    session.set_timeout(u32::try_from(step_timeout.as_millis()).unwrap_or(u32::MAX));
    prefer_known_host_key_types(&session, opts);
    prefer_cheap_algorithms(&session, opts);
    session.handshake().map_err(|e| {
        if is_timeout(&e) {
            SshError::ConnectTimeout {
                addr: addr.clone(),
                secs: step_timeout.as_secs().max(1),
            }
        } else {
            session_error(format!("ssh handshake failed: {}", describe(&e)))
        }
    })?;

    tracing::debug!(
        "{}: kex {}, host key {}, cipher {}, mac {}, compression {}",
        opts.addr(),
        session.methods(MethodType::Kex).unwrap_or("?"),
        session.methods(MethodType::HostKey).unwrap_or("?"),
        session.methods(MethodType::CryptCs).unwrap_or("?"),
        session.methods(MethodType::MacCs).unwrap_or("?"),
        session.methods(MethodType::CompCs).unwrap_or("?"),
    );
    let (blob, _) = session
        .host_key()
        .ok_or_else(|| session_error("server sent no host key".into()))?;
    let key = HostKey::from_blob(blob).map_err(session_error)?;
    match &opts.pinned_host_keys {
        Some(pinned) => {
            let offered = crate::knock::spa::fingerprint_of_blob(blob);
            if !pinned.contains(&offered) {
                let text = |f: &[u8; 32]| crate::knock::spa::fingerprint_text(f);
                let err = SshError::HostKeyMismatch {
                    addr: addr.clone(),
                    offered: text(&offered),
                    pinned: pinned.iter().map(text).collect::<Vec<_>>().join(", "),
                };
                tracing::error!("{err}");
                return Err(err);
            }
            known_hosts::replace(&opts.known_hosts, &opts.host, opts.port, &key)?;
        }
        None => {
            known_hosts::check(
                &opts.known_hosts,
                &opts.host,
                opts.port,
                &key,
                opts.host_key_policy,
            )?;
        }
    }

    authenticate(&session, opts)?;
    Ok((session, socket))
}

fn tcp_connect(opts: &ConnectOptions, timeout: Duration) -> Result<TcpStream, SshError> {
    let addr = opts.addr();
    let host = opts.host.trim_start_matches('[').trim_end_matches(']');
    let network_error = |reason: String| SshError::Network {
        addr: addr.clone(),
        reason,
    };
    let addrs: Vec<SocketAddr> = (host, opts.port)
        .to_socket_addrs()
        .map_err(|e| network_error(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut last = network_error(format!("{host} resolved to no address"));
    for sa in addrs {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => {
                last = match e.kind() {
                    ErrorKind::ConnectionRefused => SshError::Refused { addr: addr.clone() },
                    ErrorKind::TimedOut | ErrorKind::WouldBlock => SshError::ConnectTimeout {
                        addr: addr.clone(),
                        secs: timeout.as_secs().max(1),
                    },
                    _ => network_error(e.to_string()),
                }
            }
        }
    }
    Err(last)
}

/// SO_KEEPALIVE probes plus TCP_USER_TIMEOUT: a peer that vanished is noticed within about three
/// keepalive intervals even while we wait for a long command (our SSH keepalives are then unacked).
fn set_tcp_keepalive(fd: RawFd, interval: Duration) {
    let secs = libc::c_int::try_from(interval.as_secs().max(1)).unwrap_or(libc::c_int::MAX);
    let user_timeout_ms = libc::c_uint::try_from(interval.as_millis().saturating_mul(3).max(1000))
        .unwrap_or(libc::c_uint::MAX);
    let set = |level: libc::c_int, name: libc::c_int, value: &[u8]| {
        // SAFETY: setsockopt with a pointer/length pair describing a live buffer.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                value.as_ptr().cast(),
                value.len() as libc::socklen_t,
            )
        }
    };
    set(libc::SOL_SOCKET, libc::SO_KEEPALIVE, &1i32.to_ne_bytes());
    set(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, &secs.to_ne_bytes());
    set(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, &secs.to_ne_bytes());
    set(libc::IPPROTO_TCP, libc::TCP_KEEPCNT, &3i32.to_ne_bytes());
    set(
        libc::IPPROTO_TCP,
        libc::TCP_USER_TIMEOUT,
        &user_timeout_ms.to_ne_bytes(),
    );
}

/// Ciphers in preference order, both directions (see [`CHEAP_FIRST`]).
const CHEAP_CIPHERS: &[&str] = &[
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-ctr",
];

/// Algorithms that cost both ends least, first (a fleet host pays for every handshake with CPU the
/// run needs): curve25519 key exchange, AES-GCM (AES-NI on both sides, no separate MAC), and no
/// compression. The rest of what libssh2 supports stays behind them, so no server is refused.
const CHEAP_FIRST: [(MethodType, &str, &[&str]); 5] = [
    (
        MethodType::Kex,
        "key exchange",
        &[
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "ecdh-sha2-nistp256",
        ],
    ),
    (MethodType::CryptCs, "cipher", CHEAP_CIPHERS),
    (MethodType::CryptSc, "cipher", CHEAP_CIPHERS),
    (MethodType::CompCs, "compression", &["none"]),
    (MethodType::CompSc, "compression", &["none"]),
];

fn prefer_cheap_algorithms(session: &Session, opts: &ConnectOptions) {
    for (method, what, first) in CHEAP_FIRST {
        let Ok(supported) = session.supported_algs(method) else {
            continue;
        };
        let mut prefs: Vec<&str> = first
            .iter()
            .copied()
            .filter(|a| supported.contains(a))
            .collect();
        if matches!(method, MethodType::CompCs | MethodType::CompSc) {
            // Only "none": compression costs CPU on a LAN and libssh2 would not use it anyway.
            prefs.truncate(1);
        } else {
            for a in &supported {
                if !prefs.contains(a) {
                    prefs.push(a);
                }
            }
        }
        if prefs.is_empty() {
            continue;
        }
        if let Err(e) = session.method_pref(method, &prefs.join(",")) {
            tracing::debug!("{}: cannot set the {what} preference: {e}", opts.addr());
        }
    }
}

/// Ask the server for a key type we already know for this host, as OpenSSH does; otherwise a server
/// with several host keys could offer a new type and look "changed".
fn prefer_known_host_key_types(session: &Session, opts: &ConnectOptions) {
    let known = known_hosts::known_types_in_file(&opts.known_hosts, &opts.host, opts.port);
    if known.is_empty() {
        return;
    }
    let Ok(supported) = session.supported_algs(MethodType::HostKey) else {
        return;
    };
    if let Err(e) = session.method_pref(
        MethodType::HostKey,
        &host_key_preference(&known, &supported).join(","),
    ) {
        tracing::debug!("{}: cannot set host key preference: {e}", opts.addr());
    }
}

/// The supported host-key algorithms, those for the `known` key types first (in their order).
fn host_key_preference<'a>(known: &[String], supported: &[&'a str]) -> Vec<&'a str> {
    let mut prefs: Vec<&str> = Vec::new();
    for t in known {
        for alg in host_key_algorithms(t) {
            if let Some(&alg) = supported.iter().find(|s| **s == alg) {
                if !prefs.contains(&alg) {
                    prefs.push(alg);
                }
            }
        }
    }
    for alg in supported {
        if !prefs.contains(alg) {
            prefs.push(alg);
        }
    }
    prefs
}

/// Signature algorithms that prove possession of a key of type `key_type`.
fn host_key_algorithms(key_type: &str) -> Vec<&str> {
    match key_type {
        "ssh-rsa" => vec!["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_known_type_prefers_sha2_signatures() {
        assert_eq!(
            host_key_algorithms("ssh-rsa"),
            vec!["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
        );
        assert_eq!(host_key_algorithms("ssh-ed25519"), vec!["ssh-ed25519"]);
    }

    #[test]
    fn known_key_types_go_first_among_the_supported_ones() {
        let supported = [
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "rsa-sha2-256",
            "ssh-rsa",
        ];
        let known = |types: &[&str]| types.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        for (types, want) in [
            (
                &["ssh-rsa"][..],
                &[
                    "rsa-sha2-256",
                    "ssh-rsa",
                    "ssh-ed25519",
                    "ecdsa-sha2-nistp256",
                ][..],
            ),
            (
                &["ecdsa-sha2-nistp256", "ssh-ed25519"],
                &[
                    "ecdsa-sha2-nistp256",
                    "ssh-ed25519",
                    "rsa-sha2-256",
                    "ssh-rsa",
                ],
            ),
            (&["ssh-dss"], &supported[..]),
        ] {
            assert_eq!(
                host_key_preference(&known(types), &supported),
                want,
                "{types:?}"
            );
        }
    }

    #[test]
    fn only_an_unanswering_sshd_is_worth_waiting_for() {
        let addr = || "h:22".to_string();
        for (e, want) in [
            (SshError::Refused { addr: addr() }, true),
            (
                SshError::ConnectTimeout {
                    addr: addr(),
                    secs: 1,
                },
                true,
            ),
            (
                SshError::Network {
                    addr: addr(),
                    reason: "r".into(),
                },
                true,
            ),
            (
                SshError::Session {
                    addr: addr(),
                    reason: "r".into(),
                },
                true,
            ),
            (
                SshError::Auth {
                    user: "u".into(),
                    addr: addr(),
                    reason: "r".into(),
                },
                false,
            ),
            (
                SshError::HostKeyUnknown {
                    addr: addr(),
                    known_hosts: "k".into(),
                },
                false,
            ),
            (SshError::CommandTimeout { secs: 1 }, false),
        ] {
            assert_eq!(retryable(&e), want, "{e}");
        }
    }
}
