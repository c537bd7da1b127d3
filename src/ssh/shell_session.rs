//! The session's command shell: one long-lived `/bin/sh` per session that runs every command,
//! driven over its channel by the I/O loop here; the protocol itself is the pure
//! [`Framer`](super::framer::Framer).
//!
//! One exec channel per command costs one sshd session process and one login shell: on a busy target
//! about 3 ms of its CPU against 0.5 ms for a subshell, and most tasks are one or two commands.
//! A command's stdin (file contents) travels as base64 in a here-document piped through `base64 -d`
//! (coreutils); above 1 MiB it gets a channel of its own. `KNOCKPLAY_EXEC_PER_COMMAND=1` turns the
//! shell off.

use std::io::Read;
use std::time::Instant;

use super::channel::{abandon, exit_code, read_ready, write_ready};
use super::framer::{hello_answer, Framer};
use super::transport::{Fail, Transport};
use super::ExecOutput;

/// Stdin up to this size goes through the command shell (base64 in a here-document); larger input
/// gets a channel of its own, so the shell never holds a large document in memory.
const SHELL_STDIN_MAX: usize = 1 << 20;

/// Whether a command with this stdin may go through a command shell at all.
pub fn fits(stdin: Option<&[u8]>) -> bool {
    stdin.is_none_or(|d| d.len() <= SHELL_STDIN_MAX)
}

/// A running `/bin/sh` on its own channel, waiting for the next command line.
pub struct CommandShell {
    channel: ssh2::Channel,
    framer: Framer,
    /// `base64` is there to decode stdin; without it, commands with stdin get a channel.
    stdin_ok: bool,
}

impl CommandShell {
    /// Starts the command shell. `Ok(None)` when it cannot work on this host (no `/bin/sh`, a login
    /// shell that does not run it): commands then get a channel each, as without it.
    pub fn start(
        link: &mut Transport,
        deadline: Option<Instant>,
    ) -> Result<Option<CommandShell>, Fail> {
        let mut channel = link.open_channel(deadline)?;
        match link.retry(deadline, "exec request failed", |_| {
            channel.exec("exec /bin/sh")
        }) {
            Ok(()) => {}
            Err(Fail::Err(e)) if !link.is_dead() => {
                tracing::debug!("{}: no command shell ({e})", link.name());
                return Ok(None);
            }
            Err(other) => return Err(other.not_started()),
        }
        let mut sh = CommandShell {
            channel,
            framer: Framer::new(random_token()),
            stdin_ok: false,
        };
        // One round trip proves the shell runs our lines before a real command is sent to it, and
        // tells whether it can decode stdin.
        let hello = sh.framer.hello_line();
        let result = sh.roundtrip(link, hello.as_bytes(), deadline);
        let answer = match &result {
            Ok(out) if !sh.channel.eof() => hello_answer(out),
            _ => None,
        };
        match (result, answer) {
            (_, Some(stdin_ok)) => {
                if !stdin_ok {
                    tracing::debug!(
                        "{}: no base64: commands with stdin get a channel",
                        link.name()
                    );
                }
                sh.stdin_ok = stdin_ok;
                Ok(Some(sh))
            }
            (Err(Fail::Timeout), _) => {
                abandon(link, &mut sh.channel);
                Err(Fail::Timeout)
            }
            (Err(Fail::Err(e) | Fail::NotStarted(e)), _) if link.is_dead() => {
                Err(Fail::NotStarted(e))
            }
            (other, _) => {
                tracing::debug!(
                    "{}: the command shell did not answer as expected ({}); one channel per command",
                    link.name(),
                    unexpected_answer(&other)
                );
                abandon(link, &mut sh.channel);
                Ok(None)
            }
        }
    }

    /// Whether this shell can run a command with this stdin.
    pub fn takes(&self, stdin: Option<&[u8]>) -> bool {
        stdin.is_none() || self.stdin_ok
    }

    /// Runs `cmd` in a subshell of this shell. Gives the shell back while it can run the next command.
    pub fn run(
        mut self,
        link: &mut Transport,
        cmd: &str,
        stdin: Option<&[u8]>,
        deadline: Option<Instant>,
    ) -> (Result<ExecOutput, Fail>, Option<CommandShell>) {
        let line = self.framer.line(cmd, stdin);
        let result = self.roundtrip(link, line.as_bytes(), deadline);
        let keep = match &result {
            Ok(_) => !self.channel.eof(),
            // The command runs on; the shell is busy with it: start a new one next time.
            Err(Fail::Timeout) => {
                abandon(link, &mut self.channel);
                false
            }
            Err(_) => false,
        };
        (result, keep.then_some(self))
    }

    /// Sends one line to the command shell and reads until both end marks are in.
    fn roundtrip(
        &mut self,
        link: &mut Transport,
        line: &[u8],
        deadline: Option<Instant>,
    ) -> Result<ExecOutput, Fail> {
        let mut buf = vec![0u8; 64 * 1024];
        self.drop_late_output(link.name(), &mut buf);
        let mut reply = self.framer.reply();
        let mut written = 0usize;
        loop {
            let mut progress = match write_ready(&mut self.channel, line, &mut written) {
                Ok(wrote) => wrote,
                // Nothing of the command reached the shell: safe to send again after a
                // reconnect (the connection died while idle).
                Err(e) if written == 0 => {
                    return Err(Fail::NotStarted(
                        link.io_err("writing to the shell failed", &e),
                    ))
                }
                Err(e) => return Err(Fail::Err(link.io_err("writing to the shell failed", &e))),
            };
            match read_ready(&mut self.channel, &mut buf, |stream, bytes| {
                reply.feed(stream, bytes)
            }) {
                Ok(got) => progress |= got,
                Err(e) => return Err(Fail::Err(link.io_err("reading output failed", &e))),
            }
            if let Some(out) = reply.result() {
                return Ok(out);
            }
            if self.channel.eof() {
                // The shell itself ended: the command killed it (`kill $$`: in the subshell, `$$` is
                // the session shell) or the target is going down. As with a channel of its own, the
                // shell's exit status or signal is the command's; the next command gets a new shell.
                let channel = &mut self.channel;
                link.retry(deadline, "waiting for the shell to finish failed", |_| {
                    channel.wait_close()
                })?;
                return Ok(reply.cut_short(exit_code(&self.channel)));
            }
            if !progress {
                link.wait(deadline)?;
            }
        }
    }

    /// Output that arrived after the previous command's end mark (a background job it started)
    /// belongs to no command: drop it rather than give it to the next one. (A read error shows again
    /// in the round trip.)
    fn drop_late_output(&mut self, host: &str, buf: &mut [u8]) {
        let mut late = 0usize;
        if let Ok(true) = read_ready(&mut self.channel, buf, |_, bytes| late += bytes.len()) {
            tracing::debug!("{host}: dropped {late} bytes of late output from an earlier command");
        }
    }
}

/// For the log: what the hello command gave instead of the expected answer.
fn unexpected_answer(answer: &Result<ExecOutput, Fail>) -> String {
    match answer {
        Ok(o) => format!("rc {} stdout {:?}", o.rc, o.stdout_str()),
        Err(Fail::Err(e)) | Err(Fail::NotStarted(e)) => e.to_string(),
        Err(Fail::Timeout) => "timeout".into(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_shaped_for_the_marks() {
        let t = random_token();
        assert!(t.len() == 34 && t.starts_with("KP"), "{t}");
        assert_ne!(t, random_token());
    }

    #[test]
    fn only_small_stdin_goes_through_the_shell() {
        assert!(fits(None));
        assert!(fits(Some(b"")));
        assert!(fits(Some(&vec![0u8; SHELL_STDIN_MAX])));
        assert!(!fits(Some(&vec![0u8; SHELL_STDIN_MAX + 1])));
    }
}
