//! Writing files on the target: wanted attributes ([`Attrs`]: mode, owner, group) and the commands
//! that fix them, and the atomic write script (temp file in the destination directory, attributes,
//! optional backup and validation, rename).

use super::args::Args;
use super::mode::Mode;
use super::params::Param;
use super::probe::{FileState, Kind};
use super::safepath;
use super::ModuleError;
use crate::shell::base64_lines;
use crate::shell::quote;

/// The parameters of every module that writes a file: the attributes [`Attrs`] reads, and the
/// ones knockplay pins or refuses (writes are always atomic; chattr flags are not applied).
pub const FILE_COMMON: &[Param] = &[
    Param::mode("mode"),
    Param::str("owner").word(),
    Param::str("group").word(),
    Param::bool("unsafe_writes").only("false"),
    Param::str("attributes").refused("file attributes (chattr flags) are not applied"),
    Param::str("seuser").refused(NO_SELINUX),
    Param::str("serole").refused(NO_SELINUX),
    Param::str("setype").refused(NO_SELINUX),
    Param::str("selevel").refused(NO_SELINUX),
];

/// Why the SELinux parameters of the file modules are refused (the task fails when it runs).
pub const NO_SELINUX: &str = "SELinux contexts are not set";

/// Wanted ownership and permissions of a path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl Attrs {
    /// `mode`, `owner` and `group` (empty owner/group mean "leave as is").
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        Ok(Self {
            mode: args.mode("mode")?,
            owner: args.str("owner")?.filter(|s| !s.is_empty()),
            group: args.str("group")?.filter(|s| !s.is_empty()),
        })
    }

    /// [`from_args`](Self::from_args) for the modules other than `copy`, where `mode: preserve`
    /// (the local source's mode) has no meaning.
    pub fn from_args_without_preserve(args: &Args<'_>) -> Result<Self, ModuleError> {
        let attrs = Self::from_args(args)?;
        if attrs.mode == Some(Mode::Preserve) {
            return Err(ModuleError::Args(
                "mode=preserve is only valid for copy".into(),
            ));
        }
        Ok(attrs)
    }

    /// The one command giving `target` (a shell word, already quoted) the wanted owner and group:
    /// `chown o:g` for both (names cannot hold ':', the passwd separator), `chown o` or `chgrp g`
    /// for one; `None` when neither is wanted.
    pub fn owner_command(&self, target: &str) -> Option<String> {
        match (&self.owner, &self.group) {
            (Some(o), Some(g)) => Some(format!("chown {} {target}", quote(&format!("{o}:{g}")))),
            (Some(o), None) => Some(format!("chown {} {target}", quote(o))),
            (None, Some(g)) => Some(format!("chgrp {} {target}", quote(g))),
            (None, None) => None,
        }
    }

    /// Shell commands that bring `path` (currently `state`) to these attributes; empty when it
    /// already has them. `-h` variants act on a symlink itself; otherwise the change follows no
    /// link planted on the way or at the entry ([`safepath::fix_script`]).
    pub fn fix_commands(&self, path: &str, state: &FileState, on_link: bool) -> Vec<String> {
        let mut cmds = Vec::new();
        if let Some(o) = &self.owner {
            if !state.owner_is(o) {
                cmds.push(format!(
                    "chown{} {}",
                    if on_link { " -h" } else { "" },
                    quote(o)
                ));
            }
        }
        if let Some(g) = &self.group {
            if !state.group_is(g) {
                cmds.push(format!(
                    "chgrp{} {}",
                    if on_link { " -h" } else { "" },
                    quote(g)
                ));
            }
        }
        // Symlink permissions are meaningless on Linux; never chmod through a link we act on.
        if let (Some(m), false) = (&self.mode, on_link) {
            let want = m.resolve(state.mode, state.kind == Kind::Directory);
            if want != state.mode && *m != Mode::Preserve {
                cmds.push(format!("chmod {want:04o}"));
            }
        }
        if cmds.is_empty() {
            return cmds;
        }
        if on_link {
            // lchown never follows the link: safe by path.
            let q = quote(path);
            return cmds.into_iter().map(|c| format!("{c} {q}")).collect();
        }
        let (dir, base) = split_path(path);
        vec![safepath::fix_script(&dir, &base, &cmds)]
    }
}

/// How to write a file's content atomically.
#[derive(Debug, Clone, Default)]
pub struct WriteSpec {
    pub dest: String,
    /// Wanted attributes of the result.
    pub attrs: Attrs,
    /// The current state of `dest` (attributes are preserved when it exists and none are given).
    pub existing: Option<FileState>,
    /// Keep a timestamped copy of the old file (`dest.PID.YYYY-MM-DD@HH:MM:SS~`), printed as
    /// `backup_file=...`.
    pub backup: bool,
    /// Create missing parent directories first.
    pub mkdirs: bool,
    /// Mode of the directories `mkdirs` creates (`directory_mode`); the umask's otherwise.
    pub dir_mode: Option<u32>,
    /// Resolved mode from a local source (`mode=preserve`).
    pub preserve_mode: Option<u32>,
    /// Command to validate the temp file with (`%s` replaced by its path).
    pub validate: Option<String>,
    /// Where the bytes come from (stdin by default).
    pub source: WriteSource,
}

/// Content up to this size travels inside the write script, decoded straight into the temporary
/// file (no `cat` and no stdin pipe on the target: two processes fewer per file); larger content
/// goes over stdin, so the target's shell never holds a large document (and the script stays
/// below [`super::probe::ARG_MAX_SAFE`] as base64).
pub const INLINE_MAX: usize = 32 * 1024;

/// The source for new content the controller sends: inline when small (see [`INLINE_MAX`]), with
/// the stdin to run the script with (`None` when inline).
pub fn sent(data: &[u8]) -> (WriteSource, Option<Vec<u8>>) {
    if data.len() <= INLINE_MAX {
        (WriteSource::Inline(data.to_vec()), None)
    } else {
        (WriteSource::Stdin, Some(data.to_vec()))
    }
}

/// Inline content up to this size is written by the shell's `printf` (at most 4 characters per
/// byte: the script stays far below [`super::probe::ARG_MAX_SAFE`]); larger inline content is
/// decoded by `base64 -d` from a here-document.
pub const PRINTF_MAX: usize = 8 * 1024;

/// Where [`write_file_script`] reads the new content from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WriteSource {
    /// The command's stdin (one file per round trip, no encoding overhead).
    #[default]
    Stdin,
    /// A base64 here-document inside the script (several files in one script).
    Inline(Vec<u8>),
    /// A file already on the target (`remote_src`).
    Remote(String),
    /// A file on the target whose path is in this shell variable (a download's temp file).
    RemoteVar(String),
}

/// The `validate` parameter: a command that must accept the new file (`%s` is its path) before
/// it replaces the old one.
pub fn validate_arg(args: &Args<'_>) -> Result<Option<String>, ModuleError> {
    let validate = args.str("validate")?.filter(|v| !v.is_empty());
    if let Some(v) = &validate {
        if !v.contains("%s") {
            return Err(ModuleError::Args(format!("validate must contain %s: {v}")));
        }
    }
    Ok(validate)
}

/// One shell command that reads the new content into a temporary file, gives it its mode, owner
/// and group, optionally validates it and backs up the old file, and renames it over `dest`
/// atomically. Where the destination directory is not root's alone, the temporary file lives in
/// a private directory and nothing follows a link planted on the way ([`super::safepath`]). Pure.
pub fn write_file_script(spec: &WriteSpec) -> String {
    let (dir, base) = split_path(&spec.dest);
    let shown_dir = if dir == "/" {
        String::new()
    } else {
        dir.clone()
    };
    let mut s = String::from("(\n");
    s.push_str(safepath::LIB);
    s.push_str(&format!(
        "kp_n={}; kp_src_dir=$PWD\nkp_enter {} {} {} || exit 1\n",
        quote(&base),
        quote(&dir),
        if spec.mkdirs { 1 } else { 0 },
        spec.dir_mode
            .map(|m| format!("{m:04o}"))
            .unwrap_or_else(|| "''".into())
    ));
    let existing = spec.existing.as_ref().filter(|e| e.kind == Kind::File);
    let mode = match (&spec.attrs.mode, spec.preserve_mode) {
        (Some(Mode::Preserve), Some(m)) => Some(m),
        (Some(Mode::Preserve), None) => existing.map(|e| e.mode),
        (Some(m), _) => Some(m.resolve(existing.map_or(0o644, |e| e.mode), false)),
        (None, _) => existing.map(|e| e.mode),
    };
    // The temporary file is created with its final permissions where the umask can give them
    // (no execute or special bits): no `chmod` process. A new file without a mode keeps the
    // umask it has (0666 & ~umask, as Ansible). Otherwise it is created 0600 and changed.
    let (umask, chmod) = match mode {
        None => (None, None),
        Some(m) if m & !0o666 == 0 => (Some(0o777 & !m), None),
        Some(m) => (Some(0o077), Some(m)),
    };
    // What runs after the file is made (validate, backup) keeps the umask of a private file.
    let (um_pre, um_post) = match umask {
        Some(u) => (format!("umask {u:03o}; "), "umask 077; "),
        None => (String::new(), ""),
    };
    // The temporary file is made by the shell (`set -C`: O_EXCL, never through a planted
    // name), as mktemp would, without a process for it; its name carries the shell's PID, a
    // counter steps past leftovers of an earlier run.
    let stem = quote(&format!(".{}.kp.", safepath::temp_stem(&base)));
    s.push_str(&format!(
        "if [ $kp_safe = 1 ]; then {um_pre}set -C; kp_i=0; kp_f={stem}$$; \
         until true 2>/dev/null > \"$kp_f\"; do kp_i=$((kp_i + 1)); \
         if [ $kp_i -ge 20 ]; then true > \"$kp_f\"; exit 1; fi; kp_f={stem}$$.$kp_i; done; \
         set +C; {um_post}kp_up=; \
         else kp_private {} || exit 1; kp_f=f; kp_up=../; {um_pre}true > f; {um_post}fi\n",
        quote(&safepath::temp_stem(&base)),
    ));
    let mut steps = vec![match &spec.source {
        WriteSource::Stdin => "cat > \"$kp_f\"".to_string(),
        // Small content: the shell's own printf, no process at all.
        WriteSource::Inline(data) if data.len() <= PRINTF_MAX => {
            format!("printf {} > \"$kp_f\"", crate::shell::printf_literal(data))
        }
        WriteSource::Inline(_) => "base64 -d > \"$kp_f\" <<'__KP_EOF__'".to_string(),
        WriteSource::Remote(src) if src.starts_with('/') => {
            format!("cat -- {} > \"$kp_f\"", quote(src))
        }
        WriteSource::Remote(src) => format!("cat -- \"$kp_src_dir\"/{} > \"$kp_f\"", quote(src)),
        WriteSource::RemoteVar(var) => format!("cat -- \"${var}\" > \"$kp_f\""),
    }];
    if let Some(m) = chmod {
        steps.push(format!("chmod {m:04o} \"$kp_f\""));
    }
    if let Some(e) = existing {
        if spec.attrs.owner.is_none() || spec.attrs.group.is_none() {
            // Keep the old owner/group (only possible as root; harmless to try otherwise). When
            // the old file and the new one are both the running user's and group's (the
            // shell's `test -O/-G`), they already match: no `chown` process.
            steps.push(format!(
                "{{ {{ [ -O \"$kp_up$kp_n\" ] && [ -G \"$kp_up$kp_n\" ] && [ -O \"$kp_f\" ] && [ -G \"$kp_f\" ]; }} \
                 || chown {}:{} \"$kp_f\" 2>/dev/null || :; }}",
                e.uid, e.gid
            ));
        }
    }
    steps.extend(spec.attrs.owner_command("\"$kp_f\""));
    if let Some(v) = &spec.validate {
        steps.push(format!("{{ {}; }}", v.replace("%s", "\"$PWD/$kp_f\"")));
    }
    if spec.backup && existing.is_some() {
        steps.push(format!(
            "kp_b=\"$kp_n.$$.$(date +%Y-%m-%d@%H:%M:%S)~\" && cp -pP -- \"$kp_up$kp_n\" \"$kp_f.b\" \
             && mv -fT -- \"$kp_f.b\" \"$kp_up$kp_b\" && printf 'backup_file=%s/%s\\n' {} \"$kp_b\"",
            quote(&shown_dir)
        ));
    }
    steps.push("mv -fT -- \"$kp_f\" \"$kp_up$kp_n\"".into());
    s.push_str(&format!("{{ {}; }}; kp_rc=$?\n", steps.join(" && ")));
    if let Some(data) = spec.source.inline_heredoc() {
        s.push_str(&base64_lines(data));
        s.push_str("__KP_EOF__\n");
    }
    s.push_str(
        "for kp_x in \"$kp_f\" \"$kp_f.b\"; do if [ -e \"$kp_x\" ] || [ -L \"$kp_x\" ]; then rm -f -- \"$kp_x\"; fi; done\n\
         [ $kp_safe = 1 ] || { cd .. && rmdir -- \"$kp_w\"; }\nexit $kp_rc\n) || exit $?",
    );
    s
}

impl WriteSource {
    /// The inline content that travels as a base64 here-document (too large for `printf`).
    fn inline_heredoc(&self) -> Option<&Vec<u8>> {
        match self {
            WriteSource::Inline(data) if data.len() > PRINTF_MAX => Some(data),
            _ => None,
        }
    }
}

/// `("/etc", "hosts")` for `/etc/hosts`; `(".", "x")` for a bare name.
pub fn split_path(path: &str) -> (String, String) {
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    match trimmed.rfind('/') {
        Some(0) => ("/".into(), trimmed[1..].to_string()),
        Some(i) => (trimmed[..i].to_string(), trimmed[i + 1..].to_string()),
        None => (".".into(), trimmed.to_string()),
    }
}

/// The parent directory of `path` (`/` for `/x`, `.` for a bare name).
pub fn dirname(path: &str) -> String {
    split_path(path).0
}

/// The last component of `path`.
pub fn basename(path: &str) -> String {
    split_path(path).1
}

/// Hex sha256 of bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::super::testing::LocalRemote;
    use super::*;
    use std::collections::HashMap;

    /// Parse `key=value` lines (used for small structured outputs).
    pub fn kv_lines(text: &str) -> HashMap<String, String> {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn attrs_fix_only_what_differs() {
        let st = FileState {
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            owner: "root".into(),
            group: "root".into(),
            ..FileState::default()
        };
        let a = Attrs {
            mode: Some(Mode::Octal(0o644)),
            owner: Some("0".into()),
            group: Some("root".into()),
        };
        assert!(a.fix_commands("/f", &st, false).is_empty());
        let a = Attrs {
            mode: Some(Mode::Symbolic("u+x".into())),
            owner: Some("www-data".into()),
            group: None,
        };
        let fix = a.fix_commands("/a b", &st, false);
        assert_eq!(fix.len(), 1, "{fix:?}");
        assert!(
            fix[0].contains("kp_fix 'a b' 'chown www-data' 'chmod 0744'"),
            "{}",
            fix[0]
        );
        assert_eq!(
            a.fix_commands("/a b", &st, true),
            vec!["chown -h www-data '/a b'"]
        );
    }

    #[test]
    fn write_script_is_atomic_and_keeps_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        let d = dest.to_str().unwrap().to_string();
        let mut r = LocalRemote::default();
        let run = |r: &mut LocalRemote, spec: &WriteSpec, data: &[u8]| {
            crate::ssh::Remote::exec(r, &write_file_script(spec), Some(data), None).unwrap()
        };
        // New file with an explicit mode.
        let spec = WriteSpec {
            dest: d.clone(),
            attrs: Attrs {
                mode: Some(Mode::Octal(0o640)),
                ..Attrs::default()
            },
            ..WriteSpec::default()
        };
        let o = run(&mut r, &spec, b"one\n");
        assert_eq!(o.rc, 0, "{}", o.stderr_str());
        assert_eq!(std::fs::read(&dest).unwrap(), b"one\n");
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&dest), 0o640);
        // Execute and special bits cannot come from the umask: the file is changed after.
        let exe = dir.path().join("run.sh");
        let spec = WriteSpec {
            dest: exe.to_str().unwrap().into(),
            attrs: Attrs {
                mode: Some(Mode::Octal(0o4750)),
                ..Attrs::default()
            },
            ..WriteSpec::default()
        };
        let o = run(&mut r, &spec, b"#!/bin/sh\n");
        assert_eq!(o.rc, 0, "{}", o.stderr_str());
        assert_eq!(mode(&exe), 0o4750);
        // Existing file, no mode given: mode kept; backup made.
        let existing = FileState {
            kind: Kind::File,
            mode: 0o640,
            ..FileState::default()
        };
        let spec = WriteSpec {
            dest: d.clone(),
            existing: Some(existing),
            backup: true,
            ..WriteSpec::default()
        };
        let o = run(&mut r, &spec, b"two\n");
        assert_eq!(o.rc, 0, "{}", o.stderr_str());
        assert_eq!(std::fs::read(&dest).unwrap(), b"two\n");
        assert_eq!(mode(&dest), 0o640);
        let backup = kv_lines(&o.stdout_str())["backup_file"].clone();
        assert!(
            backup.starts_with(&format!("{d}.")) && backup.ends_with('~'),
            "{backup}"
        );
        assert_eq!(std::fs::read(&backup).unwrap(), b"one\n");
        // A failing validate leaves the old file and no temp files behind.
        let spec = WriteSpec {
            dest: d.clone(),
            validate: Some("grep -q good %s".into()),
            ..WriteSpec::default()
        };
        let o = run(&mut r, &spec, b"bad\n");
        assert_ne!(o.rc, 0);
        assert_eq!(std::fs::read(&dest).unwrap(), b"two\n");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".kp."))
            .collect();
        assert!(leftovers.is_empty());
        // New file without mode: 0666 & ~umask (the test process umask is inherited).
        let spec = WriteSpec {
            dest: dir.path().join("sub/new").to_str().unwrap().into(),
            mkdirs: true,
            ..WriteSpec::default()
        };
        let o = run(&mut r, &spec, b"");
        assert_eq!(o.rc, 0, "{}", o.stderr_str());
        let umask = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask")
            .output()
            .unwrap();
        let umask = u32::from_str_radix(String::from_utf8_lossy(&umask.stdout).trim(), 8).unwrap();
        assert_eq!(mode(&dir.path().join("sub/new")), 0o666 & !umask);
    }

    #[test]
    fn paths_split() {
        assert_eq!(split_path("/etc/hosts"), ("/etc".into(), "hosts".into()));
        assert_eq!(split_path("/x"), ("/".into(), "x".into()));
        assert_eq!(split_path("x"), (".".into(), "x".into()));
        assert_eq!(split_path("/a/b/"), ("/a".into(), "b".into()));
    }
}
