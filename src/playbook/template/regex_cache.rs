//! Compiled regular expressions for the regex filters and tests, cached by pattern and flags.

use minijinja::{Error, ErrorKind};
use regex::{Regex, RegexBuilder};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

type Key = (String, bool, bool);

/// Past this many patterns the cache starts over (patterns normally come from playbooks).
const MAX_ENTRIES: usize = 2048;

fn cache() -> &'static Mutex<HashMap<Key, Regex>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Regex>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Compile a Python-syntax pattern (`re` module) with the `ignorecase`/`multiline` flags.
pub fn get(pattern: &str, ignore_case: bool, multi_line: bool) -> Result<Regex, Error> {
    let key = (pattern.to_string(), ignore_case, multi_line);
    if let Ok(c) = cache().lock() {
        if let Some(re) = c.get(&key) {
            return Ok(re.clone());
        }
    }
    // Python's `\Z` is the regex crate's `\z`.
    let translated = pattern.replace(r"\Z", r"\z");
    let re = RegexBuilder::new(&translated)
        .case_insensitive(ignore_case)
        .multi_line(multi_line)
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("invalid or unsupported regular expression {pattern:?}: {e}"),
            )
        })?;
    if let Ok(mut c) = cache().lock() {
        if c.len() >= MAX_ENTRIES {
            c.clear();
        }
        c.insert(key, re.clone());
    }
    Ok(re)
}
