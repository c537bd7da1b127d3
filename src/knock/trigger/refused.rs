//! Knocks refused before they reach the attempt table or the queue (a source outside every
//! allowlist, an SPA packet that fails verification), and what an SPA knock adds to a run (the
//! host's claimed keys and name).

use std::net::IpAddr;
use std::time::Instant;

use super::{bump, Bucket, Row, Trigger};
use crate::history::KnockOutcome;

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
