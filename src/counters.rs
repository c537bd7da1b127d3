//! Run counters (ok, changed, unreachable, …): the one type behind the PLAY RECAP, the JSON
//! report's `stats`, a knocked run's outcome and its history row.
//!
//! It lives at the crate root, not in the runner, because the knock layer and the history carry
//! it too and must not depend on the runner (they talk to it through `knock::Launcher`).

use std::fmt;

use serde::Serialize;

/// How many tasks ended how, as in Ansible's recap (one host, or summed over hosts).
/// Field order is the recap's and the JSON report's column order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RunCounts {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

impl RunCounts {
    /// Adds `other` field by field (a run's totals over its hosts).
    pub fn add(&mut self, other: &RunCounts) {
        self.ok += other.ok;
        self.changed += other.changed;
        self.unreachable += other.unreachable;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.rescued += other.rescued;
        self.ignored += other.ignored;
    }

    /// The sum of many (zero for none).
    pub fn total<'a>(all: impl IntoIterator<Item = &'a RunCounts>) -> RunCounts {
        let mut sum = RunCounts::default();
        for c in all {
            sum.add(c);
        }
        sum
    }
}

/// `ok=5 changed=2 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0` (history's text output).
impl fmt::Display for RunCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ok={} changed={} unreachable={} failed={} skipped={} rescued={} ignored={}",
            self.ok,
            self.changed,
            self.unreachable,
            self.failed,
            self.skipped,
            self.rescued,
            self.ignored
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_field_by_field() {
        let a = RunCounts {
            ok: 2,
            changed: 1,
            failed: 1,
            ..Default::default()
        };
        let b = RunCounts {
            ok: 3,
            unreachable: 1,
            skipped: 4,
            rescued: 1,
            ignored: 2,
            ..Default::default()
        };
        let cases: &[(&[RunCounts], RunCounts)] = &[
            (&[], RunCounts::default()),
            (&[a], a),
            (
                &[a, b],
                RunCounts {
                    ok: 5,
                    changed: 1,
                    unreachable: 1,
                    failed: 1,
                    skipped: 4,
                    rescued: 1,
                    ignored: 2,
                },
            ),
        ];
        for (parts, want) in cases {
            assert_eq!(RunCounts::total(parts.iter()), *want, "{parts:?}");
        }
    }

    #[test]
    fn text_and_json_keep_the_recap_order() {
        let c = RunCounts {
            ok: 5,
            changed: 2,
            ..Default::default()
        };
        assert_eq!(
            c.to_string(),
            "ok=5 changed=2 unreachable=0 failed=0 skipped=0 rescued=0 ignored=0"
        );
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"ok":5,"changed":2,"unreachable":0,"failed":0,"skipped":0,"rescued":0,"ignored":0}"#
        );
    }
}
