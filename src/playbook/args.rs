//! Module argument forms: `key=value` strings with quoting, free form with inline options, `args:`.
//!
//! Follows Ansible's `parse_kv`/`split_args`:
//! - the string is split on whitespace, except inside quotes (`'…'`, `"…"`, with `\"` escapes) and
//!   inside Jinja blocks (`{{ … }}`, `{% … %}`, `{# … #}`), so `dest={{ base }}/x` stays one word;
//! - a word with an unescaped `=` is `key=value`; the value has escapes decoded (`\n`, `\"`, …)
//!   and one pair of surrounding quotes removed;
//! - words without `=` (or, for free-form modules, `key=value` words whose key is not an inline
//!   option such as `chdir`) are kept verbatim, quotes included, in `_raw_params`.

use super::fqcn;
use crate::value::{Value, Vars};

/// Key holding the free-form text (`command: make install` → `_raw_params: "make install"`).
pub const RAW_PARAMS: &str = "_raw_params";

/// Key holding an `args:` value that is a template string (`args: "{{ my_args }}"`); the runner
/// renders it to a mapping and merges it below the module's own arguments.
pub const VARIABLE_PARAMS: &str = "_variable_params";

/// Inline options extracted from free-form text (Ansible's list for command/shell/script/raw).
pub const FREE_FORM_OPTIONS: &[&str] = &[
    "creates",
    "removes",
    "chdir",
    "executable",
    "warn",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
];

/// Modules whose string form is free text plus inline options (short names; FQCN accepted).
pub const FREE_FORM_MODULES: &[&str] = &["command", "shell", "raw", "script"];

/// A problem with a module's arguments as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// Quotes or Jinja braces do not balance.
    #[error("failed at splitting arguments, either an unbalanced jinja2 block or quotes: {0}")]
    Unbalanced(String),
    /// The module value has a type that no argument form accepts.
    #[error("unexpected parameter type in action: {0}")]
    BadType(String),
    /// `args:` is not a mapping (nor a template string).
    #[error("'args' must be a mapping of module parameters, got {0}")]
    BadArgsKey(String),
}

/// Whether `module` (short name or `ansible.builtin.*` / `ansible.legacy.*` FQCN) is free form.
pub fn is_free_form(module: &str) -> bool {
    FREE_FORM_MODULES.contains(&fqcn::short(module))
}

/// Parse `key=value` words; words without `=` go to `_raw_params` (joined verbatim).
pub fn parse_kv(s: &str) -> Result<Vars, ArgsError> {
    parse_kv_with(s, false)
}

/// Parse free-form text: only [`FREE_FORM_OPTIONS`] are extracted, everything else stays in
/// `_raw_params` verbatim (quotes included).
pub fn parse_free_form(s: &str) -> Result<Vars, ArgsError> {
    parse_kv_with(s, true)
}

fn parse_kv_with(s: &str, check_raw: bool) -> Result<Vars, ArgsError> {
    let words = split_args(s)?;
    let mut options = Vars::new();
    let mut raw = String::new();
    // Index of the previous raw word, to keep the original spacing between adjacent raw words.
    let mut last_raw: Option<usize> = None;
    for (i, w) in words.iter().enumerate() {
        let text = &s[w.start..w.end];
        if let Some((key, value)) = split_key_value(text) {
            if !check_raw || FREE_FORM_OPTIONS.contains(&key.trim()) {
                let value = unquote(&decode_escapes(value.trim()));
                options.insert(key.trim().to_string(), Value::String(value));
                continue;
            }
        }
        match last_raw {
            Some(j) if j + 1 == i => raw.push_str(&s[words[j].end..w.start]),
            Some(_) => raw.push(' '),
            None => {}
        }
        if split_key_value(text).is_none() && text.contains("\\=") && !check_raw {
            raw.push_str(&text.replace("\\=", "="));
        } else {
            raw.push_str(text);
        }
        last_raw = Some(i);
    }
    if let Some(j) = last_raw {
        // Ansible keeps the line break after the last free-form word (`shell: |` blocks end
        // with a newline).
        let after_end = words.get(j + 1).map_or(s.len(), |w| w.start);
        if s[words[j].end..after_end].contains('\n') {
            raw.push('\n');
        }
    }
    if !raw.is_empty() {
        options.insert(RAW_PARAMS.to_string(), Value::String(raw));
    }
    Ok(options)
}

/// Split `key=value` at the first `=` not preceded by a backslash; the key must be non-empty.
fn split_key_value(word: &str) -> Option<(&str, &str)> {
    let bytes = word.as_bytes();
    let pos = (1..bytes.len()).find(|&i| bytes[i] == b'=' && bytes[i - 1] != b'\\')?;
    Some((&word[..pos], &word[pos + 1..]))
}

/// A word's byte range in the source.
#[derive(Debug, Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
}

/// Split on whitespace outside quotes and Jinja blocks.
fn split_args(s: &str) -> Result<Vec<Word>, ArgsError> {
    let b = s.as_bytes();
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<u8> = None;
    let mut jinja_depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let escaped = i > 0 && b[i - 1] == b'\\';
        if let Some(q) = quote {
            if c == q && !escaped {
                quote = None;
            }
            i += 1;
            continue;
        }
        let next = b.get(i + 1).copied();
        if (c == b'"' || c == b'\'') && !escaped {
            start.get_or_insert(i);
            quote = Some(c);
        } else if c == b'{' && matches!(next, Some(b'{' | b'%' | b'#')) {
            start.get_or_insert(i);
            jinja_depth += 1;
            i += 2;
            continue;
        } else if jinja_depth > 0 && matches!(c, b'}' | b'%' | b'#') && next == Some(b'}') {
            jinja_depth -= 1;
            i += 2;
            continue;
        } else if c.is_ascii_whitespace() && jinja_depth == 0 {
            if let Some(st) = start.take() {
                words.push(Word { start: st, end: i });
            }
        } else {
            start.get_or_insert(i);
        }
        i += 1;
    }
    if quote.is_some() || jinja_depth > 0 {
        return Err(ArgsError::Unbalanced(s.to_string()));
    }
    if let Some(st) = start {
        words.push(Word {
            start: st,
            end: b.len(),
        });
    }
    Ok(words)
}

/// Remove one pair of matching surrounding quotes (the last one not escaped).
fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2
        && (b[0] == b'"' || b[0] == b'\'')
        && b[b.len() - 1] == b[0]
        && b[b.len() - 2] != b'\\'
    {
        return s[1..s.len() - 1].to_string();
    }
    s.to_string()
}

/// Decode Python-style escapes the way Ansible's `_decode_escapes` does for `key=value` words.
fn decode_escapes(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&n) = chars.peek() else {
            out.push('\\');
            break;
        };
        let simple = match n {
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(d) = simple {
            chars.next();
            out.push(d);
            continue;
        }
        let hex_len = match n {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => 0,
        };
        if hex_len > 0 {
            let digits: String = chars.clone().skip(1).take(hex_len).collect();
            if digits.len() == hex_len && digits.chars().all(|d| d.is_ascii_hexdigit()) {
                if let Some(ch) = u32::from_str_radix(&digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                {
                    for _ in 0..=hex_len {
                        chars.next();
                    }
                    out.push(ch);
                    continue;
                }
            }
        }
        // Unknown escape: keep it as written (`\=` is handled by the caller, `\d` in regexes).
        out.push('\\');
    }
    out
}

/// Normalise a task's module value and optional `args:` into one argument mapping.
///
/// - mapping → as is; string → `key=value` / free form (see [`parse_kv`], [`parse_free_form`]);
///   null → empty; numbers and booleans → their text, parsed like a string;
/// - `args:` (a mapping) is merged below: the module's own arguments win, as in Ansible;
///   an `args:` template string is kept under [`VARIABLE_PARAMS`] for the runner to render.
pub fn normalize(
    module_value: &Value,
    args_key: Option<&Value>,
    free_form: bool,
) -> Result<Vars, ArgsError> {
    let parse = |s: &str| {
        if free_form {
            parse_free_form(s)
        } else {
            parse_kv(s)
        }
    };
    let own = match module_value {
        Value::Null => Vars::new(),
        Value::Object(m) => m.clone(),
        Value::String(s) => parse(s)?,
        Value::Number(n) => parse(&n.to_string())?,
        Value::Bool(b) => parse(&b.to_string())?,
        Value::Array(_) => {
            return Err(ArgsError::BadType(format!(
                "a list ({module_value}); use a mapping or a key=value string"
            )))
        }
    };
    let mut out = match args_key {
        None | Some(Value::Null) => Vars::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) if s.contains("{{") => {
            let mut m = Vars::new();
            m.insert(VARIABLE_PARAMS.to_string(), Value::String(s.clone()));
            m
        }
        Some(other) => return Err(ArgsError::BadArgsKey(other.to_string())),
    };
    for (k, v) in own {
        out.insert(k, v);
    }
    Ok(out)
}

/// Old-style `action: copy src=a dest=b` / `local_action: …`: split off the module name, then
/// parse the rest with the module's form.
pub fn parse_action(s: &str) -> Result<(String, Vars), ArgsError> {
    let s = s.trim_start();
    let end = s.find(|c: char| c.is_whitespace()).unwrap_or(s.len());
    let (module, rest) = s.split_at(end);
    let rest = rest.trim_start();
    let args = if is_free_form(module) {
        parse_free_form(rest)?
    } else {
        parse_kv(rest)?
    };
    Ok((module.to_string(), args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Vars {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn key_value_strings() {
        let cases: &[(&str, Value)] = &[
            (
                "update_cache=yes pkg=apache2 state=latest",
                json!({"update_cache": "yes", "pkg": "apache2", "state": "latest"}),
            ),
            (
                "src=it_ran.txt dest=/tmp/ mode=0777",
                json!({"src": "it_ran.txt", "dest": "/tmp/", "mode": "0777"}),
            ),
            (
                r#"msg="hello world" x='a b'"#,
                json!({"msg": "hello world", "x": "a b"}),
            ),
            (r#"msg="say \"hi\"""#, json!({"msg": "say \"hi\""})),
            (r#"msg='it\'s'"#, json!({"msg": "it's"})),
            (r#"line="a=b c=d""#, json!({"line": "a=b c=d"})),
            ("opts=a=b", json!({"opts": "a=b"})),
            (
                "dest={{ base }}/x name={{ item.name }}",
                json!({"dest": "{{ base }}/x", "name": "{{ item.name }}"}),
            ),
            (
                r#"msg="{{ a }} and {{ b | default('x y') }}""#,
                json!({"msg": "{{ a }} and {{ b | default('x y') }}"}),
            ),
            (
                "msg={{ 'a b' if x else \"c d\" }} y=1",
                json!({"msg": "{{ 'a b' if x else \"c d\" }}", "y": "1"}),
            ),
            ("  a=1\n  b=2  ", json!({"a": "1", "b": "2"})),
            ("msg=line1\\nline2", json!({"msg": "line1\nline2"})),
            (r"regexp=^\d+$", json!({"regexp": r"^\d+$"})),
            ("empty= other=1", json!({"empty": "", "other": "1"})),
            ("", json!({})),
            ("file.yml", json!({"_raw_params": "file.yml"})),
            (
                "foo.yml name=x",
                json!({"_raw_params": "foo.yml", "name": "x"}),
            ),
            (r"a\=b", json!({"_raw_params": "a=b"})),
            (r"k=\u00e9", json!({"k": "é"})),
            (
                "{% if x %}a{% endif %}=1",
                json!({"{% if x %}a{% endif %}": "1"}),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_kv(input).unwrap(),
                obj(want.clone()),
                "input {input:?}"
            );
        }
    }

    // Expected values below were checked against ansible-core 2.18's `parse_kv`.
    #[test]
    fn free_form_extracts_only_inline_options() {
        let cases: &[(&str, Value)] = &[
            (
                "/usr/bin/make install chdir=/src creates=/usr/bin/x",
                json!({"_raw_params": "/usr/bin/make install", "chdir": "/src", "creates": "/usr/bin/x"}),
            ),
            (
                "chdir=/src make  install",
                json!({"chdir": "/src", "_raw_params": "make  install"}),
            ),
            (
                "echo a=b \"c d\" 'e f' removes=/x",
                json!({"_raw_params": "echo a=b \"c d\" 'e f'", "removes": "/x"}),
            ),
            (
                "echo {{ x }} > /tmp/y chdir=/tmp",
                json!({"_raw_params": "echo {{ x }} > /tmp/y", "chdir": "/tmp"}),
            ),
            (
                "echo one creates=/a two",
                json!({"_raw_params": "echo one two", "creates": "/a"}),
            ),
            (
                r#"somescript.sh "quoted arg" executable=/bin/bash"#,
                json!({"_raw_params": "somescript.sh \"quoted arg\"", "executable": "/bin/bash"}),
            ),
            ("FOO=bar env", json!({"_raw_params": "FOO=bar env"})),
            ("echo hi\n", json!({"_raw_params": "echo hi\n"})),
            (
                "echo hi\nchdir=/x",
                json!({"_raw_params": "echo hi\n", "chdir": "/x"}),
            ),
            ("x=1\n", json!({"_raw_params": "x=1\n"})),
            (
                "cat <<EOF\nhello\nEOF\n",
                json!({"_raw_params": "cat <<EOF\nhello\nEOF\n"}),
            ),
            (
                r"grep '\d' f stdin='a b'",
                json!({"_raw_params": r"grep '\d' f", "stdin": "a b"}),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_free_form(input).unwrap(),
                obj(want.clone()),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn unbalanced_input_is_an_error() {
        for bad in ["msg='open", "echo it's", "x={{ a", r#"a="b\"#, "x={% if y"] {
            let err = parse_kv(bad).unwrap_err();
            assert!(matches!(err, ArgsError::Unbalanced(_)), "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn normalize_forms_and_args_merge() {
        let cases: Vec<(Value, Option<Value>, bool, Value)> = vec![
            (json!(null), None, false, json!({})),
            (
                json!({"name": "x", "state": "present"}),
                None,
                false,
                json!({"name": "x", "state": "present"}),
            ),
            (
                json!("name=x state=present"),
                None,
                false,
                json!({"name": "x", "state": "present"}),
            ),
            (
                json!("make install"),
                Some(json!({"chdir": "/src"})),
                true,
                json!({"chdir": "/src", "_raw_params": "make install"}),
            ),
            (
                json!("dest=/b"),
                Some(json!({"src": "a", "dest": "/a"})),
                false,
                json!({"src": "a", "dest": "/b"}),
            ),
            (
                json!(null),
                Some(json!({"cmd": "ls"})),
                true,
                json!({"cmd": "ls"}),
            ),
            (json!(5), None, false, json!({"_raw_params": "5"})),
            (
                json!({"msg": "x"}),
                Some(json!("{{ extra }}")),
                false,
                json!({"_variable_params": "{{ extra }}", "msg": "x"}),
            ),
            (
                json!("ls chdir=/"),
                Some(json!(null)),
                true,
                json!({"_raw_params": "ls", "chdir": "/"}),
            ),
        ];
        for (module, args, ff, want) in cases {
            let got = normalize(&module, args.as_ref(), ff).unwrap();
            assert_eq!(got, obj(want), "module {module} args {args:?}");
        }
    }

    #[test]
    fn normalize_rejects_bad_types() {
        assert!(matches!(
            normalize(&json!(["a"]), None, false),
            Err(ArgsError::BadType(_))
        ));
        assert!(matches!(
            normalize(&json!("x=1"), Some(&json!(["a"])), false),
            Err(ArgsError::BadArgsKey(_))
        ));
        assert!(matches!(
            normalize(&json!("x=1"), Some(&json!("plain")), false),
            Err(ArgsError::BadArgsKey(_))
        ));
    }

    #[test]
    fn module_names_and_old_style_action() {
        assert!(is_free_form("command"));
        assert!(is_free_form("ansible.builtin.shell"));
        assert!(is_free_form("ansible.legacy.raw"));
        assert!(!is_free_form("copy"));
        assert_eq!(fqcn::short("ansible.builtin.copy"), "copy");
        assert_eq!(
            fqcn::short("community.general.ufw"),
            "community.general.ufw"
        );
        let (m, a) = parse_action("copy src=a dest=b").unwrap();
        assert_eq!(
            (m.as_str(), a),
            ("copy", obj(json!({"src": "a", "dest": "b"})))
        );
        let (m, a) = parse_action("shell echo x=1 chdir=/tmp").unwrap();
        assert_eq!(
            (m.as_str(), a),
            (
                "shell",
                obj(json!({"_raw_params": "echo x=1", "chdir": "/tmp"}))
            )
        );
        let (m, a) = parse_action("ping").unwrap();
        assert_eq!((m.as_str(), a), ("ping", Vars::new()));
    }
}
