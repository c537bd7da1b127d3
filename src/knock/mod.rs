//! Knock detection: wire bytes → knock events → per-source sequence state → trigger.

pub mod client;
pub mod listener;
pub mod sequence;
pub mod trigger;
pub mod wire;
