//! Host names as written in inventories: `host:port`, `[::1]:22`, and ranges
//! (`web[01:20].example.com`, `db-[a:c]`, `node[0:10:2]`).

use std::net::Ipv6Addr;

/// Split an optional `:port` and expand ranges: `web[1:2]:2222` → `[("web1", 2222), ("web2", 2222)]`.
pub fn expand(pattern: &str) -> Result<Vec<(String, Option<u16>)>, String> {
    let (host, port) = split_port(pattern)?;
    Ok(expand_ranges(&host)?
        .into_iter()
        .map(|h| (h, port))
        .collect())
}

/// Separate `host:port`; IPv6 addresses keep their colons (`[addr]:port` for a port).
fn split_port(pattern: &str) -> Result<(String, Option<u16>), String> {
    let p = pattern.trim();
    if p.is_empty() {
        return Err("empty host name".into());
    }
    // Colons outside brackets.
    let mut depth = 0i32;
    let mut colons = Vec::new();
    for (i, c) in p.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced brackets in host '{p}'"));
    }
    if p.parse::<Ipv6Addr>().is_ok() {
        return Ok((p.to_string(), None));
    }
    let (host, port) = match colons.as_slice() {
        [] => (p, None),
        [i] => (&p[..*i], Some(&p[i + 1..])),
        _ => {
            return Err(format!(
                "cannot parse host '{p}' (IPv6 addresses with a port are written [addr]:port)"
            ))
        }
    };
    let port = match port {
        None => None,
        Some(s) => Some(
            s.parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("invalid port '{s}' in host '{p}'"))?,
        ),
    };
    // `[2001:db8::1]` → the bare address.
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) if inner.parse::<Ipv6Addr>().is_ok() => inner,
        _ => host,
    };
    if host.is_empty() {
        return Err(format!("empty host name in '{p}'"));
    }
    Ok((host.to_string(), port))
}

/// Expand every `[beg:end(:step)]` range (numeric with zero padding, or single letters).
pub fn expand_ranges(host: &str) -> Result<Vec<String>, String> {
    expand_within(host, MAX_HOSTS_PER_PATTERN).map_err(|e| match e {
        Expand::Bad(m) => m,
        Expand::TooMany => {
            format!("host pattern '{host}' expands to more than {MAX_HOSTS_PER_PATTERN} hosts")
        }
    })
}

/// Most hosts one pattern may stand for: several ranges multiply (`h[0:99][0:99][0:99]` is a
/// million), so the product is bounded, not only each range.
pub const MAX_HOSTS_PER_PATTERN: usize = 100_000;

enum Expand {
    Bad(String),
    TooMany,
}

impl From<String> for Expand {
    fn from(m: String) -> Self {
        Expand::Bad(m)
    }
}

/// [`expand_ranges`] producing at most `limit` names.
fn expand_within(host: &str, limit: usize) -> Result<Vec<String>, Expand> {
    let Some(open) = host.find('[') else {
        return Ok(vec![host.to_string()]);
    };
    let close = host[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("unbalanced brackets in host '{host}'"))?;
    let (head, spec, tail) = (&host[..open], &host[open + 1..close], &host[close + 1..]);
    let items = range_items(spec)?;
    if items.len() > limit {
        return Err(Expand::TooMany);
    }
    // The rest of the pattern multiplies these items: it may stand for limit / items names.
    let tails = expand_within(tail, limit / items.len().max(1))?;
    let mut out = Vec::new();
    for rest in tails {
        for i in &items {
            out.push(format!("{head}{i}{rest}"));
        }
    }
    // Keep the natural order: first range varies slowest.
    let per = items.len();
    let tails = out.len() / per.max(1);
    let mut ordered = Vec::with_capacity(out.len());
    for i in 0..per {
        for t in 0..tails {
            ordered.push(out[t * per + i].clone());
        }
    }
    Ok(ordered)
}

/// The values of one `[start:end]` or `[start:end:step]` range (numbers or single letters).
fn range_items(spec: &str) -> Result<Vec<String>, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (beg, end, step) = match parts.as_slice() {
        [b, e] => (*b, *e, 1usize),
        [b, e, s] => (
            *b,
            *e,
            s.parse::<usize>()
                .ok()
                .filter(|&s| s > 0)
                .ok_or_else(|| format!("invalid step '{s}' in host range '[{spec}]'"))?,
        ),
        _ => {
            return Err(format!(
                "invalid host range '[{spec}]' (expected [start:end] or [start:end:step])"
            ))
        }
    };
    let items = if is_letter(beg) && is_letter(end) {
        let (b, e) = (beg.as_bytes()[0], end.as_bytes()[0]);
        if b > e {
            return Err(format!("host range '[{spec}]' ends before it starts"));
        }
        (b..=e)
            .step_by(step)
            .map(|c| (c as char).to_string())
            .collect()
    } else {
        let beg = if beg.is_empty() { "0" } else { beg };
        let (b, e) = match (beg.parse::<u64>(), end.parse::<u64>()) {
            (Ok(b), Ok(e)) => (b, e),
            _ => {
                return Err(format!(
                    "invalid host range '[{spec}]' (numbers or single letters)"
                ))
            }
        };
        if b > e {
            return Err(format!("host range '[{spec}]' ends before it starts"));
        }
        let width = if beg.len() > 1 && beg.starts_with('0') {
            if beg.len() != end.len() {
                return Err(format!(
                    "host range '[{spec}]' must use equal-length start and end when zero-padded"
                ));
            }
            beg.len()
        } else {
            0
        };
        if (e - b) / step as u64 > MAX_HOSTS_PER_PATTERN as u64 {
            return Err(format!("host range '[{spec}]' is too large"));
        }
        (b..=e)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    };
    Ok(items)
}

fn is_letter(s: &str) -> bool {
    s.len() == 1 && s.as_bytes()[0].is_ascii_alphabetic()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_multiply_and_the_product_is_bounded() {
        assert_eq!(
            expand_ranges("h[0:1][a:b]").unwrap(),
            ["h0a", "h0b", "h1a", "h1b"]
        );
        assert_eq!(expand_ranges("h[0:99][0:99]").unwrap().len(), 10_000);
        let err = expand_ranges("h[0:99][0:99][0:99]").unwrap_err();
        assert!(err.contains("more than 100000 hosts"), "{err}");
        // Found by the inventory fuzz target: eight small ranges on one line (12^8 names) took the
        // parser past a gigabyte.
        let line =
            "''\x18\x18.|[:11]{\x18.|[:11]{\x18.|[:11]{.|[:11]{.|[:11]{.|[:11]{.|[:11]{.|[:11]{1B";
        let err = expand_ranges(line).unwrap_err();
        assert!(err.contains("more than 100000 hosts"), "{err}");
    }

    #[test]
    fn expands_ranges_and_ports() {
        type Expected<'a> = &'a [(&'a str, Option<u16>)];
        let cases: &[(&str, Expected)] = &[
            ("web1", &[("web1", None)]),
            ("web1:2222", &[("web1", Some(2222))]),
            ("10.0.0.5", &[("10.0.0.5", None)]),
            ("10.0.0.5:22", &[("10.0.0.5", Some(22))]),
            ("::1", &[("::1", None)]),
            ("fe80::1:2", &[("fe80::1:2", None)]),
            ("[2001:db8::1]:2200", &[("2001:db8::1", Some(2200))]),
            ("[2001:db8::1]", &[("2001:db8::1", None)]),
            (
                "www[01:03].example.com",
                &[
                    ("www01.example.com", None),
                    ("www02.example.com", None),
                    ("www03.example.com", None),
                ],
            ),
            (
                "db-[a:c]",
                &[("db-a", None), ("db-b", None), ("db-c", None)],
            ),
            ("n[0:6:3]", &[("n0", None), ("n3", None), ("n6", None)]),
            ("n[:2]", &[("n0", None), ("n1", None), ("n2", None)]),
            (
                "n[8:10]:22",
                &[("n8", Some(22)), ("n9", Some(22)), ("n10", Some(22))],
            ),
            (
                "r[1:2]-[a:b]",
                &[
                    ("r1-a", None),
                    ("r1-b", None),
                    ("r2-a", None),
                    ("r2-b", None),
                ],
            ),
        ];
        for (input, want) in cases {
            let got = expand(input).unwrap();
            let want: Vec<(String, Option<u16>)> =
                want.iter().map(|(h, p)| (h.to_string(), *p)).collect();
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn rejects_bad_ranges() {
        for bad in [
            "web[1:",
            "web[01:100]",
            "web[3:1]",
            "web[a:3]",
            "web[1:2:0]",
            "h:99999",
            "h:0",
            "",
            "a:b:c",
            "h:x",
        ] {
            assert!(expand(bad).is_err(), "{bad}");
        }
    }
}
