//! Table-driven tests for the sequence tracker, with injected time.

use super::*;
use crate::knock::wire::tcp_flags::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn door(seq: &[&str], timeout_ms: u64) -> DoorSequence {
    DoorSequence {
        sequence: seq.iter().map(|s| s.parse().unwrap()).collect(),
        timeout: Duration::from_millis(timeout_ms),
        tcp_flags: TcpFlagRule::default(),
    }
}

fn host(name: &str) -> IpAddr {
    match name {
        "v6" => IpAddr::V6("fd00:232::7".parse::<Ipv6Addr>().unwrap()),
        "v6b" => IpAddr::V6("fd00:232::8".parse::<Ipv6Addr>().unwrap()),
        n => {
            let i: u8 = n.trim_start_matches('h').parse().unwrap();
            IpAddr::V4(Ipv4Addr::new(10, 232, 0, i))
        }
    }
}

/// One packet: `"<ms> <host> <port>/<proto> [flags]"`, flags like `S`, `SA`, `R`, `F` (default `S`).
fn packet(line: &str) -> (u64, Knock) {
    let f: Vec<&str> = line.split_whitespace().collect();
    let spec: PortSpec = f[2].parse().unwrap();
    let mut flags = 0;
    for c in f.get(3).copied().unwrap_or("S").chars() {
        flags |= match c {
            'S' => SYN,
            'A' => ACK,
            'R' => RST,
            'F' => FIN,
            'P' => PSH,
            '-' => 0,
            _ => panic!("flag {c}"),
        };
    }
    if spec.proto == Proto::Udp {
        flags = 0;
    }
    let knock = Knock {
        source: host(f[1]),
        destination: IpAddr::V4(Ipv4Addr::new(10, 232, 0, 1)),
        port: spec.port,
        proto: spec.proto,
        tcp_flags: flags,
    };
    (f[0].parse().unwrap(), knock)
}

struct Case {
    name: &'static str,
    doors: Vec<DoorSequence>,
    packets: Vec<&'static str>,
    /// `"<packet index> <host> <door>"` for every detection, in order.
    detected: Vec<&'static str>,
    /// `"<host> <door> <reason>"` for every failed attempt reported, in order.
    failed: Vec<&'static str>,
}

fn run(case: &Case, capacity: usize) -> (Vec<String>, Vec<String>) {
    let t0 = Instant::now();
    let mut t = SequenceTracker::new(case.doors.clone(), capacity);
    let mut detected = Vec::new();
    let mut failed = Vec::new();
    let collect = |t: &mut SequenceTracker,
                   failed: &mut Vec<String>,
                   detected: &mut Vec<String>,
                   i: usize| {
        for r in t.drain_reports() {
            match r {
                Report::Failed(f) => {
                    failed.push(format!("{} {} {}", f.source, f.door, f.reason.as_str()))
                }
                Report::Detected(d) => detected.push(format!("{i} {} {}", d.source, d.door)),
            }
        }
    };
    for (i, line) in case.packets.iter().enumerate() {
        let (ms, k) = packet(line);
        let now = t0 + Duration::from_millis(ms);
        if let Some(d) = t.observe(&k, now) {
            detected.push(format!("{i} {} {}", d.source, d.door));
        }
        collect(&mut t, &mut failed, &mut detected, i);
    }
    (detected, failed)
}

fn expand(lines: &[&str]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.len() {
                3 if f[0].parse::<usize>().is_ok() => format!("{} {} {}", f[0], host(f[1]), f[2]),
                3 => format!("{} {} {}", host(f[0]), f[1], f[2]),
                _ => panic!("bad expectation {l}"),
            }
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let abc = || vec![door(&["7000/tcp", "8000/tcp", "9000/tcp"], 5000)];
    vec![
        Case {
            name: "in order within the timeout",
            doors: abc(),
            packets: vec!["0 h7 7000/tcp", "10 h7 8000/tcp", "20 h7 9000/tcp"],
            detected: vec!["2 h7 0"],
            failed: vec![],
        },
        Case {
            name: "wrong order resets and nothing opens",
            doors: abc(),
            packets: vec!["0 h7 7000/tcp", "10 h7 9000/tcp", "20 h7 8000/tcp"],
            detected: vec![],
            failed: vec!["h7 0 wrong_order"],
        },
        Case {
            name: "an earlier port again is an extra port; a first port restarts",
            doors: abc(),
            packets: vec![
                "0 h7 7000/tcp",
                "10 h7 8000/tcp",
                "20 h7 7000/tcp",
                "30 h7 8000/tcp",
                "40 h7 9000/tcp",
            ],
            detected: vec!["4 h7 0"],
            failed: vec!["h7 0 extra_port"],
        },
        Case {
            name: "extra sequence port in between fails",
            doors: abc(),
            packets: vec![
                "0 h7 7000/tcp",
                "10 h7 8000/tcp",
                "15 h7 8000/tcp",
                "17 h7 7000/tcp",
                "20 h7 9000/tcp",
            ],
            detected: vec![],
            failed: vec!["h7 0 extra_port", "h7 0 wrong_order"],
        },
        Case {
            name: "ports in no sequence are ignored",
            doors: abc(),
            packets: vec![
                "0 h7 7000/tcp",
                "5 h7 22/tcp",
                "10 h7 8000/tcp",
                "12 h7 8000/udp",
                "20 h7 9000/tcp",
            ],
            detected: vec!["4 h7 0"],
            failed: vec![],
        },
        Case {
            name: "too slow: timeout runs from the first knock",
            doors: abc(),
            packets: vec!["0 h7 7000/tcp", "3000 h7 8000/tcp", "5001 h7 9000/tcp"],
            detected: vec![],
            failed: vec!["h7 0 too_slow"],
        },
        Case {
            name: "slow but within the timeout",
            doors: abc(),
            packets: vec!["0 h7 7000/tcp", "2500 h7 8000/tcp", "5000 h7 9000/tcp"],
            detected: vec!["2 h7 0"],
            failed: vec![],
        },
        Case {
            name: "too slow, then a fresh attempt succeeds",
            doors: abc(),
            packets: vec![
                "0 h7 7000/tcp",
                "6000 h7 7000/tcp",
                "6100 h7 8000/tcp",
                "6200 h7 9000/tcp",
            ],
            detected: vec!["3 h7 0"],
            failed: vec!["h7 0 too_slow"],
        },
        Case {
            name: "duplicate SYNs for the port just accepted do not reset",
            doors: abc(),
            packets: vec![
                "0 h7 7000/tcp",
                "1 h7 7000/tcp",
                "10 h7 8000/tcp",
                "1010 h7 8000/tcp",
                "1020 h7 9000/tcp",
            ],
            detected: vec!["4 h7 0"],
            failed: vec![],
        },
        Case {
            name: "a re-knock restarts the clock",
            doors: abc(),
            packets: vec![
                "0 h7 7000/tcp",
                "4000 h7 7000/tcp",
                "8000 h7 8000/tcp",
                "8100 h7 9000/tcp",
            ],
            detected: vec!["3 h7 0"],
            failed: vec![],
        },
        Case {
            name: "wrong TCP flags are ignored, not a reset",
            doors: abc(),
            packets: vec![
                "0 h7 7000/tcp",
                "5 h7 9000/tcp SA",
                "6 h7 9000/tcp R",
                "7 h7 9000/tcp A",
                "10 h7 8000/tcp",
                "20 h7 9000/tcp",
            ],
            detected: vec!["5 h7 0"],
            failed: vec![],
        },
        Case {
            name: "interleaved sources do not disturb each other",
            doors: abc(),
            packets: vec![
                "0 h1 7000/tcp",
                "1 h2 7000/tcp",
                "2 h3 7000/tcp",
                "3 h2 8000/tcp",
                "4 h1 9000/tcp",
                "5 h3 8000/tcp",
                "6 h2 9000/tcp",
                "7 h3 9000/tcp",
                "8 h1 7000/tcp",
                "9 h1 8000/tcp",
                "10 h1 9000/tcp",
            ],
            detected: vec!["6 h2 0", "7 h3 0", "10 h1 0"],
            failed: vec!["h1 0 wrong_order"],
        },
        Case {
            name: "one source completing does not drop others (knockd bug)",
            doors: abc(),
            packets: vec![
                "0 h1 7000/tcp",
                "0 h2 7000/tcp",
                "1 h1 8000/tcp",
                "1 h2 8000/tcp",
                "2 h1 9000/tcp",
                "2 h2 9000/tcp",
            ],
            detected: vec!["4 h1 0", "5 h2 0"],
            failed: vec![],
        },
        Case {
            name: "mixed TCP/UDP sequence; the protocol matters",
            doors: vec![door(&["7000/tcp", "8000/udp", "9000/tcp"], 5000)],
            packets: vec![
                "0 h7 7000/tcp",
                "5 h7 8000/tcp",
                "10 h7 8000/udp",
                "20 h7 9000/tcp",
                "30 h8 7000/tcp",
                "31 h8 8000/udp",
                "32 h8 9000/udp",
            ],
            detected: vec!["3 h7 0"],
            failed: vec![],
        },
        Case {
            name: "IPv6 sources",
            doors: abc(),
            packets: vec![
                "0 v6 7000/tcp",
                "1 v6b 7000/tcp",
                "2 v6 8000/tcp",
                "3 v6 9000/tcp",
                "4 v6b 9000/tcp",
            ],
            detected: vec!["3 v6 0"],
            failed: vec!["v6b 0 wrong_order"],
        },
        Case {
            name: "a port scan across the range opens nothing",
            doors: abc(),
            packets: vec![
                "0 h9 6999/tcp",
                "1 h9 7000/tcp",
                "2 h9 7001/tcp",
                "3 h9 7999/tcp",
                "4 h9 8000/tcp",
                "5 h9 8001/tcp",
                "6 h9 8999/tcp",
                "7 h9 9000/tcp",
            ],
            // An ascending scan does hit the sequence in order; knockd opens here too, which is why
            // doors need an allowlist and sequences should not be ascending.
            detected: vec!["7 h9 0"],
            failed: vec![],
        },
        Case {
            name: "a descending scan opens nothing",
            doors: abc(),
            packets: vec![
                "0 h9 9001/tcp",
                "1 h9 9000/tcp",
                "2 h9 8000/tcp",
                "3 h9 7000/tcp",
                "4 h9 6999/tcp",
            ],
            detected: vec![],
            failed: vec![],
        },
        Case {
            name: "two doors sharing a first port progress independently",
            doors: vec![
                door(&["7000/tcp", "8000/tcp", "9000/tcp"], 5000),
                door(&["7000/tcp", "9100/udp"], 5000),
            ],
            packets: vec![
                "0 h7 7000/tcp",
                "1 h7 9100/udp",
                "2 h7 8000/tcp",
                "3 h7 9000/tcp",
            ],
            detected: vec!["1 h7 1", "3 h7 0"],
            failed: vec![],
        },
        Case {
            name: "repeated ports in a sequence advance before counting as duplicates",
            doors: vec![door(&["7000/tcp", "7000/tcp", "8000/udp"], 5000)],
            packets: vec!["0 h7 7000/tcp", "1 h7 7000/tcp", "2 h7 8000/udp"],
            detected: vec!["2 h7 0"],
            failed: vec![],
        },
        Case {
            name: "a single-port door opens at once",
            doors: vec![door(&["4444/udp"], 5000)],
            packets: vec!["0 h7 4444/udp"],
            detected: vec!["0 h7 0"],
            failed: vec![],
        },
    ]
}

#[test]
fn table() {
    for case in cases() {
        let (detected, failed) = run(&case, 1000);
        assert_eq!(
            detected,
            expand(&case.detected),
            "{}: detections",
            case.name
        );
        assert_eq!(failed, expand(&case.failed), "{}: failures", case.name);
    }
}

#[test]
fn out_of_order_across_sources_in_the_same_instant() {
    // 50 hosts knocking at the same moment with their packets interleaved in every way.
    let mut t = SequenceTracker::new(
        vec![door(&["7000/tcp", "8000/tcp", "9000/tcp"], 5000)],
        100_000,
    );
    let t0 = Instant::now();
    let mut opened = Vec::new();
    for port in [7000, 8000, 9000] {
        for i in (1..=50u8).rev() {
            let k = Knock {
                source: IpAddr::V4(Ipv4Addr::new(10, 232, 1, i)),
                destination: IpAddr::V4(Ipv4Addr::new(10, 232, 0, 1)),
                port,
                proto: Proto::Tcp,
                tcp_flags: SYN,
            };
            if let Some(d) = t.observe(&k, t0) {
                opened.push(d.source);
            }
        }
    }
    assert_eq!(opened.len(), 50);
    assert_eq!(t.tracked(), 0);
}

#[test]
fn expire_reports_abandoned_attempts() {
    let mut t = SequenceTracker::new(vec![door(&["7000/tcp", "8000/tcp", "9000/tcp"], 5000)], 100);
    let t0 = Instant::now();
    let (_, k) = packet("0 h7 7000/tcp");
    t.observe(&k, t0);
    let (_, k) = packet("0 h7 8000/tcp");
    t.observe(&k, t0 + Duration::from_millis(100));
    t.expire(t0 + Duration::from_millis(4000));
    assert_eq!(t.tracked(), 1);
    t.expire(t0 + Duration::from_millis(5001));
    assert_eq!(t.tracked(), 0);
    let r: Vec<Report> = t.drain_reports().collect();
    assert_eq!(
        r,
        vec![Report::Failed(FailedAttempt {
            source: host("h7"),
            door: 0,
            reason: FailReason::TooSlow,
            stage: 2,
            port: None
        })]
    );
}

#[test]
fn a_flood_of_spoofed_sources_stays_within_capacity() {
    let capacity = 1000;
    let mut t = SequenceTracker::new(
        vec![door(&["7000/tcp", "8000/tcp", "9000/tcp"], 5000)],
        capacity,
    );
    let t0 = Instant::now();
    let mk = |a: u8, b: u8, port| Knock {
        source: IpAddr::V4(Ipv4Addr::new(10, 99, a, b)),
        destination: IpAddr::V4(Ipv4Addr::new(10, 232, 0, 1)),
        port,
        proto: Proto::Tcp,
        tcp_flags: SYN,
    };
    for n in 0..50_000u32 {
        let k = mk((n >> 8) as u8, n as u8, 7000);
        t.observe(&k, t0 + Duration::from_micros(u64::from(n)));
        assert!(t.tracked() <= capacity);
        assert!(
            t.order.len() <= 2 * capacity + 65,
            "order queue grew to {}",
            t.order.len()
        );
        if n == 49_990 {
            // A real knock in the middle of the flood completes.
            let real = |port| Knock {
                source: host("h7"),
                ..mk(0, 0, port)
            };
            let now = t0 + Duration::from_micros(u64::from(n));
            assert!(t.observe(&real(7000), now).is_none());
            assert!(t.observe(&real(8000), now).is_none());
            assert_eq!(
                t.observe(&real(9000), now),
                Some(Detected {
                    source: host("h7"),
                    door: 0
                })
            );
        }
        t.drain_reports().for_each(drop);
    }
    assert_eq!(t.stats().evicted, 50_000 - capacity as u64);
    // Re-knocks from one source over and over do not grow the order queue either.
    for n in 0..10_000u64 {
        let (_, k) = packet("0 h7 7000/tcp");
        t.observe(&k, t0 + Duration::from_millis(n));
    }
    assert!(t.order.len() <= 2 * capacity + 65);
}

#[test]
fn reports_are_bounded() {
    let mut t = SequenceTracker::new(vec![door(&["7000/tcp", "8000/tcp"], 5000)], 10);
    let t0 = Instant::now();
    for n in 0..10_000u32 {
        let k = Knock {
            source: IpAddr::V4(Ipv4Addr::from(0x0a63_0000 + n)),
            destination: IpAddr::V4(Ipv4Addr::new(10, 232, 0, 1)),
            port: 7000,
            proto: Proto::Tcp,
            tcp_flags: SYN,
        };
        t.observe(&k, t0);
    }
    assert_eq!(t.drain_reports().count(), MAX_REPORTS);
    assert_eq!(t.stats().reports_dropped, 10_000 - 10 - MAX_REPORTS as u64);
}

fn spoofed(n: u32, port: u16) -> Knock {
    Knock {
        source: IpAddr::V4(Ipv4Addr::from(0x0a63_0000 + n)),
        destination: IpAddr::V4(Ipv4Addr::new(10, 232, 0, 1)),
        port,
        proto: Proto::Tcp,
        tcp_flags: SYN,
    }
}

/// Issue 11: a mass expiry (10,000 attempts timing out together) used to overflow the report
/// queue, and the overflow never reached the trigger's counters or the history. Expiry now stops
/// when the queue is full and goes on at the next call: every attempt is reported.
#[test]
fn regression_issue_11_a_mass_expiry_reports_every_attempt() {
    let mut t = SequenceTracker::new(vec![door(&["7000/tcp", "8000/tcp"], 1000)], 100_000);
    let t0 = Instant::now();
    for n in 0..10_000u32 {
        t.observe(&spoofed(n, 7000), t0);
    }
    let later = t0 + Duration::from_secs(2);
    let mut reported = 0;
    for _ in 0..10 {
        t.expire(later);
        let batch = t.drain_reports().count();
        assert!(batch <= MAX_REPORTS);
        reported += batch;
    }
    assert_eq!(reported, 10_000);
    assert_eq!(t.tracked(), 0);
    assert_eq!(t.stats().reports_dropped, 0);
    assert_eq!(t.stats().failed, 10_000);
}

/// A reload replaces the tracker: attempts in progress are reported (`reloaded`), not forgotten.
#[test]
fn abandon_all_reports_every_attempt_in_progress() {
    let mut t = SequenceTracker::new(vec![door(&["7000/tcp", "8000/tcp", "9000/tcp"], 5000)], 100);
    let t0 = Instant::now();
    t.observe(&spoofed(1, 7000), t0);
    t.observe(&spoofed(1, 8000), t0);
    t.observe(&spoofed(2, 7000), t0);
    // A re-knock leaves a stale order entry behind: still one report for that source.
    t.observe(&spoofed(2, 7000), t0 + Duration::from_millis(10));
    // A wrong-order failure still queued is handed over too.
    t.observe(&spoofed(3, 7000), t0);
    t.observe(&spoofed(3, 9000), t0);
    let mut out = t.abandon_all();
    out.sort_by_key(|f| f.source);
    let got: Vec<(IpAddr, FailReason, usize)> =
        out.iter().map(|f| (f.source, f.reason, f.stage)).collect();
    assert_eq!(
        got,
        vec![
            (spoofed(1, 0).source, FailReason::Reloaded, 2),
            (spoofed(2, 0).source, FailReason::Reloaded, 1),
            (spoofed(3, 0).source, FailReason::WrongOrder, 1),
        ]
    );
    assert_eq!(t.tracked(), 0);
    assert_eq!(t.drain_reports().count(), 0);
}
