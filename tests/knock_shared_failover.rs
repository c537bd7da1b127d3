//! Failover between two listeners sharing a PostgreSQL history (a real server started by the
//! test): listener ctl-a is SIGKILLed in the middle of a run; once its claim's lease expires the
//! run is `interrupted`, and the host, knocking with `--until-configured`, is configured by
//! listener ctl-b.

mod common;
mod knock_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::postgres::{PgServer, PASSWORD};
use knock_support::{privileged, start_child_listener, wait, NetNs};
use knockplay::history::{History, HistoryUrl, Query};
use knockplay::knock::client::UntilConfigured;
use knockplay::knock::{listen, Control, Launcher, RunJob, RunOutcome};

const NS: u8 = 37;

fn config(dir: &Path, ns_if: &str, url: &str, id: &str, action: &str) -> PathBuf {
    std::fs::write(dir.join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
    let path = dir.join(format!("{id}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[listener]
interfaces = ["{ns_if}"]

[runner]
log_dir = "{dir}/{id}/logs"
state_dir = "{dir}/{id}/state"
grace_period = 1

[history]
url = "{url}"
listener_id = "{id}"
lease = 3

[[door]]
name = "base"
sequence = ["7000/tcp", "8000/udp", "9000/tcp"]
allow = ["10.232.{NS}.0/24"]
cooldown = 0
{action}
"#,
            dir = dir.display()
        ),
    )
    .unwrap();
    path
}

/// Not a test on its own: listener ctl-a, the process the failover test starts and kills.
#[test]
#[ignore]
fn child_listener() {
    knock_support::child_listener_main();
}

/// Unused by this test: ctl-b runs a command door.
struct NoLauncher;

impl Launcher for NoLauncher {
    fn run(&self, _: &RunJob) -> RunOutcome {
        RunOutcome::failed("not a playbook door".into())
    }
}

#[test]
fn a_killed_listeners_run_is_interrupted_when_its_lease_expires_and_the_other_listener_configures_the_host(
) {
    if !privileged() {
        eprintln!("skipped: needs root to create a network namespace and capture");
        return;
    }
    std::env::set_var("PGPASSWORD", PASSWORD);
    let pg = PgServer::start();
    let url = pg.create_db("knock");
    let ns = NetNs::create(NS);
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("configured");
    let cfg_a = config(
        dir.path(),
        &ns.host_if,
        &url,
        "ctl-a",
        "playbook = \"site.yml\"",
    );
    let cfg_b = config(
        dir.path(),
        &ns.host_if,
        &url,
        "ctl-b",
        &format!(
            "command = \"echo configured by ctl-b > {} # %IP%\"",
            marker.display()
        ),
    );

    // ctl-a alone takes the host's first knock and hangs in the run.
    let started = dir.path().join("started");
    let mut child = start_child_listener(&cfg_a, &started, "listener ctl-a");
    ns.exec_ok(&["knock", &ns.host_ip.to_string(), "7000", "8000:udp", "9000"]);
    wait("ctl-a's run to start", Duration::from_secs(10), || {
        started.exists()
    });
    let run_a: i64 = std::fs::read_to_string(&started).unwrap().parse().unwrap();

    let control = Control::new();
    let listener_b = {
        let c = control.clone();
        let config = knockplay::config::load(&cfg_b).unwrap();
        std::thread::spawn(move || listen(config, Arc::new(NoLauncher), c))
    };
    assert!(control.wait_ready(Duration::from_secs(10)));
    // SIGKILL: ctl-a's claim is left behind, renewed by nobody.
    child.kill().unwrap();
    child.wait().unwrap();

    // The host knocks until configured: ctl-b finds the host claimed until the lease expires,
    // then marks ctl-a's run interrupted and runs the host itself.
    let client = ns.spawn_knock_until_configured(UntilConfigured {
        timeout: Duration::from_secs(60),
        marker: marker.clone(),
        first_retry: Duration::from_secs(1),
        max_retry: Duration::from_secs(2),
    });
    client
        .join()
        .unwrap()
        .expect("configured by ctl-b before the timeout");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "configured by ctl-b\n"
    );
    control.shutdown();
    listener_b.join().unwrap().unwrap();

    // `knockplay history --url` reads the shared database (password from PGPASSWORD).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_knockplay"))
        .args(["history", "--url", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("claimed_elsewhere"), "{text}");
    assert!(
        text.contains("error: listener ctl-a stopped renewing its claim (lease expired)"),
        "{text}"
    );
    let h = History::open_url(&HistoryUrl::parse(&url, Path::new("/")).unwrap()).unwrap();
    let (knocks, runs) = h
        .query(&Query::default(), std::time::SystemTime::now())
        .unwrap();
    let a = runs.iter().find(|r| r.id == run_a).expect("ctl-a's run");
    assert_eq!(
        (a.status.as_str(), a.listener.as_str()),
        ("interrupted", "ctl-a")
    );
    assert_eq!(
        a.error.as_deref(),
        Some("listener ctl-a stopped renewing its claim (lease expired)")
    );
    let b: Vec<_> = runs.iter().filter(|r| r.listener == "ctl-b").collect();
    assert_eq!(b.len(), 1, "{runs:#?}");
    assert_eq!(b[0].status, "ok");
    // ctl-b's knocks while ctl-a's lease was alive say who had the host.
    assert!(
        knocks.iter().any(|k| k.result == "claimed_elsewhere"
            && k.detail == format!("listener ctl-a claimed this host (run {run_a})")),
        "{knocks:#?}"
    );
}
