//! Inventory: hosts, groups, host/group vars, ranges, host patterns.
//!
//! Sources (`-i`, several merge in order): a comma-separated host list (`'10.0.0.5,'`,
//! `'a,b:2222'`), an INI file, a YAML file (`all: {hosts, children, vars}`), or a directory of
//! such files. `group_vars/` and `host_vars/` beside an inventory file (or inside an inventory
//! directory) are loaded with it; [`Inventory::load_vars_dir`] loads those beside the playbook.
//!
//! # Variable precedence (lowest first), as in Ansible
//!
//! 1. group vars from inventory files (`[g:vars]`, YAML `vars:`), groups ordered by depth
//!    (`all` first, then parents before children), then `ansible_group_priority`, then name;
//! 2. `group_vars/all` beside the inventory;
//! 3. `group_vars/all` beside the playbook;
//! 4. `group_vars/<group>` beside the inventory, groups in the order of (1);
//! 5. `group_vars/<group>` beside the playbook;
//! 6. host vars from inventory files (host line `k=v`, YAML host mapping, `add_host` vars);
//! 7. `host_vars/<host>` beside the inventory;
//! 8. `host_vars/<host>` beside the playbook.
//!
//! Later definitions of the same variable at the same level win (hash_behaviour=replace).
//! Connection variables are plain variables; legacy `ansible_ssh_host`/`ansible_ssh_user`/
//! `ansible_ssh_port` are copied to `ansible_host`/`ansible_user`/`ansible_port` when those are
//! not set. [`ConnectionVars`] reads them.

mod connection;
mod hostrange;
mod ini;
pub mod literal;
mod pattern;
mod vars_dir;
mod yaml_source;

use crate::value::{Value, Vars};
use indexmap::{IndexMap, IndexSet};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use connection::ConnectionVars;
pub use literal::parse_value as parse_ini_value;
pub use pattern::glob_to_regex;
pub use vars_dir::VarsDirKind;

/// An inventory problem, naming the file and line where there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InventoryError {
    /// Bad content at a known place.
    #[error("{path}:{line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
    /// A file or directory could not be read, or is wrong as a whole.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// `-i` names nothing that exists and is not a host list.
    #[error("inventory source not found: '{0}' (expected a file, a directory, or a comma-separated host list such as 'host1,')")]
    NotFound(String),
    /// A host pattern (`hosts:`, `--limit`) is malformed.
    #[error("invalid host pattern '{pattern}': {message}")]
    Pattern { pattern: String, message: String },
}

#[derive(Debug, Clone, Default)]
struct HostEntry {
    vars: Vars,
    /// Groups the host was put in directly (never `all`/`ungrouped`).
    groups: IndexSet<String>,
    /// The inventory file that first defined the host (`inventory_file`).
    source: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct GroupEntry {
    vars: Vars,
    children: IndexSet<String>,
    parents: IndexSet<String>,
    /// Direct member hosts, in the order they were added.
    hosts: IndexSet<String>,
}

/// Hosts and groups with their variables.
#[derive(Debug, Clone)]
pub struct Inventory {
    hosts: IndexMap<String, HostEntry>,
    groups: IndexMap<String, GroupEntry>,
    var_dirs: Vec<vars_dir::VarsDir>,
    /// Host listings (and host variables they set) added so far; see [`MAX_LISTED_ENTRIES`].
    listed: usize,
}

/// Most host listings plus the host variables they set that one inventory may hold. A range
/// stands for up to 100000 names and lines multiply that: without a bound a few kilobytes of
/// inventory can ask for gigabytes.
pub const MAX_LISTED_ENTRIES: usize = 1_000_000;

impl Default for Inventory {
    fn default() -> Self {
        Self::new()
    }
}

const ALL: &str = "all";
const UNGROUPED: &str = "ungrouped";

impl Inventory {
    /// An empty inventory (only the `all` and `ungrouped` groups).
    pub fn new() -> Self {
        let mut groups = IndexMap::new();
        groups.insert(ALL.to_string(), GroupEntry::default());
        groups.insert(UNGROUPED.to_string(), GroupEntry::default());
        Inventory {
            hosts: IndexMap::new(),
            groups,
            var_dirs: Vec::new(),
            listed: 0,
        }
    }

    /// Build from `-i` sources, merged in order.
    pub fn from_sources<S: AsRef<str>>(sources: &[S]) -> Result<Self, InventoryError> {
        let mut inv = Inventory::new();
        for s in sources {
            inv.add_source(s.as_ref())?;
        }
        Ok(inv)
    }

    /// Add one `-i` source: an existing file or directory, else a comma-separated host list.
    pub fn add_source(&mut self, source: &str) -> Result<(), InventoryError> {
        let path = Path::new(source);
        if path.is_dir() {
            return self.add_dir(path);
        }
        if path.is_file() {
            self.add_file(path)?;
            let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
            return self.load_vars_dir(dir.unwrap_or(Path::new(".")), VarsDirKind::Inventory);
        }
        if source.contains(',') {
            return self.add_host_list(source);
        }
        Err(InventoryError::NotFound(source.to_string()))
    }

    /// `'a,b,c'` / `'10.0.0.5,'` / `'web[1:3],db:2222'`: hosts in `ungrouped`.
    pub fn add_host_list(&mut self, list: &str) -> Result<(), InventoryError> {
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let hosts = hostrange::expand(item).map_err(|message| InventoryError::Pattern {
                pattern: item.to_string(),
                message,
            })?;
            for (name, port) in hosts {
                self.ensure_host(&name);
                if let Some(p) = port {
                    self.set_host_var(&name, "ansible_port", Value::from(p));
                }
            }
        }
        Ok(())
    }

    /// An inventory file: YAML by extension (`.yml`, `.yaml`, `.json`) or by content (a
    /// mapping of groups), INI otherwise.
    pub fn add_file(&mut self, path: &Path) -> Result<(), InventoryError> {
        let name = path.display().to_string();
        let text = crate::playbook::yaml::read_text(path).map_err(|e| InventoryError::File {
            path: name.clone(),
            message: format!("cannot read inventory: {}", e.msg),
        })?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "yml" | "yaml" | "json") || yaml_source::looks_like_yaml(&text) {
            self.add_yaml_str(&text, &name)
        } else {
            self.add_ini_str(&text, &name)
        }
    }

    /// An inventory directory: every inventory file in it (sorted; `group_vars`, `host_vars`,
    /// hidden and backup files skipped), then its `group_vars/`/`host_vars/`.
    pub fn add_dir(&mut self, dir: &Path) -> Result<(), InventoryError> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| InventoryError::File {
                path: dir.display().to_string(),
                message: format!("cannot read inventory directory: {e}"),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            let fname = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let skip = fname.starts_with('.')
                || fname.ends_with('~')
                || [".orig", ".bak", ".retry", ".pyc", ".cfg", ".md", ".swp"]
                    .iter()
                    .any(|s| fname.ends_with(s))
                || fname == "group_vars"
                || fname == "host_vars";
            if skip {
                continue;
            }
            if p.is_dir() {
                self.add_dir(&p)?;
            } else if p.is_file() {
                self.add_file(&p)?;
            }
        }
        self.load_vars_dir(dir, VarsDirKind::Inventory)
    }

    /// Parse INI inventory text (`path` names it in errors).
    pub fn add_ini_str(&mut self, text: &str, path: &str) -> Result<(), InventoryError> {
        ini::parse(self, text, path)
    }

    /// Parse YAML inventory text (`path` names it in errors).
    pub fn add_yaml_str(&mut self, text: &str, path: &str) -> Result<(), InventoryError> {
        yaml_source::parse(self, text, path)
    }

    /// Load `group_vars/` and `host_vars/` found in `dir` (missing ones are fine). Call with
    /// [`VarsDirKind::Playbook`] for the playbook's directory. A directory already loaded is
    /// skipped.
    pub fn load_vars_dir(&mut self, dir: &Path, kind: VarsDirKind) -> Result<(), InventoryError> {
        let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        if self.var_dirs.iter().any(|d| d.dir == canon) {
            return Ok(());
        }
        let loaded = vars_dir::load(&canon, kind)?;
        self.var_dirs.push(loaded);
        Ok(())
    }

    /// Add (or update) a host at runtime, e.g. the host that knocked: `vars` are merged over its
    /// inventory vars, `groups` are created as needed (children of `all`).
    pub fn add_host(&mut self, name: &str, vars: &Vars, groups: &[String]) {
        self.ensure_host(name);
        for (k, v) in vars {
            self.set_host_var(name, k, v.clone());
        }
        for g in groups {
            self.add_host_to_group(name, g);
        }
    }

    // ---- building blocks for the source parsers ----

    pub(crate) fn ensure_host(&mut self, name: &str) {
        if !self.hosts.contains_key(name) {
            self.hosts.insert(name.to_string(), HostEntry::default());
        }
    }

    /// Remember the file that first defined `host` (for `inventory_file`/`inventory_dir`).
    pub(crate) fn note_source(&mut self, host: &str, path: &str) {
        if let Some(h) = self.hosts.get_mut(host) {
            if h.source.is_none() && !path.is_empty() {
                h.source = Some(path.to_string());
            }
        }
    }

    pub(crate) fn ensure_group(&mut self, name: &str) {
        if !self.groups.contains_key(name) {
            self.groups.insert(name.to_string(), GroupEntry::default());
        }
    }

    pub(crate) fn has_group(&self, name: &str) -> bool {
        self.groups.contains_key(name)
    }

    pub(crate) fn add_host_to_group(&mut self, host: &str, group: &str) {
        self.ensure_host(host);
        if group == ALL || group == UNGROUPED {
            return;
        }
        self.ensure_group(group);
        if let Some(h) = self.hosts.get_mut(host) {
            h.groups.insert(group.to_string());
        }
        if let Some(g) = self.groups.get_mut(group) {
            g.hosts.insert(host.to_string());
        }
    }

    /// Make `child` a child group of `parent`; refuses cycles.
    pub(crate) fn add_child(&mut self, parent: &str, child: &str) -> Result<(), String> {
        if child == ALL {
            return Err("'all' cannot be a child group".into());
        }
        if parent == child || self.ancestors_of_group(parent).contains(child) {
            return Err(format!(
                "group '{child}' cannot be a child of '{parent}': that would make a cycle"
            ));
        }
        self.ensure_group(parent);
        self.ensure_group(child);
        if parent != ALL {
            if let Some(g) = self.groups.get_mut(child) {
                g.parents.insert(parent.to_string());
            }
        }
        if let Some(g) = self.groups.get_mut(parent) {
            g.children.insert(child.to_string());
        }
        Ok(())
    }

    /// Put hosts (expanded from one pattern, with the port it named) in `group` with the same
    /// variables; `source` is the file that lists them.
    pub(crate) fn add_listed_hosts(
        &mut self,
        group: &str,
        hosts: Vec<(String, Option<u16>)>,
        vars: &[(String, Value)],
        source: &str,
    ) -> Result<(), String> {
        let entries = hosts.len().saturating_mul(vars.len() + 1);
        self.listed = self.listed.saturating_add(entries);
        if self.listed > MAX_LISTED_ENTRIES {
            return Err(format!(
                "the inventory lists more than {MAX_LISTED_ENTRIES} hosts and host variables \
                 (each host of a range and each variable it sets counts once)"
            ));
        }
        for (host, port) in hosts {
            self.add_host_to_group(&host, group);
            self.note_source(&host, source);
            if let Some(p) = port {
                self.set_host_var(&host, "ansible_port", p.into());
            }
            for (k, v) in vars {
                self.set_host_var(&host, k, v.clone());
            }
        }
        Ok(())
    }

    pub(crate) fn set_host_var(&mut self, host: &str, key: &str, value: Value) {
        self.ensure_host(host);
        if let Some(h) = self.hosts.get_mut(host) {
            h.vars.insert(key.to_string(), value);
        }
    }

    pub(crate) fn set_group_var(&mut self, group: &str, key: &str, value: Value) {
        self.ensure_group(group);
        if let Some(g) = self.groups.get_mut(group) {
            g.vars.insert(key.to_string(), value);
        }
    }

    // ---- queries ----

    /// All host names in inventory order (see [`group_hosts`](Self::group_hosts)).
    pub fn hosts(&self) -> Vec<String> {
        self.group_hosts(ALL)
    }

    pub fn contains_host(&self, name: &str) -> bool {
        self.hosts.contains_key(name)
    }

    /// All group names in definition order (`all` and `ungrouped` first).
    pub fn group_list(&self) -> Vec<String> {
        self.groups.keys().cloned().collect()
    }

    /// Explicit parents of a group; groups without one are children of `all`.
    fn parents_of(&self, group: &str) -> Vec<String> {
        if group == ALL {
            return Vec::new();
        }
        match self.groups.get(group) {
            Some(g) if !g.parents.is_empty() => g.parents.iter().cloned().collect(),
            _ => vec![ALL.to_string()],
        }
    }

    fn ancestors_of_group(&self, group: &str) -> IndexSet<String> {
        let mut out = IndexSet::new();
        let mut stack = vec![group.to_string()];
        while let Some(g) = stack.pop() {
            for p in self.parents_of(&g) {
                if out.insert(p.clone()) {
                    stack.push(p);
                }
            }
        }
        out
    }

    /// Every group a host belongs to, `all` and ancestors included.
    fn host_groups(&self, host: &str) -> IndexSet<String> {
        let mut out = IndexSet::new();
        out.insert(ALL.to_string());
        let direct = self.hosts.get(host).map(|h| &h.groups);
        match direct {
            Some(d) if !d.is_empty() => {
                for g in d {
                    out.insert(g.clone());
                    out.extend(self.ancestors_of_group(g));
                }
            }
            _ => {
                out.insert(UNGROUPED.to_string());
            }
        }
        out
    }

    fn depth(&self, group: &str) -> usize {
        self.parents_of(group)
            .iter()
            .map(|p| self.depth(p) + 1)
            .max()
            .unwrap_or(0)
    }

    fn priority(&self, group: &str) -> i64 {
        self.groups
            .get(group)
            .and_then(|g| g.vars.get("ansible_group_priority"))
            .and_then(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            })
            .unwrap_or(1)
    }

    /// A host's groups in variable precedence order (lowest first).
    fn groups_by_precedence(&self, host: &str) -> Vec<String> {
        let mut groups: Vec<(usize, i64, String)> = self
            .host_groups(host)
            .into_iter()
            .map(|g| (self.depth(&g), self.priority(&g), g))
            .collect();
        groups.sort();
        groups.into_iter().map(|(_, _, g)| g).collect()
    }

    /// Group names of a host, sorted, without `all` (Ansible's `group_names`).
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .host_groups(host)
            .into_iter()
            .filter(|g| g != ALL)
            .collect();
        names.sort();
        names
    }

    /// Child groups in Ansible's order: for `all`, the groups without a parent in creation
    /// order (`ungrouped` first).
    fn children_of(&self, group: &str) -> Vec<String> {
        if group == ALL {
            return self
                .groups
                .iter()
                .filter(|(g, e)| g.as_str() != ALL && e.parents.is_empty())
                .map(|(g, _)| g.clone())
                .collect();
        }
        self.groups
            .get(group)
            .map(|g| g.children.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Direct members; `ungrouped` holds the hosts without a group, `all` none directly.
    fn direct_hosts(&self, group: &str) -> Vec<String> {
        match group {
            ALL => Vec::new(),
            UNGROUPED => self
                .hosts
                .iter()
                .filter(|(_, h)| h.groups.is_empty())
                .map(|(n, _)| n.clone())
                .collect(),
            g => self
                .groups
                .get(g)
                .map(|e| e.hosts.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    /// Hosts of a group and its descendants in Ansible's inventory order: the group's own hosts,
    /// then its children's (breadth first, children in definition order), each host once.
    /// For `all` that is: ungrouped hosts, then each top-level group's hosts.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        if !self.groups.contains_key(group) {
            return Vec::new();
        }
        let mut order: IndexSet<String> = IndexSet::new();
        order.insert(group.to_string());
        let mut i = 0;
        while i < order.len() {
            let g = order[i].clone();
            order.extend(self.children_of(&g));
            i += 1;
        }
        let mut hosts: IndexSet<String> = IndexSet::new();
        for g in &order {
            hosts.extend(self.direct_hosts(g));
        }
        hosts.into_iter().collect()
    }

    /// Group → hosts for every group (`all` and `ungrouped` included): the `groups` variable.
    pub fn groups(&self) -> IndexMap<String, Vec<String>> {
        self.groups
            .keys()
            .map(|g| (g.clone(), self.group_hosts(g)))
            .collect()
    }

    /// [`groups`](Self::groups) as a JSON value, ready to be a variable.
    pub fn groups_value(&self) -> Value {
        Value::Object(
            self.groups()
                .into_iter()
                .map(|(g, hs)| (g, Value::Array(hs.into_iter().map(Value::String).collect())))
                .collect(),
        )
    }

    /// The inventory's magic variables for a host: `inventory_hostname`,
    /// `inventory_hostname_short`, `group_names`, `groups`, and `inventory_file`/`inventory_dir`
    /// when the host came from a file.
    pub fn magic_vars(&self, host: &str) -> Vars {
        let mut v = Vars::new();
        v.insert("inventory_hostname".into(), Value::from(host));
        let short = host.split('.').next().unwrap_or(host);
        let short = if host.parse::<std::net::IpAddr>().is_ok() {
            host
        } else {
            short
        };
        v.insert("inventory_hostname_short".into(), Value::from(short));
        v.insert(
            "group_names".into(),
            Value::Array(
                self.group_names(host)
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ),
        );
        v.insert("groups".into(), self.groups_value());
        if let Some(src) = self.hosts.get(host).and_then(|h| h.source.as_deref()) {
            let p = Path::new(src);
            let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            v.insert(
                "inventory_file".into(),
                Value::from(abs.display().to_string()),
            );
            let dir = abs
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            v.insert("inventory_dir".into(), Value::from(dir));
        }
        v
    }

    /// A host's variables with the precedence documented on this module. Unknown hosts get
    /// the `all`/`ungrouped` group vars and any `host_vars/` file of that name.
    pub fn host_vars(&self, host: &str) -> Vars {
        let groups = self.groups_by_precedence(host);
        let mut out = Vars::new();
        let mut merge = |vars: &Vars| {
            for (k, v) in vars {
                out.insert(k.clone(), v.clone());
            }
        };
        for g in &groups {
            if let Some(e) = self.groups.get(g) {
                merge(&e.vars);
            }
        }
        let dirs = |kind: VarsDirKind| self.var_dirs.iter().filter(move |d| d.kind == kind);
        for kind in [VarsDirKind::Inventory, VarsDirKind::Playbook] {
            for d in dirs(kind) {
                if let Some(v) = d.group_vars.get(ALL) {
                    merge(v);
                }
            }
        }
        for kind in [VarsDirKind::Inventory, VarsDirKind::Playbook] {
            for d in dirs(kind) {
                for g in groups.iter().filter(|g| *g != ALL) {
                    if let Some(v) = d.group_vars.get(g) {
                        merge(v);
                    }
                }
            }
        }
        if let Some(h) = self.hosts.get(host) {
            merge(&h.vars);
        }
        for kind in [VarsDirKind::Inventory, VarsDirKind::Playbook] {
            for d in dirs(kind) {
                if let Some(v) = d.host_vars.get(host) {
                    merge(v);
                }
            }
        }
        for (legacy, modern) in [
            ("ansible_ssh_host", "ansible_host"),
            ("ansible_ssh_user", "ansible_user"),
            ("ansible_ssh_port", "ansible_port"),
        ] {
            if !out.contains_key(modern) {
                if let Some(v) = out.get(legacy).cloned() {
                    out.insert(modern.to_string(), v);
                }
            }
        }
        out
    }

    /// Hosts matching a pattern, like Ansible: each union term's hosts in inventory order
    /// (see [`group_hosts`](Self::group_hosts)), terms in the order written, then intersections
    /// and exclusions applied. Unknown names match nothing; malformed patterns (bad regex, empty
    /// terms) are errors.
    pub fn hosts_matching(&self, pattern: &str) -> Result<Vec<String>, InventoryError> {
        let perr = |message: String| InventoryError::Pattern {
            pattern: pattern.to_string(),
            message,
        };
        let mut terms = pattern::split(pattern).map_err(perr)?;
        // Ansible: unions first, then intersections, then exclusions; `all` if no union.
        terms.sort_by_key(|t| match t.op {
            pattern::Op::Union => 0,
            pattern::Op::Intersect => 1,
            pattern::Op::Exclude => 2,
        });
        if terms.first().is_none_or(|t| t.op != pattern::Op::Union) {
            terms.insert(
                0,
                pattern::Term {
                    op: pattern::Op::Union,
                    name: ALL.to_string(),
                    subscript: None,
                },
            );
        }
        let mut selected: IndexSet<String> = IndexSet::new();
        for t in &terms {
            let found = self.match_term(&t.name).map_err(perr)?;
            let found: IndexSet<String> = pattern::apply_subscript(found, t.subscript)
                .into_iter()
                .collect();
            match t.op {
                pattern::Op::Union => selected.extend(found),
                pattern::Op::Intersect => selected.retain(|h| found.contains(h)),
                pattern::Op::Exclude => selected.retain(|h| !found.contains(h)),
            }
        }
        Ok(selected.into_iter().collect())
    }

    /// Hosts of one term, in inventory order: groups matching it (with their descendants'
    /// hosts), plus hosts matching it by name.
    fn match_term(&self, name: &str) -> Result<Vec<String>, String> {
        if name == ALL || name == "*" {
            return Ok(self.hosts());
        }
        let by_file_order = |set: IndexSet<String>| -> Vec<String> {
            // Hosts matched by name come in definition order.
            let mut v: Vec<String> = set.into_iter().collect();
            let pos: HashMap<&str, usize> = self
                .hosts
                .keys()
                .enumerate()
                .map(|(i, h)| (h.as_str(), i))
                .collect();
            v.sort_by_key(|h| pos.get(h.as_str()).copied().unwrap_or(usize::MAX));
            v
        };
        let m = pattern::Matcher::new(name)?;
        let mut out: IndexSet<String> = IndexSet::new();
        let groups: Vec<&String> = self.groups.keys().filter(|g| m.matches(g)).collect();
        for g in &groups {
            out.extend(self.group_hosts(g));
        }
        if groups.is_empty() || pattern::Matcher::is_special(name) {
            let named: IndexSet<String> = self
                .hosts
                .keys()
                .filter(|h| m.matches(h))
                .cloned()
                .collect();
            out.extend(by_file_order(named));
        }
        Ok(out.into_iter().collect())
    }

    /// `hosts:` pattern restricted by `--limit` (same syntax; `@file` reads host names, one
    /// per line, from a file such as a `.retry` file).
    pub fn hosts_matching_limited(
        &self,
        pattern: &str,
        limit: Option<&str>,
    ) -> Result<Vec<String>, InventoryError> {
        let hosts = self.hosts_matching(pattern)?;
        let Some(limit) = limit else {
            return Ok(hosts);
        };
        let allowed: IndexSet<String> = if let Some(file) = limit.strip_prefix('@') {
            let text = std::fs::read_to_string(file).map_err(|e| InventoryError::File {
                path: file.to_string(),
                message: format!("cannot read limit file: {e}"),
            })?;
            let mut set = IndexSet::new();
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                set.extend(self.hosts_matching(line)?);
            }
            set
        } else {
            self.hosts_matching(limit)?.into_iter().collect()
        };
        Ok(hosts.into_iter().filter(|h| allowed.contains(h)).collect())
    }
}

#[cfg(test)]
mod tests;
