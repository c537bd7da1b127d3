//! Result shaping: a module's result as the registered value users read, what a skipped, failed,
//! unreachable or censored (`no_log`) task shows, the diffs a result carries, the [`Outcome`]
//! of one task on one host that the walk reports and counts, and the [`Flow`] it leads to.

use serde_json::json;
use std::borrow::Cow;

use super::report::Status;
use crate::modules::{FileDiff, ModuleResult};
use crate::playbook::model::Task;
use crate::ssh::SshError;
use crate::value::{as_bool, to_display, Value, Vars};

/// How a task (or block) ended, for the control flow of the task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Failed,
    Unreachable,
    EndHost,
    EndPlay,
}

/// The outcome of one task (or one loop item) on one host, before counting.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// The value `register` stores and the report prints.
    pub result: Value,
    /// Failed, but `ignore_errors` said to carry on.
    pub ignored: bool,
    pub changed: bool,
    /// Where the task list goes next when the task itself asks (`meta: end_host`, `end_play`);
    /// `Continue` otherwise. Failures and unreachable hosts are read from `status`.
    pub flow: Flow,
}

impl Outcome {
    fn new(status: Status, result: Value, changed: bool) -> Outcome {
        Outcome {
            status,
            result,
            ignored: false,
            changed,
            flow: Flow::Continue,
        }
    }

    /// A task that failed before or instead of running its module.
    pub fn failed(msg: String) -> Outcome {
        Outcome::new(
            Status::Failed,
            json!({"changed": false, "failed": true, "msg": msg}),
            false,
        )
    }

    /// A task (or item) whose condition `cond` was false.
    pub fn skipped(cond: &str) -> Outcome {
        Outcome::new(Status::Skipped, skip_result(cond), false)
    }

    /// A module's result, with its status read from it.
    pub fn of(r: ModuleResult) -> Outcome {
        let status = if r.failed {
            Status::Failed
        } else if r.data.get("skipped").is_some_and(is_true) {
            Status::Skipped
        } else if r.changed {
            Status::Changed
        } else {
            Status::Ok
        };
        let changed = r.changed;
        Outcome::new(status, result_value(r), changed)
    }

    /// A connection error: unreachable when the host went away, a plain failure otherwise.
    pub fn unreachable(e: SshError) -> Outcome {
        if !e.is_unreachable() {
            return Outcome::failed(e.to_string());
        }
        Outcome::new(Status::Unreachable, unreachable_result(&e), false)
    }

    /// A loop's summary: the per-item results and the status they add up to.
    pub fn loop_summary(results: Vec<Value>, statuses: &[Status], any_changed: bool) -> Outcome {
        let any_failed = statuses.contains(&Status::Failed);
        let all_skipped = statuses.iter().all(|s| *s == Status::Skipped);
        let mut summary = Vars::new();
        summary.insert("changed".into(), json!(any_changed));
        summary.insert("results".into(), Value::Array(results));
        let status = if all_skipped {
            summary.insert("skipped".into(), json!(true));
            if statuses.is_empty() {
                summary.insert("skipped_reason".into(), json!("No items in the list"));
            }
            summary.insert("msg".into(), json!("All items skipped"));
            Status::Skipped
        } else if any_failed {
            summary.insert("failed".into(), json!(true));
            summary.insert("msg".into(), json!("One or more items failed"));
            Status::Failed
        } else {
            summary.insert("msg".into(), json!("All items completed"));
            if any_changed {
                Status::Changed
            } else {
                Status::Ok
            }
        };
        Outcome::new(status, Value::Object(summary), any_changed)
    }

    /// A loop's summary (it carries `results`), as opposed to one module result.
    pub fn is_loop_summary(&self) -> bool {
        self.result.get("results").is_some()
    }
}

/// A task-level failure message (undefined variable, bad argument), already positioned.
pub fn task_error(task: &Task, host: &str, msg: &str) -> String {
    format!(
        "{msg}. The error appears to be in '{}' (task '{}', host {host})",
        task.pos,
        task.display_name()
    )
}

/// What a task skipped by its condition registers and shows.
pub fn skip_result(cond: &str) -> Value {
    json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False", "false_condition": cond})
}

/// What an unreachable host's task registers and shows.
pub fn unreachable_result(e: &SshError) -> Value {
    json!({"changed": false, "msg": e.to_string(), "unreachable": true})
}

/// What a `no_log` task shows instead of its result.
pub fn censor(changed: bool) -> Value {
    json!({"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result", "changed": changed})
}

/// Truthiness of a keyword's or a result's value (absent or unparseable: false).
pub fn is_true(v: &Value) -> bool {
    as_bool(v).unwrap_or(false)
}

fn lines(s: &str) -> Value {
    Value::Array(s.lines().map(|l| Value::String(l.to_string())).collect())
}

/// A module result as the registered dict users read; its output is moved in, not copied.
pub fn result_value(r: ModuleResult) -> Value {
    let mut m = Vars::new();
    m.insert("changed".into(), Value::Bool(r.changed));
    if r.failed {
        m.insert("failed".into(), Value::Bool(true));
    }
    if let Some(msg) = r.msg {
        m.insert("msg".into(), Value::String(msg));
    }
    if let Some(rc) = r.rc {
        m.insert("rc".into(), json!(rc));
    }
    for (key, text) in [("stdout", r.stdout), ("stderr", r.stderr)] {
        if let Some(mut t) = text {
            let text_lines = lines(&t);
            let keep = t.trim_end_matches('\n').len();
            t.truncate(keep);
            m.insert(key.into(), Value::String(t));
            m.insert(format!("{key}_lines"), text_lines);
        }
    }
    if !r.diff.is_empty() {
        let d: Vec<Value> = r
            .diff
            .iter()
            .map(|d| json!({"before_header": d.path, "after_header": d.path, "before": d.before, "after": d.after}))
            .collect();
        m.insert(
            "diff".into(),
            if d.len() == 1 {
                d[0].clone()
            } else {
                Value::Array(d)
            },
        );
    }
    for (k, v) in r.data {
        m.insert(k, v);
    }
    Value::Object(m)
}

/// The file diffs a registered result carries (one, or a list), for `--diff` output.
pub fn collect_diffs(result: &Value) -> Vec<FileDiff> {
    let one = |d: &Value| FileDiff {
        path: d.get("after_header").map(to_display).unwrap_or_default(),
        before: d.get("before").map(to_display).unwrap_or_default(),
        after: d.get("after").map(to_display).unwrap_or_default(),
    };
    match result.get("diff") {
        Some(Value::Array(a)) => a.iter().map(one).collect(),
        Some(d @ Value::Object(_)) => vec![one(d)],
        _ => Vec::new(),
    }
}

/// What the report shows of a result: the result, or its censored form and no diffs under `no_log`.
pub fn shown(result: &Value, changed: bool, no_log: bool) -> (Cow<'_, Value>, Vec<FileDiff>) {
    if no_log {
        (Cow::Owned(censor(changed)), Vec::new())
    } else {
        (Cow::Borrowed(result), collect_diffs(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(path: &str) -> FileDiff {
        FileDiff {
            path: path.into(),
            before: "a\n".into(),
            after: "b\n".into(),
        }
    }

    #[test]
    fn result_value_shapes_module_results() {
        let mut r = ModuleResult::changed();
        r.rc = Some(0);
        r.stdout = Some("one\ntwo\n".into());
        r.stderr = Some(String::new());
        r.data.insert("dest".into(), json!("/x"));
        let cases: Vec<(ModuleResult, Value)> = vec![
            (ModuleResult::ok(), json!({"changed": false})),
            (
                ModuleResult::failed("boom"),
                json!({"changed": false, "failed": true, "msg": "boom"}),
            ),
            (
                r,
                json!({"changed": true, "rc": 0, "stdout": "one\ntwo", "stdout_lines": ["one", "two"],
                       "stderr": "", "stderr_lines": [], "dest": "/x"}),
            ),
            (
                ModuleResult {
                    diff: vec![diff("/f")],
                    ..ModuleResult::changed()
                },
                json!({"changed": true, "diff": {"before_header": "/f", "after_header": "/f", "before": "a\n", "after": "b\n"}}),
            ),
        ];
        for (r, want) in cases {
            assert_eq!(result_value(r), want);
        }
    }

    #[test]
    fn diffs_round_trip_through_the_registered_value() {
        for paths in [vec![], vec!["/a"], vec!["/a", "/b"]] {
            let r = ModuleResult {
                diff: paths.iter().map(|p| diff(p)).collect(),
                ..ModuleResult::changed()
            };
            let back = collect_diffs(&result_value(r.clone()));
            assert_eq!(back, r.diff, "{paths:?}");
        }
    }

    #[test]
    fn outcome_status_follows_the_result() {
        let cases = [
            (ModuleResult::ok(), Status::Ok),
            (ModuleResult::changed(), Status::Changed),
            (ModuleResult::failed("x"), Status::Failed),
            (ModuleResult::ok().set("skipped", true), Status::Skipped),
            (
                ModuleResult::changed().set("skipped", "yes"),
                Status::Skipped,
            ),
        ];
        for (r, want) in cases {
            assert_eq!(Outcome::of(r).status, want);
        }
    }

    #[test]
    fn loop_summary_adds_up_items() {
        use Status::*;
        let cases: Vec<(Vec<Status>, bool, Status, &str)> = vec![
            (vec![], false, Skipped, "All items skipped"),
            (vec![Skipped, Skipped], false, Skipped, "All items skipped"),
            (vec![Ok, Skipped], false, Ok, "All items completed"),
            (vec![Ok, Changed], true, Changed, "All items completed"),
            (
                vec![Changed, Failed],
                true,
                Failed,
                "One or more items failed",
            ),
        ];
        for (statuses, changed, want, msg) in cases {
            let o = Outcome::loop_summary(Vec::new(), &statuses, changed);
            assert_eq!(o.status, want, "{statuses:?}");
            assert_eq!(o.result["msg"], json!(msg), "{statuses:?}");
            assert_eq!(o.changed, changed);
            assert!(o.is_loop_summary());
            assert_eq!(
                o.result.get("skipped_reason").is_some(),
                statuses.is_empty()
            );
        }
    }

    #[test]
    fn no_log_hides_result_and_diffs() {
        let r = result_value(ModuleResult {
            diff: vec![diff("/f")],
            ..ModuleResult::changed()
        });
        let (v, d) = shown(&r, true, true);
        assert_eq!(v["changed"], json!(true));
        assert!(v.get("censored").is_some());
        assert!(d.is_empty());
        let (v, d) = shown(&r, true, false);
        assert_eq!(*v, r);
        assert_eq!(d.len(), 1);
    }
}
