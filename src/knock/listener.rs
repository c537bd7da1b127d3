//! Capture threads: one per interface, raw packets in, knocks out.
//!
//! Each thread owns one filtered packet socket, parses what the kernel lets through and hands
//! knocks to the detector over a bounded channel (when it is full, capture waits and the
//! kernel's receive buffer absorbs the rest of the burst). If the interface goes down or
//! disappears the thread logs it, keeps running and reopens with backoff.
//!
//! Why an own `AF_PACKET` socket (`socket.rs`) and not pnet's datalink channel (pnet only lists
//! interfaces, in `config`): the channel has no way to attach a kernel BPF filter, so every frame
//! on the interface comes up to user space to be parsed; it hides its socket, so there are no
//! `PACKET_STATISTICS` drop counters; it returns frames without their packet type, so own outgoing
//! frames cannot be skipped; and it cannot size the kernel receive buffer. Measured with
//! `examples/capture_cost.rs` (veth pair into a namespace, 5 s flood of 64-byte non-knock UDP
//! datagrams with one knock in 10,000, 2 shared cores): pnet's channel delivered about 640,000
//! frames (≈128,000/s) to user space, its thread used 1.2–1.4 s of CPU, and it saw only about
//! half of the knocks, losing the rest without a counter to say so; the filtered socket
//! delivered 195–211 frames (the knocks, all of them) for 4–7 ms of CPU and counted 0 drops.

pub mod bpf;
pub mod socket;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::port::{PortSpec, Proto};
use super::wire::{parse_ip, udp_payload, Knock, WireError};
use bpf::Insn;
use socket::{interface_index, PacketSocket, PACKET_OTHERHOST, PACKET_OUTGOING};
use std::net::IpAddr;

/// What reaches the detector: knocks from capture threads, new configurations from a reload.
#[derive(Debug)]
pub enum Event {
    Knock(Knock, Instant),
    /// A datagram on an SPA door's UDP port, with its payload.
    Spa(SpaDatagram, Instant),
    Reconfigure(Box<crate::config::ListenConfig>),
}

/// A UDP datagram for an SPA door: who sent it, to which port, and its bytes (at most
/// [`super::spa::MAX_PACKET`] + 1: anything longer is refused as malformed all the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaDatagram {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub port: u16,
    pub payload: Vec<u8>,
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
    /// UDP ports whose datagrams are SPA packets (handed over with their payload).
    spa_ports: Mutex<Vec<u16>>,
}

impl FilterSlot {
    /// `ports`: every port a door listens on, the SPA ports (UDP) included.
    pub fn new(ports: &[PortSpec], spa_ports: &[u16]) -> Arc<Self> {
        let slot = FilterSlot::default();
        slot.set(ports, spa_ports);
        Arc::new(slot)
    }
    pub fn set(&self, ports: &[PortSpec], spa_ports: &[u16]) {
        *self.spa_ports.lock().unwrap_or_else(|p| p.into_inner()) = spa_ports.to_vec();
        *self.prog.lock().unwrap_or_else(|p| p.into_inner()) = bpf::program(ports);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
    fn is_spa_port(&self, port: u16) -> bool {
        self.spa_ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&port)
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
            .spawn(move || {
                CaptureThread {
                    name: &name,
                    receive_buffer,
                    filter: &filter,
                    tx: &tx,
                    stats: &st,
                    stop: &sp,
                }
                .run()
            })?;
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

    /// Whether the capture thread is still going (it only ends when asked to).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
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

/// One capture thread's work: open the socket, read it until it breaks, reopen with backoff.
struct CaptureThread<'a> {
    name: &'a str,
    receive_buffer: usize,
    filter: &'a FilterSlot,
    tx: &'a SyncSender<Event>,
    stats: &'a CaptureStats,
    stop: &'a AtomicBool,
}

/// Why reading a socket ended.
enum ReadEnd {
    /// The listener is stopping (the thread has marked its interface down).
    Stopped,
    /// The detector is gone or stopping: nothing more to hand knocks to.
    Detached,
    /// The socket broke or the interface was recreated: open a new one.
    Reopen,
}

impl CaptureThread<'_> {
    fn run(&self) {
        let mut backoff = Duration::from_secs(1);
        let mut last_error = String::new();
        while !self.stopping() {
            let (generation, prog) = self.filter.get();
            let sock = match PacketSocket::open(self.name, self.receive_buffer, &prog, READ_TIMEOUT)
            {
                Ok(s) => s,
                Err(e) => {
                    let msg = e.to_string();
                    if msg != last_error {
                        tracing::warn!(
                            interface = self.name,
                            "cannot capture: {msg}; retrying with backoff"
                        );
                        last_error = msg;
                    }
                    self.stats.up.store(false, Ordering::SeqCst);
                    sleep_unless_stopped(backoff, self.stop);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            self.opened(&sock);
            backoff = Duration::from_secs(1);
            last_error.clear();
            let end = self.read(&sock, generation);
            // Drops since the last once-a-second look are counted before the socket closes.
            self.count_drops(&sock);
            match end {
                ReadEnd::Stopped | ReadEnd::Detached => return,
                ReadEnd::Reopen => {}
            }
            self.stats.up.store(false, Ordering::SeqCst);
            sleep_unless_stopped(backoff, self.stop);
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Counts and logs a freshly opened socket.
    fn opened(&self, sock: &PacketSocket) {
        let (name, wanted) = (self.name, self.receive_buffer);
        let granted = sock.receive_buffer();
        self.stats
            .receive_buffer
            .store(granted as u64, Ordering::Relaxed);
        self.stats.opened.fetch_add(1, Ordering::Relaxed);
        self.stats.up.store(true, Ordering::SeqCst);
        tracing::info!(interface = name, receive_buffer = granted, "capturing");
        if granted < wanted {
            tracing::warn!(interface = name, "receive buffer is {granted} bytes, asked for {wanted}: raise net.core.rmem_max or grant CAP_NET_ADMIN");
        }
    }

    /// Reads packets until the listener stops or the socket must be reopened.
    fn read(&self, sock: &PacketSocket, mut generation: u64) -> ReadEnd {
        let name = self.name;
        let mut buf = vec![0u8; 2048];
        let mut last_check = Instant::now();
        let mut down_logged = false;
        loop {
            if self.stopping() {
                self.stats.up.store(false, Ordering::SeqCst);
                return ReadEnd::Stopped;
            }
            if self.filter.generation.load(Ordering::SeqCst) != generation {
                let (g, prog) = self.filter.get();
                match sock.set_filter(&prog) {
                    Ok(()) => tracing::info!(interface = name, "filter updated"),
                    Err(e) => tracing::error!(interface = name, "cannot update filter: {e}"),
                }
                generation = g;
            }
            match sock.recv(&mut buf) {
                Ok(Some((n, pkttype))) => {
                    down_logged = false;
                    if !self.deliver(&buf[..n], pkttype) {
                        return ReadEnd::Detached;
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
                    self.stats.up.store(false, Ordering::SeqCst);
                    sleep_unless_stopped(Duration::from_millis(200), self.stop);
                }
                Err(e) => {
                    tracing::warn!(interface = name, "capture error: {e}; reopening");
                    return ReadEnd::Reopen;
                }
            }
            if last_check.elapsed() >= Duration::from_secs(1) {
                last_check = Instant::now();
                if !self.check(sock, &mut down_logged) {
                    return ReadEnd::Reopen;
                }
            }
        }
    }

    /// Parses one frame and hands a knock to the detector. False when the listener is stopping.
    fn deliver(&self, frame: &[u8], pkttype: u8) -> bool {
        if pkttype == PACKET_OUTGOING || pkttype == PACKET_OTHERHOST {
            return true;
        }
        self.stats.packets.fetch_add(1, Ordering::Relaxed);
        match parse_ip(frame) {
            Ok(k) if k.proto == Proto::Udp && self.filter.is_spa_port(k.port) => {
                let payload = udp_payload(frame).unwrap_or_default();
                let d = SpaDatagram {
                    source: k.source,
                    destination: k.destination,
                    port: k.port,
                    payload: payload[..payload.len().min(super::spa::MAX_PACKET + 1)].to_vec(),
                };
                forward(
                    self.tx,
                    Event::Spa(d, Instant::now()),
                    self.stats,
                    self.stop,
                )
            }
            Ok(k) => forward(
                self.tx,
                Event::Knock(k, Instant::now()),
                self.stats,
                self.stop,
            ),
            Err(WireError::Truncated { .. }) | Err(WireError::Malformed(_)) => {
                self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                true
            }
            // Well-formed, just not a knock.
            Err(_) => true,
        }
    }

    /// Adds the kernel's drop counter (reset by reading it) to the stats, and logs it.
    fn count_drops(&self, sock: &PacketSocket) {
        if let Ok((_, drops)) = sock.take_stats() {
            if drops > 0 {
                self.stats
                    .kernel_drops
                    .fetch_add(u64::from(drops), Ordering::Relaxed);
                tracing::warn!(
                    interface = self.name,
                    "kernel dropped {drops} packets (receive buffer full)"
                );
            }
        }
    }

    /// The once-a-second look at the socket: kernel drops, interface recreated or back up.
    /// False when the socket must be reopened.
    fn check(&self, sock: &PacketSocket, down_logged: &mut bool) -> bool {
        let name = self.name;
        self.count_drops(sock);
        if interface_index(name) != Some(sock.ifindex) {
            tracing::warn!(
                interface = name,
                "interface disappeared or was recreated; reopening"
            );
            return false;
        }
        if *down_logged && interface_up(name) {
            tracing::info!(interface = name, "interface is back up");
            *down_logged = false;
        }
        if !*down_logged {
            self.stats.up.store(true, Ordering::SeqCst);
        }
        true
    }
}
