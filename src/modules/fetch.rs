//! `fetch`: a file of the target copied to the controller, under `dest/<inventory_hostname>/<src>`
//! or at `dest` itself with `flat`, with ansible-core's action's checks, messages and result keys
//! (`checksum`/`remote_checksum` SHA-1, `md5sum`). One read round trip (the target's SHA-1 and
//! the content, base64, at most [`FETCH_MAX`] bytes). The reply is hostile: the path written on
//! the controller is computed lexically and must stay inside `dest` (a `..` in `src` is refused),
//! and the file is written atomically (a temporary file renamed over the destination, so no link
//! planted there is followed), with the target file's mode (never group/world-writable). Check mode
//! skips the task, as ansible-core does.

use std::path::{Component, Path, PathBuf};

use super::probe::run_script;
use super::slurp;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;

pub struct Fetch;

const SPEC: Spec = Spec::new(
    "fetch",
    &[
        Param::str("src").required(),
        Param::str("dest").required(),
        Param::bool("flat").default("false"),
        Param::bool("fail_on_missing").default("true"),
        Param::bool("validate_checksum").default("true"),
    ],
);

/// Largest file fetched (its base64 text travels back in one reply).
pub const FETCH_MAX: u64 = 256 * 1024 * 1024;

/// Lexical `os.path.normpath` (no filesystem access, `..` above the root dropped).
pub fn normpath(p: &str) -> PathBuf {
    let mut out: Vec<String> = Vec::new();
    let abs = p.starts_with('/');
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                if out.last().is_some_and(|l| l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..".into());
                }
            }
            _ => {}
        }
    }
    let joined = out.join("/");
    PathBuf::from(if abs {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    })
}

/// Where the file goes on the controller: `Err` with ansible-core's message (or knockplay's for a
/// path leaving `dest`). `is_dir` tells whether a controller path is an existing directory. Pure
/// apart from that.
pub fn local_dest(
    src: &str,
    dest: &str,
    flat: bool,
    host: &str,
    play_dir: &Path,
    is_dir: &dyn Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    let dwim = |d: &str| -> String {
        if d.starts_with('/') {
            d.to_string()
        } else {
            format!("{}/{d}", play_dir.display())
        }
    };
    let traversal = |got: &Path, root: &str| {
        format!(
            "Detected directory traversal, expected to be contained in '{root}' but got '{}'",
            got.display()
        )
    };
    if flat {
        if is_dir(Path::new(&dwim(dest))) && !dest.ends_with('/') {
            return Err("dest is an existing directory, use a trailing slash if you want to fetch src into that directory".into());
        }
        let mut d = dest.to_string();
        if dest.ends_with('/') {
            let base = src.rsplit('/').next().unwrap_or("");
            if base.is_empty() || base == "." || base == ".." {
                return Err(traversal(Path::new(&format!("{dest}{base}")), dest));
            }
            d = format!("{dest}{base}");
            if is_dir(Path::new(&dwim(&d))) {
                return Err(format!("calculated dest '{d}' is an existing directory, use another path that does not point to an existing directory"));
            }
        }
        return Ok(normpath(&dwim(&d)));
    }
    let root = normpath(&dwim(dest));
    let host_root = root.join(host);
    let full = normpath(&format!("{}/{host}/{src}", dwim(dest)));
    // A `..` in src (or a host name with a slash) would leave dest/<host>: refused.
    if host.contains('/') || host == ".." || !full.starts_with(&host_root) || full == host_root {
        return Err(traversal(&full, &host_root.display().to_string()));
    }
    Ok(full)
}

fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// Write `data` at `dest` atomically: a temporary file beside it, renamed over it (a link at
/// `dest` is replaced, never followed), with `mode`.
pub fn write_local(dest: &Path, data: &[u8], mode: u32) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("Failed to fetch the file: {e}"))?;
    let fail = |e: std::io::Error| format!("Failed to fetch the file: {e}");
    let mut rnd = [0u8; 8];
    getrandom::getrandom(&mut rnd).map_err(|e| format!("Failed to fetch the file: {e}"))?;
    let tmp = dir.join(format!(".kp-fetch.{}", hex::encode(rnd)));
    let written = (|| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, dest)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// The mode of the fetched file: the target file's, as ansible-core's transfer leaves it, never
/// group- or world-writable nor special (the target is not trusted); 0644 when unknown.
pub fn local_mode(remote: &str) -> u32 {
    u32::from_str_radix(remote.trim(), 8).map_or(0o644, |m| m & 0o755)
}

/// ansible-core's result for a slurp failure (`fail_on_missing` decides `failed`).
fn read_failure(src: &str, msg: &str, fail_on_missing: bool) -> ModuleResult {
    let is_dir = msg.starts_with("source is a directory");
    let mut msg = if msg.starts_with("file not found") {
        "the remote file does not exist, not transferring, ignored".to_string()
    } else if is_dir {
        "remote file is a directory, fetch cannot work on directories".to_string()
    } else {
        msg.to_string()
    };
    if is_dir && !fail_on_missing {
        msg.push_str(", not transferring, ignored");
    }
    let mut r = if fail_on_missing {
        ModuleResult::failed(msg)
    } else {
        let mut r = ModuleResult::ok();
        r.msg = Some(msg);
        r
    };
    if !fail_on_missing && !is_dir {
        r.data.insert("file".into(), Value::from(src));
    }
    r
}

impl Module for Fetch {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let src = args.req_str("src")?;
        let dest = args.req_str("dest")?;
        if ctx.check_mode {
            let mut r = ModuleResult::ok().set("skipped", true);
            r.msg = Some("check mode not (yet) supported for this module".into());
            return Ok(r);
        }
        let fail_on_missing = args.bool("fail_on_missing")?;
        let play_dir = ctx.file_search.last().cloned().unwrap_or_default();
        let local = match local_dest(
            &src,
            &dest,
            args.bool("flat")?,
            ctx.inventory_hostname,
            &play_dir,
            &|p| p.is_dir(),
        ) {
            Ok(p) => p,
            Err(msg) => return Ok(ModuleResult::failed(msg)),
        };
        let script = format!(
            "{}; printf '\\n@@mode '; stat -L -c %a -- {} 2>/dev/null",
            slurp::script(&src, FETCH_MAX),
            quote(&src)
        );
        let out = run_script(ctx, &script)?;
        let text = out.stdout_str();
        let (body, mode) = text.rsplit_once("\n@@mode ").unwrap_or((&text, ""));
        let mode = local_mode(mode);
        let read = slurp::parse(&src, body.as_bytes(), FETCH_MAX);
        if read.failed {
            return Ok(read_failure(
                &src,
                read.msg.as_deref().unwrap_or(""),
                fail_on_missing,
            ));
        }
        let data = {
            use base64::Engine;
            let b64 = read
                .data
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or("");
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| ModuleError::Local(format!("fetch: bad reply: {e}")))?
        };
        // ansible-core compares the checksum of the bytes it received.
        let remote_checksum = sha1_hex(&data);
        let local_str = local.display().to_string();
        let existing = std::fs::read(&local).ok();
        if let Some(old) = existing.filter(|o| sha1_hex(o) == remote_checksum) {
            return Ok(ModuleResult::ok()
                .set("md5sum", md5_hex(&old))
                .set("file", src.as_str())
                .set("dest", local_str.as_str())
                .set("checksum", remote_checksum.as_str()));
        }
        if let Err(msg) = write_local(&local, &data, mode) {
            return Ok(ModuleResult::failed(msg));
        }
        let written = std::fs::read(&local).map_err(|e| ModuleError::Local(e.to_string()))?;
        let (checksum, md5sum) = (sha1_hex(&written), md5_hex(&written));
        let mut r = if args.bool("validate_checksum")? && checksum != remote_checksum {
            ModuleResult::failed("checksum mismatch").set("file", src.as_str())
        } else {
            ModuleResult::changed()
        };
        r.data.insert("md5sum".into(), Value::from(md5sum));
        r.data.insert("dest".into(), Value::from(local_str));
        r.data.insert("remote_md5sum".into(), Value::Null);
        r.data.insert("checksum".into(), Value::from(checksum));
        r.data
            .insert("remote_checksum".into(), Value::from(remote_checksum));
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn destinations_stay_inside_dest() {
        let pd = Path::new("/play");
        let no_dirs = |_: &Path| false;
        let d = |src, dest, flat| local_dest(src, dest, flat, "web1", pd, &no_dirs);
        assert_eq!(
            d("/etc/hostname", "out", false).unwrap(),
            PathBuf::from("/play/out/web1/etc/hostname")
        );
        assert_eq!(
            d("/etc/hostname", "/srv/f/", true).unwrap(),
            PathBuf::from("/srv/f/hostname")
        );
        assert_eq!(
            d("/etc/hostname", "/srv/h.txt", true).unwrap(),
            PathBuf::from("/srv/h.txt")
        );
        for (src, dest, flat) in [
            ("../../../etc/passwd", "/srv/out", false),
            ("/a/../../../../x", "/srv/out", false),
            ("/etc/..", "/srv/out/", true),
        ] {
            let e = d(src, dest, flat).unwrap_err();
            assert!(e.starts_with("Detected directory traversal"), "{src}: {e}");
        }
        let dirs = |p: &Path| p == Path::new("/srv/out");
        let e = local_dest("/x", "/srv/out", true, "h", pd, &dirs).unwrap_err();
        assert!(e.starts_with("dest is an existing directory"), "{e}");
        assert_eq!(normpath("/a//b/./c/../d"), PathBuf::from("/a/b/d"));
    }

    #[test]
    fn fetches_writes_and_then_reports_no_change() {
        let dir = tempfile::tempdir().unwrap();
        let remote = dir.path().join("remote.txt");
        std::fs::write(&remote, b"hello\n").unwrap();
        let out = dir.path().join("out");
        let a = args(json!({"src": remote.to_str().unwrap(), "dest": out.to_str().unwrap()}));
        let mut r = LocalRemote::default();
        let res = Fetch
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        let local = PathBuf::from(res.data["dest"].as_str().unwrap());
        assert!(local.starts_with(out.join("testhost")));
        assert_eq!(std::fs::read(&local).unwrap(), b"hello\n");
        assert_eq!(
            res.data["checksum"],
            "f572d396fae9206628714fb2ce00f72e94f2258f"
        );
        assert_eq!(res.data["md5sum"], "b1946ac92492d2347c6235b4d2611184");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&local).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode,
            std::fs::metadata(&remote).unwrap().permissions().mode() & 0o755
        );
        assert_eq!(local_mode("4777\n"), 0o755);
        assert_eq!(local_mode("640"), 0o640);
        let again = Fetch
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(!again.changed && again.data["file"] == *remote.to_str().unwrap());
        // Missing: failed with Ansible's (odd) "ignored" message; not failed without
        // fail_on_missing.
        let gone = args(json!({"src": "/nonexistent/x", "dest": out.to_str().unwrap()}));
        let res = Fetch
            .execute(&gone, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.failed);
        assert_eq!(
            res.msg.as_deref(),
            Some("the remote file does not exist, not transferring, ignored")
        );
        let mut g = gone.clone();
        g.insert("fail_on_missing".into(), json!(false));
        let res = Fetch
            .execute(&g, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(!res.failed && !res.changed);
        // Check mode: skipped, nothing read.
        let mut f = FakeRemote::default();
        let res = Fetch
            .execute(&a, &mut ctx(&mut f, true, false, vec![]))
            .unwrap();
        assert_eq!(res.data["skipped"], true);
        assert!(f.seen.is_empty());
    }
}
