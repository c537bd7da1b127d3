//! Issue 11's herd: 200 network-namespace hosts knock at once through a knockd-style command door,
//! round after round, alternating the stock `knock` client (Debian's knockd package) and
//! `knockplay knock --spa`. Every round: every knock detected, each host's command run exactly
//! once, never more than `max_concurrent_runs` at once, the queue drained; at the end the history
//! holds one accepted row and one ok run per knock, and nothing was lost on the way.
//!
//! `KP_HERD_HOSTS` (default 200) and `KP_HERD_ROUNDS` (default 3); `bash bench/run herd` runs
//! 200 × 10 in release mode and prints the times.

mod knock_support;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use knock_support::herd::{Herd, GATEWAY, SUBNET};
use knock_support::{privileged, RecordingLauncher};
use knockplay::knock::{listen, Control, ListenStats};

const MAX_RUNS: usize = 16;

fn env_num(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{key}: not a number")))
        .unwrap_or(default)
}

/// The door command: a start and an end line with nanosecond stamps, a short pause between.
fn door_command(log: &Path) -> String {
    let log = log.display();
    format!("echo s %IP% $(date +%s%N) >> {log}; sleep 0.05; echo e %IP% $(date +%s%N) >> {log}")
}

fn write_config(dir: &Path, bridge: &str, key: &Path, log: &Path) -> std::path::PathBuf {
    let cfg = dir.join("knock.toml");
    let cmd = door_command(log).replace('\\', "\\\\").replace('"', "\\\"");
    std::fs::write(
        &cfg,
        format!(
            r#"[listener]
interfaces = ["{bridge}"]

[runner]
max_concurrent_runs = {MAX_RUNS}
queue_limit = 1000
log_dir = "{dir}/logs"
state_dir = "{dir}/state"

[[door]]
name = "herd"
sequence = ["7003/tcp", "8001/udp", "9005/tcp"]
allow = ["{SUBNET}"]
command = "{cmd}"
cooldown = 0

[[door]]
name = "herd-spa"
spa_key_file = "{key}"
allow = ["{SUBNET}"]
command = "{cmd}"
cooldown = 0
"#,
            dir = dir.display(),
            key = key.display(),
        ),
    )
    .unwrap();
    cfg
}

/// One line of the command's log: (start?, host, nanoseconds).
fn parse_log(text: &str) -> Vec<(bool, String, u128)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [k, ip, t] => Some((*k == "s", ip.to_string(), t.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

/// The most commands that overlapped, from their own start and end stamps.
fn peak_overlap(lines: &[(bool, String, u128)]) -> usize {
    let mut ev: Vec<(u128, i32)> = lines
        .iter()
        .map(|(s, _, t)| (*t, if *s { 1 } else { -1 }))
        .collect();
    // Ends before starts at the same nanosecond.
    ev.sort();
    let (mut cur, mut peak) = (0i32, 0i32);
    for (_, d) in ev {
        cur += d;
        peak = peak.max(cur);
    }
    peak as usize
}

fn finished(s: &ListenStats) -> u64 {
    s.trigger.runs_ok + s.trigger.runs_failed + s.trigger.runs_interrupted
}

#[test]
fn a_herd_of_namespace_hosts_knocking_at_once_is_detected_and_run_once_per_round() {
    if !privileged() {
        eprintln!("skipped: needs root for network namespaces and capture");
        return;
    }
    let n = env_num("KP_HERD_HOSTS", 200);
    let rounds = env_num("KP_HERD_ROUNDS", 3);
    let t_setup = Instant::now();
    let herd = Herd::create(n);
    eprintln!(
        "herd: {n} namespace hosts on {} in {:.1} s",
        herd.bridge,
        t_setup.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("fleet.key");
    knockplay::knock::spa::write_new_key_file(&key).unwrap();
    // The namespace hosts have no sshd: one made-up host key for every SPA packet to pin.
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(dir.path().join("host_key"))
        .status()
        .unwrap();
    assert!(st.success(), "ssh-keygen");
    let host_key = dir.path().join("host_key.pub");
    let log = dir.path().join("runs.log");
    let cfg = write_config(dir.path(), &herd.bridge, &key, &log);
    let config = knockplay::config::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
    let control = Control::new();
    let listener = {
        // Command doors never reach the launcher.
        let (l, c) = (RecordingLauncher::new(Duration::ZERO), control.clone());
        std::thread::spawn(move || listen(config, l, c))
    };
    assert!(
        control.wait_ready(Duration::from_secs(10)),
        "listener not ready"
    );

    let knockplay = env!("CARGO_BIN_EXE_knockplay");
    let mut before = control.stats();
    let mut seen_lines = 0;
    let mut times = Vec::new();
    for round in 0..rounds {
        let spa = round % 2 == 1;
        let armed = herd.arm(|i, _| {
            if spa {
                format!(
                    "{knockplay} knock {GATEWAY} --spa --key {} --door herd-spa --host-key {} --name h{i}",
                    key.display(),
                    host_key.display()
                )
            } else {
                format!("knock {GATEWAY} 7003 8001:udp 9005")
            }
        });
        let (go, clients) = armed.release(Duration::from_secs(120));
        let sent = go.elapsed();
        for (i, (ok, err)) in clients.iter().enumerate() {
            assert!(ok, "round {round}: host {i}'s client failed: {err}");
        }
        let want = before.trigger.accepted + n as u64;
        let all_done = control.wait_for(Duration::from_secs(300), |s| {
            finished(s) >= want && s.trigger.accepted >= want
        });
        let done = go.elapsed();
        // Anything late or extra would show up now.
        std::thread::sleep(Duration::from_millis(700));
        let s = control.stats();
        assert!(all_done, "round {round}: not all runs finished: {s:?}");
        let d = |f: fn(&ListenStats) -> u64| f(&s) - f(&before);
        let what = if spa { "SPA" } else { "knock" };
        assert_eq!(
            d(|s| s.trigger.accepted),
            n as u64,
            "round {round} ({what}): {s:?}"
        );
        if !spa {
            assert_eq!(d(|s| s.tracker.detected), n as u64, "{s:?}");
        }
        for (name, v) in [
            ("coalesced", d(|s| s.trigger.coalesced)),
            ("failed attempts", d(|s| s.trigger.failed_attempts)),
            ("queue full", d(|s| s.trigger.queue_full)),
            ("runs failed", d(|s| s.trigger.runs_failed)),
            ("kernel drops", d(|s| s.kernel_drops)),
            (
                "history rows suppressed",
                d(|s| s.trigger.history_suppressed),
            ),
            ("history rows dropped", d(|s| s.trigger.history_dropped)),
        ] {
            assert_eq!(v, 0, "round {round} ({what}): {name}: {s:?}");
        }
        assert!(s.trigger.peak_running <= MAX_RUNS as u64, "{s:?}");

        let lines = parse_log(&std::fs::read_to_string(&log).unwrap());
        let this = &lines[seen_lines..];
        seen_lines = lines.len();
        let mut per_host: HashMap<&str, usize> = HashMap::new();
        for (start, ip, _) in this {
            if *start {
                *per_host.entry(ip).or_default() += 1;
            }
        }
        for h in &herd.hosts {
            assert_eq!(
                per_host.get(h.ip.to_string().as_str()),
                Some(&1),
                "round {round} ({what}): {} must run exactly once",
                h.ip
            );
        }
        assert_eq!(per_host.len(), n);
        assert_eq!(this.len(), 2 * n, "round {round}: every command ended");
        let peak = peak_overlap(this);
        assert!(peak <= MAX_RUNS, "round {round}: {peak} commands at once");
        eprintln!(
            "herd round {round} ({what}): {n}/{n} detected and run once; clients done {:.2} s after the signal, \
             last host configured after {:.2} s; peak {peak} commands at once ({} by the listener's count)",
            sent.as_secs_f64(),
            done.as_secs_f64(),
            s.trigger.peak_running
        );
        times.push(done.as_secs_f64());
        before = s;
    }
    control.shutdown();
    let summary = listener.join().unwrap().unwrap();
    assert_eq!(summary.shutdown.never_started, 0, "queue drained");
    assert_eq!(summary.shutdown.interrupted, 0);

    // The record a user reads: one accepted row and one ok run per knock.
    let history = knockplay::history::History::open(&dir.path().join("state")).unwrap();
    let (knocks, runs) = history
        .query(&Default::default(), std::time::SystemTime::now())
        .unwrap();
    let total = n * rounds;
    assert_eq!(
        knocks.iter().filter(|k| k.result == "accepted").count(),
        total
    );
    assert_eq!(
        knocks.len(),
        total,
        "no other knock rows: {:?}",
        &knocks[..3]
    );
    assert_eq!(runs.len(), total);
    assert!(runs.iter().all(|r| r.status == "ok"));
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    eprintln!(
        "herd: {n} hosts x {rounds} rounds: {total}/{total} detected, configured once each; signal -> last configured \
         mean {mean:.2} s, max {:.2} s; {} packets, {} kernel drops",
        times.iter().cloned().fold(0.0, f64::max),
        summary.stats.packets,
        summary.stats.kernel_drops
    );
}
