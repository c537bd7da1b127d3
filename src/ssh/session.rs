//! One SSH session per host: connect, authenticate, check host keys, run commands.

/// Connection parameters for one host.
#[derive(Debug, Clone)]
pub struct ConnectOptions {}

/// A live SSH session, owned by one thread.
pub struct HostSession {}
