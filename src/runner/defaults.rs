//! `module_defaults`: default arguments per module, from the play, enclosing blocks and the
//! task (inner ones win), filled in where the task does not set the argument.

use crate::playbook::template::Templar;
use crate::value::{Value, Vars};

/// `args` with the defaults for module `short` from `layers` (outermost first) filled in;
/// `None` when nothing applies. Defaults are templated with `scope`.
pub fn apply<'v>(
    layers: impl Iterator<Item = &'v Value>,
    templar: &Templar,
    short: &str,
    args: &Vars,
    scope: &Vars,
) -> Result<Option<Vars>, String> {
    let names = [
        short.to_string(),
        format!("ansible.builtin.{short}"),
        format!("ansible.legacy.{short}"),
    ];
    let mut defaults = Vars::new();
    for layer in layers {
        let Value::Object(by_module) = layer else {
            continue;
        };
        for n in &names {
            if let Some(Value::Object(d)) = by_module.get(n) {
                defaults.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
    }
    if defaults.keys().all(|k| args.contains_key(k)) {
        return Ok(None);
    }
    let mut merged = args.clone();
    for (k, v) in defaults {
        if !merged.contains_key(&k) {
            let v = templar
                .render_value(&v, scope)
                .map_err(|e| format!("module_defaults {short}.{k}: {e}"))?;
            merged.insert(k, v);
        }
    }
    Ok(Some(merged))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inner_layers_win_and_task_arguments_win_over_all() {
        let t = Templar::new();
        let play = json!({"file": {"mode": "0600", "owner": "root"}});
        let block = json!({"ansible.builtin.file": {"mode": "0640"}});
        let args = match json!({"path": "/x", "owner": "bob"}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let got = apply([&play, &block].into_iter(), &t, "file", &args, &Vars::new())
            .unwrap()
            .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"path": "/x", "owner": "bob", "mode": "0640"})
        );
        assert_eq!(
            apply([&play].into_iter(), &t, "copy", &args, &Vars::new()),
            Ok(None)
        );
    }
}
