//! Knock detection: wire bytes → knock events → per-source sequence state → trigger.
//!
//! - `listener`  capture threads (own filtered `AF_PACKET` sockets), one per interface
//! - `wire`      checked views over captured frames → [`wire::Knock`]
//! - `sequence`  sans-IO tracker: `observe(knock, now)`
//! - `spa`       Single Packet Authorization: seal/open packets, `verify(packet, now, replay)`
//! - `trigger`   allowlist, per-host coalescing, cooldown, bounded pool → [`trigger::Launcher`]
//! - `service`   [`listen`]: wires them together (the detector thread: `service/detector.rs`);
//!   [`Control`] stops and reloads it (and routes
//!   SIGTERM/SIGINT/SIGHUP to itself through `crate::signals`)
//! - `client`    `knockplay knock` (a port sequence, or an SPA packet)
//! - `port`, `flags`  door syntax: knock ports and TCP flag rules

pub mod client;
pub mod flags;
pub mod listener;
pub mod port;
pub mod sequence;
pub mod service;
pub mod spa;
pub mod trigger;
pub mod wire;

pub use port::{PortSpec, Proto};
pub use service::{listen, Control, ListenError, ListenStats, ListenSummary};
pub use trigger::{Launcher, RunJob, RunOutcome};
