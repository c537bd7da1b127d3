//! Readers for keyword values that plays, tasks and role entries share: `become`, `tags`-style
//! string lists, `vars` mappings, `when` lists and plain optional values.

use super::{err, ParseError};
use crate::playbook::model::BecomeSpec;
use crate::playbook::yaml::{Node, NodeKind};
use crate::value::{Value, Vars};

/// `become`, `become_user`, `become_method`, and the legacy `sudo: yes` / `sudo_user:`.
pub(super) fn become_from(map: &Node) -> BecomeSpec {
    let mut b = BecomeSpec {
        enabled: map.get("become").map(Node::to_value),
        user: map.get("become_user").map(Node::to_value),
        method: map.get("become_method").map(Node::to_value),
    };
    if b.enabled.is_none() {
        if let Some(s) = map.get("sudo") {
            b.enabled = Some(s.to_value());
            if b.method.is_none() {
                b.method = Some(Value::String("sudo".into()));
            }
        }
    }
    if b.user.is_none() {
        b.user = map.get("sudo_user").map(Node::to_value);
    }
    b
}

/// `tags`, `notify`, `listen`: a comma-separated string or a list of strings.
pub(super) fn string_list(node: Option<&Node>) -> Result<Vec<String>, ParseError> {
    let Some(node) = node else {
        return Ok(Vec::new());
    };
    match &node.kind {
        NodeKind::Scalar(Value::Null) => Ok(Vec::new()),
        NodeKind::Scalar(v) => Ok(crate::value::to_display(v)
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()),
        NodeKind::Seq(items) => items
            .iter()
            .map(|i| match &i.kind {
                NodeKind::Scalar(v) => Ok(crate::value::to_display(v)),
                _ => Err(err(&i.pos, "expected a list of strings")),
            })
            .collect(),
        NodeKind::Map(_) => Err(err(&node.pos, "expected a string or a list of strings")),
    }
}

/// A `vars:` mapping (or the old style: a list of single-key mappings); `what` names it in errors.
pub(super) fn vars_map(node: Option<&Node>, what: &str) -> Result<Vars, ParseError> {
    match node {
        None => Ok(Vars::new()),
        Some(n) if n.is_null() => Ok(Vars::new()),
        Some(n) => match n.to_value() {
            Value::Object(m) => Ok(m),
            Value::Array(items) => {
                let mut m = Vars::new();
                for i in items {
                    match i {
                        Value::Object(o) => m.extend(o),
                        _ => return Err(err(&n.pos, format!("{what} must be a mapping"))),
                    }
                }
                Ok(m)
            }
            _ => Err(err(
                &n.pos,
                format!("{what} must be a mapping, found {}", n.type_name()),
            )),
        },
    }
}

/// The value under `key`, untemplated.
pub(super) fn opt(node: &Node, key: &str) -> Option<Value> {
    node.get(key).map(Node::to_value)
}

/// `when:` as a list of conditions (a single condition or a list; nulls dropped).
pub(super) fn when_list(node: &Node) -> Vec<Value> {
    let mut when = match opt(node, "when") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(v) => vec![v],
    };
    when.retain(|w| !w.is_null());
    when
}
