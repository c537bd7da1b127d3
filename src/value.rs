//! The variable value type shared by templating, modules and the runner.
//!
//! Variables are JSON values (`serde_json` with insertion order preserved), which convert
//! losslessly to and from YAML scalars and minijinja values.

pub use serde_json::Value;

/// A variable scope: name → value, in insertion order.
pub type Vars = serde_json::Map<String, Value>;

/// Ansible's boolean coercion: `yes/no/true/false/on/off/1/0/y/n` (any case), booleans, numbers.
/// Returns `None` for anything that is not a recognisable boolean.
pub fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        Value::String(s) => str_bool(s),
        _ => None,
    }
}

/// Boolean coercion for a string.
pub fn str_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" | "y" | "t" => Some(true),
        "no" | "false" | "off" | "0" | "n" | "f" | "" => Some(false),
        _ => None,
    }
}

/// Render a value the way Ansible prints it into a string context (strings bare, others as JSON).
pub fn to_display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn coerces_yaml_booleans() {
        for t in ["yes", "Yes", "TRUE", "on", "1", "y"] {
            assert_eq!(as_bool(&json!(t)), Some(true), "{t}");
        }
        for f in ["no", "False", "off", "0", "n"] {
            assert_eq!(as_bool(&json!(f)), Some(false), "{f}");
        }
        assert_eq!(as_bool(&json!(1)), Some(true));
        assert_eq!(as_bool(&json!("maybe")), None);
    }
}
