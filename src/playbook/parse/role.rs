//! Roles: finding a role directory, loading its defaults, vars, meta dependencies, tasks and
//! handlers, and play `roles:` entries (with `when`/`tags`/`become` wrapped around the role).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fields::{become_from, opt, string_list, when_list};
use super::{
    err, file_pos, load, load_tasks_file_ctx, load_vars_file, parse_task_list, refer_to, FileCtx,
    ParseError,
};
use crate::playbook::keywords::TASK_KEYWORDS;
use crate::playbook::model::{Action, RoleCtx, RoleFiles, RoleSearch, Task};
use crate::playbook::yaml::{Node, NodeKind};
use crate::value::{Value, Vars};

/// `dir/stem.yml`, `dir/stem.yaml` or `dir/stem`, whichever exists first.
fn yaml_in(dir: &Path, stem: &str) -> Option<PathBuf> {
    ["yml", "yaml", ""]
        .iter()
        .map(|ext| {
            if ext.is_empty() {
                dir.join(stem)
            } else {
                dir.join(format!("{stem}.{ext}"))
            }
        })
        .find(|p| p.is_file())
}

/// The directories a role name may be, in Ansible's order: a collection role
/// (`ns.coll.role` under `collections/` beside the playbook, then each collection root), then
/// `roles/` beside the playbook, each `roles_path` entry, beside the role that depends on it,
/// and the playbook's directory itself.
pub fn role_candidates(
    name: &str,
    play_dir: &Path,
    search: &RoleSearch,
    parent: Option<&Path>,
) -> Vec<PathBuf> {
    let p = Path::new(name);
    if p.is_absolute() {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() == 3 && !name.contains('/') && parts.iter().all(|s| !s.is_empty()) {
        let roots = std::iter::once(play_dir.join("collections"))
            .chain(search.collections_path.iter().cloned());
        for root in roots {
            out.push(
                root.join("ansible_collections")
                    .join(parts[0])
                    .join(parts[1])
                    .join("roles")
                    .join(parts[2]),
            );
        }
    }
    out.push(play_dir.join("roles").join(name));
    out.extend(search.roles_path.iter().map(|d| d.join(name)));
    if let Some(siblings) = parent.and_then(Path::parent) {
        out.push(siblings.join(name));
    }
    out.push(play_dir.join(name));
    out
}

/// Find a role directory (see [`role_candidates`]).
pub fn find_role(name: &str, play_dir: &Path, search: &RoleSearch) -> Option<PathBuf> {
    role_candidates(name, play_dir, search, None)
        .into_iter()
        .find(|d| d.is_dir())
}

/// A file of the role: `sub/NAME.yml` for `name` (`tasks_from` and the like, with or without
/// the extension), else `sub/main.yml`. A named file that does not exist is an error; a missing
/// `main` is none.
fn role_file(
    dir: &Path,
    sub: &str,
    name: Option<&str>,
    role: &str,
) -> Result<Option<PathBuf>, ParseError> {
    let stem = name.unwrap_or("main");
    let stem = stem
        .strip_suffix(".yml")
        .or_else(|| stem.strip_suffix(".yaml"))
        .unwrap_or(stem);
    match yaml_in(&dir.join(sub), stem) {
        Some(p) => Ok(Some(p)),
        None if name.is_some() => Err(err(
            &file_pos(dir),
            format!("role '{role}' has no {sub}/{stem}.yml"),
        )),
        None => Ok(None),
    }
}

/// A vars file of the role (`defaults/`, `vars/`), empty when absent.
fn role_vars(dir: &Path, sub: &str, name: Option<&str>, role: &str) -> Result<Vars, ParseError> {
    match role_file(dir, sub, name, role)? {
        Some(p) => load_vars_file(&p),
        None => Ok(Vars::new()),
    }
}

/// Load a role: its tasks and handlers (from the files `from` names, `main` otherwise), with
/// role context (defaults, vars, params) attached to every task. Meta dependencies come first,
/// except those in `roles_seen` (the play already ran them).
pub fn load_role(
    name: &str,
    play_dir: &Path,
    search: &Arc<RoleSearch>,
    including_role: Option<Arc<RoleCtx>>,
    params: Vars,
    from: &RoleFiles<String>,
    roles_seen: &std::collections::HashSet<String>,
) -> Result<(Vec<Task>, Vec<Task>), ParseError> {
    let ctx = FileCtx {
        dir: play_dir.to_path_buf(),
        play_dir: play_dir.to_path_buf(),
        search: Arc::clone(search),
        seen_roles: Arc::new(std::sync::Mutex::new(roles_seen.clone())),
        handlers: Default::default(),
        role: including_role,
    };
    load_role_in(name, &ctx, params, from, false)
}

/// [`load_role`] as seen from `ctx`: a role that depends on or includes another also finds it
/// beside itself. `once`: a role the play already has with the same parameters is skipped
/// (play `roles:` and dependencies), unless its meta says `allow_duplicates: true`.
pub(super) fn load_role_in(
    name: &str,
    from: &FileCtx,
    params: Vars,
    files: &RoleFiles<String>,
    once: bool,
) -> Result<(Vec<Task>, Vec<Task>), ParseError> {
    let play_dir = from.play_dir.as_path();
    let parent = from.role.as_ref().map(|r| r.dir.as_path());
    let candidates = role_candidates(name, play_dir, &from.search, parent);
    let dir = candidates
        .iter()
        .find(|d| d.is_dir())
        .cloned()
        .ok_or_else(|| {
            let searched: Vec<String> = candidates
                .iter()
                .map(|d| d.parent().unwrap_or(d).display().to_string())
                .collect();
            err(
                &file_pos(play_dir),
                format!("the role '{name}' was not found in {}", searched.join(":")),
            )
        })?;
    let meta = match yaml_in(&dir.join("meta"), "main") {
        Some(p) => load(&p)?,
        None => None,
    };
    if once {
        let allow = meta
            .as_ref()
            .and_then(|m| m.get("allow_duplicates"))
            .and_then(|n| crate::value::as_bool(&n.to_value()))
            .unwrap_or(false);
        let key = format!(
            "{}\n{}",
            dir.display(),
            serde_json::to_string(&params).unwrap_or_default()
        );
        let mut seen = from.seen_roles.lock().unwrap_or_else(|p| p.into_inner());
        if !seen.insert(key) && !allow {
            return Ok((Vec::new(), Vec::new()));
        }
    }
    let defaults = role_vars(&dir, "defaults", files.defaults.as_deref(), name)?;
    let vars = role_vars(&dir, "vars", files.vars.as_deref(), name)?;
    let role_name = Path::new(name)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.to_string());
    let role = Arc::new(RoleCtx {
        name: role_name,
        dir: dir.clone(),
        defaults,
        vars,
        params,
    });
    let ctx = FileCtx {
        dir: dir.join("tasks"),
        play_dir: play_dir.to_path_buf(),
        search: Arc::clone(&from.search),
        seen_roles: Arc::clone(&from.seen_roles),
        handlers: Arc::clone(&from.handlers),
        role: Some(role.clone()),
    };
    let (mut tasks, mut handlers) = meta_dependencies(meta.as_ref(), &ctx)?;
    let entry = files.tasks.as_deref().unwrap_or("main");
    let entry = entry
        .strip_suffix(".yml")
        .or_else(|| entry.strip_suffix(".yaml"))
        .unwrap_or(entry);
    if let Some(v) = validation_task(&dir, meta.as_ref(), entry, name, &role)? {
        tasks.push(v);
    }
    if let Some(p) = role_file(&dir, "tasks", files.tasks.as_deref(), name)? {
        tasks.extend(load_tasks_file_ctx(&p, &ctx)?);
    }
    if let Some(p) = role_file(&dir, "handlers", files.handlers.as_deref(), name)? {
        let hctx = FileCtx {
            dir: dir.join("handlers"),
            ..ctx
        };
        if let Some(n) = load(&p)? {
            handlers.extend(parse_task_list(Some(&n), &hctx)?);
        }
    }
    Ok((tasks, handlers))
}

/// A templated role name rendered with the play's vars, the extra vars and `playbook_dir`.
fn role_name(name: &str, from: &FileCtx, play_vars: &Vars) -> Result<String, String> {
    let mut vars = play_vars.clone();
    vars.extend(from.search.extra_vars.clone());
    let dir = std::fs::canonicalize(&from.play_dir).unwrap_or_else(|_| from.play_dir.clone());
    vars.insert(
        "playbook_dir".into(),
        Value::String(dir.display().to_string()),
    );
    crate::playbook::template::mark_author_vars(&mut vars);
    crate::playbook::template::Templar::new()
        .render_str(name, &vars)
        .map(|v| crate::value::to_display(&v))
        .map_err(|e| format!("role name '{name}': {e}"))
}

/// The task Ansible puts before a role's first task when `meta/argument_specs.yml` (or
/// `argument_specs` in `meta/main.yml`) has a spec for the entry point: it validates the role's
/// variables and parameters against the spec's options.
fn validation_task(
    dir: &Path,
    meta: Option<&Node>,
    entry: &str,
    name: &str,
    role: &Arc<RoleCtx>,
) -> Result<Option<Task>, ParseError> {
    let file = yaml_in(&dir.join("meta"), "argument_specs");
    let loaded = match &file {
        Some(p) => load(p)?,
        None => None,
    };
    let specs = match (&loaded, meta) {
        (Some(n), _) => n.get("argument_specs"),
        (None, Some(m)) => m.get("argument_specs"),
        (None, None) => None,
    };
    let Some(spec) = specs.and_then(|s| s.get(entry)) else {
        return Ok(None);
    };
    let spec_value = spec.to_value();
    let mut task_name = format!("Validating arguments against arg spec '{entry}'");
    if let Some(d) = spec_value.get("short_description") {
        task_name.push_str(&format!(" - {}", crate::value::to_display(d)));
    }
    let args = serde_json::json!({
        "argument_spec": spec_value.get("options").cloned().unwrap_or_else(|| serde_json::json!({})),
        "provided_arguments": Value::Object(role.params.clone()),
        "validate_args_context": {
            "type": "role",
            "name": name,
            "argument_spec_name": entry,
            "path": dir.display().to_string(),
        },
    });
    let mut t = Task::new(
        Some(task_name),
        spec.pos.clone(),
        Action::Module {
            name: "validate_argument_spec".into(),
            args,
        },
    );
    t.tags = vec!["always".into()];
    t.role = Some(Arc::clone(role));
    Ok(Some(t))
}

/// The tasks and handlers of the roles `meta/main.yml` depends on: they run before the role.
fn meta_dependencies(
    meta: Option<&Node>,
    ctx: &FileCtx,
) -> Result<(Vec<Task>, Vec<Task>), ParseError> {
    let mut tasks = Vec::new();
    let mut handlers = Vec::new();
    if let Some(deps) = meta
        .and_then(|n| n.get("dependencies"))
        .and_then(Node::as_seq)
    {
        for d in deps {
            let (t, h) = role_from_play_entry(d, ctx, &Vars::new())?;
            tasks.extend(t);
            handlers.extend(h);
        }
    }
    Ok((tasks, handlers))
}

/// A `roles:` entry: `- name`, `- role: name`, or `- { role: name, x: 1, when: ..., tags: ... }`.
pub(super) fn role_from_play_entry(
    node: &Node,
    from: &FileCtx,
    play_vars: &Vars,
) -> Result<(Vec<Task>, Vec<Task>), ParseError> {
    let (name, params, wrapper) = match &node.kind {
        NodeKind::Scalar(Value::String(s)) => (s.clone(), Vars::new(), None),
        NodeKind::Map(entries) => {
            let name = node
                .get("role")
                .or_else(|| node.get("name"))
                .and_then(Node::as_str)
                .ok_or_else(|| err(&node.pos, "role entry needs 'role:' (or 'name:')"))?
                .to_string();
            let mut params = Vars::new();
            let mut has_wrapper = false;
            for (k, v) in entries {
                match k.as_str() {
                    "role" | "name" => {}
                    "vars" => {
                        if let Value::Object(o) = v.to_value() {
                            params.extend(o);
                        }
                    }
                    k if TASK_KEYWORDS.contains(&k) => has_wrapper = true,
                    _ => {
                        params.insert(k.clone(), v.to_value());
                    }
                }
            }
            (name, params, has_wrapper.then_some(node))
        }
        _ => return Err(err(&node.pos, "a role entry must be a name or a mapping")),
    };
    let name = if name.contains("{{") {
        role_name(&name, from, play_vars).map_err(|e| err(&node.pos, e))?
    } else {
        name
    };
    let (tasks, handlers) = load_role_in(&name, from, params, &RoleFiles::default(), true)
        .map_err(|e| refer_to(e, &node.pos, ""))?;
    let tasks = match wrapper {
        // `when`/`tags`/`become` on a role apply to each of its tasks: wrap them in a block.
        Some(w) => vec![Task {
            when: when_list(w),
            ignore_errors: opt(w, "ignore_errors"),
            tags: string_list(w.get("tags"))?,
            environment: opt(w, "environment"),
            check_mode: opt(w, "check_mode"),
            become_: become_from(w),
            remote_user: opt(w, "remote_user"),
            ..Task::new(
                Some(format!("role {name}")),
                w.pos.clone(),
                Action::block_of(tasks),
            )
        }],
        None => tasks,
    };
    Ok((tasks, handlers))
}
