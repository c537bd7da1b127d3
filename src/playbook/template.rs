//! minijinja environment with Ansible's filters and tests; strict undefined; type-preserving renders.
//!
//! [`Templar`] is built once and shared (it is `Send + Sync`); compiled templates are cached by
//! source text, so rendering the same task for hundreds of hosts compiles each string once.
//!
//! Semantics, following Ansible:
//! - a string without `{{`/`{%`/`{#` is returned as is, without touching minijinja;
//! - a string that is exactly one `{{ expr }}` keeps the expression's type (list, dict, bool,
//!   number); anything else renders to a string, values printed the Python way (`True`,
//!   `['a', 'b']`, none as the empty string);
//! - variables whose values are templates themselves are rendered when a template uses them
//!   (Ansible's lazy variable templating), with loop detection;
//! - an undefined variable is an error naming it (`'foo' is undefined`); `default`/`d`,
//!   `is defined`/`is undefined` and `mandatory` work, also on chains (`foo.bar is defined`
//!   with `foo` undefined): such templates are retried with chainable undefined values, which
//!   still refuse to be printed;
//! - `omit` is a placeholder: mapping entries whose value renders to it are dropped.
//!
//! Trust: only template text written by the playbook's author is ever rendered. A variable's
//! value is rendered lazily only when the variable is listed as the author's in the hidden
//! [`LAZY_VARS`] entry of the scope ([`mark_author_vars`], set by the scope builder). Everything
//! else (facts, registered results, `set_fact` values, loop items, `hostvars`, anything computed
//! from them by filters or JSON) is data: `{{ lookup('file', ...) }}` printed by a target stays
//! those characters. Without the entry nothing is rendered lazily: the default is closed.
//!
//! - this file: [`Templar`], rendering and evaluating
//! - `scan`: what a template's text says before compiling it (`{{ expr }}`, guards)
//! - `error`: [`TemplateError`] and finding the undefined variable
//! - `filters`, `predicates`, `functions`: Ansible's filters, tests and lookups
//! - `pyfmt`: Python's text forms of values; `regex_cache`: compiled regexes

mod error;
mod filters;
mod functions;
pub use functions::VAULT_LOCKED;
mod lookups;
mod predicates;
pub mod pyfmt;
mod regex_cache;
mod scan;

use crate::value::{str_bool, Value, Vars};
use minijinja::value::ValueKind;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

pub use error::TemplateError;
pub use predicates::compare_versions;

use error::{convert_error, location};
use scan::{
    bool_word, checks_definedness, inline_expressions, is_identifier, plain_lookup,
    single_expression,
};

/// The value of `omit`: module arguments set to it are left out.
pub const OMIT: &str = "__omit_place_holder__knockplay__";
/// Default `ansible_managed` (a play or inventory variable of that name overrides it).
pub const ANSIBLE_MANAGED: &str = "Ansible managed";

/// Variable holding an expression's value inside the wrapper template.
const RESULT_VAR: &str = "__knockplay_result";
/// Nesting limit for variables that refer to variables (`a: "{{ b }}"`, `b: "{{ a }}"`).
const MAX_DEPTH: usize = 32;
/// Past this many distinct template strings the name cache starts over.
const MAX_CACHED: usize = 50_000;

/// Whether `s` contains Jinja syntax at all.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Hidden scope entry: the names of the variables whose values are templates written by the
/// playbook's author and not yet rendered (a JSON list of strings). See the module docs.
pub const LAZY_VARS: &str = "__knockplay_author_templates__";

/// Hidden entry of a variable layer: names in that layer that hold data (a loop item passed to
/// an include), never templates, although the layer is otherwise the author's.
pub const DATA_VARS: &str = "__knockplay_data_vars__";

/// Whether `name` is one of the hidden bookkeeping entries above.
pub fn is_hidden(name: &str) -> bool {
    name == LAZY_VARS || name == DATA_VARS
}

/// Mark every variable of an author-only map (inventory, play vars, `-e`) whose value holds
/// template syntax as the author's, to be rendered lazily when used.
pub fn mark_author_vars(vars: &mut Vars) {
    let names: Vec<Value> = vars
        .iter()
        .filter(|(k, v)| !is_hidden(k) && contains_template(v))
        .map(|(k, _)| Value::String(k.clone()))
        .collect();
    vars.insert(LAZY_VARS.into(), Value::Array(names));
}

/// Set the list of author variables still to be rendered lazily (see [`LAZY_VARS`]).
pub fn set_author_vars(vars: &mut Vars, names: &[String]) {
    let list = names.iter().map(|n| Value::String(n.clone())).collect();
    vars.insert(LAZY_VARS.into(), Value::Array(list));
}

/// Whether `name` is listed in `list_key` of `vars`.
pub fn listed(vars: &Vars, list_key: &str, name: &str) -> bool {
    vars.get(list_key)
        .and_then(Value::as_array)
        .is_some_and(|l| l.iter().any(|n| n.as_str() == Some(name)))
}

/// Record that `name` in this layer holds data (see [`DATA_VARS`]).
pub fn mark_data(vars: &mut Vars, name: &str) {
    let entry = vars
        .entry(DATA_VARS.to_string())
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = entry {
        if !list.iter().any(|n| n.as_str() == Some(name)) {
            list.push(Value::String(name.to_string()));
        }
    }
}

/// Whether a value contains a template string anywhere (keys included).
pub fn contains_template(v: &Value) -> bool {
    match v {
        Value::String(s) => is_template(s),
        Value::Array(a) => a.iter().any(contains_template),
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| is_template(k) || contains_template(v)),
        _ => false,
    }
}

/// Most items (all levels together) a template's result may hold: `[1] * 10**15` is a lazy
/// sequence minijinja would happily hand over, and printing or converting it would never end.
const MAX_RESULT_ITEMS: usize = 1_000_000;

/// Refuses values with more than [`MAX_RESULT_ITEMS`] items before anything iterates them.
/// Cost: at most that many items visited.
fn check_size(v: &minijinja::Value) -> Result<(), Error> {
    fn walk(v: &minijinja::Value, budget: &mut usize, depth: usize) -> Result<(), Error> {
        if !matches!(
            v.kind(),
            ValueKind::Seq | ValueKind::Map | ValueKind::Iterable
        ) || depth > 64
        {
            return Ok(());
        }
        let n = v.len().unwrap_or(0);
        if n > *budget {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("the result has more than {MAX_RESULT_ITEMS} items; refusing it"),
            ));
        }
        *budget -= n;
        if let Ok(items) = v.try_iter() {
            for item in items.take(n) {
                walk(&item, budget, depth + 1)?;
                if v.kind() == ValueKind::Map {
                    if let Ok(val) = v.get_item(&item) {
                        walk(&val, budget, depth + 1)?;
                    }
                }
            }
        }
        Ok(())
    }
    let mut budget = MAX_RESULT_ITEMS;
    walk(v, &mut budget, 0)
}

fn write_value(out: &mut Output, state: &State, v: &minijinja::Value) -> Result<(), Error> {
    let fail = |_| Error::from(ErrorKind::WriteFailure);
    check_size(v)?;
    match v.kind() {
        // In strict mode minijinja stops real undefined values before the formatter; what
        // arrives is the silent undefined of `{{ 'x' if cond }}`, which prints nothing. The
        // chainable retry cannot tell them apart and refuses both.
        ValueKind::Undefined if state.undefined_behavior() == UndefinedBehavior::Strict => Ok(()),
        ValueKind::Undefined => Err(Error::from(ErrorKind::UndefinedError)),
        // Ansible's finalize: none prints as nothing.
        ValueKind::None => Ok(()),
        ValueKind::String => out.write_str(v.as_str().unwrap_or_default()).map_err(fail),
        ValueKind::Bool => out
            .write_str(if v.is_true() { "True" } else { "False" })
            .map_err(fail),
        _ => out.write_str(&filters::py_str(v)?).map_err(fail),
    }
}

/// Root names of sliced values in `source` (`x[1:]`, `a.b[-8:]`): minijinja does not report them
/// as variables the template uses. Names that are not variables are ignored later.
fn sliced_names(source: &str) -> Vec<String> {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let Some(re) = RE
        .get_or_init(|| regex::Regex::new(r"([A-Za-z_]\w*)(?:\.\w+)*\s*\[[^\]\[]*:").ok())
        .as_ref()
    else {
        return Vec::new();
    };
    re.captures_iter(source).map(|c| c[1].to_string()).collect()
}

/// Ansible keeps a template's trailing newlines: when a block tag swallowed some (`trim_blocks`),
/// they are added back, as many as the source ends with.
fn keep_trailing_newlines(source: &str, mut out: String) -> String {
    let count = |t: &str| t.len() - t.trim_end_matches('\n').len();
    let (want, have) = (count(source), count(&out));
    if want > have {
        out.push_str(&"\n".repeat(want - have));
    }
    out
}

/// Every variable but the internal ones and `hostvars`, unrendered, and the names of those that
/// are the author's templates.
fn all_vars(vars: &Vars) -> (BTreeMap<&String, &Value>, Vec<&String>) {
    let mut all = BTreeMap::new();
    let mut lazy = Vec::new();
    for (k, v) in vars {
        if k.starts_with("__") || k == "hostvars" {
            continue;
        }
        if listed(vars, LAZY_VARS, k) && contains_template(v) {
            lazy.push(k);
        }
        all.insert(k, v);
    }
    (all, lazy)
}

/// Ansible's fully qualified filter and test names (`x | ansible.builtin.to_json`,
/// `x is ansible.builtin.match`, `community.general.json_query`) become the short names knockplay
/// registers. Only a name right after `|` or `is [not]` is touched.
pub fn strip_fqcn(source: &str) -> std::borrow::Cow<'_, str> {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"(\|\s*|\bis\s+(?:not\s+)?)(?:ansible\.(?:builtin|legacy)|community\.general)\.([A-Za-z_])",
        )
        .ok()
    });
    match re {
        Some(re) if source.contains("ansible.") || source.contains("community.general.") => {
            re.replace_all(source, "$1$2")
        }
        _ => std::borrow::Cow::Borrowed(source),
    }
}

fn build_env(behavior: UndefinedBehavior) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(behavior);
    // Ansible: trim_blocks on, trailing newlines preserved, no autoescape.
    env.set_trim_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_formatter(write_value);
    // Templates are named by their source text: the loader hands the name back, and minijinja
    // keeps each compiled template for the next render.
    env.set_loader(|name| Ok(Some(strip_fqcn(name).into_owned())));
    filters::register(&mut env);
    predicates::register(&mut env);
    functions::register(&mut env);
    env.add_global("omit", OMIT);
    env.add_global("ansible_managed", ANSIBLE_MANAGED);
    env
}

/// A [`Templar`] bound to one host's variables: the [`crate::modules::Templater`] modules get.
pub struct BoundTemplar<'a> {
    pub templar: &'a Templar,
    pub vars: &'a Vars,
}

impl crate::modules::Templater for BoundTemplar<'_> {
    fn render(&self, source: &str, name: &str) -> Result<String, String> {
        self.templar
            .render_template(source, name, self.vars)
            .map_err(|e| e.to_string())
    }
}

/// Render mode: a text template, or an expression wrapped as `{% set r = (expr) %}`.
enum Mode {
    Text,
    Expr,
}

enum Output_ {
    Text(String),
    Value(minijinja::Value),
}

/// Variables that failed to render, with why: reported if the template turns out to use them.
type Failed = Vec<(String, TemplateError)>;

/// The templating engine: built once, shared by all hosts and tasks.
pub struct Templar {
    strict: Environment<'static>,
    chainable: Environment<'static>,
    /// Template source → top-level variable names it references.
    names: RwLock<HashMap<String, Arc<[String]>>>,
}

impl Default for Templar {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Templar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templar").finish_non_exhaustive()
    }
}

impl Templar {
    pub fn new() -> Self {
        Templar {
            strict: build_env(UndefinedBehavior::Strict),
            chainable: build_env(UndefinedBehavior::Chainable),
            names: RwLock::new(HashMap::new()),
        }
    }

    /// Render a string: unchanged without Jinja syntax, typed for exactly `{{ expr }}`,
    /// otherwise a string.
    pub fn render_str(&self, s: &str, vars: &Vars) -> Result<Value, TemplateError> {
        self.render_str_at(s, vars, 0)
    }

    /// Render a value recursively (strings in lists and maps, map keys too); map entries that
    /// render to `omit` are dropped.
    pub fn render_value(&self, v: &Value, vars: &Vars) -> Result<Value, TemplateError> {
        self.render_value_at(v, vars, 0)
    }

    /// Render module arguments (a mapping): values and keys templated, `omit` entries dropped.
    pub fn render_args(&self, args: &Vars, vars: &Vars) -> Result<Vars, TemplateError> {
        let mut out = Vars::new();
        for (k, v) in args {
            let key = if is_template(k) {
                crate::value::to_display(&self.render_str(k, vars)?)
            } else {
                k.clone()
            };
            let value = self.render_value(v, vars)?;
            if value.as_str() != Some(OMIT) {
                out.insert(key, value);
            }
        }
        Ok(out)
    }

    /// Render a template to text (`template` module, `copy content=`); `name` (a file path)
    /// appears in errors with the line.
    pub fn render_template(
        &self,
        source: &str,
        name: &str,
        vars: &Vars,
    ) -> Result<String, TemplateError> {
        if !is_template(source) {
            return Ok(source.to_string());
        }
        match self.execute(source, Some(name), Mode::Text, vars, 0)? {
            Output_::Text(s) => Ok(s),
            Output_::Value(v) => Ok(filters::py_str(&v).unwrap_or_default()),
        }
    }

    /// [`Templar::render_template`] from inside a `template` lookup, `depth` levels down.
    pub(crate) fn render_template_nested(
        &self,
        source: &str,
        name: &str,
        vars: &Vars,
        depth: usize,
    ) -> Result<String, TemplateError> {
        if !is_template(source) {
            return Ok(source.to_string());
        }
        match self.execute(source, Some(name), Mode::Text, vars, depth)? {
            Output_::Text(s) => Ok(s),
            Output_::Value(v) => Ok(filters::py_str(&v).unwrap_or_default()),
        }
    }

    /// Evaluate a bare expression (`foo | length > 2`) to a typed value.
    pub fn eval_expr(&self, expr: &str, vars: &Vars) -> Result<Value, TemplateError> {
        let v = self.eval_mj(expr, expr, vars, 0)?;
        to_json(&v, expr)
    }

    /// Evaluate a condition (`when:`, `failed_when:`, `changed_when:`, `until:`, `that:`):
    /// a bare expression, `{{ … }}` text, or Ansible's boolean words. A bare variable holding
    /// a string uses Ansible's coercion (`"False"`, `"no"` are false).
    pub fn eval_bool(&self, expr: &str, vars: &Vars) -> Result<bool, TemplateError> {
        let e = expr.trim();
        if e.is_empty() {
            return Ok(true);
        }
        if let Some(b) = bool_word(e) {
            return Ok(b);
        }
        if is_template(e) && single_expression(e).is_none() {
            if let Some(expr) = inline_expressions(e) {
                let v = self.eval_mj(&expr, e, vars, 0)?;
                return Ok(v.is_true());
            }
        }
        if is_template(e) {
            // The rendered text is data, never evaluated again: a condition that renders to
            // `x == 1` (or to a template) is an error, as in ansible-core 2.19.
            return match self.render_str(e, vars)? {
                Value::String(s) => str_bool(&s).ok_or_else(|| TemplateError::Render {
                    message: format!(
                        "the condition rendered to the text '{}', which is neither true nor \
                         false; write the expression without {{{{ }}}} (when: x == 1)",
                        s.chars().take(80).collect::<String>()
                    ),
                    at: location(e, None, None),
                }),
                other => Ok(json_truthy(&other)),
            };
        }
        if let Some(v) = plain_lookup(e, vars, |n| listed(vars, LAZY_VARS, n)) {
            return Ok(match v {
                Value::String(s) if is_identifier(e) => str_bool(s).unwrap_or(!s.is_empty()),
                other => json_truthy(other),
            });
        }
        let v = self.eval_mj(e, e, vars, 0)?;
        if v.kind() == ValueKind::String && is_identifier(e) {
            let s = v.as_str().unwrap_or_default();
            return Ok(str_bool(s).unwrap_or(!s.is_empty()));
        }
        Ok(v.is_true())
    }

    /// A condition as written in YAML: bool, number, string, null (no condition), or a list
    /// (all must hold).
    pub fn eval_condition(&self, cond: &Value, vars: &Vars) -> Result<bool, TemplateError> {
        match cond {
            Value::Null => Ok(true),
            Value::Bool(b) => Ok(*b),
            Value::Number(n) => Ok(n.as_f64().is_some_and(|f| f != 0.0)),
            Value::String(s) => self.eval_bool(s, vars),
            Value::Array(items) => {
                for c in items {
                    if !self.eval_condition(c, vars)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Value::Object(_) => Err(TemplateError::Render {
                message: format!("a condition must be an expression, got a mapping: {cond}"),
                at: String::new(),
            }),
        }
    }

    fn render_str_at(&self, s: &str, vars: &Vars, depth: usize) -> Result<Value, TemplateError> {
        if !is_template(s) {
            return Ok(Value::String(s.to_string()));
        }
        let escaped = scan::escape_backslashes(s);
        let s = escaped.as_ref();
        if let Some(expr) = single_expression(s) {
            if let Some(v) = plain_lookup(expr, vars, |n| listed(vars, LAZY_VARS, n)) {
                return Ok(v.clone());
            }
            let v = self.eval_mj(expr, s, vars, depth)?;
            return to_json(&v, s);
        }
        match self.execute(s, None, Mode::Text, vars, depth)? {
            Output_::Text(t) => Ok(looks_like_data(t)),
            Output_::Value(v) => to_json(&v, s),
        }
    }

    fn render_value_at(
        &self,
        v: &Value,
        vars: &Vars,
        depth: usize,
    ) -> Result<Value, TemplateError> {
        match v {
            Value::String(s) => self.render_str_at(s, vars, depth),
            Value::Array(items) => items
                .iter()
                .map(|i| self.render_value_at(i, vars, depth))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = Vars::new();
                for (k, item) in map {
                    let key = if is_template(k) {
                        crate::value::to_display(&self.render_str_at(k, vars, depth)?)
                    } else {
                        k.clone()
                    };
                    let value = self.render_value_at(item, vars, depth)?;
                    if value.as_str() != Some(OMIT) {
                        out.insert(key, value);
                    }
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn eval_mj(
        &self,
        expr: &str,
        display: &str,
        vars: &Vars,
        depth: usize,
    ) -> Result<minijinja::Value, TemplateError> {
        // Printing the result only when it is undefined makes strict mode report a real
        // undefined value, while the silent undefined of `'x' if cond` prints nothing.
        let source = format!(
            "{{% set {RESULT_VAR} = ({expr}) %}}{{% if {RESULT_VAR} is undefined %}}{{{{ {RESULT_VAR} }}}}{{% endif %}}"
        );
        match self.execute(&source, Some(display), Mode::Expr, vars, depth)? {
            Output_::Value(v) => Ok(v),
            Output_::Text(t) => Ok(minijinja::Value::from(t)),
        }
    }

    /// Top-level names a template uses (cached with the compiled template).
    fn root_names(&self, source: &str, at: &str) -> Result<Arc<[String]>, TemplateError> {
        if let Ok(cache) = self.names.read() {
            if let Some(n) = cache.get(source) {
                return Ok(n.clone());
            }
        }
        let tmpl = self
            .strict
            .get_template(source)
            .map_err(|e| convert_error(&e, source, at, None))?;
        let mut names: Vec<String> = tmpl.undeclared_variables(false).into_iter().collect();
        // minijinja's scan misses a variable that is only sliced (`keyid[-8:]`, `a.b[1:]`).
        names.extend(sliced_names(source));
        if names
            .iter()
            .any(|n| n == "lookup" || n == "query" || n == "q")
        {
            names.extend(functions::LOOKUP_VARS.iter().map(|s| s.to_string()));
            names.push(functions::VARNAMES.to_string());
            if ["'vars'", "\"vars\"", "builtin.vars"]
                .iter()
                .any(|n| source.contains(n))
            {
                names.push(lookups::ALLVARS.to_string());
            }
            if ["'template'", "\"template\"", "builtin.template"]
                .iter()
                .any(|n| source.contains(n))
            {
                names.push(lookups::SCOPE.to_string());
            }
        }
        names.sort();
        names.dedup();
        let names: Arc<[String]> = names.into();
        if let Ok(mut cache) = self.names.write() {
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
            cache.insert(source.to_string(), names.clone());
        }
        Ok(names)
    }

    /// The render context: only the variables the template references, templated values
    /// rendered first. Variables that failed to render are left out and reported if used.
    fn context(
        &self,
        names: &[String],
        vars: &Vars,
        depth: usize,
    ) -> Result<(BTreeMap<String, minijinja::Value>, Failed), TemplateError> {
        let mut ctx = BTreeMap::new();
        let mut failed = Vec::new();
        for name in names {
            if name == lookups::SCOPE {
                let handle = lookups::ScopeHandle {
                    vars: vars.clone(),
                    depth,
                };
                ctx.insert(name.clone(), minijinja::Value::from_object(handle));
                continue;
            }
            if name == lookups::ALLVARS {
                // Every variable as written, and which are the author's templates (the vars
                // lookup renders those, never data).
                let (all, lazy) = all_vars(vars);
                ctx.insert(name.clone(), minijinja::Value::from_serialize(&all));
                ctx.insert(
                    lookups::LAZYNAMES.into(),
                    minijinja::Value::from_serialize(&lazy),
                );
                continue;
            }
            if name == functions::VARNAMES {
                // The names of all variables, in definition order (the varnames lookup).
                let all: Vec<&String> = vars.keys().filter(|k| !k.starts_with("__")).collect();
                ctx.insert(name.clone(), minijinja::Value::from_serialize(&all));
                continue;
            }
            let Some(v) = vars.get(name) else { continue };
            // Only the author's templates are rendered; data (target output, facts, results,
            // values computed from them, other hosts' variables) goes in as it is.
            if name != "hostvars" && listed(vars, LAZY_VARS, name) && contains_template(v) {
                if depth >= MAX_DEPTH {
                    return Err(TemplateError::Recursion { name: name.clone() });
                }
                match self.render_value_at(v, vars, depth + 1) {
                    Ok(r) => {
                        ctx.insert(name.clone(), minijinja::Value::from_serialize(&r));
                    }
                    Err(e @ TemplateError::Recursion { .. }) => return Err(e),
                    Err(e) => failed.push((name.clone(), e)),
                }
            } else {
                ctx.insert(name.clone(), minijinja::Value::from_serialize(v));
            }
        }
        Ok((ctx, failed))
    }

    fn execute(
        &self,
        source: &str,
        name: Option<&str>,
        mode: Mode,
        vars: &Vars,
        depth: usize,
    ) -> Result<Output_, TemplateError> {
        let at_text = name.unwrap_or(source);
        let names = self.root_names(source, at_text)?;
        let (ctx, failed) = self.context(&names, vars, depth)?;
        let run = |env: &Environment<'static>| -> Result<Output_, Error> {
            let tmpl = env.get_template(source)?;
            match mode {
                Mode::Text => tmpl
                    .render(&ctx)
                    .map(|out| Output_::Text(keep_trailing_newlines(source, out))),
                Mode::Expr => {
                    let captured = tmpl.render_captured(&ctx)?;
                    let v = captured.state().lookup(RESULT_VAR).unwrap_or_default();
                    if v.is_undefined() {
                        // Only the silent undefined of an inline `if` without `else` gets here.
                        return Ok(Output_::Value(minijinja::Value::from("")));
                    }
                    Ok(Output_::Value(v))
                }
            }
        };
        let first = match run(&self.strict) {
            Ok(out) => return Ok(out),
            Err(e) => e,
        };
        let user_text = match mode {
            Mode::Expr => name.unwrap_or(source),
            Mode::Text => source,
        };
        let err = if first.kind() == ErrorKind::UndefinedError && checks_definedness(user_text) {
            match run(&self.chainable) {
                Ok(out) => return Ok(out),
                Err(e) => e,
            }
        } else {
            first
        };
        if err.kind() == ErrorKind::UndefinedError {
            return Err(error::undefined_error(
                &self.strict,
                &err,
                source,
                name,
                vars,
                &failed,
            ));
        }
        // A variable that failed to render can surface as another error (e.g. iteration).
        if let Some((_, e)) = failed.into_iter().next() {
            return Err(e);
        }
        Err(convert_error(&err, source, at_text, name))
    }
}

/// Ansible's rule for a template of text and expressions: a result that starts like a list or
/// a dict and reads as a Python literal becomes that value, and `True`/`False` become booleans
/// (`"{{ a }}\n"` with `a = "{'k': 1}"` is a dict). Anything else stays text.
fn looks_like_data(t: String) -> Value {
    match t.as_str() {
        "True" => Value::Bool(true),
        "False" => Value::Bool(false),
        s if s.starts_with(['{', '[']) => match crate::inventory::literal::parse_value(s) {
            v @ (Value::Array(_) | Value::Object(_)) => v,
            _ => Value::String(t),
        },
        _ => Value::String(t),
    }
}

fn to_json(v: &minijinja::Value, at: &str) -> Result<Value, TemplateError> {
    if v.kind() == ValueKind::String {
        return Ok(Value::String(v.as_str().unwrap_or_default().to_string()));
    }
    check_size(v).map_err(|e| TemplateError::Render {
        message: e.detail().unwrap_or("the result is too large").to_string(),
        at: location(at, None, None),
    })?;
    serde_json::to_value(v).map_err(|e| TemplateError::Render {
        message: format!("cannot convert the result to a value: {e}"),
        at: location(at, None, None),
    })
}

fn json_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

#[cfg(test)]
mod tests;
