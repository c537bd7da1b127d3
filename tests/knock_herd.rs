//! Herd: 50 test hosts knock with the stock `knock` client at the same moment; the listener on
//! the bed's bridge detects every one of them (knockd 0.8 detects 10–28 here), runs each host
//! exactly once, and never runs more than `max_concurrent_runs` at a time.

mod common;
mod knock_support;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestBed, UserDataOrder};
use knock_support::{privileged, RecordingLauncher};
use knockplay::knock::{listen, Control};

#[test]
fn fifty_hosts_knocking_at_once_are_all_detected_and_run_once() {
    if !privileged() {
        eprintln!("skipped: needs root to capture on the test bridge");
        return;
    }
    let n: usize = std::env::var("KP_TESTBED_HERD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let bed = TestBed::builder()
        .hosts(n)
        .userdata(
            "testbed-wait go && knock $KP_GATEWAY 7003 8001:udp 9005",
            UserDataOrder::AfterSshd,
        )
        .start()
        .unwrap_or_else(|e| panic!("test bed: {e:?}"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
    let cfg = dir.path().join("knock.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[listener]
interfaces = ["{bridge}"]

[runner]
max_concurrent_runs = 8
queue_limit = 100
log_dir = "{dir}/logs"
state_dir = "{dir}/state"

[[door]]
name = "base"
sequence = ["7003/tcp", "8001/udp", "9005/tcp"]
allow = ["{subnet}"]
playbook = "site.yml"
cooldown = 60
"#,
            bridge = bed.bridge_if,
            subnet = bed.subnet,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let config = knockplay::config::load(&cfg).unwrap();
    // Each "run" takes a moment, so runs overlap and the pool bound matters.
    let launcher = RecordingLauncher::new(Duration::from_millis(300));
    let control = Control::new();
    let listener = {
        let (l, c) = (Arc::clone(&launcher), control.clone());
        std::thread::spawn(move || listen(config, l, c))
    };
    assert!(control.wait_ready(Duration::from_secs(10)));

    let go = Instant::now();
    bed.signal("go").unwrap();
    let end = go + Duration::from_secs(120);
    while launcher.jobs.lock().unwrap().len() < n {
        assert!(
            Instant::now() < end,
            "only {} of {n} hosts ran: {:?}",
            launcher.jobs.lock().unwrap().len(),
            control.stats()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let all_ran = go.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    control.shutdown();
    let summary = listener.join().unwrap().unwrap();

    let mut per_host: HashMap<_, usize> = HashMap::new();
    for h in launcher.hosts() {
        *per_host.entry(h).or_default() += 1;
    }
    for h in &bed.hosts {
        assert_eq!(
            per_host.get(&h.ip),
            Some(&1),
            "{} ({}) must run exactly once",
            h.name,
            h.ip
        );
    }
    assert_eq!(per_host.len(), n);
    let peak = launcher.peak.load(Ordering::SeqCst);
    assert!(peak <= 8, "{peak} runs at once");
    assert_eq!(summary.stats.trigger.accepted, n as u64);
    eprintln!(
        "herd: {n} hosts detected and run once each in {all_ran:?} after the signal; peak {peak} concurrent runs; {} packets, {} kernel drops",
        summary.stats.packets, summary.stats.kernel_drops
    );
}
