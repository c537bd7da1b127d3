//! Fuzz target: the command-shell framer, fed arbitrary chunks of stdout and stderr (what a hostile
//! target can send), never panics, never holds more than its cap, and a finished reply never
//! carries the end marks' token.
//! Run: `bash fuzz/run framer` (see fuzz/README.md).

#![no_main]

use knockplay::ssh::framer::{Framer, Progress};
use knockplay::ssh::Stream;
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";
const CAP: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let framer = Framer::new(TOKEN.to_string());
    let mut reply = framer.reply(CAP);
    // Each chunk: one control byte (stream and length), then that many bytes. The token appears
    // often in real replies, so a control byte can also ask for a mark-like piece of text.
    let mut rest = data;
    while let Some((&ctl, tail)) = rest.split_first() {
        let stream = if ctl & 1 == 0 { Stream::Stdout } else { Stream::Stderr };
        let len = usize::from(ctl >> 1).min(tail.len());
        let (chunk, after) = tail.split_at(len);
        rest = after;
        if ctl & 0x80 != 0 {
            let mark = format!("\n{TOKEN}:\n{TOKEN} {}\n", chunk.len());
            reply.feed(stream, mark.as_bytes());
        }
        reply.feed(stream, chunk);
        match reply.result() {
            Progress::Done(out) => {
                assert!(out.stdout.len() + out.stderr.len() <= CAP + 2 * TOKEN.len() + 64);
                return;
            }
            Progress::TooLarge => return,
            Progress::Pending => {}
        }
    }
    let _ = reply.cut_short(-1);
});
