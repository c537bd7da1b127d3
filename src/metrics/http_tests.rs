//! Tests of the metrics endpoint on loopback: routes, status codes, hostile and slow clients.

use super::*;
use std::sync::Mutex;

struct Fake {
    health: Mutex<Result<(), String>>,
}

impl Source for Fake {
    fn metrics(&self) -> String {
        "# TYPE x gauge\nx 1\n".into()
    }
    fn health(&self) -> Result<(), String> {
        self.health.lock().unwrap().clone()
    }
}

fn server() -> (Server, Arc<Fake>) {
    let fake = Arc::new(Fake {
        health: Mutex::new(Ok(())),
    });
    let s = Server::start("127.0.0.1:0".parse().unwrap(), fake.clone()).unwrap();
    (s, fake)
}

/// Sends `request` and reads the whole answer (the server closes).
fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    try_exchange(addr, request).unwrap()
}

/// As [`exchange`]; an error when the server closed (or reset) the connection instead.
fn try_exchange(addr: SocketAddr, request: &[u8]) -> io::Result<String> {
    let mut c = TcpStream::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(20)))?;
    c.write_all(request)?;
    let mut out = String::new();
    c.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn routes_and_status_codes() {
    let (s, fake) = server();
    let a = s.local_addr();
    let m = exchange(a, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(m.starts_with("HTTP/1.1 200 OK\r\n"), "{m}");
    assert!(
        m.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{m}"
    );
    assert!(
        m.contains("Content-Length: 19\r\n") && m.ends_with("\r\n\r\n# TYPE x gauge\nx 1\n"),
        "{m}"
    );
    let q = exchange(a, b"GET /metrics?name[]=x HTTP/1.0\n\n");
    assert!(q.starts_with("HTTP/1.1 200 OK\r\n"), "{q}");
    let h = exchange(a, b"GET /healthz HTTP/1.1\r\n\r\n");
    assert!(
        h.starts_with("HTTP/1.1 200 OK\r\n") && h.ends_with("\r\n\r\nok\n"),
        "{h}"
    );
    *fake.health.lock().unwrap() = Err("capture on eth0 is down".into());
    let h = exchange(a, b"GET /healthz HTTP/1.1\r\n\r\n");
    assert!(h.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{h}");
    assert!(h.ends_with("\r\n\r\ncapture on eth0 is down\n"), "{h}");
    let head = exchange(a, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(
        head.starts_with("HTTP/1.1 200 OK\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    let cases: [(&[u8], &str); 6] = [
        (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 "),
        (b"POST /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405 "),
        (b"GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 505 "),
        (b"\x00\xff\xfe garbage\r\n\r\n", "HTTP/1.1 400 "),
        (b"GET /metrics\r\n\r\n", "HTTP/1.1 400 "),
        (b"get /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "),
    ];
    for (req, want) in cases {
        let r = exchange(a, req);
        assert!(
            r.starts_with(want),
            "{:?} → {r}",
            String::from_utf8_lossy(req)
        );
    }
    let r = exchange(a, b"POST /x HTTP/1.1\r\n\r\n");
    assert!(r.contains("Allow: GET, HEAD\r\n"), "{r}");
    s.stop();
}

#[test]
fn an_endless_request_head_is_refused_at_the_cap() {
    let (s, _) = server();
    let mut c = TcpStream::connect(s.local_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let line = format!(
        "GET /metrics HTTP/1.1\r\nX: {}\r\n",
        "a".repeat(MAX_REQUEST)
    );
    // The server may answer and close before it read everything: a reset is fine then.
    let _ = c.write_all(line.as_bytes());
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
}

#[test]
fn a_silent_client_is_cut_at_the_deadline_and_others_are_served_meanwhile() {
    let (s, _) = server();
    let a = s.local_addr();
    let silent: Vec<TcpStream> = (0..MAX_CONNECTIONS - 1)
        .map(|_| TcpStream::connect(a).unwrap())
        .collect();
    // While they hold their slots, one is left, and a scrape gets it.
    let m = exchange(a, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(m.starts_with("HTTP/1.1 200 OK\r\n"), "{m}");
    for mut c in silent {
        c.set_read_timeout(Some(REQUEST_DEADLINE * 4)).unwrap();
        let mut out = Vec::new();
        // Closed by the server (end of stream), not by our read timeout.
        let n = c
            .read_to_end(&mut out)
            .expect("the server closes a silent connection");
        assert_eq!(n, 0);
    }
    let m = exchange(a, b"GET /healthz HTTP/1.1\r\n\r\n");
    assert!(m.starts_with("HTTP/1.1 200 OK\r\n"), "{m}");
}

#[test]
fn connections_beyond_the_bound_are_closed_at_once() {
    let (s, _) = server();
    let a = s.local_addr();
    let busy: Vec<TcpStream> = (0..MAX_CONNECTIONS)
        .map(|_| TcpStream::connect(a).unwrap())
        .collect();
    // Give the accept loop time to take them all (it polls).
    std::thread::sleep(POLL * 6);
    let mut extra = TcpStream::connect(a).unwrap();
    extra.set_read_timeout(Some(REQUEST_DEADLINE / 2)).unwrap();
    let _ = extra.write_all(b"GET /metrics HTTP/1.1\r\n\r\n");
    let mut out = Vec::new();
    // Closed without an answer, well before the busy ones' deadline.
    let r = extra.read_to_end(&mut out);
    assert!(
        r.is_ok()
            || r.as_ref()
                .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    drop(busy);
    // The slots come back once the busy clients are gone.
    let end = Instant::now() + REQUEST_DEADLINE * 4;
    loop {
        // Closed at once (or reset) while the slots are still taken.
        let m = try_exchange(a, b"GET /healthz HTTP/1.1\r\n\r\n").unwrap_or_default();
        if m.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < end, "never served again: {m}");
        std::thread::sleep(POLL);
    }
}

#[test]
fn request_lines() {
    let ok: [(&[u8], (&str, &str)); 3] = [
        (
            b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n",
            ("GET", "/metrics"),
        ),
        (b"HEAD /healthz?x=1 HTTP/1.0\n\n", ("HEAD", "/healthz")),
        (b"DELETE / HTTP/1.1\r\n\r\n", ("DELETE", "/")),
    ];
    for (req, want) in ok {
        assert_eq!(parse_request_line(req), Ok(want));
    }
    let bad: [(&[u8], u16); 5] = [
        (b"", 400),
        (b"GET  /metrics HTTP/1.1\r\n", 400),
        (b"GET /metrics HTTP/1.1 extra\r\n", 400),
        (b"GET /metrics SPDY/3\r\n", 400),
        (b"GET /metrics HTTP/3\r\n", 505),
    ];
    for (req, want) in bad {
        assert_eq!(
            parse_request_line(req),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(req)
        );
    }
}

#[test]
fn replies_wait_for_the_whole_head_and_stop_at_the_cap() {
    let fake = Fake {
        health: Mutex::new(Ok(())),
    };
    let text = |b: &[u8]| reply(b, &fake).map(|r| String::from_utf8(r).unwrap());
    assert_eq!(text(b""), None);
    assert_eq!(text(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), None);
    let r = text(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("x 1\n"),
        "{r}"
    );
    assert_eq!(text(&[b'a'; MAX_REQUEST - 1]), None);
    let r = text(&[b'a'; MAX_REQUEST]).unwrap();
    assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
    // A head that ends only beyond the cap is refused too.
    let mut long = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    long.extend([b'a'; MAX_REQUEST]);
    long.extend(b"\r\n\r\n");
    assert!(text(&long).unwrap().starts_with("HTTP/1.1 431 "));
    let r = text(b"\xff\xfe\r\n\r\n").unwrap();
    assert!(
        r.starts_with("HTTP/1.1 400 ") && r.contains("Content-Length: 12\r\n"),
        "{r}"
    );
}

/// What the fuzz target checks, over pseudo-random requests: mutations of real ones and noise.
#[test]
fn replies_to_arbitrary_bytes_are_well_formed() {
    let fake = Fake {
        health: Mutex::new(Err("two\nlines".into())),
    };
    let seeds: [&[u8]; 4] = [
        b"GET /metrics HTTP/1.1\r\n\r\n",
        b"HEAD /healthz HTTP/1.0\n\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000 {
        let mut data = seeds[i % seeds.len()].to_vec();
        for _ in 0..next() % 4 {
            let r = next();
            let at = (r >> 8) as usize % (data.len() + 1);
            match r % 3 {
                0 => data.insert(at, (r >> 32) as u8),
                1 if at < data.len() => {
                    data.remove(at);
                }
                _ => data.extend(std::iter::repeat_n(b'a', (r >> 40) as usize % 3000)),
            }
        }
        let Some(answer) = reply(&data, &fake) else {
            assert!(data.len() < MAX_REQUEST);
            assert!(end_of_head(&data).is_none());
            continue;
        };
        let text = String::from_utf8(answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 "), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(body.len() == length || (data.starts_with(b"HEAD ") && body.is_empty()));
        assert!(
            !body.trim_end().contains('\n') || body.starts_with("# TYPE"),
            "{body:?}"
        );
    }
}
