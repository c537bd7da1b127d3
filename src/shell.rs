//! POSIX shell words: quoting (everything sent to a target passes through here) and splitting
//! a line into words the way Python's `shlex.split` does.

/// Quote `s` so that `sh` reads it back as exactly one word with the same bytes.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quote every word and join with spaces.
pub fn join<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    words
        .into_iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What `#` means to [`split_words`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comments {
    /// An ordinary character (`shlex.split(s)`: command lines).
    Ordinary,
    /// Outside quotes it ends the line (`shlex.split(s, comments=True)`: INI inventory lines).
    EndTheLine,
}

/// Why a line cannot be split into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("unterminated single quote")]
    UnclosedSingleQuote,
    #[error("unterminated double quote")]
    UnclosedDoubleQuote,
    #[error("trailing backslash")]
    TrailingBackslash,
}

/// Split `s` into words like Python's `shlex.split` in POSIX mode: whitespace separates words,
/// `'…'` keeps everything, `"…"` keeps everything but `\"`, `\\`, `\$` and `` \` `` escapes, a bare
/// backslash escapes the next character, and backslash-newline joins lines.
pub fn split_words(s: &str, comments: Comments) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' if comments == Comments::EndTheLine => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(SplitError::UnclosedSingleQuote),
                    }
                }
            }
            '"' => {
                in_word = true;
                double_quoted(&mut chars, &mut cur)?;
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') => {}
                    Some(n) => cur.push(n),
                    None => return Err(SplitError::TrailingBackslash),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// The rest of a `"…"` group (after the opening quote) onto `cur`.
fn double_quoted(chars: &mut std::str::Chars, cur: &mut String) -> Result<(), SplitError> {
    loop {
        match chars.next() {
            Some('"') => return Ok(()),
            Some('\\') => match chars.next() {
                Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                Some('\n') => {}
                Some(n) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => return Err(SplitError::UnclosedDoubleQuote),
            },
            Some(c) => cur.push(c),
            None => return Err(SplitError::UnclosedDoubleQuote),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_python_shlex() {
        use Comments::{EndTheLine, Ordinary};
        let cases: &[(&str, Comments, &[&str])] = &[
            (r"a  b\tc", Ordinary, &["a", "btc"]),
            ("x='a b' y=\"c d\"", Ordinary, &["x=a b", "y=c d"]),
            ("\"a\\\"b\\$c\\n\"", Ordinary, &["a\"b$c\\n"]),
            ("'it''s' ''", Ordinary, &["its", ""]),
            ("a\\\nb \"c\\\nd\"", Ordinary, &["ab", "cd"]),
            (
                "echo #not a comment",
                Ordinary,
                &["echo", "#not", "a", "comment"],
            ),
            ("web1 # comment", EndTheLine, &["web1"]),
            ("web1 x=a#b", EndTheLine, &["web1", "x=a"]),
            ("web1 x='a#b' \"#\"", EndTheLine, &["web1", "x=a#b", "#"]),
        ];
        for (input, comments, want) in cases {
            assert_eq!(
                split_words(input, *comments),
                Ok(want.iter().map(|w| w.to_string()).collect()),
                "{input:?}"
            );
        }
        for (input, want) in [
            ("a 'b", SplitError::UnclosedSingleQuote),
            ("a \"b", SplitError::UnclosedDoubleQuote),
            ("a \"b\\", SplitError::UnclosedDoubleQuote),
            ("a b\\", SplitError::TrailingBackslash),
        ] {
            assert_eq!(
                split_words(input, Comments::Ordinary),
                Err(want),
                "{input:?}"
            );
        }
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("abc/def-1.2"), "abc/def-1.2");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
    }

    #[test]
    fn round_trips_through_sh() {
        for s in ["plain", "a b", "it's", "\"q\"", "$HOME `x` \\ \n !", ""] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), s);
        }
    }
}
