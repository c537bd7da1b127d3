//! Durable history of knocks and runs in SQLite.
//!
//! Every knock the listener decides on (accepted, coalesced, or why not) and every run (queued,
//! running, ok, failed, interrupted) lands here, so `knockplay history` can say what happened.
//! A run still `running` or `queued` when the listener starts was cut off: it is marked
//! `interrupted`.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::counters::RunCounts;
use crate::timefmt::{rfc3339_millis, unix_millis};

mod writer;
pub use writer::{HistoryWriter, WriterStats};

/// The database file inside `state_dir`.
pub const DB_FILE: &str = "history.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history database {path}: {source}")]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("history directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing history output: {0}")]
    Output(#[from] std::io::Error),
}

/// What became of a knock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KnockOutcome {
    /// Sequence complete, source allowed: a run was queued.
    Accepted,
    /// The host's run was already queued or running: folded into it or into one follow-up.
    Coalesced,
    WrongOrder,
    ExtraPort,
    TooSlow,
    /// Dropped from the attempt table under load (oldest first).
    Evicted,
    /// In progress when the configuration was reloaded.
    Reloaded,
    NotAllowed,
    Cooldown,
    QueueFull,
    ShuttingDown,
    /// A summary row: this many failed attempts were not recorded individually (rate limit).
    Suppressed,
    /// SPA: not a packet of this format and version.
    Malformed,
    /// SPA: no key of the door opens it.
    BadMac,
    /// SPA: its time is outside the door's window.
    Stale,
    /// SPA: its nonce was seen before.
    Replay,
}

impl KnockOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            KnockOutcome::Accepted => "accepted",
            KnockOutcome::Coalesced => "coalesced",
            KnockOutcome::WrongOrder => "wrong_order",
            KnockOutcome::ExtraPort => "extra_port",
            KnockOutcome::TooSlow => "too_slow",
            KnockOutcome::Evicted => "evicted",
            KnockOutcome::Reloaded => "reloaded",
            KnockOutcome::NotAllowed => "not_allowed",
            KnockOutcome::Cooldown => "cooldown",
            KnockOutcome::QueueFull => "queue_full",
            KnockOutcome::ShuttingDown => "shutting_down",
            KnockOutcome::Suppressed => "suppressed",
            KnockOutcome::Malformed => "malformed",
            KnockOutcome::BadMac => "bad_mac",
            KnockOutcome::Stale => "stale",
            KnockOutcome::Replay => "replay",
        }
    }
}

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Queued,
    Running,
    Ok,
    Failed,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// A knock to record.
#[derive(Debug, Clone)]
pub struct KnockRecord {
    pub at: SystemTime,
    pub source: IpAddr,
    pub door: String,
    pub outcome: KnockOutcome,
    pub detail: String,
    pub run_id: Option<i64>,
}

/// A knock row as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnockRow {
    pub id: i64,
    pub time: String,
    #[serde(skip)]
    pub at_ms: i64,
    pub source: String,
    pub door: String,
    pub result: String,
    pub detail: String,
    pub run_id: Option<i64>,
}

/// A run row as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub host: String,
    pub door: String,
    pub status: String,
    pub queued: String,
    pub started: Option<String>,
    pub ended: Option<String>,
    #[serde(flatten)]
    pub counts: RunCounts,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub log: String,
}

/// Which rows to show.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub host: Option<IpAddr>,
    /// Only rows newer than this long ago.
    pub since: Option<Duration>,
}

/// The history database. Cheap to share behind an `Arc`; calls serialize on one connection.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS knocks (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    door TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    run_id INTEGER
);
CREATE INDEX IF NOT EXISTS knocks_at ON knocks(at_ms);
CREATE INDEX IF NOT EXISTS knocks_source ON knocks(source, at_ms);
CREATE TABLE IF NOT EXISTS spa_nonces (
    nonce BLOB PRIMARY KEY,
    seen_unix INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    door TEXT NOT NULL,
    status TEXT NOT NULL,
    queued_ms INTEGER NOT NULL,
    started_ms INTEGER,
    ended_ms INTEGER,
    ok INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0,
    unreachable INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    rescued INTEGER NOT NULL DEFAULT 0,
    ignored INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    error TEXT,
    log_path TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS runs_host ON runs(host, queued_ms);
";

pub fn db_path(state_dir: &Path) -> PathBuf {
    state_dir.join(DB_FILE)
}

impl History {
    /// Opens (creating if needed) the database in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<History, HistoryError> {
        crate::private_fs::dir(state_dir).map_err(|source| HistoryError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        History::open_file(&db_path(state_dir))
    }

    pub fn open_file(path: &Path) -> Result<History, HistoryError> {
        let db = |source| HistoryError::Db {
            path: path.to_path_buf(),
            source,
        };
        // Created (or set) 0600 before SQLite opens it: its WAL and shared-memory files copy the
        // database file's permissions.
        if let Err(e) = crate::private_fs::append(path) {
            tracing::warn!("cannot make {} private: {e}", path.display());
        }
        let conn = Connection::open(path).map_err(db)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(db)?;
        // WAL: readers (`knockplay history`) never block the listener; NORMAL sync is durable
        // across process crashes, which is what `interrupted` bookkeeping needs.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(History {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, HistoryError> {
        // A poisoned lock only means another thread panicked mid-call; the connection is fine.
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|source| HistoryError::Db {
            path: self.path.clone(),
            source,
        })
    }

    /// Deletes knocks and finished runs recorded before `before`; returns how many rows went.
    pub fn prune(&self, before: SystemTime) -> Result<usize, HistoryError> {
        let ms = unix_millis(before);
        self.with(|c| {
            let knocks = c.execute("DELETE FROM knocks WHERE at_ms < ?1", params![ms])?;
            let runs = c.execute(
                "DELETE FROM runs WHERE queued_ms < ?1 AND status NOT IN ('queued', 'running')",
                params![ms],
            )?;
            Ok(knocks + runs)
        })
    }

    /// Marks runs left `queued` or `running` by a previous listener as `interrupted`.
    pub fn mark_interrupted(&self, at: SystemTime) -> Result<usize, HistoryError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = 'interrupted', ended_ms = COALESCE(ended_ms, ?1),
                    error = COALESCE(error, 'the listener stopped before this run finished')
                 WHERE status IN ('queued', 'running')",
                params![unix_millis(at)],
            )
        })
    }

    /// Remembers an accepted SPA packet's nonce (the replay cache that survives restarts); false
    /// when it was already there.
    pub fn spa_nonce_record(&self, nonce: &[u8; 16], seen_unix: u64) -> Result<bool, HistoryError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO spa_nonces (nonce, seen_unix) VALUES (?1, ?2)",
                params![nonce.as_slice(), seen_unix as i64],
            )?;
            Ok(n == 1)
        })
    }

    /// Nonces seen at or after `since` (unix seconds); older ones are deleted (a packet that old
    /// is stale anyway).
    pub fn spa_nonces_since(&self, since: u64) -> Result<Vec<([u8; 16], u64)>, HistoryError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM spa_nonces WHERE seen_unix < ?1",
                params![since as i64],
            )?;
            let mut stmt =
                c.prepare("SELECT nonce, seen_unix FROM spa_nonces ORDER BY seen_unix")?;
            let rows = stmt.query_map([], |r| {
                let b: Vec<u8> = r.get(0)?;
                let at: i64 = r.get(1)?;
                Ok((b, at))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (b, at) = row?;
                if let Ok(n) = <[u8; 16]>::try_from(b.as_slice()) {
                    out.push((n, at.max(0) as u64));
                }
            }
            Ok(out)
        })
    }

    pub fn record_knock(&self, k: &KnockRecord) -> Result<i64, HistoryError> {
        self.with(|c| insert_knock(c, k))
    }

    /// Records a run as queued; returns its id.
    pub fn run_queued(
        &self,
        host: IpAddr,
        door: &str,
        log_path: &Path,
        at: SystemTime,
    ) -> Result<i64, HistoryError> {
        self.with(|c| insert_run(c, None, host, door, log_path, at))
    }

    pub fn run_started(&self, id: i64, at: SystemTime) -> Result<(), HistoryError> {
        self.with(|c| update_started(c, id, at))
    }

    /// Records the end of a run. A run already marked `interrupted` (grace period passed) keeps
    /// that status. Returns whether the row was updated.
    pub fn run_finished(
        &self,
        id: i64,
        status: RunStatus,
        counts: &RunCounts,
        exit_code: Option<i32>,
        error: Option<&str>,
        at: SystemTime,
    ) -> Result<bool, HistoryError> {
        let end = RunEnd {
            status,
            counts: *counts,
            exit_code,
            error: error.map(str::to_string),
            at,
        };
        self.with(|c| update_finished(c, id, &end))
    }

    /// The largest run id so far (0 for none): the writer numbers new runs after it.
    pub fn max_run_id(&self) -> Result<i64, HistoryError> {
        self.with(|c| c.query_row("SELECT COALESCE(MAX(id), 0) FROM runs", [], |r| r.get(0)))
    }

    /// The status of one run.
    pub fn run_status(&self, id: i64) -> Result<Option<String>, HistoryError> {
        self.with(|c| {
            c.query_row("SELECT status FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .optional()
        })
    }

    /// Knocks and runs matching `q`, oldest first.
    pub fn query(
        &self,
        q: &Query,
        now: SystemTime,
    ) -> Result<(Vec<KnockRow>, Vec<RunRow>), HistoryError> {
        let since = q
            .since
            .map(|d| unix_millis(now) - d.as_millis() as i64)
            .unwrap_or(i64::MIN);
        let host = q.host.map(|h| h.to_string());
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, at_ms, source, door, outcome, detail, run_id FROM knocks
                 WHERE at_ms >= ?1 AND (?2 IS NULL OR source = ?2) ORDER BY at_ms, id",
            )?;
            let knocks = st
                .query_map(params![since, host], |r| {
                    let at_ms: i64 = r.get(1)?;
                    Ok(KnockRow {
                        id: r.get(0)?,
                        time: rfc3339_millis(at_ms),
                        at_ms,
                        source: r.get(2)?,
                        door: r.get(3)?,
                        result: r.get(4)?,
                        detail: r.get(5)?,
                        run_id: r.get(6)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut st = c.prepare(
                "SELECT id, host, door, status, queued_ms, started_ms, ended_ms, ok, changed, unreachable,
                        failed, skipped, rescued, ignored, exit_code, error, log_path FROM runs
                 WHERE COALESCE(ended_ms, started_ms, queued_ms) >= ?1 AND (?2 IS NULL OR host = ?2)
                 ORDER BY queued_ms, id",
            )?;
            let runs = st
                .query_map(params![since, host], |r| {
                    Ok(RunRow {
                        id: r.get(0)?,
                        host: r.get(1)?,
                        door: r.get(2)?,
                        status: r.get(3)?,
                        queued: rfc3339_millis(r.get(4)?),
                        started: r.get::<_, Option<i64>>(5)?.map(rfc3339_millis),
                        ended: r.get::<_, Option<i64>>(6)?.map(rfc3339_millis),
                        counts: RunCounts {
                            ok: r.get(7)?,
                            changed: r.get(8)?,
                            unreachable: r.get(9)?,
                            failed: r.get(10)?,
                            skipped: r.get(11)?,
                            rescued: r.get(12)?,
                            ignored: r.get(13)?,
                        },
                        exit_code: r.get(14)?,
                        error: r.get(15)?,
                        log: r.get(16)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((knocks, runs))
        })
    }
}

/// `knockplay history [--host IP] [--since DURATION] [--json]`: prints the history in `state_dir`.
/// How a run ended, for [`History::run_finished`] and the writer.
#[derive(Debug, Clone)]
pub struct RunEnd {
    pub status: RunStatus,
    pub counts: RunCounts,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub at: SystemTime,
}

fn insert_knock(c: &Connection, k: &KnockRecord) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO knocks (at_ms, source, door, outcome, detail, run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![unix_millis(k.at), k.source.to_string(), k.door, k.outcome.as_str(), k.detail, k.run_id],
    )?;
    Ok(c.last_insert_rowid())
}

/// Inserts a queued run, with the given id or a fresh one; returns the id.
fn insert_run(
    c: &Connection,
    id: Option<i64>,
    host: IpAddr,
    door: &str,
    log_path: &Path,
    at: SystemTime,
) -> rusqlite::Result<i64> {
    c.execute(
        "INSERT INTO runs (id, host, door, status, queued_ms, log_path) VALUES (?1, ?2, ?3, 'queued', ?4, ?5)",
        params![id, host.to_string(), door, unix_millis(at), log_path.to_string_lossy()],
    )?;
    Ok(c.last_insert_rowid())
}

fn update_started(c: &Connection, id: i64, at: SystemTime) -> rusqlite::Result<()> {
    c.execute(
        "UPDATE runs SET status = 'running', started_ms = ?2 WHERE id = ?1 AND status = 'queued'",
        params![id, unix_millis(at)],
    )
    .map(drop)
}

fn update_finished(c: &Connection, id: i64, e: &RunEnd) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE runs SET status = ?2, ended_ms = ?3, ok = ?4, changed = ?5, unreachable = ?6,
            failed = ?7, skipped = ?8, rescued = ?9, ignored = ?10, exit_code = ?11, error = ?12
         WHERE id = ?1 AND status IN ('queued', 'running')",
        params![
            id,
            e.status.as_str(),
            unix_millis(e.at),
            e.counts.ok,
            e.counts.changed,
            e.counts.unreachable,
            e.counts.failed,
            e.counts.skipped,
            e.counts.rescued,
            e.counts.ignored,
            e.exit_code,
            e.error
        ],
    )?;
    Ok(n > 0)
}

pub fn print(
    state_dir: &Path,
    q: &Query,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), HistoryError> {
    let path = db_path(state_dir);
    if !path.exists() {
        return Err(HistoryError::Dir {
            path: path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no history yet (has the listener run?)",
            ),
        });
    }
    let h = History::open_file(&path)?;
    let (knocks, runs) = h.query(q, SystemTime::now())?;
    if json {
        let v = serde_json::json!({ "knocks": knocks, "runs": runs });
        serde_json::to_writer_pretty(&mut *out, &v).map_err(std::io::Error::from)?;
        writeln!(out)?;
    } else {
        write_text(&knocks, &runs, out)?;
    }
    Ok(())
}

fn write_text(knocks: &[KnockRow], runs: &[RunRow], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "KNOCKS ({})", knocks.len())?;
    writeln!(
        out,
        "{:<24}  {:<39}  {:<16}  {:<13}  DETAIL",
        "TIME", "SOURCE", "DOOR", "RESULT"
    )?;
    for k in knocks {
        let mut detail = k.detail.clone();
        if let Some(id) = k.run_id {
            detail = if detail.is_empty() {
                format!("run {id}")
            } else {
                format!("{detail} (run {id})")
            };
        }
        writeln!(
            out,
            "{:<24}  {:<39}  {:<16}  {:<13}  {}",
            k.time, k.source, k.door, k.result, detail
        )?;
    }
    writeln!(out)?;
    writeln!(out, "RUNS ({})", runs.len())?;
    writeln!(
        out,
        "{:>5}  {:<39}  {:<16}  {:<11}  {:<24}  {:<24}  {:<58}  {:>4}  LOG",
        "ID", "HOST", "DOOR", "STATUS", "STARTED", "ENDED", "RESULT", "EXIT"
    )?;
    for r in runs {
        let counts = r.counts.to_string();
        let started = r
            .started
            .clone()
            .unwrap_or_else(|| format!("(queued {})", &r.queued));
        let exit = r
            .exit_code
            .map(|e| e.to_string())
            .unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{:>5}  {:<39}  {:<16}  {:<11}  {:<24}  {:<24}  {:<58}  {:>4}  {}",
            r.id,
            r.host,
            r.door,
            r.status,
            started,
            r.ended.clone().unwrap_or_else(|| "-".into()),
            counts,
            exit,
            r.log
        )?;
        if let Some(e) = &r.error {
            writeln!(out, "       error: {e}")?;
        }
    }
    Ok(())
}

/// Parses `--since` values: `90s`, `15m`, `2h`, `7d`, `1w`, or a bare number of seconds.
pub fn parse_since(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 30m, 2h or 7d"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{s}' (use s, m, h, d or w)"
            ))
        }
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{s}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn pruning_keeps_recent_rows_and_runs_in_progress_and_the_replay_cache_survives() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let host: IpAddr = "10.232.0.9".parse().unwrap();
        let log = dir.path().join("x.log");
        let knock = |t: u64| KnockRecord {
            at: at(t),
            source: host,
            door: "d".into(),
            outcome: KnockOutcome::Accepted,
            detail: String::new(),
            run_id: None,
        };
        h.record_knock(&knock(100)).unwrap();
        h.record_knock(&knock(5_000)).unwrap();
        let old_done = h.run_queued(host, "d", &log, at(100)).unwrap();
        h.run_finished(
            old_done,
            RunStatus::Ok,
            &RunCounts::default(),
            Some(0),
            None,
            at(150),
        )
        .unwrap();
        let old_running = h.run_queued(host, "d", &log, at(120)).unwrap();
        h.run_started(old_running, at(121)).unwrap();
        let recent = h.run_queued(host, "d", &log, at(5_000)).unwrap();
        assert_eq!(h.prune(at(1_000)).unwrap(), 2);
        let ids: Vec<i64> = h
            .with(|c| {
                let mut st = c.prepare("SELECT id FROM runs ORDER BY id")?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect()
            })
            .unwrap();
        assert_eq!(ids, vec![old_running, recent]);
        assert!(h.spa_nonce_record(&[1; 16], 5_000).unwrap());
        assert!(!h.spa_nonce_record(&[1; 16], 5_001).unwrap());
        assert_eq!(h.spa_nonces_since(4_000).unwrap(), vec![([1; 16], 5_000)]);
        assert!(
            h.spa_nonces_since(6_000).unwrap().is_empty(),
            "older nonces are dropped"
        );
    }

    #[test]
    fn parses_since() {
        assert_eq!(parse_since("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_since("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_since("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_since("7d"), Ok(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_since("30"), Ok(Duration::from_secs(30)));
        assert!(parse_since("2y").unwrap_err().contains("unknown unit 'y'"));
        assert!(parse_since("soon").is_err());
    }

    #[test]
    fn the_state_directory_and_database_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        let h = History::open(&state).unwrap();
        h.record_knock(&KnockRecord {
            at: at(1_700_000_000),
            source: "10.0.0.1".parse().unwrap(),
            door: "d".into(),
            outcome: KnockOutcome::Accepted,
            detail: String::new(),
            run_id: None,
        })
        .unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        for entry in std::fs::read_dir(&state).unwrap() {
            let p = entry.unwrap().path();
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }

    #[test]
    fn records_knocks_and_runs_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let h = History::open(dir.path()).unwrap();
        let host: IpAddr = "10.232.0.7".parse().unwrap();
        let other: IpAddr = "10.232.0.8".parse().unwrap();
        let log = dir.path().join("10.232.0.7.log");
        let run = h.run_queued(host, "base", &log, at(1000)).unwrap();
        h.record_knock(&KnockRecord {
            at: at(1000),
            source: host,
            door: "base".into(),
            outcome: KnockOutcome::Accepted,
            detail: String::new(),
            run_id: Some(run),
        })
        .unwrap();
        h.record_knock(&KnockRecord {
            at: at(1001),
            source: other,
            door: "base".into(),
            outcome: KnockOutcome::WrongOrder,
            detail: "9000/tcp at stage 1".into(),
            run_id: None,
        })
        .unwrap();
        h.run_started(run, at(1001)).unwrap();
        let done = h.run_queued(other, "base", &log, at(1002)).unwrap();
        h.run_started(done, at(1002)).unwrap();
        let counts = RunCounts {
            ok: 5,
            changed: 2,
            ..Default::default()
        };
        assert!(h
            .run_finished(done, RunStatus::Ok, &counts, Some(0), None, at(1010))
            .unwrap());
        drop(h);

        // The listener died with `run` still running: the next start marks it interrupted.
        let h = History::open(dir.path()).unwrap();
        assert_eq!(h.mark_interrupted(at(2000)).unwrap(), 1);
        assert_eq!(h.run_status(run).unwrap().as_deref(), Some("interrupted"));
        assert_eq!(h.run_status(done).unwrap().as_deref(), Some("ok"));
        // A late finish does not overwrite `interrupted`.
        assert!(!h
            .run_finished(run, RunStatus::Ok, &counts, Some(0), None, at(2001))
            .unwrap());

        let (knocks, runs) = h
            .query(
                &Query {
                    host: Some(other),
                    since: None,
                },
                at(3000),
            )
            .unwrap();
        assert_eq!(knocks.len(), 1);
        assert_eq!(knocks[0].result, "wrong_order");
        assert_eq!(runs.len(), 1);
        assert_eq!(
            (runs[0].counts.ok, runs[0].counts.changed, runs[0].exit_code),
            (5, 2, Some(0))
        );

        let (knocks, runs) = h
            .query(
                &Query {
                    host: None,
                    since: Some(Duration::from_secs(1500)),
                },
                at(3000),
            )
            .unwrap();
        assert_eq!(knocks.len(), 0);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].status, "interrupted");

        let mut text = Vec::new();
        print(dir.path(), &Query::default(), false, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("KNOCKS (2)"), "{text}");
        assert!(text.contains("accepted       run 1"), "{text}");
        assert!(text.contains("interrupted"), "{text}");
        assert!(text.contains("ok=5 changed=2"), "{text}");

        let mut json = Vec::new();
        print(
            dir.path(),
            &Query {
                host: Some(host),
                since: None,
            },
            true,
            &mut json,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["knocks"][0]["result"], "accepted");
        assert_eq!(v["knocks"][0]["run_id"], 1);
        assert_eq!(v["runs"][0]["status"], "interrupted");
        assert_eq!(v["runs"][0]["log"], log.to_string_lossy().as_ref());
    }

    #[test]
    fn print_without_a_database_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = print(dir.path(), &Query::default(), false, &mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("no history yet"), "{e}");
    }
}
