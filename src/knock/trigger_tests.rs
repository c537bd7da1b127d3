//! Trigger tests with a fake launcher: allowlist, coalescing, cooldown, pool and queue bounds.

use super::*;
use crate::config::Action;
use crate::config::{Allow, PlaybookAction};
use crate::knock::flags::TcpFlagRule;
use crate::knock::port::PortSpec;
use crate::knock::sequence::{FailReason, FailedAttempt};
use crate::value::Vars;
use std::sync::atomic::AtomicUsize;

/// Records every call, sleeps `delay`, and tracks how many runs overlap.
struct FakeLauncher {
    delay: Duration,
    calls: Mutex<Vec<(IpAddr, String)>>,
    active: AtomicUsize,
    peak: AtomicUsize,
    fail_hosts: Vec<IpAddr>,
}

impl FakeLauncher {
    fn new(delay_ms: u64) -> Arc<Self> {
        Arc::new(FakeLauncher {
            delay: Duration::from_millis(delay_ms),
            calls: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            fail_hosts: Vec::new(),
        })
    }
    /// Waits (up to 30 s, for loaded machines) until `n` runs have started.
    fn wait_started(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.calls.lock().unwrap().len() < n {
            assert!(Instant::now() < deadline, "{n} runs did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    fn calls_for(&self, host: IpAddr) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, _)| *h == host)
            .count()
    }
}

impl Launcher for FakeLauncher {
    fn run(&self, job: &RunJob) -> RunOutcome {
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.calls
            .lock()
            .unwrap()
            .push((job.host, job.door.clone()));
        std::fs::write(
            &job.log_path,
            format!("run {} for {}\n", job.run_id, job.host),
        )
        .unwrap();
        std::thread::sleep(self.delay);
        self.active.fetch_sub(1, Ordering::SeqCst);
        if self.fail_hosts.contains(&job.host) {
            RunOutcome {
                counts: RunCounts {
                    failed: 1,
                    ..RunCounts::default()
                },
                exit_code: 2,
                ..RunOutcome::default()
            }
        } else {
            RunOutcome {
                counts: RunCounts {
                    ok: 3,
                    changed: 1,
                    ..RunCounts::default()
                },
                ..RunOutcome::default()
            }
        }
    }
}

fn door(name: &str, cooldown_ms: u64, allow: Allow) -> Door {
    Door {
        name: name.into(),
        sequence: vec![PortSpec::tcp(7000), PortSpec::tcp(8000)],
        seq_timeout: Duration::from_secs(5),
        tcp_flags: TcpFlagRule::default(),
        allow,
        action: Action::Playbook(PlaybookAction {
            playbook: "/nonexistent/site.yml".into(),
            inventory_vars: Vars::new(),
            groups: vec!["web".into()],
            user: "root".into(),
            private_key: None,
            port: 22,
            become_: false,
        }),
        cooldown: Duration::from_millis(cooldown_ms),
        spa: None,
    }
}

fn settings(dir: &std::path::Path, max: usize, queue: usize) -> RunnerSettings {
    RunnerSettings {
        max_concurrent_runs: max,
        queue_limit: queue,
        ssh_wait: Duration::from_secs(1),
        grace_period: Duration::from_secs(1),
        command_timeout: Duration::from_secs(5),
        task_timeout: None,
        host_key_checking: HostKeyChecking::AcceptNew,
        log_dir: dir.join("logs"),
        state_dir: dir.to_path_buf(),
    }
}

fn ip(i: u32) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::from(0x0ae8_0000 + i))
}

struct Bed {
    dir: tempfile::TempDir,
    history: Arc<History>,
}

impl Bed {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let history = Arc::new(History::open(dir.path()).unwrap());
        Bed { dir, history }
    }
    fn trigger(
        &self,
        doors: &[Door],
        max: usize,
        queue: usize,
        launcher: Arc<dyn Launcher>,
    ) -> Trigger {
        Trigger::start(
            doors,
            settings(self.dir.path(), max, queue),
            1000,
            launcher,
            Arc::clone(&self.history),
        )
    }
    fn knocks(&self, t: &Trigger, host: IpAddr) -> Vec<String> {
        assert!(t.flush_history(Duration::from_secs(10)));
        let q = crate::history::Query {
            host: Some(host),
            since: None,
        };
        let (k, _) = self.history.query(&q, SystemTime::now()).unwrap();
        k.into_iter().map(|k| k.result).collect()
    }
    fn runs(&self, t: &Trigger) -> Vec<crate::history::RunRow> {
        assert!(t.flush_history(Duration::from_secs(10)));
        self.history
            .query(&Default::default(), SystemTime::now())
            .unwrap()
            .1
    }
}

fn detect(host: IpAddr) -> Detected {
    Detected {
        source: host,
        door: 0,
    }
}

#[test]
fn a_source_outside_the_allowlist_never_runs() {
    let bed = Bed::new();
    let fake = FakeLauncher::new(0);
    let allow = Allow::Nets(vec!["10.232.0.0/24".parse().unwrap()]);
    let t = bed.trigger(&[door("base", 0, allow)], 2, 10, fake.clone());
    let outsider = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));
    assert_eq!(
        t.detected(detect(outsider), Instant::now()),
        KnockOutcome::NotAllowed
    );
    assert_eq!(
        t.detected(detect(ip(5)), Instant::now()),
        KnockOutcome::Accepted
    );
    assert!(t.wait_idle(Duration::from_secs(5)));
    assert_eq!(fake.calls_for(outsider), 0);
    assert_eq!(fake.calls_for(ip(5)), 1);
    assert_eq!(t.stats().not_allowed, 1);
    assert_eq!(bed.knocks(&t, outsider), vec!["not_allowed"]);
    let runs = bed.runs(&t);
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].status.as_str(), runs[0].counts.ok), ("ok", 3));
    // The run's log file is where the history says.
    assert!(std::fs::read_to_string(&runs[0].log)
        .unwrap()
        .contains("10.232.0.5"));
}

#[test]
fn knocks_during_a_run_coalesce_into_one_follow_up() {
    let bed = Bed::new();
    let fake = FakeLauncher::new(300);
    let t = bed.trigger(&[door("base", 0, Allow::Any)], 4, 10, fake.clone());
    let h = ip(7);
    assert_eq!(
        t.detected(detect(h), Instant::now()),
        KnockOutcome::Accepted
    );
    std::thread::sleep(Duration::from_millis(100)); // the run is in progress now
    for _ in 0..5 {
        assert_eq!(
            t.detected(detect(h), Instant::now()),
            KnockOutcome::Coalesced
        );
    }
    assert!(t.wait_idle(Duration::from_secs(5)));
    assert_eq!(fake.calls_for(h), 2, "one run plus exactly one follow-up");
    assert_eq!(
        fake.peak.load(Ordering::SeqCst),
        1,
        "never two runs for one host at once"
    );
    let knocks = bed.knocks(&t, h);
    assert_eq!(knocks.iter().filter(|k| *k == "coalesced").count(), 5);
}

#[test]
fn a_knock_while_queued_joins_the_queued_run() {
    let bed = Bed::new();
    let fake = FakeLauncher::new(200);
    let t = bed.trigger(&[door("base", 0, Allow::Any)], 1, 10, fake.clone());
    assert_eq!(
        t.detected(detect(ip(1)), Instant::now()),
        KnockOutcome::Accepted
    );
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        t.detected(detect(ip(2)), Instant::now()),
        KnockOutcome::Accepted
    );
    assert_eq!(
        t.detected(detect(ip(2)), Instant::now()),
        KnockOutcome::Coalesced
    );
    assert!(t.wait_idle(Duration::from_secs(5)));
    assert_eq!(fake.calls_for(ip(2)), 1);
}

#[test]
fn cooldown_suppresses_repeats_after_success_but_not_after_failure() {
    let bed = Bed::new();
    let mut fake = FakeLauncher::new(100);
    Arc::get_mut(&mut fake).unwrap().fail_hosts = vec![ip(9)];
    let t = bed.trigger(&[door("base", 400, Allow::Any)], 2, 10, fake.clone());
    let (good, bad) = (ip(8), ip(9));
    t.detected(detect(good), Instant::now());
    t.detected(detect(bad), Instant::now());
    std::thread::sleep(Duration::from_millis(30));
    // Re-knocks during the run: the follow-up after a success is dropped by the cooldown.
    assert_eq!(
        t.detected(detect(good), Instant::now()),
        KnockOutcome::Coalesced
    );
    assert_eq!(
        t.detected(detect(bad), Instant::now()),
        KnockOutcome::Coalesced
    );
    assert!(t.wait_idle(Duration::from_secs(5)));
    assert_eq!(fake.calls_for(good), 1);
    assert_eq!(fake.calls_for(bad), 2, "a failed run gets its follow-up");
    assert_eq!(
        t.detected(detect(good), Instant::now()),
        KnockOutcome::Cooldown
    );
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(
        t.detected(detect(good), Instant::now()),
        KnockOutcome::Accepted
    );
    assert!(t.wait_idle(Duration::from_secs(5)));
    assert_eq!(fake.calls_for(good), 2);
    assert_eq!(
        bed.knocks(&t, good),
        vec!["accepted", "coalesced", "cooldown", "cooldown", "accepted"]
    );
    let statuses: Vec<String> = bed
        .runs(&t)
        .into_iter()
        .filter(|r| r.host == "10.232.0.9")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec!["failed", "failed"]);
}

#[test]
fn the_pool_bound_is_never_exceeded_and_overflow_is_recorded() {
    let bed = Bed::new();
    let fake = FakeLauncher::new(80);
    let t = bed.trigger(&[door("base", 0, Allow::Any)], 3, 10, fake.clone());
    let mut outcomes = HashMap::new();
    for i in 1..=50 {
        *outcomes
            .entry(t.detected(detect(ip(i)), Instant::now()))
            .or_insert(0) += 1;
    }
    // 3 running (or about to be) + 10 queued are accepted; the rest overflow.
    assert_eq!(outcomes[&KnockOutcome::Accepted], 13);
    assert_eq!(outcomes[&KnockOutcome::QueueFull], 37);
    assert!(t.wait_idle(Duration::from_secs(10)));
    assert_eq!(fake.calls.lock().unwrap().len(), 13);
    assert_eq!(fake.peak.load(Ordering::SeqCst), 3);
    assert_eq!(t.stats().peak_running, 3);
    assert_eq!(t.stats().queue_full, 37);
    assert_eq!(bed.knocks(&t, ip(50)), vec!["queue_full"]);
}

#[test]
fn a_herd_of_fifty_all_run_once_within_the_bound() {
    let bed = Bed::new();
    let fake = FakeLauncher::new(20);
    let t = bed.trigger(&[door("base", 60_000, Allow::Any)], 8, 100, fake.clone());
    for i in 1..=50 {
        assert_eq!(
            t.detected(detect(ip(i)), Instant::now()),
            KnockOutcome::Accepted
        );
    }
    // Each host knocks again (e.g. --until-configured) while runs are going.
    for i in 1..=50 {
        t.detected(detect(ip(i)), Instant::now());
    }
    assert!(t.wait_idle(Duration::from_secs(20)));
    for i in 1..=50 {
        assert_eq!(fake.calls_for(ip(i)), 1, "host {i}");
    }
    assert!(fake.peak.load(Ordering::SeqCst) <= 8);
    assert_eq!(bed.runs(&t).iter().filter(|r| r.status == "ok").count(), 50);
}

#[test]
fn shutdown_lets_runs_finish_within_grace_and_interrupts_the_rest() {
    let bed = Bed::new();
    let fake = FakeLauncher::new(1500);
    let t = bed.trigger(&[door("base", 0, Allow::Any)], 2, 10, fake.clone());
    for i in 1..=4 {
        t.detected(detect(ip(i)), Instant::now());
    }
    fake.wait_started(2);
    let report = t.shutdown(Duration::from_millis(200));
    assert_eq!(
        report,
        ShutdownReport {
            finished: 0,
            interrupted: 2,
            never_started: 2
        }
    );
    let statuses: Vec<String> = bed.runs(&t).into_iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec!["interrupted"; 4]);
    assert_eq!(
        t.detected(detect(ip(9)), Instant::now()),
        KnockOutcome::ShuttingDown
    );

    let bed = Bed::new();
    let fake = FakeLauncher::new(100);
    let t = bed.trigger(&[door("base", 0, Allow::Any)], 2, 10, fake.clone());
    t.detected(detect(ip(1)), Instant::now());
    fake.wait_started(1);
    let report = t.shutdown(Duration::from_secs(5));
    assert_eq!(
        report,
        ShutdownReport {
            finished: 1,
            interrupted: 0,
            never_started: 0
        }
    );
    assert_eq!(bed.runs(&t)[0].status, "ok");
}

#[test]
fn command_doors_run_the_command_with_the_ip() {
    let bed = Bed::new();
    let out = bed.dir.path().join("out.txt");
    let mut d = door("legacy", 0, Allow::Any);
    d.action = Action::Command(format!("echo opened for %IP% >> {}", out.display()));
    let mut failing = door("broken", 0, Allow::Any);
    failing.action = Action::Command("echo nope; exit 3".into());
    let fake = FakeLauncher::new(0);
    let t = bed.trigger(&[d, failing], 2, 10, fake.clone());
    t.detected(detect(ip(4)), Instant::now());
    t.detected(
        Detected {
            source: ip(5),
            door: 1,
        },
        Instant::now(),
    );
    assert!(t.wait_idle(Duration::from_secs(5)));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "opened for 10.232.0.4\n"
    );
    assert!(
        fake.calls.lock().unwrap().is_empty(),
        "commands do not go through the launcher"
    );
    let runs = bed.runs(&t);
    let broken = runs.iter().find(|r| r.door == "broken").unwrap();
    assert_eq!(
        (broken.status.as_str(), broken.exit_code),
        ("failed", Some(3))
    );
    assert_eq!(std::fs::read_to_string(&broken.log).unwrap(), "nope\n");
}

#[test]
fn failed_attempts_are_recorded_within_the_rate_limit() {
    let bed = Bed::new();
    let t = Trigger::start(
        &[door("base", 0, Allow::Any)],
        settings(bed.dir.path(), 1, 1),
        2,
        FakeLauncher::new(0),
        Arc::clone(&bed.history),
    );
    let now = Instant::now();
    for i in 0..1000 {
        t.attempt_failed(
            &FailedAttempt {
                source: ip(i),
                door: 0,
                reason: FailReason::WrongOrder,
                stage: 1,
                port: Some(PortSpec::tcp(8000)),
            },
            now,
        );
    }
    assert!(t.flush_history(Duration::from_secs(10)));
    let (knocks, _) = bed
        .history
        .query(&Default::default(), SystemTime::now())
        .unwrap();
    assert_eq!(knocks.len(), 20, "burst of 10 × rate");
    assert_eq!(
        knocks[0].detail,
        "8000/tcp after 1 of 2 ports (expected 8000/tcp)"
    );
    assert_eq!(t.stats().history_suppressed, 980);
    assert_eq!(t.stats().failed_attempts, 1000);
    // Once tokens come back, a summary row says how many were skipped.
    t.attempt_failed(
        &FailedAttempt {
            source: ip(1),
            door: 0,
            reason: FailReason::TooSlow,
            stage: 1,
            port: None,
        },
        now + Duration::from_secs(1),
    );
    assert!(t.flush_history(Duration::from_secs(10)));
    let (knocks, _) = bed
        .history
        .query(&Default::default(), SystemTime::now())
        .unwrap();
    assert_eq!(knocks[20].result, "suppressed");
    assert!(knocks[20]
        .detail
        .starts_with("980 failed or refused knocks not recorded"));
    assert_eq!(knocks[21].result, "too_slow");
}

#[test]
fn accepted_and_coalesced_rows_are_rate_limited_apart_from_refusals() {
    let bed = Bed::new();
    let fake = FakeLauncher::new(300);
    let t = Trigger::start(
        &[door("base", 0, Allow::Any)],
        settings(bed.dir.path(), 4, 100),
        1,
        fake.clone(),
        Arc::clone(&bed.history),
    );
    let now = Instant::now();
    // A flood of failed attempts uses up the refusal bucket (burst 10 × rate 1)...
    for i in 0..100 {
        t.attempt_failed(
            &FailedAttempt {
                source: ip(100 + i),
                door: 0,
                reason: FailReason::WrongOrder,
                stage: 1,
                port: Some(PortSpec::tcp(8000)),
            },
            now,
        );
    }
    // ...and a host in `allow` knocking 50 times while its run goes is still on record: its
    // accepted row (never limited), coalesced rows up to their own bucket, the run and its one
    // follow-up.
    let h = ip(1);
    t.detected(detect(h), now);
    fake.wait_started(1);
    for _ in 0..49 {
        t.detected(detect(h), now);
    }
    assert!(t.wait_idle(Duration::from_secs(10)));
    let rows = bed.knocks(&t, h);
    assert_eq!(rows[0], "accepted");
    assert_eq!(
        rows.iter().filter(|r| *r == "coalesced").count(),
        10,
        "{rows:?}"
    );
    assert_eq!(rows.len(), 11, "{rows:?}");
    let s = t.stats();
    assert_eq!((s.accepted, s.coalesced), (1, 49));
    assert_eq!(s.history_suppressed, 90 + 39);
    assert_eq!(fake.calls_for(h), 2);
    let runs = bed.runs(&t);
    assert_eq!(runs.len(), 2);
    assert!(runs
        .iter()
        .all(|r| r.status == "ok" && r.host == h.to_string()));
}

/// Issue 11: after ten re-knocks from one host used up the rate limit, a herd of 200 left runs
/// whose accepted rows were missing from the history (no trace of the knock). Accepted rows are
/// one per run and never rate-limited.
#[test]
fn regression_issue_11_a_herd_after_a_burst_has_an_accepted_row_for_every_run() {
    let bed = Bed::new();
    let fake = FakeLauncher::new(0);
    // Rate 20/s (the default): bursts of 200.
    let t = Trigger::start(
        &[door("base", 0, Allow::Any)],
        settings(bed.dir.path(), 8, 1000),
        20,
        fake.clone(),
        Arc::clone(&bed.history),
    );
    let now = Instant::now();
    let solo = ip(1000);
    for _ in 0..10 {
        t.detected(detect(solo), now);
        assert!(t.wait_idle(Duration::from_secs(10)));
    }
    for i in 0..200 {
        assert_eq!(t.detected(detect(ip(i)), now), KnockOutcome::Accepted);
    }
    assert!(t.wait_idle(Duration::from_secs(30)));
    let runs = bed.runs(&t);
    assert_eq!(runs.len(), 210);
    let (knocks, _) = bed
        .history
        .query(&Default::default(), SystemTime::now())
        .unwrap();
    for r in &runs {
        let n = knocks
            .iter()
            .filter(|k| k.result == "accepted" && k.source == r.host)
            .filter(|k| k.run_id == Some(r.id))
            .count();
        assert_eq!(n, 1, "run {} of {} has no accepted row", r.id, r.host);
    }
    assert_eq!(t.stats().history_suppressed, 0);
}

#[test]
fn knocks_the_rate_limit_skipped_are_summarized_at_the_next_tick() {
    let bed = Bed::new();
    let t = Trigger::start(
        &[door("base", 0, Allow::Any)],
        settings(bed.dir.path(), 1, 1),
        1,
        FakeLauncher::new(0),
        Arc::clone(&bed.history),
    );
    let now = Instant::now();
    for i in 0..25 {
        let f = FailedAttempt {
            source: ip(i),
            door: 0,
            reason: FailReason::TooSlow,
            stage: 1,
            port: None,
        };
        t.attempt_failed(&f, now);
    }
    // No further knock comes: the tick alone puts the 15 skipped ones on record.
    t.tick();
    t.tick();
    assert!(t.flush_history(Duration::from_secs(10)));
    let (knocks, _) = bed
        .history
        .query(&Default::default(), SystemTime::now())
        .unwrap();
    let notes: Vec<_> = knocks.iter().filter(|k| k.result == "suppressed").collect();
    assert_eq!(notes.len(), 1, "{knocks:?}");
    assert!(notes[0]
        .detail
        .starts_with("15 failed or refused knocks not recorded"));
    assert_eq!(knocks.len(), 11);
    assert_eq!(t.stats().history_suppressed, 15);
}

#[test]
fn an_attempt_cut_off_by_a_reload_is_recorded_as_reloaded() {
    let bed = Bed::new();
    let t = bed.trigger(&[door("base", 0, Allow::Any)], 1, 1, FakeLauncher::new(0));
    let f = FailedAttempt {
        source: ip(7),
        door: 0,
        reason: FailReason::Reloaded,
        stage: 1,
        port: None,
    };
    t.attempt_failed(&f, Instant::now());
    let q = crate::history::Query {
        host: Some(ip(7)),
        since: None,
    };
    assert!(t.flush_history(Duration::from_secs(10)));
    let (k, _) = bed.history.query(&q, SystemTime::now()).unwrap();
    assert_eq!(k.len(), 1);
    assert_eq!(k[0].result, "reloaded");
    assert_eq!(
        k[0].detail,
        "1 of 2 ports when the configuration was reloaded"
    );
    assert_eq!(t.stats().failed_attempts, 1);
}
