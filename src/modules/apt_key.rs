//! `apt_key`: add or remove a key in apt's keyring with `apt-key`, as Ansible's module does (so,
//! like it, it needs `apt-key` and `gpg` on the target; `apt-key` is deprecated in Debian and gone
//! from trixie). The key id of a `file` on the target or of inline `data` is read on the controller
//! from the OpenPGP packets (the primary key's long id, what Ansible reads from `gpg
//! --with-colons`); the installed keys come from `apt-key adv --list-public-keys` in the one probe
//! round trip, and the apply step adds (`apt-key add`) or deletes (`apt-key del <short id>`) and
//! lists again to verify, reporting `id`, `short_id`, `fp`, `key_id`, `before` and `after`. `url`
//! and `keyserver` are refused: knockplay does not download here (fetch the key with `get_url`).

use super::plan::{finish_command, Outcome, Plan, Report};
use super::probe::{probe_sections, sections};
use super::rpm_key::key_infos;
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;
use crate::value::Value;

pub struct AptKey;

const NO_DOWNLOAD: &str = "knockplay does not download keys here: fetch the key with get_url and \
                           give it as file (or its content as data)";

const SPEC: Spec = Spec::new(
    "apt_key",
    &[
        Param::str("id"),
        Param::str("url").refused(NO_DOWNLOAD),
        Param::str("data"),
        Param::path("file"),
        Param::path("keyring"),
        // Keys are never fetched, so certificates are never checked.
        Param::bool("validate_certs").only("true"),
        Param::str("keyserver").refused(NO_DOWNLOAD),
        Param::str("state")
            .choices(&["absent", "present"])
            .default("present"),
    ],
);

/// `parse_key_id`: (short id, fingerprint as listed, full id), or Ansible's "Invalid key_id".
pub fn parse_key_id(id: &str) -> Result<(String, String, String), String> {
    let t = id.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("Invalid key_id".into());
    }
    let up = id.to_uppercase();
    let key = up.strip_prefix("0X").unwrap_or(&up).to_string();
    let n = key.chars().count();
    if n != 8 && n != 16 && n <= 16 {
        return Err("Invalid key_id".into());
    }
    let short = key[key.len().saturating_sub(8)..].to_string();
    let fp = key[key.len().saturating_sub(16)..].to_string();
    Ok((short, fp, key))
}

/// `parse_output_for_keys`: the key ids of `pub`/`sub` lines that are not expired (apt-key's
/// `rsa4096/<id>` form, or gpg's colon form), shortened to 8 characters when asked.
pub fn parse_keys(out: &str, short: bool) -> Vec<String> {
    let mut found = Vec::new();
    for line in out.split('\n') {
        if !(line.starts_with("pub") || line.starts_with("sub")) || line.contains("expired") {
            continue;
        }
        let apt_form = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.split_once('/').filter(|(_, b)| !b.contains('/')))
            .map(|(_, id)| id.to_string());
        match apt_form.or_else(|| line.split(':').nth(4).map(str::to_string)) {
            Some(id) => found.push(id),
            None => continue,
        }
    }
    if short {
        found = found
            .into_iter()
            .map(|k| k[k.len().saturating_sub(8)..].to_string())
            .collect();
    }
    found
}

/// `apt-key [--keyring K] <rest>` as Ansible builds it (a string; `bin` is apt-key's path).
fn apt_key_cmd(bin: &str, keyring: Option<&str>, rest: &str) -> String {
    match keyring {
        Some(k) => format!("{bin} --keyring {k} {rest}"),
        None => format!("{bin} {rest}"),
    }
}

/// Shell lines running `cmd` (already quoted words) and printing its stdout, stderr and status
/// as the sections `<name>out`, `<name>err`, `<name>rc`.
fn captured(name: &str, cmd: &str) -> String {
    format!(
        "kp_t=$(mktemp) || exit 1\n{cmd} >\"$kp_t.o\" 2>\"$kp_t\"; kp_rc=$?\n\
         printf '\\n@@KP:{name}rc\\n%s\\n' $kp_rc; printf '\\n@@KP:{name}out\\n'; cat \"$kp_t.o\"; \
         printf '\\n@@KP:{name}err\\n'; cat \"$kp_t\"; rm -f \"$kp_t\" \"$kp_t.o\"\n"
    )
}

/// The listing command, with its words quoted for the shell.
fn list_words(keyring: Option<&str>) -> String {
    let k = keyring.map(quote);
    apt_key_cmd(
        "\"$kp_bin\"",
        k.as_deref(),
        "adv --list-public-keys --keyid-format=long",
    )
}

/// The probe: both binaries, apt-key's path, the listing, and the key file when it is read.
pub fn probe_script(keyring: Option<&str>, file: Option<&str>) -> String {
    let mut s = String::from(
        "LC_ALL=C; export LC_ALL\nfor kp_b in apt-key gpg; do command -v $kp_b >/dev/null 2>&1 || \
         { printf 'Failed to find required executable \"%s\" in paths: %s\\n' $kp_b \"$PATH\" >&2; exit 127; }; done\n\
         kp_bin=$(command -v apt-key)\nprintf '\\n@@KP:bin\\n%s\\n' \"$kp_bin\"\n",
    );
    s.push_str(&captured("list", &list_words(keyring)));
    if let Some(f) = file {
        let q = quote(f);
        s.push_str(&format!(
            "printf '\\n@@KP:file\\n'; if [ -f {q} ] && [ -r {q} ]; then base64 -w0 < {q}; echo; else echo @missing; fi\n"
        ));
    }
    s.push_str("printf '\\n@@KP:end\\n'\n");
    s
}

/// The key id of a key file or inline data: the first primary key's long id.
pub fn key_id_of(data: &[u8]) -> Option<String> {
    key_infos(data)
        .ok()?
        .into_iter()
        .find(|k| k.primary)
        .map(|k| k.keyid)
}

/// What the module will do once the key id is known and the keys are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    Nothing,
    Add,
    Remove,
}

/// Pure: add when present and not listed, remove when absent and listed (by `fp`, as Ansible).
pub fn decide(present: bool, short: &str, fp: &str, short_format: bool, keys: &[String]) -> Act {
    if present {
        let listed = if short_format {
            keys.iter().any(|k| k == short)
        } else {
            keys.iter().any(|k| k == fp)
        };
        if listed {
            Act::Nothing
        } else {
            Act::Add
        }
    } else if keys.iter().any(|k| k == fp) {
        Act::Remove
    } else {
        Act::Nothing
    }
}

impl Module for AptKey {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        args.exclusive("data", "file")?;
        let id = args.str("id")?;
        let data = args.str("data")?;
        let file = args.str("file")?;
        let keyring = args.str("keyring")?;
        let present = args.choice("state")?.unwrap_or_default() == "present";
        let read_file = file.as_deref().filter(|_| id.is_none());
        let out = match probe_sections(ctx, &probe_script(keyring.as_deref(), read_file))? {
            Ok(o) => o,
            Err(o) => {
                let err = o.stderr_str();
                return Ok(ModuleResult::failed(err.trim()));
            }
        };
        let secs = sections(&out.stdout_str());
        let sec = |k: &str| secs.get(k).cloned().unwrap_or_default();
        let bin = sec("bin").trim().to_string();
        let list_cmd = apt_key_cmd(
            &bin,
            keyring.as_deref(),
            "adv --list-public-keys --keyid-format=long",
        );
        let mut r = ModuleResult::ok();
        let key_id = match (&id, read_file, &data) {
            (Some(i), _, _) => Some(i.clone()),
            (None, Some(f), _) => {
                let content = sec("file");
                let bytes = base64_decode(content.trim());
                match bytes.as_deref().and_then(key_id_of) {
                    Some(k) => Some(k),
                    None => {
                        return Ok(ModuleResult::failed(format!(
                            "Unable to extract key from '{f}'"
                        )))
                    }
                }
            }
            (None, None, Some(d)) if !d.is_empty() => match key_id_of(d.as_bytes()) {
                Some(k) => Some(k),
                None => {
                    return Ok(ModuleResult::failed(
                        "Unable to extract key from 'inline data'",
                    ))
                }
            },
            _ => None,
        };
        r.data.insert(
            "id".into(),
            key_id.as_deref().map_or(Value::Null, Value::from),
        );
        let (short, fp, full) = match key_id.as_deref().map(parse_key_id) {
            Some(Ok(p)) => p,
            _ => {
                r.failed = true;
                r.msg = Some("Invalid key_id".into());
                return Ok(r);
            }
        };
        if sec("listrc").trim() != "0" {
            return Ok(command_failed(
                "Unable to list public keys",
                &list_cmd,
                &secs,
                "list",
            ));
        }
        let short_format = full.len() == 8;
        let keys = parse_keys(&sec("listout"), short_format);
        let list = |v: &[String]| Value::Array(v.iter().map(|s| Value::from(s.as_str())).collect());
        let act = decide(present, &short, &fp, short_format, &keys);
        let mut outcome = Outcome::new(Plan::NoChange);
        outcome.result = r
            .set("short_id", short.as_str())
            .set("fp", fp.as_str())
            .set("key_id", full.as_str())
            .set("before", list(&keys));
        let (what, stdin) = match act {
            Act::Nothing => return Ok(outcome.result),
            Act::Add => match (&file, &data) {
                (Some(f), _) => (format!("add {}", quote(f)), None),
                (None, Some(d)) => ("add -".to_string(), Some(d.clone().into_bytes())),
                _ if ctx.check_mode => (String::new(), None),
                _ => {
                    let mut r = outcome.result;
                    r.failed = true;
                    r.msg = Some("No key to add ... how did i get here?!?!".into());
                    return Ok(r);
                }
            },
            Act::Remove => (format!("del {short}"), None),
        };
        let k = keyring.as_deref().map(quote);
        let mut script = format!("LC_ALL=C; export LC_ALL\nkp_bin={}\n", quote(&bin));
        script.push_str(&captured(
            "op",
            &apt_key_cmd("\"$kp_bin\"", k.as_deref(), &what),
        ));
        script.push_str(&captured("list", &list_words(keyring.as_deref())));
        outcome.plan = Plan::script(script, stdin);
        let res = finish_command(ctx, outcome, &Report::command("apt-key"))?;
        if ctx.check_mode || res.failed {
            return Ok(res);
        }
        let v = Verify {
            act,
            file: file.as_deref(),
            keyring: keyring.as_deref(),
            bin: &bin,
            short: &short,
            fp: &fp,
            short_format,
        };
        Ok(verify(res, &v))
    }
}

/// What the apply step's output is checked against.
struct Verify<'a> {
    act: Act,
    file: Option<&'a str>,
    keyring: Option<&'a str>,
    bin: &'a str,
    short: &'a str,
    fp: &'a str,
    short_format: bool,
}

/// Ansible's checks after adding or deleting: the command's status, then the new listing.
fn verify(mut res: ModuleResult, v: &Verify<'_>) -> ModuleResult {
    let secs = sections(&res.stdout.take().unwrap_or_default());
    res.rc = None;
    res.stderr = None;
    let sec = |k: &str| secs.get(k).cloned().unwrap_or_default();
    if sec("oprc").trim() != "0" {
        let (msg, cmd) = match (&v.act, v.file) {
            (Act::Remove, _) => (
                format!("Unable to remove a key with id {}", v.short),
                apt_key_cmd(v.bin, v.keyring, &format!("del {}", v.short)),
            ),
            (_, Some(f)) => (
                format!("Unable to add a key from file {f}"),
                apt_key_cmd(v.bin, v.keyring, &format!("add {f}")),
            ),
            _ => (
                "Unable to add a key from binary data".to_string(),
                apt_key_cmd(v.bin, v.keyring, "add -"),
            ),
        };
        let mut f = command_failed(&msg, &cmd, &secs, "op");
        f.data.extend(res.data);
        return f;
    }
    if sec("listrc").trim() != "0" {
        let cmd = apt_key_cmd(
            v.bin,
            v.keyring,
            "adv --list-public-keys --keyid-format=long",
        );
        return command_failed("Unable to list public keys", &cmd, &secs, "list");
    }
    let after = parse_keys(&sec("listout"), v.short_format);
    let has = |k: &str| after.iter().any(|a| a == k);
    let problem = match v.act {
        Act::Add if !has(if v.short_format { v.short } else { v.fp }) => {
            Some("failed to add the key")
        }
        Act::Remove if has(v.fp) => Some("the key was not removed"),
        _ => None,
    };
    res = res.set(
        "after",
        Value::Array(after.iter().map(|s| Value::from(s.as_str())).collect()),
    );
    if let Some(p) = problem {
        res.failed = true;
        res.msg = Some(format!(
            "apt-key did not return an error, but {p} (check that the id is correct and *not* a subkey)"
        ));
    }
    res
}

/// A failed command, reported with `cmd`, `rc`, `stdout` and `stderr` as Ansible does.
fn command_failed(
    msg: &str,
    cmd: &str,
    secs: &indexmap::IndexMap<String, String>,
    name: &str,
) -> ModuleResult {
    let sec = |k: &str| secs.get(&format!("{name}{k}")).cloned().unwrap_or_default();
    let mut r = ModuleResult::failed(msg).set("cmd", cmd);
    r.rc = sec("rc").trim().parse().ok();
    r.stdout = Some(sec("out"));
    r.stderr = Some(sec("err"));
    r
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    if s == "@missing" {
        return None;
    }
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
#[path = "apt_key_tests.rs"]
mod tests;
