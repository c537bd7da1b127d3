//! Checked zero-copy views over captured frames (Ethernet/IPv4/IPv6/TCP/UDP) → Knock values. Never panics.
//!
//! Every view checks the length it needs before it reads, and every read goes through
//! `slice::get`, so a truncated or malformed frame is an error value, never a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::port::{PortSpec, Proto};

/// TCP flag bits as they appear in byte 13 of the TCP header.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;

/// One knock seen on the wire: a TCP or UDP packet to a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knock {
    pub source: IpAddr,
    pub destination: IpAddr,
    pub port: u16,
    pub proto: Proto,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
}

impl Knock {
    pub fn spec(&self) -> PortSpec {
        PortSpec {
            port: self.port,
            proto: self.proto,
        }
    }
}

/// Why a frame is not a knock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated {layer} header: need {need} bytes, have {have}")]
    Truncated {
        layer: &'static str,
        need: usize,
        have: usize,
    },
    #[error("unsupported ethertype {0:#06x}")]
    EtherType(u16),
    #[error("IP version {0} is neither 4 nor 6")]
    IpVersion(u8),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("IP protocol {0} is neither TCP nor UDP")]
    NotTcpUdp(u8),
    #[error("non-first IP fragment")]
    Fragment,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn need(layer: &'static str, b: &[u8], n: usize) -> Result<(), WireError> {
    if b.len() < n {
        Err(WireError::Truncated {
            layer,
            need: n,
            have: b.len(),
        })
    } else {
        Ok(())
    }
}

/// An Ethernet II frame, with up to two VLAN tags skipped.
#[derive(Debug, Clone, Copy)]
pub struct EthernetFrame<'a> {
    ethertype: u16,
    payload: &'a [u8],
}

impl<'a> EthernetFrame<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need("ethernet", b, 14)?;
        let mut at = 12;
        let mut ethertype = be16(b, at).ok_or(WireError::Malformed("ethernet"))?;
        for _ in 0..2 {
            if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
                break;
            }
            at += 4;
            need("vlan", b, at + 2)?;
            ethertype = be16(b, at).ok_or(WireError::Malformed("vlan"))?;
        }
        let payload = b.get(at + 2..).ok_or(WireError::Malformed("ethernet"))?;
        Ok(EthernetFrame { ethertype, payload })
    }
    pub fn ethertype(&self) -> u16 {
        self.ethertype
    }
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }
}

/// An IPv4 packet; the payload ends at the total length (trailing padding dropped).
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<'a> {
    b: &'a [u8],
    header_len: usize,
    end: usize,
}

impl<'a> Ipv4Packet<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need("ipv4", b, 20)?;
        let vihl = b[0];
        if vihl >> 4 != 4 {
            return Err(WireError::IpVersion(vihl >> 4));
        }
        let header_len = usize::from(vihl & 0x0f) * 4;
        if header_len < 20 {
            return Err(WireError::Malformed("ipv4"));
        }
        need("ipv4", b, header_len)?;
        let total = usize::from(be16(b, 2).ok_or(WireError::Malformed("ipv4"))?);
        if total < header_len {
            return Err(WireError::Malformed("ipv4"));
        }
        // A capture may be cut short (snaplen); use what arrived.
        let end = total.min(b.len());
        Ok(Ipv4Packet { b, header_len, end })
    }
    pub fn source(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.b[12], self.b[13], self.b[14], self.b[15])
    }
    pub fn destination(&self) -> Ipv4Addr {
        Ipv4Addr::new(self.b[16], self.b[17], self.b[18], self.b[19])
    }
    pub fn protocol(&self) -> u8 {
        self.b[9]
    }
    /// True for the second and later fragments (they carry no transport header).
    pub fn is_later_fragment(&self) -> bool {
        be16(self.b, 6).map(|f| f & 0x1fff != 0).unwrap_or(true)
    }
    pub fn payload(&self) -> &'a [u8] {
        self.b.get(self.header_len..self.end).unwrap_or(&[])
    }
}

/// An IPv6 packet; hop-by-hop, routing, destination-options and fragment headers are skipped.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<'a> {
    b: &'a [u8],
    next_header: u8,
    payload_at: usize,
    end: usize,
    later_fragment: bool,
}

impl<'a> Ipv6Packet<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need("ipv6", b, 40)?;
        if b[0] >> 4 != 6 {
            return Err(WireError::IpVersion(b[0] >> 4));
        }
        let payload_len = usize::from(be16(b, 4).ok_or(WireError::Malformed("ipv6"))?);
        let end = (40 + payload_len).min(b.len());
        let mut next_header = b[6];
        let mut at = 40;
        let mut later_fragment = false;
        // A bounded walk over extension headers: a crafted chain cannot loop.
        for _ in 0..8 {
            match next_header {
                0 | 43 | 60 => {
                    let h = b.get(at..at + 2).ok_or(WireError::Truncated {
                        layer: "ipv6 extension",
                        need: at + 2,
                        have: b.len(),
                    })?;
                    next_header = h[0];
                    at += (usize::from(h[1]) + 1) * 8;
                }
                44 => {
                    let h = b.get(at..at + 8).ok_or(WireError::Truncated {
                        layer: "ipv6 fragment",
                        need: at + 8,
                        have: b.len(),
                    })?;
                    next_header = h[0];
                    later_fragment = u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0;
                    at += 8;
                }
                _ => break,
            }
        }
        if at > end {
            return Err(WireError::Malformed("ipv6 extension"));
        }
        Ok(Ipv6Packet {
            b,
            next_header,
            payload_at: at,
            end,
            later_fragment,
        })
    }
    pub fn source(&self) -> Ipv6Addr {
        addr16(&self.b[8..24])
    }
    pub fn destination(&self) -> Ipv6Addr {
        addr16(&self.b[24..40])
    }
    /// The upper-layer protocol after any extension headers.
    pub fn protocol(&self) -> u8 {
        self.next_header
    }
    pub fn is_later_fragment(&self) -> bool {
        self.later_fragment
    }
    pub fn payload(&self) -> &'a [u8] {
        self.b.get(self.payload_at..self.end).unwrap_or(&[])
    }
}

fn addr16(s: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(s);
    Ipv6Addr::from(a)
}

/// The fields of a TCP header a knock needs.
#[derive(Debug, Clone, Copy)]
pub struct TcpHeader<'a> {
    b: &'a [u8],
}

impl<'a> TcpHeader<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need("tcp", b, 20)?;
        if b[12] >> 4 < 5 {
            return Err(WireError::Malformed("tcp"));
        }
        Ok(TcpHeader { b })
    }
    pub fn source_port(&self) -> u16 {
        u16::from_be_bytes([self.b[0], self.b[1]])
    }
    pub fn destination_port(&self) -> u16 {
        u16::from_be_bytes([self.b[2], self.b[3]])
    }
    pub fn flags(&self) -> u8 {
        self.b[13] & 0x3f
    }
}

/// The fields of a UDP header a knock needs.
#[derive(Debug, Clone, Copy)]
pub struct UdpHeader<'a> {
    b: &'a [u8],
}

impl<'a> UdpHeader<'a> {
    pub fn new_checked(b: &'a [u8]) -> Result<Self, WireError> {
        need("udp", b, 8)?;
        Ok(UdpHeader { b })
    }
    pub fn source_port(&self) -> u16 {
        u16::from_be_bytes([self.b[0], self.b[1]])
    }
    pub fn destination_port(&self) -> u16 {
        u16::from_be_bytes([self.b[2], self.b[3]])
    }
}

/// Parses an Ethernet frame (as read from an `AF_PACKET`/`SOCK_RAW` socket) into a knock.
pub fn parse_ethernet(frame: &[u8]) -> Result<Knock, WireError> {
    let eth = EthernetFrame::new_checked(frame)?;
    match eth.ethertype() {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => parse_ip(eth.payload()),
        other => Err(WireError::EtherType(other)),
    }
}

/// Parses an IP packet (as read from an `AF_PACKET`/`SOCK_DGRAM` socket) into a knock.
pub fn parse_ip(packet: &[u8]) -> Result<Knock, WireError> {
    let version = packet.first().map(|b| b >> 4);
    let (source, destination, protocol, payload) = match version {
        Some(4) => {
            let ip = Ipv4Packet::new_checked(packet)?;
            if ip.is_later_fragment() {
                return Err(WireError::Fragment);
            }
            (
                IpAddr::V4(ip.source()),
                IpAddr::V4(ip.destination()),
                ip.protocol(),
                ip.payload(),
            )
        }
        Some(6) => {
            let ip = Ipv6Packet::new_checked(packet)?;
            if ip.is_later_fragment() {
                return Err(WireError::Fragment);
            }
            (
                IpAddr::V6(ip.source()),
                IpAddr::V6(ip.destination()),
                ip.protocol(),
                ip.payload(),
            )
        }
        Some(v) => return Err(WireError::IpVersion(v)),
        None => {
            return Err(WireError::Truncated {
                layer: "ip",
                need: 1,
                have: 0,
            })
        }
    };
    let (proto, port, tcp_flags) = match protocol {
        6 => {
            let tcp = TcpHeader::new_checked(payload)?;
            (Proto::Tcp, tcp.destination_port(), tcp.flags())
        }
        17 => {
            let udp = UdpHeader::new_checked(payload)?;
            (Proto::Udp, udp.destination_port(), 0)
        }
        other => return Err(WireError::NotTcpUdp(other)),
    };
    Ok(Knock {
        source,
        destination,
        port,
        proto,
        tcp_flags,
    })
}

/// The payload of a UDP datagram in an IP packet (as [`parse_ip`] reads it), bounded by the IP
/// and UDP lengths; `None` for anything else.
pub fn udp_payload(packet: &[u8]) -> Option<&[u8]> {
    let (protocol, payload) = match packet.first().map(|b| b >> 4) {
        Some(4) => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            (ip.protocol(), ip.payload())
        }
        Some(6) => {
            let ip = Ipv6Packet::new_checked(packet).ok()?;
            (ip.protocol(), ip.payload())
        }
        _ => return None,
    };
    if protocol != 17 || payload.len() < 8 {
        return None;
    }
    let udp_len = u16::from_be_bytes([payload[4], payload[5]]) as usize;
    let end = udp_len.clamp(8, payload.len());
    Some(&payload[8..end])
}

/// Frame builders for tests, benchmarks and the flood sender (checksums left zero:
/// capture happens before the stack verifies them).
pub mod build {
    use super::*;

    /// An IPv4 packet carrying a TCP header with `flags` (or a UDP header with one payload byte).
    pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, spec: PortSpec, flags: u8) -> Vec<u8> {
        let l4 = transport(spec, flags, 40000);
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        let total = (20 + l4.len()) as u16;
        p[2..4].copy_from_slice(&total.to_be_bytes());
        p[6] = 0x40; // don't fragment
        p[8] = 64;
        p[9] = spec.proto.ip_number();
        p[12..16].copy_from_slice(&src.octets());
        p[16..20].copy_from_slice(&dst.octets());
        let sum = checksum(&p);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(&l4);
        p
    }

    /// An IPv6 packet carrying a TCP or UDP header.
    pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, spec: PortSpec, flags: u8) -> Vec<u8> {
        let l4 = transport(spec, flags, 40000);
        let mut p = vec![0u8; 40];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
        p[6] = spec.proto.ip_number();
        p[7] = 64;
        p[8..24].copy_from_slice(&src.octets());
        p[24..40].copy_from_slice(&dst.octets());
        p.extend_from_slice(&l4);
        p
    }

    /// An IPv4 packet carrying a UDP datagram with `payload` (an SPA packet, or garbage).
    pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, port: u16, payload: &[u8]) -> Vec<u8> {
        let mut udp = vec![0u8; 8];
        udp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        udp[2..4].copy_from_slice(&port.to_be_bytes());
        udp[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        udp.extend_from_slice(payload);
        let mut p = vec![0u8; 20];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&((20 + udp.len()) as u16).to_be_bytes());
        p[6] = 0x40;
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&src.octets());
        p[16..20].copy_from_slice(&dst.octets());
        let sum = checksum(&p);
        p[10..12].copy_from_slice(&sum.to_be_bytes());
        p.extend_from_slice(&udp);
        p
    }

    /// Wraps an IP packet in an Ethernet II header.
    pub fn ethernet(dst_mac: [u8; 6], src_mac: [u8; 6], ip: &[u8]) -> Vec<u8> {
        let ethertype = if ip.first().map(|b| b >> 4) == Some(6) {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        };
        let mut f = Vec::with_capacity(14 + ip.len());
        f.extend_from_slice(&dst_mac);
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(ip);
        f
    }

    fn transport(spec: PortSpec, flags: u8, sport: u16) -> Vec<u8> {
        match spec.proto {
            Proto::Tcp => {
                let mut t = vec![0u8; 20];
                t[0..2].copy_from_slice(&sport.to_be_bytes());
                t[2..4].copy_from_slice(&spec.port.to_be_bytes());
                t[12] = 5 << 4;
                t[13] = flags;
                t[14..16].copy_from_slice(&64240u16.to_be_bytes());
                t
            }
            Proto::Udp => {
                let mut u = vec![0u8; 9];
                u[0..2].copy_from_slice(&sport.to_be_bytes());
                u[2..4].copy_from_slice(&spec.port.to_be_bytes());
                u[4..6].copy_from_slice(&9u16.to_be_bytes());
                u
            }
        }
    }

    fn checksum(b: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for c in b.chunks(2) {
            let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
            sum += u32::from(w);
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::tcp_flags::*;
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 232, 0, 7);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 232, 0, 1);
    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// A SYN laid out as Linux sends it for `knock 10.232.0.1 7000`: MSS, SACK, timestamp, wscale options.
    const SYN_FIXTURE: &str = "02000000000102000000000208004500003c1c4640004006\
        0a6e0ae800070ae80001b3541b58a1b2c3d400000000a002faf0\
        00000000020405b40402080a001e8480000000000103030a";

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        hex::decode(s).unwrap()
    }

    #[test]
    fn parses_a_captured_syn_with_options() {
        let k = parse_ethernet(&unhex(SYN_FIXTURE)).unwrap();
        assert_eq!(k.source, IpAddr::V4(SRC));
        assert_eq!(k.destination, IpAddr::V4(DST));
        assert_eq!(k.spec(), PortSpec::tcp(7000));
        assert_eq!(k.tcp_flags, SYN);
    }

    #[test]
    fn parses_udp_and_ipv6() {
        let f = ethernet(MAC_A, MAC_B, &ipv4(SRC, DST, PortSpec::udp(53), 0));
        let k = parse_ethernet(&f).unwrap();
        assert_eq!((k.spec(), k.tcp_flags), (PortSpec::udp(53), 0));

        let s6: Ipv6Addr = "fd00:232::7".parse().unwrap();
        let d6: Ipv6Addr = "fd00:232::1".parse().unwrap();
        let f = ethernet(MAC_A, MAC_B, &ipv6(s6, d6, PortSpec::tcp(9000), SYN | ACK));
        let k = parse_ethernet(&f).unwrap();
        assert_eq!(k.source, IpAddr::V6(s6));
        assert_eq!(k.destination, IpAddr::V6(d6));
        assert_eq!((k.spec(), k.tcp_flags), (PortSpec::tcp(9000), SYN | ACK));
        // The same packet read from a cooked (SOCK_DGRAM) socket.
        assert_eq!(parse_ip(&f[14..]).unwrap(), k);
    }

    #[test]
    fn skips_vlan_tags_and_ipv6_extension_headers() {
        let ip = ipv4(SRC, DST, PortSpec::tcp(7000), SYN);
        let mut f = ethernet(MAC_A, MAC_B, &ip);
        f.splice(12..12, [0x81, 0x00, 0x00, 0x2a]);
        assert_eq!(parse_ethernet(&f).unwrap().port, 7000);

        // IPv6 with a hop-by-hop header (8 bytes) before TCP.
        let mut p = ipv6(
            "fd00::7".parse().unwrap(),
            "fd00::1".parse().unwrap(),
            PortSpec::tcp(7001),
            SYN,
        );
        let plen = u16::from_be_bytes([p[4], p[5]]) + 8;
        p[4..6].copy_from_slice(&plen.to_be_bytes());
        p[6] = 0;
        p.splice(40..40, [6u8, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse_ip(&p).unwrap().spec(), PortSpec::tcp(7001));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let frames = [
            unhex(SYN_FIXTURE),
            ethernet(MAC_A, MAC_B, &ipv4(SRC, DST, PortSpec::udp(53), 0)),
            ethernet(
                MAC_A,
                MAC_B,
                &ipv6(
                    "fd00::7".parse().unwrap(),
                    "fd00::1".parse().unwrap(),
                    PortSpec::tcp(1),
                    SYN,
                ),
            ),
        ];
        for f in &frames {
            for cut in 0..f.len() {
                let r = parse_ethernet(&f[..cut]);
                // Only cuts inside the transport header or earlier must fail; payload may be cut.
                if cut < 14 + 20 + 8 {
                    assert!(r.is_err(), "cut at {cut} parsed: {r:?}");
                }
            }
        }
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let good = ipv4(SRC, DST, PortSpec::tcp(7000), SYN);
        let mut bad_ihl = good.clone();
        bad_ihl[0] = 0x44; // IHL 4 words < 20 bytes
        assert_eq!(parse_ip(&bad_ihl), Err(WireError::Malformed("ipv4")));
        let mut huge_ihl = good.clone();
        huge_ihl[0] = 0x4f; // 60-byte header in a 40-byte packet
        assert!(matches!(
            parse_ip(&huge_ihl),
            Err(WireError::Truncated { .. })
        ));
        let mut short_total = good.clone();
        short_total[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(parse_ip(&short_total), Err(WireError::Malformed("ipv4")));
        let mut frag = good.clone();
        frag[6..8].copy_from_slice(&0x0010u16.to_be_bytes());
        assert_eq!(parse_ip(&frag), Err(WireError::Fragment));
        let mut icmp = good.clone();
        icmp[9] = 1;
        assert_eq!(parse_ip(&icmp), Err(WireError::NotTcpUdp(1)));
        let mut tcp_off = good.clone();
        tcp_off[20 + 12] = 0x40; // data offset 4 < 5
        assert_eq!(parse_ip(&tcp_off), Err(WireError::Malformed("tcp")));
        assert_eq!(parse_ip(&[0x15; 30]), Err(WireError::IpVersion(1)));
        assert!(parse_ethernet(&[0u8; 20]).is_err());
        let arp = ethernet(MAC_A, MAC_B, &[0u8; 28]);
        let mut arp = arp;
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(parse_ethernet(&arp), Err(WireError::EtherType(0x0806)));
        // An IPv6 extension header that claims to run past the packet.
        let mut p = ipv6(
            "fd00::7".parse().unwrap(),
            "fd00::1".parse().unwrap(),
            PortSpec::tcp(1),
            SYN,
        );
        p[6] = 60;
        p[41] = 200;
        assert!(parse_ip(&p).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        // A deterministic xorshift stream; the fuzz target explores far more.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for len in 0..2000usize {
            let mut b = Vec::with_capacity(len % 120);
            for _ in 0..len % 120 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b.push(x as u8);
            }
            if let Some(first) = b.first_mut() {
                *first = (*first & 0x0f) | if len % 2 == 0 { 0x40 } else { 0x60 };
            }
            let _ = parse_ip(&b);
            let _ = parse_ethernet(&b);
        }
    }
}
