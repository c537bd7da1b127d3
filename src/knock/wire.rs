//! Checked zero-copy views over captured frames (Ethernet/IPv4/IPv6/TCP/UDP) → Knock values. Never panics.
