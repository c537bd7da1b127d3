//! Durable history of knocks and runs, in SQLite (the default, one listener) or PostgreSQL
//! (listeners sharing one database).
//!
//! Every knock the listener decides on (accepted, coalesced, or why not) and every run (queued,
//! running, ok, failed, interrupted) lands here, so `knockplay history` can say what happened.
//! A run still `running` or `queued` when the listener starts was cut off: it is marked
//! `interrupted`.
//!
//! - this file: the records, [`History`] (one [`store::Store`] behind it), `knockplay history`
//! - `url`: `[history] url`; `schema`: the versioned tables; `sqlite`/`postgres`: the backends
//! - `ops`: writes as values; `writer`: the thread that batches them; `spool`: where they wait
//!   while the database is away

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::counters::RunCounts;
use crate::timefmt::unix_millis;

mod ops;
mod postgres;
mod schema;
mod spool;
mod sqlite;
mod store;
mod url;
mod writer;
pub use store::Claim;
pub use url::HistoryUrl;
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
    /// PostgreSQL (the URL has no password: it is never written in one).
    #[error("history database {url}: {message}")]
    Remote { url: String, message: String },
    #[error("history directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing history output: {0}")]
    Output(#[from] std::io::Error),
}

/// What became of a knock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Another listener sharing the database had already claimed this host's run.
    ClaimedElsewhere,
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
            KnockOutcome::ClaimedElsewhere => "claimed_elsewhere",
        }
    }
}

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// The listener that ran it (empty with SQLite).
    pub listener: String,
}

/// Which rows to show.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub host: Option<IpAddr>,
    /// Only rows newer than this long ago.
    pub since: Option<Duration>,
}

/// How the listener's history is set up (`[history]` in knock.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySettings {
    pub url: HistoryUrl,
    /// How long a claim lives without renewal (shared database only).
    pub lease: Duration,
    /// This listener's name in claims and runs (shared database only).
    pub listener_id: String,
    /// History rows kept in the local spool at most while the database is away.
    pub spool_limit: usize,
}

impl HistorySettings {
    /// The defaults for a listener whose state lives in `state_dir`.
    pub fn default_for(state_dir: &Path) -> HistorySettings {
        HistorySettings {
            url: HistoryUrl::default_for(state_dir),
            lease: Duration::from_secs(30),
            listener_id: default_listener_id(),
            spool_limit: 100_000,
        }
    }
}

/// The machine's host name (or "knockplay").
pub fn default_listener_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "knockplay".into())
}

/// The history's state, cheap to read (for metrics and `/healthz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryHealth {
    /// "sqlite" or "postgres".
    pub backend: &'static str,
    /// The database answered the last time it was asked.
    pub db_up: bool,
    /// Rows waiting in the local spool for the database.
    pub spool_rows: usize,
    /// Rows the database refused, plus rows dropped from a full spool.
    pub write_errors: u64,
}

/// The history database. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct History {
    store: Box<dyn store::Store>,
    /// Where the spool file goes (the listener's `state_dir`), if this history has one.
    spool_dir: Option<PathBuf>,
    spool_limit: usize,
    spool_rows: AtomicUsize,
    write_errors: AtomicU64,
}

pub fn db_path(state_dir: &Path) -> PathBuf {
    state_dir.join(DB_FILE)
}

impl History {
    /// Opens (creating if needed) the SQLite database in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<History, HistoryError> {
        crate::private_fs::dir(state_dir).map_err(|source| HistoryError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        History::open_file(&db_path(state_dir))
    }

    pub fn open_file(path: &Path) -> Result<History, HistoryError> {
        Ok(History::with_store(Box::new(sqlite::SqliteStore::open(
            path,
        )?)))
    }

    fn with_store(store: Box<dyn store::Store>) -> History {
        History {
            store,
            spool_dir: None,
            spool_limit: 0,
            spool_rows: AtomicUsize::new(0),
            write_errors: AtomicU64::new(0),
        }
    }

    /// Opens the listener's history as configured: a PostgreSQL database that cannot be reached
    /// yet does not stop the listener (rows wait in the spool in `state_dir`).
    pub fn open_for_listener(
        settings: &HistorySettings,
        state_dir: &Path,
    ) -> Result<History, HistoryError> {
        crate::private_fs::dir(state_dir).map_err(|source| HistoryError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let store: Box<dyn store::Store> = match &settings.url {
            HistoryUrl::Sqlite(p) => Box::new(sqlite::SqliteStore::open(p)?),
            HistoryUrl::Postgres(u) => Box::new(postgres::PgStore::open(
                u,
                &settings.listener_id,
                settings.lease,
                false,
            )?),
        };
        tracing::info!(backend = store.backend(), url = %settings.url, "history");
        let mut h = History::with_store(store);
        h.spool_dir = Some(state_dir.to_path_buf());
        h.spool_limit = settings.spool_limit.max(1);
        Ok(h)
    }

    /// Opens a history to read (`knockplay history`): the database must be there.
    pub fn open_url(url: &HistoryUrl) -> Result<History, HistoryError> {
        match url {
            HistoryUrl::Sqlite(p) => {
                if !p.exists() {
                    return Err(HistoryError::Dir {
                        path: p.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "no history yet (has the listener run?)",
                        ),
                    });
                }
                History::open_file(p)
            }
            HistoryUrl::Postgres(u) => Ok(History::with_store(Box::new(postgres::PgStore::open(
                u,
                "reader",
                Duration::from_secs(30),
                true,
            )?))),
        }
    }

    /// Holds the SQLite connection (tests: the writer cannot write meanwhile).
    #[cfg(test)]
    pub fn hold_sqlite(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        match self.store.as_any().downcast_ref::<sqlite::SqliteStore>() {
            Some(s) => s.hold(),
            None => panic!("not a SQLite history"),
        }
    }

    /// The database file or URL (never with a password).
    pub fn location(&self) -> String {
        self.store.location()
    }

    pub fn health(&self) -> HistoryHealth {
        HistoryHealth {
            backend: self.store.backend(),
            db_up: self.store.up(),
            spool_rows: self.spool_rows.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }

    /// Deletes knocks and finished runs recorded before `before`; returns how many rows went.
    pub fn prune(&self, before: SystemTime) -> Result<usize, HistoryError> {
        self.store.prune(unix_millis(before))
    }

    /// Marks runs left `queued` or `running` by a previous listener as `interrupted` (shared:
    /// this listener's, and those whose claim expired).
    pub fn mark_interrupted(&self, at: SystemTime) -> Result<usize, HistoryError> {
        self.store.mark_interrupted(unix_millis(at))
    }

    /// Remembers an accepted SPA packet's nonce (the replay cache that survives restarts, shared
    /// by listeners on one database); false when it was already there.
    pub fn spa_nonce_record(&self, nonce: &[u8; 16], seen_unix: u64) -> Result<bool, HistoryError> {
        self.store
            .spa_nonce_record(nonce, i64::try_from(seen_unix).unwrap_or(i64::MAX))
    }

    /// The other listener that recorded `nonce` within the last few seconds before `now_unix`
    /// (the same packet, seen by both), if another did. Later, the same nonce is a replay.
    pub fn spa_nonce_owner(
        &self,
        nonce: &[u8; 16],
        now_unix: u64,
    ) -> Result<Option<String>, HistoryError> {
        let since = i64::try_from(now_unix).unwrap_or(i64::MAX) - 2;
        self.store.spa_nonce_owner(nonce, since)
    }

    /// Nonces seen at or after `since` (unix seconds); older ones are deleted (a packet that old
    /// is stale anyway).
    pub fn spa_nonces_since(&self, since: u64) -> Result<Vec<([u8; 16], u64)>, HistoryError> {
        let rows = self
            .store
            .spa_nonces_since(i64::try_from(since).unwrap_or(i64::MAX))?;
        Ok(rows
            .into_iter()
            .filter_map(|(b, at)| {
                let n = <[u8; 16]>::try_from(b.as_slice()).ok()?;
                Some((n, at.max(0) as u64))
            })
            .collect())
    }

    fn apply_one(&self, op: ops::Op) -> Result<bool, HistoryError> {
        let applied = self.store.apply(std::slice::from_ref(&op))?;
        match applied.results.into_iter().next() {
            Some(Ok(changed)) => Ok(changed),
            Some(Err(message)) => Err(HistoryError::Remote {
                url: self.location(),
                message,
            }),
            None => Ok(false),
        }
    }

    pub fn record_knock(&self, k: &KnockRecord) -> Result<(), HistoryError> {
        self.apply_one(ops::Op::Knock(k.clone())).map(drop)
    }

    /// Records a run as queued; returns its id.
    pub fn run_queued(
        &self,
        host: IpAddr,
        door: &str,
        log_path: &Path,
        at: SystemTime,
    ) -> Result<i64, HistoryError> {
        let id = self.store.next_free_run_id()?;
        self.apply_one(ops::Op::Queued {
            id,
            host,
            door: door.to_string(),
            log_path: log_path.to_path_buf(),
            at,
        })?;
        Ok(id)
    }

    pub fn run_started(&self, id: i64, at: SystemTime) -> Result<(), HistoryError> {
        self.apply_one(ops::Op::Started { id, at }).map(drop)
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
        self.apply_one(ops::Op::Finished { id, end })
    }

    /// The first run id this listener may hand out (alone, also with a shared database).
    pub fn reserve_run_ids(&self) -> Result<i64, HistoryError> {
        self.store.reserve_run_ids()
    }

    /// The status of one run.
    pub fn run_status(&self, id: i64) -> Result<Option<String>, HistoryError> {
        self.store.run_status(id)
    }

    /// Claims the host's run on `door` (listeners sharing a database; always granted otherwise).
    pub fn claim(&self, host: IpAddr, door: &str, run_id: i64, knocked: SystemTime) -> Claim {
        self.store.claim(host, door, run_id, knocked)
    }

    /// The run ended: its claim stays for the `cooldown` (after a success) or is released.
    pub fn release(&self, host: IpAddr, door: &str, run_id: i64, cooldown: Duration) {
        self.store.release(host, door, run_id, cooldown)
    }

    /// Renews this listener's claims every third of `lease` while the history lives, and marks
    /// runs of listeners that stopped renewing theirs `interrupted`. Nothing for SQLite.
    pub fn keep_leases(self: &Arc<Self>, lease: Duration) {
        if self.store.backend() != "postgres" {
            return;
        }
        let weak = Arc::downgrade(self);
        let every = (lease / 3).max(Duration::from_millis(200));
        let spawned = std::thread::Builder::new()
            .name("knockplay-lease".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                match weak.upgrade() {
                    Some(h) => h.store.keep_leases(),
                    None => return,
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the claim renewer: {e}; claims expire during runs");
        }
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
        self.store.query(since, q.host.map(|h| h.to_string()))
    }
}

/// How a run ended, for [`History::run_finished`] and the writer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunEnd {
    pub status: RunStatus,
    pub counts: RunCounts,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub at: SystemTime,
}

/// `knockplay history [--host IP] [--since DURATION] [--json]`: prints the history at `url`.
pub fn print(
    url: &HistoryUrl,
    q: &Query,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), HistoryError> {
    let h = History::open_url(url)?;
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
mod tests;
