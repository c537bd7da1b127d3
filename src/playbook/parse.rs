//! YAML → playbook model, with errors that name file:line:column and the task.
//!
//! Static constructs are resolved here: `import_playbook`, `import_tasks` with a literal file name,
//! `import_role` and play `roles:`. Dynamic ones (`include_tasks`, `include_role`) stay in the model
//! and are loaded by the runner through [`load_tasks_file`] and [`load_role`].
//!
//! - this file: playbooks, plays, task lists, tasks and vars files
//! - `task`:   one task mapping (keywords, loop, block, module and its arguments)
//! - `role`:   roles and play `roles:` entries
//! - `fields`: keyword values shared by plays, tasks and role entries

mod fields;
mod role;
mod task;
mod unsupported;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::keywords::{did_you_mean, PLAY_KEYWORDS};
use super::model::{Play, Playbook, RoleCtx, Strategy, Task};
use super::yaml::{self, Node, Pos};
use crate::value::{Value, Vars};
use fields::{become_from, string_list, vars_map};

pub use crate::playbook::model::RoleSearch;
pub use role::{find_role, load_role};

/// A problem in a playbook, tasks file, role or vars file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{pos}: {msg}")]
pub struct ParseError {
    pub pos: Pos,
    pub msg: String,
}

impl From<yaml::YamlError> for ParseError {
    fn from(e: yaml::YamlError) -> Self {
        ParseError {
            pos: e.pos,
            msg: crate::playbook::yaml::describe(&e.msg),
        }
    }
}

fn err(pos: &Pos, msg: impl Into<String>) -> ParseError {
    ParseError {
        pos: pos.clone(),
        msg: msg.into(),
    }
}

/// A position naming only a file (line 0): for problems with the file as a whole.
fn file_pos(path: &Path) -> Pos {
    Pos {
        file: Arc::from(path.display().to_string()),
        line: 0,
        col: 0,
    }
}

/// An error about a whole file (a missing one) is reported at `pos`, where the file was
/// referred to, with `prefix`; errors inside the file keep their own position.
fn refer_to(e: ParseError, pos: &Pos, prefix: &str) -> ParseError {
    if e.pos.line == 0 {
        err(pos, format!("{prefix}{}", e.msg))
    } else {
        e
    }
}

/// Load a YAML file that must exist; an empty file is `None`.
fn load(path: &Path) -> Result<Option<Node>, ParseError> {
    Ok(yaml::load_file(path)?)
}

/// Parse a playbook file; roles are found beside it only.
pub fn load_playbook(path: &Path) -> Result<Playbook, ParseError> {
    load_playbook_with(path, &RoleSearch::default())
}

/// Parse a playbook file, finding roles beside it and then where `search` says.
pub fn load_playbook_with(path: &Path, search: &RoleSearch) -> Result<Playbook, ParseError> {
    let mut plays = Vec::new();
    let mut seen = Vec::new();
    let search = Arc::new(search.clone());
    load_playbook_into(path, &mut plays, &mut seen, &search)?;
    Ok(Playbook {
        path: path.to_path_buf(),
        plays,
    })
}

fn load_playbook_into(
    path: &Path,
    plays: &mut Vec<Play>,
    stack: &mut Vec<PathBuf>,
    search: &Arc<RoleSearch>,
) -> Result<(), ParseError> {
    let canon = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if stack.contains(&canon) {
        return Err(err(
            &file_pos(path),
            "import_playbook loop: this file imports itself",
        ));
    }
    stack.push(canon);
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = match load(path)? {
        Some(n) => n,
        None => return Err(err(&file_pos(path), "playbook is empty")),
    };
    let items = root.as_seq().ok_or_else(|| {
        err(
            &root.pos,
            format!(
                "a playbook must be a list of plays, found {}",
                root.type_name()
            ),
        )
    })?;
    for item in items {
        let import = [
            "import_playbook",
            "ansible.builtin.import_playbook",
            "ansible.legacy.import_playbook",
            "include",
        ]
        .iter()
        .find_map(|k| item.get(k));
        if let Some(target) = import {
            let name = target
                .as_str()
                .ok_or_else(|| err(&target.pos, "import_playbook needs a file name"))?;
            let sub = dir.join(name);
            if !sub.exists() {
                return Err(err(
                    &target.pos,
                    format!("import_playbook: {} does not exist", sub.display()),
                ));
            }
            load_playbook_into(&sub, plays, stack, search)?;
            continue;
        }
        plays.push(parse_play(item, &dir, search)?);
    }
    stack.pop();
    Ok(())
}

/// Parse a play mapping (its `roles:` expanded in place).
fn parse_play(node: &Node, dir: &Path, search: &Arc<RoleSearch>) -> Result<Play, ParseError> {
    let map = node.as_map().ok_or_else(|| {
        err(
            &node.pos,
            format!("a play must be a mapping, found {}", node.type_name()),
        )
    })?;
    check_play_keywords(map)?;
    unsupported::check(node, "play", true)?;
    let hosts = play_hosts(node)?;
    let name = node
        .get("name")
        .map(|n| crate::value::to_display(&n.to_value()))
        .unwrap_or_else(|| hosts.clone());
    let strategy = play_strategy(node)?;
    let vars_files = match node.get("vars_files") {
        None => Vec::new(),
        Some(n) => match n.to_value() {
            Value::Array(a) => a,
            Value::Null => Vec::new(),
            v => vec![v],
        },
    };
    let mut play = Play {
        name,
        hosts,
        pos: node.pos.clone(),
        dir: dir.to_path_buf(),
        search: Arc::clone(search),
        vars: vars_map(node.get("vars"), "play vars")?,
        vars_files,
        gather_facts: node
            .get("gather_facts")
            .map(Node::to_value)
            .unwrap_or(Value::Bool(true)),
        become_: become_from(node),
        remote_user: node
            .get("remote_user")
            .or_else(|| node.get("user"))
            .map(Node::to_value),
        environment: node.get("environment").map(Node::to_value),
        connection: node.get("connection").map(Node::to_value),
        port: node.get("port").map(Node::to_value),
        module_defaults: node.get("module_defaults").map(Node::to_value),
        roles_seen: HashSet::new(),
        serial: node.get("serial").map(Node::to_value),
        strategy,
        tags: string_list(node.get("tags"))?,
        check_mode: node.get("check_mode").map(Node::to_value),
        ignore_errors: node.get("ignore_errors").map(Node::to_value),
        pre_tasks: Vec::new(),
        tasks: Vec::new(),
        post_tasks: Vec::new(),
        handlers: Vec::new(),
        any_errors_fatal: node
            .get("any_errors_fatal")
            .and_then(|n| crate::value::as_bool(&n.to_value()))
            .unwrap_or(false),
    };
    let ctx = FileCtx {
        dir: dir.to_path_buf(),
        role: None,
        play_dir: dir.to_path_buf(),
        search: Arc::clone(&play.search),
        seen_roles: Default::default(),
        handlers: Default::default(),
    };
    play.pre_tasks = parse_task_list(node.get("pre_tasks"), &ctx)?;
    if let Some(roles) = node.get("roles") {
        let items = roles
            .as_seq()
            .ok_or_else(|| err(&roles.pos, "roles must be a list"))?;
        for r in items {
            let (tasks, handlers) = role::role_from_play_entry(r, &ctx, &play.vars)?;
            play.tasks.extend(tasks);
            play.handlers.extend(handlers);
        }
    }
    play.tasks.extend(parse_task_list(node.get("tasks"), &ctx)?);
    play.post_tasks = parse_task_list(node.get("post_tasks"), &ctx)?;
    play.handlers
        .extend(parse_task_list(node.get("handlers"), &ctx)?);
    let imported = std::mem::take(&mut *ctx.handlers.lock().unwrap_or_else(|p| p.into_inner()));
    play.handlers.extend(imported);
    play.roles_seen = ctx
        .seen_roles
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    Ok(play)
}

/// Every key of a play must be a play keyword (`task:` suggests `tasks:`).
fn check_play_keywords(map: &[(String, Node)]) -> Result<(), ParseError> {
    for (k, v) in map {
        if !PLAY_KEYWORDS.contains(&k.as_str()) {
            let hint = if k == "task" || k == "handler" {
                format!(" Did you mean '{k}s'?")
            } else {
                did_you_mean(k, PLAY_KEYWORDS.iter().copied())
            };
            return Err(err(
                v.where_(),
                format!("unknown play keyword '{k}'.{hint}"),
            ));
        }
    }
    Ok(())
}

/// `hosts:` as one pattern (a list is joined with `:`).
fn play_hosts(node: &Node) -> Result<String, ParseError> {
    match node.get("hosts") {
        Some(h) => Ok(match h.to_value() {
            Value::String(s) => s,
            Value::Array(items) => items
                .iter()
                .map(crate::value::to_display)
                .collect::<Vec<_>>()
                .join(":"),
            other => crate::value::to_display(&other),
        }),
        None => Err(err(&node.pos, "play has no 'hosts'")),
    }
}

fn play_strategy(node: &Node) -> Result<Strategy, ParseError> {
    match node.get("strategy").and_then(Node::as_str) {
        None | Some("linear") => Ok(Strategy::Linear),
        Some("free") => Ok(Strategy::Free),
        Some(other) => Err(err(
            &node
                .get("strategy")
                .map(|n| n.pos.clone())
                .unwrap_or_default(),
            format!("unknown strategy '{other}' (known: linear, free)"),
        )),
    }
}

/// Where a task list lives: relative paths resolve against `dir`, role context is attached.
#[derive(Clone)]
struct FileCtx {
    dir: PathBuf,
    play_dir: PathBuf,
    search: Arc<RoleSearch>,
    /// Roles (directory and parameters) the play already has from `roles:` and dependencies:
    /// they run once unless their meta says `allow_duplicates`.
    seen_roles: Arc<Mutex<HashSet<String>>>,
    /// Handlers of statically imported roles, for the play.
    handlers: Arc<Mutex<Vec<Task>>>,
    role: Option<Arc<RoleCtx>>,
}

/// A list of tasks (or handlers); null or absent is empty.
fn parse_task_list(node: Option<&Node>, ctx: &FileCtx) -> Result<Vec<Task>, ParseError> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    if node.is_null() {
        return Ok(Vec::new());
    }
    let items = node.as_seq().ok_or_else(|| {
        err(
            &node.pos,
            format!("expected a list of tasks, found {}", node.type_name()),
        )
    })?;
    items.iter().map(|t| task::parse_task(t, ctx)).collect()
}

/// `import_tasks: x.yml` inside a role resolves to the role's tasks/ dir first.
/// A tasks file named by an include or import: in the role's `tasks/`, beside the including
/// file, then (as Ansible also looks) relative to the playbook's directory.
fn resolve_tasks_path(dir: &Path, play_dir: &Path, role: Option<&RoleCtx>, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    if let Some(r) = role {
        let c = r.dir.join("tasks").join(name);
        if c.exists() {
            return c;
        }
    }
    let beside = dir.join(name);
    let from_play = play_dir.join(name);
    if !beside.exists() && from_play.exists() {
        return from_play;
    }
    beside
}

/// Load a tasks file (for `include_tasks` at run time). `role` attaches role context.
pub fn load_tasks_file(
    path: &Path,
    play_dir: &Path,
    search: &Arc<RoleSearch>,
    role: Option<Arc<RoleCtx>>,
) -> Result<Vec<Task>, ParseError> {
    load_tasks_file_ctx(
        path,
        &FileCtx {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            play_dir: play_dir.to_path_buf(),
            search: Arc::clone(search),
            seen_roles: Default::default(),
            handlers: Default::default(),
            role,
        },
    )
}

/// Resolve an `include_tasks` file name as seen from a task (role tasks/ dir first).
pub fn resolve_include(play_dir: &Path, task: &Task, name: &str) -> PathBuf {
    let base = task
        .pos
        .file
        .as_ref()
        .rsplit_once('/')
        .map(|(d, _)| PathBuf::from(d))
        .unwrap_or_else(|| play_dir.to_path_buf());
    resolve_tasks_path(&base, play_dir, task.role.as_deref(), name)
}

fn load_tasks_file_ctx(path: &Path, ctx: &FileCtx) -> Result<Vec<Task>, ParseError> {
    if !path.exists() {
        return Err(err(
            &file_pos(path),
            format!("tasks file {} does not exist", path.display()),
        ));
    }
    match load(path)? {
        None => Ok(Vec::new()),
        Some(n) => parse_task_list(Some(&n), ctx),
    }
}

/// Load a vars file (play `vars_files`, role defaults/vars, `include_vars`).
pub fn load_vars_file(path: &Path) -> Result<Vars, ParseError> {
    if !path.exists() {
        return Err(err(
            &file_pos(path),
            format!("vars file {} does not exist", path.display()),
        ));
    }
    match load(path)? {
        None => Ok(Vars::new()),
        Some(n) => match n.to_value() {
            Value::Object(m) => Ok(m),
            Value::Null => Ok(Vars::new()),
            _ => Err(err(
                &n.pos,
                format!("vars file must be a mapping, found {}", n.type_name()),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::model::Action;
    use std::fs;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn imports_fall_back_to_the_playbook_directory() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "tasks/main.yml",
            "- import_tasks: tasks/helper.yml\n",
        );
        write(d.path(), "tasks/helper.yml", "- debug: msg=helped\n");
        let p = write(
            d.path(),
            "site.yml",
            "- hosts: all\n  tasks:\n    - import_tasks: tasks/main.yml\n",
        );
        let pb = load_playbook(&p).unwrap_or_else(|e| panic!("{e}"));
        let Action::Block { block, .. } = &pb.plays[0].tasks[0].action else {
            panic!("not a block");
        };
        let Action::Block { block: inner, .. } = &block[0].action else {
            panic!("not a block");
        };
        assert_eq!(inner[0].module_name(), Some("debug"));
    }

    #[test]
    fn parses_the_classic_example() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "site.yml",
            "- hosts: all\n  sudo: yes\n  tasks:\n  - name: ensure apache is at the latest version\n    apt: update_cache=yes pkg=apache2 state=latest\n  - name: drop a file\n    copy: src=it_ran.txt dest=/tmp/ mode=0777\n",
        );
        let pb = load_playbook(&p);
        // Without registered modules (registry may be empty in this build) apt may be unknown;
        // the structure is what we check here.
        if let Ok(pb) = pb {
            let play = &pb.plays[0];
            assert_eq!(play.hosts, "all");
            assert_eq!(play.become_.enabled, Some(Value::Bool(true)));
            assert_eq!(play.tasks.len(), 2);
            assert_eq!(play.tasks[0].pos.line, 4);
        }
    }

    #[test]
    fn unknown_play_keyword_is_named_with_position() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "p.yml",
            "- hosts: all\n  task:\n    - debug: msg=hi\n",
        );
        let e = load_playbook(&p).unwrap_err();
        assert!(e.to_string().contains("p.yml:2:"), "{e}");
        assert!(e.msg.contains("unknown play keyword 'task'"), "{e}");
        assert!(e.msg.contains("Did you mean 'tasks'?"), "{e}");
    }

    #[test]
    fn unknown_module_suggests_nearest() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "p.yml",
            "- hosts: all\n  tasks:\n    - name: say\n      debg: msg=hi\n",
        );
        let e = load_playbook(&p).unwrap_err();
        assert!(
            e.msg.contains("couldn't resolve module/action 'debg'"),
            "{e}"
        );
        assert!(e.msg.contains("Did you mean 'debug'?"), "{e}");
        assert!(e.msg.contains("task 'say'"), "{e}");
        assert_eq!(e.pos.line, 4);
    }

    #[test]
    fn unknown_parameter_suggests_nearest() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "p.yml",
            "- hosts: all\n  tasks:\n    - name: say\n      debug:\n        mgs: hi\n",
        );
        let e = load_playbook(&p).unwrap_err();
        assert!(
            e.msg
                .contains("unsupported parameter 'mgs' for module debug"),
            "{e}"
        );
        assert!(e.msg.contains("Did you mean 'msg'?"), "{e}");
    }

    #[test]
    fn roles_imports_and_blocks() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "roles/web/tasks/main.yml",
            "- debug: msg={{ greeting }}\n- import_tasks: extra.yml\n",
        );
        write(
            d.path(),
            "roles/web/tasks/extra.yml",
            "- debug: msg=extra\n",
        );
        write(d.path(), "roles/web/defaults/main.yml", "greeting: hello\n");
        write(
            d.path(),
            "roles/web/handlers/main.yml",
            "- name: restart web\n  debug: msg=restart\n",
        );
        write(d.path(), "more.yml", "- set_fact: a=1\n");
        write(d.path(), "other.yml", "- hosts: web\n  tasks: []\n");
        let p = write(
            d.path(),
            "site.yml",
            "- hosts: all\n  roles:\n    - role: web\n      greeting: hi\n  tasks:\n    - block:\n        - import_tasks: more.yml\n      rescue:\n        - debug: msg=r\n    - include_tasks: '{{ f }}.yml'\n- import_playbook: other.yml\n",
        );
        let pb = load_playbook(&p).unwrap();
        assert_eq!(pb.plays.len(), 2);
        let play = &pb.plays[0];
        assert_eq!(play.handlers.len(), 1);
        assert_eq!(play.tasks.len(), 4);
        let role = play.tasks[0].role.as_ref().unwrap();
        assert_eq!(role.name, "web");
        assert_eq!(
            role.defaults.get("greeting"),
            Some(&Value::String("hello".into()))
        );
        assert_eq!(
            role.params.get("greeting"),
            Some(&Value::String("hi".into()))
        );
        assert_eq!(play.tasks[0].display_name(), "web : debug");
        assert!(matches!(play.tasks[1].action, Action::Block { .. }));
        assert!(matches!(play.tasks[3].action, Action::IncludeTasks { .. }));
        assert_eq!(pb.plays[1].hosts, "web");
    }

    #[test]
    fn roles_come_from_roles_path_galaxy_names_collections_and_beside_their_dependents() {
        let d = tempfile::tempdir().unwrap();
        let shared = d.path().join("shared-roles");
        let colls = d.path().join("colls");
        let play_dir = d.path().join("repo");
        // A Galaxy-named role in roles_path that depends on a sibling there.
        write(
            &shared,
            "geerlingguy.java/tasks/main.yml",
            "- debug: msg=java\n",
        );
        write(
            &shared,
            "geerlingguy.java/meta/main.yml",
            "dependencies: [common]\n",
        );
        write(&shared, "common/tasks/main.yml", "- debug: msg=common\n");
        // A collection role in a collections root, another beside the playbook.
        write(
            &colls,
            "ansible_collections/acme/web/roles/nginx/tasks/main.yml",
            "- debug: msg=nginx\n",
        );
        write(
            &play_dir,
            "collections/ansible_collections/acme/db/roles/pg/tasks/main.yml",
            "- debug: msg=pg\n",
        );
        let p = write(
            &play_dir,
            "site.yml",
            "- hosts: all\n  roles: [geerlingguy.java, acme.web.nginx]\n  tasks:\n    - import_role: {name: acme.db.pg}\n",
        );
        let search = RoleSearch {
            roles_path: vec![shared.clone()],
            collections_path: vec![colls.clone()],
            extra_vars: Default::default(),
        };
        let pb = load_playbook_with(&p, &search).unwrap();
        let msgs = debug_msgs(&pb);
        assert_eq!(msgs, ["common", "java", "nginx", "pg"]);
        // Without the search paths, the error lists every place it looked.
        let e = load_playbook(&p).unwrap_err();
        assert_eq!(
            e.msg,
            format!(
                "the role 'geerlingguy.java' was not found in {0}/roles:{0}",
                play_dir.display()
            )
        );
        assert_eq!(e.pos.line, 2);
    }

    #[test]
    fn shared_dependencies_run_once_unless_they_allow_duplicates() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        write(dir, "roles/common/tasks/main.yml", "- debug: msg=common\n");
        write(dir, "roles/dup/tasks/main.yml", "- debug: msg=dup\n");
        write(dir, "roles/dup/meta/main.yml", "allow_duplicates: true\n");
        for r in ["a", "b"] {
            write(
                dir,
                &format!("roles/{r}/tasks/main.yml"),
                &format!("- debug: msg={r}\n"),
            );
            write(
                dir,
                &format!("roles/{r}/meta/main.yml"),
                "dependencies: [common, dup]\n",
            );
        }
        let p = write(
            dir,
            "site.yml",
            "- hosts: all\n  roles: [a, b, {role: common, x: 1}]\n  tasks:\n    - import_role: {name: missing_vars, vars_from: nope}\n      when: false\n",
        );
        write(dir, "roles/missing_vars/tasks/main.yml", "- debug: msg=m\n");
        let e = load_playbook(&p).unwrap_err();
        assert!(
            e.msg.contains("role 'missing_vars' has no vars/nope.yml"),
            "{e}"
        );
        std::fs::write(&p, "- hosts: all\n  roles: [a, b, {role: common, x: 1}]\n").unwrap();
        let pb = load_playbook(&p).unwrap();
        let msgs = debug_msgs(&pb);
        // common once (and again with other parameters), dup each time.
        assert_eq!(msgs, ["common", "dup", "a", "dup", "b", "common"]);
    }

    #[test]
    fn templated_role_names_use_play_vars_extra_vars_and_playbook_dir() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        write(dir, "myroles/web/tasks/main.yml", "- debug: msg=web\n");
        write(dir, "roles/db/tasks/main.yml", "- debug: msg=db\n");
        let p = write(
            dir,
            "pb/site.yml",
            "- hosts: all\n  vars: {which: db}\n  roles:\n    - '{{ playbook_dir }}/../myroles/web'\n    - role: '{{ which }}'\n    - '{{ extra_role }}'\n",
        );
        std::fs::create_dir_all(dir.join("pb/roles")).unwrap();
        std::os::unix::fs::symlink(dir.join("roles/db"), dir.join("pb/roles/db")).unwrap();
        let mut search = RoleSearch::default();
        write(dir, "pb/roles/cache/tasks/main.yml", "- debug: msg=cache\n");
        search
            .extra_vars
            .insert("extra_role".into(), Value::String("cache".into()));
        let pb = load_playbook_with(&p, &search).unwrap();
        let msgs = debug_msgs(&pb);
        assert_eq!(msgs, ["web", "db", "cache"]);
    }

    /// The `msg` of every (debug) task of the first play, blocks walked, in order.
    fn debug_msgs(pb: &Playbook) -> Vec<String> {
        flatten(&pb.plays[0].tasks)
            .iter()
            .map(|t| match &t.action {
                Action::Module { args, .. } => crate::value::to_display(&args["msg"]),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Every task under blocks, in order.
    fn flatten(tasks: &[Task]) -> Vec<&Task> {
        let mut out = Vec::new();
        for t in tasks {
            match &t.action {
                Action::Block { block, .. } => out.extend(flatten(block)),
                _ => out.push(t),
            }
        }
        out
    }

    #[test]
    fn missing_role_names_it() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "site.yml", "- hosts: all\n  roles: [nope]\n");
        let e = load_playbook(&p).unwrap_err();
        assert!(
            e.msg.starts_with("the role 'nope' was not found in "),
            "{e}"
        );
        assert!(
            e.msg.contains(&format!("{}/roles", d.path().display())),
            "{e}"
        );
        assert_eq!(e.pos.line, 2);
    }
}

/// Builders for other modules' tests.
#[cfg(test)]
pub mod tests_support {
    use super::*;
    use crate::playbook::model::BecomeSpec;

    pub fn empty_play() -> Play {
        Play {
            name: "test".into(),
            hosts: "all".into(),
            pos: Pos::default(),
            dir: PathBuf::from("."),
            search: Default::default(),
            vars: Vars::new(),
            vars_files: Vec::new(),
            gather_facts: Value::Bool(false),
            become_: BecomeSpec::default(),
            remote_user: None,
            environment: None,
            serial: None,
            strategy: Strategy::Linear,
            tags: Vec::new(),
            check_mode: None,
            ignore_errors: None,
            pre_tasks: Vec::new(),
            tasks: Vec::new(),
            post_tasks: Vec::new(),
            handlers: Vec::new(),
            any_errors_fatal: false,
            connection: None,
            port: None,
            module_defaults: None,
            roles_seen: Default::default(),
        }
    }
}
