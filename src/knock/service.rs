//! `knockplay listen`: capture threads → detector → trigger, with graceful stop and live reload.
//!
//! Threads: one capture thread per interface, one detector thread owning the sequence tracker,
//! the trigger's worker pool, and the caller's thread supervising (reload, stop, stats).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{self, Allow, Door, HostKeyChecking, ListenConfig};
use crate::history::{History, HistoryError};
use crate::signals::Signal;

mod detector;

pub use detector::plausible_source;
use detector::{detector_loop, replay_cache, SpaCheck};

use super::listener::socket::can_capture;
use super::listener::{Capture, CaptureStats, Event, FilterSlot};
use super::port::PortSpec;
use super::sequence::{SequenceTracker, TrackerStats};
use super::trigger::{Launcher, ShutdownReport, Trigger, TriggerStats};
use summary::RunSummary;

mod exporter;
mod summary;

/// Knocks waiting between capture and detection at most (about 3 MiB).
const CHANNEL_CAPACITY: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("log directory {path}: {source}")]
    LogDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open a packet socket ({0}): knockplay listen needs CAP_NET_RAW (run as root, or `setcap cap_net_raw+ep knockplay`, or AmbientCapabilities=CAP_NET_RAW in its systemd unit)")]
    Capture(std::io::Error),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("metrics endpoint {addr} ([listener] metrics): {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// A snapshot of the listener's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenStats {
    /// Packets that passed the kernel filter.
    pub packets: u64,
    /// Of those, frames the wire parser rejected.
    pub malformed: u64,
    /// Packets lost because a socket's receive buffer was full.
    pub kernel_drops: u64,
    /// Times capture waited for the detector (a burst it absorbed, nothing lost).
    pub backpressure: u64,
    /// Knocks dropped for their source address (loopback, multicast, the listener's own...).
    pub implausible: u64,
    /// Later ports of attempts refused at their first port (source in no door's allowlist).
    pub not_allowed_later_ports: u64,
    /// Interfaces whose capture socket is open and up.
    pub interfaces_up: Vec<String>,
    /// Knock attempts in progress (bounded by `max_attempts`).
    pub tracked_attempts: u64,
    pub tracker: TrackerStats,
    pub trigger: TriggerStats,
    pub reloads: u64,
    pub rejected_reloads: u64,
}

/// What `listen` returns after a graceful stop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenSummary {
    pub stats: ListenStats,
    pub shutdown: ShutdownReport,
}

#[derive(Default)]
struct Requests {
    shutdown: bool,
    reloads: u64,
}

#[derive(Default)]
struct ControlInner {
    requests: Mutex<Requests>,
    wake: Condvar,
    stats: Mutex<ListenStats>,
    ready: AtomicBool,
    /// Why `/healthz` says 503, or `None` while healthy.
    unhealthy: Mutex<Option<String>>,
}

/// A handle to a running listener: stop it, reload it, read its counters. Cheap to clone.
#[derive(Clone, Default)]
pub struct Control {
    inner: Arc<ControlInner>,
}

impl Control {
    pub fn new() -> Self {
        Control::default()
    }

    /// Graceful stop: capture stops, running runs get the grace period.
    pub fn shutdown(&self) {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .shutdown = true;
        self.inner.wake.notify_all();
    }

    /// Re-reads the configuration file; a bad file is rejected and the old config kept.
    pub fn reload(&self) {
        self.inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .reloads += 1;
        self.inner.wake.notify_all();
    }

    /// Routes SIGTERM/SIGINT (graceful stop) and SIGHUP (reload) to this handle.
    pub fn install_signal_handlers(&self) -> std::io::Result<()> {
        let control = self.clone();
        let signals = [Signal::Terminate, Signal::Interrupt, Signal::Hangup];
        crate::signals::route(&signals, move |s| {
            if s == Signal::Hangup {
                tracing::info!("SIGHUP: reloading the configuration");
                control.reload();
            } else {
                tracing::info!("stop signal: shutting down gracefully");
                control.shutdown();
            }
        })
    }

    /// The latest counters (refreshed every 250 ms while listening).
    pub fn stats(&self) -> ListenStats {
        self.inner
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True once every configured interface has an open capture socket.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// Waits until ready (true) or the timeout passes (false).
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, || self.is_ready())
    }

    /// Waits until the counters satisfy `f` (true) or the timeout passes (false).
    pub fn wait_for(&self, timeout: Duration, f: impl Fn(&ListenStats) -> bool) -> bool {
        self.wait_until(timeout, || f(&self.stats()))
    }

    /// Waits up to 250 ms for a stop or a reload beyond `seen_reloads`; returns (stop, reloads).
    fn next_request(&self, seen_reloads: u64) -> (bool, u64) {
        let r = self
            .inner
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let (r, _) = self
            .inner
            .wake
            .wait_timeout_while(r, Duration::from_millis(250), |r| {
                !r.shutdown && r.reloads == seen_reloads
            })
            .unwrap_or_else(|p| p.into_inner());
        (r.shutdown, r.reloads)
    }

    fn wait_until(&self, timeout: Duration, f: impl Fn() -> bool) -> bool {
        let end = Instant::now() + timeout;
        loop {
            if f() {
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// Every port a door listens on: sequence ports and SPA ports (UDP).
fn all_ports(doors: &[Door]) -> Vec<PortSpec> {
    let set: BTreeSet<PortSpec> = doors
        .iter()
        .flat_map(|d| d.sequence.iter().copied())
        .chain(spa_ports(doors).into_iter().map(PortSpec::udp))
        .collect();
    set.into_iter().collect()
}

fn spa_ports(doors: &[Door]) -> Vec<u16> {
    let set: BTreeSet<u16> = doors
        .iter()
        .filter_map(|d| d.spa.as_ref().map(|s| s.port))
        .collect();
    set.into_iter().collect()
}

struct DetectorShared {
    tracked: AtomicU64,
    /// Knocks and SPA packets dropped for their source (see [`plausible_source`]).
    implausible: AtomicU64,
    /// Later ports of knocks refused at their first port (recorded there, once per attempt).
    not_allowed_later_ports: AtomicU64,
    tracker: Mutex<TrackerStats>,
}

/// What a running listener is made of: supervision and shutdown work on these.
struct Running {
    trigger: Arc<Trigger>,
    detector: JoinHandle<()>,
    detector_shared: Arc<DetectorShared>,
    filter: Arc<FilterSlot>,
    captures: Vec<Capture>,
    /// Capture → detector; kept here to start captures and send reconfigurations.
    tx: SyncSender<Event>,
}

/// Runs the listener until `control.shutdown()` (or a signal routed to it). Blocks.
pub fn listen(
    config: ListenConfig,
    launcher: Arc<dyn Launcher>,
    control: Control,
) -> Result<ListenSummary, ListenError> {
    can_capture().map_err(ListenError::Capture)?;
    let history = prepare(&config)?;
    let endpoint = exporter::bind(&config, &control)?;
    let mut running = start(&config, launcher, history)?;
    let server = exporter::serve(endpoint, &control, &running.trigger);
    tracing::info!(interfaces = ?config.listener.interfaces, "listening");
    let (current, mut stats) = supervise(&control, config, &mut running);
    let shutdown = running.stop(&control, &mut stats, current.runner.grace_period);
    if let Some(s) = server {
        s.stop();
    }
    tracing::info!(?shutdown, "listener stopped");
    Ok(ListenSummary { stats, shutdown })
}

/// Opens the history (marking runs cut off last time) and the log directory.
fn prepare(config: &ListenConfig) -> Result<Arc<History>, ListenError> {
    let history = Arc::new(History::open_for_listener(
        &config.history,
        &config.runner.state_dir,
    )?);
    history.keep_leases(config.history.lease);
    let days = config.listener.history_retention_days;
    if days > 0 {
        let before = SystemTime::now() - Duration::from_secs(u64::from(days) * 86_400);
        match history.prune(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!("history: pruned {n} row(s) older than {days} days"),
            Err(e) => tracing::error!("history: cannot prune: {e}"),
        }
    }
    match history.mark_interrupted(SystemTime::now()) {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            "{n} run(s) were cut off when their listener stopped: marked interrupted"
        ),
        // A shared database that is away now: its lease keeper does this once it is back.
        Err(e) => tracing::error!("history: cannot mark cut-off runs interrupted: {e}"),
    }
    crate::private_fs::dir(&config.runner.log_dir).map_err(|source| ListenError::LogDir {
        path: config.runner.log_dir.clone(),
        source,
    })?;
    if config.runner.host_key_checking == HostKeyChecking::Off {
        tracing::warn!(
            "host_key_checking = \"off\": host keys of knocking machines are NOT verified"
        );
    }
    Ok(history)
}

/// Starts the trigger's pool, the detector thread and one capture thread per interface.
fn start(
    config: &ListenConfig,
    launcher: Arc<dyn Launcher>,
    history: Arc<History>,
) -> Result<Running, ListenError> {
    let trigger = Arc::new(Trigger::start(
        &config.doors,
        config.runner.clone(),
        config.listener.history_failed_per_second,
        launcher,
        history,
    ));

    // Capture → detector: one bounded channel.
    let (tx, rx) = sync_channel::<Event>(CHANNEL_CAPACITY);
    let detector_shared = Arc::new(DetectorShared {
        tracked: AtomicU64::new(0),
        implausible: AtomicU64::new(0),
        not_allowed_later_ports: AtomicU64::new(0),
        tracker: Mutex::new(TrackerStats::default()),
    });
    let detector = {
        let (trigger, shared) = (Arc::clone(&trigger), Arc::clone(&detector_shared));
        let tracker = SequenceTracker::new(
            config.doors.iter().map(Door::tracker_sequence).collect(),
            config.listener.max_attempts,
        );
        let spa = SpaCheck::new(&config.doors, replay_cache(&trigger, &config.doors));
        std::thread::Builder::new()
            .name("knock-detector".into())
            .spawn(move || detector_loop(tracker, spa, rx, &trigger, &shared))
            .map_err(ListenError::Thread)?
    };

    let filter = FilterSlot::new(&all_ports(&config.doors), &spa_ports(&config.doors));
    let mut captures = Vec::new();
    for name in &config.listener.interfaces {
        captures.push(
            Capture::start(
                name,
                config.listener.receive_buffer,
                Arc::clone(&filter),
                tx.clone(),
            )
            .map_err(ListenError::Thread)?,
        );
    }
    for d in &config.doors {
        tracing::info!(door = %d, "door ready");
        let everyone = match &d.allow {
            Allow::Any => true,
            // 0.0.0.0/0 and ::/0 are `any` under another name: warned the same way.
            Allow::Nets(n) => n.iter().any(|n| n.prefix_len() == 0),
        };
        if everyone {
            tracing::warn!(door = %d.name, "allow admits every address: anyone who knocks this door gets the playbook run against them");
        }
    }
    Ok(Running {
        trigger,
        detector,
        detector_shared,
        filter,
        captures,
        tx,
    })
}

/// Serves reload requests and refreshes the counters until a stop is requested. Returns the
/// configuration in force and the counters.
fn supervise(
    control: &Control,
    config: ListenConfig,
    running: &mut Running,
) -> (ListenConfig, ListenStats) {
    let mut current = config;
    let mut stats = ListenStats::default();
    let mut seen_reloads = 0u64;
    let mut summary = RunSummary::new(Instant::now());
    loop {
        if let Some(line) = summary.tick(Instant::now(), &running.trigger) {
            tracing::info!("{line}");
        }
        let (stop, reloads) = control.next_request(seen_reloads);
        if reloads != seen_reloads {
            seen_reloads = reloads;
            match reload(
                &current,
                &running.filter,
                &mut running.captures,
                &running.tx,
            ) {
                Ok(new) => {
                    current = new;
                    stats.reloads += 1;
                }
                Err(e) => {
                    stats.rejected_reloads += 1;
                    tracing::error!("reload rejected, the running configuration stays:\n{e}");
                }
            }
        }
        refresh(
            control,
            &mut stats,
            &running.captures,
            &running.trigger,
            &running.detector_shared,
        );
        exporter::check(control, running);
        if stop {
            return (current, stats);
        }
    }
}

impl Running {
    /// Stops capture and detection, then gives runs in progress up to `grace` to finish.
    fn stop(
        mut self,
        control: &Control,
        stats: &mut ListenStats,
        grace: Duration,
    ) -> ShutdownReport {
        exporter::stopping(control);
        tracing::info!("stopping capture");
        for c in &self.captures {
            c.request_stop();
        }
        for c in self.captures.drain(..) {
            c.join();
        }
        drop(self.tx);
        let _ = self.detector.join();
        tracing::info!(
            "waiting up to {}s for {} run(s) in progress",
            grace.as_secs(),
            self.trigger.pending()
        );
        let shutdown = self.trigger.shutdown(grace);
        refresh(
            control,
            stats,
            &self.captures,
            &self.trigger,
            &self.detector_shared,
        );
        control.inner.ready.store(false, Ordering::SeqCst);
        shutdown
    }
}

fn refresh(
    control: &Control,
    stats: &mut ListenStats,
    captures: &[Capture],
    trigger: &Trigger,
    d: &DetectorShared,
) {
    let sum = |f: fn(&CaptureStats) -> &AtomicU64| -> u64 {
        captures
            .iter()
            .map(|c| f(&c.stats).load(Ordering::Relaxed))
            .sum()
    };
    // Counters only grow; a capture removed by a reload keeps its share in the totals.
    stats.packets = stats.packets.max(sum(|s| &s.packets));
    stats.malformed = stats.malformed.max(sum(|s| &s.malformed));
    stats.kernel_drops = stats.kernel_drops.max(sum(|s| &s.kernel_drops));
    stats.backpressure = stats.backpressure.max(sum(|s| &s.backpressure));
    stats.interfaces_up = captures
        .iter()
        .filter(|c| c.stats.up.load(Ordering::SeqCst))
        .map(|c| c.interface.clone())
        .collect();
    stats.implausible = d.implausible.load(Ordering::Relaxed);
    stats.not_allowed_later_ports = d.not_allowed_later_ports.load(Ordering::Relaxed);
    stats.tracked_attempts = d.tracked.load(Ordering::Relaxed);
    stats.tracker = *d.tracker.lock().unwrap_or_else(|p| p.into_inner());
    stats.trigger = trigger.stats();
    if !captures.is_empty() {
        control.inner.ready.store(
            stats.interfaces_up.len() == captures.len(),
            Ordering::SeqCst,
        );
    }
    *control
        .inner
        .stats
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = stats.clone();
}

fn reload(
    current: &ListenConfig,
    filter: &Arc<FilterSlot>,
    captures: &mut Vec<Capture>,
    tx: &SyncSender<Event>,
) -> Result<ListenConfig, config::ConfigError> {
    let new = config::load(&current.source)?;
    if new.runner.state_dir != current.runner.state_dir {
        tracing::warn!("state_dir changed: takes effect at the next start");
    }
    if new.history != current.history {
        tracing::warn!("[history] changed: takes effect at the next start");
    }
    if new.listener.metrics != current.listener.metrics {
        tracing::warn!("[listener] metrics changed: takes effect at the next start");
    }
    if new.listener.receive_buffer != current.listener.receive_buffer {
        tracing::warn!("receive_buffer changed: applies to newly opened interfaces only");
    }
    if let Err(e) = crate::private_fs::dir(&new.runner.log_dir) {
        tracing::error!("log directory {}: {e}", new.runner.log_dir.display());
    }
    // The detector swaps its tracker and the trigger's doors together, so door numbers agree.
    if tx.send(Event::Reconfigure(Box::new(new.clone()))).is_err() {
        tracing::error!("detector stopped; reload not applied");
    }
    filter.set(&all_ports(&new.doors), &spa_ports(&new.doors));
    let wanted = &new.listener.interfaces;
    let (keep, gone): (Vec<Capture>, Vec<Capture>) = captures
        .drain(..)
        .partition(|c| wanted.contains(&c.interface));
    for c in gone {
        tracing::info!(interface = %c.interface, "no longer capturing");
        c.join();
    }
    *captures = keep;
    for name in wanted {
        if !captures.iter().any(|c| &c.interface == name) {
            match Capture::start(
                name,
                new.listener.receive_buffer,
                Arc::clone(filter),
                tx.clone(),
            ) {
                Ok(c) => captures.push(c),
                Err(e) => tracing::error!(interface = %name, "cannot start capture: {e}"),
            }
        }
    }
    tracing::info!(doors = new.doors.len(), "configuration reloaded");
    Ok(new)
}
