//! Plays, tasks, blocks and roles as parsed from YAML, with source positions.
//!
//! Values inside (module arguments, `when`, `loop`, vars) are kept untemplated: the runner templates
//! them per host at execution time.

use std::path::PathBuf;
use std::sync::Arc;

use super::yaml::Pos;
use crate::value::{Value, Vars};

/// A parsed playbook: plays in order (`import_playbook` already expanded).
#[derive(Debug, Clone)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

/// `become`, `become_user`, `become_method` at any level; `None` = inherit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BecomeSpec {
    pub enabled: Option<Value>,
    pub user: Option<Value>,
    pub method: Option<Value>,
}

impl BecomeSpec {
    /// Fill unset fields from `parent`.
    pub fn inherit(&self, parent: &BecomeSpec) -> BecomeSpec {
        BecomeSpec {
            enabled: self.enabled.clone().or_else(|| parent.enabled.clone()),
            user: self.user.clone().or_else(|| parent.user.clone()),
            method: self.method.clone().or_else(|| parent.method.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    #[default]
    Linear,
    Free,
}

#[derive(Debug, Clone)]
pub struct Play {
    pub name: String,
    pub hosts: String,
    pub pos: Pos,
    /// Directory of the file that defines the play (`playbook_dir`, relative lookups).
    pub dir: PathBuf,
    /// Where roles are searched besides `dir` (roles_path, collections).
    pub search: std::sync::Arc<RoleSearch>,
    pub vars: Vars,
    /// Untemplated paths, resolved relative to `dir`.
    pub vars_files: Vec<Value>,
    pub gather_facts: Value,
    pub become_: BecomeSpec,
    pub remote_user: Option<Value>,
    pub environment: Option<Value>,
    pub serial: Option<Value>,
    pub strategy: Strategy,
    pub tags: Vec<String>,
    pub check_mode: Option<Value>,
    pub ignore_errors: Option<Value>,
    pub pre_tasks: Vec<Task>,
    /// Role tasks (in role order) followed by the play's `tasks`.
    pub tasks: Vec<Task>,
    pub post_tasks: Vec<Task>,
    /// Play handlers and role handlers, in definition order.
    pub handlers: Vec<Task>,
    /// `any_errors_fatal`: one host failing stops all hosts.
    pub any_errors_fatal: bool,
    /// `connection:` (e.g. `local`), over each host's `ansible_connection`.
    pub connection: Option<Value>,
    /// `port:`, for hosts without `ansible_port`.
    pub port: Option<Value>,
    /// `module_defaults:` (module name → default arguments).
    pub module_defaults: Option<Value>,
    /// The roles (directory and parameters) the play's `roles:` and their dependencies brought:
    /// a role included at run time does not run these dependencies again.
    pub roles_seen: std::collections::HashSet<String>,
}

/// Where roles are looked for besides the playbook's directory: `roles_path` from ansible.cfg
/// or `ANSIBLE_ROLES_PATH` (Galaxy roles such as `geerlingguy.java` live there), and collection
/// roots for `namespace.collection.role`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleSearch {
    pub roles_path: Vec<PathBuf>,
    pub collections_path: Vec<PathBuf>,
    /// Extra vars (`-e`): a templated role name in `roles:` is rendered with them, the play's
    /// vars and `playbook_dir`, as Ansible does when it loads the play.
    pub extra_vars: Vars,
}

/// Which files of a role to use (`tasks_from`, `vars_from`, `defaults_from`,
/// `handlers_from`); `main` where unset.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoleFiles<T> {
    pub tasks: Option<T>,
    pub vars: Option<T>,
    pub defaults: Option<T>,
    pub handlers: Option<T>,
}

impl<T> RoleFiles<T> {
    /// Each file name through `f`.
    pub fn map<U>(&self, f: impl Fn(&T) -> Option<U>) -> RoleFiles<U> {
        RoleFiles {
            tasks: self.tasks.as_ref().and_then(&f),
            vars: self.vars.as_ref().and_then(&f),
            defaults: self.defaults.as_ref().and_then(&f),
            handlers: self.handlers.as_ref().and_then(&f),
        }
    }
}

/// The role a task came from: its directory (for files/ and templates/) and its variables.
#[derive(Debug, Clone, Default)]
pub struct RoleCtx {
    pub name: String,
    pub dir: PathBuf,
    /// `defaults/main.yml`: lowest precedence.
    pub defaults: Vars,
    /// `vars/main.yml`: above play vars.
    pub vars: Vars,
    /// Role parameters from the play (`- role: x  foo: 1`): above role vars.
    pub params: Vars,
}

/// What a task does.
#[derive(Debug, Clone)]
pub enum Action {
    /// A module call. `args` are normalised (free form in `_raw_params`) but untemplated.
    Module { name: String, args: Value },
    Block {
        block: Vec<Task>,
        rescue: Vec<Task>,
        always: Vec<Task>,
    },
    /// Dynamic `include_tasks`: file name templated at run time. `apply`: the keywords its
    /// tasks get (a block around them, whose own action is filled at run time).
    IncludeTasks {
        file: Value,
        apply: Option<Box<Task>>,
    },
    /// Dynamic `include_role` (with `apply` as for `include_tasks`).
    IncludeRole {
        name: Value,
        from: Box<RoleFiles<Value>>,
        apply: Option<Box<Task>>,
    },
}

impl Action {
    /// A block that only groups `tasks`: what static imports and role wrappers expand to.
    pub fn block_of(tasks: Vec<Task>) -> Action {
        Action::Block {
            block: tasks,
            rescue: Vec::new(),
            always: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct LoopSpec {
    /// `loop`/`with_items`/`with_list` expression or literal list.
    pub items: Value,
    /// `with_dict`: items become `{key, value}`.
    pub dict: bool,
    /// `with_items` flattens one level.
    pub flatten: bool,
    /// `with_first_found`: first existing local file.
    pub first_found: bool,
    /// `with_nested`, `with_together`, `with_indexed_items`, `with_sequence`,
    /// `with_subelements`, `with_fileglob`: the lookup that builds the items.
    pub lookup: Option<String>,
    pub loop_var: String,
    pub label: Option<Value>,
    pub index_var: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: Option<String>,
    pub pos: Pos,
    pub action: Action,
    pub when: Vec<Value>,
    pub loop_: Option<LoopSpec>,
    pub register: Option<String>,
    pub notify: Vec<String>,
    /// Handler topics (`listen:`), handlers only.
    pub listen: Vec<String>,
    pub changed_when: Option<Value>,
    pub failed_when: Option<Value>,
    pub ignore_errors: Option<Value>,
    pub ignore_unreachable: Option<Value>,
    pub tags: Vec<String>,
    pub vars: Vars,
    pub environment: Option<Value>,
    pub no_log: Option<Value>,
    pub check_mode: Option<Value>,
    pub diff: Option<Value>,
    pub become_: BecomeSpec,
    pub remote_user: Option<Value>,
    pub until: Option<Value>,
    pub retries: Option<Value>,
    pub delay: Option<Value>,
    /// Seconds the whole task may take (`timeout:`).
    pub timeout: Option<Value>,
    pub run_once: Option<Value>,
    /// `delegate_to` (`local_action` sets it to `localhost`).
    pub delegate_to: Option<Value>,
    /// `delegate_facts`: facts the task gathers or sets go to the delegated host.
    pub delegate_facts: Option<Value>,
    /// `async` (seconds) and `poll`.
    pub async_: Option<Value>,
    pub poll: Option<Value>,
    /// `connection:` on a task or block (`local` runs it on the controller).
    pub connection: Option<Value>,
    pub module_defaults: Option<Value>,
    /// At most this many hosts run the task at once.
    pub throttle: Option<Value>,
    pub any_errors_fatal: Option<Value>,
    pub role: Option<Arc<RoleCtx>>,
    /// Why the task's module cannot run here (one Ansible has and knockplay lacks, or a Python
    /// module of the repository's `library/`): the task fails with this when it would run.
    pub unsupported: Option<String>,
}

impl Task {
    /// A task that does `action` with every keyword unset.
    pub fn new(name: Option<String>, pos: Pos, action: Action) -> Task {
        Task {
            name,
            pos,
            action,
            when: Vec::new(),
            loop_: None,
            register: None,
            notify: Vec::new(),
            listen: Vec::new(),
            changed_when: None,
            failed_when: None,
            ignore_errors: None,
            ignore_unreachable: None,
            tags: Vec::new(),
            vars: Vars::new(),
            environment: None,
            no_log: None,
            check_mode: None,
            diff: None,
            become_: BecomeSpec::default(),
            remote_user: None,
            until: None,
            retries: None,
            delay: None,
            timeout: None,
            run_once: None,
            delegate_to: None,
            async_: None,
            poll: None,
            connection: None,
            module_defaults: None,
            throttle: None,
            any_errors_fatal: None,
            role: None,
            unsupported: None,
            delegate_facts: None,
        }
    }

    /// What the task is called in output: its name, or `module` / `role : name` like Ansible.
    pub fn display_name(&self) -> String {
        let base = match (&self.name, &self.action) {
            (Some(n), _) => n.clone(),
            (None, Action::Module { name, .. }) => name.clone(),
            (None, Action::Block { .. }) => "block".into(),
            (None, Action::IncludeTasks { .. }) => "include_tasks".into(),
            (None, Action::IncludeRole { .. }) => "include_role".into(),
        };
        match &self.role {
            Some(r) => format!("{} : {}", r.name, base),
            None => base,
        }
    }

    pub fn module_name(&self) -> Option<&str> {
        match &self.action {
            Action::Module { name, .. } => Some(name),
            _ => None,
        }
    }
}
