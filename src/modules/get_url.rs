//! `get_url`: download a URL on the target with curl or wget (whichever exists), verify a
//! checksum, replace `dest` atomically only when the content differs, then fix mode/owner/group.
//!
//! One probe reads dest (directory? checksum, mode, owner); the download runs only when dest is
//! missing, `force` is set, dest is a directory (Ansible always re-fetches then), or the wanted
//! checksum differs. Credentials and headers reach curl on stdin (`--config -`), not argv.

use super::probe::{FileState, Kind};
use super::sysutil::{bool_or, failed_output, opt_str, opt_u64, reject_unsupported, req_str};
use super::write::Attrs;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::{Value, Vars};

pub struct GetUrl;

const ALGOS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetUrlArgs {
    pub url: String,
    pub dest: String,
    /// (algorithm, lowercase hex).
    pub checksum: Option<(String, String)>,
    pub force: bool,
    pub timeout: u64,
    pub validate_certs: bool,
    pub headers: Vec<(String, String)>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub attrs: Attrs,
}

impl GetUrlArgs {
    pub fn parse(args: &Vars) -> Result<Self, ModuleError> {
        reject_unsupported(args, &["backup", "client_cert", "client_key"], "get_url")?;
        let url = req_str(args, &["url"])?;
        if !["http://", "https://", "ftp://", "file://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            return Err(ModuleError::Args(format!(
                "get_url: parameter 'url' must start with http://, https://, ftp:// or file://, got '{url}'"
            )));
        }
        let checksum = match opt_str(args, &["checksum"])?.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => {
                let (algo, hex) = c.split_once(':').ok_or_else(|| {
                    ModuleError::Args(format!(
                        "get_url: parameter 'checksum' must look like 'sha256:HEX', got '{c}'"
                    ))
                })?;
                let algo = algo.trim().to_lowercase();
                if !ALGOS.contains(&algo.as_str()) {
                    return Err(ModuleError::Args(format!(
                        "get_url: checksum algorithm '{algo}' is not one of {}",
                        ALGOS.join(", ")
                    )));
                }
                let hex = hex.trim().to_lowercase();
                if hex.contains("://") {
                    return Err(ModuleError::Args(
                        "get_url: a checksum URL is not supported by knockplay; give the hex digest".into(),
                    ));
                }
                if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(ModuleError::Args(format!(
                        "get_url: parameter 'checksum' has an invalid hex digest '{hex}'"
                    )));
                }
                Some((algo, hex))
            }
        };
        let headers = match args.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| (k.clone(), crate::value::to_display(v)))
                .collect(),
            Some(other) => {
                return Err(ModuleError::Args(format!(
                    "get_url: parameter 'headers' must be a dictionary, got {other}"
                )))
            }
        };
        Ok(Self {
            url,
            dest: req_str(args, &["dest"])?,
            checksum,
            force: bool_or(args, &["force"], false)?,
            timeout: opt_u64(args, &["timeout"])?.unwrap_or(10),
            validate_certs: bool_or(args, &["validate_certs"], true)?,
            headers,
            username: opt_str(args, &["url_username", "username"])?,
            password: opt_str(args, &["url_password", "password"])?,
            attrs: Attrs::from_args(&Args::new(&SPEC, args)?)?,
        })
    }

    fn algo(&self) -> &str {
        self.checksum
            .as_ref()
            .map(|c| c.0.as_str())
            .unwrap_or("sha1")
    }

    /// File name from the URL, for a directory `dest`.
    fn url_basename(&self) -> String {
        let path = self.url.split(['?', '#']).next().unwrap_or("");
        let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
        match after_host.rsplit('/').next() {
            Some(b) if !b.is_empty() => b.to_string(),
            _ => "index.html".to_string(),
        }
    }
}

/// What the probe found at dest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// Final path (dest, or `dest/<url basename>` when dest is a directory).
    pub path: String,
    pub dest_is_dir: bool,
    pub state: FileState,
    /// Digest of the existing file with the task's algorithm.
    pub sum: Option<String>,
}

pub fn probe_script(a: &GetUrlArgs) -> String {
    format!(
        "d={d}; isdir=; if [ -d \"$d\" ]; then d=\"${{d%/}}/\"{b}; isdir=1; fi; echo \"isdir=$isdir\"; printf 'path=%s\\n' \"$d\"; \
         if [ -f \"$d\" ]; then stat -L -c 'mode=%a|uid=%u|gid=%g|owner=%U|group=%G|size=%s' -- \"$d\"; \
         s=$({algo}sum < \"$d\") && echo \"sum=${{s%% *}}\"; elif [ -e \"$d\" ]; then echo other=1; fi; echo end=1",
        d = quote(&a.dest),
        b = quote(&a.url_basename()),
        algo = a.algo(),
    )
}

pub fn parse_probe(out: &str) -> Probe {
    let mut p = Probe::default();
    for line in out.lines() {
        for kv in line.split('|') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            match k {
                "isdir" => p.dest_is_dir = v == "1",
                "path" => p.path = v.to_string(),
                "mode" => {
                    p.state.kind = Kind::File;
                    p.state.mode = u32::from_str_radix(v, 8).unwrap_or(0);
                }
                "uid" => p.state.uid = v.parse().unwrap_or(0),
                "gid" => p.state.gid = v.parse().unwrap_or(0),
                "owner" => p.state.owner = v.to_string(),
                "group" => p.state.group = v.to_string(),
                "size" => p.state.size = v.parse().unwrap_or(0),
                "sum" => p.sum = Some(v.to_string()),
                "other" => p.state.kind = Kind::Other,
                _ => {}
            }
        }
    }
    p
}

/// Pure: must the URL be fetched?
pub fn needs_download(a: &GetUrlArgs, p: &Probe) -> bool {
    if p.state.kind != Kind::File {
        return true;
    }
    if let Some((_, want)) = &a.checksum {
        return p.sum.as_deref() != Some(want.as_str());
    }
    a.force || p.dest_is_dir
}

/// Download to a temp file beside dest, verify, replace only when different. Prints
/// `checksum_src=` and `replaced=1` or `same=1`. Secrets for curl come on stdin.
pub fn download_script(a: &GetUrlArgs, path: &str) -> (String, Option<String>) {
    let t = a.timeout;
    let mut curl = vec![
        "curl".to_string(),
        "-fsSL".into(),
        "--connect-timeout".into(),
        t.to_string(),
        "--speed-time".into(),
        t.to_string(),
        "--speed-limit".into(),
        "1".into(),
    ];
    let mut wget = vec!["wget".to_string(), "-q".into(), "-T".into(), t.to_string()];
    if !a.validate_certs {
        curl.push("-k".into());
        wget.push("--no-check-certificate".into());
    }
    let mut config = String::new();
    let mut wgetrc = String::new();
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    for (k, v) in &a.headers {
        config.push_str(&format!("header = \"{}: {}\"\n", esc(k), esc(v)));
        wgetrc.push_str(&format!("header = {k}: {v}\n"));
    }
    if let Some(u) = &a.username {
        let pw = a.password.as_deref().unwrap_or("");
        config.push_str(&format!("user = \"{}:{}\"\n", esc(u), esc(pw)));
        wgetrc.push_str(&format!("user = {u}\npassword = {pw}\n"));
    }
    // Secrets arrive on stdin: curl's config, a marker line, then a wgetrc.
    let secrets = (!config.is_empty()).then(|| format!("{config}@@KP:wgetrc\n{wgetrc}"));
    let read_secrets = if secrets.is_some() {
        curl.push("--config".into());
        curl.push("$c".into());
        "c=$(mktemp) && w=$(mktemp) || exit 1; trap 'rm -f \"$c\" \"$w\"' EXIT; f=$c; \
         while IFS= read -r l; do if [ \"$l\" = @@KP:wgetrc ]; then f=$w; continue; fi; printf '%s\\n' \"$l\" >> \"$f\"; done; \
         WGETRC=$w; export WGETRC; "
    } else {
        ""
    };
    let join = |v: &[String]| {
        v.iter()
            .map(|w| {
                if w == "$c" {
                    "\"$c\"".to_string()
                } else {
                    quote(w)
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let algo = a.algo();
    let verify = match &a.checksum {
        Some((_, want)) => format!(
            "if [ \"$s\" != {want} ]; then rm -f \"$t\"; echo \"The checksum for $d did not match {want}; it was $s.\" >&2; exit 1; fi; "
        ),
        None => String::new(),
    };
    let script = format!(
        "{read_secrets}d={d}; u={u}; t=$(mktemp \"$(dirname \"$d\")/.kp-get_url.XXXXXX\") || exit 1; \
         if command -v curl >/dev/null 2>&1; then {curl} -o \"$t\" \"$u\"; rc=$?; \
         elif command -v wget >/dev/null 2>&1; then {wget} -O \"$t\" \"$u\"; rc=$?; \
         else rm -f \"$t\"; echo 'get_url: neither curl nor wget is installed on the target' >&2; exit 127; fi; \
         if [ $rc -ne 0 ]; then rm -f \"$t\"; echo \"Request failed: downloading $u exited with rc=$rc\" >&2; exit $rc; fi; \
         s=$({algo}sum < \"$t\") || exit 1; s=${{s%% *}}; echo \"checksum_src=$s\"; {verify}\
         if [ -f \"$d\" ] && o=$({algo}sum < \"$d\") && [ \"${{o%% *}}\" = \"$s\" ]; then rm -f \"$t\"; echo same=1; exit 0; fi; \
         if [ -f \"$d\" ]; then chmod --reference=\"$d\" \"$t\"; chown --reference=\"$d\" \"$t\" 2>/dev/null; \
         else chmod \"$(printf '%o' $(( 0666 & ~$(umask) )))\" \"$t\"; fi; \
         mv -f \"$t\" \"$d\" && echo replaced=1",
        d = quote(path),
        u = quote(&a.url),
        curl = join(&curl),
        wget = join(&wget),
    );
    (script, secrets)
}

const SPEC: Spec = Spec::new(
    "get_url",
    &[
        Param::raw("url"),
        Param::raw("dest"),
        Param::raw("checksum"),
        Param::raw("force"),
        Param::raw("timeout"),
        Param::raw("validate_certs"),
        Param::raw("headers"),
        Param::raw("url_username"),
        Param::raw("url_password"),
        Param::raw("username"),
        Param::raw("password"),
        Param::raw("force_basic_auth"),
        Param::mode("mode"),
        Param::str("owner"),
        Param::str("group"),
        Param::raw("backup"),
        Param::raw("tmp_dest"),
        Param::raw("use_proxy"),
        Param::raw("http_agent"),
        Param::raw("client_cert"),
        Param::raw("client_key"),
        Param::raw("seuser"),
        Param::raw("serole"),
        Param::raw("setype"),
        Param::raw("selevel"),
        Param::raw("unsafe_writes"),
        Param::raw("attributes"),
    ],
);

impl Module for GetUrl {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let args = args.legacy_vars();
        let a = GetUrlArgs::parse(args)?;
        let out = ctx.run(&probe_script(&a))?;
        if !out.ok() || !out.stdout_str().contains("end=1") {
            return Ok(failed_output("get_url: reading dest", &out));
        }
        let probe = parse_probe(&out.stdout_str());
        if probe.state.kind == Kind::Other {
            return Ok(ModuleResult::failed(format!(
                "Destination {} exists and is not a regular file",
                probe.path
            )));
        }
        let path = probe.path.clone();
        let download = needs_download(&a, &probe);
        let base = ModuleResult::ok()
            .set("url", a.url.as_str())
            .set("dest", path.as_str());
        if ctx.check_mode {
            let fixes = a.attrs.fix_commands(&path, &probe.state, false);
            // Without fetching we cannot tell whether a forced download would differ.
            let changed = download || !fixes.is_empty();
            return Ok(ModuleResult { changed, ..base });
        }
        let mut changed = false;
        let mut res = base;
        let mut state = probe.state.clone();
        if download {
            let (script, config) = download_script(&a, &path);
            let out = ctx.run_with_stdin(&script, config.as_deref().map(str::as_bytes))?;
            if !out.ok() {
                return Ok(failed_output(&format!("get_url {}", a.url), &out));
            }
            let text = out.stdout_str();
            if let Some(sum) = text.lines().find_map(|l| l.strip_prefix("checksum_src=")) {
                res = res.set("checksum_src", sum);
            }
            if text.lines().any(|l| l == "replaced=1") {
                changed = true;
                if probe.state.kind != Kind::File {
                    // New file: owner/group/mode unknown, so apply every requested attribute.
                    state = FileState {
                        kind: Kind::File,
                        mode: u32::MAX,
                        owner: "\0".into(),
                        group: "\0".into(),
                        uid: u32::MAX,
                        gid: u32::MAX,
                        ..FileState::default()
                    };
                }
            }
            res = res.set("msg", "OK");
        } else {
            res = res.set(
                "msg",
                "file already exists but force=no and no checksum mismatch",
            );
        }
        let fixes = a.attrs.fix_commands(&path, &state, false);
        if !fixes.is_empty() {
            let out = ctx.run(&fixes.join(" && "))?;
            if !out.ok() {
                return Ok(failed_output("get_url: setting mode/owner/group", &out));
            }
            changed = true;
        }
        res.changed = changed;
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::sysutil::testing::{args, ctx, FakeRemote};
    use serde_json::json;

    fn ga(v: serde_json::Value) -> GetUrlArgs {
        GetUrlArgs::parse(&args(v)).unwrap()
    }

    fn file_probe(sum: &str) -> Probe {
        Probe {
            path: "/tmp/x".into(),
            dest_is_dir: false,
            state: FileState {
                kind: Kind::File,
                mode: 0o644,
                owner: "root".into(),
                group: "root".into(),
                ..FileState::default()
            },
            sum: Some(sum.into()),
        }
    }

    #[test]
    fn download_decision_table() {
        let url = "http://127.0.0.1/x.tgz";
        let missing = Probe::default();
        let cases = [
            (json!({"url": url, "dest": "/tmp/x"}), missing.clone(), true),
            (
                json!({"url": url, "dest": "/tmp/x"}),
                file_probe("aa"),
                false,
            ),
            (
                json!({"url": url, "dest": "/tmp/x", "force": true}),
                file_probe("aa"),
                true,
            ),
            (
                json!({"url": url, "dest": "/tmp/x", "checksum": "sha256:AA"}),
                file_probe("aa"),
                false,
            ),
            (
                json!({"url": url, "dest": "/tmp/x", "checksum": "sha256:bb"}),
                file_probe("aa"),
                true,
            ),
            (
                json!({"url": url, "dest": "/tmp/"}),
                Probe {
                    dest_is_dir: true,
                    ..file_probe("aa")
                },
                true,
            ),
        ];
        for (a, p, want) in cases {
            assert_eq!(needs_download(&ga(a.clone()), &p), want, "{a}");
        }
    }

    #[test]
    fn argument_errors() {
        for (a, needle) in [
            (json!({"url": "http://h/x"}), "'dest'"),
            (json!({"url": "gopher://h/x", "dest": "/x"}), "'url'"),
            (
                json!({"url": "http://h/x", "dest": "/x", "checksum": "abc"}),
                "sha256:HEX",
            ),
            (
                json!({"url": "http://h/x", "dest": "/x", "checksum": "crc32:abc"}),
                "crc32",
            ),
            (
                json!({"url": "http://h/x", "dest": "/x", "checksum": "sha256:zz"}),
                "hex digest",
            ),
            (
                json!({"url": "http://h/x", "dest": "/x", "mode": "rwx"}),
                "'mode'",
            ),
        ] {
            let e = GetUrlArgs::parse(&args(a.clone())).unwrap_err().to_string();
            assert!(e.contains(needle), "{a}: {e}");
        }
        assert_eq!(
            ga(json!({"url": "http://h/a/b.tgz?x=1", "dest": "/"})).url_basename(),
            "b.tgz"
        );
        assert_eq!(
            ga(json!({"url": "http://h", "dest": "/"})).url_basename(),
            "index.html"
        );
    }

    /// The real scripts with sh, fetching a file:// URL (curl/wget, whichever the machine has).
    #[test]
    fn scripts_download_verify_and_skip() {
        let has = |b: &str| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {b}"))
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        if !has("curl") {
            return; // wget has no file:// support; nothing to exercise here
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.txt");
        std::fs::write(&src, "hello\n").unwrap();
        let dest = dir.path().join("out").display().to_string();
        std::fs::create_dir(&dest).unwrap();
        let sha = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        let a = ga(
            json!({"url": format!("file://{}", src.display()), "dest": dest, "checksum": format!("sha256:{sha}")}),
        );
        let sh = |s: &str| {
            let o = std::process::Command::new("sh")
                .arg("-c")
                .arg(s)
                .output()
                .unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        };
        let (_, out, _) = sh(&probe_script(&a));
        let p = parse_probe(&out);
        assert!(p.dest_is_dir);
        assert!(p.path.ends_with("/out/src.txt"), "{}", p.path);
        assert!(needs_download(&a, &p));
        let (rc, out, err) = sh(&download_script(&a, &p.path).0);
        assert_eq!(rc, Some(0), "{err}");
        assert!(out.contains("replaced=1"));
        assert_eq!(std::fs::read_to_string(&p.path).unwrap(), "hello\n");
        let (_, out, _) = sh(&probe_script(&a));
        let p2 = parse_probe(&out);
        assert_eq!(p2.sum.as_deref(), Some(sha));
        assert!(!needs_download(&a, &p2));
        // A wrong checksum fails and leaves no temp file behind.
        let bad = GetUrlArgs {
            checksum: Some(("sha256".into(), "00".into())),
            ..a.clone()
        };
        let (rc, _, err) = sh(&download_script(&bad, &format!("{dest}/other")).0);
        assert_eq!(rc, Some(1));
        assert!(err.contains("did not match"), "{err}");
        // With headers/credentials the secrets travel on stdin and the download still works.
        let with_auth = GetUrlArgs {
            headers: vec![("X-Test".into(), "1".into())],
            username: Some("u".into()),
            password: Some("p w\"x".into()),
            checksum: None,
            ..a.clone()
        };
        let (script, secrets) = download_script(&with_auth, &format!("{dest}/auth.txt"));
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(secrets.unwrap().as_bytes())
            .unwrap();
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success());
        assert_eq!(
            std::fs::read_to_string(format!("{dest}/auth.txt")).unwrap(),
            "hello\n"
        );
        std::fs::remove_file(format!("{dest}/auth.txt")).unwrap();
        let names: Vec<_> = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn run_flow_existing_file_costs_one_round_trip() {
        let facts = Vars::new();
        let probe = "isdir=\npath=/tmp/x\nmode=644|uid=0|gid=0|owner=root|group=root|size=6\nsum=abc\nend=1\n";
        let mut r = FakeRemote::new(&[(0, probe)]);
        let res = GetUrl
            .execute(
                &args(json!({"url": "http://127.0.0.1/x", "dest": "/tmp/x", "mode": "0644"})),
                &mut ctx(&mut r, &facts, false),
            )
            .unwrap();
        assert!(!res.changed && !res.failed, "{res:?}");
        assert_eq!(r.commands.len(), 1);
        // Secrets go to curl on stdin, never into the command.
        let mut r = FakeRemote::new(&[
            (0, "isdir=\npath=/tmp/y\nend=1\n"),
            (0, "checksum_src=1\nreplaced=1\n"),
            (0, ""),
        ]);
        let res = GetUrl
            .execute(
                &args(json!({"url": "http://127.0.0.1/x", "dest": "/tmp/y", "url_username": "u", "url_password": "s3cret", "owner": "root"})),
                &mut ctx(&mut r, &facts, false),
            )
            .unwrap();
        assert!(res.changed);
        assert!(r.stdins[1]
            .as_ref()
            .is_some_and(|s| String::from_utf8_lossy(s).contains("s3cret")));
        assert!(r.commands[1].contains("--config \"$c\""));
        assert!(!r.commands.iter().any(|c| c.contains("s3cret")));
        assert!(
            r.commands[2].contains("chown root /tmp/y"),
            "{:?}",
            r.commands
        );
    }
}
