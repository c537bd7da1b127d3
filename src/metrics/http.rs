//! The metrics endpoint: `GET /metrics` (Prometheus text format) and `GET /healthz` (200 `ok`,
//! or 503 and the reason). A small HTTP/1.1 responder on a std `TcpListener`: one request per
//! connection, read with a size cap and a deadline, answered, closed. At most
//! [`MAX_CONNECTIONS`] are served at once; more are closed at once, so slow or hostile clients
//! cost a bounded number of threads and never reach the knock pipeline.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::exposition::CONTENT_TYPE;

/// Connections served at once, at most.
pub const MAX_CONNECTIONS: usize = 8;
/// A client has this long to send its request; then the connection is closed.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// A request head (request line and headers) longer than this is refused.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How often the accept loop looks at the stop flag while no client connects.
const POLL: Duration = Duration::from_millis(100);

/// What the endpoint serves.
pub trait Source: Send + Sync {
    /// The `/metrics` page.
    fn metrics(&self) -> String;
    /// `Ok` while healthy, else why not.
    fn health(&self) -> Result<(), String>;
}

/// The running endpoint; stops when [`Server::stop`] is called or it is dropped.
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (only that address) and serves `source` on a thread of its own.
    pub fn start(addr: SocketAddr, source: Arc<dyn Source>) -> io::Result<Server> {
        Server::serve(TcpListener::bind(addr)?, source)
    }

    /// Serves `source` on a socket already bound (so a taken port is found before anything
    /// else starts).
    pub fn serve(listener: TcpListener, source: Arc<dyn Source>) -> io::Result<Server> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("knockplay-metrics".into())
            .spawn(move || accept_loop(&listener, &source, &flag))?;
        Ok(Server {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address bound (the configured one).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; connections being served finish within their deadline on their own.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Decrements the count of connections being served when a connection's thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: &TcpListener, source: &Arc<dyn Source>, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_for_client(listener, POLL);
                continue;
            }
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::debug!("metrics endpoint: accept: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            tracing::debug!("metrics endpoint: {MAX_CONNECTIONS} connections busy, one closed");
            drop(stream);
            continue;
        }
        let slot = Slot(Arc::clone(&active));
        let source = Arc::clone(source);
        let spawned = std::thread::Builder::new()
            .name("knockplay-metrics-conn".into())
            .spawn(move || {
                let _slot = slot;
                if let Err(e) = serve(stream, source.as_ref()) {
                    tracing::debug!("metrics endpoint: {e}");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("metrics endpoint: cannot start a thread: {e}");
        }
    }
}

/// Waits until a connection is pending or `timeout` passes (a client is served at once, and the
/// stop flag is still looked at every `timeout`).
fn wait_for_client(listener: &TcpListener, timeout: Duration) {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
    let n = unsafe { libc::poll(&mut p, 1, ms) };
    if n < 0 {
        // EINTR and the like: do not spin.
        std::thread::sleep(timeout);
    }
}

/// Reads one request (deadline, size cap), answers it and closes.
fn serve(mut stream: TcpStream, source: &dyn Source) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(REQUEST_DEADLINE))?;
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(answer) = reply(&received, source) {
            stream.write_all(&answer)?;
            stream.flush()?;
            // Close our side first; the client sees the end of the response, not a reset.
            let _ = stream.shutdown(Shutdown::Write);
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            // Closed, or the deadline passed: nothing to answer.
            Ok(0) => return Ok(()),
            Ok(n) => received.extend_from_slice(buf.get(..n).unwrap_or_default()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The whole answer (status line, headers, body) to the bytes a client sent so far, or `None`
/// while its request head is incomplete and under [`MAX_REQUEST`]. Pure: the server and the fuzz
/// target call it the same way.
pub fn reply(received: &[u8], source: &dyn Source) -> Option<Vec<u8>> {
    let response = match end_of_head(received) {
        Some(end) if end <= MAX_REQUEST => {
            let head = received.get(..end).unwrap_or(received);
            match parse_request_line(head) {
                Err(status) => Response::text(status, "bad request\n"),
                Ok((method, path)) => {
                    let r = route(method, path, source);
                    return Some(render(&r, method != "HEAD"));
                }
            }
        }
        None if received.len() < MAX_REQUEST => return None,
        _ => Response::text(431, "request too long\n"),
    };
    Some(render(&response, true))
}

/// Where the head ends (after `\r\n\r\n`, or `\n\n` from lenient clients).
fn end_of_head(b: &[u8]) -> Option<usize> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `GET /path HTTP/1.1` → (method, path without query); a status code when it is not one.
fn parse_request_line(head: &[u8]) -> Result<(&str, &str), u16> {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line)
        .map_err(|_| 400u16)?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return Err(if version.starts_with("HTTP/") {
            505
        } else {
            400
        });
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(400);
    }
    let path = target.split('?').next().unwrap_or_default();
    Ok((method, path))
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
        }
    }
}

fn route(method: &str, path: &str, source: &dyn Source) -> Response {
    if !matches!(method, "GET" | "HEAD") {
        return Response::text(405, "only GET and HEAD\n");
    }
    match path {
        "/metrics" => Response {
            status: 200,
            content_type: CONTENT_TYPE,
            body: source.metrics(),
        },
        "/healthz" => match source.health() {
            Ok(()) => Response::text(200, "ok\n"),
            Err(why) => Response::text(503, &format!("{}\n", why.replace('\n', " "))),
        },
        _ => Response::text(404, "not found: try /metrics or /healthz\n"),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

fn render(r: &Response, with_body: bool) -> Vec<u8> {
    let allow = if r.status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        r.status,
        reason(r.status),
        r.content_type,
        r.body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(r.body.as_bytes());
    }
    out
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
