//! The vocabulary of playbooks: task/play keywords, the names of modules (control modules, run by
//! the runner itself, are declared in `modules::control_specs`), and "did you mean" suggestions.

/// Keys of a task mapping that are not the module.
pub const TASK_KEYWORDS: &[&str] = &[
    "name",
    "action",
    "local_action",
    "args",
    "when",
    "loop",
    "with_items",
    "with_list",
    "with_dict",
    "with_first_found",
    "with_fileglob",
    "with_file",
    "with_together",
    "with_sequence",
    "with_subelements",
    "with_nested",
    "with_indexed_items",
    "loop_control",
    "register",
    "notify",
    "listen",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "ignore_unreachable",
    "tags",
    "vars",
    "environment",
    "no_log",
    "check_mode",
    "diff",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "become_exe",
    "sudo",
    "sudo_user",
    "remote_user",
    "until",
    "retries",
    "delay",
    "run_once",
    "delegate_to",
    "delegate_facts",
    "any_errors_fatal",
    "block",
    "rescue",
    "always",
    "debugger",
    "throttle",
    "timeout",
    "collections",
    "module_defaults",
    "connection",
    "async",
    "poll",
    "port",
];

/// Keys of a play.
pub const PLAY_KEYWORDS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "vars_prompt",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "become",
    "become_user",
    "become_method",
    "become_flags",
    "sudo",
    "sudo_user",
    "remote_user",
    "user",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "roles",
    "serial",
    "strategy",
    "tags",
    "environment",
    "check_mode",
    "diff",
    "ignore_errors",
    "ignore_unreachable",
    "any_errors_fatal",
    "max_fail_percentage",
    "force_handlers",
    "collections",
    "connection",
    "port",
    "order",
    "no_log",
    "run_once",
    "throttle",
    "timeout",
    "module_defaults",
    "debugger",
    "fact_path",
];

/// The loop keywords the parser maps itself; with [`LOOKUP_LOOPS`], every loop knockplay runs.
/// The other `with_*` task keywords are recognised but refused.
pub const SUPPORTED_LOOPS: &[&str] = &[
    "loop",
    "with_items",
    "with_list",
    "with_dict",
    "with_first_found",
];

/// The `with_<lookup>` loops whose items a lookup builds (`runner/with_lookups.rs`).
pub const LOOKUP_LOOPS: &[&str] = &[
    "with_nested",
    "with_together",
    "with_indexed_items",
    "with_sequence",
    "with_subelements",
    "with_fileglob",
    "with_file",
];

/// `with_*` keywords that are task keywords but not implemented, in [`TASK_KEYWORDS`] order.
pub fn unsupported_loops() -> impl Iterator<Item = &'static str> {
    TASK_KEYWORDS.iter().copied().filter(|k| {
        k.starts_with("with_") && !SUPPORTED_LOOPS.contains(k) && !LOOKUP_LOOPS.contains(k)
    })
}

/// The runner still calls the FQCN helper by this name.
pub use super::fqcn::short as short_module_name;

/// The parameter declaration of a control module (one the runner executes itself), or None for
/// any other name.
pub fn control_params(name: &str) -> Option<&'static crate::modules::Spec> {
    crate::modules::control_specs::lookup(super::fqcn::short(name))
}

/// Every module name known (control + remote), for suggestions.
pub fn all_module_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = crate::modules::control_specs::CONTROL
        .iter()
        .map(|s| s.module)
        .collect();
    v.extend(crate::modules::registry().iter().map(|m| m.name()));
    v
}

/// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(word, c);
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let limit = (word.len() / 3).max(2);
    best.filter(|(d, _)| *d <= limit).map(|(_, c)| c)
}

/// Levenshtein distance between two names.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// " Did you mean 'x'?" or "".
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match nearest(word, candidates) {
        Some(c) => format!(" Did you mean '{c}'?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(nearest("cpy", ["copy", "command", "file"]), Some("copy"));
        assert_eq!(
            nearest("lineinfle", ["lineinfile", "blockinfile"]),
            Some("lineinfile")
        );
        assert_eq!(nearest("zzzzzz", ["copy", "file"]), None);
    }

    #[test]
    fn unsupported_loops_are_the_other_with_keywords() {
        let refused: Vec<&str> = unsupported_loops().collect();
        assert_eq!(refused.join(" "), "");
        for keyword in SUPPORTED_LOOPS.iter().chain(LOOKUP_LOOPS) {
            assert!(TASK_KEYWORDS.contains(keyword), "{keyword}");
        }
    }
}
