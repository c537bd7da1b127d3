//! Parameter declarations: what every module (remote or control) accepts, as `const` data.
//!
//! A module declares each parameter once ([`Param`]: name, type, default, required, aliases,
//! choices, and whether knockplay implements it). The playbook parser checks a task against the
//! declaration ([`Spec::validate`]) and the module reads its values through
//! `Args` (`args.rs`), which refuses names the declaration lacks, so the accepted list and
//! the reading code cannot drift apart.

pub use super::coerce::Type;
use super::coerce::{coerce_text, coerce_value};
use crate::playbook::args::VARIABLE_PARAMS;
use crate::playbook::keywords::did_you_mean;
use crate::playbook::template::contains_template;
use crate::value::{Value, Vars};

/// Whether knockplay implements a parameter. Nothing is accepted and then ignored: a parameter is
/// either read by the module, pinned to the one value knockplay's behaviour matches, or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// The module reads it.
    Read,
    /// knockplay always behaves as with this value; giving any other value is an error.
    Only(&'static str),
    /// Not implemented: giving it at all is an error, with this reason.
    Refused(&'static str),
}

/// One declared parameter. Built with the `const` constructors below, e.g.
/// `Param::bool("force").default("true").aliases(&["thirsty"])`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub kind: Type,
    pub required: bool,
    /// The default as Ansible documents it, in text form (coerced like a given value).
    pub default: Option<&'static str>,
    pub aliases: &'static [&'static str],
    pub choices: &'static [&'static str],
    pub support: Support,
    /// The value becomes a command's positional word (a user, group or package name): it must
    /// not start with `-`, where it would be read as an option.
    pub word: bool,
}

impl Param {
    const fn new(name: &'static str, kind: Type) -> Self {
        Self {
            name,
            kind,
            required: false,
            default: None,
            aliases: &[],
            choices: &[],
            support: Support::Read,
            word: false,
        }
    }
    pub const fn str(name: &'static str) -> Self {
        Self::new(name, Type::Str)
    }
    pub const fn bool(name: &'static str) -> Self {
        Self::new(name, Type::Bool)
    }
    pub const fn int(name: &'static str) -> Self {
        Self::new(name, Type::Int)
    }
    pub const fn float(name: &'static str) -> Self {
        Self::new(name, Type::Float)
    }
    pub const fn list(name: &'static str) -> Self {
        Self::new(name, Type::List)
    }
    pub const fn dict(name: &'static str) -> Self {
        Self::new(name, Type::Dict)
    }
    pub const fn path(name: &'static str) -> Self {
        Self::new(name, Type::Path)
    }
    pub const fn mode(name: &'static str) -> Self {
        Self::new(name, Type::Mode)
    }
    pub const fn raw(name: &'static str) -> Self {
        Self::new(name, Type::Raw)
    }
    /// See [`Param::word`].
    pub const fn word(self) -> Self {
        Self { word: true, ..self }
    }
    pub const fn required(self) -> Self {
        Self {
            required: true,
            ..self
        }
    }
    pub const fn default(self, value: &'static str) -> Self {
        Self {
            default: Some(value),
            ..self
        }
    }
    pub const fn aliases(self, aliases: &'static [&'static str]) -> Self {
        Self { aliases, ..self }
    }
    pub const fn choices(self, choices: &'static [&'static str]) -> Self {
        Self { choices, ..self }
    }
    /// knockplay always behaves as with `value`.
    pub const fn only(self, value: &'static str) -> Self {
        Self {
            support: Support::Only(value),
            ..self
        }
    }
    /// knockplay does not implement this parameter, for `why`.
    pub const fn refused(self, why: &'static str) -> Self {
        Self {
            support: Support::Refused(why),
            ..self
        }
    }

    /// The name and its aliases, in declaration order (the order in which values are looked up).
    pub fn names(&self) -> impl Iterator<Item = &'static str> {
        std::iter::once(self.name).chain(self.aliases.iter().copied())
    }
}

/// Key holding free-form text (`command: make install`).
pub const RAW_PARAMS: &str = "_raw_params";

/// Everything a module accepts: its own parameters plus groups it shares with other modules
/// (the file attributes, the command guards, ...), each declared once next to the code reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub module: &'static str,
    pub params: &'static [Param],
    pub shared: &'static [&'static [Param]],
    /// Takes free-form text (kept under [`RAW_PARAMS`]).
    pub free_form: bool,
    /// Any parameter name is accepted (`set_fact`: the names are variables).
    pub any_params: bool,
}

impl Spec {
    pub const fn new(module: &'static str, params: &'static [Param]) -> Self {
        Self {
            module,
            params,
            shared: &[],
            free_form: false,
            any_params: false,
        }
    }
    /// Also accept the parameter groups in `shared`.
    pub const fn shared(self, shared: &'static [&'static [Param]]) -> Self {
        Self { shared, ..self }
    }
    pub const fn free_form(self) -> Self {
        Self {
            free_form: true,
            ..self
        }
    }
    pub const fn any_params(self) -> Self {
        Self {
            any_params: true,
            ..self
        }
    }

    /// Every declared parameter: the module's own, then the shared groups.
    pub fn all_params(&self) -> impl Iterator<Item = &'static Param> {
        self.params
            .iter()
            .chain(self.shared.iter().flat_map(|g| g.iter()))
    }

    /// The parameter called `name`, by its name or one of its aliases.
    pub fn param(&self, name: &str) -> Option<&'static Param> {
        self.all_params().find(|p| p.names().any(|n| n == name))
    }

    /// Every name and alias a task may use (refused ones excluded), for messages.
    pub fn accepted_names(&self) -> impl Iterator<Item = &'static str> {
        self.all_params()
            .filter(|p| !matches!(p.support, Support::Refused(_)))
            .flat_map(Param::names)
    }

    /// Check a task's arguments as written: every name declared, free-form text only where the
    /// module takes it, refused parameters absent, pinned ones at their value when written as a
    /// literal. Values that are still templates are checked when the module reads them.
    pub fn validate(&self, args: &Vars) -> Result<(), String> {
        let m = self.module;
        for (k, v) in args {
            if k == RAW_PARAMS && self.free_form {
                continue;
            }
            if k == VARIABLE_PARAMS {
                // `args: "{{ a_dict }}"`: only known once rendered; the runner merges the rendered
                // mapping in and the module's run checks those names then.
                continue;
            }
            if self.any_params {
                // Names are free, but the ones a module declares are still checked.
                if let Some(p) = self.param(k) {
                    check_support(m, k, p, v, true)?;
                }
                continue;
            }
            if k == RAW_PARAMS {
                return Err(format!(
                    "{m} does not take free-form text; use key=value pairs or a mapping (parameters: {})",
                    self.accepted_names().collect::<Vec<_>>().join(", ")
                ));
            }
            match self.param(k) {
                Some(p) => check_support(m, k, p, v, true)?,
                None => {
                    return Err(format!(
                        "unsupported parameter '{k}' for module {m}.{}",
                        did_you_mean(k, self.accepted_names())
                    ))
                }
            }
        }
        Ok(())
    }

    /// [`validate`](Self::validate) for templated values: pinned parameters are compared whatever
    /// their form, and required ones must be present.
    pub fn check_values(&self, args: &Vars) -> Result<(), String> {
        self.validate(args)?;
        for (k, v) in args {
            if let Some(p) = self.param(k) {
                check_support(self.module, k, p, v, false)?;
            }
        }
        for p in self.all_params().filter(|p| p.required) {
            if !p.names().any(|n| args.get(n).is_some_and(|v| !v.is_null())) {
                return Err(format!("missing required parameter '{}'", p.name));
            }
        }
        Ok(())
    }

    /// Declaration mistakes (duplicate names, defaults or pinned values that are not valid for the
    /// type, a default outside the choices, ...). Empty for a well-formed spec.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for p in self.all_params() {
            for n in p.names() {
                if seen.contains(&n) {
                    out.push(format!("{}: '{n}' is declared twice", self.module));
                }
                seen.push(n);
            }
            out.extend(
                param_problems(p)
                    .into_iter()
                    .map(|e| format!("{}: parameter '{}': {e}", self.module, p.name)),
            );
        }
        if seen.contains(&RAW_PARAMS) {
            out.push(format!(
                "{}: declare free-form text with Spec::free_form, not as a parameter",
                self.module
            ));
        }
        out
    }
}

fn param_problems(p: &Param) -> Vec<String> {
    let mut out = Vec::new();
    if p.required && p.default.is_some() {
        out.push("required parameters have no default".to_string());
    }
    for (what, text) in [("default", p.default), ("pinned value", only_value(p))] {
        let Some(text) = text else { continue };
        if let Err(e) = coerce_text(p.kind, text) {
            out.push(format!(
                "{what} '{text}' is not a valid {}: {e}",
                p.kind.as_str()
            ));
        }
        if !p.choices.is_empty() && !p.choices.contains(&text) {
            out.push(format!("{what} '{text}' is not one of the choices"));
        }
    }
    if !p.choices.is_empty() && !matches!(p.kind, Type::Str | Type::Path) {
        out.push("choices are only for text parameters".to_string());
    }
    if p.kind == Type::Dict && p.default.is_some() {
        out.push("dict parameters have no default".to_string());
    }
    if matches!(p.support, Support::Refused(_)) && (p.required || p.default.is_some()) {
        out.push("a refused parameter is neither required nor defaulted".to_string());
    }
    out
}

fn only_value(p: &Param) -> Option<&'static str> {
    match p.support {
        Support::Only(v) => Some(v),
        _ => None,
    }
}

/// Refused parameters are errors; pinned ones must hold their value. With `literal_only`, values
/// that are still templates pass, to be checked once rendered.
fn check_support(
    module: &str,
    key: &str,
    p: &Param,
    v: &Value,
    literal_only: bool,
) -> Result<(), String> {
    if p.word && !(literal_only && contains_template(v)) {
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for item in items {
            if let Some(w) = item.as_str().filter(|w| w.starts_with('-')) {
                return Err(format!(
                    "{module}: {key} '{w}' must not start with '-' (it would be read as an option)"
                ));
            }
        }
    }
    match p.support {
        Support::Read => Ok(()),
        Support::Refused(why) => Err(format!(
            "{module}: parameter '{key}' is not supported by knockplay ({why})"
        )),
        Support::Only(want) => {
            if v.is_null() || (literal_only && contains_template(v)) {
                return Ok(());
            }
            if same_value(p.kind, v, want) {
                Ok(())
            } else {
                Err(format!(
                    "{module}: parameter '{key}' = '{}' is not supported by knockplay (only {key}={want})",
                    crate::value::to_display(v)
                ))
            }
        }
    }
}

/// Whether a given value means the same as the declared text `want`.
fn same_value(kind: Type, v: &Value, want: &str) -> bool {
    match (coerce_text(kind, want), coerce_value(kind, v)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SPEC: Spec = Spec::new(
        "demo",
        &[
            Param::path("path").required().aliases(&["dest", "name"]),
            Param::bool("force").default("yes"),
            Param::str("state")
                .choices(&["present", "absent"])
                .default("present"),
            Param::bool("get_mime").only("false"),
            Param::str("attributes").refused("chattr flags are not applied"),
        ],
    );

    #[test]
    fn an_args_template_is_checked_once_rendered() {
        let args = vars(json!({"_variable_params": "{{ file_args }}", "force": "no"}));
        assert_eq!(SPEC.validate(&args), Ok(()));
    }

    fn vars(v: serde_json::Value) -> Vars {
        match v {
            serde_json::Value::Object(m) => m,
            _ => Vars::new(),
        }
    }

    #[test]
    fn validate_names_the_module_and_suggests() {
        let table: &[(serde_json::Value, Option<&str>)] = &[
            (json!({"path": "/x", "force": true}), None),
            (json!({"dest": "/x"}), None),
            (
                json!({"pth": "/x"}),
                Some("unsupported parameter 'pth' for module demo. Did you mean 'path'?"),
            ),
            (
                json!({"_raw_params": "x"}),
                Some("demo does not take free-form text; use key=value pairs or a mapping (parameters: path, dest, name, force, state, get_mime)"),
            ),
            (
                json!({"attributes": "+i"}),
                Some("demo: parameter 'attributes' is not supported by knockplay (chattr flags are not applied)"),
            ),
            (json!({"get_mime": "no"}), None),
            (json!({"get_mime": "{{ x }}"}), None),
            (
                json!({"get_mime": true}),
                Some("demo: parameter 'get_mime' = 'true' is not supported by knockplay (only get_mime=false)"),
            ),
        ];
        for (args, want) in table {
            let got = SPEC.validate(&vars(args.clone())).err();
            assert_eq!(got.as_deref(), *want, "{args}");
        }
    }

    #[test]
    fn check_values_needs_required_and_rendered_pins() {
        assert_eq!(
            SPEC.check_values(&vars(json!({"force": true}))),
            Err("missing required parameter 'path'".to_string())
        );
        assert!(SPEC.check_values(&vars(json!({"name": "/x"}))).is_ok());
        assert!(SPEC
            .check_values(&vars(json!({"path": "/x", "get_mime": "{{ x }}"})))
            .is_err());
    }

    #[test]
    fn free_form_and_any_params() {
        const FF: Spec = Spec::new("m", &[Param::str("chdir")]).free_form();
        let ff = FF;
        assert!(ff.validate(&vars(json!({"_raw_params": "ls"}))).is_ok());
        const ANY: Spec =
            Spec::new("set_fact", &[Param::bool("cacheable").only("false")]).any_params();
        let any = ANY;
        assert!(any.validate(&vars(json!({"whatever": 1}))).is_ok());
        assert!(any.validate(&vars(json!({"cacheable": true}))).is_err());
    }

    #[test]
    fn problems_find_declaration_mistakes() {
        assert!(SPEC.problems().is_empty(), "{:?}", SPEC.problems());
        const BAD: Spec = Spec::new(
            "bad",
            &[
                Param::bool("a").default("maybe"),
                Param::str("b").choices(&["x", "y"]).default("z"),
                Param::str("c").aliases(&["a"]),
                Param::int("d").only("many"),
                Param::str("e").required().default("x"),
                Param::str("_raw_params"),
            ],
        );
        let p = BAD.problems();
        assert_eq!(p.len(), 6, "{p:?}");
    }
}
