//! `find`: list the files below some directories that match names, types, ages, sizes, contents
//! and modes, as Ansible's find module reports them (`files`, `matched`, `examined`, `msg`,
//! `skipped_paths`; never a change).
//!
//! One round trip: GNU find walks each path (`-L` with `follow`, as deep as `recurse`/`depth`
//! need) and `stat` reports every entry with lstat, as Ansible does, in NUL-separated records;
//! `contains` is answered by `grep` over the regular files and checksums by `sha1sum` (or the
//! chosen algorithm). Everything else (patterns, excludes, hidden, file type, age, size, mode) is
//! decided here, by [`select`], from the parsed records. Names from the target are hostile: the
//! stream is NUL-separated and capped in entries.

use regex::Regex;

use super::mode::apply_symbolic;
use super::probe::run_script;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::{Value, Vars};

pub struct Find;

const SPEC: Spec = Spec::new(
    "find",
    &[
        Param::list("paths").required().aliases(&["name", "path"]),
        Param::list("patterns").aliases(&["pattern"]),
        Param::list("excludes").aliases(&["exclude"]),
        Param::str("contains"),
        Param::bool("read_whole_file").default("false"),
        Param::str("file_type")
            .choices(&["any", "directory", "file", "link"])
            .default("file"),
        Param::str("age"),
        Param::str("age_stamp")
            .choices(&["atime", "ctime", "mtime"])
            .default("mtime"),
        Param::str("size"),
        Param::bool("recurse").default("false"),
        Param::bool("hidden").default("false"),
        Param::bool("follow").default("false"),
        Param::bool("get_checksum").default("false"),
        Param::str("checksum_algorithm")
            .choices(&["md5", "sha1", "sha224", "sha256", "sha384", "sha512"])
            .default("sha1")
            .aliases(&["checksum", "checksum_algo"]),
        Param::bool("use_regex").default("false"),
        Param::int("depth"),
        Param::raw("mode"),
        Param::bool("exact_mode").default("true"),
        Param::str("encoding").refused("file contents are searched with the target's grep"),
        Param::int("limit").refused("which matches are kept depends on Python's walk order"),
    ],
);

/// Most entries one run reports (a larger listing fails the task rather than the controller).
pub const MAX_ENTRIES: usize = 200_000;

/// The validated arguments.
#[derive(Debug, Clone, Default)]
pub struct FindArgs {
    pub paths: Vec<String>,
    pub patterns: Vec<Regex>,
    pub excludes: Vec<Regex>,
    /// `contains`, translated to a POSIX extended regex for grep.
    pub contains: Option<String>,
    pub contains_icase: bool,
    pub read_whole_file: bool,
    pub file_type: String,
    /// Seconds; negative means "younger than".
    pub age: Option<i64>,
    pub age_stamp: String,
    /// Bytes; negative means "at most".
    pub size: Option<i64>,
    pub recurse: bool,
    pub hidden: bool,
    pub follow: bool,
    pub checksum: Option<&'static str>,
    pub depth: Option<i64>,
    pub mode: Option<u32>,
    pub exact_mode: bool,
}

impl FindArgs {
    pub fn from_args(args: &Args<'_>) -> Result<Self, ModuleError> {
        let use_regex = args.bool("use_regex")?;
        let compile = |list: Vec<String>| -> Result<Vec<Regex>, ModuleError> {
            list.iter()
                .map(|p| name_regex(p, use_regex).map_err(ModuleError::Args))
                .collect()
        };
        let mut patterns = args.list("patterns")?.unwrap_or_default();
        if patterns.is_empty() {
            patterns.push(if use_regex { ".*" } else { "*" }.to_string());
        }
        let (contains, contains_icase) = match args.str("contains")? {
            Some(c) => {
                let (ere, icase) = python_to_ere(&c).map_err(|e| {
                    ModuleError::Args(format!("contains: cannot search for '{c}' with grep: {e}"))
                })?;
                (Some(ere), icase)
            }
            None => (None, false),
        };
        let checksum = if args.bool("get_checksum")? {
            Some(sum_cmd(
                &args
                    .choice("checksum_algorithm")?
                    .unwrap_or_else(|| "sha1".into()),
            ))
        } else {
            None
        };
        Ok(Self {
            paths: args.list("paths")?.unwrap_or_default(),
            patterns: compile(patterns)?,
            excludes: compile(args.list("excludes")?.unwrap_or_default())?,
            contains,
            contains_icase,
            read_whole_file: args.bool("read_whole_file")?,
            file_type: args.choice("file_type")?.unwrap_or_else(|| "file".into()),
            age: args.str("age")?.map(|a| parse_age(&a)).transpose()?,
            age_stamp: args.choice("age_stamp")?.unwrap_or_else(|| "mtime".into()),
            size: args.str("size")?.map(|s| parse_size(&s)).transpose()?,
            recurse: args.bool("recurse")?,
            hidden: args.bool("hidden")?,
            follow: args.bool("follow")?,
            checksum,
            depth: args.int("depth")?,
            mode: parse_mode(args.value("mode")?)?,
            exact_mode: args.bool("exact_mode")?,
        })
    }
}

fn sum_cmd(algo: &str) -> &'static str {
    match algo {
        "md5" => "md5sum",
        "sha224" => "sha224sum",
        "sha256" => "sha256sum",
        "sha384" => "sha384sum",
        "sha512" => "sha512sum",
        _ => "sha1sum",
    }
}

/// `age`: `-?\d+[smhdw]?` in seconds, as Ansible reads it.
pub fn parse_age(text: &str) -> Result<i64, ModuleError> {
    parse_unit(
        text,
        &[
            ('s', 1),
            ('m', 60),
            ('h', 3600),
            ('d', 86400),
            ('w', 604_800),
        ],
    )
    .ok_or_else(|| ModuleError::Args("failed to process age".into()))
}

/// `size`: `-?\d+[bkmgt]?` in bytes, as Ansible reads it.
pub fn parse_size(text: &str) -> Result<i64, ModuleError> {
    let k = 1024i64;
    parse_unit(
        text,
        &[
            ('b', 1),
            ('k', k),
            ('m', k * k),
            ('g', k * k * k),
            ('t', k * k * k * k),
        ],
    )
    .ok_or_else(|| ModuleError::Args("failed to process size".into()))
}

fn parse_unit(text: &str, units: &[(char, i64)]) -> Option<i64> {
    let t = text.to_lowercase();
    let (num, mult) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let m = units.iter().find(|(u, _)| *u == c)?.1;
            (&t[..t.len() - 1], m)
        }
        _ => (t.as_str(), 1),
    };
    let digits = num.strip_prefix('-').unwrap_or(num);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    num.parse::<i64>().ok()?.checked_mul(mult)
}

/// `mode`: octal text or a symbolic mode applied to 0 (Ansible refuses non-strings).
fn parse_mode(v: Option<Value>) -> Result<Option<u32>, ModuleError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => match u32::from_str_radix(&s, 8) {
            Ok(m) => Ok(Some(m & 0o7777)),
            Err(_) => apply_symbolic(0, &s, false)
                .map(|m| Some(m & 0o7777))
                .map_err(|e| ModuleError::Args(format!("mode: {e}"))),
        },
        Some(other) => Err(ModuleError::Args(format!(
            "argument 'mode' is not a string and conversion is not allowed, value is of type {}",
            match other {
                Value::Bool(_) => "bool",
                Value::Number(n) if n.is_f64() => "float",
                Value::Number(_) => "int",
                Value::Array(_) => "list",
                _ => "dict",
            }
        ))),
    }
}

/// A name pattern as a regex on the basename: Python's `fnmatch` (whole name) or, with
/// `use_regex`, `re.match` (anchored at the start only).
pub fn name_regex(pattern: &str, use_regex: bool) -> Result<Regex, String> {
    let re = if use_regex {
        format!("^(?:{pattern})")
    } else {
        format!("(?s)^{}$", glob_to_regex(pattern))
    };
    Regex::new(&re).map_err(|e| format!("invalid pattern '{pattern}': {e}"))
}

/// Python's `fnmatch.translate`: `*`, `?`, `[seq]`, `[!seq]`; everything else literal.
fn glob_to_regex(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '[' => {
                // The class ends at the first ']' after an optional '!' and a leading ']'.
                let mut j = i;
                if j < chars.len() && chars[j] == '!' {
                    j += 1;
                }
                if j < chars.len() && chars[j] == ']' {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    out.push_str("\\[");
                    continue;
                }
                let body: Vec<char> = chars[i..j].to_vec();
                i = j + 1;
                out.push('[');
                let mut body = &body[..];
                if body.first() == Some(&'!') {
                    out.push('^');
                    body = &body[1..];
                }
                for &b in body {
                    if b == '-' || b.is_alphanumeric() {
                        out.push(b);
                    } else {
                        out.push('\\');
                        out.push(b);
                    }
                }
                out.push(']');
            }
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    out
}

/// Translate a Python regex (as `contains` is written) to a POSIX extended regex for `grep -E`,
/// with whether it starts with `(?i)`. Constructs grep cannot express are refused.
pub fn python_to_ere(py: &str) -> Result<(String, bool), String> {
    let (py, icase) = match py.strip_prefix("(?i)") {
        Some(rest) => (rest, true),
        None => (py, false),
    };
    let chars: Vec<char> = py.chars().collect();
    let mut out = String::new();
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if in_class {
            match c {
                ']' => {
                    in_class = false;
                    out.push(']');
                }
                '\\' => {
                    let e = *chars.get(i).ok_or("trailing backslash")?;
                    i += 1;
                    match e {
                        'd' => out.push_str("0-9"),
                        'w' => out.push_str("[:alnum:]_"),
                        's' => out.push_str("[:space:]"),
                        't' => out.push('\t'),
                        '\\' => out.push('\\'),
                        ']' | '-' | '^' | '[' => return Err(format!("'\\{e}' in a class")),
                        e if e.is_ascii_alphanumeric() => return Err(format!("'\\{e}'")),
                        e => out.push(e),
                    }
                }
                c => out.push(c),
            }
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    out.push(']');
                    i += 1;
                }
            }
            '(' if chars.get(i) == Some(&'?') => {
                let rest: String = chars[i..].iter().collect();
                if rest.starts_with("?:") {
                    i += 2;
                } else if rest.starts_with("?P<") {
                    let close = rest.find('>').ok_or("unterminated group name")?;
                    i += rest[..=close].chars().count();
                } else {
                    return Err("'(?' groups other than (?:...) and (?P<name>...)".into());
                }
                out.push('(');
            }
            // Lazy quantifiers find a match exactly when the greedy ones do.
            '?' if matches!(out.chars().last(), Some('*' | '+' | '?' | '}'))
                && !out.ends_with("\\*")
                && !out.ends_with("\\+")
                && !out.ends_with("\\?")
                && !out.ends_with("\\}") => {}
            '\\' => {
                let e = *chars.get(i).ok_or("trailing backslash")?;
                i += 1;
                out.push_str(&match e {
                    'd' => "[0-9]".to_string(),
                    'D' => "[^0-9]".to_string(),
                    'w' => "[[:alnum:]_]".to_string(),
                    'W' => "[^[:alnum:]_]".to_string(),
                    's' => "[[:space:]]".to_string(),
                    'S' => "[^[:space:]]".to_string(),
                    'b' | 'B' => format!("\\{e}"),
                    'A' => "^".to_string(),
                    'Z' => "$".to_string(),
                    't' => "\t".to_string(),
                    '1'..='9' => format!("\\{e}"),
                    e if e.is_ascii_alphanumeric() => return Err(format!("'\\{e}'")),
                    e if ".[]()*+?{}|^$\\".contains(e) => format!("\\{e}"),
                    e => e.to_string(),
                });
            }
            c => out.push(c),
        }
    }
    if in_class {
        return Err("unterminated character class".into());
    }
    Ok((out, icase))
}

/// The depth limit of the walk: `-maxdepth` for find (None: unlimited).
pub fn max_depth(fa: &FindArgs) -> Option<i64> {
    match (fa.recurse, fa.depth.filter(|d| *d != 0)) {
        (false, _) => Some(1),
        // Ansible lists the directories at the limit (counted as examined) but walks no deeper.
        (true, Some(d)) => Some(d.max(0) + 1),
        (true, None) => None,
    }
}

/// Fields `stat` prints for each entry (lstat, as Ansible's `os.lstat`).
const STAT_FMT: &str =
    "S\\0%f\\0%u\\0%g\\0%U\\0%G\\0%s\\0%i\\0%d\\0%h\\0%.9X\\0%.9Y\\0%.9Z\\0%n\\0";
const STAT_FIELDS: usize = 13;

/// The one script: per path, `P` and its index, then `N` (not a directory) or one `S` record
/// per entry; `G` and the paths whose content matches; `H` and checksum lines. Pure.
pub fn find_script(fa: &FindArgs) -> String {
    let l = if fa.follow { "-L " } else { "" };
    let depth = max_depth(fa)
        .map(|d| format!(" -maxdepth {d}"))
        .unwrap_or_default();
    let mut s = String::from("printf 'T\\0%s\\0' \"$(date +%s)\"\n");
    for (i, p) in fa.paths.iter().enumerate() {
        let q = quote(p);
        let walk = format!("find {l}{q} -mindepth 1{depth}");
        s.push_str(&format!(
            "printf 'P\\0%s\\0' {i}\nif [ -d {q} ]; then\n {walk} -exec stat --printf={} -- {{}} +\n",
            quote(STAT_FMT)
        ));
        if let Some(re) = &fa.contains {
            let z = if fa.read_whole_file { "z" } else { "" };
            let i = if fa.contains_icase { "i" } else { "" };
            // Python's re.match per line is anchored at the line's start; a search otherwise.
            let re = if fa.read_whole_file {
                re.clone()
            } else {
                format!("^({re})")
            };
            s.push_str(&format!(
                " printf 'G\\0'; {walk} -type f -exec grep -lZE{z}{i} -e {} -- {{}} + 2>/dev/null; printf '\\0'\n",
                quote(&re)
            ));
        }
        if let Some(cmd) = fa.checksum {
            s.push_str(&format!(
                " printf 'H\\0'; {walk} -type f -exec {cmd} -z -- {{}} + 2>/dev/null; printf '\\0'\n"
            ));
        }
        s.push_str("else printf 'N\\0'; fi\n");
    }
    s.push_str("printf '@@end\\0'\n");
    s
}

/// One entry as `stat` reported it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub owner: String,
    pub group: String,
    pub size: u64,
    pub inode: u64,
    pub dev: u64,
    pub nlink: u64,
    pub atime: f64,
    pub mtime: f64,
    pub ctime: f64,
}

/// What the target reported for one path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Walk {
    pub is_dir: bool,
    pub entries: Vec<Entry>,
    /// Paths whose content matched `contains`.
    pub matched_content: Vec<String>,
    /// path → checksum.
    pub sums: Vec<(String, String)>,
}

/// Parse the script's output: the target's time and one [`Walk`] per path. Pure.
pub fn parse_output(out: &[u8], n: usize) -> Result<(f64, Vec<Walk>), String> {
    let mut toks = out.split(|b| *b == 0).map(|t| String::from_utf8_lossy(t));
    let mut next = |what: &str| {
        toks.next()
            .ok_or_else(|| format!("truncated output ({what})"))
    };
    let mut now = 0.0;
    let mut walks: Vec<Walk> = Vec::new();
    let mut count = 0usize;
    loop {
        let t = next("record")?;
        match t.as_ref() {
            "@@end" => break,
            "T" => now = next("time")?.parse().map_err(|_| "bad time".to_string())?,
            "P" => {
                let i: usize = next("index")?.parse().map_err(|_| "bad index")?;
                if i != walks.len() {
                    return Err(format!("unexpected path section {i}"));
                }
                walks.push(Walk {
                    is_dir: true,
                    ..Walk::default()
                });
            }
            "N" => walks.last_mut().ok_or("record before a path")?.is_dir = false,
            "S" => {
                count += 1;
                if count > MAX_ENTRIES {
                    return Err(format!("more than {MAX_ENTRIES} entries"));
                }
                let mut f = Vec::with_capacity(STAT_FIELDS);
                for _ in 0..STAT_FIELDS {
                    f.push(next("stat")?.into_owned());
                }
                let e = entry(&f)?;
                walks
                    .last_mut()
                    .ok_or("record before a path")?
                    .entries
                    .push(e);
            }
            "G" | "H" => {
                let w = walks.last_mut().ok_or("record before a path")?;
                loop {
                    let p = next("list")?;
                    if p.is_empty() {
                        break;
                    }
                    count += 1;
                    if count > 3 * MAX_ENTRIES {
                        return Err("too many entries".into());
                    }
                    if t == "G" {
                        w.matched_content.push(p.into_owned());
                    } else if let Some((sum, path)) = p.split_once("  ") {
                        w.sums.push((path.to_string(), sum.to_string()));
                    }
                }
            }
            other => return Err(format!("unexpected record '{}'", other.escape_debug())),
        }
    }
    if walks.len() != n {
        return Err(format!("{} of {n} paths reported", walks.len()));
    }
    Ok((now, walks))
}

fn entry(f: &[String]) -> Result<Entry, String> {
    let num = |s: &str| s.parse::<u64>().map_err(|_| format!("bad number '{s}'"));
    let time = |s: &str| s.parse::<f64>().map_err(|_| format!("bad time '{s}'"));
    // stat says UNKNOWN where Python's pwd/grp lookups fail and Ansible reports "".
    let name = |s: &str| {
        if s == "UNKNOWN" {
            String::new()
        } else {
            s.to_string()
        }
    };
    Ok(Entry {
        mode: u32::from_str_radix(&f[0], 16).map_err(|_| format!("bad mode '{}'", f[0]))?,
        uid: num(&f[1])?,
        gid: num(&f[2])?,
        owner: name(&f[3]),
        group: name(&f[4]),
        size: num(&f[5])?,
        inode: num(&f[6])?,
        dev: num(&f[7])?,
        nlink: num(&f[8])?,
        atime: time(&f[9])?,
        mtime: time(&f[10])?,
        ctime: time(&f[11])?,
        path: f[12].clone(),
    })
}

const S_IFMT: u32 = 0o170000;
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

/// Python's `os.path.normpath` for the paths find prints.
pub fn normpath(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if abs => {}
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

fn name_matches(fa: &FindArgs, name: &str) -> bool {
    fa.patterns.iter().any(|p| p.is_match(name)) && !fa.excludes.iter().any(|e| e.is_match(name))
}

fn age_ok(fa: &FindArgs, e: &Entry, now: f64) -> bool {
    let Some(age) = fa.age else { return true };
    let t = match fa.age_stamp.as_str() {
        "atime" => e.atime,
        "ctime" => e.ctime,
        _ => e.mtime,
    };
    if age >= 0 {
        now - t >= age as f64
    } else {
        now - t <= age.unsigned_abs() as f64
    }
}

fn size_ok(fa: &FindArgs, e: &Entry) -> bool {
    match fa.size {
        None => true,
        Some(s) if s >= 0 => e.size >= s as u64,
        Some(s) => e.size <= s.unsigned_abs(),
    }
}

fn mode_ok(fa: &FindArgs, e: &Entry) -> bool {
    match fa.mode {
        None => true,
        Some(m) if fa.exact_mode => e.mode & 0o7777 == m,
        Some(m) => e.mode & m != 0,
    }
}

/// The matched entries of one walk, in walk order, Ansible's filters applied. Pure.
pub fn select<'a>(fa: &FindArgs, root: &str, walk: &'a Walk, now: f64) -> Vec<(String, &'a Entry)> {
    let wpath = format!("{}/", root.trim_end_matches('/'));
    let root_slashes = wpath.matches('/').count();
    let mut out = Vec::new();
    for e in &walk.entries {
        let path = normpath(&e.path);
        let name = path.rsplit('/').next().unwrap_or("");
        if let Some(limit) = fa.depth.filter(|d| *d != 0) {
            let depth = path.matches('/').count() as i64 - root_slashes as i64 + 1;
            if depth > limit {
                continue;
            }
        }
        if name.starts_with('.') && !fa.hidden {
            continue;
        }
        let kind = e.mode & S_IFMT;
        let common = name_matches(fa, name) && age_ok(fa, e, now) && mode_ok(fa, e);
        let keep = match fa.file_type.as_str() {
            "any" => common && (kind != S_IFREG || size_ok(fa, e)),
            "directory" => kind == S_IFDIR && common,
            "link" => kind == S_IFLNK && common,
            _ => {
                kind == S_IFREG
                    && common
                    && size_ok(fa, e)
                    && (fa.contains.is_none() || walk.matched_content.contains(&e.path))
            }
        };
        if keep {
            out.push((path, e));
        }
    }
    out
}

/// Ansible's `statinfo` dict for one entry (plus `path` and, when asked, `checksum`).
pub fn file_value(path: &str, e: &Entry, checksum: Option<&str>) -> Value {
    let m = e.mode;
    let kind = m & S_IFMT;
    let mut o = Vars::new();
    let mut put = |k: &str, v: Value| {
        o.insert(k.to_string(), v);
    };
    let bit = |b: u32| Value::Bool(m & b != 0);
    put("path", path.into());
    put("mode", format!("{:04o}", m & 0o7777).into());
    put("isdir", (kind == S_IFDIR).into());
    put("ischr", (kind == 0o020000).into());
    put("isblk", (kind == 0o060000).into());
    put("isreg", (kind == S_IFREG).into());
    put("isfifo", (kind == 0o010000).into());
    put("islnk", (kind == S_IFLNK).into());
    put("issock", (kind == 0o140000).into());
    put("uid", e.uid.into());
    put("gid", e.gid.into());
    put("size", e.size.into());
    put("inode", e.inode.into());
    put("dev", e.dev.into());
    put("nlink", e.nlink.into());
    put("atime", e.atime.into());
    put("mtime", e.mtime.into());
    put("ctime", e.ctime.into());
    put("gr_name", e.group.as_str().into());
    put("pw_name", e.owner.as_str().into());
    for (k, b) in [
        ("wusr", 0o200),
        ("rusr", 0o400),
        ("xusr", 0o100),
        ("wgrp", 0o020),
        ("rgrp", 0o040),
        ("xgrp", 0o010),
        ("woth", 0o002),
        ("roth", 0o004),
        ("xoth", 0o001),
        ("isuid", 0o4000),
        ("isgid", 0o2000),
    ] {
        put(k, bit(b));
    }
    if let (Some(sum), true) = (checksum, kind == S_IFREG) {
        put("checksum", sum.into());
    }
    Value::Object(o)
}

/// Paths find could not read (from its stderr), with Python's wording for the error.
pub fn skipped_from_stderr(stderr: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in stderr.lines() {
        let Some(rest) = line.strip_prefix("find: ") else {
            continue;
        };
        let Some((quoted, err)) = rest.rsplit_once(": ") else {
            continue;
        };
        let path = quoted
            .trim_start_matches(['\'', '‘'])
            .trim_end_matches(['\'', '’']);
        let errno = match err {
            "Permission denied" => 13,
            "No such file or directory" => 2,
            _ => continue,
        };
        out.push((path.to_string(), format!("[Errno {errno}] {err}: '{path}'")));
    }
    out
}

impl Module for Find {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let fa = FindArgs::from_args(args)?;
        let out = run_script(
            ctx,
            &format!("LC_ALL=C; export LC_ALL\n{}", find_script(&fa)),
        )?;
        let (now, walks) = match parse_output(&out.stdout, fa.paths.len()) {
            Ok(w) => w,
            Err(e) => {
                return Ok(ModuleResult::failed(format!(
                    "find: {e} (rc={}): {}",
                    out.rc,
                    out.stderr_str().trim()
                )))
            }
        };
        let mut files = Vec::new();
        let mut examined = 0usize;
        let mut skipped = Vars::new();
        let mut warnings = Vec::new();
        for (path, walk) in fa.paths.iter().zip(&walks) {
            if !walk.is_dir {
                let why = format!("'{path}' is not a directory");
                warnings.push(Value::from(format!(
                    "Skipped '{path}' path due to this access issue: {why}\n"
                )));
                skipped.insert(path.clone(), why.into());
                continue;
            }
            examined += walk.entries.len();
            for (p, e) in select(&fa, path, walk, now) {
                let sum = walk
                    .sums
                    .iter()
                    .find(|(sp, _)| *sp == e.path)
                    .map(|(_, s)| s.as_str());
                files.push(file_value(&p, e, sum));
            }
        }
        for (p, why) in skipped_from_stderr(&out.stderr_str()) {
            skipped.entry(p).or_insert(why.into());
        }
        let msg = if warnings.is_empty() {
            "All paths examined"
        } else {
            "Not all paths examined, check warnings for details"
        };
        let mut r = ModuleResult::ok()
            .set("matched", files.len())
            .set("files", Value::Array(files))
            .set("examined", examined)
            .set("skipped_paths", Value::Object(skipped));
        r.msg = Some(msg.into());
        if !warnings.is_empty() {
            r = r.set("warnings", Value::Array(warnings));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use serde_json::json;

    fn run(a: serde_json::Value) -> ModuleResult {
        let mut r = LocalRemote::default();
        let res = Find
            .execute(&args(a), &mut ctx(&mut r, false, false, vec![]))
            .unwrap();
        assert_eq!(r.calls.len(), 1, "one round trip");
        assert!(!res.changed && !res.failed, "{res:?}");
        res
    }

    fn paths(res: &ModuleResult, root: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = res.data["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                f["path"]
                    .as_str()
                    .unwrap()
                    .replace(&root.display().to_string(), "")
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn units_and_patterns_read_like_ansible() {
        assert_eq!(parse_age("2d").unwrap(), 172_800);
        assert_eq!(parse_age("-1W").unwrap(), -604_800);
        assert_eq!(parse_age("30").unwrap(), 30);
        assert!(parse_age("2x").is_err() && parse_age("d").is_err());
        assert_eq!(parse_size("10k").unwrap(), 10_240);
        assert_eq!(parse_size("-1m").unwrap(), -1_048_576);
        let g = |p: &str, n: &str| name_regex(p, false).unwrap().is_match(n);
        assert!(g("*.log", "a.log") && !g("*.log", "a.log.1") && g("*", ".hidden"));
        assert!(g("f[!0-9]?", "fab") && !g("f[!0-9]?", "f1b") && g("a[", "a["));
        assert!(g("a+b", "a+b") && !g("a+b", "aab"));
        let r = |p: &str, n: &str| name_regex(p, true).unwrap().is_match(n);
        assert!(r("a.*", "abc") && r("b", "bcd") && !r("c", "abc"));
        assert_eq!(normpath("/tmp/x//a/./b"), "/tmp/x/a/b");
        assert_eq!(normpath("x/../y"), "y");
    }

    #[test]
    fn python_regexes_become_grep_regexes() {
        let t = |p: &str| python_to_ere(p).map(|(e, _)| e);
        assert_eq!(t(r"\d+\.\d").unwrap(), "[0-9]+\\.[0-9]");
        assert_eq!(t(r"(?:a|b)*?c").unwrap(), "(a|b)*c");
        assert_eq!(t(r"(?P<x>\w)[\s,]").unwrap(), "([[:alnum:]_])[[:space:],]");
        assert_eq!(python_to_ere("(?i)abc").unwrap(), ("abc".into(), true));
        assert!(t("(?=x)").is_err() && t(r"\p").is_err() && t("[ab").is_err());
    }

    #[test]
    fn parses_hostile_names_and_caps() {
        let out = b"T\x001000.5\x00P\x000\x00S\x0081a4\x000\x000\x00root\x00UNKNOWN\x003\x001\x002\x001\x001.0\x002.0\x003.0\x00/d/a\nb\x00G\x00/d/a\nb\x00\x00@@end\x00";
        let (now, w) = parse_output(out, 1).unwrap();
        assert_eq!(now, 1000.5);
        assert_eq!(w[0].entries[0].path, "/d/a\nb");
        assert_eq!(w[0].entries[0].group, "");
        assert_eq!(w[0].matched_content, vec!["/d/a\nb".to_string()]);
        assert!(parse_output(b"T\x001\x00P\x000\x00S\x00", 1).is_err());
        assert!(parse_output(b"T\x001\x00@@end\x00", 1).is_err());
        let v = skipped_from_stderr("find: '/x/y': Permission denied\nother\n");
        assert_eq!(v[0].1, "[Errno 13] Permission denied: '/x/y'");
    }

    #[test]
    fn finds_on_a_real_tree() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deep")).unwrap();
        std::fs::create_dir_all(d.join(".hid")).unwrap();
        std::fs::write(d.join("a.log"), "hello\nport=80\n").unwrap();
        std::fs::write(d.join("b.txt"), vec![b'x'; 3000]).unwrap();
        std::fs::write(d.join(".h.log"), "").unwrap();
        std::fs::write(d.join("sub/c.log"), "port=8080\n").unwrap();
        std::fs::write(d.join("sub/deep/d.log"), "").unwrap();
        std::fs::write(d.join(".hid/e.log"), "").unwrap();
        std::fs::write(d.join("new\nline.log"), "").unwrap();
        std::os::unix::fs::symlink("a.log", d.join("l.log")).unwrap();
        let p = d.to_str().unwrap();
        let res = run(json!({"paths": p, "patterns": "*.log"}));
        assert_eq!(paths(&res, d), ["/a.log", "/new\nline.log"]);
        assert_eq!(res.data["examined"], json!(7));
        assert_eq!(res.msg.as_deref(), Some("All paths examined"));
        let res = run(
            json!({"paths": [p], "patterns": ["*.log"], "recurse": true, "hidden": true, "excludes": "d*"}),
        );
        assert_eq!(
            paths(&res, d),
            [
                "/.h.log",
                "/.hid/e.log",
                "/a.log",
                "/new\nline.log",
                "/sub/c.log"
            ]
        );
        let res = run(json!({"paths": p, "recurse": true, "depth": 2, "file_type": "directory"}));
        assert_eq!(paths(&res, d), ["/sub", "/sub/deep"]);
        assert_eq!(res.data["examined"], json!(11));
        let res = run(json!({"paths": p, "recurse": true, "contains": "port=\\d{4}"}));
        assert_eq!(paths(&res, d), ["/sub/c.log"]);
        let res = run(json!({"paths": p, "size": "2k"}));
        assert_eq!(paths(&res, d), ["/b.txt"]);
        let res = run(json!({"paths": p, "file_type": "link", "get_checksum": true}));
        let f = &res.data["files"][0];
        assert_eq!(
            (f["islnk"].clone(), f["mode"].clone()),
            (json!(true), json!("0777"))
        );
        let res = run(
            json!({"paths": [p, format!("{p}/a.log")], "get_checksum": true, "patterns": "a.log"}),
        );
        let sum = res.data["files"][0]["checksum"].as_str().unwrap();
        assert_eq!(sum.len(), 40, "sha1 by default");
        assert_eq!(
            res.data["skipped_paths"][format!("{p}/a.log")],
            json!(format!("'{p}/a.log' is not a directory"))
        );
        assert!(res.msg.unwrap().starts_with("Not all paths examined"));
    }
}
