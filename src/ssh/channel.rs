//! Running one command on a channel of its own: exec, pumping stdin/stdout/stderr without blocking,
//! the exit status (or 128 + signal), and letting go of a channel whose command timed out. Also the
//! non-blocking channel reads and writes that the command shell shares.
//!
//! The command itself never goes into the exec request, where sshd would hand it to the login shell
//! as an argument that `ps` shows to everyone on the target: the request is a constant `/bin/sh`
//! stub ([`become_::STUB`](super::become_::STUB)) that reads the command as the first line of its
//! stdin, before the command's own stdin.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use super::become_::{script_line, STUB};
use super::ssh2_errors::is_eagain;
use super::transport::{Fail, Transport};
use super::{ExecOutput, Stream};

/// How long to try sending the close of a timed-out command's channel. sshd confirms only once the
/// command exits, so we do not wait for that; libssh2 frees the channel with the session.
const CLOSE_GRACE: Duration = Duration::from_millis(100);

/// Runs `cmd` on a channel of its own (commands with stdin, or no command shell); more than `cap`
/// bytes of output fail it.
pub fn run_in_channel(
    link: &mut Transport,
    cmd: &str,
    stdin: Option<&[u8]>,
    deadline: Option<Instant>,
    cap: usize,
) -> Result<ExecOutput, Fail> {
    let mut channel = link.open_channel(deadline)?;
    let request = format!("exec /bin/sh -c {}", crate::shell::quote(STUB));
    let mut line = script_line(cmd);
    line.push('\n');
    let input = [line.as_bytes(), stdin.unwrap_or(&[])];
    let result = link
        .retry(deadline, "exec request failed", |_| channel.exec(&request))
        .and_then(|()| pump(link, &mut channel, input, deadline, cap));
    if let Err(Fail::Timeout | Fail::TooLarge(_)) = result {
        abandon(link, &mut channel);
    }
    result
}

/// Move stdin (the parts of `input` one after the other)/stdout/stderr until the remote side closes
/// the channel.
fn pump(
    link: &mut Transport,
    channel: &mut ssh2::Channel,
    input: [&[u8]; 2],
    deadline: Option<Instant>,
    cap: usize,
) -> Result<ExecOutput, Fail> {
    let mut part = 0usize;
    let mut written = 0usize;
    let mut eof_sent = false;
    let mut out = ExecOutput::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut progress = false;
        while part < input.len() {
            match write_ready(channel, input[part], &mut written) {
                Ok(wrote) => progress |= wrote,
                // The command exited or closed its stdin: like a broken pipe, stop feeding it.
                Err(_) if channel.eof() => {
                    part = input.len();
                    eof_sent = true;
                    break;
                }
                Err(e) => return Err(Fail::Err(link.io_err("writing stdin failed", &e))),
            }
            if written < input[part].len() {
                break;
            }
            part += 1;
            written = 0;
        }
        if !eof_sent && part == input.len() {
            match channel.send_eof() {
                Ok(()) => {
                    eof_sent = true;
                    progress = true;
                }
                Err(e) if is_eagain(&e) => {}
                Err(_) if channel.eof() => eof_sent = true,
                Err(e) => return Err(Fail::Err(link.session_err("sending EOF failed", &e))),
            }
        }
        let mut held = out.stdout.len() + out.stderr.len();
        match read_ready(channel, &mut buf, |stream, bytes| {
            // Past the cap nothing more is kept; the command is abandoned right after this pass.
            let room = cap.saturating_sub(held);
            out.append(stream, &bytes[..bytes.len().min(room)]);
            held = held.saturating_add(bytes.len());
        }) {
            Ok(got) => progress |= got,
            Err(e) => return Err(Fail::Err(link.io_err("reading output failed", &e))),
        }
        if held > cap {
            return Err(Fail::TooLarge(cap));
        }
        if channel.eof() {
            break;
        }
        if !progress {
            link.wait(deadline)?;
        }
    }
    // Remote EOF: the exit status arrives before the remote close.
    link.retry(deadline, "waiting for the command to finish failed", |_| {
        channel.wait_close()
    })?;
    out.rc = exit_code(channel);
    // Our side of the close; the remote already closed, so this does not wait.
    link.retry(deadline, "closing the channel failed", |_| channel.close())?;
    Ok(out)
}

/// After a timeout: send EOF + close and move on; the session stays usable. The command itself
/// keeps running on the target until it exits, as with Ansible (the ssh2 crate does not expose
/// the channel "signal" request that could stop it).
pub fn abandon(link: &mut Transport, channel: &mut ssh2::Channel) {
    let grace = Some(Instant::now() + CLOSE_GRACE);
    match link.retry(grace, "closing a timed-out channel", |_| channel.close()) {
        Ok(()) => {}
        Err(Fail::Err(e)) | Err(Fail::NotStarted(e)) => tracing::debug!("{e}"),
        // Expected while the command still runs: sshd keeps it going after the close.
        Err(Fail::Timeout | Fail::TooLarge(_)) => tracing::debug!(
            "{}: timed-out command still running on the target",
            link.addr()
        ),
    }
}

/// Writes as much of `data[*written..]` as `channel` takes now (until libssh2 would block),
/// advancing `written`. Returns whether anything was written; on an error, `written` counts what
/// went before it.
pub fn write_ready(
    channel: &mut ssh2::Channel,
    data: &[u8],
    written: &mut usize,
) -> std::io::Result<bool> {
    let mut progress = false;
    while *written < data.len() {
        match channel.write(&data[*written..]) {
            Ok(0) => break,
            Ok(n) => {
                *written += n;
                progress = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(progress)
}

/// Reads whatever stdout and stderr of `channel` have ready (until libssh2 would block), handing
/// each chunk to `sink`. Returns whether anything came.
pub fn read_ready(
    channel: &mut ssh2::Channel,
    buf: &mut [u8],
    mut sink: impl FnMut(Stream, &[u8]),
) -> std::io::Result<bool> {
    let mut progress = false;
    for stream in [Stream::Stdout, Stream::Stderr] {
        loop {
            let r = match stream {
                Stream::Stdout => channel.read(buf),
                Stream::Stderr => channel.stderr().read(buf),
            };
            match r {
                Ok(0) => break,
                Ok(n) => {
                    sink(stream, &buf[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(progress)
}

/// Exit status, or 128 + signal number when the command was killed by a signal (shell convention).
pub fn exit_code(channel: &ssh2::Channel) -> i32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_map_to_shell_codes() {
        assert_eq!(signal_number("TERM"), Some(15));
        assert_eq!(signal_number("SIGKILL"), Some(9));
        assert_eq!(signal_number("WINCH"), None);
    }
}
