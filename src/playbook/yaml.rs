//! YAML with positions: every node keeps the file:line:column where it starts.
//!
//! Playbooks need positions for errors ("undefined variable in task X at site.yml:12:5"), which
//! `serde_yaml` values do not keep. This loader builds a small node tree from `yaml-rust2` events,
//! resolving anchors, aliases and `<<` merge keys, and scalar types the way Ansible's YAML 1.1
//! loader does (`yes`/`no`/`on`/`off` are booleans). Plain scalars with a leading zero such as
//! `0644` stay strings so modes keep their octal meaning.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::value::{Value, Vars};

/// A position in a source file (line and column are 1-based).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: NodeKind,
    /// For a mapping value: where its key starts (what error messages should point at).
    pub key_pos: Option<Pos>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Scalar(Value),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{pos}: {}", describe(msg))]
pub struct YamlError {
    pub pos: Pos,
    pub msg: String,
}

/// A loader error's words: vault errors as they are, everything else as a YAML syntax error.
pub fn describe(msg: &str) -> String {
    if msg.starts_with("vault: ") || msg.starts_with("!vault value: ") {
        msg.to_string()
    } else {
        format!("YAML syntax error: {msg}")
    }
}

impl Node {
    /// Plain value of the node (positions dropped).
    pub fn to_value(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar(v) => v.clone(),
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            NodeKind::Map(entries) => {
                let mut m = Vars::new();
                for (k, v) in entries {
                    m.insert(k.clone(), v.to_value());
                }
                Value::Object(m)
            }
        }
    }

    pub fn as_map(&self) -> Option<&[(String, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Where to point an error about this node: its key if it is a mapping value.
    pub fn where_(&self) -> &Pos {
        self.key_pos.as_ref().unwrap_or(&self.pos)
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Scalar(Value::Null))
    }

    /// Look a key up in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// A short description of the node's type for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(Value::String(_)) => "a string",
            NodeKind::Scalar(Value::Null) => "null",
            NodeKind::Scalar(Value::Bool(_)) => "a boolean",
            NodeKind::Scalar(_) => "a number",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// Largest YAML text accepted (playbooks, roles, vars and inventory files).
pub const MAX_YAML_BYTES: usize = 16 << 20;
/// Deepest nesting of sequences and mappings accepted.
pub const MAX_YAML_DEPTH: usize = 200;
/// Most nodes a document may hold once aliases are expanded: a few hundred bytes of nested aliases
/// (the "billion laughs") would otherwise expand to gigabytes.
pub const MAX_YAML_NODES: usize = 1_000_000;

/// Read a text file for a YAML loader, refusing files over [`MAX_YAML_BYTES`] before reading them.
pub fn read_text(path: &Path) -> Result<String, YamlError> {
    let fail = |msg: String| YamlError {
        pos: Pos {
            file: Arc::from(path.display().to_string()),
            line: 0,
            col: 0,
        },
        msg,
    };
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read file: {e}")))?;
    if let Ok(meta) = file.metadata() {
        if meta.len() > MAX_YAML_BYTES as u64 {
            return Err(fail(too_big(meta.len())));
        }
    }
    // Read at most one byte past the limit: devices and pipes have no length to check up front.
    let mut bytes = Vec::new();
    file.take(MAX_YAML_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read file: {e}")))?;
    if bytes.len() > MAX_YAML_BYTES {
        return Err(fail(format!(
            "more than {MAX_YAML_BYTES} bytes; YAML files over that are refused"
        )));
    }
    let text =
        String::from_utf8(bytes).map_err(|e| fail(format!("cannot read file: not UTF-8 ({e})")))?;
    // A vault-encrypted file (vars files, group_vars, role vars) is its plaintext from here on.
    if crate::vault::is_vault(&text) {
        let plain = crate::vault::decrypt_text(&text).map_err(|e| fail(format!("vault: {e}")))?;
        return String::from_utf8(plain)
            .map_err(|_| fail("vault: the decrypted file is not UTF-8".into()));
    }
    Ok(text)
}

fn too_big(len: u64) -> String {
    format!("file is {len} bytes; YAML files over {MAX_YAML_BYTES} bytes are refused")
}

/// Read and parse a YAML file (first document).
pub fn load_file(path: &Path) -> Result<Option<Node>, YamlError> {
    let text = read_text(path)?;
    load_str(&text, &path.display().to_string())
}

/// Parse YAML text; `file` names the source in positions. Returns `None` for an empty document.
///
/// Bounded: text over [`MAX_YAML_BYTES`], nesting deeper than [`MAX_YAML_DEPTH`] and documents that
/// expand to more than [`MAX_YAML_NODES`] nodes are errors with the position where the limit was hit.
pub fn load_str(text: &str, file: &str) -> Result<Option<Node>, YamlError> {
    let file: Arc<str> = Arc::from(file);
    if text.len() > MAX_YAML_BYTES {
        return Err(YamlError {
            pos: Pos {
                file,
                line: 0,
                col: 0,
            },
            msg: too_big(text.len() as u64),
        });
    }
    let mut b = Builder {
        file: file.clone(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        error: None,
        nodes: 0,
    };
    let mut parser = Parser::new_from_str(text);
    let parsed = parser.load(&mut b, false);
    // The builder's error (a limit, an unknown anchor) comes from earlier in the text than any
    // syntax error the parser met later, so it is the one to report.
    if let Some(err) = b.error {
        return Err(err);
    }
    parsed.map_err(|e| YamlError {
        pos: Pos {
            file: file.clone(),
            line: e.marker().line(),
            col: e.marker().col() + 1,
        },
        msg: e.info().to_string(),
    })?;
    Ok(b.docs.into_iter().next())
}

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    /// start, anchor, entries, pending key, pending key position, first key position
    Map(
        Pos,
        usize,
        Vec<(String, Node)>,
        Option<String>,
        Option<Pos>,
        Option<Pos>,
    ),
}

struct Builder {
    file: Arc<str>,
    stack: Vec<Frame>,
    /// Anchored nodes with their size in nodes (what one alias to them adds).
    anchors: HashMap<usize, (Node, usize)>,
    docs: Vec<Node>,
    error: Option<YamlError>,
    /// Nodes built so far, aliases counted at their expanded size.
    nodes: usize,
}

/// Number of nodes in `node`'s tree.
fn tree_size(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar(_) => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(tree_size).sum::<usize>(),
        NodeKind::Map(entries) => 1 + entries.iter().map(|(_, v)| tree_size(v)).sum::<usize>(),
    }
}

impl Builder {
    fn pos(&self, m: Marker) -> Pos {
        Pos {
            file: self.file.clone(),
            line: m.line(),
            col: m.col() + 1,
        }
    }

    fn fail(&mut self, pos: Pos, msg: String) {
        if self.error.is_none() {
            self.error = Some(YamlError { pos, msg });
        }
    }

    /// Count `size` more nodes; false (and an error) once the document is over the limit.
    fn count(&mut self, size: usize, pos: &Pos) -> bool {
        self.nodes = self.nodes.saturating_add(size);
        if self.nodes > MAX_YAML_NODES {
            self.fail(
                pos.clone(),
                format!(
                    "document expands to more than {MAX_YAML_NODES} nodes (aliases counted at their expanded size); refusing it"
                ),
            );
            return false;
        }
        true
    }

    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let size = tree_size(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, pending, key_pos, first)) => match pending.take() {
                None => {
                    let key = match &node.kind {
                        NodeKind::Scalar(v) => crate::value::to_display(v),
                        _ => {
                            if self.error.is_none() {
                                self.error = Some(YamlError {
                                    pos: node.pos.clone(),
                                    msg: "complex mapping keys are not supported".into(),
                                });
                            }
                            String::new()
                        }
                    };
                    *key_pos = Some(node.pos.clone());
                    if first.is_none() {
                        // Mapping-start markers point past the first key; the first key's
                        // position is where users see the mapping begin.
                        *first = Some(node.pos.clone());
                    }
                    *pending = Some(key);
                }
                Some(key) => {
                    let mut node = node;
                    node.key_pos = key_pos.clone();
                    if key == "<<" {
                        merge_into(entries, &node);
                    } else if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key) {
                        // Later keys win, as in PyYAML.
                        slot.1 = node;
                    } else {
                        entries.push((key, node));
                    }
                }
            },
        }
    }
}

/// `<<: *anchor` or `<<: [*a, *b]`: keys already present win.
fn merge_into(entries: &mut Vec<(String, Node)>, src: &Node) {
    let sources: Vec<&Node> = match &src.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![src],
    };
    for s in sources {
        if let NodeKind::Map(m) = &s.kind {
            for (k, v) in m {
                if !entries.iter().any(|(ek, _)| ek == k) {
                    entries.push((k.clone(), v.clone()));
                }
            }
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            // Past a limit or an error nothing more is built: the rest of the text costs only parsing.
            return;
        }
        let pos = self.pos(mark);
        let opens = matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..));
        if opens && self.stack.len() >= MAX_YAML_DEPTH {
            self.fail(
                pos,
                format!("nesting deeper than {MAX_YAML_DEPTH} levels; refusing it"),
            );
            return;
        }
        let size = match &ev {
            Event::Scalar(..) | Event::SequenceStart(..) | Event::MappingStart(..) => 1,
            Event::Alias(id) => self.anchors.get(id).map_or(1, |(_, n)| *n),
            _ => 0,
        };
        if !self.count(size, &pos) {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let vaulted = tag.as_ref().is_some_and(|t| t.suffix == "vault");
                let v = if vaulted {
                    // `!vault |` values: their plaintext, a string.
                    match crate::vault::decrypt_text(&text) {
                        Ok(plain) => Value::String(String::from_utf8_lossy(&plain).into_owned()),
                        // No password at all: fail where the value is used, not here.
                        Err(crate::vault::VaultError::NoSecrets) => {
                            // Only characters that cannot end the template's string literal.
                            let at: String = pos
                                .to_string()
                                .chars()
                                .filter(|c| c.is_alphanumeric() || "/._-: ".contains(*c))
                                .collect();
                            Value::String(format!(
                                "{{{{ {}('{at}') }}}}",
                                crate::playbook::template::VAULT_LOCKED
                            ))
                        }
                        Err(e) => {
                            self.fail(pos, format!("!vault value: {e}"));
                            return;
                        }
                    }
                } else if style == TScalarStyle::Plain {
                    let tagged_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                    if tagged_str {
                        Value::String(text)
                    } else {
                        resolve_plain(&text)
                    }
                } else {
                    Value::String(text)
                };
                self.push_node(
                    Node {
                        pos,
                        kind: NodeKind::Scalar(v),
                        key_pos: None,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(pos, anchor, Vec::new())),
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(pos, anchor, Vec::new(), None, None, None))
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq(p, anchor, items)) = self.stack.pop() {
                    self.push_node(
                        Node {
                            pos: p,
                            kind: NodeKind::Seq(items),
                            key_pos: None,
                        },
                        anchor,
                    );
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map(p, anchor, entries, _, _, first_key)) = self.stack.pop() {
                    self.push_node(
                        Node {
                            pos: first_key.unwrap_or(p),
                            key_pos: None,
                            kind: NodeKind::Map(entries),
                        },
                        anchor,
                    );
                }
            }
            Event::Alias(id) => {
                let node = match self.anchors.get(&id) {
                    Some((n, _)) => n.clone(),
                    None => {
                        if self.error.is_none() {
                            self.error = Some(YamlError {
                                pos: pos.clone(),
                                msg: "alias to an unknown anchor".into(),
                            });
                        }
                        Node {
                            pos,
                            kind: NodeKind::Scalar(Value::Null),
                            key_pos: None,
                        }
                    }
                };
                self.push_node(node, 0);
            }
            _ => {}
        }
    }
}

/// Resolve a plain scalar like PyYAML's YAML 1.1 resolver (what Ansible uses).
pub fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit()) {
        // `0644`: keep the text so file modes stay octal.
        return Value::String(s.to_string());
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::from(i);
        }
    }
    if let Some(hex) = digits.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::from(if s.starts_with('-') { -i } else { i });
        }
    }
    let looks_float = digits.bytes().all(|b| {
        b.is_ascii_digit() || b == b'.' || b == b'e' || b == b'E' || b == b'-' || b == b'+'
    }) && digits.bytes().any(|b| b.is_ascii_digit())
        && digits.contains('.');
    if looks_float {
        if let Ok(f) = s.parse::<f64>() {
            if let Some(n) = serde_json::Number::from_f64(f) {
                return Value::Number(n);
            }
        }
    }
    Value::String(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_positions_and_types() {
        let n = load_str(
            "- hosts: all\n  gather_facts: no\n  tasks:\n    - name: a\n      copy: src=x dest=/tmp/ mode=0777\n      file: {mode: 0644, n: 12, f: 1.5}\n",
            "site.yml",
        )
        .unwrap()
        .unwrap();
        let play = &n.as_seq().unwrap()[0];
        assert_eq!(play.pos.line, 1);
        assert_eq!(play.pos.col, 3);
        assert_eq!(play.get("gather_facts").unwrap().to_value(), json!(false));
        let task = &play.get("tasks").unwrap().as_seq().unwrap()[0];
        assert_eq!((task.pos.line, task.pos.col), (4, 7));
        assert_eq!(task.pos.to_string(), "site.yml:4:7");
        assert_eq!(
            task.get("file").unwrap().to_value(),
            json!({"mode": "0644", "n": 12, "f": 1.5})
        );
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let n = load_str(
            "base: &b {a: 1, b: 2}\nother:\n  <<: *b\n  b: 3\nlist: [*b]\n",
            "x.yml",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            n.to_value(),
            json!({"base": {"a": 1, "b": 2}, "other": {"b": 3, "a": 1}, "list": [{"a": 1, "b": 2}]})
        );
    }

    #[test]
    fn alias_bombs_are_refused_quickly() {
        // Each level multiplies by 9: level 9 would be 9^9 (387 million) copies of "lol".
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let (prev, next) = (w[0], w[1]);
            let refs = vec![format!("*{prev}"); 9].join(",");
            text.push_str(&format!("{next}: &{next} [{refs}]\n"));
        }
        assert!(text.len() < 1000, "{}", text.len());
        let err = load_str(&text, "bomb.yml").unwrap_err();
        assert!(err.to_string().starts_with("bomb.yml:"), "{err}");
        assert!(err.msg.contains("more than 1000000 nodes"), "{err}");
    }

    #[test]
    fn small_alias_use_is_fine_and_counted_at_expanded_size() {
        let n = load_str("a: &a [1, 2, 3]\nb: [*a, *a]\n", "ok.yml")
            .unwrap()
            .unwrap();
        assert_eq!(
            n.to_value(),
            json!({"a": [1, 2, 3], "b": [[1, 2, 3], [1, 2, 3]]})
        );
    }

    #[test]
    fn deep_nesting_is_refused_with_its_position() {
        // Block style: one level per line.
        let text: String = (0..300)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        let err = load_str(&text, "deep.yml").unwrap_err();
        assert!(err.msg.contains("nesting deeper than 200"), "{err}");
        assert_eq!(err.pos.line, 201, "{err}");
        // Flow style: the YAML scanner's own recursion limit answers first; also a clean error.
        let text = format!("x: {}1{}\n", "[".repeat(5000), "]".repeat(5000));
        let err = load_str(&text, "deep.yml").unwrap_err();
        assert!(err.to_string().starts_with("deep.yml:1:"), "{err}");
        let ok = format!("x: {}1{}\n", "[".repeat(150), "]".repeat(150));
        assert!(load_str(&ok, "ok.yml").is_ok());
    }

    #[test]
    fn oversized_text_and_files_are_refused_before_parsing() {
        let big = "#".repeat(MAX_YAML_BYTES + 1);
        let err = load_str(&big, "big.yml").unwrap_err();
        assert!(err.to_string().starts_with("big.yml:"), "{err}");
        assert!(err.msg.contains("over 16777216 bytes"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yml");
        std::fs::write(&path, &big).unwrap();
        let err = load_file(&path).unwrap_err();
        assert!(err.msg.contains("are refused"), "{err}");
        // A device has no length to check up front; reading stops one byte past the limit.
        let err = load_file(Path::new("/dev/zero")).unwrap_err();
        assert!(err.msg.contains("are refused"), "{err}");
    }

    #[test]
    fn syntax_error_has_position() {
        let err = load_str(
            "- hosts: all\n  tasks:\n   - name: x\n  bad: [\n",
            "bad.yml",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("bad.yml:"), "{err}");
        assert!(err.pos.line >= 3, "{err}");
    }

    #[test]
    fn quoted_scalars_stay_strings() {
        let n = load_str("a: 'yes'\nb: \"12\"\nc: yes\nd: 0x10\n", "q.yml")
            .unwrap()
            .unwrap();
        assert_eq!(
            n.to_value(),
            json!({"a": "yes", "b": "12", "c": true, "d": 16})
        );
    }
}
