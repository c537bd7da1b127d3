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
use std::time::{Instant, SystemTime};

use rusqlite::Connection;

use super::{
    insert_knock, insert_run, update_finished, update_started, History, KnockOutcome, KnockRecord,
    RunEnd,
};

/// Rows written per transaction at most.
const BATCH: usize = 512;

enum Op {
    Knock(KnockRecord),
    Queued {
        id: i64,
        host: IpAddr,
        door: String,
        log_path: PathBuf,
        at: SystemTime,
    },
    Started {
        id: i64,
        at: SystemTime,
    },
    Finished {
        id: i64,
        end: RunEnd,
    },
}

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
}

#[derive(Default)]
struct Queue {
    ops: VecDeque<Op>,
    knocks: usize,
    /// Dropped since the last summary row.
    dropped_unreported: u64,
    stats: WriterStats,
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
        let last = history.max_run_id().unwrap_or_else(|e| {
            tracing::error!("history: {e}");
            0
        });
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
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
            next_id: AtomicI64::new(last + 1),
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

    pub fn stats(&self) -> WriterStats {
        let q = self.shared.lock();
        WriterStats {
            pending: q.ops.len(),
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

fn write_loop(shared: &Shared, history: &History) {
    loop {
        let (batch, dropped) = {
            let mut q = shared.lock();
            while q.ops.is_empty() && q.dropped_unreported == 0 && !q.stop {
                q = shared.work.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            if q.ops.is_empty() && q.dropped_unreported == 0 {
                return;
            }
            let n = q.ops.len().min(BATCH);
            let batch: Vec<Op> = q.ops.drain(..n).collect();
            q.knocks -= batch.iter().filter(|o| matches!(o, Op::Knock(_))).count();
            q.busy = true;
            (batch, std::mem::take(&mut q.dropped_unreported))
        };
        let (written, errors) = write_batch(history, &batch, dropped);
        let mut q = shared.lock();
        q.busy = false;
        q.stats.written += written;
        q.stats.errors += errors;
        shared.done.notify_all();
    }
}

/// Writes one batch in one transaction; returns (rows written, rows refused).
fn write_batch(history: &History, batch: &[Op], dropped: u64) -> (u64, u64) {
    let result = history.with(|c| {
        let tx = c.unchecked_transaction()?;
        let mut written = 0u64;
        let mut errors = 0u64;
        let mut count = |r: rusqlite::Result<()>| match r {
            Ok(()) => written += 1,
            Err(e) => {
                errors += 1;
                tracing::error!("history {}: {e}", history.path().display());
            }
        };
        if dropped > 0 {
            tracing::warn!("history: {dropped} knock rows dropped (writer queue full)");
            count(insert_knock(&tx, &dropped_note(dropped)).map(drop));
        }
        for op in batch {
            count(apply(&tx, op));
        }
        tx.commit()?;
        Ok((written, errors))
    });
    result.unwrap_or_else(|e| {
        tracing::error!("history: {e}");
        (0, batch.len() as u64)
    })
}

fn apply(c: &Connection, op: &Op) -> rusqlite::Result<()> {
    match op {
        Op::Knock(k) => insert_knock(c, k).map(drop),
        Op::Queued {
            id,
            host,
            door,
            log_path,
            at,
        } => insert_run(c, Some(*id), *host, door, log_path, *at).map(drop),
        Op::Started { id, at } => update_started(c, *id, *at),
        Op::Finished { id, end } => update_finished(c, *id, end).map(drop),
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
    fn runs_are_numbered_after_existing_ones_and_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let h = Arc::new(History::open(dir.path()).unwrap());
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
                status: super::super::RunStatus::Ok,
                counts: Default::default(),
                exit_code: Some(0),
                error: None,
                at: SystemTime::now(),
            },
        );
        assert!(w.knock(knock(2)));
        assert!(w.stop(Instant::now() + Duration::from_secs(10)));
        assert_eq!(h.run_status(id).unwrap().as_deref(), Some("ok"));
        let (k, _) = h.query(&Default::default(), SystemTime::now()).unwrap();
        assert_eq!(k.len(), 1);
        assert_eq!(w.stats().written, 4);
    }

    #[test]
    fn a_full_queue_drops_knock_rows_counts_them_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let h = Arc::new(History::open(dir.path()).unwrap());
        let w = HistoryWriter::start(Arc::clone(&h), 3);
        // Hold the database so the writer cannot drain while the queue fills.
        let held = h.conn.lock().unwrap();
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
