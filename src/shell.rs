//! POSIX shell text: quoting (everything sent to a target passes through here), word splitting
//! like Python's `shlex.split`, and base64 here-document bodies for scripts that carry data.

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

/// Which flavour of Python's `shlex.split` [`split_words`] follows. The callers differ on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordRules {
    /// A command line (free-form `command`, `script`): `shlex.split(s)`. `#` is an ordinary
    /// character and a backslash-newline joins lines, as in `sh`.
    CommandLine,
    /// One line of an INI inventory: `shlex.split(line, comments=True)`. `#` ends the line, even
    /// inside a word (`x=a#b` is `x=a`); errors use Python's words ("no closing quotation").
    InventoryLine,
}

/// What was left open at the end of the input.
#[derive(Debug, Clone, Copy)]
enum Unfinished {
    SingleQuote,
    DoubleQuote,
    Backslash,
}

impl WordRules {
    fn comments(self) -> bool {
        self == WordRules::InventoryLine
    }

    fn joins_lines(self) -> bool {
        self == WordRules::CommandLine
    }

    fn error(self, what: Unfinished, input: &str) -> String {
        match (self, what) {
            (WordRules::CommandLine, Unfinished::SingleQuote) => {
                format!("unterminated single quote in: {input}")
            }
            (WordRules::CommandLine, Unfinished::DoubleQuote) => {
                format!("unterminated double quote in: {input}")
            }
            (WordRules::CommandLine, Unfinished::Backslash) => {
                format!("trailing backslash in: {input}")
            }
            (WordRules::InventoryLine, Unfinished::Backslash) => {
                format!("no escaped character in: {input}")
            }
            (WordRules::InventoryLine, _) => format!("no closing quotation in: {input}"),
        }
    }
}

/// Splits `s` into words like POSIX `sh` does, without expanding anything: quotes group and are
/// removed, a backslash escapes the next character (inside double quotes only `"`, `\`, `$` and
/// `` ` ``). An unclosed quote or a trailing backslash is an error.
pub fn split_words(s: &str, rules: WordRules) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' if rules.comments() => break,
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
                        Some(x) => cur.push(x),
                        None => return Err(rules.error(Unfinished::SingleQuote, s)),
                    }
                }
            }
            '"' => {
                in_word = true;
                double_quoted(&mut chars, &mut cur, rules.joins_lines())
                    .map_err(|what| rules.error(what, s))?;
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') if rules.joins_lines() => {}
                    Some(x) => cur.push(x),
                    None => return Err(rules.error(Unfinished::Backslash, s)),
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

/// Reads a double-quoted part up to its closing quote into `cur`.
fn double_quoted(
    chars: &mut std::str::Chars<'_>,
    cur: &mut String,
    joins_lines: bool,
) -> Result<(), Unfinished> {
    loop {
        match chars.next() {
            Some('"') => return Ok(()),
            Some('\\') => match chars.next() {
                Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                Some('\n') if joins_lines => {}
                Some(x) => {
                    cur.push('\\');
                    cur.push(x);
                }
                None => return Err(Unfinished::DoubleQuote),
            },
            Some(x) => cur.push(x),
            None => return Err(Unfinished::DoubleQuote),
        }
    }
}

/// `data` as base64 in 76-column lines, each ending in a newline: the body of a here-document
/// that a script pipes into `base64 -d`.
pub fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let enc = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(enc.len() + enc.len() / 76 + 1);
    for chunk in enc.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

/// `data` as a single-quoted `printf` format that prints exactly those bytes: printable ASCII
/// as itself, everything else (and `\\`, `%`, `'`, a leading `-`) as a three-digit octal escape, which POSIX
/// `printf` understands (dash, bash and busybox alike, NUL included). Writing small content with
/// the shell's builtin `printf` costs the target no process at all.
pub fn printf_literal(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() + 2);
    out.push('\'');
    for (i, &b) in data.iter().enumerate() {
        // A leading '-' would be read as an option.
        let plain = (0x20..=0x7e).contains(&b) && !matches!(b, b'\\' | b'%' | b'\'');
        if plain && !(i == 0 && b == b'-') {
            out.push(b as char);
        } else {
            out.extend(['\\', octal(b >> 6), octal(b >> 3), octal(b)]);
        }
    }
    out.push('\'');
    out
}

/// The octal digit of the low three bits of `b`.
fn octal(b: u8) -> char {
    char::from(b'0' + (b & 7))
}

/// Shell-style pattern match of a whole string: `*` any run of characters, `?` one (file
/// names for fileglob, `Host` patterns of ssh config).
pub fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn splits_command_lines_like_shlex() {
        let cases: &[(&str, &[&str])] = &[
            ("echo hello", &["echo", "hello"]),
            ("  a   b  ", &["a", "b"]),
            ("echo 'a b' \"c d\"", &["echo", "a b", "c d"]),
            ("echo a\\ b", &["echo", "a b"]),
            (
                "echo \"it's\" 'say \"hi\"'",
                &["echo", "it's", "say \"hi\""],
            ),
            ("echo \"a\\\"b\" \"\\n\"", &["echo", "a\"b", "\\n"]),
            ("x '' y", &["x", "", "y"]),
            ("a'b'c", &["abc"]),
            (
                "echo # not a comment",
                &["echo", "#", "not", "a", "comment"],
            ),
            // A backslash-newline joins lines, outside and inside double quotes.
            ("echo a\\\nb \"c\\\nd\"", &["echo", "ab", "cd"]),
        ];
        for (input, want) in cases {
            assert_eq!(
                split_words(input, WordRules::CommandLine).unwrap(),
                *want,
                "{input}"
            );
        }
        assert!(split_words("echo 'oops", WordRules::CommandLine).is_err());
        assert!(split_words("echo \"oops", WordRules::CommandLine).is_err());
    }

    #[test]
    fn splits_inventory_lines_like_shlex_with_comments() {
        let cases: &[(&str, &[&str])] = &[
            ("web1 a=1 b=2", &["web1", "a=1", "b=2"]),
            ("web1 x='a b' y=\"c d\"", &["web1", "x=a b", "y=c d"]),
            ("web1 # comment", &["web1"]),
            ("web1 x=a#b", &["web1", "x=a"]),
            ("web1 x='a#b'", &["web1", "x=a#b"]),
            ("h x=\"say \\\"hi\\\"\"", &["h", "x=say \"hi\""]),
            ("h x=a\\ b", &["h", "x=a b"]),
            ("h x=\"['a', 'b']\"", &["h", "x=['a', 'b']"]),
            // No line joining: a backslash-newline is kept (inventory lines hold no newline).
            ("a\\\nb \"c\\\nd\"", &["a\nb", "c\\\nd"]),
        ];
        for (input, want) in cases {
            assert_eq!(
                split_words(input, WordRules::InventoryLine).unwrap(),
                *want,
                "{input}"
            );
        }
        assert!(split_words("h x='open", WordRules::InventoryLine).is_err());
    }

    #[test]
    fn each_caller_keeps_its_error_words() {
        let cases: &[(&str, WordRules, &str)] = &[
            (
                "a 'b",
                WordRules::CommandLine,
                "unterminated single quote in: a 'b",
            ),
            (
                "a \"b",
                WordRules::CommandLine,
                "unterminated double quote in: a \"b",
            ),
            (
                "a \"b\\",
                WordRules::CommandLine,
                "unterminated double quote in: a \"b\\",
            ),
            (
                "a b\\",
                WordRules::CommandLine,
                "trailing backslash in: a b\\",
            ),
            (
                "a 'b",
                WordRules::InventoryLine,
                "no closing quotation in: a 'b",
            ),
            (
                "a \"b",
                WordRules::InventoryLine,
                "no closing quotation in: a \"b",
            ),
            (
                "a b\\",
                WordRules::InventoryLine,
                "no escaped character in: a b\\",
            ),
        ];
        for (input, rules, want) in cases {
            assert_eq!(
                split_words(input, *rules).unwrap_err(),
                *want,
                "{input} {rules:?}"
            );
        }
        // A comment ends the line before the open quote is seen.
        assert_eq!(
            split_words("a # 'b", WordRules::InventoryLine).unwrap(),
            ["a"]
        );
    }

    #[test]
    fn printf_literal_prints_every_byte_back_through_the_shell() {
        let all: Vec<u8> = (0..=255u8).chain(*b"50%\\n'\\\\0 \\1012").collect();
        let mut dash_first = all.clone();
        dash_first.insert(0, b'-');
        for (shell, all) in ["/bin/sh", "dash", "bash"]
            .into_iter()
            .flat_map(|s| [(s, &all), (s, &dash_first)])
        {
            let Ok(out) = std::process::Command::new(shell)
                .arg("-c")
                .arg(format!("printf {}", printf_literal(all)))
                .output()
            else {
                continue;
            };
            assert!(out.status.success(), "{shell}");
            assert_eq!(&out.stdout, all, "{shell}");
        }
    }

    #[test]
    fn base64_lines_wrap_at_76_columns() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"hi", "aGk=\n"),
            (&[0u8; 57], &format!("{}\n", "A".repeat(76))),
            (&[0u8; 58], &format!("{}\nAA==\n", "A".repeat(76))),
        ];
        for (data, want) in cases {
            assert_eq!(base64_lines(data), *want, "{} bytes", data.len());
        }
    }
}
