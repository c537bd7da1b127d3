//! The session's command shell: one long-lived `/bin/sh` per session that runs every command,
//! driven over its channel by the I/O loop here; the protocol itself is the pure
//! [`Framer`](super::framer::Framer).
//!
//! One exec channel per command costs one sshd session process and one login shell: on a busy target
//! about 3 ms of its CPU against 0.5 ms for a subshell, and most tasks are one or two commands.
//! A command's stdin (file contents) travels as base64 in a here-document piped through `base64 -d`
//! (coreutils); above 1 MiB it gets a channel of its own. `KNOCKPLAY_EXEC_PER_COMMAND=1` turns the
//! shell off.
//!
//! A shell runs another command only while it is known clean: the last reply had nothing that
//! belongs to no command and its command left no background job, and nothing arrived while it was
//! idle. Otherwise (a job of an earlier command may still write into the shell's stdout) it is
//! closed and the next command gets a new shell, so such output is never taken for a later
//! command's. A shell whose command timed out or printed more than the cap is closed too.

use std::io::Read;
use std::time::{Duration, Instant};

use super::channel::{abandon, exit_code, read_ready, write_ready};
use super::framer::{hello_answer, Framer, Progress, Reply};
use super::transport::{Fail, Transport};
use super::ExecOutput;

/// Stdin up to this size goes through the command shell (base64 in a here-document); larger input
/// gets a channel of its own, so the shell never holds a large document in memory.
const SHELL_STDIN_MAX: usize = 1 << 20;

/// How long a new shell may take to answer its first line, whatever the command's own deadline: a
/// target whose shell does not answer gets a channel per command instead of holding the run.
const HELLO_WAIT: Duration = Duration::from_secs(15);

/// How long to wait for the close of a shell that already sent its end of file.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the hello command may print (`no-base64`) and some room.
const HELLO_CAP: usize = 4096;

/// Whether a command with this stdin may go through a command shell at all.
pub fn fits(stdin: Option<&[u8]>) -> bool {
    stdin.is_none_or(|d| d.len() <= SHELL_STDIN_MAX)
}

/// A running `/bin/sh` on its own channel, waiting for the next command line.
pub struct CommandShell {
    channel: ssh2::Channel,
    /// `base64` is there to decode stdin; without it, commands with stdin get a channel.
    stdin_ok: bool,
}

impl CommandShell {
    /// Starts the command shell. `Ok(None)` when it cannot work on this host (no `/bin/sh`, a login
    /// shell that does not run it, no answer within [`HELLO_WAIT`]): commands then get a channel
    /// each, as without it.
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
            stdin_ok: false,
        };
        // One round trip proves the shell runs our lines before a real command is sent to it, and
        // tells whether it can decode stdin. It has a bound of its own: a command without a
        // deadline must not wait forever for a shell that never answers.
        let hello_bound = Instant::now() + HELLO_WAIT;
        let hello_deadline = Some(deadline.map_or(hello_bound, |d| d.min(hello_bound)));
        let framer = Framer::new(random_token());
        let hello = framer.hello_line();
        let mut reply = framer.reply(HELLO_CAP);
        let result = sh.roundtrip(link, hello.as_bytes(), &mut reply, hello_deadline);
        let answer = match &result {
            Ok(out) if !sh.channel.eof() && reply.shell_reusable() => hello_answer(out),
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
            // The command's own deadline passed: it timed out (it was never sent).
            (Err(Fail::Timeout), _) if deadline.is_some_and(|d| Instant::now() >= d) => {
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

    /// Whether the shell is still clean after being idle: it has not ended and nothing came from it
    /// since the last command (output of a background job that command left). A read error means
    /// the connection is gone before the next command was sent.
    pub fn still_clean(&mut self, link: &mut Transport) -> Result<bool, Fail> {
        let mut buf = vec![0u8; 16 * 1024];
        let mut late = 0usize;
        match read_ready(&mut self.channel, &mut buf, |_, bytes| late += bytes.len()) {
            Ok(_) if late > 0 => {
                tracing::debug!(
                    "{}: {late} bytes of late output from an earlier command; new command shell",
                    link.name()
                );
                Ok(false)
            }
            Ok(_) => Ok(!self.channel.eof()),
            Err(e) => Err(Fail::NotStarted(
                link.io_err("reading from the idle shell failed", &e),
            )),
        }
    }

    /// Lets go of a shell that will run no more commands (see [`still_clean`](Self::still_clean)).
    pub fn retire(mut self, link: &mut Transport) {
        if !link.is_dead() {
            abandon(link, &mut self.channel);
        }
    }

    /// Runs `cmd` in a subshell of this shell, holding at most `cap` bytes of its output. Gives the
    /// shell back while it can run the next command.
    pub fn run(
        mut self,
        link: &mut Transport,
        cmd: &str,
        stdin: Option<&[u8]>,
        deadline: Option<Instant>,
        cap: usize,
    ) -> (Result<ExecOutput, Fail>, Option<CommandShell>) {
        let framer = Framer::new(random_token());
        let line = framer.line(cmd, stdin);
        let mut reply = framer.reply(cap);
        let result = self.roundtrip(link, line.as_bytes(), &mut reply, deadline);
        let keep = match &result {
            Ok(_) => !self.channel.eof() && reply.shell_reusable(),
            Err(_) => false,
        };
        if keep {
            return (result, Some(self));
        }
        if !reply.shell_reusable() {
            tracing::debug!(
                "{}: output outside the command's marks ({} bytes) or a background job left \
                 running; new command shell for the next command",
                link.name(),
                reply.stray_bytes()
            );
        }
        // A timed-out command runs on and a too-large one may write on: the shell is busy with it.
        // Either way the next command gets a new shell.
        if !matches!(result, Err(Fail::Err(_) | Fail::NotStarted(_))) {
            self.retire(link);
        }
        (result, None)
    }

    /// Sends one line to the command shell and reads until both end marks are in.
    fn roundtrip(
        &mut self,
        link: &mut Transport,
        line: &[u8],
        reply: &mut Reply<'_>,
        deadline: Option<Instant>,
    ) -> Result<ExecOutput, Fail> {
        let mut buf = vec![0u8; 64 * 1024];
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
            match reply.result() {
                Progress::Done(out) => return Ok(out),
                Progress::TooLarge => return Err(Fail::TooLarge(reply.cap())),
                Progress::Pending => {}
            }
            if self.channel.eof() {
                return self.ended(link, reply, deadline);
            }
            if !progress {
                link.wait(deadline)?;
            }
        }
    }

    /// The shell itself ended before the end marks: the command killed it (`kill $$`: in the
    /// subshell, `$$` is the session shell) or the target is going down. As with a channel of its
    /// own, the shell's exit status or signal is the command's; the next command gets a new shell.
    fn ended(
        &mut self,
        link: &mut Transport,
        reply: &mut Reply<'_>,
        deadline: Option<Instant>,
    ) -> Result<ExecOutput, Fail> {
        let bound = Instant::now() + CLOSE_WAIT;
        let close_deadline = Some(deadline.map_or(bound, |d| d.min(bound)));
        let channel = &mut self.channel;
        match link.retry(
            close_deadline,
            "waiting for the shell to finish failed",
            |_| channel.wait_close(),
        ) {
            Ok(()) => {}
            Err(Fail::Timeout) if deadline.is_some_and(|d| Instant::now() >= d) => {
                return Err(Fail::Timeout)
            }
            // A peer that sent end of file but never closes: take the status as it is.
            Err(Fail::Timeout) => tracing::debug!("{}: the shell did not close", link.name()),
            Err(other) => return Err(other),
        }
        Ok(reply.cut_short(exit_code(&self.channel)))
    }
}

/// For the log: what the hello command gave instead of the expected answer.
fn unexpected_answer(answer: &Result<ExecOutput, Fail>) -> String {
    match answer {
        Ok(o) => format!("rc {} stdout {:?}", o.rc, o.stdout_str()),
        Err(Fail::Err(e)) | Err(Fail::NotStarted(e)) => e.to_string(),
        Err(Fail::Timeout) => "timeout".into(),
        Err(Fail::TooLarge(cap)) => format!("more than {cap} bytes"),
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
