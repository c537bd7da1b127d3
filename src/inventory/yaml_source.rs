//! YAML inventories: top-level groups (usually `all`), each with `hosts` (name → vars),
//! `children` (name → group) and `vars`.

use super::{hostrange, Inventory, InventoryError};
use crate::playbook::yaml::{self, Node, NodeKind};
use crate::value::Value;

const GROUP_KEYS: [&str; 3] = ["hosts", "children", "vars"];

/// A YAML mapping of groups (each null or a mapping of hosts/children/vars)?
pub fn looks_like_yaml(text: &str) -> bool {
    let Ok(Some(node)) = yaml::load_str(text, "") else {
        return false;
    };
    let Some(entries) = node.as_map() else {
        return false;
    };
    !entries.is_empty()
        && entries.iter().all(|(_, v)| {
            v.is_null()
                || v.as_map()
                    .is_some_and(|m| m.iter().all(|(k, _)| GROUP_KEYS.contains(&k.as_str())))
        })
}

pub fn parse(inv: &mut Inventory, text: &str, path: &str) -> Result<(), InventoryError> {
    let node = yaml::load_str(text, path).map_err(|e| InventoryError::Parse {
        path: path.to_string(),
        line: e.pos.line,
        message: crate::playbook::yaml::describe(&e.msg),
    })?;
    let Some(node) = node else {
        return Ok(());
    };
    let Some(groups) = node.as_map() else {
        return Err(at(
            path,
            &node,
            format!(
                "a YAML inventory must be a mapping of groups (like 'all:'), got {}",
                node.type_name()
            ),
        ));
    };
    for (name, def) in groups {
        group(inv, name, def, path)?;
    }
    Ok(())
}

fn at(path: &str, node: &Node, message: String) -> InventoryError {
    InventoryError::Parse {
        path: path.to_string(),
        line: node.where_().line,
        message,
    }
}

fn group(inv: &mut Inventory, name: &str, def: &Node, path: &str) -> Result<(), InventoryError> {
    inv.ensure_group(name);
    if def.is_null() {
        return Ok(());
    }
    let Some(entries) = def.as_map() else {
        return Err(at(
            path,
            def,
            format!(
                "group '{name}' must be a mapping with hosts, children or vars, got {}",
                def.type_name()
            ),
        ));
    };
    for (key, value) in entries {
        match key.as_str() {
            "hosts" => hosts(inv, name, value, path)?,
            "vars" => {
                if value.is_null() {
                    continue;
                }
                let Some(vars) = value.as_map() else {
                    return Err(at(
                        path,
                        value,
                        format!("'vars' of group '{name}' must be a mapping"),
                    ));
                };
                for (k, v) in vars {
                    inv.set_group_var(name, k, v.to_value());
                }
            }
            "children" => {
                if value.is_null() {
                    continue;
                }
                let Some(children) = value.as_map() else {
                    return Err(at(
                        path,
                        value,
                        format!("'children' of group '{name}' must be a mapping of groups"),
                    ));
                };
                for (child, child_def) in children {
                    inv.add_child(name, child)
                        .map_err(|m| at(path, child_def, m))?;
                    group(inv, child, child_def, path)?;
                }
            }
            other => {
                return Err(at(
                    path,
                    value,
                    format!(
                    "unknown key '{other}' in group '{name}' (expected hosts, children or vars)"
                ),
                ))
            }
        }
    }
    Ok(())
}

fn hosts(inv: &mut Inventory, group: &str, node: &Node, path: &str) -> Result<(), InventoryError> {
    if node.is_null() {
        return Ok(());
    }
    let Some(entries) = node.as_map() else {
        return Err(at(
            path,
            node,
            format!("'hosts' of group '{group}' must be a mapping of host names (a list is not allowed), got {}", node.type_name()),
        ));
    };
    for (pattern, vars) in entries {
        let expanded = hostrange::expand(pattern).map_err(|m| at(path, vars, m))?;
        let vars_map = match &vars.kind {
            NodeKind::Scalar(Value::Null) => Vec::new(),
            NodeKind::Map(m) => m.iter().map(|(k, v)| (k.clone(), v.to_value())).collect(),
            _ => {
                return Err(at(
                    path,
                    vars,
                    format!(
                        "host '{pattern}' must map to its variables (a mapping) or nothing, got {}",
                        vars.type_name()
                    ),
                ))
            }
        };
        inv.add_listed_hosts(group, expanded, &vars_map, path)
            .map_err(|m| at(path, vars, m))?;
    }
    Ok(())
}
