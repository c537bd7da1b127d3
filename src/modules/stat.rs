//! `stat`: report a path's state under the `stat` result key, with Ansible's key names. One round
//! trip, read-only (runs in check mode too). `checksum` is sha1 by default, as in Ansible.

use super::probe::{probe, FileState, Kind, ProbeReq};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::value::{Value, Vars};

pub struct Stat;

const SPEC: Spec = Spec::new(
    "stat",
    &[
        Param::path("path").required().aliases(&["dest", "name"]),
        Param::bool("follow").default("false"),
        Param::bool("get_checksum").default("true"),
        Param::str("checksum_algorithm")
            .choices(&["md5", "sha1", "sha224", "sha256", "sha384", "sha512"])
            .default("sha1")
            .aliases(&["checksum_algo", "checksum"]),
        Param::bool("get_md5").only("false"),
        Param::bool("get_mime")
            .only("false")
            .aliases(&["mime", "mime_type", "mime-type"]),
        Param::bool("get_attributes")
            .only("false")
            .aliases(&["attr", "attributes"]),
    ],
);

impl Module for Stat {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let path = args.req_str("path")?;
        let follow = args.bool("follow")?;
        let get_checksum = args.bool("get_checksum")?;
        let algo = args
            .choice("checksum_algorithm")?
            .unwrap_or_else(|| "sha1".into());
        let req = probe_req(&path, follow, get_checksum, &algo);
        let st = match probe(ctx, args.module(), std::slice::from_ref(&req))? {
            Ok(mut s) => s.remove(0),
            Err(e) => return Ok(ModuleResult::failed(e)),
        };
        Ok(ModuleResult::ok().set("stat", stat_value(&path, &st, follow)))
    }
}

fn probe_req(path: &str, follow: bool, checksum: bool, algo: &str) -> ProbeReq {
    let mut r = ProbeReq {
        follow,
        ..ProbeReq::new(path)
    };
    if checksum {
        r.sum_cmd = Some(match algo {
            "md5" => "md5sum",
            "sha224" => "sha224sum",
            "sha256" => "sha256sum",
            "sha384" => "sha384sum",
            "sha512" => "sha512sum",
            _ => "sha1sum",
        });
    }
    r
}

/// The `stat` dict, as Ansible's stat module builds it. Pure.
pub fn stat_value(path: &str, st: &FileState, follow: bool) -> Value {
    let mut o = Vars::new();
    if !st.exists() {
        o.insert("exists".into(), false.into());
        return Value::Object(o);
    }
    let mode = st.mode;
    let islnk = st.kind == Kind::Link && !follow;
    let ft = st.ftype.as_str();
    let isreg = !islnk && ft.starts_with("regular");
    let bit = |b: u32| Value::Bool(mode & b != 0);
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    put("exists", true.into());
    put("path", path.into());
    put("mode", format!("{mode:04o}").into());
    put("isdir", (!islnk && st.kind == Kind::Directory).into());
    put("ischr", (ft == "character special file").into());
    put("isblk", (ft == "block special file").into());
    put("isreg", isreg.into());
    put("isfifo", (ft == "fifo").into());
    put("islnk", islnk.into());
    put("issock", (ft == "socket").into());
    put("uid", st.uid.into());
    put("gid", st.gid.into());
    put("pw_name", st.owner.as_str().into());
    put("gr_name", st.group.as_str().into());
    put("size", st.size.into());
    put("inode", st.inode.into());
    put("dev", st.dev.into());
    put("nlink", st.nlink.into());
    put("atime", (st.atime as f64).into());
    put("mtime", (st.mtime as f64).into());
    put("ctime", (st.ctime as f64).into());
    put("wusr", bit(0o200));
    put("rusr", bit(0o400));
    put("xusr", bit(0o100));
    put("wgrp", bit(0o020));
    put("rgrp", bit(0o040));
    put("xgrp", bit(0o010));
    put("woth", bit(0o002));
    put("roth", bit(0o004));
    put("xoth", bit(0o001));
    put("isuid", bit(0o4000));
    put("isgid", bit(0o2000));
    put("readable", st.readable.into());
    put("writeable", st.writeable.into());
    put("executable", st.executable.into());
    if islnk {
        if let Some(t) = &st.real_path {
            put("lnk_source", t.as_str().into());
        }
        if let Some(t) = &st.link_target {
            put("lnk_target", t.as_str().into());
        }
    }
    if isreg {
        if let Some(sum) = &st.sum {
            put("checksum", sum.as_str().into());
        }
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    fn run(a: serde_json::Value) -> Value {
        let mut r = LocalRemote::default();
        let res = Stat
            .execute(&args(a), &mut ctx(&mut r, true, false, vec![]))
            .unwrap();
        assert!(!res.changed && !res.failed, "{res:?}");
        assert_eq!(r.calls.len(), 1);
        res.data["stat"].clone()
    }

    #[test]
    fn reports_files_dirs_links_and_absence() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "hello\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let l = dir.path().join("l");
        std::os::unix::fs::symlink(&f, &l).unwrap();

        let s = run(json!({"path": f.to_str().unwrap()}));
        assert_eq!(s["exists"], json!(true));
        assert_eq!(s["mode"], json!("0640"));
        assert_eq!(s["isreg"], json!(true));
        assert_eq!(s["isdir"], json!(false));
        assert_eq!(s["size"], json!(6));
        assert_eq!(s["rgrp"], json!(true));
        assert_eq!(s["roth"], json!(false));
        assert_eq!(
            s["checksum"],
            json!("f572d396fae9206628714fb2ce00f72e94f2258f")
        );

        let s = run(json!({"path": l.to_str().unwrap()}));
        assert_eq!(s["islnk"], json!(true));
        assert_eq!(s["isreg"], json!(false));
        assert_eq!(s["lnk_target"], json!(f.to_str().unwrap()));
        assert!(s.get("checksum").is_none());

        let s = run(
            json!({"path": l.to_str().unwrap(), "follow": true, "checksum_algorithm": "sha256"}),
        );
        assert_eq!(s["islnk"], json!(false));
        assert_eq!(s["isreg"], json!(true));
        assert_eq!(s["mode"], json!("0640"));
        assert_eq!(
            s["checksum"],
            json!(crate::modules::write::sha256_hex(b"hello\n"))
        );

        let s = run(json!({"path": dir.path().to_str().unwrap(), "get_checksum": false}));
        assert_eq!(s["isdir"], json!(true));

        let s = run(json!({"path": dir.path().join("nope").to_str().unwrap()}));
        assert_eq!(s, json!({"exists": false}));
    }

    #[test]
    fn bad_arguments_are_named() {
        let mut r = FakeRemote::default();
        let e = Stat
            .execute(&args(json!({})), &mut ctx(&mut r, false, false, vec![]))
            .unwrap_err();
        assert_eq!(e.to_string(), "stat: missing required parameter 'path'");
        let e = Stat
            .execute(
                &args(json!({"path": "/x", "checksum_algorithm": "crc"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap_err();
        assert!(e
            .to_string()
            .contains("'checksum_algorithm' must be one of"));
    }
}
