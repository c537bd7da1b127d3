//! The per-host walk of a task list: blocks with `rescue`/`always`, tag selection, dynamic
//! `include_tasks`/`include_role` (with loops), and notified handlers. Leaf tasks are run by
//! `task`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::host::HostRun;
use super::keywords::{first_false, Inherit};
use super::report::Status;
use super::result::{skip_result, task_error, Flow};
use super::RunOptions;
use crate::playbook::model::{Action, Task};
use crate::playbook::parse;
use crate::value::{to_display, Value, Vars};

/// Is a task with these tags (its own and inherited) selected by `--tags` / `--skip-tags`?
fn selected(opts: &RunOptions, tags: &[String]) -> bool {
    tags_selected(&opts.tags, &opts.skip_tags, tags)
}

/// Whether a task with (effective) `tags` runs under `--tags only` and `--skip-tags skip`, by
/// Ansible's rules (`always`, `never`, `tagged`, `untagged`, `all`).
pub fn tags_selected(only: &[String], skip: &[String], tags: &[String]) -> bool {
    if tags.iter().any(|t| skip.contains(t)) {
        return false;
    }
    if tags.iter().any(|t| t == "never") && !tags.iter().any(|t| only.contains(t)) {
        return false;
    }
    if only.is_empty() || only.iter().any(|t| t == "all") {
        return true;
    }
    tags.iter().any(|t| t == "always" || only.contains(t))
        || (only.iter().any(|t| t == "tagged") && !tags.is_empty())
        || (only.iter().any(|t| t == "untagged") && tags.is_empty())
}

/// What a block passes down to its tasks.
fn block_child<'t>(task: &'t Task, inh: &Inherit<'t>) -> Inherit<'t> {
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
    if task.no_log.is_some() {
        i.no_log = task.no_log.clone();
    }
    if task.timeout.is_some() {
        i.timeout = task.timeout.clone();
    }
    if task.delegate_to.is_some() {
        i.delegate_to = task.delegate_to.clone();
    }
    if task.run_once.is_some() {
        i.run_once = task.run_once.clone();
    }
    if task.connection.is_some() {
        i.connection = task.connection.clone();
    }
    if task.throttle.is_some() {
        i.throttle = task.throttle.clone();
    }
    if task.any_errors_fatal.is_some() {
        i.any_errors_fatal = task.any_errors_fatal.clone();
    }
    if task.diff.is_some() {
        i.diff = task.diff.clone();
    }
    if let Some(d) = &task.module_defaults {
        i.module_defaults.push(d.clone());
    }
    i
}

/// What an include passes down to the tasks it loads: its parameters (and loop item) as vars.
/// What an include loaded: its tasks, an included role's handlers, and the name its
/// `included:` line shows.
type Included = (Vec<Task>, Vec<Task>, String);

fn include_child<'t>(task: &Task, inh: &Inherit<'t>, params: Vars) -> Inherit<'t> {
    let mut child = inh.clone();
    child.become_ = task.become_.inherit(&inh.become_);
    child.owned_vars.push(Arc::new(params));
    if let Some(e) = &task.environment {
        child.environment.push(e.clone());
    }
    // The include's conditions were evaluated once; children are not re-checked.
    child.when.clear();
    child
}

impl HostRun<'_, '_> {
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
            } => self.run_block(block, rescue, always, &block_child(task, inh)),
            Action::IncludeTasks { .. } | Action::IncludeRole { .. } => self.run_include(task, inh),
            Action::Module { .. } => self.run_leaf(task, inh),
        }
    }

    /// `block`, then `rescue` if it failed (the failure then counts as rescued), then `always`.
    fn run_block<'t>(
        &mut self,
        block: &'t [Task],
        rescue: &'t [Task],
        always: &'t [Task],
        child: &Inherit<'t>,
    ) -> Flow {
        let mut flow = self.run_tasks(block, child);
        if flow == Flow::Failed && !rescue.is_empty() {
            let host = self.name();
            self.ctx.reporter.count(&host, |s| {
                s.rescued += 1;
                s.failed = s.failed.saturating_sub(1);
            });
            self.st.failed = false;
            flow = self.run_tasks(rescue, child);
        }
        if !always.is_empty() && flow != Flow::Unreachable {
            let f2 = self.run_tasks(always, child);
            if flow == Flow::Continue {
                flow = f2;
            }
        }
        flow
    }

    /// Is this task, with what it inherits, selected by `--tags` / `--skip-tags`?
    pub(super) fn is_selected(&self, task: &Task, inh: &Inherit<'_>) -> bool {
        let mut tags = inh.tags.clone();
        tags.extend(task.tags.iter().cloned());
        selected(self.ctx.opts, &tags)
    }

    /// Dynamic `include_tasks` / `include_role`.
    fn run_include<'t>(&mut self, task: &'t Task, inh: &Inherit<'t>) -> Flow {
        if !self.is_selected(task, inh) {
            return Flow::Continue;
        }
        let host = self.name();
        let scope = self.scope(task, inh);
        let mut conds = inh.when.clone();
        conds.extend(task.when.iter().cloned());
        let display = task.display_name();
        let items: Vec<Option<Value>> = match &task.loop_ {
            None => vec![None],
            Some(spec) => match self.loop_items(spec, &scope, task) {
                Ok(i) => i.into_iter().map(Some).collect(),
                Err(e) => return self.include_failed(&display, task_error(task, &host, &e)),
            },
        };
        for item in items {
            let mut s = scope.clone();
            let mut params = task.vars.clone();
            if let (Some(spec), Some(item)) = (&task.loop_, &item) {
                s.insert(spec.loop_var.clone(), item.clone());
                params.insert(spec.loop_var.clone(), item.clone());
                // The item is data: the included tasks see it, never render it.
                crate::playbook::template::mark_data(&mut params, &spec.loop_var);
            }
            match first_false(self.ctx.templar, &conds, &s) {
                Err(e) => return self.include_failed(&display, task_error(task, &host, &e)),
                Ok(Some(cond)) => {
                    self.report(&display, Status::Skipped, &skip_result(&cond));
                    self.ctx.reporter.count(&host, |s| s.skipped += 1);
                    continue;
                }
                Ok(None) => {}
            }
            let (tasks, shown) = match self.load_included(task, &s) {
                Ok((t, handlers, shown)) => {
                    self.role_handlers.extend(handlers);
                    (t, shown)
                }
                Err(e) => return self.include_failed(&display, e),
            };
            // Ansible prints "included: /path/file.yml for host" under the include's header and
            // counts it as ok.
            self.ctx
                .reporter
                .task_start(&display, &task.pos.to_string());
            self.ctx
                .reporter
                .note(&format!("included: {shown} for {host}"));
            self.ctx.reporter.count(&host, |s| s.ok += 1);
            // `apply`: the included tasks run inside a block with those keywords.
            let apply = match &task.action {
                Action::IncludeTasks { apply, .. } | Action::IncludeRole { apply, .. } => {
                    apply.as_deref()
                }
                _ => None,
            };
            let tasks = match apply {
                Some(wrapper) => {
                    let mut block = wrapper.clone();
                    block.pos = task.pos.clone();
                    block.role = task.role.clone();
                    block.action = Action::block_of(tasks);
                    vec![block]
                }
                None => tasks,
            };
            let flow = self.run_tasks(&tasks, &include_child(task, inh, params));
            if flow != Flow::Continue {
                return flow;
            }
        }
        Flow::Continue
    }

    /// An include that could not be evaluated or loaded: one failed line, counted.
    fn include_failed(&mut self, display: &str, msg: String) -> Flow {
        let host = self.name();
        let r = serde_json::json!({"changed": false, "failed": true, "msg": msg});
        self.report(display, Status::Failed, &r);
        self.ctx.reporter.count(&host, |s| s.failed += 1);
        self.st.failed = true;
        Flow::Failed
    }

    /// Load the tasks an include names (its file or role templated with `scope`).
    /// Returns the tasks, the handlers of an included role, and what Ansible's `included:`
    /// line names (the file's path, or the role).
    fn load_included(&self, task: &Task, scope: &Vars) -> Result<Included, String> {
        let host = self.name();
        let templar = self.ctx.templar;
        let dir = &self.ctx.play.dir;
        match &task.action {
            Action::IncludeTasks { file, .. } => match templar.render_value(file, scope) {
                Ok(f) => {
                    let path = parse::resolve_include(dir, task, &to_display(&f));
                    let shown = std::path::absolute(&path)
                        .unwrap_or_else(|_| path.clone())
                        .display()
                        .to_string();
                    parse::load_tasks_file(&path, dir, &self.ctx.play.search, task.role.clone())
                        .map(|t| (t, Vec::new(), shown))
                        .map_err(|e| e.to_string())
                }
                Err(e) => Err(task_error(task, &host, &e.to_string())),
            },
            Action::IncludeRole { name, from, .. } => {
                let n = templar.render_value(name, scope).map(|v| to_display(&v));
                let files =
                    from.map(|v| templar.render_value(v, scope).ok().map(|v| to_display(&v)));
                match n {
                    Ok(n) => parse::load_role(
                        &n,
                        dir,
                        &self.ctx.play.search,
                        task.role.clone(),
                        Vars::new(),
                        &files,
                        &self.ctx.play.roles_seen,
                    )
                    .map(|(t, h)| (t, h, n.clone()))
                    .map_err(|e| e.to_string()),
                    Err(e) => Err(task_error(task, &host, &e.to_string())),
                }
            }
            _ => Ok((Vec::new(), Vec::new(), String::new())),
        }
    }

    /// Run notified handlers in definition order, then forget the notifications.
    pub fn flush_handlers(&mut self) -> Flow {
        if self.notified.is_empty() || self.st.failed {
            return Flow::Continue;
        }
        let notified = std::mem::take(&mut self.notified);
        let ctx = self.ctx;
        let inh = Inherit::default();
        let role_handlers = std::mem::take(&mut self.role_handlers);
        let flow = self.run_notified(
            ctx.play.handlers.iter().chain(&role_handlers),
            &notified,
            &inh,
        );
        self.role_handlers = role_handlers;
        flow
    }

    fn run_notified<'t>(
        &mut self,
        handlers: impl Iterator<Item = &'t Task>,
        notified: &[String],
        inh: &Inherit<'_>,
    ) -> Flow {
        // A handler named twice (a role listed twice, or included again) is notified once: the
        // last one defined shadows the others, as in Ansible; `listen` topics reach every one.
        let handlers: Vec<&Task> = handlers.collect();
        let was = std::mem::replace(&mut self.in_handlers, true);
        let flow = self.run_hits(&handlers, notified, inh);
        self.in_handlers = was;
        flow
    }

    /// The handlers `notified` names, in definition order.
    fn run_hits(&mut self, handlers: &[&Task], notified: &[String], inh: &Inherit<'_>) -> Flow {
        for (i, h) in handlers.iter().enumerate() {
            let name = h.name.clone().unwrap_or_default();
            let display = h.display_name();
            let shadowed = handlers[i + 1..]
                .iter()
                .any(|later| later.display_name() == display);
            let by_name = !shadowed && notified.iter().any(|n| *n == name || *n == display);
            let hit = by_name || notified.iter().any(|n| h.listen.contains(n));
            if hit {
                let f = self.run_task(h, inh);
                if f != Flow::Continue {
                    return f;
                }
            }
        }
        Flow::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_selection() {
        let d = tempfile::tempdir().unwrap();
        let (mut o, _) =
            super::super::tests::options(d.path(), "- hosts: all\n  tasks: []\n", &["h"], &[], &[]);
        let v = |s: &[&str]| s.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        // (--tags, --skip-tags, task tags, selected)
        type Tags<'a> = &'a [&'a str];
        let cases: Vec<(Tags, Tags, Tags, bool)> = vec![
            (&[], &[], &[], true),
            (&[], &[], &["x"], true),
            (&[], &["x"], &["x", "y"], false),
            (&[], &[], &["never"], false),
            (&["debug"], &[], &["never", "debug"], true),
            (&["all"], &[], &["x"], true),
            (&["x"], &[], &["y"], false),
            (&["x"], &[], &["always"], true),
            (&["tagged"], &[], &["y"], true),
            (&["tagged"], &[], &[], false),
            (&["untagged"], &[], &[], true),
            (&["untagged"], &[], &["y"], false),
        ];
        for (tags, skip, task_tags, want) in cases {
            o.tags = v(tags);
            o.skip_tags = v(skip);
            assert_eq!(
                selected(&o, &v(task_tags)),
                want,
                "{tags:?} {skip:?} {task_tags:?}"
            );
        }
    }
}
