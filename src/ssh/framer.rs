//! The command shell's protocol as a pure framer (no I/O): the line sent to the shell for one
//! command, and that command's result cut out of the shell's stdout and stderr by its marks.
//!
//! Every command gets a [`Framer`] with a token of its own (random, see `shell_session`). Its line
//! prints a start mark `<token>:\n` on both streams, runs `( eval '<command>' ) </dev/null`, and then
//! prints the end marks `\n<token> <rc>\n` on stdout and `\n<token>\n` on stderr. The subshell keeps
//! `exit`, `cd`, `exec` and variables of one command from touching the next; `</dev/null` keeps the
//! command from reading the lines meant for the shell; a syntax error stays inside `eval`. A
//! command's stdin travels as base64 in a here-document piped through `base64 -d`. An `EXIT` trap in
//! the subshell prints `\n<token>&\n` on stdout when the command started a background job.
//!
//! Marks are found anywhere in what has arrived, split across reads or not. Bytes before a stream's
//! start mark and after its end mark belong to no command (a background job of an earlier command
//! still writing): they are dropped and counted, and a shell that saw any, or whose command left a
//! background job, is not trusted with another command ([`Reply::shell_reusable`]). Output is held
//! up to a cap (stdout and stderr together); past it nothing more is kept and the reply says so.

use super::{ExecOutput, Stream};

/// The first command of a new shell: proves it runs our lines and tells whether `base64` is there
/// to decode stdin.
const HELLO: &str = "command -v base64 >/dev/null || echo no-base64";
/// What [`HELLO`] prints when `base64` is missing.
const NO_BASE64: &[u8] = b"no-base64\n";
/// Longest rc in a stdout end mark (the shell reports 0..=255).
const RC_DIGITS_MAX: usize = 3;

/// Builds the line for one command and starts reading its reply; owns the command's token.
#[derive(Debug, Clone)]
pub struct Framer {
    token: String,
}

impl Framer {
    /// `token` must not occur in command output by accident: a long random string of letters and
    /// digits, new for every command.
    pub fn new(token: String) -> Framer {
        Framer { token }
    }

    /// The line the command shell runs for `cmd`; `stdin` is decoded by `base64 -d` from a
    /// here-document (binary-safe; the command sees exactly those bytes, then end of file).
    pub fn line(&self, cmd: &str, stdin: Option<&[u8]>) -> String {
        let token = &self.token;
        let start = format!("printf '%s:\\n' {token}; printf '%s:\\n' {token} >&2; ");
        let run = format!(
            "( trap '[ -z \"${{!:-}}\" ] || printf \"\\n%s&\\n\" {token}' EXIT; eval {} )",
            crate::shell::quote(cmd)
        );
        let end = format!(
            "__kp_rc=$?; printf '\\n%s %s\\n' {token} \"$__kp_rc\"; printf '\\n%s\\n' {token} >&2\n"
        );
        match stdin {
            None => format!("{start}{run} </dev/null; {end}"),
            Some(data) => format!(
                "{start}base64 -d <<'{token}_IN' | {run}; {end}{}{token}_IN\n",
                crate::shell::base64_lines(data)
            ),
        }
    }

    /// The line of the first command a new shell runs (see [`hello_answer`]).
    pub fn hello_line(&self) -> String {
        self.line(HELLO, None)
    }

    /// An empty reply, to be fed the output of the line just sent; it holds at most `cap` bytes of
    /// output.
    pub fn reply(&self, cap: usize) -> Reply<'_> {
        Reply {
            token: self.token.as_bytes(),
            cap,
            out: ExecOutput::default(),
            stdout: Cut::default(),
            stderr: Cut::default(),
            rc: None,
            left_jobs: false,
            stray: 0,
            too_large: false,
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

/// Where one command's reply stands after the bytes fed so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// An end mark is still missing.
    Pending,
    /// Both end marks are in: the command's result, marks cut off.
    Done(ExecOutput),
    /// The output went past the cap before the end marks came; the rest was not kept.
    TooLarge,
}

/// The output of one command as it arrives, until both end marks are in.
#[derive(Debug)]
pub struct Reply<'t> {
    token: &'t [u8],
    cap: usize,
    out: ExecOutput,
    stdout: Cut,
    stderr: Cut,
    /// The stdout end mark was found with this exit status.
    rc: Option<i32>,
    /// The command started a background job (its `EXIT` trap said so).
    left_jobs: bool,
    /// Bytes that belong to no command: before a start mark or after an end mark.
    stray: usize,
    /// More than `cap` bytes of output came; nothing more is kept.
    too_large: bool,
}

/// How far one stream of a reply has been cut.
#[derive(Debug, Default)]
struct Cut {
    phase: Phase,
    /// Before the start mark: the last bytes seen, which may be the start of the mark.
    window: Vec<u8>,
    /// While running: where in the stream's output the next look for the end mark starts; the
    /// bytes before it are output for certain.
    scan_from: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[default]
    BeforeStart,
    Running,
    Ended,
}

/// What a look for an end mark found.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// No complete mark: look again from here once more bytes came.
    NotYet(usize),
    /// The end mark starts at `at` and is `len` bytes long; `rc` is the stdout mark's status.
    End { at: usize, len: usize, rc: i32 },
    /// The background-job flag (stdout only) starts at `at`, `len` bytes long.
    Jobs { at: usize, len: usize },
}

impl Reply<'_> {
    /// Appends a chunk of the shell's stdout or stderr.
    pub fn feed(&mut self, stream: Stream, bytes: &[u8]) {
        let (cut, buf) = match stream {
            Stream::Stdout => (&mut self.stdout, &mut self.out.stdout),
            Stream::Stderr => (&mut self.stderr, &mut self.out.stderr),
        };
        let mut bytes = bytes;
        let rest;
        if cut.phase == Phase::BeforeStart {
            match find_start(cut, self.token, bytes) {
                StartSearch::Found { stray, after } => {
                    self.stray += stray;
                    rest = after;
                    bytes = &rest;
                    cut.phase = Phase::Running;
                }
                StartSearch::NotYet { stray } => {
                    self.stray += stray;
                    return;
                }
            }
        }
        if cut.phase == Phase::Ended || self.too_large {
            self.stray += bytes.len();
            return;
        }
        buf.extend_from_slice(bytes);
        loop {
            match scan_end(buf, cut.scan_from, self.token, stream) {
                Scan::NotYet(from) => {
                    cut.scan_from = from;
                    break;
                }
                Scan::Jobs { at, len } => {
                    self.left_jobs = true;
                    buf.drain(at..at + len);
                    cut.scan_from = at;
                }
                Scan::End { at, len, rc } => {
                    self.stray += buf.len() - (at + len);
                    buf.truncate(at);
                    cut.phase = Phase::Ended;
                    cut.scan_from = at;
                    if stream == Stream::Stdout {
                        self.rc = Some(rc);
                    }
                    break;
                }
            }
        }
        if self.stdout.scan_from + self.stderr.scan_from > self.cap {
            self.too_large = true;
            // Nothing past the cap is kept: drop what the last chunk brought beyond it.
            let keep_out = self.stdout.scan_from.min(self.cap);
            let keep_err = self.stderr.scan_from.min(self.cap - keep_out);
            self.out.stdout.truncate(keep_out);
            self.out.stderr.truncate(keep_err);
        }
    }

    /// Whether the command's result is complete, too large, or still coming. After `Done` the
    /// reply is spent (only [`shell_reusable`](Self::shell_reusable) still answers).
    pub fn result(&mut self) -> Progress {
        if self.too_large {
            return Progress::TooLarge;
        }
        if self.stdout.phase != Phase::Ended || self.stderr.phase != Phase::Ended {
            return Progress::Pending;
        }
        let rc = self.rc.unwrap_or(-1);
        Progress::Done(ExecOutput {
            rc,
            ..std::mem::take(&mut self.out)
        })
    }

    /// Whether the shell may run another command: nothing came that belongs to no command, and the
    /// command left no background job that could write into the next command's output.
    pub fn shell_reusable(&self) -> bool {
        self.stray == 0 && !self.left_jobs && !self.too_large
    }

    /// Bytes seen that belong to no command (for the log).
    pub fn stray_bytes(&self) -> usize {
        self.stray
    }

    /// The output so far when the shell itself ended before both marks came (the command killed it,
    /// or the target went down); `rc` is the shell's exit status or signal.
    pub fn cut_short(&mut self, rc: i32) -> ExecOutput {
        ExecOutput {
            rc,
            ..std::mem::take(&mut self.out)
        }
    }

    /// The cap this reply was made with.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

/// What a look for a start mark in the bytes before it found.
enum StartSearch {
    /// The mark is in: `stray` bytes before it were dropped, `after` came after it.
    Found { stray: usize, after: Vec<u8> },
    /// Not yet; `stray` bytes were dropped for good (they cannot be part of the mark).
    NotYet { stray: usize },
}

/// Looks for `<token>:\n` in the window of bytes seen before it plus `bytes`. Keeps at most one
/// mark's length of bytes in the window, so a flood before the mark costs no memory.
fn find_start(cut: &mut Cut, token: &[u8], bytes: &[u8]) -> StartSearch {
    let mark_len = token.len() + 2;
    cut.window.extend_from_slice(bytes);
    let found = cut
        .window
        .windows(mark_len)
        .position(|w| w.starts_with(token) && w.ends_with(b":\n"));
    if let Some(at) = found {
        let after = cut.window[at + mark_len..].to_vec();
        cut.window = Vec::new();
        return StartSearch::Found { stray: at, after };
    }
    let keep = cut.window.len().min(mark_len - 1);
    let stray = cut.window.len() - keep;
    cut.window.drain(..stray);
    StartSearch::NotYet { stray }
}

/// Looks for the first end mark (or stdout's background-job flag) in `buf` from `from` on:
/// `\n<token> <rc>\n` on stdout, `\n<token>\n` on stderr, `\n<token>&\n` as the flag.
fn scan_end(buf: &[u8], from: usize, token: &[u8], stream: Stream) -> Scan {
    let lead = token.len() + 1;
    let mut at = from;
    while at + lead <= buf.len() {
        if buf[at] != b'\n' {
            at = buf[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |k| at + k);
            continue;
        }
        if &buf[at + 1..at + lead] != token {
            at += 1;
            continue;
        }
        let tail = &buf[at + lead..];
        match (stream, tail.first()) {
            (_, None) => return Scan::NotYet(at),
            (Stream::Stderr, Some(b'\n')) => {
                return Scan::End {
                    at,
                    len: lead + 1,
                    rc: 0,
                }
            }
            (Stream::Stdout, Some(b'&')) => match tail.get(1) {
                None => return Scan::NotYet(at),
                Some(b'\n') => return Scan::Jobs { at, len: lead + 2 },
                Some(_) => {}
            },
            (Stream::Stdout, Some(b' ')) => match parse_rc(&tail[1..]) {
                RcField::Incomplete => return Scan::NotYet(at),
                RcField::Rc { rc, len } => {
                    return Scan::End {
                        at,
                        len: lead + 1 + len,
                        rc,
                    }
                }
                RcField::Invalid => {}
            },
            _ => {}
        }
        at += 1;
    }
    // A mark may begin in the last bytes (a newline and the start of the token): look at them again
    // next time; everything before is output for certain.
    let tail = (at..buf.len()).find(|&p| buf[p] == b'\n' && token.starts_with(&buf[p + 1..]));
    Scan::NotYet(tail.unwrap_or(buf.len()))
}

/// The rc field of a stdout end mark, after the space.
enum RcField {
    /// 1 to 3 digits and a newline; `len` counts both.
    Rc {
        rc: i32,
        len: usize,
    },
    /// Only digits so far: more bytes decide.
    Incomplete,
    Invalid,
}

fn parse_rc(field: &[u8]) -> RcField {
    let digits = field.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > RC_DIGITS_MAX {
        return RcField::Invalid;
    }
    match field.get(digits) {
        None => RcField::Incomplete,
        Some(b'\n') if digits > 0 => {
            let rc = field[..digits]
                .iter()
                .fold(0i32, |n, d| n * 10 + i32::from(d - b'0'));
            RcField::Rc {
                rc,
                len: digits + 1,
            }
        }
        Some(_) => RcField::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const O: Stream = Stream::Stdout;
    const E: Stream = Stream::Stderr;
    /// A cap no case reaches.
    const CAP: usize = 1 << 20;

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
            name: "a mark followed by more output in the same pass is found; the rest is stray",
            passes: &[&[(O, b"\nKPt 0\nlate\n"), (E, b"\nKPt\n")]],
            want: Some((0, 0, b"", b"")),
        },
        Case {
            name: "stdout after its mark in a later pass is stray, not output",
            passes: &[&[(O, b"a\nKPt 0\n")], &[(O, b"bg\n"), (E, b"\nKPt\n")]],
            want: Some((1, 0, b"a", b"")),
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
            let mut reply = framer.reply(CAP);
            reply.feed(O, b"KPt:\n");
            reply.feed(E, b"KPt:\n");
            let mut got = None;
            for (i, pass) in case.passes.iter().enumerate() {
                for (stream, bytes) in pass.iter() {
                    reply.feed(*stream, bytes);
                }
                if let Progress::Done(out) = reply.result() {
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

    /// A reply fed from its very start: (stream, bytes) per pass.
    struct Raw {
        name: &'static str,
        passes: &'static [Pass],
        /// The pass after which the result is complete, and that result (rc, stdout, stderr).
        want: Option<(usize, i32, &'static [u8], &'static [u8])>,
        /// Stray bytes counted, and whether the shell may run another command.
        stray: usize,
        reusable: bool,
    }

    const RAW: &[Raw] = &[
        Raw {
            name: "a clean command: start and end marks only",
            passes: &[&[(O, b"KPt:\nout\n\nKPt 0\n"), (E, b"KPt:\n\nKPt\n")]],
            want: Some((0, 0, b"out\n", b"")),
            stray: 0,
            reusable: true,
        },
        Raw {
            name: "late output of an earlier command before the start marks is dropped",
            passes: &[&[
                (O, b"tick\ntick\ntiKPt:\nmine\nKPt 0\n"),
                (E, b"old\nKPt:\n\nKPt\n"),
            ]],
            want: Some((0, 0, b"mine", b"")),
            stray: 12 + 4,
            reusable: false,
        },
        Raw {
            name: "start marks split across chunks and passes",
            passes: &[
                &[(O, b"xxKP"), (O, b"t"), (E, b"KPt:")],
                &[(O, b":\nyes\nKPt 4\n"), (E, b"\nno\nKPt\n")],
            ],
            want: Some((1, 4, b"yes", b"no")),
            stray: 2,
            reusable: false,
        },
        Raw {
            name: "an end mark before the start mark is another command's",
            passes: &[&[
                (O, b"\nKPt 0\nKPt:\nreal\n\nKPt 1\n"),
                (E, b"\nKPt\nKPt:\n\nKPt\n"),
            ]],
            want: Some((0, 1, b"real\n", b"")),
            stray: 7 + 5,
            reusable: false,
        },
        Raw {
            name: "output after the end marks is stray, in the same chunk or later",
            passes: &[
                &[(O, b"KPt:\nnow\n\nKPt 0\ntick\n"), (E, b"KPt:\n")],
                &[(O, b"tick\n"), (E, b"\nKPt\nlate")],
            ],
            want: Some((1, 0, b"now\n", b"")),
            stray: 5 + 5 + 4,
            reusable: false,
        },
        Raw {
            name: "a background job flag is cut out and retires the shell",
            passes: &[&[
                (O, b"KPt:\nstarted\n\nKPt&\n\nKPt 0\n"),
                (E, b"KPt:\n\nKPt\n"),
            ]],
            want: Some((0, 0, b"started\n", b"")),
            stray: 0,
            reusable: false,
        },
        Raw {
            name: "the flag split across passes",
            passes: &[
                &[(O, b"KPt:\n\nKPt"), (E, b"KPt:\n\nKPt\n")],
                &[(O, b"&")],
                &[(O, b"\n\nKPt 0\n")],
            ],
            want: Some((2, 0, b"", b"")),
            stray: 0,
            reusable: false,
        },
        Raw {
            name: "marks of another token are output once started, stray before",
            passes: &[&[(O, b"KPx:\nKPt:\nKPx:\n\nKPt 0\n"), (E, b"KPt:\n\nKPt\n")]],
            want: Some((0, 0, b"KPx:\n", b"")),
            stray: 5,
            reusable: false,
        },
        Raw {
            name: "no start mark: never complete",
            passes: &[&[(O, b"out\n\nKPt 0\n"), (E, b"\nKPt\n")]],
            want: None,
            stray: 7 + 1,
            reusable: false,
        },
    ];

    #[test]
    fn replies_are_cut_between_their_start_and_end_marks() {
        let framer = Framer::new("KPt".into());
        for case in RAW {
            let mut reply = framer.reply(CAP);
            let mut got = None;
            for (i, pass) in case.passes.iter().enumerate() {
                for (stream, bytes) in pass.iter() {
                    reply.feed(*stream, bytes);
                }
                if let Progress::Done(out) = reply.result() {
                    got = Some((i, out.rc, out.stdout, out.stderr));
                    break;
                }
            }
            let want = case
                .want
                .map(|(i, rc, out, err)| (i, rc, out.to_vec(), err.to_vec()));
            assert_eq!(got, want, "{}", case.name);
            assert_eq!(reply.stray_bytes(), case.stray, "{}", case.name);
            assert_eq!(reply.shell_reusable(), case.reusable, "{}", case.name);
        }
    }

    #[test]
    fn a_flood_before_the_start_mark_is_not_held() {
        let framer = Framer::new("KPt".into());
        let mut reply = framer.reply(CAP);
        let chunk = vec![b'y'; 64 * 1024];
        for _ in 0..100 {
            reply.feed(O, &chunk);
        }
        assert!(
            reply.stdout.window.len() < 8,
            "{}",
            reply.stdout.window.len()
        );
        assert_eq!(
            reply.stray_bytes(),
            100 * chunk.len() - reply.stdout.window.len()
        );
        reply.feed(O, b"KPt:\nok\nKPt 0\n");
        reply.feed(E, b"KPt:\n\nKPt\n");
        assert_eq!(
            reply.result(),
            Progress::Done(ExecOutput {
                rc: 0,
                stdout: b"ok".to_vec(),
                stderr: Vec::new()
            })
        );
    }

    #[test]
    fn output_past_the_cap_is_not_kept() {
        let framer = Framer::new("KPt".into());
        // Exactly the cap, on both streams together, with the marks: complete.
        let mut reply = framer.reply(10);
        reply.feed(O, b"KPt:\n123456");
        reply.feed(E, b"KPt:\n7890\nKPt\n");
        reply.feed(O, b"\nKPt 0\n");
        assert_eq!(
            reply.result(),
            Progress::Done(ExecOutput {
                rc: 0,
                stdout: b"123456".to_vec(),
                stderr: b"7890".to_vec()
            })
        );
        // One byte more: too large, and what is held stays at the cap.
        let mut reply = framer.reply(10);
        reply.feed(O, b"KPt:\n123456");
        assert_eq!(reply.result(), Progress::Pending);
        reply.feed(E, b"KPt:\n78901");
        assert_eq!(reply.result(), Progress::TooLarge);
        assert!(!reply.shell_reusable());
        let chunk = vec![b'z'; 64 * 1024];
        for _ in 0..10 {
            reply.feed(O, &chunk);
        }
        assert!(reply.out.stdout.len() + reply.out.stderr.len() <= 10);
        assert_eq!(reply.result(), Progress::TooLarge);
        // A big chunk at once is cut to the cap before it is kept.
        let mut reply = framer.reply(1000);
        reply.feed(O, b"KPt:\n");
        reply.feed(O, &chunk);
        assert_eq!(reply.result(), Progress::TooLarge);
        assert_eq!(reply.out.stdout.len(), 1000);
    }

    #[test]
    fn a_shell_that_ends_early_gives_what_came_and_its_status() {
        let framer = Framer::new("KPt".into());
        let mut reply = framer.reply(CAP);
        reply.feed(O, b"KPt:\npartial");
        reply.feed(E, b"KPt:\nerr");
        assert_eq!(reply.result(), Progress::Pending);
        let out = reply.cut_short(137);
        assert_eq!(
            (out.rc, &out.stdout[..], &out.stderr[..]),
            (137, &b"partial"[..], &b"err"[..])
        );
        // The stdout mark came but the stderr one did not: the mark is still cut off.
        let mut reply = framer.reply(CAP);
        reply.feed(O, b"KPt:\ndone\nKPt 0\n");
        assert_eq!(reply.result(), Progress::Pending);
        let out = reply.cut_short(129);
        assert_eq!((out.rc, &out.stdout[..]), (129, &b"done"[..]));
    }

    #[test]
    fn end_marks_are_found_anywhere_and_cut_off() {
        let t = b"KPabc";
        let end = |at, len, rc| Scan::End { at, len, rc };
        for (buf, stream, want) in [
            (&b"data\nKPabc 3\n"[..], O, end(4, 9, 3)),
            // Output without a final newline keeps its last byte; empty output stays empty.
            (b"no newline\nKPabc 0\n", O, end(10, 9, 0)),
            (b"\nKPabc 255\n", O, end(0, 11, 255)),
            // The mark in the middle: found there, whatever follows it.
            (b"\nKPabc 3\nmore\n", O, end(0, 9, 3)),
            (b"x\nKPabc 0\nKPabc 1\n", O, end(1, 9, 0)),
            // Not (yet) complete: look again from where the mark may begin.
            (b"data\nKPabc 3", O, Scan::NotYet(4)),
            (b"data\nKPabc", O, Scan::NotYet(4)),
            (b"data\nKP", O, Scan::NotYet(4)),
            (b"data", O, Scan::NotYet(4)),
            (b"longer data", O, Scan::NotYet(11)),
            // Not a mark at all.
            (b"data\nKPabc \n", O, Scan::NotYet(11)),
            (b"data\nKPxyz 3\n", O, Scan::NotYet(12)),
            (b"KPabc 3\n", O, Scan::NotYet(7)),
            (b"\nKPabc 1234\n", O, Scan::NotYet(11)),
            (b"\nKPabc 12a\n", O, Scan::NotYet(10)),
            // The background-job flag on stdout.
            (b"o\nKPabc&\n\nKPabc 0\n", O, Scan::Jobs { at: 1, len: 8 }),
            (b"o\nKPabc&", O, Scan::NotYet(1)),
            (b"o\nKPabc&x", O, Scan::NotYet(9)),
            // stderr's mark has no rc; stdout's shapes mean nothing there.
            (b"warn\n\nKPabc\n", E, end(5, 7, 0)),
            (b"KPabc\n", E, Scan::NotYet(5)),
            (b"\nKPabc 0\n\nKPabc\n", E, end(9, 7, 0)),
            (b"\nKPabc&\n", E, Scan::NotYet(7)),
            (b"\nKPabc\n", O, Scan::NotYet(6)),
        ] {
            assert_eq!(scan_end(buf, 0, t, stream), want, "{buf:?} on {stream:?}");
        }
        // A look starts where the last one stopped.
        assert_eq!(scan_end(b"\nKPabc 1\n\nKPabc 2\n", 1, t, O), end(9, 9, 2));
    }

    #[test]
    fn a_shell_line_quotes_the_command_as_one_word() {
        let line = Framer::new("KPt".into()).line("echo 'a b'; exit 3", None);
        assert_eq!(
            line,
            "printf '%s:\\n' KPt; printf '%s:\\n' KPt >&2; \
             ( trap '[ -z \"${!:-}\" ] || printf \"\\n%s&\\n\" KPt' EXIT; eval 'echo '\\''a b'\\''; exit 3' ) \
             </dev/null; __kp_rc=$?; printf '\\n%s %s\\n' KPt \"$__kp_rc\"; \
             printf '\\n%s\\n' KPt >&2\n"
        );
    }

    #[test]
    fn stdin_travels_as_base64_in_a_here_document_named_after_the_token() {
        let framer = Framer::new("KPt".into());
        let line = framer.line("cat > f", Some(b"\x00\xffhi\n"));
        assert_eq!(
            line,
            "printf '%s:\\n' KPt; printf '%s:\\n' KPt >&2; base64 -d <<'KPt_IN' | \
             ( trap '[ -z \"${!:-}\" ] || printf \"\\n%s&\\n\" KPt' EXIT; eval 'cat > f' ); \
             __kp_rc=$?; printf '\\n%s %s\\n' KPt \"$__kp_rc\"; \
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
