//! One host's executor: runs tasks in order with conditions, loops, retries, blocks, includes,
//! handlers and `register`, and reports each result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::connect::HostConn;
use super::report::{HostLine, Reporter, Status};
use super::vars::{self, Layers};
use super::RunOptions;
use crate::inventory::Inventory;
use crate::modules::{self, FileDiff, ModuleCtx, ModuleError, ModuleResult};
use crate::playbook::args::VARIABLE_PARAMS;
use crate::playbook::model::{Action, BecomeSpec, LoopSpec, Play, RoleCtx, Task};
use crate::playbook::parse;
use crate::playbook::template::Templar;
use crate::ssh::{Become, Remote, SshError};
use crate::value::{as_bool, to_display, Value, Vars};

use crate::playbook::template::OMIT;

/// What a host keeps across plays of one run.
pub struct HostState {
    pub name: String,
    pub conn: HostConn,
    pub remote: Option<Box<dyn Remote + Send>>,
    pub facts: Vars,
    /// `set_fact` and `register` results.
    pub registered: Vars,
    pub include_vars: Vars,
    /// Failed or unreachable: left out of the rest of the run.
    pub out: bool,
    pub unreachable: bool,
    pub failed: bool,
}

/// Read-only context shared by all hosts of one play.
pub struct PlayCtx<'a> {
    pub play: &'a Play,
    pub opts: &'a RunOptions,
    pub templar: &'a Templar,
    pub reporter: &'a Reporter,
    pub inventory: &'a Inventory,
    pub groups: Value,
    pub play_hosts: Vec<String>,
    /// Every host's variables for `hostvars` (inventory vars + facts + registered), refreshed
    /// after facts and set_fact.
    pub hostvars: &'a Mutex<BTreeMap<String, Vars>>,
    pub end_play: AtomicBool,
}

/// Attributes inherited from enclosing blocks, roles, includes and the play.
#[derive(Clone, Default)]
pub struct Inherit<'a> {
    pub become_: BecomeSpec,
    pub when: Vec<Value>,
    pub tags: Vec<String>,
    pub block_vars: Vec<&'a Vars>,
    pub environment: Vec<Value>,
    pub ignore_errors: Option<Value>,
    pub check_mode: Option<Value>,
    pub remote_user: Option<Value>,
    /// Extra vars from include_tasks/include_role parameters (owned because loops create them).
    pub owned_vars: Vec<Arc<Vars>>,
}

/// How a task (or block) ended, for the control flow of the task list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Failed,
    Unreachable,
    EndHost,
    EndPlay,
}

/// Runs tasks for one host in one play.
pub struct HostRun<'p, 's> {
    pub ctx: &'p PlayCtx<'p>,
    pub st: &'s mut HostState,
    pub inv_vars: Vars,
    pub vars_files: Vars,
    /// Notified handler names/topics, in notification order.
    pub notified: Vec<String>,
}

/// A task-level failure message (undefined variable, bad argument), already positioned.
fn task_error(task: &Task, host: &str, msg: &str) -> String {
    format!(
        "{msg}. The error appears to be in '{}' (task '{}', host {host})",
        task.pos,
        task.display_name()
    )
}

fn skip_result(cond: &str) -> Value {
    json!({"changed": false, "skipped": true, "skip_reason": "Conditional result was False", "false_condition": cond})
}

fn lines(s: &str) -> Value {
    Value::Array(s.lines().map(|l| Value::String(l.to_string())).collect())
}

/// A module result as the registered dict users read.
pub fn result_value(r: &ModuleResult) -> Value {
    let mut m = Vars::new();
    m.insert("changed".into(), Value::Bool(r.changed));
    if r.failed {
        m.insert("failed".into(), Value::Bool(true));
    }
    if let Some(msg) = &r.msg {
        m.insert("msg".into(), Value::String(msg.clone()));
    }
    if let Some(rc) = r.rc {
        m.insert("rc".into(), json!(rc));
    }
    if let Some(o) = &r.stdout {
        m.insert(
            "stdout".into(),
            Value::String(o.trim_end_matches('\n').to_string()),
        );
        m.insert("stdout_lines".into(), lines(o));
    }
    if let Some(e) = &r.stderr {
        m.insert(
            "stderr".into(),
            Value::String(e.trim_end_matches('\n').to_string()),
        );
        m.insert("stderr_lines".into(), lines(e));
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
    for (k, v) in &r.data {
        m.insert(k.clone(), v.clone());
    }
    Value::Object(m)
}

fn is_true(v: &Value) -> bool {
    as_bool(v).unwrap_or(false)
}

fn censor(changed: bool) -> Value {
    json!({"censored": "the output has been hidden due to the fact that 'no_log: true' was specified for this result", "changed": changed})
}

/// The outcome of one task on this host, before counting.
struct Outcome {
    status: Status,
    result: Value,
    ignored: bool,
    changed: bool,
}

impl<'p, 's> HostRun<'p, 's> {
    fn name(&self) -> String {
        self.st.name.clone()
    }

    /// One plain result line for this host (no loop item, no diff).
    fn report(&self, task: &str, status: Status, result: &Value) {
        self.ctx.reporter.host_line(&HostLine {
            host: &self.st.name,
            task,
            status,
            item: None,
            result,
            diff: &[],
            ignored: false,
            show_result: false,
            is_item: false,
        });
    }

    /// Magic variables for this host.
    fn magic(&self) -> Vars {
        let c = self.ctx;
        let mut m = Vars::new();
        m.insert("inventory_hostname".into(), json!(self.st.name));
        m.insert(
            "inventory_hostname_short".into(),
            json!(self.st.name.split('.').next().unwrap_or(&self.st.name)),
        );
        m.insert("groups".into(), c.groups.clone());
        m.insert(
            "group_names".into(),
            json!(c.inventory.group_names(&self.st.name)),
        );
        m.insert(
            "playbook_dir".into(),
            json!(c.play.dir.display().to_string()),
        );
        m.insert("ansible_check_mode".into(), json!(c.opts.check));
        m.insert("ansible_diff_mode".into(), json!(c.opts.diff));
        m.insert("ansible_play_hosts".into(), json!(c.play_hosts));
        m.insert("ansible_play_batch".into(), json!(c.play_hosts));
        m.insert("play_hosts".into(), json!(c.play_hosts));
        m.insert("ansible_play_name".into(), json!(c.play.name));
        m.insert(
            "ansible_managed".into(),
            json!("This file is managed by knockplay; local changes will be overwritten."),
        );
        m
    }

    /// The scope for a task (without loop variables).
    fn scope(&self, task: &Task, inh: &Inherit<'_>) -> Vars {
        let mut magic = self.magic();
        if let Some(r) = &task.role {
            magic.insert("role_name".into(), json!(r.name));
            magic.insert("role_path".into(), json!(r.dir.display().to_string()));
        }
        if self.task_mentions_hostvars(task) {
            let hv = self
                .ctx
                .hostvars
                .lock()
                .map(|h| h.clone())
                .unwrap_or_default();
            let hv: Vars = hv.into_iter().map(|(k, v)| (k, Value::Object(v))).collect();
            magic.insert("hostvars".into(), Value::Object(hv));
        }
        let mut blocks: Vec<&Vars> = inh.block_vars.clone();
        for o in &inh.owned_vars {
            blocks.push(o);
        }
        vars::build(
            &Layers {
                role: task.role.as_deref(),
                inventory: &self.inv_vars,
                facts: &self.st.facts,
                play_vars: &self.ctx.play.vars,
                vars_files: &self.vars_files,
                block_vars: &blocks,
                task_vars: &task.vars,
                include_vars: &self.st.include_vars,
                registered: &self.st.registered,
                extra: &self.ctx.opts.extra_vars,
                magic,
            },
            self.ctx.templar,
        )
    }

    fn task_mentions_hostvars(&self, task: &Task) -> bool {
        fn mentions(v: &Value) -> bool {
            match v {
                Value::String(s) => s.contains("hostvars"),
                Value::Array(a) => a.iter().any(mentions),
                Value::Object(o) => o.values().any(mentions),
                _ => false,
            }
        }
        let in_action = match &task.action {
            Action::Module { args, .. } => mentions(args),
            Action::IncludeTasks { file } => mentions(file),
            _ => false,
        };
        in_action
            || task.when.iter().any(mentions)
            || task.vars.values().any(mentions)
            || task.loop_.as_ref().is_some_and(|l| mentions(&l.items))
            || self.ctx.play.vars.values().any(mentions)
    }

    /// Is this task selected by --tags / --skip-tags?
    fn selected(&self, tags: &[String]) -> bool {
        let o = self.ctx.opts;
        if tags.iter().any(|t| o.skip_tags.contains(t)) {
            return false;
        }
        if tags.iter().any(|t| t == "never") && !tags.iter().any(|t| o.tags.contains(t)) {
            return false;
        }
        if o.tags.is_empty() || o.tags.iter().any(|t| t == "all") {
            return true;
        }
        tags.iter().any(|t| t == "always" || o.tags.contains(t))
            || (o.tags.iter().any(|t| t == "tagged") && !tags.is_empty())
            || (o.tags.iter().any(|t| t == "untagged") && tags.is_empty())
    }

    fn inherit_for<'t>(&self, task: &'t Task, inh: &Inherit<'t>) -> Inherit<'t> {
        let mut i = inh.clone();
        i.become_ = task.become_.inherit(&inh.become_);
        i.when.extend(task.when.iter().cloned());
        i.tags.extend(task.tags.iter().cloned());
        if !task.vars.is_empty() {
            i.block_vars.push(&task.vars);
        }
        if let Some(e) = &task.environment {
            i.environment.push(e.clone());
        }
        if task.ignore_errors.is_some() {
            i.ignore_errors = task.ignore_errors.clone();
        }
        if task.check_mode.is_some() {
            i.check_mode = task.check_mode.clone();
        }
        if task.remote_user.is_some() {
            i.remote_user = task.remote_user.clone();
        }
        i
    }

    /// Run a list of tasks in order; stops at the first failure.
    pub fn run_tasks<'t>(&mut self, tasks: &'t [Task], inh: &Inherit<'t>) -> Flow {
        for t in tasks {
            if self.ctx.opts.cancel.load(Ordering::Relaxed) {
                return Flow::EndPlay;
            }
            if self.ctx.end_play.load(Ordering::Relaxed) {
                return Flow::EndPlay;
            }
            let f = self.run_task(t, inh);
            if f != Flow::Continue {
                return f;
            }
        }
        Flow::Continue
    }

    /// Run one task (leaf, block or include).
    pub fn run_task<'t>(&mut self, task: &'t Task, inh: &Inherit<'t>) -> Flow {
        match &task.action {
            Action::Block {
                block,
                rescue,
                always,
            } => {
                let child = self.inherit_for(task, inh);
                let mut flow = self.run_tasks(block, &child);
                if flow == Flow::Failed && !rescue.is_empty() {
                    let host = self.name();
                    self.ctx.reporter.count(&host, |s| {
                        s.rescued += 1;
                        s.failed = s.failed.saturating_sub(1);
                    });
                    self.st.failed = false;
                    flow = self.run_tasks(rescue, &child);
                }
                if !always.is_empty() && flow != Flow::Unreachable {
                    let f2 = self.run_tasks(always, &child);
                    if flow == Flow::Continue {
                        flow = f2;
                    }
                }
                flow
            }
            Action::IncludeTasks { .. } | Action::IncludeRole { .. } => self.run_include(task, inh),
            Action::Module { .. } => self.run_leaf(task, inh),
        }
    }

    fn eval_when(&self, conds: &[Value], scope: &Vars) -> Result<Option<String>, String> {
        for c in conds {
            if !self.cond_true(c, scope)? {
                return Ok(Some(to_display(c)));
            }
        }
        Ok(None)
    }

    /// One condition (`when`, `changed_when`, `failed_when`, `until`): a boolean, or an expression.
    fn cond_true(&self, c: &Value, scope: &Vars) -> Result<bool, String> {
        Ok(match c {
            Value::Bool(b) => *b,
            Value::String(s) => {
                self.ctx.templar.eval_bool(s, scope).map_err(|e| {
                    format!("The conditional check '{s}' failed. The error was: {e}")
                })?
            }
            other => as_bool(other).unwrap_or(false),
        })
    }

    /// Items of a loop, templated.
    fn loop_items(&self, spec: &LoopSpec, scope: &Vars, task: &Task) -> Result<Vec<Value>, String> {
        let v = self
            .ctx
            .templar
            .render_value(&spec.items, scope)
            .map_err(|e| e.to_string())?;
        if spec.first_found {
            return self.first_found(&v, task).map(|p| vec![Value::String(p)]);
        }
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
            Value::Array(a) => {
                if spec.flatten {
                    let mut out = Vec::new();
                    for i in a {
                        match i {
                            Value::Array(inner) => out.extend(inner),
                            other => out.push(other),
                        }
                    }
                    Ok(out)
                } else {
                    Ok(a)
                }
            }
            Value::Null => Ok(Vec::new()),
            Value::String(s) if spec.flatten => {
                Ok(s.split(',').map(|p| Value::String(p.trim().to_string())).collect())
            }
            other => Err(format!(
                "Invalid data passed to 'loop', it requires a list, got this instead: {other}. Hint: If you passed a list/dict of just one element, try adding wantlist=True to your lookup invocation or use q/query instead of lookup."
            )),
        }
    }

    /// `with_first_found`: the first existing local file among the candidates.
    fn first_found(&self, v: &Value, task: &Task) -> Result<String, String> {
        let mut files: Vec<String> = Vec::new();
        let mut paths: Vec<String> = Vec::new();
        let mut skip = false;
        let mut add = |v: &Value, files: &mut Vec<String>, paths: &mut Vec<String>| match v {
            Value::String(s) => files.push(s.clone()),
            Value::Object(o) => {
                for f in o.get("files").into_iter() {
                    match f {
                        Value::Array(a) => files.extend(a.iter().map(to_display)),
                        other => files.extend(to_display(other).split(',').map(str::to_string)),
                    }
                }
                for p in o.get("paths").into_iter() {
                    match p {
                        Value::Array(a) => paths.extend(a.iter().map(to_display)),
                        other => paths.extend(to_display(other).split(',').map(str::to_string)),
                    }
                }
                if o.get("skip").is_some_and(is_true) {
                    skip = true;
                }
            }
            _ => {}
        };
        match v {
            Value::Array(a) => a.iter().for_each(|i| add(i, &mut files, &mut paths)),
            other => add(other, &mut files, &mut paths),
        }
        let mut dirs: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        if dirs.is_empty() {
            if let Some(r) = &task.role {
                dirs.push(r.dir.join("vars"));
                dirs.push(r.dir.join("files"));
                dirs.push(r.dir.clone());
            }
            dirs.push(self.ctx.play.dir.join("vars"));
            dirs.push(self.ctx.play.dir.join("files"));
            dirs.push(self.ctx.play.dir.clone());
        }
        for f in &files {
            let p = Path::new(f);
            if p.is_absolute() && p.exists() {
                return Ok(f.clone());
            }
            for d in &dirs {
                let dir = if d.is_absolute() {
                    d.clone()
                } else {
                    self.ctx.play.dir.join(d)
                };
                let c = dir.join(f);
                if c.exists() {
                    return Ok(c.display().to_string());
                }
            }
        }
        if skip {
            return Err(String::new());
        }
        Err(format!(
            "No file was found when using first_found. Candidates: {}",
            files.join(", ")
        ))
    }

    fn ensure_remote(&mut self) -> Result<(), SshError> {
        if self.st.remote.is_none() {
            let r = self.ctx.opts.connector.connect(&self.st.conn)?;
            self.st.remote = Some(r);
        }
        Ok(())
    }

    fn become_for(
        &self,
        inh: &Inherit<'_>,
        task: &Task,
        scope: &Vars,
    ) -> Result<Option<Become>, String> {
        let spec = task
            .become_
            .inherit(&inh.become_)
            .inherit(&self.ctx.play.become_);
        self.become_from_spec(&spec, scope)
    }

    /// Resolve a become spec (keywords, then inventory `ansible_become*`, then CLI defaults).
    fn become_from_spec(&self, spec: &BecomeSpec, scope: &Vars) -> Result<Option<Become>, String> {
        let render = |v: &Option<Value>| -> Result<Option<Value>, String> {
            match v {
                None => Ok(None),
                Some(v) => self
                    .ctx
                    .templar
                    .render_value(v, scope)
                    .map(Some)
                    .map_err(|e| e.to_string()),
            }
        };
        let o = self.ctx.opts;
        let enabled = match render(&spec.enabled)? {
            Some(v) => is_true(&v),
            None => scope
                .get("ansible_become")
                .map(is_true)
                .unwrap_or(o.become_),
        };
        if !enabled {
            return Ok(None);
        }
        let user = render(&spec.user)?
            .map(|v| to_display(&v))
            .or_else(|| scope.get("ansible_become_user").map(to_display))
            .or_else(|| o.become_user.clone())
            .unwrap_or_else(|| "root".into());
        let method = render(&spec.method)?
            .map(|v| to_display(&v))
            .or_else(|| scope.get("ansible_become_method").map(to_display))
            .or_else(|| o.become_method.clone())
            .unwrap_or_else(|| "sudo".into());
        if method != "sudo" && method != "su" {
            return Err(format!(
                "become_method '{method}' is not supported (supported: sudo, su)"
            ));
        }
        if user == self.st.conn.user {
            // Already that user: no wrapper, no extra process.
            return Ok(None);
        }
        Ok(Some(Become { method, user }))
    }

    fn environment_for(
        &self,
        inh: &Inherit<'_>,
        task: &Task,
        scope: &Vars,
    ) -> Result<Vec<(String, String)>, String> {
        let mut envs: Vec<&Value> = Vec::new();
        if let Some(e) = &self.ctx.play.environment {
            envs.push(e);
        }
        envs.extend(inh.environment.iter());
        if let Some(e) = &task.environment {
            envs.push(e);
        }
        let mut out: Vec<(String, String)> = Vec::new();
        for e in envs {
            let v = self
                .ctx
                .templar
                .render_value(e, scope)
                .map_err(|e| e.to_string())?;
            if let Value::Object(o) = v {
                for (k, v) in o {
                    out.retain(|(ek, _)| *ek != k);
                    out.push((k, to_display(&v)));
                }
            }
        }
        Ok(out)
    }

    /// Run a module task (with loop, until, register, notify) and report it.
    fn run_leaf<'t>(&mut self, task: &'t Task, inh: &Inherit<'t>) -> Flow {
        let mut tags = inh.tags.clone();
        tags.extend(task.tags.iter().cloned());
        if !self.selected(&tags) {
            return Flow::Continue;
        }
        let Action::Module { name, args } = &task.action else {
            return Flow::Continue;
        };
        let host = self.name();
        let scope = self.scope(task, inh);
        let display = task.display_name();
        self.ctx
            .reporter
            .task_start(&display, &task.pos.to_string());
        let no_log = task
            .no_log
            .as_ref()
            .and_then(|v| self.ctx.templar.render_value(v, &scope).ok())
            .is_some_and(|v| is_true(&v));

        // Conditions inherited from blocks apply without the loop item.
        let outcome = match self.eval_when(&inh.when, &scope) {
            Err(e) => Err(task_error(task, &host, &e)),
            Ok(Some(cond)) => Ok(Outcome {
                status: Status::Skipped,
                result: skip_result(&cond),
                ignored: false,
                changed: false,
            }),
            Ok(None) => self.run_leaf_items(task, inh, name, args, &scope, &display, no_log),
        };
        let ignore = inh
            .ignore_errors
            .as_ref()
            .or(task.ignore_errors.as_ref())
            .or(self.ctx.play.ignore_errors.as_ref())
            .and_then(|v| self.ctx.templar.render_value(v, &scope).ok())
            .is_some_and(|v| is_true(&v));
        let ignore = task
            .ignore_errors
            .as_ref()
            .and_then(|v| self.ctx.templar.render_value(v, &scope).ok())
            .map(|v| is_true(&v))
            .unwrap_or(ignore);
        let mut outcome = match outcome {
            Ok(o) => o,
            Err(msg) => Outcome {
                status: Status::Failed,
                result: json!({"changed": false, "failed": true, "msg": msg}),
                ignored: false,
                changed: false,
            },
        };
        if outcome.status == Status::Failed && ignore {
            outcome.ignored = true;
        }
        // register
        if let Some(reg) = &task.register {
            self.st
                .registered
                .insert(reg.clone(), outcome.result.clone());
        }
        // notify
        if outcome.changed && outcome.status != Status::Failed {
            for n in &task.notify {
                let n = self
                    .ctx
                    .templar
                    .render_str(n, &scope)
                    .map(|v| to_display(&v))
                    .unwrap_or_else(|_| n.clone());
                if !self.notified.contains(&n) {
                    self.notified.push(n);
                }
            }
        }
        let shown = if no_log {
            censor(outcome.changed)
        } else {
            outcome.result.clone()
        };
        let is_loop_summary = outcome.result.get("results").is_some();
        let print_summary = !is_loop_summary || outcome.status == Status::Failed;
        if print_summary && !(outcome.status == Status::Skipped && is_loop_summary) {
            let diff = if no_log {
                Vec::new()
            } else {
                collect_diffs(&outcome.result, is_loop_summary)
            };
            let show = name == "debug" && outcome.status != Status::Skipped;
            self.ctx.reporter.host_line(&HostLine {
                host: &host,
                task: &display,
                status: outcome.status,
                item: None,
                result: &shown,
                diff: &diff,
                ignored: outcome.ignored,
                show_result: show,
                is_item: false,
            });
        } else if is_loop_summary && outcome.status == Status::Skipped {
            self.report(&display, Status::Skipped, &shown);
        }
        let status = outcome.status;
        let changed = outcome.changed;
        let ignored = outcome.ignored;
        self.ctx.reporter.count(&host, |s| match status {
            Status::Ok => s.ok += 1,
            Status::Changed => {
                s.ok += 1;
                s.changed += 1
            }
            Status::Skipped => s.skipped += 1,
            Status::Failed if ignored => {
                s.ok += 1;
                s.ignored += 1;
                if changed {
                    s.changed += 1
                }
            }
            Status::Failed => s.failed += 1,
            Status::Unreachable => s.unreachable += 1,
        });
        match status {
            Status::Failed if !ignored => {
                self.st.failed = true;
                Flow::Failed
            }
            Status::Unreachable => {
                self.st.unreachable = true;
                self.st.remote = None;
                Flow::Unreachable
            }
            _ => {
                if let Some(f) = outcome
                    .result
                    .get("_knockplay_flow")
                    .and_then(Value::as_str)
                {
                    return match f {
                        "end_host" => Flow::EndHost,
                        "end_play" => Flow::EndPlay,
                        _ => Flow::Continue,
                    };
                }
                Flow::Continue
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_leaf_items<'t>(
        &mut self,
        task: &'t Task,
        inh: &Inherit<'t>,
        module: &str,
        args: &Value,
        scope: &Vars,
        display: &str,
        no_log: bool,
    ) -> Result<Outcome, String> {
        let host = self.name();
        let Some(spec) = &task.loop_ else {
            // No loop: evaluate the task's own when, then run once.
            return match self.eval_when(&task.when, scope) {
                Err(e) => Err(task_error(task, &host, &e)),
                Ok(Some(cond)) => Ok(Outcome {
                    status: Status::Skipped,
                    result: skip_result(&cond),
                    ignored: false,
                    changed: false,
                }),
                Ok(None) => Ok(self.run_once(task, inh, module, args, scope)),
            };
        };
        let items = match self.loop_items(spec, scope, task) {
            Ok(i) => i,
            Err(e) if e.is_empty() => Vec::new(),
            Err(e) => return Err(task_error(task, &host, &e)),
        };
        let mut results = Vec::new();
        let (mut any_changed, mut any_failed, mut all_skipped) = (false, false, true);
        for (idx, item) in items.iter().enumerate() {
            let mut s = scope.clone();
            s.insert(spec.loop_var.clone(), item.clone());
            s.insert("ansible_loop_var".into(), json!(spec.loop_var));
            if let Some(iv) = &spec.index_var {
                s.insert(iv.clone(), json!(idx));
            }
            let label = match &spec.label {
                Some(l) => self
                    .ctx
                    .templar
                    .render_value(l, &s)
                    .map(|v| to_display(&v))
                    .unwrap_or_else(|_| to_display(item)),
                None => match item {
                    Value::String(x) => x.clone(),
                    other => other.to_string(),
                },
            };
            let o = match self.eval_when(&task.when, &s) {
                Err(e) => Outcome {
                    status: Status::Failed,
                    result: json!({"failed": true, "changed": false, "msg": task_error(task, &host, &e)}),
                    ignored: false,
                    changed: false,
                },
                Ok(Some(cond)) => Outcome {
                    status: Status::Skipped,
                    result: skip_result(&cond),
                    ignored: false,
                    changed: false,
                },
                Ok(None) => self.run_once(task, inh, module, args, &s),
            };
            if o.status == Status::Unreachable {
                return Ok(o);
            }
            any_changed |= o.changed;
            any_failed |= o.status == Status::Failed;
            all_skipped &= o.status == Status::Skipped;
            let mut r = o.result.clone();
            if let Value::Object(m) = &mut r {
                m.insert(spec.loop_var.clone(), item.clone());
                m.insert("ansible_loop_var".into(), json!(spec.loop_var));
            }
            let shown = if no_log { censor(o.changed) } else { r.clone() };
            let diff = if no_log {
                Vec::new()
            } else {
                collect_diffs(&r, false)
            };
            self.ctx.reporter.host_line(&HostLine {
                host: &host,
                task: display,
                status: o.status,
                item: Some(if no_log { "None".into() } else { label }),
                result: &shown,
                diff: &diff,
                ignored: false,
                show_result: module == "debug" && o.status != Status::Skipped,
                is_item: true,
            });
            results.push(r);
        }
        let mut summary = Vars::new();
        summary.insert("changed".into(), json!(any_changed));
        summary.insert("results".into(), Value::Array(results));
        if items.is_empty() || all_skipped {
            summary.insert("skipped".into(), json!(true));
            if items.is_empty() {
                summary.insert("skipped_reason".into(), json!("No items in the list"));
            }
            summary.insert("msg".into(), json!("All items skipped"));
        } else if any_failed {
            summary.insert("failed".into(), json!(true));
            summary.insert("msg".into(), json!("One or more items failed"));
        } else {
            summary.insert("msg".into(), json!("All items completed"));
        }
        let status = if items.is_empty() || all_skipped {
            Status::Skipped
        } else if any_failed {
            Status::Failed
        } else if any_changed {
            Status::Changed
        } else {
            Status::Ok
        };
        Ok(Outcome {
            status,
            result: Value::Object(summary),
            ignored: false,
            changed: any_changed,
        })
    }

    /// One execution of a module with the given scope (one loop item), with until/retries and
    /// changed_when/failed_when.
    fn run_once<'t>(
        &mut self,
        task: &'t Task,
        inh: &Inherit<'t>,
        module: &str,
        args: &Value,
        scope: &Vars,
    ) -> Outcome {
        let host = self.name();
        let fail = |msg: String| Outcome {
            status: Status::Failed,
            result: json!({"changed": false, "failed": true, "msg": msg}),
            ignored: false,
            changed: false,
        };
        let args = match self.ctx.templar.render_value(args, scope) {
            Ok(Value::Object(mut m)) => {
                if let Some(Value::Object(extra)) = m.remove(VARIABLE_PARAMS) {
                    for (k, v) in extra {
                        m.entry(k).or_insert(v);
                    }
                }
                m.retain(|_, v| v.as_str() != Some(OMIT));
                m
            }
            Ok(_) => Vars::new(),
            Err(e) => {
                return fail(task_error(
                    task,
                    &host,
                    &format!(
                    "The task includes an option with an undefined variable. The error was: {e}"
                ),
                ))
            }
        };
        let retries = task
            .retries
            .as_ref()
            .and_then(|v| self.ctx.templar.render_value(v, scope).ok())
            .and_then(|v| to_display(&v).parse::<u32>().ok())
            .unwrap_or(3);
        let delay = task
            .delay
            .as_ref()
            .and_then(|v| self.ctx.templar.render_value(v, scope).ok())
            .and_then(|v| to_display(&v).parse::<f64>().ok())
            .unwrap_or(5.0);
        let attempts = if task.until.is_some() {
            retries.max(1) + 1
        } else {
            1
        };
        let mut last = fail("not run".into());
        for attempt in 1..=attempts {
            last = self.execute(task, inh, module, &args, scope);
            if last.status == Status::Unreachable {
                return last;
            }
            // changed_when / failed_when see the result under the register name.
            let mut s2 = scope.clone();
            if let Some(reg) = &task.register {
                s2.insert(reg.clone(), last.result.clone());
            }
            if let Value::Object(r) = &last.result {
                for (k, v) in r {
                    s2.entry(k.clone()).or_insert(v.clone());
                }
            }
            if let Some(cw) = &task.changed_when {
                match self.cond_value(cw, &s2) {
                    Ok(c) => {
                        last.changed = c;
                        if let Value::Object(m) = &mut last.result {
                            m.insert("changed".into(), json!(c));
                        }
                        if last.status == Status::Changed || last.status == Status::Ok {
                            last.status = if c { Status::Changed } else { Status::Ok };
                        }
                    }
                    Err(e) => return fail(task_error(task, &host, &e)),
                }
            }
            if let Some(fw) = &task.failed_when {
                match self.cond_value(fw, &s2) {
                    Ok(f) => {
                        if let Value::Object(m) = &mut last.result {
                            m.insert("failed".into(), json!(f));
                            if f && !m.contains_key("msg") {
                                m.insert("msg".into(), json!("failed_when condition was true"));
                            }
                        }
                        last.status = if f {
                            Status::Failed
                        } else if last.changed {
                            Status::Changed
                        } else {
                            Status::Ok
                        };
                    }
                    Err(e) => return fail(task_error(task, &host, &e)),
                }
            }
            if let Some(until) = &task.until {
                match self.cond_value(until, &s2) {
                    Ok(true) => {
                        if let Value::Object(m) = &mut last.result {
                            m.insert("attempts".into(), json!(attempt));
                        }
                        return last;
                    }
                    Ok(false) => {
                        if let Value::Object(m) = &mut last.result {
                            m.insert("attempts".into(), json!(attempt));
                        }
                        if attempt < attempts {
                            self.ctx.reporter.note(&format!(
                                "FAILED - RETRYING: [{host}]: {} ({} retries left).",
                                task.display_name(),
                                attempts - attempt
                            ));
                            std::thread::sleep(Duration::from_secs_f64(delay.max(0.0)));
                            continue;
                        }
                        last.status = Status::Failed;
                        if let Value::Object(m) = &mut last.result {
                            m.insert("failed".into(), json!(true));
                            m.insert("msg".into(), json!(format!("Retried {retries} times and the until condition never became true")));
                        }
                    }
                    Err(e) => return fail(task_error(task, &host, &e)),
                }
            }
            break;
        }
        last
    }

    fn cond_value(&self, v: &Value, scope: &Vars) -> Result<bool, String> {
        let list: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for c in list {
            if !self.cond_true(c, scope)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Dispatch to a control module or a remote module.
    fn execute<'t>(
        &mut self,
        task: &'t Task,
        inh: &Inherit<'t>,
        module: &str,
        args: &Vars,
        scope: &Vars,
    ) -> Outcome {
        let host = self.name();
        let short = crate::playbook::keywords::short_module_name(module);
        let check = match inh.check_mode.as_ref().or(task.check_mode.as_ref()).or(self
            .ctx
            .play
            .check_mode
            .as_ref())
        {
            Some(v) => self
                .ctx
                .templar
                .render_value(v, scope)
                .map(|v| is_true(&v))
                .unwrap_or(self.ctx.opts.check),
            None => self.ctx.opts.check,
        };
        let check = task
            .check_mode
            .as_ref()
            .and_then(|v| self.ctx.templar.render_value(v, scope).ok())
            .map(|v| is_true(&v))
            .unwrap_or(check);
        if crate::playbook::keywords::control_params(short).is_some() {
            let r = super::control::run(self, task, short, args, scope, check);
            return match r {
                Ok(r) => outcome_of(r),
                Err(super::control::ControlError::Unreachable(e)) => unreachable(e),
                Err(super::control::ControlError::Failed(msg)) => Outcome {
                    status: Status::Failed,
                    result: json!({"changed": false, "failed": true, "msg": task_error(task, &host, &msg)}),
                    ignored: false,
                    changed: false,
                },
            };
        }
        let Some(m) = modules::lookup(short) else {
            return Outcome {
                status: Status::Failed,
                result: json!({"changed": false, "failed": true, "msg": task_error(task, &host, &format!("couldn't resolve module/action '{module}'"))}),
                ignored: false,
                changed: false,
            };
        };
        let become_ = match self.become_for(inh, task, scope) {
            Ok(b) => b,
            Err(e) => return outcome_of(ModuleResult::failed(task_error(task, &host, &e))),
        };
        let env = match self.environment_for(inh, task, scope) {
            Ok(e) => e,
            Err(e) => return outcome_of(ModuleResult::failed(task_error(task, &host, &e))),
        };
        if let Err(e) = self.ensure_remote() {
            return unreachable(e);
        }
        let (file_search, template_search) = search_paths(self.ctx.play, task.role.as_deref());
        let templater = ScopeTemplater {
            templar: self.ctx.templar,
            scope,
        };
        let facts = self.st.facts.clone();
        let Some(remote) = self.st.remote.as_mut() else {
            return unreachable(SshError::Session {
                addr: self.st.conn.addr.clone(),
                reason: "no session".into(),
            });
        };
        let mut mctx = ModuleCtx {
            remote: remote.as_mut(),
            become_,
            env,
            check_mode: check,
            diff: self.ctx.opts.diff,
            facts: &facts,
            file_search,
            template_search,
            templater: &templater,
            timeout: None,
        };
        match m.execute(args, &mut mctx) {
            Ok(r) => outcome_of(r),
            Err(ModuleError::Unreachable(e)) => unreachable(e),
            Err(ModuleError::Args(msg)) | Err(ModuleError::Local(msg)) => {
                let msg = if msg.starts_with(&format!("{short}:")) {
                    msg
                } else {
                    format!("{short}: {msg}")
                };
                outcome_of(ModuleResult::failed(task_error(task, &host, &msg)))
            }
        }
    }

    /// Dynamic `include_tasks` / `include_role`.
    fn run_include<'t>(&mut self, task: &'t Task, inh: &Inherit<'t>) -> Flow {
        let mut tags = inh.tags.clone();
        tags.extend(task.tags.iter().cloned());
        if !self.selected(&tags) {
            return Flow::Continue;
        }
        let host = self.name();
        let scope = self.scope(task, inh);
        let mut conds = inh.when.clone();
        conds.extend(task.when.iter().cloned());
        let display = task.display_name();
        let fail_line = |me: &mut Self, msg: String| {
            let r = json!({"changed": false, "failed": true, "msg": msg});
            me.report(&display, Status::Failed, &r);
            me.ctx.reporter.count(&host, |s| s.failed += 1);
            me.st.failed = true;
            Flow::Failed
        };
        let items: Vec<Option<Value>> = match &task.loop_ {
            None => vec![None],
            Some(spec) => match self.loop_items(spec, &scope, task) {
                Ok(i) => i.into_iter().map(Some).collect(),
                Err(e) => return fail_line(self, task_error(task, &host, &e)),
            },
        };
        for item in items {
            let mut s = scope.clone();
            let mut params = task.vars.clone();
            if let (Some(spec), Some(item)) = (&task.loop_, &item) {
                s.insert(spec.loop_var.clone(), item.clone());
                params.insert(spec.loop_var.clone(), item.clone());
            }
            match self.eval_when(&conds, &s) {
                Err(e) => return fail_line(self, task_error(task, &host, &e)),
                Ok(Some(cond)) => {
                    let r = skip_result(&cond);
                    self.report(&display, Status::Skipped, &r);
                    self.ctx.reporter.count(&host, |s| s.skipped += 1);
                    continue;
                }
                Ok(None) => {}
            }
            let loaded = match &task.action {
                Action::IncludeTasks { file } => match self.ctx.templar.render_value(file, &s) {
                    Ok(f) => {
                        let path =
                            parse::resolve_include(&self.ctx.play.dir, task, &to_display(&f));
                        parse::load_tasks_file(&path, &self.ctx.play.dir, task.role.clone())
                            .map_err(|e| e.to_string())
                    }
                    Err(e) => Err(task_error(task, &host, &e.to_string())),
                },
                Action::IncludeRole { name, tasks_from } => {
                    let n = self
                        .ctx
                        .templar
                        .render_value(name, &s)
                        .map(|v| to_display(&v));
                    let tf = tasks_from
                        .as_ref()
                        .and_then(|t| self.ctx.templar.render_value(t, &s).ok())
                        .map(|v| to_display(&v));
                    match n {
                        Ok(n) => {
                            parse::load_role(&n, &self.ctx.play.dir, Vars::new(), tf.as_deref())
                                .map(|(t, _)| t)
                                .map_err(|e| e.to_string())
                        }
                        Err(e) => Err(task_error(task, &host, &e.to_string())),
                    }
                }
                _ => Ok(Vec::new()),
            };
            let tasks = match loaded {
                Ok(t) => t,
                Err(e) => return fail_line(self, e),
            };
            // Ansible prints "included: file for host".
            self.ctx
                .reporter
                .note(&format!("included: {display} for {host}"));
            let mut child = inh.clone();
            child.become_ = task.become_.inherit(&inh.become_);
            child.owned_vars.push(Arc::new(params));
            if let Some(e) = &task.environment {
                child.environment.push(e.clone());
            }
            // The include's conditions were evaluated once; children are not re-checked.
            child.when.clear();
            let flow = self.run_dynamic(tasks, &child);
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// Run tasks that were loaded at run time (owned, so they outlive the borrow by being leaked
    /// into an Arc held for the duration of the call).
    fn run_dynamic(&mut self, tasks: Vec<Task>, inh: &Inherit<'_>) -> Flow {
        let tasks = Arc::new(tasks);
        let owned: Inherit<'_> = Inherit {
            become_: inh.become_.clone(),
            when: inh.when.clone(),
            tags: inh.tags.clone(),
            block_vars: inh.block_vars.clone(),
            environment: inh.environment.clone(),
            ignore_errors: inh.ignore_errors.clone(),
            check_mode: inh.check_mode.clone(),
            remote_user: inh.remote_user.clone(),
            owned_vars: inh.owned_vars.clone(),
        };
        let t2 = tasks.clone();
        self.run_tasks(&t2, &owned)
    }

    /// Run notified handlers in definition order, then forget the notifications.
    pub fn flush_handlers(&mut self) -> Flow {
        if self.notified.is_empty() || self.st.failed {
            return Flow::Continue;
        }
        let notified = std::mem::take(&mut self.notified);
        let handlers = &self.ctx.play.handlers;
        let inh = Inherit::default();
        for h in handlers {
            let name = h.name.clone().unwrap_or_default();
            let hit = notified
                .iter()
                .any(|n| *n == name || h.listen.contains(n) || *n == h.display_name());
            if hit {
                let f = self.run_task(h, &inh);
                if f != Flow::Continue {
                    return f;
                }
            }
        }
        Flow::Continue
    }

    /// Gather facts in one round trip.
    pub fn gather_facts(&mut self, display: &str) -> Flow {
        let host = self.name();
        self.ctx.reporter.task_start(display, "gather_facts");
        if let Err(e) = self.ensure_remote() {
            return self.report_unreachable(display, e);
        }
        // Facts are gathered as the play's become user, as Ansible does (ansible_user_id).
        let mut scope = self.inv_vars.clone();
        scope.extend(self.ctx.play.vars.clone());
        scope.extend(self.ctx.opts.extra_vars.clone());
        let become_ = self
            .become_from_spec(&self.ctx.play.become_, &scope)
            .unwrap_or_default();
        let script =
            crate::ssh::become_::wrap(crate::facts::gather_script(), become_.as_ref(), &[]);
        let Some(remote) = self.st.remote.as_mut() else {
            return Flow::Unreachable;
        };
        match remote.exec(&script, None, None) {
            Ok(out) => {
                let facts = crate::facts::parse(&out.stdout_str());
                self.st.facts.extend(facts);
                if let Ok(mut hv) = self.ctx.hostvars.lock() {
                    let e = hv.entry(host.clone()).or_default();
                    for (k, v) in &self.st.facts {
                        e.insert(k.clone(), v.clone());
                    }
                }
                let r = json!({"changed": false});
                self.report(display, Status::Ok, &r);
                self.ctx.reporter.count(&host, |s| s.ok += 1);
                Flow::Continue
            }
            Err(e) => self.report_unreachable(display, e),
        }
    }

    pub fn report_unreachable(&mut self, display: &str, e: SshError) -> Flow {
        let host = self.name();
        let r = json!({"changed": false, "msg": e.to_string(), "unreachable": true});
        self.report(display, Status::Unreachable, &r);
        self.ctx.reporter.count(&host, |s| s.unreachable += 1);
        self.st.unreachable = true;
        self.st.remote = None;
        Flow::Unreachable
    }

    /// Refresh this host's entry in `hostvars` after set_fact/register.
    pub fn publish_hostvars(&self) {
        if let Ok(mut hv) = self.ctx.hostvars.lock() {
            let e = hv.entry(self.st.name.clone()).or_default();
            for (k, v) in &self.st.registered {
                e.insert(k.clone(), v.clone());
            }
        }
    }

    /// Remote access for control modules (setup, wait_for_connection).
    pub fn remote(&mut self) -> Result<&mut (dyn Remote + Send), SshError> {
        self.ensure_remote()?;
        match self.st.remote.as_mut() {
            Some(r) => Ok(r.as_mut()),
            None => Err(SshError::Session {
                addr: self.st.conn.addr.clone(),
                reason: "no session".into(),
            }),
        }
    }

    /// Drop the session and connect again (wait_for_connection).
    pub fn reconnect(&mut self) -> Result<(), SshError> {
        self.st.remote = None;
        self.ensure_remote()
    }
}

fn collect_diffs(result: &Value, _loop: bool) -> Vec<FileDiff> {
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

fn outcome_of(r: ModuleResult) -> Outcome {
    let status = if r.failed {
        Status::Failed
    } else if r.data.get("skipped").is_some_and(is_true) {
        Status::Skipped
    } else if r.changed {
        Status::Changed
    } else {
        Status::Ok
    };
    Outcome {
        status,
        changed: r.changed,
        result: result_value(&r),
        ignored: false,
    }
}

fn unreachable(e: SshError) -> Outcome {
    if !e.is_unreachable() {
        return Outcome {
            status: Status::Failed,
            result: json!({"changed": false, "failed": true, "msg": e.to_string()}),
            ignored: false,
            changed: false,
        };
    }
    Outcome {
        status: Status::Unreachable,
        result: json!({"changed": false, "msg": e.to_string(), "unreachable": true}),
        ignored: false,
        changed: false,
    }
}

/// Where `src` files and templates are looked up: role dirs first, then the playbook's.
pub fn search_paths(play: &Play, role: Option<&RoleCtx>) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut files = Vec::new();
    let mut templates = Vec::new();
    if let Some(r) = role {
        files.push(r.dir.join("files"));
        files.push(r.dir.clone());
        templates.push(r.dir.join("templates"));
        templates.push(r.dir.clone());
    }
    files.push(play.dir.join("files"));
    files.push(play.dir.clone());
    templates.push(play.dir.join("templates"));
    templates.push(play.dir.clone());
    (files, templates)
}

/// Renders module templates (`template:` src) with the task's scope.
pub struct ScopeTemplater<'a> {
    pub templar: &'a Templar,
    pub scope: &'a Vars,
}

impl modules::Templater for ScopeTemplater<'_> {
    fn render(&self, source: &str, name: &str) -> Result<String, String> {
        self.templar
            .render_template(source, name, self.scope)
            .map_err(|e| format!("{name}: {e}"))
    }
}
