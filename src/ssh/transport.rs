//! A connected libssh2 session in non-blocking mode and its socket: waiting with `poll(2)` in the
//! directions libssh2 asks for (sending keepalives meanwhile), repeating calls that would block,
//! turning libssh2 and I/O errors into [`SshError`], and remembering when the connection is dead.

use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::io::{AsRawFd, RawFd};
use std::time::Instant;

use ssh2::{BlockDirections, Session};

use super::options::ConnectOptions;
use super::ssh2_errors::{describe, is_channel_level, is_eagain};
use super::SshError;

/// Why a command did not complete.
pub enum Fail {
    /// The per-command deadline passed.
    Timeout,
    /// Failed before the command was sent (no channel).
    NotStarted(SshError),
    Err(SshError),
    /// The command's output went past this many bytes; the rest was not read.
    TooLarge(usize),
}

impl Fail {
    /// The same failure, known to have happened before anything of the command was sent.
    pub fn not_started(self) -> Fail {
        match self {
            Fail::Err(e) => Fail::NotStarted(e),
            other => other,
        }
    }
}

/// The connection of one [`HostSession`](super::HostSession), after connect and authentication.
pub struct Transport {
    session: Session,
    /// A clone of the session's socket, for `poll(2)` and liveness checks.
    socket: OwnedFd,
    /// Set when the transport failed; the session must be reconnected.
    dead: bool,
    /// `host:port` for error messages.
    addr: String,
    /// The host's label for logs.
    name: String,
    /// SSH keepalives are on: send them while waiting, and check they can still be sent.
    keepalive: bool,
}

impl Transport {
    /// Wraps a session that is connected, authenticated and already switched to non-blocking mode.
    pub fn new(session: Session, socket: OwnedFd, opts: &ConnectOptions) -> Transport {
        Transport {
            session,
            socket,
            dead: false,
            addr: opts.addr(),
            name: opts.name.clone(),
            keepalive: !opts.keepalive.is_zero(),
        }
    }

    /// `host:port` for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The host's label for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The connection failed earlier: nothing more can be sent on it.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Cheap liveness check without a round trip: the transport has not failed, the peer has not
    /// closed or reset the TCP connection, and a due keepalive could be sent. (A peer that vanished
    /// silently is only noticed by keepalives/TCP timeouts or the next command.)
    pub fn is_alive(&mut self) -> bool {
        if self.dead {
            return false;
        }
        // POLLRDHUP: the peer closed its side (FIN seen), even if a final message (disconnect) is
        // still unread; POLLHUP/POLLERR: reset or error.
        let mut pfd = libc::pollfd {
            fd: self.socket.as_raw_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        if rc < 0
            || pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
        {
            self.dead = true;
            return false;
        }
        if self.keepalive {
            if let Err(e) = self.session.keepalive_send() {
                if !is_eagain(&e) {
                    self.dead = true;
                    return false;
                }
            }
        }
        true
    }

    /// A failure that leaves the connection unusable.
    fn broken(&mut self, reason: String) -> SshError {
        self.dead = true;
        SshError::Session {
            addr: self.addr.clone(),
            reason,
        }
    }

    /// A libssh2 error of `what`; the connection is dead unless only a channel or request was refused.
    pub fn session_err(&mut self, what: &str, e: &ssh2::Error) -> SshError {
        let reason = format!("{what}: {}", describe(e));
        if is_channel_level(e) {
            SshError::Session {
                addr: self.addr.clone(),
                reason,
            }
        } else {
            self.broken(reason)
        }
    }

    /// An I/O error on a channel of `what`: the connection is dead.
    pub fn io_err(&mut self, what: &str, e: &std::io::Error) -> SshError {
        self.broken(format!("{what}: {e}"))
    }

    /// Wait until the socket is ready in the directions libssh2 is blocked on, or `deadline`.
    /// Also sends keepalives while waiting. Returns `false` when the deadline passed.
    fn wait_socket(&mut self, deadline: Option<Instant>) -> Result<bool, SshError> {
        let dirs = self.session.block_directions();
        let mut wait_ms: i64 = 60_000;
        if self.keepalive {
            match self.session.keepalive_send() {
                Ok(next) => wait_ms = wait_ms.min(i64::from(next.max(1)) * 1000),
                Err(e) if is_eagain(&e) => wait_ms = wait_ms.min(1000),
                Err(e) => return Err(self.session_err("keepalive failed", &e)),
            }
        }
        if let Some(d) = deadline {
            let now = Instant::now();
            if now >= d {
                return Ok(false);
            }
            // Round up so we do not spin on sub-millisecond remainders.
            let left = (d - now).as_micros().div_ceil(1000);
            wait_ms = wait_ms.min(i64::try_from(left).unwrap_or(i64::MAX));
        }
        let events = match dirs {
            BlockDirections::Inbound => libc::POLLIN,
            BlockDirections::Outbound => libc::POLLOUT,
            BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
            // libssh2 did not say: data may already be buffered, look again soon.
            BlockDirections::None => {
                wait_ms = wait_ms.min(1);
                libc::POLLIN
            }
        };
        poll_fd(self.socket.as_raw_fd(), events, wait_ms as libc::c_int)
            .map_err(|e| self.broken(format!("poll failed: {e}")))?;
        Ok(true)
    }

    /// [`wait_socket`](Self::wait_socket) with the deadline turned into [`Fail::Timeout`].
    pub fn wait(&mut self, deadline: Option<Instant>) -> Result<(), Fail> {
        match self.wait_socket(deadline) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Fail::Timeout),
            Err(e) => Err(Fail::Err(e)),
        }
    }

    /// Repeat a non-blocking libssh2 call until it stops returning EAGAIN.
    pub fn retry<T>(
        &mut self,
        deadline: Option<Instant>,
        what: &str,
        mut op: impl FnMut(&Session) -> Result<T, ssh2::Error>,
    ) -> Result<T, Fail> {
        loop {
            match op(&self.session) {
                Ok(v) => return Ok(v),
                Err(e) if is_eagain(&e) => self.wait(deadline)?,
                Err(e) => return Err(Fail::Err(self.session_err(what, &e))),
            }
        }
    }

    /// A new session channel; a failure here means no command was sent.
    pub fn open_channel(&mut self, deadline: Option<Instant>) -> Result<ssh2::Channel, Fail> {
        self.retry(deadline, "cannot open a channel", |s| s.channel_session())
            .map_err(Fail::not_started)
    }

    /// Best effort, never waits: the server logs a clean disconnect instead of a reset.
    pub fn say_goodbye(&mut self) {
        let _ = self
            .session
            .disconnect(Some(ssh2::DisconnectCode::ByApplication), "bye", None);
    }

    /// Marks the connection as given up (before a reconnect), so it is not used or closed again.
    pub fn close(&mut self) {
        self.dead = true;
        self.say_goodbye();
    }
}

/// `poll(2)` one descriptor; EINTR counts as ready (the caller re-checks).
fn poll_fd(fd: RawFd, events: libc::c_short, timeout_ms: libc::c_int) -> std::io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if rc < 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() != ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}
