//! Knocks that start nothing: attempts that failed in the tracker, knocks refused before they reach
//! the attempt table or the queue (a source outside every allowlist, an SPA packet that fails
//! verification); and what an SPA knock adds to a run (the host's claimed keys and name).

use std::net::IpAddr;
use std::time::Instant;

use super::{bump, Bucket, Row, Trigger};
use crate::history::KnockOutcome;
use crate::knock::sequence::{FailReason, FailedAttempt};

/// What an SPA packet claimed about the host that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaClaim {
    pub fingerprints: Vec<[u8; 32]>,
    /// Host name or instance id, for the history.
    pub name: String,
    /// Where the packet came from (the run's address may be the one it asked for).
    pub source: IpAddr,
}

impl SpaClaim {
    /// The history's words for it.
    pub fn describe(&self, target: IpAddr) -> String {
        let fps: Vec<String> = self
            .fingerprints
            .iter()
            .map(crate::knock::spa::fingerprint_text)
            .collect();
        let mut s = format!("spa name={} host_keys={}", self.name, fps.join(","));
        if self.source != target {
            s.push_str(&format!(" sent_from={}", self.source));
        }
        s
    }
}

impl Trigger {
    /// A knock attempt that failed (wrong order, too slow, ...): counted, recorded within the rate limit.
    pub fn attempt_failed(&self, f: &FailedAttempt, now: Instant) {
        let mut st = self.lock();
        bump(&self.shared.counters.failed_attempts);
        let Some(door) = st.doors.get(f.door).cloned() else {
            // Counted above; no door to name in a row (it was reloaded away).
            tracing::warn!(source = %f.source, "knock attempt failed ({}) for a door no longer configured", f.reason.as_str());
            return;
        };
        let outcome = match f.reason {
            FailReason::WrongOrder => KnockOutcome::WrongOrder,
            FailReason::ExtraPort => KnockOutcome::ExtraPort,
            FailReason::TooSlow => KnockOutcome::TooSlow,
            FailReason::Evicted => KnockOutcome::Evicted,
            FailReason::Reloaded => KnockOutcome::Reloaded,
        };
        let total = door.sequence.len();
        let detail = match (f.reason, f.port) {
            (FailReason::TooSlow, _) => format!(
                "{} of {total} ports within seq_timeout {:.1}s",
                f.stage,
                door.seq_timeout.as_secs_f64()
            ),
            (FailReason::Evicted, _) => format!(
                "{} of {total} ports; attempt table full (max_attempts)",
                f.stage
            ),
            (FailReason::Reloaded, _) => format!(
                "{} of {total} ports when the configuration was reloaded",
                f.stage
            ),
            (_, Some(p)) => format!(
                "{p} after {} of {total} ports (expected {})",
                f.stage,
                door.sequence
                    .get(f.stage)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            ),
            (_, None) => format!("after {} of {total} ports", f.stage),
        };
        tracing::debug!(door = %door.name, source = %f.source, "knock attempt failed: {} ({detail})", outcome.as_str());
        self.shared.record_limited(
            &mut st,
            Bucket::Refused,
            Row::new(f.source, &door.name, outcome, detail),
            now,
        );
    }

    /// An SPA packet that failed verification: counted, recorded within the rate limit.
    pub fn spa_refused(
        &self,
        door: Option<usize>,
        source: IpAddr,
        refusal: crate::knock::spa::Refusal,
        now: Instant,
    ) {
        use crate::knock::spa::Refusal;
        let mut st = self.lock();
        bump(&self.shared.counters.failed_attempts);
        let name = door
            .and_then(|i| st.doors.get(i))
            .map(|d| d.name.clone())
            .unwrap_or_else(|| "*".into());
        let (outcome, detail) = match refusal {
            Refusal::Malformed => (
                KnockOutcome::Malformed,
                "not a knockplay SPA packet of this version",
            ),
            Refusal::BadMac => (
                KnockOutcome::BadMac,
                "no key of the door opens it (wrong key, or altered)",
            ),
            Refusal::Stale => (KnockOutcome::Stale, "its time is outside spa_window"),
            Refusal::Replay => (KnockOutcome::Replay, "this packet was seen before"),
            Refusal::NotAllowed => {
                bump(&self.shared.counters.not_allowed);
                (KnockOutcome::NotAllowed, "source not in allow list")
            }
        };
        tracing::debug!(door = %name, source = %source, "SPA packet refused: {}", refusal.as_str());
        self.shared.record_limited(
            &mut st,
            Bucket::Refused,
            Row::new(source, &name, outcome, detail.into()),
            now,
        );
    }

    /// A verified SPA packet that listener `other` (sharing the history) recorded first: the
    /// same packet, seen by both; `other` runs it.
    pub fn spa_claimed_elsewhere(&self, door: usize, target: IpAddr, other: &str, now: Instant) {
        let mut st = self.lock();
        let Some(name) = st.doors.get(door).map(|d| d.name.clone()) else {
            return;
        };
        let detail = format!("listener {other} accepted this SPA packet");
        tracing::info!(door = %name, source = %target, "{detail}: not run here");
        self.shared.record_limited(
            &mut st,
            Bucket::Granted,
            Row::new(target, &name, KnockOutcome::ClaimedElsewhere, detail),
            now,
        );
    }

    /// A knock from a source that no door listening on its port allows: never tracked,
    /// counted, recorded within the rate limit.
    pub fn knock_not_allowed(&self, door: usize, source: IpAddr, now: Instant) {
        let mut st = self.lock();
        bump(&self.shared.counters.not_allowed);
        let Some(name) = st.doors.get(door).map(|d| d.name.clone()) else {
            return;
        };
        self.shared.record_limited(
            &mut st,
            Bucket::Refused,
            Row::new(
                source,
                &name,
                KnockOutcome::NotAllowed,
                "source not in allow list".into(),
            ),
            now,
        );
    }
}
