//! Probing the target in one round trip: the file probe (one shell command reporting the state of
//! several paths as `@@N` sections of `key=value` lines, and its parser), running long scripts over
//! stdin, and named `@@KP:` sections for modules that probe other things (packages, services).

use indexmap::IndexMap;

use super::{ModuleCtx, ModuleError};
use crate::shell::quote;
use crate::ssh::{ExecOutput, SshError};

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Absent,
    File,
    Directory,
    Link,
    Other,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Absent => "absent",
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Link => "link",
            Kind::Other => "other",
        }
    }
}

/// The state of one path on the target, as reported by [`probe_script`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileState {
    pub kind: Kind,
    /// True when the path itself is a symlink (even when `kind` reports the followed target).
    pub is_link: bool,
    /// `readlink` of the path when it is a symlink.
    pub link_target: Option<String>,
    /// Owner (uid) of the symlink itself, when the path is one.
    pub link_uid: Option<u32>,
    /// Mode, uid and gid of what the symlink points to.
    pub link_target_attrs: Option<(u32, u32, u32)>,
    /// `readlink -f` of the path (canonical, links resolved), when it exists.
    pub real_path: Option<String>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub mtime: i64,
    pub atime: i64,
    pub ctime: i64,
    pub inode: u64,
    pub dev: u64,
    pub nlink: u64,
    pub sha256: Option<String>,
    pub sha1: Option<String>,
    /// Output of [`ProbeReq::sum_cmd`] (first word).
    pub sum: Option<String>,
    /// `stat %F`: "regular file", "directory", "symbolic link", "fifo", "socket", ...
    pub ftype: String,
    /// Content, when requested and the file is small enough.
    pub content: Option<Vec<u8>>,
    /// True when a regular file could not be read (checksum/content unavailable).
    pub unreadable: bool,
    /// Access checks for the connecting (or become) user.
    pub readable: bool,
    pub writeable: bool,
    pub executable: bool,
}

impl FileState {
    pub fn exists(&self) -> bool {
        self.kind != Kind::Absent
    }
    pub fn owner_is(&self, want: &str) -> bool {
        want == self.owner || want == self.uid.to_string()
    }
    pub fn group_is(&self, want: &str) -> bool {
        want == self.group || want == self.gid.to_string()
    }
    /// `'0644'`, as Ansible reports modes.
    pub fn mode_str(&self) -> String {
        format!("{:04o}", self.mode)
    }
}

/// What to probe for one path.
#[derive(Debug, Clone, Default)]
pub struct ProbeReq {
    pub path: String,
    /// Report the target of a symlink (stat -L) instead of the link.
    pub follow: bool,
    pub sha256: bool,
    pub sha1: bool,
    /// Another checksum command (`md5sum`, `sha512sum`, ...), reported as `sum`.
    pub sum_cmd: Option<&'static str>,
    /// Include the content of a regular file no larger than this many bytes.
    pub content_max: Option<u64>,
    /// Only what the path is (`kind`, `islnk`), told by `test` alone: no `stat`, no attributes.
    pub kind_only: bool,
}

impl ProbeReq {
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            ..Self::default()
        }
    }
}

/// Largest file whose content is fetched for `--diff` (Ansible's default `max_diff_size`).
pub const DIFF_MAX: u64 = 104_448;

/// One shell command that prints the state of every requested path as `@@N` sections of
/// `key=value` lines. Pure; parsed by [`parse_probe`]. Needs only sh and coreutils.
///
/// Every fork on the target costs (a busy fleet host spends most of a task's time in them), so
/// the script uses builtins where POSIX sh has them: kinds and access by `test`, the canonical
/// path by `cd -P` (`readlink -f` only for a link to something other than a directory), one `stat`
/// per path, and a path asked for twice (followed and not) is reported once when it is not a link (`same=J`).
pub fn probe_script(reqs: &[ProbeReq]) -> String {
    // Names with a newline would print lines that look like fields: they are reported instead.
    // Paths are made absolute first: resolving a path moves the working directory.
    let mut s = String::from(
        "kp_pnl='\n'; kp_pwd=$PWD; unset CDPATH; \
         kp_real() { t=; if [ -d \"$p\" ]; then cd -P -- \"$p\" 2>/dev/null && t=$PWD; \
         elif [ ! -L \"$p\" ]; then kp_d=${p%/*}; if cd -P -- \"${kp_d:-/}\" 2>/dev/null; then t=${PWD%/}/${p##*/}; fi; fi; \
         [ -n \"$t\" ] || t=$(readlink -f -- \"$p\"); }; ",
    );
    for (i, r) in reqs.iter().enumerate() {
        let l = if r.follow { "-L " } else { "" };
        // Following, the attributes are those of the resolved path printed as `real`, so that
        // owner and path belong together even when a link is swapped during the probe.
        let statted = if r.follow { "$t" } else { "$p" };
        s.push_str(&format!(
            "p={}; case $p in /*) ;; *) p=$kp_pwd/$p ;; esac; echo @@{i}; ",
            quote(&r.path)
        ));
        // The same path asked before with the same extras: when it is no link, following it or
        // not gives the same answer.
        let twin = reqs[..i].iter().position(|o| {
            !o.kind_only
                && o.path == r.path
                && o.sha256 == r.sha256
                && o.sha1 == r.sha1
                && o.sum_cmd == r.sum_cmd
                && o.content_max == r.content_max
        });
        if r.kind_only {
            s.push_str(
                "if [ -L \"$p\" ]; then echo islnk=1; fi; \
                 if [ -d \"$p\" ]; then echo kind=directory; elif [ -f \"$p\" ]; then echo kind=file; \
                 elif [ -e \"$p\" ]; then echo kind=other; else echo kind=absent; fi; ",
            );
            continue;
        }
        if let Some(j) = twin {
            s.push_str(&format!("if [ ! -L \"$p\" ]; then echo same={j}; else "));
        }
        if r.follow {
            s.push_str("if [ -L \"$p\" ]; then echo islnk=1; fi; k=; ");
        } else {
            s.push_str("if [ -L \"$p\" ]; then k=link; echo islnk=1; else k=; fi; ");
        }
        s.push_str(
            "if [ -n \"$k\" ]; then :; elif [ -d \"$p\" ]; then k=directory; \
             elif [ -f \"$p\" ]; then k=file; elif [ -e \"$p\" ]; then k=other; else k=absent; fi; \
             echo kind=$k; \
             if [ -L \"$p\" ]; then t=$(readlink -- \"$p\"); case $t in *\"$kp_pnl\"*) echo badname=1;; *) printf 'target=%s\\n' \"$t\";; esac; \
             stat -c 'luid=%u' -- \"$p\"; stat -L -c 'ltarget=%a:%u:%g' -- \"$p\" 2>/dev/null; fi; ",
        );
        let stat = format!(
            "stat {l}-c 'mode=%a|uid=%u|gid=%g|owner=%U|group=%G|size=%s|mtime=%Y|atime=%X|ctime=%Z|inode=%i|dev=%d|nlink=%h|ftype=%F' -- \"{statted}\""
        );
        // With content asked for, the size decides whether it is sent: the stat line is kept.
        let stat = if r.content_max.is_some() {
            format!("st=$({stat}) && printf '%s\\n' \"$st\"; sz=${{st#*|size=}}; sz=${{sz%%|*}}; ")
        } else {
            format!("{stat}; ")
        };
        s.push_str(&format!(
            "if [ $k != absent ]; then kp_real; case $t in *\"$kp_pnl\"*) echo badname=1;; *) printf 'real=%s\\n' \"$t\";; esac; \
             {stat}[ -r \"$p\" ] && echo r=1; [ -w \"$p\" ] && echo w=1; [ -x \"$p\" ] && echo x=1; fi; "
        ));
        let mut file_part = String::new();
        if r.sha256 {
            file_part.push_str(
                "if s=$(sha256sum < \"$p\"); then echo sha256=${s%% *}; else echo unreadable=1; fi; ",
            );
        }
        if r.sha1 {
            file_part.push_str(
                "if s=$(sha1sum < \"$p\"); then echo sha1=${s%% *}; else echo unreadable=1; fi; ",
            );
        }
        if let Some(cmd) = r.sum_cmd {
            file_part.push_str(&format!(
                "if s=$({cmd} < \"$p\"); then echo sum=${{s%% *}}; else echo unreadable=1; fi; "
            ));
        }
        if let Some(max) = r.content_max {
            file_part.push_str(&format!(
                "case $sz in ''|*[!0-9]*) ;; *) if [ \"$sz\" -le {max} ]; then \
                 if c=$(base64 -w0 < \"$p\"); then echo content=$c; else echo unreadable=1; fi; fi;; esac; "
            ));
        }
        if !file_part.is_empty() {
            // `-f` follows links: a link to a file reports the file's checksum/content.
            s.push_str(&format!("if [ -f \"$p\" ]; then {file_part}fi; "));
        }
        if twin.is_some() {
            s.push_str("fi; ");
        }
    }
    s.push_str("echo @@end");
    s
}

/// Parse the output of [`probe_script`] into one state per request, in order.
pub fn parse_probe(out: &[u8], n: usize) -> Result<Vec<FileState>, String> {
    let text = String::from_utf8_lossy(out);
    let mut states: Vec<FileState> = Vec::with_capacity(n);
    let mut saw_end = false;
    for line in text.lines() {
        if line == "@@end" {
            saw_end = true;
            break;
        }
        if let Some(idx) = line.strip_prefix("@@") {
            if idx.parse::<usize>().ok() != Some(states.len()) {
                return Err(format!("unexpected probe section '{line}'"));
            }
            states.push(FileState::default());
            continue;
        }
        if let Some(j) = line.strip_prefix("same=") {
            let twin = j.parse::<usize>().ok().filter(|&j| j + 1 < states.len());
            let Some(j) = twin else {
                return Err(format!("unexpected probe line '{line}'"));
            };
            let copy = states[j].clone();
            if let Some(last) = states.last_mut() {
                *last = copy;
            }
            continue;
        }
        let Some(st) = states.last_mut() else {
            return Err(format!("probe output before first section: '{line}'"));
        };
        // stat prints its fields joined by '|' on one line; owner/group names cannot contain '|'.
        if line.starts_with("mode=") {
            for field in line.split('|') {
                apply_field(st, field)?;
            }
        } else {
            apply_field(st, line)?;
        }
    }
    if !saw_end || states.len() != n {
        return Err(format!(
            "incomplete probe output ({} of {n} paths): {}",
            states.len(),
            text.chars().take(300).collect::<String>()
        ));
    }
    Ok(states)
}

fn apply_field(st: &mut FileState, field: &str) -> Result<(), String> {
    let (k, v) = field.split_once('=').unwrap_or((field, ""));
    let num = |v: &str| -> Result<u64, String> {
        v.parse::<u64>()
            .map_err(|_| format!("bad number in probe output: '{field}'"))
    };
    let int = |v: &str| -> Result<i64, String> {
        v.parse::<i64>()
            .map_err(|_| format!("bad number in probe output: '{field}'"))
    };
    match k {
        "kind" => {
            st.kind = match v {
                "file" => Kind::File,
                "directory" => Kind::Directory,
                "link" => Kind::Link,
                "other" => Kind::Other,
                _ => Kind::Absent,
            }
        }
        "islnk" => st.is_link = true,
        "ltarget" => {
            let f: Vec<&str> = v.split(':').collect();
            if let [m, u, g] = f[..] {
                if let (Ok(m), Ok(u), Ok(g)) = (
                    u32::from_str_radix(m, 8),
                    u.parse::<u32>(),
                    g.parse::<u32>(),
                ) {
                    st.link_target_attrs = Some((m, u, g));
                }
            }
        }
        "luid" => st.link_uid = Some(v.parse().map_err(|_| format!("bad link owner '{v}'"))?),
        "badname" => {
            return Err(
                "a symbolic link on the way has a newline in its name or target; \
                        refusing to act on it"
                    .into(),
            )
        }
        "target" => st.link_target = Some(v.to_string()),
        "real" => st.real_path = Some(v.to_string()),
        "mode" => {
            st.mode = u32::from_str_radix(v, 8).map_err(|_| format!("bad mode '{v}'"))?;
        }
        "uid" => st.uid = num(v)? as u32,
        "gid" => st.gid = num(v)? as u32,
        "owner" => st.owner = v.to_string(),
        "group" => st.group = v.to_string(),
        "size" => st.size = num(v)?,
        "mtime" => st.mtime = int(v)?,
        "atime" => st.atime = int(v)?,
        "ctime" => st.ctime = int(v)?,
        "inode" => st.inode = num(v)?,
        "dev" => st.dev = num(v)?,
        "nlink" => st.nlink = num(v)?,
        "sha256" => st.sha256 = Some(v.to_string()),
        "sha1" => st.sha1 = Some(v.to_string()),
        "sum" => st.sum = Some(v.to_string()),
        "ftype" => st.ftype = v.to_string(),
        "content" => {
            use base64::Engine;
            st.content = Some(
                base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .map_err(|e| format!("bad content in probe output: {e}"))?,
            );
        }
        "unreadable" => st.unreadable = true,
        "r" => st.readable = true,
        "w" => st.writeable = true,
        "x" => st.executable = true,
        _ => {}
    }
    Ok(())
}

/// Scripts longer than this are fed to `sh -s` on stdin instead of the command line (Linux limits
/// one argument to 128 KiB, and become wrapping makes the script one argument).
pub const ARG_MAX_SAFE: usize = 64 * 1024;

/// Run a script (one round trip), over stdin when it is too long for a command line.
pub fn run_script(ctx: &mut ModuleCtx<'_>, script: &str) -> Result<ExecOutput, SshError> {
    if script.len() > ARG_MAX_SAFE {
        ctx.run_with_stdin("sh -s", Some(script.as_bytes()))
    } else {
        ctx.run(script)
    }
}

/// Run a probe on the target (one round trip).
pub fn probe(
    ctx: &mut ModuleCtx<'_>,
    module: &str,
    reqs: &[ProbeReq],
) -> Result<Result<Vec<FileState>, String>, ModuleError> {
    let out = run_script(ctx, &probe_script(reqs))?;
    if !out.ok() {
        return Ok(Err(format!(
            "{module}: probing the target failed (rc={}): {}",
            out.rc,
            out.stderr_str().trim()
        )));
    }
    Ok(parse_probe(&out.stdout, reqs.len()).map_err(|e| format!("{module}: {e}")))
}

/// Run a probe script printing [`section`]s, the last one named `end` (one round trip). `Ok` with
/// the output when the script ran to `end`; `Err` with it when it failed or stopped before, for
/// the module to report as a failure.
pub fn probe_sections(
    ctx: &mut ModuleCtx<'_>,
    script: &str,
) -> Result<Result<ExecOutput, ExecOutput>, ModuleError> {
    let out = run_script(ctx, script)?;
    if out.ok() && out.stdout_str().contains("@@KP:end") {
        Ok(Ok(out))
    } else {
        Ok(Err(out))
    }
}

/// The shell command printing the header of a probe section named `name`; see [`sections`].
pub fn section(name: &str) -> String {
    format!("printf '\\n@@KP:{name}\\n'")
}

/// Output of a script that prints trusted [`section`]s up to `@@KP:end`, one of them `lens`
/// (a length per line), then that many raw blobs: text from the target that cannot fake a
/// section header.
pub struct Framed {
    pub sections: IndexMap<String, String>,
    pub blobs: Vec<Vec<u8>>,
}

/// Split a [`Framed`] output with `count` blobs. `script` names it in errors. `strict`: a bad
/// length or a short blob is an error; otherwise bad lengths are skipped and a short blob is
/// taken as far as it goes.
pub fn framed(out: &[u8], script: &str, count: usize, strict: bool) -> Result<Framed, String> {
    let marker = b"\n@@KP:end\n";
    let end = out
        .windows(marker.len())
        .position(|w| w == marker)
        .ok_or_else(|| format!("the {script} script stopped early"))?;
    let sections = sections(&String::from_utf8_lossy(&out[..end]));
    let mut lens = Vec::new();
    for l in sections.get("lens").map_or("", |s| s).lines() {
        match l.trim().parse::<usize>() {
            Ok(n) => lens.push(n),
            Err(_) if strict => return Err(format!("bad length '{l}'")),
            Err(_) => {}
        }
    }
    if lens.len() != count {
        return Err(format!("the {script} script printed no lengths"));
    }
    let mut rest = &out[end + marker.len()..];
    let mut blobs = Vec::with_capacity(count);
    for n in lens {
        if strict && n > rest.len() {
            return Err("the response was cut short".into());
        }
        let (b, r) = rest.split_at(n.min(rest.len()));
        blobs.push(b.to_vec());
        rest = r;
    }
    Ok(Framed { sections, blobs })
}

/// Split probe output printed with [`section`] headers into name → exact content.
pub fn sections(out: &str) -> IndexMap<String, String> {
    let mut map = IndexMap::new();
    let mut parts = out.split("\n@@KP:");
    parts.next();
    for part in parts {
        let (name, body) = part.split_once('\n').unwrap_or((part, ""));
        // The '\n' that starts each header was consumed by the split: bodies are exact.
        map.insert(name.to_string(), body.to_string());
    }
    map
}

impl FileState {
    /// Whether root may write through this symlink: Linux's `protected_symlinks` rule, for every
    /// directory: a link owned by root, or by the owner of what it points to (who could write that
    /// anyway). A user who plants `~/.ssh/authorized_keys -> /etc/shadow` gets an error, never a
    /// write to /etc/shadow.
    pub fn check_follow(&self, path: &str) -> Result<(), String> {
        match self.link_uid {
            Some(l) if self.is_link && l != 0 && self.exists() && l != self.uid => Err(format!(
                "refusing to follow the symbolic link {path} (owned by uid {l}) to {} (owned by \
                 uid {}): its owner could redirect root's write anywhere",
                self.real_path.as_deref().unwrap_or("?"),
                self.uid
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_follows_only_links_their_targets_owner_could_have_made() {
        let link = |luid: u32, uid: u32| FileState {
            kind: Kind::File,
            is_link: true,
            link_uid: Some(luid),
            uid,
            real_path: Some("/etc/shadow".into()),
            ..FileState::default()
        };
        assert!(link(0, 0).check_follow("/x").is_ok());
        assert!(link(1000, 1000).check_follow("/x").is_ok());
        assert!(link(0, 1000).check_follow("/x").is_ok());
        let e = link(1000, 0)
            .check_follow("/home/u/.ssh/authorized_keys")
            .unwrap_err();
        assert!(
            e.contains("refusing to follow") && e.contains("/etc/shadow"),
            "{e}"
        );
        // Not a link: nothing to check.
        assert!(FileState {
            kind: Kind::File,
            ..FileState::default()
        }
        .check_follow("/x")
        .is_ok());
    }
    use super::super::testing::LocalRemote;
    use super::super::write::sha256_hex;

    #[test]
    fn probe_parses_sections() {
        let out = "@@0\nkind=file\nreal=/etc/x\nmode=644|uid=0|gid=0|owner=root|group=root|size=3|mtime=5|atime=6|ctime=7|inode=9|dev=10|nlink=1\nr=1\nsha256=abc\ncontent=aGkK\n@@1\nkind=absent\n@@end\n";
        let st = parse_probe(out.as_bytes(), 2).unwrap();
        assert_eq!(st[0].kind, Kind::File);
        assert_eq!(st[0].mode, 0o644);
        assert_eq!(st[0].size, 3);
        assert_eq!(st[0].sha256.as_deref(), Some("abc"));
        assert_eq!(st[0].content.as_deref(), Some(&b"hi\n"[..]));
        assert!(st[0].readable && !st[0].writeable);
        assert!(!st[1].exists());
        assert!(parse_probe(b"@@0\nkind=file\n", 1).is_err());
        assert!(parse_probe(b"@@0\n@@end\n", 2).is_err());
    }

    #[test]
    fn a_link_whose_target_forges_probe_fields_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let l = dir.path().join("keys");
        // A target planting a link whose target holds a newline and field text.
        std::os::unix::fs::symlink("x\nreal=/etc/shadow\nuid=0", &l).unwrap();
        for follow in [false, true] {
            let reqs = vec![ProbeReq {
                follow,
                ..ProbeReq::new(l.to_str().unwrap())
            }];
            let mut r = LocalRemote::default();
            let out = crate::ssh::Remote::exec(&mut r, &probe_script(&reqs), None, None).unwrap();
            let err = parse_probe(&out.stdout, 1).unwrap_err();
            assert!(err.contains("newline"), "follow={follow}: {err}");
        }
    }

    #[test]
    fn probe_script_runs_on_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a file");
        std::fs::write(&f, "hello\n").unwrap();
        let l = dir.path().join("lnk");
        std::os::unix::fs::symlink("a file", &l).unwrap();
        let reqs = vec![
            ProbeReq {
                sha256: true,
                sha1: true,
                content_max: Some(DIFF_MAX),
                ..ProbeReq::new(f.to_str().unwrap())
            },
            ProbeReq::new(l.to_str().unwrap()),
            ProbeReq {
                follow: true,
                ..ProbeReq::new(l.to_str().unwrap())
            },
            ProbeReq::new(dir.path().join("nope").to_str().unwrap()),
            ProbeReq::new(dir.path().to_str().unwrap()),
        ];
        let mut r = LocalRemote::default();
        let out = crate::ssh::Remote::exec(&mut r, &probe_script(&reqs), None, None).unwrap();
        assert_eq!(out.rc, 0, "{}", out.stderr_str());
        let st = parse_probe(&out.stdout, reqs.len()).unwrap();
        assert_eq!(st[0].kind, Kind::File);
        assert_eq!(st[0].size, 6);
        assert_eq!(
            st[0].sha256.as_deref(),
            Some(sha256_hex(b"hello\n").as_str())
        );
        assert_eq!(
            st[0].sha1.as_deref(),
            Some("f572d396fae9206628714fb2ce00f72e94f2258f")
        );
        assert_eq!(st[0].content.as_deref(), Some(&b"hello\n"[..]));
        assert_eq!(st[1].kind, Kind::Link);
        assert_eq!(st[1].link_target.as_deref(), Some("a file"));
        assert_eq!(st[2].kind, Kind::File);
        assert!(st[2].is_link);
        assert_eq!(
            st[2].real_path.as_deref(),
            f.canonicalize().unwrap().to_str()
        );
        assert_eq!(st[3].kind, Kind::Absent);
        assert_eq!(st[4].kind, Kind::Directory);
    }

    /// Runs a probe script with nothing but `programs` on the PATH (and `sh`): what it reports
    /// without any other program.
    fn probe_with_only(
        programs: &[&str],
        reqs: &[ProbeReq],
        cwd: &std::path::Path,
    ) -> Vec<FileState> {
        let bin = tempfile::tempdir().unwrap();
        for p in programs {
            std::os::unix::fs::symlink(format!("/usr/bin/{p}"), bin.path().join(p)).unwrap();
        }
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(probe_script(reqs))
            .current_dir(cwd)
            .env("PATH", bin.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        parse_probe(&out.stdout, reqs.len()).unwrap()
    }

    #[test]
    fn paths_without_links_are_probed_with_one_stat_and_builtins() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("d")).unwrap();
        std::fs::write(real.join("d/f"), "x").unwrap();
        // A link on the way (not the last component) is resolved by `cd -P`.
        std::os::unix::fs::symlink(real.join("d"), real.join("via")).unwrap();
        let f = real.join("via/f");
        let reqs = vec![
            ProbeReq::new(f.to_str().unwrap()),
            ProbeReq {
                follow: true,
                ..ProbeReq::new(f.to_str().unwrap())
            },
            ProbeReq::new(real.join("via/").to_str().unwrap()),
            // Relative to the working directory.
            ProbeReq::new("d/f"),
            ProbeReq::new("/"),
        ];
        let st = probe_with_only(&["stat"], &reqs, &real);
        let want = real.join("d/f");
        assert_eq!(st[0].kind, Kind::File);
        assert_eq!(st[0].real_path.as_deref(), want.to_str());
        assert_eq!(st[0].size, 1);
        // The followed twin of a path that is no link is the same state.
        assert_eq!(st[1], st[0]);
        assert_eq!(st[2].kind, Kind::Directory);
        assert_eq!(st[2].real_path.as_deref(), real.join("d").to_str());
        assert_eq!(st[3].real_path.as_deref(), want.to_str());
        assert_eq!(st[3].inode, st[0].inode);
        assert_eq!(st[4].real_path.as_deref(), Some("/"));
    }

    #[test]
    fn a_link_to_a_directory_is_resolved_by_cd_without_readlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("d")).unwrap();
        std::os::unix::fs::symlink("d", real.join("l1")).unwrap();
        std::os::unix::fs::symlink(real.join("l1"), real.join("l2")).unwrap();
        let req = ProbeReq {
            follow: true,
            ..ProbeReq::new(real.join("l2").to_str().unwrap())
        };
        let st = probe_with_only(&["stat"], &[req], &real);
        assert_eq!(st[0].kind, Kind::Directory);
        assert!(st[0].is_link);
        assert_eq!(st[0].real_path.as_deref(), real.join("d").to_str());
    }

    #[test]
    fn a_kind_only_request_runs_no_program() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::write(real.join("f"), "x").unwrap();
        std::os::unix::fs::symlink("f", real.join("l")).unwrap();
        let req = |p: &str| ProbeReq {
            kind_only: true,
            ..ProbeReq::new(real.join(p).to_str().unwrap())
        };
        let reqs = [req(""), req("f"), req("l"), req("nope")];
        let st = probe_with_only(&[], &reqs, &real);
        let kinds: Vec<Kind> = st.iter().map(|s| s.kind).collect();
        assert_eq!(
            kinds,
            [Kind::Directory, Kind::File, Kind::File, Kind::Absent]
        );
        assert!(st[2].is_link && !st[1].is_link);
    }

    #[test]
    fn a_link_is_never_taken_for_its_twin() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::write(real.join("f"), "data").unwrap();
        std::os::unix::fs::symlink("f", real.join("l")).unwrap();
        let l = real.join("l");
        let reqs = vec![
            ProbeReq::new(l.to_str().unwrap()),
            ProbeReq {
                follow: true,
                ..ProbeReq::new(l.to_str().unwrap())
            },
        ];
        let mut r = LocalRemote::default();
        let out = crate::ssh::Remote::exec(&mut r, &probe_script(&reqs), None, None).unwrap();
        let st = parse_probe(&out.stdout, 2).unwrap();
        assert_eq!(st[0].kind, Kind::Link);
        assert_eq!(st[1].kind, Kind::File);
        assert_eq!(st[1].size, 4);
        assert_eq!(st[1].real_path.as_deref(), real.join("f").to_str());
    }

    #[test]
    fn a_twin_naming_itself_or_a_later_section_is_refused() {
        assert!(parse_probe(b"@@0\nsame=0\n@@end\n", 1).is_err());
        assert!(parse_probe(b"@@0\nkind=absent\n@@1\nsame=1\n@@end\n", 2).is_err());
        assert!(parse_probe(b"@@0\nkind=absent\n@@1\nsame=x\n@@end\n", 2).is_err());
        let ok = parse_probe(b"@@0\nkind=file\nsize=3\n@@1\nsame=0\n@@end\n", 2).unwrap();
        assert_eq!(ok[1].size, 3);
    }

    #[test]
    fn sections_keep_exact_bytes() {
        let script = format!(
            "{}; printf 'a\\nb'; {}; printf 'c\\n'; {}; true",
            section("one"),
            section("two"),
            section("three")
        );
        let mut r = LocalRemote::default();
        let out = crate::ssh::Remote::exec(&mut r, &script, None, None).unwrap();
        let s = sections(&out.stdout_str());
        assert_eq!(s["one"], "a\nb");
        assert_eq!(s["two"], "c\n");
        assert_eq!(s["three"], "");
    }
}
