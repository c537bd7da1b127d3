//! RPM package versions as the `dnf` module compares them: `epoch:version-release` ([`Evr`]),
//! rpm's `rpmvercmp` segment comparison, and one installed or available package ([`Pkg`], as
//! the probe prints it: `name epoch:version-release arch`).

use std::cmp::Ordering;

/// `epoch:version-release`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evr {
    pub epoch: u64,
    pub version: String,
    pub release: String,
}

impl Evr {
    /// `[epoch:]version[-release]`.
    pub fn parse(s: &str) -> Self {
        let (epoch, rest) = match s.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, s),
        };
        let (version, release) = rest.rsplit_once('-').unwrap_or((rest, ""));
        Self {
            epoch,
            version: version.to_string(),
            release: release.to_string(),
        }
    }
}

impl Ord for Evr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| rpmvercmp(&self.version, &other.version))
            .then_with(|| rpmvercmp(&self.release, &other.release))
    }
}

impl PartialOrd for Evr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// rpm's version comparison: alternating digit and letter segments, separators ignored, `~`
/// sorts before anything (even the end), `^` after the end but before anything else.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    let sep = |c: u8| !c.is_ascii_alphanumeric() && c != b'~' && c != b'^';
    loop {
        while a.first().is_some_and(|&c| sep(c)) {
            a = &a[1..];
        }
        while b.first().is_some_and(|&c| sep(c)) {
            b = &b[1..];
        }
        // `~` sorts before everything, even the end.
        match (a.first() == Some(&b'~'), b.first() == Some(&b'~')) {
            (true, true) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        // `^` sorts after the end but before anything else.
        match (a.first() == Some(&b'^'), b.first() == Some(&b'^')) {
            (true, true) => {
                a = &a[1..];
                b = &b[1..];
                continue;
            }
            (true, false) if b.is_empty() => return Ordering::Greater,
            (true, false) => return Ordering::Less,
            (false, true) if a.is_empty() => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        if a.is_empty() || b.is_empty() {
            break;
        }
        let numeric = a[0].is_ascii_digit();
        let take = |s: &[u8]| {
            s.iter()
                .take_while(|c| {
                    if numeric {
                        c.is_ascii_digit()
                    } else {
                        c.is_ascii_alphabetic()
                    }
                })
                .count()
        };
        let (na, nb) = (take(a), take(b));
        if nb == 0 {
            // Segments of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (sa, sb) = (&a[..na], &b[..nb]);
        let ord = if numeric {
            let trim =
                |s: &[u8]| -> Vec<u8> { s.iter().copied().skip_while(|&c| c == b'0').collect() };
            let (ta, tb) = (trim(sa), trim(sb));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(&tb))
        } else {
            sa.cmp(sb)
        };
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[na..];
        b = &b[nb..];
    }
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

/// One package as the probe prints it: `name epoch:version-release arch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkg {
    pub name: String,
    pub evr: Evr,
    pub arch: String,
}

impl Pkg {
    /// A probe line; None for anything else (rpm's "package x is not installed").
    pub fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [name, evr, arch] if evr.contains(':') => Some(Self {
                name: name.to_string(),
                evr: Evr::parse(evr),
                arch: arch.to_string(),
            }),
            _ => None,
        }
    }

    /// Every package line of a probe section.
    pub fn parse_all(text: &str) -> Vec<Self> {
        text.lines().filter_map(Self::parse).collect()
    }

    /// How dnf names a package in its results: `name-[epoch:]version-release.arch`.
    pub fn nevra(&self) -> String {
        let epoch = if self.evr.epoch == 0 {
            String::new()
        } else {
            format!("{}:", self.evr.epoch)
        };
        format!(
            "{}-{epoch}{}-{}.{}",
            self.name, self.evr.version, self.evr.release, self.arch
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpmvercmp_table() {
        use Ordering::*;
        for (a, b, want) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0", "1.0.1", Less),
            ("2.0", "2_0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0~rc1", "1.0~rc2", Less),
            ("1.0^git1", "1.0", Greater),
            ("1.0^git1", "1.0.1", Less),
            ("a", "1", Less),
            ("010", "10", Equal),
            ("1.0.fc30", "1.0.fc4", Greater),
        ] {
            assert_eq!(rpmvercmp(a, b), want, "{a} vs {b}");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn evr_and_packages() {
        assert!(Evr::parse("1:1.0-1") > Evr::parse("0:2.0-1"));
        assert!(Evr::parse("0:1.1-1") > Evr::parse("1.0-9"));
        assert_eq!(Evr::parse("1.0").release, "");
        let p = Pkg::parse("kp-hello 0:1.0-1 noarch").unwrap();
        assert_eq!(p.nevra(), "kp-hello-1.0-1.noarch");
        let p = Pkg::parse("x 2:3-4.el9 x86_64").unwrap();
        assert_eq!(p.nevra(), "x-2:3-4.el9.x86_64");
        assert_eq!(Pkg::parse("package x is not installed"), None);
        assert_eq!(
            Pkg::parse_all("a 0:1-1 noarch\nno\nb 0:2-1 noarch\n").len(),
            2
        );
    }
}
