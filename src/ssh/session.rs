//! [`HostSession`]: one SSH session per host and its public API (connect, reconnect, liveness, and
//! [`Remote::exec`]), choosing for each command between the command shell and a channel of its own.
//!
//! Connect/handshake/auth run in libssh2's blocking mode (bounded by the connect timeout; see
//! `connect`). After that the session is switched to non-blocking mode for good (see `transport`):
//! a command drives stdin, stdout and stderr of one channel at a time and waits on the socket with
//! `poll(2)` in the directions libssh2 asks for, so large outputs on both streams never deadlock, a
//! per-command deadline is exact, and the happy path never sleeps.
//!
//! Commands run in the session's command shell (one `/bin/sh` per session, each command in a subshell
//! of it; see `shell_session`), which costs the target far less than a channel, an sshd session
//! process and a login shell per command. Commands with more than 1 MiB of stdin, and hosts where that
//! shell cannot start, get a channel each (see `channel`).

use std::time::{Duration, Instant};

use super::channel::run_in_channel;
use super::connect::connect;
use super::options::ConnectOptions;
use super::shell_session::{self, CommandShell};
use super::transport::{Fail, Transport};
use super::{ExecOutput, Remote, SshError};

/// A live SSH session, owned by one thread.
pub struct HostSession {
    opts: ConnectOptions,
    link: Transport,
    /// The host's command shell; started on first use.
    shell: Option<CommandShell>,
    /// The command shell could not start on this host: every command gets its own channel.
    shell_unavailable: bool,
    /// How the last command went: "shell" or "channel" (for the trace log).
    last_via: &'static str,
    /// What this session cost the target so far (logged when it ends).
    stats: SessionStats,
}

/// Round trips and what was opened for them over a session's life (reconnects included): the
/// numbers `bench/run` prints per task, logged at debug level (`-vvv`, or
/// `KNOCKPLAY_LOG=knockplay::ssh::stats=debug`) when the session ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// SSH connections made (1 + reconnects).
    pub connections: u32,
    /// Round trips: each command (sent, then its end awaited), and each command shell's hello.
    pub commands: u32,
    /// Channels opened: one per command shell, one per command that could not use it.
    pub channels: u32,
}

impl std::fmt::Debug for HostSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostSession")
            .field("addr", &self.opts.addr())
            .field("user", &self.opts.user)
            .field("dead", &self.link.is_dead())
            .finish()
    }
}

impl HostSession {
    /// Connect, verify the host key and authenticate, waiting for sshd if `wait_for_ssh` is set.
    pub fn connect(opts: &ConnectOptions) -> Result<HostSession, SshError> {
        let link = connect(opts)?;
        Ok(HostSession {
            opts: opts.clone(),
            link,
            shell: None,
            shell_unavailable: !opts.command_shell,
            last_via: "",
            stats: SessionStats {
                connections: 1,
                ..SessionStats::default()
            },
        })
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
        self.link.close();
        let fresh = HostSession::connect(opts)?;
        // Keep the caller's own options (the wait is a one-off).
        let keep = std::mem::replace(&mut self.opts, fresh.opts.clone());
        // The totals move to the new connection (the old one's drop logs nothing).
        let mut stats = std::mem::take(&mut self.stats);
        stats.connections += 1;
        *self = fresh;
        self.opts = keep;
        self.stats = stats;
        Ok(())
    }

    /// Round trips and channels so far.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Cheap liveness check without a round trip: the transport has not failed, the peer has not
    /// closed or reset the TCP connection, and a due keepalive could be sent. (A peer that vanished
    /// silently is only noticed by keepalives/TCP timeouts or the next command.)
    pub fn is_alive(&mut self) -> bool {
        self.link.is_alive()
    }

    /// The options this session was opened with.
    pub fn options(&self) -> &ConnectOptions {
        &self.opts
    }

    fn run(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        deadline: Option<Instant>,
    ) -> Result<ExecOutput, Fail> {
        let cap = self.opts.output_cap;
        if shell_session::fits(stdin) && !self.shell_unavailable {
            if let Some(sh) = self.shell.as_mut() {
                if !sh.still_clean(&mut self.link)? {
                    if let Some(old) = self.shell.take() {
                        old.retire(&mut self.link);
                    }
                }
            }
            if self.shell.is_none() {
                // Its hello is a round trip too.
                self.stats.channels += 1;
                self.stats.commands += 1;
                self.shell = CommandShell::start(&mut self.link, deadline)?;
                self.shell_unavailable = self.shell.is_none();
            }
            if let Some(sh) = self.shell.take_if(|sh| sh.takes(stdin)) {
                self.last_via = "shell";
                let (result, still_usable) = sh.run(&mut self.link, cmd, stdin, deadline, cap);
                self.shell = still_usable;
                return result;
            }
        }
        self.last_via = "channel";
        self.stats.channels += 1;
        run_in_channel(&mut self.link, cmd, stdin, deadline, cap)
    }
}

impl Remote for HostSession {
    fn exec(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, SshError> {
        if !self.link.is_alive() {
            // Lost earlier (reported then), or closed by the peer while idle (sshd restarted, the
            // host rebooted): this command has not been sent anywhere yet, so a new connection
            // runs it exactly once.
            self.reconnect()?;
        }
        let timeout = effective_timeout(timeout, self.opts.command_timeout);
        let started = Instant::now();
        let deadline = timeout.map(|t| started + t);
        self.stats.commands += 1;
        let mut result = self.run(cmd, stdin, deadline);
        if let Err(Fail::NotStarted(e)) = &result {
            if self.link.is_dead() {
                // The connection died while idle (sshd restart, NAT timeout) and the command was
                // never sent: reconnecting and sending it once is safe.
                tracing::warn!("{}: {e}; reconnecting", self.opts.name);
                self.reconnect()?;
                self.stats.commands += 1;
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
            Err(Fail::TooLarge(cap)) => Err(SshError::OutputTooLarge { cap }),
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

/// The deadline a command gets: its own timeout, else the session's default
/// ([`ConnectOptions::command_timeout`]). Zero means "none of its own", as in Ansible, so a zero
/// from a playbook cannot lift a bound the operator configured for the session.
fn effective_timeout(call: Option<Duration>, default: Option<Duration>) -> Option<Duration> {
    let set = |t: &Duration| !t.is_zero();
    call.filter(set).or(default.filter(set))
}

impl Drop for HostSession {
    fn drop(&mut self) {
        if !self.link.is_dead() {
            self.link.say_goodbye();
        }
        let s = self.stats;
        if s.connections == 0 {
            return;
        }
        tracing::debug!(
            target: "knockplay::ssh::stats",
            host = self.opts.name.as_str(),
            connections = s.connections,
            commands = s.commands,
            channels = s.channels,
            "session ended"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_gets_its_own_timeout_else_the_session_default() {
        let s = Duration::from_secs;
        for (call, default, want) in [
            (None, None, None),
            (Some(s(2)), None, Some(s(2))),
            (None, Some(s(600)), Some(s(600))),
            (Some(s(2)), Some(s(600)), Some(s(2))),
            (Some(s(900)), Some(s(600)), Some(s(900))),
            // Zero is no timeout of its own: the session's default still holds.
            (Some(s(0)), Some(s(600)), Some(s(600))),
            (Some(s(0)), None, None),
            (None, Some(s(0)), None),
        ] {
            assert_eq!(
                effective_timeout(call, default),
                want,
                "{call:?} {default:?}"
            );
        }
    }

    #[test]
    fn host_session_can_move_to_its_worker_thread() {
        fn send<T: Send>() {}
        send::<HostSession>();
    }
}
