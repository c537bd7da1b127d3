//! The zip side of `unarchive`: the analysis commands (`zipinfo -T -s` and a stat of each
//! member) and Ansible's ZipArchive comparison made from their output, purely.

use super::super::probe::section;
use super::{UnarchiveArgs, Who};
use crate::shell::quote;

pub(super) fn zip_diff_part(ua: &UnarchiveArgs) -> String {
    let mut zi = String::from("$kp_zi -T -s \"$kp_src\"");
    if !ua.exclude.is_empty() {
        zi.push_str(" -x");
        for e in &ua.exclude {
            zi.push(' ');
            zi.push_str(&quote(e));
        }
    }
    for i in &ua.include {
        zi.push(' ');
        zi.push_str(&quote(i));
    }
    format!(
        "case $kp_h in Zip*) kp_out=$({zi} 2>/dev/null); kp_rc=$?; {}; printf '%s\\n' \"$kp_rc\"; {}; printf '%s\\n' \"$kp_out\"\n \
         {}; \"$kp_unzip\" -Z1 \"$kp_src\" | while IFS= read -r n; do \
         s=$(stat -c '%f:%s:%Y:%U:%G:%a' -- \"$kp_d/$n\" 2>/dev/null) || s=missing; printf '%s|%s\\n' \"$s\" \"$n\"; done;;\nesac\n",
        section("rc"),
        section("diff"),
        section("stats")
    )
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
pub(super) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A zipinfo `-T` time (`YYYYMMDD.HHMMSS`, local time) as seconds since the epoch.
pub(super) fn zip_time(ts: &str, tz_offset: i64) -> i64 {
    let n = |a: usize, b: usize| ts.get(a..b).and_then(|x| x.parse::<i64>().ok());
    let parts = (n(0, 4), n(4, 6), n(6, 8), n(9, 11), n(11, 13), n(13, 15));
    let (y, mo, d, h, mi, s) = match parts {
        (Some(y), Some(mo), Some(d), Some(h), Some(mi), Some(s)) if ts.len() == 15 => {
            if y < 1980 {
                (1980, 1, 1, 0, 0, 0)
            } else if y > 2107 {
                (2107, 12, 31, 23, 59, 59)
            } else {
                (y, mo, d, h, mi, s)
            }
        }
        _ => (1980, 1, 1, 0, 0, 0),
    };
    days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - tz_offset
}

pub(super) fn permstr_mode(p: &str) -> u32 {
    let rev: Vec<char> = p.chars().rev().collect();
    let mut mode = 0;
    for (i, c) in rev.iter().take(9).enumerate() {
        if "rwxst".contains(*c) {
            mode |= 1 << i;
        }
    }
    mode
}

/// Ansible's ZipArchive comparison from `zipinfo -T -s` lines and `stat` of each member
/// (`mode:size:mtime:user:group:perm|name`). Members' content is not compared (Ansible adds a
/// CRC32, which coreutils cannot compute). Pure.
pub fn zip_unarchived(
    zipinfo: &str,
    zipinfo_rc: i32,
    stats: &str,
    ua: &UnarchiveArgs,
    who: &Who,
) -> (bool, String) {
    let stat_of = |name: &str| -> Option<Vec<String>> {
        stats.lines().find_map(|l| {
            let (s, n) = l.split_once('|')?;
            (n == name).then(|| s.split(':').map(str::to_string).collect())
        })
    };
    let mut changes = String::new();
    let mut note = |m: String| {
        changes.push_str(&m);
        changes.push('\n');
    };
    for line in zipinfo.lines() {
        let pcs: Vec<&str> = line.splitn(8, char::is_whitespace).collect();
        let pcs: Vec<&str> = if pcs.iter().any(|p| p.is_empty()) {
            let mut v: Vec<&str> = Vec::new();
            let mut rest = line.trim_start();
            for _ in 0..7 {
                let Some((a, b)) = rest.split_once(char::is_whitespace) else {
                    break;
                };
                v.push(a);
                rest = b.trim_start();
            }
            v.push(rest);
            v
        } else {
            pcs
        };
        if pcs.len() != 8 || ![7, 8, 10].contains(&pcs[0].len()) || pcs[6].len() != 15 {
            continue;
        }
        let (perm, path) = (pcs[0], pcs[7]);
        if !"dl-?".contains(&perm[..1]) || ua.exclude.iter().any(|e| e == path) {
            continue;
        }
        let ftype = if path.ends_with('/') {
            'd'
        } else if perm.starts_with('l') {
            'L'
        } else {
            'f'
        };
        let Some(st) = stat_of(path).filter(|s| s.len() == 6) else {
            note(format!("Path {path} is missing"));
            continue;
        };
        let raw = u32::from_str_radix(&st[0], 16).unwrap_or(0);
        let kind = raw & 0o170000;
        let want_kind = match ftype {
            'd' => 0o040000,
            'L' => 0o120000,
            _ => 0o100000,
        };
        if kind != want_kind {
            note(format!("Path {path} exists as another type"));
            continue;
        }
        let (size, mtime): (u64, i64) = (st[1].parse().unwrap_or(0), st[2].parse().unwrap_or(0));
        if kind == 0o100000 {
            let ts = zip_time(pcs[6], who.tz_offset);
            if ua.keep_newer {
                if ts > mtime {
                    note(format!("File {path} is older, replacing file"));
                }
            } else if ts != mtime {
                note(format!("File {path} differs in mtime"));
            }
            if pcs[3].parse::<u64>().ok() != Some(size) {
                note(format!("File {path} differs in size"));
            }
        }
        if ftype != 'L' {
            let current = raw & 0o7777;
            let want = match &ua.attrs.mode {
                Some(m) => m.resolve(current, kind == 0o040000),
                None => permstr_mode(&perm[1..]),
            };
            if want != current {
                note(format!("Path {path} differs in permissions"));
            }
        }
        let fut_owner = ua.attrs.owner.clone().unwrap_or_else(|| who.user.clone());
        let fut_group = ua.attrs.group.clone().unwrap_or_else(|| who.group.clone());
        if st[3] != fut_owner || st[4] != fut_group {
            note(format!("Path {path} differs in ownership"));
        }
    }
    (zipinfo_rc == 0 && changes.is_empty(), changes)
}

/// Members of a zip archive kept by `include`/`exclude` (fnmatch), as Ansible lists them.
pub(super) fn zip_members(list: &str, ua: &UnarchiveArgs) -> Result<Vec<String>, String> {
    let re = |v: &[String]| -> Result<Vec<regex::Regex>, String> {
        v.iter()
            .map(|p| super::super::find::name_regex(p, false))
            .collect()
    };
    let (inc, exc) = (re(&ua.include)?, re(&ua.exclude)?);
    Ok(list
        .lines()
        .filter(|m| {
            if inc.is_empty() {
                !exc.iter().any(|e| e.is_match(m))
            } else {
                inc.iter().any(|i| i.is_match(m))
            }
        })
        .map(str::to_string)
        .collect())
}
