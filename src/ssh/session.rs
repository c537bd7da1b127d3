//! One SSH session per host: connect, authenticate, check host keys, run commands.
//!
//! Connect/handshake/auth run in libssh2's blocking mode (bounded by the connect timeout). After
//! that the session is switched to non-blocking mode for good: `exec` drives stdin, stdout and
//! stderr of one channel at a time and waits on the socket with `poll(2)` in the directions libssh2
//! asks for, so large outputs on both streams never deadlock, a per-command deadline is exact, and
//! the happy path never sleeps.
//!
//! Commands run in the session's command shell (one `/bin/sh` per session, each command in a subshell
//! of it; see `CommandShell`), which costs the target far less than a channel, an sshd session
//! process and a login shell per command. Commands with more than 1 MiB of stdin, and hosts where that
//! shell cannot start, get a channel each.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, ErrorCode, MethodType, Session};

use super::known_hosts::{self, HostKey, HostKeyPolicy};
use super::{ExecOutput, Remote, SshError};

/// Connection parameters for one host.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Label for logs and [`Remote::name`] (inventory hostname); defaults to `host`.
    pub name: String,
    /// Address or DNS name to connect to.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Private key files to try, in order. Empty: `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa`.
    pub private_keys: Vec<PathBuf>,
    /// Also try the identities of a running ssh-agent.
    pub use_agent: bool,
    /// The agent's socket; `None`: `$SSH_AUTH_SOCK`.
    pub agent_socket: Option<PathBuf>,
    /// Bound for one TCP connect and for the SSH handshake + authentication.
    pub connect_timeout: Duration,
    /// Keep retrying (with backoff) while the host refuses, times out or drops the banner, for up to
    /// this long: a host that just booted.
    pub wait_for_ssh: Option<Duration>,
    /// Interval of SSH keepalives (and TCP keepalive probes); zero disables them.
    pub keepalive: Duration,
    pub known_hosts: PathBuf,
    pub host_key_policy: HostKeyPolicy,
    /// Default per-command timeout when `exec` is given none.
    pub command_timeout: Option<Duration>,
    /// Run commands without stdin in one long-lived `/bin/sh` per session (see `CommandShell`);
    /// `false` gives every command its own channel. Default: on, unless the environment variable
    /// `KNOCKPLAY_EXEC_PER_COMMAND=1` is set.
    pub command_shell: bool,
}

impl ConnectOptions {
    /// Defaults: port 22, default keys + agent, 10 s connect timeout, no waiting, 15 s keepalive,
    /// knockplay's default known_hosts, accept-new, no command timeout.
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> ConnectOptions {
        let host = host.into();
        ConnectOptions {
            name: host.clone(),
            host,
            port: 22,
            user: user.into(),
            private_keys: Vec::new(),
            use_agent: true,
            agent_socket: None,
            connect_timeout: Duration::from_secs(10),
            wait_for_ssh: None,
            keepalive: Duration::from_secs(15),
            known_hosts: known_hosts::default_path(),
            host_key_policy: HostKeyPolicy::AcceptNew,
            command_timeout: None,
            command_shell: !shell_disabled_by_env(),
        }
    }

    /// `host:port` (`[v6]:port`) for messages.
    pub fn addr(&self) -> String {
        known_hosts::display_addr(&self.host, self.port)
    }

    /// The key files that will be tried: the configured ones, else the default `~/.ssh/id_*`.
    pub fn key_candidates(&self) -> Vec<PathBuf> {
        if !self.private_keys.is_empty() {
            return self.private_keys.clone();
        }
        let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
            return Vec::new();
        };
        ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|k| Path::new(&home).join(".ssh").join(k))
            .collect()
    }
}

/// A live SSH session, owned by one thread.
pub struct HostSession {
    opts: ConnectOptions,
    session: Session,
    /// A clone of the session's socket, for `poll(2)` and liveness checks.
    socket: TcpStream,
    /// Set when the transport failed; the session must be reconnected.
    dead: bool,
    /// The host's command shell (see `CommandShell`); started on first use.
    shell: Option<CommandShell>,
    /// The command shell could not start on this host: every command gets its own channel.
    shell_unavailable: bool,
    /// How the last command went: "shell" or "channel" (for the trace log).
    last_via: &'static str,
}

/// One `/bin/sh` per session that runs every command, instead of one exec channel
/// (one sshd session process and one login shell) per command: on a busy target an exec costs about
/// 3 ms of its CPU against 0.5 ms for a subshell, and most tasks are one or two commands.
///
/// Each command is sent as one line `( eval '<command>' ) </dev/null; ...` followed by two end marks
/// carrying a random token: `\n<token> <rc>\n` on stdout and `\n<token>\n` on stderr. The subshell
/// keeps `exit`, `cd`, `exec` and variables of one command from touching the next; `</dev/null` keeps
/// the command from reading the lines meant for the shell; a syntax error stays inside `eval`.
/// A command's stdin (file contents) travels as base64 in a here-document piped through `base64 -d`
/// (coreutils); above 1 MiB it gets a channel of its own. `KNOCKPLAY_EXEC_PER_COMMAND=1` turns the
/// shell off.
struct CommandShell {
    channel: ssh2::Channel,
    token: String,
    /// `base64` is there to decode stdin; without it, commands with stdin get a channel.
    stdin_ok: bool,
}

/// `KNOCKPLAY_EXEC_PER_COMMAND=1`: one exec channel per command, as before the command shell.
fn shell_disabled_by_env() -> bool {
    std::env::var_os("KNOCKPLAY_EXEC_PER_COMMAND").is_some_and(|v| !v.is_empty() && v != "0")
}

/// 128 random bits as hex, for the command shell's end marks.
fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !ok {
        // No /dev/urandom: time and pid still make an accidental match in command output unlikely.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id()) << 64;
        bytes = seed.to_le_bytes();
    }
    let mut t = String::from("KP");
    for b in bytes {
        t.push_str(&format!("{b:02x}"));
    }
    t
}

/// The rc in `buf` if it ends with the stdout end mark `\n<token> <rc>\n`; `buf` is cut before it.
fn take_stdout_mark(buf: &mut Vec<u8>, token: &str) -> Option<i32> {
    let body = buf.strip_suffix(b"\n")?;
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 3 {
        return None;
    }
    let (rest, rc) = body.split_at(body.len() - digits);
    let mark = format!("\n{token} ");
    let before = rest.strip_suffix(mark.as_bytes())?;
    let rc = std::str::from_utf8(rc).ok()?.parse().ok()?;
    let keep = before.len();
    buf.truncate(keep);
    Some(rc)
}

/// Whether `buf` ends with the stderr end mark `\n<token>\n`; `buf` is cut before it.
fn take_stderr_mark(buf: &mut Vec<u8>, token: &str) -> bool {
    let mark = format!("\n{token}\n");
    if buf.ends_with(mark.as_bytes()) {
        buf.truncate(buf.len() - mark.len());
        true
    } else {
        false
    }
}

/// Stdin up to this size goes through the command shell (base64 in a here-document); larger input
/// gets a channel of its own, so the shell never holds a large document in memory.
const SHELL_STDIN_MAX: usize = 1 << 20;

/// The line the command shell runs for `cmd`; `stdin` is decoded by `base64 -d` from a here-document
/// (binary-safe; the command sees exactly those bytes, then end of file).
fn shell_line(cmd: &str, stdin: Option<&[u8]>, token: &str) -> String {
    let marks = format!(
        "__kp_rc=$?; printf '\\n%s %s\\n' {token} \"$__kp_rc\"; printf '\\n%s\\n' {token} >&2\n"
    );
    let cmd = crate::shell::quote(cmd);
    match stdin {
        None => format!("( eval {cmd} ) </dev/null; {marks}"),
        Some(data) => format!(
            "base64 -d <<'{token}_IN' | ( eval {cmd} ); {marks}{}{token}_IN\n",
            crate::shell::base64_lines(data)
        ),
    }
}

impl std::fmt::Debug for HostSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSession")
            .field("addr", &self.opts.addr())
            .field("user", &self.opts.user)
            .field("dead", &self.dead)
            .finish()
    }
}

/// First retry delay of `wait_for_ssh`; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long to try sending the close of a timed-out command's channel. sshd confirms only once the
/// command exits, so we do not wait for that; libssh2 frees the channel with the session.
const CLOSE_GRACE: Duration = Duration::from_millis(100);

impl HostSession {
    /// Connect, verify the host key and authenticate, waiting for sshd if `wait_for_ssh` is set.
    pub fn connect(opts: &ConnectOptions) -> Result<HostSession, SshError> {
        let start = Instant::now();
        let deadline = opts.wait_for_ssh.map(|w| start + w);
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let attempt_deadline = deadline.map(|d| d.max(Instant::now() + Duration::from_secs(1)));
            let err = match connect_once(opts, attempt_deadline) {
                Ok(session) => {
                    if attempts > 1 {
                        tracing::info!(
                            "{}: sshd answered after {:.1}s ({attempts} attempts)",
                            opts.addr(),
                            start.elapsed().as_secs_f64()
                        );
                    }
                    return Ok(session);
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

    /// Drop the current connection and connect again with the same options.
    pub fn reconnect(&mut self) -> Result<(), SshError> {
        let opts = self.opts.clone();
        self.replace_with(&opts)
    }

    /// Like [`reconnect`](Self::reconnect), waiting up to `wait` for sshd (`wait_for_connection`).
    pub fn reconnect_within(&mut self, wait: Duration) -> Result<(), SshError> {
        let mut opts = self.opts.clone();
        opts.wait_for_ssh = Some(wait);
        self.replace_with(&opts)
    }

    fn replace_with(&mut self, opts: &ConnectOptions) -> Result<(), SshError> {
        self.dead = true;
        self.say_goodbye();
        let fresh = HostSession::connect(opts)?;
        // Keep the caller's own options (the wait is a one-off).
        let keep = std::mem::replace(&mut self.opts, fresh.opts.clone());
        *self = fresh;
        self.opts = keep;
        Ok(())
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
        if !self.opts.keepalive.is_zero() {
            if let Err(e) = self.session.keepalive_send() {
                if !is_eagain(&e) {
                    self.dead = true;
                    return false;
                }
            }
        }
        true
    }

    /// The options this session was opened with.
    pub fn options(&self) -> &ConnectOptions {
        &self.opts
    }

    fn session_err(&mut self, what: &str, e: &ssh2::Error) -> SshError {
        // A refused channel or request leaves the connection usable; anything else does not.
        let channel_level = matches!(
            e.code(),
            ErrorCode::Session(-27..=-20) | ErrorCode::Session(-32)
        );
        if !channel_level {
            self.dead = true;
        }
        SshError::Session {
            addr: self.opts.addr(),
            reason: format!("{what}: {}", describe(e)),
        }
    }

    /// Wait until the socket is ready in the directions libssh2 is blocked on, or `deadline`.
    /// Also sends keepalives while waiting. Returns `false` when the deadline passed.
    fn wait_socket(&mut self, deadline: Option<Instant>) -> Result<bool, SshError> {
        let dirs = self.session.block_directions();
        let mut wait_ms: i64 = 60_000;
        if !self.opts.keepalive.is_zero() {
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
        poll_fd(self.socket.as_raw_fd(), events, wait_ms as libc::c_int).map_err(|e| {
            self.dead = true;
            SshError::Session {
                addr: self.opts.addr(),
                reason: format!("poll failed: {e}"),
            }
        })?;
        Ok(true)
    }

    /// Repeat a non-blocking libssh2 call until it stops returning EAGAIN.
    fn retry<T>(
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

    /// [`wait_socket`](Self::wait_socket) with the deadline turned into [`Fail::Timeout`].
    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), Fail> {
        match self.wait_socket(deadline) {
            Ok(true) => Ok(()),
            Ok(false) => Err(Fail::Timeout),
            Err(e) => Err(Fail::Err(e)),
        }
    }

    fn run(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        deadline: Option<Instant>,
    ) -> Result<ExecOutput, Fail> {
        if stdin.is_none_or(|d| d.len() <= SHELL_STDIN_MAX) && !self.shell_unavailable {
            if self.shell.is_none() {
                self.shell = self.start_shell(deadline)?;
            }
            let usable = self
                .shell
                .as_ref()
                .is_some_and(|sh| stdin.is_none() || sh.stdin_ok);
            if let Some(mut sh) = self.shell.take_if(|_| usable) {
                self.last_via = "shell";
                let line = shell_line(cmd, stdin, &sh.token);
                let result = self.shell_roundtrip(&mut sh, line.as_bytes(), deadline);
                match &result {
                    Ok(_) if !sh.channel.eof() => self.shell = Some(sh),
                    Ok(_) => {}
                    // The command runs on; the shell is busy with it: start a new one next time.
                    Err(Fail::Timeout) => self.abandon(&mut sh.channel),
                    Err(_) => {}
                }
                return result;
            }
        }
        self.last_via = "channel";
        self.run_in_channel(cmd, stdin, deadline)
    }

    /// Starts the command shell. `Ok(None)` when it cannot work on this host (no `/bin/sh`, a login
    /// shell that does not run it): commands then get a channel each, as without it.
    fn start_shell(&mut self, deadline: Option<Instant>) -> Result<Option<CommandShell>, Fail> {
        let mut channel = self
            .retry(deadline, "cannot open a channel", |s| s.channel_session())
            .map_err(|f| match f {
                Fail::Err(e) => Fail::NotStarted(e),
                other => other,
            })?;
        let mut sh = match self.retry(deadline, "exec request failed", |_| {
            channel.exec("exec /bin/sh")
        }) {
            Ok(()) => CommandShell {
                channel,
                token: random_token(),
                stdin_ok: false,
            },
            Err(Fail::Err(e)) if !self.dead => {
                tracing::debug!("{}: no command shell ({e})", self.opts.name);
                self.shell_unavailable = true;
                return Ok(None);
            }
            Err(Fail::Err(e)) => return Err(Fail::NotStarted(e)),
            Err(other) => return Err(other),
        };
        // One round trip proves the shell runs our lines before a real command is sent to it, and
        // tells whether it can decode stdin.
        let hello = shell_line(
            "command -v base64 >/dev/null || echo no-base64",
            None,
            &sh.token,
        );
        match self.shell_roundtrip(&mut sh, hello.as_bytes(), deadline) {
            Ok(out) if out.rc == 0 && !sh.channel.eof() && out.stdout.is_empty() => {
                sh.stdin_ok = true;
                Ok(Some(sh))
            }
            Ok(out) if out.rc == 0 && !sh.channel.eof() && out.stdout == b"no-base64\n" => {
                tracing::debug!(
                    "{}: no base64: commands with stdin get a channel",
                    self.opts.name
                );
                Ok(Some(sh))
            }
            Err(Fail::Timeout) => {
                self.abandon(&mut sh.channel);
                Err(Fail::Timeout)
            }
            Err(Fail::Err(e)) | Err(Fail::NotStarted(e)) if self.dead => Err(Fail::NotStarted(e)),
            other => {
                tracing::debug!(
                    "{}: the command shell did not answer as expected ({}); one channel per command",
                    self.opts.name,
                    match other {
                        Ok(o) => format!("rc {} stdout {:?}", o.rc, o.stdout_str()),
                        Err(Fail::Err(e)) | Err(Fail::NotStarted(e)) => e.to_string(),
                        Err(Fail::Timeout) => "timeout".into(),
                    }
                );
                self.shell_unavailable = true;
                self.abandon(&mut sh.channel);
                Ok(None)
            }
        }
    }

    /// Sends one line to the command shell and reads until both end marks are in.
    fn shell_roundtrip(
        &mut self,
        sh: &mut CommandShell,
        line: &[u8],
        deadline: Option<Instant>,
    ) -> Result<ExecOutput, Fail> {
        let mut buf = vec![0u8; 64 * 1024];
        // Output that arrived after the previous command's end mark (a background job it started)
        // belongs to no command: drop it rather than give it to this one. (A read error shows again
        // below.)
        let mut late = ExecOutput::default();
        if let Ok(true) = read_ready(&mut sh.channel, &mut buf, &mut late) {
            tracing::debug!(
                "{}: dropped {} bytes of late output from an earlier command",
                self.opts.name,
                late.stdout.len() + late.stderr.len()
            );
        }
        let mut out = ExecOutput::default();
        let (mut written, mut got_out, mut got_err) = (0usize, false, false);
        loop {
            let mut progress = false;
            while written < line.len() {
                match sh.channel.write(&line[written..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        written += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // Nothing of the command reached the shell: safe to send again after a
                    // reconnect (the connection died while idle).
                    Err(e) if written == 0 => {
                        return Err(Fail::NotStarted(
                            self.io_err("writing to the shell failed", &e),
                        ))
                    }
                    Err(e) => {
                        return Err(Fail::Err(self.io_err("writing to the shell failed", &e)))
                    }
                }
            }
            match read_ready(&mut sh.channel, &mut buf, &mut out) {
                Ok(got) => progress |= got,
                Err(e) => return Err(Fail::Err(self.io_err("reading output failed", &e))),
            }
            if !got_out {
                if let Some(rc) = take_stdout_mark(&mut out.stdout, &sh.token) {
                    out.rc = rc;
                    got_out = true;
                }
            }
            if !got_err {
                got_err = take_stderr_mark(&mut out.stderr, &sh.token);
            }
            if got_out && got_err {
                return Ok(out);
            }
            if sh.channel.eof() {
                // The shell itself ended: the command killed it (`kill $$`: in the subshell, `$$` is
                // the session shell) or the target is going down. As with a channel of its own, the
                // shell's exit status or signal is the command's; the next command gets a new shell.
                self.retry(deadline, "waiting for the shell to finish failed", |_| {
                    sh.channel.wait_close()
                })?;
                out.rc = exit_code(&sh.channel);
                return Ok(out);
            }
            if !progress {
                self.wait(deadline)?;
            }
        }
    }

    /// Runs `cmd` on a channel of its own (commands with stdin, or no command shell).
    fn run_in_channel(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        deadline: Option<Instant>,
    ) -> Result<ExecOutput, Fail> {
        let mut channel = self
            .retry(deadline, "cannot open a channel", |s| s.channel_session())
            .map_err(|f| match f {
                Fail::Err(e) => Fail::NotStarted(e),
                other => other,
            })?;
        let result = self
            .retry(deadline, "exec request failed", |_| channel.exec(cmd))
            .and_then(|()| self.pump(&mut channel, stdin, deadline));
        if let Err(Fail::Timeout) = result {
            self.abandon(&mut channel);
        }
        result
    }

    /// Move stdin/stdout/stderr until the remote side closes the channel.
    fn pump(
        &mut self,
        channel: &mut ssh2::Channel,
        stdin: Option<&[u8]>,
        deadline: Option<Instant>,
    ) -> Result<ExecOutput, Fail> {
        let input = stdin.unwrap_or(&[]);
        let mut written = 0usize;
        let mut eof_sent = false;
        let mut out = ExecOutput::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut progress = false;
            while written < input.len() {
                match channel.write(&input[written..]) {
                    Ok(0) => break,
                    Ok(n) => {
                        written += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // The command exited or closed its stdin: like a broken pipe, stop feeding it.
                    Err(_) if channel.eof() => {
                        written = input.len();
                        eof_sent = true;
                    }
                    Err(e) => return Err(Fail::Err(self.io_err("writing stdin failed", &e))),
                }
            }
            if !eof_sent && written == input.len() {
                match channel.send_eof() {
                    Ok(()) => {
                        eof_sent = true;
                        progress = true;
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(_) if channel.eof() => eof_sent = true,
                    Err(e) => return Err(Fail::Err(self.session_err("sending EOF failed", &e))),
                }
            }
            match read_ready(channel, &mut buf, &mut out) {
                Ok(got) => progress |= got,
                Err(e) => return Err(Fail::Err(self.io_err("reading output failed", &e))),
            }
            if channel.eof() {
                break;
            }
            if !progress {
                self.wait(deadline)?;
            }
        }
        // Remote EOF: the exit status arrives before the remote close.
        self.retry(deadline, "waiting for the command to finish failed", |_| {
            channel.wait_close()
        })?;
        out.rc = exit_code(channel);
        // Our side of the close; the remote already closed, so this does not wait.
        self.retry(deadline, "closing the channel failed", |_| channel.close())?;
        Ok(out)
    }

    /// After a timeout: send EOF + close and move on; the session stays usable. The command itself
    /// keeps running on the target until it exits, as with Ansible (the ssh2 crate does not expose
    /// the channel "signal" request that could stop it).
    fn abandon(&mut self, channel: &mut ssh2::Channel) {
        let grace = Some(Instant::now() + CLOSE_GRACE);
        match self.retry(grace, "closing a timed-out channel", |_| channel.close()) {
            Ok(()) => {}
            Err(Fail::Err(e)) | Err(Fail::NotStarted(e)) => tracing::debug!("{e}"),
            // Expected while the command still runs: sshd keeps it going after the close.
            Err(Fail::Timeout) => tracing::debug!(
                "{}: timed-out command still running on the target",
                self.opts.addr()
            ),
        }
    }

    fn io_err(&mut self, what: &str, e: &std::io::Error) -> SshError {
        self.dead = true;
        SshError::Session {
            addr: self.opts.addr(),
            reason: format!("{what}: {e}"),
        }
    }

    fn say_goodbye(&mut self) {
        // Best effort, never waits: the server logs a clean disconnect instead of a reset.
        let _ = self
            .session
            .disconnect(Some(ssh2::DisconnectCode::ByApplication), "bye", None);
    }
}

/// Reads whatever stdout and stderr of `channel` have ready (until libssh2 would block) into `out`.
/// Returns whether anything came.
fn read_ready(
    channel: &mut ssh2::Channel,
    buf: &mut [u8],
    out: &mut ExecOutput,
) -> std::io::Result<bool> {
    let mut progress = false;
    for stream in [0, 1] {
        loop {
            let r = if stream == 0 {
                channel.read(buf)
            } else {
                channel.stderr().read(buf)
            };
            match r {
                Ok(0) => break,
                Ok(n) => {
                    let sink = if stream == 0 {
                        &mut out.stdout
                    } else {
                        &mut out.stderr
                    };
                    sink.extend_from_slice(&buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(progress)
}

/// Why a command did not complete.
enum Fail {
    /// The per-command deadline passed.
    Timeout,
    /// Failed before the command was sent (no channel).
    NotStarted(SshError),
    Err(SshError),
}

impl Remote for HostSession {
    fn exec(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, SshError> {
        if self.dead {
            // Lost earlier (reported then); this command has not been sent anywhere yet.
            self.reconnect()?;
        }
        // Zero means "no timeout", as in Ansible.
        let timeout = timeout
            .or(self.opts.command_timeout)
            .filter(|t| !t.is_zero());
        let started = Instant::now();
        let deadline = timeout.map(|t| started + t);
        let mut result = self.run(cmd, stdin, deadline);
        if let Err(Fail::NotStarted(e)) = &result {
            if self.dead {
                // The connection died while idle (sshd restart, NAT timeout) and the command was
                // never sent: reconnecting and sending it once is safe.
                tracing::warn!("{}: {e}; reconnecting", self.opts.name);
                self.reconnect()?;
                result = self.run(cmd, stdin, deadline);
            }
        }
        // Sizes and time only: a command line may carry secrets (no_log), so its text is never logged.
        tracing::trace!(
            host = self.opts.name.as_str(),
            command_bytes = cmd.len(),
            stdin_bytes = stdin.map_or(0, <[u8]>::len),
            rc = result.as_ref().ok().map(|o| o.rc),
            via = self.last_via,
            micros = started.elapsed().as_micros() as u64,
            "exec"
        );
        match result {
            Ok(out) => Ok(out),
            Err(Fail::Err(e)) | Err(Fail::NotStarted(e)) => Err(e),
            Err(Fail::Timeout) => Err(SshError::CommandTimeout {
                secs: timeout.map_or(0, |t| t.as_millis().div_ceil(1000) as u64),
            }),
        }
    }

    fn name(&self) -> &str {
        &self.opts.name
    }

    fn reconnect(&mut self, wait: Duration) -> Result<(), SshError> {
        self.reconnect_within(wait)
    }

    fn is_alive(&mut self) -> bool {
        HostSession::is_alive(self)
    }
}

impl Drop for HostSession {
    fn drop(&mut self) {
        if !self.dead {
            self.say_goodbye();
        }
    }
}

/// Exit status, or 128 + signal number when the command was killed by a signal (shell convention).
fn exit_code(channel: &ssh2::Channel) -> i32 {
    if let Ok(sig) = channel.exit_signal() {
        if let Some(name) = sig.exit_signal {
            return 128 + signal_number(&name).unwrap_or(127);
        }
    }
    channel.exit_status().unwrap_or(-1)
}

fn signal_number(name: &str) -> Option<i32> {
    let n = match name.trim_start_matches("SIG") {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => return None,
    };
    Some(n)
}

fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(-37)
}

fn describe(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::Session(-13) | ErrorCode::Session(-43) | ErrorCode::Session(-7) => {
            format!("connection lost ({})", e.message())
        }
        _ => e.message().to_string(),
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
fn connect_once(opts: &ConnectOptions, deadline: Option<Instant>) -> Result<HostSession, SshError> {
    let addr = opts.addr();
    let step_timeout = match deadline {
        Some(d) => opts
            .connect_timeout
            .min(d.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(500)),
        None => opts.connect_timeout,
    };
    let tcp = tcp_connect(opts, step_timeout)?;
    let socket = tcp.try_clone().map_err(|e| SshError::Network {
        addr: addr.clone(),
        reason: format!("cannot clone socket: {e}"),
    })?;
    let _ = tcp.set_nodelay(true);
    if !opts.keepalive.is_zero() {
        set_tcp_keepalive(tcp.as_raw_fd(), opts.keepalive);
    }

    let mut session = Session::new().map_err(|e| SshError::Session {
        addr: addr.clone(),
        reason: format!("cannot create ssh session: {e}"),
    })?;
    session.set_tcp_stream(tcp);
    session.set_blocking(true);
    session.set_timeout(u32::try_from(step_timeout.as_millis()).unwrap_or(u32::MAX));
    prefer_known_host_key_types(&session, opts);
    session.handshake().map_err(|e| {
        if e.code() == ErrorCode::Session(-9) {
            SshError::ConnectTimeout {
                addr: addr.clone(),
                secs: step_timeout.as_secs().max(1),
            }
        } else {
            SshError::Session {
                addr: addr.clone(),
                reason: format!("ssh handshake failed: {}", describe(&e)),
            }
        }
    })?;

    let (blob, _) = session.host_key().ok_or_else(|| SshError::Session {
        addr: addr.clone(),
        reason: "server sent no host key".into(),
    })?;
    let key = HostKey::from_blob(blob).map_err(|reason| SshError::Session {
        addr: addr.clone(),
        reason,
    })?;
    known_hosts::check(
        &opts.known_hosts,
        &opts.host,
        opts.port,
        &key,
        opts.host_key_policy,
    )?;

    authenticate(&session, opts)?;

    if !opts.keepalive.is_zero() {
        session.set_keepalive(
            true,
            u32::try_from(opts.keepalive.as_secs().max(1)).unwrap_or(u32::MAX),
        );
    }
    session.set_blocking(false);
    Ok(HostSession {
        opts: opts.clone(),
        session,
        socket,
        dead: false,
        shell: None,
        shell_unavailable: !opts.command_shell,
        last_via: "",
    })
}

fn tcp_connect(opts: &ConnectOptions, timeout: Duration) -> Result<TcpStream, SshError> {
    let addr = opts.addr();
    let host = opts.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (host, opts.port)
        .to_socket_addrs()
        .map_err(|e| SshError::Network {
            addr: addr.clone(),
            reason: format!("cannot resolve {host}: {e}"),
        })?
        .collect();
    let mut last = SshError::Network {
        addr: addr.clone(),
        reason: format!("{host} resolved to no address"),
    };
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
                    _ => SshError::Network {
                        addr: addr.clone(),
                        reason: e.to_string(),
                    },
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
    let mut prefs: Vec<&str> = Vec::new();
    for t in &known {
        for alg in host_key_algorithms(t) {
            if supported.contains(&alg) && !prefs.contains(&alg) {
                prefs.push(alg);
            }
        }
    }
    for alg in &supported {
        if !prefs.contains(alg) {
            prefs.push(alg);
        }
    }
    if let Err(e) = session.method_pref(MethodType::HostKey, &prefs.join(",")) {
        tracing::debug!("{}: cannot set host key preference: {e}", opts.addr());
    }
}

/// Signature algorithms that prove possession of a key of type `key_type`.
fn host_key_algorithms(key_type: &str) -> Vec<&str> {
    match key_type {
        "ssh-rsa" => vec!["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        other => vec![other],
    }
}

/// Try agent identities and key files; the error lists everything that was tried and why it failed.
fn authenticate(session: &Session, opts: &ConnectOptions) -> Result<(), SshError> {
    let addr = opts.addr();
    let user = opts.user.as_str();
    let mut tried: Vec<String> = Vec::new();
    let explicit_keys = !opts.private_keys.is_empty();
    // Explicit keys first (so agent keys do not exhaust MaxAuthTries); defaults after the agent,
    // like OpenSSH.
    if explicit_keys {
        if try_key_files(session, opts, &mut tried)? {
            return Ok(());
        }
        if opts.use_agent && try_agent(session, opts, &mut tried)? {
            return Ok(());
        }
    } else {
        if opts.use_agent && try_agent(session, opts, &mut tried)? {
            return Ok(());
        }
        if try_key_files(session, opts, &mut tried)? {
            return Ok(());
        }
    }
    if tried.is_empty() {
        let looked: Vec<String> = opts
            .key_candidates()
            .iter()
            .map(|k| k.display().to_string())
            .collect();
        tried.push(format!(
            "nothing: no key file found (looked for {}) and no ssh-agent; pass --private-key",
            if looked.is_empty() {
                "none: HOME is not set".to_string()
            } else {
                looked.join(", ")
            }
        ));
    }
    Err(SshError::Auth {
        user: user.to_string(),
        addr,
        reason: format!("tried {}", tried.join("; ")),
    })
}

fn auth_timeout(opts: &ConnectOptions, e: &ssh2::Error) -> Option<SshError> {
    (e.code() == ErrorCode::Session(-9)).then(|| SshError::ConnectTimeout {
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
        warn_if_readable_by_others(&key);
        match session.userauth_pubkey_file(&opts.user, None, &key, None) {
            Ok(()) if session.authenticated() => return Ok(true),
            Ok(()) => tried.push(format!("key {shown} (not accepted)")),
            Err(e) => {
                if let Some(t) = auth_timeout(opts, &e) {
                    return Err(t);
                }
                let why = if key_file_is_encrypted(&key) {
                    "encrypted; load it into ssh-agent".to_string()
                } else {
                    match e.code() {
                        ErrorCode::Session(-18) | ErrorCode::Session(-19) => "rejected".into(),
                        ErrorCode::Session(-16) => format!("unusable: {}", e.message()),
                        _ => describe(&e),
                    }
                };
                tried.push(format!("key {shown} ({why})"));
            }
        }
    }
    Ok(false)
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

/// True for PEM keys with `ENCRYPTED` and OpenSSH keys whose cipher is not `none`.
/// Warns once per key file that group or others can read: anyone who can read it can log in where
/// it is accepted (OpenSSH refuses such keys; knockplay uses them and says so).
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
    fn defaults() {
        let o = ConnectOptions::new("10.0.0.5", "deploy");
        assert_eq!(o.port, 22);
        assert_eq!(o.name, "10.0.0.5");
        assert_eq!(o.addr(), "10.0.0.5:22");
        assert_eq!(o.host_key_policy, HostKeyPolicy::AcceptNew);
        assert!(o.use_agent);
        let keys = o.key_candidates();
        if std::env::var_os("HOME").is_some() {
            assert_eq!(keys.len(), 3);
            assert!(keys[0].ends_with(".ssh/id_ed25519"));
            assert!(keys[2].ends_with(".ssh/id_rsa"));
        }
        let mut o = o;
        o.private_keys = vec![PathBuf::from("/k")];
        assert_eq!(o.key_candidates(), vec![PathBuf::from("/k")]);
        let v6 = ConnectOptions::new("::1", "u");
        assert_eq!(v6.addr(), "[::1]:22");
    }

    #[test]
    fn host_session_can_move_to_its_worker_thread() {
        fn send<T: Send>() {}
        send::<HostSession>();
    }

    #[test]
    fn signals_map_to_shell_codes() {
        assert_eq!(signal_number("TERM"), Some(15));
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("WINCH"), None);
    }

    #[test]
    fn rsa_known_type_prefers_sha2_signatures() {
        assert_eq!(
            host_key_algorithms("ssh-rsa"),
            vec!["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]
        );
        assert_eq!(host_key_algorithms("ssh-ed25519"), vec!["ssh-ed25519"]);
    }

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
    fn end_marks_are_found_only_at_the_end_and_cut_off() {
        let t = "KPabc";
        let mut out = b"data\nKPabc 3\n".to_vec();
        assert_eq!(take_stdout_mark(&mut out, t), Some(3));
        assert_eq!(out, b"data");
        // Output without a final newline keeps its last byte; empty output stays empty.
        let mut out = b"no newline\nKPabc 0\n".to_vec();
        assert_eq!(take_stdout_mark(&mut out, t), Some(0));
        assert_eq!(out, b"no newline");
        let mut out = b"\nKPabc 255\n".to_vec();
        assert_eq!(take_stdout_mark(&mut out, t), Some(255));
        assert!(out.is_empty());
        // Not (yet) complete, another token, or the mark in the middle: no end.
        for partial in [
            &b"data\nKPabc 3"[..],
            b"data\nKPabc \n",
            b"data\nKPxyz 3\n",
            b"\nKPabc 3\nmore\n",
            b"KPabc 3\n",
        ] {
            let mut out = partial.to_vec();
            assert_eq!(take_stdout_mark(&mut out, t), None, "{partial:?}");
            assert_eq!(out, partial);
        }
        let mut err = b"warn\n\nKPabc\n".to_vec();
        assert!(take_stderr_mark(&mut err, t));
        assert_eq!(err, b"warn\n");
        let mut err = b"KPabc\n".to_vec();
        assert!(!take_stderr_mark(&mut err, t));
    }

    #[test]
    fn a_shell_line_quotes_the_command_as_one_word() {
        let line = shell_line("echo 'a b'; exit 3", None, "KPt");
        assert_eq!(
            line,
            "( eval 'echo '\\''a b'\\''; exit 3' ) </dev/null; __kp_rc=$?; printf '\\n%s %s\\n' KPt \"$__kp_rc\"; \
             printf '\\n%s\\n' KPt >&2\n"
        );
        let t = random_token();
        assert!(t.len() == 34 && t.starts_with("KP"), "{t}");
        assert_ne!(t, random_token());
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
}
