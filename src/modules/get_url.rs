//! `get_url`: download a URL on the target with curl or wget (whichever exists), verify a
//! checksum, replace `dest` atomically only when the content differs, then fix mode/owner/group.
//!
//! One probe reads dest (directory? checksum, mode, owner); the download runs only when dest is
//! missing, `force` is set, dest is a directory (Ansible always re-fetches then), or the wanted
//! checksum differs. Credentials and headers reach curl on stdin (`--config -`), not argv.

use super::plan::failed_output;
use super::probe::{parse_probe, probe_script, run_script, FileState, Kind, ProbeReq};
use super::write::{write_file_script, Attrs, WriteSource, WriteSpec, FILE_COMMON};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

pub struct GetUrl;

/// Checksum algorithms, each with the coreutils command computing it.
const ALGOS: &[(&str, &str)] = &[
    ("md5", "md5sum"),
    ("sha1", "sha1sum"),
    ("sha224", "sha224sum"),
    ("sha256", "sha256sum"),
    ("sha384", "sha384sum"),
    ("sha512", "sha512sum"),
];

const SPEC: Spec = Spec::new(
    "get_url",
    &[
        Param::str("url").required(),
        Param::path("dest").required(),
        Param::str("checksum"),
        Param::bool("force").default("false"),
        Param::int("timeout").default("10"),
        Param::bool("validate_certs").default("true"),
        Param::dict("headers"),
        Param::str("url_username").aliases(&["username"]),
        Param::str("url_password").aliases(&["password"]),
        // curl and wget send the credentials with the first request, and honour the
        // *_proxy environment variables.
        Param::bool("force_basic_auth").only("true"),
        Param::bool("use_proxy").only("true"),
        Param::bool("backup").refused("the replaced file is not kept"),
        Param::path("tmp_dest").refused("the download goes to a temporary file beside dest"),
        Param::str("http_agent").refused("curl and wget send their own User-Agent"),
        Param::path("client_cert").refused("client certificates are not passed to curl or wget"),
        Param::path("client_key").refused("client certificates are not passed to curl or wget"),
    ],
)
.shared(&[FILE_COMMON]);

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
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let url = args.req_str("url")?;
        if !["http://", "https://", "ftp://", "file://"]
            .iter()
            .any(|p| url.starts_with(p))
        {
            return Err(ModuleError::Args(format!(
                "parameter 'url' must start with http://, https://, ftp:// or file://, got '{url}'"
            )));
        }
        let checksum = match args.str("checksum")?.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(parse_checksum(&c).map_err(ModuleError::Args)?),
        };
        let headers = args
            .dict("headers")?
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.clone(), crate::value::to_display(v)))
            .collect();
        Ok(Self {
            url,
            dest: args.req_str("dest")?,
            checksum,
            force: args.bool("force")?,
            timeout: args.uint("timeout")?.unwrap_or_default(),
            validate_certs: args.bool("validate_certs")?,
            headers,
            username: args.str("url_username")?,
            password: args.str("url_password")?,
            attrs: Attrs::from_args_without_preserve(args)?,
        })
    }

    fn algo(&self) -> &str {
        self.checksum
            .as_ref()
            .map(|c| c.0.as_str())
            .unwrap_or("sha1")
    }

    /// The coreutils command computing [`algo`](Self::algo).
    fn sum_command(&self) -> &'static str {
        let algo = self.algo();
        ALGOS
            .iter()
            .find(|(a, _)| *a == algo)
            .map_or("sha1sum", |(_, cmd)| cmd)
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

/// `algo:hex` → (algorithm, lowercase hex digest).
fn parse_checksum(c: &str) -> Result<(String, String), String> {
    let (algo, hex) = c
        .split_once(':')
        .ok_or_else(|| format!("parameter 'checksum' must look like 'sha256:HEX', got '{c}'"))?;
    let algo = algo.trim().to_lowercase();
    if !ALGOS.iter().any(|(a, _)| *a == algo) {
        let names: Vec<&str> = ALGOS.iter().map(|(a, _)| *a).collect();
        return Err(format!(
            "checksum algorithm '{algo}' is not one of {}",
            names.join(", ")
        ));
    }
    let hex = hex.trim().to_lowercase();
    if hex.contains("://") {
        return Err("a checksum URL is not supported by knockplay; give the hex digest".into());
    }
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "parameter 'checksum' has an invalid hex digest '{hex}'"
        ));
    }
    Ok((algo, hex))
}

/// What the probe found at dest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// Final path (dest, or `dest/<url basename>` when dest is a directory).
    pub path: String,
    pub dest_is_dir: bool,
    /// `kind` is `Other` for anything but a regular file (links followed).
    pub state: FileState,
    /// Digest of the existing file with the task's algorithm.
    pub sum: Option<String>,
}

/// The file probe of dest and of `dest/<url basename>` (used when dest is a directory), links
/// followed, with the task's checksum.
pub fn probe_reqs(a: &GetUrlArgs) -> Vec<ProbeReq> {
    let in_dir = format!(
        "{}/{}",
        a.dest.strip_suffix('/').unwrap_or(&a.dest),
        a.url_basename()
    );
    [a.dest.clone(), in_dir]
        .into_iter()
        .map(|path| ProbeReq {
            follow: true,
            sum_cmd: Some(a.sum_command()),
            ..ProbeReq::new(path)
        })
        .collect()
}

/// The file to write from the two probed paths of [`probe_reqs`].
pub fn probe_of(reqs: &[ProbeReq], states: Vec<FileState>) -> Probe {
    let mut states = states.into_iter();
    let dest = states.next().unwrap_or_default();
    let (dest_is_dir, req, mut state) = if dest.kind == Kind::Directory {
        (true, reqs.get(1), states.next().unwrap_or_default())
    } else {
        (false, reqs.first(), dest)
    };
    if !matches!(state.kind, Kind::File | Kind::Absent) {
        state.kind = Kind::Other;
    }
    Probe {
        path: req.map(|r| r.path.clone()).unwrap_or_default(),
        dest_is_dir,
        sum: state.sum.clone(),
        state,
    }
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
pub fn download_script(
    a: &GetUrlArgs,
    path: &str,
    existing: Option<&FileState>,
) -> (String, Option<String>) {
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
        // Like curl (and force_basic_auth), send the credentials without waiting for a 401.
        wgetrc.push_str(&format!(
            "user = {u}\npassword = {pw}\nauth_no_challenge = on\n"
        ));
    }
    // Secrets arrive on stdin: curl's config, a marker line, then a wgetrc.
    let secrets = (!config.is_empty()).then(|| format!("{config}@@KP:wgetrc\n{wgetrc}"));
    let read_secrets = if secrets.is_some() {
        curl.push("--config".into());
        curl.push("$c".into());
        "c=$(mktemp) && w=$(mktemp) || exit 1; f=$c; \
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
    let sum = a.sum_command();
    let verify = match &a.checksum {
        Some((_, want)) => format!(
            "if [ \"$s\" != {want} ]; then echo \"The checksum for $d did not match {want}; it was $s.\" >&2; exit 1; fi; "
        ),
        None => String::new(),
    };
    // The download goes to a private temp file (mktemp, 0600, random name), then into place
    // through the write script, which follows no link planted beside dest.
    let install = write_file_script(&WriteSpec {
        dest: path.to_string(),
        existing: existing.filter(|e| e.kind == Kind::File).cloned(),
        source: WriteSource::RemoteVar("kp_dl".into()),
        ..WriteSpec::default()
    });
    let script = format!(
        "{read_secrets}d={d}; u={u}; kp_dl=$(mktemp) || exit 1; trap 'rm -f \"$kp_dl\" ${{c:+\"$c\"}} ${{w:+\"$w\"}}' EXIT; \
         if command -v curl >/dev/null 2>&1; then {curl} -o \"$kp_dl\" \"$u\"; rc=$?; \
         elif command -v wget >/dev/null 2>&1; then {wget} -O \"$kp_dl\" \"$u\"; rc=$?; \
         else echo 'get_url: neither curl nor wget is installed on the target' >&2; exit 127; fi; \
         if [ $rc -ne 0 ]; then echo \"Request failed: downloading $u exited with rc=$rc\" >&2; exit $rc; fi; \
         s=$({sum} < \"$kp_dl\") || exit 1; s=${{s%% *}}; echo \"checksum_src=$s\"; {verify}\
         if [ -f \"$d\" ] && o=$({sum} < \"$d\") && [ \"${{o%% *}}\" = \"$s\" ]; then echo same=1; exit 0; fi\n\
         {install}\necho replaced=1",
        d = quote(path),
        u = quote(&a.url),
        curl = join(&curl),
        wget = join(&wget),
    );
    (script, secrets)
}

impl Module for GetUrl {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let a = GetUrlArgs::from_args(args)?;
        let reqs = probe_reqs(&a);
        let out = run_script(ctx, &probe_script(&reqs))?;
        if !out.ok() {
            return Ok(failed_output("get_url: reading dest", &out));
        }
        let probe = match parse_probe(&out.stdout, reqs.len()) {
            Ok(states) => probe_of(&reqs, states),
            Err(e) => return Ok(ModuleResult::failed(format!("get_url: {e}"))),
        };
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
            let (script, config) = download_script(&a, &path, Some(&probe.state));
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
    use super::super::testing::{args, ctx, out, parse_with, sh, FakeRemote};
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<GetUrlArgs, ModuleError> {
        parse_with(&SPEC, v, GetUrlArgs::from_args)
    }

    fn ga(v: serde_json::Value) -> GetUrlArgs {
        parse(v).unwrap()
    }

    /// The probe of `a` run with the local shell.
    fn probe_here(a: &GetUrlArgs) -> Probe {
        let reqs = probe_reqs(a);
        let o = sh(&probe_script(&reqs), None);
        probe_of(&reqs, parse_probe(&o.stdout, reqs.len()).unwrap())
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
    fn probe_picks_the_file_inside_a_directory_dest() {
        let a = ga(json!({"url": "http://h/a/b.tgz", "dest": "/srv/", "checksum": "md5:AB"}));
        let reqs = probe_reqs(&a);
        assert_eq!(reqs[0].path, "/srv/");
        assert_eq!(reqs[1].path, "/srv/b.tgz");
        assert!(reqs.iter().all(|r| r.follow && r.sum_cmd == Some("md5sum")));
        let dir = FileState {
            kind: Kind::Directory,
            ..FileState::default()
        };
        let file = FileState {
            kind: Kind::File,
            sum: Some("ab".into()),
            ..FileState::default()
        };
        let p = probe_of(&reqs, vec![dir.clone(), file.clone()]);
        assert_eq!((p.path.as_str(), p.dest_is_dir), ("/srv/b.tgz", true));
        assert_eq!(p.sum.as_deref(), Some("ab"));
        let p = probe_of(&reqs, vec![file, FileState::default()]);
        assert_eq!((p.path.as_str(), p.dest_is_dir), ("/srv/", false));
        // A directory where the file goes is not a regular file.
        let p = probe_of(&reqs, vec![dir.clone(), dir]);
        assert_eq!(p.state.kind, Kind::Other);
        let a = ga(json!({"url": "http://h/x", "dest": "/tmp/x"}));
        assert_eq!(probe_reqs(&a)[1].sum_cmd, Some("sha1sum"));
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
            (
                json!({"url": "http://h/x", "dest": "/x", "headers": ["a"]}),
                "get_url: parameter 'headers' must be a dict",
            ),
            (
                json!({"url": "http://h/x", "dest": "/x", "backup": true}),
                "get_url: parameter 'backup' is not supported by knockplay",
            ),
            (
                json!({"url": "http://h/x", "dest": "/x", "force_basic_auth": false}),
                "only force_basic_auth=true",
            ),
            (
                json!({"url": "http://h/x", "dest": "/x", "mode": "preserve"}),
                "get_url: mode=preserve is only valid for copy",
            ),
            (
                json!({"url": "http://h/x", "dest": "/x", "attributes": "+i"}),
                "get_url: parameter 'attributes' is not supported by knockplay",
            ),
        ] {
            let e = parse(a.clone()).unwrap_err().to_string();
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
        let has = |b: &str| sh(&format!("command -v {b}"), None).ok();
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
        let run = |s: &str| {
            let o = sh(s, None);
            (Some(o.rc), o.stdout_str(), o.stderr_str())
        };
        let p = probe_here(&a);
        assert!(p.dest_is_dir);
        assert!(p.path.ends_with("/out/src.txt"), "{}", p.path);
        assert!(needs_download(&a, &p));
        let (rc, out, err) = run(&download_script(&a, &p.path, None).0);
        assert_eq!(rc, Some(0), "{err}");
        assert!(out.contains("replaced=1"));
        assert_eq!(std::fs::read_to_string(&p.path).unwrap(), "hello\n");
        let p2 = probe_here(&a);
        assert_eq!(p2.sum.as_deref(), Some(sha));
        assert!(!needs_download(&a, &p2));
        // A wrong checksum fails and leaves no temp file behind.
        let bad = GetUrlArgs {
            checksum: Some(("sha256".into(), "00".into())),
            ..a.clone()
        };
        let (rc, _, err) = run(&download_script(&bad, &format!("{dest}/other"), None).0);
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
        let (script, secrets) = download_script(&with_auth, &format!("{dest}/auth.txt"), None);
        let secrets = secrets.unwrap();
        assert!(secrets.ends_with("auth_no_challenge = on\n"), "{secrets}");
        assert!(sh(&script, Some(secrets.as_bytes())).ok());
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
        let probe = "@@0\nkind=file\nreal=/tmp/x\nmode=644|uid=0|gid=0|owner=root|group=root|size=6|mtime=1|atime=1|ctime=1|inode=2|dev=3|nlink=1|ftype=regular file\nsum=abc\n@@1\nkind=absent\n@@end\n";
        let mut r = FakeRemote::new(vec![out(0, probe)]);
        let res = GetUrl
            .execute(
                &args(json!({"url": "http://127.0.0.1/x", "dest": "/tmp/x", "mode": "0644"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(!res.changed && !res.failed, "{res:?}");
        assert_eq!(r.seen.len(), 1);
        // Secrets go to curl on stdin, never into the command.
        let mut r = FakeRemote::new(vec![
            out(0, "@@0\nkind=absent\n@@1\nkind=absent\n@@end\n"),
            out(0, "checksum_src=1\nreplaced=1\n"),
            out(0, ""),
        ]);
        let res = GetUrl
            .execute(
                &args(json!({"url": "http://127.0.0.1/x", "dest": "/tmp/y", "url_username": "u", "url_password": "s3cret", "owner": "root"})),
                &mut ctx(&mut r, false, false, vec![]),
            )
            .unwrap();
        assert!(res.changed);
        assert!(r.seen[1]
            .1
            .as_ref()
            .is_some_and(|s| String::from_utf8_lossy(s).contains("s3cret")));
        assert!(r.seen[1].0.contains("--config \"$c\""));
        assert!(!r.seen.iter().any(|(c, _)| c.contains("s3cret")));
        assert!(
            r.seen[2].0.contains("kp_fix y 'chown root'"),
            "{:?}",
            r.seen
        );
    }
}
