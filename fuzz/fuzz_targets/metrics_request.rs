//! Fuzz target: the metrics endpoint's answer to whatever a client sends (`metrics::http::reply`)
//! never panics; while the head is incomplete and under the cap there is no answer, otherwise the
//! answer is one well-formed HTTP/1.1 response whose Content-Length is its body's length.
//! Run: `bash fuzz/run metrics_request` (see fuzz/README.md).

#![no_main]

use knockplay::metrics::http::{reply, Source, MAX_REQUEST};
use libfuzzer_sys::fuzz_target;

struct Page;

impl Source for Page {
    fn metrics(&self) -> String {
        "# TYPE x gauge\nx 1\n".into()
    }
    fn health(&self) -> Result<(), String> {
        Err("capture on eth0 is down\nsecond line".into())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(answer) = reply(data, &Page) else {
        assert!(data.len() < MAX_REQUEST);
        assert!(!data.windows(2).any(|w| w == b"\n\n"));
        assert!(!data.windows(4).any(|w| w == b"\r\n\r\n"));
        return;
    };
    let text = String::from_utf8(answer).expect("answers are text");
    assert!(text.starts_with("HTTP/1.1 "));
    let (head, body) = text.split_once("\r\n\r\n").expect("a head");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .trim()
        .parse()
        .expect("a number");
    let head_request = data.starts_with(b"HEAD ");
    assert!(body.len() == length || (head_request && body.is_empty()));
});
