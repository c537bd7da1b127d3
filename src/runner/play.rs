//! Plays: pick hosts, split into `serial` batches, run one thread per host. With the default
//! `linear` strategy hosts move from top-level task to top-level task in lockstep (so output is
//! grouped by task, as in Ansible); with `free` each host runs ahead on its own.
//!
//! Fail closed: a host whose run panics is reported and counted failed (never dropped from the
//! recap, never given the finish command), and the other hosts carry on.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

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

/// A barrier whose party shrinks when a host drops out of the play.
struct StepGate {
    state: Mutex<(usize, usize, u64)>,
    cv: Condvar,
}

impl StepGate {
    fn new(n: usize) -> Self {
        StepGate {
            state: Mutex::new((n, 0, 0)),
            cv: Condvar::new(),
        }
    }

    fn wait(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.1 += 1;
        if g.1 >= g.0 {
            g.1 = 0;
            g.2 += 1;
            self.cv.notify_all();
            return;
        }
        let gen = g.2;
        while g.2 == gen {
            g = self.cv.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A seat in the gate, given up when dropped: a host that ends its play, early or by a
    /// panic, never leaves the others waiting for it.
    fn seat(&self) -> GateSeat<'_> {
        GateSeat(self)
    }

    fn leave(&self) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = g.0.saturating_sub(1);
        if g.1 > 0 && g.1 >= g.0 {
            g.1 = 0;
            g.2 += 1;
            self.cv.notify_all();
        }
    }
}

struct GateSeat<'a>(&'a StepGate);

impl Drop for GateSeat<'_> {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// Bounds how many hosts execute a step at once (`--forks`).
struct Forks {
    free: Mutex<usize>,
    cv: Condvar,
}

/// One of the `--forks` slots, given back when dropped (also when the step panics).
struct ForkSlot<'a>(&'a Forks);

impl Drop for ForkSlot<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

impl Forks {
    fn acquire(&self) -> ForkSlot<'_> {
        let mut f = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *f == 0 {
            f = self.cv.wait(f).unwrap_or_else(|e| e.into_inner());
        }
        *f -= 1;
        ForkSlot(self)
    }
    fn release(&self) {
        let mut f = self.free.lock().unwrap_or_else(|e| e.into_inner());
        *f += 1;
        self.cv.notify_one();
    }
}

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

fn steps(play: &Play, gather: bool) -> Vec<Step<'_>> {
    let mut s = Vec::new();
    if gather {
        s.push(Step::Facts);
    }
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

fn run_batch(ctx: &PlayCtx<'_>, states: &mut Vec<HostState>) -> Vec<HostState> {
    let linear = ctx.play.strategy == Strategy::Linear;
    let gate = StepGate::new(states.len());
    let forks = Forks {
        free: Mutex::new(ctx.opts.forks.max(1)),
        cv: Condvar::new(),
    };
    let mut out = Vec::new();
    std::thread::scope(|sc| {
        let mut handles = Vec::new();
        for st in states.drain(..) {
            let (gate, forks) = (&gate, &forks);
            let (name, conn) = (st.name.clone(), st.link.conn.clone());
            let h = sc.spawn(move || {
                let mut st = st;
                let run = catch_unwind(AssertUnwindSafe(|| {
                    run_host(ctx, &mut st, gate, forks, linear)
                }));
                if let Err(panic) = run {
                    host_crashed(ctx, &mut st, &panic_message(panic.as_ref()));
                }
                st
            });
            handles.push((name, conn, h));
        }
        for (name, conn, h) in handles {
            match h.join() {
                Ok(st) => out.push(st),
                Err(_) => {
                    // Even reporting the crash failed: count the host failed and keep it out of
                    // the rest of the run, without printing (printing may be what panics).
                    tracing::error!("{name}: the host's run and its crash report panicked");
                    ctx.reporter.count(&name, |s| s.failed += 1);
                    let mut st = HostState::new(&name, conn);
                    st.failed = true;
                    st.out = true;
                    out.push(st);
                }
            }
        }
    });
    out
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

fn run_host(ctx: &PlayCtx<'_>, st: &mut HostState, gate: &StepGate, forks: &Forks, linear: bool) {
    let _seat = gate.seat();
    // However the host's run ends (also by a panic), run_once duties pass to the next host.
    struct Gone<'c>(&'c super::once::RunOnce, String);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            self.0.host_gone(&self.1);
        }
    }
    let _gone = Gone(&ctx.run_once, st.name.clone());
    let inv_vars = ctx.inventory.host_vars(&st.name);
    let vars_files = match load_vars_files(ctx, &inv_vars) {
        Ok(v) => v,
        Err(e) => {
            // The play's `vars_files` could not be loaded for this host.
            host_failed(ctx, st, "Loading vars_files", e);
            return;
        }
    };
    let gather = gathers_facts(ctx, &ctx.host_scope(&inv_vars));
    let mut hr = HostRun {
        ctx,
        st,
        inv_vars,
        vars_files,
        notified: Vec::new(),
        role_handlers: Vec::new(),
        delegates: Default::default(),
        in_handlers: false,
    };
    let inh = Inherit {
        become_: ctx.play.become_.clone(),
        tags: ctx.play.tags.clone(),
        remote_user: ctx.play.remote_user.clone(),
        module_defaults: ctx.play.module_defaults.iter().cloned().collect(),
        any_errors_fatal: ctx.play.any_errors_fatal.then_some(Value::Bool(true)),
        ..Inherit::default()
    };
    for step in steps(ctx.play, gather) {
        if ctx.opts.cancel.load(Ordering::Relaxed) || ctx.end_play.load(Ordering::Relaxed) {
            break;
        }
        let slot = forks.acquire();
        let flow = match step {
            Step::Facts => hr.gather_facts("Gathering Facts"),
            Step::Task(t) => hr.run_task(t, &inh),
            Step::Flush => hr.flush_handlers(),
        };
        drop(slot);
        match flow {
            Flow::Continue => {}
            Flow::Failed => {
                hr.st.out = true;
                break;
            }
            Flow::Unreachable => {
                hr.st.out = true;
                break;
            }
            Flow::EndHost => break,
            Flow::EndPlay => {
                ctx.end_play.store(true, Ordering::Relaxed);
                break;
            }
        }
        if linear {
            gate.wait();
        }
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

    #[test]
    fn gate_releases_when_hosts_leave() {
        let gate = StepGate::new(3);
        std::thread::scope(|s| {
            s.spawn(|| gate.wait());
            s.spawn(|| gate.wait());
            s.spawn(|| gate.leave());
        });
    }
}
