//! `validate_argument_spec`, and the validation a role with `meta/argument_specs.yml` runs before
//! its first task: the role's variables checked against the entry point's options, with
//! Ansible's messages (`missing required arguments: a, b`, `value of x must be one of: ...`,
//! `argument 'x' is of type <class 'str'> and we were unable to convert to int`).

use crate::value::{as_bool, to_display, Value, Vars};

/// Python's name for a value's type, as Ansible's messages show it (values read from YAML:
/// Ansible's own string, list and mapping classes).
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<class 'NoneType'>",
        Value::Bool(_) => "<class 'bool'>",
        Value::Number(n) if n.is_f64() => "<class 'float'>",
        Value::Number(_) => "<class 'int'>",
        Value::String(_) => "<class 'ansible.parsing.yaml.objects.AnsibleUnicode'>",
        Value::Array(_) => "<class 'ansible.parsing.yaml.objects.AnsibleSequence'>",
        Value::Object(_) => "<class 'ansible.parsing.yaml.objects.AnsibleMapping'>",
    }
}

/// What Ansible's type checker adds after "unable to convert to TYPE".
fn why_not(v: &Value, ty: &str) -> String {
    match (v, ty) {
        (Value::String(s), "int") => format!(": \"'{s}'\" cannot be converted to an int"),
        (Value::String(s), "float") => format!(": \"'{s}'\" cannot be converted to a float"),
        _ => String::new(),
    }
}

/// Whether `v` converts to `ty` as Ansible's type checkers do.
fn converts(v: &Value, ty: &str) -> bool {
    match ty {
        "str" | "path" => !matches!(v, Value::Array(_) | Value::Object(_)),
        "int" => match v {
            Value::Number(n) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            Value::String(s) => s.trim().parse::<i64>().is_ok(),
            _ => false,
        },
        "float" => match v {
            Value::Number(_) => true,
            Value::String(s) => s.trim().parse::<f64>().is_ok(),
            _ => false,
        },
        "bool" => as_bool(v).is_some(),
        "list" => !matches!(v, Value::Object(_) | Value::Null),
        "dict" => match v {
            Value::Object(_) => true,
            Value::String(s) => serde_json::from_str::<serde_json::Map<String, Value>>(s).is_ok(),
            _ => false,
        },
        _ => true, // raw, jsonarg, bits, bytes: anything
    }
}

/// The errors of validating `values` against the options `spec` (an empty list: valid).
pub fn validate(spec: &Vars, values: &Vars) -> Vec<String> {
    let mut errors = Vec::new();
    let mut missing: Vec<&str> = spec
        .iter()
        .filter(|(k, o)| {
            o.get("required").and_then(as_bool) == Some(true)
                && values.get(k.as_str()).is_none_or(Value::is_null)
        })
        .map(|(k, _)| k.as_str())
        .collect();
    missing.sort_unstable();
    if !missing.is_empty() {
        errors.push(format!(
            "missing required arguments: {}",
            missing.join(", ")
        ));
    }
    for (k, o) in spec {
        let Some(v) = values.get(k).filter(|v| !v.is_null()) else {
            continue;
        };
        let ty = o
            .get("type")
            .map(to_display)
            .unwrap_or_else(|| "str".into());
        if !converts(v, &ty) {
            errors.push(format!(
                "argument '{k}' is of type {} and we were unable to convert to {ty}{}",
                py_type(v),
                why_not(v, &ty)
            ));
            continue;
        }
        if let Some(Value::Array(choices)) = o.get("choices") {
            let shown: Vec<String> = choices.iter().map(to_display).collect();
            let items: Vec<String> = match v {
                Value::Array(a) => a.iter().map(to_display).collect(),
                other => vec![to_display(other)],
            };
            if let Some(bad) = items.iter().find(|i| !shown.contains(i)) {
                let got = if matches!(v, Value::Array(_)) {
                    bad.clone()
                } else {
                    to_display(v)
                };
                errors.push(format!(
                    "value of {k} must be one of: {}, got: {got}",
                    shown.join(", ")
                ));
            }
        }
        if let (Some(el), Value::Array(items)) = (o.get("elements").map(to_display), v) {
            if let Some(bad) = items.iter().find(|i| !converts(i, &el)) {
                errors.push(format!(
                    "Elements value for option '{k}' is of type {} and we were unable to convert to {el}{}",
                    py_type(bad),
                    why_not(bad, &el)
                ));
            }
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(v: Value) -> Vars {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn ansibles_messages() {
        let spec = vars(json!({
            "name": {"type": "str", "required": true},
            "port": {"type": "int"},
            "state": {"choices": ["present", "absent"]},
            "users": {"type": "list", "elements": "int"},
            "other": {"required": true},
        }));
        assert_eq!(
            validate(
                &spec,
                &vars(
                    json!({"name": "x", "other": 1, "port": "80", "state": "present", "users": [1, "2"]})
                )
            ),
            Vec::<String>::new()
        );
        assert_eq!(
            validate(&spec, &vars(json!({"port": "eighty", "state": "gone", "users": [1, "x"]}))),
            vec![
                "missing required arguments: name, other".to_string(),
                "argument 'port' is of type <class 'ansible.parsing.yaml.objects.AnsibleUnicode'> and we were unable to convert to int: \"'eighty'\" cannot be converted to an int".into(),
                "value of state must be one of: present, absent, got: gone".into(),
                "Elements value for option 'users' is of type <class 'ansible.parsing.yaml.objects.AnsibleUnicode'> and we were unable to convert to int: \"'x'\" cannot be converted to an int".into(),
            ]
        );
    }
}
