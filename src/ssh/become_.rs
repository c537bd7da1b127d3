//! Pure quoting of a command for become (sudo -n / su) with task environment.
//!
//! The result is one string handed to [`Remote::exec`](super::Remote::exec), which runs it with
//! `sh -c` semantics as the connecting user. With become, the whole inner script (environment exports + command) is quoted
//! as one word for `/bin/sh -c`, so quotes, `$`, backticks, newlines and heredocs in `cmd` reach the
//! inner shell byte for byte. Environment is exported *inside* the become shell because sudo resets
//! the environment.

use crate::shell::quote;

/// How to become another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Become {
    /// `sudo` or `su`.
    pub method: String,
    /// Target user (default root).
    pub user: String,
}

/// Become methods [`wrap`] knows how to build.
pub const METHODS: &[&str] = &["sudo", "su"];

/// Exit status of the guard commands `wrap` emits for become setups that cannot work
/// (unsupported method, `su` from a non-root user). Chosen to match `sudo`'s "cannot run" family.
pub const BECOME_UNSUPPORTED_RC: i32 = 125;

impl Become {
    /// `sudo` to `user` (empty means root).
    pub fn sudo(user: &str) -> Become {
        Become {
            method: "sudo".into(),
            user: user.into(),
        }
    }

    /// `su` to `user` (empty means root).
    pub fn su(user: &str) -> Become {
        Become {
            method: "su".into(),
            user: user.into(),
        }
    }

    /// The target user, `root` when none was given.
    pub fn target_user(&self) -> &str {
        if self.user.is_empty() {
            "root"
        } else {
            &self.user
        }
    }

    /// Check the method early (playbook validation) instead of failing on the target.
    pub fn validate(&self) -> Result<(), String> {
        if METHODS.contains(&self.method.as_str()) {
            Ok(())
        } else {
            Err(format!(
                "unsupported become_method {:?} (supported: {})",
                self.method,
                METHODS.join(", ")
            ))
        }
    }
}

/// Wrap `cmd` so that it runs under `become_` with `env` exported. Pure; the result is one
/// string for `sh -c`.
pub fn wrap(cmd: &str, become_: Option<&Become>, env: &[(String, String)]) -> String {
    let script = with_env(cmd, env);
    let Some(b) = become_ else {
        return script;
    };
    let user = quote(b.target_user());
    match b.method.as_str() {
        "sudo" => format!("sudo -n -H -u {user} -- /bin/sh -c {}", quote(&script)),
        "su" => {
            // su asks for a password unless run by root; without a terminal it would read the
            // password from our stdin (file contents!). Refuse clearly instead.
            let msg = quote(&format!(
                "knockplay: become_method su to {} needs root on the target (su passwords are not \
                 supported); connect as root or use become_method sudo",
                b.target_user()
            ));
            format!(
                "if [ \"$(id -u)\" != 0 ]; then echo {msg} >&2; exit {BECOME_UNSUPPORTED_RC}; fi; \
                 su -s /bin/sh {user} -c {}",
                quote(&script)
            )
        }
        other => {
            let msg = quote(&format!(
                "knockplay: unsupported become_method {other:?} (supported: {})",
                METHODS.join(", ")
            ));
            format!("echo {msg} >&2; exit {BECOME_UNSUPPORTED_RC}")
        }
    }
}

/// `export NAME=value` lines before `cmd`. An invalid variable name makes the script fail with a
/// clear message instead of being interpreted by the shell.
fn with_env(cmd: &str, env: &[(String, String)]) -> String {
    if env.is_empty() {
        return cmd.to_string();
    }
    let mut out = String::with_capacity(cmd.len() + env.len() * 32);
    for (name, value) in env {
        if !is_shell_name(name) {
            let msg = quote(&format!(
                "knockplay: invalid environment variable name {name:?}"
            ));
            return format!("echo {msg} >&2; exit {BECOME_UNSUPPORTED_RC}");
        }
        out.push_str("export ");
        out.push_str(name);
        out.push('=');
        out.push_str(&quote(value));
        out.push('\n');
    }
    out.push_str(cmd);
    out
}

/// POSIX shell variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_shell_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn table_of_wrappings() {
        let sudo_root = Become::sudo("root");
        let sudo_default = Become::sudo("");
        let sudo_deploy = Become::sudo("deploy");
        let su_pg = Become::su("postgres");
        type Case<'a> = (&'a str, Option<&'a Become>, Vec<(String, String)>, &'a str);
        let cases: Vec<Case> = vec![
            ("id -u", None, vec![], "id -u"),
            (
                "echo $A",
                None,
                env(&[("A", "x y"), ("B", "it's")]),
                "export A='x y'\nexport B='it'\\''s'\necho $A",
            ),
            (
                "id -u",
                Some(&sudo_root),
                vec![],
                "sudo -n -H -u root -- /bin/sh -c 'id -u'",
            ),
            (
                "whoami",
                Some(&sudo_default),
                vec![],
                "sudo -n -H -u root -- /bin/sh -c whoami",
            ),
            (
                "echo 'hi'",
                Some(&sudo_deploy),
                env(&[("X", "1")]),
                "sudo -n -H -u deploy -- /bin/sh -c 'export X=1\necho '\\''hi'\\'''",
            ),
        ];
        for (cmd, b, e, want) in cases {
            assert_eq!(wrap(cmd, b, &e), want, "cmd {cmd:?} become {b:?}");
        }
        let su = wrap("psql -c 'select 1'", Some(&su_pg), &[]);
        assert!(
            su.ends_with("su -s /bin/sh postgres -c 'psql -c '\\''select 1'\\'''"),
            "{su}"
        );
        assert!(
            su.starts_with("if [ \"$(id -u)\" != 0 ]; then echo "),
            "{su}"
        );
    }

    #[test]
    fn unknown_method_and_bad_env_name_fail_clearly() {
        let b = Become {
            method: "doas".into(),
            user: "root".into(),
        };
        assert!(b.validate().unwrap_err().contains("doas"));
        let out = run_sh(&wrap("echo should-not-run", Some(&b), &[]), None);
        assert_eq!(out.status.code(), Some(BECOME_UNSUPPORTED_RC));
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported become_method \"doas\""));

        let out = run_sh(&wrap("echo no", None, &env(&[("A-B", "1")])), None);
        assert_eq!(out.status.code(), Some(BECOME_UNSUPPORTED_RC));
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("\"A-B\""));
        assert!(Become::sudo("x").validate().is_ok() && Become::su("x").validate().is_ok());
    }

    fn run_sh(script: &str, stdin: Option<&[u8]>) -> std::process::Output {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            input.write_all(data).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    /// Nasty commands: quotes, `$`, backticks, backslashes, newlines, a heredoc, unicode.
    const NASTY: &[&str] = &[
        "printf '%s|' \"a b\" 'c'\"'\"'d' \\$HOME `echo tick` \"$(echo sub)\"",
        "x='single '\\''quoted'\\'' \"double\"'; printf '%s' \"$x\"",
        "cat <<'EOF'\n$NOT_EXPANDED `nope` 'q' \"dq\" \\\nEOF\ncat <<EOF\nexp=$((1+2))\nEOF",
        "printf 'line1\\nline2\\n'; echo 'héllo ✓'; exit 7",
        "printf '%s' \"$KP_A|$KP_B|$KP_C\"",
    ];

    /// Replace `sudo -n -H -u USER --` with nothing so the wrapped string runs locally through the
    /// same quoting layers (outer shell → /bin/sh -c) without sudo.
    fn without_sudo(wrapped: &str, user: &str) -> String {
        let prefix = format!("sudo -n -H -u {} -- ", quote(user));
        assert!(wrapped.starts_with(&prefix), "{wrapped}");
        wrapped[prefix.len()..].to_string()
    }

    #[test]
    fn round_trips_through_sh_with_and_without_become() {
        let e = env(&[
            ("KP_A", "it's $HOME `x`"),
            ("KP_B", "two\nlines"),
            ("KP_C", "\"dq\" \\ back"),
        ]);
        let b = Become::sudo("root");
        for cmd in NASTY {
            let direct = run_sh(&with_env(cmd, &e), None);
            let plain = run_sh(&wrap(cmd, None, &e), None);
            let via_become = run_sh(&without_sudo(&wrap(cmd, Some(&b), &e), "root"), None);
            assert_eq!(plain.stdout, direct.stdout, "{cmd}");
            assert_eq!(via_become.stdout, direct.stdout, "{cmd}");
            assert_eq!(via_become.stderr, direct.stderr, "{cmd}");
            assert_eq!(via_become.status.code(), direct.status.code(), "{cmd}");
        }
        let out = run_sh(&without_sudo(&wrap(NASTY[4], Some(&b), &e), "root"), None);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "it's $HOME `x`|two\nlines|\"dq\" \\ back"
        );
        let out = run_sh(&without_sudo(&wrap(NASTY[2], Some(&b), &[]), "root"), None);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "$NOT_EXPANDED `nope` 'q' \"dq\" \\\nexp=3\n"
        );
        let out = run_sh(&without_sudo(&wrap(NASTY[3], Some(&b), &[]), "root"), None);
        assert_eq!(out.status.code(), Some(7));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "line1\nline2\nhéllo ✓\n"
        );
    }

    #[test]
    fn stdin_passes_through_become_wrapping() {
        let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let b = Become::sudo("root");
        let wrapped = wrap("cat > \"$OUT\" && wc -c < \"$OUT\"", Some(&b), &[]);
        let dir = tempfile::tempdir().unwrap();
        let out_path = dir.path().join("o u't");
        let script = format!(
            "OUT={}; export OUT; {}",
            quote(out_path.to_str().unwrap()),
            without_sudo(&wrapped, "root")
        );
        let out = run_sh(&script, Some(&data));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "70000");
        assert_eq!(std::fs::read(&out_path).unwrap(), data);
    }

    #[test]
    fn su_runs_as_root_locally() {
        // Tests run as root on the dev machine and in CI; su to root then needs no password.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let b = Become::su("root");
        let e = env(&[("KP_A", "it's $HOME `x`")]);
        for cmd in NASTY {
            let direct = run_sh(&with_env(cmd, &e), None);
            let via_su = run_sh(&wrap(cmd, Some(&b), &e), None);
            assert_eq!(via_su.stdout, direct.stdout, "{cmd}");
            assert_eq!(via_su.status.code(), direct.status.code(), "{cmd}");
        }
    }
}
