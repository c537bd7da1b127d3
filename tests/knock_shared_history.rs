//! Two listeners on one test bridge sharing one PostgreSQL history (a real server started by the
//! test, tests/common/postgres.rs). Both capture every knock; claims in the database make each
//! host run once. With the database stopped during a herd, every host is still configured and
//! every history row arrives once the database is back.

mod common;
mod knock_support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::postgres::{PgServer, PASSWORD};
use common::{TestBed, UserDataOrder};
use knock_support::{privileged, RecordingLauncher};
use knockplay::history::{History, HistoryUrl, Query, RunRow};
use knockplay::knock::spa;
use knockplay::knock::{listen, Control, ListenError, ListenSummary};

const HOSTS: usize = 20;

const SEQUENCE_DOOR: &str = r#"[[door]]
name = "base"
sequence = ["7003/tcp", "8001/udp", "9005/tcp"]"#;

struct Pair {
    controls: Vec<Control>,
    threads: Vec<JoinHandle<Result<ListenSummary, ListenError>>>,
}

impl Pair {
    fn start(bed: &TestBed, dir: &Path, url: &str, launcher: &Arc<RecordingLauncher>) -> Pair {
        Pair::start_with(bed, dir, url, launcher, SEQUENCE_DOOR)
    }

    fn start_with(
        bed: &TestBed,
        dir: &Path,
        url: &str,
        launcher: &Arc<RecordingLauncher>,
        door: &str,
    ) -> Pair {
        std::fs::write(dir.join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
        let mut pair = Pair {
            controls: Vec::new(),
            threads: Vec::new(),
        };
        for id in ["ctl-a", "ctl-b"] {
            let cfg = dir.join(format!("{id}.toml"));
            std::fs::write(
                &cfg,
                format!(
                    r#"[listener]
interfaces = ["{bridge}"]

[runner]
max_concurrent_runs = 8
queue_limit = 100
log_dir = "{dir}/{id}/logs"
state_dir = "{dir}/{id}/state"

[history]
url = "{url}"
listener_id = "{id}"
lease = 5

{door}
allow = ["{subnet}"]
playbook = "site.yml"
cooldown = 60
"#,
                    bridge = bed.bridge_if,
                    subnet = bed.subnet,
                    dir = dir.display()
                ),
            )
            .unwrap();
            let config = knockplay::config::load(&cfg).unwrap();
            let control = Control::new();
            let (l, c) = (Arc::clone(launcher) as _, control.clone());
            pair.threads
                .push(std::thread::spawn(move || listen(config, l, c)));
            assert!(control.wait_ready(Duration::from_secs(20)), "{id} ready");
            pair.controls.push(control);
        }
        pair
    }

    fn stop(self) {
        for c in &self.controls {
            c.shutdown();
        }
        for t in self.threads {
            t.join().unwrap().unwrap();
        }
    }
}

/// Every host knocks the door twice (both listeners see both knocks).
fn herd() -> TestBed {
    TestBed::builder()
        .hosts(HOSTS)
        .userdata(
            "testbed-wait go && knock $KP_GATEWAY 7003 8001:udp 9005 && sleep 0.5 && knock $KP_GATEWAY 7003 8001:udp 9005",
            UserDataOrder::AfterSshd,
        )
        .start()
        .unwrap_or_else(|e| panic!("test bed: {e:?}"))
}

/// A PostgreSQL server with a fresh database `knock` and its URL (clients get the password in
/// `PGPASSWORD`); None, after saying so, where this process cannot capture.
fn postgres() -> Option<(PgServer, String)> {
    if !privileged() {
        eprintln!("skipped: needs root to capture on the test bridge");
        return None;
    }
    std::env::set_var("PGPASSWORD", PASSWORD);
    let pg = PgServer::start();
    let url = pg.create_db("knock");
    Some((pg, url))
}

/// The [`herd`] bed and both listeners on it sharing the history at `url`, runs taking 500 ms.
fn herd_pair(url: &str) -> (TestBed, tempfile::TempDir, Arc<RecordingLauncher>, Pair) {
    let bed = herd();
    let dir = tempfile::tempdir().unwrap();
    let launcher = RecordingLauncher::new(Duration::from_millis(500));
    let pair = Pair::start(&bed, dir.path(), url, &launcher);
    (bed, dir, launcher, pair)
}

fn runs_per_host(launcher: &RecordingLauncher) -> HashMap<std::net::IpAddr, usize> {
    let mut per_host = HashMap::new();
    for h in launcher.hosts() {
        *per_host.entry(h).or_default() += 1;
    }
    per_host
}

fn history(url: &str) -> (Vec<knockplay::history::KnockRow>, Vec<RunRow>) {
    let h = History::open_url(&HistoryUrl::parse(url, Path::new("/")).unwrap()).unwrap();
    h.query(&Query::default(), std::time::SystemTime::now())
        .unwrap()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out after {timeout:?}: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn two_listeners_one_postgres_each_knock_runs_once() {
    let Some((_pg, url)) = postgres() else {
        return;
    };
    let (bed, _dir, launcher, pair) = herd_pair(&url);

    bed.signal("go").unwrap();
    wait_for("every host ran", Duration::from_secs(120), || {
        runs_per_host(&launcher).len() == HOSTS
    });
    // Late second sightings and the second knocks had time to be decided.
    std::thread::sleep(Duration::from_secs(5));
    pair.stop();

    let per_host = runs_per_host(&launcher);
    for h in &bed.hosts {
        assert_eq!(per_host.get(&h.ip), Some(&1), "{} ran once", h.ip);
    }
    let (knocks, runs) = history(&url);
    assert_eq!(runs.len(), HOSTS, "{runs:#?}");
    assert!(runs.iter().all(|r| r.status == "ok"), "{runs:#?}");
    let by: Vec<&str> = runs.iter().map(|r| r.listener.as_str()).collect();
    eprintln!(
        "runs by ctl-a: {}, by ctl-b: {}",
        by.iter().filter(|l| **l == "ctl-a").count(),
        by.iter().filter(|l| **l == "ctl-b").count()
    );
    for h in &bed.hosts {
        let ip = h.ip.to_string();
        let results: Vec<&str> = knocks
            .iter()
            .filter(|k| k.source == ip)
            .map(|k| k.result.as_str())
            .collect();
        let accepted = results.iter().filter(|r| **r == "accepted").count();
        assert_eq!(accepted, 1, "{ip}: {results:?}");
        // The other listener's sighting of the same knock says who has it.
        assert!(
            results
                .iter()
                .any(|r| *r == "claimed_elsewhere" || *r == "cooldown"),
            "{ip}: {results:?}"
        );
    }
}

#[test]
fn postgres_stopped_for_30s_during_a_herd_every_host_is_configured_and_no_row_is_lost() {
    let Some((pg, url)) = postgres() else {
        return;
    };
    let (bed, dir, launcher, pair) = herd_pair(&url);

    pg.stop();
    let down = Instant::now();
    bed.signal("go").unwrap();
    wait_for("every host ran", Duration::from_secs(120), || {
        runs_per_host(&launcher).len() == HOSTS
    });
    // Every host ran while the database was away (it is started again only now).
    let all_ran = down.elapsed();
    std::thread::sleep(Duration::from_secs(30).saturating_sub(down.elapsed()));
    pg.restart();

    // Without claims both listeners may have run a host (degraded); every run they made reaches
    // the history, finished.
    let made = launcher.hosts().len();
    wait_for(
        "the spooled rows in the database",
        Duration::from_secs(90),
        || {
            let (_, runs) = history(&url);
            runs.len() == made && runs.iter().all(|r| r.status == "ok")
        },
    );
    pair.stop();
    let (knocks, runs) = history(&url);
    assert_eq!(runs.len(), made);
    let per_host = runs_per_host(&launcher);
    for h in &bed.hosts {
        let ip = h.ip.to_string();
        assert!(per_host.contains_key(&h.ip), "{ip} configured");
        let accepted = knocks
            .iter()
            .filter(|k| k.source == ip && k.result == "accepted")
            .count();
        assert_eq!(
            accepted,
            runs.iter().filter(|r| r.host == ip).count(),
            "{ip}: one accepted knock row per run"
        );
    }
    for state in ["ctl-a", "ctl-b"] {
        let spool = dir.path().join(state).join("state/history-spool.jsonl");
        assert!(!spool.exists(), "{} is written and gone", spool.display());
    }
    eprintln!("database down 30 s: {HOSTS} hosts, {made} runs (degraded: no claims), all ran within {all_ran:?}");
}

#[test]
fn an_spa_packet_seen_by_both_listeners_runs_once_and_its_replay_is_refused_by_both() {
    let Some((_pg, url)) = postgres() else {
        return;
    };
    let bed = TestBed::start(1).unwrap_or_else(|e| panic!("test bed: {e:?}"));
    let h = &bed.hosts[0];
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("fleet.key");
    common::listener::keygen(&key_file);
    let door = format!(
        "[[door]]\nname = \"boot\"\nspa_key_file = \"{}\"",
        key_file.display()
    );
    let launcher = RecordingLauncher::new(Duration::from_millis(500));
    let pair = Pair::start_with(&bed, dir.path(), &url, &launcher, &door);

    let key = spa::read_key_file(&key_file).unwrap();
    let fingerprints = h
        .exec("ls /etc/ssh/ssh_host_*_key.pub")
        .stdout
        .lines()
        .map(|p| spa::fingerprint_of_pubkey_line(&h.read_to_string(p.trim()).unwrap()).unwrap())
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let msg = spa::Message {
        door: "boot".into(),
        timestamp: now,
        nonce: [9; 16],
        reach: None,
        fingerprints,
        name: "twin".into(),
    };
    let packet = spa::seal(&key, &msg, [9; 24]).unwrap();
    h.write_file("/tmp/spa-packet", &packet).unwrap();
    let send = || {
        let r = h.exec(&format!(
            "bash -c 'cat /tmp/spa-packet > /dev/udp/{}/{}'",
            bed.gateway_ip,
            spa::DEFAULT_PORT
        ));
        assert!(r.ok(), "{}", r.stderr);
    };
    send();
    wait_for("the run", Duration::from_secs(30), || {
        launcher.hosts().len() == 1
    });
    // Well past the moment both listeners saw it: the same packet again is a replay.
    std::thread::sleep(Duration::from_secs(4));
    send();
    std::thread::sleep(Duration::from_secs(3));
    pair.stop();

    assert_eq!(launcher.hosts(), vec![h.ip], "one run");
    let (knocks, runs) = history(&url);
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let mut results: Vec<&str> = knocks.iter().map(|k| k.result.as_str()).collect();
    results.sort();
    assert_eq!(
        results,
        ["accepted", "claimed_elsewhere", "replay", "replay"],
        "{knocks:#?}"
    );
    let other = knocks
        .iter()
        .find(|k| k.result == "claimed_elsewhere")
        .unwrap();
    assert_eq!(
        other.detail,
        format!("listener {} accepted this SPA packet", runs[0].listener)
    );
}
