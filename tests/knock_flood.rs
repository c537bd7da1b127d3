//! Flood: 200,000 packets from 50,000 spoofed sources hit the listener's interface while a real
//! host knocks. Memory stays within the attempt bound, the history stays small, and the real
//! knock still triggers its run.

mod knock_support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use knock_support::{privileged, rss_kib, FrameSender, NetNs, RecordingLauncher};
use knockplay::knock::wire::{build, tcp_flags::SYN};
use knockplay::knock::{listen, Control, PortSpec};

const SOURCES: u32 = 50_000;
const ROUNDS: u32 = 4;
const MAX_ATTEMPTS: u64 = 10_000;

#[test]
fn a_spoofed_flood_stays_bounded_and_a_real_knock_still_opens() {
    if !privileged() {
        eprintln!("skipped: needs root to create a network namespace and capture");
        return;
    }
    let ns = NetNs::create(20);
    ns.route_back("10.233.0.0/16");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
    let cfg = dir.path().join("knock.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[listener]
interfaces = ["{iface}"]
max_attempts = {MAX_ATTEMPTS}
history_failed_per_second = 20

[runner]
log_dir = "{dir}/logs"
state_dir = "{dir}/state"

[[door]]
name = "base"
sequence = ["7000/tcp", "8000/udp", "9000/tcp"]
allow = ["10.232.20.0/24", "10.233.0.0/16"]
playbook = "site.yml"
"#,
            iface = ns.host_if,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let config = knockplay::config::load(&cfg).unwrap();
    let state = config.runner.state_dir.clone();
    let launcher = RecordingLauncher::new(Duration::ZERO);
    let control = Control::new();
    let listener = {
        let (l, c) = (Arc::clone(&launcher), control.clone());
        std::thread::spawn(move || listen(config, l, c))
    };
    assert!(control.wait_ready(Duration::from_secs(10)));
    let rss_before = rss_kib();

    // The flood: every source knocks the first two ports, then repeats them (an extra port
    // that resets and restarts), never finishing; 4 packets per source.
    let (ns_if, dst, mac) = (ns.ns_if.clone(), ns.host_ip, ns.host_mac());
    let started = Instant::now();
    let sender = {
        let name = ns.name.clone();
        std::thread::spawn(move || {
            let path = format!("/var/run/netns/{name}");
            let f = std::fs::File::open(path).unwrap();
            use std::os::fd::AsRawFd;
            // SAFETY: enters the test namespace on this thread only.
            assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            let tx = FrameSender::open(&ns_if);
            let src_mac = [0x02, 0, 0, 0, 0, 0x33];
            let ports = [
                PortSpec::tcp(7000),
                PortSpec::udp(8000),
                PortSpec::tcp(7000),
                PortSpec::udp(8000),
            ];
            let mut sent = 0u32;
            for round in 0..ROUNDS {
                for i in 0..SOURCES {
                    let src = Ipv4Addr::new(10, 233, (i >> 8) as u8, i as u8);
                    let ip = build::ipv4(src, dst, ports[round as usize], SYN);
                    tx.send(&build::ethernet(mac, src_mac, &ip));
                    sent += 1;
                }
            }
            sent
        })
    };

    // Halfway through, a real host knocks.
    std::thread::sleep(Duration::from_millis(300));
    let target = ns.host_ip.to_string();
    ns.within(move || {
        let seq = [
            PortSpec::tcp(7000),
            PortSpec::udp(8000),
            PortSpec::tcp(9000),
        ];
        knockplay::knock::client::send_knocks(&target, &seq, Duration::ZERO)
    })
    .unwrap();

    let mut peak_tracked = 0;
    while !sender.is_finished() {
        peak_tracked = peak_tracked.max(control.stats().tracked_attempts);
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = sender.join().unwrap();
    let send_time = started.elapsed();
    assert_eq!(sent, SOURCES * ROUNDS);

    let real = IpAddr::V4(ns.peer_ip);
    let end = Instant::now() + Duration::from_secs(20);
    while !launcher.hosts().contains(&real) {
        assert!(
            Instant::now() < end,
            "the real knock did not trigger a run during the flood"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the detector drain what is left, then read the counters.
    control.wait_for(Duration::from_secs(10), |s| {
        s.packets + s.kernel_drops >= u64::from(sent)
    });
    std::thread::sleep(Duration::from_millis(600));
    let stats = control.stats();
    let rss_after = rss_kib();
    control.shutdown();
    let summary = listener.join().unwrap().unwrap();

    let history = knock_support::history_json(&state);
    let rows = history["knocks"].as_array().unwrap().len();

    eprintln!(
        "flood: sent {sent} frames in {send_time:?}; captured {} (kernel drops {}, detector backpressure {}); \
         peak tracked attempts {peak_tracked} (bound {MAX_ATTEMPTS}); evicted {}; history rows {rows}; \
         RSS {rss_before} KiB -> {rss_after} KiB",
        stats.packets, stats.kernel_drops, stats.backpressure, stats.tracker.evicted
    );
    assert_eq!(launcher.hosts(), vec![real], "only the real host ran");
    assert!(
        peak_tracked <= MAX_ATTEMPTS,
        "tracked attempts {peak_tracked} above the bound"
    );
    assert!(summary.stats.tracked_attempts <= MAX_ATTEMPTS);
    assert!(
        stats.tracker.evicted > 0,
        "the flood should have pushed the table to its bound"
    );
    // Failed attempts are rate-limited in the history: 20/s with a burst of 200.
    assert!(rows < 1_000, "{rows} history rows for a flood");
    // Attempts are bounded, so memory is too: 10k attempts are a few MiB; leave room for the
    // allocator, SQLite's cache and the 64k-entry channel.
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} to {rss_after} KiB"
    );
}
