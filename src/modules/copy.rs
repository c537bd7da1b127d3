//! `copy`: put a local file, a local directory tree or literal `content` on the target.
//!
//! One probe round trip reads the destination's state and sha256; the content is transferred only
//! when the checksums differ, streamed over stdin into a temp file that is renamed over the
//! destination atomically (same directory) together with mode/owner/group in one command. A
//! directory tree is probed in one round trip and written in one script (files as base64
//! here-documents). The `checksum` result key is the sha256 of the content (Ansible reports sha1).

use std::path::{Path, PathBuf};

use super::args::Args;
use super::coerce::to_text;
use super::mode::Mode;
use super::plan::{diff_text, finish, Outcome, Plan};
use super::probe::{probe, FileState, Kind, ProbeReq, DIFF_MAX};
use super::write::{
    basename, dirname, sent, sha256_hex, validate_arg, write_file_script, Attrs, WriteSource,
    WriteSpec, FILE_COMMON,
};
use super::{FileDiff, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;

pub struct Copy;

const SPEC: Spec = Spec::new(
    "copy",
    &[
        Param::path("src"),
        Param::raw("content"),
        Param::bool("local_follow").only("true"),
        Param::bool("remote_src").default("false"),
        Param::mode("directory_mode"),
        Param::bool("decrypt").only("false"),
    ],
)
.shared(&[COPY_COMMON, FILE_COMMON]);

/// The parameters `copy` and `template` share (read by [`CopyArgs`]).
pub const COPY_COMMON: &[Param] = &[
    Param::path("dest").required(),
    Param::bool("force").default("true").aliases(&["thirsty"]),
    Param::bool("backup").default("false"),
    Param::bool("follow").default("false"),
    Param::str("validate"),
];

impl Module for Copy {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let m = args.module();
        args.exclusive("src", "content")?;
        let mut ca = CopyArgs::from_args(args)?;
        ca.directory_mode = args.mode("directory_mode")?;
        let src = args.str("src")?.filter(|s| !s.is_empty());
        let content = match args.value("content")? {
            None => None,
            // Ansible writes a dict/list content as JSON, other values as text.
            // Ansible writes a list or dict given as content as `json.dumps` prints it.
            Some(v @ (Value::Array(_) | Value::Object(_))) => {
                Some(crate::playbook::template::pyfmt::json_dumps(&v, None, false).into_bytes())
            }
            Some(v) => Some(to_text(&v).map_err(ModuleError::Args)?.into_bytes()),
        };
        match (src, content) {
            (None, None) => Err(ModuleError::Args(
                "one of 'src' or 'content' is required".into(),
            )),
            (Some(_), Some(_)) => Err(ModuleError::Args(
                "parameters are mutually exclusive: src|content".into(),
            )),
            (None, Some(data)) => {
                if ca.attrs.mode == Some(Mode::Preserve) {
                    return Err(ModuleError::Args(
                        "mode=preserve needs 'src', not 'content'".into(),
                    ));
                }
                if ca.dest.ends_with('/') {
                    return Err(ModuleError::Args(
                        "can not use content with a dir as dest".into(),
                    ));
                }
                let new = NewContent::from_bytes(data, None);
                copy_file(ctx, m, &ca, &new)
            }
            (Some(src), None) if args.bool("remote_src")? => copy_remote(ctx, m, &ca, &src),
            (Some(src), None) => {
                let name = if src.len() > 1 {
                    src.trim_end_matches('/')
                } else {
                    &src
                };
                let path = ModuleCtx::find_local(&ctx.file_search, name)
                    .ok_or_else(|| not_found(&src, &ctx.file_search))?;
                if path.is_dir() {
                    return copy_dir(ctx, &ca, &path, src.ends_with('/'));
                }
                let data = crate::vault::read_file(&path).map_err(ModuleError::Local)?;
                if ca.attrs.mode == Some(Mode::Preserve) {
                    ca.attrs.mode = Some(Mode::Octal(local_mode(&path)));
                }
                let mut new = NewContent::from_bytes(data, Some(basename(name)));
                new.src = Some(path.display().to_string());
                copy_file(ctx, m, &ca, &new)
            }
        }
    }
}

/// "Could not find or access" with the searched directories, as Ansible says it.
pub fn not_found(name: &str, search: &[PathBuf]) -> ModuleError {
    let dirs: Vec<String> = search.iter().map(|d| d.display().to_string()).collect();
    ModuleError::Local(format!(
        "Could not find or access '{name}'\nSearched in:\n\t{}",
        dirs.join("\n\t")
    ))
}

fn local_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|md| md.permissions().mode() & 0o7777)
        .unwrap_or(0o644)
}

/// Validated arguments shared by `copy` and `template`.
#[derive(Debug, Clone, Default)]
pub struct CopyArgs {
    pub dest: String,
    pub attrs: Attrs,
    pub force: bool,
    pub backup: bool,
    pub follow: bool,
    pub validate: Option<String>,
    pub directory_mode: Option<Mode>,
}

impl CopyArgs {
    /// The arguments `copy` and `template` share (`directory_mode` is `copy`'s alone).
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let dest = args.req_str("dest")?;
        if dest.is_empty() {
            return Err(ModuleError::Args(
                "parameter 'dest' must not be empty".into(),
            ));
        }
        let validate = validate_arg(args)?;
        Ok(Self {
            dest,
            attrs: Attrs::from_args(args)?,
            force: args.bool("force")?,
            backup: args.bool("backup")?,
            follow: args.bool("follow")?,
            validate,
            directory_mode: None,
        })
    }
}

/// The content to put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContent {
    pub sha256: String,
    pub size: u64,
    /// Bytes to send (None for `remote_src`).
    pub data: Option<Vec<u8>>,
    /// `remote_src`: the file on the target.
    pub remote: Option<String>,
    /// Name used when `dest` is a directory (basename of `src`).
    pub basename: Option<String>,
    /// Reported as `src`.
    pub src: Option<String>,
}

impl NewContent {
    pub fn from_bytes(data: Vec<u8>, basename: Option<String>) -> Self {
        Self {
            sha256: sha256_hex(&data),
            size: data.len() as u64,
            data: Some(data),
            remote: None,
            basename,
            src: None,
        }
    }
}

/// Probe requests for a single-file copy: dest, dest/basename, parent of dest.
pub fn file_probe_reqs(ca: &CopyArgs, basename: Option<&str>, diff: bool) -> Vec<ProbeReq> {
    let trimmed = trim_dest(&ca.dest);
    let req = |p: String| ProbeReq {
        follow: ca.follow,
        sha256: true,
        content_max: diff.then_some(DIFF_MAX),
        ..ProbeReq::new(p)
    };
    vec![
        req(trimmed.clone()),
        req(join(&trimmed, basename.unwrap_or(""))),
        // Only asked whether it is a directory (when dest does not exist).
        ProbeReq {
            kind_only: true,
            ..ProbeReq::new(dirname(&trimmed))
        },
    ]
}

fn trim_dest(dest: &str) -> String {
    if dest.len() > 1 {
        dest.trim_end_matches('/').to_string()
    } else {
        dest.to_string()
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Decide what to do for a single file. Pure: `states` come from [`file_probe_reqs`].
pub fn plan_file(ca: &CopyArgs, new: &NewContent, states: &[FileState]) -> Result<Outcome, String> {
    let trimmed = trim_dest(&ca.dest);
    let slash = ca.dest.ends_with('/') && ca.dest.len() > 1;
    let (dest, st, mkdirs) = match (&new.basename, slash, states[0].kind) {
        (Some(b), true, k) => (join(&trimmed, b), &states[1], k == Kind::Absent),
        (Some(b), false, Kind::Directory) => (join(&trimmed, b), &states[1], false),
        (None, _, Kind::Directory) => {
            return Err("can not use content with a dir as dest".to_string())
        }
        _ => (trimmed.clone(), &states[0], false),
    };
    if slash && states[0].exists() && states[0].kind != Kind::Directory {
        return Err(format!("dest '{}' is not a directory", ca.dest));
    }
    if !mkdirs && !st.exists() && dest == trimmed && states[2].kind != Kind::Directory {
        return Err(format!(
            "Destination directory {} does not exist",
            dirname(&trimmed)
        ));
    }
    let base = Outcome::new(Plan::NoChange)
        .set("dest", dest.as_str())
        .set("checksum", new.sha256.as_str())
        .set("size", new.size)
        .set("state", "file");
    let base = match &new.src {
        Some(s) => base.set("src", s.as_str()),
        None => base,
    };
    if st.exists() && !ca.force {
        return Ok(base.msg("file already exists"));
    }
    if st.kind == Kind::Directory {
        return Err(format!("dest '{dest}' is a directory"));
    }
    if ca.follow {
        st.check_follow(&dest)?;
    }
    // Without follow, a symlink at dest is replaced by a regular file even when the content it
    // points to is the same (Ansible compares against the link itself, which has no checksum).
    let same = st.sha256.as_deref() == Some(new.sha256.as_str())
        && (st.kind == Kind::File || (st.is_link && ca.follow));
    if same {
        return Ok(Outcome {
            plan: Plan::commands(ca.attrs.fix_commands(&dest, st, false)),
            ..base
        });
    }
    if st.unreadable {
        return Err(format!("cannot read the current content of {dest}"));
    }
    // With follow, a link is kept and its target is written.
    let target = match (ca.follow, st.is_link, &st.real_path) {
        (true, true, Some(real)) => real.clone(),
        _ => dest.clone(),
    };
    let (source, stdin) = match (&new.remote, &new.data) {
        (Some(r), _) => (WriteSource::Remote(r.clone()), None),
        (None, Some(d)) => sent(d),
        (None, None) => (WriteSource::Stdin, None),
    };
    let mut spec = WriteSpec {
        dest: target,
        attrs: ca.attrs.clone(),
        // A link being replaced passes on its target's attributes, as `chmod --reference` would.
        existing: (st.sha256.is_some()).then(|| match (st.is_link, st.link_target_attrs) {
            (true, Some((mode, uid, gid))) => FileState {
                kind: Kind::File,
                mode: mode & 0o777,
                uid,
                gid,
                ..st.clone()
            },
            _ => FileState {
                kind: Kind::File,
                ..st.clone()
            },
        }),
        backup: ca.backup,
        mkdirs,
        dir_mode: None,
        preserve_mode: None,
        validate: ca.validate.clone(),
        source,
    };
    if let (Some(dm), true) = (&ca.directory_mode, mkdirs) {
        // New directories get directory_mode, set by the write script as it creates them.
        spec.dir_mode = Some(dm.resolve(0o755, true));
    }
    Ok(Outcome {
        plan: change(write_file_script(&spec), stdin, new, st, &dest),
        ..base
    })
}

fn change(
    script: String,
    stdin: Option<Vec<u8>>,
    new: &NewContent,
    st: &FileState,
    dest: &str,
) -> Plan {
    let before = st.content.as_deref().map(diff_text).unwrap_or_default();
    let after = new.data.as_deref().map(diff_text).unwrap_or_default();
    Plan::Change {
        script,
        stdin,
        diff: Some(FileDiff {
            path: dest.to_string(),
            before,
            after,
        }),
    }
}

/// Single-file copy (also used by `template`): one probe, then at most one write.
pub fn copy_file(
    ctx: &mut ModuleCtx<'_>,
    m: &str,
    ca: &CopyArgs,
    new: &NewContent,
) -> Result<ModuleResult, ModuleError> {
    let reqs = file_probe_reqs(ca, new.basename.as_deref(), ctx.diff);
    let states = match probe(ctx, m, &reqs)? {
        Ok(s) => s,
        Err(e) => return Ok(ModuleResult::failed(e)),
    };
    match plan_file(ca, new, &states) {
        Ok(outcome) => finish(ctx, outcome),
        // Ansible's copy looks for the parent only when it writes: check mode reports a change.
        Err(msg) if ctx.check_mode && msg.starts_with("Destination directory ") => {
            Ok(ModuleResult::changed().set("dest", trim_dest(&ca.dest).as_str()))
        }
        Err(msg) => Ok(ModuleResult::failed(msg)),
    }
}

/// `remote_src: yes`: copy a file that is already on the target.
fn copy_remote(
    ctx: &mut ModuleCtx<'_>,
    m: &str,
    ca: &CopyArgs,
    src: &str,
) -> Result<ModuleResult, ModuleError> {
    let st = match probe(
        ctx,
        m,
        &[ProbeReq {
            follow: true,
            sha256: true,
            content_max: ctx.diff.then_some(DIFF_MAX),
            ..ProbeReq::new(src)
        }],
    )? {
        Ok(mut s) => s.remove(0),
        Err(e) => return Ok(ModuleResult::failed(e)),
    };
    let Some(sha) = st.sha256.clone().filter(|_| st.kind == Kind::File) else {
        return Ok(ModuleResult::failed(format!(
            "Source {src} not found or not a regular file"
        )));
    };
    let new = NewContent {
        sha256: sha,
        size: st.size,
        data: None,
        remote: Some(src.to_string()),
        basename: Some(basename(src)),
        src: Some(src.to_string()),
    };
    let mut r = copy_file(ctx, m, ca, &new)?;
    if let Some(d) = r.diff.first_mut() {
        d.after = st.content.as_deref().map(diff_text).unwrap_or_default();
    }
    Ok(r)
}

/// One entry of a local directory tree, relative to the copied root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalEntry {
    Dir(String),
    File {
        rel: String,
        data: Vec<u8>,
        mode: u32,
    },
}

/// Walk a local directory (following links, skipping special files), sorted by path.
pub fn walk_local(root: &Path) -> Result<Vec<LocalEntry>, ModuleError> {
    fn walk(root: &Path, rel: &str, out: &mut Vec<LocalEntry>) -> Result<(), ModuleError> {
        let dir = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|e| ModuleError::Local(format!("cannot read {}: {e}", dir.display())))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let r = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let p = root.join(&r);
            let Ok(md) = std::fs::metadata(&p) else {
                continue;
            };
            if md.is_dir() {
                out.push(LocalEntry::Dir(r.clone()));
                walk(root, &r, out)?;
            } else if md.is_file() {
                let data = crate::vault::read_file(&p).map_err(ModuleError::Local)?;
                out.push(LocalEntry::File {
                    rel: r,
                    data,
                    mode: local_mode(&p),
                });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, "", &mut out)?;
    Ok(out)
}

/// Copy a local directory: `src/` copies its contents into dest, `src` copies the directory
/// itself (dest/src). One probe, one script.
fn copy_dir(
    ctx: &mut ModuleCtx<'_>,
    ca: &CopyArgs,
    src: &Path,
    contents_only: bool,
) -> Result<ModuleResult, ModuleError> {
    let entries = walk_local(src)?;
    let root = if contents_only {
        trim_dest(&ca.dest)
    } else {
        let name = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        join(&trim_dest(&ca.dest), &name)
    };
    let reqs = dir_probe_reqs(&root, &entries);
    let states = match probe(ctx, "copy", &reqs)? {
        Ok(s) => s,
        Err(e) => return Ok(ModuleResult::failed(e)),
    };
    let outcome = match plan_dir(ca, &root, &entries, &states) {
        Ok(o) => o.set("src", src.display().to_string()),
        Err(e) => return Ok(ModuleResult::failed(e)),
    };
    finish(ctx, outcome)
}

/// Probe requests for a tree: the root, then one per entry.
pub fn dir_probe_reqs(root: &str, entries: &[LocalEntry]) -> Vec<ProbeReq> {
    let mut reqs = vec![ProbeReq::new(root)];
    for e in entries {
        reqs.push(match e {
            LocalEntry::Dir(rel) => ProbeReq::new(join(root, rel)),
            LocalEntry::File { rel, .. } => ProbeReq {
                sha256: true,
                ..ProbeReq::new(join(root, rel))
            },
        });
    }
    reqs
}

/// Plan a tree copy. Pure. `states[0]` is the root, then one per entry.
pub fn plan_dir(
    ca: &CopyArgs,
    root: &str,
    entries: &[LocalEntry],
    states: &[FileState],
) -> Result<Outcome, String> {
    let mut lines: Vec<String> = Vec::new();
    let mkdir = |path: &str, lines: &mut Vec<String>| {
        let q = quote(path);
        let mut l = format!("mkdir -p -- {q}");
        if let Some(dm) = &ca.directory_mode {
            l.push_str(&format!(" && chmod {:04o} {q}", dm.resolve(0o755, true)));
        }
        lines.push(format!("{{ {l}; }} || exit 1"));
    };
    match states[0].kind {
        Kind::Absent => mkdir(root, &mut lines),
        Kind::Directory => {}
        other => {
            return Err(format!(
                "dest '{root}' exists and is a {}, not a directory",
                other.as_str()
            ))
        }
    }
    for (e, st) in entries.iter().zip(&states[1..]) {
        match e {
            LocalEntry::Dir(rel) => match st.kind {
                Kind::Absent => mkdir(&join(root, rel), &mut lines),
                Kind::Directory => {}
                other => {
                    return Err(format!(
                        "'{}' exists and is a {}, not a directory",
                        join(root, rel),
                        other.as_str()
                    ))
                }
            },
            LocalEntry::File { rel, data, mode } => {
                let dest = join(root, rel);
                if st.exists() && !ca.force {
                    continue;
                }
                if st.kind == Kind::Directory {
                    return Err(format!("dest '{dest}' is a directory"));
                }
                let mut attrs = ca.attrs.clone();
                if attrs.mode == Some(Mode::Preserve) {
                    attrs.mode = Some(Mode::Octal(*mode));
                }
                if st.kind == Kind::File && st.sha256.as_deref() == Some(sha256_hex(data).as_str())
                {
                    for c in attrs.fix_commands(&dest, st, false) {
                        lines.push(format!("{c} || exit 1"));
                    }
                    continue;
                }
                lines.push(write_file_script(&WriteSpec {
                    dest,
                    attrs,
                    existing: st.sha256.is_some().then(|| FileState {
                        kind: Kind::File,
                        ..st.clone()
                    }),
                    backup: ca.backup,
                    source: WriteSource::Inline(data.clone()),
                    ..WriteSpec::default()
                }));
            }
        }
    }
    let plan = if lines.is_empty() {
        Plan::NoChange
    } else {
        // Each write and fix carries the safe-path functions; define them once for the tree.
        let lib = crate::modules::safepath::LIB;
        let mut script = lines.join("\n").replace(lib, "");
        if script.len() < lines.iter().map(String::len).sum::<usize>() {
            script.insert_str(0, lib);
        }
        Plan::Change {
            script,
            stdin: None,
            diff: None,
        }
    };
    Ok(Outcome::new(plan).set("dest", root))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn st_file(sha: &str, mode: u32) -> FileState {
        FileState {
            kind: Kind::File,
            mode,
            owner: "root".into(),
            group: "root".into(),
            sha256: Some(sha.into()),
            ..FileState::default()
        }
    }
    fn dir() -> FileState {
        FileState {
            kind: Kind::Directory,
            mode: 0o755,
            ..FileState::default()
        }
    }
    fn absent() -> FileState {
        FileState::default()
    }

    fn ca(dest: &str) -> CopyArgs {
        CopyArgs {
            dest: dest.into(),
            force: true,
            ..CopyArgs::default()
        }
    }

    #[test]
    fn plans_single_files() {
        let new = NewContent::from_bytes(b"hi\n".to_vec(), Some("it_ran.txt".into()));
        let sha = new.sha256.clone();
        // Same content, same mode: nothing to do.
        let mut a = ca("/tmp/x");
        a.attrs.mode = Some(Mode::Octal(0o644));
        let o = plan_file(&a, &new, &[st_file(&sha, 0o644), absent(), dir()]).unwrap();
        assert_eq!(o.plan, Plan::NoChange);
        assert_eq!(o.result.data["dest"], json!("/tmp/x"));
        // Same content, other mode: only chmod, no transfer.
        a.attrs.mode = Some(Mode::Octal(0o777));
        let o = plan_file(&a, &new, &[st_file(&sha, 0o644), absent(), dir()]).unwrap();
        assert_eq!(
            o.plan,
            Plan::commands(vec![crate::modules::safepath::fix_script(
                "/tmp",
                "x",
                &["chmod 0777".into()]
            )])
        );
        // Different content: small content travels in the script, decoded into the file.
        let o = plan_file(&a, &new, &[st_file("other", 0o644), absent(), dir()]).unwrap();
        let Plan::Change { script, stdin, .. } = &o.plan else {
            panic!()
        };
        assert_eq!(stdin.as_deref(), None);
        assert!(script.contains("printf 'hi\\012' > \"$kp_f\""), "{script}");
        assert!(script.contains("chmod 0777 \"$kp_f\""), "{script}");
        assert!(script.contains("mv -fT"), "{script}");
        // Large content is streamed over stdin.
        let big = NewContent {
            data: Some(vec![b'x'; super::super::write::INLINE_MAX + 1]),
            ..new.clone()
        };
        let o = plan_file(&a, &big, &[st_file("other", 0o644), absent(), dir()]).unwrap();
        let Plan::Change { script, stdin, .. } = &o.plan else {
            panic!()
        };
        assert_eq!(
            stdin.as_ref().map(Vec::len),
            Some(super::super::write::INLINE_MAX + 1)
        );
        assert!(script.contains("cat > \"$kp_f\""), "{script}");
        // Trailing slash: dest is a directory, file goes inside under the src basename.
        let a = ca("/tmp/");
        let o = plan_file(&a, &new, &[dir(), absent(), dir()]).unwrap();
        assert_eq!(o.result.data["dest"], json!("/tmp/it_ran.txt"));
        assert!(o.plan.is_change());
        let o = plan_file(&a, &new, &[dir(), st_file(&sha, 0o644), dir()]).unwrap();
        assert_eq!(o.plan, Plan::NoChange);
        // Existing directory without trailing slash: same.
        let o = plan_file(&ca("/srv"), &new, &[dir(), st_file(&sha, 0o644), dir()]).unwrap();
        assert_eq!(o.result.data["dest"], json!("/srv/it_ran.txt"));
        assert_eq!(o.plan, Plan::NoChange);
        // Missing parent directory.
        let e = plan_file(&ca("/nope/x"), &new, &[absent(), absent(), absent()]).unwrap_err();
        assert_eq!(e, "Destination directory /nope does not exist");
        // force=no keeps an existing file.
        let mut a = ca("/tmp/x");
        a.force = false;
        let o = plan_file(&a, &new, &[st_file("other", 0o644), absent(), dir()]).unwrap();
        assert_eq!(o.plan, Plan::NoChange);
        assert_eq!(o.result.msg.as_deref(), Some("file already exists"));
        // Content into a directory is an error.
        let c = NewContent::from_bytes(b"x".to_vec(), None);
        assert!(plan_file(&ca("/srv"), &c, &[dir(), absent(), dir()]).is_err());
    }

    #[test]
    fn copies_idempotently_in_one_round_trip() {
        let local = tempfile::tempdir().unwrap();
        std::fs::write(local.path().join("it_ran.txt"), "it ran\n").unwrap();
        let remote = tempfile::tempdir().unwrap();
        let dest = format!("{}/", remote.path().display());
        let a = args(json!({"src": "it_ran.txt", "dest": dest, "mode": "0777"}));
        let mut r = LocalRemote::default();
        let search = vec![local.path().to_path_buf()];
        let res = Copy
            .execute(&a, &mut ctx(&mut r, false, true, search.clone()))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        let f = remote.path().join("it_ran.txt");
        assert_eq!(std::fs::read(&f).unwrap(), b"it ran\n");
        assert_eq!(mode_of(&f), 0o777);
        assert_eq!(res.diff[0].after, "it ran\n");
        assert_eq!(r.calls.len(), 2);
        let res = Copy
            .execute(&a, &mut ctx(&mut r, false, true, search))
            .unwrap();
        assert!(!res.changed && !res.failed, "{res:?}");
        assert_eq!(r.calls.len(), 3, "the idempotent run costs one round trip");
    }

    #[test]
    fn content_backup_and_check_mode() {
        let remote = tempfile::tempdir().unwrap();
        let f = remote.path().join("conf");
        std::fs::write(&f, "old\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let a = args(json!({"content": "new\n", "dest": f.to_str().unwrap(), "backup": true}));
        let mut r = LocalRemote::default();
        // Check mode: reports the change and the diff, writes nothing.
        let res = Copy
            .execute(&a, &mut ctx(&mut r, true, true, vec![]))
            .unwrap();
        assert!(res.changed);
        assert_eq!(res.diff[0].before, "old\n");
        assert_eq!(res.diff[0].after, "new\n");
        assert_eq!(std::fs::read(&f).unwrap(), b"old\n");
        assert_eq!(r.calls.len(), 1);
        // Real run: content replaced, mode kept, backup made.
        let res = Copy
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(std::fs::read(&f).unwrap(), b"new\n");
        assert_eq!(mode_of(&f), 0o600);
        let b = res.data["backup_file"].as_str().unwrap().to_string();
        assert_eq!(std::fs::read(&b).unwrap(), b"old\n");
        assert!(res.diff.is_empty(), "no diff without --diff");
    }

    #[test]
    fn missing_src_names_the_search_path() {
        let mut r = FakeRemote::default();
        let e = Copy
            .execute(
                &args(json!({"src": "nope.txt", "dest": "/tmp/"})),
                &mut ctx(&mut r, false, false, vec![PathBuf::from("/pb/files")]),
            )
            .unwrap_err()
            .to_string();
        assert!(e.contains("Could not find or access 'nope.txt'"), "{e}");
        assert!(e.contains("/pb/files"), "{e}");
        let e = Copy
            .execute(
                &args(json!({"dest": "/tmp/"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "copy: one of 'src' or 'content' is required");
        assert!(r.seen.is_empty());
    }

    #[test]
    fn copies_directory_trees() {
        let local = tempfile::tempdir().unwrap();
        let tree = local.path().join("site");
        std::fs::create_dir_all(tree.join("css/deep")).unwrap();
        std::fs::write(tree.join("index.html"), "<h1>hi</h1>\n").unwrap();
        std::fs::write(tree.join("css/deep/a b.css"), "body{}\n").unwrap();
        let remote = tempfile::tempdir().unwrap();
        let search = vec![local.path().to_path_buf()];
        let mut r = LocalRemote::default();
        // "site" copies the directory itself.
        let a =
            args(json!({"src": "site", "dest": remote.path().to_str().unwrap(), "mode": "0640"}));
        let res = Copy
            .execute(&a, &mut ctx(&mut r, false, false, search.clone()))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        let css = remote.path().join("site/css/deep/a b.css");
        assert_eq!(std::fs::read(&css).unwrap(), b"body{}\n");
        assert_eq!(mode_of(&css), 0o640);
        let res = Copy
            .execute(&a, &mut ctx(&mut r, false, false, search.clone()))
            .unwrap();
        assert!(!res.changed, "{res:?}");
        // "site/" copies its contents.
        let dest2 = remote.path().join("contents");
        let a = args(json!({"src": "site/", "dest": dest2.to_str().unwrap()}));
        let res = Copy
            .execute(&a, &mut ctx(&mut r, false, false, search.clone()))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(
            std::fs::read(dest2.join("index.html")).unwrap(),
            b"<h1>hi</h1>\n"
        );
        // One changed file: only it is rewritten.
        std::fs::write(dest2.join("index.html"), "changed").unwrap();
        let res = Copy
            .execute(&a, &mut ctx(&mut r, false, false, search))
            .unwrap();
        assert!(res.changed);
        assert_eq!(
            std::fs::read(dest2.join("index.html")).unwrap(),
            b"<h1>hi</h1>\n"
        );
    }

    #[test]
    fn remote_src_copies_on_the_target() {
        let remote = tempfile::tempdir().unwrap();
        let s = remote.path().join("s");
        std::fs::write(&s, "payload").unwrap();
        let d = remote.path().join("d");
        let a = args(
            json!({"src": s.to_str().unwrap(), "dest": d.to_str().unwrap(), "remote_src": true}),
        );
        let mut r = LocalRemote::default();
        assert!(
            Copy.execute(&a, &mut ctx(&mut r, false, false, vec![]))
                .unwrap()
                .changed
        );
        assert_eq!(std::fs::read(&d).unwrap(), b"payload");
        assert!(
            !Copy
                .execute(&a, &mut ctx(&mut r, false, false, vec![]))
                .unwrap()
                .changed
        );
    }
}
