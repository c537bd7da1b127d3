//! `authorized_key` (ansible.posix): SSH public keys added to or removed from a user's
//! `authorized_keys` file. The edit is the collection's, rule for rule ([`edit`], pure): the file
//! parsed into keys (options, type, blob, comment) and other lines, a key matched by its blob, a
//! changed key moved to the end, `exclusive` dropping every other line, and on any change the whole
//! file rewritten with keys normalised. On a write, as the collection does: the key directory
//! (`~/.ssh`, or the parent of `path`) created 0700 and owned by the user with `manage_dir`, the
//! file 0600 owned by the user and the user's primary group. Two round trips (the user's passwd
//! entry, then the file probe), one write. A key file planted as a symlink to a file its owner
//! could not write is refused ([`FileState::check_follow`]), with or without `follow`. Keys given
//! as a URL (`http...`, `file:...`) are refused.

use indexmap::IndexMap;
use regex::Regex;

use super::plan::{finish, Outcome, Plan};
use super::probe::{probe, FileState, Kind, ProbeReq};
use super::write::{dirname, write_file_script, Attrs, WriteSpec};
use super::{Args, FileDiff, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::modules::mode::Mode;
use crate::shell::quote;
use crate::value::Value;

pub struct AuthorizedKey;

const SPEC: Spec = Spec::new(
    "authorized_key",
    &[
        Param::str("user").required(),
        Param::str("key").required(),
        Param::path("path"),
        Param::bool("manage_dir").default("true"),
        Param::str("state")
            .choices(&["absent", "present"])
            .default("present"),
        Param::str("key_options"),
        Param::bool("exclusive").default("false"),
        Param::str("comment"),
        Param::bool("validate_certs").default("true"),
        Param::bool("follow").default("false"),
    ],
);

/// The key types the collection recognises.
const KEY_TYPES: &[&str] = &[
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "ssh-dss",
    "ssh-rsa",
    "ssh-xmss@openssh.com",
    "ssh-xmss-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-512",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "ssh-dss-cert-v01@openssh.com",
];

/// Key options in order (`name` or `name=value`; a name may repeat).
pub type Options = Vec<(String, Option<String>)>;

/// One line of the file: a key, or any other line kept as it is (`Raw`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Key {
        blob: String,
        kind: String,
        options: Options,
        comment: String,
        rank: usize,
    },
    Raw {
        line: String,
        rank: usize,
    },
}

impl Entry {
    fn rank(&self) -> usize {
        match self {
            Entry::Key { rank, .. } | Entry::Raw { rank, .. } => *rank,
        }
    }
    fn with_rank(mut self, r: usize) -> Self {
        match &mut self {
            Entry::Key { rank, .. } | Entry::Raw { rank, .. } => *rank = r,
        }
        self
    }
    /// The collection's `parsed[:4]` comparison: options as a map of names to their values.
    fn same_key(&self, other: &Entry) -> bool {
        fn grouped(o: &Options) -> Vec<(&str, Vec<&Option<String>>)> {
            let mut m: IndexMap<&str, Vec<&Option<String>>> = IndexMap::new();
            for (k, v) in o {
                m.entry(k.as_str()).or_default().push(v);
            }
            let mut v: Vec<_> = m.into_iter().collect();
            v.sort_by(|a, b| a.0.cmp(b.0));
            v
        }
        match (self, other) {
            (
                Entry::Key {
                    blob: b1,
                    kind: k1,
                    options: o1,
                    comment: c1,
                    ..
                },
                Entry::Key {
                    blob: b2,
                    kind: k2,
                    options: o2,
                    comment: c2,
                    ..
                },
            ) => b1 == b2 && k1 == k2 && c1 == c2 && grouped(o1) == grouped(o2),
            _ => false,
        }
    }
}

/// The collection's `parseoptions`: the pieces a quote-aware comma split leaves, separators other
/// than a lone `,` included.
pub fn parse_options(options: &str) -> Options {
    let re = Regex::new(r#"(?:[^,"']|"[^"]*"|'[^']*')+"#).expect("valid pattern");
    let mut parts = Vec::new();
    let mut last_end = None;
    for m in re.find_iter(options) {
        if let Some(e) = last_end {
            parts.push(&options[e..m.start()]);
        }
        parts.push(m.as_str());
        last_end = Some(m.end());
    }
    parts
        .into_iter()
        .filter(|p| *p != ",")
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (p.to_string(), None),
        })
        .collect()
}

/// The collection's `parsekey`: None when no key type is found (or, where the collection would
/// crash, no key follows the type).
pub fn parse_key(raw: &str, rank: usize) -> Option<Entry> {
    let raw = raw.replace("\\#", "#");
    let parts: Vec<&str> = raw
        .split([' ', '\t', '\r', '\n'])
        .filter(|p| !p.is_empty())
        .collect();
    if parts.first() == Some(&"#") {
        return Some(Entry::Raw { line: raw, rank });
    }
    let i = parts.iter().position(|p| KEY_TYPES.contains(p))?;
    let blob = parts.get(i + 1)?;
    Some(Entry::Key {
        blob: blob.to_string(),
        kind: parts[i].to_string(),
        options: if i > 0 {
            parse_options(&parts[..i].join(" "))
        } else {
            Vec::new()
        },
        comment: parts.get(i + 2..).unwrap_or(&[]).join(" "),
        rank,
    })
}

/// The dictionary key of an entry: the blob, or the raw line.
fn dict_key(e: &Entry) -> String {
    match e {
        Entry::Key { blob, .. } => blob.clone(),
        Entry::Raw { line, .. } => line.clone(),
    }
}

/// The collection's `parsekeys`: later duplicates replace earlier ones in place.
pub fn parse_file(content: &str) -> IndexMap<String, Entry> {
    let mut keys = IndexMap::new();
    for (rank, line) in content.split_inclusive('\n').enumerate() {
        let e = parse_key(line, rank).unwrap_or_else(|| Entry::Raw {
            line: line.to_string(),
            rank,
        });
        keys.insert(dict_key(&e), e);
    }
    keys
}

/// The collection's `serialize`: entries by rank, keys as `options type blob comment`.
pub fn serialize(keys: &IndexMap<String, Entry>) -> String {
    let mut entries: Vec<&Entry> = keys.values().collect();
    entries.sort_by_key(|e| e.rank());
    let mut out = String::new();
    for e in entries {
        match e {
            Entry::Raw { line, .. } => out.push_str(line),
            Entry::Key {
                blob,
                kind,
                options,
                comment,
                ..
            } => {
                let opts: Vec<String> = options
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    })
                    .collect();
                let opts = if opts.is_empty() {
                    String::new()
                } else {
                    format!("{} ", opts.join(","))
                };
                out.push_str(&format!("{opts}{kind} {blob} {comment}\n"));
            }
        }
    }
    out
}

/// What the task asks for (everything [`edit`] reads).
#[derive(Debug, Clone, Default)]
pub struct Want {
    pub key: String,
    pub present: bool,
    pub key_options: Option<String>,
    pub comment: Option<String>,
    pub exclusive: bool,
}

/// The collection's `enforce_state` on the file's content: the new content when it must be
/// written, `Err` with its message for an invalid key. Pure.
pub fn edit(existing: &str, want: &Want) -> Result<Option<String>, String> {
    let mut keys = parse_file(existing);
    let max_rank = keys.len();
    let mut to_exist: Vec<String> = Vec::new();
    let mut write = false;
    let new_keys = want
        .key
        .split(['\n', '\r'])
        .filter(|s| !s.is_empty() && !s.starts_with('#'));
    for (rank, new_key) in new_keys.enumerate() {
        let Some(Entry::Key {
            blob,
            kind,
            mut options,
            mut comment,
            ..
        }) = parse_key(new_key, rank)
        else {
            return Err(format!("invalid key specified: {new_key}"));
        };
        if let Some(o) = &want.key_options {
            options = parse_options(o);
        }
        if let Some(c) = &want.comment {
            comment = c.clone();
        }
        let parsed = Entry::Key {
            blob: blob.clone(),
            kind,
            options,
            comment,
            rank,
        };
        let mut matched = false;
        if let Some(old) = keys.get(&blob) {
            if want.present && !parsed.same_key(old) {
                keys.shift_remove(&blob);
                write = true;
            } else {
                matched = true;
            }
        }
        if want.present {
            to_exist.push(blob.clone());
            if !matched {
                keys.insert(blob, parsed.with_rank(max_rank + rank));
                write = true;
            }
        } else if matched {
            keys.shift_remove(&blob);
            write = true;
        }
    }
    if want.present && want.exclusive {
        let before = keys.len();
        keys.retain(|k, _| to_exist.contains(k));
        write |= keys.len() != before;
    }
    Ok(write.then(|| serialize(&keys)))
}

/// The user's passwd entry: uid, gid, home. Pure.
pub fn parse_passwd(line: &str) -> Option<(u32, u32, String)> {
    let f: Vec<&str> = line.trim_end_matches('\n').split(':').collect();
    match f[..] {
        [_, _, uid, gid, _, ref home, ..] => {
            Some((uid.parse().ok()?, gid.parse().ok()?, home.to_string()))
        }
        _ => None,
    }
}

impl Module for AuthorizedKey {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let user = args.req_str("user")?;
        let key = args.req_str("key")?;
        let path = args.str("path")?;
        let follow = args.bool("follow")?;
        let manage_dir = args.bool("manage_dir")?;
        let want = Want {
            key: key.clone(),
            present: args.choice("state")?.as_deref() != Some("absent"),
            key_options: args.str("key_options")?,
            comment: args.str("comment")?,
            exclusive: args.bool("exclusive")?,
        };
        let mut base = base_result(args, &want, path.as_deref(), manage_dir, follow)?;
        if key.starts_with("http") || key.starts_with("file") {
            return Ok(failed(base, format!("authorized_key: a key given as a URL ({}) is not supported by knockplay: give the key itself", key.lines().next().unwrap_or(""))));
        }
        let pw = ctx.run(&format!("getent passwd -- {}", quote(&user)))?;
        let entry = pw.ok().then(|| parse_passwd(&pw.stdout_str())).flatten();
        let (uid, gid, home) = match (entry, &path) {
            (Some(e), _) => e,
            (None, Some(_)) if ctx.check_mode => (0, 0, String::new()),
            (None, None) if ctx.check_mode => return Ok(failed(
                base,
                "Either user must exist or you must provide full path to key file in check mode"
                    .into(),
            )),
            (None, _) => {
                return Ok(failed(
                    base,
                    format!(
                        "Failed to lookup user {user}: \"getpwnam(): name not found: '{user}'\""
                    ),
                ))
            }
        };
        let keys_path = path
            .clone()
            .unwrap_or_else(|| format!("{home}/.ssh/authorized_keys"));
        let sshdir = dirname(&keys_path);
        let reqs = [
            ProbeReq {
                follow: true,
                content_max: Some(super::textfile::TEXT_MAX),
                ..ProbeReq::new(keys_path.as_str())
            },
            ProbeReq {
                follow: true,
                ..ProbeReq::new(sshdir.as_str())
            },
        ];
        let (file, dir) = match probe(ctx, "authorized_key", &reqs)? {
            Ok(mut s) => (s.remove(0), s.remove(0)),
            Err(e) => return Ok(failed(base, e)),
        };
        if let Err(e) = file
            .check_follow(&keys_path)
            .and_then(|_| dir.check_follow(&sshdir))
        {
            return Ok(failed(base, e));
        }
        let keyfile = match (&file.real_path, follow) {
            (Some(r), true) => r.clone(),
            _ => keys_path.clone(),
        };
        base.data
            .insert("keyfile".into(), Value::from(keyfile.as_str()));
        let existing = match (&file.kind, &file.content) {
            (Kind::Absent, _) => String::new(),
            (Kind::File, Some(c)) => String::from_utf8_lossy(c).into_owned(),
            (Kind::File, None) if file.unreadable => {
                return Ok(failed(
                    base,
                    format!(
                        "Permission denied on file or path for authorized keys file: {keyfile}"
                    ),
                ))
            }
            _ => {
                return Ok(failed(
                    base,
                    format!("{keyfile} is not a regular file knockplay can edit"),
                ))
            }
        };
        let new = match edit(&existing, &want) {
            Ok(Some(n)) => n,
            Ok(None) => return path_info(ctx, base),
            Err(msg) => return Ok(failed(base, msg)),
        };
        let script = write_plan(
            &keyfile,
            manage_dir.then_some(&dir),
            &sshdir,
            &file,
            uid,
            gid,
        );
        let plan = Plan::Change {
            script,
            stdin: Some(new.clone().into_bytes()),
            diff: Some(FileDiff {
                path: keyfile.clone(),
                before: existing,
                after: new,
            }),
        };
        let mut outcome = Outcome::new(plan);
        outcome.result = base;
        let r = finish(ctx, outcome)?;
        path_info(ctx, r)
    }
}

/// AnsibleModule's `add_path_info`: a result with a `path` also reports that path's `state`,
/// and when it exists its `mode`, owner and size (one more round trip).
fn path_info(ctx: &mut ModuleCtx<'_>, mut r: ModuleResult) -> Result<ModuleResult, ModuleError> {
    let Some(path) = r
        .data
        .get("path")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Ok(r);
    };
    let st = match probe(ctx, "authorized_key", &[ProbeReq::new(path.as_str())])? {
        Ok(mut s) => s.remove(0),
        Err(_) => return Ok(r),
    };
    let state = match st.kind {
        Kind::Absent => "absent",
        Kind::Link => "link",
        Kind::Directory => "directory",
        _ if st.nlink > 1 => "hard",
        _ => "file",
    };
    r.data.insert("state".into(), Value::from(state));
    if st.exists() {
        r.data.insert("uid".into(), Value::from(st.uid));
        r.data.insert("gid".into(), Value::from(st.gid));
        r.data
            .insert("owner".into(), Value::from(st.owner.as_str()));
        r.data
            .insert("group".into(), Value::from(st.group.as_str()));
        r.data
            .insert("mode".into(), Value::from(format!("0{:03o}", st.mode)));
        r.data.insert("size".into(), Value::from(st.size));
    }
    Ok(r)
}

/// A failure reports only its message, as the collection's `fail_json` calls do.
/// The task's parameters, reported back as the collection does.
fn base_result(
    args: &Args<'_>,
    want: &Want,
    path: Option<&str>,
    manage_dir: bool,
    follow: bool,
) -> Result<ModuleResult, ModuleError> {
    let (user, key) = (args.req_str("user")?, want.key.as_str());
    let mut base = ModuleResult::ok();
    for (k, v) in [
        ("user", Value::from(user.as_str())),
        ("key", Value::from(key)),
        ("path", path.map_or(Value::Null, Value::from)),
        ("manage_dir", Value::from(manage_dir)),
        (
            "state",
            Value::from(if want.present { "present" } else { "absent" }),
        ),
        (
            "key_options",
            want.key_options.clone().map_or(Value::Null, Value::from),
        ),
        ("exclusive", Value::from(want.exclusive)),
        (
            "comment",
            want.comment.clone().map_or(Value::Null, Value::from),
        ),
        ("validate_certs", Value::from(args.bool("validate_certs")?)),
        ("follow", Value::from(follow)),
    ] {
        base.data.insert(k.into(), v);
    }
    Ok(base)
}

fn failed(_base: ModuleResult, msg: String) -> ModuleResult {
    ModuleResult::failed(msg)
}

/// The write: the key directory made and fixed (with `manage_dir`), then the file written 0600
/// and owned by the user. Pure.
fn write_plan(
    keyfile: &str,
    dir: Option<&FileState>,
    sshdir: &str,
    file: &FileState,
    uid: u32,
    gid: u32,
) -> String {
    let mut cmds = Vec::new();
    if let Some(d) = dir {
        let q = quote(sshdir);
        if !d.exists() {
            cmds.push(format!("mkdir -m 0700 -- {q}"));
        }
        cmds.push(format!("chown {uid}:{gid} -- {q} && chmod 0700 -- {q}"));
    }
    let spec = WriteSpec {
        dest: keyfile.to_string(),
        attrs: Attrs {
            mode: Some(Mode::Octal(0o600)),
            owner: Some(uid.to_string()),
            group: Some(gid.to_string()),
        },
        existing: (file.kind == Kind::File).then(|| file.clone()),
        mkdirs: true,
        ..WriteSpec::default()
    };
    cmds.push(write_file_script(&spec));
    cmds.join(" && ")
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK1 alice@a";
    const K2: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQK2 bob@b";

    fn want(key: &str) -> Want {
        Want {
            key: key.into(),
            present: true,
            ..Want::default()
        }
    }

    #[test]
    fn keys_and_options_parse_like_the_collection() {
        let e = parse_key(
            "no-pty,command=\"echo a,b\",from=\"10.0.0.1\" ssh-ed25519 AAAA c  d\n",
            3,
        )
        .unwrap();
        assert_eq!(
            e,
            Entry::Key {
                blob: "AAAA".into(),
                kind: "ssh-ed25519".into(),
                options: vec![
                    ("no-pty".into(), None),
                    ("command".into(), Some("\"echo a,b\"".into())),
                    ("from".into(), Some("\"10.0.0.1\"".into())),
                ],
                comment: "c d".into(),
                rank: 3,
            }
        );
        assert!(parse_key("not a key", 0).is_none());
        assert!(matches!(
            parse_key("# ssh-rsa AAAA", 0),
            Some(Entry::Raw { .. })
        ));
    }

    #[test]
    fn edits_follow_enforce_state() {
        let file = format!("# keys\n{K1}\n");
        // (existing, want) -> new content (None: unchanged)
        let absent = Want {
            present: false,
            ..want(K1)
        };
        let excl = Want {
            exclusive: true,
            ..want(K2)
        };
        let opts = Want {
            key_options: Some("no-pty".into()),
            ..want(K1)
        };
        let cases: Vec<(&str, Want, Option<String>)> = vec![
            (&file, want(K1), None),
            (&file, want(K2), Some(format!("# keys\n{K1}\n{K2}\n"))),
            (&file, absent.clone(), Some("# keys\n".into())),
            ("", absent, None),
            (&file, excl, Some(format!("{K2}\n"))),
            // A changed key moves to the end.
            (
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK1 alice@a\n# end\n",
                opts,
                Some("# end\nno-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK1 alice@a\n".into()),
            ),
            // No comment: the collection's trailing space.
            ("", want("ssh-rsa AAAA"), Some("ssh-rsa AAAA \n".into())),
            // Several keys at once, in order.
            (
                "",
                want(&format!("{K1}\n\n{K2}")),
                Some(format!("{K1}\n{K2}\n")),
            ),
        ];
        for (existing, w, new) in cases {
            assert_eq!(edit(existing, &w).unwrap(), new, "{existing:?} {w:?}");
        }
        assert_eq!(
            edit("", &want("bogus")).unwrap_err(),
            "invalid key specified: bogus"
        );
        // On a rewrite, existing keys are normalised.
        let messy = format!("{K1}   extra\n");
        assert_eq!(
            edit(&messy, &want(K2)).unwrap().unwrap(),
            format!("{K1} extra\n{K2}\n")
        );
    }

    #[test]
    fn a_planted_link_to_a_root_file_is_refused() {
        let passwd = "alice:x:1000:1000::/home/alice:/bin/sh\n";
        let probe = "@@0\nislnk=1\nkind=file\nluid=1000\nreal=/etc/shadow\nmode=640|uid=0|gid=42|owner=root|group=shadow|size=1|mtime=1|atime=1|ctime=1|inode=1|dev=1|nlink=1\ncontent=eAo=\n@@1\nkind=directory\nreal=/home/alice/.ssh\nmode=700|uid=1000|gid=1000|owner=alice|group=alice|size=1|mtime=1|atime=1|ctime=1|inode=1|dev=1|nlink=1\n@@end\n";
        for follow in [false, true] {
            let mut r = FakeRemote::scripted(&[(0, passwd), (0, probe)]);
            let res = AuthorizedKey
                .execute(
                    &args(json!({"user": "alice", "key": K1, "follow": follow})),
                    &mut ctx(&mut r, false, false, vec![]),
                )
                .unwrap();
            assert!(res.failed, "{res:?}");
            assert!(res.msg.unwrap().contains("refusing to follow"));
            assert_eq!(r.seen.len(), 2, "nothing written");
        }
    }

    #[test]
    fn writes_with_the_users_ownership_on_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("ssh/authorized_keys");
        let me = sh("id -un", None).stdout_str().trim().to_string();
        let a = args(json!({"user": me, "key": K1, "path": keys.to_str().unwrap()}));
        let mut r = LocalRemote::default();
        let res = AuthorizedKey
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(res.data["keyfile"], keys.to_str().unwrap());
        assert_eq!(res.data["path"], keys.to_str().unwrap());
        assert_eq!(res.data["comment"], Value::Null);
        assert_eq!(std::fs::read_to_string(&keys).unwrap(), format!("{K1}\n"));
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&keys), 0o600);
        assert_eq!(mode(keys.parent().unwrap()), 0o700);
        let again = AuthorizedKey
            .execute(&a, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(!again.changed && !again.failed, "{again:?}");
        let url = args(json!({"user": "x", "key": "https://github.com/x.keys"}));
        let res = AuthorizedKey
            .execute(&url, &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert!(res.failed && res.msg.unwrap().contains("not supported by knockplay"));
    }
}
