//! `group_vars/` and `host_vars/` directories: `<name>`, `<name>.yml|.yaml|.json`, or a
//! directory `<name>/` whose files are merged in name order.

use super::InventoryError;
use crate::playbook::yaml;
use crate::value::{Value, Vars};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where a vars directory sits: beside the inventory or beside the playbook (higher).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarsDirKind {
    Inventory,
    Playbook,
}

#[derive(Debug, Clone)]
pub struct VarsDir {
    pub kind: VarsDirKind,
    pub dir: PathBuf,
    pub group_vars: HashMap<String, Vars>,
    pub host_vars: HashMap<String, Vars>,
}

pub fn load(dir: &Path, kind: VarsDirKind) -> Result<VarsDir, InventoryError> {
    Ok(VarsDir {
        kind,
        dir: dir.to_path_buf(),
        group_vars: load_entities(&dir.join("group_vars"))?,
        host_vars: load_entities(&dir.join("host_vars"))?,
    })
}

fn io_err(path: &Path, e: std::io::Error) -> InventoryError {
    InventoryError::File {
        path: path.display().to_string(),
        message: format!("cannot read: {e}"),
    }
}

fn is_vars_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.starts_with('.') || name.ends_with('~') {
        return false;
    }
    match p.extension().and_then(|e| e.to_str()) {
        None => true,
        Some(e) => matches!(e, "yml" | "yaml" | "json"),
    }
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, InventoryError> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_err(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// Entity name → merged vars for every file/dir in `group_vars/` or `host_vars/`.
fn load_entities(dir: &Path) -> Result<HashMap<String, Vars>, InventoryError> {
    let mut out: HashMap<String, Vars> = HashMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for p in sorted_entries(dir)? {
        let Some(fname) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if p.is_dir() {
            if fname.starts_with('.') {
                continue;
            }
            let merged = out.entry(fname.to_string()).or_default();
            load_tree(&p, merged)?;
        } else if is_vars_file(&p) {
            let entity = ["yml", "yaml", "json"]
                .iter()
                .find_map(|e| fname.strip_suffix(&format!(".{e}")))
                .unwrap_or(fname);
            let vars = load_file(&p)?;
            out.entry(entity.to_string()).or_default().extend(vars);
        }
    }
    Ok(out)
}

fn load_tree(dir: &Path, into: &mut Vars) -> Result<(), InventoryError> {
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            load_tree(&p, into)?;
        } else if is_vars_file(&p) {
            into.extend(load_file(&p)?);
        }
    }
    Ok(())
}

/// One vars file: a YAML (or JSON) mapping; empty files are fine.
pub fn load_file(path: &Path) -> Result<Vars, InventoryError> {
    let name = path.display().to_string();
    let text = yaml::read_text(path).map_err(|e| InventoryError::File {
        path: name.clone(),
        message: e.msg,
    })?;
    let node = yaml::load_str(&text, &name).map_err(|e| InventoryError::Parse {
        path: name.clone(),
        line: e.pos.line,
        message: crate::playbook::yaml::describe(&e.msg),
    })?;
    match node.map(|n| (n.to_value(), n.pos.line)) {
        None | Some((Value::Null, _)) => Ok(Vars::new()),
        Some((Value::Object(m), _)) => Ok(m),
        Some((other, line)) => Err(InventoryError::Parse {
            path: name,
            line,
            message: format!(
                "a vars file must be a mapping of variable names to values, got {}",
                match other {
                    Value::Array(_) => "a list",
                    Value::String(_) => "a string",
                    _ => "a scalar",
                }
            ),
        }),
    }
}
