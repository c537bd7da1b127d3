//! Pure wrapping of a command for become (sudo -n / su) with task environment.
//!
//! The result is handed to [`Remote::exec`](super::Remote::exec), which runs it with `sh -c`
//! semantics as the connecting user. With become, the inner script (environment exports + command)
//! never appears in the arguments of `sudo`/`su` or of the shell they start, where `ps` and sudo's
//! log would show it to anyone on the target: they get a constant stub, [`STUB`], that reads the
//! script as its first line of stdin (escaped for `printf %b`, so one line holds any script) and
//! `eval`s it; the command's own stdin follows that line. The shell's `read` takes bytes one at a
//! time from a pipe, so it never consumes past the line. Environment is exported *inside* the
//! become shell because sudo resets the environment.

use std::borrow::Cow;

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

/// What the become shell (and a command on a channel of its own) runs: reads the script's line from
/// stdin and runs it. Constant, so the arguments of `sudo`/`su` and of `/bin/sh` say nothing about
/// the task.
pub const STUB: &str = "IFS= read -r __kp_script && eval \"$(printf '%b' \"$__kp_script\")\"";

/// A command ready for [`Remote::exec`](super::Remote::exec): its text and the stdin to give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped<'a> {
    pub command: String,
    pub stdin: Option<Cow<'a, [u8]>>,
}

/// Wrap `cmd`, which has no stdin of its own, so that it runs under `become_` with `env` exported.
/// Pure; the result is one string for `sh -c`. With become, the script's line reaches the stub
/// through a here-document. For a command with stdin use [`wrap_input`].
pub fn wrap(cmd: &str, become_: Option<&Become>, env: &[(String, String)]) -> String {
    let script = with_env(cmd, env);
    let Some(b) = become_ else {
        return script;
    };
    let line = script_line(&script);
    let mut end = String::from("KP_SCRIPT_END");
    while line == end {
        end.push('_');
    }
    format!("{} <<'{end}'\n{line}\n{end}\n", become_command(b))
}

/// Wrap `cmd` and its `stdin` so that it runs under `become_` with `env` exported. Pure. With
/// become, the script's line goes first on stdin, before the command's own bytes (one copy of
/// them); without, `stdin` is passed as it is.
pub fn wrap_input<'a>(
    cmd: &str,
    become_: Option<&Become>,
    env: &[(String, String)],
    stdin: Option<&'a [u8]>,
) -> Wrapped<'a> {
    let (Some(b), Some(data)) = (become_, stdin) else {
        return Wrapped {
            command: wrap(cmd, become_, env),
            stdin: stdin.map(Cow::Borrowed),
        };
    };
    let line = script_line(&with_env(cmd, env));
    let mut input = Vec::with_capacity(line.len() + 1 + data.len());
    input.extend_from_slice(line.as_bytes());
    input.push(b'\n');
    input.extend_from_slice(data);
    Wrapped {
        command: become_command(b),
        stdin: Some(Cow::Owned(input)),
    }
}

/// `script` as one line for [`STUB`]: `printf %b` turns `\\` back into a backslash and `\n` into a
/// newline, and no other escape can occur.
pub(super) fn script_line(script: &str) -> String {
    let mut line = String::with_capacity(script.len() + script.len() / 16 + 1);
    for c in script.chars() {
        match c {
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            c => line.push(c),
        }
    }
    line
}

/// The command that starts [`STUB`] as the become user (or fails clearly when it cannot).
fn become_command(b: &Become) -> String {
    let user = quote(b.target_user());
    let stub = quote(STUB);
    match b.method.as_str() {
        "sudo" => format!("sudo -n -H -u {user} -- /bin/sh -c {stub}"),
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
                 su -s /bin/sh {user} -c {stub}"
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
                "sudo -n -H -u root -- /bin/sh -c 'IFS= read -r __kp_script && eval \"$(printf '\\''%b'\\'' \"$__kp_script\")\"' \
                 <<'KP_SCRIPT_END'\nid -u\nKP_SCRIPT_END\n",
            ),
            (
                "whoami",
                Some(&sudo_default),
                vec![],
                "sudo -n -H -u root -- /bin/sh -c 'IFS= read -r __kp_script && eval \"$(printf '\\''%b'\\'' \"$__kp_script\")\"' \
                 <<'KP_SCRIPT_END'\nwhoami\nKP_SCRIPT_END\n",
            ),
            (
                "echo 'hi'\\",
                Some(&sudo_deploy),
                env(&[("X", "1")]),
                "sudo -n -H -u deploy -- /bin/sh -c 'IFS= read -r __kp_script && eval \"$(printf '\\''%b'\\'' \"$__kp_script\")\"' \
                 <<'KP_SCRIPT_END'\nexport X=1\\necho 'hi'\\\\\nKP_SCRIPT_END\n",
            ),
            // A script that reads like the here-document's end gets another end.
            (
                "KP_SCRIPT_END",
                Some(&sudo_root),
                vec![],
                "sudo -n -H -u root -- /bin/sh -c 'IFS= read -r __kp_script && eval \"$(printf '\\''%b'\\'' \"$__kp_script\")\"' \
                 <<'KP_SCRIPT_END_'\nKP_SCRIPT_END\nKP_SCRIPT_END_\n",
            ),
        ];
        for (cmd, b, e, want) in cases {
            assert_eq!(wrap(cmd, b, &e), want, "cmd {cmd:?} become {b:?}");
        }
        let su = wrap("psql -c 'select 1'", Some(&su_pg), &[]);
        assert!(
            su.ends_with(&format!(
                "su -s /bin/sh postgres -c {} <<'KP_SCRIPT_END'\npsql -c 'select 1'\nKP_SCRIPT_END\n",
                quote(STUB)
            )),
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
        let wrapped = wrap_input(
            "cat > \"$OUT\" && wc -c < \"$OUT\"",
            Some(&b),
            &[],
            Some(&data),
        );
        let dir = tempfile::tempdir().unwrap();
        let out_path = dir.path().join("o u't");
        let script = format!(
            "OUT={}; export OUT; {}",
            quote(out_path.to_str().unwrap()),
            without_sudo(&wrapped.command, "root")
        );
        let out = run_sh(&script, wrapped.stdin.as_deref());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "70000");
        assert_eq!(std::fs::read(&out_path).unwrap(), data);
        // Without become the input is passed on as it is, not copied.
        let plain = wrap_input("cat", None, &[], Some(&data));
        assert!(matches!(plain.stdin, Some(Cow::Borrowed(d)) if d == &data[..]));
        assert_eq!(wrap_input("cat", None, &[], None).stdin, None);
    }

    /// The shells a target may have as `/bin/sh`, where installed here.
    fn shells() -> Vec<&'static str> {
        ["/bin/sh", "/bin/dash", "/bin/bash", "/bin/busybox"]
            .into_iter()
            .filter(|s| std::path::Path::new(s).exists())
            .collect()
    }

    /// The stub's `read` takes the script's line and not one byte more, from a pipe and from a
    /// file (bash reads ahead there and seeks back), so the command sees exactly its own stdin.
    #[test]
    fn the_stub_reads_only_the_script_line_from_stdin() {
        let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let b = Become::sudo("root");
        let cmd = "printf 'first\\n'; cat; printf '\\n%s' \"$KP_E\"";
        let e = env(&[("KP_E", "a\\b\nc 'd' %s \\n")]);
        let wrapped = wrap_input(cmd, Some(&b), &e, Some(&data));
        let input = wrapped.stdin.as_deref().unwrap();
        let mut want = b"first\n".to_vec();
        want.extend_from_slice(&data);
        want.extend_from_slice(b"\na\\b\nc 'd' %s \\n");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stdin");
        std::fs::write(&file, input).unwrap();
        for sh in shells() {
            let args = |c: &mut Command| {
                c.arg(if sh.ends_with("busybox") { "sh" } else { "-c" });
                if sh.ends_with("busybox") {
                    c.arg("-c");
                }
                c.arg(STUB);
            };
            let mut piped = Command::new(sh);
            args(&mut piped);
            let mut child = piped
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let writer = {
                let input = input.to_vec();
                std::thread::spawn(move || {
                    // Small writes, so the line and the data arrive in separate pieces too.
                    for chunk in input.chunks(777) {
                        let _ = stdin.write_all(chunk);
                    }
                })
            };
            let out = child.wait_with_output().unwrap();
            writer.join().unwrap();
            assert!(out.stdout == want, "{sh}, pipe: {} bytes", out.stdout.len());
            let mut from_file = Command::new(sh);
            args(&mut from_file);
            let out = from_file
                .stdin(std::fs::File::open(&file).unwrap())
                .output()
                .unwrap();
            assert!(out.stdout == want, "{sh}, file: {} bytes", out.stdout.len());
        }
    }

    /// With become, neither the command, its environment nor anything else of the task is in the
    /// arguments of sudo/su or of the shell they start: only the constant stub is.
    #[test]
    fn secrets_never_reach_become_arguments() {
        let secret = "s3cr3t-value";
        let cmd = format!("useradd -p {secret} bob; echo {secret}");
        let e = env(&[("SECRET", secret)]);
        for b in [Become::sudo("root"), Become::su("deploy")] {
            let with_stdin = wrap_input(&cmd, Some(&b), &e, Some(b"data"));
            assert!(
                !with_stdin.command.contains(secret),
                "{}",
                with_stdin.command
            );
            assert!(with_stdin.command.ends_with(&quote(STUB)));
            let stdin = String::from_utf8(with_stdin.stdin.unwrap().into_owned()).unwrap();
            assert!(
                stdin.starts_with("export SECRET=s3cr3t-value\\nuseradd -p"),
                "{stdin}"
            );
            assert!(stdin.ends_with("\ndata"), "{stdin}");
            // Without stdin of its own, the line comes in a here-document after the arguments.
            let no_stdin = wrap(&cmd, Some(&b), &e);
            let (argv, heredoc) = no_stdin.split_once(" <<'KP_SCRIPT_END'\n").unwrap();
            assert!(!argv.contains(secret), "{argv}");
            assert!(argv.ends_with(&quote(STUB)), "{argv}");
            assert!(heredoc.contains(secret) && heredoc.ends_with("\nKP_SCRIPT_END\n"));
            assert_eq!(heredoc.lines().count(), 2, "{heredoc}");
        }
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
