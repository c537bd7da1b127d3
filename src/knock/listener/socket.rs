//! A cooked `AF_PACKET` socket bound to one interface: kernel filter, big receive buffer,
//! read timeout, drop statistics. Promiscuous mode is never requested.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use super::bpf::Insn;

const SO_ATTACH_FILTER: libc::c_int = 26;
const SO_RCVBUFFORCE: libc::c_int = 33;
const PACKET_STATISTICS: libc::c_int = 6;
/// Packet types (sll_pkttype) that are not addressed to this host.
pub const PACKET_OTHERHOST: u8 = 3;
pub const PACKET_OUTGOING: u8 = 4;

#[repr(C)]
#[derive(Default)]
struct TpacketStats {
    tp_packets: u32,
    tp_drops: u32,
}

#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const Insn,
}

/// A capture socket on one interface.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    pub ifindex: u32,
}

/// The kernel's index for an interface name (None if it does not exist).
pub fn interface_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size given.
    check(unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Whether this process may open packet sockets (CAP_NET_RAW).
pub fn can_capture() -> io::Result<()> {
    // SAFETY: plain socket call; the descriptor is owned and closed on drop.
    let fd =
        check(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket().
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}

impl PacketSocket {
    /// Opens a socket on `name`. The filter is attached before the socket is bound, so not a
    /// single unfiltered packet is queued.
    pub fn open(
        name: &str,
        receive_buffer: usize,
        filter: &[Insn],
        timeout: Duration,
    ) -> io::Result<Self> {
        let ifindex = interface_index(name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no interface named {name}"),
            )
        })?;
        // Protocol 0: receives nothing until bound with a protocol.
        // SAFETY: plain socket call; ownership goes to OwnedFd right away.
        let raw = check(unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
        })?;
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = PacketSocket { fd, ifindex };
        s.set_filter(filter)?;
        let size = libc::c_int::try_from(receive_buffer).unwrap_or(libc::c_int::MAX);
        // SO_RCVBUFFORCE passes rmem_max (needs CAP_NET_ADMIN); fall back to what is allowed.
        if setsockopt(&s.fd, libc::SOL_SOCKET, SO_RCVBUFFORCE, &size).is_err() {
            setsockopt(&s.fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &size)?;
        }
        // Field types differ between libcs (musl's are changing width): let the struct say.
        // The timeout is a poll interval, far below any field's range.
        let tv = libc::timeval {
            tv_sec: timeout.as_secs().min(3600) as _,
            tv_usec: timeout.subsec_micros() as _,
        };
        setsockopt(&s.fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
        // SAFETY: sockaddr_ll is plain old data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = ifindex as libc::c_int;
        // SAFETY: sll is a valid sockaddr_ll of the size given.
        check(unsafe {
            libc::bind(
                s.fd.as_raw_fd(),
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        })?;
        Ok(s)
    }

    /// Replaces the kernel filter (after a reload changed the ports).
    pub fn set_filter(&self, prog: &[Insn]) -> io::Result<()> {
        let fprog = SockFprog {
            len: prog.len() as libc::c_ushort,
            filter: prog.as_ptr(),
        };
        setsockopt(&self.fd, libc::SOL_SOCKET, SO_ATTACH_FILTER, &fprog)
    }

    /// The receive buffer the kernel granted (it reports twice the requested size).
    pub fn receive_buffer(&self) -> usize {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: v and len are valid for writing.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &mut v as *mut _ as *mut _,
                &mut len,
            )
        };
        if rc < 0 {
            0
        } else {
            v.max(0) as usize
        }
    }

    /// Reads one packet: `Ok(None)` when the read timeout passed.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<Option<(usize, u8)>> {
        // SAFETY: sockaddr_ll is plain old data.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: buf and from are valid for writing with the lengths given.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
                &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                &mut len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                _ => Err(e),
            };
        }
        Ok(Some(((n as usize).min(buf.len()), from.sll_pkttype)))
    }

    /// Packets the kernel handed over and dropped (buffer full) since the last call.
    pub fn take_stats(&self) -> io::Result<(u32, u32)> {
        let mut st = TpacketStats::default();
        let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: st and len are valid for writing.
        check(unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                PACKET_STATISTICS,
                &mut st as *mut TpacketStats as *mut libc::c_void,
                &mut len,
            )
        })?;
        Ok((st.tp_packets, st.tp_drops))
    }
}
