//! [`Args`]: a module's templated arguments read through its declaration ([`Spec`]), with
//! Ansible's type coercion ([`super::coerce`]), declared defaults and alias resolution.
//!
//! Reading a name the declaration lacks, reading it as the wrong type, or reading a parameter the
//! declaration says knockplay does not read is a programming error, reported as
//! `ModuleError::Args("internal: …")` (the registry tests run every module, so it cannot ship
//! unnoticed). Messages are not prefixed with the module name: [`super::Module::execute`] does it
//! for every error in one place.

use super::coerce::{self, Type};
use super::mode::{mode_warning, Mode};
use super::params::{Param, Spec, Support, RAW_PARAMS};
use super::ModuleError;
use crate::value::{Value, Vars};

/// The arguments of one module run.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    spec: &'static Spec,
    vars: &'a Vars,
}

/// A programming error: the reading code and the declaration disagree.
fn internal(msg: String) -> ModuleError {
    ModuleError::Args(format!("internal: {msg}"))
}

fn bad(key: &str, what: String) -> ModuleError {
    ModuleError::Args(format!("parameter '{key}' {what}"))
}

impl<'a> Args<'a> {
    /// Check `vars` against `spec` (names, refused and pinned values, required parameters).
    pub fn new(spec: &'static Spec, vars: &'a Vars) -> Result<Self, ModuleError> {
        spec.check_values(vars).map_err(ModuleError::Args)?;
        Ok(Self { spec, vars })
    }

    pub fn module(&self) -> &'static str {
        self.spec.module
    }

    /// The declaration of `name`, which must be its canonical name, of one of `kinds`, and read.
    fn declared(&self, name: &str, kinds: &[Type]) -> Result<&'static Param, ModuleError> {
        let Some(p) = self.spec.all_params().find(|p| p.name == name) else {
            return Err(internal(format!(
                "parameter '{name}' is not declared by {}",
                self.spec.module
            )));
        };
        if !kinds.contains(&p.kind) {
            return Err(internal(format!(
                "parameter '{name}' is declared as {} but read as {}",
                p.kind.as_str(),
                kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join("/")
            )));
        }
        if p.support != Support::Read {
            return Err(internal(format!(
                "parameter '{name}' is declared as not read by knockplay"
            )));
        }
        Ok(p)
    }

    /// The value given under the name or an alias (first non-null, declaration order), with the
    /// key it was given under; else the declared default.
    fn lookup(&self, p: &Param) -> Option<(&str, Value)> {
        let given = p.names().find_map(|n| {
            self.vars
                .get_key_value(n)
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.as_str(), v.clone()))
        });
        given.or_else(|| p.default.map(|d| (p.name, Value::String(d.to_string()))))
    }

    /// Look `name` up and coerce it with `f`; errors name the key as given.
    fn read<T>(
        &self,
        name: &str,
        kinds: &[Type],
        f: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Result<Option<T>, ModuleError> {
        let p = self.declared(name, kinds)?;
        match self.lookup(p) {
            None => Ok(None),
            Some((key, v)) => f(&v).map(Some).map_err(|what| bad(key, what)),
        }
    }

    /// Whether the module declares a parameter `name` of type `kind` that it reads.
    pub fn declares(&self, name: &str, kind: Type) -> bool {
        self.declared(name, &[kind]).is_ok()
    }

    /// Whether the parameter (or an alias) was given a non-null value.
    pub fn is_set(&self, name: &str) -> Result<bool, ModuleError> {
        let kinds = [
            Type::Str,
            Type::Bool,
            Type::Int,
            Type::Float,
            Type::List,
            Type::Dict,
            Type::Path,
            Type::Mode,
            Type::Raw,
        ];
        let p = self.declared(name, &kinds)?;
        Ok(p.names()
            .any(|n| self.vars.get(n).is_some_and(|v| !v.is_null())))
    }

    /// A text parameter (`str` or `path`), or its default.
    pub fn str(&self, name: &str) -> Result<Option<String>, ModuleError> {
        self.read(name, &[Type::Str, Type::Path], coerce::to_text)
    }

    /// A parameter declared `required`.
    pub fn req_str(&self, name: &str) -> Result<String, ModuleError> {
        let p = self.declared(name, &[Type::Str, Type::Path])?;
        if !p.required {
            return Err(internal(format!(
                "parameter '{name}' is read as required but not declared so"
            )));
        }
        self.str(name)?
            .ok_or_else(|| ModuleError::Args(format!("missing required parameter '{name}'")))
    }

    /// A text parameter restricted to its declared choices, or its default.
    pub fn choice(&self, name: &str) -> Result<Option<String>, ModuleError> {
        let p = self.declared(name, &[Type::Str])?;
        if p.choices.is_empty() {
            return Err(internal(format!(
                "parameter '{name}' is read as a choice but declares none"
            )));
        }
        self.read(name, &[Type::Str], |v| {
            let s = coerce::to_text(v)?;
            if p.choices.contains(&s.as_str()) {
                Ok(s)
            } else {
                Err(format!(
                    "must be one of: {}; got '{s}'",
                    p.choices.join(", ")
                ))
            }
        })
    }

    /// A boolean parameter with a declared default.
    pub fn bool(&self, name: &str) -> Result<bool, ModuleError> {
        let p = self.declared(name, &[Type::Bool])?;
        if p.default.is_none() {
            return Err(internal(format!(
                "boolean parameter '{name}' has no declared default; read it with opt_bool"
            )));
        }
        Ok(self.opt_bool(name)?.unwrap_or(false))
    }

    /// A boolean parameter without a default (None when not given).
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ModuleError> {
        self.read(name, &[Type::Bool], coerce::to_bool)
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ModuleError> {
        self.read(name, &[Type::Int], coerce::to_int)
    }

    /// A non-negative integer.
    pub fn uint(&self, name: &str) -> Result<Option<u64>, ModuleError> {
        self.read(name, &[Type::Int], |v| {
            coerce::to_int(v)
                .ok()
                .and_then(|i| u64::try_from(i).ok())
                .ok_or_else(|| {
                    format!(
                        "must be a non-negative integer, got '{}'",
                        crate::value::to_display(v)
                    )
                })
        })
    }

    pub fn float(&self, name: &str) -> Result<Option<f64>, ModuleError> {
        self.read(name, &[Type::Float], coerce::to_float)
    }

    /// A list of strings (YAML list, or comma-separated text).
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, ModuleError> {
        self.read(name, &[Type::List], coerce::to_list)
    }

    /// A mapping.
    pub fn dict(&self, name: &str) -> Result<Option<Vars>, ModuleError> {
        self.read(name, &[Type::Dict], |v| match v {
            Value::Object(m) => Ok(m.clone()),
            other => Err(format!("must be a dict, got {}", coerce::type_name(other))),
        })
    }

    /// A file mode.
    pub fn mode(&self, name: &str) -> Result<Option<Mode>, ModuleError> {
        self.read(name, &[Type::Mode], |v| {
            coerce::to_mode(v).map_err(|what| {
                format!("{what}; use an octal string like '0644' or a symbolic mode like 'u=rw,g=r,o=r'")
            })
        })
    }

    /// The warning for a mode given as an octal-looking integer (`mode: 644`), if any.
    pub fn mode_warning(&self, name: &str) -> Result<Option<String>, ModuleError> {
        let p = self.declared(name, &[Type::Mode])?;
        Ok(self.lookup(p).and_then(|(_, v)| mode_warning(&v)))
    }

    /// A parameter taken as it is (any JSON value).
    pub fn value(&self, name: &str) -> Result<Option<Value>, ModuleError> {
        self.read(name, &[Type::Raw], |v| Ok(v.clone()))
    }

    /// The free-form text of a module declared [`free_form`](Spec::free_form).
    pub fn free_form(&self) -> Result<Option<String>, ModuleError> {
        if !self.spec.free_form {
            return Err(internal(format!(
                "{} reads free-form text but is not declared free-form",
                self.spec.module
            )));
        }
        match self.vars.get(RAW_PARAMS) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => coerce::to_text(v).map(Some).map_err(|w| bad(RAW_PARAMS, w)),
        }
    }

    /// Fail when two parameters are both given.
    pub fn exclusive(&self, a: &str, b: &str) -> Result<(), ModuleError> {
        if self.is_set(a)? && self.is_set(b)? {
            return Err(ModuleError::Args(format!(
                "parameters are mutually exclusive: {a}|{b}"
            )));
        }
        Ok(())
    }

    /// The parameters a module with free names (`set_fact`: the variables to set) was given that
    /// it does not declare itself. Only such modules may ask; for any other it is an internal error.
    pub fn free_names(&self) -> Result<Vec<(&'a String, &'a Value)>, ModuleError> {
        if !self.spec.any_params {
            return Err(internal(format!(
                "{} declares its parameters; read them by name",
                self.spec.module
            )));
        }
        Ok(self
            .vars
            .iter()
            .filter(|(k, _)| self.spec.all_params().all(|p| p.name != k.as_str()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::params::Param;
    use super::*;
    use serde_json::json;

    const SPEC: Spec = Spec::new(
        "copy",
        &[
            Param::path("dest").required().aliases(&["path"]),
            Param::str("src"),
            Param::str("n"),
            Param::raw("l"),
            Param::bool("force").default("yes").aliases(&["thirsty"]),
            Param::bool("backup").default("no"),
            Param::bool("tri"),
            Param::str("state").choices(&["file", "absent"]),
            Param::str("marker").default("# {mark}"),
            Param::list("names"),
            Param::int("uid"),
            Param::mode("mode"),
            Param::bool("get_mime").only("false"),
        ],
    );

    fn vars(v: serde_json::Value) -> Vars {
        match v {
            serde_json::Value::Object(m) => m,
            _ => Vars::new(),
        }
    }

    fn msg(e: ModuleError) -> String {
        e.in_module("copy").to_string()
    }

    #[test]
    fn bool_args_name_the_parameter() {
        let v = vars(json!({"dest": "/x", "force": "maybe", "backup": "yes"}));
        let a = Args::new(&SPEC, &v).unwrap();
        assert!(a.bool("backup").unwrap());
        assert_eq!(
            msg(a.bool("force").unwrap_err()),
            "copy: parameter 'force' must be a boolean, got 'maybe'"
        );
        let v = vars(json!({"dest": "/x"}));
        let a = Args::new(&SPEC, &v).unwrap();
        assert!(a.bool("force").unwrap(), "declared default");
        assert!(!a.bool("backup").unwrap());
        assert_eq!(a.opt_bool("tri").unwrap(), None);
        let v = vars(json!({"dest": "/x", "thirsty": false}));
        assert!(
            !Args::new(&SPEC, &v).unwrap().bool("force").unwrap(),
            "alias"
        );
    }

    #[test]
    fn string_args_and_requirements() {
        let v = vars(json!({"path": "/x", "n": 5, "src": true, "l": [1]}));
        let a = Args::new(&SPEC, &v).unwrap();
        assert_eq!(a.str("n").unwrap().as_deref(), Some("5"));
        assert_eq!(a.str("src").unwrap().as_deref(), Some("True"));
        assert_eq!(a.req_str("dest").unwrap(), "/x");
        assert_eq!(a.str("marker").unwrap().as_deref(), Some("# {mark}"));
        assert_eq!(a.value("l").unwrap(), Some(json!([1])));
        assert_eq!(
            msg(Args::new(&SPEC, &vars(json!({"src": "a"}))).unwrap_err()),
            "copy: missing required parameter 'dest'"
        );
        let v = vars(json!({"dest": "/x", "n": [1]}));
        assert_eq!(
            Args::new(&SPEC, &v).unwrap().str("n").unwrap().as_deref(),
            Some("[1]")
        );
        let v = vars(json!({"dest": "/x", "state": "bogus"}));
        assert_eq!(
            msg(Args::new(&SPEC, &v).unwrap().choice("state").unwrap_err()),
            "copy: parameter 'state' must be one of: file, absent; got 'bogus'"
        );
        let v = vars(json!({"dest": "/x", "src": "a", "n": "b"}));
        assert_eq!(
            msg(Args::new(&SPEC, &v)
                .unwrap()
                .exclusive("src", "n")
                .unwrap_err()),
            "copy: parameters are mutually exclusive: src|n"
        );
    }

    #[test]
    fn lists_numbers_and_pins() {
        let v = vars(json!({"dest": "/x", "names": "a, b", "uid": "12"}));
        let a = Args::new(&SPEC, &v).unwrap();
        assert_eq!(a.list("names").unwrap().unwrap(), ["a", "b"]);
        assert_eq!(a.int("uid").unwrap(), Some(12));
        assert_eq!(a.uint("uid").unwrap(), Some(12));
        let v = vars(json!({"dest": "/x", "uid": -1}));
        assert!(msg(Args::new(&SPEC, &v).unwrap().uint("uid").unwrap_err())
            .contains("'uid' must be a non-negative integer"));
        let v = vars(json!({"dest": "/x", "get_mime": "yes"}));
        assert!(msg(Args::new(&SPEC, &v).unwrap_err()).contains("only get_mime=false"));
    }

    #[test]
    fn reading_against_the_declaration_is_checked() {
        let v = vars(json!({"dest": "/x"}));
        let a = Args::new(&SPEC, &v).unwrap();
        let internal = |e: ModuleError| {
            let m = msg(e);
            assert!(m.starts_with("copy: internal: "), "{m}");
        };
        internal(a.str("nope").unwrap_err());
        internal(a.str("path").unwrap_err()); // an alias is not the canonical name
        internal(a.bool("n").unwrap_err()); // declared str
        internal(a.bool("tri").unwrap_err()); // no default: opt_bool
        internal(a.req_str("src").unwrap_err()); // not declared required
        internal(a.choice("n").unwrap_err()); // no choices
        internal(a.opt_bool("get_mime").unwrap_err()); // pinned, not read
        internal(a.free_form().unwrap_err());
        let e = Args::new(&SPEC, &vars(json!({"dest": "/x", "frce": 1}))).unwrap_err();
        assert_eq!(
            msg(e),
            "copy: unsupported parameter 'frce' for module copy. Did you mean 'force'?"
        );
    }

    #[test]
    fn modes_parse_like_their_authors_meant() {
        let v = |m: serde_json::Value| vars(json!({"dest": "/x", "mode": m}));
        let m = |m: serde_json::Value| {
            let v = v(m);
            Args::new(&SPEC, &v).unwrap().mode("mode").map_err(msg)
        };
        let w = |m: serde_json::Value| {
            let v = v(m);
            Args::new(&SPEC, &v).unwrap().mode_warning("mode").unwrap()
        };
        assert_eq!(m(json!("0644")).unwrap(), Some(Mode::Octal(0o644)));
        assert_eq!(m(json!("644")).unwrap(), Some(Mode::Octal(0o644)));
        assert_eq!(m(json!("01777")).unwrap(), Some(Mode::Octal(0o1777)));
        // Integers are numeric modes, as in Ansible; octal-looking ones get a warning.
        assert_eq!(m(json!(420)).unwrap(), Some(Mode::Octal(0o644)));
        assert_eq!(m(json!(493)).unwrap(), Some(Mode::Octal(0o755)));
        assert_eq!(m(json!(644)).unwrap(), Some(Mode::Octal(0o1204)));
        let warning = w(json!(644)).unwrap();
        assert!(
            warning.contains("0o1204") && warning.contains("'0644'"),
            "{warning}"
        );
        assert_eq!(w(json!(493)), None);
        assert_eq!(w(json!("0644")), None);
        assert_eq!(m(json!("preserve")).unwrap(), Some(Mode::Preserve));
        assert_eq!(
            m(json!("u=rw,g=r,o=r")).unwrap(),
            Some(Mode::Symbolic("u=rw,g=r,o=r".into()))
        );
        assert!(m(json!("0999")).is_err());
        assert!(m(json!("u=rwz")).unwrap_err().contains("'mode'"));
        assert!(m(json!(77777)).is_err());
    }
}
