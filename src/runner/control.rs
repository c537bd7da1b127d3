//! Modules that act on the run itself rather than on the target's state: `debug`, `set_fact`,
//! `assert`, `fail`, `meta`, `include_vars`, `setup`, `wait_for_connection`, `pause`.
//!
//! They read what they need through [`ControlCtx`] and return what they change in the run as an
//! [`Effect`]; the host run applies it (so this file knows nothing of the host run).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::connect::{Connector, HostLink};
use super::keywords::cond_true;
use crate::modules::ModuleResult;
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

/// Run control module `name`. `args` are templated.
pub fn run(name: &str, args: &Vars, cx: ControlCtx<'_>) -> Result<Done, ControlError> {
    match name {
        "debug" => Ok(debug(cx.templar, args, cx.scope).into()),
        "set_fact" => Ok(set_fact(args)),
        "assert" => Ok(assert(cx.templar, args, cx.scope)?.into()),
        "fail" => Err(ControlError::Failed(
            args.get("msg")
                .map(to_display)
                .unwrap_or_else(|| "Failed as requested from task".into()),
        )),
        "meta" => meta(args),
        "include_vars" => include_vars(cx.task, cx.play_dir, args),
        "setup" | "gather_facts" => setup(cx.link, cx.connector),
        "wait_for_connection" => wait_for_connection(cx.link, cx.connector, args),
        "pause" => pause(args, cx.check).map(Done::from),
        other => Err(ControlError::Failed(format!(
            "'{other}' cannot be used here"
        ))),
    }
}

fn set_fact(args: &Vars) -> Done {
    let mut facts = Vars::new();
    for (k, v) in args {
        if k == "cacheable" {
            continue;
        }
        facts.insert(k.clone(), v.clone());
    }
    let mut r = ModuleResult::ok();
    r.data
        .insert("ansible_facts".into(), Value::Object(facts.clone()));
    with(r, Effect::SetFacts(facts))
}

fn meta(args: &Vars) -> Result<Done, ControlError> {
    let what = args.get("_raw_params").map(to_display).unwrap_or_default();
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
            )))
        }
    })
}

fn setup(link: &mut HostLink, connector: &dyn Connector) -> Result<Done, ControlError> {
    let out = link
        .open(connector)
        .and_then(|remote| remote.exec(crate::facts::gather_script(), None, None))
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

/// A number of seconds (or minutes) from `args[key]`, if it is given and parses.
fn seconds(args: &Vars, key: &str) -> Option<f64> {
    args.get(key)
        .and_then(|v| to_display(v).parse::<f64>().ok())
}

fn wait_for_connection(
    link: &mut HostLink,
    connector: &dyn Connector,
    args: &Vars,
) -> Result<Done, ControlError> {
    let timeout = Duration::from_secs_f64(seconds(args, "timeout").unwrap_or(600.0));
    let delay = Duration::from_secs_f64(seconds(args, "delay").unwrap_or(0.0));
    let sleep = Duration::from_secs_f64(seconds(args, "sleep").unwrap_or(1.0));
    std::thread::sleep(delay);
    let start = Instant::now();
    loop {
        let ok = link
            .reopen(connector)
            .and_then(|r| r.exec("true", None, Some(Duration::from_secs(10))))
            .map(|o| o.ok())
            .unwrap_or(false);
        if ok {
            return Ok(ModuleResult::ok()
                .set("elapsed", start.elapsed().as_secs())
                .into());
        }
        if start.elapsed() >= timeout {
            return Err(ControlError::Failed(format!(
                "timed out waiting for connection after {}s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(sleep);
    }
}

fn pause(args: &Vars, check: bool) -> Result<ModuleResult, ControlError> {
    let secs = seconds(args, "seconds").or_else(|| seconds(args, "minutes").map(|m| m * 60.0));
    match secs {
        Some(s) if !check => {
            std::thread::sleep(Duration::from_secs_f64(s.max(0.0)));
            Ok(ModuleResult::ok())
        }
        Some(_) => Ok(ModuleResult::ok()),
        None => Err(ControlError::Failed(
            "pause without seconds/minutes would wait for a keypress; knockplay runs unattended"
                .into(),
        )),
    }
}

fn debug(templar: &Templar, args: &Vars, scope: &Vars) -> ModuleResult {
    let mut r = ModuleResult::ok();
    if let Some(var) = args.get("var") {
        let name = to_display(var);
        let v = match scope.get(&name) {
            Some(v) => v.clone(),
            None => match templar.render_str(&format!("{{{{ {name} }}}}"), scope) {
                Ok(v) => v,
                Err(_) => Value::String("VARIABLE IS NOT DEFINED!".into()),
            },
        };
        r.data.insert(name, v);
    } else {
        let msg = args
            .get("msg")
            .cloned()
            .unwrap_or_else(|| Value::String("Hello world!".into()));
        r.data.insert("msg".into(), msg);
    }
    r
}

fn assert(templar: &Templar, args: &Vars, scope: &Vars) -> Result<ModuleResult, ControlError> {
    let that: Vec<Value> = match args.get("that") {
        Some(Value::Array(a)) => a.clone(),
        Some(v) => vec![v.clone()],
        None => {
            return Err(ControlError::Failed(
                "assert: missing required argument 'that'".into(),
            ))
        }
    };
    for c in &that {
        if !cond_true(templar, c, scope)? {
            let msg = args
                .get("fail_msg")
                .or_else(|| args.get("msg"))
                .map(to_display)
                .unwrap_or_else(|| "Assertion failed".into());
            let mut r = ModuleResult::failed(msg);
            r.data.insert("assertion".into(), c.clone());
            r.data.insert("evaluated_to".into(), json!(false));
            return Ok(r);
        }
    }
    let msg = args
        .get("success_msg")
        .map(to_display)
        .unwrap_or_else(|| "All assertions passed".into());
    let mut r = ModuleResult::ok();
    r.msg = Some(msg);
    Ok(r)
}

fn include_vars(task: &Task, play_dir: &Path, args: &Vars) -> Result<Done, ControlError> {
    let file = args
        .get("_raw_params")
        .or_else(|| args.get("file"))
        .map(to_display);
    let mut loaded = Vars::new();
    let mut files = Vec::new();
    if let Some(f) = file {
        let path = find_vars_file(task, play_dir, &f);
        loaded = parse::load_vars_file(&path).map_err(|e| e.to_string())?;
        files.push(path.display().to_string());
    } else if let Some(d) = args.get("dir").map(to_display) {
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
        ));
    }
    let target = match args.get("name").map(to_display) {
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
            let Ok(done) = meta(&vars(json!({"_raw_params": what}))) else {
                panic!("{what}: not a meta action");
            };
            assert_eq!(done.effect, want, "{what}");
            assert_eq!(
                done.result.data.get("skipped"),
                Some(&json!(true)),
                "{what}"
            );
        }
        assert!(meta(&vars(json!({"_raw_params": "reboot"}))).is_err());
    }

    #[test]
    fn set_fact_sets_all_but_cacheable() {
        let done = set_fact(&vars(json!({"a": 1, "cacheable": true, "b": "x"})));
        let want = vars(json!({"a": 1, "b": "x"}));
        assert_eq!(done.effect, Some(Effect::SetFacts(want.clone())));
        assert_eq!(done.result.data["ansible_facts"], Value::Object(want));
    }

    #[test]
    fn pause_needs_a_duration_and_skips_waiting_in_check_mode() {
        assert!(pause(&vars(json!({"minutes": 5})), true).is_ok());
        assert!(pause(&vars(json!({"seconds": 0})), false).is_ok());
        assert!(pause(&Vars::new(), false).is_err());
    }

    #[test]
    fn debug_and_assert() {
        let t = Templar::new();
        let scope = vars(json!({"x": 2, "l": [1, 2]}));
        let r = debug(&t, &vars(json!({"var": "x"})), &scope);
        assert_eq!(r.data["x"], json!(2));
        let r = debug(&t, &vars(json!({"var": "l | length"})), &scope);
        assert_eq!(r.data["l | length"], json!(2));
        let r = debug(&t, &vars(json!({"var": "nope"})), &scope);
        assert_eq!(r.data["nope"], json!("VARIABLE IS NOT DEFINED!"));
        assert_eq!(
            debug(&t, &Vars::new(), &scope).data["msg"],
            json!("Hello world!")
        );
        let ok = assert(&t, &vars(json!({"that": ["x == 2", true]})), &scope).ok();
        assert_eq!(ok.and_then(|r| r.msg), Some("All assertions passed".into()));
        let failed = assert(
            &t,
            &vars(json!({"that": "x == 3", "fail_msg": "no"})),
            &scope,
        )
        .ok();
        assert_eq!(failed.as_ref().map(|r| r.failed), Some(true));
        assert_eq!(failed.and_then(|r| r.msg), Some("no".into()));
    }
}
