//! Fuzz target: any packet stream keeps the sequence tracker within its bound, without panics.
//! Run: `bash fuzz/run sequence` (see fuzz/README.md).

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use knockplay::knock::flags::TcpFlagRule;
use knockplay::knock::sequence::{DoorSequence, SequenceTracker};
use knockplay::knock::wire::Knock;
use knockplay::knock::{PortSpec, Proto};
use libfuzzer_sys::fuzz_target;

const CAPACITY: usize = 16;

fuzz_target!(|data: &[u8]| {
    let doors = vec![
        DoorSequence {
            sequence: vec![PortSpec::tcp(1), PortSpec::udp(2), PortSpec::tcp(3)],
            timeout: Duration::from_millis(500),
            tcp_flags: TcpFlagRule::default(),
        },
        DoorSequence {
            sequence: vec![PortSpec::tcp(1), PortSpec::tcp(1), PortSpec::udp(4)],
            timeout: Duration::from_millis(200),
            tcp_flags: "fin,!ack".parse().unwrap(),
        },
    ];
    let mut t = SequenceTracker::new(doors, CAPACITY);
    let t0 = Instant::now();
    let mut now = t0;
    // 4 bytes per packet: source, port (0-4), protocol + flags, time step.
    for c in data.chunks_exact(4) {
        now += Duration::from_millis(u64::from(c[3]));
        let k = Knock {
            source: IpAddr::V4(Ipv4Addr::new(10, 0, 0, c[0] % 40)),
            destination: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            port: u16::from(c[1] % 5),
            proto: if c[2] & 0x80 != 0 { Proto::Udp } else { Proto::Tcp },
            tcp_flags: c[2] & 0x3f,
        };
        if let Some(d) = t.observe(&k, now) {
            assert!(d.door < 2);
        }
        if c[3] == 255 {
            t.expire(now);
        }
        assert!(t.tracked() <= CAPACITY);
        t.drain_reports().for_each(drop);
    }
});
