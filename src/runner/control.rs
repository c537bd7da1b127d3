//! Modules that act on the run itself rather than on the target's state: `debug`, `set_fact`,
//! `assert`, `fail`, `meta`, `include_vars`, `setup`, `wait_for_connection`, `pause`.
//!
//! Each reads its arguments through its declaration (`modules::control_specs`, via [`Args`]), the
//! run's state through [`ControlCtx`], and returns what it changes in the run as an [`Effect`];
//! the host run applies it (so this file knows nothing of the host run).
//!
//! Durations may come from a target's output through a variable: they are checked
//! ([`crate::value::seconds`]), and waits end at the task's deadline.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::connect::{Connector, HostLink};
use super::deadline::{sleep_within, Deadline};
use super::keywords::cond_true;
use crate::modules::{Args, ModuleError, ModuleResult, Spec};
use crate::playbook::model::Task;
use crate::playbook::parse;
use crate::playbook::template::Templar;
use crate::ssh::SshError;
use crate::value::{to_display, Value, Vars};

pub enum ControlError {
    Failed(String),
    Unreachable(SshError),
}

impl From<String> for ControlError {
    fn from(s: String) -> Self {
        ControlError::Failed(s)
    }
}

/// What can go wrong inside a control module: its own failure, or an argument its declaration
/// refuses (named after the module once, in [`run`], as remote modules' errors are).
enum Problem {
    Control(ControlError),
    Args(ModuleError),
}

impl From<ControlError> for Problem {
    fn from(e: ControlError) -> Self {
        Problem::Control(e)
    }
}

impl From<ModuleError> for Problem {
    fn from(e: ModuleError) -> Self {
        Problem::Args(e)
    }
}

impl From<String> for Problem {
    fn from(s: String) -> Self {
        Problem::Control(ControlError::Failed(s))
    }
}

/// What a control module reads.
pub struct ControlCtx<'a> {
    pub templar: &'a Templar,
    /// The task's scope (with the loop item).
    pub scope: &'a Vars,
    pub task: &'a Task,
    /// The playbook's directory, for `include_vars` lookups.
    pub play_dir: &'a Path,
    pub check: bool,
    /// The host's session (`setup`, `wait_for_connection`).
    pub link: &'a mut HostLink,
    pub connector: &'a dyn Connector,
    /// When the task's `timeout` runs out: waits end there, commands get what is left.
    pub deadline: Option<Deadline>,
}

/// What a control module changes in the host's run.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// `set_fact`: host variables (also published in `hostvars`).
    SetFacts(Vars),
    /// `include_vars`: variables at include_vars precedence.
    IncludeVars(Vars),
    /// `setup`: gathered facts.
    AddFacts(Vars),
    /// `meta: clear_facts`.
    ClearFacts,
    /// `meta: reset_connection`: the next task connects again.
    ResetConnection,
    /// `meta: flush_handlers`: run notified handlers now.
    FlushHandlers,
    /// `meta: end_host`: this host stops the play here.
    EndHost,
    /// `meta: end_play`: every host stops the play.
    EndPlay,
    /// `add_host` / `group_by`: the inventory of the plays that follow changes.
    Inventory(InventoryChange),
}

/// A change to the in-memory inventory, applied after the current play (Ansible's plays that
/// follow see it; the current play's host list stays).
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryChange {
    pub host: String,
    pub groups: Vec<String>,
    pub vars: Vars,
}

/// A control module's result and what it changes.
pub struct Done {
    pub result: ModuleResult,
    pub effect: Option<Effect>,
}

impl From<ModuleResult> for Done {
    fn from(result: ModuleResult) -> Done {
        Done {
            result,
            effect: None,
        }
    }
}

fn with(result: ModuleResult, effect: Effect) -> Done {
    Done {
        result,
        effect: Some(effect),
    }
}

/// Run the control module `spec` declares. `args` are templated.
pub fn run(spec: &'static Spec, args: &Vars, cx: ControlCtx<'_>) -> Result<Done, ControlError> {
    let done = Args::new(spec, args)
        .map_err(Problem::from)
        .and_then(|a| dispatch(&a, cx));
    done.map_err(|p| match p {
        Problem::Control(e) => e,
        Problem::Args(e) => match e.in_module(spec.module) {
            ModuleError::Unreachable(e) => ControlError::Unreachable(e),
            other => ControlError::Failed(other.to_string()),
        },
    })
}

fn dispatch(a: &Args<'_>, cx: ControlCtx<'_>) -> Result<Done, Problem> {
    match a.module() {
        "debug" => Ok(debug(cx.templar, a, cx.scope)?.into()),
        "set_fact" => set_fact(a),
        "validate_argument_spec" => validate_argument_spec(a, cx.scope),
        "add_host" => add_host(a),
        "group_by" => group_by(a, &cx.link.conn.name),
        "assert" => Ok(assert(cx.templar, a, cx.scope)?.into()),
        "fail" => Err(ControlError::Failed(
            a.value("msg")?
                .map(|m| to_display(&m))
                .unwrap_or_else(|| "Failed as requested from task".into()),
        )
        .into()),
        "meta" => meta(a),
        "include_vars" => include_vars(cx.task, cx.play_dir, a),
        "setup" | "gather_facts" => setup(cx.link, cx.connector, cx.deadline),
        "wait_for_connection" => wait_for_connection(cx.link, cx.connector, a, cx.deadline),
        "pause" => Ok(pause(a, cx.check, cx.deadline)?.into()),
        other => Err(ControlError::Failed(format!("'{other}' cannot be used here")).into()),
    }
}

fn set_fact(a: &Args<'_>) -> Result<Done, Problem> {
    // set_fact's parameters are the variables to set: any names (its declaration says so), apart
    // from the ones it declares (`cacheable`, pinned to false).
    let mut facts = Vars::new();
    for (k, v) in a.free_names()? {
        facts.insert(k.clone(), v.clone());
    }
    let mut r = ModuleResult::ok();
    r.data
        .insert("ansible_facts".into(), Value::Object(facts.clone()));
    Ok(with(r, Effect::SetFacts(facts)))
}

/// The spec's options found in the task's variables, with `provided_arguments` over them.
fn validate_argument_spec(a: &Args<'_>, scope: &Vars) -> Result<Done, Problem> {
    let spec = a.dict("argument_spec")?.unwrap_or_default();
    let mut values: Vars = spec
        .keys()
        .filter_map(|k| scope.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    values.extend(a.dict("provided_arguments")?.unwrap_or_default());
    let errors = super::argspec::validate(&spec, &values);
    if errors.is_empty() {
        let mut r = ModuleResult::ok();
        r.msg = Some("The arg spec validation passed".into());
        return Ok(r.into());
    }
    Err(Problem::Control(ControlError::Failed(format!(
        "Validation of arguments failed:\n{}",
        errors.join("\n")
    ))))
}

fn add_host(a: &Args<'_>) -> Result<Done, Problem> {
    let host = a.str("name")?.unwrap_or_default();
    let groups = a.list("groups")?.unwrap_or_default();
    let mut vars = Vars::new();
    for (k, v) in a.free_names()? {
        vars.insert(k.clone(), v.clone());
    }
    let r = ModuleResult::changed().set(
        "add_host",
        json!({"host_name": host, "groups": groups, "host_vars": vars}),
    );
    Ok(with(
        r,
        Effect::Inventory(InventoryChange { host, groups, vars }),
    ))
}

fn group_by(a: &Args<'_>, host: &str) -> Result<Done, Problem> {
    let key = a.str("key")?.unwrap_or_default();
    let parents = a.list("parents")?.unwrap_or_default();
    if parents.iter().any(|p| p != "all") {
        return Err(Problem::Control(ControlError::Failed(
            "group_by: parents other than 'all' are not supported by knockplay".into(),
        )));
    }
    // Ansible turns characters that are not valid in group names into underscores.
    let group: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let r = ModuleResult::changed().set("add_group", json!(group));
    Ok(with(
        r,
        Effect::Inventory(InventoryChange {
            host: host.to_string(),
            groups: vec![group],
            vars: Vars::new(),
        }),
    ))
}

fn meta(a: &Args<'_>) -> Result<Done, Problem> {
    let what = a.free_form()?.unwrap_or_default();
    let skipped = || ModuleResult::ok().set("skipped", true);
    Ok(match what.trim() {
        "flush_handlers" => with(skipped(), Effect::FlushHandlers),
        "noop" | "clear_host_errors" | "refresh_inventory" => skipped().into(),
        "clear_facts" => with(skipped(), Effect::ClearFacts),
        "reset_connection" => with(skipped(), Effect::ResetConnection),
        "end_play" => with(skipped(), Effect::EndPlay),
        "end_host" => with(skipped(), Effect::EndHost),
        other => {
            return Err(ControlError::Failed(format!(
                "invalid meta action '{other}' (known: flush_handlers, noop, end_play, end_host, clear_facts, reset_connection)"
            ))
            .into())
        }
    })
}

fn setup(
    link: &mut HostLink,
    connector: &dyn Connector,
    deadline: Option<Deadline>,
) -> Result<Done, Problem> {
    let timeout = deadline.map(|d| d.command_timeout(Instant::now()));
    let out = link
        .open(connector)
        .and_then(|remote| remote.exec(crate::facts::gather_script(), None, timeout))
        .map_err(ControlError::Unreachable)?;
    let facts = crate::facts::parse(&out.stdout_str());
    let mut r = ModuleResult::ok();
    r.data.insert(
        "ansible_facts".into(),
        facts
            .get("ansible_facts")
            .cloned()
            .unwrap_or(Value::Object(facts.clone())),
    );
    Ok(with(r, Effect::AddFacts(facts)))
}

/// A duration parameter in seconds (declared with its default), checked.
fn seconds(a: &Args<'_>, name: &str) -> Result<Duration, Problem> {
    checked_seconds(a, name, a.float(name)?.unwrap_or(0.0))
}

/// `secs` of parameter `name` as a duration, or the module's error naming the parameter.
fn checked_seconds(a: &Args<'_>, name: &str, secs: f64) -> Result<Duration, Problem> {
    crate::value::seconds(secs)
        .map_err(|e| ControlError::Failed(format!("{}: parameter '{name}' {e}", a.module())).into())
}

/// How long one `wait_for_connection` probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

fn wait_for_connection(
    link: &mut HostLink,
    connector: &dyn Connector,
    a: &Args<'_>,
    deadline: Option<Deadline>,
) -> Result<Done, Problem> {
    let timeout = seconds(a, "timeout")?;
    let delay = seconds(a, "delay")?;
    let sleep = seconds(a, "sleep")?;
    sleep_within(delay, deadline.as_ref());
    let start = Instant::now();
    loop {
        let probe = match deadline {
            Some(d) => d.command_timeout(Instant::now()).min(PROBE_TIMEOUT),
            None => PROBE_TIMEOUT,
        };
        let ok = link
            .reopen(connector)
            .and_then(|r| r.exec("true", None, Some(probe)))
            .map(|o| o.ok())
            .unwrap_or(false);
        if ok {
            return Ok(ModuleResult::ok()
                .set("elapsed", start.elapsed().as_secs())
                .into());
        }
        // Past the task's deadline the task fails as timed out (its runner says so).
        let out_of_time = deadline.is_some_and(|d| d.passed(Instant::now()));
        if start.elapsed() >= timeout || out_of_time {
            return Err(ControlError::Failed(format!(
                "timed out waiting for connection after {}s",
                timeout.as_secs()
            ))
            .into());
        }
        sleep_within(sleep, deadline.as_ref());
    }
}

fn pause(a: &Args<'_>, check: bool, deadline: Option<Deadline>) -> Result<ModuleResult, Problem> {
    let wait = match (a.float("seconds")?, a.float("minutes")?) {
        (Some(s), _) => Some(checked_seconds(a, "seconds", s)?),
        (None, Some(m)) => Some(checked_seconds(a, "minutes", m * 60.0)?),
        (None, None) => None,
    };
    match wait {
        Some(wait) if !check => {
            sleep_within(wait, deadline.as_ref());
            Ok(ModuleResult::ok())
        }
        Some(_) => Ok(ModuleResult::ok()),
        // A prompt without a duration: Ansible answers it with nothing when stdin is not a
        // terminal; knockplay reads no input at all, so it always does that.
        None => Ok(ModuleResult::ok()
            .set("user_input", "")
            .set("stdout", "Paused for 0.0 minutes")
            .set(
                "warnings",
                crate::value::Value::Array(vec![
                    "Not waiting for response to prompt as knockplay reads no input".into(),
                ]),
            )),
    }
}

/// `a.b`, `a['b']`, `a[0]`, `a | length`: names, attribute and index access, filters without
/// arguments; no calls, no template syntax.
fn is_variable_path(s: &str) -> bool {
    let s = s.trim();
    !s.is_empty()
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '.' | '[' | ']' | '\'' | '"' | ' ' | '|' | '-')
        })
}

fn debug(templar: &Templar, a: &Args<'_>, scope: &Vars) -> Result<ModuleResult, Problem> {
    let mut r = ModuleResult::ok();
    if let Some(name) = a.str("var")? {
        let v = match scope.get(&name) {
            Some(v) => v.clone(),
            // `var` is an expression; pasting a rendered value (`var: "{{ out.stdout }}"`) into
            // one would evaluate target data, so only variable paths and filters without
            // arguments are evaluated.
            None if !is_variable_path(&name) => {
                return Err(ControlError::Failed(format!(
                    "debug var must name a variable (a.b, a['b'], a[0], a | filter), not '{}'",
                    name.chars().take(80).collect::<String>()
                ))
                .into())
            }
            None => match templar.render_str(&format!("{{{{ {name} }}}}"), scope) {
                Ok(v) => v,
                Err(_) => Value::String("VARIABLE IS NOT DEFINED!".into()),
            },
        };
        r.data.insert(name, v);
    } else {
        let msg = a
            .value("msg")?
            .unwrap_or_else(|| Value::String("Hello world!".into()));
        r.data.insert("msg".into(), msg);
    }
    Ok(r)
}

fn assert(templar: &Templar, a: &Args<'_>, scope: &Vars) -> Result<ModuleResult, Problem> {
    let that: Vec<Value> = match a.value("that")? {
        Some(Value::Array(list)) => list,
        Some(v) => vec![v],
        None => {
            return Err(
                ControlError::Failed("assert: missing required argument 'that'".into()).into(),
            )
        }
    };
    for c in &that {
        if !cond_true(templar, c, scope)? {
            let msg = a
                .value("fail_msg")?
                .map(|m| to_display(&m))
                .unwrap_or_else(|| "Assertion failed".into());
            let mut r = ModuleResult::failed(msg);
            r.data.insert("assertion".into(), c.clone());
            r.data.insert("evaluated_to".into(), json!(false));
            return Ok(r);
        }
    }
    let msg = a
        .value("success_msg")?
        .map(|m| to_display(&m))
        .unwrap_or_else(|| "All assertions passed".into());
    let mut r = ModuleResult::ok();
    r.msg = Some(msg);
    Ok(r)
}

fn include_vars(task: &Task, play_dir: &Path, a: &Args<'_>) -> Result<Done, Problem> {
    let file = match a.free_form()? {
        Some(f) => Some(f),
        None => a.str("file")?,
    };
    let mut loaded = Vars::new();
    let mut files = Vec::new();
    if let Some(f) = file {
        let path = find_vars_file(task, play_dir, &f);
        loaded = parse::load_vars_file(&path).map_err(|e| e.to_string())?;
        files.push(path.display().to_string());
    } else if let Some(d) = a.str("dir")? {
        let dir = find_vars_file(task, play_dir, &d);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("include_vars: cannot read directory {}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "yml" || x == "yaml" || x == "json")
            })
            .collect();
        entries.sort();
        for p in entries {
            loaded.extend(parse::load_vars_file(&p).map_err(|e| e.to_string())?);
            files.push(p.display().to_string());
        }
    } else {
        return Err(ControlError::Failed(
            "include_vars needs a file name (free form or file=) or dir=".into(),
        )
        .into());
    }
    let target = match a.str("name")? {
        Some(n) => {
            let mut m = Vars::new();
            m.insert(n, Value::Object(loaded));
            m
        }
        None => loaded,
    };
    let mut r = ModuleResult::ok();
    r.data
        .insert("ansible_facts".into(), Value::Object(target.clone()));
    r.data
        .insert("ansible_included_var_files".into(), json!(files));
    Ok(with(r, Effect::IncludeVars(target)))
}

/// include_vars looks in the role's vars/, then next to the task file, then the playbook's vars/.
fn find_vars_file(task: &Task, play_dir: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let mut cands = Vec::new();
    if let Some(r) = &task.role {
        cands.push(r.dir.join("vars").join(name));
        cands.push(r.dir.join(name));
    }
    if let Some((dir, _)) = task.pos.file.rsplit_once('/') {
        cands.push(Path::new(dir).join("vars").join(name));
        cands.push(Path::new(dir).join(name));
    }
    cands.push(play_dir.join("vars").join(name));
    cands.push(play_dir.join(name));
    cands
        .iter()
        .find(|c| c.exists())
        .cloned()
        .unwrap_or_else(|| play_dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::super::tests::vars;
    use super::*;
    use crate::modules::control_specs::{
        ASSERT, DEBUG, META, PAUSE, SET_FACT, WAIT_FOR_CONNECTION,
    };

    /// Run `f` on `v` read through `spec` (which must accept it).
    fn with_args<T>(spec: &'static Spec, v: Value, f: impl FnOnce(&Args<'_>) -> T) -> T {
        let vars = vars(v);
        let a = Args::new(spec, &vars).unwrap_or_else(|e| panic!("{}: {e}", spec.module));
        f(&a)
    }

    #[test]
    fn meta_actions_are_effects() {
        let cases: Vec<(&str, Option<Effect>)> = vec![
            ("flush_handlers", Some(Effect::FlushHandlers)),
            ("noop", None),
            ("clear_host_errors", None),
            ("refresh_inventory", None),
            ("clear_facts", Some(Effect::ClearFacts)),
            ("reset_connection", Some(Effect::ResetConnection)),
            (" end_play ", Some(Effect::EndPlay)),
            ("end_host", Some(Effect::EndHost)),
        ];
        for (what, want) in cases {
            let Ok(done) = with_args(&META, json!({"_raw_params": what}), meta) else {
                panic!("{what}: not a meta action");
            };
            assert_eq!(done.effect, want, "{what}");
            assert_eq!(
                done.result.data.get("skipped"),
                Some(&json!(true)),
                "{what}"
            );
        }
        assert!(with_args(&META, json!({"_raw_params": "reboot"}), meta).is_err());
    }

    #[test]
    fn set_fact_sets_all_but_cacheable() {
        let done = with_args(
            &SET_FACT,
            json!({"a": 1, "cacheable": false, "b": "x"}),
            set_fact,
        )
        .unwrap_or_else(|_| panic!("set_fact failed"));
        let want = vars(json!({"a": 1, "b": "x"}));
        assert_eq!(done.effect, Some(Effect::SetFacts(want.clone())));
        assert_eq!(done.result.data["ansible_facts"], Value::Object(want));
    }

    #[test]
    fn pause_needs_a_duration_and_skips_waiting_in_check_mode() {
        let pause_of = |v: Value, check: bool| with_args(&PAUSE, v, |a| pause(a, check, None));
        assert!(pause_of(json!({"minutes": 5}), true).is_ok());
        assert!(pause_of(json!({"seconds": "0"}), false).is_ok());
        // A prompt is shown and answered with nothing: knockplay reads no input.
        let r = pause_of(json!({"prompt": "continue?"}), false).unwrap_or_else(|_| panic!("pause"));
        assert_eq!(r.data["user_input"], json!(""));
    }

    #[test]
    fn durations_are_checked_not_trusted() {
        // What a playbook or a target's output may hand these modules.
        let cases = [
            (
                &PAUSE,
                json!({"seconds": "1e400"}),
                "pause: parameter 'seconds' must be",
            ),
            (
                &PAUSE,
                json!({"seconds": -1}),
                "pause: parameter 'seconds' must be",
            ),
            (
                &PAUSE,
                json!({"minutes": "1e307"}),
                "pause: parameter 'minutes' must be",
            ),
            (
                &WAIT_FOR_CONNECTION,
                json!({"delay": "-1"}),
                "wait_for_connection: parameter 'delay' must be",
            ),
            (
                &WAIT_FOR_CONNECTION,
                json!({"timeout": "inf"}),
                "wait_for_connection: parameter 'timeout' must be",
            ),
        ];
        for (spec, v, want) in cases {
            let got = with_args(spec, v.clone(), |a| match spec.module {
                "pause" => pause(a, false, None).map(|_| ()),
                _ => seconds(a, "delay")
                    .and_then(|_| seconds(a, "timeout"))
                    .map(|_| ()),
            });
            let Err(Problem::Control(ControlError::Failed(msg))) = got else {
                panic!("{v} was accepted");
            };
            assert!(msg.starts_with(want), "{v}: {msg}");
        }
    }

    #[test]
    fn debug_and_assert() {
        let t = Templar::new();
        let scope = vars(json!({"x": 2, "l": [1, 2]}));
        let debug_of = |v: Value| {
            with_args(&DEBUG, v, |a| debug(&t, a, &scope))
                .ok()
                .map(|r| r.data)
                .unwrap_or_default()
        };
        assert_eq!(debug_of(json!({"var": "x"}))["x"], json!(2));
        assert_eq!(
            debug_of(json!({"var": "l | length"}))["l | length"],
            json!(2)
        );
        assert_eq!(
            debug_of(json!({"var": "nope"}))["nope"],
            json!("VARIABLE IS NOT DEFINED!")
        );
        assert_eq!(debug_of(json!({}))["msg"], json!("Hello world!"));
        let assert_of = |v: Value| with_args(&ASSERT, v, |a| assert(&t, a, &scope)).ok();
        let ok = assert_of(json!({"that": ["x == 2", true]}));
        assert_eq!(ok.and_then(|r| r.msg), Some("All assertions passed".into()));
        // `msg` is an alias of `fail_msg`.
        let failed = assert_of(json!({"that": "x == 3", "msg": "no"}));
        assert_eq!(failed.as_ref().map(|r| r.failed), Some(true));
        assert_eq!(failed.and_then(|r| r.msg), Some("no".into()));
    }

    #[test]
    fn argument_errors_are_named_after_the_module() {
        let d = tempfile::tempdir().unwrap();
        let task = crate::playbook::parse::load_tasks_file(
            &{
                let p = d.path().join("t.yml");
                std::fs::write(&p, "- pause: seconds=1\n").unwrap();
                p
            },
            d.path(),
            &Default::default(),
            None,
        )
        .unwrap()
        .remove(0);
        let mut link = HostLink::new(super::super::connect::HostConn {
            name: "h".into(),
            addr: "h".into(),
            port: 22,
            user: "root".into(),
            private_key: None,
            ..Default::default()
        });
        let connector = super::super::tests::LocalConnector { refuse: Vec::new() };
        let templar = Templar::new();
        let scope = Vars::new();
        let cx = ControlCtx {
            templar: &templar,
            scope: &scope,
            task: &task,
            play_dir: d.path(),
            check: true,
            link: &mut link,
            connector: &connector,
            deadline: None,
        };
        let Err(ControlError::Failed(msg)) = run(&PAUSE, &vars(json!({"seconds": "soon"})), cx)
        else {
            panic!("a bad duration was accepted");
        };
        assert!(msg.starts_with("pause: parameter 'seconds'"), "{msg}");
    }
}
