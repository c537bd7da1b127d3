//! The controller itself as a target: `connection: local`, `ansible_connection=local`,
//! `delegate_to: localhost` and `local_action` run their commands here, through the same
//! [`Remote`] interface as an SSH session. Each command is `/bin/sh -c` in a process group of its
//! own (a timeout kills the whole group, background jobs included), its output capped like a
//! session's.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::options::DEFAULT_OUTPUT_CAP;
use super::{ExecOutput, Remote, SshError};

/// Runs commands on the controller.
#[derive(Debug, Clone)]
pub struct LocalShell {
    name: String,
    /// Used when a command has no timeout of its own.
    default_timeout: Option<Duration>,
    output_cap: usize,
}

impl LocalShell {
    pub fn new(name: &str, default_timeout: Option<Duration>) -> LocalShell {
        LocalShell {
            name: name.to_string(),
            default_timeout,
            output_cap: DEFAULT_OUTPUT_CAP,
        }
    }

    /// Caps stdout and stderr together (tests use a small cap).
    pub fn with_output_cap(mut self, cap: usize) -> LocalShell {
        self.output_cap = cap;
        self
    }
}

fn session_error(reason: String) -> SshError {
    SshError::Session {
        addr: "localhost".into(),
        reason,
    }
}

/// Reads a stream to its end, counting against the shared cap; past it, stops keeping bytes
/// and raises `over`.
fn reader(
    mut r: impl Read + Send + 'static,
    used: Arc<AtomicUsize>,
    cap: usize,
    over: Arc<AtomicBool>,
) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return kept,
                Ok(n) => {
                    if used.fetch_add(n, Ordering::Relaxed) + n > cap {
                        over.store(true, Ordering::Relaxed);
                        return kept;
                    }
                    kept.extend_from_slice(&buf[..n]);
                }
            }
        }
    })
}

/// Kills a child started with `process_group(0)` together with everything in its group, and
/// reaps it (door commands use it too).
pub fn kill_group(child: &mut Child) {
    // The group id is the shell's pid (process_group(0)); ids past i32 do not exist.
    if let Ok(pgid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals that process group only.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Remote for LocalShell {
    fn exec(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, SshError> {
        let timeout = timeout.filter(|t| !t.is_zero()).or(self.default_timeout);
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| session_error(format!("cannot start /bin/sh: {e}")))?;
        let writer = match (stdin, child.stdin.take()) {
            (Some(bytes), Some(mut pipe)) => {
                let bytes = bytes.to_vec();
                // A command that does not read its stdin gets EPIPE: not an error.
                Some(std::thread::spawn(move || {
                    let _ = pipe.write_all(&bytes);
                }))
            }
            _ => None,
        };
        let used = Arc::new(AtomicUsize::new(0));
        let over = Arc::new(AtomicBool::new(false));
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            kill_group(&mut child);
            return Err(session_error("no output pipes".into()));
        };
        let out = reader(out, Arc::clone(&used), self.output_cap, Arc::clone(&over));
        let err = reader(err, used, self.output_cap, Arc::clone(&over));
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut pause = Duration::from_millis(1);
        let status = loop {
            if over.load(Ordering::Relaxed) {
                kill_group(&mut child);
                return Err(SshError::OutputTooLarge {
                    cap: self.output_cap,
                });
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    kill_group(&mut child);
                    return Err(SshError::CommandTimeout {
                        secs: timeout.map_or(0, |t| t.as_secs()),
                    });
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    kill_group(&mut child);
                    return Err(session_error(format!("waiting for /bin/sh: {e}")));
                }
            }
        };
        // The shell is gone; a background job it left may still hold the pipes: end the group.
        if let Ok(pgid) = i32::try_from(child.id()) {
            // SAFETY: as in kill_group.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stdout = out.join().unwrap_or_default();
        let stderr = err.join().unwrap_or_default();
        if over.load(Ordering::Relaxed) {
            return Err(SshError::OutputTooLarge {
                cap: self.output_cap,
            });
        }
        // Killed by a signal: 128 + signal, as a shell reports it.
        let rc = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        Ok(ExecOutput { rc, stdout, stderr })
    }

    fn name(&self) -> &str {
        &self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_commands_with_stdin_and_exit_codes() {
        let mut l = LocalShell::new("localhost", None);
        let o = l
            .exec("cat; echo err >&2; exit 3", Some(b"in\n"), None)
            .unwrap();
        assert_eq!(
            (o.rc, o.stdout.as_slice(), o.stderr.as_slice()),
            (3, &b"in\n"[..], &b"err\n"[..])
        );
        let o = l.exec("kill -9 $$", None, None).unwrap();
        assert_eq!(o.rc, 137);
    }

    #[test]
    fn a_timeout_kills_the_command_and_its_background_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("bg.pid");
        let mut l = LocalShell::new("localhost", None);
        let cmd = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let e = l
            .exec(&cmd, None, Some(Duration::from_millis(300)))
            .unwrap_err();
        assert!(matches!(e, SshError::CommandTimeout { .. }), "{e}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .ok()
                .and_then(|s| s.rsplit(") ").next().and_then(|r| r.chars().next()));
            match state {
                None | Some('Z') => break,
                _ if Instant::now() > end => panic!("the background job survived"),
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    #[test]
    fn output_past_the_cap_fails_the_command() {
        let mut l = LocalShell::new("localhost", None).with_output_cap(1000);
        let e = l
            .exec("head -c 100000 /dev/zero; sleep 30", None, None)
            .unwrap_err();
        assert!(matches!(e, SshError::OutputTooLarge { cap: 1000 }), "{e}");
    }
}
