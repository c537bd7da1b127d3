//! `pip`: install, upgrade or remove Python packages with the target's pip, optionally inside a
//! virtualenv it creates first, as Ansible's pip module does.
//!
//! One round trip: the script creates the virtualenv when it is missing (`virtualenv_command`),
//! finds pip (the virtualenv's `pip3`/`pip`, `executable`, or `python3 -m pip.__main__` /
//! `pip3` on the PATH), and runs it. Like Ansible, a run reports `changed` from pip's output
//! ("Successfully installed", "Successfully uninstalled"), or from `pip list --format=freeze`
//! before and after with `requirements` or a VCS URL; check mode compares `pip list` with the
//! requirements ([`req`]). pip's output comes back after the end marker, framed by length.

use super::probe::{framed, run_script, section};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::{quote, split_words, WordRules};
use crate::value::Value;

pub mod req;
use req::{canonicalize, recover_package_names, Package};

pub struct Pip;

const SPEC: Spec = Spec::new(
    "pip",
    &[
        Param::str("state").default("present").choices(&[
            "present",
            "absent",
            "latest",
            "forcereinstall",
        ]),
        Param::list("name"),
        Param::str("version"),
        Param::str("requirements"),
        Param::path("virtualenv"),
        Param::bool("virtualenv_site_packages").default("false"),
        Param::path("virtualenv_command").default("virtualenv"),
        Param::str("virtualenv_python"),
        Param::str("extra_args"),
        Param::bool("editable").default("false"),
        Param::path("chdir"),
        Param::path("executable"),
        Param::str("umask"),
        Param::bool("break_system_packages").default("false"),
    ],
);

/// The validated arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipArgs {
    pub state: String,
    pub name: Option<Vec<String>>,
    pub version: Option<String>,
    pub requirements: Option<String>,
    /// The virtualenv (joined to `chdir` when both are given, as Ansible does).
    pub env: Option<String>,
    pub site_packages: bool,
    pub venv_command: String,
    pub venv_python: Option<String>,
    pub extra_args: Option<String>,
    pub chdir: Option<String>,
    pub executable: Option<String>,
    pub umask: Option<String>,
    pub break_system_packages: bool,
}

impl PipArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let name = args.list("name")?;
        let requirements = args.str("requirements")?;
        match (&name, &requirements) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::Args(
                    "parameters are mutually exclusive: name|requirements".into(),
                ))
            }
            (None, None) => {
                return Err(ModuleError::Args(
                    "one of the following is required: name, requirements".into(),
                ))
            }
            _ => {}
        }
        args.exclusive("executable", "virtualenv")?;
        let chdir = args.str("chdir")?;
        let env = args.str("virtualenv")?.map(|e| match &chdir {
            Some(c) if !e.starts_with('/') => format!("{}/{e}", c.trim_end_matches('/')),
            _ => e,
        });
        let umask = args.str("umask")?;
        if let Some(u) = &umask {
            if u.is_empty() || !u.chars().all(|c| ('0'..='7').contains(&c)) {
                return Err(ModuleError::Args("umask must be an octal integer".into()));
            }
        }
        let mut extra_args = args.str("extra_args")?.filter(|e| !e.is_empty());
        if args.bool("editable")? {
            let mut words: Vec<String> = extra_args
                .as_deref()
                .map(|e| e.split(' ').map(str::to_string).collect())
                .unwrap_or_default();
            if !words.iter().any(|w| w == "-e") {
                words.push("-e".into());
            }
            extra_args = Some(words.join(" "));
        }
        Ok(Self {
            state: args.str("state")?.unwrap_or_default(),
            name,
            version: args.str("version")?,
            requirements,
            env,
            site_packages: args.bool("virtualenv_site_packages")?,
            venv_command: args.str("virtualenv_command")?.unwrap_or_default(),
            venv_python: args.str("virtualenv_python")?.filter(|p| !p.is_empty()),
            extra_args,
            chdir,
            executable: args.str("executable")?,
            umask,
            break_system_packages: args.bool("break_system_packages")?,
        })
    }
}

/// What the module will run, decided before touching the target. Pure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipPlan {
    pub packages: Vec<Package>,
    pub has_vcs: bool,
    /// pip's arguments after the pip command itself.
    pub args: Vec<String>,
    /// The virtualenv command's words (`virtualenv_command`, split like `shlex`).
    pub venv_cmd: Vec<String>,
    /// Whether `venv_cmd` is Python's venv (no `-p` added).
    pub is_venv: bool,
}

/// Ansible's `_is_venv_command`: `pyvenv`, or `-m venv` among the arguments.
fn is_venv_command(words: &[String]) -> bool {
    if words.first().is_some_and(|w| w == "pyvenv") {
        return true;
    }
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        if w == "-m" {
            return it.next().is_some_and(|m| m == "venv");
        }
        if w == "-mvenv" || w == "-m=venv" {
            return true;
        }
    }
    false
}

/// The plan, or Ansible's failure message. Pure.
pub fn plan(a: &PipArgs) -> Result<PipPlan, String> {
    if a.state == "latest" && a.version.is_some() {
        return Err("version is incompatible with state=latest".into());
    }
    let mut p = PipPlan {
        args: match a.state.as_str() {
            "absent" => vec!["uninstall".into(), "-y".into()],
            "latest" => vec!["install".into(), "-U".into()],
            "forcereinstall" => vec!["install".into(), "-U".into(), "--force-reinstall".into()],
            _ => vec!["install".into()],
        },
        ..PipPlan::default()
    };
    p.venv_cmd = split_words(&a.venv_command, WordRules::CommandLine)?;
    if p.venv_cmd.is_empty() {
        return Err("virtualenv_command is empty".into());
    }
    p.is_venv = is_venv_command(&p.venv_cmd);
    if let Some(names) = &a.name {
        p.has_vcs = names.iter().any(|n| {
            ["svn+", "git+", "hg+", "bzr+"]
                .iter()
                .any(|v| n.starts_with(v))
        });
        p.packages = recover_package_names(names)
            .iter()
            .map(|n| Package::new(n, None))
            .collect();
        if let Some(v) = &a.version {
            if p.packages.len() > 1 {
                return Err("'version' argument is ambiguous when installing multiple package distributions. \
                            Please specify version restrictions next to each package in 'name' argument."
                    .into());
            }
            if p.packages[0].has_version_specifier() {
                return Err("The 'version' argument conflicts with any version specifier provided along with a package name. \
                            Please keep the version specifier, but remove the 'version' argument."
                    .into());
            }
            p.packages[0] = Package::new(&p.packages[0].word(), Some(v));
        }
    }
    if let Some(e) = &a.extra_args {
        p.args.extend(split_words(e, WordRules::CommandLine)?);
    }
    if a.name.is_some() {
        p.args.extend(p.packages.iter().map(Package::word));
    } else if let Some(r) = &a.requirements {
        p.args.extend(["-r".to_string(), r.clone()]);
    }
    Ok(p)
}

/// Whether check mode decides from `pip list` (otherwise it reports changed, as Ansible does).
fn check_lists(a: &PipArgs) -> bool {
    !(a.extra_args.is_some() || a.requirements.is_some() || a.state == "latest" || a.name.is_none())
}

fn words(v: &[String]) -> String {
    v.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// The blobs after the end marker, in order.
const BLOBS: [&str; 8] = ["pip", "msg", "vo", "ve", "fb", "o", "e", "fa"];

/// The one script: create the virtualenv, find pip, list or run. Pure.
pub fn script(a: &PipArgs, p: &PipPlan, check: bool) -> String {
    let mut s = String::from("kp_t=$(mktemp -d) || exit 1; trap 'rm -rf \"$kp_t\"' EXIT\n");
    s.push_str(&format!(
        "for kp_f in {}; do : > \"$kp_t/$kp_f\"; done; kp_v=1; kp_made=0; kp_vrc=0; kp_rc=0\n",
        BLOBS.join(" ")
    ));
    s.push_str(&format!(
        "kp_done() {{ {}; printf 'venv=%s\\nmade=%s\\nvrc=%s\\nrc=%s\\n' \"$kp_v\" \"$kp_made\" \"$kp_vrc\" \"$kp_rc\"; \
         {}; for kp_f in {}; do wc -c < \"$kp_t/$kp_f\"; done; {}; cat",
        section("state"),
        section("lens"),
        BLOBS.join(" "),
        section("end")
    ));
    for b in BLOBS {
        s.push_str(&format!(" \"$kp_t/{b}\""));
    }
    s.push_str("; exit 0; }\nkp_fail() { printf '%s' \"$1\" > \"$kp_t/msg\"; kp_done; }\n");
    s.push_str(&match &a.chdir {
        Some(c) => format!(
            "cd {} || kp_fail \"Unable to change directory to {}\"\n",
            quote(c),
            c.replace(['"', '$', '`', '\\'], "")
        ),
        None => "cd \"${TMPDIR:-/tmp}\" || cd /tmp || exit 1\n".into(),
    });
    if let Some(u) = &a.umask {
        s.push_str(&format!("umask {u} || exit 1\n"));
    }
    if let Some(env) = &a.env {
        s.push_str(&venv_part(a, p, env, check));
    }
    s.push_str(&find_pip(a));
    s.push_str("printf '%s\\n' \"$@\" > \"$kp_t/pip\"\n");
    if a.break_system_packages {
        s.push_str("PIP_BREAK_SYSTEM_PACKAGES=1; export PIP_BREAK_SYSTEM_PACKAGES\n");
    }
    let list = |to: &str| {
        format!(
            "LANG=C LC_ALL=C LC_MESSAGES=C \"$@\" list --format=freeze > \"$kp_t/{to}\" 2> \"$kp_t/e\" || \"$@\" freeze > \"$kp_t/{to}\" 2> \"$kp_t/e\"\n"
        )
    };
    if check {
        if check_lists(a) {
            s.push_str(&list("fb"));
        }
        s.push_str("kp_done\n");
        return s;
    }
    let freeze = a.requirements.is_some() || p.has_vcs;
    if freeze {
        s.push_str(&list("fb"));
    }
    let path = a
        .env
        .as_ref()
        .map(|e| format!("PATH={}/bin:\"$PATH\" ", quote(e)))
        .unwrap_or_default();
    s.push_str(&format!(
        "{path}\"$@\" {} > \"$kp_t/o\" 2> \"$kp_t/e\"; kp_rc=$?\n",
        words(&p.args)
    ));
    if freeze {
        s.push_str(&list("fa").replace("2> \"$kp_t/e\"", "2>/dev/null"));
    }
    s.push_str("kp_done\n");
    s
}

/// Create the virtualenv when `env/bin/activate` is missing (not in check mode).
fn venv_part(a: &PipArgs, p: &PipPlan, env: &str, check: bool) -> String {
    let q = quote(env);
    let mut s = format!("if [ ! -f {q}/bin/activate ]; then kp_v=0\n");
    if check {
        s.push_str("kp_done\n");
    } else {
        let cmd0 = &p.venv_cmd[0];
        if cmd0.contains('/') {
            s.push_str(&format!("kp_c0={}\n", quote(cmd0)));
        } else {
            s.push_str(&format!(
                "kp_c0=$(command -v {}) || kp_fail \"Failed to find required executable {} in paths: $PATH\"\n",
                quote(cmd0),
                cmd0.replace(['"', '$', '`', '\\'], "")
            ));
        }
        let mut rest = words(&p.venv_cmd[1..]);
        if a.site_packages {
            rest.push_str(" --system-site-packages");
        } else {
            s.push_str(
                "kp_ns=; if \"$kp_c0\" --help 2>/dev/null | grep -q -- --no-site-packages; then kp_ns=--no-site-packages; fi\n",
            );
            rest.push_str(" $kp_ns");
        }
        if p.is_venv {
            if a.venv_python.is_some() {
                s.push_str("kp_fail 'virtualenv_python should not be used when using the venv module or pyvenv as virtualenv_command'\n");
            }
        } else {
            match &a.venv_python {
                Some(py) => rest.push_str(&format!(" {}", quote(&format!("-p{py}")))),
                None => rest.push_str(" \"-p$(command -v python3)\""),
            }
        }
        s.push_str(&format!(
            "kp_made=1; \"$kp_c0\" {rest} {q} > \"$kp_t/vo\" 2> \"$kp_t/ve\"; kp_vrc=$?; [ $kp_vrc = 0 ] || kp_done\n"
        ));
    }
    s.push_str("fi\n");
    s
}

/// Ansible's `_get_pip`, in shell: sets `$@` to the pip command or fails.
fn find_pip(a: &PipArgs) -> String {
    if let Some(env) = &a.env {
        let q = quote(env);
        return format!(
            "if [ -f {q}/bin/pip3 ] && [ -x {q}/bin/pip3 ]; then set -- {q}/bin/pip3; \
             elif [ -f {q}/bin/pip ] && [ -x {q}/bin/pip ]; then set -- {q}/bin/pip; \
             else kp_fail {}; fi\n",
            quote(&format!(
                "Unable to find pip in the virtualenv, {env}, under any of these names: pip3, pip. Make sure pip is present in the virtualenv."
            ))
        );
    }
    match &a.executable {
        Some(e) if e.starts_with('/') => format!("set -- {}\n", quote(e)),
        Some(e) => format!(
            "kp_p=$(command -v {}) || kp_fail {}; set -- \"$kp_p\"\n",
            quote(e),
            quote(&format!(
                "Unable to find any of {e} to use.  pip needs to be installed."
            ))
        ),
        None => "kp_py=$(command -v python3); \
                 if [ -n \"$kp_py\" ] && \"$kp_py\" -c 'import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(\"pip\") else 1)' 2>/dev/null; then \
                 set -- \"$kp_py\" -m pip.__main__; \
                 elif kp_p=$(command -v pip3); then set -- \"$kp_p\"; \
                 else kp_fail 'Unable to find any of pip3 to use.  pip needs to be installed.'; fi\n"
            .into(),
    }
}

/// The script's report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub venv_existed: bool,
    pub venv_made: bool,
    pub venv_rc: i32,
    pub rc: i32,
    pub pip: Vec<String>,
    pub msg: String,
    pub venv_out: String,
    pub venv_err: String,
    pub freeze_before: String,
    pub out: String,
    pub err: String,
    pub freeze_after: String,
}

/// Parse the script's output: state, lengths, then the blobs. Pure.
pub fn parse_report(out: &[u8]) -> Result<Report, String> {
    let f = framed(out, "pip", BLOBS.len(), false)?;
    let state = f.sections.get("state").cloned().unwrap_or_default();
    let get = |k: &str| {
        state
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.trim().parse::<i32>().ok())
            .unwrap_or(0)
    };
    let blobs: Vec<String> = f
        .blobs
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let mut b = blobs.into_iter();
    let mut next = || b.next().unwrap_or_default();
    Ok(Report {
        venv_existed: get("venv") == 1,
        venv_made: get("made") == 1,
        venv_rc: get("vrc"),
        rc: get("rc"),
        pip: next().lines().map(str::to_string).collect(),
        msg: next(),
        venv_out: next(),
        venv_err: next(),
        freeze_before: next(),
        out: next(),
        err: next(),
        freeze_after: next(),
    })
}

/// Ansible's `_fail` message.
fn fail_msg(out: &str, err: &str) -> String {
    let mut m = String::new();
    if !out.is_empty() {
        m.push_str(&format!("stdout: {out}"));
    }
    if !err.is_empty() {
        m.push_str(&format!("\n:stderr: {err}"));
    }
    m
}

fn str_list(v: &[String]) -> Value {
    Value::Array(v.iter().map(|s| Value::from(s.as_str())).collect())
}

/// Check mode: whether any package is missing (present) or installed (absent). Pure.
pub fn check_changed(a: &PipArgs, p: &PipPlan, listing: &str) -> bool {
    let installed: Vec<(String, &str)> = listing
        .lines()
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("You are using")
                && !l.starts_with("You should consider")
        })
        .filter_map(|l| l.split_once("=="))
        .map(|(n, v)| (canonicalize(n), v))
        .collect();
    p.packages.iter().any(|pkg| {
        let present = installed
            .iter()
            .any(|(n, v)| *n == pkg.package_name && pkg.is_satisfied_by(v));
        (a.state == "present" && !present) || (a.state == "absent" && present)
    })
}

/// The result of a run from the script's report. Pure.
pub fn result_of(a: &PipArgs, p: &PipPlan, r: &Report, check: bool) -> ModuleResult {
    if !r.msg.is_empty() {
        return ModuleResult::failed(r.msg.clone());
    }
    if check {
        if !r.venv_existed && a.env.is_some() {
            return ModuleResult::changed();
        }
        if !check_lists(a) {
            return ModuleResult::changed();
        }
        let mut res = ModuleResult::ok();
        res.changed = check_changed(a, p, &r.freeze_before);
        res.stdout = Some(r.freeze_before.clone());
        res.stderr = Some(r.err.clone());
        let cmd = format!("{} list --format=freeze", r.pip.join(" "));
        return raw_output(res).set("cmd", cmd);
    }
    if r.venv_made && r.venv_rc != 0 {
        let mut cmd = p.venv_cmd.clone();
        cmd.push(a.env.clone().unwrap_or_default());
        return ModuleResult::failed(fail_msg(&r.venv_out, &r.venv_err)).set("cmd", str_list(&cmd));
    }
    let mut cmd = r.pip.clone();
    cmd.extend(p.args.iter().cloned());
    let out = format!("{}{}", r.venv_out, r.out);
    let err = format!("{}{}", r.venv_err, r.err);
    let not_installed = r.out.contains("not installed") || r.err.contains("not installed");
    if r.rc != 0 && !(r.rc == 1 && a.state == "absent" && not_installed) {
        return ModuleResult::failed(fail_msg(&out, &err)).set("cmd", str_list(&cmd));
    }
    let changed = if a.state == "absent" {
        r.out.contains("Successfully uninstalled")
    } else if a.requirements.is_some() || p.has_vcs {
        r.freeze_before != r.freeze_after
    } else {
        r.out.contains("Successfully installed")
    };
    let mut res = ModuleResult::ok();
    res.changed = changed || r.venv_made;
    res.stdout = Some(out);
    res.stderr = Some(err);
    let opt = |v: &Option<String>| v.as_deref().map_or(Value::Null, Value::from);
    raw_output(res)
        .set("cmd", str_list(&cmd))
        .set("name", a.name.as_deref().map_or(Value::Null, str_list))
        .set("version", opt(&a.version))
        .set("state", a.state.as_str())
        .set("requirements", opt(&a.requirements))
        .set("virtualenv", opt(&a.env))
}

/// The module returns pip's output as it is (trailing newline kept, as Ansible's pip module
/// does); `stdout_lines` and `stderr_lines` still come from the result's output.
fn raw_output(res: ModuleResult) -> ModuleResult {
    let (out, err) = (res.stdout.clone(), res.stderr.clone());
    let res = match out {
        Some(o) => res.set("stdout", o),
        None => res,
    };
    match err {
        Some(e) => res.set("stderr", e),
        None => res,
    }
}

impl Module for Pip {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let a = PipArgs::from_args(args)?;
        let p = match plan(&a) {
            Ok(p) => p,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        let out = run_script(ctx, &script(&a, &p, ctx.check_mode))?;
        match parse_report(&out.stdout) {
            Ok(r) if out.ok() => Ok(result_of(&a, &p, &r, ctx.check_mode)),
            _ => Ok(super::plan::failed_output("pip", &out)),
        }
    }
}

#[cfg(test)]
mod tests;
