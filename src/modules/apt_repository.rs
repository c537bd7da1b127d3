//! `apt_repository`: add or remove a one-line `deb`/`deb-src` source as Ansible's module does. The
//! probe reads `/etc/apt/sources.list` and every `sources.list.d/*.list` (paths from `apt-config`),
//! the controller parses them line by line like Ansible's `SourcesList` (`# ` for disabled lines,
//! ` # ` before a comment, whitespace of a valid source collapsed), adds the source (re-enabling an
//! identical disabled one anywhere instead) to `<filename>.list`, named from the line by Ansible's
//! rule, or removes every enabled identical line. When that changes the normalized files, every
//! file whose normalized text differs is rewritten (empty ones removed), `mode` applies to the
//! file that got the new line, and `apt-get update` runs with Ansible's retries, the files being
//! restored when it keeps failing. `ppa:` lines are refused (no Launchpad lookups).

use indexmap::{IndexMap, IndexSet};
use regex::Regex;

use super::mode::Mode;
use super::plan::{finish_command, Outcome, Plan, Report};
use super::probe::{probe_sections, sections, FileState, Kind};
use super::write::{write_file_script, Attrs, WriteSource, WriteSpec};
use super::{Args, FileDiff, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;

pub struct AptRepository;

const SPEC: Spec = Spec::new(
    "apt_repository",
    &[
        Param::str("repo").required(),
        Param::str("state")
            .choices(&["absent", "present"])
            .default("present"),
        Param::mode("mode"),
        Param::bool("update_cache")
            .default("true")
            .aliases(&["update-cache"]),
        Param::int("update_cache_retries").default("5"),
        Param::int("update_cache_retry_max_delay").default("12"),
        Param::str("filename"),
        // python-apt is never needed by knockplay, so there is nothing to install.
        Param::bool("install_python_apt").default("true"),
        // Only used by Ansible for ppa: lookups, which knockplay refuses.
        Param::bool("validate_certs").default("true"),
        Param::str("codename"),
    ],
);

const VALID_TYPES: &[&str] = &["deb", "deb-src"];

/// One line of a sources file as Ansible's `SourcesList._parse` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The line's number when the file was read (Ansible's index, also after removals).
    pub n: usize,
    pub valid: bool,
    pub enabled: bool,
    pub source: String,
    pub comment: String,
}

/// `_parse`: (valid, enabled, source, comment) and the text an invalid repository is named by.
pub fn parse_line(line: &str) -> (Entry, String) {
    let mut line = line.trim();
    let mut enabled = true;
    if let Some(rest) = line.strip_prefix('#') {
        enabled = false;
        line = rest;
    }
    let mut comment = String::new();
    if let Some(i) = line.find('#').filter(|&i| i > 0) {
        comment = line[i + 1..].trim().to_string();
        line = &line[..i];
    }
    let mut source = line.trim().to_string();
    let mut valid = false;
    let chunks: Vec<&str> = source.split_whitespace().collect();
    if chunks.first().is_some_and(|c| VALID_TYPES.contains(c)) {
        valid = true;
        source = chunks.join(" ");
    }
    let e = Entry {
        n: 0,
        valid,
        enabled,
        source,
        comment,
    };
    (e, line.to_string())
}

/// The source of a `repo` argument, or Ansible's "Invalid repository string" message.
pub fn parse_repo(repo: &str) -> Result<String, String> {
    let (e, line) = parse_line(repo);
    if e.valid && e.enabled {
        Ok(e.source)
    } else {
        Err(format!("Invalid repository string: {line}"))
    }
}

/// Entries of a file's text (Python's line iteration).
pub fn parse_file(text: &str) -> Vec<Entry> {
    text.split_inclusive('\n')
        .enumerate()
        .map(|(n, l)| Entry {
            n,
            ..parse_line(l).0
        })
        .collect()
}

/// The file's text as Ansible writes it.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        if !e.enabled {
            out.push_str("# ");
        }
        out.push_str(&e.source);
        if !e.comment.is_empty() {
            out.push_str(" # ");
            out.push_str(&e.comment);
        }
        out.push('\n');
    }
    out
}

/// `_suggest_filename`: `<filename>.list`, or the first word after the type with options,
/// `scheme://` and `user:password@` dropped, non-alphanumeric runs as `_`.
pub fn suggest_filename(source: &str, filename: Option<&str>) -> Result<String, String> {
    if let Some(f) = filename {
        return Ok(format!("{f}.list"));
    }
    let opts = Regex::new(r"\[[^\]]+\]").expect("static regex");
    let scheme = Regex::new(r"\w+://").expect("static regex");
    let line = opts.replace_all(source, "");
    let line = scheme.replace_all(&line, "");
    let first = line
        .split_whitespace()
        .find(|p| !VALID_TYPES.contains(p))
        .ok_or_else(|| format!("cannot name a file after the repository '{source}'"))?;
    let first = first.split_once('@').map_or(first, |(_, host)| host);
    let words: Vec<String> = first
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    Ok(format!("{}.list", words.join("_")))
}

/// `_expand_path`: a name without `/` goes into the sources directory (normalized).
pub fn expand_path(file: &str, sourceparts: &str) -> String {
    if file.contains('/') {
        return file.to_string();
    }
    normalize(&format!("{sourceparts}/{file}"))
}

/// Absolute path with `//`, `.` and `..` resolved (Python's `normpath` of an absolute path).
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// All sources files, in load order, path → entries.
pub type Files = IndexMap<String, Vec<Entry>>;

/// `dump`: the text of every file that has entries.
pub fn dump(files: &Files) -> IndexMap<String, String> {
    files
        .iter()
        .filter(|(_, e)| !e.is_empty())
        .map(|(p, e)| (p.clone(), render(e)))
        .collect()
}

/// `add_source`: enable every identical source (disabled or not), or append it to `file`.
/// Returns the files that got a new line.
pub fn add_source(files: &mut Files, source: &str, file: &str) -> IndexSet<String> {
    let mut found = false;
    for entries in files.values_mut() {
        for e in entries.iter_mut().filter(|e| e.valid && e.source == source) {
            e.enabled = true;
            found = true;
        }
    }
    let mut new = IndexSet::new();
    if !found {
        let entries = files.entry(file.to_string()).or_default();
        entries.push(Entry {
            n: entries.len(),
            valid: true,
            enabled: true,
            source: source.to_string(),
            comment: String::new(),
        });
        new.insert(file.to_string());
    }
    new
}

/// `_remove_valid_source`, including its quirk: it pops by the line's original number while
/// iterating the same list, so after a removal the next line is skipped and later numbers may
/// point elsewhere (Python raises when one is past the end).
pub fn remove_source(files: &mut Files, source: &str) -> Result<(), String> {
    for entries in files.values_mut() {
        let mut i = 0;
        while i < entries.len() {
            let e = &entries[i];
            if e.valid && e.enabled && e.source == source {
                let n = e.n;
                if n >= entries.len() {
                    return Err("pop index out of range".into());
                }
                entries.remove(n);
            }
            i += 1;
        }
    }
    Ok(())
}

/// A sources file as the probe found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub path: String,
    /// Where a symlink points (Ansible writes there).
    pub real: Option<String>,
    pub state: FileState,
    pub content: Vec<u8>,
}

/// The wanted change, computed from the arguments and the probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub changed: bool,
    pub before: IndexMap<String, String>,
    pub after: IndexMap<String, String>,
    pub files: Files,
    pub new_repos: IndexSet<String>,
}

/// Pure: apply `present`/`absent` of `repo` to the loaded files.
pub fn compute(
    loaded: &[Loaded],
    sourceparts: &str,
    repo: &str,
    present: bool,
    filename: Option<&str>,
) -> Result<Change, String> {
    let mut files: Files = loaded
        .iter()
        .map(|l| {
            let text = String::from_utf8_lossy(&l.content);
            (l.path.clone(), parse_file(&text))
        })
        .collect();
    let before = dump(&files);
    let source = parse_repo(repo)?;
    let mut new_repos = IndexSet::new();
    if present {
        let file = expand_path(&suggest_filename(&source, filename)?, sourceparts);
        new_repos = add_source(&mut files, &source, &file);
    } else {
        remove_source(&mut files, &source)?;
    }
    let after = dump(&files);
    let changed =
        before.len() != after.len() || before.iter().any(|(k, v)| after.get(k) != Some(v));
    Ok(Change {
        changed,
        before,
        after,
        files,
        new_repos,
    })
}

/// One atomic write of `text` over `l`'s file (its link target when it is a symlink) or a new
/// file at `path`, keeping an existing file's mode and owner unless `mode` is given.
fn write_cmd(path: &str, l: Option<&Loaded>, text: Vec<u8>, mode: Option<Mode>) -> String {
    write_file_script(&WriteSpec {
        dest: l
            .and_then(|o| o.real.clone())
            .unwrap_or_else(|| path.to_string()),
        attrs: Attrs {
            mode,
            ..Attrs::default()
        },
        existing: l.map(|o| o.state.clone()),
        mkdirs: true,
        source: WriteSource::Inline(text),
        ..WriteSpec::default()
    })
}

/// The commands that save `files` as Ansible's `save` does: every file with entries written when
/// its text (or wanted mode) differs from what is on the target, every empty one removed.
/// Returns the commands and the paths they touch.
pub fn save_script(
    files: &Files,
    loaded: &[Loaded],
    mode_for: &dyn Fn(&str) -> Option<Mode>,
) -> (Vec<String>, Vec<String>) {
    let mut cmds = Vec::new();
    let mut touched = Vec::new();
    for (path, entries) in files {
        let old = loaded.iter().find(|l| &l.path == path);
        if entries.is_empty() {
            if old.is_some() {
                cmds.push(format!("rm -f -- {}", quote(path)));
                touched.push(path.clone());
            }
            continue;
        }
        let text = render(entries).into_bytes();
        let mode = mode_for(path);
        let same_mode = mode
            .as_ref()
            .is_none_or(|m| old.is_some_and(|o| m.resolve(o.state.mode, false) == o.state.mode));
        if old.is_some_and(|o| o.content == text) && same_mode {
            continue;
        }
        cmds.push(write_cmd(path, old, text, mode));
        touched.push(path.clone());
    }
    (cmds, touched)
}

/// The arguments that shape the apply step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apply {
    pub mode: Option<Mode>,
    pub update_cache: bool,
    pub retries: i64,
    pub max_delay: i64,
}

/// Ansible's revert after a failed cache update: the new files removed, the others saved as
/// they were read (normalized).
fn revert_script(touched: &[String], loaded: &[Loaded]) -> Vec<String> {
    touched
        .iter()
        .map(|p| {
            let l = loaded.iter().find(|l| &l.path == p);
            let entries = l
                .map(|l| parse_file(&String::from_utf8_lossy(&l.content)))
                .unwrap_or_default();
            if entries.is_empty() {
                format!("rm -f -- {}", quote(p))
            } else {
                write_cmd(p, l, render(&entries).into_bytes(), None)
            }
        })
        .collect()
}

/// Pure: the apply script for a change: save, then `apt-get update` with Ansible's retries
/// (exponential delay capped at `max_delay`), restoring the files when every attempt failed.
pub fn apply_script(c: &Change, loaded: &[Loaded], a: &Apply) -> String {
    let mode_for = |p: &str| a.mode.clone().filter(|_| c.new_repos.contains(p));
    let (cmds, touched) = save_script(&c.files, loaded, &mode_for);
    let mut s = cmds.join("\n");
    if !a.update_cache {
        return s;
    }
    let revert = revert_script(&touched, loaded);
    s.push_str(&format!(
        "\nkp_i=0; kp_ok=0; kp_err=\n\
         while [ $kp_i -lt {r} ]; do\n\
         if kp_err=$(apt-get update -q 2>&1 >/dev/null); then kp_ok=1; break; fi\n\
         kp_i=$((kp_i + 1)); kp_err=$(printf '%s' \"$kp_err\" | tr '\\n' ' ')\n\
         printf 'warning=Failed to update cache after %s due to %s retry, retrying\\n' $kp_i \"$kp_err\"\n\
         kp_d=$((1 << (kp_i - 1))); [ $kp_d -gt {m} ] && kp_d={m}\n\
         sleep $kp_d\n\
         printf 'warning=Sleeping for %s seconds, before attempting to update the cache again\\n' $kp_d\n\
         done\n\
         if [ $kp_ok = 0 ]; then\n{rv}\n\
         printf 'Failed to update apt cache after {r} retries: %s\\n' \"${{kp_err:-unknown reason}}\" >&2; exit 1\nfi",
        r = a.retries,
        m = a.max_delay.max(0),
        rv = if revert.is_empty() { ":".to_string() } else { revert.join("\n") },
    ));
    s
}

/// The probe: the configured paths, then every sources file (path, link target, mode, content).
pub fn probe_script() -> String {
    "LC_ALL=C; export LC_ALL\nkp_sl=/etc/apt/sources.list; kp_sp=/etc/apt/sources.list.d\n\
     if command -v apt-config >/dev/null 2>&1; then \
     eval \"$(apt-config shell kp_sl Dir::Etc::sourcelist/f kp_sp Dir::Etc::sourceparts/d)\"; fi\n\
     printf '\\n@@KP:cfg\\n%s\\n%s\\n' \"$kp_sl\" \"$kp_sp\"\nkp_i=0\n\
     for f in \"$kp_sl\" \"${kp_sp%/}\"/*.list; do\n\
     [ -f \"$f\" ] || continue\n\
     printf '\\n@@KP:f%s\\n' $kp_i; kp_i=$((kp_i + 1))\n\
     printf '%s' \"$f\" | base64 -w0; echo\n\
     if [ -L \"$f\" ]; then printf '%s' \"$(readlink -f -- \"$f\")\" | base64 -w0; echo; else echo -; fi\n\
     stat -L -c '%a %u %g' -- \"$f\" || exit 1\n\
     base64 -w0 < \"$f\" || exit 1; echo\n\
     done\nprintf '\\n@@KP:end\\n'\n"
        .to_string()
}

/// Parse the probe: (sourceparts, loaded files).
pub fn parse_probe(out: &str) -> Result<(String, Vec<Loaded>), String> {
    use base64::Engine;
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| format!("bad probe output: {e}"))
    };
    let secs = sections(out);
    let cfg = secs.get("cfg").ok_or("probe printed no configuration")?;
    let sourceparts = cfg
        .lines()
        .nth(1)
        .unwrap_or("/etc/apt/sources.list.d")
        .to_string();
    let mut loaded = Vec::new();
    for (name, body) in secs.iter().filter(|(n, _)| n.starts_with('f')) {
        let l: Vec<&str> = body.lines().collect();
        let [path, real, stat, content, ..] = l[..] else {
            return Err(format!("bad probe section {name}"));
        };
        let path = normalize(&String::from_utf8_lossy(&b64(path)?));
        let real = (real != "-").then(|| b64(real)).transpose()?;
        let mut st = stat.split(' ').map(|v| u32::from_str_radix(v, 8));
        let mode = st.next().and_then(Result::ok).unwrap_or(0o644);
        let mut ids = stat
            .split(' ')
            .skip(1)
            .map(|v| v.parse::<u32>().unwrap_or(0));
        let state = FileState {
            kind: Kind::File,
            mode,
            uid: ids.next().unwrap_or(0),
            gid: ids.next().unwrap_or(0),
            ..FileState::default()
        };
        loaded.push(Loaded {
            path,
            real: real.map(|r| String::from_utf8_lossy(&r).into_owned()),
            state,
            content: b64(content)?,
        });
    }
    Ok((sourceparts, loaded))
}

impl Module for AptRepository {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let repo = args.req_str("repo")?;
        let state = args.choice("state")?.unwrap_or_default();
        let _ = (
            args.bool("install_python_apt")?,
            args.bool("validate_certs")?,
        );
        let _ = args.str("codename")?;
        if repo.is_empty() {
            return Ok(ModuleResult::failed(
                "Please set argument 'repo' to a non-empty value",
            ));
        }
        if repo.starts_with("ppa:") {
            return Err(ModuleError::Args(
                "ppa: repositories are not supported by knockplay (no Launchpad lookups); give \
                 the deb line and add the key with deb822_repository or get_url"
                    .into(),
            ));
        }
        let a = Apply {
            mode: args.mode("mode")?,
            update_cache: args.bool("update_cache")?,
            retries: args.int("update_cache_retries")?.unwrap_or(5),
            max_delay: args.int("update_cache_retry_max_delay")?.unwrap_or(12),
        };
        let filename = args.str("filename")?;
        let out = match probe_sections(ctx, &probe_script())? {
            Ok(o) => o,
            Err(o) => {
                return Ok(ModuleResult::failed(format!(
                    "apt_repository: reading the sources files failed (rc={}): {}",
                    o.rc,
                    o.stderr_str().trim()
                )))
            }
        };
        let (sourceparts, loaded) = match parse_probe(&out.stdout_str()) {
            Ok(p) => p,
            Err(e) => return Ok(ModuleResult::failed(e)),
        };
        let present = state == "present";
        let c = match compute(&loaded, &sourceparts, &repo, present, filename.as_deref()) {
            Ok(c) => c,
            Err(e) => return Ok(ModuleResult::failed(e)),
        };
        let outcome = outcome(&c, &loaded, &a)
            .set("repo", repo.as_str())
            .set("state", state);
        let mut r = finish_command(ctx, outcome, &Report::command("apt_repository"))?;
        if r.failed {
            // Ansible's failures carry the message only.
            r.data.clear();
        }
        let warnings: Vec<Value> = r
            .stdout
            .take()
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("warning="))
            .map(Value::from)
            .collect();
        if !warnings.is_empty() {
            r.data.insert("warnings".into(), Value::Array(warnings));
        }
        let stderr = r.stderr.take().unwrap_or_default();
        if r.failed {
            if let Some(m) = stderr
                .lines()
                .find(|l| l.starts_with("Failed to update apt cache"))
            {
                r.msg = Some(m.to_string());
            }
        }
        r.rc = None;
        Ok(r)
    }
}

/// Pure: the plan and result keys (`sources_added`, `sources_removed`; a diff per added or
/// removed file, as Ansible shows).
pub fn outcome(c: &Change, loaded: &[Loaded], a: &Apply) -> Outcome {
    let keys = |x: &IndexMap<String, String>, y: &IndexMap<String, String>| {
        let mut v: Vec<String> = x.keys().filter(|k| !y.contains_key(*k)).cloned().collect();
        v.sort();
        v
    };
    let (added, removed) = if c.changed {
        (keys(&c.after, &c.before), keys(&c.before, &c.after))
    } else {
        (Vec::new(), Vec::new())
    };
    let list = |v: &[String]| Value::Array(v.iter().map(|s| Value::from(s.as_str())).collect());
    let plan = if c.changed {
        let diff = added.iter().chain(&removed).next().map(|p| FileDiff {
            path: p.clone(),
            before: c.before.get(p).cloned().unwrap_or_default(),
            after: c.after.get(p).cloned().unwrap_or_default(),
        });
        Plan::Change {
            script: apply_script(c, loaded, a),
            stdin: None,
            diff,
        }
    } else {
        Plan::NoChange
    };
    Outcome::new(plan)
        .set("sources_added", list(&added))
        .set("sources_removed", list(&removed))
}

#[cfg(test)]
#[path = "apt_repository_tests.rs"]
mod tests;
