//! What real Ansible knows and knockplay does not: the modules of ansible-core
//! (`ansible.builtin`) and its lookup plugins. A name Ansible would run but knockplay cannot is
//! refused with "not supported by knockplay", never with a guess at a similar knockplay module.

/// The modules of ansible-core 2.18 (`ansible.builtin`).
pub const BUILTIN_MODULES: &[&str] = &[
    "add_host",
    "apt",
    "apt_key",
    "apt_repository",
    "assemble",
    "assert",
    "async_status",
    "blockinfile",
    "command",
    "copy",
    "cron",
    "deb822_repository",
    "debconf",
    "debug",
    "dnf",
    "dnf5",
    "dpkg_selections",
    "expect",
    "fail",
    "fetch",
    "file",
    "find",
    "gather_facts",
    "get_url",
    "getent",
    "git",
    "group",
    "group_by",
    "hostname",
    "import_playbook",
    "import_role",
    "import_tasks",
    "include_role",
    "include_tasks",
    "include_vars",
    "iptables",
    "known_hosts",
    "lineinfile",
    "meta",
    "mount_facts",
    "package",
    "package_facts",
    "pause",
    "ping",
    "pip",
    "raw",
    "reboot",
    "replace",
    "rpm_key",
    "script",
    "service",
    "service_facts",
    "set_fact",
    "set_stats",
    "setup",
    "shell",
    "slurp",
    "stat",
    "subversion",
    "systemd",
    "systemd_service",
    "sysvinit",
    "tempfile",
    "template",
    "unarchive",
    "uri",
    "user",
    "validate_argument_spec",
    "wait_for",
    "wait_for_connection",
    "yum",
    "yum_repository",
    "include",
    "win_command",
    "win_shell",
];

/// The lookup plugins of ansible-core 2.18 (what `with_<name>` and `lookup('<name>')` use).
pub const BUILTIN_LOOKUPS: &[&str] = &[
    "config",
    "csvfile",
    "dict",
    "env",
    "file",
    "fileglob",
    "first_found",
    "indexed_items",
    "ini",
    "inventory_hostnames",
    "items",
    "lines",
    "list",
    "nested",
    "password",
    "pipe",
    "random_choice",
    "sequence",
    "subelements",
    "template",
    "together",
    "unvault",
    "url",
    "varnames",
    "vars",
];

/// Why a module name knockplay does not have cannot run, when Ansible would know it: a
/// templated name, a module of another collection, or one of ansible-core's.
pub fn unsupported_module(name: &str) -> Option<String> {
    if name.contains("{{") || name.contains("{%") {
        return Some(format!(
            "a templated module name ('{name}') is not supported by knockplay: write the module out"
        ));
    }
    let short = super::fqcn::short(name);
    let parts: Vec<&str> = short.split('.').collect();
    if parts.len() >= 3 && parts.iter().all(|p| !p.is_empty()) {
        return Some(format!(
            "module '{name}' is not supported by knockplay (it has the modules of ansible.builtin it documents, no other collection's)"
        ));
    }
    BUILTIN_MODULES
        .contains(&short)
        .then(|| format!("module '{short}' is not supported by knockplay"))
}

/// Tasks of a parsed playbook that use a module knockplay lacks (statically known ones: dynamic
/// includes are read at run time), as `file:line:col: task 'x': module 'yum' is not supported by
/// knockplay`, in playbook order. They fail only if they run; `--syntax-check` and `run` warn.
pub fn unsupported_tasks(pb: &super::model::Playbook) -> Vec<String> {
    fn walk(tasks: &[super::model::Task], out: &mut Vec<String>) {
        use super::model::Action;
        for t in tasks {
            match &t.action {
                Action::Block {
                    block,
                    rescue,
                    always,
                } => {
                    for part in [block, rescue, always] {
                        walk(part, out);
                    }
                }
                Action::Module { name, .. } => {
                    let short = super::fqcn::short(name);
                    let known = super::keywords::control_params(short).is_some()
                        || crate::modules::lookup(short).is_some();
                    if let Some(why) = unsupported_module(name).filter(|_| !known) {
                        out.push(format!("{}: task '{}': {why}", t.pos, t.display_name()));
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for play in &pb.plays {
        for tasks in [&play.pre_tasks, &play.tasks, &play.post_tasks, &play.handlers] {
            walk(tasks, &mut out);
        }
    }
    out
}

/// The message for a `with_<lookup>` knockplay does not loop over.
pub fn unsupported_with(key: &str) -> String {
    let lookup = key.strip_prefix("with_").unwrap_or(key);
    if BUILTIN_LOOKUPS.contains(&lookup) {
        format!("{key}: the '{lookup}' lookup is not supported by knockplay as a loop; use loop: with a filter")
    } else {
        format!("{key}: lookup plugin '{lookup}' not found")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansible_modules_are_named_not_guessed() {
        assert_eq!(
            unsupported_module("git").as_deref(),
            Some("module 'git' is not supported by knockplay")
        );
        assert_eq!(
            unsupported_module("ansible.builtin.unarchive").as_deref(),
            Some("module 'unarchive' is not supported by knockplay")
        );
        assert!(unsupported_module("community.general.ufw")
            .unwrap()
            .starts_with("module 'community.general.ufw' is not supported by knockplay"));
        assert!(unsupported_module("{{ m }}")
            .unwrap()
            .contains("templated module name"));
        assert_eq!(unsupported_module("aptt"), None);
        assert_eq!(
            unsupported_with("with_nested"),
            "with_nested: the 'nested' lookup is not supported by knockplay as a loop; use loop: with a filter"
        );
        assert_eq!(
            unsupported_with("with_foo"),
            "with_foo: lookup plugin 'foo' not found"
        );
    }
}
