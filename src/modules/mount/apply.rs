//! The `mount` module's states applied: the collection's order of fstab writes, `mount`,
//! `mount -o remount`, `umount` and `rmdir`, its check-mode answers and its failure messages
//! (`Error mounting PATH: ...` with the old fstab put back and the directories made removed).

use super::{fstab_script, set_mount, unset_mount, Entry, MountState};
use crate::modules::plan::failure_msg;
use crate::modules::probe::FileState;
use crate::modules::{ModuleCtx, ModuleError, ModuleResult};
use crate::shell::quote;
use crate::value::Value;

/// A parsed `mount` task.
pub struct Job {
    pub state: String,
    pub entry: Entry,
    pub fstab: String,
    pub backup: bool,
    pub result: ModuleResult,
}

/// The collection's `mount` command: `mount [-T fstab] path`, or for `ephemeral`
/// `mount -t fstype [-o opts] src path`. Pure.
pub fn mount_cmd(j: &Job) -> String {
    let mut cmd = vec!["mount".to_string()];
    if j.state == "ephemeral" {
        cmd.extend(ephemeral_args(&j.entry));
    } else if j.fstab != "/etc/fstab" {
        cmd.extend(["-T".into(), quote(&j.fstab)]);
    }
    cmd.push(quote(&j.entry.name));
    cmd.join(" ")
}

fn ephemeral_args(e: &Entry) -> Vec<String> {
    let mut a = vec!["-t".into(), quote(e.fstype.as_deref().unwrap_or(""))];
    if e.opts != "defaults" {
        a.extend(["-o".into(), quote(&e.opts)]);
    }
    a.push(quote(e.src.as_deref().unwrap_or("")));
    a
}

/// The collection's remount command. Pure.
pub fn remount_cmd(j: &Job) -> String {
    let opts = if j.state == "remounted" && j.entry.opts != "defaults" {
        format!("remount,{}", j.entry.opts)
    } else {
        "remount".into()
    };
    let mut cmd = vec!["mount".to_string(), "-o".into(), quote(&opts)];
    if j.state == "ephemeral" {
        cmd.extend(ephemeral_args(&j.entry));
    } else if j.fstab != "/etc/fstab" {
        cmd.extend(["-T".into(), quote(&j.fstab)]);
    }
    cmd.push(quote(&j.entry.name));
    cmd.join(" ")
}

/// Run a command: Ok(()) or Err(stdout + stderr), as the collection reports them.
fn run(ctx: &mut ModuleCtx<'_>, cmd: &str) -> Result<Result<(), String>, ModuleError> {
    let o = ctx.run(cmd)?;
    Ok(if o.ok() {
        Ok(())
    } else {
        Err(format!("{}{}", o.stdout_str(), o.stderr_str()))
    })
}

/// The collection's `remount`: `mount -o remount`, else `umount` then `mount`.
fn remount(ctx: &mut ModuleCtx<'_>, j: &Job) -> Result<Result<(), String>, ModuleError> {
    if run(ctx, &remount_cmd(j))?.is_ok() {
        return Ok(Ok(()));
    }
    if j.state == "remounted" && j.entry.opts != "defaults" {
        return Ok(Err(
            "Options were specified with remounted, but the remount command failed. \
            Failing in order to prevent an unexpected mount result. Try replacing this command \
            with a \"state: unmounted\" followed by a \"state: mounted\" using the full desired \
            mount options instead."
                .into(),
        ));
    }
    match run(ctx, &format!("umount {}", quote(&j.entry.name)))? {
        Ok(()) => run(ctx, &mount_cmd(j)),
        Err(e) => Ok(Err(e)),
    }
}

/// Write the fstab (keeping its mode and owner); the backup file's name goes in the result.
fn write_fstab(
    ctx: &mut ModuleCtx<'_>,
    j: &mut Job,
    st: &FileState,
    content: &str,
    backup: bool,
) -> Result<Result<(), String>, ModuleError> {
    let o = ctx.run_with_stdin(
        &fstab_script(&j.fstab, st, backup),
        Some(content.as_bytes()),
    )?;
    if !o.ok() {
        return Ok(Err(failure_msg(&o)));
    }
    for line in o.stdout_str().lines() {
        if let Some(b) = line.strip_prefix("backup_file=") {
            j.result.data.insert("backup_file".into(), Value::from(b));
        }
    }
    Ok(Ok(()))
}

/// The directories `mkdir` must make for `path`, outermost first. Pure.
fn components(path: &str) -> Vec<String> {
    let abs = path.starts_with('/');
    let mut cur = String::new();
    let mut out = Vec::new();
    for c in path.trim_matches('/').split('/') {
        cur = format!("{cur}/{c}");
        out.push(if abs {
            cur.clone()
        } else {
            cur.trim_start_matches('/').to_string()
        });
    }
    out
}

/// Apply the task's state; the result carries the collection's keys.
pub fn apply(
    ctx: &mut ModuleCtx<'_>,
    mut j: Job,
    fstab: &FileState,
    path: &FileState,
    content: &str,
    ms: &MountState,
) -> Result<ModuleResult, ModuleError> {
    let check = ctx.check_mode;
    let name = j.entry.name.clone();
    // The collection's fail_json calls report only the message.
    let fail = |_j: Job, msg: String| Ok(ModuleResult::failed(msg));
    let mounted_any = ms.ismount || ms.bind_mounted(&name, None);
    let changed = match j.state.as_str() {
        "absent_from_fstab" | "absent" | "present" => {
            let (new, changed) = if j.state == "present" {
                set_mount(content, &j.entry)
            } else {
                unset_mount(content, &name, j.entry.src.as_deref())
            };
            if changed && !check {
                if let Err(e) = {
                    let b = j.backup;
                    write_fstab(ctx, &mut j, fstab, &new, b)?
                } {
                    return fail(j, e);
                }
                if j.state == "absent" {
                    if mounted_any {
                        if let Err(e) = run(ctx, &format!("umount {}", quote(&name)))? {
                            return fail(j, format!("Error unmounting {name}: {e}"));
                        }
                    }
                    if path.exists() {
                        if let Err(e) = run(ctx, &format!("rmdir -- {}", quote(&name)))? {
                            return fail(j, format!("Error rmdir {name}: {}", e.trim()));
                        }
                    }
                }
            }
            changed
        }
        "unmounted" => {
            if mounted_any && !check {
                if let Err(e) = run(ctx, &format!("umount {}", quote(&name)))? {
                    return fail(j, format!("Error unmounting {name}: {e}"));
                }
            }
            mounted_any
        }
        "remounted" => {
            if !check {
                if let Err(e) = remount(ctx, &j)? {
                    return fail(j, format!("Error remounting {name}: {e}"));
                }
            }
            true
        }
        _ => return mounted(ctx, j, fstab, path, content, ms),
    };
    j.result.changed = changed;
    Ok(j.result)
}

/// `mounted` and `ephemeral`.
fn mounted(
    ctx: &mut ModuleCtx<'_>,
    mut j: Job,
    fstab: &FileState,
    path: &FileState,
    content: &str,
    ms: &MountState,
) -> Result<ModuleResult, ModuleError> {
    let check = ctx.check_mode;
    let name = j.entry.name.clone();
    let mut made: Vec<String> = Vec::new();
    if !path.exists() && !check {
        for c in components(&name) {
            let cmd = format!(
                "if [ -e {q} ]; then echo exists; else mkdir -- {q} && echo made; fi",
                q = quote(&c)
            );
            let o = ctx.run(&cmd)?;
            if !o.ok() {
                return Ok(ModuleResult::failed(format!(
                    "Error making dir {name}: {}",
                    failure_msg(&o)
                )));
            }
            if o.stdout_str().trim() == "made" {
                made.push(c);
            }
        }
    }
    let mut changed = false;
    if j.state != "ephemeral" {
        let (new, c) = set_mount(content, &j.entry);
        changed = c;
        if changed && !check {
            if let Err(e) = {
                let b = j.backup;
                write_fstab(ctx, &mut j, fstab, &new, b)?
            } {
                return Ok(ModuleResult::failed(e));
            }
        }
    }
    let mut res = Ok(());
    if ms.ismount || ms.bind_mounted(&name, j.entry.src.as_deref()) {
        if changed && !check {
            res = remount(ctx, &j)?;
        }
        if j.state == "ephemeral" {
            if ms.bind_mounted(&name, j.entry.src.as_deref()) {
                changed = true;
                if !check {
                    res = remount(ctx, &j)?;
                }
            } else {
                return Ok(ModuleResult::failed("Ephemeral mount point is already mounted with a different source than the specified one. Failing in order to prevent an unwanted unmount or override operation. Try replacing this command with a \"state: unmounted\" followed by a \"state: ephemeral\", or use a different destination path."));
            }
        }
    } else {
        changed = true;
        if !check {
            res = run(ctx, &mount_cmd(&j))?;
        }
    }
    if let Err(msg) = res {
        if j.state != "ephemeral" {
            let mut old = content.to_string();
            if !old.is_empty() && !old.ends_with('\n') {
                old.push('\n');
            }
            let _ = write_fstab(ctx, &mut j, fstab, &old, false)?;
        }
        for d in made.iter().rev() {
            let _ = ctx.run(&format!("rmdir -- {}", quote(d)))?;
        }
        return Ok(ModuleResult::failed(format!(
            "Error mounting {name}: {msg}"
        )));
    }
    j.result.changed = changed;
    Ok(j.result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: &str, fstab: &str) -> Job {
        Job {
            state: state.into(),
            entry: Entry {
                name: "/mnt/a b".into(),
                src: Some("/dev/x".into()),
                fstype: Some("ext4".into()),
                opts: "ro".into(),
                dump: "0".into(),
                passno: "0".into(),
            },
            fstab: fstab.into(),
            backup: false,
            result: ModuleResult::ok(),
        }
    }

    #[test]
    fn commands_are_the_collections() {
        assert_eq!(mount_cmd(&job("mounted", "/etc/fstab")), "mount '/mnt/a b'");
        assert_eq!(
            mount_cmd(&job("mounted", "/tmp/fstab")),
            "mount -T /tmp/fstab '/mnt/a b'"
        );
        assert_eq!(
            mount_cmd(&job("ephemeral", "/etc/fstab")),
            "mount -t ext4 -o ro /dev/x '/mnt/a b'"
        );
        assert_eq!(
            remount_cmd(&job("remounted", "/etc/fstab")),
            "mount -o remount,ro '/mnt/a b'"
        );
        assert_eq!(
            remount_cmd(&job("mounted", "/etc/fstab")),
            "mount -o remount '/mnt/a b'"
        );
        assert_eq!(components("/a/b/c"), vec!["/a", "/a/b", "/a/b/c"]);
    }
}
