//! `yum_repository`: one section of a `.repo` file in `reposdir` (`/etc/yum.repos.d`), written as
//! Ansible writes it: the file is read like Python's `configparser` (comments dropped, keys
//! lowercased), the section is replaced by the given options sorted by name (`description` as
//! `name`, booleans as `0`/`1`, `baseurl`/`gpgkey` lists on continuation lines), sections keep
//! their order and a file left without sections is removed. Changed when the sorted dump differs,
//! as in Ansible; `mode`/`owner`/`group` are applied like any written file.

use super::plan::{finish, Outcome, Plan};
use super::probe::{probe, Kind, ProbeReq};
use super::textfile::{TextFile, TEXT_MAX};
use super::write::{Attrs, FILE_COMMON};
use super::{Args, FileDiff, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

pub struct YumRepository;

/// The repository options written into the section, by Ansible's parameter names: booleans.
const BOOL_KEYS: &[&str] = &[
    "async",
    "countme",
    "enabled",
    "enablegroups",
    "gpgcheck",
    "keepalive",
    "module_hotfixes",
    "protect",
    "repo_gpgcheck",
    "s3_enabled",
    "skip_if_unavailable",
    "ssl_check_cert_permissions",
    "sslverify",
];

/// Lists written one item per line.
const LINE_LIST_KEYS: &[&str] = &["baseurl", "gpgkey"];
/// Lists written space-separated.
const SPACE_LIST_KEYS: &[&str] = &["exclude", "includepkgs"];

/// Text options.
const STR_KEYS: &[&str] = &[
    "bandwidth",
    "cost",
    "deltarpm_metadata_percentage",
    "deltarpm_percentage",
    "failovermethod",
    "gpgcakey",
    "http_caching",
    "include",
    "ip_resolve",
    "keepcache",
    "metadata_expire",
    "metadata_expire_filter",
    "metalink",
    "mirrorlist",
    "mirrorlist_expire",
    "password",
    "priority",
    "proxy",
    "proxy_password",
    "proxy_username",
    "retries",
    "sslcacert",
    "sslclientcert",
    "sslclientkey",
    "throttle",
    "timeout",
    "ui_repoid_vars",
    "username",
];

const SPEC: Spec = Spec::new(
    "yum_repository",
    &[
        Param::str("name").required(),
        Param::str("description"),
        Param::str("state")
            .choices(&["present", "absent"])
            .default("present"),
        Param::path("reposdir").default("/etc/yum.repos.d"),
        Param::str("file"),
        Param::list("baseurl"),
        Param::list("gpgkey"),
        Param::list("exclude").aliases(&["excludepkgs"]),
        Param::list("includepkgs"),
        Param::bool("async"),
        Param::bool("countme"),
        Param::bool("enabled"),
        Param::bool("enablegroups"),
        Param::bool("gpgcheck"),
        Param::bool("keepalive"),
        Param::bool("module_hotfixes"),
        Param::bool("protect"),
        Param::bool("repo_gpgcheck"),
        Param::bool("s3_enabled"),
        Param::bool("skip_if_unavailable"),
        Param::bool("ssl_check_cert_permissions"),
        Param::bool("sslverify").aliases(&["validate_certs"]),
        Param::str("bandwidth"),
        Param::str("cost"),
        Param::str("deltarpm_metadata_percentage"),
        Param::str("deltarpm_percentage"),
        Param::str("failovermethod").choices(&["roundrobin", "priority"]),
        Param::str("gpgcakey"),
        Param::str("http_caching").choices(&["all", "packages", "none"]),
        Param::str("include"),
        Param::str("ip_resolve").choices(&["4", "6", "IPv4", "IPv6", "whatever"]),
        Param::str("keepcache").choices(&["0", "1"]),
        Param::str("metadata_expire"),
        Param::str("metadata_expire_filter").choices(&[
            "never",
            "read-only:past",
            "read-only:present",
            "read-only:future",
        ]),
        Param::str("metalink"),
        Param::str("mirrorlist"),
        Param::str("mirrorlist_expire"),
        Param::str("password"),
        Param::str("priority"),
        Param::str("proxy"),
        Param::str("proxy_password"),
        Param::str("proxy_username"),
        Param::str("retries"),
        Param::str("sslcacert").aliases(&["ca_cert"]),
        Param::str("sslclientcert").aliases(&["client_cert"]),
        Param::str("sslclientkey").aliases(&["client_key"]),
        Param::str("throttle"),
        Param::str("timeout"),
        Param::str("ui_repoid_vars"),
        Param::str("username"),
    ],
)
.shared(&[FILE_COMMON]);

/// A `.repo` file as configparser holds it: sections in file order, options in their order.
pub type Sections = Vec<(String, Vec<(String, String)>)>;

/// Parse like `configparser.RawConfigParser` (keys lowercased, values stripped, indented lines
/// continue a value, `#`/`;` lines are comments).
pub fn parse(text: &str) -> Result<Sections, String> {
    let mut out: Sections = Vec::new();
    let mut last_key: Option<usize> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            if line.is_empty() {
                last_key = None;
            }
            continue;
        }
        let indented = raw.starts_with([' ', '\t']);
        if let (true, Some(k), Some((_, opts))) = (indented, last_key, out.last_mut()) {
            let v = &mut opts[k].1;
            v.push('\n');
            v.push_str(line);
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.retain(|(s, _)| s != name);
            out.push((name.to_string(), Vec::new()));
            last_key = None;
            continue;
        }
        let Some((_, opts)) = out.last_mut() else {
            return Err(format!("File contains no section headers (line {})", n + 1));
        };
        let at = line
            .find(['=', ':'])
            .ok_or_else(|| format!("line {} is not 'key = value': {line}", n + 1))?;
        let key = line[..at].trim().to_lowercase();
        let value = line[at + 1..].trim().to_string();
        opts.retain(|(k, _)| *k != key);
        opts.push((key, value));
        last_key = Some(opts.len() - 1);
    }
    Ok(out)
}

/// Ansible's `dump`: sections and keys sorted, `key = value` (the change test).
pub fn dump(s: &Sections) -> String {
    let mut sorted: Vec<&(String, Vec<(String, String)>)> = s.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (name, opts) in sorted {
        out.push_str(&format!("[{name}]\n"));
        let mut o: Vec<&(String, String)> = opts.iter().collect();
        o.sort();
        for (k, v) in o {
            out.push_str(&format!("{k} = {v}\n"));
        }
        out.push('\n');
    }
    out
}

/// configparser's `write`: file order, `key = value`, continuation lines indented with a tab.
pub fn render(s: &Sections) -> String {
    let mut out = String::new();
    for (name, opts) in s {
        out.push_str(&format!("[{name}]\n"));
        for (k, v) in opts {
            out.push_str(&format!("{k} = {}\n", v.replace('\n', "\n\t")));
        }
        out.push('\n');
    }
    out
}

/// The section's options from the arguments, sorted by key, as Ansible sets them.
pub fn section_options(args: &Args<'_>) -> Result<Vec<(String, String)>, ModuleError> {
    let mut opts = Vec::new();
    if let Some(d) = args.str("description")? {
        opts.push(("name".to_string(), d));
    }
    for k in BOOL_KEYS {
        if let Some(b) = args.opt_bool(k)? {
            opts.push((k.to_string(), if b { "1" } else { "0" }.to_string()));
        }
    }
    for (keys, sep) in [(LINE_LIST_KEYS, "\n"), (SPACE_LIST_KEYS, " ")] {
        for k in keys {
            if let Some(l) = args.list(k)? {
                opts.push((k.to_string(), l.join(sep)));
            }
        }
    }
    for k in STR_KEYS {
        if let Some(v) = args.str(k)? {
            opts.push((k.to_string(), v));
        }
    }
    opts.sort();
    Ok(opts)
}

impl Module for YumRepository {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let repo = args.req_str("name")?;
        let state = args.choice("state")?.unwrap_or_default();
        let present = state == "present";
        if present {
            if args.str("description")?.is_none() {
                return Err(ModuleError::Args(
                    "state is present but all of the following are missing: description".into(),
                ));
            }
            if ["baseurl", "mirrorlist", "metalink"]
                .iter()
                .all(|k| !args.is_set(k).unwrap_or(false))
            {
                return Err(ModuleError::Args(
                    "state is present but any of the following are missing: baseurl, mirrorlist, metalink"
                        .into(),
                ));
            }
        }
        let reposdir = args.str("reposdir")?.unwrap_or_default();
        let file = args.str("file")?.unwrap_or_else(|| repo.clone());
        let dest = format!("{}/{file}.repo", reposdir.trim_end_matches('/'));
        let wanted = section_options(args)?;
        let tf = TextFile {
            module: "yum_repository",
            path: dest.clone(),
            create: true,
            attrs: Attrs::from_args_without_preserve(args)?,
            ..TextFile::default()
        };
        let reqs = [
            ProbeReq {
                follow: true,
                content_max: Some(TEXT_MAX),
                ..ProbeReq::new(dest.as_str())
            },
            ProbeReq {
                follow: true,
                ..ProbeReq::new(reposdir.as_str())
            },
        ];
        let states = match probe(ctx, "yum_repository", &reqs)? {
            Ok(s) => s,
            Err(e) => return Ok(ModuleResult::failed(e)),
        };
        if states[1].kind != Kind::Directory {
            return Ok(ModuleResult::failed(format!(
                "Repo directory '{reposdir}' does not exist."
            )));
        }
        let old = match tf.current(&states[0]) {
            Ok(c) => c,
            Err(e) => return Ok(ModuleResult::failed(e)),
        };
        let text = old
            .as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let before = match parse(&text) {
            Ok(s) => s,
            Err(e) => return Ok(ModuleResult::failed(format!("{dest}: {e}"))),
        };
        let mut after = before.clone();
        after.retain(|(s, _)| *s != repo);
        if present {
            after.push((repo.clone(), wanted));
        }
        let outcome = plan(&tf, &states[0], old.as_deref(), &before, &after);
        let result = finish(ctx, outcome.set("repo", repo.as_str()).set("state", state))?;
        Ok(result)
    }
}

/// Pure: no change when the sorted dumps agree (attributes only), else the rendered file, or its
/// removal when no section is left.
pub fn plan(
    tf: &TextFile,
    st: &super::probe::FileState,
    old: Option<&[u8]>,
    before: &Sections,
    after: &Sections,
) -> Outcome {
    let (b, a) = (dump(before), dump(after));
    if b == a {
        if !st.exists() {
            return Outcome::new(Plan::NoChange);
        }
        return Outcome::new(Plan::commands(tf.attrs.fix_commands(&tf.path, st, false)));
    }
    let diff = FileDiff {
        path: tf.path.clone(),
        before: b,
        after: a,
    };
    if after.is_empty() {
        return Outcome::new(Plan::Change {
            script: format!("rm -f {}", quote(&tf.path)),
            stdin: None,
            diff: Some(diff),
        });
    }
    let mut o = tf.outcome(st, old, render(after).into_bytes(), String::new());
    if let Plan::Change { diff: d, .. } = &mut o.plan {
        *d = Some(diff);
    }
    o.result.msg = None;
    o.result.data.shift_remove("backup");
    o
}

#[cfg(test)]
#[path = "yum_repository_tests.rs"]
mod tests;
