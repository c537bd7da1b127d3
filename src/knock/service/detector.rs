//! The detector thread: knocks and SPA datagrams from the capture channel → allowlists → the
//! sequence tracker (with its expiry clock) → the trigger. Every event ends counted or recorded.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::DetectorShared;
use crate::config::{Allow, Door};
use crate::knock::listener::{Event, SpaDatagram};
use crate::knock::port::PortSpec;
use crate::knock::sequence::{Report, SequenceTracker};
use crate::knock::spa::{self, ReplayCache, SpaDoor};
use crate::knock::trigger::{SpaClaim, Trigger};
use crate::knock::wire::Knock;

/// What the detector needs to verify SPA packets: the SPA doors, every door's allowlist (by door
/// index) and the replay cache.
pub(super) struct SpaCheck {
    doors: Vec<SpaDoor>,
    allow: Vec<Allow>,
    /// Each door's sequence (empty for SPA doors), by door index.
    sequences: Vec<Vec<PortSpec>>,
    cache: ReplayCache,
}

impl SpaCheck {
    pub(super) fn new(doors: &[Door], cache: ReplayCache) -> SpaCheck {
        SpaCheck {
            doors: doors
                .iter()
                .enumerate()
                .filter_map(|(i, d)| {
                    d.spa.as_ref().map(|s| {
                        SpaDoor::new(i, &d.name, &s.keys, s.port, s.window.as_secs().max(1))
                    })
                })
                .collect(),
            allow: doors.iter().map(|d| d.allow.clone()).collect(),
            sequences: doors.iter().map(|d| d.sequence.clone()).collect(),
            cache,
        }
    }

    /// The allowlists come before the attempt table: a knock whose source no door on its port
    /// allows is never tracked. `Some(Some(door))`: refused and recorded once per attempt (on the
    /// door's first port); `Some(None)`: dropped; `None`: allowed.
    fn refuses(&self, k: &Knock) -> Option<Option<usize>> {
        let spec = k.spec();
        let mut first = None;
        let mut listed = false;
        for (i, seq) in self.sequences.iter().enumerate() {
            if seq.contains(&spec) {
                listed = true;
                if self.allow.get(i).is_some_and(|a| a.permits(k.source)) {
                    return None;
                }
                if seq.first() == Some(&spec) {
                    first.get_or_insert(i);
                }
            }
        }
        listed.then_some(first)
    }

    /// Verifies one datagram and hands the verdict to the trigger.
    fn check(&mut self, d: &SpaDatagram, at: Instant, trigger: &Trigger) {
        let now_unix = unix_secs(SystemTime::now());
        let allow = &self.allow;
        let verdict = spa::verify(
            &self.doors,
            d.port,
            d.source,
            &d.payload,
            now_unix,
            &mut self.cache,
            |i, a| allow.get(i).is_some_and(|al| al.permits(a)),
        );
        match verdict {
            Ok(acc) => {
                // The cache in memory said new; the one on disk must agree (it survives restarts).
                match trigger
                    .history()
                    .spa_nonce_record(&acc.message.nonce, now_unix)
                {
                    Ok(true) => {}
                    Ok(false) => {
                        // With a shared history the other listener may have seen this very
                        // packet first: not a replay, just not ours to run.
                        let history = trigger.history();
                        match history.spa_nonce_owner(&acc.message.nonce, now_unix) {
                            Ok(Some(other)) => {
                                trigger.spa_claimed_elsewhere(acc.door, acc.target, &other, at)
                            }
                            _ => trigger.spa_refused(
                                Some(acc.door),
                                d.source,
                                spa::Refusal::Replay,
                                at,
                            ),
                        }
                        return;
                    }
                    Err(e) => tracing::error!("history: cannot record an SPA nonce: {e}"),
                }
                let claim = SpaClaim {
                    fingerprints: acc.message.fingerprints.clone(),
                    name: acc.message.name.clone(),
                    source: d.source,
                };
                let outcome = trigger.spa_accepted(acc.door, acc.target, claim, at);
                tracing::debug!(source = %d.source, "SPA packet verified: {}", outcome.as_str());
            }
            Err((door, refusal)) => trigger.spa_refused(door, d.source, refusal, at),
        }
    }
}

/// The replay cache as the history left it: nonces of the last two windows.
pub(super) fn replay_cache(trigger: &Trigger, doors: &[Door]) -> ReplayCache {
    let mut cache = ReplayCache::new(spa::REPLAY_CAPACITY);
    let window = doors
        .iter()
        .filter_map(|d| d.spa.as_ref().map(|s| s.window.as_secs()))
        .max()
        .unwrap_or(0);
    let since = unix_secs(SystemTime::now()).saturating_sub(2 * window.max(1));
    match trigger.history().spa_nonces_since(since) {
        Ok(seen) => {
            for (n, at) in seen {
                cache.insert(n, at);
            }
        }
        Err(e) => tracing::error!("history: cannot load the SPA replay cache: {e}"),
    }
    cache
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Whether a packet's source could be a machine that knocked: not unspecified, loopback,
/// multicast or broadcast, and not the address it was sent to (the controller itself). Others are
/// dropped before any state is kept.
pub fn plausible_source(source: IpAddr, destination: IpAddr) -> bool {
    let broadcast = matches!(source, IpAddr::V4(a) if a.is_broadcast());
    !(source.is_unspecified()
        || source.is_loopback()
        || source.is_multicast()
        || broadcast
        || source == destination)
}

/// The time the detector expires attempts at: the capture time of the newest knock it has
/// handed to the tracker, or the wall clock once the channel has run dry. With the wall clock
/// alone, a detector running behind a burst expired attempts whose next knock was still queued,
/// captured in time (issue 11: knocks lost although every packet was on the wire).
#[derive(Debug, Clone, Copy)]
struct ExpiryClock(Instant);

impl ExpiryClock {
    fn event(&mut self, at: Instant) {
        self.0 = self.0.max(at);
    }
    /// Nothing waited in the channel for a while: every knock captured so far has been seen.
    fn idle(&mut self, wall: Instant) {
        self.0 = self.0.max(wall);
    }
    fn now(self) -> Instant {
        self.0
    }
}

pub(super) fn detector_loop(
    mut tracker: SequenceTracker,
    mut spa: SpaCheck,
    rx: Receiver<Event>,
    trigger: &Trigger,
    shared: &DetectorShared,
) {
    let mut last_expire = Instant::now();
    let mut clock = ExpiryClock(last_expire);
    let mut reports = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Knock(k, _)) if !plausible_source(k.source, k.destination) => {
                shared.implausible.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Spa(d, _)) if !plausible_source(d.source, d.destination) => {
                shared.implausible.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Knock(k, at)) => {
                clock.event(at);
                match spa.refuses(&k) {
                    Some(Some(door)) => trigger.knock_not_allowed(door, k.source, at),
                    Some(None) => {
                        shared
                            .not_allowed_later_ports
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    None => {
                        if let Some(d) = tracker.observe(&k, at) {
                            on_detected(trigger, d, at);
                        }
                    }
                }
            }
            Ok(Event::Spa(d, at)) => {
                clock.event(at);
                spa.check(&d, at, trigger);
            }
            Ok(Event::Reconfigure(c)) => {
                // Attempts in progress end on record, under the doors they were made for.
                for f in tracker.abandon_all() {
                    trigger.attempt_failed(&f, Instant::now());
                }
                let cache = std::mem::take(&mut spa.cache);
                spa = SpaCheck::new(&c.doors, cache);
                trigger.reconfigure(
                    &c.doors,
                    c.runner.clone(),
                    c.listener.history_failed_per_second,
                );
                tracker = SequenceTracker::new(
                    c.doors.iter().map(Door::tracker_sequence).collect(),
                    c.listener.max_attempts,
                );
            }
            Err(RecvTimeoutError::Timeout) => clock.idle(Instant::now()),
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = Instant::now();
        if now.duration_since(last_expire) >= Duration::from_millis(500) {
            last_expire = now;
            tracker.expire(clock.now());
            trigger.tick();
            publish(&tracker, shared);
        }
        reports.extend(tracker.drain_reports());
        for r in reports.drain(..) {
            match r {
                Report::Failed(f) => trigger.attempt_failed(&f, now),
                Report::Detected(d) => on_detected(trigger, d, now),
            }
        }
    }
    publish(&tracker, shared);
}

fn publish(tracker: &SequenceTracker, shared: &DetectorShared) {
    shared
        .tracked
        .store(tracker.tracked() as u64, Ordering::Relaxed);
    *shared.tracker.lock().unwrap_or_else(|p| p.into_inner()) = tracker.stats();
}

fn on_detected(trigger: &Trigger, d: crate::knock::sequence::Detected, at: Instant) {
    let source: IpAddr = d.source;
    let outcome = trigger.detected(d, at);
    tracing::debug!(source = %source, "knock sequence complete: {}", outcome.as_str());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knocks_from_addresses_no_machine_knocks_from_are_dropped() {
        let me: IpAddr = "10.231.5.1".parse().unwrap();
        for bad in [
            "0.0.0.0",
            "127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "ff02::1",
            "10.231.5.1",
        ] {
            let src: IpAddr = bad.parse().unwrap();
            assert!(!plausible_source(src, me), "{bad}");
        }
        for good in ["10.231.5.7", "192.0.2.1", "fd00::7", "fe80::1"] {
            assert!(plausible_source(good.parse().unwrap(), me), "{good}");
        }
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;
    use crate::knock::flags::TcpFlagRule;
    use crate::knock::port::Proto;
    use crate::knock::sequence::DoorSequence;

    fn knock(port: u16) -> Knock {
        Knock {
            source: "10.231.0.7".parse().unwrap(),
            destination: "10.231.0.1".parse().unwrap(),
            proto: Proto::Tcp,
            port,
            tcp_flags: 0x02,
        }
    }

    /// Issue 11: the detector, behind a burst, must not expire an attempt whose next knock is
    /// still in the channel, captured within the timeout.
    #[test]
    fn regression_issue_11_a_queued_knock_is_not_judged_by_a_clock_that_ran_ahead() {
        let door = DoorSequence {
            sequence: vec![PortSpec::tcp(7000), PortSpec::tcp(8000)],
            timeout: Duration::from_secs(1),
            tcp_flags: TcpFlagRule::default(),
        };
        let mut tracker = SequenceTracker::new(vec![door], 100);
        let t0 = Instant::now();
        let mut clock = ExpiryClock(t0);
        clock.event(t0);
        assert_eq!(tracker.observe(&knock(7000), t0), None);
        // The detector gets to its expiry 5 s later (wall clock), the second knock (captured at
        // t0 + 0.5 s) still queued: the clock is that of the newest knock seen, not the wall.
        let _wall = t0 + Duration::from_secs(5);
        tracker.expire(clock.now());
        assert_eq!(tracker.drain_reports().count(), 0);
        let at = t0 + Duration::from_millis(500);
        clock.event(at);
        assert!(tracker.observe(&knock(8000), at).is_some());
        // Once the channel runs dry, the wall clock expires what is abandoned.
        assert_eq!(tracker.observe(&knock(7000), at), None);
        clock.idle(t0 + Duration::from_secs(5));
        tracker.expire(clock.now());
        assert_eq!(tracker.drain_reports().count(), 1);
        assert_eq!(tracker.stats().failed, 1);
    }
}
