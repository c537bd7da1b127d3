//! `unarchive`: unpack a tar (plain, gzip, bzip2, xz, zstd) or zip archive into an existing
//! directory, as Ansible's unarchive action and module do.
//!
//! Three round trips at most: the file probe (`creates`, `dest`, a remote `src`); the analysis
//! script, which receives a controller `src` on stdin into a private temporary directory, picks
//! the handler as Ansible does (unzip, then GNU tar with `-z`, none, `-j`, `-J`, zstd), lists the
//! members and compares them with `dest` (`tar --diff`; for zip, `zipinfo -T -s` plus a stat of
//! each member); and, when something is to change or be cleaned up, the apply script (extract,
//! then owner/group/mode on every member, then remove the temporary copy). The comparison is
//! decided here from the analysis output ([`tar_unarchived`], [`zip_unarchived`]), purely.

use super::probe::{probe, run_script, section, sections, Kind, ProbeReq};
use super::write::{Attrs, FILE_COMMON};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::{Value, Vars};

mod zip;
pub use zip::zip_unarchived;
#[cfg(test)]
use zip::{permstr_mode, zip_time};
use zip::{zip_diff_part, zip_members};

pub struct Unarchive;

const SPEC: Spec = Spec::new(
    "unarchive",
    &[
        Param::path("src").required(),
        Param::path("dest").required(),
        Param::bool("remote_src").default("false"),
        Param::bool("copy"),
        Param::path("creates"),
        Param::bool("list_files").default("false"),
        Param::bool("keep_newer").default("false"),
        Param::list("exclude"),
        Param::list("include"),
        Param::list("extra_opts"),
        Param::bool("validate_certs").only("true"),
        Param::int("io_buffer_size").only("65536"),
        Param::bool("decrypt").only("true"),
    ],
)
.shared(&[FILE_COMMON]);

/// The validated arguments.
#[derive(Debug, Clone, Default)]
pub struct UnarchiveArgs {
    pub src: String,
    pub dest: String,
    pub remote_src: bool,
    pub creates: Option<String>,
    pub list_files: bool,
    pub keep_newer: bool,
    pub exclude: Vec<String>,
    pub include: Vec<String>,
    pub extra_opts: Vec<String>,
    pub attrs: Attrs,
}

impl UnarchiveArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let mut remote_src = args.bool("remote_src")?;
        if let Some(copy) = args.opt_bool("copy")? {
            if args.is_set("remote_src")? {
                return Err(ModuleError::Args(
                    "parameters are mutually exclusive: ('copy', 'remote_src')".into(),
                ));
            }
            remote_src = !copy;
        }
        args.exclusive("include", "exclude")?;
        let src = args.req_str("src")?;
        if remote_src && src.contains("://") {
            return Err(ModuleError::Args(
                "downloading a remote_src URL is not supported by knockplay (use get_url first)"
                    .into(),
            ));
        }
        Ok(Self {
            src,
            dest: args.req_str("dest")?,
            remote_src,
            creates: args.str("creates")?.filter(|c| !c.is_empty()),
            list_files: args.bool("list_files")?,
            keep_newer: args.bool("keep_newer")?,
            exclude: args.list("exclude")?.unwrap_or_default(),
            include: args.list("include")?.unwrap_or_default(),
            extra_opts: args.list("extra_opts")?.unwrap_or_default(),
            attrs: Attrs::from_args_without_preserve(args)?,
        })
    }

    /// Tar's `--exclude` values (trailing slashes dropped, as Ansible does).
    fn tar_excludes(&self) -> Vec<String> {
        self.exclude
            .iter()
            .map(|e| e.trim_end_matches('/').to_string())
            .collect()
    }
}

/// The archive formats, named as Ansible's handler classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Zip,
    ZipZ,
    Tgz,
    Tar,
    TarBzip,
    TarXz,
    TarZstd,
}

impl Handler {
    pub fn name(self) -> &'static str {
        match self {
            Handler::Zip => "ZipArchive",
            Handler::ZipZ => "ZipZArchive",
            Handler::Tgz => "TgzArchive",
            Handler::Tar => "TarArchive",
            Handler::TarBzip => "TarBzipArchive",
            Handler::TarXz => "TarXzArchive",
            Handler::TarZstd => "TarZstdArchive",
        }
    }
    fn from_name(n: &str) -> Option<Self> {
        [
            Handler::Zip,
            Handler::ZipZ,
            Handler::Tgz,
            Handler::Tar,
            Handler::TarBzip,
            Handler::TarXz,
            Handler::TarZstd,
        ]
        .into_iter()
        .find(|h| h.name() == n)
    }
    fn tar_flag(self) -> Option<&'static str> {
        match self {
            Handler::Tgz => Some("-z"),
            Handler::TarBzip => Some("-j"),
            Handler::TarXz => Some("-J"),
            Handler::TarZstd => Some("--use-compress-program=zstd"),
            _ => None,
        }
    }
    fn is_zip(self) -> bool {
        matches!(self, Handler::Zip | Handler::ZipZ)
    }
}

/// A tar command line as Ansible builds it (`op` is `--list`, `--diff` or `--extract`).
pub fn tar_argv(tar: &str, op: &str, h: Handler, ua: &UnarchiveArgs, src: &str) -> Vec<String> {
    let mut c = vec![
        tar.to_string(),
        op.to_string(),
        "-C".into(),
        ua.dest.clone(),
    ];
    if let Some(f) = h.tar_flag() {
        c.push(f.into());
    }
    if !ua.extra_opts.is_empty() {
        c.push("--show-transformed-names".into());
        c.extend(ua.extra_opts.iter().cloned());
    }
    if op != "--list" {
        if let Some(o) = &ua.attrs.owner {
            c.push(format!("--owner={}", quote(o)));
        }
        if let Some(g) = &ua.attrs.group {
            c.push(format!("--group={}", quote(g)));
        }
        if ua.keep_newer {
            c.push("--keep-newer-files".into());
        }
    }
    c.extend(ua.tar_excludes().iter().map(|e| format!("--exclude={e}")));
    c.push("-f".into());
    c.push(src.into());
    c.extend(ua.include.iter().cloned());
    c
}

/// `unzip -o` as Ansible runs it.
pub fn unzip_argv(unzip: &str, ua: &UnarchiveArgs, src: &str) -> Vec<String> {
    let mut c = vec![unzip.to_string(), "-o".into()];
    c.extend(ua.extra_opts.iter().cloned());
    c.push(src.into());
    if !ua.exclude.is_empty() {
        c.push("-x".into());
        c.extend(ua.exclude.iter().cloned());
    }
    c.extend(ua.include.iter().cloned());
    c.push("-d".into());
    c.push(ua.dest.clone());
    c
}

fn sh_argv(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

/// The analysis script: receive the archive (when `upload`), pick the handler, list the members
/// and compare them with dest, as `@@KP:` sections. Pure.
pub fn analyse_script(ua: &UnarchiveArgs, upload: bool) -> String {
    let mut s = String::from(
        "LANG=C LC_ALL=C LC_MESSAGES=C LANGUAGE=C; export LANG LC_ALL LC_MESSAGES LANGUAGE\n",
    );
    if upload {
        s.push_str(
            "kp_t=$(mktemp -d) || exit 1; kp_src=\"$kp_t/source\"; cat > \"$kp_src\" || exit 1\n",
        );
        s.push_str(&format!("{}; printf '%s' \"$kp_t\"\n", section("tmp")));
    } else {
        s.push_str(&format!("kp_src={}\n", quote(&ua.src)));
    }
    s.push_str(&format!("kp_d={}\n", quote(&ua.dest)));
    s.push_str(&format!(
        "{}; id -u; id -un; id -gn; date +%z\n",
        section("who")
    ));
    // Zip: unzip and zipinfo (ZipArchive), or unzip alone (ZipZArchive, `unzip -Z`).
    s.push_str(
        "kp_h=; kp_unzip=$(command -v unzip); kp_zi=$(command -v zipinfo)\n\
         if [ -n \"$kp_unzip\" ] && \"$kp_unzip\" -l \"$kp_src\" >/dev/null 2>&1; then\n\
         if [ -n \"$kp_zi\" ]; then kp_h=ZipArchive; else kp_h=ZipZArchive; kp_zi=\"$kp_unzip -Z\"; fi; fi\n\
         kp_tar=$(command -v gtar || command -v tar)\n",
    );
    s.push_str(&format!(
        "{}; if [ -z \"$kp_unzip\" ]; then echo nounzip; fi; if [ -z \"$kp_tar\" ]; then echo notar; \
         elif ! \"$kp_tar\" --version 2>/dev/null | head -n 1 | grep -q GNU; then echo notgnu; fi\n",
        section("why")
    ));
    s.push_str("if [ -z \"$kp_h\" ] && [ -n \"$kp_tar\" ]; then\n");
    for h in [
        Handler::Tgz,
        Handler::Tar,
        Handler::TarBzip,
        Handler::TarXz,
        Handler::TarZstd,
    ] {
        let list = sh_argv(&tar_argv("TAR", "--list", h, ua, "SRC"))
            .replacen("TAR", "\"$kp_tar\"", 1)
            .replace(" SRC", " \"$kp_src\"");
        s.push_str(&format!(
            " if [ -z \"$kp_h\" ] && (cd \"$kp_d\" && {list}) > \"${{TMPDIR:-/tmp}}/.kp_l.$$\" 2>/dev/null && [ -s \"${{TMPDIR:-/tmp}}/.kp_l.$$\" ]; then kp_h={}; fi\n",
            h.name()
        ));
    }
    s.push_str("fi\n");
    s.push_str(&format!(
        "{}; printf '%s\\n%s\\n' \"$kp_h\" \"$kp_tar\"; printf '%s\\n' \"$kp_unzip\"\n",
        section("handler")
    ));
    s.push_str(&format!(
        "case $kp_h in Tar*|Tgz*) {}; cat \"${{TMPDIR:-/tmp}}/.kp_l.$$\";;\n",
        section("list")
    ));
    s.push_str(&format!(
        " Zip*) {}; \"$kp_unzip\" -Z1 \"$kp_src\";;\nesac; rm -f \"${{TMPDIR:-/tmp}}/.kp_l.$$\"\n",
        section("list")
    ));
    s.push_str(&tar_diff_part(ua));
    s.push_str(&zip_diff_part(ua));
    s.push_str(&format!("{}\n", section("end")));
    s
}

fn tar_diff_part(ua: &UnarchiveArgs) -> String {
    let mut s = String::from("case $kp_h in Tar*|Tgz*) case $kp_h in\n");
    for h in [
        Handler::Tgz,
        Handler::Tar,
        Handler::TarBzip,
        Handler::TarXz,
        Handler::TarZstd,
    ] {
        let diff = sh_argv(&tar_argv("TAR", "--diff", h, ua, "SRC"))
            .replacen("TAR", "\"$kp_tar\"", 1)
            .replace(" SRC", " \"$kp_src\"");
        s.push_str(&format!(
            "  {}) kp_out=$(cd \"$kp_d\" && {diff} 2>&1); kp_rc=$?;;\n",
            h.name()
        ));
    }
    s.push_str(&format!(
        " esac; {}; printf '%s\\n' \"$kp_rc\"; {}; printf '%s\\n' \"$kp_out\";;\nesac\n",
        section("rc"),
        section("diff")
    ));
    s
}

/// Who runs the commands on the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Who {
    pub uid: u32,
    pub user: String,
    pub group: String,
    /// Seconds east of UTC (`date +%z`).
    pub tz_offset: i64,
}

fn parse_who(text: &str) -> Who {
    let l: Vec<&str> = text.lines().collect();
    let tz = l.get(3).copied().unwrap_or("+0000");
    let sign = if tz.starts_with('-') { -1 } else { 1 };
    let digits: String = tz.chars().filter(char::is_ascii_digit).collect();
    let (h, m) = (
        digits
            .get(..2)
            .and_then(|x| x.parse::<i64>().ok())
            .unwrap_or(0),
        digits
            .get(2..4)
            .and_then(|x| x.parse::<i64>().ok())
            .unwrap_or(0),
    );
    Who {
        uid: l.first().and_then(|u| u.parse().ok()).unwrap_or(u32::MAX),
        user: l.get(1).unwrap_or(&"").to_string(),
        group: l.get(2).unwrap_or(&"").to_string(),
        tz_offset: sign * (h * 3600 + m * 60),
    }
}

/// Ansible's reading of `tar --diff` output: whether dest already holds the archive. Pure.
pub fn tar_unarchived(diff: &str, ua: &UnarchiveArgs, run_uid: u32) -> (bool, String) {
    let mut out = String::new();
    for line in diff.lines() {
        if line.ends_with(": : Warning: Cannot stat: No such file or directory") {
            continue;
        }
        let root = run_uid == 0;
        let keep = (root && ua.attrs.owner.is_none() && line.ends_with(": Uid differs"))
            || (root && ua.attrs.group.is_none() && line.ends_with(": Gid differs"))
            || (ua.attrs.mode.is_none() && line.ends_with(": Mode differs"));
        if keep {
            out.push_str(line);
            out.push('\n');
        }
        let differs = [
            ": Mod time differs",
            ": Warning: Cannot stat: No such file or directory",
            ": Symlink differs",
            ": Contents differ",
            ": Size differs",
        ]
        .iter()
        .any(|s| line.ends_with(s))
            || line.contains(": Invalid owner")
            || line.contains(": Invalid group");
        if differs {
            out.push_str(line);
            out.push('\n');
        }
    }
    (out.is_empty(), out)
}

/// GNU tar's escaped member names (`\n`, `\\`, octal) as text, leading `/` dropped; the
/// members Ansible excludes by `fnmatch` are left out. Pure.
pub fn tar_members(list: &str, ua: &UnarchiveArgs) -> Result<Vec<String>, String> {
    let excludes: Vec<regex::Regex> = ua
        .tar_excludes()
        .iter()
        .map(|e| super::find::name_regex(e, false))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for line in list.lines() {
        let name = unescape(line);
        let name = name.strip_prefix('/').unwrap_or(&name).to_string();
        if !excludes.iter().any(|e| e.is_match(&name)) {
            out.push(name);
        }
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let c = b[i + 1];
            let oct = b
                .get(i + 1..i + 4)
                .filter(|o| o.iter().all(|d| (b'0'..=b'7').contains(d)));
            if let Some(o) = oct {
                out.push(o.iter().fold(0u32, |a, d| a * 8 + u32::from(d - b'0')) as u8);
                i += 4;
                continue;
            }
            out.push(match c {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'a' => 7,
                b'b' => 8,
                b'f' => 12,
                b'v' => 11,
                other => other,
            });
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The apply script: extract (when `extract` holds the command), fix owner/group/mode of every
/// member and top folder, remove the temporary copy. Pure.
pub fn apply_script(
    ua: &UnarchiveArgs,
    extract: Option<&[String]>,
    paths: &[String],
    tmp: Option<&str>,
) -> String {
    let mut s = String::from(
        "LANG=C LC_ALL=C LC_MESSAGES=C LANGUAGE=C; export LANG LC_ALL LC_MESSAGES LANGUAGE\n",
    );
    s.push_str(&format!("kp_d={}; kp_c=0\n", quote(&ua.dest)));
    if let Some(argv) = extract {
        s.push_str(&format!(
            "kp_e=$(mktemp) || exit 1; kp_o=$(cd \"$kp_d\" && {} 2>\"$kp_e\"); kp_rc=$?\n\
             {}; printf '%s\\n' \"$kp_rc\"; {}; printf '%s' \"$kp_o\"; {}; cat \"$kp_e\"; rm -f \"$kp_e\"\n",
            sh_argv(argv),
            section("xrc"),
            section("xout"),
            section("xerr")
        ));
    }
    let a = &ua.attrs;
    if !paths.is_empty() && (a.owner.is_some() || a.group.is_some() || a.mode.is_some()) {
        s.push_str("kp_fix() {\n [ -e \"$1\" ] || [ -L \"$1\" ] || return 0\n");
        if let Some(o) = &a.owner {
            let q = quote(o);
            s.push_str(&format!(
                " if [ \"$(stat -c %U -- \"$1\")\" != {q} ] && [ \"$(stat -c %u -- \"$1\")\" != {q} ]; then chown -h -- {q} \"$1\" && kp_c=1; fi\n"
            ));
        }
        if let Some(g) = &a.group {
            let q = quote(g);
            s.push_str(&format!(
                " if [ \"$(stat -c %G -- \"$1\")\" != {q} ] && [ \"$(stat -c %g -- \"$1\")\" != {q} ]; then chgrp -h -- {q} \"$1\" && kp_c=1; fi\n"
            ));
        }
        if let Some(m) = &a.mode {
            s.push_str(&format!(
                " if [ ! -L \"$1\" ]; then kp_b=$(stat -c %a -- \"$1\"); chmod -- {} \"$1\"; [ \"$kp_b\" = \"$(stat -c %a -- \"$1\")\" ] || kp_c=1; fi\n",
                quote(&m.chmod_recursive_arg())
            ));
        }
        s.push_str("}\n");
        for p in paths {
            s.push_str(&format!("kp_fix {}\n", quote(p)));
        }
    }
    s.push_str(&format!("{}; echo $kp_c\n", section("attrs")));
    if let Some(t) = tmp {
        s.push_str(&format!("rm -rf -- {}\n", quote(t)));
    }
    s.push_str(&format!("{}\n", section("end")));
    s
}

/// What the analysis found.
#[derive(Debug, Clone, Default)]
struct Analysis {
    tmp: Option<String>,
    who: Who,
    handler: Option<Handler>,
    tar: String,
    unzip: String,
    members: Vec<String>,
    unarchived: bool,
    why: Vec<String>,
}

fn analyse(out: &str, ua: &UnarchiveArgs) -> Result<Analysis, String> {
    let sec = sections(out);
    let get = |k: &str| sec.get(k).map(String::as_str).unwrap_or("");
    let hl: Vec<&str> = get("handler").lines().collect();
    let mut a = Analysis {
        tmp: sec.get("tmp").cloned(),
        who: parse_who(get("who")),
        handler: hl.first().and_then(|h| Handler::from_name(h)),
        tar: hl.get(1).unwrap_or(&"").to_string(),
        unzip: hl.get(2).unwrap_or(&"").to_string(),
        why: get("why").lines().map(str::to_string).collect(),
        ..Analysis::default()
    };
    let Some(h) = a.handler else { return Ok(a) };
    let rc: i32 = get("rc").trim().parse().unwrap_or(1);
    if h.is_zip() {
        a.members = zip_members(get("list"), ua)?;
        a.unarchived = zip_unarchived(get("diff"), rc, get("stats"), ua, &a.who).0;
    } else {
        a.members = tar_members(get("list"), ua)?;
        a.unarchived = tar_unarchived(get("diff"), ua, a.who.uid).0;
    }
    Ok(a)
}

fn no_handler_msg(src: &str, a: &Analysis) -> String {
    let mut reasons = Vec::new();
    if a.why.iter().any(|w| w == "nounzip") {
        reasons
            .push("Unable to find required 'unzip' or 'zipinfo' binary in the path.".to_string());
        reasons.push("Unable to find required 'unzip' binary in the path.".to_string());
    } else {
        reasons.push(format!("Command \"{}\" could not handle archive", a.unzip));
    }
    if a.why.iter().any(|w| w == "notar") {
        reasons.push("Unable to find required 'gtar' or 'tar' binary in the path".into());
    } else if a.why.iter().any(|w| w == "notgnu") {
        reasons.push(format!(
            "Command \"{}\" detected as tar type None. GNU tar required.",
            a.tar
        ));
    } else {
        reasons.push(format!(
            "Command \"{}\" could not handle archive: Unable to list files in the archive",
            a.tar
        ));
    }
    format!(
        "Failed to find handler for \"{src}\". Make sure the required command to extract the file is installed.\n{}",
        reasons.join("\n")
    )
}

/// The paths whose attributes Ansible sets: every member, then every top folder.
fn attr_paths(ua: &UnarchiveArgs, members: &[String]) -> Vec<String> {
    let dest = ua.dest.trim_end_matches('/');
    let mut out: Vec<String> = members.iter().map(|m| format!("{dest}/{m}")).collect();
    let mut tops: Vec<&str> = Vec::new();
    for m in members {
        if let Some((top, _)) = m.split_once('/') {
            if !tops.contains(&top) {
                tops.push(top);
            }
        }
    }
    out.extend(tops.iter().map(|t| format!("{dest}/{t}")));
    out
}

impl Module for Unarchive {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let ua = UnarchiveArgs::from_args(args)?;
        let data = if ua.remote_src {
            None
        } else {
            let path = ModuleCtx::find_local(&ctx.file_search, &ua.src)
                .ok_or_else(|| super::copy::not_found(&ua.src, &ctx.file_search))?;
            Some(crate::vault::read_file(&path).map_err(ModuleError::Local)?)
        };
        let mut reqs = vec![ProbeReq {
            follow: true,
            ..ProbeReq::new(&ua.dest)
        }];
        reqs.extend(ua.creates.iter().map(ProbeReq::new));
        if ua.remote_src {
            reqs.push(ProbeReq {
                follow: true,
                ..ProbeReq::new(&ua.src)
            });
        }
        let st = match probe(ctx, args.module(), &reqs)? {
            Ok(s) => s,
            Err(e) => return Ok(ModuleResult::failed(e)),
        };
        if let (Some(c), Some(cs)) = (&ua.creates, st.get(1)) {
            if cs.exists() {
                let mut r = ModuleResult::ok().set("skipped", true);
                r.msg = Some(format!("skipped, since {c} exists"));
                return Ok(r);
            }
        }
        if st[0].kind != Kind::Directory {
            return Ok(ModuleResult::failed(format!(
                "dest '{}' must be an existing dir",
                ua.dest
            )));
        }
        if let Some(s) = st.last().filter(|_| ua.remote_src) {
            let fail = if !s.exists() {
                Some(format!("Source '{}' does not exist", ua.src))
            } else if !s.readable {
                Some(format!("Source '{}' not readable", ua.src))
            } else if s.size == 0 {
                Some(format!("Invalid archive '{}', the file is 0 bytes", ua.src))
            } else {
                None
            };
            if let Some(f) = fail {
                return Ok(ModuleResult::failed(f));
            }
        }
        if data.as_ref().is_some_and(Vec::is_empty) {
            return Ok(ModuleResult::failed(format!(
                "Invalid archive '{}', the file is 0 bytes",
                ua.src
            )));
        }
        let script = analyse_script(&ua, data.is_some());
        let out = match data {
            Some(d) => ctx.run_with_stdin(&format!("sh -c {}", quote(&script)), Some(&d))?,
            None => run_script(ctx, &script)?,
        };
        let text = out.stdout_str();
        if !out.ok() || !text.contains("@@KP:end") {
            return Ok(ModuleResult::failed(format!(
                "unarchive: analysing the archive failed (rc={}): {}",
                out.rc,
                out.stderr_str().trim()
            )));
        }
        let a = analyse(&text, &ua).map_err(ModuleError::Args)?;
        apply(ctx, &ua, a)
    }
}

fn apply(
    ctx: &mut ModuleCtx<'_>,
    ua: &UnarchiveArgs,
    a: Analysis,
) -> Result<ModuleResult, ModuleError> {
    let src = match &a.tmp {
        Some(t) => format!("{t}/source"),
        None => ua.src.clone(),
    };
    let Some(h) = a.handler else {
        if let Some(t) = &a.tmp {
            run_script(ctx, &format!("rm -rf -- {}", quote(t)))?;
        }
        return Ok(ModuleResult::failed(no_handler_msg(&src, &a)));
    };
    if ctx.check_mode && !h.is_zip() {
        // Ansible's tar handlers do not run in check mode: the task is skipped, nothing checked.
        if let Some(t) = &a.tmp {
            run_script(ctx, &format!("rm -rf -- {}", quote(t)))?;
        }
        let mut r = ModuleResult::ok().set("skipped", true);
        r.msg = Some(format!(
            "remote module ({}) does not support check mode when using gtar",
            "unarchive"
        ));
        return Ok(r);
    }
    let mut r = ModuleResult::ok()
        .set("handler", h.name())
        .set("dest", ua.dest.as_str())
        .set("src", src.as_str());
    let extract_argv = (!a.unarchived && !ctx.check_mode).then(|| {
        if h.is_zip() {
            unzip_argv(&a.unzip, ua, &src)
        } else {
            tar_argv(&a.tar, "--extract", h, ua, &src)
        }
    });
    r.changed = !a.unarchived;
    let at = &ua.attrs;
    let fix = !ctx.check_mode && (at.owner.is_some() || at.group.is_some() || at.mode.is_some());
    if extract_argv.is_some() || a.tmp.is_some() || fix {
        let paths = if fix {
            attr_paths(ua, &a.members)
        } else {
            Vec::new()
        };
        let script = apply_script(ua, extract_argv.as_deref(), &paths, a.tmp.as_deref());
        let out = run_script(ctx, &script)?;
        let text = out.stdout_str();
        let sec = sections(&text);
        if let Some(argv) = &extract_argv {
            let rc: i32 = sec
                .get("xrc")
                .and_then(|x| x.trim().parse().ok())
                .unwrap_or(-1);
            let mut er = Vars::new();
            er.insert("cmd".into(), Value::from(argv.clone()));
            er.insert("rc".into(), rc.into());
            er.insert(
                "out".into(),
                sec.get("xout").cloned().unwrap_or_default().into(),
            );
            er.insert(
                "err".into(),
                sec.get("xerr").cloned().unwrap_or_default().into(),
            );
            r = r.set("extract_results", Value::Object(er));
            if rc != 0 {
                r.failed = true;
                r.changed = false;
                r.msg = Some(format!("failed to unpack {src} to {}", ua.dest));
                return Ok(r);
            }
        }
        if sec.get("attrs").is_some_and(|c| c.trim() == "1") {
            r.changed = true;
        }
        if !out.ok() || !sec.contains_key("end") {
            r.failed = true;
            r.msg = Some(super::plan::failure_msg(&out));
            return Ok(r);
        }
    }
    if ua.list_files {
        r = r.set(
            "files",
            Value::Array(a.members.iter().map(|m| Value::from(m.as_str())).collect()),
        );
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    fn ua(dest: &str) -> UnarchiveArgs {
        UnarchiveArgs {
            dest: dest.into(),
            ..UnarchiveArgs::default()
        }
    }

    #[test]
    fn reads_tar_diff_and_listing_like_ansible() {
        let a = ua("/d");
        let diff = "x/f: Mod time differs\nx/f: Size differs\n";
        assert!(!tar_unarchived(diff, &a, 1000).0);
        assert!(tar_unarchived("x/f: Uid differs\n", &a, 1000).0);
        assert!(!tar_unarchived("x/f: Uid differs\n", &a, 0).0);
        assert!(tar_unarchived("", &a, 0).0);
        let mut m = a.clone();
        m.exclude = vec!["x/b*/".into()];
        let got = tar_members("x/\nx/a\\nb\nx/b1\n/abs\nx/\\303\\251\n", &m).unwrap();
        assert_eq!(got, ["x/", "x/a\nb", "abs", "x/é"]);
        assert_eq!(
            tar_argv("/bin/tar", "--extract", Handler::Tgz, &m, "/s.tgz"),
            [
                "/bin/tar",
                "--extract",
                "-C",
                "/d",
                "-z",
                "--exclude=x/b*",
                "-f",
                "/s.tgz"
            ]
        );
        assert_eq!(zip_time("19700101.000100", 0), 315_532_800);
        assert_eq!(zip_time("20240102.030405", 3600), 1_704_164_645 - 3600);
        assert_eq!(permstr_mode("rwxr-xr-x"), 0o755);
    }

    #[test]
    fn extracts_a_tarball_once() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("top/sub")).unwrap();
        std::fs::write(src.join("top/sub/f"), "x\n").unwrap();
        let tgz = dir.path().join("a.tgz");
        let out = sh(
            &format!("tar -czf {} -C {} top", tgz.display(), src.display()),
            None,
        );
        assert_eq!(out.rc, 0);
        let dest = dir.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let a = args(json!({"src": "a.tgz", "dest": dest.to_str().unwrap(), "list_files": true}));
        let search = vec![dir.path().to_path_buf()];
        let mut r = LocalRemote::default();
        let res = Unarchive
            .execute(&a, &mut ctx(&mut r, false, false, search.clone()))
            .unwrap();
        assert!(res.changed && !res.failed, "{res:?}");
        assert_eq!(res.data["handler"], json!("TgzArchive"));
        assert_eq!(res.data["files"], json!(["top/", "top/sub/", "top/sub/f"]));
        assert_eq!(std::fs::read(dest.join("top/sub/f")).unwrap(), b"x\n");
        assert_eq!(res.data["extract_results"]["rc"], json!(0));
        assert_eq!(r.calls.len(), 3);
        let res = Unarchive
            .execute(&a, &mut ctx(&mut r, false, false, search.clone()))
            .unwrap();
        assert!(!res.changed && !res.failed, "{res:?}");
        // Check mode on a changed tree: skipped as Ansible's tar handlers are, not extracted.
        std::fs::remove_file(dest.join("top/sub/f")).unwrap();
        let res = Unarchive
            .execute(&a, &mut ctx(&mut r, true, false, search.clone()))
            .unwrap();
        assert!(!res.changed && !dest.join("top/sub/f").exists(), "{res:?}");
        assert_eq!(res.data["skipped"], json!(true));
        let bad = args(json!({"src": "a.tgz", "dest": dest.join("nope").to_str().unwrap()}));
        let res = Unarchive
            .execute(&bad, &mut ctx(&mut r, false, false, search))
            .unwrap();
        assert!(res.failed);
        assert!(res.msg.unwrap().ends_with("/nope' must be an existing dir"));
    }
}
