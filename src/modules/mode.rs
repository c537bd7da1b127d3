//! File modes: parsing a `mode` parameter (octal text, integers, symbolic modes, `preserve`),
//! applying symbolic modes like chmod and Ansible do, and the warning for `mode: 644`.

use crate::value::Value;

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

/// A mode from an integer (the numeric mode, as in Ansible). The error completes "parameter
/// 'mode' …".
pub fn mode_from_int(n: &serde_json::Number) -> Result<Mode, String> {
    let Some(i) = n.as_u64() else {
        return Err(format!("is not a valid mode: {n}"));
    };
    let m = u32::try_from(i).map_err(|_| "is not a valid mode".to_string())?;
    if m > 0o7777 {
        return Err(format!("is out of range: {n}"));
    }
    Ok(Mode::Octal(m))
}

/// A mode from text: octal digits, a symbolic mode or `preserve`.
pub fn mode_from_text(s: &str) -> Result<Mode, String> {
    let s = s.trim();
    if s == "preserve" {
        return Ok(Mode::Preserve);
    }
    if !s.is_empty() && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        let m = u32::from_str_radix(s, 8).map_err(|_| "is not a valid mode".to_string())?;
        if m > 0o7777 {
            return Err(format!("is out of range: '{s}'"));
        }
        return Ok(Mode::Octal(m));
    }
    apply_symbolic(0, s, false).map_err(|e| format!("is not a valid mode '{s}' ({e})"))?;
    Ok(Mode::Symbolic(s.to_string()))
}

/// Ansible's classic trap: `mode: 644` (an integer that looks like octal digits) means the
/// decimal 644 = 0o1204. Returns a warning for the result when the value is such an integer.
pub fn mode_warning(v: &Value) -> Option<String> {
    let i = v.as_u64()?;
    let digits = i.to_string();
    (digits.len() >= 3 && digits.bytes().all(|b| (b'0'..=b'7').contains(&b))).then(|| {
        format!(
            "mode {i} is a decimal integer (= 0o{i:o}); write mode: '0{i}' (quoted, leading zero) for the octal mode"
        )
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
