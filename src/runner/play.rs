//! Plays: pick hosts, split into `serial` batches, run each batch on a pool of `--forks` worker
//! threads. With the default `linear` strategy hosts move from top-level task to top-level task in
//! lockstep (so output is grouped by task, as in Ansible); with `free` each host runs ahead on its
//! own.
//!
//! Fail closed: a host whose run panics is reported and counted failed (never dropped from the
//! recap, never given the finish command), and the other hosts carry on.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::json;

use super::connect::{HostConn, Transport};
use super::host::{HostRun, HostState, PlayCtx};
use super::keywords::Inherit;
use super::report::Reporter;
use super::result::Flow;
use super::{exit, RunOptions, RunReport};
use crate::playbook::model::{Play, Playbook, Strategy, Task};
use crate::playbook::parse;
use crate::playbook::template::Templar;
use crate::value::{as_bool, to_display, Value, Vars};

enum Step<'a> {
    Facts,
    Task(&'a Task),
    Flush,
}

/// Run every play of `pb`.
pub fn run(pb: &Playbook, opts: RunOptions) -> RunReport {
    let reporter = Reporter::new(opts.report.clone());
    if !reporter.progress_enabled() {
        return run_plays(pb, opts, &reporter);
    }
    // On a terminal: a ticker redraws the status line while the plays run.
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                reporter.draw_status();
                std::thread::sleep(super::progress::TICK);
            }
        });
        let report = run_plays(pb, opts, &reporter);
        stop.store(true, Ordering::Relaxed);
        report
    })
}

fn run_plays(pb: &Playbook, mut opts: RunOptions, reporter: &Reporter) -> RunReport {
    let templar = Templar::new();
    if let Err(e) = load_playbook_vars_dirs(pb, &mut opts) {
        reporter.note(&format!("ERROR! {e}"));
        return RunReport {
            exit_code: exit::UNREACHABLE_OR_PARSE,
            ..Default::default()
        };
    }
    let mut states: BTreeMap<String, HostState> = BTreeMap::new();
    let limit: Option<Vec<String>> = match &opts.limit {
        Some(l) => match opts.inventory.hosts_matching(l) {
            Ok(h) => Some(h),
            Err(e) => {
                reporter.note(&format!("ERROR! --limit: {e}"));
                return RunReport {
                    exit_code: exit::UNREACHABLE_OR_PARSE,
                    ..Default::default()
                };
            }
        },
        None => None,
    };
    let hostvars: Mutex<BTreeMap<String, Vars>> = Mutex::new(BTreeMap::new());
    let delegated_facts: Mutex<BTreeMap<String, Vars>> = Mutex::new(BTreeMap::new());
    let mut fatal = false;
    for play in &pb.plays {
        if opts.cancel.load(Ordering::Relaxed) || fatal {
            break;
        }
        let hosts = play_hosts(play, &opts, &templar, reporter, limit.as_deref(), &states);
        let groups = groups_value(&opts);
        reporter.play_start(&play.name, &hosts);
        if hosts.is_empty() {
            reporter.note("skipping: no hosts matched");
            continue;
        }
        prepare_hosts(play, &opts, &templar, &hosts, &mut states, &hostvars);
        let mut changes = Vec::new();
        for batch in batches(play, &hosts) {
            let ctx = PlayCtx {
                play,
                opts: &opts,
                templar: &templar,
                reporter,
                inventory: &opts.inventory,
                groups: groups.clone(),
                play_hosts: hosts.clone(),
                hostvars: &hostvars,
                end_play: AtomicBool::new(false),
                run_once: super::once::RunOnce::new(batch.clone()),
                throttle: Default::default(),
                fatal: AtomicBool::new(false),
                inventory_changes: Mutex::new(Vec::new()),
                delegated_facts: &delegated_facts,
            };
            let mut taken: Vec<HostState> = batch.iter().filter_map(|h| states.remove(h)).collect();
            let back = run_batch(&ctx, &mut taken);
            for st in back {
                states.insert(st.name.clone(), st);
            }
            if ctx.fatal.load(Ordering::Relaxed) {
                // any_errors_fatal: no more batches, no more plays.
                fatal = true;
            }
            changes.extend(std::mem::take(
                &mut *ctx
                    .inventory_changes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            ));
            if opts.cancel.load(Ordering::Relaxed) || fatal {
                break;
            }
        }
        // add_host / group_by: the plays that follow see the new hosts and groups.
        for c in changes {
            opts.inventory.add_host(&c.host, &c.vars, &c.groups);
            if let Ok(mut hv) = hostvars.lock() {
                hv.insert(c.host.clone(), opts.inventory.host_vars(&c.host));
            }
        }
    }
    if let Some(cmd) = &opts.finish_command {
        if !opts.cancel.load(Ordering::Relaxed) && !opts.check {
            finish(reporter, &mut states, cmd);
        }
    }
    reporter.recap();
    let stats = reporter.stats();
    let interrupted = opts.cancel.load(Ordering::Relaxed);
    let exit_code = if interrupted {
        exit::INTERRUPTED
    } else if stats.values().any(|s| s.failed > 0) {
        exit::HOST_FAILED
    } else if stats.values().any(|s| s.unreachable > 0) {
        exit::UNREACHABLE_OR_PARSE
    } else {
        exit::OK
    };
    RunReport {
        stats,
        exit_code,
        interrupted,
    }
}

/// The hosts a play runs on: its (templated) pattern, within `--limit`, without hosts that
/// failed or became unreachable in an earlier play.
fn play_hosts(
    play: &Play,
    opts: &RunOptions,
    templar: &Templar,
    reporter: &Reporter,
    limit: Option<&[String]>,
    states: &BTreeMap<String, HostState>,
) -> Vec<String> {
    let mut extra = opts.extra_vars.clone();
    crate::playbook::template::mark_author_vars(&mut extra);
    let pattern = templar
        .render_str(&play.hosts, &extra)
        .map(|v| to_display(&v))
        .unwrap_or_else(|_| play.hosts.clone());
    let mut hosts = match opts.inventory.hosts_matching(&pattern) {
        Ok(h) => h,
        Err(e) => {
            reporter.note(&format!("ERROR! play '{}' ({}): {e}", play.name, play.pos));
            Vec::new()
        }
    };
    // Ansible's implicit localhost: a play for `localhost` that the inventory does not name
    // runs on the controller.
    if hosts.is_empty() && is_implicit_local(&opts.inventory, &pattern) {
        hosts.push(pattern.trim().to_string());
    }
    if let Some(l) = limit {
        hosts.retain(|h| l.contains(h) || is_implicit_local(&opts.inventory, h));
    }
    hosts.retain(|h| !states.get(h).is_some_and(|s| s.out));
    hosts
}

/// A state for each host new to the run, and each host's transport and port for `play`.
fn prepare_hosts(
    play: &Play,
    opts: &RunOptions,
    templar: &Templar,
    hosts: &[String],
    states: &mut BTreeMap<String, HostState>,
    hostvars: &Mutex<BTreeMap<String, Vars>>,
) {
    for h in hosts {
        if !states.contains_key(h) {
            let vars = opts.inventory.host_vars(h);
            let conn = HostConn::from_vars(
                h,
                &vars,
                opts.remote_user.as_deref(),
                opts.private_key.as_ref(),
            );
            if let Ok(mut hv) = hostvars.lock() {
                hv.insert(h.clone(), vars);
            }
            states.insert(h.clone(), HostState::new(h, conn));
        }
        if let Some(st) = states.get_mut(h) {
            st.link
                .set_transport(play_transport(play, opts, templar, h));
            if let Some(p) = play_port(play, opts, h) {
                st.link.set_port(p);
            }
        }
    }
}

/// `group_vars/` and `host_vars/` beside the playbook (and beside imported playbooks).
fn load_playbook_vars_dirs(
    pb: &Playbook,
    opts: &mut RunOptions,
) -> Result<(), crate::inventory::InventoryError> {
    for play in &pb.plays {
        let dir = if play.dir.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            play.dir.as_path()
        };
        opts.inventory
            .load_vars_dir(dir, crate::inventory::VarsDirKind::Playbook)?;
    }
    Ok(())
}

/// The play's `port:` for a host whose inventory does not set `ansible_port`.
fn play_port(play: &Play, opts: &RunOptions, host: &str) -> Option<u16> {
    let p = play.port.as_ref()?;
    let vars = opts.inventory.host_vars(host);
    if vars.contains_key("ansible_port") || vars.contains_key("ansible_ssh_port") {
        return None;
    }
    to_display(p).trim().parse().ok()
}

/// `localhost` (or 127.0.0.1) that the inventory does not list.
fn is_implicit_local(inv: &crate::inventory::Inventory, name: &str) -> bool {
    matches!(name.trim(), "localhost" | "127.0.0.1") && !inv.contains_host(name.trim())
}

/// How `host` is reached in `play`: the play's `connection:`, else the host's
/// `ansible_connection`, else local for the implicit localhost, else SSH.
fn play_transport(play: &Play, opts: &RunOptions, templar: &Templar, host: &str) -> Transport {
    let vars = opts.inventory.host_vars(host);
    let base = Transport::of_vars(&vars, is_implicit_local(&opts.inventory, host));
    match &play.connection {
        None => base,
        Some(v) => {
            let mut extra = opts.extra_vars.clone();
            crate::playbook::template::mark_author_vars(&mut extra);
            match templar.render_value(v, &extra) {
                Ok(v) => Transport::parse(&to_display(&v)),
                Err(e) => Transport::Unsupported(format!("{} ({e})", to_display(v))),
            }
        }
    }
}

/// Run the finish command on hosts that ended well.
fn finish(reporter: &Reporter, states: &mut BTreeMap<String, HostState>, cmd: &str) {
    for st in states.values_mut() {
        if st.failed || st.unreachable || st.out {
            continue;
        }
        let become_ = (st.link.conn.user != "root").then(|| crate::ssh::Become {
            method: "sudo".into(),
            user: "root".into(),
        });
        let full = crate::ssh::become_::wrap(cmd, become_.as_ref(), &[]);
        let Some(remote) = st.link.current() else {
            continue;
        };
        match remote.exec(&full, None, Some(std::time::Duration::from_secs(30))) {
            Ok(o) if o.ok() => {}
            Ok(o) => {
                reporter.note(&format!(
                    "[WARNING]: {}: finishing command failed (rc={}): {}",
                    st.name,
                    o.rc,
                    o.stderr_str().trim()
                ));
                reporter.count(&st.name, |s| s.failed += 1);
            }
            Err(e) => {
                reporter.note(&format!(
                    "[WARNING]: {}: finishing command failed: {e}",
                    st.name
                ));
                reporter.count(&st.name, |s| s.unreachable += 1);
            }
        }
    }
}

fn groups_value(opts: &RunOptions) -> Value {
    let mut m = Vars::new();
    for (g, hosts) in opts.inventory.groups() {
        m.insert(g.clone(), json!(hosts));
    }
    Value::Object(m)
}

/// Split hosts by `serial` (number, percentage, or list of those).
fn batches(play: &Play, hosts: &[String]) -> Vec<Vec<String>> {
    let sizes: Vec<usize> = match &play.serial {
        None => vec![hosts.len()],
        Some(v) => {
            let list = match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            list.iter()
                .map(|s| {
                    let t = to_display(s);
                    if let Some(p) = t.strip_suffix('%') {
                        let pct: f64 = p.trim().parse().unwrap_or(100.0);
                        ((hosts.len() as f64 * pct / 100.0).floor() as usize).max(1)
                    } else {
                        t.trim().parse::<usize>().unwrap_or(hosts.len()).max(1)
                    }
                })
                .collect()
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < hosts.len() {
        let size = sizes
            .get(k)
            .or(sizes.last())
            .copied()
            .unwrap_or(hosts.len())
            .max(1);
        let end = i.saturating_add(size).min(hosts.len());
        out.push(hosts[i..end].to_vec());
        i = end;
        k += 1;
    }
    out
}

/// The steps of a play; `Facts` is a no-op for a host that does not gather them.
fn steps(play: &Play) -> Vec<Step<'_>> {
    let mut s = vec![Step::Facts];
    s.extend(play.pre_tasks.iter().map(Step::Task));
    s.push(Step::Flush);
    s.extend(play.tasks.iter().map(Step::Task));
    s.push(Step::Flush);
    s.extend(play.post_tasks.iter().map(Step::Task));
    s.push(Step::Flush);
    s
}

/// Load `vars_files` for one host (paths are templated with the host's variables).
fn load_vars_files(ctx: &PlayCtx<'_>, inv: &Vars) -> Result<Vars, String> {
    let mut scope = ctx.host_scope(inv);
    scope.insert(
        "playbook_dir".into(),
        json!(ctx.play.dir.display().to_string()),
    );
    let mut out = Vars::new();
    for entry in &ctx.play.vars_files {
        // A list entry means "the first of these that exists".
        let candidates: Vec<Value> = match entry {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let mut found = None;
        let mut tried = Vec::new();
        for c in &candidates {
            let name = ctx
                .templar
                .render_value(c, &scope)
                .map(|v| to_display(&v))
                .map_err(|e| format!("vars_files entry {c}: {e}"))?;
            let p = ctx.play.dir.join(&name);
            if p.exists() {
                found = Some(p);
                break;
            }
            tried.push(p.display().to_string());
        }
        let Some(p) = found else {
            return Err(format!(
                "vars_files: none of these files exist: {} (play at {})",
                tried.join(", "),
                ctx.play.pos
            ));
        };
        let v = parse::load_vars_file(&p).map_err(|e| e.to_string())?;
        scope.extend(v.clone());
        out.extend(v);
    }
    Ok(out)
}

/// What one host carries from step to step of a play (its [`HostRun`] between steps).
struct HostPlay {
    st: HostState,
    inv_vars: Vars,
    vars_files: Vars,
    notified: Vec<String>,
    role_handlers: Vec<Task>,
    delegates: std::collections::HashMap<String, super::connect::HostLink>,
    gather: bool,
    /// Set up for the play (its `vars_files` loaded).
    ready: bool,
    /// Left the play: failed, unreachable, ended, or crashed.
    left: bool,
}

impl HostPlay {
    fn new(st: HostState) -> HostPlay {
        HostPlay {
            st,
            inv_vars: Vars::new(),
            vars_files: Vars::new(),
            notified: Vec::new(),
            role_handlers: Vec::new(),
            delegates: Default::default(),
            gather: false,
            ready: false,
            left: false,
        }
    }

    /// The host leaves the play: `run_once` duties pass to the next host.
    fn leave(&mut self, ctx: &PlayCtx<'_>) {
        self.left = true;
        ctx.run_once.host_gone(&self.st.name);
    }
}

/// Run a batch of hosts on at most `--forks` threads. With `linear`, every host finishes a step
/// before any host starts the next; with `free`, each worker takes a host and runs it to the end.
/// Either way the threads (and the steps running at once) are bounded by forks, not by hosts;
/// what a host keeps between steps is its [`HostPlay`] (its open session included).
fn run_batch(ctx: &PlayCtx<'_>, states: &mut Vec<HostState>) -> Vec<HostState> {
    let workers = ctx.opts.forks.max(1);
    let inh = Inherit {
        become_: ctx.play.become_.clone(),
        tags: ctx.play.tags.clone(),
        remote_user: ctx.play.remote_user.clone(),
        module_defaults: ctx.play.module_defaults.iter().cloned().collect(),
        any_errors_fatal: ctx.play.any_errors_fatal.then_some(Value::Bool(true)),
        ..Inherit::default()
    };
    let steps = steps(ctx.play);
    let mut hosts: Vec<HostPlay> = states.drain(..).map(HostPlay::new).collect();
    hosts = pool(hosts, workers, ctx, |hp| host_setup(ctx, hp));
    if ctx.play.strategy == Strategy::Linear {
        for step in &steps {
            if stopped(ctx) || hosts.iter().all(|h| h.left) {
                break;
            }
            ctx.run_once.next_step();
            hosts = pool(hosts, workers, ctx, |hp| {
                host_step(ctx, hp, step, &inh);
                ctx.run_once.host_past(&hp.st.name);
            });
        }
    } else {
        hosts = pool(hosts, workers, ctx, |hp| {
            for step in &steps {
                host_step(ctx, hp, step, &inh);
            }
            // Done with the play: a run_once task it never reached falls to the next host.
            ctx.run_once.host_gone(&hp.st.name);
        });
    }
    hosts.into_iter().map(|h| h.st).collect()
}

/// The play was stopped: Ctrl-C, `meta: end_play`, or `any_errors_fatal`.
fn stopped(ctx: &PlayCtx<'_>) -> bool {
    ctx.opts.cancel.load(Ordering::Relaxed) || ctx.end_play.load(Ordering::Relaxed)
}

/// Run `f` on each host still in the play, on at most `workers` threads, taking hosts in batch
/// order (so the host that owes a `run_once` result is always running before those waiting for
/// it). A panic in `f` fails that host only; the hosts come back in their order.
fn pool<F>(hosts: Vec<HostPlay>, workers: usize, ctx: &PlayCtx<'_>, f: F) -> Vec<HostPlay>
where
    F: Fn(&mut HostPlay) + Sync,
{
    let n = hosts.len();
    let live = hosts.iter().filter(|h| !h.left).count();
    let queue: Mutex<std::collections::VecDeque<(usize, HostPlay)>> =
        Mutex::new(hosts.into_iter().enumerate().collect());
    let done: Mutex<Vec<Option<HostPlay>>> = Mutex::new((0..n).map(|_| None).collect());
    let work = || loop {
        let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let Some((i, mut hp)) = next else { break };
        if !hp.left {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(&mut hp))) {
                let msg = panic_message(panic.as_ref());
                if catch_unwind(AssertUnwindSafe(|| host_crashed(ctx, &mut hp.st, &msg))).is_err() {
                    // Even reporting the crash failed: count the host failed and keep it out
                    // of the rest of the run, without printing (printing may be what panics).
                    tracing::error!(
                        "{}: the host's run and its crash report panicked",
                        hp.st.name
                    );
                    ctx.reporter.count(&hp.st.name, |s| s.failed += 1);
                    hp.st.failed = true;
                    hp.st.out = true;
                }
                hp.leave(ctx);
            }
        }
        if let Some(slot) = done.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
            *slot = Some(hp);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..workers.min(live) {
            s.spawn(work);
        }
        work();
    });
    done.into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Ready a host for the play: its `vars_files` and whether it gathers facts.
fn host_setup(ctx: &PlayCtx<'_>, hp: &mut HostPlay) {
    hp.inv_vars = ctx.inventory.host_vars(&hp.st.name);
    match load_vars_files(ctx, &hp.inv_vars) {
        Ok(v) => hp.vars_files = v,
        Err(e) => {
            // The play's `vars_files` could not be loaded for this host.
            host_failed(ctx, &mut hp.st, "Loading vars_files", e);
            hp.leave(ctx);
            return;
        }
    }
    hp.gather = gathers_facts(ctx, &ctx.host_scope(&hp.inv_vars));
    hp.ready = true;
}

/// Run one step on one host, and take the host out of the play when the step says so.
fn host_step(ctx: &PlayCtx<'_>, hp: &mut HostPlay, step: &Step<'_>, inh: &Inherit<'_>) {
    if hp.left || !hp.ready || stopped(ctx) {
        return;
    }
    if matches!(step, Step::Facts) && !hp.gather {
        return;
    }
    let mut hr = HostRun {
        ctx,
        st: &mut hp.st,
        inv_vars: std::mem::take(&mut hp.inv_vars),
        vars_files: std::mem::take(&mut hp.vars_files),
        notified: std::mem::take(&mut hp.notified),
        role_handlers: std::mem::take(&mut hp.role_handlers),
        delegates: std::mem::take(&mut hp.delegates),
        in_handlers: false,
    };
    let flow = match step {
        Step::Facts => hr.gather_facts("Gathering Facts"),
        Step::Task(t) => hr.run_task(t, inh),
        Step::Flush => hr.flush_handlers(),
    };
    let HostRun {
        inv_vars,
        vars_files,
        notified,
        role_handlers,
        delegates,
        ..
    } = hr;
    (hp.inv_vars, hp.vars_files, hp.notified) = (inv_vars, vars_files, notified);
    (hp.role_handlers, hp.delegates) = (role_handlers, delegates);
    match flow {
        Flow::Continue => {}
        Flow::Failed | Flow::Unreachable => {
            hp.st.out = true;
            hp.leave(ctx);
        }
        Flow::EndHost => hp.leave(ctx),
        Flow::EndPlay => {
            ctx.end_play.store(true, Ordering::Relaxed);
            hp.leave(ctx);
        }
    }
}

/// What a panic said, for the host's failure message.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_string(),
        (_, Some(s)) => s.clone(),
        _ => "(no message)".into(),
    }
}

/// A host's run panicked: report the task it was in as failed, count it, and take the host out of
/// the run (no more plays, no finish command).
fn host_crashed(ctx: &PlayCtx<'_>, st: &mut HostState, panic: &str) {
    let task = st
        .current_task
        .clone()
        .unwrap_or_else(|| "internal error".into());
    let msg = format!(
        "knockplay internal error on this host (a bug; the host is counted failed): {panic}"
    );
    tracing::error!("{}: {msg}", st.name);
    host_failed(ctx, st, &task, msg);
    st.link.close();
}

/// One failed line for `task` on the host, counted; the host leaves the run.
fn host_failed(ctx: &PlayCtx<'_>, st: &mut HostState, task: &str, msg: String) {
    let r = json!({"changed": false, "failed": true, "msg": msg});
    ctx.reporter.host_line(&super::report::HostLine {
        host: &st.name,
        task,
        status: super::report::Status::Failed,
        item: None,
        result: &r,
        diff: &[],
        ignored: false,
        show_result: false,
        is_item: false,
    });
    ctx.reporter.count(&st.name, |s| s.failed += 1);
    st.failed = true;
    st.out = true;
}

/// `gather_facts` of the play (a boolean, or a template of one), true when unset or unclear.
fn gathers_facts(ctx: &PlayCtx<'_>, scope: &Vars) -> bool {
    match &ctx.play.gather_facts {
        Value::String(s) if s.contains("{{") => ctx.templar.eval_bool(s, scope).unwrap_or(true),
        v => as_bool(v).unwrap_or(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_batches() {
        let hosts: Vec<String> = (1..=5).map(|i| format!("h{i}")).collect();
        let mut play = crate::playbook::parse::tests_support::empty_play();
        play.serial = Some(json!(2));
        let b = batches(&play, &hosts);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
        play.serial = Some(json!([1, "50%"]));
        let b = batches(&play, &hosts);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 2, 2]);
        // Sizes beyond any count of hosts (or of memory) take the rest, without overflowing.
        play.serial = Some(json!([1, u64::MAX, "1e400%"]));
        let b = batches(&play, &hosts);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 4]);
    }
}
