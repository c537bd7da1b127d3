//! Fuzz target: the wire parser never panics, and what it accepts is self-consistent.
//! Run: `bash fuzz/run wire` (see fuzz/README.md).

#![no_main]

use knockplay::knock::wire::{parse_ethernet, parse_ip, Knock};
use knockplay::knock::Proto;
use libfuzzer_sys::fuzz_target;

fn check(k: &Knock) {
    assert_eq!(k.source.is_ipv4(), k.destination.is_ipv4());
    if k.proto == Proto::Udp {
        assert_eq!(k.tcp_flags, 0);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(k) = parse_ethernet(data) {
        check(&k);
    }
    if let Ok(k) = parse_ip(data) {
        check(&k);
    }
});
