//! The seam between the history and its database: what a backend must do. The listener, the
//! writer and `knockplay history` talk to [`super::History`], which holds one of these.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use super::ops::Op;
use super::{HistoryError, KnockRow, RunRow};

/// What became of each op of a batch: changed a row (true), changed none (false), or refused.
#[derive(Debug, Default)]
pub struct Applied {
    pub results: Vec<Result<bool, String>>,
}

impl Applied {
    pub fn push_ok(&mut self, changed: bool) {
        self.results.push(Ok(changed));
    }

    pub fn push_err(&mut self, e: String) {
        self.results.push(Err(e));
    }
}

/// A run claim's answer (listeners sharing a database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This listener runs it (or nothing is shared: SQLite).
    Granted,
    /// Another listener holds the host (running, or in its cooldown).
    Held {
        listener: String,
        run_id: i64,
        cooling_down: bool,
    },
    /// The database could not be asked: run anyway (degraded), without a claim.
    Unavailable(String),
}

/// One history database.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    /// The file, or the URL without a password.
    fn location(&self) -> String;
    fn prune(&self, before_ms: i64) -> Result<usize, HistoryError>;
    /// Runs this listener left `queued`/`running` (and, shared, runs whose claim expired).
    fn mark_interrupted(&self, at_ms: i64) -> Result<usize, HistoryError>;
    fn spa_nonce_record(&self, nonce: &[u8; 16], seen_unix: i64) -> Result<bool, HistoryError>;
    /// The other listener that recorded `nonce` at or after `since` (unix seconds), if any.
    fn spa_nonce_owner(
        &self,
        _nonce: &[u8; 16],
        _since: i64,
    ) -> Result<Option<String>, HistoryError> {
        Ok(None)
    }
    fn spa_nonces_since(&self, since: i64) -> Result<Vec<(Vec<u8>, i64)>, HistoryError>;
    /// Applies a batch in one transaction. `Err`: nothing was applied (database away).
    fn apply(&self, ops: &[Op]) -> Result<Applied, HistoryError>;
    /// One more than the largest run id.
    fn next_free_run_id(&self) -> Result<i64, HistoryError>;
    /// The first id of a range of run ids this listener alone hands out.
    fn reserve_run_ids(&self) -> Result<i64, HistoryError> {
        self.next_free_run_id()
    }
    fn run_status(&self, id: i64) -> Result<Option<String>, HistoryError>;
    fn query(
        &self,
        since_ms: i64,
        host: Option<String>,
    ) -> Result<(Vec<KnockRow>, Vec<RunRow>), HistoryError>;

    /// Claims `host`/`door` for run `run_id` of a knock seen at `knocked`.
    fn claim(&self, _host: IpAddr, _door: &str, _run_id: i64, _knocked: SystemTime) -> Claim {
        Claim::Granted
    }
    /// The run ended: the claim stays as the cooldown (`cooldown` long) or is released.
    fn release(&self, _host: IpAddr, _door: &str, _run_id: i64, _cooldown: Duration) {}
    /// Extends this listener's live claims and marks runs whose claim expired `interrupted`.
    fn keep_leases(&self) {}
    #[cfg(test)]
    fn as_any(&self) -> &dyn std::any::Any;
    /// Whether the database answered the last time it was asked.
    fn up(&self) -> bool {
        true
    }
}
