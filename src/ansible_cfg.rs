//! `ansible.cfg` and the `ANSIBLE_*` variables, found and read as Ansible does, so an existing
//! Ansible repository runs without flags.
//!
//! The file is the first of `$ANSIBLE_CONFIG`, `./ansible.cfg`, `~/.ansible.cfg`,
//! `/etc/ansible/ansible.cfg`. Environment variables override the file, command-line flags
//! override both (the CLI applies that last step). Paths in the file are relative to the file's
//! directory, paths in variables to the working directory. Keys knockplay does not use are
//! ignored quietly. Pure: the environment, working directory and home come in as arguments.

use std::path::{Path, PathBuf};

use crate::playbook::parse::RoleSearch;

/// Settings taken from `ansible.cfg` and the environment. `None`/empty: not set anywhere.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnsibleCfg {
    /// The file read, if any.
    pub path: Option<PathBuf>,
    pub inventory: Vec<String>,
    /// Where roles are searched (after `roles/` beside the playbook); Ansible's default when unset.
    pub roles_path: Vec<PathBuf>,
    /// Where `ansible_collections/NS/COLL` are searched; Ansible's default when unset.
    pub collections_path: Vec<PathBuf>,
    pub remote_user: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub forks: Option<usize>,
    pub host_key_checking: Option<bool>,
    pub timeout: Option<u64>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub become_method: Option<String>,
    pub vault_password_file: Option<PathBuf>,
}

/// A value that cannot be used, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {msg}")]
pub struct CfgError {
    /// `FILE:LINE` or the variable's name.
    pub origin: String,
    pub msg: String,
}

/// Where a value came from, for errors and relative paths.
enum Origin<'a> {
    File { path: &'a Path, line: usize },
    Env(&'a str),
}

impl Origin<'_> {
    fn text(&self) -> String {
        match self {
            Origin::File { path, line } => format!("{}:{line}", path.display()),
            Origin::Env(name) => name.to_string(),
        }
    }
}

/// The config file Ansible would read.
pub fn find(
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
    home: Option<&Path>,
) -> Option<PathBuf> {
    if let Some(p) = env("ANSIBLE_CONFIG").filter(|p| !p.is_empty()) {
        let p = cwd.join(expand_home(&p, home));
        let p = if p.is_dir() { p.join("ansible.cfg") } else { p };
        if p.is_file() {
            return Some(p);
        }
    }
    let local = cwd.join("ansible.cfg");
    // Ansible ignores ./ansible.cfg in a world-writable directory (anyone could plant one).
    if local.is_file() && !world_writable(cwd) {
        return Some(local);
    }
    let mut candidates = Vec::new();
    if let Some(h) = home {
        candidates.push(h.join(".ansible.cfg"));
    }
    candidates.push(PathBuf::from("/etc/ansible/ansible.cfg"));
    candidates.into_iter().find(|p| p.is_file())
}

fn world_writable(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir)
        .map(|m| m.permissions().mode() & 0o002 != 0)
        .unwrap_or(false)
}

fn expand_home(p: &str, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix('~'), home) {
        (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => {
            h.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(p),
    }
}

/// Finds, reads and parses the file, then applies the environment.
pub fn load(
    env: &dyn Fn(&str) -> Option<String>,
    cwd: &Path,
    home: Option<&Path>,
) -> Result<AnsibleCfg, CfgError> {
    let mut cfg = match find(env, cwd, home) {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| CfgError {
                origin: path.display().to_string(),
                msg: e.to_string(),
            })?;
            parse(&text, &path, home)?
        }
        None => AnsibleCfg::default(),
    };
    cfg.apply_env(env, cwd, home)?;
    Ok(cfg)
}

/// One `key = value` of the file, with its section and line.
struct Entry {
    section: String,
    key: String,
    value: String,
    line: usize,
}

/// Python configparser's INI dialect: `[section]`, `key = value` or `key: value`, `#`/`;`
/// comment lines, `;` inline comments after whitespace, indented continuation lines.
fn entries(text: &str, path: &Path) -> Result<Vec<Entry>, CfgError> {
    let mut out: Vec<Entry> = Vec::new();
    let mut section = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.value.push('\n');
                last.value.push_str(strip_inline_comment(trimmed));
                continue;
            }
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            section = rest
                .strip_suffix(']')
                .ok_or_else(|| CfgError {
                    origin: format!("{}:{line}", path.display()),
                    msg: format!("section header without ']': {trimmed}"),
                })?
                .trim()
                .to_string();
            continue;
        }
        let at = trimmed.find(['=', ':']).ok_or_else(|| CfgError {
            origin: format!("{}:{line}", path.display()),
            msg: format!("expected 'key = value', found: {trimmed}"),
        })?;
        out.push(Entry {
            section: section.clone(),
            key: trimmed[..at].trim().to_ascii_lowercase(),
            value: strip_inline_comment(trimmed[at + 1..].trim()).to_string(),
            line,
        });
    }
    Ok(out)
}

fn strip_inline_comment(v: &str) -> &str {
    let b = v.as_bytes();
    match (1..b.len()).find(|&i| b[i] == b';' && b[i - 1].is_ascii_whitespace()) {
        Some(i) => v[..i].trim_end(),
        None => v,
    }
}

/// Parses the text of `path`.
pub fn parse(text: &str, path: &Path, home: Option<&Path>) -> Result<AnsibleCfg, CfgError> {
    let base = path.parent().unwrap_or(Path::new("."));
    let mut cfg = AnsibleCfg {
        path: Some(path.to_path_buf()),
        ..AnsibleCfg::default()
    };
    for e in entries(text, path)? {
        let origin = Origin::File { path, line: e.line };
        let key = match (e.section.as_str(), e.key.as_str()) {
            ("defaults", k) => k.to_string(),
            ("privilege_escalation", k) => k.to_string(),
            ("ssh_connection", "ssh_args" | "pipelining" | "control_path" | "scp_if_ssh") => {
                continue; // accepted: knockplay's SSH is in-process and already pipelined
            }
            _ => continue,
        };
        cfg.set(&key, &e.value, &origin, base, home)?;
    }
    Ok(cfg)
}

impl AnsibleCfg {
    /// Applies `ANSIBLE_*` variables over the file's values.
    pub fn apply_env(
        &mut self,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
        home: Option<&Path>,
    ) -> Result<(), CfgError> {
        const VARS: &[(&str, &str)] = &[
            ("ANSIBLE_INVENTORY", "inventory"),
            ("ANSIBLE_ROLES_PATH", "roles_path"),
            ("ANSIBLE_COLLECTIONS_PATHS", "collections_path"),
            ("ANSIBLE_COLLECTIONS_PATH", "collections_path"),
            ("ANSIBLE_REMOTE_USER", "remote_user"),
            ("ANSIBLE_PRIVATE_KEY_FILE", "private_key_file"),
            ("ANSIBLE_FORKS", "forks"),
            ("ANSIBLE_HOST_KEY_CHECKING", "host_key_checking"),
            ("ANSIBLE_TIMEOUT", "timeout"),
            ("ANSIBLE_BECOME", "become"),
            ("ANSIBLE_BECOME_USER", "become_user"),
            ("ANSIBLE_BECOME_METHOD", "become_method"),
            ("ANSIBLE_VAULT_PASSWORD_FILE", "vault_password_file"),
        ];
        for (var, key) in VARS {
            if let Some(v) = env(var) {
                self.set(key, &v, &Origin::Env(var), cwd, home)?;
            }
        }
        Ok(())
    }

    fn set(
        &mut self,
        key: &str,
        value: &str,
        origin: &Origin<'_>,
        base: &Path,
        home: Option<&Path>,
    ) -> Result<(), CfgError> {
        let bad = |msg: String| CfgError {
            origin: origin.text(),
            msg,
        };
        let path = |v: &str| base.join(expand_home(v.trim(), home));
        let paths =
            |v: &str| -> Vec<PathBuf> { paths_by(v, ':').iter().map(|s| path(s)).collect() };
        let word = |v: &str| Some(v.trim().to_string()).filter(|s| !s.is_empty());
        match key {
            "inventory" | "hostfile" => {
                self.inventory = paths_by(value, ',')
                    .into_iter()
                    .map(|s| path(&s).display().to_string())
                    .collect();
            }
            "roles_path" => self.roles_path = paths(value),
            "collections_path" | "collections_paths" => self.collections_path = paths(value),
            "remote_user" => self.remote_user = word(value),
            "private_key_file" => self.private_key_file = word(value).map(|v| path(&v)),
            "vault_password_file" => self.vault_password_file = word(value).map(|v| path(&v)),
            "forks" => {
                let n: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("forks must be a whole number, got '{value}'")))?;
                self.forks = Some(n.max(1));
            }
            "timeout" => {
                let n = value
                    .trim()
                    .parse()
                    .map_err(|_| bad(format!("timeout must be whole seconds, got '{value}'")))?;
                self.timeout = Some(n);
            }
            "host_key_checking" => {
                self.host_key_checking = Some(boolean(value).ok_or_else(|| {
                    bad(format!(
                        "host_key_checking must be a boolean, got '{value}'"
                    ))
                })?)
            }
            "become" => {
                self.become_ = Some(
                    boolean(value)
                        .ok_or_else(|| bad(format!("become must be a boolean, got '{value}'")))?,
                )
            }
            "become_user" => self.become_user = word(value),
            "become_method" => self.become_method = word(value),
            _ => {}
        }
        Ok(())
    }

    /// Role directories to search after `roles/` beside the playbook: the configured ones, or
    /// Ansible's default.
    pub fn roles_search(&self, home: Option<&Path>) -> Vec<PathBuf> {
        if !self.roles_path.is_empty() {
            return self.roles_path.clone();
        }
        let mut v = Vec::new();
        if let Some(h) = home {
            v.push(h.join(".ansible/roles"));
        }
        v.push("/usr/share/ansible/roles".into());
        v.push("/etc/ansible/roles".into());
        v
    }

    /// Collection roots (each holding `ansible_collections/`): the configured ones, or
    /// Ansible's default.
    pub fn collections_search(&self, home: Option<&Path>) -> Vec<PathBuf> {
        if !self.collections_path.is_empty() {
            return self.collections_path.clone();
        }
        let mut v = Vec::new();
        if let Some(h) = home {
            v.push(h.join(".ansible/collections"));
        }
        v.push("/usr/share/ansible/collections".into());
        v
    }
}

/// The non-empty items of a list separated by `sep` or newlines.
fn paths_by(v: &str, sep: char) -> Vec<String> {
    v.split([sep, '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Where a playbook run without a command line (a listener's door) finds roles: ansible.cfg as
/// Ansible finds it from the playbook's directory, and the environment.
pub fn role_search_beside(playbook: &Path) -> Result<RoleSearch, CfgError> {
    let dir = playbook
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cfg = load(&|k| std::env::var(k).ok(), dir, home.as_deref())?;
    Ok(cfg.role_search(home.as_deref()))
}

impl AnsibleCfg {
    /// The role search these settings describe.
    pub fn role_search(&self, home: Option<&Path>) -> RoleSearch {
        RoleSearch {
            roles_path: self.roles_search(home),
            collections_path: self.collections_search(home),
            extra_vars: Default::default(),
        }
    }
}

/// Ansible's config booleans.
fn boolean(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Some(true),
        "0" | "false" | "no" | "off" | "n" | "f" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| m.get(k).cloned()
    }

    #[test]
    fn reads_the_keys_knockplay_uses_relative_to_the_file() {
        let text = "\
# a comment
[defaults]
inventory = hosts.ini
roles_path = roles:~/shared/roles:/opt/roles ; where roles live
collections_path = ./collections
remote_user: deploy
private_key_file = keys/id_ed25519
forks = 20
host_key_checking = False
timeout = 30
vault_password_file = ~/.vault_pass
gathering = smart
retry_files_enabled = False

[privilege_escalation]
become = True
become_user = root
become_method = sudo

[ssh_connection]
ssh_args = -o ControlMaster=auto -o ControlPersist=60s
pipelining = True
";
        let home = Path::new("/home/u");
        let cfg = parse(text, Path::new("/repo/ansible.cfg"), Some(home)).unwrap();
        assert_eq!(cfg.inventory, vec!["/repo/hosts.ini"]);
        assert_eq!(
            cfg.roles_path,
            vec![
                PathBuf::from("/repo/roles"),
                PathBuf::from("/home/u/shared/roles"),
                PathBuf::from("/opt/roles")
            ]
        );
        assert_eq!(
            cfg.collections_path,
            vec![PathBuf::from("/repo/./collections")]
        );
        assert_eq!(cfg.remote_user.as_deref(), Some("deploy"));
        assert_eq!(
            cfg.private_key_file,
            Some(PathBuf::from("/repo/keys/id_ed25519"))
        );
        assert_eq!(cfg.forks, Some(20));
        assert_eq!(cfg.host_key_checking, Some(false));
        assert_eq!(cfg.timeout, Some(30));
        assert_eq!(
            cfg.vault_password_file,
            Some(PathBuf::from("/home/u/.vault_pass"))
        );
        assert_eq!(cfg.become_, Some(true));
        assert_eq!(cfg.become_user.as_deref(), Some("root"));
        assert_eq!(cfg.become_method.as_deref(), Some("sudo"));
    }

    #[test]
    fn the_environment_overrides_the_file_and_is_relative_to_the_working_directory() {
        let text = "[defaults]\nroles_path = roles\nforks = 3\n";
        let mut cfg = parse(text, Path::new("/repo/ansible.cfg"), None).unwrap();
        cfg.apply_env(
            &env_of(&[
                ("ANSIBLE_ROLES_PATH", "a:/b"),
                ("ANSIBLE_FORKS", "7"),
                ("ANSIBLE_BECOME", "yes"),
            ]),
            Path::new("/work"),
            None,
        )
        .unwrap();
        assert_eq!(
            cfg.roles_path,
            vec![PathBuf::from("/work/a"), PathBuf::from("/b")]
        );
        assert_eq!(cfg.forks, Some(7));
        assert_eq!(cfg.become_, Some(true));
    }

    #[test]
    fn bad_values_name_the_file_and_line_or_the_variable() {
        let e = parse(
            "[defaults]\n\nforks = many\n",
            Path::new("/r/ansible.cfg"),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/r/ansible.cfg:3: forks must be a whole number, got 'many'"
        );
        let e = parse("[defaults\n", Path::new("/r/ansible.cfg"), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/r/ansible.cfg:1: section header without ']': [defaults"
        );
        let mut cfg = AnsibleCfg::default();
        let e = cfg
            .apply_env(
                &env_of(&[("ANSIBLE_HOST_KEY_CHECKING", "maybe")]),
                Path::new("/"),
                None,
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "ANSIBLE_HOST_KEY_CHECKING: host_key_checking must be a boolean, got 'maybe'"
        );
    }

    #[test]
    fn finds_the_file_in_ansibles_order() {
        let d = tempfile::tempdir().unwrap();
        let cwd = d.path().join("repo");
        let home = d.path().join("home");
        std::fs::create_dir_all(&cwd).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let none = env_of(&[]);
        std::fs::write(home.join(".ansible.cfg"), "").unwrap();
        assert_eq!(
            find(&none, &cwd, Some(&home)),
            Some(home.join(".ansible.cfg"))
        );
        std::fs::write(cwd.join("ansible.cfg"), "").unwrap();
        assert_eq!(
            find(&none, &cwd, Some(&home)),
            Some(cwd.join("ansible.cfg"))
        );
        let other = d.path().join("other.cfg");
        std::fs::write(&other, "").unwrap();
        let env = env_of(&[("ANSIBLE_CONFIG", other.to_str().unwrap())]);
        assert_eq!(find(&env, &cwd, Some(&home)), Some(other));
        // A world-writable working directory's ansible.cfg is ignored, as Ansible does.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(
            find(&none, &cwd, Some(&home)),
            Some(home.join(".ansible.cfg"))
        );
    }
}
