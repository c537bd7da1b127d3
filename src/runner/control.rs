//! Modules that act on the run itself rather than on the target's state: `debug`, `set_fact`,
//! `assert`, `fail`, `meta`, `include_vars`, `setup`, `wait_for_connection`, `pause`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::host::HostRun;
use crate::modules::ModuleResult;
use crate::playbook::model::Task;
use crate::playbook::parse;
use crate::ssh::SshError;
use crate::value::{as_bool, to_display, Value, Vars};

pub enum ControlError {
    Failed(String),
    Unreachable(SshError),
}

impl From<String> for ControlError {
    fn from(s: String) -> Self {
        ControlError::Failed(s)
    }
}

fn flow(r: ModuleResult, f: &str) -> ModuleResult {
    r.set("_knockplay_flow", f)
}

/// Run control module `name`. `args` are templated.
pub fn run(
    h: &mut HostRun<'_, '_>,
    task: &Task,
    name: &str,
    args: &Vars,
    scope: &Vars,
    check: bool,
) -> Result<ModuleResult, ControlError> {
    match name {
        "debug" => debug(h, args, scope),
        "set_fact" => {
            let mut r = ModuleResult::ok();
            let mut facts = Vars::new();
            for (k, v) in args {
                if k == "cacheable" {
                    continue;
                }
                h.st.registered.insert(k.clone(), v.clone());
                facts.insert(k.clone(), v.clone());
            }
            h.publish_hostvars();
            r.data.insert("ansible_facts".into(), Value::Object(facts));
            Ok(r)
        }
        "assert" => assert(h, args, scope),
        "fail" => Err(ControlError::Failed(
            args.get("msg")
                .map(to_display)
                .unwrap_or_else(|| "Failed as requested from task".into()),
        )),
        "meta" => {
            let what = args.get("_raw_params").map(to_display).unwrap_or_default();
            match what.trim() {
                "flush_handlers" => {
                    let f = h.flush_handlers();
                    Ok(match f {
                        super::host::Flow::Continue => ModuleResult::ok().set("skipped", true),
                        super::host::Flow::EndPlay => flow(ModuleResult::ok(), "end_play"),
                        _ => ModuleResult::failed("a handler failed"),
                    })
                }
                "noop" | "clear_facts" | "clear_host_errors" | "refresh_inventory" | "reset_connection" => {
                    if what.trim() == "clear_facts" {
                        h.st.facts.clear();
                    }
                    if what.trim() == "reset_connection" {
                        h.st.remote = None;
                    }
                    Ok(ModuleResult::ok().set("skipped", true))
                }
                "end_play" => {
                    h.ctx.end_play.store(true, std::sync::atomic::Ordering::Relaxed);
                    Ok(flow(ModuleResult::ok().set("skipped", true), "end_play"))
                }
                "end_host" => Ok(flow(ModuleResult::ok().set("skipped", true), "end_host")),
                other => Err(ControlError::Failed(format!(
                    "invalid meta action '{other}' (known: flush_handlers, noop, end_play, end_host, clear_facts, reset_connection)"
                ))),
            }
        }
        "include_vars" => include_vars(h, task, args),
        "setup" | "gather_facts" => {
            let remote = h.remote().map_err(ControlError::Unreachable)?;
            let out = remote
                .exec(crate::facts::gather_script(), None, None)
                .map_err(ControlError::Unreachable)?;
            let facts = crate::facts::parse(&out.stdout_str());
            h.st.facts.extend(facts.clone());
            let mut r = ModuleResult::ok();
            r.data.insert(
                "ansible_facts".into(),
                facts
                    .get("ansible_facts")
                    .cloned()
                    .unwrap_or(Value::Object(facts)),
            );
            Ok(r)
        }
        "wait_for_connection" => {
            let num = |k: &str, d: f64| {
                args.get(k)
                    .and_then(|v| to_display(v).parse::<f64>().ok())
                    .unwrap_or(d)
            };
            let timeout = Duration::from_secs_f64(num("timeout", 600.0));
            let delay = Duration::from_secs_f64(num("delay", 0.0));
            let sleep = Duration::from_secs_f64(num("sleep", 1.0));
            std::thread::sleep(delay);
            let start = Instant::now();
            loop {
                let ok = match h.reconnect() {
                    Ok(()) => h
                        .remote()
                        .and_then(|r| r.exec("true", None, Some(Duration::from_secs(10))))
                        .map(|o| o.ok())
                        .unwrap_or(false),
                    Err(_) => false,
                };
                if ok {
                    return Ok(ModuleResult::ok().set("elapsed", start.elapsed().as_secs()));
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
        "pause" => {
            let secs = args
                .get("seconds")
                .and_then(|v| to_display(v).parse::<f64>().ok())
                .or_else(|| {
                    args.get("minutes")
                        .and_then(|v| to_display(v).parse::<f64>().ok())
                        .map(|m| m * 60.0)
                });
            match secs {
                Some(s) if !check => {
                    std::thread::sleep(Duration::from_secs_f64(s.max(0.0)));
                    Ok(ModuleResult::ok())
                }
                Some(_) => Ok(ModuleResult::ok()),
                None => Err(ControlError::Failed(
                    "pause without seconds/minutes would wait for a keypress; knockplay runs unattended".into(),
                )),
            }
        }
        other => Err(ControlError::Failed(format!(
            "'{other}' cannot be used here"
        ))),
    }
}

fn debug(h: &HostRun<'_, '_>, args: &Vars, scope: &Vars) -> Result<ModuleResult, ControlError> {
    let mut r = ModuleResult::ok();
    if let Some(var) = args.get("var") {
        let name = to_display(var);
        let v = match scope.get(&name) {
            Some(v) => v.clone(),
            None => match h
                .ctx
                .templar
                .render_str(&format!("{{{{ {name} }}}}"), scope)
            {
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
    Ok(r)
}

fn assert(h: &HostRun<'_, '_>, args: &Vars, scope: &Vars) -> Result<ModuleResult, ControlError> {
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
        let ok =
            match c {
                Value::Bool(b) => *b,
                Value::String(s) => h.ctx.templar.eval_bool(s, scope).map_err(|e| {
                    format!("The conditional check '{s}' failed. The error was: {e}")
                })?,
                other => as_bool(other).unwrap_or(false),
            };
        if !ok {
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

fn include_vars(
    h: &mut HostRun<'_, '_>,
    task: &Task,
    args: &Vars,
) -> Result<ModuleResult, ControlError> {
    let file = args
        .get("_raw_params")
        .or_else(|| args.get("file"))
        .map(to_display);
    let mut loaded = Vars::new();
    let mut files = Vec::new();
    if let Some(f) = file {
        let path = find_vars_file(h, task, &f);
        loaded = parse::load_vars_file(&path).map_err(|e| e.to_string())?;
        files.push(path.display().to_string());
    } else if let Some(d) = args.get("dir").map(to_display) {
        let dir = find_vars_file(h, task, &d);
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
    for (k, v) in &target {
        h.st.include_vars.insert(k.clone(), v.clone());
    }
    let mut r = ModuleResult::ok();
    r.data.insert("ansible_facts".into(), Value::Object(target));
    r.data
        .insert("ansible_included_var_files".into(), json!(files));
    Ok(r)
}

/// include_vars looks in the role's vars/, then next to the task file, then the playbook's vars/.
fn find_vars_file(h: &HostRun<'_, '_>, task: &Task, name: &str) -> PathBuf {
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
    cands.push(h.ctx.play.dir.join("vars").join(name));
    cands.push(h.ctx.play.dir.join(name));
    cands
        .iter()
        .find(|c| c.exists())
        .cloned()
        .unwrap_or_else(|| h.ctx.play.dir.join(name))
}
