//! Text from targets made safe for the operator's terminal (and the log files read on one): control
//! characters are shown escaped, so output from a host can neither move the cursor, clear the
//! screen, rewrite a line (`\r`, `\x08`), nor start a line of its own that looks like knockplay's.
//!
//! Three forms, by where the text goes: [`line`] for a piece of one line (host names, loop item
//! labels, task names, notes), [`text`] for text shown over several lines (diffs), [`json`] for
//! JSON text (results, the `--json` report), which must stay valid JSON.

use std::borrow::Cow;

/// Every control character escaped, newline and tab included: the text stays on its line.
pub fn line(s: &str) -> Cow<'_, str> {
    rust_escapes(s, |_| false)
}

/// Control characters escaped except newline and tab (multi-line output).
pub fn text(s: &str) -> Cow<'_, str> {
    rust_escapes(s, |c| c == '\n' || c == '\t')
}

/// JSON text with DEL and the C1 controls as `\u00XX` escapes. serde_json already escapes C0
/// controls (ESC, CR, ...) but passes DEL and C1 (`\u{9b}` is CSI on some terminals) through raw;
/// outside strings JSON has no control characters, so the result is the same JSON value.
pub fn json(s: &str) -> Cow<'_, str> {
    let raw_in_json = |c: char| c.is_control() && u32::from(c) >= 0x7f;
    replace(s, raw_in_json, |c, out| {
        out.push_str(&format!("\\u{:04x}", u32::from(c)))
    })
}

/// `s` with its control characters (C0, DEL, C1) written the way Rust writes them (`\r`, `\n`,
/// `\u{1b}`), except those `keep` allows.
fn rust_escapes(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    replace(
        s,
        |c| c.is_control() && !keep(c),
        |c, out| out.extend(c.escape_debug()),
    )
}

/// `s` with each character `unsafe_char` picks written by `write` instead; borrowed when there
/// is none (the common case costs no copy).
fn replace(
    s: &str,
    unsafe_char: impl Fn(char) -> bool,
    write: impl Fn(char, &mut String),
) -> Cow<'_, str> {
    if !s.chars().any(&unsafe_char) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if unsafe_char(c) {
            write(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_by_context() {
        // (input, line, text)
        let cases = [
            ("plain text", "plain text", "plain text"),
            ("\x1b[2J", "\\u{1b}[2J", "\\u{1b}[2J"),
            ("a\rb", "a\\rb", "a\\rb"),
            ("a\x08b\x07", "a\\u{8}b\\u{7}", "a\\u{8}b\\u{7}"),
            ("two\nlines", "two\\nlines", "two\nlines"),
            ("tab\there", "tab\\there", "tab\there"),
            ("del\x7f", "del\\u{7f}", "del\\u{7f}"),
            ("csi\u{9b}2J", "csi\\u{9b}2J", "csi\\u{9b}2J"),
            ("nul\0", "nul\\0", "nul\\0"),
            // Not controls: kept as they are.
            ("héllo ✓ \\x1b", "héllo ✓ \\x1b", "héllo ✓ \\x1b"),
        ];
        for (input, want_line, want_text) in cases {
            assert_eq!(line(input), want_line, "{input:?}");
            assert_eq!(text(input), want_text, "{input:?}");
            for out in [line(input), text(input)] {
                assert!(!out.contains(['\x1b', '\r', '\x08', '\u{9b}']), "{out:?}");
            }
        }
        assert!(matches!(line("clean"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_the_same_json() {
        let v = serde_json::json!({"out": "\x1b[2J\r\u{9b}\x7f ok\n"});
        let raw = v.to_string();
        let safe = json(&raw);
        assert!(!safe.chars().any(char::is_control), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, v);
        assert!(matches!(json("{\"a\":1}"), Cow::Borrowed(_)));
    }
}
