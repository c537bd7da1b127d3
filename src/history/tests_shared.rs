//! Shared-database behaviour on a real PostgreSQL: claims between two listeners, leases that
//! expire, and the spool while the server is stopped.

use super::super::*;
use super::Bed;
use std::time::Instant;

fn host() -> IpAddr {
    "10.232.1.5".parse().unwrap()
}

fn queue(w: &HistoryWriter, host: IpAddr) -> i64 {
    let id = w.run_queued(host, "d", "l".into(), SystemTime::now());
    assert!(w.flush(Instant::now() + Duration::from_secs(10)));
    id
}

fn held_by(c: Claim) -> (String, i64, bool) {
    match c {
        Claim::Held {
            listener,
            run_id,
            cooling_down,
        } => (listener, run_id, cooling_down),
        other => panic!("expected the claim held elsewhere, got {other:?}"),
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn two_listeners_run_a_knock_once_and_a_dead_listeners_claim_expires() {
    let bed = Bed::postgres();
    let lease = Duration::from_secs(1);
    let a = Arc::new(bed.open_as("a", lease));
    let b = Arc::new(bed.open_as("b", lease));
    let (wa, wb) = (
        HistoryWriter::start(Arc::clone(&a), 10),
        HistoryWriter::start(Arc::clone(&b), 10),
    );
    let knocked = SystemTime::now();
    let (ra, rb) = (queue(&wa, host()), queue(&wb, host()));
    assert_ne!(ra, rb, "listeners number runs from disjoint blocks");

    // Both saw the knock: the first claim wins, the second learns who has it.
    assert_eq!(a.claim(host(), "d", ra, knocked), Claim::Granted);
    assert_eq!(
        held_by(b.claim(host(), "d", rb, knocked)),
        ("a".into(), ra, false)
    );
    // Still a's knock after a's run ended (no cooldown): the slow listener does not run it again.
    a.release(host(), "d", ra, Duration::ZERO);
    held_by(b.claim(host(), "d", rb, knocked));
    wb.claimed_elsewhere(
        rb,
        KnockOutcome::ClaimedElsewhere,
        "a has it".into(),
        Some(ra),
    );
    assert!(wb.flush(Instant::now() + Duration::from_secs(10)));
    assert_eq!(
        b.run_status(rb).unwrap(),
        None,
        "the losing run's row is gone"
    );

    // The host's next knock may go to b. Then b dies (stops renewing): once its lease is over,
    // a marks the run interrupted and serves the host's next knock.
    let rb2 = queue(&wb, host());
    let next = knocked + Duration::from_secs(5);
    assert_eq!(b.claim(host(), "d", rb2, next), Claim::Granted);
    wb.run_started(rb2, SystemTime::now());
    assert!(wb.flush(Instant::now() + Duration::from_secs(10)));
    held_by(a.claim(host(), "d", 999, next + Duration::from_secs(5)));
    std::thread::sleep(lease + Duration::from_millis(300));
    a.store.keep_leases();
    assert_eq!(b.run_status(rb2).unwrap().as_deref(), Some("interrupted"));
    let ra2 = queue(&wa, host());
    assert_eq!(
        a.claim(host(), "d", ra2, next + Duration::from_secs(5)),
        Claim::Granted
    );

    // Cooldown holds across listeners: after a's success, b's knock is the cooldown.
    a.release(host(), "d", ra2, Duration::from_secs(60));
    let rb3 = queue(&wb, host());
    assert_eq!(
        held_by(b.claim(
            host(),
            "d",
            rb3,
            SystemTime::now() + Duration::from_secs(10)
        )),
        ("a".into(), ra2, true)
    );
    // The replay cache is shared too.
    assert!(a.spa_nonce_record(&[7; 16], 100).unwrap());
    assert!(!b.spa_nonce_record(&[7; 16], 101).unwrap());
    // b saw the packet a recorded a second ago: not a replay, a's to run.
    assert_eq!(
        b.spa_nonce_owner(&[7; 16], 101).unwrap().as_deref(),
        Some("a")
    );
    assert_eq!(
        a.spa_nonce_owner(&[7; 16], 101).unwrap(),
        None,
        "at a: a replay"
    );
    assert_eq!(
        b.spa_nonce_owner(&[7; 16], 160).unwrap(),
        None,
        "later: a replay"
    );
}

#[test]
fn rows_wait_in_the_spool_while_postgres_is_down_and_arrive_when_it_is_back() {
    let bed = Bed::postgres();
    let pg = bed.pg.as_ref().unwrap();
    let h = Arc::new(bed.open_as("a", Duration::from_secs(5)));
    let w = HistoryWriter::start(Arc::clone(&h), 100);
    assert!(h.health().db_up);
    pg.stop();
    let mut ids = Vec::new();
    for i in 0..20u8 {
        let id = w.run_queued([10, 0, 0, i].into(), "d", "l".into(), SystemTime::now());
        w.run_started(id, SystemTime::now());
        assert!(w.knock(KnockRecord {
            at: SystemTime::now(),
            source: [10, 0, 0, i].into(),
            door: "d".into(),
            outcome: KnockOutcome::Accepted,
            detail: String::new(),
            run_id: Some(id),
        }));
        ids.push(id);
    }
    // The writer hands the rows to the spool; the listener is not held up.
    assert!(w.flush(Instant::now() + Duration::from_secs(30)));
    wait_for("the spool", Duration::from_secs(30), || {
        h.health().spool_rows == 60
    });
    let health = h.health();
    assert_eq!((health.backend, health.db_up), ("postgres", false));
    let started = Instant::now();
    assert!(matches!(
        h.claim(host(), "d", 1, SystemTime::now()),
        Claim::Unavailable(_)
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "claims have a deadline"
    );
    // The spool is on disk: a restarted listener would still have it.
    let file = bed.tmp.path().join("state-a").join(spool::SPOOL_FILE);
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 60);

    pg.restart();
    wait_for("the spool to drain", Duration::from_secs(60), || {
        h.health().spool_rows == 0
    });
    assert!(h.health().db_up);
    let (knocks, runs) = h.query(&Query::default(), SystemTime::now()).unwrap();
    assert_eq!(knocks.len(), 20);
    let mut got: Vec<i64> = runs.iter().map(|r| r.id).collect();
    got.sort();
    assert_eq!(got, ids);
    assert!(runs
        .iter()
        .all(|r| r.status == "running" && r.listener == "a"));
    assert!(!file.exists(), "an empty spool leaves no file");
    assert_eq!(h.health().write_errors, 0);
}

#[test]
fn a_reader_with_select_rights_only_reads_a_migrated_history() {
    let bed = Bed::postgres();
    let pg = bed.pg.as_ref().unwrap();
    let h = bed.open();
    h.record_knock(&KnockRecord {
        at: SystemTime::now(),
        source: host(),
        door: "d".into(),
        outcome: KnockOutcome::Accepted,
        detail: String::new(),
        run_id: None,
    })
    .unwrap();
    let mut admin = pg.client("history");
    admin
        .batch_execute(&format!(
            "CREATE ROLE reader LOGIN PASSWORD '{}';
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader;",
            super::pg_server::PASSWORD
        ))
        .unwrap();
    let url = bed.url.to_string().replace("knockplay@", "reader@");
    let reader = History::open_url(&HistoryUrl::parse(&url, Path::new("/")).unwrap()).unwrap();
    let (knocks, _) = reader.query(&Query::default(), SystemTime::now()).unwrap();
    assert_eq!(knocks.len(), 1);
}
