//! Fuzz target: the repository's own text that knockplay now reads: vault files (decrypted with a
//! fixed password), ssh config files and ssh argument strings, and ansible.cfg. None of them may
//! panic, whatever the bytes.
//! Run: `bash fuzz/run repo_text` (see fuzz/README.md).

#![no_main]

use std::path::Path;

use knockplay::ssh::config::{apply_args, apply_file, HostSettings};
use knockplay::vault::{decrypt, Secret};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = decrypt(&text, &[Secret::new("default", b"pw")]);
    let mut s = HostSettings::default();
    let _ = apply_file(&mut s, &text, "web.internal", None);
    let _ = apply_args(&mut s, &text, None);
    let _ = knockplay::ansible_cfg::parse(&text, Path::new("/repo/ansible.cfg"), None);
});
