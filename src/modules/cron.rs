//! `cron`: jobs and variables in a user's crontab or in /etc/cron.d files, with Ansible's
//! `#Ansible: NAME` markers so the files are byte-identical to what Ansible writes.
//!
//! The edit is a pure function over the current content; one probe reads it, one write
//! (`crontab -` on stdin, or an atomic file replace for `cron_file`) applies it.

use super::plan::{failed_output, finish_command, Outcome, Plan, Report};
use super::probe::{probe_sections, section, sections};
use super::write::{write_file_script, WriteSpec};
use super::{Args, FileDiff, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

pub struct Cron;

const MARK: &str = "#Ansible: ";

const SPEC: Spec = Spec::new(
    "cron",
    &[
        Param::str("name").required(),
        Param::str("job").aliases(&["value"]),
        Param::str("state")
            .choices(&["present", "absent"])
            .default("present"),
        Param::bool("env").default("false"),
        Param::str("minute").default("*"),
        Param::str("hour").default("*"),
        Param::str("day").default("*").aliases(&["dom"]),
        Param::str("month").default("*"),
        Param::str("weekday").default("*").aliases(&["dow"]),
        Param::str("special_time").choices(&[
            "reboot", "yearly", "annually", "monthly", "weekly", "daily", "hourly",
        ]),
        Param::bool("disabled").default("false"),
        Param::str("user"),
        Param::path("cron_file"),
        Param::str("insertafter"),
        Param::str("insertbefore"),
        // The crontab is replaced without keeping a copy.
        Param::bool("backup").only("false"),
    ],
);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronArgs {
    pub name: String,
    pub job: Option<String>,
    pub present: bool,
    pub env: bool,
    pub minute: String,
    pub hour: String,
    pub day: String,
    pub month: String,
    pub weekday: String,
    pub special_time: Option<String>,
    pub disabled: bool,
    pub user: Option<String>,
    /// Absolute path (relative names are placed in /etc/cron.d).
    pub cron_file: Option<String>,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
}

impl CronArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let field = |name: &str| -> Result<String, ModuleError> {
            Ok(args.str(name)?.unwrap_or_else(|| "*".into()))
        };
        let a = Self {
            name: args.req_str("name")?,
            job: args.str("job")?,
            present: args.choice("state")?.as_deref() != Some("absent"),
            env: args.bool("env")?,
            minute: field("minute")?,
            hour: field("hour")?,
            day: field("day")?,
            month: field("month")?,
            weekday: field("weekday")?,
            special_time: args.choice("special_time")?,
            disabled: args.bool("disabled")?,
            user: args.str("user")?,
            cron_file: args.str("cron_file")?.map(|f| {
                if f.starts_with('/') {
                    f
                } else {
                    format!("/etc/cron.d/{f}")
                }
            }),
            insertafter: args.str("insertafter")?,
            insertbefore: args.str("insertbefore")?,
        };
        a.check().map_err(|m| ModuleError::Args(m.into()))?;
        Ok(a)
    }

    /// The combinations Ansible refuses.
    fn check(&self) -> Result<(), &'static str> {
        if self.cron_file.as_deref() == Some("/etc/crontab") {
            return Err("Will not manage /etc/crontab via cron_file, see documentation.");
        }
        if self.special_time.is_some()
            && [
                &self.minute,
                &self.hour,
                &self.day,
                &self.month,
                &self.weekday,
            ]
            .iter()
            .any(|x| x.as_str() != "*")
        {
            return Err("You must specify time and date fields or special time.");
        }
        if self.insertafter.is_some() && self.insertbefore.is_some() {
            return Err("parameters are mutually exclusive: insertafter|insertbefore");
        }
        if self.present {
            if self.cron_file.is_some() && self.user.is_none() {
                return Err("To use cron_file=... parameter you must specify user=... as well");
            }
            if self.job.is_none() {
                return Err("You must specify 'job' to install a new cron job or variable");
            }
            if (self.insertafter.is_some() || self.insertbefore.is_some()) && !self.env {
                return Err("Insertafter and insertbefore parameters are valid only with env=yes");
            }
        }
        if self.env && self.name.contains(' ') {
            return Err("Invalid name for environment variable");
        }
        Ok(())
    }

    /// The job line as Ansible renders it.
    pub fn job_line(&self) -> String {
        let job = self.job.as_deref().unwrap_or("").trim_matches(['\r', '\n']);
        let prefix = if self.disabled { "#" } else { "" };
        let user = match (&self.cron_file, &self.user) {
            (Some(_), Some(u)) => format!("{u} "),
            _ => String::new(),
        };
        match &self.special_time {
            Some(sp) => format!("{prefix}@{sp} {user}{job}"),
            None => format!(
                "{prefix}{} {} {} {} {} {user}{job}",
                self.minute, self.hour, self.day, self.month, self.weekday
            ),
        }
    }
}

/// The result of editing: new content and whether anything changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub changed: bool,
    /// Rendered content (what Ansible writes).
    pub content: String,
    /// `cron_file` became empty by removal: delete the file.
    pub remove_file: bool,
    pub jobs: Vec<String>,
    pub envs: Vec<String>,
}

/// Drop the up-to-three header lines old crontab implementations prepend to `crontab -l`.
pub fn strip_crontab_header(existing: &str) -> String {
    let header = |l: &str| {
        l.starts_with("# DO NOT EDIT THIS FILE - edit the master and reinstall.")
            || (l.starts_with("# (/tmp/") && l.contains("installed on"))
            || (l.starts_with("# (") && l.contains("version"))
    };
    let mut out = String::new();
    for (i, seg) in existing.split_inclusive('\n').enumerate() {
        let line = seg.trim_end_matches(['\r', '\n']);
        if i <= 2 && header(line) {
            continue;
        }
        out.push_str(seg);
    }
    out
}

fn lines_of(s: &str) -> Vec<String> {
    // Python's str.splitlines on \n / \r\n / \r.
    s.lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

fn render(lines: &[String]) -> String {
    let joined = lines.join("\n");
    if joined.is_empty() {
        joined
    } else {
        format!("{}\n", joined.trim_end_matches(['\r', '\n']))
    }
}

/// Pure: apply the task to `existing` (header already stripped for user crontabs).
pub fn edit(a: &CronArgs, existing: &str) -> Result<Edit, String> {
    let mut lines = lines_of(existing);
    let mut changed = false;
    let comment = format!("{MARK}{}", a.name);
    let mut remove_file = false;
    if a.env {
        let prefix = format!("{}=", a.name);
        let decl = format!("{}=\"{}\"", a.name, a.job.as_deref().unwrap_or(""));
        let old = lines.iter().position(|l| l.starts_with(&prefix));
        if a.present {
            match old {
                None => {
                    let at = match (&a.insertafter, &a.insertbefore) {
                        (None, None) => 0,
                        (after, before) => {
                            let other = after
                                .as_ref()
                                .or(before.as_ref())
                                .cloned()
                                .unwrap_or_default();
                            let p = format!("{other}=");
                            let i = lines
                                .iter()
                                .position(|l| l.starts_with(&p))
                                .ok_or_else(|| format!("Variable named '{other}' not found."))?;
                            if after.is_some() {
                                i + 1
                            } else {
                                i
                            }
                        }
                    };
                    lines.insert(at, decl);
                    changed = true;
                }
                Some(i) if lines[i] != decl => {
                    lines = lines
                        .into_iter()
                        .map(|l| {
                            if l.starts_with(&prefix) {
                                decl.clone()
                            } else {
                                l
                            }
                        })
                        .collect();
                    changed = true;
                }
                Some(_) => {}
            }
        } else if old.is_some() {
            lines.retain(|l| !l.starts_with(&prefix));
            changed = true;
        }
    } else if a.present {
        let job = a.job_line();
        match find_job(&mut lines, &a.name, Some(&job)) {
            None => {
                lines.push(comment.clone());
                lines.push(job);
                changed = true;
            }
            Some((old, inserted)) => {
                if old != job || inserted {
                    lines = update_job(&lines, &comment, Some(&job));
                    changed = true;
                }
            }
        }
    } else if find_job(&mut lines, &a.name, None).is_some() {
        lines = update_job(&lines, &comment, None);
        changed = true;
        if a.cron_file.is_some() && lines.iter().all(|l| l.trim().is_empty()) {
            remove_file = true;
        }
    }
    if !changed && !existing.is_empty() && !existing.ends_with(['\r', '\n']) {
        changed = true;
    }
    let jobs = lines
        .iter()
        .filter_map(|l| l.strip_prefix(MARK).map(str::to_string))
        .collect();
    let envs = lines
        .iter()
        .filter(|l| {
            l.split_once('=')
                .is_some_and(|(k, _)| !k.is_empty() && !k.contains(char::is_whitespace))
        })
        .filter_map(|l| l.split('=').next().map(str::to_string))
        .collect();
    Ok(Edit {
        changed,
        content: render(&lines),
        remove_file,
        jobs,
        envs,
    })
}

/// Ansible's find_job: by marker comment, else by an identical job line (then a marker is
/// inserted and the second value is true).
fn find_job(lines: &mut Vec<String>, name: &str, job: Option<&str>) -> Option<(String, bool)> {
    let mut comment: Option<&str> = None;
    for l in lines.iter() {
        if let Some(c) = comment {
            if c == name {
                return Some((l.clone(), false));
            }
            comment = None;
        } else if let Some(c) = l.strip_prefix(MARK) {
            comment = Some(c);
        }
    }
    let job = job?;
    let i = lines.iter().position(|l| l == job)?;
    let prev = if i == 0 {
        lines.last()
    } else {
        lines.get(i - 1)
    }
    .cloned();
    let prev = prev.unwrap_or_default();
    if !prev.starts_with(MARK) {
        lines.insert(i, format!("{MARK}{name}"));
        return Some((job.to_string(), true));
    }
    if !name.is_empty() && prev == format!("{MARK}None") {
        // Python's lines[i - 1] wraps to the last line when i == 0.
        let at = if i == 0 { lines.len() - 1 } else { i - 1 };
        lines[at] = format!("{MARK}{name}");
        return Some((job.to_string(), true));
    }
    None
}

/// Replace (or with `None` drop) the line after each marker `comment`, as Ansible's _update_job.
fn update_job(lines: &[String], comment: &str, job: Option<&str>) -> Vec<String> {
    let mut out = Vec::with_capacity(lines.len() + 1);
    let mut pending = false;
    for l in lines {
        if pending {
            if let Some(j) = job {
                out.push(comment.to_string());
                out.push(j.to_string());
            }
            pending = false;
        } else if l == comment {
            pending = true;
        } else {
            out.push(l.clone());
        }
    }
    out
}

/// `crontab` flags for the user (only when it differs from the connecting user).
fn user_flag(a: &CronArgs) -> String {
    match &a.user {
        Some(u) => format!("$( [ \"$(id -un)\" = {u} ] || echo -u {u} )", u = quote(u)),
        None => String::new(),
    }
}

pub fn probe_script(a: &CronArgs) -> String {
    match &a.cron_file {
        Some(f) => format!(
            "{}; if [ -e {f} ]; then echo 1; {}; cat {f}; fi; {}",
            section("exists"),
            section("content"),
            section("end"),
            f = quote(f)
        ),
        None => format!(
            "if ! command -v crontab >/dev/null 2>&1; then echo 'crontab command not found on the target (install the cron package, or use cron_file)' >&2; exit 127; fi\n\
             {}; crontab {} -l 2>/dev/null; kp_rc=$?; {}; echo $kp_rc; {}",
            section("content"),
            user_flag(a),
            section("rc"),
            section("end")
        ),
    }
}

pub fn write_script(a: &CronArgs, e: &Edit) -> String {
    match &a.cron_file {
        Some(f) if e.remove_file => format!("rm -f {}", quote(f)),
        // A new file (0644 under umask 022, root's) replaces the old one; nothing follows a link
        // planted beside it.
        Some(f) => format!(
            "umask 022\n{}",
            write_file_script(&WriteSpec {
                dest: f.clone(),
                ..WriteSpec::default()
            })
        ),
        None => format!("crontab {} -", user_flag(a)),
    }
}

/// Where the diff says the content lives.
fn diff_path(a: &CronArgs) -> String {
    a.cron_file.clone().unwrap_or_else(|| match &a.user {
        Some(u) => format!("crontab for user \"{u}\""),
        None => "crontab".into(),
    })
}

/// Pure: write the edited content (on stdin) when it changed.
pub fn outcome(a: &CronArgs, existing: &str, e: &Edit) -> Outcome {
    if !e.changed {
        return Outcome::new(Plan::NoChange);
    }
    Outcome::new(Plan::Change {
        script: write_script(a, e),
        stdin: Some(e.content.clone().into_bytes()),
        diff: Some(FileDiff {
            path: diff_path(a),
            before: existing.to_string(),
            after: if e.remove_file {
                String::new()
            } else {
                e.content.clone()
            },
        }),
    })
}

impl Module for Cron {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let a = CronArgs::from_args(args)?;
        let out = match probe_sections(ctx, &probe_script(&a))? {
            Ok(out) => out,
            Err(out) => return Ok(failed_output("cron: reading the crontab", &out)),
        };
        let s = sections(&out.stdout_str());
        let existing = match &a.cron_file {
            Some(_) => s.get("content").cloned().unwrap_or_default(),
            None => {
                let rc: i32 = s.get("rc").and_then(|r| r.trim().parse().ok()).unwrap_or(1);
                if rc != 0 && rc != 1 {
                    return Ok(failed_output("Unable to read crontab", &out));
                }
                strip_crontab_header(s.get("content").map(String::as_str).unwrap_or(""))
            }
        };
        let e = match edit(&a, &existing) {
            Ok(e) => e,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        let report = Report::quiet("cron: writing the crontab");
        let res = finish_command(ctx, outcome(&a, &existing, &e), &report)?;
        if res.failed {
            return Ok(res);
        }
        let res = res.set("jobs", e.jobs).set("envs", e.envs);
        Ok(match &a.cron_file {
            Some(f) => res.set("cron_file", f.as_str()),
            None => res,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{args, ctx, out, parse_with, sh, FakeRemote};
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<CronArgs, ModuleError> {
        parse_with(&SPEC, v, CronArgs::from_args)
    }

    fn ca(v: serde_json::Value) -> CronArgs {
        parse(v).unwrap()
    }

    #[test]
    fn edit_table() {
        let cases: Vec<(serde_json::Value, &str, bool, &str)> = vec![
            // add to empty crontab
            (
                json!({"name": "backup", "minute": "0", "hour": "5,2", "job": "ls -alh > /dev/null"}),
                "",
                true,
                "#Ansible: backup\n0 5,2 * * * ls -alh > /dev/null\n",
            ),
            // already present: unchanged, content identical
            (
                json!({"name": "backup", "minute": "0", "hour": "5,2", "job": "ls -alh > /dev/null"}),
                "MAILTO=x\n#Ansible: backup\n0 5,2 * * * ls -alh > /dev/null\n",
                false,
                "MAILTO=x\n#Ansible: backup\n0 5,2 * * * ls -alh > /dev/null\n",
            ),
            // schedule changed: replaced in place
            (
                json!({"name": "backup", "hour": "3", "job": "run"}),
                "#Ansible: backup\n* 4 * * * run\n# other\n",
                true,
                "#Ansible: backup\n* 3 * * * run\n# other\n",
            ),
            // an identical unmarked job gets a marker
            (
                json!({"name": "j", "job": "run"}),
                "* * * * * run\n",
                true,
                "#Ansible: j\n* * * * * run\n",
            ),
            // disabled + special time
            (
                json!({"name": "r", "special_time": "reboot", "job": "/bin/boot", "disabled": true}),
                "",
                true,
                "#Ansible: r\n#@reboot /bin/boot\n",
            ),
            // absent removes marker and job
            (
                json!({"name": "backup", "state": "absent"}),
                "A=1\n#Ansible: backup\n* * * * * x\n#Ansible: keep\n* * * * * y\n",
                true,
                "A=1\n#Ansible: keep\n* * * * * y\n",
            ),
            (json!({"name": "backup", "state": "absent"}), "", false, ""),
            // a missing final newline counts as a change
            (
                json!({"name": "j", "job": "run"}),
                "#Ansible: j\n* * * * * run",
                true,
                "#Ansible: j\n* * * * * run\n",
            ),
            // env variables
            (
                json!({"name": "PATH", "env": true, "job": "/bin:/usr/bin"}),
                "#Ansible: j\n* * * * * run\n",
                true,
                "PATH=\"/bin:/usr/bin\"\n#Ansible: j\n* * * * * run\n",
            ),
            (
                json!({"name": "B", "env": true, "job": "2", "insertafter": "A"}),
                "A=\"1\"\nC=\"3\"\n",
                true,
                "A=\"1\"\nB=\"2\"\nC=\"3\"\n",
            ),
        ];
        for (a, before, changed, after) in cases {
            let e = edit(&ca(a.clone()), before).unwrap();
            assert_eq!((e.changed, e.content.as_str()), (changed, after), "{a}");
        }
    }

    #[test]
    fn cron_file_lines_carry_the_user_and_empty_files_go_away() {
        let a = ca(
            json!({"name": "j", "cron_file": "kp", "user": "root", "minute": "*/5", "job": "x"}),
        );
        assert_eq!(a.cron_file.as_deref(), Some("/etc/cron.d/kp"));
        assert_eq!(
            edit(&a, "").unwrap().content,
            "#Ansible: j\n*/5 * * * * root x\n"
        );
        let rm = ca(json!({"name": "j", "cron_file": "kp", "state": "absent"}));
        let e = edit(&rm, "#Ansible: j\n*/5 * * * * root x\n").unwrap();
        assert!(e.changed && e.remove_file);
        assert_eq!(write_script(&rm, &e), "rm -f /etc/cron.d/kp");
    }

    #[test]
    fn argument_errors() {
        for (a, needle) in [
            (
                json!({"name": "j", "cron_file": "kp", "job": "x"}),
                "specify user",
            ),
            (json!({"name": "j"}), "'job'"),
            (
                json!({"name": "j", "job": "x", "special_time": "daily", "hour": "1"}),
                "special time",
            ),
            (
                json!({"name": "j", "job": "x", "special_time": "sometimes"}),
                "'special_time'",
            ),
            (json!({"job": "x"}), "'name'"),
            (
                json!({"name": "j", "env": true, "job": "1", "insertafter": "A", "insertbefore": "B"}),
                "cron: parameters are mutually exclusive: insertafter|insertbefore",
            ),
            (
                json!({"name": "j", "job": "x", "backup": true}),
                "only backup=false",
            ),
            (
                json!({"name": "j", "job": "x", "disabled": "maybe"}),
                "'disabled'",
            ),
            (
                json!({"name": "j", "cron_file": "/etc/crontab", "user": "root", "job": "x"}),
                "/etc/crontab",
            ),
        ] {
            let e = parse(a.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{a}: {e}");
        }
    }

    #[test]
    fn strips_old_headers() {
        let s = "# DO NOT EDIT THIS FILE - edit the master and reinstall.\n# (/tmp/crontab.x installed on Mon)\n# (Cron version -- $Id$)\n#Ansible: a\n* * * * * b\n";
        assert_eq!(strip_crontab_header(s), "#Ansible: a\n* * * * * b\n");
    }

    #[test]
    fn cron_file_write_script_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("kp").display().to_string();
        let a = ca(json!({"name": "j", "cron_file": f, "user": "root", "job": "x"}));
        let e = edit(&a, "").unwrap();
        assert!(sh(&write_script(&a, &e), Some(e.content.as_bytes())).ok());
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "#Ansible: j\n* * * * * root x\n"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // The probe reads it back exactly and the second edit is a no-op.
        let s = sections(&sh(&probe_script(&a), None).stdout_str());
        assert!(!edit(&a, &s["content"]).unwrap().changed);
    }

    #[test]
    fn run_flow_user_crontab() {
        let a = args(json!({"name": "j", "job": "x", "user": "deploy"}));
        let mut r = FakeRemote::new(vec![
            out(0, "\n@@KP:content\n\n@@KP:rc\n1\n\n@@KP:end\n"),
            out(0, ""),
        ]);
        let res = Cron
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.changed);
        assert!(r.seen[0].0.contains("-u deploy"));
        assert!(r.seen[1].0.starts_with("crontab "));
        assert_eq!(
            r.seen[1].1.as_deref(),
            Some(&b"#Ansible: j\n* * * * * x\n"[..])
        );
        assert_eq!(res.data["jobs"], json!(["j"]));
        // Missing crontab binary: clear failure.
        let mut r = FakeRemote::new(vec![out(127, "")]);
        let res = Cron
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.failed);
        // Check mode: nothing written.
        let mut r = FakeRemote::new(vec![out(0, "\n@@KP:content\n\n@@KP:rc\n1\n\n@@KP:end\n")]);
        assert!(
            Cron.execute(&a, &mut ctx(&mut r, true, false, vec![]))
                .unwrap()
                .changed
        );
        assert_eq!(r.seen.len(), 1);
    }

    #[test]
    fn run_flow_diff_in_check_mode_and_unreadable_crontab() {
        let a = args(json!({"name": "j", "job": "x", "user": "deploy"}));
        let probe = "\n@@KP:content\nA=1\n\n@@KP:rc\n0\n\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, probe)]);
        let res = Cron
            .execute(&a, &mut ctx(&mut r, true, true, vec![]))
            .unwrap();
        assert!(res.changed);
        assert_eq!(
            res.diff,
            vec![FileDiff {
                path: "crontab for user \"deploy\"".into(),
                before: "A=1\n".into(),
                after: "A=1\n#Ansible: j\n* * * * * x\n".into(),
            }]
        );
        assert_eq!(res.data["envs"], json!(["A"]));
        let probe = "\n@@KP:content\n\n@@KP:rc\n2\n\n@@KP:end\n";
        let mut r = FakeRemote::new(vec![out(0, probe)]);
        let res = Cron
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert_eq!(
            res.msg.as_deref(),
            Some("Unable to read crontab failed (rc=0)")
        );
    }
}
