//! `git`: clone a repository onto the target or bring a checkout to a version, with the target's
//! `git`, as Ansible's git module does (`before`, `after`, `changed`, `remote_url_changed`).
//!
//! Two round trips at most: the probe (git's path, the checkout's HEAD, local modifications,
//! remote URL and head branch, and `git ls-remote` of the repository), from which the plan is
//! decided here ([`decide`]: clone, update, report only, or fail as Ansible does); then the apply
//! script, which runs Ansible's sequence of git commands (clone or reset/set-url/fetch, then the
//! version switch and submodules) and stops at the first failure with Ansible's message. SSH
//! options reach git through `GIT_SSH_COMMAND` (`BatchMode=yes` always; `accept_hostkey` and
//! `accept_newhostkey` add `StrictHostKeyChecking=no`/`accept-new`, and the former is reported as
//! a warning). Git's output comes back after the end marker, framed by length.

use super::probe::{framed, run_script, section};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;

pub struct Git;

const SPEC: Spec = Spec::new(
    "git",
    &[
        Param::str("repo").required().aliases(&["name"]),
        Param::path("dest"),
        Param::str("version").default("HEAD"),
        Param::str("remote").default("origin"),
        Param::bool("force").default("false"),
        Param::int("depth"),
        Param::bool("clone").default("true"),
        Param::bool("update").default("true"),
        Param::bool("accept_hostkey").default("false"),
        Param::bool("accept_newhostkey").default("false"),
        Param::path("key_file"),
        Param::str("ssh_opts"),
        Param::path("executable"),
        Param::bool("bare").default("false"),
        Param::bool("recursive").default("true"),
        Param::bool("single_branch").default("false"),
        Param::raw("umask"),
        Param::bool("track_submodules").only("false"),
        Param::bool("verify_commit").only("false"),
        Param::str("refspec").refused("extra refspecs are not fetched"),
        Param::str("reference").refused("reference repositories are not used"),
        Param::list("gpg_allowlist").refused("signatures are not verified"),
        Param::path("archive").refused("archives are not created"),
        Param::str("archive_prefix").refused("archives are not created"),
        Param::path("separate_git_dir").refused("separate git directories are not managed"),
    ],
);

/// The validated arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitArgs {
    /// As given, then `file://`-prefixed when it is a local path (as Ansible does).
    pub repo: String,
    pub dest: Option<String>,
    pub version: String,
    pub remote: String,
    pub force: bool,
    pub depth: Option<u64>,
    pub clone: bool,
    pub update: bool,
    pub bare: bool,
    pub recursive: bool,
    pub single_branch: bool,
    pub umask: Option<String>,
    pub executable: Option<String>,
    /// The value of `GIT_SSH_COMMAND` after the user's `ssh`/`GIT_SSH` command.
    pub ssh_opts: String,
    pub warnings: Vec<String>,
}

impl GitArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        args.exclusive("accept_hostkey", "accept_newhostkey")?;
        let mut repo = args.req_str("repo")?;
        if repo.starts_with('/') {
            repo = format!("file://{repo}");
        }
        let clone = args.bool("clone")?;
        let dest = args.str("dest")?.filter(|d| !d.is_empty());
        if dest.is_none() && clone {
            return Err(ModuleError::Args(
                "the destination directory must be specified unless clone=no".into(),
            ));
        }
        let umask = match args.value("umask")? {
            None => None,
            Some(Value::String(s))
                if !s.is_empty() && s.chars().all(|c| ('0'..='7').contains(&c)) =>
            {
                Some(s)
            }
            Some(Value::String(_)) => {
                return Err(ModuleError::Args("umask must be an octal integer".into()))
            }
            Some(_) => {
                return Err(ModuleError::Args(
                    "umask must be defined as a quoted octal integer".into(),
                ))
            }
        };
        let mut warnings = Vec::new();
        let mut opts = args.str("ssh_opts")?.unwrap_or_default();
        let strict = |o: &str| {
            o.contains("-o StrictHostKeyChecking=no")
                || o.contains("-o StrictHostKeyChecking=accept-new")
        };
        if args.bool("accept_hostkey")? {
            warnings.push(
                "accept_hostkey=yes disables SSH host key checking for this repository \
                 (StrictHostKeyChecking=no); accept_newhostkey=yes only accepts unknown hosts"
                    .to_string(),
            );
            if !strict(&opts) {
                opts.push_str(" -o StrictHostKeyChecking=no");
            }
        }
        if args.bool("accept_newhostkey")? && !strict(&opts) {
            opts.push_str(" -o StrictHostKeyChecking=accept-new");
        }
        if !opts.contains("BatchMode=yes") {
            opts.push_str(" -o BatchMode=yes");
        }
        if let Some(k) = args.str("key_file")?.filter(|k| !k.is_empty()) {
            let key = format!("-i {}", quote(&k));
            if !opts.contains(&key) {
                opts.push_str(&format!("  {key}"));
            }
            if !opts.contains("IdentitiesOnly=yes") {
                opts.push_str(" -o IdentitiesOnly=yes");
            }
        }
        let depth = match args.int("depth")? {
            Some(d) if d > 0 => Some(d as u64),
            _ => None,
        };
        Ok(Self {
            repo,
            dest,
            version: args.str("version")?.unwrap_or_else(|| "HEAD".into()),
            remote: args.str("remote")?.unwrap_or_else(|| "origin".into()),
            force: args.bool("force")?,
            depth,
            clone,
            update: args.bool("update")?,
            bare: args.bool("bare")?,
            recursive: args.bool("recursive")?,
            single_branch: args.bool("single_branch")?,
            umask,
            executable: args.str("executable")?.filter(|e| !e.is_empty()),
            ssh_opts: opts,
            warnings,
        })
    }
}

/// Blobs after the end marker, in order (target-controlled text: git's and the server's output).
const BLOBS: [&str; 6] = ["msg", "before", "mods", "url", "ls", "after"];

/// The common prologue: locale, umask, git's path, `GIT_SSH_COMMAND`, the blob files and the
/// `kp_done`/`kp_fail` functions.
fn prologue(a: &GitArgs) -> String {
    let mut s = String::from(
        "LANG=C LC_ALL=C LC_MESSAGES=C LC_CTYPE=C LANGUAGE=C; export LANG LC_ALL LC_MESSAGES LC_CTYPE LANGUAGE\n\
         kp_t=$(mktemp -d) || exit 1; trap 'rm -rf \"$kp_t\"' EXIT\n",
    );
    s.push_str(&format!(
        "for kp_f in {b}; do : > \"$kp_t/$kp_f\"; done; kp_has=0; kp_rc=0\n\
         kp_done() {{ {}; printf 'has=%s\\nrc=%s\\n' \"$kp_has\" \"$kp_rc\"; {}; for kp_f in {b}; do wc -c < \"$kp_t/$kp_f\"; done; {}; \
         for kp_f in {b}; do cat \"$kp_t/$kp_f\"; done; exit 0; }}\n\
         kp_fail() {{ printf '%s' \"$1\" > \"$kp_t/msg\"; kp_done; }}\n",
        section("state"),
        section("lens"),
        section("end"),
        b = BLOBS.join(" ")
    ));
    if let Some(u) = &a.umask {
        s.push_str(&format!("umask {u} || exit 1\n"));
    }
    match &a.executable {
        Some(e) => s.push_str(&format!("kp_git={}\n", quote(e))),
        None => s.push_str(
            "kp_git=$(command -v git) || kp_fail \"Failed to find required executable git in paths: $PATH\"\n",
        ),
    }
    s.push_str(&format!(
        "GIT_SSH_COMMAND=\"${{GIT_SSH:-${{GIT_SSH_COMMAND:-ssh}}}} ${{GIT_SSH_OPTS:-}}\"{}; export GIT_SSH_COMMAND\n\
         kp_g() {{ \"$kp_git\" \"$@\"; }}\n",
        quote(&a.ssh_opts)
    ));
    s
}

/// Ansible's `get_head_branch` in shell (run in dest): prints the branch HEAD is on, or the
/// remote's HEAD branch when detached.
fn head_branch_fn(a: &GitArgs) -> String {
    format!(
        "kp_headbranch() {{ kp_gd=$(kp_g rev-parse --absolute-git-dir 2>/dev/null) || return 0; kp_hf=\"$kp_gd/HEAD\"; \
         if kp_g branch --no-color -a 2>/dev/null | grep -q '^\\* .*\\(no branch\\|detached from\\|detached at\\)'; then kp_hf=\"$kp_gd/refs/remotes/\"{r}/HEAD; fi; \
         [ -f \"$kp_hf\" ] || return 0; kp_l=$(head -n 1 \"$kp_hf\"); kp_p=refs/remotes/{r}; \
         case $kp_l in *\"$kp_p\"*) kp_l=\"${{kp_l%%\"$kp_p\"*}}${{kp_l#*\"$kp_p\"}}\";; esac; kp_l=${{kp_l##* }}; \
         case $kp_l in */*/*) kp_l=${{kp_l#*/}}; kp_l=${{kp_l#*/}};; */*) kp_l=${{kp_l#*/}};; esac; printf '%s' \"$kp_l\"; }}\n",
        r = quote(&a.remote)
    )
}

fn gitconfig_test(a: &GitArgs, dest: &str) -> String {
    let d = quote(dest);
    if a.bare {
        format!("[ -f {d}/config ]")
    } else {
        format!(
            "{{ [ -f {d}/.git/config ] || {{ [ -f {d}/.git ] && kp_gd=$(cd {d} && kp_g rev-parse --absolute-git-dir 2>/dev/null) && [ -f \"$kp_gd/config\" ]; }}; }}"
        )
    }
}

/// The probe: the checkout (when dest has one) and `git ls-remote` of the repository. Pure.
pub fn probe_script(a: &GitArgs) -> String {
    let mut s = prologue(a);
    s.push_str(&head_branch_fn(a));
    if let Some(dest) = &a.dest {
        let d = quote(dest);
        s.push_str(&format!(
            "if {} && cd {d}; then kp_has=1; kp_g rev-parse HEAD > \"$kp_t/before\" 2>/dev/null\n",
            gitconfig_test(a, dest)
        ));
        if !a.bare {
            s.push_str("kp_g status --porcelain 2>/dev/null | grep -v '^??' > \"$kp_t/mods\"\n");
        }
        s.push_str(&format!(
            "kp_g ls-remote --get-url {r} > \"$kp_t/url\" 2>/dev/null || printf '@@none' > \"$kp_t/url\"\n\
             kp_headbranch > \"$kp_t/after\"; cd / ; fi\n",
            r = quote(&a.remote)
        ));
    }
    s.push_str(&format!(
        "kp_g ls-remote {} > \"$kp_t/ls\" 2> \"$kp_t/msg\"; kp_rc=$?\nkp_done\n",
        quote(&a.repo)
    ));
    s
}

/// The output of either script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub has_repo: bool,
    pub rc: i32,
    pub msg: String,
    pub before: String,
    pub mods: bool,
    /// `None` when `git ls-remote --get-url` failed.
    pub remote_url: Option<String>,
    /// `git ls-remote` lines as (sha, ref).
    pub refs: Vec<(String, String)>,
    /// Probe: the head branch; apply: the final HEAD.
    pub after: String,
}

/// Parse a script's output. Pure.
pub fn parse_report(out: &[u8]) -> Result<Report, String> {
    let f = framed(out, "git", BLOBS.len(), false)?;
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
    let url = blobs[3].trim_end_matches('\n').to_string();
    Ok(Report {
        has_repo: get("has") == 1,
        rc: get("rc"),
        msg: blobs[0].trim_end().to_string(),
        before: blobs[1].trim_end_matches('\n').to_string(),
        mods: !blobs[2].trim().is_empty(),
        remote_url: (url != "@@none").then_some(url),
        refs: blobs[4]
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(s, r)| (s.to_string(), r.to_string()))
            .collect(),
        after: blobs[5].trim_end_matches('\n').to_string(),
    })
}

mod plan;
pub use plan::{clone_script, decide, remote_head, update_script, Decision};

impl Module for Git {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let a = GitArgs::from_args(args)?;
        let out = run_script(ctx, &probe_script(&a))?;
        let probe = match parse_report(&out.stdout) {
            Ok(r) if out.ok() => r,
            _ => return Ok(super::plan::failed_output("git: probing the target", &out)),
        };
        let mut res = match decide(&a, &probe, ctx.check_mode) {
            Decision::Done(r) => r,
            Decision::Apply { script, mut result } => {
                let out = run_script(ctx, &script)?;
                match parse_report(&out.stdout) {
                    Ok(r) if out.ok() => plan::finish(&a, &probe, &r, &mut result),
                    _ => return Ok(super::plan::failed_output("git", &out)),
                }
                result
            }
        };
        if !a.warnings.is_empty() {
            let w: Vec<Value> = a.warnings.iter().map(|w| Value::from(w.as_str())).collect();
            res = res.set("warnings", Value::Array(w));
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests;
