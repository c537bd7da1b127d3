//! One leaf task on one host: tag selection, keywords, `when`, the module run (control module or
//! remote module, with become and environment), `until` retries, `changed_when`/`failed_when`,
//! `ignore_errors`, `register`, `notify`, and its report line and counters. Loops are in `loops`.
//! The task's `timeout` ([`Deadline`]) bounds all of it: every command, retry and wait.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;

use super::asyncs;
use super::control::{self, ControlCtx, ControlError, Done, Effect};
use super::deadline::{sleep_within, Deadline};
use super::defaults;
use super::delegate::{delegate_link, Place};
use super::host::{HostRun, PlayCtx};
use super::keywords::{ExecKeywords, Inherit, KeywordSources, TaskKeywords};
use super::once::Turn;
use super::report::{HostLine, Status};
use super::result::{shown, task_error, Flow, Outcome};
use crate::modules::{self, ModuleCtx, ModuleError, ModuleResult, Spec};
use crate::playbook::args::VARIABLE_PARAMS;
use crate::playbook::keywords::{control_params, short_module_name};
use crate::playbook::model::{Action, Play, RoleCtx, Task};
use crate::playbook::template::{Templar, OMIT};
use crate::ssh::{LocalShell, Remote};
use crate::value::{Value, Vars};

/// A leaf task being run on one host: what every step of it reads.
pub(super) struct Leaf<'a> {
    pub task: &'a Task,
    pub module: &'a str,
    /// The module's arguments, untemplated.
    pub args: &'a Value,
    pub display: String,
    pub sources: KeywordSources<'a>,
    pub keywords: TaskKeywords<'a>,
    /// When the task's `timeout` runs out, counted from its start.
    pub deadline: Option<Deadline>,
}

/// How `until` repeats a task: attempts in all, the delay between them, the retries asked for.
struct Until {
    attempts: u32,
    delay: Duration,
    retries: u32,
}

impl HostRun<'_, '_> {
    /// Run a module task (with loop, until, register, notify) and report it.
    pub(super) fn run_leaf(&mut self, task: &Task, inh: &Inherit<'_>) -> Flow {
        if !self.is_selected(task, inh) {
            return Flow::Continue;
        }
        let Action::Module { name, args } = &task.action else {
            return Flow::Continue;
        };
        self.take_delegated_facts();
        let scope = self.scope(task, inh);
        let display = task.display_name();
        let at = task.pos.to_string();
        if self.in_handlers {
            self.ctx.reporter.handler_start(&display, &at);
        } else {
            self.ctx.reporter.task_start(&display, &at);
        }
        let login_user = self.st.link.conn.user.clone();
        let sources = KeywordSources {
            templar: self.ctx.templar,
            task,
            inherited: inh,
            play: self.ctx.play,
            opts: self.ctx.opts,
            login_user: &login_user,
        };
        let keywords = sources.resolve(&scope);
        let timeout = keywords.timeout.clone().ok().flatten();
        self.st.current_task = Some(display.clone());
        let leaf = Leaf {
            task,
            module: name,
            args,
            display,
            sources,
            keywords,
            deadline: Deadline::after(Instant::now(), timeout),
        };
        // `throttle`: at most that many hosts at once in this task.
        let limit = task
            .throttle
            .as_ref()
            .or(inh.throttle.as_ref())
            .and_then(|v| self.ctx.templar.render_value(v, &scope).ok())
            .and_then(|v| crate::value::count_of(&v).ok())
            .filter(|n| *n > 0);
        let ctx = self.ctx;
        let _permit = limit.map(|n| ctx.throttle.enter(&task.pos.to_string(), n as usize));
        // `run_once`: one host runs it, the others take its result without a line of their own.
        let (mut outcome, ran_here) = match once_turn(self.ctx, &self.st.name, task, inh, &scope) {
            Err(e) => (Outcome::failed(task_error(task, &self.name(), &e)), true),
            Ok(None) => (self.leaf_outcome(&leaf, &scope), true),
            Ok(Some(Turn::Run(duty))) => {
                let o = self.leaf_outcome(&leaf, &scope);
                duty.finish(&o);
                (o, true)
            }
            Ok(Some(Turn::Shared(o))) => (o, false),
        };
        if outcome.status == Status::Failed && leaf.keywords.ignore_errors {
            outcome.ignored = true;
        }
        if let Some(reg) = &task.register {
            self.st
                .registered
                .insert(reg.clone(), outcome.result.clone());
        }
        if outcome.changed && outcome.status != Status::Failed {
            for n in &leaf.keywords.notify {
                if !self.notified.contains(n) {
                    self.notified.push(n.clone());
                }
            }
        }
        if ran_here || outcome.status == Status::Failed {
            let no_diff = self.keyword_false(task.diff.as_ref().or(inh.diff.as_ref()), &scope);
            self.report_leaf(&leaf, &outcome, no_diff);
            self.count_outcome(&outcome);
        }
        if outcome.status == Status::Failed && !outcome.ignored {
            let fatal = task
                .any_errors_fatal
                .as_ref()
                .or(inh.any_errors_fatal.as_ref());
            if self.keyword_true(fatal, &scope) {
                self.ctx
                    .end_play
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                self.ctx
                    .fatal
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        self.flow_after(&outcome)
    }

    /// Conditions inherited from blocks apply without the loop item; then the loop, or one run.
    fn leaf_outcome(&mut self, leaf: &Leaf<'_>, scope: &Vars) -> Outcome {
        let host = self.name();
        let conditions = &leaf.keywords.conditions;
        let run = match conditions.inherited_skip(scope) {
            Err(e) => Err(task_error(leaf.task, &host, &e)),
            Ok(Some(cond)) => Ok(Outcome::skipped(&cond)),
            Ok(None) => match &leaf.task.loop_ {
                Some(spec) => self.run_items(leaf, spec, scope),
                // No loop: the task's own when, then one run.
                None => match conditions.own_skip(scope) {
                    Err(e) => Err(task_error(leaf.task, &host, &e)),
                    Ok(Some(cond)) => Ok(Outcome::skipped(&cond)),
                    Ok(None) => Ok(self.run_once(leaf, &leaf.keywords.exec, scope)),
                },
            },
        };
        run.unwrap_or_else(Outcome::failed)
    }

    /// The task's line: a module's result, a loop's failure, or a loop skipped as a whole (a
    /// loop's items were reported one by one).
    fn report_leaf(&self, leaf: &Leaf<'_>, outcome: &Outcome, no_diff: bool) {
        let is_loop_summary = outcome.is_loop_summary();
        let (result, mut diff) = shown(&outcome.result, outcome.changed, leaf.keywords.no_log);
        if no_diff {
            // `diff: false` on the task: never shown, also under --diff.
            diff.clear();
        }
        if is_loop_summary && outcome.status == Status::Skipped {
            self.report(&leaf.display, Status::Skipped, &result);
            return;
        }
        if is_loop_summary && outcome.status != Status::Failed {
            return;
        }
        self.ctx.reporter.host_line(&HostLine {
            host: &self.st.name,
            task: &leaf.display,
            status: outcome.status,
            item: None,
            result: &result,
            diff: &diff,
            ignored: outcome.ignored,
            show_result: leaf.module == "debug" && outcome.status != Status::Skipped,
            is_item: false,
        });
    }

    fn count_outcome(&self, outcome: &Outcome) {
        let (status, changed, ignored) = (outcome.status, outcome.changed, outcome.ignored);
        self.ctx.reporter.count(&self.st.name, |s| match status {
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
    }

    /// Where the task list goes after this task.
    fn flow_after(&mut self, outcome: &Outcome) -> Flow {
        match outcome.status {
            Status::Failed if !outcome.ignored => {
                self.st.failed = true;
                Flow::Failed
            }
            Status::Unreachable => {
                self.st.unreachable = true;
                self.st.link.close();
                Flow::Unreachable
            }
            _ => outcome.flow,
        }
    }

    /// One execution of the module with `scope` (one loop item), with `until` retries and
    /// `changed_when`/`failed_when`, within the task's deadline.
    pub(super) fn run_once(
        &mut self,
        leaf: &Leaf<'_>,
        exec: &ExecKeywords,
        scope: &Vars,
    ) -> Outcome {
        let host = self.name();
        let fail = |msg: &str| Outcome::failed(task_error(leaf.task, &host, msg));
        if let Some(why) = &leaf.task.unsupported {
            return fail(why);
        }
        let args = match render_args(self.ctx.templar, leaf.args, scope) {
            Ok(a) => a,
            Err(e) => {
                return fail(&format!(
                    "The task includes an option with an undefined variable. The error was: {e}"
                ))
            }
        };
        if let Err(e) = &leaf.keywords.timeout {
            return fail(e);
        }
        let until = match until_of(leaf, exec) {
            Ok(until) => until,
            Err(e) => return fail(&e),
        };
        let conditions = &leaf.keywords.conditions;
        let mut attempt = 1;
        loop {
            if let Some(late) = self.timed_out(leaf) {
                return late;
            }
            let mut last = self.execute(leaf, exec, &args, scope);
            if let Some(late) = self.timed_out(leaf) {
                return late;
            }
            if last.status == Status::Unreachable {
                return last;
            }
            let judged = result_scope(scope, leaf.task, &last.result);
            if let Err(e) = self.judge(leaf, &mut last, &judged) {
                return fail(&e);
            }
            let (Some(cond), Some(until)) = (conditions.until, &until) else {
                return last;
            };
            let done = match conditions.holds(cond, &judged) {
                Ok(d) => d,
                Err(e) => return fail(&e),
            };
            if let Value::Object(m) = &mut last.result {
                m.insert("attempts".into(), json!(attempt));
            }
            if done {
                return last;
            }
            if attempt >= until.attempts {
                return retries_exhausted(last, until.retries);
            }
            self.ctx.reporter.note(&format!(
                "FAILED - RETRYING: [{host}]: {} ({} retries left).",
                leaf.task.display_name(),
                until.attempts - attempt
            ));
            sleep_within(until.delay, leaf.deadline.as_ref());
            attempt += 1;
        }
    }

    /// The task's failure once its deadline has passed (checked before and after each attempt
    /// and loop item), `None` while there is time left.
    pub(super) fn timed_out(&self, leaf: &Leaf<'_>) -> Option<Outcome> {
        let d = leaf.deadline.filter(|d| d.passed(Instant::now()))?;
        Some(Outcome::failed(task_error(
            leaf.task,
            &self.st.name,
            &d.message(),
        )))
    }

    /// Apply `changed_when` and `failed_when` to a result (`scope` sees the result).
    fn judge(&self, leaf: &Leaf<'_>, last: &mut Outcome, scope: &Vars) -> Result<(), String> {
        let conditions = &leaf.keywords.conditions;
        if let Some(cw) = conditions.changed_when {
            let c = conditions.holds(cw, scope)?;
            last.changed = c;
            if let Value::Object(m) = &mut last.result {
                m.insert("changed".into(), json!(c));
            }
            if last.status == Status::Changed || last.status == Status::Ok {
                last.status = if c { Status::Changed } else { Status::Ok };
            }
        }
        if let Some(fw) = conditions.failed_when {
            let f = conditions.holds(fw, scope)?;
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
        Ok(())
    }

    /// A boolean keyword that renders true (unset or not a boolean: false).
    fn keyword_true(&self, v: Option<&Value>, scope: &Vars) -> bool {
        v.and_then(|v| self.ctx.templar.render_value(v, scope).ok())
            .and_then(|v| crate::value::as_bool(&v))
            .unwrap_or(false)
    }

    /// A boolean keyword that renders false (unset: not false).
    fn keyword_false(&self, v: Option<&Value>, scope: &Vars) -> bool {
        v.and_then(|v| self.ctx.templar.render_value(v, scope).ok())
            .and_then(|v| crate::value::as_bool(&v))
            == Some(false)
    }

    /// Dispatch to a control module or a remote module.
    fn execute(
        &mut self,
        leaf: &Leaf<'_>,
        exec: &ExecKeywords,
        args: &Vars,
        scope: &Vars,
    ) -> Outcome {
        let host = self.name();
        let short = short_module_name(leaf.module);
        if let Some(spec) = control_params(short) {
            return self.run_control(leaf, spec, args, scope, exec.check_mode);
        }
        let Some(m) = modules::lookup(short) else {
            let msg = format!("couldn't resolve module/action '{}'", leaf.module);
            return Outcome::failed(task_error(leaf.task, &host, &msg));
        };
        let (become_, env) = match (&exec.become_, &exec.environment) {
            (Err(e), _) | (_, Err(e)) => return Outcome::failed(task_error(leaf.task, &host, e)),
            (Ok(b), Ok(env)) => (b.clone(), env.clone()),
        };
        let inh = &leaf.sources.inherited;
        let layers = inh.module_defaults.iter().chain(&leaf.task.module_defaults);
        let with_defaults = match defaults::apply(layers, self.ctx.templar, short, args, scope) {
            Ok(d) => d,
            Err(msg) => return Outcome::failed(task_error(leaf.task, &host, &msg)),
        };
        let args = with_defaults.as_ref().unwrap_or(args);
        let (file_search, template_search) = search_paths(self.ctx.play, leaf.task.role.as_deref());
        let templater = ScopeTemplater {
            templar: self.ctx.templar,
            scope,
        };
        let connection = leaf.task.connection.as_ref().or(inh.connection.as_ref());
        let place = match self.where_to_run(connection, exec, scope) {
            Ok(p) => p,
            Err(msg) => return Outcome::failed(task_error(leaf.task, &host, &msg)),
        };
        let mut local_shell;
        let connector = self.ctx.opts.connector.as_ref();
        let opened = match place {
            Place::Local => {
                local_shell = LocalShell::new("localhost", None);
                Ok(&mut local_shell as &mut (dyn Remote + Send))
            }
            Place::Host => self.st.link.open(connector),
            Place::Delegate(name) => {
                delegate_link(&mut self.delegates, self.ctx, &name).open(connector)
            }
        };
        let remote = match opened {
            Ok(r) => r,
            Err(e) => return Outcome::unreachable(e),
        };
        let spec = asyncs::resolve(leaf.task.async_.as_ref(), leaf.task.poll.as_ref(), |v| {
            self.ctx
                .templar
                .render_value(v, scope)
                .map_err(|e| e.to_string())
        });
        let spec = match spec {
            Ok(s) => s,
            Err(msg) => return Outcome::failed(task_error(leaf.task, &host, &msg)),
        };
        if spec.is_some_and(|s| s.poll == 0) {
            return asyncs::fire_and_forget(
                remote,
                short,
                args,
                become_.as_ref(),
                &env,
                exec.check_mode,
            )
            .unwrap_or_else(|msg| Outcome::failed(task_error(leaf.task, &host, &msg)));
        }
        // With polling, `async` is the task's deadline (the nearer of it and `timeout`).
        let deadline_left = leaf.deadline.map(|d| d.command_timeout(Instant::now()));
        let async_limit = spec.map(|s| s.limit).filter(|l| !l.is_zero());
        let timeout = match (deadline_left, async_limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut mctx = ModuleCtx {
            remote,
            become_,
            env,
            check_mode: exec.check_mode,
            diff: self.ctx.opts.diff,
            facts: &self.st.facts,
            inventory_hostname: &self.st.name,
            file_search,
            template_search,
            templater: &templater,
            timeout,
        };
        // Argument and local-file errors come back already named after the module.
        match m.execute(args, &mut mctx) {
            Ok(r) => {
                let owner = self.facts_owner(leaf.task, exec, scope);
                self.merge_module_facts(r, owner)
            }
            Err(ModuleError::Unreachable(crate::ssh::SshError::CommandTimeout { .. }))
                if async_limit.is_some() && timeout == async_limit =>
            {
                let secs = async_limit.map_or(0, |l| l.as_secs());
                Outcome::failed(task_error(
                    leaf.task,
                    &host,
                    &format!("async task did not complete within the requested time - {secs}s"),
                ))
            }
            Err(ModuleError::Unreachable(e)) => Outcome::unreachable(e),
            Err(ModuleError::Args(msg)) | Err(ModuleError::Local(msg)) => {
                Outcome::failed(task_error(leaf.task, &host, &msg))
            }
        }
    }

    /// Run a control module and apply what it changes in this host's run.
    fn run_control(
        &mut self,
        leaf: &Leaf<'_>,
        spec: &'static Spec,
        args: &Vars,
        scope: &Vars,
        check: bool,
    ) -> Outcome {
        let owner = self.facts_owner(leaf.task, &leaf.keywords.exec, scope);
        if matches!(spec.module, "setup" | "gather_facts") {
            // Delegated fact gathering runs on the delegate (or the controller).
            let inherited = leaf.sources.inherited.connection.as_ref();
            let connection = leaf.task.connection.as_ref().or(inherited);
            let place = match self.where_to_run(connection, &leaf.keywords.exec, scope) {
                Ok(p) => p,
                Err(msg) => return Outcome::failed(task_error(leaf.task, &self.st.name, &msg)),
            };
            match self.delegated_setup(place, leaf.deadline) {
                None => {}
                Some(Err(e)) => return Outcome::unreachable(e),
                Some(Ok(facts)) => {
                    let mut r = ModuleResult::ok();
                    let ns = facts.get("ansible_facts").cloned().unwrap_or_default();
                    r.data.insert("ansible_facts".into(), ns);
                    let done = Done {
                        result: r,
                        effect: Some(Effect::AddFacts(facts)),
                    };
                    return self.apply(done, owner);
                }
            }
        }
        let cx = ControlCtx {
            templar: self.ctx.templar,
            scope,
            task: leaf.task,
            play_dir: &self.ctx.play.dir,
            check,
            link: &mut self.st.link,
            connector: self.ctx.opts.connector.as_ref(),
            deadline: leaf.deadline,
        };
        match control::run(spec, args, cx) {
            Ok(done) => self.apply(done, owner),
            Err(ControlError::Unreachable(e)) => Outcome::unreachable(e),
            Err(ControlError::Failed(msg)) => {
                Outcome::failed(task_error(leaf.task, &self.st.name, &msg))
            }
        }
    }

    /// Apply a control module's effect; the result is the module's, or the handlers' verdict
    /// for `meta: flush_handlers`. `owner`: the host that gets gathered or set facts
    /// (`delegate_facts`), if not this one.
    fn apply(&mut self, done: Done, owner: Option<String>) -> Outcome {
        let Done { result, effect } = done;
        let mut flow = Flow::Continue;
        let result = match effect {
            None => result,
            Some(Effect::Inventory(change)) => {
                self.ctx
                    .inventory_changes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(change);
                result
            }
            Some(Effect::SetFacts(facts)) => {
                match owner {
                    Some(o) => self.give_facts(&o, &facts),
                    None => {
                        self.st.registered.extend(facts);
                        self.publish_hostvars(&self.st.registered);
                    }
                }
                result
            }
            Some(Effect::IncludeVars(vars)) => {
                self.st.include_vars.extend(vars);
                result
            }
            Some(Effect::AddFacts(facts)) => {
                match owner {
                    Some(o) => self.give_facts(&o, &facts),
                    None => {
                        self.st.facts.extend(facts);
                        self.publish_hostvars(&self.st.facts);
                    }
                }
                result
            }
            Some(Effect::ClearFacts) => {
                self.st.facts.clear();
                result
            }
            Some(Effect::ResetConnection) => {
                self.st.link.close();
                result
            }
            Some(Effect::FlushHandlers) => match self.flush_handlers() {
                Flow::Continue => result,
                Flow::EndPlay => {
                    flow = Flow::EndPlay;
                    ModuleResult::ok()
                }
                _ => ModuleResult::failed("a handler failed"),
            },
            Some(Effect::EndHost) => {
                flow = Flow::EndHost;
                result
            }
            Some(Effect::EndPlay) => {
                self.ctx
                    .end_play
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                flow = Flow::EndPlay;
                result
            }
        };
        Outcome {
            flow,
            ..Outcome::of(result)
        }
    }
}

/// How `until` repeats the task, `None` without `until`; invalid `retries`/`delay` are errors.
fn until_of(leaf: &Leaf<'_>, exec: &ExecKeywords) -> Result<Option<Until>, String> {
    if leaf.keywords.conditions.until.is_none() {
        return Ok(None);
    }
    let retries = exec.retries.clone()?;
    Ok(Some(Until {
        attempts: retries.max(1).saturating_add(1),
        delay: exec.delay.clone()?,
        retries,
    }))
}

/// The last attempt's result once `until` never held: failed, saying so.
fn retries_exhausted(mut last: Outcome, retries: u32) -> Outcome {
    last.status = Status::Failed;
    if let Value::Object(m) = &mut last.result {
        m.insert("failed".into(), json!(true));
        m.insert(
            "msg".into(),
            json!(format!(
                "Retried {retries} times and the until condition never became true"
            )),
        );
    }
    last
}

/// Template a module's arguments: variable parameters (`args:` given as a template) fill in
/// what the task does not set, and `omit` drops a parameter.
fn render_args(templar: &Templar, args: &Value, scope: &Vars) -> Result<Vars, String> {
    match templar.render_value(args, scope) {
        Ok(Value::Object(mut m)) => {
            if let Some(Value::Object(extra)) = m.remove(VARIABLE_PARAMS) {
                for (k, v) in extra {
                    m.entry(k).or_insert(v);
                }
            }
            m.retain(|_, v| v.as_str() != Some(OMIT));
            Ok(m)
        }
        Ok(_) => Ok(Vars::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// The scope `changed_when`/`failed_when`/`until` see: the result under the register name, and
/// its keys as variables.
fn result_scope(scope: &Vars, task: &Task, result: &Value) -> Vars {
    let mut s = scope.clone();
    if let Some(reg) = &task.register {
        s.insert(reg.clone(), result.clone());
    }
    if let Value::Object(r) = result {
        for (k, v) in r {
            s.entry(k.clone()).or_insert(v.clone());
        }
    }
    s
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

/// This host's turn at a `run_once` task (`None`: the task is not run_once).
fn once_turn<'p>(
    ctx: &'p PlayCtx<'p>,
    host: &str,
    task: &Task,
    inh: &Inherit<'_>,
    scope: &Vars,
) -> Result<Option<Turn<'p>>, String> {
    // add_host runs once for the play's hosts, as in Ansible (loops excepted: per item).
    let implicit = matches!(&task.action, Action::Module { name, .. }
        if short_module_name(name) == "add_host")
        && task.loop_.is_none();
    let always = Value::Bool(true);
    let Some(v) = task
        .run_once
        .as_ref()
        .or(inh.run_once.as_ref())
        .or(implicit.then_some(&always))
    else {
        return Ok(None);
    };
    let on = ctx
        .templar
        .render_value(v, scope)
        .ok()
        .and_then(|v| crate::value::as_bool(&v))
        .ok_or_else(|| format!("run_once: {} is not a boolean", crate::value::to_display(v)))?;
    if !on {
        return Ok(None);
    }
    let key = format!("{}#{}", task.pos, task.display_name());
    Ok(Some(ctx.run_once.turn(&key, host)))
}

#[cfg(test)]
mod tests {
    use super::super::tests::vars;
    use super::*;

    #[test]
    fn args_are_templated_with_variable_params_and_omit() {
        let t = Templar::new();
        let scope = vars(json!({"p": "/etc/x", "m": "0644"}));
        let args = json!({
            "path": "{{ p }}",
            "owner": OMIT,
            VARIABLE_PARAMS: {"mode": "{{ m }}", "path": "ignored"}
        });
        let got = render_args(&t, &args, &scope).unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"path": "/etc/x", "mode": "0644"})
        );
        assert_eq!(render_args(&t, &json!("free"), &scope), Ok(Vars::new()));
        assert!(render_args(&t, &json!({"x": "{{ nope }}"}), &scope).is_err());
    }
}
