//! `mount` (ansible.posix): a mount point in `/etc/fstab` (or `fstab`) and in the running system.
//! The fstab edit is the collection's ([`set_mount`], [`unset_mount`], pure: fields escaped with
//! `\040`-style codes, a matching line rewritten only when a field differs, a new line appended),
//! as are the mount checks (`ismount` by device and inode against the parent, bind mounts from
//! `/proc/self/mountinfo`), the commands (`mount [-T fstab] path`, `mount -o remount`, `umount`)
//! and the messages. A failed mount puts the old fstab back and removes the directories it made.
//! Linux only. Two probe round trips (the fstab file and path, then the mount table).

use indexmap::IndexMap;

use super::probe::{probe, run_script, section, sections, FileState, Kind, ProbeReq};
use super::write::{write_file_script, WriteSpec};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;

pub struct Mount;

const SPEC: Spec = Spec::new(
    "mount",
    &[
        Param::bool("boot").default("true"),
        Param::str("dump").default("0"),
        Param::str("fstab"),
        Param::str("fstype"),
        Param::path("path").required().aliases(&["name"]),
        Param::str("opts"),
        Param::bool("opts_no_log").default("false"),
        Param::str("passno").default("0"),
        Param::path("src"),
        Param::bool("backup").default("false"),
        Param::str("state").required().choices(&[
            "absent",
            "absent_from_fstab",
            "mounted",
            "present",
            "unmounted",
            "remounted",
            "ephemeral",
        ]),
    ],
);

/// The collection's `_escape_fstab`.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('&', "\\046")
}

/// The fields of one mount (unescaped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub src: Option<String>,
    pub fstype: Option<String>,
    pub opts: String,
    pub dump: String,
    pub passno: String,
}

/// Python's `str.split()` (runs of whitespace).
fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// The collection's `_set_mount_save_old` on the fstab content: (new content, changed). Pure.
pub fn set_mount(content: &str, e: &Entry) -> (String, bool) {
    let esc = |v: &Option<String>| escape(v.as_deref().unwrap_or(""));
    let want = [
        esc(&e.src),
        escape(&e.name),
        esc(&e.fstype),
        escape(&e.opts),
        escape(&e.dump),
        escape(&e.passno),
    ];
    let mut out = String::new();
    let mut exists = false;
    let mut changed = false;
    for line in content.split_inclusive('\n') {
        let line = if line.ends_with('\n') {
            line.to_string()
        } else {
            format!("{line}\n")
        };
        let fields = words(line.split('#').next().unwrap_or(""));
        if line.trim().is_empty()
            || line.trim().starts_with('#')
            || !(4..=6).contains(&fields.len())
        {
            out.push_str(&line);
            continue;
        }
        // Missing dump/passno are the integer 0, never equal to a string: always rewritten.
        let mut ld: Vec<Option<String>> = (0..6)
            .map(|i| fields.get(i).map(|s| s.to_string()))
            .collect();
        let swap_other = e.src.is_some()
            && fields[1] == "none"
            && fields[2] == "swap"
            && Some(fields[0]) != e.src.as_deref();
        if fields[1] != want[1] || swap_other {
            out.push_str(&line);
            continue;
        }
        exists = true;
        for i in [0, 2, 3, 4, 5] {
            if ld[i].as_deref() != Some(want[i].as_str()) {
                ld[i] = Some(want[i].clone());
                changed = true;
            }
        }
        if changed {
            let f: Vec<String> = ld.into_iter().map(|v| v.unwrap_or_default()).collect();
            out.push_str(&format!("{}\n", f.join(" ")));
        } else {
            out.push_str(&line);
        }
    }
    if !exists {
        out.push_str(&format!("{}\n", want.join(" ")));
        changed = true;
    }
    (out, changed)
}

/// The collection's `unset_mount`: lines of exactly six fields for the mount point removed. Pure.
pub fn unset_mount(content: &str, name: &str, src: Option<&str>) -> (String, bool) {
    let name = escape(name);
    let mut out = String::new();
    let mut changed = false;
    for line in content.split_inclusive('\n') {
        let f = words(line);
        let keep = line.trim().is_empty()
            || line.trim().starts_with('#')
            || f.len() != 6
            || f[1] != name
            || (src.is_some() && f[1] == "none" && f[2] == "swap" && Some(f[0]) != src);
        if keep {
            out.push_str(line);
        } else {
            changed = true;
        }
    }
    (out, changed)
}

/// `/proc/self/mountinfo` as the collection's `get_linux_mounts`: mount point → source. Pure.
pub fn linux_mounts(mountinfo: &str) -> IndexMap<String, String> {
    struct Rec {
        parent: i64,
        root: String,
        dst: String,
        src: String,
    }
    let mut info: IndexMap<i64, Rec> = IndexMap::new();
    for line in mountinfo.lines() {
        let f = words(line);
        if f.len() < 7 {
            continue;
        }
        let (Ok(id), Ok(parent)) = (f[0].parse::<i64>(), f[1].parse::<i64>()) else {
            continue;
        };
        let rec = Rec {
            parent,
            root: f[3].into(),
            dst: f[4].into(),
            src: f[f.len() - 2].into(),
        };
        info.insert(id, rec);
    }
    let mut mounts = IndexMap::new();
    for rec in info.values() {
        let src = match info.get(&rec.parent).filter(|_| rec.parent != 1) {
            Some(m) => {
                let mut root = rec.root.clone();
                if m.root.len() > 1 && root.starts_with(&format!("{}/", m.root)) {
                    root = root[m.root.len()..].to_string();
                }
                if m.dst != "/" {
                    root = format!("{}{root}", m.dst);
                }
                root
            }
            None => rec.src.clone(),
        };
        mounts.insert(rec.dst.clone(), src);
    }
    mounts
}

/// What the second probe found about the mount point.
#[derive(Debug, Clone, Default)]
pub struct MountState {
    /// `ismount(path)`.
    pub ismount: bool,
    pub mounts: IndexMap<String, String>,
}

impl MountState {
    pub fn bind_mounted(&self, dest: &str, src: Option<&str>) -> bool {
        match (self.mounts.get(dest), src) {
            (Some(s), Some(want)) => s == want,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

fn mount_probe(path: &str) -> String {
    format!(
        "p={q}; {s1}; if [ -e \"$p\" ] && [ ! -L \"$p\" ]; then stat -c '%d %i' -- \"$p\"; \
         stat -c '%d %i' -- \"$(readlink -f -- \"$p/..\")\"; fi; {s2}; cat /proc/self/mountinfo; {s3}",
        q = quote(path),
        s1 = section("stat"),
        s2 = section("mountinfo"),
        s3 = section("end"),
    )
}

/// Parse [`mount_probe`]'s output.
pub fn parse_mount_probe(out: &str) -> MountState {
    let s = sections(out);
    let st: Vec<&str> = s.get("stat").map_or(vec![], |b| b.lines().collect());
    let ismount = match st[..] {
        [a, b] => {
            let (a, b) = (words(a), words(b));
            a.len() == 2 && b.len() == 2 && (a[0] != b[0] || a[1] == b[1])
        }
        _ => false,
    };
    MountState {
        ismount,
        mounts: linux_mounts(s.get("mountinfo").map_or("", String::as_str)),
    }
}

/// The parsed task.
struct Task {
    state: String,
    entry: Entry,
    fstab: String,
    backup: bool,
    result: ModuleResult,
}

fn task(args: &Args<'_>) -> Result<Result<Task, ModuleResult>, ModuleError> {
    let state = args.choice("state")?.unwrap_or_default();
    let src = args.str("src")?;
    let fstype = args.str("fstype")?;
    if matches!(state.as_str(), "mounted" | "present" | "ephemeral")
        && (src.is_none() || fstype.is_none())
    {
        let missing: Vec<&str> = [("src", &src), ("fstype", &fstype)]
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| *n)
            .collect();
        return Ok(Err(ModuleResult::failed(format!(
            "state is {state} but all of the following are missing: {}",
            missing.join(", ")
        ))));
    }
    let mut opts = args.str("opts")?.unwrap_or_else(|| "defaults".into());
    let boot = args.bool("boot")?;
    if !boot && !opts.split(',').any(|o| o == "noauto") {
        opts.push_str(",noauto");
    }
    let fstab = args.str("fstab")?.unwrap_or_else(|| "/etc/fstab".into());
    let entry = Entry {
        name: args.req_str("path")?,
        src,
        fstype,
        opts,
        dump: args.str("dump")?.unwrap_or_else(|| "0".into()),
        passno: args.str("passno")?.unwrap_or_else(|| "0".into()),
    };
    let mut result = ModuleResult::ok();
    let mut put = |k: &str, v: Value| {
        result.data.insert(k.into(), v);
    };
    put("name", Value::from(entry.name.as_str()));
    put("opts", Value::from(entry.opts.as_str()));
    put("dump", Value::from(entry.dump.as_str()));
    put("passno", Value::from(entry.passno.as_str()));
    put("fstab", Value::from(fstab.as_str()));
    put("boot", Value::from(if boot { "yes" } else { "no" }));
    put("backup_file", Value::from(""));
    if let Some(s) = &entry.src {
        put("src", Value::from(s.as_str()));
    }
    if let Some(f) = &entry.fstype {
        put("fstype", Value::from(f.as_str()));
    }
    Ok(Ok(Task {
        state,
        entry,
        fstab,
        backup: args.bool("backup")?,
        result,
    }))
}

impl Module for Mount {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let t = match task(args)? {
            Ok(t) => t,
            Err(r) => return Ok(r),
        };
        let reqs = [
            ProbeReq {
                follow: true,
                content_max: Some(super::textfile::TEXT_MAX),
                ..ProbeReq::new(t.fstab.as_str())
            },
            ProbeReq::new(t.entry.name.as_str()),
        ];
        let (fstab, path) = match probe(ctx, "mount", &reqs)? {
            Ok(mut s) => (s.remove(0), s.remove(0)),
            Err(e) => return Ok(ModuleResult::failed(e)),
        };
        if let Err(e) = fstab.check_follow(&t.fstab) {
            return Ok(ModuleResult::failed(e));
        }
        let content = match (&fstab.kind, &fstab.content) {
            (Kind::Absent, _) => String::new(),
            (Kind::File, Some(c)) => String::from_utf8_lossy(c).into_owned(),
            _ => {
                return Ok(ModuleResult::failed(format!(
                    "Failed to open {} due to permission issue",
                    t.fstab
                )))
            }
        };
        let out = run_script(ctx, &mount_probe(&t.entry.name))?;
        let ms = parse_mount_probe(&out.stdout_str());
        apply::apply(ctx, t.into(), &fstab, &path, &content, &ms)
    }
}

impl From<Task> for apply::Job {
    fn from(t: Task) -> Self {
        apply::Job {
            state: t.state,
            entry: t.entry,
            fstab: t.fstab,
            backup: t.backup,
            result: t.result,
        }
    }
}

/// The fstab write: atomic, the old file's mode and owner kept, an optional backup. Pure.
pub fn fstab_script(fstab: &str, existing: &FileState, backup: bool) -> String {
    write_file_script(&WriteSpec {
        dest: existing
            .real_path
            .clone()
            .filter(|_| existing.exists())
            .unwrap_or_else(|| fstab.to_string()),
        existing: existing.exists().then(|| existing.clone()),
        backup,
        mkdirs: true,
        ..WriteSpec::default()
    })
}

pub mod apply;

#[cfg(test)]
mod tests;
