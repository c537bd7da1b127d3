//! The local spool: history writes that wait while the database is away, in memory and in a
//! file in `state_dir` (JSON lines, 0600), so they survive a listener restart too. Bounded: past
//! `limit` rows the oldest go, counted and logged.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::ops::Op;

/// The spool file inside `state_dir`.
pub const SPOOL_FILE: &str = "history-spool.jsonl";

pub struct Spool {
    path: Option<PathBuf>,
    rows: VecDeque<Op>,
    limit: usize,
    /// Rows dropped because the spool was full, since start.
    pub dropped: u64,
}

impl Spool {
    /// An empty spool kept only in memory (a history without a state directory).
    pub fn in_memory(limit: usize) -> Spool {
        Spool {
            path: None,
            rows: VecDeque::new(),
            limit: limit.max(1),
            dropped: 0,
        }
    }

    /// The spool in `dir`, with what an earlier run of the listener left in it.
    pub fn load(dir: &Path, limit: usize) -> Spool {
        let path = dir.join(SPOOL_FILE);
        let mut s = Spool {
            path: Some(path.clone()),
            ..Spool::in_memory(limit)
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return s,
            Err(e) => {
                tracing::error!("history spool {}: {e}", path.display());
                return s;
            }
        };
        let mut bad = 0usize;
        for (n, line) in text.lines().enumerate() {
            match serde_json::from_str::<Op>(line) {
                Ok(op) => s.rows.push_back(op),
                Err(e) => {
                    bad += 1;
                    tracing::error!(
                        "history spool {}:{}: {e}: row skipped",
                        path.display(),
                        n + 1
                    );
                }
            }
        }
        if !s.rows.is_empty() {
            tracing::warn!(
                "history spool {}: {} row(s) from before the restart wait for the database",
                path.display(),
                s.rows.len()
            );
        }
        if bad > 0 || s.trim() > 0 {
            s.rewrite();
        }
        s
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds writes at the end; drops the oldest past the limit.
    pub fn push(&mut self, ops: Vec<Op>) {
        let appended: Vec<String> = ops
            .iter()
            .filter_map(|op| serde_json::to_string(op).ok())
            .collect();
        self.rows.extend(ops);
        if self.trim() > 0 {
            self.rewrite();
        } else {
            self.append(&appended);
        }
    }

    /// Drops the oldest rows past the limit; returns how many went.
    fn trim(&mut self) -> usize {
        let over = self.rows.len().saturating_sub(self.limit);
        if over > 0 {
            self.rows.drain(..over);
            self.dropped += over as u64;
            tracing::error!(
                "history spool full ({} rows): {over} oldest row(s) dropped, {} since start",
                self.limit,
                self.dropped
            );
        }
        over
    }

    /// The first `n` rows (to write).
    pub fn front(&self, n: usize) -> Vec<Op> {
        self.rows.iter().take(n).cloned().collect()
    }

    /// The first `n` rows are written: forget them.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.rows.len());
        self.rows.drain(..n);
        self.rewrite();
    }

    fn append(&self, lines: &[String]) {
        let Some(path) = &self.path else { return };
        let r = crate::private_fs::append(path).and_then(|mut f| {
            let mut buf = String::new();
            for l in lines {
                buf.push_str(l);
                buf.push('\n');
            }
            f.write_all(buf.as_bytes())
        });
        if let Err(e) = r {
            tracing::error!("history spool {}: {e}", path.display());
        }
    }

    fn rewrite(&self) {
        let Some(path) = &self.path else { return };
        if self.rows.is_empty() {
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tracing::error!("history spool {}: {e}", path.display())
                }
                _ => {}
            }
            return;
        }
        let lines: Vec<String> = self
            .rows
            .iter()
            .filter_map(|op| serde_json::to_string(op).ok())
            .collect();
        let tmp = path.with_extension("jsonl.tmp");
        let _ = std::fs::remove_file(&tmp);
        let r = crate::private_fs::append(&tmp)
            .and_then(|mut f| f.write_all((lines.join("\n") + "\n").as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = r {
            tracing::error!("history spool {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{KnockOutcome, KnockRecord};
    use std::time::SystemTime;

    fn knock(i: u8) -> Op {
        Op::Knock(KnockRecord {
            at: SystemTime::now(),
            source: [10, 0, 0, i].into(),
            door: "d".into(),
            outcome: KnockOutcome::Accepted,
            detail: String::new(),
            run_id: Some(i64::from(i)),
        })
    }

    fn source(op: &Op) -> String {
        match op {
            Op::Knock(k) => k.source.to_string(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn keeps_rows_across_a_restart_drops_the_oldest_when_full_and_forgets_written_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::load(dir.path(), 3);
        s.push(vec![knock(1), knock(2)]);
        s.push(vec![knock(3), knock(4)]);
        assert_eq!(s.dropped, 1);
        let again = Spool::load(dir.path(), 3);
        let kept: Vec<String> = again.front(10).iter().map(source).collect();
        assert_eq!(kept, ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
        let mut again = again;
        again.consume(2);
        assert_eq!(Spool::load(dir.path(), 3).len(), 1);
        again.consume(1);
        assert!(!dir.path().join(SPOOL_FILE).exists());
    }
}
