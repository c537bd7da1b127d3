//! The versioned schema, the same tables in SQLite and PostgreSQL. Each backend records the
//! versions applied in `schema_version` and applies newer ones at start, in one transaction.
//!
//! Version 1 is the schema SQLite histories had before versioning (written with `IF NOT EXISTS`,
//! so an old file takes it as a no-op); version 2 adds the run's listener and the claims that
//! listeners sharing one database coordinate through.

/// Which SQL dialect to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// `(version, SQL)` in order.
pub fn migrations(d: Dialect) -> Vec<(i64, String)> {
    let (key, run_key, blob) = match d {
        Dialect::Sqlite => ("INTEGER PRIMARY KEY", "INTEGER PRIMARY KEY", "BLOB"),
        Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "BIGINT PRIMARY KEY", "BYTEA"),
    };
    let v1 = format!(
        "
CREATE TABLE IF NOT EXISTS knocks (
    id {key},
    at_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    door TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    run_id BIGINT
);
CREATE INDEX IF NOT EXISTS knocks_at ON knocks(at_ms);
CREATE INDEX IF NOT EXISTS knocks_source ON knocks(source, at_ms);
CREATE TABLE IF NOT EXISTS spa_nonces (
    nonce {blob} PRIMARY KEY,
    seen_unix BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id {run_key},
    host TEXT NOT NULL,
    door TEXT NOT NULL,
    status TEXT NOT NULL,
    queued_ms BIGINT NOT NULL,
    started_ms BIGINT,
    ended_ms BIGINT,
    ok BIGINT NOT NULL DEFAULT 0,
    changed BIGINT NOT NULL DEFAULT 0,
    unreachable BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    rescued BIGINT NOT NULL DEFAULT 0,
    ignored BIGINT NOT NULL DEFAULT 0,
    exit_code INTEGER,
    error TEXT,
    log_path TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_host ON runs(host, queued_ms);
"
    );
    let mut v2 = String::from(
        "
ALTER TABLE runs ADD COLUMN listener TEXT NOT NULL DEFAULT '';
ALTER TABLE spa_nonces ADD COLUMN listener TEXT NOT NULL DEFAULT '';
CREATE INDEX knocks_run ON knocks(run_id);
CREATE TABLE claims (
    host TEXT NOT NULL,
    door TEXT NOT NULL,
    listener TEXT NOT NULL,
    run_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    claimed_ms BIGINT NOT NULL,
    lease_until_ms BIGINT NOT NULL,
    PRIMARY KEY (host, door)
);
",
    );
    if d == Dialect::Postgres {
        // Run ids are handed out by each listener in memory (a run is numbered before its row is
        // written, also while the database is away); listeners take disjoint blocks of them.
        v2.push_str("CREATE SEQUENCE run_id_blocks MINVALUE 0 START 0;\n");
    }
    vec![(1, v1), (2, v2)]
}

/// `$1`/`?1` placeholders.
fn p(d: Dialect, n: usize) -> String {
    match d {
        Dialect::Sqlite => format!("?{n}"),
        Dialect::Postgres => format!("${n}"),
    }
}

/// Knocks at or after `1` (ms), of host `2` (or all when NULL), oldest first.
pub fn knocks_query(d: Dialect) -> String {
    let host = match d {
        Dialect::Sqlite => p(d, 2),
        Dialect::Postgres => "$2::TEXT".into(),
    };
    format!(
        "SELECT id, at_ms, source, door, outcome, detail, run_id FROM knocks
         WHERE at_ms >= {} AND ({host} IS NULL OR source = {host}) ORDER BY at_ms, id",
        p(d, 1)
    )
}

/// Runs active at or after `1` (ms), of host `2` (or all when NULL), oldest first.
pub fn runs_query(d: Dialect) -> String {
    let host = match d {
        Dialect::Sqlite => p(d, 2),
        Dialect::Postgres => "$2::TEXT".into(),
    };
    format!(
        "SELECT id, host, door, status, queued_ms, started_ms, ended_ms, ok, changed, unreachable,
                failed, skipped, rescued, ignored, exit_code, error, log_path, listener FROM runs
         WHERE COALESCE(ended_ms, started_ms, queued_ms) >= {} AND ({host} IS NULL OR host = {host})
         ORDER BY queued_ms, id",
        p(d, 1)
    )
}

/// A stored counter back to the recap's type (clamped: a count is never negative or huge).
pub fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}
