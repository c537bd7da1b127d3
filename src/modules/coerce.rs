//! Ansible's type coercion for module parameters (text, booleans, numbers, lists, dicts, modes).
//! Pure: every function takes a value and returns the coerced one or the end of an error sentence
//! ("parameter 'x' …") for `Args` (`args.rs`) to complete.

use super::mode::{mode_from_int, mode_from_text, Mode};
use crate::value::{as_bool, to_display, Value};

/// How a parameter's value is coerced, after Ansible's argument types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// Text; numbers and booleans are rendered (`True`/`False`, as Ansible's `str` does).
    Str,
    /// `yes/no/true/false/on/off/1/0` and real booleans.
    Bool,
    /// An integer, or text holding one.
    Int,
    /// A number, or text holding one.
    Float,
    /// A YAML list, or a comma-separated string (split, items trimmed, empty items dropped).
    List,
    /// A mapping.
    Dict,
    /// A path on the target (text, used as written).
    Path,
    /// A file mode: octal text, an integer, or a symbolic mode ([`Mode`]).
    Mode,
    /// Any value, used as it is.
    Raw,
}

impl Type {
    pub fn as_str(self) -> &'static str {
        match self {
            Type::Str => "str",
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Float => "float",
            Type::List => "list",
            Type::Dict => "dict",
            Type::Path => "path",
            Type::Mode => "mode",
            Type::Raw => "raw",
        }
    }
}

/// "a list", "a number", ... for messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dict",
    }
}

/// Text as Ansible's `str` type makes it: strings as they are, numbers rendered, booleans as
/// Python prints them (`True`/`False`), lists and dicts as Python's `str()` of them (Ansible
/// converts them too: `ping: data={a: 1}` is the text `{'a': 1}`). Null is not text.
pub fn to_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(true) => Ok("True".to_string()),
        Value::Bool(false) => Ok("False".to_string()),
        Value::Array(_) | Value::Object(_) => Ok(crate::playbook::template::pyfmt::py_repr(v)),
        other => Err(format!("must be a string, got {}", type_name(other))),
    }
}

/// A boolean from `yes/no/true/false/on/off/1/0` (any case) or a real boolean.
pub fn to_bool(v: &Value) -> Result<bool, String> {
    as_bool(v).ok_or_else(|| format!("must be a boolean, got '{}'", to_display(v)))
}

/// An integer: a whole number, or text holding one.
pub fn to_int(v: &Value) -> Result<i64, String> {
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| format!("must be an integer, got '{}'", to_display(v)))
}

/// A number, or text holding one.
pub fn to_float(v: &Value) -> Result<f64, String> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| format!("must be a number, got '{}'", to_display(v)))
}

/// A list of strings: a YAML list (items as text), or a comma-separated string split on commas
/// with items trimmed and empty ones dropped; a lone number or boolean is a one-item list.
pub fn to_list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(_) | Value::Object(_) | Value::Null => Err(format!(
                    "must be a list of strings, found {}",
                    type_name(item)
                )),
                scalar => to_text(scalar),
            })
            .collect(),
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()),
        Value::Number(_) | Value::Bool(_) => Ok(vec![to_text(v)?]),
        other => Err(format!("must be a list, got {}", type_name(other))),
    }
}

/// A file mode from an integer or text (see [`Mode`]).
pub fn to_mode(v: &Value) -> Result<Mode, String> {
    match v {
        Value::Number(n) => mode_from_int(n),
        Value::String(s) => mode_from_text(s),
        other => Err(format!("must be a string, got {}", type_name(other))),
    }
}

/// A value coerced to `kind`, as a JSON value (to compare pinned values and check defaults).
pub fn coerce_value(kind: Type, v: &Value) -> Result<Value, String> {
    Ok(match kind {
        Type::Str | Type::Path => Value::String(to_text(v)?),
        Type::Bool => Value::Bool(to_bool(v)?),
        Type::Int => Value::from(to_int(v)?),
        Type::Float => Value::from(to_float(v)?),
        Type::List => Value::Array(to_list(v)?.into_iter().map(Value::String).collect()),
        Type::Dict => match v {
            Value::Object(_) => v.clone(),
            other => return Err(format!("must be a dict, got {}", type_name(other))),
        },
        Type::Mode => Value::String(format!("{:?}", to_mode(v)?)),
        Type::Raw => v.clone(),
    })
}

/// [`coerce_value`] for a value written as text (declared defaults and pinned values).
pub fn coerce_text(kind: Type, text: &str) -> Result<Value, String> {
    coerce_value(kind, &Value::String(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_renders_like_python_str() {
        let table: &[(Value, Result<&str, &str>)] = &[
            (json!("x"), Ok("x")),
            (json!(5), Ok("5")),
            (json!(1.5), Ok("1.5")),
            (json!(true), Ok("True")),
            (json!(false), Ok("False")),
            (json!([1, "a"]), Ok("[1, 'a']")),
            (json!({"a": 1}), Ok("{'a': 1}")),
            (json!(null), Err("must be a string, got null")),
        ];
        for (v, want) in table {
            assert_eq!(
                to_text(v).as_deref(),
                want.map_err(str::to_string).as_deref(),
                "{v}"
            );
        }
    }

    #[test]
    fn booleans_follow_ansible() {
        for yes in [
            json!(true),
            json!("yes"),
            json!("On"),
            json!("1"),
            json!(1),
            json!("t"),
        ] {
            assert_eq!(to_bool(&yes), Ok(true), "{yes}");
        }
        for no in [
            json!(false),
            json!("no"),
            json!("OFF"),
            json!("0"),
            json!(0),
            json!(""),
        ] {
            assert_eq!(to_bool(&no), Ok(false), "{no}");
        }
        assert_eq!(
            to_bool(&json!("maybe")),
            Err("must be a boolean, got 'maybe'".to_string())
        );
    }

    #[test]
    fn numbers_from_numbers_and_text() {
        assert_eq!(to_int(&json!(5)), Ok(5));
        assert_eq!(to_int(&json!(" 7 ")), Ok(7));
        assert_eq!(to_int(&json!(3.0)), Ok(3));
        assert_eq!(to_int(&json!(-2)), Ok(-2));
        assert!(to_int(&json!(3.5)).is_err());
        assert!(to_int(&json!("x")).is_err());
        assert_eq!(to_float(&json!("2.5")), Ok(2.5));
        assert_eq!(to_float(&json!(1)), Ok(1.0));
        assert!(to_float(&json!([1])).is_err());
    }

    #[test]
    fn lists_from_lists_and_comma_strings() {
        let table: &[(Value, Result<&[&str], &str>)] = &[
            (json!("a, b,c"), Ok(&["a", "b", "c"])),
            (json!("a,,b, "), Ok(&["a", "b"])),
            (json!(["x", "y,z", 3, true]), Ok(&["x", "y,z", "3", "True"])),
            (json!(7), Ok(&["7"])),
            (json!({"k": 1}), Err("must be a list, got a dict")),
            (
                json!([["x"]]),
                Err("must be a list of strings, found a list"),
            ),
        ];
        for (v, want) in table {
            let got = to_list(v);
            match want {
                Ok(items) => assert_eq!(got.unwrap(), *items, "{v}"),
                Err(e) => assert_eq!(got.unwrap_err(), *e, "{v}"),
            }
        }
    }

    #[test]
    fn coerced_values_compare_across_spellings() {
        assert_eq!(
            coerce_text(Type::Bool, "yes"),
            coerce_value(Type::Bool, &json!(true))
        );
        assert_eq!(
            coerce_text(Type::Int, "5"),
            coerce_value(Type::Int, &json!(5))
        );
        assert_eq!(
            coerce_text(Type::Mode, "0644"),
            coerce_value(Type::Mode, &json!(420))
        );
        assert!(coerce_text(Type::Dict, "a=1").is_err());
        assert_eq!(coerce_text(Type::Raw, "x"), Ok(json!("x")));
    }
}
