//! What libssh2's numeric error codes (`LIBSSH2_ERROR_*`, from `libssh2.h`) mean to this layer:
//! "would block", a timeout, a lost connection, a refused channel request, a rejected key.

use ssh2::ErrorCode;

const SOCKET_SEND: i32 = -7;
const TIMEOUT: i32 = -9;
const SOCKET_DISCONNECT: i32 = -13;
const FILE: i32 = -16;
const AUTHENTICATION_FAILED: i32 = -18;
const PUBLICKEY_UNVERIFIED: i32 = -19;
const CHANNEL_OUTOFORDER: i32 = -20;
const CHANNEL_EOF_SENT: i32 = -27;
const REQUEST_DENIED: i32 = -32;
const EAGAIN: i32 = -37;
const SOCKET_RECV: i32 = -43;

/// A non-blocking call that would block: wait for the socket and call again.
pub fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(EAGAIN)
}

/// libssh2's own timeout (blocking mode, `Session::set_timeout`).
pub fn is_timeout(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(TIMEOUT)
}

/// A refused channel or request: the connection itself stays usable.
pub fn is_channel_level(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::Session(CHANNEL_EOF_SENT..=CHANNEL_OUTOFORDER)
            | ErrorCode::Session(REQUEST_DENIED)
    )
}

/// The server turned the key down.
pub fn is_key_rejected(e: &ssh2::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::Session(AUTHENTICATION_FAILED) | ErrorCode::Session(PUBLICKEY_UNVERIFIED)
    )
}

/// The key file could not be read or parsed.
pub fn is_key_file_unusable(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(FILE)
}

/// libssh2's message, saying "connection lost" for the socket failures that mean just that.
pub fn describe(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::Session(SOCKET_DISCONNECT)
        | ErrorCode::Session(SOCKET_RECV)
        | ErrorCode::Session(SOCKET_SEND) => {
            format!("connection lost ({})", e.message())
        }
        _ => e.message().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_as_libssh2_defines_them() {
        let err = |code: i32| ssh2::Error::new(ErrorCode::Session(code), "m");
        // (code, eagain, timeout, channel level, key rejected, key file unusable)
        let table = [
            (-37, true, false, false, false, false),
            (-9, false, true, false, false, false),
            (-20, false, false, true, false, false),
            (-22, false, false, true, false, false),
            (-27, false, false, true, false, false),
            (-28, false, false, false, false, false),
            (-32, false, false, true, false, false),
            (-18, false, false, false, true, false),
            (-19, false, false, false, true, false),
            (-16, false, false, false, false, true),
            (-13, false, false, false, false, false),
        ];
        for (code, eagain, timeout, channel, rejected, unusable) in table {
            let e = err(code);
            assert_eq!(is_eagain(&e), eagain, "{code}");
            assert_eq!(is_timeout(&e), timeout, "{code}");
            assert_eq!(is_channel_level(&e), channel, "{code}");
            assert_eq!(is_key_rejected(&e), rejected, "{code}");
            assert_eq!(is_key_file_unusable(&e), unusable, "{code}");
        }
    }

    #[test]
    fn socket_failures_read_as_a_lost_connection() {
        for (code, want) in [
            (-13, "connection lost (m)"),
            (-43, "connection lost (m)"),
            (-7, "connection lost (m)"),
            (-18, "m"),
        ] {
            let e = ssh2::Error::new(ErrorCode::Session(code), "m");
            assert_eq!(describe(&e), want, "{code}");
        }
    }
}
