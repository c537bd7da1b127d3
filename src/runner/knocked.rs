//! The runner as the knock listener's [`Launcher`]: one in-process run of a door's playbook
//! against the host that knocked, logged to the run's own file, ending with the "configured"
//! marker written on the host over the same SSH session.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::connect::{Connector, HostConn};
use super::{exit, run_playbook, ReportOptions, RunError, RunOptions, SshConnector};
use crate::config::HostKeyChecking;
use crate::inventory::Inventory;
use crate::knock::trigger::{Launcher, RunJob, RunOutcome};
use crate::shell::quote;
use crate::ssh::known_hosts::HostKeyPolicy;
use crate::ssh::{Remote, SshError};
use crate::value::Value;

/// Where the marker lives on a configured host.
pub const MARKER: &str = "/var/lib/knockplay/configured";

/// The SSH connector of a knocked run, remembering a refused host key so the history can say why
/// the run failed (`host_key_mismatch: ...`).
struct PinnedConnector {
    inner: SshConnector,
    mismatch: Mutex<Option<String>>,
}

impl Connector for PinnedConnector {
    fn connect(&self, host: &HostConn) -> Result<Box<dyn Remote + Send>, SshError> {
        let r = self.inner.connect(host);
        if let Err(e @ SshError::HostKeyMismatch { .. }) = &r {
            let mut slot = self.mismatch.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }
        r
    }
}

/// Runs door playbooks in-process.
pub struct RunnerLauncher {
    /// knockplay's own known_hosts for knocked hosts.
    pub known_hosts: PathBuf,
    /// Set on listener shutdown: runs stop between tasks.
    pub cancel: Arc<AtomicBool>,
}

fn policy(h: HostKeyChecking) -> HostKeyPolicy {
    match h {
        HostKeyChecking::AcceptNew => HostKeyPolicy::AcceptNew,
        HostKeyChecking::Strict => HostKeyPolicy::Strict,
        HostKeyChecking::Off => HostKeyPolicy::Off,
    }
}

/// The shell command that writes the marker atomically: door, time and playbook hash.
pub fn marker_command(door: &str, playbook: &str, sha256: &str, now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let body = format!("door={door}\ntime={secs}\nplaybook={playbook}\nplaybook_sha256={sha256}\n");
    format!(
        "umask 022 && mkdir -p /var/lib/knockplay && printf %s {} > {MARKER}.tmp && mv -f {MARKER}.tmp {MARKER}",
        quote(&body)
    )
}

impl Launcher for RunnerLauncher {
    fn run(&self, job: &RunJob) -> RunOutcome {
        let name = job.host.to_string();
        let mut vars = job.action.inventory_vars.clone();
        vars.insert("ansible_host".into(), Value::String(name.clone()));
        vars.insert("ansible_port".into(), Value::from(job.action.port));
        vars.insert(
            "ansible_user".into(),
            Value::String(job.action.user.clone()),
        );
        if let Some(k) = &job.action.private_key {
            vars.insert(
                "ansible_ssh_private_key_file".into(),
                Value::String(k.display().to_string()),
            );
        }
        let mut inventory = Inventory::new();
        inventory.add_host(&name, &vars, &job.action.groups);
        let sha = match std::fs::read(&job.action.playbook) {
            Ok(b) => hex::encode(Sha256::digest(&b)),
            Err(e) => {
                return RunOutcome {
                    exit_code: exit::UNREACHABLE_OR_PARSE,
                    error: Some(format!(
                        "cannot read playbook {}: {e}",
                        job.action.playbook.display()
                    )),
                    ..RunOutcome::default()
                }
            }
        };
        let report = ReportOptions {
            human: true,
            verbosity: 0,
            show_diff: false,
            color: false,
            log_dir: None,
            log_suffix: String::new(),
            capture: None,
            log_file: Some(job.log_path.clone()),
            progress: false,
        };
        let connector = Arc::new(PinnedConnector {
            inner: SshConnector {
                known_hosts: self.known_hosts.clone(),
                policy: policy(job.host_key_checking),
                connect_timeout: Duration::from_secs(10),
                wait_for_ssh: Some(job.ssh_wait),
                command_timeout: None,
                use_agent: false,
                allow_loose_key_permissions: false,
                pinned_host_keys: job.pinned_host_keys.clone(),
            },
            mismatch: Mutex::new(None),
        });
        let opts = RunOptions {
            playbook: job.action.playbook.clone(),
            inventory,
            limit: None,
            tags: Vec::new(),
            skip_tags: Vec::new(),
            extra_vars: Default::default(),
            check: false,
            diff: false,
            forks: 1,
            remote_user: Some(job.action.user.clone()),
            private_key: job.action.private_key.clone(),
            become_: job.action.become_,
            become_user: None,
            become_method: None,
            connector: Arc::clone(&connector) as Arc<dyn Connector>,
            report,
            cancel: self.cancel.clone(),
            finish_command: Some(marker_command(
                &job.door,
                &job.action.playbook.display().to_string(),
                &sha,
                SystemTime::now(),
            )),
            task_timeout: job.task_timeout,
        };
        match run_playbook(opts) {
            Ok(r) => RunOutcome {
                counts: r.totals(),
                exit_code: r.exit_code,
                error: connector
                    .mismatch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(),
            },
            Err(RunError::Parse(e)) => {
                let _ = std::fs::write(&job.log_path, format!("ERROR! {e}\n"));
                RunOutcome {
                    exit_code: exit::UNREACHABLE_OR_PARSE,
                    error: Some(e.to_string()),
                    ..RunOutcome::default()
                }
            }
            Err(e) => RunOutcome {
                exit_code: exit::UNREACHABLE_OR_PARSE,
                error: Some(e.to_string()),
                ..RunOutcome::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_command_writes_the_expected_bytes() {
        let d = tempfile::tempdir().unwrap();
        let cmd = marker_command(
            "web's door",
            "/p/site.yml",
            "abc",
            UNIX_EPOCH + Duration::from_secs(42),
        )
        .replace(MARKER, &d.path().join("m").display().to_string())
        .replace("mkdir -p /var/lib/knockplay", "true");
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(&cmd)
            .status()
            .unwrap();
        assert!(st.success(), "{cmd}");
        assert_eq!(
            std::fs::read_to_string(d.path().join("m")).unwrap(),
            "door=web's door\ntime=42\nplaybook=/p/site.yml\nplaybook_sha256=abc\n"
        );
    }
}
