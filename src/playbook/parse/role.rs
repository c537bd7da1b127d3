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
use crate::playbook::model::{Action, RoleCtx, RoleSearch, Task};
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

/// A vars file of the role (`defaults/main.yml`, `vars/main.yml`), empty when absent.
fn role_vars(dir: &Path) -> Result<Vars, ParseError> {
    match yaml_in(dir, "main") {
        Some(p) => load_vars_file(&p),
        None => Ok(Vars::new()),
    }
}

/// Load a role: its tasks (from `tasks_from`, default `main`) and handlers, with role context
/// (defaults, vars, params) attached to every task. Meta dependencies are loaded first.
pub fn load_role(
    name: &str,
    play_dir: &Path,
    search: &Arc<RoleSearch>,
    including_role: Option<Arc<RoleCtx>>,
    params: Vars,
    tasks_from: Option<&str>,
) -> Result<(Vec<Task>, Vec<Task>), ParseError> {
    let ctx = FileCtx {
        dir: play_dir.to_path_buf(),
        play_dir: play_dir.to_path_buf(),
        search: Arc::clone(search),
        role: including_role,
    };
    load_role_in(name, &ctx, params, tasks_from)
}

/// [`load_role`] as seen from `ctx`: a role that depends on or includes another also finds it
/// beside itself.
pub(super) fn load_role_in(
    name: &str,
    from: &FileCtx,
    params: Vars,
    tasks_from: Option<&str>,
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
    let defaults = role_vars(&dir.join("defaults"))?;
    let vars = role_vars(&dir.join("vars"))?;
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
        role: Some(role.clone()),
    };
    let (mut tasks, mut handlers) = meta_dependencies(&dir, &ctx)?;
    let stem = tasks_from.unwrap_or("main");
    let stem = stem
        .strip_suffix(".yml")
        .or_else(|| stem.strip_suffix(".yaml"))
        .unwrap_or(stem);
    match yaml_in(&dir.join("tasks"), stem) {
        Some(p) => tasks.extend(load_tasks_file_ctx(&p, &ctx)?),
        None if tasks_from.is_some() => {
            return Err(err(
                &file_pos(&dir),
                format!("role '{name}' has no tasks/{stem}.yml"),
            ))
        }
        None => {}
    }
    if let Some(p) = yaml_in(&dir.join("handlers"), "main") {
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

/// The tasks and handlers of the roles `meta/main.yml` depends on: they run before the role.
fn meta_dependencies(dir: &Path, ctx: &FileCtx) -> Result<(Vec<Task>, Vec<Task>), ParseError> {
    let mut tasks = Vec::new();
    let mut handlers = Vec::new();
    if let Some(meta) = yaml_in(&dir.join("meta"), "main") {
        if let Some(n) = load(&meta)? {
            if let Some(deps) = n.get("dependencies").and_then(Node::as_seq) {
                for d in deps {
                    let (t, h) = role_from_play_entry(d, ctx)?;
                    tasks.extend(t);
                    handlers.extend(h);
                }
            }
        }
    }
    Ok((tasks, handlers))
}

/// A `roles:` entry: `- name`, `- role: name`, or `- { role: name, x: 1, when: ..., tags: ... }`.
pub(super) fn role_from_play_entry(
    node: &Node,
    from: &FileCtx,
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
    let (tasks, handlers) =
        load_role_in(&name, from, params, None).map_err(|e| refer_to(e, &node.pos, ""))?;
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
