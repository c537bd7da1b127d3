//! Fuzz target: knock.toml validation never panics on any text.
//! Run: `bash fuzz/run knock_toml` (see fuzz/README.md).

#![no_main]

use std::path::Path;

use knockplay::config::{parse, SystemInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let system = SystemInfo {
        interfaces: vec!["eth0".into(), "lo".into()],
        default_interfaces: vec!["eth0".into()],
    };
    let _ = parse(text, Path::new("knock.toml"), &system);
});
