//! Fuzz target: the inventory parsers (INI and YAML) never panic on any text.
//! Run: `bash fuzz/run inventory` (see fuzz/README.md).

#![no_main]

use knockplay::inventory::Inventory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Inventory::new().add_ini_str(text, "fuzz.ini");
    let _ = Inventory::new().add_yaml_str(text, "fuzz.yml");
});
