//! `uri`: an HTTP(S) request made on the target with its `curl`, reported as Ansible's uri module
//! does (`status`, `url`, `redirected`, `msg`, the response headers lowercased with `-` as `_`,
//! `json` for a JSON response, `content` with `return_content`, `path` with `dest`).
//!
//! The URL, headers, credentials and the request body never appear on a command line: curl reads
//! its options as a config file on stdin (`-K`), followed by the body. The response comes back in
//! `@@KP:` sections (curl's exit code and write-out, the header dump, the body when it is needed)
//! and is capped at [`RESPONSE_CAP`] bytes; it is data, never rendered as a template. With `dest`,
//! the body stays in a private temporary directory on the target and is moved into place (when
//! its SHA-1 differs) in a later round trip, like Ansible's `write_file`.
//!
//! The uri action does not support check mode: the task is skipped, as Ansible does.

use super::probe::{probe, run_script, section, FileState, Kind, ProbeReq};
use super::write::{write_file_script, Attrs, WriteSource, WriteSpec, FILE_COMMON};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::playbook::template::pyfmt::{json_dumps, py_str};
use crate::shell::quote;
use crate::value::Value;

pub struct Uri;

/// Largest response body brought back to the controller (the target's answer is untrusted).
pub const RESPONSE_CAP: u64 = 64 * 1024 * 1024;
/// Largest request body sent.
pub const BODY_CAP: usize = 64 * 1024 * 1024;

const SPEC: Spec = Spec::new(
    "uri",
    &[
        Param::str("url").required(),
        Param::path("dest"),
        Param::str("url_username").aliases(&["user"]),
        Param::str("url_password").aliases(&["password"]),
        Param::raw("body"),
        Param::str("body_format").default("raw").choices(&[
            "form-urlencoded",
            "json",
            "raw",
            "form-multipart",
        ]),
        Param::str("method").default("GET"),
        Param::bool("return_content").default("false"),
        Param::str("follow_redirects")
            .default("safe")
            .choices(&["all", "no", "none", "safe", "urllib2", "yes"]),
        Param::path("creates"),
        Param::path("removes"),
        Param::list("status_code").default("200"),
        Param::int("timeout").default("30"),
        Param::dict("headers"),
        Param::bool("force").default("false"),
        Param::bool("force_basic_auth").default("false"),
        Param::bool("validate_certs").default("true"),
        Param::str("http_agent").default("ansible-httpget"),
        Param::path("ca_path"),
        Param::bool("use_proxy").only("true"),
        Param::bool("decompress").only("true"),
        Param::bool("use_netrc").only("true"),
        Param::path("src").refused("request bodies from files are not uploaded"),
        Param::bool("remote_src").only("false"),
        Param::path("unix_socket").refused("requests over a unix socket are not made"),
        Param::list("unredirected_headers").refused("curl sends the same headers after a redirect"),
        Param::list("ciphers").refused("cipher lists are not passed to curl"),
        Param::bool("use_gssapi").only("false"),
        Param::path("client_cert").refused("client certificates are not passed to curl"),
        Param::path("client_key").refused("client certificates are not passed to curl"),
    ],
)
.shared(&[FILE_COMMON]);

/// The validated arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UriArgs {
    pub url: String,
    pub method: String,
    /// The request body as sent (already encoded for `body_format`).
    pub body: Option<Vec<u8>>,
    pub headers: Vec<(String, String)>,
    pub status_code: Vec<i64>,
    pub return_content: bool,
    pub dest: Option<String>,
    pub creates: Option<String>,
    pub removes: Option<String>,
    pub timeout: u64,
    pub follow: Follow,
    pub username: Option<String>,
    pub password: Option<String>,
    pub force_basic_auth: bool,
    pub force: bool,
    pub validate_certs: bool,
    pub http_agent: String,
    pub ca_path: Option<String>,
    pub attrs: Attrs,
}

/// `follow_redirects`, as Ansible's redirect handler reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Follow {
    /// `none`/`no`: never.
    None,
    /// `safe`: only GET and HEAD.
    #[default]
    Safe,
    /// `all`/`yes`/`urllib2`: every method.
    All,
}

impl UriArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let url = args.req_str("url")?;
        if !["http://", "https://"].iter().any(|p| url.starts_with(p)) {
            return Err(ModuleError::Args(format!(
                "parameter 'url' must start with http:// or https://, got '{url}'"
            )));
        }
        let mut headers: Vec<(String, String)> = args
            .dict("headers")?
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| (k.clone(), crate::value::to_display(v)))
            .collect();
        let body_format = args.str("body_format")?.unwrap_or_default().to_lowercase();
        let body = args.value("body")?;
        let (body, content_type) = encode_body(body.as_ref(), &body_format)?;
        if let Some(ct) = content_type {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("Content-Type".into(), ct.into()));
            }
        }
        for (k, v) in &headers {
            if [k, v].iter().any(|s| s.contains(['\n', '\r', '\0'])) {
                return Err(ModuleError::Args(format!(
                    "header '{}' contains a line break",
                    k.escape_debug()
                )));
            }
        }
        let lines = [
            "url",
            "url_username",
            "url_password",
            "http_agent",
            "ca_path",
        ];
        for k in lines {
            if args.str(k)?.is_some_and(|v| v.contains(['\n', '\r', '\0'])) {
                return Err(ModuleError::Args(format!(
                    "parameter '{k}' contains a line break"
                )));
            }
        }
        if body.as_ref().is_some_and(|b| b.len() > BODY_CAP) {
            return Err(ModuleError::Args("the request body exceeds 64 MiB".into()));
        }
        let status_code = args
            .list("status_code")?
            .unwrap_or_default()
            .iter()
            .map(|s| {
                s.trim().parse::<i64>().map_err(|_| {
                    ModuleError::Args(format!(
                        "parameter 'status_code' must be a list of integers, got '{s}'"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let follow = match args.str("follow_redirects")?.as_deref() {
            Some("no" | "none") => Follow::None,
            Some("all" | "yes" | "urllib2") => Follow::All,
            _ => Follow::Safe,
        };
        let nonempty = |k: &str| Ok::<_, ModuleError>(args.str(k)?.filter(|s| !s.is_empty()));
        Ok(Self {
            url,
            method: args.str("method")?.unwrap_or_default().to_uppercase(),
            body,
            headers,
            status_code,
            return_content: args.bool("return_content")?,
            dest: nonempty("dest")?,
            creates: nonempty("creates")?,
            removes: nonempty("removes")?,
            timeout: args.uint("timeout")?.unwrap_or(30),
            follow,
            username: nonempty("url_username")?,
            password: args.str("url_password")?,
            force_basic_auth: args.bool("force_basic_auth")?,
            force: args.bool("force")?,
            validate_certs: args.bool("validate_certs")?,
            http_agent: args.str("http_agent")?.unwrap_or_default(),
            ca_path: nonempty("ca_path")?,
            attrs: Attrs::from_args_without_preserve(args)?,
        })
    }

    /// Whether curl follows redirects for this request.
    fn follows(&self) -> bool {
        match self.follow {
            Follow::None => false,
            Follow::All => true,
            Follow::Safe => self.method == "GET" || self.method == "HEAD",
        }
    }
}

/// The body as sent and the Content-Type it implies, as Ansible encodes `body_format`. Pure.
pub fn encode_body(
    body: Option<&Value>,
    format: &str,
) -> Result<(Option<Vec<u8>>, Option<&'static str>), ModuleError> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => py_str(other),
    };
    Ok(match format {
        "json" => (
            body.map(|b| match b {
                Value::String(s) => s.clone().into_bytes(),
                other => json_dumps(other, None, false).into_bytes(),
            }),
            Some("application/json"),
        ),
        "form-urlencoded" => (
            body.map(|b| form_urlencoded(b).map(String::into_bytes))
                .transpose()?,
            Some("application/x-www-form-urlencoded"),
        ),
        "form-multipart" => {
            return Err(ModuleError::Args(
                "body_format=form-multipart is not supported by knockplay".into(),
            ))
        }
        _ => (body.map(|b| text(b).into_bytes()), None),
    })
}

/// Python's `urlencode(pairs, doseq=True)` of a dict or list of pairs; a string is kept. Pure.
pub fn form_urlencoded(body: &Value) -> Result<String, ModuleError> {
    let pairs: Vec<(String, Value)> = match body {
        Value::String(s) => return Ok(s.clone()),
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Value::Array(items) => items
            .iter()
            .map(|it| match it {
                Value::Array(kv) if kv.len() == 2 => Ok((py_str(&kv[0]), kv[1].clone())),
                _ => Err(ModuleError::Args(
                    "failed to parse body as form_urlencoded: a list body must hold pairs".into(),
                )),
            })
            .collect::<Result<_, _>>()?,
        other => return Ok(py_str(other)),
    };
    let mut out = Vec::new();
    for (k, v) in pairs {
        let values = match v {
            Value::Array(a) => a,
            Value::Object(m) => m.keys().map(|k| Value::from(k.as_str())).collect(),
            one => vec![one],
        };
        for v in values.iter().filter(|v| !v.is_null()) {
            out.push(format!("{}={}", quote_plus(&k), quote_plus(&py_str(v))));
        }
    }
    Ok(out.join("&"))
}

/// Python's `urllib.parse.quote_plus`.
fn quote_plus(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A curl config string (`"..."`, backslash escapes).
fn cfg(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// curl's config (read from stdin): everything secret or long. Pure.
pub fn curl_config(a: &UriArgs, body_file: bool) -> String {
    let mut c = String::new();
    let mut line = |k: &str, v: Option<&str>| {
        c.push_str(k);
        if let Some(v) = v {
            c.push_str(" = ");
            c.push_str(&cfg(v));
        }
        c.push('\n');
    };
    line("url", Some(&a.url));
    line("silent", None);
    line("show-error", None);
    line("compressed", None);
    line("netrc-optional", None);
    line("user-agent", Some(&a.http_agent));
    let t = a.timeout.max(1).to_string();
    line("connect-timeout", Some(&t));
    line("speed-time", Some(&t));
    line("speed-limit", Some("1"));
    if a.follows() {
        line("location", None);
        line("max-redirs", Some("10"));
    }
    if !a.validate_certs {
        line("insecure", None);
    }
    if let Some(ca) = &a.ca_path {
        line("cacert", Some(ca));
    }
    for (k, v) in &a.headers {
        line("header", Some(&format!("{k}: {v}")));
    }
    if let Some(u) = &a.username {
        let pw = a.password.as_deref().unwrap_or("");
        line("user", Some(&format!("{u}:{pw}")));
        line(
            if a.force_basic_auth {
                "basic"
            } else {
                "anyauth"
            },
            None,
        );
    }
    let implied = if a.method == "HEAD" {
        line("head", None);
        "HEAD"
    } else if body_file {
        line("data-binary", Some("@KP_BODY"));
        "POST"
    } else {
        "GET"
    };
    if a.method != implied {
        line("request", Some(&a.method));
    }
    c
}

/// The request script: guards, curl, then the response as sections (`skip`, `curl`, `headers`,
/// `size`, `body` when needed, `tmp` with `dest`). Its stdin is the config, a `@@KP:body` line
/// and the body. Pure.
pub fn request_script(a: &UriArgs) -> String {
    let mut s = String::from("LC_ALL=C; export LC_ALL\n");
    if let Some(c) = &a.creates {
        s.push_str(&format!(
            "if [ -e {q} ]; then {}; exit 0; fi\n",
            section("skip_creates"),
            q = quote(c)
        ));
    }
    if let Some(r) = &a.removes {
        s.push_str(&format!(
            "if [ ! -e {q} ]; then {}; exit 0; fi\n",
            section("skip_removes"),
            q = quote(r)
        ));
    }
    s.push_str(
        "if ! command -v curl >/dev/null 2>&1; then echo 'uri: curl is required on the target and was not found in PATH' >&2; exit 127; fi\n\
         kp_t=$(mktemp -d) || exit 1\n",
    );
    if a.dest.is_none() {
        s.push_str("trap 'rm -rf \"$kp_t\"' EXIT\n");
    }
    s.push_str(
        ": > \"$kp_t/c\"; while IFS= read -r kp_l; do [ \"$kp_l\" = @@KP:body ] && break; \
         case $kp_l in 'data-binary = \"@KP_BODY\"') kp_l=\"data-binary = \\\"@$kp_t/b\\\"\";; esac; \
         printf '%s\\n' \"$kp_l\" >> \"$kp_t/c\"; done\ncat > \"$kp_t/b\"\n",
    );
    let mut curl = String::from(
        "curl -K \"$kp_t/c\" -D \"$kp_t/h\" -o \"$kp_t/o\" -w '%{http_code} %{num_redirects} %{url_effective}'",
    );
    if let Some(d) = &a.dest {
        if !a.force {
            curl = format!(
                "kp_z=; if [ -f {d} ]; then kp_z=1; fi\n{curl} ${{kp_z:+-z {d}}}",
                d = quote(d)
            );
        }
    }
    let codes: Vec<String> = a.status_code.iter().map(i64::to_string).collect();
    let codes = if codes.is_empty() {
        "none".to_string()
    } else {
        codes.join("|")
    };
    // Everything the server controls (write-out URL, headers, curl's message, body) comes after
    // the end marker, with its length announced before it: it cannot forge a section.
    s.push_str(&format!(
        "{curl} > \"$kp_t/w\" 2> \"$kp_t/e0\"; kp_rc=$?\n\
         head -c 1048576 \"$kp_t/h\" > \"$kp_t/h1\"; head -c 4096 \"$kp_t/e0\" > \"$kp_t/e\"; : > \"$kp_t/o1\"\n\
         kp_need={}; kp_code=$(head -c 3 \"$kp_t/w\"); case $kp_code in {codes}) ;; *) kp_need=1;; esac\n\
         kp_ct=$(tr -d '\\r' < \"$kp_t/h1\" | grep -i '^content-type:' | tail -n 1 | tr 'A-Z' 'a-z')\n\
         case $kp_ct in *json*|*javascript*) kp_need=1;; esac\n\
         if [ $kp_need = 1 ] && [ -f \"$kp_t/o\" ]; then head -c {} \"$kp_t/o\" > \"$kp_t/o1\"; fi\n\
         {}; echo $kp_rc; wc -c < \"$kp_t/o\" 2>/dev/null || echo 0\n",
        u8::from(a.return_content),
        RESPONSE_CAP + 1,
        section("curl"),
    ));
    if a.dest.is_some() {
        s.push_str(&format!(
            "{}; printf '%s\\n' \"$kp_t\"; if [ -f \"$kp_t/o\" ]; then sha1sum < \"$kp_t/o\"; fi\n",
            section("tmp")
        ));
    }
    s.push_str(&format!(
        "{}; for kp_f in w h1 e o1; do wc -c < \"$kp_t/$kp_f\"; done\n{}\n\
         cat \"$kp_t/w\" \"$kp_t/h1\" \"$kp_t/e\" \"$kp_t/o1\"\n",
        section("lens"),
        section("end"),
    ));
    s
}

mod response;
pub use response::{
    absolute_location, parse_headers, parse_response, response_filename, result_of, Response,
};

impl Module for Uri {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        if ctx.check_mode {
            let mut r = ModuleResult::ok().set("skipped", true);
            r.msg = Some("This action (uri) does not support check mode.".into());
            return Ok(r);
        }
        let a = UriArgs::from_args(args)?;
        if a.method.is_empty() || !a.method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Ok(ModuleResult::failed(
                "Parameter 'method' needs to be a single word in uppercase, like GET or POST.",
            ));
        }
        let mut stdin = curl_config(&a, a.body.is_some()).into_bytes();
        stdin.extend_from_slice(b"@@KP:body\n");
        stdin.extend_from_slice(a.body.as_deref().unwrap_or_default());
        let out = ctx.run_with_stdin(
            &format!("sh -c {}", quote(&request_script(&a))),
            Some(&stdin),
        )?;
        let text = String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(4096)]).into_owned();
        for (key, word) in [("skip_creates", &a.creates), ("skip_removes", &a.removes)] {
            if let Some(p) = word
                .as_ref()
                .filter(|_| text.contains(&format!("@@KP:{key}\n")))
            {
                let mut r = ModuleResult::ok();
                r.stdout = Some(if key == "skip_creates" {
                    format!("skipped, since '{p}' exists")
                } else {
                    format!("skipped, since '{p}' does not exist")
                });
                return Ok(r);
            }
        }
        let resp = match parse_response(&out.stdout) {
            Ok(r) if out.ok() => r,
            _ => {
                return Ok(super::plan::failed_output("uri: the request", &out));
            }
        };
        let res = result_of(&a, &resp);
        match (&a.dest, resp.tmp.clone()) {
            (Some(dest), Some((tmp, sum))) => {
                let res = match res {
                    Ok(r) => save(ctx, &a, dest, &resp, r, &tmp, &sum),
                    Err(e) => Ok(ModuleResult::failed(e)),
                };
                run_script(ctx, &format!("rm -rf -- {}", quote(&tmp)))?;
                res
            }
            (_, _) => Ok(res.unwrap_or_else(ModuleResult::failed)),
        }
    }
}

/// Move the downloaded body into `dest` (or `dest/<name>` for a directory) when the status is
/// wanted and not 304, then owner/group/mode; `changed` as Ansible (true whenever written).
fn save(
    ctx: &mut ModuleCtx<'_>,
    a: &UriArgs,
    dest: &str,
    resp: &Response,
    mut res: ModuleResult,
    tmp: &str,
    sum: &str,
) -> Result<ModuleResult, ModuleError> {
    let name = response_filename(resp);
    let reqs = vec![
        ProbeReq {
            follow: true,
            sha1: true,
            ..ProbeReq::new(dest)
        },
        ProbeReq {
            follow: true,
            sha1: true,
            ..ProbeReq::new(format!("{}/{name}", dest.trim_end_matches('/')))
        },
    ];
    let st = match probe(ctx, "uri", &reqs)? {
        Ok(s) => s,
        Err(e) => return Ok(ModuleResult::failed(e)),
    };
    let (path, state) = if st[0].kind == Kind::Directory {
        (reqs[1].path.clone(), st[1].clone())
    } else {
        (dest.to_string(), st[0].clone())
    };
    let write = !res.failed && a.status_code.contains(&resp.status) && resp.status != 304;
    res = res.set("path", path.as_str());
    if !write {
        return add_path_info(ctx, res, &path);
    }
    res.changed = true;
    let mut cmds = Vec::new();
    if state.sha1.as_deref() != Some(sum) || state.kind != Kind::File {
        cmds.push(format!(
            "kp_dl={}/o\n{}",
            quote(tmp),
            write_file_script(&WriteSpec {
                dest: path.clone(),
                existing: (state.kind == Kind::File).then(|| state.clone()),
                source: WriteSource::RemoteVar("kp_dl".into()),
                ..WriteSpec::default()
            })
        ));
    }
    let st2 = if state.kind == Kind::File {
        state.clone()
    } else {
        FileState {
            kind: Kind::File,
            mode: u32::MAX,
            owner: "\0".into(),
            group: "\0".into(),
            uid: u32::MAX,
            gid: u32::MAX,
            ..FileState::default()
        }
    };
    let fixes = a.attrs.fix_commands(&path, &st2, false);
    if !fixes.is_empty() {
        cmds.push(fixes.join(" && "));
    }
    if !cmds.is_empty() {
        let out = run_script(ctx, &cmds.join("\n"))?;
        if !out.ok() {
            let mut f = super::plan::failed_output(&format!("uri: writing {path}"), &out);
            f.data = res.data;
            return Ok(f);
        }
    }
    add_path_info(ctx, res, &path)
}

/// AnsibleModule's `add_path_info` for the result's `path` when it exists: `uid`, `gid`,
/// `owner`, `group`, `mode`, `state` and `size` (one more round trip).
fn add_path_info(
    ctx: &mut ModuleCtx<'_>,
    mut res: ModuleResult,
    path: &str,
) -> Result<ModuleResult, ModuleError> {
    let st = match probe(ctx, "uri", &[ProbeReq::new(path)])? {
        Ok(mut s) => s.remove(0),
        Err(_) => return Ok(res),
    };
    if !st.exists() {
        return Ok(res);
    }
    let state = match st.kind {
        _ if st.is_link => "link",
        Kind::Directory => "directory",
        _ if st.nlink > 1 => "hard",
        _ => "file",
    };
    for (k, v) in [
        ("uid", Value::from(st.uid)),
        ("gid", Value::from(st.gid)),
        ("owner", Value::from(st.owner.as_str())),
        ("group", Value::from(st.group.as_str())),
        ("mode", Value::from(format!("0{:03o}", st.mode))),
        ("state", Value::from(state)),
        ("size", Value::from(st.size)),
    ] {
        res.data.insert(k.into(), v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests;
