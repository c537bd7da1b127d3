//! Knock ports: a protocol (`tcp`/`udp`) and a port number, parsed from `9000/tcp`-style specs.

use std::fmt;
use std::str::FromStr;

/// The transport protocol of a knock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// The IP protocol number (6 or 17).
    pub fn ip_number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One step of a knock sequence: `port/proto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortSpec {
    pub port: u16,
    pub proto: Proto,
}

impl PortSpec {
    pub fn tcp(port: u16) -> Self {
        PortSpec {
            port,
            proto: Proto::Tcp,
        }
    }
    pub fn udp(port: u16) -> Self {
        PortSpec {
            port,
            proto: Proto::Udp,
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto.as_str())
    }
}

/// Why a port spec did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortSpecError {
    #[error("port {0} out of range (1-65535)")]
    OutOfRange(i64),
    #[error("'{0}' is not a port number")]
    NotANumber(String),
    #[error("unknown protocol '{0}' (expected tcp or udp)")]
    UnknownProto(String),
}

impl PortSpec {
    /// Validates a numeric port (1–65535) with a protocol.
    pub fn from_number(port: i64, proto: Proto) -> Result<Self, PortSpecError> {
        if !(1..=65535).contains(&port) {
            return Err(PortSpecError::OutOfRange(port));
        }
        Ok(PortSpec {
            port: port as u16,
            proto,
        })
    }
}

impl FromStr for PortSpec {
    type Err = PortSpecError;

    /// `9000`, `9000/tcp`, `9000/udp` (a bare port is TCP, like knockd's `knock` client).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (num, proto) = match s.split_once(['/', ':']) {
            Some((n, p)) => (n, p),
            None => (s, "tcp"),
        };
        let proto = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => return Err(PortSpecError::UnknownProto(other.to_string())),
        };
        let port: i64 = num
            .parse()
            .map_err(|_| PortSpecError::NotANumber(num.to_string()))?;
        PortSpec::from_number(port, proto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_knock_client_syntax() {
        assert_eq!("9000".parse(), Ok(PortSpec::tcp(9000)));
        assert_eq!("9000/tcp".parse(), Ok(PortSpec::tcp(9000)));
        assert_eq!("53/UDP".parse(), Ok(PortSpec::udp(53)));
        assert_eq!("53:udp".parse(), Ok(PortSpec::udp(53)));
        assert_eq!(
            "0/tcp".parse::<PortSpec>(),
            Err(PortSpecError::OutOfRange(0))
        );
        assert_eq!(
            "70000".parse::<PortSpec>(),
            Err(PortSpecError::OutOfRange(70000))
        );
        assert_eq!(
            "9000/sctp".parse::<PortSpec>(),
            Err(PortSpecError::UnknownProto("sctp".into()))
        );
        assert!(matches!(
            "x/tcp".parse::<PortSpec>(),
            Err(PortSpecError::NotANumber(_))
        ));
        assert_eq!(PortSpec::udp(7).to_string(), "7/udp");
    }
}
