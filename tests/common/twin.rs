//! Twin-host comparisons: the same playbook run by `knockplay run` and by real
//! `ansible-playbook` (from the venv `tests/hosts/setup` makes) against a bed's inventory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::TestBed;

/// A program of the comparison venv: `$KNOCKPLAY_VENV/bin/NAME`, else the repository's `.venv`.
pub fn venv_bin(name: &str) -> PathBuf {
    std::env::var_os("KNOCKPLAY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv"))
        .join("bin")
        .join(name)
}

pub fn ansible_playbook() -> PathBuf {
    venv_bin("ansible-playbook")
}

/// `knockplay run` (`bin`: the test's `env!("CARGO_BIN_EXE_knockplay")`; this harness is also
/// built into examples, which have no such variable) with the bed's own known_hosts file.
pub fn knockplay(bin: &str, bed: &TestBed) -> Command {
    let mut c = Command::new(bin);
    c.arg("run")
        .arg("--known-hosts")
        .arg(bed.dir().join("kp_known_hosts"));
    c
}

/// Run `c` (either tool) on `pb` with the bed's inventory, `-e` for each of `vars`, then `args`.
pub fn run_playbook(
    mut c: Command,
    pb: &Path,
    bed: &TestBed,
    vars: &[String],
    args: &[&str],
) -> Output {
    c.arg(pb).arg("-i").arg(bed.inventory_file());
    for v in vars {
        c.args(["-e", v]);
    }
    c.args(args);
    c.env("NO_COLOR", "1")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_LOCAL_TEMP", bed.dir().join("ansible-tmp"))
        .output()
        .unwrap()
}

/// stdout then stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
