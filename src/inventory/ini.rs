//! INI inventories: `[group]` host lines with inline vars, `[group:vars]`, `[group:children]`,
//! hosts before any section are ungrouped. Values are read like Ansible (`literal::parse_value`).

use super::{hostrange, literal, Inventory, InventoryError};
use crate::shell::{split_words, WordRules};
use crate::value::Value;
use regex::Regex;

fn header_regex() -> Result<&'static Regex, String> {
    static RE: std::sync::OnceLock<Result<Regex, String>> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$").map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The section a line belongs to, with its group.
enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

pub fn parse(inv: &mut Inventory, text: &str, path: &str) -> Result<(), InventoryError> {
    let err = |line: usize, message: String| InventoryError::Parse {
        path: path.to_string(),
        line,
        message,
    };
    let header = header_regex().map_err(|e| err(0, e))?;
    let mut section = Section::Hosts("ungrouped".to_string());
    // `[g:vars]` may come before `[g]`; check at the end that the group exists.
    let mut pending_vars: Vec<(String, usize)> = Vec::new();
    let mut group_vars: Vec<(String, String, Value)> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = section_header(header, line).map_err(|m| err(lineno, m))?;
            match &section {
                Section::Hosts(name) | Section::Children(name) => inv.ensure_group(name),
                Section::Vars(name) => pending_vars.push((name.clone(), lineno)),
            }
            continue;
        }
        match &section {
            Section::Hosts(group) => host_line(inv, group, line, path),
            Section::Vars(group) => {
                var_line(group, line).map(|(k, v)| group_vars.push((group.clone(), k, v)))
            }
            Section::Children(group) => child_line(inv, group, line),
        }
        .map_err(|m| err(lineno, m))?;
    }
    for (group, line) in pending_vars {
        if !inv.has_group(&group) {
            return Err(err(
                line,
                format!("section [{group}:vars] is for group '{group}', which is not defined in the inventory"),
            ));
        }
    }
    for (group, k, v) in group_vars {
        inv.set_group_var(&group, &k, v);
    }
    Ok(())
}

/// `[group]`, `[group:hosts]`, `[group:vars]` or `[group:children]`.
fn section_header(header: &Regex, line: &str) -> Result<Section, String> {
    let Some(c) = header.captures(line) else {
        return Err(format!(
            "invalid section header '{line}': expected [group], [group:vars] or \
             [group:children] (no spaces in group names)"
        ));
    };
    let name = c[1].to_string();
    match c.get(2).map(|m| m.as_str()) {
        None | Some("hosts") => Ok(Section::Hosts(name)),
        Some("vars") => Ok(Section::Vars(name)),
        Some("children") => Ok(Section::Children(name)),
        Some(other) => Err(format!(
            "invalid section suffix ':{other}' in '{line}' (use :vars or :children)"
        )),
    }
}

/// `host[01:10]:2222 k=v ...`: the hosts of the pattern, in `group`, with those variables.
fn host_line(inv: &mut Inventory, group: &str, line: &str, path: &str) -> Result<(), String> {
    let words = words(line)?;
    let Some((first, rest)) = words.split_first() else {
        return Ok(());
    };
    let hosts = hostrange::expand(first)?;
    let mut vars = Vec::new();
    for w in rest {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "expected key=value host variable assignment, got: {w}"
            ));
        };
        if k.is_empty() {
            return Err(format!("empty variable name in '{w}'"));
        }
        vars.push((k.to_string(), literal::parse_value(v)));
    }
    inv.add_listed_hosts(group, hosts, &vars, path)
}

/// `key = value` in `[group:vars]`.
fn var_line(group: &str, line: &str) -> Result<(String, Value), String> {
    let Some((k, v)) = line.split_once('=') else {
        return Err(format!("expected key=value in [{group}:vars], got: {line}"));
    };
    let k = k.trim();
    if k.is_empty() {
        return Err(format!("empty variable name in '{line}'"));
    }
    Ok((k.to_string(), literal::parse_value(v.trim())))
}

/// One child group name in `[group:children]`.
fn child_line(inv: &mut Inventory, group: &str, line: &str) -> Result<(), String> {
    let words = words(line)?;
    let Some(child) = words.first() else {
        return Ok(());
    };
    if words.len() > 1 {
        return Err(format!(
            "expected one group name per line in [{group}:children], got: {line}"
        ));
    }
    inv.add_child(group, child)
}

/// A line's words as Python's `shlex.split(line, comments=True)` gives them, with its error
/// wording.
fn words(line: &str) -> Result<Vec<String>, String> {
    split_words(line, WordRules::InventoryLine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_like_words() {
        let cases: &[(&str, &[&str])] = &[
            ("web1 a=1 b=2", &["web1", "a=1", "b=2"]),
            ("web1 x='a b' y=\"c d\"", &["web1", "x=a b", "y=c d"]),
            ("web1 # comment", &["web1"]),
            ("web1 x=a#b", &["web1", "x=a"]),
            ("web1 x='a#b'", &["web1", "x=a#b"]),
            ("h x=\"say \\\"hi\\\"\"", &["h", "x=say \"hi\""]),
            ("h x=a\\ b", &["h", "x=a b"]),
            ("h x=\"['a', 'b']\"", &["h", "x=['a', 'b']"]),
        ];
        for (input, want) in cases {
            assert_eq!(words(input).unwrap(), *want, "{input}");
        }
        assert!(words("h x='open").is_err());
    }
}
