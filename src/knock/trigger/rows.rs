//! History rows about knocks: built as a [`Row`], passed through the rate limit of their
//! [`Bucket`], queued for the history writer.

use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use super::ratelimit::Verdict;
use super::{bump, Shared, State};
use crate::history::{KnockOutcome, KnockRecord};

/// Which rate limit a history row falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bucket {
    Refused,
    Granted,
}

/// One knock row, before the rate limit decides on it.
pub(super) struct Row {
    source: IpAddr,
    door: String,
    outcome: KnockOutcome,
    detail: String,
    run_id: Option<i64>,
}

impl Row {
    pub(super) fn new(source: IpAddr, door: &str, outcome: KnockOutcome, detail: String) -> Row {
        Row {
            source,
            door: door.to_string(),
            outcome,
            detail,
            run_id: None,
        }
    }

    pub(super) fn run(mut self, id: i64) -> Row {
        self.run_id = Some(id);
        self
    }
}

impl Shared {
    /// Counts a knock and queues its history row.
    pub(super) fn record(&self, row: Row) {
        self.count_knock(&row.door, row.outcome);
        self.write(row);
    }

    /// Queues a history row (rows beyond the writer's queue are dropped and counted there).
    fn write(&self, row: Row) {
        self.writer.knock(KnockRecord {
            at: SystemTime::now(),
            source: row.source,
            door: row.door,
            outcome: row.outcome,
            detail: row.detail,
            run_id: row.run_id,
        });
    }

    /// Queues the row of a knock that started a run: never rate-limited or dropped (one per run).
    pub(super) fn record_for_run(&self, row: Row) {
        self.count_knock(&row.door, row.outcome);
        self.writer.knock_for_run(KnockRecord {
            at: SystemTime::now(),
            source: row.source,
            door: row.door,
            outcome: row.outcome,
            detail: row.detail,
            run_id: row.run_id,
        });
    }

    /// Writes the summary rows of knocks the rate limits skipped since their last summary, so a
    /// burst that ends is on record without waiting for the next row to get through.
    pub(super) fn record_suppressed(&self, st: &mut State) {
        for (limiter, what) in [
            (&mut st.limiter, "failed or refused"),
            (&mut st.granted_limiter, "coalesced"),
        ] {
            let n = limiter.take_suppressed();
            if n > 0 {
                let note = format!("{n} {what} knocks not recorded (history rate limit)");
                tracing::warn!("{note}");
                // The history's own summary: not a knock (the skipped ones were counted).
                self.write(Row::new(
                    IpAddr::from([0, 0, 0, 0]),
                    "*",
                    KnockOutcome::Suppressed,
                    note,
                ));
            }
        }
    }

    /// Counts a knock and records its row if its bucket has room; once room comes back, a
    /// summary row says how many were skipped.
    pub(super) fn record_limited(&self, st: &mut State, bucket: Bucket, row: Row, now: Instant) {
        let (limiter, what) = match bucket {
            Bucket::Refused => (&mut st.limiter, "failed or refused"),
            Bucket::Granted => (&mut st.granted_limiter, "coalesced"),
        };
        match limiter.check(now) {
            Verdict::Record { suppressed_before } => {
                if suppressed_before > 0 {
                    let note = format!(
                        "{suppressed_before} {what} knocks not recorded (history rate limit)"
                    );
                    tracing::warn!("{note}");
                    self.write(Row::new(row.source, "*", KnockOutcome::Suppressed, note));
                }
                self.record(row);
            }
            Verdict::Suppress => {
                self.count_knock(&row.door, row.outcome);
                bump(&self.counters.history_suppressed);
            }
        }
    }
}
