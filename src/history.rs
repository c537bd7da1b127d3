//! Durable history of knocks and runs in SQLite.
