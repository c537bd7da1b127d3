//! knockd-style door commands: `/bin/sh -c` with `%IP%` replaced, output to the run's log. The
//! command runs in a process group of its own: at its timeout the whole group is killed, so a
//! background job it left cannot outlive it.

use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::RunOutcome;
use crate::counters::RunCounts;

/// Runs `command` for `host`, killing it after `timeout`.
pub fn run_command(command: &str, host: IpAddr, log_path: &Path, timeout: Duration) -> RunOutcome {
    let line = command.replace("%IP%", &host.to_string());
    let fail = RunOutcome::failed;
    let log = match crate::private_fs::create(log_path) {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot create log {}: {e}", log_path.display())),
    };
    let err_log = match log.try_clone() {
        Ok(f) => f,
        Err(e) => return fail(format!("cannot share log {}: {e}", log_path.display())),
    };
    let mut child = match Command::new("/bin/sh")
        .arg("-c")
        .arg(&line)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start /bin/sh: {e}")),
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let code = status.code().unwrap_or(128);
                return if status.success() {
                    RunOutcome {
                        counts: RunCounts {
                            ok: 1,
                            changed: 1,
                            ..RunCounts::default()
                        },
                        exit_code: 0,
                        error: None,
                    }
                } else {
                    RunOutcome {
                        exit_code: code,
                        ..fail(format!("command exited with {status}"))
                    }
                };
            }
            Ok(None) if Instant::now() >= deadline => {
                crate::ssh::local::kill_group(&mut child);
                return fail(format!("command killed after {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return fail(format!("waiting for command: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_times_out_is_killed_with_its_background_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("bg.pid");
        let cmd = format!("sleep 300 & echo $! > {}; wait", pid_file.display());
        let out = run_command(
            &cmd,
            "10.0.0.1".parse().unwrap(),
            &dir.path().join("log"),
            Duration::from_millis(500),
        );
        assert!(out.error.unwrap_or_default().contains("killed"));
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .to_string();
        // Gone, or a zombie waiting for init to reap it: never a running sleep.
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit(") ").next().map(|r| r.chars().next()));
            match state {
                None | Some(Some('Z')) => break,
                _ if Instant::now() > end => panic!("the background job {pid} survived"),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}
