//! The command shell's protocol as a pure framer (no I/O): the line sent to the shell for one
//! command, and that command's result cut out of the shell's stdout and stderr by its end marks.
//!
//! Each command is sent as one line `( eval '<command>' ) </dev/null; ...` followed by two end marks
//! carrying the session's random token: `\n<token> <rc>\n` on stdout and `\n<token>\n` on stderr.
//! The subshell keeps `exit`, `cd`, `exec` and variables of one command from touching the next;
//! `</dev/null` keeps the command from reading the lines meant for the shell; a syntax error stays
//! inside `eval`. A command's stdin travels as base64 in a here-document piped through `base64 -d`.
//!
//! A [`Reply`] is fed the bytes as they arrive and asked for the result after each read pass; an end
//! mark counts only at the very end of what has arrived by then. Where a mark is looked for is
//! [`Reply::result`]'s business alone.

use super::{ExecOutput, Stream};

/// The first command of a new shell: proves it runs our lines and tells whether `base64` is there
/// to decode stdin.
const HELLO: &str = "command -v base64 >/dev/null || echo no-base64";
/// What [`HELLO`] prints when `base64` is missing.
const NO_BASE64: &[u8] = b"no-base64\n";

/// Builds the lines for one command shell and starts reading their replies; owns the shell's token.
#[derive(Debug, Clone)]
pub struct Framer {
    token: String,
}

impl Framer {
    /// `token` must not occur in command output by accident: a long random string.
    pub fn new(token: String) -> Framer {
        Framer { token }
    }

    /// The line the command shell runs for `cmd`; `stdin` is decoded by `base64 -d` from a
    /// here-document (binary-safe; the command sees exactly those bytes, then end of file).
    pub fn line(&self, cmd: &str, stdin: Option<&[u8]>) -> String {
        let token = &self.token;
        let marks = format!(
            "__kp_rc=$?; printf '\\n%s %s\\n' {token} \"$__kp_rc\"; printf '\\n%s\\n' {token} >&2\n"
        );
        let cmd = crate::shell::quote(cmd);
        match stdin {
            None => format!("( eval {cmd} ) </dev/null; {marks}"),
            Some(data) => format!(
                "base64 -d <<'{token}_IN' | ( eval {cmd} ); {marks}{}{token}_IN\n",
                crate::shell::base64_lines(data)
            ),
        }
    }

    /// The line of the first command a new shell runs (see [`hello_answer`]).
    pub fn hello_line(&self) -> String {
        self.line(HELLO, None)
    }

    /// An empty reply, to be fed the output of the line just sent.
    pub fn reply(&self) -> Reply<'_> {
        Reply {
            token: &self.token,
            out: ExecOutput::default(),
            rc: None,
            stderr_ended: false,
        }
    }
}

/// What the hello command's result says: `Some(true)` the shell works and can decode stdin,
/// `Some(false)` it works without `base64`, `None` it did not answer as expected.
pub fn hello_answer(out: &ExecOutput) -> Option<bool> {
    if out.rc != 0 {
        return None;
    }
    if out.stdout.is_empty() {
        Some(true)
    } else if out.stdout == NO_BASE64 {
        Some(false)
    } else {
        None
    }
}

/// The output of one command as it arrives, until both end marks are in.
#[derive(Debug)]
pub struct Reply<'t> {
    token: &'t str,
    out: ExecOutput,
    /// The stdout end mark was found (and cut off) with this exit status.
    rc: Option<i32>,
    /// The stderr end mark was found (and cut off).
    stderr_ended: bool,
}

impl Reply<'_> {
    /// Appends a chunk of the shell's stdout or stderr.
    pub fn feed(&mut self, stream: Stream, bytes: &[u8]) {
        self.out.append(stream, bytes);
    }

    /// Looks for the end marks at the end of what has come so far; once both are in, the command's
    /// result (marks cut off). Output that arrives on a stream after its mark is kept and the
    /// mark not looked for again. After it returned a result the reply is spent.
    pub fn result(&mut self) -> Option<ExecOutput> {
        if self.rc.is_none() {
            self.rc = take_stdout_mark(&mut self.out.stdout, self.token);
        }
        if !self.stderr_ended {
            self.stderr_ended = take_stderr_mark(&mut self.out.stderr, self.token);
        }
        let rc = self.rc.filter(|_| self.stderr_ended)?;
        Some(ExecOutput {
            rc,
            ..std::mem::take(&mut self.out)
        })
    }

    /// The output so far when the shell itself ended before both marks came (the command killed it,
    /// or the target went down); `rc` is the shell's exit status or signal.
    pub fn cut_short(self, rc: i32) -> ExecOutput {
        ExecOutput { rc, ..self.out }
    }
}

/// The rc in `buf` if it ends with the stdout end mark `\n<token> <rc>\n`; `buf` is cut before it.
fn take_stdout_mark(buf: &mut Vec<u8>, token: &str) -> Option<i32> {
    let body = buf.strip_suffix(b"\n")?;
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 3 {
        return None;
    }
    let (rest, rc) = body.split_at(body.len() - digits);
    let mark = format!("\n{token} ");
    let before = rest.strip_suffix(mark.as_bytes())?;
    let rc = std::str::from_utf8(rc).ok()?.parse().ok()?;
    let keep = before.len();
    buf.truncate(keep);
    Some(rc)
}

/// Whether `buf` ends with the stderr end mark `\n<token>\n`; `buf` is cut before it.
fn take_stderr_mark(buf: &mut Vec<u8>, token: &str) -> bool {
    let mark = format!("\n{token}\n");
    if buf.ends_with(mark.as_bytes()) {
        buf.truncate(buf.len() - mark.len());
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: Stream = Stream::Stdout;
    const E: Stream = Stream::Stderr;

    /// One read pass: the chunks that arrived before the framer is asked for the result.
    type Pass = &'static [(Stream, &'static [u8])];

    struct Case {
        name: &'static str,
        passes: &'static [Pass],
        /// The pass after which the result is complete, and that result (rc, stdout, stderr).
        want: Option<(usize, i32, &'static [u8], &'static [u8])>,
    }

    const CASES: &[Case] = &[
        Case {
            name: "output on both streams",
            passes: &[&[(O, b"hello\n\nKPt 0\n"), (E, b"warn\n\nKPt\n")]],
            want: Some((0, 0, b"hello\n", b"warn\n")),
        },
        Case {
            name: "empty output",
            passes: &[&[(O, b"\nKPt 0\n"), (E, b"\nKPt\n")]],
            want: Some((0, 0, b"", b"")),
        },
        Case {
            name: "nonzero rc",
            passes: &[&[(O, b"x\nKPt 3\n"), (E, b"boom\n\nKPt\n")]],
            want: Some((0, 3, b"x", b"boom\n")),
        },
        Case {
            name: "rc of a signal, as the shell reports it",
            passes: &[&[(O, b"\nKPt 143\n"), (E, b"\nKPt\n")]],
            want: Some((0, 143, b"", b"")),
        },
        Case {
            name: "stdout mark split across chunks of one pass",
            passes: &[&[(O, b"data\nKP"), (O, b"t 1"), (O, b"\n"), (E, b"\nKPt\n")]],
            want: Some((0, 1, b"data", b"")),
        },
        Case {
            name: "stdout mark split across passes",
            passes: &[
                &[(O, b"data\nKPt")],
                &[(O, b" 7\n"), (E, b"\nKP")],
                &[(E, b"t\n")],
            ],
            want: Some((2, 7, b"data", b"")),
        },
        Case {
            name: "stderr mark first, stdout mark a pass later",
            passes: &[&[(E, b"e\n\nKPt\n")], &[(O, b"o\n\nKPt 0\n")]],
            want: Some((1, 0, b"o\n", b"e\n")),
        },
        Case {
            name: "stdout mark first, stderr mark a pass later",
            passes: &[&[(O, b"o\n\nKPt 2\n")], &[], &[(E, b"\nKPt\n")]],
            want: Some((2, 2, b"o\n", b"")),
        },
        Case {
            name: "binary output",
            passes: &[&[
                (O, b"\x00\xff\n\x1b[0m\r"),
                (O, b"\nKPt 0\n"),
                (E, b"\xfe\nKPt\n"),
            ]],
            want: Some((0, 0, b"\x00\xff\n\x1b[0m\r", b"\xfe")),
        },
        Case {
            name: "a mark with another token is output",
            passes: &[&[(O, b"\nKPx 0\n\nKPt 0\n"), (E, b"\nKPx\n\nKPt\n")]],
            want: Some((0, 0, b"\nKPx 0\n", b"\nKPx\n")),
        },
        Case {
            name: "only marks with another token: not finished",
            passes: &[&[(O, b"\nKPx 0\n"), (E, b"\nKPx\n")]],
            want: None,
        },
        Case {
            name: "a token that only starts like ours",
            passes: &[&[(O, b"\nKPtt 0\n"), (E, b"\nKPt\n")]],
            want: None,
        },
        Case {
            name: "more than three digits is no rc",
            passes: &[&[(O, b"\nKPt 1000\n"), (E, b"\nKPt\n")]],
            want: None,
        },
        Case {
            name: "no rc is no mark",
            passes: &[&[(O, b"\nKPt \n"), (E, b"\nKPt\n")]],
            want: None,
        },
        Case {
            name: "a mark needs the newline before it",
            passes: &[&[(O, b"KPt 0\n"), (E, b"KPt\n")]],
            want: None,
        },
        Case {
            name: "a mark followed by more output in the same pass is not seen",
            passes: &[&[(O, b"\nKPt 0\nlate\n"), (E, b"\nKPt\n")]],
            want: None,
        },
        Case {
            name: "stdout after its mark in a later pass is kept",
            passes: &[&[(O, b"a\nKPt 0\n")], &[(O, b"bg\n"), (E, b"\nKPt\n")]],
            want: Some((1, 0, b"abg\n", b"")),
        },
        Case {
            name: "empty chunks change nothing",
            passes: &[
                &[(O, b""), (E, b"")],
                &[(O, b"\nKPt 0\n"), (E, b""), (E, b"\nKPt\n")],
            ],
            want: Some((1, 0, b"", b"")),
        },
    ];

    #[test]
    fn replies_are_cut_out_of_the_byte_stream_by_their_end_marks() {
        let framer = Framer::new("KPt".into());
        for case in CASES {
            let mut reply = framer.reply();
            let mut got = None;
            for (i, pass) in case.passes.iter().enumerate() {
                for (stream, bytes) in pass.iter() {
                    reply.feed(*stream, bytes);
                }
                if let Some(out) = reply.result() {
                    got = Some((i, out.rc, out.stdout, out.stderr));
                    break;
                }
            }
            let want = case
                .want
                .map(|(i, rc, out, err)| (i, rc, out.to_vec(), err.to_vec()));
            assert_eq!(got, want, "{}", case.name);
        }
    }

    #[test]
    fn a_shell_that_ends_early_gives_what_came_and_its_status() {
        let framer = Framer::new("KPt".into());
        let mut reply = framer.reply();
        reply.feed(O, b"partial");
        reply.feed(E, b"err");
        assert_eq!(reply.result(), None);
        let out = reply.cut_short(137);
        assert_eq!(
            (out.rc, &out.stdout[..], &out.stderr[..]),
            (137, &b"partial"[..], &b"err"[..])
        );
        // The stdout mark came but the stderr one did not: the mark is still cut off.
        let mut reply = framer.reply();
        reply.feed(O, b"done\nKPt 0\n");
        assert_eq!(reply.result(), None);
        let out = reply.cut_short(129);
        assert_eq!((out.rc, &out.stdout[..]), (129, &b"done"[..]));
    }

    #[test]
    fn end_marks_are_found_only_at_the_end_and_cut_off() {
        let t = "KPabc";
        let mut out = b"data\nKPabc 3\n".to_vec();
        assert_eq!(take_stdout_mark(&mut out, t), Some(3));
        assert_eq!(out, b"data");
        // Output without a final newline keeps its last byte; empty output stays empty.
        let mut out = b"no newline\nKPabc 0\n".to_vec();
        assert_eq!(take_stdout_mark(&mut out, t), Some(0));
        assert_eq!(out, b"no newline");
        let mut out = b"\nKPabc 255\n".to_vec();
        assert_eq!(take_stdout_mark(&mut out, t), Some(255));
        assert!(out.is_empty());
        // Not (yet) complete, another token, or the mark in the middle: no end.
        for partial in [
            &b"data\nKPabc 3"[..],
            b"data\nKPabc \n",
            b"data\nKPxyz 3\n",
            b"\nKPabc 3\nmore\n",
            b"KPabc 3\n",
        ] {
            let mut out = partial.to_vec();
            assert_eq!(take_stdout_mark(&mut out, t), None, "{partial:?}");
            assert_eq!(out, partial);
        }
        let mut err = b"warn\n\nKPabc\n".to_vec();
        assert!(take_stderr_mark(&mut err, t));
        assert_eq!(err, b"warn\n");
        let mut err = b"KPabc\n".to_vec();
        assert!(!take_stderr_mark(&mut err, t));
    }

    #[test]
    fn a_shell_line_quotes_the_command_as_one_word() {
        let line = Framer::new("KPt".into()).line("echo 'a b'; exit 3", None);
        assert_eq!(
            line,
            "( eval 'echo '\\''a b'\\''; exit 3' ) </dev/null; __kp_rc=$?; printf '\\n%s %s\\n' KPt \"$__kp_rc\"; \
             printf '\\n%s\\n' KPt >&2\n"
        );
    }

    #[test]
    fn stdin_travels_as_base64_in_a_here_document_named_after_the_token() {
        let framer = Framer::new("KPt".into());
        let line = framer.line("cat > f", Some(b"\x00\xffhi\n"));
        assert_eq!(
            line,
            "base64 -d <<'KPt_IN' | ( eval 'cat > f' ); __kp_rc=$?; printf '\\n%s %s\\n' KPt \"$__kp_rc\"; \
             printf '\\n%s\\n' KPt >&2\nAP9oaQo=\nKPt_IN\n"
        );
        let line = framer.line("true", Some(b""));
        assert!(line.ends_with(">&2\nKPt_IN\n"), "{line}");
        // Long input is wrapped, so no line of the document is too long for the shell.
        let line = framer.line("true", Some(&[7u8; 200]));
        assert!(line.lines().skip(1).all(|l| l.len() <= 76), "{line}");
        assert_eq!(line.lines().count(), 1 + 4 + 1, "{line}");
    }

    #[test]
    fn the_hello_answer_says_whether_stdin_can_be_decoded() {
        let framer = Framer::new("KPt".into());
        assert_eq!(framer.hello_line(), framer.line(HELLO, None));
        let out = |rc: i32, stdout: &[u8]| ExecOutput {
            rc,
            stdout: stdout.to_vec(),
            stderr: Vec::new(),
        };
        for (answer, want) in [
            (out(0, b""), Some(true)),
            (out(0, b"no-base64\n"), Some(false)),
            (out(1, b""), None),
            (out(0, b"no-base64"), None),
            (out(0, b"Welcome to the login banner\n"), None),
            (out(127, b"no-base64\n"), None),
        ] {
            assert_eq!(hello_answer(&answer), want, "{answer:?}");
        }
    }
}
