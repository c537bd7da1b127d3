//! What the trigger reports: its counters and load, knocks and runs counted by door for the
//! metrics endpoint as they are decided, the history's health, and whether its workers are alive.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{bump, Shared, Trigger, TriggerStats};
use crate::history::{KnockOutcome, RunStatus};
use crate::metrics::{HistoryHealth, Registry};

impl Shared {
    /// A knock decided on `door` (counted whether or not the history rate limit records it).
    pub(super) fn count_knock(&self, door: &str, outcome: KnockOutcome) {
        self.metrics.knock(door, outcome.as_str());
    }

    /// A run that ended; `took` for runs that ran to their end.
    pub(super) fn count_run(&self, door: &str, status: RunStatus, took: Option<Duration>) {
        let c = &self.counters;
        let counter: Option<&AtomicU64> = match status {
            RunStatus::Ok => Some(&c.runs_ok),
            RunStatus::Failed => Some(&c.runs_failed),
            RunStatus::Interrupted => Some(&c.runs_interrupted),
            RunStatus::Queued | RunStatus::Running => None,
        };
        if let Some(counter) = counter {
            bump(counter);
        }
        self.metrics.run_finished(door, status.as_str(), took);
    }
}

impl Trigger {
    /// Counters since start.
    pub fn stats(&self) -> TriggerStats {
        let c = &self.shared.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let peak = self.lock().peak_running as u64;
        let w = self.shared.writer.stats();
        TriggerStats {
            accepted: g(&c.accepted),
            coalesced: g(&c.coalesced),
            not_allowed: g(&c.not_allowed),
            cooldown: g(&c.cooldown),
            queue_full: g(&c.queue_full),
            failed_attempts: g(&c.failed_attempts),
            history_suppressed: g(&c.history_suppressed),
            history_dropped: w.dropped,
            history_errors: w.errors,
            runs_ok: g(&c.runs_ok),
            runs_failed: g(&c.runs_failed),
            runs_interrupted: g(&c.runs_interrupted),
            peak_running: peak,
        }
    }

    /// Runs in progress and runs queued.
    pub fn load(&self) -> (usize, usize) {
        let st = self.lock();
        (st.running, st.queue.len())
    }

    /// Runs queued or in progress.
    pub fn pending(&self) -> usize {
        let st = self.lock();
        st.running + st.queue.len()
    }

    /// Knocks and runs by door since start.
    pub fn metrics(&self) -> &Arc<Registry> {
        &self.shared.metrics
    }

    /// The history as the metrics show it: the backend's own health (PostgreSQL reachable, the
    /// spool, rows refused or dropped), down too while the writer's batches fail.
    pub fn history_health(&self) -> HistoryHealth {
        let h = self.shared.history.health();
        let w = self.shared.writer.stats();
        HistoryHealth {
            backend: h.backend,
            // The store's own view (PostgreSQL reachable), and whether writes go through.
            db_up: h.db_up && !w.failing,
            spool_rows: h.spool_rows,
            write_errors: h.write_errors.max(w.errors),
        }
    }

    /// Why the trigger cannot run knocks, if it cannot: stopping, or no worker thread alive.
    pub fn unhealthy(&self) -> Option<String> {
        if self.lock().stopping {
            return Some("the listener is stopping".into());
        }
        let handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        let alive = handles.iter().filter(|h| !h.is_finished()).count();
        (alive == 0).then(|| "no run worker is alive".to_string())
    }
}
