//! Fuzz target: SPA packets off the wire. `open` never panics and refuses anything not sealed with
//! the key; the plaintext parser (what a key holder could send) never panics, and what it accepts
//! seals and opens back to the same message.
//! Run: `bash fuzz/run spa` (see fuzz/README.md).

#![no_main]

use knockplay::knock::spa::{self, FleetKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = FleetKey::from_bytes([7; 32]);
    // Random bytes never authenticate.
    assert!(spa::open(&[key.clone()], "boot", data).is_err());
    if let Some(m) = spa::decode_plaintext(data) {
        assert!(m.fingerprints.len() <= spa::MAX_FINGERPRINTS);
        let sealed = spa::seal(&key, &m, [1; 24]).expect("a decoded message seals");
        assert_eq!(spa::open(&[key], &m.door, &sealed), Ok(m));
    }
});
