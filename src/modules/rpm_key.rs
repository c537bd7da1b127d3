//! `rpm_key`: import (`rpm --import`) or remove (`rpm --erase gpg-pubkey-<id>`) an OpenPGP public
//! key in the rpm database. `key` is a key file on the target or a key id (absent only); URLs are
//! refused. No gpg on the target: one probe round trip returns the key file and the installed
//! keys (`rpm -q gpg-pubkey`), and the controller reads their key ids and v4 fingerprints from
//! the OpenPGP packets, as Ansible reads them from gpg's listing.

use base64::Engine;
use sha1::{Digest, Sha1};

use super::plan::{failed_output, finish_command, Outcome, Plan, Report};
use super::probe::{probe_sections, section, sections};
use super::{Args, Module, ModuleCtx, ModuleError, ModuleResult, Param, Spec};
use crate::shell::quote;

pub struct RpmKey;

const SPEC: Spec = Spec::new(
    "rpm_key",
    &[
        Param::str("key").required(),
        Param::str("state")
            .choices(&["absent", "present"])
            .default("present"),
        Param::list("fingerprint"),
        // Keys are never fetched (URLs are refused), so certificates are never checked.
        Param::bool("validate_certs").only("true"),
    ],
);

/// One key of a key file or of the rpm database: its long key id and fingerprint (v4), for the
/// primary key and each subkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub primary: bool,
    pub keyid: String,
    pub fingerprint: String,
}

/// The bytes of an armored (or binary) OpenPGP block.
fn dearmor(data: &[u8]) -> Result<Vec<u8>, String> {
    let text = String::from_utf8_lossy(data);
    let Some(start) = text.find("-----BEGIN PGP PUBLIC KEY BLOCK-----") else {
        return Ok(data.to_vec());
    };
    let body = &text[start..];
    let mut b64 = String::new();
    let mut in_headers = true;
    for line in body.lines().skip(1) {
        let line = line.trim();
        if line.starts_with("-----END") {
            break;
        }
        if in_headers {
            if line.is_empty() {
                in_headers = false;
            } else if !line.contains(':') {
                in_headers = false;
                b64.push_str(line);
            }
            continue;
        }
        if line.starts_with('=') {
            break; // CRC-24 checksum
        }
        b64.push_str(line);
    }
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("the key is not valid base64: {e}"))
}

/// The public key and subkey packets of an OpenPGP block, with their ids.
pub fn key_infos(data: &[u8]) -> Result<Vec<KeyInfo>, String> {
    let bytes = dearmor(data)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let h = bytes[i];
        if h & 0x80 == 0 {
            return Err("not an OpenPGP packet stream".into());
        }
        let (tag, len, hdr) = if h & 0x40 != 0 {
            let tag = h & 0x3f;
            let b = |k: usize| bytes.get(i + k).copied().map(usize::from).unwrap_or(0);
            match b(1) {
                o if o < 192 => (tag, o, 2),
                o if o < 224 => (tag, ((o - 192) << 8) + b(2) + 192, 3),
                255 => (tag, (b(2) << 24) | (b(3) << 16) | (b(4) << 8) | b(5), 6),
                _ => return Err("partial-length packets are not supported".into()),
            }
        } else {
            let tag = (h >> 2) & 0x0f;
            let b = |k: usize| bytes.get(i + k).copied().map(usize::from).unwrap_or(0);
            match h & 3 {
                0 => (tag, b(1), 2),
                1 => (tag, (b(1) << 8) | b(2), 3),
                2 => (tag, (b(1) << 24) | (b(2) << 16) | (b(3) << 8) | b(4), 5),
                _ => (tag, bytes.len() - i - 1, 1),
            }
        };
        let body = bytes
            .get(i + hdr..i + hdr + len)
            .ok_or("truncated OpenPGP packet")?;
        if tag == 6 || tag == 14 {
            if body.first() != Some(&4) {
                return Err(format!(
                    "only version 4 keys are supported (found version {})",
                    body.first().copied().unwrap_or(0)
                ));
            }
            let mut h = Sha1::new();
            h.update([0x99, (len >> 8) as u8, len as u8]);
            h.update(body);
            let fpr = hex::encode_upper(h.finalize());
            out.push(KeyInfo {
                primary: tag == 6,
                keyid: fpr[fpr.len() - 16..].to_string(),
                fingerprint: fpr,
            });
        }
        i += hdr + len;
    }
    if out.iter().any(|k| k.primary) {
        Ok(out)
    } else {
        Err("no public key found".into())
    }
}

/// Ansible's `is_keyid`: the key starts with (0x) and 8 hex digits.
fn is_keyid(key: &str) -> bool {
    let k = key
        .strip_prefix("0x")
        .or_else(|| key.strip_prefix("0X"))
        .unwrap_or(key);
    k.len() >= 8 && k.as_bytes()[..8].iter().all(u8::is_ascii_hexdigit)
}

fn normalize_keyid(id: &str) -> String {
    let up = id.trim().to_uppercase();
    up.strip_prefix("0X").map(str::to_string).unwrap_or(up)
}

/// The probe: the key file (base64, or `@missing`) and every installed key's armored text.
fn probe_script(path: Option<&str>) -> String {
    let mut s = format!(
        "LC_ALL=C; export LC_ALL\ncommand -v rpm >/dev/null 2>&1 || {{ echo 'rpm_key: rpm is not installed on the target' >&2; exit 127; }}\n\
         {}; rpm -q gpg-pubkey --qf '%{{DESCRIPTION}}\\n' 2>/dev/null | base64 -w0; echo\n",
        section("installed")
    );
    if let Some(p) = path {
        let q = quote(p);
        s.push_str(&format!(
            "{}; if [ -f {q} ]; then base64 -w0 < {q} || exit 1; echo; else echo @missing; fi\n",
            section("file")
        ));
    }
    s.push_str(&format!("{}\n", section("end")));
    s
}

/// The installed keys: every armored block in rpm's descriptions.
fn installed_keys(text: &[u8]) -> Vec<KeyInfo> {
    let t = String::from_utf8_lossy(text);
    t.split("-----BEGIN PGP PUBLIC KEY BLOCK-----")
        .skip(1)
        .filter_map(|b| {
            let block = format!("-----BEGIN PGP PUBLIC KEY BLOCK-----{b}");
            key_infos(block.as_bytes()).ok()
        })
        .flatten()
        .collect()
}

/// Pure: what to do, from the wanted state, the key id, the key file's keys and the installed
/// keys. Err is a failure message.
pub fn plan(
    present: bool,
    keyid: &str,
    file: Option<(&str, &[KeyInfo])>,
    fingerprints: &[String],
    installed: &[KeyInfo],
) -> Result<Plan, String> {
    let imported = installed.iter().any(|k| k.keyid.contains(keyid));
    if present {
        if imported {
            return Ok(Plan::NoChange);
        }
        let Some((path, keys)) = file else {
            return Err("When importing a key, a valid file must be given".into());
        };
        if !fingerprints.is_empty() {
            let have: Vec<&str> = keys.iter().map(|k| k.fingerprint.as_str()).collect();
            if !fingerprints.iter().all(|f| have.contains(&f.as_str())) {
                let set = |v: Vec<&str>| {
                    let items: Vec<String> = v.iter().map(|s| format!("'{s}'")).collect();
                    format!("{{{}}}", items.join(", "))
                };
                return Err(format!(
                    "The specified fingerprint, '{}', does not match any key fingerprints in '{}'",
                    set(fingerprints.iter().map(String::as_str).collect()),
                    set(have)
                ));
            }
        }
        return Ok(Plan::commands(vec![format!(
            "rpm --import {}",
            quote(path)
        )]));
    }
    if !imported {
        return Ok(Plan::NoChange);
    }
    let short = keyid[keyid.len().saturating_sub(8)..].to_lowercase();
    Ok(Plan::commands(vec![format!(
        "rpm --erase --allmatches gpg-pubkey-{short}"
    )]))
}

impl Module for RpmKey {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }
    fn run(&self, args: &Args<'_>, ctx: &mut ModuleCtx<'_>) -> Result<ModuleResult, ModuleError> {
        let key = args.req_str("key")?;
        let present = args.choice("state")?.as_deref() != Some("absent");
        let fingerprints: Vec<String> = args
            .list("fingerprint")?
            .unwrap_or_default()
            .iter()
            .map(|f| f.replace(' ', "").to_uppercase())
            .collect();
        if key.contains("://") {
            return Err(ModuleError::Args(
                "fetching a key from a URL is not implemented; copy the key to the target and give its path".into(),
            ));
        }
        let path = (!is_keyid(&key)).then_some(key.as_str());
        let text = match probe_sections(ctx, &probe_script(path))? {
            Ok(out) => out.stdout_str(),
            Err(out) => return Ok(failed_output("rpm_key: reading the keys", &out)),
        };
        let s = sections(&text);
        let b64 = |k: &str| {
            base64::engine::general_purpose::STANDARD
                .decode(s.get(k).map(|t| t.trim()).unwrap_or(""))
                .unwrap_or_default()
        };
        let installed = installed_keys(&b64("installed"));
        let file_keys = match path {
            Some(p) if s.get("file").map(|t| t.trim()) == Some("@missing") => {
                return Ok(ModuleResult::failed(format!("Not a valid key {p}")));
            }
            Some(p) => match key_infos(&b64("file")) {
                Ok(k) => Some((p, k)),
                Err(e) => return Ok(ModuleResult::failed(format!("{p}: {e}"))),
            },
            None => None,
        };
        let keyid = match &file_keys {
            Some((_, keys)) => keys
                .iter()
                .find(|k| k.primary)
                .map(|k| k.keyid.clone())
                .unwrap_or_default(),
            None => normalize_keyid(&key),
        };
        let file = file_keys.as_ref().map(|(p, k)| (*p, k.as_slice()));
        match plan(present, &keyid, file, &fingerprints, &installed) {
            Ok(p) => finish_command(ctx, Outcome::new(p), &Report::quiet("rpm")),
            Err(msg) => Ok(ModuleResult::failed(msg)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A v4 Ed25519 public key (from the OpenPGP spec's sample, RFC 9580 appendix A.3 style).
    fn sample_key() -> Vec<u8> {
        // version 4, created 0x5c2d8d1c, algo 22 (EdDSA), curve OID, 263-bit MPI
        let mut body = vec![4, 0x5c, 0x2d, 0x8d, 0x1c, 22, 9];
        body.extend([0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01]);
        body.extend([0x01, 0x07, 0x40]);
        body.extend([7u8; 32]);
        let mut pkt = vec![0x98, body.len() as u8];
        pkt.extend(&body);
        pkt
    }

    #[test]
    fn reads_key_ids_from_binary_and_armored_keys() {
        let bin = sample_key();
        let keys = key_infos(&bin).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys[0].primary);
        assert_eq!(keys[0].fingerprint.len(), 40);
        assert!(keys[0].fingerprint.ends_with(&keys[0].keyid));
        let armored = format!(
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: x\n\n{}\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n",
            base64::engine::general_purpose::STANDARD.encode(&bin)
        );
        assert_eq!(key_infos(armored.as_bytes()).unwrap(), keys);
        assert_eq!(
            installed_keys(format!("junk\n{armored}{armored}").as_bytes()).len(),
            2
        );
        assert!(key_infos(b"\x01\x02").is_err());
    }

    #[test]
    fn key_ids_and_plans() {
        assert!(is_keyid("0xDEADBEEF") && is_keyid("deadbeef12345678"));
        assert!(!is_keyid("/etc/pki/key") && !is_keyid("dead"));
        assert_eq!(normalize_keyid(" 0xdeadbeef "), "DEADBEEF");
        let k = KeyInfo {
            primary: true,
            keyid: "0123456789ABCDEF".into(),
            fingerprint: "AAAA0123456789ABCDEF".into(),
        };
        let inst = [k.clone()];
        let file = Some(("/k", std::slice::from_ref(&k)));
        assert_eq!(plan(true, &k.keyid, file, &[], &inst), Ok(Plan::NoChange));
        assert_eq!(
            plan(true, &k.keyid, file, &[], &[]),
            Ok(Plan::commands(vec!["rpm --import /k".into()]))
        );
        let e = plan(true, &k.keyid, file, &["BBBB".into()], &[]).unwrap_err();
        assert!(e.contains("does not match any key fingerprints"), "{e}");
        assert!(plan(
            true,
            &k.keyid,
            file,
            std::slice::from_ref(&k.fingerprint),
            &[]
        )
        .is_ok());
        assert_eq!(
            plan(true, "89ABCDEF", None, &[], &[]).unwrap_err(),
            "When importing a key, a valid file must be given"
        );
        assert_eq!(
            plan(false, "89ABCDEF", None, &[], &inst),
            Ok(Plan::commands(vec![
                "rpm --erase --allmatches gpg-pubkey-89abcdef".into()
            ]))
        );
        assert_eq!(
            plan(false, "FFFFFFFF", None, &[], &inst),
            Ok(Plan::NoChange)
        );
    }
}
