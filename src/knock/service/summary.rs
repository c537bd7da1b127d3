//! The listener's periodic one-line run summary (`runs: 3 running, 12 queued, 40 done (2 failed)`).

use std::time::{Duration, Instant};

use crate::knock::trigger::Trigger;

/// How often the listener logs its one-line run summary while runs are active.
const SUMMARY_EVERY: Duration = Duration::from_secs(3);

/// The listener's periodic one-line summary of runs (running, queued, done, failed), logged
/// while runs are active and once more when they have all finished.
pub(super) struct RunSummary {
    last: Instant,
    last_done: u64,
}

impl RunSummary {
    pub(super) fn new(now: Instant) -> Self {
        RunSummary {
            last: now,
            last_done: 0,
        }
    }

    pub(super) fn tick(&mut self, now: Instant, trigger: &Trigger) -> Option<String> {
        if now.duration_since(self.last) < SUMMARY_EVERY {
            return None;
        }
        self.last = now;
        let (running, queued) = trigger.load();
        let t = trigger.stats();
        let done = t.runs_ok + t.runs_failed + t.runs_interrupted;
        let line = summary_line(running, queued, done, t.runs_failed, self.last_done);
        self.last_done = done;
        line
    }
}

/// `runs: 3 running, 12 queued, 40 done (2 failed)`, or nothing when no run is active and none
/// finished since the last line (`done_before`).
fn summary_line(
    running: usize,
    queued: usize,
    done: u64,
    failed: u64,
    done_before: u64,
) -> Option<String> {
    (running + queued > 0 || done != done_before)
        .then(|| format!("runs: {running} running, {queued} queued, {done} done ({failed} failed)"))
}

#[cfg(test)]
mod tests {
    use super::summary_line;

    #[test]
    fn a_summary_while_runs_are_active_and_once_after() {
        assert_eq!(
            summary_line(3, 12, 40, 2, 38).as_deref(),
            Some("runs: 3 running, 12 queued, 40 done (2 failed)")
        );
        // The last runs finished since the previous line: one more line says so.
        assert_eq!(
            summary_line(0, 0, 42, 2, 40).as_deref(),
            Some("runs: 0 running, 0 queued, 42 done (2 failed)")
        );
        // Idle: nothing.
        assert_eq!(summary_line(0, 0, 42, 2, 42), None);
    }
}
