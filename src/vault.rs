//! Ansible Vault: files and values encrypted by `ansible-vault` (formats 1.1 and 1.2, AES256),
//! decrypted with the passwords given by `--vault-password-file`, `--ask-vault-pass`,
//! `--vault-id label@source`, ansible.cfg's `vault_password_file` or
//! `ANSIBLE_VAULT_PASSWORD_FILE`.
//!
//! The format: a header line `$ANSIBLE_VAULT;1.1;AES256` (1.2 adds `;label`), then the hex of
//! three hex lines: salt, HMAC, ciphertext. PBKDF2-HMAC-SHA256 (10,000 rounds) turns password and
//! salt into 80 bytes: the AES-256 key, the HMAC-SHA256 key and the CTR counter block. The HMAC is
//! checked (in constant time) before anything is decrypted; the plaintext carries PKCS#7 padding.
//!
//! The secrets are set once at start (the command line is the only edge that knows them) and
//! read by the YAML loader, which decrypts whole files and `!vault` values where they are read.

use std::sync::OnceLock;

pub mod source;

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A vault password and the label it was given for (`default` without one).
#[derive(Clone)]
pub struct Secret {
    pub label: String,
    password: Vec<u8>,
}

impl Secret {
    pub fn new(label: &str, password: &[u8]) -> Secret {
        Secret {
            label: label.to_string(),
            password: password.to_vec(),
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "Secret({})", self.label)
    }
}

/// Why vault text could not be decrypted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("Attempting to decrypt but no vault secrets found (give --vault-password-file, --ask-vault-pass or --vault-id)")]
    NoSecrets,
    #[error("Decryption failed (no vault secrets were found that could decrypt)")]
    WrongPassword,
    #[error("not vault text: {0}")]
    Malformed(String),
}

static SECRETS: OnceLock<Vec<Secret>> = OnceLock::new();

/// Sets the run's vault secrets (once; later calls are ignored). Returns false if they were set.
pub fn set_secrets(secrets: Vec<Secret>) -> bool {
    SECRETS.set(secrets).is_ok()
}

/// The run's vault secrets (none until [`set_secrets`]).
pub fn secrets() -> &'static [Secret] {
    SECRETS.get().map(Vec::as_slice).unwrap_or(&[])
}

/// Whether `text` is vault text (whole file or `!vault` value).
pub fn is_vault(text: &str) -> bool {
    text.trim_start().starts_with("$ANSIBLE_VAULT;")
}

/// Decrypts with the run's secrets.
pub fn decrypt_text(text: &str) -> Result<Vec<u8>, VaultError> {
    decrypt(text, secrets())
}

/// A controller file's bytes, decrypted when it is vault text (copy and template sources, as
/// Ansible does by default). Errors name the file.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !bytes.starts_with(b"$ANSIBLE_VAULT;") {
        return Ok(bytes);
    }
    let text = String::from_utf8_lossy(&bytes);
    decrypt_text(&text).map_err(|e| format!("{}: {e}", path.display()))
}

const ROUNDS: u32 = 10_000;

/// Decrypts vault `text` with the first of `secrets` that opens it (those whose label matches
/// the 1.2 header's are tried first, as ansible-vault does).
pub fn decrypt(text: &str, secrets: &[Secret]) -> Result<Vec<u8>, VaultError> {
    let bad = |m: &str| VaultError::Malformed(m.to_string());
    let text = text.trim_start();
    let (header, body) = text.split_once('\n').ok_or_else(|| bad("no body"))?;
    let fields: Vec<&str> = header.trim_end().split(';').collect();
    let label = match fields.as_slice() {
        ["$ANSIBLE_VAULT", "1.1", "AES256"] => None,
        ["$ANSIBLE_VAULT", "1.2", "AES256", label] => Some(*label),
        _ => return Err(bad(&format!("unsupported header '{}'", header.trim_end()))),
    };
    let hex_body: String = body.split_whitespace().collect();
    let inner = hex::decode(&hex_body).map_err(|_| bad("the body is not hex"))?;
    let inner = String::from_utf8(inner).map_err(|_| bad("the body is not hex lines"))?;
    let mut parts = inner.split('\n');
    let mut next = |what: &str| {
        parts
            .next()
            .and_then(|p| hex::decode(p.trim()).ok())
            .ok_or_else(|| bad(&format!("no {what}")))
    };
    let (salt, mac, ciphertext) = (next("salt")?, next("HMAC")?, next("ciphertext")?);
    if secrets.is_empty() {
        return Err(VaultError::NoSecrets);
    }
    let mut ordered: Vec<&Secret> = secrets
        .iter()
        .filter(|s| Some(s.label.as_str()) == label)
        .collect();
    ordered.extend(secrets.iter().filter(|s| Some(s.label.as_str()) != label));
    for s in ordered {
        if let Some(plain) = open(&s.password, &salt, &mac, &ciphertext) {
            return unpad(plain).ok_or_else(|| bad("bad padding"));
        }
    }
    Err(VaultError::WrongPassword)
}

/// The plaintext (padded) when the HMAC matches.
fn open(password: &[u8], salt: &[u8], mac: &[u8], ciphertext: &[u8]) -> Option<Vec<u8>> {
    let mut keys = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, ROUNDS, &mut keys);
    let (aes_key, rest) = keys.split_at(32);
    let (mac_key, iv) = rest.split_at(32);
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(mac_key).ok()?;
    h.update(ciphertext);
    h.verify_slice(mac).ok()?;
    let mut data = ciphertext.to_vec();
    let mut c = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(aes_key, iv).ok()?;
    c.apply_keystream(&mut data);
    Some(data)
}

fn unpad(mut data: Vec<u8>) -> Option<Vec<u8>> {
    let n = usize::from(*data.last()?);
    if n == 0
        || n > 16
        || n > data.len()
        || !data[data.len() - n..].iter().all(|&b| usize::from(b) == n)
    {
        return None;
    }
    data.truncate(data.len() - n);
    Some(data)
}

/// Encrypts `plain` as ansible-vault 1.1 (1.2 with a label) does, with a random salt: for
/// `knockplay` tests and tools. Output lines are 80 characters like ansible-vault's.
pub fn encrypt(plain: &[u8], secret: &Secret, with_label: bool) -> String {
    let mut salt = [0u8; 32];
    // Without randomness the salt would repeat; a failure here is the OS's, and fatal for
    // nothing but this encryption: fall back to a time-derived salt rather than panic.
    if getrandom::getrandom(&mut salt).is_err() {
        let t = crate::timefmt::unix_millis(std::time::SystemTime::now());
        salt[..8].copy_from_slice(&t.to_le_bytes());
    }
    let mut keys = [0u8; 80];
    pbkdf2::pbkdf2_hmac::<Sha256>(&secret.password, &salt, ROUNDS, &mut keys);
    let (aes_key, rest) = keys.split_at(32);
    let (mac_key, iv) = rest.split_at(32);
    let pad = 16 - plain.len() % 16;
    let mut data = plain.to_vec();
    data.extend(std::iter::repeat_n(pad as u8, pad));
    if let Ok(mut c) = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(aes_key, iv) {
        c.apply_keystream(&mut data);
    }
    let mac = match <Hmac<Sha256> as Mac>::new_from_slice(mac_key) {
        Ok(mut h) => {
            h.update(&data);
            h.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    let inner = format!(
        "{}\n{}\n{}",
        hex::encode(salt),
        hex::encode(mac),
        hex::encode(&data)
    );
    let body = hex::encode(inner);
    let header = if with_label {
        format!("$ANSIBLE_VAULT;1.2;AES256;{}", secret.label)
    } else {
        "$ANSIBLE_VAULT;1.1;AES256".to_string()
    };
    let mut out = header;
    for chunk in body.as_bytes().chunks(80) {
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(chunk));
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by the real ansible-vault (ansible-core 2.18) with the password "hunter2".
    const V11: &str = "$ANSIBLE_VAULT;1.1;AES256
64323566653362336534336535643563613633666633336431616435333066653834313865316263
6132373638303061313138353637356436323639336137300a646638386436336430616466323036
32396563376639343338353265363962656366333836663030656463343738636231356435383431
3039326666393933610a316339306362633735656332323966373635373863633533323964623164
31623665343262393131383863383964373233336133353765373364383333653266653331663966
65356164363536383032326437666431633563663862386637623865346561613335356537373564
383038363031653433313039333663376233
";
    const V12: &str = "$ANSIBLE_VAULT;1.2;AES256;prod
38363138656434653962616130353337383237323832393038663236303461363937646638636566
6561623433326566303365623939393433376139323163650a623739373062653431666464613233
63613933306430613662343963666264353763313134626533393534366635343137323830353864
6563316331313032360a316661393833653662323766346534306234326634333964623936616632
66356163363465386563336238663933333064373863326139623132373936656330363533316265
37386434653134633166396335383739396234356337383761356163653036393033636232393838
613739626361356538373661323764303937
";
    const PLAIN: &str = "db_password: s3cr3t-from-vault\napi_token: \"tok-42\"\n";

    #[test]
    fn opens_what_ansible_vault_wrote() {
        let pw = [Secret::new("default", b"hunter2")];
        assert_eq!(decrypt(V11, &pw).unwrap(), PLAIN.as_bytes());
        assert_eq!(decrypt(V12, &pw).unwrap(), PLAIN.as_bytes());
        // The labelled secret is tried first; others still work.
        let two = [Secret::new("dev", b"nope"), Secret::new("prod", b"hunter2")];
        assert_eq!(decrypt(V12, &two).unwrap(), PLAIN.as_bytes());
    }

    #[test]
    fn wrong_password_tampering_and_no_secret_are_errors() {
        assert_eq!(
            decrypt(V11, &[Secret::new("default", b"hunter3")]),
            Err(VaultError::WrongPassword)
        );
        assert_eq!(decrypt(V11, &[]), Err(VaultError::NoSecrets));
        // One flipped hex digit in the ciphertext: the HMAC refuses it.
        let mut t = V11.to_string();
        let at = t.len() - 3;
        let c = if &t[at..at + 1] == "3" { "4" } else { "3" };
        t.replace_range(at..at + 1, c);
        assert!(decrypt(&t, &[Secret::new("d", b"hunter2")]).is_err());
        assert!(matches!(
            decrypt("$ANSIBLE_VAULT;9.9;AES256\n00\n", &[]),
            Err(VaultError::Malformed(_))
        ));
    }

    #[test]
    fn what_it_encrypts_opens_again() {
        let s = Secret::new("lbl", b"pw");
        let e = encrypt(b"hello vault", &s, true);
        assert!(e.starts_with("$ANSIBLE_VAULT;1.2;AES256;lbl\n"));
        assert!(e.lines().skip(1).all(|l| l.len() <= 80));
        assert_eq!(decrypt(&e, &[s]).unwrap(), b"hello vault");
        assert!(format!("{:?}", Secret::new("x", b"pw")) == "Secret(x)");
    }
}
