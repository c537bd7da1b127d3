//! Values in INI inventories, read like Ansible's `ast.literal_eval` fallback: `5` is a number,
//! `True` a boolean, `'a b'` a string, `[1, 2]` a list; anything else stays the text as written.

use crate::value::{Value, Vars};

/// Ansible's `_parse_value`: a Python literal if the whole text is one, else the text.
pub fn parse_value(text: &str) -> Value {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        text,
    };
    match p.value() {
        Some(v) => {
            p.ws();
            if p.i == p.s.len() {
                v
            } else {
                Value::String(text.to_string())
            }
        }
        None => Value::String(text.to_string()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        match self.peek()? {
            b'\'' | b'"' => self.string().map(Value::String),
            b'[' => self.seq(b']'),
            b'(' => self.seq(b')'),
            b'{' => self.dict(),
            b'-' | b'+' | b'0'..=b'9' | b'.' => self.number(),
            _ => self.word(),
        }
    }

    fn word(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        match &self.text[start..self.i] {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            _ => None,
        }
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.i;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.i += 1;
        }
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_')
            || (matches!(self.peek(), Some(b'-' | b'+'))
                && matches!(self.s.get(self.i.wrapping_sub(1)), Some(b'e' | b'E')))
        {
            self.i += 1;
        }
        let raw = &self.text[start..self.i];
        let (neg, body) = match raw.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, raw.trim_start_matches('+')),
        };
        if body.contains("__") || body.starts_with('_') || body.ends_with('_') {
            return None;
        }
        let clean = body.replace('_', "");
        let radix = |prefix: &str, r: u32| {
            clean
                .strip_prefix(prefix)
                .or_else(|| clean.strip_prefix(&prefix.to_uppercase()))
                .and_then(|d| i64::from_str_radix(d, r).ok())
        };
        let int = if let Some(i) = radix("0x", 16)
            .or_else(|| radix("0o", 8))
            .or_else(|| radix("0b", 2))
        {
            Some(i)
        } else if clean.bytes().all(|b| b.is_ascii_digit()) && !clean.is_empty() {
            // Python 3 rejects leading zeros (`0644` stays a string).
            if clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|b| b != b'0') {
                return None;
            }
            clean.parse::<i64>().ok()
        } else {
            None
        };
        if let Some(i) = int {
            return Some(Value::from(if neg { -i } else { i }));
        }
        let looks_float = clean.bytes().any(|b| b.is_ascii_digit())
            && clean
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
        if looks_float {
            if let Ok(f) = clean.parse::<f64>() {
                return serde_json::Number::from_f64(if neg { -f } else { f }).map(Value::Number);
            }
        }
        None
    }

    fn string(&mut self) -> Option<String> {
        let q = self.peek()?;
        self.i += 1;
        let mut out = String::new();
        let start = self.i;
        let mut chars = self.text[start..].char_indices();
        while let Some((off, c)) = chars.next() {
            match c {
                c if c as u32 == q as u32 => {
                    self.i = start + off + 1;
                    return Some(out);
                }
                '\\' => {
                    let (_, n) = chars.next()?;
                    match n {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        '\\' | '\'' | '"' => out.push(n),
                        '\n' => {}
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                '\n' => return None,
                c => out.push(c),
            }
        }
        None
    }

    fn seq(&mut self, close: u8) -> Option<Value> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(Value::Array(items));
            }
            items.push(self.value()?);
            if !self.eat(b',') {
                return self.eat(close).then_some(Value::Array(items));
            }
        }
    }

    fn dict(&mut self) -> Option<Value> {
        self.i += 1;
        let mut m = Vars::new();
        loop {
            if self.eat(b'}') {
                return Some(Value::Object(m));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                Value::Array(_) | Value::Object(_) => return None,
                other => other.to_string(),
            };
            if !self.eat(b':') {
                return None;
            }
            let v = self.value()?;
            m.insert(key, v);
            if !self.eat(b',') {
                return self.eat(b'}').then_some(Value::Object(m));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_literals() {
        let cases = [
            ("5", json!(5)),
            ("-12", json!(-12)),
            ("2222", json!(2222)),
            ("1.5", json!(1.5)),
            ("1e3", json!(1000.0)),
            ("0x1F", json!(31)),
            ("0", json!(0)),
            ("0644", json!("0644")),
            ("True", json!(true)),
            ("False", json!(false)),
            ("None", json!(null)),
            ("true", json!("true")),
            ("yes", json!("yes")),
            ("'a b'", json!("a b")),
            ("\"x\\ny\"", json!("x\ny")),
            ("[1, 'a', True]", json!([1, "a", true])),
            ("(1, 2)", json!([1, 2])),
            ("{'k': [1], \"j\": None}", json!({"k": [1], "j": null})),
            ("[]", json!([])),
            ("a b", json!("a b")),
            ("10.0.0.5", json!("10.0.0.5")),
            ("/usr/bin/python3", json!("/usr/bin/python3")),
            (
                "-o StrictHostKeyChecking=no",
                json!("-o StrictHostKeyChecking=no"),
            ),
            ("'unterminated", json!("'unterminated")),
            ("[1, 2", json!("[1, 2")),
            ("1_000", json!(1000)),
            ("1.2.3", json!("1.2.3")),
            ("", json!("")),
            ("'a' trailing", json!("'a' trailing")),
        ];
        for (input, want) in cases {
            assert_eq!(parse_value(input), want, "{input:?}");
        }
    }
}
