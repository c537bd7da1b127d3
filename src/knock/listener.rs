//! Capture threads: one per interface, raw packets in, knocks out.
