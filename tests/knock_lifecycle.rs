//! Listener lifecycle end to end: a killed listener's run shows `interrupted` after a restart
//! and the history survives; `--until-configured` re-knocks until configured when its first
//! knock is lost; an interface that disappears and comes back is captured again.

mod knock_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use knock_support::{
    history_json, privileged, start_child_listener, wait, NetNs, RecordingLauncher,
};
use knockplay::knock::client::UntilConfigured;
use knockplay::knock::{listen, Control};

fn config(ns_if: &str, subnet: u8, dir: &Path, action: &str) -> PathBuf {
    std::fs::write(dir.join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
    let path = dir.join("knock.toml");
    std::fs::write(
        &path,
        format!(
            r#"[listener]
interfaces = ["{ns_if}"]

[runner]
log_dir = "{dir}/logs"
state_dir = "{dir}/state"
grace_period = 1

[[door]]
name = "base"
sequence = ["7000/tcp", "8000/udp", "9000/tcp"]
allow = ["10.232.{subnet}.0/24"]
{action}
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    path
}

/// Not a test on its own: the listener process that `killed_listener_...` starts and kills.
#[test]
#[ignore]
fn child_listener() {
    knock_support::child_listener_main();
}

#[test]
fn a_killed_listener_leaves_an_interrupted_run_and_the_history_survives_a_restart() {
    if !privileged() {
        eprintln!("skipped: needs root to create a network namespace and capture");
        return;
    }
    let ns = NetNs::create(12);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &ns.host_if,
        12,
        dir.path(),
        "playbook = \"site.yml\"\ncooldown = 0",
    );
    let started = dir.path().join("started");
    let mut child = start_child_listener(&cfg, &started, "the child listener");
    ns.exec_ok(&["knock", &ns.host_ip.to_string(), "7000", "8000:udp", "9000"]);
    wait("the run to start", Duration::from_secs(10), || {
        started.exists()
    });
    // SIGKILL: no chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    let state = dir.path().join("state");
    let before = history_json(&state);
    assert_eq!(before["runs"][0]["status"], "running");

    // Restart: the cut-off run is marked interrupted; knocks and runs are all still there.
    let launcher = RecordingLauncher::new(Duration::ZERO);
    let control = Control::new();
    let listener = {
        let (l, c) = (Arc::clone(&launcher), control.clone());
        let config = knockplay::config::load(&cfg).unwrap();
        std::thread::spawn(move || listen(config, l, c))
    };
    assert!(control.wait_ready(Duration::from_secs(10)));
    ns.exec_ok(&["knock", &ns.host_ip.to_string(), "7000", "8000:udp", "9000"]);
    wait("a run after the restart", Duration::from_secs(10), || {
        launcher.jobs.lock().unwrap().len() == 1
    });
    control.shutdown();
    listener.join().unwrap().unwrap();
    let after = history_json(&state);
    let runs = after["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["status"], "interrupted");
    assert_eq!(
        runs[0]["error"],
        "the listener stopped before this run finished"
    );
    assert_eq!(runs[1]["status"], "ok");
    let accepted = after["knocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["result"] == "accepted")
        .count();
    assert_eq!(accepted, 2);
}

#[test]
fn until_configured_re_knocks_when_the_first_knock_is_lost() {
    if !privileged() {
        eprintln!("skipped: needs root to create a network namespace and capture");
        return;
    }
    let ns = NetNs::create(13);
    let dir = tempfile::tempdir().unwrap();
    // The "host" is configured when its marker exists; a command door writes it here (the
    // namespace shares this filesystem), standing in for the playbook run's marker.
    let marker = dir.path().join("configured");
    let cfg = config(
        &ns.host_if,
        13,
        dir.path(),
        &format!("command = \"echo door=base > {} # %IP%\"", marker.display()),
    );
    let state = dir.path().join("state");

    // The client starts knocking before the listener runs: its first knock goes nowhere.
    let client = ns.spawn_knock_until_configured(UntilConfigured {
        timeout: Duration::from_secs(30),
        marker: marker.clone(),
        first_retry: Duration::from_secs(2),
        max_retry: Duration::from_secs(4),
    });
    std::thread::sleep(Duration::from_millis(500));
    let control = Control::new();
    let listener = {
        let c = control.clone();
        let config = knockplay::config::load(&cfg).unwrap();
        std::thread::spawn(move || listen(config, RecordingLauncher::new(Duration::ZERO), c))
    };
    let knocks = client
        .join()
        .unwrap()
        .expect("configured before the timeout");
    assert!(
        knocks >= 2,
        "the first knock was lost, so it must have re-knocked ({knocks})"
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "door=base\n");
    control.shutdown();
    listener.join().unwrap().unwrap();
    let h = history_json(&state);
    assert_eq!(h["runs"][0]["status"], "ok");
}

#[test]
fn an_interface_that_disappears_and_returns_is_captured_again() {
    if !privileged() {
        eprintln!("skipped: needs root to create a network namespace and capture");
        return;
    }
    let ns = NetNs::create(14);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &ns.host_if,
        14,
        dir.path(),
        "playbook = \"site.yml\"\ncooldown = 0",
    );
    let launcher = RecordingLauncher::new(Duration::ZERO);
    let control = Control::new();
    let listener = {
        let (l, c) = (Arc::clone(&launcher), control.clone());
        let config = knockplay::config::load(&cfg).unwrap();
        std::thread::spawn(move || listen(config, l, c))
    };
    assert!(control.wait_ready(Duration::from_secs(10)));
    ns.exec_ok(&["knock", &ns.host_ip.to_string(), "7000", "8000:udp", "9000"]);
    wait("the first run", Duration::from_secs(10), || {
        launcher.jobs.lock().unwrap().len() == 1
    });

    // The interface vanishes (the listener keeps running) and is created again (a new ifindex).
    drop(ns);
    assert!(control.wait_for(Duration::from_secs(10), |s| s.interfaces_up.is_empty()));
    let ns = NetNs::create(14);
    assert!(
        control.wait_ready(Duration::from_secs(20)),
        "capture did not reopen"
    );
    ns.exec_ok(&["knock", &ns.host_ip.to_string(), "7000", "8000:udp", "9000"]);
    wait(
        "a run on the recreated interface",
        Duration::from_secs(10),
        || launcher.jobs.lock().unwrap().len() == 2,
    );
    control.shutdown();
    listener.join().unwrap().unwrap();
}
