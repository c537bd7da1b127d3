//! The kernel socket filter: only inbound TCP/UDP packets to sequence ports reach user space.
//!
//! Classic BPF over cooked (`SOCK_DGRAM`) packets, so offset 0 is the IP header. Outgoing
//! packets and packets for other hosts are dropped by packet type; IPv4 later fragments are
//! dropped; IPv6 packets with extension headers are passed up for the user-space parser.

use std::collections::BTreeSet;

use crate::knock::port::{PortSpec, Proto};

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (linux/filter.h).
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LDX_B_MSH: u16 = 0xb1;
const ALU_RSH_K: u16 = 0x74;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGT_K: u16 = 0x25;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;

/// `SKF_AD_OFF + SKF_AD_PKTTYPE`: loads the packet type (host, broadcast, ..., outgoing).
const AD_PKTTYPE: u32 = (-0x1000i32 + 4) as u32;
/// Bytes kept per packet: IPv6 with extension headers plus TCP, or a whole SPA datagram.
pub const SNAPLEN: u32 = 1600;
/// The most ports per protocol matched exactly; beyond that all ports of the protocol pass.
const MAX_EXACT_PORTS: usize = 200;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Label {
    Drop,
    Accept,
    V4,
    V6,
    Tcp4,
    Udp4,
    Tcp6,
    Udp6,
    TcpPorts,
    UdpPorts,
}

enum Op {
    Plain(Insn),
    /// A conditional jump: (code, k, jump-if-true, jump-if-false); `None` falls through.
    Cond(u16, u32, Option<Label>, Option<Label>),
    Ja(Label),
    Mark(Label),
}

fn plain(code: u16, k: u32) -> Op {
    Op::Plain(Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    })
}

/// Builds the filter for the ports of all doors.
pub fn program(ports: &[PortSpec]) -> Vec<Insn> {
    let tcp: BTreeSet<u16> = ports
        .iter()
        .filter(|p| p.proto == Proto::Tcp)
        .map(|p| p.port)
        .collect();
    let udp: BTreeSet<u16> = ports
        .iter()
        .filter(|p| p.proto == Proto::Udp)
        .map(|p| p.port)
        .collect();
    let mut ops = vec![
        // Inbound only: PACKET_HOST (0), BROADCAST (1), MULTICAST (2).
        plain(LD_W_ABS, AD_PKTTYPE),
        Op::Cond(JMP_JGT_K, 2, Some(Label::Drop), None),
        plain(LD_B_ABS, 0),
        plain(ALU_RSH_K, 4),
        Op::Cond(JMP_JEQ_K, 4, Some(Label::V4), None),
        Op::Cond(JMP_JEQ_K, 6, Some(Label::V6), Some(Label::Drop)),
        Op::Mark(Label::V4),
        plain(LD_H_ABS, 6),
        Op::Cond(JMP_JSET_K, 0x1fff, Some(Label::Drop), None),
        plain(LD_B_ABS, 9),
        Op::Cond(JMP_JEQ_K, 6, Some(Label::Tcp4), None),
        Op::Cond(JMP_JEQ_K, 17, Some(Label::Udp4), Some(Label::Drop)),
        Op::Mark(Label::Tcp4),
        plain(LDX_B_MSH, 0),
        plain(LD_H_IND, 2),
        Op::Ja(Label::TcpPorts),
        Op::Mark(Label::Udp4),
        plain(LDX_B_MSH, 0),
        plain(LD_H_IND, 2),
        Op::Ja(Label::UdpPorts),
        Op::Mark(Label::V6),
        plain(LD_B_ABS, 6),
        Op::Cond(JMP_JEQ_K, 6, Some(Label::Tcp6), None),
        Op::Cond(JMP_JEQ_K, 17, Some(Label::Udp6), None),
        // Hop-by-hop, routing, fragment, destination options: let user space walk them.
        Op::Cond(JMP_JEQ_K, 0, Some(Label::Accept), None),
        Op::Cond(JMP_JEQ_K, 43, Some(Label::Accept), None),
        Op::Cond(JMP_JEQ_K, 44, Some(Label::Accept), None),
        Op::Cond(JMP_JEQ_K, 60, Some(Label::Accept), Some(Label::Drop)),
        Op::Mark(Label::Tcp6),
        plain(LD_H_ABS, 42),
        Op::Ja(Label::TcpPorts),
        Op::Mark(Label::Udp6),
        plain(LD_H_ABS, 42),
        Op::Ja(Label::UdpPorts),
    ];
    for (label, set) in [(Label::TcpPorts, &tcp), (Label::UdpPorts, &udp)] {
        ops.push(Op::Mark(label));
        if set.len() > MAX_EXACT_PORTS {
            ops.push(plain(RET_K, SNAPLEN));
            continue;
        }
        // Each block ends with its own accept, so every jump stays short (< 256).
        let n = set.len();
        for (i, port) in set.iter().enumerate() {
            let to_accept = (n - i) as u8;
            ops.push(Op::Plain(Insn {
                code: JMP_JEQ_K,
                jt: to_accept,
                jf: 0,
                k: u32::from(*port),
            }));
        }
        ops.push(plain(RET_K, 0));
        ops.push(plain(RET_K, SNAPLEN));
    }
    ops.push(Op::Mark(Label::Accept));
    ops.push(plain(RET_K, SNAPLEN));
    ops.push(Op::Mark(Label::Drop));
    ops.push(plain(RET_K, 0));
    assemble(&ops)
}

fn assemble(ops: &[Op]) -> Vec<Insn> {
    let mut at = Vec::new();
    let mut pc = 0usize;
    for op in ops {
        match op {
            Op::Mark(l) => at.push((*l, pc)),
            _ => pc += 1,
        }
    }
    let pos = |l: Label| {
        at.iter()
            .find(|(x, _)| *x == l)
            .map(|(_, p)| *p)
            .unwrap_or(0)
    };
    let mut out = Vec::with_capacity(pc);
    for op in ops {
        let here = out.len();
        let rel = |l: Option<Label>| l.map(|l| pos(l) - here - 1).unwrap_or(0);
        match op {
            Op::Plain(i) => out.push(*i),
            Op::Cond(code, k, t, f) => {
                // The header jumps are a few instructions long by construction.
                let (jt, jf) = (rel(*t), rel(*f));
                debug_assert!(jt < 256 && jf < 256);
                out.push(Insn {
                    code: *code,
                    jt: jt as u8,
                    jf: jf as u8,
                    k: *k,
                });
            }
            Op::Ja(l) => out.push(Insn {
                code: JMP_JA,
                jt: 0,
                jf: 0,
                k: rel(Some(*l)) as u32,
            }),
            Op::Mark(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knock::wire::build;
    use crate::knock::wire::tcp_flags::SYN;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// A classic BPF interpreter for the opcodes `program` emits (the kernel's semantics:
    /// an out-of-bounds load drops the packet).
    fn run(prog: &[Insn], pkt: &[u8], pkttype: u32) -> u32 {
        let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
        let load = |off: usize, n: usize| -> Option<u32> {
            let b = pkt.get(off..off + n)?;
            Some(b.iter().fold(0u32, |acc, v| (acc << 8) | u32::from(*v)))
        };
        for _ in 0..10_000 {
            let i = prog[pc];
            pc += 1;
            match i.code {
                LD_W_ABS if i.k == AD_PKTTYPE => a = pkttype,
                LD_H_ABS => match load(i.k as usize, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_B_ABS => match load(i.k as usize, 1) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LD_H_IND => match load(x as usize + i.k as usize, 2) {
                    Some(v) => a = v,
                    None => return 0,
                },
                LDX_B_MSH => match load(i.k as usize, 1) {
                    Some(v) => x = (v & 0xf) * 4,
                    None => return 0,
                },
                ALU_RSH_K => a >>= i.k,
                JMP_JA => pc += i.k as usize,
                JMP_JEQ_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
                JMP_JGT_K => pc += usize::from(if a > i.k { i.jt } else { i.jf }),
                JMP_JSET_K => pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf }),
                RET_K => return i.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
        panic!("program did not terminate");
    }

    const S4: Ipv4Addr = Ipv4Addr::new(10, 232, 0, 7);
    const D4: Ipv4Addr = Ipv4Addr::new(10, 232, 0, 1);

    fn v6(p: PortSpec) -> Vec<u8> {
        build::ipv6(
            "fd00::7".parse::<Ipv6Addr>().unwrap(),
            "fd00::1".parse().unwrap(),
            p,
            SYN,
        )
    }

    #[test]
    fn passes_only_inbound_sequence_ports() {
        let prog = program(&[
            PortSpec::tcp(7000),
            PortSpec::udp(8000),
            PortSpec::tcp(9000),
        ]);
        let v4 = |p| build::ipv4(S4, D4, p, SYN);
        for p in [
            PortSpec::tcp(7000),
            PortSpec::udp(8000),
            PortSpec::tcp(9000),
        ] {
            assert_eq!(run(&prog, &v4(p), 0), SNAPLEN, "{p} over IPv4");
            assert_eq!(run(&prog, &v6(p), 0), SNAPLEN, "{p} over IPv6");
            assert_eq!(run(&prog, &v4(p), 1), SNAPLEN, "{p} broadcast");
            assert_eq!(run(&prog, &v4(p), 4), 0, "{p} outgoing");
            assert_eq!(run(&prog, &v4(p), 3), 0, "{p} for another host");
        }
        for p in [
            PortSpec::udp(7000),
            PortSpec::tcp(8000),
            PortSpec::tcp(22),
            PortSpec::udp(53),
        ] {
            assert_eq!(run(&prog, &v4(p), 0), 0, "{p} over IPv4");
            assert_eq!(run(&prog, &v6(p), 0), 0, "{p} over IPv6");
        }
        // IPv4 with options: the port is found after the longer header.
        let mut opt = v4(PortSpec::tcp(7000));
        opt[0] = 0x46;
        opt.splice(20..20, [1u8, 1, 1, 1]);
        assert_eq!(run(&prog, &opt, 0), SNAPLEN);
        // Later fragments, ICMP, ARP-ish garbage and truncated packets are dropped.
        let mut frag = v4(PortSpec::tcp(7000));
        frag[6..8].copy_from_slice(&0x0004u16.to_be_bytes());
        assert_eq!(run(&prog, &frag, 0), 0);
        let mut icmp = v4(PortSpec::tcp(7000));
        icmp[9] = 1;
        assert_eq!(run(&prog, &icmp, 0), 0);
        assert_eq!(run(&prog, &[0x45, 0, 0], 0), 0);
        assert_eq!(run(&prog, &[0x10; 40], 0), 0);
        // IPv6 with a hop-by-hop header goes to user space.
        let mut hbh = v6(PortSpec::tcp(22));
        hbh[6] = 0;
        assert_eq!(run(&prog, &hbh, 0), SNAPLEN);
    }

    #[test]
    fn many_ports_stay_exact_and_huge_sets_fall_back_to_the_protocol() {
        let ports: Vec<PortSpec> = (1000..1200).map(PortSpec::tcp).collect();
        let prog = program(&ports);
        assert_eq!(
            run(&prog, &build::ipv4(S4, D4, PortSpec::tcp(1000), SYN), 0),
            SNAPLEN
        );
        assert_eq!(
            run(&prog, &build::ipv4(S4, D4, PortSpec::tcp(1199), SYN), 0),
            SNAPLEN
        );
        assert_eq!(
            run(&prog, &build::ipv4(S4, D4, PortSpec::tcp(1200), SYN), 0),
            0
        );
        let ports: Vec<PortSpec> = (1000..1300).map(PortSpec::tcp).collect();
        let prog = program(&ports);
        assert_eq!(
            run(&prog, &build::ipv4(S4, D4, PortSpec::tcp(5), SYN), 0),
            SNAPLEN
        );
        assert_eq!(
            run(&prog, &build::ipv4(S4, D4, PortSpec::udp(5), SYN), 0),
            0
        );
        // No ports at all: nothing passes.
        let prog = program(&[]);
        assert_eq!(
            run(&prog, &build::ipv4(S4, D4, PortSpec::tcp(5), SYN), 0),
            0
        );
    }
}
