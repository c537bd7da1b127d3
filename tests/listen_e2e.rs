//! `knockplay listen` end to end: real test hosts boot and knock (stock `knock` client or
//! `knockplay knock`), the listener binary captures on the test network's bridge, runs the
//! playbook over SSH in-process, writes the marker, and records history.

mod common;
mod knock_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::listener::{knocks_for, runs_for, wait_for, Listener};
use common::{TestBed, UserDataOrder};

const SEQ: &str = r#"["7000/tcp", "8000/udp", "9000/tcp"]"#;
const STOCK_KNOCK: &str = "knock $KP_GATEWAY 7000 8000:udp 9000";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_knockplay")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// knock.toml for one door with the stock sequence.
fn listener_config(
    bed: &TestBed,
    dir: &Path,
    playbook: &Path,
    extra_runner: &str,
    door_extra: &str,
) -> PathBuf {
    let cfg = dir.join("knock.toml");
    let text = format!(
        r#"[listener]
interfaces = ["{iface}"]

[runner]
max_concurrent_runs = 4
queue_limit = 200
ssh_wait = 60
grace_period = 5
log_dir = "{dir}/logs"
state_dir = "{dir}/state"
{extra_runner}

[[door]]
name = "boot"
sequence = {SEQ}
seq_timeout = 5
allow = ["{subnet}"]
playbook = "{pb}"
user = "root"
private_key = "{key}"
{door_extra}
"#,
        iface = bed.bridge_if,
        dir = dir.display(),
        subnet = bed.subnet,
        pb = playbook.display(),
        key = bed.key_path.display(),
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

#[test]
fn booting_host_knocks_with_stock_client_and_is_configured_once() {
    let bed = TestBed::builder()
        .hosts(1)
        .userdata(STOCK_KNOCK, UserDataOrder::AfterSshd)
        .boot(false)
        .start()
        .expect("test bed");
    let dir = tempfile::tempdir().unwrap();
    let cfg = listener_config(
        &bed,
        dir.path(),
        &repo().join("playbooks/site.yml"),
        "",
        "cooldown = 600",
    );
    let l = Listener::start(dir.path(), &cfg);
    bed.boot().unwrap();
    let h = &bed.hosts[0];
    let ip = h.ip.to_string();
    wait_for("the marker", Duration::from_secs(180), || {
        h.exists("/var/lib/knockplay/configured")
    });
    // The playbook did its work.
    assert!(h
        .read_to_string("/srv/app/app.conf")
        .unwrap_or_default()
        .contains("listen = "));
    let marker = h.read_to_string("/var/lib/knockplay/configured").unwrap();
    assert!(
        marker.contains("door=boot\n") && marker.contains("playbook_sha256="),
        "{marker}"
    );
    // Exactly once, even if the host knocks again within the cooldown.
    assert!(h
        .exec(&STOCK_KNOCK.replace("$KP_GATEWAY", &bed.gateway_ip.to_string()))
        .ok());
    std::thread::sleep(Duration::from_secs(3));
    let hist = l.history_json();
    let runs = runs_for(&hist, &ip);
    assert_eq!(runs.len(), 1, "one run expected: {hist:#}\n{}", l.output());
    assert_eq!(runs[0]["status"], "ok", "{hist:#}");
    let knocks = knocks_for(&hist, &ip);
    assert!(knocks.iter().any(|k| k["result"] == "accepted"), "{hist:#}");
    // The per-run log exists and has the recap.
    let log = runs[0]["log"].as_str().expect("log path");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        text.contains("PLAY RECAP") && text.contains("failed=0"),
        "{text}"
    );
    assert!(l.history_text().contains(&ip));
}

#[test]
fn wrong_knocks_and_outsiders_trigger_nothing_and_history_says_why() {
    let bed = TestBed::start(2).expect("test bed");
    let (dir, pb) = playbook_dir(
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: content=x dest=/tmp/ran\n",
    );
    // Door allows only host0.
    let cfg = listener_config(&bed, dir.path(), &pb, "", "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("allow = [\"{}\"]", bed.subnet),
        &format!("allow = [\"{}/32\"]", bed.hosts[0].ip),
    );
    std::fs::write(&cfg, text).unwrap();
    let l = Listener::start(dir.path(), &cfg);
    let gw = bed.gateway_ip.to_string();
    let (h0, h1) = (&bed.hosts[0], &bed.hosts[1]);
    // Wrong order, an extra port in between, too slow: from the allowed host.
    assert!(h0.exec(&format!("knock {gw} 8000:udp 7000 9000")).ok());
    std::thread::sleep(Duration::from_secs(6));
    assert!(h0.exec(&format!("knock {gw} 7000 8000:udp 7000 9000")).ok());
    std::thread::sleep(Duration::from_secs(6));
    assert!(h0
        .exec(&format!(
            "knock {gw} 7000 8000:udp && sleep 6 && knock {gw} 9000"
        ))
        .ok());
    // The right sequence from a source outside the allowlist.
    assert!(h1.exec(&format!("knock {gw} 7000 8000:udp 9000")).ok());
    std::thread::sleep(Duration::from_secs(7));
    assert!(
        !h0.exists("/tmp/ran") && !h1.exists("/tmp/ran"),
        "{}",
        l.output()
    );
    let hist = l.history_json();
    assert!(runs_for(&hist, &h0.ip.to_string()).is_empty(), "{hist:#}");
    assert!(runs_for(&hist, &h1.ip.to_string()).is_empty(), "{hist:#}");
    let reasons: Vec<String> = knocks_for(&hist, &h0.ip.to_string())
        .iter()
        .map(|k| {
            format!(
                "{} {}",
                k["result"].as_str().unwrap_or(""),
                k["detail"].as_str().unwrap_or("")
            )
        })
        .collect();
    let all = reasons.join("\n");
    assert!(!reasons.is_empty(), "{hist:#}");
    assert!(!all.contains("accepted"), "{all}");
    for why in ["wrong_order", "extra_port", "too_slow"] {
        assert!(all.contains(why), "history should say {why}:\n{all}");
    }
    let outsider: Vec<String> = knocks_for(&hist, &h1.ip.to_string())
        .iter()
        .map(|k| k["result"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        outsider
            .iter()
            .any(|r| r.contains("not_allowed") || r.contains("not allowed")),
        "{hist:#}"
    );
    eprintln!("reasons recorded for the bad knocks:\n{all}");
}

#[test]
fn host_that_knocks_before_sshd_is_configured_once_sshd_is_up() {
    let bed = TestBed::builder()
        .hosts(1)
        .userdata(STOCK_KNOCK, UserDataOrder::BeforeSshd)
        .sshd_delay(10)
        .boot(false)
        .wait_ssh(false)
        .start()
        .expect("test bed");
    let (dir, pb) = playbook_dir(
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: content=late dest=/tmp/late\n",
    );
    let cfg = listener_config(&bed, dir.path(), &pb, "", "");
    let l = Listener::start(dir.path(), &cfg);
    bed.boot().unwrap();
    let h = &bed.hosts[0];
    wait_for("the marker", Duration::from_secs(120), || {
        h.exists("/var/lib/knockplay/configured")
    });
    assert_eq!(h.read_to_string("/tmp/late").as_deref(), Some("late"));
    let hist = l.history_json();
    let runs = runs_for(&hist, &h.ip.to_string());
    assert_eq!(runs.len(), 1, "{hist:#}");
    assert_eq!(runs[0]["status"], "ok", "{hist:#}");
}

#[test]
fn until_configured_survives_a_dropped_first_knock() {
    let bed = TestBed::builder()
        .hosts(1)
        .mount(bin(), "/usr/local/bin/knockplay")
        .start()
        .expect("test bed");
    let (dir, pb) = playbook_dir(
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: content=yes dest=/tmp/until\n",
    );
    let cfg = listener_config(&bed, dir.path(), &pb, "", "");
    let h = &bed.hosts[0];
    // The first knock goes out while no listener runs: it is lost.
    h.exec_detached(&format!(
        "knockplay knock {} 7000 8000/udp 9000 --until-configured 120 > /tmp/until.log 2>&1; echo $? > /tmp/until.rc",
        bed.gateway_ip
    ))
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let l = Listener::start(dir.path(), &cfg);
    wait_for("knockplay knock to exit", Duration::from_secs(150), || {
        h.exists("/tmp/until.rc")
    });
    assert_eq!(
        h.read_to_string("/tmp/until.rc").as_deref(),
        Some("0\n"),
        "{:?}\n{}",
        h.read_to_string("/tmp/until.log"),
        l.output()
    );
    assert_eq!(h.read_to_string("/tmp/until").as_deref(), Some("yes"));
}

#[test]
fn killed_listener_keeps_history_and_marks_the_cut_run_interrupted() {
    let bed = TestBed::start(1).expect("test bed");
    let (dir, pb) =
        playbook_dir("- hosts: all\n  gather_facts: no\n  tasks:\n    - command: sleep 30\n");
    let cfg = listener_config(&bed, dir.path(), &pb, "", "");
    let mut l = Listener::start(dir.path(), &cfg);
    let h = &bed.hosts[0];
    assert!(h
        .exec(&format!("knock {} 7000 8000:udp 9000", bed.gateway_ip))
        .ok());
    wait_for("the run to start", Duration::from_secs(60), || {
        runs_for(&l.history_json(), &h.ip.to_string())
            .iter()
            .any(|r| r["status"] == "running")
    });
    // While a run is active the listener logs a one-line summary every few seconds.
    wait_for("the run summary", Duration::from_secs(15), || {
        l.output()
            .contains("runs: 1 running, 0 queued, 0 done (0 failed)")
    });
    l.kill(libc::SIGKILL);
    let l2 = Listener::start(dir.path(), &cfg);
    let hist = l2.history_json();
    let runs = runs_for(&hist, &h.ip.to_string());
    assert_eq!(runs.len(), 1, "{hist:#}");
    assert_eq!(runs[0]["status"], "interrupted", "{hist:#}");
    assert!(
        knocks_for(&hist, &h.ip.to_string())
            .iter()
            .any(|k| k["result"] == "accepted"),
        "{hist:#}"
    );
    assert!(!h.exists("/var/lib/knockplay/configured"));
}

#[test]
fn sigterm_ends_a_run_cut_mid_command_after_the_grace_period() {
    let bed = TestBed::start(1).expect("test bed");
    let (dir, pb) =
        playbook_dir("- hosts: all\n  gather_facts: no\n  tasks:\n    - command: sleep 300\n");
    // grace_period = 5 (in the config): the listener waits that long for the run, then stops.
    let cfg = listener_config(&bed, dir.path(), &pb, "", "");
    let mut l = Listener::start(dir.path(), &cfg);
    let h = &bed.hosts[0];
    assert!(h
        .exec(&format!("knock {} 7000 8000:udp 9000", bed.gateway_ip))
        .ok());
    wait_for("the run to start", Duration::from_secs(60), || {
        runs_for(&l.history_json(), &h.ip.to_string())
            .iter()
            .any(|r| r["status"] == "running")
    });
    std::thread::sleep(Duration::from_secs(1));
    // The command would run for five minutes; the listener is gone long before.
    let status = l
        .signal_and_wait(libc::SIGTERM, Duration::from_secs(120))
        .unwrap_or_else(|| panic!("the listener did not stop on SIGTERM:\n{}", l.output()));
    assert!(status.success(), "{status:?}\n{}", l.output());
    let hist = l.history_json();
    let runs = runs_for(&hist, &h.ip.to_string());
    assert_eq!(runs.len(), 1, "{hist:#}");
    assert_eq!(runs[0]["status"], "interrupted", "{hist:#}");
    assert!(
        runs[0].to_string().contains("grace period of 5s passed"),
        "{hist:#}"
    );
    assert!(!h.exists("/var/lib/knockplay/configured"));
}

/// `n` booted hosts whose user data knocks when `bed.signal("go")` is given, and a directory holding
/// `playbook` (returned with its path).
fn knocking_bed(n: usize, playbook: &str) -> (TestBed, tempfile::TempDir, PathBuf) {
    let bed = TestBed::builder()
        .hosts(n)
        .userdata(
            &format!("testbed-wait go && {STOCK_KNOCK}"),
            UserDataOrder::AfterSshd,
        )
        .start()
        .expect("test bed");
    let (dir, pb) = playbook_dir(playbook);
    (bed, dir, pb)
}

/// A temporary directory holding `playbook` as site.yml (returned with its path).
fn playbook_dir(playbook: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("site.yml");
    std::fs::write(&pb, playbook).unwrap();
    (dir, pb)
}

#[test]
fn herd_of_fifty_is_configured_once_each_within_the_pool_bound() {
    let n = 50;
    let (bed, dir, pb) = knocking_bed(
        n,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: content={{ inventory_hostname }} dest=/etc/herd\n    - command: sleep 2\n",
    );
    let cfg = listener_config(&bed, dir.path(), &pb, "", "cooldown = 600");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("max_concurrent_runs = 4", "max_concurrent_runs = 8");
    std::fs::write(&cfg, text).unwrap();
    let l = Listener::start(dir.path(), &cfg);
    bed.signal("go").unwrap();
    // One host knocks again while its run is in progress.
    let h0 = &bed.hosts[0];
    wait_for("host0's run to start", Duration::from_secs(120), || {
        runs_for(&l.history_json(), &h0.ip.to_string())
            .iter()
            .any(|r| r["status"] == "running")
    });
    assert!(h0
        .exec(&STOCK_KNOCK.replace("$KP_GATEWAY", &bed.gateway_ip.to_string()))
        .ok());
    wait_for("all hosts configured", Duration::from_secs(600), || {
        bed.exec_all("test -e /var/lib/knockplay/configured")
            .iter()
            .all(|r| r.ok())
    });
    std::thread::sleep(Duration::from_secs(5));
    let hist = l.history_json();
    for h in &bed.hosts {
        // The listener names a knocked host by its address.
        assert_eq!(
            h.read_to_string("/etc/herd"),
            Some(h.ip.to_string()),
            "{}",
            h.name
        );
        let runs = runs_for(&hist, &h.ip.to_string());
        let max = if h.index == 0 { 2 } else { 1 };
        assert!(
            !runs.is_empty() && runs.len() <= max,
            "{} ran {} times: {hist:#}",
            h.name,
            runs.len()
        );
        assert!(runs.iter().all(|r| r["status"] == "ok"), "{hist:#}");
    }
    // Concurrency never exceeded max_concurrent_runs (from the recorded start/end times).
    let mut events: Vec<(String, i32)> = Vec::new();
    for r in hist["runs"].as_array().unwrap() {
        events.push((r["started"].as_str().unwrap().to_string(), 1));
        events.push((r["ended"].as_str().unwrap().to_string(), -1));
    }
    events.sort();
    let (mut cur, mut peak) = (0, 0);
    for (_, d) in events {
        cur += d;
        peak = peak.max(cur);
    }
    assert!(peak <= 8, "{peak} runs at once");
    eprintln!("herd: {n} hosts configured, peak concurrency {peak}");
}

/// Resident memory of a process, KiB.
fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmRSS:")
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn a_spoofed_flood_does_not_stop_a_real_host_from_being_configured() {
    use knockplay::knock::wire::{build, tcp_flags::SYN};
    use knockplay::knock::PortSpec;
    use std::net::Ipv4Addr;

    if !knock_support::privileged() {
        eprintln!("skipped: needs root to create a network namespace and capture");
        return;
    }
    const SOURCES: u32 = 50_000;
    const ROUNDS: u32 = 4;
    // The flood arrives on a veth from a test namespace (spoofed sources 10.233.0.0/16); the real host
    // knocks on the test network's bridge. The listener captures on both.
    let ns = knock_support::NetNs::create(21);
    ns.route_back("10.233.0.0/16");
    let (bed, dir, pb) = knocking_bed(
        1,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy: content=survived dest=/etc/flood\n",
    );
    let cfg = listener_config(&bed, dir.path(), &pb, "", "cooldown = 600");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(
            &format!("interfaces = [\"{}\"]", bed.bridge_if),
            &format!(
                "interfaces = [\"{}\", \"{}\"]\nmax_attempts = 10000",
                bed.bridge_if, ns.host_if
            ),
        )
        .replace(
            &format!("allow = [\"{}\"]", bed.subnet),
            &format!("allow = [\"{}\", \"10.233.0.0/16\"]", bed.subnet),
        );
    std::fs::write(&cfg, text).unwrap();
    let l = Listener::start(dir.path(), &cfg);
    let pid = l.pid().unwrap();
    // Let it settle (SQLite opened, capture threads up) before the baseline.
    std::thread::sleep(Duration::from_secs(1));
    let rss_before = rss_of(pid);

    // Every spoofed source knocks the first two ports, then repeats them (each attempt resets and
    // restarts, never finishing): 4 packets per source.
    let (ns_if, dst, mac, ns_name) = (ns.ns_if.clone(), ns.host_ip, ns.host_mac(), ns.name.clone());
    let flood_started = Instant::now();
    let sender = std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/var/run/netns/{ns_name}")).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: enters the test namespace on this thread only.
        assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
        let tx = knock_support::FrameSender::open(&ns_if);
        let src_mac = [0x02, 0, 0, 0, 0, 0x44];
        let ports = [
            PortSpec::tcp(7000),
            PortSpec::udp(8000),
            PortSpec::tcp(7000),
            PortSpec::udp(8000),
        ];
        for port in ports.iter().take(ROUNDS as usize) {
            for i in 0..SOURCES {
                let src = Ipv4Addr::new(10, 233, (i >> 8) as u8, i as u8);
                tx.send(&build::ethernet(
                    mac,
                    src_mac,
                    &build::ipv4(src, dst, *port, SYN),
                ));
            }
        }
    });
    // The real host knocks while the flood is on.
    std::thread::sleep(Duration::from_millis(200));
    bed.signal("go").unwrap();
    let mut rss_peak = rss_before;
    while !sender.is_finished() {
        rss_peak = rss_peak.max(rss_of(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    sender.join().unwrap();
    let flood_time = flood_started.elapsed();
    let h = &bed.hosts[0];
    wait_for("the real host configured", Duration::from_secs(180), || {
        rss_peak = rss_peak.max(rss_of(pid));
        h.exists("/var/lib/knockplay/configured")
    });
    assert_eq!(h.read_to_string("/etc/flood").as_deref(), Some("survived"));
    let hist = l.history_json();
    let runs = hist["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "only the real host ran: {hist:#}");
    assert_eq!(runs[0]["host"], h.ip.to_string());
    assert_eq!(runs[0]["status"], "ok", "{hist:#}");
    // Failed attempts are rate-limited in the history.
    let rows = hist["knocks"].as_array().unwrap().len();
    assert!(rows < 1_000, "{rows} history rows for a flood");
    // 10k tracked attempts are a few MiB: the listener's memory stays within its bound.
    assert!(
        rss_peak < rss_before + 64 * 1024,
        "listener RSS grew from {rss_before} to {rss_peak} KiB"
    );
    // The flood really reached the listener and filled its attempt table (counters at stop).
    let mut l = l;
    l.kill(libc::SIGTERM);
    let out = l.output();
    let evicted: u64 = out
        .split("attempts evicted at max_attempts ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stop counters in the listener's output:\n{out}"));
    assert!(
        evicted > 0,
        "the flood should have pushed the table to its bound:\n{out}"
    );
    eprintln!(
        "flood with a real run: {} frames in {flood_time:?}; listener RSS {rss_before} KiB, peak {rss_peak} KiB; \
         history rows {rows}\n{}",
        SOURCES * ROUNDS,
        out.lines().rev().take(2).collect::<Vec<_>>().join("\n")
    );
}
