//! `knockplay knock`: sends the same packets as knockd's `knock` client, or one SPA packet
//! (`--spa`), and re-knocks until configured.
//!
//! TCP: one non-blocking connect per port (the SYN leaves during `connect`; the socket is closed
//! without waiting). UDP: one datagram with a single NUL byte, as `knock -u` sends.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::port::{PortSpec, Proto};

/// Where a configured host finds its marker (written by the listener's run).
pub const DEFAULT_MARKER: &str = "/var/lib/knockplay/configured";

/// Resolves `host` (name or address); IPv4 is preferred, as the stock client does.
pub fn resolve(host: &str) -> io::Result<IpAddr> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(ip);
    }
    let addrs: Vec<SocketAddr> = (host, 0).to_socket_addrs()?.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(|a| a.ip())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address")))
}

/// Sends one knock per port to `host`, waiting `delay` between them.
pub fn send_knocks(host: &str, ports: &[PortSpec], delay: Duration) -> io::Result<()> {
    let ip = resolve(host)?;
    for (i, p) in ports.iter().enumerate() {
        if i > 0 && !delay.is_zero() {
            std::thread::sleep(delay);
        }
        send_knock(ip, *p)?;
    }
    Ok(())
}

/// Sends one knock packet.
pub fn send_knock(ip: IpAddr, p: PortSpec) -> io::Result<()> {
    let addr = SocketAddr::new(ip, p.port);
    match p.proto {
        Proto::Udp => {
            let bind: SocketAddr = if ip.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
                .parse()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{e}")))?;
            let s = UdpSocket::bind(bind)?;
            s.send_to(&[0u8], addr)?;
            Ok(())
        }
        Proto::Tcp => tcp_syn(addr),
    }
}

/// A non-blocking connect: the kernel sends the SYN before `connect` returns; closing the
/// socket right after abandons the handshake.
fn tcp_syn(addr: SocketAddr) -> io::Result<()> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket syscalls on a descriptor owned by this function and closed below.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` is a valid sockaddr of `len` bytes for this family.
    let rc = unsafe { libc::connect(fd, &storage as *const _ as *const libc::sockaddr, len) };
    let err = io::Error::last_os_error();
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(fd) };
    if rc == 0 {
        return Ok(());
    }
    match err.raw_os_error() {
        Some(libc::EINPROGRESS) | Some(libc::ECONNREFUSED) | Some(libc::EAGAIN) => Ok(()),
        _ => Err(err),
    }
}

fn sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// `--until-configured`: how long to keep knocking and where the marker appears.
#[derive(Debug, Clone)]
pub struct UntilConfigured {
    pub timeout: Duration,
    pub marker: PathBuf,
    /// Wait before the first re-knock; doubles up to `max_retry`.
    pub first_retry: Duration,
    pub max_retry: Duration,
}

impl UntilConfigured {
    pub fn new(timeout: Duration) -> Self {
        UntilConfigured {
            timeout,
            marker: PathBuf::from(DEFAULT_MARKER),
            first_retry: Duration::from_secs(5),
            max_retry: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UntilError {
    #[error("not configured after {waited:?} ({knocks} knocks sent); {} does not exist", .marker.display())]
    TimedOut {
        waited: Duration,
        knocks: u32,
        marker: PathBuf,
    },
    #[error("knock failed: {0}")]
    Io(#[from] io::Error),
}

/// Knocks, then re-knocks with backoff (and jitter, so a herd spreads out) until the marker
/// file exists. Returns the number of knocks sent.
pub fn knock_until_configured(
    host: &str,
    ports: &[PortSpec],
    delay: Duration,
    opts: &UntilConfigured,
) -> Result<u32, UntilError> {
    until_configured(host, opts, || send_knocks(host, ports, delay))
}

/// Calls `send` (one knock), then again with backoff until the marker file exists. Returns how
/// many knocks were sent.
pub fn until_configured(
    host: &str,
    opts: &UntilConfigured,
    mut send: impl FnMut() -> io::Result<()>,
) -> Result<u32, UntilError> {
    let start = Instant::now();
    let mut knocks = 0u32;
    let mut wait = opts.first_retry;
    loop {
        if opts.marker.exists() {
            return Ok(knocks);
        }
        if start.elapsed() >= opts.timeout {
            return Err(UntilError::TimedOut {
                waited: start.elapsed(),
                knocks,
                marker: opts.marker.clone(),
            });
        }
        match send() {
            Ok(()) => knocks += 1,
            // The network may not be up yet at boot: keep trying until the timeout.
            Err(e) => tracing::warn!("knock to {host} failed: {e}; retrying"),
        }
        let until = (Instant::now() + jitter(wait)).min(start + opts.timeout);
        if wait_for(&opts.marker, until) {
            return Ok(knocks);
        }
        wait = (wait * 2).min(opts.max_retry);
    }
}

/// What `knockplay knock --spa` puts in its packet.
#[derive(Debug, Clone)]
pub struct SpaRequest {
    pub key: super::spa::FleetKey,
    pub door: String,
    pub reach: Option<IpAddr>,
    /// Public host key files (`/etc/ssh/ssh_host_*_key.pub` unless given).
    pub host_key_files: Vec<PathBuf>,
    pub name: String,
}

impl SpaRequest {
    /// A fresh packet (new nonces, the current time).
    pub fn packet(&self) -> Result<Vec<u8>, String> {
        let mut fingerprints = Vec::new();
        for f in &self.host_key_files {
            let text =
                std::fs::read_to_string(f).map_err(|e| format!("host key {}: {e}", f.display()))?;
            let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            fingerprints.push(
                super::spa::fingerprint_of_pubkey_line(line)
                    .map_err(|e| format!("host key {}: {e}", f.display()))?,
            );
        }
        let mut nonce = [0u8; 16];
        let mut aead_nonce = [0u8; 24];
        getrandom::getrandom(&mut nonce)
            .and_then(|()| getrandom::getrandom(&mut aead_nonce))
            .map_err(|e| format!("no random bytes: {e}"))?;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let msg = super::spa::Message {
            door: self.door.clone(),
            timestamp,
            nonce,
            reach: self.reach,
            fingerprints,
            name: self.name.clone(),
        };
        super::spa::seal(&self.key, &msg, aead_nonce)
    }
}

/// The host keys an SPA knock pins by default: every `/etc/ssh/ssh_host_*_key.pub`.
pub fn default_host_key_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir("/etc/ssh")
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("ssh_host_") && n.ends_with("_key.pub"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Sends one SPA packet to `host`:`port` over UDP.
pub fn send_spa(host: &str, port: u16, packet: &[u8]) -> io::Result<()> {
    let ip = resolve(host)?;
    let bind: SocketAddr = match ip {
        IpAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(bind)?;
    sock.send_to(packet, (ip, port))?;
    Ok(())
}

/// Polls for `path` until `deadline`; true when it exists.
fn wait_for(path: &Path, deadline: Instant) -> bool {
    loop {
        if path.exists() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(200)));
    }
}

/// ±20% of `d`, seeded from the clock and pid (no RNG crate needed for this).
fn jitter(d: Duration) -> Duration {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0)
        ^ std::process::id().wrapping_mul(2_654_435_761);
    let factor = 0.8 + f64::from(seed % 401) / 1000.0;
    d.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, UdpSocket};

    #[test]
    fn udp_knock_is_one_nul_byte_like_knockd() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = rx.local_addr().unwrap().port();
        send_knocks("127.0.0.1", &[PortSpec::udp(port)], Duration::ZERO).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], &[0u8]);
    }

    #[test]
    fn tcp_knock_reaches_a_listening_port_without_waiting() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        send_knocks("localhost", &[PortSpec::tcp(port)], Duration::ZERO).unwrap();
        // The SYN arrived: the kernel completed the handshake into the backlog (then saw the close).
        l.set_nonblocking(false).unwrap();
        let (_conn, peer) = l.accept().unwrap();
        assert!(peer.ip().is_loopback());
        // A closed port is not an error for a knock.
        drop(l);
        send_knocks(
            "127.0.0.1",
            &[PortSpec::tcp(port), PortSpec::udp(port)],
            Duration::from_millis(1),
        )
        .unwrap();
    }

    #[test]
    fn until_configured_stops_when_the_marker_appears_or_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("configured");
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rx.local_addr().unwrap().port();
        let opts = UntilConfigured {
            timeout: Duration::from_millis(700),
            marker: marker.clone(),
            first_retry: Duration::from_millis(100),
            max_retry: Duration::from_millis(200),
        };
        let e = knock_until_configured("127.0.0.1", &[PortSpec::udp(port)], Duration::ZERO, &opts)
            .unwrap_err();
        let UntilError::TimedOut { knocks, .. } = e else {
            panic!("{e}")
        };
        assert!(knocks >= 2, "re-knocked {knocks} times");

        let m = marker.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            std::fs::write(m, "door=base\n").unwrap();
        });
        let opts = UntilConfigured {
            timeout: Duration::from_secs(10),
            ..opts
        };
        let knocks =
            knock_until_configured("127.0.0.1", &[PortSpec::udp(port)], Duration::ZERO, &opts)
                .unwrap();
        writer.join().unwrap();
        assert!(knocks >= 1);
    }
}
