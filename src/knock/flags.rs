//! knockd-style TCP flag rules (`syn,!ack`): which flags must be set and which must be clear.

use std::fmt;
use std::str::FromStr;

use super::wire::tcp_flags::*;

const NAMES: [(&str, u8); 6] = [
    ("fin", FIN),
    ("syn", SYN),
    ("rst", RST),
    ("psh", PSH),
    ("ack", ACK),
    ("urg", URG),
];

/// A TCP packet counts as a knock only if all `set` flags are on and all `clear` flags are off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TcpFlagRule {
    pub set: u8,
    pub clear: u8,
}

impl Default for TcpFlagRule {
    /// `syn,!ack`: a connection attempt, not a reply or a scan's ACK probe.
    fn default() -> Self {
        TcpFlagRule {
            set: SYN,
            clear: ACK,
        }
    }
}

impl TcpFlagRule {
    pub fn matches(&self, flags: u8) -> bool {
        flags & self.set == self.set && flags & self.clear == 0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagRuleError {
    #[error("unknown TCP flag '{0}' (expected fin, syn, rst, psh, ack, urg, optionally prefixed with !)")]
    Unknown(String),
    #[error("TCP flag '{0}' is both required and forbidden")]
    Contradiction(String),
}

impl FromStr for TcpFlagRule {
    type Err = FlagRuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut rule = TcpFlagRule { set: 0, clear: 0 };
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (negated, name) = match item.strip_prefix('!') {
                Some(n) => (true, n.trim()),
                None => (false, item),
            };
            let lower = name.to_ascii_lowercase();
            let bit = NAMES
                .iter()
                .find(|(n, _)| *n == lower)
                .map(|(_, b)| *b)
                .ok_or_else(|| FlagRuleError::Unknown(item.to_string()))?;
            if negated {
                rule.clear |= bit;
            } else {
                rule.set |= bit;
            }
            if rule.set & rule.clear != 0 {
                return Err(FlagRuleError::Contradiction(lower));
            }
        }
        Ok(rule)
    }
}

impl fmt::Display for TcpFlagRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (name, bit) in NAMES {
            if self.set & bit != 0 {
                parts.push(name.to_string());
            }
            if self.clear & bit != 0 {
                parts.push(format!("!{name}"));
            }
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_accepts_syn_only() {
        let r = TcpFlagRule::default();
        assert_eq!("syn,!ack".parse::<TcpFlagRule>().unwrap(), r);
        assert!(r.matches(SYN));
        assert!(r.matches(SYN | PSH));
        assert!(!r.matches(SYN | ACK));
        assert!(!r.matches(RST));
        assert_eq!(r.to_string(), "syn,!ack");
    }

    #[test]
    fn rejects_unknown_and_contradictory_flags() {
        assert_eq!(
            "syn,!foo".parse::<TcpFlagRule>(),
            Err(FlagRuleError::Unknown("!foo".into()))
        );
        assert_eq!(
            "syn,!SYN".parse::<TcpFlagRule>(),
            Err(FlagRuleError::Contradiction("syn".into()))
        );
        assert_eq!(
            "".parse::<TcpFlagRule>().unwrap(),
            TcpFlagRule { set: 0, clear: 0 }
        );
    }
}
