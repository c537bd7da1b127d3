//! What a template's source text says, read without compiling it: whether it is exactly one
//! `{{ expr }}`, a plain variable lookup, a boolean word, and whether it guards against
//! undefined values (`| default`, `is defined`).

use super::{contains_template, regex_cache};
use crate::value::{Value, Vars};

/// `{{ expr }}` (exactly one expression, nothing around it) → `expr`. The closing `}}` must
/// be the end of the string: quotes and braces of dict literals inside are skipped.
/// Ansible's `escape_backslashes`: inside `{{ }}`, every backslash of a string literal is
/// doubled, so YAML's unescaping is the only one (`regex_replace('\\d', ...)` written once).
/// Task arguments and variables get this, template files do not (as in Ansible).
pub(super) fn escape_backslashes(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\\') || !s.contains("{{") {
        return std::borrow::Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len() + 8);
    let (mut in_var, mut quote): (bool, Option<u8>) = (false, None);
    let mut i = 0;
    let mut start = 0;
    while i < b.len() {
        match (in_var, quote, b[i]) {
            (false, _, b'{') if b.get(i + 1) == Some(&b'{') => {
                in_var = true;
                i += 2;
                continue;
            }
            (true, None, b'}') if b.get(i + 1) == Some(&b'}') => {
                in_var = false;
                i += 2;
                continue;
            }
            (true, None, q @ (b'\'' | b'"')) => quote = Some(q),
            (true, Some(q), c) if c == q => quote = None,
            (true, Some(_), b'\\') => {
                out.push_str(&s[start..=i]);
                out.push('\\');
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&s[start..]);
    std::borrow::Cow::Owned(out)
}

pub(super) fn single_expression(s: &str) -> Option<&str> {
    let body = s.strip_prefix("{{")?;
    let b = body.as_bytes();
    let mut quote: Option<u8> = None;
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
            i += 1;
            continue;
        }
        match c {
            b'\'' | b'"' => quote = Some(c),
            b'{' if matches!(b.get(i + 1), Some(b'{' | b'%' | b'#')) && depth == 0 => return None,
            b'{' => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b'}' if b.get(i + 1) == Some(&b'}') => {
                if i + 2 != b.len() {
                    return None;
                }
                let inner = &body[..i];
                let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
                let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
                return Some(inner.trim());
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Does the template deal with undefined values on purpose (then chains may be undefined)?
pub(super) fn checks_definedness(source: &str) -> bool {
    source.contains("defined")
        || source.contains("default")
        || source.contains("mandatory")
        || regex_cache::get(r"\|\s*d\s*(\(|\}\}|\)|$|\|)", false, false)
            .is_ok_and(|re| re.is_match(source))
}

/// Ansible's boolean words for a bare condition (`when: yes` read by a YAML 1.2 parser).
pub(super) fn bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => Some(true),
        "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// A condition that mixes text and `{{ }}` (`{{ port }} == 8080`) as one expression
/// (`(port) == 8080`), so that what the variables hold is never evaluated as an expression.
/// `None` for statements, comments or unbalanced delimiters.
pub(super) fn inline_expressions(s: &str) -> Option<String> {
    if s.contains("{%") || s.contains("{#") {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let body = &rest[open + 2..];
        let b = body.as_bytes();
        let (mut quote, mut depth, mut i, mut close) = (None::<u8>, 0usize, 0usize, None);
        while i < b.len() {
            let c = b[i];
            if let Some(q) = quote {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            } else {
                match c {
                    b'\'' | b'"' => quote = Some(c),
                    b'{' => depth += 1,
                    b'}' if depth > 0 => depth -= 1,
                    b'}' if b.get(i + 1) == Some(&b'}') => {
                        close = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        let close = close?;
        out.push('(');
        out.push_str(body[..close].trim());
        out.push(')');
        rest = &body[close + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    out.push_str(rest);
    Some(out)
}

pub(super) fn is_identifier(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Fast path for `{{ name }}` / `{{ a.b.c }}`: the variable as is, when it exists and is data or
/// holds no template (the common `{{ item }}`, `{{ packages }}`, `{{ out.stdout }}`); anything
/// else goes through minijinja. `is_author(root)` tells whether the root variable is an author
/// template still to be rendered.
pub(super) fn plain_lookup<'v>(
    expr: &str,
    vars: &'v Vars,
    is_author: impl Fn(&str) -> bool,
) -> Option<&'v Value> {
    let mut parts = expr.split('.');
    let root = parts.next()?;
    if !is_identifier(root) {
        return None;
    }
    let mut cur = vars.get(root)?;
    for p in parts {
        if !is_identifier(p) {
            return None;
        }
        cur = cur.as_object()?.get(p)?;
    }
    (!is_author(root) || !contains_template(cur)).then_some(cur)
}

/// Whether every use of `name` in `source` is followed by `| default`/`| d(` or a
/// definedness test.
pub(super) fn is_guarded(source: &str, name: &str) -> bool {
    let mut from = 0;
    let mut seen = false;
    while let Some(i) = source[from..].find(name) {
        let end = from + i + name.len();
        let next = source[end..].chars().next();
        from = end;
        if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        seen = true;
        let rest = source[end..].trim_start();
        let guarded = if let Some(f) = rest.strip_prefix('|') {
            let f = f.trim_start();
            f.starts_with("default") || f.starts_with("d(") || f.starts_with("d ")
        } else if let Some(t) = rest.strip_prefix("is") {
            let t = t.trim_start();
            let t = t.strip_prefix("not").map(str::trim_start).unwrap_or(t);
            t.starts_with("defined") || t.starts_with("undefined")
        } else {
            false
        };
        if !guarded {
            return false;
        }
    }
    seen
}

/// Position of `name` as a whole word in `source` (for ordering undefined candidates).
pub(super) fn word_position(source: &str, name: &str) -> usize {
    let b = source.as_bytes();
    let word = |i: usize| {
        b.get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    };
    let mut from = 0;
    while let Some(i) = source[from..].find(name) {
        let start = from + i;
        let end = start + name.len();
        if (start == 0 || !word(start - 1)) && !word(end) {
            return start;
        }
        from = start + 1;
    }
    usize::MAX
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_expressions() {
        let cases = [
            ("{{ x }}", Some("x")),
            ("{{- x | d('}}') -}}", Some("x | d('}}')")),
            ("{{ {'a': 1} }}", Some("{'a': 1}")),
            ("{{ x }} ", None),
            ("{{ a }}{{ b }}", None),
            ("x {{ a }}", None),
            ("{{ a", None),
        ];
        for (source, want) in cases {
            assert_eq!(single_expression(source), want, "{source}");
        }
    }

    #[test]
    fn guards_and_positions() {
        let cases = [
            ("{{ x | default(1) }}", "x", true),
            ("{{ x|d(1) }}", "x", true),
            ("{{ x is not defined }}", "x", true),
            ("{{ x is undefined or x }}", "x", false),
            ("{{ xy | default(1) }}", "x", false),
            ("{{ y }}", "x", false),
        ];
        for (source, name, want) in cases {
            assert_eq!(is_guarded(source, name), want, "{source} / {name}");
        }
        assert_eq!(word_position("{{ ab + a }}", "a"), 8);
        assert_eq!(word_position("{{ ab }}", "a"), usize::MAX);
        assert!(checks_definedness("{{ x | d }}"));
        assert!(!checks_definedness("{{ x | dict2items }}"));
    }

    #[test]
    fn inline_expressions_become_one_expression() {
        assert_eq!(
            inline_expressions("{{ port }} == 8080").as_deref(),
            Some("(port) == 8080")
        );
        assert_eq!(
            inline_expressions("{{ a }} in {{ b | map(attribute='x') }}").as_deref(),
            Some("(a) in (b | map(attribute='x'))")
        );
        assert_eq!(
            inline_expressions("{{ '}}' }} == x").as_deref(),
            Some("('}}') == x")
        );
        assert_eq!(
            inline_expressions("{{ {'a': 1}.a }} == 1").as_deref(),
            Some("({'a': 1}.a) == 1")
        );
        assert_eq!(inline_expressions("{% if x %}1{% endif %}"), None);
        assert_eq!(inline_expressions("{{ x == 1"), None);
        assert_eq!(inline_expressions("x }} == 1"), None);
    }

    #[test]
    fn words_identifiers_and_plain_lookups() {
        assert_eq!(bool_word("Yes"), Some(true));
        assert_eq!(bool_word("off"), Some(false));
        assert_eq!(bool_word("1"), None);
        assert!(is_identifier("_a1"));
        assert!(!is_identifier("1a"));
        let vars = match json!({"a": {"b": 1}, "t": "{{ a }}"}) {
            Value::Object(m) => m,
            _ => Vars::new(),
        };
        let author = |n: &str| n == "t";
        assert_eq!(plain_lookup("a.b", &vars, author), Some(&json!(1)));
        // An author template is rendered by minijinja; the same text as data is returned as is.
        assert_eq!(plain_lookup("t", &vars, author), None);
        assert_eq!(plain_lookup("t", &vars, |_| false), Some(&json!("{{ a }}")));
        assert_eq!(plain_lookup("a.c", &vars, author), None);
        assert_eq!(plain_lookup("a['b']", &vars, author), None);
    }
}

#[cfg(test)]
mod escape_tests {
    use super::escape_backslashes;

    #[test]
    fn backslashes_in_expression_strings_are_doubled_as_ansible_does() {
        for (input, want) in [
            (
                r"{{ x | regex_replace('\d', 'N') }}",
                r"{{ x | regex_replace('\\d', 'N') }}",
            ),
            (r"a\b {{ 'c\d' }} e\f", r"a\b {{ 'c\\d' }} e\f"),
            (r#"{{ "q\n" ~ v }}"#, r#"{{ "q\\n" ~ v }}"#),
            (r"{% set a = '\d' %}{{ a }}", r"{% set a = '\d' %}{{ a }}"),
            (r"no template \d", r"no template \d"),
            (r"{{ '}}\x' }}", r"{{ '}}\\x' }}"),
        ] {
            assert_eq!(escape_backslashes(input), want, "{input}");
        }
    }
}
