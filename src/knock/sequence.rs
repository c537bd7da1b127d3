//! Sans-IO knock sequence tracker: `observe(knock, now)`; one attempt per (source, door).
//!
//! knockd's semantics: the first port of a door starts an attempt; the next expected port
//! advances it; a packet on another port of that door's sequence resets it (and starts a new
//! attempt if it is the first port); TCP packets with the wrong flags are ignored; ports in no
//! sequence are ignored; the timeout runs from the first knock. Better than knockd: a repeated
//! packet for the port just accepted does not reset, attempts of different sources never
//! affect each other, and the number of attempts is bounded (oldest evicted) with O(1) work
//! per packet, so a flood from spoofed sources cannot grow memory.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::flags::TcpFlagRule;
use super::port::{PortSpec, Proto};
use super::wire::Knock;

/// What the tracker needs to know about a door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorSequence {
    pub sequence: Vec<PortSpec>,
    pub timeout: Duration,
    pub tcp_flags: TcpFlagRule,
}

/// A completed sequence: `source` knocked door number `door` (index into the doors given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    pub source: IpAddr,
    pub door: usize,
}

/// Why an attempt ended without opening its door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailReason {
    /// A port of the sequence arrived before its turn.
    WrongOrder,
    /// A port of the sequence that was already knocked came again out of turn.
    ExtraPort,
    /// The sequence was not finished within the door's timeout.
    TooSlow,
    /// Too many attempts in progress: this one was the oldest.
    Evicted,
    /// The configuration was reloaded while the attempt was in progress.
    Reloaded,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::WrongOrder => "wrong_order",
            FailReason::ExtraPort => "extra_port",
            FailReason::TooSlow => "too_slow",
            FailReason::Evicted => "evicted",
            FailReason::Reloaded => "reloaded",
        }
    }
}

/// An attempt that ended without opening its door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailedAttempt {
    pub source: IpAddr,
    pub door: usize,
    pub reason: FailReason,
    /// How many ports had been accepted.
    pub stage: usize,
    /// The packet that ended it (none for timeouts found by `expire` and evictions).
    pub port: Option<PortSpec>,
}

/// A report from the tracker besides the return value of `observe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Failed(FailedAttempt),
    /// A second door completed by the same packet (rare; the first is returned by `observe`).
    Detected(Detected),
}

/// Counters for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackerStats {
    pub packets: u64,
    pub ignored: u64,
    pub detected: u64,
    pub failed: u64,
    pub evicted: u64,
    pub reports_dropped: u64,
}

#[derive(Debug, Clone, Copy)]
struct Attempt {
    stage: usize,
    started: Instant,
    generation: u64,
}

type Key = (IpAddr, usize);

const MAX_REPORTS: usize = 4096;

/// Tracks knock attempts per (source, door).
#[derive(Debug)]
pub struct SequenceTracker {
    doors: Vec<DoorSequence>,
    by_port: HashMap<PortSpec, Vec<usize>>,
    attempts: HashMap<Key, Attempt>,
    /// Attempts in start order, for eviction and expiry; stale entries are skipped lazily.
    order: VecDeque<(Key, u64)>,
    capacity: usize,
    next_generation: u64,
    reports: VecDeque<Report>,
    stats: TrackerStats,
}

impl SequenceTracker {
    /// `capacity`: the most attempts tracked at once (at least 1).
    pub fn new(doors: Vec<DoorSequence>, capacity: usize) -> Self {
        let mut by_port: HashMap<PortSpec, Vec<usize>> = HashMap::new();
        for (i, d) in doors.iter().enumerate() {
            for p in &d.sequence {
                let v = by_port.entry(*p).or_default();
                if !v.contains(&i) {
                    v.push(i);
                }
            }
        }
        SequenceTracker {
            doors,
            by_port,
            attempts: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            next_generation: 0,
            reports: VecDeque::new(),
            stats: TrackerStats::default(),
        }
    }

    pub fn doors(&self) -> &[DoorSequence] {
        &self.doors
    }

    /// Attempts in progress.
    pub fn tracked(&self) -> usize {
        self.attempts.len()
    }

    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    /// Feeds one packet. Returns the door it completed, if any; failures are queued as reports.
    pub fn observe(&mut self, knock: &Knock, now: Instant) -> Option<Detected> {
        self.stats.packets += 1;
        let spec = knock.spec();
        let Some(doors) = self.by_port.get(&spec) else {
            self.stats.ignored += 1;
            return None;
        };
        // Cloning a short list of door indices keeps the borrow checker out of the loop body.
        let doors: smallvec_like::Doors = doors.iter().copied().collect();
        let mut first = None;
        for door in doors.iter() {
            if let Some(d) = self.observe_door(door, knock, spec, now) {
                self.stats.detected += 1;
                if first.is_none() {
                    first = Some(d);
                } else {
                    self.report(Report::Detected(d));
                }
            }
        }
        first
    }

    fn observe_door(
        &mut self,
        door: usize,
        knock: &Knock,
        spec: PortSpec,
        now: Instant,
    ) -> Option<Detected> {
        let d = &self.doors[door];
        if spec.proto == Proto::Tcp && !d.tcp_flags.matches(knock.tcp_flags) {
            self.stats.ignored += 1;
            return None;
        }
        let timeout = d.timeout;
        let len = d.sequence.len();
        let first_port = d.sequence[0];
        let key = (knock.source, door);

        if let Some(a) = self.attempts.get(&key).copied() {
            if now.saturating_duration_since(a.started) > timeout {
                self.attempts.remove(&key);
                self.fail(key, FailReason::TooSlow, a.stage, Some(spec));
            }
        }

        if let Some(a) = self.attempts.get_mut(&key) {
            let seq = &self.doors[door].sequence;
            if seq.get(a.stage) == Some(&spec) {
                a.stage += 1;
                if a.stage >= len {
                    self.attempts.remove(&key);
                    return Some(Detected {
                        source: knock.source,
                        door,
                    });
                }
                return None;
            }
            if a.stage >= 1 && seq.get(a.stage - 1) == Some(&spec) {
                // A duplicate or retransmission of the port just accepted: not a reset. A repeated
                // first knock restarts the clock (the host started over, e.g. a re-knock).
                if a.stage == 1 {
                    self.next_generation += 1;
                    let generation = self.next_generation;
                    a.started = now;
                    a.generation = generation;
                    self.order.push_back((key, generation));
                    self.compact_if_needed();
                }
                return None;
            }
            let stage = a.stage;
            let reason = if seq[..stage].contains(&spec) {
                FailReason::ExtraPort
            } else {
                FailReason::WrongOrder
            };
            self.attempts.remove(&key);
            self.fail(key, reason, stage, Some(spec));
        }

        if spec == first_port {
            if len == 1 {
                return Some(Detected {
                    source: knock.source,
                    door,
                });
            }
            self.start(key, now);
        }
        None
    }

    /// Ends attempts whose timeout passed (reported as too slow). Call about once a second, with
    /// the time of the newest knock handed to `observe` (or the clock when none is waiting):
    /// knocks still queued must not be judged by a clock that has run ahead of them. Stops when
    /// the report queue is full, so no report is dropped: the rest expire at the next call.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(key, generation)) = self.order.front() {
            if self.reports.len() >= MAX_REPORTS {
                break;
            }
            match self.attempts.get(&key) {
                Some(a) if a.generation == generation => {
                    let timeout = self.doors[key.1].timeout;
                    if now.saturating_duration_since(a.started) <= timeout {
                        break;
                    }
                    let stage = a.stage;
                    self.attempts.remove(&key);
                    self.fail(key, FailReason::TooSlow, stage, None);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Ends every attempt in progress, reported as failed for `Reloaded` (the detector replaces
    /// its tracker at a reload; the door numbers of the new one may differ). Returns them all,
    /// besides the queue, so none is dropped however many there are.
    pub fn abandon_all(&mut self) -> Vec<FailedAttempt> {
        let mut out: Vec<FailedAttempt> = self
            .drain_reports()
            .filter_map(|r| match r {
                Report::Failed(f) => Some(f),
                Report::Detected(_) => None,
            })
            .collect();
        let order = std::mem::take(&mut self.order);
        for (key, generation) in order {
            if let Some(a) = self.attempts.get(&key).copied() {
                if a.generation == generation {
                    self.attempts.remove(&key);
                    self.stats.failed += 1;
                    out.push(FailedAttempt {
                        source: key.0,
                        door: key.1,
                        reason: FailReason::Reloaded,
                        stage: a.stage,
                        port: None,
                    });
                }
            }
        }
        out
    }

    /// Takes the queued reports (failed attempts, extra detections).
    pub fn drain_reports(&mut self) -> std::collections::vec_deque::Drain<'_, Report> {
        self.reports.drain(..)
    }

    fn start(&mut self, key: Key, now: Instant) {
        while self.attempts.len() >= self.capacity {
            if !self.evict_oldest() {
                break;
            }
        }
        let generation = self.bump_generation();
        self.attempts.insert(
            key,
            Attempt {
                stage: 1,
                started: now,
                generation,
            },
        );
        self.order.push_back((key, generation));
        self.compact_if_needed();
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some((key, generation)) = self.order.pop_front() {
            if let Some(a) = self.attempts.get(&key) {
                if a.generation == generation {
                    let stage = a.stage;
                    self.attempts.remove(&key);
                    self.stats.evicted += 1;
                    self.fail(key, FailReason::Evicted, stage, None);
                    return true;
                }
            }
        }
        false
    }

    /// Drops stale order entries once they outnumber live attempts, so the queue stays bounded
    /// (amortized O(1) per packet).
    fn compact_if_needed(&mut self) {
        if self.order.len() > 2 * self.capacity + 64 {
            let attempts = &self.attempts;
            self.order
                .retain(|(k, g)| attempts.get(k).is_some_and(|a| a.generation == *g));
        }
    }

    fn bump_generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    fn fail(&mut self, key: Key, reason: FailReason, stage: usize, port: Option<PortSpec>) {
        self.stats.failed += 1;
        self.report(Report::Failed(FailedAttempt {
            source: key.0,
            door: key.1,
            reason,
            stage,
            port,
        }));
    }

    fn report(&mut self, r: Report) {
        if self.reports.len() >= MAX_REPORTS {
            self.stats.reports_dropped += 1;
            return;
        }
        self.reports.push_back(r);
    }
}

mod smallvec_like {
    /// Door indices for one port without a heap allocation for the common case (≤ 8 doors).
    pub struct Doors {
        inline: [usize; 8],
        len: usize,
        spill: Vec<usize>,
    }
    impl FromIterator<usize> for Doors {
        fn from_iter<I: IntoIterator<Item = usize>>(it: I) -> Self {
            let mut d = Doors {
                inline: [0; 8],
                len: 0,
                spill: Vec::new(),
            };
            for x in it {
                if d.len < 8 {
                    d.inline[d.len] = x;
                    d.len += 1;
                } else {
                    d.spill.push(x);
                }
            }
            d
        }
    }
    impl Doors {
        pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
            self.inline[..self.len]
                .iter()
                .copied()
                .chain(self.spill.iter().copied())
        }
    }
}

#[cfg(test)]
#[path = "sequence_tests.rs"]
mod tests;
