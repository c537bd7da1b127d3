//! Fuzz target: the playbook loader (bounded YAML, tasks, blocks, keywords, module arguments) never
//! panics on any file content. The loader reads files, so each input is written to a private
//! temporary directory first.
//! Run: `bash fuzz/run playbook` (see fuzz/README.md).

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use knockplay::playbook::parse::load_playbook;
use libfuzzer_sys::fuzz_target;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("knockplay-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch().join("site.yml");
    if std::fs::write(&path, data).is_ok() {
        let _ = load_playbook(&path);
    }
});
