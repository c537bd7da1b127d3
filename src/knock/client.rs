//! `knockplay knock`: sends the same packets as knockd's `knock` client.
