//! `sysctl` (ansible.posix): one kernel parameter in a sysctl file (default `/etc/sysctl.conf`),
//! optionally set in the running kernel (`sysctl -w`) and the file reloaded (`sysctl -p FILE`).
//! The file edit is the collection's: once anything changes, every line is rewritten stripped,
//! `key = value` lines normalised to `key=value` and later duplicates of a key dropped ([`edit`],
//! pure). One probe round trip reads the file and the kernel's current value.

use super::plan::{finish, Outcome, Plan};
use super::probe::{probe_sections, section, sections};
use super::write::{write_file_script, WriteSpec};
use super::{Args, FileDiff, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

pub struct Sysctl;

const SPEC: Spec = Spec::new(
    "sysctl",
    &[
        Param::str("name").required().aliases(&["key"]),
        Param::str("value").aliases(&["val"]),
        Param::str("state")
            .choices(&["present", "absent"])
            .default("present"),
        Param::bool("reload").default("true"),
        Param::bool("sysctl_set").default("false"),
        Param::bool("ignoreerrors").default("false"),
        Param::path("sysctl_file").default("/etc/sysctl.conf"),
    ],
);

/// Largest sysctl file read (its content travels in the probe).
const FILE_MAX: u64 = 16 * 1024 * 1024;

/// The collection's `_parse_value`: booleans as `1`/`0`, other text stripped.
pub fn parse_value(v: Option<&str>) -> String {
    let Some(v) = v else {
        return String::new();
    };
    match v.to_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "1.0" | "t" => "1".into(),
        "n" | "no" | "off" | "0" | "false" | "0.0" | "f" => "0".into(),
        _ => py_strip(v).to_string(),
    }
}

/// Python's `str.strip()` (ASCII whitespace and the other Unicode spaces `char` knows).
fn py_strip(s: &str) -> &str {
    s.trim()
}

/// Equal as whitespace-separated words (the collection's `_values_is_equal`).
pub fn values_equal(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.split_whitespace().eq(b.split_whitespace()))
}

/// What the file and the kernel need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub changed: bool,
    /// The new file content, when the file is rewritten.
    pub write: Option<String>,
    /// Set the value in the running kernel.
    pub set_proc: bool,
}

/// The decision for `name`/`value` over the file's `content` (None: absent) and the kernel's
/// current value (`proc`: None when `sysctl -n` failed). Pure.
pub fn edit(
    content: Option<&str>,
    name: &str,
    value: &str,
    present: bool,
    reload: bool,
    sysctl_set: bool,
    proc: Option<&str>,
) -> Decision {
    let lines: Vec<&str> = content
        .map(|c| c.split_inclusive('\n').map(py_strip).collect())
        .unwrap_or_default();
    let kv = |line: &str| -> Option<(String, String)> {
        if line.is_empty() || line.starts_with(['#', ';']) || !line.contains('=') {
            return None;
        }
        let (k, v) = line.split_once('=')?;
        Some((py_strip(k).to_string(), py_strip(v).to_string()))
    };
    // The last value of each key counts (a dict filled in file order).
    let file_value = lines
        .iter()
        .rev()
        .filter_map(|l| kv(l))
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v)
        .next();
    let mut changed = false;
    let mut write = false;
    match &file_value {
        None if present => (changed, write) = (true, true),
        None => {}
        Some(v) if !v.is_empty() && !present => (changed, write) = (true, true),
        Some(v) if v != value => (changed, write) = (true, true),
        Some(_) if reload && (proc.is_none() || !values_equal(proc, value)) => changed = true,
        Some(_) => {}
    }
    let mut set_proc = false;
    if sysctl_set && present {
        if proc.is_none() {
            changed = true;
        } else if !values_equal(proc, value) {
            changed = true;
            set_proc = true;
        }
    }
    let write = write.then(|| {
        let mut checked: Vec<String> = Vec::new();
        let mut out = String::new();
        for line in &lines {
            let Some((k, v)) = kv(line) else {
                out.push_str(line);
                out.push('\n');
                continue;
            };
            if checked.contains(&k) {
                continue;
            }
            checked.push(k.clone());
            if k != name {
                out.push_str(&format!("{k}={v}\n"));
            } else if present {
                out.push_str(&format!("{k}={value}\n"));
            }
        }
        if present && !checked.iter().any(|k| k == name) {
            out.push_str(&format!("{name}={value}\n"));
        }
        out
    });
    Decision {
        changed,
        write,
        set_proc,
    }
}

/// The probe: the file (followed, as the collection reads and writes its real path) and the
/// kernel's value. Pure.
fn probe_script(file: &str, name: &str) -> String {
    format!(
        "f={f}; {s_real}; readlink -f -- \"$f\" || printf '%s\\n' \"$f\"; {s_file}; \
         if [ -f \"$f\" ]; then if [ $(stat -L -c %s -- \"$f\") -gt {FILE_MAX} ]; then echo large; \
         else echo file; base64 -w0 < \"$f\" || exit 1; fi; else echo absent; fi; \
         {s_proc}; LANG=C LC_ALL=C sysctl -e -n {n} 2>/dev/null; echo \"rc=$?\"; {s_end}",
        f = quote(file),
        n = quote(name),
        s_real = section("real"),
        s_file = section("file"),
        s_proc = section("proc"),
        s_end = section("end"),
    )
}

/// A `LANG=C` sysctl command and the collection's failure test on its output.
fn sysctl_failed(out: &crate::ssh::ExecOutput) -> bool {
    let re = regex::Regex::new(
        r#"(?m)^sysctl: setting key "[^"]+": (Invalid argument|Read-only file system)$"#,
    )
    .expect("valid pattern");
    out.rc != 0 || re.is_match(&out.stderr_str())
}

impl Module for Sysctl {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let name = py_strip(&args.req_str("name")?).to_string();
        let present = args.choice("state")?.as_deref() != Some("absent");
        let raw_value = args.str("value")?;
        if name.is_empty() {
            return Ok(ModuleResult::failed("name cannot be blank"));
        }
        match raw_value.as_deref() {
            None if present => return Ok(ModuleResult::failed("value cannot be None")),
            Some("") if present => return Ok(ModuleResult::failed("value cannot be blank")),
            _ => {}
        }
        let value = parse_value(raw_value.as_deref());
        let file = args
            .str("sysctl_file")?
            .unwrap_or_else(|| "/etc/sysctl.conf".into());
        let (reload, sysctl_set) = (args.bool("reload")?, args.bool("sysctl_set")?);
        let ignore = args.bool("ignoreerrors")?;
        let out = match probe_sections(ctx, &probe_script(&file, &name))? {
            Ok(o) => o,
            Err(o) => {
                return Ok(ModuleResult::failed(format!(
                    "sysctl: probing {file} failed: {}",
                    o.stderr_str().trim()
                ))
                .with_output(&o))
            }
        };
        let text = out.stdout_str();
        let s = sections(&text);
        let real = s.get("real").map_or(file.clone(), |r| r.trim().to_string());
        let content = match s.get("file").map(|f| f.split_once('\n').unwrap_or((f, ""))) {
            Some(("file", b64)) => {
                use base64::Engine;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| ModuleError::Local(format!("bad probe reply: {e}")))?;
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            Some(("large", _)) => {
                return Ok(ModuleResult::failed(format!(
                    "{file} is larger than {FILE_MAX} bytes; refusing to edit it"
                )))
            }
            _ => None,
        };
        let proc_text = s.get("proc").cloned().unwrap_or_default();
        let (proc_out, rc) = proc_text.rsplit_once("rc=").unwrap_or(("", "1"));
        let proc = (rc.trim() == "0").then_some(proc_out);
        let d = edit(
            content.as_deref(),
            &name,
            &value,
            present,
            reload,
            sysctl_set,
            proc,
        );
        let mut result = ModuleResult::ok();
        result.changed = d.changed;
        if ctx.check_mode || !d.changed {
            return Ok(result);
        }
        apply(
            ctx, &d, &name, &value, &real, content, ignore, reload, result,
        )
    }
}

/// Set the kernel value, write the file and reload it, as the collection does, in that order.
#[allow(clippy::too_many_arguments)]
fn apply(
    ctx: &mut ModuleCtx<'_>,
    d: &Decision,
    name: &str,
    value: &str,
    real: &str,
    content: Option<String>,
    ignore: bool,
    reload: bool,
    mut result: ModuleResult,
) -> Result<ModuleResult, ModuleError> {
    let e = if ignore { "-e " } else { "" };
    if d.set_proc {
        let v = if value.split_whitespace().next().is_some() {
            format!("\"{value}\"")
        } else {
            value.to_string()
        };
        let cmd = format!(
            "LANG=C LC_ALL=C LC_MESSAGES=C sysctl {e}-w {}",
            quote(&format!("{name}={v}"))
        );
        let o = ctx.run(&cmd)?;
        if sysctl_failed(&o) {
            let msg = format!(
                "setting {name} failed: {}{}",
                o.stdout_str(),
                o.stderr_str()
            );
            return Ok(ModuleResult::failed(msg).with_output(&o));
        }
    }
    if let Some(new) = d.write.clone() {
        let spec = WriteSpec {
            dest: real.to_string(),
            existing: None,
            ..WriteSpec::default()
        };
        let plan = Plan::Change {
            script: keep_attrs_script(real, &write_file_script(&spec)),
            stdin: Some(new.clone().into_bytes()),
            diff: Some(FileDiff {
                path: real.to_string(),
                before: content.clone().unwrap_or_default(),
                after: new,
            }),
        };
        let r = finish(ctx, Outcome::new(plan))?;
        if r.failed {
            return Ok(r);
        }
        result.diff = r.diff;
    }
    if reload {
        let cmd = format!("LANG=C LC_ALL=C LC_MESSAGES=C sysctl {e}-p {}", quote(real));
        let o = ctx.run(&cmd)?;
        if sysctl_failed(&o) {
            let msg = format!(
                "Failed to reload sysctl: {}{}",
                o.stdout_str(),
                o.stderr_str()
            );
            return Ok(ModuleResult::failed(msg).with_output(&o));
        }
    }
    Ok(result)
}

/// The write script, keeping an existing file's mode and owner (Ansible's `atomic_move`): the
/// mode and ownership are read on the target just before the rename.
fn keep_attrs_script(real: &str, write: &str) -> String {
    // write_file_script keeps the attributes of `existing`; the probe did not stat the file, so
    // the script copies them with `chmod --reference` after the write instead.
    format!(
        "kp_ref=$(stat -c '%a %u:%g' -- {q} 2>/dev/null); {write} && \
         if [ -n \"$kp_ref\" ]; then chmod \"${{kp_ref% *}}\" -- {q} && chown \"${{kp_ref#* }}\" -- {q}; fi",
        q = quote(real)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_like_the_collection() {
        assert_eq!(parse_value(Some("yes")), "1");
        assert_eq!(parse_value(Some("False")), "0");
        assert_eq!(parse_value(Some(" 4096 8192 ")), "4096 8192");
        assert_eq!(parse_value(None), "");
        assert!(values_equal(Some("4096\t8192\n"), "4096 8192"));
        assert!(!values_equal(None, "1"));
    }

    #[test]
    fn the_file_is_normalised_only_when_it_changes() {
        let file = "# comment\n  net.a = 1 \nnet.b=2\nnet.a=3\n\nbad line";
        // (name, value, present, proc) -> (changed, new file)
        type Case<'a> = (
            &'a str,
            &'a str,
            bool,
            Option<&'a str>,
            bool,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            // The last value of a key counts; the same value: no change.
            ("net.a", "3", true, Some("3\n"), false, None),
            (
                "net.a",
                "5",
                true,
                None,
                true,
                Some("# comment\nnet.a=5\nnet.b=2\n\nbad line\n"),
            ),
            (
                "net.c",
                "1",
                true,
                None,
                true,
                Some("# comment\nnet.a=1\nnet.b=2\n\nbad line\nnet.c=1\n"),
            ),
            (
                "net.b",
                "",
                false,
                None,
                true,
                Some("# comment\nnet.a=1\n\nbad line\n"),
            ),
            ("net.z", "", false, None, false, None),
        ];
        for (name, value, present, proc, changed, new) in cases {
            let d = edit(Some(file), name, value, *present, false, false, *proc);
            assert_eq!(d.changed, *changed, "{name}={value}");
            assert_eq!(d.write.as_deref(), *new, "{name}={value}");
        }
        assert_eq!(
            edit(None, "k", "1", true, false, false, None)
                .write
                .as_deref(),
            Some("k=1\n")
        );
    }

    #[test]
    fn the_kernel_value_matters_with_reload_or_sysctl_set() {
        let f = Some("k=1\n");
        assert!(!edit(f, "k", "1", true, true, false, Some("1\n")).changed);
        assert!(edit(f, "k", "1", true, true, false, Some("0\n")).changed);
        assert!(edit(f, "k", "1", true, true, false, None).changed);
        let d = edit(f, "k", "1", true, false, true, Some("0"));
        assert!(d.changed && d.set_proc && d.write.is_none());
        let d = edit(f, "k", "1", true, false, true, None);
        assert!(d.changed && !d.set_proc);
    }
}
