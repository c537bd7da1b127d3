//! Trigger: authorize, coalesce per host, bounded queue and worker pool that calls the runner.
//!
//! The capture side calls [`Trigger::detected`], which only decides and enqueues (no I/O besides
//! one history row); runs happen on the pool's worker threads. Per host: one run at a time, a
//! knock during a run becomes at most one follow-up, and `cooldown` suppresses repeats after
//! success. At most `max_concurrent_runs` run at once and at most `queue_limit` wait.

mod command;
mod execute;
mod observe;
mod ratelimit;
mod refused;
mod rows;

pub use refused::SpaClaim;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{Door, HostKeyChecking, PlaybookAction, RunnerSettings};
use crate::counters::RunCounts;
use crate::history::{History, HistoryWriter, KnockOutcome, RunEnd, RunStatus};
use crate::metrics::Registry;
use crate::timefmt::{rfc3339_millis, unix_millis};

use super::sequence::Detected;
use execute::execute;
use ratelimit::RateLimit;
use rows::{Bucket, Row};

pub use command::run_command;

/// Runs a playbook against one knocking host. Implemented by the runner (in-process, blocking);
/// called on a worker thread of the trigger's pool, never on a capture thread.
pub trait Launcher: Send + Sync {
    fn run(&self, job: &RunJob) -> RunOutcome;
}

/// One playbook run for one host, as the door describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunJob {
    pub run_id: i64,
    pub door: String,
    pub host: IpAddr,
    /// The door's playbook, inventory vars, groups and login.
    pub action: PlaybookAction,
    /// How long to wait for the host's sshd before the first task.
    pub ssh_wait: Duration,
    /// Default deadline of each task (`[runner] task_timeout`).
    pub task_timeout: Option<Duration>,
    pub host_key_checking: HostKeyChecking,
    /// This run's log file (its directory exists).
    pub log_path: PathBuf,
    /// An SPA knock's host key fingerprints (SHA256 of the key blobs): the run accepts exactly
    /// these keys, instead of known_hosts.
    pub pinned_host_keys: Option<Vec<[u8; 32]>>,
}

/// The recap of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// The run's counters summed over its hosts.
    pub counts: RunCounts,
    pub exit_code: i32,
    pub error: Option<String>,
}

impl RunOutcome {
    /// A run that could not do its job: one failure, exit code 1, and why.
    pub fn failed(error: String) -> RunOutcome {
        RunOutcome {
            counts: RunCounts {
                failed: 1,
                ..RunCounts::default()
            },
            exit_code: 1,
            error: Some(error),
        }
    }

    pub fn succeeded(&self) -> bool {
        self.exit_code == 0
            && self.counts.failed == 0
            && self.counts.unreachable == 0
            && self.error.is_none()
    }
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TriggerStats {
    pub accepted: u64,
    pub coalesced: u64,
    pub not_allowed: u64,
    pub cooldown: u64,
    pub queue_full: u64,
    pub failed_attempts: u64,
    /// History rows not written because of the rate limit.
    pub history_suppressed: u64,
    /// History rows dropped because the writer's queue was full.
    pub history_dropped: u64,
    /// History rows the database refused.
    pub history_errors: u64,
    pub runs_ok: u64,
    pub runs_failed: u64,
    pub runs_interrupted: u64,
    /// The most runs that were ever in progress at once.
    pub peak_running: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    coalesced: AtomicU64,
    not_allowed: AtomicU64,
    cooldown: AtomicU64,
    queue_full: AtomicU64,
    failed_attempts: AtomicU64,
    history_suppressed: AtomicU64,
    runs_ok: AtomicU64,
    runs_failed: AtomicU64,
    runs_interrupted: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

struct Job {
    run_id: i64,
    host: IpAddr,
    door: Arc<Door>,
    log_path: PathBuf,
    claim: Option<Arc<SpaClaim>>,
    /// When the knock was seen (claims across listeners tell one knock from the next by it).
    knocked: SystemTime,
}

/// A knock during a run: at most one follow-up run, with the door, SPA claim and time of the
/// latest such knock's first sighting.
type Followup = (Arc<Door>, Option<Arc<SpaClaim>>, SystemTime);

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Phase {
    Queued,
    Running,
}

struct HostState {
    phase: Phase,
    run_id: i64,
    followup: Option<Followup>,
}

struct State {
    doors: Vec<Arc<Door>>,
    settings: RunnerSettings,
    queue: VecDeque<Job>,
    hosts: HashMap<IpAddr, HostState>,
    last_success: HashMap<(IpAddr, String), Instant>,
    running: usize,
    /// Runs in progress: id → door name.
    running_ids: HashMap<i64, String>,
    peak_running: usize,
    workers: usize,
    stopping: bool,
    /// Rows about knocks that started nothing (failed, refused, cooldown, queue full).
    limiter: RateLimit,
    /// Rows about knocks that joined a run (coalesced): their own bucket, so a flood of refusals
    /// never hides them. Accepted rows (one per run) are never rate-limited.
    granted_limiter: RateLimit,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    launcher: Arc<dyn Launcher>,
    history: Arc<History>,
    /// Every history write goes through it, outside the state lock's critical path.
    writer: HistoryWriter,
    counters: Counters,
    /// Knocks and runs by door, for the metrics endpoint.
    metrics: Arc<Registry>,
}

/// Knock rows that may wait for the history writer at once.
const HISTORY_QUEUE: usize = 10_000;

/// What happened at shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Runs that finished within the grace period.
    pub finished: usize,
    /// Runs still going when the grace period ended (recorded as interrupted).
    pub interrupted: usize,
    /// Queued runs that never started (recorded as interrupted).
    pub never_started: usize,
}

/// The trigger and its worker pool.
pub struct Trigger {
    shared: Arc<Shared>,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Trigger {
    /// The history the trigger records into (the SPA replay cache lives there too).
    pub fn history(&self) -> &History {
        &self.shared.history
    }

    /// Starts `settings.max_concurrent_runs` workers. `history_rate`: failed or refused knocks
    /// recorded per second at most.
    pub fn start(
        doors: &[Door],
        settings: RunnerSettings,
        history_rate: u32,
        launcher: Arc<dyn Launcher>,
        history: Arc<History>,
    ) -> Trigger {
        let state = State {
            doors: doors.iter().cloned().map(Arc::new).collect(),
            settings,
            queue: VecDeque::new(),
            hosts: HashMap::new(),
            last_success: HashMap::new(),
            running: 0,
            running_ids: HashMap::new(),
            peak_running: 0,
            workers: 0,
            stopping: false,
            limiter: RateLimit::new(history_rate, Instant::now()),
            granted_limiter: RateLimit::new(history_rate, Instant::now()),
        };
        let writer = HistoryWriter::start(Arc::clone(&history), HISTORY_QUEUE);
        let t = Trigger {
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                changed: Condvar::new(),
                launcher,
                history,
                writer,
                counters: Counters::default(),
                metrics: Arc::new(Registry::new()),
            }),
            handles: Mutex::new(Vec::new()),
        };
        t.spawn_workers();
        t
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    fn spawn_workers(&self) {
        let mut st = self.lock();
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        handles.retain(|h| !h.is_finished());
        while st.workers < st.settings.max_concurrent_runs {
            st.workers += 1;
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("knockplay-run".into())
                .spawn(move || worker(shared));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    st.workers -= 1;
                    tracing::error!("cannot start a run worker: {e}");
                    break;
                }
            }
        }
    }

    /// Applies a reloaded configuration. Queued and running runs keep the door they started with.
    pub fn reconfigure(&self, doors: &[Door], settings: RunnerSettings, history_rate: u32) {
        {
            let mut st = self.lock();
            st.doors = doors.iter().cloned().map(Arc::new).collect();
            st.settings = settings;
            st.limiter = RateLimit::new(history_rate, Instant::now());
            st.granted_limiter = RateLimit::new(history_rate, Instant::now());
        }
        self.shared.changed.notify_all();
        self.spawn_workers();
    }

    /// A completed sequence: authorize, dedupe, queue. Returns what was decided.
    pub fn detected(&self, d: Detected, now: Instant) -> KnockOutcome {
        self.detected_with(d, now, None)
    }

    /// A verified SPA packet for door `door`: the run goes to `target` and accepts only the host
    /// keys the packet carried.
    pub fn spa_accepted(
        &self,
        door: usize,
        target: IpAddr,
        claim: SpaClaim,
        now: Instant,
    ) -> KnockOutcome {
        self.detected_with(
            Detected {
                source: target,
                door,
            },
            now,
            Some(Arc::new(claim)),
        )
    }

    fn detected_with(
        &self,
        d: Detected,
        now: Instant,
        claim: Option<Arc<SpaClaim>>,
    ) -> KnockOutcome {
        let mut st = self.lock();
        let Some(door) = st.doors.get(d.door).cloned() else {
            return KnockOutcome::ShuttingDown;
        };
        let host = d.source;
        let c = &self.shared.counters;
        if !door.allow.permits(host) {
            bump(&c.not_allowed);
            tracing::warn!(door = %door.name, source = %host, "knock from a source outside the allowlist: refused");
            self.shared.record_limited(
                &mut st,
                Bucket::Refused,
                Row::new(
                    host,
                    &door.name,
                    KnockOutcome::NotAllowed,
                    "source not in allow list".into(),
                ),
                now,
            );
            return KnockOutcome::NotAllowed;
        }
        if st.stopping {
            self.shared.record_limited(
                &mut st,
                Bucket::Refused,
                Row::new(
                    host,
                    &door.name,
                    KnockOutcome::ShuttingDown,
                    "listener is stopping".into(),
                ),
                now,
            );
            return KnockOutcome::ShuttingDown;
        }
        if let Some(t) = st.last_success.get(&(host, door.name.clone())) {
            let since = now.saturating_duration_since(*t);
            if since < door.cooldown {
                bump(&c.cooldown);
                let detail = format!(
                    "configured {}s ago; cooldown {}s",
                    since.as_secs(),
                    door.cooldown.as_secs()
                );
                tracing::info!(door = %door.name, source = %host, "{detail}: ignored");
                self.shared.record_limited(
                    &mut st,
                    Bucket::Refused,
                    Row::new(host, &door.name, KnockOutcome::Cooldown, detail),
                    now,
                );
                return KnockOutcome::Cooldown;
            }
        }
        if let Some(h) = st.hosts.get_mut(&host) {
            let run_id = h.run_id;
            let detail = match h.phase {
                Phase::Queued => format!("run {run_id} is queued"),
                Phase::Running if h.followup.is_none() => {
                    h.followup = Some((Arc::clone(&door), claim.clone(), SystemTime::now()));
                    format!("one follow-up run after run {run_id}")
                }
                Phase::Running => format!("follow-up after run {run_id} already pending"),
            };
            bump(&c.coalesced);
            tracing::info!(door = %door.name, source = %host, "knock coalesced: {detail}");
            let row = Row::new(host, &door.name, KnockOutcome::Coalesced, detail);
            self.shared
                .record_limited(&mut st, Bucket::Granted, row.run(run_id), now);
            return KnockOutcome::Coalesced;
        }
        if st.running + st.queue.len() >= st.settings.max_concurrent_runs + st.settings.queue_limit
        {
            bump(&c.queue_full);
            let detail = format!(
                "{} running, {} queued (queue_limit {})",
                st.running,
                st.queue.len(),
                st.settings.queue_limit
            );
            tracing::warn!(door = %door.name, source = %host, "queue full, knock dropped: {detail}");
            self.shared.record_limited(
                &mut st,
                Bucket::Refused,
                Row::new(host, &door.name, KnockOutcome::QueueFull, detail),
                now,
            );
            return KnockOutcome::QueueFull;
        }
        let name = door.name.clone();
        let detail = claim.as_ref().map(|c| c.describe(host)).unwrap_or_default();
        let run_id = self
            .shared
            .enqueue(&mut st, host, door, claim, SystemTime::now());
        bump(&c.accepted);
        // Not rate-limited: one row per run, and the queue bounds runs. (Under the limit, a herd
        // right after other knocks lost the rows of the last hosts: runs without a knock.)
        let row = Row::new(host, &name, KnockOutcome::Accepted, detail);
        self.shared.record_for_run(row.run(run_id));
        KnockOutcome::Accepted
    }

    /// The periodic tick (about twice a second, from the detector): puts the knocks the rate
    /// limits skipped on record as summary rows.
    pub fn tick(&self) {
        let mut st = self.lock();
        self.shared.record_suppressed(&mut st);
    }

    /// Waits until every history row decided so far is in the database (true), or `timeout`
    /// passes (false).
    pub fn flush_history(&self, timeout: Duration) -> bool {
        self.shared.writer.flush(Instant::now() + timeout)
    }

    /// Waits until nothing is queued or running (true), or `timeout` passes (false).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let busy = |st: &State| st.running + st.queue.len() > 0 || !st.hosts.is_empty();
        let (_st, idle) = self.shared.wait_while(self.lock(), deadline, busy);
        idle
    }

    /// Stops taking knocks, drops the queue (recorded as interrupted), lets running runs finish
    /// for up to `grace`, then records the rest as interrupted.
    pub fn shutdown(&self, grace: Duration) -> ShutdownReport {
        let mut report = ShutdownReport::default();
        let mut st = self.lock();
        st.stopping = true;
        let dropped: Vec<Job> = st.queue.drain(..).collect();
        for job in &dropped {
            st.hosts.remove(&job.host);
            self.shared.finish_record(
                job.run_id,
                RunStatus::Interrupted,
                &RunOutcome::default(),
                None,
                Some("the listener stopped before this run started"),
            );
            self.shared
                .count_run(&job.door.name, RunStatus::Interrupted, None);
        }
        report.never_started = dropped.len();
        self.shared.changed.notify_all();
        let at_start = st.running;
        let (st, _) = self
            .shared
            .wait_while(st, Instant::now() + grace, |st| st.running > 0);
        let still: Vec<(i64, String)> = st
            .running_ids
            .iter()
            .map(|(i, d)| (*i, d.clone()))
            .collect();
        drop(st);
        for (id, door) in &still {
            let msg = format!(
                "the listener stopped; grace period of {}s passed",
                grace.as_secs()
            );
            self.shared.finish_record(
                *id,
                RunStatus::Interrupted,
                &RunOutcome::default(),
                None,
                Some(&msg),
            );
            self.shared.count_run(door, RunStatus::Interrupted, None);
        }
        report.interrupted = still.len();
        report.finished = at_start - still.len().min(at_start);
        // Idle workers have exited; busy ones are left to the process exit.
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        for h in std::mem::take(&mut *handles) {
            if h.is_finished() {
                let _ = h.join();
            }
        }
        // Everything decided so far reaches the database before the process goes.
        self.shared.record_suppressed(&mut self.lock());
        self.shared
            .writer
            .stop(Instant::now() + Duration::from_secs(10));
        report
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a worker panicked in the launcher; the state itself stays valid.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits while `busy` holds, until `deadline`. Returns the lock and whether `busy` ended.
    fn wait_while<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        deadline: Instant,
        busy: impl Fn(&State) -> bool,
    ) -> (MutexGuard<'a, State>, bool) {
        while busy(&st) {
            let now = Instant::now();
            if now >= deadline {
                return (st, false);
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        (st, true)
    }

    fn enqueue(
        &self,
        st: &mut State,
        host: IpAddr,
        door: Arc<Door>,
        claim: Option<Arc<SpaClaim>>,
        knocked: SystemTime,
    ) -> i64 {
        let now = SystemTime::now();
        let stamp = rfc3339_millis(unix_millis(now)).replace(':', "");
        let log_path = st
            .settings
            .log_dir
            .join(host.to_string())
            .join(format!("{stamp}-{}.log", door.name));
        let run_id = self
            .writer
            .run_queued(host, &door.name, log_path.clone(), now);
        tracing::info!(door = %door.name, source = %host, run = run_id, "knock accepted: run queued");
        st.hosts.insert(
            host,
            HostState {
                phase: Phase::Queued,
                run_id,
                followup: None,
            },
        );
        st.queue.push_back(Job {
            run_id,
            host,
            door,
            log_path,
            claim,
            knocked,
        });
        self.changed.notify_all();
        run_id
    }

    fn finish_record(
        &self,
        id: i64,
        status: RunStatus,
        o: &RunOutcome,
        exit: Option<i32>,
        error: Option<&str>,
    ) {
        self.writer.run_finished(
            id,
            RunEnd {
                status,
                counts: o.counts,
                exit_code: exit,
                error: error.map(str::to_string),
                at: SystemTime::now(),
            },
        );
    }
}

fn worker(shared: Arc<Shared>) {
    loop {
        let (job, settings) = {
            let mut st = shared.lock();
            loop {
                if st.stopping || st.workers > st.settings.max_concurrent_runs {
                    st.workers -= 1;
                    shared.changed.notify_all();
                    return;
                }
                if st.running < st.settings.max_concurrent_runs {
                    if let Some(job) = st.queue.pop_front() {
                        st.running += 1;
                        st.peak_running = st.peak_running.max(st.running);
                        st.running_ids.insert(job.run_id, job.door.name.clone());
                        if let Some(h) = st.hosts.get_mut(&job.host) {
                            h.phase = Phase::Running;
                        }
                        break (job, st.settings.clone());
                    }
                }
                st = shared.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
        };
        let started = Instant::now();
        match execute(&shared, &job, &settings) {
            Some(outcome) => finish(&shared, job, outcome, started.elapsed()),
            None => {
                let mut st = shared.lock();
                st.running -= 1;
                st.running_ids.remove(&job.run_id);
                // The other listener saw this host's knocks too and runs (or ran) it.
                st.hosts.remove(&job.host);
                shared.changed.notify_all();
            }
        }
    }
}

fn finish(shared: &Shared, job: Job, outcome: RunOutcome, took: Duration) {
    let ok = outcome.succeeded();
    let status = if ok { RunStatus::Ok } else { RunStatus::Failed };
    shared.count_run(&job.door.name, status, Some(took));
    shared.finish_record(
        job.run_id,
        status,
        &outcome,
        Some(outcome.exit_code),
        outcome.error.as_deref(),
    );
    let cooldown = if ok {
        job.door.cooldown
    } else {
        Duration::ZERO
    };
    shared
        .history
        .release(job.host, &job.door.name, job.run_id, cooldown);
    if ok {
        tracing::info!(door = %job.door.name, host = %job.host, run = job.run_id, ok = outcome.counts.ok, changed = outcome.counts.changed, "run succeeded");
    } else {
        tracing::warn!(door = %job.door.name, host = %job.host, run = job.run_id, exit = outcome.exit_code,
            error = outcome.error.as_deref().unwrap_or(""), "run failed; see {}", job.log_path.display());
    }
    let mut st = shared.lock();
    st.running -= 1;
    st.running_ids.remove(&job.run_id);
    let now = Instant::now();
    if ok && !job.door.cooldown.is_zero() {
        st.last_success
            .insert((job.host, job.door.name.clone()), now);
        prune_cooldowns(&mut st, now);
    }
    let followup = st.hosts.remove(&job.host).and_then(|h| h.followup);
    if let Some((door, claim, knocked)) = followup {
        let suppressed = ok && !door.cooldown.is_zero() && door.name == job.door.name;
        if suppressed {
            bump(&shared.counters.cooldown);
            let detail = format!(
                "follow-up skipped: run {} just succeeded (cooldown {}s)",
                job.run_id,
                door.cooldown.as_secs()
            );
            shared.record(Row::new(
                job.host,
                &door.name,
                KnockOutcome::Cooldown,
                detail,
            ));
        } else if st.stopping {
            shared.record(Row::new(
                job.host,
                &door.name,
                KnockOutcome::ShuttingDown,
                "follow-up not started".into(),
            ));
        } else {
            let run_id = shared.enqueue(&mut st, job.host, door, claim, knocked);
            tracing::info!(host = %job.host, run = run_id, "follow-up run queued after run {}", job.run_id);
        }
    }
    shared.changed.notify_all();
}

/// Forgets successes whose cooldown is over so the map stays as small as the active hosts.
fn prune_cooldowns(st: &mut State, now: Instant) {
    if st.last_success.len() < 1024 {
        return;
    }
    let longest = st
        .doors
        .iter()
        .map(|d| d.cooldown)
        .max()
        .unwrap_or_default();
    st.last_success
        .retain(|_, t| now.saturating_duration_since(*t) < longest);
}

#[cfg(test)]
#[path = "trigger_tests.rs"]
mod tests;
