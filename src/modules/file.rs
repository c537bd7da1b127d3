//! `file`: make a path a file, directory, symlink, hard link, touched file or absent, with
//! mode/owner/group (recursively for directories with `recurse`).
//!
//! One probe round trip (the path with and without following links, the link source, and with
//! `recurse` a listing of the tree), a pure [`plan`], then at most one command. `touch` is always
//! changed (Ansible's rule).

use super::args::Args;
use super::mode::Mode;
use super::plan::{finish, Outcome, Plan};
use super::probe::{parse_probe, probe_script, run_script, FileState, Kind, ProbeReq};
use super::write::{dirname, Attrs, FILE_COMMON};
use super::{Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

pub struct File;

const STATES: &[&str] = &["absent", "directory", "file", "hard", "link", "touch"];

const SPEC: Spec = Spec::new(
    "file",
    &[
        Param::path("path").required().aliases(&["dest", "name"]),
        Param::str("state").choices(STATES),
        Param::path("src"),
        Param::bool("recurse").default("false"),
        Param::bool("force").default("false"),
        Param::bool("follow").default("true"),
        Param::str("modification_time"),
        Param::str("modification_time_format").refused(NO_TIMESTAMPS),
        Param::str("access_time"),
        Param::str("access_time_format").refused(NO_TIMESTAMPS),
    ],
)
.shared(&[FILE_COMMON]);

/// `kp_dirname PATH` sets `kp_n` to `dirname PATH` with builtins only (no process per level of a
/// new directory tree).
const DIRNAME_FN: &str = "kp_dirname() { kp_n=$1; while case $kp_n in ?*/) true;; *) false;; esac; do kp_n=${kp_n%/}; done; \
    case $kp_n in /) ;; */*) kp_n=${kp_n%/*}; while case $kp_n in ?*/) true;; *) false;; esac; do kp_n=${kp_n%/}; done; kp_n=${kp_n:-/};; *) kp_n=.;; esac; }; ";

/// Why the time formats are refused: only `now` and `preserve` are implemented.
const NO_TIMESTAMPS: &str = "only 'now' and 'preserve' times are supported";

impl Module for File {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let fa = FileArgs::from_args(args)?;
        let script = probe_for(&fa);
        let out = run_script(ctx, &script)?;
        if !out.ok() {
            return Ok(ModuleResult::failed(format!(
                "file: probing {} failed: {}",
                fa.path,
                out.stderr_str().trim()
            )));
        }
        let probe = match parse_file_probe(&fa, &out.stdout) {
            Ok(p) => p,
            Err(e) => return Ok(ModuleResult::failed(format!("file: {e}"))),
        };
        match plan(&fa, &probe) {
            Ok(o) => finish(ctx, o),
            Err(msg) => Ok(ModuleResult::failed(msg).set("path", fa.path.as_str())),
        }
    }
}

/// Validated `file` arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileArgs {
    pub path: String,
    /// None: keep whatever the path is (Ansible's default).
    pub state: Option<String>,
    pub src: Option<String>,
    pub recurse: bool,
    pub force: bool,
    pub follow: bool,
    pub attrs: Attrs,
    /// `modification_time` / `access_time`: Some(true) = "now", Some(false) = "preserve",
    /// None = not given (touch defaults to now, other states leave times alone).
    pub mtime_now: Option<bool>,
    pub atime_now: Option<bool>,
}

impl FileArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let path = Some(args.req_str("path")?)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ModuleError::Args("missing required parameter 'path'".into()))?;
        let state = args.choice("state")?;
        let src = args.str("src")?.filter(|s| !s.is_empty());
        let recurse = args.bool("recurse")?;
        if recurse && state.as_deref().is_some_and(|s| s != "directory") {
            return Err(ModuleError::Args(
                "recurse option requires state to be 'directory'".into(),
            ));
        }
        if matches!(state.as_deref(), Some("link" | "hard")) && src.is_none() {
            return Err(ModuleError::Args(format!(
                "src is required for creating links (state={})",
                state.as_deref().unwrap_or_default()
            )));
        }
        let attrs = Attrs::from_args_without_preserve(args)?;
        Ok(Self {
            path: if path.len() > 1 {
                path.trim_end_matches('/').to_string()
            } else {
                path
            },
            state,
            src,
            recurse,
            force: args.bool("force")?,
            follow: args.bool("follow")?,
            attrs,
            mtime_now: time_arg(args, "modification_time")?,
            atime_now: time_arg(args, "access_time")?,
        })
    }

    /// The link source as seen from the filesystem (relative symlink sources are relative to
    /// the link's directory).
    fn abs_src(&self) -> Option<String> {
        let src = self.src.as_ref()?;
        if src.starts_with('/') || self.state.as_deref() == Some("hard") {
            Some(src.clone())
        } else {
            Some(format!("{}/{src}", dirname(&self.path)))
        }
    }
}

/// `now` / `preserve` for `modification_time` / `access_time` (explicit timestamps are refused
/// rather than silently ignored).
fn time_arg(args: &Args<'_>, key: &str) -> Result<Option<bool>, ModuleError> {
    match args.str(key)?.as_deref() {
        None => Ok(None),
        Some("now") => Ok(Some(true)),
        Some("preserve") => Ok(Some(false)),
        Some(other) => Err(ModuleError::Args(format!(
            "parameter '{key}' = '{other}': only 'now' and 'preserve' are supported"
        ))),
    }
}

/// One entry of a recursive listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub is_dir: bool,
    pub is_link: bool,
}

/// Everything the planner needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileProbe {
    /// The path itself (not following links).
    pub here: FileState,
    /// The path with links followed.
    pub followed: FileState,
    /// The link source (link/hard states).
    pub src: Option<FileState>,
    /// The tree below the path (recurse).
    pub tree: Vec<TreeEntry>,
}

const TREE_MARK: &str = "@@tree";

/// The probe command. Pure.
pub fn probe_for(fa: &FileArgs) -> String {
    let mut reqs = vec![
        ProbeReq::new(fa.path.as_str()),
        ProbeReq {
            follow: true,
            ..ProbeReq::new(fa.path.as_str())
        },
    ];
    if let Some(src) = fa.abs_src() {
        reqs.push(ProbeReq {
            follow: true,
            ..ProbeReq::new(src)
        });
    }
    let mut s = probe_script(&reqs);
    if fa.recurse {
        s.push_str(&format!(
            "; echo {TREE_MARK}; if [ -d {q} ]; then find {q} -mindepth 1 -exec stat -c '%a|%u|%g|%U|%G|%F' {{}} +; fi",
            q = quote(&fa.path)
        ));
    }
    s
}

/// Parse [`probe_for`]'s output.
pub fn parse_file_probe(fa: &FileArgs, out: &[u8]) -> Result<FileProbe, String> {
    let n = if fa.src.is_some() { 3 } else { 2 };
    let mut states = parse_probe(out, n)?;
    let src = (n == 3).then(|| states.remove(2));
    let followed = states.remove(1);
    let here = states.remove(0);
    let mut tree = Vec::new();
    let text = String::from_utf8_lossy(out);
    if let Some((_, listing)) = text.split_once(&format!("\n{TREE_MARK}\n")) {
        for line in listing.lines() {
            let f: Vec<&str> = line.splitn(6, '|').collect();
            if f.len() != 6 {
                continue;
            }
            tree.push(TreeEntry {
                mode: u32::from_str_radix(f[0], 8).map_err(|_| format!("bad mode in '{line}'"))?,
                uid: f[1].parse().map_err(|_| format!("bad uid in '{line}'"))?,
                gid: f[2].parse().map_err(|_| format!("bad gid in '{line}'"))?,
                owner: f[3].to_string(),
                group: f[4].to_string(),
                is_dir: f[5] == "directory",
                is_link: f[5] == "symbolic link",
            });
        }
    }
    Ok(FileProbe {
        here,
        followed,
        src,
        tree,
    })
}

/// Commands that set all given attributes on a path that is being created (its current
/// attributes are unknown); `target` is a shell word, already quoted. Symbolic modes go to chmod
/// with an explicit `a`.
fn new_path_attrs(target: &str, attrs: &Attrs) -> Vec<String> {
    let mut cmds: Vec<String> = attrs.owner_command(target).into_iter().collect();
    if let Some(m) = &attrs.mode {
        cmds.push(format!(
            "chmod {} {target}",
            quote(&m.chmod_recursive_arg())
        ));
    }
    cmds
}

/// Decide what to do. Pure.
pub fn plan(fa: &FileArgs, p: &FileProbe) -> Result<Outcome, String> {
    let path = fa.path.as_str();
    let prev = p.here.kind;
    // Ansible: with no state, keep what is there (or 'file').
    let state = fa.state.clone().unwrap_or_else(|| match prev {
        Kind::Absent if fa.recurse => "directory".into(),
        Kind::Absent | Kind::Other => "file".into(),
        k => k.as_str().into(),
    });
    let base = |plan: Plan, state: &str| Outcome::new(plan).set("path", path).set("state", state);
    // The path attributes act on: the link target when following.
    let (target, target_path) = if prev == Kind::Link && fa.follow {
        (
            &p.followed,
            p.followed
                .real_path
                .clone()
                .unwrap_or_else(|| path.to_string()),
        )
    } else {
        (&p.here, path.to_string())
    };
    if state == "link" && fa.src.is_none() {
        // Ansible: an existing link with no src keeps its target; attributes follow it.
        let cmds = if fa.follow && p.followed.exists() {
            fa.attrs.fix_commands(&target_path, target, false)
        } else {
            Vec::new()
        };
        return Ok(base(Plan::commands(cmds), "link"));
    }
    let outcome = plan_state(fa, p, &state, prev, target, &target_path)?;
    Ok(with_times(fa, &state, outcome, &target_path))
}

/// `modification_time: now` / `access_time: now` on states other than touch: update the times
/// (always a change, as in Ansible).
fn with_times(fa: &FileArgs, state: &str, mut o: Outcome, target: &str) -> Outcome {
    if matches!(state, "touch" | "absent") {
        return o;
    }
    let flag = match (fa.mtime_now == Some(true), fa.atime_now == Some(true)) {
        (true, true) => "",
        (true, false) => "-m ",
        (false, true) => "-a ",
        (false, false) => return o,
    };
    let cmd = format!("touch -c {flag}-- {}", quote(target));
    o.plan = match o.plan {
        Plan::NoChange => Plan::commands(vec![cmd]),
        Plan::Change {
            script,
            stdin,
            diff,
        } => Plan::Change {
            script: format!("{{ {script}; }} && {cmd}"),
            stdin,
            diff,
        },
    };
    o
}

fn plan_state(
    fa: &FileArgs,
    p: &FileProbe,
    state: &str,
    prev: Kind,
    target: &FileState,
    target_path: &str,
) -> Result<Outcome, String> {
    let path = fa.path.as_str();
    let q = quote(path);
    let base = |plan: Plan, state: &str| Outcome::new(plan).set("path", path).set("state", state);
    let target_path = target_path.to_string();
    match state {
        "absent" => {
            let plan = if prev == Kind::Absent {
                Plan::NoChange
            } else {
                Plan::commands(vec![format!("rm -rf -- {q}")])
            };
            Ok(base(plan, "absent"))
        }
        "touch" => {
            let m = fa.mtime_now.unwrap_or(true);
            let a = fa.atime_now.unwrap_or(true);
            let mut cmds = match (prev, m, a) {
                (Kind::Absent, ..) | (_, true, true) => vec![format!("touch -- {q}")],
                (_, true, false) => vec![format!("touch -m -- {q}")],
                (_, false, true) => vec![format!("touch -a -- {q}")],
                // Both preserved on an existing path: only attributes may change.
                (_, false, false) => Vec::new(),
            };
            if prev == Kind::Absent {
                cmds.extend(new_path_attrs(&quote(path), &fa.attrs));
            } else {
                cmds.extend(fa.attrs.fix_commands(&target_path, target, false));
            }
            Ok(base(Plan::commands(cmds), "file"))
        }
        "file" => {
            match target.kind {
                Kind::File => {}
                Kind::Absent => {
                    return Err(format!("file ({path}) is absent, cannot continue"));
                }
                k => return Err(format!("file ({path}) is {}, cannot continue", k.as_str())),
            }
            let cmds = fa.attrs.fix_commands(&target_path, target, false);
            Ok(base(Plan::commands(cmds), "file")
                .set("mode", format!("{:04o}", mode_after(&fa.attrs, target))))
        }
        "directory" => plan_directory(fa, p, target, &target_path),
        "link" => plan_link(fa, p),
        "hard" => plan_hard(fa, p),
        other => Err(format!("file: unsupported state '{other}'")),
    }
}

fn mode_after(attrs: &Attrs, st: &FileState) -> u32 {
    attrs
        .mode
        .as_ref()
        .map_or(st.mode, |m| m.resolve(st.mode, st.kind == Kind::Directory))
}

fn plan_directory(
    fa: &FileArgs,
    p: &FileProbe,
    target: &FileState,
    target_path: &str,
) -> Result<Outcome, String> {
    let path = fa.path.as_str();
    let base = |plan: Plan| {
        Outcome::new(plan)
            .set("path", path)
            .set("state", "directory")
    };
    match target.kind {
        Kind::Absent => {
            // Create every missing component and give each the attributes, as Ansible does. An
            // octal mode is given by `mkdir -m` itself (no `chmod` per directory).
            let (mkdir, attrs) = match &fa.attrs.mode {
                Some(Mode::Octal(m)) => (
                    format!("if [ $# -gt 0 ]; then mkdir -m {m:04o} -- \"$@\"; else mkdir -p -- \"$kp_p\"; fi"),
                    Attrs {
                        mode: None,
                        ..fa.attrs.clone()
                    },
                ),
                _ => ("mkdir -p -- \"$kp_p\"".to_string(), fa.attrs.clone()),
            };
            let per_dir = new_path_attrs("\"$kp_d\"", &attrs);
            let mut script = format!(
                "{DIRNAME_FN}kp_p={q}; set --; kp_d=$kp_p; while [ ! -e \"$kp_d\" ] && [ ! -L \"$kp_d\" ]; do set -- \"$kp_d\" \"$@\"; kp_dirname \"$kp_d\"; [ \"$kp_n\" = \"$kp_d\" ] && break; kp_d=$kp_n; done; {mkdir}",
                q = quote(path)
            );
            if !per_dir.is_empty() {
                script.push_str(&format!(
                    " && for kp_d in \"$@\"; do {} || exit 1; done",
                    per_dir.join(" && ")
                ));
            }
            Ok(base(Plan::Change {
                script,
                stdin: None,
                diff: None,
            }))
        }
        Kind::Directory => {
            let mut cmds = fa.attrs.fix_commands(target_path, target, false);
            if fa.recurse && tree_differs(&fa.attrs, &p.tree) {
                let q = quote(target_path);
                cmds.clear();
                if let Some(o) = &fa.attrs.owner {
                    cmds.push(format!("chown -R {} {q}", quote(o)));
                }
                if let Some(g) = &fa.attrs.group {
                    cmds.push(format!("chgrp -R {} {q}", quote(g)));
                }
                if let Some(m) = &fa.attrs.mode {
                    cmds.push(format!("chmod -R {} {q}", quote(&m.chmod_recursive_arg())));
                }
            }
            Ok(base(Plan::commands(cmds))
                .set("mode", format!("{:04o}", mode_after(&fa.attrs, target))))
        }
        k => Err(format!("{path} already exists as a {}", k.as_str())),
    }
}

/// True when any entry of the tree lacks the wanted attributes (links only for ownership).
fn tree_differs(attrs: &Attrs, tree: &[TreeEntry]) -> bool {
    tree.iter().any(|e| {
        let owner_ok = attrs
            .owner
            .as_ref()
            .is_none_or(|o| *o == e.owner || *o == e.uid.to_string());
        let group_ok = attrs
            .group
            .as_ref()
            .is_none_or(|g| *g == e.group || *g == e.gid.to_string());
        let mode_ok = e.is_link
            || attrs
                .mode
                .as_ref()
                .is_none_or(|m| m.resolve(e.mode, e.is_dir) == e.mode);
        !(owner_ok && group_ok && mode_ok)
    })
}

fn plan_link(fa: &FileArgs, p: &FileProbe) -> Result<Outcome, String> {
    let path = fa.path.as_str();
    let q = quote(path);
    let src = fa.src.clone().unwrap_or_default();
    let qs = quote(&src);
    let base = |plan: Plan| {
        Outcome::new(plan)
            .set("path", path)
            .set("dest", path)
            .set("src", src.as_str())
            .set("state", "link")
    };
    let src_exists = p.src.as_ref().is_some_and(|s| s.exists());
    if !src_exists && !fa.force {
        return Err(format!(
            "src file does not exist, use \"force=yes\" if you really want to create the link: {}",
            fa.abs_src().unwrap_or_default()
        ));
    }
    let owner_cmds = |st: &FileState| {
        let attrs = Attrs {
            mode: None,
            ..fa.attrs.clone()
        };
        attrs.fix_commands(path, st, true)
    };
    let mut cmds = Vec::new();
    match p.here.kind {
        Kind::Absent => {
            cmds.push(format!("ln -s -- {qs} {q}"));
            cmds.extend(owner_cmds(&unknown()));
        }
        Kind::Link => {
            if p.here.link_target.as_deref() != Some(src.as_str()) {
                cmds.push(format!("ln -sfn -- {qs} {q}"));
                cmds.extend(owner_cmds(&unknown()));
            } else {
                cmds.extend(owner_cmds(&p.here));
            }
        }
        Kind::Directory => {
            if !fa.force {
                return Err(format!(
                    "refusing to convert from directory to symlink for {path}"
                ));
            }
            cmds.push(format!("rmdir -- {q} && ln -s -- {qs} {q}"));
            cmds.extend(owner_cmds(&unknown()));
        }
        k => {
            if !fa.force {
                return Err(format!(
                    "refusing to convert from {} to symlink for {path}",
                    if k == Kind::File { "file" } else { k.as_str() }
                ));
            }
            cmds.push(format!("rm -f -- {q} && ln -s -- {qs} {q}"));
            cmds.extend(owner_cmds(&unknown()));
        }
    }
    Ok(base(Plan::commands(cmds)))
}

/// A state whose owner/group match nothing (a path about to be created).
fn unknown() -> FileState {
    FileState {
        uid: u32::MAX,
        gid: u32::MAX,
        ..FileState::default()
    }
}

fn plan_hard(fa: &FileArgs, p: &FileProbe) -> Result<Outcome, String> {
    let path = fa.path.as_str();
    let q = quote(path);
    let src = fa.src.clone().unwrap_or_default();
    let base = |plan: Plan| {
        Outcome::new(plan)
            .set("path", path)
            .set("dest", path)
            .set("src", src.as_str())
            .set("state", "hard")
    };
    let Some(s) = p.src.as_ref().filter(|s| s.exists()) else {
        return Err(format!("src does not exist: {src}"));
    };
    let here = &p.here;
    let same = here.exists() && here.inode == s.inode && here.dev == s.dev;
    let mut cmds = Vec::new();
    if !same {
        match here.kind {
            Kind::Absent => {}
            Kind::File if fa.force => {}
            Kind::File => {
                return Err(format!(
                    "Cannot link, {} exists at destination",
                    if here.nlink > 1 {
                        "different hard link"
                    } else {
                        "file"
                    }
                ))
            }
            Kind::Link if fa.force => {}
            k => {
                return Err(format!(
                    "Cannot link: {path} is a {} (use force=yes to replace it)",
                    k.as_str()
                ))
            }
        }
        cmds.push(format!("ln -f -- {} {q}", quote(&src)));
    }
    let st = if same { here.clone() } else { s.clone() };
    cmds.extend(fa.attrs.fix_commands(path, &st, false));
    Ok(base(Plan::commands(cmds)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_builtin_dirname_is_coreutils_dirname() {
        let paths = [
            "/",
            "//",
            "/a",
            "/a/",
            "/a/b",
            "/a//b",
            "/a/b//",
            "a",
            "a/",
            "a/b",
            "a//b/",
            ".",
            "..",
            "./x",
            "/a b/c d",
            "-x/y",
            "///a///b///",
        ];
        for p in paths {
            let script = format!("{DIRNAME_FN}kp_dirname \"$1\"; printf '%s' \"$kp_n\"");
            let ours = std::process::Command::new("/bin/sh")
                .args(["-c", &script, "sh", p])
                .output()
                .unwrap();
            let theirs = std::process::Command::new("dirname")
                .args(["--", p])
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours.stdout),
                String::from_utf8_lossy(&theirs.stdout).trim_end_matches('\n'),
                "{p:?}"
            );
        }
    }

    use super::super::testing::*;
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn mode_of(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    fn run(a: serde_json::Value) -> ModuleResult {
        let mut r = LocalRemote::default();
        File.execute(&args(a), &mut ctx(&mut r, false, false, vec![]))
            .unwrap()
    }

    fn file_state(mode: u32) -> FileState {
        FileState {
            kind: Kind::File,
            mode,
            owner: "root".into(),
            group: "root".into(),
            ..FileState::default()
        }
    }

    #[test]
    fn plans_from_state_table() {
        let fa = |v: serde_json::Value| parse_with(&SPEC, v, FileArgs::from_args).unwrap();
        let absent = FileProbe::default();
        let f644 = FileProbe {
            here: file_state(0o644),
            followed: file_state(0o644),
            ..FileProbe::default()
        };
        // absent on absent: nothing.
        let o = plan(&fa(json!({"path": "/x", "state": "absent"})), &absent).unwrap();
        assert_eq!(o.plan, Plan::NoChange);
        let o = plan(&fa(json!({"path": "/x", "state": "absent"})), &f644).unwrap();
        assert_eq!(o.plan, Plan::commands(vec!["rm -rf -- /x".into()]));
        // file: only attributes.
        let o = plan(&fa(json!({"path": "/x", "mode": "0644"})), &f644).unwrap();
        assert_eq!(o.plan, Plan::NoChange);
        assert_eq!(o.result.data["state"], json!("file"));
        let o = plan(
            &fa(json!({"path": "/x", "mode": "u+x", "owner": "bin"})),
            &f644,
        )
        .unwrap();
        assert_eq!(
            o.plan,
            Plan::commands(vec![crate::modules::safepath::fix_script(
                "/",
                "x",
                &["chown bin".into(), "chmod 0744".into()]
            )])
        );
        let e = plan(&fa(json!({"path": "/x", "state": "file"})), &absent).unwrap_err();
        assert_eq!(e, "file (/x) is absent, cannot continue");
        // touch is always a change.
        let o = plan(&fa(json!({"path": "/x", "state": "touch"})), &f644).unwrap();
        assert!(o.plan.is_change());
        // directory over a file is an error.
        let e = plan(&fa(json!({"path": "/x", "state": "directory"})), &f644).unwrap_err();
        assert_eq!(e, "/x already exists as a file");
        // link to the same target: nothing.
        let linked = FileProbe {
            here: FileState {
                kind: Kind::Link,
                link_target: Some("/etc/hosts".into()),
                ..FileState::default()
            },
            src: Some(file_state(0o644)),
            ..FileProbe::default()
        };
        let o = plan(
            &fa(json!({"path": "/x", "state": "link", "src": "/etc/hosts"})),
            &linked,
        )
        .unwrap();
        assert_eq!(o.plan, Plan::NoChange);
        let o = plan(
            &fa(json!({"path": "/x", "state": "link", "src": "/etc/passwd"})),
            &linked,
        )
        .unwrap();
        assert_eq!(
            o.plan,
            Plan::commands(vec!["ln -sfn -- /etc/passwd /x".into()])
        );
        // link over a regular file needs force.
        let mut over_file = f644.clone();
        over_file.src = Some(file_state(0o644));
        let e = plan(
            &fa(json!({"path": "/x", "state": "link", "src": "/y"})),
            &over_file,
        )
        .unwrap_err();
        assert_eq!(e, "refusing to convert from file to symlink for /x");
        // link to a missing source needs force.
        let e = plan(
            &fa(json!({"path": "/d/x", "state": "link", "src": "rel"})),
            &FileProbe {
                src: Some(FileState::default()),
                ..FileProbe::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("/d/rel"), "{e}");
    }

    #[test]
    fn times_now_and_preserve() {
        let fa = |v: serde_json::Value| parse_with(&SPEC, v, FileArgs::from_args).unwrap();
        let f = FileProbe {
            here: file_state(0o644),
            followed: file_state(0o644),
            ..FileProbe::default()
        };
        let o = plan(
            &fa(json!({"path": "/x", "state": "touch", "modification_time": "preserve", "access_time": "preserve"})),
            &f,
        )
        .unwrap();
        assert_eq!(o.plan, Plan::NoChange);
        let o = plan(
            &fa(json!({"path": "/x", "state": "touch", "access_time": "preserve"})),
            &f,
        )
        .unwrap();
        assert_eq!(o.plan, Plan::commands(vec!["touch -m -- /x".into()]));
        let o = plan(&fa(json!({"path": "/x", "modification_time": "now"})), &f).unwrap();
        assert_eq!(o.plan, Plan::commands(vec!["touch -c -m -- /x".into()]));
        let e = parse_with(
            &SPEC,
            json!({"path": "/x", "modification_time": "202401011200.00"}),
            FileArgs::from_args,
        )
        .unwrap_err();
        assert!(e.to_string().contains("only 'now' and 'preserve'"), "{e}");
    }

    #[test]
    fn argument_errors() {
        let e = parse_with(
            &SPEC,
            json!({"path": "/x", "state": "link"}),
            FileArgs::from_args,
        )
        .unwrap_err();
        assert!(e.to_string().contains("src is required"), "{e}");
        let e = parse_with(
            &SPEC,
            json!({"path": "/x", "state": "dir"}),
            FileArgs::from_args,
        )
        .unwrap_err();
        assert!(e.to_string().contains("'state' must be one of"), "{e}");
        let e = parse_with(&SPEC, json!({"state": "file"}), FileArgs::from_args).unwrap_err();
        assert_eq!(e.to_string(), "file: missing required parameter 'path'");
        let e = parse_with(
            &SPEC,
            json!({"path": "/x", "state": "file", "recurse": true}),
            FileArgs::from_args,
        )
        .unwrap_err();
        assert!(e.to_string().contains("recurse"), "{e}");
    }

    #[test]
    fn directories_with_modes_and_recursion() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b c/d");
        let d = deep.to_str().unwrap();
        let res = run(json!({"path": d, "state": "directory", "mode": "0750"}));
        assert!(res.changed && !res.failed, "{res:?}");
        assert!(deep.is_dir());
        // Every created component gets the mode, like Ansible.
        assert_eq!(mode_of(&deep), 0o750);
        assert_eq!(mode_of(&dir.path().join("a")), 0o750);
        let res = run(json!({"path": d, "state": "directory", "mode": "0750"}));
        assert!(!res.changed, "{res:?}");
        // Recursion: a file below with another mode makes it change, then it is stable.
        std::fs::write(deep.join("f"), "x").unwrap();
        let top = dir.path().join("a");
        let t = top.to_str().unwrap();
        let res =
            run(json!({"path": t, "state": "directory", "mode": "u=rwX,g=rX,o=", "recurse": true}));
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(mode_of(&deep.join("f")), 0o640);
        assert_eq!(mode_of(&deep), 0o750);
        let res =
            run(json!({"path": t, "state": "directory", "mode": "u=rwX,g=rX,o=", "recurse": true}));
        assert!(!res.changed, "{res:?}");
    }

    #[test]
    fn links_touch_and_absent_on_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "t").unwrap();
        let link = dir.path().join("link");
        let l = link.to_str().unwrap();
        let res = run(json!({"path": l, "state": "link", "src": "target"}));
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("target"));
        assert!(!run(json!({"path": l, "state": "link", "src": "target"})).changed);
        // Hard link.
        let hard = dir.path().join("hard");
        let h = hard.to_str().unwrap();
        let t = target.to_str().unwrap();
        assert!(run(json!({"path": h, "state": "hard", "src": t})).changed);
        assert!(!run(json!({"path": h, "state": "hard", "src": t})).changed);
        // Touch: created with the mode, and always changed.
        let f = dir.path().join("touched");
        let fp = f.to_str().unwrap();
        let res = run(json!({"path": fp, "state": "touch", "mode": "0600"}));
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(mode_of(&f), 0o600);
        assert!(run(json!({"path": fp, "state": "touch", "mode": "0600"})).changed);
        // Absent.
        assert!(run(json!({"path": fp, "state": "absent"})).changed);
        assert!(!f.exists());
        assert!(!run(json!({"path": fp, "state": "absent"})).changed);
        // Attributes through a followed link apply to the target.
        let res = run(json!({"path": l, "mode": "0604"}));
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(mode_of(&target), 0o604);
    }

    #[test]
    fn check_mode_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("new");
        let mut r = LocalRemote::default();
        let res = File
            .execute(
                &args(json!({"path": p.to_str().unwrap(), "state": "directory"})),
                &mut ctx(&mut r, true, false, vec![]),
            )
            .unwrap();
        assert!(res.changed);
        assert!(!p.exists());
        assert_eq!(r.calls.len(), 1);
    }
}
