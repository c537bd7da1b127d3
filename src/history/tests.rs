//! History tests, each run against both backends: SQLite in a temporary directory and a real
//! PostgreSQL server started for the test (tests/common/postgres.rs).

use super::*;
use std::time::UNIX_EPOCH;

#[path = "../../tests/common/postgres.rs"]
mod pg_server;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// One backend to test against.
pub(super) struct Bed {
    pub url: HistoryUrl,
    pub tmp: tempfile::TempDir,
    pub pg: Option<pg_server::PgServer>,
}

impl Bed {
    pub fn sqlite() -> Bed {
        let tmp = tempfile::tempdir().unwrap();
        Bed {
            url: HistoryUrl::default_for(tmp.path()),
            tmp,
            pg: None,
        }
    }

    pub fn postgres() -> Bed {
        // Every test gives the same password, so setting it from parallel tests is harmless.
        std::env::set_var("PGPASSWORD", pg_server::PASSWORD);
        let pg = pg_server::PgServer::start();
        let url = pg.create_db("history");
        Bed {
            url: HistoryUrl::parse(&url, Path::new("/")).unwrap(),
            tmp: tempfile::tempdir().unwrap(),
            pg: Some(pg),
        }
    }

    /// The history as listener `id` opens it (spool in its own state directory).
    pub fn open_as(&self, id: &str, lease: Duration) -> History {
        let state = self.tmp.path().join(format!("state-{id}"));
        let settings = HistorySettings {
            url: self.url.clone(),
            lease,
            listener_id: id.into(),
            spool_limit: 1000,
        };
        History::open_for_listener(&settings, &state).unwrap()
    }

    pub fn open(&self) -> History {
        self.open_as("test", Duration::from_secs(30))
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Bed::sqlite());
            }
            #[test]
            fn postgres() {
                super::$name(&super::Bed::postgres());
            }
        }
    )*};
}

both_backends!(
    pruning_keeps_recent_rows_and_runs_in_progress_and_the_replay_cache_survives,
    records_knocks_and_runs_and_survives_a_restart,
    writer_numbers_runs_after_existing_ones_and_writes_them_in_order,
);

fn run_ids(h: &History) -> Vec<i64> {
    let (_, runs) = h.query(&Query::default(), at(10_000)).unwrap();
    runs.iter().map(|r| r.id).collect()
}

fn pruning_keeps_recent_rows_and_runs_in_progress_and_the_replay_cache_survives(bed: &Bed) {
    let h = bed.open();
    let host: IpAddr = "10.232.0.9".parse().unwrap();
    let log = bed.tmp.path().join("x.log");
    let knock = |t: u64| KnockRecord {
        at: at(t),
        source: host,
        door: "d".into(),
        outcome: KnockOutcome::Accepted,
        detail: String::new(),
        run_id: None,
    };
    h.record_knock(&knock(100)).unwrap();
    h.record_knock(&knock(5_000)).unwrap();
    let old_done = h.run_queued(host, "d", &log, at(100)).unwrap();
    h.run_finished(
        old_done,
        RunStatus::Ok,
        &RunCounts::default(),
        Some(0),
        None,
        at(150),
    )
    .unwrap();
    let old_running = h.run_queued(host, "d", &log, at(120)).unwrap();
    h.run_started(old_running, at(121)).unwrap();
    let recent = h.run_queued(host, "d", &log, at(5_000)).unwrap();
    assert_eq!(h.prune(at(1_000)).unwrap(), 2);
    assert_eq!(run_ids(&h), vec![old_running, recent]);
    assert!(h.spa_nonce_record(&[1; 16], 5_000).unwrap());
    assert!(!h.spa_nonce_record(&[1; 16], 5_001).unwrap());
    assert_eq!(h.spa_nonces_since(4_000).unwrap(), vec![([1; 16], 5_000)]);
    assert!(
        h.spa_nonces_since(6_000).unwrap().is_empty(),
        "older nonces are dropped"
    );
}

fn records_knocks_and_runs_and_survives_a_restart(bed: &Bed) {
    let h = bed.open();
    let host: IpAddr = "10.232.0.7".parse().unwrap();
    let other: IpAddr = "10.232.0.8".parse().unwrap();
    let log = bed.tmp.path().join("10.232.0.7.log");
    let run = h.run_queued(host, "base", &log, at(1000)).unwrap();
    h.record_knock(&KnockRecord {
        at: at(1000),
        source: host,
        door: "base".into(),
        outcome: KnockOutcome::Accepted,
        detail: String::new(),
        run_id: Some(run),
    })
    .unwrap();
    h.record_knock(&KnockRecord {
        at: at(1001),
        source: other,
        door: "base".into(),
        outcome: KnockOutcome::WrongOrder,
        detail: "9000/tcp at stage 1".into(),
        run_id: None,
    })
    .unwrap();
    h.run_started(run, at(1001)).unwrap();
    let done = h.run_queued(other, "base", &log, at(1002)).unwrap();
    h.run_started(done, at(1002)).unwrap();
    let counts = RunCounts {
        ok: 5,
        changed: 2,
        ..Default::default()
    };
    assert!(h
        .run_finished(done, RunStatus::Ok, &counts, Some(0), None, at(1010))
        .unwrap());
    drop(h);

    // The listener died with `run` still running: the next start marks it interrupted.
    let h = bed.open();
    assert_eq!(h.mark_interrupted(at(2000)).unwrap(), 1);
    assert_eq!(h.run_status(run).unwrap().as_deref(), Some("interrupted"));
    assert_eq!(h.run_status(done).unwrap().as_deref(), Some("ok"));
    // A late finish does not overwrite `interrupted`.
    assert!(!h
        .run_finished(run, RunStatus::Ok, &counts, Some(0), None, at(2001))
        .unwrap());

    let (knocks, runs) = h
        .query(
            &Query {
                host: Some(other),
                since: None,
            },
            at(3000),
        )
        .unwrap();
    assert_eq!(knocks.len(), 1);
    assert_eq!(knocks[0].result, "wrong_order");
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].counts.ok, runs[0].counts.changed, runs[0].exit_code),
        (5, 2, Some(0))
    );

    let (knocks, runs) = h
        .query(
            &Query {
                host: None,
                since: Some(Duration::from_secs(1500)),
            },
            at(3000),
        )
        .unwrap();
    assert_eq!(knocks.len(), 0);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "interrupted");

    let mut text = Vec::new();
    print(&bed.url, &Query::default(), false, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("KNOCKS (2)"), "{text}");
    assert!(text.contains("accepted       run 1"), "{text}");
    assert!(text.contains("interrupted"), "{text}");
    assert!(text.contains("ok=5 changed=2"), "{text}");

    let mut json = Vec::new();
    print(
        &bed.url,
        &Query {
            host: Some(host),
            since: None,
        },
        true,
        &mut json,
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["knocks"][0]["result"], "accepted");
    assert_eq!(v["knocks"][0]["run_id"], 1);
    assert_eq!(v["runs"][0]["status"], "interrupted");
    assert_eq!(v["runs"][0]["log"], log.to_string_lossy().as_ref());
}

fn writer_numbers_runs_after_existing_ones_and_writes_them_in_order(bed: &Bed) {
    let h = Arc::new(bed.open());
    let old = h
        .run_queued(
            "10.0.0.1".parse().unwrap(),
            "d",
            "x".as_ref(),
            SystemTime::now(),
        )
        .unwrap();
    let w = HistoryWriter::start(Arc::clone(&h), 10);
    let id = w.run_queued(
        "10.0.0.2".parse().unwrap(),
        "d",
        "y".into(),
        SystemTime::now(),
    );
    assert_eq!(id, old + 1);
    w.run_started(id, SystemTime::now());
    w.run_finished(
        id,
        RunEnd {
            status: RunStatus::Ok,
            counts: Default::default(),
            exit_code: Some(0),
            error: None,
            at: SystemTime::now(),
        },
    );
    assert!(w.knock(KnockRecord {
        at: SystemTime::now(),
        source: [10, 0, 0, 2].into(),
        door: "d".into(),
        outcome: KnockOutcome::Accepted,
        detail: String::new(),
        run_id: Some(id),
    }));
    assert!(w.stop(std::time::Instant::now() + Duration::from_secs(10)));
    assert_eq!(h.run_status(id).unwrap().as_deref(), Some("ok"));
    let (k, _) = h.query(&Default::default(), SystemTime::now()).unwrap();
    assert_eq!(k.len(), 1);
    assert_eq!(w.stats().written, 4);
}

#[test]
fn parses_since() {
    assert_eq!(parse_since("90s"), Ok(Duration::from_secs(90)));
    assert_eq!(parse_since("15m"), Ok(Duration::from_secs(900)));
    assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7200)));
    assert_eq!(parse_since("7d"), Ok(Duration::from_secs(7 * 86400)));
    assert_eq!(parse_since("30"), Ok(Duration::from_secs(30)));
    assert!(parse_since("2y").unwrap_err().contains("unknown unit 'y'"));
    assert!(parse_since("soon").is_err());
}

#[test]
fn the_state_directory_and_database_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let h = History::open(&state).unwrap();
    h.record_knock(&KnockRecord {
        at: at(1_700_000_000),
        source: "10.0.0.1".parse().unwrap(),
        door: "d".into(),
        outcome: KnockOutcome::Accepted,
        detail: String::new(),
        run_id: None,
    })
    .unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    for entry in std::fs::read_dir(&state).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

#[test]
fn print_without_a_database_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let url = HistoryUrl::default_for(dir.path());
    let e = print(&url, &Query::default(), false, &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("no history yet"), "{e}");
}

#[test]
fn an_old_sqlite_history_is_migrated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    {
        // The schema as it was before versioning, with a row in it.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, host TEXT NOT NULL, door TEXT NOT NULL,
                status TEXT NOT NULL, queued_ms INTEGER NOT NULL, started_ms INTEGER, ended_ms INTEGER,
                ok INTEGER NOT NULL DEFAULT 0, changed INTEGER NOT NULL DEFAULT 0,
                unreachable INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
                skipped INTEGER NOT NULL DEFAULT 0, rescued INTEGER NOT NULL DEFAULT 0,
                ignored INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, error TEXT,
                log_path TEXT NOT NULL DEFAULT '');
             INSERT INTO runs (id, host, door, status, queued_ms) VALUES (7, '10.0.0.1', 'd', 'ok', 5);",
        )
        .unwrap();
    }
    let h = History::open(dir.path()).unwrap();
    assert_eq!(run_ids(&h), vec![7]);
    assert_eq!(h.reserve_run_ids().unwrap(), 8);
    drop(h);
    // Opening again applies nothing twice.
    let h = History::open(dir.path()).unwrap();
    assert_eq!(h.run_status(7).unwrap().as_deref(), Some("ok"));
}

#[path = "tests_shared.rs"]
mod shared;
