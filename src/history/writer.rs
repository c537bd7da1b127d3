//! The history writer: one thread owns the listener's writes, so deciding on a knock (under the
//! trigger's lock, on the capture thread) never waits for SQLite or the disk.
//!
//! Run rows (queued, started, finished) are always kept: there are at most as many as runs, which
//! the trigger bounds. Knock rows wait in a bounded queue; when it is full the row is dropped,
//! counted, and a summary row says how many went missing once the writer catches up. Writes go
//! in batches, one transaction each. Run ids are handed out here, in memory, so a run is
//! numbered before its row exists.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::ops::Op;
use super::spool::Spool;
use super::{History, KnockOutcome, KnockRecord, RunEnd};

/// Rows written per transaction at most.
const BATCH: usize = 512;
/// Retry delays for the spool while the database is away.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// What the writer did since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Rows written.
    pub written: u64,
    /// Knock rows dropped because the queue was full.
    pub dropped: u64,
    /// Rows the database refused (each logged).
    pub errors: u64,
    /// Rows waiting.
    pub pending: usize,
    /// Rows waiting in the spool for the database.
    pub spooled: usize,
    /// Rows dropped because the spool was full.
    pub spool_dropped: u64,
    /// The last batch wrote nothing and had errors: the database is not taking writes.
    pub failing: bool,
}

#[derive(Default)]
struct Queue {
    ops: VecDeque<Op>,
    knocks: usize,
    /// Dropped since the last summary row.
    dropped_unreported: u64,
    stats: WriterStats,
    spool: Option<Spool>,
    busy: bool,
    stop: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Signalled when work arrives or the writer should stop.
    work: Condvar,
    /// Signalled when a batch is done.
    done: Condvar,
    knock_capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer thread and the queue in front of it.
pub struct HistoryWriter {
    shared: Arc<Shared>,
    next_id: AtomicI64,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl HistoryWriter {
    /// Starts the thread. At most `knock_capacity` knock rows wait at once.
    pub fn start(history: Arc<History>, knock_capacity: usize) -> HistoryWriter {
        let first = history.reserve_run_ids().unwrap_or_else(|e| {
            tracing::error!("history: {e}");
            first_id_without_database(&history)
        });
        let spool = match &history.spool_dir {
            Some(dir) => Spool::load(dir, history.spool_limit),
            None => Spool::in_memory(10_000),
        };
        history.spool_rows.store(spool.len(), Ordering::Relaxed);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                spool: Some(spool),
                ..Queue::default()
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            knock_capacity: knock_capacity.max(1),
        });
        let thread_shared = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("knockplay-history".into())
            .spawn(move || write_loop(&thread_shared, &history));
        let handle = match handle {
            Ok(h) => Some(h),
            Err(e) => {
                // Without the thread rows only queue up (bounded for knocks); say so loudly.
                tracing::error!("cannot start the history writer: {e}; history is not recorded");
                None
            }
        };
        HistoryWriter {
            shared,
            next_id: AtomicI64::new(first),
            handle: Mutex::new(handle),
        }
    }

    fn push(&self, q: &mut Queue, op: Op) {
        q.ops.push_back(op);
        self.shared.work.notify_one();
    }

    /// Queues a knock row; false when the queue was full and the row was dropped (counted).
    pub fn knock(&self, k: KnockRecord) -> bool {
        let mut q = self.shared.lock();
        if q.knocks >= self.shared.knock_capacity {
            q.stats.dropped += 1;
            q.dropped_unreported += 1;
            return false;
        }
        q.knocks += 1;
        self.push(&mut q, Op::Knock(k));
        true
    }

    /// Queues a knock row that started a run: never dropped, like the run rows (there are at most
    /// as many as runs, which the trigger bounds).
    pub fn knock_for_run(&self, k: KnockRecord) {
        let mut q = self.shared.lock();
        q.knocks += 1;
        self.push(&mut q, Op::Knock(k));
    }

    /// Numbers a new run and queues its `queued` row; returns its id.
    pub fn run_queued(&self, host: IpAddr, door: &str, log_path: PathBuf, at: SystemTime) -> i64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let op = Op::Queued {
            id,
            host,
            door: door.to_string(),
            log_path,
            at,
        };
        self.push(&mut self.shared.lock(), op);
        id
    }

    pub fn run_started(&self, id: i64, at: SystemTime) {
        self.push(&mut self.shared.lock(), Op::Started { id, at });
    }

    pub fn run_finished(&self, id: i64, end: RunEnd) {
        self.push(&mut self.shared.lock(), Op::Finished { id, end });
    }

    /// Run `id` was queued here but another listener had claimed the host: its row goes and the
    /// knock rows that pointed at it get `outcome` and `detail`.
    pub fn claimed_elsewhere(
        &self,
        id: i64,
        outcome: KnockOutcome,
        detail: String,
        other_run: Option<i64>,
    ) {
        let op = Op::ClaimedElsewhere {
            id,
            outcome,
            detail,
            other_run,
        };
        self.push(&mut self.shared.lock(), op);
    }

    pub fn stats(&self) -> WriterStats {
        let q = self.shared.lock();
        let spool = q.spool.as_ref();
        WriterStats {
            pending: q.ops.len(),
            spooled: spool.map_or(0, Spool::len),
            spool_dropped: spool.map_or(0, |s| s.dropped),
            ..q.stats
        }
    }

    /// Waits until every queued row is written (true) or `deadline` passes (false).
    pub fn flush(&self, deadline: Instant) -> bool {
        let mut q = self.shared.lock();
        while !q.ops.is_empty() || q.busy || q.dropped_unreported > 0 {
            let now = Instant::now();
            if now >= deadline || self.thread_gone() {
                return false;
            }
            q = self
                .shared
                .done
                .wait_timeout(q, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }

    fn thread_gone(&self) -> bool {
        let h = self.handle.lock().unwrap_or_else(|p| p.into_inner());
        h.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Writes what is queued (until `deadline`), then stops the thread. Returns whether
    /// everything was written.
    pub fn stop(&self, deadline: Instant) -> bool {
        let flushed = self.flush(deadline);
        self.shared.lock().stop = true;
        self.shared.work.notify_all();
        let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            if flushed || h.is_finished() {
                let _ = h.join();
            }
        }
        if !flushed {
            let left = self.shared.lock().ops.len();
            tracing::error!("history: {left} rows not written at shutdown (database too slow)");
        }
        flushed
    }
}

impl Drop for HistoryWriter {
    fn drop(&mut self) {
        // The thread writes what is left, then exits; nobody waits for it.
        self.shared.lock().stop = true;
        self.shared.work.notify_all();
    }
}

/// Without a database at start, a listener numbers its runs from its start time in
/// milliseconds × 1000: far above the blocks the database hands out, and apart from another
/// listener's unless both start in the same millisecond.
fn first_id_without_database(history: &History) -> i64 {
    if history.health().backend == "sqlite" {
        return 1;
    }
    crate::timefmt::unix_millis(SystemTime::now()).saturating_mul(1000) + 1
}

fn write_loop(shared: &Shared, history: &History) {
    let mut retry = RETRY_MIN;
    loop {
        let (mut batch, dropped, spool) = {
            let mut q = shared.lock();
            loop {
                let spooled = q.spool.as_ref().is_some_and(|s| !s.is_empty());
                if !q.ops.is_empty() || q.dropped_unreported > 0 || q.stop {
                    break;
                }
                if !spooled {
                    q = shared.work.wait(q).unwrap_or_else(|p| p.into_inner());
                    continue;
                }
                // Retry the spool after a while even when nothing new arrives.
                let (g, t) = shared
                    .work
                    .wait_timeout(q, retry)
                    .unwrap_or_else(|p| p.into_inner());
                q = g;
                if t.timed_out() {
                    break;
                }
            }
            let last = q.ops.is_empty() && q.dropped_unreported == 0 && q.stop;
            let n = q.ops.len().min(BATCH);
            let batch: Vec<Op> = q.ops.drain(..n).collect();
            q.knocks -= batch.iter().filter(|o| o.is_knock()).count();
            q.busy = !last;
            // The spool is worked on without the lock: the trigger keeps queueing meanwhile.
            let spool = q.spool.take();
            let dropped = std::mem::take(&mut q.dropped_unreported);
            if last {
                drop(q);
                if let Some(mut spool) = spool {
                    let mut stats = WriterStats::default();
                    drain_spool(history, &mut spool, &mut stats);
                }
                return;
            }
            (batch, dropped, spool)
        };
        if dropped > 0 {
            tracing::warn!("history: {dropped} knock rows dropped (writer queue full)");
            batch.insert(0, Op::Knock(dropped_note(dropped)));
        }
        let mut stats = WriterStats::default();
        let mut spool = spool.unwrap_or_else(|| Spool::in_memory(history.spool_limit.max(1)));
        // Older rows first: the spool is written before anything newer.
        let result = if !drain_spool(history, &mut spool, &mut stats) {
            Err(None)
        } else if batch.is_empty() {
            Ok(())
        } else {
            match history.store.apply(&batch) {
                Ok(applied) => {
                    count(history, &mut stats, &applied);
                    Ok(())
                }
                Err(e) => Err(Some(e)),
            }
        };
        // Nothing went through: the database is away (PostgreSQL) or refuses every row (SQLite).
        let failed = result.is_err() || (stats.errors > 0 && stats.written == 0);
        match result {
            Ok(()) => retry = RETRY_MIN,
            Err(e) => {
                if spool.is_empty() {
                    if let Some(e) = e {
                        tracing::warn!("history: {e}; rows wait in the local spool");
                    }
                }
                spool.push(batch);
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
        let mut q = shared.lock();
        q.stats.written += stats.written;
        q.stats.errors += stats.errors;
        history.spool_rows.store(spool.len(), Ordering::Relaxed);
        history
            .write_errors
            .store(q.stats.errors + spool.dropped, Ordering::Relaxed);
        q.spool = Some(spool);
        q.busy = false;
        q.stats.failing = failed;
        shared.done.notify_all();
    }
}

/// Writes the spool, oldest first, while the database takes it. True when it is empty.
fn drain_spool(history: &History, spool: &mut Spool, stats: &mut WriterStats) -> bool {
    while !spool.is_empty() {
        let chunk = spool.front(BATCH);
        match history.store.apply(&chunk) {
            Ok(applied) => {
                spool.consume(chunk.len());
                count(history, stats, &applied);
                history.spool_rows.store(spool.len(), Ordering::Relaxed);
                if spool.is_empty() {
                    tracing::warn!("history: the spool is written; the database is up to date");
                }
            }
            Err(e) => {
                tracing::debug!("history: spool not written yet: {e}");
                return false;
            }
        }
    }
    true
}

fn count(history: &History, stats: &mut WriterStats, applied: &super::store::Applied) {
    for r in &applied.results {
        match r {
            Ok(_) => stats.written += 1,
            Err(e) => {
                stats.errors += 1;
                tracing::error!("history {}: {e}", history.location());
            }
        }
    }
}

fn dropped_note(n: u64) -> KnockRecord {
    KnockRecord {
        at: SystemTime::now(),
        source: IpAddr::from([0, 0, 0, 0]),
        door: "*".into(),
        outcome: KnockOutcome::Suppressed,
        detail: format!("{n} knock rows not recorded (history writer queue full)"),
        run_id: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn knock(i: u8) -> KnockRecord {
        KnockRecord {
            at: SystemTime::now(),
            source: IpAddr::from([10, 0, 0, i]),
            door: "d".into(),
            outcome: KnockOutcome::Accepted,
            detail: String::new(),
            run_id: None,
        }
    }

    #[test]
    fn a_full_queue_drops_knock_rows_counts_them_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let h = Arc::new(History::open(dir.path()).unwrap());
        let w = HistoryWriter::start(Arc::clone(&h), 3);
        // Hold the database so the writer cannot drain while the queue fills.
        let held = h.hold_sqlite();
        let mut kept = 0;
        for i in 0..50 {
            kept += usize::from(w.knock(knock(i)));
        }
        // Run rows are never dropped.
        let id = w.run_queued(
            "10.0.0.9".parse().unwrap(),
            "d",
            "z".into(),
            SystemTime::now(),
        );
        drop(held);
        assert!(w.flush(Instant::now() + Duration::from_secs(10)));
        // The writer may have taken one batch before the lock was held: 3 to 6 rows kept.
        assert!((3..=6).contains(&kept), "{kept}");
        let s = w.stats();
        assert_eq!(s.dropped, 50 - kept as u64);
        let (k, _) = h.query(&Default::default(), SystemTime::now()).unwrap();
        let notes: Vec<_> = k.iter().filter(|k| k.result == "suppressed").collect();
        assert_eq!(notes.len(), 1, "{k:?}");
        assert_eq!(
            notes[0].detail,
            format!(
                "{} knock rows not recorded (history writer queue full)",
                s.dropped
            )
        );
        assert_eq!(k.len(), kept + 1);
        assert_eq!(h.run_status(id).unwrap().as_deref(), Some("queued"));
    }
}
