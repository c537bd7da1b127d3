//! The writes the listener makes to its history, as values: the writer batches them, a backend
//! applies them, and the spool keeps them on disk (JSON lines) while the database is away.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{KnockOutcome, KnockRecord, RunEnd};

/// One write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    Knock(KnockRecord),
    Queued {
        id: i64,
        host: IpAddr,
        door: String,
        log_path: PathBuf,
        at: SystemTime,
    },
    Started {
        id: i64,
        at: SystemTime,
    },
    Finished {
        id: i64,
        end: RunEnd,
    },
    /// A run queued here that another listener had already claimed: its row goes, and the knock
    /// rows pointing at it say where the host's run is.
    ClaimedElsewhere {
        id: i64,
        outcome: KnockOutcome,
        detail: String,
        other_run: Option<i64>,
    },
}

impl Op {
    pub fn is_knock(&self) -> bool {
        matches!(self, Op::Knock(_))
    }
}
