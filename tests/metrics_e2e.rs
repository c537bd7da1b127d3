//! The metrics endpoint end to end: a `knockplay listen` process on the test bridge with
//! `[listener] metrics`, real test hosts knocking right and wrong and being configured over SSH
//! (one run fails on purpose), scraped with `curl`. What the metrics count must be what
//! `knockplay history --json` recorded; `/healthz` says 200; garbage and silent clients on the
//! metrics port are answered or cut off and the listener keeps serving knocks. On a network
//! namespace: `/healthz` is 503 while the capture interface is down, `knockplay_history_up` is 0
//! while the history database refuses writes, and a taken metrics port stops the start.

mod common;
mod knock_support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::listener::{runs_for, wait_for, Listener};
use common::TestBed;

/// (door, result-or-status) → count.
type Counts = BTreeMap<(String, String), u64>;

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `curl` the URL: (HTTP status, body).
fn curl(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl (tests/hosts/setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The value of the sample line `series` (name and labels exactly as written), if present.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `name{door="D",LABEL="V"} N` lines → {(D, V): N}.
fn by_door(page: &str, name: &str, label: &str) -> Counts {
    let mut out = Counts::new();
    let prefix = format!("{name}{{door=\"");
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let (door, rest) = rest.split_once('"').unwrap();
        let rest = rest
            .strip_prefix(&format!(",{label}=\""))
            .unwrap_or_else(|| panic!("{line}"));
        let (value_label, n) = rest.split_once("\"} ").unwrap();
        out.insert((door.into(), value_label.into()), n.parse().unwrap());
    }
    out
}

/// The history's knocks by (door, result), and finished runs by (door, status).
fn history_counts(hist: &serde_json::Value) -> (Counts, Counts) {
    let mut knocks = Counts::new();
    for k in hist["knocks"].as_array().unwrap() {
        let result = k["result"].as_str().unwrap();
        // Summary rows about rows not written are not knocks.
        if result != "suppressed" {
            let door = k["door"].as_str().unwrap().to_string();
            *knocks.entry((door, result.into())).or_default() += 1;
        }
    }
    let mut runs = Counts::new();
    for r in hist["runs"].as_array().unwrap() {
        let status = r["status"].as_str().unwrap();
        if !matches!(status, "queued" | "running") {
            let door = r["door"].as_str().unwrap().to_string();
            *runs.entry((door, status.into())).or_default() += 1;
        }
    }
    (knocks, runs)
}

fn config(
    bed: &TestBed,
    dir: &Path,
    metrics: SocketAddr,
    allowed: &[String],
) -> std::path::PathBuf {
    let pb = dir.join("site.yml");
    // Fails where /tmp/fail exists: one failed run among the ok ones.
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: no\n  tasks:\n    - command: test ! -e /tmp/fail\n",
    )
    .unwrap();
    let allow: Vec<String> = allowed.iter().map(|a| format!("\"{a}/32\"")).collect();
    let cfg = dir.join("knock.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[listener]
interfaces = ["{iface}"]
metrics = "{metrics}"

[runner]
max_concurrent_runs = 4
ssh_wait = 60
grace_period = 5
log_dir = "{dir}/logs"
state_dir = "{dir}/state"

[[door]]
name = "boot"
sequence = ["7000/tcp", "8000/udp", "9000/tcp"]
seq_timeout = 5
allow = [{allow}]
playbook = "{pb}"
user = "root"
private_key = "{key}"
cooldown = 600
"#,
            iface = bed.bridge_if,
            dir = dir.display(),
            allow = allow.join(", "),
            pb = pb.display(),
            key = bed.key_path.display(),
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn scraped_metrics_agree_with_the_history_and_bad_clients_do_not_hurt() {
    let bed = TestBed::start(4).expect("test bed");
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let ips: Vec<String> = bed.hosts.iter().map(|h| h.ip.to_string()).collect();
    // host0-2 may knock; host3 is an outsider.
    let cfg = config(&bed, dir.path(), addr, &ips[..3]);
    let l = Listener::start(dir.path(), &cfg);
    let base = format!("http://{addr}");
    wait_for("/healthz to answer 200", Duration::from_secs(20), || {
        curl(&format!("{base}/healthz")) == (200, "ok\n".into())
    });

    // Clients that misbehave, before and while hosts knock.
    let mut silent = TcpStream::connect(addr).unwrap();
    let mut garbage = TcpStream::connect(addr).unwrap();
    garbage
        .write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
        .unwrap();
    garbage
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut answer = String::new();
    let _ = garbage.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    let mut endless = TcpStream::connect(addr).unwrap();
    let _ = endless.write_all(&[b'A'; 20_000]);

    let gw = bed.gateway_ip.to_string();
    let (h0, h1, h2, h3) = (&bed.hosts[0], &bed.hosts[1], &bed.hosts[2], &bed.hosts[3]);
    assert!(h2.exec("touch /tmp/fail").ok());
    // Wrong: out of order, and the right sequence from outside the allowlist.
    assert!(h0.exec(&format!("knock {gw} 8000:udp 7000 9000")).ok());
    assert!(h3.exec(&format!("knock {gw} 7000 8000:udp 9000")).ok());
    std::thread::sleep(Duration::from_secs(6));
    // Right: three runs, one of which fails.
    for h in [h0, h1, h2] {
        assert!(h.exec(&format!("knock {gw} 7000 8000:udp 9000")).ok());
    }
    wait_for("three finished runs", Duration::from_secs(180), || {
        let hist = l.history_json();
        ips[..3].iter().all(|ip| {
            runs_for(&hist, ip)
                .iter()
                .any(|r| matches!(r["status"].as_str(), Some("ok" | "failed")))
        })
    });
    // Within the cooldown after its successful run: ignored.
    assert!(h0.exec(&format!("knock {gw} 7000 8000:udp 9000")).ok());

    // The silent client is cut after the endpoint's deadline (5 s), not held open.
    silent
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut nothing = Vec::new();
    let n = silent
        .read_to_end(&mut nothing)
        .expect("closed by the endpoint");
    assert_eq!(n, 0);
    endless
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut refused = Vec::new();
    let _ = endless.read_to_end(&mut refused);
    let refused = String::from_utf8_lossy(&refused);
    assert!(
        refused.is_empty() || refused.starts_with("HTTP/1.1 431 "),
        "{refused}"
    );

    // The metrics and the history agree (the history writer may be a moment behind).
    let end = Instant::now() + Duration::from_secs(30);
    let (page, hist) = loop {
        let (code, page) = curl(&format!("{base}/metrics"));
        assert_eq!(code, 200, "{page}");
        let hist = l.history_json();
        let (hk, hr) = history_counts(&hist);
        let (mk, mr) = (
            by_door(&page, "knockplay_knocks_total", "result"),
            by_door(&page, "knockplay_runs_total", "status"),
        );
        if (hk == mk && hr == mr && hk.contains_key(&("boot".into(), "cooldown".into())))
            || Instant::now() > end
        {
            assert_eq!(mk, hk, "knocks: metrics vs history\n{page}\n{hist:#}");
            assert_eq!(mr, hr, "runs: metrics vs history\n{page}\n{hist:#}");
            break (page, hist);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let (knocks, runs) = history_counts(&hist);
    let get = |c: &Counts, k: &str| c.get(&("boot".to_string(), k.to_string())).copied();
    assert_eq!(get(&runs, "ok"), Some(2), "{hist:#}");
    assert_eq!(get(&runs, "failed"), Some(1), "{hist:#}");
    assert_eq!(get(&knocks, "accepted"), Some(3), "{hist:#}");
    assert_eq!(get(&knocks, "cooldown"), Some(1), "{hist:#}");
    assert_eq!(get(&knocks, "not_allowed"), Some(1), "{hist:#}");
    assert!(
        get(&knocks, "wrong_order").is_some_and(|n| n >= 1),
        "{hist:#}"
    );

    // Durations of the three runs; gauges at rest; history up.
    let h = "knockplay_run_duration_seconds";
    assert_eq!(
        sample(&page, &format!("{h}_count{{door=\"boot\"}}")),
        Some(3.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, &format!("{h}_bucket{{door=\"boot\",le=\"+Inf\"}}")),
        Some(3.0)
    );
    assert!(sample(&page, &format!("{h}_sum{{door=\"boot\"}}")).is_some_and(|s| s > 0.0));
    for (series, want) in [
        ("knockplay_queue_depth", 0.0),
        ("knockplay_runs_in_progress", 0.0),
        ("knockplay_history_up{backend=\"sqlite\"}", 1.0),
        (
            "knockplay_history_write_errors_total{backend=\"sqlite\"}",
            0.0,
        ),
        ("knockplay_history_spool_rows{backend=\"sqlite\"}", 0.0),
        ("knockplay_healthy", 1.0),
        ("knockplay_capture_drops_total", 0.0),
    ] {
        assert_eq!(sample(&page, series), Some(want), "{series}\n{page}");
    }
    assert!(
        sample(&page, "knockplay_capture_packets_total").is_some_and(|n| n >= 9.0),
        "{page}"
    );
    assert_eq!(curl(&format!("{base}/healthz")), (200, "ok\n".into()));
    assert_eq!(curl(&format!("{base}/nothing")).0, 404);
    eprintln!("metrics page after the scenario:\n{page}");
}

/// knock.toml for an in-process listener on a namespace's veth, metrics on `metrics`.
fn netns_config(ns: &knock_support::NetNs, dir: &Path, metrics: SocketAddr) -> std::path::PathBuf {
    std::fs::write(dir.join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
    let cfg = dir.join("knock.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[listener]
interfaces = ["{iface}"]
metrics = "{metrics}"

[runner]
log_dir = "{dir}/logs"
state_dir = "{dir}/state"
grace_period = 2

[[door]]
name = "base"
sequence = ["7000/tcp", "8000/tcp"]
allow = ["{peer}/32"]
playbook = "site.yml"
"#,
            iface = ns.host_if,
            dir = dir.display(),
            peer = ns.peer_ip,
        ),
    )
    .unwrap();
    cfg
}

fn link(ns: &knock_support::NetNs, state: &str) {
    let o = Command::new("ip")
        .args(["link", "set", &ns.host_if, state])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn healthz_503_while_capture_is_down_history_down_while_its_writes_fail_and_a_taken_port_stops_the_start(
) {
    use knockplay::knock::{listen, Control};
    use std::sync::Arc;
    if !knock_support::privileged() {
        eprintln!("skipped: needs root to create a network namespace and capture");
        return;
    }
    let ns = knock_support::NetNs::create(30);
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cfg = netns_config(&ns, dir.path(), addr);
    let launcher = knock_support::RecordingLauncher::new(Duration::ZERO);
    let control = Control::new();
    let listener = {
        let config = knockplay::config::load(&cfg).unwrap();
        let (l, c) = (Arc::clone(&launcher), control.clone());
        std::thread::spawn(move || listen(config, l, c))
    };
    let base = format!("http://{addr}");
    wait_for("/healthz 200", Duration::from_secs(20), || {
        curl(&format!("{base}/healthz")) == (200, "ok\n".into())
    });

    // A second listener with the same metrics address does not start, and says why.
    let second = dir.path().join("second");
    std::fs::create_dir(&second).unwrap();
    let config = knockplay::config::load(&netns_config(&ns, &second, addr)).unwrap();
    let err = listen(config, launcher.clone(), Control::new()).expect_err("the port is taken");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("metrics endpoint {addr} ([listener] metrics): ")),
        "{msg}"
    );

    link(&ns, "down");
    let why = format!("capture on {} is down\n", ns.host_if);
    wait_for("/healthz 503", Duration::from_secs(20), || {
        curl(&format!("{base}/healthz")) == (503, why.clone())
    });
    let (_, page) = curl(&format!("{base}/metrics"));
    assert_eq!(sample(&page, "knockplay_healthy"), Some(0.0), "{page}");
    link(&ns, "up");
    assert!(
        ns.wait_up(Duration::from_secs(10)),
        "the link did not come back"
    );
    wait_for("/healthz 200 again", Duration::from_secs(20), || {
        curl(&format!("{base}/healthz")) == (200, "ok\n".into())
    });

    // Knocks still count after the blip.
    ns.exec_ok(&["knock", &ns.host_ip.to_string(), "7000", "8000"]);
    let series = "knockplay_runs_total{door=\"base\",status=\"ok\"}";
    wait_for("a run in the metrics", Duration::from_secs(20), || {
        sample(&curl(&format!("{base}/metrics")).1, series) == Some(1.0)
    });
    let (_, page) = curl(&format!("{base}/metrics"));
    assert_eq!(
        sample(
            &page,
            "knockplay_knocks_total{door=\"base\",result=\"accepted\"}"
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(launcher.jobs.lock().unwrap().len(), 1);

    // Another process holds the history database's write lock: the listener's writes fail after
    // SQLite's busy timeout, and the metrics say the history is down until writes succeed again.
    let db = dir.path().join("state/history.sqlite3");
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let knock = || ns.exec_ok(&["knock", &ns.host_ip.to_string(), "7000", "8000"]);
    knock(); // within the cooldown: one knock row to write
    let up = "knockplay_history_up{backend=\"sqlite\"}";
    let errors = "knockplay_history_write_errors_total{backend=\"sqlite\"}";
    wait_for("history_up 0", Duration::from_secs(30), || {
        sample(&curl(&format!("{base}/metrics")).1, up) == Some(0.0)
    });
    let (_, page) = curl(&format!("{base}/metrics"));
    assert!(sample(&page, errors).is_some_and(|n| n >= 1.0), "{page}");
    // Detection goes on meanwhile (the cooldown knock was counted); the endpoint stays 200.
    assert_eq!(
        sample(
            &page,
            "knockplay_knocks_total{door=\"base\",result=\"cooldown\"}"
        ),
        Some(1.0),
        "{page}"
    );
    assert_eq!(curl(&format!("{base}/healthz")).0, 200);
    blocker.execute_batch("ROLLBACK").unwrap();
    drop(blocker);
    knock();
    wait_for("history_up 1 again", Duration::from_secs(30), || {
        sample(&curl(&format!("{base}/metrics")).1, up) == Some(1.0)
    });

    control.shutdown();
    listener.join().unwrap().unwrap();
    // Stopped with the listener: nothing answers any more.
    assert_eq!(curl(&format!("{base}/healthz")).0, 0);
}
