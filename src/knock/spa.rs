//! Single Packet Authorization: one UDP datagram, encrypted and authenticated with the fleet key,
//! that says "I am a machine of this fleet, reach me here, these are my SSH host keys". Pure: time
//! and randomness are arguments; the listener and the client do the I/O.
//!
//! Packet (version 1), at most [`MAX_PACKET`] bytes:
//!
//! ```text
//! "KPS" 0x01 | 24-byte XChaCha20 nonce | ciphertext and 16-byte Poly1305 tag
//! ```
//!
//! The first four bytes are the associated data. The plaintext, big-endian:
//!
//! ```text
//! door name (u8 length + UTF-8) | unix time, seconds (u64) | 128-bit random nonce
//! | address to reach (u8 family 0/4/6 + 0/4/16 bytes) | host key fingerprints (u8 count + 32 bytes
//! each, SHA256 of the key blob as OpenSSH prints it) | host name or instance id (u8 length + UTF-8)
//! ```
//!
//! The AEAD key is derived per door from the fleet key with HKDF-SHA256 (salt `knockplay-spa-v1`,
//! info the door name), so a packet for one door never opens for another. XChaCha20-Poly1305 from
//! RustCrypto's `chacha20poly1305` (audited, constant-time); random nonces of 192 bits never
//! repeat in practice.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// The four bytes every version-1 packet starts with (also its associated data).
pub const HEADER: [u8; 4] = *b"KPS\x01";
/// The UDP port SPA doors listen on unless `spa_port` says otherwise.
pub const DEFAULT_PORT: u16 = 62201;
/// How far a packet's time may be from the listener's (either way) unless `spa_window` says.
pub const DEFAULT_WINDOW_SECS: u64 = 60;
/// Largest packet accepted or sent.
pub const MAX_PACKET: usize = 1024;
/// Most host key fingerprints one packet carries.
pub const MAX_FINGERPRINTS: usize = 8;
/// Longest door name or host name in a packet.
pub const MAX_NAME: usize = 64;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Header, nonce, tag and the smallest plaintext (empty door name and host name, no address,
/// no fingerprint).
pub const MIN_PACKET: usize = 4 + NONCE_LEN + TAG_LEN + 1 + 8 + 16 + 1 + 1 + 1;

/// The fleet key: 32 random bytes, written base64 in a file of mode 0600.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetKey([u8; 32]);

impl std::fmt::Debug for FleetKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetKey(..)")
    }
}

impl FleetKey {
    pub fn from_bytes(b: [u8; 32]) -> Self {
        FleetKey(b)
    }

    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, String> {
        let mut b = [0u8; 32];
        getrandom::getrandom(&mut b).map_err(|e| format!("no random bytes: {e}"))?;
        Ok(FleetKey(b))
    }

    /// The key file's text: base64 of the 32 bytes and a newline.
    pub fn encode(&self) -> String {
        format!(
            "{}\n",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }

    /// A key file's text (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| {
                "a fleet key is 32 bytes in base64 (knockplay keygen FILE writes one)".to_string()
            })?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("a fleet key is 32 bytes, this one has {}", b.len()))?;
        Ok(FleetKey(arr))
    }

    /// The AEAD key of one door.
    pub fn door_key(&self, door: &str) -> [u8; 32] {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(b"knockplay-spa-v1"), &self.0);
        let mut okm = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 8160: expand cannot fail.
        let _ = hk.expand(door.as_bytes(), &mut okm);
        okm
    }
}

/// Reads a key file: small, private (not readable by group or others), 32 base64 bytes.
pub fn read_key_file(path: &std::path::Path) -> Result<FleetKey, String> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{shown} is readable by others (mode {:04o}); chmod 600 it: whoever reads the fleet key can knock",
            meta.mode() & 0o7777
        ));
    }
    let mut text = String::new();
    f.take(4096)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    FleetKey::parse(&text).map_err(|e| format!("{shown}: {e}"))
}

/// Writes a new key to `path` (mode 0600, never over an existing file).
pub fn write_new_key_file(path: &std::path::Path) -> Result<FleetKey, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = FleetKey::generate()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(key.encode().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(key)
}

/// What a packet says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub door: String,
    /// Unix time in seconds, by the sender's clock.
    pub timestamp: u64,
    /// Random, never reused: the replay cache remembers it.
    pub nonce: [u8; 16],
    /// The address the host asks to be reached at (behind NAT the packet's source differs).
    pub reach: Option<IpAddr>,
    /// SHA256 of each of the host's SSH host key blobs.
    pub fingerprints: Vec<[u8; 32]>,
    /// A host name or instance id, for the history.
    pub name: String,
}

/// Why a packet was refused: the words the history records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Not a version-1 packet, too short, too long, or its plaintext does not parse.
    Malformed,
    /// No key of the door opens it (wrong key, or changed on the way).
    BadMac,
    /// Its time is outside the door's window.
    Stale,
    /// Its nonce was seen before.
    Replay,
    /// Its source, or the address it asks for, is outside the door's `allow`.
    NotAllowed,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::BadMac => "bad_mac",
            Refusal::Stale => "stale",
            Refusal::Replay => "replay",
            Refusal::NotAllowed => "not_allowed",
        }
    }
}

/// The packet for `msg` under `key`, with the AEAD nonce given (random in the client).
pub fn seal(key: &FleetKey, msg: &Message, aead_nonce: [u8; NONCE_LEN]) -> Result<Vec<u8>, String> {
    let plain = encode(msg)?;
    let cipher = XChaCha20Poly1305::new(Key::from_slice(&key.door_key(&msg.door)));
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&aead_nonce),
            Payload {
                msg: &plain,
                aad: &HEADER,
            },
        )
        .map_err(|_| "encryption failed".to_string())?;
    let mut out = Vec::with_capacity(4 + NONCE_LEN + sealed.len());
    out.extend_from_slice(&HEADER);
    out.extend_from_slice(&aead_nonce);
    out.extend_from_slice(&sealed);
    if out.len() > MAX_PACKET {
        return Err(format!(
            "the packet would be {} bytes (at most {MAX_PACKET})",
            out.len()
        ));
    }
    Ok(out)
}

/// Opens a packet meant for `door` with any of its keys (two during a rotation). Checks size,
/// version and authenticity only: time, replay and addresses are [`verify`]'s.
pub fn open(keys: &[FleetKey], door: &str, packet: &[u8]) -> Result<Message, Refusal> {
    let door_keys: Vec<[u8; 32]> = keys.iter().map(|k| k.door_key(door)).collect();
    open_with(&door_keys, door, packet)
}

/// [`open`] with the door keys derived already (the listener derives them once per door).
pub fn open_with(door_keys: &[[u8; 32]], door: &str, packet: &[u8]) -> Result<Message, Refusal> {
    if packet.len() < MIN_PACKET || packet.len() > MAX_PACKET || packet[..4] != HEADER {
        return Err(Refusal::Malformed);
    }
    let nonce = XNonce::from_slice(&packet[4..4 + NONCE_LEN]);
    let body = &packet[4 + NONCE_LEN..];
    for key in door_keys {
        let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
        if let Ok(plain) = cipher.decrypt(
            nonce,
            Payload {
                msg: body,
                aad: &HEADER,
            },
        ) {
            let msg = decode(&plain).ok_or(Refusal::Malformed)?;
            // The key is per door, so this only fails for a packet sealed by a confused client.
            if msg.door != door {
                return Err(Refusal::Malformed);
            }
            return Ok(msg);
        }
    }
    Err(Refusal::BadMac)
}

fn encode(m: &Message) -> Result<Vec<u8>, String> {
    if m.door.len() > MAX_NAME || m.name.len() > MAX_NAME {
        return Err(format!("door and host names are at most {MAX_NAME} bytes"));
    }
    if m.fingerprints.len() > MAX_FINGERPRINTS {
        return Err(format!("at most {MAX_FINGERPRINTS} host keys"));
    }
    let mut v = Vec::with_capacity(256);
    v.push(m.door.len() as u8);
    v.extend_from_slice(m.door.as_bytes());
    v.extend_from_slice(&m.timestamp.to_be_bytes());
    v.extend_from_slice(&m.nonce);
    match m.reach {
        None => v.push(0),
        Some(IpAddr::V4(a)) => {
            v.push(4);
            v.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            v.push(6);
            v.extend_from_slice(&a.octets());
        }
    }
    v.push(m.fingerprints.len() as u8);
    for f in &m.fingerprints {
        v.extend_from_slice(f);
    }
    v.push(m.name.len() as u8);
    v.extend_from_slice(m.name.as_bytes());
    Ok(v)
}

/// A cursor over the plaintext; every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn text(&mut self) -> Option<String> {
        let n = self.u8()? as usize;
        if n > MAX_NAME {
            return None;
        }
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).ok()?;
        // Names go into the history and logs: printable only.
        if s.chars().any(|c| c.is_control()) {
            return None;
        }
        Some(s.to_string())
    }
}

/// The plaintext parser, for the fuzz target (what a key holder could send).
#[doc(hidden)]
pub fn decode_plaintext(plain: &[u8]) -> Option<Message> {
    decode(plain)
}

fn decode(plain: &[u8]) -> Option<Message> {
    let mut r = Reader(plain);
    let door = r.text()?;
    let timestamp = u64::from_be_bytes(r.take(8)?.try_into().ok()?);
    let nonce: [u8; 16] = r.take(16)?.try_into().ok()?;
    let reach = match r.u8()? {
        0 => None,
        4 => Some(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(r.take(4)?).ok()?,
        ))),
        6 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(r.take(16)?).ok()?,
        ))),
        _ => return None,
    };
    let n = r.u8()? as usize;
    if n > MAX_FINGERPRINTS {
        return None;
    }
    let mut fingerprints = Vec::with_capacity(n);
    for _ in 0..n {
        fingerprints.push(r.take(32)?.try_into().ok()?);
    }
    let name = r.text()?;
    if !r.0.is_empty() {
        return None;
    }
    Some(Message {
        door,
        timestamp,
        nonce,
        reach,
        fingerprints,
        name,
    })
}

/// SHA256 of an SSH public key line (`ssh-ed25519 AAAA... comment`), as OpenSSH computes it.
pub fn fingerprint_of_pubkey_line(line: &str) -> Result<[u8; 32], String> {
    let blob = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| "not an SSH public key line (type, base64 key, comment)".to_string())?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| "the key is not base64".to_string())?;
    Ok(fingerprint_of_blob(&bytes))
}

/// SHA256 of a host key blob (what the SSH server sends).
pub fn fingerprint_of_blob(blob: &[u8]) -> [u8; 32] {
    Sha256::digest(blob).into()
}

/// `SHA256:base64` without padding, as `ssh-keygen -l` prints it.
pub fn fingerprint_text(fp: &[u8; 32]) -> String {
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(fp)
    )
}

/// Nonces of accepted packets, remembered for twice the window (a packet older than the window
/// is stale anyway). Only authenticated packets get here, so the bound is generous; when full of
/// live nonces, new packets are refused rather than forgotten ones accepted again.
#[derive(Debug)]
pub struct ReplayCache {
    seen: HashMap<[u8; 16], u64>,
    order: VecDeque<([u8; 16], u64)>,
    capacity: usize,
}

/// Most nonces remembered at once.
pub const REPLAY_CAPACITY: usize = 100_000;

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache::new(REPLAY_CAPACITY)
    }
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        ReplayCache {
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Forgets nonces seen before `oldest` (unix seconds).
    pub fn expire(&mut self, oldest: u64) {
        while let Some(&(n, at)) = self.order.front() {
            if at >= oldest {
                break;
            }
            self.order.pop_front();
            if self.seen.get(&n) == Some(&at) {
                self.seen.remove(&n);
            }
        }
    }

    /// Records `nonce` seen at `at`; false when it was seen before (or the cache is full).
    pub fn insert(&mut self, nonce: [u8; 16], at: u64) -> bool {
        if self.seen.contains_key(&nonce) || self.seen.len() >= self.capacity {
            return false;
        }
        self.seen.insert(nonce, at);
        self.order.push_back((nonce, at));
        true
    }

    pub fn contains(&self, nonce: &[u8; 16]) -> bool {
        self.seen.contains_key(nonce)
    }
}

/// A packet that passed every check: whom to configure and which host keys to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub door: usize,
    /// The address the run connects to: the requested one when inside `allow`, else the source.
    pub target: IpAddr,
    pub message: Message,
}

/// One SPA door as the verifier sees it (its keys derived once).
#[derive(Clone)]
pub struct SpaDoor {
    pub index: usize,
    pub name: String,
    door_keys: Vec<[u8; 32]>,
    pub port: u16,
    pub window_secs: u64,
}

impl std::fmt::Debug for SpaDoor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SpaDoor({} #{} port {})",
            self.name, self.index, self.port
        )
    }
}

impl SpaDoor {
    pub fn new(index: usize, name: &str, keys: &[FleetKey], port: u16, window_secs: u64) -> Self {
        SpaDoor {
            index,
            name: name.to_string(),
            door_keys: keys.iter().map(|k| k.door_key(name)).collect(),
            port,
            window_secs,
        }
    }
}

/// Verifies packets for the SPA doors: open, then time, then replay, then addresses. `allowed`
/// says whether an address may knock at a door. Pure apart from the replay cache it keeps.
pub fn verify(
    doors: &[SpaDoor],
    port: u16,
    source: IpAddr,
    packet: &[u8],
    now_unix: u64,
    replay: &mut ReplayCache,
    allowed: impl Fn(usize, IpAddr) -> bool,
) -> Result<Accepted, (Option<usize>, Refusal)> {
    let mut refusal = (None, Refusal::Malformed);
    for d in doors.iter().filter(|d| d.port == port) {
        let msg = match open_with(&d.door_keys, &d.name, packet) {
            Ok(m) => m,
            Err(r) => {
                // Report the most specific reason: a bad MAC for some door beats malformed.
                if r == Refusal::BadMac || refusal.0.is_none() {
                    refusal = (Some(d.index), r);
                }
                continue;
            }
        };
        if msg.timestamp.abs_diff(now_unix) > d.window_secs {
            return Err((Some(d.index), Refusal::Stale));
        }
        if !allowed(d.index, source) {
            return Err((Some(d.index), Refusal::NotAllowed));
        }
        let target = match msg.reach {
            Some(a) if allowed(d.index, a) => a,
            _ => source,
        };
        replay.expire(now_unix.saturating_sub(2 * d.window_secs));
        if !replay.insert(msg.nonce, now_unix) {
            return Err((Some(d.index), Refusal::Replay));
        }
        return Ok(Accepted {
            door: d.index,
            target,
            message: msg,
        });
    }
    Err(refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> FleetKey {
        FleetKey([b; 32])
    }

    fn msg(door: &str, ts: u64) -> Message {
        Message {
            door: door.into(),
            timestamp: ts,
            nonce: [7; 16],
            reach: Some("10.0.0.9".parse().unwrap()),
            fingerprints: vec![[1; 32], [2; 32]],
            name: "i-0abc".into(),
        }
    }

    fn door(index: usize, name: &str, keys: Vec<FleetKey>) -> SpaDoor {
        SpaDoor::new(index, name, &keys, DEFAULT_PORT, 60)
    }

    #[test]
    fn keys_round_trip_as_base64_and_bad_files_are_named() {
        let k = FleetKey::generate().unwrap();
        assert_eq!(FleetKey::parse(&k.encode()).unwrap(), k);
        assert!(FleetKey::parse("not base64!")
            .unwrap_err()
            .contains("keygen"));
        assert!(FleetKey::parse("AAAA").unwrap_err().contains("has 3"));
        assert_ne!(FleetKey::generate().unwrap(), k);
        assert_eq!(format!("{k:?}"), "FleetKey(..)");
    }

    #[test]
    fn a_packet_opens_with_its_door_key_only() {
        let m = msg("boot", 1_000);
        let p = seal(&key(1), &m, [3; 24]).unwrap();
        assert!(p.len() <= MAX_PACKET && p.len() >= MIN_PACKET);
        assert_eq!(open(&[key(1)], "boot", &p).unwrap(), m);
        // Rotation: the old and the new key both open.
        assert_eq!(open(&[key(9), key(1)], "boot", &p).unwrap(), m);
        assert_eq!(open(&[key(2)], "boot", &p), Err(Refusal::BadMac));
        // Another door derives another key.
        assert_eq!(open(&[key(1)], "web", &p), Err(Refusal::BadMac));
        // Every flipped bit after the header is caught by the MAC; in the header, by the format.
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] ^= 0x10;
            let want = if i < 4 {
                Refusal::Malformed
            } else {
                Refusal::BadMac
            };
            assert_eq!(open(&[key(1)], "boot", &q), Err(want), "byte {i}");
        }
        for n in [0, 3, MIN_PACKET - 1, p.len() - 1] {
            assert!(
                open(&[key(1)], "boot", &p[..n]).is_err(),
                "truncated to {n}"
            );
        }
        assert_eq!(
            open(&[key(1)], "boot", &vec![0; MAX_PACKET + 1]),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn plaintext_is_bounded_and_checked() {
        let mut m = msg("boot", 5);
        m.fingerprints = vec![[0; 32]; MAX_FINGERPRINTS + 1];
        assert!(seal(&key(1), &m, [0; 24]).is_err());
        let mut m = msg("boot", 5);
        m.name = "x".repeat(MAX_NAME + 1);
        assert!(seal(&key(1), &m, [0; 24]).is_err());
        // A name with control characters never reaches the history.
        let mut m = msg("boot", 5);
        m.name = "evil\x1b[2J".into();
        let p = seal(&key(1), &m, [0; 24]).unwrap();
        assert_eq!(open(&[key(1)], "boot", &p), Err(Refusal::Malformed));
        // Every prefix of a valid plaintext fails to decode; so does trailing garbage.
        let plain = encode(&msg("boot", 5)).unwrap();
        for n in 0..plain.len() {
            assert!(decode(&plain[..n]).is_none(), "prefix {n}");
        }
        let mut long = plain.clone();
        long.push(0);
        assert!(decode(&long).is_none());
        assert_eq!(decode(&plain).unwrap(), msg("boot", 5));
    }

    #[test]
    fn verify_checks_time_replay_and_addresses_in_order() {
        let doors = [door(0, "boot", vec![key(1)])];
        let allow = |_: usize, a: IpAddr| a.to_string().starts_with("10.0.0.");
        let src: IpAddr = "10.0.0.5".parse().unwrap();
        let mut cache = ReplayCache::new(10);
        let p = seal(&key(1), &msg("boot", 1_000), [3; 24]).unwrap();
        let ok = verify(&doors, DEFAULT_PORT, src, &p, 1_030, &mut cache, allow).unwrap();
        assert_eq!(ok.target, "10.0.0.9".parse::<IpAddr>().unwrap());
        assert_eq!(ok.message.name, "i-0abc");
        // The same packet again: replay (also with a fresh AEAD nonce: the inner nonce counts).
        let again = verify(&doors, DEFAULT_PORT, src, &p, 1_031, &mut cache, allow);
        assert_eq!(again.unwrap_err(), (Some(0), Refusal::Replay));
        let p2 = seal(&key(1), &msg("boot", 1_000), [4; 24]).unwrap();
        let again = verify(&doors, DEFAULT_PORT, src, &p2, 1_031, &mut cache, allow);
        assert_eq!(again.unwrap_err(), (Some(0), Refusal::Replay));
        // Two minutes old, or from the future.
        let mut m = msg("boot", 1_000);
        m.nonce = [8; 16];
        let old = seal(&key(1), &m, [5; 24]).unwrap();
        let r = verify(&doors, DEFAULT_PORT, src, &old, 1_120, &mut cache, allow);
        assert_eq!(r.unwrap_err(), (Some(0), Refusal::Stale));
        let r = verify(&doors, DEFAULT_PORT, src, &old, 880, &mut cache, allow);
        assert_eq!(r.unwrap_err(), (Some(0), Refusal::Stale));
        // From outside allow; and a requested address outside allow falls back to the source.
        let outsider: IpAddr = "192.168.1.1".parse().unwrap();
        let r = verify(
            &doors,
            DEFAULT_PORT,
            outsider,
            &old,
            1_000,
            &mut cache,
            allow,
        );
        assert_eq!(r.unwrap_err(), (Some(0), Refusal::NotAllowed));
        m.reach = Some("192.168.9.9".parse().unwrap());
        let p = seal(&key(1), &m, [6; 24]).unwrap();
        let ok = verify(&doors, DEFAULT_PORT, src, &p, 1_000, &mut cache, allow).unwrap();
        assert_eq!(ok.target, src);
        // Wrong key, garbage, another port.
        let bad = seal(&key(2), &msg("boot", 1_000), [3; 24]).unwrap();
        let r = verify(&doors, DEFAULT_PORT, src, &bad, 1_000, &mut cache, allow);
        assert_eq!(r.unwrap_err(), (Some(0), Refusal::BadMac));
        let r = verify(
            &doors,
            DEFAULT_PORT,
            src,
            b"hello",
            1_000,
            &mut cache,
            allow,
        );
        assert_eq!(r.unwrap_err(), (Some(0), Refusal::Malformed));
        let r = verify(&doors, 9, src, &bad, 1_000, &mut cache, allow);
        assert_eq!(r.unwrap_err(), (None, Refusal::Malformed));
    }

    #[test]
    fn the_replay_cache_forgets_old_nonces_and_refuses_when_full() {
        let mut c = ReplayCache::new(2);
        assert!(c.insert([1; 16], 10));
        assert!(!c.insert([1; 16], 11));
        assert!(c.insert([2; 16], 20));
        assert!(!c.insert([3; 16], 21), "full: refused, not forgotten");
        c.expire(15);
        assert!(!c.contains(&[1; 16]));
        assert!(c.insert([3; 16], 21));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn fingerprints_match_openssh() {
        let line =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDBvHTkiMYNb9Gc2SLcSXuyWg5hmPvmuLzPG9ipl30gO test";
        let fp = fingerprint_text(&fingerprint_of_pubkey_line(line).unwrap());
        assert!(fingerprint_of_pubkey_line("garbage").is_err());
        // What ssh-keygen says, when it is installed.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.pub");
        std::fs::write(&f, format!("{line}\n")).unwrap();
        if let Ok(out) = std::process::Command::new("ssh-keygen")
            .arg("-l")
            .arg("-f")
            .arg(&f)
            .output()
        {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(text.contains(&fp), "{text} vs {fp}");
        }
    }
}
