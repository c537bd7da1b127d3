//! Helpers shared by modules: argument access with clear errors, modes, the one-round-trip file
//! probe (shell snippet + parser), atomic file writes, the plan/apply step and unified diffs.
//!
//! Every module follows the same shape: validate arguments, probe the target once, compute a
//! [`Plan`] with a pure function, then [`finish`] applies it (one more round trip) unless in check
//! mode. A task whose target state already holds therefore costs exactly one round trip.

use std::collections::HashMap;

use super::{FileDiff, ModuleCtx, ModuleError, ModuleResult};
use crate::shell::{base64_lines, quote};
use crate::value::{as_bool, Value, Vars};

// ---------------------------------------------------------------------------------------------
// Arguments

/// A bad-argument error prefixed with the module name.
pub fn arg_err(module: &str, msg: impl std::fmt::Display) -> ModuleError {
    ModuleError::Args(format!("{module}: {msg}"))
}

/// A string parameter (numbers and booleans are accepted and rendered as text).
pub fn arg_str(args: &Vars, module: &str, key: &str) -> Result<Option<String>, ModuleError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(arg_err(
            module,
            format!(
                "parameter '{key}' must be a string, got {}",
                type_name(other)
            ),
        )),
    }
}

/// The first present of several alias names (`path`, `dest`, `name`).
pub fn arg_str_any(
    args: &Vars,
    module: &str,
    keys: &[&str],
) -> Result<Option<String>, ModuleError> {
    for k in keys {
        if let Some(v) = arg_str(args, module, k)? {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// A required string parameter (first of `keys` is the canonical name used in the error).
pub fn req_str(args: &Vars, module: &str, keys: &[&str]) -> Result<String, ModuleError> {
    match arg_str_any(args, module, keys)? {
        Some(v) => Ok(v),
        None => Err(arg_err(
            module,
            format!("missing required parameter '{}'", keys[0]),
        )),
    }
}

/// A boolean parameter with Ansible's coercion (`yes/no/true/false/on/off/1/0`).
pub fn arg_bool(args: &Vars, module: &str, key: &str, default: bool) -> Result<bool, ModuleError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => as_bool(v).ok_or_else(|| {
            arg_err(
                module,
                format!(
                    "parameter '{key}' must be a boolean, got '{}'",
                    crate::value::to_display(v)
                ),
            )
        }),
    }
}

/// A parameter restricted to a set of values.
pub fn arg_choice(
    args: &Vars,
    module: &str,
    key: &str,
    choices: &[&str],
) -> Result<Option<String>, ModuleError> {
    match arg_str(args, module, key)? {
        None => Ok(None),
        Some(v) if choices.contains(&v.as_str()) => Ok(Some(v)),
        Some(v) => Err(arg_err(
            module,
            format!(
                "parameter '{key}' must be one of: {}; got '{v}'",
                choices.join(", ")
            ),
        )),
    }
}

/// A list of strings: a YAML list or a comma-separated string.
pub fn arg_list(args: &Vars, module: &str, key: &str) -> Result<Option<Vec<String>>, ModuleError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                Value::Number(_) | Value::Bool(_) => Ok(v.to_string()),
                other => Err(arg_err(
                    module,
                    format!(
                        "parameter '{key}' must be a list of strings, found {}",
                        type_name(other)
                    ),
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(Value::String(s)) => Ok(Some(
            s.split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        )),
        Some(other) => Err(arg_err(
            module,
            format!("parameter '{key}' must be a list, got {}", type_name(other)),
        )),
    }
}

/// Fail when two mutually exclusive parameters are both set.
pub fn exclusive(args: &Vars, module: &str, a: &str, b: &str) -> Result<(), ModuleError> {
    let set = |k: &str| args.get(k).is_some_and(|v| !v.is_null());
    if set(a) && set(b) {
        return Err(arg_err(
            module,
            format!("parameters are mutually exclusive: {a}|{b}"),
        ));
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dict",
    }
}

// ---------------------------------------------------------------------------------------------
// Modes

/// A wanted file mode.
///
/// Integers are the numeric mode, exactly as in Ansible: `mode: 420` is 0o644, `mode: 493` is
/// 0o755. knockplay's YAML loader keeps `mode: 0644` as the string "0644" (Ansible's YAML 1.1 reads
/// it as octal too), so the common spelling works; `mode: 644` is the decimal 644 = 0o1204 in
/// Ansible and here, and [`mode_warning`] says so in the result's `warnings`.
/// Strings are octal (`'0644'`, `'644'`), symbolic (`u=rw,g=r,o=r`, `u+x`, `a-w`) or `preserve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Octal(u32),
    Symbolic(String),
    /// `copy mode=preserve`: the local source's mode.
    Preserve,
}

impl Mode {
    /// The numeric mode this results in when applied to a file whose mode is `current`.
    pub fn resolve(&self, current: u32, is_dir: bool) -> u32 {
        match self {
            Mode::Octal(m) => *m,
            // Validated at parse time, so applying cannot fail here.
            Mode::Symbolic(s) => apply_symbolic(current, s, is_dir).unwrap_or(current),
            Mode::Preserve => current,
        }
    }

    /// The argument for `chmod -R` (symbolic specs get an explicit `a` where the who is empty so
    /// that chmod does not apply its umask, matching Ansible).
    pub fn chmod_recursive_arg(&self) -> String {
        match self {
            Mode::Octal(m) => format!("{m:04o}"),
            Mode::Symbolic(s) => s
                .split(',')
                .map(|c| {
                    if c.starts_with(['u', 'g', 'o', 'a']) {
                        c.to_string()
                    } else {
                        format!("a{c}")
                    }
                })
                .collect::<Vec<_>>()
                .join(","),
            Mode::Preserve => String::new(),
        }
    }
}

/// Parse the `mode` parameter (see [`Mode`] for how integers are read).
pub fn arg_mode(args: &Vars, module: &str, key: &str) -> Result<Option<Mode>, ModuleError> {
    let bad = |what: &str| {
        arg_err(
            module,
            format!("parameter '{key}' {what}; use an octal string like '0644' or a symbolic mode like 'u=rw,g=r,o=r'"),
        )
    };
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            let Some(i) = n.as_u64() else {
                return Err(bad(&format!("is not a valid mode: {n}")));
            };
            let m = u32::try_from(i).map_err(|_| bad("is not a valid mode"))?;
            if m > 0o7777 {
                return Err(bad(&format!("is out of range: {n}")));
            }
            Ok(Some(Mode::Octal(m)))
        }
        Some(Value::String(s)) => {
            let s = s.trim();
            if s == "preserve" {
                return Ok(Some(Mode::Preserve));
            }
            if !s.is_empty() && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
                let m = u32::from_str_radix(s, 8).map_err(|_| bad("is not a valid mode"))?;
                if m > 0o7777 {
                    return Err(bad(&format!("is out of range: '{s}'")));
                }
                return Ok(Some(Mode::Octal(m)));
            }
            apply_symbolic(0, s, false)
                .map_err(|e| bad(&format!("is not a valid mode '{s}' ({e})")))?;
            Ok(Some(Mode::Symbolic(s.to_string())))
        }
        Some(other) => Err(bad(&format!("must be a string, got {}", type_name(other)))),
    }
}

/// Ansible's classic trap: `mode: 644` (an integer that looks like octal digits) means the
/// decimal 644 = 0o1204. Returns a warning for the result when the argument is such an integer.
pub fn mode_warning(args: &Vars) -> Option<String> {
    let i = args.get("mode")?.as_u64()?;
    let digits = i.to_string();
    (digits.len() >= 3 && digits.bytes().all(|b| (b'0'..=b'7').contains(&b))).then(|| {
        format!(
            "mode {i} is a decimal integer (= 0o{i:o}); write mode: '0{i}' (quoted, leading zero) for the octal mode"
        )
    })
}

/// Add the [`mode_warning`] (if any) to a result's `warnings` list.
pub fn with_mode_warning(args: &Vars, mut r: ModuleResult) -> ModuleResult {
    if let Some(w) = mode_warning(args) {
        r.data
            .insert("warnings".into(), Value::Array(vec![Value::from(w)]));
    }
    r
}

/// Apply a symbolic mode (`u=rw,g+x,o-rwx,a+X,g=u`) to `current`, as Ansible does (an empty
/// "who" means `a`, `X` means x for directories or when anyone already has x).
pub fn apply_symbolic(current: u32, spec: &str, is_dir: bool) -> Result<u32, String> {
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let chars: Vec<char> = clause.chars().collect();
        let mut i = 0;
        let mut who = String::new();
        while i < chars.len() && "ugoa".contains(chars[i]) {
            who.push(chars[i]);
            i += 1;
        }
        if who.is_empty() || who.contains('a') {
            who = "ugo".to_string();
        }
        if i >= chars.len() {
            return Err(format!("missing operator in '{clause}'"));
        }
        while i < chars.len() {
            let op = chars[i];
            if !"+-=".contains(op) {
                return Err(format!("bad operator '{op}' in '{clause}'"));
            }
            i += 1;
            let start = i;
            while i < chars.len() && !"+-=".contains(chars[i]) {
                i += 1;
            }
            let perms: String = chars[start..i].iter().collect();
            let prev = mode;
            for w in who.chars() {
                let bits = class_bits(w, &perms, prev, is_dir)?;
                let class_mask = match w {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    _ => 0o1007,
                };
                mode = match op {
                    '+' => mode | bits,
                    '-' => mode & !bits,
                    _ => (mode & !class_mask) | bits,
                };
            }
        }
    }
    Ok(mode)
}

/// The bits that `perms` means for class `w` (u, g or o).
fn class_bits(w: char, perms: &str, current: u32, is_dir: bool) -> Result<u32, String> {
    let shift = match w {
        'u' => 6,
        'g' => 3,
        _ => 0,
    };
    let mut bits = 0;
    for p in perms.chars() {
        bits |= match p {
            'r' => 4 << shift,
            'w' => 2 << shift,
            'x' => 1 << shift,
            'X' if is_dir || current & 0o111 != 0 => 1 << shift,
            'X' => 0,
            's' if w == 'u' => 0o4000,
            's' if w == 'g' => 0o2000,
            's' => 0,
            't' if w == 'o' => 0o1000,
            't' => 0,
            'u' | 'g' | 'o' => {
                let from = match p {
                    'u' => 6,
                    'g' => 3,
                    _ => 0,
                };
                ((current >> from) & 7) << shift
            }
            other => return Err(format!("bad permission '{other}'")),
        };
    }
    Ok(bits)
}

/// Wanted ownership and permissions of a path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attrs {
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl Attrs {
    pub fn from_args(args: &Vars, module: &str) -> Result<Self, ModuleError> {
        Ok(Self {
            mode: arg_mode(args, module, "mode")?,
            owner: arg_str(args, module, "owner")?.filter(|s| !s.is_empty()),
            group: arg_str(args, module, "group")?.filter(|s| !s.is_empty()),
        })
    }

    /// Shell commands that bring `path` (currently `state`) to these attributes; empty when it
    /// already has them. `-h` variants act on a symlink itself.
    pub fn fix_commands(&self, path: &str, state: &FileState, on_link: bool) -> Vec<String> {
        let q = quote(path);
        let h = if on_link { "-h " } else { "" };
        let mut cmds = Vec::new();
        if let Some(o) = &self.owner {
            if !state.owner_is(o) {
                cmds.push(format!("chown {h}{} {q}", quote(o)));
            }
        }
        if let Some(g) = &self.group {
            if !state.group_is(g) {
                cmds.push(format!("chgrp {h}{} {q}", quote(g)));
            }
        }
        // Symlink permissions are meaningless on Linux; never chmod through a link we act on.
        if let (Some(m), false) = (&self.mode, on_link) {
            let want = m.resolve(state.mode, state.kind == Kind::Directory);
            if want != state.mode && *m != Mode::Preserve {
                cmds.push(format!("chmod {want:04o} {q}"));
            }
        }
        cmds
    }
}

// ---------------------------------------------------------------------------------------------
// Probe: one shell command reporting the state of several paths

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
pub fn probe_script(reqs: &[ProbeReq]) -> String {
    let mut s = String::new();
    for (i, r) in reqs.iter().enumerate() {
        let l = if r.follow { "-L " } else { "" };
        s.push_str(&format!("p={}; echo @@{i}; ", quote(&r.path)));
        if r.follow {
            s.push_str("if [ -L \"$p\" ]; then echo islnk=1; fi; k=; ");
        } else {
            s.push_str("if [ -L \"$p\" ]; then k=link; echo islnk=1; else k=; fi; ");
        }
        s.push_str(
            "if [ -n \"$k\" ]; then :; elif [ -d \"$p\" ]; then k=directory; \
             elif [ -f \"$p\" ]; then k=file; elif [ -e \"$p\" ]; then k=other; else k=absent; fi; \
             echo kind=$k; \
             if [ -L \"$p\" ]; then printf 'target=%s\\n' \"$(readlink -- \"$p\")\"; fi; ",
        );
        s.push_str(&format!(
            "if [ $k != absent ]; then printf 'real=%s\\n' \"$(readlink -f -- \"$p\")\"; \
             stat {l}-c 'mode=%a|uid=%u|gid=%g|owner=%U|group=%G|size=%s|mtime=%Y|atime=%X|ctime=%Z|inode=%i|dev=%d|nlink=%h|ftype=%F' -- \"$p\"; \
             [ -r \"$p\" ] && echo r=1; [ -w \"$p\" ] && echo w=1; [ -x \"$p\" ] && echo x=1; fi; "
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
                "if [ $(stat -L -c %s -- \"$p\") -le {max} ]; then \
                 if c=$(base64 -w0 < \"$p\"); then echo content=$c; else echo unreadable=1; fi; fi; "
            ));
        }
        if !file_part.is_empty() {
            // `-f` follows links: a link to a file reports the file's checksum/content.
            s.push_str(&format!("if [ -f \"$p\" ]; then {file_part}fi; "));
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
pub fn run_script(
    ctx: &mut ModuleCtx<'_>,
    script: &str,
) -> Result<crate::ssh::ExecOutput, crate::ssh::SshError> {
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

// ---------------------------------------------------------------------------------------------
// Writes

/// How to write a file's content atomically.
#[derive(Debug, Clone, Default)]
pub struct WriteSpec {
    pub dest: String,
    /// Wanted attributes of the result.
    pub attrs: Attrs,
    /// The current state of `dest` (attributes are preserved when it exists and none are given).
    pub existing: Option<FileState>,
    /// Keep a timestamped copy of the old file (`dest.PID.YYYY-MM-DD@HH:MM:SS~`), printed as
    /// `backup_file=...`.
    pub backup: bool,
    /// Create missing parent directories first.
    pub mkdirs: bool,
    /// Resolved mode from a local source (`mode=preserve`).
    pub preserve_mode: Option<u32>,
    /// Command to validate the temp file with (`%s` replaced by its path).
    pub validate: Option<String>,
    /// Where the bytes come from (stdin by default).
    pub source: WriteSource,
}

/// Where [`write_file_script`] reads the new content from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WriteSource {
    /// The command's stdin (one file per round trip, no encoding overhead).
    #[default]
    Stdin,
    /// A base64 here-document inside the script (several files in one script).
    Inline(Vec<u8>),
    /// A file already on the target (`remote_src`).
    Remote(String),
}

/// One shell command that reads the new content from stdin into a temp file in the destination
/// directory, sets its mode/owner/group, optionally backs up and validates, and renames it over
/// `dest` atomically. Pure.
pub fn write_file_script(spec: &WriteSpec) -> String {
    let dest = &spec.dest;
    let (dir, base) = split_path(dest);
    let mut s = String::new();
    s.push_str(&format!("d={}; ", quote(dest)));
    if spec.mkdirs {
        s.push_str(&format!("mkdir -p -- {} || exit 1; ", quote(&dir)));
    }
    s.push_str(&format!(
        "t=$(mktemp {}) || exit 1; ",
        quote(&format!("{dir}/.{base}.kp.XXXXXX"))
    ));
    let mut steps = vec![match &spec.source {
        WriteSource::Stdin => "cat > \"$t\"".to_string(),
        WriteSource::Inline(_) => "base64 -d > \"$t\" <<'__KP_EOF__'".to_string(),
        WriteSource::Remote(src) => format!("cat -- {} > \"$t\"", quote(src)),
    }];
    let existing = spec.existing.as_ref().filter(|e| e.kind == Kind::File);
    let mode = match (&spec.attrs.mode, spec.preserve_mode) {
        (Some(Mode::Preserve), Some(m)) => Some(m),
        (Some(Mode::Preserve), None) => None,
        (Some(m), _) => Some(m.resolve(existing.map_or(0o644, |e| e.mode), false)),
        (None, _) => None,
    };
    match (mode, existing) {
        (Some(m), _) => steps.push(format!("chmod {m:04o} \"$t\"")),
        (None, Some(_)) => steps.push("chmod --reference=\"$d\" \"$t\"".into()),
        // mktemp creates 0600; a new file gets the usual 0666 & ~umask.
        (None, None) => steps.push("chmod $(printf %o $((0666 & ~$(umask)))) \"$t\"".into()),
    }
    if existing.is_some() && (spec.attrs.owner.is_none() || spec.attrs.group.is_none()) {
        // Keep the old owner/group (only possible as root; harmless to try otherwise).
        steps.push("{ chown --reference=\"$d\" \"$t\" 2>/dev/null || :; }".into());
    }
    if let Some(o) = &spec.attrs.owner {
        steps.push(format!("chown {} \"$t\"", quote(o)));
    }
    if let Some(g) = &spec.attrs.group {
        steps.push(format!("chgrp {} \"$t\"", quote(g)));
    }
    if let Some(v) = &spec.validate {
        steps.push(format!("{{ {}; }}", v.replace("%s", "\"$t\"")));
    }
    if spec.backup && existing.is_some() {
        steps.push(
            "b=\"$d.$$.$(date +%Y-%m-%d@%H:%M:%S)~\" && cp -p -- \"$d\" \"$b\" && printf 'backup_file=%s\\n' \"$b\"".into(),
        );
    }
    steps.push("mv -fT -- \"$t\" \"$d\"".into());
    s.push_str(&format!(
        "{{ {}; }} || {{ rc=$?; rm -f -- \"$t\"; exit $rc; }}",
        steps.join(" && ")
    ));
    if let WriteSource::Inline(data) = &spec.source {
        s.push('\n');
        s.push_str(&base64_lines(data));
        s.push_str("__KP_EOF__\n");
    }
    s
}

/// `("/etc", "hosts")` for `/etc/hosts`; `(".", "x")` for a bare name.
pub fn split_path(path: &str) -> (String, String) {
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    match trimmed.rfind('/') {
        Some(0) => ("/".into(), trimmed[1..].to_string()),
        Some(i) => (trimmed[..i].to_string(), trimmed[i + 1..].to_string()),
        None => (".".into(), trimmed.to_string()),
    }
}

/// The parent directory of `path` (`/` for `/x`, `.` for a bare name).
pub fn dirname(path: &str) -> String {
    split_path(path).0
}

/// The last component of `path`.
pub fn basename(path: &str) -> String {
    split_path(path).1
}

/// Hex sha256 of bytes.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

// ---------------------------------------------------------------------------------------------
// Plan and apply

/// What a module decided, purely from its arguments and the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The target already is in the wanted state.
    NoChange,
    /// One shell command (optionally fed `stdin`) brings it there.
    Change {
        script: String,
        stdin: Option<Vec<u8>>,
        diff: Option<FileDiff>,
    },
}

impl Plan {
    pub fn commands(cmds: Vec<String>) -> Plan {
        if cmds.is_empty() {
            Plan::NoChange
        } else {
            Plan::Change {
                script: cmds.join(" && "),
                stdin: None,
                diff: None,
            }
        }
    }
    pub fn is_change(&self) -> bool {
        matches!(self, Plan::Change { .. })
    }
}

/// A plan plus the result keys to report (`dest`, `path`, `msg`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub plan: Plan,
    pub result: ModuleResult,
}

impl Outcome {
    pub fn new(plan: Plan) -> Self {
        Self {
            plan,
            result: ModuleResult::ok(),
        }
    }
    pub fn set(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.result.data.insert(key.to_string(), v.into());
        self
    }
    pub fn msg(mut self, msg: impl Into<String>) -> Self {
        self.result.msg = Some(msg.into());
        self
    }
}

/// Apply an outcome: nothing for `NoChange`; report `changed` without touching the target in check
/// mode; otherwise run the script (one round trip). A failing script fails the task with its rc,
/// stdout and stderr. `key=value` lines the script prints for `backup_file` are added to the result.
pub fn finish(ctx: &mut ModuleCtx<'_>, outcome: Outcome) -> Result<ModuleResult, ModuleError> {
    let Outcome { plan, mut result } = outcome;
    let Plan::Change {
        script,
        stdin,
        diff,
    } = plan
    else {
        return Ok(result);
    };
    result.changed = true;
    if ctx.diff {
        if let Some(d) = diff {
            result.diff.push(d);
        }
    }
    if ctx.check_mode {
        return Ok(result);
    }
    let out = match stdin {
        Some(data) => ctx.run_with_stdin(&script, Some(&data))?,
        None => run_script(ctx, &script)?,
    };
    if !out.ok() {
        let mut r = ModuleResult::failed(failure_msg(&out)).with_output(&out);
        r.data = result.data;
        return Ok(r);
    }
    for line in out.stdout_str().lines() {
        if let Some(b) = line.strip_prefix("backup_file=") {
            result.data.insert("backup_file".into(), Value::from(b));
        }
    }
    Ok(result)
}

/// A one-line message for a failed remote command: its stderr (or stdout) trimmed.
pub fn failure_msg(out: &crate::ssh::ExecOutput) -> String {
    let err = out.stderr_str();
    let text = if err.trim().is_empty() {
        out.stdout_str()
    } else {
        err
    };
    let text = text.trim();
    if text.is_empty() {
        format!("command failed with rc={}", out.rc)
    } else {
        text.to_string()
    }
}

/// Render a [`FileDiff`] as a unified diff (`--- before: path` / `+++ after: path`).
pub fn unified_diff(d: &FileDiff) -> String {
    similar::TextDiff::from_lines(&d.before, &d.after)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("before: {}", d.path),
            &format!("after: {}", d.path),
        )
        .to_string()
}

/// Text for a diff side: the content, or a placeholder for binary data (as Ansible does).
pub fn diff_text(data: &[u8]) -> String {
    if data.contains(&0) {
        "(binary)\n".to_string()
    } else {
        String::from_utf8_lossy(data).into_owned()
    }
}

/// Parse `key=value` lines (used for small structured outputs).
pub fn kv_lines(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A word for `sh` that keeps glob characters (`*?[]`) active and quotes everything else, so
/// `creates: /etc/*.conf` matches like Ansible's glob while spaces stay literal.
pub fn glob_word(pattern: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    for c in pattern.chars() {
        if "*?[]".contains(c) {
            if !run.is_empty() {
                out.push_str(&quote(&run));
                run.clear();
            }
            out.push(c);
        } else {
            run.push(c);
        }
    }
    if !run.is_empty() {
        out.push_str(&quote(&run));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Test support

#[cfg(test)]
pub mod testing {
    //! Fakes for module tests: a scripted remote, a remote that runs commands with the local
    //! `sh` (real shell + coreutils, no network), and a trivial templater.

    use std::collections::VecDeque;
    use std::path::PathBuf;
    use std::time::Duration;

    use super::super::{ModuleCtx, Templater};
    use crate::ssh::{ExecOutput, Remote, SshError};
    use crate::value::Vars;

    /// Answers commands from a script of responses, recording every command it got.
    #[derive(Default)]
    pub struct FakeRemote {
        pub responses: VecDeque<ExecOutput>,
        pub seen: Vec<(String, Option<Vec<u8>>)>,
    }

    impl FakeRemote {
        pub fn new(responses: Vec<ExecOutput>) -> Self {
            Self {
                responses: responses.into(),
                seen: Vec::new(),
            }
        }
    }

    impl Remote for FakeRemote {
        fn exec(
            &mut self,
            cmd: &str,
            stdin: Option<&[u8]>,
            _timeout: Option<Duration>,
        ) -> Result<ExecOutput, SshError> {
            self.seen.push((cmd.to_string(), stdin.map(|s| s.to_vec())));
            self.responses.pop_front().ok_or(SshError::Session {
                addr: "fake".into(),
                reason: format!("no scripted response for: {cmd}"),
            })
        }
        fn name(&self) -> &str {
            "fake"
        }
    }

    /// Runs every command with the local `/bin/sh` (counts round trips).
    #[derive(Default)]
    pub struct LocalRemote {
        pub calls: Vec<String>,
    }

    impl Remote for LocalRemote {
        fn exec(
            &mut self,
            cmd: &str,
            stdin: Option<&[u8]>,
            _timeout: Option<Duration>,
        ) -> Result<ExecOutput, SshError> {
            use std::io::Write;
            use std::process::{Command, Stdio};
            self.calls.push(cmd.to_string());
            let mut child = Command::new("/bin/sh")
                .arg("-c")
                .arg(cmd)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| SshError::Session {
                    addr: "local".into(),
                    reason: e.to_string(),
                })?;
            let mut pipe = child.stdin.take();
            let data = stdin.map(|s| s.to_vec()).unwrap_or_default();
            let writer = std::thread::spawn(move || {
                if let Some(p) = pipe.as_mut() {
                    let _ = p.write_all(&data);
                }
            });
            let out = child.wait_with_output().map_err(|e| SshError::Session {
                addr: "local".into(),
                reason: e.to_string(),
            })?;
            let _ = writer.join();
            Ok(ExecOutput {
                rc: out.status.code().unwrap_or(-1),
                stdout: out.stdout,
                stderr: out.stderr,
            })
        }
        fn name(&self) -> &str {
            "local"
        }
    }

    /// Replaces `{{ name }}` with the template name, enough to see rendering happened.
    pub struct FakeTemplater;
    impl Templater for FakeTemplater {
        fn render(&self, source: &str, name: &str) -> Result<String, String> {
            if source.contains("{{ fail }}") {
                return Err(format!("'fail' is undefined in {name}"));
            }
            Ok(source.replace("{{ name }}", name))
        }
    }

    pub static NO_FACTS: std::sync::LazyLock<Vars> = std::sync::LazyLock::new(Vars::new);

    /// A context over `remote` with the given search dirs.
    pub fn ctx<'a>(
        remote: &'a mut dyn Remote,
        check: bool,
        diff: bool,
        search: Vec<PathBuf>,
    ) -> ModuleCtx<'a> {
        ModuleCtx {
            remote,
            become_: None,
            env: Vec::new(),
            check_mode: check,
            diff,
            facts: &NO_FACTS,
            file_search: search.clone(),
            template_search: search,
            templater: &FakeTemplater,
            timeout: None,
        }
    }

    pub fn out(rc: i32, stdout: &str) -> ExecOutput {
        ExecOutput {
            rc,
            stdout: stdout.as_bytes().to_vec(),
            stderr: Vec::new(),
        }
    }

    /// Build args from JSON.
    pub fn args(v: serde_json::Value) -> Vars {
        match v {
            serde_json::Value::Object(m) => m,
            _ => panic!("args must be an object"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn bool_args_name_the_parameter() {
        let a = args(json!({"force": "maybe", "backup": "yes"}));
        assert!(arg_bool(&a, "copy", "backup", false).unwrap());
        let e = arg_bool(&a, "copy", "force", true).unwrap_err().to_string();
        assert_eq!(e, "copy: parameter 'force' must be a boolean, got 'maybe'");
        assert!(arg_bool(&a, "copy", "missing", true).unwrap());
    }

    #[test]
    fn string_args_and_requirements() {
        let a = args(json!({"dest": "/x", "n": 5, "l": [1]}));
        assert_eq!(arg_str(&a, "m", "n").unwrap().as_deref(), Some("5"));
        assert!(arg_str(&a, "m", "l")
            .unwrap_err()
            .to_string()
            .contains("must be a string"));
        assert_eq!(req_str(&a, "m", &["path", "dest"]).unwrap(), "/x");
        assert_eq!(
            req_str(&a, "m", &["src"]).unwrap_err().to_string(),
            "m: missing required parameter 'src'"
        );
        let e = arg_choice(
            &args(json!({"state": "bogus"})),
            "file",
            "state",
            &["file", "absent"],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "file: parameter 'state' must be one of: file, absent; got 'bogus'"
        );
    }

    #[test]
    fn modes_parse_like_their_authors_meant() {
        let m = |v: serde_json::Value| arg_mode(&args(json!({ "mode": v })), "copy", "mode");
        assert_eq!(m(json!("0644")).unwrap(), Some(Mode::Octal(0o644)));
        assert_eq!(m(json!("644")).unwrap(), Some(Mode::Octal(0o644)));
        assert_eq!(m(json!("01777")).unwrap(), Some(Mode::Octal(0o1777)));
        // Integers are numeric modes, as in Ansible; octal-looking ones get a warning.
        assert_eq!(m(json!(420)).unwrap(), Some(Mode::Octal(0o644)));
        assert_eq!(m(json!(493)).unwrap(), Some(Mode::Octal(0o755)));
        assert_eq!(m(json!(644)).unwrap(), Some(Mode::Octal(0o1204)));
        let w = mode_warning(&args(json!({"mode": 644}))).unwrap();
        assert!(w.contains("0o1204") && w.contains("'0644'"), "{w}");
        assert_eq!(mode_warning(&args(json!({"mode": 493}))), None);
        assert_eq!(mode_warning(&args(json!({"mode": "0644"}))), None);
        assert_eq!(m(json!("preserve")).unwrap(), Some(Mode::Preserve));
        assert_eq!(
            m(json!("u=rw,g=r,o=r")).unwrap(),
            Some(Mode::Symbolic("u=rw,g=r,o=r".into()))
        );
        assert!(m(json!("0999")).is_err());
        assert!(m(json!("u=rwz"))
            .unwrap_err()
            .to_string()
            .contains("'mode'"));
        assert!(m(json!(77777)).is_err());
    }

    #[test]
    fn symbolic_modes_apply_like_ansible() {
        let cases: &[(u32, &str, bool, u32)] = &[
            (0o644, "u+x", false, 0o744),
            (0o777, "go-w", false, 0o755),
            (0o000, "u=rw,g=r,o=r", false, 0o644),
            (0o600, "a+r", false, 0o644),
            (0o600, "+r", false, 0o644),
            (0o644, "a+X", false, 0o644),
            (0o744, "a+X", false, 0o755),
            (0o644, "a+X", true, 0o755),
            (0o640, "o=g", false, 0o644),
            (0o755, "u+s", false, 0o4755),
            (0o755, "g+s,o+t", false, 0o3755),
            (0o4755, "u=rwx", false, 0o755),
            (0o644, "u=rwx,g-r+x", false, 0o714),
        ];
        for (cur, spec, dir, want) in cases {
            assert_eq!(
                apply_symbolic(*cur, spec, *dir).unwrap(),
                *want,
                "{cur:o} {spec} dir={dir}"
            );
        }
        assert!(apply_symbolic(0, "u", false).is_err());
        assert!(apply_symbolic(0, "u*x", false).is_err());
        assert_eq!(
            Mode::Symbolic("u=rwX,+r".into()).chmod_recursive_arg(),
            "u=rwX,a+r"
        );
    }

    #[test]
    fn attrs_fix_only_what_differs() {
        let st = FileState {
            kind: Kind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            owner: "root".into(),
            group: "root".into(),
            ..FileState::default()
        };
        let a = Attrs {
            mode: Some(Mode::Octal(0o644)),
            owner: Some("0".into()),
            group: Some("root".into()),
        };
        assert!(a.fix_commands("/f", &st, false).is_empty());
        let a = Attrs {
            mode: Some(Mode::Symbolic("u+x".into())),
            owner: Some("www-data".into()),
            group: None,
        };
        assert_eq!(
            a.fix_commands("/a b", &st, false),
            vec!["chown www-data '/a b'", "chmod 0744 '/a b'"]
        );
    }

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

    #[test]
    fn write_script_is_atomic_and_keeps_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.txt");
        let d = dest.to_str().unwrap().to_string();
        let mut r = LocalRemote::default();
        let run = |r: &mut LocalRemote, spec: &WriteSpec, data: &[u8]| {
            crate::ssh::Remote::exec(r, &write_file_script(spec), Some(data), None).unwrap()
        };
        // New file with an explicit mode.
        let spec = WriteSpec {
            dest: d.clone(),
            attrs: Attrs {
                mode: Some(Mode::Octal(0o640)),
                ..Attrs::default()
            },
            ..WriteSpec::default()
        };
        let o = run(&mut r, &spec, b"one\n");
        assert_eq!(o.rc, 0, "{}", o.stderr_str());
        assert_eq!(std::fs::read(&dest).unwrap(), b"one\n");
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&dest), 0o640);
        // Existing file, no mode given: mode kept; backup made.
        let existing = FileState {
            kind: Kind::File,
            mode: 0o640,
            ..FileState::default()
        };
        let spec = WriteSpec {
            dest: d.clone(),
            existing: Some(existing),
            backup: true,
            ..WriteSpec::default()
        };
        let o = run(&mut r, &spec, b"two\n");
        assert_eq!(o.rc, 0, "{}", o.stderr_str());
        assert_eq!(std::fs::read(&dest).unwrap(), b"two\n");
        assert_eq!(mode(&dest), 0o640);
        let backup = kv_lines(&o.stdout_str())["backup_file"].clone();
        assert!(
            backup.starts_with(&format!("{d}.")) && backup.ends_with('~'),
            "{backup}"
        );
        assert_eq!(std::fs::read(&backup).unwrap(), b"one\n");
        // A failing validate leaves the old file and no temp files behind.
        let spec = WriteSpec {
            dest: d.clone(),
            validate: Some("grep -q good %s".into()),
            ..WriteSpec::default()
        };
        let o = run(&mut r, &spec, b"bad\n");
        assert_ne!(o.rc, 0);
        assert_eq!(std::fs::read(&dest).unwrap(), b"two\n");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".kp."))
            .collect();
        assert!(leftovers.is_empty());
        // New file without mode: 0666 & ~umask (the test process umask is inherited).
        let spec = WriteSpec {
            dest: dir.path().join("sub/new").to_str().unwrap().into(),
            mkdirs: true,
            ..WriteSpec::default()
        };
        let o = run(&mut r, &spec, b"");
        assert_eq!(o.rc, 0, "{}", o.stderr_str());
        let umask = std::process::Command::new("sh")
            .arg("-c")
            .arg("umask")
            .output()
            .unwrap();
        let umask = u32::from_str_radix(String::from_utf8_lossy(&umask.stdout).trim(), 8).unwrap();
        assert_eq!(mode(&dir.path().join("sub/new")), 0o666 & !umask);
    }

    #[test]
    fn paths_split() {
        assert_eq!(split_path("/etc/hosts"), ("/etc".into(), "hosts".into()));
        assert_eq!(split_path("/x"), ("/".into(), "x".into()));
        assert_eq!(split_path("x"), (".".into(), "x".into()));
        assert_eq!(split_path("/a/b/"), ("/a".into(), "b".into()));
    }

    #[test]
    fn glob_words_keep_wildcards() {
        assert_eq!(glob_word("/etc/*.conf"), "/etc/*.conf");
        assert_eq!(glob_word("/my dir/x?"), "'/my dir/x'?");
    }

    #[test]
    fn diffs_render_unified() {
        let d = FileDiff {
            path: "/f".into(),
            before: "a\nb\n".into(),
            after: "a\nc\n".into(),
        };
        let u = unified_diff(&d);
        assert!(u.contains("--- before: /f"));
        assert!(u.contains("+++ after: /f"));
        assert!(u.contains("-b\n+c\n"));
    }
}
