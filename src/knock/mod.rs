//! Knock detection: wire bytes → knock events → per-source sequence state → trigger.

pub mod client;
pub mod flags;
pub mod listener;
pub mod port;
pub mod sequence;
pub mod trigger;
pub mod wire;

pub use port::{PortSpec, Proto};
