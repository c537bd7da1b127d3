//! The PostgreSQL history backend: one database shared by several listeners.
//!
//! Every call has a deadline: connecting (`connect_timeout`, TCP user timeout) and each statement
//! (`statement_timeout`, `lock_timeout`), so an unreachable or stuck database never hangs the
//! listener or a run. After a failed connection attempt the next one waits (backoff); calls in
//! between fail at once, so a dead database costs a run nothing. Up/down transitions are logged
//! once each.
//!
//! Claims (table `claims`, one row per host and door) make a knock seen by several listeners run
//! once: see [`PgStore::claim`].

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use postgres::{Client, Transaction};
use postgres_openssl::MakeTlsConnector;

use super::ops::Op;
use super::schema::{self, Dialect};
use super::store::{Applied, Claim, Store};
use super::url::{password_for, PgUrl};
use super::{HistoryError, KnockRow, RunRow};
use crate::counters::RunCounts;
use crate::timefmt::{rfc3339_millis, unix_millis};

/// The longest a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest one statement may run (server side), and unacknowledged data may wait (client).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Backoff between connection attempts while the database is away.
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Two listeners see the same knock within this much of each other: a knock this close to when
/// a claim was taken is the claimed knock, not a new one.
const SAME_KNOCK: Duration = Duration::from_secs(2);
/// Run ids per listener block (see the `run_id_blocks` sequence).
const RUN_ID_BLOCK: i64 = 1_000_000_000;
/// Advisory lock key serializing migrations of listeners starting together.
const MIGRATION_LOCK: i64 = 0x6b6e_6f63_6b01;

struct Conn {
    client: Option<Client>,
    next_attempt: Instant,
    backoff: Duration,
    migrated: bool,
}

pub struct PgStore {
    url: PgUrl,
    config: postgres::Config,
    tls: MakeTlsConnector,
    conn: Mutex<Conn>,
    up: AtomicBool,
    listener: String,
    lease: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.url.text)
    }
}

fn pg_err(url: &PgUrl, e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Remote {
        url: url.text.clone(),
        message: e.to_string(),
    }
}

impl PgStore {
    /// Connects and migrates. `must_connect`: fail when the database cannot be reached (a reader);
    /// otherwise (a listener) start anyway and keep trying.
    pub fn open(
        url: &PgUrl,
        listener: &str,
        lease: Duration,
        must_connect: bool,
    ) -> Result<PgStore, HistoryError> {
        let mut config = postgres::Config::from_str(&url.text).map_err(|e| pg_err(url, e))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.tcp_user_timeout(STATEMENT_TIMEOUT);
        let ms = STATEMENT_TIMEOUT.as_millis();
        config.options(&format!(
            "-c statement_timeout={ms} -c lock_timeout={ms} -c idle_in_transaction_session_timeout={}",
            ms * 2
        ));
        config.application_name(&format!("knockplay {listener}"));
        if let (Some(user), Some(host)) = (config.get_user(), config.get_hosts().first()) {
            let host = match host {
                postgres::config::Host::Tcp(h) => h.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            let port = config.get_ports().first().copied().unwrap_or(5432);
            let db = config.get_dbname().unwrap_or(user).to_string();
            if let Some(pw) = password_for(&host, port, &db, user) {
                config.password(pw);
            }
        }
        let builder = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
            .map_err(|e| pg_err(url, format!("TLS setup: {e}")))?;
        let store = PgStore {
            url: url.clone(),
            config,
            tls: MakeTlsConnector::new(builder.build()),
            conn: Mutex::new(Conn {
                client: None,
                next_attempt: Instant::now(),
                backoff: BACKOFF_MIN,
                migrated: false,
            }),
            up: AtomicBool::new(true),
            listener: listener.to_string(),
            lease,
        };
        match store.with(|_| Ok(())) {
            Ok(()) => {}
            Err(e) if must_connect => return Err(e),
            Err(e) => tracing::error!("history: {e}; the listener starts without it"),
        }
        Ok(store)
    }

    fn set_up(&self, up: bool, why: &str) {
        if self.up.swap(up, Ordering::Relaxed) != up {
            if up {
                tracing::warn!(url = %self.url.text, "history database reachable again: claims and history writes resume");
            } else {
                tracing::error!(url = %self.url.text, "history database unreachable ({why}): DEGRADED, runs go ahead without claims and history rows wait in the local spool");
            }
        }
    }

    /// Runs `f` on the connection, connecting (and migrating) first if needed.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, HistoryError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.client.as_ref().is_none_or(|c| c.is_closed()) {
            conn.client = None;
            let now = Instant::now();
            if now < conn.next_attempt {
                return Err(pg_err(&self.url, "database unreachable (retrying)"));
            }
            match self.connect(&mut conn) {
                Ok(c) => {
                    conn.client = Some(c);
                    conn.backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    conn.next_attempt = now + conn.backoff;
                    conn.backoff = (conn.backoff * 2).min(BACKOFF_MAX);
                    self.set_up(false, &e.to_string());
                    return Err(e);
                }
            }
        }
        let Some(client) = conn.client.as_mut() else {
            return Err(pg_err(&self.url, "not connected"));
        };
        match f(client) {
            Ok(v) => {
                self.set_up(true, "");
                Ok(v)
            }
            Err(e) => {
                // A server error (constraint, syntax) leaves the connection usable; anything
                // else (closed, timeout, I/O) means the database is away.
                if e.as_db_error().is_none() || client.is_closed() {
                    conn.client = None;
                    self.set_up(false, &e.to_string());
                }
                Err(pg_err(&self.url, e))
            }
        }
    }

    fn connect(&self, conn: &mut Conn) -> Result<Client, HistoryError> {
        let mut client = self
            .config
            .connect(self.tls.clone())
            .map_err(|e| pg_err(&self.url, e))?;
        if !conn.migrated {
            migrate(&mut client).map_err(|e| pg_err(&self.url, format!("migrating: {e}")))?;
            conn.migrated = true;
        }
        Ok(client)
    }
}

fn migrate(c: &mut Client) -> Result<(), postgres::Error> {
    let migrations = schema::migrations(Dialect::Postgres);
    let latest = migrations.last().map_or(0, |m| m.0);
    // Up to date: nothing to create, so a reader with SELECT rights only gets in too.
    let versioned: bool = c
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
        .get(0);
    let current: Option<i32> = if versioned {
        c.query_one("SELECT MAX(version) FROM schema_version", &[])?
            .get(0)
    } else {
        None
    };
    if current.is_some_and(|v| i64::from(v) >= latest) {
        return Ok(());
    }
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    let have: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])?
        .get(0);
    for (version, sql) in migrations {
        if version > i64::from(have) {
            tx.batch_execute(&sql)?;
            let v = version as i32;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&v])?;
        }
    }
    tx.commit()
}

/// Marks runs whose claim expired (their listener stopped renewing it) `interrupted`.
fn reap(tx: &mut Transaction<'_>, now_ms: i64) -> Result<u64, postgres::Error> {
    let n = tx.execute(
        "UPDATE runs SET status = 'interrupted', ended_ms = COALESCE(runs.ended_ms, $1),
            error = COALESCE(runs.error, 'listener ' || c.listener || ' stopped renewing its claim (lease expired)')
         FROM claims c
         WHERE c.run_id = runs.id AND c.state = 'running' AND c.lease_until_ms < $1
           AND runs.status IN ('queued', 'running')",
        &[&now_ms],
    )?;
    tx.execute(
        "UPDATE claims SET state = 'expired' WHERE state = 'running' AND lease_until_ms < $1",
        &[&now_ms],
    )?;
    Ok(n)
}

fn apply_one(
    c: &mut impl postgres::GenericClient,
    listener: &str,
    op: &Op,
) -> Result<bool, postgres::Error> {
    let n = match op {
        Op::Knock(k) => c.execute(
            "INSERT INTO knocks (at_ms, source, door, outcome, detail, run_id) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&unix_millis(k.at), &k.source.to_string(), &k.door, &k.outcome.as_str(), &k.detail, &k.run_id],
        )?,
        Op::Queued { id, host, door, log_path, at } => c.execute(
            "INSERT INTO runs (id, host, door, status, queued_ms, log_path, listener)
             VALUES ($1, $2, $3, 'queued', $4, $5, $6) ON CONFLICT (id) DO NOTHING",
            &[id, &host.to_string(), door, &unix_millis(*at), &log_path.to_string_lossy().as_ref(), &listener],
        )?,
        Op::Started { id, at } => c.execute(
            "UPDATE runs SET status = 'running', started_ms = $2 WHERE id = $1 AND status = 'queued'",
            &[id, &unix_millis(*at)],
        )?,
        Op::Finished { id, end } => {
            let k = |v: u32| i64::from(v);
            let e = &end.counts;
            c.execute(
                "UPDATE runs SET status = $2, ended_ms = $3, ok = $4, changed = $5, unreachable = $6,
                    failed = $7, skipped = $8, rescued = $9, ignored = $10, exit_code = $11, error = $12
                 WHERE id = $1 AND status IN ('queued', 'running')",
                &[id, &end.status.as_str(), &unix_millis(end.at), &k(e.ok), &k(e.changed), &k(e.unreachable),
                  &k(e.failed), &k(e.skipped), &k(e.rescued), &k(e.ignored), &end.exit_code, &end.error],
            )?
        }
        Op::ClaimedElsewhere { id, outcome, detail, other_run } => {
            c.execute(
                "UPDATE knocks SET outcome = $2, detail = $3, run_id = $4 WHERE run_id = $1",
                &[id, &outcome.as_str(), detail, other_run],
            )?;
            c.execute("DELETE FROM runs WHERE id = $1", &[id])?
        }
    };
    Ok(n > 0)
}

impl Store for PgStore {
    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn location(&self) -> String {
        self.url.text.clone()
    }

    fn prune(&self, before_ms: i64) -> Result<usize, HistoryError> {
        self.with(|c| {
            let k = c.execute("DELETE FROM knocks WHERE at_ms < $1", &[&before_ms])?;
            let r = c.execute(
                "DELETE FROM runs WHERE queued_ms < $1 AND status NOT IN ('queued', 'running')",
                &[&before_ms],
            )?;
            Ok((k + r) as usize)
        })
    }

    fn mark_interrupted(&self, at_ms: i64) -> Result<usize, HistoryError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let mine = tx.execute(
                "UPDATE runs SET status = 'interrupted', ended_ms = COALESCE(ended_ms, $1),
                    error = COALESCE(error, 'the listener stopped before this run finished')
                 WHERE status IN ('queued', 'running') AND listener = $2",
                &[&at_ms, &self.listener],
            )?;
            tx.execute(
                "UPDATE claims SET state = 'expired' WHERE listener = $1 AND state = 'running'",
                &[&self.listener],
            )?;
            let theirs = reap(&mut tx, at_ms)?;
            tx.commit()?;
            Ok((mine + theirs) as usize)
        })
    }

    fn spa_nonce_record(&self, nonce: &[u8; 16], seen_unix: i64) -> Result<bool, HistoryError> {
        // Called on the detector thread: never wait for a reconnection there (the writer and the
        // lease keeper reconnect); the in-memory replay cache still guards meanwhile.
        if !self.up() {
            return Err(pg_err(&self.url, "database unreachable (degraded)"));
        }
        self.with(|c| {
            let n = c.execute(
                "INSERT INTO spa_nonces (nonce, seen_unix, listener) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&nonce.as_slice(), &seen_unix, &self.listener],
            )?;
            Ok(n == 1)
        })
    }

    fn spa_nonce_owner(
        &self,
        nonce: &[u8; 16],
        since: i64,
    ) -> Result<Option<String>, HistoryError> {
        self.with(|c| {
            Ok(c.query_opt(
                "SELECT listener FROM spa_nonces WHERE nonce = $1 AND listener <> $2
                    AND seen_unix >= $3",
                &[&nonce.as_slice(), &self.listener, &since],
            )?
            .map(|r| r.get(0)))
        })
    }

    fn spa_nonces_since(&self, since: i64) -> Result<Vec<(Vec<u8>, i64)>, HistoryError> {
        self.with(|c| {
            c.execute("DELETE FROM spa_nonces WHERE seen_unix < $1", &[&since])?;
            let rows = c.query(
                "SELECT nonce, seen_unix FROM spa_nonces ORDER BY seen_unix",
                &[],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn apply(&self, ops: &[Op]) -> Result<Applied, HistoryError> {
        let listener = self.listener.as_str();
        let batch = self.with(|c| {
            let mut tx = c.transaction()?;
            let mut out = Applied::default();
            for op in ops {
                out.push_ok(apply_one(&mut tx, listener, op)?);
            }
            tx.commit()?;
            Ok(out)
        });
        match batch {
            Err(HistoryError::Remote { .. }) if self.up() => {
                // The server refused a statement (the connection is fine): one op at a time, so
                // one bad row does not hold back the others.
                self.with(|c| {
                    let mut out = Applied::default();
                    for op in ops {
                        match apply_one(c, listener, op) {
                            Ok(changed) => out.push_ok(changed),
                            Err(e) if e.as_db_error().is_some() => out.push_err(e.to_string()),
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(out)
                })
            }
            other => other,
        }
    }

    fn next_free_run_id(&self) -> Result<i64, HistoryError> {
        self.with(|c| {
            Ok(
                c.query_one("SELECT COALESCE(MAX(id), 0) + 1 FROM runs", &[])?
                    .get(0),
            )
        })
    }

    fn reserve_run_ids(&self) -> Result<i64, HistoryError> {
        self.with(|c| {
            let block: i64 = c.query_one("SELECT nextval('run_id_blocks')", &[])?.get(0);
            let start = block.saturating_mul(RUN_ID_BLOCK) + 1;
            // Runs recorded one by one (History::run_queued) may already use the block's start.
            let free: i64 = c
                .query_one(
                    "SELECT COALESCE(MAX(id), 0) + 1 FROM runs WHERE id >= $1 AND id < $2",
                    &[&start, &start.saturating_add(RUN_ID_BLOCK)],
                )?
                .get(0);
            Ok(start.max(free))
        })
    }

    fn run_status(&self, id: i64) -> Result<Option<String>, HistoryError> {
        self.with(|c| {
            Ok(
                c.query_opt("SELECT status FROM runs WHERE id = $1", &[&id])?
                    .map(|r| r.get(0)),
            )
        })
    }

    fn query(
        &self,
        since_ms: i64,
        host: Option<String>,
    ) -> Result<(Vec<KnockRow>, Vec<RunRow>), HistoryError> {
        self.with(|c| {
            let knocks = c
                .query(
                    &schema::knocks_query(Dialect::Postgres),
                    &[&since_ms, &host],
                )?
                .iter()
                .map(|r| {
                    let at_ms: i64 = r.get(1);
                    KnockRow {
                        id: r.get(0),
                        time: rfc3339_millis(at_ms),
                        at_ms,
                        source: r.get(2),
                        door: r.get(3),
                        result: r.get(4),
                        detail: r.get(5),
                        run_id: r.get(6),
                    }
                })
                .collect();
            let runs = c
                .query(&schema::runs_query(Dialect::Postgres), &[&since_ms, &host])?
                .iter()
                .map(|r| {
                    let count = |i| schema::count(r.get::<_, i64>(i));
                    RunRow {
                        id: r.get(0),
                        host: r.get(1),
                        door: r.get(2),
                        status: r.get(3),
                        queued: rfc3339_millis(r.get(4)),
                        started: r.get::<_, Option<i64>>(5).map(rfc3339_millis),
                        ended: r.get::<_, Option<i64>>(6).map(rfc3339_millis),
                        counts: RunCounts {
                            ok: count(7),
                            changed: count(8),
                            unreachable: count(9),
                            failed: count(10),
                            skipped: count(11),
                            rescued: count(12),
                            ignored: count(13),
                        },
                        exit_code: r.get(14),
                        error: r.get(15),
                        log: r.get(16),
                        listener: r.get(17),
                    }
                })
                .collect();
            Ok((knocks, runs))
        })
    }

    /// One transaction: runs whose claim expired are marked interrupted, then the claim row is
    /// taken if it is free: not running, and either ours or last taken well before this knock
    /// (so a second listener that saw the same knock finds it taken even after the run ended).
    fn claim(&self, host: IpAddr, door: &str, run_id: i64, knocked: SystemTime) -> Claim {
        let now = unix_millis(SystemTime::now());
        let until = now + self.lease.as_millis() as i64;
        let before = unix_millis(knocked) - SAME_KNOCK.as_millis() as i64;
        if !self.up() {
            // Runs do not wait for reconnection attempts; the writer and lease keeper make them.
            return Claim::Unavailable("database unreachable".into());
        }
        let host = host.to_string();
        let got = self.with(|c| {
            let mut tx = c.transaction()?;
            reap(&mut tx, now)?;
            let taken = tx.query_opt(
                "INSERT INTO claims (host, door, listener, run_id, state, claimed_ms, lease_until_ms)
                 VALUES ($1, $2, $3, $4, 'running', $5, $6)
                 ON CONFLICT (host, door) DO UPDATE SET listener = EXCLUDED.listener,
                    run_id = EXCLUDED.run_id, state = 'running', claimed_ms = EXCLUDED.claimed_ms,
                    lease_until_ms = EXCLUDED.lease_until_ms
                 WHERE claims.state <> 'running' AND (claims.listener = $3
                    OR (claims.lease_until_ms < $5 AND claims.claimed_ms < $7))
                 RETURNING run_id",
                &[&host, &door, &self.listener, &run_id, &now, &until, &before],
            )?;
            let answer = match taken {
                Some(_) => Claim::Granted,
                None => {
                    let r = tx.query_one(
                        "SELECT listener, run_id, state, lease_until_ms FROM claims WHERE host = $1 AND door = $2",
                        &[&host, &door],
                    )?;
                    let state: String = r.get(2);
                    let until: i64 = r.get(3);
                    Claim::Held {
                        listener: r.get(0),
                        run_id: r.get(1),
                        cooling_down: state == "done" && until > now,
                    }
                }
            };
            tx.commit()?;
            Ok(answer)
        });
        got.unwrap_or_else(|e| Claim::Unavailable(e.to_string()))
    }

    fn release(&self, host: IpAddr, door: &str, run_id: i64, cooldown: Duration) {
        let until = unix_millis(SystemTime::now()) + cooldown.as_millis() as i64;
        let r = self.with(|c| {
            c.execute(
                "UPDATE claims SET state = 'done', lease_until_ms = $4
                 WHERE host = $1 AND door = $2 AND run_id = $3 AND listener = $5",
                &[&host.to_string(), &door, &run_id, &until, &self.listener],
            )
        });
        if let Err(e) = r {
            tracing::warn!(run = run_id, "history: cannot release the claim: {e}");
        }
    }

    fn keep_leases(&self) {
        let now = unix_millis(SystemTime::now());
        let until = now + self.lease.as_millis() as i64;
        let r = self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "UPDATE claims SET lease_until_ms = $1 WHERE listener = $2 AND state = 'running'",
                &[&until, &self.listener],
            )?;
            let n = reap(&mut tx, now)?;
            tx.commit()?;
            Ok(n)
        });
        match r {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                "history: {n} run(s) of another listener marked interrupted (its claim expired)"
            ),
            Err(e) => tracing::debug!("history: lease renewal: {e}"),
        }
    }

    fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}
