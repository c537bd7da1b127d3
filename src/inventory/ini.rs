//! INI inventories: `[group]` host lines with inline vars, `[group:vars]`, `[group:children]`,
//! hosts before any section are ungrouped. Values are read like Ansible (`literal::parse_value`).

use super::{hostrange, literal, Inventory, InventoryError};
use crate::shell::{split_words, WordRules};
use regex::Regex;

fn header_regex() -> Result<&'static Regex, String> {
    static RE: std::sync::OnceLock<Result<Regex, String>> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$").map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(Clone::clone)
}

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
    let mut group_vars: Vec<(String, String, crate::value::Value)> = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            let Some(c) = header.captures(line) else {
                return Err(err(
                    lineno,
                    format!(
                        "invalid section header '{line}': expected [group], [group:vars] or \
                         [group:children] (no spaces in group names)"
                    ),
                ));
            };
            let name = c[1].to_string();
            section = match c.get(2).map(|m| m.as_str()) {
                None | Some("hosts") => {
                    inv.ensure_group(&name);
                    Section::Hosts(name)
                }
                Some("vars") => {
                    pending_vars.push((name.clone(), lineno));
                    Section::Vars(name)
                }
                Some("children") => {
                    inv.ensure_group(&name);
                    Section::Children(name)
                }
                Some(other) => {
                    return Err(err(
                        lineno,
                        format!(
                        "invalid section suffix ':{other}' in '{line}' (use :vars or :children)"
                    ),
                    ))
                }
            };
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let words =
                    split_words(line, WordRules::InventoryLine).map_err(|m| err(lineno, m))?;
                let Some((first, rest)) = words.split_first() else {
                    continue;
                };
                let hosts = hostrange::expand(first).map_err(|m| err(lineno, m))?;
                let mut vars = Vec::new();
                for w in rest {
                    let Some((k, v)) = w.split_once('=') else {
                        return Err(err(
                            lineno,
                            format!("expected key=value host variable assignment, got: {w}"),
                        ));
                    };
                    if k.is_empty() {
                        return Err(err(lineno, format!("empty variable name in '{w}'")));
                    }
                    vars.push((k.to_string(), literal::parse_value(v)));
                }
                for (host, port) in hosts {
                    inv.add_host_to_group(&host, group);
                    inv.note_source(&host, path);
                    if let Some(p) = port {
                        inv.set_host_var(&host, "ansible_port", p.into());
                    }
                    for (k, v) in &vars {
                        inv.set_host_var(&host, k, v.clone());
                    }
                }
            }
            Section::Vars(group) => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(err(
                        lineno,
                        format!("expected key=value in [{group}:vars], got: {line}"),
                    ));
                };
                let k = k.trim();
                if k.is_empty() {
                    return Err(err(lineno, format!("empty variable name in '{line}'")));
                }
                let value = literal::parse_value(v.trim());
                group_vars.push((group.clone(), k.to_string(), value));
            }
            Section::Children(group) => {
                let words =
                    split_words(line, WordRules::InventoryLine).map_err(|m| err(lineno, m))?;
                let Some(child) = words.first() else { continue };
                if words.len() > 1 {
                    return Err(err(
                        lineno,
                        format!(
                            "expected one group name per line in [{group}:children], got: {line}"
                        ),
                    ));
                }
                inv.add_child(group, child).map_err(|m| err(lineno, m))?;
            }
        }
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
