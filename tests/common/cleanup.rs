//! Ownership of harness objects (`pid:start time` of the test process) and removal of leftovers of
//! dead runs.

use super::docker::{docker, docker_ok, remove_containers};
use super::{Result, LABEL, OWNER_LABEL};
use std::sync::{Mutex, OnceLock};

/// `<pid>:<start time in clock ticks>` of a process, from /proc; identifies it even if the pid is reused.
fn process_identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces and parentheses); start time is field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    let start = rest.split_whitespace().nth(19)?;
    Some(format!("{pid}:{start}"))
}

/// Identity of this test process, written into the owner label.
pub fn owner_identity() -> String {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        process_identity(std::process::id()).unwrap_or_else(|| format!("{}:0", std::process::id()))
    })
    .clone()
}

/// True when the owner label names a process that is still running.
pub fn owner_alive(owner: &str) -> bool {
    let Some(pid) = owner.split(':').next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    process_identity(pid).as_deref() == Some(owner)
}

/// What [`cleanup_leftovers`] removed.
#[derive(Debug, Default, Clone)]
pub struct Cleanup {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
}

/// Removes labelled containers and networks whose owner process is gone (a killed or crashed run).
/// Objects of live test processes (other tests running now) are left alone.
pub fn cleanup_leftovers() -> Result<Cleanup> {
    let mut done = Cleanup::default();
    let fmt = format!("{{{{.Names}}}}\t{{{{.Label \"{OWNER_LABEL}\"}}}}");
    let list = docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("label={LABEL}"),
        "--format",
        &fmt,
    ])?;
    for line in list.lines() {
        let (name, owner) = line.split_once('\t').unwrap_or((line, ""));
        if !owner_alive(owner) {
            done.containers.push(name.to_string());
        }
    }
    remove_containers(&done.containers);
    let fmt = format!("{{{{.Name}}}}\t{{{{.Label \"{OWNER_LABEL}\"}}}}");
    let list = docker_ok(&[
        "network",
        "ls",
        "--filter",
        &format!("label={LABEL}"),
        "--format",
        &fmt,
    ])?;
    for line in list.lines() {
        let (name, owner) = line.split_once('\t').unwrap_or((line, ""));
        if !owner_alive(owner) {
            // A leftover network may still hold containers that lost their label owner differently.
            let _ = docker(&["network", "rm", name]);
            done.networks.push(name.to_string());
        }
    }
    Ok(done)
}

/// Runs [`cleanup_leftovers`] once per process, before its first bed.
pub(super) fn cleanup_leftovers_once() -> Result<()> {
    static DONE: Mutex<bool> = Mutex::new(false);
    let mut done = DONE.lock().unwrap_or_else(|p| p.into_inner());
    if !*done {
        let c = cleanup_leftovers()?;
        if !c.containers.is_empty() || !c.networks.is_empty() {
            eprintln!(
                "testbed: removed leftovers of a dead run: {} containers, networks {:?}",
                c.containers.len(),
                c.networks
            );
        }
        *done = true;
    }
    Ok(())
}
