//! Base64 wrapping for here-documents (used by the file-write script and the ssh layer). The
//! module helpers that lived here are split by job: `args`, `coerce`, `mode`, `probe`, `plan`,
//! `write` and `testing`.

/// Base64 in 76-column lines, each ending in a newline (here-document body).
pub fn base64_lines(data: &[u8]) -> String {
    use base64::Engine;
    let enc = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(enc.len() + enc.len() / 76 + 1);
    for chunk in enc.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}
