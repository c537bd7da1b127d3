//! The listener's Prometheus metrics: counters the trigger bumps as knocks and runs are decided
//! ([`Registry`]), gauges read at scrape time ([`Gauges`]), and the page that shows both.
//!
//! - `exposition`  the text format: HELP/TYPE, label escaping, histograms
//! - `http`        the `/metrics` and `/healthz` endpoint: a bounded HTTP/1.1 responder
//!
//! This module knows nothing of the knock pipeline: `knock` fills [`Gauges`] and implements
//! [`http::Source`]; here is only what a metric is called and how it is written.

pub mod exposition;
pub mod http;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use exposition::{Exposition, Histogram, Kind};

/// Upper bounds of the run-duration buckets, in seconds: a playbook run takes seconds to tens
/// of minutes (ssh_wait alone may be two); a door `command` can take well under a second.
pub const RUN_SECONDS_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0,
];

/// The state of the history database as the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryHealth {
    /// `sqlite` (or `postgres`).
    pub backend: &'static str,
    /// The database takes writes.
    pub db_up: bool,
    /// Rows kept locally until the database takes them again.
    pub spool_rows: usize,
    /// Rows the database refused since start.
    pub write_errors: u64,
}

/// What the listener reports at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gauges {
    /// Accepted knocks waiting for a worker.
    pub queued: u64,
    pub running: u64,
    /// Knock attempts the sequence tracker holds.
    pub tracked_attempts: u64,
    /// Packets that passed the kernel filter (a counter).
    pub capture_packets: u64,
    /// Packets the kernel dropped because a capture socket's buffer was full (a counter).
    pub capture_drops: u64,
    /// Knock rows not written to the history because of its rate limit (a counter).
    pub history_suppressed: u64,
    pub history: HistoryHealth,
    /// Whether `/healthz` answers 200.
    pub healthy: bool,
}

#[derive(Debug, Default)]
struct Counts {
    /// (door, result) → knocks.
    knocks: BTreeMap<(String, &'static str), u64>,
    /// (door, status) → finished runs.
    runs: BTreeMap<(String, &'static str), u64>,
    /// door → durations of runs that ran to their end (ok or failed).
    durations: BTreeMap<String, Histogram>,
}

/// The counters of one listener since it started. Labels are door names from the configuration
/// (or `*`) and results and statuses from fixed lists, so the number of series stays bounded.
#[derive(Debug, Default)]
pub struct Registry {
    counts: Mutex<Counts>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A knock decided with `result` (the history's word for it).
    pub fn knock(&self, door: &str, result: &'static str) {
        *self.lock().knocks.entry((door.into(), result)).or_default() += 1;
    }

    /// A run that ended with `status` (the history's word); `took`: how long it ran, for runs
    /// that ran to their end.
    pub fn run_finished(&self, door: &str, status: &'static str, took: Option<Duration>) {
        let mut c = self.lock();
        *c.runs.entry((door.into(), status)).or_default() += 1;
        if let Some(d) = took {
            c.durations
                .entry(door.into())
                .or_insert_with(|| Histogram::new(RUN_SECONDS_BUCKETS))
                .observe(d.as_secs_f64());
        }
    }

    /// The whole page in the text exposition format.
    pub fn render(&self, g: &Gauges) -> String {
        let mut e = Exposition::new();
        {
            let c = self.lock();
            e.family(
                "knockplay_knocks_total",
                Kind::Counter,
                "Knocks by door and result (accepted, coalesced, cooldown, not_allowed, wrong_order, replay, bad_mac, ...), as the history records them.",
            );
            for ((door, result), n) in &c.knocks {
                e.sample(
                    "knockplay_knocks_total",
                    &[("door", door), ("result", result)],
                    *n as f64,
                );
            }
            e.family(
                "knockplay_runs_total",
                Kind::Counter,
                "Finished runs by door and status (ok, failed, interrupted), as the history records them.",
            );
            for ((door, status), n) in &c.runs {
                e.sample(
                    "knockplay_runs_total",
                    &[("door", door), ("status", status)],
                    *n as f64,
                );
            }
            e.family(
                "knockplay_run_duration_seconds",
                Kind::Histogram,
                "How long runs that ran to their end (ok or failed) took, from start to finish, by door.",
            );
            for (door, h) in &c.durations {
                e.histogram("knockplay_run_duration_seconds", &[("door", door)], h);
            }
        }
        gauges(&mut e, g);
        e.finish()
    }
}

/// The families read at scrape time.
fn gauges(e: &mut Exposition, g: &Gauges) {
    let plain: [(&str, Kind, &str, u64); 6] = [
        ("knockplay_queue_depth", Kind::Gauge, "Accepted knocks waiting for a run worker.", g.queued),
        ("knockplay_runs_in_progress", Kind::Gauge, "Runs in progress.", g.running),
        ("knockplay_tracked_attempts", Kind::Gauge, "Knock attempts (source and door) the sequence tracker holds; bounded by max_attempts.", g.tracked_attempts),
        ("knockplay_capture_packets_total", Kind::Counter, "Packets that passed the capture sockets' kernel filters.", g.capture_packets),
        ("knockplay_capture_drops_total", Kind::Counter, "Packets the kernel dropped because a capture socket's receive buffer was full (PACKET_STATISTICS).", g.capture_drops),
        ("knockplay_history_suppressed_total", Kind::Counter, "Knock rows not written to the history because of history_failed_per_second (still counted in knockplay_knocks_total).", g.history_suppressed),
    ];
    for (name, kind, help, v) in plain {
        e.family(name, kind, help);
        e.sample(name, &[], v as f64);
    }
    let h = &g.history;
    let backend = [("backend", h.backend)];
    let history: [(&str, Kind, &str, u64); 3] = [
        (
            "knockplay_history_up",
            Kind::Gauge,
            "1 while the history database takes writes, 0 while it does not.",
            u64::from(h.db_up),
        ),
        (
            "knockplay_history_write_errors_total",
            Kind::Counter,
            "History rows the database refused.",
            h.write_errors,
        ),
        (
            "knockplay_history_spool_rows",
            Kind::Gauge,
            "History rows kept locally until the database takes them again.",
            h.spool_rows as u64,
        ),
    ];
    for (name, kind, help, v) in history {
        e.family(name, kind, help);
        e.sample(name, &backend, v as f64);
    }
    e.family(
        "knockplay_healthy",
        Kind::Gauge,
        "1 while /healthz answers 200 (capture threads and the trigger alive).",
    );
    e.sample("knockplay_healthy", &[], f64::from(u8::from(g.healthy)));
}

/// Every metric name the listener exports (families; a histogram's series add `_bucket`, `_sum`
/// and `_count`).
pub const METRIC_NAMES: &[&str] = &[
    "knockplay_knocks_total",
    "knockplay_runs_total",
    "knockplay_run_duration_seconds",
    "knockplay_queue_depth",
    "knockplay_runs_in_progress",
    "knockplay_tracked_attempts",
    "knockplay_capture_packets_total",
    "knockplay_capture_drops_total",
    "knockplay_history_suppressed_total",
    "knockplay_history_up",
    "knockplay_history_write_errors_total",
    "knockplay_history_spool_rows",
    "knockplay_healthy",
];

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
