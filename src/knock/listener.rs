//! Capture threads: one per interface, raw packets in, knocks out.
//!
//! Each thread owns one filtered packet socket, parses what the kernel lets through and hands
//! knocks to the detector over a bounded channel (when it is full, capture waits and the
//! kernel's receive buffer absorbs the rest of the burst). If the interface goes down or disappears the thread logs it, keeps
//! running and reopens with backoff.

pub mod bpf;
pub mod socket;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::port::PortSpec;
use super::wire::{parse_ip, Knock, WireError};
use bpf::Insn;
use socket::{interface_index, PacketSocket, PACKET_OTHERHOST, PACKET_OUTGOING};

/// What reaches the detector: knocks from capture threads, new configurations from a reload.
#[derive(Debug)]
pub enum Event {
    Knock(Knock, Instant),
    Reconfigure(Box<crate::config::ListenConfig>),
}

/// Counters of one capture thread.
#[derive(Debug, Default)]
pub struct CaptureStats {
    /// Packets that passed the kernel filter and were read.
    pub packets: AtomicU64,
    /// Packets the kernel dropped because the receive buffer was full.
    pub kernel_drops: AtomicU64,
    /// Times capture had to wait because the detector fell behind (nothing is dropped here).
    pub backpressure: AtomicU64,
    /// Frames the wire parser rejected as truncated or malformed (never a panic). Packets that are
    /// well-formed but no knock (IPv6 with extension headers leading to ICMPv6, non-first fragments)
    /// are not counted here: the kernel filter passes those up for the parser to decide.
    pub malformed: AtomicU64,
    /// Times the socket was (re)opened.
    pub opened: AtomicU64,
    pub up: AtomicBool,
    /// The receive buffer granted by the kernel, bytes.
    pub receive_buffer: AtomicU64,
}

/// The filter program shared with a capture thread; a new generation is picked up live.
#[derive(Debug, Default)]
pub struct FilterSlot {
    prog: Mutex<Vec<Insn>>,
    generation: AtomicU64,
}

impl FilterSlot {
    pub fn new(ports: &[PortSpec]) -> Arc<Self> {
        let slot = FilterSlot::default();
        slot.set(ports);
        Arc::new(slot)
    }
    pub fn set(&self, ports: &[PortSpec]) {
        *self.prog.lock().unwrap_or_else(|p| p.into_inner()) = bpf::program(ports);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
    fn get(&self) -> (u64, Vec<Insn>) {
        let prog = self.prog.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (self.generation.load(Ordering::SeqCst), prog)
    }
}

/// A running capture thread.
pub struct Capture {
    pub interface: String,
    pub stats: Arc<CaptureStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const READ_TIMEOUT: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Capture {
    pub fn start(
        interface: &str,
        receive_buffer: usize,
        filter: Arc<FilterSlot>,
        tx: SyncSender<Event>,
    ) -> io::Result<Capture> {
        let stats = Arc::new(CaptureStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (name, st, sp) = (interface.to_string(), Arc::clone(&stats), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name(format!("capture-{interface}"))
            .spawn(move || capture_loop(&name, receive_buffer, &filter, &tx, &st, &sp))?;
        Ok(Capture {
            interface: interface.to_string(),
            stats,
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the thread to stop (it notices within the read timeout).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn join(mut self) {
        self.request_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Hands an event to the detector. When the channel is full, capture waits (the kernel's
/// receive buffer keeps queueing meanwhile, so a burst is absorbed by both buffers instead of
/// being dropped here). Returns false when the listener is stopping.
fn forward(
    tx: &SyncSender<Event>,
    mut event: Event,
    stats: &CaptureStats,
    stop: &AtomicBool,
) -> bool {
    let mut waited = false;
    loop {
        match tx.try_send(event) {
            Ok(()) => return true,
            Err(TrySendError::Full(e)) => {
                if !waited {
                    stats.backpressure.fetch_add(1, Ordering::Relaxed);
                    waited = true;
                }
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
                event = e;
                std::thread::sleep(Duration::from_micros(100));
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

/// IFF_UP from sysfs.
fn interface_up(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|f| f & 1 != 0)
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) && Instant::now() < end {
        std::thread::sleep(
            Duration::from_millis(50).min(end.saturating_duration_since(Instant::now())),
        );
    }
}

fn capture_loop(
    name: &str,
    receive_buffer: usize,
    filter: &FilterSlot,
    tx: &SyncSender<Event>,
    stats: &CaptureStats,
    stop: &AtomicBool,
) {
    let mut backoff = Duration::from_secs(1);
    let mut last_error = String::new();
    while !stop.load(Ordering::SeqCst) {
        let (mut generation, prog) = filter.get();
        let sock = match PacketSocket::open(name, receive_buffer, &prog, READ_TIMEOUT) {
            Ok(s) => s,
            Err(e) => {
                let msg = e.to_string();
                if msg != last_error {
                    tracing::warn!(
                        interface = name,
                        "cannot capture: {msg}; retrying with backoff"
                    );
                    last_error = msg;
                }
                stats.up.store(false, Ordering::SeqCst);
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let granted = sock.receive_buffer();
        stats
            .receive_buffer
            .store(granted as u64, Ordering::Relaxed);
        stats.opened.fetch_add(1, Ordering::Relaxed);
        stats.up.store(true, Ordering::SeqCst);
        tracing::info!(interface = name, receive_buffer = granted, "capturing");
        if granted < receive_buffer {
            tracing::warn!(interface = name, "receive buffer is {granted} bytes, asked for {receive_buffer}: raise net.core.rmem_max or grant CAP_NET_ADMIN");
        }
        backoff = Duration::from_secs(1);
        last_error.clear();
        let mut buf = vec![0u8; 2048];
        let mut last_check = Instant::now();
        let mut down_logged = false;
        loop {
            if stop.load(Ordering::SeqCst) {
                stats.up.store(false, Ordering::SeqCst);
                return;
            }
            if filter.generation.load(Ordering::SeqCst) != generation {
                let (g, prog) = filter.get();
                match sock.set_filter(&prog) {
                    Ok(()) => tracing::info!(interface = name, "filter updated"),
                    Err(e) => tracing::error!(interface = name, "cannot update filter: {e}"),
                }
                generation = g;
            }
            match sock.recv(&mut buf) {
                Ok(Some((n, pkttype))) => {
                    down_logged = false;
                    if pkttype == PACKET_OUTGOING || pkttype == PACKET_OTHERHOST {
                        continue;
                    }
                    stats.packets.fetch_add(1, Ordering::Relaxed);
                    match parse_ip(&buf[..n]) {
                        Ok(k) => {
                            if !forward(tx, Event::Knock(k, Instant::now()), stats, stop) {
                                return;
                            }
                        }
                        Err(WireError::Truncated { .. }) | Err(WireError::Malformed(_)) => {
                            stats.malformed.fetch_add(1, Ordering::Relaxed);
                        }
                        // Well-formed, just not a knock.
                        Err(_) => {}
                    }
                }
                Ok(None) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => {
                    // The kernel re-attaches a bound socket when the interface comes back up.
                    if !down_logged {
                        tracing::warn!(
                            interface = name,
                            "interface went down; waiting for it to come back"
                        );
                        down_logged = true;
                    }
                    stats.up.store(false, Ordering::SeqCst);
                    sleep_unless_stopped(Duration::from_millis(200), stop);
                }
                Err(e) => {
                    tracing::warn!(interface = name, "capture error: {e}; reopening");
                    break;
                }
            }
            if last_check.elapsed() >= Duration::from_secs(1) {
                last_check = Instant::now();
                if let Ok((_, drops)) = sock.take_stats() {
                    if drops > 0 {
                        stats
                            .kernel_drops
                            .fetch_add(u64::from(drops), Ordering::Relaxed);
                        tracing::warn!(
                            interface = name,
                            "kernel dropped {drops} packets (receive buffer full)"
                        );
                    }
                }
                if interface_index(name) != Some(sock.ifindex) {
                    tracing::warn!(
                        interface = name,
                        "interface disappeared or was recreated; reopening"
                    );
                    break;
                }
                if down_logged && interface_up(name) {
                    tracing::info!(interface = name, "interface is back up");
                    down_logged = false;
                }
                if !down_logged {
                    stats.up.store(true, Ordering::SeqCst);
                }
            }
        }
        stats.up.store(false, Ordering::SeqCst);
        sleep_unless_stopped(backoff, stop);
    }
}
