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
    // The few community.general modules knockplay has are not another collection's.
    if short
        .strip_prefix("community.general.")
        .is_some_and(|m| crate::modules::COMMUNITY_GENERAL.contains(&m))
        || short
            .strip_prefix("ansible.posix.")
            .is_some_and(|m| crate::modules::ANSIBLE_POSIX.contains(&m))
    {
        return None;
    }
    let parts: Vec<&str> = short.split('.').collect();
    if parts.len() >= 3 && parts.iter().all(|p| !p.is_empty()) {
        return Some(format!(
            "module '{name}' is not supported by knockplay (it has the modules of ansible.builtin it documents and community.general's {} and ansible.posix's {}, no other collection's)", crate::modules::COMMUNITY_GENERAL.join(", "), crate::modules::ANSIBLE_POSIX.join(", ")
        ));
    }
    if let Some(full) = routed_module(short) {
        return Some(format!(
            "module '{short}' ({full}) is not supported by knockplay"
        ));
    }
    BUILTIN_MODULES
        .contains(&short)
        .then(|| format!("module '{short}' is not supported by knockplay"))
}

/// The collection module ansible-core resolves a short name to (`seboolean` →
/// `ansible.posix.seboolean`): Ansible runs such names with the standard collections installed.
pub fn routed_module(short: &str) -> Option<String> {
    use std::collections::HashMap;
    static MAP: std::sync::OnceLock<HashMap<&'static str, (&'static str, &'static str)>> =
        std::sync::OnceLock::new();
    let map = MAP.get_or_init(|| {
        let mut m = HashMap::new();
        for line in include_str!("collection_modules.txt").lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let Some(coll) = words.next() else { continue };
            for w in words {
                let (name, target) = w.split_once('=').unwrap_or((w, w));
                m.insert(name, (coll, target));
            }
        }
        m
    });
    map.get(short).map(|(c, t)| format!("{c}.{t}"))
}

/// Plays with a connection knockplay lacks, and tasks of a parsed playbook that use a module
/// knockplay lacks (statically known ones: dynamic includes are read at run time), as
/// `file:line:col: task 'x': module 'dnf5' is not supported by
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
                Action::Module { .. } => {
                    if let Some(why) = &t.unsupported {
                        out.push(format!("{}: task '{}': {why}", t.pos, t.display_name()));
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    for play in &pb.plays {
        if let Some(c) = play.connection.as_ref().and_then(|c| c.as_str()) {
            let known = ["ssh", "smart", "paramiko", "local"];
            let short = c.strip_prefix("ansible.builtin.").unwrap_or(c);
            if !c.contains("{{") && !known.contains(&short) {
                out.push(format!(
                    "{}: play '{}': connection '{c}' is not supported by knockplay (ssh and local are): its hosts fail",
                    play.pos, play.name
                ));
            }
        }
        for tasks in [
            &play.pre_tasks,
            &play.tasks,
            &play.post_tasks,
            &play.handlers,
        ] {
            walk(tasks, &mut out);
        }
    }
    out
}

/// Python plugins beside a playbook (`filter_plugins/`, `test_plugins/`, `lookup_plugins/`, ...),
/// which knockplay cannot load: one warning per file, naming the filters or tests it defines,
/// so a template that uses one is understood before it fails.
pub fn python_plugins(playbook_dir: &std::path::Path) -> Vec<String> {
    const KINDS: &[(&str, &str)] = &[
        ("filter_plugins", "filters"),
        ("test_plugins", "tests"),
        ("lookup_plugins", "lookups"),
        ("action_plugins", "actions"),
        ("callback_plugins", "callbacks"),
        ("module_utils", "module utilities"),
    ];
    let mut out = Vec::new();
    for (dir, what) in KINDS {
        let Ok(entries) = std::fs::read_dir(playbook_dir.join(dir)) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "py") && p.is_file())
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let names = plugin_names(&text);
            let defines = if names.is_empty() {
                String::new()
            } else {
                format!(" ({what} it defines: {})", names.join(", "))
            };
            out.push(format!(
                "{}: Python plugins are not supported by knockplay{defines}",
                f.display()
            ));
        }
    }
    out
}

/// The names a filter or test plugin returns from `filters()`/`tests()`: the quoted keys of the
/// dict after that `def` (a plain reading, never an execution).
fn plugin_names(text: &str) -> Vec<String> {
    let Some(at) = text
        .find("def filters(")
        .or_else(|| text.find("def tests("))
    else {
        return Vec::new();
    };
    let body = &text[at + 4..];
    let body = &body[..body
        .find("\ndef ")
        .or_else(|| body.find("    def "))
        .unwrap_or(body.len())];
    let Ok(key) = regex::Regex::new(r#"['"]([A-Za-z_][A-Za-z0-9_.]*)['"]\s*:"#) else {
        return Vec::new();
    };
    let mut names: Vec<String> = Vec::new();
    for c in key.captures_iter(body) {
        let n = c[1].to_string();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    names
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
    fn python_plugins_are_named_with_what_they_define() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("filter_plugins")).unwrap();
        std::fs::write(
            d.path().join("filter_plugins/net.py"),
            "class FilterModule(object):\n    def filters(self):\n        return {\n            'cidr_host': cidr_host,\n            \"ns.x\": f,\n        }\n",
        )
        .unwrap();
        std::fs::write(d.path().join("filter_plugins/README"), "x").unwrap();
        let got = python_plugins(d.path());
        assert_eq!(
            got,
            vec![format!(
                "{}: Python plugins are not supported by knockplay (filters it defines: cidr_host, ns.x)",
                d.path().join("filter_plugins/net.py").display()
            )]
        );
        assert!(python_plugins(&d.path().join("none")).is_empty());
    }

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
        assert_eq!(unsupported_module("community.general.ini_file"), None);
        assert!(crate::modules::lookup("community.general.ini_file").is_some());
        assert!(crate::modules::lookup("community.general.ufw").is_none());
        assert!(unsupported_module("community.general.ufw")
            .unwrap()
            .starts_with("module 'community.general.ufw' is not supported by knockplay"));
        assert!(unsupported_module("{{ m }}")
            .unwrap()
            .contains("templated module name"));
        assert_eq!(unsupported_module("aptt"), None);
        assert_eq!(
            unsupported_module("seboolean").as_deref(),
            Some("module 'seboolean' (ansible.posix.seboolean) is not supported by knockplay")
        );
        assert_eq!(
            routed_module("npm").as_deref(),
            Some("community.general.npm")
        );
        assert_eq!(
            routed_module("docker_image").as_deref(),
            Some("community.docker.docker_image")
        );
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
