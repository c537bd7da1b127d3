//! End to end: real packets from a network namespace reach the listener on a veth interface;
//! the stock `knock` client and knockplay's client both open the door; wrong order, an extra
//! port, too slow and a source outside the allowlist run nothing and the history says why.

mod knock_support;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use knock_support::{history_json, privileged, wait, NetNs, RecordingLauncher};
use knockplay::knock::{listen, Control, PortSpec};

fn write_config(path: &Path, ns: &NetNs, dir: &Path, sequence: &str, extra: &str) {
    let text = format!(
        r#"[listener]
interfaces = ["{iface}"]

[runner]
max_concurrent_runs = 2
log_dir = "{dir}/logs"
state_dir = "{dir}/state"
grace_period = 5

[[door]]
name = "base"
sequence = {sequence}
seq_timeout = 1
allow = ["10.232.{n}.0/24", "fd00:232:{n:x}::/64"]
playbook = "site.yml"
inventory_vars = {{ role = "web" }}
cooldown = 0

[[door]]
name = "locked"
sequence = ["6100/tcp", "6200/tcp"]
allow = ["192.0.2.0/24"]
playbook = "site.yml"
{extra}"#,
        iface = ns.host_if,
        dir = dir.display(),
        n = ns.host_ip.octets()[2],
    );
    std::fs::write(path, text).unwrap();
}

/// The knocks recorded so far: (source, door, result).
fn knocks(state: &Path) -> Vec<(String, String, String)> {
    let v = history_json(state);
    v["knocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["source"].as_str().unwrap().to_string(),
                k["door"].as_str().unwrap().to_string(),
                k["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn knocks_from_a_namespace_open_the_door_and_bad_knocks_say_why() {
    if !privileged() {
        eprintln!("skipped: needs root to create a network namespace and capture");
        return;
    }
    let ns = NetNs::create(10);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
    let cfg_path = dir.path().join("knock.toml");
    write_config(
        &cfg_path,
        &ns,
        dir.path(),
        r#"["7000/tcp", "8000/udp", "9000/tcp"]"#,
        "",
    );
    let config = knockplay::config::load(&cfg_path).unwrap();
    let state = config.runner.state_dir.clone();

    let launcher = RecordingLauncher::new(Duration::ZERO);
    let control = Control::new();
    let listener = {
        let (l, c) = (Arc::clone(&launcher), control.clone());
        std::thread::spawn(move || listen(config, l, c))
    };
    assert!(
        control.wait_ready(Duration::from_secs(10)),
        "capture did not start"
    );
    let host = ns.host_ip.to_string();
    let jobs = |n: usize| launcher.jobs.lock().unwrap().len() == n;

    // 1. The stock knockd client.
    ns.exec_ok(&["knock", &host, "7000", "8000:udp", "9000"]);
    wait(
        "a run after the stock client's knock",
        Duration::from_secs(10),
        || jobs(1),
    );
    {
        let j = &launcher.jobs.lock().unwrap()[0];
        assert_eq!(j.host, ns.peer());
        assert_eq!(j.door, "base");
        assert_eq!(j.action.playbook, dir.path().join("site.yml"));
        assert_eq!(j.action.inventory_vars["role"], "web");
        assert!(j
            .log_path
            .starts_with(dir.path().join("logs").join(ns.peer().to_string())));
    }

    // 2. knockplay's own client, from inside the namespace.
    let target = host.clone();
    let sent = ns.within(move || {
        let seq = [
            PortSpec::tcp(7000),
            PortSpec::udp(8000),
            PortSpec::tcp(9000),
        ];
        knockplay::knock::client::send_knocks(&target, &seq, Duration::ZERO).unwrap();
        std::time::Instant::now()
    });
    wait(
        "a run after knockplay's knock",
        Duration::from_secs(10),
        || jobs(2),
    );
    let latency = launcher.started.lock().unwrap()[1].saturating_duration_since(sent);
    eprintln!("last knock packet sent -> launcher called: {latency:?}");

    // 3. IPv6.
    ns.exec_ok(&[
        "knock",
        "-6",
        &ns.host_ip6.to_string(),
        "7000",
        "8000:udp",
        "9000",
    ]);
    wait("a run after an IPv6 knock", Duration::from_secs(10), || {
        jobs(3)
    });
    assert_eq!(
        launcher.jobs.lock().unwrap()[2].host,
        IpAddr::V6(ns.peer_ip6)
    );

    // 4. Wrong order, 5. an extra port in between, 6. too slow, 7. not in the allowlist.
    ns.exec_ok(&["knock", &host, "7000", "9000", "8000:udp"]);
    ns.exec_ok(&["knock", &host, "7000", "8000:udp", "7000", "9000"]);
    ns.exec_ok(&["knock", &host, "7000"]);
    std::thread::sleep(Duration::from_millis(1300));
    ns.exec_ok(&["knock", &host, "8000:udp", "9000"]);
    ns.exec_ok(&["knock", &host, "6100", "6200"]);
    // Traffic to other ports must not even reach user space.
    let target = host.clone();
    ns.within(move || {
        let ip: IpAddr = target.parse().unwrap();
        for _ in 0..100 {
            knockplay::knock::client::send_knock(ip, PortSpec::udp(5555)).unwrap();
            knockplay::knock::client::send_knock(ip, PortSpec::tcp(22)).unwrap();
        }
    });
    let peer = ns.peer().to_string();
    let has = |door: &str, result: &str| {
        knocks(&state)
            .iter()
            .any(|(s, d, r)| s == &peer && d == door && r == result)
    };
    for (door, result) in [
        ("base", "wrong_order"),
        ("base", "extra_port"),
        ("base", "too_slow"),
        ("locked", "not_allowed"),
    ] {
        wait(
            &format!("history to record {result}"),
            Duration::from_secs(10),
            || has(door, result),
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        launcher.jobs.lock().unwrap().len(),
        3,
        "bad knocks must not run anything"
    );

    control.shutdown();
    let summary = listener.join().unwrap().unwrap();
    assert_eq!(summary.stats.trigger.accepted, 3);
    assert_eq!(summary.stats.trigger.not_allowed, 1);
    assert_eq!(summary.stats.trigger.runs_ok, 3);
    assert_eq!(summary.stats.kernel_drops, 0);
    // The kernel filter let through knock ports only (ARP, ICMPv6, pings and RSTs stayed out).
    let k = knocks(&state);
    let accepted = k.iter().filter(|(_, _, r)| r == "accepted").count();
    assert_eq!(accepted, 3, "{k:?}");
    // The 21 knock packets sent above (a retransmission may add one or two); the 200 packets
    // to other ports, ARP, neighbour discovery and our own RSTs stayed in the kernel.
    assert!(
        (21..=30).contains(&summary.stats.packets),
        "{} packets reached user space",
        summary.stats.packets
    );
    let mut text = Vec::new();
    knockplay::history::print(
        &knockplay::history::HistoryUrl::default_for(&state),
        &Default::default(),
        false,
        &mut text,
    )
    .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&text));
}

#[test]
fn reload_swaps_sequences_keeps_a_bad_config_out_and_survives_an_interface_blip() {
    if !privileged() {
        eprintln!("skipped: needs root to create a network namespace and capture");
        return;
    }
    let ns = NetNs::create(11);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
    let cfg_path = dir.path().join("knock.toml");
    write_config(
        &cfg_path,
        &ns,
        dir.path(),
        r#"["7000/tcp", "8000/tcp"]"#,
        "",
    );
    let config = knockplay::config::load(&cfg_path).unwrap();
    let launcher = RecordingLauncher::new(Duration::ZERO);
    let control = Control::new();
    let listener = {
        let (l, c) = (Arc::clone(&launcher), control.clone());
        std::thread::spawn(move || listen(config, l, c))
    };
    assert!(control.wait_ready(Duration::from_secs(10)));
    let host = ns.host_ip.to_string();
    let jobs = || launcher.jobs.lock().unwrap().len();

    ns.exec_ok(&["knock", &host, "7000", "8000"]);
    wait("the first run", Duration::from_secs(10), || jobs() == 1);

    // A broken file is rejected; the running doors keep working.
    std::fs::write(&cfg_path, "[[door]]\nname = \"x\"\nsequense = []\n").unwrap();
    control.reload();
    assert!(control.wait_for(Duration::from_secs(5), |s| s.rejected_reloads == 1));
    ns.exec_ok(&["knock", &host, "7000", "8000"]);
    wait("a run with the old config", Duration::from_secs(10), || {
        jobs() == 2
    });

    // A good new file with another sequence: the new one opens, the old one no longer does.
    write_config(
        &cfg_path,
        &ns,
        dir.path(),
        r#"["7100/udp", "7200/tcp"]"#,
        "",
    );
    control.reload();
    assert!(control.wait_for(Duration::from_secs(5), |s| s.reloads == 1));
    ns.exec_ok(&["knock", &host, "7000", "8000"]);
    ns.exec_ok(&["knock", &host, "7100:udp", "7200"]);
    wait(
        "a run with the new sequence",
        Duration::from_secs(10),
        || jobs() == 3,
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(jobs(), 3);

    // The interface goes down and comes back: capture resumes by itself.
    let o = std::process::Command::new("ip")
        .args(["link", "set", &ns.host_if, "down"])
        .output()
        .unwrap();
    assert!(o.status.success());
    std::thread::sleep(Duration::from_millis(1500));
    let o = std::process::Command::new("ip")
        .args(["link", "set", &ns.host_if, "up"])
        .output()
        .unwrap();
    assert!(o.status.success());
    // Wait for the veth to carry traffic again.
    assert!(
        ns.wait_up(Duration::from_secs(10)),
        "the link did not come back"
    );
    ns.exec_ok(&["knock", &host, "7100:udp", "7200"]);
    wait(
        "a run after the interface came back",
        Duration::from_secs(10),
        || jobs() == 4,
    );

    control.shutdown();
    let summary = listener.join().unwrap().unwrap();
    assert_eq!(summary.stats.reloads, 1);
    assert_eq!(summary.stats.rejected_reloads, 1);
}
