//! Authenticated knocks (SPA doors) end to end: a real test host sends `knockplay knock --spa`, the
//! listener binary captures the datagram on the test bridge, verifies it and runs the playbook
//! against that host, accepting only the host keys the packet carried. The attacker replays,
//! forges, truncates and ages packets, and serves other host keys.

mod common;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::listener::{knocks_for, runs_for, spa_door_config, wait_for, Listener};
use common::{Host, TestBed};
use knockplay::knock::spa::{self, FleetKey, Message};

const MARKER: &str = "/var/lib/knockplay/configured";
const PLAYBOOK: &str =
    "- hosts: all\n  gather_facts: no\n  tasks:\n    - copy:\n        content: \"spa\\n\"\n        dest: /etc/spa-configured\n";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_knockplay")
}

/// A directory with the playbook, a fleet key made by `knockplay keygen`, and a knock.toml with
/// one SPA door named `boot` on the bed's subnet.
fn spa_setup(bed: &TestBed) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("site.yml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let (cfg, key) = spa_door_config(&bed.bridge_if, &bed.subnet, dir.path(), &pb, &bed.key_path);
    (dir, cfg, key)
}

/// Puts the knockplay binary and the fleet key on the host.
fn install_client(h: &Host, key: &Path) {
    h.copy_in(Path::new(bin()), "/usr/local/bin/knockplay")
        .unwrap();
    h.copy_in(key, "/etc/knockplay-fleet.key").unwrap();
    let r = h.exec("chmod 600 /etc/knockplay-fleet.key && /usr/local/bin/knockplay --version");
    assert!(r.ok(), "{}{}", r.stdout, r.stderr);
}

/// Sends raw bytes from the host to the gateway's SPA port as one datagram (`cat` writes the
/// file in one call to bash's /dev/udp socket).
fn send_from(h: &Host, gateway: IpAddr, bytes: &[u8]) {
    h.write_file("/tmp/spa-packet", bytes).unwrap();
    let r = h.exec(&format!(
        "bash -c 'cat /tmp/spa-packet > /dev/udp/{gateway}/{}'",
        spa::DEFAULT_PORT
    ));
    assert!(r.ok(), "{}", r.stderr);
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The SHA256 fingerprints of the host's SSH host keys, as the client computes them.
fn host_fingerprints(h: &Host) -> Vec<[u8; 32]> {
    let list = h.exec("ls /etc/ssh/ssh_host_*_key.pub");
    list.stdout
        .lines()
        .map(|p| {
            let line = h.read_to_string(p.trim()).unwrap();
            spa::fingerprint_of_pubkey_line(&line).unwrap()
        })
        .collect()
}

fn packet(key: &FleetKey, ts: u64, nonce: u8, fps: Vec<[u8; 32]>) -> Vec<u8> {
    let msg = Message {
        door: "boot".into(),
        timestamp: ts,
        nonce: [nonce; 16],
        reach: None,
        fingerprints: fps,
        name: format!("crafted-{nonce}"),
    };
    spa::seal(key, &msg, [nonce; 24]).unwrap()
}

fn outcomes(l: &Listener, ip: &str) -> Vec<String> {
    knocks_for(&l.history_json(), ip)
        .iter()
        .map(|k| k["result"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn an_spa_knock_configures_the_host_once_and_replays_or_forgeries_run_nothing() {
    let bed = TestBed::start(1).expect("test bed");
    let h = &bed.hosts[0];
    let ip = h.ip.to_string();
    let (dir, cfg, key_file) = spa_setup(&bed);
    let key = spa::read_key_file(&key_file).unwrap();
    install_client(h, &key_file);
    let mut l = Listener::start(dir.path(), &cfg);

    // The machine boots and knocks with the stock client, until configured.
    let r = h.exec(&format!(
        "knockplay knock {} --spa --key /etc/knockplay-fleet.key --door boot --name i-0spa1 --until-configured 120",
        bed.gateway_ip
    ));
    assert!(r.ok(), "{}{}\n{}", r.stdout, r.stderr, l.output());
    assert!(h.exists(MARKER));
    assert_eq!(
        h.read_to_string("/etc/spa-configured").as_deref(),
        Some("spa\n")
    );
    // The marker is the run's last command; the run is recorded right after.
    wait_for("the run to be recorded", Duration::from_secs(30), || {
        runs_for(&l.history_json(), &ip)
            .iter()
            .any(|r| r["status"] == "ok")
    });
    let hist = l.history_json();
    let runs = runs_for(&hist, &ip);
    assert_eq!(runs.len(), 1, "{hist:#}");
    assert_eq!(runs[0]["status"], "ok", "{hist:#}");
    let accepted: Vec<_> = knocks_for(&hist, &ip)
        .into_iter()
        .filter(|k| k["result"] == "accepted")
        .collect();
    assert_eq!(accepted.len(), 1, "{hist:#}");
    let detail = accepted[0].to_string();
    assert!(
        detail.contains("\"boot\"") && detail.contains("name=i-0spa1"),
        "{detail}"
    );
    for fp in host_fingerprints(h) {
        assert!(detail.contains(&spa::fingerprint_text(&fp)), "{detail}");
    }
    // The key it proved is now knockplay's known_hosts entry for the address.
    let kh = std::fs::read_to_string(dir.path().join("state/known_hosts")).unwrap_or_default();
    assert!(kh.contains(&ip), "known_hosts: {kh}");

    // A valid packet (fresh nonce) is accepted once (cooldown keeps it from running again); the
    // same bytes again are a replay.
    let good = packet(&key, now_unix(), 1, host_fingerprints(h));
    send_from(h, bed.gateway_ip, &good);
    wait_for(
        "the fresh packet to be seen",
        Duration::from_secs(20),
        || outcomes(&l, &ip).iter().any(|o| o == "cooldown"),
    );
    send_from(h, bed.gateway_ip, &good);
    wait_for("the replay to be refused", Duration::from_secs(20), || {
        outcomes(&l, &ip).iter().any(|o| o == "replay")
    });
    // Forged and broken packets: each refused with its reason.
    let other = FleetKey::generate().unwrap();
    let mut flipped = packet(&key, now_unix(), 2, host_fingerprints(h));
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "bad_mac",
            packet(&other, now_unix(), 3, host_fingerprints(h)),
        ),
        ("bad_mac", flipped),
        ("malformed", good[..20].to_vec()),
        (
            "stale",
            packet(&key, now_unix() - 120, 4, host_fingerprints(h)),
        ),
    ];
    for (want, bytes) in &cases {
        let before = outcomes(&l, &ip).iter().filter(|o| o == want).count();
        send_from(h, bed.gateway_ip, bytes);
        wait_for(
            &format!("a {want} refusal"),
            Duration::from_secs(20),
            || outcomes(&l, &ip).iter().filter(|o| o == want).count() > before,
        );
    }
    // After a restart the replay cache still knows the packet.
    l.kill(libc::SIGTERM);
    let l = Listener::start(dir.path(), &cfg);
    let replays = outcomes(&l, &ip).iter().filter(|o| *o == "replay").count();
    send_from(h, bed.gateway_ip, &good);
    wait_for(
        "the replay after a restart",
        Duration::from_secs(20),
        || outcomes(&l, &ip).iter().filter(|o| *o == "replay").count() > replays,
    );
    // Nothing of that ran anything.
    let hist = l.history_json();
    assert_eq!(runs_for(&hist, &ip).len(), 1, "{hist:#}");
}

#[test]
fn a_host_serving_other_host_keys_than_its_knock_carried_gets_nothing() {
    let bed = TestBed::start(1).expect("test bed");
    let h = &bed.hosts[0];
    let ip = h.ip.to_string();
    let (dir, cfg, key_file) = spa_setup(&bed);
    install_client(h, &key_file);
    // Key A: a host key that is not the one this host's sshd serves (key B).
    let a =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDBvHTkiMYNb9Gc2SLcSXuyWg5hmPvmuLzPG9ipl30gO other";
    h.write_file("/tmp/other_host_key.pub", format!("{a}\n").as_bytes())
        .unwrap();
    let l = Listener::start(dir.path(), &cfg);
    let r = h.exec(&format!(
        "knockplay knock {} --spa --key /etc/knockplay-fleet.key --host-key /tmp/other_host_key.pub",
        bed.gateway_ip
    ));
    assert!(r.ok(), "{}", r.stderr);
    wait_for("the run to fail", Duration::from_secs(90), || {
        runs_for(&l.history_json(), &ip)
            .iter()
            .any(|r| r["status"] == "failed")
    });
    let hist = l.history_json();
    let runs = runs_for(&hist, &ip);
    assert_eq!(runs.len(), 1, "{hist:#}");
    let run = runs[0].to_string();
    assert!(run.contains("host_key_mismatch"), "{run}");
    assert!(run.contains("before authentication"), "{run}");
    // Nothing of the playbook reached the host, and known_hosts did not learn key B.
    assert!(!h.exists("/etc/spa-configured"));
    assert!(!h.exists(MARKER));
    let kh = std::fs::read_to_string(dir.path().join("state/known_hosts")).unwrap_or_default();
    assert!(!kh.contains(&ip), "known_hosts: {kh}");
}
