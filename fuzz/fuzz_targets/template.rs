//! Fuzz target: template rendering never panics (errors are values) on any template text, with a
//! few variables of every type in scope.
//! Run: `bash fuzz/run template` (see fuzz/README.md).

#![no_main]

use knockplay::playbook::template::Templar;
use knockplay::value::Vars;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let vars: Vars = serde_json::from_value(serde_json::json!({
        "s": "text", "n": 42, "f": 1.5, "b": true, "l": [1, "two", null], "d": {"k": "v"},
        "ansible_facts": {"hostname": "h1"}
    }))
    .unwrap_or_default();
    let t = Templar::new();
    let _ = t.render_str(text, &vars);
    let _ = t.eval_expr(text, &vars);
});
