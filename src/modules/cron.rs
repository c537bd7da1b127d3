//! `cron`: jobs and variables in a user's crontab or in /etc/cron.d files, with Ansible's
//! `#Ansible: NAME` markers so the files are byte-identical to what Ansible writes.
//!
//! The edit is a pure function over the current content; one probe reads it, one write
//! (`crontab -` on stdin, or an atomic file replace for `cron_file`) applies it.

use super::sysutil::{bool_or, choice, failed_output, opt_str, req_str, section, sections};
use super::{Args, FileDiff, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::{Value, Vars};

pub struct Cron;

const MARK: &str = "#Ansible: ";

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
    pub fn parse(args: &Vars) -> Result<Self, ModuleError> {
        let s = |names: &[&str]| -> Result<String, ModuleError> {
            Ok(opt_str(args, names)?.unwrap_or_else(|| "*".into()))
        };
        let special_time = match opt_str(args, &["special_time"])? {
            None => None,
            Some(_) => Some(choice(
                args,
                &["special_time"],
                &[
                    "reboot", "yearly", "annually", "monthly", "weekly", "daily", "hourly",
                ],
                "",
            )?),
        };
        let a = Self {
            name: req_str(args, &["name"])?,
            job: opt_str(args, &["job", "value"])?,
            present: choice(args, &["state"], &["present", "absent"], "present")? == "present",
            env: bool_or(args, &["env"], false)?,
            minute: s(&["minute"])?,
            hour: s(&["hour"])?,
            day: s(&["day", "dom"])?,
            month: s(&["month"])?,
            weekday: s(&["weekday", "dow"])?,
            special_time,
            disabled: bool_or(args, &["disabled"], false)?,
            user: opt_str(args, &["user"])?,
            cron_file: opt_str(args, &["cron_file"])?.map(|f| {
                if f.starts_with('/') {
                    f
                } else {
                    format!("/etc/cron.d/{f}")
                }
            }),
            insertafter: opt_str(args, &["insertafter"])?,
            insertbefore: opt_str(args, &["insertbefore"])?,
        };
        let fail = |m: &str| Err(ModuleError::Args(format!("cron: {m}")));
        if a.cron_file.as_deref() == Some("/etc/crontab") {
            return fail("Will not manage /etc/crontab via cron_file, see documentation.");
        }
        if a.special_time.is_some()
            && [&a.minute, &a.hour, &a.day, &a.month, &a.weekday]
                .iter()
                .any(|x| x.as_str() != "*")
        {
            return fail("You must specify time and date fields or special time.");
        }
        if a.insertafter.is_some() && a.insertbefore.is_some() {
            return fail("parameters are mutually exclusive: insertafter|insertbefore");
        }
        if a.present {
            if a.cron_file.is_some() && a.user.is_none() {
                return fail("To use cron_file=... parameter you must specify user=... as well");
            }
            if a.job.is_none() {
                return fail("You must specify 'job' to install a new cron job or variable");
            }
            if (a.insertafter.is_some() || a.insertbefore.is_some()) && !a.env {
                return fail("Insertafter and insertbefore parameters are valid only with env=yes");
            }
        }
        if a.env && a.name.contains(' ') {
            return fail("Invalid name for environment variable");
        }
        Ok(a)
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
        Some(f) => {
            let f = quote(f);
            format!(
                "umask 022; kp_t=$(mktemp \"$(dirname {f})/.kp-cron.XXXXXX\") || exit 1; \
                 if cat > \"$kp_t\"; then \
                 if [ -e {f} ]; then chmod --reference={f} \"$kp_t\" && chown --reference={f} \"$kp_t\"; else chmod 0644 \"$kp_t\"; fi && mv -f \"$kp_t\" {f}; \
                 else rm -f \"$kp_t\"; exit 1; fi"
            )
        }
        None => format!("crontab {} -", user_flag(a)),
    }
}

const SPEC: Spec = Spec::new(
    "cron",
    &[
        Param::raw("name"),
        Param::raw("job"),
        Param::raw("value"),
        Param::raw("state"),
        Param::raw("env"),
        Param::raw("minute"),
        Param::raw("hour"),
        Param::raw("day"),
        Param::raw("dom"),
        Param::raw("month"),
        Param::raw("weekday"),
        Param::raw("dow"),
        Param::raw("special_time"),
        Param::raw("disabled"),
        Param::raw("user"),
        Param::raw("cron_file"),
        Param::raw("insertafter"),
        Param::raw("insertbefore"),
        Param::raw("backup"),
    ],
);

impl Module for Cron {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let args = args.legacy_vars();
        let a = CronArgs::parse(args)?;
        let out = ctx.run(&probe_script(&a))?;
        let text = out.stdout_str();
        if !out.ok() || !text.contains("@@KP:end") {
            return Ok(failed_output("cron: reading the crontab", &out));
        }
        let s = sections(&text);
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
        let mut res = if !e.changed {
            ModuleResult::ok()
        } else if ctx.check_mode {
            ModuleResult::changed()
        } else {
            let out = ctx.run_with_stdin(&write_script(&a, &e), Some(e.content.as_bytes()))?;
            if !out.ok() {
                return Ok(failed_output("cron: writing the crontab", &out));
            }
            ModuleResult::changed()
        };
        if e.changed && ctx.diff {
            res.diff.push(FileDiff {
                path: a.cron_file.clone().unwrap_or_else(|| match &a.user {
                    Some(u) => format!("crontab for user \"{u}\""),
                    None => "crontab".into(),
                }),
                before: existing.clone(),
                after: if e.remove_file {
                    String::new()
                } else {
                    e.content.clone()
                },
            });
        }
        let list = |v: &[String]| Value::Array(v.iter().cloned().map(Value::String).collect());
        res = res.set("jobs", list(&e.jobs)).set("envs", list(&e.envs));
        if let Some(f) = &a.cron_file {
            res = res.set("cron_file", f.as_str());
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::sysutil::testing::{args, ctx, FakeRemote};
    use serde_json::json;

    fn ca(v: serde_json::Value) -> CronArgs {
        CronArgs::parse(&args(v)).unwrap()
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
                json!({"name": "j", "cron_file": "/etc/crontab", "user": "root", "job": "x"}),
                "/etc/crontab",
            ),
        ] {
            let e = CronArgs::parse(&args(a.clone())).unwrap_err().to_string();
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
        let run = |script: String, stdin: &str| {
            use std::io::Write;
            let mut c = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
            assert!(c.wait().unwrap().success());
        };
        run(write_script(&a, &e), &e.content);
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
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(probe_script(&a))
            .output()
            .unwrap();
        let s = sections(&String::from_utf8_lossy(&o.stdout));
        assert!(!edit(&a, &s["content"]).unwrap().changed);
    }

    #[test]
    fn run_flow_user_crontab() {
        let facts = Vars::new();
        let a = args(json!({"name": "j", "job": "x", "user": "deploy"}));
        let mut r = FakeRemote::new(&[(0, "\n@@KP:content\n\n@@KP:rc\n1\n\n@@KP:end\n"), (0, "")]);
        let res = Cron.execute(&a, &mut ctx(&mut r, &facts, false)).unwrap();
        assert!(res.changed);
        assert!(r.commands[0].contains("-u deploy"));
        assert!(r.commands[1].starts_with("crontab "));
        assert_eq!(
            r.stdins[1].as_deref(),
            Some(&b"#Ansible: j\n* * * * * x\n"[..])
        );
        assert_eq!(res.data["jobs"], json!(["j"]));
        // Missing crontab binary: clear failure.
        let mut r = FakeRemote::new(&[(127, "")]);
        let res = Cron.execute(&a, &mut ctx(&mut r, &facts, false)).unwrap();
        assert!(res.failed);
        // Check mode: nothing written.
        let mut r = FakeRemote::new(&[(0, "\n@@KP:content\n\n@@KP:rc\n1\n\n@@KP:end\n")]);
        assert!(
            Cron.execute(&a, &mut ctx(&mut r, &facts, true))
                .unwrap()
                .changed
        );
        assert_eq!(r.commands.len(), 1);
    }
}
