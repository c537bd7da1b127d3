//! knockd-style door commands: `/bin/sh -c` with `%IP%` replaced, output to the run's log.

use std::net::IpAddr;
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
                let _ = child.kill();
                let _ = child.wait();
                return fail(format!("command killed after {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return fail(format!("waiting for command: {e}")),
        }
    }
}
