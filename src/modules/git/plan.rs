//! The git module's decisions: what the probe means ([`decide`]), the revision the remote would
//! give ([`remote_head`]), and the apply script running Ansible's command sequence.

use super::{head_branch_fn, prologue, GitArgs, Report};
use crate::modules::ModuleResult;
use crate::shell::quote;
use crate::value::Value;

/// What to do after the probe.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The result is known (check mode, no update, or a failure).
    Done(ModuleResult),
    /// Run the script; the result so far (`before`, `remote_url_changed`, `msg`).
    Apply {
        script: String,
        result: ModuleResult,
    },
}

fn has_ref(p: &Report, name: &str) -> bool {
    p.refs.iter().any(|(_, r)| r == name)
}

fn is_branch(p: &Report, v: &str) -> bool {
    has_ref(p, &format!("refs/heads/{v}"))
}

fn is_tag(p: &Report, v: &str) -> bool {
    has_ref(p, &format!("refs/tags/{v}"))
}

/// Ansible's `get_remote_head` from the `ls-remote` listing. Pure.
pub fn remote_head(a: &GitArgs, p: &Report, cloning: bool) -> Result<String, String> {
    let v = a.version.as_str();
    let want = if v == "HEAD" {
        if cloning {
            "HEAD".to_string()
        } else {
            format!("refs/heads/{}", p.after)
        }
    } else if is_branch(p, v) {
        format!("refs/heads/{v}")
    } else if is_tag(p, v) {
        let peeled = format!("refs/tags/{v}^{{}}");
        if let Some((sha, _)) = p.refs.iter().find(|(_, r)| *r == peeled) {
            return Ok(sha.clone());
        }
        format!("refs/tags/{v}")
    } else {
        return Ok(v.to_string());
    };
    p.refs
        .iter()
        .find(|(_, r)| *r == want)
        .map(|(s, _)| s.clone())
        .ok_or_else(|| format!("Could not determine remote revision for {v}"))
}

/// Ansible's `unfrackgitpath` comparison, without the filesystem: `~`, `.` and `//` removed.
fn same_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let parts: Vec<&str> = s
            .split('/')
            .filter(|p| !p.is_empty() && *p != ".")
            .collect();
        parts.join("/")
    };
    a == b || norm(a) == norm(b)
}

/// Decide from the probe, as Ansible's `main` does. Pure.
pub fn decide(a: &GitArgs, p: &Report, check: bool) -> Decision {
    let fail = |msg: String| Decision::Done(ModuleResult::failed(msg));
    if !p.msg.is_empty() && p.rc == 0 && p.refs.is_empty() && !p.has_repo {
        return fail(p.msg.clone());
    }
    if p.rc != 0 {
        // ls-remote failed: Ansible's first remote command fails with git's stderr.
        return fail(p.msg.clone());
    }
    let before = if p.has_repo {
        Value::from(p.before.as_str())
    } else {
        Value::Null
    };
    let base = ModuleResult::ok().set("before", before);
    if !p.has_repo {
        if check || !a.clone {
            return match remote_head(a, p, true) {
                Ok(h) => {
                    let mut r = base.set("after", h);
                    r.changed = true;
                    Decision::Done(r)
                }
                Err(e) => fail(e),
            };
        }
        return Decision::Apply {
            script: clone_script(a, p),
            result: base,
        };
    }
    if !a.update {
        return Decision::Done(base.set("after", p.before.as_str()));
    }
    let dest = a.dest.clone().unwrap_or_default();
    if p.mods && !a.force {
        let mut r = ModuleResult::failed(format!(
            "Local modifications exist in the destination: {dest} (force=no)."
        ));
        r.data = base.data;
        return Decision::Done(r);
    }
    let url_changed = p
        .remote_url
        .as_deref()
        .is_some_and(|u| !same_url(u, &a.repo));
    let mut result = base.set("remote_url_changed", url_changed);
    if check {
        return match remote_head(a, p, false) {
            Ok(h) => {
                result.changed = p.before != h || url_changed;
                Decision::Done(result.set("after", h))
            }
            Err(e) => fail(e),
        };
    }
    if p.mods {
        result.changed = true;
        result.msg = Some(format!(
            "Local modifications exist in the destination: {dest}"
        ));
    }
    Decision::Apply {
        script: update_script(a, p, url_changed),
        result,
    }
}

/// Record the apply script's outcome in `result`. Pure.
pub fn finish(a: &GitArgs, probe: &Report, r: &Report, result: &mut ModuleResult) {
    if !r.msg.is_empty() {
        result.failed = true;
        result.changed = false;
        result.msg = Some(r.msg.clone());
        return;
    }
    let url_changed = result.data.get("remote_url_changed") == Some(&Value::Bool(true));
    let before = probe.has_repo.then_some(probe.before.as_str());
    if before != Some(r.after.as_str()) || probe.mods || url_changed || r.rc == 1 {
        result.changed = true;
    }
    let _ = a;
    result
        .data
        .insert("after".into(), Value::from(r.after.as_str()));
}

/// `cmd || kp_fail msg` with git's stderr appended the way Ansible's messages carry it.
fn step(cmd: &str, msg: &str) -> String {
    format!(
        "{cmd} > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"{msg}\"\n",
        msg = msg.replace(['"', '`', '\\'], "")
    )
}

fn args(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// Clone, then switch and submodules. Pure.
pub fn clone_script(a: &GitArgs, p: &Report) -> String {
    let dest = a.dest.clone().unwrap_or_default();
    let parent = match dest.trim_end_matches('/').rsplit_once('/') {
        Some(("", _)) => "/".to_string(),
        Some((d, _)) => d.to_string(),
        None => ".".to_string(),
    };
    let v = &a.version;
    let mut c: Vec<String> = vec!["clone".into()];
    if a.bare {
        c.push("--bare".into());
    } else {
        c.extend(["--origin".into(), a.remote.clone()]);
    }
    let branch_or_tag = is_branch(p, v) || is_tag(p, v);
    if let Some(d) = a.depth {
        if v == "HEAD" {
            c.extend(["--depth".into(), d.to_string()]);
        } else if branch_or_tag {
            c.extend([
                "--depth".into(),
                d.to_string(),
                "--branch".into(),
                v.clone(),
            ]);
        }
    }
    if a.single_branch {
        c.push("--single-branch".into());
        if branch_or_tag {
            c.extend(["--branch".into(), v.clone()]);
        }
    }
    c.extend([a.repo.clone(), dest.clone()]);
    let mut s = prologue(a);
    s.push_str(&head_branch_fn(a));
    s.push_str(&format!(
        "mkdir -p {q} 2>/dev/null; cd {q} || kp_fail 'cannot enter {}'\n\
         kp_g {} > \"$kp_t/o\" 2> \"$kp_t/e\" || {{ kp_rc=$?; sed -e :a -e '/^\\n*$/{{$d;N;ba' -e '}}' \"$kp_t/e\" > \"$kp_t/msg\"; \
         [ -s \"$kp_t/msg\" ] || echo x > \"$kp_t/msg\"; kp_done; }}\ncd {} || exit 1\n",
        parent.replace('\'', ""),
        args(&c),
        quote(&dest),
        q = quote(&parent),
    ));
    if a.bare && a.remote != "origin" {
        s.push_str(&step(
            &format!("kp_g remote add {} {}", quote(&a.remote), quote(&a.repo)),
            "Failed to add remote",
        ));
    }
    if !a.bare {
        s.push_str(&switch_part(a, p));
        s.push_str(&submodules_part(a));
    }
    s.push_str("kp_g rev-parse HEAD > \"$kp_t/after\" 2>/dev/null\nkp_done\n");
    s
}

/// Reset, set-url, fetch, then switch and submodules. Pure.
pub fn update_script(a: &GitArgs, p: &Report, url_changed: bool) -> String {
    let dest = a.dest.clone().unwrap_or_default();
    let r = quote(&a.remote);
    let mut s = prologue(a);
    s.push_str(&head_branch_fn(a));
    s.push_str(&format!("cd {} || exit 1\n", quote(&dest)));
    if p.mods && a.force {
        s.push_str("kp_g reset --hard HEAD > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"$(cat \"$kp_t/e\")\"\n");
    }
    if url_changed {
        s.push_str(&format!(
            "kp_g remote set-url {r} {u} > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"Failed to set a new url {} for {}: $(cat \"$kp_t/o\") $(cat \"$kp_t/e\")\"\n",
            a.repo.replace(['"', '`', '\\', '$'], ""),
            a.remote.replace(['"', '`', '\\', '$'], ""),
            u = quote(&a.repo)
        ));
    }
    let v = &a.version;
    let mut fetch: Vec<String> = vec!["fetch".into()];
    let mut refspecs: Vec<String> = Vec::new();
    let mut shallow = false;
    if let Some(d) = a.depth {
        if v == "HEAD" {
            refspecs.push("$(kp_headbranch)".into());
        } else if is_branch(p, v) {
            refspecs.push(format!("+refs/heads/{v}:refs/heads/{v}"));
            refspecs.push(format!("+refs/heads/{v}:refs/remotes/{}/{v}", a.remote));
        } else if is_tag(p, v) {
            refspecs.push(format!("+refs/tags/{v}:refs/tags/{v}"));
        }
        if !refspecs.is_empty() {
            fetch.extend(["--depth".into(), d.to_string()]);
            shallow = true;
        }
    }
    if !shallow {
        if a.bare {
            refspecs = vec![
                "+refs/heads/*:refs/heads/*".into(),
                "+refs/tags/*:refs/tags/*".into(),
            ];
        } else {
            fetch.push("--tags".into());
        }
    }
    if a.force {
        fetch.push("--force".into());
    }
    fetch.push(a.remote.clone());
    let mut cmd = format!("kp_g {}", args(&fetch));
    for rs in &refspecs {
        if rs == "$(kp_headbranch)" {
            cmd.push_str(" \"$(kp_headbranch)\"");
        } else {
            cmd.push(' ');
            cmd.push_str(&quote(rs));
        }
    }
    // With depth and the current branch, Ansible fetches only when it differs from the version.
    if shallow && is_branch(p, v) && p.after == *v {
        cmd = cmd.replacen(
            &format!(" {}", quote(&format!("+refs/heads/{v}:refs/heads/{v}"))),
            "",
            1,
        );
    }
    s.push_str(&format!(
        "{cmd} > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"Failed to download remote objects and refs: $(cat \"$kp_t/o\") $(cat \"$kp_t/e\")\"\n"
    ));
    if !a.bare {
        s.push_str(&switch_part(a, p));
        s.push_str(&submodules_part(a));
    }
    s.push_str("kp_g rev-parse HEAD > \"$kp_t/after\" 2>/dev/null\nkp_done\n");
    s
}

/// Ansible's `switch_version`, in shell (run in dest).
fn switch_part(a: &GitArgs, p: &Report) -> String {
    let v = &a.version;
    let qv = quote(v);
    let r = quote(&a.remote);
    let msg_v = v.replace(['"', '`', '\\', '$'], "");
    if v == "HEAD" {
        return format!(
            "kp_b=$(kp_headbranch); kp_g checkout --force \"$kp_b\" > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"Failed to checkout branch $kp_b\"\n\
             kp_g reset --hard {r}/\"$kp_b\" -- > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"Failed to checkout branch $kp_b\"\n"
        );
    }
    if !is_branch(p, v) {
        return step(
            &format!("kp_g checkout --force {qv}"),
            &format!("Failed to checkout {msg_v}"),
        );
    }
    let local = format!("kp_g show-ref --verify --quiet refs/heads/{}", quote(v));
    let mut s = String::new();
    if let Some(d) = a.depth {
        s.push_str(&format!(
            "if ! {local}; then kp_g fetch --depth={d} {r} {} {} > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"Failed to fetch branch from remote: {msg_v}\"; fi\n",
            quote(&format!("+refs/heads/{v}:refs/heads/{v}")),
            quote(&format!("+refs/heads/{v}:refs/remotes/{}/{v}", a.remote)),
        ));
    }
    s.push_str(&format!(
        "if ! {local}; then kp_g checkout --track -b {qv} {} > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"Failed to checkout {msg_v}\"; \
         else kp_g checkout --force {qv} > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"Failed to checkout branch {msg_v}\"; \
         kp_g reset --hard {} > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"Failed to checkout {msg_v}\"; fi\n",
        quote(&format!("{}/{v}", a.remote)),
        quote(&format!("{}/{v}", a.remote)),
    ));
    s
}

/// Ansible's `submodules_fetch` and `submodule_update` (kp_rc=1 when they changed something).
fn submodules_part(a: &GitArgs) -> String {
    if !a.recursive {
        return String::new();
    }
    let force = if a.force { " --force" } else { "" };
    format!(
        "if [ -f .gitmodules ]; then kp_sc=0\n\
         for kp_sp in $(sed -n 's/^[[:space:]]*path[[:space:]]*=[[:space:]]*//p' .gitmodules); do [ -e \"$kp_sp/.git\" ] || kp_sc=1; done\n\
         if [ $kp_sc = 0 ]; then kp_g submodule foreach \"$kp_git\" fetch > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"$(cat \"$kp_t/e\")\"; \
         kp_g submodule status | grep -q '^[^ ]' && kp_sc=1; fi\n\
         if [ $kp_sc = 1 ]; then kp_rc=1; kp_g submodule sync > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"$(cat \"$kp_t/e\")\"; \
         kp_g submodule update --init --recursive{force} > \"$kp_t/o\" 2> \"$kp_t/e\" || kp_fail \"Failed to init/update submodules: $(cat \"$kp_t/o\")$(cat \"$kp_t/e\")\"; fi; fi\n"
    )
}
