//! `ProxyJump`: the connection to a host travels through an SSH session to a jump host, over a
//! direct-tcpip channel. The jump host is connected to like any host (its host key checked
//! against known_hosts, authenticated); a thread carries bytes between the channel and one end of
//! a socket pair whose other end is the target session's socket. When either side closes, the
//! thread ends and closes the other.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use ssh2::{Channel, Session};

use super::options::ConnectOptions;
use super::ssh2_errors::describe;
use super::SshError;

/// Bytes buffered per direction at most.
const BUFFER: usize = 256 * 1024;

/// Opens `host:port` through `session`, an authenticated blocking session to the jump host
/// `jump` (`socket`: its socket, for polling); returns the socket to give the target's session.
pub fn through(
    session: Session,
    socket: OwnedFd,
    jump: &ConnectOptions,
    host: &str,
    port: u16,
) -> Result<UnixStream, SshError> {
    let fail = |reason: String| SshError::Session {
        addr: format!("{host}:{port} via {}", jump.addr()),
        reason,
    };
    let channel = session
        .channel_direct_tcpip(host, port, None)
        .map_err(|e| fail(format!("the jump host cannot reach it: {}", describe(&e))))?;
    let (ours, theirs) = UnixStream::pair().map_err(|e| fail(format!("socket pair: {e}")))?;
    ours.set_nonblocking(true)
        .map_err(|e| fail(format!("socket pair: {e}")))?;
    session.set_blocking(false);
    std::thread::Builder::new()
        .name("knockplay-jump".into())
        .spawn(move || carry(session, channel, ours, socket))
        .map_err(|e| fail(format!("cannot start the jump thread: {e}")))?;
    Ok(theirs)
}

fn would_block(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock
}

/// Carries bytes both ways until a side closes or fails.
fn carry(session: Session, mut ch: Channel, mut local: UnixStream, remote: OwnedFd) {
    let mut up: Vec<u8> = Vec::new();
    let mut down: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut moved = false;
        if up.len() < BUFFER {
            match local.read(&mut buf) {
                Ok(0) => break, // the target session is gone
                Ok(n) => {
                    up.extend_from_slice(&buf[..n]);
                    moved = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => break,
            }
        }
        if !up.is_empty() {
            match ch.write(&up) {
                Ok(n) => {
                    up.drain(..n);
                    moved |= n > 0;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => break,
            }
        }
        if down.len() < BUFFER {
            match ch.read(&mut buf) {
                Ok(0) if ch.eof() && down.is_empty() => break,
                Ok(0) => {}
                Ok(n) => {
                    down.extend_from_slice(&buf[..n]);
                    moved = true;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => break,
            }
        }
        if !down.is_empty() {
            match local.write(&down) {
                Ok(n) => {
                    down.drain(..n);
                    moved |= n > 0;
                }
                Err(e) if would_block(&e) => {}
                Err(_) => break,
            }
        }
        if !moved {
            wait(&local, &remote, !down.is_empty());
        }
    }
    let _ = local.shutdown(std::net::Shutdown::Both);
    session.set_blocking(true);
    session.set_timeout(2000);
    let _ = ch.close();
    let _ = session.disconnect(None, "knockplay: jump closed", None);
}

/// Sleeps until either socket has something, or 50 ms.
fn wait(local: &UnixStream, remote: &OwnedFd, local_out: bool) {
    let mut fds = [
        libc::pollfd {
            fd: local.as_raw_fd(),
            events: libc::POLLIN | if local_out { libc::POLLOUT } else { 0 },
            revents: 0,
        },
        libc::pollfd {
            fd: remote.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfds for the length given.
    unsafe {
        libc::poll(fds.as_mut_ptr(), 2, 50);
    }
}
