//! The variable value type shared by templating, modules and the runner, and the coercions every
//! layer applies to it: Ansible's booleans, display text, bounded seconds and counts.
//!
//! Variables are JSON values (`serde_json` with insertion order preserved), which convert
//! losslessly to and from YAML scalars and minijinja values.

use std::time::Duration;

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

/// The longest wait a playbook, a target or a flag may ask for (366 days). Anything longer is a
/// mistake or an attack, and a deadline that far out must still fit in an `Instant`.
pub const MAX_SECONDS: u64 = 366 * 24 * 60 * 60;

/// A number of seconds as a `Duration`: finite, not negative, at most [`MAX_SECONDS`] (a bare
/// `Duration::from_secs_f64` panics on the rest, and the host's thread with it).
pub fn seconds(secs: f64) -> Result<Duration, String> {
    if !secs.is_finite() || secs < 0.0 || secs > MAX_SECONDS as f64 {
        return Err(format!(
            "must be a number of seconds from 0 to {MAX_SECONDS}, got {secs}"
        ));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{secs} seconds: {e}"))
}

/// A value (a number, or text holding one) as a number of seconds; see [`seconds`]. Errors quote
/// the value as given (`1e400`, not `inf`).
pub fn seconds_of(v: &Value) -> Result<Duration, String> {
    let given = to_display(v);
    number_as(v, serde_json::Number::as_f64)
        .ok_or_else(|| format!("must be a number of seconds, got '{given}'"))
        .and_then(|s| {
            seconds(s).map_err(|_| {
                format!("must be a number of seconds from 0 to {MAX_SECONDS}, got '{given}'")
            })
        })
}

/// A value (a whole number, or text holding one) as a count: not negative, at most `u32::MAX`.
pub fn count_of(v: &Value) -> Result<u32, String> {
    let given = to_display(v);
    let n = number_as(v, serde_json::Number::as_u64);
    n.and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
        format!(
            "must be a whole number from 0 to {}, got '{given}'",
            u32::MAX
        )
    })
}

/// A number, or text holding one, as a `T` (`None` for anything else, or outside `T`).
fn number_as<T: std::str::FromStr>(
    v: &Value,
    from_number: fn(&serde_json::Number) -> Option<T>,
) -> Option<T> {
    match v {
        Value::Number(n) => from_number(n),
        Value::String(s) => s.trim().parse::<T>().ok(),
        _ => None,
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

    #[test]
    fn seconds_are_checked() {
        let ok = |v: Value, want: f64| {
            assert_eq!(seconds_of(&v), Ok(Duration::from_secs_f64(want)), "{v}");
        };
        ok(json!(0), 0.0);
        ok(json!(2.5), 2.5);
        ok(json!(" 3 "), 3.0);
        ok(json!(MAX_SECONDS), MAX_SECONDS as f64);
        for bad in [
            json!(-1),
            json!("-1"),
            json!("1e400"),
            json!("NaN"),
            json!("inf"),
            json!(MAX_SECONDS + 1),
            json!(u64::MAX),
            json!("soon"),
            json!(null),
            json!([1]),
        ] {
            let e = seconds_of(&bad).unwrap_err();
            assert!(e.starts_with("must be a number of seconds"), "{bad}: {e}");
            assert!(e.contains(&to_display(&bad)), "{bad}: {e}");
        }
        assert!(seconds(f64::INFINITY).is_err());
        assert!(seconds(f64::NAN).is_err());
        assert_eq!(seconds(-0.0), Ok(Duration::ZERO));
    }

    #[test]
    fn counts_are_checked() {
        let cases = [
            (json!(3), Ok(3)),
            (json!("7"), Ok(7)),
            (json!(u32::MAX), Ok(u32::MAX)),
            (json!(-1), Err(())),
            (json!("-1"), Err(())),
            (json!(u64::from(u32::MAX) + 1), Err(())),
            (json!(1.5), Err(())),
            (json!("many"), Err(())),
        ];
        for (v, want) in cases {
            assert_eq!(count_of(&v).map_err(|_| ()), want, "{v}");
        }
    }

    #[test]
    fn numbers_come_from_numbers_and_text_only() {
        let cases = [
            (json!(5), Some(5)),
            (json!(" 5 "), Some(5)),
            (json!(5.5), None),
            (json!("5x"), None),
            (json!(true), None),
            (json!(null), None),
            (json!([5]), None),
        ];
        for (v, want) in cases {
            assert_eq!(number_as(&v, serde_json::Number::as_u64), want, "{v}");
        }
    }
}
