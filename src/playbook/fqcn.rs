//! Fully qualified module names: `ansible.builtin.copy` and `ansible.legacy.copy` are `copy`.

/// The collections whose modules knockplay provides under their short names.
const BUILTIN_COLLECTIONS: [&str; 2] = ["ansible.builtin.", "ansible.legacy."];

/// `ansible.builtin.copy` / `ansible.legacy.copy` → `copy`; any other name unchanged.
pub fn short(name: &str) -> &str {
    BUILTIN_COLLECTIONS
        .iter()
        .find_map(|collection| name.strip_prefix(collection))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_the_builtin_collections() {
        for (name, want) in [
            ("copy", "copy"),
            ("ansible.builtin.copy", "copy"),
            ("ansible.legacy.shell", "shell"),
            ("community.general.ufw", "community.general.ufw"),
            ("ansible.builtin.", ""),
            (
                "ansible.posix.ansible.builtin.x",
                "ansible.posix.ansible.builtin.x",
            ),
        ] {
            assert_eq!(short(name), want, "{name}");
        }
    }
}
