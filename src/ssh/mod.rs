//! SSH to targets: one `ssh2::Session` per host, owned by one thread.
//!
//! - `session`  [`HostSession`]: connect, reconnect, liveness, and [`Remote::exec`], which runs a
//!   command in the command shell or on a channel of its own and reconnects by itself only when the
//!   connection is known dead (or found closed by the peer) *before* a command is sent
//! - `options`  [`ConnectOptions`] and the key files that will be tried
//! - `connect`  TCP connect with timeout and keepalive, handshake with a host-key algorithm
//!   preference, host-key check, `--wait-for-ssh` backoff
//! - `auth`     authentication (agent, key files) and key-file checks (encrypted, open to others)
//! - `transport` the non-blocking session: `poll(2)` waits, EAGAIN retries, error mapping, liveness
//! - `channel`  one command on a channel of its own: stdin/stdout/stderr pump, exit code or signal,
//!   abandoning a timed-out channel
//! - `shell_session` the session's command shell (one `/bin/sh` per session): the I/O loop that
//!   drives the framer over its channel, and a new shell whenever output of an earlier command's
//!   background job could reach the next one
//! - `framer`   the command shell's protocol, pure: the line sent for a command (a token of its own)
//!   and the result cut out of the output between its start and end marks, up to the output cap
//! - `ssh2_errors` what libssh2's numeric error codes mean here
//! - `known_hosts` knockplay's own known_hosts file and the host-key policy
//! - `become_`  pure wrapping of a command for sudo/su with environment; the script goes on stdin,
//!   never in their arguments
//!
//! Files are written by streaming bytes over `exec` stdin (`cat > tmp && mv tmp dest`), which works
//! with become in one round trip; there is no SFTP.
//!
//! Everything above this layer talks to a target through the [`Remote`] trait, so modules and the
//! runner are tested with a fake in unit tests and with real sshd in end-to-end tests.
//!
//! A target is not trusted: every command has a deadline when one is given (the command shell's own
//! start-up and close waits always have one), output past [`ConnectOptions::output_cap`] fails the
//! command without being held, and nothing a command leaves running can write into a later
//! command's result (`tests/ssh_hostile.rs`).

use std::time::Duration;

mod auth;
pub mod become_;
mod channel;
pub mod config;
mod connect;
pub mod framer;
mod jump;
pub mod known_hosts;
pub mod local;
pub mod options;
pub mod session;
mod shell_session;
mod ssh2_errors;
mod transport;

pub use become_::Become;
pub use known_hosts::HostKeyPolicy;
pub use local::LocalShell;
pub use options::ConnectOptions;
pub use session::HostSession;

/// What a command left behind on the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub rc: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Bytes as text: moved when valid UTF-8, replacement characters otherwise.
fn into_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// One of a command's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl ExecOutput {
    /// Appends a chunk of output to `stream`.
    pub fn append(&mut self, stream: Stream, bytes: &[u8]) {
        match stream {
            Stream::Stdout => self.stdout.extend_from_slice(bytes),
            Stream::Stderr => self.stderr.extend_from_slice(bytes),
        }
    }
    /// The first line of stdout (no copy of the rest).
    pub fn stdout_first_line(&self) -> String {
        let end = self
            .stdout
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(self.stdout.len());
        String::from_utf8_lossy(&self.stdout[..end])
            .trim_end_matches('\r')
            .to_string()
    }
    /// Stdout as text, moved out (no copy when it is UTF-8).
    pub fn take_stdout(&mut self) -> String {
        into_text(std::mem::take(&mut self.stdout))
    }
    /// Stderr as text, moved out (no copy when it is UTF-8).
    pub fn take_stderr(&mut self) -> String {
        into_text(std::mem::take(&mut self.stderr))
    }
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn ok(&self) -> bool {
        self.rc == 0
    }
}

/// Why a host could not be reached or a command could not be run.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("connection refused by {addr}")]
    Refused { addr: String },
    #[error("timed out connecting to {addr} after {secs}s")]
    ConnectTimeout { addr: String, secs: u64 },
    #[error("cannot reach {addr}: {reason}")]
    Network { addr: String, reason: String },
    #[error("authentication failed for {user}@{addr}: {reason}")]
    Auth {
        user: String,
        addr: String,
        reason: String,
    },
    #[error("HOST KEY CHANGED for {addr}: known_hosts {known_hosts} has {expected}, host offered {offered}; refusing to connect (possible man-in-the-middle). If the host was legitimately rebuilt, remove the old entry: ssh-keygen -R '{host_pattern}' -f {known_hosts}")]
    HostKeyChanged {
        addr: String,
        known_hosts: String,
        expected: String,
        offered: String,
        /// The known_hosts host field (`host` or `[host]:port`).
        host_pattern: String,
    },
    #[error("host_key_mismatch: {addr} offered host key {offered}, but the knock that asked for this run carried {pinned}; refusing before authentication")]
    HostKeyMismatch {
        addr: String,
        offered: String,
        pinned: String,
    },
    #[error("host key for {addr} is not in {known_hosts} and host key checking is strict (add it there, or use accept-new)")]
    HostKeyUnknown { addr: String, known_hosts: String },
    #[error("known_hosts file {path}: {reason}")]
    KnownHosts { path: String, reason: String },
    #[error("command timed out after {secs}s (abandoned; it may still be running on the target)")]
    CommandTimeout { secs: u64 },
    #[error("command output went past the cap of {} (stdout and stderr together); the rest was discarded and the command abandoned", show_bytes(*cap))]
    OutputTooLarge {
        /// [`ConnectOptions::output_cap`], in bytes.
        cap: usize,
    },
    #[error("ssh session to {addr} failed: {reason}")]
    Session { addr: String, reason: String },
}

impl SshError {
    /// True when the failure means the host is unreachable (as opposed to a failed command).
    pub fn is_unreachable(&self) -> bool {
        !matches!(
            self,
            SshError::CommandTimeout { .. } | SshError::OutputTooLarge { .. }
        )
    }
}

/// A byte count for messages: whole MiB or KiB when it is one, else bytes.
fn show_bytes(n: usize) -> String {
    const KIB: usize = 1 << 10;
    const MIB: usize = 1 << 20;
    match n {
        0 => "0 bytes".into(),
        n if n % MIB == 0 => format!("{} MiB", n / MIB),
        n if n % KIB == 0 => format!("{} KiB", n / KIB),
        n => format!("{n} bytes"),
    }
}

/// A target that runs shell commands. Implemented by [`HostSession`] (real SSH) and by fakes in tests.
pub trait Remote {
    /// Run `cmd` with POSIX `sh -c` semantics (in a subshell of the session's `/bin/sh`, or in a
    /// `/bin/sh` on a channel of its own when `stdin` is large), feeding `stdin` if given, and wait
    /// for it to finish (or for `timeout`; `None` or zero: the session's default, if any). `cmd` is
    /// final: become/env wrapping is already done. Output past the session's cap fails it with
    /// [`SshError::OutputTooLarge`].
    fn exec(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, SshError>;

    /// A label for logs and messages (inventory hostname or address).
    fn name(&self) -> &str;

    /// Drop the connection and connect again, waiting up to `wait` for the host's sshd
    /// (`wait_for_connection`, reboots). Targets without a connection (fakes) only check that a
    /// command runs.
    fn reconnect(&mut self, wait: Duration) -> Result<(), SshError> {
        self.exec("true", None, Some(wait)).map(|_| ())
    }

    /// Cheap check, without a round trip, that the connection still looks usable.
    fn is_alive(&mut self) -> bool {
        true
    }
}
