//! `deb822_repository`: one `/etc/apt/sources.list.d/<slug>.sources` stanza written as Ansible
//! writes it with python-debian's `Deb822`: the given fields sorted by parameter name, named as the
//! module names them (`X-Repolib-Name`, `URIs`, `Signed-By`, ...), booleans `yes`/`no`, lists
//! space-separated, multi-line values (an inline key block) on indented continuation lines with
//! `.` for empty lines. `signed_by` is a path (used when it is a file on the target) or a key
//! block (inlined, as Ansible does); URLs are refused (knockplay does not download here: fetch
//! the key with `get_url` and give its path). Changed when the bytes or the mode differ;
//! `state=absent` removes the file and `/etc/apt/keyrings/<slug>.{asc,gpg}`.

use regex::Regex;

use super::plan::{finish_command, Outcome, Plan, Report};
use super::probe::{probe, FileState, ProbeReq};
use super::textfile::{TextFile, TEXT_MAX};
use super::write::Attrs;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;

pub struct Deb822Repository;

const KEYRINGS_DIR: &str = "/etc/apt/keyrings";
const SOURCES_DIR: &str = "/etc/apt/sources.list.d";

const SPEC: Spec = Spec::new(
    "deb822_repository",
    &[
        Param::str("name").required(),
        Param::bool("allow_downgrade_to_insecure"),
        Param::bool("allow_insecure"),
        Param::bool("allow_weak"),
        Param::list("architectures"),
        Param::bool("by_hash"),
        Param::bool("check_date"),
        Param::bool("check_valid_until"),
        Param::list("components"),
        Param::int("date_max_future"),
        Param::bool("enabled"),
        Param::str("inrelease_path"),
        Param::list("languages"),
        Param::bool("pdiffs"),
        Param::str("signed_by"),
        Param::list("suites"),
        Param::list("targets"),
        Param::bool("trusted"),
        // Each item is deb or deb-src (checked in `run`: choices are for text parameters).
        Param::list("types").default("deb"),
        Param::list("uris"),
        Param::mode("mode").default("0644"),
        Param::str("state")
            .choices(&["present", "absent"])
            .default("present"),
    ],
);

/// The kind of each deb822 field, in parameter-name order (Ansible sorts the parameters).
#[derive(Clone, Copy)]
enum Field {
    Bool,
    List,
    Int,
    Str,
}

const FIELDS: &[(&str, Field)] = &[
    ("allow_downgrade_to_insecure", Field::Bool),
    ("allow_insecure", Field::Bool),
    ("allow_weak", Field::Bool),
    ("architectures", Field::List),
    ("by_hash", Field::Bool),
    ("check_date", Field::Bool),
    ("check_valid_until", Field::Bool),
    ("components", Field::List),
    ("date_max_future", Field::Int),
    ("enabled", Field::Bool),
    ("inrelease_path", Field::Str),
    ("languages", Field::List),
    ("name", Field::Str),
    ("pdiffs", Field::Bool),
    ("signed_by", Field::Str),
    ("suites", Field::List),
    ("targets", Field::List),
    ("trusted", Field::Bool),
    ("types", Field::List),
    ("uris", Field::List),
];

/// The file name stem: lowercased, runs of `_`/whitespace as `-`, anything but `[a-z0-9-]` dropped.
pub fn slug(name: &str) -> String {
    let sep = Regex::new(r"[_\s]+").expect("static regex");
    let bad = Regex::new(r"[^a-z0-9-]+").expect("static regex");
    let lower = name.to_lowercase();
    bad.replace_all(&sep.replace_all(&lower, "-"), "")
        .into_owned()
}

/// The deb822 field name of a parameter.
pub fn field_name(key: &str) -> String {
    match key {
        "name" => "X-Repolib-Name".into(),
        "uris" => "URIs".into(),
        _ => key
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f
                        .to_uppercase()
                        .chain(c.flat_map(char::to_lowercase))
                        .collect(),
                    None => String::new(),
                }
            })
            .collect::<Vec<String>>()
            .join("-"),
    }
}

/// Ansible's `format_multiline`: a new line, then every line stripped (`.` when empty) and
/// indented by four spaces.
pub fn multiline(v: &str) -> String {
    let lines: Vec<String> = v
        .trim()
        .lines()
        .map(|l| {
            let l = l.trim();
            format!("    {}", if l.is_empty() { "." } else { l })
        })
        .collect();
    format!("\n{}", lines.join("\n"))
}

/// Whether Python's `urlparse` finds a scheme (`https:`, `file:`...) in `v`.
pub fn has_scheme(v: &str) -> bool {
    let v: String = v
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    match v.find(':') {
        Some(i) if i > 0 => {
            let s = &v[..i];
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        _ => false,
    }
}

/// `Deb822.dump()` of the fields (name, value) in order.
pub fn dump(fields: &[(String, String)]) -> String {
    let mut out = String::new();
    for (k, v) in fields {
        if v.is_empty() || v.starts_with('\n') {
            out.push_str(&format!("{k}:{v}\n"));
        } else {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    out
}

/// The stanza's fields from the arguments, in Ansible's order (`signed_by` as given: a path or
/// a key block).
pub fn fields(args: &Args<'_>) -> Result<Vec<(String, String)>, ModuleError> {
    let mut out = Vec::new();
    for (key, kind) in FIELDS {
        let value = match kind {
            Field::Bool => args
                .opt_bool(key)?
                .map(|b| if b { "yes" } else { "no" }.to_string()),
            Field::List => args.list(key)?.map(|l| l.join(" ")),
            Field::Int => args.int(key)?.map(|i| i.to_string()),
            Field::Str => args.str(key)?,
        };
        let Some(mut value) = value else { continue };
        if value.contains('\n') {
            value = multiline(&value);
        }
        out.push((field_name(key), value));
    }
    Ok(out)
}

impl Module for Deb822Repository {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let name = args.req_str("name")?;
        let slug = slug(&name);
        let dest = format!("{SOURCES_DIR}/{slug}.sources");
        let present = args.choice("state")?.unwrap_or_default() == "present";
        let types = args.list("types")?.unwrap_or_default();
        let bad: Vec<&str> = types
            .iter()
            .map(String::as_str)
            .filter(|t| !["deb", "deb-src"].contains(t))
            .collect();
        if !bad.is_empty() {
            return Err(ModuleError::Args(format!(
                "value of types must be one or more of: deb, deb-src. Got no match for: {}",
                bad.join(", ")
            )));
        }
        let signed_by = args.str("signed_by")?;
        if present && signed_by.as_deref().is_some_and(has_scheme) {
            return Err(ModuleError::Args(
                "signed_by: knockplay does not download keys here; fetch the key with get_url \
                 and give its path (or the key block itself)"
                    .into(),
            ));
        }
        let keyfiles = ["asc", "gpg"].map(|e| format!("{KEYRINGS_DIR}/{slug}.{e}"));
        let mut reqs = vec![ProbeReq {
            follow: true,
            content_max: Some(TEXT_MAX),
            ..ProbeReq::new(dest.as_str())
        }];
        if !present {
            reqs.extend(keyfiles.iter().map(|k| ProbeReq {
                follow: true,
                ..ProbeReq::new(k.as_str())
            }));
        } else if let Some(s) = signed_by.as_deref().filter(|s| !s.contains('\n')) {
            reqs.push(ProbeReq {
                follow: true,
                ..ProbeReq::new(s)
            });
        }
        let states = match probe(ctx, "deb822_repository", &reqs)? {
            Ok(s) => s,
            Err(e) => return Ok(ModuleResult::failed(e)),
        };
        if !present {
            let outcome = plan_absent(&states, &dest, &keyfiles);
            return finish_path_info(ctx, outcome, &states[0], &dest);
        }
        let key_filename = match (&signed_by, states.get(1)) {
            (Some(s), Some(st)) if st.kind == super::probe::Kind::File => Some(s.clone()),
            _ => None,
        };
        let text = dump(&fields(args)?);
        let tf = TextFile {
            module: "deb822_repository",
            path: dest.clone(),
            create: true,
            attrs: Attrs {
                mode: args.mode("mode")?,
                ..Attrs::default()
            },
            ..TextFile::default()
        };
        let old = match tf.current(&states[0]) {
            Ok(c) => c,
            Err(e) => return Ok(ModuleResult::failed(e)),
        };
        let mut o = tf.outcome(
            &states[0],
            old.as_deref(),
            text.clone().into_bytes(),
            String::new(),
        );
        o.result.msg = None;
        o.result.data.shift_remove("backup");
        let o = o.set("repo", text).set("dest", dest.as_str()).set(
            "key_filename",
            key_filename.map_or(Value::Null, Value::from),
        );
        finish_path_info(ctx, o, &states[0], &dest)
    }
}

/// `stat` fields printed after the apply step, for the path information.
const STAT_FMT: &str = "kp_stat=%u|%g|%U|%G|%a|%s|%h|%F";

/// Apply the outcome and add what Ansible's `add_path_info` adds for `dest` when it exists at the
/// end (`uid`, `gid`, `owner`, `group`, `mode`, `state`, `size`): from the probe when nothing ran,
/// else from a `stat` at the end of the apply script.
fn finish_path_info(
    ctx: &mut ModuleCtx<'_>,
    mut o: Outcome,
    st: &FileState,
    dest: &str,
) -> Result<ModuleResult, ModuleError> {
    let ran = o.plan.is_change() && !ctx.check_mode;
    if let Plan::Change { script, .. } = &mut o.plan {
        script.push_str(&format!(
            "\nstat -c '{STAT_FMT}' -- {} 2>/dev/null || :",
            quote(dest)
        ));
    }
    let mut r = finish_command(ctx, o, &Report::command("deb822_repository"))?;
    let stdout = r.stdout.take().unwrap_or_default();
    (r.rc, r.stderr) = (None, None);
    if r.failed {
        return Ok(r);
    }
    let info = if ran {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("kp_stat="))
            .and_then(parse_stat)
    } else if st.exists() {
        let kind = if st.is_link {
            "symbolic link"
        } else {
            "regular file"
        };
        Some(StatInfo {
            uid: st.uid,
            gid: st.gid,
            owner: st.owner.clone(),
            group: st.group.clone(),
            mode: st.mode,
            size: st.size,
            nlink: st.nlink,
            ftype: kind.into(),
        })
    } else {
        None
    };
    if let Some(i) = info {
        r.data.extend(i.keys());
    }
    Ok(r)
}

/// What `add_path_info` reports about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatInfo {
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub mode: u32,
    pub size: u64,
    pub nlink: u64,
    pub ftype: String,
}

impl StatInfo {
    /// The result keys, `state` as Ansible names the kind.
    pub fn keys(&self) -> crate::value::Vars {
        let state = match self.ftype.as_str() {
            "symbolic link" => "link",
            "directory" => "directory",
            _ if self.nlink > 1 => "hard",
            _ => "file",
        };
        let mut v = crate::value::Vars::new();
        v.insert("uid".into(), Value::from(self.uid as i64));
        v.insert("gid".into(), Value::from(self.gid as i64));
        v.insert("owner".into(), Value::from(self.owner.as_str()));
        v.insert("group".into(), Value::from(self.group.as_str()));
        v.insert("mode".into(), Value::from(format!("0{:03o}", self.mode)));
        v.insert("state".into(), Value::from(state));
        v.insert("size".into(), Value::from(self.size as i64));
        v
    }
}

/// Parse a [`STAT_FMT`] line.
pub fn parse_stat(line: &str) -> Option<StatInfo> {
    let f: Vec<&str> = line.split('|').collect();
    let [uid, gid, owner, group, mode, size, nlink, ftype] = f[..] else {
        return None;
    };
    Some(StatInfo {
        uid: uid.parse().ok()?,
        gid: gid.parse().ok()?,
        owner: owner.into(),
        group: group.into(),
        mode: u32::from_str_radix(mode, 8).ok()?,
        size: size.parse().ok()?,
        nlink: nlink.parse().ok()?,
        ftype: ftype.into(),
    })
}

/// Pure: remove the sources file and the keyring files that exist (`repo` null, `key_filename`
/// the `.gpg` name, as Ansible reports).
pub fn plan_absent(states: &[FileState], dest: &str, keyfiles: &[String; 2]) -> Outcome {
    let paths = std::iter::once(dest).chain(keyfiles.iter().map(String::as_str));
    let gone: Vec<String> = paths
        .zip(states)
        .filter(|(_, s)| s.exists())
        .map(|(p, _)| format!("rm -f {}", quote(p)))
        .collect();
    Outcome::new(Plan::commands(gone))
        .set("repo", Value::Null)
        .set("dest", dest)
        .set("key_filename", keyfiles[1].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::probe::Kind;
    use crate::modules::testing::{args, ctx, parse_with, LocalRemote};
    use serde_json::json;

    #[test]
    fn names_and_slugs_follow_ansible() {
        for (name, want) in [
            ("Debian Bookworm", "debian-bookworm"),
            ("my_repo  x", "my-repo-x"),
            ("Ünïcode.repo!", "ncoderepo"),
            ("kp-local", "kp-local"),
        ] {
            assert_eq!(slug(name), want, "{name}");
        }
        for (k, want) in [
            ("name", "X-Repolib-Name"),
            ("uris", "URIs"),
            ("signed_by", "Signed-By"),
            ("allow_downgrade_to_insecure", "Allow-Downgrade-To-Insecure"),
            ("inrelease_path", "Inrelease-Path"),
            ("by_hash", "By-Hash"),
            ("types", "Types"),
        ] {
            assert_eq!(field_name(k), want);
        }
    }

    #[test]
    fn schemes_like_urlparse() {
        for (v, want) in [
            ("https://example.org/key.asc", true),
            ("file:///etc/k.asc", true),
            ("/etc/apt/keyrings/k.asc", false),
            ("-----BEGIN PGP PUBLIC KEY BLOCK-----\nVersion: x\n", false),
            ("  http://x", true),
            ("1http://x", false),
            ("keys/k.asc", false),
        ] {
            assert_eq!(has_scheme(v), want, "{v}");
        }
    }

    #[test]
    fn renders_the_stanza_as_python_debian_dumps_it() {
        let key = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n";
        let a = json!({"name": "KP local", "uris": "file:/srv/r", "suites": ["./"], "trusted": true,
            "signed_by": key, "enabled": false, "date_max_future": 10, "components": [],
            "architectures": ["amd64", "arm64"]});
        let f = parse_with(&SPEC, a, fields).unwrap();
        assert_eq!(
            dump(&f),
            "Architectures: amd64 arm64\nComponents:\nDate-Max-Future: 10\nEnabled: no\n\
             X-Repolib-Name: KP local\nSigned-By:\n    -----BEGIN PGP PUBLIC KEY BLOCK-----\n    .\n    \
             mDMEZ\n    =abcd\n    -----END PGP PUBLIC KEY BLOCK-----\nSuites: ./\nTrusted: yes\n\
             Types: deb\nURIs: file:/srv/r\n"
        );
    }

    #[test]
    fn path_info_like_add_path_info() {
        let i = parse_stat("0|0|root|root|640|210|1|regular file").unwrap();
        let k = i.keys();
        assert_eq!(k["mode"], "0640");
        assert_eq!(k["state"], "file");
        assert_eq!(k["owner"], "root");
        assert_eq!(k["size"], Value::from(210i64));
        let hard = parse_stat("0|0|root|root|644|1|2|regular file").unwrap();
        assert_eq!(hard.keys()["state"], "hard");
        assert!(parse_stat("0|0|root").is_none());
    }

    #[test]
    fn absent_removes_what_exists() {
        let st = |k| FileState {
            kind: k,
            ..FileState::default()
        };
        let keys = ["/k/x.asc".to_string(), "/k/x.gpg".to_string()];
        let o = plan_absent(
            &[st(Kind::File), st(Kind::Absent), st(Kind::File)],
            "/s/x.sources",
            &keys,
        );
        assert_eq!(
            o.plan,
            Plan::commands(vec!["rm -f /s/x.sources".into(), "rm -f /k/x.gpg".into()])
        );
        assert_eq!(o.result.data["key_filename"], "/k/x.gpg");
        assert_eq!(o.result.data["repo"], Value::Null);
        let o = plan_absent(
            &[st(Kind::Absent), st(Kind::Absent), st(Kind::Absent)],
            "/s/x.sources",
            &keys,
        );
        assert_eq!(o.plan, Plan::NoChange);
    }

    #[test]
    fn types_are_deb_or_deb_src() {
        let mut r = LocalRemote::default();
        let a = args(json!({"name": "x", "types": ["deb", "rpm"]}));
        let e = Deb822Repository
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap_err();
        assert!(e.to_string().contains("Got no match for: rpm"), "{e}");
    }

    #[test]
    fn urls_are_refused_before_touching_the_target() {
        let mut r = LocalRemote::default();
        let a = args(json!({"name": "x", "signed_by": "https://example.org/k.asc"}));
        let e = Deb822Repository
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap_err();
        assert!(e.to_string().contains("get_url"), "{e}");
        assert!(r.calls.is_empty());
    }

    #[test]
    fn signed_by_file_is_kept_as_a_path() {
        // The probe runs locally: the key path exists, the sources file does not (check mode).
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k.gpg");
        std::fs::write(&key, b"x").unwrap();
        let mut r = LocalRemote::default();
        let a = args(
            json!({"name": "kp-zz-test-nonexistent", "uris": ["file:/srv/r"],
            "suites": "./", "signed_by": key.to_str().unwrap()}),
        );
        let res = Deb822Repository
            .execute(&a, &mut ctx(&mut r, true, false, vec![]))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(res.data["key_filename"], key.to_str().unwrap());
        let repo = res.data["repo"].as_str().unwrap().to_string();
        assert!(
            repo.contains(&format!("Signed-By: {}\n", key.display())),
            "{repo}"
        );
        assert_eq!(r.calls.len(), 1, "one probe, nothing applied in check mode");
    }
}
