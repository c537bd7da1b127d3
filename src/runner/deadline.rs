//! A task's `timeout` as a deadline. It starts when the task starts and bounds the task as a whole:
//! what is left of it is each command's timeout, waits (`until` delays, `pause`,
//! `wait_for_connection`) end at it, and a task still running past it fails with one message.

use std::time::{Duration, Instant};

/// The shortest timeout handed to a command once a deadline is (nearly) reached: a command must
/// never get zero, which means "no timeout" to the SSH layer.
const LAST_MOMENT: Duration = Duration::from_millis(1);

/// When a task runs out of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    limit: Duration,
    at: Instant,
}

impl Deadline {
    /// `limit` after `start`; `None` without a limit. Limits are checked to be at most
    /// [`crate::value::MAX_SECONDS`], which any clock can add.
    pub fn after(start: Instant, limit: Option<Duration>) -> Option<Deadline> {
        let limit = limit?;
        let at = start.checked_add(limit)?;
        Some(Deadline { limit, at })
    }

    /// Whether the task has run out of time at `now`.
    pub fn passed(&self, now: Instant) -> bool {
        now >= self.at
    }

    /// The timeout of a command started at `now`: what is left, never zero.
    pub fn command_timeout(&self, now: Instant) -> Duration {
        self.at.saturating_duration_since(now).max(LAST_MOMENT)
    }

    /// `wait`, cut short where the deadline falls first.
    pub fn cap(&self, now: Instant, wait: Duration) -> Duration {
        wait.min(self.at.saturating_duration_since(now))
    }

    /// What a task that ran out of time says.
    pub fn message(&self) -> String {
        let secs = self.limit.as_secs_f64();
        format!("The task did not finish within its timeout of {secs} seconds and was stopped")
    }
}

/// Sleep for `wait`, but not past `deadline`.
pub fn sleep_within(wait: Duration, deadline: Option<&Deadline>) {
    let wait = match deadline {
        Some(d) => d.cap(Instant::now(), wait),
        None => wait,
    };
    std::thread::sleep(wait);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_bounds_commands_and_waits() {
        let start = Instant::now();
        let s = Duration::from_secs;
        assert_eq!(Deadline::after(start, None), None);
        let d = Deadline::after(start, Some(s(2))).unwrap();
        // (seconds after the start, passed, command timeout, a 5 s wait capped to)
        let cases = [
            (0, false, s(2), s(2)),
            (1, false, s(1), s(1)),
            (2, true, LAST_MOMENT, s(0)),
            (9, true, LAST_MOMENT, s(0)),
        ];
        for (after, passed, command, wait) in cases {
            let now = start + s(after);
            assert_eq!(d.passed(now), passed, "{after}");
            assert_eq!(d.command_timeout(now), command, "{after}");
            assert_eq!(d.cap(now, s(5)), wait, "{after}");
        }
        assert_eq!(
            d.message(),
            "The task did not finish within its timeout of 2 seconds and was stopped"
        );
        let half = Deadline::after(start, Some(Duration::from_millis(2500))).unwrap();
        assert!(half.message().contains("timeout of 2.5 seconds"));
    }
}
