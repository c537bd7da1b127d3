//! Loops over a leaf task: the items (`loop`, `with_items`, `with_dict`, `with_first_found`),
//! `loop_control` (loop_var, index_var, label), each item run and reported on its own line, and
//! the loop's summary result.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::host::HostRun;
use super::report::{HostLine, Status};
use super::result::{is_true, shown, task_error, Outcome};
use super::task::Leaf;
use crate::playbook::model::{LoopSpec, Task};
use crate::value::{to_display, Value, Vars};

impl HostRun<'_, '_> {
    /// Items of a loop, templated. `Err("")` is `with_first_found` with `skip: true` and no file.
    pub(super) fn loop_items(
        &self,
        spec: &LoopSpec,
        scope: &Vars,
        task: &Task,
    ) -> Result<Vec<Value>, String> {
        let v = self
            .ctx
            .templar
            .render_value(&spec.items, scope)
            .map_err(|e| e.to_string())?;
        if spec.first_found {
            let dirs = first_found_dirs(&self.ctx.play.dir, task);
            return first_found(&v, &dirs, &self.ctx.play.dir).map(|p| vec![Value::String(p)]);
        }
        if let Some(lookup) = &spec.lookup {
            let dirs = first_found_dirs(&self.ctx.play.dir, task);
            return super::with_lookups::items(lookup, v, &dirs);
        }
        items_of(spec, v)
    }

    /// Run a looped leaf task: each item with its own `when`, one line each; then the summary.
    pub(super) fn run_items(
        &mut self,
        leaf: &Leaf<'_>,
        spec: &LoopSpec,
        scope: &Vars,
    ) -> Result<Outcome, String> {
        let host = self.name();
        let items = match self.loop_items(spec, scope, leaf.task) {
            Ok(i) => i,
            Err(e) if e.is_empty() => Vec::new(),
            Err(e) => return Err(task_error(leaf.task, &host, &e)),
        };
        let mut results = Vec::new();
        let mut statuses = Vec::new();
        let mut any_changed = false;
        for (idx, item) in items.iter().enumerate() {
            let s = item_scope(scope, spec, item, idx);
            // The task's timeout covers the whole loop: no item starts after it, and an item
            // that ran out of time ends it.
            let late = self.timed_out(leaf);
            let mut out_of_time = late.is_some();
            let o = match (late, leaf.keywords.conditions.own_skip(&s)) {
                (Some(late), _) => late,
                (None, Err(e)) => Outcome::failed(task_error(leaf.task, &host, &e)),
                (None, Ok(Some(cond))) => Outcome::skipped(&cond),
                // Ansible templates a task's keywords per item: the item may appear in them.
                (None, Ok(None)) => self.run_once(leaf, &leaf.sources.resolve_exec(&s), &s),
            };
            if o.status == Status::Unreachable {
                return Ok(o);
            }
            out_of_time |= o.status == Status::Failed && self.timed_out(leaf).is_some();
            any_changed |= o.changed;
            statuses.push(o.status);
            let mut r = o.result;
            if let Value::Object(m) = &mut r {
                m.insert(spec.loop_var.clone(), item.clone());
                m.insert("ansible_loop_var".into(), json!(spec.loop_var));
            }
            let label = self.item_label(spec, item, &s);
            self.report_item(leaf, o.status, o.changed, label, &r);
            results.push(r);
            if out_of_time {
                break;
            }
        }
        Ok(Outcome::loop_summary(results, &statuses, any_changed))
    }

    /// `loop_control.label`, else the item itself.
    fn item_label(&self, spec: &LoopSpec, item: &Value, scope: &Vars) -> String {
        match &spec.label {
            Some(l) => self
                .ctx
                .templar
                .render_value(l, scope)
                .map(|v| to_display(&v))
                .unwrap_or_else(|_| to_display(item)),
            None => match item {
                Value::String(x) => x.clone(),
                other => other.to_string(),
            },
        }
    }

    fn report_item(
        &self,
        leaf: &Leaf<'_>,
        status: Status,
        changed: bool,
        label: String,
        result: &Value,
    ) {
        let no_log = leaf.keywords.no_log;
        let (result, diff) = shown(result, changed, no_log);
        self.ctx.reporter.host_line(&HostLine {
            host: &self.st.name,
            task: &leaf.display,
            status,
            item: Some(if no_log { "None".into() } else { label }),
            result: &result,
            diff: &diff,
            ignored: false,
            show_result: leaf.module == "debug" && status != Status::Skipped,
            is_item: true,
        });
    }
}

/// The scope of one item: the loop variable, `ansible_loop_var` and the index variable.
fn item_scope(scope: &Vars, spec: &LoopSpec, item: &Value, idx: usize) -> Vars {
    let mut s = scope.clone();
    s.insert(spec.loop_var.clone(), item.clone());
    s.insert("ansible_loop_var".into(), json!(spec.loop_var));
    if let Some(iv) = &spec.index_var {
        s.insert(iv.clone(), json!(idx));
    }
    s
}

/// The items of a templated loop value: a list (flattened one level by `with_items`), a dict's
/// `{key, value}` pairs for `with_dict`, nothing for null.
fn items_of(spec: &LoopSpec, v: Value) -> Result<Vec<Value>, String> {
    if spec.dict {
        return match v {
            Value::Object(o) => Ok(o
                .into_iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect()),
            other => Err(format!("with_dict expects a dict, got {other}")),
        };
    }
    match v {
        Value::Array(a) if spec.flatten => {
            let mut out = Vec::new();
            for i in a {
                match i {
                    Value::Array(inner) => out.extend(inner),
                    other => out.push(other),
                }
            }
            Ok(out)
        }
        Value::Array(a) => Ok(a),
        Value::Null => Ok(Vec::new()),
        Value::String(s) if spec.flatten => {
            Ok(s.split(',').map(|p| Value::String(p.trim().to_string())).collect())
        }
        other => Err(format!(
            "Invalid data passed to 'loop', it requires a list, got this instead: {other}. Hint: If you passed a list/dict of just one element, try adding wantlist=True to your lookup invocation or use q/query instead of lookup."
        )),
    }
}

/// Where `with_first_found` looks when no `paths` are given: the role's vars/, files/ and
/// directory, then the playbook's.
fn first_found_dirs(play_dir: &Path, task: &Task) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(r) = &task.role {
        dirs.push(r.dir.join("vars"));
        dirs.push(r.dir.join("files"));
        dirs.push(r.dir.clone());
    }
    dirs.push(play_dir.join("vars"));
    dirs.push(play_dir.join("files"));
    dirs.push(play_dir.to_path_buf());
    dirs
}

/// The candidates of `with_first_found`: file names, the paths to search, and `skip`.
#[derive(Debug, Default, PartialEq)]
struct Candidates {
    files: Vec<String>,
    paths: Vec<String>,
    skip: bool,
}

/// A list of names, or a comma-separated string of them.
fn name_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().map(to_display).collect(),
        other => to_display(other).split(',').map(str::to_string).collect(),
    }
}

impl Candidates {
    /// Candidates from a file name, a `{files, paths, skip}` dict, or a list of those.
    fn from_value(v: &Value) -> Candidates {
        let mut c = Candidates::default();
        let mut add = |v: &Value| match v {
            Value::String(s) => c.files.push(s.clone()),
            Value::Object(o) => {
                if let Some(f) = o.get("files") {
                    c.files.extend(name_list(f));
                }
                if let Some(p) = o.get("paths") {
                    c.paths.extend(name_list(p));
                }
                if o.get("skip").is_some_and(is_true) {
                    c.skip = true;
                }
            }
            _ => {}
        };
        match v {
            Value::Array(a) => a.iter().for_each(&mut add),
            other => add(other),
        }
        c
    }
}

/// `with_first_found`: the first existing local file among the candidates (relative search
/// paths are taken from the playbook's directory). `Err("")` when none exists and `skip` is set.
fn first_found(v: &Value, default_dirs: &[PathBuf], play_dir: &Path) -> Result<String, String> {
    let c = Candidates::from_value(v);
    let dirs: Vec<PathBuf> = if c.paths.is_empty() {
        default_dirs.to_vec()
    } else {
        c.paths.iter().map(PathBuf::from).collect()
    };
    for f in &c.files {
        let p = Path::new(f);
        if p.is_absolute() && p.exists() {
            return Ok(f.clone());
        }
        for d in &dirs {
            let candidate = play_dir.join(d).join(f);
            if candidate.exists() {
                return Ok(candidate.display().to_string());
            }
        }
    }
    if c.skip {
        return Err(String::new());
    }
    Err(format!(
        "No file was found when using first_found. Candidates: {}",
        c.files.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dict: bool, flatten: bool) -> LoopSpec {
        LoopSpec {
            items: Value::Null,
            dict,
            flatten,
            first_found: false,
            lookup: None,
            loop_var: "item".into(),
            label: None,
            index_var: Some("i".into()),
        }
    }

    #[test]
    fn items_by_loop_kind() {
        let cases: Vec<(LoopSpec, Value, Result<Vec<Value>, ()>)> = vec![
            (
                spec(false, false),
                json!([1, [2, 3]]),
                Ok(vec![json!(1), json!([2, 3])]),
            ),
            (
                spec(false, true),
                json!([1, [2, 3]]),
                Ok(vec![json!(1), json!(2), json!(3)]),
            ),
            (spec(false, false), Value::Null, Ok(vec![])),
            (
                spec(false, true),
                json!("a, b"),
                Ok(vec![json!("a"), json!("b")]),
            ),
            (spec(false, false), json!("a, b"), Err(())),
            (
                spec(true, false),
                json!({"k": 1}),
                Ok(vec![json!({"key": "k", "value": 1})]),
            ),
            (spec(true, false), json!([1]), Err(())),
        ];
        for (s, v, want) in cases {
            let got = items_of(&s, v.clone()).map_err(|_| ());
            assert_eq!(got, want, "{v}");
        }
    }

    #[test]
    fn item_scope_sets_loop_and_index_vars() {
        let s = item_scope(&Vars::new(), &spec(false, false), &json!("x"), 2);
        assert_eq!(
            Value::Object(s),
            json!({"item": "x", "ansible_loop_var": "item", "i": 2})
        );
    }

    #[test]
    fn first_found_candidates() {
        let cases = [
            (json!("a.yml"), vec!["a.yml"], vec![], false),
            (
                json!([{"files": "a.yml,b.yml", "paths": ["p"], "skip": true}, "c.yml"]),
                vec!["a.yml", "b.yml", "c.yml"],
                vec!["p"],
                true,
            ),
        ];
        for (v, files, paths, skip) in cases {
            let c = Candidates::from_value(&v);
            assert_eq!(c.files, files, "{v}");
            assert_eq!(c.paths, paths, "{v}");
            assert_eq!(c.skip, skip, "{v}");
        }
    }

    #[test]
    fn first_found_searches_in_order() {
        let d = tempfile::tempdir().unwrap();
        let play = d.path();
        std::fs::create_dir_all(play.join("vars")).unwrap();
        std::fs::write(play.join("vars/b.yml"), "").unwrap();
        std::fs::write(play.join("c.yml"), "").unwrap();
        let dirs = [play.join("vars"), play.to_path_buf()];
        let found = |v: Value| first_found(&v, &dirs, play);
        let b = play.join("vars/b.yml").display().to_string();
        assert_eq!(found(json!(["a.yml", "b.yml", "c.yml"])), Ok(b));
        let c = play.join(".").join("c.yml").display().to_string();
        assert_eq!(found(json!({"files": ["c.yml"], "paths": ["."]})), Ok(c));
        assert_eq!(
            found(json!({"files": ["z.yml"], "skip": true})),
            Err(String::new())
        );
        assert!(found(json!(["z.yml"]))
            .unwrap_err()
            .contains("Candidates: z.yml"));
    }
}
