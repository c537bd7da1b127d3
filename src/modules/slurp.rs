//! `slurp`: a file of the target, base64-encoded, under `content` (with `encoding: base64` and
//! `source`). One read-only round trip with sh and coreutils (`stat`, `head`, `base64`), also in
//! check mode. The content is the target's, so hostile: at most [`SLURP_MAX`] bytes are read,
//! and the reply is parsed strictly ([`parse`]: a status word, then base64 text only).

use super::probe::run_script;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

pub struct Slurp;

const SPEC: Spec = Spec::new("slurp", &[Param::path("src").required().aliases(&["path"])]);

/// Largest file slurped (its base64 text travels back in one reply).
pub const SLURP_MAX: u64 = 64 * 1024 * 1024;

/// The script printing the file's status, then its content as base64 when it is readable and
/// small enough. `!` is not base64: a read error in the middle prints `!err`, the end `!end`.
/// Pure.
pub fn script(path: &str, max: u64) -> String {
    format!(
        "p={p}; if [ -d \"$p\" ]; then echo isdir; elif [ ! -e \"$p\" ]; then echo absent; \
         elif [ ! -f \"$p\" ]; then echo other; elif [ ! -r \"$p\" ]; then echo unreadable; \
         else s=$(stat -L -c %s -- \"$p\") || exit 1; if [ \"$s\" -gt {max} ]; then echo \"large $s\"; \
         else echo content; {{ {{ head -c {over} < \"$p\" 2>/dev/null || echo '!err' >&3; }} | base64 -w0; }} 3>&1; \
         printf '\\n!end\\n'; fi; fi",
        p = quote(path),
        over = max + 1,
    )
}

/// The result for a script's output: Ansible's messages for a missing, directory or unreadable
/// source. Pure.
pub fn parse(src: &str, stdout: &[u8], max: u64) -> ModuleResult {
    let text = String::from_utf8_lossy(stdout);
    let (status, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let failed = |msg: String| ModuleResult::failed(msg);
    match status {
        "isdir" => failed(format!("source is a directory and must be a file: {src}")),
        "absent" => failed(format!("file not found: {src}")),
        "unreadable" => failed(format!("file is not readable: {src}")),
        "other" => failed(format!("unable to slurp file: {src} is not a regular file")),
        s if s.starts_with("large ") => failed(too_large(src, &s["large ".len()..], max)),
        "content" => {
            let Some(body) = rest.strip_suffix("\n!end\n") else {
                return failed(format!(
                    "unable to slurp file: {src}: the reply was cut short"
                ));
            };
            if body.contains('!') {
                return failed(format!("unable to slurp file: {src}: read error"));
            }
            let body = body.trim();
            let decoded = {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(body)
            };
            match decoded {
                // A file that grew, or a /proc file whose size says 0.
                Ok(bytes) if bytes.len() as u64 > max => failed(too_large(src, "more", max)),
                Ok(_) => ModuleResult::ok()
                    .set("content", body)
                    .set("encoding", "base64")
                    .set("source", src),
                Err(e) => failed(format!(
                    "unable to slurp file: {src}: bad base64 reply: {e}"
                )),
            }
        }
        _ => failed(format!(
            "unable to slurp file: {src}: unexpected reply '{}'",
            status.chars().take(100).collect::<String>()
        )),
    }
}

fn too_large(src: &str, size: &str, max: u64) -> String {
    format!(
        "unable to slurp file: {src} is {size} bytes, larger than knockplay's limit of {max} bytes"
    )
}

impl Module for Slurp {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let src = args.req_str("src")?;
        let out = run_script(ctx, &script(&src, SLURP_MAX))?;
        if !out.ok() {
            return Ok(ModuleResult::failed(format!(
                "unable to slurp file: {src}: {}",
                out.stderr_str().trim()
            ))
            .with_output(&out));
        }
        Ok(parse(&src, &out.stdout, SLURP_MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    fn slurp(src: &str, max: u64) -> ModuleResult {
        let out = sh(&script(src, max), None);
        assert_eq!(out.rc, 0, "{}", out.stderr_str());
        parse(src, &out.stdout, max)
    }

    #[test]
    fn reads_files_and_refuses_what_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        let f = dir.path().join("a file");
        std::fs::write(&f, b"hi\x00\xff\n").unwrap();
        let f = f.to_str().unwrap();
        let r = slurp(f, 100);
        assert!(!r.failed && !r.changed, "{r:?}");
        assert_eq!(r.data["content"], json!("aGkA/wo="));
        assert_eq!(r.data["encoding"], json!("base64"));
        assert_eq!(r.data["source"], json!(f));
        std::fs::write(dir.path().join("empty"), b"").unwrap();
        let e = format!("{d}/empty");
        assert_eq!(slurp(&e, 100).data["content"], json!(""));
        std::os::unix::fs::symlink("a file", dir.path().join("lnk")).unwrap();
        let l = format!("{d}/lnk");
        assert_eq!(slurp(&l, 100).data["content"], json!("aGkA/wo="));

        let msg = |src: &str, max: u64| slurp(src, max).msg.unwrap_or_default();
        assert_eq!(
            msg(d, 100),
            format!("source is a directory and must be a file: {d}")
        );
        let missing = format!("{d}/nope");
        assert_eq!(msg(&missing, 100), format!("file not found: {missing}"));
        assert_eq!(
            msg(f, 3),
            format!(
                "unable to slurp file: {f} is 5 bytes, larger than knockplay's limit of 3 bytes"
            )
        );
        assert!(msg("/dev/null", 100).ends_with("is not a regular file"));
    }

    #[test]
    fn hostile_replies_are_refused() {
        let p = |out: &str| parse("/f", out.as_bytes(), 4).msg.unwrap_or_default();
        assert!(p("content\naGk=").contains("cut short"));
        assert!(p("content\naG!errk=\n!end\n").ends_with("read error"));
        assert!(p("content\n@@@@\n!end\n").contains("bad base64"));
        assert!(p("content\naGVsbG8=\n!end\n").contains("larger than"));
        assert!(p("kind=file\n").contains("unexpected reply"));
    }

    #[test]
    fn runs_as_a_module_in_check_mode() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "x").unwrap();
        let mut r = LocalRemote::default();
        let res = Slurp
            .execute(
                &args(json!({"path": f.to_str().unwrap()})),
                &mut ctx(&mut r, true, false, vec![]),
            )
            .unwrap();
        assert_eq!(res.data["content"], json!("eA=="));
        assert_eq!(r.calls.len(), 1);
    }
}
