//! Measures why `knockplay listen` captures with its own filtered `AF_PACKET` socket and not with
//! pnet's datalink channel: frames delivered to user space and capture-thread CPU time under a
//! flood of non-knock UDP traffic, one method after the other on the same veth pair.
//!
//! Needs root: it creates the network namespace `kp-capcost-<pid>` and a veth pair on
//! 10.239.0.0/24 (controller side .1, namespace side .2) and deletes both when done (also on
//! error). Run it with `cargo run --release --example capture_cost [SECONDS]` (default 3).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use knockplay::knock::listener::bpf;
use knockplay::knock::listener::socket::{PacketSocket, PACKET_OTHERHOST, PACKET_OUTGOING};
use knockplay::knock::wire::{parse_ethernet, parse_ip};
use knockplay::knock::PortSpec;

const HOST_IP: Ipv4Addr = Ipv4Addr::new(10, 239, 0, 1);
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 239, 0, 2);
/// The one knock port; every other datagram of the flood goes to a port nobody knocks on.
const KNOCK_PORT: u16 = 7000;
/// One knock per this many flood datagrams.
const KNOCK_EVERY: u64 = 10_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("flood") => flood(&args[1..]),
        _ => measure(args.first().map(String::as_str)),
    };
    if let Err(e) = result {
        eprintln!("capture_cost: {e}");
        std::process::exit(1);
    }
}

/// What one capture method saw while one flood ran.
struct Tally {
    method: &'static str,
    sent: u64,
    knocks_sent: u64,
    delivered: u64,
    knocks_seen: u64,
    cpu: Duration,
    /// Kernel drops (receive buffer full); `None` where the API cannot tell.
    drops: Option<u64>,
}

fn measure(seconds: Option<&str>) -> Result<(), String> {
    let seconds: u64 = seconds
        .unwrap_or("3")
        .parse()
        .map_err(|_| "the argument is the flood duration in seconds".to_string())?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("needs root (network namespace, veth pair, packet sockets)".into());
    }
    let net = Veth::create()?;
    let pnet = run_phase(&net, seconds, "pnet datalink channel", capture_pnet)?;
    let own = run_phase(&net, seconds, "filtered AF_PACKET socket", capture_filtered)?;
    println!(
        "{:<26} {:>10} {:>10} {:>12} {:>8} {:>10} {:>12} {:>8}",
        "method", "sent", "delivered", "delivered/s", "knocks", "cpu ms", "cpu us/sent", "drops"
    );
    for t in [&pnet, &own] {
        let per_sec = t.delivered as f64 / seconds as f64;
        let per_sent = t.cpu.as_secs_f64() * 1e6 / t.sent.max(1) as f64;
        println!(
            "{:<26} {:>10} {:>10} {:>12.0} {:>4}/{:<3} {:>10.0} {:>12.3} {:>8}",
            t.method,
            t.sent,
            t.delivered,
            per_sec,
            t.knocks_seen,
            t.knocks_sent,
            t.cpu.as_secs_f64() * 1e3,
            per_sent,
            t.drops
                .map(|d| d.to_string())
                .unwrap_or_else(|| "unknown".into())
        );
    }
    Ok(())
}

type Capture = fn(&str, &AtomicBool) -> Result<(u64, u64, Option<u64>), String>;

/// Starts `capture` on the controller side, floods from the namespace for `seconds`, stops.
fn run_phase(
    net: &Veth,
    seconds: u64,
    method: &'static str,
    capture: Capture,
) -> Result<Tally, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (iface, stop) = (net.host_if.clone(), Arc::clone(&stop));
        std::thread::spawn(move || -> Result<_, String> {
            let start = thread_cpu();
            let (delivered, knocks, drops) = capture(&iface, &stop)?;
            Ok((delivered, knocks, drops, thread_cpu().saturating_sub(start)))
        })
    };
    // Let the socket open before the first datagram.
    std::thread::sleep(Duration::from_millis(300));
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("ip")
        .args(["netns", "exec", &net.ns])
        .arg(exe)
        .args(["flood", &HOST_IP.to_string(), &seconds.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start the flood: {e}"))?;
    // Frames still in the socket's queue count too.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let (delivered, knocks_seen, drops, cpu) = thread
        .join()
        .map_err(|_| "the capture thread panicked".to_string())??;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut numbers = text.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(sent)), Some(Ok(knocks_sent))) = (numbers.next(), numbers.next()) else {
        return Err(format!("the flood said {text:?}"));
    };
    Ok(Tally {
        method,
        sent,
        knocks_sent,
        delivered,
        knocks_seen,
        cpu,
        drops,
    })
}

/// pnet's datalink channel: every frame on the interface comes up and is parsed in user space.
fn capture_pnet(iface: &str, stop: &AtomicBool) -> Result<(u64, u64, Option<u64>), String> {
    use pnet::datalink::{self, Channel, Config};
    let interface = datalink::interfaces()
        .into_iter()
        .find(|i| i.name == iface)
        .ok_or_else(|| format!("pnet does not see {iface}"))?;
    let config = Config {
        read_timeout: Some(Duration::from_millis(200)),
        // Fair to the own socket, which never asks for promiscuous mode.
        promiscuous: false,
        ..Config::default()
    };
    let mut rx = match datalink::channel(&interface, config) {
        Ok(Channel::Ethernet(_tx, rx)) => rx,
        Ok(_) => return Err("pnet: not an Ethernet channel".into()),
        Err(e) => return Err(format!("pnet channel: {e}")),
    };
    let (mut delivered, mut knocks) = (0, 0);
    while !stop.load(Ordering::Relaxed) {
        match rx.next() {
            Ok(frame) => {
                delivered += 1;
                // No packet type here: the channel cannot tell own outgoing frames apart.
                if parse_ethernet(frame).is_ok_and(|k| k.spec() == PortSpec::udp(KNOCK_PORT)) {
                    knocks += 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => return Err(format!("pnet read: {e}")),
        }
    }
    // The channel hides its socket: no PACKET_STATISTICS, so its drops are unknown.
    Ok((delivered, knocks, None))
}

/// knockplay's capture socket: the kernel filter passes knock ports only.
fn capture_filtered(iface: &str, stop: &AtomicBool) -> Result<(u64, u64, Option<u64>), String> {
    let prog = bpf::program(&[PortSpec::udp(KNOCK_PORT)]);
    let sock = PacketSocket::open(iface, 4 << 20, &prog, Duration::from_millis(200))
        .map_err(|e| format!("packet socket: {e}"))?;
    let (mut delivered, mut knocks) = (0, 0);
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv(&mut buf) {
            Ok(Some((n, pkttype))) => {
                delivered += 1;
                if pkttype == PACKET_OUTGOING || pkttype == PACKET_OTHERHOST {
                    continue;
                }
                if parse_ip(&buf[..n]).is_ok_and(|k| k.spec() == PortSpec::udp(KNOCK_PORT)) {
                    knocks += 1;
                }
            }
            Ok(None) => {}
            Err(e) => return Err(format!("packet socket read: {e}")),
        }
    }
    let drops = sock.take_stats().map(|(_, d)| u64::from(d)).ok();
    Ok((delivered, knocks, drops))
}

/// Inside the namespace: UDP to `dst` as fast as one thread can for `seconds`, one datagram in
/// [`KNOCK_EVERY`] to the knock port. Prints "sent knocks".
fn flood(args: &[String]) -> Result<(), String> {
    let (Some(dst), Some(secs)) = (args.first(), args.get(1)) else {
        return Err("usage: capture_cost flood DST SECONDS".into());
    };
    let dst: Ipv4Addr = dst.parse().map_err(|_| format!("bad address {dst}"))?;
    let secs: u64 = secs.parse().map_err(|_| format!("bad duration {secs}"))?;
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| e.to_string())?;
    let payload = [0u8; 64];
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut sent, mut knocks) = (0u64, 0u64);
    while Instant::now() < end {
        for _ in 0..100 {
            let port = if sent % KNOCK_EVERY == 0 {
                knocks += 1;
                KNOCK_PORT
            } else {
                9000 + (sent % 100) as u16
            };
            // A full socket buffer just means the flood outruns the veth: try the next one.
            if sock.send_to(&payload, SocketAddrV4::new(dst, port)).is_ok() {
                sent += 1;
            } else if port == KNOCK_PORT {
                knocks -= 1;
            }
        }
    }
    println!("{sent} {knocks}");
    Ok(())
}

/// CPU time (user + system) of the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is valid for writing.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The namespace and veth pair, deleted on drop.
struct Veth {
    ns: String,
    host_if: String,
}

impl Veth {
    fn create() -> Result<Veth, String> {
        let pid = std::process::id();
        let v = Veth {
            ns: format!("kp-capcost-{pid}"),
            host_if: format!("kpcc{}h", pid % 1_000_000),
        };
        let peer_if = format!("kpcc{}n", pid % 1_000_000);
        let (host_cidr, peer_cidr) = (format!("{HOST_IP}/24"), format!("{PEER_IP}/24"));
        ip(&["netns", "add", &v.ns])?;
        ip(&[
            "link", "add", &v.host_if, "type", "veth", "peer", "name", &peer_if,
        ])?;
        ip(&["link", "set", &peer_if, "netns", &v.ns])?;
        ip(&["addr", "add", &host_cidr, "dev", &v.host_if])?;
        ip(&["link", "set", &v.host_if, "up"])?;
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &v.ns, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        in_ns(&["addr", "add", &peer_cidr, "dev", &peer_if])?;
        in_ns(&["link", "set", &peer_if, "up"])?;
        // Carrier takes a moment on a fresh veth.
        std::thread::sleep(Duration::from_millis(500));
        Ok(v)
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let st = Command::new("ip")
        .args(args)
        .status()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("ip {} failed ({st})", args.join(" ")))
    }
}
