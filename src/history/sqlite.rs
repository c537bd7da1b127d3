//! The SQLite history backend: one file, one connection, for a single listener (the default).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::ops::Op;
use super::schema::{self, Dialect};
use super::store::{Applied, Store};
use super::{HistoryError, KnockRecord, KnockRow, RunEnd, RunRow};
use crate::counters::RunCounts;
use crate::timefmt::{rfc3339_millis, unix_millis};

#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, HistoryError> {
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
        migrate(&conn).map_err(db)?;
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
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

    /// Holds the connection (tests: the writer cannot write meanwhile).
    #[cfg(test)]
    pub fn hold(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Applies every migration newer than the file's `schema_version`, in one transaction.
fn migrate(c: &Connection) -> rusqlite::Result<()> {
    c.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let tx = c.unchecked_transaction()?;
    let have: i64 = tx.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        [],
        |r| r.get(0),
    )?;
    for (version, sql) in schema::migrations(Dialect::Sqlite) {
        if version > have {
            tx.execute_batch(&sql)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [version],
            )?;
        }
    }
    tx.commit()
}

impl Store for SqliteStore {
    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn prune(&self, before_ms: i64) -> Result<usize, HistoryError> {
        self.with(|c| {
            let knocks = c.execute("DELETE FROM knocks WHERE at_ms < ?1", params![before_ms])?;
            let runs = c.execute(
                "DELETE FROM runs WHERE queued_ms < ?1 AND status NOT IN ('queued', 'running')",
                params![before_ms],
            )?;
            Ok(knocks + runs)
        })
    }

    fn mark_interrupted(&self, at_ms: i64) -> Result<usize, HistoryError> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = 'interrupted', ended_ms = COALESCE(ended_ms, ?1),
                    error = COALESCE(error, 'the listener stopped before this run finished')
                 WHERE status IN ('queued', 'running')",
                params![at_ms],
            )
        })
    }

    fn spa_nonce_record(&self, nonce: &[u8; 16], seen_unix: i64) -> Result<bool, HistoryError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO spa_nonces (nonce, seen_unix) VALUES (?1, ?2)",
                params![nonce.as_slice(), seen_unix],
            )?;
            Ok(n == 1)
        })
    }

    fn spa_nonces_since(&self, since: i64) -> Result<Vec<(Vec<u8>, i64)>, HistoryError> {
        self.with(|c| {
            c.execute(
                "DELETE FROM spa_nonces WHERE seen_unix < ?1",
                params![since],
            )?;
            let mut stmt =
                c.prepare("SELECT nonce, seen_unix FROM spa_nonces ORDER BY seen_unix")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    fn apply(&self, ops: &[Op]) -> Result<Applied, HistoryError> {
        self.with(|c| {
            let tx = c.unchecked_transaction()?;
            let mut out = Applied::default();
            for op in ops {
                match apply_one(&tx, op) {
                    Ok(changed) => out.push_ok(changed),
                    Err(e) => out.push_err(e.to_string()),
                }
            }
            tx.commit()?;
            Ok(out)
        })
    }

    fn next_free_run_id(&self) -> Result<i64, HistoryError> {
        self.with(|c| {
            c.query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM runs", [], |r| {
                r.get(0)
            })
        })
    }

    fn run_status(&self, id: i64) -> Result<Option<String>, HistoryError> {
        self.with(|c| {
            c.query_row("SELECT status FROM runs WHERE id = ?1", [id], |r| r.get(0))
                .optional()
        })
    }

    fn query(
        &self,
        since_ms: i64,
        host: Option<String>,
    ) -> Result<(Vec<KnockRow>, Vec<RunRow>), HistoryError> {
        self.with(|c| {
            let mut st = c.prepare(&schema::knocks_query(Dialect::Sqlite))?;
            let knocks = st
                .query_map(params![since_ms, host], |r| {
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
            let mut st = c.prepare(&schema::runs_query(Dialect::Sqlite))?;
            let runs = st
                .query_map(params![since_ms, host], |r| {
                    let count = |i| r.get::<_, i64>(i).map(schema::count);
                    Ok(RunRow {
                        id: r.get(0)?,
                        host: r.get(1)?,
                        door: r.get(2)?,
                        status: r.get(3)?,
                        queued: rfc3339_millis(r.get(4)?),
                        started: r.get::<_, Option<i64>>(5)?.map(rfc3339_millis),
                        ended: r.get::<_, Option<i64>>(6)?.map(rfc3339_millis),
                        counts: RunCounts {
                            ok: count(7)?,
                            changed: count(8)?,
                            unreachable: count(9)?,
                            failed: count(10)?,
                            skipped: count(11)?,
                            rescued: count(12)?,
                            ignored: count(13)?,
                        },
                        exit_code: r.get(14)?,
                        error: r.get(15)?,
                        log: r.get(16)?,
                        listener: r.get(17)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((knocks, runs))
        })
    }
}

fn apply_one(c: &Connection, op: &Op) -> rusqlite::Result<bool> {
    let n = match op {
        Op::Knock(k) => insert_knock(c, k)?,
        Op::Queued {
            id,
            host,
            door,
            log_path,
            at,
        } => c.execute(
            "INSERT INTO runs (id, host, door, status, queued_ms, log_path) VALUES (?1, ?2, ?3, 'queued', ?4, ?5)
             ON CONFLICT (id) DO NOTHING",
            params![id, host.to_string(), door, unix_millis(*at), log_path.to_string_lossy()],
        )?,
        Op::Started { id, at } => c.execute(
            "UPDATE runs SET status = 'running', started_ms = ?2 WHERE id = ?1 AND status = 'queued'",
            params![id, unix_millis(*at)],
        )?,
        Op::Finished { id, end } => update_finished(c, *id, end)?,
        Op::ClaimedElsewhere {
            id,
            outcome,
            detail,
            other_run,
        } => {
            c.execute(
                "UPDATE knocks SET outcome = ?2, detail = ?3, run_id = ?4 WHERE run_id = ?1",
                params![id, outcome.as_str(), detail, other_run],
            )?;
            c.execute("DELETE FROM runs WHERE id = ?1", [id])?
        }
    };
    Ok(n > 0)
}

fn insert_knock(c: &Connection, k: &KnockRecord) -> rusqlite::Result<usize> {
    c.execute(
        "INSERT INTO knocks (at_ms, source, door, outcome, detail, run_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![unix_millis(k.at), k.source.to_string(), k.door, k.outcome.as_str(), k.detail, k.run_id],
    )
}

fn update_finished(c: &Connection, id: i64, e: &RunEnd) -> rusqlite::Result<usize> {
    c.execute(
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
    )
}
