//! The three tools under benchmark: how each is invoked on a bed (inventory, config, host-key checking)
//! and how its output says how many changes it made.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::TestBed;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Knockplay,
    Ansible,
    Pyinfra,
}

pub const ALL: [Tool; 3] = [Tool::Knockplay, Tool::Ansible, Tool::Pyinfra];

/// Forks for ansible-playbook when the run sets none (the brief asks for at least 20; the default beds
/// have at most 20 hosts).
const ANSIBLE_FORKS: usize = 20;

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Knockplay => "knockplay",
            Tool::Ansible => "ansible",
            Tool::Pyinfra => "pyinfra",
        }
    }

    pub fn parse(s: &str) -> Option<Tool> {
        ALL.into_iter().find(|t| t.name() == s.trim())
    }

    /// The command that applies the benchmark's work to every host of `bed`. Writes any config the
    /// tool needs into the bed's directory first. `forks`: how many hosts the tool works on at once
    /// (knockplay `-f N`, ansible.cfg `forks = N`, pyinfra `--parallel N`); None: each tool's default
    /// (knockplay 50, ansible 20 here, pyinfra all hosts).
    pub fn command(self, bed: &TestBed, repo: &Path, forks: Option<usize>) -> Command {
        let bench = repo.join("bench");
        let venv = repo.join(".venv/bin");
        match self {
            Tool::Knockplay => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_knockplay"));
                c.arg("run")
                    .arg(bench.join("playbook.yml"))
                    .arg("-i")
                    .arg(bed.inventory_file())
                    // knockplay's own known_hosts for this bed, accept-new (its default policy).
                    .arg("--known-hosts")
                    .arg(bed.dir().join("knockplay_known_hosts"))
                    .args(["--host-key-checking", "accept-new"])
                    .args(forks.map(|f| format!("-f{f}")))
                    .env("NO_COLOR", "1")
                    // Each session logs its round trips when it ends (see round_trips).
                    .env("KNOCKPLAY_LOG", "warn,knockplay::ssh::stats=debug");
                c
            }
            Tool::Ansible => {
                let cfg = write_ansible_cfg(bed, forks.unwrap_or(ANSIBLE_FORKS));
                let mut c = Command::new(venv.join("ansible-playbook"));
                // The inventory's ansible_ssh_common_args point ssh at the bed's own known_hosts file with
                // StrictHostKeyChecking=accept-new; host_key_checking stays on.
                c.arg("-i")
                    .arg(bed.inventory_file())
                    .arg(bench.join("playbook.yml"));
                c.env("ANSIBLE_CONFIG", cfg)
                    .env("ANSIBLE_NOCOLOR", "1")
                    .env("ANSIBLE_FORCE_COLOR", "0");
                c.env_remove("ANSIBLE_PIPELINING")
                    .env_remove("ANSIBLE_FORKS");
                c.current_dir(bed.dir());
                c
            }
            Tool::Pyinfra => {
                let inv = write_pyinfra_inventory(bed);
                let mut c = Command::new(venv.join("pyinfra"));
                // -y: apply at once (no interactive confirmation). files/ and templates/ are relative to
                // the deploy directory, hence the working directory.
                c.arg("-y");
                if let Some(f) = forks {
                    c.arg("--parallel").arg(f.to_string());
                }
                c.arg(inv).arg("deploy.py").current_dir(&bench);
                c.env("PYINFRA_PROGRESS", "off").env("NO_COLOR", "1");
                c
            }
        }
    }

    /// Changes the tool reported in its output, or None when the output has no summary (a crash).
    /// Round trips the tool counted itself, summed over hosts (knockplay logs each session's
    /// `commands=N`); `None` for the others, whose sessions sshd counts.
    pub fn round_trips(self, stderr: &str) -> Option<u64> {
        if self != Tool::Knockplay {
            return None;
        }
        let mut total = None;
        for line in stderr.lines().filter(|l| l.contains("session ended")) {
            let n = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("commands="))
                .and_then(|v| v.parse::<u64>().ok())?;
            total = Some(total.unwrap_or(0) + n);
        }
        total
    }

    pub fn changed(self, stdout: &str, stderr: &str) -> Option<u64> {
        match self {
            Tool::Knockplay | Tool::Ansible => recap_sum(stdout, "changed"),
            Tool::Pyinfra => pyinfra_changed(&format!("{stdout}\n{stderr}")),
        }
    }
}

/// Sum of `key=N` over the PLAY RECAP lines (Ansible's and knockplay's recap).
fn recap_sum(out: &str, key: &str) -> Option<u64> {
    let recap = out.split("PLAY RECAP").nth(1)?;
    let prefix = format!("{key}=");
    let nums: Vec<u64> = recap
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(&prefix))
        .filter_map(|n| n.parse().ok())
        .collect();
    (!nums.is_empty()).then(|| nums.iter().sum())
}

/// pyinfra 3 ends with a results table whose last line is
/// `Grand total  <ops> <success> <error> <no change>`; "Success" counts operations that changed something
/// ("-" for none).
fn pyinfra_changed(out: &str) -> Option<u64> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("Grand total"))?;
    let cols: Vec<&str> = line.split_whitespace().skip(2).collect();
    match cols.get(1)? {
        &"-" => Some(0),
        n => n.parse().ok(),
    }
}

/// ansible.cfg for one bed: pipelining on, forks, host key checking on (known_hosts from the inventory's
/// ssh args), control sockets inside the bed directory.
fn write_ansible_cfg(bed: &TestBed, forks: usize) -> PathBuf {
    let path = bed.dir().join("ansible.cfg");
    let dir = bed.dir().display();
    let text = format!(
        "[defaults]\nforks = {forks}\nhost_key_checking = True\nlocal_tmp = {dir}/ansible-tmp\n\
         retry_files_enabled = False\n\n[ssh_connection]\npipelining = True\ncontrol_path_dir = {dir}/cp\n"
    );
    std::fs::write(&path, text).expect("write ansible.cfg");
    path
}

/// pyinfra inventory for one bed: host names as in the INI inventory, root with the bed's key, the bed's
/// own known_hosts file with accept-new.
fn write_pyinfra_inventory(bed: &TestBed) -> PathBuf {
    let path = bed.dir().join("pyinfra_inventory.py");
    let known = bed.dir().join("pyinfra_known_hosts");
    std::fs::write(&known, b"").expect("write pyinfra known_hosts");
    let mut text = String::from("hosts = [\n");
    for h in &bed.hosts {
        text.push_str(&format!(
            "    ({:?}, {{\"ssh_hostname\": {:?}, \"ssh_user\": \"root\", \"ssh_key\": {:?}, \
             \"ssh_known_hosts_file\": {:?}, \"ssh_strict_host_key_checking\": \"accept-new\"}}),\n",
            h.name,
            h.ip.to_string(),
            bed.key_path.display().to_string(),
            known.display().to_string(),
        ));
    }
    text.push_str("]\n");
    std::fs::write(&path, text).expect("write pyinfra inventory");
    path
}
