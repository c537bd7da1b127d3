//! One test host (a container): commands, file inspection, fault tools, ssh helpers.

use super::docker::{docker, docker_ok};
use super::{err, BedError, ExecResult, FileStat, Result, SSH_WAIT};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One test host (a container). All methods talk to Docker; none needs the host's sshd except `ssh*`.
#[derive(Debug, Clone)]
pub struct Host {
    /// Position in `bed.hosts`.
    pub index: usize,
    /// Inventory name and hostname: `host<index>`.
    pub name: String,
    pub ip: IpAddr,
    /// Docker container name.
    pub container: String,
    pub(super) network: String,
    pub(super) key_path: PathBuf,
    pub(super) known_hosts: PathBuf,
    pub(super) sshd_delay: u64,
}

impl Host {
    /// Runs `sh -c cmd` as root inside the host (docker exec, not ssh).
    pub fn exec(&self, cmd: &str) -> ExecResult {
        self.exec_as("root", cmd)
    }

    /// Runs `sh -c cmd` as `user` inside the host.
    pub fn exec_as(&self, user: &str, cmd: &str) -> ExecResult {
        match docker(&["exec", "-u", user, &self.container, "sh", "-c", cmd]) {
            Ok(out) => ExecResult::from_output(out),
            Err(e) => ExecResult {
                rc: -1,
                stdout: String::new(),
                stderr: e.0,
            },
        }
    }

    /// Runs `sh -c cmd` as root with `input` on its standard input.
    pub fn exec_stdin(&self, cmd: &str, input: &[u8]) -> ExecResult {
        let child = Command::new("docker")
            .args(["exec", "-i", &self.container, "sh", "-c", cmd])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                return ExecResult {
                    rc: -1,
                    stdout: String::new(),
                    stderr: e.to_string(),
                }
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(input);
        }
        match child.wait_with_output() {
            Ok(out) => ExecResult::from_output(out),
            Err(e) => ExecResult {
                rc: -1,
                stdout: String::new(),
                stderr: e.to_string(),
            },
        }
    }

    /// Starts `sh -c cmd` as root in the background inside the host (docker exec -d).
    pub fn exec_detached(&self, cmd: &str) -> Result<()> {
        docker_ok(&["exec", "-d", &self.container, "sh", "-c", cmd]).map(|_| ())
    }

    /// Starts `sh -c cmd` as `user` in the background inside the host (docker exec -d -u).
    pub fn exec_detached_as(&self, user: &str, cmd: &str) -> Result<()> {
        docker_ok(&["exec", "-d", "-u", user, &self.container, "sh", "-c", cmd]).map(|_| ())
    }

    /// Copies a file or directory of this machine into the host (docker cp; works while stopped).
    pub fn copy_in(&self, local: &std::path::Path, remote: &str) -> Result<()> {
        let local = local.to_string_lossy();
        docker_ok(&["cp", &local, &format!("{}:{remote}", self.container)]).map(|_| ())
    }

    /// Bytes of a regular file, or None when it does not exist (or the host cannot be reached).
    pub fn read_file(&self, path: &str) -> Option<Vec<u8>> {
        let out = docker(&[
            "exec",
            &self.container,
            "sh",
            "-c",
            "test -f \"$1\" && cat -- \"$1\"",
            "sh",
            path,
        ])
        .ok()?;
        out.status.success().then_some(out.stdout)
    }

    /// File contents as text (lossy UTF-8), or None.
    pub fn read_to_string(&self, path: &str) -> Option<String> {
        self.read_file(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Writes `bytes` to `path` as root (test setup).
    pub fn write_file(&self, path: &str, bytes: &[u8]) -> Result<()> {
        let r = self.exec_stdin(&format!("cat > '{}'", path.replace('\'', "'\\''")), bytes);
        if r.ok() {
            Ok(())
        } else {
            err(format!(
                "{}: cannot write {path}: {}",
                self.name,
                r.stderr.trim()
            ))
        }
    }

    /// True when anything exists at `path` (symlinks not followed).
    pub fn exists(&self, path: &str) -> bool {
        self.exec_sh_args("test -e \"$1\" || test -L \"$1\"", &[path])
            .ok()
    }

    /// Mode, owner, group, size and type of `path` (symlinks not followed), or None when absent.
    pub fn stat(&self, path: &str) -> Option<FileStat> {
        let r = self.exec_sh_args("stat -c '%a|%U|%G|%s|%F' -- \"$1\"", &[path]);
        if !r.ok() {
            return None;
        }
        let mut f = r.stdout.trim().split('|');
        Some(FileStat {
            mode: u32::from_str_radix(f.next()?, 8).ok()?,
            owner: f.next()?.to_string(),
            group: f.next()?.to_string(),
            size: f.next()?.parse().ok()?,
            kind: f.next()?.to_string(),
        })
    }

    /// (mode, owner, group) of `path`, or None when absent. Mode as permission bits, e.g. 0o640.
    pub fn file_mode_owner(&self, path: &str) -> Option<(u32, String, String)> {
        self.stat(path).map(|s| (s.mode, s.owner, s.group))
    }

    /// Installed version of a Debian package, or None when not installed.
    pub fn package_version(&self, package: &str) -> Option<String> {
        let r = self.exec_sh_args(
            "dpkg-query -W -f '${db:Status-Status} ${Version}' -- \"$1\"",
            &[package],
        );
        let out = r.stdout.trim();
        out.strip_prefix("installed ")
            .filter(|_| r.ok())
            .map(str::to_string)
    }

    /// True when the account exists on the host.
    pub fn user_exists(&self, user: &str) -> bool {
        self.exec_sh_args("getent passwd -- \"$1\" >/dev/null", &[user])
            .ok()
    }

    fn exec_sh_args(&self, script: &str, args: &[&str]) -> ExecResult {
        let mut a = vec!["exec", self.container.as_str(), "sh", "-c", script, "sh"];
        a.extend_from_slice(args);
        match docker(&a) {
            Ok(out) => ExecResult::from_output(out),
            Err(e) => ExecResult {
                rc: -1,
                stdout: String::new(),
                stderr: e.0,
            },
        }
    }

    /// `<ip> ssh-ed25519 <key>`: the host's ed25519 host key as a known_hosts line.
    pub fn known_hosts_line(&self) -> Result<String> {
        let key = self
            .read_to_string("/etc/ssh/ssh_host_ed25519_key.pub")
            .ok_or_else(|| BedError(format!("{}: no ed25519 host key yet", self.name)))?;
        let mut parts = key.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some(kind), Some(b64)) => Ok(format!("{} {kind} {b64}", self.ip)),
            _ => err(format!("{}: malformed host key {key:?}", self.name)),
        }
    }

    /// Stops the host (like a power-off; the filesystem is kept).
    pub fn stop(&self) -> Result<()> {
        docker_ok(&["stop", "-t", "2", &self.container]).map(|_| ())
    }

    /// Boots the host again and waits for its sshd (unless it has an sshd delay).
    pub fn start(&self) -> Result<()> {
        self.start_nowait()?;
        if self.sshd_delay == 0 {
            self.wait_ssh(SSH_WAIT)?;
        }
        Ok(())
    }

    /// Boots the host without waiting for sshd.
    pub fn start_nowait(&self) -> Result<()> {
        docker_ok(&["start", &self.container]).map(|_| ())
    }

    /// Kills the container at once (SIGKILL), like pulling the plug.
    pub fn kill(&self) -> Result<()> {
        docker_ok(&["kill", &self.container]).map(|_| ())
    }

    /// True while the container runs.
    pub fn is_running(&self) -> bool {
        docker_ok(&["inspect", "-f", "{{.State.Running}}", &self.container])
            .map(|s| s == "true")
            .unwrap_or(false)
    }

    /// Kills every sshd process (listener and open sessions) with SIGKILL; the host keeps running.
    pub fn kill_sshd(&self) -> Result<()> {
        let r = self.exec("pkill -KILL -x sshd; i=0; while pgrep -x sshd >/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; ! pgrep -x sshd >/dev/null");
        if r.ok() {
            Ok(())
        } else {
            err(format!(
                "{}: kill_sshd failed: {}",
                self.name,
                r.stderr.trim()
            ))
        }
    }

    /// Starts sshd again after [`Host::kill_sshd`] and waits until it answers.
    pub fn start_sshd(&self) -> Result<()> {
        let r = self.exec("/usr/sbin/sshd");
        if !r.ok() {
            return err(format!(
                "{}: cannot start sshd: {}",
                self.name,
                r.stderr.trim()
            ));
        }
        self.wait_ssh(SSH_WAIT)
    }

    /// Cuts the host off the network (it keeps running).
    pub fn disconnect(&self) -> Result<()> {
        docker_ok(&[
            "network",
            "disconnect",
            "-f",
            &self.network,
            &self.container,
        ])
        .map(|_| ())
    }

    /// Puts the host back on the network with its old address.
    pub fn reconnect(&self) -> Result<()> {
        docker_ok(&[
            "network",
            "connect",
            "--ip",
            &self.ip.to_string(),
            &self.network,
            &self.container,
        ])
        .map(|_| ())
    }

    /// Waits until sshd on the host answers with an `SSH-` banner.
    pub fn wait_ssh(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let addr = SocketAddr::new(self.ip, 22);
        loop {
            if ssh_banner(addr) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return err(format!(
                    "{} ({}): sshd did not answer within {:?}; running: {}; processes:\n{}container log:\n{}",
                    self.name,
                    self.ip,
                    timeout,
                    self.is_running(),
                    self.exec("ps -eo pid,etime,args").stdout,
                    self.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// True when sshd answers right now.
    pub fn ssh_up(&self) -> bool {
        ssh_banner(SocketAddr::new(self.ip, 22))
    }

    /// The entrypoint's and sshd's output (`docker logs`).
    pub fn logs(&self) -> String {
        match docker(&["logs", &self.container]) {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => e.0,
        }
    }

    /// Output of the user-data script so far, and its exit code once it finished.
    pub fn userdata_result(&self) -> (Option<String>, Option<i32>) {
        let log = self.read_to_string("/var/log/userdata.log");
        let rc = self
            .read_to_string("/var/log/userdata.rc")
            .and_then(|s| s.trim().parse().ok());
        (log, rc)
    }

    /// An `ssh` client command logging in as `user` with the bed's key and known_hosts (accept-new);
    /// add the remote command with `.arg(...)`.
    pub fn ssh_command(&self, user: &str) -> Command {
        let mut c = Command::new("ssh");
        c.arg("-i")
            .arg(&self.key_path)
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
            .args([
                "-o",
                "StrictHostKeyChecking=accept-new",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
            ])
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "LogLevel=ERROR",
                "-o",
                "HashKnownHosts=no",
            ])
            .arg(format!("{user}@{}", self.ip))
            .stdin(Stdio::null());
        c
    }

    /// Runs `cmd` over real ssh as `user`.
    pub fn ssh(&self, user: &str, cmd: &str) -> ExecResult {
        match self.ssh_command(user).arg(cmd).output() {
            Ok(out) => ExecResult::from_output(out),
            Err(e) => ExecResult {
                rc: -1,
                stdout: String::new(),
                stderr: format!("cannot run ssh: {e}"),
            },
        }
    }
}

/// Connects and reads the first bytes: true when they start with `SSH-`.
fn ssh_banner(addr: SocketAddr) -> bool {
    // Generous timeouts: on a loaded 2-core machine a healthy sshd can take a while to answer.
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).is_ok() && &buf == b"SSH-"
}
