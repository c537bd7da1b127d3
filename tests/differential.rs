//! Differential tests: the same playbook applied by knockplay to one fresh host and by real
//! `ansible-playbook` (ansible-core from PyPI) to a twin host from the same image must leave the
//! same files, bytes, modes, owners, links, users and groups.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::TestBed;

fn ansible_playbook() -> PathBuf {
    if let Some(v) = std::env::var_os("KNOCKPLAY_VENV") {
        let p = PathBuf::from(v).join("bin/ansible-playbook");
        if p.exists() {
            return p;
        }
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/ansible-playbook");
    if local.exists() {
        return local;
    }
    panic!(
        "ansible-playbook not found: run `bash tests/hosts/setup` (creates .venv with ansible-core) or set KNOCKPLAY_VENV"
    );
}

/// Everything a user would compare under `root`, plus accounts.
fn snapshot(h: &common::Host, root: &str) -> String {
    let r = h.exec(&format!(
        "cd {root} && find . -printf '%p %M %u %g %l\\n' | sort && for f in $(find . -type f | sort); do echo \"== $f\"; cat \"$f\"; done && getent passwd alice bob | cut -d: -f1,3,4,6,7 && getent group kpgroup | cut -d: -f1,3"
    ));
    assert!(r.ok(), "snapshot failed on {}: {}", h.name, r.stderr);
    r.stdout.replace(&h.name, "HOST")
}

#[test]
fn files_and_lines_playbook_matches_ansible() {
    let bed = TestBed::start(2).expect("test bed");
    let pb =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/playbooks/files_and_lines/site.yml");
    let inv = bed.inventory_file();

    let kp = Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .args([
            "run",
            pb.to_str().unwrap(),
            "-i",
            inv.to_str().unwrap(),
            "-l",
            &bed.hosts[0].name,
        ])
        .arg("--known-hosts")
        .arg(bed.dir().join("kp_known_hosts"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        kp.status.success(),
        "knockplay: {}\n{}",
        String::from_utf8_lossy(&kp.stdout),
        String::from_utf8_lossy(&kp.stderr)
    );

    let an = Command::new(ansible_playbook())
        .args([
            pb.to_str().unwrap(),
            "-i",
            inv.to_str().unwrap(),
            "-l",
            &bed.hosts[1].name,
        ])
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_PIPELINING", "True")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", bed.dir().join("ansible-tmp"))
        .output()
        .unwrap();
    assert!(
        an.status.success(),
        "ansible-playbook: {}\n{}",
        String::from_utf8_lossy(&an.stdout),
        String::from_utf8_lossy(&an.stderr)
    );

    let a = snapshot(&bed.hosts[0], "/opt/kp");
    let b = snapshot(&bed.hosts[1], "/opt/kp");
    if a != b {
        let d = similar::TextDiff::from_lines(&b, &a);
        panic!(
            "knockplay (+) and ansible (-) left different state:\n{}",
            d.unified_diff().header("ansible", "knockplay")
        );
    }
}
